//! [`Settings`] → one client stack per route: the only place stacks are assembled.
//!
//! Each target of a route becomes a bare provider client (built by [`create_client_with`]
//! with the `[providers.<name>]` base URL and key variable, and without the default retry)
//! wrapped in the route's per-target behaviours; the targets are then joined by a
//! [`FallbackClient`] (or a [`HedgedClient`] when the route has `hedge`, or a
//! [`BalancedClient`] when it has `tiers`, a `strategy` other than `ordered`, or
//! `affinity`), and a [`DeadlineClient`] bounds the whole call when the route has
//! `deadline_ms`:
//!
//! ```text
//! route client
//!   └─ DeadlineClient                     deadline_ms (whole call)
//!       └─ FallbackClient | HedgedClient  targets in order | raced after hedge delay
//!          | BalancedClient               tiers, strategy, affinity (docs/routing.md)
//!           ├─ target 1: CircuitBreakerClient → RetryClient → CooldownClient
//!           │              → BudgetClient → TimeoutClient → [around_provider hook] → provider
//!           │                (timeout_ms, first_token_timeout_ms, stream_idle_timeout_ms)
//!           └─ target 2: …
//! ```
//!
//! Each layer is present only when its setting is, except the [`CooldownClient`], which is
//! always there: a target whose provider asked callers to wait (`Retry-After` on an error)
//! is skipped until then, its cool-down kept in the `[state]` store under
//! `cooldown/<alias>/<provider:model>` when there is one. A route without `retry` does not retry
//! (the next target is tried at once, and clients' own SDKs retry too). The budget is one
//! [`Budget`] shared by every target of the route. When every target's breaker is open the
//! chain fails at once ([`AllOpen::FailFast`]) with the earliest recovery as `retry_after`,
//! so a gateway answers 503 + `Retry-After` instead of holding the connection.
//!
//! The `around_provider` hook of [`BuildOptions`] lets an embedder (the gateway) observe
//! every real attempt without assembling stacks itself.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use std::time::Duration;

use super::{HedgeSettings, RouteSettings, Settings};
use crate::client::{ChatClient, ClientInfo, DynClient};
use crate::error::{Error, Result};
use crate::middleware::{
    Affinity, AllOpen, BalancedClient, BreakerConfig, BreakerState, Budget, BudgetClient,
    CircuitBreakerClient, CooldownClient, DeadlineClient, FallbackClient, HedgePolicy,
    HedgedClient, RetryClient, RetryPolicy, Tier, TimeoutClient, Timeouts,
};
use crate::providers::{create_client_with, ClientOptions};
use crate::state::StateStore;
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
    /// Where every route's breakers keep their state; `None` gives each breaker its own
    /// in-process store. [`state_store`] builds it from the `[state]` table.
    pub state: Option<Arc<dyn StateStore>>,
}

impl fmt::Debug for BuildOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildOptions")
            .field("client", &self.client)
            .field("around_provider", &self.around_provider.is_some())
            .field("state", &self.state)
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
    /// Each target's stack, in order (every tier's, in tier order).
    pub targets: Vec<BuiltTarget>,
    /// The session header the route's affinity keys on (lowercase), if any: a gateway
    /// copies its value into [`RoutingHints::session`](crate::RoutingHints::session).
    pub session_header: Option<String>,
}

/// One target of a route.
#[derive(Clone, Debug)]
pub struct BuiltTarget {
    /// The `provider:model` it was built from.
    pub spec: String,
    /// The target's own stack (per-target wrappers around the provider).
    pub client: DynClient,
    breaker: Option<CircuitBreakerClient<DynClient>>,
}

impl BuiltTarget {
    /// Names the provider and model of the target.
    pub fn info(&self) -> &ClientInfo {
        self.client.info()
    }

    /// Returns the target's circuit breaker state, when the route has a breaker.
    pub fn breaker_state(&self) -> Option<BreakerState> {
        self.breaker.as_ref().map(CircuitBreakerClient::state)
    }

