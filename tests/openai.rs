//! The OpenAI Chat Completions protocol over real sockets: fixtures from OpenAI's API
//! reference replayed by wiremock, and the requests the client sends checked field by field.

use std::error::Error as _;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use switchboard::providers::openai::{self, OpenAiClient};
use switchboard::types::{Media, ReasoningEffort, ResponseFormat, ToolCall};
use switchboard::{
    ChatClient, ChatRequest, EmbedRequest, Error, ErrorKind, FinishKind, Message, Outcome, Part,
    Role, StreamEvent, ToolChoice, ToolSpec,
};
use switchboard_testkit::fixture;
use switchboard_testkit::wiremock::matchers::{header, method, path};
use switchboard_testkit::wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-test-Zq8v1uYw3TnR5kLs";

fn client_for(server: &MockServer, profile: &str) -> OpenAiClient {
    OpenAiClient::builder()
        .profile(openai::profile(profile).expect("built-in profile"))
        .model("gpt-4o")
        .api_key(KEY)
        .base_url(format!("{}/v1/", server.uri()))
        .build()
        .expect("client builds")
}

fn client(server: &MockServer) -> OpenAiClient {
    client_for(server, "openai")
}

async fn reply(server: &MockServer, route: &str, status: u16, body: Vec<u8>, mime: &str) {
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(ResponseTemplate::new(status).set_body_raw(body, mime))
        .mount(server)
        .await;
}

async fn reply_fixture(server: &MockServer, status: u16, name: &str) {
    let body = fixture(&format!("openai/{name}"));
    let mime = if name.ends_with(".sse") {
        "text/event-stream"
    } else {
        "application/json"
    };
    reply(server, "/v1/chat/completions", status, body, mime).await;
}

async fn sent_body(server: &MockServer) -> Value {
    let requests = server.received_requests().await.expect("recording is on");
    let last = requests.last().expect("one request was sent");
    serde_json::from_slice(&last.body).expect("the body is JSON")
}

async fn chat_fixture(name: &str) -> switchboard::ChatResponse {
    let server = MockServer::start().await;
    reply_fixture(&server, 200, name).await;
    client(&server)
        .chat(&ChatRequest::user("hello"))
        .await
        .expect("the call succeeds")
}

async fn stream_fixture(server: &MockServer, name: &str) -> Vec<Result<StreamEvent, Error>> {
    reply_fixture(server, 200, name).await;
    client(server)
        .chat_stream(&ChatRequest::user("hello"))
        .await
        .expect("the stream opens")
        .collect()
        .await
}

fn done(events: &[Result<StreamEvent, Error>]) -> switchboard::ChatResponse {
    match events.last() {
        Some(Ok(StreamEvent::Done { response })) => (**response).clone(),
        other => panic!("expected Done last, got {other:?}"),
    }
}

// ---- responses -------------------------------------------------------------------------

#[tokio::test]
async fn plain_text_reply_gives_text_usage_finish_and_ids() {
    let r = chat_fixture("chat_text.json").await;
    assert_eq!(
        r.text(),
        "The capital of France is Paris. It has been the country's political and cultural centre for centuries."
    );
    assert_eq!(
        (r.provider.as_str(), r.model.as_str()),
        ("openai", "gpt-4o")
    );
    assert_eq!(r.served_model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(
        r.response_id.as_deref(),
        Some("chatcmpl-CkR3b8Hn2vQzX1pLw7TfYd9uE0aGs")
    );
    assert_eq!(
        (
            r.usage.input_tokens,
            r.usage.output_tokens,
            r.usage.total_tokens
        ),
        (1117, 22, 1139)
    );
    assert_eq!(r.usage.cache_read_tokens, Some(1024));
    assert_eq!(r.usage.reasoning_tokens, Some(0));
    assert_eq!(r.finish_reason.kind, FinishKind::Stop);
    assert_eq!(r.finish_reason.raw.as_deref(), Some("stop"));
    assert!(r.request_id.starts_with("req_"));
    assert_eq!(r.attempts().len(), 1);
    assert!(r.raw.is_none());
}

#[tokio::test]
async fn keep_raw_stores_the_provider_json() {
    let server = MockServer::start().await;
    reply_fixture(&server, 200, "chat_text.json").await;
    let client = OpenAiClient::builder()
        .model("gpt-4o")
        .api_key(KEY)
        .base_url(format!("{}/v1", server.uri()))
        .keep_raw(true)
        .build()
        .unwrap();
    let r = client.chat(&ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.raw.unwrap()["system_fingerprint"], "fp_f33640a400");
}

#[tokio::test]
async fn tool_call_reply_parses_the_arguments() {
    let r = chat_fixture("chat_tool_call.json").await;
    let calls = r.tool_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "call_9pw1qnYScqvGrCH58HWCvFH6");
    assert_eq!(calls[0].name, "get_weather");
    assert_eq!(calls[0].arguments, json!({"location": "Paris, France"}));
    assert_eq!(r.finish_reason.kind, FinishKind::ToolCalls);
    assert_eq!(r.text(), "");
}

