//! The server side: accepting connections, reading requests, and answering each with its
//! fault.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::http;
use super::provider::Shared;
use super::request::{continued_from, describe};
use super::shapes::{error_body, retry_after_value, Answer, ErrorCase, StreamPlan};
use super::{Fault, Protocol};

/// Accepts connections until the provider is dropped, one task per connection.
pub(super) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<()>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(connection(stream, Arc::clone(&shared), shutdown.clone()));
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Whether a connection can carry another request after an answer.
enum After {
    KeepAlive,
    Close,
}

/// Serves one keep-alive connection: request after request, each answered with its fault,
/// until the client leaves, a fault ends the connection, or the provider is dropped.
async fn connection(mut stream: TcpStream, shared: Arc<Shared>, mut shutdown: watch::Receiver<()>) {
    let mut buf = Vec::new();
    loop {
        let request = tokio::select! {
            read = http::read_request(&mut stream, &mut buf) => match read {
                Ok(Some(request)) => request,
                Ok(None) | Err(_) => return,
            },
            _ = shutdown.changed() => return,
        };
        let protocol = Protocol::of_path(&request.path);
        let asked = describe(protocol, &request);
        let (fault, pace) = shared.arrive(protocol, &asked);
        let Some(protocol) = protocol else {
            let body = r#"{"error":{"message":"no such route on the fault provider"}}"#;
            let head = http::head(404, "application/json", Some(body.len()), &[], false);
            if http::write(&mut stream, &(head + body)).await.is_err() {
                return;
            }
            continue;
        };
        let id = format!("fault-{}", shared.ids.fetch_add(1, Ordering::Relaxed));
        // NOTE: Anthropic continues a final assistant message (a prefill) instead of
        // answering anew: https://docs.anthropic.com/en/docs/build-with-claude/prompt-engineering/prefill-claudes-response
        // A prefill that holds the first tokens of the answer is continued from the next one.
        let skip = match (&asked.prefill, protocol) {
            (Some(prefill), Protocol::Anthropic) => continued_from(&shared.tokens, prefill),
            _ => 0,
        };
        let answer = Answer {
            protocol,
            model: &asked.model,
            id,
            tokens: &shared.tokens[skip..],
            input_tokens: pace.input_tokens,
            cached_tokens: pace.cached_tokens,
            include_usage: asked.include_usage,
        };
        let exchange = Exchange {
            answer,
            stream: asked.stream,
            interval: pace.token_interval,
        };
        let after = match fault {
            Fault::ResetBeforeHeaders => {
                http::reset(stream);
                return;
            }
            fault => exchange.serve(&fault, &mut stream, &mut shutdown).await,
        };
        match after {
            Ok(After::KeepAlive) => {}
            Ok(After::Close) | Err(_) => return,
        }
    }
}

/// One request being answered.
struct Exchange<'a> {
    answer: Answer<'a>,
    stream: bool,
    interval: Duration,
}

