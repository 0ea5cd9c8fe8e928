//! Record and replay over real sockets: each protocol records fixture answers from wiremock,
//! the server goes away, and the cassette answers in its place — identically.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard::providers::cassette::{Cassette, CassetteMode};
use switchboard::types::ToolSpec;
use switchboard::{
    create_client_with, ChatClient, ChatRequest, ChatResponse, ClientOptions, DynClient, Error,
    ErrorKind,
};
use switchboard_testkit::fixture;
use switchboard_testkit::wiremock::matchers::{body_partial_json, method, path, query_param};
use switchboard_testkit::wiremock::{Mock, MockServer, ResponseTemplate};

/// One protocol: how to reach it and which fixtures answer it.
#[derive(Clone, Copy)]
struct Protocol {
    spec: &'static str,
    key: &'static str,
    /// Added to the server URI to make the base URL.
    base_suffix: &'static str,
    whole_route: &'static str,
    stream_route: &'static str,
    /// Whether whole and streamed calls share a route (told apart by `"stream": true`).
    shared_route: bool,
    dir: &'static str,
    text: (&'static str, &'static str),
    tool: (&'static str, &'static str),
    cut: &'static str,
    rate_limited: &'static str,
}

const OPENAI: Protocol = Protocol {
    spec: "openai:gpt-4o-mini",
    key: "sk-proj-cassette-test-0123456789",
    base_suffix: "/v1",
    whole_route: "/v1/chat/completions",
    stream_route: "/v1/chat/completions",
    shared_route: true,
    dir: "openai",
    text: ("chat_text.json", "stream_text.sse"),
    tool: ("chat_tool_call.json", "stream_tool_call.sse"),
    cut: "stream_cut.sse",
    rate_limited: "error_429_rate_limit.json",
};

const ANTHROPIC: Protocol = Protocol {
    spec: "anthropic:claude-sonnet-4-5",
    key: "sk-ant-cassette-test-0123456789",
    base_suffix: "",
    whole_route: "/v1/messages",
    stream_route: "/v1/messages",
    shared_route: true,
    dir: "anthropic",
    text: ("messages_text.json", "stream_text.sse"),
    tool: ("messages_tool_use.json", "stream_tool_use.sse"),
    cut: "stream_cut.sse",
    rate_limited: "error_429.json",
};

const GEMINI: Protocol = Protocol {
    spec: "gemini:gemini-2.5-flash",
    key: "AIzaSy-cassette-test-0123456789",
    base_suffix: "",
    whole_route: "/v1beta/models/gemini-2.5-flash:generateContent",
    stream_route: "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
    shared_route: false,
    dir: "gemini",
    text: ("generate_text.json", "stream_text.sse"),
    tool: ("generate_function_call.json", "stream_function_call.sse"),
    cut: "stream_cut.sse",
    rate_limited: "error_429.json",
};

const PROTOCOLS: [Protocol; 3] = [OPENAI, ANTHROPIC, GEMINI];

impl Protocol {
    /// Starts a server answering whole calls with `whole` and streamed calls with `stream`
    /// (each as `(status, fixture)`), with `retry-after: 7` on non-2xx answers.
    async fn serve(&self, whole: (u16, &str), stream: (u16, &str)) -> MockServer {
        let server = MockServer::start().await;
        let answer = |(status, name): (u16, &str), mime: &str| {
            let mut template = ResponseTemplate::new(status)
                .set_body_raw(fixture(&format!("{}/{name}", self.dir)), mime);
            if status >= 300 {
                template = template.insert_header("retry-after", "7");
            }
            template
        };
        let stream_mime = if stream.0 < 300 {
            "text/event-stream"
        } else {
            "application/json"
        };
        let streamed = Mock::given(method("POST")).and(path(self.stream_route));
        let streamed = if self.shared_route {
            streamed.and(body_partial_json(json!({"stream": true})))
        } else {
            streamed.and(query_param("alt", "sse"))
        };
        streamed
            .respond_with(answer(stream, stream_mime))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(self.whole_route))
            .respond_with(answer(whole, "application/json"))
            .mount(&server)
            .await;
        server
    }

    fn client(&self, base: &str, cassette: &Arc<Cassette>) -> DynClient {
        let options = ClientOptions::new()
            .retry(None)
            .env(|_| None)
            .api_key(self.key)
            .base_url(format!("{base}{}", self.base_suffix))
            .cassette(Arc::clone(cassette));
        create_client_with(self.spec, &options).expect("client builds")
    }
}

