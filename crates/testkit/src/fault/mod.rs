//! [`FaultProvider`]: a mock LLM provider on a real socket that misbehaves on purpose.
//!
//! It listens on `127.0.0.1:0`, speaks HTTP/1.1, and answers in the shape the request's
//! path asks for — OpenAI Chat Completions (`…/chat/completions`), Anthropic Messages
//! (`…/v1/messages`) or Gemini `generateContent` (`…/models/M:generateContent` and
//! `:streamGenerateContent`) — as whole JSON bodies or SSE streams, the way the real APIs
//! send them. Each request gets one [`Fault`] from a script: healthy, an error status in the
//! protocol's own error shape, a reset connection, silence, a slow first token, a stream cut
//! or stalled after some tokens, a malformed event, a stream without its end.
//!
//! Unlike a wiremock server it can reset a connection, stall in the middle of a body and
//! cut a body short, because it writes the bytes itself. It records every request's arrival
//! time, so tests can assert how many attempts a target got and how long the client waited
//! between them, and the prefill a request ended with.
//!
//! Like the real API, an Anthropic-shaped answer continues a prefill (a final assistant
//! message) instead of answering anew: when the prefill is the first `k` tokens of the
//! answer, the answer is the tokens after them. The other shapes ignore a prefill.
//!
//! # Examples
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use switchboard_testkit::fault::{Fault, FaultProvider, Protocol};
//!
//! let upstream = FaultProvider::builder()
//!     .script([Fault::rate_limited(Some(Duration::from_millis(20))), Fault::Healthy])
//!     .tokens(5)
//!     .start()
//!     .await?;
//! let base_url = upstream.base_url(Protocol::OpenAi); // http://127.0.0.1:PORT/v1
//! # let _ = base_url;
//! assert_eq!(upstream.requests(), 0);
//! assert_eq!(upstream.answer_text(), "tok0 tok1 tok2 tok3 tok4");
//! # Ok::<_, std::io::Error>(()) }).unwrap();
//! ```

mod http;
mod provider;
mod request;
mod server;
mod shapes;

use std::time::{Duration, Instant};

pub use self::provider::{answer_text, FaultProvider, FaultProviderBuilder};

/// The wire protocols the fault provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OpenAI Chat Completions.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini `generateContent`.
    Gemini,
}

impl Protocol {
    /// Every protocol, in a fixed order.
    pub const ALL: [Protocol; 3] = [Protocol::OpenAi, Protocol::Anthropic, Protocol::Gemini];

    /// Returns the provider name `create_client` knows this protocol by.
    pub fn provider(self) -> &'static str {
        match self {
            Protocol::OpenAi => "openai",
            Protocol::Anthropic => "anthropic",
            Protocol::Gemini => "gemini",
        }
    }

    /// Returns the `provider:model` spec for `model`.
    pub fn spec(self, model: &str) -> String {
        format!("{}:{model}", self.provider())
    }

    /// Tells the protocol a request path belongs to.
    fn of_path(path: &str) -> Option<Protocol> {
        let path = path.split('?').next().unwrap_or(path);
        if path.ends_with("/chat/completions") {
            Some(Protocol::OpenAi)
        } else if path.ends_with("/v1/messages") {
            Some(Protocol::Anthropic)
        } else if path.ends_with(":generateContent") || path.ends_with(":streamGenerateContent") {
            Some(Protocol::Gemini)
        } else {
            None
        }
    }
}

