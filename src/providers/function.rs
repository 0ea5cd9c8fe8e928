//! [`FunctionClient`]: a closure instead of HTTP, so everything runs offline and tests are
//! deterministic.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use futures_util::stream::{self, BoxStream, StreamExt};

use crate::client::{BoxFuture, ChatClient, ClientInfo};
use crate::error::{Error, ErrorKind, Result};
use crate::types::{
    finish_stop, new_request_id, response_to_events, Attempt, Capabilities, ChatRequest,
    ChatResponse, ChatStream, EmbedRequest, EmbedResponse, StreamEvent, StreamMeta,
};

type RespondFn = Arc<dyn Fn(ChatRequest) -> BoxFuture<'static, Result<ChatResponse>> + Send + Sync>;
type StreamFn = Arc<
    dyn Fn(ChatRequest) -> BoxFuture<'static, Result<BoxStream<'static, Result<StreamEvent>>>>
        + Send
        + Sync,
>;
type EmbedFn = Arc<dyn Fn(&EmbedRequest) -> Result<EmbedResponse> + Send + Sync>;

/// A [`ChatClient`] that runs a closure instead of calling a provider.
///
/// It answers `chat` with a response closure and `chat_stream` with a stream closure — or,
/// when only a response closure is given, by streaming that response. Every call's request
/// is recorded in a history that clones share, so a test can hand a clone to a wrapper and
/// still count the calls.
///
/// # Clone
/// Clones share the closures and the history.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use switchboard::{ChatClient, ChatRequest, ChatResponse, Error, FunctionClient};
///
/// let flaky = FunctionClient::new("primary", |_req: &ChatRequest| {
///     Err(Error::from_status("primary", 503, "primary provider is unavailable"))
/// });
/// assert!(flaky.chat(&ChatRequest::user("hello")).await.is_err());
/// assert_eq!(flaky.calls(), 1);
/// # });
/// ```
#[derive(Clone)]
pub struct FunctionClient {
    info: ClientInfo,
    respond: Option<RespondFn>,
    stream: Option<StreamFn>,
    embed: Option<EmbedFn>,
    history: Arc<Mutex<Vec<ChatRequest>>>,
}

impl fmt::Debug for FunctionClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FunctionClient")
            .field("info", &self.info)
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

impl FunctionClient {
    /// Creates a client named `model` (provider `function`) that answers with a synchronous
    /// closure.
    pub fn new<F>(model: impl Into<String>, respond: F) -> FunctionClient
    where
        F: Fn(&ChatRequest) -> Result<ChatResponse> + Send + Sync + 'static,
    {
        FunctionClient::builder(model).respond(respond).build()
    }

