//! Which client a tool call goes to: a route alias from the config (its failover stack, as
//! the gateway builds it), or a `provider:model` asked for directly.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use switchboard::config::build::{self, BuildOptions, BuiltRoute};
use switchboard::config::Settings;
use switchboard::{
    create_client_with, ClientOptions, DynClient, Error, ErrorKind, ModelRef, Result,
};

/// Reads an environment variable.
pub(crate) type EnvFn = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What a call asked for, once named.
enum Asked {
    Route(Arc<BuiltRoute>),
    Direct(String),
}

/// A chosen client and the name it was asked by.
pub(crate) struct Chosen {
    /// The alias or `provider:model` asked for.
    pub(crate) asked: String,
    /// The stack to send to.
    pub(crate) client: DynClient,
}

/// The routes and the direct-model cache.
pub(crate) struct Targets {
    settings: Option<Settings>,
    routes: BTreeMap<String, Arc<BuiltRoute>>,
    options: BuildOptions,
    direct: Mutex<HashMap<String, DynClient>>,
}

impl Targets {
    /// Builds every route of `settings` (none without a config), reading keys through `env`.
    pub(crate) fn new(settings: Option<Settings>, env: EnvFn) -> Result<Targets> {
        // The `[state]` table shares breakers with gateways using the same Redis.
        let state = match &settings {
            Some(s) => build::state_store(s, &|name| env(name))?,
            None => None,
        };
        let options = BuildOptions {
            client: ClientOptions::new().env(move |name| env(name)),
            around_provider: None,
            state,
        };
        let routes = match &settings {
            Some(s) => {
                s.validate()?;
                build::build_routes(s, &options)?
                    .into_iter()
                    .map(|(alias, route)| (alias, Arc::new(route)))
                    .collect()
            }
            None => BTreeMap::new(),
        };
        Ok(Targets {
            settings,
            routes,
            options,
            direct: Mutex::new(HashMap::new()),
        })
    }

    /// Returns the settings (defaults when the server runs without a config).
    pub(crate) fn settings(&self) -> Settings {
        self.settings.clone().unwrap_or_default()
    }

    /// Says whether the server was given a config.
    pub(crate) fn has_config(&self) -> bool {
        self.settings.is_some()
    }

    /// Returns the options clients are built with (the environment reader).
    pub(crate) fn client_options(&self) -> &ClientOptions {
        &self.options.client
    }

    /// Returns the routes, by alias.
    pub(crate) fn routes(&self) -> impl Iterator<Item = &BuiltRoute> {
        self.routes.values().map(|r| r.as_ref())
    }

    /// Returns the route aliases, sorted.
    pub(crate) fn aliases(&self) -> Vec<String> {
        self.routes.keys().cloned().collect()
    }

    fn known_aliases(&self) -> String {
        if self.routes.is_empty() {
            "no routes are configured".to_owned()
        } else {
            format!("the routes are: {}", self.aliases().join(", "))
        }
    }

    fn name(&self, model: Option<&str>, route: Option<&str>) -> Result<Asked> {
        let invalid = |message: String, fix: String| {
            Error::new(ErrorKind::InvalidRequest, message).with_fix(fix)
        };
        match (model, route) {
            (Some(_), Some(_)) => Err(invalid(
                "both `model` and `route` are given".to_owned(),
                "give one: `model` as provider:model, or `route` as a configured alias".to_owned(),
            )),
            (None, Some(alias)) => self
                .routes
                .get(alias)
                .cloned()
                .map(Asked::Route)
                .ok_or_else(|| {
                    invalid(
                        format!("there is no route `{alias}`; {}", self.known_aliases()),
                        "name a configured route, or pass `model` as provider:model".to_owned(),
                    )
                }),
            (Some(name), None) => self.name_model(name),
            (None, None) => Err(invalid(
                "no model given, and the server has no default model".to_owned(),
                format!(
                    "pass `model` as provider:model (e.g. openai:gpt-4o-mini) or `route`, or start the server with --model; {}",
                    self.known_aliases()
                ),
            )),
        }
    }

    fn name_model(&self, name: &str) -> Result<Asked> {
        if let Some(route) = self.routes.get(name) {
            return Ok(Asked::Route(Arc::clone(route)));
        }
        if !name.contains(':') {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "`{name}` is neither a route nor provider:model; {}",
                    self.known_aliases()
                ),
            )
            .with_fix("write the model as provider:model, e.g. openai:gpt-4o-mini"));
        }
        if self
            .settings
            .as_ref()
            .is_some_and(|s| !s.server.allow_direct_models)
        {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "`{name}` is not a route, and direct provider:model calls are turned off; {}",
                    self.known_aliases()
                ),
            )
            .with_fix(
                "ask for a route, or set `server.allow_direct_models = true` in the config",
            ));
        }
        ModelRef::parse(name)?;
        Ok(Asked::Direct(name.to_owned()))
    }

    /// Returns the client for a call's `model` or `route`.
    ///
    /// A `provider:model` gets the default stack without a config (as `create_client` builds
    /// it) and the bare provider with one (as the gateway serves direct models); each is
    /// built once and kept, so its connection pool is reused.
    pub(crate) fn client(&self, model: Option<&str>, route: Option<&str>) -> Result<Chosen> {
        match self.name(model, route)? {
            Asked::Route(route) => Ok(Chosen {
                asked: route.alias.clone(),
                client: route.client.clone(),
            }),
            Asked::Direct(spec) => {
                let mut cache = self.direct.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(client) = cache.get(&spec) {
                    return Ok(Chosen {
                        asked: spec,
                        client: client.clone(),
                    });
                }
                let client = match &self.settings {
                    Some(settings) => build::build_direct(settings, &spec, &self.options)?.client,
                    None => create_client_with(&spec, &self.options.client)?,
                };
                cache.insert(spec.clone(), client.clone());
                Ok(Chosen {
                    asked: spec,
                    client,
                })
            }
        }
    }

    /// Returns what a call would be sent to, without building a client (no key needed):
    /// the name asked for and each target as `provider:model`, in order.
    pub(crate) fn specs(
        &self,
        model: Option<&str>,
        route: Option<&str>,
    ) -> Result<(String, Vec<ModelRef>)> {
        match self.name(model, route)? {
            Asked::Route(route) => Ok((
                route.alias.clone(),
                route
                    .targets
                    .iter()
                    .map(|t| ModelRef::new(t.info().provider(), t.info().model()))
                    .collect(),
            )),
            Asked::Direct(spec) => {
                let parsed = ModelRef::parse(&spec)?;
                Ok((spec, vec![parsed]))
            }
        }
    }
}
