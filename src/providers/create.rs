//! [`create_client`]: one string, `provider:model`, to a ready client.
//!
//! The string splits at the first colon (see [`ModelRef`]), the provider picks the wire
//! protocol (OpenAI-compatible vendors are rows of [`openai::profiles`]), and keys and base
//! URLs come from [`ClientOptions`] or, when unset there, from the environment:
//!
//! | provider | key variables, first set wins | base URL variables |
//! | --- | --- | --- |
//! | `openai` | `SWITCHBOARD_OPENAI_API_KEY`, `OPENAI_API_KEY` | `SWITCHBOARD_OPENAI_BASE_URL`, `OPENAI_BASE_URL` |
//! | `anthropic` | `SWITCHBOARD_ANTHROPIC_API_KEY`, `ANTHROPIC_API_KEY` | `SWITCHBOARD_ANTHROPIC_BASE_URL`, `ANTHROPIC_BASE_URL` |
//! | `gemini` (alias `google`) | `SWITCHBOARD_GEMINI_API_KEY`, `GEMINI_API_KEY`, `GOOGLE_API_KEY` | `SWITCHBOARD_GEMINI_BASE_URL` |
//! | every other OpenAI-compatible vendor | `SWITCHBOARD_<NAME>_API_KEY`, then the vendor's usual name | `SWITCHBOARD_<NAME>_BASE_URL`, then the vendor's usual name |
//!
//! `SWITCHBOARD_CASSETTE` (`record:PATH`, `replay:PATH` or `auto:PATH`) puts a
//! [`Cassette`] under every client made here, unless [`ClientOptions::cassette`] set one; a
//! replaying cassette needs no API key. See [`cassette`](crate::providers::cassette).
//!
//! Base URLs follow each official SDK: OpenAI-family URLs include the version
//! (`http://127.0.0.1:8100/v1`); Anthropic and Gemini URLs are the root the client appends
//! `/v1/messages` and `/v1beta/models/…` to.

use std::fmt;
use std::sync::Arc;

use crate::client::{ChatClient, DynClient};
use crate::error::{Error, Result};
use crate::middleware::{RetryClient, RetryPolicy};
use crate::providers::anthropic::AnthropicClient;
use crate::providers::cassette::{self, Cassette, CassetteMode};
use crate::providers::gemini::GeminiClient;
use crate::providers::http::HttpSettings;
use crate::providers::openai::{self, OpenAiClient};
use crate::types::ModelRef;

type EnvFn = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Explicit settings for [`create_client_with`]; anything unset is read from the environment.
#[derive(Clone)]
pub struct ClientOptions {
    api_key: Option<secrecy::SecretString>,
    base_url: Option<String>,
    http: HttpSettings,
    keep_raw: bool,
    retry: Option<RetryPolicy>,
    env: EnvFn,
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("base_url", &self.base_url)
            .field("http", &self.http)
            .field("keep_raw", &self.keep_raw)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            api_key: None,
            base_url: None,
            http: HttpSettings::default(),
            keep_raw: false,
            retry: Some(RetryPolicy::default()),
            env: Arc::new(|name| std::env::var(name).ok()),
        }
    }
}

impl ClientOptions {
    /// Creates options that read everything from the environment.
    pub fn new() -> ClientOptions {
        ClientOptions::default()
    }

    /// Sets the key explicitly (it is never logged).
    #[must_use]
    pub fn api_key(mut self, key: impl Into<String>) -> ClientOptions {
        self.api_key = Some(secrecy::SecretString::from(key.into()));
        self
    }

    /// Sets the base URL explicitly.
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> ClientOptions {
        self.base_url = Some(url.into());
        self
    }

    /// Sets timeouts and limits.
    #[must_use]
    pub fn http_settings(mut self, http: HttpSettings) -> ClientOptions {
        self.http = http;
        self
    }

    /// Records every exchange to, or replays it from, `cassette` (overrides
    /// `SWITCHBOARD_CASSETTE`). Clients given the same `Arc` share its replay cursors.
    #[must_use]
    pub fn cassette(mut self, cassette: Arc<Cassette>) -> ClientOptions {
        self.http.cassette = Some(cassette);
        self
    }

    /// Keeps each provider's raw JSON in [`ChatResponse::raw`](crate::ChatResponse::raw).
    #[must_use]
    pub fn keep_raw(mut self, keep: bool) -> ClientOptions {
        self.keep_raw = keep;
        self
    }

