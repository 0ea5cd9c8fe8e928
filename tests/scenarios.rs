//! Failure scenarios over real sockets: the library's real clients, in the resilience stack,
//! against [`FaultProvider`] upstreams that misbehave on purpose, on every protocol.
//!
//! The stack is the default order of `middleware/mod.rs`:
//!
//! ```text
//! DeadlineClient (60 s)
//!   └─ FallbackClient
//!       ├─ primary: CircuitBreakerClient → RetryClient → TimeoutClient → provider → FaultProvider
//!       └─ backup:  CircuitBreakerClient → RetryClient → TimeoutClient → provider → FaultProvider
//! ```
//!
//! # Scaled time
//!
//! Scenarios are written in scenario seconds, and **one scenario second is 20 ms** of real
//! time ([`SECOND`]). Everything is scaled the same way: the upstreams' waits (a first token
//! after 20 s comes after 400 ms; `Retry-After: 2` is sent as `Retry-After: 0.04`), and the
//! client's limits ([`limits`]: 10 s attempt, first-token and idle limits; retries with a
//! 1 s base delay; a breaker that opens after 3 failures and cools down for 10 s, doubling
//! up to 20 s; a 60 s deadline). The whole suite runs in a few seconds of wall time.
//!
//! Every scenario asserts the attempts each target received, the waits between a target's
//! attempts, a bound on the call's wall time, and that no truncated answer comes back as a
//! success. Scenarios run on the three protocols (OpenAI, Anthropic, Gemini) and, where the
//! fault means something for both, whole and streamed; a table holds the single-call
//! scenarios, and the ones that need several calls have their own tests below it. Stream
//! continuation, last, mixes protocols: a primary of each protocol, continued (or not) on a
//! backup of another.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use futures_util::StreamExt;
use switchboard::providers::HttpSettings;
use switchboard::{
    create_client_with, BreakerConfig, Capability, ChatClient, ChatClientExt, ChatRequest,
    ChatResponse, CircuitBreakerClient, ClientOptions, DeadlineClient, DynClient, ErrorKind,
    FallbackClient, FinishKind, Outcome, RetryClient, RetryPolicy, StreamEvent, TimeoutClient,
    Timeouts,
};
use switchboard_testkit::fault::{
    answer_text, Arrival, Fault, FaultProvider, FaultProviderBuilder, Protocol,
};

/// One scenario second in real time.
const SECOND: Duration = Duration::from_millis(20);

/// `n` scenario seconds in real time.
fn secs(n: f64) -> Duration {
    SECOND.mul_f64(n)
}

/// The client's limits, in scenario seconds.
mod limits {
    /// Attempt limit, first-token limit and idle limit of every target.
    pub(super) const ATTEMPT: f64 = 10.0;
    /// Base of the retry backoff; retry `n` waits up to `BASE_DELAY × 2ⁿ`.
    pub(super) const BASE_DELAY: f64 = 1.0;
    /// Cap on one backoff wait.
    pub(super) const MAX_DELAY: f64 = 4.0;
    /// Longest `Retry-After` honoured.
    pub(super) const MAX_RETRY_AFTER: f64 = 10.0;
    /// Retries after the first attempt.
    pub(super) const RETRIES: u32 = 2;
    /// Failed calls in a row that open a breaker.
    pub(super) const BREAKER_FAILURES: u32 = 3;
    /// First cooldown of an open breaker.
    pub(super) const COOLDOWN: f64 = 10.0;
    /// Longest cooldown after failed probes.
    pub(super) const MAX_COOLDOWN: f64 = 20.0;
    /// The whole call's deadline.
    pub(super) const DEADLINE: f64 = 60.0;
    /// Allowance for scheduling and loopback HTTP on a busy machine, added to upper bounds.
    pub(super) const SLACK: f64 = 20.0;
}

const PRIMARY: &str = "primary-model";
const BACKUP: &str = "backup-model";

/// Whole (non-streaming) or streamed calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Whole,
    Stream,
}

const BOTH: &[Mode] = &[Mode::Whole, Mode::Stream];
const STREAM_ONLY: &[Mode] = &[Mode::Stream];

