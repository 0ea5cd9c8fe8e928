//! A [`ChatResponse`] → the Responses API's response object: output items, status, usage.
//!
//! Text becomes `message` items (a `refusal` part when the model refused), tool calls
//! `function_call` items whose `call_id` is the provider's call id, and thinking `reasoning`
//! items whose summary is the thinking text and whose `encrypted_content` seals what the
//! producing provider needs back ([`super::reasoning`]). A length stop is status
//! `incomplete` with reason `max_output_tokens`, a content filter stop `content_filter`.

use switchboard::types::Thinking;
use switchboard::{ChatResponse, FinishKind, Part};

use super::reasoning;
use super::wire::{
    Echo, IncompleteDetails, InputDetails, OutputContent, OutputDetails, OutputItem,
    ResponseObject, TextEntry, Usage,
};
use crate::convert::arguments_text;

/// A fresh id with OpenAI's prefix for its kind (`resp`, `msg`, `fc`, `rs`).
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{:032x}", fastrand::u128(..))
}

/// A reasoning item being built: its text, and the opaque data it will seal.
#[derive(Debug)]
pub(crate) struct Reasoning {
    pub(crate) id: String,
    thinking: Thinking,
}

impl Reasoning {
    /// Starts an empty item for reasoning produced by `origin`.
    pub(crate) fn new(origin: Option<String>) -> Reasoning {
        Reasoning {
            id: new_id("rs"),
            thinking: Thinking {
                text: String::new(),
                signature: None,
                redacted: None,
                origin,
            },
        }
    }

    /// The text so far.
    pub(crate) fn text(&self) -> &str {
        &self.thinking.text
    }

    /// Says whether more text belongs to this item (nothing sealed it yet).
    pub(crate) fn takes_text(&self) -> bool {
        self.thinking.signature.is_none() && self.thinking.redacted.is_none()
    }

    /// Adds text; the caller checked [`Reasoning::takes_text`].
    pub(crate) fn push_text(&mut self, text: &str) {
        self.thinking.text.push_str(text);
    }

    /// Adds the signature closing the text, or says it belongs to a new item.
    pub(crate) fn sign(&mut self, signature: String) -> Result<(), String> {
        if self.takes_text() {
            self.thinking.signature = Some(signature);
            Ok(())
        } else {
            Err(signature)
        }
    }

    /// Adds encrypted data, or says it belongs to a new item.
    pub(crate) fn redact(&mut self, data: String) -> Result<(), String> {
        if self.thinking.redacted.is_none() {
            self.thinking.redacted = Some(data);
            Ok(())
        } else {
            Err(data)
        }
    }

    /// The finished item.
    pub(crate) fn item(&self) -> OutputItem {
        OutputItem::Reasoning {
            id: self.id.clone(),
            summary: if self.thinking.text.is_empty() {
                Vec::new()
            } else {
                vec![summary_text(self.thinking.text.clone())]
            },
            encrypted_content: reasoning::seal(&self.thinking),
        }
    }
}

/// A `summary_text` entry.
pub(crate) fn summary_text(text: String) -> TextEntry {
    TextEntry {
        kind: "summary_text".to_owned(),
        text,
    }
}

/// Builds the output items of a whole answer.
pub(crate) fn output(r: &ChatResponse) -> Vec<OutputItem> {
    let refused = r.finish_reason.kind == FinishKind::Refusal;
    let mut items = Vec::with_capacity(r.parts.len());
    let mut open: Option<Reasoning> = None;
    let mut text: Option<String> = None;
    let close_text = |text: &mut Option<String>, items: &mut Vec<OutputItem>| {
        if let Some(t) = text.take() {
            items.push(message(t, refused));
        }
    };
    for part in &r.parts {
        match part {
            Part::Thinking(t) => {
                close_text(&mut text, &mut items);
                // The two halves of one streamed OpenAI reasoning item join again.
                let joins = open.as_ref().is_some_and(|o| {
                    o.thinking.origin == t.origin
                        && o.thinking.redacted.is_none()
                        && t.text.is_empty()
                        && t.signature.is_none()
                        && t.redacted.is_some()
                });
                if joins {
                    if let (Some(o), Some(data)) = (open.as_mut(), &t.redacted) {
                        o.thinking.redacted = Some(data.clone());
                    }
                    continue;
                }
                if let Some(o) = open.take() {
                    items.push(o.item());
                }
                let mut next = Reasoning::new(t.origin.clone());
                next.thinking = t.clone();
                open = Some(next);
            }
            Part::Text { text: piece } => {
                if let Some(o) = open.take() {
                    items.push(o.item());
                }
                text.get_or_insert_with(String::new).push_str(piece);
            }
            Part::ToolCall(call) => {
                if let Some(o) = open.take() {
                    items.push(o.item());
                }
                close_text(&mut text, &mut items);
                items.push(OutputItem::FunctionCall {
                    id: reasoning::call_item_id(call.signature.as_deref()),
                    call_id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: arguments_text(&call.arguments),
                    status: "completed",
                });
            }
            _ => {}
        }
    }
    if let Some(o) = open.take() {
        items.push(o.item());
    }
    close_text(&mut text, &mut items);
    items
}

