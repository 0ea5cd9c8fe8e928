//! The [`ChatClient`] trait that every provider and every wrapper implements, and
//! [`ChatClientExt`] for composing wrappers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::middleware::{
    BreakerConfig, Budget, BudgetClient, CacheBackend, CachedClient, CircuitBreakerClient,
    ConcurrencyLimitClient, DeadlineClient, FallbackClient, FallbackOn, InstrumentedClient,
    RetryClient, RetryPolicy, TimeoutClient, Timeouts,
};
use crate::types::{
    Capabilities, ChatRequest, ChatResponse, ChatStream, EmbedRequest, EmbedResponse,
};

/// A boxed future that is `Send`, as [`ChatClient`]'s methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A shared, type-erased client: what wrappers hold and what stacks are built from.
pub type DynClient = Arc<dyn ChatClient>;

/// Names the provider and model a client talks to, for logs, errors, attempts and prices,
/// says what the target can accept ([`Capabilities`]), so a fallback chain can skip a
/// target that could not serve a request, and for an HTTP client also where it sends requests
/// and with which credential (as a fingerprint, never the credential itself).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientInfo {
    provider: String,
    model: String,
    capabilities: Capabilities,
    endpoint: Option<String>,
}

impl ClientInfo {
    /// Creates the info for a provider and model, with [`Capabilities::permissive`].
    pub fn new(provider: impl Into<String>, model: impl Into<String>) -> ClientInfo {
        ClientInfo {
            provider: provider.into(),
            model: model.into(),
            capabilities: Capabilities::permissive(),
            endpoint: None,
        }
    }

    /// Sets what the target can accept.
    #[must_use]
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> ClientInfo {
        self.capabilities = capabilities;
        self
    }

    /// Returns what the target can accept.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Records the base URL requests go to and a fingerprint of the credential they carry
    /// (see [`key_fingerprint`](crate::middleware::key_fingerprint)); a
    /// [`CachedClient`] keys its entries on it, so two endpoints or two accounts never share
    /// answers.
    #[must_use]
    pub fn with_endpoint(mut self, base_url: &str, credential: Option<&str>) -> ClientInfo {
        let base_url = base_url.trim().trim_end_matches('/');
        self.endpoint = Some(match credential {
            Some(fingerprint) => format!("{base_url} key:{fingerprint}"),
            None => base_url.to_owned(),
        });
        self
    }

    /// Sets the endpoint text as is (a wrapper over several clients joins theirs).
    #[must_use]
    pub(crate) fn with_endpoint_text(mut self, endpoint: String) -> ClientInfo {
        self.endpoint = Some(endpoint);
        self
    }

    /// Returns the base URL and credential fingerprint set by
    /// [`with_endpoint`](ClientInfo::with_endpoint), if any.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// Returns the provider's name.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Returns the model's name.
    pub fn model(&self) -> &str {
        &self.model
    }
}

impl fmt::Display for ClientInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.provider, self.model)
    }
}

/// Says whether a client can take a call now, as far as it knows without calling it.
///
/// A [`CircuitBreakerClient`] whose circuit is open answers [`Readiness::NotBefore`] with
/// the moment it will let a probe through; a target whose provider asked callers to wait
/// ([`CooldownClient`](crate::CooldownClient)) answers [`Readiness::CoolingDown`]. A
/// [`FallbackClient`] reads this to skip that target without calling it. Everything else is
/// [`Readiness::Ready`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// A call now would be attempted.
    Ready,
    /// A call before this instant would be refused without reaching the provider.
    NotBefore(tokio::time::Instant),
    /// The provider asked callers to wait (an error with `Retry-After` or a body's retry
    /// delay) until this instant; a call before it would be refused without reaching it.
    CoolingDown(tokio::time::Instant),
}

impl Readiness {
    /// Says whether a call made now would be attempted.
    pub fn is_ready(self) -> bool {
        self.wait() == Duration::ZERO
    }

