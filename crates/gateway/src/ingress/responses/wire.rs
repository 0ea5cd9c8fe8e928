//! The JSON of OpenAI's Responses API as the gateway receives and sends it: the create
//! request (read), the response object, its output items and the stream events (written).
//!
//! The library's own mirror (`switchboard::providers::openai_responses`) is private and
//! faces the other way: it writes requests and reads replies. The ingress reads every input
//! form a client may send (a string or items, messages with string or part content, items
//! without `type`), so its request types are flat and tolerant — every field optional, the
//! decoder ([`super::decode`]) checks what each item type needs and names the field at
//! fault — and its output types are strict (no nulls but the ones OpenAI itself sends).
//!
//! Reference: <https://platform.openai.com/docs/api-reference/responses/create>,
//! <https://platform.openai.com/docs/api-reference/responses/object>,
//! <https://platform.openai.com/docs/api-reference/responses-streaming>.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

// ---- request ---------------------------------------------------------------------------

/// A `POST /v1/responses` body. Fields not listed here are not forwarded.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CreateRequest {
    pub(crate) model: String,
    pub(crate) input: Option<Input>,
    pub(crate) instructions: Option<String>,
    pub(crate) tools: Option<Vec<Tool>>,
    pub(crate) tool_choice: Option<ToolChoice>,
    pub(crate) text: Option<TextParam>,
    pub(crate) reasoning: Option<ReasoningParam>,
    pub(crate) max_output_tokens: Option<u32>,
    pub(crate) temperature: Option<f32>,
    pub(crate) top_p: Option<f32>,
    pub(crate) stream: Option<bool>,
    pub(crate) store: Option<bool>,
    pub(crate) background: Option<bool>,
    pub(crate) previous_response_id: Option<String>,
    pub(crate) conversation: Option<Value>,
    pub(crate) prompt: Option<Value>,
    pub(crate) metadata: Option<Value>,
    pub(crate) parallel_tool_calls: Option<bool>,
}

/// `input`: one user text, or a list of items.
#[derive(Debug)]
pub(crate) enum Input {
    Text(String),
    Items(Vec<InputItem>),
}

impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Input, D::Error> {
        Ok(
            match d.deserialize_any(TextOrList::new("a string or a list of input items"))? {
                TextOr::Text(text) => Input::Text(text),
                TextOr::List(items) => Input::Items(items),
            },
        )
    }
}

/// One input item, every type's fields side by side; `type` may be left out of a message.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct InputItem {
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    pub(crate) id: Option<String>,
    // message
    pub(crate) role: Option<String>,
    pub(crate) content: Option<Content>,
    // function_call, function_call_output
    pub(crate) call_id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) arguments: Option<String>,
    pub(crate) output: Option<Content>,
    // reasoning
    pub(crate) summary: Option<Vec<TextEntry>>,
    pub(crate) encrypted_content: Option<String>,
}

/// Message content (and function call output): a string or a list of parts.
#[derive(Debug)]
pub(crate) enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Content, D::Error> {
        Ok(
            match d.deserialize_any(TextOrList::new("a string or a list of content parts"))? {
                TextOr::Text(text) => Content::Text(text),
                TextOr::List(parts) => Content::Parts(parts),
            },
        )
    }
}

/// A string or a list, read with an error that says which two shapes a field takes (an
/// untagged enum would only say that no variant matched).
enum TextOr<T> {
    Text(String),
    List(Vec<T>),
}

struct TextOrList<T> {
    expecting: &'static str,
    list: PhantomData<T>,
}

