//! Hostile requests over real sockets: made-up direct model names, odd `n` values, wrong
//! methods, a handler that panics, short keys on a public address, and error messages
//! written for HTTP clients rather than Rust callers.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::{json, Value};
use switchboard::config::Settings;
use switchboard::{ChatRequest, ChatResponse, DynClient, FunctionClient};
use switchboard_gateway::{Gateway, GatewayOptions};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn post(base: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .await
        .unwrap()
}

async fn json_of(resp: reqwest::Response) -> Value {
    let text = resp.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
}

fn env(name: &str) -> Option<String> {
    (name == "OPENAI_API_KEY").then(|| "sk-test-key".to_owned())
}

/// An OpenAI-compatible upstream answering every chat completion with the documented
/// fixture.
async fn openai_upstream() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            switchboard_testkit::fixture("openai/chat_text.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    server
}

async fn gateway_from(config: &str) -> Running {
    let settings = Settings::from_toml_str(config).unwrap();
    start(Gateway::with_env(settings, env).unwrap()).await
}

#[tokio::test]
async fn direct_models_are_off_unless_the_config_turns_them_on() {
    let upstream = openai_upstream().await;
    let gw = gateway_from(&format!(
        "[providers.openai]\nbase_url = \"{}/v1\"\n",
        upstream.uri()
    ))
    .await;
    let resp = post(&gw.base, hello("openai:gpt-4o")).await;
    assert_eq!(resp.status(), 404);
    let body = json_of(resp).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("turned off"),
        "{body}"
    );
    // Local providers are not reached either.
    let resp = post(&gw.base, hello("ollama:llama3")).await;
    assert_eq!(resp.status(), 404);
    assert!(upstream.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn direct_models_are_limited_to_the_listed_providers() {
    let upstream = openai_upstream().await;
    let gw = gateway_from(&format!(
        "[server]\nallow_direct_models = true\ndirect_providers = [\"openai\"]\n[providers.openai]\nbase_url = \"{}/v1\"\n",
        upstream.uri()
    ))
    .await;
    let resp = post(&gw.base, hello("openai:gpt-4o")).await;
    assert_eq!(resp.status(), 200);
    for refused in ["ollama:llama3", "vllm:x", "nonsense:model"] {
        let resp = post(&gw.base, hello(refused)).await;
        assert_eq!(resp.status(), 404, "{refused}");
        let body = json_of(resp).await;
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("name one of: openai"), "{message}");
    }
}

