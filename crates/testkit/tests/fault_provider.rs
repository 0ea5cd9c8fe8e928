//! The fault provider itself: its answers decode through the library's real clients on every
//! protocol, and each fault shows up on the client side as the failure it imitates.

use std::time::Duration;

use futures_util::StreamExt;
use switchboard::providers::HttpSettings;
use switchboard::{
    create_client_with, ChatClient, ChatRequest, ClientOptions, DynClient, ErrorKind, FinishKind,
    Message,
};
use switchboard_testkit::fault::{answer_text, Fault, FaultProvider, Protocol};

fn client(protocol: Protocol, upstream: &FaultProvider) -> DynClient {
    let options = ClientOptions::new()
        .retry(None)
        .env(|_| None)
        .api_key("k")
        .base_url(upstream.base_url(protocol))
        .http_settings(HttpSettings {
            request_timeout: Duration::from_millis(300),
            stream_idle_timeout: Duration::from_millis(300),
            ..HttpSettings::default()
        });
    create_client_with(&protocol.spec("m-1"), &options).unwrap()
}

async fn call(client: &DynClient, stream: bool) -> switchboard::Result<switchboard::ChatResponse> {
    let req = ChatRequest::user("hello");
    if stream {
        client.chat_stream(&req).await?.collect_response().await
    } else {
        client.chat(&req).await
    }
}

#[tokio::test]
async fn healthy_answers_decode_whole_and_streamed_on_every_protocol() {
    for protocol in Protocol::ALL {
        let upstream = FaultProvider::builder()
            .tokens(6)
            .input_tokens(21)
            .start()
            .await
            .unwrap();
        let client = client(protocol, &upstream);
        for stream in [false, true] {
            let r = call(&client, stream).await.unwrap();
            let label = format!("{protocol:?} stream={stream}");
            assert_eq!(r.text(), answer_text(6), "{label}");
            assert_eq!(r.finish_reason.kind, FinishKind::Stop, "{label}");
            assert_eq!(
                (r.usage.input_tokens, r.usage.output_tokens),
                (21, 6),
                "{label}"
            );
            assert_eq!(r.served_model.as_deref(), Some("m-1"), "{label}");
        }
        let arrivals = upstream.arrivals();
        assert_eq!(arrivals.len(), 2);
        assert_eq!(arrivals[0].protocol, Some(protocol));
        assert_eq!((arrivals[0].stream, arrivals[1].stream), (false, true));
        assert_eq!(arrivals[1].model, "m-1");
    }
}

#[tokio::test]
async fn the_script_runs_in_order_then_the_fallback_fault_repeats() {
    let upstream = FaultProvider::builder()
        .script([Fault::ServerError, Fault::Healthy])
        .then(Fault::rate_limited(Some(Duration::from_millis(1500))))
        .start()
        .await
        .unwrap();
    let client = client(Protocol::OpenAi, &upstream);
    let first = call(&client, false).await.unwrap_err();
    assert_eq!(
        (first.kind(), first.status()),
        (ErrorKind::Server, Some(500))
    );
    assert!(call(&client, false).await.is_ok());
    for _ in 0..2 {
        let err = call(&client, true).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(err.retry_after(), Some(Duration::from_millis(1500)));
    }
    let names: Vec<_> = upstream.arrivals().iter().map(|a| a.fault.name()).collect();
    assert_eq!(
        names,
        [
            "server_error",
            "healthy",
            "rate_limited_retry_after",
            "rate_limited_retry_after"
        ]
    );
}

