//! Direct `provider:model` requests: served only when `server.allow_direct_models` is on,
//! names checked against the allowed providers before anything is built, every direct
//! route governed by `[server.direct]` (one budget for all of them), and the built routes
//! kept in a small least-recently-used cache.
//!
//! The cache is what keeps a flood of distinct names from growing the process: each
//! built route holds an HTTP client and its pool, so an unbounded map grew by ~20 KB per
//! name, forever. A name evicted from the cache is simply built again when asked for.
//! Metrics never label a series with a direct model's name (see [`crate::metrics`]).

use std::sync::{Arc, Mutex, PoisonError};

use switchboard::config::build::{BuildOptions, BuiltRoute, DirectRoutes};
use switchboard::config::Settings;
use switchboard::{Error, Result};

/// How many built direct routes are kept.
pub(crate) const CACHE_SIZE: usize = 64;

/// Builds and caches routes for `provider:model` names asked for directly.
pub(crate) struct Direct {
    routes: DirectRoutes,
    cache: Mutex<Lru>,
}

impl Direct {
    /// Prepares direct routes from the settings; the `[server.direct]` budget is built once.
    pub(crate) fn new(settings: &Settings, options: BuildOptions) -> Result<Direct> {
        Ok(Direct {
            routes: DirectRoutes::new(settings, options)?,
            cache: Mutex::new(Lru::new(CACHE_SIZE)),
        })
    }

    /// Returns the providers a direct model may name.
    pub(crate) fn providers(&self) -> &[String] {
        self.routes.providers()
    }

    /// Checks a name without building anything.
    pub(crate) fn check(&self, spec: &str) -> Result<()> {
        self.routes.check(spec)
    }

    /// Returns the route for `spec`, from the cache or newly built.
    pub(crate) fn route(&self, spec: &str) -> Result<Arc<BuiltRoute>> {
        self.routes.check(spec)?;
        if let Some(route) = self.lock().get(spec) {
            return Ok(route);
        }
        // Built outside the lock, so a slow build never holds up other names.
        let built = Arc::new(self.routes.build(spec)?);
        Ok(self.lock().insert_or_get(spec, built))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts the routes held, for tests.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

/// A fixed-size least-recently-used map; small enough that a linear scan is cheapest.
struct Lru {
    entries: Vec<Entry>,
    capacity: usize,
    clock: u64,
}

struct Entry {
    name: String,
    route: Arc<BuiltRoute>,
    used: u64,
}

impl Lru {
    fn new(capacity: usize) -> Lru {
        Lru {
            entries: Vec::with_capacity(capacity),
            capacity,
            clock: 0,
        }
    }

    fn get(&mut self, name: &str) -> Option<Arc<BuiltRoute>> {
        self.clock += 1;
        let entry = self.entries.iter_mut().find(|e| e.name == name)?;
        entry.used = self.clock;
        Some(Arc::clone(&entry.route))
    }

    /// Keeps `route` under `name`, unless another request built it first: then that one
    /// is returned, so both requests share one breaker.
    fn insert_or_get(&mut self, name: &str, route: Arc<BuiltRoute>) -> Arc<BuiltRoute> {
        if let Some(existing) = self.get(name) {
            return existing;
        }
        if self.entries.len() >= self.capacity {
            if let Some(oldest) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.used)
                .map(|(i, _)| i)
            {
                self.entries.swap_remove(oldest);
            }
        }
        self.entries.push(Entry {
            name: name.to_owned(),
            route: Arc::clone(&route),
            used: self.clock,
        });
        route
    }
}

/// Says why a direct name was refused, for the client.
pub(crate) fn refusal(spec: &str, err: &Error) -> String {
    let fix = err.fix().map(|f| format!("; {f}")).unwrap_or_default();
    format!("the gateway cannot serve `{spec}`: {}{fix}", err.message())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(extra: &str) -> Direct {
        let text = format!(
            "[server]\nallow_direct_models = true\n{extra}\n[providers.openai]\nbase_url = \"http://127.0.0.1:9/v1\"\n"
        );
        let settings = Settings::from_toml_str(&text).unwrap();
        let options = BuildOptions {
            client: switchboard::ClientOptions::new()
                .env(|name| (name == "OPENAI_API_KEY").then(|| "test-key".to_owned())),
            ..BuildOptions::default()
        };
        Direct::new(&settings, options).unwrap()
    }

    #[test]
    fn the_cache_keeps_at_most_its_size_and_the_recently_used() {
        let d = direct("");
        let first = d.route("openai:m-0").unwrap();
        for i in 1..(CACHE_SIZE * 3) {
            d.route(&format!("openai:m-{i}")).unwrap();
            // Keep m-0 in use, so it is never the oldest.
            assert!(Arc::ptr_eq(&first, &d.route("openai:m-0").unwrap()));
        }
        assert_eq!(d.len(), CACHE_SIZE);
    }

    #[test]
    fn providers_outside_the_list_are_refused_before_anything_is_built() {
        let d = direct("direct_providers = [\"anthropic\"]");
        let err = d.route("openai:gpt-4o").unwrap_err();
        assert!(err.message().contains("`openai`"), "{err}");
        assert!(err.fix().unwrap().contains("anthropic"), "{err}");
        assert_eq!(d.len(), 0);
        for bad in ["nope:x", "openai:", "openai:a b", "openai:a\u{7}", ":x"] {
            assert!(d.route(bad).is_err(), "{bad}");
        }
        assert!(d.route(&format!("openai:{}", "m".repeat(300))).is_err());
        assert_eq!(d.len(), 0);
    }
}
