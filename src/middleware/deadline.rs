//! [`DeadlineClient`]: one deadline for the whole call, shared by every retry and fallback
//! inside it.
//!
//! The failure it prevents: time limits that multiply. With only per-attempt limits, a
//! silent provider behind three retries and two fallbacks costs six attempt timeouts. With
//! a deadline outermost, every wrapper inside sees the same end time:
//!
//! - [`TimeoutClient`](crate::TimeoutClient) limits each attempt to the smaller of its own
//!   limit and the time left;
//! - [`RetryClient`](crate::RetryClient) never sleeps past the deadline: when the next wait
//!   would cross it, it gives up with the errors so far;
//! - [`FallbackClient`](crate::FallbackClient) does not wait for an open breaker past it.
//!
//! The deadline travels in a tokio task-local for the duration of the call (and of each
//! poll of a returned stream), so it needs no field on the request. [`current_deadline`]
//! reads it; nested deadlines keep the earlier one. The deadline is also enforced here: a
//! call still running when it passes fails with [`ErrorKind::Timeout`].

use std::future::Future;
use std::time::Duration;

use futures_util::stream::Stream;
use tokio::time::Instant;

use crate::client::{BoxFuture, ChatClient, ClientInfo, Readiness};
use crate::error::{Error, ErrorKind, Result};
use crate::types::{
    ChatRequest, ChatResponse, ChatStream, EmbedRequest, EmbedResponse, StreamAccumulator,
    StreamEvent,
};

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Returns the deadline of the call being made on this task, if a [`DeadlineClient`] set one.
pub fn current_deadline() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// Returns the time left until the current call's deadline, if it has one (zero once past).
pub fn time_left() -> Option<Duration> {
    current_deadline().map(|d| d.saturating_duration_since(Instant::now()))
}

/// Runs `fut` with `deadline` as the current deadline (or the existing one, if earlier).
pub(crate) async fn with_deadline<F: Future>(deadline: Instant, fut: F) -> F::Output {
    let effective = current_deadline().map_or(deadline, |d| d.min(deadline));
    DEADLINE.scope(effective, fut).await
}

/// Gives every call one deadline, `total` from its start.
///
/// Put it outermost (inside instrumentation and caching): every wrapper under it reads the
/// same deadline. See the [module docs](self) for how each wrapper uses it.
///
/// # Clone
/// Clones share nothing but the inner client's clone; each call gets its own deadline.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use switchboard::{ChatClient, ChatClientExt, ChatRequest, ChatResponse, FunctionClient};
///
/// let client = FunctionClient::new("m", |_req: &ChatRequest| Ok(ChatResponse::from_text("hi")))
///     .with_timeout(Duration::from_secs(10))
///     .with_deadline(Duration::from_secs(30));
/// assert_eq!(client.chat(&ChatRequest::user("hello")).await?.text(), "hi");
/// # Ok::<_, switchboard::Error>(()) }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct DeadlineClient<C> {
    inner: C,
    total: Duration,
}

impl<C: ChatClient> DeadlineClient<C> {
    /// Wraps `inner` so that each call must finish within `total`.
    pub fn new(inner: C, total: Duration) -> DeadlineClient<C> {
        DeadlineClient { inner, total }
    }

    /// Returns the wrapped client.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// Returns the wrapped client, consuming the wrapper.
    pub fn into_inner(self) -> C {
        self.inner
    }

    /// Returns the time each call gets.
    pub fn total(&self) -> Duration {
        self.total
    }

    fn expired(&self) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "the call's deadline of {:.1}s passed",
                self.total.as_secs_f64()
            ),
        )
        .with_provider(self.inner.info().provider())
        .with_fix("raise the deadline, or lower per-attempt timeouts and retries so that a fallback fits in it")
    }

    /// Returns this call's deadline: `total` from now, or an outer deadline if earlier.
    ///
    /// Read it inside the returned future, not when building it: an outer deadline is only
    /// in scope while that future is polled.
    fn deadline(&self) -> Instant {
        let own = Instant::now() + self.total;
        current_deadline().map_or(own, |outer| outer.min(own))
    }

    async fn run<T, F>(&self, deadline: Instant, fut: F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        match tokio::time::timeout_at(deadline, with_deadline(deadline, fut)).await {
            Ok(result) => result,
            Err(_) => Err(self.expired()),
        }
    }
}

