//! [`FaultProvider`]: a mock LLM provider on a real socket that misbehaves on purpose.
//!
//! It listens on `127.0.0.1:0`, speaks HTTP/1.1, and answers in the shape the request's
//! path asks for — OpenAI Chat Completions (`…/chat/completions`), Anthropic Messages
//! (`…/v1/messages`) or Gemini `generateContent` (`…/models/M:generateContent` and
//! `:streamGenerateContent`) — as whole JSON bodies or SSE streams, the way the real APIs
//! send them. Each request gets one [`Fault`] from a script: healthy, an error status in the
//! protocol's own error shape, a reset connection, silence, a slow first token, a stream cut
//! or stalled after some tokens, a malformed event, a stream without its end.
//!
//! Unlike a wiremock server it can reset a connection, stall in the middle of a body and
//! cut a body short, because it writes the bytes itself. It records every request's arrival
//! time, so tests can assert how many attempts a target got and how long the client waited
//! between them.
//!
//! # Examples
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use switchboard_testkit::fault::{Fault, FaultProvider, Protocol};
//!
//! let upstream = FaultProvider::builder()
//!     .script([Fault::rate_limited(Some(Duration::from_millis(20))), Fault::Healthy])
//!     .tokens(5)
//!     .start()
//!     .await?;
//! let base_url = upstream.base_url(Protocol::OpenAi); // http://127.0.0.1:PORT/v1
//! # let _ = base_url;
//! assert_eq!(upstream.requests(), 0);
//! assert_eq!(upstream.answer_text(), "tok0 tok1 tok2 tok3 tok4");
//! # Ok::<_, std::io::Error>(()) }).unwrap();
//! ```

mod http;
mod shapes;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use self::http::Request;
use self::shapes::{error_body, retry_after_value, Answer, ErrorCase, StreamPlan};

/// The wire protocols the fault provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OpenAI Chat Completions.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini `generateContent`.
    Gemini,
}

impl Protocol {
    /// Every protocol, in a fixed order.
    pub const ALL: [Protocol; 3] = [Protocol::OpenAi, Protocol::Anthropic, Protocol::Gemini];

    /// Returns the provider name `create_client` knows this protocol by.
    pub fn provider(self) -> &'static str {
        match self {
            Protocol::OpenAi => "openai",
            Protocol::Anthropic => "anthropic",
            Protocol::Gemini => "gemini",
        }
    }

    /// Returns the `provider:model` spec for `model`.
    pub fn spec(self, model: &str) -> String {
        format!("{}:{model}", self.provider())
    }

    /// Tells the protocol a request path belongs to.
    fn of_path(path: &str) -> Option<Protocol> {
        let path = path.split('?').next().unwrap_or(path);
        if path.ends_with("/chat/completions") {
            Some(Protocol::OpenAi)
        } else if path.ends_with("/v1/messages") {
            Some(Protocol::Anthropic)
        } else if path.ends_with(":generateContent") || path.ends_with(":streamGenerateContent") {
            Some(Protocol::Gemini)
        } else {
            None
        }
    }
}

