//! Streams an answer as it is generated, with a fallback model if the first cannot start.
//!
//! Needs keys for the models named (see `quickstart`); exits with a message naming the
//! variable when one is missing.
//!
//! ```text
//! cargo run --example streaming -- openai:gpt-4o-mini anthropic:claude-haiku-4-5
//! ```

use std::io::Write;
use std::process::ExitCode;

use futures_util::StreamExt;
use switchboard::{create_client, ChatRequest, ErrorKind, FallbackClient, StreamEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut specs: Vec<String> = std::env::args().skip(1).collect();
    if specs.is_empty() {
        specs = vec![
            "openai:gpt-4o-mini".into(),
            "anthropic:claude-haiku-4-5".into(),
        ];
    }
    let mut clients = Vec::new();
    for spec in &specs {
        match create_client(spec) {
            Ok(client) => clients.push(client),
            Err(err) if err.kind() == ErrorKind::Config => {
                eprintln!("{err}");
                eprintln!("this example calls real providers; set their keys and run it again");
                return ExitCode::from(2);
            }
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    let client = match FallbackClient::new(clients) {
        Ok(client) => client,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let request = ChatRequest::user("Write a four-line poem about failover.");
    let mut stream = match switchboard::ChatClient::chat_stream(&client, &request).await {
        Ok(stream) => stream,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout();
    while let Some(event) = stream.next().await {
        match event {
            Ok(StreamEvent::TextDelta { text }) => {
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
            Ok(StreamEvent::Done { response }) => {
                println!(
                    "\n-- answered by {}:{}",
                    response.provider,
                    response.model_served()
                );
            }
            Ok(_) => {}
            Err(err) => {
                // After text has arrived, a failure is never passed off as a short answer.
                eprintln!("\nerror: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
