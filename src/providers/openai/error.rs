//! OpenAI error bodies (and the looser shapes compatible servers send) → [`Error`].
//!
//! Every status first gets its default kind, `Retry-After` and fix from
//! [`status_error`]; the body then refines the kind: context length, content policy and
//! exhausted quota look like ordinary 400s and 429s by status alone.
//!
//! Two refinements fill in what the status line lacks:
//! - A rate limit without a `Retry-After` header takes its wait from the message: OpenAI and
//!   Groq write it there ("Please try again in 1.574s", a Go-style duration, the same form
//!   as OpenAI's documented `x-ratelimit-reset-*` headers).
//! - OpenRouter's `error.metadata.raw` (what the upstream provider said) and
//!   `metadata.provider_name` are appended to its generic "Provider returned error".
//!
//! Reference: <https://platform.openai.com/docs/guides/error-codes>,
//! <https://platform.openai.com/docs/guides/rate-limits>,
//! <https://openrouter.ai/docs/api-reference/errors>.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::error::{Error, ErrorKind, MAX_RETRY_AFTER};
use crate::providers::http::status_error;

/// What an error body said, whatever its shape.
#[derive(Debug, Default)]
struct Detail {
    message: Option<String>,
    kind: Option<String>,
    code: Option<String>,
    /// A numeric `code` some servers use for the HTTP status (vLLM, OpenRouter).
    status: Option<u16>,
}

impl Detail {
    /// Reads an error body: `{"error": {...}}`, `{"error": "text"}`, a bare error object
    /// (`{"object": "error", "message": ...}`), FastAPI's `{"detail": ...}`, an array of any
    /// of these, or text.
    fn from_body(body: &[u8]) -> Detail {
        match serde_json::from_slice::<Value>(body) {
            Ok(value) => Detail::from_value(&value),
            Err(_) => {
                let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
                let text = text.trim();
                Detail {
                    message: (!text.is_empty()).then(|| text.to_owned()),
                    ..Detail::default()
                }
            }
        }
    }

    fn from_value(value: &Value) -> Detail {
        match value {
            Value::Array(items) => items.first().map(Detail::from_value).unwrap_or_default(),
            Value::String(text) => Detail {
                message: Some(text.clone()),
                ..Detail::default()
            },
            Value::Object(map) => {
                if let Some(inner) = map.get("error").filter(|v| !v.is_null()) {
                    return Detail::from_value(inner);
                }
                let text = |key: &str| match map.get(key) {
                    Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                };
                let message = text("message").or_else(|| match map.get("detail") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(other @ (Value::Array(_) | Value::Object(_))) => Some(other.to_string()),
                    _ => None,
                });
                let message = with_upstream(message, map.get("metadata"));
                let status = map
                    .get("code")
                    .and_then(Value::as_u64)
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| (400..600).contains(n));
                Detail {
                    message,
                    kind: text("type"),
                    code: text("code").filter(|_| status.is_none()),
                    status,
                }
            }
            _ => Detail::default(),
        }
    }

    /// Says whether the code or type equals `word`.
    fn is(&self, word: &str) -> bool {
        self.code.as_deref() == Some(word) || self.kind.as_deref() == Some(word)
    }

    fn message_has(&self, needle: &str) -> bool {
        self.message
            .as_deref()
            .is_some_and(|m| m.to_ascii_lowercase().contains(needle))
    }

    /// Refines `base` (the status's default kind) from the body.
    fn refine(&self, base: ErrorKind) -> ErrorKind {
        if self.is("insufficient_quota") {
            return ErrorKind::QuotaExceeded;
        }
        if self.is("context_length_exceeded")
            || self.is("string_above_max_length") && self.message_has("context")
            || self.message_has("maximum context length")
            || self.message_has("context length exceeded")
        {
            return ErrorKind::ContextLength;
        }
        if self.is("content_policy_violation")
            || self.is("content_filter")
            || self.message_has("content management policy")
        {
            return ErrorKind::ContentFiltered;
        }
        base
    }

    /// The kind an error reported without an HTTP status (mid-stream) stands for.
    fn stream_kind(&self) -> ErrorKind {
        let base = if let Some(status) = self.status {
            ErrorKind::from_status(status)
        } else if self.is("rate_limit_exceeded") || self.is("rate_limit_error") || self.is("tokens")
        {
            ErrorKind::RateLimited
        } else if self.is("overloaded_error") || self.is("overloaded") {
            ErrorKind::Overloaded
        } else if self.is("invalid_request_error") {
            ErrorKind::InvalidRequest
        } else if self.is("timeout") {
            ErrorKind::Timeout
        } else {
            ErrorKind::Server
        };
        self.refine(base)
    }

    fn code_or_type(&self) -> Option<&str> {
        self.code.as_deref().or(self.kind.as_deref())
    }
}

