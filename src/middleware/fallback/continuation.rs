//! Stream continuation: a stream that breaks after its commit point with partial text is
//! resumed on the next target that accepts a prefill, so the caller sees one stream.
//!
//! The continuation request is the original conversation plus the text delivered so far as
//! a final assistant message, which a prefill-capable target (Anthropic Messages) continues
//! rather than answering anew. See the [`FallbackClient`](super::FallbackClient) docs for
//! what the caller sees.

use std::time::Instant;

use futures_util::stream::{self, BoxStream, StreamExt};

use super::{skipped_error, unsupported, FallbackOn};
use crate::client::{ChatClient, DynClient};
use crate::error::{Error, ErrorKind};
use crate::middleware::commit::{self, CommitPoint};
use crate::types::{
    Attempt, Capability, ChatRequest, ChatResponse, ChatStream, Message, MissingCapability, Part,
    ResponseFormat, Role, StreamEvent,
};

/// What a continuation needs to know about the call it continues.
#[derive(Debug)]
pub(super) struct Resume {
    /// The caller's request.
    pub(super) req: ChatRequest,
    /// The targets after the one that is streaming, in order.
    pub(super) backups: Vec<DynClient>,
    /// Where each continuation's stream commits.
    pub(super) point: CommitPoint,
    /// Which continuation failures move on to the next backup.
    pub(super) fallback_on: FallbackOn,
}

/// The answer delivered before the stream now running took over.
struct Prefix {
    /// The joined partial answer so far, with every attempt so far.
    partial: ChatResponse,
    /// Whether the delivered text ended in whitespace, so the continuation's leading
    /// whitespace (which the prefill could not carry) is dropped.
    strip: bool,
}

struct State {
    current: BoxStream<'static, crate::Result<StreamEvent>>,
    resume: Resume,
    next: usize,
    prefix: Option<Prefix>,
    done: bool,
}

/// Wraps a committed stream so that an interruption with partial text is continued on the
/// next backup that accepts a prefill.
pub(super) fn resume(stream: ChatStream, resume: Resume) -> ChatStream {
    let state = State {
        current: stream.into_inner(),
        resume,
        next: 0,
        prefix: None,
        done: false,
    };
    ChatStream::new(stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            let err = match st.current.next().await {
                Some(Ok(event)) => match relay(event, &mut st) {
                    Some(event) => return Some((Ok(event), st)),
                    None => continue,
                },
                Some(Err(err)) => err,
                None => return None,
            };
            match continue_after(err, &mut st).await {
                Ok(()) => continue,
                Err(err) => {
                    st.done = true;
                    return Some((Err(err), st));
                }
            }
        }
    }))
}

/// Passes one event of the running stream on, adjusted for a continuation: its `Started`
/// is dropped, usage counts the earlier part too, leading whitespace the delivered text
/// already ends with is dropped, and `Done` carries the joined answer.
fn relay(event: StreamEvent, st: &mut State) -> Option<StreamEvent> {
    let Some(prefix) = st.prefix.as_mut() else {
        return Some(event);
    };
    match event {
        StreamEvent::Started { .. } => None,
        StreamEvent::Usage { usage } => {
            let mut total = prefix.partial.usage;
            total.add(&usage);
            Some(StreamEvent::Usage { usage: total })
        }
        StreamEvent::TextDelta { text } if prefix.strip => {
            let trimmed = text.trim_start();
            if trimmed.is_empty() {
                return None;
            }
            prefix.strip = false;
            Some(StreamEvent::TextDelta {
                text: trimmed.to_owned(),
            })
        }
        StreamEvent::Done { response } => {
            st.done = true;
            let joined = join(&prefix.partial, *response);
            Some(StreamEvent::Done {
                response: Box::new(joined),
            })
        }
        event => {
            if event.is_content() {
                prefix.strip = false;
            }
            Some(event)
        }
    }
}

/// Handles the running stream's failure: continues on the next backup that accepts the
/// continuation, or returns the interruption with every attempt listed.
async fn continue_after(mut err: Error, st: &mut State) -> Result<(), Error> {
    let Some(partial) = err.partial().cloned() else {
        return Err(err);
    };
    let mut joined = match &st.prefix {
        Some(prefix) => join(&prefix.partial, partial),
        None => partial,
    };
    let result = match why_not(&st.resume.req, &joined) {
        Some(reason) => {
            tracing::warn!(reason, "fallback: stream interrupted and not continued");
            Err(())
        }
        None => start_next(st, &mut joined).await,
    };
    match result {
        Ok(stream) => {
            let strip = joined.text().ends_with(char::is_whitespace);
            st.current = stream;
            st.prefix = Some(Prefix {
                partial: joined,
                strip,
            });
            Ok(())
        }
        Err(()) => {
            if err.kind() == ErrorKind::StreamInterrupted {
                if let Some(p) = err.partial_mut() {
                    *p = joined;
                }
            }
            Err(err)
        }
    }
}

