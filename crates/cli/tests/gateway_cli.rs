//! `serve`, `check`, `models` and `config` run as the built binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;
use switchboard_testkit::fixture;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    for var in [
        "OPENAI_API_KEY",
        "SWITCHBOARD_OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "SWITCHBOARD_ANTHROPIC_API_KEY",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn temp_config(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gateway.toml");
    std::fs::write(&file, text).unwrap();
    file
}

fn json_stdout(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_prints_its_address_and_answers_through_the_route() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("openai/chat_text.json"), "application/json"),
        )
        .mount(&upstream)
        .await;
    let config = temp_config(
        "serve",
        &format!(
            "[server]\nport = 0\n[providers.openai]\nbase_url = \"{}/v1\"\napi_key_env = \"TEST_UPSTREAM_KEY\"\n[routes.fast]\ntargets = [\"openai:gpt-4o\"]\n",
            upstream.uri()
        ),
    );
    let mut child = bin()
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("TEST_UPSTREAM_KEY", "sk-upstream-secret")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let resp = reqwest_post(&format!("{url}/v1/chat/completions")).await;
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(resp.contains("The capital of France is Paris."), "{resp}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(r#"aliases=["fast"]"#), "{stderr}");
    assert!(
        !stderr.contains("sk-upstream-secret") && !resp.contains("sk-upstream-secret"),
        "the upstream key leaked: {stderr}"
    );
}

async fn reqwest_post(url: &str) -> String {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-H",
                "content-type: application/json",
                "-d",
                r#"{"model":"fast","messages":[{"role":"user","content":"hi"}]}"#,
                &url,
            ])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    })
    .await
    .unwrap()
}

#[test]
fn serve_refuses_a_public_host_without_gateway_keys() {
    let config = temp_config("public", "[routes.fast]\ntargets = [\"openai:gpt-4o\"]\n");
    let out = bin()
        .args([
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--host",
            "0.0.0.0",
            "--json",
        ])
        .env("OPENAI_API_KEY", "k")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let body = json_stdout(&out);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server.api_keys_env"),
        "{body}"
    );
}

#[test]
fn config_json_redacts_keys_and_names_their_variables() {
    let config = temp_config(
        "config",
        "[server]\napi_keys_env = [\"TEST_GW_KEY\"]\n[providers.openai]\napi_key_env = \"TEST_OAI_KEY\"\n[routes.fast]\ntargets = [\"openai:gpt-4o\"]\nretry = { max_retries = 1 }\n",
    );
    let out = bin()
        .args(["config", "--config", config.to_str().unwrap(), "--json"])
        .env("TEST_GW_KEY", "gw-very-secret")
        .env("TEST_OAI_KEY", "sk-very-secret")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("very-secret"), "{text}");
    let body = json_stdout(&out);
    assert_eq!(body["server"]["host"], "127.0.0.1");
    assert_eq!(body["server"]["api_keys"][0]["set"], true);
    assert_eq!(body["providers"]["openai"]["key"]["set_in"], "TEST_OAI_KEY");
    assert_eq!(body["routes"]["fast"]["retry"]["max_retries"], 1);
    assert_eq!(body["routes"]["fast"]["retry"]["base_delay_ms"], 200);
}

#[test]
fn config_accepts_the_documented_example() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/gateway.toml");
    let out = bin()
        .args(["config", "--config", example])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("fast"));
}

#[test]
fn config_errors_name_the_field() {
    let config = temp_config(
        "bad",
        "[routes.fast]\ntargets = [\"openai:gpt-4o\", \"foo\"]\n",
    );
    let out = bin()
        .args(["config", "--config", config.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let body = json_stdout(&out);
    assert_eq!(body["error"]["kind"], "config");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("routes.fast.targets[1]"));
    assert!(body["error"]["fix"]
        .as_str()
        .unwrap()
        .contains("openai:gpt-4o-mini"));
}

#[test]
fn check_reports_keys_without_showing_them() {
    let out = bin()
        .args([
            "check",
            "--provider",
            "openai",
            "--provider",
            "anthropic",
            "--json",
        ])
        .env("OPENAI_API_KEY", "sk-hidden-value")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "anthropic's key is missing");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("sk-hidden-value"));
    let body = json_stdout(&out);
    assert_eq!(body["providers"][0]["provider"], "openai");
    assert_eq!(body["providers"][0]["key"]["set_in"], "OPENAI_API_KEY");
    assert_eq!(body["providers"][1]["key"]["present"], false);
    assert_eq!(body["ok"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_live_asks_each_provider_and_reports_breakers() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("openai/chat_text.json"), "application/json"),
        )
        .mount(&upstream)
        .await;
    let config = temp_config(
        "live",
        &format!(
            "[providers.openai]\nbase_url = \"{}/v1\"\n[routes.fast]\ntargets = [\"openai:gpt-4o\"]\nbreaker = {{ consecutive_failures = 3 }}\n",
            upstream.uri()
        ),
    );
    let path = config.to_str().unwrap().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        bin()
            .args(["check", "--live", "--config", &path, "--json"])
            .env("OPENAI_API_KEY", "k")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let body = json_stdout(&out);
    assert_eq!(body["providers"][0]["live"]["ok"], true, "{body}");
    assert_eq!(body["providers"][0]["live"]["model"], "gpt-4o-2024-08-06");
    assert_eq!(body["breakers"][0]["target"], "openai:gpt-4o");
    assert_eq!(body["breakers"][0]["state"], "closed");
    assert!(out.status.success());
}

