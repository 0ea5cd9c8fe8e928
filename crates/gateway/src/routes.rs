//! The HTTP endpoints: `/v1/chat/completions`, `/v1/messages` and `/v1/responses` (in [`crate::ingress`]),
//! `/v1/embeddings`, `/v1/models`, `/v1/models/{id}`, `/health`, `/metrics`, and the
//! helpers every front door shares. A wrong method gets a 405 in OpenAI's error shape with
//! the `Allow` header; a panic in a handler becomes a 500 in the same shape.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use futures_util::FutureExt as _;
use serde::Serialize;
use switchboard::config::build::BuiltRoute;
use switchboard::providers::openai::wire;
use switchboard::{ChatClient, ChatRequest, EmbedRequest};

use crate::access::{self, Served, StreamLine};
use crate::error::ApiError;
use crate::metrics::Answer;
use crate::report::Report;
use crate::sse;
use crate::AppState;

// Header names built at compile time rather than parsed on every answer.
const PROVIDER_HEADER: HeaderName = HeaderName::from_static("x-switchboard-provider");
const MODEL_HEADER: HeaderName = HeaderName::from_static("x-switchboard-model");
const ATTEMPTS_HEADER: HeaderName = HeaderName::from_static("x-switchboard-attempts");
const DROPPED_HEADER: HeaderName = HeaderName::from_static("x-switchboard-dropped");
pub(crate) const ACCEL_BUFFERING_HEADER: HeaderName = HeaderName::from_static("x-accel-buffering");
const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

pub(crate) type Shared = State<Arc<AppState>>;

/// Builds the router over the shared state.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/messages", post(crate::ingress::messages::create))
        .route(
            "/v1/messages/count_tokens",
            post(crate::ingress::messages::count_tokens),
        )
        .route("/v1/responses", post(crate::ingress::responses::create))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .route("/v1/models/{*id}", get(model))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(unknown_path)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            around_requests,
        ))
        .with_state(state)
}

/// A failed request, with what metrics need.
pub(crate) struct Failure {
    pub(crate) route: String,
    pub(crate) error: ApiError,
    pub(crate) attempts: Option<u32>,
}

impl Failure {
    /// A failure before the request resolved to a route.
    pub(crate) fn early(error: ApiError) -> Failure {
        Failure {
            route: String::new(),
            error,
            attempts: None,
        }
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn completion_id() -> String {
    format!("chatcmpl-{:024x}", fastrand::u128(..) >> 32)
}

/// Checks the gateway key, sent as `Authorization: Bearer <key>` or (as Anthropic's SDK
/// sends it) `x-api-key: <key>`.
pub(crate) fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = crate::auth::bearer_token(headers).or_else(|| {
        headers
            .get(API_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    });
    if state.authorized(token) {
        return Ok(());
    }
    let message = if token.is_some() || headers.contains_key(header::AUTHORIZATION) {
        "the gateway key is wrong; send one of the keys configured in `server.api_keys_env` as `Authorization: Bearer <key>` or `x-api-key: <key>`"
    } else {
        "this gateway needs a key; send `Authorization: Bearer <key>` or `x-api-key: <key>` with one of the keys configured in `server.api_keys_env`"
    };
    Err(ApiError::unauthorized(message))
}

pub(crate) async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<bytes::Bytes, ApiError> {
    let limit = state.max_body;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if let Some(timed_out) = cause::<crate::server::BodyTimedOut>(&e) {
            return ApiError::body_timed_out(timed_out.0);
        }
        let text = e.to_string();
        if text.contains("length limit") {
            ApiError::too_large(limit)
        } else {
            ApiError::invalid(format!("the request body could not be read: {text}"), None)
        }
    })
}

/// Finds an error of type `T` in `err`'s chain of causes.
fn cause<'a, T: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::invalid(
            format!("the request body is not the JSON this endpoint takes: {e}"),
            None,
        )
    })
}

/// Answers a failure in the OpenAI shape; see [`finish_as`].
pub(crate) fn finish(
    state: &AppState,
    dialect: &'static str,
    started: Instant,
    result: Result<Response, Failure>,
) -> Response {
    finish_as(state, dialect, started, result, ApiError::into_response)
}