/// The most upstream detail kept in a message, in characters.
const UPSTREAM_CHARS: usize = 500;

/// Appends what an upstream provider said (OpenRouter's `metadata.raw`, named by
/// `metadata.provider_name`) to a gateway's generic message.
fn with_upstream(message: Option<String>, metadata: Option<&Value>) -> Option<String> {
    let Some(Value::Object(meta)) = metadata else {
        return message;
    };
    let raw = match meta.get("raw") {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Null) | None => return message,
        Some(other) => other.to_string(),
    };
    if raw.is_empty() {
        return message;
    }
    let raw: String = if raw.chars().count() > UPSTREAM_CHARS {
        raw.chars().take(UPSTREAM_CHARS).chain(['…']).collect()
    } else {
        raw
    };
    let upstream = match meta.get("provider_name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => format!("{name}: {raw}"),
        _ => raw,
    };
    Some(match message {
        Some(message) if message != upstream => format!("{message} ({upstream})"),
        _ => upstream,
    })
}

/// Reads the wait a rate-limit message asks for ("Please try again in 1.574s", "in 20ms",
/// "in 6m0s"): the Go-style duration after "try again in".
fn retry_hint(message: &str) -> Option<Duration> {
    const NEEDLE: &str = "try again in ";
    let lower = message.to_ascii_lowercase();
    let start = lower.find(NEEDLE)? + NEEDLE.len();
    go_duration(lower.get(start..)?)
}

/// Parses the Go-style duration at the start of `text` (`1h2m3.5s`, `250ms`), ignoring what
/// follows it; `None` when it does not start with one.
fn go_duration(text: &str) -> Option<Duration> {
    let mut rest = text;
    let mut secs = 0.0_f64;
    let mut parsed = false;
    loop {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            break;
        }
        let Ok(value) = rest[..digits].parse::<f64>() else {
            break;
        };
        let after = &rest[digits..];
        let (scale, unit_len) = if after.starts_with("ms") {
            (1e-3, 2)
        } else if after.starts_with("us") {
            (1e-6, 2)
        } else if after.starts_with("µs") {
            (1e-6, "µs".len())
        } else if after.starts_with("ns") {
            (1e-9, 2)
        } else if after.starts_with('h') {
            (3600.0, 1)
        } else if after.starts_with('m') {
            (60.0, 1)
        } else if after.starts_with('s') {
            (1.0, 1)
        } else {
            break;
        };
        secs += value * scale;
        parsed = true;
        rest = &after[unit_len..];
    }
    // Whole nanoseconds, rounded: 1.574 s is not exact in binary and would truncate to
    // 1.573999999 s.
    if !parsed {
        return None;
    }
    if secs >= MAX_RETRY_AFTER.as_secs_f64() {
        return Some(MAX_RETRY_AFTER);
    }
    Some(Duration::from_nanos((secs * 1e9).round() as u64))
}

