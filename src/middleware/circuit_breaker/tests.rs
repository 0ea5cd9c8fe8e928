use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::client::ChatClientExt;
use crate::providers::FunctionClient;

/// A client whose health is switched by the returned flag (true = healthy).
fn switchable() -> (FunctionClient, Arc<AtomicBool>) {
    let healthy = Arc::new(AtomicBool::new(false));
    let h = healthy.clone();
    let client = FunctionClient::new("m", move |_req: &ChatRequest| {
        if h.load(Ordering::SeqCst) {
            Ok(ChatResponse::from_text("ok"))
        } else {
            Err(Error::from_status("p", 503, "down"))
        }
    });
    (client, healthy)
}

fn config() -> BreakerConfig {
    BreakerConfig::default()
        .with_consecutive_failures(3)
        .with_cooldown(Duration::from_secs(10))
        .with_max_cooldown(Duration::from_secs(60))
}

async fn fail_times<C: ChatClient>(client: &C, n: usize) {
    for _ in 0..n {
        client.chat(&ChatRequest::user("x")).await.unwrap_err();
    }
}

#[allow(dead_code)]
fn _assert_impls() {
    fn send_sync_clone<T: Send + Sync + Clone>() {}
    send_sync_clone::<CircuitBreakerClient<FunctionClient>>();
}

