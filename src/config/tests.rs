use super::*;
use crate::ErrorKind;

const FULL: &str = r#"
[server]
host = "127.0.0.1"
port = 0
api_keys_env = ["GATEWAY_KEY"]

[providers.openai]
base_url = "http://127.0.0.1:9/v1"
api_key_env = "MY_OPENAI_KEY"

[routes.fast]
targets = ["openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest"]
timeout_ms = 1000
deadline_ms = 5000
retry = { max_retries = 1 }
breaker = { consecutive_failures = 3, cooldown_ms = 1000 }
budget = { max_cost_usd = 1.5 }
hedge = { delay_ms = 300 }
"#;

fn err(text: &str) -> Error {
    Settings::from_toml_str(text).unwrap_err()
}

#[test]
fn a_full_file_parses_with_defaults_filled_in() {
    let s = Settings::from_toml_str(FULL).unwrap();
    assert_eq!(s.server.max_body_bytes, 4 * 1024 * 1024);
    assert!(!s.server.allow_direct_models, "direct models are opt-in");
    let route = s.route("fast").unwrap();
    assert_eq!(route.targets.len(), 2);
    assert_eq!(route.retry.as_ref().unwrap().max_retries, 1);
    assert_eq!(route.retry.as_ref().unwrap().base_delay_ms, 200);
}

#[test]
fn an_empty_file_is_a_loopback_server_with_no_routes() {
    let s = Settings::from_toml_str("").unwrap();
    assert_eq!((s.server.host.as_str(), s.server.port), ("127.0.0.1", 8080));
}

#[test]
fn a_target_without_provider_names_the_field_and_the_fix() {
    let e = err("[routes.fast]\ntargets = [\"openai:gpt-4o\", \"foo\"]\n");
    assert_eq!(e.kind(), ErrorKind::Config);
    assert_eq!(
        e.message(),
        "config: `routes.fast.targets[1]` = `foo` is not provider:model"
    );
    assert_eq!(e.fix(), Some("write it as `openai:gpt-4o-mini`"));
}

#[test]
fn unknown_fields_are_rejected_by_name() {
    let e = err("[routes.fast]\ntargets = [\"openai:gpt-4o\"]\nretries = 3\n");
    assert!(e.message().contains("unknown field `retries`"), "{e}");
    assert!(e.message().contains("line 3"), "{e}");
    let e = err("[server]\nprot = 1\n");
    assert!(e.message().contains("`prot`"), "{e}");
}

#[test]
fn a_public_bind_without_gateway_keys_is_refused() {
    let e = err("[server]\nhost = \"0.0.0.0\"\n");
    assert!(e.message().contains("server.api_keys_env"), "{e}");
    Settings::from_toml_str("[server]\nhost = \"0.0.0.0\"\napi_keys_env = [\"K\"]\n").unwrap();
}

#[test]
fn a_key_in_place_of_a_variable_name_is_refused() {
    let e = err("[providers.openai]\napi_key_env = \"sk-abc123\"\n");
    assert!(e.message().contains("providers.openai.api_key_env"), "{e}");
}

#[test]
fn unknown_providers_and_bad_urls_are_named() {
    let e = err("[providers.nope]\n");
    assert!(e.message().contains("providers.nope"), "{e}");
    let e = err("[providers.openai]\nbase_url = \"api.openai.com\"\n");
    assert!(e.message().contains("providers.openai.base_url"), "{e}");
    let e = err("[routes.a]\ntargets = [\"nope:m\"]\n");
    assert!(e.message().contains("routes.a.targets[0]"), "{e}");
}

#[test]
fn hedge_needs_two_targets_and_one_rule() {
    let e = err("[routes.a]\ntargets = [\"openai:m\"]\nhedge = { delay_ms = 5 }\n");
    assert!(e.message().contains("routes.a.hedge"), "{e}");
    let e = err("[routes.a]\ntargets = [\"openai:m\", \"groq:m\"]\nhedge = {}\n");
    assert!(e.message().contains("exactly one"), "{e}");
}

#[test]
fn aliases_may_not_look_like_provider_model() {
    let e = err("[routes.\"openai:x\"]\ntargets = [\"openai:m\"]\n");
    assert!(e.message().contains("openai:x"), "{e}");
}

