//! The Anthropic Messages protocol over a real local socket (wiremock), replaying fixtures
//! from Anthropic's documentation.

use std::time::Duration;

use serde_json::{json, Value};
use switchboard::types::{Media, ReasoningEffort, ResponseFormat, Thinking, ToolResult};
use switchboard::{
    AnthropicClient, ChatClient, ChatRequest, ChatResponse, ErrorKind, FinishKind, Message, Part,
    Role, StreamEvent, ToolCall, ToolChoice, ToolSpec,
};
use switchboard_testkit::wiremock::matchers::{header, method, path};
use switchboard_testkit::wiremock::{Mock, MockServer, ResponseTemplate};
use switchboard_testkit::{fixture, fixture_json};

const KEY: &str = "sk-ant-test-0123456789abcdef";

async fn serve(status: u16, body: Vec<u8>, content_type: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(status).set_body_raw(body, content_type))
        .mount(&server)
        .await;
    server
}

async fn serve_json(name: &str) -> MockServer {
    serve(
        200,
        fixture(&format!("anthropic/{name}")),
        "application/json",
    )
    .await
}

async fn serve_sse(name: &str) -> MockServer {
    serve(
        200,
        fixture(&format!("anthropic/{name}")),
        "text/event-stream",
    )
    .await
}

fn client(server: &MockServer) -> AnthropicClient {
    AnthropicClient::builder()
        .model("claude-sonnet-4-5")
        .api_key(KEY)
        .base_url(server.uri())
        .build()
        .unwrap()
}

/// The JSON body of every request the server received, in order.
async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

async fn last_body(server: &MockServer) -> Value {
    bodies(server).await.pop().expect("no request was sent")
}

async fn chat(name: &str) -> ChatResponse {
    let server = serve_json(name).await;
    client(&server)
        .chat(&ChatRequest::user("hello"))
        .await
        .unwrap()
}

async fn stream(name: &str, req: &ChatRequest) -> switchboard::Result<ChatResponse> {
    let server = serve_sse(name).await;
    client(&server)
        .chat_stream(req)
        .await?
        .collect_response()
        .await
}

fn call(id: &str, name: &str, arguments: Value) -> Part {
    Part::ToolCall(ToolCall {
        id: id.into(),
        name: name.into(),
        arguments,
        signature: None,
    })
}

