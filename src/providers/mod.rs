//! Providers: the clients that really answer — HTTP protocols, and [`FunctionClient`] for
//! offline use.

pub mod anthropic;
mod function;
pub mod gemini;
pub mod http;
pub mod openai;
pub mod sse;

pub use function::{FunctionClient, FunctionClientBuilder};
pub use http::HttpSettings;
