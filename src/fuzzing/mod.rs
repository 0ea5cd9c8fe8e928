//! Entry points for fuzzing the decoders: bytes as the network could deliver them in, the
//! clients' own decoding code run on them, a typed result out.
//!
//! Compiled with the `fuzzing` feature (for the targets in `fuzz/`) and in unit tests; it is
//! hidden from the docs and not part of the stable API. No function here may panic,
//! whatever its input: a panic is a bug in the decoder it reached. See `docs/fuzzing.md`.
//!
//! Stream entries take a chunking `seed` beside the body: 0 delivers the body in one chunk;
//! any other value splits it into pseudo-random chunks of 1 to `seed % 16 + 1` bytes, so
//! line terminators, UTF-8 characters and JSON land across chunk boundaries. A decoder must
//! give the same [`Outcome`] for every seed.

use futures_util::stream::{self, BoxStream, StreamExt};
use futures_util::FutureExt;
use reqwest::header::HeaderMap;

use crate::error::{Error, ErrorKind, Result};
use crate::providers::sse::{decode_stream, SseDecoder, SseEvent};
use crate::providers::{anthropic, gemini, openai, openai_responses};
use crate::types::{ChatResponse, ChatStream, FinishReason, Part, StreamEvent, StreamMeta, Usage};

#[cfg(test)]
mod tests;

/// Splits a fuzzer's input into a chunking seed (its first byte) and the body (the rest).
pub fn split_input(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((seed, body)) => (*seed, body),
        None => (0, data),
    }
}

/// Cuts `body` into the chunks `seed` stands for (see the module docs).
pub fn chunks(seed: u8, body: &[u8]) -> Vec<&[u8]> {
    if seed == 0 || body.is_empty() {
        return vec![body];
    }
    let max = usize::from(seed % 16) + 1;
    let mut state = u32::from(seed).wrapping_mul(0x9E37_79B9) | 1;
    let mut out = Vec::with_capacity(body.len() / max + 1);
    let mut rest = body;
    while !rest.is_empty() {
        // xorshift32: cheap, deterministic, and never stuck at zero (the state is odd).
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let take = (state as usize % max + 1).min(rest.len());
        let (head, tail) = rest.split_at(take);
        out.push(head);
        rest = tail;
    }
    out
}

/// Decodes an SSE body delivered in the chunks `seed` stands for, finishing at its end.
pub fn sse(seed: u8, body: &[u8]) -> Vec<SseEvent> {
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    for chunk in chunks(seed, body) {
        decoder.push(chunk);
        events.extend(std::iter::from_fn(|| decoder.next_event()));
    }
    events.extend(decoder.finish());
    events.extend(std::iter::from_fn(|| decoder.next_event()));
    events
}

/// What a decoded reply or stream came to, without the parts that differ between runs
/// (request ids, latency).
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// A complete answer.
    Answer {
        /// The answer's parts.
        parts: Vec<Part>,
        /// Why it ended.
        finish_reason: FinishReason,
        /// Its token counts.
        usage: Usage,
        /// The provider's response id.
        response_id: Option<String>,
        /// The model that served it.
        served_model: Option<String>,
    },
    /// A typed failure.
    Failed {
        /// Its kind.
        kind: ErrorKind,
        /// Its message.
        message: String,
        /// The text of the partial answer an interrupted stream carried.
        partial_text: Option<String>,
    },
}

impl Outcome {
    /// Summarises a decoding result.
    pub fn of(result: &Result<ChatResponse>) -> Outcome {
        match result {
            Ok(r) => Outcome::Answer {
                parts: r.parts.clone(),
                finish_reason: r.finish_reason.clone(),
                usage: r.usage,
                response_id: r.response_id.clone(),
                served_model: r.served_model.clone(),
            },
            Err(e) => Outcome::Failed {
                kind: e.kind(),
                message: e.message().to_owned(),
                partial_text: e.partial().map(ChatResponse::text),
            },
        }
    }
}

