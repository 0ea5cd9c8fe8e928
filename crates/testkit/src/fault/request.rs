//! What a request asks for, read from its path and body: a stream or not, the model, a usage
//! chunk (OpenAI), and a prefill (a final assistant message).

use serde_json::Value;

use super::http::Request;
use super::Protocol;

/// What one request asks for.
#[derive(Debug)]
pub(super) struct Asked {
    pub(super) stream: bool,
    pub(super) model: String,
    /// OpenAI only: whether the request asked for a usage chunk (`stream_options`).
    pub(super) include_usage: bool,
    /// The text of a final assistant message (Gemini: a final `model` turn), if the
    /// conversation ends with one.
    pub(super) prefill: Option<String>,
    /// A hash of each prefix of the prompt — the system prompt, then the messages one by
    /// one — for the prompt cache model.
    pub(super) prefixes: Vec<u64>,
}

/// Reads what `request` asks for, in the shape of `protocol`.
pub(super) fn describe(protocol: Option<Protocol>, request: &Request) -> Asked {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let flag = |v: &Value| v.as_bool().unwrap_or(false);
    match protocol {
        Some(Protocol::Gemini) => {
            let path = request.path.split('?').next().unwrap_or_default();
            let model = path
                .rsplit("models/")
                .next()
                .and_then(|rest| rest.split(':').next())
                .unwrap_or_default()
                .to_owned();
            Asked {
                stream: path.ends_with(":streamGenerateContent"),
                model,
                include_usage: false,
                prefill: last_turn(&body["contents"], "model", "parts"),
                prefixes: prefixes(&body["systemInstruction"], &body["contents"]),
            }
        }
        _ => Asked {
            stream: flag(&body["stream"]),
            model: body["model"].as_str().unwrap_or_default().to_owned(),
            include_usage: flag(&body["stream_options"]["include_usage"]),
            prefill: last_turn(&body["messages"], "assistant", "content"),
            prefixes: prefixes(&body["system"], &body["messages"]),
        },
    }
}

/// Hashes of each prefix of the prompt: the system prompt (when it is a separate field, as
/// in Anthropic and Gemini), then every message in turn, each hash covering everything
/// before it.
fn prefixes(system: &Value, messages: &Value) -> Vec<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut out = Vec::new();
    if !system.is_null() {
        system.to_string().hash(&mut hasher);
        out.push(hasher.finish());
    }
    for message in messages.as_array().into_iter().flatten() {
        message.to_string().hash(&mut hasher);
        out.push(hasher.finish());
    }
    out
}

/// The text of the last entry of `turns` when its role is `role`: its `content` field as a
/// string, or the `text` of each element of it joined.
fn last_turn(turns: &Value, role: &str, content: &str) -> Option<String> {
    let last = turns.as_array()?.last()?;
    if last["role"].as_str() != Some(role) {
        return None;
    }
    match &last[content] {
        Value::String(text) => Some(text.clone()),
        Value::Array(parts) => Some(parts.iter().filter_map(|p| p["text"].as_str()).collect()),
        _ => None,
    }
}

/// How many of `tokens` a prefill already holds: `k` when the prefill, without trailing
/// whitespace, is exactly the first `k` tokens joined; 0 when it is anything else.
pub(super) fn continued_from(tokens: &[String], prefill: &str) -> usize {
    let prefill = prefill.trim_end();
    if prefill.is_empty() {
        return 0;
    }
    let mut text = String::new();
    for (i, token) in tokens.iter().enumerate() {
        text.push_str(token);
        if text.len() >= prefill.len() {
            return if text == prefill { i + 1 } else { 0 };
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                if i == 0 {
                    "tok0".into()
                } else {
                    format!(" tok{i}")
                }
            })
            .collect()
    }

    #[test]
    fn a_prefill_on_a_token_boundary_is_continued_after_it() {
        let t = tokens(6);
        assert_eq!(continued_from(&t, "tok0 tok1 tok2"), 3);
        assert_eq!(continued_from(&t, "tok0 tok1 tok2 "), 3);
        assert_eq!(continued_from(&t, "tok0 tok1 tok2 tok3 tok4 tok5"), 6);
    }

    #[test]
    fn any_other_prefill_starts_the_answer_anew() {
        let t = tokens(6);
        assert_eq!(continued_from(&t, ""), 0);
        assert_eq!(continued_from(&t, "tok0 to"), 0);
        assert_eq!(continued_from(&t, "Sure, here it is"), 0);
        assert_eq!(continued_from(&t, "tok0 tok1 tok2 tok3 tok4 tok5 tok6"), 0);
    }

    #[test]
    fn the_prefill_is_read_from_each_protocols_last_turn() {
        let request = |path: &str, body: Value| Request {
            path: path.to_owned(),
            body: body.to_string().into_bytes(),
        };
        let anthropic = request(
            "/v1/messages",
            serde_json::json!({"model": "m", "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "text", "text": "tok0 tok1"}]}
            ]}),
        );
        let asked = describe(Some(Protocol::Anthropic), &anthropic);
        assert_eq!(asked.prefill.as_deref(), Some("tok0 tok1"));
        let openai = request(
            "/v1/chat/completions",
            serde_json::json!({"model": "m", "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "tok0"}
            ]}),
        );
        let asked = describe(Some(Protocol::OpenAi), &openai);
        assert_eq!(asked.prefill.as_deref(), Some("tok0"));
        let gemini = request(
            "/v1beta/models/m:streamGenerateContent?alt=sse",
            serde_json::json!({"contents": [
                {"role": "user", "parts": [{"text": "hi"}]}
            ]}),
        );
        let asked = describe(Some(Protocol::Gemini), &gemini);
        assert_eq!(
            (asked.prefill, asked.stream, asked.model.as_str()),
            (None, true, "m")
        );
    }
}