#[tokio::test]
async fn parallel_tool_calls_keep_their_order() {
    let r = chat_fixture("chat_parallel_tool_calls.json").await;
    let calls = r.tool_calls();
    let ids: Vec<_> = calls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["call_12345xyz", "call_67890abc"]);
    assert_eq!(calls[1].arguments, json!({"location": "Bogotá, Colombia"}));
}

#[tokio::test]
async fn reasoning_tokens_and_cached_tokens_are_reported() {
    let r = chat_fixture("chat_reasoning_usage.json").await;
    assert_eq!(r.usage.reasoning_tokens, Some(448));
    assert_eq!(r.usage.cache_read_tokens, Some(1280));
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (1450, 620));
}

#[tokio::test]
async fn length_finish_means_the_answer_was_cut() {
    let r = chat_fixture("chat_finish_length.json").await;
    assert_eq!(r.finish_reason.kind, FinishKind::Length);
    assert!(r.text().starts_with("Once upon a time"));
}

#[tokio::test]
async fn content_filter_finish_is_reported_with_no_text() {
    let r = chat_fixture("chat_content_filter.json").await;
    assert_eq!(r.finish_reason.kind, FinishKind::ContentFilter);
    assert_eq!(r.finish_reason.raw.as_deref(), Some("content_filter"));
    assert!(r.parts.is_empty());
}

#[tokio::test]
async fn refusal_becomes_the_text_with_a_refusal_finish() {
    let r = chat_fixture("chat_refusal.json").await;
    assert_eq!(r.text(), "I'm sorry, I cannot assist with that request.");
    assert_eq!(r.finish_reason.kind, FinishKind::Refusal);
    assert_eq!(r.finish_reason.raw.as_deref(), Some("stop"));
}

#[tokio::test]
async fn arguments_that_are_not_json_are_kept_as_a_string() {
    let server = MockServer::start().await;
    let body = json!({"id": "c1", "model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1"}}]}}]});
    reply(
        &server,
        "/v1/chat/completions",
        200,
        body.to_string().into_bytes(),
        "application/json",
    )
    .await;
    let r = client(&server).chat(&ChatRequest::user("x")).await.unwrap();
    assert_eq!(
        r.tool_calls()[0].arguments,
        Value::String("{\"a\": 1".into())
    );
}

#[tokio::test]
async fn reasoning_content_becomes_a_thinking_part() {
    let server = MockServer::start().await;
    let body = json!({"id": "d1", "model": "deepseek-reasoner", "choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": "9.11 < 9.9", "reasoning_content": "Compare the decimals."}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30, "prompt_cache_hit_tokens": 4}});
    reply(
        &server,
        "/v1/chat/completions",
        200,
        body.to_string().into_bytes(),
        "application/json",
    )
    .await;
    let r = client_for(&server, "deepseek")
        .chat(&ChatRequest::user("x"))
        .await
        .unwrap();
    match &r.parts[0] {
        Part::Thinking(t) => {
            assert_eq!(t.text, "Compare the decimals.");
            assert_eq!(t.origin.as_deref(), Some("deepseek"));
        }
        other => panic!("expected thinking first, got {other:?}"),
    }
    assert_eq!(r.text(), "9.11 < 9.9");
    assert_eq!(r.usage.cache_read_tokens, Some(4));
    assert_eq!(r.provider, "deepseek");
}

