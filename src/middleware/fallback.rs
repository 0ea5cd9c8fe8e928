//! [`FallbackClient`]: tries an ordered list of clients, moving on when one fails in a way
//! another provider might not.
//!
//! The failure it prevents: one provider's outage or rate limit taking your application
//! down with it. The primary is always tried first; the next target is tried only when the
//! error passes [`FallbackOn`]. Every response says who answered and who failed before
//! ([`ChatResponse::attempts`]); when every target fails, the error is
//! [`ErrorKind::AllTargetsFailed`] listing each attempt's error in order. An error the
//! chain stops on (one [`FallbackOn`] does not pass) keeps its kind and lists the targets
//! that failed or were skipped before it in [`Error::attempt_errors`], itself last.
//!
//! # Default rule
//!
//! [`FallbackOn::default`] falls back on every failure that came from a provider or the way
//! to it, and on none raised before any provider was asked:
//!
//! | error kind | falls back by default |
//! | --- | --- |
//! | any provider HTTP error status (400, 401, 403, 404, 408, 409, 413, 422, 425, 429, 5xx, 529) | yes |
//! | `transport`, `timeout`, `decode` | yes |
//! | `rate_limited`, `quota_exceeded`, `overloaded`, `server` | yes |
//! | `retries_exhausted`, `circuit_open`, `all_targets_failed` (a nested chain) | yes |
//! | `stream_interrupted` (only possible before the commit point, see below) | yes |
//! | `unsupported` (a nested chain none of whose targets could serve the request) | yes |
//! | `invalid_request` etc. raised locally, with no HTTP status | no |
//! | `budget_exceeded`, `budget_held` | no |
//! | `config` | no |
//!
//! # Open circuit breakers
//!
//! Before calling a target the chain asks its [`ChatClient::readiness`]. A target whose
//! [`CircuitBreakerClient`](crate::CircuitBreakerClient) is open is skipped without being
//! called and recorded as an [`Outcome::Skipped`](crate::Outcome::Skipped) attempt with
//! [`ErrorKind::CircuitOpen`]; so is a target cooling down because its provider asked callers
//! to wait ([`CooldownClient`](crate::CooldownClient)), recorded with
//! [`ErrorKind::RateLimited`] and the time left. When every target is open, [`AllOpen`]
//! decides: wait for the one that recovers first and try it (the default), or fail at once
//! with the earliest `retry_after`.
//!
//! # Capabilities
//!
//! Before calling a target the chain also checks its
//! [`Capabilities`] ([`ClientInfo::capabilities`]) against what the
//! request uses: tools, a JSON schema answer, images, documents, audio, and the estimated
//! prompt size against the context window. A target that cannot serve the request is
//! skipped without being called and recorded as an [`Outcome::Skipped`](crate::Outcome::Skipped)
//! attempt with [`ErrorKind::Unsupported`] and the missing
//! [`Capability`](crate::Capability) in [`Attempt::missing`]. When every target is
//! skipped that way, the error is [`ErrorKind::Unsupported`], listing each target's reason
//! in [`Error::attempt_errors`] with a fix; when some were skipped and the others failed,
//! it is [`ErrorKind::AllTargetsFailed`] with the skips among the attempts. A chain reports
//! the union of its targets' capabilities, so an outer chain skips it only when none of its
//! targets could serve the request.
//!
//! # Streams
//!
//! A stream may switch target only before its commit point ([`CommitPoint`], set with
//! [`FallbackClientBuilder::commit_point`]); by default that is its first content event
//! (text, reasoning or a tool call). Events that arrive earlier (ids, usage) are held back
//! until then, so a provider that accepts the request and fails right away still falls
//! over invisibly. After the commit point, a failure ends the stream with
//! [`ErrorKind::StreamInterrupted`]: [`Error::partial`] holds the answer so far, and its
//! [`attempts`](ChatResponse::attempts) list every attempt, the interrupted one last as
//! failed. It never falls back, unless continuation is on.
//!
//! # Stream continuation
//!
//! With [`FallbackClientBuilder::continuation`] (off by default), a stream that breaks after
//! its commit point with partial text is resumed on the next target, after the one that
//! broke, that accepts a prefill ([`Capabilities::prefill`](crate::Capabilities::prefill):
//! Anthropic Messages does; Chat Completions, Responses and Gemini do not). It is sent the
//! conversation plus the text delivered so far as a final assistant message (without its
//! trailing whitespace, which Anthropic refuses), with reasoning turned off and
//! `max_tokens` lowered by what was already generated. The caller sees one stream: the
//! partial text, then the continuation's text (its leading whitespace dropped when the
//! delivered text ended in whitespace). The final [`StreamEvent::Done`](crate::StreamEvent::Done)
//! holds the joined text, the attempts of both targets (the interrupted one as failed, any
//! skipped in between) and, as usage, the **sum** of both targets' reports: the broken
//! target's output tokens are what it reported before breaking (often nothing, since most
//! providers report usage at the end), and the continuation's input tokens include the
//! prefilled text. Provider, model, ids and finish reason are the continuation's.
//! `Usage` events from the continuation likewise carry the running sum.
//!
//! A stream is never continued when the request asks for JSON or a JSON schema, when the
//! partial answer has a tool call (complete or cut in the middle), or when it has no text;
//! it then ends with [`ErrorKind::StreamInterrupted`] as without continuation. A target that
//! does not accept a prefill, or cannot serve the request, or whose breaker is open, is
//! skipped with its reason among the attempts; a continuation that fails before its own
//! commit point moves on to the next. When no target takes it, the stream ends with the
//! original [`ErrorKind::StreamInterrupted`], whose partial answer lists every attempt.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::commit::{self, CommitPoint};
use super::deadline::current_deadline;
use crate::client::{BoxFuture, ChatClient, ClientInfo, DynClient, Readiness};
use crate::error::{Error, ErrorKind, Result};
use crate::types::{
    Attempt, Capabilities, ChatRequest, ChatResponse, ChatStream, EmbedRequest, EmbedResponse,
};

