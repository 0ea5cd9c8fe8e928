//! Record and replay: a cassette of real provider exchanges, so a test suite runs offline
//! against what a provider really said.
//!
//! A [`Cassette`] sits inside the one shared HTTP transport, so it works the same for every
//! protocol and every OpenAI-compatible vendor. In [`CassetteMode::Record`] each call goes to
//! the provider and its answer is appended to a JSONL file; in [`CassetteMode::Replay`]
//! answers come only from the file and nothing touches the network; a request with no
//! recorded answer fails with [`ErrorKind::Config`] and the code `cassette_miss`, naming the
//! request and how to record it. [`CassetteMode::ReplayOrRecord`] replays what it has and
//! records what it lacks.
//!
//! A replayed answer goes through the same code as a live one: status mapping, error-body
//! mapping, `Retry-After`, the SSE decoder, the stream mapper and the accumulator. A stream
//! that broke while being recorded breaks at the same byte when replayed.
//!
//! # What a line holds
//!
//! One exchange per line: `method`, `path` (path and query, without scheme, host, user info
//! or credential parameters such as `key=`), `stream`, `request` (the JSON body), `status`,
//! `headers` (only `content-type`, `retry-after`, `retry-after-ms`, `x-request-id` and
//! `request-id`), `body` (exactly as received; an event stream keeps its framing, line ends
//! included), and `stream_error` when a stream broke. Request headers — where keys travel
//! (`authorization`, `x-api-key`, `x-goog-api-key`, `api-key`, cookies) — are never written,
//! and as a last guard any occurrence of the client's own key in a line is replaced before
//! the line is written. The request body is kept whole so a miss can be compared by eye; a
//! cassette holds the prompts you sent, so treat it like any test data. Files are created owner-only (`0600`); each line is written whole
//! under a lock, so concurrent calls and test processes appending to one file do not
//! interleave.
//!
//! # Matching
//!
//! A request matches a line by method, path, stream flag and a hash of its body with object
//! keys sorted. Identical requests replay their recorded answers in order (a cursor per
//! request); asking once more than was recorded is a miss. Fields that change between runs
//! (a user id, a timestamp) can be left out of the match with
//! [`CassetteBuilder::ignore_field`] (a JSON pointer such as `/metadata/user_id`). The host is
//! not part of the match, so a cassette recorded against the real API replays with any base
//! URL.
//!
//! # Recording once, replaying in CI
//!
//! Either build a cassette and hand it to [`ClientOptions::cassette`] (or put it in
//! [`HttpSettings::cassette`]), or set `SWITCHBOARD_CASSETTE` for clients made by
//! [`create_client`]: `record:PATH`, `replay:PATH` or `auto:PATH` (replay or record).
//!
//! ```text
//! # once, with real keys: call the providers and write the cassette
//! SWITCHBOARD_CASSETTE=record:tests/cassettes/suite.jsonl OPENAI_API_KEY=sk-... cargo test
//! # in CI, without keys or network: answer from the cassette
//! SWITCHBOARD_CASSETTE=replay:tests/cassettes/suite.jsonl cargo test
//! ```
//!
//! `record` appends (delete the file to start afresh); `auto` fills in only the missing
//! exchanges. With a replaying cassette, [`create_client`] needs no API key. Clients made from
//! the same variable share one cassette per path, so cursors are per process.
//!
//! # Examples
//! ```no_run
//! use std::sync::Arc;
//! use switchboard::providers::cassette::Cassette;
//! use switchboard::{create_client_with, ChatClient, ChatRequest, ClientOptions};
//!
//! # async fn run() -> switchboard::Result<()> {
//! let cassette = Arc::new(Cassette::replay("tests/cassettes/suite.jsonl")?);
//! let client = create_client_with(
//!     "openai:gpt-4o-mini",
//!     &ClientOptions::new().cassette(cassette),
//! )?;
//! let reply = client.chat(&ChatRequest::user("hello")).await?;
//! println!("{}", reply.text());
//! # Ok(()) }
//! ```
//!
//! [`ErrorKind::Config`]: crate::ErrorKind::Config
//! [`ClientOptions::cassette`]: crate::ClientOptions::cassette
//! [`HttpSettings::cassette`]: crate::providers::HttpSettings::cassette
//! [`create_client`]: crate::create_client

