use std::time::Duration;

use super::affinity::{rendezvous, Hash64, Pins};
use super::select::TargetStats;
use super::*;
use crate::client::ChatClientExt;
use crate::providers::FunctionClient;
use crate::types::Message;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn peak_ewma_takes_a_slower_sample_at_once_and_a_faster_one_gradually() {
    let stats = TargetStats::new(Duration::from_secs(10));
    let now = Instant::now();
    stats.record(now, Ok(ms(100)));
    assert_eq!(stats.latency_ns(), 100e6);
    stats.record(now, Ok(ms(300)));
    assert_eq!(stats.latency_ns(), 300e6, "a peak is taken at once");
    stats.record(now + ms(100), Ok(ms(100)));
    let blended = stats.latency_ns();
    assert!(blended < 300e6 && blended > 290e6, "{blended}");
    // Ten seconds later a fast answer weighs 1 - e^-1 of the estimate.
    stats.record(now + Duration::from_secs(10) + ms(100), Ok(ms(100)));
    let later = stats.latency_ns();
    assert!((later - (blended * (-1f64).exp() + 100e6 * (1.0 - (-1f64).exp()))).abs() < 1e3);
}

#[tokio::test(start_paused = true)]
async fn cost_grows_with_load_and_errors_and_fades_when_idle() {
    let stats = TargetStats::new(Duration::from_secs(10));
    let now = Instant::now();
    assert_eq!(stats.cost(now), 0.0, "an unseen idle target is tried first");
    stats.record(now, Ok(ms(100)));
    let base = stats.cost(now);
    assert_eq!(base, 100e6);
    stats.record(now, Err(()));
    assert!(
        stats.cost(now) > base * 2.0,
        "a failure costs as much as a slow answer"
    );
    let later = now + Duration::from_secs(30);
    assert!(
        stats.cost(later) < stats.cost(now) / 10.0,
        "idle targets fade"
    );
}

#[test]
fn the_conversation_hash_is_stable_and_separates_values() {
    // Fixed values: replicas must agree, so the hash may not change between builds.
    assert_eq!(
        Hash64::new().chain(b"conv-1").finish(),
        Hash64::new().chain(b"conv-1").finish()
    );
    assert_ne!(
        Hash64::new().chain(b"conv-1").finish(),
        Hash64::new().chain(b"conv-2").finish()
    );
    assert_ne!(
        Hash64::new().chain(b"ab").chain(b"c").finish(),
        Hash64::new().chain(b"a").chain(b"bc").finish()
    );
    assert_eq!(
        Hash64::new().chain(b"switchboard").finish(),
        0x7088_2eaa_88ab_fe6b
    );
}

#[test]
fn the_prefix_key_is_the_same_on_every_turn_and_differs_between_conversations() {
    let first = ChatRequest::new(vec![Message::system("sys"), Message::user("task A")]);
    let mut later = first.clone();
    later.messages.push(Message::assistant("step"));
    later.messages.push(Message::user("go on"));
    let other = ChatRequest::new(vec![Message::system("sys"), Message::user("task B")]);
    let key = AffinityKey::Prefix;
    assert_eq!(key.hash_of(&first), key.hash_of(&later));
    assert_ne!(key.hash_of(&first), key.hash_of(&other));
    let with_tool = first.clone().with_tool(crate::types::ToolSpec::new(
        "f",
        "does f",
        serde_json::json!({"type": "object"}),
    ));
    assert_ne!(
        key.hash_of(&first),
        key.hash_of(&with_tool),
        "tools are part of the prefix"
    );
}

