use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::stream::{self, BoxStream, StreamExt};
use tokio::time::Instant;

use super::*;
use crate::client::ChatClientExt;
use crate::middleware::CommitPoint;
use crate::middleware::{BreakerConfig, RetryPolicy, Timeouts};
use crate::providers::FunctionClient;
use crate::types::{Capabilities, Capability, Outcome, StreamEvent};

fn down(name: &str) -> FunctionClient {
    FunctionClient::new(name, |_req: &ChatRequest| {
        Err(Error::from_status("p", 503, "down"))
    })
}

fn up(name: &str) -> FunctionClient {
    let text = format!("answered by {name}");
    FunctionClient::new(name, move |_req: &ChatRequest| {
        Ok(ChatResponse::from_text(text.clone()))
    })
}

/// Fails its first call with a 503, then answers.
fn recovers(name: &str) -> FunctionClient {
    let calls = AtomicUsize::new(0);
    let text = format!("answered by {name}");
    FunctionClient::new(name, move |_req: &ChatRequest| {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(Error::from_status("p", 503, "down"))
        } else {
            Ok(ChatResponse::from_text(text.clone()))
        }
    })
}

fn silent(name: &str) -> FunctionClient {
    FunctionClient::new_async(name, |_req: ChatRequest| async move {
        std::future::pending::<Result<ChatResponse>>().await
    })
}

fn breaker(cooldown_secs: u64) -> BreakerConfig {
    BreakerConfig::default()
        .with_consecutive_failures(1)
        .with_cooldown(Duration::from_secs(cooldown_secs))
}

/// Two targets whose breakers are open for 30 s and 10 s, both healthy once probed.
async fn both_open() -> (FunctionClient, FunctionClient, DynClient, DynClient) {
    let (a, b) = (recovers("a"), recovers("b"));
    let guarded_a = a.clone().with_circuit_breaker(breaker(30));
    let guarded_b = b.clone().with_circuit_breaker(breaker(10));
    guarded_a.chat(&ChatRequest::user("x")).await.unwrap_err();
    guarded_b.chat(&ChatRequest::user("x")).await.unwrap_err();
    (a, b, guarded_a.boxed(), guarded_b.boxed())
}

#[tokio::test(start_paused = true)]
async fn an_open_target_is_skipped_without_being_called() {
    let primary = down("primary");
    let guarded = primary.clone().with_circuit_breaker(breaker(30));
    guarded.chat(&ChatRequest::user("x")).await.unwrap_err();
    let backup = up("backup");
    let chain = FallbackClient::new(vec![guarded.boxed(), backup.clone().boxed()]).unwrap();
    let r = chain.chat(&ChatRequest::user("x")).await.unwrap();
    assert_eq!(r.text(), "answered by backup");
    assert_eq!(primary.calls(), 1, "the open primary was called");
    assert_eq!(r.attempts()[0].outcome, Outcome::Skipped);
    assert_eq!(r.attempts()[0].error_kind, Some(ErrorKind::CircuitOpen));
    assert_eq!(r.attempts()[1].outcome, Outcome::Success);
}

