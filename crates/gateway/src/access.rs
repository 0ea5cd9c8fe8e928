//! The access log: one `info` event per request, target `switchboard_gateway::access`.
//!
//! Each line says what was asked (`method`, `path`, and `dialect`: the front door, `chat`,
//! `messages`, `responses` or `embeddings`), where it went (`route`: the alias or
//! `provider:model`), who answered (`provider`, `model`, `attempts`), how it ended
//! (`status`, and `error` with the failure's kind), how long it took (`latency_ms`, for
//! streams until the last event) and what it used (`input_tokens`, `output_tokens`). A
//! stream's line is written when the stream ends, with `streamed=true`; a client that hangs
//! up mid-stream gets `error="client_closed"`.
//!
//! The failure it prevents: a gateway whose traffic, failovers and refusals cannot be seen
//! without a proxy in front of it. Only these fields are logged: never a body, a header,
//! the query string or a key. Handlers describe the answer with a [`Served`] response
//! extension; the middleware adds what every request has.

use std::future::Future;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::response::Response;
use switchboard::{ChatResponse, Usage};
use tracing::Level;

/// The target of access-log events, for filters such as `switchboard_gateway::access=warn`.
pub(crate) const TARGET: &str = "switchboard_gateway::access";

/// What a handler knows about its answer, carried to the access log in the response's
/// extensions.
#[derive(Clone, Debug, Default)]
pub(crate) struct Served {
    /// The alias or `provider:model` the request resolved to; empty before resolution.
    pub(crate) route: String,
    /// The front door the request came in through; empty for other endpoints.
    pub(crate) dialect: &'static str,
    /// The provider that answered.
    pub(crate) provider: Option<String>,
    /// The model that answered.
    pub(crate) model: Option<String>,
    /// Real attempts made at providers.
    pub(crate) attempts: Option<u32>,
    /// What of the request the answering target could not receive, for the
    /// `x-switchboard-dropped` header (not logged here: the attempt lines carry it).
    pub(crate) dropped: Option<String>,
    /// Tokens the answer used.
    pub(crate) usage: Option<Usage>,
    /// The failure's kind, for an error answer.
    pub(crate) error: Option<&'static str>,
    /// The body is a stream that writes its own line when it ends.
    pub(crate) deferred: bool,
}

/// Writes one access line for the request `run` answers (streams write theirs at the end).
/// Nothing is read or kept when no subscriber takes access lines.
pub(crate) async fn log_requests<F, Fut>(req: Request, run: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    if !tracing::enabled!(target: TARGET, Level::INFO) {
        return run(req).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let response = run(req).await;
    let served = response.extensions().get::<Served>();
    if !served.is_some_and(|s| s.deferred) {
        line(
            method.as_str(),
            &path,
            response.status().as_u16(),
            started.elapsed(),
            served,
            false,
        );
    }
    response
}

/// Writes one access line.
fn line(
    method: &str,
    path: &str,
    status: u16,
    elapsed: Duration,
    served: Option<&Served>,
    streamed: bool,
) {
    let usage = served.and_then(|s| s.usage.as_ref());
    tracing::info!(
        target: TARGET,
        method,
        path,
        status,
        dialect = served.map(|s| s.dialect).filter(|d| !d.is_empty()),
        route = served.map(|s| s.route.as_str()).filter(|r| !r.is_empty()),
        provider = served.and_then(|s| s.provider.as_deref()),
        model = served.and_then(|s| s.model.as_deref()),
        attempts = served.and_then(|s| s.attempts),
        latency_ms = (elapsed.as_secs_f64() * 100_000.0).round() / 100.0,
        streamed,
        input_tokens = usage.map(|u| u.input_tokens),
        output_tokens = usage.map(|u| u.output_tokens),
        error = served.and_then(|s| s.error),
        "request"
    );
}

/// The access line of one streamed answer, written when the stream ends or, if the client
/// goes away first, when the stream is dropped.
#[derive(Debug)]
pub(crate) struct StreamLine {
    started: Instant,
    path: &'static str,
    served: Option<Served>,
}

impl StreamLine {
    /// Starts the line of a stream, answering a request to `path`, that began at `started`
    /// and is answered as `served`.
    pub(crate) fn new(started: Instant, path: &'static str, served: Served) -> StreamLine {
        StreamLine {
            started,
            path,
            served: Some(served),
        }
    }

    /// Writes the line for a stream that completed as `answer`.
    pub(crate) fn done(mut self, answer: &ChatResponse) {
        if let Some(mut served) = self.served.take() {
            served.usage = Some(answer.usage);
            served.model = Some(answer.model_served().to_owned());
            self.write(&served);
        }
    }

    /// Writes the line for a stream that broke after it started, with a failure of `error`'s kind.
    pub(crate) fn failed(mut self, error: &'static str) {
        if let Some(mut served) = self.served.take() {
            served.error = Some(error);
            self.write(&served);
        }
    }

    fn write(&self, served: &Served) {
        line(
            "POST",
            self.path,
            200,
            self.started.elapsed(),
            Some(served),
            true,
        );
    }
}

impl Drop for StreamLine {
    fn drop(&mut self) {
        if let Some(mut served) = self.served.take() {
            served.error = Some("client_closed");
            self.write(&served);
        }
    }
}
