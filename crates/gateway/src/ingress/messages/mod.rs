//! The Anthropic Messages API front door: `POST /v1/messages` (JSON or SSE) and
//! `POST /v1/messages/count_tokens`, over the same routes as Chat Completions.
//!
//! A request is decoded to the neutral request ([`decode`]), sent through the route's
//! stack — so any target protocol can answer it, with the same failover, breakers, budgets
//! and `x-switchboard-*` headers — and the answer is encoded back in Anthropic's shapes
//! ([`encode`], [`stream`]). Errors are Anthropic's `{"type": "error", "error": {...}}`
//! with its statuses: 400 `invalid_request_error`, 401 `authentication_error`, 404
//! `not_found_error`, 429 `rate_limit_error` with `retry-after`, 529 `overloaded_error`
//! (every target unavailable) with `retry-after`.
//!
//! When the answering target could not receive part of the request (another protocol's
//! fields, another provider's reasoning), the `x-switchboard-dropped` header lists it.
//! `count_tokens` asks the route's first ready target when its provider counts tokens
//! (Anthropic's `count_tokens` endpoint), and otherwise answers the gateway's own estimate
//! ([`switchboard::ChatRequest::estimated_input_tokens`]).

mod decode;
mod encode;
mod signature;
mod stream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::access::{Served, StreamLine};
use crate::error::ApiError;
use crate::report::Report;
use crate::routes::{
    answer_of, attempts_of, authorize, dropped_header, event_stream, finish_as, first_target,
    json_response, read_body, read_session, who_answered, Failure, Shared,
};
use crate::AppState;

pub(crate) use encode::model_list;

/// The `dialect` label of this front door in metrics and the access log.
const DIALECT: &str = "messages";

/// How long a stream's upstream may be quiet before a `ping` goes out.
const PING_EVERY: Duration = Duration::from_secs(10);

/// Says whether a request comes from an Anthropic client: it sends `anthropic-version`,
/// or its key as `x-api-key`.
pub(crate) fn is_anthropic_client(headers: &HeaderMap) -> bool {
    headers.contains_key("anthropic-version") || headers.contains_key("x-api-key")
}

/// Answers an error in Anthropic's shape and status.
pub(crate) fn error_response(e: ApiError) -> Response {
    let (status, _) = encode::error_kind(&e);
    e.respond(status, encode::error_json(&e))
}

fn message_id() -> String {
    format!("msg_{:024x}", fastrand::u128(..) >> 32)
}

/// `POST /v1/messages`.
pub(crate) async fn create(State(state): Shared, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let result = messages(&state, &headers, body, started).await;
    finish_as(&state, DIALECT, started, result, error_response)
}

