//! What the gateway adds on top of calling the upstream directly.
//!
//! A mock upstream (an axum server answering OpenAI's documented `chat_text.json` and
//! `stream_text.sse` fixtures at once) runs in this process; the gateway runs in a child
//! process (this binary re-executed), configured with one route whose target is the mock
//! through the real OpenAI protocol client, so the child's RSS is the gateway's alone.
//!
//! (a) sequential: one request at a time, rounds alternating direct-to-mock and each front
//!     door of the gateway (Chat Completions, Anthropic Messages, Responses), all served by the same
//!     OpenAI target; reports p50/p99 of each and what each front door adds.
//! (b) fixed rates (500, 1000, 2000, 5000 rps, open loop) for `--duration S` seconds each
//!     (default 5; `--long` for 30): success rate, p50/p99, gateway RSS.
//! (c) streaming time to first byte, alternating direct and each front door, likewise.
//!
//! Run: `cargo bench -p switchboard-gateway --bench proxy_overhead [-- --long]`.
//! The load generator shares the machine with the gateway and the mock: on a 2-core
//! machine the high-rate rows measure all three together.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures_util::StreamExt;

const CHAT: &[u8] = include_bytes!("../../../tests/fixtures/openai/chat_text.json");
const STREAM: &[u8] = include_bytes!("../../../tests/fixtures/openai/stream_text.sse");
const CONNECTIONS: usize = 128;
const BODY: &str =
    r#"{"model":"MODEL","messages":[{"role":"user","content":"What is the capital of France?"}]}"#;
const RESPONSES_BODY: &str = r#"{"model":"bench","input":"What is the capital of France?"}"#;
const RESPONSES_STREAM_BODY: &str =
    r#"{"model":"bench","stream":true,"input":"What is the capital of France?"}"#;
const STREAM_BODY: &str = r#"{"model":"MODEL","stream":true,"messages":[{"role":"user","content":"What is the capital of France?"}]}"#;
/// The same question through the Messages front door.
const MESSAGES_BODY: &str = r#"{"model":"bench","max_tokens":256,"messages":[{"role":"user","content":"What is the capital of France?"}]}"#;
const MESSAGES_STREAM_BODY: &str = r#"{"model":"bench","max_tokens":256,"stream":true,"messages":[{"role":"user","content":"What is the capital of France?"}]}"#;

fn main() {
    if let Ok(upstream) = std::env::var("SB_BENCH_GATEWAY_UPSTREAM") {
        run_gateway(&upstream);
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let long = args.iter().any(|a| a == "--long");
    let duration = args
        .iter()
        .position(|a| a == "--duration")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(if long { 30 } else { 5 });
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(bench(duration, rounds));
}

/// The child process: a gateway whose one route targets the mock.
fn run_gateway(upstream: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let config = format!(
            "[providers.openai]\nbase_url = \"{upstream}/v1\"\n[routes.bench]\ntargets = [\"openai:gpt-4o\"]\n"
        );
        let settings = switchboard::config::Settings::from_toml_str(&config).expect("config");
        let gateway = switchboard_gateway::Gateway::with_env(settings, |name| {
            (name == "OPENAI_API_KEY").then(|| "sk-bench".to_owned())
        })
        .expect("gateway");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        println!("listening on http://{}", listener.local_addr().expect("addr"));
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        gateway.serve(listener, std::future::pending()).await.expect("serve");
    });
}

async fn mock(body: Bytes) -> Response {
    let streaming = body.windows(13).any(|w| w == b"\"stream\":true");
    let (kind, bytes) = if streaming {
        ("text/event-stream", STREAM)
    } else {
        ("application/json", CHAT)
    };
    (
        [(header::CONTENT_TYPE, kind)],
        Body::from(Bytes::from_static(bytes)),
    )
        .into_response()
}

async fn start_mock() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new().route("/v1/chat/completions", post(mock));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

