//! [`Error`] → HTTP status + OpenAI error JSON: the gateway's one error mapping.
//!
//! | what happened | status | `type` / `code` |
//! | --- | --- | --- |
//! | bad JSON, a bad field, an upstream 400 about the request | 400 | `invalid_request_error` |
//! | a model name that could reshape an upstream URL (`/`, `..`, `?`, `#`, `%`, …) | 400 | `invalid_request_error` / `invalid_model` |
//! | missing or wrong gateway key | 401 | `authentication_error` / `invalid_api_key` |
//! | unknown model or alias | 404 | `invalid_request_error` / `model_not_found` |
//! | body over `max_body_bytes` | 413 | `invalid_request_error` / `request_too_large` |
//! | no target of the route can serve what the request uses (tools, images, its size, …) | 400 | `invalid_request_error` / `unsupported` |
//! | every target rate limited (or out of quota) | 429 + `Retry-After` | `rate_limit_error` |
//! | every target unavailable (5xx, overloaded, timeout, open breaker) | 503 + `Retry-After` | `server_error` / `all_targets_unavailable` |
//! | the route's budget is spent | 429 | `budget_exceeded`, `x-should-retry: false` |
//! | the route's budget is held by in-flight reservations | 429 + `Retry-After` | `budget_held`, `x-should-retry: true` |
//! | upstream refused our credentials, or its reply was unreadable | 502 | `upstream_error` |
//! | the whole-request deadline passed | 504 | `timeout` |
//! | still unanswered when the shutdown grace period ended | 503 + `Retry-After` | `server_error` / `shutting_down` |
//!
//! | a wrong method on an endpoint | 405 + `Allow` | `invalid_request_error` / `method_not_allowed` |
//! | a request body not all sent within `body_read_timeout_ms` | 408 | `invalid_request_error` / `request_timeout` |
//! | a bug: a handler panicked | 500 | `server_error` / `internal_error` |
//!
//! `Retry-After` is the earliest wait any target asked for; when none said, 503 answers
//! carry 1 second. Messages are the library's error text (provider, status, fix, each
//! attempt); they never include keys or headers.
//!
//! When the gateway already made more than one upstream attempt for the request (its
//! route retried or fell back), every error answer carries `x-should-retry: false`: the
//! route's policy has had its go, and an SDK retrying on top would multiply upstream calls
//! (the OpenAI SDKs honour the header).
//! attempt) with fixes written for HTTP clients ([`http_text`]: a fix naming a Rust API
//! is replaced or dropped); they never include keys or headers.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use switchboard::providers::openai::wire;
use switchboard::{Error, ErrorKind};

/// The header the OpenAI SDKs read to decide whether to retry, over their own rules.
const SHOULD_RETRY_HEADER: HeaderName = HeaderName::from_static("x-should-retry");

