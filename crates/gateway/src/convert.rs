//! OpenAI wire request → [`ChatRequest`] ([`from_wire`]); [`ChatResponse`] → OpenAI wire
//! completion ([`to_wire`]).
//!
//! Fields the neutral request cannot carry are not forwarded: a request sent to an
//! Anthropic or Gemini target must not fail because of an OpenAI-only field. `n` other
//! than 1 is refused (the gateway returns one choice).

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::Value;
use switchboard::providers::openai::wire;
use switchboard::types::{Media, ReasoningEffort, ResponseFormat, ToolResult};
use switchboard::{
    ChatRequest, ChatResponse, FinishKind, Message, Part, Role, ToolCall, ToolChoice, ToolSpec,
};

use crate::error::ApiError;

/// Builds the neutral request from an OpenAI Chat Completions body.
///
/// # Errors
/// A 400 [`ApiError`] naming the parameter for content or values the gateway cannot map.
pub(crate) fn from_wire(body: &wire::ChatCompletionRequest) -> Result<ChatRequest, ApiError> {
    check_n(body.extra.get("n"))?;
    let mut names: HashMap<String, String> = HashMap::new();
    let mut messages = Vec::with_capacity(body.messages.len());
    for (i, message) in body.messages.iter().enumerate() {
        messages.push(message_from_wire(i, message, &mut names)?);
    }
    let mut req = ChatRequest::new(messages);
    req.max_tokens = body.max_completion_tokens.or(body.max_tokens);
    req.temperature = body.temperature;
    req.top_p = body.top_p;
    req.stop = match &body.stop {
        None => Vec::new(),
        Some(wire::Stop::One(s)) => vec![s.clone()],
        Some(wire::Stop::Many(v)) => v.clone(),
    };
    req.seed = body.seed;
    req.tools = body
        .tools
        .iter()
        .flatten()
        .map(|t| ToolSpec {
            name: t.function.name.clone(),
            description: t.function.description.clone(),
            parameters: t
                .function
                .parameters
                .clone()
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
            strict: t.function.strict,
        })
        .collect();
    req.tool_choice = match &body.tool_choice {
        None => None,
        Some(wire::ToolChoice::Mode(mode)) => Some(match mode.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(ApiError::invalid(
                    format!("tool_choice `{other}` is not one of auto, none, required"),
                    Some("tool_choice"),
                ))
            }
        }),
        Some(wire::ToolChoice::Named(named)) => Some(ToolChoice::Tool(named.function.name.clone())),
    };
    req.response_format = match &body.response_format {
        None => None,
        Some(wire::ResponseFormat::Text) => Some(ResponseFormat::Text),
        Some(wire::ResponseFormat::JsonObject) => Some(ResponseFormat::Json),
        Some(wire::ResponseFormat::JsonSchema { json_schema }) => {
            Some(ResponseFormat::JsonSchema {
                name: json_schema.name.clone(),
                schema: json_schema
                    .schema
                    .clone()
                    .unwrap_or(Value::Object(Default::default())),
                strict: json_schema.strict.unwrap_or(false),
            })
        }
    };
    req.reasoning_effort = match body.reasoning_effort.as_deref() {
        None => None,
        Some("minimal") => Some(ReasoningEffort::Minimal),
        Some("low") => Some(ReasoningEffort::Low),
        Some("medium") => Some(ReasoningEffort::Medium),
        Some("high") => Some(ReasoningEffort::High),
        Some(other) => {
            return Err(ApiError::invalid(
                format!("reasoning_effort `{other}` is not one of minimal, low, medium, high"),
                Some("reasoning_effort"),
            ))
        }
    };
    // Conversation ids for prompt-cache affinity: kept for routing, never forwarded (an
    // Anthropic or Gemini target would refuse them).
    for (field, hint) in [
        ("prompt_cache_key", &mut req.routing.prompt_cache_key),
        ("user", &mut req.routing.user),
    ] {
        *hint = match body.extra.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => {
                return Err(ApiError::invalid(
                    format!("`{field}` must be a string"),
                    Some(field),
                ))
            }
        };
    }
    req.validate()
        .map_err(|e| ApiError::invalid(crate::error::http_text(&e), Some("messages")))?;
    Ok(req)
}

/// Accepts `n` only as the integer 1 (or absent, or null): the gateway returns one choice,
/// and `2.0`, `"2"`, `-1` or `1e20` must not quietly get one.
fn check_n(n: Option<&Value>) -> Result<(), ApiError> {
    match n {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Number(v)) if v.is_u64() && v.as_u64() == Some(1) => Ok(()),
        Some(other) => {
            let mut shown = other.to_string();
            if shown.len() > 40 {
                shown.truncate(40);
                shown.push('…');
            }
            Err(ApiError::invalid(
                format!("`n` is {shown}, and the gateway returns one choice; send the integer 1 or leave `n` out"),
                Some("n"),
            ))
        }
    }
}