    /// Returns the target's circuit breaker state as the `[state]` store shares it (read
    /// from Redis when there is one), when the route has a breaker.
    pub async fn breaker_state_shared(&self) -> Option<BreakerState> {
        match &self.breaker {
            Some(breaker) => Some(breaker.state_shared().await),
            None => None,
        }
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
    let client_options = provider_options(settings, model.provider(), &options.client).retry(None);
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
        let tiers = route.tier_list();
        let mut providers = Vec::with_capacity(route.targets.len());
        for (t, tier) in tiers.iter().enumerate() {
            for (i, spec) in tier.targets.iter().enumerate() {
                let field = if route.tiers.is_empty() {
                    format!("routes.{alias}.targets[{i}]")
                } else {
                    format!("routes.{alias}.tiers[{t}].targets[{i}]")
                };
                let client = build_provider(settings, spec, options).map_err(|e| {
                    let fix = e
                        .fix()
                        .unwrap_or("check the provider's settings")
                        .to_owned();
                    Error::config(
                        format!("config: `{field}` = `{spec}`: {}", e.message()),
                        fix,
                    )
                })?;
                providers.push(client);
            }
        }
        let built = assemble_with(alias, route, providers, options.state.as_ref())?;
        routes.insert(alias.clone(), built);
    }
    Ok(routes)
}

/// Builds a route for a `provider:model` a client asked for directly, with the
/// `[server.direct]` behaviours (and a budget of its own, when that table sets one).
///
/// # Errors
/// As [`DirectRoutes::build`].
pub fn build_direct(settings: &Settings, spec: &str, options: &BuildOptions) -> Result<BuiltRoute> {
    DirectRoutes::new(settings, options.clone())?.build(spec)
}

/// The longest direct `provider:model` name accepted, in bytes.
const MAX_DIRECT_MODEL_LEN: usize = 256;

/// Builds routes for `provider:model` names asked for directly, each governed by the
/// `[server.direct]` table, with one budget shared by all of them, so that naming a new
/// model never starts a fresh budget.
///
/// Names are checked ([`DirectRoutes::check`]) before anything is built: only providers
/// in `server.direct_providers` (every known provider when absent), and names without
/// whitespace or control characters, at most 256 bytes.
#[derive(Clone, Debug)]
pub struct DirectRoutes {
    settings: Settings,
    options: BuildOptions,
    allowed: Vec<String>,
    budget: Option<Budget>,
}

impl DirectRoutes {
    /// Prepares direct routes from `settings` (the budget is built here, once).
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when the `[server.direct]` budget
    /// cannot be built.
    pub fn new(settings: &Settings, options: BuildOptions) -> Result<DirectRoutes> {
        let allowed = match &settings.server.direct_providers {
            Some(list) => list.clone(),
            None => crate::providers::known_providers()
                .into_iter()
                .map(str::to_owned)
                .collect(),
        };
        let budget = match &settings.server.direct {
            Some(direct) => budget_of(&direct.route_for("direct:direct"))?,
            None => None,
        };
        Ok(DirectRoutes {
            settings: settings.clone(),
            options,
            allowed,
            budget,
        })
    }

    /// Returns the providers a direct model may name.
    pub fn providers(&self) -> &[String] {
        &self.allowed
    }

    /// Checks that `spec` is a `provider:model` this gateway may serve directly, without
    /// building anything.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) naming what is
    /// wrong: not `provider:model`, a provider not allowed, or a malformed model name.
    pub fn check(&self, spec: &str) -> Result<()> {
        if spec.len() > MAX_DIRECT_MODEL_LEN
            || spec.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::invalid_request(
                "the model name is too long or holds spaces or control characters",
                format!("send `provider:model` with the provider's model id, at most {MAX_DIRECT_MODEL_LEN} bytes"),
            ));
        }
        let model = match spec.split_once(':') {
            Some((p, m)) if !p.is_empty() && !m.is_empty() => ModelRef::parse(spec)?,
            _ => {
                return Err(Error::invalid_request(
                    format!("`{spec}` is not `provider:model`"),
                    "write it as `provider:model`, e.g. `openai:gpt-4o-mini`",
                ))
            }
        };
        if !self.allowed.iter().any(|p| p == model.provider()) {
            return Err(Error::invalid_request(
                format!(
                    "`{}` is not a provider direct models may name here",
                    model.provider()
                ),
                format!("name one of: {}", self.allowed.join(", ")),
            ));
        }
        Ok(())
    }

    /// Builds the route for `spec`: [`check`](DirectRoutes::check), then the provider
    /// client inside the `[server.direct]` behaviours.
    ///
    /// # Errors
    /// As [`check`](DirectRoutes::check), and as [`build_provider`] (a missing key names
    /// the variable to set).
    pub fn build(&self, spec: &str) -> Result<BuiltRoute> {
        self.check(spec)?;
        let client = build_provider(&self.settings, spec, &self.options)?;
        let route = match &self.settings.server.direct {
            Some(direct) => direct.route_for(spec),
            None => RouteSettings::default(),
        };
        assemble_parts(
            spec,
            &route,
            vec![client],
            self.options.state.as_ref(),
            self.budget.clone(),
        )
    }
}