/// An error as the gateway answers it.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    message: String,
    kind: &'static str,
    code: Option<String>,
    param: Option<String>,
    retry_after: Option<Duration>,
    /// `x-should-retry`, when the gateway says: `Some(false)` for a refusal waiting does
    /// not cure or a request already retried upstream, `Some(true)` for one it does.
    should_retry: Option<bool>,
    pub(crate) error_kind: Option<ErrorKind>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            kind,
            code: None,
            param: None,
            retry_after: None,
            should_retry: None,
            error_kind: None,
        }
    }

    fn code(mut self, code: impl Into<String>) -> ApiError {
        self.code = Some(code.into());
        self
    }

    /// A 400 about the request the client sent, naming the parameter at fault.
    pub(crate) fn invalid(message: impl Into<String>, param: Option<&str>) -> ApiError {
        let mut e = ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message);
        e.param = param.map(str::to_owned);
        e
    }

    /// A 401 for a missing or wrong gateway key.
    pub(crate) fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", message)
            .code("invalid_api_key")
    }

    /// A 404 for a model or alias the gateway does not serve.
    pub(crate) fn model_not_found(message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(StatusCode::NOT_FOUND, "invalid_request_error", message)
            .code("model_not_found");
        e.param = Some("model".to_owned());
        e
    }

    /// A 400 for a model name the library refused to put in an upstream URL (see
    /// `switchboard::providers` path checks): the client's request is at fault.
    pub(crate) fn bad_model(err: &Error) -> ApiError {
        ApiError::invalid(err.to_string(), Some("model")).with_code_of(err)
    }

    /// A 404 for a path the gateway does not serve.
    pub(crate) fn no_route(path: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("no endpoint at `{path}`; the gateway serves /v1/chat/completions, /v1/messages, /v1/messages/count_tokens, /v1/responses, /v1/embeddings, /v1/models, /health and /metrics"),
        )
        .code("unknown_url")
    }

    /// A 503 for a request still unanswered when the shutdown grace period ran out.
    pub(crate) fn shut_down() -> ApiError {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "the gateway shut down before this request was answered; send it again",
        )
        .code("shutting_down");
        e.retry_after = Some(Duration::from_secs(1));
        e
    }

    /// A 405 for a method the endpoint does not take; the router adds the `Allow` header.
    pub(crate) fn method_not_allowed(method: &str, path: &str) -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            format!("`{path}` does not take {method} requests; the `Allow` header lists the methods it takes"),
        )
        .code("method_not_allowed")
    }

    /// A 408 for a request body that did not arrive whole in time.
    pub(crate) fn body_timed_out(limit: std::time::Duration) -> ApiError {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            format!("the request body did not arrive within {} ms; send it whole without pauses, or raise `server.body_read_timeout_ms`", limit.as_millis()),
        )
        .code("request_timeout")
    }

    /// A 500 for a handler that panicked: a bug in the gateway, never the client's fault.
    pub(crate) fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the gateway failed while handling this request (an internal error, logged on the server); send it again, and report it if it repeats",
        )
        .code("internal_error")
    }

    /// A 413 for a body over the limit.
    pub(crate) fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            format!("the request body is larger than the gateway's limit of {limit} bytes; send less, or raise `server.max_body_bytes`"),
        )
        .code("request_too_large")
    }

    /// Tells the client not to retry: the gateway already made `attempts` (more than one)
    /// upstream calls for this request under the route's policy.
    pub(crate) fn already_retried(mut self) -> ApiError {
        self.should_retry = Some(false);
        self
    }

    /// Maps a library error to its status and body (see the module table).
    pub(crate) fn from_error(err: &Error) -> ApiError {
        let mut api = match err.kind() {
            ErrorKind::AllTargetsFailed => aggregate(err),
            _ => single(err),
        };
        api.message = http_text(err);
        api.error_kind = Some(err.kind());
        if api.status == StatusCode::TOO_MANY_REQUESTS
            || api.status == StatusCode::SERVICE_UNAVAILABLE
        {
            api.retry_after = err.retry_after();
            if api.retry_after.is_none() && api.status == StatusCode::SERVICE_UNAVAILABLE {
                api.retry_after = Some(Duration::from_secs(1));
            }
        }
        api
    }

    /// The OpenAI error body.
    pub(crate) fn body(&self) -> wire::ErrorResponse {
        wire::ErrorResponse {
            error: wire::ErrorObject {
                message: self.message.clone(),
                kind: Some(self.kind.to_owned()),
                param: self.param.clone(),
                code: self.code.clone(),
            },
        }
    }

    /// The error as one SSE event, for a stream that fails after it started.
    pub(crate) fn sse_event(&self) -> String {
        let json = serde_json::to_string(&self.body()).unwrap_or_else(|_| {
            "{\"error\":{\"message\":\"stream failed\",\"type\":\"server_error\"}}".to_owned()
        });
        format!("data: {json}\n\n")
    }

    /// The message, saying what went wrong and how to fix it.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// The parameter at fault, when the request was.
    #[cfg(test)]
    pub(crate) fn param(&self) -> Option<&str> {
        self.param.as_deref()
    }

    /// Says which kind of failure this was, for metrics.
    pub(crate) fn kind_label(&self) -> &'static str {
        match self.error_kind {
            Some(kind) => kind.as_str(),
            None => match self.status.as_u16() {
                503 => "gateway_shut_down",
                401 => "gateway_unauthorized",
                404 => "gateway_not_found",
                405 => "gateway_method_not_allowed",
                408 => "gateway_body_timeout",
                413 => "gateway_too_large",
                500 => "gateway_internal",
                _ => "gateway_invalid_request",
            },
        }
    }
}

/// Renders a library error for an HTTP client: its usual text, with every fix (its own
/// and its attempts') that names a Rust API rewritten in HTTP terms, or dropped.
pub(crate) fn http_text(err: &Error) -> String {
    let mut text = err.to_string();
    let mut pending = vec![err];
    while let Some(e) = pending.pop() {
        if let Some(fix) = e.fix() {
            if names_rust_api(fix) {
                let from = format!("; fix: {fix}");
                let to = http_fix(fix)
                    .map(|f| format!("; fix: {f}"))
                    .unwrap_or_default();
                text = text.replace(&from, &to);
            }
        }
        pending.extend(e.attempt_errors());
        if let Some(cause) = std::error::Error::source(e).and_then(|s| s.downcast_ref::<Error>()) {
            pending.push(cause);
        }
    }
    text
}

