//! Each OpenAI-compatible vendor profile: default URL, auth header and quirks, checked over
//! real sockets.

use serde_json::{json, Value};
use switchboard::providers::openai::{self, MaxTokensField, OpenAiClient};
use switchboard::types::{ReasoningEffort, ResponseFormat};
use switchboard::{ChatClient, ChatRequest, ErrorKind};
use switchboard_testkit::fixture;
use switchboard_testkit::wiremock::matchers::{method, path};
use switchboard_testkit::wiremock::{Mock, MockServer, ResponseTemplate};

/// (name, default base URL, key required)
const DEFAULTS: &[(&str, Option<&str>, bool)] = &[
    ("openai", Some("https://api.openai.com/v1"), true),
    ("xai", Some("https://api.x.ai/v1"), true),
    ("groq", Some("https://api.groq.com/openai/v1"), true),
    ("mistral", Some("https://api.mistral.ai/v1"), true),
    ("openrouter", Some("https://openrouter.ai/api/v1"), true),
    ("deepseek", Some("https://api.deepseek.com/v1"), true),
    ("together", Some("https://api.together.xyz/v1"), true),
    ("ollama", Some("http://localhost:11434/v1"), false),
    ("vllm", Some("http://localhost:8000/v1"), false),
    ("openai-compatible", None, false),
    ("azure", None, false),
    (
        "bedrock",
        Some("https://bedrock-runtime.us-east-1.amazonaws.com/openai/v1"),
        true,
    ),
];

/// (name, token-limit field, stream usage option, native json_schema, reasoning_effort, seed field)
const QUIRKS: &[(&str, &str, bool, bool, bool, &str)] = &[
    ("openai", "max_completion_tokens", true, true, true, "seed"),
    ("xai", "max_completion_tokens", true, true, true, "seed"),
    ("groq", "max_completion_tokens", true, true, true, "seed"),
    ("mistral", "max_tokens", false, true, false, "random_seed"),
    ("openrouter", "max_tokens", true, true, false, "seed"),
    ("deepseek", "max_tokens", true, false, false, "seed"),
    ("together", "max_tokens", false, true, false, "seed"),
    ("ollama", "max_tokens", true, true, true, "seed"),
    ("vllm", "max_tokens", true, true, false, "seed"),
    ("openai-compatible", "max_tokens", true, true, false, "seed"),
    ("bedrock", "max_tokens", true, true, false, "seed"),
];

#[test]
fn every_profile_has_its_documented_default_base_url() {
    assert_eq!(openai::profiles().len(), DEFAULTS.len());
    for (name, base_url, key_required) in DEFAULTS {
        let p = openai::profile(name).unwrap_or_else(|| panic!("{name} is built in"));
        assert_eq!(p.base_url, *base_url, "{name}");
        assert_eq!(p.key_required, *key_required, "{name}");
        let upper = name.to_ascii_uppercase().replace('-', "_");
        // Azure keeps the SDK's `AZURE_OPENAI_` stem: SWITCHBOARD_AZURE_OPENAI_API_KEY.
        assert!(
            p.key_env[0].starts_with(&format!("SWITCHBOARD_{upper}_"))
                && p.key_env[0].ends_with("_API_KEY"),
            "{name}"
        );
    }
    assert_eq!(
        openai::profile("openai").unwrap().key_env,
        ["SWITCHBOARD_OPENAI_API_KEY", "OPENAI_API_KEY"]
    );
    assert!(openai::profile("no-such-vendor").is_none());
}

#[test]
fn the_default_profile_is_openai() {
    let client = OpenAiClient::builder()
        .model("gpt-4o-mini")
        .api_key("k")
        .build()
        .unwrap();
    assert_eq!(client.profile().name, "openai");
}

#[tokio::test]
async fn every_profile_sends_its_quirks_with_a_bearer_key() {
    for (name, max_field, stream_usage, json_schema, effort, seed_field) in QUIRKS {
        let profile = openai::profile(name).unwrap();
        assert_eq!(
            profile.quirks.max_tokens_field.as_str(),
            *max_field,
            "{name}"
        );
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(fixture("openai/stream_text.sse"), "text/event-stream"),
            )
            .mount(&server)
            .await;
        let client = OpenAiClient::builder()
            .profile(profile)
            .model("some-model")
            .api_key("vendor-key")
            .base_url(format!("{}/v1", server.uri()))
            .build()
            .unwrap();
        let req = ChatRequest::user("hi")
            .with_max_tokens(64)
            .with_seed(3)
            .with_reasoning_effort(ReasoningEffort::Low)
            .with_response_format(ResponseFormat::JsonSchema {
                name: "a".into(),
                schema: json!({"type": "object"}),
                strict: false,
            });
        let response = client
            .chat_stream(&req)
            .await
            .unwrap()
            .collect_response()
            .await
            .unwrap();
        assert_eq!(response.provider, *name);

        let requests = server.received_requests().await.unwrap();
        assert_eq!(
            requests[0].headers["authorization"], "Bearer vendor-key",
            "{name}"
        );
        let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
        assert_eq!(body[*max_field], 64, "{name}");
        let other = match profile.quirks.max_tokens_field {
            MaxTokensField::MaxTokens => "max_completion_tokens",
            _ => "max_tokens",
        };
        assert!(body.get(other).is_none(), "{name}");
        assert_eq!(
            body.get("stream_options").is_some(),
            *stream_usage,
            "{name}"
        );
        assert_eq!(body["stream"], true, "{name}");
        let format = body["response_format"]["type"].as_str().unwrap();
        assert_eq!(format == "json_schema", *json_schema, "{name}");
        assert_eq!(body.get("reasoning_effort").is_some(), *effort, "{name}");
        assert_eq!(body[*seed_field], 3, "{name}");
        assert!(body.get("service_tier").is_none(), "{name}");
    }
}

#[tokio::test]
async fn a_keyless_local_server_gets_no_authorization_header() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("openai/chat_text.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let client = OpenAiClient::builder()
        .profile(openai::profile("ollama").unwrap())
        .model("llama3.2")
        .base_url(format!("{}/v1", server.uri()))
        .build()
        .unwrap();
    client.chat(&ChatRequest::user("hi")).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    assert!(!requests[0].headers.contains_key("authorization"));
}

#[test]
fn openai_compatible_without_a_base_url_is_a_config_error_naming_the_variable() {
    let err = OpenAiClient::builder()
        .profile(openai::profile("openai-compatible").unwrap())
        .model("local-model")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.to_string()
            .contains("SWITCHBOARD_OPENAI_COMPATIBLE_BASE_URL"),
        "{err}"
    );
}

#[test]
fn a_missing_required_key_is_a_config_error_naming_the_variables() {
    let err = OpenAiClient::builder()
        .profile(openai::profile("groq").unwrap())
        .model("llama-3.3-70b-versatile")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let text = err.to_string();
    assert!(
        text.contains("SWITCHBOARD_GROQ_API_KEY or GROQ_API_KEY"),
        "{text}"
    );
}

#[test]
fn a_missing_model_or_a_bad_url_is_a_config_error() {
    let err = OpenAiClient::builder().api_key("k").build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("model"));
    let err = OpenAiClient::builder()
        .model("m")
        .api_key("k")
        .base_url("api.openai.com/v1")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}
