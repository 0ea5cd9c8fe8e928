//! Prompt-cache affinity: which conversation a request belongs to, and which target holds
//! that conversation's cache.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::state::StateStore;
use crate::types::{ChatRequest, Part, Role};

/// The most pins one client keeps in memory; past it, expired pins are dropped, and if
/// none has expired, every pin is (each conversation then pins again on its next turn).
const MAX_PINS: usize = 100_000;

/// Where a request's conversation id comes from, for prompt-cache affinity.
///
/// Written in settings as `header:<name>`, `prompt_cache_key`, `user`,
/// `metadata.user_id` or `prefix`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AffinityKey {
    /// A session header the caller sends; the gateway copies it into
    /// [`RoutingHints::session`](crate::RoutingHints::session) (a library caller sets it with
    /// [`ChatRequest::with_session`]). The name is kept lowercase.
    Header(String),
    /// OpenAI's `prompt_cache_key` ([`RoutingHints::prompt_cache_key`](crate::RoutingHints)
    /// or `extra["prompt_cache_key"]`).
    PromptCacheKey,
    /// OpenAI's `user` ([`RoutingHints::user`](crate::RoutingHints) or `extra["user"]`).
    User,
    /// Anthropic's `metadata.user_id` ([`RoutingHints::metadata_user_id`](crate::RoutingHints)
    /// or `extra["metadata"]["user_id"]`).
    MetadataUserId,
    /// A hash of the request's cacheable prefix: the tools, the system messages and the
    /// first message after them — what a provider's prompt cache matches first, and the
    /// same on every turn of one conversation. Every request has one.
    Prefix,
}

impl AffinityKey {
    /// The default order: an explicit cache key, then a user id, then the prefix.
    pub fn defaults() -> Vec<AffinityKey> {
        vec![
            AffinityKey::PromptCacheKey,
            AffinityKey::MetadataUserId,
            AffinityKey::User,
            AffinityKey::Prefix,
        ]
    }

    /// Hashes this key's value in `req`, or `None` when the request does not carry it.
    pub(crate) fn hash_of(&self, req: &ChatRequest) -> Option<u64> {
        let hints = &req.routing;
        let text = |hint: &Option<String>, field: &str| -> Option<u64> {
            let value = hint
                .as_deref()
                .or_else(|| req.extra.get(field).and_then(Value::as_str))?;
            (!value.is_empty()).then(|| self.tagged().chain(value.as_bytes()).finish())
        };
        match self {
            AffinityKey::Header(_) => hints
                .session
                .as_deref()
                .filter(|v| !v.is_empty())
                .map(|v| self.tagged().chain(v.as_bytes()).finish()),
            AffinityKey::PromptCacheKey => text(&hints.prompt_cache_key, "prompt_cache_key"),
            AffinityKey::User => text(&hints.user, "user"),
            AffinityKey::MetadataUserId => {
                let value = hints.metadata_user_id.as_deref().or_else(|| {
                    req.extra
                        .get("metadata")
                        .and_then(|m| m.get("user_id"))
                        .and_then(Value::as_str)
                })?;
                (!value.is_empty()).then(|| self.tagged().chain(value.as_bytes()).finish())
            }
            AffinityKey::Prefix => prefix_hash(req),
        }
    }

    /// A hasher seeded with this kind of key, so equal values of two kinds differ.
    fn tagged(&self) -> Hash64 {
        let tag: &[u8] = match self {
            AffinityKey::Header(_) => b"header",
            AffinityKey::PromptCacheKey => b"prompt_cache_key",
            AffinityKey::User => b"user",
            AffinityKey::MetadataUserId => b"metadata.user_id",
            AffinityKey::Prefix => b"prefix",
        };
        Hash64::new().chain(tag)
    }
}

impl fmt::Display for AffinityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AffinityKey::Header(name) => write!(f, "header:{name}"),
            AffinityKey::PromptCacheKey => f.write_str("prompt_cache_key"),
            AffinityKey::User => f.write_str("user"),
            AffinityKey::MetadataUserId => f.write_str("metadata.user_id"),
            AffinityKey::Prefix => f.write_str("prefix"),
        }
    }
}

impl FromStr for AffinityKey {
    type Err = Error;

    /// Parses `header:<name>`, `prompt_cache_key`, `user`, `metadata.user_id` or `prefix`.
    fn from_str(text: &str) -> Result<AffinityKey> {
        let fix = "use `header:<name>` (e.g. `header:x-session-id`), `prompt_cache_key`, `user`, `metadata.user_id` or `prefix`";
        match text {
            "prompt_cache_key" => Ok(AffinityKey::PromptCacheKey),
            "user" => Ok(AffinityKey::User),
            "metadata.user_id" => Ok(AffinityKey::MetadataUserId),
            "prefix" => Ok(AffinityKey::Prefix),
            _ => match text.strip_prefix("header:") {
                Some(name) if is_header_name(name) => {
                    Ok(AffinityKey::Header(name.to_ascii_lowercase()))
                }
                Some(name) => Err(Error::config(
                    format!("`{name}` is not an HTTP header name"),
                    "write a header name of letters, digits and `-`, e.g. `header:x-session-id`",
                )),
                None => Err(Error::config(
                    format!("`{text}` is not an affinity key"),
                    fix,
                )),
            },
        }
    }
}

