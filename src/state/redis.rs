//! [`RedisStore`]: breaker records and counters shared by several processes through Redis
//! (feature `redis`).
//!
//! Several gateway replicas behind one load balancer each see a fraction of the traffic; a
//! breaker kept per process would need every replica to fail on its own before it stops
//! calling a provider that is down, and each replica would send its own half-open probe.
//! With a shared store, one replica opening a breaker opens it for all of them, and exactly
//! one of them probes.
//!
//! # Keys
//! A breaker keyed `k` lives in the string `<prefix>breaker:<k>` (a small JSON record with
//! wall-clock times in Unix milliseconds); a counter in `<prefix>counter:<k>`; an affinity
//! pin in `<prefix>pin:<route>:<targets>:<conversation>` (the target's `index:provider:model`). Every write
//! sets a TTL ([`RedisStoreBuilder::ttl`], plus the time an open breaker has left), so state
//! of targets nobody calls any more expires on its own.
//!
//! # Atomicity
//! An update reads the record, applies the wrapper's rule to it here, and writes it back with
//! a Lua compare-and-set that succeeds only if the record is still the one read; otherwise it
//! reads again and retries. Two replicas racing to take a half-open probe therefore cannot
//! both win. An update that changes nothing (a call refused while open) writes nothing.
//!
//! A probe taken by a process that dies before reporting would hold the breaker half-open
//! for good; so a probe mark older than [`RedisStoreBuilder::probe_lease`] no longer counts,
//! and the next caller probes.
//!
//! # When Redis is unreachable
//! The store **fails open to local state**: each process keeps a replica of the records it
//! has seen, and while Redis cannot be reached (connection refused, or no answer within
//! [`RedisStoreBuilder::timeout`]) updates apply to that replica, so every breaker goes on
//! working as a per-process breaker. One warning is logged when Redis is lost and one line
//! when it is back; reconnection is tried at most once a second, so an outage costs calls
//! no more than the timeout once. When Redis returns, its records win again (the local
//! changes made during the outage are not merged back). A Redis outage never fails a call.
//!
//! Reads ([`StateStore::breaker`], [`StateStore::counter`]) answer from the replica and
//! refresh it in the background when it is older than a quarter of a second; the decisions
//! that matter (admitting a call, opening, closing) always go to Redis first.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{BreakerRecord, StateStore};
use crate::client::BoxFuture;
use crate::error::{Error, ErrorKind, Result};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, Script};

mod builder;
mod wire;

pub use builder::RedisStoreBuilder;
use wire::{Clock, WireRecord};

/// How long a replica entry is trusted before a read refreshes it in the background.
const REFRESH_AFTER: Duration = Duration::from_millis(250);
/// How long after a failed connection attempt the store answers locally without trying.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// Compare-and-set attempts before an update gives up on Redis and applies locally.
const MAX_ATTEMPTS: usize = 32;

/// Writes `ARGV[2]` with a TTL of `ARGV[3]` ms if the key still holds `ARGV[1]` (the empty
/// string standing for a missing key); returns 1 when written, 0 when the key changed.
const COMPARE_AND_SET: &str = r"
local current = redis.call('GET', KEYS[1])
if current == false then current = '' end
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
";

/// Adds `ARGV[1]` to the counter, renews its TTL of `ARGV[2]` ms, returns the new value.
const ADD: &str = r"
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return value
";

/// Returns the pin in `KEYS[1]` and renews its TTL of `ARGV[2]` ms, or stores `ARGV[1]`
/// there first when there is none.
const CLAIM_PIN: &str = r"
local current = redis.call('GET', KEYS[1])
if current then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return current
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
";

