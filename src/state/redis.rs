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
//! wall-clock times in Unix milliseconds); a counter in `<prefix>counter:<k>`. Every write
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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, Script};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{BreakerPhase, BreakerRecord, StateStore};
use crate::client::BoxFuture;
use crate::error::{Error, ErrorKind, Result};

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

/// Configures a [`RedisStore`]; made by [`RedisStore::builder`].
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    key_prefix: String,
    ttl: Duration,
    timeout: Duration,
    probe_lease: Duration,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("url", &redact_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("ttl", &self.ttl)
            .field("timeout", &self.timeout)
            .field("probe_lease", &self.probe_lease)
            .finish()
    }
}

impl RedisStoreBuilder {
    /// Sets the prefix of every key (default `switchboard:`). Gateways that should share
    /// breakers use the same prefix; separate deployments on one server use different ones.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> RedisStoreBuilder {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets how long a record lives after its last write (default one hour); an open
    /// breaker's record also lives until its cooldown is over.
    pub fn ttl(mut self, ttl: Duration) -> RedisStoreBuilder {
        self.ttl = ttl;
        self
    }

    /// Sets how long one Redis command (or connection attempt) may take before the store
    /// answers from local state (default 250 ms).
    pub fn timeout(mut self, timeout: Duration) -> RedisStoreBuilder {
        self.timeout = timeout;
        self
    }

    /// Sets how long a half-open probe mark counts (default 60 s): if the process that took
    /// the probe never reports, another caller may probe after this.
    pub fn probe_lease(mut self, lease: Duration) -> RedisStoreBuilder {
        self.probe_lease = lease;
        self
    }

    /// Builds the store without contacting Redis; the first command connects.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the URL is not a Redis URL or a duration is zero. The
    /// message shows the URL with its password replaced by `***`.
    pub fn build(self) -> Result<RedisStore> {
        let shown = redact_url(&self.url);
        let client = Client::open(self.url.as_str()).map_err(|_| {
            Error::config(
                format!("state: `{shown}` is not a valid Redis URL"),
                "write it as redis://[:password@]host[:port][/db]",
            )
        })?;
        if self.ttl.is_zero() || self.timeout.is_zero() || self.probe_lease.is_zero() {
            return Err(Error::config(
                "state: the Redis store's ttl, timeout and probe lease must be above zero",
                "give each a positive duration",
            ));
        }
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                shown_url: shown,
                prefix: self.key_prefix,
                ttl: self.ttl,
                timeout: self.timeout,
                probe_lease: self.probe_lease,
                link: tokio::sync::Mutex::new(Link::default()),
                breakers: Mutex::new(HashMap::new()),
                counters: Mutex::new(HashMap::new()),
                reachable: AtomicBool::new(true),
                compare_and_set: Script::new(COMPARE_AND_SET),
                add: Script::new(ADD),
            }),
        })
    }

    /// Builds the store and checks that Redis answers.
    ///
    /// # Errors
    /// As [`RedisStoreBuilder::build`], and [`ErrorKind::Transport`] when Redis cannot be
    /// reached.
    pub async fn connect(self) -> Result<RedisStore> {
        let store = self.build()?;
        store.check().await?;
        Ok(store)
    }
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
            Fault::Redis(e) => write!(f, "{e}"),
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

/// One moment seen both as this process's [`Instant`] and as Unix milliseconds, to convert
/// times in records between the two.
struct Clock {
    instant: Instant,
    wall_ms: i64,
}

impl Clock {
    fn now() -> Clock {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Clock {
            instant: Instant::now(),
            wall_ms,
        }
    }

    fn to_wall(&self, at: Instant) -> i64 {
        if at >= self.instant {
            self.wall_ms + (at - self.instant).as_millis() as i64
        } else {
            self.wall_ms - (self.instant - at).as_millis() as i64
        }
    }

    fn to_instant(&self, wall_ms: i64) -> Instant {
        let offset = Duration::from_millis(wall_ms.abs_diff(self.wall_ms));
        if wall_ms >= self.wall_ms {
            self.instant + offset
        } else {
            self.instant.checked_sub(offset).unwrap_or(self.instant)
        }
    }
}

/// A breaker record as stored in Redis.
#[derive(Debug, Default, Serialize, Deserialize)]
struct WireRecord {
    #[serde(default)]
    phase: WirePhase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    open_until_ms: Option<i64>,
    #[serde(default)]
    cooldown_ms: u64,
    #[serde(default)]
    failures: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    window: Vec<(i64, bool)>,
    /// When the probe in flight was taken; absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    probe_since_ms: Option<i64>,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WirePhase {
    #[default]
    Closed,
    Open,
    HalfOpen,
}

