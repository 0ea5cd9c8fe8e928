//! Asks one real provider one question.
//!
//! Needs a key: it reads the provider's usual variable (e.g. `OPENAI_API_KEY`,
//! `ANTHROPIC_API_KEY`, `GEMINI_API_KEY`) or `SWITCHBOARD_<PROVIDER>_API_KEY`, and exits
//! with a message naming the variable when none is set.
//!
//! ```text
//! cargo run --example quickstart -- anthropic:claude-haiku-4-5 "Name three rivers."
//! ```

use std::process::ExitCode;

use switchboard::{create_client, ChatRequest, ErrorKind};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .unwrap_or_else(|| "openai:gpt-4o-mini".to_owned());
    let question = args
        .next()
        .unwrap_or_else(|| "Say hello in five words.".to_owned());

    let client = match create_client(&model) {
        Ok(client) => client,
        Err(err) if err.kind() == ErrorKind::Config => {
            eprintln!("{err}");
            eprintln!("this example calls a real provider; set its key and run it again");
            return ExitCode::from(2);
        }
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    match client.chat(&ChatRequest::user(question)).await {
        Ok(response) => {
            println!("{}", response.text());
            println!(
                "-- {} ({}), {} in / {} out tokens, {:.0} ms",
                response.provider,
                response.model_served(),
                response.usage.input_tokens,
                response.usage.output_tokens,
                response.latency.as_secs_f64() * 1000.0
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
