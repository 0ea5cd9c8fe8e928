//! The Google Gemini API (AI Studio, `generativelanguage.googleapis.com`): [`GeminiClient`].
//!
//! Implemented sections of the API reference:
//!
//! - [`models.generateContent`](https://ai.google.dev/api/generate-content#method:-models.generatecontent)
//!   and [`models.streamGenerateContent`](https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent)
//!   (`?alt=sse`), with the request and response bodies of
//!   [`GenerateContentResponse`](https://ai.google.dev/api/generate-content#generatecontentresponse);
//! - [`models.embedContent`](https://ai.google.dev/api/embeddings#method:-models.embedcontent)
//!   and [`models.batchEmbedContents`](https://ai.google.dev/api/embeddings#method:-models.batchembedcontents);
//! - [function calling](https://ai.google.dev/gemini-api/docs/function-calling)
//!   (`functionDeclarations`, `toolConfig.functionCallingConfig`, `functionCall`,
//!   `functionResponse`);
//! - [thinking](https://ai.google.dev/gemini-api/docs/thinking) (`thinkingConfig`, thought
//!   summaries) and [thought signatures](https://ai.google.dev/gemini-api/docs/thought-signatures);
//! - [structured output](https://ai.google.dev/gemini-api/docs/structured-output)
//!   (`responseMimeType`, `responseJsonSchema`);
//! - [errors](https://ai.google.dev/gemini-api/docs/troubleshooting) in Google's
//!   [`google.rpc.Status` shape](https://cloud.google.com/apis/design/errors).
//!
//! The key goes in the `x-goog-api-key` header, never in the URL
//! ([authentication](https://ai.google.dev/api#authentication)).
//!
//! Choices worth knowing:
//!
//! - Tool parameters go out as `parametersJsonSchema` and JSON-schema answers as
//!   `responseJsonSchema`: both take plain JSON Schema, whereas `parameters` and
//!   `responseSchema` take an OpenAPI subset that rejects common keywords
//!   (`additionalProperties`, `$ref`, …).
//! - Tool results go out as `functionResponse` parts in a `user` turn. Their function name
//!   comes from the result, or else from the earlier tool call with the same id, so a
//!   conversation begun on OpenAI or Anthropic continues here. Call ids are not sent: the AI
//!   Studio API pairs calls and responses by order.
//! - Thought signatures round-trip as described in the `convert` module: on the tool call,
//!   on the thought part, or as a signature-only thinking part before the part that carried
//!   it. The first function call of a model turn that has no signature (one another provider
//!   made) gets Gemini's documented stand-in signature, which Gemini 3 requires.
//! - A blocked prompt (no candidate, `promptFeedback.blockReason`) is an
//!   [`ErrorKind::ContentFiltered`] error, so fallback can
//!   try another provider; a candidate stopped by a filter is a response whose finish kind
//!   is [`FinishKind::ContentFilter`](crate::FinishKind::ContentFilter).
//! - Usage: `input_tokens` is `promptTokenCount` (it already includes cached tokens) plus
//!   `toolUsePromptTokenCount`; `output_tokens` is `candidatesTokenCount +
//!   thoughtsTokenCount`, since Gemini counts thoughts apart and our output includes
//!   reasoning.

mod convert;
mod error;
mod stream;
mod wire;

use std::fmt;
use std::time::Instant;

use secrecy::SecretString;
use serde_json::Value;

use crate::client::{BoxFuture, ChatClient, ClientInfo};
use crate::error::{Error, ErrorKind, Result};
use crate::middleware::key_fingerprint;
use crate::providers::http::{parse_json, Auth, HttpSettings, Transport};
use crate::providers::path;
use crate::types::{
    new_request_id, Attempt, Capabilities, ChatRequest, ChatResponse, ChatStream, EmbedRequest,
    EmbedResponse, StreamMeta,
};

use wire::{
    BatchEmbedContentsRequest, BatchEmbedContentsResponse, Content, EmbedContentRequest,
    EmbedContentResponse, GenerateContentResponse, WirePart,
};

/// The provider name in responses, errors and attempts.
const PROVIDER: &str = "gemini";

/// What generateContent accepts: tools, schemas, images, documents and audio; a final
/// `model` turn is not continued as a prefill, so continuation skips Gemini.
const CAPABILITIES: Capabilities = Capabilities::permissive().with_prefill(false);

/// The API root used when no base URL is set.
const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// The most texts `batchEmbedContents` takes in one call; larger requests are split.
// NOTE: https://ai.google.dev/api/embeddings#method:-models.batchembedcontents
const MAX_BATCH: usize = 100;

