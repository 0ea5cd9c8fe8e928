//! The streamable HTTP transport: the MCP endpoint at `/mcp`, behind bearer keys when any
//! are configured, and refused on a non-loopback address without them.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use switchboard_gateway::ApiKeys;
use tokio_util::sync::CancellationToken;

use crate::McpServer;

/// The path the MCP endpoint is served at.
pub const MCP_PATH: &str = "/mcp";

impl McpServer {
    /// Returns the HTTP routes (the MCP endpoint at [`MCP_PATH`]), to serve or to nest in
    /// another axum app. With `keys`, every request needs `Authorization: Bearer <key>`.
    ///
    /// `loopback_only` keeps rmcp's check that the `Host` header names a loopback address
    /// (against DNS rebinding); a server on another address relies on its keys instead.
    pub fn router(&self, keys: ApiKeys, loopback_only: bool) -> axum::Router {
        self.router_with(keys, loopback_only, CancellationToken::new())
    }

    fn router_with(
        &self,
        keys: ApiKeys,
        loopback_only: bool,
        stop: CancellationToken,
    ) -> axum::Router {
        let mut config = StreamableHttpServerConfig::default().with_cancellation_token(stop);
        if !loopback_only {
            config = config.disable_allowed_hosts();
        }
        let server = self.clone();
        let service: StreamableHttpService<McpServer, LocalSessionManager> =
            StreamableHttpService::new(move || Ok(server.clone()), Arc::default(), config);
        axum::Router::new()
            .nest_service(MCP_PATH, service)
            .layer(middleware::from_fn_with_state(Arc::new(keys), authorize))
    }

    /// Serves on `listener` until `shutdown` resolves.
    ///
    /// # Errors
    /// Refuses (with [`std::io::ErrorKind::PermissionDenied`]) a non-loopback listener when
    /// `keys` is empty; otherwise the server's I/O errors.
    pub async fn serve_http(
        self,
        listener: tokio::net::TcpListener,
        keys: ApiKeys,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let addr = listener.local_addr()?;
        let loopback = addr.ip().is_loopback();
        if !loopback && keys.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("refusing to serve MCP on {addr} without bearer keys: set `server.api_keys_env` in the config, or bind 127.0.0.1"),
            ));
        }
        let stop = CancellationToken::new();
        let router = self.router_with(keys, loopback, stop.clone());
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                stop.cancel();
            })
            .await
    }
}

async fn authorize(State(keys): State<Arc<ApiKeys>>, request: Request, next: Next) -> Response {
    if keys.authorizes(request.headers()) {
        return next.run(request).await;
    }
    let message = if request.headers().contains_key(header::AUTHORIZATION) {
        "the bearer key is wrong; send one of the keys configured in `server.api_keys_env`"
    } else {
        "this MCP server needs a key; send `Authorization: Bearer <key>` with one of the keys configured in `server.api_keys_env`"
    };
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, "Bearer"),
            (header::CONTENT_TYPE, "application/json"),
        ],
        serde_json::json!({"error": {"kind": "authentication", "message": message}}).to_string(),
    )
        .into_response()
}
