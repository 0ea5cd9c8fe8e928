//! Routing: tiers, strategies and prompt-cache affinity of `BalancedClient`, over
//! `FunctionClient` targets in paused tokio time (so latencies are exact and the tests run
//! in milliseconds of real time, however loaded the machine), and the cache-read ratio with
//! and without affinity over `FaultProvider` upstreams (real sockets) that model a prompt
//! cache.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard::{
    create_client_with, Affinity, AffinityKey, BalancedClient, BreakerConfig, ChatClient,
    ChatClientExt, ChatRequest, ChatResponse, CircuitBreakerClient, ClientOptions, DynClient,
    Error, ErrorKind, FunctionClient, HedgePolicy, Message, Strategy, Tier,
};
use switchboard_testkit::fault::{FaultProvider, Protocol};

/// A target answering with its own name after `latency` (milliseconds, changeable).
fn timed(name: &'static str, latency: Arc<AtomicU64>) -> FunctionClient {
    FunctionClient::new_async(name, move |_req: ChatRequest| {
        let latency = latency.load(Ordering::SeqCst);
        async move {
            tokio::time::sleep(Duration::from_millis(latency)).await;
            Ok(ChatResponse::from_text(name))
        }
    })
}

fn instant(name: &'static str) -> FunctionClient {
    FunctionClient::new(name, move |_req: &ChatRequest| {
        Ok(ChatResponse::from_text(name))
    })
}