fn weather_tool() -> ToolSpec {
    ToolSpec::new(
        "get_weather",
        "Current weather for a city",
        json!({"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}),
    )
}

/// Clears what differs per call (ids, timings) so two responses can be compared whole.
fn comparable(mut r: ChatResponse) -> ChatResponse {
    r.request_id.clear();
    r.latency = Duration::ZERO;
    r.attempts.clear();
    r
}

// ---- replies -----------------------------------------------------------------------------

#[tokio::test]
async fn answers_text_with_ids_usage_and_finish_reason() {
    let r = chat("messages_text.json").await;
    assert_eq!(r.text(), "Hi! My name is Claude. How can I help you today?");
    assert_eq!(r.provider, "anthropic");
    assert_eq!(r.model, "claude-sonnet-4-5");
    assert_eq!(
        r.served_model.as_deref(),
        Some("claude-sonnet-4-5-20250929")
    );
    assert_eq!(
        r.response_id.as_deref(),
        Some("msg_013Zva2CMHLNnXjNJJKqJ2EF")
    );
    assert_eq!(r.finish_reason.kind, FinishKind::Stop);
    assert_eq!(r.finish_reason.raw.as_deref(), Some("end_turn"));
    assert_eq!(
        (
            r.usage.input_tokens,
            r.usage.output_tokens,
            r.usage.total_tokens
        ),
        (2095, 17, 2112)
    );
    assert_eq!(r.attempts().len(), 1);
    assert!(r.request_id.starts_with("req_"));
    assert!(r.raw.is_none());
}

#[tokio::test]
async fn keeps_the_raw_reply_when_asked() {
    let server = serve_json("messages_text.json").await;
    let client = AnthropicClient::builder()
        .model("claude-sonnet-4-5")
        .api_key(KEY)
        .base_url(server.uri())
        .keep_raw(true)
        .build()
        .unwrap();
    let r = client.chat(&ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.raw, Some(fixture_json("anthropic/messages_text.json")));
}

#[tokio::test]
async fn returns_tool_use_as_a_tool_call() {
    let r = chat("messages_tool_use.json").await;
    assert_eq!(
        r.text(),
        "I'll check the current weather in San Francisco for you."
    );
    let calls = r.tool_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(calls[0].name, "get_weather");
    assert_eq!(
        calls[0].arguments,
        json!({"location": "San Francisco, CA", "unit": "celsius"})
    );
    assert_eq!(r.finish_reason.kind, FinishKind::ToolCalls);
    assert_eq!(r.finish_reason.raw.as_deref(), Some("tool_use"));
}

#[tokio::test]
async fn returns_parallel_tool_calls_in_order() {
    let r = chat("messages_parallel_tool_use.json").await;
    let calls = r.tool_calls();
    let names: Vec<_> = calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["get_weather", "get_time"]);
    assert_eq!(
        calls[1].arguments,
        json!({"timezone": "America/Los_Angeles"})
    );
    assert_eq!(r.finish_reason.kind, FinishKind::ToolCalls);
}

#[tokio::test]
async fn keeps_thinking_with_its_signature_and_sends_it_back_next_turn() {
    let server = serve_json("messages_thinking.json").await;
    let client = client(&server);
    let question = Message::user("Is 27 * 453 more than 12,000?");
    let first = client
        .chat(&ChatRequest::new(vec![question.clone()]))
        .await
        .unwrap();
    let thinking = first.thinking();
    assert_eq!(thinking.len(), 1);
    let signature = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds6zlAgn2VyzCZ3+rLEbyxvDrrQZ8BLN1I9gGRlLyqWjL1fSh";
    assert_eq!(thinking[0].signature.as_deref(), Some(signature));
    assert_eq!(thinking[0].origin.as_deref(), Some("anthropic"));
    assert!(thinking[0]
        .text
        .starts_with("The user asks whether 27 * 453"));
    assert_eq!(
        first.text(),
        "Yes. 27 × 453 = 12,231, which is 231 more than 12,000."
    );

    let next = ChatRequest::new(vec![
        question,
        first.to_message(),
        Message::user("And 28 * 453?"),
    ]);
    client.chat(&next).await.unwrap();
    let body = last_body(&server).await;
    let assistant = &body["messages"][1];
    assert_eq!(assistant["role"], "assistant");
    assert_eq!(
        assistant["content"][0],
        json!({"type": "thinking", "thinking": thinking[0].text, "signature": signature})
    );
    assert_eq!(assistant["content"][1]["type"], "text");
}

#[tokio::test]
async fn counts_cache_reads_and_writes_as_input() {
    let r = chat("messages_cache_usage.json").await;
    assert_eq!(r.usage.input_tokens, 21 + 1480 + 3120);
    assert_eq!(r.usage.cache_read_tokens, Some(3120));
    assert_eq!(r.usage.cache_write_tokens, Some(1480));
    assert_eq!(r.usage.output_tokens, 187);
    assert_eq!(r.usage.total_tokens, 4621 + 187);
}

#[tokio::test]
async fn max_tokens_finishes_with_length() {
    let r = chat("messages_max_tokens.json").await;
    assert_eq!(r.finish_reason.kind, FinishKind::Length);
    assert_eq!(r.finish_reason.raw.as_deref(), Some("max_tokens"));
    assert!(r.text().starts_with("Here is a detailed history"));
}

#[tokio::test]
async fn refusal_finishes_with_refusal_and_keeps_the_partial_text() {
    let r = chat("messages_refusal.json").await;
    assert_eq!(r.finish_reason.kind, FinishKind::Refusal);
    assert_eq!(r.text(), "Hello..");
}

// ---- streams -----------------------------------------------------------------------------

#[tokio::test]
async fn streamed_refusal_keeps_the_partial_text_and_the_final_cumulative_usage() {
    let r = stream("stream_refusal.sse", &ChatRequest::user("x"))
        .await
        .unwrap();
    assert_eq!(r.finish_reason.kind, FinishKind::Refusal);
    assert_eq!(r.text(), "I can't");
    // `message_delta` counts are cumulative: its 2 replaces `message_start`'s 3.
    assert_eq!(
        (
            r.usage.input_tokens,
            r.usage.output_tokens,
            r.usage.total_tokens
        ),
        (31, 2, 33)
    );
}

#[tokio::test]
async fn streamed_text_folds_into_the_same_response_as_the_non_stream_equivalent() {
    let streamed = stream("stream_text.sse", &ChatRequest::user("hello"))
        .await
        .unwrap();
    let whole = chat("messages_stream_text_equivalent.json").await;
    assert_eq!(streamed.text(), "Hello! How can I help you today?");
    assert_eq!(comparable(streamed), comparable(whole));
}

#[tokio::test]
async fn stream_yields_started_text_usage_and_finish_events_then_done() {
    let server = serve_sse("stream_text.sse").await;
    let events: Vec<StreamEvent> = {
        use futures_util::StreamExt;
        client(&server)
            .chat_stream(&ChatRequest::user("hello"))
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await
    };
    assert!(matches!(
        &events[0],
        StreamEvent::Started { response_id: Some(id), .. } if id == "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"
    ));
    let texts: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["Hello", "! How can", " I help you", " today?"]);
    assert!(matches!(events.last(), Some(StreamEvent::Done { .. })));
    assert_eq!(
        body_flag(&last_body(&server).await, "stream"),
        Some(true),
        "the body asks for a stream"
    );
}