/// One target of the stack: breaker → retry → timeout → the real provider client.
fn target(protocol: Protocol, upstream: &FaultProvider, model: &str) -> DynClient {
    let options = ClientOptions::new()
        .retry(None)
        .env(|_| None)
        .api_key("scenario-key-not-real")
        .base_url(upstream.base_url(protocol))
        // Backstops far above the scaled limits: the TimeoutClient is what fires.
        .http_settings(HttpSettings {
            request_timeout: Duration::from_secs(5),
            stream_idle_timeout: Duration::from_secs(5),
            ..HttpSettings::default()
        });
    let provider = create_client_with(&protocol.spec(model), &options).expect("client");
    let limit = secs(limits::ATTEMPT);
    let timeouts = Timeouts::attempt(limit)
        .with_first_token(limit)
        .with_idle(limit);
    let retry = RetryPolicy::default()
        .with_max_retries(limits::RETRIES)
        .with_base_delay(secs(limits::BASE_DELAY))
        .with_max_delay(secs(limits::MAX_DELAY))
        .with_max_retry_after(secs(limits::MAX_RETRY_AFTER));
    let breaker = BreakerConfig::default()
        .with_consecutive_failures(limits::BREAKER_FAILURES)
        .with_cooldown(secs(limits::COOLDOWN))
        .with_max_cooldown(secs(limits::MAX_COOLDOWN));
    CircuitBreakerClient::new(
        RetryClient::new(TimeoutClient::new(provider, timeouts), retry),
        breaker,
    )
    .boxed()
}

/// The whole stack over a primary and a backup upstream.
fn stack(protocol: Protocol, primary: &FaultProvider, backup: &FaultProvider) -> DynClient {
    let chain = FallbackClient::new(vec![
        target(protocol, primary, PRIMARY),
        target(protocol, backup, BACKUP),
    ])
    .expect("chain");
    DeadlineClient::new(chain, secs(limits::DEADLINE)).boxed()
}

async fn call(client: &DynClient, mode: Mode) -> switchboard::Result<ChatResponse> {
    let req = ChatRequest::user("hello");
    match mode {
        Mode::Whole => client.chat(&req).await,
        Mode::Stream => match client.chat_stream(&req).await {
            Ok(stream) => stream.collect_response().await,
            Err(e) => Err(e),
        },
    }
}

/// Asserts that a success is a complete answer from `model`: the whole text, finished.
fn assert_complete(r: &ChatResponse, model: &str, tokens: usize, label: &str) {
    assert_eq!(r.model, model, "{label}: answered by");
    assert_eq!(
        r.text(),
        answer_text(tokens),
        "{label}: a truncated answer passed as success"
    );
    assert_eq!(r.finish_reason.kind, FinishKind::Stop, "{label}");
    let last = r.attempts().last().expect("attempts");
    assert_eq!(
        (last.model.as_str(), last.outcome),
        (model, Outcome::Success),
        "{label}"
    );
}

/// The retry backoff ceiling before retry `n` (from 0), in real time.
fn backoff_ceiling(n: usize) -> Duration {
    secs((limits::BASE_DELAY * 2f64.powi(n as i32)).min(limits::MAX_DELAY))
}

// ---- the single-call table ------------------------------------------------------------