/// A client for one Gemini model over the Gemini API (Google AI Studio keys).
///
/// # Clone
/// Clones share the connection pool; the key and settings are copied.
///
/// # Examples
/// ```no_run
/// # async fn run() -> switchboard::Result<()> {
/// use switchboard::{ChatClient, ChatRequest, GeminiClient};
///
/// let client = GeminiClient::builder()
///     .model("gemini-2.5-flash")
///     .api_key(std::env::var("GEMINI_API_KEY").unwrap_or_default())
///     .build()?;
/// let response = client.chat(&ChatRequest::user("Say hello")).await?;
/// println!("{}", response.text());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct GeminiClient {
    info: ClientInfo,
    transport: Transport,
    auth: Auth,
    root: String,
    keep_raw: bool,
}

impl fmt::Debug for GeminiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeminiClient")
            .field("info", &self.info)
            .field("base_url", &self.root)
            .field("keep_raw", &self.keep_raw)
            .finish_non_exhaustive()
    }
}

impl GeminiClient {
    /// Starts building a client; a model and a key are required.
    pub fn builder() -> GeminiClientBuilder {
        GeminiClientBuilder::default()
    }

    /// Returns `{root}/v1beta/models/{model}:{method}`, the model percent-encoded (it was
    /// checked when the client was built).
    fn url(&self, method: &str) -> String {
        format!(
            "{}/v1beta/models/{}:{method}",
            self.root,
            path::encode(self.info.model())
        )
    }

    fn tag(&self) -> impl Fn(Error) -> Error + '_ {
        move |e| e.with_model(self.info.model())
    }

    async fn post(&self, method: &str, body: &impl serde::Serialize) -> Result<bytes::Bytes> {
        let body = serde_json::to_vec(body).map_err(|e| {
            Error::invalid_request(
                format!("the request could not be encoded as JSON: {e}"),
                "check the request for values JSON cannot hold",
            )
        })?;
        let response = self
            .transport
            .post_json(&self.url(method), &self.auth, &[], body, error::map_error)
            .await?;
        Ok(response.body)
    }

    async fn generate(&self, req: &ChatRequest) -> Result<ChatResponse> {
        req.validate()?;
        let started = Instant::now();
        let body = self
            .post("generateContent", &convert::to_wire(req)?)
            .await?;
        let raw = if self.keep_raw {
            Some(parse_json::<Value>(PROVIDER, &body)?)
        } else {
            None
        };
        let mut response = decode_reply(&body)?;
        response.provider = PROVIDER.to_owned();
        response.model = self.info.model().to_owned();
        response.raw = raw;
        response.request_id = new_request_id();
        response.latency = started.elapsed();
        response.attempts.push(Attempt::success(
            PROVIDER,
            self.info.model(),
            response.latency,
        ));
        Ok(response)
    }

    async fn stream(&self, req: &ChatRequest) -> Result<ChatStream> {
        req.validate()?;
        let meta = StreamMeta::new(PROVIDER, self.info.model());
        let body = serde_json::to_vec(&convert::to_wire(req)?).map_err(|e| {
            Error::invalid_request(
                format!("the request could not be encoded as JSON: {e}"),
                "check the request for values JSON cannot hold",
            )
        })?;
        let sse = self
            .transport
            .post_sse(
                &self.url("streamGenerateContent?alt=sse"),
                &self.auth,
                &[],
                body,
                error::map_error,
            )
            .await?;
        let (events, final_usage) = stream::events_watching_usage(PROVIDER.to_owned(), sse);
        // Gemini has no end marker: without usage on the finishing chunk, the final counts
        // may have been lost, so the usage is marked unknown (budgets keep the reservation).
        Ok(
            ChatStream::from_events(meta, events).map_response(move |response| {
                if !final_usage.load(std::sync::atomic::Ordering::Acquire) {
                    response.usage_unknown = true;
                }
            }),
        )
    }

    async fn embed_all(&self, req: &EmbedRequest) -> Result<EmbedResponse> {
        if req.inputs.is_empty() {
            return Err(Error::invalid_request(
                "the embeddings request has no inputs",
                "pass at least one text to embed",
            ));
        }
        let started = Instant::now();
        let content = |text: &str| Content {
            role: None,
            parts: vec![WirePart::text(text)],
        };
        let mut vectors = Vec::with_capacity(req.inputs.len());
        if let [only] = req.inputs.as_slice() {
            let body = EmbedContentRequest {
                model: None,
                content: content(only),
                output_dimensionality: req.dimensions,
            };
            let answer: EmbedContentResponse =
                parse_json(PROVIDER, &self.post("embedContent", &body).await?)?;
            vectors.push(answer.embedding.values);
        } else {
            let model = format!("models/{}", self.info.model());
            for chunk in req.inputs.chunks(MAX_BATCH) {
                let body = BatchEmbedContentsRequest {
                    requests: chunk
                        .iter()
                        .map(|text| EmbedContentRequest {
                            model: Some(model.clone()),
                            content: content(text),
                            output_dimensionality: req.dimensions,
                        })
                        .collect(),
                };
                let answer: BatchEmbedContentsResponse =
                    parse_json(PROVIDER, &self.post("batchEmbedContents", &body).await?)?;
                if answer.embeddings.len() != chunk.len() {
                    return Err(Error::decode(
                        PROVIDER,
                        format!(
                            "asked for {} embeddings, got {}",
                            chunk.len(),
                            answer.embeddings.len()
                        ),
                    ));
                }
                vectors.extend(answer.embeddings.into_iter().map(|e| e.values));
            }
        }
        let mut response = EmbedResponse::new(vectors);
        response.provider = PROVIDER.to_owned();
        response.model = self.info.model().to_owned();
        response.latency = started.elapsed();
        response.attempts.push(Attempt::success(
            PROVIDER,
            self.info.model(),
            response.latency,
        ));
        Ok(response)
    }
}