fn body_flag(body: &Value, key: &str) -> Option<bool> {
    body.get(key).and_then(Value::as_bool)
}

#[tokio::test]
async fn streams_tool_use_arguments_into_one_call() {
    let r = stream("stream_tool_use.sse", &ChatRequest::user("weather?"))
        .await
        .unwrap();
    assert_eq!(
        r.text(),
        "Okay, let's check the weather for San Francisco, CA:"
    );
    let calls = r.tool_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
    assert_eq!(calls[0].name, "get_weather");
    assert_eq!(
        calls[0].arguments,
        json!({"location": "San Francisco, CA", "unit": "fahrenheit"})
    );
    assert_eq!(r.finish_reason.kind, FinishKind::ToolCalls);
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (472, 89));
}

#[tokio::test]
async fn streams_thinking_with_its_signature() {
    let r = stream("stream_thinking.sse", &ChatRequest::user("gcd?"))
        .await
        .unwrap();
    let thinking = r.thinking();
    assert_eq!(thinking.len(), 1);
    assert!(thinking[0].text.starts_with("I need to find the GCD"));
    assert!(thinking[0].text.ends_with("So the GCD is 21."));
    assert!(thinking[0]
        .signature
        .as_deref()
        .is_some_and(|s| s.starts_with("EqQBCgIYAhIM")));
    assert_eq!(thinking[0].origin.as_deref(), Some("anthropic"));
    assert_eq!(
        r.text(),
        "The greatest common divisor of 1071 and 462 is **21**."
    );
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (48, 112));
}

