//! Answers from a cassette: real provider exchanges recorded once, replayed offline.
//!
//! A `Cassette` sits in the shared HTTP transport. Recording, it passes each call to the
//! provider and appends the exchange to a JSONL file (keys and every request header left
//! out); replaying, it answers from the file and sends nothing. The replayed bytes run
//! through the same error mapping, SSE decoder and stream accumulator as live ones, so a test
//! suite sees exactly what the provider said.
//!
//! This example replays `tests/fixtures/cassettes/example.jsonl` (recorded from the fixture
//! answers in `tests/fixtures/`) for OpenAI, Anthropic and Gemini, whole and streamed, then
//! shows the typed error for a request the cassette does not hold.
//!
//! Run it (no key, no network):
//!
//! ```text
//! cargo run --example cassette
//! ```
//!
//! To record your own, run any program or test once with real keys and
//! `SWITCHBOARD_CASSETTE=record:PATH`, then replay in CI with `SWITCHBOARD_CASSETTE=replay:PATH`.

use std::process::ExitCode;
use std::sync::Arc;

use switchboard::providers::cassette::Cassette;
use switchboard::{create_client_with, ChatClient, ChatRequest, ClientOptions};

const CASSETTE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cassettes/example.jsonl"
);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            if let Some(fix) = err.fix() {
                eprintln!("fix: {fix}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run() -> switchboard::Result<()> {
    let cassette = Arc::new(Cassette::replay(CASSETTE)?);
    println!("{} exchanges on {CASSETTE}\n", cassette.len());
    // No key and no base URL: a replaying cassette sends nothing.
    let options = ClientOptions::new().cassette(Arc::clone(&cassette));
    // The same request the cassette was recorded with (see tests/cassette.rs).
    let req = ChatRequest::user("Say hello in one short sentence.").with_max_tokens(64);

    for spec in [
        "openai:gpt-4o-mini",
        "anthropic:claude-sonnet-4-5",
        "gemini:gemini-2.5-flash",
    ] {
        let client = create_client_with(spec, &options)?;
        let whole = client.chat(&req).await?;
        println!(
            "{spec} (whole):    {} [{} tokens, {:?}]",
            whole.text(),
            whole.usage.total_tokens,
            whole.finish_reason.kind
        );
        let streamed = client.chat_stream(&req).await?.collect_response().await?;
        println!("{spec} (streamed): {}\n", streamed.text());
    }

    let client = create_client_with("openai:gpt-4o-mini", &options)?;
    let miss = match client
        .chat(&ChatRequest::user("Something never recorded"))
        .await
    {
        Err(miss) => miss,
        Ok(_) => {
            return Err(switchboard::Error::new(
                switchboard::ErrorKind::Config,
                "the cassette answered a request it should not hold",
            ))
        }
    };
    println!(
        "a request the cassette lacks fails with {:?} ({}):\n  {}\n  fix: {}",
        miss.kind(),
        miss.code().unwrap_or("-"),
        miss.message(),
        miss.fix().unwrap_or("-")
    );
    Ok(())
}
