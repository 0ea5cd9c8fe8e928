//! [`FallbackClient`]: tries an ordered list of clients, moving on when one fails in a way
//! another provider might not.
//!
//! The failure it prevents: one provider's outage or rate limit taking your application
//! down with it. The primary is always tried first; the next target is tried only when the
//! error passes [`FallbackOn`]. Every response says who answered and who failed before
//! ([`ChatResponse::attempts`]); when every target fails, the error is
//! [`ErrorKind::AllTargetsFailed`] listing each attempt's error in order.
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
//! | `invalid_request` etc. raised locally, with no HTTP status | no |
//! | `budget_exceeded` | no |
//! | `config` | no |
//!
//! # Streams
//!
//! A stream may switch target only before its first content event (text, reasoning or a
//! tool call) reaches the caller. Metadata that arrives earlier (ids, usage) is held back
//! until then, so a provider that accepts the request and fails right away still falls
//! over invisibly. After the first content event, a failure ends the stream with
//! [`ErrorKind::StreamInterrupted`] carrying the partial answer; it never falls back.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::{self, StreamExt};

use crate::client::{BoxFuture, ChatClient, ClientInfo, DynClient};
use crate::error::{Error, ErrorKind, Result};
use crate::types::{
    Attempt, ChatRequest, ChatResponse, ChatStream, EmbedRequest, EmbedResponse, StreamEvent,
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
        }
    }

    pub(crate) fn from_first(
        first: DynClient,
        rest: Vec<DynClient>,
        fallback_on: FallbackOn,
    ) -> FallbackClient {
        let info = first.info().clone();
        let mut clients = vec![first];
        clients.extend(rest);
        FallbackClient {
            clients,
            fallback_on,
            info,
        }
    }

    /// Returns the clients, in the order they are tried.
    pub fn inner(&self) -> &[DynClient] {
        &self.clients
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
        Box::pin(async move {
            req.validate()?;
            let mut errors = Vec::new();
            let mut attempts = Vec::new();
            for client in &self.clients {
                let started = Instant::now();
                match client.chat(req).await {
                    Ok(mut response) => {
                        attempts.append(&mut response.attempts);
                        response.attempts = attempts;
                        return Ok(response);
                    }
                    Err(err) => {
                        attempts.push(self.failed(client, &err, started));
                        if !self.fallback_on.should_fall_back(&err) {
                            return Err(err);
                        }
                        tracing::warn!(
                            target_provider = client.info().provider(),
                            target_model = client.info().model(),
                            error = %err,
                            "fallback: target failed, trying the next"
                        );
                        errors.push(err);
                    }
                }
            }
            Err(Error::all_targets_failed(errors))
        })
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(async move {
            req.validate()?;
            let mut errors = Vec::new();
            let mut attempts: Vec<Attempt> = Vec::new();
            'targets: for client in &self.clients {
                let started = Instant::now();
                let mut stream = match client.chat_stream(req).await {
                    Ok(stream) => stream.into_inner(),
                    Err(err) => {
                        attempts.push(self.failed(client, &err, started));
                        if !self.fallback_on.should_fall_back(&err) {
                            return Err(err);
                        }
                        errors.push(err);
                        continue;
                    }
                };
                // Hold metadata until the first content event: before it, a failure may
                // still fall over without the caller seeing anything.
                let mut held = Vec::new();
                loop {
                    let failure = match stream.next().await {
                        Some(Ok(event)) => {
                            let commit =
                                event.is_content() || matches!(event, StreamEvent::Done { .. });
                            held.push(Ok(event));
                            if commit {
                                let before = std::mem::take(&mut attempts);
                                let out = stream::iter(held).chain(stream);
                                return Ok(ChatStream::new(out).map_response(move |r| {
                                    let mut all = before.clone();
                                    all.append(&mut r.attempts);
                                    r.attempts = all;
                                }));
                            }
                            continue;
                        }
                        Some(Err(err)) => err,
                        None => Error::new(
                            ErrorKind::Transport,
                            "the stream ended before any answer arrived",
                        )
                        .with_provider(client.info().provider()),
                    };
                    attempts.push(self.failed(client, &failure, started));
                    if !self.fallback_on.should_fall_back(&failure) {
                        return Err(failure);
                    }
                    errors.push(failure);
                    continue 'targets;
                }
            }
            Err(Error::all_targets_failed(errors))
        })
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        Box::pin(async move {
            let mut errors = Vec::new();
            for client in &self.clients {
                match client.embed(req).await {
                    Ok(response) => return Ok(response),
                    Err(err) if self.fallback_on.should_fall_back(&err) => errors.push(err),
                    Err(err) => return Err(err),
                }
            }
            Err(Error::all_targets_failed(errors))
        })
    }

    fn info(&self) -> &ClientInfo {
        &self.info
    }
}

/// Builds a [`FallbackClient`].
#[must_use]
#[derive(Debug)]
pub struct FallbackClientBuilder {
    clients: Vec<DynClient>,
    fallback_on: FallbackOn,
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
        Ok(FallbackClient::from_first(
            first,
            clients.collect(),
            self.fallback_on,
        ))
    }
}
