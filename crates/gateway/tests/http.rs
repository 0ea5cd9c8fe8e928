//! The gateway over real sockets: reqwest against a gateway on 127.0.0.1:0 whose upstreams
//! are FunctionClients or wiremock servers replaying the providers' documented wire data.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use switchboard::config::Settings;
use switchboard::{
    ChatRequest, DynClient, EmbedRequest, EmbedResponse, Error, FunctionClient, StreamEvent,
};
use switchboard_gateway::{Gateway, GatewayOptions};
use switchboard_testkit::fixture;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn post(base: &str, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .await
        .unwrap()
}

async fn json_of(resp: reqwest::Response) -> Value {
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
}

fn header_of<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Splits an SSE body into its `data:` payloads.
fn data_lines(body: &str) -> Vec<&str> {
    body.split("\n\n")
        .filter_map(|frame| frame.strip_prefix("data: "))
        .collect()
}

#[tokio::test]
async fn a_chat_completion_says_who_answered() {
    let gw = start_routes(
        vec![("fast", vec![answers("primary", "model-a", "hi there")])],
        GatewayOptions::default(),
    )
    .await;
    let resp = post(&gw.base, "/v1/chat/completions", hello("fast")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "primary");
    assert_eq!(header_of(&resp, "x-switchboard-attempts"), "1");
    let body = json_of(resp).await;
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "model-a");
    assert_eq!(body["choices"][0]["message"]["content"], "hi there");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["total_tokens"], 13);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_503_from_the_first_target_fails_over_to_the_second() {
    let gw = start_routes(
        vec![(
            "fast",
            vec![
                fails("primary", "a", 503, None),
                answers("backup", "b", "from backup"),
            ],
        )],
        GatewayOptions::default(),
    )
    .await;
    let resp = post(&gw.base, "/v1/chat/completions", hello("fast")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "backup");
    assert_eq!(header_of(&resp, "x-switchboard-attempts"), "2");
    assert_eq!(json_of(resp).await["model"], "b");
}

#[tokio::test]
async fn every_target_rate_limited_is_a_429_with_the_earliest_retry_after() {
    let gw = start_routes(
        vec![(
            "fast",
            vec![fails("a", "m", 429, Some(9)), fails("b", "m", 429, Some(4))],
        )],
        GatewayOptions::default(),
    )
    .await;
    let resp = post(&gw.base, "/v1/chat/completions", hello("fast")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header_of(&resp, "retry-after"), "4");
    assert_eq!(header_of(&resp, "x-switchboard-attempts"), "2");
    let body = json_of(resp).await;
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("all 2 targets failed"));
}

#[tokio::test]
async fn every_target_down_is_a_503_with_retry_after() {
    let gw = start_routes(
        vec![(
            "fast",
            vec![fails("a", "m", 503, None), fails("b", "m", 529, Some(2))],
        )],
        GatewayOptions::default(),
    )
    .await;
    let resp = post(&gw.base, "/v1/chat/completions", hello("fast")).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(header_of(&resp, "retry-after"), "2");
    assert_eq!(
        json_of(resp).await["error"]["code"],
        "all_targets_unavailable"
    );
}

#[tokio::test]
async fn an_unknown_model_is_a_404_naming_the_aliases() {
    let gw = start_routes(
        vec![("fast", vec![answers("p", "m", "x")])],
        GatewayOptions::default(),
    )
    .await;
    let resp = post(&gw.base, "/v1/chat/completions", hello("gpt-9")).await;
    assert_eq!(resp.status(), 404);
    let body = json_of(resp).await;
    assert_eq!(body["error"]["code"], "model_not_found");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`gpt-9`") && message.contains("fast"),
        "{message}"
    );
}

