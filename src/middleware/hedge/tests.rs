use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::client::ChatClientExt;
use crate::middleware::BreakerConfig;
use crate::providers::FunctionClient;

/// Answers after `secs` of (paused) time; records whether its call was dropped early.
fn after(name: &'static str, secs: u64) -> (FunctionClient, Arc<AtomicBool>) {
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    let client = FunctionClient::new_async(name, move |_req: ChatRequest| {
        let f = f.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            f.store(true, Ordering::SeqCst);
            Ok(ChatResponse::from_text(name))
        }
    });
    (client, finished)
}

fn failing(name: &'static str) -> FunctionClient {
    FunctionClient::new(name, |_req: &ChatRequest| {
        Err(Error::from_status("p", 503, "down"))
    })
}

#[allow(dead_code)]
fn _assert_impls() {
    fn send_sync_clone<T: Send + Sync + Clone>() {}
    send_sync_clone::<HedgedClient>();
}

#[tokio::test(start_paused = true)]
async fn a_slow_primary_is_raced_and_the_loser_cancelled() {
    let (slow, slow_finished) = after("slow", 20);
    let (fast, _) = after("fast", 1);
    let client = HedgedClient::new(
        vec![slow.clone().boxed(), fast.clone().boxed()],
        HedgePolicy::fixed(Duration::from_secs(2)),
    )
    .unwrap();
    let start = Instant::now();
    let r = client.chat(&ChatRequest::user("x")).await.unwrap();
    assert_eq!(r.text(), "fast");
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!((slow.calls(), fast.calls()), (1, 1));
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        !slow_finished.load(Ordering::SeqCst),
        "the loser kept running"
    );
    let a = r.attempts();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].model, "slow");
    assert_eq!(a[0].outcome, Outcome::Failed);
    assert_eq!(a[0].error_kind, None);
    assert_eq!(a[0].message.as_deref(), Some(CANCELLED));
    assert_eq!(a[0].latency, Duration::from_secs(3));
    assert_eq!(a[1].outcome, Outcome::Success);
}

