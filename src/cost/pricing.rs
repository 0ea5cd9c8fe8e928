//! [`PriceTable`]: model prices as data, from the embedded `prices.toml` plus the user's
//! overrides.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::OnceLock;

use serde::Deserialize;

use super::Cost;
use crate::error::{Error, Result};
use crate::types::{ChatResponse, Usage};

/// The table shipped with the library.
const EMBEDDED: &str = include_str!("prices.toml");

/// The provider name [`CachedClient`](crate::CachedClient) puts on a hit's attempt; such a
/// response spent nothing.
const CACHE_PROVIDER: &str = crate::middleware::CACHE_PROVIDER;

/// The price of one model, in USD per million tokens, with where it was read.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelPrice {
    /// Uncached prompt tokens.
    pub input: f64,
    /// Generated tokens (reasoning included unless [`reasoning`](ModelPrice::reasoning) is set).
    pub output: f64,
    /// Prompt tokens served from the provider's cache; `None` bills them as input.
    pub cache_read: Option<f64>,
    /// Prompt tokens written to the provider's cache; `None` bills them as input.
    pub cache_write: Option<f64>,
    /// Reasoning tokens, when billed apart from output; `None` bills them as output.
    pub reasoning: Option<f64>,
    /// Where the price was read.
    pub source: String,
    /// When it was read (`YYYY-MM-DD`).
    pub date: String,
    /// Anything a reader must know, such as "unconfirmed".
    pub note: Option<String>,
    /// The model's context window in tokens, when the table knows it.
    pub context_window: Option<u64>,
}

impl ModelPrice {
    /// Creates a price from input and output USD per million tokens; cache and reasoning
    /// tokens bill at those prices until set.
    pub fn new(input: f64, output: f64) -> ModelPrice {
        ModelPrice {
            input,
            output,
            cache_read: None,
            cache_write: None,
            reasoning: None,
            source: String::new(),
            date: String::new(),
            note: None,
            context_window: None,
        }
    }

    /// Sets the cache read price.
    #[must_use]
    pub fn with_cache_read(mut self, usd_per_million: f64) -> ModelPrice {
        self.cache_read = Some(usd_per_million);
        self
    }

    /// Sets the cache write price.
    #[must_use]
    pub fn with_cache_write(mut self, usd_per_million: f64) -> ModelPrice {
        self.cache_write = Some(usd_per_million);
        self
    }

    /// Sets the model's context window in tokens.
    #[must_use]
    pub fn with_context_window(mut self, tokens: u64) -> ModelPrice {
        self.context_window = Some(tokens);
        self
    }

    /// Sets a separate reasoning price.
    #[must_use]
    pub fn with_reasoning(mut self, usd_per_million: f64) -> ModelPrice {
        self.reasoning = Some(usd_per_million);
        self
    }

    /// Prices the worst case of a request before it is sent: every prompt token at the
    /// dearer of input and cache write, every output token at the dearer of output and
    /// reasoning. Budgets reserve this much per attempt; cost estimates report it.
    pub fn worst_case(&self, input_tokens: u64, output_tokens: u64) -> Cost {
        let mut worst = Usage::new(input_tokens, output_tokens);
        if self.cache_write.is_some_and(|w| w > self.input) {
            worst.cache_write_tokens = Some(input_tokens);
        }
        if self.reasoning.is_some_and(|r| r > self.output) {
            worst.reasoning_tokens = Some(output_tokens);
        }
        self.cost(&worst)
    }