impl ChatClient for GeminiClient {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(async move { self.generate(req).await.map_err(self.tag()) })
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(async move { self.stream(req).await.map_err(self.tag()) })
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        Box::pin(async move { self.embed_all(req).await.map_err(self.tag()) })
    }

    fn info(&self) -> &ClientInfo {
        &self.info
    }
}

/// Builds a [`GeminiClient`]; problems surface at [`build`](GeminiClientBuilder::build).
#[must_use]
#[derive(Clone, Default)]
pub struct GeminiClientBuilder {
    model: Option<String>,
    api_key: Option<SecretString>,
    base_url: Option<String>,
    http: HttpSettings,
    keep_raw: bool,
}

impl fmt::Debug for GeminiClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeminiClientBuilder")
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("base_url", &self.base_url)
            .field("http", &self.http)
            .field("keep_raw", &self.keep_raw)
            .finish()
    }
}

impl GeminiClientBuilder {
    /// Sets the model, e.g. `gemini-2.5-flash` (a leading `models/` is accepted).
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Sets the API key, sent in the `x-goog-api-key` header.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    /// Sets the API root (default `https://generativelanguage.googleapis.com`); the client
    /// appends `/v1beta/models/{model}:{method}`. A trailing slash is fine.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Sets timeouts and limits.
    pub fn http_settings(mut self, settings: HttpSettings) -> Self {
        self.http = settings;
        self
    }

    /// Keeps each response's raw JSON in [`ChatResponse::raw`] (non-streaming calls).
    pub fn keep_raw(mut self, keep: bool) -> Self {
        self.keep_raw = keep;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the model or the key is missing or empty, or the HTTP
    /// client cannot be built; [`ErrorKind::InvalidRequest`] when the model name holds
    /// `/`, `?`, `#`, `%`, `..`, whitespace or a control character, which could reshape the
    /// URL it goes into.
    pub fn build(self) -> Result<GeminiClient> {
        let model = self
            .model
            .as_deref()
            .map(str::trim)
            .map(|m| m.strip_prefix("models/").unwrap_or(m))
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::config(
                    "the Gemini client has no model",
                    "call `.model(\"gemini-2.5-flash\")` on the builder",
                )
            })?;
        // The model becomes a path segment: refuse one that could reshape the URL.
        path::segment(PROVIDER, "model", &model)?;
        let key = self
            .api_key
            .filter(|k| !secrecy::ExposeSecret::expose_secret(k).trim().is_empty())
            .ok_or_else(|| {
                Error::new(ErrorKind::Config, "the Gemini client has no API key")
                    .with_provider(PROVIDER)
                    .with_fix(
                        "set SWITCHBOARD_GEMINI_API_KEY (or GEMINI_API_KEY / GOOGLE_API_KEY) to a key from Google AI Studio, or call `.api_key(..)`",
                    )
            })?;
        let root = self
            .base_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .unwrap_or(DEFAULT_BASE_URL);
        let root = root.trim_end_matches('/');
        let root = root.strip_suffix("/v1beta").unwrap_or(root).to_owned();
        Ok(GeminiClient {
            info: ClientInfo::new(PROVIDER, model.clone())
                .with_capabilities(crate::providers::with_known_window(
                    CAPABILITIES,
                    PROVIDER,
                    &model,
                ))
                .with_endpoint(&root, Some(&key_fingerprint(&key))),
            transport: Transport::new(PROVIDER, self.http)?,
            auth: Auth::header("x-goog-api-key", key),
            root,
            keep_raw: self.keep_raw,
        })
    }
}

/// Compile-time checks that the promised auto traits hold.
#[allow(dead_code)]
fn _assert_impls() {
    fn send_sync_clone<T: Send + Sync + Clone>() {}
    send_sync_clone::<GeminiClient>();
    send_sync_clone::<GeminiClientBuilder>();
}

/// Decodes a 2xx `generateContent` body into a response (a blocked prompt is an error).
pub(crate) fn decode_reply(body: &[u8]) -> Result<ChatResponse> {
    let wire: GenerateContentResponse = parse_json(PROVIDER, body)?;
    convert::from_wire(PROVIDER, wire)
}

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use error::map_error;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use stream::events as stream_events;
