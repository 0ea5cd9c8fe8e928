//! Anthropic error bodies (and in-stream `error` events) → [`Error`].
//!
//! See <https://docs.anthropic.com/en/api/errors>. The HTTP status decides the kind, as for
//! every protocol ([`ErrorKind::from_status`]); `error.type` refines it only where it says
//! more than the status can (context length, `overloaded_error`, `billing_error`), and decides
//! alone only for in-stream `error` events, which have no status.
//!
//! NOTE: the reference says `invalid_request_error` may also come with "other 4XX status
//! codes not listed", so that type must not turn a 408 or a 409 into an invalid request; and
//! `timeout_error` is the type of a 504, which is a server failure like every 5xx.
//!
//! Bodies that are not Anthropic's JSON (an HTML 502 from a proxy, an empty body) still map
//! by status and never panic.

use reqwest::header::HeaderMap;

use super::wire::ErrorEnvelope;
use crate::error::{Error, ErrorKind};
use crate::providers::http::status_error;

/// Maps a non-2xx reply to an error: kind from `error.type` (refined by the message for
/// context-length failures), status, `Retry-After`, a fix, and `error.type` as the code.
pub(crate) fn map_error(provider: &str, status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    let envelope: Option<ErrorEnvelope> = serde_json::from_slice(body).ok();
    let request_id = envelope.as_ref().and_then(|e| e.request_id.clone());
    let detail = envelope.and_then(|e| e.error);
    let Some(detail) = detail else {
        return status_error(provider, status, headers, describe_body(status, body));
    };
    let mut message = if detail.message.is_empty() {
        format!("HTTP {status} ({})", detail.kind)
    } else {
        detail.message.clone()
    };
    if let Some(id) = request_id {
        message.push_str(&format!(" (request id {id})"));
    }
    let base = status_error(provider, status, headers, message.clone());
    let kind = kind_of(&detail.kind, &detail.message, Some(status));
    let err = if kind == base.kind() {
        base
    } else {
        let mut err = Error::new(kind, message)
            .with_provider(provider)
            .with_status(status)
            .with_fix(fix_for(kind));
        if let Some(wait) = base.retry_after() {
            err = err.with_retry_after(wait);
        }
        err
    };
    if detail.kind.is_empty() {
        err
    } else {
        err.with_code(detail.kind)
    }
}

/// Maps an in-stream `error` event (no HTTP status: the reply itself was a 200) to an error
/// counted as the provider's answer.
pub(crate) fn stream_error(provider: &str, kind: &str, message: &str) -> Error {
    let error_kind = kind_of(kind, message, None);
    let message = if message.is_empty() {
        format!("the stream reported `{kind}`")
    } else {
        message.to_owned()
    };
    let err = Error::new(error_kind, message)
        .with_provider(provider)
        .with_fix(fix_for(error_kind))
        .from_provider();
    if kind.is_empty() {
        err
    } else {
        err.with_code(kind)
    }
}

/// Maps Anthropic's `error.type` and the HTTP status (when the error came with one) to a
/// kind.
fn kind_of(error_type: &str, message: &str, status: Option<u16>) -> ErrorKind {
    // Types that say more than any status can.
    match error_type {
        "invalid_request_error" if is_context_length(message) => return ErrorKind::ContextLength,
        "overloaded_error" => return ErrorKind::Overloaded,
        "billing_error" => return ErrorKind::QuotaExceeded,
        _ => {}
    }
    if let Some(status) = status {
        return ErrorKind::from_status(status);
    }
    match error_type {
        "invalid_request_error" | "request_too_large" => ErrorKind::InvalidRequest,
        "authentication_error" => ErrorKind::Authentication,
        "permission_error" => ErrorKind::PermissionDenied,
        "not_found_error" => ErrorKind::NotFound,
        "rate_limit_error" => ErrorKind::RateLimited,
        _ => ErrorKind::Server,
    }
}

/// Says whether an `invalid_request_error` message means the context window overflowed.
fn is_context_length(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("prompt is too long")
        || lower.contains("exceed context limit")
        || lower.contains("context window")
}

fn fix_for(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ContextLength => {
            "shorten the conversation or lower max_tokens, or fall back to a model with a larger context window"
        }
        ErrorKind::QuotaExceeded => "add credit to the Anthropic account or fall back to another provider",
        ErrorKind::Authentication => {
            "check the API key: set SWITCHBOARD_ANTHROPIC_API_KEY or ANTHROPIC_API_KEY"
        }
        ErrorKind::PermissionDenied => "the key may not use this model or feature; check its workspace and permissions",
        ErrorKind::NotFound => "check the model name and the base URL",
        ErrorKind::RateLimited => "wait and retry, lower the request rate, or fall back to another provider",
        ErrorKind::Overloaded | ErrorKind::Server => "retry later or fall back to another provider",
        _ => "fix the request as the message says",
    }
}

/// Describes a body that is not Anthropic's error JSON by its status and first characters.
fn describe_body(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let head: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    if head.is_empty() {
        format!("HTTP {status} with an empty body")
    } else {
        format!("HTTP {status} with a body that is not Anthropic's error JSON: {head}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_from_a_proxy_maps_by_status() {
        let err = map_error(
            "anthropic",
            502,
            &HeaderMap::new(),
            b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        );
        assert_eq!(err.kind(), ErrorKind::Server);
        assert_eq!(err.status(), Some(502));
        assert!(err.message().contains("502 Bad Gateway"), "{err}");
        assert_eq!(err.code(), None);
    }

    #[test]
    fn invalid_utf8_and_empty_bodies_do_not_panic() {
        let err = map_error("anthropic", 500, &HeaderMap::new(), &[0xff, 0xfe, 0x00]);
        assert_eq!(err.kind(), ErrorKind::Server);
        let err = map_error("anthropic", 503, &HeaderMap::new(), b"");
        assert!(err.message().contains("empty body"));
    }

    #[test]
    fn body_type_wins_over_status() {
        let body =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let err = map_error("anthropic", 500, &HeaderMap::new(), body);
        assert_eq!(err.kind(), ErrorKind::Overloaded);
        assert_eq!(err.code(), Some("overloaded_error"));
    }

    #[test]
    fn a_type_that_restates_a_class_defers_to_the_status() {
        let body =
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"Conflict"}}"#;
        let err = map_error("anthropic", 409, &HeaderMap::new(), body);
        assert_eq!(err.kind(), ErrorKind::Overloaded);
        assert_eq!(err.code(), Some("invalid_request_error"));
        let body =
            br#"{"type":"error","error":{"type":"timeout_error","message":"Request timed out"}}"#;
        let err = map_error("anthropic", 504, &HeaderMap::new(), body);
        assert_eq!(err.kind(), ErrorKind::Server);
        assert_eq!(err.status(), Some(504));
        assert_eq!(
            stream_error("anthropic", "timeout_error", "slow").kind(),
            ErrorKind::Server
        );
    }

    #[test]
    fn stream_error_counts_as_the_providers_answer() {
        let err = stream_error("anthropic", "invalid_request_error", "bad");
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert!(err.is_recoverable());
    }
}
