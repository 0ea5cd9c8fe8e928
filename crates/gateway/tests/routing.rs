//! Routing through the gateway: a session header or `prompt_cache_key` reaches the
//! balancer and keeps each conversation on one target; the per-route cache-read ratio is a
//! `/metrics` series; and (feature `redis`) two gateway replicas sharing a real
//! `redis-server` agree on every conversation's target.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use common::*;
use serde_json::json;
use switchboard::config::{AffinitySettings, RouteSettings};
use switchboard::{ChatRequest, ChatResponse, DynClient, FunctionClient, Strategy, Usage};
use switchboard_gateway::{Gateway, GatewayOptions};

/// A target named `model` whose answers read half their input from the prompt cache.
fn cached(model: &'static str) -> DynClient {
    Arc::new(
        FunctionClient::builder(model)
            .provider("function")
            .respond(move |_r: &ChatRequest| {
                let mut usage = Usage::new(12, 4);
                usage.cache_read_tokens = Some(6);
                Ok(ChatResponse::from_text(model).with_usage(usage))
            })
            .build(),
    )
}

fn agents_route(keys: &[&str]) -> RouteSettings {
    RouteSettings {
        strategy: Some(Strategy::Weighted),
        affinity: Some(AffinitySettings {
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            ..AffinitySettings::default()
        }),
        ..RouteSettings::default()
    }
}

async fn start_agents(keys: &[&str]) -> Running {
    let targets = ["t0", "t1", "t2", "t3"].map(cached).to_vec();
    let gateway = Gateway::from_routes_with(
        [("agents", agents_route(keys), targets)],
        GatewayOptions::default(),
    )
    .unwrap();
    start(gateway).await
}

