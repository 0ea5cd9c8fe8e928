//! The chaos soak: many requests through a three-target resilience stack whose upstreams are
//! [`FaultProvider`]s injecting random faults of every kind, with a fault-free direct
//! baseline measured in the same run.
//!
//! Each target is `CircuitBreakerClient → RetryClient → TimeoutClient → provider` (the
//! default order of the library's middleware), the three sit under one `FallbackClient`
//! (OpenAI first, then Anthropic, then Gemini, each over its own fault provider), and a
//! `DeadlineClient` bounds every call. Half the requests stream.
//!
//! The soak checks the one promise the stack makes: every request ends in exactly one
//! complete answer or one typed error. It counts answers, errors by kind, requests that never
//! ended (`lost`, caught by a watchdog far beyond the deadline), panics, and successes whose
//! answer was not complete (`truncated`); the last three must be zero. Latency percentiles
//! of answered requests are compared with the baseline: the same requests through bare
//! clients against healthy providers, interleaved one for one with the chaos requests in the
//! same task pool, so both see the same machine load at the same moments.
//!
//! Run the full soak with `cargo run --release -p switchboard-testkit --bin chaos-soak`; a
//! short one is a test (`cargo test -p switchboard-testkit --test chaos_soak`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard::providers::HttpSettings;
use switchboard::{
    create_client_with, BreakerConfig, ChatClient, ChatClientExt, ChatRequest, ChatResponse,
    CircuitBreakerClient, ClientOptions, DeadlineClient, DynClient, Error, FallbackClient,
    FinishKind, RetryClient, RetryPolicy, TimeoutClient, Timeouts,
};
use tokio::task::JoinSet;

use crate::fault::{answer_text, Fault, FaultProvider, Protocol};

/// What a soak run does; [`SoakConfig::default`] is the full run.
#[derive(Clone, Debug)]
pub struct SoakConfig {
    /// Requests through the chaos stack (and again through the baseline).
    pub requests: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Share of upstream requests that get a fault (0.0–1.0).
    pub fault_rate: f64,
    /// Seeds the fault choice and the stream/whole mix, so a run can be repeated.
    pub seed: u64,
    /// Tokens in a complete answer.
    pub tokens: usize,
    /// The per-attempt, first-token and idle limit of each target; other waits scale with
    /// it (slow first tokens arrive after 2× it, `Retry-After` asks for 0.1× it, the breaker
    /// cools down for 2× it, the call deadline is 10× it).
    pub limit: Duration,
    /// Share of requests that stream (0.0–1.0).
    pub stream_share: f64,
}

impl Default for SoakConfig {
    /// 100,000 requests, 8 in flight, 30 % faults, seed 7, 16-token answers, a 100 ms
    /// limit, half streamed.
    ///
    /// Eight in flight keeps a 2-core machine from queueing the baseline's requests behind
    /// each other, so latency differences come from the faults, not from CPU contention.
    fn default() -> SoakConfig {
        SoakConfig {
            requests: 100_000,
            concurrency: 8,
            fault_rate: 0.3,
            seed: 7,
            tokens: 16,
            limit: Duration::from_millis(100),
            stream_share: 0.5,
        }
    }
}

/// Latency percentiles of one set of requests.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Slowest.
    pub max: Duration,
}

impl Percentiles {
    /// Computes the percentiles of `samples` (sorted in place); zeros when empty.
    pub fn of(samples: &mut [Duration]) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[index]
        };
        Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: samples[samples.len() - 1],
        }
    }

    fn rows(&self) -> [(&'static str, Duration); 5] {
        [
            ("p50", self.p50),
            ("p90", self.p90),
            ("p99", self.p99),
            ("p99.9", self.p999),
            ("max", self.max),
        ]
    }
}