/// Runs `workers` tasks that send requests back to back until `until` (virtual time).
async fn load(client: &Arc<BalancedClient>, workers: usize, until: tokio::time::Instant) {
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let client = Arc::clone(client);
            tokio::spawn(async move {
                while tokio::time::Instant::now() < until {
                    client.chat(&ChatRequest::user("hi")).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

fn calls(targets: &[FunctionClient]) -> Vec<usize> {
    targets.iter().map(FunctionClient::calls).collect()
}

fn share(before: &[usize], after: &[usize], index: usize) -> f64 {
    let deltas: Vec<usize> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    deltas[index] as f64 / deltas.iter().sum::<usize>() as f64
}

#[tokio::test(start_paused = true)]
async fn weighted_three_to_one_over_4000_requests_is_within_three_percent() {
    let (a, b) = (instant("a"), instant("b"));
    let client = BalancedClient::builder()
        .tier(
            Tier::new(vec![a.clone().boxed(), b.clone().boxed()])
                .strategy(Strategy::Weighted)
                .weights([3.0, 1.0]),
        )
        .build()
        .unwrap();
    for _ in 0..4000 {
        client.chat(&ChatRequest::user("hi")).await.unwrap();
    }
    let share_a = a.calls() as f64 / 4000.0;
    assert!((share_a - 0.75).abs() <= 0.03, "a got {share_a:.3} of 4000");
    assert_eq!(a.calls() + b.calls(), 4000);
}

#[tokio::test(start_paused = true)]
async fn weighted_skips_a_target_whose_breaker_is_open() {
    let failing = FunctionClient::new("down", |_req: &ChatRequest| {
        Err(Error::from_status("down", 503, "unavailable"))
    });
    let breaker = CircuitBreakerClient::new(
        failing.clone(),
        BreakerConfig::default()
            .with_consecutive_failures(1)
            .with_cooldown(Duration::from_secs(60)),
    );
    let up = instant("up");
    let client = BalancedClient::builder()
        .tier(
            Tier::new(vec![breaker.boxed(), up.clone().boxed()])
                .strategy(Strategy::Weighted)
                .weights([9.0, 1.0]),
        )
        .build()
        .unwrap();
    for _ in 0..100 {
        assert_eq!(
            client.chat(&ChatRequest::user("hi")).await.unwrap().text(),
            "up"
        );
    }
    // One failure opened the breaker; every later pick skipped it without calling it.
    assert_eq!(failing.calls(), 1);
    assert_eq!(up.calls(), 100);
}

#[tokio::test(start_paused = true)]
async fn latency_moves_traffic_off_a_target_whose_latency_triples_and_back() {
    let latencies: Vec<Arc<AtomicU64>> = (0..4).map(|_| Arc::new(AtomicU64::new(100))).collect();
    let names = ["t0", "t1", "t2", "t3"];
    let targets: Vec<FunctionClient> = names
        .iter()
        .zip(&latencies)
        .map(|(name, latency)| timed(name, Arc::clone(latency)))
        .collect();
    let client = Arc::new(
        BalancedClient::builder()
            .tier(
                Tier::new(targets.iter().map(|t| t.clone().boxed()).collect())
                    .strategy(Strategy::Latency),
            )
            .build()
            .unwrap(),
    );
    let start = tokio::time::Instant::now();
    let at = |secs: u64| start + Duration::from_secs(secs);

    // Two callers over four targets: the choice is made on latency, not on queueing.
    load(&client, 2, at(30)).await;
    let healthy = calls(&targets);
    let fair = healthy[0] as f64 / healthy.iter().sum::<usize>() as f64;
    assert!(
        fair > 0.15,
        "t0 should get its share while healthy: {healthy:?}"
    );

    latencies[0].store(300, Ordering::SeqCst);
    load(&client, 2, at(35)).await;
    let shifted = calls(&targets);
    load(&client, 2, at(95)).await;
    let slow = calls(&targets);
    let slow_share = share(&shifted, &slow, 0);
    assert!(
        slow_share <= fair * 0.2,
        "t0 kept {slow_share:.3} of the traffic while 3x slower (fair share {fair:.3})"
    );

    latencies[0].store(100, Ordering::SeqCst);
    load(&client, 2, at(155)).await;
    let recovering = calls(&targets);
    load(&client, 2, at(215)).await;
    let recovered = calls(&targets);
    let back = share(&recovering, &recovered, 0);
    assert!(
        back >= fair * 0.6,
        "t0 won back only {back:.3} of the traffic after recovering (fair share {fair:.3})"
    );
}

#[tokio::test(start_paused = true)]
async fn latency_sheds_a_failing_target_without_a_breaker() {
    let flaky_calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&flaky_calls);
    let flaky = FunctionClient::new_async("flaky", move |_req: ChatRequest| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if n % 2 == 0 {
                Err(Error::from_status("flaky", 500, "internal error"))
            } else {
                Ok(ChatResponse::from_text("flaky"))
            }
        }
    });
    let steady: Vec<FunctionClient> = ["s1", "s2", "s3"]
        .iter()
        .map(|n| timed(n, Arc::new(AtomicU64::new(100))))
        .collect();
    let mut tier: Vec<DynClient> = vec![flaky.clone().boxed()];
    tier.extend(steady.iter().map(|t| t.clone().boxed()));
    let client = Arc::new(
        BalancedClient::builder()
            .tier(Tier::new(tier).strategy(Strategy::Latency))
            .build()
            .unwrap(),
    );
    load(
        &client,
        4,
        tokio::time::Instant::now() + Duration::from_secs(60),
    )
    .await;
    let total: usize = flaky.calls() + steady.iter().map(FunctionClient::calls).sum::<usize>();
    let flaky_share = flaky.calls() as f64 / total as f64;
    assert!(
        flaky_share < 0.10,
        "a target failing half its calls kept {flaky_share:.3} of the traffic"
    );
}

#[tokio::test(start_paused = true)]
async fn least_busy_sends_little_to_a_slow_target() {
    let slow = timed("slow", Arc::new(AtomicU64::new(1000)));
    let fast: Vec<FunctionClient> = ["f1", "f2"]
        .iter()
        .map(|n| timed(n, Arc::new(AtomicU64::new(100))))
        .collect();
    let mut tier: Vec<DynClient> = vec![slow.clone().boxed()];
    tier.extend(fast.iter().map(|t| t.clone().boxed()));
    let client = Arc::new(
        BalancedClient::builder()
            .tier(Tier::new(tier).strategy(Strategy::LeastBusy))
            .build()
            .unwrap(),
    );
    load(
        &client,
        6,
        tokio::time::Instant::now() + Duration::from_secs(60),
    )
    .await;
    let total = slow.calls() + fast.iter().map(FunctionClient::calls).sum::<usize>();
    let slow_share = slow.calls() as f64 / total as f64;
    // Round-robin would give it a third; in-flight counts hold it near a tenth of that.
    assert!(slow_share < 0.10, "the slow target got {slow_share:.3}");
    assert!(
        slow.calls() > 0,
        "the slow target still serves some requests"
    );
    assert!(client.in_flight().iter().all(|&n| n == 0));
}

#[tokio::test(start_paused = true)]
async fn failover_moves_within_a_tier_then_to_the_next() {
    let down = |name: &'static str| {
        FunctionClient::new(name, move |_req: &ChatRequest| {
            Err(Error::from_status(name, 503, "unavailable"))
        })
    };
    let (a, b) = (down("a"), down("b"));
    let (c, d) = (instant("c"), instant("d"));
    let client = BalancedClient::builder()
        .tier(Tier::new(vec![a.clone().boxed(), b.clone().boxed()]).strategy(Strategy::LeastBusy))
        .tier(Tier::new(vec![c.clone().boxed(), d.clone().boxed()]))
        .build()
        .unwrap();
    let response = client.chat(&ChatRequest::user("hi")).await.unwrap();
    assert_eq!(response.text(), "c", "the second tier is ordered: c first");
    let tried: Vec<&str> = response
        .attempts()
        .iter()
        .map(|a| a.model.as_str())
        .collect();
    assert_eq!(tried.len(), 3, "{tried:?}");
    assert_eq!(
        tried[..2].iter().collect::<HashSet<_>>(),
        ["a", "b"].iter().collect::<HashSet<_>>()
    );
    assert_eq!(tried[2], "c");
    assert_eq!((a.calls(), b.calls(), c.calls(), d.calls()), (1, 1, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_healthy_first_tier_keeps_every_request() {
    let (a, b, backup) = (instant("a"), instant("b"), instant("backup"));
    let client = BalancedClient::builder()
        .tier(Tier::new(vec![a.clone().boxed(), b.clone().boxed()]).strategy(Strategy::Weighted))
        .tier(Tier::new(vec![backup.clone().boxed()]))
        .build()
        .unwrap();
    for _ in 0..100 {
        client.chat(&ChatRequest::user("hi")).await.unwrap();
    }
    assert_eq!((a.calls(), b.calls(), backup.calls()), (50, 50, 0));
}

/// Turn `turn` of conversation `id`: a shared system prompt, its own opening message, and
/// the turns so far.
fn turn(id: usize, turn: usize) -> ChatRequest {
    let mut messages = vec![
        Message::system("You are a careful agent."),
        Message::user(format!("task {id}")),
    ];
    for t in 0..turn {
        messages.push(Message::assistant(format!("step {t}")));
        messages.push(Message::user(format!("continue {t}")));
    }
    ChatRequest::new(messages)
}

/// Runs 100 concurrent conversations of 20 turns; returns who served each turn.
async fn conversations(
    client: Arc<BalancedClient>,
    request: fn(usize, usize) -> ChatRequest,
) -> HashMap<usize, Vec<String>> {
    let served = Arc::new(Mutex::new(HashMap::<usize, Vec<String>>::new()));
    let tasks: Vec<_> = (0..100)
        .map(|id| {
            let (client, served) = (Arc::clone(&client), Arc::clone(&served));
            tokio::spawn(async move {
                for t in 0..20 {
                    let answer = client.chat(&request(id, t)).await.unwrap();
                    served
                        .lock()
                        .unwrap()
                        .entry(id)
                        .or_default()
                        .push(answer.text());
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    Arc::try_unwrap(served).unwrap().into_inner().unwrap()
}

fn four_timed() -> Vec<FunctionClient> {
    ["t0", "t1", "t2", "t3"]
        .iter()
        .map(|n| timed(n, Arc::new(AtomicU64::new(50))))
        .collect()
}

fn assert_pinned_and_spread(served: &HashMap<usize, Vec<String>>) {
    let mut per_target: HashMap<&str, usize> = HashMap::new();
    for (id, turns) in served {
        assert_eq!(turns.len(), 20);
        let targets: HashSet<&String> = turns.iter().collect();
        assert_eq!(targets.len(), 1, "conversation {id} moved: {turns:?}");
        *per_target.entry(turns[0].as_str()).or_default() += 1;
    }
    assert_eq!(
        per_target.len(),
        4,
        "conversations not spread: {per_target:?}"
    );
    assert!(
        per_target.values().all(|&n| n >= 10),
        "conversations spread unevenly: {per_target:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn affinity_keeps_each_conversation_on_one_target_while_spreading_them() {
    for strategy in [Strategy::LeastBusy, Strategy::Latency, Strategy::Weighted] {
        let targets = four_timed();
        let client = Arc::new(
            BalancedClient::builder()
                .tier(
                    Tier::new(targets.iter().map(|t| t.clone().boxed()).collect())
                        .strategy(strategy),
                )
                .affinity(Affinity::new(vec![AffinityKey::Prefix]))
                .build()
                .unwrap(),
        );
        let served = conversations(Arc::clone(&client), turn).await;
        assert_pinned_and_spread(&served);
        assert_eq!(client.pinned(), 100, "{strategy}");
    }
}

#[tokio::test(start_paused = true)]
async fn affinity_keys_on_a_session_id_before_the_prefix() {
    let targets = four_timed();
    let client = Arc::new(
        BalancedClient::builder()
            .tier(
                Tier::new(targets.iter().map(|t| t.clone().boxed()).collect())
                    .strategy(Strategy::Weighted),
            )
            .affinity(Affinity::new(vec![
                "header:X-Session-Id".parse().unwrap(),
                AffinityKey::Prefix,
            ]))
            .build()
            .unwrap(),
    );
    // Every conversation opens with the same words; only the session id tells them apart.
    let served = conversations(Arc::clone(&client), |id, t| {
        turn(0, t).with_session(format!("session-{id}"))
    })
    .await;
    assert_pinned_and_spread(&served);
    assert_eq!(
        client.affinity().unwrap().session_header(),
        Some("x-session-id")
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_without_any_affinity_key_is_routed_unpinned() {
    let targets = four_timed();
    let client = BalancedClient::builder()
        .tier(
            Tier::new(targets.iter().map(|t| t.clone().boxed()).collect())
                .strategy(Strategy::Weighted),
        )
        .affinity(Affinity::new(vec!["header:x-session-id".parse().unwrap()]))
        .build()
        .unwrap();
    for _ in 0..8 {
        client.chat(&turn(1, 3)).await.unwrap();
    }
    assert_eq!(calls(&targets), vec![2, 2, 2, 2], "spread, not pinned");
    assert_eq!(client.pinned(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_pinned_conversation_moves_while_its_target_is_down_and_returns_after() {
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = Arc::clone(&healthy);
    let t0 = FunctionClient::new("t0", move |_req: &ChatRequest| {
        if flag.load(Ordering::SeqCst) {
            Ok(ChatResponse::from_text("t0"))
        } else {
            Err(Error::from_status("t0", 503, "unavailable"))
        }
    });
    let breaker = BreakerConfig::default()
        .with_consecutive_failures(1)
        .with_cooldown(Duration::from_secs(30));
    let mut tier: Vec<DynClient> = vec![CircuitBreakerClient::new(t0.clone(), breaker).boxed()];
    tier.extend(["t1", "t2", "t3"].iter().map(|n| instant(n).boxed()));
    let client = BalancedClient::builder()
        .tier(Tier::new(tier).strategy(Strategy::Weighted))
        .affinity(Affinity::new(vec![AffinityKey::Prefix]))
        .build()
        .unwrap();
    // 40 conversations: ten are pinned to t0 by the round-robin.
    let mut home = HashMap::new();
    for id in 0..40 {
        home.insert(id, client.chat(&turn(id, 0)).await.unwrap().text());
    }
    let on_t0: Vec<usize> = (0..40).filter(|id| home[id] == "t0").collect();
    assert_eq!(on_t0.len(), 10);

    healthy.store(false, Ordering::SeqCst);
    let mut while_down: HashMap<usize, HashSet<String>> = HashMap::new();
    for t in 1..6 {
        for id in 0..40 {
            let answer = client.chat(&turn(id, t)).await.unwrap();
            while_down.entry(id).or_default().insert(answer.text());
        }
    }
    for id in 0..40 {
        let seen = &while_down[&id];
        assert_eq!(seen.len(), 1, "conversation {id} wandered: {seen:?}");
        if home[&id] == "t0" {
            assert!(!seen.contains("t0"));
        } else {
            assert!(seen.contains(&home[&id]), "only t0's conversations move");
        }
    }
    // The breaker opened on the first failure: t0 was called once while down.
    assert_eq!(t0.calls(), 10 + 1);

    healthy.store(true, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(31)).await;
    for id in 0..40 {
        let answer = client.chat(&turn(id, 6)).await.unwrap();
        assert_eq!(answer.text(), home[&id], "conversation {id} did not return");
    }
}

#[tokio::test(start_paused = true)]
async fn a_pinned_request_is_never_hedged_and_an_unpinned_one_is() {
    let targets: Vec<FunctionClient> = ["t0", "t1"]
        .iter()
        .map(|n| timed(n, Arc::new(AtomicU64::new(1000))))
        .collect();
    let client = BalancedClient::builder()
        .tier(
            Tier::new(targets.iter().map(|t| t.clone().boxed()).collect())
                .strategy(Strategy::Weighted),
        )
        .hedge(HedgePolicy::fixed(Duration::from_millis(100)))
        .affinity(Affinity::new(vec!["header:x-session-id".parse().unwrap()]))
        .build()
        .unwrap();
    for t in 0..10 {
        client.chat(&turn(1, t).with_session("s-1")).await.unwrap();
    }
    let pinned = calls(&targets);
    assert_eq!(
        pinned.iter().sum::<usize>(),
        10,
        "one call per turn: {pinned:?}"
    );
    assert!(pinned.contains(&10), "all on one target: {pinned:?}");

    let answer = client.chat(&turn(2, 0)).await.unwrap();
    assert_eq!(
        answer.attempts().len(),
        2,
        "without a session the slow first target is hedged"
    );
    assert_eq!(calls(&targets).iter().sum::<usize>(), 12);
}

#[tokio::test(start_paused = true)]
async fn streams_follow_the_strategy_and_the_pin() {
    let targets = four_timed();
    let client = BalancedClient::builder()
        .tier(
            Tier::new(targets.iter().map(|t| t.clone().boxed()).collect())
                .strategy(Strategy::Weighted),
        )
        .affinity(Affinity::default())
        .build()
        .unwrap();
    let mut seen = HashSet::new();
    for t in 0..5 {
        let stream = client.chat_stream(&turn(7, t)).await.unwrap();
        seen.insert(stream.collect_response().await.unwrap().text());
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(client.in_flight(), vec![0, 0, 0, 0]);
}

#[test]
fn bad_tiers_are_config_errors_naming_the_problem() {
    let one = || vec![instant("a").boxed()];
    let cases: Vec<(Tier, &str)> = vec![
        (Tier::new(vec![]), "`tiers[0].targets` is empty"),
        (
            Tier::new(one()).strategy(Strategy::Weighted).weights([0.0]),
            "`tiers[0].weights[0]` = `0` is not a positive weight",
        ),
        (
            Tier::new(one())
                .strategy(Strategy::Weighted)
                .weights([-2.0]),
            "`tiers[0].weights[0]` = `-2` is not a positive weight",
        ),
        (
            Tier::new(one())
                .strategy(Strategy::Weighted)
                .weights([1.0, 2.0]),
            "`tiers[0].weights` has 2 values for 1 targets",
        ),
        (
            Tier::new(one()).weights([1.0]),
            "`tiers[0].weights` is set, and the strategy is `ordered`",
        ),
    ];
    for (tier, expected) in cases {
        let err = BalancedClient::builder().tier(tier).build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.message().contains(expected), "{}", err.message());
        assert!(err.fix().is_some());
    }
    let err = BalancedClient::builder().build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let err = BalancedClient::builder()
        .tier(Tier::new(one()))
        .affinity(Affinity::new(vec![
            "header:a".parse().unwrap(),
            "header:b".parse().unwrap(),
        ]))
        .build()
        .unwrap_err();
    assert!(
        err.message().contains("more than one session header"),
        "{err}"
    );
    let err = "header:bad name".parse::<AffinityKey>().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let err = "session".parse::<AffinityKey>().unwrap_err();
    assert!(
        err.message().contains("`session` is not an affinity key"),
        "{err}"
    );
    let err = "fastest".parse::<Strategy>().unwrap_err();
    assert!(
        err.message().contains("`fastest` is not a strategy"),
        "{err}"
    );
}

/// The cache-read ratio (cache-read ÷ input tokens) of 40 concurrent conversations of 10
/// turns each, over four upstreams of `protocol` that model a provider's prompt cache, with
/// the `weighted` strategy (equal weights: round-robin), with or without affinity on the
/// cacheable prefix.
async fn cache_read_ratio(protocol: Protocol, affinity: bool) -> f64 {
    let mut upstreams = Vec::new();
    for _ in 0..4 {
        upstreams.push(
            FaultProvider::builder()
                .tokens(3)
                .prompt_cache(100)
                .start()
                .await
                .unwrap(),
        );
    }
    let targets: Vec<DynClient> = upstreams
        .iter()
        .map(|upstream| {
            let options = ClientOptions::new()
                .retry(None)
                .env(|_| None)
                .api_key("test-key-not-real")
                .base_url(upstream.base_url(protocol));
            create_client_with(&protocol.spec("m"), &options).unwrap()
        })
        .collect();
    let mut builder =
        BalancedClient::builder().tier(Tier::new(targets).strategy(Strategy::Weighted));
    if affinity {
        builder = builder.affinity(Affinity::new(vec![AffinityKey::Prefix]));
    }
    let client = Arc::new(builder.build().unwrap());
    let tasks: Vec<_> = (0..40)
        .map(|id| {
            let client = Arc::clone(&client);
            tokio::spawn(async move {
                let (mut input, mut read) = (0, 0);
                let mut messages = vec![
                    Message::system("You are a careful agent. Follow the house rules."),
                    Message::user(format!("task {id}")),
                ];
                for _ in 0..10 {
                    let answer = client
                        .chat(&ChatRequest::new(messages.clone()).with_max_tokens(16))
                        .await
                        .unwrap();
                    input += answer.usage.input_tokens;
                    read += answer.usage.cache_read_tokens.unwrap_or(0);
                    messages.push(Message::assistant(answer.text()));
                    messages.push(Message::user("continue"));
                }
                (input, read)
            })
        })
        .collect();
    let (mut input, mut read) = (0, 0);
    for task in tasks {
        let (i, r) = task.await.unwrap();
        input += i;
        read += r;
    }
    read as f64 / input as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn affinity_keeps_the_prompt_cache_warm_over_upstreams_that_model_one() {
    for protocol in [Protocol::OpenAi, Protocol::Anthropic] {
        let without = cache_read_ratio(protocol, false).await;
        let with = cache_read_ratio(protocol, true).await;
        // Printed for docs/routing.md (`cargo test --test routing prompt_cache -- --nocapture`).
        println!(
            "{protocol:?}: cache-read ratio without affinity {without:.3}, with affinity {with:.3}"
        );
        assert!(with >= 0.8, "{protocol:?}: with affinity {with:.3}");
        assert!(
            without <= with - 0.2,
            "{protocol:?}: without {without:.3}, with {with:.3}"
        );
    }
}
