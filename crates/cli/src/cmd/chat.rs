//! `switchboard chat`: one message to a model (with fallbacks), the answer printed.

use std::io::{IsTerminal, Read, Write};

use clap::Args;
use futures_util::StreamExt;
use std::time::Duration;

use switchboard::{
    create_client_with, ChatClient, ChatRequest, ClientOptions, DynClient, Error, FallbackClient,
    Message, RetryPolicy, StreamEvent,
};

use crate::output;

/// Arguments of `switchboard chat`.
#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    /// The model to ask, as PROVIDER:MODEL (e.g. openai:gpt-4o-mini).
    #[arg(long, short = 'm')]
    model: String,
    /// A model to try when the ones before it fail; repeat for more, in order.
    #[arg(long = "fallback", value_name = "PROVIDER:MODEL")]
    fallbacks: Vec<String>,
    /// The message to send; read from standard input when absent.
    #[arg(long, short = 'M')]
    message: Option<String>,
    /// A system prompt.
    #[arg(long)]
    system: Option<String>,
    /// The most tokens to generate.
    #[arg(long)]
    max_tokens: Option<u32>,
    /// Sampling temperature.
    #[arg(long)]
    temperature: Option<f32>,
    /// Prints the answer as it is generated.
    #[arg(long)]
    stream: bool,
    /// Prints one JSON object (the answer, or the error) instead of text.
    #[arg(long)]
    json: bool,
    /// Retries per target on retryable errors (rate limits, overload, 5xx, dropped connections).
    #[arg(long, default_value_t = 2)]
    retries: u32,
    /// The longest provider-requested wait (Retry-After) to honour, in seconds; a longer one
    /// moves on at once.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    max_retry_wait: f64,
}

pub(crate) async fn run(args: ChatArgs) -> u8 {
    let json = args.json;
    match chat(args).await {
        Ok(()) => 0,
        Err(err) => {
            output::print_error(&err, json);
            output::exit_code(&err)
        }
    }
}

fn build_request(args: &ChatArgs) -> Result<ChatRequest, Error> {
    let text = match &args.message {
        Some(text) => text.clone(),
        None => {
            let mut stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(
                    Error::new(switchboard::ErrorKind::InvalidRequest, "no message given")
                        .with_fix("pass --message TEXT or pipe the message on standard input"),
                );
            }
            let mut text = String::new();
            stdin.read_to_string(&mut text).map_err(|e| {
                Error::new(
                    switchboard::ErrorKind::InvalidRequest,
                    format!("could not read standard input: {e}"),
                )
            })?;
            text
        }
    };
    if text.trim().is_empty() {
        return Err(Error::new(
            switchboard::ErrorKind::InvalidRequest,
            "the message is empty",
        )
        .with_fix("pass --message TEXT or pipe a non-empty message on standard input"));
    }
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(Message::system(system.clone()));
    }
    messages.push(Message::user(text));
    let mut req = ChatRequest::new(messages);
    req.max_tokens = args.max_tokens;
    req.temperature = args.temperature;
    req.validate()?;
    Ok(req)
}

fn build_client(args: &ChatArgs) -> Result<DynClient, Error> {
    // `try_from` refuses NaN, negatives and values past what a Duration holds (1e20),
    // where `from_secs_f64` would panic.
    let max_wait = Duration::try_from_secs_f64(args.max_retry_wait).map_err(|_| {
        Error::new(
            switchboard::ErrorKind::InvalidRequest,
            format!(
                "--max-retry-wait {} is not a number of seconds a wait can last",
                args.max_retry_wait
            ),
        )
        .with_fix("pass a non-negative number, e.g. --max-retry-wait 10")
    })?;
    let policy = RetryPolicy::default()
        .with_max_retries(args.retries)
        .with_max_retry_after(max_wait);
    let options = ClientOptions::new().retry(Some(policy));
    let primary = create_client_with(&args.model, &options)?;
    if args.fallbacks.is_empty() {
        return Ok(primary);
    }
    let mut clients = vec![primary];
    for spec in &args.fallbacks {
        clients.push(create_client_with(spec, &options)?);
    }
    Ok(std::sync::Arc::new(FallbackClient::new(clients)?))
}

async fn chat(args: ChatArgs) -> Result<(), Error> {
    let req = build_request(&args)?;
    let client = build_client(&args)?;
    let response = if args.stream {
        let mut stream = client.chat_stream(&req).await?;
        let mut out = std::io::stdout().lock();
        let mut done = None;
        while let Some(event) = stream.next().await {
            match event? {
                StreamEvent::TextDelta { text } if !args.json => {
                    output::written(out.write_all(text.as_bytes()).and_then(|()| out.flush()));
                }
                StreamEvent::Done { response } => done = Some(*response),
                _ => {}
            }
        }
        if !args.json {
            output::written(writeln!(out));
        }
        done.ok_or_else(|| {
            Error::new(
                switchboard::ErrorKind::StreamInterrupted,
                "the stream ended without its final event",
            )
        })?
    } else {
        client.chat(&req).await?
    };
    if args.json {
        output::say(output::response_json(&response));
    } else if !args.stream {
        output::say(response.text());
    }
    Ok(())
}
