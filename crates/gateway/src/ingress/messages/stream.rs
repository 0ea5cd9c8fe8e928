//! [`StreamEvent`]s → the Messages API's SSE events.
//!
//! The sequence is Anthropic's: `message_start` (with the usage known so far), a `ping`,
//! then per content block `content_block_start`, its deltas (`text_delta`,
//! `thinking_delta`, `signature_delta`, `input_json_delta`) and `content_block_stop`; then
//! `message_delta` with the stop reason and the final usage, and `message_stop`. A `ping`
//! goes out whenever the upstream is quiet for [`Context::ping_every`], so proxies and
//! clients with read timeouts keep the connection while a model thinks.
//!
//! A failure after the stream started ends it with `event: error` in Anthropic's error
//! shape and no `message_stop`, so no client mistakes a cut answer for a whole one.
//! Reasoning from providers other than Anthropic gets a gateway-wrapped signature (see
//! [`super::signature`]), so it can go back to the provider that produced it.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt};
use serde::Serialize;
use serde_json::json;
use switchboard::{ChatStream, Error, StreamEvent, Usage};

use super::encode::{stop_reason, UsageOut};
use super::signature;
use crate::error::ApiError;
use crate::sse::{End, OnEnd};

/// What the events need besides the upstream's.
pub(crate) struct Context {
    /// The message id.
    pub(crate) id: String,
    /// The serving model (replaced by the provider's own word when it sends one).
    pub(crate) model: String,
    /// The provider answering, whose reasoning signatures the client receives.
    pub(crate) provider: String,
    /// How long the upstream may be quiet before a `ping` goes out.
    pub(crate) ping_every: Duration,
    /// Called once when the stream ends.
    pub(crate) on_end: Option<OnEnd>,
}

/// The content block open now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Open {
    None,
    Text,
    /// Reasoning; `signed` once its signature went out.
    Thinking {
        signed: bool,
    },
    /// A tool call, by its index in the answer.
    Tool(usize),
}

struct State {
    events: ChatStream,
    ctx: Context,
    queue: VecDeque<Bytes>,
    started: bool,
    over: bool,
    open: Open,
    /// The index the next block gets.
    next: usize,
    /// Tool call index → its block's index.
    tools: HashMap<usize, usize>,
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct DeltaFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    delta: Delta<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum Delta<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
}

/// Turns a committed stream into Messages SSE frames.
pub(crate) fn frames(
    events: ChatStream,
    ctx: Context,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let state = State {
        events,
        ctx,
        queue: VecDeque::with_capacity(4),
        started: false,
        over: false,
        open: Open::None,
        next: 0,
        tools: HashMap::new(),
        usage: None,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            if let Some(frame) = st.queue.pop_front() {
                return Some((Ok(frame), st));
            }
            if st.over {
                return None;
            }
            let next = tokio::time::timeout(st.ctx.ping_every, st.events.next()).await;
            match next {
                Err(_quiet) => {
                    if st.started {
                        st.push("ping", &json!({"type": "ping"}));
                    }
                }
                Ok(Some(Ok(event))) => st.event(event),
                Ok(Some(Err(err))) => st.fail(&err),
                Ok(None) => {
                    let err = Error::new(
                        switchboard::ErrorKind::StreamInterrupted,
                        "the stream ended without its final event",
                    );
                    st.fail(&err);
                }
            }
        }
    })
}

impl State {
    fn push(&mut self, event: &str, payload: &impl Serialize) {
        let mut frame = Vec::with_capacity(128);
        frame.extend_from_slice(b"event: ");
        frame.extend_from_slice(event.as_bytes());
        frame.extend_from_slice(b"\ndata: ");
        if serde_json::to_writer(&mut frame, payload).is_ok() {
            frame.extend_from_slice(b"\n\n");
            self.queue.push_back(Bytes::from(frame));
        }
    }