/// How a scenario's call ends.
#[derive(Clone, Copy, Debug)]
enum End {
    /// A complete answer from this model.
    Answer(&'static str),
    /// A typed error of this kind; for `StreamInterrupted`, the partial answer holds this
    /// many tokens.
    Error(ErrorKind, Option<usize>),
}

/// The waits between the primary's attempts.
#[derive(Clone, Copy, Debug)]
enum Waits {
    /// At most one attempt: nothing to wait for.
    None,
    /// Each wait is a jittered backoff: at most its ceiling (plus slack).
    Backoff,
    /// Each wait is this many scenario seconds (the `Retry-After` asked for), at least and
    /// at most (plus slack).
    Exactly(f64),
}

/// What one scenario must do in one mode.
#[derive(Clone, Copy, Debug)]
struct Expect {
    end: End,
    primary: usize,
    backup: usize,
    waits: Waits,
    /// Wall time bounds in scenario seconds: at least, at most (before slack).
    wall: (f64, f64),
}

struct Scenario {
    name: &'static str,
    tokens: usize,
    primary: fn() -> FaultProviderBuilder,
    protocols: &'static [Protocol],
    modes: &'static [Mode],
    expect: fn(Mode) -> Expect,
}

fn script(faults: impl IntoIterator<Item = Fault>) -> FaultProviderBuilder {
    FaultProvider::builder().script(faults)
}

fn always(fault: Fault) -> FaultProviderBuilder {
    FaultProvider::builder().then(fault)
}

const fn expect(end: End, primary: usize, backup: usize, waits: Waits, wall: (f64, f64)) -> Expect {
    Expect {
        end,
        primary,
        backup,
        waits,
        wall,
    }
}

/// The longest the jittered backoff of a failing target can take, in scenario seconds.
const ALL_BACKOFF: f64 = limits::BASE_DELAY * 3.0;

const ALL: &[Protocol] = &Protocol::ALL;

/// Anthropic has no content-policy error status: it answers 200 with
/// `stop_reason: "refusal"`, which is a complete answer (see the testkit's own tests).
const REJECTS_CONTENT: &[Protocol] = &[Protocol::OpenAi, Protocol::Gemini];

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "429 with Retry-After: 2, then healthy",
        tokens: 8,
        primary: || script([Fault::rate_limited(Some(secs(2.0))), Fault::Healthy]),
        protocols: ALL,
        modes: BOTH,
        expect: |_| expect(End::Answer(PRIMARY), 2, 0, Waits::Exactly(2.0), (2.0, 2.0)),
    },
    Scenario {
        name: "429 without Retry-After, persistent",
        tokens: 8,
        primary: || always(Fault::rate_limited(None)),
        protocols: ALL,
        modes: BOTH,
        expect: |_| {
            expect(
                End::Answer(BACKUP),
                3,
                1,
                Waits::Backoff,
                (0.0, ALL_BACKOFF),
            )
        },
    },
    Scenario {
        name: "one 500, then healthy",
        tokens: 8,
        primary: || script([Fault::ServerError, Fault::Healthy]),
        protocols: ALL,
        modes: BOTH,
        expect: |_| {
            expect(
                End::Answer(PRIMARY),
                2,
                0,
                Waits::Backoff,
                (0.0, limits::BASE_DELAY),
            )
        },
    },
    Scenario {
        name: "persistent 503",
        tokens: 8,
        primary: || always(Fault::Unavailable),
        protocols: ALL,
        modes: BOTH,
        expect: |_| {
            expect(
                End::Answer(BACKUP),
                3,
                1,
                Waits::Backoff,
                (0.0, ALL_BACKOFF),
            )
        },
    },
    Scenario {
        name: "TCP reset before headers, persistent",
        tokens: 8,
        primary: || always(Fault::ResetBeforeHeaders),
        protocols: ALL,
        modes: BOTH,
        expect: |_| {
            expect(
                End::Answer(BACKUP),
                3,
                1,
                Waits::Backoff,
                (0.0, ALL_BACKOFF),
            )
        },
    },
    Scenario {
        // A timeout that fired on our side is not retried: one attempt limit, then the backup.
        name: "an upstream that never answers",
        tokens: 8,
        primary: || always(Fault::NeverAnswer),
        protocols: ALL,
        modes: BOTH,
        expect: |_| {
            expect(
                End::Answer(BACKUP),
                1,
                1,
                Waits::None,
                (limits::ATTEMPT, limits::ATTEMPT),
            )
        },
    },
    Scenario {
        // Streams: the first-token limit fires; whole answers: the attempt limit.
        name: "first token after 20 s",
        tokens: 8,
        primary: || always(Fault::FirstTokenAfter(secs(20.0))),
        protocols: ALL,
        modes: BOTH,
        expect: |_| {
            expect(
                End::Answer(BACKUP),
                1,
                1,
                Waits::None,
                (limits::ATTEMPT, limits::ATTEMPT),
            )
        },
    },
    Scenario {
        // Streamed: content reached the caller, so no fallback: an interrupted stream with
        // the 40 tokens. Whole: the body is cut, a transport error, retried, then the backup.
        name: "stream cut after 40 of 60 tokens",
        tokens: 60,
        primary: || always(Fault::CutAfter(40)),
        protocols: ALL,
        modes: BOTH,
        expect: |mode| match mode {
            Mode::Stream => expect(
                End::Error(ErrorKind::StreamInterrupted, Some(40)),
                1,
                0,
                Waits::None,
                (0.0, 0.0),
            ),
            Mode::Whole => expect(
                End::Answer(BACKUP),
                3,
                1,
                Waits::Backoff,
                (0.0, ALL_BACKOFF),
            ),
        },
    },
    Scenario {
        // Streamed: the idle limit ends it with the 20 tokens. Whole: the attempt limit.
        name: "stream that stalls after 20 tokens",
        tokens: 60,
        primary: || always(Fault::StallAfter(20)),
        protocols: ALL,
        modes: BOTH,
        expect: |mode| match mode {
            Mode::Stream => expect(
                End::Error(ErrorKind::StreamInterrupted, Some(20)),
                1,
                0,
                Waits::None,
                (limits::ATTEMPT, limits::ATTEMPT),
            ),
            Mode::Whole => expect(
                End::Answer(BACKUP),
                1,
                1,
                Waits::None,
                (limits::ATTEMPT, limits::ATTEMPT),
            ),
        },
    },
    Scenario {
        // A decode error is not retried; before content it falls back, after it interrupts.
        name: "a malformed SSE event after 10 tokens",
        tokens: 30,
        primary: || always(Fault::MalformedAfter(10)),
        protocols: ALL,
        modes: BOTH,
        expect: |mode| match mode {
            Mode::Stream => expect(
                End::Error(ErrorKind::StreamInterrupted, Some(10)),
                1,
                0,
                Waits::None,
                (0.0, 0.0),
            ),
            Mode::Whole => expect(End::Answer(BACKUP), 1, 1, Waits::None, (0.0, 0.0)),
        },
    },
    Scenario {
        // Every token arrives, but the provider never says it finished: not a success.
        name: "a stream with no terminator",
        tokens: 30,
        primary: || always(Fault::NoTerminator),
        protocols: ALL,
        modes: STREAM_ONLY,
        expect: |_| {
            expect(
                End::Error(ErrorKind::StreamInterrupted, Some(30)),
                1,
                0,
                Waits::None,
                (0.0, 0.0),
            )
        },
    },
    Scenario {
        // Not retried (the same request fails the same way); another model may have room.
        name: "400 context_length_exceeded",
        tokens: 8,
        primary: || always(Fault::ContextLengthExceeded),
        protocols: ALL,
        modes: BOTH,
        expect: |_| expect(End::Answer(BACKUP), 1, 1, Waits::None, (0.0, 0.0)),
    },
    Scenario {
        name: "400 content policy",
        tokens: 8,
        primary: || always(Fault::ContentPolicy),
        protocols: REJECTS_CONTENT,
        modes: BOTH,
        expect: |_| expect(End::Answer(BACKUP), 1, 1, Waits::None, (0.0, 0.0)),
    },
];