async fn messages(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Body,
    started: Instant,
) -> Result<Response, Failure> {
    authorize(state, headers).map_err(Failure::early)?;
    let bytes = read_body(state, headers, body)
        .await
        .map_err(Failure::early)?;
    let mut decoded =
        decode::decode(&bytes, headers, decode::Endpoint::Create).map_err(Failure::early)?;
    let route = state.resolve(&decoded.model).map_err(Failure::early)?;
    let fail = |error: ApiError, attempts: Option<u32>| Failure {
        route: route.alias.clone(),
        error,
        attempts,
    };
    read_session(&route, headers, &mut decoded.req);
    let req = &decoded.req;
    let report = Arc::new(Report::default());
    let id = message_id();
    if decoded.stream {
        let in_flight = state.metrics.start();
        let stream = report
            .scope(route.client.chat_stream(req))
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
            dialect: DIALECT,
            provider: Some(provider.clone()),
            model: Some(model.clone()),
            attempts: Some(report.attempts().max(1)),
            dropped: dropped_header(report.dropped()),
            deferred: true,
            ..Served::default()
        };
        let line = StreamLine::new(started, "/v1/messages", served.clone());
        let ctx = stream::Context {
            id,
            model,
            provider,
            ping_every: PING_EVERY,
            on_end: Some(Box::new(move |end: crate::sse::End<'_>| {
                let _in_flight = in_flight;
                match end {
                    crate::sse::End::Done(r) => {
                        metrics.request(
                            DIALECT,
                            &alias,
                            200,
                            started.elapsed(),
                            Some(answer_of(r)),
                        );
                        line.done(r);
                    }
                    crate::sse::End::Failed(e) => {
                        metrics.request(
                            DIALECT,
                            &alias,
                            e.status.as_u16(),
                            started.elapsed(),
                            None,
                        );
                        line.failed(e.kind_label());
                    }
                }
            })),
        };
        let stream = crate::sse::guarded(stream, state.cutoff());
        let mut response = event_stream(Body::from_stream(stream::frames(stream, ctx)));
        who_answered(&mut response, served);
        return Ok(response);
    }
    let _in_flight = state.metrics.start();
    let answer = report
        .scope(route.client.chat(req))
        .await
        .map_err(|e| fail(ApiError::from_error(&e), Some(report.attempts())))?;
    let attempts = attempts_of(&report, &answer);
    let mut response = json_response(&encode::message(&answer, &id));
    state.metrics.request(
        DIALECT,
        &route.alias,
        200,
        started.elapsed(),
        Some(answer_of(&answer)),
    );
    who_answered(
        &mut response,
        Served {
            route: route.alias.clone(),
            dialect: DIALECT,
            provider: Some(answer.provider.clone()),
            model: Some(answer.model_served().to_owned()),
            attempts: Some(attempts),
            usage: Some(answer.usage),
            dropped: dropped_header(report.dropped()),
            ..Served::default()
        },
    );
    Ok(response)
}

/// Asks the route's first ready target to count, when its provider can (Anthropic):
/// the count and the provider, or `None` for the gateway's own estimate.
async fn provider_count(
    route: &switchboard::config::build::BuiltRoute,
    req: &switchboard::ChatRequest,
) -> Option<(u64, String)> {
    use switchboard::ChatClient as _;
    let target = route
        .targets
        .iter()
        .find(|t| t.client.readiness().is_ready())?;
    match target.client.count_tokens(req).await {
        Ok(Some(n)) => Some((n, target.info().provider().to_owned())),
        Ok(None) => None,
        Err(e) => {
            tracing::debug!(
                target: "switchboard_gateway::attempt",
                provider = target.info().provider(),
                model = target.info().model(),
                error = e.kind().as_str(),
                "token count failed; answering the gateway's estimate"
            );
            None
        }
    }
}

/// `POST /v1/messages/count_tokens`: the provider's count when the route's first ready
/// target can count (Anthropic), the gateway's estimate otherwise; `x-switchboard-provider`
/// names the provider that counted.
pub(crate) async fn count_tokens(State(state): Shared, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let result = count(&state, &headers, body, started).await;
    finish_as(&state, DIALECT, started, result, error_response)
}

async fn count(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Body,
    started: Instant,
) -> Result<Response, Failure> {
    authorize(state, headers).map_err(Failure::early)?;
    let bytes = read_body(state, headers, body)
        .await
        .map_err(Failure::early)?;
    let decoded =
        decode::decode(&bytes, headers, decode::Endpoint::CountTokens).map_err(Failure::early)?;
    let route = state.resolve(&decoded.model).map_err(Failure::early)?;
    let counted = provider_count(&route, &decoded.req).await;
    let tokens = counted
        .as_ref()
        .map_or_else(|| decoded.req.estimated_input_tokens(), |(n, _)| *n);
    state
        .metrics
        .request(DIALECT, &route.alias, 200, started.elapsed(), None);
    let mut response = json_response(&serde_json::json!({ "input_tokens": tokens }));
    who_answered(
        &mut response,
        Served {
            route: route.alias.clone(),
            dialect: DIALECT,
            provider: counted.map(|(_, provider)| provider),
            ..Served::default()
        },
    );
    Ok(response)
}