    /// Sets the retry policy of the default stack; `None` returns the bare provider client
    /// (for callers that assemble their own stack). Default: [`RetryPolicy::default`].
    #[must_use]
    pub fn retry(mut self, policy: Option<RetryPolicy>) -> ClientOptions {
        self.retry = policy;
        self
    }

    /// Wraps a provider client in the default stack.
    fn stack<C: ChatClient + 'static>(&self, client: C) -> DynClient {
        match &self.retry {
            Some(policy) => Arc::new(RetryClient::new(client, policy.clone())),
            None => Arc::new(client),
        }
    }

    /// Reads settings from `env` instead of the process environment (for tests and for
    /// settings held elsewhere).
    #[must_use]
    pub fn env(
        mut self,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> ClientOptions {
        self.env = Arc::new(env);
        self
    }

    fn lookup(&self, names: &[&str]) -> Option<String> {
        names
            .iter()
            .filter_map(|name| (self.env)(name))
            .map(|v| v.trim().to_owned())
            .find(|v| !v.is_empty())
    }

    fn key(&self, names: &[&str]) -> Option<secrecy::SecretString> {
        self.api_key
            .clone()
            .or_else(|| self.lookup(names).map(secrecy::SecretString::from))
    }

    /// Returns the HTTP settings, with the cassette `SWITCHBOARD_CASSETTE` names when none
    /// was set explicitly.
    fn http(&self) -> Result<HttpSettings> {
        let mut http = self.http.clone();
        if http.cassette.is_none() {
            if let Some(spec) = self.lookup(&["SWITCHBOARD_CASSETTE"]) {
                http.cassette = Some(cassette::from_spec(&spec)?);
            }
        }
        Ok(http)
    }

    fn url(&self, names: &[&str]) -> Option<String> {
        self.base_url.clone().or_else(|| self.lookup(names))
    }
}

/// The providers [`create_client`] knows, besides the OpenAI-compatible profiles.
const NATIVE: &[&str] = &["anthropic", "gemini", "google"];

/// Returns every provider name [`create_client`] accepts, sorted.
pub fn known_providers() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = openai::profiles().iter().map(|p| p.name).collect();
    names.extend_from_slice(NATIVE);
    names.sort_unstable();
    names
}

/// Builds a client for `provider:model` with keys and base URLs from the environment.
///
/// The client comes as the default stack: the provider's client inside a [`RetryClient`]
/// with the default [`RetryPolicy`] (see [`ClientOptions::retry`] to change or drop it).
///
/// # Errors
/// [`ErrorKind::Config`](crate::ErrorKind::Config) for an unknown provider, a bare model
/// name whose provider cannot be inferred, or a missing key (the message names the
/// variables to set).
///
/// # Examples
/// ```no_run
/// let client = switchboard::create_client("anthropic:claude-sonnet-4-5")?;
/// # Ok::<_, switchboard::Error>(())
/// ```
pub fn create_client(spec: &str) -> Result<DynClient> {
    create_client_with(spec, &ClientOptions::default())
}