fn message_from_wire(
    i: usize,
    message: &wire::RequestMessage,
    names: &mut HashMap<String, String>,
) -> Result<Message, ApiError> {
    Ok(match message {
        wire::RequestMessage::System { content, .. }
        | wire::RequestMessage::Developer { content, .. } => {
            Message::new(Role::System, vec![Part::text(text_of(content))])
        }
        wire::RequestMessage::User { content, .. } => {
            Message::new(Role::User, parts_of(i, content)?)
        }
        wire::RequestMessage::Assistant {
            content,
            refusal,
            tool_calls,
            ..
        } => {
            let mut parts = Vec::new();
            let text = content.as_ref().map(text_of).unwrap_or_default();
            if !text.is_empty() {
                parts.push(Part::text(text));
            } else if let Some(refusal) = refusal.as_ref().filter(|r| !r.is_empty()) {
                parts.push(Part::text(refusal.clone()));
            }
            for call in tool_calls {
                names.insert(call.id.clone(), call.function.name.clone());
                parts.push(Part::ToolCall(ToolCall {
                    id: call.id.clone(),
                    name: call.function.name.clone(),
                    arguments: arguments(&call.function.arguments),
                    signature: None,
                }));
            }
            if parts.is_empty() {
                parts.push(Part::text(""));
            }
            Message::new(Role::Assistant, parts)
        }
        wire::RequestMessage::Tool {
            content,
            tool_call_id,
        } => Message::new(
            Role::Tool,
            vec![Part::ToolResult(ToolResult {
                call_id: tool_call_id.clone(),
                name: names.get(tool_call_id).cloned(),
                content: text_of(content),
                is_error: false,
            })],
        ),
    })
}

pub(crate) fn arguments(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Object(Default::default());
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

fn text_of(content: &wire::MessageContent) -> String {
    match content {
        wire::MessageContent::Text(text) => text.clone(),
        wire::MessageContent::Parts(parts) => parts
            .iter()
            .filter_map(|p| match p {
                wire::ContentPart::Text { text } => Some(text.as_str()),
                wire::ContentPart::Refusal { refusal } => Some(refusal.as_str()),
                _ => None,
            })
            .collect(),
    }
}

fn parts_of(i: usize, content: &wire::MessageContent) -> Result<Vec<Part>, ApiError> {
    let parts = match content {
        wire::MessageContent::Text(text) => return Ok(vec![Part::text(text.clone())]),
        wire::MessageContent::Parts(parts) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let param = format!("messages[{i}].content[{j}]");
        out.push(match part {
            wire::ContentPart::Text { text } => Part::text(text.clone()),
            wire::ContentPart::Refusal { refusal } => Part::text(refusal.clone()),
            wire::ContentPart::ImageUrl { image_url } => Part::Image(media_of(&image_url.url, "image/jpeg", &param)?),
            wire::ContentPart::InputAudio { input_audio } => {
                let media_type = match input_audio.format.as_str() {
                    "mp3" => "audio/mpeg".to_owned(),
                    other => format!("audio/{other}"),
                };
                Part::Audio(Media::bytes(media_type, decode(&input_audio.data, &param)?))
            }
            wire::ContentPart::File { file } => match &file.file_data {
                Some(data) => Part::Document(media_of(data, "application/pdf", &param)?),
                None => {
                    return Err(ApiError::invalid(
                        "file parts by `file_id` cannot be forwarded; send the file inline as `file_data` (a data: URI)",
                        Some(&param),
                    ))
                }
            },
        });
    }
    Ok(out)
}

/// Reads a `data:` URI into inline bytes, or keeps an `http(s)` URL for the provider to fetch.
pub(crate) fn media_of(url: &str, default_type: &str, param: &str) -> Result<Media, ApiError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (head, data) = rest.split_once(',').ok_or_else(|| {
            ApiError::invalid("the data: URI has no `,` before its data", Some(param))
        })?;
        let media_type = head.trim_end_matches(";base64");
        let media_type = if media_type.is_empty() {
            default_type
        } else {
            media_type
        };
        return Ok(Media::bytes(media_type.to_owned(), decode(data, param)?));
    }
    let lower = url.to_ascii_lowercase();
    let guessed = [
        (".png", "image/png"),
        (".gif", "image/gif"),
        (".webp", "image/webp"),
        (".pdf", "application/pdf"),
    ]
    .iter()
    .find(|(ext, _)| lower.split(['?', '#']).next().unwrap_or("").ends_with(ext))
    .map_or(default_type, |(_, t)| *t);
    Ok(Media::url(guessed.to_owned(), url.to_owned()))
}

fn decode(data: &str, param: &str) -> Result<Vec<u8>, ApiError> {
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| {
            ApiError::invalid(
                format!("the inline data is not valid base64: {e}"),
                Some(param),
            )
        })
}

/// Maps a finish kind to OpenAI's `finish_reason` word.
pub(crate) fn finish_word(kind: FinishKind) -> &'static str {
    match kind {
        FinishKind::Length => "length",
        FinishKind::ToolCalls => "tool_calls",
        FinishKind::ContentFilter => "content_filter",
        _ => "stop",
    }
}

