//! [`ChatRequest`] → Responses API body ([`to_wire`]) and response object → [`ChatResponse`]
//! ([`from_wire`]).

use serde_json::{Map, Value};

use super::error::reported_error;
use super::wire;
use crate::error::{Error, Result};
use crate::types::{
    parse_arguments, ChatRequest, ChatResponse, FinishKind, FinishReason, Media, MediaSource,
    Message, Part, ReasoningEffort, ReasoningSummary, ResponseFormat, Role, Thinking, ToolCall,
    ToolChoice, Usage,
};

/// What shapes the body besides the request itself.
#[derive(Debug)]
pub(crate) struct WireOptions<'a> {
    /// The model (or Azure deployment) name.
    pub(crate) model: &'a str,
    /// The client's provider name; reasoning is sent back only when it came from it.
    pub(crate) provider: &'a str,
    /// Whether the provider may keep the response (`store`).
    pub(crate) store: bool,
    /// Whether to stream.
    pub(crate) stream: bool,
}

/// Builds the request body as JSON bytes; `request.extra` is merged last (a `null` there
/// removes the field).
///
/// # Errors
/// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) for audio input, which
/// the Responses API does not take, or a body that cannot be encoded.
pub(crate) fn to_wire(req: &ChatRequest, opts: &WireOptions<'_>) -> Result<Vec<u8>> {
    let mut body = wire::CreateResponse {
        model: opts.model.to_owned(),
        max_output_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        store: Some(opts.store),
        stream: opts.stream.then_some(true),
        ..wire::CreateResponse::default()
    };
    let mut instructions = Vec::new();
    for message in &req.messages {
        push_message(message, opts, &mut instructions, &mut body.input)?;
    }
    if !req.stop.is_empty() || req.seed.is_some() {
        tracing::debug!(
            provider = opts.provider,
            "stop sequences and seed are not sent: the Responses API has neither"
        );
    }
    body.tools = req
        .tools
        .iter()
        .map(|t| wire::Tool {
            kind: "function",
            name: t.name.clone(),
            description: t.description.clone(),
            parameters: t.parameters.clone(),
            // NOTE: Responses function tools are strict unless told otherwise
            // (https://platform.openai.com/docs/guides/function-calling#strict-mode), which
            // rejects ordinary schemas; send the caller's choice, default off.
            strict: t.strict.unwrap_or(false),
        })
        .collect();
    body.tool_choice = req.tool_choice.as_ref().map(|choice| match choice {
        ToolChoice::Auto => wire::ToolChoice::Mode("auto"),
        ToolChoice::None => wire::ToolChoice::Mode("none"),
        ToolChoice::Required => wire::ToolChoice::Mode("required"),
        ToolChoice::Tool(name) => wire::ToolChoice::Function {
            kind: "function",
            name: name.clone(),
        },
    });
    body.text = match &req.response_format {
        None => None,
        Some(ResponseFormat::Text) => Some(wire::Format::Text),
        Some(ResponseFormat::Json) => {
            // NOTE: JSON mode needs the word "JSON" somewhere in the context
            // (https://platform.openai.com/docs/guides/structured-outputs#json-mode).
            if !mentions_json(req, &instructions) {
                instructions.push("Answer with a single JSON object.".to_owned());
            }
            Some(wire::Format::JsonObject)
        }
        Some(ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        }) => Some(wire::Format::JsonSchema {
            name: name.clone(),
            schema: schema.clone(),
            strict: *strict,
        }),
    }
    .map(|format| wire::TextConfig { format });
    if !instructions.is_empty() {
        body.instructions = Some(instructions.join("\n\n"));
    }
    if req.reasoning_effort.is_some() || req.reasoning_summary.is_some() {
        body.reasoning = Some(wire::Reasoning {
            effort: req.reasoning_effort.map(ReasoningEffort::as_str),
            summary: req.reasoning_summary.map(ReasoningSummary::as_str),
        });
        // NOTE: without storage, reasoning can only be carried to the next turn as encrypted
        // content (https://platform.openai.com/docs/guides/reasoning#encrypted-reasoning-items).
        if !opts.store {
            body.include.push("reasoning.encrypted_content".to_owned());
        }
    }
    let bad = |e: serde_json::Error| {
        Error::invalid_request(
            format!("the request could not be encoded as JSON: {e}"),
            "remove non-finite numbers from the request",
        )
    };
    if req.extra.is_empty() {
        return serde_json::to_vec(&body).map_err(bad);
    }
    let mut map = match serde_json::to_value(&body).map_err(bad)? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for (key, value) in &req.extra {
        if value.is_null() {
            map.remove(key);
        } else {
            map.insert(key.clone(), value.clone());
        }
    }
    serde_json::to_vec(&Value::Object(map)).map_err(bad)
}

