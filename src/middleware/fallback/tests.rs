use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::stream::{self, BoxStream, StreamExt};
use tokio::time::Instant;

use super::*;
use crate::client::ChatClientExt;
use crate::middleware::{BreakerConfig, RetryPolicy, Timeouts};
use crate::providers::FunctionClient;
use crate::types::{Outcome, StreamEvent};

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
