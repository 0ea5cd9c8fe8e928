//! [`HedgedClient`]: when the first target is slow to answer, asks the next one too, and
//! takes whichever answers first.
//!
//! The failure it prevents: tail latency. A provider that usually answers in two seconds
//! sometimes takes twenty; waiting for a timeout before falling back costs the full timeout.
//! A hedge starts the next target after a short delay — fixed, or learned from recent
//! answers (a latency percentile such as p95, never below a floor) — while the first keeps
//! running. The first success wins; the others are dropped, which cancels them (their
//! connections are closed, so a provider that bills per generated token stops billing).
//!
//! A failure starts the next target at once, without waiting for the delay. A target whose
//! circuit breaker is open ([`ChatClient::readiness`]) is skipped, and so is one whose
//! [`Capabilities`](crate::Capabilities) say it cannot serve the request (recorded as
//! [`Outcome::Skipped`] with [`ErrorKind::Unsupported`] and the missing capability). When
//! every target fails, the error is [`ErrorKind::AllTargetsFailed`] (or
//! [`ErrorKind::Unsupported`] when every target lacked something); an error that another
//! target would not fix (one that [`Error::is_recoverable`] rejects) is returned at once.
//!
//! # Attempts
//!
//! [`ChatResponse::attempts`] lists every target that was started, in the order it was
//! started, with the winner last: failures as [`Outcome::Failed`]
//! with their error, skipped targets as [`Outcome::Skipped`], and
//! **cancelled losers as `Failed` with no `error_kind` and the message
//! `cancelled: another target answered first`**, their latency being the time they ran.
//! Their usage is unknown (they never finished), so it is not in the winner's usage.
//!
//! # Streams and embeddings
//!
//! Streams and embeddings are not hedged: they try the targets one after another, like a
//! [`FallbackClient`](crate::FallbackClient), and a stream switches target only before its
//! commit point ([`HedgePolicy::with_commit_point`]; by default its first content event).

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;

use super::commit::{self, CommitPoint};
use super::fallback::{chain_info, skipped_error, unsupported};
use crate::client::{BoxFuture, ChatClient, ClientInfo, DynClient, Readiness};
#[cfg(any(doc, test))]
use crate::error::ErrorKind;
use crate::error::{Error, Result};
use crate::types::{
    Attempt, ChatRequest, ChatResponse, ChatStream, EmbedRequest, EmbedResponse, Outcome,
};

/// How many recent latencies a learned delay is computed from.
const HISTORY: usize = 200;

/// The message recorded for a cancelled loser.
const CANCELLED: &str = "cancelled: another target answered first";

/// When a [`HedgedClient`] starts the next target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HedgePolicy {
    delay: Delay,
    commit_point: CommitPoint,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Delay {
    Fixed(Duration),
    Learned {
        percentile: f64,
        floor: Duration,
        default: Duration,
        min_samples: usize,
    },
}

impl HedgePolicy {
    /// Starts the next target `delay` after the previous one.
    pub fn fixed(delay: Duration) -> HedgePolicy {
        HedgePolicy {
            delay: Delay::Fixed(delay),
            commit_point: CommitPoint::default(),
        }
    }

    /// Starts the next target after the given percentile (0.0–1.0, e.g. 0.95) of recent
    /// successful latencies; until 20 answers were seen, after 2 s; never before 100 ms.
    pub fn learned(percentile: f64) -> HedgePolicy {
        HedgePolicy {
            delay: Delay::Learned {
                percentile: percentile.clamp(0.0, 1.0),
                floor: Duration::from_millis(100),
                default: Duration::from_secs(2),
                min_samples: 20,
            },
            commit_point: CommitPoint::default(),
        }
    }

    /// Sets the shortest learned delay.
    #[must_use]
    pub fn with_floor(mut self, floor: Duration) -> HedgePolicy {
        if let Delay::Learned { floor: f, .. } = &mut self.delay {
            *f = floor;
        }
        self
    }

    /// Sets the delay used until enough latencies were seen.
    #[must_use]
    pub fn with_default(mut self, default: Duration) -> HedgePolicy {
        if let Delay::Learned { default: d, .. } = &mut self.delay {
            *d = default;
        }
        self
    }

    /// Sets how many latencies must be seen before the learned delay is used.
    #[must_use]
    pub fn with_min_samples(mut self, min_samples: usize) -> HedgePolicy {
        if let Delay::Learned { min_samples: m, .. } = &mut self.delay {
            *m = min_samples.clamp(1, HISTORY);
        }
        self
    }

    /// Sets where a stream commits to its target (default [`CommitPoint::FirstContent`]);
    /// streams are tried in turn, not raced.
    #[must_use]
    pub fn with_commit_point(mut self, point: CommitPoint) -> HedgePolicy {
        self.commit_point = point;
        self
    }

    /// Returns where a stream commits to its target.
    pub fn commit_point(&self) -> CommitPoint {
        self.commit_point
    }

