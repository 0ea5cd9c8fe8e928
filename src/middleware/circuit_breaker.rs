//! [`CircuitBreakerClient`]: stops calling a target that keeps failing, for a while, then
//! lets one probe call decide whether it has recovered.
//!
//! The failure it prevents: every call paying the full price of a provider that is down —
//! timeouts and retries against a dead endpoint — and a struggling provider being kept down
//! by the traffic it cannot serve. An open breaker fails at once with
//! [`ErrorKind::CircuitOpen`], whose `retry_after` is the time until the next probe, and
//! tells a [`FallbackClient`](crate::FallbackClient) through
//! [`ChatClient::readiness`] to skip the target without calling it.
//!
//! # States
//!
//! - **Closed**: calls go through. It opens after [`BreakerConfig::with_consecutive_failures`]
//!   failures in a row, or when the failure ratio over a rolling window passes
//!   [`BreakerConfig::with_failure_ratio`] (once the window holds enough calls).
//! - **Open**: calls fail fast for the cooldown — or longer, if the error that opened it
//!   carried a `retry_after` (capped by [`BreakerConfig::with_max_cooldown`]).
//! - **Half-open**: once the cooldown is over, exactly one call goes through as a probe;
//!   callers that arrive while it runs get `CircuitOpen`. A successful probe closes the
//!   breaker; a failed one re-opens it with the cooldown doubled (up to the cap). A probe
//!   that ends without a verdict (cancelled, or an error that does not count) lets the next
//!   caller probe.
//!
//! # What counts as a failure
//!
//! By default ([`TripOn::ProviderFailures`]) every failure of the target itself: HTTP 5xx,
//! 429, 529, 401, 403, 404, timeouts, transport and decode errors, retries exhausted, a
//! stream that broke. Not counted: errors about this one request (`invalid_request`,
//! `context_length`, `content_filtered`, which another request to the same target may not
//! hit), errors raised before the target was called (budget, config, a cool-down skip), and
//! `circuit_open` from a breaker further in.
//!
//! Put the breaker outside [`RetryClient`](crate::RetryClient): one call that exhausted its
//! retries is one failure, and an open breaker skips the retries too.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::StreamExt;
use tokio::time::Instant;

use crate::client::{BoxFuture, ChatClient, ClientInfo, Readiness};
use crate::error::{Error, ErrorKind, Result};
use crate::state::{BreakerPhase, BreakerRecord, MemoryStore, StateStore};
use crate::types::{
    ChatRequest, ChatResponse, ChatStream, EmbedRequest, EmbedResponse, StreamEvent,
};

/// What callers turned away during a half-open probe are told to wait: a hint to ask again
/// soon, since the probe's verdict is not known yet.
const PROBE_BUSY_WAIT: Duration = Duration::from_secs(1);

/// Decides which errors count as failures of the target.
#[derive(Clone, Default)]
pub enum TripOn {
    /// Failures of the target itself (the default; see the [module docs](self)).
    #[default]
    ProviderFailures,
    /// Only these kinds.
    Kinds(Vec<ErrorKind>),
    /// Errors for which the predicate returns true.
    Predicate(Arc<dyn Fn(&Error) -> bool + Send + Sync>),
}

impl TripOn {
    /// Counts only the given kinds.
    pub fn kinds(kinds: impl IntoIterator<Item = ErrorKind>) -> TripOn {
        TripOn::Kinds(kinds.into_iter().collect())
    }

    /// Counts errors for which `predicate` returns true.
    pub fn predicate(predicate: impl Fn(&Error) -> bool + Send + Sync + 'static) -> TripOn {
        TripOn::Predicate(Arc::new(predicate))
    }

    /// Says whether `error` counts as a failure of the target.
    pub fn counts(&self, error: &Error) -> bool {
        match self {
            TripOn::ProviderFailures => {
                error.is_recoverable()
                    && !error.is_skip()
                    && !matches!(
                        error.kind(),
                        ErrorKind::InvalidRequest
                            | ErrorKind::ContextLength
                            | ErrorKind::ContentFiltered
                            | ErrorKind::CircuitOpen
                    )
            }
            TripOn::Kinds(kinds) => kinds.contains(&error.kind()),
            TripOn::Predicate(p) => p(error),
        }
    }
}

impl fmt::Debug for TripOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TripOn::ProviderFailures => f.write_str("ProviderFailures"),
            TripOn::Kinds(k) => f.debug_tuple("Kinds").field(k).finish(),
            TripOn::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

