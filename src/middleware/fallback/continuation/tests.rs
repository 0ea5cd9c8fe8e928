use futures_util::StreamExt;
use serde_json::json;

use crate::client::{ChatClient, ChatClientExt};
use crate::error::{Error, ErrorKind, Result};
use crate::middleware::FallbackClient;
use crate::providers::FunctionClient;
use crate::types::{
    Capabilities, Capability, ChatRequest, ChatResponse, Message, Outcome, ResponseFormat, Role,
    StreamEvent, Usage,
};

type Script = fn() -> Vec<Result<StreamEvent>>;

fn streaming(name: &str, script: Script) -> FunctionClient {
    FunctionClient::builder(name)
        .stream(move |_req: &ChatRequest| Ok(script()))
        .build()
}

fn text(t: &str) -> Result<StreamEvent> {
    Ok(StreamEvent::TextDelta { text: t.into() })
}

fn usage(input: u64, output: u64) -> Result<StreamEvent> {
    Ok(StreamEvent::Usage {
        usage: Usage::new(input, output),
    })
}

fn cut() -> Result<StreamEvent> {
    Err(Error::from_status(
        "primary",
        503,
        "connection reset mid-answer",
    ))
}

/// Breaks after "The answer " and "is".
fn cut_after_text() -> FunctionClient {
    streaming("primary", || {
        vec![text("The answer "), usage(10, 2), text("is"), cut()]
    })
}

fn continuing() -> FunctionClient {
    streaming("backup", || vec![text(" forty-two."), usage(15, 4)])
}

fn chain(clients: Vec<FunctionClient>, continuation: bool) -> FallbackClient {
    FallbackClient::builder()
        .clients(clients.into_iter().map(ChatClientExt::boxed))
        .continuation(continuation)
        .build()
        .unwrap()
}

/// Reads a stream to its end: the text deltas and usage events it delivered, and how it
/// ended.
async fn drain(
    client: &FallbackClient,
    req: &ChatRequest,
) -> (Vec<String>, Vec<Usage>, Result<ChatResponse>) {
    let mut stream = client.chat_stream(req).await.unwrap().into_inner();
    let (mut texts, mut usages) = (Vec::new(), Vec::new());
    while let Some(item) = stream.next().await {
        match item {
            Ok(StreamEvent::TextDelta { text }) => texts.push(text),
            Ok(StreamEvent::Usage { usage }) => usages.push(usage),
            Ok(StreamEvent::Done { response }) => return (texts, usages, Ok(*response)),
            Ok(_) => {}
            Err(err) => return (texts, usages, Err(err)),
        }
    }
    panic!("the stream ended without Done or an error");
}

#[tokio::test]
async fn a_stream_cut_after_text_is_continued_on_the_backup() {
    let (primary, backup) = (cut_after_text(), continuing());
    let client = chain(vec![primary.clone(), backup.clone()], true);
    let req = ChatRequest::new(vec![
        Message::system("Be brief."),
        Message::user("What is it?"),
    ]);
    let (texts, usages, done) = drain(&client, &req).await;
    let r = done.unwrap();
    assert_eq!(texts, ["The answer ", "is", " forty-two."]);
    assert_eq!(r.text(), "The answer is forty-two.");
    assert_eq!(r.model, "backup");

    // The backup was asked to continue the delivered text, as a prefill.
    let sent = &backup.history()[0];
    assert_eq!(sent.messages.len(), 3);
    let last = sent.messages.last().unwrap();
    assert_eq!(
        (last.role, last.text().as_str()),
        (Role::Assistant, "The answer is")
    );

    // Attempts of both targets; usage of both, added up (also in the relayed events).
    let attempts: Vec<_> = r
        .attempts()
        .iter()
        .map(|a| (a.model.as_str(), a.outcome, a.error_kind))
        .collect();
    assert_eq!(
        attempts,
        [
            (
                "primary",
                Outcome::Failed,
                Some(ErrorKind::StreamInterrupted)
            ),
            ("backup", Outcome::Success, None),
        ]
    );
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (25, 6));
    assert_eq!(usages.last().map(|u| u.output_tokens), Some(6));
}

#[tokio::test]
async fn trailing_whitespace_is_not_prefilled_nor_doubled() {
    let primary = streaming("primary", || vec![text("Hello, "), cut()]);
    let backup = streaming("backup", || vec![text(" "), text(" world")]);
    let client = chain(vec![primary, backup.clone()], true);
    let (texts, _, done) = drain(&client, &ChatRequest::user("greet")).await;
    assert_eq!(texts.concat(), "Hello, world");
    assert_eq!(done.unwrap().text(), "Hello, world");
    assert_eq!(backup.history()[0].messages[1].text(), "Hello,");
}

#[tokio::test]
async fn continuation_is_off_by_default() {
    let (primary, backup) = (cut_after_text(), continuing());
    let client = chain(vec![primary, backup.clone()], false);
    let (_, _, done) = drain(&client, &ChatRequest::user("x")).await;
    assert_eq!(done.unwrap_err().kind(), ErrorKind::StreamInterrupted);
    assert_eq!(backup.calls(), 0);
}

