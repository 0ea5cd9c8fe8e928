//! A blocking facade, so `client.chat(...)` works from a plain `fn main`.
//!
//! All blocking clients share one runtime on one background thread (reqwest's shape): no
//! runtime is built per call. Calling these methods from inside an async runtime would
//! block that runtime's thread, so they return a [`ErrorKind::Config`] error there instead.
//!
//! Nothing on the runtime thread ever blocks: answers go back over channels whose sending
//! side waits asynchronously, and a stream's events are forwarded only as fast as the
//! caller's [`EventIter`] takes them. So a caller may read part of a stream, leave it, and
//! make other calls meanwhile; the unread stream just waits (dropping the iterator ends it).
//!
//! # Examples
//! ```
//! use switchboard::blocking::Client;
//! use switchboard::{ChatRequest, ChatResponse, FunctionClient};
//!
//! let client = Client::new(FunctionClient::new("echo", |_req: &ChatRequest| {
//!     Ok(ChatResponse::from_text("hi"))
//! }));
//! let response = client.chat(&ChatRequest::user("hello"))?;
//! assert_eq!(response.text(), "hi");
//! # Ok::<_, switchboard::Error>(())
//! ```

use std::sync::{Arc, OnceLock};

use futures_util::StreamExt;
use tokio::runtime::Handle;

use crate::client::{ChatClient, DynClient};
use crate::error::{Error, ErrorKind, Result};
use crate::types::{ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, StreamEvent};

/// Wraps any async [`ChatClient`] with blocking methods.
///
/// # Clone
/// Clones share the inner client and the one background runtime.
#[derive(Clone, Debug)]
pub struct Client {
    inner: DynClient,
}

impl Client {
    /// Wraps a client.
    pub fn new(client: impl ChatClient + 'static) -> Client {
        Client {
            inner: Arc::new(client),
        }
    }

    /// Wraps an already shared client.
    pub fn from_dyn(client: DynClient) -> Client {
        Client { inner: client }
    }

    /// Returns the async client inside.
    pub fn inner(&self) -> &DynClient {
        &self.inner
    }

    /// Sends one request and blocks until the whole answer arrives.
    ///
    /// # Errors
    /// The call's error; [`ErrorKind::Config`] when called from inside an async runtime.
    pub fn chat(&self, req: &ChatRequest) -> Result<ChatResponse> {
        let client = self.inner.clone();
        let req = req.clone();
        run(async move { client.chat(&req).await })
    }

    /// Turns texts into vectors, blocking.
    ///
    /// # Errors
    /// The call's error; [`ErrorKind::Config`] when called from inside an async runtime.
    pub fn embed(&self, req: &EmbedRequest) -> Result<EmbedResponse> {
        let client = self.inner.clone();
        let req = req.clone();
        run(async move { client.embed(&req).await })
    }

    /// Sends one request and returns an iterator over the answer's events as they arrive.
    ///
    /// # Errors
    /// The error that prevented the stream from starting.
    pub fn chat_stream(&self, req: &ChatRequest) -> Result<EventIter> {
        let handle = runtime()?;
        let client = self.inner.clone();
        let req = req.clone();
        // The task waits for room without blocking the runtime thread: a caller that stops
        // reading must not stall every other call of the process.
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BUFFER);
        handle.spawn(async move {
            match client.chat_stream(&req).await {
                Ok(mut stream) => {
                    while let Some(item) = stream.next().await {
                        if tx.send(item).await.is_err() {
                            break;
                        }
                    }
                }
                Err(err) => {
                    let _ = tx.send(Err(err)).await;
                }
            }
        });
        Ok(EventIter { rx })
    }
}

/// How many events a blocking stream holds ahead of its reader.
const STREAM_BUFFER: usize = 64;

/// The events of a blocking stream, in order; see [`Client::chat_stream`].
///
/// Read it from a plain thread: inside an async runtime `next` yields one
/// [`ErrorKind::Config`] error and then ends, rather than block that runtime.
#[derive(Debug)]
pub struct EventIter {
    rx: tokio::sync::mpsc::Receiver<Result<StreamEvent>>,
}

