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

/// The error that says what went wrong: the last error behind a retry loop that gave up,
/// and the one error of a chain with a single target; otherwise `err` itself.
fn telling(err: &Error) -> &Error {
    match err.kind() {
        ErrorKind::RetriesExhausted => {
            match std::error::Error::source(err).and_then(|s| s.downcast_ref::<Error>()) {
                Some(last) => telling(last),
                None => err,
            }
        }
        ErrorKind::AllTargetsFailed if err.attempt_errors().len() == 1 => {
            telling(&err.attempt_errors()[0])
        }
        _ => err,
    }
}

/// A tool error: `{"error": {kind, message, fix, provider, model, status, code,
/// retry_after_s, gave_up, attempts}}` as structured content, and one readable line (with
/// the fix) as text. `kind` is the telling error's (the provider's refusal behind a retry
/// loop or a one-target chain); `gave_up` names the wrapper that gave up, if any.
pub(crate) fn failure(err: &Error) -> CallToolResult {
    let shown = telling(err);
    let attempts: Vec<Value> = err
        .attempt_errors()
        .iter()
        .map(|a| {
            let t = telling(a);
            json!({
                "provider": a.provider().or(t.provider()),
                "model": a.model().or(t.model()),
                "outcome": if a.kind() == ErrorKind::CircuitOpen { "skipped" } else { "failed" },
                "error_kind": t.kind().as_str(),
                "status": t.status(),
                "message": t.message(),
            })
        })
        .collect();
    let gave_up = (shown.kind() != err.kind()).then(|| err.kind().as_str());
    let fix = shown.fix().or(err.fix());
    let value = json!({
        "error": {
            "kind": shown.kind().as_str(),
            "message": shown.message(),
            "fix": fix,
            "provider": shown.provider(),
            "model": shown.model(),
            "status": shown.status(),
            "code": shown.code(),
            "retry_after_s": err.retry_after().or(shown.retry_after()).map(|d| d.as_secs_f64()),
            "gave_up": gave_up,
            "attempts": attempts,
        }
    });
    let mut text = format!("{} error: {shown}", shown.kind().as_str());
    if let Some(fix) = fix {
        if !text.contains(fix) {
            text.push_str(&format!("\nfix: {fix}"));
        }
    }
    let mut result = CallToolResult::structured_error(value);
    result.content = vec![ContentBlock::text(text)];
    result
}
