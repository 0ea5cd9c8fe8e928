//! `switchboard check`: are the keys there, and (with `--live`) does each provider answer?
//!
//! Without `--live` nothing leaves the machine: the command reports, per provider, which
//! environment variable holds its key (never the key). With `--live` it sends one tiny
//! request per provider (a route target's model from `--config`, else the provider's
//! cheapest priced model) and reports the outcome and latency. With `--config`, live checks
//! go through each route target's own stack, and every target's circuit breaker state is
//! reported: read from Redis when the config has a `[state]` table (so a breaker a running
//! gateway opened shows open here; the store's reachability is reported as `state`), else
//! as this process sees it (a running gateway shows its own at `/metrics`).

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use serde_json::{json, Value};
use switchboard::config::build::{self, BuildOptions, BuiltRoute};
use switchboard::config::{check, Settings};
use switchboard::state::StateStore;
use switchboard::{ChatClient, ChatRequest, ClientOptions, Error};

use crate::output::{self, Table};

/// Arguments of `switchboard check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Checks only this provider (repeatable); default: the config's providers, else all.
    #[arg(long = "provider", value_name = "PROVIDER")]
    providers: Vec<String>,
    /// Sends one tiny real request per provider (costs a few tokens).
    #[arg(long)]
    live: bool,
    /// A gateway config: its providers' key variables and base URLs, and its routes.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<String>,
    /// Prints one JSON object.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: CheckArgs) -> u8 {
    match check(&args).await {
        Ok((report, ok)) => {
            if args.json {
                output::say(report);
            } else {
                print_human(&report);
            }
            if ok {
                0
            } else {
                1
            }
        }
        Err(err) => {
            output::print_error(&err, args.json);
            output::exit_code(&err)
        }
    }
}

async fn check(args: &CheckArgs) -> Result<(Value, bool), Error> {
    let settings = match &args.config {
        Some(path) => Settings::from_file(path)?,
        None => Settings::default(),
    };
    let mut all_ok = true;
    let mut rows = Vec::new();
    let names = check::providers_to_check(&settings, &args.providers, args.config.is_some());
    let total = names.len();
    let reports = check::key_reports(&settings, &names, &ClientOptions::new())?;
    for (i, report) in reports.iter().enumerate() {
        let name = &report.provider;
        let mut row = serde_json::to_value(report).unwrap_or(Value::Null);
        if args.live && report.ok {
            if !args.json {
                eprintln!("[{}/{total}] asking {name}…", i + 1);
            }
            row["live"] = live(&settings, name).await;
            if row["live"]["ok"] != true {
                row["ok"] = json!(false);
            }
        }
        if row["ok"] != true {
            all_ok = false;
        }
        rows.push(row);
    }
    let mut breakers = Vec::new();
    let mut state = Value::Null;
    if args.config.is_some() {
        let (store, report) = shared_state(&settings).await;
        if report["ok"] == false {
            all_ok = false;
        }
        state = report;
        let options = BuildOptions {
            state: store,
            ..BuildOptions::default()
        };
        // Routes whose keys are missing cannot be built; their keys are reported above.
        if let Ok(routes) = build::build_routes(&settings, &options) {
            if args.live {
                for route in routes.values() {
                    probe_route(route).await;
                }
            }
            breakers = check::shared_breaker_reports(routes.values()).await;
        }
    }
    Ok((
        json!({"providers": rows, "breakers": breakers, "state": state, "ok": all_ok}),
        all_ok,
    ))
}

/// Opens the `[state]` store of `settings` and checks it answers: the store, when it does,
/// and the report (`null` without a `[state]` table; the URL is never shown).
async fn shared_state(settings: &Settings) -> (Option<Arc<dyn StateStore>>, Value) {
    let Some(table) = &settings.state else {
        return (None, Value::Null);
    };
    let var = table.redis_url_env.clone();
    let store = match build::state_store(settings, &|name| std::env::var(name).ok()) {
        Ok(Some(store)) => store,
        Ok(None) => return (None, Value::Null),
        Err(e) => {
            return (
                None,
                json!({"redis_url_env": var, "ok": false, "error": e.to_string()}),
            )
        }
    };
    match store.check().await {
        Ok(()) => (Some(store), json!({"redis_url_env": var, "ok": true})),
        Err(e) => (
            None,
            json!({"redis_url_env": var, "ok": false, "error": e.to_string()}),
        ),
    }
}

async fn live(settings: &Settings, provider: &str) -> Value {
    let Some(model) = check::live_model(settings, provider) else {
        return json!({"ok": false, "error": "no model known for this provider; name one in a route of --config"});
    };
    let spec = format!("{provider}:{model}");
    let client = match build::build_provider(settings, &spec, &BuildOptions::default()) {
        Ok(c) => c,
        Err(e) => return json!({"ok": false, "model": model, "error": e.to_string()}),
    };
    let started = Instant::now();
    let req = ChatRequest::user("Reply with the word ok.").with_max_tokens(16);
    match client.chat(&req).await {
        Ok(r) => {
            json!({"ok": true, "model": r.model_served(), "latency_ms": started.elapsed().as_millis() as u64})
        }
        Err(e) => {
            json!({"ok": false, "model": model, "error": e.to_string(), "kind": e.kind().as_str(), "status": e.status()})
        }
    }
}

/// Sends one tiny request to each target of a route, so its breaker sees the outcome.
async fn probe_route(route: &BuiltRoute) {
    let req = ChatRequest::user("Reply with the word ok.").with_max_tokens(16);
    for target in &route.targets {
        let _ = target.client.chat(&req).await;
    }
}

fn print_human(report: &Value) {
    let live = report["providers"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r.get("live").is_some());
    let mut header = vec!["provider", "key"];
    if live {
        header.push("live");
    }
    let mut t = Table::new(&header);
    for row in report["providers"].as_array().into_iter().flatten() {
        let key = match row["key"]["set_in"].as_str() {
            Some(var) => format!("ok ({var})"),
            None if row["key"]["required"] == false => "not needed".to_owned(),
            None => format!(
                "MISSING: set {}",
                row["key"]["variables"]
                    .as_array()
                    .map(|a| a.iter().map(output::plain).collect::<Vec<_>>().join(" or "))
                    .unwrap_or_default()
            ),
        };
        let mut cells = vec![output::plain(&row["provider"]), key];
        if live {
            cells.push(match row.get("live") {
                None => "-".to_owned(),
                Some(l) if l["ok"] == true => format!(
                    "ok {} in {} ms",
                    output::plain(&l["model"]),
                    output::plain(&l["latency_ms"])
                ),
                Some(l) => format!("FAILED: {}", output::plain(&l["error"])),
            });
        }
        t.row(cells);
    }
    t.print();
    let state = &report["state"];
    if state.is_object() {
        output::say("");
        let line = if state["ok"] == true {
            format!(
                "state: Redis (from {}) answers; breakers below are the shared ones",
                output::plain(&state["redis_url_env"])
            )
        } else {
            format!("state: FAILED: {}", output::plain(&state["error"]))
        };
        output::say(line);
    }
    let breakers = report["breakers"].as_array().cloned().unwrap_or_default();
    if !breakers.is_empty() {
        output::say("");
        let mut t = Table::new(&["route", "target", "breaker"]);
        for b in breakers {
            t.row(vec![
                output::plain(&b["route"]),
                output::plain(&b["target"]),
                output::plain(&b["state"]),
            ]);
        }
        t.print();
    }
}
