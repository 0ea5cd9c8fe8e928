//! Providers: the clients that really answer — HTTP protocols, and [`FunctionClient`] for
//! offline use.

mod function;
pub mod gemini;
#[allow(dead_code)] // Parts are used only once a protocol module is compiled in.
pub mod http;
pub mod sse;

pub use function::{FunctionClient, FunctionClientBuilder};
pub use http::HttpSettings;