#[tokio::test]
async fn a_200_reply_holding_an_error_is_a_provider_error() {
    let server = MockServer::start().await;
    let body = json!({"error": {"message": "Upstream timed out", "code": 502}});
    reply(
        &server,
        "/v1/chat/completions",
        200,
        body.to_string().into_bytes(),
        "application/json",
    )
    .await;
    let err = client(&server)
        .chat(&ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.message(), "Upstream timed out");
    assert!(err.is_recoverable());
}

// ---- streams ---------------------------------------------------------------------------

#[tokio::test]
async fn streaming_text_folds_into_the_same_response_as_the_non_streaming_call() {
    let equivalent = json!({
        "id": "chatcmpl-CkR4aP7sVd2Lm9Qx3Ty6Bn0Wc5Hu1", "object": "chat.completion",
        "created": 1795017602, "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "Hello! How can I help you today?", "refusal": null}}],
        "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
    });
    let server = MockServer::start().await;
    reply(
        &server,
        "/v1/chat/completions",
        200,
        equivalent.to_string().into_bytes(),
        "application/json",
    )
    .await;
    let expected = client(&server)
        .chat(&ChatRequest::user("hello"))
        .await
        .unwrap();

    for name in ["stream_text.sse", "stream_text_crlf.sse"] {
        let server = MockServer::start().await;
        let events = stream_fixture(&server, name).await;
        assert!(events.iter().all(Result::is_ok), "{name}: {events:?}");
        let streamed = done(&events);
        assert_eq!(streamed.parts, expected.parts, "{name}");
        assert_eq!(streamed.usage, expected.usage, "{name}");
        assert_eq!(streamed.finish_reason, expected.finish_reason, "{name}");
        assert_eq!(streamed.response_id, expected.response_id, "{name}");
        assert_eq!(streamed.served_model, expected.served_model, "{name}");
        assert_eq!(
            (streamed.provider.as_str(), streamed.model.as_str()),
            ("openai", "gpt-4o")
        );
        assert_eq!(streamed.attempts().len(), 1);
        let deltas = events
            .iter()
            .filter(|e| matches!(e, Ok(StreamEvent::TextDelta { .. })))
            .count();
        assert_eq!(deltas, 9, "{name}: the empty first delta is not an event");
    }
}

#[tokio::test]
async fn streaming_sends_stream_and_usage_options() {
    let server = MockServer::start().await;
    stream_fixture(&server, "stream_text.sse").await;
    let body = sent_body(&server).await;
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests[0].headers["accept"], "text/event-stream");
}

#[tokio::test]
async fn streaming_tool_call_is_announced_then_its_arguments_arrive() {
    let server = MockServer::start().await;
    let events = stream_fixture(&server, "stream_tool_call.sse").await;
    assert!(events.iter().any(|e| matches!(e,
        Ok(StreamEvent::ToolCallStart { index: 0, id, name, .. })
            if id == "call_DdmO9pD3xa9XTPNJ32zg2hcA" && name == "get_weather")));
    let r = done(&events);
    assert_eq!(
        r.tool_calls()[0].arguments,
        json!({"location": "Paris, France", "unit": "celsius"})
    );
    assert_eq!(r.finish_reason.kind, FinishKind::ToolCalls);
}

#[tokio::test]
async fn streaming_parallel_tool_calls_are_joined_per_index() {
    let server = MockServer::start().await;
    let events = stream_fixture(&server, "stream_parallel_tool_calls.sse").await;
    let r = done(&events);
    let calls: Vec<(&str, &Value)> = r
        .tool_calls()
        .into_iter()
        .map(|c| (c.id.as_str(), &c.arguments))
        .collect();
    assert_eq!(
        calls,
        [
            (
                "call_LkJ2x8Vn4Qp0Rz6Ty1Bw3Hs5",
                &json!({"location": "Paris, France"})
            ),
            (
                "call_Fm7Yc3Ud9Ka2Pe5Xo0Wq8Nv1",
                &json!({"location": "Bogotá, Colombia"})
            ),
        ]
    );
}

