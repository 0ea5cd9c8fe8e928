//! Who answered: an observer around every provider client that counts real attempts and
//! notes the first target to deliver content, for the `x-switchboard-*` headers and metrics.
//!
//! The observer finds the current request's [`Report`] in a task-local set by the handler
//! around `chat`/`chat_stream`; a streamed answer is committed (its first content event
//! has passed the fallback chain) before `chat_stream` returns, so the winner is known
//! before the response headers are written.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use futures_util::StreamExt;
use switchboard::{
    BoxFuture, ChatClient, ChatRequest, ChatResponse, ChatStream, ClientInfo, DynClient,
    EmbedRequest, EmbedResponse, Readiness, Result, StreamEvent,
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

    /// Runs `work` with this report as the current request's.
    pub(crate) async fn scope<F: std::future::Future>(self: &Arc<Self>, work: F) -> F::Output {
        REPORT.scope(Arc::clone(self), work).await
    }
}

fn current() -> Option<Arc<Report>> {
    REPORT.try_with(Arc::clone).ok()
}

/// Observes one provider client: counts attempts, records outcomes, notes the winner.
#[derive(Debug)]
pub(crate) struct Observed {
    inner: DynClient,
    metrics: Arc<Metrics>,
}

impl Observed {
    /// Wraps `inner`.
    pub(crate) fn wrap(inner: DynClient, metrics: Arc<Metrics>) -> DynClient {
        Arc::new(Observed { inner, metrics })
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
            let result = self.inner.chat(req).await;
            let info = self.inner.info();
            match &result {
                Ok(_) => {
                    if let Some(r) = report {
                        let _ = r.winner.set(info.clone());
                    }
                    self.metrics.attempt(info, "success", None);
                }
                Err(e) => self.metrics.attempt(info, "failed", Some(e.kind())),
            }
            result
        })
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(async move {
            let report = self.begin();
            let info = self.inner.info().clone();
            let stream = match self.inner.chat_stream(req).await {
                Ok(stream) => stream,
                Err(e) => {
                    self.metrics.attempt(&info, "failed", Some(e.kind()));
                    return Err(e);
                }
            };
            let metrics = Arc::clone(&self.metrics);
            let mut noted = false;
            let observed = stream.map(move |item| {
                match &item {
                    Ok(event) if !noted && event.is_content() => {
                        noted = true;
                        if let Some(r) = &report {
                            let _ = r.winner.set(info.clone());
                        }
                    }
                    Ok(StreamEvent::Done { .. }) => metrics.attempt(&info, "success", None),
                    Err(e) => metrics.attempt(&info, "failed", Some(e.kind())),
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
            let result = self.inner.embed(req).await;
            let info = self.inner.info();
            match &result {
                Ok(_) => {
                    if let Some(r) = report {
                        let _ = r.winner.set(info.clone());
                    }
                    self.metrics.attempt(info, "success", None);
                }
                Err(e) => self.metrics.attempt(info, "failed", Some(e.kind())),
            }
            result
        })
    }

    fn info(&self) -> &ClientInfo {
        self.inner.info()
    }

    fn readiness(&self) -> Readiness {
        self.inner.readiness()
    }
}