mod entry;
mod file;
mod tee;

pub(crate) use self::file::from_spec;

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};

use self::entry::{Entry, RequestKey};
use crate::error::{Error, ErrorKind, Result};
use crate::providers::http::{Reply, SseStart};

/// What a [`Cassette`] does with each request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CassetteMode {
    /// Calls the provider and appends each exchange to the file.
    Record,
    /// Answers only from the file; an unrecorded request is an error and nothing is sent.
    Replay,
    /// Answers from the file when it can, otherwise calls the provider and records.
    ReplayOrRecord,
}

impl CassetteMode {
    /// Returns the name used in `SWITCHBOARD_CASSETTE`: `record`, `replay` or `auto`.
    pub fn as_str(self) -> &'static str {
        match self {
            CassetteMode::Record => "record",
            CassetteMode::Replay => "replay",
            CassetteMode::ReplayOrRecord => "auto",
        }
    }

    fn replays(self) -> bool {
        matches!(self, CassetteMode::Replay | CassetteMode::ReplayOrRecord)
    }

    fn records(self) -> bool {
        matches!(self, CassetteMode::Record | CassetteMode::ReplayOrRecord)
    }
}

/// A JSONL file of recorded provider exchanges that a transport records to or replays from.
///
/// See the [module docs](self) for the file format, the matching rules and how to record
/// once and replay in CI.
///
/// # Clone
/// Not `Clone`: share one cassette between clients as an `Arc<Cassette>`, so they share its
/// file handle and replay cursors.
pub struct Cassette {
    path: PathBuf,
    mode: CassetteMode,
    ignore: Vec<String>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Recorded exchanges by request hash, in file order.
    recorded: HashMap<String, Vec<Entry>>,
    /// How many of each request's exchanges have been replayed.
    cursors: HashMap<String, usize>,
    /// The file, open for appending, when recording.
    file: Option<File>,
}

impl fmt::Debug for Cassette {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cassette")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .field("ignore", &self.ignore)
            .field("exchanges", &self.len())
            .finish()
    }
}

/// Builds a [`Cassette`]; a path is required.
#[derive(Debug, Clone)]
#[must_use]
pub struct CassetteBuilder {
    path: Option<PathBuf>,
    mode: CassetteMode,
    ignore: Vec<String>,
}

impl CassetteBuilder {
    /// Sets the JSONL file.
    pub fn path(mut self, path: impl Into<PathBuf>) -> CassetteBuilder {
        self.path = Some(path.into());
        self
    }

    /// Sets the mode (default [`CassetteMode::Replay`]).
    pub fn mode(mut self, mode: CassetteMode) -> CassetteBuilder {
        self.mode = mode;
        self
    }

    /// Leaves a request body field out of matching, named by a JSON pointer such as
    /// `/metadata/user_id` or `/messages/0` (`~1` stands for `/`, `~0` for `~`).
    pub fn ignore_field(mut self, pointer: impl Into<String>) -> CassetteBuilder {
        self.ignore.push(pointer.into());
        self
    }

    /// Opens the cassette: a replaying one reads its file, a recording one opens it for
    /// appending (creating it, and missing folders, owner-only).
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when no path was given, a pointer does not start with `/`, the
    /// file is missing in [`CassetteMode::Replay`], a line is not a recorded exchange, or the
    /// file cannot be read or created.
    pub fn build(self) -> Result<Cassette> {
        let path = self.path.ok_or_else(|| {
            Error::config(
                "a cassette needs a file",
                "call `.path(..)` on the cassette builder",
            )
        })?;
        if let Some(bad) = self.ignore.iter().find(|p| !p.starts_with('/')) {
            return Err(Error::config(
                format!("`{bad}` is not a JSON pointer"),
                "write ignored fields as JSON pointers, e.g. `/metadata/user_id`",
            ));
        }
        let mut state = State::default();
        if self.mode.replays() {
            for entry in file::load(&path, self.mode)? {
                let hash = entry.key(&self.ignore).hash;
                state.recorded.entry(hash).or_default().push(entry);
            }
        }
        if self.mode.records() {
            state.file = Some(file::open_for_append(&path)?);
        }
        Ok(Cassette {
            path,
            mode: self.mode,
            ignore: self.ignore,
            state: Mutex::new(state),
        })
    }
}