/// Passes a success through; counts a failure, answers it with `render` (the dialect's
/// error shape) and says how many attempts it made.
pub(crate) fn finish_as(
    state: &AppState,
    dialect: &'static str,
    started: Instant,
    result: Result<Response, Failure>,
    render: impl FnOnce(ApiError) -> Response,
) -> Response {
    match result {
        Ok(response) => response,
        Err(mut failure) => {
            // More than one upstream attempt means the route already retried or fell back.
            if failure.attempts.is_some_and(|n| n > 1) {
                failure.error = failure.error.already_retried();
            }
            let status = failure.error.status.as_u16();
            if failure.error.error_kind.is_none() {
                state.metrics.gateway_error(failure.error.kind_label());
            }
            state
                .metrics
                .request(dialect, &failure.route, status, started.elapsed(), None);
            let error = failure.error.kind_label();
            let mut response = render(failure.error);
            if let Some(n) = failure.attempts {
                response
                    .headers_mut()
                    .insert(ATTEMPTS_HEADER, HeaderValue::from(n));
            }
            response.extensions_mut().insert(Served {
                route: failure.route,
                dialect,
                attempts: failure.attempts,
                error: Some(error),
                ..Served::default()
            });
            response
        }
    }
}

/// The most bytes of the `x-switchboard-dropped` header.
const MAX_DROPPED_HEADER: usize = 1024;

/// The `x-switchboard-dropped` value: what the answering target could not receive.
pub(crate) fn dropped_header(dropped: &[String]) -> Option<String> {
    if dropped.is_empty() {
        return None;
    }
    let mut text: String = dropped
        .join(", ")
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if text.len() > MAX_DROPPED_HEADER {
        text.truncate(MAX_DROPPED_HEADER - 3);
        text.push_str("...");
    }
    Some(text)
}

/// Copies the route's session header, when it has one, into the request's routing hints
/// (prompt-cache affinity); every front door calls it, and it is never sent upstream.
pub(crate) fn read_session(route: &BuiltRoute, headers: &HeaderMap, req: &mut ChatRequest) {
    if let Some(name) = &route.session_header {
        req.routing.session = headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
    }
}

/// A `200` server-sent-events answer over `body`, with the headers that keep proxies from
/// buffering it.
pub(crate) fn event_stream(body: Body) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(ACCEL_BUFFERING_HEADER, HeaderValue::from_static("no"));
    response
}

/// The real attempts behind `answer`: those observed at providers, or, when none were
/// observed (a cached answer), the attempts the answer lists.
pub(crate) fn attempts_of(report: &Report, answer: &switchboard::ChatResponse) -> u32 {
    match report.attempts() {
        0 => u32::try_from(answer.attempts().len()).unwrap_or(u32::MAX),
        n => n,
    }
}

/// Says who answered in the `x-switchboard-*` headers, and in the access log unless the
/// answer is a stream (whose [`StreamLine`] logs it).
pub(crate) fn who_answered(response: &mut Response, served: Served) {
    let headers = response.headers_mut();
    if let Some(v) = served
        .provider
        .as_deref()
        .and_then(|p| HeaderValue::from_str(p).ok())
    {
        headers.insert(PROVIDER_HEADER, v);
    }
    if let Some(v) = served
        .model
        .as_deref()
        .and_then(|m| HeaderValue::from_str(m).ok())
    {
        headers.insert(MODEL_HEADER, v);
    }
    if let Some(n) = served.attempts {
        headers.insert(ATTEMPTS_HEADER, HeaderValue::from(n));
    }
    if let Some(v) = served
        .dropped
        .as_deref()
        .and_then(|d| HeaderValue::from_str(d).ok())
    {
        headers.insert(DROPPED_HEADER, v);
    }
    response.extensions_mut().insert(served);
}

async fn chat_completions(State(state): Shared, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let result = chat(&state, &headers, body, started).await;
    finish(&state, "chat", started, result)
}