#[tokio::test]
async fn error_event_after_text_is_an_interruption_caused_by_a_server_error() {
    let server = MockServer::start().await;
    let events = stream_fixture(&server, "stream_error_event.sse").await;
    let err = events
        .into_iter()
        .find_map(Result::err)
        .expect("the stream fails");
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(
        err.partial().unwrap().text(),
        "The three primary colours are"
    );
    assert_eq!(err.provider(), Some("openai"));
    let cause = err
        .source()
        .and_then(|s| s.downcast_ref::<Error>())
        .expect("the cause is a switchboard error");
    assert_eq!(cause.kind(), ErrorKind::Server);
    assert_eq!(cause.code(), Some("server_error"));
    assert!(cause.message().starts_with("The server had an error"));
    assert!(err.is_recoverable());
}

#[tokio::test]
async fn cut_stream_is_an_interruption_not_a_short_answer() {
    let server = MockServer::start().await;
    let events = stream_fixture(&server, "stream_cut.sse").await;
    let err = events
        .into_iter()
        .find_map(Result::err)
        .expect("the stream fails");
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(
        err.partial().unwrap().text(),
        "Sure, here is a short poem about the sea:\n\n"
    );
}

#[tokio::test]
async fn http_error_before_a_stream_keeps_its_kind() {
    let server = MockServer::start().await;
    reply_fixture(&server, 429, "error_429_rate_limit.json").await;
    let err = client(&server)
        .chat_stream(&ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.model(), Some("gpt-4o"));
}

// ---- errors ----------------------------------------------------------------------------

#[tokio::test]
async fn every_error_fixture_maps_to_its_kind_code_and_message() {
    let table = [
        (
            400,
            "error_400_invalid_request.json",
            ErrorKind::InvalidRequest,
            "integer_below_min_value",
        ),
        (
            400,
            "error_400_context_length.json",
            ErrorKind::ContextLength,
            "context_length_exceeded",
        ),
        (
            400,
            "error_400_content_policy.json",
            ErrorKind::ContentFiltered,
            "content_policy_violation",
        ),
        (
            401,
            "error_401.json",
            ErrorKind::Authentication,
            "invalid_api_key",
        ),
        (
            403,
            "error_403.json",
            ErrorKind::PermissionDenied,
            "unsupported_country_region_territory",
        ),
        (
            404,
            "error_404_model.json",
            ErrorKind::NotFound,
            "model_not_found",
        ),
        (
            429,
            "error_429_rate_limit.json",
            ErrorKind::RateLimited,
            "rate_limit_exceeded",
        ),
        (
            429,
            "error_429_insufficient_quota.json",
            ErrorKind::QuotaExceeded,
            "insufficient_quota",
        ),
        (500, "error_500.json", ErrorKind::Server, "server_error"),
        (503, "error_503.json", ErrorKind::Server, "server_error"),
    ];
    for (status, name, kind, code) in table {
        let server = MockServer::start().await;
        reply_fixture(&server, status, name).await;
        let err = client(&server)
            .chat(&ChatRequest::user("x"))
            .await
            .unwrap_err();
        let body: Value = serde_json::from_slice(&fixture(&format!("openai/{name}"))).unwrap();
        assert_eq!(err.kind(), kind, "{name}");
        assert_eq!(err.status(), Some(status), "{name}");
        assert_eq!(err.code(), Some(code), "{name}");
        assert_eq!(err.message(), body["error"]["message"], "{name}");
        assert_eq!(err.provider(), Some("openai"), "{name}");
        assert!(err.fix().is_some(), "{name}");
        assert!(
            err.is_recoverable(),
            "{name}: provider errors let a fallback try"
        );
    }
}

