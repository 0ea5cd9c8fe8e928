//! [`BalancedClient`]: spreads requests over tiers of targets by a [`Strategy`], fails over
//! within a tier and then to the next, and can pin each conversation to the target that
//! holds its prompt cache.
//!
//! The failure it prevents: one deployment taking all the load while its twins idle, a
//! slow or failing deployment keeping its share until its breaker finally opens, and — for
//! agents — conversations bouncing between targets so that none of them ever reads its
//! prompt cache.
//!
//! # Tiers and strategies
//!
//! A route is an ordered list of [`Tier`]s. For each request every tier orders its targets
//! by its strategy: the pick first, the rest as failover. The request goes to the first
//! tier's pick; when that fails (by the chain's [`FallbackOn`] rule), to the next target of
//! the same tier, and only when the whole tier failed, to the next tier. The pick is made
//! among the targets available now: each is asked for its
//! [`readiness`](ChatClient::readiness) (an open breaker or a cool-down says "not yet")
//! and its [`Capabilities`](crate::Capabilities) are checked against the request; the
//! breakers, retries, budgets and timeouts of each target stay where they were, inside it.
//!
//! | strategy | pick | failover order |
//! | --- | --- | --- |
//! | [`Ordered`](Strategy::Ordered) (default) | the first target | as listed |
//! | [`Weighted`](Strategy::Weighted) | smooth weighted round-robin: picks follow the weights exactly, interleaved | heaviest first |
//! | [`LeastBusy`](Strategy::LeastBusy) | fewest calls in flight (ties rotate) | fewest in flight first |
//! | [`Latency`](Strategy::Latency) | power of two choices: of two random targets, the lower cost | lowest cost first |
//!
//! The `latency` cost of a target is `(latency + error rate × 1 s) × (calls in flight + 1)`,
//! where latency is a peak-EWMA (a slower answer is taken at once, faster ones blend in over
//! the decay time, 10 s by default) and the error rate an EWMA of recent outcomes. A slow or
//! failing target therefore sheds load long before its breaker opens. Both estimates fade
//! while a target gets no traffic, so a shed target is tried again now and then and wins its
//! share back when it recovers.
//!
//! Load and latency are measured in this process, per client: replicas each balance what
//! they see.
//!
//! # Prompt-cache affinity
//!
//! With [`BalancedClientBuilder::affinity`], each conversation is pinned to one target:
//! the first [`AffinityKey`] a request carries (a session header, OpenAI's
//! `prompt_cache_key` or `user`, Anthropic's `metadata.user_id`, or the hash of the
//! cacheable prefix) names the conversation; its first request is placed by the strategy,
//! and every later turn goes to the same target, so the provider's prompt cache is read
//! instead of written again. New conversations are still spread by the strategy.
//!
//! - The pin is left only while its target fails or is not available (open breaker,
//!   cool-down, missing capability). Meanwhile the conversation goes to a second choice
//!   fixed per conversation (rendezvous hashing), so that target's cache warms; when the
//!   pinned target recovers, the conversation returns to it. The pin only reorders its own
//!   tier: earlier tiers still come first.
//! - A pinned request is never hedged: a hedge would start the same prompt on a target
//!   without its cache. Requests without a key are routed (and hedged) as usual.
//! - A request that carries none of the keys is routed unpinned, with a warning logged once.
//! - With a shared store ([`Affinity::with_store`], e.g. Redis), replicas agree on every pin:
//!   a conversation new to a process costs one round trip to the store; its later turns
//!   cost none until the pin expires ([`Affinity::with_ttl`], one hour by default).
//!
//! Streams follow the same order (a stream switches target only before its commit point);
//! embeddings are balanced but never pinned.