/// What the fault provider does with one request.
///
/// Status faults answer in the protocol's own error shape. Faults counted in tokens apply to
/// streams token by token; on a whole (non-streaming) answer they apply to the body in
/// proportion (a cut after 40 of 60 tokens sends the first two thirds of the JSON).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// Answers normally.
    Healthy,
    /// HTTP 429 in the protocol's rate-limit shape, with `Retry-After` when given (written
    /// in seconds, fractional for sub-second waits: `Retry-After: 0.02`).
    RateLimited {
        /// The wait to advertise.
        retry_after: Option<Duration>,
    },
    /// HTTP 500.
    ServerError,
    /// HTTP 503 ("service unavailable").
    Unavailable,
    /// The protocol's "overloaded" answer (Anthropic 529, Gemini and OpenAI 503 with an
    /// "overloaded" message).
    Overloaded,
    /// HTTP 400 saying the prompt is longer than the context window (OpenAI
    /// `context_length_exceeded`, Anthropic "prompt is too long", Gemini "input token count
    /// exceeds").
    ContextLengthExceeded,
    /// A content-policy refusal: OpenAI HTTP 400 `content_policy_violation`; Gemini 200 with
    /// `promptFeedback.blockReason`; Anthropic 200 with `stop_reason: "refusal"` (it has no
    /// error status for this).
    ContentPolicy,
    /// Exactly this status, body and headers, whatever the protocol.
    Status {
        /// The HTTP status.
        status: u16,
        /// The body, sent as `application/json`.
        body: String,
        /// Extra headers.
        headers: Vec<(String, String)>,
    },
    /// Reads the request, then resets the connection (RST) before sending anything.
    ResetBeforeHeaders,
    /// Reads the request and never answers, holding the connection until the client leaves.
    NeverAnswer,
    /// Waits this long before the first token: streams send their headers at once and then
    /// wait; whole answers wait before the reply.
    FirstTokenAfter(Duration),
    /// Sends this many tokens, then closes the connection in the middle of the body.
    CutAfter(usize),
    /// Sends this many tokens, then goes silent, holding the connection open.
    StallAfter(usize),
    /// Sends this many tokens, then an event whose JSON is cut short, then the rest of the
    /// stream. A whole answer is a 200 whose body is not valid JSON.
    MalformedAfter(usize),
    /// Sends every token, then ends the body cleanly without the protocol's finish and end
    /// events (`finish_reason` and `[DONE]`; `message_delta` and `message_stop`;
    /// `finishReason`). A whole answer is sent without a length, half of it, ended by closing
    /// the connection.
    NoTerminator,
}

impl Fault {
    /// HTTP 429, with or without `Retry-After`.
    pub fn rate_limited(retry_after: Option<Duration>) -> Fault {
        Fault::RateLimited { retry_after }
    }

    /// A short stable name for reports (`healthy`, `rate_limited`, `reset`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Healthy => "healthy",
            Fault::RateLimited {
                retry_after: Some(_),
            } => "rate_limited_retry_after",
            Fault::RateLimited { retry_after: None } => "rate_limited",
            Fault::ServerError => "server_error",
            Fault::Unavailable => "unavailable",
            Fault::Overloaded => "overloaded",
            Fault::ContextLengthExceeded => "context_length",
            Fault::ContentPolicy => "content_policy",
            Fault::Status { .. } => "status",
            Fault::ResetBeforeHeaders => "reset",
            Fault::NeverAnswer => "never_answer",
            Fault::FirstTokenAfter(_) => "slow_first_token",
            Fault::CutAfter(_) => "cut",
            Fault::StallAfter(_) => "stall",
            Fault::MalformedAfter(_) => "malformed",
            Fault::NoTerminator => "no_terminator",
        }
    }

    /// One of every kind of fault, with waits and token counts picked for an answer of
    /// `tokens` tokens and a client whose limits are around `limit` (slow first tokens come
    /// after twice the limit; `Retry-After` asks for a tenth of it).
    pub fn every_kind(tokens: usize, limit: Duration) -> Vec<Fault> {
        vec![
            Fault::rate_limited(Some(limit / 10)),
            Fault::rate_limited(None),
            Fault::ServerError,
            Fault::Unavailable,
            Fault::Overloaded,
            Fault::ContextLengthExceeded,
            Fault::ContentPolicy,
            Fault::ResetBeforeHeaders,
            Fault::NeverAnswer,
            Fault::FirstTokenAfter(limit * 2),
            Fault::CutAfter(tokens * 2 / 3),
            Fault::StallAfter(tokens / 3),
            Fault::MalformedAfter(tokens / 2),
            Fault::NoTerminator,
        ]
    }
}

/// One request as the fault provider saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct Arrival {
    /// When the whole request had been read.
    pub at: Instant,
    /// Time since the provider started.
    pub offset: Duration,
    /// The protocol the path asked for (`None` for a path it does not know).
    pub protocol: Option<Protocol>,
    /// Whether a stream was asked for.
    pub stream: bool,
    /// The model the request named.
    pub model: String,
    /// What the provider did with it.
    pub fault: Fault,
}

/// Random faults for requests past the script: with probability `rate`, one of `faults`
/// picked uniformly; otherwise [`Fault::Healthy`].
#[derive(Clone, Debug)]
struct RandomFaults {
    rng: fastrand::Rng,
    rate: f64,
    faults: Vec<Fault>,
}

#[derive(Clone, Debug)]
struct Plan {
    script: Vec<Fault>,
    otherwise: Fault,
    down: Option<(Duration, Fault)>,
    random: Option<RandomFaults>,
    tokens: usize,
    token_interval: Duration,
    input_tokens: u64,
}

