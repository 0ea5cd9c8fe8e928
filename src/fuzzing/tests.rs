//! The fuzz targets' entry points run on the project's fixtures and on seeded mutations of
//! them: a fast, deterministic stand-in for `cargo fuzz` that runs with `cargo test`.
//!
//! Checked for every input: no panic; a stream decodes to the same [`Outcome`] whatever the
//! chunking; an error body always maps to a typed error with a message. Checked for the
//! fixtures themselves: answers decode, and the error and cut-stream fixtures fail typed,
//! never as a decoding failure or a short answer.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use super::*;

/// How many mutated inputs each entry point gets.
const MUTATIONS_PER_ENTRY: usize = 450;

/// The entry points, as the fuzz targets call them.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Entry {
    Sse,
    OpenAiReply,
    OpenAiError,
    OpenAiStream,
    AnthropicReply,
    AnthropicError,
    AnthropicStream,
    GeminiReply,
    GeminiError,
    GeminiStream,
    ResponsesReply,
    ResponsesStream,
}

const ENTRIES: [Entry; 12] = [
    Entry::Sse,
    Entry::OpenAiReply,
    Entry::OpenAiError,
    Entry::OpenAiStream,
    Entry::AnthropicReply,
    Entry::AnthropicError,
    Entry::AnthropicStream,
    Entry::GeminiReply,
    Entry::GeminiError,
    Entry::GeminiStream,
    Entry::ResponsesReply,
    Entry::ResponsesStream,
];

/// Which entry a fixture feeds, from its folder and name; `None` for fixtures of other APIs
/// (embeddings) or other formats.
fn entry_for(dir: &str, name: &str) -> Option<Entry> {
    let stream = name.ends_with(".sse");
    let error = name.starts_with("error_");
    Some(match (dir, stream, error) {
        ("openai" | "azure", true, _) => Entry::OpenAiStream,
        ("openai" | "azure" | "openai-responses", false, true) => Entry::OpenAiError,
        ("openai" | "azure", false, false) if name.starts_with("chat_") => Entry::OpenAiReply,
        ("anthropic", true, _) => Entry::AnthropicStream,
        ("anthropic", false, true) => Entry::AnthropicError,
        ("anthropic", false, false) => Entry::AnthropicReply,
        ("gemini", true, _) => Entry::GeminiStream,
        ("gemini", false, true) => Entry::GeminiError,
        ("gemini", false, false) if name.starts_with("generate_") => Entry::GeminiReply,
        ("openai-responses", true, _) => Entry::ResponsesStream,
        ("openai-responses", false, false) => Entry::ResponsesReply,
        _ => return None,
    })
}

/// Whether an answer fixture stands for a failure: a cut stream, an error reported inside a
/// 200 answer, a failed response or a blocked prompt.
fn fails(name: &str) -> bool {
    ["cut", "error", "failed", "blocked"]
        .iter()
        .any(|word| name.contains(word))
}

/// A fixture: where it lives, what it feeds, and its bytes.
struct Fixture {
    path: String,
    entry: Entry,
    bytes: Vec<u8>,
}

fn fixtures() -> Vec<Fixture> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    for dir in ["openai", "azure", "anthropic", "gemini", "openai-responses"] {
        let mut names: Vec<String> = std::fs::read_dir(root.join(dir))
            .expect("the fixture folder exists")
            .map(|e| e.expect("a readable entry").file_name())
            .filter_map(|n| n.to_str().map(str::to_owned))
            .collect();
        names.sort();
        for name in names {
            let Some(entry) = entry_for(dir, &name) else {
                continue;
            };
            let bytes = std::fs::read(root.join(dir).join(&name)).expect("a readable fixture");
            out.push(Fixture {
                path: format!("{dir}/{name}"),
                entry,
                bytes: bytes.clone(),
            });
            if name.ends_with(".sse") {
                // Every SSE fixture also feeds the SSE decoder itself.
                out.push(Fixture {
                    path: format!("{dir}/{name}"),
                    entry: Entry::Sse,
                    bytes,
                });
            }
        }
    }
    out
}

/// Runs `entry` on `(seed, body)` and checks what must hold for any input; returns the
/// outcome of the chunked run. Panics (failing the test) with the input when a check fails.
fn check(entry: Entry, seed: u8, body: &[u8]) -> Option<Outcome> {
    let run = || -> Option<Outcome> {
        let stream = |f: fn(u8, &[u8]) -> Result<ChatResponse>| {
            let split = Outcome::of(&f(seed, body));
            let whole = Outcome::of(&f(0, body));
            assert_eq!(split, whole, "the outcome depends on the chunking");
            Some(split)
        };
        let error = |f: fn(&[u8]) -> Error| {
            let mut data = vec![seed];
            data.extend_from_slice(body);
            let err = f(&data);
            assert!(err.status().is_some(), "an HTTP error keeps its status");
            assert!(!err.message().is_empty(), "an error has a message");
            None
        };
        match entry {
            Entry::Sse => {
                assert_eq!(
                    sse(seed, body),
                    sse(0, body),
                    "SSE events depend on the chunking"
                );
                None
            }
            Entry::OpenAiReply => Some(Outcome::of(&openai_chat_reply(body))),
            Entry::OpenAiError => error(openai_chat_error),
            Entry::OpenAiStream => stream(openai_chat_stream),
            Entry::AnthropicReply => Some(Outcome::of(&anthropic_reply(body))),
            Entry::AnthropicError => error(anthropic_error),
            Entry::AnthropicStream => stream(anthropic_stream),
            Entry::GeminiReply => Some(Outcome::of(&gemini_reply(body))),
            Entry::GeminiError => error(gemini_error),
            Entry::GeminiStream => stream(gemini_stream),
            Entry::ResponsesReply => Some(Outcome::of(&responses_reply(body))),
            Entry::ResponsesStream => stream(responses_stream),
        }
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(outcome) => outcome,
        Err(_) => panic!(
            "{entry:?} failed on seed {seed} and body {:?}",
            String::from_utf8_lossy(body)
        ),
    }
}