mod affinity;
mod select;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use self::affinity::{rendezvous, Pins};
pub use self::affinity::{Affinity, AffinityKey};
use self::select::{available, Metered, TargetStats, TierState, MAX_TIER_TARGETS};
use super::commit::CommitPoint;
use super::fallback::{AllOpen, FallbackClient, FallbackOn};
use super::hedge::{HedgePolicy, HedgedClient};
use crate::client::{BoxFuture, ChatClient, ClientInfo, DynClient, Readiness};
use crate::error::{Error, Result};
use crate::types::{ChatRequest, ChatResponse, ChatStream, EmbedRequest, EmbedResponse};

/// How a [`Tier`] picks the target for a request; see the
/// [module docs](self#tiers-and-strategies).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Strategy {
    /// The first available target, in the order listed (the default: a plain fallback
    /// chain).
    #[default]
    Ordered,
    /// By the tier's weights (equal weights when none are given: round-robin).
    Weighted,
    /// The target with the fewest calls in flight.
    LeastBusy,
    /// Power of two choices over a peak-EWMA of latency and error rate.
    Latency,
}

impl Strategy {
    /// Returns the name used in settings: `ordered`, `weighted`, `least_busy`, `latency`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Ordered => "ordered",
            Strategy::Weighted => "weighted",
            Strategy::LeastBusy => "least_busy",
            Strategy::Latency => "latency",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = Error;

    fn from_str(text: &str) -> Result<Strategy> {
        match text {
            "ordered" => Ok(Strategy::Ordered),
            "weighted" => Ok(Strategy::Weighted),
            "least_busy" => Ok(Strategy::LeastBusy),
            "latency" => Ok(Strategy::Latency),
            other => Err(Error::config(
                format!("`strategy` = `{other}` is not a strategy"),
                "use one of `ordered`, `weighted`, `least_busy`, `latency`",
            )),
        }
    }
}

impl TryFrom<String> for Strategy {
    type Error = String;

    fn try_from(text: String) -> std::result::Result<Strategy, String> {
        text.parse().map_err(|e: Error| {
            format!(
                "{}; {}",
                e.message(),
                e.fix().unwrap_or("see docs/routing.md")
            )
        })
    }
}

impl From<Strategy> for String {
    fn from(strategy: Strategy) -> String {
        strategy.as_str().to_owned()
    }
}

/// A set of targets with a strategy: one level of a [`BalancedClient`].
#[derive(Clone, Debug)]
#[must_use]
pub struct Tier {
    clients: Vec<DynClient>,
    strategy: Strategy,
    weights: Option<Vec<f64>>,
}

impl Tier {
    /// A tier over `clients`, [`Strategy::Ordered`] until told otherwise.
    pub fn new(clients: Vec<DynClient>) -> Tier {
        Tier {
            clients,
            strategy: Strategy::Ordered,
            weights: None,
        }
    }

    /// Sets the strategy.
    pub fn strategy(mut self, strategy: Strategy) -> Tier {
        self.strategy = strategy;
        self
    }

    /// Sets one weight per client (for [`Strategy::Weighted`]; positive and finite).
    pub fn weights(mut self, weights: impl IntoIterator<Item = f64>) -> Tier {
        self.weights = Some(weights.into_iter().collect());
        self
    }

    /// Checks the tier; `at` names it in the error (e.g. `tiers[1]`).
    fn validate(&self, at: &str) -> Result<()> {
        check_tier(self.clients.len(), self.strategy, self.weights.as_deref())
            .map_err(|p| Error::config(format!("`{at}{}` {}", p.field, p.problem), p.fix))
    }
}

/// What is wrong with a tier: the field below the tier (`.targets`, `.weights[1]`), what
/// is wrong with it, and the fix.
#[derive(Debug)]
pub(crate) struct TierProblem {
    pub(crate) field: String,
    pub(crate) problem: String,
    pub(crate) fix: &'static str,
}

