//! Conversation messages and their content parts, independent of any provider.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model; protocols that keep the system prompt apart lift it out.
    System,
    /// The person or program asking.
    User,
    /// The model's earlier answers, including its tool calls.
    Assistant,
    /// Results of tool calls, sent back to the model.
    Tool,
}

impl Role {
    /// Returns the role's lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// Where binary content (an image, a document, audio) comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum MediaSource {
    /// A URL the provider fetches itself (`https://…`, or `gs://…` for Gemini).
    Url {
        /// The address.
        url: String,
    },
    /// The bytes themselves, sent inline (base64 on the wire).
    Bytes {
        /// The raw bytes.
        #[serde(with = "base64_bytes")]
        data: Vec<u8>,
    },
}

/// Binary content with its media type, e.g. `image/png`, `application/pdf`, `audio/wav`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Media {
    /// The IANA media type.
    pub media_type: String,
    /// Where the content comes from.
    pub source: MediaSource,
}

impl Media {
    /// Creates inline media from bytes.
    pub fn bytes(media_type: impl Into<String>, data: impl Into<Vec<u8>>) -> Media {
        Media {
            media_type: media_type.into(),
            source: MediaSource::Bytes { data: data.into() },
        }
    }

    /// Creates media the provider fetches from a URL.
    pub fn url(media_type: impl Into<String>, url: impl Into<String>) -> Media {
        Media {
            media_type: media_type.into(),
            source: MediaSource::Url { url: url.into() },
        }
    }

    /// Returns the content as base64 when it is inline.
    pub fn base64(&self) -> Option<String> {
        use base64::Engine as _;
        match &self.source {
            MediaSource::Bytes { data } => {
                Some(base64::engine::general_purpose::STANDARD.encode(data))
            }
            MediaSource::Url { .. } => None,
        }
    }

    /// Returns a `data:` URI for inline content, or the URL itself.
    pub fn to_uri(&self) -> String {
        match &self.source {
            MediaSource::Url { url } => url.clone(),
            MediaSource::Bytes { .. } => format!(
                "data:{};base64,{}",
                self.media_type,
                self.base64().unwrap_or_default()
            ),
        }
    }
}

/// A call the model asked for: the tool's name and its JSON arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for this call; the result must quote it.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments, parsed. Arguments that were not valid JSON are kept as a JSON string.
    pub arguments: Value,
    /// An opaque signature the provider attached (Gemini's `thoughtSignature`), sent back as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// The outcome of a tool call, sent back to the model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The id of the [`ToolCall`] this answers.
    pub call_id: String,
    /// The tool's name; Gemini needs it, others ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The result, as text (JSON results are sent as their JSON text).
    pub content: String,
    /// Whether the tool failed; providers that support it show the model an error.
    #[serde(default)]
    pub is_error: bool,
}

/// The model's reasoning, kept so it can be sent back on the next turn.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thinking {
    /// The reasoning text (empty for redacted reasoning).
    pub text: String,
    /// The provider's signature over the reasoning (Anthropic `signature`, Gemini
    /// `thoughtSignature`), required to send it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Encrypted reasoning the provider would not show (Anthropic `redacted_thinking`,
    /// OpenAI Responses `encrypted_content`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted: Option<String>,
    /// The protocol that produced it; signatures are only sent back to the same protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// One piece of a message's content.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Part {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// An image, by URL or bytes.
    Image(Media),
    /// A document such as a PDF.
    Document(Media),
    /// Audio input.
    Audio(Media),
    /// A tool call made by the assistant.
    ToolCall(ToolCall),
    /// The result of a tool call.
    ToolResult(ToolResult),
    /// Reasoning, with the signature needed to send it back.
    Thinking(Thinking),
}

impl Part {
    /// Creates a text part.
    pub fn text(text: impl Into<String>) -> Part {
        Part::Text { text: text.into() }
    }

    /// Returns the text if this is a text part.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Part::Text { text } => Some(text),
            _ => None,
        }
    }
}

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// What it says.
    pub parts: Vec<Part>,
}

impl Message {
    /// Creates a message from a role and parts.
    pub fn new(role: Role, parts: Vec<Part>) -> Message {
        Message { role, parts }
    }

    /// Creates a system message.
    pub fn system(text: impl Into<String>) -> Message {
        Message::new(Role::System, vec![Part::text(text)])
    }

    /// Creates a user message.
    pub fn user(text: impl Into<String>) -> Message {
        Message::new(Role::User, vec![Part::text(text)])
    }

    /// Creates an assistant message.
    pub fn assistant(text: impl Into<String>) -> Message {
        Message::new(Role::Assistant, vec![Part::text(text)])
    }

    /// Creates a tool message answering the call with id `call_id`.
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Message {
        Message::new(
            Role::Tool,
            vec![Part::ToolResult(ToolResult {
                call_id: call_id.into(),
                name: None,
                content: content.into(),
                is_error: false,
            })],
        )
    }

    /// Adds a part.
    #[must_use]
    pub fn with_part(mut self, part: Part) -> Message {
        self.parts.push(part);
        self
    }

    /// Returns the concatenated text parts.
    pub fn text(&self) -> String {
        self.parts.iter().filter_map(Part::as_text).collect()
    }
}

mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(data))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}
