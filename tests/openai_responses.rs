//! The OpenAI Responses API over real sockets: fixtures written from OpenAI's API reference
//! replayed by wiremock, and the request bodies checked field by field.

use futures_util::StreamExt;
use serde_json::{json, Value};
use switchboard::providers::openai_responses::OpenAiResponsesClient;
use switchboard::types::{Media, ReasoningEffort, ResponseFormat, ToolCall};
use switchboard::{
    ChatClient, ChatRequest, ChatResponse, Error, ErrorKind, FinishKind, Message, Part, Role,
    StreamEvent, ToolChoice, ToolSpec,
};
use switchboard_testkit::fixture;
use switchboard_testkit::wiremock::matchers::{method, path};
use switchboard_testkit::wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-test-Rsp4nS3sK3y9w";

async fn serve(status: u16, name: &str) -> MockServer {
    let server = MockServer::start().await;
    let mime = if name.ends_with(".sse") {
        "text/event-stream"
    } else {
        "application/json"
    };
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(ResponseTemplate::new(status).set_body_raw(fixture(name), mime))
        .mount(&server)
        .await;
    server
}

fn client(server: &MockServer) -> OpenAiResponsesClient {
    OpenAiResponsesClient::builder()
        .model("gpt-5-mini")
        .api_key(KEY)
        .base_url(format!("{}/v1", server.uri()))
        .build()
        .unwrap()
}

async fn chat(name: &str) -> ChatResponse {
    let server = serve(200, &format!("openai-responses/{name}")).await;
    client(&server)
        .chat(&ChatRequest::user("hello"))
        .await
        .unwrap()
}

async fn stream(name: &str) -> Vec<Result<StreamEvent, Error>> {
    let server = serve(200, &format!("openai-responses/{name}")).await;
    client(&server)
        .chat_stream(&ChatRequest::user("hello"))
        .await
        .unwrap()
        .collect()
        .await
}

fn done(events: &[Result<StreamEvent, Error>]) -> ChatResponse {
    match events.last() {
        Some(Ok(StreamEvent::Done { response })) => (**response).clone(),
        other => panic!("expected Done last, got {other:?}"),
    }
}

fn stream_error(events: &[Result<StreamEvent, Error>]) -> &Error {
    match events.last() {
        Some(Err(err)) => err,
        other => panic!("expected an error last, got {other:?}"),
    }
}

async fn sent(server: &MockServer) -> Value {
    let requests = server.received_requests().await.unwrap();
    serde_json::from_slice(&requests.last().unwrap().body).unwrap()
}

// ---- responses -------------------------------------------------------------------------

#[tokio::test]
async fn text_reply_gives_text_usage_finish_and_ids() {
    let r = chat("response_text.json").await;
    assert_eq!(r.text(), "The capital of France is Paris.");
    assert_eq!(r.provider, "openai-responses");
    assert_eq!(r.model, "gpt-5-mini");
    assert_eq!(r.served_model.as_deref(), Some("gpt-5-mini-2025-08-07"));
    assert_eq!(
        r.response_id.as_deref(),
        Some("resp_68a1c2e4b7f08190a3d5e9c1f2b4a6d80c7e5f3a1b9d2e4f")
    );
    assert_eq!(
        (
            r.usage.input_tokens,
            r.usage.output_tokens,
            r.usage.total_tokens
        ),
        (1290, 18, 1308)
    );
    assert_eq!(r.usage.cache_read_tokens, Some(1152));
    assert_eq!(r.usage.reasoning_tokens, Some(0));
    assert_eq!(r.finish_reason.kind, FinishKind::Stop);
    assert_eq!(r.finish_reason.raw.as_deref(), Some("completed"));
    assert_eq!(r.attempts().len(), 1);
}

#[tokio::test]
async fn function_call_becomes_a_tool_call_keyed_by_call_id() {
    let r = chat("response_function_call.json").await;
    let calls = r.tool_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "call_Xq7Lm2pR9sT4vW1yZ3bN5cD8");
    assert_eq!(calls[0].name, "get_weather");
    assert_eq!(calls[0].arguments, json!({"location": "Paris, France"}));
    assert_eq!(r.finish_reason.kind, FinishKind::ToolCalls);
}

