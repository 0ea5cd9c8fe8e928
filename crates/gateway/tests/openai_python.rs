//! The official `openai` Python package (and `curl` for the raw SSE framing) against a
//! gateway whose upstreams are scripted providers.
//!
//! Skips, saying why, only when `python3 -c "import openai"` fails; CI installs the package.

mod common;

use std::process::Command;

use common::*;
use switchboard_gateway::GatewayOptions;

const KEY: &str = "sb-test-gateway-key";

async fn gateway() -> Running {
    start_routes(
        vec![
            (
                "fast",
                vec![answers("primary", "model-a", "Hello from the gateway")],
            ),
            (
                "failover",
                vec![
                    fails("primary", "a", 503, None),
                    answers("backup", "b", "answered by the backup"),
                ],
            ),
            ("tools", vec![weather_tool("primary", "tool-model")]),
            (
                "limited",
                vec![fails("a", "m", 429, Some(3)), fails("b", "m", 429, Some(8))],
            ),
            ("breaks", vec![breaks_mid_stream("primary", "m")]),
        ],
        GatewayOptions::default().api_key(KEY),
    )
    .await
}

/// Says whether a missing client must fail the test instead of skipping it: `.ci/run` sets
/// `SWITCHBOARD_REQUIRE_CLIENT_TESTS=1` after installing the clients, so CI never passes by
/// skipping.
fn required() -> bool {
    std::env::var_os("SWITCHBOARD_REQUIRE_CLIENT_TESTS").is_some_and(|v| v != "0")
}

/// Skips (or, under [`required`], fails) with `why`.
fn skip(why: &str) -> bool {
    assert!(
        !required(),
        "{why}, and SWITCHBOARD_REQUIRE_CLIENT_TESTS is set"
    );
    eprintln!("SKIP: {why}");
    false
}

