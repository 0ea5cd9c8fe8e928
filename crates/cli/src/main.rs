//! The `switchboard` command-line tool: chat with any provider, with failover.
//!
//! Exit codes: 0 success, 1 the call failed (a provider or network error), 2 bad usage or
//! configuration (a missing key, an unknown provider, an empty message).

mod cmd;
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
        }
    });
    ExitCode::from(code)
}