/// Decides which errors make a [`FallbackClient`] try its next target.
#[derive(Clone, Default)]
pub enum FallbackOn {
    /// Falls back when [`Error::is_recoverable`] says so (the default; see the module docs).
    #[default]
    Recoverable,
    /// Falls back only on these kinds.
    Kinds(Vec<ErrorKind>),
    /// Falls back when the predicate returns true.
    Predicate(Arc<dyn Fn(&Error) -> bool + Send + Sync>),
}

impl FallbackOn {
    /// Falls back only on the given kinds.
    pub fn kinds(kinds: impl IntoIterator<Item = ErrorKind>) -> FallbackOn {
        FallbackOn::Kinds(kinds.into_iter().collect())
    }

    /// Falls back when `predicate` returns true.
    pub fn predicate(predicate: impl Fn(&Error) -> bool + Send + Sync + 'static) -> FallbackOn {
        FallbackOn::Predicate(Arc::new(predicate))
    }

    /// Says whether `error` should make the chain try its next target.
    pub fn should_fall_back(&self, error: &Error) -> bool {
        match self {
            FallbackOn::Recoverable => error.is_recoverable(),
            FallbackOn::Kinds(kinds) => kinds.contains(&error.kind()),
            FallbackOn::Predicate(p) => p(error),
        }
    }
}

impl fmt::Debug for FallbackOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FallbackOn::Recoverable => f.write_str("Recoverable"),
            FallbackOn::Kinds(k) => f.debug_tuple("Kinds").field(k).finish(),
            FallbackOn::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

/// What a [`FallbackClient`] does when every target's circuit breaker is open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AllOpen {
    /// Waits for the target that recovers first and tries it (the default). The wait never
    /// crosses the call's deadline: if it would, the chain fails at once instead.
    #[default]
    WaitForFirst,
    /// Fails at once with [`ErrorKind::AllTargetsFailed`], whose `retry_after` is the
    /// earliest time a target recovers.
    FailFast,
}

/// Tries an ordered list of clients until one answers.
///
/// # Clone
/// Clones share the clients (they are [`DynClient`]s), so state inside them — breakers,
/// budgets, histories — is shared too.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use switchboard::{ChatClient, ChatClientExt, ChatRequest, ChatResponse, Error, FallbackClient, FunctionClient};
///
/// let primary = FunctionClient::new("primary", |_req: &ChatRequest| {
///     Err(Error::from_status("primary", 503, "primary provider is unavailable"))
/// });
/// let backup = FunctionClient::new("backup", |_req: &ChatRequest| {
///     Ok(ChatResponse::from_text("answered by the backup provider"))
/// });
/// let client = FallbackClient::new(vec![primary.clone().boxed(), backup.clone().boxed()])?;
/// let response = client.chat(&ChatRequest::user("hello")).await?;
/// assert_eq!(response.text(), "answered by the backup provider");
/// assert_eq!(response.attempts()[0].status, Some(503));
/// # Ok::<_, switchboard::Error>(()) }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct FallbackClient {
    clients: Vec<DynClient>,
    fallback_on: FallbackOn,
    when_all_open: AllOpen,
    commit_point: CommitPoint,
    continuation: bool,
    info: ClientInfo,
}