    /// Returns the delay given the recent latencies.
    fn delay(&self, history: &VecDeque<Duration>) -> Duration {
        match self.delay {
            Delay::Fixed(delay) => delay,
            Delay::Learned {
                percentile,
                floor,
                default,
                min_samples,
            } => {
                if history.len() < min_samples {
                    return default;
                }
                let mut sorted: Vec<Duration> = history.iter().copied().collect();
                sorted.sort_unstable();
                let rank = (percentile * sorted.len() as f64).ceil() as usize;
                let value = sorted
                    .get(rank.saturating_sub(1).min(sorted.len() - 1))
                    .copied()
                    .unwrap_or(default);
                value.max(floor)
            }
        }
    }
}

/// Races its targets after a delay; see the [module docs](self).
///
/// # Clone
/// Clones share the targets and the latency history a learned delay is computed from.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::time::Duration;
/// use switchboard::{ChatClient, ChatClientExt, ChatRequest, ChatResponse, FunctionClient, HedgePolicy, HedgedClient};
///
/// let slow = FunctionClient::new_async("slow", |_req: ChatRequest| async {
///     tokio::time::sleep(Duration::from_secs(20)).await;
///     Ok(ChatResponse::from_text("slow answer"))
/// });
/// let fast = FunctionClient::new("fast", |_req: &ChatRequest| Ok(ChatResponse::from_text("fast answer")));
/// let client = HedgedClient::new(vec![slow.boxed(), fast.boxed()], HedgePolicy::fixed(Duration::from_secs(1)))?;
/// assert_eq!(client.chat(&ChatRequest::user("hello")).await?.text(), "fast answer");
/// # Ok::<_, switchboard::Error>(()) }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct HedgedClient {
    clients: Vec<DynClient>,
    policy: HedgePolicy,
    history: Arc<Mutex<VecDeque<Duration>>>,
    info: ClientInfo,
}

impl HedgedClient {
    /// Creates a hedge over `clients`, started in order.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when `clients` is empty.
    pub fn new(clients: Vec<DynClient>, policy: HedgePolicy) -> Result<HedgedClient> {
        let info = clients
            .first()
            .ok_or_else(|| {
                Error::config(
                    "a HedgedClient needs at least one client, and got none",
                    "pass the clients to race, in order, e.g. `HedgedClient::new(vec![primary, backup], policy)`",
                )
            })?
            .info()
            .clone();
        let info = chain_info(info, &clients);
        Ok(HedgedClient {
            clients,
            policy,
            history: Arc::new(Mutex::new(VecDeque::with_capacity(HISTORY))),
            info,
        })
    }

    /// Returns the clients, in the order they are started.
    pub fn inner(&self) -> &[DynClient] {
        &self.clients
    }

    /// Returns the clients, consuming the hedge.
    pub fn into_inner(self) -> Vec<DynClient> {
        self.clients
    }

    /// Returns the delay the next call would wait before starting its second target.
    pub fn current_delay(&self) -> Duration {
        let history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        self.policy.delay(&history)
    }

    fn learn(&self, latency: Duration) {
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(latency);
    }

    /// Tries the targets one after another (streams and embeddings), skipping those that
    /// cannot serve `req`.
    async fn in_turn<'a, T>(
        &'a self,
        req: Option<&ChatRequest>,
        call: impl Fn(&'a DynClient) -> BoxFuture<'a, Result<T>>,
    ) -> Result<(T, Vec<Attempt>)> {
        let mut errors = Vec::new();
        let mut attempts = Vec::new();
        for client in &self.clients {
            let info = client.info();
            if let Some(err) = req.and_then(|req| unsupported(client, req)) {
                attempts.push(Attempt::skipped(info.provider(), info.model(), &err));
                errors.push(err);
                continue;
            }
            let started = Instant::now();
            match call(client).await {
                Ok(value) => return Ok((value, attempts)),
                Err(err) if err.is_recoverable() => {
                    attempts.push(Attempt::failure(
                        info.provider(),
                        info.model(),
                        &err,
                        started.elapsed(),
                    ));
                    errors.push(err);
                }
                Err(err) => return Err(err.after_attempts(errors)),
            }
        }
        Err(Error::chain_failed(errors, self.clients.len()))
    }
}

/// What one started target is doing, by index.
struct Started {
    index: usize,
    at: Instant,
}

