//! [`CachedClient`]: answers a request it has seen before from a cache instead of paying
//! for it again.
//!
//! The failure it prevents: re-running a test suite, a notebook or a batch job and paying
//! the provider again for the very same prompts.
//!
//! # Key
//!
//! The key is the SHA-256 of the request as normalised JSON (the serde form of
//! [`ChatRequest`]: fixed field order, `extra` sorted), the target's provider and model,
//! its endpoint — the base URL and a fingerprint of the key ([`key_fingerprint`]), never
//! the key itself, which every HTTP provider records in its
//! [`ClientInfo::endpoint`](crate::ClientInfo::endpoint) (a fallback chain records all of
//! its targets') — and an optional **scope** given with [`CachedClient::with_scope`] for
//! anything else that must keep answers apart. Two accounts or two endpoints never share
//! answers.
//!
//! # What is stored
//!
//! Successful answers only; errors are never cached. A completed stream is stored from its
//! [`StreamEvent::Done`] response; a stream served from the cache is replayed as events
//! ([`ChatStream::from_response`]). Entries older than the TTL
//! ([`CachedClient::with_ttl`]) are misses.
//!
//! # A hit says it was a hit
//!
//! A hit's [`ChatResponse::attempts`] is one successful attempt whose provider is
//! [`CACHE_PROVIDER`] (`"cache"`), with the lookup's latency; the response keeps the
//! provider, model and usage of the call that first produced it. Its
//! [cost](crate::ChatResponseCostExt::cost) is zero and a [`Budget`](crate::Budget) counts
//! neither money nor tokens for it.
//!
//! Caching is opt-in and keyed on the whole request, so a request with a temperature above
//! zero still gets the first answer it ever got: cache only where that is what you want.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::client::{BoxFuture, ChatClient, ClientInfo, Readiness};
use crate::error::{Error, ErrorKind, Result};
use crate::types::{
    Attempt, ChatRequest, ChatResponse, ChatStream, EmbedRequest, EmbedResponse, StreamEvent,
};

/// The provider name on the attempt of an answer served from a cache.
pub const CACHE_PROVIDER: &str = "cache";

/// One stored answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The answer as first received.
    pub response: ChatResponse,
    /// When it was stored, in milliseconds since the Unix epoch.
    pub stored_at_ms: u64,
}

/// Where a [`CachedClient`] keeps its answers.
///
/// Backend failures never fail a call: a read error is a miss and a write error is logged.
pub trait CacheBackend: Send + Sync + fmt::Debug {
    /// Returns the entry stored under `key`, if any.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<CacheEntry>>>;

    /// Stores `entry` under `key`, replacing any older one.
    fn put<'a>(&'a self, key: &'a str, entry: CacheEntry) -> BoxFuture<'a, Result<()>>;
}

/// Returns a fingerprint of an API key for [`CachedClient::with_scope`]: 16 hex digits of a
/// SHA-256, which tells keys apart without revealing them.
pub fn key_fingerprint(key: &SecretString) -> String {
    let digest = Sha256::new()
        .chain_update(b"switchboard-cache-scope\0")
        .chain_update(key.expose_secret().as_bytes())
        .finalize();
    hex(&digest[..8])
}

/// Feeds what is written into a SHA-256 hash, so a request can be hashed as it is
/// serialised.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Says whether an entry stored at `stored_at_ms` is still fresh at `now_ms`.
fn is_fresh(stored_at_ms: u64, now_ms: u64, ttl: Option<Duration>) -> bool {
    match ttl {
        None => true,
        Some(ttl) => {
            let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
            now_ms.saturating_sub(stored_at_ms) < ttl_ms
        }
    }
}

/// An in-memory cache that forgets the least recently used entry beyond its capacity.
///
/// # Clone
/// Clones share the entries.
#[derive(Clone)]
pub struct MemoryCache {
    lru: Arc<Mutex<Lru>>,
}

struct Lru {
    capacity: usize,
    tick: u64,
    entries: HashMap<String, (CacheEntry, u64)>,
    by_use: BTreeMap<u64, String>,
}

impl fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lru = self.lru.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("MemoryCache")
            .field("capacity", &lru.capacity)
            .field("len", &lru.entries.len())
            .finish()
    }
}

