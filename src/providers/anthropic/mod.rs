//! The Anthropic Messages API: [`AnthropicClient`].
//!
//! API reference sections implemented:
//! - Messages, `POST /v1/messages`: <https://docs.anthropic.com/en/api/messages>
//! - Token counting, `POST /v1/messages/count_tokens`:
//!   <https://docs.anthropic.com/en/api/messages-count-tokens>
//! - Streaming: <https://docs.anthropic.com/en/docs/build-with-claude/streaming>
//! - Errors: <https://docs.anthropic.com/en/api/errors>
//! - Stop reasons: <https://docs.anthropic.com/en/api/handling-stop-reasons>
//! - Extended thinking: <https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking>
//! - Prompt caching (usage fields): <https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching>
//! - Tool use: <https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use>
//! - PDF support: <https://docs.anthropic.com/en/docs/build-with-claude/pdf-support>
//! - Vision (image blocks): <https://docs.anthropic.com/en/docs/build-with-claude/vision>
//!
//! How the neutral request maps:
//! - Every system message is lifted into the top-level `system` prompt, in order.
//! - Tool results travel in user turns as `tool_result` blocks; consecutive turns of one
//!   role are merged, since Anthropic requires user and assistant turns to alternate.
//! - Tool calls from any provider become `tool_use` blocks, so a conversation can fail over
//!   to Anthropic mid-way. Arguments that are not a JSON object are wrapped as
//!   `{"value": <arguments>}`, because `input` must be an object.
//! - Reasoning is sent back only when Anthropic produced and signed it; reasoning from other
//!   providers is dropped (Anthropic would reject it).
//! - Audio input is refused with [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest).
//! - [`ResponseFormat::JsonSchema`](crate::types::ResponseFormat::JsonSchema) becomes a forced
//!   tool named after the schema; the tool's input comes back as the answer's text, with a
//!   `stop` finish. [`ResponseFormat::Json`](crate::types::ResponseFormat::Json) adds a system
//!   instruction to answer with a JSON object only.
//! - [`ReasoningEffort`](crate::types::ReasoningEffort) becomes `thinking.budget_tokens`
//!   ([`ReasoningEffort::budget_tokens`](crate::types::ReasoningEffort::budget_tokens)); when
//!   `max_tokens` is not above the budget it is raised to budget + `max_tokens`. A temperature
//!   other than 1, a `top_p` below 0.95, or a forced tool choice together with reasoning is an
//!   error, because Anthropic's extended thinking does not allow them.
//! - `seed` is not sent (Anthropic has none); [`ChatRequest::extra`] is merged into the body,
//!   then the fields of a [`Passthrough`](crate::types::Passthrough) for protocol `anthropic`
//!   (all but `model` and `stream`), last; its `anthropic-version` and `anthropic-beta`
//!   headers replace or join the client's own.
//! - Usage is normalised: `input_tokens` includes cache reads and writes.

mod convert;
mod error;
mod stream;
mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use secrecy::{ExposeSecret, SecretString};

use crate::client::{BoxFuture, ChatClient, ClientInfo};
use crate::error::{Error, Result};
use crate::middleware::key_fingerprint;
use crate::providers::http::{parse_json, Auth, HttpSettings, Transport};
use crate::types::{
    new_request_id, Attempt, Capabilities, ChatRequest, ChatResponse, ChatStream, StreamMeta,
};

use convert::{from_wire, to_wire, Prepared, WireOptions};
use wire::MessagesResponse;

const PROVIDER: &str = "anthropic";
const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
const API_VERSION: &str = "2023-06-01";
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// What the Messages API accepts: tools, schemas (as a forced tool call), images and PDF
/// documents, but no audio; a final assistant message is continued as a prefill
/// (<https://docs.anthropic.com/en/docs/build-with-claude/prompt-engineering/prefill-claudes-response>).
const CAPABILITIES: Capabilities = Capabilities::permissive().with_audio(false);

/// A [`ChatClient`] for one Claude model over Anthropic's Messages API.
///
/// # Clone
/// Clones share the connection pool and the settings; cloning is cheap.
///
/// # Examples
/// ```no_run
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use switchboard::{AnthropicClient, ChatClient, ChatRequest};
///
/// let client = AnthropicClient::builder()
///     .model("claude-sonnet-4-5")
///     .api_key(std::env::var("ANTHROPIC_API_KEY").unwrap_or_default())
///     .build()?;
/// let response = client.chat(&ChatRequest::user("hello")).await?;
/// println!("{}", response.text());
/// # Ok::<_, switchboard::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct AnthropicClient {
    inner: Arc<Inner>,
}

