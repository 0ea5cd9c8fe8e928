//! `json`: an answer that must match a JSON Schema, validated here, with the model re-asked
//! (quoting the validation errors) until it matches or the retries run out.

use std::sync::Arc;

use serde_json::{json, Value};
use switchboard::types::ResponseFormat;
use switchboard::{ChatClient, Cost, Error, ErrorKind, Message, Result, Usage};

use super::{request, with};
use crate::params::JsonParams;
use crate::render;
use crate::State;

/// The most re-asks a call may request.
const MAX_RETRIES: u32 = 5;
/// Re-asks when the call names none.
const DEFAULT_RETRIES: u32 = 2;

/// Runs `json`.
pub(crate) async fn json(state: &Arc<State>, p: JsonParams) -> Result<Value> {
    let c = &p.conversation;
    let retries = p.max_retries.unwrap_or(DEFAULT_RETRIES);
    if retries > MAX_RETRIES {
        return Err(Error::new(
            ErrorKind::InvalidRequest,
            format!("max_retries {retries} is more than {MAX_RETRIES}"),
        )
        .with_fix(format!("ask for 0 to {MAX_RETRIES} retries")));
    }
    let schema = Value::Object(p.schema);
    let validator = jsonschema::validator_for(&schema).map_err(|e| {
        Error::new(
            ErrorKind::InvalidRequest,
            format!("`schema` is not a valid JSON Schema: {e}"),
        )
        .with_fix("give a JSON Schema object, e.g. {\"type\": \"object\", \"properties\": {…}, \"required\": […]}")
    })?;
    let mut req = request(c)?;
    req.response_format = Some(ResponseFormat::JsonSchema {
        name: "result".to_owned(),
        schema: schema.clone(),
        strict: false,
    });
    let chosen = state
        .targets
        .client(c.model.as_deref(), c.route.as_deref())?;
    let mut usage = Usage::default();
    let mut cost = Some(Cost::ZERO);
    let mut attempts = Vec::new();
    let mut rejected = Vec::new();
    for round in 1..=retries + 1 {
        let response = chosen.client.chat(&req).await?;
        usage.add(&response.usage);
        cost = match (cost, switchboard::ChatResponseCostExt::cost(&response)) {
            (Some(total), Some(this)) => Some(total + this),
            _ => None,
        };
        attempts.extend_from_slice(response.attempts());
        let text = response.text();
        let problem = match parse(&text) {
            Ok(value) => {
                let errors: Vec<String> = validator
                    .iter_errors(&value)
                    .map(|e| {
                        let at = e.instance_path().to_string();
                        if at.is_empty() {
                            e.to_string()
                        } else {
                            format!("{e} (at {at})")
                        }
                    })
                    .collect();
                if errors.is_empty() {
                    let mut out = render::common(&chosen.asked, &response);
                    out.insert("usage".into(), render::usage(&usage));
                    out.insert("cost_usd".into(), render::cost(cost));
                    out.insert("attempts".into(), render::attempts(&attempts));
                    return Ok(with(
                        out,
                        [
                            ("output", value),
                            ("rounds", json!(round)),
                            ("rejected", json!(rejected)),
                        ],
                    ));
                }
                errors.join("; ")
            }
            Err(e) => format!("the answer is not JSON: {e}"),
        };
        rejected.push(problem.clone());
        req.messages.push(response.to_message());
        req.messages.push(Message::user(format!(
            "Your answer does not match the required JSON Schema: {problem}. Reply with only the corrected JSON, no prose."
        )));
    }
    Err(Error::new(
        ErrorKind::Decode,
        format!(
            "the model's answer did not match the schema after {} tries: {}",
            retries + 1,
            rejected.last().map(String::as_str).unwrap_or("no answer")
        ),
    )
    .with_fix("raise max_retries (up to 5), simplify the schema, or ask a stronger model"))
}

/// Parses an answer as JSON, allowing a Markdown code fence around it.
fn parse(text: &str) -> std::result::Result<Value, serde_json::Error> {
    let trimmed = text.trim();
    let inner = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.trim_end().strip_suffix("```"))
        .unwrap_or(trimmed);
    serde_json::from_str(inner.trim())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parse_accepts_plain_and_fenced_json_and_rejects_prose() {
        assert_eq!(parse(" {\"a\": 1} ").unwrap()["a"], 1);
        assert_eq!(parse("```json\n{\"a\": 2}\n```").unwrap()["a"], 2);
        assert!(parse("Sure! {\"a\": 1}").is_err());
    }
}
