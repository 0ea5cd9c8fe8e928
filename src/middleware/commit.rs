//! The commit point of a stream: the moment a wrapper that retries or falls back stops
//! being able to switch attempt or target invisibly. Wrappers read a stream up to it,
//! holding events back, so that a failure before it can still be retried elsewhere without
//! the caller seeing anything; after it, any failure ends the stream with
//! [`ErrorKind::StreamInterrupted`] carrying the partial answer and every attempt so far.
//!
//! This is the one place that logic lives; [`FallbackClient`](crate::FallbackClient),
//! [`RetryClient`](crate::RetryClient) and [`HedgedClient`](crate::HedgedClient) use it.

use std::time::Instant;

use futures_util::stream::{self, BoxStream, StreamExt};
use serde::{Deserialize, Serialize};

use crate::client::ClientInfo;
use crate::error::{Error, ErrorKind, Result};
use crate::types::{Attempt, ChatResponse, ChatStream, Outcome, StreamAccumulator, StreamEvent};

/// Where a stream commits to the target serving it.
///
/// Before the commit point, events are held back and a failure is retried or falls over
/// without the caller seeing anything. After it, events flow to the caller as they arrive,
/// and a failure ends the stream with [`ErrorKind::StreamInterrupted`] whose
/// [`Error::partial`] holds what arrived and lists every attempt; it is never retried and
/// never looks like a short, complete answer.
///
/// An earlier point gives the caller events sooner; a later one lets more failures be
/// hidden.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitPoint {
    /// Commits once the provider accepted the request (its response headers arrived):
    /// nothing is held back, and only a refused request is retried.
    Headers,
    /// Commits at the first event of any kind, metadata (ids, usage) included.
    FirstEvent,
    /// Commits at the first content event: text, reasoning or a tool call (the default).
    /// Metadata that arrives earlier is held back until then.
    #[default]
    FirstContent,
}

impl CommitPoint {
    /// Returns the `snake_case` name, as config files spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            CommitPoint::Headers => "headers",
            CommitPoint::FirstEvent => "first_event",
            CommitPoint::FirstContent => "first_content",
        }
    }
}

/// Reads `stream` until `point` (or its final [`StreamEvent::Done`]) and returns a stream
/// that replays the held events and then continues; after the commit point, every failure
/// and every end without [`StreamEvent::Done`] becomes [`ErrorKind::StreamInterrupted`].
///
/// # Errors
/// The stream's own error if it fails before committing, or a [`ErrorKind::Transport`] error
/// naming the target if it ends before committing.
pub(crate) async fn until(
    stream: ChatStream,
    info: &ClientInfo,
    point: CommitPoint,
) -> Result<ChatStream> {
    let started = Instant::now();
    let mut stream = stream.into_inner();
    let mut held = Vec::new();
    if point != CommitPoint::Headers {
        loop {
            match stream.next().await {
                Some(Ok(event)) => {
                    let commit = point == CommitPoint::FirstEvent
                        || event.is_content()
                        || matches!(event, StreamEvent::Done { .. });
                    held.push(Ok(event));
                    if commit {
                        break;
                    }
                }
                Some(Err(err)) => return Err(err),
                None => {
                    return Err(Error::new(
                        ErrorKind::Transport,
                        "the stream ended before any answer arrived",
                    )
                    .with_provider(info.provider()))
                }
            }
        }
    }
    Ok(guard(
        stream::iter(held).chain(stream).boxed(),
        info.clone(),
        started,
    ))
}

