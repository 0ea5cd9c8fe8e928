//! Who answered: an observer around every provider client that counts real attempts and
//! notes the first target to deliver content, for the `x-switchboard-*` headers and metrics.
//!
//! The observer finds the current request's [`Report`] in a task-local set by the handler
//! around `chat`/`chat_stream`; a streamed answer is committed (its first content event
//! has passed the fallback chain) before `chat_stream` returns, so the winner is known
//! before the response headers are written.
//!
//! Every attempt is also a `debug` event, target `switchboard_gateway::attempt`: provider,
//! model, outcome, the error's kind and HTTP status, latency (for a stream, until it
//! ended), and `dropped`: what of the request that target could not receive
//! ([`ChatRequest::dropped_for`]: another protocol's passthrough fields, another
//! provider's reasoning signatures). The winner's list is kept for the
//! `x-switchboard-dropped` header. The retry, fallback and breaker wrappers log their own decisions at `warn`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use futures_util::StreamExt;
use switchboard::{
    BoxFuture, ChatClient, ChatRequest, ChatResponse, ChatStream, ClientInfo, DynClient,
    EmbedRequest, EmbedResponse, Error, Readiness, Result, StreamEvent,
};

use crate::metrics::Metrics;

tokio::task_local! {
    static REPORT: Arc<Report>;
}

/// What one gateway request's attempts came to.
#[derive(Debug, Default)]
pub(crate) struct Report {
    attempts: AtomicU32,
    winner: OnceLock<ClientInfo>,
    dropped: OnceLock<Vec<String>>,
}

impl Report {
    /// Counts real attempts made so far.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::Relaxed)
    }

    /// Names the target that delivered the answer, once known.
    pub(crate) fn winner(&self) -> Option<&ClientInfo> {
        self.winner.get()
    }

    /// Names what of the request the winning target could not receive; empty when nothing.
    pub(crate) fn dropped(&self) -> &[String] {
        self.dropped.get().map_or(&[], Vec::as_slice)
    }

    /// Notes `info` as the winner, with what it could not receive.
    fn won(&self, info: &ClientInfo, dropped: Vec<String>) {
        if self.winner.set(info.clone()).is_ok() {
            let _ = self.dropped.set(dropped);
        }
    }

    /// Runs `work` with this report as the current request's.
    pub(crate) async fn scope<F: std::future::Future>(self: &Arc<Self>, work: F) -> F::Output {
        REPORT.scope(Arc::clone(self), work).await
    }
}

fn current() -> Option<Arc<Report>> {
    REPORT.try_with(Arc::clone).ok()
}

/// Counts one attempt's outcome in the metrics and logs it at `debug`. A direct model's
/// attempts are counted under the model label `direct`, so client-chosen names never
/// become series.
fn settle(
    metrics: &Metrics,
    info: &ClientInfo,
    direct: bool,
    started: Instant,
    error: Option<&Error>,
    dropped: &[String],
) {
    let outcome = if error.is_some() { "failed" } else { "success" };
    let model = if direct {
        crate::metrics::DIRECT
    } else {
        info.model()
    };
    metrics.attempt(info.provider(), model, outcome, error.map(Error::kind));
    tracing::debug!(
        target: "switchboard_gateway::attempt",
        provider = info.provider(),
        model = info.model(),
        outcome,
        error = error.map(|e| e.kind().as_str()),
        upstream_status = error.and_then(Error::status),
        latency_ms = (started.elapsed().as_secs_f64() * 100_000.0).round() / 100.0,
        dropped = (!dropped.is_empty()).then(|| dropped.join(", ")),
        "attempt"
    );
}

/// Observes one provider client: counts attempts, records outcomes, notes the winner.
#[derive(Debug)]
pub(crate) struct Observed {
    inner: DynClient,
    metrics: Arc<Metrics>,
    direct: bool,
}

impl Observed {
    /// Wraps `inner`, a target of a configured route.
    pub(crate) fn wrap(inner: DynClient, metrics: Arc<Metrics>) -> DynClient {
        Arc::new(Observed {
            inner,
            metrics,
            direct: false,
        })
    }

    /// Wraps `inner`, a model a client named directly.
    pub(crate) fn wrap_direct(inner: DynClient, metrics: Arc<Metrics>) -> DynClient {
        Arc::new(Observed {
            inner,
            metrics,
            direct: true,
        })
    }

    fn begin(&self) -> Option<Arc<Report>> {
        let report = current();
        if let Some(r) = &report {
            r.attempts.fetch_add(1, Ordering::Relaxed);
        }
        report
    }
}

impl ChatClient for Observed {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(async move {
            let report = self.begin();
            let started = Instant::now();
            let info = self.inner.info();
            let dropped = req.dropped_for(info.provider());
            let result = self.inner.chat(req).await;
            match &result {
                Ok(_) => {
                    settle(&self.metrics, info, self.direct, started, None, &dropped);
                    if let Some(r) = report {
                        r.won(info, dropped);
                    }
                }
                Err(e) => settle(&self.metrics, info, self.direct, started, Some(e), &dropped),
            }
            result
        })
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(async move {
            let report = self.begin();
            let started = Instant::now();
            let info = self.inner.info().clone();
            let dropped = req.dropped_for(info.provider());
            let stream = match self.inner.chat_stream(req).await {
                Ok(stream) => stream,
                Err(e) => {
                    settle(
                        &self.metrics,
                        &info,
                        self.direct,
                        started,
                        Some(&e),
                        &dropped,
                    );
                    return Err(e);
                }
            };
            let metrics = Arc::clone(&self.metrics);
            let direct = self.direct;
            let mut noted = false;
            let observed = stream.map(move |item| {
                match &item {
                    Ok(event) if !noted && event.is_content() => {
                        noted = true;
                        if let Some(r) = &report {
                            r.won(&info, dropped.clone());
                        }
                    }
                    Ok(StreamEvent::Done { .. }) => {
                        settle(&metrics, &info, direct, started, None, &dropped)
                    }
                    Err(e) => settle(&metrics, &info, direct, started, Some(e), &dropped),
                    _ => {}
                }
                item
            });
            Ok(ChatStream::new(observed))
        })
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        Box::pin(async move {
            let report = self.begin();
            let started = Instant::now();
            let result = self.inner.embed(req).await;
            let info = self.inner.info();
            match &result {
                Ok(_) => {
                    if let Some(r) = report {
                        r.won(info, Vec::new());
                    }
                    settle(&self.metrics, info, self.direct, started, None, &[]);
                }
                Err(e) => settle(&self.metrics, info, self.direct, started, Some(e), &[]),
            }
            result
        })
    }

    fn count_tokens<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<Option<u64>>> {
        self.inner.count_tokens(req)
    }

    fn info(&self) -> &ClientInfo {
        self.inner.info()
    }

    fn readiness(&self) -> Readiness {
        self.inner.readiness()
    }
}
