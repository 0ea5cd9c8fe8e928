//! The tools that send nothing: `provider_check`, `cost_estimate` and `models`.

use std::sync::Arc;

use serde_json::{json, Value};
use switchboard::config::check;
use switchboard::cost::PricePerMillion;
use switchboard::middleware::budget::reserved_input_tokens;
use switchboard::middleware::DEFAULT_MAX_OUTPUT_TOKENS;
use switchboard::{Error, ErrorKind, PriceTable, Result};

use super::request;
use crate::params::{CostEstimateParams, ModelsParams, ProviderCheckParams};
use crate::State;

/// Runs `provider_check`: keys per provider (as `switchboard check` reports them) and the
/// breaker state of every route target in this server.
pub(crate) fn provider_check(state: &Arc<State>, p: ProviderCheckParams) -> Result<Value> {
    let targets = &state.targets;
    let settings = targets.settings();
    let names = check::providers_to_check(&settings, &p.providers, targets.has_config());
    let providers = check::key_reports(&settings, &names, targets.client_options())?;
    let breakers = check::breaker_reports(targets.routes());
    let ok = providers.iter().all(|r| r.ok);
    Ok(json!({
        "providers": providers,
        "configured_count": providers.iter().filter(|r| r.ok).count(),
        "breakers": breakers,
        "ok": ok,
    }))
}

/// Runs `cost_estimate`: the request's estimated input tokens plus its `max_tokens` (or the
/// budget default) of output, priced for each target as a budget would reserve it.
pub(crate) fn cost_estimate(state: &Arc<State>, p: CostEstimateParams) -> Result<Value> {
    let c = &p.conversation;
    let req = request(c)?;
    let (asked, specs) = state
        .targets
        .specs(c.model.as_deref(), c.route.as_deref())?;
    let input = req.estimated_input_tokens();
    let output = req.max_tokens.map_or(DEFAULT_MAX_OUTPUT_TOKENS, u64::from);
    let table = PriceTable::embedded();
    let mut rows = Vec::new();
    let mut worst: Option<f64> = None;
    for spec in &specs {
        let row = match table.price(spec.provider(), spec.model()) {
            Some(price) => {
                // Images, documents and audio count as the budget reserves them for this
                // target's provider.
                let input = reserved_input_tokens(&req, spec.provider(), spec.model(), table);
                let usd = price.worst_case(input, output).usd();
                worst = Some(worst.map_or(usd, |w| w.max(usd)));
                json!({
                    "provider": spec.provider(),
                    "model": spec.model(),
                    "priced": true,
                    "max_cost_usd": usd,
                    "price_per_million": PricePerMillion::from(price),
                })
            }
            None => json!({
                "provider": spec.provider(),
                "model": spec.model(),
                "priced": false,
                "max_cost_usd": null,
            }),
        };
        rows.push(row);
    }
    let Some(worst) = worst else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "the price table has no price for {}",
                specs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .with_fix("pick a priced model; the `models` tool lists them"));
    };
    Ok(json!({
        "route": asked,
        "estimated_input_tokens": input,
        "max_output_tokens": output,
        "max_cost_usd": worst,
        "targets": rows,
        "currency": "USD",
        "note": "input tokens are estimated at about four bytes each; the cost is the most the call could spend on each target",
    }))
}

/// Runs `models`: the price table (as `switchboard models` lists it) and the routes.
pub(crate) fn models(state: &Arc<State>, p: ModelsParams) -> Result<Value> {
    let models = PriceTable::embedded().listing(&p.providers);
    let routes: Vec<Value> = state
        .targets
        .routes()
        .map(|r| {
            json!({
                "alias": r.alias,
                "targets": r.targets.iter().map(|t| t.spec.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({
        "models": models,
        "count": models.len(),
        "routes": routes,
        "currency": "USD",
        "unit": "per million tokens",
    }))
}
