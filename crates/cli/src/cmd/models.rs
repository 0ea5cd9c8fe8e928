//! `switchboard models`: the models Switchboard has prices for, per provider.
//!
//! Prices and context windows come from the library's embedded price table (USD per
//! million tokens, with the source and date of each figure); `context_window` is `null`
//! for the few rows whose window could not be confirmed.

use clap::Args;
use serde_json::json;
use switchboard::cost::PriceTable;

use crate::output::{self, Table};

/// Arguments of `switchboard models`.
#[derive(Debug, Args)]
pub(crate) struct ModelsArgs {
    /// Shows only these providers (repeatable).
    #[arg(long = "provider", value_name = "PROVIDER")]
    providers: Vec<String>,
    /// Prints one JSON object.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: ModelsArgs) -> u8 {
    let rows = PriceTable::embedded().listing(&args.providers);
    if args.json {
        output::say(json!({"models": rows, "currency": "USD", "unit": "per million tokens"}));
        return 0;
    }
    let mut t = Table::new(&[
        "model",
        "context",
        "input $/M",
        "output $/M",
        "cache read $/M",
        "as of",
    ]);
    for row in &rows {
        let price = &row.price_per_million;
        t.row(vec![
            row.id.clone(),
            row.context_window.map_or("-".to_owned(), |w| w.to_string()),
            format!("{:.3}", price.input),
            format!("{:.3}", price.output),
            price
                .cache_read
                .map_or("-".to_owned(), |c| format!("{c:.3}")),
            row.price_date.clone(),
        ]);
    }
    t.print();
    eprintln!(
        "{} models; prices in USD per million tokens from the embedded price table",
        rows.len()
    );
    0
}
