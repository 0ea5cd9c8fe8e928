//! A Responses create request → the library's [`ChatRequest`].
//!
//! - `instructions` becomes the system message; `input` as a string is one user message.
//! - Input items: `message` (roles `user`, `assistant`, `system`, `developer`; content a
//!   string or `input_text` / `input_image` / `input_file` / `output_text` / `refusal`
//!   parts), `function_call` and `function_call_output` (the call id round trips as is; an
//!   output must answer a call earlier in `input`), and `reasoning` (summary as thinking
//!   text, the sealed `encrypted_content` opened by [`super::reasoning`]). Consecutive
//!   assistant-side items (assistant messages, calls, reasoning) form one assistant turn.
//! - Function tools, `tool_choice`, `text.format`, `reasoning.effort` and `.summary`,
//!   `max_output_tokens`, `temperature`, `top_p`.
//!
//! Refused with a 400 naming the field and the fix: anything that needs state the gateway
//! does not keep (`previous_response_id`, `store: true`, `background`, `conversation`,
//! stored `prompt`s, `item_reference` items, file ids), built-in tools and their items (web
//! search, file search, computer use, code interpreter, …), audio input, and a
//! `function_call_output` with no call before it. Other fields (`metadata`, `user`,
//! `text.verbosity`, `include`, …) are accepted and not forwarded, so a request that fails
//! over to another protocol never fails because of an OpenAI-only field.

use std::collections::HashMap;

use switchboard::types::{ReasoningEffort, ReasoningSummary, ResponseFormat, ToolResult};
use switchboard::{ChatRequest, Message, Part, Role, ToolCall, ToolChoice, ToolSpec};

use super::content::{assistant_parts, text_of, user_parts};
use super::reasoning;
use super::wire::{CreateRequest, Input, InputItem, Tool};
use crate::error::ApiError;

/// How the fix reads for every refusal that needs state.
pub(crate) const STATELESS: &str =
    "the gateway is stateless and keeps no responses, files or prompts";

/// Builds the neutral request.
///
/// # Errors
/// A 400 [`ApiError`] naming the parameter, for the refusals listed in the module docs and
/// for values the gateway cannot map.
pub(crate) fn from_wire(body: &CreateRequest) -> Result<ChatRequest, ApiError> {
    refuse_state(body)?;
    let mut messages = Vec::new();
    if let Some(text) = body.instructions.as_ref().filter(|t| !t.is_empty()) {
        messages.push(Message::new(Role::System, vec![Part::text(text.clone())]));
    }
    match &body.input {
        None => {
            return Err(ApiError::invalid(
                "`input` is missing; send the user's text as a string, or a list of input items",
                Some("input"),
            ))
        }
        Some(Input::Text(text)) => messages.push(Message::user(text.clone())),
        Some(Input::Items(items)) => items_to_messages(items, &mut messages)?,
    }
    let mut req = ChatRequest::new(messages);
    req.max_tokens = body.max_output_tokens;
    req.temperature = body.temperature;
    req.top_p = body.top_p;
    req.tools = body
        .tools
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, t)| tool(i, t))
        .collect::<Result<_, _>>()?;
    req.tool_choice = tool_choice(body)?;
    req.response_format = response_format(body)?;
    if let Some(reasoning) = &body.reasoning {
        req.reasoning_effort = match reasoning.effort.as_deref() {
            None => None,
            Some("minimal") => Some(ReasoningEffort::Minimal),
            Some("low") => Some(ReasoningEffort::Low),
            Some("medium") => Some(ReasoningEffort::Medium),
            Some("high") => Some(ReasoningEffort::High),
            Some(other) => {
                return Err(ApiError::invalid(
                    format!("reasoning.effort `{other}` is not one the gateway can map; send minimal, low, medium or high"),
                    Some("reasoning.effort"),
                ))
            }
        };
        req.reasoning_summary = match reasoning.summary.as_deref() {
            None => None,
            Some("auto") => Some(ReasoningSummary::Auto),
            Some("concise") => Some(ReasoningSummary::Concise),
            Some("detailed") => Some(ReasoningSummary::Detailed),
            Some(other) => {
                return Err(ApiError::invalid(
                    format!("reasoning.summary `{other}` is not one of auto, concise, detailed"),
                    Some("reasoning.summary"),
                ))
            }
        };
    }
    req.validate()
        .map_err(|e| ApiError::invalid(e.to_string(), Some("input")))?;
    Ok(req)
}

