//! An MCP server that lets agents call any provider through Switchboard.
//!
//! [`McpServer`] serves seven tools over the [Model Context Protocol] with the official Rust
//! SDK (`rmcp`): `chat`, `json`, `embed`, `tools`, `provider_check`, `cost_estimate` and
//! `models` (see [`TOOL_NAMES`] and `docs/mcp.md`). Calls go through the same stacks as the
//! gateway: a route alias from the gateway's TOML config gets its failover targets with
//! their retry, breaker, timeout and budget settings; a `provider:model` gets the default
//! stack of `create_client` (or, with a config, the bare provider as the gateway serves
//! direct models).
//!
//! Every generating tool's result names the provider and model that answered, the usage,
//! the cost and every attempt. Every failure — bad arguments, a missing key, every target
//! down — comes back as a tool error with the error's kind and its fix; the server keeps
//! serving. Keys are read from the environment and never appear in results or logs.
//!
//! Two transports: standard input/output ([`McpServer::serve_stdio`]) for an agent that
//! starts the server itself, and streamable HTTP at `/mcp` ([`McpServer::router`],
//! [`McpServer::serve_http`]), loopback-only unless bearer keys are configured.
//!
//! # Examples
//! ```no_run
//! # async fn run() -> Result<(), switchboard::Error> {
//! use switchboard::config::Settings;
//! use switchboard_mcp::McpServer;
//!
//! let server = McpServer::new(Some(Settings::from_file("gateway.toml")?))?
//!     .with_default_model("openai:gpt-4o-mini");
//! server.serve_stdio().await?;
//! # Ok(()) }
//! ```
//!
//! [Model Context Protocol]: https://modelcontextprotocol.io/

pub mod http;
mod params;
mod render;
mod resolve;
mod tools;

use std::fmt;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use switchboard::config::Settings;
use switchboard::{Error, ErrorKind, Result};

pub use crate::tools::TOOL_NAMES;
pub use switchboard_gateway::ApiKeys;

use crate::resolve::{EnvFn, Targets};

/// The MCP server crate's version, as built; the server reports it to clients.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What every tool call shares: the routes and the direct-model clients.
pub(crate) struct State {
    pub(crate) targets: Targets,
    tools: Vec<Tool>,
}

/// The MCP server: tools over Switchboard stacks, ready to serve on a transport.
///
/// # Clone
/// Clones share the routes and their stacks (and so breakers and budgets), as every HTTP
/// session does.
#[derive(Clone)]
pub struct McpServer {
    state: Arc<State>,
    default_model: Option<Arc<str>>,
}

impl fmt::Debug for McpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpServer")
            .field("routes", &self.state.targets.aliases())
            .field("config", &self.state.targets.has_config())
            .field("default_model", &self.default_model)
            .finish_non_exhaustive()
    }
}

impl McpServer {
    /// Builds a server from an optional gateway config, reading keys from the process
    /// environment.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the settings are invalid or a route's target cannot be
    /// built (e.g. its provider key is missing; the message names the variable).
    pub fn new(settings: Option<Settings>) -> Result<McpServer> {
        McpServer::with_env(settings, |name| std::env::var(name).ok())
    }

    /// Builds a server reading environment variables through `env` (for tests and embedders).
    ///
    /// # Errors
    /// As [`McpServer::new`].
    pub fn with_env(
        settings: Option<Settings>,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Result<McpServer> {
        let env: EnvFn = Arc::new(env);
        let targets = Targets::new(settings, env)?;
        Ok(McpServer {
            state: Arc::new(State {
                targets,
                tools: tools::definitions(),
            }),
            default_model: None,
        })
    }

    /// Sets the model (`provider:model` or a route alias) used when a call names neither
    /// `model` nor `route`. A default that names nothing is reported by the first call that
    /// uses it, as a tool error.
    #[must_use]
    pub fn with_default_model(mut self, model: impl Into<String>) -> McpServer {
        self.default_model = Some(Arc::from(model.into()));
        self
    }

    /// Returns the route aliases the server serves, sorted.
    pub fn aliases(&self) -> Vec<String> {
        self.state.targets.aliases()
    }

    /// Returns the definitions of the tools, as `tools/list` lists them.
    pub fn tools(&self) -> &[Tool] {
        &self.state.tools
    }

    /// Serves one client over standard input and output until it disconnects.
    ///
    /// Nothing else may write to standard output meanwhile: it carries the protocol.
    ///
    /// # Errors
    /// [`ErrorKind::Transport`] when the session cannot start or ends with an I/O error.
    pub async fn serve_stdio(self) -> Result<()> {
        let running = self.serve(rmcp::transport::stdio()).await.map_err(|e| {
            Error::new(
                ErrorKind::Transport,
                format!("mcp: the session did not start: {e}"),
            )
        })?;
        running.waiting().await.map(|_| ()).map_err(|e| {
            Error::new(
                ErrorKind::Transport,
                format!("mcp: the session failed: {e}"),
            )
        })
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("switchboard", VERSION))
            .with_instructions(
                "Switchboard sends chat, JSON, embedding and tool-calling requests to any LLM provider, \
                 failing over between targets. Name a model as provider:model or a configured route; \
                 provider_check, cost_estimate and models send nothing.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.state.tools.clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.state.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<CallToolResponse, ErrorData> {
        let args = tools::with_default_model(
            &request.name,
            request.arguments.unwrap_or_default(),
            self.default_model.as_deref(),
        );
        Ok(tools::call(&self.state, &request.name, args).await.into())
    }
}

#[allow(dead_code)]
fn _assert_impls() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<McpServer>();
}
