//! Streaming: [`StreamEvent`], the [`ChatStream`] that carries them, and the one
//! [`StreamAccumulator`] that folds a stream back into a [`ChatResponse`].
//!
//! Every stream, whatever its provider, yields content events (text, reasoning, tool call
//! pieces), metadata events (ids, usage, finish reason) and ends with exactly one
//! [`StreamEvent::Done`] holding the complete response — the same value a non-streaming call
//! returns. A stream that breaks after content was delivered ends with an
//! [`ErrorKind::StreamInterrupted`](crate::ErrorKind::StreamInterrupted) error carrying the
//! partial answer; a stream that ends without the provider saying it finished is treated the
//! same way, so a cut connection never looks like a short, complete answer.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::stream::{self, BoxStream, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::message::{Part, Thinking, ToolCall};
use super::response::{Attempt, ChatResponse, FinishKind, FinishReason, Usage};
use crate::error::{Error, ErrorKind, Result};

/// One piece of a streamed answer.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum StreamEvent {
    /// The provider's id for the response and the model serving it.
    Started {
        /// The provider's response id.
        response_id: Option<String>,
        /// The model that serves.
        model: Option<String>,
    },
    /// More answer text.
    TextDelta {
        /// The new text.
        text: String,
    },
    /// More reasoning text.
    ThinkingDelta {
        /// The new reasoning text.
        text: String,
    },
    /// The signature closing the current reasoning block.
    ThinkingSignature {
        /// The opaque signature.
        signature: String,
    },
    /// A reasoning block the provider sent only in encrypted form.
    RedactedThinking {
        /// The opaque data.
        data: String,
    },
    /// A tool call begins.
    ToolCallStart {
        /// The call's position in this answer; later deltas name it.
        index: usize,
        /// The provider's call id.
        id: String,
        /// The tool's name.
        name: String,
        /// An opaque signature the provider attached (Gemini `thoughtSignature`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    /// More of a tool call's JSON arguments.
    ToolCallDelta {
        /// The call's position, as in its [`StreamEvent::ToolCallStart`].
        index: usize,
        /// A fragment of the arguments' JSON text.
        arguments: String,
    },
    /// Token counts so far (later reports supersede earlier ones).
    Usage {
        /// The counts.
        usage: Usage,
    },
    /// Why generation stopped.
    Finish {
        /// The reason.
        reason: FinishReason,
    },
    /// The end: the whole answer, as a non-streaming call would have returned it.
    Done {
        /// The complete response.
        response: Box<ChatResponse>,
    },
}

impl StreamEvent {
    /// Says whether the event delivers answer content (text, reasoning or a tool call), as
    /// opposed to metadata. Failover may only happen before the first content event.
    pub fn is_content(&self) -> bool {
        matches!(
            self,
            StreamEvent::TextDelta { .. }
                | StreamEvent::ThinkingDelta { .. }
                | StreamEvent::ThinkingSignature { .. }
                | StreamEvent::RedactedThinking { .. }
                | StreamEvent::ToolCallStart { .. }
                | StreamEvent::ToolCallDelta { .. }
        )
    }
}

/// Folds stream events into a [`ChatResponse`]: the one place where streams become responses.
#[derive(Debug)]
pub struct StreamAccumulator {
    response: ChatResponse,
    /// Tool call index → (position in `parts`, arguments text so far).
    tool_args: HashMap<usize, (usize, String)>,
    finished: bool,
    saw_content: bool,
    saw_usage: bool,
}

impl StreamAccumulator {
    /// Starts an empty response for `provider` and `model`.
    pub fn new(provider: impl Into<String>, model: impl Into<String>) -> StreamAccumulator {
        StreamAccumulator {
            response: ChatResponse {
                provider: provider.into(),
                model: model.into(),
                ..ChatResponse::default()
            },
            tool_args: HashMap::new(),
            finished: false,
            saw_content: false,
            saw_usage: false,
        }
    }

    /// Says whether a [`StreamEvent::Finish`] was seen.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Says whether any content event was seen.
    pub fn has_content(&self) -> bool {
        self.saw_content
    }

