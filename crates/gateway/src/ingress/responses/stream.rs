//! [`StreamEvent`]s → the Responses API's typed SSE events.
//!
//! Every frame is `event: <type>` and a `data:` JSON object repeating the `type`, numbered by
//! `sequence_number` from 0. The stream opens with `response.created` and
//! `response.in_progress`; each output item is announced (`response.output_item.added`),
//! filled and closed (`response.output_item.done`):
//!
//! - a message: `content_part.added`, `output_text.delta`…, `output_text.done`,
//!   `content_part.done`;
//! - reasoning: `reasoning_summary_part.added`, `reasoning_summary_text.delta`…,
//!   `reasoning_summary_text.done`, `reasoning_summary_part.done`, and in the closing item
//!   the sealed `encrypted_content` ([`super::reasoning`]);
//! - a function call: `function_call_arguments.delta`…, `function_call_arguments.done`.
//!
//! It ends with `response.completed` (or `response.incomplete` for a length or content
//! filter stop) carrying the whole response. A failure after the stream started ends it
//! with an `error` event and `response.failed` — never `response.completed` — so no client
//! mistakes a cut answer for a whole one.

use std::collections::VecDeque;
use std::convert::Infallible;

use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt};
use switchboard::{ChatResponse, ChatStream, Error, ErrorKind, FinishKind, StreamEvent};

use super::encode::{self, new_id, summary_text, Reasoning};
use super::events::{Event, Numbered};
use super::reasoning;
use super::wire::{Echo, OutputContent, OutputItem, ResponseError, ResponseObject};
use crate::error::ApiError;
use crate::sse::{End, OnEnd};

/// What the frames need besides the events.
pub(crate) struct Context {
    /// The response id every lifecycle event carries.
    pub(crate) id: String,
    /// Unix seconds.
    pub(crate) created_at: u64,
    /// The serving model (replaced by the provider's own word when it sends one).
    pub(crate) model: String,
    /// The provider streaming, which produced any reasoning in it.
    pub(crate) origin: String,
    /// What the response object repeats from the request.
    pub(crate) echo: Echo,
    /// Called once when the stream ends (or is dropped unfinished, with nothing).
    pub(crate) on_end: Option<OnEnd>,
}

/// A function call being streamed.
struct Call {
    /// The library's index for the call.
    index: usize,
    output_index: usize,
    id: String,
    call_id: String,
    name: String,
    arguments: String,
}

/// The item being streamed.
enum Open {
    Nothing,
    Text {
        output_index: usize,
        id: String,
        text: String,
    },
    Reasoning {
        output_index: usize,
        item: Reasoning,
    },
    /// Function calls stay open together until something else comes, since a provider may
    /// interleave the arguments of parallel calls.
    Calls(Vec<Call>),
}

struct State {
    events: ChatStream,
    ctx: Context,
    queue: VecDeque<Bytes>,
    sequence: u64,
    began: bool,
    next_index: usize,
    open: Open,
    /// Closed items, in output order.
    output: Vec<OutputItem>,
    over: bool,
}

/// Turns a committed stream into Responses SSE frames.
pub(crate) fn frames(
    events: ChatStream,
    ctx: Context,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let state = State {
        events,
        ctx,
        queue: VecDeque::with_capacity(8),
        sequence: 0,
        began: false,
        next_index: 0,
        open: Open::Nothing,
        output: Vec::new(),
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
                        ErrorKind::StreamInterrupted,
                        "the stream ended without its final event",
                    );
                    st.fail(&err);
                }
            }
        }
    })
}

/// Writes one frame.
fn frame(queue: &mut VecDeque<Bytes>, sequence: &mut u64, event: Event<'_>) {
    let mut out = Vec::with_capacity(192);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.name().as_bytes());
    out.extend_from_slice(b"\ndata: ");
    let numbered = Numbered {
        event,
        sequence_number: *sequence,
    };
    if serde_json::to_writer(&mut out, &numbered).is_ok() {
        out.extend_from_slice(b"\n\n");
        queue.push_back(Bytes::from(out));
        *sequence += 1;
    }
}

impl State {
    fn emit(&mut self, event: Event<'_>) {
        frame(&mut self.queue, &mut self.sequence, event);
    }