#[test]
fn routes_build_with_the_provider_table_applied() {
    let s = Settings::from_toml_str(FULL).unwrap();
    let options = build::BuildOptions {
        client: crate::ClientOptions::new().env(|name| {
            (name == "MY_OPENAI_KEY" || name == "ANTHROPIC_API_KEY").then(|| "k".to_owned())
        }),
        around_provider: None,
        state: None,
    };
    let routes = build::build_routes(&s, &options).unwrap();
    let fast = &routes["fast"];
    assert_eq!(fast.targets.len(), 2);
    assert_eq!(fast.targets[0].info().to_string(), "openai:gpt-4o-mini");
}

#[test]
fn a_missing_key_names_the_configured_variable() {
    let s = Settings::from_toml_str(FULL).unwrap();
    let options = build::BuildOptions {
        client: crate::ClientOptions::new().env(|_| None),
        around_provider: None,
        state: None,
    };
    let e = build::build_routes(&s, &options).unwrap_err();
    assert!(e.message().contains("routes.fast.targets[0]"), "{e}");
    assert_eq!(e.fix(), Some("set MY_OPENAI_KEY"));
}

#[test]
fn commit_point_and_continuation_parse_and_are_validated() {
    let s = Settings::from_toml_str(
        "[routes.a]\ntargets = [\"openai:m\", \"anthropic:m\"]\ncommit_point = \"first_event\"\ncontinuation = true\n",
    )
    .unwrap();
    let route = s.route("a").unwrap();
    assert_eq!(route.commit_point, Some(CommitPoint::FirstEvent));
    assert!(route.continuation);
    let plain = Settings::from_toml_str("[routes.a]\ntargets = [\"openai:m\"]\n").unwrap();
    assert_eq!(plain.route("a").unwrap().commit_point, None);
    assert!(!plain.route("a").unwrap().continuation);

    let e = err("[routes.a]\ntargets = [\"openai:m\"]\ncommit_point = \"soon\"\n");
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("first_content"), "{e}");
    let e = err("[routes.a]\ntargets = [\"openai:m\"]\ncontinuation = true\n");
    assert!(e.message().contains("routes.a.continuation"), "{e}");
    assert!(e.fix().unwrap().contains("prefill"), "{e}");
    let e = err(
        "[routes.a]\ntargets = [\"openai:m\", \"groq:m\"]\nhedge = { delay_ms = 5 }\ncontinuation = true\n",
    );
    assert!(e.message().contains("hedged"), "{e}");
}

#[tokio::test]
async fn an_assembled_route_uses_its_commit_point_and_continuation() {
    use crate::{ChatClient, ChatClientExt, ChatRequest, FunctionClient, StreamEvent};
    let cut = || {
        FunctionClient::builder("primary")
            .stream(|_req: &ChatRequest| {
                Ok(vec![
                    Ok(StreamEvent::TextDelta {
                        text: "Half".into(),
                    }),
                    Err(Error::from_status("p", 503, "reset")),
                ])
            })
            .build()
            .boxed()
    };
    let backup = || {
        FunctionClient::builder("backup")
            .stream(|_req: &ChatRequest| {
                Ok(vec![Ok(StreamEvent::TextDelta {
                    text: " and half.".into(),
                })])
            })
            .build()
            .boxed()
    };
    let run = |route: RouteSettings| async move {
        let built = build::assemble("r", &route, vec![cut(), backup()]).unwrap();
        let stream = built.client.chat_stream(&ChatRequest::user("x")).await;
        stream.unwrap().collect_response().await
    };
    let mut route = RouteSettings {
        targets: vec!["function:primary".into(), "function:backup".into()],
        ..RouteSettings::default()
    };
    let err = run(route.clone()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);

    route.continuation = true;
    let r = run(route.clone()).await.unwrap();
    assert_eq!(r.text(), "Half and half.");

    // With the earliest commit point, a failure right away is no longer hidden.
    let failing_at_once = || {
        FunctionClient::builder("primary")
            .stream(|_req: &ChatRequest| Ok(vec![Err(Error::from_status("p", 503, "reset"))]))
            .build()
            .boxed()
    };
    route.continuation = false;
    let built = build::assemble("r", &route, vec![failing_at_once(), backup()]).unwrap();
    let r = built
        .client
        .chat_stream(&ChatRequest::user("x"))
        .await
        .unwrap();
    assert_eq!(r.collect_response().await.unwrap().text(), " and half.");
    route.commit_point = Some(CommitPoint::Headers);
    let built = build::assemble("r", &route, vec![failing_at_once(), backup()]).unwrap();
    let r = built
        .client
        .chat_stream(&ChatRequest::user("x"))
        .await
        .unwrap();
    let err = r.collect_response().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
}

