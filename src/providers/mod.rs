//! Providers: the clients that really answer — HTTP protocols, and [`FunctionClient`] for
//! offline use.

pub mod anthropic;
pub mod azure;
pub mod cassette;
mod create;
mod function;
pub mod gemini;
pub mod http;
pub mod openai;
pub mod openai_responses;
pub mod sse;

pub use create::{
    create_client, create_client_with, key_status, known_providers, ClientOptions, KeyStatus,
};
pub use function::{FunctionClient, FunctionClientBuilder};
pub use http::HttpSettings;
