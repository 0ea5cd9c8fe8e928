//! `switchboard serve`'s logs, from the built binary at trace level: the access lines, the
//! per-attempt events and the drain, and no key or body anywhere in its output.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use switchboard_testkit::fixture;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const UPSTREAM_KEY: &str = "sk-upstream-LOGSECRET-8f3a";
const GATEWAY_KEY: &str = "gw-LOGSECRET-41c9";
/// Text that is only in a request body.
const PROMPT: &str = "prompt-BODYMARKER-77";

/// An OpenAI-compatible upstream: JSON for plain requests, SSE for streams.
async fn answering_upstream() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"stream": true})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("openai/stream_text.sse"), "text/event-stream"),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("openai/chat_text.json"), "application/json"),
        )
        .mount(&server)
        .await;
    server
}

async fn failing_upstream() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_raw(fixture("openai/error_503.json"), "application/json"),
        )
        .mount(&server)
        .await;
    server
}

/// What the gateway printed while serving the requests of [`exercise`].
struct Output {
    stdout: String,
    stderr: String,
}

/// Starts `switchboard serve` with `log_args` and `log_env`, sends a success, a failover,
/// a stream and two refused requests, then stops it with SIGTERM.
async fn serve_and_exercise(log_args: &[&str], log_env: Option<&str>) -> Output {
    let down = failing_upstream().await;
    let up = answering_upstream().await;
    let dir = std::env::temp_dir().join(format!(
        "switchboard-logging-{}-{}",
        std::process::id(),
        log_args.join("").replace(['-', ' '], "")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nport = 0\napi_keys_env = [\"TEST_LOG_GATEWAY_KEY\"]\n\
             [providers.openai]\nbase_url = \"{}/v1\"\napi_key_env = \"TEST_LOG_UPSTREAM_KEY\"\n\
             [providers.groq]\nbase_url = \"{}/v1\"\napi_key_env = \"TEST_LOG_UPSTREAM_KEY\"\n\
             [routes.fast]\ntargets = [\"openai:gpt-4o\", \"groq:llama-3.3-70b-versatile\"]\n\
             [routes.solo]\ntargets = [\"groq:llama-3.3-70b-versatile\"]\n",
            down.uri(),
            up.uri()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.arg("serve")
        .arg("--config")
        .arg(&config)
        .args(log_args)
        .env_remove("SWITCHBOARD_LOG")
        .env("TEST_LOG_UPSTREAM_KEY", UPSTREAM_KEY)
        .env("TEST_LOG_GATEWAY_KEY", GATEWAY_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(filter) = log_env {
        cmd.env("SWITCHBOARD_LOG", filter);
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (first, stdout) = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        (line, stdout)
    })
    .await
    .unwrap();
    let base = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("no address on stdout: {first}"))
        .to_owned();
    exercise(&base).await;

    let stop = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stop.success());
    let out = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        let mut stdout = stdout;
        stdout.read_to_string(&mut rest).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "serve exited with {:?}", out.status);
        Output {
            stdout: first + &rest,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap();
    for secret in [UPSTREAM_KEY, GATEWAY_KEY, "LOGSECRET"] {
        assert!(!out.stdout.contains(secret), "a key leaked to stdout");
        assert!(
            !out.stderr.contains(secret),
            "a key leaked to stderr:\n{}",
            out.stderr
        );
    }
    for body in [PROMPT, "The capital of France", "How can I help"] {
        assert!(
            !out.stderr.contains(body),
            "a body was logged:\n{}",
            out.stderr
        );
    }
    out
}

async fn exercise(base: &str) {
    let client = reqwest::Client::new();
    let url = format!("{base}/v1/chat/completions");
    let chat = |model: &str, stream: bool| {
        serde_json::to_vec(&json!({
            "model": model,
            "stream": stream,
            "messages": [{"role": "user", "content": PROMPT}],
        }))
        .unwrap()
    };
    let send = |body: Vec<u8>, key: Option<&str>| {
        let mut req = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        req.send()
    };
    let ok = send(chat("solo", false), Some(GATEWAY_KEY)).await.unwrap();
    assert_eq!(ok.status(), 200);
    let failover = send(chat("fast", false), Some(GATEWAY_KEY)).await.unwrap();
    assert_eq!(failover.status(), 200);
    assert_eq!(failover.headers()["x-switchboard-attempts"], "2");
    let stream = send(chat("solo", true), Some(GATEWAY_KEY)).await.unwrap();
    assert_eq!(stream.status(), 200);
    let text = stream.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let wrong = send(chat("solo", false), Some("gw-wrong-key"))
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let none = send(chat("solo", false), None).await.unwrap();
    assert_eq!(none.status(), 401);
}

/// The stderr lines that contain every one of `parts`.
fn lines_with<'a>(log: &'a str, parts: &[&str]) -> Vec<&'a str> {
    log.lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn text_logs_at_trace_show_access_lines_and_attempts_but_no_keys_or_bodies() {
    let out = serve_and_exercise(&["--log-level", "trace"], None).await;
    let log = &out.stderr;
    let startup = lines_with(log, &["gateway listening", "requires_key=true"]);
    assert_eq!(startup.len(), 1, "{log}");
    assert!(startup[0].contains(r#"aliases=["fast", "solo"]"#), "{log}");

    let access = lines_with(log, &["switchboard_gateway::access"]);
    assert_eq!(access.len(), 5, "one line per request:\n{log}");
    let ok = lines_with(
        log,
        &[
            "access",
            r#"route="solo""#,
            "status=200",
            r#"provider="groq""#,
            "attempts=1",
            "streamed=false",
            "input_tokens=",
        ],
    );
    assert_eq!(ok.len(), 1, "{log}");
    let failover = lines_with(
        log,
        &[
            "access",
            r#"route="fast""#,
            "status=200",
            r#"provider="groq""#,
            "attempts=2",
        ],
    );
    assert_eq!(failover.len(), 1, "{log}");
    assert!(failover[0].contains("latency_ms="), "{log}");
    let streamed = lines_with(log, &["access", "streamed=true", "status=200"]);
    assert_eq!(streamed.len(), 1, "{log}");
    assert!(streamed[0].contains(r#"route="solo""#), "{log}");
    assert!(streamed[0].contains("output_tokens="), "{log}");
    let refused = lines_with(
        log,
        &["access", "status=401", r#"error="gateway_unauthorized""#],
    );
    assert_eq!(refused.len(), 2, "{log}");

    let attempts = lines_with(log, &["DEBUG", "switchboard_gateway::attempt"]);
    assert_eq!(attempts.len(), 4, "one event per real attempt:\n{log}");
    assert_eq!(
        lines_with(
            log,
            &["attempt", r#"outcome="failed""#, "upstream_status=503"]
        )
        .len(),
        1,
        "{log}"
    );
    assert_eq!(
        lines_with(log, &["shutting down", "in_flight=0"]).len(),
        1,
        "{log}"
    );
    assert_eq!(lines_with(log, &["gateway stopped"]).len(), 1, "{log}");
    assert_eq!(
        out.stdout.lines().count(),
        1,
        "stdout holds only the address"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_with_every_library_at_trace_are_one_object_per_line_without_keys() {
    // Directives, unlike a bare level, reach every library (hyper, h2, the HTTP client).
    let out = serve_and_exercise(&["--log-format", "json"], Some("trace,hyper_util=trace")).await;
    let events: Vec<Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access: Vec<&Value> = events
        .iter()
        .filter(|e| e["target"] == "switchboard_gateway::access")
        .collect();
    assert_eq!(access.len(), 5, "{}", out.stderr);
    let failover = access
        .iter()
        .find(|e| e["route"] == "fast")
        .unwrap_or_else(|| panic!("{}", out.stderr));
    assert_eq!(failover["status"], 200);
    assert_eq!(failover["attempts"], 2);
    assert_eq!(failover["provider"], "groq");
    assert_eq!(failover["method"], "POST");
    assert_eq!(failover["path"], "/v1/chat/completions");
    assert_eq!(failover["streamed"], false);
    assert!(failover["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(failover["input_tokens"].as_u64().unwrap() > 0);
    let statuses: Vec<u64> = access
        .iter()
        .map(|e| e["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 2);
    assert!(
        events
            .iter()
            .any(|e| e["target"] == "switchboard_gateway::attempt" && e["level"] == "DEBUG"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_bad_log_filter_exits_2_naming_the_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "serve",
            "--config",
            "unused.toml",
            "--log-level",
            "info,x=loud",
        ])
        .env_remove("SWITCHBOARD_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--log-level"), "{stderr}");
}
