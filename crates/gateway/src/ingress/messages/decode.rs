//! A Messages API request body → [`ChatRequest`], plus a [`Passthrough`] for Anthropic
//! targets.
//!
//! What the neutral request models is mapped: system (string or text blocks), user and
//! assistant turns with text, image, document, tool_use, tool_result, thinking and
//! redacted_thinking blocks, custom tools and tool_choice, max_tokens, stop_sequences,
//! temperature, top_p and the thinking config (as a reasoning effort). Everything else —
//! `cache_control` and other block fields, block types and message roles the gateway does
//! not know, server tools, `top_k`, `metadata`, new top-level settings — is kept in the
//! passthrough: an Anthropic target receives the original JSON of that field, and a
//! target of another protocol gets the neutral mapping, with what it loses named in
//! [`Passthrough::unmodelled`] for the attempt record. A current client is never refused
//! for sending something new.
//!
//! Refused with a 400 naming the field and the fix: a missing `model`, `max_tokens` or
//! `messages`; a block without its required fields; a `tool_result` whose `tool_use_id`
//! no earlier `tool_use` block made; values of the wrong type.

use axum::http::HeaderMap;
use serde_json::{Map, Value};
use switchboard::types::{Passthrough, ReasoningEffort};
use switchboard::{ChatRequest, Message, ToolChoice, ToolSpec};

use super::signature;
use crate::error::ApiError;
use turns::Turns;

mod turns;

/// The most notes kept about what other protocols lose; the rest are counted.
const MAX_NOTES: usize = 16;

/// Which endpoint the body came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `POST /v1/messages`: `max_tokens` is required.
    Create,
    /// `POST /v1/messages/count_tokens`: no `max_tokens`.
    CountTokens,
}

/// A decoded request.
#[derive(Debug)]
pub(crate) struct Decoded {
    /// The alias (or `provider:model`) asked for.
    pub(crate) model: String,
    /// Whether the client asked for a stream.
    pub(crate) stream: bool,
    /// The neutral request, with its passthrough for Anthropic targets.
    pub(crate) req: ChatRequest,
}

/// Where a value sits in the body; written out only for an error or a note, so a request
/// that is fine builds no path strings.
#[derive(Clone, Copy, Debug)]
pub(super) enum At<'a> {
    /// A top-level field.
    Field(&'a str),
    /// An item of a top-level array (`system[i]`, `tools[i]`).
    Item(&'a str, usize),
    /// `messages[i]`.
    Message(usize),
    /// `messages[i].content[j]`.
    Block(usize, usize),
    /// `messages[i].content[j].source`.
    Source(usize, usize),
    /// `messages[i].content[j].content[k]`.
    Nested(usize, usize, usize),
}

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Field(name) => write!(f, "{name}"),
            At::Item(name, i) => write!(f, "{name}[{i}]"),
            At::Message(i) => write!(f, "messages[{i}]"),
            At::Block(i, j) => write!(f, "messages[{i}].content[{j}]"),
            At::Source(i, j) => write!(f, "messages[{i}].content[{j}].source"),
            At::Nested(i, j, k) => write!(f, "messages[{i}].content[{j}].content[{k}]"),
        }
    }
}

pub(super) fn bad(param: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!("`{param}` {message}"), Some(param))
}

pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn string<'v>(
    obj: &'v Map<String, Value>,
    key: &str,
    path: At<'_>,
) -> Result<&'v str, ApiError> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(bad(
            &format!("{path}.{key}"),
            format_args!("is missing; this block needs `{key}` (a string)"),
        )),
        Some(other) => Err(bad(
            &format!("{path}.{key}"),
            format_args!("must be a string, not {}", type_name(other)),
        )),
    }
}

pub(super) fn object<'v>(
    value: &'v Value,
    path: At<'_>,
) -> Result<&'v Map<String, Value>, ApiError> {
    value.as_object().ok_or_else(|| {
        bad(
            &path.to_string(),
            format_args!("must be an object, not {}", type_name(value)),
        )
    })
}

/// What decoding collects besides the neutral request.
#[derive(Default)]
pub(super) struct Notes {
    /// Names of what the neutral mapping loses.
    lost: Vec<String>,
    more: usize,
}

