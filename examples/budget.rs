//! Stops spending at a hard cap: a $0.10 budget refuses the call that would cross it.
//!
//! Every call through a `BudgetClient` first reserves its worst case — the estimated prompt
//! plus the request's `max_tokens` of output, at the model's prices — and is refused with
//! `ErrorKind::BudgetExceeded` before anything is sent if that could cross the cap. When
//! the answer arrives, the reservation settles to what the call really used.
//!
//! This runs offline: the model is a `FunctionClient` that calls itself `openai:gpt-4o`, so
//! it is priced like the real model ($2.50 per million prompt tokens, $10 per million
//! output tokens), and answers every call with 2,000 prompt and 1,000 output tokens:
//! $0.015 a call. Six calls fit in $0.10; the seventh is refused.
//!
//! Run it (no key needed):
//!
//! ```text
//! cargo run --example budget
//! ```
//!
//! It exits non-zero if the cap was ever crossed or no call was refused.

use std::process::ExitCode;

use switchboard::{
    Budget, ChatClient, ChatClientExt, ChatRequest, ChatResponse, Cost, ErrorKind, FunctionClient,
    Usage,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let model = FunctionClient::builder("gpt-4o")
        .provider("openai")
        .respond(|_req: &ChatRequest| {
            Ok(ChatResponse::from_text("a summary").with_usage(Usage::new(2_000, 1_000)))
        })
        .build();
    let cap = 0.10;
    let budget = match Budget::builder().max_cost_usd(cap).build() {
        Ok(budget) => budget,
        Err(err) => {
            eprintln!("could not build the budget: {err}");
            return ExitCode::FAILURE;
        }
    };
    let client = model.with_budget(budget.clone());

    // About 2,000 prompt tokens by the budget's estimate (four bytes a token).
    let request = ChatRequest::user("lorem ipsum ".repeat(666)).with_max_tokens(1_000);
    let mut refused = false;
    for call in 1..=20 {
        match client.chat(&request).await {
            Ok(_) => println!(
                "call {call:>2}: answered; spent {} of ${cap:.2}",
                budget.spent()
            ),
            Err(err) if err.kind() == ErrorKind::BudgetExceeded => {
                println!("call {call:>2}: refused before sending: {}", err.message());
                refused = true;
                break;
            }
            Err(err) => {
                eprintln!("call {call:>2}: unexpected error: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "spent {} in {} calls; stopped by {}",
        budget.spent(),
        budget.trials(),
        budget
            .stop_reason()
            .map_or("nothing".to_owned(), |l| l.to_string())
    );
    if budget.spent() > Cost::from_usd(cap) {
        eprintln!("the cap was crossed: spent {}", budget.spent());
        return ExitCode::FAILURE;
    }
    if !refused {
        eprintln!("no call was refused, but the cap should have stopped the seventh");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