/// Builds a [`FaultProvider`]; see the [module docs](self).
#[derive(Clone, Debug)]
#[must_use]
pub struct FaultProviderBuilder {
    plan: Plan,
}

impl FaultProviderBuilder {
    /// Sets the faults for the first requests, one per request, in order.
    pub fn script(mut self, faults: impl IntoIterator<Item = Fault>) -> FaultProviderBuilder {
        self.plan.script = faults.into_iter().collect();
        self
    }

    /// Sets what every request after the script gets (default [`Fault::Healthy`]).
    pub fn then(mut self, fault: Fault) -> FaultProviderBuilder {
        self.plan.otherwise = fault;
        self
    }

    /// Answers every request with `fault` for `duration` from the start, then follows the
    /// script (requests during the outage do not use up the script).
    pub fn down_for(mut self, duration: Duration, fault: Fault) -> FaultProviderBuilder {
        self.plan.down = Some((duration, fault));
        self
    }

    /// After the script, gives each request one of `faults` with probability `rate`
    /// (0.0–1.0), picked by a generator seeded with `seed`, and a healthy answer otherwise.
    pub fn random(
        mut self,
        seed: u64,
        rate: f64,
        faults: impl IntoIterator<Item = Fault>,
    ) -> FaultProviderBuilder {
        self.plan.random = Some(RandomFaults {
            rng: fastrand::Rng::with_seed(seed),
            rate: rate.clamp(0.0, 1.0),
            faults: faults.into_iter().collect(),
        });
        self
    }

    /// Sets how many tokens a whole answer has (default 8). Token `i` is `tok{i}`, joined by
    /// spaces; see [`answer_text`].
    pub fn tokens(mut self, tokens: usize) -> FaultProviderBuilder {
        self.plan.tokens = tokens;
        self
    }

    /// Sets the pause between two streamed tokens (default none).
    pub fn token_interval(mut self, interval: Duration) -> FaultProviderBuilder {
        self.plan.token_interval = interval;
        self
    }

    /// Sets the prompt token count answers report (default 12); the output count is the
    /// number of tokens.
    pub fn input_tokens(mut self, input_tokens: u64) -> FaultProviderBuilder {
        self.plan.input_tokens = input_tokens;
        self
    }

    /// Binds `127.0.0.1:0` and starts serving.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub async fn start(self) -> std::io::Result<FaultProvider> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (shutdown, watch_rx) = watch::channel(());
        let shared = Arc::new(Shared {
            started: Instant::now(),
            tokens: (0..self.plan.tokens).map(token).collect(),
            state: Mutex::new(State {
                plan: self.plan,
                next: 0,
                arrivals: Vec::new(),
            }),
            ids: AtomicU64::new(0),
        });
        tokio::spawn(accept_loop(listener, Arc::clone(&shared), watch_rx));
        Ok(FaultProvider {
            addr,
            shared,
            _shutdown: shutdown,
        })
    }
}

/// Token `i` of an answer as it appears in the text: `tok{i}`, with a leading space after
/// the first.
fn token(i: usize) -> String {
    if i == 0 {
        "tok0".to_owned()
    } else {
        format!(" tok{i}")
    }
}

/// Returns the text of the first `n` tokens of every answer: `tok0 tok1 … tok{n-1}`.
pub fn answer_text(n: usize) -> String {
    (0..n).map(token).collect()
}

/// The parts of the plan an answer needs.
#[derive(Clone, Copy, Debug)]
struct Pace {
    token_interval: Duration,
    input_tokens: u64,
}

struct State {
    plan: Plan,
    next: usize,
    arrivals: Vec<Arrival>,
}