async fn chat(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Body,
    started: Instant,
) -> Result<Response, Failure> {
    authorize(state, headers).map_err(Failure::early)?;
    let bytes = read_body(state, headers, body)
        .await
        .map_err(Failure::early)?;
    let wire_req: wire::ChatCompletionRequest = parse(&bytes).map_err(Failure::early)?;
    let route = state.resolve(&wire_req.model).map_err(|error| Failure {
        route: String::new(),
        error,
        attempts: None,
    })?;
    let fail = |error: ApiError, attempts: Option<u32>| Failure {
        route: route.alias.clone(),
        error,
        attempts,
    };
    let mut req = crate::convert::from_wire(&wire_req).map_err(|e| fail(e, None))?;
    read_session(&route, headers, &mut req);
    let report = Arc::new(Report::default());
    let id = completion_id();
    let created = now_secs();
    if wire_req.stream == Some(true) {
        let in_flight = state.metrics.start();
        let stream = report
            .scope(route.client.chat_stream(&req))
            .await
            .map_err(|e| fail(ApiError::from_error(&e), Some(report.attempts())))?;
        let (provider, model) = match report.winner() {
            Some(info) => (info.provider().to_owned(), info.model().to_owned()),
            None => first_target(&route),
        };
        let metrics = Arc::clone(&state.metrics);
        let alias = route.alias.clone();
        let served = Served {
            route: alias.clone(),
            dialect: "chat",
            provider: Some(provider),
            model: Some(model.clone()),
            attempts: Some(report.attempts().max(1)),
            deferred: true,
            ..Served::default()
        };
        let line = StreamLine::new(started, "/v1/chat/completions", served.clone());
        let include_usage = wire_req
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        let ctx = sse::Context {
            id,
            created,
            model: model.clone(),
            include_usage,
            on_end: Some(Box::new(move |end: sse::End<'_>| {
                let _in_flight = in_flight;
                match end {
                    sse::End::Done(r) => {
                        metrics.request("chat", &alias, 200, started.elapsed(), Some(answer_of(r)));
                        line.done(r);
                    }
                    sse::End::Failed(e) => {
                        metrics.request("chat", &alias, e.status.as_u16(), started.elapsed(), None);
                        line.failed(e.kind_label());
                    }
                }
            })),
        };
        let stream = sse::guarded(stream, state.cutoff());
        let body = Body::from_stream(sse::frames(stream, ctx));
        let mut response = event_stream(body);
        who_answered(&mut response, served);
        return Ok(response);
    }
    let _in_flight = state.metrics.start();
    let answer = report
        .scope(route.client.chat(&req))
        .await
        .map_err(|e| fail(ApiError::from_error(&e), Some(report.attempts())))?;
    let attempts = attempts_of(&report, &answer);
    let completion = crate::convert::to_wire(&answer, &id, created);
    let body = serde_json::to_vec(&completion).unwrap_or_default();
    state.metrics.request(
        "chat",
        &route.alias,
        200,
        started.elapsed(),
        Some(answer_of(&answer)),
    );
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    who_answered(
        &mut response,
        Served {
            route: route.alias.clone(),
            dialect: "chat",
            provider: Some(answer.provider.clone()),
            model: Some(answer.model_served().to_owned()),
            attempts: Some(attempts),
            usage: Some(answer.usage),
            ..Served::default()
        },
    );
    Ok(response)
}

pub(crate) fn answer_of(r: &switchboard::ChatResponse) -> Answer<'_> {
    Answer {
        usage: &r.usage,
        provider: &r.provider,
        model: r.model_served(),
    }
}

pub(crate) fn json_response<T: Serialize>(value: &T) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub(crate) fn first_target(route: &BuiltRoute) -> (String, String) {
    route
        .targets
        .first()
        .map(|t| (t.info().provider().to_owned(), t.info().model().to_owned()))
        .unwrap_or_default()
}

async fn embeddings(State(state): Shared, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let result = embed(&state, &headers, body, started).await;
    finish(&state, "embeddings", started, result)
}

async fn embed(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Body,
    started: Instant,
) -> Result<Response, Failure> {
    authorize(state, headers).map_err(Failure::early)?;
    let bytes = read_body(state, headers, body)
        .await
        .map_err(Failure::early)?;
    let wire_req: wire::EmbeddingRequest = parse(&bytes).map_err(Failure::early)?;
    let route = state.resolve(&wire_req.model).map_err(Failure::early)?;
    if wire_req.input.is_empty() {
        return Err(Failure::early(ApiError::invalid(
            "`input` is empty; send at least one text",
            Some("input"),
        )));
    }
    let mut req = EmbedRequest::new(wire_req.input.iter().cloned());
    req.dimensions = wire_req.dimensions;
    let report = Arc::new(Report::default());
    let _in_flight = state.metrics.start();
    let answer = report
        .scope(route.client.embed(&req))
        .await
        .map_err(|e| Failure {
            route: route.alias.clone(),
            error: ApiError::from_error(&e),
            attempts: Some(report.attempts()),
        })?;
    let base64 = wire_req.encoding_format.as_deref() == Some("base64");
    let data: Vec<serde_json::Value> = answer
        .embeddings
        .iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
                serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                serde_json::json!(vector)
            };
            serde_json::json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let usage = crate::convert::usage_to_wire(&answer.usage);
    let body = serde_json::json!({
        "object": "list",
        "data": data,
        "model": answer.model,
        "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.total_tokens},
    });
    state.metrics.request(
        "embeddings",
        &route.alias,
        200,
        started.elapsed(),
        Some(Answer {
            usage: &answer.usage,
            provider: &answer.provider,
            model: &answer.model,
        }),
    );
    let mut response = json_response(&body);
    let attempts = match report.attempts() {
        0 => u32::try_from(answer.attempts().len().max(1)).unwrap_or(u32::MAX),
        n => n,
    };
    who_answered(
        &mut response,
        Served {
            route: route.alias.clone(),
            dialect: "embeddings",
            provider: Some(answer.provider.clone()),
            model: Some(answer.model.clone()),
            attempts: Some(attempts),
            usage: Some(answer.usage),
            ..Served::default()
        },
    );
    Ok(response)
}

