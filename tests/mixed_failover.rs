//! Fallback chains that mix protocols over real sockets: Azure, OpenAI Chat Completions,
//! the Responses API and Anthropic, with the conversation (tool calls included) carried
//! from one to the next.

use serde_json::{json, Value};
use switchboard::providers::azure::AzureAuth;
use switchboard::providers::openai::{self, OpenAiClient};
use switchboard::providers::openai_responses::OpenAiResponsesClient;
use switchboard::{
    AnthropicClient, ChatClient, ChatClientExt, ChatRequest, ErrorKind, FallbackClient, Message,
    Outcome, ToolSpec,
};
use switchboard_testkit::fixture;
use switchboard_testkit::wiremock::matchers::{method, path};
use switchboard_testkit::wiremock::{Mock, MockServer, ResponseTemplate};

fn reply(status: u16, name: &str) -> ResponseTemplate {
    let mime = if name.ends_with(".sse") {
        "text/event-stream"
    } else {
        "application/json"
    };
    ResponseTemplate::new(status).set_body_raw(fixture(name), mime)
}

async fn serve(route: &str, status: u16, name: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(reply(status, name))
        .mount(&server)
        .await;
    server
}

fn openai_client(server: &MockServer) -> OpenAiClient {
    OpenAiClient::builder()
        .model("gpt-4o")
        .api_key("sk-backup")
        .base_url(format!("{}/v1", server.uri()))
        .build()
        .unwrap()
}

fn responses_client(server: &MockServer) -> OpenAiResponsesClient {
    OpenAiResponsesClient::builder()
        .model("gpt-5-mini")
        .api_key("sk-responses")
        .base_url(format!("{}/v1", server.uri()))
        .build()
        .unwrap()
}

async fn last_body(server: &MockServer) -> Value {
    let requests = server.received_requests().await.unwrap();
    serde_json::from_slice(&requests.last().unwrap().body).unwrap()
}

#[tokio::test]
async fn azure_primary_failing_503_falls_back_to_openai() {
    let azure_server = serve(
        "/openai/deployments/gpt-4o-prod/chat/completions",
        503,
        "azure/error_503.json",
    )
    .await;
    let openai_server = serve("/v1/chat/completions", 200, "openai/chat_text.json").await;
    let azure = OpenAiClient::builder()
        .profile(openai::profile("azure").unwrap())
        .model("gpt-4o-prod")
        .base_url(azure_server.uri())
        .azure_auth(AzureAuth::api_key("azure-key"))
        .build()
        .unwrap();
    let chain = azure.with_fallback([openai_client(&openai_server).boxed()]);
    let req = ChatRequest::new(vec![
        Message::system("Be brief."),
        Message::user("What is the capital of France?"),
    ]);
    let r = chain.chat(&req).await.unwrap();
    assert!(r.text().starts_with("The capital of France is Paris."));
    let attempts = r.attempts();
    assert_eq!(attempts.len(), 2);
    assert_eq!(
        (attempts[0].provider.as_str(), attempts[0].outcome),
        ("azure", Outcome::Failed)
    );
    assert_eq!(attempts[0].status, Some(503));
    assert_eq!(attempts[0].error_kind, Some(ErrorKind::Server));
    assert_eq!(
        (attempts[1].provider.as_str(), attempts[1].outcome),
        ("openai", Outcome::Success)
    );
    // Both saw the same conversation.
    let a = last_body(&azure_server).await;
    let b = last_body(&openai_server).await;
    assert_eq!(a["messages"], b["messages"]);
}

fn weather_tool() -> ToolSpec {
    ToolSpec::new(
        "get_weather",
        "Current weather for a place",
        json!({"type": "object", "properties": {"location": {"type": "string"}, "unit": {"type": "string"}}}),
    )
}

