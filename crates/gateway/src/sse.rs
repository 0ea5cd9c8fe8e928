//! [`StreamEvent`]s → OpenAI `chat.completion.chunk` SSE frames.
//!
//! The first content chunk carries `role: assistant`; text, reasoning
//! (`reasoning_content`) and tool-call pieces follow as deltas; the finish reason comes in
//! its own chunk; with `stream_options.include_usage` a last chunk with empty `choices`
//! carries usage (left out when the provider never reported it, rather than sent as
//! zero); then `data: [DONE]`. A failure after the stream started ends it with one
//! `data: {"error": {...}}` event and no `[DONE]`, so no client mistakes a cut answer for
//! a complete one.

use std::collections::VecDeque;
use std::convert::Infallible;

use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt};
use switchboard::providers::openai::wire;
use switchboard::{ChatResponse, ChatStream, Error, StreamEvent, Usage};

use crate::convert::{finish_word, usage_to_wire};
use crate::error::ApiError;

/// How a stream ended, for metrics.
pub(crate) enum End<'a> {
    /// The answer completed.
    Done(&'a ChatResponse),
    /// It broke after it started.
    Failed(&'a ApiError),
}

/// Called once when a stream ends.
pub(crate) type OnEnd = Box<dyn FnOnce(End<'_>) + Send>;

/// What the frames need besides the events.
pub(crate) struct Context {
    /// The completion id every chunk carries.
    pub(crate) id: String,
    /// Unix seconds.
    pub(crate) created: u64,
    /// The serving model (replaced by the provider's own word when it sends one).
    pub(crate) model: String,
    /// Whether the client asked for a usage chunk.
    pub(crate) include_usage: bool,
    /// Called once when the stream ends (or is dropped unfinished, with nothing).
    pub(crate) on_end: Option<OnEnd>,
}

struct State {
    events: ChatStream,
    ctx: Context,
    queue: VecDeque<Bytes>,
    sent_role: bool,
    sent_finish: bool,
    usage: Option<Usage>,
    over: bool,
}

/// Turns a panic while producing `events` into a
/// [`switchboard::ErrorKind::StreamInterrupted`] error, which ends the stream with an
/// error event (never `[DONE]`) instead of dropping the connection mid-answer. The panic's
/// message goes to the log.
fn panics_as_errors(events: ChatStream) -> ChatStream {
    let guarded = std::panic::AssertUnwindSafe(events).catch_unwind();
    ChatStream::new(guarded.map(|item| {
        item.unwrap_or_else(|panic| {
            let message = crate::error::panic_message(panic.as_ref());
            tracing::error!(panic = message, "a stream panicked; ended it with an error event");
            Err(Error::new(
                switchboard::ErrorKind::StreamInterrupted,
                "the gateway failed while streaming this answer (an internal error, logged on the server); send the request again",
            ))
        })
    }))
}

/// What every front door's stream passes through before it is encoded: a panic in the
/// stream becomes an error event, and the end of the shutdown grace period ends it.
pub(crate) fn guarded(
    events: ChatStream,
    cutoff: impl std::future::Future<Output = ()> + Send + 'static,
) -> ChatStream {
    until(panics_as_errors(events), cutoff)
}

/// Ends `events` with a [`switchboard::ErrorKind::StreamInterrupted`] error once `cutoff`
/// resolves (the shutdown grace period is over), so the client sees an error event rather
/// than a stream that stops without one.
fn until(
    events: ChatStream,
    cutoff: impl std::future::Future<Output = ()> + Send + 'static,
) -> ChatStream {
    let cutoff = Box::pin(cutoff);
    ChatStream::new(stream::unfold(
        (events, cutoff, false),
        |(mut events, mut cutoff, cut)| async move {
            if cut {
                return None;
            }
            tokio::select! {
                biased;
                item = events.next() => item.map(|item| (item, (events, cutoff, false))),
                () = &mut cutoff => {
                    let err = Error::new(
                        switchboard::ErrorKind::StreamInterrupted,
                        "the gateway shut down before this answer finished",
                    );
                    Some((Err(err), (events, cutoff, true)))
                }
            }
        },
    ))
}

/// Turns a committed stream into SSE frames.
pub(crate) fn frames(
    events: ChatStream,
    ctx: Context,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let state = State {
        events,
        ctx,
        queue: VecDeque::with_capacity(4),
        sent_role: false,
        sent_finish: false,
        usage: None,
        over: false,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            if let Some(frame) = st.queue.pop_front() {
                return Some((Ok(frame), st));
            }
            if st.over {
                return None;
            }
            match st.events.next().await {
                Some(Ok(event)) => st.event(event),
                Some(Err(err)) => st.fail(&err),
                None => {
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
    fn chunk(&self, delta: wire::Delta, finish: Option<&str>) -> wire::ChatCompletionChunk {
        wire::ChatCompletionChunk {
            id: Some(self.ctx.id.clone()),
            object: Some("chat.completion.chunk".to_owned()),
            created: Some(self.ctx.created),
            model: Some(self.ctx.model.clone()),
            choices: vec![wire::ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish.map(str::to_owned),
            }],
            usage: None,
            system_fingerprint: None,
            error: None,
        }
    }

    fn push(&mut self, chunk: &wire::ChatCompletionChunk) {
        let mut frame = Vec::with_capacity(256);
        frame.extend_from_slice(b"data: ");
        if serde_json::to_writer(&mut frame, chunk).is_ok() {
            frame.extend_from_slice(b"\n\n");
            self.queue.push_back(Bytes::from(frame));
        }
    }

    fn delta(&mut self, mut delta: wire::Delta) {
        if !self.sent_role {
            self.sent_role = true;
            delta.role = Some("assistant".to_owned());
        }
        let chunk = self.chunk(delta, None);
        self.push(&chunk);
    }

    fn finish(&mut self, word: &str) {
        if self.sent_finish {
            return;
        }
        self.sent_finish = true;
        let chunk = self.chunk(wire::Delta::default(), Some(word));
        self.push(&chunk);
    }

    fn event(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::Started { model, .. } => {
                if let Some(model) = model.filter(|m| !m.is_empty()) {
                    self.ctx.model = model;
                }
            }
            StreamEvent::TextDelta { text } => self.delta(wire::Delta {
                content: Some(text),
                ..wire::Delta::default()
            }),
            StreamEvent::ThinkingDelta { text } => self.delta(wire::Delta {
                reasoning_content: Some(text),
                ..wire::Delta::default()
            }),
            StreamEvent::ToolCallStart {
                index, id, name, ..
            } => self.delta(wire::Delta {
                tool_calls: vec![wire::ToolCallDelta {
                    index,
                    id: Some(id),
                    kind: Some("function".to_owned()),
                    function: Some(wire::FunctionCallDelta {
                        name: Some(name),
                        arguments: Some(String::new()),
                    }),
                }],
                ..wire::Delta::default()
            }),
            StreamEvent::ToolCallDelta { index, arguments } => self.delta(wire::Delta {
                tool_calls: vec![wire::ToolCallDelta {
                    index,
                    id: None,
                    kind: None,
                    function: Some(wire::FunctionCallDelta {
                        name: None,
                        arguments: Some(arguments),
                    }),
                }],
                ..wire::Delta::default()
            }),
            StreamEvent::Usage { usage } => self.usage = Some(usage),
            StreamEvent::Finish { reason } => {
                if !self.sent_role {
                    self.delta(wire::Delta::default());
                }
                self.finish(finish_word(reason.kind));
            }
            StreamEvent::Done { response } => {
                if !self.sent_role {
                    self.delta(wire::Delta::default());
                }
                self.finish(finish_word(response.finish_reason.kind));
                // Usage the provider never reported is not sent as a count of zero.
                if self.ctx.include_usage && !response.usage_unknown {
                    let usage = self.usage.unwrap_or(response.usage);
                    let mut chunk = self.chunk(wire::Delta::default(), None);
                    chunk.choices.clear();
                    chunk.usage = Some(usage_to_wire(&usage));
                    self.push(&chunk);
                }
                self.queue
                    .push_back(Bytes::from_static(b"data: [DONE]\n\n"));
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
        self.queue.push_back(Bytes::from(api.sse_event()));
        self.over = true;
        if let Some(on_end) = self.ctx.on_end.take() {
            on_end(End::Failed(&api));
        }
    }
}
