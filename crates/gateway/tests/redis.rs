//! Two gateways sharing their breakers through a real `redis-server` (feature `redis`).
//!
//! The server is started on a free loopback port by the test and killed after it; without
//! `redis-server` the Redis tests print a note and pass, unless `SWITCHBOARD_REQUIRE_REDIS=1`.

mod common;

use common::*;
use serde_json::{json, Value};
use switchboard::config::Settings;
use switchboard::middleware::BreakerState;
use switchboard::ErrorKind;
use switchboard_gateway::Gateway;
use switchboard_testkit::redis_server::RedisServer;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn config(upstream: &str) -> Settings {
    Settings::from_toml_str(&format!(
        r#"
[providers.openai]
base_url = "{upstream}/v1"
api_key_env = "OAI"

[routes.shared]
targets = ["openai:gpt-4o"]
breaker = {{ consecutive_failures = 2, cooldown_ms = 30000 }}

[state]
redis_url_env = "TEST_REDIS_URL"
key_prefix = "gw-test:"
"#
    ))
    .unwrap()
}

fn env_with(url: String) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    move |name| match name {
        "OAI" => Some("oai-key".to_owned()),
        "TEST_REDIS_URL" => Some(url.clone()),
        _ => None,
    }
}

async fn ask(base: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(
            json!({"model": "shared", "messages": [{"role": "user", "content": "hi"}]}).to_string(),
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_breaker_opened_through_one_gateway_stops_the_other_calling_upstream() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(json!({"error": {"message": "overloaded", "type": "server_error"}})),
        )
        .mount(&upstream)
        .await;

    let first = Gateway::with_env(config(&upstream.uri()), env_with(redis.url())).unwrap();
    let second = Gateway::with_env(config(&upstream.uri()), env_with(redis.url())).unwrap();
    first.check_state().await.unwrap();
    second.check_state().await.unwrap();
    let (a, b) = (start(first).await, start(second.clone()).await);

    for _ in 0..2 {
        assert_eq!(ask(&a.base).await.status(), 503);
    }
    assert_eq!(upstream.received_requests().await.unwrap().len(), 2);

    let resp = ask(&b.base).await;
    assert_eq!(resp.status(), 503);
    let retry_after: u64 = resp
        .headers()
        .get("retry-after")
        .expect("an open circuit says when to retry")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 25, "{retry_after}");
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("circuit"),
        "{body}"
    );
    assert_eq!(
        upstream.received_requests().await.unwrap().len(),
        2,
        "the second gateway did not call upstream"
    );
    let states = second.breaker_states();
    assert!(
        matches!(states.as_slice(), [(alias, spec, BreakerState::Open { .. })] if alias == "shared" && spec == "openai:gpt-4o"),
        "{states:?}"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_redis_is_reported_at_start_without_the_password() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let gateway = Gateway::with_env(
        config("http://127.0.0.1:9"),
        env_with(format!("redis://:hunter2@127.0.0.1:{port}/0")),
    )
    .unwrap();
    let err = gateway.check_state().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    let text = format!("{err} {err:?} {gateway:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(err.fix().unwrap().contains("state.redis_url_env"), "{err}");
}

#[tokio::test]
async fn a_missing_or_bad_redis_url_names_the_field() {
    let err = Gateway::with_env(config("http://127.0.0.1:9"), |name: &str| {
        (name == "OAI").then(|| "k".to_owned())
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.message()
            .contains("`state.redis_url_env` names `TEST_REDIS_URL`"),
        "{err}"
    );

    let err = Gateway::with_env(
        config("http://127.0.0.1:9"),
        env_with("http://:hunter2@example/".to_owned()),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("state.redis_url_env"), "{err}");
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err}");
}

async fn metrics_of(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_replicas_metrics_show_a_breaker_another_replica_opened_before_it_serves_a_request() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(json!({"error": {"message": "overloaded", "type": "server_error"}})),
        )
        .mount(&upstream)
        .await;
    let first = Gateway::with_env(config(&upstream.uri()), env_with(redis.url())).unwrap();
    let second = Gateway::with_env(config(&upstream.uri()), env_with(redis.url())).unwrap();
    let (a, b) = (start(first).await, start(second).await);
    let gauge = "switchboard_gateway_breaker_state{route=\"shared\",target=\"openai:gpt-4o\"}";
    assert!(metrics_of(&b.base).await.contains(&format!("{gauge} 0")));
    for _ in 0..2 {
        assert_eq!(ask(&a.base).await.status(), 503);
    }
    // The second replica has served nothing since; its very next scrape shows the breaker
    // the first one opened.
    let text = metrics_of(&b.base).await;
    assert!(text.contains(&format!("{gauge} 2")), "{text}");
    assert_eq!(upstream.received_requests().await.unwrap().len(), 2);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_429_through_one_gateway_cools_the_target_down_for_the_other() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "30")
                .set_body_json(json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}})),
        )
        .mount(&upstream)
        .await;
    // No breaker: the cool-down alone keeps both gateways off the target.
    let settings = |upstream: &str| {
        Settings::from_toml_str(&format!(
            r#"
[providers.openai]
base_url = "{upstream}/v1"
api_key_env = "OAI"

[routes.shared]
targets = ["openai:gpt-4o"]

[state]
redis_url_env = "TEST_REDIS_URL"
key_prefix = "gw-cool:"
"#
        ))
        .unwrap()
    };
    let first = Gateway::with_env(settings(&upstream.uri()), env_with(redis.url())).unwrap();
    let second = Gateway::with_env(settings(&upstream.uri()), env_with(redis.url())).unwrap();
    let (a, b) = (start(first).await, start(second).await);
    let resp = ask(&a.base).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(upstream.received_requests().await.unwrap().len(), 1);
    for base in [&b.base, &a.base] {
        let resp = ask(base).await;
        assert_eq!(resp.status(), 429);
        let wait: u64 = resp
            .headers()
            .get("retry-after")
            .expect("a cooling target says when to come back")
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((25..=30).contains(&wait), "{wait}");
        let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("asked callers to wait"), "{body}");
    }
    assert_eq!(
        upstream.received_requests().await.unwrap().len(),
        1,
        "neither gateway called the cooling target again"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