struct Shared {
    started: Instant,
    tokens: Vec<String>,
    state: Mutex<State>,
    ids: AtomicU64,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-written (every
        // update is one push or one increment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Picks the fault for a request and records its arrival.
    fn arrive(&self, protocol: Option<Protocol>, stream: bool, model: String) -> (Fault, Pace) {
        let at = Instant::now();
        let offset = at.duration_since(self.started);
        let mut state = self.lock();
        let fault = match &state.plan.down {
            Some((duration, fault)) if offset < *duration => fault.clone(),
            _ => {
                let index = state.next;
                state.next += 1;
                match state.plan.script.get(index) {
                    Some(fault) => fault.clone(),
                    None => match &mut state.plan.random {
                        Some(random) => {
                            if random.rng.f64() < random.rate && !random.faults.is_empty() {
                                let pick = random.rng.usize(..random.faults.len());
                                random.faults[pick].clone()
                            } else {
                                Fault::Healthy
                            }
                        }
                        None => state.plan.otherwise.clone(),
                    },
                }
            }
        };
        state.arrivals.push(Arrival {
            at,
            offset,
            protocol,
            stream,
            model,
            fault: fault.clone(),
        });
        let pace = Pace {
            token_interval: state.plan.token_interval,
            input_tokens: state.plan.input_tokens,
        };
        (fault, pace)
    }
}

/// A running fault-injecting provider; see the [module docs](self). Dropping it stops the
/// server and releases every held connection.
pub struct FaultProvider {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _shutdown: watch::Sender<()>,
}

impl fmt::Debug for FaultProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProvider")
            .field("addr", &self.addr)
            .field("requests", &self.requests())
            .finish_non_exhaustive()
    }
}

impl FaultProvider {
    /// Starts a builder: healthy answers of 8 tokens, no script.
    pub fn builder() -> FaultProviderBuilder {
        FaultProviderBuilder {
            plan: Plan {
                script: Vec::new(),
                otherwise: Fault::Healthy,
                down: None,
                random: None,
                tokens: 8,
                token_interval: Duration::ZERO,
                input_tokens: 12,
            },
        }
    }

    /// Starts a provider that answers every request healthily with `tokens` tokens.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub async fn healthy(tokens: usize) -> std::io::Result<FaultProvider> {
        FaultProvider::builder().tokens(tokens).start().await
    }

    /// Returns `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Returns the base URL a client of `protocol` is given: the root for Anthropic and
    /// Gemini, `…/v1` for OpenAI (as the official SDKs expect).
    pub fn base_url(&self, protocol: Protocol) -> String {
        match protocol {
            Protocol::OpenAi => format!("{}/v1", self.url()),
            Protocol::Anthropic | Protocol::Gemini => self.url(),
        }
    }

    /// Returns how many requests arrived.
    pub fn requests(&self) -> usize {
        self.shared.lock().arrivals.len()
    }

    /// Returns every request's arrival record, in order.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.shared.lock().arrivals.clone()
    }

    /// Returns the time between each two consecutive arrivals.
    pub fn gaps(&self) -> Vec<Duration> {
        let arrivals = self.arrivals();
        arrivals
            .windows(2)
            .map(|w| w[1].at.duration_since(w[0].at))
            .collect()
    }

    /// Returns when the provider started (arrival offsets count from here).
    pub fn started(&self) -> Instant {
        self.shared.started
    }

    /// Returns the text of a complete healthy answer.
    pub fn answer_text(&self) -> String {
        self.shared.tokens.concat()
    }

    /// Returns how many tokens a complete answer has.
    pub fn tokens(&self) -> usize {
        self.shared.tokens.len()
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<()>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(connection(stream, Arc::clone(&shared), shutdown.clone()));
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Whether a connection can carry another request after an answer.
enum After {
    KeepAlive,
    Close,
}

async fn connection(mut stream: TcpStream, shared: Arc<Shared>, mut shutdown: watch::Receiver<()>) {
    let mut buf = Vec::new();
    loop {
        let request = tokio::select! {
            read = http::read_request(&mut stream, &mut buf) => match read {
                Ok(Some(request)) => request,
                Ok(None) | Err(_) => return,
            },
            _ = shutdown.changed() => return,
        };
        let protocol = Protocol::of_path(&request.path);
        let (stream_asked, model, include_usage) = describe(protocol, &request);
        let (fault, plan) = shared.arrive(protocol, stream_asked, model.clone());
        let Some(protocol) = protocol else {
            let body = r#"{"error":{"message":"no such route on the fault provider"}}"#;
            let head = http::head(404, "application/json", Some(body.len()), &[], false);
            if http::write(&mut stream, &(head + body)).await.is_err() {
                return;
            }
            continue;
        };
        let id = format!("fault-{}", shared.ids.fetch_add(1, Ordering::Relaxed));
        let answer = Answer {
            protocol,
            model: &model,
            id,
            tokens: &shared.tokens,
            input_tokens: plan.input_tokens,
            include_usage,
        };
        let exchange = Exchange {
            answer,
            stream: stream_asked,
            interval: plan.token_interval,
        };
        let after = match fault {
            Fault::ResetBeforeHeaders => {
                http::reset(stream);
                return;
            }
            fault => exchange.serve(&fault, &mut stream, &mut shutdown).await,
        };
        match after {
            Ok(After::KeepAlive) => {}
            Ok(After::Close) | Err(_) => return,
        }
    }
}

/// Reads what a request asks for: a stream or not, the model, and (OpenAI) a usage chunk.
fn describe(protocol: Option<Protocol>, request: &Request) -> (bool, String, bool) {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let flag = |v: &Value| v.as_bool().unwrap_or(false);
    match protocol {
        Some(Protocol::Gemini) => {
            let path = request.path.split('?').next().unwrap_or_default();
            let model = path
                .rsplit("models/")
                .next()
                .and_then(|rest| rest.split(':').next())
                .unwrap_or_default()
                .to_owned();
            (path.ends_with(":streamGenerateContent"), model, false)
        }
        _ => (
            flag(&body["stream"]),
            body["model"].as_str().unwrap_or_default().to_owned(),
            flag(&body["stream_options"]["include_usage"]),
        ),
    }
}

/// One request being answered.
struct Exchange<'a> {
    answer: Answer<'a>,
    stream: bool,
    interval: Duration,
}