/// What a soak run saw; its `Display` is the printed report.
#[derive(Clone, Debug, Default)]
pub struct SoakReport {
    /// Requests sent through the chaos stack.
    pub requests: usize,
    /// Requests that ended with a complete answer (refusals included).
    pub answered: usize,
    /// Of the answered, those that were a content-policy refusal.
    pub refused: usize,
    /// Requests that ended with a typed error, by [`ErrorKind`](switchboard::ErrorKind) name.
    pub errors: BTreeMap<&'static str, usize>,
    /// What lay under the typed errors: for `all_targets_failed`, each target's error kind
    /// (`all_targets_failed <- timeout`); for other wrapped errors, their cause's kind.
    pub causes: BTreeMap<String, usize>,
    /// Requests that never ended within the watchdog (must be 0).
    pub lost: usize,
    /// Requests whose task panicked (must be 0).
    pub panics: usize,
    /// Successes whose answer was not the complete text (must be 0).
    pub truncated: usize,
    /// Upstream requests per target (OpenAI, Anthropic, Gemini).
    pub upstream: [usize; 3],
    /// Faults the upstreams injected, by [`Fault::name`].
    pub faults: BTreeMap<&'static str, usize>,
    /// Latency of answered requests through the chaos stack.
    pub chaos: Percentiles,
    /// Latency of the same requests through bare clients and healthy upstreams.
    pub baseline: Percentiles,
    /// Wall time of the run (both lanes, interleaved).
    pub wall: Duration,
}

impl SoakReport {
    /// Returns the number of typed errors.
    pub fn error_count(&self) -> usize {
        self.errors.values().sum()
    }

    /// Says whether every request ended in exactly one answer or one typed error, with no
    /// panic and no truncated success.
    pub fn is_clean(&self) -> bool {
        self.lost == 0
            && self.panics == 0
            && self.truncated == 0
            && self.answered + self.error_count() == self.requests
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "requests      {}", self.requests)?;
        writeln!(
            f,
            "answered      {} ({} of them content-policy refusals)",
            self.answered, self.refused
        )?;
        writeln!(f, "typed errors  {}", self.error_count())?;
        for (kind, n) in &self.errors {
            writeln!(f, "  {kind:<22}{n}")?;
        }
        if !self.causes.is_empty() {
            writeln!(
                f,
                "  underlying causes (one per target for all_targets_failed):"
            )?;
            for (cause, n) in &self.causes {
                writeln!(f, "    {cause:<44}{n}")?;
            }
        }
        writeln!(f, "lost          {}", self.lost)?;
        writeln!(f, "panics        {}", self.panics)?;
        writeln!(f, "truncated     {}", self.truncated)?;
        let total: usize = self.upstream.iter().sum();
        writeln!(
            f,
            "upstream requests {total} (openai {}, anthropic {}, gemini {})",
            self.upstream[0], self.upstream[1], self.upstream[2]
        )?;
        for (fault, n) in &self.faults {
            writeln!(f, "  {fault:<26}{n}")?;
        }
        writeln!(f, "wall time     {:.1} s", self.wall.as_secs_f64())?;
        writeln!(
            f,
            "latency of answered requests: chaos stack vs fault-free direct baseline"
        )?;
        for ((name, chaos), (_, base)) in self.chaos.rows().iter().zip(self.baseline.rows()) {
            let ratio = if base.is_zero() {
                f64::NAN
            } else {
                chaos.as_secs_f64() / base.as_secs_f64()
            };
            writeln!(
                f,
                "  {name:<6} chaos {:>10}  baseline {:>10}  added {:>10}  ratio {ratio:.1}x",
                ms(*chaos),
                ms(base),
                ms(chaos.saturating_sub(base)),
            )?;
        }
        Ok(())
    }
}

/// How one request ended.
enum End {
    Answered { refused: bool },
    Truncated,
    Failed(Error),
}

fn judge(result: switchboard::Result<ChatResponse>, expected: &str) -> End {
    match result {
        Ok(r) if r.finish_reason.kind == FinishKind::Stop && r.text() == expected => {
            End::Answered { refused: false }
        }
        Ok(r)
            if matches!(
                r.finish_reason.kind,
                FinishKind::Refusal | FinishKind::ContentFilter
            ) && r.text().is_empty() =>
        {
            End::Answered { refused: true }
        }
        Ok(_) => End::Truncated,
        Err(e) => End::Failed(e),
    }
}

/// Names what lay under a wrapped error: the kind of each target's error in a failed chain
/// (a retry loop's by its last attempt), or the kind of an interrupted stream's cause.
fn causes(e: &Error) -> Vec<String> {
    let kind = e.kind().as_str();
    let inner = |e: &Error| match e.kind() {
        switchboard::ErrorKind::RetriesExhausted => e
            .attempt_errors()
            .last()
            .map_or("retries_exhausted", |last| last.kind().as_str()),
        other => other.as_str(),
    };
    if !e.attempt_errors().is_empty() {
        return e
            .attempt_errors()
            .iter()
            .map(|a| format!("{kind} <- {}", inner(a)))
            .collect();
    }
    match std::error::Error::source(e).and_then(|s| s.downcast_ref::<Error>()) {
        Some(cause) => vec![format!("{kind} <- {}", inner(cause))],
        None => Vec::new(),
    }
}

