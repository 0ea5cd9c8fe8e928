//! Counters and latency histograms, rendered as Prometheus text at `GET /metrics`.
//!
//! Series (all prefixed `switchboard_gateway_`): `requests_total{route,dialect,status}`,
//! `attempts_total{provider,model,outcome}`, `errors_total{kind}`,
//! `tokens_total{route,direction}` (`input`, `output`, `cache_read`),
//! `cache_read_ratio{route}` (cache-read ÷ input tokens), `in_flight`, and the histogram
//! `request_duration_seconds{route,dialect}` (whole request; for streams, until the last
//! byte). `dialect` names the front door: `chat`, `messages`, `responses` or `embeddings`.
//! Written by hand: the exposition format is a few lines of text.
//!
//! Label values come from the configuration, never from clients: every direct
//! `provider:model` request is counted under the route (and attempt model) [`DIRECT`], so
//! a flood of made-up model names cannot grow the series.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard::cost::PriceTable;
use switchboard::{ErrorKind, Usage};

/// What metrics read from a successful answer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Answer<'a> {
    pub(crate) usage: &'a Usage,
    pub(crate) provider: &'a str,
    pub(crate) model: &'a str,
}

impl Answer<'_> {
    fn model_served(&self) -> &str {
        self.model
    }
}

/// The route label of every direct `provider:model` request, and the model label of
/// its attempts.
pub(crate) const DIRECT: &str = "direct";