impl<T> TextOrList<T> {
    fn new(expecting: &'static str) -> TextOrList<T> {
        TextOrList {
            expecting,
            list: PhantomData,
        }
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for TextOrList<T> {
    type Value = TextOr<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<TextOr<T>, E> {
        Ok(TextOr::Text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<TextOr<T>, E> {
        Ok(TextOr::Text(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<TextOr<T>, A::Error> {
        Vec::<T>::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(TextOr::List)
    }
}

/// One content part, every type's fields side by side.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ContentPart {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) text: Option<String>,
    pub(crate) refusal: Option<String>,
    pub(crate) image_url: Option<String>,
    pub(crate) file_id: Option<String>,
    pub(crate) file_data: Option<String>,
    pub(crate) file_url: Option<String>,
    pub(crate) filename: Option<String>,
}

/// A `{type, text}` entry of a reasoning item's summary.
#[derive(Debug, Default, Deserialize, Serialize, Clone, PartialEq)]
#[serde(default)]
pub(crate) struct TextEntry {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) text: String,
}

/// A tool: only `function` tools can be served; built-in tools are named in the refusal.
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
#[serde(default)]
pub(crate) struct Tool {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) parameters: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) strict: Option<bool>,
}

/// `tool_choice`: a mode or an object naming a tool.
#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(untagged)]
pub(crate) enum ToolChoice {
    Mode(String),
    Named {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
}

/// `text`: the output format (and `verbosity`, which is not forwarded).
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
#[serde(default)]
pub(crate) struct TextParam {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) format: Option<Format>,
}

/// `text.format`.
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
#[serde(default)]
pub(crate) struct Format {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) schema: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) strict: Option<bool>,
}

/// `reasoning`: effort and summary.
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
#[serde(default)]
pub(crate) struct ReasoningParam {
    pub(crate) effort: Option<String>,
    pub(crate) summary: Option<String>,
}

// ---- response --------------------------------------------------------------------------

/// One item of a response's `output`.
#[derive(Debug, Serialize, Clone)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum OutputItem {
    Message {
        id: String,
        status: &'static str,
        role: &'static str,
        content: Vec<OutputContent>,
    },
    FunctionCall {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        status: &'static str,
    },
    Reasoning {
        id: String,
        summary: Vec<TextEntry>,
        #[serde(skip_serializing_if = "Option::is_none")]
        encrypted_content: Option<String>,
    },
}

/// A content part of an output message.
#[derive(Debug, Serialize, Clone)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum OutputContent {
    OutputText {
        text: String,
        annotations: [(); 0],
        logprobs: [(); 0],
    },
    Refusal {
        refusal: String,
    },
}

impl OutputContent {
    /// An `output_text` part.
    pub(crate) fn text(text: String) -> OutputContent {
        OutputContent::OutputText {
            text,
            annotations: [],
            logprobs: [],
        }
    }
}

/// `usage`.
#[derive(Debug, Serialize, Clone, Copy)]
pub(crate) struct Usage {
    pub(crate) input_tokens: u64,
    pub(crate) input_tokens_details: InputDetails,
    pub(crate) output_tokens: u64,
    pub(crate) output_tokens_details: OutputDetails,
    pub(crate) total_tokens: u64,
}

/// `usage.input_tokens_details`.
#[derive(Debug, Serialize, Clone, Copy)]
pub(crate) struct InputDetails {
    pub(crate) cached_tokens: u64,
}

/// `usage.output_tokens_details`.
#[derive(Debug, Serialize, Clone, Copy)]
pub(crate) struct OutputDetails {
    pub(crate) reasoning_tokens: u64,
}

/// `incomplete_details`.
#[derive(Debug, Serialize, Clone)]
pub(crate) struct IncompleteDetails {
    pub(crate) reason: &'static str,
}

/// The `error` of a failed response.
#[derive(Debug, Serialize, Clone)]
pub(crate) struct ResponseError {
    pub(crate) code: String,
    pub(crate) message: String,
}

/// What a response object repeats from its request.
#[derive(Debug, Serialize, Clone, Default)]
pub(crate) struct Echo {
    pub(crate) instructions: Option<String>,
    pub(crate) max_output_tokens: Option<u32>,
    pub(crate) parallel_tool_calls: bool,
    pub(crate) reasoning: ReasoningParam,
    pub(crate) temperature: Option<f32>,
    pub(crate) text: TextParam,
    pub(crate) tool_choice: ToolChoice,
    pub(crate) tools: Vec<Tool>,
    pub(crate) top_p: Option<f32>,
    pub(crate) metadata: Value,
}

impl Default for ToolChoice {
    fn default() -> ToolChoice {
        ToolChoice::Mode("auto".to_owned())
    }
}

/// The response object: the JSON answer, and inside the stream's lifecycle events.
#[derive(Debug, Serialize)]
pub(crate) struct ResponseObject<'a> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created_at: u64,
    pub(crate) status: &'static str,
    pub(crate) error: Option<ResponseError>,
    pub(crate) incomplete_details: Option<IncompleteDetails>,
    pub(crate) model: &'a str,
    pub(crate) output: &'a [OutputItem],
    pub(crate) previous_response_id: Option<()>,
    pub(crate) store: bool,
    pub(crate) truncation: &'static str,
    pub(crate) usage: Option<Usage>,
    pub(crate) user: Option<()>,
    #[serde(flatten)]
    pub(crate) echo: &'a Echo,
}