impl MemoryCache {
    /// Creates a cache holding at most `capacity` answers (at least one).
    pub fn new(capacity: usize) -> MemoryCache {
        MemoryCache {
            lru: Arc::new(Mutex::new(Lru {
                capacity: capacity.max(1),
                tick: 0,
                entries: HashMap::new(),
                by_use: BTreeMap::new(),
            })),
        }
    }

    /// Returns how many answers are stored.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Says whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.lru.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Lru {
    fn touch(&mut self, key: &str) -> Option<CacheEntry> {
        self.tick += 1;
        let tick = self.tick;
        let (entry, used) = self.entries.get_mut(key)?;
        self.by_use.remove(used);
        *used = tick;
        self.by_use.insert(tick, key.to_owned());
        Some(entry.clone())
    }

    fn insert(&mut self, key: &str, entry: CacheEntry) {
        self.tick += 1;
        let tick = self.tick;
        if let Some((_, used)) = self.entries.insert(key.to_owned(), (entry, tick)) {
            self.by_use.remove(&used);
        }
        self.by_use.insert(tick, key.to_owned());
        while self.entries.len() > self.capacity {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
    }
}

impl CacheBackend for MemoryCache {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<CacheEntry>>> {
        let found = self.lock().touch(key);
        Box::pin(async move { Ok(found) })
    }

    fn put<'a>(&'a self, key: &'a str, entry: CacheEntry) -> BoxFuture<'a, Result<()>> {
        self.lock().insert(key, entry);
        Box::pin(async { Ok(()) })
    }
}

/// A cache of JSON files in a directory only its owner can read.
///
/// The directory is created with mode `0700` and each file with `0600` (on Unix); files are
/// written to a temporary name and renamed, so a reader never sees half an entry. File work
/// runs on tokio's blocking pool.
#[derive(Clone, Debug)]
pub struct FileCache {
    dir: Arc<PathBuf>,
}

impl FileCache {
    /// Opens (creating if needed) a cache in `dir`.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the directory cannot be created.
    pub fn new(dir: impl AsRef<Path>) -> Result<FileCache> {
        let dir = dir.as_ref().to_path_buf();
        create_private_dir(&dir).map_err(|err| {
            Error::config(
                format!("cannot create the cache directory {}: {err}", dir.display()),
                "choose a directory you can write to",
            )
        })?;
        Ok(FileCache { dir: Arc::new(dir) })
    }

    /// Returns the directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp.{}", fastrand::u64(..)));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn io_error(what: &str, path: &Path, err: impl fmt::Display) -> Error {
    Error::new(
        ErrorKind::Config,
        format!("cache: cannot {what} {}: {err}", path.display()),
    )
}

impl CacheBackend for FileCache {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<CacheEntry>>> {
        let path = self.path(key);
        Box::pin(async move {
            let read = tokio::task::spawn_blocking(move || match std::fs::read(&path) {
                Ok(bytes) => serde_json::from_slice::<CacheEntry>(&bytes)
                    .map(Some)
                    .map_err(|e| io_error("decode", &path, e)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io_error("read", &path, e)),
            });
            read.await.map_err(|e| {
                Error::new(ErrorKind::Config, format!("cache read task failed: {e}"))
            })?
        })
    }

    fn put<'a>(&'a self, key: &'a str, entry: CacheEntry) -> BoxFuture<'a, Result<()>> {
        let path = self.path(key);
        Box::pin(async move {
            let write = tokio::task::spawn_blocking(move || {
                let bytes = serde_json::to_vec(&entry).map_err(|e| io_error("encode", &path, e))?;
                write_private(&path, &bytes).map_err(|e| io_error("write", &path, e))
            });
            write.await.map_err(|e| {
                Error::new(ErrorKind::Config, format!("cache write task failed: {e}"))
            })?
        })
    }
}

/// Serves repeated requests from a [`CacheBackend`].
///
/// # Clone
/// Clones share the backend.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use switchboard::{ChatClient, ChatClientExt, ChatRequest, ChatResponse, FunctionClient, MemoryCache};
///
/// let model = FunctionClient::new("m", |_req: &ChatRequest| Ok(ChatResponse::from_text("ok")));
/// let client = model.clone().with_cache(MemoryCache::new(100)).with_scope("https://api.example.com");
/// client.chat(&ChatRequest::user("hi")).await?;
/// let again = client.chat(&ChatRequest::user("hi")).await?;
/// assert_eq!(again.attempts()[0].provider, "cache");
/// assert_eq!(model.calls(), 1);
/// # Ok::<_, switchboard::Error>(()) }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct CachedClient<C> {
    inner: C,
    backend: Arc<dyn CacheBackend>,
    scope: String,
    ttl: Option<Duration>,
}