/// What one row saw.
struct Seen {
    result: switchboard::Result<ChatResponse>,
    wall: Duration,
    primary: Vec<Arrival>,
    backup: Vec<Arrival>,
}

async fn run_row(scenario: &Scenario, protocol: Protocol, mode: Mode) -> Seen {
    let primary = (scenario.primary)()
        .tokens(scenario.tokens)
        .start()
        .await
        .unwrap();
    let backup = FaultProvider::healthy(scenario.tokens).await.unwrap();
    let client = stack(protocol, &primary, &backup);
    let started = Instant::now();
    let result = call(&client, mode).await;
    let wall = started.elapsed();
    Seen {
        result,
        wall,
        primary: primary.arrivals(),
        backup: backup.arrivals(),
    }
}

fn check(scenario: &Scenario, protocol: Protocol, mode: Mode, seen: &Seen) {
    let label = format!("{} / {protocol:?} / {mode:?}", scenario.name);
    let want = (scenario.expect)(mode);
    // No truncated answer may pass as a success, whatever the row expects.
    if let Ok(r) = &seen.result {
        assert_eq!(
            r.text(),
            answer_text(scenario.tokens),
            "{label}: truncated success"
        );
    }
    match (want.end, &seen.result) {
        (End::Answer(model), Ok(r)) => assert_complete(r, model, scenario.tokens, &label),
        (End::Error(kind, partial), Err(e)) => {
            assert_eq!(e.kind(), kind, "{label}: {e}");
            if let Some(tokens) = partial {
                let got = e.partial().map(ChatResponse::text);
                assert_eq!(got, Some(answer_text(tokens)), "{label}: partial answer");
            }
        }
        (end, got) => panic!("{label}: expected {end:?}, got {got:?}"),
    }
    assert_eq!(
        (seen.primary.len(), seen.backup.len()),
        (want.primary, want.backup),
        "{label}: attempts (primary, backup)"
    );
    let gaps: Vec<Duration> = seen
        .primary
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at))
        .collect();
    let slack = secs(limits::SLACK);
    for (n, gap) in gaps.iter().enumerate() {
        match want.waits {
            Waits::None => panic!("{label}: unexpected wait {gap:?}"),
            Waits::Backoff => assert!(
                *gap <= backoff_ceiling(n) + slack,
                "{label}: wait {n} was {gap:?}, over the backoff ceiling {:?}",
                backoff_ceiling(n)
            ),
            Waits::Exactly(s) => assert!(
                *gap >= secs(s) && *gap <= secs(s) + slack,
                "{label}: wait {n} was {gap:?}, not the {:?} asked for",
                secs(s)
            ),
        }
    }
    let (low, high) = want.wall;
    assert!(
        seen.wall >= secs(low) && seen.wall <= secs(high) + slack,
        "{label}: wall time {:?} outside {:?}..{:?}",
        seen.wall,
        secs(low),
        secs(high) + slack
    );
}