fn python_has_openai() -> bool {
    match Command::new("python3")
        .args(["-c", "import openai"])
        .output()
    {
        Ok(out) if out.status.success() => true,
        Ok(out) => skip(&format!(
            "`python3 -c \"import openai\"` failed: {}; install it with `pip install openai`",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => skip(&format!("python3 could not be run: {e}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_sdk_works_against_the_gateway() {
    if !python_has_openai() {
        return;
    }
    let gw = gateway().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/chat.py");
    let base = gw.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([script, &base, KEY])
            .output()
            .expect("run python3")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chat.py failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for scenario in [
        "non_streaming",
        "streaming",
        "tools",
        "failover",
        "rate_limit_error",
        "not_found_error",
        "authentication_error",
        "stream_error",
        "models",
    ] {
        assert!(
            stdout.contains(&format!("ok {scenario}\n")),
            "{scenario} did not run:\n{stdout}"
        );
    }
    gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_sees_raw_sse_framing() {
    if Command::new("curl").arg("--version").output().is_err() && !skip("curl is not installed") {
        return;
    }
    let gw = gateway().await;
    let url = format!("{}/v1/chat/completions", gw.base);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args([
                "-sS",
                "-N",
                "-D",
                "-",
                "-H",
                "content-type: application/json",
                "-H",
                &format!("authorization: Bearer {KEY}"),
                "-d",
                r#"{"model":"fast","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#,
                &url,
            ])
            .output()
            .expect("run curl")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("headers then body");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    assert!(head.contains("x-switchboard-provider: primary"), "{head}");
    // Every frame is one `data:` line followed by a blank line; the last is [DONE].
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    let frames: Vec<&str> = body.trim_end_matches("\n\n").split("\n\n").collect();
    assert!(frames.len() >= 4, "{body}");
    for frame in &frames {
        assert!(
            frame.starts_with("data: ") && !frame.contains('\n'),
            "bad frame {frame:?}"
        );
    }
    assert!(frames[0].contains("\"role\":\"assistant\""));
    assert!(frames[frames.len() - 2].contains("\"usage\""));
    gw.shutdown().await.unwrap();
}

/// Runs `tests/clients/retries.py` against `model` and returns its one line of output.
async fn sdk_error_line(base: &str, model: &str) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/retries.py");
    let (base, model) = (base.to_owned(), model.to_owned());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([script, &base, KEY, &model])
            .output()
            .expect("run python3")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success(),
        "retries.py failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_does_not_multiply_upstream_calls_the_route_already_retried() {
    if !python_has_openai() {
        return;
    }
    let down = |name: &str| {
        let provider = name.to_owned();
        switchboard::FunctionClient::builder("m")
            .provider(name)
            .respond(move |_r: &switchboard::ChatRequest| {
                Err(switchboard::Error::from_status(
                    provider.clone(),
                    503,
                    "down",
                ))
            })
            .build()
    };
    let (retried, single) = (down("a"), down("b"));
    let retry: switchboard::config::RouteSettings = switchboard::config::Settings::from_toml_str(
        "[routes.r]\ntargets = [\"openai:m\"]\nretry = { max_retries = 1, base_delay_ms = 1, max_delay_ms = 1 }\n",
    )
    .unwrap()
    .routes["r"]
        .clone();
    let gw = common::start(
        switchboard_gateway::Gateway::from_routes_with(
            vec![
                (
                    "retried",
                    retry,
                    vec![std::sync::Arc::new(retried.clone()) as switchboard::DynClient],
                ),
                (
                    "single",
                    switchboard::config::RouteSettings::default(),
                    vec![std::sync::Arc::new(single.clone()) as switchboard::DynClient],
                ),
            ],
            GatewayOptions::default().api_key(KEY),
        )
        .unwrap(),
    )
    .await;
    // The route tried twice; the SDK, told so, does not run the route again: 2 upstream
    // calls for the SDK's one call, not 3 × 2.
    let line = sdk_error_line(&gw.base, "retried").await;
    assert_eq!(line, "status 503 should_retry false");
    assert_eq!(retried.calls(), 2);
    // A route that made one attempt leaves the SDK its retries (3 calls in all).
    let line = sdk_error_line(&gw.base, "single").await;
    assert_eq!(line, "status 503 should_retry -");
    assert_eq!(single.calls(), 3);
    gw.shutdown().await.unwrap();
}

// ---- the Responses API -----------------------------------------------------------------

/// A target that answers with signed reasoning, and says whether the signature came back.
fn thinker() -> switchboard::DynClient {
    use switchboard::types::Thinking;
    use switchboard::{ChatRequest, ChatResponse, FunctionClient, Part};
    std::sync::Arc::new(
        FunctionClient::builder("thinking-model")
            .provider("anthropic")
            .respond(|r: &ChatRequest| {
                let back = r.messages.iter().flat_map(|m| &m.parts).any(|p| {
                    matches!(p, Part::Thinking(t) if t.signature.as_deref() == Some("sig-abc/+=")
                        && t.origin.as_deref() == Some("anthropic")
                        && t.text == "pondering")
                });
                Ok(if back {
                    ChatResponse::from_text("the signature came back")
                } else {
                    ChatResponse::from_parts(vec![
                        Part::Thinking(Thinking {
                            text: "pondering".into(),
                            signature: Some("sig-abc/+=".into()),
                            redacted: None,
                            origin: Some("anthropic".into()),
                        }),
                        Part::text("first answer"),
                    ])
                })
            })
            .build(),
    )
}

/// A target that answers `{"x":1,"y":2}` when asked for the `Point` JSON schema.
fn point() -> switchboard::DynClient {
    use switchboard::types::ResponseFormat;
    use switchboard::{ChatRequest, ChatResponse, FunctionClient};
    std::sync::Arc::new(
        FunctionClient::builder("json-model")
            .provider("primary")
            .respond(|r: &ChatRequest| {
                Ok(match &r.response_format {
                    Some(ResponseFormat::JsonSchema { name, .. }) if name == "Point" => {
                        ChatResponse::from_text("{\"x\":1,\"y\":2}")
                    }
                    other => ChatResponse::from_text(format!("no schema: {other:?}")),
                })
            })
            .build(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_sdk_speaks_the_responses_api() {
    use switchboard::{create_client_with, ClientOptions};
    use switchboard_testkit::fault::{Fault, FaultProvider, Protocol};

    if !python_has_openai() {
        return;
    }
    // The `cross` route: an OpenAI Chat Completions upstream that is down, then an
    // Anthropic Messages upstream, both real sockets speaking their own protocol.
    let openai = FaultProvider::builder()
        .script(vec![Fault::Unavailable; 8])
        .start()
        .await
        .unwrap();
    let anthropic = FaultProvider::builder().tokens(5).start().await.unwrap();
    let upstream = |spec: &str, base: String| {
        create_client_with(spec, &ClientOptions::new().base_url(base).api_key("k")).unwrap()
    };
    let gw = start_routes(
        vec![
            (
                "cross",
                vec![
                    upstream("openai:gpt-4o-mini", openai.base_url(Protocol::OpenAi)),
                    upstream(
                        "anthropic:claude-haiku-4-5",
                        anthropic.base_url(Protocol::Anthropic),
                    ),
                ],
            ),
            (
                "tools",
                vec![
                    fails("openai", "gpt-4o-mini", 503, None),
                    weather_tool("anthropic", "claude-haiku-4-5"),
                ],
            ),
            ("json", vec![point()]),
            ("thinker", vec![thinker()]),
            (
                "limited",
                vec![fails("a", "m", 429, Some(3)), fails("b", "m", 429, Some(8))],
            ),
            ("breaks", vec![breaks_mid_stream("primary", "m")]),
        ],
        GatewayOptions::default().api_key(KEY),
    )
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/responses.py");
    let base = gw.base.clone();
    let answer = anthropic.answer_text();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([script, &base, KEY, &answer])
            .output()
            .expect("run python3")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "responses.py failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for scenario in [
        "create_failover",
        "stream_failover",
        "function_tools",
        "structured_output",
        "reasoning_round_trip",
        "stateless_and_built_in_tools",
        "rate_limit_error",
        "stream_error",
    ] {
        assert!(
            stdout.contains(&format!("ok {scenario}\n")),
            "{scenario} did not run:\n{stdout}"
        );
    }
    assert!(openai.requests() >= 2, "the OpenAI upstream was tried");
    gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_sees_the_responses_event_framing() {
    if Command::new("curl").arg("--version").output().is_err() && !skip("curl is not installed") {
        return;
    }
    let gw = gateway().await;
    let url = format!("{}/v1/responses", gw.base);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args([
                "-sS",
                "-N",
                "-D",
                "-",
                "-H",
                "content-type: application/json",
                "-H",
                &format!("authorization: Bearer {KEY}"),
                "-d",
                r#"{"model":"fast","stream":true,"input":"hi"}"#,
                &url,
            ])
            .output()
            .expect("run curl")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("headers then body");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    assert!(head.contains("x-switchboard-provider: primary"), "{head}");
    // Every frame is an `event:` line and a `data:` line, then a blank line.
    let frames: Vec<&str> = body.trim_end_matches("\n\n").split("\n\n").collect();
    for (i, frame) in frames.iter().enumerate() {
        let (event, data) = frame.split_once('\n').expect("two lines");
        let name = event.strip_prefix("event: ").expect("event line");
        assert!(
            data.starts_with("data: {") && !data.contains('\n'),
            "{frame}"
        );
        assert!(data.contains(&format!("\"type\":\"{name}\"")), "{frame}");
        assert!(
            data.contains(&format!("\"sequence_number\":{i}")),
            "{frame}"
        );
    }
    assert!(frames[0].starts_with("event: response.created\n"), "{body}");
    assert!(
        frames
            .last()
            .unwrap()
            .starts_with("event: response.completed\n"),
        "{body}"
    );
    gw.shutdown().await.unwrap();
}
