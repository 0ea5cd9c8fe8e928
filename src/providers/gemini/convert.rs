//! [`ChatRequest`] → Gemini request body ([`to_wire`]) and Gemini answer → [`ChatResponse`]
//! ([`from_wire`]), plus the pieces the stream mapper shares.
//!
//! # Thought signatures
//!
//! Gemini puts an opaque `thoughtSignature` on a response part and wants it back on the same
//! part next turn (<https://ai.google.dev/gemini-api/docs/thought-signatures>). We keep it:
//!
//! - on a `functionCall` part: in [`ToolCall::signature`], sent back on that call;
//! - on a thought part (`thought: true`): in that [`Thinking`] part's signature, sent back on
//!   the thought part;
//! - on any other part (usually the last text part): as a signature-only [`Thinking`] part
//!   (empty text, origin `gemini`) placed just before it. On the way back a signature-only
//!   thinking part lends its signature to the next part of the same message, or, when none
//!   follows, becomes an empty text part carrying it — the shape streams deliver it in.
//!
//! Thinking of any other origin is dropped: another provider's signatures mean nothing here.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::error::prompt_blocked;
use super::wire::{
    Blob, Content, FileData, FunctionCall, FunctionCallingConfig, FunctionDeclaration,
    FunctionResponse, GenerateContentRequest, GenerateContentResponse, GenerationConfig,
    ThinkingConfig, Tool, ToolConfig, UsageMetadata, WirePart,
};
use crate::error::{Error, Result};
use crate::types::{
    ChatRequest, ChatResponse, FinishKind, FinishReason, Media, MediaSource, Part, ResponseFormat,
    Role, Thinking, ToolCall, ToolChoice, ToolResult, Usage,
};

/// The origin tag of reasoning produced by this protocol.
pub(crate) const ORIGIN: &str = "gemini";

/// The signature Gemini documents for function calls it did not produce itself (a
/// conversation begun on another provider): it tells Gemini 3's validator to let them pass.
// NOTE: https://ai.google.dev/gemini-api/docs/thought-signatures (FAQ: transferring a
// conversation from another model).
const FOREIGN_CALL_SIGNATURE: &str = "skip_thought_signature_validator";

/// Builds the JSON body of `generateContent` / `streamGenerateContent`, with the request's
/// `extra` merged in last (objects merge key by key, so `generationConfig.topK` in `extra`
/// adds to the computed config instead of replacing it).
pub(crate) fn to_wire(req: &ChatRequest) -> Result<Value> {
    let names = call_names(req);
    let mut system = Vec::new();
    let mut contents: Vec<Content> = Vec::new();
    for message in &req.messages {
        if message.role == Role::System {
            system.extend(
                message
                    .parts
                    .iter()
                    .filter_map(Part::as_text)
                    .map(WirePart::text),
            );
            continue;
        }
        let role = match message.role {
            Role::Assistant => "model",
            _ => "user",
        };
        let parts = parts_to_wire(&message.parts, &names);
        if parts.is_empty() {
            continue;
        }
        match contents.last_mut() {
            Some(last) if last.role.as_deref() == Some(role) => last.parts.extend(parts),
            _ => contents.push(Content {
                role: Some(role.to_owned()),
                parts,
            }),
        }
    }
    for content in &mut contents {
        if content.role.as_deref() == Some("model") {
            sign_first_call(&mut content.parts);
        }
    }
    let body = GenerateContentRequest {
        contents,
        system_instruction: (!system.is_empty()).then_some(Content {
            role: None,
            parts: system,
        }),
        tools: tools_to_wire(req),
        tool_config: req.tool_choice.as_ref().map(tool_choice_to_wire),
        generation_config: generation_config(req),
    };
    let mut value = serde_json::to_value(&body).map_err(|e| {
        Error::invalid_request(
            format!("the request could not be encoded as JSON: {e}"),
            "check tool schemas and extra fields for values JSON cannot hold",
        )
    })?;
    if let Value::Object(target) = &mut value {
        merge(target, &req.extra);
    }
    Ok(value)
}

