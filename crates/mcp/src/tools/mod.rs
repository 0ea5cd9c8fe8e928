//! The seven tools: their definitions (name, description, input schema, hints) and the
//! dispatch from a `tools/call` to the function that runs it.

mod embed;
mod generate;
mod json;
mod local;

use std::sync::Arc;

use rmcp::handler::server::common::schema_for_type;
use rmcp::model::{CallToolResult, JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use switchboard::{ChatRequest, Error, ErrorKind, Message, Part, Result, Role, ToolCall};

use crate::params::{
    ChatParams, Conversation, CostEstimateParams, EmbedParams, JsonParams, MessageParam,
    ModelsParams, ProviderCheckParams, RoleParam, ToolsParams,
};
use crate::render;
use crate::State;

/// The names of the tools, in the order they are listed.
pub const TOOL_NAMES: [&str; 7] = [
    "chat",
    "json",
    "embed",
    "tools",
    "provider_check",
    "cost_estimate",
    "models",
];

fn tool<T: JsonSchema + 'static>(
    name: &'static str,
    description: &'static str,
    remote: bool,
) -> Tool {
    // Generating tools reach a provider (open world); local ones read settings and prices.
    let hints = ToolAnnotations::new()
        .read_only(true)
        .destructive(false)
        .idempotent(!remote)
        .open_world(remote);
    // Arguments the schema does not name are refused (see `parse`); the schema says so.
    let mut schema = (*schema_for_type::<T>()).clone();
    schema.insert("additionalProperties".to_owned(), Value::Bool(false));
    Tool::new(name, description, Arc::new(schema)).annotate(hints)
}

/// Returns every tool's definition.
pub(crate) fn definitions() -> Vec<Tool> {
    vec![
        tool::<ChatParams>(
            "chat",
            "Sends a prompt or a conversation to a model (provider:model) or a configured route, with failover; returns the answer with provider, model, usage, cost and every attempt.",
            true,
        ),
        tool::<JsonParams>(
            "json",
            "Asks for JSON matching a JSON Schema; validates the answer and re-asks the model with the validation errors (up to max_retries times); returns the validated object.",
            true,
        ),
        tool::<EmbedParams>(
            "embed",
            "Turns one text or a list of texts into embedding vectors.",
            true,
        ),
        tool::<ToolsParams>(
            "tools",
            "Runs one tool-calling turn: returns the calls the model wants made (id, name, arguments), without running them.",
            true,
        ),
        tool::<ProviderCheckParams>(
            "provider_check",
            "Reports which providers have keys (naming the variable, never the key) and the circuit breaker state of every route target. Sends nothing.",
            false,
        ),
        tool::<CostEstimateParams>(
            "cost_estimate",
            "Prices a request before it is sent, from the price table: estimated input tokens plus max_tokens of output, per target.",
            false,
        ),
        tool::<ModelsParams>(
            "models",
            "Lists the models Switchboard has prices for, and the configured routes with their targets.",
            false,
        ),
    ]
}

/// The tools that send a request to a model, and so take `model` or `route`.
const TAKES_MODEL: [&str; 5] = ["chat", "json", "embed", "tools", "cost_estimate"];

/// Fills in `model` with the server's default when a call names neither `model` nor `route`.
pub(crate) fn with_default_model(
    tool: &str,
    mut args: JsonObject,
    default: Option<&str>,
) -> JsonObject {
    if let Some(model) = default {
        let named = |k: &str| args.get(k).is_some_and(|v| !v.is_null());
        if TAKES_MODEL.contains(&tool) && !named("model") && !named("route") {
            args.insert("model".to_owned(), Value::String(model.to_owned()));
        }
    }
    args
}

/// Runs the named tool; every failure becomes a tool error result, never a protocol error.
pub(crate) async fn call(state: &Arc<State>, name: &str, args: JsonObject) -> CallToolResult {
    let outcome = match name {
        "chat" => match parse::<ChatParams>(name, args) {
            Ok(p) => generate::chat(state, p).await,
            Err(e) => Err(e),
        },
        "json" => match parse::<JsonParams>(name, args) {
            Ok(p) => json::json(state, p).await,
            Err(e) => Err(e),
        },
        "embed" => match parse::<EmbedParams>(name, args) {
            Ok(p) => embed::embed(state, p).await,
            Err(e) => Err(e),
        },
        "tools" => match parse::<ToolsParams>(name, args) {
            Ok(p) => generate::tools(state, p).await,
            Err(e) => Err(e),
        },
        "provider_check" => {
            parse::<ProviderCheckParams>(name, args).and_then(|p| local::provider_check(state, p))
        }
        "cost_estimate" => {
            parse::<CostEstimateParams>(name, args).and_then(|p| local::cost_estimate(state, p))
        }
        "models" => parse::<ModelsParams>(name, args).and_then(|p| local::models(state, p)),
        other => Err(Error::new(
            ErrorKind::InvalidRequest,
            format!("there is no tool `{other}`"),
        )
        .with_fix(format!("call one of: {}", TOOL_NAMES.join(", ")))),
    };
    match outcome {
        Ok(value) => render::success(value),
        Err(err) => {
            tracing::debug!(tool = name, kind = err.kind().as_str(), "tool call failed");
            render::failure(&err)
        }
    }
}

