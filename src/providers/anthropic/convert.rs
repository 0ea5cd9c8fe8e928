//! [`ChatRequest`] → Messages API body ([`to_wire`]); reply → [`ChatResponse`] ([`from_wire`]).

use serde_json::{Map, Value};

use super::wire::{
    MessagesRequest, MessagesResponse, RequestBlock, ResponseBlock, Source, SystemBlock,
    ThinkingConfig, WireMessage, WireTool, WireToolChoice, WireUsage,
};
use crate::error::{Error, Result};
use crate::types::{
    ChatRequest, ChatResponse, FinishKind, FinishReason, Media, MediaSource, Part, ResponseFormat,
    Role, Thinking, ToolCall, ToolChoice, Usage,
};

/// The protocol name that marks reasoning this protocol may receive back.
pub(crate) const ORIGIN: &str = "anthropic";

/// The system instruction added for [`ResponseFormat::Json`], which Anthropic has no switch for.
const JSON_INSTRUCTION: &str =
    "Answer with a single JSON object only, with no text, code fences or commentary before or after it.";

/// What the client knows that the request does not.
#[derive(Debug)]
pub(crate) struct WireOptions<'a> {
    pub(crate) model: &'a str,
    pub(crate) default_max_tokens: u32,
    pub(crate) stream: bool,
}

/// A serialised body plus what the reply's conversion needs to know about it.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) body: Vec<u8>,
    /// The name of the tool forced for [`ResponseFormat::JsonSchema`]; its input is the answer.
    pub(crate) json_tool: Option<String>,
}

/// Builds the request body.
///
/// # Errors
/// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) for audio input, document
/// types Anthropic does not read, and reasoning combined with sampling settings or forced
/// tool use, which Anthropic's extended thinking does not allow.
pub(crate) fn to_wire(req: &ChatRequest, opts: &WireOptions<'_>) -> Result<Prepared> {
    let mut system: Vec<SystemBlock> = Vec::new();
    let mut messages: Vec<WireMessage> = Vec::new();
    for message in &req.messages {
        if message.role == Role::System {
            let text = message.text();
            if !text.is_empty() {
                system.push(SystemBlock::text(text));
            }
            continue;
        }
        // Tool results travel in user turns.
        let role = if message.role == Role::Assistant {
            "assistant"
        } else {
            "user"
        };
        let mut content = Vec::with_capacity(message.parts.len());
        for part in &message.parts {
            if let Some(block) = block_of(part)? {
                content.push(block);
            }
        }
        if content.is_empty() {
            continue;
        }
        // NOTE: Anthropic requires user and assistant turns to alternate, so consecutive
        // turns of one role (e.g. several tool results, or a tool result then a user
        // question) become one turn. https://docs.anthropic.com/en/api/messages
        match messages.last_mut() {
            Some(last) if last.role == role => last.content.extend(content),
            _ => messages.push(WireMessage { role, content }),
        }
    }

    let mut tools: Vec<WireTool> = req
        .tools
        .iter()
        .map(|t| WireTool {
            name: t.name.clone(),
            description: t.description.clone(),
            input_schema: schema_or_empty(&t.parameters),
        })
        .collect();
    let mut tool_choice = match &req.tool_choice {
        None => None,
        // Without tools, `none` means what leaving it out means, and Anthropic rejects a
        // tool_choice without tools.
        Some(ToolChoice::None) if tools.is_empty() => None,
        Some(ToolChoice::None) => Some(WireToolChoice::None),
        Some(ToolChoice::Auto) => Some(WireToolChoice::Auto),
        Some(ToolChoice::Required) => Some(WireToolChoice::Any),
        Some(ToolChoice::Tool(name)) => Some(WireToolChoice::Tool { name: name.clone() }),
    };

    let mut json_tool = None;
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::Json) => system.push(SystemBlock::text(JSON_INSTRUCTION)),
        Some(ResponseFormat::JsonSchema { name, schema, .. }) => {
            if tools.iter().any(|t| &t.name == name) {
                return Err(Error::invalid_request(
                    format!("the JSON schema is named `{name}`, like one of the request's tools"),
                    "rename the schema: Anthropic receives it as a forced tool of that name",
                ));
            }
            tools.push(WireTool {
                name: name.clone(),
                description: Some(
                    "Returns the answer as a JSON object matching the schema.".into(),
                ),
                input_schema: schema_or_empty(schema),
            });
            tool_choice = Some(WireToolChoice::Tool { name: name.clone() });
            json_tool = Some(name.clone());
        }
    }

    let mut max_tokens = req.max_tokens.unwrap_or(opts.default_max_tokens);
    let thinking = match req.reasoning_effort {
        None => None,
        Some(effort) => {
            check_thinking_constraints(req, json_tool.is_some())?;
            let budget = effort.budget_tokens();
            // NOTE: budget_tokens must be below max_tokens, which counts thinking too; when
            // it is not, the answer keeps the room asked for on top of the budget.
            // https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking
            if max_tokens <= budget {
                max_tokens = budget.saturating_add(max_tokens);
            }
            Some(ThinkingConfig {
                kind: "enabled",
                budget_tokens: budget,
            })
        }
    };

    // NOTE: Anthropic has no seed parameter; `seed` is not sent.
    let wire = MessagesRequest {
        model: opts.model.to_owned(),
        max_tokens,
        messages,
        system,
        temperature: req.temperature,
        top_p: req.top_p,
        stop_sequences: req.stop.clone(),
        tools,
        tool_choice,
        thinking,
        stream: opts.stream,
    };
    let mut body = match serde_json::to_value(&wire) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    for (key, value) in &req.extra {
        body.insert(key.clone(), value.clone());
    }
    // Fields a Messages front door received in this protocol's own shape replace the
    // neutral mapping; the model and the stream switch stay the client's own.
    if let Some(passthrough) = req.passthrough_for(ORIGIN) {
        for (key, value) in &passthrough.fields {
            if key != "model" && key != "stream" {
                body.insert(key.clone(), value.clone());
            }
        }
    }
    let body = serde_json::to_vec(&Value::Object(body)).map_err(|e| {
        Error::invalid_request(
            format!("the request could not be serialised: {e}"),
            "check the values in `extra` and the tool schemas",
        )
    })?;
    Ok(Prepared { body, json_tool })
}