#[tokio::test]
async fn a_stream_cut_mid_tool_call_ends_interrupted() {
    let primary = streaming("primary", || {
        vec![
            text("Let me look that up."),
            Ok(StreamEvent::ToolCallStart {
                index: 0,
                id: "call_1".into(),
                name: "lookup".into(),
                signature: None,
            }),
            Ok(StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "{\"q\": \"wea".into(),
            }),
            cut(),
        ]
    });
    let backup = continuing();
    let client = chain(vec![primary, backup.clone()], true);
    let (_, _, done) = drain(&client, &ChatRequest::user("weather?")).await;
    let err = done.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    let partial = err.partial().unwrap();
    assert_eq!(partial.text(), "Let me look that up.");
    assert_eq!(partial.tool_calls().len(), 1);
    assert_eq!(backup.calls(), 0);
}

#[tokio::test]
async fn a_json_answer_is_never_continued() {
    let primary = streaming("primary", || vec![text("{\"answer\": "), cut()]);
    let backup = continuing();
    let client = chain(vec![primary, backup.clone()], true);
    let req = ChatRequest::user("x").with_response_format(ResponseFormat::JsonSchema {
        name: "answer".into(),
        schema: json!({"type": "object"}),
        strict: true,
    });
    let (_, _, done) = drain(&client, &req).await;
    assert_eq!(done.unwrap_err().kind(), ErrorKind::StreamInterrupted);
    let (_, _, done) = drain(
        &client,
        &ChatRequest::user("x").with_response_format(ResponseFormat::Json),
    )
    .await;
    assert_eq!(done.unwrap_err().kind(), ErrorKind::StreamInterrupted);
    assert_eq!(backup.calls(), 0);
}

#[tokio::test]
async fn a_backup_that_rejects_prefill_is_skipped_and_both_attempts_listed() {
    let backup = FunctionClient::builder("backup")
        .capabilities(Capabilities::permissive().with_prefill(false))
        .stream(|_req: &ChatRequest| Ok(vec![text(" forty-two.")]))
        .build();
    let client = chain(vec![cut_after_text(), backup.clone()], true);
    let (texts, _, done) = drain(&client, &ChatRequest::user("x")).await;
    assert_eq!(texts, ["The answer ", "is"]);
    let err = done.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(err.status(), Some(503));
    assert_eq!(backup.calls(), 0);
    let partial = err.partial().unwrap();
    assert_eq!(partial.text(), "The answer is");
    let attempts: Vec<_> = partial
        .attempts()
        .iter()
        .map(|a| (a.model.as_str(), a.outcome, a.missing))
        .collect();
    assert_eq!(
        attempts,
        [
            ("primary", Outcome::Failed, None),
            ("backup", Outcome::Skipped, Some(Capability::Prefill)),
        ]
    );
}

#[tokio::test]
async fn a_backup_that_fails_before_committing_passes_the_continuation_on() {
    let failing = FunctionClient::builder("second")
        .stream(|_req: &ChatRequest| Err(Error::from_status("second", 529, "overloaded")))
        .build();
    let third = continuing();
    let client = chain(vec![cut_after_text(), failing.clone(), third.clone()], true);
    let (_, _, done) = drain(&client, &ChatRequest::user("x").with_max_tokens(100)).await;
    let r = done.unwrap();
    assert_eq!(r.text(), "The answer is forty-two.");
    let outcomes: Vec<_> = r
        .attempts()
        .iter()
        .map(|a| (a.model.as_str(), a.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("primary", Outcome::Failed),
            ("second", Outcome::Failed),
            ("backup", Outcome::Success),
        ]
    );
    assert_eq!(r.attempts()[1].status, Some(529));
    // The continuation may only spend what the interrupted part left.
    assert_eq!(third.history()[0].max_tokens, Some(97));
}

#[tokio::test]
async fn a_continuation_that_breaks_too_is_continued_again() {
    let second = streaming("second", || vec![text(" forty"), cut()]);
    let third = streaming("third", || vec![text("-two.")]);
    let client = chain(vec![cut_after_text(), second, third.clone()], true);
    let (texts, _, done) = drain(&client, &ChatRequest::user("x")).await;
    let r = done.unwrap();
    assert_eq!(texts.concat(), "The answer is forty-two.");
    assert_eq!(r.text(), "The answer is forty-two.");
    assert_eq!(r.attempts().len(), 3);
    assert_eq!(
        third.history()[0].messages.last().unwrap().text(),
        "The answer is forty"
    );
}

#[tokio::test]
async fn the_callers_own_prefill_is_extended_not_repeated() {
    let (primary, backup) = (cut_after_text(), continuing());
    let client = chain(vec![primary, backup.clone()], true);
    let req = ChatRequest::new(vec![Message::user("x"), Message::assistant("Well: ")]);
    let (_, _, done) = drain(&client, &req).await;
    assert_eq!(done.unwrap().text(), "The answer is forty-two.");
    let sent = &backup.history()[0];
    assert_eq!(sent.messages.len(), 2);
    assert_eq!(sent.messages[1].text(), "Well: The answer is");
}
