//! Hostile clients at the socket level, over real TCP: trickled headers, a trickled body,
//! headers then silence, connections that never speak, kept-alive connections left idle,
//! a client that stops reading its answer, and more connections than the cap. Each must
//! end in bounded time while good requests are still answered.
//!
//! Limits are set in the hundreds of milliseconds and the bounds checked are several
//! seconds, so a loaded machine does not make these flaky.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use switchboard::{DynClient, FunctionClient, StreamEvent};
use switchboard_gateway::GatewayOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Every limit short, so hostile connections end quickly.
fn short_limits() -> GatewayOptions {
    GatewayOptions::default()
        .header_read_timeout(Duration::from_millis(400))
        .body_read_timeout(Duration::from_millis(400))
        .idle_timeout(Duration::from_millis(400))
}

/// The longest any hostile connection may stay open in these tests.
const BOUND: Duration = Duration::from_secs(8);

async fn gateway(options: GatewayOptions) -> Running {
    start_routes(vec![("fast", vec![answers("p", "m", "hello")])], options).await
}

async fn connect(gw: &Running) -> TcpStream {
    TcpStream::connect(gw.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection (or resets it); returns what was read
/// and how long it took. Panics if the connection is still open after [`BOUND`].
async fn until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut seen = Vec::new();
    let read_all = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(BOUND, read_all)
        .await
        .expect("the gateway closes a hostile connection in bounded time");
    (
        String::from_utf8_lossy(&seen).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn trickled_headers_are_cut_at_the_header_timeout() {
    let gw = gateway(short_limits()).await;
    let mut stream = connect(&gw).await;
    stream
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // One header line every 50 ms, forever: each byte arrives well inside any per-read
    // timeout, but the headers never end.
    let trickle = tokio::spawn(async move {
        for i in 0.. {
            if writer
                .write_all(format!("x-pad-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let started = Instant::now();
    let closed = tokio::time::timeout(BOUND, async {
        let mut buf = [0u8; 1024];
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    trickle.abort();
    assert!(closed.is_ok(), "trickled headers kept the connection open");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "cut by the header timer, not at once: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_connection_that_never_speaks_is_closed() {
    let gw = gateway(short_limits()).await;
    let mut stream = connect(&gw).await;
    let (seen, _) = until_closed(&mut stream).await;
    assert!(seen.is_empty(), "{seen}");
}

#[tokio::test]
async fn a_trickled_body_gets_a_408_at_the_body_timeout() {
    let gw = gateway(short_limits()).await;
    let stream = connect(&gw).await;
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n",
        )
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        for _ in 0..1000 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut seen = Vec::new();
    let read = tokio::time::timeout(BOUND, reader.read_to_end(&mut seen)).await;
    trickle.abort();
    assert!(read.is_ok(), "a trickled body kept the connection open");
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.starts_with("HTTP/1.1 408"), "{seen}");
    assert!(seen.contains("\"request_timeout\""), "{seen}");
    assert!(seen.contains("body_read_timeout_ms"), "{seen}");
}

#[tokio::test]
async fn headers_then_silence_get_a_408() {
    let gw = gateway(short_limits()).await;
    let mut stream = connect(&gw).await;
    stream
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n")
        .await
        .unwrap();
    let (seen, _) = until_closed(&mut stream).await;
    assert!(seen.starts_with("HTTP/1.1 408"), "{seen}");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let gw = gateway(
        short_limits()
            .header_read_timeout(Duration::from_secs(30))
            .idle_timeout(Duration::from_millis(400)),
    )
    .await;
    let mut stream = connect(&gw).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (seen, elapsed) = until_closed(&mut stream).await;
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(
        elapsed < Duration::from_secs(6),
        "closed by the idle timeout, not the 30 s header timeout: {elapsed:?}"
    );
}

#[tokio::test]
async fn a_kept_alive_connection_serves_requests_until_it_goes_idle() {
    let gw = gateway(short_limits().idle_timeout(Duration::from_secs(30))).await;
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let resp = client
            .get(format!("{}/health", gw.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
        // Longer than the header timeout: waiting between requests is governed by the
        // idle timeout, so the pooled connection is still good.
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    gw.shutdown().await.unwrap();
}

/// A target whose stream sends large deltas as fast as it is read, forever.
fn firehose() -> DynClient {
    Arc::new(
        FunctionClient::builder("m")
            .provider("firehose")
            .stream_async(|_r| {
                Box::pin(async {
                    let text = "x".repeat(64 * 1024);
                    let events = futures_util::stream::repeat_with(move || {
                        Ok(StreamEvent::TextDelta { text: text.clone() })
                    });
                    Ok(events.boxed())
                })
            })
            .build(),
    )
}

#[tokio::test]
async fn a_client_that_stops_reading_its_stream_is_dropped() {
    let gw = start_routes(vec![("fast", vec![firehose()])], short_limits()).await;
    let mut stream = connect(&gw).await;
    let body = r#"{"model":"fast","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    stream
        .write_all(
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // Never read: the socket buffers fill, the gateway's writes stall, and after the idle
    // timeout it ends the stream.
    let metrics = format!("{}/metrics", gw.base);
    let started = Instant::now();
    let mut seen_in_flight = false;
    loop {
        let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
        if text.contains("switchboard_gateway_in_flight 1") {
            seen_in_flight = true;
        }
        if seen_in_flight && text.contains("switchboard_gateway_in_flight 0") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the unread stream is still in flight: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(stream);
}

/// Log output captured from a `tracing` subscriber installed for the current thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn at_the_connection_cap_a_warning_is_logged_and_good_requests_are_still_answered() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    let gw = gateway(short_limits().max_connections(8)).await;
    // Twenty silent connections: eight take every slot, twelve wait in the listen queue.
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(connect(&gw).await);
    }
    let started = Instant::now();
    let resp = tokio::time::timeout(
        Duration::from_secs(20),
        reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", gw.base))
            .header("content-type", "application/json")
            .body(r#"{"model":"fast","messages":[{"role":"user","content":"hi"}]}"#)
            .send(),
    )
    .await
    .expect("a good request is answered once silent connections time out")
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(20));
    let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(
        text.contains("connection limit reached") && text.contains("max_connections=8"),
        "{text}"
    );
    drop(silent);
}
