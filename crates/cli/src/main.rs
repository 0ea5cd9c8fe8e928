//! The `switchboard` command-line tool: chat with any provider with failover, run the
//! OpenAI-compatible gateway or the MCP server, and check keys, models and settings.
//!
//! Exit codes: 0 success, 1 the call failed (a provider or network error), 2 bad usage or
//! configuration (a missing key, an unknown provider, an empty message).

mod cmd;
mod logging;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// One chat interface over many LLM providers, with failover.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sends one message and prints the answer.
    Chat(cmd::chat::ChatArgs),
    /// Runs the OpenAI-compatible gateway from a TOML config.
    Serve(cmd::serve::ServeArgs),
    /// Checks that provider keys are present (and, with --live, that providers answer).
    Check(cmd::check::CheckArgs),
    /// Lists known models with their prices.
    Models(cmd::models::ModelsArgs),
    /// Prints the resolved gateway settings, secrets redacted.
    Config(cmd::config::ConfigArgs),
    /// Runs an MCP server (stdio, or streamable HTTP with --http) whose tools call providers.
    Mcp(cmd::mcp::McpArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Chat(args) => cmd::chat::run(args).await,
            Command::Serve(args) => cmd::serve::run(args).await,
            Command::Check(args) => cmd::check::run(args).await,
            Command::Models(args) => cmd::models::run(args).await,
            Command::Config(args) => cmd::config::run(args).await,
            Command::Mcp(args) => cmd::mcp::run(args).await,
        }
    });
    ExitCode::from(code)
}