/// Runs every protocol and mode of one scenario at once and checks each.
async fn run_scenario(name: &str) {
    let scenario = SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no scenario `{name}`"));
    let rows: Vec<(Protocol, Mode)> = scenario
        .protocols
        .iter()
        .flat_map(|p| scenario.modes.iter().map(move |m| (*p, *m)))
        .collect();
    let seen = join_all(rows.iter().map(|(p, m)| run_row(scenario, *p, *m))).await;
    for ((protocol, mode), seen) in rows.iter().zip(&seen) {
        check(scenario, *protocol, *mode, seen);
    }
}

#[test]
fn every_table_row_has_its_own_test() {
    let source = include_str!("scenarios.rs");
    for scenario in SCENARIOS {
        let call = format!("run_scenario({:?})", scenario.name);
        assert_eq!(source.matches(&call).count(), 1, "{}", scenario.name);
    }
}

#[tokio::test]
async fn rate_limit_with_retry_after_waits_as_asked_then_answers() {
    run_scenario("429 with Retry-After: 2, then healthy").await;
}

#[tokio::test]
async fn persistent_rate_limit_without_retry_after_backs_off_then_falls_back() {
    run_scenario("429 without Retry-After, persistent").await;
}

#[tokio::test]
async fn one_server_error_is_retried_on_the_same_target() {
    run_scenario("one 500, then healthy").await;
}

#[tokio::test]
async fn persistent_503_exhausts_retries_then_falls_back() {
    run_scenario("persistent 503").await;
}

#[tokio::test]
async fn a_reset_connection_is_retried_then_falls_back() {
    run_scenario("TCP reset before headers, persistent").await;
}

#[tokio::test]
async fn a_silent_upstream_costs_one_attempt_limit() {
    run_scenario("an upstream that never answers").await;
}

#[tokio::test]
async fn a_late_first_token_falls_back_at_the_limit() {
    run_scenario("first token after 20 s").await;
}

#[tokio::test]
async fn a_cut_stream_is_interrupted_never_complete() {
    run_scenario("stream cut after 40 of 60 tokens").await;
}

#[tokio::test]
async fn a_stalled_stream_is_interrupted_by_the_idle_limit() {
    run_scenario("stream that stalls after 20 tokens").await;
}

#[tokio::test]
async fn a_malformed_event_is_a_typed_error() {
    run_scenario("a malformed SSE event after 10 tokens").await;
}

#[tokio::test]
async fn a_stream_without_its_terminator_is_not_a_success() {
    run_scenario("a stream with no terminator").await;
}

#[tokio::test]
async fn context_length_is_not_retried_and_falls_back() {
    run_scenario("400 context_length_exceeded").await;
}

#[tokio::test]
async fn content_policy_is_not_retried_and_falls_back() {
    run_scenario("400 content policy").await;
}

// ---- scenarios of several calls --------------------------------------------------------

/// Asserts that the waits between the attempts of each call (consecutive groups of
/// `per_call` arrivals) stay under the backoff ceilings.
fn assert_backoff_within_calls(arrivals: &[Arrival], per_call: usize, label: &str) {
    for call in arrivals.chunks(per_call) {
        for (n, pair) in call.windows(2).enumerate() {
            let gap = pair[1].at.duration_since(pair[0].at);
            assert!(
                gap <= backoff_ceiling(n) + secs(limits::SLACK),
                "{label}: wait {n} was {gap:?}"
            );
        }
    }
}

/// Runs `f` for every protocol and mode at once.
async fn each_protocol_and_mode<F, Fut>(modes: &[Mode], f: F)
where
    F: Fn(Protocol, Mode) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let rows: Vec<(Protocol, Mode)> = Protocol::ALL
        .iter()
        .flat_map(|p| modes.iter().map(move |m| (*p, *m)))
        .collect();
    join_all(rows.into_iter().map(|(p, m)| f(p, m))).await;
}

#[tokio::test]
async fn client_errors_do_not_open_the_breaker() {
    // Four calls in a row that the primary rejects as too long: each is tried once on the
    // primary (no retry) and answered by the backup, and the breaker, which opens after 3
    // counted failures, stays closed: the fourth call still reaches the primary.
    each_protocol_and_mode(BOTH, |protocol, mode| async move {
        let label = format!("{protocol:?} / {mode:?}");
        let primary = always(Fault::ContextLengthExceeded).start().await.unwrap();
        let backup = FaultProvider::healthy(8).await.unwrap();
        let client = stack(protocol, &primary, &backup);
        for _ in 0..4 {
            let started = Instant::now();
            let r = call(&client, mode).await.unwrap();
            // Nothing to wait for: no retry, no backoff.
            assert!(
                started.elapsed() <= secs(limits::SLACK),
                "{label}: {:?}",
                started.elapsed()
            );
            assert_complete(&r, BACKUP, 8, &label);
            let first = &r.attempts()[0];
            assert_eq!(first.error_kind, Some(ErrorKind::ContextLength), "{label}");
            assert_eq!(first.status, Some(400), "{label}");
        }
        assert_eq!((primary.requests(), backup.requests()), (4, 4), "{label}");
    })
    .await;
}