#[tokio::test]
async fn bad_json_is_a_400_and_a_huge_body_a_413() {
    let gw = start_routes(
        vec![("fast", vec![answers("p", "m", "x")])],
        GatewayOptions::default().max_body_bytes(2048),
    )
    .await;
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{}/v1/chat/completions", gw.base))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body = json_of(resp).await;
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let big = json!({"model": "fast", "messages": [{"role": "user", "content": "x".repeat(5000)}]});
    let resp = post(&gw.base, "/v1/chat/completions", big).await;
    assert_eq!(resp.status(), 413);
    let resp = post(
        &gw.base,
        "/v1/chat/completions",
        json!({"model": "fast", "messages": []}),
    )
    .await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn a_bearer_key_is_required_when_keys_are_configured() {
    let gw = start_routes(
        vec![("fast", vec![answers("p", "m", "x")])],
        GatewayOptions::default().api_key("gw-secret-1"),
    )
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", gw.base);
    let body = serde_json::to_vec(&hello("fast")).unwrap();
    let none = client.post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let wrong = client
        .post(&url)
        .bearer_auth("gw-secret-2")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let text = wrong.text().await.unwrap();
    assert!(
        !text.contains("gw-secret"),
        "the key never appears in answers: {text}"
    );
    let right = client
        .post(&url)
        .bearer_auth("gw-secret-1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    let health = client
        .get(format!("{}/health", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "health needs no key");
    let models = client
        .get(format!("{}/v1/models", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 401);
}

#[tokio::test]
async fn a_stream_sends_role_content_finish_usage_and_done() {
    let gw = start_routes(
        vec![("fast", vec![answers("primary", "model-a", "streamed text")])],
        GatewayOptions::default(),
    )
    .await;
    let mut req = hello("fast");
    req["stream"] = json!(true);
    req["stream_options"] = json!({"include_usage": true});
    let resp = post(&gw.base, "/v1/chat/completions", req).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header_of(&resp, "content-type"), "text/event-stream");
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "primary");
    let body = resp.text().await.unwrap();
    let lines = data_lines(&body);
    assert_eq!(*lines.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = lines[..lines.len() - 1]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk" && c["model"] == "model-a"));
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "streamed text");
    let finish = chunks
        .iter()
        .find(|c| c["choices"][0]["finish_reason"].is_string())
        .unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 9);
}

#[tokio::test]
async fn a_stream_without_include_usage_has_no_usage_chunk() {
    let gw = start_routes(
        vec![("fast", vec![answers("p", "m", "abc")])],
        GatewayOptions::default(),
    )
    .await;
    let mut req = hello("fast");
    req["stream"] = json!(true);
    let body = post(&gw.base, "/v1/chat/completions", req)
        .await
        .text()
        .await
        .unwrap();
    assert!(!body.contains("\"usage\""), "{body}");
    assert!(body.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn a_stream_that_breaks_after_content_ends_with_an_error_event_and_no_done() {
    let gw = start_routes(
        vec![(
            "fast",
            vec![
                breaks_mid_stream("primary", "a"),
                answers("backup", "b", "unused"),
            ],
        )],
        GatewayOptions::default(),
    )
    .await;
    let mut req = hello("fast");
    req["stream"] = json!(true);
    let resp = post(&gw.base, "/v1/chat/completions", req).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "primary");
    let body = resp.text().await.unwrap();
    assert!(!body.contains("[DONE]"), "{body}");
    let lines = data_lines(&body);
    let last: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stream"),
        "{last}"
    );
    assert!(body.contains("Half an "));
}

#[tokio::test]
async fn a_stream_fails_over_before_its_first_content() {
    let gw = start_routes(
        vec![(
            "fast",
            vec![
                fails("primary", "a", 503, None),
                answers("backup", "b", "from backup"),
            ],
        )],
        GatewayOptions::default(),
    )
    .await;
    let mut req = hello("fast");
    req["stream"] = json!(true);
    let resp = post(&gw.base, "/v1/chat/completions", req).await;
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "backup");
    assert_eq!(header_of(&resp, "x-switchboard-attempts"), "2");
    let body = resp.text().await.unwrap();
    assert!(body.contains("from backup") && body.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn a_stream_whose_targets_all_fail_first_is_a_json_error() {
    let gw = start_routes(
        vec![("fast", vec![fails("a", "m", 503, None)])],
        GatewayOptions::default(),
    )
    .await;
    let mut req = hello("fast");
    req["stream"] = json!(true);
    let resp = post(&gw.base, "/v1/chat/completions", req).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(header_of(&resp, "content-type"), "application/json");
}

#[tokio::test]
async fn tools_round_trip_as_tool_calls_and_tool_messages() {
    let gw = start_routes(
        vec![("fast", vec![weather_tool("p", "m")])],
        GatewayOptions::default(),
    )
    .await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let first = json_of(
        post(&gw.base, "/v1/chat/completions", json!({"model": "fast", "tools": tools, "messages": [{"role": "user", "content": "weather in Oslo?"}]})).await,
    )
    .await;
    let message = &first["choices"][0]["message"];
    assert_eq!(first["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(message["content"], Value::Null);
    let call = &message["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Oslo"})
    );
    let second = json_of(
        post(
            &gw.base,
            "/v1/chat/completions",
            json!({"model": "fast", "tools": tools, "messages": [
                {"role": "user", "content": "weather in Oslo?"},
                message,
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
            ]}),
        )
        .await,
    )
    .await;
    assert_eq!(
        second["choices"][0]["message"]["content"],
        "The weather: sunny"
    );
    // And streamed: the call arrives as tool_calls deltas.
    let body = post(&gw.base, "/v1/chat/completions", json!({"model": "fast", "stream": true, "tools": tools, "messages": [{"role": "user", "content": "weather?"}]}))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\""),
        "{body}"
    );
    assert!(body.contains("\"finish_reason\":\"tool_calls\""));
}