    /// Returns the text received so far.
    pub fn text_so_far(&self) -> String {
        self.response.text()
    }

    /// Folds one event in.
    pub fn push(&mut self, event: &StreamEvent) {
        if event.is_content() {
            self.saw_content = true;
        }
        let parts = &mut self.response.parts;
        match event {
            StreamEvent::Started { response_id, model } => {
                if self.response.response_id.is_none() {
                    self.response.response_id.clone_from(response_id);
                }
                if model.is_some() {
                    self.response.served_model.clone_from(model);
                }
            }
            StreamEvent::TextDelta { text } => match parts.last_mut() {
                Some(Part::Text { text: last }) => last.push_str(text),
                _ => parts.push(Part::text(text.clone())),
            },
            StreamEvent::ThinkingDelta { text } => match parts.last_mut() {
                Some(Part::Thinking(t)) if t.signature.is_none() && t.redacted.is_none() => {
                    t.text.push_str(text)
                }
                _ => parts.push(Part::Thinking(Thinking {
                    text: text.clone(),
                    signature: None,
                    redacted: None,
                    origin: Some(self.response.provider.clone()),
                })),
            },
            StreamEvent::ThinkingSignature { signature } => match parts.last_mut() {
                Some(Part::Thinking(t)) if t.redacted.is_none() => {
                    t.signature = Some(signature.clone())
                }
                _ => parts.push(Part::Thinking(Thinking {
                    text: String::new(),
                    signature: Some(signature.clone()),
                    redacted: None,
                    origin: Some(self.response.provider.clone()),
                })),
            },
            StreamEvent::RedactedThinking { data } => parts.push(Part::Thinking(Thinking {
                text: String::new(),
                signature: None,
                redacted: Some(data.clone()),
                origin: Some(self.response.provider.clone()),
            })),
            StreamEvent::ToolCallStart {
                index,
                id,
                name,
                signature,
            } => {
                parts.push(Part::ToolCall(ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: Value::Null,
                    signature: signature.clone(),
                }));
                self.tool_args
                    .insert(*index, (parts.len() - 1, String::new()));
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                if let Some((_, args)) = self.tool_args.get_mut(index) {
                    args.push_str(arguments);
                } else {
                    // A delta for a call whose start we never saw: keep the arguments anyway
                    // under an empty name rather than lose them.
                    parts.push(Part::ToolCall(ToolCall {
                        id: String::new(),
                        name: String::new(),
                        arguments: Value::Null,
                        signature: None,
                    }));
                    self.tool_args
                        .insert(*index, (parts.len() - 1, arguments.clone()));
                }
            }
            StreamEvent::Usage { usage } => {
                self.saw_usage = true;
                self.response.usage.merge(usage);
            }
            StreamEvent::Finish { reason } => {
                self.finished = true;
                self.response.finish_reason = reason.clone();
            }
            StreamEvent::Done { .. } => {}
        }
    }

    /// Returns the response as it stands (tool arguments parsed so far): the partial answer
    /// of a stream that broke. Its usage is marked
    /// [`usage_unknown`](ChatResponse::usage_unknown) when no usage report had arrived, so
    /// a budget never charges a broken stream nothing.
    pub fn snapshot(&self) -> ChatResponse {
        let mut response = self.response.clone();
        fill_tool_arguments(&mut response.parts, &self.tool_args);
        response.usage_unknown |= !self.saw_usage;
        response
    }

    /// Finishes the response.
    pub fn finish(mut self) -> ChatResponse {
        fill_tool_arguments(&mut self.response.parts, &self.tool_args);
        self.response
    }
}

fn fill_tool_arguments(parts: &mut [Part], args: &HashMap<usize, (usize, String)>) {
    for (position, text) in args.values() {
        if let Some(Part::ToolCall(call)) = parts.get_mut(*position) {
            call.arguments = parse_arguments(text);
        }
    }
}

