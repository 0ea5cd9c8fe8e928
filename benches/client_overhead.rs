//! One `chat()` through a client from `create_client` against a raw reqwest POST of the
//! same bytes to the same local mock: what the library adds on top of the HTTP round trip
//! (building the body, mapping the reply, labelling the response).
//!
//! Run: `cargo bench --bench client_overhead -- --warm-up-time 1 --measurement-time 5`

use criterion::{black_box, Criterion};
use switchboard::{create_client_with, ChatClient, ChatRequest, ClientOptions, Message};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A recorded-shape Chat Completions reply, served for every request.
const REPLY: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Bench answers are short and always the same.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":21,"completion_tokens":9,"total_tokens":30,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#;

/// Benchmarks the two paths against one mock server.
fn client_overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(REPLY, "application/json"))
            .mount(&server)
            .await;
        server
    });
    let base = format!("{}/v1", server.uri());
    let options = ClientOptions::new()
        .env(|_| None)
        .api_key("bench-key")
        .base_url(base.clone());
    let client = create_client_with("openai:gpt-4o-mini", &options).expect("client");
    let request = ChatRequest::new(vec![
        Message::system("You answer briefly."),
        Message::user("Say something short about benchmarks."),
    ])
    .with_max_tokens(64);
    // The raw path sends the very bytes the client would send.
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You answer briefly."},
            {"role": "user", "content": "Say something short about benchmarks."}
        ],
        "max_completion_tokens": 64
    })
    .to_string();
    let raw = reqwest::Client::new();
    let url = format!("{base}/chat/completions");

    let mut group = c.benchmark_group("client_overhead");
    group.bench_function("raw_reqwest_post", |b| {
        b.iter(|| {
            rt.block_on(async {
                let response = raw
                    .post(&url)
                    .header("authorization", "Bearer bench-key")
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("send");
                black_box(response.bytes().await.expect("body"))
            })
        })
    });
    group.bench_function("create_client_chat", |b| {
        b.iter(|| rt.block_on(async { black_box(client.chat(&request).await.expect("chat")) }))
    });
    group.finish();
}

/// Runs the group with the command-line options applied.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    client_overhead(&mut criterion);
    criterion.final_summary();
}