#[tokio::test]
async fn response_format_and_image_parts_reach_the_upstream() {
    let seen = FunctionClient::builder("m")
        .provider("p")
        .respond(|_r: &ChatRequest| Ok(switchboard::ChatResponse::from_text("{}")))
        .build();
    let gw = start_routes(
        vec![("fast", vec![Arc::new(seen.clone()) as DynClient])],
        GatewayOptions::default(),
    )
    .await;
    let resp = post(
        &gw.base,
        "/v1/chat/completions",
        json!({"model": "fast", "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": true}},
               "messages": [{"role": "user", "content": [{"type": "text", "text": "describe"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let req = &seen.history()[0];
    assert!(matches!(
        req.response_format,
        Some(switchboard::types::ResponseFormat::JsonSchema { strict: true, .. })
    ));
    assert!(
        matches!(&req.messages[0].parts[1], switchboard::Part::Image(m) if m.media_type == "image/png")
    );
}

#[tokio::test]
async fn models_health_and_metrics_answer() {
    let gw = start_routes(
        vec![
            (
                "fast",
                vec![fails("a", "m1", 503, None), answers("b", "m2", "x")],
            ),
            ("slow", vec![answers("c", "m3", "y")]),
        ],
        GatewayOptions::default(),
    )
    .await;
    let client = reqwest::Client::new();
    let models: Value = serde_json::from_slice(
        &client
            .get(format!("{}/v1/models", gw.base))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["fast", "slow"]);
    post(&gw.base, "/v1/chat/completions", hello("fast")).await;
    post(&gw.base, "/v1/chat/completions", hello("nope")).await;
    let text = client
        .get(format!("{}/metrics", gw.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "switchboard_gateway_requests_total{route=\"fast\",dialect=\"chat\",status=\"200\"} 1",
        "switchboard_gateway_attempts_total{provider=\"a\",model=\"m1\",outcome=\"failed\"} 1",
        "switchboard_gateway_attempts_total{provider=\"b\",model=\"m2\",outcome=\"success\"} 1",
        "switchboard_gateway_errors_total{kind=\"server\"} 1",
        "switchboard_gateway_errors_total{kind=\"gateway_not_found\"} 1",
        "switchboard_gateway_tokens_total{route=\"fast\",direction=\"input\"} 9",
        "switchboard_gateway_request_duration_seconds_count{route=\"fast\",dialect=\"chat\"} 1",
        "switchboard_gateway_in_flight 0",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[tokio::test]
async fn shutdown_drains_a_stream_in_flight() {
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let release = Arc::new(std::sync::Mutex::new(Some(release_rx)));
    let slow = FunctionClient::builder("m")
        .provider("slow")
        .stream_async(move |_r| {
            let rx = release.lock().unwrap().take();
            Box::pin(async move {
                let first = futures_util::stream::iter(vec![Ok(StreamEvent::TextDelta {
                    text: "first ".into(),
                })]);
                let rest = futures_util::stream::once(async move {
                    if let Some(rx) = rx {
                        let _ = rx.await;
                    }
                    Ok(StreamEvent::TextDelta {
                        text: "last".into(),
                    })
                });
                Ok(first.chain(rest).boxed())
            })
        })
        .build();
    let gw = start_routes(
        vec![("fast", vec![Arc::new(slow) as DynClient])],
        GatewayOptions::default(),
    )
    .await;
    let mut req = hello("fast");
    req["stream"] = json!(true);
    let resp = post(&gw.base, "/v1/chat/completions", req).await;
    let mut body = resp.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("first"));
    let base = gw.base.clone();
    let server = tokio::spawn(gw.shutdown());
    tokio::task::yield_now().await;
    let _ = release_tx.send(());
    let mut rest = Vec::new();
    while let Some(chunk) = body.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    let rest = String::from_utf8(rest).unwrap();
    assert!(
        rest.contains("last") && rest.ends_with("data: [DONE]\n\n"),
        "{rest}"
    );
    server.await.unwrap().unwrap();
    assert!(
        reqwest::get(format!("{base}/health")).await.is_err(),
        "no new connections after shutdown"
    );
}

#[tokio::test]
async fn a_public_address_without_keys_is_refused() {
    let gateway = Gateway::from_routes(
        vec![("fast", vec![answers("p", "m", "x")])],
        GatewayOptions::default(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = gateway.serve(listener, async {}).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
}

// ---- real protocol clients against wiremock upstreams ---------------------------------

async fn mock(route: &str, status: u16, body: Vec<u8>, content_type: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(ResponseTemplate::new(status).set_body_raw(body, content_type))
        .mount(&server)
        .await;
    server
}

fn settings(text: &str) -> Settings {
    Settings::from_toml_str(text).unwrap()
}

fn env(
    pairs: &'static [(&'static str, &'static str)],
) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

#[tokio::test]
async fn openai_and_anthropic_fixtures_replay_through_the_gateway() {
    let openai = mock(
        "/v1/chat/completions",
        200,
        fixture("openai/chat_text.json"),
        "application/json",
    )
    .await;
    let anthropic = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", "ant-key"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("anthropic/messages_text.json"), "application/json"),
        )
        .mount(&anthropic)
        .await;
    let config = format!(
        "[server]\nallow_direct_models = true\n[providers.openai]\nbase_url = \"{}/v1\"\napi_key_env = \"OAI\"\n[providers.anthropic]\nbase_url = \"{}\"\napi_key_env = \"ANT\"\n\
         [routes.gpt]\ntargets = [\"openai:gpt-4o\"]\n[routes.claude]\ntargets = [\"anthropic:claude-sonnet-4-5\"]\n",
        openai.uri(),
        anthropic.uri()
    );
    let gateway = Gateway::with_env(
        settings(&config),
        env(&[("OAI", "oai-key"), ("ANT", "ant-key")]),
    )
    .unwrap();
    let gw = start(gateway).await;
    let resp = post(&gw.base, "/v1/chat/completions", hello("gpt")).await;
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "openai");
    let body = json_of(resp).await;
    assert_eq!(body["model"], "gpt-4o-2024-08-06", "the model that served");
    assert!(body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .starts_with("The capital of France is Paris."));
    assert_eq!(
        body["usage"]["prompt_tokens_details"]["cached_tokens"],
        1024
    );
    let resp = post(&gw.base, "/v1/chat/completions", hello("claude")).await;
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "anthropic");
    let body = json_of(resp).await;
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hi! My name is Claude. How can I help you today?"
    );
    // Direct provider:model requests use the same provider settings.
    let resp = post(&gw.base, "/v1/chat/completions", hello("openai:gpt-4o")).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn fixture_streams_replay_as_openai_chunks() {
    let openai = mock(
        "/v1/chat/completions",
        200,
        fixture("openai/stream_text.sse"),
        "text/event-stream",
    )
    .await;
    let anthropic = mock(
        "/v1/messages",
        200,
        fixture("anthropic/stream_text.sse"),
        "text/event-stream",
    )
    .await;
    let config = format!(
        "[providers.openai]\nbase_url = \"{}/v1\"\n[providers.anthropic]\nbase_url = \"{}\"\n\
         [routes.gpt]\ntargets = [\"openai:gpt-4o\"]\n[routes.claude]\ntargets = [\"anthropic:claude-sonnet-4-5\"]\n",
        openai.uri(),
        anthropic.uri()
    );
    let gateway = Gateway::with_env(
        settings(&config),
        env(&[("OPENAI_API_KEY", "k"), ("ANTHROPIC_API_KEY", "k")]),
    )
    .unwrap();
    let gw = start(gateway).await;
    for alias in ["gpt", "claude"] {
        let req = json!({"model": alias, "stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "hi"}]});
        let body = post(&gw.base, "/v1/chat/completions", req)
            .await
            .text()
            .await
            .unwrap();
        assert!(body.ends_with("data: [DONE]\n\n"), "{alias}: {body}");
        let lines = data_lines(&body);
        let chunks: Vec<Value> = lines[..lines.len() - 1]
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert!(!text.is_empty(), "{alias}");
        assert!(
            chunks.last().unwrap()["usage"]["completion_tokens"]
                .as_u64()
                .unwrap()
                > 0,
            "{alias}"
        );
    }
}

#[tokio::test]
async fn an_upstream_429_fixture_becomes_a_429_with_its_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "7")
                .set_body_raw(
                    fixture("openai/error_429_rate_limit.json"),
                    "application/json",
                ),
        )
        .mount(&server)
        .await;
    let config = format!(
        "[providers.openai]\nbase_url = \"{}/v1\"\n[routes.gpt]\ntargets = [\"openai:gpt-4o\"]\n",
        server.uri()
    );
    let gw =
        start(Gateway::with_env(settings(&config), env(&[("OPENAI_API_KEY", "k")])).unwrap()).await;
    let resp = post(&gw.base, "/v1/chat/completions", hello("gpt")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header_of(&resp, "retry-after"), "7");
}

#[tokio::test]
async fn embeddings_answer_as_floats_or_base64() {
    let server = mock(
        "/v1/embeddings",
        200,
        fixture("openai/embeddings.json"),
        "application/json",
    )
    .await;
    let config = format!("[providers.openai]\nbase_url = \"{}/v1\"\n[routes.embed]\ntargets = [\"openai:text-embedding-3-small\"]\n", server.uri());
    let gw =
        start(Gateway::with_env(settings(&config), env(&[("OPENAI_API_KEY", "k")])).unwrap()).await;
    let inputs = serde_json::from_slice::<Value>(&fixture("openai/embeddings.json")).unwrap()
        ["data"]
        .as_array()
        .unwrap()
        .len();
    let input: Vec<String> = (0..inputs).map(|i| format!("text {i}")).collect();
    let body = json_of(
        post(
            &gw.base,
            "/v1/embeddings",
            json!({"model": "embed", "input": input}),
        )
        .await,
    )
    .await;
    assert!(body["data"][0]["embedding"].is_array(), "{body}");
    let body = json_of(
        post(
            &gw.base,
            "/v1/embeddings",
            json!({"model": "embed", "input": input, "encoding_format": "base64"}),
        )
        .await,
    )
    .await;
    assert!(body["data"][0]["embedding"].is_string(), "{body}");
}

#[tokio::test]
async fn embeddings_from_a_backup_after_a_503_say_who_answered_and_how_many_tried() {
    let primary = FunctionClient::builder("embed-a")
        .provider("primary")
        .embed(|_r: &EmbedRequest| Err(Error::from_status("primary", 503, "upstream answered 503")))
        .build();
    let backup = FunctionClient::builder("embed-b")
        .provider("backup")
        .embed(|r: &EmbedRequest| Ok(EmbedResponse::new(vec![vec![0.5, 0.25]; r.inputs.len()])))
        .build();
    let gw = start_routes(
        vec![(
            "emb",
            vec![Arc::new(primary) as DynClient, Arc::new(backup)],
        )],
        GatewayOptions::default(),
    )
    .await;
    let resp = post(
        &gw.base,
        "/v1/embeddings",
        json!({"model": "emb", "input": ["one", "two"]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "backup");
    assert_eq!(header_of(&resp, "x-switchboard-attempts"), "2");
    let body = json_of(resp).await;
    assert_eq!(body["model"], "embed-b");
    assert_eq!(body["data"][1]["embedding"], json!([0.5, 0.25]));
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn direct_models_can_be_turned_off() {
    let config = "[server]\nallow_direct_models = false\n[providers.openai]\nbase_url = \"http://127.0.0.1:9/v1\"\n";
    let gw =
        start(Gateway::with_env(settings(config), env(&[("OPENAI_API_KEY", "k")])).unwrap()).await;
    let resp = post(&gw.base, "/v1/chat/completions", hello("openai:gpt-4o")).await;
    assert_eq!(resp.status(), 404);
    assert!(json_of(resp).await["error"]["message"]
        .as_str()
        .unwrap()
        .contains("turned off"));
    let _ = Duration::ZERO;
}

#[tokio::test]
async fn open_breakers_answer_503_with_the_earliest_recovery_and_show_in_metrics() {
    let route: switchboard::config::RouteSettings =
        toml_route("targets = []\nbreaker = { consecutive_failures = 1, cooldown_ms = 30000 }\n");
    let gateway = Gateway::from_routes_with(
        vec![(
            "fast",
            route,
            vec![fails("a", "m1", 503, None), fails("b", "m2", 503, None)],
        )],
        GatewayOptions::default(),
    )
    .unwrap();
    let gw = start(gateway.clone()).await;
    let first = post(&gw.base, "/v1/chat/completions", hello("fast")).await;
    assert_eq!(first.status(), 503);
    assert_eq!(header_of(&first, "x-switchboard-attempts"), "2");
    let second = post(&gw.base, "/v1/chat/completions", hello("fast")).await;
    assert_eq!(second.status(), 503);
    assert_eq!(
        header_of(&second, "x-switchboard-attempts"),
        "0",
        "no provider was called"
    );
    let wait: u64 = header_of(&second, "retry-after").parse().unwrap();
    assert!((29..=30).contains(&wait), "{wait}");
    assert_eq!(gateway.breaker_states().len(), 2);
    let text = reqwest::get(format!("{}/metrics", gw.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("switchboard_gateway_breaker_state{route=\"fast\",target=\"a:m1\"} 2"),
        "{text}"
    );
}

fn toml_route(text: &str) -> switchboard::config::RouteSettings {
    let s = Settings::from_toml_str(&format!(
        "[routes.x]\n{}",
        text.replace("targets = []", "targets = [\"openai:m\"]")
    ))
    .unwrap();
    s.routes["x"].clone()
}

#[tokio::test]
async fn a_route_can_target_the_responses_api() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .and(header("authorization", "Bearer oai-key"))
        .and(wiremock::matchers::body_partial_json(
            json!({"stream": true}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("openai-responses/stream_text.sse"),
            "text/event-stream",
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .and(header("authorization", "Bearer oai-key"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("openai-responses/response_function_call.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    let config = format!(
        "[providers.openai-responses]\nbase_url = \"{}/v1\"\napi_key_env = \"OAI\"\n\
         [routes.reasoner]\ntargets = [\"openai-responses:gpt-5-mini\"]\n",
        server.uri()
    );
    let gw = start(Gateway::with_env(settings(&config), env(&[("OAI", "oai-key")])).unwrap()).await;

    // Whole answer: a function call item comes back as an OpenAI tool call.
    let req = json!({
        "model": "reasoner",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    });
    let resp = post(&gw.base, "/v1/chat/completions", req).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header_of(&resp, "x-switchboard-provider"),
        "openai-responses"
    );
    let body = json_of(resp).await;
    assert_eq!(
        body["model"], "gpt-5-mini-2025-08-07",
        "the model that served"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["id"], "call_Xq7Lm2pR9sT4vW1yZ3bN5cD8");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"location": "Paris, France"}));
    assert_eq!(body["usage"]["prompt_tokens"], 291);

    // Streamed: Responses events become Chat Completions chunks, then [DONE].
    let req = json!({"model": "reasoner", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let text = post(&gw.base, "/v1/chat/completions", req)
        .await
        .text()
        .await
        .unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let lines = data_lines(&text);
    let content: String = lines[..lines.len() - 1]
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(content, "The capital of France is Paris.");

    // The upstream got the Responses shape, not Chat Completions.
    let sent: Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(sent["model"], "gpt-5-mini");
    assert!(
        sent.get("input").is_some() && sent.get("messages").is_none(),
        "{sent}"
    );
}

#[tokio::test]
async fn metrics_price_each_route_and_keep_latency_buckets() {
    let gw = start_routes(
        vec![("priced", vec![answers("openai", "gpt-4o-mini", "x")])],
        GatewayOptions::default(),
    )
    .await;
    for _ in 0..2 {
        let resp = post(&gw.base, "/v1/chat/completions", hello("priced")).await;
        assert_eq!(resp.status(), 200);
    }
    let text = reqwest::get(format!("{}/metrics", gw.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Two calls of 9 input and 4 output tokens at $0.15 / $0.60 per million.
    let expected = 2.0 * (9.0 * 0.15 + 4.0 * 0.60) / 1e6;
    let line = text
        .lines()
        .find(|l| l.starts_with("switchboard_gateway_cost_usd_total{route=\"priced\"}"))
        .unwrap_or_else(|| panic!("no cost line in\n{text}"));
    let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((value - expected).abs() < 1e-12, "{line} vs {expected}");
    assert!(text.contains("# TYPE switchboard_gateway_request_duration_seconds histogram"));
    assert!(
        text.contains(
            "switchboard_gateway_request_duration_seconds_bucket{route=\"priced\",dialect=\"chat\",le=\"+Inf\"} 2"
        ),
        "{text}"
    );
    assert!(
        text.contains("switchboard_gateway_tokens_total{route=\"priced\",direction=\"output\"} 8")
    );
}

/// A target that answers `text` after `delay` (on the runtime's clock).
fn answers_after(provider: &str, model: &str, text: &'static str, delay: Duration) -> DynClient {
    Arc::new(
        FunctionClient::builder(model)
            .provider(provider)
            .respond_async(move |_r: ChatRequest| async move {
                tokio::time::sleep(delay).await;
                Ok(switchboard::ChatResponse::from_text(text)
                    .with_usage(switchboard::Usage::new(9, 4)))
            })
            .build(),
    )
}

#[tokio::test]
async fn a_route_budget_refuses_once_spent_with_a_429_that_says_not_to_retry() {
    let route = toml_route("targets = []\nbudget = { max_trials = 2 }\n");
    let gw = start(
        Gateway::from_routes_with(
            vec![("capped", route, vec![answers("a", "m1", "x")])],
            GatewayOptions::default(),
        )
        .unwrap(),
    )
    .await;
    for _ in 0..2 {
        let resp = post(&gw.base, "/v1/chat/completions", hello("capped")).await;
        assert_eq!(resp.status(), 200);
    }
    let refused = post(&gw.base, "/v1/chat/completions", hello("capped")).await;
    assert_eq!(refused.status(), 429);
    assert!(
        refused.headers().get("retry-after").is_none(),
        "waiting does not refill a budget"
    );
    let body = json_of(refused).await;
    assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("max_trials")),
        "{body}"
    );
}

#[tokio::test]
async fn a_route_timeout_moves_on_from_a_silent_target() {
    let route = toml_route("targets = []\ntimeout_ms = 100\n");
    let gw = start(
        Gateway::from_routes_with(
            vec![(
                "timed",
                route,
                vec![
                    answers_after("slow", "m1", "late", Duration::from_secs(10)),
                    answers("fast", "m2", "in time"),
                ],
            )],
            GatewayOptions::default(),
        )
        .unwrap(),
    )
    .await;
    let started = std::time::Instant::now();
    let resp = post(&gw.base, "/v1/chat/completions", hello("timed")).await;
    assert_eq!(resp.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "fast");
    assert_eq!(header_of(&resp, "x-switchboard-attempts"), "2");
    assert_eq!(
        json_of(resp).await["choices"][0]["message"]["content"],
        "in time"
    );
}

#[tokio::test]
async fn a_hedged_route_races_the_next_target_after_the_delay() {
    let route = toml_route("targets = [\"openai:m\", \"openai:n\"]\nhedge = { delay_ms = 50 }\n");
    let gw = start(
        Gateway::from_routes_with(
            vec![(
                "hedged",
                route,
                vec![
                    answers_after("slow", "m1", "late", Duration::from_secs(10)),
                    answers_after("quick", "m2", "raced", Duration::from_millis(10)),
                ],
            )],
            GatewayOptions::default(),
        )
        .unwrap(),
    )
    .await;
    let started = std::time::Instant::now();
    let resp = post(&gw.base, "/v1/chat/completions", hello("hedged")).await;
    assert_eq!(resp.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "quick");
    assert_eq!(
        json_of(resp).await["choices"][0]["message"]["content"],
        "raced"
    );
}
