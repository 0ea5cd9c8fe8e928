//! [`ModelListing`]: one priced model as `switchboard models` and the MCP `models` tool list it.

use serde::Serialize;

use super::{ModelPrice, PriceTable};

/// One row of the price table, ready to print or serialise.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelListing {
    /// The provider (`openai`, `anthropic`, …).
    pub provider: String,
    /// The model name, or the prefix of the names the price applies to; `*` for a row that
    /// prices every model of its provider (a self-hosted server's zero price).
    pub model: String,
    /// `provider:model`, the spec `create_client` takes (`provider:*` for a row that prices
    /// every model).
    pub id: String,
    /// The context window in tokens, when the table states it.
    pub context_window: Option<u64>,
    /// Prices in USD per million tokens.
    pub price_per_million: PricePerMillion,
    /// Where the price was read.
    pub price_source: String,
    /// When it was read (`YYYY-MM-DD`).
    pub price_date: String,
    /// Anything a reader must know about the price.
    pub note: Option<String>,
}

/// A model's prices in USD per million tokens, by kind of token.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PricePerMillion {
    /// Uncached prompt tokens.
    pub input: f64,
    /// Generated tokens.
    pub output: f64,
    /// Prompt tokens read from the provider's cache, when priced apart.
    pub cache_read: Option<f64>,
    /// Prompt tokens written to the provider's cache, when priced apart.
    pub cache_write: Option<f64>,
    /// Reasoning tokens, when priced apart from output.
    pub reasoning: Option<f64>,
}

impl From<&ModelPrice> for PricePerMillion {
    fn from(price: &ModelPrice) -> PricePerMillion {
        PricePerMillion {
            input: price.input,
            output: price.output,
            cache_read: price.cache_read,
            cache_write: price.cache_write,
            reasoning: price.reasoning,
        }
    }
}

impl PriceTable {
    /// Lists every priced model, sorted by provider then model; with a non-empty
    /// `providers`, only theirs.
    pub fn listing(&self, providers: &[String]) -> Vec<ModelListing> {
        self.entries()
            .into_iter()
            .filter(|(p, _, _)| providers.is_empty() || providers.iter().any(|w| w == p))
            .map(|(provider, model, price)| {
                (provider, if model.is_empty() { "*" } else { model }, price)
            })
            .map(|(provider, model, price)| ModelListing {
                provider: provider.to_owned(),
                model: model.to_owned(),
                id: format!("{provider}:{model}"),
                context_window: price.context_window,
                price_per_million: PricePerMillion::from(price),
                price_source: price.source.clone(),
                price_date: price.date.clone(),
                note: price.note.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_filters_by_provider_and_names_each_spec() {
        let all = PriceTable::embedded().listing(&[]);
        let openai = PriceTable::embedded().listing(&["openai".to_owned()]);
        assert!(all.len() > openai.len());
        assert!(!openai.is_empty());
        assert!(openai
            .iter()
            .all(|m| m.provider == "openai" && m.id == format!("openai:{}", m.model)));
        let gpt41 = openai.iter().find(|m| m.model == "gpt-4.1").unwrap();
        assert_eq!(gpt41.context_window, Some(1_047_576));
    }

    #[test]
    fn a_row_for_every_model_is_listed_as_a_star() {
        let ollama = PriceTable::embedded().listing(&["ollama".to_owned()]);
        let ids: Vec<_> = ollama.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["ollama:*"]);
        assert_eq!(
            ollama[0].note.as_deref(),
            Some("self-hosted: no per-token charge")
        );
    }
}