/// Says why an interrupted answer must not be continued, if it must not.
fn why_not(req: &ChatRequest, partial: &ChatResponse) -> Option<&'static str> {
    if matches!(
        req.response_format,
        Some(ResponseFormat::Json | ResponseFormat::JsonSchema { .. })
    ) {
        return Some("the request asks for JSON, which a joined answer cannot promise");
    }
    if !partial.tool_calls().is_empty() {
        return Some("the partial answer has tool calls");
    }
    if partial.text().trim().is_empty() {
        return Some("the partial answer has no text to continue");
    }
    None
}

/// Starts the continuation on the next backup that can take it, recording every skipped
/// or failed backup in `joined`'s attempts.
async fn start_next(
    st: &mut State,
    joined: &mut ChatResponse,
) -> Result<BoxStream<'static, crate::Result<StreamEvent>>, ()> {
    let cont = continuation_request(&st.resume.req, joined);
    while let Some(client) = st.resume.backups.get(st.next).cloned() {
        st.next += 1;
        let info = client.info();
        let skip = if !info.capabilities().prefill {
            Some(Error::unsupported_by(
                info.provider(),
                info.model(),
                MissingCapability {
                    capability: Capability::Prefill,
                    detail: "continuing a broken stream sends the partial answer as a prefill; this target does not continue one".to_owned(),
                },
            ))
        } else if let Some(err) = unsupported(&client, &cont) {
            Some(err)
        } else {
            let readiness = client.readiness();
            let wait = readiness.wait();
            (!wait.is_zero()).then(|| skipped_error(&client, readiness, wait))
        };
        if let Some(err) = skip {
            joined
                .attempts
                .push(Attempt::skipped(info.provider(), info.model(), &err));
            continue;
        }
        let started = Instant::now();
        let opened = match client.chat_stream(&cont).await {
            Ok(stream) => commit::until(stream, info, st.resume.point).await,
            Err(err) => Err(err),
        };
        match opened {
            Ok(stream) => {
                tracing::warn!(
                    target_provider = info.provider(),
                    target_model = info.model(),
                    delivered_chars = joined.text().chars().count(),
                    "fallback: stream interrupted; continuing it on the next target"
                );
                return Ok(stream.into_inner());
            }
            Err(err) => {
                joined.attempts.push(Attempt::failure(
                    info.provider(),
                    info.model(),
                    &err,
                    started.elapsed(),
                ));
                if !st.resume.fallback_on.should_fall_back(&err) {
                    return Err(());
                }
            }
        }
    }
    Err(())
}

/// The request that continues `partial`: the conversation plus the delivered text as a
/// final assistant message (joined to the caller's own prefill, if the conversation ended
/// with one), without trailing whitespace (Anthropic refuses a prefill that ends in it).
/// Reasoning is turned off (a prefill cannot follow hidden reasoning), and `max_tokens` is
/// lowered by what the partial answer already used.
fn continuation_request(req: &ChatRequest, partial: &ChatResponse) -> ChatRequest {
    let mut cont = req.clone();
    cont.reasoning_effort = None;
    let text = partial.text();
    let caller_prefill = cont.messages.last_mut().filter(|m| {
        m.role == Role::Assistant && m.parts.iter().all(|p| matches!(p, Part::Text { .. }))
    });
    match caller_prefill {
        Some(last) => {
            let joined = last.text() + &text;
            last.parts = vec![Part::text(joined.trim_end())];
        }
        None => cont.messages.push(Message::assistant(text.trim_end())),
    }
    if let Some(max) = cont.max_tokens {
        let used = partial.usage.output_tokens.max(text.len() as u64 / 4);
        let left = u64::from(max).saturating_sub(used).max(1);
        cont.max_tokens = Some(u32::try_from(left).unwrap_or(max));
    }
    cont
}

/// Joins the delivered part of an answer and its continuation into one response: the parts
/// in order (adjacent texts merged, the continuation's leading whitespace dropped when the
/// delivered text ends in whitespace), the usage of both added up, the attempts of both, and
/// the continuation's provider, model, ids and finish reason.
fn join(prefix: &ChatResponse, mut cont: ChatResponse) -> ChatResponse {
    let mut parts = prefix.parts.clone();
    let mut strip = prefix.text().ends_with(char::is_whitespace);
    for part in std::mem::take(&mut cont.parts) {
        let part = match part {
            Part::Text { text } if strip => {
                let trimmed = text.trim_start();
                if trimmed.is_empty() {
                    continue;
                }
                strip = false;
                Part::text(trimmed)
            }
            other => {
                strip = false;
                other
            }
        };
        match (parts.last_mut(), part) {
            (Some(Part::Text { text: last }), Part::Text { text }) => last.push_str(&text),
            (_, part) => parts.push(part),
        }
    }
    let mut usage = prefix.usage;
    usage.add(&cont.usage);
    let mut attempts = prefix.attempts.clone();
    attempts.append(&mut cont.attempts);
    ChatResponse {
        parts,
        usage,
        attempts,
        request_id: if prefix.request_id.is_empty() {
            cont.request_id.clone()
        } else {
            prefix.request_id.clone()
        },
        latency: prefix.latency + cont.latency,
        ..cont
    }
}

#[cfg(test)]
mod tests;
