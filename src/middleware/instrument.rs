//! [`InstrumentedClient`]: counts what calls used and emits OpenTelemetry GenAI telemetry
//! through `tracing`.
//!
//! The failure it prevents: spend and errors nobody can see until the invoice arrives.
//! Each call opens one span, `gen_ai.chat`, with the attribute names of the OpenTelemetry
//! GenAI semantic conventions — `gen_ai.operation.name`, `gen_ai.provider.name` (and the
//! older `gen_ai.system`, which many backends still read), `gen_ai.request.model`,
//! `gen_ai.request.max_tokens`, then `gen_ai.response.model`, `gen_ai.response.id`,
//! `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`,
//! `gen_ai.response.finish_reasons` and `error.type` as they become known — and `otel.name`
//! (`chat {model}`) for `tracing-opentelemetry`. Every attempt (one per target a fallback
//! chain tried) is an event inside the span. Streams also record
//! `gen_ai.client.operation.time_to_first_chunk`, in seconds, when the first content event
//! arrives.
//!
//! Totals (requests, attempts, tokens, cost, failed attempts by kind) are kept across
//! calls; read them with [`InstrumentedClient::totals`] and start over with
//! [`InstrumentedClient::reset`].
//!
//! Hooks run on request, on response, on error, on every attempt and on every retry (a failed
//! attempt that was tried again on the same target, found from the call's attempts once the
//! call has ended). They see only neutral types — [`ChatRequest`], [`ChatResponse`], [`Attempt`],
//! [`Error`] — none of which carries a key or a header.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use futures_util::StreamExt;
use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::client::{BoxFuture, ChatClient, ClientInfo, Readiness};
use crate::cost::{Cost, PriceTable};
use crate::error::{Error, ErrorKind, Result};
use crate::types::{
    Attempt, ChatRequest, ChatResponse, ChatStream, EmbedRequest, EmbedResponse, StreamEvent,
};

/// A snapshot of an [`InstrumentedClient`]'s totals.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    /// Calls made (chat and stream), answered or not.
    pub requests: u64,
    /// Attempts made inside those calls (more than one when a fallback chain moved on).
    pub attempts: u64,
    /// Prompt tokens of answered calls.
    pub input_tokens: u64,
    /// Output tokens of answered calls.
    pub output_tokens: u64,
    /// Money spent by answered calls whose model has a price.
    pub cost: Cost,
    /// Answered calls whose model has no price, so their cost is missing from `cost`.
    pub unpriced: u64,
    /// Failed attempts, by kind.
    pub errors: HashMap<ErrorKind, u64>,
}

type Hook<T> = Option<Arc<dyn Fn(&T) + Send + Sync>>;

#[derive(Clone, Default)]
struct Hooks {
    on_request: Hook<ChatRequest>,
    on_response: Hook<ChatResponse>,
    on_error: Hook<Error>,
    on_attempt: Hook<Attempt>,
    on_retry: Hook<Attempt>,
}

/// Records totals, spans and events for every call through it.
///
/// # Clone
/// Clones share the totals and the hooks.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use switchboard::{ChatClient, ChatClientExt, ChatRequest, ChatResponse, FunctionClient, Usage};
///
/// let model = FunctionClient::new("m", |_req: &ChatRequest| {
///     Ok(ChatResponse::from_text("ok").with_usage(Usage::new(12, 3)))
/// });
/// let client = model.instrumented().on_attempt(|a| println!("{} {}", a.provider, a.outcome.as_str()));
/// client.chat(&ChatRequest::user("hi")).await?;
/// assert_eq!(client.totals().input_tokens, 12);
/// # Ok::<_, switchboard::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct InstrumentedClient<C> {
    inner: C,
    rec: Recorder,
}

/// The shared state a call (or a stream, after the call returned) records into.
#[derive(Clone)]
struct Recorder {
    info: ClientInfo,
    totals: Arc<Mutex<Totals>>,
    hooks: Arc<Hooks>,
    prices: Arc<PriceTable>,
}