#[tokio::test]
async fn persistent_503_opens_the_breaker_and_later_calls_skip_the_primary() {
    each_protocol_and_mode(BOTH, |protocol, mode| async move {
        let label = format!("{protocol:?} / {mode:?}");
        let primary = always(Fault::Unavailable).start().await.unwrap();
        let backup = FaultProvider::healthy(8).await.unwrap();
        let client = stack(protocol, &primary, &backup);
        for _ in 0..limits::BREAKER_FAILURES {
            let started = Instant::now();
            let r = call(&client, mode).await.unwrap();
            let wall = started.elapsed();
            assert!(
                wall <= secs(ALL_BACKOFF + limits::SLACK),
                "{label}: {wall:?}"
            );
            assert_complete(&r, BACKUP, 8, &label);
        }
        // Each of those calls cost the primary its full retry budget, with backoff between.
        let per_call = (limits::RETRIES + 1) as usize;
        assert_eq!(
            primary.requests(),
            per_call * limits::BREAKER_FAILURES as usize,
            "{label}"
        );
        assert_backoff_within_calls(&primary.arrivals(), per_call, &label);
        let started = Instant::now();
        let r = call(&client, mode).await.unwrap();
        assert_complete(&r, BACKUP, 8, &label);
        assert!(
            started.elapsed() < secs(limits::SLACK),
            "{label}: {:?}",
            started.elapsed()
        );
        let skipped = &r.attempts()[0];
        assert_eq!(
            (skipped.model.as_str(), skipped.outcome, skipped.error_kind),
            (PRIMARY, Outcome::Skipped, Some(ErrorKind::CircuitOpen)),
            "{label}"
        );
        assert_eq!(
            primary.requests(),
            per_call * limits::BREAKER_FAILURES as usize,
            "{label}: an open breaker sends nothing"
        );
        assert_eq!(backup.requests(), 4, "{label}");
    })
    .await;
}

#[tokio::test]
async fn the_stack_returns_to_the_primary_once_it_recovers() {
    // The primary is down (503) for a minute. Calls come every 2 s for 100 s. While it is
    // down the backup answers and the open breaker keeps the primary's traffic to its
    // half-open probes; once it is back, a probe succeeds and every later call is answered
    // by the primary again.
    const OUTAGE: f64 = 60.0;
    const EVERY: f64 = 2.0;
    const CALLS: usize = 50;
    each_protocol_and_mode(BOTH, |protocol, mode| async move {
        let label = format!("{protocol:?} / {mode:?}");
        let primary = FaultProvider::builder()
            .down_for(secs(OUTAGE), Fault::Unavailable)
            .start()
            .await
            .unwrap();
        let backup = FaultProvider::healthy(8).await.unwrap();
        let client = stack(protocol, &primary, &backup);
        let start = primary.started();
        let mut answered_by = Vec::new();
        for i in 0..CALLS {
            tokio::time::sleep_until((start + secs(EVERY * i as f64)).into()).await;
            let started = Instant::now();
            let r = call(&client, mode).await.unwrap();
            let done = start.elapsed();
            // No call waits long: the breaker skips the primary instead of retrying it, and
            // the calls that open it or probe it pay only their backoff.
            let wall = started.elapsed();
            assert!(
                wall <= secs(ALL_BACKOFF + limits::SLACK),
                "{label}: {wall:?}"
            );
            assert_eq!(r.text(), answer_text(8), "{label}: truncated success");
            answered_by.push((done, r.model.clone(), r.attempts()[0].outcome));
        }
        // While the primary was down, the backup answered every call.
        for (done, model, _) in &answered_by {
            if *done < secs(OUTAGE) {
                assert_eq!(model, BACKUP, "{label}: a call at {done:?}");
            }
        }
        // The primary is back within one maximum cooldown (plus a call interval).
        let back = answered_by
            .iter()
            .position(|(_, model, _)| model == PRIMARY)
            .unwrap_or_else(|| panic!("{label}: never returned to the primary"));
        let back_at = answered_by[back].0;
        assert!(
            back_at >= secs(OUTAGE)
                && back_at <= secs(OUTAGE + limits::MAX_COOLDOWN + EVERY + limits::SLACK),
            "{label}: back on the primary at {back_at:?}"
        );
        // And stays there: the successful probe closed the breaker.
        assert!(
            answered_by[back..].iter().all(|(_, m, _)| m == PRIMARY),
            "{label}: {answered_by:?}"
        );
        // The open breaker skipped the primary for most calls during the outage.
        let skipped = answered_by
            .iter()
            .filter(|(_, _, first)| *first == Outcome::Skipped)
            .count();
        assert!(
            skipped >= 10,
            "{label}: only {skipped} calls skipped the primary"
        );
        // Traffic to the primary during the outage: the calls that opened the breaker, then
        // only probes, each at least one cooldown after the breaker opened.
        let arrivals = primary.arrivals();
        let per_call = (limits::RETRIES + 1) as usize;
        let opening = per_call * limits::BREAKER_FAILURES as usize;
        let during: Vec<&Arrival> = arrivals
            .iter()
            .filter(|a| a.offset < secs(OUTAGE))
            .collect();
        let max_probes = (OUTAGE / limits::COOLDOWN) as usize;
        assert!(
            during.len() > opening && during.len() <= opening + max_probes * per_call,
            "{label}: {} requests reached the primary during the outage",
            during.len()
        );
        // Every call or probe that reached the primary paid only its retries' backoff.
        assert_backoff_within_calls(&arrivals[..during.len()], per_call, &label);
        let first_probe = during[opening].at.duration_since(during[opening - 1].at);
        assert!(
            first_probe >= secs(limits::COOLDOWN),
            "{label}: the first probe came {first_probe:?} after the breaker opened"
        );
    })
    .await;
}