/// Keeps breaker records and counters in Redis, shared by every process that uses the
/// same server and key prefix; see the [module docs](self).
///
/// # Clone
/// Clones share the connection and the local replica.
///
/// # Examples
/// ```no_run
/// # async fn run() -> switchboard::Result<()> {
/// use std::sync::Arc;
/// use switchboard::state::redis::RedisStore;
/// use switchboard::{BreakerConfig, CircuitBreakerClient, ChatRequest, ChatResponse, FunctionClient};
///
/// let store = RedisStore::builder("redis://127.0.0.1:6379/0")
///     .key_prefix("switchboard:prod:")
///     .connect()
///     .await?;
/// let model = FunctionClient::new("m", |_req: &ChatRequest| Ok(ChatResponse::from_text("hi")));
/// let client = CircuitBreakerClient::new(model, BreakerConfig::default()).with_store(Arc::new(store));
/// # let _ = client; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl RedisStore {
    /// Starts configuring a store on `url` (`redis://[:password@]host[:port][/db]`).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            key_prefix: "switchboard:".to_owned(),
            ttl: Duration::from_secs(3600),
            timeout: Duration::from_millis(250),
            probe_lease: Duration::from_secs(60),
        }
    }

    /// Returns the key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// Says whether the last command reached Redis (false while the store answers from
    /// local state).
    pub fn is_reachable(&self) -> bool {
        self.inner.reachable.load(Ordering::SeqCst)
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.shown_url)
            .field("key_prefix", &self.inner.prefix)
            .field("reachable", &self.is_reachable())
            .finish_non_exhaustive()
    }
}

/// Registers the password of a Redis URL (as written and percent-decoded) with
/// [`redact`](crate::redact), so no error or log line can show it.
pub(crate) fn register_password(url: &str) {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return;
    };
    if let Some(password) = parsed.password() {
        crate::redact::register(password);
        if let Ok(decoded) = percent_decode(password) {
            crate::redact::register(&decoded);
        }
    }
}

/// Decodes `%XX` escapes (a URL's userinfo keeps them).
fn percent_decode(text: &str) -> std::result::Result<String, std::string::FromUtf8Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
}

/// Replaces the password of a Redis URL with `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

struct Inner {
    client: Client,
    shown_url: String,
    prefix: String,
    ttl: Duration,
    timeout: Duration,
    probe_lease: Duration,
    link: tokio::sync::Mutex<Link>,
    breakers: Mutex<HashMap<String, Replica<BreakerRecord>>>,
    counters: Mutex<HashMap<String, Replica<i64>>>,
    reachable: AtomicBool,
    compare_and_set: Script,
    add: Script,
}

#[derive(Default)]
struct Link {
    conn: Option<MultiplexedConnection>,
    failed_at: Option<std::time::Instant>,
}

/// This process's copy of one shared value.
struct Replica<T> {
    value: T,
    fetched: std::time::Instant,
    refreshing: bool,
}

impl<T: Default> Replica<T> {
    fn stale() -> Replica<T> {
        Replica {
            value: T::default(),
            fetched: std::time::Instant::now()
                .checked_sub(REFRESH_AFTER * 2)
                .unwrap_or_else(std::time::Instant::now),
            refreshing: false,
        }
    }
}

/// Why a command did not reach Redis.
#[derive(Debug)]
enum Fault {
    Redis(RedisError),
    Timeout,
    Waiting,
    Contended,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // A Redis error's text is the server's; scrub it like any upstream's.
            Fault::Redis(e) => f.write_str(&crate::redact::scrub(&e.to_string())),
            Fault::Timeout => f.write_str("no answer in time"),
            Fault::Waiting => f.write_str("the last connection attempt failed moments ago"),
            Fault::Contended => f.write_str("the record kept changing under the update"),
        }
    }
}

impl From<RedisError> for Fault {
    fn from(e: RedisError) -> Fault {
        Fault::Redis(e)
    }
}

impl Inner {
    fn breaker_key(&self, key: &str) -> String {
        format!("{}breaker:{key}", self.prefix)
    }

    fn counter_key(&self, key: &str) -> String {
        format!("{}counter:{key}", self.prefix)
    }

