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
//! `POST /v1/embeddings`, `GET /v1/models`, `GET /health`, `GET /metrics` (Prometheus text).
//!
//! # Safety
//! The gateway binds `127.0.0.1` by default and refuses to serve on any other address
//! unless gateway keys are configured; with keys, every endpoint but `/health` needs
//! `Authorization: Bearer <key>` or `x-api-key: <key>` (compared in constant time). Bodies
//! are capped; keys are never logged. [`Gateway::serve`] drains in-flight requests and
//! streams on shutdown.
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
mod error;
mod ingress;
mod metrics;
mod report;
mod routes;
mod sse;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard::config::build::{self, BuildOptions, BuiltRoute};
use switchboard::config::{RouteSettings, Settings};
use switchboard::state::StateStore;
use switchboard::{ClientOptions, DynClient, Error, ErrorKind, Result};

pub use crate::auth::{bearer_token, ApiKeys};
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
}

/// Builds routes for `provider:model` names asked for directly, once each.
struct Direct {
    settings: Settings,
    options: BuildOptions,
    cache: Mutex<HashMap<String, Arc<BuiltRoute>>>,
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
            Some(direct) if model.contains(':') => {
                let mut cache = direct
                    .cache
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(route) = cache.get(model) {
                    return Ok(Arc::clone(route));
                }
                let route =
                    build::build_direct(&direct.settings, model, &direct.options).map_err(|e| {
                        error::ApiError::model_not_found(format!(
                            "the gateway cannot serve `{model}`: {}{}",
                            e.message(),
                            e.fix().map(|f| format!("; fix: {f}")).unwrap_or_default()
                        ))
                    })?;
                let route = Arc::new(route);
                cache.insert(model.to_owned(), Arc::clone(&route));
                Ok(route)
            }
            _ => {
                let direct = if self.direct.is_some() {
                    "ask for an alias, or for `provider:model`"
                } else {
                    "ask for an alias (direct `provider:model` requests are turned off)"
                };
                Err(error::ApiError::model_not_found(format!(
                    "the model `{model}` does not exist on this gateway; {direct}; {}",
                    known()
                )))
            }
        }
    }

    /// Lists each target's breaker state, for routes that have breakers.
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
            .finish()
    }
}

impl Gateway {
    /// Builds a gateway from settings, reading keys from the process environment.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the settings are invalid, a gateway key variable is not
    /// set, or a route's target cannot be built (e.g. its provider key is missing).
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
        let direct = settings.server.allow_direct_models.then(|| Direct {
            settings: settings.clone(),
            options,
            cache: Mutex::new(HashMap::new()),
        });
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

    /// Returns the HTTP routes, to serve or to nest in another axum app.
    pub fn router(&self) -> axum::Router {
        routes::router(Arc::clone(&self.state))
    }

    /// Serves on `listener` until `shutdown` resolves, then stops accepting connections and
    /// waits for in-flight requests and streams, up to the shutdown grace period. Past it,
    /// requests still waiting are answered 503 and streams end with an error event (never
    /// `[DONE]`), and the connections close.
    ///
    /// # Errors
    /// Refuses (with [`std::io::ErrorKind::PermissionDenied`]) a non-loopback listener when
    /// no gateway keys are configured; otherwise the server's I/O errors.
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
        tracing::info!(
            address = %addr,
            aliases = ?self.state.aliases,
            direct_models = self.state.direct.is_some(),
            requires_key = !self.state.keys.is_empty(),
            max_body_bytes = self.state.max_body,
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
        let server = std::future::IntoFuture::into_future(
            axum::serve(listener, self.router()).with_graceful_shutdown(signal),
        );
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
