//! `POST /v1/responses`: OpenAI's Responses API, stateless, over the same routes as Chat
//! Completions.
//!
//! The handler reads top to bottom: authenticate, read, decode ([`decode`]), resolve the
//! route, call it, encode the answer ([`encode`]) or the stream ([`stream`]). Errors are
//! OpenAI's error JSON (the same mapping as `/v1/chat/completions`), and answers carry the
//! same `x-switchboard-provider`, `-model` and `-attempts` headers, plus
//! `x-switchboard-dropped` when reasoning from another provider was left out of
//! the request that answered (see [`reasoning`]).

mod content;
mod decode;
mod encode;
mod events;
mod reasoning;
mod stream;
mod wire;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::access::{Served, StreamLine};
use crate::error::ApiError;
use crate::report::Report;
use crate::routes::{
    answer_of, attempts_of, authorize, dropped_header, event_stream, finish, first_target,
    now_secs, parse, read_body, read_session, who_answered, Failure,
};
use crate::{sse, AppState};

/// The path this front door serves, for the access log.
const PATH: &str = "/v1/responses";

/// The `dialect` label of this front door in metrics and the access log.
pub(crate) const DIALECT: &str = "responses";

/// Answers `POST /v1/responses`.
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let result = respond(&state, &headers, body, started).await;
    finish(&state, DIALECT, started, result)
}

/// What the response object repeats from the request.
fn echo(body: &wire::CreateRequest) -> wire::Echo {
    wire::Echo {
        instructions: body.instructions.clone(),
        max_output_tokens: body.max_output_tokens,
        parallel_tool_calls: body.parallel_tool_calls.unwrap_or(true),
        reasoning: body.reasoning.clone().unwrap_or_default(),
        temperature: body.temperature,
        text: body.text.clone().unwrap_or_else(|| wire::TextParam {
            format: Some(wire::Format {
                kind: "text".to_owned(),
                ..wire::Format::default()
            }),
        }),
        tool_choice: body.tool_choice.clone().unwrap_or_default(),
        tools: body.tools.clone().unwrap_or_default(),
        top_p: body.top_p,
        metadata: body
            .metadata
            .clone()
            .unwrap_or_else(|| serde_json::Value::Object(Default::default())),
    }
}

async fn respond(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Body,
    started: Instant,
) -> Result<Response, Failure> {
    authorize(state, headers).map_err(Failure::early)?;
    let bytes = read_body(state, headers, body)
        .await
        .map_err(Failure::early)?;
    let wire_req: wire::CreateRequest = parse(&bytes).map_err(Failure::early)?;
    let route = state.resolve(&wire_req.model).map_err(Failure::early)?;
    let fail = |error, attempts| Failure {
        route: route.alias.clone(),
        error,
        attempts,
    };
    let mut req = decode::from_wire(&wire_req).map_err(|e| fail(e, None))?;
    read_session(&route, headers, &mut req);
    let report = Arc::new(Report::default());
    let id = encode::new_id("resp");
    let created_at = now_secs();
    let echo = echo(&wire_req);
    if wire_req.stream == Some(true) {
        let in_flight = state.metrics.start();
        let events = report
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
            provider: Some(provider.clone()),
            model: Some(model.clone()),
            dialect: DIALECT,
            attempts: Some(report.attempts().max(1)),
            dropped: dropped_header(report.dropped()),
            deferred: true,
            ..Served::default()
        };
        let line = StreamLine::new(started, PATH, served.clone());
        let ctx = stream::Context {
            id,
            created_at,
            model,
            origin: provider,
            echo,
            on_end: Some(Box::new(move |end: sse::End<'_>| {
                let _in_flight = in_flight;
                match end {
                    sse::End::Done(r) => {
                        metrics.request(
                            DIALECT,
                            &alias,
                            200,
                            started.elapsed(),
                            Some(answer_of(r)),
                        );
                        line.done(r);
                    }
                    sse::End::Failed(e) => {
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
        let events = sse::guarded(events, state.cutoff());
        let mut response = event_stream(Body::from_stream(stream::frames(events, ctx)));
        who_answered(&mut response, served);
        return Ok(response);
    }
    let _in_flight = state.metrics.start();
    let answer = report
        .scope(route.client.chat(&req))
        .await
        .map_err(|e| fail(ApiError::from_error(&e), Some(report.attempts())))?;
    let attempts = attempts_of(&report, &answer);
    let body = encode::to_wire(&answer, &id, created_at, &echo);
    state.metrics.request(
        DIALECT,
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
            provider: Some(answer.provider.clone()),
            model: Some(answer.model_served().to_owned()),
            dialect: DIALECT,
            attempts: Some(attempts),
            dropped: dropped_header(report.dropped()),
            usage: Some(answer.usage),
            ..Served::default()
        },
    );
    Ok(response)
}