    fn start(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        let usage = UsageOut::of(&self.usage.unwrap_or_default());
        let message = json!({
            "type": "message_start",
            "message": {
                "id": self.ctx.id,
                "type": "message",
                "role": "assistant",
                "model": self.ctx.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": usage,
            }
        });
        self.push("message_start", &message);
        self.push("ping", &json!({"type": "ping"}));
    }

    fn delta(&mut self, index: usize, delta: Delta<'_>) {
        let frame = DeltaFrame {
            kind: "content_block_delta",
            index,
            delta,
        };
        self.push("content_block_delta", &frame);
    }

    /// Closes the open block, signing unsigned reasoning from other providers so the
    /// client holds its origin.
    fn close(&mut self) {
        let open = std::mem::replace(&mut self.open, Open::None);
        if open == Open::None {
            return;
        }
        let index = self.next - 1;
        if open == (Open::Thinking { signed: false }) && self.ctx.provider != signature::ANTHROPIC {
            let wrapped = signature::wrap(Some(&self.ctx.provider), "");
            self.delta(
                index,
                Delta::Signature {
                    signature: &wrapped,
                },
            );
        }
        self.push(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        );
    }

    /// Opens a block of `kind` (closing the open one) and returns its index.
    fn open(&mut self, open: Open, block: serde_json::Value) -> usize {
        self.close();
        let index = self.next;
        self.next += 1;
        self.open = open;
        self.push(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        index
    }

    fn thinking_block(&mut self) -> usize {
        if self.open != (Open::Thinking { signed: false }) {
            self.open(
                Open::Thinking { signed: false },
                json!({"type": "thinking", "thinking": "", "signature": ""}),
            );
        }
        self.next - 1
    }

    fn event(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::Started { model, .. } => {
                if let Some(model) = model.filter(|m| !m.is_empty()) {
                    if !self.started {
                        self.ctx.model = model;
                    }
                }
            }
            StreamEvent::Usage { usage } => self.usage = Some(usage),
            StreamEvent::TextDelta { text } => {
                self.start();
                if self.open != Open::Text {
                    self.open(Open::Text, json!({"type": "text", "text": ""}));
                }
                let index = self.next - 1;
                self.delta(index, Delta::Text { text: &text });
            }
            StreamEvent::ThinkingDelta { text } => {
                self.start();
                let index = self.thinking_block();
                self.delta(index, Delta::Thinking { thinking: &text });
            }
            StreamEvent::ThinkingSignature { signature: sig } => {
                self.start();
                let index = self.thinking_block();
                let wrapped = if self.ctx.provider == signature::ANTHROPIC {
                    sig
                } else {
                    signature::wrap(Some(&self.ctx.provider), &sig)
                };
                self.delta(
                    index,
                    Delta::Signature {
                        signature: &wrapped,
                    },
                );
                self.open = Open::Thinking { signed: true };
            }
            StreamEvent::RedactedThinking { data } => {
                self.start();
                let data = if self.ctx.provider == signature::ANTHROPIC {
                    data
                } else {
                    signature::wrap(Some(&self.ctx.provider), &data)
                };
                self.open(
                    Open::Text,
                    json!({"type": "redacted_thinking", "data": data}),
                );
                self.close();
            }
            StreamEvent::ToolCallStart {
                index, id, name, ..
            } => {
                self.start();
                let block = self.open(
                    Open::Tool(index),
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                );
                self.tools.insert(index, block);
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                // Pieces of a call whose block already closed still name its index.
                if let Some(block) = self.tools.get(&index).copied() {
                    self.delta(
                        block,
                        Delta::InputJson {
                            partial_json: &arguments,
                        },
                    );
                }
            }
            StreamEvent::Done { response } => {
                self.start();
                self.close();
                let usage = UsageOut::of(&self.usage.unwrap_or(response.usage));
                let usage = UsageOut {
                    output_tokens: response.usage.output_tokens.max(usage.output_tokens),
                    ..usage
                };
                self.push(
                    "message_delta",
                    &json!({
                        "type": "message_delta",
                        "delta": {
                            "stop_reason": stop_reason(&response.finish_reason),
                            "stop_sequence": null,
                        },
                        "usage": usage,
                    }),
                );
                self.push("message_stop", &json!({"type": "message_stop"}));
                self.over = true;
                if let Some(on_end) = self.ctx.on_end.take() {
                    on_end(End::Done(&response));
                }
            }
            _ => {}
        }
    }

