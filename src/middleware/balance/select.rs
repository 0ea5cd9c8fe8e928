//! Choosing the order of a tier's targets for one request: per-target load and latency
//! records, the [`Metered`] wrapper that keeps them, and each strategy's pick.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use tokio::time::Instant;

use super::Strategy;
use crate::client::{BoxFuture, ChatClient, ClientInfo, DynClient, Readiness};
use crate::error::{Error, ErrorKind, Result};
use crate::types::{ChatRequest, ChatResponse, ChatStream, EmbedRequest, EmbedResponse};

/// What a failure costs in the `latency` strategy, as if it were this much latency
/// (scaled by the target's recent error rate).
const FAILURE_PENALTY_NS: f64 = 1e9;
/// The weight of the newest outcome in a target's error rate.
const ERROR_ALPHA: f64 = 0.2;
/// The most targets one tier may hold (the pick keeps a 64-bit mask of the excluded).
pub(crate) const MAX_TIER_TARGETS: usize = 64;

/// One target's live record: calls in flight, and a peak-EWMA of its latency and error
/// rate. Lock-free: every field is an atomic, and a lost update under a race only drops
/// one sample.
#[derive(Debug)]
pub(crate) struct TargetStats {
    in_flight: AtomicU32,
    /// Latency estimate in ns, as `f64` bits; 0 before the first success.
    latency: AtomicU64,
    /// Error rate 0..1, as `f64` bits.
    errors: AtomicU64,
    /// When the last sample arrived, in ns since `epoch`.
    stamp: AtomicU64,
    epoch: Instant,
    /// The decay time constant, in ns.
    tau: f64,
}

impl TargetStats {
    pub(crate) fn new(decay: Duration) -> TargetStats {
        TargetStats {
            in_flight: AtomicU32::new(0),
            latency: AtomicU64::new(0f64.to_bits()),
            errors: AtomicU64::new(0f64.to_bits()),
            stamp: AtomicU64::new(0),
            epoch: Instant::now(),
            tau: decay.as_nanos().max(1) as f64,
        }
    }

    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }

    fn since_epoch(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// `exp(-elapsed / tau)` since the last sample.
    fn decay(&self, now: Instant) -> f64 {
        let elapsed = self
            .since_epoch(now)
            .saturating_sub(self.stamp.load(Relaxed));
        (-(elapsed as f64) / self.tau).exp()
    }

    /// Records one finished call: a success with its latency, or a failure.
    pub(crate) fn record(&self, now: Instant, outcome: std::result::Result<Duration, ()>) {
        let w = self.decay(now);
        let errors = f64::from_bits(self.errors.load(Relaxed)) * w;
        match outcome {
            Ok(latency) => {
                let sample = latency.as_nanos() as f64;
                let previous = f64::from_bits(self.latency.load(Relaxed));
                // Peak-EWMA: a slower sample is taken at once; a faster one is blended in
                // with a weight that grows with the time since the last sample.
                let next = if previous <= 0.0 || sample > previous {
                    sample
                } else {
                    previous * w + sample * (1.0 - w)
                };
                self.latency.store(next.to_bits(), Relaxed);
                self.errors
                    .store((errors * (1.0 - ERROR_ALPHA)).to_bits(), Relaxed);
            }
            Err(()) => {
                self.errors.store(
                    (errors * (1.0 - ERROR_ALPHA) + ERROR_ALPHA).to_bits(),
                    Relaxed,
                );
            }
        }
        self.stamp.store(self.since_epoch(now), Relaxed);
    }

    /// The `latency` strategy's cost: (latency + error rate × penalty) × (in flight + 1).
    /// Both estimates fade while the target gets no traffic, so a target that was shed
    /// is tried again after a while and can win its traffic back.
    pub(crate) fn cost(&self, now: Instant) -> f64 {
        let w = self.decay(now);
        let latency = f64::from_bits(self.latency.load(Relaxed)) * w;
        let errors = f64::from_bits(self.errors.load(Relaxed)) * w;
        let in_flight = f64::from(self.in_flight());
        let base = if latency > 0.0 {
            latency
        } else if in_flight > 0.0 {
            // No answer seen yet, and calls already waiting on it: assume it is slow.
            FAILURE_PENALTY_NS
        } else {
            0.0
        };
        (base + errors * FAILURE_PENALTY_NS) * (in_flight + 1.0)
    }

    /// The cost without the fading of idle estimates (no exponential to compute): the
    /// failover order after the pick, where the fading matters little.
    pub(crate) fn rough_cost(&self) -> f64 {
        let latency = f64::from_bits(self.latency.load(Relaxed));
        let errors = f64::from_bits(self.errors.load(Relaxed));
        (latency + errors * FAILURE_PENALTY_NS) * (f64::from(self.in_flight()) + 1.0)
    }

    /// The latency estimate now, in ns (0 before the first answer); for tests and docs.
    #[cfg(test)]
    pub(crate) fn latency_ns(&self) -> f64 {
        f64::from_bits(self.latency.load(Relaxed))
    }
}