#[tokio::test]
async fn exhausted_quota_is_not_worth_retrying() {
    let server = MockServer::start().await;
    reply_fixture(&server, 429, "error_429_insufficient_quota.json").await;
    let err = client(&server)
        .chat(&ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn rate_limit_headers_become_retry_after() {
    for (name, value, wait) in [
        ("retry-after", "2", Duration::from_secs(2)),
        ("retry-after-ms", "644", Duration::from_millis(644)),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header(name, value)
                    .set_body_raw(
                        fixture("openai/error_429_rate_limit.json"),
                        "application/json",
                    ),
            )
            .mount(&server)
            .await;
        let err = client(&server)
            .chat(&ChatRequest::user("x"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(err.retry_after(), Some(wait), "{name}");
    }
}

#[tokio::test]
async fn rate_limit_without_headers_waits_as_the_message_says() {
    // The message says "Please try again in 644ms"; no Retry-After header came.
    let server = MockServer::start().await;
    reply_fixture(&server, 429, "error_429_rate_limit.json").await;
    let err = client(&server)
        .chat(&ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_millis(644)));
    // An exhausted quota says no such thing and gets no wait.
    let server = MockServer::start().await;
    reply_fixture(&server, 429, "error_429_insufficient_quota.json").await;
    let err = client(&server)
        .chat(&ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), None);
}

#[tokio::test]
async fn gateway_errors_name_what_the_upstream_provider_said() {
    let server = MockServer::start().await;
    reply_fixture(&server, 429, "error_429_openrouter_upstream.json").await;
    let err = client_for(&server, "openrouter")
        .chat(&ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.status()),
        (ErrorKind::RateLimited, Some(429))
    );
    assert_eq!(
        err.message(),
        "Provider returned error (Mistral: mistralai/mistral-small-3.2-24b-instruct:free \
         is rate-limited upstream; retry shortly)"
    );
}

#[tokio::test]
async fn other_statuses_take_their_default_kinds() {
    let table = [
        (408, ErrorKind::Timeout),
        (409, ErrorKind::Overloaded),
        (413, ErrorKind::InvalidRequest),
        (502, ErrorKind::Server),
        (504, ErrorKind::Server),
        (529, ErrorKind::Overloaded),
    ];
    for (status, kind) in table {
        let server = MockServer::start().await;
        let body = json!({"error": {"message": format!("status {status}"), "type": "some_error", "param": null, "code": null}});
        reply(
            &server,
            "/v1/chat/completions",
            status,
            body.to_string().into_bytes(),
            "application/json",
        )
        .await;
        let err = client(&server)
            .chat(&ChatRequest::user("x"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{status}");
        if status == 413 {
            // The kind alone does not tell a 413 from other invalid requests; the message does.
            assert_eq!(
                err.message(),
                "the request was too large for the provider to accept: status 413"
            );
        } else {
            assert_eq!(err.message(), format!("status {status}"));
        }
        assert_eq!(err.code(), Some("some_error"));
    }
}

#[tokio::test]
async fn a_non_json_error_body_still_gives_a_typed_error() {
    let server = MockServer::start().await;
    reply(
        &server,
        "/v1/chat/completions",
        502,
        b"<html>Bad gateway</html>".to_vec(),
        "text/html",
    )
    .await;
    let err = client(&server)
        .chat(&ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.message(), "<html>Bad gateway</html>");
}

#[tokio::test]
async fn the_key_never_shows_in_debug_or_error_text() {
    let server = MockServer::start().await;
    reply_fixture(&server, 401, "error_401.json").await;
    let client = client(&server);
    assert!(!format!("{client:?}").contains(KEY));
    let builder = OpenAiClient::builder().api_key(KEY);
    assert!(!format!("{builder:?}").contains(KEY));
    let err = client.chat(&ChatRequest::user("x")).await.unwrap_err();
    assert!(!err.to_string().contains(KEY));
    assert!(!format!("{err:?}").contains(KEY));
}

#[tokio::test]
async fn an_invalid_request_is_refused_before_anything_is_sent() {
    let server = MockServer::start().await;
    let err = client(&server)
        .chat(&ChatRequest::new(vec![]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(!err.is_recoverable());
    assert!(server.received_requests().await.unwrap().is_empty());
}

// ---- request bodies --------------------------------------------------------------------

async fn body_for(profile: &str, req: &ChatRequest) -> Value {
    let server = MockServer::start().await;
    reply_fixture(&server, 200, "chat_text.json").await;
    client_for(&server, profile).chat(req).await.unwrap();
    sent_body(&server).await
}

#[tokio::test]
async fn requests_carry_a_bearer_key_and_go_to_chat_completions() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("content-type", "application/json"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("openai/chat_text.json"), "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .chat(&ChatRequest::user("hi"))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_token_limit_goes_in_the_field_the_profile_names() {
    let req = ChatRequest::user("hi").with_max_tokens(100);
    let body = body_for("openai", &req).await;
    assert_eq!(body["max_completion_tokens"], 100);
    assert!(body.get("max_tokens").is_none());
    let body = body_for("mistral", &req).await;
    assert_eq!(body["max_tokens"], 100);
    assert!(body.get("max_completion_tokens").is_none());
}

#[tokio::test]
async fn plain_requests_have_no_nulls_and_no_service_tier() {
    let req = ChatRequest::new(vec![Message::system("Be brief."), Message::user("hi")])
        .with_temperature(0.2)
        .with_top_p(0.9)
        .with_stop("END")
        .with_seed(7);
    let body = body_for("openai", &req).await;
    assert_eq!(
        body,
        json!({"model": "gpt-4o", "temperature": 0.2, "top_p": 0.9, "stop": ["END"], "seed": 7,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]})
    );
}

#[tokio::test]
async fn tools_and_a_forced_choice_have_openais_shape() {
    let mut tool = ToolSpec::new(
        "get_weather",
        "Current weather",
        json!({"type": "object", "properties": {"location": {"type": "string"}}}),
    );
    tool.strict = Some(true);
    let req = ChatRequest::user("weather?")
        .with_tool(tool)
        .with_tool_choice(ToolChoice::Tool("get_weather".into()));
    let body = body_for("openai", &req).await;
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}, "strict": true}}])
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    let body = body_for(
        "openai",
        &ChatRequest::user("x").with_tool_choice(ToolChoice::Required),
    )
    .await;
    assert_eq!(body["tool_choice"], "required");
}