    fn object<'a>(
        ctx: &'a Context,
        output: &'a [OutputItem],
        status: &'static str,
    ) -> ResponseObject<'a> {
        ResponseObject {
            id: &ctx.id,
            object: "response",
            created_at: ctx.created_at,
            status,
            error: None,
            incomplete_details: None,
            model: &ctx.model,
            output,
            previous_response_id: None,
            store: false,
            truncation: "disabled",
            usage: None,
            user: None,
            echo: &ctx.echo,
        }
    }

    fn begin(&mut self) {
        if self.began {
            return;
        }
        self.began = true;
        let (queue, seq) = (&mut self.queue, &mut self.sequence);
        let response = State::object(&self.ctx, &[], "in_progress");
        frame(queue, seq, Event::Created { response });
        let response = State::object(&self.ctx, &[], "in_progress");
        frame(queue, seq, Event::InProgress { response });
    }

    fn take_index(&mut self) -> usize {
        let index = self.next_index;
        self.next_index += 1;
        index
    }

    /// Closes the open item(s) with their `.done` events.
    fn close(&mut self) {
        match std::mem::replace(&mut self.open, Open::Nothing) {
            Open::Nothing => {}
            Open::Text {
                output_index,
                id,
                text,
            } => {
                self.emit(Event::TextDone {
                    item_id: &id,
                    output_index,
                    content_index: 0,
                    text: &text,
                    logprobs: [],
                });
                let part = OutputContent::text(text);
                self.emit(Event::PartDone {
                    item_id: &id,
                    output_index,
                    content_index: 0,
                    part: &part,
                });
                let item = OutputItem::Message {
                    id,
                    status: "completed",
                    role: "assistant",
                    content: vec![part],
                };
                self.emit(Event::ItemDone {
                    output_index,
                    item: &item,
                });
                self.output.push(item);
            }
            Open::Reasoning { output_index, item } => {
                if !item.text().is_empty() {
                    self.emit(Event::SummaryDone {
                        item_id: &item.id,
                        output_index,
                        summary_index: 0,
                        text: item.text(),
                    });
                    let part = summary_text(item.text().to_owned());
                    self.emit(Event::SummaryPartDone {
                        item_id: &item.id,
                        output_index,
                        summary_index: 0,
                        part: &part,
                    });
                }
                let done = item.item();
                self.emit(Event::ItemDone {
                    output_index,
                    item: &done,
                });
                self.output.push(done);
            }
            Open::Calls(calls) => {
                for call in calls {
                    self.emit(Event::ArgumentsDone {
                        item_id: &call.id,
                        output_index: call.output_index,
                        arguments: &call.arguments,
                    });
                    let item = OutputItem::FunctionCall {
                        id: call.id,
                        call_id: call.call_id,
                        name: call.name,
                        arguments: call.arguments,
                        status: "completed",
                    };
                    self.emit(Event::ItemDone {
                        output_index: call.output_index,
                        item: &item,
                    });
                    self.output.push(item);
                }
            }
        }
    }

    fn text(&mut self, delta: &str) {
        if !matches!(self.open, Open::Text { .. }) {
            self.close();
            let output_index = self.take_index();
            let id = new_id("msg");
            let item = OutputItem::Message {
                id: id.clone(),
                status: "in_progress",
                role: "assistant",
                content: Vec::new(),
            };
            self.emit(Event::ItemAdded {
                output_index,
                item: &item,
            });
            self.emit(Event::PartAdded {
                item_id: &id,
                output_index,
                content_index: 0,
                part: &OutputContent::text(String::new()),
            });
            self.open = Open::Text {
                output_index,
                id,
                text: String::new(),
            };
        }
        if let Open::Text {
            output_index,
            id,
            text,
        } = &mut self.open
        {
            text.push_str(delta);
            frame(
                &mut self.queue,
                &mut self.sequence,
                Event::TextDelta {
                    item_id: id,
                    output_index: *output_index,
                    content_index: 0,
                    delta,
                    logprobs: [],
                },
            );
        }
    }

    /// Opens a new reasoning item.
    fn open_reasoning(&mut self) {
        self.close();
        let output_index = self.take_index();
        let item = Reasoning::new(Some(self.ctx.origin.clone()));
        let added = OutputItem::Reasoning {
            id: item.id.clone(),
            summary: Vec::new(),
            encrypted_content: None,
        };
        self.emit(Event::ItemAdded {
            output_index,
            item: &added,
        });
        self.open = Open::Reasoning { output_index, item };
    }

    fn thinking(&mut self, delta: &str) {
        let fits = matches!(&self.open, Open::Reasoning { item, .. } if item.takes_text());
        if !fits {
            self.open_reasoning();
        }
        if let Open::Reasoning { output_index, item } = &mut self.open {
            if item.text().is_empty() {
                frame(
                    &mut self.queue,
                    &mut self.sequence,
                    Event::SummaryPartAdded {
                        item_id: &item.id,
                        output_index: *output_index,
                        summary_index: 0,
                        part: &summary_text(String::new()),
                    },
                );
            }
            item.push_text(delta);
            frame(
                &mut self.queue,
                &mut self.sequence,
                Event::SummaryDelta {
                    item_id: &item.id,
                    output_index: *output_index,
                    summary_index: 0,
                    delta,
                },
            );
        }
    }

    /// Adds a signature or encrypted data to the open reasoning item, or to a new one.
    fn seal(&mut self, data: String, signature: bool) {
        let add = |item: &mut Reasoning, data: String| {
            if signature {
                item.sign(data)
            } else {
                item.redact(data)
            }
        };
        let data = match &mut self.open {
            Open::Reasoning { item, .. } => match add(item, data) {
                Ok(()) => return,
                Err(data) => data,
            },
            _ => data,
        };
        self.open_reasoning();
        if let Open::Reasoning { item, .. } = &mut self.open {
            let _ = add(item, data);
        }
    }

    fn call_start(&mut self, index: usize, call_id: String, name: String, signature: Option<&str>) {
        if !matches!(self.open, Open::Calls(_)) {
            self.close();
            self.open = Open::Calls(Vec::new());
        }
        let output_index = self.take_index();
        let call = Call {
            index,
            output_index,
            id: reasoning::call_item_id(signature),
            call_id,
            name,
            arguments: String::new(),
        };
        let added = OutputItem::FunctionCall {
            id: call.id.clone(),
            call_id: call.call_id.clone(),
            name: call.name.clone(),
            arguments: String::new(),
            status: "in_progress",
        };
        self.emit(Event::ItemAdded {
            output_index,
            item: &added,
        });
        if let Open::Calls(calls) = &mut self.open {
            calls.push(call);
        }
    }

    fn call_delta(&mut self, index: usize, delta: &str) {
        let known =
            matches!(&self.open, Open::Calls(calls) if calls.iter().any(|c| c.index == index));
        if !known {
            // Arguments for a call whose start never came: keep them under an empty name
            // rather than lose them, as the library's accumulator does.
            self.call_start(index, String::new(), String::new(), None);
        }
        if let Open::Calls(calls) = &mut self.open {
            if let Some(call) = calls.iter_mut().find(|c| c.index == index) {
                call.arguments.push_str(delta);
                frame(
                    &mut self.queue,
                    &mut self.sequence,
                    Event::ArgumentsDelta {
                        item_id: &call.id,
                        output_index: call.output_index,
                        delta,
                    },
                );
            }
        }
    }

    fn event(&mut self, event: StreamEvent) {
        if let StreamEvent::Started { model, .. } = &event {
            if !self.began {
                if let Some(model) = model.as_ref().filter(|m| !m.is_empty()) {
                    self.ctx.model.clone_from(model);
                }
            }
        }
        self.begin();
        match event {
            StreamEvent::TextDelta { text } => self.text(&text),
            StreamEvent::ThinkingDelta { text } => self.thinking(&text),
            StreamEvent::ThinkingSignature { signature } => self.seal(signature, true),
            StreamEvent::RedactedThinking { data } => self.seal(data, false),
            StreamEvent::ToolCallStart {
                index,
                id,
                name,
                signature,
            } => self.call_start(index, id, name, signature.as_deref()),
            StreamEvent::ToolCallDelta { index, arguments } => self.call_delta(index, &arguments),
            StreamEvent::Done { response } => self.done(&response),
            _ => {}
        }
    }

    fn done(&mut self, response: &ChatResponse) {
        self.close();
        let (status, incomplete_details) = encode::status(response.finish_reason.kind);
        let mut object = State::object(&self.ctx, &self.output, status);
        object.model = response.model_served();
        object.incomplete_details = incomplete_details;
        object.usage = Some(encode::usage(&response.usage));
        let event = if response.finish_reason.kind == FinishKind::Length
            || response.finish_reason.kind == FinishKind::ContentFilter
        {
            Event::Incomplete { response: object }
        } else {
            Event::Completed { response: object }
        };
        frame(&mut self.queue, &mut self.sequence, event);
        self.over = true;
        if let Some(on_end) = self.ctx.on_end.take() {
            on_end(End::Done(response));
        }
    }

    fn fail(&mut self, err: &Error) {
        self.begin();
        let api = ApiError::from_error(err);
        let body = api.body();
        self.emit(Event::Error { error: &body.error });
        let mut object = State::object(&self.ctx, &self.output, "failed");
        object.error = Some(ResponseError {
            code: body
                .error
                .code
                .clone()
                .unwrap_or_else(|| api.kind_label().to_owned()),
            message: body.error.message.clone(),
        });
        frame(
            &mut self.queue,
            &mut self.sequence,
            Event::Failed { response: object },
        );
        self.over = true;
        if let Some(on_end) = self.ctx.on_end.take() {
            on_end(End::Failed(&api));
        }
    }
}