#[tokio::test]
async fn a_reset_is_a_transport_error_and_silence_a_timeout() {
    let upstream = FaultProvider::builder()
        .script([Fault::ResetBeforeHeaders, Fault::NeverAnswer])
        .start()
        .await
        .unwrap();
    let client = client(Protocol::Anthropic, &upstream);
    let err = call(&client, false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    let started = std::time::Instant::now();
    let err = call(&client, false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(upstream.requests(), 2);
}

#[tokio::test]
async fn broken_streams_never_decode_as_complete_answers() {
    let faults = [
        Fault::CutAfter(3),
        Fault::StallAfter(3),
        Fault::MalformedAfter(3),
        Fault::NoTerminator,
    ];
    // Every row at once: the stalled ones each wait out a 300 ms limit.
    let mut rows = tokio::task::JoinSet::new();
    for protocol in Protocol::ALL {
        for fault in &faults {
            for stream in [false, true] {
                let fault = fault.clone();
                rows.spawn(async move {
                    let upstream = FaultProvider::builder()
                        .tokens(6)
                        .then(fault.clone())
                        .start()
                        .await
                        .unwrap();
                    let client = client(protocol, &upstream);
                    let label = format!("{protocol:?} {} stream={stream}", fault.name());
                    let err = call(&client, stream).await.expect_err(&label);
                    if stream {
                        assert_eq!(err.kind(), ErrorKind::StreamInterrupted, "{label}: {err}");
                        let partial = err.partial().unwrap().text();
                        assert!(answer_text(6).starts_with(&partial), "{label}: {partial}");
                        assert!(!partial.is_empty(), "{label}");
                    } else {
                        assert!(
                            matches!(
                                err.kind(),
                                ErrorKind::Transport | ErrorKind::Decode | ErrorKind::Timeout
                            ),
                            "{label}: {err}"
                        );
                    }
                    assert_eq!(upstream.requests(), 1, "{label}");
                });
            }
        }
    }
    let mut ran = 0;
    while let Some(row) = rows.join_next().await {
        row.unwrap();
        ran += 1;
    }
    assert_eq!(ran, 24);
}

#[tokio::test]
async fn content_policy_and_context_length_take_each_protocols_shape() {
    for protocol in Protocol::ALL {
        let upstream = FaultProvider::builder()
            .script([
                Fault::ContextLengthExceeded,
                Fault::ContentPolicy,
                Fault::ContentPolicy,
            ])
            .start()
            .await
            .unwrap();
        let client = client(protocol, &upstream);
        let err = call(&client, false).await.unwrap_err();
        assert_eq!(
            (err.kind(), err.status()),
            (ErrorKind::ContextLength, Some(400)),
            "{protocol:?}"
        );
        for stream in [false, true] {
            let label = format!("{protocol:?} stream={stream}");
            match (protocol, call(&client, stream).await) {
                (Protocol::Anthropic, Ok(r)) => {
                    assert_eq!(r.finish_reason.kind, FinishKind::Refusal, "{label}");
                    assert!(r.text().is_empty(), "{label}");
                }
                (_, Err(e)) => assert_eq!(e.kind(), ErrorKind::ContentFiltered, "{label}: {e}"),
                (_, Ok(r)) => panic!("{label}: answered {r:?}"),
            }
        }
    }
}

#[tokio::test]
async fn down_for_answers_with_the_outage_fault_then_recovers() {
    let upstream = FaultProvider::builder()
        .down_for(Duration::from_millis(150), Fault::Unavailable)
        .start()
        .await
        .unwrap();
    let client = client(Protocol::Gemini, &upstream);
    let err = call(&client, false).await.unwrap_err();
    assert_eq!((err.kind(), err.status()), (ErrorKind::Server, Some(503)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(call(&client, true).await.is_ok());
    let arrivals = upstream.arrivals();
    assert!(arrivals[1].offset >= Duration::from_millis(150));
}

#[tokio::test]
async fn random_faults_repeat_for_the_same_seed() {
    async fn names(seed: u64) -> Vec<&'static str> {
        let upstream = FaultProvider::builder()
            .random(seed, 0.5, [Fault::ServerError, Fault::Unavailable])
            .start()
            .await
            .unwrap();
        let client = client(Protocol::OpenAi, &upstream);
        for _ in 0..20 {
            let _ = call(&client, false).await;
        }
        upstream.arrivals().iter().map(|a| a.fault.name()).collect()
    }
    let a = names(3).await;
    assert_eq!(a, names(3).await);
    assert!(
        a.contains(&"healthy") && a.iter().any(|n| *n != "healthy"),
        "{a:?}"
    );
}

#[tokio::test]
async fn a_hand_made_status_keeps_its_body_and_headers() {
    let upstream = FaultProvider::builder()
        .then(Fault::Status {
            status: 429,
            body: r#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#
                .to_owned(),
            headers: vec![("retry-after-ms".to_owned(), "250".to_owned())],
        })
        .start()
        .await
        .unwrap();
    let err = call(&client(Protocol::OpenAi, &upstream), false)
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.status()),
        (ErrorKind::RateLimited, Some(429))
    );
    assert_eq!(err.retry_after(), Some(Duration::from_millis(250)));
    assert!(err.message().contains("slow down"), "{err}");
}

#[tokio::test]
async fn tokens_are_paced_and_a_slow_first_token_waits_after_the_headers() {
    let upstream = FaultProvider::builder()
        .tokens(5)
        .token_interval(Duration::from_millis(20))
        .script([
            Fault::Healthy,
            Fault::FirstTokenAfter(Duration::from_millis(150)),
        ])
        .start()
        .await
        .unwrap();
    let client = client(Protocol::Anthropic, &upstream);
    let started = std::time::Instant::now();
    let r = call(&client, true).await.unwrap();
    assert_eq!(r.text(), answer_text(5));
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    // The stream opens at once (with Anthropic's `message_start`); its first token comes
    // after the wait.
    let started = std::time::Instant::now();
    let mut stream = client
        .chat_stream(&ChatRequest::user("hello"))
        .await
        .unwrap();
    let opened = started.elapsed();
    assert!(opened < Duration::from_millis(150), "{opened:?}");
    let first = loop {
        let event = stream.next().await.unwrap().unwrap();
        if event.is_content() {
            break event;
        }
    };
    assert!(started.elapsed() >= Duration::from_millis(150), "{first:?}");
}

#[tokio::test]
async fn only_the_anthropic_shape_continues_a_prefill_of_the_first_tokens() {
    let upstream = FaultProvider::healthy(6).await.unwrap();
    let req = ChatRequest::new(vec![
        Message::user("hello"),
        Message::assistant(answer_text(4)),
    ]);
    for protocol in Protocol::ALL {
        let client = client(protocol, &upstream);
        let whole = client.chat(&req).await.unwrap();
        let streamed = client
            .chat_stream(&req)
            .await
            .unwrap()
            .collect_response()
            .await
            .unwrap();
        // Anthropic continues after the fourth token; the others answer anew.
        let want = match protocol {
            Protocol::Anthropic => " tok4 tok5".to_owned(),
            _ => answer_text(6),
        };
        assert_eq!(whole.text(), want, "{protocol:?} whole");
        assert_eq!(streamed.text(), want, "{protocol:?} streamed");
    }
    let arrivals = upstream.arrivals();
    assert_eq!(arrivals.len(), 6);
    for arrival in &arrivals {
        assert_eq!(arrival.prefill.as_deref(), Some(answer_text(4).as_str()));
    }
}

#[tokio::test]
async fn the_prompt_cache_model_reports_the_prefix_seen_before_on_every_protocol() {
    for protocol in Protocol::ALL {
        let upstream = FaultProvider::builder()
            .tokens(2)
            .prompt_cache(100)
            .start()
            .await
            .unwrap();
        let client = client(protocol, &upstream);
        let mut messages = vec![Message::system("rules"), Message::user("task")];
        for (turn, stream) in [false, true, false].into_iter().enumerate() {
            let req = ChatRequest::new(messages.clone());
            let r = if stream {
                client
                    .chat_stream(&req)
                    .await
                    .unwrap()
                    .collect_response()
                    .await
                    .unwrap()
            } else {
                client.chat(&req).await.unwrap()
            };
            let label = format!("{protocol:?} turn {turn}");
            // Two messages, then two more a turn; all but the newest two were seen before.
            assert_eq!(r.usage.input_tokens, 200 * (turn as u64 + 1), "{label}");
            let read = r.usage.cache_read_tokens.unwrap_or(0);
            assert_eq!(read, 200 * turn as u64, "{label}");
            messages.push(Message::assistant(r.text()));
            messages.push(Message::user("continue"));
        }
    }
}
