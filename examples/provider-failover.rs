//! Falls back to a second provider when the first one fails.
//!
//! Real deployments hedge across providers: if the primary errors (an outage, a rate limit,
//! a dropped connection), the call moves on to a backup. `FallbackClient` wraps an ordered
//! list of clients and tries the next one when the current fails with a recoverable error,
//! all behind the same `client.chat(...)` interface.
//!
//! This runs offline: the "primary" is a `FunctionClient` whose closure fails with a
//! provider error (HTTP 503), and the "backup" is one that answers. The same shape works
//! with real providers: build the list with `create_client("anthropic:...")` and
//! `create_client("openai:...")`.
//!
//! Run it (no key needed):
//!
//! ```text
//! cargo run --example provider-failover
//! ```

use std::process::ExitCode;

use switchboard::{
    ChatClient, ChatClientExt, ChatRequest, ChatResponse, Error, FallbackClient, FunctionClient,
    Message,
};

const EXPECTED: &str = "answered by the backup provider";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // Simulate a provider outage on the primary.
    let primary = FunctionClient::new("primary", |_req: &ChatRequest| {
        Err(Error::from_status(
            "primary",
            503,
            "primary provider is unavailable",
        ))
    });
    let backup = FunctionClient::new("backup", |_req: &ChatRequest| {
        Ok(ChatResponse::from_text(EXPECTED))
    });

    // Try the primary first; on a recoverable error, fall back to the backup.
    let client = match FallbackClient::new(vec![primary.clone().boxed(), backup.clone().boxed()]) {
        Ok(client) => client,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let request = ChatRequest::new(vec![Message::user("hello")]);
    let text = match client.chat(&request).await {
        Ok(response) => response.text(),
        Err(err) => {
            eprintln!("error: {err}");
            String::new()
        }
    };

    println!("primary calls attempted: {}", primary.calls());
    println!("backup calls attempted: {}", backup.calls());
    println!("answer: {text:?}");

    // The primary failed, so the backup answered.
    if text == EXPECTED {
        ExitCode::SUCCESS
    } else {
        eprintln!("expected the backup's answer {EXPECTED:?}, got {text:?}");
        ExitCode::FAILURE
    }
}
