//! Gateway settings read from TOML: the server, the providers and the routes.
//!
//! A route is a model alias that clients ask for, mapped to an ordered list of
//! `provider:model` targets with optional retry, breaker, timeout, deadline, budget and hedge
//! settings. Keys never appear in the file: a provider names the environment variable that
//! holds its key (`api_key_env`), and the server names the variables holding the gateway's
//! own bearer keys (`api_keys_env`).
//!
//! ```toml
//! [server]
//! port = 8080
//!
//! [providers.openai]
//! api_key_env = "OPENAI_API_KEY"
//!
//! [routes.fast]
//! targets = ["openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest"]
//! timeout_ms = 30000
//! retry = { max_retries = 2 }
//! ```
//!
//! [`Settings::from_toml_str`] parses and validates; every problem names the field at fault
//! and the fix. Unknown fields are rejected, so a misspelt setting never silently does
//! nothing. [`build`] turns settings into client stacks.

pub mod build;
pub mod check;
mod server;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::middleware::balance::check_tier;
use crate::middleware::{Affinity, AffinityKey, CommitPoint, Strategy};
use crate::providers::known_providers;
use crate::types::ModelRef;

/// Everything a gateway needs: server, providers and routes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where and how the gateway listens.
    #[serde(default)]
    pub server: ServerSettings,
    /// Per-provider base URL and key variable, by provider name.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSettings>,
    /// Model aliases that clients ask for, by alias.
    #[serde(default)]
    pub routes: BTreeMap<String, RouteSettings>,
    /// Where breaker state lives; absent means in each process (see [`StateSettings`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateSettings>,
}

/// The `[state]` table: breaker state shared by several gateways through Redis (needs the
/// `redis` feature, which the `switchboard` binary has).
///
/// ```toml
/// [state]
/// redis_url_env = "SWITCHBOARD_REDIS_URL"   # the variable holding redis://[:password@]host:port/db
/// key_prefix = "switchboard:prod:"
/// ```
///
/// Gateways with the same Redis and `key_prefix` share every route's breakers; see
/// the `state::redis` module (feature `redis`) for what happens when Redis is unreachable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSettings {
    /// The environment variable holding the Redis URL (never the URL itself: it may hold a
    /// password).
    pub redis_url_env: String,
    /// The prefix of every key (default `switchboard:`).
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// How long an untouched record lives, in ms (default 3 600 000: one hour).
    #[serde(default = "default_state_ttl_ms")]
    pub ttl_ms: u64,
    /// How long one Redis command may take before the gateway uses local state, in ms
    /// (default 250).
    #[serde(default = "default_state_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_key_prefix() -> String {
    "switchboard:".to_owned()
}

fn default_state_ttl_ms() -> u64 {
    3_600_000
}

fn default_state_timeout_ms() -> u64 {
    250
}

/// The `[server]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// The address to bind (default `127.0.0.1`). A non-loopback address needs `api_keys_env`.
    pub host: String,
    /// The port to bind (default 8080; 0 picks a free one).
    pub port: u16,
    /// Names of environment variables, each holding one bearer key clients must present.
    /// Empty means no authentication, which is allowed only on a loopback address.
    pub api_keys_env: Vec<String>,
    /// The largest request body accepted, in bytes (default 4 MiB).
    pub max_body_bytes: usize,
    /// How long shutdown waits for in-flight requests and streams, in ms (default 10 000).
    pub shutdown_grace_ms: u64,
    /// Whether clients may ask for `provider:model` directly instead of an alias (default
    /// false: only the configured routes, with their budgets, are served).
    pub allow_direct_models: bool,
    /// The providers a direct `provider:model` may name (default: every provider
    /// Switchboard knows); needs `allow_direct_models`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_providers: Option<Vec<String>>,
    /// The behaviours every direct model gets, as a route's (`[server.direct]`): timeouts,
    /// retry, breaker, and one budget shared by every direct request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct: Option<DirectSettings>,
    /// How long a client may take to send a request's headers, in ms, counted from its
    /// connection (or from the first byte of a later request on it) (default 10 000).
    pub header_read_timeout_ms: u64,
    /// How long a client may take to send a request's whole body, in ms, counted from the
    /// end of its headers (default 30 000).
    pub body_read_timeout_ms: u64,
    /// How long a kept-alive connection may wait for its next request, in ms (default
    /// 60 000).
    pub idle_timeout_ms: u64,
    /// The most connections open at once (default 512); further clients wait in the
    /// listen queue. Kept below the process's open-file limit.
    pub max_connections: usize,
}

