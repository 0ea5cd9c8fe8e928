//! Providers: the clients that really answer — HTTP protocols, and [`FunctionClient`] for
//! offline use.

mod function;

pub use function::{FunctionClient, FunctionClientBuilder};