    /// Prices `usage` by the rules in the [module docs](crate::cost).
    pub fn cost(&self, usage: &Usage) -> Cost {
        let read = usage.cache_read_tokens.unwrap_or(0);
        let write = usage.cache_write_tokens.unwrap_or(0);
        let uncached = usage
            .input_tokens
            .saturating_sub(read.saturating_add(write));
        let (plain_out, reasoning_out, reasoning_price) = match self.reasoning {
            Some(price) => {
                let r = usage.reasoning_tokens.unwrap_or(0).min(usage.output_tokens);
                (usage.output_tokens - r, r, price)
            }
            None => (usage.output_tokens, 0, self.output),
        };
        let lines = [
            (uncached, self.input),
            (read, self.cache_read.unwrap_or(self.input)),
            (write, self.cache_write.unwrap_or(self.input)),
            (plain_out, self.output),
            (reasoning_out, reasoning_price),
        ];
        let mut nanos: u128 = 0;
        for (tokens, usd_per_million) in lines {
            nanos += line_nanos(tokens, usd_per_million);
        }
        Cost::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// Prices one line item in nano-dollars, rounded up. USD per million tokens is pico-dollars
/// per token times 10⁻⁶, so the product is computed in pico-dollars as integers.
fn line_nanos(tokens: u64, usd_per_million: f64) -> u128 {
    if tokens == 0 || usd_per_million <= 0.0 || usd_per_million.is_nan() {
        return 0;
    }
    let pico_per_token = (usd_per_million * 1e6).round() as u128;
    (u128::from(tokens) * pico_per_token).div_ceil(1000)
}

/// Model prices per provider, matched by the longest model-name prefix.
///
/// [`PriceTable::embedded`] is the table shipped in `src/cost/prices.toml` (each row names
/// its source and date). Override or extend it with a file of the same format, e.g. for a
/// negotiated price or a model released after this version:
///
/// ```toml
/// [[price]]
/// provider = "openai"
/// model = "gpt-4o-mini"
/// input = 0.10
/// output = 0.40
/// source = "our contract"
/// date = "2026-11-01"
/// ```
///
/// A passthrough provider such as OpenRouter prices `vendor/model` as `model` at the
/// provider its `[passthrough.<name>]` table maps `vendor` to. A provider named in the
/// `[same_as]` table (`openai-responses = "openai"`) bills the same models at the same
/// prices as another; its own rows, if any, still win.
///
/// # Examples
/// ```
/// use switchboard::{PriceTable, Usage};
///
/// let table = PriceTable::embedded();
/// let price = table.price("openai", "gpt-4.1-mini-2025-04-14").unwrap();
/// assert_eq!(price.input, 0.40); // the `gpt-4.1-mini` row, not `gpt-4.1`
/// assert!(table.cost_of(&Usage::new(10, 10), "openrouter", "openai/gpt-4.1-mini").is_some());
/// ```
#[derive(Clone, Debug, Default)]
pub struct PriceTable {
    /// Provider → (model prefix, price), in file order.
    rows: HashMap<String, Vec<(String, ModelPrice)>>,
    /// Passthrough provider → vendor prefix → priced provider.
    passthrough: HashMap<String, HashMap<String, String>>,
    /// Provider → the provider whose rows price its models.
    same_as: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    #[serde(default)]
    price: Vec<toml::Spanned<PriceRow>>,
    #[serde(default)]
    passthrough: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    same_as: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceRow {
    provider: String,
    model: String,
    input: f64,
    output: f64,
    cache_read: Option<f64>,
    cache_write: Option<f64>,
    reasoning: Option<f64>,
    source: String,
    date: String,
    note: Option<String>,
    context_window: Option<u64>,
}

impl PriceTable {
    /// Returns the table shipped with the library.
    pub fn embedded() -> &'static PriceTable {
        static TABLE: OnceLock<PriceTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            PriceTable::from_toml_str(EMBEDDED, "the embedded prices.toml").unwrap_or_else(|err| {
                // A unit test parses the embedded table, so this is unreachable in a release.
                tracing::error!(error = %err, "the embedded price table does not parse");
                PriceTable::default()
            })
        })
    }

