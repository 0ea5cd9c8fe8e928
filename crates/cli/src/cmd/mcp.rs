//! `switchboard mcp`: the MCP server, over standard input/output or streamable HTTP.
//!
//! With `--config`, the gateway's TOML file gives the routes (aliases with failover
//! targets and their retry, breaker and budget settings), the provider tables and, for
//! HTTP, the bearer keys (`server.api_keys_env`). Over stdio, standard output carries the
//! protocol, so everything else, logs included (see [`crate::logging`]), goes to standard
//! error.

use std::io::Write;

use clap::Args;
use switchboard::config::{is_loopback_host, Settings};
use switchboard::{Error, ErrorKind};
use switchboard_mcp::{ApiKeys, McpServer, TOOL_NAMES};

use crate::logging::LogArgs;
use crate::output;

/// Arguments of `switchboard mcp`.
#[derive(Debug, Args)]
pub(crate) struct McpArgs {
    /// A gateway config (docs/gateway.md): routes, provider settings and bearer keys.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<String>,
    /// The model (provider:model or a route alias) for calls that name none.
    #[arg(long, short = 'm', value_name = "MODEL")]
    model: Option<String>,
    /// Serves streamable HTTP at /mcp instead of standard input/output.
    #[arg(long)]
    http: bool,
    /// The address to bind with --http; a non-loopback one needs `server.api_keys_env`.
    #[arg(long, requires = "http", default_value = "127.0.0.1")]
    host: String,
    /// The port to bind with --http (0 picks a free port).
    #[arg(long, requires = "http", default_value_t = 8000)]
    port: u16,
    /// With --http, prints the bound address as one JSON object.
    #[arg(long, requires = "http")]
    json: bool,
    #[command(flatten)]
    log: LogArgs,
}

pub(crate) async fn run(args: McpArgs) -> u8 {
    match mcp(&args).await {
        Ok(()) => 0,
        Err(err) => {
            // Over stdio, standard output belongs to the protocol.
            output::print_error(&err, args.json && args.http);
            output::exit_code(&err)
        }
    }
}

async fn mcp(args: &McpArgs) -> Result<(), Error> {
    args.log.init()?;
    let settings = match &args.config {
        Some(path) => Some(Settings::from_file(path)?),
        None => None,
    };
    let keys = match &settings {
        Some(s) if args.http => ApiKeys::from_settings(&s.server, &|n| std::env::var(n).ok())?,
        _ => ApiKeys::default(),
    };
    let mut server = McpServer::new(settings)?;
    if let Some(model) = &args.model {
        server = server.with_default_model(model.clone());
    }
    if !args.http {
        tracing::info!(
            tools = TOOL_NAMES.len(),
            routes = ?server.aliases(),
            "MCP server on standard input/output"
        );
        return server.serve_stdio().await;
    }
    if !is_loopback_host(&args.host) && keys.is_empty() {
        return Err(Error::new(
            ErrorKind::Config,
            format!("--host {} is not a loopback address, and no bearer key is configured", args.host),
        )
        .with_fix("list the variables holding the keys in `server.api_keys_env` of --config, or bind 127.0.0.1"));
    }
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("cannot bind {}:{}: {e}", args.host, args.port),
            )
            .with_fix("pick another --port, or stop what is listening there")
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::new(ErrorKind::Transport, format!("no local address: {e}")))?;
    let url = format!("http://{addr}{}", switchboard_mcp::http::MCP_PATH);
    {
        let mut out = std::io::stdout().lock();
        if args.json {
            let _ = writeln!(
                out,
                "{}",
                serde_json::json!({"listening": url, "routes": server.aliases(), "tools": TOOL_NAMES, "requires_key": !keys.is_empty()})
            );
        } else {
            let _ = writeln!(out, "listening on {url}");
        }
        let _ = out.flush();
    }
    tracing::info!(
        address = %url,
        tools = TOOL_NAMES.len(),
        routes = ?server.aliases(),
        requires_key = !keys.is_empty(),
        "MCP server listening; Ctrl-C stops"
    );
    server
        .serve_http(listener, keys, super::serve::shutdown_signal())
        .await
        .map_err(|e| Error::new(ErrorKind::Config, format!("the MCP server stopped: {e}")))
}