/// Maps neutral usage to OpenAI's usage object.
pub(crate) fn usage_to_wire(u: &switchboard::Usage) -> wire::Usage {
    wire::Usage {
        prompt_tokens: u.input_tokens,
        completion_tokens: u.output_tokens,
        total_tokens: u.total_tokens.max(u.input_tokens + u.output_tokens),
        prompt_tokens_details: u.cache_read_tokens.map(|cached| wire::PromptTokensDetails {
            cached_tokens: Some(cached),
            audio_tokens: None,
        }),
        completion_tokens_details: u.reasoning_tokens.map(|r| wire::CompletionTokensDetails {
            reasoning_tokens: Some(r),
            ..Default::default()
        }),
        prompt_cache_hit_tokens: None,
    }
}

/// Renders a tool call's arguments as the JSON text OpenAI sends.
pub(crate) fn arguments_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "{}".to_owned(),
        other => other.to_string(),
    }
}

/// Builds the `chat.completion` object; `model` is the model that served.
pub(crate) fn to_wire(r: &ChatResponse, id: &str, created: u64) -> wire::ChatCompletion {
    let text = r.text();
    let tool_calls: Vec<wire::ToolCall> = r
        .tool_calls()
        .into_iter()
        .map(|c| wire::ToolCall {
            id: c.id.clone(),
            kind: "function".to_owned(),
            function: wire::FunctionCall {
                name: c.name.clone(),
                arguments: arguments_text(&c.arguments),
            },
        })
        .collect();
    let reasoning: String = r.thinking().iter().map(|t| t.text.as_str()).collect();
    let refused = r.finish_reason.kind == FinishKind::Refusal;
    let message = wire::ResponseMessage {
        role: Some("assistant".to_owned()),
        content: (!text.is_empty() || tool_calls.is_empty()).then(|| text.clone()),
        refusal: refused.then(|| text.clone()),
        tool_calls,
        reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
        reasoning: None,
    };
    wire::ChatCompletion {
        id: Some(id.to_owned()),
        object: Some("chat.completion".to_owned()),
        created: Some(created),
        model: Some(r.model_served().to_owned()),
        choices: vec![wire::Choice {
            index: 0,
            message,
            finish_reason: Some(finish_word(r.finish_reason.kind).to_owned()),
        }],
        usage: Some(usage_to_wire(&r.usage)),
        system_fingerprint: None,
        service_tier: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: Value) -> Result<ChatRequest, ApiError> {
        from_wire(&serde_json::from_value(json).unwrap())
    }

    #[test]
    fn tool_results_get_the_name_of_the_call_they_answer() {
        let req = parse(serde_json::json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
            ]
        }))
        .unwrap();
        match &req.messages[2].parts[0] {
            Part::ToolResult(r) => assert_eq!(r.name.as_deref(), Some("get_weather")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn inline_images_become_bytes_and_urls_stay_urls() {
        let req = parse(serde_json::json!({
            "model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what is this"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}}
            ]}]
        }))
        .unwrap();
        let parts = &req.messages[0].parts;
        assert!(
            matches!(&parts[1], Part::Image(m) if m.media_type == "image/png" && m.base64().is_some())
        );
        assert!(
            matches!(&parts[2], Part::Image(m) if m.media_type == "image/webp" && m.base64().is_none())
        );
    }

    #[test]
    fn n_is_the_integer_one_or_absent() {
        for ok in [serde_json::json!(1), Value::Null] {
            parse(serde_json::json!({"model": "m", "n": ok, "messages": [{"role": "user", "content": "x"}]}))
                .unwrap();
        }
        for bad in [
            serde_json::json!(2.0),
            serde_json::json!(1.0),
            serde_json::json!("2"),
            serde_json::json!(-1),
            serde_json::json!(1e20),
            serde_json::json!(0),
            serde_json::json!([1]),
        ] {
            let err = parse(serde_json::json!({"model": "m", "n": bad, "messages": [{"role": "user", "content": "x"}]}))
                .unwrap_err();
            assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(err.body().error.param.as_deref(), Some("n"), "{bad}");
        }
    }

    #[test]
    fn cache_key_and_user_become_routing_hints_and_are_not_forwarded() {
        let req = parse(
            serde_json::json!({"model": "m", "prompt_cache_key": "conv-7", "user": "u1",
            "messages": [{"role": "user", "content": "x"}]}),
        )
        .unwrap();
        assert_eq!(req.routing.prompt_cache_key.as_deref(), Some("conv-7"));
        assert_eq!(req.routing.user.as_deref(), Some("u1"));
        assert!(req.extra.is_empty());
        let err = parse(serde_json::json!({"model": "m", "user": 5, "messages": [{"role": "user", "content": "x"}]}))
            .unwrap_err();
        assert_eq!(err.body().error.param.as_deref(), Some("user"));
    }

    #[test]
    fn n_above_one_is_refused_with_the_parameter_named() {
        let err = parse(serde_json::json!({"model": "m", "n": 2, "messages": [{"role": "user", "content": "x"}]}))
            .unwrap_err();
        assert_eq!(err.body().error.param.as_deref(), Some("n"));
    }
}