    /// Returns the shared connection, connecting if there is none (at most once a second).
    async fn connection(&self) -> std::result::Result<MultiplexedConnection, Fault> {
        let mut link = self.link.lock().await;
        if let Some(conn) = &link.conn {
            return Ok(conn.clone());
        }
        if link
            .failed_at
            .is_some_and(|at| at.elapsed() < RECONNECT_AFTER)
        {
            return Err(Fault::Waiting);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let attempt = tokio::time::timeout(
            self.timeout,
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await;
        match attempt {
            Ok(Ok(conn)) => {
                link.conn = Some(conn.clone());
                link.failed_at = None;
                Ok(conn)
            }
            Ok(Err(e)) => {
                link.failed_at = Some(std::time::Instant::now());
                Err(Fault::Redis(e))
            }
            Err(_) => {
                link.failed_at = Some(std::time::Instant::now());
                Err(Fault::Timeout)
            }
        }
    }

    /// Forgets the connection after a failed command, so the next one reconnects.
    async fn drop_connection(&self) {
        self.link.lock().await.conn = None;
    }

    /// Runs one command with the timeout; a failure drops the connection.
    async fn run<T, F>(&self, command: F) -> std::result::Result<T, Fault>
    where
        F: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let outcome = match tokio::time::timeout(self.timeout, command).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => Fault::Redis(e),
            Err(_) => Fault::Timeout,
        };
        self.drop_connection().await;
        Err(outcome)
    }

    fn reached(&self) {
        if !self.reachable.swap(true, Ordering::SeqCst) {
            tracing::info!(redis = %self.shown_url, "state: Redis is reachable again; breakers share their state again");
        }
    }

    fn lost(&self, fault: &Fault) {
        if self.reachable.swap(false, Ordering::SeqCst) {
            tracing::warn!(
                redis = %self.shown_url,
                error = %fault,
                "state: Redis is unreachable; breakers use this process's state until it returns"
            );
        }
    }

    fn fresh_record(&self, raw: Option<&str>, clock: &Clock) -> (BreakerRecord, Option<i64>) {
        let wire: WireRecord = raw
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default();
        wire.to_record(clock, self.probe_lease)
    }

    /// Reads, updates and compare-and-sets the record until the write lands.
    async fn update_remote(
        &self,
        key: &str,
        update: &mut (dyn FnMut(&mut BreakerRecord) + Send),
    ) -> std::result::Result<BreakerRecord, Fault> {
        let redis_key = self.breaker_key(key);
        for _ in 0..MAX_ATTEMPTS {
            let mut conn = self.connection().await?;
            let raw: Option<String> = self
                .run(redis::cmd("GET").arg(&redis_key).query_async(&mut conn))
                .await?;
            let clock = Clock::now();
            let (mut record, probe_since) = self.fresh_record(raw.as_deref(), &clock);
            let before = record.clone();
            update(&mut record);
            if record == before {
                self.remember_breaker(key, record.clone());
                return Ok(record);
            }
            let wire = WireRecord::from_record(&record, probe_since, &clock);
            let ttl = self.ttl.as_millis() as i64
                + wire
                    .open_until_ms
                    .map_or(0, |until| (until - clock.wall_ms).max(0));
            let encoded = serde_json::to_string(&wire).unwrap_or_default();
            let written: i64 = self
                .run(
                    self.compare_and_set
                        .key(&redis_key)
                        .arg(raw.unwrap_or_default())
                        .arg(encoded)
                        .arg(ttl)
                        .invoke_async(&mut conn),
                )
                .await?;
            if written == 1 {
                self.remember_breaker(key, record.clone());
                return Ok(record);
            }
        }
        Err(Fault::Contended)
    }

    fn remember_breaker(&self, key: &str, record: BreakerRecord) {
        let mut map = self.breakers.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert(
            key.to_owned(),
            Replica {
                value: record,
                fetched: std::time::Instant::now(),
                refreshing: false,
            },
        );
    }

