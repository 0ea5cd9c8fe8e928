//! [`Settings`] → one client stack per route: the only place stacks are assembled.
//!
//! Each target of a route becomes a provider client (built by
//! [`create_client_with`] with the `[providers.<name>]` base URL and key variable) wrapped in
//! the route's per-target behaviours; the targets are then joined by a [`FallbackClient`],
//! in order:
//!
//! ```text
//! route client
//!   └─ FallbackClient                       tries each target in order
//!       ├─ target 1: [around_provider hook] → provider
//!       └─ target 2: [around_provider hook] → provider
//! ```
//!
//! The `around_provider` hook of [`BuildOptions`] lets an embedder (the gateway) observe
//! every real attempt without assembling stacks itself.
//!
//! Settings whose wrappers are not part of this build yet are parsed and validated, and
//! [`pending_settings`] names them so callers can say so.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::{RouteSettings, Settings};
use crate::client::{ChatClient, ClientInfo, DynClient};
use crate::error::{Error, Result};
use crate::middleware::FallbackClient;
use crate::providers::{create_client_with, ClientOptions};
use crate::types::ModelRef;

/// Wraps a client in another (for observation hooks).
pub type WrapFn = Arc<dyn Fn(DynClient) -> DynClient + Send + Sync>;

/// How stacks are built: the base client options (environment, HTTP settings) and hooks.
#[derive(Clone, Default)]
pub struct BuildOptions {
    /// Options every provider client starts from; the provider's table overrides its base
    /// URL and key variable.
    pub client: ClientOptions,
    /// Wraps each provider client, innermost, so every real attempt passes through it.
    pub around_provider: Option<WrapFn>,
}

impl fmt::Debug for BuildOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildOptions")
            .field("client", &self.client)
            .field("around_provider", &self.around_provider.is_some())
            .finish()
    }
}

/// A route's stack plus a handle on each of its targets.
#[derive(Clone, Debug)]
pub struct BuiltRoute {
    /// The alias clients ask for (or the `provider:model` for a direct route).
    pub alias: String,
    /// The whole stack: what requests are sent to.
    pub client: DynClient,
    /// Each target's stack, in order.
    pub targets: Vec<BuiltTarget>,
}

/// One target of a route.
#[derive(Clone, Debug)]
pub struct BuiltTarget {
    /// The `provider:model` it was built from.
    pub spec: String,
    /// The target's own stack (per-target wrappers around the provider).
    pub client: DynClient,
}

impl BuiltTarget {
    /// Names the provider and model of the target.
    pub fn info(&self) -> &ClientInfo {
        self.client.info()
    }
}

/// Returns the client options for `provider`: `base` with the provider table's base URL and
/// key variable applied.
pub fn provider_options(
    settings: &Settings,
    provider: &str,
    base: &ClientOptions,
) -> ClientOptions {
    let mut options = base.clone();
    if let Some(table) = settings.providers.get(provider) {
        if let Some(url) = &table.base_url {
            options = options.base_url(url.clone());
        }
        if let Some(var) = &table.api_key_env {
            options = options.api_key_env(var.clone());
        }
    }
    options
}

/// Builds the provider client for one `provider:model` target, with the provider's table
/// applied and the `around_provider` hook around it.
///
/// # Errors
/// [`ErrorKind::Config`](crate::ErrorKind::Config) from [`create_client_with`] (a missing
/// key names the variable to set).
pub fn build_provider(
    settings: &Settings,
    spec: &str,
    options: &BuildOptions,
) -> Result<DynClient> {
    let model = ModelRef::parse(spec)?;
    let client_options = provider_options(settings, model.provider(), &options.client);
    let client = create_client_with(spec, &client_options)?;
    Ok(match &options.around_provider {
        Some(wrap) => wrap(client),
        None => client,
    })
}

/// Builds every route of `settings`.
///
/// # Errors
/// The first target that cannot be built, with the route and target named.
pub fn build_routes(
    settings: &Settings,
    options: &BuildOptions,
) -> Result<BTreeMap<String, BuiltRoute>> {
    let mut routes = BTreeMap::new();
    for (alias, route) in &settings.routes {
        let mut providers = Vec::with_capacity(route.targets.len());
        for (i, spec) in route.targets.iter().enumerate() {
            let client = build_provider(settings, spec, options).map_err(|e| {
                let fix = e
                    .fix()
                    .unwrap_or("check the provider's settings")
                    .to_owned();
                Error::config(
                    format!(
                        "config: `routes.{alias}.targets[{i}]` = `{spec}`: {}",
                        e.message()
                    ),
                    fix,
                )
            })?;
            providers.push(client);
        }
        routes.insert(alias.clone(), assemble(alias, route, providers)?);
    }
    Ok(routes)
}

/// Builds a route for a `provider:model` a client asked for directly: the provider client
/// alone, with no per-route behaviours.
///
/// # Errors
/// As [`build_provider`].
pub fn build_direct(settings: &Settings, spec: &str, options: &BuildOptions) -> Result<BuiltRoute> {
    let client = build_provider(settings, spec, options)?;
    assemble(spec, &RouteSettings::default(), vec![client])
}

/// Assembles a route from provider clients built elsewhere (tests, embedders): the route's
/// per-target wrappers around each, then the fallback chain.
///
/// # Errors
/// [`ErrorKind::Config`](crate::ErrorKind::Config) when `providers` is empty.
pub fn assemble(
    alias: &str,
    route: &RouteSettings,
    providers: Vec<DynClient>,
) -> Result<BuiltRoute> {
    let _ = route;
    let targets: Vec<BuiltTarget> = providers
        .into_iter()
        .map(|client| BuiltTarget {
            spec: client.info().to_string(),
            client,
        })
        .collect();
    let chain =
        FallbackClient::new(targets.iter().map(|t| t.client.clone()).collect()).map_err(|_| {
            Error::config(
                format!("config: route `{alias}` has no targets"),
                "list at least one `provider:model` target",
            )
        })?;
    let client: DynClient = Arc::new(chain);
    Ok(BuiltRoute {
        alias: alias.to_owned(),
        client,
        targets,
    })
}

/// Names the settings of `route` that this build parses and validates but does not apply
/// yet (their wrappers are not part of the library yet).
pub fn pending_settings(route: &RouteSettings) -> Vec<&'static str> {
    let mut pending = Vec::new();
    if route.timeout_ms.is_some() {
        pending.push("timeout_ms");
    }
    if route.first_token_timeout_ms.is_some() {
        pending.push("first_token_timeout_ms");
    }
    if route.deadline_ms.is_some() {
        pending.push("deadline_ms");
    }
    if route.retry.is_some() {
        pending.push("retry");
    }
    if route.breaker.is_some() {
        pending.push("breaker");
    }
    if route.budget.is_some() {
        pending.push("budget");
    }
    if route.hedge.is_some() {
        pending.push("hedge");
    }
    pending
}

#[allow(dead_code)]
fn _assert_impls() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<BuildOptions>();
    send_sync::<BuiltRoute>();
    let _ = |c: &dyn ChatClient| c.info().clone();
}
