//! Upstreams (and callers) that misbehave on purpose, over real sockets: model names that
//! try to climb out of the URL path, absurd waits, error bodies that quote the key, and
//! streams cut after their finish reason. Fixtures are the real wire data under
//! `tests/fixtures/`, cut or edited where the scenario says so.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use switchboard::providers::openai::{self, OpenAiClient};
use switchboard::providers::ClientOptions;
use switchboard::{
    create_client_with, AnthropicClient, Budget, ChatClient, ChatClientExt, ChatRequest, ErrorKind,
    GeminiClient,
};
use switchboard_testkit::fixture;
use switchboard_testkit::wiremock::matchers::method;
use switchboard_testkit::wiremock::{Mock, MockServer, ResponseTemplate};

const OPENAI_KEY: &str = "sk-proj-hostile-test-7Qv2Lr9XwZ0aBcDeFgHi";
const ANTHROPIC_KEY: &str = "sk-ant-api03-hostile-test-Yb8Nc3Md";
const GEMINI_KEY: &str = "AIzaSy-hostile-test-Kx4Jw7Pq1Rs";
const ONE_DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// A server that answers every request with `template` (so any stray request is seen).
async fn answering(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

async fn paths(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect()
}

fn openai_client(server: &MockServer) -> OpenAiClient {
    OpenAiClient::builder()
        .model("gpt-4o")
        .api_key(OPENAI_KEY)
        .base_url(format!("{}/v1", server.uri()))
        .build()
        .unwrap()
}

fn gemini_client(server: &MockServer) -> GeminiClient {
    GeminiClient::builder()
        .model("gemini-2.5-flash")
        .api_key(GEMINI_KEY)
        .base_url(server.uri())
        .build()
        .unwrap()
}

fn anthropic_client(server: &MockServer) -> AnthropicClient {
    AnthropicClient::builder()
        .model("claude-sonnet-4-5")
        .api_key(ANTHROPIC_KEY)
        .base_url(server.uri())
        .build()
        .unwrap()
}

/// The SSE events of a fixture, split at blank lines (either line ending).
fn sse_events(name: &str) -> Vec<String> {
    let text = String::from_utf8(fixture(name))
        .unwrap()
        .replace("\r\n", "\n");
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| format!("{e}\n\n"))
        .collect()
}

fn sse(template_events: &[String]) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(template_events.concat(), "text/event-stream")
}

// ---- item 3: names that would reshape the URL ------------------------------------------

#[tokio::test]
async fn a_gemini_model_that_climbs_the_url_path_is_refused_and_nothing_is_sent() {
    let server = answering(ResponseTemplate::new(200)).await;
    let uri = server.uri();
    let options = ClientOptions::new().env(move |name| match name {
        "GEMINI_API_KEY" => Some(GEMINI_KEY.to_owned()),
        "SWITCHBOARD_GEMINI_BASE_URL" => Some(uri.clone()),
        _ => None,
    });
    for model in [
        "%2e%2e/%2e%2e/%2e%2e/secret#",
        "../../../secret",
        "gemini-2.5-flash:generateContent?alt=x#",
        "gemini-2.5-flash/../../v1/secret",
        "gemini%2F..",
        "gemini-2.5-flash\r\nX-Injected: 1",
    ] {
        let err = create_client_with(&format!("gemini:{model}"), &options)
            .expect_err("a traversing name is refused");
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{model:?}: {err}");
        assert_eq!(err.code(), Some("invalid_model"), "{err}");
        let err = GeminiClient::builder()
            .model(model)
            .api_key(GEMINI_KEY)
            .base_url(server.uri())
            .build()
            .expect_err("the builder refuses it too");
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    }
    assert_eq!(
        paths(&server).await,
        Vec::<String>::new(),
        "nothing was sent"
    );
}

#[tokio::test]
async fn an_azure_deployment_that_climbs_the_url_path_is_refused_and_nothing_is_sent() {
    let server = answering(ResponseTemplate::new(200)).await;
    for deployment in ["..", "../../secret#", "prod/../../x", "%2e%2e", "a?b=c"] {
        let err = OpenAiClient::builder()
            .profile(openai::profile("azure").unwrap())
            .model(deployment)
            .api_key("azure-key-0123456789")
            .base_url(server.uri())
            .build()
            .expect_err("a traversing deployment is refused");
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{deployment:?}");
        assert!(err.message().contains("deployment name"), "{err}");
    }
    assert!(paths(&server).await.is_empty());
}

#[tokio::test]
async fn other_characters_in_a_gemini_model_are_percent_encoded_in_the_path() {
    let server = answering(
        ResponseTemplate::new(200)
            .set_body_raw(fixture("gemini/generate_text.json"), "application/json"),
    )
    .await;
    let client = GeminiClient::builder()
        .model("gemini-2.5-flash:é")
        .api_key(GEMINI_KEY)
        .base_url(server.uri())
        .build()
        .unwrap();
    client.chat(&ChatRequest::user("hi")).await.unwrap();
    assert_eq!(
        paths(&server).await,
        ["/v1beta/models/gemini-2.5-flash%3A%C3%A9:generateContent"]
    );
}