#[tokio::test]
async fn streams_redacted_thinking_and_sends_it_back() {
    let server = serve_sse("stream_redacted_thinking.sse").await;
    let client = client(&server);
    let r = client
        .chat_stream(&ChatRequest::user("q"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    let thinking = r.thinking();
    assert_eq!(thinking.len(), 1);
    let data = thinking[0].redacted.clone().unwrap();
    assert!(data.starts_with("EmwKAhgBEgy3va3pzix"));
    assert_eq!(
        r.text(),
        "I can't share the reasoning for that step, but the final answer is 42."
    );

    let next = ChatRequest::new(vec![
        Message::user("q"),
        r.to_message(),
        Message::user("thanks"),
    ]);
    let _ = client.chat_stream(&next).await.unwrap();
    let body = last_body(&server).await;
    assert_eq!(
        body["messages"][1]["content"][0],
        json!({"type": "redacted_thinking", "data": data})
    );
}

#[tokio::test]
async fn overloaded_error_after_text_interrupts_the_stream_and_keeps_the_partial_text() {
    let err = stream("stream_error_overloaded.sse", &ChatRequest::user("explain"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(
        err.partial().unwrap().text(),
        "Photosynthesis is the process by which plants convert light"
    );
    let source = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<switchboard::Error>())
        .expect("the cause is kept");
    assert_eq!(source.kind(), ErrorKind::Overloaded);
    assert_eq!(source.code(), Some("overloaded_error"));
    assert!(err.is_recoverable());
}

#[tokio::test]
async fn overloaded_error_before_any_content_is_overloaded_not_interrupted() {
    let err = stream(
        "stream_error_overloaded_before_content.sse",
        &ChatRequest::user("explain"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    assert_eq!(err.provider(), Some("anthropic"));
    assert!(err.is_recoverable());
}

#[tokio::test]
async fn cut_stream_is_interrupted_not_a_short_answer() {
    let err = stream("stream_cut.sse", &ChatRequest::user("story"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(
        err.partial().unwrap().text(),
        "Once upon a time, a lighthouse keeper found a message in"
    );
}

// ---- errors ------------------------------------------------------------------------------

#[tokio::test]
async fn every_error_fixture_maps_to_its_kind_status_and_code() {
    let table = [
        (
            "error_400.json",
            400,
            ErrorKind::InvalidRequest,
            "invalid_request_error",
        ),
        (
            "error_400_context_length.json",
            400,
            ErrorKind::ContextLength,
            "invalid_request_error",
        ),
        (
            "error_401.json",
            401,
            ErrorKind::Authentication,
            "authentication_error",
        ),
        (
            "error_403.json",
            403,
            ErrorKind::PermissionDenied,
            "permission_error",
        ),
        (
            "error_404.json",
            404,
            ErrorKind::NotFound,
            "not_found_error",
        ),
        (
            "error_413.json",
            413,
            ErrorKind::InvalidRequest,
            "request_too_large",
        ),
        (
            "error_429.json",
            429,
            ErrorKind::RateLimited,
            "rate_limit_error",
        ),
        ("error_500.json", 500, ErrorKind::Server, "api_error"),
        (
            "error_529.json",
            529,
            ErrorKind::Overloaded,
            "overloaded_error",
        ),
    ];
    for (name, status, kind, code) in table {
        let server = serve(
            status,
            fixture(&format!("anthropic/{name}")),
            "application/json",
        )
        .await;
        let err = client(&server)
            .chat(&ChatRequest::user("hello"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{name}: {err}");
        assert_eq!(err.status(), Some(status), "{name}");
        assert_eq!(err.code(), Some(code), "{name}");
        assert_eq!(err.provider(), Some("anthropic"), "{name}");
        assert_eq!(err.model(), Some("claude-sonnet-4-5"), "{name}");
        assert!(err.fix().is_some(), "{name}");
        assert!(err.is_recoverable(), "{name}: a provider's answer");
    }
}

#[tokio::test]
async fn rate_limit_carries_the_retry_after_header() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "7")
                .set_body_raw(fixture("anthropic/error_429.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let err = client(&server)
        .chat(&ChatRequest::user("hello"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(err.message().contains("req_011CWa6Ps9Wk3Bd7Ng2Vx5Rt"));
}

#[tokio::test]
async fn http_error_on_a_stream_maps_like_a_chat_error() {
    let server = serve(529, fixture("anthropic/error_529.json"), "application/json").await;
    let err = client(&server)
        .chat_stream(&ChatRequest::user("hello"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    assert_eq!(err.status(), Some(529));
}

#[tokio::test]
async fn html_error_page_from_a_proxy_is_a_server_error() {
    let server = serve(
        502,
        b"<html><head><title>502 Bad Gateway</title></head></html>".to_vec(),
        "text/html",
    )
    .await;
    let err = client(&server)
        .chat(&ChatRequest::user("hello"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.status(), Some(502));
    assert!(err.message().contains("502 Bad Gateway"));
}

#[tokio::test]
async fn a_success_body_that_is_not_json_is_a_decode_error() {
    let server = serve(200, b"<html>maintenance</html>".to_vec(), "text/html").await;
    let err = client(&server)
        .chat(&ChatRequest::user("hello"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
}

// ---- request bodies ----------------------------------------------------------------------

#[tokio::test]
async fn sends_key_version_and_content_type_headers_to_the_messages_path() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", KEY))
        .and(header("anthropic-version", "2023-06-01"))
        .and(header("content-type", "application/json"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("anthropic/messages_text.json"), "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
    // A trailing slash on the root is tolerated.
    let client = AnthropicClient::builder()
        .model("claude-sonnet-4-5")
        .api_key(KEY)
        .base_url(format!("{}/", server.uri()))
        .build()
        .unwrap();
    client.chat(&ChatRequest::user("hello")).await.unwrap();
    let body = last_body(&server).await;
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(body["max_tokens"], 4096, "the documented default");
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "hello"}]}])
    );
    assert!(body.get("stream").is_none());
    assert!(body.get("system").is_none());
}

#[tokio::test]
async fn lifts_every_system_message_into_system_and_maps_parameters() {
    let server = serve_json("messages_text.json").await;
    let req = ChatRequest::new(vec![
        Message::system("Be brief."),
        Message::user("hello"),
        Message::system("Answer in French."),
        Message::user("again"),
    ])
    .with_max_tokens(300)
    .with_temperature(0.3)
    .with_top_p(0.9)
    .with_stop("END")
    .with_seed(7);
    client(&server).chat(&req).await.unwrap();
    let body = last_body(&server).await;
    assert_eq!(
        body["system"],
        json!([{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Answer in French."}])
    );
    // The two user turns merge, since Anthropic needs alternating roles.
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "again"}]}])
    );
    assert_eq!(body["max_tokens"], 300);
    assert!((body["temperature"].as_f64().unwrap() - 0.3).abs() < 1e-6);
    assert!((body["top_p"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    assert_eq!(body["stop_sequences"], json!(["END"]));
    assert!(body.get("seed").is_none(), "Anthropic has no seed");
}

#[tokio::test]
async fn merges_consecutive_tool_results_into_one_user_message() {
    let server = serve_json("messages_text.json").await;
    let mut failed = Message::tool_result("toolu_2", "timezone unknown");
    if let Part::ToolResult(r) = &mut failed.parts[0] {
        r.is_error = true;
    }
    let req = ChatRequest::new(vec![
        Message::user("weather and time in SF?"),
        Message::new(
            Role::Assistant,
            vec![
                call("toolu_1", "get_weather", json!({"location": "SF"})),
                call("toolu_2", "get_time", json!({"tz": "PT"})),
            ],
        ),
        Message::tool_result("toolu_1", "18C, fog"),
        failed,
        Message::user("and tomorrow?"),
    ])
    .with_tool(weather_tool());
    client(&server).chat(&req).await.unwrap();
    let body = last_body(&server).await;
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(
        messages[2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C, fog"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "timezone unknown", "is_error": true},
            {"type": "text", "text": "and tomorrow?"}
        ]})
    );
    assert_eq!(
        body["tools"],
        json!([{"name": "get_weather", "description": "Current weather for a city", "input_schema": weather_tool().parameters}])
    );
}

#[tokio::test]
async fn converts_an_openai_style_tool_conversation() {
    let server = serve_json("messages_text.json").await;
    // As an OpenAI-protocol client would have recorded it: ids `call_…`, arguments kept as
    // JSON text when they did not parse, a tool message with the function name.
    let req = ChatRequest::new(vec![
        Message::system("You are a weather bot."),
        Message::user("Weather in Paris?"),
        Message::new(
            Role::Assistant,
            vec![
                Part::text(""),
                call("call_abc123", "get_weather", json!({"location": "Paris"})),
                call(
                    "call_def456",
                    "get_weather",
                    json!("{\"location\":\"Lyon\"}"),
                ),
                call("call_ghi789", "echo", json!("plain words")),
            ],
        ),
        Message::new(
            Role::Tool,
            vec![Part::ToolResult(ToolResult {
                call_id: "call_abc123".into(),
                name: Some("get_weather".into()),
                content: "{\"temp_c\":18}".into(),
                is_error: false,
            })],
        ),
        Message::tool_result("call_def456", "{\"temp_c\":21}"),
        Message::tool_result("call_ghi789", "plain words"),
    ])
    .with_tool(weather_tool())
    .with_tool_choice(ToolChoice::Auto);
    client(&server).chat(&req).await.unwrap();
    let body = last_body(&server).await;
    assert_eq!(body["system"][0]["text"], "You are a weather bot.");
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_abc123", "name": "get_weather", "input": {"location": "Paris"}},
                {"type": "tool_use", "id": "call_def456", "name": "get_weather", "input": {"location": "Lyon"}},
                {"type": "tool_use", "id": "call_ghi789", "name": "echo", "input": {"value": "plain words"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_abc123", "content": "{\"temp_c\":18}"},
                {"type": "tool_result", "tool_use_id": "call_def456", "content": "{\"temp_c\":21}"},
                {"type": "tool_result", "tool_use_id": "call_ghi789", "content": "plain words"}
            ]}
        ])
    );
    assert_eq!(body["tool_choice"], json!({"type": "auto"}));
}

#[tokio::test]
async fn maps_every_tool_choice() {
    let cases = [
        (ToolChoice::Auto, json!({"type": "auto"})),
        (ToolChoice::Required, json!({"type": "any"})),
        (ToolChoice::None, json!({"type": "none"})),
        (
            ToolChoice::Tool("get_weather".into()),
            json!({"type": "tool", "name": "get_weather"}),
        ),
    ];
    let server = serve_json("messages_text.json").await;
    let client = client(&server);
    for (choice, expected) in cases {
        let req = ChatRequest::user("hi")
            .with_tool(weather_tool())
            .with_tool_choice(choice);
        client.chat(&req).await.unwrap();
        assert_eq!(last_body(&server).await["tool_choice"], expected);
    }
}

#[tokio::test]
async fn drops_thinking_from_other_providers() {
    let server = serve_json("messages_text.json").await;
    let thinking = |origin: Option<&str>, signature: Option<&str>| {
        Part::Thinking(Thinking {
            text: "reasoning".into(),
            signature: signature.map(Into::into),
            redacted: None,
            origin: origin.map(Into::into),
        })
    };
    let req = ChatRequest::new(vec![
        Message::user("q"),
        Message::new(
            Role::Assistant,
            vec![
                thinking(Some("gemini"), Some("gemini-signature")),
                thinking(Some("openai"), None),
                thinking(None, Some("unknown-origin")),
                thinking(Some("anthropic"), None),
                Part::text("the answer"),
            ],
        ),
        // A turn holding only foreign reasoning disappears entirely.
        Message::new(Role::Assistant, vec![thinking(Some("gemini"), Some("s"))]),
        Message::user("next"),
    ]);
    client(&server).chat(&req).await.unwrap();
    let body = last_body(&server).await;
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "q"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "the answer"}]},
            {"role": "user", "content": [{"type": "text", "text": "next"}]}
        ])
    );
}

