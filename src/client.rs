//! The [`ChatClient`] trait that every provider and every wrapper implements, and
//! [`ChatClientExt`] for composing wrappers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::middleware::{
    Budget, BudgetClient, CacheBackend, CachedClient, ConcurrencyLimitClient, FallbackClient,
    FallbackOn, InstrumentedClient,
};
use crate::types::{ChatRequest, ChatResponse, ChatStream, EmbedRequest, EmbedResponse};

/// A boxed future that is `Send`, as [`ChatClient`]'s methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A shared, type-erased client: what wrappers hold and what stacks are built from.
pub type DynClient = Arc<dyn ChatClient>;

/// Names the provider and model a client talks to, for logs, errors, attempts and prices.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientInfo {
    provider: String,
    model: String,
}

impl ClientInfo {
    /// Creates the info for a provider and model.
    pub fn new(provider: impl Into<String>, model: impl Into<String>) -> ClientInfo {
        ClientInfo {
            provider: provider.into(),
            model: model.into(),
        }
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

    /// Names the provider and model this client talks to.
    fn info(&self) -> &ClientInfo;
}

impl<T: ChatClient + ?Sized> ChatClient for Arc<T> {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        (**self).chat(req)
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        (**self).chat_stream(req)
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        (**self).embed(req)
    }

    fn info(&self) -> &ClientInfo {
        (**self).info()
    }
}

impl<T: ChatClient + ?Sized> ChatClient for Box<T> {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        (**self).chat(req)
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        (**self).chat_stream(req)
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        (**self).embed(req)
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
