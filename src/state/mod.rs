//! Where wrappers keep state that outlives one call: circuit breaker states, counters and
//! prompt-cache affinity pins.
//!
//! [`StateStore`] is a small object-safe trait so the same wrappers can keep their state in
//! this process ([`MemoryStore`], the default) or share it between processes
//! (`redis::RedisStore`, behind the `redis` feature, for several gateway
//! replicas behind one load balancer).
//!
//! Reads ([`StateStore::breaker`], [`StateStore::counter`]) are **synchronous and must not
//! block**: a breaker is consulted by [`ChatClient::readiness`](crate::ChatClient::readiness),
//! which is a cheap local look. A networked store answers them from a local replica that it
//! refreshes in the background. Updates that decide something — admitting the one half-open
//! probe, opening a breaker — must be atomic across every process sharing the store, so they
//! go through [`StateStore::update_breaker_shared`], which a networked store implements as
//! one atomic round trip; an in-process store applies them at once.
//!
//! Times in records are [`tokio::time::Instant`]s of this process (so paused time in tests
//! works); a store that shares records between processes converts them to wall-clock time
//! at its boundary.

mod memory;
#[cfg(feature = "redis")]
pub mod redis;

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::client::BoxFuture;
use crate::error::Result;

pub use memory::MemoryStore;

/// The phase of one circuit breaker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BreakerPhase {
    /// Calls go through; failures are counted.
    #[default]
    Closed,
    /// Calls are refused until [`BreakerRecord::open_until`].
    Open,
    /// The cooldown is over; one probe call decides whether to close or re-open.
    HalfOpen,
}

/// The stored state of one circuit breaker (one target).
///
/// The [`CircuitBreakerClient`](crate::CircuitBreakerClient) owns the rules; the store only
/// keeps the record and applies updates atomically.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BreakerRecord {
    /// Closed, open or half-open.
    pub phase: BreakerPhase,
    /// While open: when a probe may go through.
    pub open_until: Option<Instant>,
    /// The cooldown used the last time it opened (zero before it first opens); a failed
    /// probe extends it.
    pub cooldown: Duration,
    /// Failures in a row since the last success.
    pub consecutive_failures: u32,
    /// Recent calls while closed, oldest first: when each ended and whether it failed.
    pub window: VecDeque<(Instant, bool)>,
    /// While half-open: whether the one probe is in flight.
    pub probe_in_flight: bool,
}

/// Keeps wrapper state keyed by target; see the [module docs](self).
///
/// Keys are chosen by the wrapper (a breaker uses `provider:model` unless told otherwise).
/// An unknown key reads as the default record or a zero counter.
pub trait StateStore: Send + Sync + fmt::Debug {
    /// Returns a copy of the breaker record for `key`.
    fn breaker(&self, key: &str) -> BreakerRecord;

    /// Applies `update` to the breaker record for `key`, atomically with respect to every
    /// other call on the same store.
    fn update_breaker(&self, key: &str, update: &mut dyn FnMut(&mut BreakerRecord));

    /// Adds `delta` to the counter `key` and returns the new value.
    fn add(&self, key: &str, delta: i64) -> i64;

    /// Returns the counter `key` (zero if never set).
    fn counter(&self, key: &str) -> i64;

    /// Applies `update` to the breaker record for `key`, atomically with respect to every
    /// process sharing the store, and resolves once it is applied.
    ///
    /// `update` may be called more than once (a networked store retries when another
    /// process changed the record first), so it must derive everything it reports from the
    /// record it is given. The default applies [`StateStore::update_breaker`] at once.
    fn update_breaker_shared<'a>(
        &'a self,
        key: &'a str,
        update: &'a mut (dyn FnMut(&mut BreakerRecord) + Send),
    ) -> BoxFuture<'a, ()> {
        self.update_breaker(key, update);
        Box::pin(std::future::ready(()))
    }

    /// Reads the breaker record for `key` where it is shared, for a decision or a report
    /// that must not trust a possibly stale local copy (a networked store asks its server
    /// and falls back to its replica when it cannot). The default reads it through a no-op
    /// [`StateStore::update_breaker_shared`].
    fn breaker_shared<'a>(&'a self, key: &'a str) -> BoxFuture<'a, BreakerRecord> {
        Box::pin(async move {
            let mut seen = BreakerRecord::default();
            self.update_breaker_shared(key, &mut |r| seen = r.clone())
                .await;
            seen
        })
    }

    /// Applies `update` soon without waiting for it: for code that cannot wait, such as a
    /// `Drop`. The default applies [`StateStore::update_breaker`] at once; a networked
    /// store applies it to its replica now and to the shared record in the background.
    fn update_breaker_detached(
        &self,
        key: &str,
        mut update: Box<dyn FnMut(&mut BreakerRecord) + Send + 'static>,
    ) {
        self.update_breaker(key, &mut *update);
    }

    /// Adds `delta` to the counter `key` where it is shared and resolves to the new value.
    /// The default is [`StateStore::add`].
    fn add_shared<'a>(&'a self, key: &'a str, delta: i64) -> BoxFuture<'a, i64> {
        let value = self.add(key, delta);
        Box::pin(std::future::ready(value))
    }

    /// Returns the value pinned under `key`, first storing `proposed` there for `ttl` when
    /// nothing is, and renewing the TTL either way: how prompt-cache affinity agrees on a
    /// conversation's target across processes (one atomic round trip on a networked
    /// store). The default shares nothing and returns `proposed`; the caller keeps its own
    /// pins in the process.
    fn claim_pin<'a>(
        &'a self,
        key: &'a str,
        proposed: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, String> {
        let _ = (key, ttl);
        Box::pin(std::future::ready(proposed.to_owned()))
    }

    /// Checks that the store can be reached (a networked store sends one command).
    ///
    /// # Errors
    /// [`ErrorKind::Transport`](crate::ErrorKind::Transport) when a networked store cannot
    /// reach its server. The default always succeeds.
    fn check(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(std::future::ready(Ok(())))
    }
}