/// Maps every tool call id in the conversation to its function name, so tool results that
/// came without a name (OpenAI and Anthropic need none) can still name their function.
fn call_names(req: &ChatRequest) -> HashMap<&str, &str> {
    req.messages
        .iter()
        .flat_map(|m| &m.parts)
        .filter_map(|p| match p {
            Part::ToolCall(call) => Some((call.id.as_str(), call.name.as_str())),
            _ => None,
        })
        .collect()
}

fn parts_to_wire(parts: &[Part], names: &HashMap<&str, &str>) -> Vec<WirePart> {
    let mut out = Vec::with_capacity(parts.len());
    let mut pending: Option<String> = None;
    for part in parts {
        let mut wire = match part {
            Part::Text { text } => WirePart::text(text.clone()),
            Part::Image(media) | Part::Document(media) | Part::Audio(media) => media_to_wire(media),
            Part::ToolCall(call) => call_to_wire(call),
            Part::ToolResult(result) => result_to_wire(result, names),
            Part::Thinking(t) => {
                if t.origin.as_deref() != Some(ORIGIN) || t.redacted.is_some() {
                    continue;
                }
                if t.text.is_empty() {
                    if let Some(sig) = &t.signature {
                        pending = Some(sig.clone());
                    }
                    continue;
                }
                WirePart {
                    text: Some(t.text.clone()),
                    thought: Some(true),
                    thought_signature: t.signature.clone(),
                    ..WirePart::default()
                }
            }
            // A new part kind: nothing Gemini could read.
            #[allow(unreachable_patterns)]
            _ => continue,
        };
        if let Some(sig) = pending.take() {
            if wire.thought_signature.is_none() {
                wire.thought_signature = Some(sig);
            } else {
                out.push(signature_only(sig));
            }
        }
        out.push(wire);
    }
    if let Some(sig) = pending {
        out.push(signature_only(sig));
    }
    out
}

fn signature_only(sig: String) -> WirePart {
    WirePart {
        text: Some(String::new()),
        thought_signature: Some(sig),
        ..WirePart::default()
    }
}

/// Gives the first function call of a model turn the documented stand-in signature when it
/// has none (a call made by another provider), as Gemini 3 requires one there.
fn sign_first_call(parts: &mut [WirePart]) {
    if let Some(first) = parts.iter_mut().find(|p| p.function_call.is_some()) {
        if first.thought_signature.is_none() {
            first.thought_signature = Some(FOREIGN_CALL_SIGNATURE.to_owned());
        }
    }
}

fn media_to_wire(media: &Media) -> WirePart {
    match &media.source {
        MediaSource::Bytes { .. } => WirePart {
            inline_data: Some(Blob {
                mime_type: media.media_type.clone(),
                data: media.base64().unwrap_or_default(),
            }),
            ..WirePart::default()
        },
        MediaSource::Url { url } => match split_data_uri(url) {
            Some((mime, data)) => WirePart {
                inline_data: Some(Blob {
                    mime_type: if mime.is_empty() {
                        media.media_type.clone()
                    } else {
                        mime.to_owned()
                    },
                    data: data.to_owned(),
                }),
                ..WirePart::default()
            },
            // Files API URIs, `gs://` objects and public `https://` URLs all go by reference.
            None => WirePart {
                file_data: Some(FileData {
                    mime_type: Some(media.media_type.clone()),
                    file_uri: url.clone(),
                }),
                ..WirePart::default()
            },
        },
    }
}

/// Splits `data:<mime>;base64,<data>` into its media type and base64 payload.
fn split_data_uri(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (head, data) = rest.split_once(',')?;
    let mime = head.strip_suffix(";base64")?;
    Some((mime, data))
}

