//! The hostile-client soak: good traffic through a gateway while, at the same time,
//! slowloris connections trickle headers, silent connections pile up past the connection
//! cap, a flood of unique direct model names arrives (allowed and refused ones), and
//! malformed requests keep coming. Everything runs on 127.0.0.1 against a local
//! OpenAI-shaped upstream replaying the documented fixture. (The upstream is a plain axum
//! server: wiremock keeps every request a mock matched, which would hide the gateway's
//! own memory behind the test's.)
//!
//! It passes when every good request was answered 200, every malformed one got a 4xx (no
//! dropped connection, no 5xx), hostile connections were cut, the process's resident
//! memory grew by less than the bound, and `/metrics` has exactly the series it had before
//! the flood. It prints the figures recorded in BENCHMARKS.md.
//!
//! CI runs the short default (6 s). Scale it with `SWITCHBOARD_SOAK_SECS` (the longest
//! run), `SWITCHBOARD_SOAK_NAMES` (unique direct names in the flood; the run ends early
//! when they are all sent), and the number of tasks of each kind:
//! `SWITCHBOARD_SOAK_FLOOD_WORKERS`, `SWITCHBOARD_SOAK_GOOD_WORKERS`,
//! `SWITCHBOARD_SOAK_SLOWLORIS` and `SWITCHBOARD_SOAK_SILENT`, e.g.
//! `SWITCHBOARD_SOAK_NAMES=100000 SWITCHBOARD_SOAK_SECS=3600 SWITCHBOARD_SOAK_FLOOD_WORKERS=4
//! cargo test -p switchboard-gateway --test hostile_soak -- --nocapture`.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use switchboard::config::Settings;
use switchboard_gateway::Gateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the hostile load runs, and how many unique direct names the flood may use.
struct Plan {
    duration: Duration,
    names: usize,
    slowloris: usize,
    silent: usize,
    good_workers: usize,
    flood_workers: usize,
}

impl Plan {
    fn from_env() -> Plan {
        let number = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Plan {
            duration: Duration::from_secs(number("SWITCHBOARD_SOAK_SECS", 6)),
            names: number("SWITCHBOARD_SOAK_NAMES", 100_000) as usize,
            slowloris: number("SWITCHBOARD_SOAK_SLOWLORIS", 48) as usize,
            silent: number("SWITCHBOARD_SOAK_SILENT", 100) as usize,
            good_workers: number("SWITCHBOARD_SOAK_GOOD_WORKERS", 4) as usize,
            flood_workers: number("SWITCHBOARD_SOAK_FLOOD_WORKERS", 2) as usize,
        }
    }
}

/// When the run ends: at a time, or earlier once the flood has sent every name.
struct Stop {
    at: Instant,
    early: AtomicBool,
}

impl Stop {
    fn running(&self) -> bool {
        !self.early.load(Ordering::Relaxed) && Instant::now() < self.at
    }