impl FallbackClient {
    /// Creates a chain over `clients`, tried in order, with the default [`FallbackOn`].
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when `clients` is empty.
    pub fn new(clients: Vec<DynClient>) -> Result<FallbackClient> {
        FallbackClient::builder().clients(clients).build()
    }

    /// Starts a builder.
    pub fn builder() -> FallbackClientBuilder {
        FallbackClientBuilder {
            clients: Vec::new(),
            fallback_on: FallbackOn::default(),
            when_all_open: AllOpen::default(),
            commit_point: CommitPoint::default(),
            continuation: false,
        }
    }

    pub(crate) fn from_first(
        first: DynClient,
        rest: Vec<DynClient>,
        fallback_on: FallbackOn,
    ) -> FallbackClient {
        let first_info = first.info().clone();
        let mut clients = vec![first];
        clients.extend(rest);
        let info = chain_info(first_info, &clients);
        FallbackClient {
            clients,
            fallback_on,
            when_all_open: AllOpen::default(),
            commit_point: CommitPoint::default(),
            continuation: false,
            info,
        }
    }

    /// Returns the clients, in the order they are tried.
    pub fn inner(&self) -> &[DynClient] {
        &self.clients
    }

    /// Returns where a stream commits to the target serving it.
    pub fn commit_point(&self) -> CommitPoint {
        self.commit_point
    }

    /// Says whether a stream that breaks after its commit point is continued on the next
    /// target that accepts a prefill.
    pub fn continuation(&self) -> bool {
        self.continuation
    }

    /// Returns the clients, consuming the chain.
    pub fn into_inner(self) -> Vec<DynClient> {
        self.clients
    }

    fn failed(&self, client: &DynClient, err: &Error, started: Instant) -> Attempt {
        let info = client.info();
        Attempt::failure(info.provider(), info.model(), err, started.elapsed())
    }
}

impl ChatClient for FallbackClient {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(self.chat_in(req, None))
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(self.chat_stream_in(req, None))
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        Box::pin(self.embed_in(req, None))
    }

    fn info(&self) -> &ClientInfo {
        &self.info
    }

    fn readiness(&self) -> Readiness {
        Readiness::earliest(self.clients.iter().map(|c| c.readiness()))
    }
}

impl FallbackClient {
    /// Answers `req` trying the targets in `order` (indices into [`inner`](Self::inner);
    /// `None` is the chain's own order): what a
    /// [`BalancedClient`](super::BalancedClient) calls after choosing the order.
    pub(crate) async fn chat_in(
        &self,
        req: &ChatRequest,
        order: Option<&[usize]>,
    ) -> Result<ChatResponse> {
        req.validate()?;
        let (mut response, mut attempts, _) = self
            .drive(Some(req), order, |client| client.chat(req))
            .await?;
        attempts.append(&mut response.attempts);
        response.attempts = attempts;
        Ok(response)
    }

    /// Streams `req` trying the targets in `order`; see [`chat_in`](Self::chat_in).
    pub(crate) async fn chat_stream_in(
        &self,
        req: &ChatRequest,
        order: Option<&[usize]>,
    ) -> Result<ChatStream> {
        req.validate()?;
        let point = self.commit_point;
        let (stream, attempts, position) = self
            .drive(Some(req), order, |client| {
                Box::pin(async move {
                    let stream = client.chat_stream(req).await?;
                    commit::until(stream, client.info(), point).await
                })
            })
            .await?;
        let stream = commit::prepend_attempts(stream, attempts);
        if !self.continuation {
            return Ok(stream);
        }
        let backups = match order {
            Some(order) => order
                .iter()
                .skip(position + 1)
                .filter_map(|&i| self.clients.get(i).cloned())
                .collect(),
            None => self.clients.iter().skip(position + 1).cloned().collect(),
        };
        let resume = continuation::Resume {
            req: req.clone(),
            backups,
            point,
            fallback_on: self.fallback_on.clone(),
        };
        Ok(continuation::resume(stream, resume))
    }