/// The failure-ratio rule: open when at least `ratio` of the calls in the last `window`
/// failed, once there were at least `min_calls` of them.
#[derive(Clone, Copy, Debug, PartialEq)]
struct RatioRule {
    ratio: f64,
    window: Duration,
    min_calls: usize,
}

/// When a [`CircuitBreakerClient`] opens and how long it stays open; see the
/// [module docs](self).
#[derive(Clone, Debug)]
pub struct BreakerConfig {
    consecutive_failures: Option<u32>,
    ratio: Option<RatioRule>,
    cooldown: Duration,
    max_cooldown: Duration,
    trip_on: TripOn,
}

impl Default for BreakerConfig {
    /// Opens after 5 failures in a row, no ratio rule, 30 s cooldown doubling up to 5 min,
    /// counting [`TripOn::ProviderFailures`].
    fn default() -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: Some(5),
            ratio: None,
            cooldown: Duration::from_secs(30),
            max_cooldown: Duration::from_secs(300),
            trip_on: TripOn::ProviderFailures,
        }
    }
}

impl BreakerConfig {
    /// Opens after `n` counted failures in a row (0 turns this rule off).
    #[must_use]
    pub fn with_consecutive_failures(mut self, n: u32) -> BreakerConfig {
        self.consecutive_failures = (n > 0).then_some(n);
        self
    }

    /// Also opens when at least `ratio` (0.0–1.0) of the calls that ended in the last
    /// `window` failed, once at least `min_calls` ended in it.
    #[must_use]
    pub fn with_failure_ratio(
        mut self,
        ratio: f64,
        window: Duration,
        min_calls: usize,
    ) -> BreakerConfig {
        self.ratio = Some(RatioRule {
            ratio: ratio.clamp(0.0, 1.0),
            window,
            min_calls: min_calls.max(1),
        });
        self
    }

    /// Sets how long it stays open the first time.
    #[must_use]
    pub fn with_cooldown(mut self, cooldown: Duration) -> BreakerConfig {
        self.cooldown = cooldown;
        self
    }

    /// Caps the cooldown after failed probes, and the `retry_after` honoured when opening.
    #[must_use]
    pub fn with_max_cooldown(mut self, max_cooldown: Duration) -> BreakerConfig {
        self.max_cooldown = max_cooldown;
        self
    }

    /// Sets which errors count as failures.
    #[must_use]
    pub fn with_trip_on(mut self, trip_on: TripOn) -> BreakerConfig {
        self.trip_on = trip_on;
        self
    }

    /// Opens `record` now, for `cooldown` or the error's `retry_after` if longer (capped).
    fn open(&self, record: &mut BreakerRecord, now: Instant, cooldown: Duration, err: &Error) {
        let cooldown = cooldown.min(self.max_cooldown);
        let asked = err.retry_after().unwrap_or_default().min(self.max_cooldown);
        record.phase = BreakerPhase::Open;
        record.cooldown = cooldown;
        record.open_until = Some(now + cooldown.max(asked));
        record.consecutive_failures = 0;
        record.window.clear();
        record.probe_in_flight = false;
    }

    /// Says whether the closed-state counters in `record` call for opening.
    fn should_trip(&self, record: &mut BreakerRecord, now: Instant) -> bool {
        if let Some(n) = self.consecutive_failures {
            if record.consecutive_failures >= n {
                return true;
            }
        }
        if let Some(rule) = self.ratio {
            while let Some((at, _)) = record.window.front() {
                if now.saturating_duration_since(*at) > rule.window {
                    record.window.pop_front();
                } else {
                    break;
                }
            }
            let calls = record.window.len();
            let failures = record.window.iter().filter(|(_, failed)| *failed).count();
            if calls >= rule.min_calls && failures as f64 >= rule.ratio * calls as f64 {
                return true;
            }
        }
        false
    }
}

/// What a caller sees of a breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail fast until `until`.
    Open {
        /// When a probe may go through.
        until: Instant,
        /// How long from now that is.
        remaining: Duration,
    },
    /// The next call (or the one running now) is the probe.
    HalfOpen,
}