struct Inner {
    info: ClientInfo,
    auth: Auth,
    url: String,
    transport: Transport,
    keep_raw: bool,
    default_max_tokens: u32,
}

impl fmt::Debug for AnthropicClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("AnthropicClient")
            .field("model", &inner.info.model())
            .field("url", &inner.url)
            .field("api_key", &"[redacted]")
            .field("keep_raw", &inner.keep_raw)
            .field("default_max_tokens", &inner.default_max_tokens)
            .finish()
    }
}

impl AnthropicClient {
    /// Starts a builder; a model and an API key are required.
    pub fn builder() -> AnthropicClientBuilder {
        AnthropicClientBuilder::default()
    }

    fn prepare(&self, req: &ChatRequest, stream: bool) -> Result<Prepared> {
        let inner = &self.inner;
        req.validate()
            .and_then(|()| {
                to_wire(
                    req,
                    &WireOptions {
                        model: inner.info.model(),
                        default_max_tokens: inner.default_max_tokens,
                        stream,
                    },
                )
            })
            .map_err(|e| self.label(e))
    }

    fn label(&self, err: Error) -> Error {
        let err = if err.provider().is_some() {
            err
        } else {
            err.with_provider(PROVIDER)
        };
        if err.model().is_some() {
            err
        } else {
            err.with_model(self.inner.info.model())
        }
    }

    /// The version header, or the one a passthrough carries, and a passthrough's beta flags.
    fn headers(req: &ChatRequest) -> Vec<(&'static str, String)> {
        let passed = |name: &str| {
            req.passthrough_for(convert::ORIGIN).and_then(|p| {
                p.headers
                    .iter()
                    .find(|(n, v)| n.eq_ignore_ascii_case(name) && !v.trim().is_empty())
                    .map(|(_, v)| v.clone())
            })
        };
        let mut headers = vec![(
            "anthropic-version",
            passed("anthropic-version").unwrap_or_else(|| API_VERSION.to_owned()),
        )];
        if let Some(beta) = passed("anthropic-beta") {
            headers.push(("anthropic-beta", beta));
        }
        headers
    }
}

impl ChatClient for AnthropicClient {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(async move {
            let inner = &self.inner;
            let prepared = self.prepare(req, false)?;
            let started = Instant::now();
            let reply = inner
                .transport
                .post_json(
                    &inner.url,
                    &inner.auth,
                    &Self::headers(req),
                    prepared.body,
                    error::map_error,
                )
                .await
                .map_err(|e| self.label(e))?;
            let mut response = decode_reply(&reply.body, prepared.json_tool.as_deref())
                .map_err(|e| self.label(e))?;
            if inner.keep_raw {
                response.raw = serde_json::from_slice(&reply.body).ok();
            }
            response.provider = PROVIDER.to_owned();
            response.model = inner.info.model().to_owned();
            response.request_id = new_request_id();
            response.latency = started.elapsed();
            response.attempts.push(Attempt::success(
                PROVIDER,
                inner.info.model(),
                response.latency,
            ));
            Ok(response)
        })
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(async move {
            let inner = &self.inner;
            let prepared = self.prepare(req, true)?;
            let meta = StreamMeta::new(PROVIDER, inner.info.model());
            let sse = inner
                .transport
                .post_sse(
                    &inner.url,
                    &inner.auth,
                    &Self::headers(req),
                    prepared.body,
                    error::map_error,
                )
                .await
                .map_err(|e| self.label(e))?;
            let events = stream::events(sse, PROVIDER.to_owned(), prepared.json_tool);
            Ok(ChatStream::from_events(meta, events))
        })
    }

    fn count_tokens<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<Option<u64>>> {
        Box::pin(async move {
            let inner = &self.inner;
            let prepared = self.prepare(req, false)?;
            let body = convert::count_body(&prepared.body).map_err(|e| self.label(e))?;
            let url = format!("{}/count_tokens", inner.url);
            let reply = inner
                .transport
                .post_json(
                    &url,
                    &inner.auth,
                    &Self::headers(req),
                    body,
                    error::map_error,
                )
                .await
                .map_err(|e| self.label(e))?;
            let counted: wire::TokenCount =
                parse_json(PROVIDER, &reply.body).map_err(|e| self.label(e))?;
            Ok(Some(counted.input_tokens))
        })
    }

    fn info(&self) -> &ClientInfo {
        &self.inner.info
    }
}

