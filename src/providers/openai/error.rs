//! OpenAI error bodies (and the looser shapes compatible servers send) → [`Error`].
//!
//! Every status first gets its default kind, `Retry-After` and fix from
//! [`status_error`]; the body then refines the kind: context length, content policy and
//! exhausted quota look like ordinary 400s and 429s by status alone.
//!
//! Reference: <https://platform.openai.com/docs/guides/error-codes>.

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::error::{Error, ErrorKind};
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
    err
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
    err
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
