//! [`TimeoutClient`]: limits on one attempt — the whole answer, the first token, and the
//! silence between stream events.
//!
//! The failure it prevents: a provider that accepts the connection and then never answers
//! (or stops mid-stream) holding the caller forever. Each limit that fires is an
//! [`ErrorKind::Timeout`] error, which retry and fallback treat like any other provider
//! failure, so a silent provider falls over to the next target.
//!
//! Each limit is the smaller of its own value and the time left before the call's deadline
//! (see [`DeadlineClient`](crate::DeadlineClient)), so a silent upstream costs one attempt
//! timeout, never more than the deadline.
//!
//! # Streams
//!
//! For `chat_stream`, [`Timeouts::attempt`] limits the time until the stream is open,
//! [`Timeouts::with_first_token`] the time from the call's start to its first content event, and
//! [`Timeouts::with_idle`] the gap between any two events. A limit that fires before the first
//! content event ends the stream with a plain `Timeout` error (so a wrapper outside can fall
//! over); after it, with [`ErrorKind::StreamInterrupted`] carrying the partial answer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::Stream;
use tokio::time::{Instant, Sleep};

use super::deadline::time_left;
use crate::client::{BoxFuture, ChatClient, ClientInfo, Readiness};
use crate::error::{Error, ErrorKind, Result};
use crate::types::{
    ChatRequest, ChatResponse, ChatStream, EmbedRequest, EmbedResponse, StreamAccumulator,
    StreamEvent,
};

/// The limits a [`TimeoutClient`] puts on each attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    attempt: Duration,
    first_token: Option<Duration>,
    idle: Option<Duration>,
}

impl Timeouts {
    /// Limits each attempt to `attempt` (for streams: until the stream is open).
    pub fn attempt(attempt: Duration) -> Timeouts {
        Timeouts {
            attempt,
            first_token: None,
            idle: None,
        }
    }

    /// Limits a stream's wait for its first content event, counted from the call's start.
    #[must_use]
    pub fn with_first_token(mut self, limit: Duration) -> Timeouts {
        self.first_token = Some(limit);
        self
    }

    /// Limits the silence between two events of a stream.
    #[must_use]
    pub fn with_idle(mut self, limit: Duration) -> Timeouts {
        self.idle = Some(limit);
        self
    }

    /// Returns the attempt limit.
    pub fn attempt_limit(&self) -> Duration {
        self.attempt
    }

    /// Returns the first-token limit, if set.
    pub fn first_token_limit(&self) -> Option<Duration> {
        self.first_token
    }

    /// Returns the idle limit, if set.
    pub fn idle_limit(&self) -> Option<Duration> {
        self.idle
    }
}

impl From<Duration> for Timeouts {
    fn from(attempt: Duration) -> Timeouts {
        Timeouts::attempt(attempt)
    }
}

/// Limits each call to its inner client; see the [module docs](self).
///
/// # Clone
/// Clones share nothing but the inner client's clone; the limits are plain values.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use switchboard::{ChatClient, ChatRequest, ChatResponse, FunctionClient, TimeoutClient, Timeouts};
///
/// let provider = FunctionClient::new("m", |_req: &ChatRequest| Ok(ChatResponse::from_text("hi")));
/// let limits = Timeouts::attempt(Duration::from_secs(30))
///     .with_first_token(Duration::from_secs(10))
///     .with_idle(Duration::from_secs(5));
/// let client = TimeoutClient::new(provider, limits);
/// assert_eq!(client.chat(&ChatRequest::user("hello")).await?.text(), "hi");
/// # Ok::<_, switchboard::Error>(()) }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct TimeoutClient<C> {
    inner: C,
    timeouts: Timeouts,
}

/// Which limit fired, for the error message.
#[derive(Clone, Copy, Debug)]
enum Limit {
    Attempt,
    Deadline,
    FirstToken,
    Idle,
}

