//! An OpenAI-compatible HTTP gateway that serves Switchboard client stacks.
//!
//! Any OpenAI client — the official SDKs, `curl`, LangChain — points its base URL at the
//! gateway and asks for a model *alias*; the gateway sends the request through that
//! route's stack (fallback across targets, and the per-route behaviours of
//! [`switchboard::config`]) and answers in OpenAI's JSON, saying who answered in the
//! `x-switchboard-provider` and `x-switchboard-attempts` headers and in the `model` field.
//!
//! Endpoints: `POST /v1/chat/completions` (JSON or SSE), `POST /v1/messages` and
//! `POST /v1/messages/count_tokens` (Anthropic's Messages API, JSON or SSE),
//! `POST /v1/responses` (OpenAI's Responses API, stateless; JSON or SSE),
//! `POST /v1/embeddings`, `GET /v1/models`, `GET /v1/models/{id}`, `GET /health`,
//! `GET /metrics` (Prometheus text).
//!
//! # Safety
//! The gateway binds `127.0.0.1` by default and refuses to serve on any other address
//! unless gateway keys of at least [`MIN_PUBLIC_KEY_LEN`] characters are configured; with
//! keys, every endpoint but `/health` needs `Authorization: Bearer <key>` or
//! `x-api-key: <key>` (compared in constant time). Bodies are capped; keys are never logged.
//! Connections have header, body and idle timeouts and a cap on their number. Direct
//! `provider:model` requests are off unless configured, and then bounded. A handler that
//! panics answers 500. [`Gateway::serve`] drains in-flight requests and streams on shutdown.
//!
//! # Logging
//! The gateway logs through `tracing`, so it is silent until the program installs a
//! subscriber (`switchboard serve` does). At `info`: the address, aliases and whether keys
//! are required when serving starts; one access line per request (target
//! `switchboard_gateway::access`: method, path, route, status, who answered, attempts,
//! latency, tokens; streams when they end); the drain at shutdown. At `debug`: one event per
//! attempt at a provider (target `switchboard_gateway::attempt`). Bodies, headers and keys
//! are never logged.
//!
//! # Examples
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use switchboard::config::Settings;
//! use switchboard_gateway::Gateway;
//!
//! let settings = Settings::from_file("gateway.toml")?;
//! let gateway = Gateway::new(settings)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! gateway.serve(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod access;
mod auth;
mod convert;
mod direct;
mod error;
mod ingress;
mod metrics;
mod report;
mod routes;
mod server;
mod sse;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use switchboard::config::build::{self, BuildOptions, BuiltRoute};
use switchboard::config::{is_loopback_host, RouteSettings, Settings};
use switchboard::state::StateStore;
use switchboard::{ClientOptions, DynClient, Error, ErrorKind, Result};

pub use crate::auth::{bearer_token, ApiKeys, MIN_PUBLIC_KEY_LEN};
use crate::direct::Direct;
use crate::metrics::Metrics;
use crate::report::Observed;

/// How long the answers cut at the end of the shutdown grace period may take to write.
const CUT_WRITE_LIMIT: Duration = Duration::from_secs(1);

/// The gateway crate's version, as built.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Settings of a gateway built from prebuilt clients ([`Gateway::from_routes`]).
#[derive(Clone)]
pub struct GatewayOptions {
    api_keys: ApiKeys,
    max_body_bytes: usize,
    shutdown_grace: Duration,
    limits: server::Limits,
}

impl fmt::Debug for GatewayOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayOptions")
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.api_keys.len()),
            )
            .field("max_body_bytes", &self.max_body_bytes)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("header_read_timeout", &self.limits.header_read)
            .field("body_read_timeout", &self.limits.body_read)
            .field("idle_timeout", &self.limits.idle)
            .field("max_connections", &self.limits.max_connections)
            .finish()
    }
}