fn call_to_wire(call: &ToolCall) -> WirePart {
    let args = match &call.arguments {
        Value::Object(_) => call.arguments.clone(),
        Value::Null => Value::Object(Map::new()),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(parsed @ Value::Object(_)) => parsed,
            _ => serde_json::json!({ "value": text }),
        },
        other => serde_json::json!({ "value": other }),
    };
    WirePart {
        function_call: Some(FunctionCall {
            id: None,
            name: call.name.clone(),
            args: Some(args),
        }),
        thought_signature: call.signature.clone(),
        ..WirePart::default()
    }
}

fn result_to_wire(result: &ToolResult, names: &HashMap<&str, &str>) -> WirePart {
    let name = result
        .name
        .clone()
        .or_else(|| names.get(result.call_id.as_str()).map(|n| (*n).to_owned()))
        .unwrap_or_else(|| result.call_id.clone());
    let key = if result.is_error { "error" } else { "result" };
    let response = match serde_json::from_str::<Value>(&result.content) {
        Ok(Value::Object(object)) if !result.is_error => Value::Object(object),
        Ok(value @ (Value::Object(_) | Value::Array(_))) => serde_json::json!({ key: value }),
        _ => serde_json::json!({ key: result.content }),
    };
    WirePart {
        function_response: Some(FunctionResponse {
            id: None,
            name,
            response,
        }),
        ..WirePart::default()
    }
}

fn tools_to_wire(req: &ChatRequest) -> Vec<Tool> {
    if req.tools.is_empty() {
        return Vec::new();
    }
    let declarations = req
        .tools
        .iter()
        .map(|tool| FunctionDeclaration {
            name: tool.name.clone(),
            description: tool.description.clone(),
            parameters_json_schema: (!tool.parameters.is_null()).then(|| tool.parameters.clone()),
        })
        .collect();
    vec![Tool {
        function_declarations: declarations,
    }]
}

fn tool_choice_to_wire(choice: &ToolChoice) -> ToolConfig {
    let (mode, allowed) = match choice {
        ToolChoice::Auto => ("AUTO", Vec::new()),
        ToolChoice::None => ("NONE", Vec::new()),
        ToolChoice::Required => ("ANY", Vec::new()),
        ToolChoice::Tool(name) => ("ANY", vec![name.clone()]),
    };
    ToolConfig {
        function_calling_config: FunctionCallingConfig {
            mode,
            allowed_function_names: allowed,
        },
    }
}

fn generation_config(req: &ChatRequest) -> Option<GenerationConfig> {
    let mut config = GenerationConfig {
        max_output_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop_sequences: req.stop.clone(),
        seed: req.seed,
        ..GenerationConfig::default()
    };
    match &req.response_format {
        Some(ResponseFormat::Json) => config.response_mime_type = Some("application/json"),
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            config.response_mime_type = Some("application/json");
            config.response_json_schema = Some(schema.clone());
        }
        _ => {}
    }
    if let Some(effort) = req.reasoning_effort {
        config.thinking_config = Some(ThinkingConfig {
            thinking_budget: effort.budget_tokens(),
            include_thoughts: true,
        });
    }
    (config != GenerationConfig::default()).then_some(config)
}

