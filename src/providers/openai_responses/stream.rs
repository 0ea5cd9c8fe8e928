//! Responses API streaming events → [`StreamEvent`]s.
//!
//! The Responses API streams typed semantic events (`event: <type>` plus a JSON `data:` that
//! repeats the `type`) and ends with a terminal event — `response.completed`,
//! `response.incomplete` or `response.failed` — instead of a `[DONE]` line. The mapper:
//!
//! - `response.created` → [`StreamEvent::Started`];
//! - `response.output_text.delta` and `response.refusal.delta` → [`StreamEvent::TextDelta`];
//! - `response.output_item.added` for a `function_call` → [`StreamEvent::ToolCallStart`]
//!   whose index is the item's `output_index`, and `response.function_call_arguments.delta`
//!   → [`StreamEvent::ToolCallDelta`] for the same index;
//! - `response.reasoning_summary_text.delta` (and `response.reasoning_text.delta`) →
//!   [`StreamEvent::ThinkingDelta`]; when the reasoning item is done, its id follows as a
//!   [`StreamEvent::ThinkingSignature`] and its encrypted content as a
//!   [`StreamEvent::RedactedThinking`], so the next turn can send it back;
//! - `response.completed` / `response.incomplete` → [`StreamEvent::Usage`] and
//!   [`StreamEvent::Finish`];
//! - `error` and `response.failed` → a typed error (see [`super::error`]), never a silently
//!   short answer. Before any content the error keeps its kind (so a fallback can take
//!   over); after content the stream reports it as interrupted.
//!
//! Reference: <https://platform.openai.com/docs/api-reference/responses-streaming>.

use std::collections::{HashSet, VecDeque};

use futures_util::stream::{self, BoxStream, Stream, StreamExt};
use serde_json::Value;

use super::convert::{finish_reason, usage};
use super::error::reported_error;
use super::wire;
use crate::error::{Error, Result};
use crate::providers::http::ended_before;
use crate::providers::sse::SseEvent;
use crate::types::StreamEvent;

/// Turns one stream's events into [`StreamEvent`]s, remembering what it has announced.
#[derive(Debug)]
pub(crate) struct EventMapper {
    provider: String,
    refused: bool,
    /// Output indexes of function calls announced.
    calls: HashSet<usize>,
    /// Output indexes of function calls whose arguments arrived as deltas.
    streamed_args: HashSet<usize>,
}

/// Whether to keep reading after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

impl EventMapper {
    /// Creates a mapper for a stream from `provider`.
    pub(crate) fn new(provider: impl Into<String>) -> EventMapper {
        EventMapper {
            provider: provider.into(),
            refused: false,
            calls: HashSet::new(),
            streamed_args: HashSet::new(),
        }
    }

