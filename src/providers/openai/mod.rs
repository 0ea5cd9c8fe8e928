//! The OpenAI Chat Completions protocol, for OpenAI and every compatible vendor.
//!
//! Implemented from OpenAI's API reference:
//! - [Create chat completion](https://platform.openai.com/docs/api-reference/chat/create)
//!   (`POST {base}/chat/completions`): messages with text, image, audio and file parts,
//!   tools and tool choice, `response_format`, `reasoning_effort`, `stream_options`.
//! - [The chat completion object](https://platform.openai.com/docs/api-reference/chat/object)
//!   and [the chunk object](https://platform.openai.com/docs/api-reference/chat-streaming).
//! - [Create embeddings](https://platform.openai.com/docs/api-reference/embeddings/create)
//!   (`POST {base}/embeddings`).
//! - [Error codes](https://platform.openai.com/docs/guides/error-codes).
//!
//! Vendors that speak the same protocol (xAI, Groq, Mistral, OpenRouter, DeepSeek, Together,
//! Ollama, vLLM, Azure OpenAI, Amazon Bedrock, any other server) are [`Profile`] rows in
//! [`profiles`], not code. Azure differs only in data: its [`UrlStyle::AzureDeployment`]
//! routes (`{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...`)
//! and its [`AuthStyle::AzureApiKey`] header, or Entra ID tokens through
//! [`OpenAiClientBuilder::azure_auth`].

mod convert;
pub(crate) mod error;
mod profiles;
mod stream;
pub mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use secrecy::{ExposeSecret, SecretString};

pub use profiles::{profile, profiles, AuthStyle, MaxTokensField, Profile, Quirks, UrlStyle};

use crate::client::{BoxFuture, ChatClient, ClientInfo};
use crate::error::{Error, ErrorKind, Result};
use crate::providers::azure::{AzureAuth, Credential};
use crate::providers::http::{parse_json, Auth, HttpSettings, Transport};
use crate::providers::path;
use crate::types::{
    new_request_id, Attempt, ChatRequest, ChatResponse, ChatStream, EmbedRequest, EmbedResponse,
    StreamMeta, Usage,
};

/// A client for the Chat Completions API of OpenAI or a compatible vendor.
///
/// The vendor is a [`Profile`] (default: `openai`); it supplies the default base URL, the
/// environment variables the key and URL are read from, and the vendor's quirks.
///
/// # Clone
/// Clones share the HTTP connection pool and configuration; cloning is cheap.
///
/// # Examples
/// ```
/// use switchboard::providers::openai::{self, OpenAiClient};
///
/// let client = OpenAiClient::builder()
///     .profile(openai::profile("ollama").expect("built in"))
///     .model("llama3.2")
///     .build()?;
/// assert_eq!(client.profile().name, "ollama");
/// # Ok::<_, switchboard::Error>(())
/// ```
#[derive(Clone)]
pub struct OpenAiClient {
    inner: Arc<Inner>,
}

/// The `api-version` sent to Azure OpenAI when none is set: the latest generally available
/// version of the dated data-plane API (Azure's REST reference, "API specs" table).
pub const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

struct Inner {
    profile: &'static Profile,
    info: ClientInfo,
    base_url: String,
    api_version: String,
    credential: Credential,
    transport: Transport,
    keep_raw: bool,
}

impl fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("OpenAiClient")
            .field("provider", &inner.profile.name)
            .field("model", &inner.info.model())
            .field("base_url", &inner.base_url)
            .field("api_key", &inner.credential)
            .field("keep_raw", &inner.keep_raw)
            .finish()
    }
}

impl OpenAiClient {
    /// Starts a builder (profile `openai`).
    pub fn builder() -> OpenAiClientBuilder {
        OpenAiClientBuilder {
            profile: profiles::default_profile(),
            model: None,
            api_key: None,
            azure_auth: None,
            api_version: None,
            base_url: None,
            settings: HttpSettings::default(),
            keep_raw: false,
        }
    }

