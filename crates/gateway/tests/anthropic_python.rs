//! The official `anthropic` Python package against the gateway's Messages front door, whose
//! upstreams are scripted providers and real Anthropic and OpenAI clients talking to
//! wiremock servers that replay recorded wire data (so failover crosses protocols).
//!
//! Skips, saying why, only when `python3 -c "import anthropic"` fails and
//! `SWITCHBOARD_REQUIRE_CLIENT_TESTS` is unset; CI installs the package and sets it.

mod common;

use std::process::Command;

use common::*;
use switchboard::providers::openai::OpenAiClient;
use switchboard::{AnthropicClient, ChatClientExt, DynClient};
use switchboard_gateway::GatewayOptions;
use switchboard_testkit::fixture;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sb-test-gateway-key";

/// Says whether a missing client must fail the test instead of skipping it.
fn required() -> bool {
    std::env::var_os("SWITCHBOARD_REQUIRE_CLIENT_TESTS").is_some_and(|v| v != "0")
}

fn python_has_anthropic() -> bool {
    let why = match Command::new("python3")
        .args(["-c", "import anthropic"])
        .output()
    {
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!(
            "`python3 -c \"import anthropic\"` failed: {}; install it with `pip install anthropic`",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("python3 could not be run: {e}"),
    };
    assert!(
        !required(),
        "{why}, and SWITCHBOARD_REQUIRE_CLIENT_TESTS is set"
    );
    eprintln!("SKIP: {why}");
    false
}

async fn upstream(route: &str, status: u16, name: &str) -> MockServer {
    let mime = if name.ends_with(".sse") {
        "text/event-stream"
    } else {
        "application/json"
    };
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(ResponseTemplate::new(status).set_body_raw(fixture(name), mime))
        .mount(&server)
        .await;
    server
}

fn anthropic_at(server: &MockServer) -> DynClient {
    AnthropicClient::builder()
        .model("claude-sonnet-4-5")
        .api_key("sk-ant-upstream")
        .base_url(server.uri())
        .build()
        .unwrap()
        .boxed()
}

fn openai_at(server: &MockServer) -> DynClient {
    OpenAiClient::builder()
        .model("gpt-4o")
        .api_key("sk-openai-upstream")
        .base_url(format!("{}/v1", server.uri()))
        .build()
        .unwrap()
        .boxed()
}

/// The signature of the recorded thinking stream's `signature_delta`.
fn recorded_signature() -> String {
    let text = String::from_utf8(fixture("anthropic/stream_thinking.sse")).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("signature_delta"))
        .expect("the fixture has a signature_delta");
    let data: serde_json::Value = serde_json::from_str(line.trim_start_matches("data: ")).unwrap();
    data["delta"]["signature"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_anthropic_sdk_works_against_the_messages_front_door() {
    if !python_has_anthropic() {
        return;
    }
    let overloaded = upstream("/v1/messages", 529, "anthropic/error_529.json").await;
    let gpt = upstream("/v1/chat/completions", 200, "openai/chat_text.json").await;
    let gpt_stream = upstream("/v1/chat/completions", 200, "openai/stream_text.sse").await;
    let thinking_stream = upstream("/v1/messages", 200, "anthropic/stream_thinking.sse").await;
    let thinking = upstream("/v1/messages", 200, "anthropic/messages_thinking.json").await;
    let gw = start_routes(
        vec![
            (
                "fast",
                vec![answers("primary", "model-a", "Hello from the gateway")],
            ),
            ("cross", vec![anthropic_at(&overloaded), openai_at(&gpt)]),
            (
                "cross-stream",
                vec![anthropic_at(&overloaded), openai_at(&gpt_stream)],
            ),
            ("claude-stream", vec![anthropic_at(&thinking_stream)]),
            ("claude", vec![anthropic_at(&thinking)]),
            ("tools", vec![weather_tool("primary", "tool-model")]),
            ("limited", vec![fails("a", "m", 429, Some(1))]),
            ("down", vec![fails("a", "m", 529, Some(1))]),
            ("breaks", vec![breaks_mid_stream("primary", "m")]),
        ],
        GatewayOptions::default().api_key(KEY),
    )
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/messages.py");
    let base = gw.base.clone();
    let signature = recorded_signature();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([script, &base, KEY, &signature])
            .output()
            .expect("run python3")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "messages.py failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    eprintln!("{stderr}");
    for scenario in [
        "create",
        "failover",
        "stream_text",
        "stream_failover",
        "stream_thinking",
        "thinking_round_trip",
        "tools",
        "count_tokens",
        "models",
        "rate_limit_error",
        "overloaded_error",
        "errors",
        "stream_error",
    ] {
        assert!(
            stdout.contains(&format!("ok {scenario}\n")),
            "{scenario} did not run:\n{stdout}"
        );
    }
    // The overloaded Anthropic target was tried before the OpenAI one answered.
    assert!(!overloaded.received_requests().await.unwrap().is_empty());
    gw.shutdown().await.unwrap();
}