#[tokio::test(start_paused = true)]
async fn opens_after_consecutive_failures_and_then_fails_fast() {
    let (inner, _) = switchable();
    let client = inner.clone().with_circuit_breaker(config());
    fail_times(&client, 3).await;
    let err = client.chat(&ChatRequest::user("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(10)));
    assert_eq!(inner.calls(), 3);
    assert!(matches!(
        client.state(),
        BreakerState::Open { remaining, .. } if remaining == Duration::from_secs(10)
    ));
    assert_eq!(client.readiness().wait(), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn a_success_resets_the_consecutive_count() {
    let (inner, healthy) = switchable();
    let client = inner.with_circuit_breaker(config());
    fail_times(&client, 2).await;
    healthy.store(true, Ordering::SeqCst);
    client.chat(&ChatRequest::user("x")).await.unwrap();
    healthy.store(false, Ordering::SeqCst);
    fail_times(&client, 2).await;
    assert_eq!(client.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_keeps_it_open_at_least_that_long() {
    let inner = FunctionClient::new("m", |_req: &ChatRequest| {
        Err(Error::from_status("p", 429, "slow down").with_retry_after(Duration::from_secs(45)))
    });
    let client = inner.with_circuit_breaker(config().with_consecutive_failures(1));
    client.chat(&ChatRequest::user("x")).await.unwrap_err();
    let err = client.chat(&ChatRequest::user("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(45)));
}

#[tokio::test(start_paused = true)]
async fn a_successful_probe_closes_the_circuit() {
    let (inner, healthy) = switchable();
    let client = inner.clone().with_circuit_breaker(config());
    fail_times(&client, 3).await;
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(client.state(), BreakerState::HalfOpen);
    assert!(client.readiness().is_ready());
    healthy.store(true, Ordering::SeqCst);
    client.chat(&ChatRequest::user("x")).await.unwrap();
    assert_eq!(client.state(), BreakerState::Closed);
    assert_eq!(inner.calls(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_with_a_doubled_cooldown_up_to_the_cap() {
    let (inner, _) = switchable();
    let client = inner.clone().with_circuit_breaker(config());
    fail_times(&client, 3).await;
    let mut cooldowns = Vec::new();
    for _ in 0..4 {
        let wait = client.readiness().wait();
        tokio::time::advance(wait).await;
        // The probe goes through and fails.
        let err = client.chat(&ChatRequest::user("x")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Server);
        cooldowns.push(client.readiness().wait().as_secs());
    }
    assert_eq!(cooldowns, [20, 40, 60, 60]);
    assert_eq!(inner.calls(), 7);
}

#[tokio::test(start_paused = true)]
async fn half_open_lets_exactly_one_probe_through() {
    let (gate_tx, gate_rx) = tokio::sync::watch::channel(false);
    let failing = Arc::new(AtomicBool::new(true));
    let f = failing.clone();
    let inner = FunctionClient::new_async("m", move |_req: ChatRequest| {
        let mut gate = gate_rx.clone();
        let failing = f.load(Ordering::SeqCst);
        async move {
            if failing {
                return Err(Error::from_status("p", 503, "down"));
            }
            let _ = gate.wait_for(|open| *open).await;
            Ok(ChatResponse::from_text("ok"))
        }
    });
    let client = inner.clone().with_circuit_breaker(config());
    fail_times(&client, 3).await;
    failing.store(false, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(10)).await;

    let probe = {
        let client = client.clone();
        tokio::spawn(async move { client.chat(&ChatRequest::user("probe")).await })
    };
    tokio::task::yield_now().await;
    let req = ChatRequest::user("concurrent");
    let others = futures_util::future::join_all((0..5).map(|_| client.chat(&req))).await;
    for result in &others {
        let err = result.as_ref().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    }
    assert!(!client.readiness().is_ready());
    gate_tx.send(true).unwrap();
    probe.await.unwrap().unwrap();
    assert_eq!(inner.calls(), 4);
    assert_eq!(client.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_lets_the_next_caller_probe() {
    let inner = FunctionClient::new_async("m", |req: ChatRequest| async move {
        if req.messages[0].text() == "hang" {
            std::future::pending::<()>().await;
        }
        Err(Error::from_status("p", 503, "down"))
    });
    let client = inner
        .clone()
        .with_circuit_breaker(config().with_consecutive_failures(1));
    fail_times(&client, 1).await;
    tokio::time::advance(Duration::from_secs(10)).await;
    let cancelled = tokio::time::timeout(
        Duration::from_secs(1),
        client.chat(&ChatRequest::user("hang")),
    )
    .await;
    assert!(cancelled.is_err());
    assert_eq!(client.state(), BreakerState::HalfOpen);
    let err = client.chat(&ChatRequest::user("x")).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Server,
        "the next caller was the probe"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_ratio_over_the_window_opens_it() {
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = n.clone();
    // Every other call fails: never three in a row, but half of all calls.
    let inner = FunctionClient::new("m", move |_req: &ChatRequest| {
        if c.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
            Err(Error::from_status("p", 500, "boom"))
        } else {
            Ok(ChatResponse::from_text("ok"))
        }
    });
    let client =
        inner.with_circuit_breaker(config().with_failure_ratio(0.5, Duration::from_secs(60), 6));
    // Six calls, three failed: the ratio is met, but only a failure opens the circuit.
    for _ in 0..6 {
        let _ = client.chat(&ChatRequest::user("x")).await;
        assert_eq!(client.state(), BreakerState::Closed);
    }
    client.chat(&ChatRequest::user("x")).await.unwrap_err();
    assert!(matches!(client.state(), BreakerState::Open { .. }));
}

#[tokio::test(start_paused = true)]
async fn old_calls_leave_the_window() {
    let inner = FunctionClient::new("m", |_req: &ChatRequest| {
        Err(Error::from_status("p", 500, "boom"))
    });
    let client = inner.with_circuit_breaker(
        config()
            .with_consecutive_failures(0)
            .with_failure_ratio(0.5, Duration::from_secs(10), 3),
    );
    fail_times(&client, 2).await;
    tokio::time::advance(Duration::from_secs(11)).await;
    fail_times(&client, 1).await;
    assert_eq!(client.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn request_errors_do_not_count() {
    let inner = FunctionClient::new("m", |_req: &ChatRequest| {
        Err(Error::from_status("p", 400, "bad field"))
    });
    let client = inner.with_circuit_breaker(config().with_consecutive_failures(1));
    fail_times(&client, 3).await;
    assert_eq!(client.state(), BreakerState::Closed);
    let local = Error::invalid_request("empty", "add a message");
    assert!(!TripOn::default().counts(&local));
    assert!(TripOn::default().counts(&Error::new(ErrorKind::Timeout, "slow")));
    assert!(!TripOn::default().counts(&Error::new(ErrorKind::CircuitOpen, "nested")));
}

#[tokio::test(start_paused = true)]
async fn clones_and_shared_stores_see_the_same_circuit() {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let (a, _) = switchable();
    let first = a
        .clone()
        .with_circuit_breaker(config())
        .with_store(store.clone());
    let second = a.with_circuit_breaker(config()).with_store(store);
    let clone = first.clone();
    fail_times(&first, 3).await;
    assert!(matches!(clone.state(), BreakerState::Open { .. }));
    assert!(matches!(second.state(), BreakerState::Open { .. }));
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_breaks_counts_as_a_failure() {
    let inner = FunctionClient::builder("s")
        .stream(|_req: &ChatRequest| {
            Ok(vec![
                Ok(StreamEvent::TextDelta {
                    text: "half".into(),
                }),
                Err(Error::from_status("p", 529, "overloaded")),
            ])
        })
        .build();
    let client = inner.with_circuit_breaker(config().with_consecutive_failures(1));
    let err = client
        .chat_stream(&ChatRequest::user("x"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    assert!(matches!(client.state(), BreakerState::Open { .. }));
    let err = client
        .chat_stream(&ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
}