impl Exchange<'_> {
    async fn serve(
        &self,
        fault: &Fault,
        socket: &mut TcpStream,
        shutdown: &mut watch::Receiver<()>,
    ) -> std::io::Result<After> {
        let protocol = self.answer.protocol;
        let status_case = match fault {
            Fault::RateLimited { .. } => Some(ErrorCase::RateLimited),
            Fault::ServerError => Some(ErrorCase::Server),
            Fault::Unavailable => Some(ErrorCase::Unavailable),
            Fault::Overloaded => Some(ErrorCase::Overloaded),
            Fault::ContextLengthExceeded => Some(ErrorCase::ContextLength),
            _ => None,
        };
        if let Some(case) = status_case {
            let (status, body) = error_body(protocol, case);
            let mut headers = Vec::new();
            if let Fault::RateLimited {
                retry_after: Some(wait),
            } = fault
            {
                headers.push(("retry-after".to_owned(), retry_after_value(*wait)));
            }
            return json_reply(socket, status, &body.to_string(), &headers).await;
        }
        match fault {
            Fault::Status {
                status,
                body,
                headers,
            } => json_reply(socket, *status, body, headers).await,
            Fault::ContentPolicy => {
                let (status, body) = self.answer.content_policy();
                if self.stream && status == 200 {
                    let events = self.answer.content_policy_stream();
                    let plan = StreamPlan {
                        tail: events,
                        ..StreamPlan::default()
                    };
                    self.stream_out(socket, shutdown, &plan, 0, Ending::Clean, false)
                        .await
                } else {
                    json_reply(socket, status, &body.to_string(), &[]).await
                }
            }
            Fault::NeverAnswer => {
                http::hold(socket, shutdown, None).await;
                Ok(After::Close)
            }
            _ if self.stream => self.serve_stream(fault, socket, shutdown).await,
            _ => self.serve_whole(fault, socket, shutdown).await,
        }
    }

    async fn serve_whole(
        &self,
        fault: &Fault,
        socket: &mut TcpStream,
        shutdown: &mut watch::Receiver<()>,
    ) -> std::io::Result<After> {
        let body = self.answer.whole().to_string();
        let tokens = self.answer.tokens.len().max(1);
        let share = |n: usize| {
            let mut at = body.len() * n.min(tokens) / tokens;
            while !body.is_char_boundary(at) {
                at -= 1;
            }
            &body[..at]
        };
        match fault {
            Fault::FirstTokenAfter(wait) => {
                if !http::pause(*wait, shutdown).await {
                    return Ok(After::Close);
                }
                json_reply(socket, 200, &body, &[]).await
            }
            Fault::CutAfter(n) => {
                let head = http::head(200, "application/json", Some(body.len()), &[], false);
                http::write(socket, &(head + share(*n))).await?;
                Ok(After::Close)
            }
            Fault::StallAfter(n) => {
                let head = http::head(200, "application/json", Some(body.len()), &[], false);
                http::write(socket, &(head + share(*n))).await?;
                http::hold(socket, shutdown, None).await;
                Ok(After::Close)
            }
            Fault::MalformedAfter(n) => {
                let broken = share(*n).to_owned();
                json_reply(socket, 200, &broken, &[]).await
            }
            Fault::NoTerminator => {
                let head = http::head(200, "application/json", None, &[], true);
                http::write(socket, &(head + share(tokens / 2))).await?;
                Ok(After::Close)
            }
            _ => json_reply(socket, 200, &body, &[]).await,
        }
    }

    async fn serve_stream(
        &self,
        fault: &Fault,
        socket: &mut TcpStream,
        shutdown: &mut watch::Receiver<()>,
    ) -> std::io::Result<After> {
        let mut plan = self.answer.stream();
        let all = plan.tokens.len();
        match fault {
            Fault::FirstTokenAfter(wait) => {
                let mut out = http::head(200, "text/event-stream", None, &[], false);
                for event in &plan.head {
                    out.push_str(&http::chunk(event));
                }
                http::write(socket, &out).await?;
                if !http::pause(*wait, shutdown).await {
                    return Ok(After::Close);
                }
                plan.head.clear();
                self.stream_out(socket, shutdown, &plan, all, Ending::Clean, true)
                    .await
            }
            Fault::CutAfter(n) => {
                self.stream_out(socket, shutdown, &plan, *n, Ending::Cut, false)
                    .await
            }
            Fault::StallAfter(n) => {
                self.stream_out(socket, shutdown, &plan, *n, Ending::Stall, false)
                    .await
            }
            Fault::MalformedAfter(n) => {
                plan.tokens
                    .insert((*n).min(all), self.answer.malformed_event());
                self.stream_out(socket, shutdown, &plan, all + 1, Ending::Clean, false)
                    .await
            }
            Fault::NoTerminator => {
                plan.tail.clear();
                self.stream_out(socket, shutdown, &plan, all, Ending::Clean, false)
                    .await
            }
            _ => {
                self.stream_out(socket, shutdown, &plan, all, Ending::Clean, false)
                    .await
            }
        }
    }

    /// Writes the response head (unless `head_sent`), the head events, the first `tokens`
    /// token events, and then ends as `ending` says: the tail events and the last chunk only
    /// on a clean ending, and only after every token.
    async fn stream_out(
        &self,
        socket: &mut TcpStream,
        shutdown: &mut watch::Receiver<()>,
        plan: &StreamPlan,
        tokens: usize,
        ending: Ending,
        head_sent: bool,
    ) -> std::io::Result<After> {
        let mut out = if head_sent {
            String::new()
        } else {
            http::head(200, "text/event-stream", None, &[], false)
        };
        for event in &plan.head {
            out.push_str(&http::chunk(event));
        }
        let tokens = tokens.min(plan.tokens.len());
        for event in &plan.tokens[..tokens] {
            out.push_str(&http::chunk(event));
            if !self.interval.is_zero() {
                http::write(socket, &out).await?;
                out.clear();
                if !http::pause(self.interval, shutdown).await {
                    return Ok(After::Close);
                }
            }
        }
        match ending {
            Ending::Clean => {
                if tokens == plan.tokens.len() {
                    for event in &plan.tail {
                        out.push_str(&http::chunk(event));
                    }
                }
                out.push_str(http::LAST_CHUNK);
                http::write(socket, &out).await?;
                Ok(After::KeepAlive)
            }
            Ending::Cut => {
                http::write(socket, &out).await?;
                Ok(After::Close)
            }
            Ending::Stall => {
                http::write(socket, &out).await?;
                http::hold(socket, shutdown, None).await;
                Ok(After::Close)
            }
        }
    }
}

/// How a stream ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// The remaining events and the last chunk.
    Clean,
    /// The connection closes in the middle of the body.
    Cut,
    /// Silence, with the connection held open.
    Stall,
}

async fn json_reply(
    socket: &mut TcpStream,
    status: u16,
    body: &str,
    headers: &[(String, String)],
) -> std::io::Result<After> {
    let head = http::head(status, "application/json", Some(body.len()), headers, false);
    http::write(socket, &(head + body)).await?;
    Ok(After::KeepAlive)
}