/// The fields `POST /v1/messages/count_tokens` takes; the rest of a Messages body (sampling,
/// `max_tokens`, `stream`, `metadata`) is left out, since the endpoint refuses it.
/// https://docs.anthropic.com/en/api/messages-count-tokens
const COUNT_FIELDS: [&str; 7] = [
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "mcp_servers",
];

/// Turns a Messages body (from [`to_wire`]) into a token-counting body.
///
/// # Errors
/// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) if the body is not a JSON
/// object, which [`to_wire`] never produces.
pub(crate) fn count_body(messages_body: &[u8]) -> Result<Vec<u8>> {
    let bad = |e: &dyn std::fmt::Display| {
        Error::invalid_request(
            format!("the token-counting request could not be built: {e}"),
            "check the values in `extra` and the passthrough fields",
        )
    };
    let mut body: Map<String, Value> =
        serde_json::from_slice(messages_body).map_err(|e| bad(&e))?;
    body.retain(|key, _| COUNT_FIELDS.contains(&key.as_str()));
    serde_json::to_vec(&body).map_err(|e| bad(&e))
}

/// Converts one part; `Ok(None)` for parts Anthropic must not receive (empty text, reasoning
/// it cannot verify).
fn block_of(part: &Part) -> Result<Option<RequestBlock>> {
    Ok(Some(match part {
        Part::Text { text } if text.is_empty() => return Ok(None),
        Part::Text { text } => RequestBlock::Text { text: text.clone() },
        Part::Image(media) => RequestBlock::Image {
            source: media_source(media),
        },
        Part::Document(media) => RequestBlock::Document {
            source: document_source(media)?,
        },
        Part::Audio(_) => {
            return Err(Error::invalid_request(
                "Anthropic does not accept audio input; transcribe it first or route to a provider that does",
                "send a transcript as text, or use a model whose provider reads audio (e.g. OpenAI or Gemini)",
            ))
        }
        Part::ToolCall(call) => RequestBlock::ToolUse {
            id: call.id.clone(),
            name: call.name.clone(),
            input: tool_input(&call.arguments),
        },
        Part::ToolResult(result) => RequestBlock::ToolResult {
            tool_use_id: result.call_id.clone(),
            content: result.content.clone(),
            is_error: result.is_error,
        },
        Part::Thinking(thinking) => return Ok(thinking_block(thinking)),
        // Part is non-exhaustive: parts added later are not sent until mapped here.
        #[allow(unreachable_patterns)]
        _ => return Ok(None),
    }))
}

