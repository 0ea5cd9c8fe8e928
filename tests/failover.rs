//! The reference behaviour: a primary fails, a backup answers — and every rule around it.

use futures_util::StreamExt;
use switchboard::{
    ChatClient, ChatClientExt, ChatRequest, ChatResponse, DynClient, Error, ErrorKind,
    FallbackClient, FallbackOn, FunctionClient, Outcome, StreamEvent,
};

fn failing(model: &str, make: impl Fn() -> Error + Send + Sync + 'static) -> FunctionClient {
    FunctionClient::new(model, move |_req: &ChatRequest| Err(make()))
}

fn answering(model: &str, text: &'static str) -> FunctionClient {
    FunctionClient::new(model, move |_req: &ChatRequest| {
        Ok(ChatResponse::from_text(text))
    })
}

fn chain(clients: &[&FunctionClient]) -> FallbackClient {
    FallbackClient::new(clients.iter().map(|c| (*c).clone().boxed()).collect()).unwrap()
}

#[tokio::test]
async fn falls_back_on_503_and_reports_both_attempts() {
    let primary = failing("primary", || {
        Error::from_status("primary", 503, "primary provider is unavailable")
    });
    let backup = answering("backup", "answered by the backup provider");
    let response = chain(&[&primary, &backup])
        .chat(&ChatRequest::user("hello"))
        .await
        .unwrap();
    assert_eq!(response.text(), "answered by the backup provider");
    assert_eq!((primary.calls(), backup.calls()), (1, 1));
    let attempts = response.attempts();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].model, "primary");
    assert_eq!(attempts[0].outcome, Outcome::Failed);
    assert_eq!(attempts[0].status, Some(503));
    assert_eq!(attempts[0].error_kind, Some(ErrorKind::Server));
    assert_eq!(attempts[1].model, "backup");
    assert_eq!(attempts[1].outcome, Outcome::Success);
}

/// One row per kind: whether the default rule falls back on it.
#[tokio::test]
async fn default_rule_falls_back_per_kind_as_documented() {
    let with_status = |kind: ErrorKind, status: u16| {
        move || Error::new(kind, "x").with_provider("p").with_status(status)
    };
    type Make = Box<dyn Fn() -> Error + Send + Sync>;
    let table: Vec<(&str, Make, bool)> = vec![
        (
            "400 from provider",
            Box::new(with_status(ErrorKind::InvalidRequest, 400)),
            true,
        ),
        (
            "401",
            Box::new(with_status(ErrorKind::Authentication, 401)),
            true,
        ),
        (
            "403",
            Box::new(with_status(ErrorKind::PermissionDenied, 403)),
            true,
        ),
        ("404", Box::new(with_status(ErrorKind::NotFound, 404)), true),
        (
            "context length 400",
            Box::new(with_status(ErrorKind::ContextLength, 400)),
            true,
        ),
        (
            "content filter 400",
            Box::new(with_status(ErrorKind::ContentFiltered, 400)),
            true,
        ),
        (
            "429",
            Box::new(with_status(ErrorKind::RateLimited, 429)),
            true,
        ),
        (
            "quota 429",
            Box::new(with_status(ErrorKind::QuotaExceeded, 429)),
            true,
        ),
        (
            "529",
            Box::new(with_status(ErrorKind::Overloaded, 529)),
            true,
        ),
        ("500", Box::new(with_status(ErrorKind::Server, 500)), true),
        ("408", Box::new(with_status(ErrorKind::Timeout, 408)), true),
        (
            "timeout",
            Box::new(|| Error::new(ErrorKind::Timeout, "slow")),
            true,
        ),
        (
            "transport",
            Box::new(|| Error::new(ErrorKind::Transport, "reset")),
            true,
        ),
        (
            "decode",
            Box::new(|| Error::new(ErrorKind::Decode, "garbage")),
            true,
        ),
        (
            "retries exhausted",
            Box::new(|| Error::new(ErrorKind::RetriesExhausted, "gave up")),
            true,
        ),
        (
            "circuit open",
            Box::new(|| Error::new(ErrorKind::CircuitOpen, "open")),
            true,
        ),
        (
            "stream interrupted before the commit point",
            Box::new(|| Error::new(ErrorKind::StreamInterrupted, "cut").with_provider("p")),
            true,
        ),
        (
            "nested chain failed",
            Box::new(|| Error::new(ErrorKind::AllTargetsFailed, "all")),
            true,
        ),
        (
            "nested chain that could not serve the request",
            Box::new(|| Error::new(ErrorKind::Unsupported, "no target can serve it")),
            true,
        ),
        (
            "local invalid request",
            Box::new(|| Error::new(ErrorKind::InvalidRequest, "bad")),
            false,
        ),
        (
            "local auth (missing key)",
            Box::new(|| Error::new(ErrorKind::Authentication, "no key")),
            false,
        ),
        (
            "local permission (no HTTP status)",
            Box::new(|| Error::new(ErrorKind::PermissionDenied, "not allowed")),
            false,
        ),
        (
            "budget exceeded",
            Box::new(|| Error::new(ErrorKind::BudgetExceeded, "cap")),
            false,
        ),
        (
            "budget held by calls in flight",
            Box::new(|| Error::new(ErrorKind::BudgetHeld, "held")),
            false,
        ),
        (
            "config",
            Box::new(|| Error::new(ErrorKind::Config, "bad config")),
            false,
        ),
    ];
    let covered: std::collections::HashSet<ErrorKind> =
        table.iter().map(|(_, make, _)| make().kind()).collect();
    for kind in ErrorKind::all() {
        assert!(covered.contains(kind), "the table has no row for {kind:?}");
    }
    for (name, make, falls_back) in table {
        let primary = FunctionClient::new("primary", move |_r: &ChatRequest| Err(make()));
        let backup = answering("backup", "ok");
        let result = chain(&[&primary, &backup])
            .chat(&ChatRequest::user("hi"))
            .await;
        assert_eq!(result.is_ok(), falls_back, "{name}: {result:?}");
        assert_eq!(backup.calls(), usize::from(falls_back), "{name}");
    }
}