/// Runs a protocol's stream mapper over `body` delivered in chunks, through the same SSE
/// decoding and [`ChatStream::from_events`] accumulation the clients use.
fn run_stream(
    seed: u8,
    body: &[u8],
    map: impl FnOnce(BoxStream<'static, Result<SseEvent>>) -> BoxStream<'static, Result<StreamEvent>>,
) -> Result<ChatResponse> {
    let pieces: Vec<Result<Vec<u8>>> = chunks(seed, body)
        .into_iter()
        .map(|chunk| Ok(chunk.to_vec()))
        .collect();
    let sse = decode_stream(stream::iter(pieces)).boxed();
    let stream = ChatStream::from_events(StreamMeta::new("fuzz", "fuzz-model"), map(sse));
    // Every stage is ready at once (the input is in memory), so one poll completes it.
    stream.collect_response().now_or_never().unwrap_or_else(|| {
        Err(Error::new(
            ErrorKind::Decode,
            "the in-memory stream did not complete in one poll",
        ))
    })
}

/// Maps a status byte to an HTTP error status (400 to 599).
fn error_status(byte: u8) -> u16 {
    400 + u16::from(byte) % 200
}

/// Decodes a 2xx Chat Completions body.
pub fn openai_chat_reply(body: &[u8]) -> Result<ChatResponse> {
    openai::decode_reply("openai", body)
}

/// Maps a Chat Completions error body (the first byte picks the status, 400 to 599).
pub fn openai_chat_error(data: &[u8]) -> Error {
    let (status, body) = split_input(data);
    openai::error::map_error("openai", error_status(status), &HeaderMap::new(), body)
}

/// Decodes a Chat Completions stream.
pub fn openai_chat_stream(seed: u8, body: &[u8]) -> Result<ChatResponse> {
    run_stream(seed, body, |sse| {
        openai::stream_events("openai", sse).boxed()
    })
}

/// Decodes a 2xx Anthropic Messages body.
pub fn anthropic_reply(body: &[u8]) -> Result<ChatResponse> {
    anthropic::decode_reply(body, None)
}

/// Maps an Anthropic error body (the first byte picks the status, 400 to 599).
pub fn anthropic_error(data: &[u8]) -> Error {
    let (status, body) = split_input(data);
    anthropic::map_error("anthropic", error_status(status), &HeaderMap::new(), body)
}

/// Decodes an Anthropic Messages stream.
pub fn anthropic_stream(seed: u8, body: &[u8]) -> Result<ChatResponse> {
    run_stream(seed, body, |sse| {
        anthropic::stream_events(sse, "anthropic".to_owned(), None)
    })
}

/// Decodes a 2xx Gemini `generateContent` body.
pub fn gemini_reply(body: &[u8]) -> Result<ChatResponse> {
    gemini::decode_reply(body)
}

/// Maps a Gemini error body (the first byte picks the status, 400 to 599).
pub fn gemini_error(data: &[u8]) -> Error {
    let (status, body) = split_input(data);
    gemini::map_error("gemini", error_status(status), &HeaderMap::new(), body)
}

/// Decodes a Gemini `streamGenerateContent?alt=sse` stream.
pub fn gemini_stream(seed: u8, body: &[u8]) -> Result<ChatResponse> {
    run_stream(seed, body, |sse| {
        gemini::stream_events("gemini".to_owned(), sse)
    })
}

/// Decodes a 2xx OpenAI Responses body.
pub fn responses_reply(body: &[u8]) -> Result<ChatResponse> {
    openai_responses::decode_reply("openai-responses", body)
}

/// Decodes an OpenAI Responses stream.
pub fn responses_stream(seed: u8, body: &[u8]) -> Result<ChatResponse> {
    run_stream(seed, body, |sse| {
        openai_responses::stream_events("openai-responses", sse).boxed()
    })
}