impl Default for ServerSettings {
    fn default() -> ServerSettings {
        ServerSettings {
            host: "127.0.0.1".to_owned(),
            port: 8080,
            api_keys_env: Vec::new(),
            max_body_bytes: 4 * 1024 * 1024,
            shutdown_grace_ms: 10_000,
            allow_direct_models: false,
            direct_providers: None,
            direct: None,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            max_connections: 512,
        }
    }
}

/// The `[server.direct]` table: what governs a `provider:model` asked for directly, as a
/// route's settings govern an alias. The budget is one, shared by every direct request.
///
/// ```toml
/// [server]
/// allow_direct_models = true
/// direct_providers = ["openai", "anthropic"]
///
/// [server.direct]
/// timeout_ms = 30000
/// budget = { max_cost_usd = 5.0 }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectSettings {
    /// Limit on each attempt, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Limit on a stream's first token per attempt, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_token_timeout_ms: Option<u64>,
    /// Limit on the whole request, retries included, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// Retries of the one target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySettings>,
    /// A circuit breaker per direct model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerSettings>,
    /// Spending limits shared by every direct request, whatever model it names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetSettings>,
}

impl DirectSettings {
    /// Returns the route settings a direct request for `spec` is served with.
    pub fn route_for(&self, spec: &str) -> RouteSettings {
        RouteSettings {
            targets: vec![spec.to_owned()],
            timeout_ms: self.timeout_ms,
            first_token_timeout_ms: self.first_token_timeout_ms,
            deadline_ms: self.deadline_ms,
            retry: self.retry.clone(),
            breaker: self.breaker.clone(),
            budget: self.budget.clone(),
            ..RouteSettings::default()
        }
    }
}

/// A `[providers.<name>]` table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// The base URL, following the provider's SDK convention (OpenAI-family URLs include
    /// `/v1`); when absent, the environment or the provider's default is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The environment variable holding the key; when absent, the provider's usual
    /// variables are read (`SWITCHBOARD_<NAME>_API_KEY`, then e.g. `OPENAI_API_KEY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
}

/// A `[routes.<alias>]` table.
///
/// A route with one tier lists its `targets` (with an optional `strategy` and `weights`);
/// a route with several lists `tiers` instead, and once parsed its `targets` holds every
/// tier's targets in order. See docs/routing.md.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSettings {
    /// The targets, `provider:model` each: tried in order, or spread by `strategy`. With
    /// `tiers`, every tier's targets in order (filled in when the settings are parsed).
    #[serde(default)]
    pub targets: Vec<String>,
    /// How the targets share requests: `ordered` (the default), `weighted`, `least_busy`
    /// or `latency` (see [`Strategy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// One positive weight per target, for `strategy = "weighted"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<f64>>,
    /// Tiers of targets, each with its own strategy: the next tier is tried only when every
    /// target of the one before failed. Instead of `targets`, `strategy` and `weights`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<TierSettings>,
    /// Pins each conversation to one target, so its prompt cache is read (see
    /// [`AffinitySettings`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<AffinitySettings>,
    /// Limit on each attempt at a target, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Limit on a stream's first token per attempt, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_token_timeout_ms: Option<u64>,
    /// Limit on the silence between two events of a stream, per attempt, in ms (without
    /// it, only `deadline_ms` or the transport's 120 s idle limit ends a stalled stream).
    /// Before the stream's first content event the attempt fails as a timeout and the next
    /// target is tried; after it, the stream ends interrupted with its partial answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_idle_timeout_ms: Option<u64>,
    /// Limit on the whole request, every target and retry included, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// Retries per target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySettings>,
    /// A circuit breaker per target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerSettings>,
    /// Spending limits shared by every request of the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetSettings>,
    /// Races the next target when the current one is slow, instead of waiting for it to fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hedge: Option<HedgeSettings>,
    /// Where a stream commits to a target, for the chain and each target's retries:
    /// `headers`, `first_event` or `first_content` (the default). See [`CommitPoint`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_point: Option<CommitPoint>,
    /// Continues a stream cut after its commit point on the next target that accepts a
    /// prefill (default `false`); see
    /// [`FallbackClientBuilder::continuation`](crate::middleware::FallbackClientBuilder::continuation).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continuation: bool,
}

