//! [`CooldownClient`]: a target whose provider asked callers to wait is skipped until then.
//!
//! The failure it prevents: a provider answers 429 with `Retry-After: 30`, and the very next
//! request — from this process or another replica — calls it again at once, spending an
//! attempt (and the provider's patience) on an answer known in advance. A circuit breaker
//! does not help: it opens only after several failures in a row.
//!
//! When a call fails with an error that came from the provider (it has an HTTP status) and
//! carries a wait (`Retry-After`, `retry-after-ms`, or a body field such as Gemini's
//! `retryDelay`; see [`Error::retry_after`]), the target cools down for that long, capped
//! by [`CooldownClient::with_max_cooldown`] (5 minutes by default). Until then:
//!
//! - [`ChatClient::readiness`] answers [`Readiness::CoolingDown`], so a
//!   [`FallbackClient`](crate::FallbackClient) skips the target without calling it and
//!   records an [`Outcome::Skipped`](crate::Outcome::Skipped) attempt whose message says
//!   why and for how long;
//! - a call that reaches it anyway fails at once with [`ErrorKind::RateLimited`], the time
//!   left as `retry_after`, and [`Error::is_skip`] set: it is not retried by default and
//!   does not count against a circuit breaker.
//!
//! The cool-down lives in a [`StateStore`] like breaker state (as a breaker record under
//! its own key, by default `cooldown/<provider:model>`), so with a shared store
//! (`switchboard::state::redis`) one replica's 429 cools the target down for every
//! replica. The call-time check reads the shared record; `readiness` reads the local copy.
//! A cool-down only ever lengthens: a shorter wait asked later does not cut it.
//!
//! Put it inside [`RetryClient`](crate::RetryClient), so the wait is recorded the moment
//! the provider asks for it, not when the retry loop gives up.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;

use crate::client::{BoxFuture, ChatClient, ClientInfo, Readiness};
use crate::error::{Error, ErrorKind, Result};
use crate::state::{BreakerPhase, BreakerRecord, MemoryStore, StateStore};
use crate::types::{ChatRequest, ChatResponse, ChatStream, EmbedRequest, EmbedResponse};

/// The longest cool-down a provider's wait starts, unless set otherwise.
pub const DEFAULT_MAX_COOLDOWN: Duration = Duration::from_secs(300);

/// A cool-down with less than this left is treated as over: records shared between
/// processes carry millisecond wall-clock times, and a retry loop that waited exactly the
/// time asked must not find the target still cooling by a rounding error.
const TOLERANCE: Duration = Duration::from_millis(20);

struct Shared {
    store: Arc<dyn StateStore>,
    key: String,
    max: Duration,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("key", &self.key)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

/// Skips its inner client while the provider's last requested wait runs; see the
/// [module docs](self).
///
/// # Clone
/// Clones share the cool-down (through the same [`StateStore`] and key).
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use switchboard::{ChatClient, ChatRequest, CooldownClient, Error, ErrorKind, FunctionClient};
///
/// let limited = FunctionClient::new("m", |_req: &ChatRequest| {
///     Err(Error::from_status("p", 429, "slow down").with_retry_after(Duration::from_secs(30)))
/// });
/// let client = CooldownClient::new(limited.clone());
/// client.chat(&ChatRequest::user("hello")).await.unwrap_err();
/// assert!(!client.readiness().is_ready());
/// let err = client.chat(&ChatRequest::user("again")).await.unwrap_err();
/// assert!(err.is_skip());
/// assert_eq!(err.kind(), ErrorKind::RateLimited);
/// assert_eq!(limited.calls(), 1);
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct CooldownClient<C> {
    inner: C,
    shared: Arc<Shared>,
}

impl<C: ChatClient> CooldownClient<C> {
    /// Wraps `inner`, keeping its cool-down in its own [`MemoryStore`] under
    /// `cooldown/<provider:model>`.
    pub fn new(inner: C) -> CooldownClient<C> {
        let key = format!("cooldown/{}", inner.info());
        CooldownClient {
            inner,
            shared: Arc::new(Shared {
                store: Arc::new(MemoryStore::new()),
                key,
                max: DEFAULT_MAX_COOLDOWN,
            }),
        }
    }

    /// Keeps the cool-down in `store` (e.g. the one store every breaker of a gateway uses).
    #[must_use]
    pub fn with_store(self, store: Arc<dyn StateStore>) -> CooldownClient<C> {
        let (key, max) = (self.shared.key.clone(), self.shared.max);
        self.rebuild(store, key, max)
    }