impl Default for GatewayOptions {
    fn default() -> GatewayOptions {
        let server = switchboard::config::ServerSettings::default();
        GatewayOptions {
            api_keys: ApiKeys::default(),
            max_body_bytes: server.max_body_bytes,
            shutdown_grace: Duration::from_millis(server.shutdown_grace_ms),
            limits: server::Limits::from_settings(&server),
        }
    }
}

impl GatewayOptions {
    /// Adds a bearer key clients must present (any configured key is accepted).
    #[must_use]
    pub fn api_key(mut self, key: impl Into<String>) -> GatewayOptions {
        self.api_keys.push(key);
        self
    }

    /// Sets the largest request body accepted, in bytes.
    #[must_use]
    pub fn max_body_bytes(mut self, bytes: usize) -> GatewayOptions {
        self.max_body_bytes = bytes;
        self
    }

    /// Sets how long shutdown waits for in-flight requests and streams.
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> GatewayOptions {
        self.shutdown_grace = grace;
        self
    }

    /// Sets how long a client may take to send a request's headers (see
    /// `server.header_read_timeout_ms`).
    #[must_use]
    pub fn header_read_timeout(mut self, limit: Duration) -> GatewayOptions {
        self.limits.header_read = limit;
        self
    }

    /// Sets how long a client may take to send a request's body, from the end of its
    /// headers (see `server.body_read_timeout_ms`).
    #[must_use]
    pub fn body_read_timeout(mut self, limit: Duration) -> GatewayOptions {
        self.limits.body_read = limit;
        self
    }

    /// Sets how long a kept-alive connection may wait for its next request, and an answer
    /// for its client to read it (see `server.idle_timeout_ms`).
    #[must_use]
    pub fn idle_timeout(mut self, limit: Duration) -> GatewayOptions {
        self.limits.idle = limit;
        self
    }

    /// Sets the most connections open at once (see `server.max_connections`).
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> GatewayOptions {
        self.limits.max_connections = n.max(1);
        self
    }
}

/// What every handler shares.
pub(crate) struct AppState {
    routes: HashMap<String, Arc<BuiltRoute>>,
    aliases: Vec<String>,
    direct: Option<Direct>,
    keys: ApiKeys,
    max_body: usize,
    pub(crate) metrics: Arc<Metrics>,
    /// Turns true when the shutdown grace period is over.
    cutoff: tokio::sync::watch::Sender<bool>,
}

impl AppState {
    /// Finds the route for a requested model: an alias, or `provider:model` when allowed.
    pub(crate) fn resolve(
        &self,
        model: &str,
    ) -> std::result::Result<Arc<BuiltRoute>, error::ApiError> {
        if let Some(route) = self.routes.get(model) {
            return Ok(Arc::clone(route));
        }
        let known = || {
            if self.aliases.is_empty() {
                "no aliases are configured".to_owned()
            } else {
                format!("the aliases are: {}", self.aliases.join(", "))
            }
        };
        match &self.direct {
            Some(direct) if model.contains(':') => direct.route(model).map_err(|e| {
                if e.code() == Some("invalid_model") {
                    error::ApiError::bad_model(&e)
                } else {
                    error::ApiError::model_not_found(direct::refusal(model, &e))
                }
            }),
            _ => {
                let direct = match &self.direct {
                    Some(d) => format!(
                        "ask for an alias, or for `provider:model` with one of the providers {}",
                        d.providers().join(", ")
                    ),
                    None => "ask for an alias (direct `provider:model` requests are turned off)"
                        .to_owned(),
                };
                Err(error::ApiError::model_not_found(format!(
                    "the model `{model}` does not exist on this gateway; {direct}; {}",
                    known()
                )))
            }
        }
    }

    /// Lists each target's breaker state, for routes that have breakers.
    /// Says whether `model` names a model this gateway serves (an alias, or an allowed
    /// direct `provider:model`), without building anything.
    pub(crate) fn serves(&self, model: &str) -> bool {
        self.routes.contains_key(model)
            || self
                .direct
                .as_ref()
                .is_some_and(|d| model.contains(':') && d.check(model).is_ok())
    }