    /// Resolves when the run ends.
    async fn ended(&self) {
        while self.running() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Largest growth of resident memory allowed over the run (debug build; the test's own
/// clients and upstream share the process).
const RSS_BOUND_KB: u64 = 32 * 1024;

fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn chat(model: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
        .unwrap()
}

/// Trickles header lines on fresh connections until `stop`; counts connections the
/// gateway cut.
async fn slowloris(addr: String, stop: Arc<Stop>, cut: Arc<AtomicUsize>) {
    while stop.running() {
        let Ok(stream) = TcpStream::connect(&addr).await else {
            continue;
        };
        let (mut reader, mut writer) = stream.into_split();
        let trickle = async {
            let _ = writer
                .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
                .await;
            for i in 0.. {
                if !stop.running()
                    || writer
                        .write_all(format!("x-slow-{i}: y\r\n").as_bytes())
                        .await
                        .is_err()
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let closed = async {
            let mut buf = [0u8; 256];
            while let Ok(n) = reader.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        };
        tokio::select! {
            () = trickle => {},
            () = closed => {
                cut.fetch_add(1, Ordering::Relaxed);
            },
        }
    }
}

/// Opens a connection that never speaks, again each time the gateway closes it.
async fn silent(addr: String, stop: Arc<Stop>, cut: Arc<AtomicUsize>) {
    while stop.running() {
        let Ok(mut stream) = TcpStream::connect(&addr).await else {
            continue;
        };
        let mut buf = [0u8; 16];
        tokio::select! {
            read = stream.read(&mut buf) => {
                if matches!(read, Ok(0) | Err(_)) {
                    cut.fetch_add(1, Ordering::Relaxed);
                }
            }
            () = stop.ended() => {}
        }
    }
}

#[derive(Default)]
struct Tally {
    sent: AtomicUsize,
    wrong: AtomicUsize,
}

/// Sends made-up direct model names, each once: a quarter name an unknown provider (404
/// before anything is built), a quarter are answered by the upstream (200), and half carry
/// `"n": 2`, refused with a 400 after their route was built (the flood's cheapest way to
/// make the gateway build routes).
async fn flood(
    base: String,
    stop: Arc<Stop>,
    next: Arc<AtomicUsize>,
    limit: usize,
    tally: Arc<Tally>,
) {
    let client = reqwest::Client::new();
    while stop.running() {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= limit {
            stop.early.store(true, Ordering::Relaxed);
            break;
        }
        let model = format!("openai:flood-model-{i}");
        let (body, expected) = match i % 4 {
            3 => (chat(&format!("made-up-{i}:model")), 404),
            2 => (chat(&model), 200),
            _ => (
                serde_json::to_vec(&json!({"model": model, "n": 2, "messages": [{"role": "user", "content": "hi"}]}))
                    .unwrap(),
                400,
            ),
        };
        let status = client
            .post(format!("{base}/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map(|r| r.status().as_u16());
        tally.sent.fetch_add(1, Ordering::Relaxed);
        if status.ok() != Some(expected) {
            tally.wrong.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sends malformed requests; each must be answered with a 4xx.
async fn malformed(base: String, stop: Arc<Stop>, tally: Arc<Tally>) {
    let client = reqwest::Client::new();
    let url = format!("{base}/v1/chat/completions");
    let bodies: [&[u8]; 6] = [
        b"{\"model\": \"fast\", \"messages\": ",
        b"\x00\xff\xfe not json at all",
        br#"{"model": "fast", "n": 2.0, "messages": [{"role": "user", "content": "x"}]}"#,
        br#"{"model": "fast", "n": "2", "messages": [{"role": "user", "content": "x"}]}"#,
        br#"{"model": "fast", "messages": []}"#,
        br#"{"model": "fast", "messages": [{"role": "wizard", "content": "x"}]}"#,
    ];
    let mut i = 0usize;
    while stop.running() {
        let request = match i % 8 {
            6 => client.get(&url),
            7 => client
                .post(format!("{base}/v1/../../etc/passwd"))
                .body("{}"),
            k => client
                .post(&url)
                .header("content-type", "application/json")
                .body(bodies[k].to_vec()),
        };
        i += 1;
        let status = request.send().await.map(|r| r.status().as_u16());
        tally.sent.fetch_add(1, Ordering::Relaxed);
        if !matches!(status, Ok(400..=499)) {
            tally.wrong.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sends good requests one after another; returns each one's latency, or the failures.
async fn good(base: String, stop: Arc<Stop>) -> (Vec<Duration>, Vec<String>) {
    let client = reqwest::Client::new();
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    while stop.running() {
        let started = Instant::now();
        let result = client
            .post(format!("{base}/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(chat("fast"))
            .send()
            .await;
        match result {
            Ok(resp) if resp.status() == 200 => {
                let body = resp.bytes().await;
                match body {
                    Ok(b) if b.windows(9).any(|w| w == b"\"choices\"") => {
                        latencies.push(started.elapsed());
                    }
                    other => failures.push(format!("unreadable answer: {other:?}")),
                }
            }
            Ok(resp) => failures.push(format!("status {}", resp.status())),
            Err(e) => failures.push(format!("transport: {e}")),
        }
    }
    (latencies, failures)
}

/// Serves the documented OpenAI chat completion to every POST; returns its base URL.
async fn openai_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answer = bytes::Bytes::from(switchboard_testkit::fixture("openai/chat_text.json"));
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || {
            let answer = answer.clone();
            async move { ([("content-type", "application/json")], answer) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn metrics_lines(base: &str) -> Vec<String> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .map(|l| match l.rsplit_once(' ') {
            // The series without its value: counts may grow, names may not.
            Some((series, _)) if !l.starts_with('#') => series.to_owned(),
            _ => l.to_owned(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_requests_are_all_answered_beside_hostile_clients() {
    let plan = Plan::from_env();
    let upstream = openai_upstream().await;
    let config = format!(
        "[server]\nallow_direct_models = true\ndirect_providers = [\"openai\"]\n\
         header_read_timeout_ms = 500\nbody_read_timeout_ms = 500\nidle_timeout_ms = 5000\nmax_connections = 128\n\
         [providers.openai]\nbase_url = \"{}/v1\"\n[routes.fast]\ntargets = [\"openai:gpt-4o\"]\n",
        upstream
    );
    let gateway = Gateway::with_env(Settings::from_toml_str(&config).unwrap(), |name| {
        (name == "OPENAI_API_KEY").then(|| "sk-soak".to_owned())
    })
    .unwrap();
    let gw = start(gateway).await;
    let addr = gw.base.trim_start_matches("http://").to_owned();

    // Warm up every path once, so the series exist and the allocator has its working set.
    let warm = reqwest::Client::new();
    let direct_n2 = serde_json::to_vec(
        &json!({"model": "openai:warm-up", "n": 2, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .unwrap();
    warm.post(format!("{}/v1/chat/completions", gw.base))
        .header("content-type", "application/json")
        .body(direct_n2)
        .send()
        .await
        .unwrap();
    for model in ["fast", "openai:warm-up", "made-up:model"] {
        warm.post(format!("{}/v1/chat/completions", gw.base))
            .header("content-type", "application/json")
            .body(chat(model))
            .send()
            .await
            .unwrap();
    }
    for body in [&b"{"[..], br#"{"model": "fast", "messages": []}"#] {
        warm.post(format!("{}/v1/chat/completions", gw.base))
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
    }
    let series_before = metrics_lines(&gw.base).await;
    let rss_before = rss_kb();

    let started = Instant::now();
    let stop = Arc::new(Stop {
        at: started + plan.duration,
        early: AtomicBool::new(false),
    });
    let cut = Arc::new(AtomicUsize::new(0));
    let mut hostile = tokio::task::JoinSet::new();
    for _ in 0..plan.slowloris {
        hostile.spawn(slowloris(addr.clone(), Arc::clone(&stop), Arc::clone(&cut)));
    }
    for _ in 0..plan.silent {
        hostile.spawn(silent(addr.clone(), Arc::clone(&stop), Arc::clone(&cut)));
    }
    let names = Arc::new(AtomicUsize::new(0));
    let flooded = Arc::new(Tally::default());
    for _ in 0..plan.flood_workers {
        hostile.spawn(flood(
            gw.base.clone(),
            Arc::clone(&stop),
            Arc::clone(&names),
            plan.names,
            Arc::clone(&flooded),
        ));
    }
    let bad = Arc::new(Tally::default());
    hostile.spawn(malformed(
        gw.base.clone(),
        Arc::clone(&stop),
        Arc::clone(&bad),
    ));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..plan.good_workers {
        workers.spawn(good(gw.base.clone(), Arc::clone(&stop)));
    }
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    while let Some(done) = workers.join_next().await {
        let (l, f) = done.unwrap();
        latencies.extend(l);
        failures.extend(f);
    }
    while hostile.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    let rss_after = rss_kb();
    let series_after = metrics_lines(&gw.base).await;

    latencies.sort_unstable();
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    let max = latencies.last().copied().unwrap_or_default();
    let flood_sent = flooded.sent.load(Ordering::Relaxed);
    println!(
        "hostile soak: {:.1} s; good requests {} answered, {} failed, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         flood {} unique names ({} answered wrong); malformed {} ({} not 4xx); hostile connections cut {}; \
         RSS {} -> {} KiB (+{} KiB); /metrics series {} -> {}",
        elapsed.as_secs_f64(),
        latencies.len(),
        failures.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        flood_sent,
        flooded.wrong.load(Ordering::Relaxed),
        bad.sent.load(Ordering::Relaxed),
        bad.wrong.load(Ordering::Relaxed),
        cut.load(Ordering::Relaxed),
        rss_before,
        rss_after,
        rss_after.saturating_sub(rss_before),
        series_before.len(),
        series_after.len(),
    );

    assert!(failures.is_empty(), "good requests failed: {failures:?}");
    assert!(
        latencies.len() >= 20,
        "too few good requests ran: {}",
        latencies.len()
    );
    assert_eq!(flooded.wrong.load(Ordering::Relaxed), 0, "flood answers");
    assert!(flood_sent >= 100, "the flood ran: {flood_sent}");
    assert_eq!(bad.wrong.load(Ordering::Relaxed), 0, "malformed answers");
    assert!(
        cut.load(Ordering::Relaxed) >= plan.slowloris,
        "hostile connections were cut"
    );
    assert!(
        rss_after.saturating_sub(rss_before) < RSS_BOUND_KB,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    assert_eq!(
        series_before, series_after,
        "/metrics gained or lost series"
    );
    gw.shutdown().await.unwrap();
}
