//! [`ConcurrencyLimitClient`]: at most N calls in flight; the rest wait their turn, for a
//! bounded time if you say so.
//!
//! The failure it prevents: a burst of tasks opening hundreds of connections at once and
//! drawing a wall of 429s (or exhausting sockets), and — with
//! [`with_max_wait`](ConcurrencyLimitClient::with_max_wait) — a queue that grows without
//! bound while callers wait forever. A call that waited too long fails with
//! [`ErrorKind::Timeout`], which a fallback chain treats like any other timeout and moves on.
//!
//! A stream holds its permit until it ends, fails or is dropped, not just until it opens.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream;
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::client::{BoxFuture, ChatClient, ClientInfo, Readiness};
use crate::error::{Error, ErrorKind, Result};
use crate::types::{ChatRequest, ChatResponse, ChatStream, EmbedRequest, EmbedResponse};

/// Limits how many calls run at once through the inner client.
///
/// # Clone
/// Clones share the permits: N is the limit across every clone.
///
/// # Examples
/// ```
/// use switchboard::{ChatClientExt, ChatRequest, ChatResponse, FunctionClient};
/// use std::time::Duration;
///
/// let model = FunctionClient::new("m", |_req: &ChatRequest| Ok(ChatResponse::from_text("ok")));
/// let client = model.with_concurrency_limit(8).with_max_wait(Duration::from_secs(5));
/// assert_eq!(client.available(), 8);
/// ```
#[derive(Clone)]
pub struct ConcurrencyLimitClient<C> {
    inner: C,
    permits: Arc<Semaphore>,
    limit: usize,
    max_wait: Option<Duration>,
}

impl<C: fmt::Debug> fmt::Debug for ConcurrencyLimitClient<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimitClient")
            .field("inner", &self.inner)
            .field("limit", &self.limit)
            .field("available", &self.permits.available_permits())
            .field("max_wait", &self.max_wait)
            .finish()
    }
}

impl<C: ChatClient> ConcurrencyLimitClient<C> {
    /// Wraps `inner` so at most `limit` calls run at once (a limit of 0 is taken as 1).
    pub fn new(inner: C, limit: usize) -> ConcurrencyLimitClient<C> {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        ConcurrencyLimitClient {
            inner,
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            max_wait: None,
        }
    }

    /// Fails a call with [`ErrorKind::Timeout`] when it has waited `max_wait` for a permit.
    #[must_use]
    pub fn with_max_wait(mut self, max_wait: Duration) -> ConcurrencyLimitClient<C> {
        self.max_wait = Some(max_wait);
        self
    }

    /// Returns how many more calls could start right now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// Returns the wrapped client.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// Returns the wrapped client, consuming the wrapper.
    pub fn into_inner(self) -> C {
        self.inner
    }

    async fn acquire(&self) -> Result<OwnedSemaphorePermit> {
        let acquire = self.permits.clone().acquire_owned();
        let acquired = match self.max_wait {
            None => acquire.await,
            Some(max_wait) => match tokio::time::timeout(max_wait, acquire).await {
                Ok(acquired) => acquired,
                Err(_) => {
                    let info = self.inner.info();
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "waited {:.1}s for one of {} concurrency permits for {info}; all stayed busy",
                            max_wait.as_secs_f64(),
                            self.limit
                        ),
                    )
                    .with_fix("raise the concurrency limit or max_wait, or send fewer calls at once"));
                }
            },
        };
        // The semaphore is never closed, so acquiring only fails if that changes.
        acquired.map_err(|_| {
            Error::config(
                "the concurrency limiter was closed",
                "build a new ConcurrencyLimitClient",
            )
        })
    }
}

impl<C: ChatClient> ChatClient for ConcurrencyLimitClient<C> {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(async move {
            let _permit = self.acquire().await?;
            self.inner.chat(req).await
        })
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(async move {
            let permit = self.acquire().await?;
            let events = self.inner.chat_stream(req).await?.into_inner();
            // Hold the permit until the stream ends (or is dropped with it).
            let held = stream::unfold(
                (events, Some(permit)),
                |(mut events, mut permit)| async move {
                    match events.next().await {
                        Some(item) => Some((item, (events, permit))),
                        None => {
                            permit.take();
                            None
                        }
                    }
                },
            );
            Ok(ChatStream::new(held))
        })
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        Box::pin(async move {
            let _permit = self.acquire().await?;
            self.inner.embed(req).await
        })
    }

    fn info(&self) -> &ClientInfo {
        self.inner.info()
    }

    fn readiness(&self) -> Readiness {
        self.inner.readiness()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ChatClientExt;
    use crate::providers::FunctionClient;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[allow(dead_code)]
    fn _assert_impls() {
        fn send_sync_clone<T: Send + Sync + Clone>() {}
        send_sync_clone::<ConcurrencyLimitClient<FunctionClient>>();
    }

    fn slow(in_flight: Arc<AtomicUsize>, peak: Arc<AtomicUsize>) -> FunctionClient {
        FunctionClient::new_async("m", move |_r: ChatRequest| {
            let (in_flight, peak) = (in_flight.clone(), peak.clone());
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(1)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok(ChatResponse::from_text("ok"))
            }
        })
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_limit_calls_run_at_once() {
        let (in_flight, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let client = Arc::new(slow(in_flight, peak.clone()).with_concurrency_limit(3));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let c = client.clone();
                tokio::spawn(async move { c.chat(&ChatRequest::user("x")).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_past_max_wait_is_a_typed_timeout() {
        let (in_flight, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let client = Arc::new(
            slow(in_flight, peak)
                .with_concurrency_limit(1)
                .with_max_wait(Duration::from_millis(500)),
        );
        let busy = {
            let c = client.clone();
            tokio::spawn(async move { c.chat(&ChatRequest::user("x")).await })
        };
        tokio::task::yield_now().await;
        let err = client.chat(&ChatRequest::user("y")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.message().contains("0.5s"), "{}", err.message());
        assert!(err.is_recoverable());
        busy.await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn stream_holds_its_permit_until_it_ends() {
        let model = FunctionClient::new("m", |_r: &ChatRequest| Ok(ChatResponse::from_text("ok")));
        let client = model.with_concurrency_limit(1);
        let stream = client.chat_stream(&ChatRequest::user("x")).await.unwrap();
        assert_eq!(client.available(), 0);
        stream.collect_response().await.unwrap();
        assert_eq!(client.available(), 1);
        let dropped = client.chat_stream(&ChatRequest::user("x")).await.unwrap();
        assert_eq!(client.available(), 0);
        drop(dropped);
        assert_eq!(client.available(), 1);
    }
}