    /// Creates a client that answers with an asynchronous closure.
    pub fn new_async<F, Fut>(model: impl Into<String>, respond: F) -> FunctionClient
    where
        F: Fn(ChatRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ChatResponse>> + Send + 'static,
    {
        FunctionClient::builder(model)
            .respond_async(respond)
            .build()
    }

    /// Starts a builder for a client named `model`.
    pub fn builder(model: impl Into<String>) -> FunctionClientBuilder {
        FunctionClientBuilder {
            provider: "function".to_owned(),
            model: model.into(),
            capabilities: Capabilities::permissive(),
            respond: None,
            stream: None,
            embed: None,
        }
    }

    /// Returns every request received so far, in order.
    pub fn history(&self) -> Vec<ChatRequest> {
        self.history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Returns how many calls were made (chat and stream).
    pub fn calls(&self) -> usize {
        self.history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Forgets the recorded history.
    pub fn clear_history(&self) {
        self.history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn record(&self, req: &ChatRequest) {
        self.history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(req.clone());
    }

    fn label_error(&self, err: Error) -> Error {
        if err.provider().is_some() {
            err
        } else {
            err.with_provider(self.info.provider())
        }
    }

    fn missing(&self, what: &str) -> Error {
        Error::config(
            format!(
                "FunctionClient `{}` has no {what} closure",
                self.info.model()
            ),
            format!("give it one with `FunctionClient::builder(..).{what}(..)`"),
        )
    }
}

impl ChatClient for FunctionClient {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(async move {
            self.record(req);
            let started = Instant::now();
            let request_id = new_request_id();
            let result = match &self.respond {
                Some(respond) => respond(req.clone()).await,
                None => match &self.stream {
                    Some(stream_fn) => {
                        let events = stream_fn(req.clone()).await?;
                        let meta = StreamMeta::new(self.info.provider(), self.info.model());
                        ChatStream::from_events(meta, with_final_finish(events))
                            .collect_response()
                            .await
                    }
                    None => Err(self.missing("respond")),
                },
            };
            let mut response = result.map_err(|e| self.label_error(e))?;
            if response.provider.is_empty() {
                response.provider = self.info.provider().to_owned();
            }
            if response.model.is_empty() {
                response.model = self.info.model().to_owned();
            }
            response.request_id = request_id;
            response.latency = started.elapsed();
            if response.attempts.is_empty() {
                response.attempts.push(Attempt::success(
                    self.info.provider(),
                    self.info.model(),
                    response.latency,
                ));
            }
            Ok(response)
        })
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(async move {
            let meta = StreamMeta::new(self.info.provider(), self.info.model());
            let events: BoxStream<'static, Result<StreamEvent>> = match &self.stream {
                Some(stream_fn) => {
                    self.record(req);
                    let events = stream_fn(req.clone())
                        .await
                        .map_err(|e| self.label_error(e))?;
                    with_final_finish(events)
                }
                None => {
                    // Stream the response closure's answer.
                    let response = self.chat(req).await?;
                    stream::iter(response_to_events(&response).into_iter().map(Ok)).boxed()
                }
            };
            let provider = self.info.provider().to_owned();
            let events = events.map(move |item| {
                item.map_err(|e| {
                    if e.provider().is_some() {
                        e
                    } else {
                        e.with_provider(provider.clone())
                    }
                })
            });
            Ok(ChatStream::from_events(meta, events))
        })
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        Box::pin(async move {
            let embed = self.embed.as_ref().ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidRequest,
                    format!(
                        "FunctionClient `{}` has no embed closure",
                        self.info.model()
                    ),
                )
                .with_provider(self.info.provider())
                .with_fix("give it one with `FunctionClient::builder(..).embed(..)`")
            })?;
            let started = Instant::now();
            let mut response = embed(req).map_err(|e| self.label_error(e))?;
            if response.provider.is_empty() {
                response.provider = self.info.provider().to_owned();
            }
            if response.model.is_empty() {
                response.model = self.info.model().to_owned();
            }
            response.latency = started.elapsed();
            if response.attempts.is_empty() {
                response.attempts.push(Attempt::success(
                    self.info.provider(),
                    self.info.model(),
                    response.latency,
                ));
            }
            Ok(response)
        })
    }

    fn info(&self) -> &ClientInfo {
        &self.info
    }
}

/// Appends a `stop` finish event when a scripted stream ends cleanly without one, so
/// scripted streams need only yield their content.
fn with_final_finish(
    events: BoxStream<'static, Result<StreamEvent>>,
) -> BoxStream<'static, Result<StreamEvent>> {
    let state = (events, false, false);
    stream::unfold(state, |(mut events, mut finished, ended)| async move {
        if ended {
            return None;
        }
        match events.next().await {
            Some(Ok(event)) => {
                if matches!(event, StreamEvent::Finish { .. }) {
                    finished = true;
                }
                Some((Ok(event), (events, finished, false)))
            }
            Some(Err(err)) => Some((Err(err), (events, finished, true))),
            None if finished => None,
            None => Some((Ok(finish_stop()), (events, true, true))),
        }
    })
    .boxed()
}

/// Builds a [`FunctionClient`].
#[must_use]
pub struct FunctionClientBuilder {
    provider: String,
    model: String,
    capabilities: Capabilities,
    respond: Option<RespondFn>,
    stream: Option<StreamFn>,
    embed: Option<EmbedFn>,
}

impl fmt::Debug for FunctionClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FunctionClientBuilder")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

impl FunctionClientBuilder {
    /// Sets the provider name reported in responses and attempts (default `function`).
    pub fn provider(mut self, provider: impl Into<String>) -> FunctionClientBuilder {
        self.provider = provider.into();
        self
    }

    /// Sets what the client reports it can accept (default [`Capabilities::permissive`]),
    /// to stand in for a provider that lacks something in fallback tests.
    pub fn capabilities(mut self, capabilities: Capabilities) -> FunctionClientBuilder {
        self.capabilities = capabilities;
        self
    }

    /// Answers `chat` with a synchronous closure.
    pub fn respond<F>(mut self, respond: F) -> FunctionClientBuilder
    where
        F: Fn(&ChatRequest) -> Result<ChatResponse> + Send + Sync + 'static,
    {
        self.respond = Some(Arc::new(move |req: ChatRequest| {
            let result = respond(&req);
            Box::pin(async move { result })
        }));
        self
    }

