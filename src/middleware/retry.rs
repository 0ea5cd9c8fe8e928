//! [`RetryClient`]: tries the same client again, after a pause, when it fails in a way that
//! a pause may cure.
//!
//! The failure it prevents: one transient error (a 503, a dropped connection, a 429) failing
//! the whole call, and — just as bad — clients that retry in lock-step and keep an overloaded
//! provider overloaded.
//!
//! # Policy
//!
//! [`RetryPolicy::default`] makes up to 3 attempts (2 retries). Before retry `n` (from 0) it
//! waits a random time in `0..min(max_delay, base_delay × 2ⁿ)` ("full jitter"), so clients
//! that failed together do not come back together. When the error carries a `retry_after`
//! (from `Retry-After`, `retry-after-ms` or a body field), it waits exactly that long
//! instead — unless that is longer than [`RetryPolicy::with_max_retry_after`], in which case
//! it **gives up at once** rather than sleep: a provider that asks for two minutes is better
//! served by a fallback target now.
//!
//! Only retryable kinds are retried by default ([`Error::is_retryable`]: rate limited,
//! overloaded, server, timeout, transport) — but not a timeout that fired on our side (no
//! HTTP status, e.g. from a [`TimeoutClient`](crate::TimeoutClient)): a silent provider
//! would cost a whole attempt limit per retry, so the call moves on to a fallback target
//! after one. HTTP 408 is retried. [`RetryOn`] changes all of this. A non-retryable error
//! keeps its kind, even after earlier retryable failures, and lists every attempt's error
//! in [`Error::attempt_errors`] (itself last). When the policy gives up on a retryable error, the error is
//! [`ErrorKind::RetriesExhausted`] listing every attempt's error
//! ([`Error::attempt_errors`]), with the last one as `source()` and its provider, status and
//! `retry_after` copied onto it.
//!
//! Under a [`DeadlineClient`](crate::DeadlineClient), no wait crosses the deadline: when the
//! next wait would, the policy gives up there.
//!
//! A successful response lists every attempt in [`ChatResponse::attempts`], the failed ones
//! first.
//!
//! # Streams
//!
//! A stream is retried only before its commit point ([`RetryPolicy::with_commit_point`];
//! by default its first content event): events are held back until then (see
//! [`CommitPoint`]). After it, a failure ends the stream with
//! [`ErrorKind::StreamInterrupted`], carrying the partial answer and every attempt, and is
//! not retried.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::commit::{self, CommitPoint};
use super::deadline::current_deadline;
use crate::client::{BoxFuture, ChatClient, ClientInfo, Readiness};
use crate::error::{Error, ErrorKind, Result};
use crate::types::{Attempt, ChatRequest, ChatResponse, ChatStream, EmbedRequest, EmbedResponse};

/// Decides which errors a [`RetryClient`] retries.
#[derive(Clone, Default)]
pub enum RetryOn {
    /// Retries when [`Error::is_retryable`] says so, except a timeout that fired here
    /// rather than at the provider (kind `timeout` with no HTTP status): that attempt
    /// already cost a whole time limit, and another target is the better next step; and
    /// except a target skipped while it cools down ([`Error::is_skip`]), which another
    /// target may serve now. The default.
    #[default]
    Retryable,
    /// Retries only these kinds.
    Kinds(Vec<ErrorKind>),
    /// Retries when the predicate returns true.
    Predicate(Arc<dyn Fn(&Error) -> bool + Send + Sync>),
}

impl RetryOn {
    /// Retries only the given kinds.
    pub fn kinds(kinds: impl IntoIterator<Item = ErrorKind>) -> RetryOn {
        RetryOn::Kinds(kinds.into_iter().collect())
    }

    /// Retries when `predicate` returns true.
    pub fn predicate(predicate: impl Fn(&Error) -> bool + Send + Sync + 'static) -> RetryOn {
        RetryOn::Predicate(Arc::new(predicate))
    }

    /// Says whether `error` is worth another try.
    pub fn should_retry(&self, error: &Error) -> bool {
        match self {
            RetryOn::Retryable => {
                error.is_retryable()
                    && !error.is_skip()
                    && !(error.kind() == ErrorKind::Timeout && error.status().is_none())
            }
            RetryOn::Kinds(kinds) => kinds.contains(&error.kind()),
            RetryOn::Predicate(p) => p(error),
        }
    }
}

impl fmt::Debug for RetryOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryOn::Retryable => f.write_str("Retryable"),
            RetryOn::Kinds(k) => f.debug_tuple("Kinds").field(k).finish(),
            RetryOn::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