impl HedgedClient {
    /// Races the targets in `order` (indices into [`inner`](Self::inner); `None` is the
    /// hedge's own order): what a [`BalancedClient`](super::BalancedClient) calls after
    /// choosing the order. Attempts are recorded by position in the order.
    pub(crate) fn chat_in<'a>(
        &'a self,
        req: &'a ChatRequest,
        order: Option<&'a [usize]>,
    ) -> BoxFuture<'a, Result<ChatResponse>> {
        let count = order.map_or(self.clients.len(), <[usize]>::len);
        let client_at = move |position: usize| -> Option<&'a DynClient> {
            let index = order.map_or(Some(position), |o| o.get(position).copied())?;
            self.clients.get(index)
        };
        Box::pin(async move {
            req.validate()?;
            let delay = self.current_delay();
            let mut running = FuturesUnordered::new();
            let mut started: Vec<Started> = Vec::new();
            // Records of targets that ended without winning, by index.
            let mut ended: Vec<(usize, Attempt)> = Vec::new();
            let mut errors = Vec::new();
            let next = std::sync::atomic::AtomicUsize::new(0);
            let timer = tokio::time::sleep(Duration::ZERO);
            tokio::pin!(timer);
            let start_next = |running: &mut FuturesUnordered<_>,
                              started: &mut Vec<Started>,
                              ended: &mut Vec<(usize, Attempt)>,
                              errors: &mut Vec<Error>| {
                while let Some(client) = (next.load(Relaxed) < count)
                    .then(|| client_at(next.load(Relaxed)))
                    .flatten()
                {
                    let index = next.load(Relaxed);
                    next.store(index + 1, Relaxed);
                    if let Some(err) = unsupported(client, req) {
                        let info = client.info();
                        ended.push((index, Attempt::skipped(info.provider(), info.model(), &err)));
                        errors.push(err);
                        continue;
                    }
                    let readiness = client.readiness();
                    let wait = readiness.wait();
                    if !wait.is_zero() {
                        let info = client.info();
                        let err = skipped_error(client, readiness, wait);
                        ended.push((index, Attempt::skipped(info.provider(), info.model(), &err)));
                        errors.push(err);
                        continue;
                    }
                    let at = Instant::now();
                    started.push(Started { index, at });
                    running.push(async move { (index, at, client.chat(req).await) });
                    return true;
                }
                false
            };
            start_next(&mut running, &mut started, &mut ended, &mut errors);
            timer.as_mut().reset(Instant::now() + delay);
            loop {
                if running.is_empty() {
                    return Err(Error::chain_failed(errors, self.clients.len()));
                }
                let more = next.load(Relaxed) < count;
                tokio::select! {
                    Some((index, at, result)) = running.next() => match result {
                        Ok(mut response) => {
                            self.learn(at.elapsed());
                            let now = Instant::now();
                            let mut records = ended;
                            for s in started.iter().filter(|s| s.index != index) {
                                if records.iter().any(|(i, _)| *i == s.index) {
                                    continue;
                                }
                                if let Some(client) = client_at(s.index) {
                                    records.push((s.index, cancelled(client.info(), now - s.at)));
                                }
                            }
                            records.sort_by_key(|(i, _)| *i);
                            let mut attempts: Vec<Attempt> =
                                records.into_iter().map(|(_, a)| a).collect();
                            attempts.append(&mut response.attempts);
                            response.attempts = attempts;
                            return Ok(response);
                        }
                        Err(err) => {
                            if !err.is_recoverable() {
                                return Err(err);
                            }
                            if let Some(client) = client_at(index) {
                                let info = client.info();
                                ended.push((index, Attempt::failure(info.provider(), info.model(), &err, at.elapsed())));
                            }
                            errors.push(err);
                            if start_next(&mut running, &mut started, &mut ended, &mut errors) {
                                timer.as_mut().reset(Instant::now() + delay);
                            }
                        }
                    },
                    () = &mut timer, if more => {
                        if start_next(&mut running, &mut started, &mut ended, &mut errors) {
                            timer.as_mut().reset(Instant::now() + delay);
                        }
                    }
                }
            }
        })
    }
}

impl ChatClient for HedgedClient {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        self.chat_in(req, None)
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(async move {
            req.validate()?;
            let point = self.policy.commit_point;
            let (stream, attempts) = self
                .in_turn(Some(req), |client| {
                    Box::pin(async move {
                        let stream = client.chat_stream(req).await?;
                        commit::until(stream, client.info(), point).await
                    })
                })
                .await?;
            Ok(commit::prepend_attempts(stream, attempts))
        })
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        Box::pin(async move {
            let (mut response, mut attempts) =
                self.in_turn(None, |client| client.embed(req)).await?;
            attempts.append(&mut response.attempts);
            response.attempts = attempts;
            Ok(response)
        })
    }

    fn info(&self) -> &ClientInfo {
        &self.info
    }

    fn readiness(&self) -> Readiness {
        Readiness::earliest(self.clients.iter().map(|c| c.readiness()))
    }
}

/// The record of a loser that was cancelled after running for `latency`.
fn cancelled(info: &ClientInfo, latency: Duration) -> Attempt {
    Attempt {
        provider: info.provider().to_owned(),
        model: info.model().to_owned(),
        outcome: Outcome::Failed,
        error_kind: None,
        status: None,
        message: Some(CANCELLED.to_owned()),
        missing: None,
        latency,
    }
}

#[cfg(test)]
mod tests;
