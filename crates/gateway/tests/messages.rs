//! The Anthropic Messages front door over real sockets: reqwest against a gateway on
//! 127.0.0.1:0 whose upstreams are FunctionClients, or real Anthropic and OpenAI clients
//! talking to wiremock servers that replay the providers' documented wire data.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use serde_json::{json, Value};
use switchboard::providers::openai::OpenAiClient;
use switchboard::types::Thinking;
use switchboard::{
    AnthropicClient, ChatClientExt, ChatRequest, ChatResponse, DynClient, FunctionClient, Part,
    Usage,
};
use switchboard_gateway::GatewayOptions;
use switchboard_testkit::{fixture, fixture_json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sb-messages-test-key";

async fn send(base: &str, path: &str, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .header("x-api-key", KEY);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(serde_json::to_vec(body).unwrap())
        .send()
        .await
        .unwrap()
}

async fn post(base: &str, body: &Value) -> reqwest::Response {
    send(base, "/v1/messages", body, &[]).await
}

async fn json_of(resp: reqwest::Response) -> Value {
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
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

/// A wiremock server answering `POST route` with a fixture.
async fn upstream(route: &str, status: u16, name: &str) -> MockServer {
    let mime = if name.ends_with(".sse") {
        "text/event-stream"
    } else {
        "application/json"
    };
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(ResponseTemplate::new(status).set_body_raw(fixture(name), mime))
        .mount(&server)
        .await;
    server
}

fn anthropic_at(server: &MockServer) -> DynClient {
    AnthropicClient::builder()
        .model("claude-sonnet-4-5")
        .api_key("sk-ant-upstream")
        .base_url(server.uri())
        .build()
        .unwrap()
        .boxed()
}

fn openai_at(server: &MockServer) -> DynClient {
    OpenAiClient::builder()
        .model("gpt-4o")
        .api_key("sk-openai-upstream")
        .base_url(format!("{}/v1", server.uri()))
        .build()
        .unwrap()
        .boxed()
}

async fn last_request(server: &MockServer) -> wiremock::Request {
    server
        .received_requests()
        .await
        .unwrap()
        .pop()
        .expect("the upstream got a request")
}

/// Splits an SSE body into (event name, JSON data).
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|frame| !frame.trim().is_empty())
        .map(|frame| {
            let mut name = String::new();
            let mut data = Value::Null;
            for line in frame.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap();
                }
            }
            assert_eq!(
                data["type"],
                name.as_str(),
                "event name and type differ: {frame}"
            );
            (name, data)
        })
        .collect()
}

