//! [`MemoryStore`]: the in-process [`StateStore`], the default.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::{BreakerRecord, StateStore};

/// Keeps state in this process, behind one mutex per map.
///
/// Share one store between wrappers with an `Arc<MemoryStore>`; each breaker created without
/// a store gets its own.
#[derive(Debug, Default)]
pub struct MemoryStore {
    breakers: Mutex<HashMap<String, BreakerRecord>>,
    counters: Mutex<HashMap<String, i64>>,
}

impl MemoryStore {
    /// Creates an empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl StateStore for MemoryStore {
    fn breaker(&self, key: &str) -> BreakerRecord {
        let map = self.breakers.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(key).cloned().unwrap_or_default()
    }

    fn update_breaker(&self, key: &str, update: &mut dyn FnMut(&mut BreakerRecord)) {
        let mut map = self.breakers.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get_mut(key) {
            Some(record) => update(record),
            None => {
                let mut record = BreakerRecord::default();
                update(&mut record);
                map.insert(key.to_owned(), record);
            }
        }
    }

    fn add(&self, key: &str, delta: i64) -> i64 {
        let mut map = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let value = map.entry(key.to_owned()).or_insert(0);
        *value = value.saturating_add(delta);
        *value
    }

    fn counter(&self, key: &str) -> i64 {
        let map = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(key).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::BreakerPhase;

    #[allow(dead_code)]
    fn _assert_impls() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<MemoryStore>();
        send_sync::<std::sync::Arc<dyn StateStore>>();
    }

    #[test]
    fn an_unknown_breaker_reads_as_closed() {
        let store = MemoryStore::new();
        assert_eq!(store.breaker("a:b").phase, BreakerPhase::Closed);
    }

    #[test]
    fn updates_are_kept_per_key() {
        let store = MemoryStore::new();
        store.update_breaker("a", &mut |r| r.consecutive_failures += 2);
        store.update_breaker("a", &mut |r| r.consecutive_failures += 1);
        assert_eq!(store.breaker("a").consecutive_failures, 3);
        assert_eq!(store.breaker("b").consecutive_failures, 0);
    }

    #[test]
    fn counters_add_up() {
        let store = MemoryStore::new();
        assert_eq!(store.add("spend", 5), 5);
        assert_eq!(store.add("spend", -2), 3);
        assert_eq!(store.counter("spend"), 3);
        assert_eq!(store.counter("other"), 0);
    }
}