#[tokio::test]
async fn a_schema_is_native_where_supported_and_prompted_elsewhere() {
    let schema =
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
    let req = ChatRequest::new(vec![
        Message::system("Be brief."),
        Message::user("capital of France?"),
    ])
    .with_response_format(ResponseFormat::JsonSchema {
        name: "answer".into(),
        schema: schema.clone(),
        strict: true,
    });
    let body = body_for("openai", &req).await;
    assert_eq!(
        body["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": true}})
    );
    assert_eq!(body["messages"].as_array().unwrap().len(), 2);

    let body = body_for("deepseek", &req).await;
    assert_eq!(body["response_format"], json!({"type": "json_object"}));
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0]["content"], "Be brief.");
    assert_eq!(messages[1]["role"], "system");
    assert!(messages[1]["content"]
        .as_str()
        .unwrap()
        .contains("\"required\":[\"city\"]"));
    assert_eq!(messages[2]["role"], "user");
}

#[tokio::test]
async fn json_mode_adds_the_word_json_when_no_message_has_it() {
    let req = ChatRequest::user("list three colours").with_response_format(ResponseFormat::Json);
    let body = body_for("openai", &req).await;
    assert_eq!(body["response_format"], json!({"type": "json_object"}));
    assert_eq!(body["messages"][0]["role"], "system");
    let req =
        ChatRequest::user("list three colours as JSON").with_response_format(ResponseFormat::Json);
    assert_eq!(
        body_for("openai", &req).await["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_tool_round_trip_serialises_as_assistant_tool_calls_and_tool_messages() {
    let call = ToolCall {
        id: "call_1".into(),
        name: "get_weather".into(),
        arguments: json!({"location": "Paris"}),
        signature: None,
    };
    let thinking = Part::Thinking(switchboard::types::Thinking {
        text: "think".into(),
        signature: None,
        redacted: None,
        origin: Some("openai".into()),
    });
    let req = ChatRequest::new(vec![
        Message::user("weather in Paris?"),
        Message::new(
            Role::Assistant,
            vec![thinking, Part::text("Let me check."), Part::ToolCall(call)],
        ),
        Message::tool_result("call_1", "{\"temp\":21}"),
    ]);
    let body = body_for("openai", &req).await;
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]},
            {"role": "tool", "content": "{\"temp\":21}", "tool_call_id": "call_1"}
        ])
    );
}

