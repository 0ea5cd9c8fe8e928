//! A blocking facade, so `client.chat(...)` works from a plain `fn main`.
//!
//! All blocking clients share one runtime on one background thread (reqwest's shape): no
//! runtime is built per call. Calling these methods from inside an async runtime would
//! block that runtime's thread, so they return a [`ErrorKind::Config`] error there instead.
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

use std::sync::mpsc;
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
        let (tx, rx) = mpsc::sync_channel(64);
        handle.spawn(async move {
            match client.chat_stream(&req).await {
                Ok(mut stream) => {
                    while let Some(item) = stream.next().await {
                        if tx.send(item).is_err() {
                            break;
                        }
                    }
                }
                Err(err) => {
                    let _ = tx.send(Err(err));
                }
            }
        });
        Ok(EventIter { rx })
    }
}

/// The events of a blocking stream, in order; see [`Client::chat_stream`].
#[derive(Debug)]
pub struct EventIter {
    rx: mpsc::Receiver<Result<StreamEvent>>,
}

impl Iterator for EventIter {
    type Item = Result<StreamEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rx.recv().ok()
    }
}

fn runtime() -> Result<&'static Handle> {
    static RUNTIME: OnceLock<std::result::Result<Handle, String>> = OnceLock::new();
    if Handle::try_current().is_ok() {
        return Err(Error::config(
            "a blocking client was called from inside an async runtime",
            "use the async `ChatClient` methods there, or call from a plain thread",
        ));
    }
    let handle = RUNTIME.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
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
    let (tx, rx) = mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().unwrap_or_else(|_| {
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

    #[tokio::test]
    async fn blocking_call_inside_a_runtime_is_a_typed_error() {
        let client = Client::new(FunctionClient::new("b", |_r: &ChatRequest| {
            Ok(ChatResponse::from_text("hey"))
        }));
        let err = client.chat(&ChatRequest::user("x")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
    }
}