    /// Returns the vendor profile this client uses.
    pub fn profile(&self) -> &'static Profile {
        self.inner.profile
    }

    fn url(&self, path: &str) -> String {
        let inner = &self.inner;
        match inner.profile.url_style {
            UrlStyle::AzureDeployment => format!(
                "{}/openai/deployments/{}/{path}?api-version={}",
                inner.base_url,
                path::encode(inner.info.model()),
                path::encode(&inner.api_version)
            ),
            _ => format!("{}/{path}", inner.base_url),
        }
    }

    /// POSTs `body` to `path` with the current credentials (refreshed once on a 401).
    async fn post(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<crate::providers::http::HttpResponse> {
        let inner = &self.inner;
        let url = self.url(path);
        inner
            .credential
            .send(self.provider(), |auth| {
                let body = body.clone();
                let url = &url;
                async move {
                    inner
                        .transport
                        .post_json(url, &auth, &[], body, self.map_error())
                        .await
                }
            })
            .await
    }

    fn map_error(&self) -> fn(&str, u16, &reqwest::header::HeaderMap, &[u8]) -> Error {
        match self.inner.profile.url_style {
            UrlStyle::AzureDeployment => error::map_azure_error,
            _ => error::map_error,
        }
    }

    fn provider(&self) -> &'static str {
        self.inner.profile.name
    }

    fn model(&self) -> &str {
        self.inner.info.model()
    }

    fn label(&self, err: Error) -> Error {
        let err = if err.provider().is_some() {
            err
        } else {
            err.with_provider(self.provider())
        };
        if err.model().is_some() {
            err
        } else {
            err.with_model(self.model())
        }
    }

    fn body(&self, req: &ChatRequest, stream: bool) -> Result<Vec<u8>> {
        req.validate()?;
        let wire = convert::to_wire(req, self.model(), self.inner.profile, stream)?;
        serde_json::to_vec(&wire).map_err(|e| {
            Error::invalid_request(
                format!("the request could not be encoded as JSON: {e}"),
                "remove non-finite numbers from the request",
            )
        })
    }

    async fn chat_inner(&self, req: &ChatRequest) -> Result<ChatResponse> {
        let body = self.body(req, false)?;
        let started = Instant::now();
        let inner = &self.inner;
        let reply = self.post("chat/completions", body).await?;
        let mut response = decode_reply(self.provider(), &reply.body)?;
        response.provider = self.provider().to_owned();
        response.model = self.model().to_owned();
        response.request_id = new_request_id();
        response.latency = started.elapsed();
        response.attempts.push(Attempt::success(
            self.provider(),
            self.model(),
            response.latency,
        ));
        if inner.keep_raw {
            response.raw = serde_json::from_slice(&reply.body).ok();
        }
        Ok(response)
    }

    async fn stream_inner(&self, req: &ChatRequest) -> Result<ChatStream> {
        let body = self.body(req, true)?;
        let meta = StreamMeta::new(self.provider(), self.model());
        let inner = &self.inner;
        let url = self.url("chat/completions");
        let sse = inner
            .credential
            .send(self.provider(), |auth| {
                let body = body.clone();
                let url = &url;
                async move {
                    inner
                        .transport
                        .post_sse(url, &auth, &[], body, self.map_error())
                        .await
                }
            })
            .await?;
        Ok(ChatStream::from_events(
            meta,
            stream::events(self.provider(), sse),
        ))
    }

    async fn embed_inner(&self, req: &EmbedRequest) -> Result<EmbedResponse> {
        if req.inputs.is_empty() {
            return Err(Error::invalid_request(
                "the embeddings request has no inputs",
                "pass at least one text to `EmbedRequest::new`",
            ));
        }
        let wire_req = wire::EmbeddingRequest {
            model: self.model().to_owned(),
            input: req.inputs.clone(),
            dimensions: req.dimensions,
            encoding_format: None,
        };
        let body = serde_json::to_vec(&wire_req).map_err(|e| {
            Error::invalid_request(
                format!("the request could not be encoded as JSON: {e}"),
                "check the inputs",
            )
        })?;
        let started = Instant::now();
        let reply = self.post("embeddings", body).await?;
        let parsed: wire::EmbeddingResponse = parse_json(self.provider(), &reply.body)?;
        if parsed.data.len() != req.inputs.len() {
            return Err(
                error::error_in_body(self.provider(), &reply.body).unwrap_or_else(|| {
                    Error::decode(
                        self.provider(),
                        format!(
                            "asked for {} vectors, got {}",
                            req.inputs.len(),
                            parsed.data.len()
                        ),
                    )
                }),
            );
        }
        let mut data = parsed.data;
        data.sort_by_key(|d| d.index);
        let mut response = EmbedResponse::new(data.into_iter().map(|d| d.embedding).collect());
        response.provider = self.provider().to_owned();
        response.model = self.model().to_owned();
        if let Some(u) = parsed.usage {
            response.usage = Usage {
                input_tokens: u.prompt_tokens,
                total_tokens: u.total_tokens.max(u.prompt_tokens),
                ..Usage::default()
            };
        }
        response.latency = started.elapsed();
        response.attempts.push(Attempt::success(
            self.provider(),
            self.model(),
            response.latency,
        ));
        Ok(response)
    }
}

