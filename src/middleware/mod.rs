//! Wrappers that add behaviour to any [`ChatClient`](crate::ChatClient), all behind the same
//! interface.
//!
//! Each wrapper is a client holding an inner client. The default stack, outermost first:
//!
//! ```text
//! caller
//!   └─ InstrumentedClient        one span per call, one event per attempt
//!       └─ CachedClient          a hit returns without touching any provider
//!           └─ DeadlineClient    one deadline for the whole call, read by everything below
//!               └─ FallbackClient    tries each target in order; skips open breakers
//!                   ├─ primary: CircuitBreakerClient → RetryClient → BudgetClient
//!                   │             → ConcurrencyLimitClient → TimeoutClient → provider
//!                   └─ backup:  CircuitBreakerClient → RetryClient → BudgetClient
//!                                 → ConcurrencyLimitClient → TimeoutClient → provider
//! ```
//!
//! Why this order: the deadline is outside fallback and retry, so every attempt gets the
//! smaller of its own limit and the time left, and a silent upstream costs one attempt
//! timeout, not retries × timeout. Retry sits inside fallback (a little persistence per
//! provider, then move on); the breaker sits outside retry (an open breaker skips the
//! provider and its retries at once, and one exhausted retry loop is one failure); the
//! timeout is innermost, around each real attempt. [`HedgedClient`] can stand where
//! [`FallbackClient`] stands, racing targets instead of trying them one after another, and
//! so can [`BalancedClient`], which spreads requests over tiers of targets by a
//! [`Strategy`] and can pin conversations to the target holding their prompt cache.
//!
//! A stream may switch attempt or target only before its commit point ([`CommitPoint`]; by
//! default its first content event); after it, a failure ends the stream with
//! [`ErrorKind::StreamInterrupted`](crate::ErrorKind::StreamInterrupted), unless a
//! [`FallbackClient`] with continuation resumes it on another target.

pub mod balance;
pub mod budget;
pub mod cache;
pub mod circuit_breaker;
pub mod commit;
pub mod concurrency;
pub mod cooldown;
pub mod deadline;
pub mod fallback;
pub mod hedge;
pub mod instrument;
pub mod retry;
pub mod timeout;

pub use balance::{Affinity, AffinityKey, BalancedClient, BalancedClientBuilder, Strategy, Tier};
pub use budget::{Budget, BudgetBuilder, BudgetClient, BudgetLimit, DEFAULT_MAX_OUTPUT_TOKENS};
pub use cache::{
    key_fingerprint, CacheBackend, CacheEntry, CachedClient, FileCache, MemoryCache, CACHE_PROVIDER,
};
pub use circuit_breaker::{BreakerConfig, BreakerState, CircuitBreakerClient, TripOn};
pub use commit::CommitPoint;
pub use concurrency::ConcurrencyLimitClient;
pub use cooldown::CooldownClient;
pub use deadline::{current_deadline, time_left, DeadlineClient};
pub use fallback::{AllOpen, FallbackClient, FallbackClientBuilder, FallbackOn};
pub use hedge::{HedgePolicy, HedgedClient};
pub use instrument::{InstrumentedClient, Totals};
pub use retry::{RetryClient, RetryOn, RetryPolicy};
pub use timeout::{TimeoutClient, Timeouts};