/// Sends back reasoning only when Anthropic produced it and can verify it.
///
/// NOTE: Anthropic checks the `signature` of every thinking block sent back and rejects
/// blocks it did not sign, so reasoning from other providers (or unsigned reasoning) is
/// dropped; the conversation still works, the model just does not see that reasoning.
/// https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#preserving-thinking-blocks
fn thinking_block(thinking: &Thinking) -> Option<RequestBlock> {
    if thinking.origin.as_deref() != Some(ORIGIN) {
        return None;
    }
    if let Some(data) = &thinking.redacted {
        return Some(RequestBlock::RedactedThinking { data: data.clone() });
    }
    let signature = thinking.signature.as_ref().filter(|s| !s.is_empty())?;
    Some(RequestBlock::Thinking {
        thinking: thinking.text.clone(),
        signature: signature.clone(),
    })
}

/// Turns tool-call arguments into the object Anthropic's `input` must be.
///
/// Objects pass as they are; a JSON string holding an object (arguments kept as text) is
/// parsed; `null` becomes `{}`; anything else — a non-object value, or text that is not a
/// JSON object — is wrapped as `{"value": ...}` so a conversation from another provider
/// still converts rather than failing mid-failover.
fn tool_input(arguments: &Value) -> Value {
    match arguments {
        Value::Object(_) => arguments.clone(),
        Value::Null => Value::Object(Map::new()),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(parsed @ Value::Object(_)) => parsed,
            _ => wrap_value(arguments),
        },
        other => wrap_value(other),
    }
}

fn wrap_value(value: &Value) -> Value {
    let mut map = Map::new();
    map.insert("value".to_owned(), value.clone());
    Value::Object(map)
}

fn schema_or_empty(schema: &Value) -> Value {
    match schema {
        Value::Null => serde_json::json!({"type": "object", "properties": {}}),
        other => other.clone(),
    }
}

fn media_source(media: &Media) -> Source {
    match &media.source {
        MediaSource::Url { url } => Source::Url { url: url.clone() },
        MediaSource::Bytes { .. } => Source::Base64 {
            media_type: media.media_type.clone(),
            data: media.base64().unwrap_or_default(),
        },
    }
}

/// PDFs go as base64 or URL sources; inline plain text goes as a text source.
/// https://docs.anthropic.com/en/docs/build-with-claude/pdf-support
fn document_source(media: &Media) -> Result<Source> {
    let media_type = media.media_type.to_ascii_lowercase();
    match (&media.source, media_type.as_str()) {
        (_, "application/pdf") => Ok(media_source(media)),
        (MediaSource::Bytes { data }, t) if t.starts_with("text/plain") => Ok(Source::Text {
            media_type: "text/plain".to_owned(),
            data: String::from_utf8_lossy(data).into_owned(),
        }),
        _ => Err(Error::invalid_request(
            format!(
                "Anthropic does not read `{}` documents",
                media.media_type
            ),
            "send PDFs (application/pdf) or inline plain text (text/plain), or convert the document to text",
        )),
    }
}