/// Parses tool-call arguments text: empty means `{}`; text that is not JSON is kept as a
/// JSON string so nothing is lost.
pub(crate) fn parse_arguments(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Object(serde_json::Map::new());
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// Turns a complete response into the events a stream of it would have carried (without
/// the final [`StreamEvent::Done`]). Used to stream cached or scripted responses.
pub fn response_to_events(response: &ChatResponse) -> Vec<StreamEvent> {
    let mut events = Vec::with_capacity(response.parts.len() + 3);
    if response.response_id.is_some() || response.served_model.is_some() {
        events.push(StreamEvent::Started {
            response_id: response.response_id.clone(),
            model: response.served_model.clone(),
        });
    }
    let mut tool_index = 0;
    for part in &response.parts {
        match part {
            Part::Text { text } => events.push(StreamEvent::TextDelta { text: text.clone() }),
            Part::Thinking(t) => {
                if let Some(data) = &t.redacted {
                    events.push(StreamEvent::RedactedThinking { data: data.clone() });
                    continue;
                }
                events.push(StreamEvent::ThinkingDelta {
                    text: t.text.clone(),
                });
                if let Some(signature) = &t.signature {
                    events.push(StreamEvent::ThinkingSignature {
                        signature: signature.clone(),
                    });
                }
            }
            Part::ToolCall(call) => {
                events.push(StreamEvent::ToolCallStart {
                    index: tool_index,
                    id: call.id.clone(),
                    name: call.name.clone(),
                    signature: call.signature.clone(),
                });
                let arguments = match &call.arguments {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                events.push(StreamEvent::ToolCallDelta {
                    index: tool_index,
                    arguments,
                });
                tool_index += 1;
            }
            // Inputs never appear in answers; nothing to stream.
            _ => {}
        }
    }
    events.push(StreamEvent::Usage {
        usage: response.usage,
    });
    events.push(StreamEvent::Finish {
        reason: response.finish_reason.clone(),
    });
    events
}

/// Identifies the call a stream belongs to, so the final response can be labelled.
#[derive(Clone, Debug)]
pub struct StreamMeta {
    /// The provider streaming.
    pub provider: String,
    /// The model asked for.
    pub model: String,
    /// Switchboard's id for the call.
    pub request_id: String,
    /// When the call started, for latency.
    pub started: Instant,
}

impl StreamMeta {
    /// Creates metadata for a call that starts now.
    pub fn new(provider: impl Into<String>, model: impl Into<String>) -> StreamMeta {
        StreamMeta {
            provider: provider.into(),
            model: model.into(),
            request_id: crate::types::new_request_id(),
            started: Instant::now(),
        }
    }
}

/// A streamed answer: a [`Stream`] of [`StreamEvent`]s ending with [`StreamEvent::Done`].
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use switchboard::{ChatClient, ChatRequest, ChatResponse, FunctionClient};
///
/// let client = FunctionClient::new("echo", |_req: &ChatRequest| Ok(ChatResponse::from_text("hi")));
/// let stream = client.chat_stream(&ChatRequest::user("hello")).await?;
/// let response = stream.collect_response().await?;
/// assert_eq!(response.text(), "hi");
/// # Ok::<_, switchboard::Error>(()) }).unwrap();
/// ```
pub struct ChatStream {
    inner: BoxStream<'static, Result<StreamEvent>>,
}

impl std::fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStream").finish_non_exhaustive()
    }
}

impl ChatStream {
    /// Wraps a stream that already follows the contract (ends with [`StreamEvent::Done`],
    /// interruptions typed). Wrappers use it to pass streams through.
    pub fn new(stream: impl Stream<Item = Result<StreamEvent>> + Send + 'static) -> ChatStream {
        ChatStream {
            inner: stream.boxed(),
        }
    }

