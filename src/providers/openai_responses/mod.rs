//! The OpenAI Responses API: [`OpenAiResponsesClient`], for OpenAI, Azure OpenAI and any
//! other server that speaks it.
//!
//! Implemented from OpenAI's API reference:
//! - [Create a model response](https://platform.openai.com/docs/api-reference/responses/create)
//!   (`POST {base}/responses`) and [the response object](https://platform.openai.com/docs/api-reference/responses/object).
//! - [Streaming events](https://platform.openai.com/docs/api-reference/responses-streaming).
//! - [Reasoning](https://platform.openai.com/docs/guides/reasoning) (effort, summaries,
//!   encrypted reasoning items), [function calling](https://platform.openai.com/docs/guides/function-calling)
//!   and [structured outputs](https://platform.openai.com/docs/guides/structured-outputs)
//!   (`text.format`).
//! - [Error codes](https://platform.openai.com/docs/guides/error-codes).
//!
//! How the neutral request maps:
//! - System messages become `instructions` (joined by blank lines); user text, images and
//!   documents become `input_text`, `input_image` and `input_file` parts; assistant text
//!   becomes `output_text`. Tool calls become `function_call` items (id = `call_id`) and tool
//!   results `function_call_output` items, so a conversation started on Chat Completions,
//!   Anthropic or Gemini continues here, and the other way round.
//! - Tools are flat `{type: "function", name, description, parameters, strict}`, with
//!   `strict` off unless the tool asks for it (the Responses API would otherwise default it
//!   on and reject ordinary schemas).
//! - [`ResponseFormat`](crate::types::ResponseFormat) becomes `text.format`
//!   (`json_schema` with name, schema and strict; `json_object`; `text`).
//! - [`ReasoningEffort`](crate::types::ReasoningEffort) becomes `reasoning.effort` and
//!   [`ReasoningSummary`](crate::types::ReasoningSummary) `reasoning.summary`. The client
//!   sends `store: false` by default (the whole conversation travels with every request, as
//!   with every other protocol), so with reasoning it asks for
//!   `include: ["reasoning.encrypted_content"]`. Reasoning items come back as
//!   [`Thinking`](crate::types::Thinking) parts: summary as text, item id as `signature`,
//!   encrypted content as `redacted`, origin the client's provider name; they are sent back
//!   as `reasoning` input items on the next turn, to the same provider only.
//! - `max_tokens` → `max_output_tokens`; `temperature`, `top_p` as is; `stop` and `seed` are
//!   not sent (the API has neither); [`ChatRequest::extra`] is merged into the body last.
//! - Status `completed` finishes with `stop` (`tool_calls` when there are function calls),
//!   a refusal with `refusal`, `incomplete` with `length` (`max_output_tokens`) or
//!   `content_filter`; a `failed` response is an error.
//!
//! Azure OpenAI serves the same API at `{endpoint}/openai/v1/responses` (the v1 API, which
//! needs no `api-version`; Azure's "API version lifecycle" page recommends it for new code
//! and the Responses how-to uses it); see [`OpenAiResponsesClientBuilder::azure_endpoint`].

mod convert;
mod error;
mod stream;
mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};

use crate::client::{BoxFuture, ChatClient, ClientInfo};
use crate::error::{Error, ErrorKind, Result};
use crate::providers::azure::{AzureAuth, Credential};
use crate::providers::http::{parse_json, Auth, HttpSettings, Transport};
use crate::providers::openai::error as openai_error;
use crate::types::{
    new_request_id, Attempt, Capabilities, ChatRequest, ChatResponse, ChatStream, StreamMeta,
};

use convert::{from_wire, to_wire, WireOptions};

const DEFAULT_NAME: &str = "openai-responses";
const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
const AZURE_NAME: &str = "azure-responses";

/// What a Responses endpoint accepts for the client named `name`: tools, schemas, images
/// and files, but no audio input (the converter refuses it) and no prefill; Bedrock's
/// endpoint serves text-only open-weight models. OpenAI's models take their context window
/// from the price table.
fn capabilities(name: &str, model: &str) -> Capabilities {
    let base = Capabilities::permissive()
        .with_audio(false)
        .with_prefill(false);
    if name.starts_with("bedrock") {
        return base.with_images(false).with_documents(false);
    }
    let priced = if name == DEFAULT_NAME { "openai" } else { name };
    crate::providers::with_known_window(base, priced, model)
}

type MapError = fn(&str, u16, &HeaderMap, &[u8]) -> Error;

