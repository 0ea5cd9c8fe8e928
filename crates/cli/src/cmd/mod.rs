//! One module per subcommand.

pub(crate) mod chat;
pub(crate) mod check;
pub(crate) mod config;
pub(crate) mod mcp;
pub(crate) mod models;
pub(crate) mod serve;