#[derive(Serialize)]
struct ModelList<'a> {
    object: &'static str,
    data: Vec<ModelEntry<'a>>,
}

#[derive(Serialize)]
struct ModelEntry<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

/// Lists the aliases: in Anthropic's shape when the request looks like Anthropic's SDK
/// (it sends `anthropic-version`, or its key as `x-api-key`), in OpenAI's otherwise.
async fn models(State(state): Shared, headers: HeaderMap) -> Response {
    let anthropic = crate::ingress::messages::is_anthropic_client(&headers);
    if let Err(e) = authorize(&state, &headers) {
        state.metrics.gateway_error(e.kind_label());
        return if anthropic {
            crate::ingress::messages::error_response(e)
        } else {
            e.into_response()
        };
    }
    if anthropic {
        return json_response(&crate::ingress::messages::model_list(&state.aliases));
    }
    let list = ModelList {
        object: "list",
        data: state
            .aliases
            .iter()
            .map(|alias| ModelEntry {
                id: alias,
                object: "model",
                created: 0,
                owned_by: "switchboard",
            })
            .collect(),
    };
    json_response(&list)
}

/// `GET /v1/models/{id}`: one alias, or a direct `provider:model` this gateway allows.
async fn model(State(state): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(e) = authorize(&state, &headers) {
        state.metrics.gateway_error(e.kind_label());
        return e.into_response();
    }
    if !state.serves(&id) {
        let error = ApiError::model_not_found(format!(
            "the model `{id}` does not exist on this gateway; GET /v1/models lists the aliases"
        ));
        state.metrics.gateway_error(error.kind_label());
        return error.into_response();
    }
    let owned_by = match id.split_once(':') {
        Some((provider, _)) if !state.routes.contains_key(&id) => provider,
        _ => "switchboard",
    };
    json_response(&serde_json::json!({
        "id": id,
        "object": "model",
        "created": 0,
        "owned_by": owned_by,
    }))
}

async fn health() -> Response {
    json_response(&serde_json::json!({"status": "ok"}))
}

async fn metrics(State(state): Shared, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&state, &headers) {
        return e.into_response();
    }
    // Read where the breakers are shared, so a breaker another replica opened shows here.
    let breakers = crate::metrics::Metrics::render_breakers(&state.shared_breaker_states().await);
    let text = state.metrics.render(&breakers);
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// What every request passes through: the access log around the cut at the end of the
/// shutdown grace period and the panic guard. One layer rather than one each, since every
/// `from_fn` layer clones the inner service and boxes a future per request.
async fn around_requests(
    State(state): Shared,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    access::log_requests(req, |req| cut_at_grace_end(&state, req, next)).await
}

/// Answers 503 for a request still waiting when the shutdown grace period ends, and 500
/// for a handler that panicked (instead of dropping the connection with no answer).
async fn cut_at_grace_end(
    state: &AppState,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let run = AssertUnwindSafe(next.run(req)).catch_unwind();
    tokio::select! {
        response = run => response.unwrap_or_else(|panic| panicked(state, panic.as_ref())),
        () = state.cutoff() => {
            let error = ApiError::shut_down();
            let label = error.kind_label();
            let mut response = error.into_response();
            response.extensions_mut().insert(Served {
                error: Some(label),
                ..Served::default()
            });
            response
        }
    }
}

/// The 500 answer for a handler that panicked; the panic's message goes to the log.
fn panicked(state: &AppState, panic: &(dyn std::any::Any + Send)) -> Response {
    let message = crate::error::panic_message(panic);
    tracing::error!(panic = message, "a request handler panicked; answered 500");
    let error = ApiError::internal();
    let label = error.kind_label();
    state.metrics.gateway_error(label);
    let mut response = error.into_response();
    response.extensions_mut().insert(Served {
        error: Some(label),
        ..Served::default()
    });
    response
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    ApiError::method_not_allowed(method.as_str(), uri.path()).into_response()
}

async fn unknown_path(uri: Uri) -> Response {
    ApiError::no_route(uri.path()).into_response()
}
