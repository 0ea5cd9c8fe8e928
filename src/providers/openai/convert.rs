//! [`ChatRequest`] → Chat Completions body ([`to_wire`]) and completion → [`ChatResponse`]
//! ([`from_wire`]).

use serde_json::{Map, Value};

use super::profiles::{MaxTokensField, Profile};
use super::wire;
use crate::error::{Error, Result};
use crate::types::{
    parse_arguments, ChatRequest, ChatResponse, FinishKind, FinishReason, Media, MediaSource,
    Message, Part, ResponseFormat, Role, Thinking, ToolCall, ToolChoice, ToolResult, Usage,
};

/// Builds the request body for `model` under `profile`'s quirks.
///
/// `request.extra` is merged last, so it can override any field; a `null` there removes
/// the field.
///
/// # Errors
/// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) for content Chat
/// Completions cannot carry (audio or a document by URL), or an `extra` value of the wrong
/// type for a known field.
pub(crate) fn to_wire(
    req: &ChatRequest,
    model: &str,
    profile: &Profile,
    stream: bool,
) -> Result<wire::ChatCompletionRequest> {
    let quirks = &profile.quirks;
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    for message in &req.messages {
        push_message(message, &mut messages)?;
    }
    let mut body = wire::ChatCompletionRequest {
        model: model.to_owned(),
        temperature: req.temperature,
        top_p: req.top_p,
        stop: (!req.stop.is_empty()).then(|| wire::Stop::Many(req.stop.clone())),
        ..wire::ChatCompletionRequest::default()
    };
    match quirks.max_tokens_field {
        MaxTokensField::MaxTokens => body.max_tokens = req.max_tokens,
        MaxTokensField::MaxCompletionTokens => body.max_completion_tokens = req.max_tokens,
    }
    if let Some(seed) = req.seed {
        if quirks.seed_field == "seed" {
            body.seed = Some(seed);
        } else {
            body.extra.insert(quirks.seed_field.to_owned(), seed.into());
        }
    }
    if !req.tools.is_empty() {
        body.tools = Some(
            req.tools
                .iter()
                .map(|t| wire::Tool {
                    kind: "function".to_owned(),
                    function: wire::FunctionDef {
                        name: t.name.clone(),
                        description: t.description.clone(),
                        parameters: Some(t.parameters.clone()),
                        strict: t.strict,
                    },
                })
                .collect(),
        );
    }
    body.tool_choice = req.tool_choice.as_ref().map(|choice| match choice {
        ToolChoice::Auto => wire::ToolChoice::Mode("auto".to_owned()),
        ToolChoice::None => wire::ToolChoice::Mode("none".to_owned()),
        ToolChoice::Required => wire::ToolChoice::Mode("required".to_owned()),
        ToolChoice::Tool(name) => wire::ToolChoice::Named(wire::NamedToolChoice {
            kind: "function".to_owned(),
            function: wire::FunctionName { name: name.clone() },
        }),
    });
    let mut instruction = None;
    body.response_format = match &req.response_format {
        None => None,
        Some(ResponseFormat::Text) => Some(wire::ResponseFormat::Text),
        Some(ResponseFormat::Json) => {
            // NOTE: OpenAI rejects json_object unless a message mentions JSON
            // (https://platform.openai.com/docs/guides/structured-outputs#json-mode).
            if !mentions_json(req) {
                instruction = Some("Answer with a single JSON object.".to_owned());
            }
            Some(wire::ResponseFormat::JsonObject)
        }
        Some(ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        }) if quirks.json_schema => Some(wire::ResponseFormat::JsonSchema {
            json_schema: wire::JsonSchemaFormat {
                name: name.clone(),
                description: None,
                schema: Some(schema.clone()),
                strict: Some(*strict),
            },
        }),
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            instruction = Some(format!(
                "Answer with JSON only: a single object that matches this JSON Schema.\n{schema}"
            ));
            Some(wire::ResponseFormat::JsonObject)
        }
    };
    if let Some(text) = instruction {
        let at = messages
            .iter()
            .take_while(|m| matches!(m, wire::RequestMessage::System { .. }))
            .count();
        messages.insert(
            at,
            wire::RequestMessage::System {
                content: wire::MessageContent::Text(text),
                name: None,
            },
        );
    }
    body.messages = messages;
    if let Some(effort) = req.reasoning_effort {
        if quirks.reasoning_effort {
            body.reasoning_effort = Some(effort.as_str().to_owned());
        } else {
            tracing::debug!(
                provider = profile.name,
                "reasoning_effort is not sent: this provider does not take it"
            );
        }
    }
    if stream {
        body.stream = Some(true);
        if quirks.stream_usage_option {
            body.stream_options = Some(wire::StreamOptions {
                include_usage: Some(true),
            });
        }
    }
    if req.extra.is_empty() {
        return Ok(body);
    }
    merge_extra(body, &req.extra)
}

