//! The shared HTTP transport: one pooled reqwest client, JSON POSTs, SSE streams, the
//! status-to-kind default, `Retry-After` parsing and transport-error mapping.
//!
//! Protocols own their wire structs and their error-body mapping; everything about moving
//! bytes lives here, once.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use secrecy::{ExposeSecret, SecretString};

use super::cassette::Cassette;
use super::sse::{decode_stream_limited, SseEvent};
use crate::error::{Error, ErrorKind, Result, MAX_RETRY_AFTER};

/// Timeouts and limits for one provider's HTTP calls.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Limit for establishing a connection.
    pub connect_timeout: Duration,
    /// Limit for a whole non-streaming request, or for a stream's response headers.
    pub request_timeout: Duration,
    /// Limit on the silence between two pieces of a stream.
    pub stream_idle_timeout: Duration,
    /// Largest response body accepted, in bytes; for a stream, the largest single event
    /// (a stream as a whole may run longer, but no event is buffered past this).
    pub max_response_bytes: usize,
    /// Records every exchange to, or replays it from, this cassette (default: none). See
    /// [`cassette`](super::cassette).
    pub cassette: Option<Arc<Cassette>>,
}

impl Default for HttpSettings {
    fn default() -> HttpSettings {
        HttpSettings {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(600),
            stream_idle_timeout: Duration::from_secs(120),
            max_response_bytes: 32 * 1024 * 1024,
            cassette: None,
        }
    }
}

/// How a provider wants its key sent.
#[derive(Clone, Debug)]
pub(crate) enum Auth {
    /// `Authorization: Bearer <key>`.
    Bearer(SecretString),
    /// A named header carrying the key (`x-api-key`, `x-goog-api-key`, `api-key`).
    Header(&'static str, SecretString),
    /// No key (local servers).
    None,
}

impl Auth {
    /// Sends `key` as `Authorization: Bearer <key>`, registering it with
    /// [`redact`](crate::redact) so no error or log can show it.
    pub(crate) fn bearer(key: SecretString) -> Auth {
        crate::redact::register_secret(&key);
        Auth::Bearer(key)
    }

    /// Sends `key` in the header `name`, registering it with [`redact`](crate::redact).
    pub(crate) fn header(name: &'static str, key: SecretString) -> Auth {
        crate::redact::register_secret(&key);
        Auth::Header(name, key)
    }

    /// Returns the key, if any.
    pub(crate) fn secret(&self) -> Option<&SecretString> {
        match self {
            Auth::Bearer(key) | Auth::Header(_, key) => Some(key),
            Auth::None => None,
        }
    }
}

/// A pooled HTTP client plus the settings of one provider.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    client: reqwest::Client,
    settings: HttpSettings,
    provider: String,
}

/// A successful HTTP response, read whole.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub(crate) body: Bytes,
}

/// A response of any status, read whole (live or from a cassette).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    fn into_result(
        self,
        provider: &str,
        map_error: fn(&str, u16, &HeaderMap, &[u8]) -> Error,
    ) -> Result<HttpResponse> {
        if (200..300).contains(&self.status) {
            Ok(HttpResponse { body: self.body })
        } else {
            Err(map_error(provider, self.status, &self.headers, &self.body))
        }
    }
}

/// A response body arriving in pieces.
pub(crate) type ByteStream = BoxStream<'static, Result<Bytes>>;

/// The start of an answer to a streaming request (live or from a cassette).
pub(crate) enum SseStart {
    /// A non-2xx answer, read whole.
    Failed(Reply),
    /// A 2xx answer whose body is still arriving.
    Open {
        status: u16,
        headers: HeaderMap,
        body: ByteStream,
    },
}

impl SseStart {
    fn into_body(
        self,
        provider: &str,
        map_error: fn(&str, u16, &HeaderMap, &[u8]) -> Error,
    ) -> Result<ByteStream> {
        match self {
            SseStart::Failed(r) => Err(map_error(provider, r.status, &r.headers, &r.body)),
            SseStart::Open { body, .. } => Ok(body),
        }
    }
}