/// Says whether `name` is a valid HTTP header name (an RFC 9110 token).
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Prompt-cache affinity for a [`BalancedClient`](crate::BalancedClient): pins each
/// conversation to the target that served its first turn; see the
/// [module docs](crate::middleware::balance#prompt-cache-affinity).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use switchboard::{Affinity, AffinityKey};
///
/// let affinity = Affinity::new(vec!["header:x-session-id".parse()?, AffinityKey::Prefix])
///     .with_ttl(Duration::from_secs(600));
/// assert_eq!(affinity.session_header(), Some("x-session-id"));
/// # Ok::<_, switchboard::Error>(())
/// ```
#[derive(Clone)]
pub struct Affinity {
    keys: Vec<AffinityKey>,
    ttl: Duration,
    store: Option<Arc<dyn StateStore>>,
    scope: String,
}

impl fmt::Debug for Affinity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Affinity")
            .field("keys", &self.keys)
            .field("ttl", &self.ttl)
            .field("shared", &self.store.is_some())
            .field("scope", &self.scope)
            .finish()
    }
}

impl Default for Affinity {
    fn default() -> Affinity {
        Affinity::new(AffinityKey::defaults())
    }
}

impl Affinity {
    /// Keys conversations on the first of `keys` a request carries; pins live an hour.
    pub fn new(keys: Vec<AffinityKey>) -> Affinity {
        Affinity {
            keys,
            ttl: Duration::from_secs(3600),
            store: None,
            scope: String::new(),
        }
    }

