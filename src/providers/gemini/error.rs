//! Gemini error bodies (`google.rpc.Status`) and HTTP statuses → [`Error`].
//!
//! The body is `{"error": {"code", "message", "status", "details": [...]}}`; some proxies wrap
//! it in a one-element array, and gateways in front of the API may answer with HTML or plain
//! text. All three are read without panicking.
//!
//! The HTTP code (or, inside a stream, the body's `code`) decides the kind, as for every
//! protocol ([`ErrorKind::from_status`]); the body refines it only where it says more than the
//! code can. The canonical `status` name decides alone only when no code came with it.
//!
//! | status | HTTP | kind |
//! |---|---|---|
//! | `INVALID_ARGUMENT`, `FAILED_PRECONDITION` | 400 | `InvalidRequest`; `ContextLength` when the message says the token count is too large; `Authentication` when `ErrorInfo.reason` is `API_KEY_INVALID` |
//! | `UNAUTHENTICATED` | 401 | `Authentication` |
//! | `PERMISSION_DENIED` | 403 | `PermissionDenied` |
//! | `NOT_FOUND` | 404 | `NotFound` |
//! | `RESOURCE_EXHAUSTED` | 429 | `RateLimited`, waiting `RetryInfo.retryDelay` unless `Retry-After` says otherwise |
//! | `INTERNAL` | 500 | `Server` |
//! | `UNAVAILABLE` | 503 | `Overloaded` when the message says the model is overloaded, else `Server` |
//! | `DEADLINE_EXCEEDED` | 504 | `Server`, like every 5xx: the service ran out of time, not the client |
//!
//! `UNAVAILABLE` with "overloaded" is the Gemini counterpart of Anthropic's 529, so it gets
//! the same kind; both are retryable and recoverable, so only dashboards see the difference.
//! A 413 keeps its `InvalidRequest` kind with a message that says the request was too large.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::wire::{ErrorEnvelope, ErrorStatus};
use crate::error::{Error, ErrorKind};
use crate::providers::http::{retry_after, too_large_message, wait_from_secs, TOO_LARGE_FIX};

/// Maps a non-2xx answer to an [`Error`] with the kind, status, retry hint and code.
pub(crate) fn map_error(provider: &str, status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    let parsed = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| envelope(&v));
    let rpc = match parsed {
        Some(rpc) => rpc,
        None => ErrorStatus {
            message: Some(body_excerpt(body, status)),
            ..ErrorStatus::default()
        },
    };
    let mut err = build(provider, Some(status), &rpc).with_status(status);
    if let Some(wait) = retry_after(headers).or_else(|| retry_delay(&rpc)) {
        err = err.with_retry_after(wait);
    }
    err
}

/// Maps an error object sent inside a stream (`data: {"error": {...}}`). The HTTP status was
/// 200, so the error carries none; it is marked as the provider's answer instead.
pub(crate) fn stream_error(provider: &str, value: &Value) -> Error {
    let rpc = envelope(value).unwrap_or_default();
    let mut err = build(provider, None, &rpc).from_provider();
    if let Some(wait) = retry_delay(&rpc) {
        err = err.with_retry_after(wait);
    }
    err
}

/// The error for a prompt Gemini refused to answer (`promptFeedback.blockReason`).
pub(crate) fn prompt_blocked(provider: &str, reason: &str) -> Error {
    Error::new(
        ErrorKind::ContentFiltered,
        format!("Gemini blocked the prompt (blockReason {reason}) and generated nothing"),
    )
    .with_provider(provider)
    .with_code(reason)
    .with_fix("rephrase the prompt, or relax `safetySettings` through the request's extra fields")
    .from_provider()
}

/// Says whether a JSON value is an error envelope, bare or in a one-element array.
pub(crate) fn is_error_value(value: &Value) -> bool {
    let first = match value {
        Value::Array(items) => items.first(),
        other => Some(other),
    };
    first.is_some_and(|v| v.get("error").is_some_and(Value::is_object))
}

fn envelope(value: &Value) -> Option<ErrorStatus> {
    let value = match value {
        Value::Array(items) => items.first()?,
        other => other,
    };
    value.get("error")?.as_object()?;
    serde_json::from_value::<ErrorEnvelope>(value.clone())
        .ok()
        .map(|e| e.error)
}

fn build(provider: &str, http: Option<u16>, rpc: &ErrorStatus) -> Error {
    let code = http.or_else(|| rpc.code.and_then(|c| u16::try_from(c).ok()));
    let message = rpc
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| match code {
            Some(c) => format!("Gemini answered with HTTP {c} and no message"),
            None => "Gemini reported an error without a message".to_owned(),
        });
    let kind = kind_of(rpc, code, &message);
    let mut err = if code == Some(413) {
        Error::new(kind, too_large_message(&message)).with_fix(TOO_LARGE_FIX)
    } else {
        Error::new(kind, message).with_fix(fix_for(kind))
    }
    .with_provider(provider);
    if let Some(status) = &rpc.status {
        err = err.with_code(status.clone());
    }
    err
}

