#![allow(missing_docs)] // criterion_group! generates an undocumented function.
//! Overhead of each wrapper, and of a full stack, over a bare `FunctionClient`.
//!
//! Every benchmark sends one chat request whose future is ready at once (the
//! `FunctionClient` answers synchronously), polled without a runtime, so the numbers are
//! the wrappers' own work. Each iteration gets a fresh, unique request (built outside the
//! timing), so the cache benchmarks measure the miss path unless they say "hit".
//!
//! ```text
//! cargo bench --bench stack_overhead
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use futures_util::FutureExt;
use switchboard::{
    Budget, ChatClient, ChatClientExt, ChatRequest, ChatResponse, FunctionClient, MemoryCache,
    Usage,
};

fn model() -> FunctionClient {
    FunctionClient::builder("gpt-4o-mini")
        .provider("openai")
        .respond(|_req: &ChatRequest| {
            Ok(ChatResponse::from_text("ok").with_usage(Usage::new(20, 5)))
        })
        .build()
}

fn budget() -> Budget {
    Budget::builder()
        .max_cost_usd(1_000_000.0)
        .build()
        .expect("a valid budget")
}

fn bench_client<C: ChatClient>(c: &mut Criterion, name: &str, client: &C, inner: &FunctionClient) {
    let counter = AtomicU64::new(0);
    c.bench_function(name, |b| {
        b.iter_batched(
            || {
                inner.clear_history();
                let n = counter.fetch_add(1, Ordering::Relaxed);
                ChatRequest::user(format!("request number {n}")).with_max_tokens(64)
            },
            |req| {
                client
                    .chat(&req)
                    .now_or_never()
                    .expect("the stack answers without waiting")
                    .expect("the stack answers")
            },
            BatchSize::SmallInput,
        );
    });
}

fn stack_overhead(c: &mut Criterion) {
    let bare = model();
    bench_client(c, "baseline: FunctionClient", &bare, &bare);

    let inner = model();
    bench_client(c, "budget", &inner.clone().with_budget(budget()), &inner);

    let inner = model();
    bench_client(c, "instrumented", &inner.clone().instrumented(), &inner);

    let inner = model();
    bench_client(
        c,
        "concurrency limit",
        &inner.clone().with_concurrency_limit(64),
        &inner,
    );

    let inner = model();
    bench_client(
        c,
        "cache (miss)",
        &inner.clone().with_cache(MemoryCache::new(1024)),
        &inner,
    );

    let inner = model();
    let cached = inner.clone().with_cache(MemoryCache::new(16));
    let req = ChatRequest::user("the same request").with_max_tokens(64);
    c.bench_function("cache (hit)", |b| {
        b.iter(|| {
            cached
                .chat(&req)
                .now_or_never()
                .expect("the stack answers without waiting")
                .expect("the stack answers")
        });
    });

    let inner = model();
    let full = inner
        .clone()
        .with_concurrency_limit(64)
        .with_budget(budget())
        .with_cache(MemoryCache::new(1024))
        .instrumented();
    bench_client(
        c,
        "full stack (instrument, cache miss, budget, concurrency)",
        &full,
        &inner,
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = stack_overhead
}
criterion_main!(benches);
