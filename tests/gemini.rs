//! The Gemini protocol over a real local socket: fixtures from the API docs replayed by
//! wiremock, and the request bodies the client sends.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use switchboard::types::{
    Media, Part, ReasoningEffort, ResponseFormat, Thinking, ToolCall, ToolChoice, ToolResult,
    ToolSpec,
};
use switchboard::{
    ChatClient, ChatRequest, EmbedRequest, ErrorKind, FinishKind, GeminiClient, Message, Outcome,
    Role, StreamEvent,
};
use switchboard_testkit::wiremock::matchers::{method, path, query_param};
use switchboard_testkit::wiremock::{Mock, MockServer, Request, ResponseTemplate};
use switchboard_testkit::{fixture, fixture_json};

const KEY: &str = "AIzaSy-test-key-0123456789";
const MODEL: &str = "gemini-2.5-flash";
const GENERATE: &str = "/v1beta/models/gemini-2.5-flash:generateContent";
const STREAM: &str = "/v1beta/models/gemini-2.5-flash:streamGenerateContent";

fn client(server: &MockServer) -> GeminiClient {
    GeminiClient::builder()
        .model(MODEL)
        .api_key(KEY)
        .base_url(format!("{}/", server.uri()))
        .build()
        .unwrap()
}

async fn replying(route: &str, status: u16, body: Vec<u8>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(
            ResponseTemplate::new(status).set_body_raw(body, "application/json; charset=UTF-8"),
        )
        .mount(&server)
        .await;
    server
}

async fn generating(name: &str) -> MockServer {
    replying(GENERATE, 200, fixture(&format!("gemini/{name}"))).await
}

async fn streaming(body: Vec<u8>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(STREAM))
        .and(query_param("alt", "sse"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .mount(&server)
        .await;
    server
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

async fn sent_body(server: &MockServer) -> Value {
    let all = requests(server).await;
    serde_json::from_slice(&all.last().expect("a request was sent").body).unwrap()
}

/// Sends `req` to a server answering with a plain text reply and returns the body sent.
async fn body_for(req: &ChatRequest) -> Value {
    let server = generating("generate_text.json").await;
    client(&server).chat(req).await.unwrap();
    sent_body(&server).await
}

fn tool_call(id: &str, name: &str, args: Value, signature: Option<&str>) -> Part {
    Part::ToolCall(ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: args,
        signature: signature.map(str::to_owned),
    })
}

// ---- responses ---------------------------------------------------------------------------

#[tokio::test]
async fn text_answer_reports_usage_with_thoughts_and_cached_tokens() {
    let server = generating("generate_text.json").await;
    let r = client(&server)
        .chat(&ChatRequest::user("Why infrared?"))
        .await
        .unwrap();
    assert!(r
        .text()
        .starts_with("The James Webb Space Telescope observes"));
    assert_eq!(r.provider, "gemini");
    assert_eq!(r.model, MODEL);
    assert_eq!(r.served_model.as_deref(), Some("gemini-2.5-flash"));
    assert_eq!(r.response_id.as_deref(), Some("mN8daPqLGcyx1e8P5vKm4Qk"));
    assert_eq!(r.finish_reason.kind, FinishKind::Stop);
    assert_eq!(r.finish_reason.raw.as_deref(), Some("STOP"));
    assert_eq!(r.usage.input_tokens, 2150);
    assert_eq!(r.usage.output_tokens, 48 + 212);
    assert_eq!(r.usage.reasoning_tokens, Some(212));
    assert_eq!(r.usage.cache_read_tokens, Some(2048));
    assert_eq!(r.usage.total_tokens, 2410);
    assert_eq!(r.attempts().len(), 1);
    assert!(r.request_id.starts_with("req_"));
    assert!(r.raw.is_none());
}

#[tokio::test]
async fn keep_raw_keeps_the_reply_json() {
    let server = generating("generate_text.json").await;
    let client = GeminiClient::builder()
        .model(MODEL)
        .api_key(KEY)
        .base_url(server.uri())
        .keep_raw(true)
        .build()
        .unwrap();
    let r = client.chat(&ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.raw, Some(fixture_json("gemini/generate_text.json")));
}

#[tokio::test]
async fn function_call_becomes_a_tool_call_with_a_synthesized_id() {
    let server = generating("generate_function_call.json").await;
    let r = client(&server)
        .chat(&ChatRequest::user("Weather in Boston?"))
        .await
        .unwrap();
    let calls = r.tool_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "call_0");
    assert_eq!(calls[0].name, "get_weather");
    assert_eq!(
        calls[0].arguments,
        json!({"location": "Boston, MA", "unit": "celsius"})
    );
    assert_eq!(r.finish_reason.kind, FinishKind::ToolCalls);
    assert_eq!(r.finish_reason.raw.as_deref(), Some("STOP"));
    assert_eq!(r.usage.output_tokens, 21 + 64);
}