impl<C: fmt::Debug> fmt::Debug for InstrumentedClient<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentedClient")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<C: ChatClient> InstrumentedClient<C> {
    /// Wraps `inner`, pricing responses from [`PriceTable::embedded`].
    pub fn new(inner: C) -> InstrumentedClient<C> {
        InstrumentedClient {
            rec: Recorder {
                info: inner.info().clone(),
                totals: Arc::default(),
                hooks: Arc::default(),
                prices: Arc::new(PriceTable::embedded().clone()),
            },
            inner,
        }
    }

    /// Prices responses from `prices` instead.
    #[must_use]
    pub fn with_prices(mut self, prices: PriceTable) -> InstrumentedClient<C> {
        self.rec.prices = Arc::new(prices);
        self
    }

    /// Calls `hook` with every request before it is sent.
    #[must_use]
    pub fn on_request(mut self, hook: impl Fn(&ChatRequest) + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.rec.hooks).on_request = Some(Arc::new(hook));
        self
    }

    /// Calls `hook` with every answer.
    #[must_use]
    pub fn on_response(mut self, hook: impl Fn(&ChatResponse) + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.rec.hooks).on_response = Some(Arc::new(hook));
        self
    }

    /// Calls `hook` with every failed call's error.
    #[must_use]
    pub fn on_error(mut self, hook: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.rec.hooks).on_error = Some(Arc::new(hook));
        self
    }

    /// Calls `hook` with every attempt, failed ones included (where a retry or fallback
    /// happened).
    #[must_use]
    pub fn on_attempt(mut self, hook: impl Fn(&Attempt) + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.rec.hooks).on_attempt = Some(Arc::new(hook));
        self
    }

    /// Calls `hook` with every attempt that failed and was tried again on the same target
    /// (same provider and model) — each retry a [`RetryClient`](crate::RetryClient) made,
    /// in order — once the call has ended, whether it was answered or not.
    #[must_use]
    pub fn on_retry(mut self, hook: impl Fn(&Attempt) + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.rec.hooks).on_retry = Some(Arc::new(hook));
        self
    }

    /// Returns a snapshot of the totals.
    pub fn totals(&self) -> Totals {
        self.rec.lock().clone()
    }

    /// Sets every total back to zero.
    pub fn reset(&self) {
        *self.rec.lock() = Totals::default();
    }

    /// Returns the wrapped client.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// Returns the wrapped client, consuming the wrapper.
    pub fn into_inner(self) -> C {
        self.inner
    }
}

impl Recorder {
    fn lock(&self) -> std::sync::MutexGuard<'_, Totals> {
        self.totals.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn span(&self, req: &ChatRequest) -> Span {
        let info = &self.info;
        tracing::info_span!(
            "gen_ai.chat",
            otel.name = %format_args!("chat {}", info.model()),
            otel.kind = "client",
            gen_ai.operation.name = "chat",
            gen_ai.provider.name = info.provider(),
            gen_ai.system = info.provider(),
            gen_ai.request.model = info.model(),
            gen_ai.request.max_tokens = req.max_tokens,
            gen_ai.response.model = Empty,
            gen_ai.response.id = Empty,
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            gen_ai.response.finish_reasons = Empty,
            gen_ai.client.operation.time_to_first_chunk = Empty,
            error.type = Empty,
        )
    }

    fn started(&self, req: &ChatRequest) {
        self.lock().requests += 1;
        if let Some(hook) = &self.hooks.on_request {
            hook(req);
        }
    }

    fn answered(&self, span: &Span, response: &ChatResponse) {
        span.record("gen_ai.response.model", response.model_served());
        if let Some(id) = &response.response_id {
            span.record("gen_ai.response.id", id.as_str());
        }
        span.record("gen_ai.usage.input_tokens", response.usage.input_tokens);
        span.record("gen_ai.usage.output_tokens", response.usage.output_tokens);
        span.record(
            "gen_ai.response.finish_reasons",
            response.finish_reason.kind.as_str(),
        );
        for attempt in &response.attempts {
            self.attempt(span, attempt);
        }
        self.retries(&response.attempts);
        let cost = self.prices.cost_of_response(response);
        {
            let mut totals = self.lock();
            totals.attempts += response.attempts.len().max(1) as u64;
            totals.input_tokens += response.usage.input_tokens;
            totals.output_tokens += response.usage.output_tokens;
            match cost {
                Some(cost) => totals.cost += cost,
                None => totals.unpriced += 1,
            }
            for kind in response.attempts.iter().filter_map(|a| a.error_kind) {
                *totals.errors.entry(kind).or_default() += 1;
            }
        }
        if let Some(hook) = &self.hooks.on_response {
            hook(response);
        }
    }