    /// Sets how long a pin lives (default one hour). Each process keeps a pin it has seen
    /// this long without asking the shared store again.
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Affinity {
        self.ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// Shares pins through `store` (a `RedisStore` for several gateway replicas), so a
    /// conversation keeps its target whichever replica serves a turn.
    #[must_use]
    pub fn with_store(mut self, store: Arc<dyn StateStore>) -> Affinity {
        self.store = Some(store);
        self
    }

    /// Names the route in shared pin keys (the gateway uses the alias), so routes sharing a
    /// store never read each other's pins.
    #[must_use]
    pub fn with_scope(mut self, scope: impl Into<String>) -> Affinity {
        self.scope = scope.into();
        self
    }

    /// Returns the keys, in the order they are tried.
    pub fn keys(&self) -> &[AffinityKey] {
        &self.keys
    }

    /// Returns the session header name, when a key is `header:<name>`.
    pub fn session_header(&self) -> Option<&str> {
        self.keys.iter().find_map(|k| match k {
            AffinityKey::Header(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// What is wrong with the keys, if anything (none, or two session headers), and the
    /// fix.
    pub(crate) fn problem(&self) -> Option<(&'static str, &'static str)> {
        if self.keys.is_empty() {
            return Some((
                "are empty",
                "list where conversation ids come from, e.g. `[\"header:x-session-id\", \"prefix\"]`",
            ));
        }
        let headers = self
            .keys
            .iter()
            .filter(|k| matches!(k, AffinityKey::Header(_)))
            .count();
        (headers > 1).then_some((
            "name more than one session header",
            "keep one `header:<name>` key",
        ))
    }
}

/// One conversation's pin, as this process remembers it.
#[derive(Clone, Copy, Debug)]
struct Pin {
    target: usize,
    until: Instant,
}

/// The pins of one client: a local table with expiry, in front of the shared store.
pub(crate) struct Pins {
    affinity: Affinity,
    /// Tells the targets apart in shared pins: `<index>:<provider:model>` each.
    names: Vec<String>,
    /// A fingerprint of the target list, so replicas with a different list never share.
    fingerprint: u64,
    table: Mutex<HashMap<u64, Pin>>,
    warned: AtomicBool,
}

impl fmt::Debug for Pins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pins")
            .field("affinity", &self.affinity)
            .field("pinned", &self.len())
            .finish()
    }
}

impl Pins {
    pub(crate) fn new(affinity: Affinity, names: Vec<String>) -> Pins {
        let names: Vec<String> = names
            .into_iter()
            .enumerate()
            .map(|(i, name)| format!("{i}:{name}"))
            .collect();
        let fingerprint = names
            .iter()
            .fold(Hash64::new(), |h, n| h.chain(n.as_bytes()).chain(b"|"))
            .finish();
        Pins {
            affinity,
            names,
            fingerprint,
            table: Mutex::new(HashMap::new()),
            warned: AtomicBool::new(false),
        }
    }

    pub(crate) fn affinity(&self) -> &Affinity {
        &self.affinity
    }

    /// How many conversations are pinned in this process.
    pub(crate) fn len(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The conversation `req` belongs to: the hash of the first key it carries. Warns once
    /// (per client) when it carries none, and the request is then routed unpinned.
    pub(crate) fn conversation(&self, req: &ChatRequest) -> Option<u64> {
        let found = self.affinity.keys.iter().find_map(|k| k.hash_of(req));
        if found.is_none() && !self.warned.swap(true, Ordering::Relaxed) {
            let keys: Vec<String> = self.affinity.keys.iter().map(ToString::to_string).collect();
            tracing::warn!(
                route = %self.affinity.scope,
                keys = %keys.join(", "),
                "affinity: a request carries none of the affinity keys, so it is routed unpinned \
                 (warned once); send the session header, or add `prefix` to the keys"
            );
        }
        found
    }

    /// The target pinned for `conversation` in this process, if any and not expired.
    pub(crate) fn local(&self, conversation: u64, now: Instant) -> Option<usize> {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let pin = table.get_mut(&conversation)?;
        if pin.until <= now {
            table.remove(&conversation);
            return None;
        }
        if self.affinity.store.is_none() {
            // Nothing shared to re-read: a pin in use stays.
            pin.until = now + self.affinity.ttl;
        }
        Some(pin.target)
    }

    /// Pins `conversation`: to `proposed`, or to the target another process pinned it to
    /// first (one round trip to the shared store, when there is one). Returns the pin.
    pub(crate) async fn pin(&self, conversation: u64, proposed: usize) -> usize {
        let target = match &self.affinity.store {
            Some(store) => {
                let key = format!(
                    "pin:{}:{:016x}:{conversation:016x}",
                    self.affinity.scope, self.fingerprint
                );
                let name = &self.names[proposed];
                let claimed = store.claim_pin(&key, name, self.affinity.ttl).await;
                self.names
                    .iter()
                    .position(|n| *n == claimed)
                    .unwrap_or(proposed)
            }
            None => proposed,
        };
        let until = Instant::now() + self.affinity.ttl;
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if table.len() >= MAX_PINS {
            let now = Instant::now();
            table.retain(|_, pin| pin.until > now);
            if table.len() >= MAX_PINS {
                table.clear();
            }
        }
        table.insert(conversation, Pin { target, until });
        target
    }
}

/// Orders `others` for a pinned conversation by rendezvous hashing, so while its target
/// is out every turn of the conversation lands on the same second choice (whose cache
/// then warms), and conversations spread evenly over the rest.
pub(crate) fn rendezvous(conversation: u64, others: &mut [usize]) {
    if others.len() > 64 {
        others.sort_unstable_by_key(|&i| std::cmp::Reverse(score(conversation, i)));
        return;
    }
    // Each score once, then the order by score.
    let mut scored = [(0u64, 0usize); 64];
    for (slot, &i) in scored.iter_mut().zip(others.iter()) {
        *slot = (score(conversation, i), i);
    }
    let scored = &mut scored[..others.len()];
    scored.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
    for (target, (_, i)) in others.iter_mut().zip(scored.iter()) {
        *target = *i;
    }
}

/// How much `conversation` prefers target `i`.
fn score(conversation: u64, i: usize) -> u64 {
    mix(conversation ^ mix(i as u64 + 1))
}

/// SplitMix64's finaliser: a cheap, well-spread bijection on `u64`.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The hash of the cacheable prefix: the tools, then the messages up to and including the
/// first one that is not a system message. `None` for a request without messages.
fn prefix_hash(req: &ChatRequest) -> Option<u64> {
    let first = req.messages.iter().position(|m| m.role != Role::System)?;
    let mut hash = AffinityKey::Prefix.tagged();
    for tool in &req.tools {
        write_json(&mut hash, tool);
    }
    hash = hash.chain(b"\x00messages");
    for message in &req.messages[..=first] {
        hash = hash.chain(message.role.as_str().as_bytes());
        for part in &message.parts {
            match part {
                // Text is hashed as is (the common case, and the bulk of a prompt).
                Part::Text { text } => hash = hash.chain(b"text").chain(text.as_bytes()),
                other => write_json(&mut hash, other),
            }
        }
    }
    Some(hash.finish())
}

fn write_json(hash: &mut Hash64, value: &impl Serialize) {
    // Serialising plain request values into a hasher cannot fail.
    let _ = serde_json::to_writer(&mut *hash, value);
}

/// A small stable 64-bit hash (FNV-1a's constants over 8-byte words), the same in every
/// process and build, so replicas agree on conversation ids. Not for adversarial keys: a
/// collision only puts two conversations on one target.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hash64(u64);

impl Hash64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    pub(crate) fn new() -> Hash64 {
        Hash64(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn chain(mut self, bytes: &[u8]) -> Hash64 {
        self.update(bytes);
        self
    }

    fn update(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_le_bytes(word)).wrapping_mul(Self::PRIME);
            self.0 = self.0.rotate_left(29);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(Self::PRIME);
        }
        // Separates `ab`+`c` from `a`+`bc`.
        self.0 = (self.0 ^ bytes.len() as u64).wrapping_mul(Self::PRIME);
    }

    pub(crate) fn finish(self) -> u64 {
        mix(self.0)
    }
}

impl std::io::Write for Hash64 {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