#[test]
fn the_state_table_has_defaults_and_names_bad_fields() {
    let ok = Settings::from_toml_str("[state]\nredis_url_env = \"SWITCHBOARD_REDIS_URL\"\n");
    if cfg!(feature = "redis") {
        let state = ok.unwrap().state.unwrap();
        assert_eq!(state.key_prefix, "switchboard:");
        assert_eq!((state.ttl_ms, state.timeout_ms), (3_600_000, 250));
        for (text, field) in [
            (
                "redis_url_env = \"redis://:pw@host\"",
                "state.redis_url_env",
            ),
            (
                "redis_url_env = \"R\"\nkey_prefix = \"\"",
                "state.key_prefix",
            ),
            ("redis_url_env = \"R\"\nttl_ms = 10", "state.ttl_ms"),
            ("redis_url_env = \"R\"\ntimeout_ms = 0", "state.timeout_ms"),
        ] {
            let e = Settings::from_toml_str(&format!("[state]\n{text}\n")).unwrap_err();
            assert!(e.message().contains(field), "{field}: {e}");
            assert!(!e.to_string().contains(":pw@"), "{e}");
        }
    } else {
        let e = ok.unwrap_err();
        assert!(e.message().contains("[state]"), "{e}");
        assert!(e.fix().unwrap().contains("--features redis"), "{e}");
    }
    let e = Settings::from_toml_str("[state]\nredis_url = \"redis://h\"\n").unwrap_err();
    assert!(e.message().contains("unknown field"), "{e}");
}

#[test]
fn without_a_state_table_no_store_is_built() {
    let s = Settings::from_toml_str(FULL).unwrap();
    assert!(build::state_store(&s, &|_| None).unwrap().is_none());
}