/// The message a panic carried, for the log.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Says whether a fix is written for Rust callers (a path, a builder or a method).
fn names_rust_api(fix: &str) -> bool {
    fix.contains("::") || fix.contains("`with_") || fix.contains("(..)")
}

/// The HTTP wording of a fix written for Rust callers, where there is one.
fn http_fix(fix: &str) -> Option<&'static str> {
    const REWRITES: [(&str, &str); 5] = [
        ("ChatRequest::user", "send at least one message in `messages`"),
        (
            "Message::tool_result",
            "send each tool result as a message with `\"role\": \"tool\"`, the `tool_call_id` it answers and its `content`",
        ),
        ("`with_tool`", "declare the tool in `tools`, or name one of the declared tools in `tool_choice`"),
        ("Error::partial", "send the request again to get a complete answer"),
        (".embed(", "ask for a model that makes embeddings"),
    ];
    REWRITES
        .iter()
        .find(|(marker, _)| fix.contains(marker))
        .map(|(_, http)| *http)
}

/// Maps one error (not a fallback summary).
fn single(err: &Error) -> ApiError {
    let upstream = |status: StatusCode, code: &str| {
        ApiError::new(status, "upstream_error", String::new()).code(code.to_owned())
    };
    match err.kind() {
        ErrorKind::InvalidRequest if err.status() == Some(413) => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error", "")
                .code("request_too_large")
        }
        ErrorKind::InvalidRequest => ApiError::invalid("", None).with_code_of(err),
        ErrorKind::ContextLength => {
            ApiError::invalid("", Some("messages")).code("context_length_exceeded")
        }
        ErrorKind::ContentFiltered => ApiError::invalid("", None).code("content_filter"),
        ErrorKind::Unsupported => ApiError::invalid("", None).code("unsupported"),
        ErrorKind::RateLimited => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", "")
                .code("rate_limit_exceeded")
        }
        ErrorKind::QuotaExceeded => {
            let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "insufficient_quota", "")
                .code("insufficient_quota");
            e.should_retry = Some(false);
            e
        }
        ErrorKind::BudgetExceeded => {
            let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "budget_exceeded", "")
                .code("budget_exceeded");
            e.should_retry = Some(false);
            e
        }
        ErrorKind::BudgetHeld => {
            let mut e =
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "budget_held", "").code("budget_held");
            e.should_retry = Some(true);
            e
        }
        ErrorKind::Overloaded
        | ErrorKind::Server
        | ErrorKind::Transport
        | ErrorKind::CircuitOpen => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", "")
                .code("upstream_unavailable")
        }
        ErrorKind::Timeout if err.status().is_none() => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout", "").code("timeout")
        }
        ErrorKind::Timeout => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", "")
            .code("upstream_timeout"),
        ErrorKind::Authentication | ErrorKind::PermissionDenied => {
            upstream(StatusCode::BAD_GATEWAY, "upstream_credentials_refused")
        }
        ErrorKind::NotFound => upstream(StatusCode::BAD_GATEWAY, "upstream_model_not_found"),
        ErrorKind::Decode | ErrorKind::StreamInterrupted => {
            upstream(StatusCode::BAD_GATEWAY, "upstream_bad_reply")
        }
        ErrorKind::RetriesExhausted => {
            match std::error::Error::source(err).and_then(|s| s.downcast_ref::<Error>()) {
                Some(last) => single(last),
                None => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", "")
                    .code("upstream_unavailable"),
            }
        }
        ErrorKind::AllTargetsFailed => aggregate(err),
        _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "")
            .code(err.kind().as_str()),
    }
}

/// Maps "every target failed" from the attempts' own errors.
fn aggregate(err: &Error) -> ApiError {
    let attempts = err.attempt_errors();
    let mapped: Vec<ApiError> = attempts.iter().map(single).collect();
    if mapped.is_empty() {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", "")
            .code("all_targets_unavailable");
    }
    let all = |status: StatusCode| mapped.iter().all(|m| m.status == status);
    if all(StatusCode::TOO_MANY_REQUESTS) {
        // Every target refused for rate or money: one 429, retryable only if some target
        // would accept again after a wait.
        let retryable = mapped.iter().any(|m| m.should_retry != Some(false));
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", "").code(
            if retryable {
                "rate_limit_exceeded"
            } else {
                "insufficient_quota"
            },
        );
        if !retryable {
            e.should_retry = Some(false);
        }
        return e;
    }
    let unavailable = |m: &ApiError| {
        matches!(
            m.status,
            StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::TOO_MANY_REQUESTS
                | StatusCode::GATEWAY_TIMEOUT
        ) && m.should_retry != Some(false)
    };
    if mapped.iter().all(unavailable) {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", "")
            .code("all_targets_unavailable");
    }
    // A mix: the request's own fault wins (every target would refuse it), then the last error.
    mapped
        .iter()
        .find(|m| m.status == StatusCode::BAD_REQUEST || m.status == StatusCode::PAYLOAD_TOO_LARGE)
        .or_else(|| mapped.last())
        .cloned()
        .unwrap_or_else(|| ApiError::new(StatusCode::BAD_GATEWAY, "upstream_error", ""))
}