impl Cassette {
    /// Starts a builder (mode [`CassetteMode::Replay`], nothing ignored).
    pub fn builder() -> CassetteBuilder {
        CassetteBuilder {
            path: None,
            mode: CassetteMode::Replay,
            ignore: Vec::new(),
        }
    }

    /// Opens `path` for recording (appending to it if it exists).
    ///
    /// # Errors
    /// As [`CassetteBuilder::build`].
    pub fn record(path: impl Into<PathBuf>) -> Result<Cassette> {
        Cassette::builder()
            .path(path)
            .mode(CassetteMode::Record)
            .build()
    }

    /// Opens `path` for replaying only.
    ///
    /// # Errors
    /// As [`CassetteBuilder::build`].
    pub fn replay(path: impl Into<PathBuf>) -> Result<Cassette> {
        Cassette::builder()
            .path(path)
            .mode(CassetteMode::Replay)
            .build()
    }

    /// Opens `path` to replay what it holds and record what it lacks.
    ///
    /// # Errors
    /// As [`CassetteBuilder::build`].
    pub fn replay_or_record(path: impl Into<PathBuf>) -> Result<Cassette> {
        Cassette::builder()
            .path(path)
            .mode(CassetteMode::ReplayOrRecord)
            .build()
    }

    /// Returns the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the mode.
    pub fn mode(&self) -> CassetteMode {
        self.mode
    }

    /// Returns how many exchanges are held for replay (none when only recording).
    pub fn len(&self) -> usize {
        self.lock().recorded.values().map(Vec::len).sum()
    }