/// The series label for a route: its alias, or [`DIRECT`] for a `provider:model` (aliases
/// never contain `:`).
fn route_label(route: &str) -> &str {
    if route.contains(':') {
        DIRECT
    } else {
        route
    }
}

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(String, &'static str, u16), u64>,
    attempts: BTreeMap<(String, String, &'static str), u64>,
    errors: BTreeMap<&'static str, u64>,
    tokens: BTreeMap<(String, &'static str), u64>,
    cost_nanos: BTreeMap<String, u64>,
    latency: BTreeMap<(String, &'static str), Histogram>,
}

/// The gateway's counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    inner: Mutex<Inner>,
    in_flight: AtomicI64,
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// Notes a request starting; the guard notes its end when dropped.
    pub(crate) fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Counts requests and streams in progress.
    pub(crate) fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Records a finished request that came in through the `dialect` front door.
    pub(crate) fn request(
        &self,
        dialect: &'static str,
        route: &str,
        status: u16,
        elapsed: Duration,
        answer: Option<Answer<'_>>,
    ) {
        let route = route_label(route);
        self.with(|m| {
            *m.requests
                .entry((route.to_owned(), dialect, status))
                .or_default() += 1;
            let h = m.latency.entry((route.to_owned(), dialect)).or_default();
            let secs = elapsed.as_secs_f64();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
            if let Some(answer) = answer {
                let u = &answer.usage;
                *m.tokens.entry((route.to_owned(), "input")).or_default() += u.input_tokens;
                *m.tokens.entry((route.to_owned(), "output")).or_default() += u.output_tokens;
                *m.tokens
                    .entry((route.to_owned(), "cache_read"))
                    .or_default() += u.cache_read_tokens.unwrap_or(0);
                if let Some(cost) =
                    PriceTable::embedded().cost_of(u, answer.provider, answer.model_served())
                {
                    *m.cost_nanos.entry(route.to_owned()).or_default() += cost.nanos();
                }
            }
        });
    }

    /// Records one real attempt at a provider.
    pub(crate) fn attempt(
        &self,
        provider: &str,
        model: &str,
        outcome: &'static str,
        kind: Option<ErrorKind>,
    ) {
        self.with(|m| {
            *m.attempts
                .entry((provider.to_owned(), model.to_owned(), outcome))
                .or_default() += 1;
            if let Some(kind) = kind {
                *m.errors.entry(kind.as_str()).or_default() += 1;
            }
        });
    }

    /// Records an error answered to a client that no attempt produced (bad JSON, auth, …).
    pub(crate) fn gateway_error(&self, label: &'static str) {
        self.with(|m| *m.errors.entry(label).or_default() += 1);
    }

    /// Renders breaker states as a gauge: 0 closed, 1 half-open, 2 open.
    pub(crate) fn render_breakers(
        states: &[(String, String, switchboard::middleware::BreakerState)],
    ) -> String {
        use switchboard::middleware::BreakerState;
        let p = "switchboard_gateway";
        let mut out = format!("# HELP {p}_breaker_state Circuit breaker per target: 0 closed, 1 half-open, 2 open.\n# TYPE {p}_breaker_state gauge\n");
        for (route, target, state) in states {
            let value = match state {
                BreakerState::Closed => 0,
                BreakerState::HalfOpen => 1,
                BreakerState::Open { .. } => 2,
            };
            let _ = writeln!(
                out,
                "{p}_breaker_state{{route=\"{}\",target=\"{}\"}} {value}",
                esc(route),
                esc(target)
            );
        }
        out
    }

    /// Renders the Prometheus text exposition; `extra` is appended as is.
    pub(crate) fn render(&self, extra: &str) -> String {
        let mut out = String::with_capacity(4096);
        let p = "switchboard_gateway";
        self.with(|m| {
            let _ = writeln!(out, "# HELP {p}_requests_total Requests answered, by route, front door and HTTP status.\n# TYPE {p}_requests_total counter");
            for ((route, dialect, status), n) in &m.requests {
                let _ = writeln!(out, "{p}_requests_total{{route=\"{}\",dialect=\"{dialect}\",status=\"{status}\"}} {n}", esc(route));
            }
            let _ = writeln!(out, "# HELP {p}_attempts_total Real attempts at providers, by outcome.\n# TYPE {p}_attempts_total counter");
            for ((provider, model, outcome), n) in &m.attempts {
                let _ = writeln!(
                    out,
                    "{p}_attempts_total{{provider=\"{}\",model=\"{}\",outcome=\"{outcome}\"}} {n}",
                    esc(provider),
                    esc(model)
                );
            }
            let _ = writeln!(out, "# HELP {p}_errors_total Errors, by kind (attempt errors and errors answered by the gateway itself).\n# TYPE {p}_errors_total counter");
            for (kind, n) in &m.errors {
                let _ = writeln!(out, "{p}_errors_total{{kind=\"{kind}\"}} {n}");
            }
            let _ = writeln!(out, "# HELP {p}_tokens_total Tokens used, by route and direction.\n# TYPE {p}_tokens_total counter");
            for ((route, direction), n) in &m.tokens {
                let _ = writeln!(out, "{p}_tokens_total{{route=\"{}\",direction=\"{direction}\"}} {n}", esc(route));
            }
            let _ = writeln!(out, "# HELP {p}_cache_read_ratio Input tokens read from the provider's prompt cache, as a share of all input tokens, by route.\n# TYPE {p}_cache_read_ratio gauge");
            for ((route, direction), input) in &m.tokens {
                if *direction != "input" || *input == 0 {
                    continue;
                }
                let read = m.tokens.get(&(route.clone(), "cache_read")).copied().unwrap_or(0);
                let _ = writeln!(out, "{p}_cache_read_ratio{{route=\"{}\"}} {}", esc(route), read as f64 / *input as f64);
            }
            let _ = writeln!(out, "# HELP {p}_cost_usd_total Estimated spend from the built-in price table, by route.\n# TYPE {p}_cost_usd_total counter");
            for (route, nanos) in &m.cost_nanos {
                let _ = writeln!(out, "{p}_cost_usd_total{{route=\"{}\"}} {}", esc(route), *nanos as f64 / 1e9);
            }
            let _ = writeln!(out, "# HELP {p}_request_duration_seconds Request latency, to the last byte.\n# TYPE {p}_request_duration_seconds histogram");
            for ((route, dialect), h) in &m.latency {
                let labels = format!("route=\"{}\",dialect=\"{dialect}\"", esc(route));
                for (bound, count) in BUCKETS.iter().zip(h.counts.iter()) {
                    let _ = writeln!(out, "{p}_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}");
                }
                let _ = writeln!(out, "{p}_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "{p}_request_duration_seconds_sum{{{labels}}} {}", h.sum);
                let _ = writeln!(out, "{p}_request_duration_seconds_count{{{labels}}} {}", h.count);
            }
        });
        let _ = writeln!(
            out,
            "# HELP {p}_in_flight Requests and streams in progress.\n# TYPE {p}_in_flight gauge"
        );
        let _ = writeln!(
            out,
            "{p}_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        out.push_str(extra);
        out
    }
}

/// Marks one request in flight until dropped.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Escapes a label value.
fn esc(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
