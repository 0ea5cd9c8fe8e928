//! The one error type of the library: an opaque [`Error`] with a public [`ErrorKind`].
//!
//! Every failure — a provider's HTTP error, a dropped connection, a budget refusal, a bad
//! config — is an [`Error`]. Callers branch on [`Error::kind`]; wrappers such as
//! [`FallbackClient`](crate::FallbackClient) use [`Error::is_recoverable`] to decide whether
//! another provider might succeed. The error is one pointer wide, so `Result<T>` stays small.
//!
//! Errors never carry request headers or keys: providers build them from status codes and
//! response bodies only, and every secret the process holds (see [`redact`](crate::redact))
//! is blanked out of the message, fix and code when the error is built and out of its
//! whole `Display` and `Debug` text when it is printed, so an upstream that echoes a key
//! cannot leak it through an error.

use std::fmt;
use std::time::Duration;

use crate::redact::{scrub, scrub_owned};
use crate::types::{Capability, ChatResponse, MissingCapability};

/// The longest wait an error may ask for: one day. A longer `Retry-After`, `retry-after-ms`,
/// `retryDelay` or "try again in" hint is clamped to it, so later arithmetic on the wait
/// (an instant plus the wait) can never overflow.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, coarsely enough to decide what to do next.
///
/// The kinds fall in three groups: the caller must change something (invalid request,
/// authentication, …), another try or another provider may succeed (rate limited, overloaded,
/// server, timeout, transport, …), and failures raised by Switchboard's own wrappers
/// (retries exhausted, all targets failed, budget exceeded, circuit open).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request was malformed or used an unsupported parameter (HTTP 400, 422), was too
    /// large for the provider (HTTP 413, said so in the message), or Switchboard refused to
    /// build it.
    InvalidRequest,
    /// The key was missing, wrong or revoked (HTTP 401).
    Authentication,
    /// The key is valid but may not use this model or endpoint (HTTP 403).
    PermissionDenied,
    /// The model or endpoint does not exist (HTTP 404).
    NotFound,
    /// The prompt plus the requested output exceeds the model's context window.
    ContextLength,
    /// The provider's safety system refused the prompt or the answer.
    ContentFiltered,
    /// Too many requests or tokens per minute (HTTP 429); waiting helps.
    RateLimited,
    /// The account is out of credit or quota (OpenAI `insufficient_quota`); waiting does not help.
    QuotaExceeded,
    /// The provider is temporarily overloaded (Anthropic 529, HTTP 409/425).
    Overloaded,
    /// The provider failed (HTTP 5xx, including a 504 from a gateway that gave up waiting;
    /// the raw status stays in [`Error::status`]).
    Server,
    /// A connect, request, first-token or idle timeout fired (or HTTP 408), or a call waited
    /// past a [`ConcurrencyLimitClient`](crate::ConcurrencyLimitClient)'s max wait.
    Timeout,
    /// The connection failed or broke before a response arrived.
    Transport,
    /// The provider's reply could not be understood.
    Decode,
    /// A stream failed after part of the answer had been delivered; see [`Error::partial`].
    StreamInterrupted,
    /// A retry wrapper gave up; [`Error::source`](std::error::Error::source) is the last error.
    RetriesExhausted,
    /// Every target of a fallback chain failed; see [`Error::attempt_errors`].
    AllTargetsFailed,
    /// A budget refused the call before any money was spent: what was already spent (or
    /// the time or trials used) leaves no room for it. Waiting does not help.
    BudgetExceeded,
    /// A budget refused the call only because calls still in flight hold reservations on
    /// it: what was spent leaves room, and once those calls settle (usually below their
    /// worst case) the call may fit. The budget first waits briefly for room
    /// ([`BudgetBuilder::max_wait`](crate::middleware::BudgetBuilder::max_wait)); the error
    /// carries a `retry_after` hint. Try again after it.
    BudgetHeld,
    /// A circuit breaker is open for this target, so it was not called.
    CircuitOpen,
    /// The configuration is incomplete or wrong (a missing key, an unknown provider).
    Config,
    /// The target cannot serve what the request uses (tools, a JSON schema, images,
    /// documents, audio, a prompt this long, a prefill), so it was not called; see
    /// [`Error::missing_capability`]. Raised by [`FallbackClient`](crate::FallbackClient)
    /// when no target can serve the request.
    Unsupported,
}