    /// Returns how long from now until a call would be attempted (zero when ready).
    pub fn wait(self) -> Duration {
        match self {
            Readiness::Ready => Duration::ZERO,
            Readiness::NotBefore(at) | Readiness::CoolingDown(at) => {
                at.saturating_duration_since(tokio::time::Instant::now())
            }
        }
    }

    /// Returns the instant a call would be attempted, or `None` when ready.
    fn until(self) -> Option<tokio::time::Instant> {
        match self {
            Readiness::Ready => None,
            Readiness::NotBefore(at) | Readiness::CoolingDown(at) => Some(at),
        }
    }

    /// Combines the readiness of alternatives: ready if any is, else the earliest instant
    /// (with the reason of the alternative that recovers first).
    pub fn earliest(all: impl IntoIterator<Item = Readiness>) -> Readiness {
        let mut earliest: Option<Readiness> = None;
        for readiness in all {
            let Some(at) = readiness.until() else {
                return Readiness::Ready;
            };
            if earliest.and_then(Readiness::until).is_none_or(|e| at < e) {
                earliest = Some(readiness);
            }
        }
        earliest.unwrap_or(Readiness::Ready)
    }
}

/// Sends chat requests to a model. Every provider and every wrapper implements it.
///
/// The trait is object-safe so stacks can hold [`DynClient`]s; its methods return boxed
/// futures. Requests are borrowed, so wrappers that retry or fall back replay the same
/// request without cloning it.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use switchboard::{ChatClient, ChatRequest, ChatResponse, FunctionClient};
///
/// let client = FunctionClient::new("echo", |req: &ChatRequest| {
///     Ok(ChatResponse::from_text(req.messages[0].text()))
/// });
/// let response = client.chat(&ChatRequest::user("hello")).await?;
/// assert_eq!(response.text(), "hello");
/// # Ok::<_, switchboard::Error>(()) }).unwrap();
/// ```
pub trait ChatClient: Send + Sync + fmt::Debug {
    /// Sends one request and waits for the whole answer.
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>>;

    /// Sends one request and yields the answer as it is generated.
    ///
    /// The future resolves once the provider has accepted the request; the stream ends with
    /// [`StreamEvent::Done`](crate::StreamEvent::Done).
    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>>;

    /// Turns texts into vectors. Clients whose provider has no embeddings API return an
    /// [`ErrorKind::InvalidRequest`] error.
    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        let _ = req;
        let info = self.info();
        let err = Error::new(
            ErrorKind::InvalidRequest,
            format!("{info} does not offer embeddings"),
        )
        .with_provider(info.provider())
        .with_fix(
            "use an embeddings model from openai, mistral, gemini or another provider that has one",
        );
        Box::pin(async move { Err(err) })
    }

    /// Counts the request's input tokens the provider's own way, without generating:
    /// `Ok(None)` (the default) when the provider has no counting endpoint. Wrappers around
    /// one client forward it uncounted by their own policies (it is not an attempt); the
    /// Anthropic client asks `POST /v1/messages/count_tokens`.
    fn count_tokens<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<Option<u64>>> {
        let _ = req;
        Box::pin(async { Ok(None) })
    }

    /// Names the provider and model this client talks to.
    fn info(&self) -> &ClientInfo;

    /// Says whether a call made now would reach the provider, without calling it.
    ///
    /// The default is [`Readiness::Ready`]. A wrapper with one inner client forwards its
    /// inner client's answer; a [`CircuitBreakerClient`] overrides it while its circuit is
    /// open; a wrapper over several clients answers [`Readiness::earliest`] of theirs. It is
    /// a cheap, synchronous look at local state and never performs I/O.
    fn readiness(&self) -> Readiness {
        Readiness::Ready
    }
}

impl<T: ChatClient + ?Sized> ChatClient for Arc<T> {
    fn readiness(&self) -> Readiness {
        (**self).readiness()
    }

    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        (**self).chat(req)
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        (**self).chat_stream(req)
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        (**self).embed(req)
    }

    fn count_tokens<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<Option<u64>>> {
        (**self).count_tokens(req)
    }

    fn info(&self) -> &ClientInfo {
        (**self).info()
    }
}