impl ApiError {
    fn with_code_of(mut self, err: &Error) -> ApiError {
        self.code = err.code().map(str::to_owned);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        self.respond(self.status, body)
    }
}

impl ApiError {
    /// Answers `body` (one dialect's error JSON) with `status` and this error's
    /// `Retry-After` and `x-should-retry` headers.
    pub(crate) fn respond(&self, status: StatusCode, body: Vec<u8>) -> Response {
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(wait) = self.retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                headers.insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        if let Some(retry) = self.should_retry {
            headers.insert(
                SHOULD_RETRY_HEADER,
                HeaderValue::from_static(if retry { "true" } else { "false" }),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(errors: Vec<Error>) -> Error {
        // Build "all targets failed" the way FallbackClient does, through a real chain.
        let clients: Vec<switchboard::DynClient> = errors
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                let e = std::sync::Mutex::new(Some(e));
                std::sync::Arc::new(switchboard::FunctionClient::new(
                    format!("t{i}"),
                    move |_r: &switchboard::ChatRequest| Err(e.lock().unwrap().take().unwrap()),
                )) as switchboard::DynClient
            })
            .collect();
        let chain = switchboard::FallbackClient::new(clients).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(switchboard::ChatClient::chat(
            &chain,
            &switchboard::ChatRequest::user("x"),
        ))
        .unwrap_err()
    }

    #[test]
    fn every_target_rate_limited_is_a_429_with_the_earliest_wait() {
        let err = failed(vec![
            Error::from_status("a", 429, "slow").with_retry_after(Duration::from_secs(7)),
            Error::from_status("b", 429, "slow").with_retry_after(Duration::from_secs(3)),
        ]);
        let api = ApiError::from_error(&err);
        assert_eq!(api.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(api.retry_after, Some(Duration::from_secs(3)));
    }

    #[test]
    fn a_mix_of_outages_and_rate_limits_is_a_503() {
        let err = failed(vec![
            Error::from_status("a", 503, "down"),
            Error::from_status("b", 429, "slow").with_retry_after(Duration::from_secs(2)),
        ]);
        let api = ApiError::from_error(&err);
        assert_eq!(api.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(api.retry_after, Some(Duration::from_secs(2)));
        assert_eq!(api.code.as_deref(), Some("all_targets_unavailable"));
    }

    #[test]
    fn an_upstream_context_length_error_is_the_clients_400() {
        let err = failed(vec![
            Error::new(ErrorKind::ContextLength, "too long").with_status(400),
            Error::from_status("b", 503, "down"),
        ]);
        let api = ApiError::from_error(&err);
        assert_eq!(api.status, StatusCode::BAD_REQUEST);
        assert_eq!(api.code.as_deref(), Some("context_length_exceeded"));
    }

    #[test]
    fn messages_for_http_clients_name_no_rust_api() {
        let no_messages = switchboard::ChatRequest::new(Vec::new())
            .validate()
            .unwrap_err();
        let text = http_text(&no_messages);
        assert!(
            text.contains("no messages") && text.contains("`messages`"),
            "{text}"
        );
        let undeclared = Error::new(ErrorKind::Server, "tool missing")
            .with_fix("add the tool with `with_tool` or choose one that is declared");
        let unknown = Error::new(ErrorKind::Server, "down").with_fix("call `Client::reset(..)`");
        let inside = failed(vec![undeclared, unknown]);
        for text in [http_text(&no_messages), http_text(&inside)] {
            assert!(!names_rust_api(&text), "{text}");
        }
        let text = http_text(&inside);
        assert!(text.contains("`tools`"), "{text}");
        assert!(text.contains("down") && !text.contains("reset"), "{text}");
    }

    #[test]
    fn a_request_no_target_can_serve_is_the_clients_400() {
        let err = Error::new(ErrorKind::Unsupported, "no target can serve this request");
        let api = ApiError::from_error(&err);
        assert_eq!(api.status, StatusCode::BAD_REQUEST);
        assert_eq!(api.code.as_deref(), Some("unsupported"));
    }

    #[test]
    fn refused_upstream_credentials_are_a_502_not_the_clients_401() {
        let err = failed(vec![Error::from_status("a", 401, "bad key")]);
        assert_eq!(ApiError::from_error(&err).status, StatusCode::BAD_GATEWAY);
    }
}
