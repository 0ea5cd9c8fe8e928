//! The gateway's safety edges over real sockets: bodies capped even when they arrive
//! without a length, clear 400/404 messages, a shutdown that does not wait past its grace
//! period, and the access log's line for a stream whose client went away.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use switchboard::{ChatRequest, ChatResponse, DynClient, FunctionClient, StreamEvent};
use switchboard_gateway::GatewayOptions;

/// A target whose stream sends a text delta every 10 ms and never ends.
fn endless_stream() -> DynClient {
    Arc::new(
        FunctionClient::builder("m")
            .provider("endless")
            .stream_async(|_r| {
                Box::pin(async {
                    let ticks = futures_util::stream::unfold((), |()| async {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        Some((Ok(StreamEvent::TextDelta { text: "x".into() }), ()))
                    });
                    Ok(ticks.boxed())
                })
            })
            .build(),
    )
}

fn stream_request() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "model": "fast",
        "stream": true,
        "messages": [{"role": "user", "content": "hi"}],
    }))
    .unwrap()
}

/// Log output captured from a `tracing` subscriber installed for the current thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Installs a subscriber that writes every event of `info` or above here.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || sink.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        tracing::callsite::rebuild_interest_cache();
        guard
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Waits up to five seconds for a line containing every one of `parts`.
    async fn line_with(&self, parts: &[&str]) -> String {
        for _ in 0..500 {
            if let Some(line) = self
                .text()
                .lines()
                .find(|l| parts.iter().all(|p| l.contains(p)))
            {
                return line.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no line with {parts:?} in:\n{}", self.text());
    }
}

#[tokio::test]
async fn a_body_without_a_length_is_still_capped_with_a_413() {
    let gw = start_routes(
        vec![("fast", vec![answers("p", "m", "x")])],
        GatewayOptions::default().max_body_bytes(2048),
    )
    .await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..10).map(|_| Ok(vec![b' '; 512])).collect();
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.base))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: Value = json_of(resp).await;
    assert_eq!(body["error"]["code"], "request_too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_body_bytes"),
        "{body}"
    );
}

#[tokio::test]
async fn bad_json_and_an_unknown_path_get_messages_that_say_what_to_do() {
    let gw = start_routes(
        vec![("fast", vec![answers("p", "m", "x")])],
        GatewayOptions::default(),
    )
    .await;
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{}/v1/chat/completions", gw.base))
        .body(r#"{"model": "fast", "messages": "#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = json_of(resp).await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("not the JSON"), "{message}");

    let resp = client
        .post(format!("{}/v1/completions", gw.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = json_of(resp).await;
    assert_eq!(body["error"]["code"], "unknown_url");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`/v1/completions`") && message.contains("/v1/chat/completions"),
        "{message}"
    );
}

#[tokio::test]
async fn shutdown_ends_a_stream_and_a_request_that_outlive_the_grace_period() {
    let captured = Captured::default();
    let _guard = captured.install();
    let silent: DynClient = Arc::new(
        FunctionClient::builder("m")
            .provider("silent")
            .respond_async(|_r: ChatRequest| async {
                tokio::time::sleep(Duration::from_secs(600)).await;
                Ok(ChatResponse::from_text("too late"))
            })
            .build(),
    );
    let gw = start_routes(
        vec![("fast", vec![endless_stream()]), ("slow", vec![silent])],
        GatewayOptions::default().shutdown_grace(Duration::from_millis(200)),
    )
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", gw.base);
    let resp = client
        .post(&url)
        .body(stream_request())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("\"x\""));
    let waiting = tokio::spawn(
        client
            .post(&url)
            .body(r#"{"model": "slow", "messages": [{"role": "user", "content": "hi"}]}"#)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(50)).await;

    let stopped = tokio::time::timeout(Duration::from_secs(5), gw.shutdown()).await;
    assert!(
        matches!(stopped, Ok(Ok(()))),
        "serve returns soon after the grace period"
    );
    let mut rest = Vec::new();
    let read_rest = async {
        while let Some(Ok(chunk)) = body.next().await {
            rest.extend_from_slice(&chunk);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read_rest)
        .await
        .expect("the cut stream ends");
    let rest = String::from_utf8_lossy(&rest);
    let last = rest.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("data: {\"error\"") && last.contains("shut down"),
        "a cut stream ends with an error event: {rest}"
    );
    assert!(
        !rest.contains("[DONE]"),
        "a cut stream never looks complete"
    );

    let waiting = waiting.await.unwrap().unwrap();
    assert_eq!(waiting.status(), 503);
    assert!(waiting.headers().contains_key("retry-after"));
    let body = json_of(waiting).await;
    assert_eq!(body["error"]["code"], "shutting_down");

    captured
        .line_with(&["shutdown grace period over", "in_flight=2"])
        .await;
    captured
        .line_with(&[
            "switchboard_gateway::access",
            "streamed=true",
            r#"error="stream_interrupted""#,
        ])
        .await;
    captured
        .line_with(&[
            "switchboard_gateway::access",
            "status=503",
            r#"error="gateway_shut_down""#,
        ])
        .await;
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_stream_gets_a_client_closed_access_line() {
    let captured = Captured::default();
    let _guard = captured.install();
    let gw = start_routes(
        vec![("fast", vec![endless_stream()])],
        GatewayOptions::default(),
    )
    .await;
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.base))
        .body(stream_request())
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    body.next().await.unwrap().unwrap();
    drop(body);
    let line = captured
        .line_with(&["switchboard_gateway::access", r#"error="client_closed""#])
        .await;
    for field in [
        r#"route="fast""#,
        r#"provider="endless""#,
        "status=200",
        "streamed=true",
        "attempts=1",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    let metrics = reqwest::get(format!("{}/metrics", gw.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("switchboard_gateway_in_flight 0"),
        "{metrics}"
    );
    gw.shutdown().await.unwrap();
}

/// Reads a JSON body, panicking with the text when it is not JSON.
async fn json_of(resp: reqwest::Response) -> Value {
    let text = resp.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