struct Child {
    process: std::process::Child,
    url: String,
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn start_gateway(upstream: &str) -> Child {
    use std::io::BufRead as _;
    let exe = std::env::current_exe().expect("exe");
    let mut process = std::process::Command::new(exe)
        .env("SB_BENCH_GATEWAY_UPSTREAM", upstream)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn gateway");
    let stdout = process.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read");
    let url = line.trim().trim_start_matches("listening on ").to_owned();
    Child { process, url }
}

fn rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn one(client: &reqwest::Client, url: &str, body: &'static str) -> Result<Duration, String> {
    let started = Instant::now();
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    resp.bytes().await.map_err(|e| e.to_string())?;
    Ok(started.elapsed())
}

async fn first_byte(client: &reqwest::Client, url: &str, body: &'static str) -> Duration {
    let started = Instant::now();
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("send");
    let mut stream = resp.bytes_stream();
    let _ = stream.next().await;
    let elapsed = started.elapsed();
    while stream.next().await.is_some() {}
    elapsed
}

fn bodies() -> (&'static str, &'static str, &'static str, &'static str) {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    (
        leak(BODY.replace("MODEL", "gpt-4o")),
        leak(BODY.replace("MODEL", "bench")),
        leak(STREAM_BODY.replace("MODEL", "gpt-4o")),
        leak(STREAM_BODY.replace("MODEL", "bench")),
    )
}

async fn bench(duration: u64, rounds: usize) {
    let mock_url = start_mock().await;
    let gateway = start_gateway(&mock_url);
    let pid = gateway.process.id();
    let direct = format!("{mock_url}/v1/chat/completions");
    let via = format!("{}/v1/chat/completions", gateway.url);
    let (direct_body, via_body, direct_stream, via_stream) = bodies();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .tcp_nodelay(true)
        .build()
        .expect("client");

    // Warm up every path (connections, allocators).
    for _ in 0..200 {
        let _ = one(&client, &direct, direct_body).await;
    }

    // Each front door of the gateway, with its path and bodies (JSON, stream).
    let doors: [(&str, String, &'static str, &'static str); 3] = [
        ("chat completions", via.clone(), via_body, via_stream),
        (
            "messages",
            format!("{}/v1/messages", gateway.url),
            MESSAGES_BODY,
            MESSAGES_STREAM_BODY,
        ),
        (
            "responses",
            format!("{}/v1/responses", gateway.url),
            RESPONSES_BODY,
            RESPONSES_STREAM_BODY,
        ),
    ];
    let names: Vec<&str> = doors.iter().map(|(name, ..)| *name).collect();
    for (_, url, body, _) in &doors {
        for _ in 0..200 {
            let _ = one(&client, url, body).await;
        }
    }

    println!("## (a) sequential, {rounds} interleaved rounds");
    let mut d = Vec::with_capacity(rounds);
    let mut g: Vec<Vec<Duration>> = doors.iter().map(|_| Vec::with_capacity(rounds)).collect();
    for _ in 0..rounds {
        d.push(one(&client, &direct, direct_body).await.expect("direct"));
        for ((_, url, body, _), times) in doors.iter().zip(g.iter_mut()) {
            times.push(one(&client, url, body).await.expect("gateway"));
        }
    }
    report(&mut d, &mut g, &names);
    println!("\n## (b) fixed rates through the gateway, {duration} s each (open loop, at most {CONNECTIONS} in flight)");
    println!("| rps | sent | success | p50 ms | p99 ms | gateway RSS MB (peak) |\n| --- | --- | --- | --- | --- | --- |");
    // At most this many requests in flight, as a client with a fixed connection pool.
    let limit = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS));
    for rate in [500u64, 1000, 2000, 5000] {
        let total = rate * duration;
        let ok = Arc::new(AtomicU64::new(0));
        let lat = Arc::new(std::sync::Mutex::new(Vec::with_capacity(total as usize)));
        let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut tasks = Vec::with_capacity(total as usize);
        let errors = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<
            String,
            u64,
        >::new()));
        for _ in 0..total {
            tick.tick().await;
            let scheduled = Instant::now();
            let (client, via, ok, lat) = (
                client.clone(),
                via.clone(),
                Arc::clone(&ok),
                Arc::clone(&lat),
            );
            let (limit, errors) = (Arc::clone(&limit), Arc::clone(&errors));
            tasks.push(tokio::spawn(async move {
                // Latency counts from the scheduled send time, so waiting for a free
                // connection is measured too (no coordinated omission).
                let Ok(_permit) = limit.acquire().await else {
                    return;
                };
                let result = one(&client, &via, via_body)
                    .await
                    .map(|_| scheduled.elapsed());
                if let Err(e) = &result {
                    if let Ok(mut errs) = errors.lock() {
                        *errs.entry(e.chars().take(60).collect()).or_default() += 1;
                    }
                }
                if let Ok(t) = result {
                    ok.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut l) = lat.lock() {
                        l.push(t);
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        if let Ok(errs) = errors.lock() {
            for (e, n) in errs.iter() {
                eprintln!("  {rate} rps: {n} × {e}");
            }
        }
        let mut lat = lat.lock().map(|l| l.clone()).unwrap_or_default();
        lat.sort();
        let (rss, peak) = rss_mb(pid);
        println!(
            "| {rate} | {total} | {:.2}% | {:.3} | {:.3} | {rss:.1} ({peak:.1}) |",
            100.0 * ok.load(Ordering::Relaxed) as f64 / total as f64,
            ms(pct(&lat, 0.5)),
            ms(pct(&lat, 0.99)),
        );
    }

    let stream_rounds = rounds.min(1000);
    println!("\n## (c) streaming time to first byte, {stream_rounds} interleaved rounds");
    let mut d = Vec::new();
    let mut g: Vec<Vec<Duration>> = doors.iter().map(|_| Vec::new()).collect();
    for _ in 0..stream_rounds {
        d.push(first_byte(&client, &direct, direct_stream).await);
        for ((_, url, _, body), times) in doors.iter().zip(g.iter_mut()) {
            times.push(first_byte(&client, url, body).await);
        }
    }
    report(&mut d, &mut g, &names);
}

/// Prints p50/p99 direct and through each front door, and what each door adds.
fn report(direct: &mut [Duration], doors: &mut [Vec<Duration>], names: &[&str]) {
    direct.sort();
    println!(
        "| path | p50 ms | p99 ms | added p50 ms | added p99 ms |\n| --- | --- | --- | --- | --- |"
    );
    println!(
        "| direct to mock | {:.3} | {:.3} | | |",
        ms(pct(direct, 0.5)),
        ms(pct(direct, 0.99))
    );
    for (times, name) in doors.iter_mut().zip(names) {
        times.sort();
        println!(
            "| through gateway, {name} | {:.3} | {:.3} | **{:.3}** | **{:.3}** |",
            ms(pct(times, 0.5)),
            ms(pct(times, 0.99)),
            ms(pct(times, 0.5).saturating_sub(pct(direct, 0.5))),
            ms(pct(times, 0.99).saturating_sub(pct(direct, 0.99)))
        );
    }
}
