//! What the gateway tells a client about retrying: a budget held by requests in flight is a
//! retryable 429 `budget_held`, a spent one a final `budget_exceeded`, and a request the
//! route already retried upstream says `x-should-retry: false`. Real sockets, reqwest.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use switchboard::config::{RouteSettings, Settings};
use switchboard::{ChatRequest, ChatResponse, DynClient, Error, FunctionClient, Usage};
use switchboard_gateway::{Gateway, GatewayOptions};

fn route(text: &str) -> RouteSettings {
    let s =
        Settings::from_toml_str(&format!("[routes.x]\ntargets = [\"openai:m\"]\n{text}")).unwrap();
    s.routes["x"].clone()
}

/// POSTs `body` as JSON.
async fn post(client: &reqwest::Client, url: &str, body: &Value) -> reqwest::Response {
    client
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await
        .unwrap()
}

/// Reads a JSON body.
async fn json_body(resp: reqwest::Response) -> Value {
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A priced target (the embedded table's `openai:gpt-4o-mini`) that answers after
/// `delay` with 10 input and 10 output tokens.
fn cheap_and_slow(delay: Duration) -> FunctionClient {
    FunctionClient::builder("gpt-4o-mini")
        .provider("openai")
        .respond_async(move |_r: ChatRequest| async move {
            tokio::time::sleep(delay).await;
            Ok(ChatResponse::from_text("ok").with_usage(Usage::new(10, 10)))
        })
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_never_refused_as_budget_exceeded_while_the_spend_is_well_under_the_cap() {
    // Each request reserves its worst case, 1,000 output tokens at $0.60/M (about $0.0006),
    // and really uses 10 + 10 tokens ($0.0000075). The $0.03 cap holds about 50
    // reservations at once, while all 1,000 requests together spend a quarter of it.
    let target = cheap_and_slow(Duration::from_millis(50));
    let gateway = Gateway::from_routes_with(
        vec![(
            "capped",
            route("budget = { max_cost_usd = 0.03 }"),
            vec![Arc::new(target.clone()) as DynClient],
        )],
        GatewayOptions::default(),
    )
    .unwrap();
    let gw = start(gateway).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", gw.base);
    let body = json!({
        "model": "capped",
        "max_tokens": 1000,
        "messages": [{"role": "user", "content": "hi"}],
    });
    let requests: Vec<_> = (0..1000)
        .map(|_| {
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            tokio::spawn(async move {
                let resp = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&body).unwrap())
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                let should_retry = header(&resp, "x-should-retry").map(str::to_owned);
                let retry_after = header(&resp, "retry-after").map(str::to_owned);
                let body = json_body(resp).await;
                (status, should_retry, retry_after, body)
            })
        })
        .collect();
    let (mut answered, mut held) = (0, 0);
    for request in requests {
        let (status, should_retry, retry_after, body) = request.await.unwrap();
        match status {
            200 => answered += 1,
            429 => {
                assert_eq!(
                    body["error"]["code"], "budget_held",
                    "a budget a quarter spent is not exceeded: {body}"
                );
                assert_eq!(should_retry.as_deref(), Some("true"), "{body}");
                assert_eq!(retry_after.as_deref(), Some("1"), "{body}");
                held += 1;
            }
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert_eq!(answered + held, 1000);
    assert_eq!(target.calls(), answered);
    // Held requests wait for room before they are refused, so nearly all go through.
    assert!(answered >= 500, "{answered} answered, {held} held");
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_spent_budget_stays_a_final_budget_exceeded() {
    let gw = start(
        Gateway::from_routes_with(
            vec![(
                "capped",
                route("budget = { max_cost_usd = 0.001 }"),
                vec![Arc::new(cheap_and_slow(Duration::ZERO)) as DynClient],
            )],
            GatewayOptions::default(),
        )
        .unwrap(),
    )
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", gw.base);
    // Two requests of up to 1,000 output tokens ($0.0006 each) cannot both fit $0.001.
    let body = json!({"model": "capped", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}]});
    let first = client
        .post(&url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let big = json!({"model": "capped", "max_tokens": 2000, "messages": [{"role": "user", "content": "hi"}]});
    let refused = client
        .post(&url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&big).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "x-should-retry"), Some("false"));
    assert_eq!(header(&refused, "retry-after"), None);
    let body = json_body(refused).await;
    assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
    gw.shutdown().await.unwrap();
}

/// A target failing every call with a 503, counting its calls.
fn down(provider: &str) -> FunctionClient {
    let name = provider.to_owned();
    FunctionClient::builder("m")
        .provider(provider)
        .respond(move |_r: &ChatRequest| Err(Error::from_status(name.clone(), 503, "down")))
        .build()
}

#[tokio::test]
async fn a_request_the_route_already_retried_says_not_to_retry_it() {
    let retried = down("a");
    let single = down("b");
    let gw = start(
        Gateway::from_routes_with(
            vec![
                (
                    "retried",
                    route("retry = { max_retries = 1, base_delay_ms = 1, max_delay_ms = 1 }"),
                    vec![Arc::new(retried.clone()) as DynClient],
                ),
                (
                    "single",
                    RouteSettings::default(),
                    vec![Arc::new(single.clone()) as DynClient],
                ),
            ],
            GatewayOptions::default(),
        )
        .unwrap(),
    )
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", gw.base);
    let hello =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    let resp = post(&client, &url, &hello("retried")).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(header(&resp, "x-switchboard-attempts"), Some("2"));
    assert_eq!(header(&resp, "x-should-retry"), Some("false"));
    assert_eq!(retried.calls(), 2);
    // One upstream call: the client's own retry is still welcome.
    let resp = post(&client, &url, &hello("single")).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(header(&resp, "x-switchboard-attempts"), Some("1"));
    assert_eq!(header(&resp, "x-should-retry"), None);
    assert_eq!(single.calls(), 1);
    gw.shutdown().await.unwrap();
}