impl Iterator for EventIter {
    type Item = Result<StreamEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        if Handle::try_current().is_ok() {
            if self.rx.is_closed() && self.rx.is_empty() {
                return None;
            }
            self.rx.close();
            while self.rx.try_recv().is_ok() {}
            return Some(Err(inside_runtime()));
        }
        self.rx.blocking_recv()
    }
}

/// The error of a blocking call made from inside an async runtime.
fn inside_runtime() -> Error {
    Error::config(
        "a blocking client was called from inside an async runtime",
        "use the async `ChatClient` methods there, or call from a plain thread",
    )
}

fn runtime() -> Result<&'static Handle> {
    static RUNTIME: OnceLock<std::result::Result<Handle, String>> = OnceLock::new();
    if Handle::try_current().is_ok() {
        return Err(inside_runtime());
    }
    let handle = RUNTIME.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("switchboard-blocking".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => {
                        let _ = tx.send(Ok(rt.handle().clone()));
                        rt.block_on(std::future::pending::<()>());
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        match spawned {
            Ok(_) => rx
                .recv()
                .unwrap_or_else(|_| Err("the runtime thread exited".into())),
            Err(e) => Err(e.to_string()),
        }
    });
    handle.as_ref().map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("could not start the blocking runtime: {e}"),
        )
    })
}

fn run<T: Send + 'static>(
    fut: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    let handle = runtime()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    handle.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.blocking_recv().unwrap_or_else(|_| {
        Err(Error::new(
            ErrorKind::Transport,
            "the blocking runtime dropped the call",
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FunctionClient;

    #[test]
    fn blocking_chat_and_stream_work_from_plain_threads() {
        let client = Client::new(FunctionClient::new("b", |_r: &ChatRequest| {
            Ok(ChatResponse::from_text("hey"))
        }));
        assert_eq!(client.chat(&ChatRequest::user("x")).unwrap().text(), "hey");
        let events: Vec<_> = client
            .chat_stream(&ChatRequest::user("x"))
            .unwrap()
            .collect::<Result<Vec<_>>>()
            .unwrap();
        assert!(matches!(events.last(), Some(StreamEvent::Done { .. })));
        // A second thread reuses the same runtime.
        let c2 = client.clone();
        let text = std::thread::spawn(move || c2.chat(&ChatRequest::user("y")).map(|r| r.text()))
            .join()
            .unwrap()
            .unwrap();
        assert_eq!(text, "hey");
    }

    #[test]
    fn a_half_read_stream_does_not_stall_other_calls() {
        let client = Client::new(
            FunctionClient::builder("b")
                .respond(|_r: &ChatRequest| Ok(ChatResponse::from_text("still answering")))
                .stream(|_r: &ChatRequest| {
                    Ok((0..500)
                        .map(|i| {
                            Ok(StreamEvent::TextDelta {
                                text: format!("{i} "),
                            })
                        })
                        .collect())
                })
                .build(),
        );
        // Run the calls on a thread of their own, so a deadlock fails the test instead of
        // hanging it.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut events = client.chat_stream(&ChatRequest::user("x")).unwrap();
            let first = events.next().unwrap().unwrap();
            // The forwarding task now has far more than its buffer to send.
            std::thread::sleep(std::time::Duration::from_millis(100));
            let answer = client.chat(&ChatRequest::user("y")).map(|r| r.text());
            let rest = events.count();
            let _ = done.send((first, answer, rest));
        });
        let (first, answer, rest) = finished
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("a chat() after reading one stream event never returned");
        assert!(matches!(first, StreamEvent::TextDelta { ref text } if text == "0 "));
        assert_eq!(answer.unwrap(), "still answering");
        // 499 more deltas, then Done, all still delivered.
        assert!(rest >= 500, "{rest}");
    }

    #[tokio::test]
    async fn reading_a_blocking_stream_inside_a_runtime_is_a_typed_error() {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(Ok(StreamEvent::TextDelta { text: "a".into() }))
            .await
            .unwrap();
        let mut events = EventIter { rx };
        let err = events.next().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(events.next().is_none());
    }

    #[tokio::test]
    async fn blocking_call_inside_a_runtime_is_a_typed_error() {
        let client = Client::new(FunctionClient::new("b", |_r: &ChatRequest| {
            Ok(ChatResponse::from_text("hey"))
        }));
        let err = client.chat(&ChatRequest::user("x")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
    }
}
