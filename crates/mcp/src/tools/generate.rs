//! `chat` and `tools`: one request through the chosen stack.

use std::sync::Arc;

use serde_json::{json, Value};
use switchboard::{ChatClient, Error, ErrorKind, Result, ToolChoice, ToolSpec};

use super::{request, with};
use crate::params::{ChatParams, ToolsParams};
use crate::render;
use crate::State;

/// Runs `chat`: the answer's text plus the common fields.
pub(crate) async fn chat(state: &Arc<State>, p: ChatParams) -> Result<Value> {
    let c = &p.conversation;
    let req = request(c)?;
    let chosen = state
        .targets
        .client(c.model.as_deref(), c.route.as_deref())?;
    let response = chosen.client.chat(&req).await?;
    Ok(with(
        render::common(&chosen.asked, &response),
        [("text", json!(response.text()))],
    ))
}

/// Runs `tools`: one turn with the given functions; returns the calls the model wants.
pub(crate) async fn tools(state: &Arc<State>, p: ToolsParams) -> Result<Value> {
    let c = &p.conversation;
    let mut req = request(c)?;
    if p.tools.is_empty() {
        return Err(Error::new(ErrorKind::InvalidRequest, "`tools` is empty")
            .with_fix("declare at least one function: {name, description, parameters}"));
    }
    for t in &p.tools {
        if t.name.trim().is_empty() {
            return Err(
                Error::new(ErrorKind::InvalidRequest, "a tool has an empty name")
                    .with_fix("name every tool"),
            );
        }
        let parameters = match &t.parameters {
            Some(Value::Object(o)) => Value::Object(o.clone()),
            None => json!({"type": "object", "properties": {}}),
            Some(_) => {
                return Err(Error::new(
                    ErrorKind::InvalidRequest,
                    format!("the parameters of tool `{}` are not a JSON Schema object", t.name),
                )
                .with_fix("give `parameters` as an object schema, e.g. {\"type\": \"object\", \"properties\": {…}}"))
            }
        };
        req.tools.push(ToolSpec {
            name: t.name.clone(),
            description: t.description.clone(),
            parameters,
            strict: None,
        });
    }
    req.tool_choice = match p.tool_choice.as_deref() {
        None | Some("auto") => Some(ToolChoice::Auto),
        Some("required") => Some(ToolChoice::Required),
        Some("none") => Some(ToolChoice::None),
        Some(name) => Some(ToolChoice::Tool(name.to_owned())),
    };
    req.validate()?;
    let chosen = state
        .targets
        .client(c.model.as_deref(), c.route.as_deref())?;
    let response = chosen.client.chat(&req).await?;
    let calls: Vec<Value> = response
        .tool_calls()
        .iter()
        .map(|c| json!({"id": c.id, "name": c.name, "arguments": c.arguments}))
        .collect();
    Ok(with(
        render::common(&chosen.asked, &response),
        [
            ("text", json!(response.text())),
            ("tool_calls", Value::Array(calls)),
        ],
    ))
}