impl<C: ChatClient> TimeoutClient<C> {
    /// Wraps `inner` with `timeouts` (a plain [`Duration`] is an attempt limit).
    pub fn new(inner: C, timeouts: impl Into<Timeouts>) -> TimeoutClient<C> {
        TimeoutClient {
            inner,
            timeouts: timeouts.into(),
        }
    }

    /// Returns the wrapped client.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// Returns the wrapped client, consuming the wrapper.
    pub fn into_inner(self) -> C {
        self.inner
    }

    /// Returns the limits.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Returns the effective limit: `own`, or the time left before the deadline if shorter.
    fn limit(own: Duration) -> (Duration, Limit) {
        match time_left() {
            Some(left) if left < own => (left, Limit::Deadline),
            _ => (own, Limit::Attempt),
        }
    }

    fn error(&self, which: Limit, after: Duration) -> Error {
        timeout_error(self.inner.info(), which, after)
    }

    async fn bounded<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let (limit, which) = Self::limit(self.timeouts.attempt);
        match tokio::time::timeout(limit, fut).await {
            Ok(result) => result,
            Err(_) => Err(self.error(which, limit)),
        }
    }
}

fn timeout_error(info: &ClientInfo, which: Limit, after: Duration) -> Error {
    let what = match which {
        Limit::Attempt => "no answer within the attempt limit",
        Limit::Deadline => "no answer before the call's deadline",
        Limit::FirstToken => "no first token within the first-token limit",
        Limit::Idle => "the stream went silent for longer than the idle limit",
    };
    Error::new(
        ErrorKind::Timeout,
        format!("{what} ({:.1}s)", after.as_secs_f64()),
    )
    .with_provider(info.provider())
    .with_model(info.model())
    .with_fix("the provider may be overloaded; a fallback target will be tried if one is configured, or raise the limit")
}

