use super::wire::{Clock, WireRecord};
use super::*;
use crate::state::BreakerPhase;

#[allow(dead_code)]
fn _assert_impls() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<RedisStore>();
}

#[test]
fn passwords_are_redacted_from_urls() {
    let shown = redact_url("redis://:hunter2@10.0.0.5:6380/1");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.contains("***") && shown.contains("10.0.0.5:6380"),
        "{shown}"
    );
    let user = redact_url("redis://app:s3cret@cache.internal/0");
    assert!(!user.contains("s3cret") && user.contains("app"), "{user}");
    assert_eq!(
        redact_url("redis://127.0.0.1:6379/0"),
        "redis://127.0.0.1:6379/0"
    );
}

#[test]
fn debug_and_errors_never_show_the_password() {
    let builder = RedisStore::builder("redis://:hunter2@127.0.0.1:1/0");
    assert!(!format!("{builder:?}").contains("hunter2"));
    let store = builder.build().unwrap();
    assert!(!format!("{store:?}").contains("hunter2"));
    let err = RedisStore::builder("http://:hunter2@host/")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn a_redis_password_is_scrubbed_from_any_error_once_the_store_is_built() {
    RedisStore::builder("redis://:pa%24%24-word-redis-7f3k@127.0.0.1:1/0")
        .build()
        .unwrap();
    // A server (or anything else) quoting the password, encoded or not, shows neither.
    let err = Error::new(
        ErrorKind::Transport,
        "AUTH failed for pa$$-word-redis-7f3k (pa%24%24-word-redis-7f3k)",
    );
    let text = format!("{err} {err:?}");
    assert!(!text.contains("word-redis-7f3k"), "{text}");
    assert!(text.contains("[redacted]"), "{text}");
}

#[tokio::test]
async fn an_unreachable_server_is_a_transport_error_naming_the_redacted_url() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = RedisStore::builder(format!("redis://:hunter2@127.0.0.1:{port}/0"))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    let text = err.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && !text.contains("hunter2"),
        "{text}"
    );
}

#[tokio::test]
async fn records_survive_the_trip_through_wall_clock_time() {
    let clock = Clock::now();
    let mut record = BreakerRecord {
        phase: BreakerPhase::Open,
        open_until: Some(clock.instant + Duration::from_secs(30)),
        cooldown: Duration::from_secs(30),
        consecutive_failures: 0,
        window: [(clock.instant, true)].into_iter().collect(),
        probe_in_flight: true,
    };
    let wire = WireRecord::from_record(&record, None, &clock);
    assert_eq!(wire.probe_since_ms, Some(clock.wall_ms));
    let (back, since) = wire.to_record(&clock, Duration::from_secs(60));
    assert_eq!(back, record);
    assert_eq!(since, Some(clock.wall_ms));
    // A probe mark older than the lease no longer counts.
    let later = Clock {
        instant: clock.instant + Duration::from_secs(61),
        wall_ms: clock.wall_ms + 61_000,
    };
    let (expired, since) = wire.to_record(&later, Duration::from_secs(60));
    assert!(!expired.probe_in_flight);
    assert_eq!(since, None);
    record.probe_in_flight = false;
    assert_eq!(expired.phase, record.phase);
}
