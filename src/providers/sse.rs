//! Server-Sent Events decoding shared by every streaming provider.
//!
//! [`SseDecoder`] implements the "event stream interpretation" rules of the
//! WHATWG HTML standard incrementally: bytes may arrive split anywhere (even
//! inside a line terminator or a multi-byte UTF-8 character). It handles CRLF,
//! LF and lone CR line endings, a leading UTF-8 byte order mark, comments,
//! `data` / `event` / `id` / `retry` fields (unknown fields are ignored) and
//! blank-line dispatch. Lines are decoded lossily, so bad UTF-8 never panics.
//!
//! Two deliberate deviations make it more tolerant than a browser: an event
//! that has an `event:` name but no `data` is still dispatched (with empty
//! data), and [`SseDecoder::finish`] dispatches a final event whose
//! terminating blank line never arrived. A `retry` value is reported on the
//! next dispatched event, while `id` keeps the spec's "last event ID"
//! semantics: it persists across events until a later `id` field changes it.
//! [`decode_stream`] adapts a byte stream (such as a `reqwest` body) into a
//! stream of events.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::mem;

use futures_util::{stream, Stream, StreamExt};

/// The UTF-8 byte order mark, skipped once at the very start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One decoded event.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// Holds the `event:` name, or `None` when the event has none.
    pub event: Option<String>,
    /// Holds the `data:` lines joined with `\n`.
    pub data: String,
    /// Holds the last event ID in effect (set by the latest non-empty `id:`).
    pub id: Option<String>,
    /// Holds the reconnection time in milliseconds from a `retry:` field since the previous event.
    pub retry: Option<u64>,
}

impl SseEvent {
    /// Returns the event name, defaulting to `"message"` when none was given.
    pub fn event_name(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }
}

/// Incremental decoder: feed bytes as they arrive, take events out.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,              // Unterminated line, or a possible BOM prefix.
    bom_checked: bool,         // Whether a leading BOM was looked for.
    skip_lf: bool,             // Last line ended in CR: skip a leading LF.
    pending: usize,            // Bytes of lines in the event being built.
    data: String,              // Data of the event being built.
    data_seen: bool,           // Whether it has had a `data` line.
    event: Option<String>,     // Its `event` name.
    last_id: Option<String>,   // The spec's last event ID buffer.
    retry: Option<u64>,        // A `retry` value not yet reported.
    queue: VecDeque<SseEvent>, // Completed events not yet taken.
}

impl SseDecoder {
    /// Creates a decoder at the start of a stream.
    pub fn new() -> SseDecoder {
        SseDecoder::default()
    }