    /// Returns whether no exchange is held for replay.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts every request's replay over from its first recorded answer.
    pub fn rewind(&self) {
        self.lock().cursors.clear();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Computes the key a request is matched by.
    pub(crate) fn key(&self, url: &str, body: &[u8], stream: bool) -> RequestKey {
        RequestKey::new(url, body, stream, &self.ignore)
    }

    /// Returns the next recorded answer to `key`; `None` means "call the provider". In
    /// [`CassetteMode::Replay`] a miss is an error instead.
    pub(crate) fn answer(&self, provider: &str, key: &RequestKey) -> Result<Option<Replayed>> {
        if !self.mode.replays() {
            return Ok(None);
        }
        let mut state = self.lock();
        let state = &mut *state;
        let held = state.recorded.get(&key.hash).map_or(0, Vec::len);
        let cursor = state.cursors.entry(key.hash.clone()).or_insert(0);
        if let Some(entry) = state
            .recorded
            .get(&key.hash)
            .and_then(|entries| entries.get(*cursor))
        {
            *cursor += 1;
            return Replayed::from_entry(entry, &self.path).map(Some);
        }
        if self.mode == CassetteMode::ReplayOrRecord {
            return Ok(None);
        }
        let same_path = state
            .recorded
            .values()
            .flatten()
            .filter(|e| e.path == key.path && e.stream == key.stream)
            .count();
        Err(self.miss(provider, key, held, same_path))
    }

    fn miss(&self, provider: &str, key: &RequestKey, held: usize, same_path: usize) -> Error {
        let path = self.path.display();
        let why = if held > 0 {
            format!("all {held} recorded answers to it were already replayed")
        } else if same_path == 0 {
            "nothing was recorded for this path and stream mode".to_owned()
        } else {
            format!("{same_path} recorded exchange(s) share its path and stream mode, but the request body differs from each")
        };
        Error::new(
            ErrorKind::Config,
            format!("cassette {path} has no answer for {}: {why}", key.describe()),
        )
        .with_provider(provider)
        .with_code("cassette_miss")
        .with_fix(format!(
            "record it: run once with real keys and SWITCHBOARD_CASSETTE=auto:{path} (adds only what is missing), \
             or delete the file and use record:{path}; if a field changes every run, leave it out with `ignore_field`"
        ))
    }

    /// Records a whole response to `key`.
    pub(crate) fn record_reply(
        &self,
        key: &RequestKey,
        reply: &Reply,
        secret: Option<&SecretString>,
    ) -> Result<()> {
        self.append(
            Entry::new(key, reply.status, &reply.headers, &reply.body),
            secret,
        )
    }

    /// Records the answer to a streaming request: a failure at once, a stream as it ends.
    pub(crate) fn tee(
        self: &Arc<Cassette>,
        key: RequestKey,
        start: SseStart,
        secret: Option<&SecretString>,
    ) -> Result<SseStart> {
        match start {
            SseStart::Failed(reply) => {
                self.record_reply(&key, &reply, secret)?;
                Ok(SseStart::Failed(reply))
            }
            SseStart::Open {
                status,
                headers,
                body,
            } => {
                let tee = tee::Tee::new(
                    Arc::clone(self),
                    key,
                    status,
                    headers.clone(),
                    secret.cloned(),
                    body,
                );
                Ok(SseStart::Open {
                    status,
                    headers,
                    body: Box::pin(tee),
                })
            }
        }
    }

    /// Writes one line, whole, and keeps the entry for replay when replaying too.
    fn append(&self, entry: Entry, secret: Option<&SecretString>) -> Result<()> {
        let mut line = serde_json::to_string(&entry).map_err(|e| self.io_error("encode", e))?;
        if let Some(secret) = secret.map(ExposeSecret::expose_secret) {
            if secret.len() >= 8 && line.contains(secret) {
                line = line.replace(secret, "[redacted]");
            }
        }
        line.push('\n');
        let mut state = self.lock();
        let file = state
            .file
            .as_mut()
            .ok_or_else(|| self.io_error("write", "it was opened for replay only"))?;
        file.write_all(line.as_bytes())
            .and_then(|()| file.flush())
            .map_err(|e| self.io_error("write", e))?;
        if self.mode.replays() {
            let hash = entry.key(&self.ignore).hash;
            let entries = state.recorded.entry(hash.clone()).or_default();
            entries.push(entry);
            let len = entries.len();
            state.cursors.insert(hash, len);
        }
        Ok(())
    }

    fn io_error(&self, what: &str, err: impl fmt::Display) -> Error {
        Error::config(
            format!("cassette: cannot {what} {}: {err}", self.path.display()),
            "check the cassette path and its permissions",
        )
    }
}

/// An answer taken from a cassette.
#[derive(Debug)]
pub(crate) struct Replayed {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
    stream_error: Option<String>,
}

impl Replayed {
    fn from_entry(entry: &Entry, path: &Path) -> Result<Replayed> {
        let body = entry.body_bytes().ok_or_else(|| {
            Error::config(
                format!(
                    "cassette {}: the body recorded for {} is not valid base64",
                    path.display(),
                    entry.path
                ),
                "re-record the exchange",
            )
        })?;
        Ok(Replayed {
            status: entry.status,
            headers: entry.header_map(),
            body,
            stream_error: entry.stream_error.clone(),
        })
    }

    /// Returns the answer as a whole response.
    pub(crate) fn into_reply(self) -> Reply {
        Reply {
            status: self.status,
            headers: self.headers,
            body: self.body,
        }
    }

    /// Returns the answer as the start of a stream: its recorded bytes in one piece, then
    /// the recorded break, if any.
    pub(crate) fn into_sse(self, provider: &str) -> SseStart {
        if !(200..300).contains(&self.status) {
            return SseStart::Failed(self.into_reply());
        }
        let tail = self.stream_error.map(|message| {
            Err(Error::new(ErrorKind::Transport, message).with_provider(provider.to_owned()))
        });
        let items = std::iter::once(Ok(self.body)).chain(tail);
        SseStart::Open {
            status: self.status,
            headers: self.headers,
            body: Box::pin(futures_util::stream::iter(items)),
        }
    }
}

#[cfg(test)]
mod tests;