    fn failed(&self, span: &Span, err: &Error, started: Instant) {
        span.record("error.type", err.kind().as_str());
        let info = &self.info;
        let nested = leaf_attempts(err);
        let attempts: Vec<Attempt> = if nested.is_empty() {
            vec![Attempt::failure(
                err.provider().unwrap_or(info.provider()),
                err.model().unwrap_or(info.model()),
                err,
                started.elapsed(),
            )]
        } else {
            nested
                .iter()
                .map(|e| {
                    Attempt::failure(
                        e.provider().unwrap_or(info.provider()),
                        e.model().unwrap_or(info.model()),
                        e,
                        std::time::Duration::ZERO,
                    )
                })
                .collect()
        };
        for attempt in &attempts {
            self.attempt(span, attempt);
        }
        self.retries(&attempts);
        {
            let mut totals = self.lock();
            totals.attempts += attempts.len() as u64;
            for kind in attempts.iter().filter_map(|a| a.error_kind) {
                *totals.errors.entry(kind).or_default() += 1;
            }
        }
        if let Some(hook) = &self.hooks.on_error {
            hook(err);
        }
    }

    /// Calls the retry hook for every failed attempt followed by another on the same target.
    fn retries(&self, attempts: &[Attempt]) {
        let Some(hook) = &self.hooks.on_retry else {
            return;
        };
        for pair in attempts.windows(2) {
            let (tried, next) = (&pair[0], &pair[1]);
            if tried.outcome == crate::types::Outcome::Failed
                && tried.provider == next.provider
                && tried.model == next.model
            {
                hook(tried);
            }
        }
    }

    fn attempt(&self, span: &Span, attempt: &Attempt) {
        span.in_scope(|| {
            tracing::info!(
                gen_ai.provider.name = attempt.provider.as_str(),
                gen_ai.request.model = attempt.model.as_str(),
                outcome = attempt.outcome.as_str(),
                error.type = attempt.error_kind.map(ErrorKind::as_str),
                http.response.status_code = attempt.status,
                latency_ms = attempt.latency.as_secs_f64() * 1000.0,
                "gen_ai.attempt"
            );
        });
        if let Some(hook) = &self.hooks.on_attempt {
            hook(attempt);
        }
    }
}

/// Returns the errors of every real attempt behind `err`, in order: a fallback chain's
/// targets and, inside each, every try a retry loop made. Empty when `err` lists none.
fn leaf_attempts(err: &Error) -> Vec<&Error> {
    err.attempt_errors()
        .iter()
        .flat_map(|e| {
            if e.attempt_errors().is_empty() {
                vec![e]
            } else {
                leaf_attempts(e)
            }
        })
        .collect()
}