/// A [`ChatClient`] over the Responses API of OpenAI, Azure OpenAI or a compatible server.
///
/// # Clone
/// Clones share the connection pool, the settings and any cached Entra ID token.
///
/// # Examples
/// ```
/// use switchboard::providers::openai_responses::OpenAiResponsesClient;
///
/// let client = OpenAiResponsesClient::builder()
///     .model("gpt-5-mini")
///     .api_key("sk-...")
///     .build()?;
/// # let _ = client;
/// # Ok::<_, switchboard::Error>(())
/// ```
#[derive(Clone)]
pub struct OpenAiResponsesClient {
    inner: Arc<Inner>,
}

struct Inner {
    info: ClientInfo,
    url: String,
    credential: Credential,
    transport: Transport,
    keep_raw: bool,
    store: bool,
    map_error: MapError,
}

impl fmt::Debug for OpenAiResponsesClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("OpenAiResponsesClient")
            .field("provider", &inner.info.provider())
            .field("model", &inner.info.model())
            .field("url", &inner.url)
            .field("api_key", &inner.credential)
            .field("store", &inner.store)
            .field("keep_raw", &inner.keep_raw)
            .finish()
    }
}

impl OpenAiResponsesClient {
    /// Starts a builder for OpenAI (provider `openai-responses`); a model and a key are
    /// required.
    pub fn builder() -> OpenAiResponsesClientBuilder {
        OpenAiResponsesClientBuilder {
            name: None,
            model: None,
            api_key: None,
            azure_auth: None,
            base_url: None,
            azure: false,
            store: false,
            settings: HttpSettings::default(),
            keep_raw: false,
        }
    }

    fn provider(&self) -> &str {
        self.inner.info.provider()
    }

    fn model(&self) -> &str {
        self.inner.info.model()
    }

    fn label(&self, err: Error) -> Error {
        // The transport's default fix names SWITCHBOARD_<PROVIDER>_API_KEY, which is not
        // what OpenAI's Responses client reads.
        let err = if err.kind() == ErrorKind::Authentication
            && err.status().is_some()
            && self.provider() == DEFAULT_NAME
        {
            err.with_fix("check the API key: set SWITCHBOARD_OPENAI_API_KEY or OPENAI_API_KEY")
        } else {
            err
        };
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
        to_wire(
            req,
            &WireOptions {
                model: self.model(),
                provider: self.provider(),
                store: self.inner.store,
                stream,
            },
        )
    }

    async fn chat_inner(&self, req: &ChatRequest) -> Result<ChatResponse> {
        let body = self.body(req, false)?;
        let started = Instant::now();
        let inner = &self.inner;
        let reply = inner
            .credential
            .send(self.provider(), |auth| {
                let body = body.clone();
                async move {
                    inner
                        .transport
                        .post_json(&inner.url, &auth, &[], body, inner.map_error)
                        .await
                }
            })
            .await?;
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
        let sse = inner
            .credential
            .send(self.provider(), |auth| {
                let body = body.clone();
                async move {
                    inner
                        .transport
                        .post_sse(&inner.url, &auth, &[], body, inner.map_error)
                        .await
                }
            })
            .await?;
        Ok(ChatStream::from_events(
            meta,
            stream::events(self.provider(), sse),
        ))
    }
}

impl ChatClient for OpenAiResponsesClient {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(async move { self.chat_inner(req).await.map_err(|e| self.label(e)) })
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(async move { self.stream_inner(req).await.map_err(|e| self.label(e)) })
    }

    fn info(&self) -> &ClientInfo {
        &self.inner.info
    }
}

/// Builds an [`OpenAiResponsesClient`]; every problem is reported by [`build`](Self::build).
#[must_use]
pub struct OpenAiResponsesClientBuilder {
    name: Option<String>,
    model: Option<String>,
    api_key: Option<SecretString>,
    azure_auth: Option<AzureAuth>,
    base_url: Option<String>,
    azure: bool,
    store: bool,
    settings: HttpSettings,
    keep_raw: bool,
}