#[tokio::test]
async fn the_answer_reports_the_fallbacks_model_and_usage() {
    // The primary's body breaks before any content: a streamed Anthropic answer has already
    // reported 900 input tokens in `message_start` by then. The answer that comes back must
    // carry only the backup's model and usage.
    each_protocol_and_mode(BOTH, |protocol, mode| async move {
        let label = format!("{protocol:?} / {mode:?}");
        let primary = always(Fault::CutAfter(0))
            .input_tokens(900)
            .start()
            .await
            .unwrap();
        let backup = FaultProvider::builder()
            .tokens(9)
            .input_tokens(77)
            .start()
            .await
            .unwrap();
        let client = stack(protocol, &primary, &backup);
        let started = Instant::now();
        let r = call(&client, mode).await.unwrap();
        let wall = started.elapsed();
        assert!(
            wall <= secs(ALL_BACKOFF + limits::SLACK),
            "{label}: {wall:?}"
        );
        assert_backoff_within_calls(&primary.arrivals(), 3, &label);
        assert_complete(&r, BACKUP, 9, &label);
        assert_eq!(r.provider, protocol.provider(), "{label}");
        assert_eq!(r.served_model.as_deref(), Some(BACKUP), "{label}");
        assert_eq!(
            (
                r.usage.input_tokens,
                r.usage.output_tokens,
                r.usage.total_tokens
            ),
            (77, 9, 86),
            "{label}"
        );
        let failed: Vec<_> = r
            .attempts()
            .iter()
            .filter(|a| a.outcome == Outcome::Failed)
            .collect();
        assert!(!failed.is_empty(), "{label}");
        assert!(failed.iter().all(|a| a.model == PRIMARY), "{label}");
        assert_eq!((primary.requests(), backup.requests()), (3, 1), "{label}");
    })
    .await;
}

// ---- stream continuation ----------------------------------------------------------------

/// The stack with stream continuation on, over a primary and a backup of any protocols.
fn continuing_stack(
    (primary_protocol, primary): (Protocol, &FaultProvider),
    (backup_protocol, backup): (Protocol, &FaultProvider),
) -> DynClient {
    let chain = FallbackClient::builder()
        .client(target(primary_protocol, primary, PRIMARY))
        .client(target(backup_protocol, backup, BACKUP))
        .continuation(true)
        .build()
        .expect("chain");
    DeadlineClient::new(chain, secs(limits::DEADLINE)).boxed()
}

/// Streams one call, returning the text the caller saw arrive and how the stream ended.
async fn stream_call(client: &DynClient) -> (String, switchboard::Result<ChatResponse>) {
    let mut stream = match client.chat_stream(&ChatRequest::user("hello")).await {
        Ok(stream) => stream,
        Err(e) => return (String::new(), Err(e)),
    };
    let mut seen = String::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(StreamEvent::TextDelta { text }) => seen.push_str(&text),
            Ok(StreamEvent::Done { response }) => return (seen, Ok(*response)),
            Ok(_) => {}
            Err(e) => return (seen, Err(e)),
        }
    }
    panic!("the stream ended without `Done` or an error");
}