/// Passes a committed stream through, turning any failure after the commit point into
/// [`ErrorKind::StreamInterrupted`] with the partial answer and the failed attempt.
fn guard(
    events: BoxStream<'static, Result<StreamEvent>>,
    info: ClientInfo,
    started: Instant,
) -> ChatStream {
    struct State {
        events: BoxStream<'static, Result<StreamEvent>>,
        acc: StreamAccumulator,
        info: ClientInfo,
        started: Instant,
        ended: bool,
    }
    let state = State {
        acc: StreamAccumulator::new(info.provider(), info.model()),
        events,
        info,
        started,
        ended: false,
    };
    ChatStream::new(stream::unfold(state, |mut st| async move {
        if st.ended {
            return None;
        }
        let err = match st.events.next().await {
            Some(Ok(event)) => {
                if matches!(event, StreamEvent::Done { .. }) {
                    st.ended = true;
                } else {
                    st.acc.push(&event);
                }
                return Some((Ok(event), st));
            }
            Some(Err(err)) => err,
            None => Error::new(
                ErrorKind::Transport,
                "the stream ended without its final event",
            )
            .with_provider(st.info.provider()),
        };
        st.ended = true;
        let err = interrupted(err, &st.acc, &st.info, st.started);
        Some((Err(err), st))
    }))
}

/// Makes `err`, which broke a committed stream, a [`ErrorKind::StreamInterrupted`] whose
/// partial answer records the attempt as failed.
fn interrupted(
    mut err: Error,
    acc: &StreamAccumulator,
    info: &ClientInfo,
    started: Instant,
) -> Error {
    if err.kind() == ErrorKind::StreamInterrupted && err.partial().is_some() {
        let message = err.message().to_owned();
        if let Some(partial) = err.partial_mut() {
            for attempt in &mut partial.attempts {
                if attempt.outcome == Outcome::Success {
                    attempt.outcome = Outcome::Failed;
                    attempt.error_kind = Some(ErrorKind::StreamInterrupted);
                    attempt.message = Some(message.clone());
                }
            }
        }
        return err;
    }
    if err.provider().is_none() {
        err = err.with_provider(info.provider());
    }
    let mut partial: ChatResponse = acc.snapshot();
    partial.latency = started.elapsed();
    let wrapped = Error::stream_interrupted(err, partial);
    let failed = Attempt::failure(info.provider(), info.model(), &wrapped, started.elapsed());
    let mut wrapped = wrapped;
    if let Some(partial) = wrapped.partial_mut() {
        partial.attempts.push(failed);
    }
    wrapped
}