/// Wraps one target to keep its [`TargetStats`]: counts the call in flight (a stream until
/// it ends or is dropped), and records its latency or failure when it ends. Failures the
/// target is not to blame for (a refused request, a budget, an open breaker) are not
/// counted.
#[derive(Clone)]
pub(crate) struct Metered {
    inner: DynClient,
    stats: Arc<TargetStats>,
}

impl fmt::Debug for Metered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl Metered {
    pub(crate) fn new(inner: DynClient, stats: Arc<TargetStats>) -> Metered {
        Metered { inner, stats }
    }

    fn start(&self) -> InFlight {
        self.stats.in_flight.fetch_add(1, Relaxed);
        InFlight(Arc::clone(&self.stats))
    }

    fn finish<T>(&self, started: Instant, result: &Result<T>) {
        match result {
            Ok(_) => self.stats.record(Instant::now(), Ok(started.elapsed())),
            Err(err) if blames_target(err) => self.stats.record(Instant::now(), Err(())),
            Err(_) => {}
        }
    }
}

/// Says whether an error counts against the target's error rate.
fn blames_target(err: &Error) -> bool {
    err.is_recoverable() && err.kind() != ErrorKind::CircuitOpen
}

/// One call in flight; the count drops when this does.
struct InFlight(Arc<TargetStats>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

impl ChatClient for Metered {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(async move {
            let _in_flight = self.start();
            let started = Instant::now();
            let result = self.inner.chat(req).await;
            self.finish(started, &result);
            result
        })
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(async move {
            let in_flight = self.start();
            let started = Instant::now();
            let result = self.inner.chat_stream(req).await;
            self.finish(started, &result);
            let events = result?.into_inner();
            let stats = Arc::clone(&self.stats);
            // Hold the in-flight mark until the stream ends, fails or is dropped.
            let held = stream::unfold((events, Some(in_flight)), move |(mut events, mut held)| {
                let stats = Arc::clone(&stats);
                async move {
                    match events.next().await {
                        Some(Err(err)) => {
                            if held.is_some() && blames_target(&err) {
                                stats.record(Instant::now(), Err(()));
                            }
                            held.take();
                            Some((Err(err), (events, held)))
                        }
                        Some(item) => Some((item, (events, held))),
                        None => {
                            held.take();
                            None
                        }
                    }
                }
            });
            Ok(ChatStream::new(held))
        })
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        Box::pin(async move {
            let _in_flight = self.start();
            let started = Instant::now();
            let result = self.inner.embed(req).await;
            self.finish(started, &result);
            result
        })
    }

    fn info(&self) -> &ClientInfo {
        self.inner.info()
    }

    fn readiness(&self) -> Readiness {
        self.inner.readiness()
    }
}

/// A tier's targets (a range of the flattened list) and its strategy's state.
#[derive(Debug)]
pub(crate) struct TierState {
    pub(crate) start: usize,
    pub(crate) len: usize,
    pub(crate) strategy: Strategy,
    weights: Vec<f64>,
    /// Positions in the tier by weight, heaviest first (the failover order of `weighted`).
    by_weight: Vec<usize>,
    /// Smooth weighted round-robin: each target's running credit.
    credit: Mutex<Vec<f64>>,
    /// Where `least_busy` starts looking, so ties rotate.
    rotate: AtomicUsize,
}

impl TierState {
    pub(crate) fn new(start: usize, len: usize, strategy: Strategy, weights: Vec<f64>) -> Self {
        let mut by_weight: Vec<usize> = (0..len).collect();
        by_weight.sort_by(|a, b| weights[*b].total_cmp(&weights[*a]));
        TierState {
            start,
            len,
            strategy,
            credit: Mutex::new(vec![0.0; len]),
            weights,
            by_weight,
            rotate: AtomicUsize::new(0),
        }
    }

    pub(crate) fn contains(&self, index: usize) -> bool {
        (self.start..self.start + self.len).contains(&index)
    }