/// How many times and how patiently a [`RetryClient`] retries; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    max_retries: u32,
    base_delay: Duration,
    max_delay: Duration,
    max_retry_after: Duration,
    retry_on: RetryOn,
    commit_point: CommitPoint,
}

impl Default for RetryPolicy {
    /// 2 retries (3 attempts), 500 ms base delay, 30 s delay cap, `retry_after` honoured up
    /// to 60 s, retryable kinds only, streams committed at their first content event.
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
            retry_on: RetryOn::Retryable,
            commit_point: CommitPoint::default(),
        }
    }
}

/// What the policy decided after a failure.
#[derive(Debug, PartialEq)]
enum Next {
    Wait(Duration),
    GiveUp(String),
}

impl RetryPolicy {
    /// Sets how many retries follow the first attempt (0 turns retrying off).
    #[must_use]
    pub fn with_max_retries(mut self, max_retries: u32) -> RetryPolicy {
        self.max_retries = max_retries;
        self
    }

    /// Sets the base of the exponential backoff.
    #[must_use]
    pub fn with_base_delay(mut self, base_delay: Duration) -> RetryPolicy {
        self.base_delay = base_delay;
        self
    }

    /// Sets the cap on one backoff wait.
    #[must_use]
    pub fn with_max_delay(mut self, max_delay: Duration) -> RetryPolicy {
        self.max_delay = max_delay;
        self
    }

    /// Sets the longest `retry_after` the policy will wait; a longer one gives up at once.
    #[must_use]
    pub fn with_max_retry_after(mut self, max_retry_after: Duration) -> RetryPolicy {
        self.max_retry_after = max_retry_after;
        self
    }

    /// Sets which errors are retried.
    #[must_use]
    pub fn with_retry_on(mut self, retry_on: RetryOn) -> RetryPolicy {
        self.retry_on = retry_on;
        self
    }

    /// Sets where a stream commits to its attempt (default [`CommitPoint::FirstContent`]):
    /// a failure before it is retried invisibly, one after it ends the stream with
    /// [`ErrorKind::StreamInterrupted`].
    #[must_use]
    pub fn with_commit_point(mut self, point: CommitPoint) -> RetryPolicy {
        self.commit_point = point;
        self
    }

    /// Returns where a stream commits to its attempt.
    pub fn commit_point(&self) -> CommitPoint {
        self.commit_point
    }

    /// Returns how many retries follow the first attempt.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// Returns the ceiling of the jittered wait before retry `n` (from 0):
    /// `min(max_delay, base_delay × 2ⁿ)`.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(31));
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// Decides what to do after the `retry`-th failure (from 0) with `err`.
    fn next(&self, retry: u32, err: &Error) -> Next {
        if retry >= self.max_retries {
            let attempts = self.max_retries + 1;
            let noun = if attempts == 1 { "attempt" } else { "attempts" };
            return Next::GiveUp(format!("the policy allows {attempts} {noun}"));
        }
        let wait = match err.retry_after() {
            Some(asked) if asked > self.max_retry_after => {
                return Next::GiveUp(format!(
                    "the provider asked to wait {:.1}s, more than the {:.1}s the policy allows",
                    asked.as_secs_f64(),
                    self.max_retry_after.as_secs_f64()
                ))
            }
            Some(asked) => asked,
            None => {
                let ceiling = self.backoff_ceiling(retry);
                ceiling.mul_f64(fastrand::f64())
            }
        };
        if let Some(deadline) = current_deadline() {
            if Instant::now() + wait >= deadline {
                return Next::GiveUp(format!(
                    "the next wait of {:.1}s would cross the call's deadline",
                    wait.as_secs_f64()
                ));
            }
        }
        Next::Wait(wait)
    }
}

/// Retries its inner client's retryable failures; see the [module docs](self).
///
/// # Clone
/// Clones share nothing but the inner client's clone (and whatever state it shares); the
/// policy is a plain value.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use switchboard::{ChatClient, ChatRequest, ChatResponse, Error, FunctionClient, RetryClient, RetryPolicy};
///
/// let calls = AtomicUsize::new(0);
/// let flaky = FunctionClient::new("m", move |_req: &ChatRequest| {
///     if calls.fetch_add(1, Ordering::SeqCst) == 0 {
///         Err(Error::from_status("primary", 503, "try again"))
///     } else {
///         Ok(ChatResponse::from_text("ok"))
///     }
/// });
/// let client = RetryClient::new(flaky, RetryPolicy::default());
/// let response = client.chat(&ChatRequest::user("hello")).await?;
/// assert_eq!(response.attempts().len(), 2);
/// # Ok::<_, switchboard::Error>(()) }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct RetryClient<C> {
    inner: C,
    policy: RetryPolicy,
}

