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

mod fallback;

pub use fallback::{FallbackClient, FallbackClientBuilder, FallbackOn};