impl Notes {
    pub(super) fn add(&mut self, what: String) {
        if self.lost.len() < MAX_NOTES {
            self.lost.push(what);
        } else {
            self.more += 1;
        }
    }

    /// Notes each key of `obj` outside `known`, as `path.key`; says whether there was one.
    pub(super) fn extra_keys(
        &mut self,
        obj: &Map<String, Value>,
        known: &[&str],
        path: At<'_>,
    ) -> bool {
        let mut any = false;
        for key in obj.keys().filter(|k| !known.contains(&k.as_str())) {
            self.add(format!("{path}.{key}"));
            any = true;
        }
        any
    }

    fn finish(mut self) -> Vec<String> {
        if self.more > 0 {
            self.lost.push(format!("{} more", self.more));
        }
        self.lost
    }
}

/// Decodes a Messages body; `headers` supply `anthropic-version` and `anthropic-beta`.
///
/// # Errors
/// A 400 [`ApiError`] naming the field at fault and the fix.
pub(crate) fn decode(
    bytes: &[u8],
    headers: &HeaderMap,
    endpoint: Endpoint,
) -> Result<Decoded, ApiError> {
    let mut body: Map<String, Value> = crate::routes::parse(bytes)?;
    let mut notes = Notes::default();
    let mut passthrough = Passthrough::new(signature::ANTHROPIC);

    let model = match body.remove("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => m,
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(bad(
                "model",
                "is missing; name one of the gateway's aliases, e.g. \"model\": \"claude\"",
            ))
        }
        Some(other) => {
            return Err(bad(
                "model",
                format_args!("must be a string, not {}", type_name(&other)),
            ))
        }
    };
    let max_tokens = match (body.remove("max_tokens"), endpoint) {
        (Some(Value::Number(n)), _) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n > 0 => Some(n),
            _ => {
                return Err(bad(
                    "max_tokens",
                    format_args!("is {n}; send a positive whole number of tokens"),
                ))
            }
        },
        (None | Some(Value::Null), Endpoint::Create) => {
            return Err(bad(
                "max_tokens",
                "is missing; the Messages API requires it: send the most tokens the answer may use, e.g. \"max_tokens\": 1024",
            ))
        }
        (None | Some(Value::Null), Endpoint::CountTokens) => None,
        (Some(other), _) => {
            return Err(bad(
                "max_tokens",
                format_args!("must be a number, not {}", type_name(&other)),
            ))
        }
    };
    let stream = match body.remove("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(other) => {
            return Err(bad(
                "stream",
                format_args!("must be true or false, not {}", type_name(&other)),
            ))
        }
    };

    let mut messages = Vec::new();
    if let Some(system) = body.remove("system") {
        if system_of(&system, &mut messages, &mut notes)? {
            passthrough.fields.insert("system".to_owned(), system);
        }
    }
    let Some(wire_messages) = body.remove("messages") else {
        return Err(bad(
            "messages",
            "is missing; send the conversation, e.g. \"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}]",
        ));
    };
    let Value::Array(mut wire_messages) = wire_messages else {
        return Err(bad(
            "messages",
            format_args!("must be an array, not {}", type_name(&wire_messages)),
        ));
    };
    if wire_messages.is_empty() {
        return Err(bad("messages", "is empty; send at least one user message"));
    }
    let mut turns = Turns::default();
    for (i, message) in wire_messages.iter().enumerate() {
        turns.message(i, message, &mut messages, &mut notes)?;
    }
    if turns.raw {
        // Anthropic receives the conversation as the client sent it, without reasoning
        // other providers produced (their signatures would be refused).
        for (i, j) in turns.foreign.iter().rev() {
            if let Some(Value::Array(blocks)) =
                wire_messages.get_mut(*i).and_then(|m| m.get_mut("content"))
            {
                if *j < blocks.len() {
                    blocks.remove(*j);
                }
            }
        }
        passthrough
            .fields
            .insert("messages".to_owned(), Value::Array(wire_messages));
    }

    let mut req = ChatRequest::new(messages);
    req.max_tokens = max_tokens;
    req.temperature = number(&mut body, "temperature")?;
    req.top_p = number(&mut body, "top_p")?;
    if let Some(stop) = body.remove("stop_sequences") {
        req.stop = strings(&stop, "stop_sequences")?;
    }
    let mut server_tools = Vec::new();
    if let Some(tools) = body.remove("tools") {
        let (specs, raw) = tools_of(&tools, &mut notes, &mut server_tools)?;
        req.tools = specs;
        if raw {
            passthrough.fields.insert("tools".to_owned(), tools);
        }
    }
    if let Some(choice) = body.remove("tool_choice") {
        let (mut neutral, mut raw) = tool_choice_of(&choice, &mut notes)?;
        if let Some(ToolChoice::Tool(name)) = &neutral {
            if server_tools.contains(name) {
                // Forcing a server tool: only Anthropic runs it; other targets choose freely.
                notes.add(format!("tool_choice (server tool `{name}`)"));
                neutral = None;
                raw = true;
            } else if !req.tools.iter().any(|t| &t.name == name) {
                return Err(bad(
                    "tool_choice.name",
                    format_args!("names `{name}`, which is not among `tools`; declare the tool or choose one that is"),
                ));
            }
        }
        req.tool_choice = neutral;
        if raw {
            passthrough.fields.insert("tool_choice".to_owned(), choice);
        }
    }
    if let Some(thinking) = body.remove("thinking") {
        req.reasoning_effort = effort_of(&thinking, &mut notes)?;
        passthrough.fields.insert("thinking".to_owned(), thinking);
        // Anthropic gets the client's own budget and limit: the library would raise a
        // `max_tokens` not above the effort's budget, which interleaved thinking allows.
        if let Some(n) = max_tokens {
            passthrough
                .fields
                .insert("max_tokens".to_owned(), Value::from(n));
        }
    }
    // `metadata.user_id` names a conversation for prompt-cache affinity; the field itself
    // stays with the rest for Anthropic targets.
    if let Some(Value::String(user)) = body.get("metadata").and_then(|m| m.get("user_id")) {
        req.routing.metadata_user_id = Some(user.clone());
    }
    // Whatever is left is not modelled: Anthropic targets get it as sent.
    for (key, value) in body {
        notes.add(key.clone());
        passthrough.fields.insert(key, value);
    }
    for name in ["anthropic-version", "anthropic-beta"] {
        if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
            if name == "anthropic-beta" {
                notes.add(format!("{name} header"));
            }
            passthrough
                .headers
                .push((name.to_owned(), value.to_owned()));
        }
    }
    passthrough.unmodelled = notes.finish();
    if !passthrough.is_empty() || !passthrough.unmodelled.is_empty() {
        req.passthrough = Some(passthrough);
    }
    req.validate()
        .map_err(|e| ApiError::invalid(e.to_string(), Some("messages")))?;
    Ok(Decoded { model, stream, req })
}