impl<C: ChatClient> ChatClient for InstrumentedClient<C> {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(async move {
            let rec = &self.rec;
            let span = rec.span(req);
            let started = Instant::now();
            rec.started(req);
            let result = self.inner.chat(req).instrument(span.clone()).await;
            match &result {
                Ok(response) => rec.answered(&span, response),
                Err(err) => rec.failed(&span, err, started),
            }
            result
        })
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(async move {
            let rec = self.rec.clone();
            let span = rec.span(req);
            let started = Instant::now();
            rec.started(req);
            let stream = match self.inner.chat_stream(req).instrument(span.clone()).await {
                Ok(stream) => stream,
                Err(err) => {
                    rec.failed(&span, &err, started);
                    return Err(err);
                }
            };
            let mut first = true;
            Ok(ChatStream::new(stream.into_inner().map(move |item| {
                match &item {
                    Ok(event) if first && event.is_content() => {
                        first = false;
                        span.record(
                            "gen_ai.client.operation.time_to_first_chunk",
                            started.elapsed().as_secs_f64(),
                        );
                    }
                    Ok(StreamEvent::Done { response }) => rec.answered(&span, response),
                    Err(err) => rec.failed(&span, err, started),
                    Ok(_) => {}
                }
                item
            })))
        })
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        self.inner.embed(req)
    }

    fn info(&self) -> &ClientInfo {
        self.inner.info()
    }

    fn readiness(&self) -> Readiness {
        self.inner.readiness()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ChatClientExt;
    use crate::providers::FunctionClient;
    use crate::types::Usage;
    use std::collections::BTreeMap;
    use tracing::field::{Field, Visit};
    use tracing::span;
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::Layer;

    /// Records every span's and event's fields as strings.
    #[derive(Clone, Default)]
    struct Capture {
        spans: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
        events: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
    }

    struct Fields<'a>(&'a mut BTreeMap<String, String>);

    impl Visit for Fields<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
    }

    impl<S> Layer<S> for Capture
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
            let mut map = BTreeMap::new();
            map.insert("name".into(), attrs.metadata().name().to_owned());
            attrs.record(&mut Fields(&mut map));
            if let Some(span) = ctx.span(id) {
                span.extensions_mut().insert(map);
            }
        }
        fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
            if let Some(span) = ctx.span(id) {
                if let Some(map) = span.extensions_mut().get_mut::<BTreeMap<String, String>>() {
                    values.record(&mut Fields(map));
                }
            }
        }
        fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
            let mut map = BTreeMap::new();
            event.record(&mut Fields(&mut map));
            self.events.lock().unwrap().push(map);
        }
        fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
            if let Some(span) = ctx.span(&id) {
                if let Some(map) = span.extensions().get::<BTreeMap<String, String>>() {
                    self.spans.lock().unwrap().push(map.clone());
                }
            }
        }
    }

    fn capture() -> (Capture, tracing::subscriber::DefaultGuard) {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        let guard = tracing::subscriber::set_default(subscriber);
        // Another test thread may have registered a callsite while no subscriber was set,
        // caching "never interested"; recompute with this subscriber in place.
        tracing::callsite::rebuild_interest_cache();
        (capture, guard)
    }

    fn priced_model() -> FunctionClient {
        FunctionClient::builder("gpt-4o-mini")
            .provider("openai")
            .respond(|_r: &ChatRequest| {
                Ok(ChatResponse::from_text("ok").with_usage(Usage::new(2_000, 1_000)))
            })
            .build()
    }

    #[tokio::test]
    async fn span_carries_gen_ai_attributes() {
        let (capture, _guard) = capture();
        let client = priced_model().instrumented();
        client
            .chat(&ChatRequest::user("hi").with_max_tokens(64))
            .await
            .unwrap();
        let spans = capture.spans.lock().unwrap().clone();
        let span = spans.iter().find(|s| s["name"] == "gen_ai.chat").unwrap();
        assert_eq!(span["gen_ai.operation.name"], "chat");
        assert_eq!(span["gen_ai.provider.name"], "openai");
        assert_eq!(span["gen_ai.system"], "openai");
        assert_eq!(span["gen_ai.request.model"], "gpt-4o-mini");
        assert_eq!(span["gen_ai.request.max_tokens"], "64");
        assert_eq!(span["gen_ai.response.model"], "gpt-4o-mini");
        assert_eq!(span["gen_ai.usage.input_tokens"], "2000");
        assert_eq!(span["gen_ai.usage.output_tokens"], "1000");
        assert_eq!(span["gen_ai.response.finish_reasons"], "stop");
        let events = capture.events.lock().unwrap().clone();
        let attempt = events
            .iter()
            .find(|e| e["message"] == "gen_ai.attempt")
            .unwrap();
        assert_eq!(attempt["outcome"], "success");
    }

    #[tokio::test]
    async fn totals_count_tokens_cost_and_reset() {
        let client = priced_model().instrumented();
        client.chat(&ChatRequest::user("a")).await.unwrap();
        client.chat(&ChatRequest::user("b")).await.unwrap();
        let totals = client.totals();
        assert_eq!(totals.requests, 2);
        assert_eq!(totals.attempts, 2);
        assert_eq!(totals.input_tokens, 4_000);
        assert_eq!(totals.output_tokens, 2_000);
        // 2 × (2,000 × $0.15/M + 1,000 × $0.60/M) = 2 × 900 µ$
        assert_eq!(totals.cost, Cost::from_nanos(1_800_000));
        client.reset();
        assert_eq!(client.totals(), Totals::default());
    }

    #[tokio::test]
    async fn errors_are_counted_by_kind_and_reported_on_the_span() {
        let (capture, _guard) = capture();
        let failing = FunctionClient::new("m", |_r: &ChatRequest| {
            Err(Error::from_status("function", 429, "slow down"))
        });
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let client = failing
            .instrumented()
            .on_error(move |e| seen2.lock().unwrap().push(e.kind()));
        client.chat(&ChatRequest::user("a")).await.unwrap_err();
        assert_eq!(client.totals().errors[&ErrorKind::RateLimited], 1);
        assert_eq!(*seen.lock().unwrap(), vec![ErrorKind::RateLimited]);
        let spans = capture.spans.lock().unwrap().clone();
        assert_eq!(spans[0]["error.type"], "rate_limited");
    }

    #[tokio::test]
    async fn hooks_see_request_response_and_every_attempt_of_a_fallback() {
        let primary = FunctionClient::new("primary", |_r: &ChatRequest| {
            Err(Error::from_status("primary", 503, "down"))
        });
        let backup = FunctionClient::new("backup", |_r: &ChatRequest| {
            Ok(ChatResponse::from_text("ok"))
        });
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
        let client = primary
            .with_fallback([backup.boxed()])
            .instrumented()
            .on_request(move |r| {
                l1.lock()
                    .unwrap()
                    .push(format!("request {}", r.messages.len()))
            })
            .on_attempt(move |a| {
                l2.lock()
                    .unwrap()
                    .push(format!("attempt {} {}", a.model, a.outcome.as_str()))
            })
            .on_response(move |r| l3.lock().unwrap().push(format!("response {}", r.text())));
        client.chat(&ChatRequest::user("a")).await.unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            vec![
                "request 1",
                "attempt primary failed",
                "attempt backup success",
                "response ok"
            ]
        );
        let totals = client.totals();
        assert_eq!(totals.attempts, 2);
        assert_eq!(totals.errors[&ErrorKind::Server], 1);
    }

    fn flaky(name: &str, failures: usize) -> FunctionClient {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let provider = name.to_owned();
        FunctionClient::builder(name)
            .provider(name)
            .respond(move |_r: &ChatRequest| {
                if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < failures {
                    Err(Error::from_status(provider.clone(), 503, "down").with_model("m"))
                } else {
                    Ok(ChatResponse::from_text("ok"))
                }
            })
            .build()
    }

    fn retry_log(
        client: InstrumentedClient<impl ChatClient>,
    ) -> (InstrumentedClient<impl ChatClient>, Arc<Mutex<Vec<String>>>) {
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        let l = log.clone();
        let client = client.on_retry(move |a| {
            l.lock().unwrap().push(format!(
                "{} {:?} {:?}",
                a.provider,
                a.error_kind.map(ErrorKind::as_str),
                a.status
            ))
        });
        (client, log)
    }

    #[tokio::test(start_paused = true)]
    async fn retry_hook_sees_each_retry_of_an_answered_call() {
        let policy = crate::RetryPolicy::default().with_max_retries(3);
        let (client, log) = retry_log(flaky("p", 2).with_retry(policy).instrumented());
        assert_eq!(
            client.chat(&ChatRequest::user("a")).await.unwrap().text(),
            "ok"
        );
        assert_eq!(
            *log.lock().unwrap(),
            vec!["p Some(\"server\") Some(503)"; 2]
        );
        assert_eq!(client.totals().attempts, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_hook_sees_retries_inside_a_failed_fallback_chain_but_not_the_fallback() {
        let policy = crate::RetryPolicy::default().with_max_retries(1);
        let primary = flaky("a", usize::MAX).with_retry(policy.clone());
        let backup = flaky("b", usize::MAX).with_retry(policy);
        let (client, log) = retry_log(primary.with_fallback([backup.boxed()]).instrumented());
        let err = client.chat(&ChatRequest::user("a")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
        assert_eq!(
            *log.lock().unwrap(),
            vec![
                "a Some(\"server\") Some(503)",
                "b Some(\"server\") Some(503)"
            ],
            "one retry per target; moving from a to b is a fallback, not a retry"
        );
        let totals = client.totals();
        assert_eq!(totals.attempts, 4, "every real attempt is counted");
        assert_eq!(totals.errors[&ErrorKind::Server], 4);
    }

    #[tokio::test]
    async fn a_fallback_without_retries_calls_no_retry_hook() {
        let (client, log) = retry_log(
            flaky("a", usize::MAX)
                .with_fallback([flaky("b", 0).boxed()])
                .instrumented(),
        );
        client.chat(&ChatRequest::user("a")).await.unwrap();
        assert!(log.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn stream_records_time_to_first_chunk_and_usage() {
        let (capture, _guard) = capture();
        let client = priced_model().instrumented();
        let stream = client.chat_stream(&ChatRequest::user("a")).await.unwrap();
        let response = stream.collect_response().await.unwrap();
        assert_eq!(response.text(), "ok");
        assert_eq!(client.totals().output_tokens, 1_000);
        let spans = capture.spans.lock().unwrap().clone();
        let span = spans.iter().find(|s| s["name"] == "gen_ai.chat").unwrap();
        assert!(
            span.contains_key("gen_ai.client.operation.time_to_first_chunk"),
            "{span:?}"
        );
        assert_eq!(span["gen_ai.usage.output_tokens"], "1000");
    }
}
