//! The provider's state and its public face: the builder, the fault plan, the arrival
//! records.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::request::Asked;
use super::server::accept_loop;
use super::{Arrival, Fault, Protocol};

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
    /// Prompt tokens per message, when the provider models a prompt cache.
    prompt_cache: Option<u64>,
}

/// Builds a [`FaultProvider`]; see the [module docs](crate::fault).
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

    /// Models a provider's prompt cache: a request's input is `tokens_per_message` tokens
    /// per message (the system prompt counting as one), and the longest prefix of messages
    /// this provider has seen before is reported as read from the cache — OpenAI
    /// `usage.prompt_tokens_details.cached_tokens`, Anthropic `cache_read_input_tokens`,
    /// Gemini `cachedContentTokenCount`. The cache never expires; each provider has its own,
    /// as each deployment of a real provider does.
    pub fn prompt_cache(mut self, tokens_per_message: u64) -> FaultProviderBuilder {
        self.plan.prompt_cache = Some(tokens_per_message);
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
                cached: HashSet::new(),
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
pub(super) struct Pace {
    pub(super) token_interval: Duration,
    pub(super) input_tokens: u64,
    /// How many of the input tokens were read from the prompt cache.
    pub(super) cached_tokens: u64,
}

struct State {
    plan: Plan,
    next: usize,
    arrivals: Vec<Arrival>,
    /// The prompt prefixes this provider has cached.
    cached: HashSet<u64>,
}

/// What the server tasks and the [`FaultProvider`] handle share.
pub(super) struct Shared {
    pub(super) started: Instant,
    pub(super) tokens: Vec<String>,
    state: Mutex<State>,
    pub(super) ids: AtomicU64,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-written (every
        // update is one push or one increment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Picks the fault for a request and records its arrival.
    pub(super) fn arrive(&self, protocol: Option<Protocol>, asked: &Asked) -> (Fault, Pace) {
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
            stream: asked.stream,
            model: asked.model.clone(),
            prefill: asked.prefill.clone(),
            fault: fault.clone(),
        });
        let mut pace = Pace {
            token_interval: state.plan.token_interval,
            input_tokens: state.plan.input_tokens,
            cached_tokens: 0,
        };
        if let Some(per_message) = state.plan.prompt_cache {
            let hits = asked
                .prefixes
                .iter()
                .rposition(|p| state.cached.contains(p))
                .map_or(0, |i| i + 1);
            state.cached.extend(asked.prefixes.iter().copied());
            pace.input_tokens = per_message * asked.prefixes.len() as u64;
            pace.cached_tokens = per_message * hits as u64;
        }
        (fault, pace)
    }
}

/// A running fault-injecting provider; see the [module docs](crate::fault). Dropping it stops the
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
                prompt_cache: None,
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