/// Assembles a route from provider clients built elsewhere (tests, embedders): the route's
/// per-target wrappers around each, then the fallback chain or hedge, then the deadline.
///
/// # Errors
/// [`ErrorKind::Config`](crate::ErrorKind::Config) when `providers` is empty or a budget
/// cannot be built.
pub fn assemble(
    alias: &str,
    route: &RouteSettings,
    providers: Vec<DynClient>,
) -> Result<BuiltRoute> {
    assemble_with(alias, route, providers, None)
}

/// Like [`assemble`], with the breakers keeping their state in `state` (when given) under
/// the key `<alias>/<provider:model>`, so every process building the same route from the
/// same settings shares each target's breaker.
///
/// # Errors
/// As [`assemble`].
pub fn assemble_with(
    alias: &str,
    route: &RouteSettings,
    providers: Vec<DynClient>,
    state: Option<&Arc<dyn StateStore>>,
) -> Result<BuiltRoute> {
    assemble_parts(alias, route, providers, state, budget_of(route)?)
}

/// Builds the route's budget, when it has one.
fn budget_of(route: &RouteSettings) -> Result<Option<Budget>> {
    let Some(b) = &route.budget else {
        return Ok(None);
    };
    let mut builder = Budget::builder();
    if let Some(usd) = b.max_cost_usd {
        builder = builder.max_cost_usd(usd);
    }
    if let Some(tokens) = b.max_tokens {
        builder = builder.max_tokens(tokens);
    }
    if let Some(trials) = b.max_trials {
        builder = builder.max_trials(trials);
    }
    Ok(Some(builder.build()?))
}

/// Assembles a route around `providers` with a budget built by the caller (shared, for
/// direct routes).
fn assemble_parts(
    alias: &str,
    route: &RouteSettings,
    providers: Vec<DynClient>,
    state: Option<&Arc<dyn StateStore>>,
    budget: Option<Budget>,
) -> Result<BuiltRoute> {
    if providers.is_empty() {
        return Err(Error::config(
            format!("config: route `{alias}` has no targets"),
            "list at least one `provider:model` target",
        ));
    }
    let targets: Vec<BuiltTarget> = providers
        .into_iter()
        .map(|provider| target_stack(alias, route, budget.as_ref(), state, provider))
        .collect();
    let clients: Vec<DynClient> = targets.iter().map(|t| t.client.clone()).collect();
    let point = route.commit_point.unwrap_or_default();
    let mut session_header = None;
    let chain: DynClient = if route.is_balanced() {
        let balanced = balanced(alias, route, clients, state)?;
        session_header = balanced
            .affinity()
            .and_then(Affinity::session_header)
            .map(str::to_owned);
        Arc::new(balanced)
    } else {
        match &route.hedge {
            Some(hedge) => Arc::new(HedgedClient::new(
                clients,
                hedge_policy(hedge).with_commit_point(point),
            )?),
            None => Arc::new(
                FallbackClient::builder()
                    .clients(clients)
                    .when_all_open(AllOpen::FailFast)
                    .commit_point(point)
                    .continuation(route.continuation)
                    .build()?,
            ),
        }
    };
    let client: DynClient = match route.deadline_ms {
        Some(ms) => Arc::new(DeadlineClient::new(chain, Duration::from_millis(ms))),
        None => chain,
    };
    Ok(BuiltRoute {
        alias: alias.to_owned(),
        client,
        targets,
        session_header,
    })
}