/// Checks a tier of `len` targets with `strategy` and `weights`: the one rule the builder
/// and the settings share.
pub(crate) fn check_tier(
    len: usize,
    strategy: Strategy,
    weights: Option<&[f64]>,
) -> std::result::Result<(), TierProblem> {
    let problem = |field: String, problem: String, fix| {
        Err(TierProblem {
            field,
            problem,
            fix,
        })
    };
    if len == 0 {
        return problem(
            ".targets".into(),
            "is empty".into(),
            "give every tier at least one target, or remove the empty tier",
        );
    }
    if len > MAX_TIER_TARGETS {
        return problem(
            ".targets".into(),
            format!("has {len} targets; a tier holds at most {MAX_TIER_TARGETS}"),
            "split the targets into several tiers",
        );
    }
    let Some(weights) = weights else {
        return Ok(());
    };
    if strategy != Strategy::Weighted {
        return problem(
            ".weights".into(),
            format!("is set, and the strategy is `{strategy}`, which does not use weights"),
            "set `strategy = \"weighted\"`, or remove the weights",
        );
    }
    if weights.len() != len {
        return problem(
            ".weights".into(),
            format!("has {} values for {len} targets", weights.len()),
            "give exactly one weight per target, in the same order",
        );
    }
    if let Some((i, w)) = weights
        .iter()
        .enumerate()
        .find(|(_, w)| !(w.is_finite() && **w > 0.0))
    {
        return problem(
            format!(".weights[{i}]"),
            format!("= `{w}` is not a positive weight"),
            "give every target a positive weight (e.g. 3 and 1 for a 3:1 split), or remove the target",
        );
    }
    Ok(())
}

/// Spreads requests over tiers of targets; see the [module docs](self).
///
/// # Clone
/// Clones share the targets, the load and latency records, the weighted round-robin state
/// and the pins.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use switchboard::{BalancedClient, ChatClient, ChatClientExt, ChatRequest, ChatResponse, FunctionClient, Strategy, Tier};
///
/// let a = FunctionClient::new("a", |_r: &ChatRequest| Ok(ChatResponse::from_text("a")));
/// let b = FunctionClient::new("b", |_r: &ChatRequest| Ok(ChatResponse::from_text("b")));
/// let backup = FunctionClient::new("backup", |_r: &ChatRequest| Ok(ChatResponse::from_text("backup")));
/// let client = BalancedClient::builder()
///     .tier(Tier::new(vec![a.clone().boxed(), b.clone().boxed()]).strategy(Strategy::Weighted).weights([3.0, 1.0]))
///     .tier(Tier::new(vec![backup.boxed()]))
///     .build()?;
/// for _ in 0..8 {
///     client.chat(&ChatRequest::user("hi")).await?;
/// }
/// assert_eq!((a.calls(), b.calls()), (6, 2));
/// # Ok::<_, switchboard::Error>(()) }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct BalancedClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Every target of every tier, in tier order, each wrapped in its [`Metered`] record.
    clients: Vec<DynClient>,
    stats: Vec<Arc<TargetStats>>,
    tiers: Vec<TierState>,
    fallback: FallbackClient,
    hedge: Option<HedgedClient>,
    pins: Option<Pins>,
    info: ClientInfo,
}

impl BalancedClient {
    /// Starts a builder.
    pub fn builder() -> BalancedClientBuilder {
        BalancedClientBuilder {
            tiers: Vec::new(),
            fallback_on: FallbackOn::default(),
            when_all_open: AllOpen::default(),
            commit_point: CommitPoint::default(),
            continuation: false,
            hedge: None,
            affinity: None,
            decay: Duration::from_secs(10),
        }
    }

    /// Returns every target, in tier order (each as given to the builder).
    pub fn targets(&self) -> impl Iterator<Item = &ClientInfo> {
        self.inner.clients.iter().map(|c| c.info())
    }

    /// Returns each target's calls in flight, in tier order.
    pub fn in_flight(&self) -> Vec<u32> {
        self.inner.stats.iter().map(|s| s.in_flight()).collect()
    }

    /// Returns how many conversations this process has pinned (0 without affinity).
    pub fn pinned(&self) -> usize {
        self.inner.pins.as_ref().map_or(0, Pins::len)
    }

