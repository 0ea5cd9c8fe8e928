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
//! | `openai-responses` | as `openai` | as `openai` |
//! | `azure`, `azure-responses` | Entra ID token: `SWITCHBOARD_AZURE_OPENAI_AD_TOKEN`, `AZURE_OPENAI_AD_TOKEN`; else key: `SWITCHBOARD_AZURE_OPENAI_API_KEY`, `AZURE_OPENAI_API_KEY` | endpoint: `SWITCHBOARD_AZURE_OPENAI_ENDPOINT`, `AZURE_OPENAI_ENDPOINT` |
//! | `bedrock`, `bedrock-responses` | `SWITCHBOARD_BEDROCK_API_KEY`, `AWS_BEARER_TOKEN_BEDROCK` | `SWITCHBOARD_BEDROCK_BASE_URL`, else derived from the region |
//! | every other OpenAI-compatible vendor | `SWITCHBOARD_<NAME>_API_KEY`, then the vendor's usual name | `SWITCHBOARD_<NAME>_BASE_URL`, then the vendor's usual name |
//!
//! Azure: the model is the deployment name. `azure` uses the deployment routes with
//! `api-version` from `SWITCHBOARD_AZURE_OPENAI_API_VERSION`, `AZURE_OPENAI_API_VERSION` or
//! `OPENAI_API_VERSION` (the official SDK's name), default
//! [`AZURE_DEFAULT_API_VERSION`](crate::providers::openai::AZURE_DEFAULT_API_VERSION);
//! `azure-responses` uses the v1 route `{endpoint}/openai/v1/responses`, which takes no
//! version. Variable names follow the official `openai` SDK's `AzureOpenAI` client, which
//! also prefers an Entra ID token over a key when both are set. A token provider that
//! refreshes tokens can be passed with [`ClientOptions::azure_auth`].
//!
//! Bedrock: the region comes from `SWITCHBOARD_BEDROCK_REGION`, `AWS_REGION` or
//! `AWS_DEFAULT_REGION` (default `us-east-1`). `bedrock` speaks Chat Completions at
//! `https://bedrock-runtime.{region}.amazonaws.com/openai/v1`, the endpoint AWS recommends
//! and documents for Bedrock API keys
//! (<https://docs.aws.amazon.com/bedrock/latest/userguide/inference-chat-completions.html>);
//! `bedrock-responses` speaks the Responses API at
//! `https://bedrock-mantle.{region}.api.aws/openai/v1`, the endpoint the official OpenAI
//! SDKs' Bedrock providers use, since the Responses API with streaming is served there.
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
use crate::providers::azure::AzureAuth;
use crate::providers::cassette::{self, Cassette, CassetteMode};
use crate::providers::gemini::GeminiClient;
use crate::providers::http::HttpSettings;
use crate::providers::openai::{self, OpenAiClient};
use crate::providers::openai_responses::OpenAiResponsesClient;
use crate::types::ModelRef;

type EnvFn = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Explicit settings for [`create_client_with`]; anything unset is read from the environment.
#[derive(Clone)]
pub struct ClientOptions {
    api_key: Option<secrecy::SecretString>,
    key_env: Option<String>,
    azure_auth: Option<AzureAuth>,
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
            .field("api_key_env", &self.key_env)
            .field("azure_auth", &self.azure_auth)
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
            key_env: None,
            azure_auth: None,
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

    /// Reads the key from this environment variable only, instead of the provider's usual
    /// ones (an explicit [`api_key`](Self::api_key) still wins).
    #[must_use]
    pub fn api_key_env(mut self, name: impl Into<String>) -> ClientOptions {
        self.key_env = Some(name.into());
        self
    }

    /// Sets how `azure` and `azure-responses` clients authenticate, e.g. with an Entra ID
    /// token provider; it wins over every key and token variable.
    #[must_use]
    pub fn azure_auth(mut self, auth: AzureAuth) -> ClientOptions {
        self.azure_auth = Some(auth);
        self
    }