fn mentions_json(req: &ChatRequest, instructions: &[String]) -> bool {
    let has = |t: &str| t.to_ascii_lowercase().contains("json");
    instructions.iter().any(|t| has(t))
        || req
            .messages
            .iter()
            .any(|m| m.parts.iter().filter_map(Part::as_text).any(has))
}

fn push_message(
    message: &Message,
    opts: &WireOptions<'_>,
    instructions: &mut Vec<String>,
    out: &mut Vec<wire::InputItem>,
) -> Result<()> {
    match message.role {
        Role::System => {
            let text = message.text();
            if !text.is_empty() {
                instructions.push(text);
            }
            Ok(())
        }
        Role::User | Role::Tool => push_user(message, out),
        Role::Assistant => {
            push_assistant(message, opts, out);
            Ok(())
        }
    }
}

fn push_user(message: &Message, out: &mut Vec<wire::InputItem>) -> Result<()> {
    let mut content = Vec::new();
    for part in &message.parts {
        match part {
            Part::Text { text } => {
                content.push(wire::InputContent::InputText { text: text.clone() })
            }
            Part::Image(media) => content.push(wire::InputContent::InputImage {
                image_url: media.to_uri(),
                detail: "auto",
            }),
            Part::Document(media) => content.push(file_part(media)),
            Part::Audio(_) => {
                return Err(Error::invalid_request(
                    "the Responses API does not take audio input",
                    "transcribe the audio first, or send it through a Chat Completions client",
                ))
            }
            Part::ToolResult(result) => {
                flush_message("user", &mut content, out);
                // The Responses API has no error flag on tool output; say it in the text.
                let output = if result.is_error {
                    format!("Error: {}", result.content)
                } else {
                    result.content.clone()
                };
                out.push(wire::InputItem::FunctionCallOutput {
                    call_id: result.call_id.clone(),
                    output,
                });
            }
            // Calls and reasoning belong to assistant turns; nothing to send from a user.
            _ => {}
        }
    }
    flush_message("user", &mut content, out);
    Ok(())
}

fn push_assistant(message: &Message, opts: &WireOptions<'_>, out: &mut Vec<wire::InputItem>) {
    let provider = opts.provider;
    let mut content = Vec::new();
    let mut parts = message.parts.iter().peekable();
    while let Some(part) = parts.next() {
        match part {
            Part::Text { text } if !text.is_empty() => {
                content.push(wire::InputContent::OutputText {
                    text: text.clone(),
                    annotations: Vec::new(),
                })
            }
            Part::ToolCall(call) => {
                flush_message("assistant", &mut content, out);
                out.push(wire::InputItem::FunctionCall {
                    call_id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: match &call.arguments {
                        // Arguments that were not JSON were kept as text; send them unchanged.
                        Value::String(text) => text.clone(),
                        Value::Null => "{}".to_owned(),
                        other => other.to_string(),
                    },
                });
            }
            Part::Thinking(t) if t.origin.as_deref() == Some(provider) => {
                // A stream delivers a reasoning item as two parts: the summary with the item
                // id, then the encrypted content. Join them back into one item.
                let mut encrypted = t.redacted.clone();
                if encrypted.is_none() {
                    if let Some(Part::Thinking(next)) = parts.peek() {
                        if next.origin.as_deref() == Some(provider)
                            && next.redacted.is_some()
                            && next.signature.is_none()
                            && next.text.is_empty()
                        {
                            encrypted = next.redacted.clone();
                            parts.next();
                        }
                    }
                }
                // Without encrypted content an item can only be sent back by id, and only
                // when the provider stored it.
                if encrypted.is_none() && (!opts.store || t.signature.is_none()) {
                    continue;
                }
                flush_message("assistant", &mut content, out);
                let summary = if t.text.is_empty() {
                    Vec::new()
                } else {
                    vec![wire::SummaryText {
                        kind: "summary_text",
                        text: t.text.clone(),
                    }]
                };
                out.push(wire::InputItem::Reasoning {
                    id: t.signature.clone(),
                    summary,
                    encrypted_content: encrypted,
                });
            }
            // Reasoning from other providers means nothing here; results go in user turns.
            _ => {}
        }
    }
    flush_message("assistant", &mut content, out);
}