    /// Embeds trying the targets in `order`; see [`chat_in`](Self::chat_in).
    pub(crate) async fn embed_in(
        &self,
        req: &EmbedRequest,
        order: Option<&[usize]>,
    ) -> Result<EmbedResponse> {
        let (mut response, mut attempts, _) =
            self.drive(None, order, |client| client.embed(req)).await?;
        attempts.append(&mut response.attempts);
        response.attempts = attempts;
        Ok(response)
    }

    /// Runs `call` on each target in `order` (every target in the chain's order when
    /// `None`) until one succeeds, skipping targets that cannot serve `req` or whose
    /// breaker is open; returns the answer, the earlier attempts' records and the position
    /// in the order of the target that answered.
    async fn drive<'a, T>(
        &'a self,
        req: Option<&ChatRequest>,
        order: Option<&[usize]>,
        call: impl Fn(&'a DynClient) -> BoxFuture<'a, Result<T>>,
    ) -> Result<(T, Vec<Attempt>, usize)> {
        let mut errors = Vec::new();
        let mut attempts: Vec<Attempt> = Vec::new();
        // The target that recovers first, among those skipped: (index, position, wait).
        let mut earliest: Option<(usize, usize, Duration)> = None;
        let mut called_any = false;
        let count = order.map_or(self.clients.len(), <[usize]>::len);
        for position in 0..count {
            let index = order.map_or(position, |order| order[position]);
            let Some(client) = self.clients.get(index) else {
                continue;
            };
            if let Some(err) = req.and_then(|req| unsupported(client, req)) {
                tracing::warn!(
                    target_provider = client.info().provider(),
                    target_model = client.info().model(),
                    error = %err,
                    "fallback: target cannot serve the request, skipping it"
                );
                attempts.push(Attempt::skipped(
                    client.info().provider(),
                    client.info().model(),
                    &err,
                ));
                errors.push(err);
                continue;
            }
            let readiness = client.readiness();
            let wait = readiness.wait();
            if !wait.is_zero() {
                let err = skipped_error(client, readiness, wait);
                attempts.push(Attempt::skipped(
                    client.info().provider(),
                    client.info().model(),
                    &err,
                ));
                errors.push(err);
                if earliest.is_none_or(|(_, _, w)| wait < w) {
                    earliest = Some((index, position, wait));
                }
                continue;
            }
            called_any = true;
            match self.attempt(client, &call, &mut attempts).await {
                Ok(value) => return Ok((value, attempts, position)),
                Err(err) if self.fallback_on.should_fall_back(&err) => errors.push(err),
                Err(err) => return Err(err.after_attempts(errors)),
            }
        }
        if let (false, AllOpen::WaitForFirst, Some((index, position, wait))) =
            (called_any, self.when_all_open, earliest)
        {
            let fits = current_deadline().is_none_or(|d| tokio::time::Instant::now() + wait < d);
            if let (true, Some(client)) = (fits, self.clients.get(index)) {
                tracing::warn!(
                    target_provider = client.info().provider(),
                    target_model = client.info().model(),
                    wait_ms = wait.as_millis() as u64,
                    "fallback: every target's breaker is open; waiting for the first to recover"
                );
                tokio::time::sleep(wait).await;
                match self.attempt(client, &call, &mut attempts).await {
                    Ok(value) => return Ok((value, attempts, position)),
                    Err(err) if self.fallback_on.should_fall_back(&err) => errors.push(err),
                    Err(err) => return Err(err.after_attempts(errors)),
                }
            }
        }
        Err(Error::chain_failed(errors, self.clients.len()))
    }