#[tokio::test]
async fn reasoning_item_becomes_thinking_with_id_and_encrypted_content() {
    let r = chat("response_reasoning.json").await;
    let thinking = r.thinking();
    assert_eq!(thinking.len(), 1);
    let t = thinking[0];
    assert!(t.text.contains("Comparing the two numbers") && t.text.contains("\n**Answering**"));
    assert_eq!(
        t.signature.as_deref(),
        Some("rs_68a1c3a17e448190a9c1e3f5b7d9a2c40d1e3f5a7c9b2d4e")
    );
    assert!(t.redacted.as_deref().unwrap().starts_with("gAAAAAB"));
    assert_eq!(t.origin.as_deref(), Some("openai-responses"));
    assert_eq!(r.text(), "9.9 is larger than 9.11.");
    assert_eq!(r.usage.reasoning_tokens, Some(384));
}

#[tokio::test]
async fn incomplete_for_max_output_tokens_finishes_with_length() {
    let r = chat("response_incomplete.json").await;
    assert_eq!(r.finish_reason.kind, FinishKind::Length);
    assert_eq!(r.finish_reason.raw.as_deref(), Some("max_output_tokens"));
    assert_eq!(r.text(), "The history of the Roman Empire spans");
}

#[tokio::test]
async fn refusal_becomes_the_text_with_a_refusal_finish() {
    let r = chat("response_refusal.json").await;
    assert_eq!(r.text(), "I'm sorry, I can't assist with that request.");
    assert_eq!(r.finish_reason.kind, FinishKind::Refusal);
}

#[tokio::test]
async fn a_failed_response_is_a_typed_provider_error() {
    let server = serve(200, "openai-responses/response_failed.json").await;
    let err = client(&server)
        .chat(&ChatRequest::user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.code(), Some("server_error"));
    assert!(err.is_recoverable());
    assert_eq!(err.provider(), Some("openai-responses"));
}