fn number(body: &mut Map<String, Value>, key: &str) -> Result<Option<f32>, ApiError> {
    match body.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64().map(|f| f as f32)),
        Some(other) => Err(bad(
            key,
            format_args!("must be a number, not {}", type_name(&other)),
        )),
    }
}

fn strings(value: &Value, path: &str) -> Result<Vec<String>, ApiError> {
    let Value::Array(items) = value else {
        return Err(bad(
            path,
            format_args!("must be an array of strings, not {}", type_name(value)),
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(bad(
                &format!("{path}[{i}]"),
                format_args!("must be a string, not {}", type_name(other)),
            )),
        })
        .collect()
}

/// Maps `system`; says whether Anthropic must get it as sent (it carries more than text).
fn system_of(
    system: &Value,
    messages: &mut Vec<Message>,
    notes: &mut Notes,
) -> Result<bool, ApiError> {
    match system {
        Value::String(text) => {
            if !text.is_empty() {
                messages.push(Message::system(text.clone()));
            }
            Ok(false)
        }
        Value::Array(blocks) => {
            let mut raw = false;
            for (i, block) in blocks.iter().enumerate() {
                let path = At::Item("system", i);
                let obj = object(block, path)?;
                let kind = string(obj, "type", path)?;
                if kind != "text" {
                    return Err(bad(
                        &format!("{path}.type"),
                        format_args!("is `{kind}`; system blocks are text blocks: {{\"type\": \"text\", \"text\": \"...\"}}"),
                    ));
                }
                let text = string(obj, "text", path)?;
                raw |= notes.extra_keys(obj, &["type", "text"], path);
                messages.push(Message::system(text.to_owned()));
            }
            Ok(raw)
        }
        Value::Null => Ok(false),
        other => Err(bad(
            "system",
            format_args!(
                "must be a string or an array of text blocks, not {}",
                type_name(other)
            ),
        )),
    }
}

/// Maps `tools`; custom tools become tool specs, server tools' names go to `server`. Says
/// whether Anthropic must get the list as sent (server tools, `cache_control`, other fields).
fn tools_of(
    tools: &Value,
    notes: &mut Notes,
    server: &mut Vec<String>,
) -> Result<(Vec<ToolSpec>, bool), ApiError> {
    let Value::Array(items) = tools else {
        return Err(bad(
            "tools",
            format_args!("must be an array of tools, not {}", type_name(tools)),
        ));
    };
    let mut specs = Vec::with_capacity(items.len());
    let mut raw = false;
    for (i, tool) in items.iter().enumerate() {
        let path = At::Item("tools", i);
        let obj = object(tool, path)?;
        let name = string(obj, "name", path)?;
        match obj.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            Some(kind) => {
                // A server tool (web search, code execution, …): only Anthropic runs it.
                notes.add(format!("{path} (`{kind}` tool)"));
                server.push(name.to_owned());
                raw = true;
                continue;
            }
        }
        let parameters = match obj.get("input_schema") {
            Some(schema @ Value::Object(_)) => schema.clone(),
            None | Some(Value::Null) => {
                return Err(bad(
                    &format!("{path}.input_schema"),
                    "is missing; a tool needs a JSON Schema for its input, e.g. {\"type\": \"object\", \"properties\": {}}",
                ))
            }
            Some(other) => {
                return Err(bad(
                    &format!("{path}.input_schema"),
                    format_args!("must be an object, not {}", type_name(other)),
                ))
            }
        };
        let description = match obj.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(d)) => Some(d.clone()),
            Some(other) => {
                return Err(bad(
                    &format!("{path}.description"),
                    format_args!("must be a string, not {}", type_name(other)),
                ))
            }
        };
        raw |= notes.extra_keys(obj, &["type", "name", "description", "input_schema"], path);
        specs.push(ToolSpec {
            name: name.to_owned(),
            description,
            parameters,
            strict: None,
        });
    }
    Ok((specs, raw))
}

