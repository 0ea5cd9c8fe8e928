//! Runs the built `switchboard` binary against mock providers replaying recorded wire data.

use std::process::{Command, Output};

use serde_json::Value;
use switchboard_testkit::fixture;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn switchboard(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(args);
    // Start from a clean slate so keys on the machine never leak into a test.
    for var in [
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run switchboard")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

async fn openai_mock(status: u16, body_fixture: &str, sse: bool) -> MockServer {
    let server = MockServer::start().await;
    let mut template = ResponseTemplate::new(status);
    template = if sse {
        template.set_body_raw(fixture(body_fixture), "text/event-stream")
    } else {
        template.set_body_raw(fixture(body_fixture), "application/json")
    };
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_json_prints_text_usage_and_attempts() {
    let server = openai_mock(200, "openai/chat_text.json", false).await;
    let env = [
        ("SWITCHBOARD_OPENAI_API_KEY", "sk-test-secret".to_owned()),
        (
            "SWITCHBOARD_OPENAI_BASE_URL",
            format!("{}/v1", server.uri()),
        ),
    ];
    let out = tokio::task::spawn_blocking(move || {
        switchboard(
            &[
                "chat",
                "--model",
                "openai:gpt-4o",
                "--message",
                "hi",
                "--json",
            ],
            &env,
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    let expected: Value = serde_json::from_slice(&fixture("openai/chat_text.json")).unwrap();
    assert_eq!(v["text"], expected["choices"][0]["message"]["content"]);
    assert_eq!(v["provider"], "openai");
    assert_eq!(v["finish_reason"], "stop");
    assert_eq!(
        v["usage"]["input_tokens"],
        expected["usage"]["prompt_tokens"]
    );
    assert_eq!(
        v["usage"]["output_tokens"],
        expected["usage"]["completion_tokens"]
    );
    assert_eq!(
        v["usage"]["total_tokens"],
        expected["usage"]["total_tokens"]
    );
    assert_eq!(v["attempts"][0]["outcome"], "success");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("sk-test-secret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_stream_prints_text_as_it_arrives() {
    let server = openai_mock(200, "openai/stream_text.sse", true).await;
    let env = [
        ("SWITCHBOARD_OPENAI_API_KEY", "sk-test".to_owned()),
        (
            "SWITCHBOARD_OPENAI_BASE_URL",
            format!("{}/v1", server.uri()),
        ),
    ];
    let env2 = env.clone();
    let out = tokio::task::spawn_blocking(move || {
        switchboard(
            &["chat", "-m", "openai:gpt-4o", "-M", "hi", "--stream"],
            &env,
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!text.is_empty());
    // The same stream with --json gives the same text in the object.
    let out = tokio::task::spawn_blocking(move || {
        switchboard(
            &[
                "chat",
                "-m",
                "openai:gpt-4o",
                "-M",
                "hi",
                "--stream",
                "--json",
            ],
            &env2,
        )
    })
    .await
    .unwrap();
    let v = json_of(&out);
    assert_eq!(v["text"].as_str().unwrap().trim(), text);
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn fallback_answers_after_the_primary_503() {
    let primary = openai_mock(503, "openai/error_503.json", false).await;
    let backup = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("anthropic/messages_text.json"), "application/json"),
        )
        .mount(&backup)
        .await;
    let env = [
        ("SWITCHBOARD_OPENAI_API_KEY", "sk-test".to_owned()),
        (
            "SWITCHBOARD_OPENAI_BASE_URL",
            format!("{}/v1", primary.uri()),
        ),
        ("SWITCHBOARD_ANTHROPIC_API_KEY", "sk-ant-test".to_owned()),
        ("SWITCHBOARD_ANTHROPIC_BASE_URL", backup.uri()),
    ];
    let out = tokio::task::spawn_blocking(move || {
        switchboard(
            &[
                "chat",
                "--model",
                "openai:gpt-4o",
                "--fallback",
                "anthropic:claude-sonnet-4-5",
                "--message",
                "hi",
                "--json",
            ],
            &env,
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    assert_eq!(v["provider"], "anthropic");
    let attempts = v["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["provider"], "openai");
    assert_eq!(attempts[0]["outcome"], "failed");
    assert_eq!(attempts[0]["status"], 503);
    assert_eq!(attempts.last().unwrap()["outcome"], "success");
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_error_is_a_json_error_object_and_nonzero_exit() {
    let server = openai_mock(401, "openai/error_401.json", false).await;
    let env = [
        ("SWITCHBOARD_OPENAI_API_KEY", "sk-wrong".to_owned()),
        (
            "SWITCHBOARD_OPENAI_BASE_URL",
            format!("{}/v1", server.uri()),
        ),
    ];
    let out = tokio::task::spawn_blocking(move || {
        switchboard(
            &[
                "chat",
                "--model",
                "openai:gpt-4o",
                "--message",
                "hi",
                "--json",
            ],
            &env,
        )
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out);
    assert_eq!(v["error"]["kind"], "authentication");
    assert_eq!(v["error"]["status"], 401);
    assert_eq!(v["error"]["provider"], "openai");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("sk-wrong"));
}

#[test]
fn missing_key_exits_2_and_names_the_variables() {
    let out = switchboard(
        &[
            "chat",
            "--model",
            "anthropic:claude-sonnet-4-5",
            "--message",
            "hi",
            "--json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let v = json_of(&out);
    assert_eq!(v["error"]["kind"], "config");
    assert!(v["error"]["fix"]
        .as_str()
        .unwrap()
        .contains("ANTHROPIC_API_KEY"));
}

#[test]
fn message_from_stdin_is_used_and_empty_input_is_refused() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["chat", "--model", "openai:gpt-4o", "--json"])
        .env("SWITCHBOARD_OPENAI_API_KEY", "k")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"   \n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_of(&out)["error"]["kind"], "invalid_request");
}

#[tokio::test(flavor = "multi_thread")]
async fn system_max_tokens_temperature_and_stdin_message_reach_the_wire() {
    use std::io::Write;
    let server = openai_mock(200, "openai/chat_text.json", false).await;
    let base = format!("{}/v1", server.uri());
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args([
                "chat",
                "--model",
                "openai:gpt-4o",
                "--system",
                "Answer in one word.",
                "--max-tokens",
                "7",
                "--temperature",
                "0.25",
                "--json",
            ])
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .env("SWITCHBOARD_OPENAI_API_KEY", "sk-test")
            .env("SWITCHBOARD_OPENAI_BASE_URL", base)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"What is the capital of France?\n")
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    assert_eq!(v["attempts"][0]["provider"], "openai");
    assert_eq!(v["attempts"][0]["model"], "gpt-4o");
    assert_eq!(v["attempts"][0]["error_kind"], Value::Null);
    assert_eq!(v["model"], "gpt-4o-2024-08-06", "the model that served");

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(messages[0]["content"], "Answer in one word.");
    assert_eq!(messages[1]["role"], "user");
    assert_eq!(
        messages[1]["content"], "What is the capital of France?\n",
        "the message read from standard input"
    );
    let max = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"));
    assert_eq!(max, Some(&Value::from(7)), "{body}");
    assert_eq!(body["temperature"], 0.25);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_fallback_chain_lists_every_attempt_in_the_error_object() {
    let primary = openai_mock(503, "openai/error_503.json", false).await;
    let backup = openai_mock(429, "openai/error_429_rate_limit.json", false).await;
    let env = [
        ("SWITCHBOARD_OPENAI_API_KEY", "sk-test".to_owned()),
        (
            "SWITCHBOARD_OPENAI_BASE_URL",
            format!("{}/v1", primary.uri()),
        ),
        ("SWITCHBOARD_GROQ_API_KEY", "gsk-test".to_owned()),
        ("SWITCHBOARD_GROQ_BASE_URL", format!("{}/v1", backup.uri())),
    ];
    let out = tokio::task::spawn_blocking(move || {
        switchboard(
            &[
                "chat",
                "--model",
                "openai:gpt-4o",
                "--fallback",
                "groq:llama-3.3-70b-versatile",
                "--message",
                "hi",
                "--retries",
                "0",
                "--json",
            ],
            &env,
        )
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out);
    assert_eq!(v["error"]["kind"], "all_targets_failed", "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    let attempts = v["error"]["attempts"].as_array().expect("attempts listed");
    let seen: Vec<(&str, &str, u64)> = attempts
        .iter()
        .map(|a| {
            (
                a["provider"].as_str().unwrap(),
                a["error_kind"].as_str().unwrap(),
                a["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [("openai", "server", 503), ("groq", "rate_limited", 429)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_attempt_shows_the_providers_own_error_in_text_mode() {
    let primary = openai_mock(503, "openai/error_503.json", false).await;
    let backup = openai_mock(429, "openai/error_429_rate_limit.json", false).await;
    let env = [
        ("SWITCHBOARD_OPENAI_API_KEY", "sk-test-secret".to_owned()),
        (
            "SWITCHBOARD_OPENAI_BASE_URL",
            format!("{}/v1", primary.uri()),
        ),
        ("SWITCHBOARD_GROQ_API_KEY", "gsk-test-secret".to_owned()),
        ("SWITCHBOARD_GROQ_BASE_URL", format!("{}/v1", backup.uri())),
    ];
    let (alone, chain) = tokio::task::spawn_blocking(move || {
        let base = [
            "chat",
            "--model",
            "openai:gpt-4o",
            "--message",
            "hi",
            "--retries",
            "0",
        ];
        let alone = switchboard(&base, &env);
        let mut with_fallback = base.to_vec();
        with_fallback.extend(["--fallback", "groq:llama-3.3-70b-versatile"]);
        let chain = switchboard(&with_fallback, &env);
        (alone, chain)
    })
    .await
    .unwrap();

    assert_eq!(alone.status.code(), Some(1));
    assert!(alone.stdout.is_empty());
    let text = String::from_utf8_lossy(&alone.stderr);
    assert!(
        text.starts_with(
            "error: openai: server error (HTTP 503): The engine is currently overloaded"
        ),
        "{text}"
    );
    assert!(!text.contains("retries exhausted"), "{text}");
    assert!(!text.contains("policy allows"), "{text}");
    assert!(!text.contains("sk-test-secret"), "{text}");

    assert_eq!(chain.status.code(), Some(1));
    let text = String::from_utf8_lossy(&chain.stderr);
    assert!(
        text.starts_with("error: all targets failed: all 2 targets failed"),
        "{text}"
    );
    assert!(
        text.contains("\n  attempt 1: openai: server error (HTTP 503): The engine"),
        "{text}"
    );
    assert!(
        text.contains("\n  attempt 2: groq: rate limited (HTTP 429): Rate limit reached"),
        "{text}"
    );
    assert!(!text.contains("retries exhausted"), "{text}");
    assert!(!text.contains("gsk-test-secret"), "{text}");
}

#[test]
fn an_absurd_max_retry_wait_is_a_typed_error_not_a_panic() {
    for wait in ["1e20", "-1", "NaN", "inf"] {
        let out = switchboard(
            &[
                "chat",
                "--model",
                "openai:gpt-4o",
                "--message",
                "hi",
                "--json",
                &format!("--max-retry-wait={wait}"),
            ],
            &[("SWITCHBOARD_OPENAI_API_KEY", "sk-test-secret".to_owned())],
        );
        assert_ne!(out.status.code(), Some(101), "{wait}: panicked");
        let v = json_of(&out);
        assert_eq!(v["error"]["kind"], "invalid_request", "{wait}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("--max-retry-wait"),
            "{v}"
        );
    }
}
/// Runs the binary with its stdout on a real pipe whose reading end is already closed, as
/// when `| head` has read what it wanted and exited: every write fails with a broken pipe.
fn into_closed_pipe(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run switchboard");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait for switchboard")
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    for args in [
        &["models"][..],
        &["models", "--json"],
        &["config"],
        &["config", "--json"],
    ] {
        let out = into_closed_pipe(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
}

#[test]
fn models_piped_into_head_prints_the_first_lines_and_exits_zero() {
    // A real shell pipeline: `head` exits after one line while the table is still coming.
    let bin = env!("CARGO_BIN_EXE_switchboard");
    let out = Command::new("bash")
        .args([
            "-c",
            r#""$0" models | head -n 1; s=("${PIPESTATUS[@]}"); echo "status ${s[0]} ${s[1]}""#,
            bin,
        ])
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}\n{stderr}");
    assert!(lines[0].starts_with("model"), "{stdout}");
    assert_eq!(lines[1], "status 0 0", "{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