/// Merges `extra` into `target`: nested objects merge recursively, anything else replaces.
fn merge(target: &mut Map<String, Value>, extra: &Map<String, Value>) {
    for (key, value) in extra {
        match (target.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(more)) => merge(existing, more),
            _ => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

// ---- response --------------------------------------------------------------------------

/// Turns a `generateContent` answer into a [`ChatResponse`] (provider, model, ids and
/// timings are filled in by the client).
///
/// # Errors
/// [`ErrorKind::ContentFiltered`](crate::ErrorKind::ContentFiltered) when Gemini blocked the
/// prompt and returned no candidate.
pub(crate) fn from_wire(provider: &str, wire: GenerateContentResponse) -> Result<ChatResponse> {
    let candidate = match wire.candidates.into_iter().next() {
        Some(candidate) => candidate,
        None => {
            if let Some(reason) = wire.prompt_feedback.and_then(|f| f.block_reason) {
                return Err(prompt_blocked(provider, &reason));
            }
            Default::default()
        }
    };
    let mut ids = CallIds::default();
    let mut parts = Vec::new();
    for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
        parts_from_wire(part, &mut ids, &mut parts);
    }
    let has_calls = parts.iter().any(|p| matches!(p, Part::ToolCall(_)));
    let finish_reason = match candidate.finish_reason.as_deref() {
        Some(raw) => finish_from_wire(raw, has_calls),
        None if has_calls => FinishReason::of(FinishKind::ToolCalls),
        None => FinishReason::of(FinishKind::Stop),
    };
    let mut response = ChatResponse::from_parts(parts)
        .with_finish_reason(finish_reason)
        .with_usage(wire.usage_metadata.map(usage_from_wire).unwrap_or_default());
    response.served_model = wire.model_version;
    response.response_id = wire.response_id;
    Ok(response)
}

fn parts_from_wire(part: WirePart, ids: &mut CallIds, out: &mut Vec<Part>) {
    let signature = part.thought_signature.clone();
    if part.is_thought() {
        out.push(Part::Thinking(Thinking {
            text: part.text.unwrap_or_default(),
            signature,
            redacted: None,
            origin: Some(ORIGIN.to_owned()),
        }));
        return;
    }
    if let Some(call) = part.function_call {
        out.push(Part::ToolCall(call_from_wire(call, signature, ids)));
        return;
    }
    if let Some(sig) = signature {
        out.push(signature_part(sig));
    }
    if let Some(text) = part.text.filter(|t| !t.is_empty()) {
        out.push(Part::text(text));
    } else if let Some(blob) = part.inline_data {
        out.push(media_from_wire(blob));
    }
}

/// A signature-only thinking part (see the module docs).
pub(crate) fn signature_part(signature: String) -> Part {
    Part::Thinking(Thinking {
        text: String::new(),
        signature: Some(signature),
        redacted: None,
        origin: Some(ORIGIN.to_owned()),
    })
}

pub(crate) fn call_from_wire(
    call: FunctionCall,
    signature: Option<String>,
    ids: &mut CallIds,
) -> ToolCall {
    ToolCall {
        id: ids.assign(call.id),
        name: call.name,
        arguments: call.args.unwrap_or_else(|| Value::Object(Map::new())),
        signature,
    }
}

fn media_from_wire(blob: Blob) -> Part {
    let media = match base64_decode(&blob.data) {
        Some(bytes) => Media::bytes(blob.mime_type.clone(), bytes),
        None => Media::url(
            blob.mime_type.clone(),
            format!("data:{};base64,{}", blob.mime_type, blob.data),
        ),
    };
    if blob.mime_type.starts_with("image/") {
        Part::Image(media)
    } else if blob.mime_type.starts_with("audio/") {
        Part::Audio(media)
    } else {
        Part::Document(media)
    }
}

fn base64_decode(data: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(data.as_bytes())
        .ok()
}

/// Hands out tool call ids unique within one answer: Gemini's own `id` when it sent one,
/// else `call_<n>` where `n` counts the answer's calls.
#[derive(Debug, Default)]
pub(crate) struct CallIds {
    used: HashSet<String>,
    count: usize,
}

impl CallIds {
    pub(crate) fn assign(&mut self, given: Option<String>) -> String {
        let index = self.count;
        self.count += 1;
        let mut id = given
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| format!("call_{index}"));
        while self.used.contains(&id) {
            id.push('_');
        }
        self.used.insert(id.clone());
        id
    }
}

/// Normalises a `finishReason`; `STOP` means tool calls when the answer has any.
pub(crate) fn finish_from_wire(raw: &str, has_calls: bool) -> FinishReason {
    let kind = match raw {
        "STOP" if has_calls => FinishKind::ToolCalls,
        "STOP" => FinishKind::Stop,
        "MAX_TOKENS" => FinishKind::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
        | "LANGUAGE" => FinishKind::ContentFilter,
        _ => FinishKind::Other,
    };
    FinishReason::new(kind, raw)
}

