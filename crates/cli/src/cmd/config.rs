//! `switchboard config`: the resolved gateway settings, with secrets redacted.
//!
//! Keys never appear in the file; this command shows, for each variable the settings name,
//! whether it is set — never its value.

use clap::Args;
use serde_json::{json, Value};
use switchboard::config::{build, Settings};
use switchboard::providers::key_status;
use switchboard::ClientOptions;

use crate::output::{self, Table};

/// Arguments of `switchboard config`.
#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// The gateway's TOML config; without it, the defaults are shown.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<String>,
    /// Prints one JSON object.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: ConfigArgs) -> u8 {
    let settings = match &args.config {
        Some(path) => Settings::from_file(path),
        None => Ok(Settings::default()),
    };
    match settings {
        Ok(settings) => {
            let resolved = resolved(&settings);
            if args.json {
                output::say(resolved);
            } else {
                print_human(&resolved);
            }
            0
        }
        Err(err) => {
            output::print_error(&err, args.json);
            output::exit_code(&err)
        }
    }
}

fn is_set(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| !v.trim().is_empty())
}

/// The settings as JSON, defaults filled in, each secret variable shown as set or not.
pub(crate) fn resolved(settings: &Settings) -> Value {
    let mut value = serde_json::to_value(settings).unwrap_or(Value::Null);
    value["server"]["api_keys"] = settings
        .server
        .api_keys_env
        .iter()
        .map(|var| json!({"env": var, "set": is_set(var), "value": "<redacted>"}))
        .collect();
    let mut providers = serde_json::Map::new();
    let mut names: Vec<String> = settings.providers.keys().cloned().collect();
    for route in settings.routes.values() {
        for target in &route.targets {
            if let Some((p, _)) = target.split_once(':') {
                if !names.iter().any(|n| n == p) {
                    names.push(p.to_owned());
                }
            }
        }
    }
    for name in names {
        let options = build::provider_options(settings, &name, &ClientOptions::new());
        let table = settings.providers.get(&name).cloned().unwrap_or_default();
        let key = match key_status(&name, &options) {
            Ok(k) => {
                json!({"variables": k.variables, "set_in": k.found_in, "required": k.required, "value": "<redacted>"})
            }
            Err(e) => json!({"error": e.to_string()}),
        };
        providers.insert(
            name,
            json!({"base_url": table.base_url, "api_key_env": table.api_key_env, "key": key}),
        );
    }
    value["providers"] = Value::Object(providers);
    for (alias, route) in &settings.routes {
        let pending = build::pending_settings(route);
        value["routes"][alias]["not_applied"] = json!(pending);
    }
    if let Some(state) = &settings.state {
        let var = &state.redis_url_env;
        value["state"]["redis_url"] =
            json!({"env": var, "set": is_set(var), "value": "<redacted>"});
    }
    value
}

fn print_human(v: &Value) {
    let server = &v["server"];
    output::say("server");
    let mut t = Table::new(&["setting", "value"]);
    for key in [
        "host",
        "port",
        "max_body_bytes",
        "shutdown_grace_ms",
        "header_read_timeout_ms",
        "body_read_timeout_ms",
        "idle_timeout_ms",
        "max_connections",
        "allow_direct_models",
        "direct_providers",
    ] {
        t.row(vec![key.to_owned(), output::plain(&server[key])]);
    }
    let keys: Vec<String> = server["api_keys"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| {
            format!(
                "{} ({})",
                output::plain(&k["env"]),
                if k["set"] == true { "set" } else { "NOT SET" }
            )
        })
        .collect();
    t.row(vec![
        "api_keys_env".into(),
        if keys.is_empty() {
            "(none: loopback only)".into()
        } else {
            keys.join(", ")
        },
    ]);
    t.print();
    output::say("\nproviders");
    let mut t = Table::new(&["provider", "base_url", "key"]);
    for (name, p) in v["providers"].as_object().into_iter().flatten() {
        let key = match p["key"]["set_in"].as_str() {
            Some(var) => format!("set in {var}"),
            None if p["key"]["required"] == false => "not needed".to_owned(),
            None => format!(
                "missing: set {}",
                p["key"]["variables"]
                    .as_array()
                    .map(|a| a.iter().map(output::plain).collect::<Vec<_>>().join(" or "))
                    .unwrap_or_default()
            ),
        };
        t.row(vec![
            name.clone(),
            p["base_url"].as_str().unwrap_or("(default)").to_owned(),
            key,
        ]);
    }
    t.print();
    output::say("\nroutes");
    let mut t = Table::new(&["alias", "targets", "settings"]);
    for (alias, r) in v["routes"].as_object().into_iter().flatten() {
        let targets = r["targets"]
            .as_array()
            .map(|a| a.iter().map(output::plain).collect::<Vec<_>>().join(" → "))
            .unwrap_or_default();
        let settings: Vec<String> = r
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| *k != "targets" && *k != "not_applied")
            .map(|(k, v)| format!("{k}={}", output::plain(v)))
            .collect();
        t.row(vec![alias.clone(), targets, settings.join(" ")]);
    }
    t.print();
    let state = &v["state"];
    if state.is_object() {
        output::say("\nstate (breakers shared through Redis)");
        let mut t = Table::new(&["setting", "value"]);
        let url = &state["redis_url"];
        t.row(vec![
            "redis_url_env".into(),
            format!(
                "{} ({})",
                output::plain(&url["env"]),
                if url["set"] == true { "set" } else { "NOT SET" }
            ),
        ]);
        for key in ["key_prefix", "ttl_ms", "timeout_ms"] {
            t.row(vec![key.to_owned(), output::plain(&state[key])]);
        }
        t.print();
    }
}
