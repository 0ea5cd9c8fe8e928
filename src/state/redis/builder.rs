//! [`RedisStoreBuilder`]: the settings of a [`RedisStore`], checked when it is built.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::{Client, Script};

use super::{redact_url, Inner, Link, RedisStore, ADD, COMPARE_AND_SET};
use crate::error::{Error, Result};
use crate::state::StateStore;

/// Configures a [`RedisStore`]; made by [`RedisStore::builder`].
#[must_use]
pub struct RedisStoreBuilder {
    pub(super) url: String,
    pub(super) key_prefix: String,
    pub(super) ttl: Duration,
    pub(super) timeout: Duration,
    pub(super) probe_lease: Duration,
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
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when the URL is not a Redis URL or a duration is zero. The
    /// message shows the URL with its password replaced by `***`.
    pub fn build(self) -> Result<RedisStore> {
        super::register_password(&self.url);
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
    /// As [`RedisStoreBuilder::build`], and [`ErrorKind::Transport`](crate::ErrorKind::Transport) when Redis cannot be
    /// reached.
    pub async fn connect(self) -> Result<RedisStore> {
        let store = self.build()?;
        store.check().await?;
        Ok(store)
    }
}