impl ChatClient for OpenAiClient {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(async move { self.chat_inner(req).await.map_err(|e| self.label(e)) })
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(async move { self.stream_inner(req).await.map_err(|e| self.label(e)) })
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        Box::pin(async move { self.embed_inner(req).await.map_err(|e| self.label(e)) })
    }

    fn info(&self) -> &ClientInfo {
        &self.inner.info
    }
}

/// Builds an [`OpenAiClient`]; every problem is reported by [`build`](Self::build).
#[must_use]
pub struct OpenAiClientBuilder {
    profile: &'static Profile,
    model: Option<String>,
    api_key: Option<SecretString>,
    azure_auth: Option<AzureAuth>,
    api_version: Option<String>,
    base_url: Option<String>,
    settings: HttpSettings,
    keep_raw: bool,
}

impl fmt::Debug for OpenAiClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiClientBuilder")
            .field("profile", &self.profile.name)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("azure_auth", &self.azure_auth)
            .field("api_version", &self.api_version)
            .field("base_url", &self.base_url)
            .field("keep_raw", &self.keep_raw)
            .finish_non_exhaustive()
    }
}

impl OpenAiClientBuilder {
    /// Sets the vendor profile (default: `openai`).
    pub fn profile(mut self, profile: &'static Profile) -> OpenAiClientBuilder {
        self.profile = profile;
        self
    }

    /// Sets the model id sent with every request.
    pub fn model(mut self, model: impl Into<String>) -> OpenAiClientBuilder {
        self.model = Some(model.into());
        self
    }