/// One of a route's `tiers`: `{ targets = [...], strategy = "...", weights = [...] }`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierSettings {
    /// The tier's targets, `provider:model` each.
    pub targets: Vec<String>,
    /// How the tier's targets share requests (default `ordered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// One positive weight per target, for `strategy = "weighted"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<f64>>,
}

/// `affinity`: prompt-cache affinity.
///
/// ```toml
/// affinity = { keys = ["header:x-session-id", "prompt_cache_key", "prefix"], ttl_ms = 3600000 }
/// ```
///
/// The first key a request carries names its conversation: `header:<name>` (a session
/// header), `prompt_cache_key` and `user` (OpenAI fields), `metadata.user_id` (Anthropic's),
/// `prefix` (a hash of the tools, system prompt and first message; every request has one).
/// A request with none of them is routed unpinned, with a warning logged once. With
/// `[state]`, pins are shared through Redis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AffinitySettings {
    /// Where conversation ids come from, tried in order (default `prompt_cache_key`,
    /// `metadata.user_id`, `user`, `prefix`).
    pub keys: Vec<String>,
    /// How long a pin lives, in ms (default 3 600 000: one hour).
    pub ttl_ms: u64,
}

impl Default for AffinitySettings {
    fn default() -> AffinitySettings {
        AffinitySettings {
            keys: AffinityKey::defaults()
                .iter()
                .map(ToString::to_string)
                .collect(),
            ttl_ms: 3_600_000,
        }
    }
}

impl AffinitySettings {
    /// Parses the keys.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the first key that is not
    /// one (as `keys[i]`).
    pub fn parsed_keys(&self) -> Result<Vec<AffinityKey>> {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                key.parse::<AffinityKey>().map_err(|e| {
                    Error::config(
                        format!("`affinity.keys[{i}]`: {}", e.message()),
                        e.fix().unwrap_or("see docs/routing.md").to_owned(),
                    )
                })
            })
            .collect()
    }
}

impl RouteSettings {
    /// Returns the route's tiers: `tiers` when set, otherwise one tier of `targets` with
    /// the route's `strategy` and `weights`.
    pub fn tier_list(&self) -> Vec<TierSettings> {
        if self.tiers.is_empty() {
            vec![TierSettings {
                targets: self.targets.clone(),
                strategy: self.strategy,
                weights: self.weights.clone(),
            }]
        } else {
            self.tiers.clone()
        }
    }

    /// Says whether the route needs a balancer rather than a plain fallback chain: tiers,
    /// a strategy other than `ordered`, or affinity.
    pub fn is_balanced(&self) -> bool {
        !self.tiers.is_empty()
            || self.strategy.is_some_and(|s| s != Strategy::Ordered)
            || self.affinity.is_some()
    }

    /// Fills `targets` with every tier's targets when only `tiers` was written.
    fn fill_targets(&mut self) {
        if self.targets.is_empty() && !self.tiers.is_empty() {
            self.targets = self
                .tiers
                .iter()
                .flat_map(|t| t.targets.iter().cloned())
                .collect();
        }
    }
}

/// `retry`: full-jitter exponential backoff per target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    /// Retries after the first attempt (default 2).
    pub max_retries: u32,
    /// The first backoff ceiling, in ms (default 200).
    pub base_delay_ms: u64,
    /// The largest backoff, in ms (default 10 000).
    pub max_delay_ms: u64,
    /// The longest `Retry-After` honoured, in ms (default 30 000); longer waits move on.
    pub max_retry_after_ms: u64,
}

impl Default for RetrySettings {
    fn default() -> RetrySettings {
        RetrySettings {
            max_retries: 2,
            base_delay_ms: 200,
            max_delay_ms: 10_000,
            max_retry_after_ms: 30_000,
        }
    }
}