#[tokio::test]
async fn bedrock_model_names_stay_in_the_body_and_the_path_is_fixed() {
    let server = answering(
        ResponseTemplate::new(200)
            .set_body_raw(fixture("bedrock/chat_text.json"), "application/json"),
    )
    .await;
    let uri = server.uri();
    let options = ClientOptions::new().env(move |name| match name {
        "AWS_BEARER_TOKEN_BEDROCK" => Some("bedrock-api-key-0123".into()),
        "SWITCHBOARD_BEDROCK_BASE_URL" => Some(format!("{uri}/openai/v1")),
        _ => None,
    });
    let model = "../../secret#arn:aws:bedrock:us-east-1:1:inference-profile/x";
    let client = create_client_with(&format!("bedrock:{model}"), &options).unwrap();
    client.chat(&ChatRequest::user("hi")).await.unwrap();
    assert_eq!(paths(&server).await, ["/openai/v1/chat/completions"]);
    let sent: Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(sent["model"], model);
}

// ---- item 7: absurd waits ----------------------------------------------------------------

#[tokio::test]
async fn absurd_retry_after_headers_are_clamped_to_a_day_not_a_panic() {
    for (name, value) in [
        ("retry-after", "1e20"),
        ("retry-after", "inf"),
        ("retry-after-ms", "1e30"),
        ("retry-after", "-1e20"),
        ("retry-after", "NaN"),
    ] {
        let server = answering(
            ResponseTemplate::new(429)
                .insert_header(name, value)
                .set_body_raw(
                    fixture("openai/error_429_rate_limit.json"),
                    "application/json",
                ),
        )
        .await;
        let err = openai_client(&server)
            .chat(&ChatRequest::user("hi"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RateLimited, "{name}: {value}");
        let wait = err.retry_after();
        assert!(
            wait.is_none_or(|w| w <= ONE_DAY),
            "{name}: {value} gave {wait:?}"
        );
        if value.starts_with('1') || value == "inf" {
            assert_eq!(wait, Some(ONE_DAY), "{name}: {value}");
        }
    }
}

#[tokio::test]
async fn a_gemini_retry_delay_of_1e20_seconds_is_a_day_and_the_default_stack_gives_up_at_once() {
    let mut body = serde_json::from_slice::<Value>(&fixture("gemini/error_429.json")).unwrap();
    body["error"]["details"] = serde_json::json!([{
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": "1e20s"
    }]);
    let server = answering(
        ResponseTemplate::new(429)
            .set_body_raw(serde_json::to_vec(&body).unwrap(), "application/json"),
    )
    .await;
    let err = gemini_client(&server)
        .chat(&ChatRequest::user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(ONE_DAY));
    // The default stack retries; a day is past its longest honoured wait, so it stops.
    let uri = server.uri();
    let options = ClientOptions::new().env(move |name| match name {
        "GEMINI_API_KEY" => Some(GEMINI_KEY.to_owned()),
        "SWITCHBOARD_GEMINI_BASE_URL" => Some(uri.clone()),
        _ => None,
    });
    let client = create_client_with("gemini:gemini-2.5-flash", &options).unwrap();
    let started = std::time::Instant::now();
    let err = client.chat(&ChatRequest::user("hi")).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(20), "{err}");
    assert_eq!(err.retry_after(), Some(ONE_DAY), "{err}");
}

// ---- item 8: secrets echoed by an upstream -------------------------------------------------

/// Every field of every log event, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<String>>);

impl tracing::field::Visit for Captured {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let line = format!("{}={value:?} ", field.name());
        self.0.lock().unwrap().push_str(&line);
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Captured {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut visitor = self.clone();
        event.record(&mut visitor);
        self.0.lock().unwrap().push('\n');
    }
}

#[tokio::test]
async fn an_upstream_401_that_quotes_the_key_never_shows_it() {
    use tracing_subscriber::layer::SubscriberExt;
    let logs = Captured::default();
    let subscriber = tracing_subscriber::registry().with(logs.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    let echo = |key: &str| {
        ResponseTemplate::new(401).set_body_raw(
            format!(
                r#"{{"error":{{"message":"Incorrect API key provided: {key}. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}}}"#
            ),
            "application/json",
        )
    };
    let openai = answering(echo(OPENAI_KEY)).await;
    let anthropic = answering(echo(ANTHROPIC_KEY)).await;
    let gemini = answering(echo(GEMINI_KEY)).await;
    // A chain, so the fallback logs each failure and the error lists every attempt.
    let chain = openai_client(&openai).with_fallback([
        anthropic_client(&anthropic).boxed(),
        gemini_client(&gemini).boxed(),
    ]);
    let err = chain.chat(&ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.attempt_errors().len(), 3, "{err}");
    let mut texts = vec![err.to_string(), format!("{err:?}"), format!("{err:#?}")];
    for attempt in err.attempt_errors() {
        texts.push(attempt.message().to_owned());
        texts.push(attempt.to_string());
    }
    let logged = logs.0.lock().unwrap().clone();
    assert!(logged.contains("fallback: target failed"), "{logged}");
    texts.push(logged);
    for text in &texts {
        for key in [OPENAI_KEY, ANTHROPIC_KEY, GEMINI_KEY] {
            assert!(!text.contains(key), "{key} leaked into:\n{text}");
        }
    }
    assert!(
        texts[0].contains("Incorrect API key provided: [redacted]"),
        "{}",
        texts[0]
    );
    // The streaming path maps errors the same way.
    let err = openai_client(&openai)
        .chat_stream(&ChatRequest::user("hi"))
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains(OPENAI_KEY), "{err}");
}