/// What the fault provider does with one request.
///
/// Status faults answer in the protocol's own error shape. Faults counted in tokens apply to
/// streams token by token; on a whole (non-streaming) answer they apply to the body in
/// proportion (a cut after 40 of 60 tokens sends the first two thirds of the JSON).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// Answers normally.
    Healthy,
    /// HTTP 429 in the protocol's rate-limit shape, with `Retry-After` when given (written
    /// in seconds, fractional for sub-second waits: `Retry-After: 0.02`).
    RateLimited {
        /// The wait to advertise.
        retry_after: Option<Duration>,
    },
    /// HTTP 500.
    ServerError,
    /// HTTP 503 ("service unavailable").
    Unavailable,
    /// The protocol's "overloaded" answer (Anthropic 529, Gemini and OpenAI 503 with an
    /// "overloaded" message).
    Overloaded,
    /// HTTP 400 saying the prompt is longer than the context window (OpenAI
    /// `context_length_exceeded`, Anthropic "prompt is too long", Gemini "input token count
    /// exceeds").
    ContextLengthExceeded,
    /// A content-policy refusal: OpenAI HTTP 400 `content_policy_violation`; Gemini 200 with
    /// `promptFeedback.blockReason`; Anthropic 200 with `stop_reason: "refusal"` (it has no
    /// error status for this).
    ContentPolicy,
    /// Exactly this status, body and headers, whatever the protocol.
    Status {
        /// The HTTP status.
        status: u16,
        /// The body, sent as `application/json`.
        body: String,
        /// Extra headers.
        headers: Vec<(String, String)>,
    },
    /// Reads the request, then resets the connection (RST) before sending anything.
    ResetBeforeHeaders,
    /// Reads the request and never answers, holding the connection until the client leaves.
    NeverAnswer,
    /// Waits this long before the first token: streams send their headers at once and then
    /// wait; whole answers wait before the reply.
    FirstTokenAfter(Duration),
    /// Sends this many tokens, then closes the connection in the middle of the body.
    CutAfter(usize),
    /// Sends this many tokens, then goes silent, holding the connection open.
    StallAfter(usize),
    /// Sends this many tokens, then an event whose JSON is cut short, then the rest of the
    /// stream. A whole answer is a 200 whose body is not valid JSON.
    MalformedAfter(usize),
    /// Sends every token, then ends the body cleanly without the protocol's finish and end
    /// events (`finish_reason` and `[DONE]`; `message_delta` and `message_stop`;
    /// `finishReason`). A whole answer is sent without a length, half of it, ended by closing
    /// the connection.
    NoTerminator,
}

impl Fault {
    /// HTTP 429, with or without `Retry-After`.
    pub fn rate_limited(retry_after: Option<Duration>) -> Fault {
        Fault::RateLimited { retry_after }
    }

    /// A short stable name for reports (`healthy`, `rate_limited`, `reset`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Healthy => "healthy",
            Fault::RateLimited {
                retry_after: Some(_),
            } => "rate_limited_retry_after",
            Fault::RateLimited { retry_after: None } => "rate_limited",
            Fault::ServerError => "server_error",
            Fault::Unavailable => "unavailable",
            Fault::Overloaded => "overloaded",
            Fault::ContextLengthExceeded => "context_length",
            Fault::ContentPolicy => "content_policy",
            Fault::Status { .. } => "status",
            Fault::ResetBeforeHeaders => "reset",
            Fault::NeverAnswer => "never_answer",
            Fault::FirstTokenAfter(_) => "slow_first_token",
            Fault::CutAfter(_) => "cut",
            Fault::StallAfter(_) => "stall",
            Fault::MalformedAfter(_) => "malformed",
            Fault::NoTerminator => "no_terminator",
        }
    }

    /// One of every built-in fault (all but [`Fault::Healthy`] and the hand-made
    /// [`Fault::Status`]; 429 twice, with and without `Retry-After`), with waits and token
    /// counts picked for an answer of `tokens` tokens and a client whose limits are around
    /// `limit`: slow first tokens come after twice the limit, `Retry-After` asks for a tenth
    /// of it, streams break after a third, a half or two thirds of their tokens.
    pub fn every_kind(tokens: usize, limit: Duration) -> Vec<Fault> {
        vec![
            Fault::rate_limited(Some(limit / 10)),
            Fault::rate_limited(None),
            Fault::ServerError,
            Fault::Unavailable,
            Fault::Overloaded,
            Fault::ContextLengthExceeded,
            Fault::ContentPolicy,
            Fault::ResetBeforeHeaders,
            Fault::NeverAnswer,
            Fault::FirstTokenAfter(limit * 2),
            Fault::CutAfter(tokens * 2 / 3),
            Fault::StallAfter(tokens / 3),
            Fault::MalformedAfter(tokens / 2),
            Fault::NoTerminator,
        ]
    }
}

/// One request as the fault provider saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct Arrival {
    /// When the whole request had been read.
    pub at: Instant,
    /// Time since the provider started.
    pub offset: Duration,
    /// The protocol the path asked for (`None` for a path it does not know).
    pub protocol: Option<Protocol>,
    /// Whether a stream was asked for.
    pub stream: bool,
    /// The model the request named.
    pub model: String,
    /// The text of the final assistant message (Gemini: `model` turn) the conversation
    /// ended with, if any: the prefill a continuation sends.
    pub prefill: Option<String>,
    /// What the provider did with it.
    pub fault: Fault,
}
