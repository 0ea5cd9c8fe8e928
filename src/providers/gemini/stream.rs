//! `streamGenerateContent?alt=sse` chunks → [`StreamEvent`]s.
//!
//! Every SSE `data:` line is a whole `GenerateContentResponse` holding the next slice of the
//! answer (Gemini ends its events with CRLF; the shared decoder handles that). A chunk maps
//! to: `Started` once; `ThinkingDelta` for thought parts (never text); `TextDelta` for other
//! text; `ToolCallStart` plus one `ToolCallDelta` with the whole arguments for each function
//! call (Gemini does not split arguments); `Usage` whenever the chunk has `usageMetadata`
//! (later chunks supersede earlier ones); `Finish` once a candidate has a `finishReason`.
//!
//! A signature on a non-thought part becomes a `ThinkingSignature` after that part's text, so
//! on the next turn it rides on the following part or, at the end, on an empty text part —
//! exactly where Gemini streams it (an empty final text part). Function call signatures stay
//! on their calls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::stream::{self, BoxStream, StreamExt};
use serde_json::Value;

use super::convert::{call_from_wire, finish_from_wire, usage_from_wire, CallIds};
use super::error::{is_error_value, prompt_blocked, stream_error};
use super::wire::GenerateContentResponse;
use crate::error::{Error, Result};
use crate::providers::sse::SseEvent;
use crate::types::StreamEvent;

/// Maps the SSE events of one answer to stream events (errors pass through typed).
#[cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))]
pub(crate) fn events(
    provider: String,
    sse: BoxStream<'static, Result<SseEvent>>,
) -> BoxStream<'static, Result<StreamEvent>> {
    events_watching_usage(provider, sse).0
}

/// Like [`events`], also returning a flag that turns true once usage arrives on (or after)
/// the chunk with the finish reason. Gemini streams have no end marker, so a stream that
/// ends without it may have lost its final counts: the client marks such an answer's usage
/// unknown.
pub(crate) fn events_watching_usage(
    provider: String,
    sse: BoxStream<'static, Result<SseEvent>>,
) -> (BoxStream<'static, Result<StreamEvent>>, Arc<AtomicBool>) {
    let mut mapper = Mapper::new(provider);
    let final_usage = Arc::clone(&mapper.final_usage);
    let events = sse
        .flat_map(move |item| {
            let out: Vec<Result<StreamEvent>> = match item {
                Ok(event) => mapper.map(&event),
                Err(err) => vec![Err(err)],
            };
            stream::iter(out)
        })
        .boxed();
    (events, final_usage)
}

/// The state carried across chunks.
#[derive(Debug)]
struct Mapper {
    provider: String,
    started: bool,
    finished: bool,
    saw_call: bool,
    tool_index: usize,
    ids: CallIds,
    /// Usage arrived on or after the chunk with the finish reason.
    final_usage: Arc<AtomicBool>,
}

impl Mapper {
    fn new(provider: String) -> Mapper {
        Mapper {
            provider,
            started: false,
            finished: false,
            saw_call: false,
            tool_index: 0,
            ids: CallIds::default(),
            final_usage: Arc::new(AtomicBool::new(false)),
        }
    }

    fn map(&mut self, event: &SseEvent) -> Vec<Result<StreamEvent>> {
        let data = event.data.trim();
        if data.is_empty() || data == "[DONE]" {
            return Vec::new();
        }
        let value: Value = match serde_json::from_str(data) {
            Ok(value) => value,
            Err(e) => return vec![Err(self.decode_error(&e.to_string(), data))],
        };
        if is_error_value(&value) {
            return vec![Err(stream_error(&self.provider, &value))];
        }
        match serde_json::from_value::<GenerateContentResponse>(value) {
            Ok(chunk) => self.chunk(chunk),
            Err(e) => vec![Err(self.decode_error(&e.to_string(), data))],
        }
    }

    fn chunk(&mut self, chunk: GenerateContentResponse) -> Vec<Result<StreamEvent>> {
        let has_usage = chunk.usage_metadata.is_some();
        let out = self.chunk_parts(chunk);
        if has_usage && self.finished {
            self.final_usage.store(true, Ordering::Release);
        }
        out
    }

    fn chunk_parts(&mut self, chunk: GenerateContentResponse) -> Vec<Result<StreamEvent>> {
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(Ok(StreamEvent::Started {
                response_id: chunk.response_id.clone(),
                model: chunk.model_version.clone(),
            }));
        }
        let Some(candidate) = chunk.candidates.into_iter().next() else {
            if let Some(reason) = chunk.prompt_feedback.and_then(|f| f.block_reason) {
                out.push(Err(prompt_blocked(&self.provider, &reason)));
                return out;
            }
            if let Some(usage) = chunk.usage_metadata {
                out.push(Ok(StreamEvent::Usage {
                    usage: usage_from_wire(usage),
                }));
            }
            return out;
        };
        for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
            let signature = part.thought_signature.clone();
            if part.is_thought() {
                if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                    out.push(Ok(StreamEvent::ThinkingDelta { text }));
                }
                if let Some(signature) = signature {
                    out.push(Ok(StreamEvent::ThinkingSignature { signature }));
                }
            } else if let Some(call) = part.function_call {
                let call = call_from_wire(call, signature, &mut self.ids);
                let index = self.tool_index;
                self.tool_index += 1;
                self.saw_call = true;
                out.push(Ok(StreamEvent::ToolCallStart {
                    index,
                    id: call.id,
                    name: call.name,
                    signature: call.signature,
                }));
                out.push(Ok(StreamEvent::ToolCallDelta {
                    index,
                    arguments: call.arguments.to_string(),
                }));
            } else {
                if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                    out.push(Ok(StreamEvent::TextDelta { text }));
                }
                if let Some(signature) = signature {
                    out.push(Ok(StreamEvent::ThinkingSignature { signature }));
                }
            }
        }
        if let Some(usage) = chunk.usage_metadata {
            out.push(Ok(StreamEvent::Usage {
                usage: usage_from_wire(usage),
            }));
        }
        if let Some(raw) = candidate.finish_reason.filter(|r| !r.is_empty()) {
            if !self.finished {
                self.finished = true;
                let reason = finish_from_wire(&raw, self.saw_call);
                out.push(Ok(StreamEvent::Finish { reason }));
            }
        }
        out
    }

    fn decode_error(&self, problem: &str, data: &str) -> Error {
        let mut end = data.len().min(200);
        while !data.is_char_boundary(end) {
            end -= 1;
        }
        Error::decode(
            &self.provider,
            format!(
                "a stream chunk is not the JSON expected ({problem}); it starts: {}",
                &data[..end]
            ),
        )
    }
}
