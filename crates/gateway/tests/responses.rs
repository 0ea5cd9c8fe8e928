//! `POST /v1/responses` over real sockets: reqwest against a gateway on 127.0.0.1:0 whose
//! upstreams are FunctionClients, the testkit's FaultProvider, or wiremock servers replaying
//! the providers' documented wire data (`tests/fixtures/`), through the library's real
//! protocol clients.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::{json, Value};
use switchboard::{
    create_client_with, ChatRequest, ChatResponse, ClientOptions, DynClient, FunctionClient, Part,
    Usage,
};
use switchboard_gateway::{Gateway, GatewayOptions};
use switchboard_testkit::fault::{Fault, FaultProvider, Protocol};
use switchboard_testkit::fixture;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn post(base: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/v1/responses"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .await
        .unwrap()
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

/// Splits an SSE body into (event name, data JSON) pairs, checking that every frame names
/// its event and that the name matches the data's `type`.
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|frame| {
            let mut lines = frame.lines();
            let name = lines
                .next()
                .and_then(|l| l.strip_prefix("event: "))
                .unwrap_or_else(|| panic!("frame without `event:`: {frame}"))
                .to_owned();
            let data = lines
                .next()
                .and_then(|l| l.strip_prefix("data: "))
                .unwrap_or_else(|| panic!("frame without `data:`: {frame}"));
            let data: Value = serde_json::from_str(data).unwrap();
            assert_eq!(data["type"], name.as_str(), "{frame}");
            (name, data)
        })
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

/// A real protocol client for `spec` whose base URL is `base`.
fn client(spec: &str, base: &str) -> DynClient {
    create_client_with(
        spec,
        &ClientOptions::new().base_url(base).api_key("upstream-key"),
    )
    .unwrap()
}

async fn mock(route: &str, status: u16, body: Vec<u8>, content_type: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(ResponseTemplate::new(status).set_body_raw(body, content_type))
        .mount(&server)
        .await;
    server
}

