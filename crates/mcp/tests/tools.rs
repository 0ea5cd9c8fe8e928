//! Drives the MCP server in process with rmcp's client (over an in-memory pipe and over
//! HTTP on loopback) against mock providers replaying the project's fixtures.

use std::collections::HashMap;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Value};
use switchboard::config::Settings;
use switchboard_mcp::{ApiKeys, McpServer, TOOL_NAMES};
use switchboard_testkit::{fixture, fixture_json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "sk-test-never-shown-7f3a";

type Client = RunningService<RoleClient, ()>;

/// An OpenAI chat body (the `chat_text` fixture) whose answer is `content`.
fn openai_answer(content: &str) -> Value {
    let mut body = fixture_json("openai/chat_text.json");
    body["choices"][0]["message"]["content"] = json!(content);
    body
}

async fn mock(server: &MockServer, route: &str, status: u16, body: Vec<u8>) {
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(ResponseTemplate::new(status).set_body_raw(body, "application/json"))
        .mount(server)
        .await;
}

/// Environment for the server: keys and base URLs of the mocks only.
fn env(openai: &MockServer, anthropic: Option<&MockServer>) -> HashMap<String, String> {
    let mut vars = HashMap::new();
    vars.insert("SWITCHBOARD_OPENAI_API_KEY".to_owned(), SECRET.to_owned());
    vars.insert(
        "SWITCHBOARD_OPENAI_BASE_URL".to_owned(),
        format!("{}/v1", openai.uri()),
    );
    if let Some(a) = anthropic {
        vars.insert(
            "SWITCHBOARD_ANTHROPIC_API_KEY".to_owned(),
            SECRET.to_owned(),
        );
        vars.insert("SWITCHBOARD_ANTHROPIC_BASE_URL".to_owned(), a.uri());
    }
    vars
}

fn server(settings: Option<Settings>, vars: HashMap<String, String>) -> McpServer {
    McpServer::with_env(settings, move |name| vars.get(name).cloned()).expect("server builds")
}

/// Connects rmcp's client to `server` over an in-memory pipe.
async fn connect(server: McpServer) -> Client {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    ().serve(client_io).await.expect("client connects")
}

async fn call(client: &Client, tool: &str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
        .expect("the call gets a result")
}

fn ok(result: &CallToolResult) -> &Value {
    assert_eq!(result.is_error, Some(false), "tool failed: {result:?}");
    result
        .structured_content
        .as_ref()
        .expect("structured result")
}

fn err(result: &CallToolResult) -> &Value {
    assert_eq!(result.is_error, Some(true), "tool succeeded: {result:?}");
    &result
        .structured_content
        .as_ref()
        .expect("structured error")["error"]
}

fn failover_settings() -> Settings {
    Settings::from_toml_str(
        r#"
[routes.fast]
targets = ["openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"]
breaker = { consecutive_failures = 1, cooldown_ms = 60000 }
"#,
    )
    .unwrap()
}

#[tokio::test]
async fn lists_seven_tools_each_with_an_object_input_schema() {
    let openai = MockServer::start().await;
    let client = connect(server(None, env(&openai, None))).await;
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, TOOL_NAMES);
    for tool in &tools {
        assert_eq!(tool.input_schema["type"], "object", "{}", tool.name);
        assert_eq!(
            tool.input_schema["additionalProperties"], false,
            "{}",
            tool.name
        );
        assert!(tool.description.as_deref().is_some_and(|d| !d.is_empty()));
    }
    let json_tool = tools.iter().find(|t| t.name == "json").unwrap();
    let props = json_tool.input_schema["properties"].as_object().unwrap();
    for key in [
        "schema",
        "max_retries",
        "model",
        "route",
        "prompt",
        "messages",
        "system",
    ] {
        assert!(props.contains_key(key), "json tool lacks `{key}`");
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn chat_returns_text_provider_usage_cost_and_attempts() {
    let openai = MockServer::start().await;
    mock(
        &openai,
        "/v1/chat/completions",
        200,
        fixture("openai/chat_text.json"),
    )
    .await;
    let client = connect(server(None, env(&openai, None))).await;
    let result = call(
        &client,
        "chat",
        json!({"model": "openai:gpt-4o", "prompt": "Capital of France?", "system": "Be brief.", "max_tokens": 50, "temperature": 0.2}),
    )
    .await;
    let v = ok(&result);
    assert!(v["text"].as_str().unwrap().contains("Paris"));
    assert_eq!(v["provider"], "openai");
    assert_eq!(v["model"], "gpt-4o-2024-08-06");
    assert_eq!(v["usage"]["input_tokens"], 1117);
    assert!(v["cost_usd"].as_f64().unwrap() > 0.0);
    assert_eq!(v["attempts"][0]["outcome"], "success");
    let sent: Value =
        serde_json::from_slice(&openai.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(
        sent["max_tokens"]
            .as_u64()
            .or(sent["max_completion_tokens"].as_u64()),
        Some(50)
    );
    assert!(!serde_json::to_string(&result).unwrap().contains(SECRET));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn route_fails_over_and_provider_check_shows_the_open_breaker() {
    let openai = MockServer::start().await;
    mock(
        &openai,
        "/v1/chat/completions",
        503,
        fixture("openai/error_503.json"),
    )
    .await;
    let anthropic = MockServer::start().await;
    mock(
        &anthropic,
        "/v1/messages",
        200,
        fixture("anthropic/messages_text.json"),
    )
    .await;
    let client = connect(server(
        Some(failover_settings()),
        env(&openai, Some(&anthropic)),
    ))
    .await;

    let result = call(&client, "chat", json!({"route": "fast", "prompt": "hello"})).await;
    let v = ok(&result);
    assert_eq!(v["route"], "fast");
    assert_eq!(v["provider"], "anthropic");
    let attempts = v["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["provider"], "openai");
    assert_eq!(attempts[0]["outcome"], "failed");
    assert_eq!(attempts[0]["status"], 503);
    assert_eq!(attempts[1]["outcome"], "success");

    let check = call(&client, "provider_check", json!({})).await;
    let v = ok(&check);
    let providers = v["providers"].as_array().unwrap();
    assert_eq!(providers.len(), 2);
    assert!(providers.iter().all(|p| p["ok"] == true));
    assert_eq!(providers[0]["key"]["set_in"], "SWITCHBOARD_OPENAI_API_KEY");
    let breakers = v["breakers"].as_array().unwrap();
    assert_eq!(breakers[0]["target"], "openai:gpt-4o-mini");
    assert!(breakers[0]["state"].as_str().unwrap().starts_with("open"));
    assert_eq!(breakers[1]["state"], "closed");
    assert!(!serde_json::to_string(&check).unwrap().contains(SECRET));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn every_target_failing_is_a_tool_error_listing_each_attempt() {
    let openai = MockServer::start().await;
    mock(
        &openai,
        "/v1/chat/completions",
        503,
        fixture("openai/error_503.json"),
    )
    .await;
    let anthropic = MockServer::start().await;
    mock(
        &anthropic,
        "/v1/messages",
        529,
        fixture("anthropic/error_529.json"),
    )
    .await;
    let client = connect(server(
        Some(failover_settings()),
        env(&openai, Some(&anthropic)),
    ))
    .await;
    let result = call(&client, "chat", json!({"model": "fast", "prompt": "hello"})).await;
    let e = err(&result);
    assert_eq!(e["kind"], "all_targets_failed");
    assert_eq!(e["attempts"].as_array().unwrap().len(), 2);
    // The server keeps serving after a failed call.
    let again = call(&client, "models", json!({"providers": ["anthropic"]})).await;
    assert_eq!(ok(&again)["routes"][0]["alias"], "fast");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn json_reasks_once_with_the_validation_error_and_returns_the_valid_object() {
    let openai = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openai_answer(r#"{"city": 42}"#)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&openai)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openai_answer(
            "```json\n{\"city\": \"Paris\", \"country\": \"France\"}\n```",
        )))
        .mount(&openai)
        .await;
    let client = connect(server(None, env(&openai, None))).await;
    let schema = json!({
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"]
    });
    let result = call(
        &client,
        "json",
        json!({"model": "openai:gpt-4o", "prompt": "Where is the Eiffel Tower?", "schema": schema}),
    )
    .await;
    let v = ok(&result);
    assert_eq!(v["output"], json!({"city": "Paris", "country": "France"}));
    assert_eq!(v["rounds"], 2);
    assert_eq!(v["rejected"].as_array().unwrap().len(), 1);
    // Usage is the sum of both rounds.
    assert_eq!(v["usage"]["input_tokens"], 2 * 1117);
    let requests = openai.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let first: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(first["response_format"]["type"], "json_schema");
    let second: Value = serde_json::from_slice(&requests[1].body).unwrap();
    let last = second["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["role"], "user");
    assert!(last["content"].as_str().unwrap().contains("city"), "{last}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn json_gives_up_after_its_retries_with_a_decode_error() {
    let openai = MockServer::start().await;
    mock(
        &openai,
        "/v1/chat/completions",
        200,
        serde_json::to_vec(&openai_answer("not json at all")).unwrap(),
    )
    .await;
    let client = connect(server(None, env(&openai, None))).await;
    let result = call(
        &client,
        "json",
        json!({"model": "openai:gpt-4o", "prompt": "x", "schema": {"type": "object"}, "max_retries": 1}),
    )
    .await;
    let e = err(&result);
    assert_eq!(e["kind"], "decode");
    assert!(e["fix"].as_str().unwrap().contains("max_retries"));
    assert_eq!(openai.received_requests().await.unwrap().len(), 2);
    let bad_schema = call(
        &client,
        "json",
        json!({"model": "openai:gpt-4o", "prompt": "x", "schema": {"type": "no-such-type"}}),
    )
    .await;
    assert_eq!(err(&bad_schema)["kind"], "invalid_request");
    assert_eq!(
        openai.received_requests().await.unwrap().len(),
        2,
        "a bad schema sends nothing"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn embed_returns_vectors_with_usage_and_cost() {
    let openai = MockServer::start().await;
    mock(
        &openai,
        "/v1/embeddings",
        200,
        fixture("openai/embeddings.json"),
    )
    .await;
    let client = connect(server(None, env(&openai, None))).await;
    let result = call(
        &client,
        "embed",
        json!({"model": "openai:text-embedding-3-small", "input": ["one", "two"]}),
    )
    .await;
    let v = ok(&result);
    assert_eq!(v["provider"], "openai");
    assert_eq!(v["count"], v["embeddings"].as_array().unwrap().len());
    assert!(v["dimensions"].as_u64().unwrap() > 0);
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(v["attempts"][0]["outcome"], "success");
    let sent: Value =
        serde_json::from_slice(&openai.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(sent["input"], json!(["one", "two"]));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn embed_on_a_route_lists_the_failed_primary_before_the_backup_that_answered() {
    let openai = MockServer::start().await;
    mock(
        &openai,
        "/v1/embeddings",
        503,
        fixture("openai/error_503.json"),
    )
    .await;
    let gemini = MockServer::start().await;
    mock(
        &gemini,
        "/v1beta/models/gemini-embedding-001:embedContent",
        200,
        fixture("gemini/embed.json"),
    )
    .await;
    let settings = Settings::from_toml_str(
        r#"
[routes.vectors]
targets = ["openai:text-embedding-3-small", "gemini:gemini-embedding-001"]
"#,
    )
    .unwrap();
    let mut vars = env(&openai, None);
    vars.insert("SWITCHBOARD_GEMINI_API_KEY".to_owned(), SECRET.to_owned());
    vars.insert("SWITCHBOARD_GEMINI_BASE_URL".to_owned(), gemini.uri());
    let client = connect(server(Some(settings), vars)).await;
    let result = call(
        &client,
        "embed",
        json!({"route": "vectors", "input": "one"}),
    )
    .await;
    let v = ok(&result);
    assert_eq!(
        (v["provider"].as_str(), v["count"].as_u64()),
        (Some("gemini"), Some(1))
    );
    let attempts: Vec<(&str, &str, Option<u64>)> = v["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["provider"].as_str().unwrap(),
                a["outcome"].as_str().unwrap(),
                a["status"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [("openai", "failed", Some(503)), ("gemini", "success", None)]
    );
    assert_eq!(gemini.received_requests().await.unwrap().len(), 1);
    assert!(!serde_json::to_string(v).unwrap().contains(SECRET));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn tools_returns_the_calls_the_model_wants() {
    let openai = MockServer::start().await;
    mock(
        &openai,
        "/v1/chat/completions",
        200,
        fixture("openai/chat_tool_call.json"),
    )
    .await;
    let client = connect(server(None, env(&openai, None))).await;
    let result = call(
        &client,
        "tools",
        json!({
            "model": "openai:gpt-4o",
            "prompt": "Weather in Paris?",
            "tools": [{"name": "get_weather", "description": "Current weather", "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}],
            "tool_choice": "required"
        }),
    )
    .await;
    let v = ok(&result);
    assert_eq!(v["tool_calls"][0]["name"], "get_weather");
    assert_eq!(v["tool_calls"][0]["arguments"]["location"], "Paris, France");
    assert_eq!(v["finish_reason"], "tool_calls");
    let sent: Value =
        serde_json::from_slice(&openai.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(sent["tool_choice"], "required");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn cost_estimate_prices_each_target_without_sending_or_needing_a_key() {
    let openai = MockServer::start().await;
    // No keys at all: pricing needs none.
    let client = connect(server(None, HashMap::new())).await;
    let result = call(
        &client,
        "cost_estimate",
        json!({"model": "openai:gpt-4o-mini", "prompt": "x".repeat(4000), "max_tokens": 1000}),
    )
    .await;
    let v = ok(&result);
    assert_eq!(v["estimated_input_tokens"], 1001);
    assert_eq!(v["max_output_tokens"], 1000);
    // gpt-4o-mini: $0.15 in, $0.60 out per million.
    let usd = v["max_cost_usd"].as_f64().unwrap();
    assert!(
        (usd - (1001.0 * 0.15 + 1000.0 * 0.60) / 1e6).abs() < 1e-9,
        "{usd}"
    );
    assert_eq!(v["targets"][0]["priced"], true);
    let unpriced = call(
        &client,
        "cost_estimate",
        json!({"model": "openai:no-such-model-xyz", "prompt": "x"}),
    )
    .await;
    assert_eq!(err(&unpriced)["kind"], "not_found");
    assert!(openai.received_requests().await.unwrap().is_empty());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn models_lists_priced_models_like_the_cli() {
    let openai = MockServer::start().await;
    let client = connect(server(None, env(&openai, None))).await;
    let result = call(&client, "models", json!({"providers": ["openai"]})).await;
    let v = ok(&result);
    let models = v["models"].as_array().unwrap();
    assert!(!models.is_empty());
    assert!(models.iter().all(|m| m["provider"] == "openai"));
    assert!(models.iter().any(|m| m["id"] == "openai:gpt-4o-mini"));
    assert!(models[0]["price_per_million"]["input"].is_number());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn bad_calls_are_typed_tool_errors_with_a_fix() {
    let openai = MockServer::start().await;
    let client = connect(server(None, HashMap::new())).await;
    let cases = [
        ("chat", json!({"prompt": "hi"}), "invalid_request", "model"),
        (
            "chat",
            json!({"model": "openai:gpt-4o", "prompt": "hi", "temprature": 1}),
            "invalid_request",
            "temperature",
        ),
        (
            "chat",
            json!({"model": "openai:gpt-4o"}),
            "invalid_request",
            "prompt",
        ),
        (
            "chat",
            json!({"model": "gpt-4o", "prompt": "hi"}),
            "invalid_request",
            "provider:model",
        ),
        (
            "chat",
            json!({"route": "nope", "prompt": "hi"}),
            "invalid_request",
            "route",
        ),
        (
            "chat",
            json!({"model": "openai:gpt-4o", "prompt": "hi", "temperature": 7}),
            "invalid_request",
            "temperature",
        ),
        (
            "chat",
            json!({"model": "openai:gpt-4o", "prompt": "hi"}),
            "config",
            "OPENAI_API_KEY",
        ),
        (
            "provider_check",
            json!({"providers": ["nope"]}),
            "config",
            "use one of",
        ),
        ("no_such_tool", json!({}), "invalid_request", "chat"),
    ];
    for (tool, args, kind, fix_mentions) in cases {
        let result = call(&client, tool, args.clone()).await;
        let e = err(&result);
        assert_eq!(e["kind"], kind, "{tool} {args}: {e}");
        assert!(
            e["fix"].as_str().unwrap_or_default().contains(fix_mentions),
            "{tool} {args}: fix should mention `{fix_mentions}`: {e}"
        );
    }
    assert!(openai.received_requests().await.unwrap().is_empty());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn http_transport_serves_the_tools_and_checks_bearer_keys() {
    let openai = MockServer::start().await;
    mock(
        &openai,
        "/v1/chat/completions",
        200,
        fixture("openai/chat_text.json"),
    )
    .await;
    let mut keys = ApiKeys::default();
    keys.push("mcp-key-123");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let srv = server(None, env(&openai, None)).with_default_model("openai:gpt-4o");
    let handle = tokio::spawn(srv.serve_http(listener, keys, async move {
        let _ = stop_rx.await;
    }));

    let refused = ()
        .serve(StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(url.clone()),
        ))
        .await;
    assert!(refused.is_err(), "a client without the key must be refused");

    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.clone()).auth_header("mcp-key-123"),
    );
    let client = ().serve(transport).await.expect("client with the key connects");
    assert_eq!(client.list_all_tools().await.unwrap().len(), 7);
    // No model named: the server's default is used.
    let result = call(&client, "chat", json!({"prompt": "hi"})).await;
    assert!(ok(&result)["text"].as_str().unwrap().contains("Paris"));
    client.cancel().await.unwrap();
    let _ = stop_tx.send(());
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn http_refuses_a_non_loopback_listener_without_keys() {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let openai = MockServer::start().await;
    let err = server(None, env(&openai, None))
        .serve_http(listener, ApiKeys::default(), std::future::ready(()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
}

#[tokio::test]
async fn a_refusal_behind_a_one_target_chain_reports_the_providers_kind() {
    let openai = MockServer::start().await;
    mock(
        &openai,
        "/v1/chat/completions",
        401,
        fixture("openai/error_401.json"),
    )
    .await;
    let anthropic = MockServer::start().await;
    let mut settings = failover_settings();
    settings.server.allow_direct_models = true;
    let client = connect(server(Some(settings), env(&openai, Some(&anthropic)))).await;
    // With a config, a direct model is served as a one-target chain, as the gateway does.
    let result = call(
        &client,
        "chat",
        json!({"model": "openai:gpt-4o", "prompt": "hi"}),
    )
    .await;
    let e = err(&result);
    assert_eq!(e["kind"], "authentication");
    assert_eq!(e["gave_up"], "all_targets_failed");
    assert_eq!(e["status"], 401);
    assert_eq!(e["attempts"][0]["error_kind"], "authentication");
    let text = format!("{:?}", result.content);
    assert!(text.contains("authentication error"), "{text}");
    assert!(!text.contains(SECRET) && !e.to_string().contains(SECRET));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_routes_budget_holds_across_calls() {
    let openai = MockServer::start().await;
    mock(
        &openai,
        "/v1/chat/completions",
        200,
        fixture("openai/chat_text.json"),
    )
    .await;
    let settings = Settings::from_toml_str(
        "[routes.capped]\ntargets = [\"openai:gpt-4o\"]\nbudget = { max_trials = 1 }\n",
    )
    .unwrap();
    let client = connect(server(Some(settings), env(&openai, None))).await;
    ok(&call(&client, "chat", json!({"route": "capped", "prompt": "one"})).await);
    let second = call(&client, "chat", json!({"route": "capped", "prompt": "two"})).await;
    assert_eq!(err(&second)["kind"], "budget_exceeded");
    assert_eq!(openai.received_requests().await.unwrap().len(), 1);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn messages_carry_tool_calls_and_results_to_the_provider() {
    let openai = MockServer::start().await;
    mock(
        &openai,
        "/v1/chat/completions",
        200,
        fixture("openai/chat_text.json"),
    )
    .await;
    let client = connect(server(None, env(&openai, None))).await;
    let result = call(
        &client,
        "tools",
        json!({
            "model": "openai:gpt-4o",
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "tool_calls": [{"id": "call_1", "name": "get_weather", "arguments": {"location": "Paris"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C, clear"}
            ],
            "tools": [{"name": "get_weather"}]
        }),
    )
    .await;
    let v = ok(&result);
    assert_eq!(v["tool_calls"], json!([]));
    assert!(v["text"].as_str().unwrap().contains("Paris"));
    let sent: Value =
        serde_json::from_slice(&openai.received_requests().await.unwrap()[0].body).unwrap();
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages[1]["tool_calls"][0]["id"], "call_1");
    assert_eq!(messages[2]["role"], "tool");
    assert_eq!(messages[2]["tool_call_id"], "call_1");
    assert_eq!(messages[2]["content"], "18C, clear");
    // A tool result for a call nobody made is refused before sending.
    let orphan = call(
        &client,
        "chat",
        json!({"model": "openai:gpt-4o", "messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}),
    )
    .await;
    assert_eq!(err(&orphan)["kind"], "invalid_request");
    assert_eq!(openai.received_requests().await.unwrap().len(), 1);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_key_the_upstream_echoes_never_reaches_the_tool_error() {
    let openai = MockServer::start().await;
    // The upstream's 401 quotes the key it was sent, in full.
    let mut body = fixture_json("openai/error_401.json");
    body["error"]["message"] = json!(format!("Incorrect API key provided: {SECRET}."));
    mock(
        &openai,
        "/v1/chat/completions",
        401,
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    let client = connect(server(None, env(&openai, None))).await;
    let result = call(
        &client,
        "chat",
        json!({"model": "openai:gpt-4o", "prompt": "hello"}),
    )
    .await;
    let e = err(&result);
    assert_eq!(e["kind"], "authentication", "{e}");
    assert!(e["message"].as_str().unwrap().contains("[redacted]"), "{e}");
    let whole = serde_json::to_string(&result).unwrap();
    assert!(!whole.contains(SECRET), "{whole}");
    client.cancel().await.unwrap();
}