#[test]
fn models_lists_priced_models() {
    let out = bin().args(["models", "--json"]).output().unwrap();
    assert!(out.status.success());
    let body = json_stdout(&out);
    let models = body["models"].as_array().unwrap();
    assert!(models.len() > 10);
    let gpt = models
        .iter()
        .find(|m| m["id"] == "openai:gpt-4o-mini")
        .expect("gpt-4o-mini listed");
    assert_eq!(gpt["context_window"], 128_000);
    assert_eq!(gpt["price_per_million"]["input"], 0.15);
    let first = &models[0];
    for field in [
        "provider",
        "model",
        "id",
        "context_window",
        "price_per_million",
    ] {
        assert!(first.get(field).is_some(), "{field} in {first}");
    }
    let human = bin()
        .args(["models", "--provider", "openai"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.starts_with("model") && text.contains("openai:"),
        "{text}"
    );
    assert!(!text.contains("anthropic:"));
    let gpt41 = models.iter().find(|m| m["id"] == "openai:gpt-4.1").unwrap();
    assert_eq!(gpt41["context_window"], 1_047_576);
    assert!(text.contains("1047576"), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("openai:gpt-4o-mini "))
        .unwrap_or_else(|| panic!("no gpt-4o-mini row in\n{text}"));
    assert!(row.contains("128000"), "{row}");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_live_shows_progress_and_a_table() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("openai/chat_text.json"), "application/json"),
        )
        .mount(&upstream)
        .await;
    let config = temp_config(
        "live-human",
        &format!(
            "[providers.openai]\nbase_url = \"{}/v1\"\n[routes.fast]\ntargets = [\"openai:gpt-4o\"]\n",
            upstream.uri()
        ),
    );
    let path = config.to_str().unwrap().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        bin()
            .args(["check", "--live", "--config", &path])
            .env("OPENAI_API_KEY", "sk-live-secret")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[1/1] asking openai"), "progress: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let header = stdout.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("provider"),
        "a table header first: {stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("openai ")),
        "a row for openai: {stdout}"
    );
    assert!(!stdout.contains("sk-live-secret") && !stderr.contains("sk-live-secret"));
}

#[test]
fn serve_json_prints_one_object_with_the_address_and_aliases() {
    let config = temp_config(
        "serve-json",
        "[server]\nport = 0\n[providers.openai]\napi_key_env = \"TEST_SERVE_JSON_KEY\"\n[routes.fast]\ntargets = [\"openai:gpt-4o\"]\n",
    );
    // A port known to be free a moment ago; --port overrides the file's 0.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let mut child = bin()
        .args([
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--json",
        ])
        .env("TEST_SERVE_JSON_KEY", "sk-serve-json-secret")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["listening"], format!("http://127.0.0.1:{port}"), "{v}");
    assert_eq!(v["aliases"], serde_json::json!(["fast"]));
    assert_eq!(v["requires_key"], false);
    assert!(!line.contains("sk-serve-json-secret"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("sk-serve-json-secret"));
}

