use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::client::ChatClientExt;
use crate::middleware::{FallbackClient, RetryPolicy};
use crate::providers::FunctionClient;
use crate::types::Outcome;

/// Fails its first `n` calls with a 429 asking to wait `secs`, then answers.
fn limited(name: &str, n: usize, secs: u64) -> FunctionClient {
    let calls = AtomicUsize::new(0);
    let provider = name.to_owned();
    FunctionClient::builder(name)
        .provider(name)
        .respond(move |_r: &ChatRequest| {
            if calls.fetch_add(1, Ordering::SeqCst) < n {
                Err(Error::from_status(provider.clone(), 429, "slow down")
                    .with_retry_after(Duration::from_secs(secs)))
            } else {
                Ok(ChatResponse::from_text("ok"))
            }
        })
        .build()
}

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_skips_the_target_until_then() {
    let target = limited("p", 1, 30);
    let client = CooldownClient::new(target.clone());
    let err = client.chat(&ChatRequest::user("x")).await.unwrap_err();
    assert_eq!(err.status(), Some(429));
    assert!(!err.is_skip());
    assert!(matches!(client.readiness(), Readiness::CoolingDown(_)));
    assert_eq!(client.readiness().wait(), Duration::from_secs(30));

    tokio::time::advance(Duration::from_secs(10)).await;
    let skipped = client.chat(&ChatRequest::user("x")).await.unwrap_err();
    assert!(skipped.is_skip());
    assert_eq!(skipped.kind(), ErrorKind::RateLimited);
    assert_eq!(skipped.retry_after(), Some(Duration::from_secs(20)));
    assert!(
        skipped.message().contains("asked callers to wait"),
        "{skipped}"
    );
    assert_eq!(target.calls(), 1, "the cooling target was not called");

    tokio::time::advance(Duration::from_secs(20)).await;
    assert!(client.readiness().is_ready());
    client.chat(&ChatRequest::user("x")).await.unwrap();
    assert_eq!(target.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_chain_skips_a_cooling_target_and_records_why() {
    let primary = limited("primary", 1, 30);
    let backup = limited("backup", 0, 0);
    let chain = FallbackClient::new(vec![
        CooldownClient::new(primary.clone()).boxed(),
        backup.clone().boxed(),
    ])
    .unwrap();
    // The first request meets the 429 and falls back; the second skips the primary.
    chain.chat(&ChatRequest::user("x")).await.unwrap();
    let second = chain.chat(&ChatRequest::user("x")).await.unwrap();
    assert_eq!(primary.calls(), 1);
    assert_eq!(backup.calls(), 2);
    let skip = &second.attempts()[0];
    assert_eq!(skip.provider, "primary");
    assert_eq!(skip.outcome, Outcome::Skipped);
    assert_eq!(skip.error_kind, Some(ErrorKind::RateLimited));
    let message = skip.message.as_deref().unwrap_or_default();
    assert!(message.contains("asked callers to wait"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn the_cool_down_is_shared_through_the_store() {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let here = limited("p", 1, 30);
    let there = limited("p", 0, 0);
    let a = CooldownClient::new(here)
        .with_store(Arc::clone(&store))
        .with_key("k");
    let b = CooldownClient::new(there.clone())
        .with_store(Arc::clone(&store))
        .with_key("k");
    a.chat(&ChatRequest::user("x")).await.unwrap_err();
    let err = b.chat(&ChatRequest::user("x")).await.unwrap_err();
    assert!(err.is_skip());
    assert_eq!(there.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_retry_loop_waits_out_the_cool_down_it_started_and_goes_through() {
    let target = limited("p", 1, 2);
    let client = CooldownClient::new(target.clone()).with_retry(RetryPolicy::default());
    let started = Instant::now();
    let answer = client.chat(&ChatRequest::user("x")).await.unwrap();
    assert_eq!(answer.text(), "ok");
    assert_eq!(target.calls(), 2);
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_skip_is_not_retried_and_a_long_wait_is_capped() {
    let target = limited("p", 1, 3_600);
    let client = CooldownClient::new(target.clone()).with_max_cooldown(Duration::from_secs(60));
    client.chat(&ChatRequest::user("x")).await.unwrap_err();
    assert_eq!(client.readiness().wait(), Duration::from_secs(60));
    let retried = client.clone().with_retry(RetryPolicy::default());
    let started = Instant::now();
    let err = retried.chat(&ChatRequest::user("x")).await.unwrap_err();
    assert!(err.is_skip(), "{err}");
    assert_eq!(started.elapsed(), Duration::ZERO, "a skip moves on at once");
    assert_eq!(target.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn errors_without_a_wait_or_from_no_provider_start_no_cool_down() {
    let client = CooldownClient::new(FunctionClient::new("m", |_r: &ChatRequest| {
        Err(Error::from_status("p", 503, "down"))
    }));
    client.chat(&ChatRequest::user("x")).await.unwrap_err();
    assert!(client.readiness().is_ready());
    let local = CooldownClient::new(FunctionClient::new("m", |_r: &ChatRequest| {
        Err(Error::new(ErrorKind::CircuitOpen, "open").with_retry_after(Duration::from_secs(9)))
    }));
    local.chat(&ChatRequest::user("x")).await.unwrap_err();
    assert!(local.readiness().is_ready());
}