    /// Appends this tier's targets to `out` in the order to try them: the strategy's pick
    /// among the targets that are available now first, then the rest as failover.
    pub(crate) fn order_into(
        &self,
        out: &mut Vec<usize>,
        clients: &[DynClient],
        stats: &[Arc<TargetStats>],
        req: Option<&ChatRequest>,
        now: Instant,
    ) {
        let base = out.len();
        if self.strategy == Strategy::Ordered || self.len == 1 {
            out.extend(self.start..self.start + self.len);
            return;
        }
        let available = |pos: usize| available(&clients[self.start + pos], req);
        let mut excluded = 0u64;
        let mut picked = None;
        while (excluded.count_ones() as usize) < self.len {
            let Some(pos) = self.pick(excluded, stats, now) else {
                break;
            };
            if available(pos) {
                picked = Some(pos);
                break;
            }
            excluded |= 1 << pos;
        }
        if let Some(pos) = picked {
            out.push(self.start + pos);
        }
        let rest = |pos: &usize| Some(*pos) != picked;
        match self.strategy {
            Strategy::Weighted => {
                out.extend(
                    self.by_weight
                        .iter()
                        .filter(|p| rest(p))
                        .map(|p| self.start + p),
                );
            }
            Strategy::LeastBusy => {
                out.extend((0..self.len).filter(rest).map(|p| self.start + p));
                out[base + usize::from(picked.is_some())..].sort_by_key(|&i| stats[i].in_flight());
            }
            Strategy::Latency | Strategy::Ordered => {
                // Each cost once, then the failover order by cost.
                let mut costs = [(0f64, 0u8); MAX_TIER_TARGETS];
                let mut n = 0;
                for pos in (0..self.len).filter(rest) {
                    costs[n] = (stats[self.start + pos].rough_cost(), pos as u8);
                    n += 1;
                }
                costs[..n].sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
                out.extend(costs[..n].iter().map(|(_, p)| self.start + usize::from(*p)));
            }
        }
    }

    /// The strategy's choice among the targets not in `excluded` (a bit per position).
    fn pick(&self, excluded: u64, stats: &[Arc<TargetStats>], now: Instant) -> Option<usize> {
        let open = |pos: usize| excluded & (1 << pos) == 0;
        match self.strategy {
            Strategy::Ordered => (0..self.len).find(|&p| open(p)),
            Strategy::Weighted => {
                // Smooth weighted round-robin (as nginx does it): every candidate gains its
                // weight, the richest is picked and pays the total. Over any window the
                // picks follow the weights exactly, interleaved rather than in runs.
                let mut credit = self.credit.lock().unwrap_or_else(PoisonError::into_inner);
                let mut best: Option<usize> = None;
                let mut total = 0.0;
                for pos in (0..self.len).filter(|&p| open(p)) {
                    credit[pos] += self.weights[pos];
                    total += self.weights[pos];
                    if best.is_none_or(|b| credit[pos] > credit[b]) {
                        best = Some(pos);
                    }
                }
                if let Some(b) = best {
                    credit[b] -= total;
                }
                best
            }
            Strategy::LeastBusy => {
                let from = self.rotate.fetch_add(1, Relaxed);
                (0..self.len)
                    .map(|k| (from + k) % self.len)
                    .filter(|&p| open(p))
                    .min_by_key(|&p| stats[self.start + p].in_flight())
            }
            Strategy::Latency => {
                // Power of two choices: two distinct random candidates, the cheaper wins.
                let mut candidates = [0u8; MAX_TIER_TARGETS];
                let mut n = 0;
                for pos in (0..self.len).filter(|&p| open(p)) {
                    candidates[n] = pos as u8;
                    n += 1;
                }
                match n {
                    0 => None,
                    1 => Some(usize::from(candidates[0])),
                    _ => {
                        let a = fastrand::usize(..n);
                        let mut b = fastrand::usize(..n - 1);
                        if b >= a {
                            b += 1;
                        }
                        let (a, b) = (usize::from(candidates[a]), usize::from(candidates[b]));
                        let cost = |p: usize| stats[self.start + p].cost(now);
                        Some(if cost(b) < cost(a) { b } else { a })
                    }
                }
            }
        }
    }
}

/// Says whether `client` would take `req` now: its breaker (or cool-down) lets calls
/// through and its capabilities can serve the request.
pub(crate) fn available(client: &DynClient, req: Option<&ChatRequest>) -> bool {
    client.readiness().is_ready()
        && req.is_none_or(|req| client.info().capabilities().check(req).is_ok())
}