/// Parses a tool's arguments, first refusing any the tool's schema does not name.
fn parse<T: DeserializeOwned + JsonSchema + 'static>(tool: &str, args: JsonObject) -> Result<T> {
    let schema = schema_for_type::<T>();
    let known: Vec<&str> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if let Some(unknown) = args.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(Error::new(
            ErrorKind::InvalidRequest,
            format!("`{tool}` has no argument `{unknown}`"),
        )
        .with_fix(format!("use only: {}", known.join(", "))));
    }
    serde_json::from_value(Value::Object(args)).map_err(|e| {
        Error::new(
            ErrorKind::InvalidRequest,
            format!("the arguments of `{tool}` are not valid: {e}"),
        )
        .with_fix("match the tool's input schema (tools/list shows it)")
    })
}

/// Builds the chat request of a conversation: system prompt, then the prompt or messages.
pub(crate) fn request(c: &Conversation) -> Result<ChatRequest> {
    let invalid =
        |message: &str, fix: &str| Error::new(ErrorKind::InvalidRequest, message).with_fix(fix);
    let mut messages = Vec::new();
    if let Some(system) = &c.system {
        messages.push(Message::system(system.clone()));
    }
    match (&c.prompt, &c.messages) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "both `prompt` and `messages` are given",
                "give `prompt` for one user message, or `messages` for a conversation",
            ))
        }
        (None, None) => {
            return Err(invalid(
                "neither `prompt` nor `messages` is given",
                "give `prompt` (one user message) or `messages` (a conversation)",
            ))
        }
        (Some(prompt), None) => {
            if prompt.trim().is_empty() {
                return Err(invalid("`prompt` is empty", "give a non-empty prompt"));
            }
            messages.push(Message::user(prompt.clone()));
        }
        (None, Some(list)) => {
            for (i, m) in list.iter().enumerate() {
                messages.push(message(i, m)?);
            }
        }
    }
    let mut req = ChatRequest::new(messages);
    req.max_tokens = c.max_tokens;
    req.temperature = c.temperature;
    req.validate()?;
    Ok(req)
}

fn message(i: usize, m: &MessageParam) -> Result<Message> {
    Ok(match m.role {
        RoleParam::System => Message::system(m.content.clone()),
        RoleParam::User => Message::user(m.content.clone()),
        RoleParam::Assistant => {
            let mut parts = Vec::new();
            if !m.content.is_empty() {
                parts.push(Part::text(m.content.clone()));
            }
            for call in &m.tool_calls {
                parts.push(Part::ToolCall(ToolCall {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: match &call.arguments {
                        Value::Null => Value::Object(Map::new()),
                        other => other.clone(),
                    },
                    signature: None,
                }));
            }
            Message::new(Role::Assistant, parts)
        }
        RoleParam::Tool => {
            let Some(id) = &m.tool_call_id else {
                return Err(Error::new(
                    ErrorKind::InvalidRequest,
                    format!("messages[{i}] has role `tool` but no `tool_call_id`"),
                )
                .with_fix("give the id of the tool call this message answers"));
            };
            Message::tool_result(id.clone(), m.content.clone())
        }
    })
}

/// Puts `extra` fields after the common ones.
pub(crate) fn with(
    mut base: Map<String, Value>,
    extra: impl IntoIterator<Item = (&'static str, Value)>,
) -> Value {
    for (k, v) in extra {
        base.insert(k.to_owned(), v);
    }
    Value::Object(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> JsonObject {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn default_model_fills_only_calls_that_name_no_target() {
        let d = Some("fast");
        let filled = with_default_model("chat", obj(json!({"prompt": "hi"})), d);
        assert_eq!(filled["model"], "fast");
        let routed = with_default_model("chat", obj(json!({"route": "slow"})), d);
        assert!(!routed.contains_key("model"));
        let local = with_default_model("models", obj(json!({})), d);
        assert!(!local.contains_key("model"));
        assert!(!with_default_model("chat", obj(json!({})), None).contains_key("model"));
    }

    #[test]
    fn conversation_needs_exactly_one_of_prompt_and_messages() {
        let both = Conversation {
            prompt: Some("hi".into()),
            messages: Some(Vec::new()),
            ..Conversation::default()
        };
        assert_eq!(
            request(&both).unwrap_err().kind(),
            ErrorKind::InvalidRequest
        );
        assert!(request(&Conversation::default()).is_err());
    }
}