#[test]
fn every_fixture_decodes_as_its_scenario_says_under_any_chunking() {
    let all = fixtures();
    assert!(all.len() > 80, "only {} fixtures found", all.len());
    for fx in &all {
        for seed in [0, 1, 2, 7, 15, 16, 33, 200, 255] {
            let Some(outcome) = check(fx.entry, seed, &fx.bytes) else {
                continue;
            };
            let name = fx.path.rsplit('/').next().unwrap_or_default();
            match (&outcome, fails(name)) {
                (Outcome::Answer { .. }, false) => {}
                (Outcome::Failed { kind, .. }, true) => {
                    assert_ne!(*kind, ErrorKind::Decode, "{}: {outcome:?}", fx.path);
                }
                _ => panic!("{} decoded to {outcome:?}", fx.path),
            }
        }
    }
}

#[test]
fn every_entry_survives_thousands_of_mutated_fixtures() {
    let all = fixtures();
    let mut rng = fastrand::Rng::with_seed(0x5EED_F022);
    for entry in ENTRIES {
        let corpus: Vec<&[u8]> = all
            .iter()
            .filter(|f| f.entry == entry)
            .map(|f| f.bytes.as_slice())
            .collect();
        assert!(!corpus.is_empty(), "no fixture feeds {entry:?}");
        for _ in 0..MUTATIONS_PER_ENTRY {
            let base = corpus[rng.usize(..corpus.len())];
            let other = corpus[rng.usize(..corpus.len())];
            let body = mutate(&mut rng, base, other);
            check(entry, rng.u8(..), &body);
        }
    }
}

#[test]
fn hostile_inputs_never_panic() {
    let deep = "[".repeat(10_000);
    let long_line = format!("data: {}\n\n", "x".repeat(100_000));
    let cases: Vec<&[u8]> = vec![
        b"",
        b"\xEF\xBB\xBF",
        b"\r\r\r\n\n\n",
        b"data: [DONE]\n\n",
        b"data: null\n\n",
        b"data: {}\n\n",
        b"data: []\n\n",
        b"data: \"text\"\n\n",
        b"data: {\"choices\":[{\"index\":18446744073709551615,\"delta\":{}}]}\n\n",
        b"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":4294967296}]}}]}\n\n",
        b"event: error\ndata: \xFF\xFE\n\n",
        b"null",
        b"{\"error\":{\"message\":\"Please try again in 99999999999999999999999h\",\"code\":429}}",
        b"{\"error\":{\"code\":1e400}}",
        b"{\"usageMetadata\":{\"promptTokenCount\":18446744073709551615,\"candidatesTokenCount\":18446744073709551615}}",
        deep.as_bytes(),
        long_line.as_bytes(),
    ];
    for body in cases {
        for entry in ENTRIES {
            for seed in [0, 3] {
                check(entry, seed, body);
            }
        }
    }
}

/// Bytes that matter to the decoders, for targeted substitutions and insertions.
const INTERESTING: &[u8] = b"\"\\{}[]:,\n\r \x00\xFF\xC3\xEF0123456789-.eE";

/// Applies one to three random mutations to `base` (`other` is the splice partner).
fn mutate(rng: &mut fastrand::Rng, base: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = base.to_vec();
    for _ in 0..rng.usize(1..=3) {
        let len = out.len();
        let at = rng.usize(..=len);
        match rng.u8(..8) {
            // Bit flip.
            0 if len > 0 => out[rng.usize(..len)] ^= 1 << rng.u8(..8),
            // Substitute a byte that matters to a parser.
            1 if len > 0 => out[rng.usize(..len)] = INTERESTING[rng.usize(..INTERESTING.len())],
            // Truncate.
            2 => out.truncate(at),
            // Splice: our head, the partner's tail.
            3 => {
                let from = rng.usize(..=other.len());
                out.truncate(at);
                out.extend_from_slice(&other[from..]);
            }
            // Delete a range.
            4 if len > 0 => {
                let end = (at + rng.usize(1..=16)).min(len);
                out.drain(at.min(end)..end);
            }
            // Duplicate a range (repeats events, keys, line ends).
            5 if len > 0 => {
                let start = rng.usize(..len);
                let end = (start + rng.usize(1..=64)).min(len);
                let piece = out[start..end].to_vec();
                out.splice(at..at, piece);
            }
            // Insert interesting bytes.
            6 => {
                let piece: Vec<u8> = (0..rng.usize(1..=4))
                    .map(|_| INTERESTING[rng.usize(..INTERESTING.len())])
                    .collect();
                out.splice(at..at, piece);
            }
            // Swap in a number that overflows the counters.
            _ => out
                .splice(at..at, b"18446744073709551616".iter().copied())
                .for_each(drop),
        }
    }
    out
}