// ---- item 9: streams without their end marker ---------------------------------------------

#[tokio::test]
async fn an_openai_stream_cut_after_its_finish_reason_is_interrupted_and_a_budget_keeps_its_reservation(
) {
    let events = sse_events("openai/stream_text.sse");
    let finish = events
        .iter()
        .position(|e| e.contains("\"finish_reason\":\"") || e.contains("\"finish_reason\": \""))
        .expect("the fixture has a finish reason");
    assert!(events.len() > finish + 1, "the fixture goes on after it");
    let server = answering(sse(&events[..=finish])).await;
    let budget = Budget::builder().max_tokens(100_000).build().unwrap();
    let client = openai_client(&server).with_budget(budget.clone());
    let req = ChatRequest::user("hi").with_max_tokens(500);
    let stream = client.chat_stream(&req).await.unwrap();
    let err = stream.collect_response().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted, "{err}");
    assert!(err.to_string().contains("[DONE]"), "{err}");
    let partial = err.partial().expect("the partial answer");
    assert!(!partial.text().is_empty());
    assert!(partial.usage_unknown);
    // Nothing was reported, so the worst case stays spent rather than nothing.
    assert!(budget.tokens() >= 500, "charged {} tokens", budget.tokens());

    // The whole fixture, with its usage chunk and [DONE], settles to the real usage.
    let whole = answering(sse(&events)).await;
    let budget = Budget::builder().max_tokens(100_000).build().unwrap();
    let client = openai_client(&whole).with_budget(budget.clone());
    let response = client
        .chat_stream(&req)
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert!(!response.usage_unknown);
    assert_eq!(
        budget.tokens(),
        response.usage.input_tokens + response.usage.output_tokens
    );
}

#[tokio::test]
async fn an_anthropic_stream_cut_before_message_stop_is_interrupted() {
    let events: Vec<String> = sse_events("anthropic/stream_text.sse")
        .into_iter()
        .filter(|e| !e.contains("message_stop"))
        .collect();
    let server = answering(sse(&events)).await;
    let err = anthropic_client(&server)
        .chat_stream(&ChatRequest::user("hi"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted, "{err}");
    assert!(err.to_string().contains("message_stop"), "{err}");
    assert_eq!(
        err.partial().unwrap().text(),
        "Hello! How can I help you today?"
    );
}

#[tokio::test]
async fn an_openai_responses_stream_cut_before_response_completed_is_interrupted() {
    let events: Vec<String> = sse_events("openai-responses/stream_text.sse")
        .into_iter()
        .filter(|e| !e.contains("response.completed"))
        .collect();
    let server = answering(sse(&events)).await;
    let client = switchboard::OpenAiResponsesClient::builder()
        .model("gpt-4o")
        .api_key(OPENAI_KEY)
        .base_url(format!("{}/v1", server.uri()))
        .build()
        .unwrap();
    let err = client
        .chat_stream(&ChatRequest::user("hi"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted, "{err}");
    assert!(err.to_string().contains("response.completed"), "{err}");
}

#[tokio::test]
async fn a_gemini_stream_without_usage_on_its_last_chunk_has_unknown_usage() {
    let mut events = sse_events("gemini/stream_text.sse");
    let last = events.last_mut().unwrap();
    let mut chunk: Value =
        serde_json::from_str(last.trim().strip_prefix("data:").unwrap().trim()).unwrap();
    assert!(chunk["candidates"][0]["finishReason"].is_string());
    chunk.as_object_mut().unwrap().remove("usageMetadata");
    *last = format!("data: {chunk}\n\n");
    let server = answering(sse(&events)).await;
    let budget = Budget::builder().max_tokens(100_000).build().unwrap();
    let client = gemini_client(&server).with_budget(budget.clone());
    let req = ChatRequest::user("hi").with_max_tokens(500);
    let response = client
        .chat_stream(&req)
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert!(
        response.text().ends_with("around the Sun."),
        "{}",
        response.text()
    );
    assert!(response.usage_unknown, "the final counts never came");
    assert!(budget.tokens() >= 500, "charged {} tokens", budget.tokens());

    // With usage on the last chunk, the usage is known and charged as reported.
    let server = answering(sse(&sse_events("gemini/stream_text.sse"))).await;
    let response = gemini_client(&server)
        .chat_stream(&req)
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert!(!response.usage_unknown);
    assert_eq!(response.usage.output_tokens, 38);
}