    /// Returns the embedded table with the rows of the TOML file at `path` added, each
    /// replacing the embedded row for the same provider and model prefix.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when the file cannot be read or is not
    /// a valid price table; the message names the file, line and field.
    pub fn with_overrides_file(path: impl AsRef<Path>) -> Result<PriceTable> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|err| {
            Error::config(
                format!(
                    "cannot read the price overrides file {}: {err}",
                    path.display()
                ),
                "check the path and its permissions",
            )
        })?;
        let overrides = PriceTable::from_toml_str(&text, &path.display().to_string())?;
        Ok(PriceTable::embedded().clone().merged(overrides))
    }

    /// Parses a table from TOML text in the `prices.toml` format; `origin` names the text
    /// in error messages.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the line and field that is
    /// wrong: a syntax error, an unknown or missing field, or a negative price.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<PriceTable> {
        let file: PriceFile = toml::from_str(text).map_err(|err| {
            Error::config(
                format!("{origin} is not a valid price table: {err}"),
                "each [[price]] row needs provider, model, input, output, source and date; see src/cost/prices.toml",
            )
        })?;
        let mut table = PriceTable::default();
        for spanned in file.price {
            let line = text[..spanned.span().start.min(text.len())].lines().count() + 1;
            let row = spanned.into_inner();
            let prices = [
                ("input", Some(row.input)),
                ("output", Some(row.output)),
                ("cache_read", row.cache_read),
                ("cache_write", row.cache_write),
                ("reasoning", row.reasoning),
            ];
            for (field, value) in prices {
                if let Some(v) = value {
                    if !v.is_finite() || v < 0.0 {
                        return Err(Error::config(
                            format!(
                                "{origin}, line {line}: `{field}` of {}:{} is {v}, not a price",
                                row.provider, row.model
                            ),
                            "prices are USD per million tokens, zero or more",
                        ));
                    }
                }
            }
            if row.context_window == Some(0) {
                return Err(Error::config(
                    format!(
                        "{origin}, line {line}: `context_window` of {}:{} is 0",
                        row.provider, row.model
                    ),
                    "give the context window in tokens, or leave the field out",
                ));
            }
            let price = ModelPrice {
                input: row.input,
                output: row.output,
                cache_read: row.cache_read,
                cache_write: row.cache_write,
                reasoning: row.reasoning,
                source: row.source,
                date: row.date,
                note: row.note,
                context_window: row.context_window,
            };
            table.insert(row.provider, row.model, price);
        }
        for (provider, vendors) in file.passthrough {
            table
                .passthrough
                .entry(provider)
                .or_default()
                .extend(vendors);
        }
        for (provider, target) in file.same_as {
            if provider == target {
                return Err(Error::config(
                    format!("{origin}: `same_as.{provider}` names the provider itself"),
                    "name another provider whose rows price this one's models, or remove the line",
                ));
            }
            table.same_as.insert(provider, target);
        }
        Ok(table)
    }

    /// Adds or replaces the price of `provider`'s models starting with `model_prefix`.
    pub fn insert(
        &mut self,
        provider: impl Into<String>,
        model_prefix: impl Into<String>,
        price: ModelPrice,
    ) {
        let model_prefix = model_prefix.into();
        let rows = self.rows.entry(provider.into()).or_default();
        match rows.iter_mut().find(|(prefix, _)| *prefix == model_prefix) {
            Some(row) => row.1 = price,
            None => rows.push((model_prefix, price)),
        }
    }

    /// Returns this table with every row of `overrides` added or replacing its own.
    #[must_use]
    pub fn merged(mut self, overrides: PriceTable) -> PriceTable {
        for (provider, rows) in overrides.rows {
            for (prefix, price) in rows {
                self.insert(provider.clone(), prefix, price);
            }
        }
        for (provider, vendors) in overrides.passthrough {
            self.passthrough
                .entry(provider)
                .or_default()
                .extend(vendors);
        }
        self.same_as.extend(overrides.same_as);
        self
    }

    /// Returns every row as `(provider, model prefix, price)`, sorted by provider then model.
    pub fn entries(&self) -> Vec<(&str, &str, &ModelPrice)> {
        let mut out: Vec<(&str, &str, &ModelPrice)> = self
            .rows
            .iter()
            .flat_map(|(provider, rows)| {
                rows.iter()
                    .map(move |(model, price)| (provider.as_str(), model.as_str(), price))
            })
            .collect();
        out.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        out
    }

    /// Returns the price of `provider`'s `model`: the row with the longest prefix of the
    /// name, or for a passthrough provider the price of the vendor's model, or for a
    /// provider listed in `[same_as]` the price the other provider's rows give.
    pub fn price(&self, provider: &str, model: &str) -> Option<&ModelPrice> {
        self.own_price(provider, model).or_else(|| {
            let target = self.same_as.get(provider)?;
            // One hop only, so a cycle in an overrides file cannot loop.
            self.own_price(target, model)
        })
    }

    /// The price from `provider`'s own rows or its passthrough table.
    fn own_price(&self, provider: &str, model: &str) -> Option<&ModelPrice> {
        let own = self.rows.get(provider).and_then(|rows| {
            rows.iter()
                .filter(|(prefix, _)| model.starts_with(prefix.as_str()))
                .max_by_key(|(prefix, _)| prefix.len())
                .map(|(_, price)| price)
        });
        if own.is_some() {
            return own;
        }
        let (vendor, rest) = model.split_once('/')?;
        let target = self.passthrough.get(provider)?.get(vendor)?;
        if target == provider {
            return None;
        }
        self.own_price(target, rest)
    }

    /// Returns the context window of `provider`'s `model` in tokens, when its row has one.
    pub fn context_window(&self, provider: &str, model: &str) -> Option<u64> {
        self.price(provider, model).and_then(|p| p.context_window)
    }

    /// Prices `usage` for `provider`'s `model`; `None` when the model has no price.
    pub fn cost_of(&self, usage: &Usage, provider: &str, model: &str) -> Option<Cost> {
        self.price(provider, model).map(|p| p.cost(usage))
    }

    /// Prices a response: zero for a cache hit, else its usage at its provider's price for
    /// the model asked for (or, failing that, the model that served).
    pub fn cost_of_response(&self, response: &ChatResponse) -> Option<Cost> {
        if response
            .attempts
            .last()
            .is_some_and(|a| a.provider == CACHE_PROVIDER)
        {
            return Some(Cost::ZERO);
        }
        self.cost_of(&response.usage, &response.provider, &response.model)
            .or_else(|| {
                let served = response.served_model.as_deref()?;
                self.cost_of(&response.usage, &response.provider, served)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn usage(input: u64, output: u64, read: u64, write: u64, reasoning: u64) -> Usage {
        Usage {
            cache_read_tokens: Some(read),
            cache_write_tokens: Some(write),
            reasoning_tokens: Some(reasoning),
            ..Usage::new(input, output)
        }
    }

    fn cost(provider: &str, model: &str, u: &Usage) -> u64 {
        PriceTable::embedded()
            .cost_of(u, provider, model)
            .unwrap_or_else(|| panic!("no price for {provider}:{model}"))
            .nanos()
    }

    #[test]
    fn embedded_table_parses_and_every_row_names_source_and_date() {
        let table = PriceTable::from_toml_str(EMBEDDED, "prices.toml").unwrap();
        for provider in [
            "openai",
            "anthropic",
            "gemini",
            "xai",
            "groq",
            "mistral",
            "deepseek",
            "together",
            "ollama",
            "vllm",
        ] {
            let rows = &table.rows[provider];
            assert!(!rows.is_empty(), "{provider} has no rows");
            for (model, price) in rows {
                assert!(price.source.starts_with("https://"), "{provider}:{model}");
                assert_eq!(price.date.len(), 10, "{provider}:{model}");
            }
        }
    }

    #[test]
    fn openai_bills_cached_tokens_inside_input_at_the_cached_price() {
        // gpt-4o: $2.50 in, $1.25 cached, $10 out. 10,000 prompt tokens of which 4,000 cached,
        // 1,000 output of which 300 reasoning (billed as output).
        // 6,000 × 2.50 + 4,000 × 1.25 + 1,000 × 10 = 15,000 + 5,000 + 10,000 = 30,000 µ$ = $0.03
        let u = usage(10_000, 1_000, 4_000, 0, 300);
        assert_eq!(cost("openai", "gpt-4o-2024-08-06", &u), 30_000_000);
    }

    #[test]
    fn anthropic_bills_cache_writes_at_one_and_a_quarter_and_reads_at_a_tenth() {
        // claude-sonnet-4: $3 in, $3.75 write, $0.30 read, $15 out. Usage is normalised, so
        // input 5,000 = 1,000 uncached + 3,000 read + 1,000 written.
        // 1,000 × 3 + 3,000 × 0.30 + 1,000 × 3.75 + 200 × 15 = 3,000 + 900 + 3,750 + 3,000 µ$
        let u = usage(5_000, 200, 3_000, 1_000, 0);
        assert_eq!(
            cost("anthropic", "claude-sonnet-4-5-20250929", &u),
            10_650_000
        );
    }

    #[test]
    fn gemini_prices_cached_prompt_tokens_at_the_cache_rate() {
        // gemini-2.5-flash: $0.30 in, $0.03 cached, $2.50 out.
        // 800 × 0.30 + 200 × 0.03 + 100 × 2.50 = 240 + 6 + 250 = 496 µ$
        let u = usage(1_000, 100, 200, 0, 0);
        assert_eq!(cost("gemini", "gemini-2.5-flash", &u), 496_000);
    }

    #[test]
    fn gemini_flash_lite_is_not_priced_as_flash() {
        // 1,000,000 × $0.10 = $0.10
        assert_eq!(
            cost("gemini", "gemini-2.5-flash-lite", &Usage::new(1_000_000, 0)),
            100_000_000
        );
    }

    #[test]
    fn xai_grok_prices_input_and_output() {
        // grok-4: $3 in, $15 out. 2,000 × 3 + 1,000 × 15 = 21,000 µ$
        assert_eq!(
            cost("xai", "grok-4-0709", &Usage::new(2_000, 1_000)),
            21_000_000
        );
    }

    #[test]
    fn groq_prices_llama() {
        // llama-3.3-70b-versatile: $0.59 in, $0.79 out. 1,000 × 0.59 + 1,000 × 0.79 = 1,380 µ$
        assert_eq!(
            cost("groq", "llama-3.3-70b-versatile", &Usage::new(1_000, 1_000)),
            1_380_000
        );
    }

    #[test]
    fn mistral_without_cache_price_bills_cached_tokens_as_input() {
        // mistral-small: $0.10 in, $0.30 out; 500 cached tokens still cost $0.10/M.
        // 1,000 × 0.10 + 1,000 × 0.30 = 400 µ$
        let u = usage(1_000, 1_000, 500, 0, 0);
        assert_eq!(cost("mistral", "mistral-small-latest", &u), 400_000);
    }

    #[test]
    fn deepseek_bills_cache_hits_and_misses_apart() {
        // deepseek-chat: $0.27 miss, $0.07 hit, $1.10 out.
        // 600 × 0.27 + 400 × 0.07 + 100 × 1.10 = 162 + 28 + 110 = 300 µ$
        let u = usage(1_000, 100, 400, 0, 0);
        assert_eq!(cost("deepseek", "deepseek-chat", &u), 300_000);
    }

    #[test]
    fn openrouter_passes_the_vendor_price_through() {
        let u = Usage::new(1_000, 1_000);
        assert_eq!(
            cost("openrouter", "anthropic/claude-haiku-4-5", &u),
            cost("anthropic", "claude-haiku-4-5", &u)
        );
        assert!(PriceTable::embedded()
            .cost_of(&u, "openrouter", "unknown-vendor/x")
            .is_none());
    }

    #[test]
    fn separate_reasoning_price_applies_only_to_reasoning_tokens() {
        let price = ModelPrice::new(1.0, 2.0).with_reasoning(10.0);
        // 100 × $2/M + 50 × $10/M = 200 + 500 = 700 µ$
        let u = usage(0, 150, 0, 0, 50);
        assert_eq!(price.cost(&u).nanos(), 700_000);
    }

    #[test]
    fn cache_counts_larger_than_input_never_underflow() {
        let price = ModelPrice::new(1.0, 1.0).with_cache_read(0.5);
        let u = usage(10, 0, 50, 0, 0);
        // The 10 input tokens are all inside the 50 cached ones: 50 × $0.5/M = 25 µ$.
        assert_eq!(price.cost(&u).nanos(), 25_000);
    }

    #[test]
    fn responses_and_azure_bill_like_openai_unless_overridden() {
        let u = usage(1_000_000, 1_000_000, 0, 0, 0);
        let openai = cost("openai", "gpt-4o-mini", &u);
        for provider in ["openai-responses", "azure", "azure-responses"] {
            assert_eq!(cost(provider, "gpt-4o-mini", &u), openai, "{provider}");
        }
        // An Azure deployment named after its model takes that model's row.
        assert_eq!(cost("azure", "gpt-4o-mini-eastus", &u), openai);
        // A row of the provider's own wins over the shared one.
        let overrides = PriceTable::from_toml_str(
            "[[price]]\nprovider = \"azure\"\nmodel = \"gpt-4o-mini\"\ninput = 0.5\noutput = 0.5\nsource = \"contract\"\ndate = \"2026-11-30\"\n",
            "test",
        )
        .unwrap();
        let table = PriceTable::embedded().clone().merged(overrides);
        assert_eq!(
            table.cost_of(&u, "azure", "gpt-4o-mini").unwrap().nanos(),
            1_000_000_000
        );
        assert_eq!(
            table
                .cost_of(&u, "azure-responses", "gpt-4o-mini")
                .unwrap()
                .nanos(),
            openai
        );
    }

    #[test]
    fn bedrock_prices_gpt_oss_on_both_of_its_endpoints() {
        let u = usage(1_000_000, 1_000_000, 0, 0, 0);
        // $0.15 in + $0.60 out per million
        assert_eq!(cost("bedrock", "openai.gpt-oss-120b-1:0", &u), 750_000_000);
        assert_eq!(
            cost("bedrock-responses", "openai.gpt-oss-120b", &u),
            750_000_000
        );
    }

    #[test]
    fn self_hosted_servers_price_every_model_at_zero_and_say_why() {
        let u = usage(1_000_000, 1_000_000, 0, 0, 0);
        for (provider, model) in [("ollama", "llama3.2:3b"), ("vllm", "Qwen/Qwen3-8B")] {
            let price = PriceTable::embedded().price(provider, model).unwrap();
            assert_eq!(
                price.note.as_deref(),
                Some("self-hosted: no per-token charge")
            );
            assert_eq!(cost(provider, model, &u), 0, "{provider}:{model}");
        }
        // A generic endpoint may be anyone's, free or not: no price is guessed for it.
        assert!(PriceTable::embedded()
            .price("openai-compatible", "my-model")
            .is_none());
    }

    #[test]
    fn together_bills_input_and_output_per_token() {
        // gpt-oss-120b: $0.15 in, $0.60 out per million.
        let u = Usage::new(1_000_000, 1_000_000);
        assert_eq!(cost("together", "openai/gpt-oss-120b", &u), 750_000_000);
        // The 20b model is not priced as the 120b one, nor the other way round.
        assert_eq!(cost("together", "openai/gpt-oss-20b", &u), 250_000_000);
    }

    #[test]
    fn same_as_may_not_name_the_provider_itself() {
        let err = PriceTable::from_toml_str("[same_as]\nazure = \"azure\"\n", "test").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.message().contains("same_as.azure"), "{err}");
    }

    #[test]
    fn context_windows_are_read_and_a_zero_window_is_refused() {
        let table = PriceTable::embedded();
        let window = |p: &str, m: &str| table.price(p, m).unwrap().context_window;
        assert_eq!(window("openai", "gpt-4o-mini"), Some(128_000));
        assert_eq!(window("anthropic", "claude-haiku-4-5"), Some(200_000));
        assert_eq!(window("gemini", "gemini-2.5-flash"), Some(1_048_576));
        // A row for every model of a self-hosted server cannot state one window.
        let named: Vec<_> = table
            .entries()
            .into_iter()
            .filter(|(_, model, _)| !model.is_empty())
            .collect();
        let known = named
            .iter()
            .filter(|(_, _, p)| p.context_window.is_some())
            .count();
        assert!(
            known * 10 >= named.len() * 9,
            "{known} of {} rows have a window",
            named.len()
        );
        let err = PriceTable::from_toml_str(
            "[[price]]\nprovider = \"p\"\nmodel = \"m\"\ninput = 1.0\noutput = 1.0\ncontext_window = 0\nsource = \"s\"\ndate = \"d\"\n",
            "test",
        )
        .unwrap_err();
        assert!(
            err.message().contains("line 1") && err.message().contains("context_window"),
            "{err}"
        );
    }

    #[test]
    fn unknown_model_has_no_price() {
        assert!(PriceTable::embedded()
            .cost_of(&Usage::new(1, 1), "openai", "davinci-001")
            .is_none());
    }

    #[test]
    fn overrides_replace_rows_and_add_new_ones() {
        let overrides = PriceTable::from_toml_str(
            r#"
[[price]]
provider = "openai"
model = "gpt-4o-mini"
input = 1.0
output = 1.0
source = "https://example.com/contract"
date = "2026-11-01"

[[price]]
provider = "local"
model = "llama"
input = 0.0
output = 0.0
source = "https://example.com/self-hosted"
date = "2026-11-01"
"#,
            "test",
        )
        .unwrap();
        let table = PriceTable::embedded().clone().merged(overrides);
        assert_eq!(table.price("openai", "gpt-4o-mini").unwrap().input, 1.0);
        assert_eq!(table.price("openai", "gpt-4o").unwrap().input, 2.5);
        assert!(table.price("local", "llama-3").is_some());
    }

    #[test]
    fn overrides_file_is_read_from_disk() {
        let dir = std::env::temp_dir().join(format!("sb-prices-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("prices.toml");
        std::fs::write(
            &path,
            "[[price]]\nprovider = \"x\"\nmodel = \"m\"\ninput = 1.0\noutput = 2.0\nsource = \"s\"\ndate = \"d\"\n",
        )
        .unwrap();
        let table = PriceTable::with_overrides_file(&path).unwrap();
        assert_eq!(table.price("x", "m1").unwrap().output, 2.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn context_windows_come_from_the_table() {
        let table = PriceTable::embedded();
        assert_eq!(
            table.context_window("openai", "gpt-4.1-mini-2025-04-14"),
            Some(1_047_576)
        );
        assert_eq!(
            table.context_window("anthropic", "claude-sonnet-4-5"),
            Some(200_000)
        );
        // Through a passthrough vendor, by prefix, and unknown where no row matches.
        assert_eq!(
            table.context_window("openrouter", "openai/gpt-4o"),
            Some(128_000)
        );
        assert_eq!(
            table.context_window("mistral", "mistral-large-latest"),
            Some(131_072)
        );
        assert_eq!(table.context_window("nobody", "m"), None);
        // A row without the field has no window.
        let bare = PriceTable::from_toml_str(
            "[[price]]\nprovider = \"x\"\nmodel = \"m\"\ninput = 1.0\noutput = 1.0\nsource = \"s\"\ndate = \"d\"\n",
            "inline",
        )
        .unwrap();
        assert_eq!(bare.context_window("x", "m"), None);
    }

    #[test]
    fn a_zero_context_window_is_refused() {
        let err = PriceTable::from_toml_str(
            "[[price]]\nprovider = \"x\"\nmodel = \"m\"\ninput = 1.0\noutput = 1.0\ncontext_window = 0\nsource = \"s\"\ndate = \"d\"\n",
            "p.toml",
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("context_window"), "{err}");
    }

    #[test]
    fn bad_toml_is_a_config_error_naming_line_and_field() {
        let err = PriceTable::from_toml_str(
            "[[price]]\nprovider = \"x\"\nmodel = \"m\"\ninput = \"cheap\"\noutput = 1.0\nsource = \"s\"\ndate = \"d\"\n",
            "my-prices.toml",
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        let msg = err.to_string();
        assert!(msg.contains("my-prices.toml"), "{msg}");
        assert!(msg.contains("line 4"), "{msg}");
        assert!(msg.contains("input"), "{msg}");
    }

    #[test]
    fn missing_or_unknown_field_is_named() {
        let err = PriceTable::from_toml_str(
            "[[price]]\nprovider = \"x\"\nmodel = \"m\"\ninput = 1.0\noutput = 1.0\nsource = \"s\"\ndate = \"d\"\ncached = 0.1\n",
            "p.toml",
        )
        .unwrap_err();
        assert!(err.to_string().contains("cached"), "{err}");
    }

    #[test]
    fn negative_price_is_refused_with_its_line() {
        let err = PriceTable::from_toml_str(
            "# comment\n[[price]]\nprovider = \"x\"\nmodel = \"m\"\ninput = -1.0\noutput = 1.0\nsource = \"s\"\ndate = \"d\"\n",
            "p.toml",
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.message().contains("line 2"), "{err}");
        assert!(err.message().contains("`input`"), "{err}");
    }
}
