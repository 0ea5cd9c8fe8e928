//! Logging for the long-running commands (`serve`, `mcp`): a `tracing` subscriber that
//! writes to standard error, as text or as one JSON object per line.
//!
//! The filter comes from `--log-level` or, failing that, `SWITCHBOARD_LOG` (default
//! `info`). A level alone (`debug`) applies to Switchboard's own crates while other
//! libraries stay at `warn`, because some of them log whole protocol messages at `debug`;
//! anything else is taken as `tracing-subscriber` filter directives, as written
//! (`info,switchboard_gateway::access=warn`, `trace,hyper_util=debug`).
//! Standard output stays clean: it carries the bound address, or the MCP protocol.

use clap::{Args, ValueEnum};
use switchboard::{Error, ErrorKind};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};

/// The crates whose events a bare level applies to.
const OWN_CRATES: [&str; 4] = [
    "switchboard",
    "switchboard_gateway",
    "switchboard_mcp",
    "switchboard_cli",
];

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines: time, level, target, message, then `field=value` pairs.
    Text,
    /// One JSON object per line, the event's fields at the top level.
    Json,
}

/// The logging flags shared by the long-running commands.
#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// What to log on standard error: a level (error, warn, info, debug, trace) or filter
    /// directives such as `info,switchboard_gateway::access=warn`.
    #[arg(
        long,
        env = "SWITCHBOARD_LOG",
        default_value = "info",
        value_name = "FILTER"
    )]
    log_level: String,
    /// How log lines look: `text` for people, `json` for log collectors.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    log_format: LogFormat,
}

impl LogArgs {
    /// Installs the subscriber for the rest of the process.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the filter does not parse.
    pub(crate) fn init(&self) -> Result<(), Error> {
        let filter = filter(&self.log_level)?;
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        // A subscriber installed earlier (none is, in this binary) is kept.
        let _ = match self.log_format {
            LogFormat::Text => builder.try_init(),
            LogFormat::Json => builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .try_init(),
        };
        Ok(())
    }
}

/// Parses `--log-level`/`SWITCHBOARD_LOG` into a filter.
fn filter(spec: &str) -> Result<EnvFilter, Error> {
    let spec = spec.trim();
    let directives = match spec.parse::<LevelFilter>() {
        Ok(level) => {
            let mut d = format!("{}", LevelFilter::WARN.min(level));
            for name in OWN_CRATES {
                d.push_str(&format!(",{name}={level}"));
            }
            d
        }
        Err(_) => spec.to_owned(),
    };
    EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse(&directives)
        .map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("--log-level (or SWITCHBOARD_LOG) `{spec}` is not a log filter: {e}"),
            )
            .with_fix("give a level (error, warn, info, debug, trace) or directives such as `info,switchboard_gateway::access=warn`")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_level_applies_to_own_crates_and_keeps_others_at_warn() {
        let f = filter("debug").unwrap().to_string();
        assert!(f.contains("switchboard_gateway=debug"), "{f}");
        assert!(f.contains("switchboard_mcp=debug"), "{f}");
        assert!(f.split(',').any(|d| d == "warn"), "{f}");
        let quiet = filter("error").unwrap().to_string();
        assert!(quiet.split(',').any(|d| d == "error"), "{quiet}");
    }

    #[test]
    fn directives_are_taken_as_written() {
        let f = filter("info,switchboard_gateway::access=warn")
            .unwrap()
            .to_string();
        assert!(f.contains("switchboard_gateway::access=warn"), "{f}");
        assert!(!f.contains("switchboard_mcp"), "{f}");
    }

    #[test]
    fn a_bad_filter_is_a_config_error_with_a_fix() {
        let err = filter("info,switchboard=loud").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.fix().unwrap_or_default().contains("trace"), "{err}");
    }
}