#[tokio::test]
async fn a_messages_request_gets_an_anthropic_shaped_answer_saying_who_answered() {
    let gw = start_routes(
        vec![("fast", vec![answers("primary", "model-a", "Hello there")])],
        GatewayOptions::default().api_key(KEY),
    )
    .await;
    let resp = post(&gw.base, &hello("fast")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "primary");
    assert_eq!(header_of(&resp, "x-switchboard-attempts"), "1");
    let body = json_of(resp).await;
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert!(body["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "Hello there"}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["usage"]["input_tokens"], 9);
    assert_eq!(body["usage"]["output_tokens"], 4);
    // The bearer form of the key works too.
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/messages", gw.base))
        .bearer_auth(KEY)
        .body(serde_json::to_vec(&hello("fast")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_anthropic_529_fails_over_to_an_openai_target_and_answers_in_messages_shape() {
    let claude = upstream("/v1/messages", 529, "anthropic/error_529.json").await;
    let gpt = upstream("/v1/chat/completions", 200, "openai/chat_text.json").await;
    let gw = start_routes(
        vec![("smart", vec![anthropic_at(&claude), openai_at(&gpt)])],
        GatewayOptions::default().api_key(KEY),
    )
    .await;
    let resp = post(
        &gw.base,
        &json!({"model": "smart", "max_tokens": 300, "system": "Be brief.",
                "messages": [{"role": "user", "content": "What is the capital of France?"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "openai");
    assert_eq!(header_of(&resp, "x-switchboard-attempts"), "2");
    let body = json_of(resp).await;
    assert!(body["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("The capital of France is Paris."));
    assert_eq!(body["model"], "gpt-4o-2024-08-06");
    // OpenAI's 1117 prompt tokens include 1024 cached: Anthropic counts them apart.
    assert_eq!(body["usage"]["input_tokens"], 93);
    assert_eq!(body["usage"]["cache_read_input_tokens"], 1024);
    assert_eq!(body["usage"]["output_tokens"], 22);
    let sent: Value = serde_json::from_slice(&last_request(&gpt).await.body).unwrap();
    assert_eq!(sent["messages"][0]["content"], "Be brief.");
    assert_eq!(
        sent["max_completion_tokens"]
            .as_u64()
            .or(sent["max_tokens"].as_u64()),
        Some(300)
    );
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn unmodelled_fields_blocks_and_headers_reach_anthropic_untouched_and_are_named_for_others() {
    let claude = upstream("/v1/messages", 200, "anthropic/messages_text.json").await;
    let gw = start_routes(
        vec![("claude", vec![anthropic_at(&claude)])],
        GatewayOptions::default().api_key(KEY),
    )
    .await;
    let system = json!([{"type": "text", "text": "You answer from the documents.",
                         "cache_control": {"type": "ephemeral"}}]);
    let messages = json!([{"role": "user", "content": [
        {"type": "text", "text": "Summarise.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        {"type": "search_result", "source": "https://example.com/a", "title": "A",
         "content": [{"type": "text", "text": "a fact"}], "citations": {"enabled": true}}
    ]}]);
    let tools = json!([
        {"name": "lookup", "description": "Look up", "input_schema": {"type": "object", "properties": {}},
         "cache_control": {"type": "ephemeral"}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    ]);
    let body = json!({
        "model": "claude", "max_tokens": 400, "top_k": 5,
        "metadata": {"user_id": "u-1"},
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "system": system, "messages": messages, "tools": tools,
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
    });
    let resp = send(
        &gw.base,
        "/v1/messages",
        &body,
        &[("anthropic-beta", "context-management-2025-06-27")],
    )
    .await;
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    let request = last_request(&claude).await;
    let sent: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(sent["model"], "claude-sonnet-4-5");
    assert_eq!(sent["max_tokens"], 400);
    for key in [
        "top_k",
        "metadata",
        "context_management",
        "system",
        "messages",
        "tools",
        "tool_choice",
    ] {
        assert_eq!(sent[key], body[key], "`{key}` did not pass untouched");
    }
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        header("anthropic-beta").as_deref(),
        Some("context-management-2025-06-27")
    );
    assert_eq!(header("anthropic-version").as_deref(), Some("2023-06-01"));
    // The upstream gets the provider's key, never the gateway's.
    assert_eq!(header("x-api-key").as_deref(), Some("sk-ant-upstream"));
    gw.shutdown().await.unwrap();

    // The same request served by an OpenAI target: the neutral parts arrive, the rest is
    // dropped and the answer says what.
    let gpt = upstream("/v1/chat/completions", 200, "openai/chat_text.json").await;
    let gw = start_routes(
        vec![("gpt", vec![openai_at(&gpt)])],
        GatewayOptions::default().api_key(KEY),
    )
    .await;
    let mut body = body;
    body["model"] = json!("gpt");
    let resp = send(&gw.base, "/v1/messages", &body, &[("anthropic-beta", "x")]).await;
    assert_eq!(resp.status(), 200);
    let dropped = header_of(&resp, "x-switchboard-dropped").to_owned();
    for note in [
        "top_k",
        "metadata",
        "context_management",
        "system[0].cache_control",
        "`search_result` block",
        "`web_search_20250305` tool",
    ] {
        assert!(dropped.contains(note), "{note} not in {dropped}");
    }
    let sent: Value = serde_json::from_slice(&last_request(&gpt).await.body).unwrap();
    for key in ["top_k", "metadata", "context_management"] {
        assert!(sent.get(key).is_none(), "`{key}` reached OpenAI: {sent}");
    }
    assert_eq!(sent["tools"].as_array().unwrap().len(), 1, "{sent}");
    assert!(sent.to_string().contains("Summarise."));
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn thinking_goes_back_byte_for_byte_to_anthropic_and_is_dropped_when_crossing() {
    let signature = fixture_json("anthropic/messages_thinking.json")["content"][0]["signature"]
        .as_str()
        .unwrap()
        .to_owned();
    let claude = upstream("/v1/messages", 200, "anthropic/messages_thinking.json").await;
    let down = upstream("/v1/messages", 529, "anthropic/error_529.json").await;
    let gpt = upstream("/v1/chat/completions", 200, "openai/chat_text.json").await;
    let gw = start_routes(
        vec![
            ("claude", vec![anthropic_at(&claude)]),
            ("cross", vec![anthropic_at(&down), openai_at(&gpt)]),
        ],
        GatewayOptions::default().api_key(KEY),
    )
    .await;
    let first = json!({"model": "claude", "max_tokens": 4000,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [{"role": "user", "content": "Is 27 * 453 more than 12,000?"}]});
    let resp = post(&gw.base, &first).await;
    assert_eq!(resp.status(), 200);
    let answer = json_of(resp).await;
    assert_eq!(answer["content"][0]["type"], "thinking");
    assert_eq!(answer["content"][0]["signature"], signature.as_str());
    let sent: Value = serde_json::from_slice(&last_request(&claude).await.body).unwrap();
    assert_eq!(sent["thinking"], first["thinking"]);
    assert_eq!(sent["max_tokens"], 4000);

    // The next turn carries the answer back, reasoning included.
    let mut next = first.clone();
    next["messages"] = json!([
        first["messages"][0],
        {"role": "assistant", "content": answer["content"]},
        {"role": "user", "content": "And 28 * 453?"}
    ]);
    let resp = post(&gw.base, &next).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header_of(&resp, "x-switchboard-dropped"), "");
    let sent: Value = serde_json::from_slice(&last_request(&claude).await.body).unwrap();
    assert_eq!(
        sent["messages"][1]["content"][0]["signature"],
        signature.as_str()
    );
    assert_eq!(
        sent["messages"][1]["content"][0]["thinking"],
        answer["content"][0]["thinking"]
    );

    // Failing over to OpenAI: the signature would mean nothing there, so it stays behind
    // and the answer says so.
    next["model"] = json!("cross");
    let resp = post(&gw.base, &next).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "openai");
    assert!(
        header_of(&resp, "x-switchboard-dropped").contains("thinking from anthropic"),
        "{:?}",
        resp.headers()
    );
    let sent = String::from_utf8(last_request(&gpt).await.body).unwrap();
    assert!(!sent.contains(&signature), "{sent}");
    assert!(sent.contains("And 28 * 453?"));
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stream_follows_anthropics_events_and_keeps_the_signature() {
    let claude = upstream("/v1/messages", 200, "anthropic/stream_thinking.sse").await;
    let gw = start_routes(
        vec![("claude", vec![anthropic_at(&claude)])],
        GatewayOptions::default().api_key(KEY),
    )
    .await;
    let mut body = hello("claude");
    body["stream"] = json!(true);
    body["max_tokens"] = json!(3000);
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
    let resp = post(&gw.base, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header_of(&resp, "content-type"), "text/event-stream");
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "anthropic");
    let text = resp.text().await.unwrap();
    let events = events(&text);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..2], ["message_start", "ping"], "{text}");
    assert_eq!(
        names[names.len() - 2..],
        ["message_delta", "message_stop"],
        "{text}"
    );
    let sig = |frame: &str| {
        frame
            .split("\"signature\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_owned)
    };
    let fixture_text = String::from_utf8(fixture("anthropic/stream_thinking.sse")).unwrap();
    let upstream_sig = fixture_text
        .lines()
        .find(|l| l.contains("signature_delta"))
        .and_then(sig)
        .unwrap();
    let gateway_sig = events
        .iter()
        .find(|(_, d)| d["delta"]["type"] == "signature_delta")
        .map(|(_, d)| d["delta"]["signature"].as_str().unwrap().to_owned());
    assert_eq!(gateway_sig.as_deref(), Some(upstream_sig.as_str()));
    let thinking: String = events
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "thinking_delta")
        .map(|(_, d)| d["delta"]["thinking"].as_str().unwrap())
        .collect();
    assert!(thinking.contains("So the GCD is 21."), "{thinking}");
    let (_, delta) = &events[events.len() - 2];
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stream_fails_over_from_an_overloaded_anthropic_target_to_an_openai_stream() {
    let claude = upstream("/v1/messages", 529, "anthropic/error_529.json").await;
    let gpt = upstream("/v1/chat/completions", 200, "openai/stream_text.sse").await;
    let gw = start_routes(
        vec![("cross", vec![anthropic_at(&claude), openai_at(&gpt)])],
        GatewayOptions::default().api_key(KEY),
    )
    .await;
    let mut body = hello("cross");
    body["stream"] = json!(true);
    let resp = post(&gw.base, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "openai");
    assert_eq!(header_of(&resp, "x-switchboard-attempts"), "2");
    let text = resp.text().await.unwrap();
    let events = events(&text);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[..3],
        ["message_start", "ping", "content_block_start"],
        "{text}"
    );
    assert_eq!(
        names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    let answer: String = events
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "text_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap())
        .collect();
    let expected: String = String::from_utf8(fixture("openai/stream_text.sse"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(answer, expected);
    assert_eq!(claude.received_requests().await.unwrap().len(), 1);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stream_that_breaks_after_content_ends_with_an_error_event() {
    let gw = start_routes(
        vec![("breaks", vec![breaks_mid_stream("primary", "m")])],
        GatewayOptions::default().api_key(KEY),
    )
    .await;
    let mut body = hello("breaks");
    body["stream"] = json!(true);
    let resp = post(&gw.base, &body).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let events = events(&text);
    let (last, data) = events.last().unwrap();
    assert_eq!(last, "error", "{text}");
    assert_eq!(data["error"]["type"], "api_error", "{text}");
    assert!(!events.iter().any(|(n, _)| n == "message_stop"), "{text}");
    assert!(text.contains("Half an "));
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_tool_round_trip_keeps_the_call_id() {
    let gw = start_routes(
        vec![("tools", vec![weather_tool("primary", "tool-model")])],
        GatewayOptions::default().api_key(KEY),
    )
    .await;
    let tools = json!([{"name": "get_weather", "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let ask = json!({"model": "tools", "max_tokens": 100, "tools": tools,
        "tool_choice": {"type": "any"},
        "messages": [{"role": "user", "content": "Weather in Oslo?"}]});
    let answer = json_of(post(&gw.base, &ask).await).await;
    assert_eq!(answer["stop_reason"], "tool_use");
    let call = &answer["content"][0];
    assert_eq!(call["type"], "tool_use");
    assert_eq!(call["id"], "call_1");
    assert_eq!(call["input"], json!({"city": "Oslo"}));
    let mut next = ask.clone();
    next["messages"] = json!([
        ask["messages"][0],
        {"role": "assistant", "content": [call]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}]}
    ]);
    let answer = json_of(post(&gw.base, &next).await).await;
    assert_eq!(answer["content"][0]["text"], "The weather: sunny");
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn refusals_come_in_anthropics_error_shape_and_statuses() {
    let gw = start_routes(
        vec![
            ("fast", vec![answers("primary", "m", "hi")]),
            (
                "limited",
                vec![fails("a", "m", 429, Some(3)), fails("b", "m", 429, Some(8))],
            ),
            (
                "down",
                vec![fails("a", "m", 529, Some(2)), fails("b", "m", 503, None)],
            ),
        ],
        GatewayOptions::default().api_key(KEY),
    )
    .await;
    let check = |status: u16, kind: &'static str| {
        move |resp: reqwest::Response| async move {
            assert_eq!(resp.status().as_u16(), status);
            let retry_after = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = json_of(resp).await;
            assert_eq!(body["type"], "error", "{body}");
            assert_eq!(body["error"]["type"], kind, "{body}");
            (
                body["error"]["message"].as_str().unwrap().to_owned(),
                retry_after,
            )
        }
    };
    // No key, and a wrong one.
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/messages", gw.base))
        .body(serde_json::to_vec(&hello("fast")).unwrap())
        .send()
        .await
        .unwrap();
    let (message, _) = check(401, "authentication_error")(resp).await;
    assert!(message.contains("x-api-key"), "{message}");
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/messages", gw.base))
        .header("x-api-key", "wrong")
        .body(serde_json::to_vec(&hello("fast")).unwrap())
        .send()
        .await
        .unwrap();
    check(401, "authentication_error")(resp).await;
    // Bad input: each names the field and the fix.
    let no_max = json!({"model": "fast", "messages": [{"role": "user", "content": "x"}]});
    let (message, _) = check(400, "invalid_request_error")(post(&gw.base, &no_max).await).await;
    assert!(message.contains("`max_tokens` is missing"), "{message}");
    let orphan = json!({"model": "fast", "max_tokens": 5, "messages": [{"role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "?"}]}]});
    let (message, _) = check(400, "invalid_request_error")(post(&gw.base, &orphan).await).await;
    assert!(
        message.contains("messages[0].content[0].tool_use_id"),
        "{message}"
    );
    let no_text = json!({"model": "fast", "max_tokens": 5, "messages": [{"role": "user",
        "content": [{"type": "text"}]}]});
    let (message, _) = check(400, "invalid_request_error")(post(&gw.base, &no_text).await).await;
    assert!(
        message.contains("messages[0].content[0].text` is missing"),
        "{message}"
    );
    let resp = send(&gw.base, "/v1/messages", &json!("not an object"), &[]).await;
    check(400, "invalid_request_error")(resp).await;
    // Unknown model.
    let (message, _) = check(404, "not_found_error")(post(&gw.base, &hello("nope")).await).await;
    assert!(message.contains("fast"), "{message}");
    // Every target rate limited: 429 with the earliest wait.
    let (_, wait) = check(429, "rate_limit_error")(post(&gw.base, &hello("limited")).await).await;
    assert_eq!(wait.as_deref(), Some("3"));
    // Every target overloaded or down: Anthropic's 529.
    let (_, wait) = check(529, "overloaded_error")(post(&gw.base, &hello("down")).await).await;
    assert_eq!(wait.as_deref(), Some("2"));
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn count_tokens_asks_an_anthropic_target_with_a_counting_body() {
    let claude = upstream(
        "/v1/messages/count_tokens",
        200,
        "anthropic/count_tokens.json",
    )
    .await;
    let gw = start_routes(
        vec![("claude", vec![anthropic_at(&claude)])],
        GatewayOptions::default().api_key(KEY),
    )
    .await;
    let body = json!({"model": "claude", "system": "Be brief.", "temperature": 0.2,
        "messages": [{"role": "user", "content": "hi"}]});
    let resp = send(&gw.base, "/v1/messages/count_tokens", &body, &[]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "anthropic");
    assert_eq!(json_of(resp).await, json!({"input_tokens": 2095}));
    let sent: Value = serde_json::from_slice(&last_request(&claude).await.body).unwrap();
    assert_eq!(sent["model"], "claude-sonnet-4-5");
    assert_eq!(
        sent["system"],
        json!([{"type": "text", "text": "Be brief."}])
    );
    for key in ["max_tokens", "temperature", "stream"] {
        assert!(
            sent.get(key).is_none(),
            "`{key}` sent to count_tokens: {sent}"
        );
    }
    gw.shutdown().await.unwrap();

    // Through a route's per-target retry, breaker, timeout and budget wrappers too.
    let settings = switchboard::config::Settings::from_toml_str(
        "[routes.x]\ntargets = [\"anthropic:m\"]\ntimeout_ms = 5000\n\
         retry = { max_retries = 1 }\nbreaker = { consecutive_failures = 3, cooldown_ms = 1000 }\n\
         budget = { max_tokens = 100000 }\n",
    )
    .unwrap();
    let gateway = switchboard_gateway::Gateway::from_routes_with(
        vec![(
            "wrapped",
            settings.routes["x"].clone(),
            vec![anthropic_at(&claude)],
        )],
        GatewayOptions::default().api_key(KEY),
    )
    .unwrap();
    let gw = start(gateway).await;
    let mut body = body;
    body["model"] = json!("wrapped");
    let resp = send(&gw.base, "/v1/messages/count_tokens", &body, &[]).await;
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "anthropic");
    assert_eq!(json_of(resp).await["input_tokens"], 2095);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn count_tokens_model_listing_and_metrics_speak_the_dialect() {
    let gw = start_routes(
        vec![
            ("fast", vec![answers("primary", "m", "hi")]),
            ("other", vec![answers("primary", "m", "hi")]),
        ],
        GatewayOptions::default().api_key(KEY),
    )
    .await;
    let short = json!({"model": "fast", "messages": [{"role": "user", "content": "hi"}]});
    let long = json!({"model": "fast", "system": "You are a careful assistant.",
        "messages": [{"role": "user", "content": "Tell me about the history of the Roman Empire in detail."}]});
    let count = |body: Value| {
        let base = gw.base.clone();
        async move {
            let resp = send(&base, "/v1/messages/count_tokens", &body, &[]).await;
            assert_eq!(resp.status(), 200);
            json_of(resp).await["input_tokens"].as_u64().unwrap()
        }
    };
    let (a, b) = (count(short).await, count(long).await);
    assert!(a > 0 && b > a, "{a} {b}");
    let resp = send(&gw.base, "/v1/messages/count_tokens", &hello("nope"), &[]).await;
    assert_eq!(resp.status(), 404);

    let list: Value = reqwest::Client::new()
        .get(format!("{}/v1/models", gw.base))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap();
    assert_eq!(list["has_more"], false);
    assert_eq!(list["first_id"], "fast");
    assert_eq!(list["last_id"], "other");
    assert_eq!(list["data"][0]["type"], "model");
    assert_eq!(list["data"][0]["display_name"], "fast");
    let openai: Value = reqwest::Client::new()
        .get(format!("{}/v1/models", gw.base))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap();
    assert_eq!(openai["object"], "list");

    assert_eq!(post(&gw.base, &hello("fast")).await.status(), 200);
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", gw.base))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("switchboard_gateway_requests_total{route=\"fast\",dialect=\"messages\",status=\"200\"} 3"),
        "{metrics}"
    );
    gw.shutdown().await.unwrap();
}

/// A "gemini" target that thinks with a signature, and records the reasoning it is sent.
fn signing_gemini(seen: Arc<Mutex<Vec<Thinking>>>) -> DynClient {
    Arc::new(
        FunctionClient::builder("gemini-2.5-pro")
            .provider("gemini")
            .respond(move |r: &ChatRequest| {
                seen.lock()
                    .unwrap()
                    .extend(
                        r.messages
                            .iter()
                            .flat_map(|m| &m.parts)
                            .filter_map(|p| match p {
                                Part::Thinking(t) => Some(t.clone()),
                                _ => None,
                            }),
                    );
                Ok(ChatResponse::from_parts(vec![
                    Part::Thinking(Thinking {
                        text: "weighing it".into(),
                        signature: Some("CiQB/gemini+sig==".into()),
                        redacted: None,
                        origin: Some("gemini".into()),
                    }),
                    Part::text("done"),
                ])
                .with_usage(Usage::new(5, 2)))
            })
            .build(),
    )
}

#[tokio::test]
async fn another_providers_reasoning_goes_back_to_it_unchanged_through_a_messages_client() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let gw = start_routes(
        vec![("g", vec![signing_gemini(Arc::clone(&seen))])],
        GatewayOptions::default().api_key(KEY),
    )
    .await;
    let first = json_of(post(&gw.base, &hello("g")).await).await;
    let thinking = &first["content"][0];
    assert_eq!(thinking["type"], "thinking");
    assert_eq!(thinking["signature"], "sbgw1:gemini:CiQB/gemini+sig==");
    let mut next = hello("g");
    next["messages"] = json!([
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": "and then?"}
    ]);
    let resp = post(&gw.base, &next).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header_of(&resp, "x-switchboard-dropped"), "");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].signature.as_deref(), Some("CiQB/gemini+sig=="));
    assert_eq!(seen[0].origin.as_deref(), Some("gemini"));
    assert_eq!(seen[0].text, "weighing it");
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_breaker_opened_through_chat_completions_also_guards_the_messages_front_door() {
    let settings = switchboard::config::Settings::from_toml_str(
        "[routes.x]\ntargets = [\"openai:m\"]\nbreaker = { consecutive_failures = 1, cooldown_ms = 30000 }\n",
    )
    .unwrap();
    let gateway = switchboard_gateway::Gateway::from_routes_with(
        vec![(
            "shared",
            settings.routes["x"].clone(),
            vec![fails("a", "m", 503, None)],
        )],
        GatewayOptions::default().api_key(KEY),
    )
    .unwrap();
    let gw = start(gateway).await;
    let chat = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(r#"{"model":"shared","messages":[{"role":"user","content":"hi"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 503);
    assert_eq!(header_of(&chat, "x-switchboard-attempts"), "1");
    let resp = post(&gw.base, &hello("shared")).await;
    assert_eq!(resp.status().as_u16(), 529);
    assert_eq!(
        header_of(&resp, "x-switchboard-attempts"),
        "0",
        "the open breaker answered"
    );
    let wait: u64 = header_of(&resp, "retry-after").parse().unwrap();
    assert!((29..=30).contains(&wait), "{wait}");
    assert_eq!(json_of(resp).await["error"]["type"], "overloaded_error");
    gw.shutdown().await.unwrap();
}