    pub(crate) fn breaker_states(
        &self,
    ) -> Vec<(String, String, switchboard::middleware::BreakerState)> {
        let mut out = Vec::new();
        for alias in &self.aliases {
            if let Some(route) = self.routes.get(alias) {
                for target in &route.targets {
                    if let Some(state) = target.breaker_state() {
                        out.push((alias.clone(), target.spec.clone(), state));
                    }
                }
            }
        }
        out
    }

    /// Like [`AppState::breaker_states`], read where the `[state]` store shares them, so a
    /// breaker another replica opened shows open before this one serves a request.
    pub(crate) async fn shared_breaker_states(
        &self,
    ) -> Vec<(String, String, switchboard::middleware::BreakerState)> {
        let mut out = Vec::new();
        for alias in &self.aliases {
            if let Some(route) = self.routes.get(alias) {
                for target in &route.targets {
                    if let Some(state) = target.breaker_state_shared().await {
                        out.push((alias.clone(), target.spec.clone(), state));
                    }
                }
            }
        }
        out
    }

    /// Resolves when the shutdown grace period is over and unfinished answers must end.
    pub(crate) fn cutoff(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.cutoff.subscribe();
        async move {
            if rx.wait_for(|cut| *cut).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Says whether `token` is one of the configured keys; true when none are configured.
    pub(crate) fn authorized(&self, token: Option<&str>) -> bool {
        self.keys.authorized(token)
    }
}

/// The gateway: routes, keys and counters, ready to serve.
///
/// # Clone
/// Clones share the routes, their client stacks (and so breakers and budgets) and the
/// metrics.
#[derive(Clone)]
pub struct Gateway {
    state: Arc<AppState>,
    shutdown_grace: Duration,
    limits: server::Limits,
    store: Option<Arc<dyn StateStore>>,
}

impl fmt::Debug for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gateway")
            .field("aliases", &self.state.aliases)
            .field("direct_models", &self.state.direct.is_some())
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.state.keys.len()),
            )
            .field("store", &self.store)
            .field("limits", &self.limits)
            .finish()
    }
}

impl Gateway {
    /// Builds a gateway from settings, reading keys from the process environment.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the settings are invalid, a gateway key variable is not
    /// set, a gateway key is shorter than [`MIN_PUBLIC_KEY_LEN`] while `server.host` is not
    /// loopback, or a route's target cannot be built (e.g. its provider key is missing).
    pub fn new(settings: Settings) -> Result<Gateway> {
        Gateway::with_env(settings, |name| std::env::var(name).ok())
    }

