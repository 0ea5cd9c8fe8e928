//! The commit point of a stream: the first content event. Wrappers that retry or fall back
//! read a stream up to it, holding metadata back, so that a failure before it can still be
//! retried elsewhere without the caller seeing anything.
//!
//! This is the one place that logic lives; [`FallbackClient`](crate::FallbackClient),
//! [`RetryClient`](crate::RetryClient) and [`HedgedClient`](crate::HedgedClient) use it.

use futures_util::stream::{self, StreamExt};

use crate::error::{Error, ErrorKind, Result};
use crate::types::{Attempt, ChatStream, StreamEvent};

/// Reads `stream` until its first content event (or its final [`StreamEvent::Done`]) and
/// returns a stream that replays the held events and then continues.
///
/// # Errors
/// The stream's own error if it fails before committing, or a [`ErrorKind::Transport`] error
/// naming `provider` if it ends before any answer arrived.
pub(crate) async fn until_first_content(stream: ChatStream, provider: &str) -> Result<ChatStream> {
    let mut stream = stream.into_inner();
    let mut held = Vec::new();
    loop {
        match stream.next().await {
            Some(Ok(event)) => {
                let commit = event.is_content() || matches!(event, StreamEvent::Done { .. });
                held.push(Ok(event));
                if commit {
                    return Ok(ChatStream::new(stream::iter(held).chain(stream)));
                }
            }
            Some(Err(err)) => return Err(err),
            None => {
                return Err(Error::new(
                    ErrorKind::Transport,
                    "the stream ended before any answer arrived",
                )
                .with_provider(provider))
            }
        }
    }
}

/// Puts `before` (earlier failed or skipped attempts) in front of the final response's own
/// attempts.
pub(crate) fn prepend_attempts(stream: ChatStream, before: Vec<Attempt>) -> ChatStream {
    if before.is_empty() {
        return stream;
    }
    stream.map_response(move |r| {
        let mut all = before.clone();
        all.append(&mut r.attempts);
        r.attempts = all;
    })
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
        let committed = until_first_content(s, "p").await.unwrap();
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
        let err = until_first_content(s, "p").await.unwrap_err();
        assert_eq!(err.status(), Some(503));
    }

    #[tokio::test]
    async fn an_empty_stream_is_a_transport_error() {
        let s = ChatStream::new(stream::iter(Vec::<Result<StreamEvent>>::new()));
        let err = until_first_content(s, "p").await.unwrap_err();
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
}