    /// Builds a stream from raw events: folds them, appends [`StreamEvent::Done`], and turns
    /// an error after content — or an end without a [`StreamEvent::Finish`] — into
    /// [`ErrorKind::StreamInterrupted`] with the partial answer.
    pub fn from_events(
        meta: StreamMeta,
        events: impl Stream<Item = Result<StreamEvent>> + Send + 'static,
    ) -> ChatStream {
        struct State {
            events: BoxStream<'static, Result<StreamEvent>>,
            acc: Option<StreamAccumulator>,
            meta: StreamMeta,
        }
        let state = State {
            acc: Some(StreamAccumulator::new(
                meta.provider.clone(),
                meta.model.clone(),
            )),
            events: events.boxed(),
            meta,
        };
        let stream = stream::unfold(state, |mut st| async move {
            let acc = st.acc.as_mut()?;
            match st.events.next().await {
                Some(Ok(StreamEvent::Done { .. })) | None => {
                    let acc = st.acc.take()?;
                    if !acc.is_finished() {
                        let cause = Error::new(
                            ErrorKind::Transport,
                            "the stream ended before the provider said it was finished",
                        )
                        .with_provider(st.meta.provider.clone());
                        let partial = finalize(acc.snapshot(), &st.meta);
                        return Some((Err(Error::stream_interrupted(cause, partial)), st));
                    }
                    let response = finalize(acc.finish(), &st.meta);
                    Some((
                        Ok(StreamEvent::Done {
                            response: Box::new(response),
                        }),
                        st,
                    ))
                }
                Some(Ok(event)) => {
                    acc.push(&event);
                    Some((Ok(event), st))
                }
                Some(Err(err)) => {
                    let acc = st.acc.take()?;
                    if acc.has_content() && err.kind() != ErrorKind::StreamInterrupted {
                        let partial = finalize(acc.snapshot(), &st.meta);
                        Some((Err(Error::stream_interrupted(err, partial)), st))
                    } else {
                        Some((Err(err), st))
                    }
                }
            }
        });
        ChatStream::new(stream)
    }

    /// Streams a complete response: its events, then [`StreamEvent::Done`].
    pub fn from_response(response: ChatResponse) -> ChatStream {
        let mut events: Vec<Result<StreamEvent>> =
            response_to_events(&response).into_iter().map(Ok).collect();
        events.push(Ok(StreamEvent::Done {
            response: Box::new(response),
        }));
        ChatStream::new(stream::iter(events))
    }

    /// Reads the stream to its end and returns the complete response.
    ///
    /// # Errors
    /// The stream's error, if it failed; [`ErrorKind::StreamInterrupted`] if it ended without
    /// a [`StreamEvent::Done`].
    pub async fn collect_response(mut self) -> Result<ChatResponse> {
        while let Some(event) = self.inner.next().await {
            if let StreamEvent::Done { response } = event? {
                return Ok(*response);
            }
        }
        Err(Error::new(
            ErrorKind::StreamInterrupted,
            "the stream ended without its final event",
        ))
    }

    /// Maps the final response (e.g. to add attempts), leaving other events untouched.
    pub fn map_response(self, f: impl Fn(&mut ChatResponse) + Send + Sync + 'static) -> ChatStream {
        ChatStream::new(self.inner.map(move |item| match item {
            Ok(StreamEvent::Done { mut response }) => {
                f(&mut response);
                Ok(StreamEvent::Done { response })
            }
            other => other,
        }))
    }

    /// Returns the underlying boxed stream.
    pub fn into_inner(self) -> BoxStream<'static, Result<StreamEvent>> {
        self.inner
    }
}

fn finalize(mut response: ChatResponse, meta: &StreamMeta) -> ChatResponse {
    let latency: Duration = meta.started.elapsed();
    response.request_id.clone_from(&meta.request_id);
    response.latency = latency;
    if response.attempts.is_empty() {
        response.attempts.push(Attempt::success(
            meta.provider.clone(),
            meta.model.clone(),
            latency,
        ));
    }
    response
}