fn flush_message(
    role: &'static str,
    content: &mut Vec<wire::InputContent>,
    out: &mut Vec<wire::InputItem>,
) {
    if !content.is_empty() {
        out.push(wire::InputItem::Message {
            role,
            content: std::mem::take(content),
        });
    }
}

fn file_part(media: &Media) -> wire::InputContent {
    let extension = match media.media_type.as_str() {
        "application/pdf" => "pdf",
        other => other.rsplit('/').next().unwrap_or("bin"),
    };
    match &media.source {
        MediaSource::Url { url } => wire::InputContent::InputFile {
            filename: None,
            file_data: None,
            file_url: Some(url.clone()),
        },
        MediaSource::Bytes { .. } => wire::InputContent::InputFile {
            filename: Some(format!("document.{extension}")),
            file_data: Some(media.to_uri()),
            file_url: None,
        },
    }
}

/// Turns a response object into a [`ChatResponse`]; reasoning parts are labelled with
/// `provider`.
///
/// # Errors
/// A response whose `status` is `failed` carries its `error`; that becomes a typed error
/// counted as the provider's failure.
pub(crate) fn from_wire(response: wire::Response, provider: &str) -> Result<ChatResponse> {
    if response.status.as_deref() == Some("failed") {
        let error = response.error.unwrap_or(Value::Null);
        return Err(reported_error(provider, &error));
    }
    let mut parts = Vec::new();
    let mut refused = false;
    for item in response.output {
        match item {
            wire::OutputItem::Message { content } => {
                for piece in content {
                    match piece {
                        wire::OutputContent::OutputText { text } if !text.is_empty() => {
                            push_text(&mut parts, text)
                        }
                        wire::OutputContent::Refusal { refusal } if !refusal.is_empty() => {
                            refused = true;
                            push_text(&mut parts, refusal);
                        }
                        _ => {}
                    }
                }
            }
            wire::OutputItem::FunctionCall {
                id,
                call_id,
                name,
                arguments,
            } => parts.push(Part::ToolCall(ToolCall {
                id: call_id.or(id).unwrap_or_default(),
                name,
                arguments: parse_arguments(&arguments),
                signature: None,
            })),
            wire::OutputItem::Reasoning {
                id,
                summary,
                content,
                encrypted_content,
            } => {
                let entries = if summary.is_empty() { content } else { summary };
                let text = entries
                    .into_iter()
                    .map(|e| e.text)
                    .collect::<Vec<_>>()
                    .join("\n");
                parts.push(Part::Thinking(Thinking {
                    text,
                    signature: id,
                    redacted: encrypted_content,
                    origin: Some(provider.to_owned()),
                }));
            }
            wire::OutputItem::Other => {}
        }
    }
    let calls = parts.iter().any(|p| matches!(p, Part::ToolCall(_)));
    let mut out = ChatResponse::from_parts(parts);
    out.finish_reason = finish_reason(
        response.status.as_deref(),
        response
            .incomplete_details
            .as_ref()
            .and_then(|d| d.reason.as_deref()),
        refused,
        calls,
    );
    out.usage = response.usage.as_ref().map(usage).unwrap_or_default();
    out.served_model = response.model;
    out.response_id = response.id;
    Ok(out)
}

fn push_text(parts: &mut Vec<Part>, text: String) {
    match parts.last_mut() {
        Some(Part::Text { text: last }) => last.push_str(&text),
        _ => parts.push(Part::text(text)),
    }
}