    /// Appends bytes; events completed by them are queued.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.bom_checked {
            return self.push_lines(chunk);
        }
        // Until three bytes have arrived, `buf` holds a possible BOM prefix.
        let take = (BOM.len() - self.buf.len()).min(chunk.len());
        self.buf.extend_from_slice(&chunk[..take]);
        if self.buf.len() < BOM.len() && BOM.starts_with(&self.buf) {
            return;
        }
        self.bom_checked = true;
        let head = mem::take(&mut self.buf);
        if head != BOM {
            self.push_lines(&head);
        }
        self.push_lines(&chunk[take..]);
    }

    /// Takes the next completed event, if any.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        self.queue.pop_front()
    }

    /// Ends the input: completes a final event whose terminating blank line
    /// (or final newline) never came, and returns the next event in order.
    ///
    /// When the queue has been drained this is the final event itself; events
    /// still queued stay ahead of it and remain available from
    /// [`next_event`](Self::next_event). The decoder is then ready for a new stream.
    pub fn finish(&mut self) -> Option<SseEvent> {
        if !self.buf.is_empty() {
            let line = mem::take(&mut self.buf);
            self.line(&line, 0);
        }
        self.dispatch();
        let queue = mem::take(&mut self.queue);
        *self = SseDecoder {
            queue,
            ..SseDecoder::default()
        };
        self.queue.pop_front()
    }

    /// Returns the number of bytes buffered but not yet part of a completed event.
    pub fn pending_bytes(&self) -> usize {
        self.pending + self.buf.len()
    }

    /// Splits `rest` into lines, joining its first line to any buffered partial line.
    fn push_lines(&mut self, mut rest: &[u8]) {
        if self.skip_lf && !rest.is_empty() {
            self.skip_lf = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(end) = memchr::memchr2(b'\n', b'\r', rest) {
            let mut next = end + 1;
            if rest[end] == b'\r' {
                match rest.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            if self.buf.is_empty() {
                self.line(&rest[..end], next - end);
            } else {
                self.buf.extend_from_slice(&rest[..end]);
                let mut line = mem::take(&mut self.buf);
                self.line(&line, next - end);
                line.clear();
                self.buf = line;
            }
            rest = &rest[next..];
        }
        self.buf.extend_from_slice(rest);
    }

    /// Interprets one complete line whose terminator was `term` bytes long.
    fn line(&mut self, line: &[u8], term: usize) {
        if line.is_empty() {
            return self.dispatch();
        }
        self.pending += line.len() + term;
        let (name, value) = match memchr::memchr(b':', line) {
            Some(0) => return,
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match name {
            b"data" => {
                if mem::replace(&mut self.data_seen, true) {
                    self.data.push('\n');
                }
                self.data.push_str(&lossy(value));
            }
            b"event" => self.event = non_empty(value),
            b"id" if !value.contains(&0) => self.last_id = non_empty(value),
            b"retry" => self.retry = parse_retry(value).or(self.retry),
            _ => {}
        }
    }

    /// Queues the event being built if it has data or a name, then resets it.
    fn dispatch(&mut self) {
        self.pending = 0;
        let event = self.event.take();
        if !mem::take(&mut self.data_seen) && event.is_none() {
            return;
        }
        self.queue.push_back(SseEvent {
            event,
            data: mem::take(&mut self.data),
            id: self.last_id.clone(),
            retry: self.retry.take(),
        });
    }
}

/// Decodes UTF-8, replacing invalid sequences, with a fast path for valid input.
fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    // `from_utf8` has an ASCII fast path that `from_utf8_lossy` lacks.
    std::str::from_utf8(bytes).map_or_else(|_| String::from_utf8_lossy(bytes), Cow::Borrowed)
}

/// Returns the lossily decoded value, or `None` when it is empty.
fn non_empty(value: &[u8]) -> Option<String> {
    (!value.is_empty()).then(|| lossy(value).into_owned())
}

/// Parses a `retry` value made only of ASCII digits; anything else (or overflow) gives `None`.
fn parse_retry(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Adapts a byte stream into an event stream (errors of the byte stream pass through; at the end
/// of input, [`SseDecoder::finish`] is applied).
pub fn decode_stream<S, B, E>(bytes: S) -> impl Stream<Item = Result<SseEvent, E>> + Send
where
    S: Stream<Item = Result<B, E>> + Send + 'static,
    B: AsRef<[u8]> + Send,
    E: Send + 'static,
{
    decode(bytes, None::<(usize, fn(usize) -> E)>)
}

/// Like [`decode_stream`], but when one unfinished event holds more than `limit` bytes the
/// stream ends with the error `too_large(buffered)` instead of buffering without bound.
/// Events completed before it are delivered first.
pub fn decode_stream_limited<S, B, E, F>(
    bytes: S,
    limit: usize,
    too_large: F,
) -> impl Stream<Item = Result<SseEvent, E>> + Send
where
    S: Stream<Item = Result<B, E>> + Send + 'static,
    B: AsRef<[u8]> + Send,
    E: Send + 'static,
    F: Fn(usize) -> E + Send + 'static,
{
    decode(bytes, Some((limit, too_large)))
}

fn decode<S, B, E, F>(
    bytes: S,
    limit: Option<(usize, F)>,
) -> impl Stream<Item = Result<SseEvent, E>> + Send
where
    S: Stream<Item = Result<B, E>> + Send + 'static,
    B: AsRef<[u8]> + Send,
    E: Send + 'static,
    F: Fn(usize) -> E + Send + 'static,
{
    let state = (Box::pin(bytes), SseDecoder::new(), false, limit);
    stream::unfold(
        state,
        |(mut bytes, mut decoder, mut done, limit)| async move {
            loop {
                if let Some(event) = decoder.next_event() {
                    return Some((Ok(event), (bytes, decoder, done, limit)));
                }
                if done {
                    return None;
                }
                if let Some((max, too_large)) = &limit {
                    let buffered = decoder.pending_bytes();
                    if buffered > *max {
                        let err = too_large(buffered);
                        return Some((Err(err), (bytes, SseDecoder::new(), true, limit)));
                    }
                }
                match bytes.next().await {
                    Some(Ok(chunk)) => decoder.push(chunk.as_ref()),
                    Some(Err(err)) => return Some((Err(err), (bytes, decoder, done, limit))),
                    None => {
                        done = true;
                        if let Some(event) = decoder.finish() {
                            return Some((Ok(event), (bytes, decoder, done, limit)));
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` to a fresh decoder, then finishes it, collecting every event.
    fn decode(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        let mut out = Vec::new();
        for piece in pieces {
            decoder.push(piece);
            out.extend(std::iter::from_fn(|| decoder.next_event()));
        }
        out.extend(decoder.finish());
        out
    }

    /// Returns the data of the events decoded from `pieces`.
    fn datas(pieces: &[&[u8]]) -> Vec<String> {
        decode(pieces).into_iter().map(|e| e.data).collect()
    }

    /// Builds an event with a name ("" for none) and data.
    fn ev(name: &str, data: &str) -> SseEvent {
        let event = (!name.is_empty()).then(|| name.to_owned());
        let data = data.to_owned();
        SseEvent {
            event,
            data,
            ..SseEvent::default()
        }
    }

    /// An Anthropic-style stream mixing BOM, CRLF, CR, comments, UTF-8 and all fields.
    const STREAM: &[u8] = b"\xEF\xBB\xBF: ok\r\nevent: message_start\r\ndata: {\"a\":1}\r\n\r\n\
        data: {\"t\":\"h\xC3\xA9llo \xF0\x9F\x8C\x8D\"}\n\ndata: l1\rdata:l2\r\r\
        id: 7\nretry: 1500\nevent: ping\n\ndata: [DONE]\n\n";

    fn expected() -> Vec<SseEvent> {
        let mut events = vec![
            ev("message_start", "{\"a\":1}"),
            ev("", "{\"t\":\"h\u{e9}llo \u{1F30D}\"}"),
        ];
        events.extend([ev("", "l1\nl2"), ev("ping", ""), ev("", "[DONE]")]);
        (events[3].id, events[3].retry) = (Some("7".to_owned()), Some(1500));
        events[4].id = Some("7".to_owned());
        events
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let events = decode(&[STREAM]);
        assert_eq!(events[0].event_name(), "message_start");
        assert_eq!(events[1].event_name(), "message");
        for i in 0..=STREAM.len() {
            for j in i..=STREAM.len() {
                let pieces = [&STREAM[..i], &STREAM[i..j], &STREAM[j..]];
                assert_eq!(decode(&pieces), expected(), "split at {i} and {j}");
            }
        }
        assert_eq!(decode(&STREAM.chunks(1).collect::<Vec<_>>()), expected());
    }

    #[test]
    fn handles_crlf_lone_cr_and_split_crlf() {
        assert_eq!(datas(&[b"data: a\r\n\r\ndata: b\r\r"]), ["a", "b"]);
        let split = datas(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
        assert_eq!(split, ["a\nb"]);
        assert_eq!(datas(&[b"data: a\r", b"\r\n"]), ["a"]);
        assert_eq!(datas(&[b"data: a\r", b"", b"\n", b"\n"]), ["a"]);
    }

    #[test]
    fn joins_data_lines_and_strips_exactly_one_space() {
        let spaced = datas(&[b"data:x\n\ndata: x\n\ndata:  x \n\n"]);
        assert_eq!(spaced, ["x", "x", " x "]);
        assert_eq!(datas(&[b"data: a\ndata:\ndata: b\n\n"]), ["a\n\nb"]);
        assert_eq!(datas(&[b"data\ndata\n\ndata:\n\n"]), ["\n", ""]);
    }

    #[test]
    fn ignores_comments_unknown_fields_and_empty_events() {
        let stream = b": hi\n\n:\nfoo: bar\nid\n\nevent:\n\nretry: 5\n\ndata: x\nfoo\n\n";
        let events = decode(&[stream]);
        let got = (events.len(), events[0].data.as_str(), events[0].retry);
        assert_eq!(got, (1, "x", Some(5)));
        assert_eq!(decode(&[b"event: ping\n\n"]), [ev("ping", "")]);
    }

    #[test]
    fn tracks_ids_and_digit_only_retry_values() {
        let stream = b"id: 1\ndata: a\n\nid: x\0\nretry: 1a\ndata: b\n\nid\nretry: -1\ndata: c\n\n\
            retry: 99999999999999999999\ndata: d\n\nretry:30\ndata: e\n\n";
        let events = decode(&[stream]);
        let ids: Vec<_> = events.iter().map(|e| e.id.as_deref()).collect();
        assert_eq!(ids, [Some("1"), Some("1"), None, None, None]);
        let retries: Vec<_> = events.iter().map(|e| e.retry).collect();
        assert_eq!(retries, [None, None, None, None, Some(30)]);
    }

    #[test]
    fn decodes_utf8_split_inside_a_character_and_replaces_invalid_bytes() {
        assert_eq!(datas(&[b"data: \xF0\x9F", b"\x8C\x8D\n\n"]), ["\u{1F30D}"]);
        assert_eq!(datas(&[b"data: a\xFFb\xC3\n\n"]), ["a\u{FFFD}b\u{FFFD}"]);
        assert_eq!(decode(&[b"event: \xFE\n\n"]), [ev("\u{FFFD}", "")]);
    }

    #[test]
    fn finish_completes_an_unterminated_event() {
        assert_eq!(datas(&[b"data: a\n\ndata: b"]), ["a", "b"]);
        assert_eq!(datas(&[b"data: a\ndata: b\n"]), ["a\nb"]);
        assert_eq!(datas(&[b"data: a\n\n: tail", b""]), ["a"]);
        let mut decoder = SseDecoder::new();
        decoder.push(b"data: a\n\ndata: b\r\ndata");
        assert_eq!(decoder.pending_bytes(), 13);
        assert_eq!(decoder.finish(), Some(ev("", "a")));
        assert_eq!(decoder.next_event(), Some(ev("", "b\n")));
        assert_eq!((decoder.finish(), decoder.pending_bytes()), (None, 0));
    }

    #[test]
    fn skips_only_a_leading_bom() {
        assert_eq!(datas(&[b"\xEF", b"\xBB", b"\xBFdata: a\n\n"]), ["a"]);
        assert_eq!(datas(&[b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n"]), [""; 0]);
        assert_eq!(datas(&[b"\xEF\xBBdata: a\n\ndata: b\n\n"]), ["b"]);
        assert_eq!(datas(&[b"\n", b"data: a\n\n"]), ["a"]);
    }

    #[tokio::test]
    async fn an_event_past_the_limit_ends_the_stream_after_the_events_before_it() {
        let ok = |s: String| Ok::<_, String>(bytes::Bytes::from(s));
        let chunks = vec![
            ok("data: a\n\ndata: ".to_owned()),
            ok("x".repeat(100)),
            ok("never read\n\n".to_owned()),
        ];
        let events: Vec<_> =
            decode_stream_limited(stream::iter(chunks), 64, |n| format!("{n} bytes"))
                .collect()
                .await;
        assert_eq!(events, [Ok(ev("", "a")), Err("106 bytes".to_owned())]);
        // Under the limit nothing changes.
        let small = vec![ok("data: a\n\ndata: b\n\n".to_owned())];
        let events: Vec<_> = decode_stream_limited(stream::iter(small), 64, |n| n.to_string())
            .collect()
            .await;
        assert_eq!(events, [Ok(ev("", "a")), Ok(ev("", "b"))]);
    }

    #[tokio::test]
    async fn decode_stream_passes_errors_and_finishes() {
        let ok = |s: &'static str| Ok(bytes::Bytes::from(s));
        let chunks = vec![ok("data: a\n\nda"), Err("reset"), ok("ta: b\n\ndata: c")];
        let events: Vec<_> = decode_stream(stream::iter(chunks)).collect().await;
        let (a, b, c) = (ev("", "a"), ev("", "b"), ev("", "c"));
        assert_eq!(events, [Ok(a), Err("reset"), Ok(b), Ok(c)]);
    }
}
