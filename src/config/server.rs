//! Checks of the `[server]` table's connection limits and direct-model settings.

use super::{bad, validate_route_at, ServerSettings};
use crate::error::{Error, Result};

/// The longest any connection timeout may be set to: ten minutes.
const MAX_TIMEOUT_MS: u64 = 600_000;

/// Checks the connection limits and the direct-model settings of `[server]`.
pub(super) fn validate(server: &ServerSettings, known: &[&str]) -> Result<()> {
    for (field, value, example) in [
        (
            "server.header_read_timeout_ms",
            server.header_read_timeout_ms,
            "10000",
        ),
        (
            "server.body_read_timeout_ms",
            server.body_read_timeout_ms,
            "30000",
        ),
        ("server.idle_timeout_ms", server.idle_timeout_ms, "60000"),
    ] {
        if value == 0 || value > MAX_TIMEOUT_MS {
            return Err(bad(
                field,
                &value.to_string(),
                &format!("give 1 to {MAX_TIMEOUT_MS} ms, e.g. {example}"),
            ));
        }
    }
    if server.max_connections == 0 || server.max_connections > 1_000_000 {
        return Err(bad(
            "server.max_connections",
            &server.max_connections.to_string(),
            "give 1 to 1000000, and keep it below the process's open-file limit (`ulimit -n`), e.g. 512",
        ));
    }
    if let Some(providers) = &server.direct_providers {
        if !server.allow_direct_models {
            return Err(Error::config(
                "config: `server.direct_providers` is set, but `server.allow_direct_models` is false, so no direct model is served",
                "set `allow_direct_models = true` to serve them, or remove `direct_providers`",
            )
            .with_code("server.direct_providers"));
        }
        if providers.is_empty() {
            return Err(Error::config(
                "config: `server.direct_providers` is empty",
                "list the providers direct models may name, or set `allow_direct_models = false` to allow none",
            )
            .with_code("server.direct_providers"));
        }
        for (i, name) in providers.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                return Err(Error::config(
                    format!("config: `server.direct_providers[{i}]` = `{name}` is not a provider Switchboard knows"),
                    format!("use one of: {}", known.join(", ")),
                )
                .with_code(format!("server.direct_providers[{i}]")));
            }
        }
    }
    if let Some(direct) = &server.direct {
        if !server.allow_direct_models {
            return Err(Error::config(
                "config: `[server.direct]` is set, but `server.allow_direct_models` is false, so it governs nothing",
                "set `allow_direct_models = true`, or remove the table",
            )
            .with_code("server.direct"));
        }
        // The placeholder target only lets the route checks run; each direct request
        // brings its own.
        validate_route_at("server.direct", &direct.route_for("openai:direct"), known)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Settings;

    fn refused(text: &str) -> String {
        Settings::from_toml_str(text).unwrap_err().to_string()
    }

    #[test]
    fn connection_limits_have_safe_defaults_and_refuse_zero() {
        let s = Settings::from_toml_str("").unwrap();
        assert_eq!(s.server.header_read_timeout_ms, 10_000);
        assert_eq!(s.server.body_read_timeout_ms, 30_000);
        assert_eq!(s.server.idle_timeout_ms, 60_000);
        assert_eq!(s.server.max_connections, 512);
        let e = refused("[server]\nheader_read_timeout_ms = 0\n");
        assert!(e.contains("server.header_read_timeout_ms"), "{e}");
        let e = refused("[server]\nmax_connections = 0\n");
        assert!(
            e.contains("server.max_connections") && e.contains("ulimit"),
            "{e}"
        );
    }

    #[test]
    fn direct_models_are_off_unless_asked_for() {
        let s = Settings::from_toml_str("").unwrap();
        assert!(!s.server.allow_direct_models);
        let e = refused("[server]\ndirect_providers = [\"openai\"]\n");
        assert!(e.contains("allow_direct_models"), "{e}");
        let e = refused("[server.direct]\ntimeout_ms = 1000\n");
        assert!(e.contains("allow_direct_models"), "{e}");
    }

    #[test]
    fn direct_providers_and_the_direct_table_are_checked_by_name() {
        let e = refused(
            "[server]\nallow_direct_models = true\ndirect_providers = [\"openai\", \"nope\"]\n",
        );
        assert!(e.contains("server.direct_providers[1]"), "{e}");
        let e = refused("[server]\nallow_direct_models = true\ndirect_providers = []\n");
        assert!(e.contains("is empty"), "{e}");
        let e = refused(
            "[server]\nallow_direct_models = true\n[server.direct]\nbudget = { max_tokens = 0 }\n",
        );
        assert!(e.contains("server.direct.budget"), "{e}");
        let e = refused("[server]\nallow_direct_models = true\n[server.direct]\ntargets = []\n");
        assert!(e.contains("unknown field `targets`"), "{e}");
        let s = Settings::from_toml_str(
            "[server]\nallow_direct_models = true\ndirect_providers = [\"openai\"]\n[server.direct]\ntimeout_ms = 500\nbudget = { max_cost_usd = 1.0 }\n",
        )
        .unwrap();
        let route = s.server.direct.unwrap().route_for("openai:gpt-4o");
        assert_eq!(route.targets, ["openai:gpt-4o"]);
        assert_eq!(route.timeout_ms, Some(500));
        assert!(route.budget.is_some());
    }
}