#[tokio::test(start_paused = true)]
async fn a_fast_primary_never_starts_the_backup() {
    let (primary, _) = after("primary", 1);
    let (backup, _) = after("backup", 1);
    let client = HedgedClient::new(
        vec![primary.boxed(), backup.clone().boxed()],
        HedgePolicy::fixed(Duration::from_secs(2)),
    )
    .unwrap();
    let r = client.chat(&ChatRequest::user("x")).await.unwrap();
    assert_eq!(r.text(), "primary");
    assert_eq!(backup.calls(), 0);
    assert_eq!(r.attempts().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failure_starts_the_next_target_at_once() {
    let (backup, _) = after("backup", 1);
    let client = HedgedClient::new(
        vec![failing("primary").boxed(), backup.boxed()],
        HedgePolicy::fixed(Duration::from_secs(5)),
    )
    .unwrap();
    let start = Instant::now();
    let r = client.chat(&ChatRequest::user("x")).await.unwrap();
    assert_eq!(r.text(), "backup");
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(r.attempts()[0].status, Some(503));
}

#[tokio::test(start_paused = true)]
async fn when_every_target_fails_all_errors_are_listed() {
    let client = HedgedClient::new(
        vec![failing("a").boxed(), failing("b").boxed()],
        HedgePolicy::fixed(Duration::from_secs(5)),
    )
    .unwrap();
    let err = client.chat(&ChatRequest::user("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    assert_eq!(err.attempt_errors().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_is_skipped() {
    let down =
        failing("a").with_circuit_breaker(BreakerConfig::default().with_consecutive_failures(1));
    down.chat(&ChatRequest::user("x")).await.unwrap_err();
    let (backup, _) = after("b", 1);
    let client = HedgedClient::new(
        vec![down.boxed(), backup.boxed()],
        HedgePolicy::fixed(Duration::from_secs(5)),
    )
    .unwrap();
    let start = Instant::now();
    let r = client.chat(&ChatRequest::user("x")).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(r.attempts()[0].outcome, Outcome::Skipped);
}

#[test]
fn a_learned_delay_is_the_percentile_with_a_floor_and_a_default() {
    let policy = HedgePolicy::learned(0.95)
        .with_min_samples(10)
        .with_default(Duration::from_secs(2))
        .with_floor(Duration::from_millis(300));
    let mut history = VecDeque::new();
    assert_eq!(policy.delay(&history), Duration::from_secs(2));
    for ms in 1..=100 {
        history.push_back(Duration::from_millis(ms * 10));
    }
    assert_eq!(policy.delay(&history), Duration::from_millis(950));
    let fast: VecDeque<_> = (0..20).map(|_| Duration::from_millis(5)).collect();
    assert_eq!(policy.delay(&fast), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn the_delay_is_learned_from_recent_answers() {
    let (primary, _) = after("primary", 1);
    let client = HedgedClient::new(
        vec![primary.boxed()],
        HedgePolicy::learned(0.95)
            .with_min_samples(3)
            .with_floor(Duration::from_millis(10)),
    )
    .unwrap();
    for _ in 0..3 {
        client.chat(&ChatRequest::user("x")).await.unwrap();
    }
    assert_eq!(client.current_delay(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn streams_are_tried_in_turn_not_hedged() {
    let client = HedgedClient::new(
        vec![failing("a").boxed(), failing("b").boxed(), {
            let (c, _) = after("c", 1);
            c.boxed()
        }],
        HedgePolicy::fixed(Duration::from_secs(5)),
    )
    .unwrap();
    let r = client
        .chat_stream(&ChatRequest::user("x"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(r.text(), "c");
    assert_eq!(r.attempts().len(), 3);
}

fn meta_then_503(name: &str) -> FunctionClient {
    FunctionClient::builder(name)
        .stream(|_req: &ChatRequest| {
            Ok(vec![
                Ok(crate::types::StreamEvent::Started {
                    response_id: None,
                    model: None,
                }),
                Err(Error::from_status("p", 503, "down")),
            ])
        })
        .build()
}

#[tokio::test(start_paused = true)]
async fn a_stream_commit_point_is_configurable() {
    let (backup, _) = after("backup", 1);
    let default = HedgedClient::new(
        vec![meta_then_503("a").boxed(), backup.clone().boxed()],
        HedgePolicy::fixed(Duration::from_secs(5)),
    )
    .unwrap();
    let r = default.chat_stream(&ChatRequest::user("x")).await.unwrap();
    assert_eq!(r.collect_response().await.unwrap().text(), "backup");

    let early = HedgedClient::new(
        vec![meta_then_503("a").boxed(), backup.clone().boxed()],
        HedgePolicy::fixed(Duration::from_secs(5)).with_commit_point(CommitPoint::FirstEvent),
    )
    .unwrap();
    let s = early.chat_stream(&ChatRequest::user("x")).await.unwrap();
    let err = s.collect_response().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(
        backup.calls(),
        1,
        "only the default hedge reached the backup"
    );
}

#[tokio::test(start_paused = true)]
async fn a_target_that_cannot_serve_the_request_is_skipped() {
    let no_tools = FunctionClient::builder("no-tools")
        .capabilities(crate::Capabilities::permissive().with_tools(false))
        .respond(|_req: &ChatRequest| Ok(ChatResponse::from_text("no-tools")))
        .build();
    let (backup, _) = after("backup", 1);
    let client = HedgedClient::new(
        vec![no_tools.clone().boxed(), backup.boxed()],
        HedgePolicy::fixed(Duration::from_secs(5)),
    )
    .unwrap();
    let req = ChatRequest::user("x").with_tool(crate::ToolSpec::new(
        "f",
        "does f",
        serde_json::json!({"type": "object"}),
    ));
    let r = client.chat(&req).await.unwrap();
    assert_eq!(r.text(), "backup");
    assert_eq!(no_tools.calls(), 0);
    assert_eq!(r.attempts()[0].outcome, Outcome::Skipped);
    assert_eq!(r.attempts()[0].missing, Some(crate::Capability::Tools));
    let s = client.chat_stream(&req).await.unwrap();
    assert_eq!(s.collect_response().await.unwrap().text(), "backup");
    assert_eq!(no_tools.calls(), 0);

    let alone = HedgedClient::new(
        vec![no_tools.boxed()],
        HedgePolicy::fixed(Duration::from_secs(5)),
    )
    .unwrap();
    assert_eq!(
        alone.chat(&req).await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(
        alone.chat_stream(&req).await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

#[tokio::test]
async fn embeddings_are_tried_in_turn_and_list_each_attempt() {
    let down = FunctionClient::builder("a")
        .embed(|_req: &EmbedRequest| Err(Error::from_status("p", 503, "down")))
        .build();
    let up = FunctionClient::builder("b")
        .embed(|req: &EmbedRequest| Ok(EmbedResponse::new(vec![vec![1.0]; req.inputs.len()])))
        .build();
    let client = HedgedClient::new(
        vec![down.boxed(), up.boxed()],
        HedgePolicy::fixed(Duration::from_secs(5)),
    )
    .unwrap();
    let r = client.embed(&EmbedRequest::new(["x"])).await.unwrap();
    let seen: Vec<_> = r
        .attempts()
        .iter()
        .map(|a| (a.model.as_str(), a.outcome, a.status))
        .collect();
    assert_eq!(
        seen,
        [
            ("a", crate::Outcome::Failed, Some(503)),
            ("b", crate::Outcome::Success, None)
        ]
    );
}
