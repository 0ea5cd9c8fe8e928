//! The gateway in front of upstreams that misbehave, over real sockets: a model name that
//! would climb the upstream URL, absurd waits, error bodies that quote keys, and a stream
//! cut after its finish reason. The client must always get a clear HTTP answer, and never
//! a key.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::start;
use serde_json::{json, Value};
use switchboard::config::Settings;
use switchboard_gateway::Gateway;
use switchboard_testkit::fixture;
use switchboard_testkit::wiremock::matchers::method;
use switchboard_testkit::wiremock::{Mock, MockServer, ResponseTemplate};

const GATEWAY_KEY: &str = "gw-hostile-test-key-5Tq9Wm2Zx";
const OPENAI_KEY: &str = "sk-proj-gw-hostile-3Hf8Kd1Lp6Vn";
const GEMINI_KEY: &str = "AIzaSy-gw-hostile-9Rb2Xc7Yt";

/// A server answering every POST with `template`.
async fn upstream(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

/// A gateway with one route, `fast`, to `target` on `server`, direct models on, and a key.
async fn gateway(server: &MockServer, target: &str, route_extra: &str) -> common::Running {
    let provider = target.split(':').next().unwrap();
    let base = if provider == "openai" {
        format!("{}/v1", server.uri())
    } else {
        server.uri()
    };
    let text = format!(
        "[server]\napi_keys_env = [\"GW\"]\nallow_direct_models = true\n\
         [providers.{provider}]\nbase_url = \"{base}\"\napi_key_env = \"UPSTREAM\"\n\
         [routes.fast]\ntargets = [\"{target}\"]\n{route_extra}\n"
    );
    let settings = Settings::from_toml_str(&text).unwrap();
    let key = if provider == "gemini" {
        GEMINI_KEY
    } else {
        OPENAI_KEY
    };
    let env = move |name: &str| match name {
        "GW" => Some(GATEWAY_KEY.to_owned()),
        "UPSTREAM" => Some(key.to_owned()),
        _ => None,
    };
    start(Gateway::with_env(settings, env).unwrap()).await
}

async fn ask(gw: &common::Running, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(GATEWAY_KEY)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .await
        .unwrap()
}

fn hello(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "stream": stream,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "hello"}],
    })
}

#[tokio::test]
async fn a_model_that_would_climb_the_upstream_url_is_a_400_and_nothing_is_posted() {
    let server = upstream(ResponseTemplate::new(200)).await;
    let gw = gateway(&server, "gemini:gemini-2.5-flash", "").await;
    for model in [
        "gemini:%2e%2e/%2e%2e/%2e%2e/secret#",
        "gemini:../../../secret",
        "gemini:gemini-2.5-flash?key=x",
    ] {
        for stream in [false, true] {
            let resp = ask(&gw, hello(model, stream)).await;
            assert_eq!(resp.status(), 400, "{model} (stream: {stream})");
            let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
            assert_eq!(body["error"]["param"], "model", "{body}");
            assert_eq!(body["error"]["code"], "invalid_model", "{body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("gemini model name"),
                "{body}"
            );
        }
    }
    let sent = server.received_requests().await.unwrap();
    assert!(sent.is_empty(), "the gateway posted {:?}", sent[0].url);
}

#[tokio::test]
async fn absurd_upstream_waits_still_get_the_client_a_429_with_a_bounded_retry_after() {
    let openai = upstream(
        ResponseTemplate::new(429)
            .insert_header("retry-after", "1e20")
            .insert_header("retry-after-ms", "1e30")
            .set_body_raw(
                fixture("openai/error_429_rate_limit.json"),
                "application/json",
            ),
    )
    .await;
    let mut gemini_body: Value = serde_json::from_slice(&fixture("gemini/error_429.json")).unwrap();
    gemini_body["error"]["details"] = json!([{
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": "1e20s"
    }]);
    let gemini = upstream(ResponseTemplate::new(429).set_body_raw(
        serde_json::to_vec(&gemini_body).unwrap(),
        "application/json",
    ))
    .await;
    for (server, target) in [
        (&openai, "openai:gpt-4o-mini"),
        (&gemini, "gemini:gemini-2.5-flash"),
    ] {
        let gw = gateway(server, target, "retry = { max_retries = 1 }\nbreaker = {}").await;
        for stream in [false, true] {
            let resp = ask(&gw, hello("fast", stream)).await;
            assert_eq!(resp.status(), 429, "{target} (stream: {stream})");
            let wait: u64 = resp
                .headers()
                .get("retry-after")
                .expect("a Retry-After header")
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            // The first answer passes on the clamped day; the next finds the target in its
            // cool-down, which is capped at five minutes.
            assert!((300..=86_400).contains(&wait), "clamped: {wait}");
            let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
            assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
        }
        // The breaker opened for the day asked: the next request is answered at once too.
        let resp = ask(&gw, hello("fast", false)).await;
        assert!(
            resp.status() == 429 || resp.status() == 503,
            "{}",
            resp.status()
        );
    }
}