impl<C: ChatClient> ChatClient for DeadlineClient<C> {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(async move { self.run(self.deadline(), self.inner.chat(req)).await })
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(async move {
            let deadline = self.deadline();
            let stream = self.run(deadline, self.inner.chat_stream(req)).await?;
            Ok(ChatStream::new(ScopedStream {
                inner: stream,
                deadline,
                sleep: Box::pin(tokio::time::sleep_until(deadline)),
                expired: Some(self.expired()),
                acc: StreamAccumulator::new(
                    self.inner.info().provider(),
                    self.inner.info().model(),
                ),
            }))
        })
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        Box::pin(async move { self.run(self.deadline(), self.inner.embed(req)).await })
    }

    fn info(&self) -> &ClientInfo {
        self.inner.info()
    }

    fn readiness(&self) -> Readiness {
        self.inner.readiness()
    }
}

/// A stream polled with the deadline in scope, ended with a timeout error once it passes
/// (typed [`ErrorKind::StreamInterrupted`] with the partial answer if content had arrived).
struct ScopedStream {
    acc: StreamAccumulator,
    inner: ChatStream,
    deadline: Instant,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    expired: Option<Error>,
}

impl Stream for ScopedStream {
    type Item = Result<StreamEvent>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = &mut *self;
        if this.expired.is_none() {
            return Poll::Ready(None);
        }
        let deadline = this.deadline;
        let inner = &mut this.inner;
        let polled =
            DEADLINE.sync_scope(deadline, || std::pin::Pin::new(&mut *inner).poll_next(cx));
        if let Poll::Ready(item) = polled {
            match &item {
                None => this.expired = None,
                Some(Ok(event)) => this.acc.push(event),
                Some(Err(_)) => {}
            }
            return Poll::Ready(item);
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            let err = this.expired.take().map(|err| {
                if this.acc.has_content() {
                    Error::stream_interrupted(err, this.acc.snapshot())
                } else {
                    err
                }
            });
            return Poll::Ready(err.map(Err));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ChatClientExt;
    use crate::providers::FunctionClient;

    #[tokio::test(start_paused = true)]
    async fn the_deadline_is_visible_inside_the_call() {
        let client = FunctionClient::new_async("m", |_req: ChatRequest| async move {
            let left = time_left().expect("a deadline is set");
            Ok(ChatResponse::from_text(format!("{}", left.as_secs())))
        })
        .with_deadline(Duration::from_secs(30));
        let r = client.chat(&ChatRequest::user("x")).await.unwrap();
        assert_eq!(r.text(), "30");
        assert_eq!(current_deadline(), None);
    }

    #[allow(dead_code)]
    fn _assert_impls() {
        fn send_sync_clone<T: Send + Sync + Clone>() {}
        send_sync_clone::<DeadlineClient<FunctionClient>>();
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_past_its_deadline_fails_with_timeout() {
        let client = FunctionClient::new_async("m", |_req: ChatRequest| async move {
            std::future::pending::<Result<ChatResponse>>().await
        })
        .with_deadline(Duration::from_secs(5));
        let start = Instant::now();
        let err = client.chat(&ChatRequest::user("x")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn nested_deadlines_keep_the_earlier_one() {
        let client = FunctionClient::new_async("m", |_req: ChatRequest| async move {
            Ok(ChatResponse::from_text(format!(
                "{}",
                time_left().unwrap_or_default().as_secs()
            )))
        })
        .with_deadline(Duration::from_secs(60))
        .with_deadline(Duration::from_secs(10));
        let r = client.chat(&ChatRequest::user("x")).await.unwrap();
        assert_eq!(r.text(), "10");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_outlives_the_deadline_ends_with_timeout() {
        use futures_util::stream::{self as fstream, StreamExt};
        let client = FunctionClient::builder("s")
            .stream_async(|_req| {
                Box::pin(async move {
                    let s = fstream::iter(vec![Ok(StreamEvent::TextDelta { text: "a".into() })])
                        .chain(fstream::pending());
                    Ok(s.boxed())
                })
            })
            .build()
            .with_deadline(Duration::from_secs(3));
        let start = Instant::now();
        let stream = client.chat_stream(&ChatRequest::user("x")).await.unwrap();
        let events: Vec<_> = stream.collect().await;
        match events.last() {
            Some(Err(e)) => {
                assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
                assert_eq!(e.partial().map(|p| p.text()).as_deref(), Some("a"));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }
}
