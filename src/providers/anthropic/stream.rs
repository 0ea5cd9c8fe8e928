//! Messages API stream events → [`StreamEvent`]s.
//!
//! See <https://docs.anthropic.com/en/docs/build-with-claude/streaming>. The event's kind is
//! read from the `type` in its JSON data (the SSE `event:` name repeats it). An in-stream
//! `error` event becomes a typed error, so an overloaded provider never looks like a short
//! answer; [`ChatStream::from_events`](crate::ChatStream::from_events) then types it as
//! interrupted when content had already arrived.

use std::collections::VecDeque;

use futures_util::stream::{self, BoxStream, StreamExt};

use super::convert::{finish_reason, usage};
use super::error::stream_error;
use super::wire::{Delta, ResponseBlock, StreamPayload, WireUsage};
use crate::error::{Error, Result};
use crate::providers::http::ended_before;
use crate::providers::sse::SseEvent;
use crate::types::StreamEvent;

/// Turns decoded SSE events into stream events; ends after `message_stop` or an error, and
/// a body that ends before either ends with an [`ended_before`] error.
pub(crate) fn events(
    sse: BoxStream<'static, Result<SseEvent>>,
    provider: String,
    json_tool: Option<String>,
) -> BoxStream<'static, Result<StreamEvent>> {
    struct State {
        sse: BoxStream<'static, Result<SseEvent>>,
        mapper: EventMapper,
        pending: VecDeque<StreamEvent>,
        ended: bool,
    }
    let state = State {
        sse,
        mapper: EventMapper::new(provider, json_tool),
        pending: VecDeque::new(),
        ended: false,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            if let Some(event) = st.pending.pop_front() {
                return Some((Ok(event), st));
            }
            if st.ended {
                return None;
            }
            match st.sse.next().await {
                Some(Ok(sse_event)) => match st.mapper.map(&sse_event) {
                    Ok(events) => {
                        st.pending.extend(events);
                        st.ended = st.mapper.stopped;
                    }
                    Err(err) => {
                        st.ended = true;
                        return Some((Err(err), st));
                    }
                },
                Some(Err(err)) => {
                    st.ended = true;
                    return Some((Err(err), st));
                }
                // A body that ends before `message_stop` was cut, even after `message_delta`
                // brought the stop reason: the answer is not known to be whole.
                None => {
                    st.ended = true;
                    let cut = ended_before(&st.mapper.provider, "message_stop");
                    return Some((Err(cut), st));
                }
            }
        }
    })
    .boxed()
}

/// The state one stream needs: the usage so far and the forced JSON tool's block.
#[derive(Debug)]
pub(crate) struct EventMapper {
    provider: String,
    json_tool: Option<String>,
    json_block: Option<usize>,
    usage: WireUsage,
    stopped: bool,
}

impl EventMapper {
    pub(crate) fn new(provider: String, json_tool: Option<String>) -> EventMapper {
        EventMapper {
            provider,
            json_tool,
            json_block: None,
            usage: WireUsage::default(),
            stopped: false,
        }
    }