impl<C: ChatClient> RetryClient<C> {
    /// Wraps `inner` with `policy`.
    pub fn new(inner: C, policy: RetryPolicy) -> RetryClient<C> {
        RetryClient { inner, policy }
    }

    /// Returns the wrapped client.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// Returns the wrapped client, consuming the wrapper.
    pub fn into_inner(self) -> C {
        self.inner
    }

    /// Returns the policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Runs attempts of `op` until one succeeds or the policy gives up; returns the answer
    /// with the failed attempts' records.
    async fn run<'a, T, F>(&'a self, mut op: F) -> Result<(T, Vec<Attempt>)>
    where
        F: FnMut() -> BoxFuture<'a, Result<T>>,
    {
        let info = self.inner.info();
        let mut errors: Vec<Error> = Vec::new();
        let mut attempts = Vec::new();
        let mut retry = 0;
        loop {
            let started = std::time::Instant::now();
            let err = match op().await {
                Ok(value) => return Ok((value, attempts)),
                Err(err) => err,
            };
            if !self.policy.retry_on.should_retry(&err) {
                return Err(err.after_attempts(errors));
            }
            attempts.push(Attempt::failure(
                info.provider(),
                info.model(),
                &err,
                started.elapsed(),
            ));
            let next = self.policy.next(retry, &err);
            errors.push(err);
            match next {
                Next::Wait(wait) => {
                    tracing::warn!(
                        target_provider = info.provider(),
                        target_model = info.model(),
                        retry = retry + 1,
                        wait_ms = wait.as_millis() as u64,
                        "retry: attempt failed, waiting before the next"
                    );
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
                Next::GiveUp(reason) => return Err(Error::retries_exhausted(errors, &reason)),
            }
        }
    }
}

impl<C: ChatClient> ChatClient for RetryClient<C> {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(async move {
            let (mut response, mut attempts) = self.run(|| self.inner.chat(req)).await?;
            if !attempts.is_empty() {
                attempts.append(&mut response.attempts);
                response.attempts = attempts;
            }
            Ok(response)
        })
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(async move {
            let info = self.inner.info();
            let point = self.policy.commit_point;
            let (stream, attempts) = self
                .run(|| {
                    Box::pin(async move {
                        let stream = self.inner.chat_stream(req).await?;
                        commit::until(stream, info, point).await
                    })
                })
                .await?;
            Ok(commit::prepend_attempts(stream, attempts))
        })
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        Box::pin(async move {
            let (mut response, mut attempts) = self.run(|| self.inner.embed(req)).await?;
            if !attempts.is_empty() {
                attempts.append(&mut response.attempts);
                response.attempts = attempts;
            }
            Ok(response)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ChatClientExt;
    use crate::providers::FunctionClient;
    use crate::types::{Outcome, StreamEvent};
    use std::error::Error as _;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    #[allow(dead_code)]
    fn _assert_impls() {
        fn send_sync_clone<T: Send + Sync + Clone>() {}
        send_sync_clone::<RetryClient<FunctionClient>>();
    }

    /// A client that fails with the scripted errors, in order, then answers; it records the
    /// (paused) instant of every call.
    fn script(errors: Vec<Error>) -> (FunctionClient, Arc<Mutex<Vec<Instant>>>) {
        let errors = Arc::new(Mutex::new(errors.into_iter()));
        let times = Arc::new(Mutex::new(Vec::new()));
        let t = times.clone();
        let client = FunctionClient::new("m", move |_req: &ChatRequest| {
            t.lock().unwrap().push(Instant::now());
            match errors.lock().unwrap().next() {
                Some(err) => Err(err),
                None => Ok(ChatResponse::from_text("ok")),
            }
        });
        (client, times)
    }

    fn gaps(times: &[Instant]) -> Vec<Duration> {
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }

    fn e503() -> Error {
        Error::from_status("p", 503, "unavailable")
    }

    #[test]
    fn backoff_ceiling_doubles_up_to_the_cap() {
        let p = RetryPolicy::default()
            .with_base_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_millis(500));
        let ceilings: Vec<_> = (0..5).map(|n| p.backoff_ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 500, 500]);
        assert_eq!(p.backoff_ceiling(u32::MAX), Duration::from_millis(500));
    }