#[tokio::test]
async fn sends_images_and_pdfs_as_blocks() {
    let server = serve_json("messages_text.json").await;
    let req = ChatRequest::new(vec![Message::new(
        Role::User,
        vec![
            Part::text("Compare these."),
            Part::Image(Media::bytes("image/png", vec![0x89, b'P', b'N', b'G'])),
            Part::Image(Media::url("image/jpeg", "https://example.com/cat.jpg")),
            Part::Document(Media::bytes("application/pdf", b"%PDF-1.7".to_vec())),
            Part::Document(Media::url(
                "application/pdf",
                "https://example.com/report.pdf",
            )),
            Part::Document(Media::bytes("text/plain", b"plain notes".to_vec())),
        ],
    )]);
    client(&server).chat(&req).await.unwrap();
    let body = last_body(&server).await;
    assert_eq!(
        body["messages"][0]["content"],
        json!([
            {"type": "text", "text": "Compare these."},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw=="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjc="}},
            {"type": "document", "source": {"type": "url", "url": "https://example.com/report.pdf"}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"}}
        ])
    );
}

#[tokio::test]
async fn audio_input_is_a_typed_invalid_request_and_nothing_is_sent() {
    let server = serve_json("messages_text.json").await;
    let req = ChatRequest::new(vec![Message::new(
        Role::User,
        vec![
            Part::text("transcribe"),
            Part::Audio(Media::bytes("audio/wav", vec![1, 2, 3])),
        ],
    )]);
    let client = client(&server);
    for err in [
        client.chat(&req).await.unwrap_err(),
        client.chat_stream(&req).await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert!(err
            .message()
            .contains("Anthropic does not accept audio input; transcribe it first"));
        assert!(
            !err.is_recoverable(),
            "refused before any provider was asked"
        );
    }
    assert!(bodies(&server).await.is_empty());
}

