//! `switchboard serve`: the OpenAI-compatible gateway, configured by a TOML file.
//!
//! Standard output carries one line: the bound address (or, with `--json`, an object with
//! the address and aliases). Logs go to standard error (see [`crate::logging`]).

use std::io::Write;

use clap::Args;
use switchboard::config::Settings;
use switchboard::Error;
use switchboard_gateway::Gateway;

use crate::logging::LogArgs;
use crate::output;

/// Arguments of `switchboard serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The gateway's TOML config (see docs/gateway.md).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: String,
    /// Overrides `server.host`.
    #[arg(long)]
    host: Option<String>,
    /// Overrides `server.port` (0 picks a free port).
    #[arg(long)]
    port: Option<u16>,
    /// Prints the bound address as one JSON object instead of a line of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    log: LogArgs,
}

pub(crate) async fn run(args: ServeArgs) -> u8 {
    match serve(&args).await {
        Ok(()) => 0,
        Err(err) => {
            output::print_error(&err, args.json);
            output::exit_code(&err)
        }
    }
}

async fn serve(args: &ServeArgs) -> Result<(), Error> {
    args.log.init()?;
    let mut settings = Settings::from_file(&args.config)?;
    if let Some(host) = &args.host {
        settings.server.host = host.clone();
    }
    if let Some(port) = args.port {
        settings.server.port = port;
    }
    settings.validate()?;
    let host = settings.server.host.clone();
    let port = settings.server.port;
    let gateway = Gateway::new(settings)?;
    gateway.check_state().await?;
    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .map_err(|e| {
            Error::new(
                switchboard::ErrorKind::Config,
                format!("cannot bind {host}:{port}: {e}"),
            )
            .with_fix("pick another --port, or stop what is listening there")
        })?;
    let addr = listener.local_addr().map_err(|e| {
        Error::new(
            switchboard::ErrorKind::Transport,
            format!("no local address: {e}"),
        )
    })?;
    let url = format!("http://{addr}");
    {
        let mut out = std::io::stdout().lock();
        if args.json {
            let _ = writeln!(
                out,
                "{}",
                serde_json::json!({"listening": url, "aliases": gateway.aliases(), "requires_key": gateway.requires_key()})
            );
        } else {
            let _ = writeln!(out, "listening on {url}");
        }
        let _ = out.flush();
    }
    gateway
        .serve(listener, shutdown_signal())
        .await
        .map_err(|e| {
            Error::new(
                switchboard::ErrorKind::Config,
                format!("the gateway stopped: {e}"),
            )
        })
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