/// Maps `tool_choice`; says whether Anthropic must get it as sent.
fn tool_choice_of(
    choice: &Value,
    notes: &mut Notes,
) -> Result<(Option<ToolChoice>, bool), ApiError> {
    let obj = object(choice, At::Field("tool_choice"))?;
    let kind = string(obj, "type", At::Field("tool_choice"))?;
    let neutral = match kind {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => ToolChoice::Tool(string(obj, "name", At::Field("tool_choice"))?.to_owned()),
        other => {
            return Err(bad(
                "tool_choice.type",
                format_args!("is `{other}`; use auto, any, tool (with a name) or none"),
            ))
        }
    };
    let raw = notes.extra_keys(obj, &["type", "name"], At::Field("tool_choice"));
    Ok((Some(neutral), raw))
}

/// Maps the thinking config to an effort whose budget is not above the one asked for, so
/// a valid request (budget below `max_tokens`) stays valid for every target.
fn effort_of(thinking: &Value, notes: &mut Notes) -> Result<Option<ReasoningEffort>, ApiError> {
    let obj = object(thinking, At::Field("thinking"))?;
    match string(obj, "type", At::Field("thinking"))? {
        "disabled" => Ok(None),
        "enabled" => {
            let budget = match obj.get("budget_tokens") {
                Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
                    bad("thinking.budget_tokens", format_args!("is {n}; send a whole number of tokens, at least 1024"))
                })?,
                _ => {
                    return Err(bad(
                        "thinking.budget_tokens",
                        "is missing; extended thinking needs a token budget, e.g. {\"type\": \"enabled\", \"budget_tokens\": 2048}",
                    ))
                }
            };
            let effort = [
                ReasoningEffort::High,
                ReasoningEffort::Medium,
                ReasoningEffort::Low,
            ]
            .into_iter()
            .find(|e| u64::from(e.budget_tokens()) <= budget)
            .unwrap_or(ReasoningEffort::Minimal);
            Ok(Some(effort))
        }
        other => {
            // A thinking mode added later: Anthropic gets it as sent; others think at their
            // usual effort.
            notes.add(format!("thinking (type `{other}`)"));
            Ok(Some(ReasoningEffort::Medium))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchboard::types::Thinking;
    use switchboard::Part;

    fn decode_json(body: Value) -> Result<Decoded, ApiError> {
        decode(
            &serde_json::to_vec(&body).unwrap(),
            &HeaderMap::new(),
            Endpoint::Create,
        )
    }

    fn param(err: &ApiError) -> &str {
        err.param().unwrap_or("")
    }

    #[test]
    fn metadata_user_id_names_the_conversation_and_still_reaches_anthropic() {
        let d = decode_json(json!({
            "model": "claude", "max_tokens": 100, "metadata": {"user_id": "conv-42"},
            "messages": [{"role": "user", "content": "hi"}]
        }))
        .unwrap();
        assert_eq!(d.req.routing.metadata_user_id.as_deref(), Some("conv-42"));
        let p = d.req.passthrough.as_ref().unwrap();
        assert_eq!(p.fields["metadata"], json!({"user_id": "conv-42"}));
    }

    #[test]
    fn a_plain_request_maps_without_passthrough() {
        let d = decode_json(json!({
            "model": "claude", "max_tokens": 100, "system": "Be brief.",
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.5, "stop_sequences": ["END"]
        }))
        .unwrap();
        assert_eq!(d.model, "claude");
        assert_eq!(d.req.max_tokens, Some(100));
        assert_eq!(d.req.messages.len(), 2);
        assert_eq!(d.req.stop, vec!["END".to_owned()]);
        assert!(d.req.passthrough.is_none());
    }

    #[test]
    fn missing_max_tokens_names_the_field_and_the_fix() {
        let err =
            decode_json(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}))
                .unwrap_err();
        assert_eq!(param(&err), "max_tokens");
        assert!(err.message().contains("e.g."), "{}", err.message());
    }

    #[test]
    fn a_block_missing_its_fields_is_named_by_path() {
        let err = decode_json(json!({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": [{"type": "tool_use", "name": "f", "input": {}}]}
        ]}))
        .unwrap_err();
        assert_eq!(param(&err), "messages[1].content[0].id");
    }

    #[test]
    fn empty_content_and_bad_sources_are_named() {
        let err = decode_json(json!({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": []}
        ]}))
        .unwrap_err();
        assert_eq!(param(&err), "messages[0].content");
        let err = decode_json(json!({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "aGk="}}]}
        ]}))
        .unwrap_err();
        assert_eq!(param(&err), "messages[0].content[0].source.media_type");
        let err = decode_json(json!({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "%%%"}}]}
        ]}))
        .unwrap_err();
        assert_eq!(param(&err), "messages[0].content[0].source.data");
    }

    #[test]
    fn a_tool_result_without_its_tool_use_is_refused() {
        let err = decode_json(json!({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}]}
        ]}))
        .unwrap_err();
        assert_eq!(param(&err), "messages[0].content[0].tool_use_id");
        assert!(err.message().contains("toolu_9"));
    }

    #[test]
    fn unmodelled_fields_pass_through_for_anthropic_and_are_named_for_others() {
        let mut headers = HeaderMap::new();
        headers.insert("anthropic-version", "2023-06-01".parse().unwrap());
        headers.insert(
            "anthropic-beta",
            "context-management-2025-06-27".parse().unwrap(),
        );
        let body = json!({
            "model": "m", "max_tokens": 50, "top_k": 5,
            "context_management": {"edits": []},
            "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}},
                {"type": "search_result", "source": "s", "title": "t", "content": []}
            ]}]
        });
        let d = decode(
            &serde_json::to_vec(&body).unwrap(),
            &headers,
            Endpoint::Create,
        )
        .unwrap();
        let p = d.req.passthrough.as_ref().unwrap();
        for key in ["top_k", "context_management", "system", "messages"] {
            assert!(p.fields.contains_key(key), "{key} not passed: {p:?}");
        }
        assert_eq!(p.fields["messages"], body["messages"]);
        assert_eq!(p.headers.len(), 2);
        let dropped = d.req.dropped_for("openai");
        for note in [
            "top_k",
            "system[0].cache_control",
            "messages[0].content[0].cache_control",
            "messages[0].content[1] (`search_result` block)",
        ] {
            assert!(
                dropped.iter().any(|d| d == note),
                "{note} not in {dropped:?}"
            );
        }
        assert!(d.req.dropped_for("anthropic").is_empty());
        // The neutral request keeps the text for every target.
        assert_eq!(d.req.messages[1].text(), "hi");
    }

    #[test]
    fn foreign_reasoning_keeps_its_origin_and_leaves_anthropics_copy() {
        let d = decode_json(json!({"model": "m", "max_tokens": 50, "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sbgw1:gemini:c2ln"},
                {"type": "thinking", "thinking": "ok", "signature": "EqQBsig=="},
                {"type": "text", "text": "a", "citations": []}
            ]},
            {"role": "user", "content": "again"}
        ]}))
        .unwrap();
        let thinking: Vec<&Thinking> = d.req.messages[1]
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Thinking(t) => Some(t),
                _ => None,
            })
            .collect();
        assert_eq!(thinking[0].origin.as_deref(), Some("gemini"));
        assert_eq!(thinking[0].signature.as_deref(), Some("c2ln"));
        assert_eq!(thinking[1].origin.as_deref(), Some("anthropic"));
        assert_eq!(thinking[1].signature.as_deref(), Some("EqQBsig=="));
        let raw = &d.req.passthrough.as_ref().unwrap().fields["messages"];
        let blocks = raw[1]["content"].as_array().unwrap();
        assert_eq!(blocks.len(), 2, "{raw}");
        assert_eq!(blocks[0]["signature"], "EqQBsig==");
        assert!(d
            .req
            .dropped_for("anthropic")
            .contains(&"thinking from gemini".to_owned()));
    }

    #[test]
    fn forcing_a_server_tool_passes_to_anthropic_and_frees_the_others() {
        let d = decode_json(json!({"model": "m", "max_tokens": 50,
            "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            "tool_choice": {"type": "tool", "name": "web_search"},
            "messages": [{"role": "user", "content": "news?"}]}))
        .unwrap();
        assert_eq!(d.req.tool_choice, None);
        assert!(d.req.tools.is_empty());
        let p = d.req.passthrough.as_ref().unwrap();
        assert_eq!(p.fields["tool_choice"]["name"], "web_search");
        assert!(p
            .unmodelled
            .iter()
            .any(|n| n.contains("server tool `web_search`")));
        let err = decode_json(json!({"model": "m", "max_tokens": 50,
            "tool_choice": {"type": "tool", "name": "nope"},
            "messages": [{"role": "user", "content": "x"}]}))
        .unwrap_err();
        assert_eq!(param(&err), "tool_choice.name");
    }

    #[test]
    fn thinking_budget_maps_to_an_effort_within_it() {
        let d = decode_json(json!({"model": "m", "max_tokens": 4000,
            "thinking": {"type": "enabled", "budget_tokens": 3000},
            "messages": [{"role": "user", "content": "x"}]}))
        .unwrap();
        assert_eq!(d.req.reasoning_effort, Some(ReasoningEffort::Low));
        let p = d.req.passthrough.as_ref().unwrap();
        assert_eq!(p.fields["thinking"]["budget_tokens"], 3000);
        assert_eq!(p.fields["max_tokens"], 4000);
        assert!(p.unmodelled.is_empty());
    }
}
