//! Providers: the clients that really answer — HTTP protocols, and [`FunctionClient`] for
//! offline use.

pub mod anthropic;
mod function;
#[allow(dead_code)] // Parts are used only once a protocol module is compiled in.
pub mod http;
pub mod openai;
pub mod sse;

pub use function::{FunctionClient, FunctionClientBuilder};
pub use http::HttpSettings;