    fn fail(&mut self, err: &Error) {
        let api = ApiError::from_error(err);
        let (_, kind) = super::encode::error_kind(&api);
        self.push(
            "error",
            &json!({"type": "error", "error": {"type": kind, "message": api.message()}}),
        );
        self.over = true;
        if let Some(on_end) = self.ctx.on_end.take() {
            on_end(End::Failed(&api));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard::types::StreamMeta;
    use switchboard::{ChatResponse, FinishKind, FinishReason};

    fn context(provider: &str, ping_every: Duration) -> Context {
        Context {
            id: "msg_1".into(),
            model: "m".into(),
            provider: provider.into(),
            ping_every,
            on_end: None,
        }
    }

    async fn collect(events: ChatStream, ctx: Context) -> String {
        let frames: Vec<Bytes> = frames(events, ctx)
            .map(|f| f.unwrap_or_else(|e| match e {}))
            .collect()
            .await;
        frames
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect()
    }

    fn event_names(text: &str) -> Vec<&str> {
        text.lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect()
    }

    #[tokio::test]
    async fn thinking_then_text_then_a_tool_call_follow_anthropics_sequence() {
        let events = ChatStream::from_events(
            StreamMeta::new("gemini", "m"),
            stream::iter(vec![
                Ok(StreamEvent::ThinkingDelta { text: "hmm".into() }),
                Ok(StreamEvent::TextDelta { text: "hi".into() }),
                Ok(StreamEvent::ToolCallStart {
                    index: 0,
                    id: "call_1".into(),
                    name: "f".into(),
                    signature: None,
                }),
                Ok(StreamEvent::ToolCallDelta {
                    index: 0,
                    arguments: "{}".into(),
                }),
                Ok(StreamEvent::Finish {
                    reason: FinishReason::of(FinishKind::ToolCalls),
                }),
            ])
            .boxed(),
        );
        let text = collect(events, context("gemini", Duration::from_secs(30))).await;
        assert_eq!(
            event_names(&text),
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ],
            "{text}"
        );
        assert!(text.contains(r#""signature":"sbgw1:gemini:""#), "{text}");
        assert!(text.contains(r#""stop_reason":"tool_use""#), "{text}");
    }

    #[tokio::test]
    async fn a_break_after_content_ends_with_an_error_event_and_no_message_stop() {
        let events = ChatStream::new(stream::iter(vec![
            Ok(StreamEvent::TextDelta {
                text: "Half".into(),
            }),
            Err(Error::from_status("anthropic", 529, "overloaded")),
        ]));
        let text = collect(events, context("anthropic", Duration::from_secs(30))).await;
        let names = event_names(&text);
        assert_eq!(names.last(), Some(&"error"), "{text}");
        assert!(!names.contains(&"message_stop"));
        assert!(text.contains(r#""type":"overloaded_error""#), "{text}");
    }

    #[tokio::test]
    async fn a_quiet_upstream_gets_pings() {
        let events = ChatStream::new(
            stream::iter(vec![Ok(StreamEvent::TextDelta { text: "a".into() })])
                .chain(stream::once(async {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    Ok(StreamEvent::TextDelta { text: "b".into() })
                }))
                .chain(stream::iter(vec![Ok(StreamEvent::Done {
                    response: Box::new(ChatResponse::from_text("ab")),
                })])),
        );
        let text = collect(events, context("anthropic", Duration::from_millis(50))).await;
        let pings = event_names(&text).iter().filter(|n| **n == "ping").count();
        // One after message_start, then at least one while the upstream was quiet.
        assert!(pings >= 2, "{text}");
        assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
    }
}