    /// Maps one SSE event, appending its stream events (or an error) to `out`.
    pub(crate) fn map(
        &mut self,
        event: &SseEvent,
        out: &mut VecDeque<Result<StreamEvent>>,
    ) -> Flow {
        let data = event.data.trim();
        if data.is_empty() || data == "[DONE]" {
            return if data.is_empty() {
                Flow::Continue
            } else {
                Flow::Stop
            };
        }
        let parsed: wire::StreamEvent = match serde_json::from_str(data) {
            Ok(parsed) => parsed,
            Err(e) => {
                let head: String = data.chars().take(200).collect();
                out.push_back(Err(Error::decode(
                    &self.provider,
                    format!("a stream event is not the JSON expected ({e}); it starts: {head}"),
                )
                .with_fix("check that the base URL points at a Responses API")));
                return Flow::Stop;
            }
        };
        let kind = if parsed.kind.is_empty() {
            event.event_name().to_owned()
        } else {
            parsed.kind.clone()
        };
        match kind.as_str() {
            "response.created" => {
                let response = parsed.response.unwrap_or_default();
                out.push_back(Ok(StreamEvent::Started {
                    response_id: response.id,
                    model: response.model,
                }));
            }
            "response.output_text.delta" => self.text(parsed.delta, out),
            "response.refusal.delta" => {
                self.refused = true;
                self.text(parsed.delta, out);
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                if let Some(text) = parsed.delta.filter(|t| !t.is_empty()) {
                    out.push_back(Ok(StreamEvent::ThinkingDelta { text }));
                }
            }
            "response.reasoning_summary_part.added" if parsed.summary_index > Some(0) => {
                // Summary parts are joined by a newline, as in the non-streaming reply.
                out.push_back(Ok(StreamEvent::ThinkingDelta { text: "\n".into() }));
            }
            "response.output_item.added" => {
                if let (Some(item), Some(index)) = (parsed.item, parsed.output_index) {
                    self.item_added(item, index, out);
                }
            }
            "response.function_call_arguments.delta" => {
                if let (Some(arguments), Some(index)) = (parsed.delta, parsed.output_index) {
                    if !arguments.is_empty() {
                        self.streamed_args.insert(index);
                        out.push_back(Ok(StreamEvent::ToolCallDelta { index, arguments }));
                    }
                }
            }
            "response.output_item.done" => {
                if let (Some(item), Some(index)) = (parsed.item, parsed.output_index) {
                    self.item_done(item, index, out);
                }
            }
            "response.completed" | "response.incomplete" => {
                let response = parsed.response.unwrap_or_default();
                if let Some(u) = &response.usage {
                    out.push_back(Ok(StreamEvent::Usage { usage: usage(u) }));
                }
                let reason = response
                    .incomplete_details
                    .as_ref()
                    .and_then(|d| d.reason.as_deref());
                let status =
                    response
                        .status
                        .as_deref()
                        .or(Some(if kind == "response.incomplete" {
                            "incomplete"
                        } else {
                            "completed"
                        }));
                out.push_back(Ok(StreamEvent::Finish {
                    reason: finish_reason(status, reason, self.refused, !self.calls.is_empty()),
                }));
                return Flow::Stop;
            }
            "response.failed" => {
                let error = parsed.response.and_then(|r| r.error).unwrap_or(Value::Null);
                out.push_back(Err(reported_error(&self.provider, &error)));
                return Flow::Stop;
            }
            "error" => {
                let value: Value =
                    serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_owned()));
                out.push_back(Err(reported_error(&self.provider, &value)));
                return Flow::Stop;
            }
            _ => {}
        }
        Flow::Continue
    }

    fn text(&mut self, delta: Option<String>, out: &mut VecDeque<Result<StreamEvent>>) {
        if let Some(text) = delta.filter(|t| !t.is_empty()) {
            out.push_back(Ok(StreamEvent::TextDelta { text }));
        }
    }

    fn item_added(
        &mut self,
        item: wire::OutputItem,
        index: usize,
        out: &mut VecDeque<Result<StreamEvent>>,
    ) {
        if let wire::OutputItem::FunctionCall {
            id,
            call_id,
            name,
            arguments,
        } = item
        {
            self.calls.insert(index);
            out.push_back(Ok(StreamEvent::ToolCallStart {
                index,
                id: call_id.or(id).unwrap_or_default(),
                name,
                signature: None,
            }));
            if !arguments.is_empty() {
                self.streamed_args.insert(index);
                out.push_back(Ok(StreamEvent::ToolCallDelta { index, arguments }));
            }
        }
    }

    fn item_done(
        &mut self,
        item: wire::OutputItem,
        index: usize,
        out: &mut VecDeque<Result<StreamEvent>>,
    ) {
        match item {
            wire::OutputItem::Reasoning {
                id,
                encrypted_content,
                ..
            } => {
                if let Some(signature) = id {
                    out.push_back(Ok(StreamEvent::ThinkingSignature { signature }));
                }
                if let Some(data) = encrypted_content {
                    out.push_back(Ok(StreamEvent::RedactedThinking { data }));
                }
            }
            wire::OutputItem::FunctionCall {
                id,
                call_id,
                name,
                arguments,
            } => {
                // A call whose start or arguments never streamed still arrives whole.
                if self.calls.insert(index) {
                    out.push_back(Ok(StreamEvent::ToolCallStart {
                        index,
                        id: call_id.or(id).unwrap_or_default(),
                        name,
                        signature: None,
                    }));
                }
                if self.streamed_args.insert(index) && !arguments.is_empty() {
                    out.push_back(Ok(StreamEvent::ToolCallDelta { index, arguments }));
                }
            }
            _ => {}
        }
    }
}

/// Maps a stream of SSE events from `provider` into stream events, ending at the terminal
/// event or at the first error; a body that ends before either ends with an
/// [`ended_before`] error.
pub(crate) fn events(
    provider: &str,
    sse: BoxStream<'static, Result<SseEvent>>,
) -> impl Stream<Item = Result<StreamEvent>> + Send + 'static {
    struct State {
        sse: BoxStream<'static, Result<SseEvent>>,
        mapper: EventMapper,
        queue: VecDeque<Result<StreamEvent>>,
        done: bool,
    }
    let state = State {
        sse,
        mapper: EventMapper::new(provider),
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
                    let cut = ended_before(&st.mapper.provider, "response.completed");
                    st.queue.push_back(Err(cut));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn run(lines: &[&str]) -> Vec<Result<StreamEvent>> {
        let mut mapper = EventMapper::new("p");
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
    fn a_call_that_arrives_only_when_done_is_announced_with_its_arguments() {
        let events = run(&[
            r#"{"type":"response.output_item.done","output_index":1,"item":{"type":"function_call","call_id":"c1","name":"f","arguments":"{\"a\":1}"}}"#,
        ]);
        assert!(
            matches!(&events[0], Ok(StreamEvent::ToolCallStart { index: 1, id, .. }) if id == "c1")
        );
        assert!(
            matches!(&events[1], Ok(StreamEvent::ToolCallDelta { index: 1, arguments }) if arguments == "{\"a\":1}")
        );
    }

    #[test]
    fn streamed_arguments_are_not_repeated_when_the_call_is_done() {
        let events = run(&[
            r#"{"type":"response.output_item.added","output_index":0,"item":{"type":"function_call","call_id":"c1","name":"f","arguments":""}}"#,
            r#"{"type":"response.function_call_arguments.delta","output_index":0,"delta":"{}"}"#,
            r#"{"type":"response.output_item.done","output_index":0,"item":{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"}}"#,
        ]);
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn an_error_event_is_typed_and_ends_the_stream() {
        let events = run(&[
            r#"{"type":"error","code":"rate_limit_exceeded","message":"slow down","param":null}"#,
            r#"{"type":"response.output_text.delta","delta":"never"}"#,
        ]);
        assert_eq!(events.len(), 1);
        let err = events[0].as_ref().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RateLimited);
    }

    #[test]
    fn a_line_that_is_not_json_is_a_decode_error() {
        let events = run(&["{nope"]);
        assert_eq!(events[0].as_ref().unwrap_err().kind(), ErrorKind::Decode);
    }
}