#[tokio::test]
async fn image_pdf_and_audio_parts_serialise_as_openai_content_parts() {
    let message = Message::user("describe these")
        .with_part(Part::Image(Media::url(
            "image/png",
            "https://example.com/cat.png",
        )))
        .with_part(Part::Image(Media::bytes("image/png", b"png".to_vec())))
        .with_part(Part::Document(Media::bytes(
            "application/pdf",
            b"%PDF".to_vec(),
        )))
        .with_part(Part::Audio(Media::bytes("audio/wav", b"RIFF".to_vec())));
    let body = body_for("openai", &ChatRequest::new(vec![message])).await;
    assert_eq!(
        body["messages"][0]["content"],
        json!([
            {"type": "text", "text": "describe these"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,cG5n"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERg==", "filename": "document.pdf"}},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
        ])
    );
}

#[tokio::test]
async fn a_document_by_url_is_refused_with_a_fix() {
    let server = MockServer::start().await;
    let message = Message::user("read").with_part(Part::Document(Media::url(
        "application/pdf",
        "https://example.com/a.pdf",
    )));
    let err = client(&server)
        .chat(&ChatRequest::new(vec![message]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.fix().unwrap().contains("Media::bytes"));
}

#[tokio::test]
async fn extra_fields_are_merged_last_and_can_remove_fields() {
    let req = ChatRequest::user("hi")
        .with_temperature(0.5)
        .with_top_p(0.5)
        .with_extra("temperature", json!(1.0))
        .with_extra("top_p", Value::Null)
        .with_extra("user", json!("u-42"));
    let body = body_for("openai", &req).await;
    assert_eq!(body["temperature"], 1.0);
    assert!(body.get("top_p").is_none());
    assert_eq!(body["user"], "u-42");
    assert_eq!(body["messages"][0]["content"], "hi");
}

#[tokio::test]
async fn reasoning_effort_is_sent_only_where_the_profile_takes_it() {
    let req = ChatRequest::user("hi").with_reasoning_effort(ReasoningEffort::High);
    assert_eq!(body_for("openai", &req).await["reasoning_effort"], "high");
    assert!(body_for("mistral", &req)
        .await
        .get("reasoning_effort")
        .is_none());
}

// ---- embeddings ------------------------------------------------------------------------

#[tokio::test]
async fn embeddings_come_back_in_input_order_with_usage() {
    let server = MockServer::start().await;
    reply(
        &server,
        "/v1/embeddings",
        200,
        fixture("openai/embeddings.json"),
        "application/json",
    )
    .await;
    let client = client(&server);
    let r = client
        .embed(&EmbedRequest::new(["first", "second"]).with_dimensions(4))
        .await
        .unwrap();
    assert_eq!(r.embeddings.len(), 2);
    assert_eq!(r.embeddings[0][0], -0.006_929_283);
    assert_eq!(r.embeddings[1][3], 0.002_984_455_8);
    assert_eq!((r.usage.input_tokens, r.usage.total_tokens), (8, 8));
    assert_eq!(
        (r.provider.as_str(), r.model.as_str()),
        ("openai", "gpt-4o")
    );
    let attempts: Vec<_> = r
        .attempts()
        .iter()
        .map(|a| (a.provider.as_str(), a.model.as_str(), a.outcome))
        .collect();
    assert_eq!(attempts, [("openai", "gpt-4o", Outcome::Success)]);
    assert_eq!(
        sent_body(&server).await,
        json!({"model": "gpt-4o", "input": ["first", "second"], "dimensions": 4})
    );
}

#[tokio::test]
async fn embeddings_are_reordered_by_index() {
    let server = MockServer::start().await;
    let body = json!({"object": "list", "model": "m", "data": [
        {"object": "embedding", "index": 1, "embedding": [2.0]},
        {"object": "embedding", "index": 0, "embedding": [1.0]}]});
    reply(
        &server,
        "/v1/embeddings",
        200,
        body.to_string().into_bytes(),
        "application/json",
    )
    .await;
    let r = client(&server)
        .embed(&EmbedRequest::new(["a", "b"]))
        .await
        .unwrap();
    assert_eq!(r.embeddings, vec![vec![1.0], vec![2.0]]);
}
