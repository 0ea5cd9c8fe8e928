//! What `switchboard check` and the MCP server's `provider_check` tool report: for each
//! provider, where its key would come from (never the key itself), and for each route
//! target, its circuit breaker state as this process sees it, or as the `[state]` store
//! shares it.

use serde::Serialize;

use super::build::{provider_options, BuiltRoute};
use super::Settings;
use crate::cost::PriceTable;
use crate::error::Result;
use crate::middleware::BreakerState;
use crate::providers::{key_status, known_providers, ClientOptions};

/// One provider's key, as found (or not) in the environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyReport {
    /// The provider name.
    pub provider: String,
    /// Where its key is.
    pub key: KeyPresence,
    /// Whether a call could be made: a key is present, or none is needed.
    pub ok: bool,
}

/// Where a provider's key is, without its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyPresence {
    /// Whether one of the variables is set.
    pub present: bool,
    /// The variable that holds it.
    pub set_in: Option<String>,
    /// The variables read, first set wins.
    pub variables: Vec<String>,
    /// Whether the provider needs a key at all (local servers do not).
    pub required: bool,
}

/// One route target's circuit breaker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BreakerReport {
    /// The route alias.
    pub route: String,
    /// The target, as `provider:model`.
    pub target: String,
    /// `closed`, `half-open` or `open (Ns left)`.
    pub state: String,
}

/// Returns the providers to check: `only` when given; else the settings' provider tables
/// and route targets' providers; else, when no config was given, every known provider.
pub fn providers_to_check(settings: &Settings, only: &[String], config_given: bool) -> Vec<String> {
    if !only.is_empty() {
        return only.to_vec();
    }
    let mut names: Vec<String> = settings.providers.keys().cloned().collect();
    for route in settings.routes.values() {
        for target in &route.targets {
            if let Some((p, _)) = target.split_once(':') {
                if !names.iter().any(|n| n == p) {
                    names.push(p.to_owned());
                }
            }
        }
    }
    if names.is_empty() && !config_given {
        names = known_providers().into_iter().map(str::to_owned).collect();
    }
    names
}

/// Reports, for each of `providers`, where its key is under `settings` (a provider table's
/// `api_key_env` applies) and `base`.
///
/// # Errors
/// [`ErrorKind::Config`](crate::ErrorKind::Config) for a provider Switchboard does not know.
pub fn key_reports(
    settings: &Settings,
    providers: &[String],
    base: &ClientOptions,
) -> Result<Vec<KeyReport>> {
    providers
        .iter()
        .map(|name| {
            let options = provider_options(settings, name, base);
            let status = key_status(name, &options)?;
            let ok = status.found_in.is_some() || !status.required;
            Ok(KeyReport {
                provider: name.clone(),
                key: KeyPresence {
                    present: status.found_in.is_some(),
                    set_in: status.found_in,
                    variables: status.variables,
                    required: status.required,
                },
                ok,
            })
        })
        .collect()
}

/// Returns the model a live check asks `provider` for: a route target's, else the cheapest
/// priced one.
pub fn live_model(settings: &Settings, provider: &str) -> Option<String> {
    for route in settings.routes.values() {
        for target in &route.targets {
            if let Some((p, m)) = target.split_once(':') {
                if p == provider {
                    return Some(m.to_owned());
                }
            }
        }
    }
    PriceTable::embedded()
        .entries()
        .into_iter()
        // A row for every model (a self-hosted server's) names none to ask for.
        .filter(|(p, m, _)| *p == provider && !m.is_empty())
        .min_by(|a, b| a.2.input.total_cmp(&b.2.input))
        .map(|(_, m, _)| m.to_owned())
}

/// Lists the breaker state of every target that has a breaker, route by route.
pub fn breaker_reports<'a>(routes: impl IntoIterator<Item = &'a BuiltRoute>) -> Vec<BreakerReport> {
    let mut out = Vec::new();
    for route in routes {
        for target in &route.targets {
            if let Some(state) = target.breaker_state() {
                out.push(BreakerReport {
                    route: route.alias.clone(),
                    target: target.spec.clone(),
                    state: breaker_word(state),
                });
            }
        }
    }
    out
}

/// Like [`breaker_reports`], with each state read where the `[state]` store shares it, so
/// a breaker another process opened shows open (the routes must have been built with that
/// store, [`BuildOptions::state`](super::build::BuildOptions::state)).
pub async fn shared_breaker_reports<'a>(
    routes: impl IntoIterator<Item = &'a BuiltRoute>,
) -> Vec<BreakerReport> {
    let mut out = Vec::new();
    for route in routes {
        for target in &route.targets {
            if let Some(state) = target.breaker_state_shared().await {
                out.push(BreakerReport {
                    route: route.alias.clone(),
                    target: target.spec.clone(),
                    state: breaker_word(state),
                });
            }
        }
    }
    out
}

/// Names a breaker state for people: `closed`, `half-open` or `open (Ns left)`.
pub fn breaker_word(state: BreakerState) -> String {
    match state {
        BreakerState::Closed => "closed".to_owned(),
        BreakerState::HalfOpen => "half-open".to_owned(),
        BreakerState::Open { remaining, .. } => {
            format!("open ({:.0}s left)", remaining.as_secs_f64())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_reports_name_the_variable_never_the_key() {
        let settings = Settings::default();
        let base = ClientOptions::new().env(|name| {
            (name == "SWITCHBOARD_OPENAI_API_KEY").then(|| "sk-secret-value".to_owned())
        });
        let reports = key_reports(
            &settings,
            &["openai".to_owned(), "anthropic".to_owned()],
            &base,
        )
        .unwrap();
        assert!(reports[0].ok);
        assert_eq!(
            reports[0].key.set_in.as_deref(),
            Some("SWITCHBOARD_OPENAI_API_KEY")
        );
        assert!(!reports[1].ok && !reports[1].key.present);
        let text = serde_json::to_string(&reports).unwrap();
        assert!(!text.contains("sk-secret-value"));
    }

    #[test]
    fn providers_default_to_the_configs_then_to_every_known_one() {
        let settings =
            Settings::from_toml_str("[routes.fast]\ntargets = [\"groq:llama\"]\n").unwrap();
        assert_eq!(providers_to_check(&settings, &[], true), vec!["groq"]);
        assert!(providers_to_check(&Settings::default(), &[], false).len() > 5);
        assert!(providers_to_check(&Settings::default(), &[], true).is_empty());
    }

    #[test]
    fn a_live_check_asks_for_a_named_model_never_a_price_rows_empty_prefix() {
        let none = Settings::default();
        assert_eq!(
            live_model(&none, "together").as_deref(),
            Some("openai/gpt-oss-20b")
        );
        // Ollama's only row prices every model; it names none to ask for.
        assert_eq!(live_model(&none, "ollama"), None);
        let routed =
            Settings::from_toml_str("[routes.local]\ntargets = [\"ollama:llama3.2\"]\n").unwrap();
        assert_eq!(live_model(&routed, "ollama").as_deref(), Some("llama3.2"));
    }

    #[test]
    fn unknown_provider_is_a_config_error() {
        let err = key_reports(
            &Settings::default(),
            &["nope".to_owned()],
            &ClientOptions::new(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Config);
    }
}