/// The hedge policy of a route's `hedge` table.
fn hedge_policy(hedge: &HedgeSettings) -> HedgePolicy {
    match (hedge.delay_ms, hedge.percentile) {
        (_, Some(p)) => HedgePolicy::learned(p),
        (Some(ms), None) => HedgePolicy::fixed(Duration::from_millis(ms)),
        (None, None) => HedgePolicy::fixed(Duration::from_millis(500)),
    }
}

/// Joins a route's target stacks into a [`BalancedClient`]: its tiers and strategies, the
/// chain's settings (fail fast when every breaker is open, commit point, continuation,
/// hedge), and affinity with pins shared through `state` under the route's alias.
fn balanced(
    alias: &str,
    route: &RouteSettings,
    clients: Vec<DynClient>,
    state: Option<&Arc<dyn StateStore>>,
) -> Result<BalancedClient> {
    let tiers = route.tier_list();
    let mut clients = clients.into_iter();
    let mut builder = BalancedClient::builder()
        .when_all_open(AllOpen::FailFast)
        .commit_point(route.commit_point.unwrap_or_default())
        .continuation(route.continuation);
    if tiers.len() > 1 || clients.len() == tiers[0].targets.len() {
        let total: usize = tiers.iter().map(|t| t.targets.len()).sum();
        if total != clients.len() {
            return Err(Error::config(
                format!(
                    "config: route `{alias}` has {} clients for {total} targets in its tiers",
                    clients.len()
                ),
                "pass one client per target of every tier, in tier order",
            ));
        }
        for tier in &tiers {
            let mut built = Tier::new(clients.by_ref().take(tier.targets.len()).collect())
                .strategy(tier.strategy.unwrap_or_default());
            if let Some(weights) = &tier.weights {
                built = built.weights(weights.iter().copied());
            }
            builder = builder.tier(built);
        }
    } else {
        // Prebuilt clients for a one-tier route whose `targets` were not written.
        let mut built =
            Tier::new(clients.collect()).strategy(tiers[0].strategy.unwrap_or_default());
        if let Some(weights) = &tiers[0].weights {
            built = built.weights(weights.iter().copied());
        }
        builder = builder.tier(built);
    }
    if let Some(hedge) = &route.hedge {
        builder = builder.hedge(hedge_policy(hedge));
    }
    if let Some(settings) = &route.affinity {
        let mut affinity = Affinity::new(settings.parsed_keys()?)
            .with_ttl(Duration::from_millis(settings.ttl_ms))
            .with_scope(alias);
        if let Some(store) = state {
            affinity = affinity.with_store(Arc::clone(store));
        }
        builder = builder.affinity(affinity);
    }
    builder.build().map_err(|e| {
        let fix = e.fix().unwrap_or("see docs/routing.md").to_owned();
        Error::config(format!("config: route `{alias}`: {}", e.message()), fix)
    })
}

