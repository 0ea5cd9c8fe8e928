//! An OpenAI-compatible HTTP gateway that serves Switchboard client stacks.
//!
//! The server itself lands with the gateway work; this crate currently only names the
//! version so the CLI can report it.

/// The gateway crate's version, as built.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
