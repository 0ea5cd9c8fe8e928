//! A live SSE body passed through to its reader while a copy goes onto a cassette.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::header::HeaderMap;
use secrecy::SecretString;

use super::entry::{Entry, RequestKey};
use super::Cassette;
use crate::error::Result;
use crate::providers::http::ByteStream;

/// What a stream's line will say once its body has ended.
struct Pending {
    cassette: Arc<Cassette>,
    key: RequestKey,
    status: u16,
    headers: HeaderMap,
    secret: Option<SecretString>,
}

impl Pending {
    fn write(self, body: &[u8], stream_error: Option<String>) -> Result<()> {
        let mut entry = Entry::new(&self.key, self.status, &self.headers, body);
        entry.stream_error = stream_error;
        self.cassette.append(entry, self.secret.as_ref())
    }
}

/// Passes chunks through unchanged and writes the whole body as one cassette line when the
/// stream ends, breaks, or is dropped by its reader (the last two are recorded with the
/// reason, so a replay breaks the same way instead of ending early as if complete).
pub(crate) struct Tee {
    inner: ByteStream,
    buffer: Vec<u8>,
    pending: Option<Pending>,
    finished: bool,
}

impl Tee {
    pub(crate) fn new(
        cassette: Arc<Cassette>,
        key: RequestKey,
        status: u16,
        headers: HeaderMap,
        secret: Option<SecretString>,
        inner: ByteStream,
    ) -> Tee {
        Tee {
            inner,
            buffer: Vec::new(),
            pending: Some(Pending {
                cassette,
                key,
                status,
                headers,
                secret,
            }),
            finished: false,
        }
    }

    fn finish(&mut self, stream_error: Option<String>) -> Result<()> {
        self.finished = true;
        match self.pending.take() {
            Some(pending) => pending.write(&self.buffer, stream_error),
            None => Ok(()),
        }
    }
}

impl Stream for Tee {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        match this.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                this.buffer.extend_from_slice(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(err))) => {
                if let Err(write) = this.finish(Some(err.message().to_owned())) {
                    tracing::warn!(error = %write, "cassette: a broken stream was not recorded");
                }
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => match this.finish(None) {
                Ok(()) => Poll::Ready(None),
                Err(write) => Poll::Ready(Some(Err(write))),
            },
        }
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            let reason =
                "the recording stopped early: its reader dropped the stream before the end";
            if let Err(err) = pending.write(&self.buffer, Some(reason.to_owned())) {
                tracing::warn!(error = %err, "cassette: an unfinished stream was not recorded");
            }
        }
    }
}