#[tokio::test(start_paused = true)]
async fn when_all_are_open_it_waits_for_the_first_to_recover() {
    let (a, b, guarded_a, guarded_b) = both_open().await;
    let chain = FallbackClient::new(vec![guarded_a, guarded_b]).unwrap();
    assert_eq!(chain.readiness().wait(), Duration::from_secs(10));
    let start = Instant::now();
    let r = chain.chat(&ChatRequest::user("x")).await.unwrap();
    assert_eq!(r.text(), "answered by b");
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    let outcomes: Vec<_> = r.attempts().iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::Skipped, Outcome::Skipped, Outcome::Success]
    );
    assert_eq!((a.calls(), b.calls()), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn fail_fast_returns_the_earliest_retry_after() {
    let (a, b, guarded_a, guarded_b) = both_open().await;
    let chain = FallbackClient::builder()
        .clients([guarded_a, guarded_b])
        .when_all_open(AllOpen::FailFast)
        .build()
        .unwrap();
    let start = Instant::now();
    let err = chain.chat(&ChatRequest::user("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(10)));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!((a.calls(), b.calls()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn waiting_for_an_open_target_never_crosses_the_deadline() {
    let (_, b, guarded_a, guarded_b) = both_open().await;
    let chain = FallbackClient::new(vec![guarded_a, guarded_b])
        .unwrap()
        .with_deadline(Duration::from_secs(5));
    let start = Instant::now();
    let err = chain.chat(&ChatRequest::user("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(b.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_silent_primary_costs_one_attempt_timeout() {
    let primary = silent("primary");
    let backup = up("backup");
    let stack = |c: FunctionClient| {
        c.with_timeout(Duration::from_secs(10))
            .with_retry(RetryPolicy::default())
            .with_circuit_breaker(BreakerConfig::default())
            .boxed()
    };
    let client = FallbackClient::new(vec![stack(primary.clone()), stack(backup.clone())])
        .unwrap()
        .with_deadline(Duration::from_secs(60));
    let start = Instant::now();
    let r = client.chat(&ChatRequest::user("x")).await.unwrap();
    assert_eq!(r.text(), "answered by backup");
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert_eq!((primary.calls(), backup.calls()), (1, 1));
    assert_eq!(r.attempts()[0].error_kind, Some(ErrorKind::Timeout));
}

#[tokio::test(start_paused = true)]
async fn a_late_first_token_falls_over_to_the_backup() {
    let primary = FunctionClient::builder("primary")
        .stream_async(|_req| {
            Box::pin(async move {
                let s: BoxStream<'static, Result<StreamEvent>> = stream::pending().boxed();
                Ok(s)
            })
        })
        .build()
        .with_timeout(
            Timeouts::attempt(Duration::from_secs(60)).with_first_token(Duration::from_secs(5)),
        );
    let chain = FallbackClient::new(vec![primary.boxed(), up("backup").boxed()]).unwrap();
    let start = Instant::now();
    let r = chain
        .chat_stream(&ChatRequest::user("x"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(r.text(), "answered by backup");
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(r.attempts()[0].error_kind, Some(ErrorKind::Timeout));
}

#[tokio::test(start_paused = true)]
async fn a_stream_falls_over_before_content_and_hides_the_failed_metadata() {
    let primary = FunctionClient::builder("primary")
        .stream(|_req: &ChatRequest| {
            Ok(vec![
                Ok(StreamEvent::Started {
                    response_id: Some("from-primary".into()),
                    model: None,
                }),
                Err(Error::from_status("p", 503, "down")),
            ])
        })
        .build();
    let chain = FallbackClient::new(vec![primary.boxed(), up("backup").boxed()]).unwrap();
    let r = chain
        .chat_stream(&ChatRequest::user("x"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(r.text(), "answered by backup");
    assert_eq!(r.response_id, None);
    assert_eq!(r.attempts().len(), 2);
}

// ---- commit points ---------------------------------------------------------------------

type Script = fn() -> Vec<Result<StreamEvent>>;

fn streaming(name: &str, script: Script) -> FunctionClient {
    FunctionClient::builder(name)
        .stream(move |_req: &ChatRequest| Ok(script()))
        .build()
}

fn started() -> StreamEvent {
    StreamEvent::Started {
        response_id: Some("r-primary".into()),
        model: None,
    }
}

fn text(t: &str) -> StreamEvent {
    StreamEvent::TextDelta { text: t.into() }
}

fn e503() -> Error {
    Error::from_status("p", 503, "down")
}

fn chain_at(
    point: CommitPoint,
    primary: &FunctionClient,
    backup: &FunctionClient,
) -> FallbackClient {
    FallbackClient::builder()
        .clients([primary.clone().boxed(), backup.clone().boxed()])
        .commit_point(point)
        .build()
        .unwrap()
}

/// Reads a stream to its end: the events it delivered and how it ended.
async fn drain(stream: ChatStream) -> (Vec<StreamEvent>, Result<ChatResponse>) {
    let mut stream = stream.into_inner();
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(StreamEvent::Done { response }) => return (events, Ok(*response)),
            Ok(event) => events.push(event),
            Err(err) => return (events, Err(err)),
        }
    }
    panic!("the stream ended without Done or an error");
}

#[tokio::test]
async fn first_content_falls_over_after_metadata_but_not_after_text() {
    let meta_then_fail = streaming("primary", || vec![Ok(started()), Err(e503())]);
    let backup = up("backup");
    let chain = chain_at(CommitPoint::FirstContent, &meta_then_fail, &backup);
    let (_, r) = drain(chain.chat_stream(&ChatRequest::user("x")).await.unwrap()).await;
    assert_eq!(r.unwrap().text(), "answered by backup");

    let text_then_fail = streaming("primary", || vec![Ok(text("Hel")), Err(e503())]);
    let backup = up("backup");
    let chain = chain_at(CommitPoint::FirstContent, &text_then_fail, &backup);
    let (events, r) = drain(chain.chat_stream(&ChatRequest::user("x")).await.unwrap()).await;
    let err = r.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(events, [text("Hel")]);
    assert_eq!(err.partial().unwrap().text(), "Hel");
    assert_eq!(backup.calls(), 0);
}

#[tokio::test]
async fn first_event_commits_on_metadata() {
    let primary = streaming("primary", || vec![Ok(started()), Err(e503())]);
    let backup = up("backup");
    let chain = chain_at(CommitPoint::FirstEvent, &primary, &backup);
    let (events, r) = drain(chain.chat_stream(&ChatRequest::user("x")).await.unwrap()).await;
    let err = r.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted, "{err}");
    assert_eq!(events, [started()], "the metadata reached the caller");
    assert_eq!(err.status(), Some(503));
    let partial = err.partial().unwrap();
    assert_eq!(partial.text(), "");
    assert_eq!(partial.attempts().len(), 1);
    assert_eq!(partial.attempts()[0].outcome, Outcome::Failed);
    assert_eq!(backup.calls(), 0);

    // A failure before any event still falls over.
    let primary = streaming("primary", || vec![Err(e503())]);
    let backup = up("backup");
    let chain = chain_at(CommitPoint::FirstEvent, &primary, &backup);
    let (_, r) = drain(chain.chat_stream(&ChatRequest::user("x")).await.unwrap()).await;
    assert_eq!(r.unwrap().text(), "answered by backup");
}

#[tokio::test]
async fn headers_commit_as_soon_as_the_request_is_accepted() {
    let primary = streaming("primary", || vec![Err(e503())]);
    let backup = up("backup");
    let chain = chain_at(CommitPoint::Headers, &primary, &backup);
    let (events, r) = drain(chain.chat_stream(&ChatRequest::user("x")).await.unwrap()).await;
    let err = r.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    assert!(events.is_empty());
    assert!(err.message().contains("before any answer"), "{err}");
    assert_eq!(backup.calls(), 0);

    // A refused request (no stream at all) still falls over.
    let refused = FunctionClient::builder("primary")
        .stream(|_req: &ChatRequest| Err(Error::from_status("p", 429, "slow down")))
        .build();
    let backup = up("backup");
    let chain = chain_at(CommitPoint::Headers, &refused, &backup);
    let (_, r) = drain(chain.chat_stream(&ChatRequest::user("x")).await.unwrap()).await;
    let r = r.unwrap();
    assert_eq!(r.text(), "answered by backup");
    assert_eq!(r.attempts()[0].status, Some(429));
}

#[tokio::test]
async fn an_interrupted_stream_carries_every_attempt_so_far() {
    let first = down("first");
    let second = streaming("second", || vec![Ok(text("partial ")), Err(e503())]);
    let third = up("third");
    let chain = FallbackClient::new(vec![
        first.clone().boxed(),
        second.clone().boxed(),
        third.clone().boxed(),
    ])
    .unwrap();
    let (_, r) = drain(chain.chat_stream(&ChatRequest::user("x")).await.unwrap()).await;
    let err = r.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    let partial = err.partial().unwrap();
    assert_eq!(partial.text(), "partial ");
    let attempts: Vec<_> = partial
        .attempts()
        .iter()
        .map(|a| (a.model.as_str(), a.outcome, a.error_kind))
        .collect();
    assert_eq!(
        attempts,
        [
            ("first", Outcome::Failed, Some(ErrorKind::Server)),
            (
                "second",
                Outcome::Failed,
                Some(ErrorKind::StreamInterrupted)
            ),
        ]
    );
    assert_eq!(third.calls(), 0, "no fallback after the commit point");
}

// ---- capabilities ----------------------------------------------------------------------

fn lacking(name: &str, caps: Capabilities) -> FunctionClient {
    let text = format!("answered by {name}");
    FunctionClient::builder(name)
        .capabilities(caps)
        .respond(move |_req: &ChatRequest| Ok(ChatResponse::from_text(text.clone())))
        .build()
}

fn with_tool() -> ChatRequest {
    ChatRequest::user("x").with_tool(crate::ToolSpec::new(
        "lookup",
        "looks things up",
        serde_json::json!({"type": "object"}),
    ))
}

fn with_image(prompt: &str) -> ChatRequest {
    use crate::types::{Media, Message, Part};
    ChatRequest::new(vec![
        Message::user(prompt).with_part(Part::Image(Media::bytes("image/png", [0u8; 4])))
    ])
}

#[tokio::test]
async fn a_target_without_tools_is_skipped_without_being_called() {
    let primary = lacking("primary", Capabilities::permissive().with_tools(false));
    let backup = up("backup");
    let chain = FallbackClient::new(vec![primary.clone().boxed(), backup.clone().boxed()]).unwrap();
    let r = chain.chat(&with_tool()).await.unwrap();
    assert_eq!(r.text(), "answered by backup");
    assert_eq!(primary.calls(), 0);
    let skip = &r.attempts()[0];
    assert_eq!(skip.outcome, Outcome::Skipped);
    assert_eq!(skip.error_kind, Some(ErrorKind::Unsupported));
    assert_eq!(skip.missing, Some(Capability::Tools));
    // A request without tools goes to the primary as usual.
    let r = chain.chat(&ChatRequest::user("x")).await.unwrap();
    assert_eq!(r.text(), "answered by primary");
}

#[tokio::test]
async fn streams_skip_targets_that_cannot_serve_the_request_too() {
    let primary = lacking("primary", Capabilities::permissive().with_images(false));
    let backup = up("backup");
    let chain = FallbackClient::new(vec![primary.clone().boxed(), backup.clone().boxed()]).unwrap();
    let (_, r) = drain(chain.chat_stream(&with_image("what is it?")).await.unwrap()).await;
    let r = r.unwrap();
    assert_eq!(r.text(), "answered by backup");
    assert_eq!(primary.calls(), 0);
    assert_eq!(r.attempts()[0].missing, Some(Capability::Images));
}

#[tokio::test]
async fn when_no_target_can_serve_the_request_the_error_names_each_reason() {
    let a = lacking("a", Capabilities::permissive().with_images(false));
    let b = lacking(
        "b",
        Capabilities::permissive().with_context_window(Some(100)),
    );
    let chain = FallbackClient::new(vec![a.clone().boxed(), b.clone().boxed()]).unwrap();
    let err = chain
        .chat(&with_image(&"long prompt ".repeat(200)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(!err.is_retryable());
    assert_eq!((a.calls(), b.calls()), (0, 0));
    let reasons: Vec<_> = err
        .attempt_errors()
        .iter()
        .map(|e| (e.model(), e.missing_capability()))
        .collect();
    assert_eq!(
        reasons,
        [
            (Some("a"), Some(Capability::Images)),
            (Some("b"), Some(Capability::ContextWindow))
        ]
    );
    let shown = err.to_string();
    assert!(shown.contains("images, context_window"), "{shown}");
    assert!(shown.contains("context window is 100"), "{shown}");
    assert!(err.fix().unwrap().contains("add a target"), "{shown}");
}

#[tokio::test]
async fn a_skip_and_a_failure_make_all_targets_failed() {
    let a = lacking("a", Capabilities::permissive().with_tools(false));
    let b = down("b");
    let chain = FallbackClient::new(vec![a.boxed(), b.boxed()]).unwrap();
    let err = chain.chat(&with_tool()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    let kinds: Vec<_> = err.attempt_errors().iter().map(Error::kind).collect();
    assert_eq!(kinds, [ErrorKind::Unsupported, ErrorKind::Server]);
}

#[tokio::test]
async fn a_chain_reports_what_any_of_its_targets_accepts() {
    let no_tools = Capabilities::permissive().with_tools(false);
    let mixed = FallbackClient::new(vec![
        lacking("a", no_tools).boxed(),
        lacking("b", Capabilities::permissive()).boxed(),
    ])
    .unwrap();
    assert!(mixed.info().capabilities().tools);
    assert_eq!(mixed.info().model(), "a");

    let inner_a = lacking("inner-a", no_tools);
    let inner = FallbackClient::new(vec![
        inner_a.clone().boxed(),
        lacking("inner-b", no_tools).boxed(),
    ])
    .unwrap();
    assert!(!inner.info().capabilities().tools);
    let outer = FallbackClient::new(vec![inner.boxed(), up("outer-backup").boxed()]).unwrap();
    let r = outer.chat(&with_tool()).await.unwrap();
    assert_eq!(r.text(), "answered by outer-backup");
    assert_eq!(inner_a.calls(), 0);
    assert_eq!(r.attempts()[0].missing, Some(Capability::Tools));
}

/// A client whose embeddings fail with a 503 every time.
fn embed_down(name: &str) -> FunctionClient {
    FunctionClient::builder(name)
        .embed(|_req: &EmbedRequest| Err(Error::from_status("p", 503, "down")))
        .build()
}

/// A client that embeds every text as `[1.0, 0.0]`.
fn embed_up(name: &str) -> FunctionClient {
    FunctionClient::builder(name)
        .embed(|req: &EmbedRequest| Ok(EmbedResponse::new(vec![vec![1.0, 0.0]; req.inputs.len()])))
        .build()
}

#[tokio::test]
async fn embeddings_from_the_backup_list_the_failed_primary_first() {
    let chain = FallbackClient::new(vec![
        embed_down("primary").boxed(),
        embed_up("backup").boxed(),
    ])
    .unwrap();
    let r = chain.embed(&EmbedRequest::new(["a", "b"])).await.unwrap();
    assert_eq!(r.embeddings.len(), 2);
    let seen: Vec<_> = r
        .attempts()
        .iter()
        .map(|a| (a.model.as_str(), a.outcome, a.status))
        .collect();
    assert_eq!(
        seen,
        [
            ("primary", Outcome::Failed, Some(503)),
            ("backup", Outcome::Success, None)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn embeddings_record_a_target_whose_retries_ran_out_as_one_attempt_as_chat_does() {
    let retry = RetryPolicy::default().with_max_retries(1);
    let chain = FallbackClient::new(vec![
        crate::middleware::RetryClient::new(embed_down("primary"), retry).boxed(),
        embed_up("backup").boxed(),
    ])
    .unwrap();
    let r = chain.embed(&EmbedRequest::new(["a"])).await.unwrap();
    let seen: Vec<_> = r
        .attempts()
        .iter()
        .map(|a| (a.model.as_str(), a.outcome, a.error_kind, a.status))
        .collect();
    assert_eq!(
        seen,
        [
            (
                "primary",
                Outcome::Failed,
                Some(ErrorKind::RetriesExhausted),
                Some(503)
            ),
            ("backup", Outcome::Success, None, None)
        ]
    );
}

#[tokio::test]
async fn a_non_recoverable_error_after_failed_targets_keeps_their_records() {
    // The second target refuses the request for money: the chain stops there, and the
    // primary's 503 stays among the attempts of the error it returns.
    let refusing = FunctionClient::new("refusing", |_r: &ChatRequest| {
        Err(Error::new(
            ErrorKind::BudgetExceeded,
            "max_cost_usd would be crossed",
        ))
    });
    let last = up("never");
    let chain = FallbackClient::new(vec![
        down("primary").boxed(),
        refusing.boxed(),
        last.clone().boxed(),
    ])
    .unwrap();
    let err = chain.chat(&ChatRequest::user("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BudgetExceeded);
    assert_eq!(last.calls(), 0);
    let kinds: Vec<_> = err.attempt_errors().iter().map(Error::kind).collect();
    assert_eq!(kinds, [ErrorKind::Server, ErrorKind::BudgetExceeded]);
    assert_eq!(err.attempt_errors()[0].status(), Some(503));
    assert!(!err.is_recoverable());
}

#[tokio::test(start_paused = true)]
async fn retries_inside_a_chain_keep_every_attempt_down_to_the_last_error() {
    // Primary: two 503s then a 401 through its retry loop; the chain falls back on the
    // 401 (it came from a provider) to a target that refuses locally.
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let primary = FunctionClient::new("primary", move |_r: &ChatRequest| {
        Err(match c.fetch_add(1, Ordering::SeqCst) {
            0 | 1 => Error::from_status("primary", 503, "down"),
            _ => Error::from_status("primary", 401, "bad key"),
        })
    })
    .with_retry(RetryPolicy::default());
    let local = FunctionClient::new("local", |_r: &ChatRequest| {
        Err(Error::new(ErrorKind::Config, "no key"))
    });
    let chain = FallbackClient::new(vec![primary.boxed(), local.boxed()]).unwrap();
    let err = chain.chat(&ChatRequest::user("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let first = &err.attempt_errors()[0];
    assert_eq!(first.kind(), ErrorKind::Authentication);
    let tries: Vec<_> = first.attempt_errors().iter().map(Error::status).collect();
    assert_eq!(tries, [Some(503), Some(503), Some(401)]);
}