    /// Keys the cool-down by `key` (clients with the same key in the same store share it).
    #[must_use]
    pub fn with_key(self, key: impl Into<String>) -> CooldownClient<C> {
        let (store, max) = (self.shared.store.clone(), self.shared.max);
        self.rebuild(store, key.into(), max)
    }

    /// Caps how long one requested wait cools the target down (default
    /// [`DEFAULT_MAX_COOLDOWN`]).
    #[must_use]
    pub fn with_max_cooldown(self, max: Duration) -> CooldownClient<C> {
        let (store, key) = (self.shared.store.clone(), self.shared.key.clone());
        self.rebuild(store, key, max)
    }

    fn rebuild(self, store: Arc<dyn StateStore>, key: String, max: Duration) -> CooldownClient<C> {
        CooldownClient {
            shared: Arc::new(Shared { store, key, max }),
            inner: self.inner,
        }
    }

    /// Returns the wrapped client.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// Returns when the cool-down ends, as this process last saw it (`None` when none runs).
    pub fn cooling_until(&self) -> Option<Instant> {
        until(&self.shared.store.breaker(&self.shared.key))
    }

    /// Refuses the call when the shared record says the target is cooling down.
    async fn admit(&self) -> Result<()> {
        let record = self.shared.store.breaker_shared(&self.shared.key).await;
        match until(&record) {
            Some(at) => Err(skip_error(self.inner.info(), at - Instant::now())),
            None => Ok(()),
        }
    }

    async fn settle<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(err) = &result {
            observe(&self.shared, err).await;
        }
        result
    }
}

/// Starts (or lengthens) the cool-down in `shared` when `err` is the provider asking to
/// wait.
async fn observe(shared: &Shared, err: &Error) {
    if err.status().is_none() || err.is_skip() {
        return;
    }
    let Some(asked) = err.retry_after() else {
        return;
    };
    let wait = asked.min(shared.max);
    if wait < TOLERANCE {
        return;
    }
    let until = Instant::now() + wait;
    shared
        .store
        .update_breaker_shared(&shared.key, &mut |r| {
            if r.open_until.is_none_or(|at| at < until) {
                *r = BreakerRecord::default();
                r.phase = BreakerPhase::Open;
                r.open_until = Some(until);
            }
        })
        .await;
    tracing::warn!(
        target_key = %shared.key,
        wait_ms = wait.as_millis() as u64,
        status = err.status(),
        "cool-down: the provider asked callers to wait; skipping it until then"
    );
}

/// The end of the cool-down in `record`, if one is still running.
fn until(record: &BreakerRecord) -> Option<Instant> {
    match (record.phase, record.open_until) {
        (BreakerPhase::Open, Some(at)) if at > Instant::now() + TOLERANCE => Some(at),
        _ => None,
    }
}

/// The error recorded for `info` skipped while it cools down for another `left`.
pub(crate) fn skip_error(info: &ClientInfo, left: Duration) -> Error {
    Error::new(
        ErrorKind::RateLimited,
        format!(
            "skipped without calling it: the provider asked callers to wait, for another {:.1}s",
            left.as_secs_f64()
        ),
    )
    .with_provider(info.provider())
    .with_model(info.model())
    .with_retry_after(left)
    .with_fix("add a fallback target, or send the request again after the wait")
    .marked_skip()
}

impl<C: ChatClient> ChatClient for CooldownClient<C> {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(async move {
            self.admit().await?;
            let result = self.inner.chat(req).await;
            self.settle(result).await
        })
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(async move {
            self.admit().await?;
            let stream = match self.inner.chat_stream(req).await {
                Ok(stream) => stream,
                Err(err) => return self.settle(Err(err)).await,
            };
            // An error event with a wait (a rate limit sent mid-stream) cools down too.
            let shared = Arc::clone(&self.shared);
            Ok(ChatStream::new(stream.then(move |item| {
                let shared = Arc::clone(&shared);
                async move {
                    if let Err(err) = &item {
                        observe(&shared, err).await;
                    }
                    item
                }
            })))
        })
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        Box::pin(async move {
            self.admit().await?;
            let result = self.inner.embed(req).await;
            self.settle(result).await
        })
    }

    fn count_tokens<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<Option<u64>>> {
        self.inner.count_tokens(req)
    }

    fn info(&self) -> &ClientInfo {
        self.inner.info()
    }

    fn readiness(&self) -> Readiness {
        match self.cooling_until() {
            Some(at) => Readiness::CoolingDown(at),
            None => self.inner.readiness(),
        }
    }
}

#[cfg(test)]
mod tests;
