//! Builds the default wrapper stack by hand, offline, and shows what each layer did.
//!
//! Outermost first: an `InstrumentedClient` counting everything, a `DeadlineClient` giving
//! the whole call one deadline, then a `FallbackClient` over two targets, each wrapped as
//! circuit breaker → retry → budget → concurrency limit → per-attempt timeout. The primary
//! is a `FunctionClient` that fails twice with a 503 and then answers; the backup answers
//! at once. The retry wrapper absorbs the primary's failures, so the primary answers.
//!
//! Run it (no key needed):
//!
//! ```text
//! cargo run --example compose-stack
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use switchboard::{
    BreakerConfig, Budget, ChatClient, ChatClientExt, ChatRequest, ChatResponse, DynClient, Error,
    FallbackClient, FunctionClient, RetryPolicy, Usage,
};

/// Wraps one target the way the default stack does.
fn target(client: FunctionClient, budget: &Budget) -> DynClient {
    client
        .with_timeout(Duration::from_secs(30))
        .with_concurrency_limit(8)
        .with_budget(budget.clone())
        .with_retry(RetryPolicy::default().with_base_delay(Duration::from_millis(10)))
        .with_circuit_breaker(BreakerConfig::default())
        .boxed()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let failures = Arc::new(AtomicUsize::new(0));
    let seen = failures.clone();
    let primary = FunctionClient::builder("gpt-4o-mini")
        .provider("openai")
        .respond(move |_req: &ChatRequest| {
            if seen.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(Error::from_status("openai", 503, "temporarily unavailable"))
            } else {
                Ok(
                    ChatResponse::from_text("answered by the primary after two retries")
                        .with_usage(Usage::new(12, 9)),
                )
            }
        })
        .build();
    let backup = FunctionClient::builder("claude-haiku-4-5")
        .provider("anthropic")
        .respond(|_req: &ChatRequest| {
            Ok(ChatResponse::from_text("answered by the backup").with_usage(Usage::new(12, 5)))
        })
        .build();

    // One budget shared by both targets: $1 and at most 10 attempts across the chain.
    let budget = match Budget::builder().max_cost_usd(1.0).max_trials(10).build() {
        Ok(budget) => budget,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let chain = match FallbackClient::new(vec![
        target(primary.clone(), &budget),
        target(backup.clone(), &budget),
    ]) {
        Ok(chain) => chain,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let client = chain.with_deadline(Duration::from_secs(60)).instrumented();

    let response = match client.chat(&ChatRequest::user("hello")).await {
        Ok(response) => response,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("answer: {:?}", response.text());
    for attempt in response.attempts() {
        println!(
            "attempt: {}:{} {} status={:?}",
            attempt.provider,
            attempt.model,
            attempt.outcome.as_str(),
            attempt.status
        );
    }
    let totals = client.totals();
    println!(
        "totals: requests={} attempts={} input_tokens={} output_tokens={} cost={}",
        totals.requests, totals.attempts, totals.input_tokens, totals.output_tokens, totals.cost
    );
    println!(
        "budget: spent={} trials={}",
        budget.spent(),
        budget.trials()
    );
    println!(
        "calls: primary={} backup={}",
        primary.calls(),
        backup.calls()
    );
    if primary.calls() == 3 && backup.calls() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