/// Rejects settings that Anthropic's extended thinking does not allow, instead of dropping
/// them silently.
/// https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#feature-compatibility
fn check_thinking_constraints(req: &ChatRequest, json_schema: bool) -> Result<()> {
    if let Some(t) = req.temperature.filter(|t| *t != 1.0) {
        return Err(Error::invalid_request(
            format!("temperature {t} was set together with reasoning_effort, but Anthropic's extended thinking only runs at temperature 1"),
            "leave temperature unset (or 1.0) when asking for reasoning, or drop reasoning_effort",
        ));
    }
    if let Some(p) = req.top_p.filter(|p| !(0.95..=1.0).contains(p)) {
        return Err(Error::invalid_request(
            format!("top_p {p} was set together with reasoning_effort, but Anthropic's extended thinking only allows top_p between 0.95 and 1"),
            "leave top_p unset when asking for reasoning, or drop reasoning_effort",
        ));
    }
    if json_schema {
        return Err(Error::invalid_request(
            "a JSON schema answer is a forced tool call on Anthropic, which extended thinking does not allow",
            "drop reasoning_effort, or ask for ResponseFormat::Json (prompted) instead of a schema",
        ));
    }
    if matches!(
        req.tool_choice,
        Some(ToolChoice::Required) | Some(ToolChoice::Tool(_))
    ) {
        return Err(Error::invalid_request(
            "a forced tool choice was set together with reasoning_effort, but Anthropic's extended thinking only allows tool_choice auto or none",
            "use ToolChoice::Auto when asking for reasoning, or drop reasoning_effort",
        ));
    }
    Ok(())
}

// ---- reply -------------------------------------------------------------------------------

/// Converts a reply; `json_tool` names the forced tool whose input is the JSON answer.
pub(crate) fn from_wire(wire: MessagesResponse, json_tool: Option<&str>) -> ChatResponse {
    let mut parts = Vec::with_capacity(wire.content.len());
    let mut answered_by_json_tool = false;
    for block in wire.content {
        match block {
            ResponseBlock::Text { text } => parts.push(Part::Text { text }),
            ResponseBlock::Thinking {
                thinking,
                signature,
            } => parts.push(Part::Thinking(Thinking {
                text: thinking,
                signature: (!signature.is_empty()).then_some(signature),
                redacted: None,
                origin: Some(ORIGIN.to_owned()),
            })),
            ResponseBlock::RedactedThinking { data } => parts.push(Part::Thinking(Thinking {
                text: String::new(),
                signature: None,
                redacted: Some(data),
                origin: Some(ORIGIN.to_owned()),
            })),
            ResponseBlock::ToolUse { name, input, .. } if Some(name.as_str()) == json_tool => {
                answered_by_json_tool = true;
                parts.push(Part::Text {
                    text: input.to_string(),
                });
            }
            ResponseBlock::ToolUse { id, name, input } => parts.push(Part::ToolCall(ToolCall {
                id,
                name,
                arguments: input,
                signature: None,
            })),
            ResponseBlock::Unknown => {}
        }
    }
    let finish_reason = match wire.stop_reason.as_deref() {
        Some(raw) => finish_reason(raw, answered_by_json_tool),
        None => FinishReason::of(FinishKind::Other),
    };
    let mut response = ChatResponse::from_parts(parts)
        .with_usage(usage(&wire.usage))
        .with_finish_reason(finish_reason);
    response.served_model = wire.model;
    response.response_id = wire.id;
    response
}

/// Normalises usage: Anthropic's `input_tokens` excludes cache reads and writes, ours
/// includes them.
/// https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching#tracking-cache-performance
pub(crate) fn usage(wire: &WireUsage) -> Usage {
    let read = wire.cache_read_input_tokens.unwrap_or(0);
    let write = wire.cache_creation_input_tokens.unwrap_or(0);
    let input = wire
        .input_tokens
        .unwrap_or(0)
        .saturating_add(read)
        .saturating_add(write);
    Usage {
        cache_read_tokens: wire.cache_read_input_tokens,
        cache_write_tokens: wire.cache_creation_input_tokens,
        ..Usage::new(input, wire.output_tokens.unwrap_or(0))
    }
}

