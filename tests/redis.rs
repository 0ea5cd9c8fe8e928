//! The Redis state store against a real `redis-server` on loopback (feature `redis`).
//!
//! Each test starts its own server on a free port and kills it at the end. Without
//! `redis-server` installed the tests print a note and pass, unless
//! `SWITCHBOARD_REQUIRE_REDIS=1` (CI) makes them fail.
//!
//! "Two gateways" are two [`RedisStore`]s with their own connections and replicas, as two
//! processes would have.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use switchboard::state::redis::RedisStore;
use switchboard::state::{BreakerPhase, StateStore};
use switchboard::{
    BreakerConfig, BreakerState, ChatClient, ChatRequest, ChatResponse, CircuitBreakerClient,
    Error, ErrorKind, FunctionClient,
};
use switchboard_testkit::redis_server::RedisServer;

async fn store(server: &RedisServer, prefix: &str) -> RedisStore {
    RedisStore::builder(server.url())
        .key_prefix(prefix)
        .ttl(Duration::from_secs(60))
        .timeout(Duration::from_millis(300))
        .connect()
        .await
        .expect("the test's redis-server answers")
}

async fn raw(server: &RedisServer, args: &[&str]) -> redis::Value {
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(&mut conn).await.unwrap()
}

/// A target whose health the test switches, and whose calls take `delay`.
#[derive(Clone)]
struct Target {
    client: FunctionClient,
    healthy: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
}

fn target(delay: Duration) -> Target {
    let healthy = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let (h, c) = (healthy.clone(), calls.clone());
    let client = FunctionClient::new_async("shared-model", move |_req| {
        let (h, c) = (h.clone(), c.clone());
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            if h.load(Ordering::SeqCst) {
                Ok(ChatResponse::from_text("ok"))
            } else {
                Err(Error::from_status("p", 503, "down"))
            }
        }
    });
    Target {
        client,
        healthy,
        calls,
    }
}

fn breaker(
    target: &Target,
    store: &RedisStore,
    cooldown: Duration,
) -> CircuitBreakerClient<FunctionClient> {
    let config = BreakerConfig::default()
        .with_consecutive_failures(2)
        .with_cooldown(cooldown)
        .with_max_cooldown(cooldown * 4);
    CircuitBreakerClient::new(target.client.clone(), config)
        .with_store(Arc::new(store.clone()))
        .with_key("route/function:shared-model")
}

#[tokio::test]
async fn the_store_keeps_records_and_counters_under_its_prefix_with_a_ttl() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = store(&server, "t1:").await;
    store
        .update_breaker_shared("a", &mut |r| r.consecutive_failures += 2)
        .await;
    store
        .update_breaker_shared("a", &mut |r| r.consecutive_failures += 1)
        .await;
    assert_eq!(store.breaker("a").consecutive_failures, 3);
    assert_eq!(store.add_shared("spend", 5).await, 5);
    assert_eq!(store.add_shared("spend", -2).await, 3);

    // A second process sees the same values once its replica is fresh.
    let other = self::store(&server, "t1:").await;
    other
        .update_breaker_shared("b", &mut |r| r.consecutive_failures += 1)
        .await;
    other.update_breaker_shared("a", &mut |_| {}).await;
    assert_eq!(other.breaker("a").consecutive_failures, 3);
    assert_eq!(other.breaker("b").consecutive_failures, 1);
    assert_eq!(other.add_shared("spend", 0).await, 3);
    assert_eq!((store.counter("spend"), other.counter("spend")), (3, 3));
    // A synchronous add answers from this process at once and reaches Redis soon after.
    assert_eq!(other.add("hits", 2), 2);
    let mut seen = redis::Value::Nil;
    for _ in 0..50 {
        seen = raw(&server, &["GET", "t1:counter:hits"]).await;
        if seen != redis::Value::Nil {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen, redis::Value::BulkString(b"2".to_vec()));
    assert_eq!(other.breaker("never-written").phase, BreakerPhase::Closed);

    // Another prefix is another namespace.
    let elsewhere = self::store(&server, "t1-other:").await;
    elsewhere.update_breaker_shared("a", &mut |_| {}).await;
    assert_eq!(elsewhere.breaker("a").consecutive_failures, 0);

    let ttl = raw(&server, &["PTTL", "t1:breaker:a"]).await;
    assert!(
        matches!(ttl, redis::Value::Int(ms) if ms > 50_000 && ms <= 60_000),
        "{ttl:?}"
    );
    let ttl = raw(&server, &["PTTL", "t1:counter:spend"]).await;
    assert!(
        matches!(ttl, redis::Value::Int(ms) if ms > 50_000),
        "{ttl:?}"
    );
}

