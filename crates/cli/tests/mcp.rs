//! Runs `switchboard mcp` as a child process and drives it with rmcp's client, over
//! standard input/output and over streamable HTTP, against mock providers replaying the
//! project's fixtures.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Value};
use switchboard_testkit::{fixture, fixture_json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "sk-test-never-shown-91c4";

type Client = RunningService<RoleClient, ()>;

/// The mock providers: OpenAI fails for `gpt-4o-mini` (so the route fails over to
/// Anthropic), answers `gpt-4o` with JSON that first breaks the schema and then matches it,
/// answers `gpt-4.1` with a tool call, and serves embeddings.
struct Mocks {
    openai: MockServer,
    anthropic: MockServer,
}

fn openai_answer(content: &str) -> Value {
    let mut body = fixture_json("openai/chat_text.json");
    body["choices"][0]["message"]["content"] = json!(content);
    body
}

fn raw(status: u16, body: Vec<u8>) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body, "application/json")
}

async fn mocks() -> Mocks {
    let openai = MockServer::start().await;
    let chat = || Mock::given(method("POST")).and(path("/v1/chat/completions"));
    chat()
        .and(body_partial_json(json!({"model": "gpt-4o-mini"})))
        .respond_with(raw(503, fixture("openai/error_503.json")))
        .mount(&openai)
        .await;
    chat()
        .and(body_partial_json(json!({"model": "gpt-4o"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(openai_answer(r#"{"city": 42}"#)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&openai)
        .await;
    chat()
        .and(body_partial_json(json!({"model": "gpt-4o"})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(openai_answer(r#"{"city": "Paris"}"#)),
        )
        .mount(&openai)
        .await;
    chat()
        .and(body_partial_json(json!({"model": "gpt-4.1"})))
        .respond_with(raw(200, fixture("openai/chat_tool_call.json")))
        .mount(&openai)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/embeddings"))
        .respond_with(raw(200, fixture("openai/embeddings.json")))
        .mount(&openai)
        .await;
    let anthropic = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(raw(200, fixture("anthropic/messages_text.json")))
        .mount(&anthropic)
        .await;
    Mocks { openai, anthropic }
}

/// Writes a config with the failover route `fast` (and `extra` TOML) to a fresh file.
fn config(name: &str, extra: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-mcp-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(
        &file,
        format!(
            r#"{extra}
[routes.fast]
targets = ["openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"]
breaker = {{ consecutive_failures = 1, cooldown_ms = 60000 }}
"#
        ),
    )
    .unwrap();
    file
}

/// The binary with a clean environment: only the mocks' keys and URLs.
fn command(mocks: &Mocks, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SWITCHBOARD_OPENAI_API_KEY", SECRET)
        .env(
            "SWITCHBOARD_OPENAI_BASE_URL",
            format!("{}/v1", mocks.openai.uri()),
        )
        .env("SWITCHBOARD_ANTHROPIC_API_KEY", SECRET)
        .env("SWITCHBOARD_ANTHROPIC_BASE_URL", mocks.anthropic.uri())
        .args(args)
        .kill_on_drop(true);
    cmd
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

fn ok(result: &CallToolResult) -> Value {
    assert_eq!(result.is_error, Some(false), "tool failed: {result:?}");
    let v = result
        .structured_content
        .clone()
        .expect("structured result");
    assert!(!v.to_string().contains(SECRET), "a key leaked: {v}");
    v
}

/// Lists the tools and calls every one, as an agent would.
async fn exercise_every_tool(client: &Client) {
    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "chat",
            "cost_estimate",
            "embed",
            "json",
            "models",
            "provider_check",
            "tools"
        ]
    );

    // A call that fails over: OpenAI answers 503, Anthropic answers.
    let v = ok(&call(client, "chat", json!({"route": "fast", "prompt": "hello"})).await);
    assert_eq!(v["provider"], "anthropic");
    assert_eq!(v["attempts"][0]["provider"], "openai");
    assert_eq!(v["attempts"][0]["status"], 503);
    assert_eq!(v["attempts"][1]["outcome"], "success");
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(v.get("cost_usd").is_some());

    // A JSON answer that needs one re-ask.
    let schema =
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
    let v = ok(&call(
        client,
        "json",
        json!({"model": "openai:gpt-4o", "prompt": "Where is the Louvre?", "schema": schema}),
    )
    .await);
    assert_eq!(v["output"], json!({"city": "Paris"}));
    assert_eq!(v["rounds"], 2);
    assert_eq!(v["provider"], "openai");

    let v = ok(&call(
        client,
        "tools",
        json!({"model": "openai:gpt-4.1", "prompt": "Weather in Paris?", "tools": [{"name": "get_weather", "parameters": {"type": "object"}}]}),
    )
    .await);
    assert_eq!(v["tool_calls"][0]["name"], "get_weather");

    let v = ok(&call(
        client,
        "embed",
        json!({"model": "openai:text-embedding-3-small", "input": ["one", "two"]}),
    )
    .await);
    assert_eq!(v["count"], v["embeddings"].as_array().unwrap().len());

    let v = ok(&call(client, "provider_check", json!({})).await);
    assert_eq!(v["ok"], true);
    assert_eq!(v["breakers"][0]["target"], "openai:gpt-4o-mini");
    assert!(v["breakers"][0]["state"]
        .as_str()
        .unwrap()
        .starts_with("open"));

    let v = ok(&call(
        client,
        "cost_estimate",
        json!({"route": "fast", "prompt": "hello", "max_tokens": 100}),
    )
    .await);
    assert_eq!(v["targets"].as_array().unwrap().len(), 2);
    assert!(v["max_cost_usd"].as_f64().unwrap() > 0.0);

    let v = ok(&call(client, "models", json!({"providers": ["anthropic"]})).await);
    assert!(v["models"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["provider"] == "anthropic"));
    assert_eq!(v["routes"][0]["alias"], "fast");

    // A bad call is a tool error, and the server goes on serving.
    let bad = call(client, "chat", json!({"route": "slow", "prompt": "hi"})).await;
    assert_eq!(bad.is_error, Some(true));
    let e = &bad.structured_content.as_ref().unwrap()["error"];
    assert_eq!(e["kind"], "invalid_request");
    assert!(e["message"].as_str().unwrap().contains("fast"));
    assert_eq!(client.list_all_tools().await.unwrap().len(), 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn stdio_server_serves_every_tool_and_keeps_keys_out_of_its_output() {
    let mocks = mocks().await;
    let file = config("stdio", "[server]\nallow_direct_models = true\n");
    let cmd = command(
        &mocks,
        &["mcp", "--config", file.to_str().unwrap(), "--model", "fast"],
    );
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::piped())
        .spawn()
        .expect("switchboard mcp starts");
    let client = ().serve(transport).await.expect("client connects over stdio");
    exercise_every_tool(&client).await;
    // No model named: `--model fast` is used.
    let v = ok(&call(&client, "chat", json!({"prompt": "hi"})).await);
    assert_eq!(v["route"], "fast");
    client.cancel().await.unwrap();
    let mut log = String::new();
    stderr
        .expect("stderr is piped")
        .read_to_string(&mut log)
        .await
        .unwrap();
    assert!(
        log.contains("MCP server on standard input/output") && log.contains("tools=7"),
        "{log}"
    );
    assert!(!log.contains(SECRET), "a key leaked to stderr: {log}");
}

/// Starts `switchboard mcp --http --port 0 --json` and returns the child and its URL.
async fn start_http(
    mocks: &Mocks,
    config: &Path,
    env: &[(&str, &str)],
) -> (tokio::process::Child, String) {
    let mut cmd = command(
        mocks,
        &[
            "mcp",
            "--http",
            "--port",
            "0",
            "--json",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("switchboard mcp --http starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await.unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    (child, v["listening"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn http_server_serves_every_tool() {
    let mocks = mocks().await;
    let file = config("http", "[server]\nallow_direct_models = true\n");
    let (mut child, url) = start_http(&mocks, &file, &[]).await;
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"),
        "{url}"
    );
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url),
    );
    let client = ().serve(transport).await.expect("client connects over HTTP");
    exercise_every_tool(&client).await;
    client.cancel().await.unwrap();
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn http_server_with_configured_keys_refuses_clients_without_one() {
    let mocks = mocks().await;
    let file = config("keys", "[server]\napi_keys_env = [\"MCP_TEST_KEY\"]\n");
    let (mut child, url) = start_http(&mocks, &file, &[("MCP_TEST_KEY", "mcp-key-5521")]).await;
    let refused = ()
        .serve(StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(url.clone()).auth_header("wrong-key"),
        ))
        .await;
    assert!(refused.is_err(), "a wrong key must be refused");
    let client = ()
        .serve(StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(url).auth_header("mcp-key-5521"),
        ))
        .await
        .expect("the right key is accepted");
    let v = ok(&call(&client, "chat", json!({"model": "fast", "prompt": "hi"})).await);
    assert_eq!(v["provider"], "anthropic");
    client.cancel().await.unwrap();
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn http_on_a_public_address_without_keys_is_refused_before_binding() {
    let mocks = mocks().await;
    let out = command(
        &mocks,
        &["mcp", "--http", "--host", "0.0.0.0", "--port", "0"],
    )
    .output()
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("api_keys_env"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_route_key_stops_the_server_with_the_variable_to_set() {
    let mocks = mocks().await;
    let file = config("nokey", "");
    let out = command(&mocks, &["mcp", "--config", file.to_str().unwrap()])
        .env_remove("SWITCHBOARD_ANTHROPIC_API_KEY")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ANTHROPIC_API_KEY"), "{stderr}");
    assert!(out.stdout.is_empty(), "stdout belongs to the protocol");
}