/// Builds a client for `provider:model` with explicit options.
///
/// # Errors
/// As [`create_client`].
pub fn create_client_with(spec: &str, options: &ClientOptions) -> Result<DynClient> {
    let model = ModelRef::parse(spec)?;
    let provider = model.provider();
    let http = options.http()?;
    // A replaying cassette sends nothing, so it needs no key.
    let replaying = http
        .cassette
        .as_ref()
        .is_some_and(|c| c.mode() == CassetteMode::Replay);
    let key_or_placeholder = |names: &[&str]| {
        options
            .key(names)
            .or_else(|| replaying.then(|| secrecy::SecretString::from("cassette-replay")))
    };
    let missing_key = |vars: &[&str]| {
        Error::config(
            format!("no API key for `{provider}`"),
            format!("set {}", join_or(vars)),
        )
    };
    match provider {
        "anthropic" => {
            let keys = ["SWITCHBOARD_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY"];
            let key = key_or_placeholder(&keys).ok_or_else(|| missing_key(&keys))?;
            let mut b = AnthropicClient::builder()
                .model(model.model())
                .api_key(secrecy::ExposeSecret::expose_secret(&key))
                .http_settings(http.clone())
                .keep_raw(options.keep_raw);
            if let Some(url) =
                options.url(&["SWITCHBOARD_ANTHROPIC_BASE_URL", "ANTHROPIC_BASE_URL"])
            {
                b = b.base_url(url);
            }
            Ok(options.stack(b.build()?))
        }
        "gemini" | "google" => {
            let keys = [
                "SWITCHBOARD_GEMINI_API_KEY",
                "GEMINI_API_KEY",
                "GOOGLE_API_KEY",
            ];
            let key = key_or_placeholder(&keys).ok_or_else(|| missing_key(&keys))?;
            let mut b = GeminiClient::builder()
                .model(model.model())
                .api_key(secrecy::ExposeSecret::expose_secret(&key))
                .http_settings(http.clone())
                .keep_raw(options.keep_raw);
            if let Some(url) = options.url(&["SWITCHBOARD_GEMINI_BASE_URL", "GEMINI_BASE_URL"]) {
                b = b.base_url(url);
            }
            Ok(options.stack(b.build()?))
        }
        name => {
            let profile = openai::profile(name).ok_or_else(|| {
                Error::config(
                    format!("unknown provider `{name}`"),
                    format!(
                        "use one of: {}; or `openai-compatible:MODEL` with SWITCHBOARD_OPENAI_COMPATIBLE_BASE_URL set",
                        known_providers().join(", ")
                    ),
                )
            })?;
            let key = key_or_placeholder(profile.key_env);
            if profile.key_required && key.is_none() {
                return Err(missing_key(profile.key_env));
            }
            let mut b = OpenAiClient::builder()
                .profile(profile)
                .model(model.model())
                .http_settings(http.clone())
                .keep_raw(options.keep_raw);
            if let Some(key) = key {
                b = b.api_key(secrecy::ExposeSecret::expose_secret(&key));
            }
            match options.url(profile.base_url_env) {
                Some(url) => b = b.base_url(url),
                None if profile.base_url.is_none() => {
                    return Err(Error::config(
                        format!("`{name}` has no default base URL"),
                        format!("set {}", join_or(profile.base_url_env)),
                    ))
                }
                None => {}
            }
            Ok(options.stack(b.build()?))
        }
    }
}

fn join_or(names: &[&str]) -> String {
    match names {
        [] => "the provider's key".to_owned(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> ClientOptions {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ClientOptions::new().env(move |name| map.get(name).cloned())
    }

    #[test]
    fn missing_key_names_the_variables_to_set() {
        let err = create_client_with("anthropic:claude-sonnet-4-5", &env(&[])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        let fix = err.fix().unwrap();
        assert!(
            fix.contains("SWITCHBOARD_ANTHROPIC_API_KEY") && fix.contains("ANTHROPIC_API_KEY"),
            "{fix}"
        );
    }

    #[test]
    fn switchboard_variable_wins_over_the_standard_one() {
        let opts = env(&[
            ("SWITCHBOARD_OPENAI_API_KEY", "sk-a"),
            ("OPENAI_API_KEY", "sk-b"),
        ]);
        assert_eq!(
            secrecy::ExposeSecret::expose_secret(
                &opts
                    .key(&["SWITCHBOARD_OPENAI_API_KEY", "OPENAI_API_KEY"])
                    .unwrap()
            ),
            "sk-a"
        );
    }

    #[test]
    fn empty_variables_are_skipped() {
        let opts = env(&[("SWITCHBOARD_GEMINI_API_KEY", " "), ("GOOGLE_API_KEY", "g")]);
        assert!(create_client_with("gemini:gemini-2.5-flash", &opts).is_ok());
    }

    #[test]
    fn unknown_provider_lists_the_known_ones() {
        let err = create_client_with("nope:model", &env(&[])).unwrap_err();
        assert!(err.fix().unwrap().contains("anthropic"), "{err}");
    }

    #[test]
    fn every_profile_and_native_provider_builds_from_the_environment() {
        for name in known_providers() {
            let opts = env(&[]).api_key("k").base_url("http://127.0.0.1:9/v1");
            let client = create_client_with(&format!("{name}:m"), &opts).unwrap();
            assert_eq!(client.info().model(), "m", "{name}");
        }
    }

    #[test]
    fn model_ids_with_colons_survive() {
        let opts = env(&[]).base_url("http://127.0.0.1:9/v1");
        let client = create_client_with("ollama:llama3:8b", &opts).unwrap();
        assert_eq!(client.info().model(), "llama3:8b");
        assert_eq!(client.info().provider(), "ollama");
    }

    #[test]
    fn openai_compatible_needs_a_base_url() {
        let err = create_client_with("openai-compatible:m", &env(&[])).unwrap_err();
        assert!(
            err.fix()
                .unwrap()
                .contains("SWITCHBOARD_OPENAI_COMPATIBLE_BASE_URL"),
            "{err}"
        );
    }
}