#[test]
fn stream_idle_timeout_parses_and_zero_is_refused() {
    let s = Settings::from_toml_str(
        "[routes.a]\ntargets = [\"openai:m\"]\nstream_idle_timeout_ms = 1500\n",
    )
    .unwrap();
    assert_eq!(s.routes["a"].stream_idle_timeout_ms, Some(1500));
    let e = err("[routes.a]\ntargets = [\"openai:m\"]\nstream_idle_timeout_ms = 0\n");
    assert_eq!(e.code(), Some("routes.a.stream_idle_timeout_ms"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_route_stream_idle_timeout_ends_a_stalled_stream_and_falls_over_before_content() {
    use crate::{ChatClient, ChatClientExt, ChatRequest, FunctionClient, StreamEvent};
    use futures_util::stream::{self, StreamExt};
    use std::time::Duration;
    // Sends `before` text events, then nothing at all.
    let stalls = |name: &'static str, before: usize| {
        FunctionClient::builder(name)
            .stream_async(move |_req| {
                Box::pin(async move {
                    let text = (0..before).map(|_| {
                        Ok(StreamEvent::TextDelta {
                            text: "part ".into(),
                        })
                    });
                    Ok(stream::iter(text).chain(stream::pending()).boxed())
                })
            })
            .build()
            .boxed()
    };
    let backup = || {
        FunctionClient::builder("backup")
            .stream(|_req: &ChatRequest| {
                Ok(vec![Ok(StreamEvent::TextDelta {
                    text: "from the backup".into(),
                })])
            })
            .build()
            .boxed()
    };
    let route = RouteSettings {
        targets: vec!["function:primary".into(), "function:backup".into()],
        stream_idle_timeout_ms: Some(2_000),
        ..RouteSettings::default()
    };

    // Silent before any content: the idle limit fails the attempt and the backup answers.
    let built = build::assemble("r", &route, vec![stalls("primary", 0), backup()]).unwrap();
    let started = tokio::time::Instant::now();
    let stream = built.client.chat_stream(&ChatRequest::user("x")).await;
    let r = stream.unwrap().collect_response().await.unwrap();
    assert_eq!(r.text(), "from the backup");
    assert_eq!(started.elapsed(), Duration::from_secs(2));

    // Silent after content: the stream ends interrupted, with what had arrived.
    let built = build::assemble("r", &route, vec![stalls("primary", 2), backup()]).unwrap();
    let started = tokio::time::Instant::now();
    let stream = built.client.chat_stream(&ChatRequest::user("x")).await;
    let err = stream.unwrap().collect_response().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted, "{err}");
    assert!(err.to_string().contains("idle limit"), "{err}");
    assert_eq!(err.partial().unwrap().text(), "part part ");
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

#[test]
fn spans_longer_than_a_week_are_refused_by_name() {
    for (text, field) in [
        ("deadline_ms = 9223372036854775807", "routes.a.deadline_ms"),
        (
            "breaker = { cooldown_ms = 99999999999999 }",
            "routes.a.breaker.cooldown_ms",
        ),
        (
            "retry = { max_retry_after_ms = 604800001, max_delay_ms = 604800001 }",
            "routes.a.retry.max_delay_ms",
        ),
        (
            "stream_idle_timeout_ms = 604800001",
            "routes.a.stream_idle_timeout_ms",
        ),
    ] {
        let e = err(&format!("[routes.a]\ntargets = [\"openai:m\"]\n{text}\n"));
        assert_eq!(e.code(), Some(field), "{e}");
        assert!(e.fix().unwrap().contains("a week"), "{e}");
    }
    let e = err("[server]\nshutdown_grace_ms = 1000000000000\n");
    assert_eq!(e.code(), Some("server.shutdown_grace_ms"), "{e}");
    // A week exactly is fine.
    Settings::from_toml_str("[routes.a]\ntargets = [\"openai:m\"]\ndeadline_ms = 604800000\n")
        .unwrap();
}

#[test]
fn strategies_weights_tiers_and_affinity_parse() {
    let s = Settings::from_toml_str(
        r#"
[routes.spread]
targets = ["openai:gpt-4o", "anthropic:claude-3-5-haiku-latest"]
strategy = "weighted"
weights = [3, 1]

[routes.tiered]
tiers = [
  { targets = ["openai:gpt-4o", "openai:gpt-4o-mini"], strategy = "latency" },
  { targets = ["anthropic:claude-3-5-haiku-latest"] },
]
affinity = { keys = ["header:X-Session-Id", "prompt_cache_key", "prefix"], ttl_ms = 600000 }
"#,
    )
    .unwrap();
    let spread = s.route("spread").unwrap();
    assert_eq!(spread.strategy, Some(Strategy::Weighted));
    assert_eq!(spread.weights.as_deref(), Some(&[3.0, 1.0][..]));
    assert!(spread.is_balanced());
    let tiered = s.route("tiered").unwrap();
    // `targets` holds every tier's targets, in order, for everything that lists them.
    assert_eq!(
        tiered.targets,
        [
            "openai:gpt-4o",
            "openai:gpt-4o-mini",
            "anthropic:claude-3-5-haiku-latest"
        ]
    );
    assert_eq!(tiered.tier_list()[0].strategy, Some(Strategy::Latency));
    let affinity = tiered.affinity.as_ref().unwrap();
    assert_eq!(
        affinity.parsed_keys().unwrap()[0],
        AffinityKey::Header("x-session-id".into())
    );
    // A plain route keeps its plain fallback chain.
    assert!(!Settings::from_toml_str(
        "[routes.a]\ntargets = [\"openai:gpt-4o\"]\nstrategy = \"ordered\"\n"
    )
    .unwrap()
    .route("a")
    .unwrap()
    .is_balanced());
    // Settings written back read as the same thing, and still validate.
    let again: Settings = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
    again.validate().unwrap();
    assert_eq!(again, s);
}

#[test]
fn bad_routing_settings_name_the_field() {
    let route = "[routes.r]\ntargets = [\"openai:gpt-4o\", \"openai:gpt-4o-mini\"]\n";
    let cases = [
        (format!("{route}strategy = \"fastest\"\n"), "`strategy` = `fastest` is not a strategy"),
        (format!("{route}strategy = \"weighted\"\nweights = [1, 0]\n"), "`routes.r.weights[1]` = `0` is not a positive weight"),
        (format!("{route}strategy = \"weighted\"\nweights = [1, -2]\n"), "`routes.r.weights[1]` = `-2` is not a positive weight"),
        (format!("{route}strategy = \"weighted\"\nweights = [1]\n"), "`routes.r.weights` has 1 values for 2 targets"),
        (format!("{route}weights = [1, 1]\n"), "`routes.r.weights` is set, and the strategy is `ordered`"),
        (format!("{route}strategy = \"latency\"\ntiers = [{{ targets = [\"openai:gpt-4o\"] }}]\n"), "`routes.r.strategy` is set next to `tiers`"),
        ("[routes.r]\ntiers = [{ targets = [\"openai:gpt-4o\"] }, { targets = [] }]\n".to_owned(), "`routes.r.tiers[1].targets` is empty"),
        ("[routes.r]\ntiers = [{ targets = [\"openai:gpt-4o\", \"nope\"] }]\n".to_owned(), "`routes.r.tiers[0].targets[1]` = `nope`"),
        ("[routes.r]\ntiers = [{ targets = [\"openai:gpt-4o\"], strategy = \"weighted\", weights = [0.0] }]\n".to_owned(), "`routes.r.tiers[0].weights[0]` = `0` is not a positive weight"),
        ("[routes.r]\ntargets = [\"openai:gpt-4o\"]\ntiers = [{ targets = [\"openai:gpt-4o-mini\"] }]\n".to_owned(), "sets both `targets` and `tiers`"),
        (format!("{route}affinity = {{ keys = [\"session\"] }}\n"), "`routes.r.affinity.keys[0]`: `session` is not an affinity key"),
        (format!("{route}affinity = {{ keys = [] }}\n"), "`routes.r.affinity.keys` are empty"),
        (format!("{route}affinity = {{ keys = [\"header:a\", \"header:b\"] }}\n"), "`routes.r.affinity.keys` name more than one session header"),
        (format!("{route}affinity = {{ ttl_ms = 10 }}\n"), "`routes.r.affinity.ttl_ms` = `10` is not valid"),
    ];
    for (text, expected) in cases {
        let e = err(&text);
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains(expected), "{text}\n→ {}", e.message());
        assert!(e.fix().is_some(), "{text}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_assembled_route_with_tiers_balances_and_fails_over() {
    use crate::{ChatClient, ChatClientExt, ChatRequest, ChatResponse, FunctionClient};
    let named = |name: &'static str| {
        FunctionClient::new(name, move |_r: &ChatRequest| {
            Ok(ChatResponse::from_text(name))
        })
    };
    let (a, b, c) = (named("a"), named("b"), named("c"));
    let s = Settings::from_toml_str(
        r#"
[routes.r]
tiers = [
  { targets = ["openai:a", "openai:b"], strategy = "weighted", weights = [1, 1] },
  { targets = ["openai:c"] },
]
affinity = { keys = ["header:x-session-id"] }
"#,
    )
    .unwrap();
    let route = s.route("r").unwrap();
    let built = build::assemble(
        "r",
        route,
        vec![a.clone().boxed(), b.clone().boxed(), c.clone().boxed()],
    )
    .unwrap();
    assert_eq!(built.session_header.as_deref(), Some("x-session-id"));
    for _ in 0..4 {
        built.client.chat(&ChatRequest::user("hi")).await.unwrap();
    }
    assert_eq!((a.calls(), b.calls(), c.calls()), (2, 2, 0));
    let e = build::assemble("r", route, vec![a.boxed()]).unwrap_err();
    assert!(e.message().contains("1 clients for 3 targets"), "{e}");
}