    /// Calls one target and records the attempt if it fails.
    async fn attempt<'a, T>(
        &'a self,
        client: &'a DynClient,
        call: &impl Fn(&'a DynClient) -> BoxFuture<'a, Result<T>>,
        attempts: &mut Vec<Attempt>,
    ) -> Result<T> {
        let started = Instant::now();
        let err = match call(client).await {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        let info = client.info();
        attempts.push(if err.kind() == ErrorKind::CircuitOpen || err.is_skip() {
            Attempt::skipped(info.provider(), info.model(), &err)
        } else {
            self.failed(client, &err, started)
        });
        if self.fallback_on.should_fall_back(&err) {
            tracing::warn!(
                target_provider = info.provider(),
                target_model = info.model(),
                error = %err,
                "fallback: target failed, trying the next"
            );
        }
        Err(err)
    }
}

/// The info of a chain over `clients`: the first target's names, and capabilities that
/// accept what any target accepts (so an outer chain skips this one only when no target of
/// it could serve the request).
pub(crate) fn chain_info(first: ClientInfo, clients: &[DynClient]) -> ClientInfo {
    let capabilities = clients
        .iter()
        .map(|c| *c.info().capabilities())
        .reduce(Capabilities::union)
        .unwrap_or_else(|| *first.capabilities());
    // The chain's endpoint names every target's, so a cache over the chain is keyed on all
    // of them.
    let endpoints: Vec<String> = clients
        .iter()
        .map(|c| {
            let info = c.info();
            format!("{info}@{}", info.endpoint().unwrap_or(""))
        })
        .collect();
    first
        .with_capabilities(capabilities)
        .with_endpoint_text(endpoints.join(" | "))
}

/// The error recorded for a target skipped because its capabilities cannot serve `req`.
pub(crate) fn unsupported(client: &DynClient, req: &ChatRequest) -> Option<Error> {
    let info = client.info();
    let missing = info.capabilities().check(req).err()?;
    Some(Error::unsupported_by(
        info.provider(),
        info.model(),
        missing,
    ))
}

/// The error recorded for a target skipped because it is not ready: its breaker is open,
/// or it is cooling down after its provider asked callers to wait.
pub(crate) fn skipped_error(client: &DynClient, readiness: Readiness, wait: Duration) -> Error {
    let info = client.info();
    if let Readiness::CoolingDown(_) = readiness {
        return super::cooldown::skip_error(info, wait);
    }
    Error::new(
        ErrorKind::CircuitOpen,
        format!(
            "skipped without calling it: its circuit breaker is open for another {:.1}s",
            wait.as_secs_f64()
        ),
    )
    .with_provider(info.provider())
    .with_model(info.model())
    .with_retry_after(wait)
}

/// Builds a [`FallbackClient`].
#[must_use]
#[derive(Debug)]
pub struct FallbackClientBuilder {
    clients: Vec<DynClient>,
    fallback_on: FallbackOn,
    when_all_open: AllOpen,
    commit_point: CommitPoint,
    continuation: bool,
}

impl FallbackClientBuilder {
    /// Adds one client at the end of the order.
    pub fn client(mut self, client: DynClient) -> FallbackClientBuilder {
        self.clients.push(client);
        self
    }

    /// Adds clients at the end of the order.
    pub fn clients(
        mut self,
        clients: impl IntoIterator<Item = DynClient>,
    ) -> FallbackClientBuilder {
        self.clients.extend(clients);
        self
    }

    /// Sets which errors make the chain move on.
    pub fn fallback_on(mut self, fallback_on: FallbackOn) -> FallbackClientBuilder {
        self.fallback_on = fallback_on;
        self
    }

    /// Sets what happens when every target's breaker is open (default
    /// [`AllOpen::WaitForFirst`]).
    pub fn when_all_open(mut self, when_all_open: AllOpen) -> FallbackClientBuilder {
        self.when_all_open = when_all_open;
        self
    }

    /// Sets where a stream commits to the target serving it (default
    /// [`CommitPoint::FirstContent`]). Before it, a failure falls over invisibly; after it,
    /// a failure ends the stream with [`ErrorKind::StreamInterrupted`] (or is continued,
    /// see [`continuation`](Self::continuation)).
    pub fn commit_point(mut self, point: CommitPoint) -> FallbackClientBuilder {
        self.commit_point = point;
        self
    }

    /// Turns stream continuation on or off (default off): a stream that breaks after its
    /// commit point with partial text is resumed on the next target that accepts a prefill.
    /// See the [module docs](self#stream-continuation).
    pub fn continuation(mut self, on: bool) -> FallbackClientBuilder {
        self.continuation = on;
        self
    }

    /// Builds the chain.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when no client was added.
    pub fn build(self) -> Result<FallbackClient> {
        let mut clients = self.clients.into_iter();
        let first = clients.next().ok_or_else(|| {
            Error::config(
                "a FallbackClient needs at least one client, and got none",
                "pass the clients to try, in order, e.g. `FallbackClient::new(vec![primary, backup])`",
            )
        })?;
        let mut chain = FallbackClient::from_first(first, clients.collect(), self.fallback_on);
        chain.when_all_open = self.when_all_open;
        chain.commit_point = self.commit_point;
        chain.continuation = self.continuation;
        Ok(chain)
    }
}

mod continuation;

#[cfg(test)]
mod tests;