    /// Builds a gateway from settings, reading environment variables through `env`.
    ///
    /// # Errors
    /// As [`Gateway::new`].
    pub fn with_env(
        settings: Settings,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Result<Gateway> {
        settings.validate()?;
        let env = Arc::new(env);
        let keys = ApiKeys::from_settings(&settings.server, &|name| env(name))?;
        if !is_loopback_host(&settings.server.host) {
            keys.check_public(&format!("`server.host` = `{}`", settings.server.host))?;
        }
        let metrics = Arc::new(Metrics::default());
        let observer = Arc::clone(&metrics);
        let env_for_clients = Arc::clone(&env);
        let store = build::state_store(&settings, &|name| env(name))?;
        let options = BuildOptions {
            client: ClientOptions::new().env(move |name| env_for_clients(name)),
            around_provider: Some(Arc::new(move |client| {
                Observed::wrap(client, Arc::clone(&observer))
            })),
            state: store.clone(),
        };
        let built = build::build_routes(&settings, &options)?;
        let routes: HashMap<String, Arc<BuiltRoute>> = built
            .into_iter()
            .map(|(alias, route)| (alias, Arc::new(route)))
            .collect();
        let aliases = settings.routes.keys().cloned().collect();
        let direct = if settings.server.allow_direct_models {
            let observer = Arc::clone(&metrics);
            let options = BuildOptions {
                around_provider: Some(Arc::new(move |client| {
                    Observed::wrap_direct(client, Arc::clone(&observer))
                })),
                ..options
            };
            Some(Direct::new(&settings, options)?)
        } else {
            None
        };
        Ok(Gateway {
            state: Arc::new(AppState {
                routes,
                aliases,
                direct,
                keys,
                max_body: settings.server.max_body_bytes,
                metrics,
                cutoff: tokio::sync::watch::Sender::new(false),
            }),
            shutdown_grace: Duration::from_millis(settings.server.shutdown_grace_ms),
            limits: server::Limits::from_settings(&settings.server),
            store,
        })
    }

    /// Builds a gateway whose aliases map to prebuilt target clients (tried in order), for
    /// tests and for embedding in a program that builds its own clients. Direct
    /// `provider:model` requests are off.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when an alias has no targets or contains `:`.
    pub fn from_routes<A: Into<String>>(
        routes: impl IntoIterator<Item = (A, Vec<DynClient>)>,
        options: GatewayOptions,
    ) -> Result<Gateway> {
        Gateway::from_routes_with(
            routes
                .into_iter()
                .map(|(alias, targets)| (alias, RouteSettings::default(), targets)),
            options,
        )
    }

    /// Like [`Gateway::from_routes`], with each route's retry, breaker, timeout, budget and
    /// hedge settings applied around the prebuilt targets (the `targets` field of the
    /// settings is ignored).
    ///
    /// # Errors
    /// As [`Gateway::from_routes`].
    pub fn from_routes_with<A: Into<String>>(
        routes: impl IntoIterator<Item = (A, RouteSettings, Vec<DynClient>)>,
        options: GatewayOptions,
    ) -> Result<Gateway> {
        let metrics = Arc::new(Metrics::default());
        let mut map = HashMap::new();
        let mut aliases = Vec::new();
        for (alias, settings, targets) in routes {
            let alias = alias.into();
            if alias.contains(':') {
                return Err(
                    Error::new(ErrorKind::Config, format!("alias `{alias}` contains `:`"))
                        .with_fix("a colon means provider:model; name aliases with plain words"),
                );
            }
            let observed = targets
                .into_iter()
                .map(|t| Observed::wrap(t, Arc::clone(&metrics)))
                .collect();
            let route = build::assemble(&alias, &settings, observed)?;
            aliases.push(alias.clone());
            map.insert(alias, Arc::new(route));
        }
        aliases.sort();
        Ok(Gateway {
            state: Arc::new(AppState {
                routes: map,
                aliases,
                direct: None,
                keys: options.api_keys,
                max_body: options.max_body_bytes,
                metrics,
                cutoff: tokio::sync::watch::Sender::new(false),
            }),
            shutdown_grace: options.shutdown_grace,
            limits: options.limits,
            store: None,
        })
    }

    /// Returns the state of every target's circuit breaker, by alias, for targets whose
    /// route has a breaker: `(alias, "provider:model", state)`.
    pub fn breaker_states(&self) -> Vec<(String, String, switchboard::middleware::BreakerState)> {
        self.state.breaker_states()
    }

    /// Returns the aliases served, sorted.
    pub fn aliases(&self) -> &[String] {
        &self.state.aliases
    }

    /// Returns each alias's targets as `provider:model`, in order.
    pub fn targets(&self, alias: &str) -> Option<Vec<String>> {
        self.state
            .routes
            .get(alias)
            .map(|r| r.targets.iter().map(|t| t.info().to_string()).collect())
    }

    /// Checks that the shared state store of the `[state]` table answers; succeeds at once
    /// when there is none. `switchboard serve` calls it before listening, so a wrong Redis
    /// URL stops the start instead of leaving each gateway on its own state. A store lost
    /// later does not stop the gateway: breakers fall back to local state (see
    /// `switchboard::state::redis`).
    ///
    /// # Errors
    /// [`ErrorKind::Transport`] naming the store's address (password redacted) and
    /// `state.redis_url_env` when it cannot be reached.
    pub async fn check_state(&self) -> Result<()> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        store.check().await.map_err(|e| {
            Error::new(ErrorKind::Transport, e.message().to_owned()).with_fix(
                "start Redis at that address, or point the variable named by `state.redis_url_env` at a reachable one",
            )
        })
    }