impl ErrorKind {
    /// Returns a short `snake_case` name, stable for logs and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Authentication => "authentication",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::NotFound => "not_found",
            ErrorKind::ContextLength => "context_length",
            ErrorKind::ContentFiltered => "content_filtered",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::QuotaExceeded => "quota_exceeded",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Server => "server",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Transport => "transport",
            ErrorKind::Decode => "decode",
            ErrorKind::StreamInterrupted => "stream_interrupted",
            ErrorKind::RetriesExhausted => "retries_exhausted",
            ErrorKind::AllTargetsFailed => "all_targets_failed",
            ErrorKind::BudgetExceeded => "budget_exceeded",
            ErrorKind::BudgetHeld => "budget_held",
            ErrorKind::CircuitOpen => "circuit_open",
            ErrorKind::Config => "config",
            ErrorKind::Unsupported => "unsupported",
        }
    }

    /// Returns every kind, in declaration order (handy for tables and tests).
    pub fn all() -> &'static [ErrorKind] {
        &[
            ErrorKind::InvalidRequest,
            ErrorKind::Authentication,
            ErrorKind::PermissionDenied,
            ErrorKind::NotFound,
            ErrorKind::ContextLength,
            ErrorKind::ContentFiltered,
            ErrorKind::RateLimited,
            ErrorKind::QuotaExceeded,
            ErrorKind::Overloaded,
            ErrorKind::Server,
            ErrorKind::Timeout,
            ErrorKind::Transport,
            ErrorKind::Decode,
            ErrorKind::StreamInterrupted,
            ErrorKind::RetriesExhausted,
            ErrorKind::AllTargetsFailed,
            ErrorKind::BudgetExceeded,
            ErrorKind::BudgetHeld,
            ErrorKind::CircuitOpen,
            ErrorKind::Config,
            ErrorKind::Unsupported,
        ]
    }

    /// Says whether trying the same provider again, after a pause, may succeed.
    ///
    /// [`ErrorKind::BudgetHeld`] is not among them: the budget already waited for room
    /// before refusing, so a retry loop around it would only hold the call longer; its
    /// caller (for the gateway, the HTTP client) tries again after the `retry_after`.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::Overloaded
                | ErrorKind::Server
                | ErrorKind::Timeout
                | ErrorKind::Transport
        )
    }

    /// Maps an HTTP error status to its default kind (before any body is looked at).
    ///
    /// Protocol error mappers refine this from the body (context length, content policy,
    /// quota), but every status lands on a kind here first.
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            400 | 413 | 422 => ErrorKind::InvalidRequest,
            401 => ErrorKind::Authentication,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            408 => ErrorKind::Timeout,
            409 | 425 | 529 => ErrorKind::Overloaded,
            429 => ErrorKind::RateLimited,
            500..=599 => ErrorKind::Server,
            _ => ErrorKind::InvalidRequest,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::InvalidRequest => "invalid request",
            ErrorKind::Authentication => "authentication failed",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::NotFound => "not found",
            ErrorKind::ContextLength => "context length exceeded",
            ErrorKind::ContentFiltered => "content filtered",
            ErrorKind::RateLimited => "rate limited",
            ErrorKind::QuotaExceeded => "quota exceeded",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Server => "server error",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Transport => "transport error",
            ErrorKind::Decode => "could not decode the reply",
            ErrorKind::StreamInterrupted => "stream interrupted",
            ErrorKind::RetriesExhausted => "retries exhausted",
            ErrorKind::AllTargetsFailed => "all targets failed",
            ErrorKind::BudgetExceeded => "budget exceeded",
            ErrorKind::BudgetHeld => "budget held by calls in flight",
            ErrorKind::CircuitOpen => "circuit open",
            ErrorKind::Config => "configuration error",
            ErrorKind::Unsupported => "unsupported by the target",
        })
    }
}

/// The error type of every fallible operation in Switchboard.
///
/// Opaque on purpose: read it through [`kind`](Error::kind), [`provider`](Error::provider),
/// [`status`](Error::status), [`retry_after`](Error::retry_after) and the standard
/// [`source`](std::error::Error::source). Build one in a
/// [`FunctionClient`](crate::FunctionClient) with [`Error::new`] or [`Error::from_status`].
///
/// # Examples
/// ```
/// use switchboard::{Error, ErrorKind};
///
/// let err = Error::from_status("primary", 503, "primary provider is unavailable");
/// assert_eq!(err.kind(), ErrorKind::Server);
/// assert_eq!(err.status(), Some(503));
/// assert!(err.is_recoverable());
/// ```
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    message: String,
    provider: Option<String>,
    model: Option<String>,
    status: Option<u16>,
    retry_after: Option<Duration>,
    fix: Option<String>,
    code: Option<String>,
    source: Option<BoxError>,
    attempts: Vec<Error>,
    partial: Option<ChatResponse>,
    missing: Option<Capability>,
    from_provider: bool,
    skipped: bool,
}