/// Merges `extra` over the body: known fields land in their typed slots, others pass through.
fn merge_extra(
    mut body: wire::ChatCompletionRequest,
    extra: &Map<String, Value>,
) -> Result<wire::ChatCompletionRequest> {
    // The conversation can be large; keep it out of the round trip unless `extra` sets it.
    let messages = std::mem::take(&mut body.messages);
    let bad = |e: serde_json::Error| {
        Error::invalid_request(
            format!("`extra` does not fit the Chat Completions body: {e}"),
            "give each field in `extra` the type OpenAI's API reference shows",
        )
    };
    let mut map = match serde_json::to_value(&body).map_err(bad)? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for (key, value) in extra {
        if value.is_null() && key != "messages" {
            map.remove(key);
        } else {
            map.insert(key.clone(), value.clone());
        }
    }
    let overrides_messages = extra.contains_key("messages");
    let mut merged: wire::ChatCompletionRequest =
        serde_json::from_value(Value::Object(map)).map_err(bad)?;
    if !overrides_messages {
        merged.messages = messages;
    }
    Ok(merged)
}

fn mentions_json(req: &ChatRequest) -> bool {
    req.messages.iter().any(|m| {
        m.parts
            .iter()
            .filter_map(Part::as_text)
            .any(|t| t.to_ascii_lowercase().contains("json"))
    })
}

fn push_message(message: &Message, out: &mut Vec<wire::RequestMessage>) -> Result<()> {
    // Tool results become their own `tool` messages, whatever message held them.
    for part in &message.parts {
        if let Part::ToolResult(result) = part {
            out.push(tool_message(result));
        }
    }
    match message.role {
        Role::Tool => {}
        Role::System => {
            let text = message.text();
            if !text.is_empty() {
                out.push(wire::RequestMessage::System {
                    content: wire::MessageContent::Text(text),
                    name: None,
                });
            }
        }
        Role::User => {
            let mut parts = Vec::new();
            for part in &message.parts {
                match part {
                    Part::Text { text } => {
                        parts.push(wire::ContentPart::Text { text: text.clone() })
                    }
                    Part::Image(media) => parts.push(wire::ContentPart::ImageUrl {
                        image_url: wire::ImageUrl {
                            url: media.to_uri(),
                            detail: None,
                        },
                    }),
                    Part::Audio(media) => parts.push(audio_part(media)?),
                    Part::Document(media) => parts.push(document_part(media)?),
                    // Thinking is never sent back; tool parts were handled above.
                    _ => {}
                }
            }
            let content = match parts.as_slice() {
                [] => return Ok(()),
                [wire::ContentPart::Text { text }] => wire::MessageContent::Text(text.clone()),
                _ => wire::MessageContent::Parts(parts),
            };
            out.push(wire::RequestMessage::User {
                content,
                name: None,
            });
        }
        Role::Assistant => {
            let text = message.text();
            let tool_calls: Vec<wire::ToolCall> = message
                .parts
                .iter()
                .filter_map(|p| match p {
                    Part::ToolCall(call) => Some(wire_tool_call(call)),
                    _ => None,
                })
                .collect();
            if text.is_empty() && tool_calls.is_empty() {
                return Ok(());
            }
            out.push(wire::RequestMessage::Assistant {
                content: (!text.is_empty() || tool_calls.is_empty())
                    .then_some(wire::MessageContent::Text(text)),
                refusal: None,
                tool_calls,
                name: None,
            });
        }
    }
    Ok(())
}

fn tool_message(result: &ToolResult) -> wire::RequestMessage {
    // Chat Completions has no error flag on tool results; say it in the content instead.
    let content = if result.is_error {
        format!("Error: {}", result.content)
    } else {
        result.content.clone()
    };
    wire::RequestMessage::Tool {
        content: wire::MessageContent::Text(content),
        tool_call_id: result.call_id.clone(),
    }
}

fn wire_tool_call(call: &ToolCall) -> wire::ToolCall {
    let arguments = match &call.arguments {
        // Arguments that were not JSON were kept as text; send the text back unchanged.
        Value::String(text) => text.clone(),
        Value::Null => "{}".to_owned(),
        other => other.to_string(),
    };
    wire::ToolCall {
        id: call.id.clone(),
        kind: "function".to_owned(),
        function: wire::FunctionCall {
            name: call.name.clone(),
            arguments,
        },
    }
}

fn audio_part(media: &Media) -> Result<wire::ContentPart> {
    let Some(data) = media.base64() else {
        return Err(Error::invalid_request(
            "Chat Completions takes audio only as inline bytes, not by URL",
            "download the audio and attach it with `Media::bytes`",
        ));
    };
    let subtype = media.media_type.rsplit('/').next().unwrap_or_default();
    let format = match subtype {
        "wav" | "x-wav" | "wave" | "vnd.wave" => "wav",
        "mpeg" | "mp3" | "mpeg3" | "x-mpeg-3" => "mp3",
        other => other,
    };
    Ok(wire::ContentPart::InputAudio {
        input_audio: wire::InputAudio {
            data,
            format: format.to_owned(),
        },
    })
}