#[tokio::test]
async fn unsupported_document_types_are_refused() {
    let server = serve_json("messages_text.json").await;
    let req = ChatRequest::new(vec![Message::new(
        Role::User,
        vec![Part::Document(Media::bytes(
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            vec![1],
        ))],
    )]);
    let err = client(&server).chat(&req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(bodies(&server).await.is_empty());
}

#[tokio::test]
async fn json_schema_is_a_forced_tool_whose_input_is_the_text() {
    let schema = json!({
        "type": "object",
        "properties": {"city": {"type": "string"}, "temperature_c": {"type": "number"}, "conditions": {"type": "string"}},
        "required": ["city", "temperature_c", "conditions"]
    });
    let req = ChatRequest::user("Weather in Paris as JSON").with_response_format(
        ResponseFormat::JsonSchema {
            name: "weather_report".into(),
            schema: schema.clone(),
            strict: true,
        },
    );
    let expected = json!({"city": "Paris", "temperature_c": 18, "conditions": "light rain"});

    let server = serve_json("messages_json_schema_tool.json").await;
    let r = client(&server).chat(&req).await.unwrap();
    let parsed: Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(parsed, expected);
    assert!(r.tool_calls().is_empty());
    assert_eq!(r.finish_reason.kind, FinishKind::Stop);
    assert_eq!(r.finish_reason.raw.as_deref(), Some("tool_use"));
    let body = last_body(&server).await;
    assert_eq!(body["tools"][0]["name"], "weather_report");
    assert_eq!(body["tools"][0]["input_schema"], schema);
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "weather_report"})
    );

    let streamed = stream("stream_json_schema_tool.sse", &req).await.unwrap();
    let parsed: Value = serde_json::from_str(&streamed.text()).unwrap();
    assert_eq!(parsed, expected);
    assert!(streamed.tool_calls().is_empty());
    assert_eq!(streamed.finish_reason.kind, FinishKind::Stop);
}

