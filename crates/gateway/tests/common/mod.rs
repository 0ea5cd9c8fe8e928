//! Helpers shared by the gateway's test binaries: start a gateway on 127.0.0.1:0 and script
//! upstreams with FunctionClient.

#![allow(dead_code)]

use std::sync::Arc;

use switchboard::{
    ChatRequest, ChatResponse, DynClient, Error, FunctionClient, Part, StreamEvent, ToolCall, Usage,
};
use switchboard_gateway::{Gateway, GatewayOptions};
use tokio::sync::oneshot;

/// A gateway running in the background.
pub(crate) struct Running {
    pub(crate) base: String,
    pub(crate) stop: Option<oneshot::Sender<()>>,
    pub(crate) task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting connections and waits for in-flight work to drain.
    pub(crate) async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.expect("server task")
    }
}

/// Serves `gateway` on 127.0.0.1:0.
pub(crate) async fn start(gateway: Gateway) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(gateway.serve(listener, async move {
        let _ = rx.await;
    }));
    Running {
        base: format!("http://{addr}"),
        stop: Some(tx),
        task,
    }
}

/// Starts a gateway over prebuilt routes.
pub(crate) async fn start_routes(
    routes: Vec<(&str, Vec<DynClient>)>,
    options: GatewayOptions,
) -> Running {
    start(Gateway::from_routes(routes, options).unwrap()).await
}

/// A target that answers `text`, with usage, as `provider:model`.
pub(crate) fn answers(provider: &str, model: &str, text: &'static str) -> DynClient {
    Arc::new(
        FunctionClient::builder(model)
            .provider(provider)
            .respond(move |_r: &ChatRequest| {
                Ok(ChatResponse::from_text(text).with_usage(Usage::new(9, 4)))
            })
            .build(),
    )
}

/// A target that fails every call with an HTTP status (and a wait hint, if given).
pub(crate) fn fails(
    provider: &str,
    model: &str,
    status: u16,
    retry_after_s: Option<u64>,
) -> DynClient {
    let provider_name = provider.to_owned();
    Arc::new(
        FunctionClient::builder(model)
            .provider(provider)
            .respond(move |_r: &ChatRequest| {
                let mut e = Error::from_status(
                    provider_name.clone(),
                    status,
                    format!("upstream answered {status}"),
                );
                if let Some(s) = retry_after_s {
                    e = e.with_retry_after(std::time::Duration::from_secs(s));
                }
                Err(e)
            })
            .build(),
    )
}

/// A target that asks for a tool call, or answers with the tool's result once it has one.
pub(crate) fn weather_tool(provider: &str, model: &str) -> DynClient {
    Arc::new(
        FunctionClient::builder(model)
            .provider(provider)
            .respond(|r: &ChatRequest| {
                let result = r
                    .messages
                    .iter()
                    .flat_map(|m| &m.parts)
                    .find_map(|p| match p {
                        Part::ToolResult(t) => Some(t.content.clone()),
                        _ => None,
                    });
                Ok(match result {
                    Some(content) => ChatResponse::from_text(format!("The weather: {content}")),
                    None => ChatResponse::from_parts(vec![Part::ToolCall(ToolCall {
                        id: "call_1".into(),
                        name: "get_weather".into(),
                        arguments: serde_json::json!({"city": "Oslo"}),
                        signature: None,
                    })]),
                })
            })
            .build(),
    )
}

/// A target whose stream delivers some text and then breaks.
pub(crate) fn breaks_mid_stream(provider: &str, model: &str) -> DynClient {
    let provider_name = provider.to_owned();
    Arc::new(
        FunctionClient::builder(model)
            .provider(provider)
            .stream(move |_r: &ChatRequest| {
                Ok(vec![
                    Ok(StreamEvent::TextDelta {
                        text: "Half an ".into(),
                    }),
                    Err(Error::from_status(
                        provider_name.clone(),
                        529,
                        "overloaded mid-stream",
                    )),
                ])
            })
            .build(),
    )
}

/// Log output captured from a `tracing` subscriber installed for the current thread (the
/// gateway's tasks run there under `#[tokio::test]`'s current-thread runtime).
#[derive(Clone, Default)]
pub(crate) struct LogCapture(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Installs a subscriber that writes every event at `level` or above here.
    pub(crate) fn install(&self, level: tracing::Level) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(move || sink.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        tracing::callsite::rebuild_interest_cache();
        guard
    }

    /// Everything captured so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Waits up to five seconds for a line containing every one of `parts`.
    pub(crate) async fn line_with(&self, parts: &[&str]) -> String {
        for _ in 0..500 {
            if let Some(line) = self
                .text()
                .lines()
                .find(|l| parts.iter().all(|p| l.contains(p)))
            {
                return line.to_owned();
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no line with {parts:?} in:\n{}", self.text());
    }
}