/// Puts `before` (earlier failed or skipped attempts) in front of the attempts of the final
/// response, or of the partial answer when the stream is interrupted.
pub(crate) fn prepend_attempts(stream: ChatStream, before: Vec<Attempt>) -> ChatStream {
    if before.is_empty() {
        return stream;
    }
    let prepend = move |attempts: &mut Vec<Attempt>| {
        let mut all = before.clone();
        all.append(attempts);
        *attempts = all;
    };
    ChatStream::new(stream.into_inner().map(move |item| match item {
        Ok(StreamEvent::Done { mut response }) => {
            prepend(&mut response.attempts);
            Ok(StreamEvent::Done { response })
        }
        Err(mut err) => {
            if let Some(partial) = err.partial_mut() {
                prepend(&mut partial.attempts);
            }
            Err(err)
        }
        other => other,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ChatResponse, StreamMeta};

    #[tokio::test]
    async fn metadata_is_held_and_replayed_after_the_first_content_event() {
        let events = stream::iter(vec![
            Ok(StreamEvent::Started {
                response_id: Some("r1".into()),
                model: None,
            }),
            Ok(StreamEvent::TextDelta { text: "hi".into() }),
            Ok(crate::types::finish_stop()),
        ]);
        let s = ChatStream::from_events(StreamMeta::new("p", "m"), events);
        let committed = until(s, &ClientInfo::new("p", "m"), CommitPoint::FirstContent)
            .await
            .unwrap();
        let r = committed.collect_response().await.unwrap();
        assert_eq!(r.text(), "hi");
        assert_eq!(r.response_id.as_deref(), Some("r1"));
    }

    #[tokio::test]
    async fn a_failure_before_content_is_returned_as_an_error() {
        let events = stream::iter(vec![
            Ok(StreamEvent::Started {
                response_id: None,
                model: None,
            }),
            Err(Error::from_status("p", 503, "down")),
        ]);
        let s = ChatStream::from_events(StreamMeta::new("p", "m"), events);
        let err = until(s, &ClientInfo::new("p", "m"), CommitPoint::FirstContent)
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(503));
    }

    #[tokio::test]
    async fn an_empty_stream_is_a_transport_error() {
        let s = ChatStream::new(stream::iter(Vec::<Result<StreamEvent>>::new()));
        let err = until(s, &ClientInfo::new("p", "m"), CommitPoint::FirstContent)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transport);
    }

    #[tokio::test]
    async fn earlier_attempts_come_first() {
        let s = ChatStream::from_response(ChatResponse::from_text("x"));
        let failed = Attempt::failure(
            "a",
            "m",
            &Error::from_status("a", 500, "x"),
            Default::default(),
        );
        let r = prepend_attempts(s, vec![failed])
            .collect_response()
            .await
            .unwrap();
        assert_eq!(r.attempts()[0].provider, "a");
    }

    #[tokio::test]
    async fn a_committed_stream_that_just_stops_is_interrupted_not_short() {
        // A raw stream (no accumulator of its own) that ends without `Done`.
        let s = ChatStream::new(stream::iter(vec![Ok(StreamEvent::TextDelta {
            text: "half an ans".into(),
        })]));
        let info = ClientInfo::new("p", "m");
        let committed = until(s, &info, CommitPoint::FirstContent).await.unwrap();
        let err = committed.collect_response().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
        let partial = err.partial().unwrap();
        assert_eq!(partial.text(), "half an ans");
        assert_eq!(partial.attempts()[0].outcome, Outcome::Failed);
        assert_eq!(partial.attempts()[0].model, "m");
    }

    #[tokio::test]
    async fn an_interruption_marks_the_attempt_failed_and_keeps_earlier_ones() {
        let events = stream::iter(vec![
            Ok(StreamEvent::TextDelta { text: "hi".into() }),
            Err(Error::from_status("p", 502, "bad gateway")),
        ]);
        let s = ChatStream::from_events(StreamMeta::new("p", "m"), events);
        let committed = until(s, &ClientInfo::new("p", "m"), CommitPoint::FirstContent)
            .await
            .unwrap();
        let earlier = Attempt::failure(
            "a",
            "m0",
            &Error::from_status("a", 500, "x"),
            Default::default(),
        );
        let err = prepend_attempts(committed, vec![earlier])
            .collect_response()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
        assert_eq!(err.status(), Some(502));
        let attempts = err.partial().unwrap().attempts();
        assert_eq!(attempts.len(), 2);
        assert_eq!(attempts[0].provider, "a");
        assert_eq!(attempts[1].outcome, Outcome::Failed);
        assert_eq!(attempts[1].error_kind, Some(ErrorKind::StreamInterrupted));
    }

    #[tokio::test]
    async fn each_commit_point_holds_a_different_amount() {
        let script = || {
            stream::iter(vec![
                Ok(StreamEvent::Started {
                    response_id: None,
                    model: None,
                }),
                Ok(StreamEvent::Usage {
                    usage: crate::types::Usage::new(3, 0),
                }),
                Err(Error::from_status("p", 503, "down")),
            ])
        };
        let info = ClientInfo::new("p", "m");
        let open = |point| {
            let s = ChatStream::from_events(StreamMeta::new("p", "m"), script());
            let info = info.clone();
            async move { until(s, &info, point).await }
        };
        // Before the commit point the failure is returned, to be retried elsewhere.
        let err = open(CommitPoint::FirstContent).await.unwrap_err();
        assert_eq!(err.status(), Some(503));
        // After it the failure is an interruption inside the stream.
        for point in [CommitPoint::Headers, CommitPoint::FirstEvent] {
            let s = open(point).await.unwrap();
            let err = s.collect_response().await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::StreamInterrupted, "{point:?}");
        }
        assert_eq!(CommitPoint::default(), CommitPoint::FirstContent);
        assert_eq!(CommitPoint::FirstEvent.as_str(), "first_event");
    }
}