#[tokio::test]
async fn json_without_schema_is_asked_for_in_the_system_prompt() {
    let server = serve_json("messages_text.json").await;
    let req = ChatRequest::new(vec![Message::system("Be terse."), Message::user("hi")])
        .with_response_format(ResponseFormat::Json);
    client(&server).chat(&req).await.unwrap();
    let body = last_body(&server).await;
    let system = body["system"].as_array().unwrap();
    assert_eq!(system.len(), 2);
    assert_eq!(system[0]["text"], "Be terse.");
    assert!(system[1]["text"].as_str().unwrap().contains("JSON object"));
    assert!(body.get("tools").is_none());
}

#[tokio::test]
async fn reasoning_effort_enables_thinking_and_raises_max_tokens_above_the_budget() {
    let server = serve_json("messages_thinking.json").await;
    let client = client(&server);
    let req = ChatRequest::user("think")
        .with_max_tokens(1000)
        .with_reasoning_effort(ReasoningEffort::High);
    client.chat(&req).await.unwrap();
    let body = last_body(&server).await;
    let budget = ReasoningEffort::High.budget_tokens();
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": budget})
    );
    assert_eq!(body["max_tokens"], budget + 1000);

    let roomy = ChatRequest::user("think")
        .with_max_tokens(30_000)
        .with_reasoning_effort(ReasoningEffort::Low);
    client.chat(&roomy).await.unwrap();
    assert_eq!(last_body(&server).await["max_tokens"], 30_000);
}