impl WireRecord {
    /// Converts to a record of this process, and returns when its probe was taken if the
    /// probe still counts (a mark older than `lease` is dropped).
    fn to_record(&self, clock: &Clock, lease: Duration) -> (BreakerRecord, Option<i64>) {
        let probe_since = self
            .probe_since_ms
            .filter(|since| clock.wall_ms.saturating_sub(*since) < lease.as_millis() as i64);
        let record = BreakerRecord {
            phase: match self.phase {
                WirePhase::Closed => BreakerPhase::Closed,
                WirePhase::Open => BreakerPhase::Open,
                WirePhase::HalfOpen => BreakerPhase::HalfOpen,
            },
            open_until: self.open_until_ms.map(|ms| clock.to_instant(ms)),
            cooldown: Duration::from_millis(self.cooldown_ms),
            consecutive_failures: self.failures,
            window: self
                .window
                .iter()
                .map(|(ms, failed)| (clock.to_instant(*ms), *failed))
                .collect(),
            probe_in_flight: probe_since.is_some(),
        };
        (record, probe_since)
    }

    /// Converts from a record of this process; a probe in flight keeps the time it was
    /// taken (`probe_since`) or, newly taken, is stamped now.
    fn from_record(record: &BreakerRecord, probe_since: Option<i64>, clock: &Clock) -> WireRecord {
        WireRecord {
            phase: match record.phase {
                BreakerPhase::Closed => WirePhase::Closed,
                BreakerPhase::Open => WirePhase::Open,
                BreakerPhase::HalfOpen => WirePhase::HalfOpen,
            },
            open_until_ms: record.open_until.map(|at| clock.to_wall(at)),
            cooldown_ms: record.cooldown.as_millis() as u64,
            failures: record.consecutive_failures,
            window: record
                .window
                .iter()
                .map(|(at, failed)| (clock.to_wall(*at), *failed))
                .collect(),
            probe_since_ms: record
                .probe_in_flight
                .then(|| probe_since.unwrap_or(clock.wall_ms)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(dead_code)]
    fn _assert_impls() {
        fn send_sync<T: Send + Sync + Clone>() {}
        send_sync::<RedisStore>();
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        let shown = redact_url("redis://:hunter2@10.0.0.5:6380/1");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("***") && shown.contains("10.0.0.5:6380"),
            "{shown}"
        );
        let user = redact_url("redis://app:s3cret@cache.internal/0");
        assert!(!user.contains("s3cret") && user.contains("app"), "{user}");
        assert_eq!(
            redact_url("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
    }

    #[test]
    fn debug_and_errors_never_show_the_password() {
        let builder = RedisStore::builder("redis://:hunter2@127.0.0.1:1/0");
        assert!(!format!("{builder:?}").contains("hunter2"));
        let store = builder.build().unwrap();
        assert!(!format!("{store:?}").contains("hunter2"));
        let err = RedisStore::builder("http://:hunter2@host/")
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_transport_error_naming_the_redacted_url() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let err = RedisStore::builder(format!("redis://:hunter2@127.0.0.1:{port}/0"))
            .connect()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transport);
        let text = err.to_string();
        assert!(
            text.contains(&format!("127.0.0.1:{port}")) && !text.contains("hunter2"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn records_survive_the_trip_through_wall_clock_time() {
        let clock = Clock::now();
        let mut record = BreakerRecord {
            phase: BreakerPhase::Open,
            open_until: Some(clock.instant + Duration::from_secs(30)),
            cooldown: Duration::from_secs(30),
            consecutive_failures: 0,
            window: [(clock.instant, true)].into_iter().collect(),
            probe_in_flight: true,
        };
        let wire = WireRecord::from_record(&record, None, &clock);
        assert_eq!(wire.probe_since_ms, Some(clock.wall_ms));
        let (back, since) = wire.to_record(&clock, Duration::from_secs(60));
        assert_eq!(back, record);
        assert_eq!(since, Some(clock.wall_ms));
        // A probe mark older than the lease no longer counts.
        let later = Clock {
            instant: clock.instant + Duration::from_secs(61),
            wall_ms: clock.wall_ms + 61_000,
        };
        let (expired, since) = wire.to_record(&later, Duration::from_secs(60));
        assert!(!expired.probe_in_flight);
        assert_eq!(since, None);
        record.probe_in_flight = false;
        assert_eq!(expired.phase, record.phase);
    }
}
