//! Throughput of the SSE decoder on a synthetic OpenAI chat-completion stream,
//! compared with a naive line-splitting parser.

use std::hint::black_box;

use criterion::{BenchmarkGroup, Criterion, Throughput};
use switchboard::providers::sse::SseDecoder;

/// Size of each simulated network read.
const PIECE: usize = 1400;

/// Builds a ~1 MB body of `chat.completion.chunk` events ending in `[DONE]`.
fn body(newline: &str) -> Vec<u8> {
    let words = [
        "Hello", "world", "the", "quick", "brown", "fox", "jumps", "über", "lazy", "dog",
    ];
    let mut body = String::new();
    let mut n = 0usize;
    while body.len() < 1 << 20 {
        let word = words[n % words.len()];
        body.push_str(&format!(
            "data: {{\"id\":\"chatcmpl-9Qx7fZkT2bLmN4pRsVwXyZ0aBcD\",\"object\":\"chat.completion.chunk\",\
             \"created\":{},\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_4e2b2da518\",\
             \"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{word} \"}},\"logprobs\":null,\
             \"finish_reason\":null}}]}}{newline}{newline}",
            1_718_000_000 + n / 50
        ));
        n += 1;
    }
    body.push_str(&format!("data: [DONE]{newline}{newline}"));
    body.into_bytes()
}

/// Decodes `body` with [`SseDecoder`], returning the event count and total data length.
fn decoder(body: &[u8]) -> (usize, usize) {
    let mut decoder = SseDecoder::new();
    let (mut events, mut len) = (0, 0);
    for piece in body.chunks(PIECE) {
        decoder.push(piece);
        while let Some(event) = decoder.next_event() {
            events += 1;
            len += black_box(event).data.len();
        }
    }
    if let Some(event) = decoder.finish() {
        events += 1;
        len += event.data.len();
    }
    (events, len)
}

/// Decodes `body` the way a quick hand-rolled parser would: accumulate text,
/// split on `'\n'`, and copy what follows `"data: "` into a new `String`.
fn naive(body: &[u8]) -> (usize, usize) {
    let mut buf = String::new();
    let (mut events, mut len) = (0, 0);
    for piece in body.chunks(PIECE) {
        buf.push_str(&String::from_utf8_lossy(piece));
        let mut start = 0;
        while let Some(end) = buf[start..].find('\n') {
            let line = buf[start..start + end].trim_end_matches('\r');
            start += end + 1;
            if let Some(data) = line.strip_prefix("data: ") {
                events += 1;
                len += black_box(data.to_string()).len();
            }
        }
        buf.drain(..start);
    }
    (events, len)
}

/// Registers the decoder and the naive baseline on `body` in `group`.
fn compare(mut group: BenchmarkGroup<'_, criterion::measurement::WallTime>, body: &[u8]) {
    // Only the counts agree: the naive parser mangles the `ü` split across reads.
    assert_eq!(
        decoder(body).0,
        naive(body).0,
        "both parsers must see every event"
    );
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("SseDecoder", |b| b.iter(|| decoder(black_box(body))));
    group.bench_function("naive_baseline", |b| b.iter(|| naive(black_box(body))));
    group.finish();
}

/// Benchmarks LF-framed and CRLF-framed bodies.
fn sse_decode(c: &mut Criterion) {
    compare(c.benchmark_group("sse_decode"), &body("\n"));
    compare(c.benchmark_group("sse_decode_crlf"), &body("\r\n"));
}

/// Runs both groups with the command-line options applied.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    sse_decode(&mut criterion);
    criterion.final_summary();
}