impl<C: ChatClient> ChatClient for TimeoutClient<C> {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(self.bounded(self.inner.chat(req)))
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(async move {
            let started = Instant::now();
            let stream = self.bounded(self.inner.chat_stream(req)).await?;
            // The deadline, if any, also bounds the first token.
            let first_token = match (self.timeouts.first_token, time_left()) {
                (Some(own), Some(left)) if left < own => Some((left, Limit::Deadline)),
                (Some(own), _) => Some((own, Limit::FirstToken)),
                (None, _) => None,
            };
            let info = self.inner.info();
            Ok(ChatStream::new(WatchedStream {
                inner: stream,
                acc: StreamAccumulator::new(info.provider(), info.model()),
                info: info.clone(),
                first_token: first_token.map(|(limit, which)| {
                    (
                        Box::pin(tokio::time::sleep_until(started + limit)),
                        which,
                        limit,
                    )
                }),
                idle: self
                    .timeouts
                    .idle
                    .map(|limit| (Box::pin(tokio::time::sleep(limit)), limit)),
                done: false,
            }))
        })
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        Box::pin(self.bounded(self.inner.embed(req)))
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

/// A stream watched by the first-token and idle timers.
struct WatchedStream {
    inner: ChatStream,
    acc: StreamAccumulator,
    info: ClientInfo,
    first_token: Option<(Pin<Box<Sleep>>, Limit, Duration)>,
    idle: Option<(Pin<Box<Sleep>>, Duration)>,
    done: bool,
}

impl WatchedStream {
    fn fail(&mut self, which: Limit, after: Duration) -> Poll<Option<Result<StreamEvent>>> {
        self.done = true;
        let err = timeout_error(&self.info, which, after);
        let err = if self.acc.has_content() {
            Error::stream_interrupted(err, self.acc.snapshot())
        } else {
            err
        };
        Poll::Ready(Some(Err(err)))
    }
}

impl Stream for WatchedStream {
    type Item = Result<StreamEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut this.inner).poll_next(cx) {
            match &item {
                Some(Ok(event)) => {
                    this.acc.push(event);
                    if event.is_content() || matches!(event, StreamEvent::Done { .. }) {
                        this.first_token = None;
                    }
                    if let Some((sleep, limit)) = &mut this.idle {
                        sleep.as_mut().reset(Instant::now() + *limit);
                    }
                }
                Some(Err(_)) | None => this.done = true,
            }
            return Poll::Ready(item);
        }
        if let Some((sleep, which, limit)) = &mut this.first_token {
            if sleep.as_mut().poll(cx).is_ready() {
                let (which, limit) = (*which, *limit);
                return this.fail(which, limit);
            }
        }
        if let Some((sleep, limit)) = &mut this.idle {
            if sleep.as_mut().poll(cx).is_ready() {
                let limit = *limit;
                return this.fail(Limit::Idle, limit);
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ChatClientExt;
    use crate::providers::FunctionClient;
    use futures_util::stream::{self, BoxStream, StreamExt};

    #[allow(dead_code)]
    fn _assert_impls() {
        fn send_sync_clone<T: Send + Sync + Clone>() {}
        send_sync_clone::<TimeoutClient<FunctionClient>>();
    }

    fn silent() -> FunctionClient {
        FunctionClient::new_async("silent", |_req: ChatRequest| async move {
            std::future::pending::<Result<ChatResponse>>().await
        })
    }

    fn scripted_stream(gaps: Vec<(u64, &'static str)>, then_hang: bool) -> FunctionClient {
        FunctionClient::builder("s")
            .stream_async(move |_req| {
                let gaps = gaps.clone();
                Box::pin(async move {
                    let events = stream::iter(gaps).then(|(secs, text)| async move {
                        tokio::time::sleep(Duration::from_secs(secs)).await;
                        Ok(StreamEvent::TextDelta { text: text.into() })
                    });
                    let s: BoxStream<'static, Result<StreamEvent>> = if then_hang {
                        events.chain(stream::pending()).boxed()
                    } else {
                        events.boxed()
                    };
                    Ok(s)
                })
            })
            .build()
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_provider_times_out_after_the_attempt_limit() {
        let client = silent().with_timeout(Duration::from_secs(10));
        let start = Instant::now();
        let err = client.chat(&ChatRequest::user("x")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.is_retryable());
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn the_attempt_limit_shrinks_to_the_time_left_before_the_deadline() {
        let client = silent()
            .with_timeout(Duration::from_secs(10))
            .with_deadline(Duration::from_secs(4));
        let start = Instant::now();
        let err = client.chat(&ChatRequest::user("x")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.message().contains("deadline"), "{err}");
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_first_token_is_a_timeout_before_any_content() {
        let client = scripted_stream(vec![(20, "late")], false).with_timeout(
            Timeouts::attempt(Duration::from_secs(60)).with_first_token(Duration::from_secs(5)),
        );
        let start = Instant::now();
        let stream = client.chat_stream(&ChatRequest::user("x")).await.unwrap();
        let events: Vec<_> = stream.collect().await;
        assert_eq!(events.len(), 1, "{events:?}");
        match &events[0] {
            Err(e) => assert_eq!(e.kind(), ErrorKind::Timeout),
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_stream_is_interrupted_with_its_partial_answer() {
        let client = scripted_stream(vec![(0, "one "), (1, "two")], true).with_timeout(
            Timeouts::attempt(Duration::from_secs(60)).with_idle(Duration::from_secs(3)),
        );
        let start = Instant::now();
        let stream = client.chat_stream(&ChatRequest::user("x")).await.unwrap();
        let err = stream.collect_response().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
        assert_eq!(err.partial().map(|p| p.text()).as_deref(), Some("one two"));
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_healthy_stream_passes_through_untouched() {
        let client = scripted_stream(vec![(1, "a"), (1, "b")], false).with_timeout(
            Timeouts::attempt(Duration::from_secs(60))
                .with_first_token(Duration::from_secs(2))
                .with_idle(Duration::from_secs(2)),
        );
        let r = client
            .chat_stream(&ChatRequest::user("x"))
            .await
            .unwrap()
            .collect_response()
            .await
            .unwrap();
        assert_eq!(r.text(), "ab");
    }
}