/// Maps `stop_reason`, keeping the raw value. A forced JSON-schema tool call is the answer,
/// so it finishes with `stop`.
/// https://docs.anthropic.com/en/api/handling-stop-reasons
pub(crate) fn finish_reason(raw: &str, answered_by_json_tool: bool) -> FinishReason {
    let kind = match raw {
        "tool_use" if answered_by_json_tool => FinishKind::Stop,
        "end_turn" | "stop_sequence" => FinishKind::Stop,
        "max_tokens" | "model_context_window_exceeded" => FinishKind::Length,
        "tool_use" => FinishKind::ToolCalls,
        "refusal" => FinishKind::Refusal,
        _ => FinishKind::Other,
    };
    FinishReason::new(kind, raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_input_is_always_an_object() {
        assert_eq!(tool_input(&json!({"a": 1})), json!({"a": 1}));
        assert_eq!(tool_input(&json!("{\"a\":1}")), json!({"a": 1}));
        assert_eq!(tool_input(&Value::Null), json!({}));
        assert_eq!(tool_input(&json!("not json")), json!({"value": "not json"}));
        assert_eq!(tool_input(&json!([1, 2])), json!({"value": [1, 2]}));
    }

    #[test]
    fn an_anthropic_passthrough_replaces_neutral_fields_and_another_protocols_is_ignored() {
        let wire = |passthrough: crate::types::Passthrough| -> Value {
            let req = ChatRequest::new(vec![
                crate::types::Message::system("sys"),
                crate::types::Message::user("hi"),
            ])
            .with_passthrough(passthrough);
            let opts = WireOptions {
                model: "claude-x",
                default_max_tokens: 10,
                stream: false,
            };
            serde_json::from_slice(&to_wire(&req, &opts).unwrap().body).unwrap()
        };
        let system =
            json!([{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}]);
        let mut ours = crate::types::Passthrough::new(ORIGIN);
        ours.fields.insert("top_k".into(), json!(5));
        ours.fields.insert("system".into(), system.clone());
        ours.fields.insert("model".into(), json!("not-this"));
        let body = wire(ours.clone());
        assert_eq!(body["top_k"], 5);
        assert_eq!(body["system"], system);
        assert_eq!(body["model"], "claude-x");
        ours.protocol = "gemini".into();
        let body = wire(ours);
        assert!(body.get("top_k").is_none());
        assert_eq!(body["system"], json!([{"type": "text", "text": "sys"}]));
    }

    #[test]
    fn a_counting_body_keeps_only_what_count_tokens_takes() {
        let req = ChatRequest::new(vec![
            crate::types::Message::system("sys"),
            crate::types::Message::user("hi"),
        ])
        .with_temperature(0.3)
        .with_max_tokens(50);
        let opts = WireOptions {
            model: "claude-x",
            default_max_tokens: 10,
            stream: false,
        };
        let body = count_body(&to_wire(&req, &opts).unwrap().body).unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["model"], "claude-x");
        assert_eq!(body["system"][0]["text"], "sys");
        assert!(body.get("max_tokens").is_none() && body.get("temperature").is_none());
    }

    #[test]
    fn cache_counts_are_added_to_input() {
        let u = usage(&WireUsage {
            input_tokens: Some(21),
            output_tokens: Some(187),
            cache_creation_input_tokens: Some(1480),
            cache_read_input_tokens: Some(3120),
        });
        assert_eq!(u.input_tokens, 4621);
        assert_eq!(u.total_tokens, 4808);
    }

    #[test]
    fn unknown_stop_reasons_are_other_and_keep_their_word() {
        let r = finish_reason("pause_turn", false);
        assert_eq!(
            (r.kind, r.raw.as_deref()),
            (FinishKind::Other, Some("pause_turn"))
        );
    }
}