async fn sent_bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn a_string_input_is_answered_as_a_response_object_saying_who_answered() {
    let gw = start_routes(
        vec![(
            "fast",
            vec![
                fails("primary", "a", 503, None),
                answers("backup", "model-b", "Hello from the backup"),
            ],
        )],
        GatewayOptions::default(),
    )
    .await;
    let resp = post(
        &gw.base,
        json!({"model": "fast", "input": "hi", "instructions": "Be brief.", "store": false, "metadata": {"k": "v"}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "backup");
    assert_eq!(header_of(&resp, "x-switchboard-model"), "model-b");
    assert_eq!(header_of(&resp, "x-switchboard-attempts"), "2");
    assert_eq!(header_of(&resp, "x-switchboard-dropped"), "");
    let body: Value = json_of(resp).await;
    assert_eq!(body["object"], "response");
    assert!(body["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], "model-b");
    assert_eq!(body["instructions"], "Be brief.");
    assert_eq!(body["metadata"], json!({"k": "v"}));
    assert_eq!(body["store"], false);
    let output = body["output"].as_array().unwrap();
    assert_eq!(output.len(), 1);
    assert_eq!(output[0]["type"], "message");
    assert_eq!(output[0]["role"], "assistant");
    assert_eq!(output[0]["content"][0]["type"], "output_text");
    assert_eq!(output[0]["content"][0]["text"], "Hello from the backup");
    assert_eq!(body["usage"]["input_tokens"], 9);
    assert_eq!(body["usage"]["output_tokens"], 4);
    assert_eq!(body["usage"]["total_tokens"], 13);
}

#[tokio::test]
async fn a_stream_sends_the_whole_event_sequence_numbered_from_zero() {
    let gw = start_routes(
        vec![("fast", vec![answers("primary", "model-a", "Hello there")])],
        GatewayOptions::default(),
    )
    .await;
    let resp = post(
        &gw.base,
        json!({"model": "fast", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header_of(&resp, "content-type"), "text/event-stream");
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "primary");
    let events = events(&resp.text().await.unwrap());
    let names = names(&events);
    assert_eq!(
        names[..5],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
        ]
    );
    assert_eq!(
        names[names.len() - 4..],
        [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, (_, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], i as u64, "{data}");
    }
    assert_eq!(events[0].1["response"]["status"], "in_progress");
    let text: String = events
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello there");
    let done = &events[events.len() - 2].1;
    assert_eq!(done["item"]["content"][0]["text"], "Hello there");
    let completed = &events.last().unwrap().1["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["output"][0]["content"][0]["text"], "Hello there");
    assert_eq!(completed["usage"]["output_tokens"], 4);
    assert_eq!(completed["id"], events[0].1["response"]["id"]);
}

#[tokio::test]
async fn a_stream_broken_after_content_ends_with_response_failed_never_completed() {
    let gw = start_routes(
        vec![("breaks", vec![breaks_mid_stream("primary", "m")])],
        GatewayOptions::default(),
    )
    .await;
    let resp = post(
        &gw.base,
        json!({"model": "breaks", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let events = events(&resp.text().await.unwrap());
    let names = names(&events);
    assert!(!names.contains(&"response.completed"), "{names:?}");
    assert_eq!(
        names[names.len() - 2..],
        ["error", "response.failed"],
        "{names:?}"
    );
    let failed = &events.last().unwrap().1["response"];
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"]["code"]
        .as_str()
        .is_some_and(|c| !c.is_empty()));
    assert!(events[events.len() - 2].1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("overloaded"));
    let delta = events
        .iter()
        .find(|(n, _)| n == "response.output_text.delta")
        .unwrap();
    assert_eq!(delta.1["delta"], "Half an ");
}

#[tokio::test]
async fn stateless_fields_built_in_tools_and_orphan_outputs_are_400s_naming_the_field() {
    let gw = start_routes(
        vec![("fast", vec![answers("primary", "m", "x")])],
        GatewayOptions::default(),
    )
    .await;
    let cases = [
        (
            json!({"model": "fast", "input": "hi", "previous_response_id": "resp_1"}),
            "previous_response_id",
            "stateless",
        ),
        (
            json!({"model": "fast", "input": "hi", "store": true}),
            "store",
            "stateless",
        ),
        (
            json!({"model": "fast", "input": "hi", "tools": [{"type": "function", "name": "f"}, {"type": "web_search_preview"}]}),
            "tools[1].type",
            "web_search_preview",
        ),
        (
            json!({"model": "fast", "input": "hi", "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}),
            "tools[0].type",
            "function",
        ),
        (
            json!({"model": "fast", "input": "hi", "tools": [{"type": "computer_use_preview", "display_width": 1024}]}),
            "tools[0].type",
            "computer_use_preview",
        ),
        (
            json!({"model": "fast", "input": [{"type": "function_call_output", "call_id": "call_x", "output": "42"}]}),
            "input[0].call_id",
            "call_x",
        ),
        (
            json!({"model": "fast", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]}),
            "input[0].content[0]",
            "file_id",
        ),
        (
            json!({"model": "fast", "input": [{"type": "function_call", "name": "f"}]}),
            "input[0].call_id",
            "call_id",
        ),
        (json!({"model": "fast"}), "input", "input"),
    ];
    for (body, param, says) in cases {
        let resp = post(&gw.base, body.clone()).await;
        assert_eq!(resp.status(), 400, "{body}");
        let err: Value = json_of(resp).await;
        assert_eq!(err["error"]["type"], "invalid_request_error", "{err}");
        assert_eq!(err["error"]["param"], param, "{err}");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(says),
            "{err}"
        );
    }
    // Bad JSON and an unknown alias answer in the same shape.
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/responses", gw.base))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = post(&gw.base, json!({"model": "nope", "input": "hi"})).await;
    assert_eq!(resp.status(), 404);
    let err: Value = json_of(resp).await;
    assert_eq!(err["error"]["code"], "model_not_found");
}

#[tokio::test]
async fn a_key_is_required_when_keys_are_configured() {
    let gw = start_routes(
        vec![("fast", vec![answers("primary", "m", "x")])],
        GatewayOptions::default().api_key("sb-responses-test-key"),
    )
    .await;
    let resp = post(&gw.base, json!({"model": "fast", "input": "hi"})).await;
    assert_eq!(resp.status(), 401);
    let err: Value = json_of(resp).await;
    assert_eq!(err["error"]["type"], "authentication_error");
}

/// A target that asks for `get_weather`, then answers with the result it is given; it
/// checks that the result names the call it answers.
fn weather(provider: &str) -> DynClient {
    Arc::new(
        FunctionClient::builder("tool-model")
            .provider(provider)
            .respond(|r: &ChatRequest| {
                let result = r
                    .messages
                    .iter()
                    .flat_map(|m| &m.parts)
                    .find_map(|p| match p {
                        Part::ToolResult(t) => Some(t.clone()),
                        _ => None,
                    });
                Ok(match result {
                    Some(t) => {
                        assert_eq!(t.call_id, "call_oslo_1");
                        assert_eq!(t.name.as_deref(), Some("get_weather"));
                        ChatResponse::from_text(format!("The weather: {}", t.content))
                    }
                    None => ChatResponse::from_parts(vec![Part::ToolCall(switchboard::ToolCall {
                        id: "call_oslo_1".into(),
                        name: "get_weather".into(),
                        arguments: json!({"city": "Oslo"}),
                        signature: None,
                    })])
                    .with_usage(Usage::new(5, 3)),
                })
            })
            .build(),
    )
}

#[tokio::test]
async fn function_calls_round_trip_by_call_id_streamed_and_whole() {
    let gw = start_routes(
        vec![("tools", vec![weather("primary")])],
        GatewayOptions::default(),
    )
    .await;
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let first: Value = json_of(post(
        &gw.base,
        json!({"model": "tools", "input": "Weather in Oslo?", "tools": tools, "tool_choice": "auto"}),
    )
    .await)
    .await;
    let call = &first["output"][0];
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["call_id"], "call_oslo_1");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["arguments"], "{\"city\":\"Oslo\"}");
    assert_eq!(first["tools"][0]["name"], "get_weather", "tools are echoed");

    let second: Value = json_of(
        post(
            &gw.base,
            json!({"model": "tools", "tools": tools, "input": [
                {"role": "user", "content": "Weather in Oslo?"},
                call,
                {"type": "function_call_output", "call_id": "call_oslo_1", "output": "sunny"}
            ]}),
        )
        .await,
    )
    .await;
    assert_eq!(
        second["output"][0]["content"][0]["text"],
        "The weather: sunny"
    );

    let resp = post(
        &gw.base,
        json!({"model": "tools", "input": "Weather in Oslo?", "tools": tools, "stream": true}),
    )
    .await;
    let events = events(&resp.text().await.unwrap());
    let names = names(&events);
    let added = events
        .iter()
        .find(|(n, _)| n == "response.output_item.added")
        .unwrap();
    assert_eq!(added.1["item"]["type"], "function_call");
    assert_eq!(added.1["item"]["call_id"], "call_oslo_1");
    assert!(names.contains(&"response.function_call_arguments.delta"));
    let done = events
        .iter()
        .find(|(n, _)| n == "response.function_call_arguments.done")
        .unwrap();
    assert_eq!(done.1["arguments"], "{\"city\":\"Oslo\"}");
    assert_eq!(done.1["item_id"], added.1["item"]["id"]);
    assert_eq!(*names.last().unwrap(), "response.completed");
}

#[tokio::test]
async fn openai_reasoning_goes_back_byte_for_byte_and_is_dropped_when_anthropic_answers() {
    let openai = mock(
        "/v1/responses",
        200,
        fixture("openai-responses/response_reasoning.json"),
        "application/json",
    )
    .await;
    let down = mock(
        "/v1/responses",
        503,
        br#"{"error":{"message":"overloaded","type":"server_error","code":null,"param":null}}"#
            .to_vec(),
        "application/json",
    )
    .await;
    let anthropic = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(wiremock::matchers::body_partial_json(
            json!({"stream": true}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("anthropic/stream_text.sse"), "text/event-stream"),
        )
        .mount(&anthropic)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("anthropic/messages_text.json"), "application/json"),
        )
        .mount(&anthropic)
        .await;
    let gw = start_routes(
        vec![
            (
                "reasoner",
                vec![client(
                    "openai-responses:gpt-5-mini",
                    &format!("{}/v1", openai.uri()),
                )],
            ),
            (
                "cross",
                vec![
                    client("openai-responses:gpt-5-mini", &format!("{}/v1", down.uri())),
                    client("anthropic:claude-sonnet-4-5", &anthropic.uri()),
                ],
            ),
        ],
        GatewayOptions::default(),
    )
    .await;
    let first: Value = json_of(post(
        &gw.base,
        json!({"model": "reasoner", "input": "9.11 or 9.9?", "reasoning": {"effort": "medium", "summary": "auto"}}),
    )
    .await)
    .await;
    let item = &first["output"][0];
    assert_eq!(item["type"], "reasoning");
    assert!(item["summary"][0]["text"]
        .as_str()
        .unwrap()
        .contains("Comparing the two numbers"));
    let sealed = item["encrypted_content"].as_str().unwrap();
    assert!(sealed.starts_with("sb1."), "{sealed}");
    assert_eq!(
        first["output"][1]["content"][0]["text"],
        "9.9 is larger than 9.11."
    );

    // The next turn, sent back with the earlier output, reaches OpenAI byte for byte.
    let mut input = vec![json!({"role": "user", "content": "9.11 or 9.9?"})];
    input.extend(first["output"].as_array().unwrap().iter().cloned());
    input.push(json!({"role": "user", "content": "And 9.8?"}));
    let resp = post(
        &gw.base,
        json!({"model": "reasoner", "input": input, "reasoning": {"effort": "medium"}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header_of(&resp, "x-switchboard-dropped"), "");
    let recorded = fixture_json("openai-responses/response_reasoning.json");
    let first_sent = &sent_bodies(&openai).await[0];
    assert_eq!(
        first_sent["reasoning"],
        json!({"effort": "medium", "summary": "auto"})
    );
    assert_eq!(first_sent["store"], false);
    let sent = &sent_bodies(&openai).await[1];
    let reasoning: Vec<&Value> = sent["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "reasoning")
        .collect();
    assert_eq!(reasoning.len(), 1, "{sent}");
    assert_eq!(
        reasoning[0]["encrypted_content"],
        recorded["output"][0]["encrypted_content"]
    );
    assert_eq!(reasoning[0]["id"], recorded["output"][0]["id"]);

    // Failing over to Anthropic, the encrypted reasoning is left out, and the answer says so.
    let resp = post(&gw.base, json!({"model": "cross", "input": input})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "anthropic");
    assert_eq!(header_of(&resp, "x-switchboard-attempts"), "2");
    assert!(
        header_of(&resp, "x-switchboard-dropped").starts_with("thinking from "),
        "{}",
        header_of(&resp, "x-switchboard-dropped")
    );
    let streamed = post(
        &gw.base,
        json!({"model": "cross", "input": input, "stream": true}),
    )
    .await;
    assert_eq!(streamed.status(), 200);
    assert!(header_of(&streamed, "x-switchboard-dropped").starts_with("thinking from "));
    assert_eq!(
        events(&streamed.text().await.unwrap()).last().unwrap().0,
        "response.completed"
    );
    let sent = &sent_bodies(&anthropic).await[0];
    let text = sent.to_string();
    assert!(
        !text.contains("gAAAA") && !text.contains("thinking"),
        "{sent}"
    );
    assert_eq!(
        sent["messages"][1]["content"][0]["text"],
        "9.9 is larger than 9.11."
    );
}

#[tokio::test]
async fn an_anthropic_thinking_signature_round_trips_through_the_responses_dialect() {
    let anthropic = mock(
        "/v1/messages",
        200,
        fixture("anthropic/messages_thinking.json"),
        "application/json",
    )
    .await;
    let gw = start_routes(
        vec![(
            "claude",
            vec![client("anthropic:claude-sonnet-4-5", &anthropic.uri())],
        )],
        GatewayOptions::default(),
    )
    .await;
    let first: Value = json_of(post(
        &gw.base,
        json!({"model": "claude", "input": "Is 27 * 453 more than 12,000?", "reasoning": {"effort": "high"}}),
    )
    .await)
    .await;
    let recorded = fixture_json("anthropic/messages_thinking.json");
    assert_eq!(first["output"][0]["type"], "reasoning");
    assert_eq!(
        first["output"][0]["summary"][0]["text"],
        recorded["content"][0]["thinking"]
    );
    let mut input = vec![json!({"role": "user", "content": "Is 27 * 453 more than 12,000?"})];
    input.extend(first["output"].as_array().unwrap().iter().cloned());
    input.push(json!({"role": "user", "content": "And 28 * 453?"}));
    let resp = post(
        &gw.base,
        json!({"model": "claude", "input": input, "reasoning": {"effort": "high"}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let sent = &sent_bodies(&anthropic).await[1];
    let block = &sent["messages"][1]["content"][0];
    assert_eq!(block["type"], "thinking", "{sent}");
    assert_eq!(block["thinking"], recorded["content"][0]["thinking"]);
    assert_eq!(block["signature"], recorded["content"][0]["signature"]);
}

#[tokio::test]
async fn a_streamed_reasoning_item_carries_summary_deltas_and_its_sealed_content() {
    let openai = mock(
        "/v1/responses",
        200,
        fixture("openai-responses/stream_reasoning.sse"),
        "text/event-stream",
    )
    .await;
    let gw = start_routes(
        vec![(
            "reasoner",
            vec![client(
                "openai-responses:gpt-5-mini",
                &format!("{}/v1", openai.uri()),
            )],
        )],
        GatewayOptions::default(),
    )
    .await;
    let resp = post(
        &gw.base,
        json!({"model": "reasoner", "input": "9.11 or 9.9?", "stream": true, "reasoning": {"effort": "low", "summary": "auto"}}),
    )
    .await;
    let events = events(&resp.text().await.unwrap());
    let summary: String = events
        .iter()
        .filter(|(n, _)| n == "response.reasoning_summary_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(summary, "Compare decimals.\n9.9 wins.");
    let reasoning_done = events
        .iter()
        .find(|(n, d)| n == "response.output_item.done" && d["item"]["type"] == "reasoning")
        .unwrap();
    assert!(reasoning_done.1["item"]["encrypted_content"]
        .as_str()
        .unwrap()
        .starts_with("sb1."));
    let completed = &events.last().unwrap().1["response"];
    assert_eq!(events.last().unwrap().0, "response.completed");
    assert_eq!(completed["model"], "gpt-5-mini-2025-08-07");
    assert_eq!(
        completed["usage"]["output_tokens_details"]["reasoning_tokens"],
        192
    );
    let output = completed["output"].as_array().unwrap();
    assert_eq!(
        output.len(),
        2,
        "one reasoning item, one message: {completed}"
    );
    assert_eq!(output[1]["content"][0]["text"], "9.9 is larger.");
}

#[tokio::test]
async fn a_stream_fails_over_from_an_openai_target_to_an_anthropic_one() {
    let openai = FaultProvider::builder()
        .script([Fault::Unavailable, Fault::Unavailable, Fault::Unavailable])
        .tokens(4)
        .start()
        .await
        .unwrap();
    let anthropic = FaultProvider::builder()
        .script([Fault::Healthy])
        .tokens(4)
        .start()
        .await
        .unwrap();
    let gw = start_routes(
        vec![(
            "cross",
            vec![
                client("openai:gpt-4o-mini", &openai.base_url(Protocol::OpenAi)),
                client(
                    "anthropic:claude-haiku-4-5",
                    &anthropic.base_url(Protocol::Anthropic),
                ),
            ],
        )],
        GatewayOptions::default(),
    )
    .await;
    let resp = post(
        &gw.base,
        json!({"model": "cross", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header_of(&resp, "x-switchboard-provider"), "anthropic");
    let events = events(&resp.text().await.unwrap());
    let text: String = events
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, anthropic.answer_text());
    assert_eq!(events.last().unwrap().0, "response.completed");
    assert!(openai.requests() >= 1);
    assert_eq!(anthropic.requests(), 1);
}

#[tokio::test]
async fn every_target_rate_limited_is_a_429_in_openai_shape_with_retry_after() {
    let gw = start_routes(
        vec![(
            "limited",
            vec![fails("a", "m", 429, Some(3)), fails("b", "m", 429, Some(8))],
        )],
        GatewayOptions::default(),
    )
    .await;
    for stream in [false, true] {
        let resp = post(
            &gw.base,
            json!({"model": "limited", "input": "hi", "stream": stream}),
        )
        .await;
        assert_eq!(resp.status(), 429);
        assert_eq!(header_of(&resp, "retry-after"), "3");
        // The second request finds both targets cooling down from the first's 429s.
        let attempts = if stream { "0" } else { "2" };
        assert_eq!(header_of(&resp, "x-switchboard-attempts"), attempts);
        let err: Value = json_of(resp).await;
        assert_eq!(err["error"]["type"], "rate_limit_error");
    }
}

#[tokio::test]
async fn structured_output_reaches_the_target_as_a_json_schema() {
    let target: DynClient = Arc::new(
        FunctionClient::builder("m")
            .provider("primary")
            .respond(|r: &ChatRequest| {
                Ok(match &r.response_format {
                    Some(switchboard::types::ResponseFormat::JsonSchema {
                        name, strict, ..
                    }) if name == "point" && *strict => {
                        ChatResponse::from_text("{\"x\":1,\"y\":2}")
                    }
                    other => ChatResponse::from_text(format!("unexpected: {other:?}")),
                })
            })
            .build(),
    );
    let gw = start(
        Gateway::from_routes(vec![("json", vec![target])], GatewayOptions::default()).unwrap(),
    )
    .await;
    let format = json!({"format": {"type": "json_schema", "name": "point", "strict": true,
        "schema": {"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
                   "required": ["x", "y"], "additionalProperties": false}}});
    let body: Value = json_of(
        post(
            &gw.base,
            json!({"model": "json", "input": "a point", "text": format}),
        )
        .await,
    )
    .await;
    assert_eq!(body["output"][0]["content"][0]["text"], "{\"x\":1,\"y\":2}");
    assert_eq!(
        body["text"]["format"]["name"], "point",
        "text.format is echoed"
    );
}

fn fixture_json(relative: &str) -> Value {
    switchboard_testkit::fixture_json(relative)
}

#[tokio::test]
async fn a_gemini_call_signature_goes_back_on_its_call() {
    let gemini = MockServer::start().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::path_regex(":generateContent$"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("gemini/generate_parallel_function_calls.json"),
            "application/json",
        ))
        .mount(&gemini)
        .await;
    let gw = start_routes(
        vec![(
            "gemini",
            vec![client("gemini:gemini-2.5-flash", &gemini.uri())],
        )],
        GatewayOptions::default(),
    )
    .await;
    let tools = json!([{"type": "function", "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}]);
    let first = json_of(
        post(
            &gw.base,
            json!({"model": "gemini", "input": "Weather in Paris and London?", "tools": tools}),
        )
        .await,
    )
    .await;
    let calls = first["output"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "{first}");
    let mut input = vec![json!({"role": "user", "content": "Weather in Paris and London?"})];
    input.extend(calls.iter().cloned());
    for call in calls {
        input.push(
            json!({"type": "function_call_output", "call_id": call["call_id"], "output": "mild"}),
        );
    }
    let resp = post(
        &gw.base,
        json!({"model": "gemini", "input": input, "tools": tools}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let recorded = fixture_json("gemini/generate_parallel_function_calls.json");
    let sent = &sent_bodies(&gemini).await[1];
    let model_turn = sent["contents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["role"] == "model")
        .unwrap();
    assert_eq!(
        model_turn["parts"][0]["thoughtSignature"],
        recorded["candidates"][0]["content"]["parts"][0]["thoughtSignature"],
        "{sent}"
    );
    assert_eq!(
        model_turn["parts"][0]["functionCall"]["name"],
        "get_weather"
    );
}

#[tokio::test]
async fn a_route_budget_and_breaker_are_shared_with_chat_completions() {
    let settings = switchboard::config::Settings::from_toml_str(
        "[routes.x]\ntargets = [\"openai:m\"]\nbudget = { max_trials = 2 }\n\
         [routes.y]\ntargets = [\"openai:m\"]\nbreaker = { consecutive_failures = 2, cooldown_ms = 60000 }\n",
    )
    .unwrap();
    let gw = start(
        Gateway::from_routes_with(
            vec![
                (
                    "capped",
                    settings.routes["x"].clone(),
                    vec![answers("a", "m1", "x")],
                ),
                (
                    "fragile",
                    settings.routes["y"].clone(),
                    vec![fails("a", "m1", 503, None)],
                ),
            ],
            GatewayOptions::default(),
        )
        .unwrap(),
    )
    .await;
    let chat =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    let client = reqwest::Client::new();
    let post_chat = |body: Value| {
        client
            .post(format!("{}/v1/chat/completions", gw.base))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap())
            .send()
    };
    // One trial spent through each door, then the budget refuses the Responses request.
    assert_eq!(post_chat(chat("capped")).await.unwrap().status(), 200);
    assert_eq!(
        post(&gw.base, json!({"model": "capped", "input": "hi"}))
            .await
            .status(),
        200
    );
    let refused = post(&gw.base, json!({"model": "capped", "input": "hi"})).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(json_of(refused).await["error"]["code"], "budget_exceeded");
    // Two failures through Chat Completions open the breaker the Responses door meets.
    for _ in 0..2 {
        assert_eq!(post_chat(chat("fragile")).await.unwrap().status(), 503);
    }
    let resp = post(&gw.base, json!({"model": "fragile", "input": "hi"})).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(
        header_of(&resp, "x-switchboard-attempts"),
        "0",
        "the open breaker skipped the target"
    );
}

/// Log output captured from a `tracing` subscriber installed for the current thread.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn access_lines_name_the_responses_path_for_whole_and_streamed_answers() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || sink.clone())
        .finish();
    // Global, not per thread: the other tests of this binary hit the same call sites on
    // other threads at the same time, and a per-thread subscriber races with their interest.
    // Only this test installs one; it reads only the lines of its own alias.
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let gw = start_routes(
        vec![("logged", vec![answers("primary", "model-a", "Hello")])],
        GatewayOptions::default(),
    )
    .await;
    for stream in [false, true] {
        let resp = post(
            &gw.base,
            json!({"model": "logged", "input": "hi", "stream": stream}),
        )
        .await;
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
    }
    let mut lines = Vec::new();
    for _ in 0..500 {
        lines = captured
            .text()
            .lines()
            .filter(|l| l.contains("switchboard_gateway::access") && l.contains("\"logged\""))
            .map(str::to_owned)
            .collect();
        if lines.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, streamed) in lines.iter().zip(["streamed=false", "streamed=true"]) {
        for field in [
            r#"path="/v1/responses""#,
            r#"route="logged""#,
            r#"provider="primary""#,
            "status=200",
            streamed,
            "output_tokens=4",
        ] {
            assert!(line.contains(field), "{field} missing: {line}");
        }
    }
}

#[tokio::test]
async fn a_streamed_anthropic_thinking_block_comes_back_signed_on_the_next_turn() {
    let anthropic = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(wiremock::matchers::body_partial_json(
            json!({"stream": true}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("anthropic/stream_thinking.sse"),
            "text/event-stream",
        ))
        .mount(&anthropic)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("anthropic/messages_text.json"), "application/json"),
        )
        .mount(&anthropic)
        .await;
    let gw = start_routes(
        vec![(
            "claude",
            vec![client("anthropic:claude-sonnet-4-5", &anthropic.uri())],
        )],
        GatewayOptions::default(),
    )
    .await;
    let resp = post(
        &gw.base,
        json!({"model": "claude", "input": "GCD of 1071 and 462?", "stream": true, "reasoning": {"effort": "low"}}),
    )
    .await;
    let events = events(&resp.text().await.unwrap());
    let names = names(&events);
    assert!(
        names.contains(&"response.reasoning_summary_part.added"),
        "{names:?}"
    );
    assert!(
        names.contains(&"response.reasoning_summary_text.done"),
        "{names:?}"
    );
    let (last, completed) = events.last().unwrap();
    assert_eq!(last, "response.completed");
    let output = completed["response"]["output"].as_array().unwrap().clone();
    assert_eq!(output[0]["type"], "reasoning");
    assert_eq!(output[1]["type"], "message");

    let mut input = vec![json!({"role": "user", "content": "GCD of 1071 and 462?"})];
    input.extend(output);
    input.push(json!({"role": "user", "content": "And of 1071 and 1029?"}));
    let resp = post(
        &gw.base,
        json!({"model": "claude", "input": input, "reasoning": {"effort": "low"}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let sent = &sent_bodies(&anthropic).await[1];
    let block = &sent["messages"][1]["content"][0];
    assert_eq!(block["type"], "thinking", "{sent}");
    assert_eq!(
        block["signature"],
        "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds6zlAgn2VyzCZ3+rLEbyxvDrrQZ8BLN1I9gGRlLyqWjL1fSh"
    );
    assert!(block["thinking"]
        .as_str()
        .unwrap()
        .starts_with("I need to find the GCD of 1071 and 462"));
    assert!(block["thinking"]
        .as_str()
        .unwrap()
        .ends_with("So the GCD is 21."));
}

#[tokio::test]
async fn a_streamed_openai_function_call_keeps_its_call_id_for_the_output() {
    let openai = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .and(wiremock::matchers::body_partial_json(
            json!({"stream": true}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("openai-responses/stream_function_call.sse"),
            "text/event-stream",
        ))
        .mount(&openai)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("openai-responses/response_text.json"),
            "application/json",
        ))
        .mount(&openai)
        .await;
    let gw = start_routes(
        vec![(
            "gpt",
            vec![client(
                "openai-responses:gpt-5-mini",
                &format!("{}/v1", openai.uri()),
            )],
        )],
        GatewayOptions::default(),
    )
    .await;
    let tools = json!([{"type": "function", "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}]);
    let resp = post(
        &gw.base,
        json!({"model": "gpt", "input": "Weather in Paris?", "tools": tools, "stream": true}),
    )
    .await;
    let events = events(&resp.text().await.unwrap());
    let arguments: String = events
        .iter()
        .filter(|(n, _)| n == "response.function_call_arguments.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"location": "Paris, France"})
    );
    let completed = &events.last().unwrap().1["response"];
    let call = completed["output"][0].clone();
    assert_eq!(call["call_id"], "call_Xq7Lm2pR9sT4vW1yZ3bN5cD8");
    let resp = post(
        &gw.base,
        json!({"model": "gpt", "tools": tools, "input": [
            {"role": "user", "content": "Weather in Paris?"},
            call,
            {"type": "function_call_output", "call_id": "call_Xq7Lm2pR9sT4vW1yZ3bN5cD8", "output": "{\"temp\": 18}"}
        ]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let sent = &sent_bodies(&openai).await[1];
    let items = sent["input"].as_array().unwrap();
    let call = items.iter().find(|i| i["type"] == "function_call").unwrap();
    let output = items
        .iter()
        .find(|i| i["type"] == "function_call_output")
        .unwrap();
    assert_eq!(call["call_id"], "call_Xq7Lm2pR9sT4vW1yZ3bN5cD8");
    assert_eq!(output["call_id"], "call_Xq7Lm2pR9sT4vW1yZ3bN5cD8");
    assert_eq!(output["output"], "{\"temp\": 18}");
}

#[tokio::test]
async fn a_length_stop_is_an_incomplete_response_whole_and_streamed() {
    let openai = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .and(wiremock::matchers::body_partial_json(
            json!({"stream": true}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("openai-responses/stream_incomplete.sse"),
            "text/event-stream",
        ))
        .mount(&openai)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("openai-responses/response_incomplete.json"),
            "application/json",
        ))
        .mount(&openai)
        .await;
    let gw = start_routes(
        vec![(
            "gpt",
            vec![client(
                "openai-responses:gpt-5-mini",
                &format!("{}/v1", openai.uri()),
            )],
        )],
        GatewayOptions::default(),
    )
    .await;
    let body = json_of(
        post(
            &gw.base,
            json!({"model": "gpt", "input": "Write a long essay.", "max_output_tokens": 16}),
        )
        .await,
    )
    .await;
    assert_eq!(body["status"], "incomplete", "{body}");
    assert_eq!(body["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(body["max_output_tokens"], 16, "echoed");
    let resp = post(
        &gw.base,
        json!({"model": "gpt", "input": "Write a long essay.", "max_output_tokens": 16, "stream": true}),
    )
    .await;
    let events = events(&resp.text().await.unwrap());
    let (last, data) = events.last().unwrap();
    assert_eq!(last, "response.incomplete");
    assert_eq!(data["response"]["status"], "incomplete");
    assert_eq!(
        data["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
}
