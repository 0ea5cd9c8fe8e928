//! [`ChatResponse`] → a Messages API `message`, and errors, token counts and the model list
//! in Anthropic's shapes.

use std::borrow::Cow;

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};
use switchboard::{ChatResponse, FinishKind, FinishReason, Part, Usage};

use super::signature;
use crate::error::ApiError;

/// A `message` object.
#[derive(Debug, Serialize)]
pub(crate) struct MessageOut<'a> {
    pub(crate) id: &'a str,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) role: &'static str,
    pub(crate) model: &'a str,
    pub(crate) content: Vec<BlockOut<'a>>,
    pub(crate) stop_reason: Option<&'a str>,
    pub(crate) stop_sequence: Option<&'a str>,
    pub(crate) usage: UsageOut,
}

/// A content block of an answer.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum BlockOut<'a> {
    Text {
        text: &'a str,
    },
    Thinking {
        thinking: &'a str,
        signature: Cow<'a, str>,
    },
    RedactedThinking {
        data: Cow<'a, str>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Cow<'a, Value>,
    },
}

/// Token counts the Anthropic way: `input_tokens` excludes cache reads and writes.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub(crate) struct UsageOut {
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) cache_creation_input_tokens: u64,
    pub(crate) cache_read_input_tokens: u64,
}

impl UsageOut {
    /// Splits the neutral usage (whose input includes cache reads and writes) back apart.
    pub(crate) fn of(u: &Usage) -> UsageOut {
        let read = u.cache_read_tokens.unwrap_or(0);
        let write = u.cache_write_tokens.unwrap_or(0);
        UsageOut {
            input_tokens: u.input_tokens.saturating_sub(read).saturating_sub(write),
            output_tokens: u.output_tokens,
            cache_creation_input_tokens: write,
            cache_read_input_tokens: read,
        }
    }
}

/// The stop reasons Anthropic itself sends, passed through when the provider said one.
const STOP_WORDS: [&str; 7] = [
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
];

/// Maps a finish reason to `stop_reason`, keeping an Anthropic provider's own word.
pub(crate) fn stop_reason(reason: &FinishReason) -> &'static str {
    if let Some(word) = reason
        .raw
        .as_deref()
        .and_then(|raw| STOP_WORDS.iter().find(|w| **w == raw))
    {
        return word;
    }
    match reason.kind {
        FinishKind::Length => "max_tokens",
        FinishKind::ToolCalls => "tool_use",
        FinishKind::Refusal | FinishKind::ContentFilter => "refusal",
        _ => "end_turn",
    }
}

/// Turns tool-call arguments into the object `input` must be.
pub(crate) fn tool_input(arguments: &Value) -> Cow<'_, Value> {
    match arguments {
        Value::Object(_) => Cow::Borrowed(arguments),
        Value::Null => Cow::Owned(Value::Object(Map::new())),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(parsed @ Value::Object(_)) => Cow::Owned(parsed),
            _ => Cow::Owned(serde_json::json!({ "value": arguments })),
        },
        other => Cow::Owned(serde_json::json!({ "value": other })),
    }
}

/// Maps the answer's parts to content blocks; reasoning gets the signature a Messages
/// client can send back (see [`signature`]).
pub(crate) fn blocks(r: &ChatResponse) -> Vec<BlockOut<'_>> {
    let mut out = Vec::with_capacity(r.parts.len());
    for part in &r.parts {
        match part {
            Part::Text { text } if text.is_empty() => {}
            Part::Text { text } => out.push(BlockOut::Text { text }),
            Part::Thinking(t) => {
                let origin = t.origin.as_deref().or(Some(r.provider.as_str()));
                if let Some(data) = &t.redacted {
                    out.push(BlockOut::RedactedThinking {
                        data: wrap(origin, data),
                    });
                } else {
                    out.push(BlockOut::Thinking {
                        thinking: &t.text,
                        signature: wrap(origin, t.signature.as_deref().unwrap_or("")),
                    });
                }
            }
            Part::ToolCall(call) => out.push(BlockOut::ToolUse {
                id: &call.id,
                name: &call.name,
                input: tool_input(&call.arguments),
            }),
            _ => {}
        }
    }
    out
}