fn kind_of(rpc: &ErrorStatus, code: Option<u16>, message: &str) -> ErrorKind {
    let reason_is = |wanted: &str| {
        rpc.details
            .iter()
            .any(|d| d.reason.as_deref() == Some(wanted))
    };
    if reason_is("API_KEY_INVALID") || reason_is("API_KEY_EXPIRED") {
        return ErrorKind::Authentication;
    }
    let lower = message.to_ascii_lowercase();
    let status = rpc.status.as_deref();
    let bad_argument = matches!(
        status,
        Some("INVALID_ARGUMENT") | Some("FAILED_PRECONDITION") | Some("OUT_OF_RANGE")
    );
    if (bad_argument || code == Some(400))
        && code.is_none_or(|c| c == 400)
        && mentions_token_limit(&lower)
    {
        return ErrorKind::ContextLength;
    }
    if (status == Some("UNAVAILABLE") || code == Some(503)) && lower.contains("overload") {
        return ErrorKind::Overloaded;
    }
    if let Some(code) = code.filter(|c| (400..600).contains(c)) {
        return ErrorKind::from_status(code);
    }
    match status {
        _ if bad_argument => ErrorKind::InvalidRequest,
        Some("UNAUTHENTICATED") => ErrorKind::Authentication,
        Some("PERMISSION_DENIED") => ErrorKind::PermissionDenied,
        Some("NOT_FOUND") => ErrorKind::NotFound,
        Some("RESOURCE_EXHAUSTED") => ErrorKind::RateLimited,
        Some("ABORTED") => ErrorKind::Overloaded,
        _ => ErrorKind::Server,
    }
}

/// Gemini says e.g. "The input token count (1200000) exceeds the maximum number of tokens
/// allowed (1048576)."
fn mentions_token_limit(lower: &str) -> bool {
    lower.contains("token") && (lower.contains("exceed") || lower.contains("too long"))
}

fn fix_for(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Authentication => {
            "check the API key: set SWITCHBOARD_GEMINI_API_KEY (or GEMINI_API_KEY / GOOGLE_API_KEY) to a key from Google AI Studio"
        }
        ErrorKind::PermissionDenied => {
            "the key may not use this model or endpoint; check its project and permissions"
        }
        ErrorKind::NotFound => "check the model name (e.g. `gemini-2.5-flash`) and the base URL",
        ErrorKind::ContextLength => "shorten the conversation or pick a model with a larger context window",
        ErrorKind::RateLimited => {
            "wait and retry, lower the request rate, or fall back to another provider"
        }
        ErrorKind::Overloaded | ErrorKind::Server => "retry later or fall back to another provider",
        ErrorKind::Timeout => "retry, or raise the timeout",
        _ => "fix the request as the message says",
    }
}

/// Reads `google.rpc.RetryInfo.retryDelay`, a protobuf Duration string such as `"37s"`.
fn retry_delay(rpc: &ErrorStatus) -> Option<Duration> {
    rpc.details
        .iter()
        .filter(|d| {
            d.type_url
                .as_deref()
                .is_none_or(|t| t.ends_with("google.rpc.RetryInfo"))
        })
        .find_map(|d| d.retry_delay.as_deref().and_then(parse_duration))
}

/// Parses a protobuf JSON Duration (`"37s"`, `"1.5s"`, `"0.250s"`), clamped like every
/// wait (see [`wait_from_secs`]).
fn parse_duration(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().strip_suffix('s')?.trim().parse().ok()?;
    if secs < 0.0 {
        return None;
    }
    wait_from_secs(secs)
}

/// The start of a body that is not a Google error envelope, for the message.
fn body_excerpt(body: &[u8], status: u16) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return format!("Gemini answered with HTTP {status} and an empty body");
    }
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_protobuf_strings() {
        assert_eq!(parse_duration("37s"), Some(Duration::from_secs(37)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("37"), None);
        assert_eq!(parse_duration("-1s"), None);
    }

    #[test]
    fn a_huge_or_odd_retry_delay_is_clamped_not_a_panic() {
        let day = crate::error::MAX_RETRY_AFTER;
        assert_eq!(parse_duration("1e20s"), Some(day));
        assert_eq!(parse_duration("infs"), Some(day));
        assert_eq!(parse_duration("NaNs"), None);
        assert_eq!(parse_duration("-infs"), None);
        let body = br#"{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1e20s"}]}}"#;
        let err = map_error("gemini", 429, &HeaderMap::new(), body);
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(err.retry_after(), Some(day));
    }

    #[test]
    fn array_wrapped_and_non_json_bodies_map_without_panicking() {
        let h = HeaderMap::new();
        let wrapped = br#"[{"error":{"code":404,"message":"no such model","status":"NOT_FOUND"}}]"#;
        let err = map_error("gemini", 404, &h, wrapped);
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.message(), "no such model");
        let err = map_error("gemini", 502, &h, b"<html>bad gateway</html>");
        assert_eq!(err.kind(), ErrorKind::Server);
        assert!(err.message().contains("bad gateway"));
        let err = map_error("gemini", 500, &h, b"");
        assert_eq!(err.kind(), ErrorKind::Server);
        let err = map_error("gemini", 400, &h, b"{\"error\": 7}");
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    }

    #[test]
    fn token_count_overflow_is_context_length() {
        let body = br#"{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#;
        let err = map_error("gemini", 400, &HeaderMap::new(), body);
        assert_eq!(err.kind(), ErrorKind::ContextLength);
        assert_eq!(err.code(), Some("INVALID_ARGUMENT"));
    }

    #[test]
    fn in_stream_errors_count_as_provider_failures() {
        let value = serde_json::json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}});
        assert!(is_error_value(&value));
        let err = stream_error("gemini", &value);
        assert_eq!(err.kind(), ErrorKind::Overloaded);
        assert_eq!(err.status(), None);
        assert!(err.is_recoverable());
        let err = stream_error(
            "gemini",
            &serde_json::json!({"error": {"code": 400, "message": "bad"}}),
        );
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert!(err.is_recoverable());
    }
}