/// A completed assistant message holding `text`.
pub(crate) fn message(text: String, refused: bool) -> OutputItem {
    OutputItem::Message {
        id: new_id("msg"),
        status: "completed",
        role: "assistant",
        content: vec![if refused {
            OutputContent::Refusal { refusal: text }
        } else {
            OutputContent::text(text)
        }],
    }
}

/// The status and incomplete reason a finish kind stands for.
pub(crate) fn status(kind: FinishKind) -> (&'static str, Option<IncompleteDetails>) {
    match kind {
        FinishKind::Length => (
            "incomplete",
            Some(IncompleteDetails {
                reason: "max_output_tokens",
            }),
        ),
        FinishKind::ContentFilter => (
            "incomplete",
            Some(IncompleteDetails {
                reason: "content_filter",
            }),
        ),
        _ => ("completed", None),
    }
}

/// Maps neutral usage to the Responses usage object.
pub(crate) fn usage(u: &switchboard::Usage) -> Usage {
    Usage {
        input_tokens: u.input_tokens,
        input_tokens_details: InputDetails {
            cached_tokens: u.cache_read_tokens.unwrap_or(0),
        },
        output_tokens: u.output_tokens,
        output_tokens_details: OutputDetails {
            reasoning_tokens: u.reasoning_tokens.unwrap_or(0),
        },
        total_tokens: u
            .total_tokens
            .max(u.input_tokens.saturating_add(u.output_tokens)),
    }
}

/// The response object of a whole answer, as JSON bytes.
pub(crate) fn to_wire(r: &ChatResponse, id: &str, created_at: u64, echo: &Echo) -> Vec<u8> {
    let output = output(r);
    let (status, incomplete_details) = status(r.finish_reason.kind);
    let object = ResponseObject {
        id,
        object: "response",
        created_at,
        status,
        error: None,
        incomplete_details,
        model: r.model_served(),
        output: &output,
        previous_response_id: None,
        store: false,
        truncation: "disabled",
        usage: Some(usage(&r.usage)),
        user: None,
        echo,
    };
    serde_json::to_vec(&object).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard::ToolCall;

    fn thinking(text: &str, sig: Option<&str>, red: Option<&str>) -> Part {
        Part::Thinking(Thinking {
            text: text.into(),
            signature: sig.map(Into::into),
            redacted: red.map(Into::into),
            origin: Some("openai-responses".into()),
        })
    }

    #[test]
    fn a_streamed_openai_reasoning_pair_is_one_item_then_text_then_a_call() {
        let r = ChatResponse::from_parts(vec![
            thinking("plan", Some("rs_1"), None),
            thinking("", None, Some("gAAA")),
            Part::text("Calling."),
            Part::ToolCall(ToolCall {
                id: "call_1".into(),
                name: "f".into(),
                arguments: serde_json::json!({"a": 1}),
                signature: None,
            }),
        ]);
        let items = serde_json::to_value(output(&r)).unwrap();
        assert_eq!(items.as_array().unwrap().len(), 3, "{items}");
        assert_eq!(items[0]["type"], "reasoning");
        assert_eq!(items[0]["summary"][0]["text"], "plan");
        let sealed = items[0]["encrypted_content"].as_str().unwrap();
        let back = reasoning::open("plan".into(), Some(sealed));
        assert_eq!(back[0].signature.as_deref(), Some("rs_1"));
        assert_eq!(back[1].redacted.as_deref(), Some("gAAA"));
        assert_eq!(items[1]["content"][0]["text"], "Calling.");
        assert_eq!(items[2]["call_id"], "call_1");
        assert_eq!(items[2]["arguments"], "{\"a\":1}");
    }
}