    /// Sets the API key; without one the profile's key variables are read at build time.
    pub fn api_key(mut self, key: impl Into<String>) -> OpenAiClientBuilder {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    /// Sets how an Azure OpenAI client authenticates: an `api-key`, a fixed Entra ID
    /// token, or a token provider (see [`AzureAuth`]). It takes precedence over
    /// [`api_key`](Self::api_key).
    pub fn azure_auth(mut self, auth: AzureAuth) -> OpenAiClientBuilder {
        self.azure_auth = Some(auth);
        self
    }

    /// Sets Azure's `api-version` query value (default [`AZURE_DEFAULT_API_VERSION`]).
    pub fn api_version(mut self, version: impl Into<String>) -> OpenAiClientBuilder {
        self.api_version = Some(version.into());
        self
    }

    /// Sets the base URL, version path included (e.g. `http://127.0.0.1:8100/v1`); the
    /// client appends `/chat/completions` and `/embeddings`. A trailing slash is fine.
    pub fn base_url(mut self, url: impl Into<String>) -> OpenAiClientBuilder {
        self.base_url = Some(url.into());
        self
    }

    /// Sets timeouts and limits.
    pub fn http_settings(mut self, settings: HttpSettings) -> OpenAiClientBuilder {
        self.settings = settings;
        self
    }

    /// Keeps the provider's JSON in [`ChatResponse::raw`] (non-streaming calls only).
    pub fn keep_raw(mut self, keep: bool) -> OpenAiClientBuilder {
        self.keep_raw = keep;
        self
    }

    /// Builds the client.
    ///
    /// The base URL is the one set here, else the profile's default; the key is the one set
    /// here. The builder never reads the environment: [`create_client`](crate::create_client)
    /// does, from the profile's variables.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when no model is set, when there is no base URL (the
    /// `openai-compatible` profile has no default) or it is not an `http(s)` URL, or when
    /// the profile requires a key and none is set; the message names the variables to set.
    /// [`ErrorKind::InvalidRequest`] when an Azure deployment name holds `/`, `?`, `#`,
    /// `%`, `..`, whitespace or a control character, which could reshape the URL.
    pub fn build(self) -> Result<OpenAiClient> {
        let profile = self.profile;
        let name = profile.name;
        let model = self.model.filter(|m| !m.trim().is_empty()).ok_or_else(|| {
            Error::config(
                format!("the {name} client has no model"),
                "name one with `.model(\"...\")`, e.g. `.model(\"gpt-4o-mini\")`",
            )
            .with_provider(name)
        })?;
        let base_url = self
            .base_url
            .filter(|u| !u.trim().is_empty())
            .or_else(|| profile.base_url.map(str::to_owned))
            .ok_or_else(|| {
                Error::config(
                    format!("the {name} profile has no default base URL"),
                    format!(
                        "set {} (e.g. http://localhost:8080/v1) or call `.base_url(..)`",
                        profile.base_url_env.join(" or ")
                    ),
                )
                .with_provider(name)
            })?;
        let mut base_url = base_url.trim().trim_end_matches('/').to_owned();
        if profile.url_style == UrlStyle::AzureDeployment {
            // The deployment name becomes a path segment: refuse one that could reshape it.
            path::segment(name, "deployment", &model)?;
            // The endpoint is the resource root; accept it with the `/openai` suffix too.
            if let Some(root) = base_url.strip_suffix("/openai") {
                base_url = root.to_owned();
            }
        }
        match reqwest::Url::parse(&base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => {
                return Err(Error::config(
                    format!("the {name} base URL `{base_url}` is not an http(s) URL"),
                    "give the full URL with its version path, e.g. https://api.openai.com/v1",
                )
                .with_provider(name))
            }
        }
        let key = self
            .api_key
            .filter(|k| !k.expose_secret().trim().is_empty());
        let credential = match (self.azure_auth, key) {
            (Some(auth), _) => Credential::from(auth),
            (None, Some(key)) => Credential::Fixed(match profile.auth_style {
                AuthStyle::AzureApiKey => Auth::header("api-key", key),
                _ => Auth::bearer(key),
            }),
            (None, None) if profile.url_style == UrlStyle::AzureDeployment => {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("no API key or Entra ID token for {name}"),
                )
                .with_provider(name)
                .with_fix(format!(
                    "set {} or AZURE_OPENAI_AD_TOKEN, or call `.api_key(..)` or `.azure_auth(..)`",
                    profile.key_env.join(" or ")
                )))
            }
            (None, None) if profile.key_required => {
                return Err(
                    Error::new(ErrorKind::Config, format!("no API key for {name}"))
                        .with_provider(name)
                        .with_fix(format!(
                            "set {} or call `.api_key(..)`",
                            profile.key_env.join(" or ")
                        )),
                )
            }
            (None, None) => Credential::Fixed(Auth::None),
        };
        let api_version = self
            .api_version
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| AZURE_DEFAULT_API_VERSION.to_owned());
        let transport = Transport::new(name, self.settings)?;
        Ok(OpenAiClient {
            inner: Arc::new(Inner {
                profile,
                info: ClientInfo::new(name, model.clone())
                    .with_capabilities(crate::providers::with_known_window(
                        profile.capabilities,
                        name,
                        &model,
                    ))
                    .with_endpoint(&base_url, credential.fingerprint().as_deref()),
                base_url,
                api_version,
                credential,
                transport,
                keep_raw: self.keep_raw,
            }),
        })
    }
}

/// Compile-time checks that the promised auto traits hold.
#[allow(dead_code)]
fn _assert_impls() {
    fn send_sync_clone<T: Send + Sync + Clone>() {}
    send_sync_clone::<OpenAiClient>();
}

/// Decodes a 2xx Chat Completions body into a response; an error object in a reply without
/// choices becomes that error.
pub(crate) fn decode_reply(provider: &str, body: &[u8]) -> Result<ChatResponse> {
    let completion: wire::ChatCompletion = parse_json(provider, body)?;
    if completion.choices.is_empty() {
        return Err(error::error_in_body(provider, body).unwrap_or_else(|| {
            Error::decode(provider, "the reply has no choices")
                .with_fix("check that the base URL points at a Chat Completions API")
        }));
    }
    Ok(convert::from_wire(completion, provider))
}

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use stream::events as stream_events;