impl<C: ChatClient> CachedClient<C> {
    /// Wraps `inner` with a cache in `backend`, with no scope and no TTL.
    pub fn new(inner: C, backend: impl CacheBackend + 'static) -> CachedClient<C> {
        CachedClient {
            inner,
            backend: Arc::new(backend),
            scope: String::new(),
            ttl: None,
        }
    }

    /// Sets an extra scope mixed into every key, beside the inner client's endpoint (base
    /// URL and [`key_fingerprint`]), e.g. a tenant name; never a key itself.
    #[must_use]
    pub fn with_scope(mut self, scope: impl Into<String>) -> CachedClient<C> {
        self.scope = scope.into();
        self
    }

    /// Treats entries older than `ttl` as misses.
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> CachedClient<C> {
        self.ttl = Some(ttl);
        self
    }

    /// Returns the key `req` is cached under: hex SHA-256 of the normalised request,
    /// provider, model, endpoint (base URL and key fingerprint) and scope.
    pub fn key(&self, req: &ChatRequest) -> String {
        let info = self.inner.info();
        // The request's JSON is written straight into the hash, without an intermediate
        // buffer. Serialising our own plain data types cannot fail (no maps with non-string
        // keys, no failing `Serialize` impls); were it ever to, the key would still cover
        // provider, model, endpoint and scope, and the request's debug text below.
        let mut hasher = HashWriter(Sha256::new());
        if serde_json::to_writer(&mut hasher, req).is_err() {
            hasher.0.update(format!("{req:?}").as_bytes());
        }
        let mut hasher = hasher.0;
        let endpoint = info.endpoint().unwrap_or("");
        for part in [info.provider(), info.model(), endpoint, self.scope.as_str()] {
            hasher.update([0u8]);
            hasher.update(part.as_bytes());
        }
        hex(&hasher.finalize())
    }

    /// Returns the wrapped client.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// Returns the wrapped client, consuming the wrapper.
    pub fn into_inner(self) -> C {
        self.inner
    }

    async fn lookup(&self, key: &str) -> Option<ChatResponse> {
        let started = Instant::now();
        let entry = match self.backend.get(key).await {
            Ok(entry) => entry?,
            Err(err) => {
                tracing::warn!(error = %err, "cache read failed; treating it as a miss");
                return None;
            }
        };
        if !is_fresh(entry.stored_at_ms, now_ms(), self.ttl) {
            return None;
        }
        let mut response = entry.response;
        response.request_id = crate::types::new_request_id();
        response.latency = started.elapsed();
        response.attempts = vec![Attempt::success(
            CACHE_PROVIDER,
            response.model.clone(),
            response.latency,
        )];
        Some(response)
    }
}

async fn store(backend: &dyn CacheBackend, key: &str, response: &ChatResponse) {
    let entry = CacheEntry {
        response: response.clone(),
        stored_at_ms: now_ms(),
    };
    if let Err(err) = backend.put(key, entry).await {
        tracing::warn!(error = %err, "cache write failed; the answer was not stored");
    }
}