impl Error {
    /// Creates an error of `kind` with a message that says what happened.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error(Box::new(Inner {
            kind,
            message: scrub_owned(message.into()),
            provider: None,
            model: None,
            status: None,
            retry_after: None,
            fix: None,
            code: None,
            source: None,
            attempts: Vec::new(),
            partial: None,
            missing: None,
            from_provider: false,
            skipped: false,
        }))
    }

    /// Creates the error a provider's HTTP error status means, with the default kind for
    /// that status (see [`ErrorKind::from_status`]).
    pub fn from_status(
        provider: impl Into<String>,
        status: u16,
        message: impl Into<String>,
    ) -> Error {
        Error::new(ErrorKind::from_status(status), message)
            .with_provider(provider)
            .with_status(status)
    }

    /// Sets the provider the error came from.
    #[must_use]
    pub fn with_provider(mut self, provider: impl Into<String>) -> Error {
        self.0.provider = Some(provider.into());
        self
    }

    /// Sets the model the failed call was for.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Error {
        self.0.model = Some(model.into());
        self
    }

    /// Sets the HTTP status the provider answered with.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Error {
        self.0.status = Some(status);
        self
    }

    /// Sets how long the provider asked us to wait before trying again; a wait longer than
    /// one day is kept as one day.
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: Duration) -> Error {
        self.0.retry_after = Some(retry_after.min(MAX_RETRY_AFTER));
        self
    }

    /// Sets a sentence that tells the caller how to fix the problem.
    #[must_use]
    pub fn with_fix(mut self, fix: impl Into<String>) -> Error {
        self.0.fix = Some(scrub_owned(fix.into()));
        self
    }

    /// Sets the provider's own error code or type (e.g. `insufficient_quota`).
    #[must_use]
    pub fn with_code(mut self, code: impl Into<String>) -> Error {
        self.0.code = Some(scrub_owned(code.into()));
        self
    }

    /// Sets the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Error {
        self.0.source = Some(source.into());
        self
    }

    /// Returns what kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// Returns the message, without provider, status or fix decorations.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Returns the provider that failed, when a provider was involved.
    pub fn provider(&self) -> Option<&str> {
        self.0.provider.as_deref()
    }

    /// Returns the model the failed call was for, when known.
    pub fn model(&self) -> Option<&str> {
        self.0.model.as_deref()
    }

    /// Returns the HTTP status the provider answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        self.0.status
    }

    /// Returns how long the provider asked us to wait, from `Retry-After`, `retry-after-ms`
    /// or a body field such as Gemini's `retryDelay`.
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }

    /// Returns the hint on how to fix the problem, if there is one.
    pub fn fix(&self) -> Option<&str> {
        self.0.fix.as_deref()
    }

    /// Returns the provider's own error code or type, if it sent one.
    pub fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }

    /// Returns every attempt's error, in order: for [`ErrorKind::AllTargetsFailed`] and
    /// [`ErrorKind::RetriesExhausted`], and for any error a retry loop or fallback chain
    /// stopped on after earlier attempts had failed (then the list ends with a copy of the
    /// error itself). Empty for an error of one attempt.
    pub fn attempt_errors(&self) -> &[Error] {
        &self.0.attempts
    }

    /// Returns the part of the answer that arrived before a stream broke
    /// ([`ErrorKind::StreamInterrupted`]). Its [`attempts`](ChatResponse::attempts) list
    /// every attempt of the call so far, the interrupted one last, as failed.
    pub fn partial(&self) -> Option<&ChatResponse> {
        self.0.partial.as_ref()
    }

    /// Returns the capability a target lacked, for [`ErrorKind::Unsupported`] errors about
    /// one target (each of the [`attempt_errors`](Error::attempt_errors) of a chain none of
    /// whose targets could serve the request).
    pub fn missing_capability(&self) -> Option<Capability> {
        self.0.missing
    }

    /// Says whether the target was skipped without being called: it had asked callers to
    /// wait ([`CooldownClient`](crate::CooldownClient)). Such an error is not retried by
    /// default and does not count against a circuit breaker, and a
    /// [`FallbackClient`](crate::FallbackClient) records it as a skipped attempt.
    pub fn is_skip(&self) -> bool {
        self.0.skipped
    }

    /// Marks the error as a target skipped without being called (see [`Error::is_skip`]).
    pub(crate) fn marked_skip(mut self) -> Error {
        self.0.skipped = true;
        self
    }

    /// Says whether trying the same target again, after a pause, may succeed.
    pub fn is_retryable(&self) -> bool {
        if self.0.kind == ErrorKind::RetriesExhausted || self.0.kind == ErrorKind::AllTargetsFailed
        {
            return false;
        }
        self.0.kind.is_retryable()
    }

    /// Says whether another provider may succeed where this one failed: the default rule of
    /// [`FallbackClient`](crate::FallbackClient).
    ///
    /// True for every failure that came from a provider or the way to it — any HTTP error
    /// status or error reported inside a provider's reply, transport, timeout, decode of a provider's reply, retries exhausted, circuit
    /// open, and unsupported (another target may have what this one lacks). False for errors raised before any provider was asked: a request Switchboard
    /// refused to build, a budget refusal, a configuration error.
    pub fn is_recoverable(&self) -> bool {
        match self.0.kind {
            ErrorKind::BudgetExceeded | ErrorKind::BudgetHeld | ErrorKind::Config => false,
            ErrorKind::InvalidRequest
            | ErrorKind::Authentication
            | ErrorKind::PermissionDenied
            | ErrorKind::NotFound
            | ErrorKind::ContextLength
            | ErrorKind::ContentFiltered => self.0.status.is_some() || self.0.from_provider,
            _ => true,
        }
    }

    // ---- crate-private constructors, named by kind -------------------------------------

    /// Marks an error as the provider's answer even though it came without an HTTP error
    /// status (an in-stream error event, a blocked prompt in a 200 reply), so fallback
    /// treats it like any other provider failure.
    #[allow(clippy::wrong_self_convention)]
    pub(crate) fn from_provider(mut self) -> Error {
        self.0.from_provider = true;
        self
    }

    pub(crate) fn invalid_request(message: impl Into<String>, fix: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidRequest, message).with_fix(fix)
    }

    pub(crate) fn config(message: impl Into<String>, fix: impl Into<String>) -> Error {
        Error::new(ErrorKind::Config, message).with_fix(fix)
    }

    #[allow(dead_code)]
    pub(crate) fn decode(provider: &str, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Decode, message).with_provider(provider)
    }

    /// The error recorded for a target skipped because it lacks what the request needs.
    pub(crate) fn unsupported_by(provider: &str, model: &str, missing: MissingCapability) -> Error {
        let mut err = Error::new(
            ErrorKind::Unsupported,
            format!("skipped without calling it: {}", missing.detail),
        )
        .with_provider(provider)
        .with_model(model);
        err.0.missing = Some(missing.capability);
        err
    }

    /// The error of a chain none of whose targets could serve the request: one
    /// [`ErrorKind::Unsupported`] error per target, in order.
    pub(crate) fn unsupported_by_all(skips: Vec<Error>) -> Error {
        let mut lacked: Vec<String> = Vec::new();
        for skip in &skips {
            if let Some(cap) = skip.missing_capability() {
                let name = cap.as_str().to_owned();
                if !lacked.contains(&name) {
                    lacked.push(name);
                }
            }
        }
        let mut err = Error::new(
            ErrorKind::Unsupported,
            format!(
                "no target can serve this request (each lacks one of: {})",
                lacked.join(", ")
            ),
        )
        .with_fix("remove what the targets lack from the request (see each target below), or add a target whose model supports it");
        err.0.missing = skips.first().and_then(Error::missing_capability);
        err.0.attempts = skips;
        err
    }

    /// The error of a chain over `targets` targets that all failed or were skipped:
    /// [`ErrorKind::Unsupported`] when every target was skipped for a missing capability,
    /// else [`ErrorKind::AllTargetsFailed`].
    pub(crate) fn chain_failed(errors: Vec<Error>, targets: usize) -> Error {
        let all_unsupported = errors.len() == targets
            && errors
                .iter()
                .all(|e| e.kind() == ErrorKind::Unsupported && e.missing_capability().is_some());
        if all_unsupported {
            Error::unsupported_by_all(errors)
        } else {
            Error::all_targets_failed(errors)
        }
    }

    /// Returns this error with the errors of the attempts that failed before it, so a
    /// wrapper that stops on a non-retryable (or non-recoverable) error after earlier
    /// failures loses none of them. The result keeps this error's kind, message, provider,
    /// status, wait and fix, so callers branch on it as before; its
    /// [`attempt_errors`](Error::attempt_errors) are `earlier` followed by this error itself
    /// (which is also its `source()`). With no earlier errors it is returned unchanged.
    pub(crate) fn after_attempts(self, mut earlier: Vec<Error>) -> Error {
        if earlier.is_empty() {
            return self;
        }
        let last = &self.0;
        let mut err = Error(Box::new(Inner {
            kind: last.kind,
            message: last.message.clone(),
            provider: last.provider.clone(),
            model: last.model.clone(),
            status: last.status,
            retry_after: last.retry_after,
            fix: last.fix.clone(),
            code: last.code.clone(),
            source: None,
            attempts: Vec::new(),
            partial: last.partial.clone(),
            missing: last.missing,
            from_provider: last.from_provider,
            skipped: last.skipped,
        }));
        earlier.push(self);
        err.0.attempts = earlier;
        err
    }

    /// Gives mutable access to a [`ErrorKind::StreamInterrupted`] error's partial answer.
    pub(crate) fn partial_mut(&mut self) -> Option<&mut ChatResponse> {
        self.0.partial.as_mut()
    }

    pub(crate) fn all_targets_failed(attempts: Vec<Error>) -> Error {
        let n = attempts.len();
        let mut err = Error::new(
            ErrorKind::AllTargetsFailed,
            format!("all {n} targets failed"),
        )
        .with_fix("check each attempt's error below; add a fallback target or wait for the providers to recover");
        err.0.retry_after = attempts.iter().filter_map(Error::retry_after).min();
        err.0.attempts = attempts;
        err
    }

    /// Builds the error a retry wrapper returns when it stops trying: every attempt's error
    /// in order, the last one as `source()`, and the last one's provider, model, status and
    /// `retry_after` on the error itself. `reason` says why it stopped.
    pub(crate) fn retries_exhausted(errors: Vec<Error>, reason: &str) -> Error {
        let n = errors.len();
        let noun = if n == 1 { "attempt" } else { "attempts" };
        let mut err = Error::new(
            ErrorKind::RetriesExhausted,
            format!("gave up after {n} {noun}: {reason}"),
        )
        .with_fix("check each attempt's error below; raise the retry policy's limits, add a fallback target or wait for the provider to recover");
        if let Some(last) = errors.last() {
            err.0.provider.clone_from(&last.0.provider);
            err.0.model.clone_from(&last.0.model);
            err.0.status = last.0.status;
            err.0.retry_after = last.0.retry_after;
        }
        err.0.attempts = errors;
        err
    }

    pub(crate) fn stream_interrupted(cause: Error, partial: ChatResponse) -> Error {
        let provider = cause.provider().map(str::to_owned);
        let status = cause.status();
        let message = if partial.parts.is_empty() {
            format!(
                "the stream broke after its commit point, before any answer arrived: {}",
                cause.message()
            )
        } else {
            format!(
                "the stream broke after part of the answer arrived ({} characters of text): {}",
                partial.text().chars().count(),
                cause.message()
            )
        };
        let mut err = Error::new(ErrorKind::StreamInterrupted, message)
        .with_fix("the partial answer is in `Error::partial`; retry the whole request to get a complete one");
        err.0.provider = provider;
        err.0.status = status;
        err.0.code = cause.code().map(str::to_owned);
        err.0.retry_after = cause.retry_after();
        err.0.partial = Some(partial);
        err.0.source = Some(Box::new(cause));
        err
    }

    /// Returns the last attempt's error as this error's cause (for `source()`).
    fn last_attempt(&self) -> Option<&Error> {
        self.0.attempts.last()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&scrub(&Shown(self).to_string()))
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = if f.alternate() {
            format!("{:#?}", Raw(self))
        } else {
            format!("{:?}", Raw(self))
        };
        f.write_str(&scrub(&text))
    }
}