async fn ask(
    http: &reqwest::Client,
    base: &str,
    session: Option<&str>,
    body: serde_json::Value,
) -> String {
    let mut request = http
        .post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(session) = session {
        request = request.header("X-Session-Id", session);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response
        .headers()
        .get("x-switchboard-model")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

fn body(turn: usize) -> serde_json::Value {
    // Every conversation has the same opening: only its id tells it apart.
    let mut messages = vec![json!({"role": "user", "content": "start"})];
    for t in 0..turn {
        messages.push(json!({"role": "assistant", "content": format!("step {t}")}));
        messages.push(json!({"role": "user", "content": "continue"}));
    }
    json!({"model": "agents", "messages": messages})
}

fn assert_pinned(served: &HashMap<usize, Vec<String>>, targets_at_least: usize) {
    for (id, turns) in served {
        let distinct: HashSet<&String> = turns.iter().collect();
        assert_eq!(distinct.len(), 1, "conversation {id} moved: {turns:?}");
    }
    let used: HashSet<&String> = served.values().map(|t| &t[0]).collect();
    assert!(used.len() >= targets_at_least, "not spread: {used:?}");
}

#[tokio::test]
async fn the_session_header_pins_each_conversation_to_one_target() {
    let gateway = start_agents(&["header:x-session-id"]).await;
    let http = reqwest::Client::new();
    let mut served: HashMap<usize, Vec<String>> = HashMap::new();
    for turn in 0..5 {
        for id in 0..12 {
            let session = format!("session-{id}");
            let model = ask(&http, &gateway.base, Some(&session), body(turn)).await;
            served.entry(id).or_default().push(model);
        }
    }
    assert_pinned(&served, 4);

    // Without the header the route is unpinned: the round-robin spreads one conversation.
    let mut unpinned = HashSet::new();
    for turn in 0..4 {
        unpinned.insert(ask(&http, &gateway.base, None, body(turn)).await);
    }
    assert_eq!(unpinned.len(), 4, "{unpinned:?}");
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn prompt_cache_key_pins_and_metrics_show_the_cache_read_ratio() {
    let gateway = start_agents(&["prompt_cache_key", "user"]).await;
    let http = reqwest::Client::new();
    let mut served: HashMap<usize, Vec<String>> = HashMap::new();
    for turn in 0..5 {
        for id in 0..8 {
            let mut request = body(turn);
            request["prompt_cache_key"] = json!(format!("conversation-{id}"));
            let model = ask(&http, &gateway.base, None, request).await;
            served.entry(id).or_default().push(model);
        }
    }
    assert_pinned(&served, 4);

    let metrics = http
        .get(format!("{}/metrics", gateway.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("switchboard_gateway_cache_read_ratio{route=\"agents\"} 0.5\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "switchboard_gateway_tokens_total{route=\"agents\",direction=\"cache_read\"} 240\n"
        ),
        "{metrics}"
    );
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_non_string_prompt_cache_key_is_refused_by_name() {
    let gateway = start_agents(&["prompt_cache_key"]).await;
    let mut request = body(0);
    request["prompt_cache_key"] = json!(42);
    let response = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gateway.base))
        .header("content-type", "application/json")
        .body(request.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(error["error"]["param"], "prompt_cache_key", "{error}");
    gateway.shutdown().await.unwrap();
}

#[cfg(feature = "redis")]
mod shared {
    use std::io::{Read, Write};

    use super::*;
    use switchboard::config::Settings;
    use switchboard_testkit::fault::{FaultProvider, Protocol};
    use switchboard_testkit::redis_server::RedisServer;

    fn config(a: &FaultProvider, b: &FaultProvider) -> Settings {
        Settings::from_toml_str(&format!(
            r#"
[providers.openai]
base_url = "{}"
api_key_env = "OAI"

[providers.groq]
base_url = "{}"
api_key_env = "GROQ"

[routes.agents]
targets = ["openai:m", "groq:m"]
strategy = "weighted"
affinity = {{ keys = ["header:x-session-id"] }}

[state]
redis_url_env = "TEST_REDIS_URL"
key_prefix = "gw-affinity:"
"#,
            a.base_url(Protocol::OpenAi),
            b.base_url(Protocol::OpenAi)
        ))
        .unwrap()
    }

    /// How many scripts Redis has run (`EVAL` and `EVALSHA`), from `INFO commandstats`.
    fn scripts_run(port: u16) -> u64 {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.write_all(b"*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n")
            .unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        // The reply is one bulk string: `$<length>\r\n<text>\r\n`.
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = conn.read(&mut buf).unwrap();
            data.extend_from_slice(&buf[..n]);
            let head = data.windows(2).position(|w| w == b"\r\n");
            let complete = head.is_some_and(|end| {
                let length: usize = String::from_utf8_lossy(&data[1..end]).parse().unwrap();
                data.len() >= end + 2 + length + 2
            });
            if complete || n == 0 {
                break;
            }
        }
        let text = String::from_utf8_lossy(&data);
        text.lines()
            .filter(|l| l.starts_with("cmdstat_eval:") || l.starts_with("cmdstat_evalsha:"))
            .filter_map(|l| {
                l.split([':', ','])
                    .find_map(|kv| kv.strip_prefix("calls="))
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .sum()
    }

    #[tokio::test]
    async fn two_replicas_sharing_redis_keep_each_conversation_on_one_target() {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        let (a, b) = (
            FaultProvider::healthy(3).await.unwrap(),
            FaultProvider::healthy(3).await.unwrap(),
        );
        let env = |url: String| {
            move |name: &str| match name {
                "OAI" | "GROQ" => Some("key".to_owned()),
                "TEST_REDIS_URL" => Some(url.clone()),
                _ => None,
            }
        };
        let first = Gateway::with_env(config(&a, &b), env(redis.url())).unwrap();
        let second = Gateway::with_env(config(&a, &b), env(redis.url())).unwrap();
        first.check_state().await.unwrap();
        second.check_state().await.unwrap();
        let replicas = [start(first).await, start(second).await];
        let before = scripts_run(redis.port());

        let http = reqwest::Client::new();
        let mut served: HashMap<usize, Vec<String>> = HashMap::new();
        let conversations = 20;
        for turn in 0..10 {
            for id in 0..conversations {
                // Turns alternate between the replicas, as behind a load balancer; the
                // starting replica differs between conversations.
                let replica = &replicas[(id + turn) % 2];
                let session = format!("conversation-{id}");
                let response = http
                    .post(format!("{}/v1/chat/completions", replica.base))
                    .header("x-session-id", &session)
                    .header("content-type", "application/json")
                    .body(body(turn).to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let provider = response.headers()["x-switchboard-provider"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                served.entry(id).or_default().push(provider);
            }
        }
        assert_pinned(&served, 2);
        assert_eq!(a.requests() + b.requests(), conversations * 10);

        // One round trip per conversation per replica that saw it, none per later turn
        // (plus one script load per replica).
        let pin_round_trips = scripts_run(redis.port()) - before;
        assert!(
            pin_round_trips <= 2 * conversations as u64 + 2,
            "{pin_round_trips} pin round trips for {conversations} conversations"
        );
        assert!(pin_round_trips >= conversations as u64, "{pin_round_trips}");
        for replica in replicas {
            replica.shutdown().await.unwrap();
        }
    }
}
