//! Azure OpenAI (Chat Completions on deployment routes, and the v1 Responses route) and
//! Amazon Bedrock's OpenAI-compatible endpoints, over real sockets.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use switchboard::providers::azure::{AzureAuth, AzureToken};
use switchboard::providers::openai::{self, OpenAiClient};
use switchboard::providers::openai_responses::OpenAiResponsesClient;
use switchboard::providers::ClientOptions;
use switchboard::{
    create_client_with, ChatClient, ChatRequest, EmbedRequest, ErrorKind, FinishKind,
};
use switchboard_testkit::fixture;
use switchboard_testkit::wiremock::matchers::{header, method, path, query_param};
use switchboard_testkit::wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const DEPLOYMENT: &str = "gpt-4o-prod";

fn json(name: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(fixture(name), "application/json")
}

fn azure(server: &MockServer, auth: AzureAuth) -> OpenAiClient {
    OpenAiClient::builder()
        .profile(openai::profile("azure").unwrap())
        .model(DEPLOYMENT)
        .base_url(server.uri())
        .azure_auth(auth)
        .build()
        .unwrap()
}

fn chat_path() -> String {
    format!("/openai/deployments/{DEPLOYMENT}/chat/completions")
}

#[tokio::test]
async fn chat_goes_to_the_deployment_route_with_api_version_and_api_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(chat_path()))
        .and(query_param(
            "api-version",
            openai::AZURE_DEFAULT_API_VERSION,
        ))
        .and(header("api-key", "azure-key"))
        .respond_with(json("azure/chat_text.json"))
        .expect(1)
        .mount(&server)
        .await;
    let r = azure(&server, AzureAuth::api_key("azure-key"))
        .chat(&ChatRequest::user("capital of France?"))
        .await
        .unwrap();
    assert_eq!(r.text(), "Paris is the capital of France.");
    assert_eq!(r.provider, "azure");
    assert_eq!(r.model, DEPLOYMENT);
    assert_eq!(r.served_model.as_deref(), Some("gpt-4o-2024-11-20"));
    let requests = server.received_requests().await.unwrap();
    assert!(!requests[0].headers.contains_key("authorization"));
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["model"], DEPLOYMENT);
}

#[tokio::test]
async fn the_api_version_and_an_endpoint_with_openai_suffix_are_accepted() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(chat_path()))
        .and(query_param("api-version", "2025-04-01-preview"))
        .respond_with(json("azure/chat_text.json"))
        .expect(1)
        .mount(&server)
        .await;
    let client = OpenAiClient::builder()
        .profile(openai::profile("azure").unwrap())
        .model(DEPLOYMENT)
        .base_url(format!("{}/openai/", server.uri()))
        .api_key("k")
        .api_version("2025-04-01-preview")
        .build()
        .unwrap();
    client.chat(&ChatRequest::user("hi")).await.unwrap();
}

#[tokio::test]
async fn embeddings_use_the_deployment_route() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/openai/deployments/{DEPLOYMENT}/embeddings")))
        .and(query_param(
            "api-version",
            openai::AZURE_DEFAULT_API_VERSION,
        ))
        .respond_with(json("openai/embeddings.json"))
        .expect(1)
        .mount(&server)
        .await;
    let r = azure(&server, AzureAuth::api_key("k"))
        .embed(&EmbedRequest::new(["a", "b"]))
        .await
        .unwrap();
    assert_eq!(r.embeddings.len(), 2);
}

#[tokio::test]
async fn a_content_filter_400_is_content_filtered_and_names_the_category() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            fixture("azure/error_400_content_filter.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    let err = azure(&server, AzureAuth::api_key("k"))
        .chat(&ChatRequest::user("something filtered"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContentFiltered);
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.code(), Some("content_filter"));
    assert!(err.message().contains("violence"), "{err}");
    assert!(!err.message().contains("hate"), "{err}");
    assert_eq!(err.provider(), Some("azure"));
}

#[tokio::test]
async fn a_content_filter_finish_reason_is_reported() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json("azure/chat_finish_content_filter.json"))
        .mount(&server)
        .await;
    let r = azure(&server, AzureAuth::api_key("k"))
        .chat(&ChatRequest::user("hi"))
        .await
        .unwrap();
    assert_eq!(r.finish_reason.kind, FinishKind::ContentFilter);
    assert_eq!(r.text(), "");
}

/// Answers 401 to `expired`, 200 to anything else.
struct RefuseToken(&'static str);

impl Respond for RefuseToken {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let auth = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if auth == format!("Bearer {}", self.0) {
            ResponseTemplate::new(401).set_body_raw(
                fixture("azure/error_401_expired_token.json"),
                "application/json",
            )
        } else {
            json("azure/chat_text.json")
        }
    }
}

fn provider_of(tokens: &'static [&'static str]) -> (AzureAuth, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let auth = AzureAuth::token_provider(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            Ok(AzureToken::new(
                tokens[n.min(tokens.len() - 1)],
                SystemTime::now() + Duration::from_secs(3600),
            ))
        }
    });
    (auth, calls)
}

