//! Providers: the clients that really answer — HTTP protocols, and [`FunctionClient`] for
//! offline use.

pub mod anthropic;
pub mod cassette;
mod create;
mod function;
pub mod gemini;
pub mod http;
pub mod openai;
pub mod sse;

pub use create::{create_client, create_client_with, known_providers, ClientOptions};
pub use function::{FunctionClient, FunctionClientBuilder};
pub use http::HttpSettings;
