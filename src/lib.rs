//! Switchboard: one [`ChatClient`] interface over many LLM providers that keeps answering
//! when a provider is down.
//!
//! Clients compose. A [`FallbackClient`] wraps an ordered list of clients and tries the next
//! one on a recoverable error; a [`FunctionClient`] runs a closure instead of HTTP, so
//! everything works offline and tests are deterministic.
//!
//! # Quick start
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use switchboard::{ChatClient, ChatClientExt, ChatRequest, ChatResponse, Error, FunctionClient};
//!
//! let primary = FunctionClient::new("primary", |_req: &ChatRequest| {
//!     Err(Error::from_status("primary", 503, "primary provider is unavailable"))
//! });
//! let backup = FunctionClient::new("backup", |_req: &ChatRequest| {
//!     Ok(ChatResponse::from_text("answered by the backup provider"))
//! });
//! let client = primary.clone().with_fallback([backup.clone().boxed()]);
//!
//! let response = client.chat(&ChatRequest::user("hello")).await?;
//! assert_eq!(response.text(), "answered by the backup provider");
//! assert_eq!((primary.calls(), backup.calls()), (1, 1));
//! # Ok::<_, Error>(()) }).unwrap();
//! ```
//!
//! # Errors
//!
//! Every failure is an [`Error`] with a public [`ErrorKind`]; see
//! [`Error::is_recoverable`] for what a fallback chain moves on from.
//!
//! # Features
//!
//! - `redis`: `state::redis::RedisStore`, a [`state::StateStore`] in Redis, so several
//!   processes (gateway replicas) share their circuit breakers; the gateway's `[state]`
//!   table uses it. Off by default; the `switchboard` binary enables it.
//! - `fuzzing`: hidden entry points into the decoders for the targets in `fuzz/`; not a
//!   stable API.
#![cfg_attr(not(test), warn(clippy::print_stdout, clippy::unwrap_used))]

pub mod blocking;
mod client;
pub mod config;
pub mod cost;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod middleware;
pub mod providers;
pub mod redact;
pub mod state;
pub mod types;

pub use client::{BoxFuture, ChatClient, ChatClientExt, ClientInfo, DynClient, Readiness};
pub use cost::{cost_of, ChatResponseCostExt, Cost, ModelPrice, PriceTable};
pub use error::{Error, ErrorKind, Result};
pub use middleware::{
    Affinity, AffinityKey, AllOpen, BalancedClient, BreakerConfig, BreakerState, Budget,
    BudgetClient, BudgetLimit, CacheBackend, CachedClient, CircuitBreakerClient, CommitPoint,
    ConcurrencyLimitClient, CooldownClient, DeadlineClient, FallbackClient, FallbackOn, FileCache,
    HedgePolicy, HedgedClient, InstrumentedClient, MemoryCache, RetryClient, RetryPolicy, Strategy,
    Tier, TimeoutClient, Timeouts, Totals,
};
pub use providers::anthropic::AnthropicClient;
pub use providers::gemini::GeminiClient;
pub use providers::openai::OpenAiClient;
pub use providers::openai_responses::OpenAiResponsesClient;
pub use providers::{create_client, create_client_with, ClientOptions, FunctionClient};
pub use types::{
    Attempt, Capabilities, Capability, ChatRequest, ChatResponse, ChatStream, EmbedRequest,
    EmbedResponse, FinishKind, FinishReason, Message, ModelRef, Outcome, Part, Role, RoutingHints,
    StreamAccumulator, StreamEvent, ToolCall, ToolChoice, ToolSpec, Usage,
};

/// The README's Rust blocks, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
