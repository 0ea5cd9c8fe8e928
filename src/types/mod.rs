//! Provider-neutral values that callers build and read: messages, requests, responses,
//! stream events and model references.

mod capability;
mod embed;
mod message;
mod model;
mod request;
mod response;
mod stream;

pub use capability::{Capabilities, Capability, MissingCapability};
pub use embed::{EmbedRequest, EmbedResponse};
pub use message::{Media, MediaSource, Message, Part, Role, Thinking, ToolCall, ToolResult};
pub use model::ModelRef;
pub use request::{
    ChatRequest, Passthrough, ReasoningEffort, ReasoningSummary, ResponseFormat, RoutingHints,
    ToolChoice, ToolSpec,
};
pub use response::{Attempt, ChatResponse, FinishKind, FinishReason, Outcome, Usage};
pub use stream::{response_to_events, ChatStream, StreamAccumulator, StreamEvent, StreamMeta};

pub(crate) use stream::finish_stop;
#[allow(unused_imports)]
pub(crate) use stream::parse_arguments;

/// Returns a fresh id for one call: `req_` and 24 hex digits of randomness.
pub(crate) fn new_request_id() -> String {
    format!("req_{:024x}", fastrand::u128(..) >> 32)
}