impl Stream for ChatStream {
    type Item = Result<StreamEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Returns a `Finish` event with a `stop` reason (convenience for scripted streams).
pub(crate) fn finish_stop() -> StreamEvent {
    StreamEvent::Finish {
        reason: FinishReason::of(FinishKind::Stop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::message::ToolCall;
    use serde_json::json;

    fn sample() -> ChatResponse {
        let mut r = ChatResponse::from_parts(vec![
            Part::Thinking(Thinking {
                text: "let me think".into(),
                signature: Some("sig".into()),
                redacted: None,
                origin: Some("anthropic".into()),
            }),
            Part::text("The answer is "),
            Part::ToolCall(ToolCall {
                id: "call_1".into(),
                name: "lookup".into(),
                arguments: json!({"q": "weather", "days": 3}),
                signature: None,
            }),
            Part::ToolCall(ToolCall {
                id: "call_2".into(),
                name: "lookup".into(),
                arguments: json!({"q": "news"}),
                signature: Some("gsig".into()),
            }),
        ])
        .with_usage(Usage {
            cache_read_tokens: Some(3),
            reasoning_tokens: Some(4),
            ..Usage::new(12, 30)
        });
        r.provider = "anthropic".into();
        r.model = "claude".into();
        r.served_model = Some("claude-2025".into());
        r.response_id = Some("msg_1".into());
        r
    }

    #[test]
    fn accumulator_folds_events_back_into_the_same_response() {
        let original = sample();
        let mut acc = StreamAccumulator::new("anthropic", "claude");
        for event in response_to_events(&original) {
            acc.push(&event);
        }
        assert_eq!(acc.finish(), original);
    }

    #[test]
    fn tool_arguments_split_across_deltas_are_joined_in_order() {
        let mut acc = StreamAccumulator::new("openai", "gpt");
        acc.push(&StreamEvent::ToolCallStart {
            index: 0,
            id: "a".into(),
            name: "f".into(),
            signature: None,
        });
        acc.push(&StreamEvent::ToolCallStart {
            index: 1,
            id: "b".into(),
            name: "g".into(),
            signature: None,
        });
        for (i, piece) in [(0, "{\"x\""), (1, "{\"y\":"), (0, ":1}"), (1, "2}")] {
            acc.push(&StreamEvent::ToolCallDelta {
                index: i,
                arguments: piece.into(),
            });
        }
        let r = acc.finish();
        let calls = r.tool_calls();
        assert_eq!(calls[0].arguments, json!({"x": 1}));
        assert_eq!(calls[1].arguments, json!({"y": 2}));
    }

    #[test]
    fn unparseable_arguments_are_kept_as_text() {
        assert_eq!(parse_arguments("{\"a\":"), Value::String("{\"a\":".into()));
        assert_eq!(parse_arguments(""), json!({}));
    }

    #[tokio::test]
    async fn stream_without_finish_is_interrupted_not_short() {
        let events = stream::iter(vec![Ok(StreamEvent::TextDelta {
            text: "half an ans".into(),
        })]);
        let s = ChatStream::from_events(StreamMeta::new("p", "m"), events);
        let err = s.collect_response().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
        assert_eq!(err.partial().unwrap().text(), "half an ans");
    }

    #[tokio::test]
    async fn error_after_content_carries_partial_text() {
        let events = stream::iter(vec![
            Ok(StreamEvent::TextDelta { text: "abc".into() }),
            Err(Error::from_status("p", 529, "overloaded")),
        ]);
        let s = ChatStream::from_events(StreamMeta::new("p", "m"), events);
        let err = s.collect_response().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
        assert_eq!(err.partial().unwrap().text(), "abc");
        assert_eq!(err.status(), Some(529));
    }

    #[tokio::test]
    async fn error_before_content_keeps_its_kind() {
        let events = stream::iter(vec![
            Ok(StreamEvent::Started {
                response_id: Some("r".into()),
                model: None,
            }),
            Err(Error::from_status("p", 529, "overloaded")),
        ]);
        let s = ChatStream::from_events(StreamMeta::new("p", "m"), events);
        let err = s.collect_response().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Overloaded);
    }

    #[tokio::test]
    async fn done_carries_attempt_and_request_id() {
        let events = stream::iter(vec![
            Ok(StreamEvent::TextDelta { text: "hi".into() }),
            Ok(finish_stop()),
        ]);
        let meta = StreamMeta::new("p", "m");
        let id = meta.request_id.clone();
        let r = ChatStream::from_events(meta, events)
            .collect_response()
            .await
            .unwrap();
        assert_eq!(r.request_id, id);
        assert_eq!(r.attempts().len(), 1);
        assert_eq!(r.text(), "hi");
    }
}