/// Refuses what only a stateful server could do.
fn refuse_state(body: &CreateRequest) -> Result<(), ApiError> {
    let refuse = |param: &str, what: &str, fix: &str| {
        Err(ApiError::invalid(
            format!("{what}: {STATELESS}; {fix}"),
            Some(param),
        ))
    };
    if body.previous_response_id.is_some() {
        return refuse(
            "previous_response_id",
            "`previous_response_id` cannot be served",
            "send the whole conversation in `input` (the earlier output items included) and leave `previous_response_id` out",
        );
    }
    if body.store == Some(true) {
        return refuse(
            "store",
            "`store: true` cannot be served",
            "send `store: false` or leave `store` out, and send the conversation in `input` each time",
        );
    }
    if body.background == Some(true) {
        return refuse(
            "background",
            "`background: true` cannot be served",
            "leave `background` out and wait for the answer (or stream it)",
        );
    }
    if body.conversation.as_ref().is_some_and(|c| !c.is_null()) {
        return refuse(
            "conversation",
            "`conversation` cannot be served",
            "send the conversation's items in `input` and leave `conversation` out",
        );
    }
    if body.prompt.as_ref().is_some_and(|p| !p.is_null()) {
        return refuse(
            "prompt",
            "a stored `prompt` cannot be resolved",
            "send the prompt's text as `instructions` and leave `prompt` out",
        );
    }
    Ok(())
}

fn tool(i: usize, t: &Tool) -> Result<ToolSpec, ApiError> {
    if t.kind != "function" {
        let hosted = [
            "web_search",
            "file_search",
            "computer_use",
            "code_interpreter",
            "image_generation",
            "mcp",
            "local_shell",
        ]
        .iter()
        .any(|h| t.kind.starts_with(h));
        let why = if hosted {
            "a built-in tool that runs on OpenAI's servers, which the gateway cannot run or pass to other providers; remove it, or define a `function` tool your code runs"
        } else {
            "not a tool the gateway can pass to every provider; define it as a `function` tool with a JSON schema"
        };
        return Err(ApiError::invalid(
            format!("tools[{i}] is a `{}` tool: {why}", t.kind),
            Some(&format!("tools[{i}].type")),
        ));
    }
    let name = t.name.clone().filter(|n| !n.is_empty()).ok_or_else(|| {
        ApiError::invalid(
            format!("tools[{i}] has no `name`; give every function tool a name"),
            Some(&format!("tools[{i}].name")),
        )
    })?;
    Ok(ToolSpec {
        name,
        description: t.description.clone(),
        parameters: t
            .parameters
            .clone()
            .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        strict: t.strict,
    })
}

fn tool_choice(body: &CreateRequest) -> Result<Option<ToolChoice>, ApiError> {
    use super::wire::ToolChoice as Wire;
    Ok(match &body.tool_choice {
        None => None,
        Some(Wire::Mode(mode)) => Some(match mode.as_str() {
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
        Some(Wire::Named { kind, name }) if kind == "function" => match name {
            Some(name) if !name.is_empty() => Some(ToolChoice::Tool(name.clone())),
            _ => {
                return Err(ApiError::invalid(
                    "tool_choice names no function; send {\"type\": \"function\", \"name\": \"...\"}",
                    Some("tool_choice.name"),
                ))
            }
        },
        Some(Wire::Named { kind, .. }) => {
            return Err(ApiError::invalid(
                format!("tool_choice of type `{kind}` cannot be served; send auto, none, required, or {{\"type\": \"function\", \"name\": \"...\"}}"),
                Some("tool_choice.type"),
            ))
        }
    })
}

fn response_format(body: &CreateRequest) -> Result<Option<ResponseFormat>, ApiError> {
    let Some(format) = body.text.as_ref().and_then(|t| t.format.as_ref()) else {
        return Ok(None);
    };
    Ok(Some(match format.kind.as_str() {
        "text" => ResponseFormat::Text,
        "json_object" => ResponseFormat::Json,
        "json_schema" => {
            let name = format
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    ApiError::invalid(
                        "text.format of type json_schema needs a `name`",
                        Some("text.format.name"),
                    )
                })?;
            let schema = format.schema.clone().ok_or_else(|| {
                ApiError::invalid(
                    "text.format of type json_schema needs a `schema`",
                    Some("text.format.schema"),
                )
            })?;
            ResponseFormat::JsonSchema {
                name,
                schema,
                strict: format.strict.unwrap_or(false),
            }
        }
        other => {
            return Err(ApiError::invalid(
                format!("text.format type `{other}` is not one of text, json_object, json_schema"),
                Some("text.format.type"),
            ))
        }
    }))
}