#[tokio::test]
async fn direct_models_share_one_budget_whatever_name_they_use() {
    let upstream = openai_upstream().await;
    let gw = gateway_from(&format!(
        "[server]\nallow_direct_models = true\n[server.direct]\nbudget = {{ max_trials = 2 }}\n[providers.openai]\nbase_url = \"{}/v1\"\n",
        upstream.uri()
    ))
    .await;
    assert_eq!(post(&gw.base, hello("openai:gpt-4o")).await.status(), 200);
    assert_eq!(
        post(&gw.base, hello("openai:gpt-4o-mini")).await.status(),
        200
    );
    // A third name does not start a fresh budget.
    let resp = post(&gw.base, hello("openai:gpt-4.1")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(json_of(resp).await["error"]["code"], "budget_exceeded");
    assert_eq!(upstream.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn many_direct_names_add_one_metrics_label_not_one_each() {
    let upstream = openai_upstream().await;
    let gw = gateway_from(&format!(
        "[server]\nallow_direct_models = true\n[providers.openai]\nbase_url = \"{}/v1\"\n",
        upstream.uri()
    ))
    .await;
    let metrics = || async {
        reqwest::get(format!("{}/metrics", gw.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert_eq!(post(&gw.base, hello("openai:model-0")).await.status(), 200);
    let after_one = metrics().await;
    for i in 1..200 {
        assert_eq!(
            post(&gw.base, hello(&format!("openai:model-{i}")))
                .await
                .status(),
            200
        );
    }
    let after_many = metrics().await;
    assert!(!after_many.contains("model-1"), "{after_many}");
    assert!(
        after_many.contains(r#"requests_total{route="direct",dialect="chat",status="200"} 200"#),
        "{after_many}"
    );
    assert!(
        after_many
            .contains(r#"attempts_total{provider="openai",model="direct",outcome="success"} 200"#),
        "{after_many}"
    );
    assert_eq!(
        after_one.lines().count(),
        after_many.lines().count(),
        "the same series, only bigger numbers"
    );
}

#[tokio::test]
async fn n_other_than_the_integer_one_is_a_400() {
    let gw = start_routes(
        vec![("fast", vec![answers("p", "m", "hi")])],
        GatewayOptions::default(),
    )
    .await;
    for n in [json!(2.0), json!("2"), json!(-1), json!(1e20), json!(2)] {
        let mut body = hello("fast");
        body["n"] = n.clone();
        let resp = post(&gw.base, body).await;
        assert_eq!(resp.status(), 400, "n = {n}");
        let body = json_of(resp).await;
        assert_eq!(body["error"]["param"], "n", "{body}");
    }
    let mut body = hello("fast");
    body["n"] = json!(1);
    assert_eq!(post(&gw.base, body).await.status(), 200);
}

#[tokio::test]
async fn a_wrong_method_is_a_405_in_openai_json_with_allow() {
    let gw = start_routes(
        vec![("fast", vec![answers("p", "m", "hi")])],
        GatewayOptions::default(),
    )
    .await;
    let client = reqwest::Client::new();
    for (verb, path, allowed) in [
        (reqwest::Method::GET, "/v1/chat/completions", "POST"),
        (reqwest::Method::DELETE, "/v1/embeddings", "POST"),
        (reqwest::Method::POST, "/v1/models", "GET"),
    ] {
        let resp = client
            .request(verb.clone(), format!("{}{path}", gw.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{verb} {path}");
        let allow = resp.headers()["allow"].to_str().unwrap().to_owned();
        assert!(allow.contains(allowed), "{verb} {path}: allow = {allow}");
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "application/json"
        );
        let body = json_of(resp).await;
        assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(verb.as_str()),
            "{body}"
        );
    }
}

#[tokio::test]
async fn get_models_by_id_answers_an_alias_and_404s_the_rest() {
    let gw = start_routes(
        vec![("fast", vec![answers("p", "m", "hi")])],
        GatewayOptions::default(),
    )
    .await;
    let resp = reqwest::get(format!("{}/v1/models/fast", gw.base))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = json_of(resp).await;
    assert_eq!(body["id"], "fast");
    assert_eq!(body["object"], "model");
    let resp = reqwest::get(format!("{}/v1/models/slow", gw.base))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(json_of(resp).await["error"]["code"], "model_not_found");
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_json_answer_and_the_gateway_goes_on() {
    let panics: DynClient = Arc::new(
        FunctionClient::builder("m")
            .provider("buggy")
            .respond(|_r: &ChatRequest| -> switchboard::Result<ChatResponse> {
                panic!("a bug deep in a client")
            })
            .build(),
    );
    let gw = start_routes(
        vec![
            ("buggy", vec![panics]),
            ("fast", vec![answers("p", "m", "hi")]),
        ],
        GatewayOptions::default(),
    )
    .await;
    let resp = post(&gw.base, hello("buggy")).await;
    assert_eq!(resp.status(), 500);
    let body = json_of(resp).await;
    assert_eq!(body["error"]["type"], "server_error");
    assert_eq!(body["error"]["code"], "internal_error");
    assert!(
        !body.to_string().contains("a bug deep"),
        "the panic message stays in the log: {body}"
    );
    assert_eq!(post(&gw.base, hello("fast")).await.status(), 200);
    let metrics = reqwest::get(format!("{}/metrics", gw.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("switchboard_gateway_in_flight 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_stream_that_panics_ends_with_an_error_event_not_a_dropped_connection() {
    use futures_util::StreamExt;
    let panics: DynClient = Arc::new(
        FunctionClient::builder("m")
            .provider("buggy")
            .stream_async(|_r| {
                Box::pin(async {
                    let first =
                        futures_util::stream::iter(vec![Ok(switchboard::StreamEvent::TextDelta {
                            text: "Half an ".into(),
                        })]);
                    let then = futures_util::stream::once(async {
                        panic!("a bug in the middle of a stream")
                    });
                    Ok(first.chain(then).boxed())
                })
            })
            .build(),
    );
    let gw = start_routes(
        vec![
            ("buggy", vec![panics]),
            ("fast", vec![answers("p", "m", "hi")]),
        ],
        GatewayOptions::default(),
    )
    .await;
    let mut body = hello("buggy");
    body["stream"] = json!(true);
    let resp = post(&gw.base, body).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.expect("the stream ends cleanly");
    assert!(text.contains("Half an "), "{text}");
    let last = text.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("data: {\"error\"") && last.contains("internal error"),
        "{text}"
    );
    assert!(!text.contains("[DONE]"), "{text}");
    assert_eq!(post(&gw.base, hello("fast")).await.status(), 200);
}

#[tokio::test]
async fn error_messages_speak_http_not_rust() {
    let gw = start_routes(
        vec![("fast", vec![answers("p", "m", "hi")])],
        GatewayOptions::default(),
    )
    .await;
    let resp = post(&gw.base, json!({"model": "fast", "messages": []})).await;
    assert_eq!(resp.status(), 400);
    let body = json_of(resp).await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("`messages`"), "{message}");
    assert!(!message.contains("::"), "{message}");
    let resp = post(
        &gw.base,
        json!({"model": "fast", "messages": [{"role": "user", "content": "x"}],
               "tools": [], "tool_choice": {"type": "function", "function": {"name": "f"}}}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let message = json_of(resp).await["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("`tools`") && !message.contains("with_tool"),
        "{message}"
    );
}

#[tokio::test]
async fn a_short_gateway_key_is_refused_for_a_public_address() {
    let config = "[server]\nhost = \"0.0.0.0\"\napi_keys_env = [\"GW_KEY\"]\n";
    let settings = Settings::from_toml_str(config).unwrap();
    let err = Gateway::with_env(settings.clone(), |name| {
        (name == "GW_KEY").then(|| "k".to_owned())
    })
    .unwrap_err();
    assert!(err.message().contains("1 characters"), "{err}");
    assert!(err.message().contains("at least 16"), "{err}");
    Gateway::with_env(settings, |name| {
        (name == "GW_KEY").then(|| "a-key-of-24-characters!!".to_owned())
    })
    .unwrap();

    // The same rule when serving a prebuilt gateway on a non-loopback listener.
    let gateway = Gateway::from_routes(
        vec![("fast", vec![answers("p", "m", "hi")])],
        GatewayOptions::default().api_key("short"),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = gateway
        .serve(listener, std::future::ready(()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    assert!(err.to_string().contains("at least 16"), "{err}");

    // On loopback a short key is still fine (a local tool's shared secret).
    let loopback = Settings::from_toml_str("[server]\napi_keys_env = [\"GW_KEY\"]\n").unwrap();
    Gateway::with_env(loopback, |name| (name == "GW_KEY").then(|| "k".to_owned())).unwrap();
}
