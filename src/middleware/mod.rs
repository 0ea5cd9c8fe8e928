//! Wrappers that add behaviour to any [`ChatClient`](crate::ChatClient), all behind the same
//! interface.
//!
//! Each wrapper is a client holding an inner client. The default stack, outermost first:
//!
//! ```text
//! caller
//!   └─ FallbackClient          tries each provider stack in order on recoverable errors
//!       ├─ primary:  RetryClient → provider
//!       └─ backup:   RetryClient → provider
//! ```
//!
//! Retry sits inside fallback: a little persistence per provider, then move on. A stream may
//! switch provider only before its first content event reaches the caller.

mod budget;
mod cache;
mod concurrency;
mod fallback;
mod instrument;

pub use budget::{Budget, BudgetBuilder, BudgetClient, BudgetLimit, DEFAULT_MAX_OUTPUT_TOKENS};
pub use cache::{
    key_fingerprint, CacheBackend, CacheEntry, CachedClient, FileCache, MemoryCache, CACHE_PROVIDER,
};
pub use concurrency::ConcurrencyLimitClient;
pub use fallback::{FallbackClient, FallbackClientBuilder, FallbackOn};
pub use instrument::{InstrumentedClient, Totals};
