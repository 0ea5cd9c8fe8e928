//! Responses API errors → [`Error`].
//!
//! HTTP error bodies have the same `{"error": {message, type, param, code}}` shape as Chat
//! Completions, so they go through the one OpenAI mapping (`openai::error::map_error`, or
//! its Azure variant). What is specific here are the errors reported inside a 200 answer: a `failed`
//! response's `error` object, and the stream's `error` event, whose codes include a few the
//! Chat Completions mapping does not know (`invalid_prompt`, the image errors,
//! `vector_store_timeout`).
//!
//! References: <https://platform.openai.com/docs/api-reference/responses/object> (`error`)
//! and <https://platform.openai.com/docs/api-reference/responses-streaming/error>.

use serde_json::Value;

use crate::error::{Error, ErrorKind};
use crate::providers::openai::error as openai_error;

/// Builds the error for an error object reported in a 200 answer (a `failed` response, or
/// a stream's `error` / `response.failed` event); it counts as the provider's failure.
pub(crate) fn reported_error(provider: &str, error: &Value) -> Error {
    // The stream's `error` event carries `"type": "error"` beside the code; that word says
    // nothing about the kind, so it must not stand in for a missing code.
    let mut error = error.clone();
    if let Value::Object(map) = &mut error {
        if map.get("type").and_then(Value::as_str) == Some("error") {
            map.remove("type");
        }
    }
    let err = openai_error::reported_error(provider, &error);
    let Some(kind) = err.code().and_then(responses_kind) else {
        return err;
    };
    if kind == err.kind() {
        return err;
    }
    let fix = match kind {
        ErrorKind::ContentFiltered => "use another image; the provider's safety system refused it",
        ErrorKind::Timeout => "retry, or let a fallback answer",
        _ => "fix the request as the message says",
    };
    let code = err.code().unwrap_or_default().to_owned();
    Error::new(kind, err.message())
        .with_provider(provider)
        .with_code(code)
        .with_fix(fix)
        .from_provider()
}

/// The kinds of the Responses-only error codes.
fn responses_kind(code: &str) -> Option<ErrorKind> {
    match code {
        "image_content_policy_violation" => Some(ErrorKind::ContentFiltered),
        "vector_store_timeout" => Some(ErrorKind::Timeout),
        "invalid_prompt"
        | "invalid_image"
        | "invalid_image_format"
        | "invalid_base64_image"
        | "invalid_image_url"
        | "invalid_image_mode"
        | "image_too_large"
        | "image_too_small"
        | "image_parse_error"
        | "image_file_too_large"
        | "unsupported_image_media_type"
        | "empty_image_file"
        | "failed_to_download_image"
        | "image_file_not_found" => Some(ErrorKind::InvalidRequest),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stream_error_codes_map_to_kinds() {
        let kind = |code: &str| {
            reported_error(
                "p",
                &json!({"type": "error", "code": code, "message": "m", "param": null}),
            )
            .kind()
        };
        assert_eq!(kind("insufficient_quota"), ErrorKind::QuotaExceeded);
        assert_eq!(kind("rate_limit_exceeded"), ErrorKind::RateLimited);
        assert_eq!(kind("server_error"), ErrorKind::Server);
        assert_eq!(kind("invalid_prompt"), ErrorKind::InvalidRequest);
        assert_eq!(kind("vector_store_timeout"), ErrorKind::Timeout);
        assert_eq!(kind("context_length_exceeded"), ErrorKind::ContextLength);
    }

    #[test]
    fn reported_errors_count_as_the_providers_failure() {
        let err = reported_error("p", &json!({"code": "invalid_prompt", "message": "no"}));
        assert_eq!(err.code(), Some("invalid_prompt"));
        assert!(err.is_recoverable());
        let err = reported_error("p", &json!({"type": "error", "message": "boom"}));
        assert_eq!(err.kind(), ErrorKind::Server);
        assert_eq!(err.code(), None);
    }
}