/// Every primary protocol paired with every backup protocol in `backups`.
fn pairs(backups: &[Protocol]) -> Vec<(Protocol, Protocol)> {
    Protocol::ALL
        .iter()
        .flat_map(|p| backups.iter().map(move |b| (*p, *b)))
        .collect()
}

#[tokio::test]
async fn a_cut_stream_is_not_continued_on_a_backup_that_rejects_prefill() {
    // Continuation is on, but the only backup speaks a protocol that answers a final
    // assistant message anew instead of continuing it. Sending it the partial answer would
    // splice a fresh answer onto the cut one; the chain must skip it without a request and
    // end the stream with the 40 tokens the caller already has.
    join_all(
        pairs(&[Protocol::OpenAi, Protocol::Gemini])
            .into_iter()
            .map(|(p, b)| async move {
                let label = format!("{p:?} cut, {b:?} backup");
                let primary = always(Fault::CutAfter(40))
                    .tokens(60)
                    .start()
                    .await
                    .unwrap();
                let backup = FaultProvider::healthy(60).await.unwrap();
                let client = continuing_stack((p, &primary), (b, &backup));
                let started = Instant::now();
                let (seen, result) = stream_call(&client).await;
                let wall = started.elapsed();
                let err = match result {
                    Ok(r) => panic!("{label}: a cut answer passed as success: {:?}", r.text()),
                    Err(e) => e,
                };
                assert_eq!(err.kind(), ErrorKind::StreamInterrupted, "{label}: {err}");
                assert_eq!(seen, answer_text(40), "{label}: text delivered");
                let partial = err.partial().expect("partial answer");
                assert_eq!(partial.text(), answer_text(40), "{label}: partial answer");
                let attempts: Vec<_> = partial
                    .attempts()
                    .iter()
                    .map(|a| (a.model.as_str(), a.outcome, a.error_kind, a.missing))
                    .collect();
                assert_eq!(
                    attempts,
                    [
                        (
                            PRIMARY,
                            Outcome::Failed,
                            Some(ErrorKind::StreamInterrupted),
                            None
                        ),
                        (
                            BACKUP,
                            Outcome::Skipped,
                            Some(ErrorKind::Unsupported),
                            Some(Capability::Prefill)
                        ),
                    ],
                    "{label}: attempts"
                );
                assert_eq!(
                    (primary.requests(), backup.requests()),
                    (1, 0),
                    "{label}: attempts (primary, backup)"
                );
                assert!(wall <= secs(limits::SLACK), "{label}: wall time {wall:?}");
            }),
    )
    .await;
}

#[tokio::test]
async fn a_cut_stream_is_continued_on_an_anthropic_backup_as_one_answer() {
    // The backup continues a prefill: it is sent the 40 delivered tokens as a final
    // assistant message and answers the 20 after them. The caller sees one stream of all 60
    // tokens, each once, and the answer lists both targets.
    join_all(
        pairs(&[Protocol::Anthropic])
            .into_iter()
            .map(|(p, b)| async move {
                let label = format!("{p:?} cut, {b:?} backup");
                let primary = always(Fault::CutAfter(40))
                    .tokens(60)
                    .start()
                    .await
                    .unwrap();
                let backup = FaultProvider::healthy(60).await.unwrap();
                let client = continuing_stack((p, &primary), (b, &backup));
                let started = Instant::now();
                let (seen, result) = stream_call(&client).await;
                let wall = started.elapsed();
                let r = result.unwrap_or_else(|e| panic!("{label}: {e}"));
                assert_eq!(seen, answer_text(60), "{label}: text delivered");
                assert_complete(&r, BACKUP, 60, &label);
                let attempts: Vec<_> = r
                    .attempts()
                    .iter()
                    .map(|a| (a.model.as_str(), a.outcome, a.error_kind))
                    .collect();
                assert_eq!(
                    attempts,
                    [
                        (PRIMARY, Outcome::Failed, Some(ErrorKind::StreamInterrupted)),
                        (BACKUP, Outcome::Success, None),
                    ],
                    "{label}: attempts"
                );
                let sent = backup.arrivals();
                assert_eq!(
                    (primary.requests(), sent.len()),
                    (1, 1),
                    "{label}: attempts (primary, backup)"
                );
                assert!(sent[0].stream, "{label}: the continuation is streamed");
                assert_eq!(
                    sent[0].prefill.as_deref(),
                    Some(answer_text(40).as_str()),
                    "{label}: the prefill the backup received"
                );
                assert!(wall <= secs(limits::SLACK), "{label}: wall time {wall:?}");
            }),
    )
    .await;
}