fn document_part(media: &Media) -> Result<wire::ContentPart> {
    if let MediaSource::Url { .. } = media.source {
        return Err(Error::invalid_request(
            "Chat Completions takes documents only as inline bytes, not by URL",
            "download the document and attach it with `Media::bytes`",
        ));
    }
    let extension = match media.media_type.as_str() {
        "application/pdf" => "pdf",
        other => other.rsplit('/').next().unwrap_or("bin"),
    };
    Ok(wire::ContentPart::File {
        file: wire::FileData {
            file_data: Some(media.to_uri()),
            file_id: None,
            filename: Some(format!("document.{extension}")),
        },
    })
}

/// Turns a completion into a response; `provider` labels reasoning parts.
///
/// Only the first choice is read. A refusal becomes the response's text, with the finish
/// kind [`FinishKind::Refusal`] (the raw reason stays the provider's, usually `stop`), so
/// callers that only read the text still see why there is no answer.
pub(crate) fn from_wire(completion: wire::ChatCompletion, provider: &str) -> ChatResponse {
    let choice = completion.choices.into_iter().next().unwrap_or_default();
    let message = choice.message;
    let mut parts = Vec::new();
    let reasoning = message.reasoning_content.or(message.reasoning);
    if let Some(text) = reasoning.filter(|t| !t.is_empty()) {
        parts.push(Part::Thinking(Thinking {
            text,
            signature: None,
            redacted: None,
            origin: Some(provider.to_owned()),
        }));
    }
    if let Some(text) = message.content.filter(|t| !t.is_empty()) {
        parts.push(Part::text(text));
    }
    let refused = message.refusal.as_ref().is_some_and(|r| !r.is_empty());
    if let Some(text) = message.refusal.filter(|t| !t.is_empty()) {
        parts.push(Part::text(text));
    }
    for call in message.tool_calls {
        parts.push(Part::ToolCall(ToolCall {
            id: call.id,
            name: call.function.name,
            arguments: parse_arguments(&call.function.arguments),
            signature: None,
        }));
    }
    let mut response = ChatResponse::from_parts(parts);
    response.finish_reason = finish_reason(choice.finish_reason.as_deref(), refused);
    response.usage = completion.usage.as_ref().map(usage).unwrap_or_default();
    response.served_model = completion.model;
    response.response_id = completion.id;
    response
}

/// Maps a `finish_reason` (and whether the answer was a refusal) to a [`FinishReason`].
pub(crate) fn finish_reason(raw: Option<&str>, refused: bool) -> FinishReason {
    let kind = match raw {
        _ if refused => FinishKind::Refusal,
        None | Some("stop" | "eos" | "end_turn") => FinishKind::Stop,
        Some("length" | "max_tokens") => FinishKind::Length,
        Some("tool_calls" | "function_call") => FinishKind::ToolCalls,
        Some("content_filter") => FinishKind::ContentFilter,
        Some(_) => FinishKind::Other,
    };
    FinishReason {
        kind,
        raw: raw.map(str::to_owned),
    }
}

/// Maps wire usage to [`Usage`]; OpenAI's `prompt_tokens` already include cached tokens.
pub(crate) fn usage(u: &wire::Usage) -> Usage {
    let cache_read = u
        .prompt_tokens_details
        .as_ref()
        .and_then(|d| d.cached_tokens)
        .or(u.prompt_cache_hit_tokens);
    Usage {
        input_tokens: u.prompt_tokens,
        output_tokens: u.completion_tokens,
        total_tokens: u
            .total_tokens
            .max(u.prompt_tokens.saturating_add(u.completion_tokens)),
        cache_read_tokens: cache_read,
        cache_write_tokens: None,
        reasoning_tokens: u
            .completion_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::openai::profile;

    #[test]
    fn finish_reasons_map_to_kinds_and_keep_the_raw_word() {
        let table = [
            (Some("stop"), FinishKind::Stop),
            (Some("length"), FinishKind::Length),
            (Some("tool_calls"), FinishKind::ToolCalls),
            (Some("function_call"), FinishKind::ToolCalls),
            (Some("content_filter"), FinishKind::ContentFilter),
            (Some("insufficient_system_resource"), FinishKind::Other),
            (None, FinishKind::Stop),
        ];
        for (raw, kind) in table {
            let reason = finish_reason(raw, false);
            assert_eq!(reason.kind, kind, "{raw:?}");
            assert_eq!(reason.raw.as_deref(), raw);
        }
        assert_eq!(finish_reason(Some("stop"), true).kind, FinishKind::Refusal);
    }

    #[test]
    fn a_bad_extra_value_for_a_known_field_is_an_invalid_request() {
        let req = ChatRequest::user("hi").with_extra("temperature", Value::from("hot"));
        let openai = profile("openai").unwrap();
        let err = to_wire(&req, "m", openai, false).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidRequest);
    }

    #[test]
    fn mistral_gets_its_seed_under_random_seed() {
        let req = ChatRequest::user("hi").with_seed(9);
        let body = to_wire(&req, "m", profile("mistral").unwrap(), false).unwrap();
        assert_eq!(
            (body.seed, body.extra.get("random_seed")),
            (None, Some(&Value::from(9)))
        );
    }
}