    fn update_local(&self, key: &str, update: &mut dyn FnMut(&mut BreakerRecord)) {
        let mut map = self.breakers.lock().unwrap_or_else(PoisonError::into_inner);
        let replica = map.entry(key.to_owned()).or_insert_with(Replica::stale);
        update(&mut replica.value);
    }

    async fn refresh_breaker(&self, key: &str) {
        let result = async {
            let mut conn = self.connection().await?;
            let raw: Option<String> = self
                .run(
                    redis::cmd("GET")
                        .arg(self.breaker_key(key))
                        .query_async(&mut conn),
                )
                .await?;
            Ok::<_, Fault>(self.fresh_record(raw.as_deref(), &Clock::now()).0)
        }
        .await;
        match result {
            Ok(record) => {
                self.reached();
                self.remember_breaker(key, record);
            }
            Err(fault) => {
                self.lost(&fault);
                let mut map = self.breakers.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(replica) = map.get_mut(key) {
                    replica.refreshing = false;
                    replica.fetched = std::time::Instant::now();
                }
            }
        }
    }

    async fn add_remote(&self, key: &str, delta: i64) -> std::result::Result<i64, Fault> {
        let mut conn = self.connection().await?;
        let value: i64 = self
            .run(
                self.add
                    .key(self.counter_key(key))
                    .arg(delta)
                    .arg(self.ttl.as_millis() as i64)
                    .invoke_async(&mut conn),
            )
            .await?;
        self.remember_counter(key, value);
        Ok(value)
    }

    fn remember_counter(&self, key: &str, value: i64) {
        let mut map = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert(
            key.to_owned(),
            Replica {
                value,
                fetched: std::time::Instant::now(),
                refreshing: false,
            },
        );
    }

    fn add_local(&self, key: &str, delta: i64) -> i64 {
        let mut map = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let replica = map.entry(key.to_owned()).or_insert_with(Replica::stale);
        replica.value = replica.value.saturating_add(delta);
        replica.value
    }

    async fn refresh_counter(&self, key: &str) {
        let result = async {
            let mut conn = self.connection().await?;
            let value: Option<i64> = self
                .run(
                    redis::cmd("GET")
                        .arg(self.counter_key(key))
                        .query_async(&mut conn),
                )
                .await?;
            Ok::<_, Fault>(value.unwrap_or(0))
        }
        .await;
        match result {
            Ok(value) => {
                self.reached();
                self.remember_counter(key, value);
            }
            Err(fault) => {
                self.lost(&fault);
                let mut map = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(replica) = map.get_mut(key) {
                    replica.refreshing = false;
                    replica.fetched = std::time::Instant::now();
                }
            }
        }
    }
}

/// Marks the replica entry for `key` as refreshing and says whether the caller should
/// start the refresh (it is stale, none is running, and there is a runtime to run it on).
fn claim_refresh<T: Default + Clone>(
    map: &Mutex<HashMap<String, Replica<T>>>,
    key: &str,
) -> (T, Option<tokio::runtime::Handle>) {
    let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
    let replica = map.entry(key.to_owned()).or_insert_with(Replica::stale);
    let value = replica.value.clone();
    if replica.refreshing || replica.fetched.elapsed() < REFRESH_AFTER {
        return (value, None);
    }
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            replica.refreshing = true;
            (value, Some(handle))
        }
        Err(_) => (value, None),
    }
}

impl StateStore for RedisStore {
    /// Answers from the local replica, refreshing it in the background when stale.
    fn breaker(&self, key: &str) -> BreakerRecord {
        let (record, refresh) = claim_refresh(&self.inner.breakers, key);
        if let Some(handle) = refresh {
            let inner = Arc::clone(&self.inner);
            let key = key.to_owned();
            handle.spawn(async move { inner.refresh_breaker(&key).await });
        }
        record
    }

    /// Applies `update` to the local replica only: a closure that cannot be awaited cannot
    /// be replayed against Redis. Wrappers use
    /// [`StateStore::update_breaker_shared`] for decisions other processes must see.
    fn update_breaker(&self, key: &str, update: &mut dyn FnMut(&mut BreakerRecord)) {
        self.inner.update_local(key, update);
    }

