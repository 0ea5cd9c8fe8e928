//! Chat Completions stream chunks → [`StreamEvent`]s.
//!
//! OpenAI sends `data:` lines holding `chat.completion.chunk` objects and ends with
//! `data: [DONE]`. The chunk with `finish_reason` is not the last one: with
//! `include_usage` a usage chunk with empty `choices` follows it, so the mapper keeps
//! reading until `[DONE]`. A body that ends without `[DONE]` was cut — even after the
//! finish reason, the usage chunk is lost — and ends the events with an error (so the
//! stream is [`ErrorKind::StreamInterrupted`](crate::ErrorKind::StreamInterrupted), never a
//! complete answer that cost nothing). An `{"error": ...}` object in place of a chunk
//! becomes a typed error.
//!
//! Reference: <https://platform.openai.com/docs/api-reference/chat-streaming>.

use std::collections::{HashMap, VecDeque};

use futures_util::stream::{self, BoxStream, Stream, StreamExt};
use serde_json::Value;

use super::convert::{finish_reason, usage};
use super::error::reported_error;
use super::wire;
use crate::error::{Error, Result};
use crate::providers::http::ended_before;
use crate::providers::sse::SseEvent;
use crate::types::StreamEvent;

/// Turns one stream's chunks into events, remembering what it has already announced.
#[derive(Debug)]
pub(crate) struct ChunkMapper {
    provider: String,
    started: bool,
    refused: bool,
    /// `[DONE]` arrived.
    terminated: bool,
    /// Wire tool-call index → (our index, call id).
    calls: HashMap<usize, (usize, String)>,
    next_call: usize,
}

/// Whether to keep reading after a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

impl ChunkMapper {
    /// Creates a mapper for a stream from `provider`.
    pub(crate) fn new(provider: impl Into<String>) -> ChunkMapper {
        ChunkMapper {
            provider: provider.into(),
            started: false,
            refused: false,
            terminated: false,
            calls: HashMap::new(),
            next_call: 0,
        }
    }

    /// Maps one SSE event, appending its stream events (or an error) to `out`.
    pub(crate) fn map(
        &mut self,
        event: &SseEvent,
        out: &mut VecDeque<Result<StreamEvent>>,
    ) -> Flow {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.terminated = true;
            return Flow::Stop;
        }
        if data.is_empty() {
            return Flow::Continue;
        }
        if event.event_name() == "error" {
            let value: Value =
                serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_owned()));
            out.push_back(Err(reported_error(&self.provider, &value)));
            return Flow::Stop;
        }
        let chunk: wire::ChatCompletionChunk = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(e) => {
                let head: String = data.chars().take(200).collect();
                out.push_back(Err(Error::decode(
                    &self.provider,
                    format!("a stream chunk is not the JSON expected ({e}); it starts: {head}"),
                )
                .with_fix("check that the base URL points at an OpenAI-compatible API")));
                return Flow::Stop;
            }
        };
        if let Some(error) = chunk.error.as_ref().filter(|e| !e.is_null()) {
            out.push_back(Err(reported_error(&self.provider, error)));
            return Flow::Stop;
        }
        if !self.started && (chunk.id.is_some() || chunk.model.is_some()) {
            self.started = true;
            out.push_back(Ok(StreamEvent::Started {
                response_id: chunk.id.clone(),
                model: chunk.model.clone(),
            }));
        }
        // Only the first choice is followed, as in the non-streaming path.
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            self.delta(choice.delta, out);
            if let Some(raw) = choice.finish_reason.as_deref() {
                out.push_back(Ok(StreamEvent::Finish {
                    reason: finish_reason(Some(raw), self.refused),
                }));
            }
        }
        if let Some(u) = &chunk.usage {
            out.push_back(Ok(StreamEvent::Usage { usage: usage(u) }));
        }
        Flow::Continue
    }

    fn delta(&mut self, delta: wire::Delta, out: &mut VecDeque<Result<StreamEvent>>) {
        let reasoning = delta.reasoning_content.or(delta.reasoning);
        if let Some(text) = reasoning.filter(|t| !t.is_empty()) {
            out.push_back(Ok(StreamEvent::ThinkingDelta { text }));
        }
        if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
            out.push_back(Ok(StreamEvent::TextDelta { text }));
        }
        if let Some(text) = delta.refusal.filter(|t| !t.is_empty()) {
            self.refused = true;
            out.push_back(Ok(StreamEvent::TextDelta { text }));
        }
        for call in delta.tool_calls {
            let function = call.function.unwrap_or_default();
            let id = call.id.filter(|id| !id.is_empty());
            // A new id at a known index starts a new call: some servers send every call
            // whole at index 0 instead of numbering them.
            let is_new = match (self.calls.get(&call.index), &id) {
                (None, _) => id.is_some() || function.name.is_some(),
                (Some((_, known)), Some(id)) => known != id,
                (Some(_), None) => false,
            };
            let index = if is_new {
                let index = self.next_call;
                self.next_call += 1;
                let id = id.unwrap_or_default();
                self.calls.insert(call.index, (index, id.clone()));
                out.push_back(Ok(StreamEvent::ToolCallStart {
                    index,
                    id,
                    name: function.name.clone().unwrap_or_default(),
                    signature: None,
                }));
                index
            } else {
                match self.calls.get(&call.index) {
                    Some((index, _)) => *index,
                    None => {
                        // Arguments for a call never announced: give it a slot anyway so
                        // the accumulator keeps the text.
                        let index = self.next_call;
                        self.next_call += 1;
                        self.calls.insert(call.index, (index, String::new()));
                        index
                    }
                }
            };
            if let Some(arguments) = function.arguments.filter(|a| !a.is_empty()) {
                out.push_back(Ok(StreamEvent::ToolCallDelta { index, arguments }));
            }
        }
    }
}