#[tokio::test]
async fn an_anthropic_conversation_with_tool_calls_continues_on_responses() {
    let anthropic_server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(reply(200, "anthropic/messages_tool_use.json"))
        .up_to_n_times(1)
        .mount(&anthropic_server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(reply(529, "anthropic/error_529.json"))
        .mount(&anthropic_server)
        .await;
    let responses_server = serve("/v1/responses", 200, "openai-responses/response_text.json").await;
    let anthropic = AnthropicClient::builder()
        .model("claude-sonnet-4-5")
        .api_key("sk-ant")
        .base_url(anthropic_server.uri())
        .build()
        .unwrap();
    let chain = FallbackClient::new(vec![
        anthropic.boxed(),
        responses_client(&responses_server).boxed(),
    ])
    .unwrap();

    let first_req =
        ChatRequest::user("What's the weather in San Francisco?").with_tool(weather_tool());
    let first = chain.chat(&first_req).await.unwrap();
    assert_eq!(first.provider, "anthropic");
    let call = first.tool_calls()[0].clone();

    let mut messages = first_req.messages.clone();
    messages.push(first.to_message());
    messages.push(Message::tool_result(call.id.clone(), "{\"temp_c\":15}"));
    let second_req = ChatRequest::new(messages).with_tool(weather_tool());
    let second = chain.chat(&second_req).await.unwrap();
    assert_eq!(second.provider, "openai-responses");
    assert_eq!(second.attempts()[0].error_kind, Some(ErrorKind::Overloaded));

    let body = last_body(&responses_server).await;
    let input = body["input"].as_array().unwrap();
    assert_eq!(
        input[0],
        json!({"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "What's the weather in San Francisco?"}]})
    );
    assert_eq!(input[1]["role"], "assistant");
    assert_eq!(
        input[1]["content"][0]["text"],
        "I'll check the current weather in San Francisco for you."
    );
    assert_eq!(input[2]["type"], "function_call");
    assert_eq!(input[2]["call_id"], "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(input[2]["name"], "get_weather");
    let args: Value = serde_json::from_str(input[2]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(
        args,
        json!({"location": "San Francisco, CA", "unit": "celsius"})
    );
    assert_eq!(
        input[3],
        json!({"type": "function_call_output", "call_id": "toolu_01A09q90qw90lq917835lq9",
               "output": "{\"temp_c\":15}"})
    );
    assert_eq!(body["tools"][0]["name"], "get_weather");
}

#[tokio::test]
async fn a_responses_conversation_continues_on_chat_completions() {
    let responses_server = serve(
        "/v1/responses",
        200,
        "openai-responses/response_function_call.json",
    )
    .await;
    let openai_server = serve("/v1/chat/completions", 200, "openai/chat_text.json").await;
    let first_req = ChatRequest::user("Weather in Paris?").with_tool(weather_tool());
    let first = responses_client(&responses_server)
        .chat(&first_req)
        .await
        .unwrap();
    let call_id = first.tool_calls()[0].id.clone();
    let mut messages = first_req.messages.clone();
    messages.push(first.to_message());
    messages.push(Message::tool_result(call_id.clone(), "18C and sunny"));
    openai_client(&openai_server)
        .chat(&ChatRequest::new(messages).with_tool(weather_tool()))
        .await
        .unwrap();
    let body = last_body(&openai_server).await;
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(msgs[1]["tool_calls"][0]["id"], call_id.as_str());
    assert_eq!(
        msgs[1]["tool_calls"][0]["function"]["arguments"],
        "{\"location\":\"Paris, France\"}"
    );
    assert_eq!(msgs[2]["role"], "tool");
    assert_eq!(msgs[2]["tool_call_id"], call_id.as_str());
}

#[tokio::test]
async fn a_responses_stream_failing_before_content_falls_back_to_chat_completions() {
    let responses_server = serve(
        "/v1/responses",
        200,
        "openai-responses/stream_failed_before_content.sse",
    )
    .await;
    let openai_server = serve("/v1/chat/completions", 200, "openai/stream_text.sse").await;
    let chain =
        responses_client(&responses_server).with_fallback([openai_client(&openai_server).boxed()]);
    let r = chain
        .chat_stream(&ChatRequest::user("hello"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(r.provider, "openai");
    assert!(!r.text().is_empty());
}

#[tokio::test]
async fn a_responses_stream_failing_after_content_is_interrupted_not_failed_over() {
    let responses_server = serve(
        "/v1/responses",
        200,
        "openai-responses/stream_error_after_content.sse",
    )
    .await;
    let openai_server = serve("/v1/chat/completions", 200, "openai/stream_text.sse").await;
    let chain =
        responses_client(&responses_server).with_fallback([openai_client(&openai_server).boxed()]);
    let err = chain
        .chat_stream(&ChatRequest::user("hello"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(err.partial().unwrap().text(), "Once upon a time");
    assert!(openai_server.received_requests().await.unwrap().is_empty());
}

/// A stream cut on Chat Completions is continued on Anthropic, which receives the text so
/// far as a prefill; Gemini, which does not continue a prefill, is skipped on the way.
#[tokio::test]
async fn a_stream_cut_on_openai_is_continued_on_anthropic_as_a_prefill() {
    use futures_util::StreamExt;
    use switchboard::{Capability, GeminiClient, StreamEvent};

    let openai_server = serve("/v1/chat/completions", 200, "openai/stream_cut.sse").await;
    let anthropic_server = serve("/v1/messages", 200, "anthropic/stream_text.sse").await;
    let gemini = GeminiClient::builder()
        .model("gemini-2.5-flash")
        .api_key("g-key")
        .base_url("http://127.0.0.1:9/")
        .build()
        .unwrap();
    let anthropic = AnthropicClient::builder()
        .model("claude-sonnet-4-5")
        .api_key("sk-ant")
        .base_url(anthropic_server.uri())
        .build()
        .unwrap();
    let chain = FallbackClient::builder()
        .client(openai_client(&openai_server).boxed())
        .client(gemini.boxed())
        .client(anthropic.boxed())
        .continuation(true)
        .build()
        .unwrap();
    let req = ChatRequest::user("Write a short poem about the sea.");
    let mut stream = chain.chat_stream(&req).await.unwrap();
    let mut streamed = String::new();
    let mut done = None;
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            StreamEvent::TextDelta { text } => streamed.push_str(&text),
            StreamEvent::Done { response } => done = Some(*response),
            _ => {}
        }
    }
    let r = done.expect("the continued stream ends with Done");
    let delivered = "Sure, here is a short poem about the sea:\n\n";
    assert_eq!(r.text(), streamed);
    assert_eq!(
        r.text(),
        format!("{delivered}Hello! How can I help you today?")
    );

    let body = last_body(&anthropic_server).await;
    let last = body["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["role"], "assistant");
    assert_eq!(
        last["content"],
        json!([{"type": "text", "text": delivered.trim_end()}])
    );

    let attempts: Vec<_> = r
        .attempts()
        .iter()
        .map(|a| (a.provider.as_str(), a.outcome, a.missing))
        .collect();
    assert_eq!(
        attempts,
        [
            ("openai", Outcome::Failed, None),
            ("gemini", Outcome::Skipped, Some(Capability::Prefill)),
            ("anthropic", Outcome::Success, None),
        ]
    );
    assert_eq!(
        r.attempts()[0].error_kind,
        Some(ErrorKind::StreamInterrupted)
    );
}