/// Adds the wait a rate-limit message asks for, unless a header already gave one.
fn with_retry_hint(err: Error) -> Error {
    if err.kind() != ErrorKind::RateLimited || err.retry_after().is_some() {
        return err;
    }
    match retry_hint(err.message()) {
        Some(wait) => err.with_retry_after(wait),
        None => err,
    }
}

/// Builds the error for a non-2xx answer from its status, headers and body.
pub(crate) fn map_error(provider: &str, status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    let detail = Detail::from_body(body);
    let message = detail
        .message
        .clone()
        .unwrap_or_else(|| format!("HTTP {status} with no error message"));
    let base = status_error(provider, status, headers, message);
    let kind = match base.kind() {
        ErrorKind::RateLimited if detail.is("insufficient_quota") => ErrorKind::QuotaExceeded,
        ErrorKind::InvalidRequest => detail.refine(ErrorKind::InvalidRequest),
        other => other,
    };
    let mut err = if kind == base.kind() {
        base
    } else {
        let mut err = Error::new(kind, base.message())
            .with_provider(provider)
            .with_status(status)
            .with_fix(fix_for(kind));
        if let Some(wait) = base.retry_after() {
            err = err.with_retry_after(wait);
        }
        err
    };
    if let Some(code) = detail.code_or_type() {
        err = err.with_code(code);
    }
    with_retry_hint(err)
}

/// Builds the error for a non-2xx answer from Azure OpenAI: as [`map_error`], plus the
/// categories Azure's content filter flagged (`innererror.content_filter_result`) in the
/// message, and a fix naming Azure's credentials for a 401.
///
/// NOTE: Azure answers a filtered prompt with HTTP 400, `code: "content_filter"` and an
/// `innererror` holding per-category results
/// (<https://learn.microsoft.com/azure/ai-foundry/openai/concepts/content-filter>).
pub(crate) fn map_azure_error(
    provider: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Error {
    let err = map_error(provider, status, headers, body);
    match err.kind() {
        ErrorKind::ContentFiltered => {
            let flagged = filtered_categories(body);
            if flagged.is_empty() {
                return err;
            }
            let mut out = Error::new(
                ErrorKind::ContentFiltered,
                format!("{} (flagged: {})", err.message(), flagged.join(", ")),
            )
            .with_provider(provider)
            .with_status(status)
            .with_fix(fix_for(ErrorKind::ContentFiltered));
            if let Some(code) = err.code() {
                out = out.with_code(code.to_owned());
            }
            out
        }
        ErrorKind::Authentication => err.with_fix(
            "check the credentials: set SWITCHBOARD_AZURE_OPENAI_API_KEY or AZURE_OPENAI_API_KEY, \
             or give a fresh Entra ID token (AZURE_OPENAI_AD_TOKEN or a token provider)",
        ),
        _ => err,
    }
}

/// Names the categories Azure's content filter marked `filtered: true`.
fn filtered_categories(body: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let result = value
        .pointer("/error/innererror/content_filter_result")
        .or_else(|| value.pointer("/error/innererror/content_filter_results"));
    let Some(Value::Object(categories)) = result else {
        return Vec::new();
    };
    categories
        .iter()
        .filter(|(_, v)| v.get("filtered").and_then(Value::as_bool) == Some(true))
        .map(|(name, _)| name.clone())
        .collect()
}

/// Builds the error for an `{"error": ...}` object that arrived inside a 200 stream (or a
/// 200 body); it counts as the provider's failure.
pub(crate) fn reported_error(provider: &str, error: &Value) -> Error {
    let detail = Detail::from_value(error);
    let kind = detail.stream_kind();
    let message = detail
        .message
        .clone()
        .unwrap_or_else(|| "the provider reported an error without a message".to_owned());
    let mut err = Error::new(kind, message)
        .with_provider(provider)
        .with_fix(fix_for(kind))
        .from_provider();
    if let Some(code) = detail.code_or_type() {
        err = err.with_code(code);
    }
    with_retry_hint(err)
}

/// Looks for an error object in a 2xx body that has no answer in it.
pub(crate) fn error_in_body(provider: &str, body: &[u8]) -> Option<Error> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error").filter(|e| !e.is_null())?;
    Some(reported_error(provider, error))
}