/// Wraps one provider client in the route's per-target behaviours, innermost first.
fn target_stack(
    alias: &str,
    route: &RouteSettings,
    budget: Option<&Budget>,
    state: Option<&Arc<dyn StateStore>>,
    provider: DynClient,
) -> BuiltTarget {
    let spec = provider.info().to_string();
    let mut client = provider;
    let stream_only = route
        .first_token_timeout_ms
        .or(route.stream_idle_timeout_ms)
        .map(|_| 600_000);
    if let Some(ms) = route.timeout_ms.or(stream_only) {
        let mut timeouts = Timeouts::attempt(Duration::from_millis(ms));
        if let Some(first) = route.first_token_timeout_ms {
            timeouts = timeouts.with_first_token(Duration::from_millis(first));
        }
        if let Some(idle) = route.stream_idle_timeout_ms {
            timeouts = timeouts.with_idle(Duration::from_millis(idle));
        }
        client = Arc::new(TimeoutClient::new(client, timeouts));
    }
    if let Some(budget) = budget {
        client = Arc::new(BudgetClient::new(client, budget.clone()));
    }
    // Inside the retry loop, so a requested wait is recorded as soon as it is asked for.
    let mut cooldown = CooldownClient::new(client).with_key(format!("cooldown/{alias}/{spec}"));
    if let Some(store) = state {
        cooldown = cooldown.with_store(Arc::clone(store));
    }
    client = Arc::new(cooldown);
    if let Some(retry) = &route.retry {
        let policy = RetryPolicy::default()
            .with_max_retries(retry.max_retries)
            .with_base_delay(Duration::from_millis(retry.base_delay_ms))
            .with_max_delay(Duration::from_millis(retry.max_delay_ms))
            .with_max_retry_after(Duration::from_millis(retry.max_retry_after_ms))
            .with_commit_point(route.commit_point.unwrap_or_default());
        client = Arc::new(RetryClient::new(client, policy));
    }
    let mut breaker = None;
    if let Some(b) = &route.breaker {
        let mut config = BreakerConfig::default()
            .with_consecutive_failures(b.consecutive_failures)
            .with_cooldown(Duration::from_millis(b.cooldown_ms));
        config = config.with_max_cooldown(Duration::from_millis(
            b.max_cooldown_ms.unwrap_or(b.cooldown_ms),
        ));
        let mut wrapped = CircuitBreakerClient::new(client, config);
        if let Some(store) = state {
            wrapped = wrapped
                .with_store(Arc::clone(store))
                .with_key(format!("{alias}/{spec}"));
        }
        breaker = Some(wrapped.clone());
        client = Arc::new(wrapped);
    }
    BuiltTarget {
        spec,
        client,
        breaker,
    }
}

/// Builds the store named by the `[state]` table, reading the Redis URL from the variable
/// it names through `env`; `None` without a `[state]` table. No connection is made here:
/// check reachability with [`StateStore::check`].
///
/// # Errors
/// [`ErrorKind::Config`](crate::ErrorKind::Config) when the variable is not set, the URL is
/// not a Redis URL (the message shows it with the password redacted), or this build has no
/// `redis` feature.
pub fn state_store(
    settings: &Settings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Arc<dyn StateStore>>> {
    let Some(state) = &settings.state else {
        return Ok(None);
    };
    let var = &state.redis_url_env;
    let Some(url) = env(var).filter(|url| !url.is_empty()) else {
        return Err(Error::config(
            format!("config: `state.redis_url_env` names `{var}`, which is not set"),
            format!("export {var}=redis://[:password@]host:port/db, or remove `[state]`"),
        )
        .with_code("state.redis_url_env"));
    };
    redis_store(state, &url)
}

#[cfg(feature = "redis")]
fn redis_store(state: &super::StateSettings, url: &str) -> Result<Option<Arc<dyn StateStore>>> {
    let store = crate::state::redis::RedisStore::builder(url)
        .key_prefix(state.key_prefix.clone())
        .ttl(Duration::from_millis(state.ttl_ms))
        .timeout(Duration::from_millis(state.timeout_ms))
        .build()
        .map_err(|e| {
            Error::config(
                format!(
                    "config: the URL in `state.redis_url_env` ({}): {}",
                    state.redis_url_env,
                    e.message()
                ),
                e.fix()
                    .unwrap_or("write it as redis://[:password@]host:port/db"),
            )
            .with_code("state.redis_url_env")
        })?;
    Ok(Some(Arc::new(store)))
}

#[cfg(not(feature = "redis"))]
fn redis_store(state: &super::StateSettings, _url: &str) -> Result<Option<Arc<dyn StateStore>>> {
    Err(Error::config(
        format!(
            "config: `[state]` (`state.redis_url_env` = `{}`) needs Redis support, which this build lacks",
            state.redis_url_env
        ),
        "use the `switchboard` binary (it has it), build with `--features redis`, or remove `[state]`",
    ))
}

/// Names the settings of `route` that this build parses and validates but does not apply.
/// Every route setting is applied by this version, so the list is empty; it stays so that
/// callers (the CLI's `config` command) can report settings a build does not support.
pub fn pending_settings(route: &RouteSettings) -> Vec<&'static str> {
    let _ = route;
    Vec::new()
}

#[allow(dead_code)]
fn _assert_impls() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<BuildOptions>();
    send_sync::<BuiltRoute>();
    let _ = |c: &dyn ChatClient| c.info().clone();
}
