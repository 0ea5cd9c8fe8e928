//! Accepting connections and serving them with hyper: a cap on open connections, a
//! deadline for each request's headers and body, an idle limit on kept-alive connections,
//! TCP_NODELAY, and the graceful stop.
//!
//! Without these a client that trickles its headers or body, or opens connections and
//! says nothing, holds a socket for as long as it likes; enough of them exhaust the file
//! descriptors and the gateway silently stops accepting. Here:
//!
//! - A new connection must deliver a request's headers within `header_read_timeout`.
//!   After an answer, a kept-alive connection may wait `idle_timeout` for the first byte
//!   of its next request, and then has `header_read_timeout` for the rest of the headers.
//!   (hyper's own header timer is not used: it also runs while a kept-alive connection
//!   waits, so it cannot allow a keep-alive wait longer than the header limit.)
//! - A request's body must arrive whole within `body_read_timeout` of its headers; the
//!   handler reading it gets a [`BodyTimedOut`] error and answers 408.
//! - An answer the client stops reading for `idle_timeout` ends the connection, so a
//!   client that never reads cannot hold a stream (and its upstream) open.
//! - At most `max_connections` are open; the next clients wait in the listen queue, and
//!   a warning is logged when the cap is reached (at most every ten seconds).
//!
//! Limits apply only while no request is in progress on the connection: a slow upstream
//! answer is bounded by the route's own timeouts, not by these.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};

/// The connection limits of one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Time to deliver a request's headers.
    pub(crate) header_read: Duration,
    /// Time to deliver a request's body, from the end of its headers.
    pub(crate) body_read: Duration,
    /// Time a kept-alive connection may wait for its next request, and an answer may wait
    /// for the client to read it.
    pub(crate) idle: Duration,
    /// Connections open at once.
    pub(crate) max_connections: usize,
}

impl Limits {
    /// The limits of `[server]`.
    pub(crate) fn from_settings(server: &switchboard::config::ServerSettings) -> Limits {
        Limits {
            header_read: Duration::from_millis(server.header_read_timeout_ms),
            body_read: Duration::from_millis(server.body_read_timeout_ms),
            idle: Duration::from_millis(server.idle_timeout_ms),
            max_connections: server.max_connections,
        }
    }

    /// Lowers the connection cap below the process's open-file limit, leaving a quarter
    /// of the descriptors for upstream connections, the listener and files.
    fn fitted_to_fd_limit(mut self) -> Limits {
        if let Some(fds) = open_files_limit() {
            let room = usize::try_from(fds / 4 * 3).unwrap_or(usize::MAX).max(1);
            if self.max_connections > room {
                tracing::warn!(
                    max_connections = self.max_connections,
                    open_files_limit = fds,
                    using = room,
                    "`server.max_connections` is above three quarters of the open-file limit; using the lower number (raise `ulimit -n` to allow more)"
                );
                self.max_connections = room;
            }
        }
        self
    }
}

/// Reads the soft open-file limit from `/proc/self/limits` (Linux); `None` elsewhere.
fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Serves `router` on `listener` until `stop` resolves, then closes the listener, lets
/// each connection finish its request in progress, and returns when all have closed.
/// Dropping the returned future ends every connection at once.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let limits = limits.fitted_to_fd_limit();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stopping, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut cap = CapWarnings::default();
    tokio::pin!(stop);
    loop {
        while connections.try_join_next().is_some() {}
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                cap.hit(limits.max_connections);
                tokio::select! {
                    slot = Arc::clone(&slots).acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    () = &mut stop => break,
                }
            }
        };
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on an accepted connection");
        }
        connections.spawn(connection(
            stream,
            router.clone(),
            limits,
            stop_rx.clone(),
            slot,
        ));
    }
    drop(listener);
    stopping.send_replace(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Warns when the connection cap is reached: at once the first time, then at most every
/// ten seconds with the number of times it was reached meanwhile, so a flood cannot flood
/// the log too.
#[derive(Default)]
struct CapWarnings {
    last: Option<Instant>,
    unreported: u64,
}

impl CapWarnings {
    fn hit(&mut self, max_connections: usize) {
        self.unreported += 1;
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(10))
        {
            return;
        }
        tracing::warn!(
            max_connections,
            times = self.unreported,
            "connection limit reached: new connections wait until one closes (`server.max_connections`)"
        );
        self.last = Some(Instant::now());
        self.unreported = 0;
    }
}

/// Logs a failed accept; waits a little when the process is out of descriptors, so the
/// loop does not spin while connections close.
async fn accept_failed(e: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %e, "accepting a connection failed; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Serves one connection until it closes, times out, or the server stops.
async fn connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    _slot: tokio::sync::OwnedSemaphorePermit,
) {
    let phase = Arc::new(Phase::new(limits));
    let io = TokioIo::new(Watched::new(stream, Arc::clone(&phase)));
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let guard = InProgress::start(Arc::clone(&phase));
        let req = req.map(|body| Body::new(TimedBody::new(body, limits.body_read)));
        let call = tower::ServiceExt::oneshot(router.clone(), req);
        async move {
            let response = call.await?;
            Ok::<_, Infallible>(response.map(|body| Answer {
                body,
                _guard: guard,
            }))
        }
    });
    let conn = http1::Builder::new().serve_connection(io, service);
    tokio::pin!(conn);
    let stopping = async move {
        let _ = stop.wait_for(|stopping| *stopping).await;
    };
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stopping => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended");
    }
}

/// What a connection is doing, shared by its socket and its requests.
struct Phase {
    limits: Limits,
    state: Mutex<PhaseState>,
}

