//! The Messages front door's access and attempt log lines. In a binary of its own: a
//! `tracing` subscriber installed for one test's thread misses events whose call sites other
//! tests running at the same time registered first.

mod common;

use common::*;
use serde_json::{json, Value};
use switchboard_gateway::GatewayOptions;

const KEY: &str = "sb-messages-test-key";

async fn post(base: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/v1/messages"))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .header("x-api-key", KEY)
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await
        .unwrap()
}

fn header_of<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

fn hello(model: &str) -> Value {
    json!({"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": "hello"}]})
}

#[tokio::test]
async fn access_and_attempt_lines_name_the_dialect_and_what_was_dropped() {
    let logs = LogCapture::default();
    let _guard = logs.install(tracing::Level::DEBUG);
    let gw = start_routes(
        vec![("fast", vec![answers("primary", "model-a", "hi")])],
        GatewayOptions::default().api_key(KEY),
    )
    .await;
    let mut body = hello("fast");
    body["top_k"] = json!(3);
    let resp = post(&gw.base, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header_of(&resp, "x-switchboard-dropped"), "top_k");
    let line = logs
        .line_with(&["switchboard_gateway::access", r#"path="/v1/messages""#])
        .await;
    for field in [
        r#"dialect="messages""#,
        r#"route="fast""#,
        "status=200",
        "streamed=false",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    let attempt = logs
        .line_with(&["switchboard_gateway::attempt", "outcome=\"success\""])
        .await;
    assert!(attempt.contains(r#"dropped="top_k""#), "{attempt}");
    body["stream"] = json!(true);
    let text = post(&gw.base, &body).await.text().await.unwrap();
    assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
    let line = logs
        .line_with(&["switchboard_gateway::access", "streamed=true"])
        .await;
    assert!(
        line.contains(r#"path="/v1/messages""#) && line.contains(r#"dialect="messages""#),
        "{line}"
    );
    gw.shutdown().await.unwrap();
}