    /// Says whether clients must present a bearer key.
    pub fn requires_key(&self) -> bool {
        !self.state.keys.is_empty()
    }

    /// Returns the HTTP routes, to serve or to nest in another axum app. The connection
    /// limits (header, body and idle timeouts, the connection cap) belong to
    /// [`Gateway::serve`]: a program serving the router itself gets none of them and must
    /// bound its connections its own way.
    pub fn router(&self) -> axum::Router {
        routes::router(Arc::clone(&self.state))
    }

    /// Serves on `listener` until `shutdown` resolves, then stops accepting connections and
    /// waits for in-flight requests and streams, up to the shutdown grace period. Past it,
    /// requests still waiting are answered 503 and streams end with an error event (never
    /// `[DONE]`), and the connections close.
    ///
    /// Each connection is bounded by the `[server]` limits (or [`GatewayOptions`]): header,
    /// body and idle timeouts and a cap on open connections; accepted sockets have
    /// `TCP_NODELAY` set.
    ///
    /// # Errors
    /// Refuses (with [`std::io::ErrorKind::PermissionDenied`]) a non-loopback listener when
    /// no gateway keys are configured, or when a key is shorter than
    /// [`MIN_PUBLIC_KEY_LEN`]; otherwise the server's I/O errors.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() && self.state.keys.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("refusing to serve on {addr} without gateway keys: set `server.api_keys_env`, or bind 127.0.0.1"),
            ));
        }
        if !addr.ip().is_loopback() {
            if let Err(e) = self.state.keys.check_public(&addr.to_string()) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{}; fix: {}", e.message(), e.fix().unwrap_or_default()),
                ));
            }
        }
        tracing::info!(
            address = %addr,
            aliases = ?self.state.aliases,
            direct_models = self.state.direct.is_some(),
            requires_key = !self.state.keys.is_empty(),
            max_body_bytes = self.state.max_body,
            max_connections = self.limits.max_connections,
            header_read_timeout_ms = self.limits.header_read.as_millis() as u64,
            idle_timeout_ms = self.limits.idle.as_millis() as u64,
            "gateway listening"
        );
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let metrics = Arc::clone(&self.state.metrics);
        let grace = self.shutdown_grace;
        let signal = async move {
            shutdown.await;
            tracing::info!(
                in_flight = metrics.in_flight(),
                grace_ms = grace.as_millis() as u64,
                "shutting down: no new connections; draining in-flight requests and streams"
            );
            let _ = started_tx.send(());
        };
        let server = server::serve(listener, self.router(), self.limits, signal);
        tokio::pin!(server);
        let deadline = async move {
            if started_rx.await.is_err() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            result = &mut server => {
                if result.is_ok() {
                    tracing::info!("gateway stopped; every in-flight request finished");
                }
                return result;
            }
            () = deadline => {}
        }
        tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            in_flight = self.state.metrics.in_flight(),
            "shutdown grace period over; ending the remaining requests and streams"
        );
        self.state.cutoff.send_replace(true);
        // The cut answers are written, then their connections close; a peer that stops
        // reading is not waited for.
        match tokio::time::timeout(CUT_WRITE_LIMIT, &mut server).await {
            Ok(result) => result,
            Err(_) => Ok(()),
        }
    }
}
