//! Rendering of answers and errors, for people and as `--json`.

use std::io::Write as _;

use serde_json::{json, Value};
use switchboard::{Attempt, ChatResponse, Error, ErrorKind};

/// Renders an attempt as its JSON object.
fn attempt_json(a: &Attempt) -> Value {
    json!({
        "provider": a.provider,
        "model": a.model,
        "outcome": a.outcome.as_str(),
        "error_kind": a.error_kind.map(ErrorKind::as_str),
        "status": a.status,
        "message": a.message,
        "latency_ms": millis(a.latency),
    })
}

fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// Renders a response as the `--json` object.
pub(crate) fn response_json(r: &ChatResponse) -> Value {
    let tool_calls: Vec<Value> = r
        .tool_calls()
        .iter()
        .map(|c| json!({"id": c.id, "name": c.name, "arguments": c.arguments}))
        .collect();
    let thinking: String = r.thinking().iter().map(|t| t.text.as_str()).collect();
    json!({
        "text": r.text(),
        "provider": r.provider,
        "model": r.model_served(),
        "requested_model": r.model,
        "finish_reason": r.finish_reason.kind.as_str(),
        "finish_reason_raw": r.finish_reason.raw,
        "usage": {
            "input_tokens": r.usage.input_tokens,
            "output_tokens": r.usage.output_tokens,
            "total_tokens": r.usage.total_tokens,
            "cache_read_tokens": r.usage.cache_read_tokens,
            "cache_write_tokens": r.usage.cache_write_tokens,
            "reasoning_tokens": r.usage.reasoning_tokens,
        },
        "tool_calls": tool_calls,
        "thinking": if thinking.is_empty() { Value::Null } else { Value::String(thinking) },
        "response_id": r.response_id,
        "request_id": r.request_id,
        "latency_ms": millis(r.latency),
        "attempts": r.attempts().iter().map(attempt_json).collect::<Vec<_>>(),
    })
}

/// Renders an error as the `--json` object `{"error": {...}}`.
pub(crate) fn error_json(e: &Error) -> Value {
    let attempts: Vec<Value> = real_attempts(e)
        .into_iter()
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
    // A retry loop that gave up reports what kept failing; the give-up is a flag.
    let retries_exhausted = e.kind() == ErrorKind::RetriesExhausted;
    let shown = match std::error::Error::source(e).and_then(|s| s.downcast_ref::<Error>()) {
        Some(last) if retries_exhausted => last,
        _ => e,
    };
    json!({
        "error": {
            "kind": shown.kind().as_str(),
            "retries_exhausted": retries_exhausted,
            "message": shown.message(),
            "provider": shown.provider(),
            "status": shown.status(),
            "code": shown.code(),
            "retry_after_s": e.retry_after().map(|d| d.as_secs_f64()),
            "fix": e.fix(),
            "partial_text": e.partial().map(ChatResponse::text),
            "cause": cause_json(e),
            "attempts": attempts,
        }
    })
}

/// Returns every attempt behind `e` in order, each as the error a provider really gave: a
/// fallback chain's targets, and inside each target every try a retry loop made.
fn real_attempts(e: &Error) -> Vec<&Error> {
    e.attempt_errors()
        .iter()
        .flat_map(|a| {
            if a.attempt_errors().is_empty() {
                vec![a]
            } else {
                real_attempts(a)
            }
        })
        .collect()
}

/// Describes the underlying error (e.g. the provider's error behind an interrupted stream).
fn cause_json(e: &Error) -> Value {
    match std::error::Error::source(e).and_then(|s| s.downcast_ref::<Error>()) {
        Some(cause) => json!({
            "kind": cause.kind().as_str(),
            "message": cause.message(),
            "status": cause.status(),
            "code": cause.code(),
        }),
        None => Value::Null,
    }
}

/// Exit code for a failed call: 2 for problems the user must fix locally, 1 otherwise.
pub(crate) fn exit_code(e: &Error) -> u8 {
    match e.kind() {
        ErrorKind::Config | ErrorKind::Unsupported => 2,
        ErrorKind::InvalidRequest if e.status().is_none() => 2,
        _ => 1,
    }
}

/// Writes `text` and a newline to stdout; see [`written`] for a reader that went away.
pub(crate) fn say(text: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    written(writeln!(out, "{text}").and_then(|()| out.flush()));
}

/// Handles the outcome of a write to stdout. When the reader has gone away
/// (`switchboard models | head`) the program ends at once, quietly and with status 0, as
/// the tools it is piped beside expect; `println!` would panic there instead. Other write
/// errors (a full disk) are left to the caller's exit status.
pub(crate) fn written(result: std::io::Result<()>) {
    if let Err(e) = result {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// Prints an error: one JSON object on stdout with `--json`, else [`error_text`] on stderr.
pub(crate) fn print_error(e: &Error, json: bool) {
    if json {
        say(error_json(e));
    } else {
        eprintln!("error: {}", error_text(e));
    }
}

/// Renders an error for people.
///
/// A retry loop that gave up after its only attempt (`--retries 0`) adds nothing to what the
/// provider said, so the provider's own error is shown in its place, as `--json` does; the
/// same holds for each target of a failed fallback chain.
pub(crate) fn error_text(e: &Error) -> String {
    let e = own_error(e);
    let attempts = e.attempt_errors();
    let full = e.to_string();
    if attempts.is_empty() {
        return full;
    }
    // The error's own line, without the attempt lines its `Display` appends.
    let mut out = match full.split_once("\n  attempt 1: ") {
        Some((head, _)) => head.to_owned(),
        None => full,
    };
    for (i, attempt) in attempts.iter().enumerate() {
        let text = error_text(attempt).replace('\n', "\n  ");
        out.push_str(&format!("\n  attempt {}: {text}", i + 1));
    }
    out
}

/// Returns the error to show for `e`: the only attempt of a retry loop that gave up, else `e`.
fn own_error(e: &Error) -> &Error {
    match e.attempt_errors() {
        [only] if e.kind() == ErrorKind::RetriesExhausted => own_error(only),
        _ => e,
    }
}

/// Renders a JSON value as plain text for tables (strings without quotes, null as `-`).
pub(crate) fn plain(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A text table with aligned columns.
#[derive(Debug)]
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Starts a table with these column names.
    pub(crate) fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub(crate) fn row(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Prints the table to stdout.
    pub(crate) fn print(&self) {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let w = widths.get(i).copied().unwrap_or(0);
                if i + 1 == cells.len() {
                    out.push_str(cell);
                } else {
                    out.push_str(&format!("{cell:<w$}  "));
                }
            }
            out.trim_end().to_owned()
        };
        // A closed pipe (`| head`) ends the program quietly.
        let mut out = std::io::stdout().lock();
        written(writeln!(out, "{}", line(&self.header)));
        for row in &self.rows {
            written(writeln!(out, "{}", line(row)));
        }
        written(out.flush());
    }
}