    /// Sets the base URL explicitly (for `azure` and `azure-responses`, the resource
    /// endpoint).
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
        self.api_key.clone().or_else(|| {
            match &self.key_env {
                Some(name) => self.lookup(&[name.as_str()]),
                None => self.lookup(names),
            }
            .map(secrecy::SecretString::from)
        })
    }

    /// The variables the key is read from, in order.
    fn key_names<'a>(&'a self, names: &[&'a str]) -> Vec<&'a str> {
        match &self.key_env {
            Some(name) => vec![name.as_str()],
            None => names.to_vec(),
        }
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
const NATIVE: &[&str] = &[
    "anthropic",
    "gemini",
    "google",
    "openai-responses",
    "azure-responses",
    "bedrock-responses",
];

const OPENAI_KEYS: &[&str] = &["SWITCHBOARD_OPENAI_API_KEY", "OPENAI_API_KEY"];
const OPENAI_URLS: &[&str] = &["SWITCHBOARD_OPENAI_BASE_URL", "OPENAI_BASE_URL"];
const AZURE_KEYS: &[&str] = &["SWITCHBOARD_AZURE_OPENAI_API_KEY", "AZURE_OPENAI_API_KEY"];
const AZURE_TOKENS: &[&str] = &["SWITCHBOARD_AZURE_OPENAI_AD_TOKEN", "AZURE_OPENAI_AD_TOKEN"];
const AZURE_ENDPOINTS: &[&str] = &["SWITCHBOARD_AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_ENDPOINT"];
const AZURE_VERSIONS: &[&str] = &[
    "SWITCHBOARD_AZURE_OPENAI_API_VERSION",
    "AZURE_OPENAI_API_VERSION",
    "OPENAI_API_VERSION",
];
const BEDROCK_KEYS: &[&str] = &["SWITCHBOARD_BEDROCK_API_KEY", "AWS_BEARER_TOKEN_BEDROCK"];
const BEDROCK_URLS: &[&str] = &["SWITCHBOARD_BEDROCK_BASE_URL"];
const BEDROCK_REGIONS: &[&str] = &[
    "SWITCHBOARD_BEDROCK_REGION",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
];

impl ClientOptions {
    /// Azure credentials: explicit auth, then an explicit key, then a token variable, then a
    /// key variable.
    fn azure(&self) -> Result<AzureAuth> {
        if let Some(auth) = &self.azure_auth {
            return Ok(auth.clone());
        }
        if let Some(key) = &self.api_key {
            return Ok(AzureAuth::ApiKey(key.clone()));
        }
        if let Some(token) = self.lookup(AZURE_TOKENS) {
            return Ok(AzureAuth::token(token));
        }
        if let Some(key) = self.lookup(AZURE_KEYS) {
            return Ok(AzureAuth::api_key(key));
        }
        Err(Error::config(
            "no API key or Entra ID token for Azure OpenAI",
            format!(
                "set {} or {}, or pass a token provider with `ClientOptions::azure_auth`",
                join_or(AZURE_KEYS),
                join_or(AZURE_TOKENS)
            ),
        ))
    }

    fn azure_endpoint(&self) -> Result<String> {
        self.url(AZURE_ENDPOINTS).ok_or_else(|| {
            Error::config(
                "no endpoint for Azure OpenAI",
                format!(
                    "set {} to the resource endpoint, e.g. https://my-resource.openai.azure.com",
                    join_or(AZURE_ENDPOINTS)
                ),
            )
        })
    }

    fn bedrock_region(&self) -> Result<String> {
        let region = self
            .lookup(BEDROCK_REGIONS)
            .unwrap_or_else(|| "us-east-1".to_owned());
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(Error::config(
                format!("`{region}` is not an AWS region name"),
                format!(
                    "set {} to a region such as us-east-1",
                    join_or(BEDROCK_REGIONS)
                ),
            ));
        }
        Ok(region)
    }
}

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
            format!("set {}", join_or(&options.key_names(vars))),
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
        "openai-responses" => {
            let key = key_or_placeholder(OPENAI_KEYS).ok_or_else(|| missing_key(OPENAI_KEYS))?;
            let mut b = OpenAiResponsesClient::builder()
                .model(model.model())
                .api_key(secrecy::ExposeSecret::expose_secret(&key))
                .http_settings(http.clone())
                .keep_raw(options.keep_raw);
            if let Some(url) = options.url(OPENAI_URLS) {
                b = b.base_url(url);
            }
            Ok(options.stack(b.build()?))
        }
        "azure" => {
            let auth = options.azure()?;
            let endpoint = options.azure_endpoint()?;
            let profile = openai::profile("azure").ok_or_else(|| {
                Error::config("the azure profile is missing", "report this as a bug")
            })?;
            let mut b = OpenAiClient::builder()
                .profile(profile)
                .model(model.model())
                .base_url(endpoint)
                .azure_auth(auth)
                .http_settings(http.clone())
                .keep_raw(options.keep_raw);
            if let Some(version) = options.lookup(AZURE_VERSIONS) {
                b = b.api_version(version);
            }
            Ok(options.stack(b.build()?))
        }
        "azure-responses" => {
            let auth = options.azure()?;
            let endpoint = options.azure_endpoint()?;
            let b = OpenAiResponsesClient::builder()
                .azure_endpoint(endpoint)
                .model(model.model())
                .azure_auth(auth)
                .http_settings(http.clone())
                .keep_raw(options.keep_raw);
            Ok(options.stack(b.build()?))
        }
        "bedrock" | "bedrock-responses" => {
            let key = key_or_placeholder(BEDROCK_KEYS).ok_or_else(|| missing_key(BEDROCK_KEYS))?;
            let url = match options.url(BEDROCK_URLS) {
                Some(url) => url,
                None if provider == "bedrock" => format!(
                    "https://bedrock-runtime.{}.amazonaws.com/openai/v1",
                    options.bedrock_region()?
                ),
                None => format!(
                    "https://bedrock-mantle.{}.api.aws/openai/v1",
                    options.bedrock_region()?
                ),
            };
            let key = secrecy::ExposeSecret::expose_secret(&key);
            if provider == "bedrock" {
                let profile = openai::profile("bedrock").ok_or_else(|| {
                    Error::config("the bedrock profile is missing", "report this as a bug")
                })?;
                let b = OpenAiClient::builder()
                    .profile(profile)
                    .model(model.model())
                    .api_key(key)
                    .base_url(url)
                    .http_settings(http.clone())
                    .keep_raw(options.keep_raw);
                return Ok(options.stack(b.build()?));
            }
            let b = OpenAiResponsesClient::builder()
                .name("bedrock-responses")
                .model(model.model())
                .api_key(key)
                .base_url(url)
                .http_settings(http.clone())
                .keep_raw(options.keep_raw);
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

/// Where a provider's key would come from, as [`key_status`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyStatus {
    /// The variables read, first set wins.
    pub variables: Vec<String>,
    /// The variable that holds the key (or `explicit` for a key set in code), if any.
    pub found_in: Option<String>,
    /// Whether the provider needs a key at all (local servers do not).
    pub required: bool,
}

/// Reports whether a key for `provider` is available under `options`, without reading it out.
///
/// # Errors
/// [`ErrorKind::Config`](crate::ErrorKind::Config) for an unknown provider.
pub fn key_status(provider: &str, options: &ClientOptions) -> Result<KeyStatus> {
    let (names, required): (Vec<&str>, bool) = match provider {
        "openai-responses" => (OPENAI_KEYS.to_vec(), true),
        "azure" | "azure-responses" => ([AZURE_KEYS, AZURE_TOKENS].concat(), true),
        "bedrock" | "bedrock-responses" => (BEDROCK_KEYS.to_vec(), true),
        "anthropic" => (
            vec!["SWITCHBOARD_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY"],
            true,
        ),
        "gemini" | "google" => (
            vec![
                "SWITCHBOARD_GEMINI_API_KEY",
                "GEMINI_API_KEY",
                "GOOGLE_API_KEY",
            ],
            true,
        ),
        name => {
            let profile = openai::profile(name).ok_or_else(|| {
                Error::config(
                    format!("unknown provider `{name}`"),
                    format!("use one of: {}", known_providers().join(", ")),
                )
            })?;
            (profile.key_env.to_vec(), profile.key_required)
        }
    };
    let variables: Vec<String> = options
        .key_names(&names)
        .iter()
        .map(|s| s.to_string())
        .collect();
    let found_in = if options.api_key.is_some() {
        Some("explicit".to_owned())
    } else {
        variables
            .iter()
            .find(|name| options.lookup(&[name.as_str()]).is_some())
            .cloned()
    };
    Ok(KeyStatus {
        variables,
        found_in,
        required,
    })
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
    fn new_prefixes_are_known() {
        let known = known_providers();
        for name in [
            "openai-responses",
            "azure",
            "azure-responses",
            "bedrock",
            "bedrock-responses",
        ] {
            assert!(known.contains(&name), "{name}");
        }
    }

    #[test]
    fn openai_responses_reads_the_openai_variables() {
        let client = create_client_with(
            "openai-responses:gpt-5-mini",
            &env(&[("OPENAI_API_KEY", "sk-x")]),
        )
        .unwrap();
        assert_eq!(client.info().provider(), "openai-responses");
        assert!(format!("{client:?}").contains("https://api.openai.com/v1/responses"));
    }

    #[test]
    fn azure_reads_endpoint_version_and_credentials_from_the_standard_variables() {
        let opts = env(&[
            ("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com/"),
            ("OPENAI_API_VERSION", "2025-04-01-preview"),
            ("AZURE_OPENAI_API_KEY", "k"),
        ]);
        let client = create_client_with("azure:my-deployment", &opts).unwrap();
        assert_eq!(client.info().provider(), "azure");
        assert_eq!(client.info().model(), "my-deployment");
        let debug = format!("{client:?}");
        assert!(debug.contains("https://res.openai.azure.com"), "{debug}");
        assert!(!debug.contains("\"k\""), "{debug}");
        let client = create_client_with("azure-responses:my-deployment", &opts).unwrap();
        assert!(format!("{client:?}").contains("https://res.openai.azure.com/openai/v1/responses"));
    }

    #[test]
    fn azure_switchboard_variables_win_and_a_token_beats_a_key() {
        let opts = env(&[
            (
                "SWITCHBOARD_AZURE_OPENAI_ENDPOINT",
                "https://a.openai.azure.com",
            ),
            ("AZURE_OPENAI_ENDPOINT", "https://b.openai.azure.com"),
            ("AZURE_OPENAI_AD_TOKEN", "t"),
            ("AZURE_OPENAI_API_KEY", "k"),
        ]);
        assert!(matches!(opts.azure().unwrap(), AzureAuth::Token(_)));
        assert_eq!(opts.azure_endpoint().unwrap(), "https://a.openai.azure.com");
    }

    #[test]
    fn azure_without_endpoint_or_credentials_names_the_variables() {
        let err =
            create_client_with("azure:d", &env(&[("AZURE_OPENAI_API_KEY", "k")])).unwrap_err();
        assert!(
            err.fix().unwrap().contains("AZURE_OPENAI_ENDPOINT"),
            "{err}"
        );
        let err = create_client_with(
            "azure-responses:d",
            &env(&[("AZURE_OPENAI_ENDPOINT", "https://a.openai.azure.com")]),
        )
        .unwrap_err();
        let fix = err.fix().unwrap();
        assert!(fix.contains("AZURE_OPENAI_API_KEY") && fix.contains("AZURE_OPENAI_AD_TOKEN"));
    }

    #[test]
    fn bedrock_derives_its_url_from_the_region() {
        let client = create_client_with(
            "bedrock:openai.gpt-oss-120b-1:0",
            &env(&[
                ("AWS_BEARER_TOKEN_BEDROCK", "b"),
                ("AWS_REGION", "eu-west-1"),
            ]),
        )
        .unwrap();
        assert_eq!(client.info().model(), "openai.gpt-oss-120b-1:0");
        let debug = format!("{client:?}");
        assert!(
            debug.contains("https://bedrock-runtime.eu-west-1.amazonaws.com/openai/v1"),
            "{debug}"
        );
        let client = create_client_with(
            "bedrock-responses:openai.gpt-oss-120b",
            &env(&[("SWITCHBOARD_BEDROCK_API_KEY", "b")]),
        )
        .unwrap();
        assert!(format!("{client:?}")
            .contains("https://bedrock-mantle.us-east-1.api.aws/openai/v1/responses"));
    }

    #[test]
    fn bedrock_refuses_a_region_that_would_reshape_the_url() {
        let err = create_client_with(
            "bedrock:m",
            &env(&[
                ("AWS_BEARER_TOKEN_BEDROCK", "b"),
                ("AWS_REGION", "evil.com/x"),
            ]),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        let err = create_client_with("bedrock:m", &env(&[])).unwrap_err();
        assert!(err.fix().unwrap().contains("AWS_BEARER_TOKEN_BEDROCK"));
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

    #[test]
    fn each_protocol_reports_what_it_accepts() {
        let caps = |spec: &str| {
            let opts = env(&[]).api_key("k").base_url("https://127.0.0.1:9/v1");
            *create_client_with(spec, &opts)
                .unwrap()
                .info()
                .capabilities()
        };
        // Only Anthropic continues a prefilled assistant message; it takes no audio.
        let anthropic = caps("anthropic:claude-sonnet-4-5");
        assert!(anthropic.prefill && anthropic.tools && anthropic.documents);
        assert!(!anthropic.audio);
        assert_eq!(anthropic.context_window, Some(200_000));
        for spec in [
            "openai:gpt-4o",
            "gemini:gemini-2.5-flash",
            "openai-responses:gpt-5",
            "azure:d",
        ] {
            assert!(!caps(spec).prefill, "{spec}");
        }
        let openai = caps("openai:gpt-4o-mini");
        assert!(openai.audio && openai.images && openai.documents);
        assert_eq!(openai.context_window, Some(128_000));
        assert!(!caps("openai-responses:gpt-5").audio);
        assert_eq!(caps("openai-responses:gpt-5").context_window, Some(400_000));
        assert_eq!(
            caps("gemini:gemini-2.5-pro").context_window,
            Some(1_048_576)
        );
        // Text-only OpenAI-compatible endpoints.
        for spec in [
            "deepseek:deepseek-chat",
            "bedrock:openai.gpt-oss-120b-1:0",
            "bedrock-responses:openai.gpt-oss-120b",
        ] {
            let c = caps(spec);
            assert!(!c.images && !c.documents && !c.audio && c.tools, "{spec}");
        }
        // Unknown models and servers: permissive, no window to check.
        let unknown = caps("openai-compatible:my-model");
        assert!(unknown.images && unknown.documents && unknown.audio);
        assert_eq!(unknown.context_window, None);
    }
}
