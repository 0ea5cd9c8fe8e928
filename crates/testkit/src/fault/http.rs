//! Just enough HTTP/1.1 for the fault provider: read a request (`Content-Length` bodies),
//! write a head, a sized body or chunked frames, and leave a connection in the ways real
//! upstreams do (reset, silence, a close in the middle of a body).

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Largest request head or body accepted; anything larger is refused by closing.
const MAX_REQUEST: usize = 8 * 1024 * 1024;

/// One request as read off the socket.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) path: String,
    pub(crate) body: Vec<u8>,
}

/// Reads the next request from `stream`, keeping extra bytes in `buf` for the next one.
/// Returns `None` when the client closed the connection between requests.
pub(crate) async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> io::Result<Option<Request>> {
    let mut scratch = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = find(buf, b"\r\n\r\n") {
            break at;
        }
        if buf.len() > MAX_REQUEST {
            return Err(invalid("request head too large"));
        }
        let n = stream.read(&mut scratch).await?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        buf.extend_from_slice(&scratch[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| invalid("head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let path = request_line
        .split(' ')
        .nth(1)
        .ok_or_else(|| invalid("no request target"))?
        .to_owned();
    let mut length = 0usize;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value
                .trim()
                .parse()
                .map_err(|_| invalid("bad content-length"))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(invalid("chunked request bodies are not supported"));
        }
    }
    if length > MAX_REQUEST {
        return Err(invalid("request body too large"));
    }
    let total = head_end + 4 + length;
    while buf.len() < total {
        let n = stream.read(&mut scratch).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&scratch[..n]);
    }
    let body = buf[head_end + 4..total].to_vec();
    buf.drain(..total);
    Ok(Some(Request { path, body }))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "Status",
    }
}

/// Builds a response head. `length` is the `Content-Length`; `None` means chunked, unless
/// `close_delimited` is set (then the body ends when the connection closes).
pub(crate) fn head(
    status: u16,
    content_type: &str,
    length: Option<usize>,
    headers: &[(String, String)],
    close_delimited: bool,
) -> String {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\n",
        reason(status)
    );
    match (length, close_delimited) {
        (Some(n), _) => out.push_str(&format!("content-length: {n}\r\n")),
        (None, true) => out.push_str("connection: close\r\n"),
        (None, false) => out.push_str("transfer-encoding: chunked\r\ncache-control: no-cache\r\n"),
    }
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out
}

/// Frames `data` as one chunk of a chunked body.
pub(crate) fn chunk(data: &str) -> String {
    format!("{:x}\r\n{data}\r\n", data.len())
}

/// The last chunk of a chunked body.
pub(crate) const LAST_CHUNK: &str = "0\r\n\r\n";

/// Writes all of `bytes` and flushes.
pub(crate) async fn write(stream: &mut TcpStream, bytes: &str) -> io::Result<()> {
    stream.write_all(bytes.as_bytes()).await?;
    stream.flush().await
}

/// Resets the connection: `SO_LINGER` zero, then close, so the peer gets an RST.
pub(crate) fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Waits until the client closes its side (or errors), the server shuts down, or `limit`
/// passes, discarding whatever the client sends meanwhile.
pub(crate) async fn hold(
    stream: &mut TcpStream,
    shutdown: &mut watch::Receiver<()>,
    limit: Option<Duration>,
) {
    let mut scratch = [0u8; 4096];
    let closed = async {
        loop {
            match stream.read(&mut scratch).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    let timer = async {
        match limit {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = closed => {}
        _ = shutdown.changed() => {}
        _ = timer => {}
    }
}

/// Sleeps for `wait`, ending early if the server shuts down; says whether it slept in full.
pub(crate) async fn pause(wait: Duration, shutdown: &mut watch::Receiver<()>) -> bool {
    if wait.is_zero() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = shutdown.changed() => false,
    }
}