impl<C: ChatClient> ChatClient for CachedClient<C> {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(async move {
            let key = self.key(req);
            if let Some(hit) = self.lookup(&key).await {
                return Ok(hit);
            }
            let response = self.inner.chat(req).await?;
            store(self.backend.as_ref(), &key, &response).await;
            Ok(response)
        })
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(async move {
            let key = self.key(req);
            if let Some(hit) = self.lookup(&key).await {
                return Ok(ChatStream::from_response(hit));
            }
            let stream = self.inner.chat_stream(req).await?;
            let backend = self.backend.clone();
            Ok(ChatStream::new(stream.into_inner().then(move |item| {
                let backend = backend.clone();
                let key = key.clone();
                async move {
                    if let Ok(StreamEvent::Done { response }) = &item {
                        store(backend.as_ref(), &key, response).await;
                    }
                    item
                }
            })))
        })
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        self.inner.embed(req)
    }

    fn info(&self) -> &ClientInfo {
        self.inner.info()
    }

    fn readiness(&self) -> Readiness {
        self.inner.readiness()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ChatClientExt;
    use crate::cost::ChatResponseCostExt;
    use crate::providers::FunctionClient;
    use crate::types::Usage;

    #[allow(dead_code)]
    fn _assert_impls() {
        fn send_sync_clone<T: Send + Sync + Clone>() {}
        send_sync_clone::<CachedClient<FunctionClient>>();
        send_sync_clone::<MemoryCache>();
        send_sync_clone::<FileCache>();
    }

    fn model() -> FunctionClient {
        FunctionClient::builder("gpt-4o-mini")
            .provider("openai")
            .respond(|r: &ChatRequest| {
                Ok(
                    ChatResponse::from_text(format!("echo {}", r.messages[0].text()))
                        .with_usage(Usage::new(1_000, 1_000)),
                )
            })
            .build()
    }

    #[tokio::test]
    async fn second_identical_request_is_a_hit_that_costs_nothing() {
        let inner = model();
        let client = inner.clone().with_cache(MemoryCache::new(10));
        let first = client.chat(&ChatRequest::user("a")).await.unwrap();
        let hit = client.chat(&ChatRequest::user("a")).await.unwrap();
        assert_eq!(inner.calls(), 1);
        assert_eq!(hit.text(), first.text());
        assert_eq!(hit.attempts().len(), 1);
        assert_eq!(hit.attempts()[0].provider, CACHE_PROVIDER);
        assert_eq!(hit.provider, "openai");
        assert_ne!(hit.request_id, first.request_id);
        assert!(first.cost().unwrap() > crate::Cost::ZERO);
        assert_eq!(hit.cost(), Some(crate::Cost::ZERO));
    }

    #[tokio::test]
    async fn different_requests_and_scopes_do_not_share_answers() {
        let inner = model();
        let backend = MemoryCache::new(10);
        let a = inner
            .clone()
            .with_cache(backend.clone())
            .with_scope("https://a");
        let b = inner
            .clone()
            .with_cache(backend.clone())
            .with_scope("https://b");
        a.chat(&ChatRequest::user("x")).await.unwrap();
        a.chat(&ChatRequest::user("y")).await.unwrap();
        b.chat(&ChatRequest::user("x")).await.unwrap();
        assert_eq!(inner.calls(), 3);
        assert_ne!(
            a.key(&ChatRequest::user("x")),
            a.key(&ChatRequest::user("x").with_temperature(0.5))
        );
    }

    #[tokio::test]
    async fn errors_are_never_cached() {
        let failing = FunctionClient::new("m", |_r: &ChatRequest| {
            Err(Error::from_status("function", 500, "boom"))
        });
        let backend = MemoryCache::new(10);
        let client = failing.clone().with_cache(backend.clone());
        client.chat(&ChatRequest::user("a")).await.unwrap_err();
        client.chat(&ChatRequest::user("a")).await.unwrap_err();
        assert_eq!(failing.calls(), 2);
        assert!(backend.is_empty());
    }

    #[tokio::test]
    async fn completed_stream_is_stored_and_replayed_as_events() {
        let inner = model();
        let client = inner.clone().with_cache(MemoryCache::new(10));
        let first = client
            .chat_stream(&ChatRequest::user("s"))
            .await
            .unwrap()
            .collect_response()
            .await
            .unwrap();
        let events: Vec<_> = client
            .chat_stream(&ChatRequest::user("s"))
            .await
            .unwrap()
            .collect()
            .await;
        assert_eq!(inner.calls(), 1);
        assert!(events
            .iter()
            .any(|e| matches!(e, Ok(StreamEvent::TextDelta { .. }))));
        match events.last() {
            Some(Ok(StreamEvent::Done { response })) => {
                assert_eq!(response.text(), first.text());
                assert_eq!(response.attempts()[0].provider, CACHE_PROVIDER);
            }
            other => panic!("expected Done, got {other:?}"),
        }
        // A non-streaming call is served from the streamed answer too.
        client.chat(&ChatRequest::user("s")).await.unwrap();
        assert_eq!(inner.calls(), 1);
    }

    #[test]
    fn entries_older_than_the_ttl_are_stale() {
        let ttl = Some(Duration::from_secs(60));
        assert!(is_fresh(1_000, 60_999, ttl));
        assert!(!is_fresh(1_000, 61_000, ttl));
        assert!(is_fresh(0, u64::MAX, None));
    }

    #[tokio::test]
    async fn zero_ttl_serves_nothing_from_the_cache() {
        let inner = model();
        let client = inner
            .clone()
            .with_cache(MemoryCache::new(10))
            .with_ttl(Duration::ZERO);
        client.chat(&ChatRequest::user("a")).await.unwrap();
        client.chat(&ChatRequest::user("a")).await.unwrap();
        assert_eq!(inner.calls(), 2);
    }

    #[tokio::test]
    async fn memory_cache_evicts_the_least_recently_used() {
        let inner = model();
        let backend = MemoryCache::new(2);
        let client = inner.clone().with_cache(backend.clone());
        for text in ["a", "b", "a", "c"] {
            client.chat(&ChatRequest::user(text)).await.unwrap();
        }
        // "b" was least recently used when "c" arrived.
        assert_eq!(backend.len(), 2);
        client.chat(&ChatRequest::user("a")).await.unwrap();
        assert_eq!(inner.calls(), 3);
        client.chat(&ChatRequest::user("b")).await.unwrap();
        assert_eq!(inner.calls(), 4);
    }

    #[tokio::test]
    async fn file_cache_is_owner_only_and_survives_a_new_client() {
        let dir = std::env::temp_dir().join(format!(
            "sb-cache-{}-{}",
            std::process::id(),
            fastrand::u32(..)
        ));
        let inner = model();
        let client = inner.clone().with_cache(FileCache::new(&dir).unwrap());
        client.chat(&ChatRequest::user("f")).await.unwrap();
        let again = inner.clone().with_cache(FileCache::new(&dir).unwrap());
        let hit = again.chat(&ChatRequest::user("f")).await.unwrap();
        assert_eq!(hit.attempts()[0].provider, CACHE_PROVIDER);
        assert_eq!(inner.calls(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
            let files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            assert_eq!(files.len(), 1, "{files:?}");
            let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn openai(base_url: &str, key: &str) -> crate::OpenAiClient {
        crate::OpenAiClient::builder()
            .model("gpt-4o-mini")
            .api_key(key)
            .base_url(base_url)
            .build()
            .unwrap()
    }

    #[test]
    fn keys_follow_the_base_url_and_the_key_without_holding_the_key() {
        let req = ChatRequest::user("hi");
        let key = |c: crate::OpenAiClient| c.with_cache(MemoryCache::new(4)).key(&req);
        let base = key(openai("https://api.openai.com/v1", "sk-aaaa"));
        assert_eq!(base, key(openai("https://api.openai.com/v1/", "sk-aaaa")));
        assert_ne!(base, key(openai("https://eu.api.openai.com/v1", "sk-aaaa")));
        assert_ne!(base, key(openai("https://api.openai.com/v1", "sk-bbbb")));
        let client = openai("https://api.openai.com/v1", "sk-aaaa");
        let endpoint = client.info().endpoint().unwrap().to_owned();
        assert!(
            endpoint.starts_with("https://api.openai.com/v1 key:"),
            "{endpoint}"
        );
        assert!(
            !endpoint.contains("sk-aaaa") && !format!("{:?}", client.info()).contains("sk-aaaa")
        );
        // The same provider, model and request at another provider's endpoint is another entry.
        let anthropic = |k: &str| {
            crate::AnthropicClient::builder()
                .model("claude-haiku-4-5")
                .api_key(k)
                .build()
                .unwrap()
                .with_cache(MemoryCache::new(4))
                .key(&req)
        };
        assert_ne!(anthropic("k1"), anthropic("k2"));
    }

    #[tokio::test]
    async fn a_chain_is_keyed_on_every_target() {
        let req = ChatRequest::user("hi");
        let chain = |backup_key: &str| {
            openai("https://api.openai.com/v1", "sk-a")
                .with_fallback([openai("https://backup.example/v1", backup_key).boxed()])
                .with_cache(MemoryCache::new(4))
                .key(&req)
        };
        assert_eq!(chain("sk-b"), chain("sk-b"));
        assert_ne!(chain("sk-b"), chain("sk-c"));
    }

    #[test]
    fn key_fingerprint_hides_the_key_and_tells_keys_apart() {
        let a = key_fingerprint(&SecretString::from("sk-aaaa"));
        let b = key_fingerprint(&SecretString::from("sk-bbbb"));
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
        assert!(!a.contains("aaaa"));
    }
}