#[test]
fn field_keys_read_routing_hints_then_extra() {
    let mut req = ChatRequest::user("x");
    assert_eq!(AffinityKey::User.hash_of(&req), None);
    req.extra.insert("user".into(), "u1".into());
    let from_extra = AffinityKey::User.hash_of(&req);
    req.extra.clear();
    req.routing.user = Some("u1".into());
    assert_eq!(AffinityKey::User.hash_of(&req), from_extra);
    assert_ne!(AffinityKey::PromptCacheKey.hash_of(&req), from_extra);
    req.extra
        .insert("metadata".into(), serde_json::json!({"user_id": "u1"}));
    assert!(AffinityKey::MetadataUserId.hash_of(&req).is_some());
    req.routing.session = Some(String::new());
    assert_eq!(
        AffinityKey::Header("x-session-id".into()).hash_of(&req),
        None,
        "an empty header is no key"
    );
}

#[test]
fn rendezvous_order_is_stable_per_conversation_and_spreads_across_them() {
    let mut first_choices = [0usize; 4];
    for conversation in 0..4000u64 {
        let key = Hash64::new().chain(&conversation.to_le_bytes()).finish();
        let mut a = vec![0, 1, 2, 3];
        let mut b = vec![3, 2, 1, 0];
        rendezvous(key, &mut a);
        rendezvous(key, &mut b);
        assert_eq!(a, b);
        first_choices[a[0]] += 1;
    }
    assert!(
        first_choices.iter().all(|&n| (800..1200).contains(&n)),
        "{first_choices:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn local_pins_expire_and_stay_bounded() {
    let pins = Pins::new(
        Affinity::new(vec![AffinityKey::Prefix]).with_ttl(Duration::from_secs(60)),
        vec!["a:1".into(), "b:2".into()],
    );
    assert_eq!(pins.pin(7, 1).await, 1);
    assert_eq!(pins.local(7, Instant::now()), Some(1));
    // Without a shared store a pin in use is kept alive.
    tokio::time::advance(Duration::from_secs(50)).await;
    assert_eq!(pins.local(7, Instant::now()), Some(1));
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(pins.local(7, Instant::now()), None);
    assert_eq!(pins.len(), 0);
    for c in 0..100_001u64 {
        pins.pin(c, 0).await;
    }
    assert!(pins.len() <= 100_000, "{}", pins.len());
}

#[tokio::test(start_paused = true)]
async fn an_ordered_tier_keeps_the_listed_order() {
    let names = ["a", "b", "c"];
    let tier: Vec<DynClient> = names
        .iter()
        .map(|n| {
            FunctionClient::new(*n, |_r: &ChatRequest| Ok(ChatResponse::from_text("ok"))).boxed()
        })
        .collect();
    let client = BalancedClient::builder()
        .tier(Tier::new(tier))
        .build()
        .unwrap();
    assert_eq!(client.order(None, None), vec![0, 1, 2]);
    assert_eq!(client.targets().count(), 3);
}

/// Counts the warnings logged while it is the default subscriber.
#[derive(Clone, Default)]
struct Warnings(Arc<std::sync::atomic::AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if *event.metadata().level() == tracing::Level::WARN {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_missing_session_header_is_warned_about_once_and_routed_unpinned() {
    use tracing_subscriber::layer::SubscriberExt;
    let warnings = Warnings::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(warnings.clone()));
    tracing::callsite::rebuild_interest_cache();
    let tier: Vec<DynClient> = ["a", "b"]
        .iter()
        .map(|n| {
            FunctionClient::new(*n, |_r: &ChatRequest| Ok(ChatResponse::from_text("ok"))).boxed()
        })
        .collect();
    let client = BalancedClient::builder()
        .tier(Tier::new(tier).strategy(Strategy::Weighted))
        .affinity(Affinity::new(vec!["header:x-session-id".parse().unwrap()]))
        .build()
        .unwrap();
    for _ in 0..5 {
        client.chat(&ChatRequest::user("hi")).await.unwrap();
    }
    assert_eq!(warnings.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(client.pinned(), 0);
    client
        .chat(&ChatRequest::user("hi").with_session("s"))
        .await
        .unwrap();
    assert_eq!(client.pinned(), 1);
}