#[tokio::test]
async fn sampling_or_forced_tools_with_reasoning_is_a_typed_error() {
    let server = serve_json("messages_text.json").await;
    let client = client(&server);
    let thinking = || ChatRequest::user("think").with_reasoning_effort(ReasoningEffort::Medium);
    let refused = [
        thinking().with_temperature(0.2),
        thinking().with_top_p(0.5),
        thinking()
            .with_tool(weather_tool())
            .with_tool_choice(ToolChoice::Required),
        thinking().with_response_format(ResponseFormat::JsonSchema {
            name: "x".into(),
            schema: json!({"type": "object"}),
            strict: false,
        }),
    ];
    for req in refused {
        let err = client.chat(&req).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
        assert!(err.message().contains("thinking"), "{err}");
        assert!(err.fix().is_some());
    }
    assert!(bodies(&server).await.is_empty());
    // Temperature 1 is what thinking runs at anyway, so it is allowed.
    client
        .chat(&thinking().with_temperature(1.0))
        .await
        .unwrap();
}

#[tokio::test]
async fn extra_fields_are_merged_into_the_body_last() {
    let server = serve_json("messages_text.json").await;
    let req = ChatRequest::user("hi")
        .with_max_tokens(100)
        .with_extra("max_tokens", json!(77))
        .with_extra("metadata", json!({"user_id": "u-42"}));
    client(&server).chat(&req).await.unwrap();
    let body = last_body(&server).await;
    assert_eq!(body["max_tokens"], 77);
    assert_eq!(body["metadata"], json!({"user_id": "u-42"}));
}

#[tokio::test]
async fn invalid_requests_are_refused_before_sending() {
    let server = serve_json("messages_text.json").await;
    let err = client(&server)
        .chat(&ChatRequest::new(vec![]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(bodies(&server).await.is_empty());
}

// ---- builder and secrets -----------------------------------------------------------------

#[test]
fn builder_requires_a_model_and_a_key_naming_the_variables() {
    let err = AnthropicClient::builder().api_key(KEY).build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("model"));

    let err = AnthropicClient::builder()
        .model("claude-sonnet-4-5")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let text = err.to_string();
    assert!(text.contains("SWITCHBOARD_ANTHROPIC_API_KEY"), "{text}");
    assert!(text.contains("ANTHROPIC_API_KEY"), "{text}");

    let err = AnthropicClient::builder()
        .model("claude-sonnet-4-5")
        .api_key("  ")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[tokio::test]
async fn default_max_tokens_is_configurable() {
    let server = serve_json("messages_text.json").await;
    let client = AnthropicClient::builder()
        .model("claude-haiku-4-5")
        .api_key(KEY)
        .base_url(server.uri())
        .default_max_tokens(512)
        .build()
        .unwrap();
    assert_eq!(client.info().provider(), "anthropic");
    assert_eq!(client.info().model(), "claude-haiku-4-5");
    client.chat(&ChatRequest::user("hi")).await.unwrap();
    assert_eq!(last_body(&server).await["max_tokens"], 512);
}

#[tokio::test]
async fn the_key_never_appears_in_debug_output_or_errors() {
    let builder = AnthropicClient::builder()
        .model("claude-sonnet-4-5")
        .api_key(KEY);
    assert!(!format!("{builder:?}").contains(KEY));

    let server = serve(401, fixture("anthropic/error_401.json"), "application/json").await;
    let client = AnthropicClient::builder()
        .model("claude-sonnet-4-5")
        .api_key(KEY)
        .base_url(server.uri())
        .build()
        .unwrap();
    let debug = format!("{client:?}");
    assert!(!debug.contains(KEY), "{debug}");
    assert!(debug.contains("claude-sonnet-4-5"));

    let err = client.chat(&ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Authentication);
    assert!(!err.to_string().contains(KEY));
    assert!(!format!("{err:?}").contains(KEY));

    let err = client
        .chat_stream(&ChatRequest::user("hi"))
        .await
        .unwrap_err();
    assert!(!format!("{err:?} {err}").contains(KEY));

    // A connection failure names no key either.
    let down = AnthropicClient::builder()
        .model("claude-sonnet-4-5")
        .api_key(KEY)
        .base_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    let err = down.chat(&ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert!(!format!("{err:?} {err}").contains(KEY));
}