fn wrap<'a>(origin: Option<&str>, sent: &'a str) -> Cow<'a, str> {
    if origin == Some(signature::ANTHROPIC) {
        Cow::Borrowed(sent)
    } else {
        Cow::Owned(signature::wrap(origin, sent))
    }
}

/// Builds the `message` for a whole answer.
pub(crate) fn message<'a>(r: &'a ChatResponse, id: &'a str) -> MessageOut<'a> {
    MessageOut {
        id,
        kind: "message",
        role: "assistant",
        model: r.model_served(),
        content: blocks(r),
        stop_reason: Some(stop_reason(&r.finish_reason)),
        stop_sequence: None,
        usage: UsageOut::of(&r.usage),
    }
}

/// Anthropic's status and error type for a gateway error: overloads and outages are 529
/// `overloaded_error`, as Anthropic answers them.
pub(crate) fn error_kind(e: &ApiError) -> (StatusCode, &'static str) {
    match e.status.as_u16() {
        400 => (e.status, "invalid_request_error"),
        401 => (e.status, "authentication_error"),
        403 => (e.status, "permission_error"),
        404 => (e.status, "not_found_error"),
        413 => (e.status, "request_too_large"),
        429 => (e.status, "rate_limit_error"),
        503 | 529 => (
            StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "overloaded_error",
        ),
        504 => (e.status, "timeout_error"),
        _ => (e.status, "api_error"),
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'a str,
}

/// The error JSON: `{"type": "error", "error": {"type", "message"}}`.
pub(crate) fn error_json(e: &ApiError) -> Vec<u8> {
    let (_, kind) = error_kind(e);
    serde_json::to_vec(&ErrorBody {
        kind: "error",
        error: ErrorDetail {
            kind,
            message: e.message(),
        },
    })
    .unwrap_or_default()
}

#[derive(Serialize)]
struct ModelList<'a> {
    data: Vec<ModelEntry<'a>>,
    has_more: bool,
    first_id: Option<&'a str>,
    last_id: Option<&'a str>,
}

#[derive(Serialize)]
struct ModelEntry<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    display_name: &'a str,
    created_at: &'static str,
}

/// The aliases as Anthropic's model list (one page).
pub(crate) fn model_list(aliases: &[String]) -> Value {
    let list = ModelList {
        data: aliases
            .iter()
            .map(|alias| ModelEntry {
                kind: "model",
                id: alias,
                display_name: alias,
                created_at: "1970-01-01T00:00:00Z",
            })
            .collect(),
        has_more: false,
        first_id: aliases.first().map(String::as_str),
        last_id: aliases.last().map(String::as_str),
    };
    serde_json::to_value(&list).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard::types::Thinking;
    use switchboard::ToolCall;

    #[test]
    fn usage_splits_cache_tokens_back_out_of_input() {
        let mut u = Usage::new(4621, 187);
        u.cache_read_tokens = Some(3120);
        u.cache_write_tokens = Some(1480);
        let out = UsageOut::of(&u);
        assert_eq!(
            (
                out.input_tokens,
                out.cache_read_input_tokens,
                out.cache_creation_input_tokens
            ),
            (21, 3120, 1480)
        );
    }

    #[test]
    fn reasoning_from_other_providers_gets_a_wrapped_signature() {
        let mut r = ChatResponse::from_parts(vec![
            Part::Thinking(Thinking {
                text: "hmm".into(),
                signature: Some("sig".into()),
                redacted: None,
                origin: Some("gemini".into()),
            }),
            Part::ToolCall(ToolCall {
                id: "call_1".into(),
                name: "f".into(),
                arguments: Value::String("{\"a\":1}".into()),
                signature: None,
            }),
        ]);
        r.provider = "gemini".into();
        let json = serde_json::to_value(message(&r, "msg_1")).unwrap();
        assert_eq!(json["content"][0]["signature"], "sbgw1:gemini:sig");
        assert_eq!(json["content"][1]["input"], serde_json::json!({"a": 1}));
        assert_eq!(json["stop_reason"], "tool_use");
    }

    #[test]
    fn outages_are_overloaded_529s() {
        let e = ApiError::shut_down();
        assert_eq!(error_kind(&e).0.as_u16(), 529);
        let body: Value = serde_json::from_slice(&error_json(&e)).unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "overloaded_error");
    }
}