/// `breaker`: stops calling a target that keeps failing, for a cooldown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerSettings {
    /// Consecutive failures that open the breaker (default 5).
    pub consecutive_failures: u32,
    /// How long it stays open before a trial call, in ms (default 30 000).
    pub cooldown_ms: u64,
    /// The longest cooldown after repeated failed trials, in ms (default: no growth).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cooldown_ms: Option<u64>,
}

impl Default for BreakerSettings {
    fn default() -> BreakerSettings {
        BreakerSettings {
            consecutive_failures: 5,
            cooldown_ms: 30_000,
            max_cooldown_ms: None,
        }
    }
}

/// `budget`: limits shared by every request of a route, for the gateway's lifetime.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSettings {
    /// The most US dollars the route may spend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
    /// The most tokens (input plus output) the route may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// The most attempts the route may make.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_trials: Option<u64>,
}

/// `hedge`: after `delay_ms` without an answer, the next target is raced against the first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HedgeSettings {
    /// A fixed delay before racing the next target, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Instead of a fixed delay, the observed latency percentile (e.g. 0.95).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentile: Option<f64>,
}

impl Settings {
    /// Reads and validates a TOML file.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when the file cannot be read, is not
    /// valid TOML, has an unknown field, or fails [`Settings::validate`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Settings> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(
                format!("config: cannot read `{}`: {e}", path.display()),
                "check the path given to --config",
            )
        })?;
        Settings::from_toml_str(&text)
    }

    /// Parses and validates TOML text.
    ///
    /// # Errors
    /// As [`Settings::from_file`].
    pub fn from_toml_str(text: &str) -> Result<Settings> {
        let mut settings: Settings = toml::from_str(text).map_err(|e| {
            let detail = e.message().to_owned();
            let place = e
                .span()
                .map(|span| {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            let fix = if detail.contains("unknown field") {
                "remove the field or correct its spelling; docs/gateway.md lists every field"
            } else {
                "fix the value as the message says; docs/gateway.md shows a full example"
            };
            Error::config(format!("config{place}: {detail}"), fix)
        })?;
        settings
            .routes
            .values_mut()
            .for_each(RouteSettings::fill_targets);
        settings.validate()?;
        Ok(settings)
    }

    /// Checks every field; the error names the field at fault and how to fix it.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for a bad host, a non-loopback host
    /// without `api_keys_env`, a bad variable name or base URL, a provider no client knows,
    /// a route without targets or with a target that is not `provider:model`, and
    /// out-of-range numbers.
    pub fn validate(&self) -> Result<()> {
        let server = &self.server;
        if !is_loopback_host(&server.host) {
            if server.host.parse::<IpAddr>().is_err() {
                return Err(bad(
                    "server.host",
                    &server.host,
                    "write an IP address such as `127.0.0.1` or `0.0.0.0`",
                ));
            }
            if server.api_keys_env.is_empty() {
                return Err(Error::config(
                    format!(
                        "config: `server.host` = `{}` is not a loopback address, and `server.api_keys_env` is empty",
                        server.host
                    ),
                    "list the environment variables holding the gateway's keys in `server.api_keys_env`, or bind 127.0.0.1",
                ));
            }
        }
        for (i, name) in server.api_keys_env.iter().enumerate() {
            check_env_name(&format!("server.api_keys_env[{i}]"), name)?;
        }
        check_span("server.shutdown_grace_ms", Some(server.shutdown_grace_ms))?;
        server::validate(server, &known_providers())?;
        if server.max_body_bytes < 1024 {
            return Err(bad(
                "server.max_body_bytes",
                &server.max_body_bytes.to_string(),
                "allow at least 1024 bytes, e.g. 4194304 (4 MiB)",
            ));
        }
        let known = known_providers();
        for (name, provider) in &self.providers {
            if !known.contains(&name.as_str()) {
                return Err(Error::config(
                    format!("config: `providers.{name}` is not a provider Switchboard knows"),
                    format!("name the table after one of: {}", known.join(", ")),
                ));
            }
            if let Some(url) = &provider.base_url {
                let ok = reqwest::Url::parse(url)
                    .map(|u| matches!(u.scheme(), "http" | "https"))
                    .unwrap_or(false);
                if !ok {
                    return Err(bad(
                        &format!("providers.{name}.base_url"),
                        url,
                        "write a full http(s) URL, e.g. `https://api.openai.com/v1`",
                    ));
                }
            }
            if let Some(var) = &provider.api_key_env {
                check_env_name(&format!("providers.{name}.api_key_env"), var)?;
            }
        }
        for (alias, route) in &self.routes {
            validate_route(alias, route, &known)?;
        }
        if let Some(state) = &self.state {
            validate_state(state)?;
        }
        Ok(())
    }

    /// Returns the route for `alias`, if one is configured.
    pub fn route(&self, alias: &str) -> Option<&RouteSettings> {
        self.routes.get(alias)
    }
}

fn validate_route(alias: &str, route: &RouteSettings, known: &[&str]) -> Result<()> {
    if alias.is_empty() || alias.contains(':') || alias.chars().any(char::is_whitespace) {
        return Err(Error::config(
            format!("config: route alias `{alias}` may not be empty or contain `:` or spaces"),
            "name routes with plain words such as `fast` or `gpt-4o-mini` (a colon means provider:model)",
        ));
    }
    validate_route_at(&format!("routes.{alias}"), route, known)
}

/// Checks a route's settings; errors name fields under `prefix` (`routes.fast`,
/// `server.direct`).
fn validate_route_at(prefix: &str, route: &RouteSettings, known: &[&str]) -> Result<()> {
    let at = |field: &str| format!("{prefix}.{field}");
    validate_tiers(prefix, route)?;
    let tiers = route.tier_list();
    let specs = tiers.iter().enumerate().flat_map(|(t, tier)| {
        tier.targets.iter().enumerate().map(move |(i, spec)| {
            let field = if route.tiers.is_empty() {
                format!("{prefix}.targets[{i}]")
            } else {
                format!("{prefix}.tiers[{t}].targets[{i}]")
            };
            (field, spec)
        })
    });
    let target_count = tiers.iter().map(|t| t.targets.len()).sum::<usize>();
    for (field, target) in specs {
        let parsed = target
            .contains(':')
            .then(|| ModelRef::parse(target).ok())
            .flatten();
        let Some(model) = parsed else {
            return Err(bad(&field, target, "write it as `openai:gpt-4o-mini`"));
        };
        if !known.contains(&model.provider()) {
            return Err(Error::config(
                format!(
                    "config: `{field}` = `{target}` names provider `{}`, which Switchboard does not know",
                    model.provider()
                ),
                format!("use one of: {}", known.join(", ")),
            ));
        }
    }
    let positive = |field: &str, value: Option<u64>| match value {
        Some(0) => Err(bad(
            &at(field),
            "0",
            "give a positive number of milliseconds, or remove it",
        )),
        _ => Ok(()),
    };
    positive("timeout_ms", route.timeout_ms)?;
    positive("first_token_timeout_ms", route.first_token_timeout_ms)?;
    positive("stream_idle_timeout_ms", route.stream_idle_timeout_ms)?;
    positive("deadline_ms", route.deadline_ms)?;
    let spans = [
        ("timeout_ms", route.timeout_ms),
        ("first_token_timeout_ms", route.first_token_timeout_ms),
        ("stream_idle_timeout_ms", route.stream_idle_timeout_ms),
        ("deadline_ms", route.deadline_ms),
        (
            "retry.base_delay_ms",
            route.retry.as_ref().map(|r| r.base_delay_ms),
        ),
        (
            "retry.max_delay_ms",
            route.retry.as_ref().map(|r| r.max_delay_ms),
        ),
        (
            "retry.max_retry_after_ms",
            route.retry.as_ref().map(|r| r.max_retry_after_ms),
        ),
        (
            "breaker.cooldown_ms",
            route.breaker.as_ref().map(|b| b.cooldown_ms),
        ),
        (
            "breaker.max_cooldown_ms",
            route.breaker.as_ref().and_then(|b| b.max_cooldown_ms),
        ),
        (
            "hedge.delay_ms",
            route.hedge.as_ref().and_then(|h| h.delay_ms),
        ),
    ];
    for (field, value) in spans {
        check_span(&at(field), value)?;
    }
    if let Some(retry) = &route.retry {
        if retry.max_retries > 10 {
            return Err(bad(
                &at("retry.max_retries"),
                &retry.max_retries.to_string(),
                "use at most 10 retries; add fallback targets instead",
            ));
        }
        if retry.base_delay_ms > retry.max_delay_ms {
            return Err(bad(
                &at("retry.base_delay_ms"),
                &retry.base_delay_ms.to_string(),
                "keep base_delay_ms at or below max_delay_ms",
            ));
        }
    }
    if let Some(breaker) = &route.breaker {
        if breaker.consecutive_failures == 0 {
            return Err(bad(
                &at("breaker.consecutive_failures"),
                "0",
                "use 1 or more",
            ));
        }
        if breaker.cooldown_ms == 0 {
            return Err(bad(
                &at("breaker.cooldown_ms"),
                "0",
                "give a positive cooldown, e.g. 30000",
            ));
        }
    }
    if let Some(budget) = &route.budget {
        if let Some(usd) = budget.max_cost_usd {
            if !(usd.is_finite() && usd > 0.0) {
                return Err(bad(
                    &at("budget.max_cost_usd"),
                    &usd.to_string(),
                    "give a positive amount, e.g. 5.0",
                ));
            }
        }
        if budget.max_tokens == Some(0) || budget.max_trials == Some(0) {
            return Err(Error::config(
                format!("config: `{}` has a zero limit", at("budget")),
                "give positive limits, or remove the ones you do not want",
            ));
        }
        if budget.max_cost_usd.is_none()
            && budget.max_tokens.is_none()
            && budget.max_trials.is_none()
        {
            return Err(Error::config(
                format!("config: `{}` sets no limit", at("budget")),
                "set max_cost_usd, max_tokens or max_trials, or remove the table",
            ));
        }
    }
    if route.continuation && route.hedge.is_some() {
        return Err(Error::config(
            format!(
                "config: `{}` is set on a hedged route; only fallback routes continue streams",
                at("continuation")
            ),
            "remove `continuation`, or remove the hedge table to use a fallback chain",
        ));
    }
    if route.continuation && target_count < 2 {
        return Err(Error::config(
            format!(
                "config: `{}` needs a second target to continue a stream on",
                at("continuation")
            ),
            "add a target that accepts a prefill (e.g. an `anthropic:` model), or remove `continuation`",
        ));
    }
    if let Some(hedge) = &route.hedge {
        if target_count < 2 {
            return Err(Error::config(
                format!(
                    "config: `{}` needs at least two targets to race",
                    at("hedge")
                ),
                "add a second target or remove the hedge table",
            ));
        }
        match (hedge.delay_ms, hedge.percentile) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(Error::config(
                    format!(
                        "config: `{}` must set exactly one of delay_ms and percentile",
                        at("hedge")
                    ),
                    "write `hedge = { delay_ms = 500 }` or `hedge = { percentile = 0.95 }`",
                ))
            }
            (_, Some(p)) if !(p > 0.0 && p < 1.0) => {
                return Err(bad(
                    &at("hedge.percentile"),
                    &p.to_string(),
                    "give a fraction between 0 and 1, e.g. 0.95",
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks `targets`/`tiers`, strategies, weights and affinity, naming the field at fault.
fn validate_tiers(prefix: &str, route: &RouteSettings) -> Result<()> {
    let shape = |at: &str, len: usize, strategy: Option<Strategy>, weights: Option<&[f64]>| {
        check_tier(len, strategy.unwrap_or_default(), weights).map_err(|p| {
            let field = format!("{at}{}", p.field);
            Error::config(format!("config: `{field}` {}", p.problem), p.fix).with_code(field)
        })
    };
    if route.tiers.is_empty() {
        shape(
            prefix,
            route.targets.len(),
            route.strategy,
            route.weights.as_deref(),
        )?;
    } else {
        for (field, set) in [
            ("strategy", route.strategy.is_some()),
            ("weights", route.weights.is_some()),
        ] {
            if set {
                return Err(Error::config(
                    format!("config: `{prefix}.{field}` is set next to `tiers`"),
                    format!("give each tier its own `{field}` inside `tiers = [{{ targets = [...], {field} = ... }}]`"),
                )
                .with_code(format!("{prefix}.{field}")));
            }
        }
        let flat = route.tiers.iter().flat_map(|t| &t.targets);
        if !route.targets.is_empty() && route.targets.iter().ne(flat) {
            return Err(Error::config(
                format!("config: `{prefix}` sets both `targets` and `tiers`"),
                "list the targets inside `tiers` only",
            )
            .with_code(format!("{prefix}.targets")));
        }
        for (t, tier) in route.tiers.iter().enumerate() {
            shape(
                &format!("{prefix}.tiers[{t}]"),
                tier.targets.len(),
                tier.strategy,
                tier.weights.as_deref(),
            )?;
        }
    }
    if let Some(affinity) = &route.affinity {
        let at = format!("{prefix}.affinity");
        let mut keys = Vec::with_capacity(affinity.keys.len());
        for (i, key) in affinity.keys.iter().enumerate() {
            let field = format!("{at}.keys[{i}]");
            keys.push(key.parse::<AffinityKey>().map_err(|e| {
                Error::config(
                    format!("config: `{field}`: {}", e.message()),
                    e.fix().unwrap_or("see docs/routing.md").to_owned(),
                )
                .with_code(field.clone())
            })?);
        }
        if let Some((problem, fix)) = Affinity::new(keys).problem() {
            return Err(Error::config(format!("config: `{at}.keys` {problem}"), fix)
                .with_code(format!("{at}.keys")));
        }
        if affinity.ttl_ms < 1000 {
            return Err(bad(
                &format!("{at}.ttl_ms"),
                &affinity.ttl_ms.to_string(),
                "keep pins at least 1000 ms, e.g. 3600000 (one hour)",
            ));
        }
    }
    Ok(())
}

fn validate_state(state: &StateSettings) -> Result<()> {
    if !cfg!(feature = "redis") {
        return Err(Error::config(
            "config: `[state]` shares breakers through Redis, and this build has no Redis support",
            "use the `switchboard` binary (it has it), build with `--features redis`, or remove `[state]`",
        )
        .with_code("state"));
    }
    if state.redis_url_env.contains("://") {
        // The URL itself, perhaps with a password: never echo it.
        return Err(Error::config(
            "config: `state.redis_url_env` holds a URL, not the name of a variable",
            "put the URL in an environment variable and give its NAME, e.g. `SWITCHBOARD_REDIS_URL`",
        )
        .with_code("state.redis_url_env"));
    }
    check_env_name("state.redis_url_env", &state.redis_url_env)?;
    if state.key_prefix.is_empty() || state.key_prefix.chars().any(char::is_whitespace) {
        return Err(bad(
            "state.key_prefix",
            &state.key_prefix,
            "give a non-empty prefix without spaces, e.g. `switchboard:prod:`",
        ));
    }
    if state.ttl_ms < 1000 {
        return Err(bad(
            "state.ttl_ms",
            &state.ttl_ms.to_string(),
            "keep records at least 1000 ms, e.g. 3600000 (one hour)",
        ));
    }
    if state.timeout_ms == 0 || state.timeout_ms > 10_000 {
        return Err(bad(
            "state.timeout_ms",
            &state.timeout_ms.to_string(),
            "give 1 to 10000 ms, e.g. 250",
        ));
    }
    Ok(())
}

/// The longest span any `*_ms` setting may hold: a week. A longer one is a typo, and
/// adding it to a clock reading could overflow.
const MAX_SPAN_MS: u64 = 7 * 24 * 60 * 60 * 1000;

fn check_span(field: &str, value: Option<u64>) -> Result<()> {
    match value {
        Some(ms) if ms > MAX_SPAN_MS => Err(bad(
            field,
            &ms.to_string(),
            "give at most 604800000 ms (a week)",
        )),
        _ => Ok(()),
    }
}

fn bad(field: &str, value: &str, fix: &str) -> Error {
    let what = if field.contains(".targets[") {
        "is not provider:model"
    } else {
        "is not valid"
    };
    Error::config(format!("config: `{field}` = `{value}` {what}"), fix).with_code(field.to_owned())
}

fn check_env_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(bad(
            field,
            name,
            "give the NAME of an environment variable (letters, digits, `_`), never the key itself",
        ))
    }
}

/// Says whether `host` is a loopback address (`127.0.0.0/8`, `::1` or `localhost`).
pub fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let trimmed = host.trim_start_matches('[').trim_end_matches(']');
    trimmed
        .parse::<IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests;
