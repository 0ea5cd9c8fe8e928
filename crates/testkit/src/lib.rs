//! Test helpers shared by Switchboard's test suites: fixture loading, wiremock, a
//! fault-injecting provider over real sockets ([`fault`]), the chaos soak ([`soak`]) and a
//! throwaway `redis-server` ([`redis_server`]).

use std::path::PathBuf;

pub mod fault;
pub mod redis_server;
pub mod soak;

pub use fault::{Fault, FaultProvider, FaultProviderBuilder, Protocol};

/// Returns the path of a fixture file under the root crate's `tests/fixtures/`.
pub fn fixture_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(relative)
}

/// Reads a fixture file as bytes, exactly as stored.
///
/// # Panics
/// Panics when the file is missing: a missing fixture is a broken test, not a runtime case.
pub fn fixture(relative: &str) -> Vec<u8> {
    let path = fixture_path(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// Reads a JSON fixture and parses it.
pub fn fixture_json(relative: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture(relative))
        .unwrap_or_else(|e| panic!("fixture {relative} is not JSON: {e}"))
}

pub use wiremock;