#[test]
fn serve_json_reports_a_bad_config_as_a_json_error() {
    let config = temp_config("serve-json-bad", "[routes.fast]\ntargets = [\"nope:m\"]\n");
    let out = bin()
        .args(["serve", "--config", config.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v = json_stdout(&out);
    assert_eq!(v["error"]["kind"], "config", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nope")),
        "{v}"
    );
}

#[test]
fn serve_refuses_to_start_when_the_shared_state_redis_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = temp_config(
        "serve-redis-down",
        "[routes.fast]\ntargets = [\"openai:gpt-4o\"]\nbreaker = {}\n\n[state]\nredis_url_env = \"TEST_SERVE_REDIS_URL\"\n",
    );
    let out = bin()
        .args(["serve", "--config", config.to_str().unwrap(), "--json"])
        .env("OPENAI_API_KEY", "k")
        .env(
            "TEST_SERVE_REDIS_URL",
            format!("redis://:redis-secret-pw@127.0.0.1:{port}/0"),
        )
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let v = json_stdout(&out);
    assert_eq!(v["error"]["kind"], "transport", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("cannot reach Redis") && message.contains(&format!("127.0.0.1:{port}")),
        "{v}"
    );
    assert!(v.to_string().contains("state.redis_url_env"), "{v}");
    assert!(!v.to_string().contains("redis-secret-pw"), "{v}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("redis-secret-pw"));
}

#[test]
fn config_shows_the_state_table_with_the_url_redacted() {
    let config = temp_config(
        "config-state",
        "[routes.fast]\ntargets = [\"openai:gpt-4o\"]\n\n[state]\nredis_url_env = \"TEST_CONFIG_REDIS_URL\"\nkey_prefix = \"sb:prod:\"\n",
    );
    let run = |json: bool| {
        let mut cmd = bin();
        cmd.args(["config", "--config", config.to_str().unwrap()]);
        if json {
            cmd.arg("--json");
        }
        cmd.env(
            "TEST_CONFIG_REDIS_URL",
            "redis://:config-secret-pw@10.0.0.5:6379/0",
        )
        .output()
        .unwrap()
    };
    let out = run(true);
    assert_eq!(out.status.code(), Some(0));
    let v = json_stdout(&out);
    assert_eq!(
        v["state"]["redis_url"]["env"], "TEST_CONFIG_REDIS_URL",
        "{v}"
    );
    assert_eq!(v["state"]["redis_url"]["set"], true, "{v}");
    assert_eq!(v["state"]["key_prefix"], "sb:prod:", "{v}");
    let human = run(false);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("TEST_CONFIG_REDIS_URL (set)") && text.contains("sb:prod:"),
        "{text}"
    );
    for out in [&out, &human] {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains("config-secret-pw"), "{all}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reads_the_breakers_a_gateway_shares_through_redis() {
    use switchboard::state::redis::RedisStore;
    use switchboard::state::{BreakerPhase, StateStore};
    let Some(redis) = switchboard_testkit::redis_server::RedisServer::start() else {
        return;
    };
    // A gateway elsewhere opened the breaker of `fast`'s target a moment ago.
    let store = RedisStore::builder(redis.url())
        .key_prefix("sb-check:")
        .build()
        .unwrap();
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    store
        .update_breaker_shared("fast/openai:gpt-4o", &mut |r| {
            r.phase = BreakerPhase::Open;
            r.open_until = Some(until);
            r.cooldown = std::time::Duration::from_secs(60);
        })
        .await;
    let config = temp_config(
        "check-state",
        "[routes.fast]\ntargets = [\"openai:gpt-4o\"]\nbreaker = {}\n\n[state]\nredis_url_env = \"TEST_CHECK_REDIS_URL\"\nkey_prefix = \"sb-check:\"\n",
    );
    let out = bin()
        .args(["check", "--config", config.to_str().unwrap(), "--json"])
        .env("OPENAI_API_KEY", "k")
        .env("TEST_CHECK_REDIS_URL", redis.url())
        .output()
        .unwrap();
    let v = json_stdout(&out);
    assert_eq!(v["state"]["ok"], true, "{v}");
    assert_eq!(v["state"]["redis_url_env"], "TEST_CHECK_REDIS_URL", "{v}");
    let breaker = &v["breakers"][0];
    assert_eq!(breaker["target"], "openai:gpt-4o", "{v}");
    assert!(
        breaker["state"]
            .as_str()
            .is_some_and(|s| s.starts_with("open (")),
        "{v}"
    );
    assert_eq!(out.status.code(), Some(0), "{v}");
}

#[test]
fn check_reports_an_unreachable_state_store_as_a_failure() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = temp_config(
        "check-state-down",
        "[routes.fast]\ntargets = [\"openai:gpt-4o\"]\nbreaker = {}\n\n[state]\nredis_url_env = \"TEST_CHECK_DOWN_URL\"\n",
    );
    let out = bin()
        .args(["check", "--config", config.to_str().unwrap(), "--json"])
        .env("OPENAI_API_KEY", "k")
        .env(
            "TEST_CHECK_DOWN_URL",
            format!("redis://:check-secret-pw@127.0.0.1:{port}/0"),
        )
        .output()
        .unwrap();
    let v = json_stdout(&out);
    assert_eq!(v["state"]["ok"], false, "{v}");
    assert!(
        v["state"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot reach Redis")),
        "{v}"
    );
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(out.status.code(), Some(1));
    assert!(!v.to_string().contains("check-secret-pw"), "{v}");
}
