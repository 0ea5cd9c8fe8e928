//! The turns of a Messages request: user and assistant messages and their content blocks.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::{Map, Value};
use switchboard::types::{Media, Thinking, ToolResult};
use switchboard::{Message, Part, Role, ToolCall};

use super::{bad, object, string, type_name, At, Notes};
use crate::error::ApiError;
use crate::ingress::messages::signature;

/// The conversation's state while its turns are read.
#[derive(Default)]
pub(super) struct Turns {
    /// Tool call ids seen so far → tool name.
    calls: HashMap<String, String>,
    /// Anthropic must get the messages as sent.
    pub(super) raw: bool,
    /// (message, block) of reasoning other providers produced, left out of Anthropic's copy.
    pub(super) foreign: Vec<(usize, usize)>,
}

impl Turns {
    pub(super) fn message(
        &mut self,
        i: usize,
        message: &Value,
        out: &mut Vec<Message>,
        notes: &mut Notes,
    ) -> Result<(), ApiError> {
        let path = At::Message(i);
        let obj = object(message, path)?;
        let role = match obj.get("role") {
            Some(Value::String(r)) => r.as_str(),
            _ => {
                return Err(bad(
                    &format!("{path}.role"),
                    "is missing; each message needs \"role\": \"user\" or \"assistant\"",
                ))
            }
        };
        self.raw_keys(obj, &["role", "content"], path, notes);
        let role = match role {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                // A role the gateway does not know: Anthropic gets it as sent.
                notes.add(format!("{path} (role `{other}`)"));
                self.raw = true;
                return Ok(());
            }
        };
        let content = obj.get("content").ok_or_else(|| {
            bad(
                &format!("{path}.content"),
                "is missing; send a string or an array of content blocks",
            )
        })?;
        let mut parts = Vec::new();
        let mut results = Vec::new();
        match content {
            Value::String(text) => parts.push(Part::text(text.clone())),
            Value::Array(blocks) if blocks.is_empty() => {
                return Err(bad(
                    &format!("{path}.content"),
                    "is empty; send a string or at least one content block",
                ))
            }
            Value::Array(blocks) => {
                for (j, block) in blocks.iter().enumerate() {
                    match self.block(i, j, role, block, notes)? {
                        Some(part @ Part::ToolResult(_)) => results.push(part),
                        Some(part) => parts.push(part),
                        None => {}
                    }
                }
            }
            other => {
                return Err(bad(
                    &format!("{path}.content"),
                    format_args!(
                        "must be a string or an array of content blocks, not {}",
                        type_name(other)
                    ),
                ))
            }
        }
        // Tool results answer the previous turn, so they come first, in their own message.
        let answered = !results.is_empty();
        if answered {
            out.push(Message::new(Role::Tool, results));
        }
        if !parts.is_empty() {
            out.push(Message::new(role, parts));
        } else if !answered && role == Role::Assistant {
            // An assistant turn of blocks only Anthropic reads stays a turn for the others.
            out.push(Message::new(role, vec![Part::text("")]));
        }
        Ok(())
    }

    /// Notes keys outside `known`; Anthropic then gets the messages as sent.
    fn raw_keys(
        &mut self,
        obj: &Map<String, Value>,
        known: &[&str],
        path: At<'_>,
        notes: &mut Notes,
    ) -> bool {
        let extra = notes.extra_keys(obj, known, path);
        self.raw |= extra;
        extra
    }

    fn block(
        &mut self,
        i: usize,
        j: usize,
        role: Role,
        block: &Value,
        notes: &mut Notes,
    ) -> Result<Option<Part>, ApiError> {
        let path = At::Block(i, j);
        let obj = object(block, path)?;
        let kind = string(obj, "type", path)?;
        let part = match kind {
            "text" => {
                self.raw_keys(obj, &["type", "text"], path, notes);
                Part::text(string(obj, "text", path)?.to_owned())
            }
            "image" | "document" => {
                self.raw_keys(obj, &["type", "source"], path, notes);
                let source = obj.get("source").ok_or_else(|| {
                    bad(
                        &format!("{path}.source"),
                        "is missing; send {\"type\": \"base64\", \"media_type\": ..., \"data\": ...} or {\"type\": \"url\", \"url\": ...}",
                    )
                })?;
                match media_of(source, kind, At::Source(i, j))? {
                    Some(media) if kind == "image" => Part::Image(media),
                    Some(media) => Part::Document(media),
                    None => {
                        notes.add(format!("{path} ({kind} source)"));
                        self.raw = true;
                        return Ok(None);
                    }
                }
            }
            "tool_use" => {
                self.raw_keys(obj, &["type", "id", "name", "input"], path, notes);
                let id = string(obj, "id", path)?.to_owned();
                let name = string(obj, "name", path)?.to_owned();
                let input =
                    match obj.get("input") {
                        Some(v @ Value::Object(_)) => v.clone(),
                        None | Some(Value::Null) => return Err(bad(
                            &format!("{path}.input"),
                            "is missing; a tool_use block needs `input` (an object, {} for none)",
                        )),
                        Some(other) => {
                            return Err(bad(
                                &format!("{path}.input"),
                                format_args!("must be an object, not {}", type_name(other)),
                            ))
                        }
                    };
                self.calls.insert(id.clone(), name.clone());
                Part::ToolCall(ToolCall {
                    id,
                    name,
                    arguments: input,
                    signature: None,
                })
            }
            "tool_result" => {
                self.raw_keys(
                    obj,
                    &["type", "tool_use_id", "content", "is_error"],
                    path,
                    notes,
                );
                let id = string(obj, "tool_use_id", path)?;
                let Some(name) = self.calls.get(id).cloned() else {
                    return Err(bad(
                        &format!("{path}.tool_use_id"),
                        format_args!("is `{id}`, but no earlier assistant message has a tool_use block with that id; send the assistant turn that made the call before its result, or fix the id"),
                    ));
                };
                let is_error = match obj.get("is_error") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(other) => {
                        return Err(bad(
                            &format!("{path}.is_error"),
                            format_args!("must be true or false, not {}", type_name(other)),
                        ))
                    }
                };
                let content = self.result_text(obj.get("content"), i, j, notes)?;
                Part::ToolResult(ToolResult {
                    call_id: id.to_owned(),
                    name: Some(name),
                    content,
                    is_error,
                })
            }
            "thinking" | "redacted_thinking" => {
                if role != Role::Assistant {
                    return Err(bad(
                        &format!("{path}.type"),
                        format_args!("is `{kind}` in a user turn; reasoning blocks belong to assistant turns"),
                    ));
                }
                let (text, sent, field) = if kind == "thinking" {
                    self.raw_keys(obj, &["type", "thinking", "signature"], path, notes);
                    (
                        string(obj, "thinking", path)?.to_owned(),
                        string(obj, "signature", path)?,
                        "signature",
                    )
                } else {
                    self.raw_keys(obj, &["type", "data"], path, notes);
                    (String::new(), string(obj, "data", path)?, "data")
                };
                let (origin, original) = signature::unwrap(sent);
                if origin != signature::ANTHROPIC {
                    self.foreign.push((i, j));
                }
                let original = (!original.is_empty()).then(|| original.to_owned());
                let (signature, redacted) = if field == "data" {
                    (None, original)
                } else {
                    (original, None)
                };
                Part::Thinking(Thinking {
                    text,
                    signature,
                    redacted,
                    origin: Some(origin),
                })
            }
            other => {
                // Server tool calls and results, search results, container uploads, and
                // whatever comes next: Anthropic gets them as sent.
                notes.add(format!("{path} (`{other}` block)"));
                self.raw = true;
                return Ok(None);
            }
        };
        Ok(Some(part))
    }

    /// Reads a tool result's content: a string, or text (and image) blocks.
    fn result_text(
        &mut self,
        content: Option<&Value>,
        i: usize,
        j: usize,
        notes: &mut Notes,
    ) -> Result<String, ApiError> {
        let path = At::Block(i, j);
        match content {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Array(blocks)) => {
                let mut text = String::new();
                for (k, block) in blocks.iter().enumerate() {
                    let bpath = At::Nested(i, j, k);
                    let obj = object(block, bpath)?;
                    if string(obj, "type", bpath)? == "text" {
                        self.raw_keys(obj, &["type", "text"], bpath, notes);
                        text.push_str(string(obj, "text", bpath)?);
                    } else {
                        notes.add(format!("{bpath} ({} block)", string(obj, "type", bpath)?));
                        self.raw = true;
                    }
                }
                Ok(text)
            }
            Some(other) => Err(bad(
                &format!("{path}.content"),
                format_args!(
                    "must be a string or an array of blocks, not {}",
                    type_name(other)
                ),
            )),
        }
    }
}

/// Reads an image or document source; `None` for source kinds only Anthropic reads (files,
/// content blocks).
fn media_of(source: &Value, kind: &str, path: At<'_>) -> Result<Option<Media>, ApiError> {
    let obj = object(source, path)?;
    match string(obj, "type", path)? {
        "base64" => {
            let media_type = string(obj, "media_type", path)?;
            let data = string(obj, "data", path)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|e| {
                    bad(
                        &format!("{path}.data"),
                        format_args!(
                            "is not valid base64 ({e}); send the {kind} bytes base64-encoded"
                        ),
                    )
                })?;
            Ok(Some(Media::bytes(media_type.to_owned(), bytes)))
        }
        "url" => {
            let url = string(obj, "url", path)?;
            let default = if kind == "image" {
                "image/jpeg"
            } else {
                "application/pdf"
            };
            Ok(Some(Media::url(default.to_owned(), url.to_owned())))
        }
        "text" if kind == "document" => {
            let data = string(obj, "data", path)?;
            Ok(Some(Media::bytes(
                "text/plain".to_owned(),
                data.as_bytes().to_vec(),
            )))
        }
        _ => Ok(None),
    }
}