fn http_settings() -> HttpSettings {
    // Backstops only: the TimeoutClient's limits are the ones meant to fire.
    HttpSettings {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        stream_idle_timeout: Duration::from_secs(5),
        ..HttpSettings::default()
    }
}

fn bare_client(protocol: Protocol, upstream: &FaultProvider) -> switchboard::Result<DynClient> {
    let options = ClientOptions::new()
        .retry(None)
        .env(|_| None)
        .api_key("soak-key-not-real")
        .base_url(upstream.base_url(protocol))
        .http_settings(http_settings());
    create_client_with(
        &protocol.spec(&format!("soak-{}", protocol.provider())),
        &options,
    )
}

/// One target of the chaos stack: breaker → retry → timeout → provider.
fn target(
    protocol: Protocol,
    upstream: &FaultProvider,
    config: &SoakConfig,
) -> switchboard::Result<DynClient> {
    let limit = config.limit;
    let timeouts = Timeouts::attempt(limit)
        .with_first_token(limit)
        .with_idle(limit);
    let retry = RetryPolicy::default()
        .with_max_retries(2)
        .with_base_delay(limit / 20)
        .with_max_delay(limit / 5)
        .with_max_retry_after(limit);
    let breaker = BreakerConfig::default()
        .with_consecutive_failures(5)
        .with_cooldown(limit * 2)
        .with_max_cooldown(limit * 8);
    let provider = bare_client(protocol, upstream)?;
    let stack = CircuitBreakerClient::new(
        RetryClient::new(TimeoutClient::new(provider, timeouts), retry),
        breaker,
    );
    Ok(stack.boxed())
}

/// What one lane (the chaos stack or the baseline) saw.
#[derive(Default)]
struct Lane {
    report: SoakReport,
    latencies: Vec<Duration>,
}

impl Lane {
    fn settle(&mut self, end: Option<(End, Duration)>) {
        let report = &mut self.report;
        match end {
            Some((End::Answered { refused }, latency)) => {
                report.answered += 1;
                report.refused += usize::from(refused);
                self.latencies.push(latency);
            }
            Some((End::Truncated, _)) => report.truncated += 1,
            Some((End::Failed(e), _)) => {
                *report.errors.entry(e.kind().as_str()).or_default() += 1;
                for cause in causes(&e) {
                    *report.causes.entry(cause).or_default() += 1;
                }
            }
            None => report.lost += 1,
        }
    }
}

/// Sends `config.requests` requests through each of `lanes[0]` (the chaos stack) and
/// `lanes[1]` (the baseline), interleaved one for one in the same pool of
/// `2 × config.concurrency` tasks, so both see the same machine load at the same moments.
async fn drive(lanes: [DynClient; 2], config: &SoakConfig, watchdog: Duration) -> [Lane; 2] {
    let expected: Arc<str> = answer_text(config.tokens).into();
    let mut rng = fastrand::Rng::with_seed(config.seed ^ 0x5eed);
    let mut seen: [Lane; 2] = Default::default();
    for lane in &mut seen {
        lane.report.requests = config.requests;
        lane.latencies.reserve(config.requests);
    }
    let total = config.requests * 2;
    let in_flight = config.concurrency.max(1) * 2;
    let mut tasks = JoinSet::new();
    let mut sent = 0usize;
    let mut stream = false;
    while sent < total || !tasks.is_empty() {
        while sent < total && tasks.len() < in_flight {
            // Both lanes get the same sequence of whole and streamed calls.
            let lane = sent % 2;
            if lane == 0 {
                stream = rng.f64() < config.stream_share;
            }
            let client = Arc::clone(&lanes[lane]);
            let expected = Arc::clone(&expected);
            sent += 1;
            tasks.spawn(async move {
                let req = ChatRequest::user("hello");
                let started = Instant::now();
                let work = async {
                    if stream {
                        match client.chat_stream(&req).await {
                            Ok(s) => s.collect_response().await,
                            Err(e) => Err(e),
                        }
                    } else {
                        client.chat(&req).await
                    }
                };
                let end = tokio::time::timeout(watchdog, work)
                    .await
                    .ok()
                    .map(|result| (judge(result, &expected), started.elapsed()));
                (lane, end)
            });
        }
        match tasks.join_next().await {
            Some(Ok((lane, end))) => seen[lane].settle(end),
            // A task that panicked has no lane to report to; its request is counted once,
            // as a panic, on the chaos lane's report.
            Some(Err(e)) if e.is_panic() => seen[0].report.panics += 1,
            Some(Err(_)) => seen[0].report.lost += 1,
            None => {}
        }
    }
    seen
}

