//! A short chaos soak in CI: a few thousand requests through the three-target stack over
//! fault providers with 30 % random faults. Every request must end in exactly one complete
//! answer or one typed error: nothing lost, no panic, no truncated success.
//!
//! The full run (100,000 requests) is the `chaos-soak` binary; see `BENCHMARKS.md`.

use std::time::Duration;

use switchboard_testkit::soak::{self, SoakConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_ends_in_one_answer_or_one_typed_error() {
    let config = SoakConfig {
        // A debug build on a shared 2-core machine: few in flight and a longer limit, so
        // healthy answers are not slowed into the limit.
        requests: 1_500,
        concurrency: 4,
        limit: Duration::from_millis(150),
        ..SoakConfig::default()
    };
    let report = soak::run(&config).await.expect("soak");
    println!("{report}");
    assert_eq!(report.lost, 0, "{report}");
    assert_eq!(report.panics, 0, "{report}");
    assert_eq!(report.truncated, 0, "{report}");
    assert_eq!(
        report.answered + report.error_count(),
        config.requests,
        "{report}"
    );
    assert!(report.is_clean());
    // The faults really happened, of every kind, and the stack still answered most calls.
    let injected: usize = report
        .faults
        .iter()
        .filter(|(name, _)| **name != "healthy")
        .map(|(_, n)| n)
        .sum();
    assert!(
        report.faults.len() >= 15,
        "every fault kind and healthy: {report}"
    );
    assert!(
        injected * 5 >= report.upstream.iter().sum::<usize>(),
        "{report}"
    );
    assert!(report.answered * 100 >= config.requests * 85, "{report}");
}