impl Exchange<'_> {
    async fn serve(
        &self,
        fault: &Fault,
        socket: &mut TcpStream,
        shutdown: &mut watch::Receiver<()>,
    ) -> std::io::Result<After> {
        let protocol = self.answer.protocol;
        let status_case = match fault {
            Fault::RateLimited { .. } => Some(ErrorCase::RateLimited),
            Fault::ServerError => Some(ErrorCase::Server),
            Fault::Unavailable => Some(ErrorCase::Unavailable),
            Fault::Overloaded => Some(ErrorCase::Overloaded),
            Fault::ContextLengthExceeded => Some(ErrorCase::ContextLength),
            _ => None,
        };
        if let Some(case) = status_case {
            let (status, body) = error_body(protocol, case);
            let mut headers = Vec::new();
            if let Fault::RateLimited {
                retry_after: Some(wait),
            } = fault
            {
                headers.push(("retry-after".to_owned(), retry_after_value(*wait)));
            }
            return json_reply(socket, status, &body.to_string(), &headers).await;
        }
        match fault {
            Fault::Status {
                status,
                body,
                headers,
            } => json_reply(socket, *status, body, headers).await,
            Fault::ContentPolicy => {
                let (status, body) = self.answer.content_policy();
                if self.stream && status == 200 {
                    let events = self.answer.content_policy_stream();
                    let plan = StreamPlan {
                        tail: events,
                        ..StreamPlan::default()
                    };
                    self.stream_out(socket, shutdown, &plan, 0, Ending::Clean, false)
                        .await
                } else {
                    json_reply(socket, status, &body.to_string(), &[]).await
                }
            }
            Fault::NeverAnswer => {
                http::hold(socket, shutdown, None).await;
                Ok(After::Close)
            }
            _ if self.stream => self.serve_stream(fault, socket, shutdown).await,
            _ => self.serve_whole(fault, socket, shutdown).await,
        }
    }

    async fn serve_whole(
        &self,
        fault: &Fault,
        socket: &mut TcpStream,
        shutdown: &mut watch::Receiver<()>,
    ) -> std::io::Result<After> {
        let body = self.answer.whole().to_string();
        let tokens = self.answer.tokens.len().max(1);
        let share = |n: usize| {
            let mut at = body.len() * n.min(tokens) / tokens;
            while !body.is_char_boundary(at) {
                at -= 1;
            }
            &body[..at]
        };
        match fault {
            Fault::FirstTokenAfter(wait) => {
                if !http::pause(*wait, shutdown).await {
                    return Ok(After::Close);
                }
                json_reply(socket, 200, &body, &[]).await
            }
            Fault::CutAfter(n) => {
                let head = http::head(200, "application/json", Some(body.len()), &[], false);
                http::write(socket, &(head + share(*n))).await?;
                Ok(After::Close)
            }
            Fault::StallAfter(n) => {
                let head = http::head(200, "application/json", Some(body.len()), &[], false);
                http::write(socket, &(head + share(*n))).await?;
                http::hold(socket, shutdown, None).await;
                Ok(After::Close)
            }
            Fault::MalformedAfter(n) => {
                let broken = share(*n).to_owned();
                json_reply(socket, 200, &broken, &[]).await
            }
            Fault::NoTerminator => {
                let head = http::head(200, "application/json", None, &[], true);
                http::write(socket, &(head + share(tokens / 2))).await?;
                Ok(After::Close)
            }
            _ => json_reply(socket, 200, &body, &[]).await,
        }
    }

    async fn serve_stream(
        &self,
        fault: &Fault,
        socket: &mut TcpStream,
        shutdown: &mut watch::Receiver<()>,
    ) -> std::io::Result<After> {
        let mut plan = self.answer.stream();
        let all = plan.tokens.len();
        match fault {
            Fault::FirstTokenAfter(wait) => {
                let mut out = http::head(200, "text/event-stream", None, &[], false);
                for event in &plan.head {
                    out.push_str(&http::chunk(event));
                }
                http::write(socket, &out).await?;
                if !http::pause(*wait, shutdown).await {
                    return Ok(After::Close);
                }
                plan.head.clear();
                self.stream_out(socket, shutdown, &plan, all, Ending::Clean, true)
                    .await
            }
            Fault::CutAfter(n) => {
                self.stream_out(socket, shutdown, &plan, *n, Ending::Cut, false)
                    .await
            }
            Fault::StallAfter(n) => {
                self.stream_out(socket, shutdown, &plan, *n, Ending::Stall, false)
                    .await
            }
            Fault::MalformedAfter(n) => {
                plan.tokens
                    .insert((*n).min(all), self.answer.malformed_event());
                self.stream_out(socket, shutdown, &plan, all + 1, Ending::Clean, false)
                    .await
            }
            Fault::NoTerminator => {
                plan.tail.clear();
                self.stream_out(socket, shutdown, &plan, all, Ending::Clean, false)
                    .await
            }
            _ => {
                self.stream_out(socket, shutdown, &plan, all, Ending::Clean, false)
                    .await
            }
        }
    }

    /// Writes the response head (unless `head_sent`), the head events, the first `tokens`
    /// token events, and then ends as `ending` says: the tail events and the last chunk only
    /// on a clean ending, and only after every token.
    async fn stream_out(
        &self,
        socket: &mut TcpStream,
        shutdown: &mut watch::Receiver<()>,
        plan: &StreamPlan,
        tokens: usize,
        ending: Ending,
        head_sent: bool,
    ) -> std::io::Result<After> {
        let mut out = if head_sent {
            String::new()
        } else {
            http::head(200, "text/event-stream", None, &[], false)
        };
        for event in &plan.head {
            out.push_str(&http::chunk(event));
        }
        let tokens = tokens.min(plan.tokens.len());
        for event in &plan.tokens[..tokens] {
            out.push_str(&http::chunk(event));
            if !self.interval.is_zero() {
                http::write(socket, &out).await?;
                out.clear();
                if !http::pause(self.interval, shutdown).await {
                    return Ok(After::Close);
                }
            }
        }
        match ending {
            Ending::Clean => {
                if tokens == plan.tokens.len() {
                    for event in &plan.tail {
                        out.push_str(&http::chunk(event));
                    }
                }
                out.push_str(http::LAST_CHUNK);
                http::write(socket, &out).await?;
                Ok(After::KeepAlive)
            }
            Ending::Cut => {
                http::write(socket, &out).await?;
                Ok(After::Close)
            }
            Ending::Stall => {
                http::write(socket, &out).await?;
                http::hold(socket, shutdown, None).await;
                Ok(After::Close)
            }
        }
    }
}

/// How a stream ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// The remaining events and the last chunk.
    Clean,
    /// The connection closes in the middle of the body.
    Cut,
    /// Silence, with the connection held open.
    Stall,
}

async fn json_reply(
    socket: &mut TcpStream,
    status: u16,
    body: &str,
    headers: &[(String, String)],
) -> std::io::Result<After> {
    let head = http::head(status, "application/json", Some(body.len()), headers, false);
    http::write(socket, &(head + body)).await?;
    Ok(After::KeepAlive)
}