/// Normalises usage: input counts cached and tool-use prompt tokens; output counts thoughts,
/// which Gemini reports apart from the candidates.
pub(crate) fn usage_from_wire(u: UsageMetadata) -> Usage {
    let input = u
        .prompt_token_count
        .unwrap_or(0)
        .saturating_add(u.tool_use_prompt_token_count.unwrap_or(0));
    let output = u
        .candidates_token_count
        .unwrap_or(0)
        .saturating_add(u.thoughts_token_count.unwrap_or(0));
    Usage {
        input_tokens: input,
        output_tokens: output,
        total_tokens: u.total_token_count.unwrap_or(input.saturating_add(output)),
        cache_read_tokens: u.cached_content_token_count,
        cache_write_tokens: None,
        reasoning_tokens: u.thoughts_token_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Message;
    use serde_json::json;

    #[test]
    fn signature_only_thinking_lends_its_signature_to_the_next_part() {
        let names = HashMap::new();
        let parts = vec![
            Part::Thinking(Thinking {
                text: "plan".into(),
                signature: None,
                redacted: None,
                origin: Some(ORIGIN.into()),
            }),
            signature_part("SIG".into()),
            Part::text("answer"),
        ];
        let wire = parts_to_wire(&parts, &names);
        assert_eq!(wire.len(), 2);
        assert_eq!(wire[0].thought, Some(true));
        assert_eq!(wire[1].text.as_deref(), Some("answer"));
        assert_eq!(wire[1].thought_signature.as_deref(), Some("SIG"));
        let trailing = parts_to_wire(&[Part::text("a"), signature_part("S2".into())], &names);
        assert_eq!(trailing[1].text.as_deref(), Some(""));
        assert_eq!(trailing[1].thought_signature.as_deref(), Some("S2"));
    }

    #[test]
    fn other_origins_thinking_is_dropped() {
        let t = Part::Thinking(Thinking {
            text: "hmm".into(),
            signature: Some("anthropic-sig".into()),
            redacted: None,
            origin: Some("anthropic".into()),
        });
        assert!(parts_to_wire(&[t], &HashMap::new()).is_empty());
    }

    #[test]
    fn extra_merges_into_nested_objects() {
        let req = ChatRequest::user("hi")
            .with_temperature(0.5)
            .with_extra("generationConfig", json!({"topK": 3}))
            .with_extra("safetySettings", json!([]));
        let body = to_wire(&req).unwrap();
        assert_eq!(body["generationConfig"]["temperature"], json!(0.5));
        assert_eq!(body["generationConfig"]["topK"], json!(3));
        assert_eq!(body["safetySettings"], json!([]));
    }

    #[test]
    fn consecutive_same_role_contents_merge() {
        let req = ChatRequest::new(vec![Message::user("a"), Message::user("b")]);
        let body = to_wire(&req).unwrap();
        assert_eq!(body["contents"].as_array().unwrap().len(), 1);
        assert_eq!(body["contents"][0]["parts"][1]["text"], json!("b"));
    }

    #[test]
    fn synthesized_ids_stay_unique() {
        let mut ids = CallIds::default();
        assert_eq!(ids.assign(Some("call_1".into())), "call_1");
        assert_eq!(ids.assign(None), "call_1_");
        assert_eq!(ids.assign(None), "call_2");
    }

    #[test]
    fn data_uris_are_sent_inline() {
        let part = media_to_wire(&Media::url("image/png", "data:image/png;base64,AAAA"));
        assert_eq!(part.inline_data.unwrap().data, "AAAA");
        let part = media_to_wire(&Media::url("application/pdf", "gs://bucket/a.pdf"));
        assert_eq!(part.file_data.unwrap().file_uri, "gs://bucket/a.pdf");
    }
}
