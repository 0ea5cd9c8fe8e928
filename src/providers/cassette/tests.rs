//! Transport-level tests: every auth style, query scrubbing, broken and dropped streams.

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt;
use secrecy::SecretString;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::providers::http::{status_error, Auth, HttpSettings, Transport};

const SECRET: &str = "sk-very-secret-0123456789";

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "switchboard-cassette-unit-{}-{}-{name}.jsonl",
        std::process::id(),
        fastrand::u64(..)
    ))
}

fn map_error(provider: &str, status: u16, headers: &HeaderMap, _body: &[u8]) -> Error {
    status_error(provider, status, headers, format!("status {status}"))
}

fn transport(cassette: &Arc<Cassette>) -> Transport {
    let settings = HttpSettings {
        cassette: Some(Arc::clone(cassette)),
        ..HttpSettings::default()
    };
    Transport::new("test", settings).unwrap()
}

fn secret() -> SecretString {
    SecretString::from(SECRET)
}

#[tokio::test]
async fn no_auth_style_or_query_key_reaches_the_file() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("set-cookie", format!("session={SECRET}"))
                .insert_header("x-echo-key", SECRET)
                .insert_header("x-request-id", "req_1")
                .set_body_raw(r#"{"ok":true}"#, "application/json"),
        )
        .mount(&server)
        .await;
    let path = temp_path("secrets");
    let cassette = Arc::new(Cassette::record(&path).unwrap());
    let t = transport(&cassette);
    let styles = [
        Auth::Bearer(secret()),
        Auth::Header("x-api-key", secret()),
        Auth::Header("x-goog-api-key", secret()),
        Auth::Header("api-key", secret()),
    ];
    for (i, auth) in styles.iter().enumerate() {
        let url = format!("{}/v1/call{i}?alt=sse&key={SECRET}", server.uri());
        let body = format!(r#"{{"n":{i}}}"#).into_bytes();
        t.post_json(&url, auth, &[], body, map_error).await.unwrap();
        let mut events = t
            .post_sse(&url, auth, &[], b"{}".to_vec(), map_error)
            .await
            .unwrap();
        while events.next().await.is_some() {}
    }
    // The secret in the body itself is caught by the last guard.
    t.post_json(
        &format!("{}/v1/echo", server.uri()),
        &styles[0],
        &[],
        format!(r#"{{"note":"{SECRET}"}}"#).into_bytes(),
        map_error,
    )
    .await
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 9, "{text}");
    assert!(!text.contains(SECRET), "{text}");
    assert!(!text.contains("very-secret"), "{text}");
    assert!(!text.to_ascii_lowercase().contains("set-cookie"), "{text}");
    assert!(text.contains("x-request-id"), "{text}");
    assert!(text.contains("/v1/call0?alt=sse"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn a_stream_that_broke_replays_the_same_break() {
    let path = temp_path("broken");
    let recorder = Arc::new(Cassette::record(&path).unwrap());
    let key = recorder.key("http://h/v1/s", b"{}", true);
    let body: crate::providers::http::ByteStream = Box::pin(futures_util::stream::iter(vec![
        Ok(Bytes::from_static(b"data: one\n\n")),
        Ok(Bytes::from_static(b"data: tw")),
        Err(Error::new(ErrorKind::Transport, "the stream broke: reset").with_provider("test")),
    ]));
    let start = SseStart::Open {
        status: 200,
        headers: HeaderMap::new(),
        body,
    };
    let SseStart::Open { body: mut live, .. } = recorder.tee(key.clone(), start, None).unwrap()
    else {
        panic!("expected an open stream");
    };
    let mut seen = Vec::new();
    while let Some(item) = live.next().await {
        seen.push(item.map_err(|e| e.message().to_owned()));
    }
    drop(live);

    let player = Cassette::replay(&path).unwrap();
    let replayed = player.answer("test", &key).unwrap().unwrap();
    let SseStart::Open {
        body: mut replay, ..
    } = replayed.into_sse("test")
    else {
        panic!("expected an open stream");
    };
    let mut bytes = Vec::new();
    let mut error = None;
    while let Some(item) = replay.next().await {
        match item {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(e) => error = Some((e.kind(), e.message().to_owned())),
        }
    }
    assert_eq!(bytes, b"data: one\n\ndata: tw");
    assert_eq!(
        error,
        Some((ErrorKind::Transport, "the stream broke: reset".to_owned()))
    );
    assert_eq!(seen.len(), 3);
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn a_stream_dropped_while_recording_is_marked_unfinished() {
    let path = temp_path("dropped");
    let recorder = Arc::new(Cassette::record(&path).unwrap());
    let key = recorder.key("http://h/v1/s", b"{}", true);
    let body: crate::providers::http::ByteStream = Box::pin(futures_util::stream::iter(vec![
        Ok(Bytes::from_static(b"data: one\n\n")),
        Ok(Bytes::from_static(b"data: two\n\n")),
    ]));
    let start = SseStart::Open {
        status: 200,
        headers: HeaderMap::new(),
        body,
    };
    let SseStart::Open { body: mut live, .. } = recorder.tee(key, start, None).unwrap() else {
        panic!("expected an open stream");
    };
    live.next().await.unwrap().unwrap();
    drop(live);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("stopped early"), "{text}");
    assert!(!text.contains("two"), "{text}");
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn replay_or_record_fills_in_only_what_is_missing() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(r#"{"n":1}"#, "application/json"))
        .mount(&server)
        .await;
    let path = temp_path("auto");
    let url = format!("{}/v1/x", server.uri());
    let cassette = Arc::new(Cassette::replay_or_record(&path).unwrap());
    let t = transport(&cassette);
    for body in [&b"{\"a\":1}"[..], b"{\"a\":1}", b"{\"a\":2}"] {
        t.post_json(&url, &Auth::None, &[], body.to_vec(), map_error)
            .await
            .unwrap();
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    assert_eq!(cassette.len(), 3);

    // A second run replays all three without a request, then records a fourth.
    let cassette = Arc::new(Cassette::replay_or_record(&path).unwrap());
    let t = transport(&cassette);
    for body in [&b"{\"a\":1}"[..], b"{\"a\":1}", b"{\"a\":2}"] {
        t.post_json(&url, &Auth::None, &[], body.to_vec(), map_error)
            .await
            .unwrap();
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    t.post_json(&url, &Auth::None, &[], b"{\"a\":3}".to_vec(), map_error)
        .await
        .unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 4);

    // Rewinding starts the replay over.
    let replay = Arc::new(Cassette::replay(&path).unwrap());
    let t = transport(&replay);
    for _ in 0..2 {
        t.post_json(&url, &Auth::None, &[], b"{\"a\":2}".to_vec(), map_error)
            .await
            .unwrap();
        replay.rewind();
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn bad_lines_and_missing_files_are_config_errors_that_say_what_to_do() {
    let missing = Cassette::replay(temp_path("missing")).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::Config);
    assert!(missing.fix().unwrap().contains("record:"), "{missing}");

    let path = temp_path("bad");
    std::fs::write(&path, "{\"method\":\"POST\"}\nnot json\n").unwrap();
    let err = Cassette::replay(&path).unwrap_err();
    assert!(err.message().contains("line 1"), "{err}");
    let _ = std::fs::remove_file(&path);

    let err = Cassette::builder()
        .path("x.jsonl")
        .ignore_field("metadata")
        .build()
        .unwrap_err();
    assert!(err.message().contains("JSON pointer"), "{err}");
}

#[test]
fn the_environment_spec_is_parsed_and_shared_per_path() {
    let path = temp_path("spec");
    let spec = format!("auto:{}", path.display());
    let a = from_spec(&spec).unwrap();
    let b = from_spec(&spec).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(a.mode(), CassetteMode::ReplayOrRecord);
    let clash = from_spec(&format!("record:{}", path.display())).unwrap_err();
    assert!(clash.message().contains("already open"), "{clash}");
    for bad in ["replay", "play:x", "record:"] {
        assert_eq!(
            from_spec(bad).unwrap_err().kind(),
            ErrorKind::Config,
            "{bad}"
        );
    }
    let _ = std::fs::remove_file(&path);
}