/// Builds an [`AnthropicClient`]; problems are reported by [`build`](AnthropicClientBuilder::build).
#[must_use]
#[derive(Default)]
pub struct AnthropicClientBuilder {
    model: Option<String>,
    api_key: Option<SecretString>,
    base_url: Option<String>,
    http: HttpSettings,
    keep_raw: bool,
    default_max_tokens: Option<u32>,
}

impl fmt::Debug for AnthropicClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicClientBuilder")
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("base_url", &self.base_url)
            .field("http", &self.http)
            .field("keep_raw", &self.keep_raw)
            .field("default_max_tokens", &self.default_max_tokens)
            .finish()
    }
}

impl AnthropicClientBuilder {
    /// Sets the model, e.g. `claude-sonnet-4-5`.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Sets the API key, sent as the `x-api-key` header and never printed.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    /// Sets the API root (default `https://api.anthropic.com`); the client appends
    /// `/v1/messages`. A trailing slash is fine.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Sets timeouts and limits.
    pub fn http_settings(mut self, settings: HttpSettings) -> Self {
        self.http = settings;
        self
    }

    /// Keeps the reply's raw JSON in [`ChatResponse::raw`] (non-streaming calls), including
    /// blocks Switchboard does not map such as server tool results and citations.
    pub fn keep_raw(mut self, keep: bool) -> Self {
        self.keep_raw = keep;
        self
    }

    /// Sets the `max_tokens` sent when a request has none. Anthropic requires the field;
    /// the default is 4096.
    pub fn default_max_tokens(mut self, n: u32) -> Self {
        self.default_max_tokens = Some(n);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when the model or the API key is
    /// missing or empty, when `default_max_tokens` is 0, or when the HTTP client cannot be
    /// built.
    pub fn build(self) -> Result<AnthropicClient> {
        let model = self.model.filter(|m| !m.trim().is_empty()).ok_or_else(|| {
            Error::config(
                "the Anthropic client has no model",
                "name one with `.model(\"claude-sonnet-4-5\")`",
            )
            .with_provider(PROVIDER)
        })?;
        let api_key = self
            .api_key
            .filter(|k| !k.expose_secret().trim().is_empty())
            .ok_or_else(|| {
                Error::config(
                    "no Anthropic API key was given",
                    "set SWITCHBOARD_ANTHROPIC_API_KEY or ANTHROPIC_API_KEY, or pass one with `.api_key(..)`",
                )
                .with_provider(PROVIDER)
            })?;
        let default_max_tokens = self.default_max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
        if default_max_tokens == 0 {
            return Err(Error::config(
                "default_max_tokens is 0",
                "set a positive default, e.g. 4096",
            )
            .with_provider(PROVIDER));
        }
        let base = self.base_url.unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let url = format!("{}/v1/messages", base.trim().trim_end_matches('/'));
        let transport = Transport::new(PROVIDER, self.http)?;
        Ok(AnthropicClient {
            inner: Arc::new(Inner {
                info: ClientInfo::new(PROVIDER, model.clone())
                    .with_capabilities(crate::providers::with_known_window(
                        CAPABILITIES,
                        PROVIDER,
                        &model,
                    ))
                    .with_endpoint(&url, Some(&key_fingerprint(&api_key))),
                auth: Auth::header("x-api-key", api_key),
                url,
                transport,
                keep_raw: self.keep_raw,
                default_max_tokens,
            }),
        })
    }
}

/// Compile-time checks that the promised traits hold.
#[allow(dead_code)]
fn _assert_impls() {
    fn send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    send_sync_clone::<AnthropicClient>();
}

/// Decodes a 2xx Messages body into a response; `json_tool` names the forced tool whose
/// input is the answer's text, if the request asked for a JSON schema.
pub(crate) fn decode_reply(body: &[u8], json_tool: Option<&str>) -> Result<ChatResponse> {
    let wire: MessagesResponse = parse_json(PROVIDER, body)?;
    Ok(from_wire(wire, json_tool))
}

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use error::map_error;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use stream::events as stream_events;