    /// Returns the affinity settings, if any.
    pub fn affinity(&self) -> Option<&Affinity> {
        self.inner.pins.as_ref().map(Pins::affinity)
    }

    /// Chooses the order the targets would be tried in for `req` (indices into
    /// [`targets`](Self::targets)), as a call does before sending: the strategy's pick
    /// first in each tier, or a pinned conversation's target first in its tier. A weighted
    /// tier counts it as a pick. Only pins this process holds are used (the shared store is
    /// not asked, and nothing is pinned).
    pub fn choose(&self, req: &ChatRequest) -> Vec<usize> {
        let pinned = self.inner.pins.as_ref().and_then(|pins| {
            let conversation = pins.conversation(req)?;
            Some((conversation, pins.local(conversation, Instant::now())?))
        });
        self.order(Some(req), pinned)
    }

    /// The order to try the targets in for `req`, with `pinned` (a conversation and its
    /// target) first in its tier.
    fn order(&self, req: Option<&ChatRequest>, pinned: Option<(u64, usize)>) -> Vec<usize> {
        let inner = &self.inner;
        let now = Instant::now();
        let mut order = Vec::with_capacity(inner.clients.len());
        for tier in &inner.tiers {
            match pinned {
                Some((conversation, target)) if tier.contains(target) => {
                    order.push(target);
                    let from = order.len();
                    order.extend((tier.start..tier.start + tier.len).filter(|&i| i != target));
                    rendezvous(conversation, &mut order[from..]);
                }
                _ => tier.order_into(&mut order, &inner.clients, &inner.stats, req, now),
            }
        }
        order
    }

    /// The conversation of `req` and its target, pinning it now if it is new; `None` when
    /// the client has no affinity or the request carries no key.
    async fn pin(&self, req: &ChatRequest) -> Option<(u64, usize)> {
        let pins = self.inner.pins.as_ref()?;
        let conversation = pins.conversation(req)?;
        if let Some(target) = pins.local(conversation, Instant::now()) {
            return Some((conversation, target));
        }
        let order = self.order(Some(req), None);
        let proposed = order
            .iter()
            .copied()
            .find(|&i| available(&self.inner.clients[i], Some(req)))
            .or_else(|| order.first().copied())?;
        Some((conversation, pins.pin(conversation, proposed).await))
    }
}

impl ChatClient for BalancedClient {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(async move {
            let pinned = self.pin(req).await;
            let order = self.order(Some(req), pinned);
            match (&self.inner.hedge, pinned) {
                (Some(hedge), None) => hedge.chat_in(req, Some(&order)).await,
                _ => self.inner.fallback.chat_in(req, Some(&order)).await,
            }
        })
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(async move {
            let pinned = self.pin(req).await;
            let order = self.order(Some(req), pinned);
            self.inner.fallback.chat_stream_in(req, Some(&order)).await
        })
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        Box::pin(async move {
            let order = self.order(None, None);
            self.inner.fallback.embed_in(req, Some(&order)).await
        })
    }

    fn info(&self) -> &ClientInfo {
        &self.inner.info
    }

    fn readiness(&self) -> Readiness {
        Readiness::earliest(self.inner.clients.iter().map(|c| c.readiness()))
    }
}

/// Builds a [`BalancedClient`].
#[must_use]
#[derive(Debug)]
pub struct BalancedClientBuilder {
    tiers: Vec<Tier>,
    fallback_on: FallbackOn,
    when_all_open: AllOpen,
    commit_point: CommitPoint,
    continuation: bool,
    hedge: Option<HedgePolicy>,
    affinity: Option<Affinity>,
    decay: Duration,
}

impl BalancedClientBuilder {
    /// Adds a tier after the ones added so far.
    pub fn tier(mut self, tier: Tier) -> BalancedClientBuilder {
        self.tiers.push(tier);
        self
    }