/// Runs the soak — the chaos stack and the baseline, interleaved — and reports both.
///
/// # Errors
/// When a fault provider cannot bind its socket or a client cannot be built, or when the
/// baseline fails to answer a request (then the comparison means nothing).
pub async fn run(config: &SoakConfig) -> Result<SoakReport, Box<dyn std::error::Error>> {
    let limit = config.limit;
    let faults = Fault::every_kind(config.tokens, limit);
    let mut upstreams = Vec::new();
    let mut healthy = Vec::new();
    for (i, _) in Protocol::ALL.iter().enumerate() {
        upstreams.push(
            FaultProvider::builder()
                .tokens(config.tokens)
                .random(
                    config.seed.wrapping_add(i as u64),
                    config.fault_rate,
                    faults.clone(),
                )
                .start()
                .await?,
        );
        healthy.push(FaultProvider::healthy(config.tokens).await?);
    }
    let mut targets = Vec::new();
    let mut bare = Vec::new();
    for (i, protocol) in Protocol::ALL.iter().enumerate() {
        targets.push(target(*protocol, &upstreams[i], config)?);
        bare.push(bare_client(*protocol, &healthy[i])?);
    }
    let deadline = limit * 10;
    let stack: DynClient = DeadlineClient::new(FallbackClient::new(targets)?, deadline).boxed();
    // The baseline: bare clients straight to healthy upstreams, one protocol after another.
    let direct: DynClient = Arc::new(RoundRobin::new(bare));
    let started = Instant::now();
    let [chaos, base] = drive([stack, direct], config, deadline * 5).await;
    let wall = started.elapsed();
    if base.report.answered != config.requests {
        return Err(format!(
            "the fault-free baseline answered {} of {} requests:\n{}",
            base.report.answered, config.requests, base.report
        )
        .into());
    }
    let mut report = chaos.report;
    report.panics += base.report.panics;
    report.lost += base.report.lost;
    report.wall = wall;
    for (slot, upstream) in report.upstream.iter_mut().zip(&upstreams) {
        *slot = upstream.requests();
        for arrival in upstream.arrivals() {
            *report.faults.entry(arrival.fault.name()).or_default() += 1;
        }
    }
    let (mut chaos_latencies, mut base_latencies) = (chaos.latencies, base.latencies);
    report.chaos = Percentiles::of(&mut chaos_latencies);
    report.baseline = Percentiles::of(&mut base_latencies);
    Ok(report)
}

/// Sends each call to the next of its clients in turn (the baseline's "direct" client).
#[derive(Debug)]
struct RoundRobin {
    clients: Vec<DynClient>,
    next: std::sync::atomic::AtomicUsize,
    info: switchboard::ClientInfo,
}

impl RoundRobin {
    fn new(clients: Vec<DynClient>) -> RoundRobin {
        RoundRobin {
            info: switchboard::ClientInfo::new("baseline", "round-robin"),
            clients,
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn pick(&self) -> &DynClient {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.clients[i % self.clients.len()]
    }
}

impl ChatClient for RoundRobin {
    fn chat<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> switchboard::BoxFuture<'a, switchboard::Result<ChatResponse>> {
        self.pick().chat(req)
    }

    fn chat_stream<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> switchboard::BoxFuture<'a, switchboard::Result<switchboard::ChatStream>> {
        self.pick().chat_stream(req)
    }

    fn info(&self) -> &switchboard::ClientInfo {
        &self.info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_nearest_ranks() {
        let mut samples: Vec<Duration> = (1..=1000).map(Duration::from_millis).collect();
        let p = Percentiles::of(&mut samples);
        assert_eq!(p.p50, Duration::from_millis(500));
        assert_eq!(p.p90, Duration::from_millis(900));
        assert_eq!(p.p99, Duration::from_millis(990));
        assert_eq!(p.p999, Duration::from_millis(999));
        assert_eq!(p.max, Duration::from_millis(1000));
        assert_eq!(Percentiles::of(&mut []), Percentiles::default());
    }
}