/// Maps `status` (and `incomplete_details.reason`) to a [`FinishReason`]; the raw value is
/// the reason when there is one, else the status.
pub(crate) fn finish_reason(
    status: Option<&str>,
    incomplete: Option<&str>,
    refused: bool,
    calls: bool,
) -> FinishReason {
    let kind = match (status, incomplete) {
        _ if refused => FinishKind::Refusal,
        (Some("incomplete"), Some("max_output_tokens")) => FinishKind::Length,
        (Some("incomplete"), Some("content_filter")) => FinishKind::ContentFilter,
        (Some("incomplete"), _) => FinishKind::Other,
        _ if calls => FinishKind::ToolCalls,
        (None | Some("completed"), _) => FinishKind::Stop,
        _ => FinishKind::Other,
    };
    FinishReason {
        kind,
        raw: incomplete.or(status).map(str::to_owned),
    }
}

/// Maps wire usage to [`Usage`]; `input_tokens` already include cached tokens.
pub(crate) fn usage(u: &wire::Usage) -> Usage {
    Usage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        total_tokens: u
            .total_tokens
            .max(u.input_tokens.saturating_add(u.output_tokens)),
        cache_read_tokens: u
            .input_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens),
        cache_write_tokens: None,
        reasoning_tokens: u
            .output_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(req: &ChatRequest) -> Value {
        let opts = WireOptions {
            model: "gpt-5",
            provider: "openai-responses",
            store: false,
            stream: false,
        };
        serde_json::from_slice(&to_wire(req, &opts).unwrap()).unwrap()
    }

    #[test]
    fn streamed_reasoning_parts_are_joined_into_one_item() {
        let thinking = |text: &str, sig: Option<&str>, red: Option<&str>| {
            Part::Thinking(Thinking {
                text: text.into(),
                signature: sig.map(Into::into),
                redacted: red.map(Into::into),
                origin: Some("openai-responses".into()),
            })
        };
        let req = ChatRequest::new(vec![
            Message::user("hi"),
            Message::new(
                Role::Assistant,
                vec![
                    thinking("plan", Some("rs_1"), None),
                    thinking("", None, Some("gAAA")),
                    Part::text("hello"),
                ],
            ),
            Message::user("again"),
        ]);
        let input = &body(&req)["input"];
        assert_eq!(
            input[1],
            json!({"type": "reasoning", "id": "rs_1",
                   "summary": [{"type": "summary_text", "text": "plan"}],
                   "encrypted_content": "gAAA"})
        );
        assert_eq!(input[2]["content"][0]["type"], "output_text");
        assert_eq!(input.as_array().unwrap().len(), 4);
    }

    #[test]
    fn reasoning_from_another_provider_is_dropped() {
        let req = ChatRequest::new(vec![
            Message::user("hi"),
            Message::new(
                Role::Assistant,
                vec![
                    Part::Thinking(Thinking {
                        text: "x".into(),
                        signature: Some("sig".into()),
                        redacted: None,
                        origin: Some("anthropic".into()),
                    }),
                    Part::text("ok"),
                ],
            ),
        ]);
        let input = body(&req)["input"].clone();
        assert!(input
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["type"] != "reasoning"));
    }

    #[test]
    fn a_reasoning_summary_is_asked_for_with_or_without_an_effort() {
        let mut req = ChatRequest::user("hi");
        req.reasoning_summary = Some(ReasoningSummary::Auto);
        assert_eq!(body(&req)["reasoning"], json!({"summary": "auto"}));
        req.reasoning_effort = Some(ReasoningEffort::Low);
        let sent = body(&req);
        assert_eq!(
            sent["reasoning"],
            json!({"effort": "low", "summary": "auto"})
        );
        assert_eq!(sent["include"], json!(["reasoning.encrypted_content"]));
    }

    #[test]
    fn incomplete_reasons_map_to_kinds() {
        let f = |s, r| finish_reason(Some(s), r, false, false).kind;
        assert_eq!(f("completed", None), FinishKind::Stop);
        assert_eq!(
            f("incomplete", Some("max_output_tokens")),
            FinishKind::Length
        );
        assert_eq!(
            f("incomplete", Some("content_filter")),
            FinishKind::ContentFilter
        );
        assert_eq!(f("incomplete", Some("other")), FinishKind::Other);
        assert_eq!(
            finish_reason(Some("completed"), None, false, true).kind,
            FinishKind::ToolCalls
        );
    }
}