/// Decodes the items, joining consecutive assistant-side items into one assistant turn.
fn items_to_messages(items: &[InputItem], out: &mut Vec<Message>) -> Result<(), ApiError> {
    let mut assistant: Vec<Part> = Vec::new();
    let mut names: HashMap<&str, &str> = HashMap::new();
    let flush = |assistant: &mut Vec<Part>, out: &mut Vec<Message>| {
        if !assistant.is_empty() {
            out.push(Message::new(Role::Assistant, std::mem::take(assistant)));
        }
    };
    for (i, item) in items.iter().enumerate() {
        let kind = match (item.kind.as_deref(), &item.role) {
            (Some(kind), _) => kind,
            (None, Some(_)) => "message",
            (None, None) => {
                return Err(ApiError::invalid(
                    format!("input[{i}] has neither `type` nor `role`; send a message ({{\"role\", \"content\"}}) or a typed item"),
                    Some(&format!("input[{i}].type")),
                ))
            }
        };
        let field = |name: &str| format!("input[{i}].{name}");
        let missing = |name: &str| {
            ApiError::invalid(
                format!("input[{i}] ({kind}) has no `{name}`; add it"),
                Some(&field(name)),
            )
        };
        match kind {
            "message" => {
                let role = item.role.as_deref().ok_or_else(|| missing("role"))?;
                let content = item.content.as_ref().ok_or_else(|| missing("content"))?;
                match role {
                    "assistant" => assistant.extend(assistant_parts(i, content)?),
                    "user" => {
                        flush(&mut assistant, out);
                        out.push(Message::new(Role::User, user_parts(i, content)?));
                    }
                    "system" | "developer" => {
                        flush(&mut assistant, out);
                        let text = text_of(content, &field("content"))?;
                        out.push(Message::new(Role::System, vec![Part::text(text)]));
                    }
                    other => {
                        return Err(ApiError::invalid(
                            format!("input[{i}].role `{other}` is not one of user, assistant, system, developer"),
                            Some(&field("role")),
                        ))
                    }
                }
            }
            "function_call" => {
                let call_id = item.call_id.as_deref().ok_or_else(|| missing("call_id"))?;
                let name = item.name.as_deref().ok_or_else(|| missing("name"))?;
                names.insert(call_id, name);
                let arguments = item.arguments.as_deref().unwrap_or("");
                assistant.push(Part::ToolCall(ToolCall {
                    id: call_id.to_owned(),
                    name: name.to_owned(),
                    arguments: crate::convert::arguments(arguments),
                    signature: item.id.as_deref().and_then(reasoning::call_signature),
                }));
            }
            "function_call_output" => {
                let call_id = item.call_id.as_deref().ok_or_else(|| missing("call_id"))?;
                let Some(name) = names.get(call_id) else {
                    return Err(ApiError::invalid(
                        format!("input[{i}] answers call `{call_id}`, but no function_call item with that call_id comes before it; send the function_call item (from the earlier response's output) before its output"),
                        Some(&field("call_id")),
                    ));
                };
                let output = item.output.as_ref().ok_or_else(|| missing("output"))?;
                flush(&mut assistant, out);
                out.push(Message::new(
                    Role::Tool,
                    vec![Part::ToolResult(ToolResult {
                        call_id: call_id.to_owned(),
                        name: Some((*name).to_owned()),
                        content: text_of(output, &field("output"))?,
                        is_error: false,
                    })],
                ));
            }
            "reasoning" => {
                let text = item
                    .summary
                    .iter()
                    .flatten()
                    .map(|s| s.text.as_str())
                    .collect::<Vec<_>>()
                    .join("\n");
                for thinking in reasoning::open(text, item.encrypted_content.as_deref()) {
                    assistant.push(Part::Thinking(thinking));
                }
            }
            "item_reference" => {
                return Err(ApiError::invalid(
                    format!("input[{i}] is an item_reference, which cannot be resolved: {STATELESS}; send the item itself"),
                    Some(&field("type")),
                ))
            }
            other => {
                return Err(ApiError::invalid(
                    format!("input[{i}] is a `{other}` item; the gateway serves message, function_call, function_call_output and reasoning items (built-in tools such as web search, file search and computer use run only on OpenAI's servers); remove it"),
                    Some(&field("type")),
                ))
            }
        }
    }
    flush(&mut assistant, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode(body: serde_json::Value) -> Result<ChatRequest, ApiError> {
        from_wire(&serde_json::from_value(body).unwrap())
    }

    fn param_of(body: serde_json::Value) -> String {
        decode(body)
            .unwrap_err()
            .body()
            .error
            .param
            .unwrap_or_default()
    }

    #[test]
    fn a_string_input_is_one_user_message_after_the_instructions() {
        let req =
            decode(json!({"model": "m", "input": "hi", "instructions": "Be brief."})).unwrap();
        assert_eq!(req.messages.len(), 2);
        assert_eq!(req.messages[0].role, Role::System);
        assert_eq!(req.messages[1].text(), "hi");
    }

    #[test]
    fn calls_and_reasoning_form_one_assistant_turn_and_outputs_name_their_call() {
        let req = decode(json!({"model": "m", "input": [
            {"role": "user", "content": "weather?"},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "look it up"}]},
            {"type": "function_call", "call_id": "call_9", "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"},
            {"type": "function_call_output", "call_id": "call_9", "output": "sunny"}
        ]}))
        .unwrap();
        assert_eq!(req.messages.len(), 3);
        assert_eq!(req.messages[1].role, Role::Assistant);
        assert!(matches!(&req.messages[1].parts[0], Part::Thinking(t) if t.text == "look it up"));
        assert!(
            matches!(&req.messages[1].parts[1], Part::ToolCall(c) if c.id == "call_9" && c.arguments == json!({"city": "Oslo"}))
        );
        assert!(
            matches!(&req.messages[2].parts[0], Part::ToolResult(r) if r.name.as_deref() == Some("get_weather"))
        );
    }

    #[test]
    fn state_and_built_in_tools_are_refused_naming_the_field() {
        let base = |extra: serde_json::Value| {
            let mut body = json!({"model": "m", "input": "hi"});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            body
        };
        assert_eq!(
            param_of(base(json!({"previous_response_id": "resp_1"}))),
            "previous_response_id"
        );
        assert_eq!(param_of(base(json!({"store": true}))), "store");
        assert!(decode(base(json!({"store": false}))).is_ok());
        assert_eq!(
            param_of(base(json!({"tools": [{"type": "web_search"}]}))),
            "tools[0].type"
        );
        assert_eq!(
            param_of(
                json!({"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]})
            ),
            "input[0].call_id"
        );
        assert_eq!(
            param_of(json!({"model": "m", "input": [{"type": "file_search_call", "id": "fs_1"}]})),
            "input[0].type"
        );
        assert_eq!(param_of(json!({"model": "m"})), "input");
    }

    #[test]
    fn an_input_of_the_wrong_shape_says_which_shapes_it_takes() {
        let err = serde_json::from_value::<CreateRequest>(json!({"model": "m", "input": 42}))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("a string or a list of input items"),
            "{err}"
        );
        let err = serde_json::from_value::<CreateRequest>(
            json!({"model": "m", "input": [{"role": "user", "content": {"text": "x"}}]}),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("a string or a list of content parts"),
            "{err}"
        );
    }

    #[test]
    fn structured_output_and_effort_map_to_the_neutral_fields() {
        let req = decode(json!({"model": "m", "input": "x",
            "text": {"format": {"type": "json_schema", "name": "pt", "schema": {"type": "object"}, "strict": true}},
            "reasoning": {"effort": "low", "summary": "auto"},
            "max_output_tokens": 50}))
        .unwrap();
        assert!(
            matches!(req.response_format, Some(ResponseFormat::JsonSchema { ref name, strict: true, .. }) if name == "pt")
        );
        assert_eq!(req.reasoning_effort, Some(ReasoningEffort::Low));
        assert_eq!(req.reasoning_summary, Some(ReasoningSummary::Auto));
        assert_eq!(req.max_tokens, Some(50));
    }
}
