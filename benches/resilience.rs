//! What the resilience wrappers cost on the paths where they should cost nothing.
//!
//! - An open circuit breaker answering `CircuitOpen` against calling a bare
//!   `FunctionClient` (goal: about the same — failing fast must be as cheap as a call that
//!   does nothing), plus a closed breaker's overhead on a successful call.
//! - Failover after an immediate 503 against calling the backup directly (goal: a few
//!   microseconds on top).
//!
//! Run: `cargo bench --bench resilience`. Results, as ratios, go in `BENCHMARKS.md`.

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use switchboard::{
    BreakerConfig, ChatClient, ChatClientExt, ChatRequest, ChatResponse, Error, FallbackClient,
    FunctionClient, RetryPolicy,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
}

/// Times `iters` calls of `call`, clearing the scripted clients' request histories every
/// thousand calls outside the timed region (they record every request they get).
fn timed(iters: u64, clients: &[&FunctionClient], mut call: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(1000);
        let start = Instant::now();
        for _ in 0..n {
            call();
        }
        total += start.elapsed();
        left -= n;
        for client in clients {
            client.clear_history();
        }
    }
    total
}

fn answering(name: &str) -> FunctionClient {
    FunctionClient::new(name, |_req: &ChatRequest| Ok(ChatResponse::from_text("ok")))
}

fn failing(name: &str) -> FunctionClient {
    FunctionClient::new(name, |_req: &ChatRequest| {
        Err(Error::from_status("primary", 503, "unavailable"))
    })
}

fn breaker(c: &mut Criterion) {
    let rt = runtime();
    let req = ChatRequest::user("hello");
    let mut group = c.benchmark_group("breaker");

    let bare = answering("bare");
    group.bench_function("bare_function_client", |b| {
        b.iter_custom(|iters| {
            timed(iters, &[&bare], || {
                black_box(rt.block_on(bare.chat(&req)).is_ok());
            })
        })
    });

    let inner = answering("closed");
    let closed = inner.clone().with_circuit_breaker(BreakerConfig::default());
    group.bench_function("closed_breaker_success", |b| {
        b.iter_custom(|iters| {
            timed(iters, &[&inner], || {
                black_box(rt.block_on(closed.chat(&req)).is_ok());
            })
        })
    });

    let down = failing("open");
    let open = down.clone().with_circuit_breaker(
        BreakerConfig::default()
            .with_consecutive_failures(1)
            .with_cooldown(Duration::from_secs(3600)),
    );
    let _ = rt.block_on(open.chat(&req));
    group.bench_function("open_breaker_fail_fast", |b| {
        b.iter_custom(|iters| {
            timed(iters, &[&down], || {
                black_box(rt.block_on(open.chat(&req)).is_err());
            })
        })
    });
    group.finish();
}

fn failover(c: &mut Criterion) {
    let rt = runtime();
    let req = ChatRequest::user("hello");
    let mut group = c.benchmark_group("failover");

    let backup = answering("backup");
    group.bench_function("backup_directly", |b| {
        b.iter_custom(|iters| {
            timed(iters, &[&backup], || {
                black_box(rt.block_on(backup.chat(&req)).is_ok());
            })
        })
    });

    let primary = failing("primary");
    let chain = FallbackClient::new(vec![primary.clone().boxed(), backup.clone().boxed()])
        .expect("two targets");
    group.bench_function("after_immediate_503", |b| {
        b.iter_custom(|iters| {
            timed(iters, &[&primary, &backup], || {
                black_box(rt.block_on(chain.chat(&req)).is_ok());
            })
        })
    });

    let stacked = FallbackClient::new(vec![
        primary
            .clone()
            .with_retry(RetryPolicy::default().with_max_retries(0))
            .with_circuit_breaker(BreakerConfig::default().with_consecutive_failures(0))
            .boxed(),
        backup.clone().boxed(),
    ])
    .expect("two targets");
    group.bench_function("after_immediate_503_through_breaker_and_retry", |b| {
        b.iter_custom(|iters| {
            timed(iters, &[&primary, &backup], || {
                black_box(rt.block_on(stacked.chat(&req)).is_ok());
            })
        })
    });
    group.finish();
}

criterion_group!(benches, breaker, failover);
criterion_main!(benches);