    #[test]
    fn jittered_waits_stay_under_the_ceiling() {
        let p = RetryPolicy::default().with_max_retries(10);
        for retry in 0..6 {
            for _ in 0..50 {
                match p.next(retry, &e503()) {
                    Next::Wait(w) => assert!(w <= p.backoff_ceiling(retry)),
                    Next::GiveUp(r) => panic!("gave up: {r}"),
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_a_503_and_lists_every_attempt_on_success() {
        let (client, times) = script(vec![e503(), e503()]);
        let client = client.with_retry(RetryPolicy::default());
        let r = client.chat(&ChatRequest::user("x")).await.unwrap();
        assert_eq!(r.text(), "ok");
        let outcomes: Vec<_> = r.attempts().iter().map(|a| a.outcome).collect();
        assert_eq!(
            outcomes,
            [Outcome::Failed, Outcome::Failed, Outcome::Success]
        );
        assert_eq!(r.attempts()[0].status, Some(503));
        let gaps = gaps(&times.lock().unwrap());
        assert!(gaps[0] <= Duration::from_millis(500), "{gaps:?}");
        assert!(gaps[1] <= Duration::from_millis(1000), "{gaps:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn embeddings_list_every_attempt_on_success_too() {
        let calls = AtomicUsize::new(0);
        let client = FunctionClient::builder("m")
            .embed(move |req: &EmbedRequest| {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(e503())
                } else {
                    Ok(EmbedResponse::new(vec![vec![0.5]; req.inputs.len()]))
                }
            })
            .build()
            .with_retry(RetryPolicy::default());
        let r = client.embed(&EmbedRequest::new(["x"])).await.unwrap();
        let seen: Vec<_> = r.attempts().iter().map(|a| (a.outcome, a.status)).collect();
        assert_eq!(
            seen,
            [
                (Outcome::Failed, Some(503)),
                (Outcome::Failed, Some(503)),
                (Outcome::Success, None)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retry_honours_retry_after() {
        let limited =
            Error::from_status("p", 429, "slow down").with_retry_after(Duration::from_secs(7));
        let (client, times) = script(vec![limited]);
        let client = client.with_retry(RetryPolicy::default());
        let start = Instant::now();
        client.chat(&ChatRequest::user("x")).await.unwrap();
        assert_eq!(gaps(&times.lock().unwrap()), [Duration::from_secs(7)]);
        assert_eq!(start.elapsed(), Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_beyond_the_cap_gives_up_at_once() {
        let limited =
            Error::from_status("p", 429, "slow down").with_retry_after(Duration::from_secs(120));
        let (client, times) = script(vec![limited]);
        let client = client.with_retry(RetryPolicy::default());
        let start = Instant::now();
        let err = client.chat(&ChatRequest::user("x")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RetriesExhausted);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
        assert_eq!(err.status(), Some(429));
        assert_eq!(times.lock().unwrap().len(), 1);
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn exhausted_retries_list_every_error_and_source_the_last() {
        let (client, _) = script(vec![
            e503(),
            Error::from_status("p", 502, "bad gateway"),
            Error::from_status("p", 529, "overloaded"),
            e503(),
        ]);
        let client = client.with_retry(RetryPolicy::default());
        let err = client.chat(&ChatRequest::user("x")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RetriesExhausted);
        let statuses: Vec<_> = err.attempt_errors().iter().map(Error::status).collect();
        assert_eq!(statuses, [Some(503), Some(502), Some(529)]);
        assert_eq!(err.status(), Some(529));
        assert_eq!(err.provider(), Some("p"));
        let source = err.source().unwrap().to_string();
        assert!(source.contains("529"), "{source}");
        assert!(err.is_recoverable());
    }

    #[tokio::test(start_paused = true)]
    async fn a_non_retryable_error_is_returned_as_is() {
        let (client, times) = script(vec![Error::from_status("p", 401, "bad key")]);
        let err = client
            .with_retry(RetryPolicy::default())
            .chat(&ChatRequest::user("x"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Authentication);
        assert_eq!(times.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_non_retryable_error_after_retries_keeps_every_attempt() {
        let (client, times) = script(vec![
            e503(),
            Error::from_status("p", 502, "bad gateway"),
            Error::from_status("p", 400, "bad request"),
        ]);
        let err = client
            .with_retry(RetryPolicy::default())
            .chat(&ChatRequest::user("x"))
            .await
            .unwrap_err();
        assert_eq!(times.lock().unwrap().len(), 3);
        // The caller still branches on the error that stopped the loop...
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert_eq!(err.status(), Some(400));
        assert_eq!(err.message(), "bad request");
        assert!(err.is_recoverable());
        // ...and the two failures before it are not lost.
        let statuses: Vec<_> = err.attempt_errors().iter().map(Error::status).collect();
        assert_eq!(statuses, [Some(503), Some(502), Some(400)]);
        let source = err.source().unwrap().to_string();
        assert!(source.contains("bad request"), "{source}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_local_timeout_is_not_retried_but_a_408_is() {
        let local = Error::new(ErrorKind::Timeout, "no answer within the attempt limit");
        let (client, times) = script(vec![local]);
        let err = client
            .with_retry(RetryPolicy::default())
            .chat(&ChatRequest::user("x"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert_eq!(times.lock().unwrap().len(), 1);
        let (client, times) = script(vec![Error::from_status("p", 408, "request timeout")]);
        client
            .with_retry(RetryPolicy::default())
            .chat(&ChatRequest::user("x"))
            .await
            .unwrap();
        assert_eq!(times.lock().unwrap().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_on_kinds_limits_what_is_retried() {
        let (client, times) = script(vec![e503()]);
        let policy = RetryPolicy::default().with_retry_on(RetryOn::kinds([ErrorKind::RateLimited]));
        let err = client
            .with_retry(policy)
            .chat(&ChatRequest::user("x"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Server);
        assert_eq!(times.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn no_wait_crosses_the_deadline() {
        let limited =
            || Error::from_status("p", 429, "slow").with_retry_after(Duration::from_secs(4));
        let (client, times) = script(vec![limited(), limited(), limited()]);
        let client = client
            .with_retry(RetryPolicy::default())
            .with_deadline(Duration::from_secs(6));
        let start = Instant::now();
        let err = client.chat(&ChatRequest::user("x")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RetriesExhausted);
        assert!(err.message().contains("deadline"), "{err}");
        assert_eq!(times.lock().unwrap().len(), 2);
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_is_retried_before_its_first_content_event() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let client = FunctionClient::builder("s")
            .stream(move |_req: &ChatRequest| {
                if c.fetch_add(1, Ordering::SeqCst) == 0 {
                    Ok(vec![
                        Ok(StreamEvent::Started {
                            response_id: Some("first".into()),
                            model: None,
                        }),
                        Err(Error::from_status("p", 529, "overloaded")),
                    ])
                } else {
                    Ok(vec![Ok(StreamEvent::TextDelta { text: "ok".into() })])
                }
            })
            .build()
            .with_retry(RetryPolicy::default());
        let r = client
            .chat_stream(&ChatRequest::user("x"))
            .await
            .unwrap()
            .collect_response()
            .await
            .unwrap();
        assert_eq!(r.text(), "ok");
        assert_eq!(r.response_id, None, "the failed attempt's metadata leaked");
        assert_eq!(r.attempts().len(), 2);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_is_not_retried_after_content() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let client = FunctionClient::builder("s")
            .stream(move |_req: &ChatRequest| {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(vec![
                    Ok(StreamEvent::TextDelta {
                        text: "half".into(),
                    }),
                    Err(Error::from_status("p", 529, "overloaded")),
                ])
            })
            .build()
            .with_retry(RetryPolicy::default());
        let err = client
            .chat_stream(&ChatRequest::user("x"))
            .await
            .unwrap()
            .collect_response()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_commit_point_decides_whether_a_stream_is_retried() {
        let run = |point: CommitPoint| async move {
            let calls = Arc::new(AtomicUsize::new(0));
            let c = calls.clone();
            let client = FunctionClient::builder("s")
                .stream(move |_req: &ChatRequest| {
                    if c.fetch_add(1, Ordering::SeqCst) == 0 {
                        Ok(vec![
                            Ok(StreamEvent::Started {
                                response_id: None,
                                model: None,
                            }),
                            Err(Error::from_status("p", 503, "down")),
                        ])
                    } else {
                        Ok(vec![Ok(StreamEvent::TextDelta { text: "ok".into() })])
                    }
                })
                .build()
                .with_retry(RetryPolicy::default().with_commit_point(point));
            let result = client
                .chat_stream(&ChatRequest::user("x"))
                .await
                .unwrap()
                .collect_response()
                .await;
            (result, calls.load(Ordering::SeqCst))
        };
        let (result, calls) = run(CommitPoint::FirstContent).await;
        let r = result.unwrap();
        assert_eq!((r.text().as_str(), calls), ("ok", 2));
        assert_eq!(r.attempts()[0].outcome, Outcome::Failed);

        let (result, calls) = run(CommitPoint::FirstEvent).await;
        let err = result.unwrap_err();
        assert_eq!((err.kind(), calls), (ErrorKind::StreamInterrupted, 1));
        assert_eq!(
            RetryPolicy::default().commit_point(),
            CommitPoint::FirstContent
        );
    }
}