    /// Adds to the local replica now and to Redis in the background (the replica then takes
    /// Redis's value); use [`StateStore::add_shared`] for the shared total.
    fn add(&self, key: &str, delta: i64) -> i64 {
        let value = self.inner.add_local(key, delta);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let inner = Arc::clone(&self.inner);
            let key = key.to_owned();
            handle.spawn(async move {
                match inner.add_remote(&key, delta).await {
                    Ok(_) => inner.reached(),
                    Err(fault) => inner.lost(&fault),
                }
            });
        }
        value
    }

    fn counter(&self, key: &str) -> i64 {
        let (value, refresh) = claim_refresh(&self.inner.counters, key);
        if let Some(handle) = refresh {
            let inner = Arc::clone(&self.inner);
            let key = key.to_owned();
            handle.spawn(async move { inner.refresh_counter(&key).await });
        }
        value
    }

    fn update_breaker_shared<'a>(
        &'a self,
        key: &'a str,
        update: &'a mut (dyn FnMut(&mut BreakerRecord) + Send),
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match self.inner.update_remote(key, &mut *update).await {
                Ok(_) => self.inner.reached(),
                Err(fault) => {
                    self.inner.lost(&fault);
                    self.inner.update_local(key, update);
                }
            }
        })
    }

    fn update_breaker_detached(
        &self,
        key: &str,
        mut update: Box<dyn FnMut(&mut BreakerRecord) + Send + 'static>,
    ) {
        self.inner.update_local(key, &mut *update);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let inner = Arc::clone(&self.inner);
            let key = key.to_owned();
            handle.spawn(async move {
                match inner.update_remote(&key, &mut *update).await {
                    Ok(_) => inner.reached(),
                    Err(fault) => inner.lost(&fault),
                }
            });
        }
    }

    fn add_shared<'a>(&'a self, key: &'a str, delta: i64) -> BoxFuture<'a, i64> {
        Box::pin(async move {
            match self.inner.add_remote(key, delta).await {
                Ok(value) => {
                    self.inner.reached();
                    value
                }
                Err(fault) => {
                    self.inner.lost(&fault);
                    self.inner.add_local(key, delta)
                }
            }
        })
    }

    /// One round trip: the pin already in Redis (renewed), or `proposed` stored there. When
    /// Redis cannot be reached, `proposed` (the pin stays in this process).
    fn claim_pin<'a>(
        &'a self,
        key: &'a str,
        proposed: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, String> {
        Box::pin(async move {
            let result = async {
                let mut conn = self.inner.connection().await?;
                let pinned: String = self
                    .inner
                    .run(
                        Script::new(CLAIM_PIN)
                            .key(format!("{}{key}", self.inner.prefix))
                            .arg(proposed)
                            .arg(ttl.as_millis().max(1) as i64)
                            .invoke_async(&mut conn),
                    )
                    .await?;
                Ok::<_, Fault>(pinned)
            }
            .await;
            match result {
                Ok(pinned) => {
                    self.inner.reached();
                    pinned
                }
                Err(fault) => {
                    self.inner.lost(&fault);
                    proposed.to_owned()
                }
            }
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let result = async {
                let mut conn = self.inner.connection().await?;
                let _: String = self
                    .inner
                    .run(redis::cmd("PING").query_async(&mut conn))
                    .await?;
                Ok::<_, Fault>(())
            }
            .await;
            match result {
                Ok(()) => {
                    self.inner.reached();
                    Ok(())
                }
                Err(fault) => {
                    self.inner.lost(&fault);
                    Err(Error::new(
                        ErrorKind::Transport,
                        format!(
                            "state: cannot reach Redis at {}: {fault}",
                            self.inner.shown_url
                        ),
                    )
                    .with_fix("start redis-server there, or correct the Redis URL"))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
