//! Tool results and tool errors as JSON: who answered, what it used and cost, and every
//! attempt on the way.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{json, Map, Value};
use switchboard::{Attempt, ChatResponse, ChatResponseCostExt, Cost, Error, ErrorKind, Usage};

/// The fields every generating tool's result shares: `route` (what was asked), `provider`,
/// `model` (as served), `requested_model`, `usage`, `cost_usd`, `latency_ms`, `attempts`.
pub(crate) fn common(asked: &str, r: &ChatResponse) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("route".into(), json!(asked));
    out.insert("provider".into(), json!(r.provider));
    out.insert("model".into(), json!(r.model_served()));
    out.insert("requested_model".into(), json!(r.model));
    out.insert("finish_reason".into(), json!(r.finish_reason.kind.as_str()));
    out.insert("usage".into(), usage(&r.usage));
    out.insert("cost_usd".into(), cost(r.cost()));
    out.insert("latency_ms".into(), json!(millis(r.latency)));
    out.insert("attempts".into(), attempts(r.attempts()));
    out
}

/// Renders token counts.
pub(crate) fn usage(u: &Usage) -> Value {
    serde_json::to_value(u).unwrap_or(Value::Null)
}

/// Renders a cost in dollars, or `null` when the model has no price.
pub(crate) fn cost(c: Option<Cost>) -> Value {
    c.map_or(Value::Null, |c| json!(c.usd()))
}

/// Renders attempts in order.
pub(crate) fn attempts(list: &[Attempt]) -> Value {
    Value::Array(
        list.iter()
            .map(|a| {
                json!({
                    "provider": a.provider,
                    "model": a.model,
                    "outcome": a.outcome.as_str(),
                    "error_kind": a.error_kind.map(ErrorKind::as_str),
                    "status": a.status,
                    "message": a.message,
                    "latency_ms": millis(a.latency),
                })
            })
            .collect(),
    )
}

/// Milliseconds with microsecond precision.
pub(crate) fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// A successful result: the JSON as structured content and as text.
pub(crate) fn success(value: Value) -> CallToolResult {
    CallToolResult::structured(value)
}

/// A tool error: `{"error": {kind, message, fix, provider, status, retry_after_s, cause,
/// attempts}}` as structured content, and one readable line (with the fix) as text.
pub(crate) fn failure(err: &Error) -> CallToolResult {
    let cause = std::error::Error::source(err).and_then(|s| s.downcast_ref::<Error>());
    let attempts: Vec<Value> = err
        .attempt_errors()
        .iter()
        .map(|a| {
            json!({
                "provider": a.provider(),
                "model": a.model(),
                "outcome": "failed",
                "error_kind": a.kind().as_str(),
                "status": a.status(),
                "message": a.message(),
            })
        })
        .collect();
    let value = json!({
        "error": {
            "kind": err.kind().as_str(),
            "message": err.message(),
            "fix": err.fix(),
            "provider": err.provider(),
            "model": err.model(),
            "status": err.status(),
            "code": err.code(),
            "retry_after_s": err.retry_after().map(|d| d.as_secs_f64()),
            "cause": cause.map(|c| json!({
                "kind": c.kind().as_str(),
                "message": c.message(),
                "status": c.status(),
            })),
            "attempts": attempts,
        }
    });
    let mut text = format!("{} error: {err}", err.kind().as_str());
    if let Some(fix) = err.fix() {
        if !text.contains(fix) {
            text.push_str(&format!("\nfix: {fix}"));
        }
    }
    let mut result = CallToolResult::structured_error(value);
    result.content = vec![ContentBlock::text(text)];
    result
}