    /// Sets which errors move on to the next target (default [`FallbackOn::Recoverable`]).
    pub fn fallback_on(mut self, fallback_on: FallbackOn) -> BalancedClientBuilder {
        self.fallback_on = fallback_on;
        self
    }

    /// Sets what happens when every target's breaker is open (default
    /// [`AllOpen::WaitForFirst`]).
    pub fn when_all_open(mut self, when_all_open: AllOpen) -> BalancedClientBuilder {
        self.when_all_open = when_all_open;
        self
    }

    /// Sets where a stream commits to its target (default [`CommitPoint::FirstContent`]).
    pub fn commit_point(mut self, point: CommitPoint) -> BalancedClientBuilder {
        self.commit_point = point;
        self
    }

    /// Continues a stream cut after its commit point on the next target in the order that
    /// accepts a prefill (default off; see
    /// [`FallbackClientBuilder::continuation`](super::FallbackClientBuilder::continuation)).
    pub fn continuation(mut self, on: bool) -> BalancedClientBuilder {
        self.continuation = on;
        self
    }

    /// Races the next target in the order when the current one is slow (non-stream calls
    /// without a pin; see [`HedgedClient`]).
    pub fn hedge(mut self, policy: HedgePolicy) -> BalancedClientBuilder {
        self.hedge = Some(policy);
        self
    }

    /// Pins conversations to targets; see the [module docs](self#prompt-cache-affinity).
    pub fn affinity(mut self, affinity: Affinity) -> BalancedClientBuilder {
        self.affinity = Some(affinity);
        self
    }

    /// Sets how fast the `latency` strategy forgets (default 10 s): the time constant of
    /// its moving averages and of their fading while a target is idle.
    pub fn decay(mut self, decay: Duration) -> BalancedClientBuilder {
        self.decay = decay.max(Duration::from_millis(1));
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when there is no tier, a tier is
    /// empty or has more than 64 targets, weights do not match the targets or are not
    /// positive, weights are given to a strategy that does not use them, or the affinity
    /// has no keys or more than one session header.
    pub fn build(self) -> Result<BalancedClient> {
        if self.tiers.is_empty() {
            return Err(Error::config(
                "a BalancedClient needs at least one tier, and got none",
                "add tiers with `.tier(Tier::new(clients))`",
            ));
        }
        for (t, tier) in self.tiers.iter().enumerate() {
            tier.validate(&format!("tiers[{t}]"))?;
        }
        if let Some((problem, fix)) = self.affinity.as_ref().and_then(Affinity::problem) {
            return Err(Error::config(format!("the affinity keys {problem}"), fix));
        }
        let mut clients: Vec<DynClient> = Vec::new();
        let mut stats = Vec::new();
        let mut tiers = Vec::new();
        for tier in self.tiers {
            let start = clients.len();
            let len = tier.clients.len();
            let weights = tier.weights.unwrap_or_else(|| vec![1.0; len]);
            tiers.push(TierState::new(start, len, tier.strategy, weights));
            for client in tier.clients {
                let record = Arc::new(TargetStats::new(self.decay));
                clients.push(Arc::new(Metered::new(client, Arc::clone(&record))));
                stats.push(record);
            }
        }
        let fallback = FallbackClient::builder()
            .clients(clients.iter().cloned())
            .fallback_on(self.fallback_on)
            .when_all_open(self.when_all_open)
            .commit_point(self.commit_point)
            .continuation(self.continuation)
            .build()?;
        let hedge = match self.hedge {
            Some(policy) => Some(HedgedClient::new(
                clients.clone(),
                policy.with_commit_point(self.commit_point),
            )?),
            None => None,
        };
        let names = clients.iter().map(|c| c.info().to_string()).collect();
        let pins = self.affinity.map(|a| Pins::new(a, names));
        let info = fallback.info().clone();
        Ok(BalancedClient {
            inner: Arc::new(Inner {
                clients,
                stats,
                tiers,
                fallback,
                hedge,
                pins,
                info,
            }),
        })
    }
}

#[cfg(test)]
mod tests;
