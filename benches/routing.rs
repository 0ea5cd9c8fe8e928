#![allow(missing_docs)] // criterion_group! generates an undocumented function.
//! The cost of choosing a target among 16, per strategy: `BalancedClient::choose` (the
//! pick and the failover order, as a call makes them; with affinity, the conversation key
//! and the pin lookup too), and whole calls through a `BalancedClient` against a plain
//! `FallbackClient` over the same targets.
//!
//! Every target is a `FunctionClient` that answers at once, polled without a runtime, so
//! the numbers are the wrappers' own work. Each sample is the fastest of 20 batches of the
//! iterations criterion asks for: on a shared, loaded machine, being preempted only ever
//! adds time, and the fastest batch is the one that ran undisturbed.
//!
//! ```text
//! cargo bench --bench routing
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::FutureExt;
use switchboard::{
    Affinity, AffinityKey, BalancedClient, ChatClient, ChatClientExt, ChatRequest, ChatResponse,
    DynClient, FallbackClient, FunctionClient, Message, Strategy, Tier,
};

const TARGETS: usize = 16;

fn targets() -> Vec<DynClient> {
    (0..TARGETS)
        .map(|i| {
            FunctionClient::builder(format!("model-{i}"))
                .provider("openai")
                .respond(|_req: &ChatRequest| Ok(ChatResponse::from_text("ok")))
                .build()
                .boxed()
        })
        .collect()
}

fn request() -> ChatRequest {
    ChatRequest::new(vec![
        Message::system("You are a careful agent with a long system prompt."),
        Message::user("Start the task."),
        Message::assistant("Working on it."),
        Message::user("Continue."),
    ])
    .with_max_tokens(64)
}

/// Times `f` as the fastest of 20 batches, scaled to `iters` iterations.
fn fastest_batch<T>(iters: u64, mut f: impl FnMut() -> T) -> Duration {
    const BATCHES: u64 = 20;
    let per_batch = (iters / BATCHES).max(1);
    let mut best = Duration::MAX;
    for _ in 0..BATCHES {
        let started = Instant::now();
        for _ in 0..per_batch {
            black_box(f());
        }
        best = best.min(started.elapsed());
    }
    best.mul_f64(iters as f64 / per_batch as f64)
}

fn bench_client(c: &mut Criterion, name: &str, client: &dyn ChatClient) {
    let req = request();
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            fastest_batch(iters, || {
                client
                    .chat(&req)
                    .now_or_never()
                    .expect("the targets answer without waiting")
                    .expect("a target answers")
            })
        });
    });
}

fn balanced(strategy: Strategy, affinity: Option<Affinity>) -> BalancedClient {
    let mut builder = BalancedClient::builder().tier(Tier::new(targets()).strategy(strategy));
    if let Some(affinity) = affinity {
        builder = builder.affinity(affinity);
    }
    builder.build().expect("a valid balancer")
}

fn bench_choose(c: &mut Criterion, name: &str, client: &BalancedClient, req: &ChatRequest) {
    c.bench_function(name, |b| {
        b.iter_custom(|iters| fastest_batch(iters, || client.choose(req)));
    });
}

fn choose(c: &mut Criterion) {
    let req = request();
    for strategy in [
        Strategy::Ordered,
        Strategy::Weighted,
        Strategy::LeastBusy,
        Strategy::Latency,
    ] {
        let name = format!("choose among 16/{strategy}");
        bench_choose(c, &name, &balanced(strategy, None), &req);
    }
    // Pinned conversations: the key is read (or the prefix hashed) and the pin looked up.
    let client = balanced(
        Strategy::Latency,
        Some(Affinity::new(vec![AffinityKey::Prefix])),
    );
    client
        .chat(&req)
        .now_or_never()
        .expect("ready")
        .expect("answers");
    bench_choose(
        c,
        "choose among 16/latency + affinity on prefix (pinned)",
        &client,
        &req,
    );
    let mut keyed = request();
    keyed.routing.session = Some("session-1234".to_owned());
    let client = balanced(
        Strategy::Latency,
        Some(Affinity::new(vec!["header:x-session-id"
            .parse()
            .expect("a header key")])),
    );
    client
        .chat(&keyed)
        .now_or_never()
        .expect("ready")
        .expect("answers");
    bench_choose(
        c,
        "choose among 16/latency + affinity on session (pinned)",
        &client,
        &keyed,
    );
}

fn routing(c: &mut Criterion) {
    let fallback = FallbackClient::new(targets()).expect("a valid chain");
    bench_client(c, "16 targets/fallback (baseline)", &fallback);
    bench_client(c, "16 targets/ordered", &balanced(Strategy::Ordered, None));
    bench_client(
        c,
        "16 targets/weighted",
        &balanced(Strategy::Weighted, None),
    );
    bench_client(
        c,
        "16 targets/least_busy",
        &balanced(Strategy::LeastBusy, None),
    );
    bench_client(c, "16 targets/latency", &balanced(Strategy::Latency, None));
    bench_client(
        c,
        "16 targets/latency + affinity on prefix (pinned)",
        &balanced(
            Strategy::Latency,
            Some(Affinity::new(vec![AffinityKey::Prefix])),
        ),
    );
    let mut keyed = request();
    keyed.routing.session = Some("session-1234".to_owned());
    let client = balanced(
        Strategy::Latency,
        Some(Affinity::new(vec!["header:x-session-id"
            .parse()
            .expect("a header key")])),
    );
    c.bench_function("16 targets/latency + affinity on session (pinned)", |b| {
        b.iter_custom(|iters| {
            fastest_batch(iters, || {
                client
                    .chat(&keyed)
                    .now_or_never()
                    .expect("the targets answer without waiting")
                    .expect("a target answers")
            })
        });
    });
}

criterion_group!(benches, choose, routing);
criterion_main!(benches);