#[tokio::test]
async fn custom_kinds_rule_limits_fallback() {
    let primary = failing("primary", || Error::from_status("p", 500, "boom"));
    let backup = answering("backup", "ok");
    let client = FallbackClient::builder()
        .clients([primary.clone().boxed(), backup.clone().boxed()])
        .fallback_on(FallbackOn::kinds([ErrorKind::RateLimited]))
        .build()
        .unwrap();
    let err = client.chat(&ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(backup.calls(), 0);
}

#[tokio::test]
async fn custom_predicate_can_refuse_to_fall_back_on_auth() {
    let primary = failing("primary", || Error::from_status("p", 401, "bad key"));
    let backup = answering("backup", "ok");
    let client = FallbackClient::builder()
        .clients([primary.boxed(), backup.clone().boxed()])
        .fallback_on(FallbackOn::predicate(|e| {
            e.is_recoverable() && e.kind() != ErrorKind::Authentication
        }))
        .build()
        .unwrap();
    let err = client.chat(&ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Authentication);
    assert_eq!(backup.calls(), 0);
}

#[tokio::test]
async fn three_clients_are_tried_in_order() {
    let a = failing("a", || Error::from_status("a", 429, "slow down"));
    let b = failing("b", || Error::new(ErrorKind::Transport, "connection reset"));
    let c = answering("c", "third time lucky");
    let response = chain(&[&a, &b, &c])
        .chat(&ChatRequest::user("hi"))
        .await
        .unwrap();
    assert_eq!(response.text(), "third time lucky");
    let models: Vec<_> = response
        .attempts()
        .iter()
        .map(|a| a.model.as_str())
        .collect();
    assert_eq!(models, ["a", "b", "c"]);
}

#[tokio::test]
async fn all_failing_lists_every_attempt_in_order() {
    let a = failing("a", || Error::from_status("a", 503, "down"));
    let b = failing("b", || Error::from_status("b", 529, "overloaded"));
    let c = failing("c", || {
        Error::new(ErrorKind::Timeout, "no answer").with_provider("c")
    });
    let err = chain(&[&a, &b, &c])
        .chat(&ChatRequest::user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    let kinds: Vec<_> = err.attempt_errors().iter().map(Error::kind).collect();
    assert_eq!(
        kinds,
        [ErrorKind::Server, ErrorKind::Overloaded, ErrorKind::Timeout]
    );
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.starts_with("c: timed out"), "{source}");
}

#[tokio::test]
async fn empty_client_list_is_a_config_error() {
    let err = FallbackClient::new(Vec::<DynClient>::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.fix().unwrap().contains("FallbackClient::new"));
}

#[tokio::test]
async fn empty_message_list_fails_before_any_provider_is_called() {
    let a = answering("a", "ok");
    let err = chain(&[&a])
        .chat(&ChatRequest::new(vec![]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert_eq!(a.calls(), 0);
}

fn scripted_stream(model: &str, items: Vec<Result<StreamEvent, Error>>) -> FunctionClient {
    let items = std::sync::Arc::new(std::sync::Mutex::new(Some(items)));
    FunctionClient::builder(model)
        .stream(move |_r: &ChatRequest| Ok(items.lock().unwrap().take().unwrap_or_default()))
        .build()
}

#[tokio::test]
async fn stream_failing_before_first_event_falls_back() {
    let primary = scripted_stream(
        "primary",
        vec![Err(Error::from_status("primary", 503, "down"))],
    );
    let backup = scripted_stream(
        "backup",
        vec![Ok(StreamEvent::TextDelta {
            text: "from backup".into(),
        })],
    );
    let stream = chain(&[&primary, &backup])
        .chat_stream(&ChatRequest::user("hi"))
        .await
        .unwrap();
    let response = stream.collect_response().await.unwrap();
    assert_eq!(response.text(), "from backup");
    assert_eq!(response.attempts().len(), 2);
    assert_eq!(response.attempts()[0].status, Some(503));
}

#[tokio::test]
async fn stream_failing_after_metadata_but_before_content_still_falls_back() {
    let primary = scripted_stream(
        "primary",
        vec![
            Ok(StreamEvent::Started {
                response_id: Some("msg_1".into()),
                model: None,
            }),
            Err(Error::from_status("primary", 529, "overloaded")),
        ],
    );
    let backup = scripted_stream(
        "backup",
        vec![Ok(StreamEvent::TextDelta { text: "ok".into() })],
    );
    let response = chain(&[&primary, &backup])
        .chat_stream(&ChatRequest::user("hi"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(response.text(), "ok");
    assert_eq!(backup.calls(), 1);
}

#[tokio::test]
async fn stream_failing_after_first_event_is_interrupted_with_partial_text() {
    let primary = scripted_stream(
        "primary",
        vec![
            Ok(StreamEvent::TextDelta {
                text: "The answer is".into(),
            }),
            Err(Error::from_status("primary", 500, "boom")),
        ],
    );
    let backup = scripted_stream("backup", vec![]);
    let mut stream = chain(&[&primary, &backup])
        .chat_stream(&ChatRequest::user("hi"))
        .await
        .unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(
        first,
        StreamEvent::TextDelta {
            text: "The answer is".into()
        }
    );
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(err.partial().unwrap().text(), "The answer is");
    assert!(stream.next().await.is_none());
    assert_eq!(backup.calls(), 0, "no fallback after the first event");
}

#[tokio::test]
async fn with_fallback_extension_builds_the_same_chain() {
    let primary = failing("primary", || Error::from_status("p", 502, "bad gateway"));
    let backup = answering("backup", "ok");
    let client = primary.with_fallback([backup.boxed()]);
    assert_eq!(client.info().model(), "primary");
    assert_eq!(
        client.chat(&ChatRequest::user("x")).await.unwrap().text(),
        "ok"
    );
}

#[test]
fn errors_never_show_key_text() {
    // Errors are built from status and body only; a message that quotes a masked key shows
    // what the provider sent, never headers. Display and Debug carry no header fields.
    let err = Error::from_status("openai", 401, "Incorrect API key provided");
    for text in [format!("{err}"), format!("{err:?}")] {
        assert!(!text.contains("Authorization"), "{text}");
        assert!(!text.contains("Bearer"), "{text}");
    }
}