    /// Maps one SSE event to zero or more stream events.
    pub(crate) fn map(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>> {
        if event.data.trim().is_empty() {
            return Ok(Vec::new());
        }
        let payload: StreamPayload = serde_json::from_str(&event.data).map_err(|e| {
            let head: String = event.data.chars().take(200).collect();
            Error::decode(
                &self.provider,
                format!(
                    "the `{}` stream event is not the JSON expected ({e}): {head}",
                    event.event_name()
                ),
            )
            .with_fix("check that the base URL points at Anthropic's API")
        })?;
        Ok(match payload {
            StreamPayload::MessageStart { message } => {
                self.usage = message.usage;
                vec![
                    StreamEvent::Started {
                        response_id: message.id,
                        model: message.model,
                    },
                    StreamEvent::Usage {
                        usage: usage(&self.usage),
                    },
                ]
            }
            StreamPayload::ContentBlockStart {
                index,
                content_block,
            } => self.block_start(index, content_block),
            StreamPayload::ContentBlockDelta { index, delta } => self.delta(index, delta),
            StreamPayload::MessageDelta {
                delta,
                usage: later,
            } => {
                self.merge_usage(&later);
                let mut events = vec![StreamEvent::Usage {
                    usage: usage(&self.usage),
                }];
                if let Some(raw) = delta.stop_reason {
                    events.push(StreamEvent::Finish {
                        reason: finish_reason(&raw, self.json_block.is_some()),
                    });
                }
                events
            }
            StreamPayload::MessageStop => {
                self.stopped = true;
                Vec::new()
            }
            StreamPayload::Error { error } => {
                return Err(stream_error(&self.provider, &error.kind, &error.message))
            }
            StreamPayload::ContentBlockStop | StreamPayload::Ping | StreamPayload::Unknown => {
                Vec::new()
            }
        })
    }

    fn block_start(&mut self, index: usize, block: ResponseBlock) -> Vec<StreamEvent> {
        match block {
            ResponseBlock::Text { text } if text.is_empty() => Vec::new(),
            ResponseBlock::Text { text } => vec![StreamEvent::TextDelta { text }],
            ResponseBlock::ToolUse { name, .. } if self.json_tool.as_ref() == Some(&name) => {
                self.json_block = Some(index);
                Vec::new()
            }
            ResponseBlock::ToolUse { id, name, .. } => vec![StreamEvent::ToolCallStart {
                index,
                id,
                name,
                signature: None,
            }],
            ResponseBlock::Thinking {
                thinking,
                signature,
            } => {
                let mut events = Vec::new();
                if !thinking.is_empty() {
                    events.push(StreamEvent::ThinkingDelta { text: thinking });
                }
                if !signature.is_empty() {
                    events.push(StreamEvent::ThinkingSignature { signature });
                }
                events
            }
            ResponseBlock::RedactedThinking { data } => {
                vec![StreamEvent::RedactedThinking { data }]
            }
            ResponseBlock::Unknown => Vec::new(),
        }
    }

    fn delta(&mut self, index: usize, delta: Delta) -> Vec<StreamEvent> {
        let event = match delta {
            Delta::Text { text } if !text.is_empty() => StreamEvent::TextDelta { text },
            Delta::InputJson { partial_json } if partial_json.is_empty() => return Vec::new(),
            // The forced JSON-schema tool's input is the answer's text.
            Delta::InputJson { partial_json } if self.json_block == Some(index) => {
                StreamEvent::TextDelta { text: partial_json }
            }
            Delta::InputJson { partial_json } => StreamEvent::ToolCallDelta {
                index,
                arguments: partial_json,
            },
            Delta::Thinking { thinking } if !thinking.is_empty() => {
                StreamEvent::ThinkingDelta { text: thinking }
            }
            Delta::Signature { signature } if !signature.is_empty() => {
                StreamEvent::ThinkingSignature { signature }
            }
            _ => return Vec::new(),
        };
        vec![event]
    }

    /// Takes the counts a `message_delta` carries (always output, sometimes cumulative input
    /// and cache counts) over those from `message_start`.
    fn merge_usage(&mut self, later: &WireUsage) {
        let u = &mut self.usage;
        u.input_tokens = later.input_tokens.or(u.input_tokens);
        u.output_tokens = later.output_tokens.or(u.output_tokens);
        u.cache_read_input_tokens = later.cache_read_input_tokens.or(u.cache_read_input_tokens);
        u.cache_creation_input_tokens = later
            .cache_creation_input_tokens
            .or(u.cache_creation_input_tokens);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn sse(data: &str) -> SseEvent {
        SseEvent {
            data: data.to_owned(),
            ..SseEvent::default()
        }
    }

    #[tokio::test]
    async fn a_stream_cut_after_message_delta_is_interrupted() {
        use crate::types::{ChatStream, StreamMeta};
        let lines = [
            r#"{"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":5,"output_tokens":1}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}"#,
        ];
        let run = |with_stop: bool| {
            let mut all: Vec<Result<SseEvent>> = lines.iter().map(|l| Ok(sse(l))).collect();
            if with_stop {
                all.push(Ok(sse(r#"{"type":"message_stop"}"#)));
            }
            ChatStream::from_events(
                StreamMeta::new("anthropic", "c"),
                events(stream::iter(all).boxed(), "anthropic".to_owned(), None),
            )
            .collect_response()
        };
        let err = run(false).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StreamInterrupted, "{err}");
        assert!(err.message().contains("message_stop"), "{err}");
        assert_eq!(err.partial().unwrap().text(), "Hi");
        let whole = run(true).await.unwrap();
        assert_eq!(whole.usage.output_tokens, 2);
    }

    #[test]
    fn message_delta_keeps_input_and_cache_counts_from_the_start() {
        let mut m = EventMapper::new("anthropic".into(), None);
        m.map(&sse(r#"{"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":5,"cache_read_input_tokens":100,"output_tokens":1}}}"#)).unwrap();
        let events = m
            .map(&sse(r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}"#))
            .unwrap();
        let StreamEvent::Usage { usage } = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(
            (
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_tokens
            ),
            (105, 9, Some(100))
        );
    }

    #[test]
    fn unknown_events_and_blocks_are_ignored_and_bad_json_is_a_decode_error() {
        let mut m = EventMapper::new("anthropic".into(), None);
        assert!(m
            .map(&sse(r#"{"type":"brand_new_event"}"#))
            .unwrap()
            .is_empty());
        assert!(m
            .map(&sse(r#"{"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"x"}}"#))
            .unwrap()
            .is_empty());
        let err = m.map(&sse("{not json")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode);
    }
}