struct Shared {
    config: BreakerConfig,
    store: Arc<dyn StateStore>,
    key: String,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Stops calling its inner client while it keeps failing; see the [module docs](self).
///
/// # Clone
/// Clones share the breaker state (through the same [`StateStore`] and key), so every clone
/// sees the circuit open at once.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use switchboard::{BreakerConfig, BreakerState, ChatClient, ChatClientExt, ChatRequest, Error, ErrorKind, FunctionClient};
///
/// let down = FunctionClient::new("m", |_req: &ChatRequest| Err(Error::from_status("p", 503, "down")));
/// let client = down.clone().with_circuit_breaker(BreakerConfig::default().with_consecutive_failures(2));
/// for _ in 0..2 {
///     client.chat(&ChatRequest::user("hello")).await.unwrap_err();
/// }
/// assert!(matches!(client.state(), BreakerState::Open { .. }));
/// let err = client.chat(&ChatRequest::user("hello")).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::CircuitOpen);
/// assert_eq!(down.calls(), 2);
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct CircuitBreakerClient<C> {
    inner: C,
    shared: Arc<Shared>,
}

impl<C: ChatClient> CircuitBreakerClient<C> {
    /// Wraps `inner` with a breaker keyed by its `provider:model`, kept in its own
    /// [`MemoryStore`].
    pub fn new(inner: C, config: BreakerConfig) -> CircuitBreakerClient<C> {
        let key = inner.info().to_string();
        CircuitBreakerClient {
            inner,
            shared: Arc::new(Shared {
                config,
                store: Arc::new(MemoryStore::new()),
                key,
            }),
        }
    }

    /// Keeps the state in `store` (e.g. one store shared by every breaker of a gateway).
    #[must_use]
    pub fn with_store(self, store: Arc<dyn StateStore>) -> CircuitBreakerClient<C> {
        let key = self.shared.key.clone();
        self.rebuild(store, key)
    }

    /// Keys the state by `key` instead of `provider:model` (breakers with the same key in
    /// the same store share one state).
    #[must_use]
    pub fn with_key(self, key: impl Into<String>) -> CircuitBreakerClient<C> {
        let store = self.shared.store.clone();
        self.rebuild(store, key.into())
    }

