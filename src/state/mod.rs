//! Where wrappers keep state that outlives one call: circuit breaker states today, budget
//! spend and counters next.
//!
//! [`StateStore`] is a small object-safe trait so the same wrappers can keep their state in
//! this process ([`MemoryStore`], the default) or share it between processes (a Redis store,
//! later). Its methods are **synchronous and must not block**: a breaker is consulted on
//! every call and by [`ChatClient::readiness`](crate::ChatClient::readiness), which is a
//! cheap local look. A networked store keeps a local replica that it answers from, and
//! syncs it in the background.
//!
//! Times in records are [`tokio::time::Instant`]s of this process (so paused time in tests
//! works); a store that shares records between processes converts them to wall-clock time
//! at its boundary.

mod memory;

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

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
}