#[tokio::test]
async fn a_breaker_opened_by_one_gateway_is_open_for_the_other() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let t = target(Duration::ZERO);
    let first = breaker(&t, &store(&server, "t2:").await, Duration::from_secs(30));
    let second = breaker(&t, &store(&server, "t2:").await, Duration::from_secs(30));
    for _ in 0..2 {
        first.chat(&ChatRequest::user("hi")).await.unwrap_err();
    }
    assert!(matches!(first.state(), BreakerState::Open { .. }));
    assert_eq!(t.calls.load(Ordering::SeqCst), 2);

    let err = second.chat(&ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    let wait = err
        .retry_after()
        .expect("an open circuit says when to retry");
    assert!(wait > Duration::from_secs(25), "{wait:?}");
    assert_eq!(t.calls.load(Ordering::SeqCst), 2, "the second never called");
    assert!(matches!(second.state(), BreakerState::Open { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_one_half_open_probe_goes_through_across_gateways() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cooldown = Duration::from_millis(300);
    let t = target(Duration::from_millis(300));
    let first = breaker(&t, &store(&server, "t3:").await, cooldown);
    let second = breaker(&t, &store(&server, "t3:").await, cooldown);
    for _ in 0..2 {
        first.chat(&ChatRequest::user("hi")).await.unwrap_err();
    }
    tokio::time::sleep(cooldown + Duration::from_millis(50)).await;
    t.calls.store(0, Ordering::SeqCst);
    t.healthy.store(true, Ordering::SeqCst);

    let mut calls = Vec::new();
    for i in 0..16 {
        let client = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        calls.push(tokio::spawn(async move {
            client.chat(&ChatRequest::user("probe?")).await
        }));
    }
    let mut passed = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => passed += 1,
            Err(e) => assert_eq!(e.kind(), ErrorKind::CircuitOpen, "{e}"),
        }
    }
    assert_eq!(passed, 1, "one probe across both gateways");
    assert_eq!(t.calls.load(Ordering::SeqCst), 1);
    // The probe succeeded, so calls flow again through both; each one's view of the state
    // follows its last round trip to Redis.
    second.chat(&ChatRequest::user("hi")).await.unwrap();
    first.chat(&ChatRequest::user("hi")).await.unwrap();
    assert_eq!(first.state(), BreakerState::Closed);
    assert_eq!(second.state(), BreakerState::Closed);
}

#[tokio::test]
async fn a_failed_probe_reopens_for_both_with_a_longer_cooldown() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cooldown = Duration::from_millis(200);
    let t = target(Duration::ZERO);
    let first = breaker(&t, &store(&server, "t4:").await, cooldown);
    let second = breaker(&t, &store(&server, "t4:").await, cooldown);
    for _ in 0..2 {
        first.chat(&ChatRequest::user("hi")).await.unwrap_err();
    }
    tokio::time::sleep(cooldown + Duration::from_millis(50)).await;
    let err = second.chat(&ChatRequest::user("probe")).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Server,
        "the probe reached the target"
    );
    let err = first.chat(&ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    let wait = err.retry_after().unwrap();
    assert!(wait > cooldown, "the cooldown doubled: {wait:?}");
    assert_eq!(t.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_probe_whose_process_vanished_expires_after_the_lease() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::builder(server.url())
        .key_prefix("t5:")
        .probe_lease(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    // A record as a process that took the probe and died would leave it.
    store
        .update_breaker_shared("k", &mut |r| {
            r.phase = BreakerPhase::HalfOpen;
            r.probe_in_flight = true;
        })
        .await;
    let mut taken = false;
    store
        .update_breaker_shared("k", &mut |r| taken = !r.probe_in_flight)
        .await;
    assert!(!taken, "the probe is still in flight within the lease");
    tokio::time::sleep(Duration::from_millis(400)).await;
    store
        .update_breaker_shared("k", &mut |r| taken = !r.probe_in_flight)
        .await;
    assert!(taken, "after the lease the next caller may probe");
}

#[tokio::test]
async fn when_redis_goes_away_breakers_keep_working_on_local_state() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let shared = store(&server, "t6:").await;
    let t = target(Duration::ZERO);
    let client = breaker(&t, &shared, Duration::from_secs(30));
    t.healthy.store(true, Ordering::SeqCst);
    client.chat(&ChatRequest::user("hi")).await.unwrap();
    assert!(shared.is_reachable());

    server.stop();
    // Calls still go through (no error from the store), and the breaker still opens, now
    // on this process's state.
    let started = std::time::Instant::now();
    client.chat(&ChatRequest::user("hi")).await.unwrap();
    assert!(!shared.is_reachable());
    t.healthy.store(false, Ordering::SeqCst);
    for _ in 0..2 {
        let err = client.chat(&ChatRequest::user("hi")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Server);
    }
    let err = client.chat(&ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "an outage costs at most a timeout now and then: {:?}",
        started.elapsed()
    );
    assert!(matches!(client.state(), BreakerState::Open { .. }));

    // Redis comes back (empty): after the reconnect pause the store uses it again, and
    // its record wins over the local one.
    server.restart();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    t.healthy.store(true, Ordering::SeqCst);
    client.chat(&ChatRequest::user("hi")).await.unwrap();
    assert!(shared.is_reachable());
    let record = raw(
        &server,
        &["EXISTS", "t6:breaker:route/function:shared-model"],
    )
    .await;
    assert_eq!(
        record,
        redis::Value::Int(0),
        "a closed, clean record is not written"
    );
    let check = shared.check().await;
    assert!(check.is_ok(), "{check:?}");
}