    fn rebuild(self, store: Arc<dyn StateStore>, key: String) -> CircuitBreakerClient<C> {
        CircuitBreakerClient {
            shared: Arc::new(Shared {
                config: self.shared.config.clone(),
                store,
                key,
            }),
            inner: self.inner,
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

    /// Returns the breaker's state now, as this process last saw it (a shared store's
    /// local copy; see [`CircuitBreakerClient::state_shared`]).
    pub fn state(&self) -> BreakerState {
        state_of(&self.shared.store.breaker(&self.shared.key))
    }

    /// Returns the breaker's state now as the store shares it: with a store shared between
    /// processes, a breaker another process opened shows open here before this process has
    /// made a call through it.
    pub async fn state_shared(&self) -> BreakerState {
        state_of(&self.shared.store.breaker_shared(&self.shared.key).await)
    }

    /// Admits a call, or says how long until one would be admitted. The decision is one
    /// atomic update of the shared record, so with a store shared between processes exactly
    /// one of them takes a half-open probe.
    async fn acquire(&self) -> Result<Permit> {
        let now = Instant::now();
        let mut admitted: std::result::Result<bool, Duration> = Ok(false);
        self.shared
            .store
            .update_breaker_shared(&self.shared.key, &mut |r| {
                admitted = match r.phase {
                    BreakerPhase::Closed => Ok(false),
                    BreakerPhase::Open => match r.open_until {
                        Some(until) if now < until => Err(until - now),
                        _ => {
                            r.phase = BreakerPhase::HalfOpen;
                            r.probe_in_flight = true;
                            Ok(true)
                        }
                    },
                    BreakerPhase::HalfOpen if r.probe_in_flight => Err(PROBE_BUSY_WAIT),
                    BreakerPhase::HalfOpen => {
                        r.probe_in_flight = true;
                        Ok(true)
                    }
                };
            })
            .await;
        match admitted {
            Ok(probe) => Ok(Permit {
                shared: self.shared.clone(),
                probe,
                settled: false,
            }),
            Err(wait) => Err(self.open_error(wait)),
        }
    }

    fn open_error(&self, wait: Duration) -> Error {
        let info = self.inner.info();
        Error::new(
            ErrorKind::CircuitOpen,
            format!(
                "the circuit for {} is open after repeated failures; the next probe may go in {:.1}s",
                self.shared.key,
                wait.as_secs_f64()
            ),
        )
        .with_provider(info.provider())
        .with_model(info.model())
        .with_retry_after(wait)
        .with_fix("add a fallback target, or wait until the breaker lets a probe through")
    }
}

/// What a caller sees of a breaker `record`, now.
fn state_of(record: &BreakerRecord) -> BreakerState {
    let now = Instant::now();
    match (record.phase, record.open_until) {
        (BreakerPhase::Closed, _) => BreakerState::Closed,
        (BreakerPhase::Open, Some(until)) if until > now => BreakerState::Open {
            until,
            remaining: until - now,
        },
        _ => BreakerState::HalfOpen,
    }
}

/// The right to make one call; settles the breaker with the call's outcome. Dropped without
/// a verdict (the call was cancelled), it frees the probe slot for the next caller.
struct Permit {
    shared: Arc<Shared>,
    probe: bool,
    settled: bool,
}

impl Permit {
    async fn success(mut self) {
        self.settled = true;
        let now = Instant::now();
        let probe = self.probe;
        let window = self.shared.config.ratio.is_some();
        let shared = Arc::clone(&self.shared);
        shared
            .store
            .update_breaker_shared(&shared.key, &mut |r| {
                if probe {
                    *r = BreakerRecord::default();
                } else if r.phase == BreakerPhase::Closed {
                    r.consecutive_failures = 0;
                    if window {
                        r.window.push_back((now, false));
                    }
                }
            })
            .await;
        if probe {
            tracing::info!(target_key = %self.shared.key, "circuit breaker: probe succeeded, closed");
        }
    }

    async fn failure(mut self, err: &Error) {
        self.settled = true;
        let shared = Arc::clone(&self.shared);
        let config = &shared.config;
        let counts = config.trip_on.counts(err);
        let now = Instant::now();
        let probe = self.probe;
        let mut opened = None;
        shared
            .store
            .update_breaker_shared(&shared.key, &mut |r| {
                opened = None;
                if probe {
                    if counts {
                        let extended = (r.cooldown * 2).max(config.cooldown);
                        config.open(r, now, extended, err);
                        opened = r.open_until;
                    } else {
                        r.probe_in_flight = false;
                    }
                    return;
                }
                if !counts || r.phase != BreakerPhase::Closed {
                    return;
                }
                r.consecutive_failures += 1;
                if config.ratio.is_some() {
                    r.window.push_back((now, true));
                }
                if config.should_trip(r, now) {
                    config.open(r, now, config.cooldown, err);
                    opened = r.open_until;
                }
            })
            .await;
        if let Some(until) = opened {
            tracing::warn!(
                target_key = %self.shared.key,
                open_for_ms = until.saturating_duration_since(now).as_millis() as u64,
                error = %err,
                "circuit breaker: opened"
            );
        }
    }

    async fn settle<T>(self, result: &Result<T>) {
        match result {
            Ok(_) => self.success().await,
            Err(err) => self.failure(err).await,
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.probe && !self.settled {
            self.shared.store.update_breaker_detached(
                &self.shared.key,
                Box::new(|r: &mut BreakerRecord| r.probe_in_flight = false),
            );
        }
    }
}

impl<C: ChatClient> ChatClient for CircuitBreakerClient<C> {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(async move {
            let permit = self.acquire().await?;
            let result = self.inner.chat(req).await;
            permit.settle(&result).await;
            result
        })
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(async move {
            let permit = self.acquire().await?;
            let stream = match self.inner.chat_stream(req).await {
                Ok(stream) => stream,
                Err(err) => {
                    permit.failure(&err).await;
                    return Err(err);
                }
            };
            // The verdict comes with the stream's end: its final event or its error. It is
            // recorded before that item reaches the caller.
            let mut permit = Some(permit);
            Ok(ChatStream::new(stream.then(move |item| {
                let verdict = match &item {
                    Ok(StreamEvent::Done { .. }) | Err(_) => permit.take(),
                    Ok(_) => None,
                };
                async move {
                    match (verdict, &item) {
                        (Some(p), Ok(_)) => p.success().await,
                        (Some(p), Err(err)) => p.failure(err).await,
                        (None, _) => {}
                    }
                    item
                }
            })))
        })
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        Box::pin(async move {
            let permit = self.acquire().await?;
            let result = self.inner.embed(req).await;
            permit.settle(&result).await;
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
        let record = self.shared.store.breaker(&self.shared.key);
        let now = Instant::now();
        match (record.phase, record.open_until) {
            (BreakerPhase::Open, Some(until)) if until > now => Readiness::NotBefore(until),
            (BreakerPhase::HalfOpen, _) if record.probe_in_flight => {
                Readiness::NotBefore(now + PROBE_BUSY_WAIT)
            }
            _ => self.inner.readiness(),
        }
    }
}

#[cfg(test)]
mod tests;