/// Log output captured from a `tracing` subscriber installed for the current thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn keys_an_upstream_echoes_never_reach_the_client_or_the_logs() {
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    // The upstream quotes both the key it was sent and the gateway's own key.
    let body = format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {OPENAI_KEY} (forwarded for {GATEWAY_KEY}).","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}}}"#
    );
    let server = upstream(ResponseTemplate::new(401).set_body_raw(body, "application/json")).await;
    let gw = gateway(&server, "openai:gpt-4o-mini", "").await;
    let mut answers = Vec::new();
    for model in ["fast", "openai:gpt-4o-mini"] {
        for stream in [false, true] {
            let resp = ask(&gw, hello(model, stream)).await;
            assert_eq!(resp.status(), 502, "{model} (stream: {stream})");
            answers.push(resp.text().await.unwrap());
        }
    }
    assert!(
        answers[0].contains("Incorrect API key provided: [redacted]"),
        "{}",
        answers[0]
    );
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    for text in answers.iter().chain([&logged]) {
        for key in [OPENAI_KEY, GATEWAY_KEY] {
            assert!(!text.contains(key), "{key} leaked into:\n{text}");
        }
    }
}

#[tokio::test]
async fn a_stream_cut_after_its_finish_reason_ends_with_an_error_event_not_done() {
    let text = String::from_utf8(fixture("openai/stream_text.sse")).unwrap();
    let events: Vec<&str> = text
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .collect();
    let finish = events
        .iter()
        .position(|e| e.contains("\"finish_reason\":\"") || e.contains("\"finish_reason\": \""))
        .unwrap();
    let cut: String = events[..=finish]
        .iter()
        .map(|e| format!("{e}\n\n"))
        .collect();
    let server = upstream(ResponseTemplate::new(200).set_body_raw(cut, "text/event-stream")).await;
    let gw = gateway(&server, "openai:gpt-4o-mini", "").await;
    let resp = ask(&gw, hello("fast", true)).await;
    assert_eq!(resp.status(), 200, "the stream had started");
    let body = resp.text().await.unwrap();
    let frames: Vec<&str> = body.split("\n\n").map(str::trim).collect();
    assert!(!frames.contains(&"data: [DONE]"), "{body}");
    assert!(
        !body.contains("\"usage\""),
        "no made-up usage chunk: {body}"
    );
    let last: Value = serde_json::from_str(
        body.trim_end()
            .rsplit("\n\n")
            .next()
            .unwrap()
            .strip_prefix("data: ")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(last["error"]["code"], "upstream_bad_reply", "{body}");
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("[DONE]"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_stream_idle_timeout_ends_a_stalled_upstream_stream_with_an_error_event() {
    use switchboard_testkit::fault::{Fault, FaultProvider, Protocol};
    let upstream = FaultProvider::builder()
        .tokens(20)
        .script([Fault::StallAfter(3)])
        .start()
        .await
        .unwrap();
    let text = format!(
        "[server]\napi_keys_env = [\"GW\"]\n\
         [providers.openai]\nbase_url = \"{}\"\napi_key_env = \"UPSTREAM\"\n\
         [routes.fast]\ntargets = [\"openai:gpt-4o-mini\"]\nstream_idle_timeout_ms = 300\n",
        upstream.base_url(Protocol::OpenAi)
    );
    let env = |name: &str| match name {
        "GW" => Some(GATEWAY_KEY.to_owned()),
        "UPSTREAM" => Some(OPENAI_KEY.to_owned()),
        _ => None,
    };
    let gw = start(Gateway::with_env(Settings::from_toml_str(&text).unwrap(), env).unwrap()).await;
    let started = std::time::Instant::now();
    // Without the route's limit the stall would last the transport's 120 s.
    let body = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        ask(&gw, hello("fast", true)).await.text().await.unwrap()
    })
    .await
    .expect("the stalled stream ended");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let frames: Vec<&str> = body.split("\n\n").map(str::trim).collect();
    assert!(!frames.contains(&"data: [DONE]"), "{body}");
    let last = frames.iter().rev().find(|f| !f.is_empty()).unwrap();
    assert!(last.contains("\"error\""), "{body}");
    assert!(last.contains("idle limit"), "{body}");
    assert_eq!(upstream.requests(), 1);
}

#[tokio::test]
async fn a_gemini_stream_without_final_usage_gets_no_made_up_usage_chunk() {
    let text = String::from_utf8(fixture("gemini/stream_text.sse"))
        .unwrap()
        .replace("\r\n", "\n");
    let mut events: Vec<String> = text
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(str::to_owned)
        .collect();
    let whole: String = events.iter().map(|e| format!("{e}\n\n")).collect();
    let last = events.last_mut().unwrap();
    let mut chunk: Value =
        serde_json::from_str(last.trim().strip_prefix("data:").unwrap().trim()).unwrap();
    chunk.as_object_mut().unwrap().remove("usageMetadata");
    *last = format!("data: {chunk}");
    let cut: String = events.iter().map(|e| format!("{e}\n\n")).collect();
    for (body, usage_expected) in [(cut, false), (whole, true)] {
        let server =
            upstream(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")).await;
        let gw = gateway(&server, "gemini:gemini-2.5-flash", "").await;
        let answer = ask(&gw, hello("fast", true)).await.text().await.unwrap();
        let frames: Vec<&str> = answer.split("\n\n").map(str::trim).collect();
        assert!(frames.contains(&"data: [DONE]"), "{answer}");
        assert_eq!(answer.contains("\"usage\""), usage_expected, "{answer}");
    }
}