#[tokio::test]
async fn http_errors_use_the_openai_error_mapping() {
    for (status, name, kind) in [
        (
            429,
            "openai/error_429_insufficient_quota.json",
            ErrorKind::QuotaExceeded,
        ),
        (
            429,
            "openai/error_429_rate_limit.json",
            ErrorKind::RateLimited,
        ),
        (
            400,
            "openai/error_400_context_length.json",
            ErrorKind::ContextLength,
        ),
        (401, "openai/error_401.json", ErrorKind::Authentication),
        (503, "openai/error_503.json", ErrorKind::Server),
    ] {
        let server = serve(status, name).await;
        let err = client(&server)
            .chat(&ChatRequest::user("hi"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{name}");
        assert_eq!(err.status(), Some(status), "{name}");
        if kind == ErrorKind::Authentication {
            assert!(err.fix().unwrap().contains("OPENAI_API_KEY"), "{err}");
        }
    }
}

// ---- streams ---------------------------------------------------------------------------

#[tokio::test]
async fn streamed_text_folds_into_the_same_response_as_the_non_streaming_call() {
    let events = stream("stream_text.sse").await;
    assert!(
        matches!(&events[0], Ok(StreamEvent::Started { response_id: Some(id), .. }) if id.starts_with("resp_"))
    );
    let deltas: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Ok(StreamEvent::TextDelta { text }) => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(deltas, ["The capital", " of France", " is Paris", "."]);
    let streamed = done(&events);
    let whole = chat("response_text.json").await;
    assert_eq!(streamed.parts, whole.parts);
    assert_eq!(streamed.usage, whole.usage);
    assert_eq!(streamed.finish_reason, whole.finish_reason);
    assert_eq!(streamed.served_model, whole.served_model);
}

#[tokio::test]
async fn streamed_function_call_is_announced_then_its_arguments_arrive() {
    let events = stream("stream_function_call.sse").await;
    assert!(events.iter().any(|e| matches!(e,
        Ok(StreamEvent::ToolCallStart { index: 0, id, name, .. })
            if id == "call_Xq7Lm2pR9sT4vW1yZ3bN5cD8" && name == "get_weather")));
    let r = done(&events);
    assert_eq!(
        r.tool_calls()[0].arguments,
        json!({"location": "Paris, France"})
    );
    assert_eq!(r.finish_reason.kind, FinishKind::ToolCalls);
    assert_eq!(r.usage.total_tokens, 314);
}

#[tokio::test]
async fn streamed_reasoning_summaries_are_thinking_and_the_item_is_kept_for_the_next_turn() {
    let server = serve(200, "openai-responses/stream_reasoning.sse").await;
    let client = client(&server);
    let req = ChatRequest::user("Which is larger, 9.11 or 9.9?")
        .with_reasoning_effort(ReasoningEffort::Medium);
    let events: Vec<_> = client.chat_stream(&req).await.unwrap().collect().await;
    let thinking: String = events
        .iter()
        .filter_map(|e| match e {
            Ok(StreamEvent::ThinkingDelta { text }) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(thinking, "Compare decimals.\n9.9 wins.");
    let first = done(&events);
    assert_eq!(first.text(), "9.9 is larger.");
    assert_eq!(first.usage.reasoning_tokens, Some(192));

    let body = sent(&server).await;
    assert_eq!(body["reasoning"], json!({"effort": "medium"}));
    assert_eq!(body["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(body["store"], false);

    // The next turn sends the reasoning item back, whole.
    let mut messages = req.messages.clone();
    messages.push(first.to_message());
    messages.push(Message::user("And 9.11 or 9.2?"));
    let next = ChatRequest::new(messages).with_reasoning_effort(ReasoningEffort::Medium);
    let _ = client
        .chat_stream(&next)
        .await
        .unwrap()
        .collect_response()
        .await;
    let body = sent(&server).await;
    let input = body["input"].as_array().unwrap();
    assert_eq!(input.len(), 4, "{input:?}");
    assert_eq!(input[1]["type"], "reasoning");
    assert_eq!(
        input[1]["id"],
        "rs_68a1c7a2d4f88190b5c7e9a1d3f5b7c90d7e9f1a3c5b7d9e"
    );
    assert!(input[1]["encrypted_content"]
        .as_str()
        .unwrap()
        .starts_with("gAAAAAB"));
    assert_eq!(
        input[1]["summary"],
        json!([{"type": "summary_text", "text": "Compare decimals.\n9.9 wins."}])
    );
    assert_eq!(
        input[2],
        json!({"type": "message", "role": "assistant",
               "content": [{"type": "output_text", "text": "9.9 is larger.", "annotations": []}]})
    );
}

#[tokio::test]
async fn a_stream_that_fails_after_created_before_content_keeps_the_original_kind() {
    let events = stream("stream_failed_before_content.sse").await;
    assert!(matches!(&events[0], Ok(StreamEvent::Started { .. })));
    let err = stream_error(&events);
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.code(), Some("server_error"));
    assert!(err.partial().is_none());
    assert!(err.is_recoverable());
}

#[tokio::test]
async fn an_error_event_after_content_is_an_interruption_with_the_partial_text() {
    let events = stream("stream_error_after_content.sse").await;
    let err = stream_error(&events);
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(err.partial().unwrap().text(), "Once upon a time");
    assert_eq!(err.code(), Some("rate_limit_exceeded"));
    let cause = std::error::Error::source(err)
        .and_then(|s| s.downcast_ref::<Error>())
        .unwrap();
    assert_eq!(cause.kind(), ErrorKind::RateLimited);
}

#[tokio::test]
async fn an_error_event_for_exhausted_quota_is_quota_exceeded() {
    let events = stream("stream_error_quota.sse").await;
    let err = stream_error(&events);
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(err.code(), Some("insufficient_quota"));
}

#[tokio::test]
async fn an_incomplete_stream_finishes_with_length() {
    let r = done(&stream("stream_incomplete.sse").await);
    assert_eq!(r.finish_reason.kind, FinishKind::Length);
    assert_eq!(r.usage.output_tokens, 16);
}

#[tokio::test]
async fn a_cut_stream_is_an_interruption_not_a_short_answer() {
    let full = String::from_utf8(fixture("openai-responses/stream_text.sse")).unwrap();
    let cut: String = full
        .split("\n\n")
        .filter(|e| !e.contains("response.completed"))
        .map(|e| format!("{e}\n\n"))
        .collect();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(cut, "text/event-stream"))
        .mount(&server)
        .await;
    let err = client(&server)
        .chat_stream(&ChatRequest::user("hi"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(
        err.partial().unwrap().text(),
        "The capital of France is Paris."
    );
}

// ---- request bodies --------------------------------------------------------------------

#[tokio::test]
async fn requests_carry_a_bearer_key_and_the_documented_shapes() {
    let server = serve(200, "openai-responses/response_text.json").await;
    let call = ToolCall {
        id: "call_1".into(),
        name: "get_weather".into(),
        arguments: json!({"location": "Paris"}),
        signature: None,
    };
    let req = ChatRequest::new(vec![
        Message::system("Be brief."),
        Message::new(
            Role::User,
            vec![
                Part::text("What is in this picture, and the weather there?"),
                Part::Image(Media::url("image/png", "https://example.com/paris.png")),
                Part::Document(Media::bytes("application/pdf", b"%PDF-1.4".to_vec())),
            ],
        ),
        Message::new(
            Role::Assistant,
            vec![Part::text("Let me check."), Part::ToolCall(call)],
        ),
        Message::tool_result("call_1", "{\"temp_c\":18}"),
    ])
    .with_max_tokens(300)
    .with_temperature(0.5)
    .with_top_p(0.9)
    .with_tool(ToolSpec::new(
        "get_weather",
        "Current weather",
        json!({"type": "object", "properties": {"location": {"type": "string"}}}),
    ))
    .with_tool_choice(ToolChoice::Tool("get_weather".into()))
    .with_response_format(ResponseFormat::JsonSchema {
        name: "answer".into(),
        schema: json!({"type": "object"}),
        strict: true,
    });
    client(&server).chat(&req).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests[0].headers["authorization"],
        format!("Bearer {KEY}").as_str()
    );
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["model"], "gpt-5-mini");
    assert_eq!(body["instructions"], "Be brief.");
    assert_eq!(body["max_output_tokens"], 300);
    assert_eq!(body["temperature"], 0.5);
    assert!((body["top_p"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    assert_eq!(body["store"], false);
    assert!(body.get("include").is_none());
    assert!(body.get("stream").is_none());
    let input = body["input"].as_array().unwrap();
    assert_eq!(input[0]["role"], "user");
    let content = input[0]["content"].as_array().unwrap();
    assert_eq!(content[0]["type"], "input_text");
    assert_eq!(
        content[1],
        json!({"type": "input_image", "image_url": "https://example.com/paris.png", "detail": "auto"})
    );
    assert_eq!(content[2]["type"], "input_file");
    assert!(content[2]["file_data"]
        .as_str()
        .unwrap()
        .starts_with("data:application/pdf;base64,"));
    assert_eq!(input[1]["content"][0]["type"], "output_text");
    assert_eq!(
        input[2],
        json!({"type": "function_call", "call_id": "call_1", "name": "get_weather",
               "arguments": "{\"location\":\"Paris\"}"})
    );
    assert_eq!(
        input[3],
        json!({"type": "function_call_output", "call_id": "call_1", "output": "{\"temp_c\":18}"})
    );
    assert_eq!(
        body["tools"][0],
        json!({"type": "function", "name": "get_weather", "description": "Current weather",
               "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
               "strict": false})
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "function", "name": "get_weather"})
    );
    assert_eq!(
        body["text"],
        json!({"format": {"type": "json_schema", "name": "answer",
                          "schema": {"type": "object"}, "strict": true}})
    );
}

#[tokio::test]
async fn json_mode_extra_fields_and_streaming_flags() {
    let server = serve(200, "openai-responses/stream_text.sse").await;
    let mut req = ChatRequest::user("hi").with_response_format(ResponseFormat::Json);
    req.extra.insert("store".into(), json!(true));
    req.extra
        .insert("previous_response_id".into(), json!("resp_1"));
    req.extra.insert("temperature".into(), Value::Null);
    client(&server)
        .chat_stream(&req.with_temperature(0.3))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    let body = sent(&server).await;
    assert_eq!(body["stream"], true);
    assert_eq!(body["text"], json!({"format": {"type": "json_object"}}));
    assert!(body["instructions"].as_str().unwrap().contains("JSON"));
    assert_eq!(body["store"], true);
    assert_eq!(body["previous_response_id"], "resp_1");
    assert!(body.get("temperature").is_none());
}

#[tokio::test]
async fn audio_input_is_refused_before_anything_is_sent() {
    let server = serve(200, "openai-responses/response_text.json").await;
    let req = ChatRequest::new(vec![Message::new(
        Role::User,
        vec![Part::Audio(Media::bytes("audio/wav", vec![1, 2, 3]))],
    )]);
    let err = client(&server).chat(&req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[test]
fn the_key_never_shows_in_debug() {
    let client = OpenAiResponsesClient::builder()
        .model("m")
        .api_key(KEY)
        .build()
        .unwrap();
    assert!(!format!("{client:?}").contains(KEY));
    let err = OpenAiResponsesClient::builder()
        .model("m")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}