struct PhaseState {
    /// Requests in progress (their answers not yet fully written).
    active: u32,
    /// With none in progress: when the current wait started, and how long it may last.
    since: Instant,
    limit: Duration,
    /// Waiting for the first byte of the next request (then the header limit starts).
    between_requests: bool,
    /// The task that last found nothing to read while a request was in progress: woken
    /// when the connection turns idle, so its read deadline gets armed.
    parked_reader: Option<Waker>,
}

impl Phase {
    fn new(limits: Limits) -> Phase {
        Phase {
            limits,
            state: Mutex::new(PhaseState {
                active: 0,
                since: Instant::now(),
                limit: limits.header_read,
                between_requests: false,
                parked_reader: None,
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut PhaseState) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// When reading must have finished: none while a request is in progress.
    fn read_deadline(&self) -> Option<Instant> {
        self.with(|s| (s.active == 0).then(|| s.since + s.limit))
    }

    /// Notes that a read found nothing with no deadline running.
    fn park_reader(&self, waker: &Waker) {
        self.with(|s| match &mut s.parked_reader {
            Some(parked) => parked.clone_from(waker),
            None => s.parked_reader = Some(waker.clone()),
        });
    }

    /// Bytes arrived; the first byte of a request after a kept-alive wait starts the
    /// header limit.
    fn bytes_read(&self) {
        let header = self.limits.header_read;
        self.with(|s| {
            if s.active == 0 && s.between_requests {
                s.between_requests = false;
                s.since = Instant::now();
                s.limit = header;
            }
        });
    }
}

/// Marks a request in progress until its answer is written (or abandoned).
struct InProgress(Arc<Phase>);

impl InProgress {
    fn start(phase: Arc<Phase>) -> InProgress {
        phase.with(|s| s.active += 1);
        InProgress(phase)
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        let idle = self.0.limits.idle;
        let reader = self.0.with(|s| {
            s.active = s.active.saturating_sub(1);
            if s.active == 0 {
                s.since = Instant::now();
                s.limit = idle;
                s.between_requests = true;
                s.parked_reader.take()
            } else {
                None
            }
        });
        if let Some(reader) = reader {
            reader.wake();
        }
    }
}

/// A socket whose reads fail once the connection's current deadline passes, and whose
/// writes fail when the client has read nothing for the idle limit.
struct Watched {
    io: TcpStream,
    phase: Arc<Phase>,
    read_timer: Option<Pin<Box<Sleep>>>,
    write_timer: Option<Pin<Box<Sleep>>>,
}

impl Watched {
    fn new(io: TcpStream, phase: Arc<Phase>) -> Watched {
        Watched {
            io,
            phase,
            read_timer: None,
            write_timer: None,
        }
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_owned())
}

/// Arms `timer` for `deadline` and says whether it has passed (registering the waker
/// otherwise).
fn expired(timer: &mut Option<Pin<Box<Sleep>>>, deadline: Instant, cx: &mut Context<'_>) -> bool {
    let sleep = match timer {
        Some(sleep) => {
            if sleep.deadline() != deadline {
                sleep.as_mut().reset(deadline);
            }
            sleep
        }
        None => timer.insert(Box::pin(tokio::time::sleep_until(deadline))),
    };
    sleep.as_mut().poll(cx).is_ready()
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let deadline = this.phase.read_deadline();
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Poll::Ready(Err(timed_out(
                "the client sent no complete request in time",
            )));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.phase.bytes_read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match deadline {
                Some(d) if expired(&mut this.read_timer, d, cx) => Poll::Ready(Err(timed_out(
                    "the client sent no complete request in time",
                ))),
                Some(_) => Poll::Pending,
                None => {
                    this.phase.park_reader(cx.waker());
                    Poll::Pending
                }
            },
            other => other,
        }
    }
}

impl Watched {
    /// Fails a write the client has left blocked for the idle limit.
    fn stalled<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending => {
                let deadline = match &self.write_timer {
                    Some(sleep) => sleep.deadline(),
                    None => Instant::now() + self.phase.limits.idle,
                };
                if expired(&mut self.write_timer, deadline, cx) {
                    Poll::Ready(Err(timed_out("the client stopped reading its answer")))
                } else {
                    Poll::Pending
                }
            }
            ready => {
                self.write_timer = None;
                ready
            }
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.stalled(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.stalled(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.stalled(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The error a request body gives when it has not arrived whole in time.
#[derive(Debug)]
pub(crate) struct BodyTimedOut(pub(crate) Duration);

impl fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} ms",
            self.0.as_millis()
        )
    }
}

impl std::error::Error for BodyTimedOut {}

/// A request body that fails with [`BodyTimedOut`] once its deadline passes. The timer
/// is made only if the body is not all there when first read.
struct TimedBody {
    inner: Incoming,
    deadline: Instant,
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl TimedBody {
    fn new(inner: Incoming, limit: Duration) -> TimedBody {
        TimedBody {
            inner,
            deadline: Instant::now() + limit,
            limit,
            timer: None,
        }
    }
}

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending if expired(&mut this.timer, this.deadline, cx) => {
                Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.limit)))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body, holding its request in progress until hyper has written it all.
struct Answer {
    body: Body,
    _guard: InProgress,
}

impl hyper::body::Body for Answer {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_is_kept_below_the_open_file_limit() {
        let limits = Limits {
            header_read: Duration::from_secs(1),
            body_read: Duration::from_secs(1),
            idle: Duration::from_secs(1),
            max_connections: 1_000_000,
        };
        if let Some(fds) = open_files_limit() {
            let fitted = limits.fitted_to_fd_limit();
            assert!(fitted.max_connections as u64 <= fds, "{fitted:?} vs {fds}");
        }
        let small = Limits {
            max_connections: 8,
            ..limits
        };
        assert_eq!(
            small.fitted_to_fd_limit(),
            small,
            "a cap under the limit is kept"
        );
    }
}