/// An error's `Display` text before secrets are scrubbed from it.
struct Shown<'a>(&'a Error);

/// An error's `Debug` text before secrets are scrubbed from it.
struct Raw<'a>(&'a Error);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.0 .0;
        if let Some(provider) = &inner.provider {
            write!(f, "{provider}: ")?;
        }
        write!(f, "{}", inner.kind)?;
        if let Some(status) = inner.status {
            write!(f, " (HTTP {status})")?;
        }
        if !inner.message.is_empty() {
            write!(f, ": {}", inner.message)?;
        }
        if let Some(wait) = inner.retry_after {
            write!(f, "; retry after {:.1}s", wait.as_secs_f64())?;
        }
        if let Some(fix) = &inner.fix {
            write!(f, "; fix: {fix}")?;
        }
        if !inner.attempts.is_empty() {
            for (i, attempt) in inner.attempts.iter().enumerate() {
                write!(f, "\n  attempt {}: {attempt}", i + 1)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.0 .0;
        let mut d = f.debug_struct("Error");
        d.field("kind", &inner.kind);
        d.field("message", &inner.message);
        if let Some(p) = &inner.provider {
            d.field("provider", p);
        }
        if let Some(m) = &inner.model {
            d.field("model", m);
        }
        if let Some(s) = inner.status {
            d.field("status", &s);
        }
        if let Some(r) = inner.retry_after {
            d.field("retry_after", &r);
        }
        if let Some(c) = &inner.code {
            d.field("code", c);
        }
        if !inner.attempts.is_empty() {
            d.field("attempts", &inner.attempts);
        }
        if let Some(s) = &inner.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        if let Some(source) = &self.0.source {
            return Some(source.as_ref());
        }
        self.last_attempt()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    fn _assert_impls() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Error>();
    }

    #[test]
    fn error_is_one_pointer_wide() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
        assert_eq!(
            std::mem::size_of::<Result<()>>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn a_registered_secret_never_shows_in_any_part_of_an_error() {
        const KEY: &str = "sk-error-unit-test-4Hq7Zt2Lw9";
        crate::redact::register(KEY);
        let cause = std::io::Error::other(format!("socket said {KEY}"));
        let attempt = Error::from_status("a", 401, format!("bad key {KEY}"))
            .with_fix(format!("rotate {KEY}"))
            .with_code(KEY)
            .with_source(cause);
        let err = Error::all_targets_failed(vec![attempt]);
        let texts = [
            err.to_string(),
            format!("{err:?}"),
            format!("{err:#?}"),
            err.attempt_errors()[0].message().to_owned(),
            err.attempt_errors()[0].fix().unwrap_or_default().to_owned(),
            err.attempt_errors()[0]
                .code()
                .unwrap_or_default()
                .to_owned(),
        ];
        for text in &texts {
            assert!(!text.contains(KEY), "{text}");
        }
        assert!(texts[0].contains("bad key [redacted]"), "{}", texts[0]);
    }

    #[test]
    fn display_names_provider_status_and_fix() {
        let err = Error::from_status("anthropic", 529, "Overloaded")
            .with_retry_after(Duration::from_secs(2))
            .with_fix("wait or fall back");
        assert_eq!(
            err.to_string(),
            "anthropic: overloaded (HTTP 529): Overloaded; retry after 2.0s; fix: wait or fall back"
        );
    }

    #[test]
    fn all_targets_failed_lists_attempts_and_sources_the_last() {
        let first = Error::from_status("a", 503, "down");
        let second =
            Error::from_status("b", 429, "slow down").with_retry_after(Duration::from_secs(3));
        let err = Error::all_targets_failed(vec![first, second]);
        assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
        assert_eq!(err.attempt_errors().len(), 2);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
        let source = err.source().expect("source").to_string();
        assert!(source.starts_with("b: rate limited"), "{source}");
        assert!(err
            .to_string()
            .contains("attempt 1: a: server error (HTTP 503): down"));
    }

    #[test]
    fn status_defaults_cover_the_documented_table() {
        let table = [
            (400, ErrorKind::InvalidRequest),
            (401, ErrorKind::Authentication),
            (403, ErrorKind::PermissionDenied),
            (404, ErrorKind::NotFound),
            (408, ErrorKind::Timeout),
            (409, ErrorKind::Overloaded),
            (413, ErrorKind::InvalidRequest),
            (425, ErrorKind::Overloaded),
            (429, ErrorKind::RateLimited),
            (500, ErrorKind::Server),
            (502, ErrorKind::Server),
            (503, ErrorKind::Server),
            (504, ErrorKind::Server),
            (529, ErrorKind::Overloaded),
        ];
        for (status, kind) in table {
            assert_eq!(ErrorKind::from_status(status), kind, "status {status}");
        }
    }

    #[test]
    fn kind_names_are_unique() {
        let mut names: Vec<_> = ErrorKind::all().iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::all().len());
    }
}