/// Maps a stream of SSE events from `provider` into stream events, ending at `[DONE]` or
/// at the first error; a body that ends before either ends with an
/// [`ended_before`] error.
pub(crate) fn events(
    provider: &str,
    sse: BoxStream<'static, Result<SseEvent>>,
) -> impl Stream<Item = Result<StreamEvent>> + Send + 'static {
    struct State {
        sse: BoxStream<'static, Result<SseEvent>>,
        mapper: ChunkMapper,
        queue: VecDeque<Result<StreamEvent>>,
        done: bool,
    }
    let state = State {
        sse,
        mapper: ChunkMapper::new(provider),
        queue: VecDeque::new(),
        done: false,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.queue.pop_front() {
                return Some((item, st));
            }
            if st.done {
                return None;
            }
            match st.sse.next().await {
                Some(Ok(event)) => {
                    if st.mapper.map(&event, &mut st.queue) == Flow::Stop {
                        st.done = true;
                    }
                }
                Some(Err(err)) => {
                    st.done = true;
                    st.queue.push_back(Err(err));
                }
                None => {
                    st.done = true;
                    if !st.mapper.terminated {
                        let provider = st.mapper.provider.clone();
                        st.queue
                            .push_back(Err(ended_before(&provider, "data: [DONE]")));
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ChatStream, StreamMeta};
    use crate::ErrorKind;

    fn sse_of(lines: &[&str]) -> BoxStream<'static, Result<SseEvent>> {
        let events: Vec<Result<SseEvent>> = lines
            .iter()
            .map(|line| {
                Ok(SseEvent {
                    data: (*line).to_owned(),
                    ..SseEvent::default()
                })
            })
            .collect();
        stream::iter(events).boxed()
    }

    const TEXT: &str =
        r#"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hi"}}]}"#;
    const FINISH: &str = r#"{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
    const USAGE: &str = r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"#;

    #[tokio::test]
    async fn a_stream_cut_after_its_finish_reason_is_interrupted_not_free() {
        let stream = ChatStream::from_events(
            StreamMeta::new("openai", "gpt-4o"),
            events("openai", sse_of(&[TEXT, FINISH])),
        );
        let err = stream.collect_response().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StreamInterrupted, "{err}");
        assert!(err.message().contains("[DONE]"), "{err}");
        let partial = err.partial().expect("the partial answer");
        assert_eq!(partial.text(), "Hi");
        assert!(partial.usage_unknown, "no usage report arrived");
    }

    #[tokio::test]
    async fn a_stream_cut_after_its_usage_chunk_is_still_interrupted() {
        let stream = ChatStream::from_events(
            StreamMeta::new("openai", "gpt-4o"),
            events("openai", sse_of(&[TEXT, FINISH, USAGE])),
        );
        let err = stream.collect_response().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StreamInterrupted, "{err}");
    }

    #[tokio::test]
    async fn a_stream_with_its_done_line_completes_with_its_usage() {
        let stream = ChatStream::from_events(
            StreamMeta::new("openai", "gpt-4o"),
            events("openai", sse_of(&[TEXT, FINISH, USAGE, "[DONE]"])),
        );
        let response = stream.collect_response().await.unwrap();
        assert_eq!(response.text(), "Hi");
        assert_eq!(response.usage.output_tokens, 2);
        assert!(!response.usage_unknown);
    }

    fn run(lines: &[&str]) -> Vec<Result<StreamEvent>> {
        let mut mapper = ChunkMapper::new("p");
        let mut out = VecDeque::new();
        for line in lines {
            let event = SseEvent {
                data: (*line).to_owned(),
                ..SseEvent::default()
            };
            if mapper.map(&event, &mut out) == Flow::Stop {
                break;
            }
        }
        out.into_iter().collect()
    }

    #[test]
    fn calls_sent_whole_at_index_zero_get_their_own_slots() {
        let events = run(&[
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"b","function":{"name":"g","arguments":"{\"x\":1}"}}]}}]}"#,
        ]);
        let starts: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Ok(StreamEvent::ToolCallStart { index, id, .. }) => Some((*index, id.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(starts, vec![(0, "a".to_owned()), (1, "b".to_owned())]);
    }

    #[test]
    fn reasoning_content_becomes_thinking_deltas() {
        let events = run(&[r#"{"choices":[{"index":0,"delta":{"reasoning_content":"hmm"}}]}"#]);
        assert!(matches!(&events[0], Ok(StreamEvent::ThinkingDelta { text }) if text == "hmm"));
    }

    #[test]
    fn a_line_that_is_not_json_is_a_decode_error() {
        let events = run(&["{not json"]);
        let err = events[0].as_ref().unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Decode);
    }
}