fn fix_for(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ContextLength => {
            "shorten the conversation or lower max_tokens, or use a model with a larger context window"
        }
        ErrorKind::ContentFiltered => "rephrase the request; the provider's safety system refused it",
        ErrorKind::QuotaExceeded => {
            "add credit or raise the account's quota, or fall back to another provider; waiting does not help"
        }
        ErrorKind::RateLimited => {
            "wait and retry, lower the request rate, or fall back to another provider"
        }
        ErrorKind::InvalidRequest => "fix the request as the message says",
        _ => "retry later or fall back to another provider",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(status: u16, body: &str) -> Error {
        map_error("openai", status, &HeaderMap::new(), body.as_bytes())
    }

    #[test]
    fn odd_bodies_never_panic_and_keep_the_status_kind() {
        for body in [
            "",
            "<html>bad gateway</html>",
            "[]",
            "[1]",
            "null",
            "{\"error\":null}",
        ] {
            let err = map(502, body);
            assert_eq!(err.kind(), ErrorKind::Server, "{body}");
            assert!(!err.message().is_empty());
        }
    }

    #[test]
    fn bare_string_and_array_bodies_give_their_message() {
        assert_eq!(map(400, r#"{"error":"bad model"}"#).message(), "bad model");
        let err = map(400, r#"[{"error":{"message":"nope","code":"x"}}]"#);
        assert_eq!((err.message(), err.code()), ("nope", Some("x")));
    }

    #[test]
    fn vllm_error_object_with_numeric_code_is_read() {
        let err = map(
            400,
            r#"{"object":"error","message":"This model's maximum context length is 4096 tokens.","type":"BadRequestError","param":null,"code":400}"#,
        );
        assert_eq!(err.kind(), ErrorKind::ContextLength);
        assert_eq!(err.code(), Some("BadRequestError"));
    }

    #[test]
    fn go_durations_parse_and_anything_else_is_none() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration("1.574s. Visit"), Some(ms(1574)));
        assert_eq!(go_duration("0.3s"), Some(ms(300)));
        assert_eq!(go_duration("20ms"), Some(ms(20)));
        assert_eq!(go_duration("6m0s"), Some(ms(360_000)));
        assert_eq!(go_duration("1h2m3.5s"), Some(ms(3_723_500)));
        assert_eq!(go_duration("1.5µs"), Some(Duration::from_nanos(1500)));
        for bad in ["", "s", "soon", ".s", "1..2s", "-1s", "7 seconds", "1e400s"] {
            assert_eq!(go_duration(bad), None, "{bad}");
        }
        assert_eq!(retry_hint("Please try again in 7.66s."), Some(ms(7660)));
        assert_eq!(retry_hint("Please try again later."), None);
        // Waits past a day, even past what a Duration can hold, are a day.
        let huge = format!("{}h", "9".repeat(400));
        for long in ["99999999999999999999h", "25h", huge.as_str()] {
            assert_eq!(go_duration(long), Some(MAX_RETRY_AFTER), "{long}");
        }
    }

    #[test]
    fn stream_error_kind_comes_from_type_or_numeric_code() {
        let v: Value =
            serde_json::json!({"message": "slow", "type": "tokens", "code": "rate_limit_exceeded"});
        assert_eq!(reported_error("p", &v).kind(), ErrorKind::RateLimited);
        let v: Value = serde_json::json!({"message": "upstream", "code": 502});
        assert_eq!(reported_error("p", &v).kind(), ErrorKind::Server);
        let v: Value = serde_json::json!("oops");
        let err = reported_error("p", &v);
        assert_eq!((err.kind(), err.message()), (ErrorKind::Server, "oops"));
        assert!(err.is_recoverable());
    }
}