#[tokio::test]
async fn parallel_function_calls_keep_order_and_the_first_calls_signature() {
    let server = generating("generate_parallel_function_calls.json").await;
    let r = client(&server)
        .chat(&ChatRequest::user("Paris and London?"))
        .await
        .unwrap();
    let calls = r.tool_calls();
    let ids: Vec<_> = calls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["call_0", "call_1"]);
    assert_eq!(calls[0].arguments, json!({"location": "Paris"}));
    assert_eq!(calls[1].arguments, json!({"location": "London"}));
    assert!(calls[0]
        .signature
        .as_deref()
        .unwrap()
        .starts_with("CiwBVKhc"));
    assert_eq!(calls[1].signature, None);
    assert_eq!(r.finish_reason.kind, FinishKind::ToolCalls);
}

#[tokio::test]
async fn thinking_answer_keeps_its_signature_and_sends_it_back_next_turn() {
    let server = generating("generate_thinking.json").await;
    let client = client(&server);
    let first = ChatRequest::user("Sum 1..100?").with_reasoning_effort(ReasoningEffort::Low);
    let r = client.chat(&first).await.unwrap();
    assert_eq!(
        r.text(),
        "The sum of the integers from 1 to 100 is **5050**."
    );
    assert!(!r.text().contains("Gauss"));
    let thinking = r.thinking();
    assert_eq!(thinking.len(), 2);
    assert!(thinking[0].text.starts_with("**Calculating the sum**"));
    assert_eq!(thinking[0].origin.as_deref(), Some("gemini"));
    let signature = thinking[1].signature.clone().unwrap();
    assert!(signature.starts_with("Cs4BAdHtim9p"));
    assert_eq!(r.usage.reasoning_tokens, Some(389));
    assert_eq!(r.usage.output_tokens, 16 + 389);

    let next = ChatRequest::new(vec![
        Message::user("Sum 1..100?"),
        r.to_message(),
        Message::user("And 1..1000?"),
    ]);
    client.chat(&next).await.unwrap();
    let body = sent_body(&server).await;
    let model_turn = &body["contents"][1];
    assert_eq!(model_turn["role"], "model");
    let parts = model_turn["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["thought"], true);
    assert!(parts[0].get("thoughtSignature").is_none());
    assert_eq!(
        parts[1]["text"],
        "The sum of the integers from 1 to 100 is **5050**."
    );
    assert_eq!(parts[1]["thoughtSignature"], signature.as_str());
}

#[tokio::test]
async fn tool_call_signatures_go_back_on_their_calls() {
    let server = generating("generate_parallel_function_calls.json").await;
    let client = client(&server);
    let r = client
        .chat(&ChatRequest::user("Paris and London?"))
        .await
        .unwrap();
    let calls: Vec<ToolCall> = r.tool_calls().into_iter().cloned().collect();
    let next = ChatRequest::new(vec![
        Message::user("Paris and London?"),
        r.to_message(),
        Message::tool_result(&calls[0].id, r#"{"temp_c": 18}"#),
        Message::tool_result(&calls[1].id, "rainy"),
    ]);
    client.chat(&next).await.unwrap();
    let body = sent_body(&server).await;
    let model_parts = &body["contents"][1]["parts"];
    assert_eq!(
        model_parts[0]["thoughtSignature"],
        calls[0].signature.clone().unwrap()
    );
    assert!(model_parts[1].get("thoughtSignature").is_none());
    let results = &body["contents"][2];
    assert_eq!(results["role"], "user");
    assert_eq!(
        results["parts"][0]["functionResponse"],
        json!({"name": "get_weather", "response": {"temp_c": 18}})
    );
    assert_eq!(
        results["parts"][1]["functionResponse"]["response"],
        json!({"result": "rainy"})
    );
}

#[tokio::test]
async fn safety_finish_is_a_content_filter_response() {
    let server = generating("generate_finish_safety.json").await;
    let r = client(&server).chat(&ChatRequest::user("x")).await.unwrap();
    assert_eq!(r.finish_reason.kind, FinishKind::ContentFilter);
    assert_eq!(r.finish_reason.raw.as_deref(), Some("SAFETY"));
    assert_eq!(r.text(), "");
    assert_eq!(r.usage.output_tokens, 143);
}

#[tokio::test]
async fn recitation_finish_is_a_content_filter_response() {
    let server = generating("generate_finish_recitation.json").await;
    let r = client(&server).chat(&ChatRequest::user("x")).await.unwrap();
    assert_eq!(r.finish_reason.kind, FinishKind::ContentFilter);
    assert_eq!(r.finish_reason.raw.as_deref(), Some("RECITATION"));
}

#[tokio::test]
async fn max_tokens_finish_is_length() {
    let server = generating("generate_max_tokens.json").await;
    let r = client(&server).chat(&ChatRequest::user("x")).await.unwrap();
    assert_eq!(r.finish_reason.kind, FinishKind::Length);
    assert!(r.text().ends_with("severe fiscal crisis"));
}

#[tokio::test]
async fn blocked_prompt_is_a_content_filtered_error_in_generate_and_stream() {
    let server = generating("generate_prompt_blocked.json").await;
    let err = client(&server)
        .chat(&ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContentFiltered);
    assert!(err.message().contains("SAFETY"), "{err}");
    assert_eq!(err.provider(), Some("gemini"));
    assert!(err.is_recoverable());

    let chunk =
        serde_json::to_string(&fixture_json("gemini/generate_prompt_blocked.json")).unwrap();
    let server = streaming(format!("data: {chunk}\r\n\r\n").into_bytes()).await;
    let stream = client(&server)
        .chat_stream(&ChatRequest::user("x"))
        .await
        .unwrap();
    let err = stream.collect_response().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContentFiltered);
    assert!(err.message().contains("SAFETY"), "{err}");
    assert!(err.is_recoverable());
}

// ---- streams -----------------------------------------------------------------------------

/// Folds the chunks of an SSE fixture into the one `generateContent` reply they add up to.
fn merged_reply(sse: &[u8]) -> Value {
    let text = String::from_utf8(sse.to_vec()).unwrap();
    let chunks: Vec<Value> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let last = chunks.last().unwrap().clone();
    let all_text: String = chunks
        .iter()
        .map(|c| {
            c["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    let mut reply = last;
    reply["candidates"][0]["content"]["parts"] = json!([{ "text": all_text }]);
    reply
}

#[tokio::test]
async fn stream_text_with_crlf_folds_into_the_same_response_as_generate() {
    let sse = fixture("gemini/stream_text.sse");
    let server = streaming(sse.clone()).await;
    let streamed = client(&server)
        .chat_stream(&ChatRequest::user("What is gravity?"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    let server = replying(
        GENERATE,
        200,
        serde_json::to_vec(&merged_reply(&sse)).unwrap(),
    )
    .await;
    let generated = client(&server)
        .chat(&ChatRequest::user("What is gravity?"))
        .await
        .unwrap();
    assert!(streamed.text().starts_with("Gravity is the force"));
    assert_eq!(streamed.parts, generated.parts);
    assert_eq!(streamed.usage, generated.usage);
    assert_eq!(streamed.finish_reason, generated.finish_reason);
    assert_eq!(streamed.response_id, generated.response_id);
    assert_eq!(streamed.served_model, generated.served_model);
    assert_eq!(streamed.usage.input_tokens, 9);
    assert_eq!(streamed.usage.output_tokens, 38);
}

#[tokio::test]
async fn stream_usage_takes_the_final_chunks_counts_even_when_smaller() {
    let server = streaming(fixture("gemini/stream_usage_revised.sse")).await;
    let r = client(&server)
        .chat_stream(&ChatRequest::user("Why are there tides?"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(r.text(), "Tides follow the Moon.");
    // Intermediate chunks said 12 prompt tokens; the last chunk's 10 is the answer's count.
    assert_eq!(
        (
            r.usage.input_tokens,
            r.usage.output_tokens,
            r.usage.total_tokens
        ),
        (10, 5, 15)
    );
}

#[tokio::test]
async fn stream_events_arrive_in_order_with_one_start_and_usage_per_chunk() {
    let server = streaming(fixture("gemini/stream_text.sse")).await;
    let events: Vec<StreamEvent> = client(&server)
        .chat_stream(&ChatRequest::user("x"))
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    let starts = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Started { .. }))
        .count();
    let usages = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Usage { .. }))
        .count();
    assert_eq!((starts, usages), (1, 3));
    assert!(matches!(events[0], StreamEvent::Started { .. }));
    assert!(matches!(events.last(), Some(StreamEvent::Done { .. })));
}

#[tokio::test]
async fn stream_function_call_yields_one_tool_call_with_whole_arguments() {
    let server = streaming(fixture("gemini/stream_function_call.sse")).await;
    let events: Vec<StreamEvent> = client(&server)
        .chat_stream(&ChatRequest::user("Weather in Tokyo?"))
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    let start = events
        .iter()
        .find_map(|e| match e {
            StreamEvent::ToolCallStart {
                index,
                id,
                name,
                signature,
            } => Some((*index, id.clone(), name.clone(), signature.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (start.0, start.1.as_str(), start.2.as_str()),
        (0, "call_0", "get_weather")
    );
    assert!(start.3.unwrap().starts_with("CiwBVKhc"));
    let Some(StreamEvent::Done { response }) = events.last() else {
        panic!("no Done event");
    };
    let calls = response.tool_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].arguments,
        json!({"location": "Tokyo", "unit": "celsius"})
    );
    assert_eq!(response.finish_reason.kind, FinishKind::ToolCalls);
    assert_eq!(response.usage.output_tokens, 19 + 71);
}

#[tokio::test]
async fn stream_thinking_never_leaks_into_text() {
    let server = streaming(fixture("gemini/stream_thinking.sse")).await;
    let r = client(&server)
        .chat_stream(&ChatRequest::user("Next in 2, 6, 12, 20, 30?"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(
        r.text(),
        "The next number is **42**: each term is n × (n + 1), so the sixth term is 6 × 7 = 42."
    );
    let thinking = r.thinking();
    assert!(thinking[0].text.starts_with("**Identifying the pattern**"));
    assert!(thinking[0].text.contains("**Computing the next term**"));
    assert_eq!(thinking[0].origin.as_deref(), Some("gemini"));
    let signed = thinking
        .iter()
        .filter_map(|t| t.signature.as_deref())
        .collect::<Vec<_>>();
    assert_eq!(signed.len(), 1);
    assert!(signed[0].starts_with("Cs4BAdHtim9p"));
    assert_eq!(r.usage.reasoning_tokens, Some(388));
    assert_eq!(r.usage.output_tokens, 29 + 388);
    assert_eq!(r.usage.total_tokens, 431);

    // Sent back, the streamed signature rides on an empty final text part, as it came.
    let server = generating("generate_text.json").await;
    let next = ChatRequest::new(vec![
        Message::user("q"),
        r.to_message(),
        Message::user("more"),
    ]);
    client(&server).chat(&next).await.unwrap();
    let body = sent_body(&server).await;
    let parts = body["contents"][1]["parts"].as_array().unwrap();
    assert_eq!(parts[0]["thought"], true);
    assert_eq!(parts.last().unwrap()["text"], "");
    assert_eq!(parts.last().unwrap()["thoughtSignature"], signed[0]);
}

#[tokio::test]
async fn cut_stream_is_stream_interrupted_with_the_partial_text() {
    let server = streaming(fixture("gemini/stream_cut.sse")).await;
    let err = client(&server)
        .chat_stream(&ChatRequest::user("Sleep tips?"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    let partial = err.partial().unwrap();
    assert!(partial
        .text()
        .starts_with("Here are three tips for better sleep"));
}

#[tokio::test]
async fn error_object_in_a_stream_is_a_typed_provider_error() {
    let body = "data: {\"error\": {\"code\": 503, \"message\": \"The model is overloaded. Please try again later.\", \"status\": \"UNAVAILABLE\"}}\r\n\r\n";
    let server = streaming(body.as_bytes().to_vec()).await;
    let err = client(&server)
        .chat_stream(&ChatRequest::user("x"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    assert!(err.is_recoverable());

    let mut sse = fixture("gemini/stream_text.sse");
    sse.truncate(sse.len() / 2);
    let cut_at = sse.iter().rposition(|&b| b == b'\n').unwrap() + 1;
    sse.truncate(cut_at);
    sse.extend_from_slice(body.as_bytes());
    let server = streaming(sse).await;
    let err = client(&server)
        .chat_stream(&ChatRequest::user("x"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    assert!(err.partial().unwrap().text().starts_with("Gravity is"));
}

// ---- errors ------------------------------------------------------------------------------

#[tokio::test]
async fn every_error_fixture_maps_to_its_kind_and_status() {
    let table = [
        (
            "error_400.json",
            400,
            ErrorKind::InvalidRequest,
            "INVALID_ARGUMENT",
        ),
        (
            "error_400_api_key_invalid.json",
            400,
            ErrorKind::Authentication,
            "INVALID_ARGUMENT",
        ),
        (
            "error_403.json",
            403,
            ErrorKind::PermissionDenied,
            "PERMISSION_DENIED",
        ),
        ("error_404.json", 404, ErrorKind::NotFound, "NOT_FOUND"),
        (
            "error_429.json",
            429,
            ErrorKind::RateLimited,
            "RESOURCE_EXHAUSTED",
        ),
        ("error_500.json", 500, ErrorKind::Server, "INTERNAL"),
        ("error_503.json", 503, ErrorKind::Overloaded, "UNAVAILABLE"),
    ];
    for (name, status, kind, code) in table {
        let server = replying(GENERATE, status, fixture(&format!("gemini/{name}"))).await;
        let err = client(&server)
            .chat(&ChatRequest::user("x"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{name}: {err}");
        assert_eq!(err.status(), Some(status), "{name}");
        assert_eq!(err.code(), Some(code), "{name}");
        assert_eq!(err.provider(), Some("gemini"), "{name}");
        assert_eq!(err.model(), Some(MODEL), "{name}");
        assert!(err.fix().is_some(), "{name}");
        assert!(err.is_recoverable(), "{name}");
        assert!(!err.message().ends_with('\n'), "{name}");
    }
}

#[tokio::test]
async fn deadline_exceeded_is_a_server_error_like_every_504() {
    let server = replying(GENERATE, 504, fixture("gemini/error_504.json")).await;
    let err = client(&server)
        .chat(&ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.status(), Some(504));
    assert_eq!(err.code(), Some("DEADLINE_EXCEEDED"));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn rate_limit_waits_the_retry_delay_from_retry_info() {
    let server = replying(GENERATE, 429, fixture("gemini/error_429.json")).await;
    let err = client(&server)
        .chat(&ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(37)));

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "5")
                .set_body_raw(fixture("gemini/error_429.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let err = client(&server)
        .chat(&ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));
}

#[tokio::test]
async fn invalid_api_key_is_authentication_even_on_400() {
    let server = replying(
        GENERATE,
        400,
        fixture("gemini/error_400_api_key_invalid.json"),
    )
    .await;
    let err = client(&server)
        .chat(&ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Authentication);
    assert_eq!(err.status(), Some(400));
    assert!(err.fix().unwrap().contains("GEMINI_API_KEY"));
}

#[tokio::test]
async fn stream_http_errors_map_like_generate_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(STREAM))
        .respond_with(
            ResponseTemplate::new(429)
                .set_body_raw(fixture("gemini/error_429.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let err = client(&server)
        .chat_stream(&ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(37)));
}

#[tokio::test]
async fn key_never_appears_in_debug_or_errors() {
    let server = replying(
        GENERATE,
        400,
        fixture("gemini/error_400_api_key_invalid.json"),
    )
    .await;
    let client = client(&server);
    assert!(!format!("{client:?}").contains(KEY));
    let builder = GeminiClient::builder().model(MODEL).api_key(KEY);
    assert!(!format!("{builder:?}").contains(KEY));
    let err = client.chat(&ChatRequest::user("x")).await.unwrap_err();
    assert!(!err.to_string().contains(KEY));
    assert!(!format!("{err:?}").contains(KEY));
    // A transport failure names neither the key nor the URL's secrets.
    let dead = GeminiClient::builder()
        .model(MODEL)
        .api_key(KEY)
        .base_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    let err = dead.chat(&ChatRequest::user("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert!(!format!("{err} {err:?}").contains(KEY));
}

#[test]
fn builder_requires_a_model_and_a_key_naming_the_env_vars() {
    let err = GeminiClient::builder().api_key(KEY).build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let err = GeminiClient::builder().model(MODEL).build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let text = err.to_string();
    for var in [
        "SWITCHBOARD_GEMINI_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
    ] {
        assert!(text.contains(var), "{text}");
    }
    let err = GeminiClient::builder()
        .model(MODEL)
        .api_key("  ")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

// ---- request bodies ----------------------------------------------------------------------

#[tokio::test]
async fn key_travels_in_a_header_never_in_the_url() {
    let server = generating("generate_text.json").await;
    client(&server)
        .chat(&ChatRequest::user("hi"))
        .await
        .unwrap();
    let sent = &requests(&server).await[0];
    assert_eq!(sent.url.path(), GENERATE);
    assert_eq!(sent.headers.get("x-goog-api-key").unwrap(), KEY);
    assert!(!sent.url.as_str().contains(KEY));
    assert!(sent.url.query().is_none());
    assert!(sent.headers.get("authorization").is_none());
}

#[tokio::test]
async fn system_messages_become_system_instruction_and_roles_map_to_user_and_model() {
    let req = ChatRequest::new(vec![
        Message::system("Be brief."),
        Message::user("hi"),
        Message::assistant("hello"),
        Message::user("bye"),
    ])
    .with_max_tokens(100)
    .with_temperature(0.3)
    .with_top_p(0.9)
    .with_stop("END")
    .with_seed(7);
    let body = body_for(&req).await;
    assert_eq!(
        body["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}]})
    );
    let roles: Vec<&str> = body["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "model", "user"]);
    assert_eq!(body["contents"][1]["parts"][0]["text"], "hello");
    assert_eq!(
        body["generationConfig"],
        json!({"maxOutputTokens": 100, "temperature": 0.3f32, "topP": 0.9f32, "stopSequences": ["END"], "seed": 7})
    );
    assert!(body.get("tools").is_none());
}

#[tokio::test]
async fn openai_style_tool_conversation_converts_with_the_function_name_looked_up() {
    let req = ChatRequest::new(vec![
        Message::user("What is 2+3?"),
        Message::new(
            Role::Assistant,
            vec![tool_call(
                "call_abc123",
                "add",
                json!({"a": 2, "b": 3}),
                None,
            )],
        ),
        Message::tool_result("call_abc123", "5"),
        Message::new(
            Role::Tool,
            vec![Part::ToolResult(ToolResult {
                call_id: "call_abc123".into(),
                name: None,
                content: "overflow".into(),
                is_error: true,
            })],
        ),
    ]);
    let body = body_for(&req).await;
    let contents = body["contents"].as_array().unwrap();
    assert_eq!(contents.len(), 3);
    assert_eq!(contents[1]["role"], "model");
    let call = &contents[1]["parts"][0];
    assert_eq!(
        call["functionCall"],
        json!({"name": "add", "args": {"a": 2, "b": 3}})
    );
    // A call Gemini did not make gets the documented stand-in signature.
    assert_eq!(call["thoughtSignature"], "skip_thought_signature_validator");
    assert_eq!(contents[2]["role"], "user");
    assert_eq!(
        contents[2]["parts"],
        json!([
            {"functionResponse": {"name": "add", "response": {"result": "5"}}},
            {"functionResponse": {"name": "add", "response": {"error": "overflow"}}}
        ])
    );
}

#[tokio::test]
async fn anthropic_thinking_is_dropped_and_string_arguments_are_parsed() {
    let req = ChatRequest::new(vec![
        Message::user("go"),
        Message::new(
            Role::Assistant,
            vec![
                Part::Thinking(Thinking {
                    text: "secret plan".into(),
                    signature: Some("anthropic-signature".into()),
                    redacted: None,
                    origin: Some("anthropic".into()),
                }),
                Part::text("Calling."),
                tool_call("toolu_1", "f", Value::String("{\"x\":1}".into()), None),
            ],
        ),
        Message::tool_result("toolu_1", "[1,2]"),
    ]);
    let body = body_for(&req).await;
    let text = body.to_string();
    assert!(!text.contains("secret plan") && !text.contains("anthropic-signature"));
    let parts = &body["contents"][1]["parts"];
    assert_eq!(parts[0], json!({"text": "Calling."}));
    assert_eq!(parts[1]["functionCall"]["args"], json!({"x": 1}));
    assert_eq!(
        body["contents"][2]["parts"][0]["functionResponse"]["response"],
        json!({"result": [1, 2]})
    );
}

#[tokio::test]
async fn images_and_pdfs_go_inline_and_urls_by_reference() {
    let req = ChatRequest::new(vec![Message::new(
        Role::User,
        vec![
            Part::text("Describe these."),
            Part::Image(Media::bytes("image/png", vec![0x89, b'P', b'N', b'G'])),
            Part::Document(Media::bytes("application/pdf", b"%PDF-1.7".to_vec())),
            Part::Image(Media::url("image/jpeg", "https://example.com/cat.jpg")),
            Part::Document(Media::url("application/pdf", "gs://bucket/report.pdf")),
            Part::Audio(Media::bytes("audio/wav", b"RIFF".to_vec())),
        ],
    )]);
    let body = body_for(&req).await;
    let parts = &body["contents"][0]["parts"];
    assert_eq!(
        parts[1],
        json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw=="}})
    );
    assert_eq!(
        parts[2],
        json!({"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0xLjc="}})
    );
    assert_eq!(
        parts[3],
        json!({"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg"}})
    );
    assert_eq!(
        parts[4],
        json!({"fileData": {"mimeType": "application/pdf", "fileUri": "gs://bucket/report.pdf"}})
    );
    assert_eq!(parts[5]["inlineData"]["mimeType"], "audio/wav");
}

#[tokio::test]
async fn tools_and_tool_choice_become_declarations_and_tool_config() {
    let schema = json!({
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": false
    });
    let req = ChatRequest::user("Weather?")
        .with_tool(ToolSpec::new(
            "get_weather",
            "Current weather",
            schema.clone(),
        ))
        .with_tool(ToolSpec::new(
            "get_time",
            "Current time",
            json!({"type": "object"}),
        ))
        .with_tool_choice(ToolChoice::Tool("get_weather".into()));
    let body = body_for(&req).await;
    assert_eq!(
        body["tools"],
        json!([{"functionDeclarations": [
            {"name": "get_weather", "description": "Current weather", "parametersJsonSchema": schema},
            {"name": "get_time", "description": "Current time", "parametersJsonSchema": {"type": "object"}}
        ]}])
    );
    assert_eq!(
        body["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
    );
    for (choice, mode) in [
        (ToolChoice::Auto, "AUTO"),
        (ToolChoice::None, "NONE"),
        (ToolChoice::Required, "ANY"),
    ] {
        let body = body_for(&req.clone().with_tool_choice(choice)).await;
        assert_eq!(
            body["toolConfig"],
            json!({"functionCallingConfig": {"mode": mode}})
        );
    }
}

#[tokio::test]
async fn json_formats_set_the_mime_type_and_the_json_schema() {
    let schema = json!({"type": "object", "properties": {"answer": {"type": "integer"}}});
    let req = ChatRequest::user("2+2?").with_response_format(ResponseFormat::JsonSchema {
        name: "answer".into(),
        schema: schema.clone(),
        strict: true,
    });
    let body = body_for(&req).await;
    assert_eq!(
        body["generationConfig"],
        json!({"responseMimeType": "application/json", "responseJsonSchema": schema})
    );
    let body = body_for(&ChatRequest::user("x").with_response_format(ResponseFormat::Json)).await;
    assert_eq!(
        body["generationConfig"],
        json!({"responseMimeType": "application/json"})
    );
}

#[tokio::test]
async fn reasoning_effort_sets_the_thinking_budget_and_asks_for_thoughts() {
    let req = ChatRequest::user("Think.").with_reasoning_effort(ReasoningEffort::Medium);
    let body = body_for(&req).await;
    assert_eq!(
        body["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 8192, "includeThoughts": true})
    );
}

#[tokio::test]
async fn extra_fields_are_merged_last() {
    let req = ChatRequest::user("x")
        .with_max_tokens(10)
        .with_extra("generationConfig", json!({"topK": 40}))
        .with_extra(
            "safetySettings",
            json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]),
        );
    let body = body_for(&req).await;
    assert_eq!(
        body["generationConfig"],
        json!({"maxOutputTokens": 10, "topK": 40})
    );
    assert_eq!(body["safetySettings"][0]["threshold"], "BLOCK_NONE");
}

#[tokio::test]
async fn invalid_requests_fail_before_any_http() {
    let server = generating("generate_text.json").await;
    let err = client(&server)
        .chat(&ChatRequest::new(vec![]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(!err.is_recoverable());
    assert!(requests(&server).await.is_empty());
}

// ---- embeddings --------------------------------------------------------------------------

#[tokio::test]
async fn embed_single_text_uses_embed_content() {
    let server = replying(
        "/v1beta/models/gemini-embedding-001:embedContent",
        200,
        fixture("gemini/embed.json"),
    )
    .await;
    let client = GeminiClient::builder()
        .model("gemini-embedding-001")
        .api_key(KEY)
        .base_url(server.uri())
        .build()
        .unwrap();
    let r = client
        .embed(&EmbedRequest::new(["hello"]).with_dimensions(768))
        .await
        .unwrap();
    assert_eq!(
        r.embeddings,
        vec![vec![0.013168523, -0.008711934, -0.046782676, 0.00069968984]]
    );
    assert_eq!(
        (r.provider.as_str(), r.model.as_str()),
        ("gemini", "gemini-embedding-001")
    );
    let attempts: Vec<_> = r
        .attempts()
        .iter()
        .map(|a| (a.provider.as_str(), a.model.as_str(), a.outcome))
        .collect();
    assert_eq!(
        attempts,
        [("gemini", "gemini-embedding-001", Outcome::Success)]
    );
    assert_eq!(
        sent_body(&server).await,
        json!({"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 768})
    );
}

#[tokio::test]
async fn embed_several_texts_uses_batch_embed_contents_in_order() {
    let server = replying(
        "/v1beta/models/gemini-embedding-001:batchEmbedContents",
        200,
        fixture("gemini/batch_embed.json"),
    )
    .await;
    let client = GeminiClient::builder()
        .model("models/gemini-embedding-001")
        .api_key(KEY)
        .base_url(server.uri())
        .build()
        .unwrap();
    let r = client
        .embed(&EmbedRequest::new(["one", "two"]))
        .await
        .unwrap();
    assert_eq!(r.embeddings.len(), 2);
    assert_eq!(r.embeddings[0][0], 0.013168523);
    assert_eq!(r.embeddings[1][0], -0.029841348);
    assert_eq!(
        sent_body(&server).await,
        json!({"requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "one"}]}},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "two"}]}}
        ]})
    );
}