    /// Answers `chat` with an asynchronous closure.
    pub fn respond_async<F, Fut>(mut self, respond: F) -> FunctionClientBuilder
    where
        F: Fn(ChatRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ChatResponse>> + Send + 'static,
    {
        self.respond = Some(Arc::new(move |req: ChatRequest| Box::pin(respond(req))));
        self
    }

    /// Answers `chat_stream` with a scripted list of events (an `Err` item breaks the stream
    /// there). A `Finish` event is appended if the script has none.
    pub fn stream<F>(mut self, script: F) -> FunctionClientBuilder
    where
        F: Fn(&ChatRequest) -> Result<Vec<Result<StreamEvent>>> + Send + Sync + 'static,
    {
        self.stream = Some(Arc::new(move |req: ChatRequest| {
            let result = script(&req).map(|events| stream::iter(events).boxed());
            Box::pin(async move { result })
        }));
        self
    }

    /// Answers `chat_stream` with an asynchronous stream (for timing-dependent scripts).
    pub fn stream_async<F>(mut self, open: F) -> FunctionClientBuilder
    where
        F: Fn(ChatRequest) -> BoxFuture<'static, Result<BoxStream<'static, Result<StreamEvent>>>>
            + Send
            + Sync
            + 'static,
    {
        self.stream = Some(Arc::new(open));
        self
    }

    /// Answers `embed` with a closure.
    pub fn embed<F>(mut self, embed: F) -> FunctionClientBuilder
    where
        F: Fn(&EmbedRequest) -> Result<EmbedResponse> + Send + Sync + 'static,
    {
        self.embed = Some(Arc::new(embed));
        self
    }

    /// Builds the client. With neither closure set, calls fail with a config error that
    /// says which closure to add.
    pub fn build(self) -> FunctionClient {
        FunctionClient {
            info: ClientInfo::new(self.provider, self.model).with_capabilities(self.capabilities),
            respond: self.respond,
            stream: self.stream,
            embed: self.embed,
            history: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::FinishKind;

    #[allow(dead_code)]
    fn _assert_impls() {
        fn send_sync_clone<T: Send + Sync + Clone>() {}
        send_sync_clone::<FunctionClient>();
    }

    #[tokio::test]
    async fn clones_share_history() {
        let client = FunctionClient::new("m", |_r: &ChatRequest| Ok(ChatResponse::from_text("x")));
        let clone = client.clone();
        clone.chat(&ChatRequest::user("a")).await.unwrap();
        clone.chat(&ChatRequest::user("b")).await.unwrap();
        assert_eq!(client.calls(), 2);
        assert_eq!(client.history()[1].messages[0].text(), "b");
    }

    #[tokio::test]
    async fn response_is_labelled_with_provider_model_and_attempt() {
        let client = FunctionClient::new("backup", |_r: &ChatRequest| {
            Ok(ChatResponse::from_text("x"))
        });
        let r = client.chat(&ChatRequest::user("a")).await.unwrap();
        assert_eq!(r.provider, "function");
        assert_eq!(r.model, "backup");
        assert!(r.request_id.starts_with("req_"));
        assert_eq!(r.attempts().len(), 1);
    }

    #[tokio::test]
    async fn scripted_stream_gets_a_final_done() {
        let client = FunctionClient::builder("s")
            .stream(|_r: &ChatRequest| {
                Ok(vec![
                    Ok(StreamEvent::TextDelta { text: "he".into() }),
                    Ok(StreamEvent::TextDelta { text: "llo".into() }),
                ])
            })
            .build();
        let events: Vec<_> = client
            .chat_stream(&ChatRequest::user("a"))
            .await
            .unwrap()
            .collect()
            .await;
        assert_eq!(events.len(), 4, "{events:?}");
        match events.last() {
            Some(Ok(StreamEvent::Done { response })) => {
                assert_eq!(response.text(), "hello");
                assert_eq!(response.finish_reason.kind, FinishKind::Stop);
            }
            other => panic!("expected Done, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn missing_closure_is_a_config_error() {
        let client = FunctionClient::builder("empty").build();
        let err = client.chat(&ChatRequest::user("a")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.fix().unwrap().contains("respond"));
    }

    #[tokio::test]
    async fn async_closure_answers() {
        let client = FunctionClient::new_async("a", |req: ChatRequest| async move {
            Ok(ChatResponse::from_text(
                req.messages[0].text().to_uppercase(),
            ))
        });
        let r = client.chat(&ChatRequest::user("hi")).await.unwrap();
        assert_eq!(r.text(), "HI");
    }
}
