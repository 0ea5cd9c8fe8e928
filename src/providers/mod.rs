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
mod path;
pub mod sse;

pub use create::{
    create_client, create_client_with, key_status, known_providers, ClientOptions, KeyStatus,
};
pub use function::{FunctionClient, FunctionClientBuilder};
pub use http::HttpSettings;

use crate::types::Capabilities;

/// Returns `base` with the context window of `provider`'s `model` from the embedded price
/// table, when the table knows it.
pub(crate) fn with_known_window(base: Capabilities, provider: &str, model: &str) -> Capabilities {
    base.with_context_window(crate::cost::PriceTable::embedded().context_window(provider, model))
}