impl<T: ChatClient + ?Sized> ChatClient for Box<T> {
    fn readiness(&self) -> Readiness {
        (**self).readiness()
    }

    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        (**self).chat(req)
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        (**self).chat_stream(req)
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        (**self).embed(req)
    }

    fn count_tokens<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<Option<u64>>> {
        (**self).count_tokens(req)
    }

    fn info(&self) -> &ClientInfo {
        (**self).info()
    }
}

/// Composes wrappers around any [`ChatClient`], tower's `ServiceExt` idea for chat clients.
///
/// # Examples
/// ```
/// use switchboard::{ChatClientExt, ChatRequest, ChatResponse, Error, FunctionClient};
///
/// let primary = FunctionClient::new("primary", |_req: &ChatRequest| {
///     Err(Error::from_status("primary", 503, "down"))
/// });
/// let backup = FunctionClient::new("backup", |_req: &ChatRequest| Ok(ChatResponse::from_text("ok")));
/// let client = primary.with_fallback([backup.boxed()]);
/// # let _ = client;
/// ```
pub trait ChatClientExt: ChatClient + Sized + 'static {
    /// Erases the type into a shared [`DynClient`].
    fn boxed(self) -> DynClient {
        Arc::new(self)
    }

    /// Tries `others`, in order, when this client fails with a recoverable error (the
    /// default [`FallbackOn`] rule).
    fn with_fallback(self, others: impl IntoIterator<Item = DynClient>) -> FallbackClient {
        FallbackClient::from_first(
            self.boxed(),
            others.into_iter().collect(),
            FallbackOn::default(),
        )
    }

    /// Retries this client's retryable failures with backoff (see [`RetryPolicy`]).
    fn with_retry(self, policy: RetryPolicy) -> RetryClient<Self> {
        RetryClient::new(self, policy)
    }

    /// Stops calling this client for a while once it keeps failing (see [`BreakerConfig`]).
    fn with_circuit_breaker(self, config: BreakerConfig) -> CircuitBreakerClient<Self> {
        CircuitBreakerClient::new(self, config)
    }

    /// Limits each call to this client (attempt, first-token and idle limits; see [`Timeouts`]).
    fn with_timeout(self, timeouts: impl Into<Timeouts>) -> TimeoutClient<Self> {
        TimeoutClient::new(self, timeouts)
    }

    /// Gives every call one deadline, `total` from its start, shared by every retry and
    /// fallback inside (see [`DeadlineClient`]).
    fn with_deadline(self, total: Duration) -> DeadlineClient<Self> {
        DeadlineClient::new(self, total)
    }

    /// Holds every call to `budget`, refusing one before it is sent if its worst case could
    /// cross a limit ([`BudgetClient`]).
    fn with_budget(self, budget: Budget) -> BudgetClient<Self> {
        BudgetClient::new(self, budget)
    }

    /// Counts tokens, cost and errors and emits OpenTelemetry GenAI spans
    /// ([`InstrumentedClient`]).
    fn instrumented(self) -> InstrumentedClient<Self> {
        InstrumentedClient::new(self)
    }

    /// Lets at most `limit` calls run at once ([`ConcurrencyLimitClient`]).
    fn with_concurrency_limit(self, limit: usize) -> ConcurrencyLimitClient<Self> {
        ConcurrencyLimitClient::new(self, limit)
    }

    /// Answers repeated requests from `backend` ([`CachedClient`]).
    fn with_cache(self, backend: impl CacheBackend + 'static) -> CachedClient<Self> {
        CachedClient::new(self, backend)
    }
}

impl<T: ChatClient + Sized + 'static> ChatClientExt for T {}

/// Compile-time checks that the promised auto traits hold.
#[allow(dead_code)]
fn _assert_impls() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<DynClient>();
    send_sync::<ClientInfo>();
}
