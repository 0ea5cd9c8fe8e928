//! The chaos soak: 100,000 requests through a three-target resilience stack over fault
//! providers with 30 % random faults, against a fault-free direct baseline.
//!
//! ```text
//! cargo run --release -p switchboard-testkit --bin chaos-soak -- [--requests N] [--concurrency N]
//!     [--fault-rate F] [--seed S] [--tokens N] [--limit-ms MS] [--stream-share F]
//! ```
//!
//! Prints the report and exits with status 1 if any request was lost, panicked, or succeeded
//! with a truncated answer. See `switchboard_testkit::soak` for the stack and the counters.

use std::process::ExitCode;
use std::time::Duration;

use switchboard_testkit::soak::{self, SoakConfig};

fn parse(args: &[String]) -> Result<SoakConfig, String> {
    let mut config = SoakConfig::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--requests" => config.requests = value.parse().map_err(|e| bad(&e))?,
            "--concurrency" => config.concurrency = value.parse().map_err(|e| bad(&e))?,
            "--fault-rate" => config.fault_rate = value.parse().map_err(|e| bad(&e))?,
            "--seed" => config.seed = value.parse().map_err(|e| bad(&e))?,
            "--tokens" => config.tokens = value.parse().map_err(|e| bad(&e))?,
            "--limit-ms" => {
                config.limit = Duration::from_millis(value.parse().map_err(|e| bad(&e))?)
            }
            "--stream-share" => config.stream_share = value.parse().map_err(|e| bad(&e))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(config)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match parse(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("chaos-soak: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chaos-soak: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "chaos soak: {} requests, {} in flight, {:.0}% faults, seed {}, {} tokens, limit {} ms, {:.0}% streamed",
        config.requests,
        config.concurrency,
        config.fault_rate * 100.0,
        config.seed,
        config.tokens,
        config.limit.as_millis(),
        config.stream_share * 100.0
    );
    match runtime.block_on(soak::run(&config)) {
        Ok(report) => {
            print!("{report}");
            if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                eprintln!("chaos-soak: some requests did not end in one answer or one typed error");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("chaos-soak: {e}");
            ExitCode::from(2)
        }
    }
}