#[tokio::test]
async fn an_expired_entra_token_refreshes_and_succeeds_on_retry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(RefuseToken("expired-token"))
        .mount(&server)
        .await;
    let (auth, calls) = provider_of(&["expired-token", "fresh-token"]);
    let client = azure(&server, auth);
    let r = client.chat(&ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.text(), "Paris is the capital of France.");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let requests = server.received_requests().await.unwrap();
    let sent: Vec<_> = requests
        .iter()
        .map(|r| r.headers["authorization"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent, ["Bearer expired-token", "Bearer fresh-token"]);
    assert!(!requests[0].headers.contains_key("api-key"));

    // The fresh token is cached: the next call fetches nothing.
    client.chat(&ChatRequest::user("again")).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_token_the_provider_keeps_refusing_is_an_authentication_error_after_one_retry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(RefuseToken("bad"))
        .mount(&server)
        .await;
    let (auth, calls) = provider_of(&["bad"]);
    let err = azure(&server, auth)
        .chat(&ChatRequest::user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Authentication);
    assert!(err.fix().unwrap().contains("AZURE_OPENAI_API_KEY"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_stream_also_refreshes_an_expired_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(RefuseToken("old"))
        .mount(&server)
        .await;
    let (auth, _) = provider_of(&["old", "new"]);
    // The mock answers with a JSON completion, not SSE; the point is the retry itself.
    let client = azure(&server, auth);
    let _ = client.chat_stream(&ChatRequest::user("hi")).await;
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].headers["authorization"], "Bearer new");
}

#[tokio::test]
async fn azure_responses_uses_the_v1_route_without_api_version() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/openai/v1/responses"))
        .and(header("api-key", "k"))
        .respond_with(json("openai-responses/response_text.json"))
        .expect(1)
        .mount(&server)
        .await;
    let client = OpenAiResponsesClient::builder()
        .azure_endpoint(server.uri())
        .model(DEPLOYMENT)
        .api_key("k")
        .build()
        .unwrap();
    let r = client.chat(&ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.provider, "azure-responses");
    assert_eq!(r.text(), "The capital of France is Paris.");
    let requests = server.received_requests().await.unwrap();
    assert!(requests[0].url.query().is_none());
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["model"], DEPLOYMENT);
}

#[tokio::test]
async fn azure_responses_reads_content_filter_errors_with_entra_tokens() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/openai/v1/responses"))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            fixture("azure/error_400_content_filter.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    let (auth, _) = provider_of(&["t"]);
    let err = OpenAiResponsesClient::builder()
        .azure_endpoint(server.uri())
        .model(DEPLOYMENT)
        .azure_auth(auth)
        .build()
        .unwrap()
        .chat(&ChatRequest::user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContentFiltered);
    assert!(err.message().contains("violence"));
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests[0].headers["authorization"], "Bearer t");
}

#[tokio::test]
async fn create_client_builds_azure_from_variables_and_a_token_provider_from_options() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(chat_path()))
        .and(query_param("api-version", "2024-12-01-preview"))
        .respond_with(RefuseToken("stale"))
        .mount(&server)
        .await;
    let uri = server.uri();
    let (auth, calls) = provider_of(&["stale", "fresh"]);
    let opts = ClientOptions::new()
        .env(move |name| match name {
            "AZURE_OPENAI_ENDPOINT" => Some(uri.clone()),
            "OPENAI_API_VERSION" => Some("2024-12-01-preview".into()),
            _ => None,
        })
        .azure_auth(auth);
    let client = create_client_with(&format!("azure:{DEPLOYMENT}"), &opts).unwrap();
    client.chat(&ChatRequest::user("hi")).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

// ---- Amazon Bedrock ----------------------------------------------------------------------

#[tokio::test]
async fn bedrock_speaks_chat_completions_with_a_bearer_api_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/openai/v1/chat/completions"))
        .and(header("authorization", "Bearer bedrock-api-key"))
        .respond_with(json("bedrock/chat_text.json"))
        .expect(1)
        .mount(&server)
        .await;
    let uri = server.uri();
    let opts = ClientOptions::new().env(move |name| match name {
        "AWS_BEARER_TOKEN_BEDROCK" => Some("bedrock-api-key".into()),
        "SWITCHBOARD_BEDROCK_BASE_URL" => Some(format!("{uri}/openai/v1")),
        _ => None,
    });
    let client = create_client_with("bedrock:openai.gpt-oss-120b-1:0", &opts).unwrap();
    let r = client.chat(&ChatRequest::user("capital?")).await.unwrap();
    assert_eq!(r.provider, "bedrock");
    assert_eq!(r.text(), "Paris is the capital of France.");
    assert_eq!(r.thinking().len(), 1);
    assert_eq!(r.usage.total_tokens, 106);
    let body: Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(body["model"], "openai.gpt-oss-120b-1:0");
}

#[tokio::test]
async fn bedrock_responses_speaks_the_responses_api() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/openai/v1/responses"))
        .and(header("authorization", "Bearer bk"))
        .respond_with(json("openai-responses/response_text.json"))
        .expect(1)
        .mount(&server)
        .await;
    let opts = ClientOptions::new()
        .env(|_| None)
        .api_key("bk")
        .base_url(format!("{}/openai/v1", server.uri()));
    let client = create_client_with("bedrock-responses:openai.gpt-oss-120b", &opts).unwrap();
    let r = client.chat(&ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.provider, "bedrock-responses");
}