impl fmt::Debug for OpenAiResponsesClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiResponsesClientBuilder")
            .field("name", &self.name)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("azure_auth", &self.azure_auth)
            .field("base_url", &self.base_url)
            .field("azure", &self.azure)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl OpenAiResponsesClientBuilder {
    /// Sets the provider name used in responses, errors and reasoning origins (default
    /// `openai-responses`, or `azure-responses` with [`azure_endpoint`](Self::azure_endpoint)).
    pub fn name(mut self, name: impl Into<String>) -> OpenAiResponsesClientBuilder {
        self.name = Some(name.into());
        self
    }

    /// Sets the model id (for Azure, the deployment name).
    pub fn model(mut self, model: impl Into<String>) -> OpenAiResponsesClientBuilder {
        self.model = Some(model.into());
        self
    }

    /// Sets the API key: a bearer token, or Azure's `api-key` header after
    /// [`azure_endpoint`](Self::azure_endpoint).
    pub fn api_key(mut self, key: impl Into<String>) -> OpenAiResponsesClientBuilder {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    /// Sets Azure authentication (an `api-key`, an Entra ID token or a token provider); it
    /// takes precedence over [`api_key`](Self::api_key).
    pub fn azure_auth(mut self, auth: AzureAuth) -> OpenAiResponsesClientBuilder {
        self.azure_auth = Some(auth);
        self
    }

    /// Sets the base URL, version path included (e.g. `https://api.openai.com/v1`); the
    /// client posts to `{base_url}/responses`.
    pub fn base_url(mut self, url: impl Into<String>) -> OpenAiResponsesClientBuilder {
        self.base_url = Some(url.into());
        self.azure = false;
        self
    }

    /// Targets an Azure OpenAI resource (`https://NAME.openai.azure.com`): requests go to
    /// `{endpoint}/openai/v1/responses`, keys in the `api-key` header, and Azure's
    /// content-filter errors are read.
    pub fn azure_endpoint(mut self, endpoint: impl Into<String>) -> OpenAiResponsesClientBuilder {
        let endpoint = endpoint.into();
        let root = endpoint.trim().trim_end_matches('/');
        let root = root.strip_suffix("/openai").unwrap_or(root);
        self.base_url = Some(format!("{root}/openai/v1"));
        self.azure = true;
        self
    }

    /// Sets whether the provider may store responses (`store`, default `false`: every
    /// request carries the whole conversation, so nothing needs to be kept).
    pub fn store(mut self, store: bool) -> OpenAiResponsesClientBuilder {
        self.store = store;
        self
    }

    /// Sets timeouts and limits.
    pub fn http_settings(mut self, settings: HttpSettings) -> OpenAiResponsesClientBuilder {
        self.settings = settings;
        self
    }

    /// Keeps the provider's JSON in [`ChatResponse::raw`] (non-streaming calls only).
    pub fn keep_raw(mut self, keep: bool) -> OpenAiResponsesClientBuilder {
        self.keep_raw = keep;
        self
    }

    /// Builds the client. The builder never reads the environment:
    /// [`create_client`](crate::create_client) does.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when no model or no credentials are set, or the base URL is not
    /// an `http(s)` URL.
    pub fn build(self) -> Result<OpenAiResponsesClient> {
        let name = self.name.unwrap_or_else(|| {
            if self.azure {
                AZURE_NAME.to_owned()
            } else {
                DEFAULT_NAME.to_owned()
            }
        });
        let model = self.model.filter(|m| !m.trim().is_empty()).ok_or_else(|| {
            Error::config(
                format!("the {name} client has no model"),
                "name one with `.model(\"...\")`, e.g. `.model(\"gpt-5-mini\")`",
            )
            .with_provider(name.clone())
        })?;
        let base_url = self
            .base_url
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let base_url = base_url.trim().trim_end_matches('/').to_owned();
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
            (None, Some(key)) if self.azure => Credential::Fixed(Auth::header("api-key", key)),
            (None, Some(key)) => Credential::Fixed(Auth::bearer(key)),
            (None, None) => {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("no API key for {name}"),
                )
                .with_provider(name)
                .with_fix("call `.api_key(..)` (or `.azure_auth(..)` for Azure), or build it with `create_client`, which reads the usual variables"))
            }
        };
        let map_error: MapError = if self.azure {
            openai_error::map_azure_error
        } else {
            openai_error::map_error
        };
        let transport = Transport::new(name.clone(), self.settings)?;
        let fingerprint = credential.fingerprint();
        Ok(OpenAiResponsesClient {
            inner: Arc::new(Inner {
                info: ClientInfo::new(name.clone(), model.clone())
                    .with_capabilities(capabilities(&name, &model))
                    .with_endpoint(&base_url, fingerprint.as_deref()),
                url: format!("{base_url}/responses"),
                credential,
                transport,
                keep_raw: self.keep_raw,
                store: self.store,
                map_error,
            }),
        })
    }
}

/// Compile-time checks that the promised auto traits hold.
#[allow(dead_code)]
fn _assert_impls() {
    fn send_sync_clone<T: Send + Sync + Clone>() {}
    send_sync_clone::<OpenAiResponsesClient>();
}

/// Decodes a 2xx Responses body into a response; a `failed` response, or an error object in
/// place of one, becomes the error it reports.
pub(crate) fn decode_reply(provider: &str, body: &[u8]) -> Result<ChatResponse> {
    let parsed: wire::Response = parse_json(provider, body)?;
    if parsed.status.is_none() && parsed.output.is_empty() {
        if let Some(err) = openai_error::error_in_body(provider, body) {
            return Err(err);
        }
    }
    from_wire(parsed, provider)
}

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use stream::events as stream_events;