fn temp_path(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "switchboard-cassette-{}-{}-{name}.jsonl",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Clears what differs per call (ids, timings) so two responses can be compared whole.
fn comparable(mut r: ChatResponse) -> ChatResponse {
    r.request_id.clear();
    r.latency = Duration::ZERO;
    r.attempts.clear();
    r
}

/// What a test can compare about an error.
fn shape(
    e: &Error,
) -> (
    ErrorKind,
    Option<u16>,
    Option<Duration>,
    String,
    Option<String>,
) {
    (
        e.kind(),
        e.status(),
        e.retry_after(),
        e.message().to_owned(),
        e.code().map(str::to_owned),
    )
}

async fn chat(client: &DynClient, req: &ChatRequest) -> switchboard::Result<ChatResponse> {
    client.chat(req).await.map(comparable)
}

async fn stream(client: &DynClient, req: &ChatRequest) -> switchboard::Result<ChatResponse> {
    client
        .chat_stream(req)
        .await?
        .collect_response()
        .await
        .map(comparable)
}

fn weather() -> ChatRequest {
    ChatRequest::user("What is the weather in Paris?").with_tool(ToolSpec::new(
        "get_weather",
        "Current weather for a city",
        json!({"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}),
    ))
}

/// A base URL where nothing listens, once the server that stood there has gone.
async fn gone(server: MockServer) -> String {
    let uri = server.uri();
    drop(server);
    uri
}

#[tokio::test]
async fn each_protocol_replays_what_it_recorded_whole_and_streamed() {
    for p in PROTOCOLS {
        for ((whole, streamed), req) in [(p.text, ChatRequest::user("hello")), (p.tool, weather())]
        {
            let file = temp_path(p.dir);
            let server = p.serve((200, whole), (200, streamed)).await;
            let recorder = Arc::new(Cassette::record(&file).unwrap());
            let live = p.client(&server.uri(), &recorder);
            let live_whole = chat(&live, &req).await.unwrap();
            let live_stream = stream(&live, &req).await.unwrap();
            let base = gone(server).await;

            let player = Arc::new(Cassette::replay(&file).unwrap());
            assert_eq!(player.len(), 2, "{}", p.spec);
            let replay = p.client(&base, &player);
            let replay_whole = chat(&replay, &req).await.unwrap();
            let replay_stream = stream(&replay, &req).await.unwrap();

            assert_eq!(replay_whole, live_whole, "{} {whole}", p.spec);
            assert_eq!(replay_stream, live_stream, "{} {streamed}", p.spec);
            assert!(!replay_whole.text().is_empty() || !replay_whole.tool_calls().is_empty());
            assert!(live_whole.usage.total_tokens > 0, "{}", p.spec);
            let _ = std::fs::remove_file(&file);
        }
    }
}

#[tokio::test]
async fn tool_calls_usage_and_finish_reasons_survive_the_round_trip() {
    for p in PROTOCOLS {
        let file = temp_path("tools");
        let server = p.serve((200, p.tool.0), (200, p.tool.1)).await;
        let recorder = Arc::new(Cassette::record(&file).unwrap());
        let live = chat(&p.client(&server.uri(), &recorder), &weather())
            .await
            .unwrap();
        let base = gone(server).await;
        let player = Arc::new(Cassette::replay(&file).unwrap());
        let replayed = chat(&p.client(&base, &player), &weather()).await.unwrap();
        assert!(!replayed.tool_calls().is_empty(), "{}", p.spec);
        assert_eq!(replayed.tool_calls(), live.tool_calls(), "{}", p.spec);
        assert_eq!(replayed.usage, live.usage, "{}", p.spec);
        assert_eq!(replayed.finish_reason, live.finish_reason, "{}", p.spec);
        let _ = std::fs::remove_file(&file);
    }
}

#[tokio::test]
async fn error_statuses_replay_as_the_same_typed_errors() {
    for p in PROTOCOLS {
        let file = temp_path("429");
        let server = p.serve((429, p.rate_limited), (429, p.rate_limited)).await;
        let recorder = Arc::new(Cassette::record(&file).unwrap());
        let live = p.client(&server.uri(), &recorder);
        let req = ChatRequest::user("hello");
        let live_whole = chat(&live, &req).await.unwrap_err();
        let live_stream = stream(&live, &req).await.unwrap_err();
        let base = gone(server).await;

        let player = Arc::new(Cassette::replay(&file).unwrap());
        let replay = p.client(&base, &player);
        let replay_whole = chat(&replay, &req).await.unwrap_err();
        let replay_stream = stream(&replay, &req).await.unwrap_err();

        for (live, replayed) in [(&live_whole, &replay_whole), (&live_stream, &replay_stream)] {
            assert_eq!(replayed.kind(), ErrorKind::RateLimited, "{}", p.spec);
            assert_eq!(replayed.retry_after(), Some(Duration::from_secs(7)));
            assert_eq!(shape(replayed), shape(live), "{}", p.spec);
        }
        let _ = std::fs::remove_file(&file);
    }
}

#[tokio::test]
async fn a_cut_stream_replays_as_the_same_interruption() {
    for p in PROTOCOLS {
        let file = temp_path("cut");
        let server = p.serve((200, p.text.0), (200, p.cut)).await;
        let recorder = Arc::new(Cassette::record(&file).unwrap());
        let req = ChatRequest::user("hello");
        let live = stream(&p.client(&server.uri(), &recorder), &req).await;
        let base = gone(server).await;
        let player = Arc::new(Cassette::replay(&file).unwrap());
        let replayed = stream(&p.client(&base, &player), &req).await;
        match (live, replayed) {
            (Err(live), Err(replayed)) => {
                assert_eq!(shape(&replayed), shape(&live), "{}", p.spec);
                assert_eq!(
                    replayed.partial().map(|r| r.text()),
                    live.partial().map(|r| r.text()),
                    "{}",
                    p.spec
                );
            }
            (live, replayed) => panic!("{}: live {live:?}, replayed {replayed:?}", p.spec),
        }
        let _ = std::fs::remove_file(&file);
    }
}

#[tokio::test]
async fn a_request_not_on_the_cassette_is_a_typed_miss_and_sends_nothing() {
    let p = OPENAI;
    let file = temp_path("miss");
    let server = p.serve((200, p.text.0), (200, p.text.1)).await;
    let recorder = Arc::new(Cassette::record(&file).unwrap());
    chat(
        &p.client(&server.uri(), &recorder),
        &ChatRequest::user("hello"),
    )
    .await
    .unwrap();

    // The server is still there and would answer; the replaying cassette must not ask it.
    let player = Arc::new(Cassette::replay(&file).unwrap());
    let replay = p.client(&server.uri(), &player);
    let err = chat(&replay, &ChatRequest::user("goodbye"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert_eq!(err.code(), Some("cassette_miss"));
    assert!(err.message().contains("POST /v1/chat/completions"), "{err}");
    assert!(err.message().contains("request key"), "{err}");
    assert!(err.message().contains("body differs"), "{err}");
    let fix = err.fix().unwrap();
    assert!(fix.contains("SWITCHBOARD_CASSETTE=auto:"), "{fix}");
    let err = stream(&replay, &ChatRequest::user("hello"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("cassette_miss"), "{err}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn identical_requests_replay_in_recorded_order() {
    let p = OPENAI;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("openai/chat_text.json"), "application/json"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("openai/chat_finish_length.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    let file = temp_path("order");
    let recorder = Arc::new(Cassette::record(&file).unwrap());
    let live = p.client(&server.uri(), &recorder);
    let req = ChatRequest::user("hello");
    let first = chat(&live, &req).await.unwrap();
    let second = chat(&live, &req).await.unwrap();
    assert_ne!(first, second);
    let base = gone(server).await;

    let player = Arc::new(Cassette::replay(&file).unwrap());
    let replay = p.client(&base, &player);
    assert_eq!(chat(&replay, &req).await.unwrap(), first);
    assert_eq!(chat(&replay, &req).await.unwrap(), second);
    let err = chat(&replay, &req).await.unwrap_err();
    assert_eq!(err.code(), Some("cassette_miss"));
    assert!(err.message().contains("all 2 recorded answers"), "{err}");
    player.rewind();
    assert_eq!(chat(&replay, &req).await.unwrap(), first);
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn ignored_fields_let_a_changing_request_match() {
    let p = ANTHROPIC;
    let file = temp_path("ignore");
    let server = p.serve((200, p.text.0), (200, p.text.1)).await;
    let recorder = Arc::new(Cassette::record(&file).unwrap());
    let recorded = chat(
        &p.client(&server.uri(), &recorder),
        &ChatRequest::user("hello").with_temperature(0.25),
    )
    .await
    .unwrap();
    let base = gone(server).await;

    let changed = ChatRequest::user("hello").with_temperature(0.75);
    let strict = Arc::new(Cassette::replay(&file).unwrap());
    let err = chat(&p.client(&base, &strict), &changed).await.unwrap_err();
    assert_eq!(err.code(), Some("cassette_miss"));
    let lenient = Arc::new(
        Cassette::builder()
            .path(&file)
            .mode(CassetteMode::Replay)
            .ignore_field("/temperature")
            .build()
            .unwrap(),
    );
    let replayed = chat(&p.client(&base, &lenient), &changed).await.unwrap();
    assert_eq!(replayed, recorded);
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn the_keys_never_reach_the_file() {
    let file = temp_path("keys");
    let recorder = Arc::new(Cassette::record(&file).unwrap());
    for p in PROTOCOLS {
        let server = p.serve((200, p.text.0), (429, p.rate_limited)).await;
        let client = p.client(&server.uri(), &recorder);
        chat(&client, &ChatRequest::user("hello")).await.unwrap();
        stream(&client, &ChatRequest::user("hello"))
            .await
            .unwrap_err();
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 6);
    for p in PROTOCOLS {
        assert!(!text.contains(p.key), "{} key in {text}", p.spec);
        assert!(!text.contains("cassette-test"), "{text}");
    }
    for header in ["authorization", "x-api-key", "x-goog-api-key", "api-key\""] {
        assert!(!text.to_ascii_lowercase().contains(header), "{header}");
    }
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn the_environment_variable_replays_without_a_key() {
    let p = GEMINI;
    let file = temp_path("env");
    let server = p.serve((200, p.text.0), (200, p.text.1)).await;
    let recorder = Arc::new(Cassette::record(&file).unwrap());
    let recorded = chat(
        &p.client(&server.uri(), &recorder),
        &ChatRequest::user("hello"),
    )
    .await
    .unwrap();
    drop(server);

    let spec = format!("replay:{}", file.display());
    let options = ClientOptions::new()
        .retry(None)
        .env(move |name| (name == "SWITCHBOARD_CASSETTE").then(|| spec.clone()));
    let client = create_client_with(p.spec, &options).expect("no key is needed to replay");
    let replayed = chat(&client, &ChatRequest::user("hello")).await.unwrap();
    assert_eq!(replayed, recorded);
    let _ = std::fs::remove_file(&file);
}

// ---- the cassette shipped for `examples/cassette.rs` ----------------------------------------

/// Read through this crate's own directory (not the test kit's), as the example does.
const EXAMPLE_CASSETTE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cassettes/example.jsonl"
);

/// The calls `examples/cassette.rs` makes; keep the two in step.
fn example_calls() -> Vec<(Protocol, ChatRequest)> {
    PROTOCOLS
        .into_iter()
        .map(|p| {
            (
                p,
                ChatRequest::user("Say hello in one short sentence.").with_max_tokens(64),
            )
        })
        .collect()
}

/// Makes the example's calls the way the example does: default clients, no key, no URL.
async fn run_example_calls(cassette: &Arc<Cassette>) -> Vec<ChatResponse> {
    let mut answers = Vec::new();
    for (p, req) in example_calls() {
        let options = ClientOptions::new()
            .env(|_| None)
            .cassette(Arc::clone(cassette));
        let client = create_client_with(p.spec, &options).unwrap();
        answers.push(chat(&client, &req).await.unwrap());
        answers.push(stream(&client, &req).await.unwrap());
    }
    answers
}

#[tokio::test]
async fn the_shipped_example_cassette_still_replays() {
    let player = Arc::new(Cassette::replay(EXAMPLE_CASSETTE).unwrap());
    let answers = run_example_calls(&player).await;
    assert_eq!(answers.len(), 6);
    assert!(answers.iter().all(|a| !a.text().is_empty()));
}

/// Rewrites the shipped cassette from the fixtures:
/// `cargo test --test cassette -- --ignored record_the_shipped_example_cassette`.
#[tokio::test]
#[ignore = "rewrites tests/fixtures/cassettes/example.jsonl"]
async fn record_the_shipped_example_cassette() {
    let target = EXAMPLE_CASSETTE;
    let _ = std::fs::remove_file(target);
    let recorder = Arc::new(Cassette::record(target).unwrap());
    for p in PROTOCOLS {
        let server = p.serve((200, p.text.0), (200, p.text.1)).await;
        let calls: Vec<_> = example_calls()
            .into_iter()
            .filter(|(q, _)| q.spec == p.spec)
            .collect();
        for (_, req) in calls {
            let client = p.client(&server.uri(), &recorder);
            chat(&client, &req).await.unwrap();
            stream(&client, &req).await.unwrap();
        }
    }
}