impl Transport {
    /// Builds a transport for `provider`.
    pub(crate) fn new(provider: impl Into<String>, settings: HttpSettings) -> Result<Transport> {
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| {
                Error::config(
                    format!("could not build the HTTP client: {e}"),
                    "check the TLS setup of this machine",
                )
            })?;
        Ok(Transport {
            client,
            settings,
            provider: provider.into(),
        })
    }

    fn headers(&self, auth: &Auth, extra: &[(&'static str, String)]) -> Result<HeaderMap> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let secret = |value: String| {
            let mut v = HeaderValue::from_str(&value).map_err(|_| {
                Error::config(
                    "the API key contains characters that cannot go in an HTTP header",
                    "check the key for stray newlines or quotes",
                )
            })?;
            v.set_sensitive(true);
            Ok::<_, Error>(v)
        };
        match auth {
            Auth::Bearer(key) => {
                headers.insert(
                    reqwest::header::AUTHORIZATION,
                    secret(format!("Bearer {}", key.expose_secret()))?,
                );
            }
            Auth::Header(name, key) => {
                headers.insert(
                    HeaderName::from_static(name),
                    secret(key.expose_secret().to_owned())?,
                );
            }
            Auth::None => {}
        }
        for (name, value) in extra {
            let value = HeaderValue::from_str(value).map_err(|_| {
                Error::config(
                    format!("header `{name}` has a value that cannot be sent"),
                    "remove control characters from the header value",
                )
            })?;
            headers.insert(HeaderName::from_static(name), value);
        }
        Ok(headers)
    }

    /// POSTs a JSON body and returns the body of a 2xx answer. A non-2xx answer becomes an
    /// error through `map_error`, the protocol's error mapping. With a cassette, the answer
    /// may come from it, and a live answer is recorded onto it.
    pub(crate) async fn post_json(
        &self,
        url: &str,
        auth: &Auth,
        extra_headers: &[(&'static str, String)],
        body: Vec<u8>,
        map_error: fn(&str, u16, &HeaderMap, &[u8]) -> Error,
    ) -> Result<HttpResponse> {
        let Some(cassette) = &self.settings.cassette else {
            let reply = self.send_json(url, auth, extra_headers, body).await?;
            return reply.into_result(&self.provider, map_error);
        };
        let key = cassette.key(url, &body, false);
        let reply = match cassette.answer(&self.provider, &key)? {
            Some(replayed) => replayed.into_reply(),
            None => {
                let reply = self.send_json(url, auth, extra_headers, body).await?;
                cassette.record_reply(&key, &reply, auth.secret())?;
                reply
            }
        };
        reply.into_result(&self.provider, map_error)
    }

    /// Sends a JSON POST and reads the whole answer, whatever its status.
    async fn send_json(
        &self,
        url: &str,
        auth: &Auth,
        extra_headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> Result<Reply> {
        let headers = self.headers(auth, extra_headers)?;
        let send = self.client.post(url).headers(headers).body(body).send();
        let timeout = self.settings.request_timeout;
        let work = async {
            let response = send.await.map_err(|e| self.transport_error(e))?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = self.read_capped(response).await?;
            Ok(Reply {
                status,
                headers,
                body,
            })
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(self.timeout_error("the whole request", timeout)),
        }
    }

    /// POSTs a JSON body and returns the SSE events of a 2xx answer. Each event must arrive
    /// within the idle timeout; a non-2xx answer becomes an error through `map_error`. With a
    /// cassette, the body may come from it (and then runs through the same decoder and idle
    /// guard), and a live body is recorded onto it as it passes.
    pub(crate) async fn post_sse(
        &self,
        url: &str,
        auth: &Auth,
        extra_headers: &[(&'static str, String)],
        body: Vec<u8>,
        map_error: fn(&str, u16, &HeaderMap, &[u8]) -> Error,
    ) -> Result<BoxStream<'static, Result<SseEvent>>> {
        let start = match &self.settings.cassette {
            None => self.open_sse(url, auth, extra_headers, body).await?,
            Some(cassette) => {
                let key = cassette.key(url, &body, true);
                match cassette.answer(&self.provider, &key)? {
                    Some(replayed) => replayed.into_sse(&self.provider),
                    None => {
                        let start = self.open_sse(url, auth, extra_headers, body).await?;
                        cassette.tee(key, start, auth.secret())?
                    }
                }
            }
        };
        let bytes = start.into_body(&self.provider, map_error)?;
        let cap = self.settings.max_response_bytes;
        let provider = self.provider.clone();
        let events = decode_stream_limited(bytes, cap, move |buffered| {
            Error::new(
                ErrorKind::Decode,
                format!(
                    "one stream event grew past the {cap}-byte cap ({buffered} bytes without an end)"
                ),
            )
            .with_provider(provider.clone())
            .with_fix("raise `max_response_bytes` if such large events are expected")
        });
        Ok(self.guard_idle(events))
    }

    /// Sends a streaming POST and waits for the response headers; a non-2xx answer is read
    /// whole.
    async fn open_sse(
        &self,
        url: &str,
        auth: &Auth,
        extra_headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> Result<SseStart> {
        let mut headers = self.headers(auth, extra_headers)?;
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        let send = self.client.post(url).headers(headers).body(body).send();
        let timeout = self.settings.request_timeout;
        let response = match tokio::time::timeout(timeout, send).await {
            Ok(result) => result.map_err(|e| self.transport_error(e))?,
            Err(_) => return Err(self.timeout_error("the response headers", timeout)),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if !(200..300).contains(&status) {
            let body = self.read_capped(response).await?;
            return Ok(SseStart::Failed(Reply {
                status,
                headers,
                body,
            }));
        }
        let provider = self.provider.clone();
        let body = response.bytes_stream().map(move |item| {
            item.map_err(|e| {
                Error::new(
                    ErrorKind::Transport,
                    format!("the stream broke: {}", describe(&e)),
                )
                .with_provider(provider.clone())
            })
        });
        Ok(SseStart::Open {
            status,
            headers,
            body: body.boxed(),
        })
    }

    /// Fails a stream whose next event does not arrive within the idle timeout.
    fn guard_idle(
        &self,
        events: impl futures_util::Stream<Item = Result<SseEvent>> + Send + 'static,
    ) -> BoxStream<'static, Result<SseEvent>> {
        let provider = self.provider.clone();
        let idle = self.settings.stream_idle_timeout;
        let guarded =
            futures_util::stream::unfold((events.boxed(), false), move |(mut events, done)| {
                let provider = provider.clone();
                async move {
                    if done {
                        return None;
                    }
                    match tokio::time::timeout(idle, events.next()).await {
                        Ok(Some(item)) => Some((item, (events, false))),
                        Ok(None) => None,
                        Err(_) => Some((
                            Err(Error::new(
                                ErrorKind::Timeout,
                                format!("the stream was silent for {:.0}s", idle.as_secs_f64()),
                            )
                            .with_provider(provider)
                            .with_fix("raise the stream idle timeout, or let a fallback answer")),
                            (events, true),
                        )),
                    }
                }
            });
        guarded.boxed()
    }

    async fn read_capped(&self, response: reqwest::Response) -> Result<Bytes> {
        let cap = self.settings.max_response_bytes;
        if response.content_length().is_some_and(|n| n as usize > cap) {
            return Err(self.too_large(cap));
        }
        let mut body = Vec::new();
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| self.transport_error(e))?;
            if body.len() + chunk.len() > cap {
                return Err(self.too_large(cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }

    fn too_large(&self, cap: usize) -> Error {
        Error::new(
            ErrorKind::Decode,
            format!("the response is larger than the {cap}-byte cap"),
        )
        .with_provider(self.provider.clone())
        .with_fix("raise `max_response_bytes` if such large answers are expected")
    }

    fn timeout_error(&self, what: &str, limit: Duration) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!("{what} took longer than {:.1}s", limit.as_secs_f64()),
        )
        .with_provider(self.provider.clone())
        .with_fix("raise the timeout, or let a fallback answer")
    }

    fn transport_error(&self, e: reqwest::Error) -> Error {
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Transport
        };
        Error::new(kind, describe(&e))
            .with_provider(self.provider.clone())
            .with_fix("check the base URL and the network; a fallback target can answer meanwhile")
    }
}

/// Describes a reqwest error without its URL (which could carry a key in a query string).
fn describe(e: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        if !text.is_empty() {
            text.push_str(": ");
        }
        let piece = err.to_string();
        // reqwest's own Display names the URL; keep only its description.
        let piece = match piece.split_once(" for url (") {
            Some((head, _)) => head.to_owned(),
            None => piece,
        };
        text.push_str(&piece);
        source = err.source();
    }
    text
}

/// Reads how long to wait from `retry-after-ms` (milliseconds, preferred) or `Retry-After`
/// (delta-seconds, fractional accepted, or an HTTP date). Every wait is clamped (see
/// [`wait_from_secs`]); a value that is not a number or a date is ignored.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(wait) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|ms| wait_from_secs(ms / 1000.0))
    {
        return Some(wait);
    }
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    parse_retry_after(value, SystemTime::now())
}

/// Parses a `Retry-After` value relative to `now`.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = value.parse::<f64>() {
        return wait_from_secs(secs);
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// Turns a number of seconds an upstream asked us to wait into a wait we can take:
/// negative is no wait, more than a day (infinity included) is a day, and NaN is no hint
/// at all. `Duration::from_secs_f64` would panic on most of these.
pub(crate) fn wait_from_secs(secs: f64) -> Option<Duration> {
    if secs.is_nan() {
        return None;
    }
    if secs >= MAX_RETRY_AFTER.as_secs_f64() {
        return Some(MAX_RETRY_AFTER);
    }
    Some(Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(MAX_RETRY_AFTER))
}

/// The error for a stream whose body ended before the protocol's end marker (`terminator`,
/// e.g. `data: [DONE]` or `message_stop`): the connection was cut, even if a finish reason
/// had already arrived, so the answer's usage (sent last) is missing too. Before any
/// content it is a retryable transport failure; after it, the stream's end turns it into
/// [`ErrorKind::StreamInterrupted`] with the partial answer.
pub(crate) fn ended_before(provider: &str, terminator: &str) -> Error {
    Error::new(
        ErrorKind::Transport,
        format!("the stream ended before its `{terminator}` end marker: the connection was cut, so the answer and its usage may be incomplete"),
    )
    .with_provider(provider)
    .with_fix("retry the request; a fallback target can answer meanwhile")
}

/// The fix for a request a provider refused as too large (HTTP 413).
pub(crate) const TOO_LARGE_FIX: &str = "send less in one request: shorten the conversation, or send fewer or smaller images, documents and audio (large files can go through the provider's files API instead)";

/// The message of a 413: what went wrong in our words, then what the provider said. A 413
/// keeps the `InvalidRequest` kind, so the message is what tells it apart from other 4xx.
pub(crate) fn too_large_message(provider_message: &str) -> String {
    format!("the request was too large for the provider to accept: {provider_message}")
}

/// Builds an error from a status and a message with the default kind for the status, the
/// `Retry-After` hint, and a fix for the common statuses. Protocol mappers start here and
/// refine the kind from the body.
pub(crate) fn status_error(
    provider: &str,
    status: u16,
    headers: &HeaderMap,
    message: String,
) -> Error {
    if status == 413 {
        let mut err = Error::from_status(provider, status, too_large_message(&message))
            .with_fix(TOO_LARGE_FIX);
        if let Some(wait) = retry_after(headers) {
            err = err.with_retry_after(wait);
        }
        return err;
    }
    let mut err = Error::from_status(provider, status, message);
    if let Some(wait) = retry_after(headers) {
        err = err.with_retry_after(wait);
    }
    let fix = match ErrorKind::from_status(status) {
        ErrorKind::Authentication => format!(
            "check the API key: set SWITCHBOARD_{}_API_KEY (or the provider's usual variable)",
            provider.to_ascii_uppercase().replace('-', "_")
        ),
        ErrorKind::PermissionDenied => {
            "the key may not use this model or endpoint; check its project and permissions"
                .to_owned()
        }
        ErrorKind::NotFound => "check the model name and the base URL".to_owned(),
        ErrorKind::RateLimited => {
            "wait and retry, lower the request rate, or fall back to another provider".to_owned()
        }
        ErrorKind::Overloaded | ErrorKind::Server => {
            "retry later or fall back to another provider".to_owned()
        }
        ErrorKind::Timeout => "retry, or raise the timeout".to_owned(),
        _ => "fix the request as the message says".to_owned(),
    };
    err.with_fix(fix)
}

/// Parses a JSON body, mapping failure to a decode error that quotes the start of the body.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(provider: &str, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        let head = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        Error::new(
            ErrorKind::Decode,
            format!("the reply is not the JSON expected ({e}); it starts: {head}"),
        )
        .with_provider(provider)
        .with_fix("check that the base URL points at the provider's API")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_ms_wins_over_seconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        h.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("0.5", now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), Some(Duration::ZERO));
    }

    #[test]
    fn huge_negative_and_non_numeric_waits_are_clamped_not_panics() {
        let day = MAX_RETRY_AFTER;
        let now = SystemTime::now();
        for (value, expected) in [
            ("1e20", Some(day)),
            ("1e308", Some(day)),
            ("inf", Some(day)),
            ("-inf", Some(Duration::ZERO)),
            ("-1e20", Some(Duration::ZERO)),
            ("NaN", None),
            ("86399", Some(Duration::from_secs(86_399))),
        ] {
            assert_eq!(parse_retry_after(value, now), expected, "{value}");
        }
        for (ms, expected) in [
            ("1e30", Some(day)),
            ("inf", Some(day)),
            ("-5", Some(Duration::ZERO)),
            ("1500", Some(Duration::from_millis(1500))),
        ] {
            let mut h = HeaderMap::new();
            h.insert("retry-after-ms", HeaderValue::from_static(ms));
            assert_eq!(retry_after(&h), expected, "retry-after-ms: {ms}");
        }
        // A NaN in milliseconds falls back to the seconds header.
        let mut h = HeaderMap::new();
        h.insert("retry-after-ms", HeaderValue::from_static("NaN"));
        h.insert("retry-after", HeaderValue::from_static("4"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(4)));
        // A date far in the future is a day too.
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now),
            Some(day)
        );
    }

    #[test]
    fn status_error_carries_kind_status_and_wait() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        let err = status_error("groq", 429, &h, "slow down".into());
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(err.status(), Some(429));
        assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    }

    #[test]
    fn a_413_says_the_request_was_too_large_and_how_to_send_less() {
        let err = status_error("openai", 413, &HeaderMap::new(), "Payload too big".into());
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert_eq!(err.status(), Some(413));
        assert!(
            err.message().starts_with("the request was too large"),
            "{err}"
        );
        assert!(err.message().ends_with("Payload too big"), "{err}");
        assert!(err.fix().is_some_and(|f| f.contains("send less")), "{err}");
    }
}
