//! Serde mirror of the Messages API JSON: strict on output, tolerant on input.
//!
//! Request types only serialise and skip absent fields; response and stream types only
//! deserialise, default every field they can, and fall back to an `Unknown` variant for block,
//! delta and event types this version does not know (server tools, citations, new events).

use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---- request ---------------------------------------------------------------------------

/// The body of `POST /v1/messages`.
#[derive(Debug, Serialize)]
pub(crate) struct MessagesRequest {
    pub(crate) model: String,
    pub(crate) max_tokens: u32,
    pub(crate) messages: Vec<WireMessage>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) system: Vec<SystemBlock>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) top_p: Option<f32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) stop_sequences: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tools: Vec<WireTool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tool_choice: Option<WireToolChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) thinking: Option<ThinkingConfig>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) stream: bool,
}

/// One turn: `user` or `assistant`.
#[derive(Debug, Serialize)]
pub(crate) struct WireMessage {
    pub(crate) role: &'static str,
    pub(crate) content: Vec<RequestBlock>,
}

/// A block of the top-level `system` prompt.
#[derive(Debug, Serialize)]
pub(crate) struct SystemBlock {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) text: String,
}

impl SystemBlock {
    pub(crate) fn text(text: impl Into<String>) -> SystemBlock {
        SystemBlock {
            kind: "text",
            text: text.into(),
        }
    }
}

/// A content block we send.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum RequestBlock {
    Text {
        text: String,
    },
    Image {
        source: Source,
    },
    Document {
        source: Source,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        content: String,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
    Thinking {
        thinking: String,
        signature: String,
    },
    RedactedThinking {
        data: String,
    },
}

/// Where an image or document comes from.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Source {
    Base64 { media_type: String, data: String },
    Url { url: String },
    Text { media_type: String, data: String },
}

/// A tool the model may call.
#[derive(Debug, Serialize)]
pub(crate) struct WireTool {
    pub(crate) name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    pub(crate) input_schema: Value,
}

/// `tool_choice`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum WireToolChoice {
    Auto,
    Any,
    None,
    Tool { name: String },
}

/// `thinking: {type: enabled, budget_tokens}`.
#[derive(Debug, Serialize)]
pub(crate) struct ThinkingConfig {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) budget_tokens: u32,
}

// ---- response --------------------------------------------------------------------------

/// The body of a successful reply (also the `message` of a stream's `message_start`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct MessagesResponse {
    pub(crate) id: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) content: Vec<ResponseBlock>,
    pub(crate) stop_reason: Option<String>,
    pub(crate) usage: WireUsage,
}

/// A content block we receive.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ResponseBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
        #[serde(default)]
        signature: String,
    },
    RedactedThinking {
        #[serde(default)]
        data: String,
    },
    ToolUse {
        #[serde(default)]
        id: String,
        #[serde(default)]
        name: String,
        #[serde(default)]
        input: Value,
    },
    /// Server tool calls and results, and any block type added later.
    #[serde(other)]
    Unknown,
}

/// Token counts as Anthropic reports them: `input_tokens` excludes cache reads and writes.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(default)]
pub(crate) struct WireUsage {
    pub(crate) input_tokens: Option<u64>,
    pub(crate) output_tokens: Option<u64>,
    pub(crate) cache_creation_input_tokens: Option<u64>,
    pub(crate) cache_read_input_tokens: Option<u64>,
}

// ---- stream ----------------------------------------------------------------------------

/// The JSON `data` of one stream event, told apart by its `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum StreamPayload {
    MessageStart {
        #[serde(default)]
        message: MessagesResponse,
    },
    ContentBlockStart {
        #[serde(default)]
        index: usize,
        content_block: ResponseBlock,
    },
    ContentBlockDelta {
        #[serde(default)]
        index: usize,
        delta: Delta,
    },
    ContentBlockStop,
    MessageDelta {
        #[serde(default)]
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: WireUsage,
    },
    MessageStop,
    Ping,
    Error {
        #[serde(default)]
        error: ErrorDetail,
    },
    #[serde(other)]
    Unknown,
}

/// The change a `content_block_delta` carries.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub(crate) enum Delta {
    #[serde(rename = "text_delta")]
    Text {
        #[serde(default)]
        text: String,
    },
    #[serde(rename = "input_json_delta")]
    InputJson {
        #[serde(default)]
        partial_json: String,
    },
    #[serde(rename = "thinking_delta")]
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    #[serde(rename = "signature_delta")]
    Signature {
        #[serde(default)]
        signature: String,
    },
    /// Citations and any delta type added later.
    #[serde(other)]
    Unknown,
}

/// The `delta` of a `message_delta` event.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct MessageDeltaBody {
    pub(crate) stop_reason: Option<String>,
}

// ---- token counting -------------------------------------------------------------------

/// The reply of `POST /v1/messages/count_tokens`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TokenCount {
    pub(crate) input_tokens: u64,
}

// ---- errors ----------------------------------------------------------------------------

/// An error body: `{"type":"error","error":{"type","message"},"request_id"}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ErrorEnvelope {
    pub(crate) error: Option<ErrorDetail>,
    pub(crate) request_id: Option<String>,
}

/// The `error` object of an error body or stream event.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ErrorDetail {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) message: String,
}
