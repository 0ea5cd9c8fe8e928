//! One scenario table, run against every wire protocol: the same situation on the wire must
//! come out as the same normalised result, whichever provider sent it.
//!
//! Each row names a scenario; each protocol maps it to its own fixture (or marks it as not
//! applicable). Adding a protocol means adding a column to [`fixture_for`], not new tests.
//!
//! Azure OpenAI and Amazon Bedrock speak the Chat Completions wire format (Azure's
//! `azure-responses` and OpenAI's `openai-responses` the Responses one), so their columns
//! replay the same documented wire data as their protocol, plus their own captures where the
//! vendor documents a difference (`azure/`, `bedrock/`).

use std::time::Duration;

use switchboard::{
    create_client_with, ChatClient, ChatRequest, ClientOptions, DynClient, ErrorKind, FinishKind,
};
use switchboard_testkit::fixture;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Protocol {
    OpenAi,
    Anthropic,
    Gemini,
    Responses,
    Azure,
    AzureResponses,
    Bedrock,
}

const PROTOCOLS: [Protocol; 7] = [
    Protocol::OpenAi,
    Protocol::Anthropic,
    Protocol::Gemini,
    Protocol::Responses,
    Protocol::Azure,
    Protocol::AzureResponses,
    Protocol::Bedrock,
];

/// The wire format a protocol speaks.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Wire {
    ChatCompletions,
    Anthropic,
    Gemini,
    Responses,
}

impl Protocol {
    fn wire(self) -> Wire {
        match self {
            Protocol::OpenAi | Protocol::Azure | Protocol::Bedrock => Wire::ChatCompletions,
            Protocol::Anthropic => Wire::Anthropic,
            Protocol::Gemini => Wire::Gemini,
            Protocol::Responses | Protocol::AzureResponses => Wire::Responses,
        }
    }

    /// The provider name a response or error from this protocol carries.
    fn provider(self) -> &'static str {
        match self {
            Protocol::OpenAi => "openai",
            Protocol::Anthropic => "anthropic",
            Protocol::Gemini => "gemini",
            Protocol::Responses => "openai-responses",
            Protocol::Azure => "azure",
            Protocol::AzureResponses => "azure-responses",
            Protocol::Bedrock => "bedrock",
        }
    }
}

/// What a scenario must normalise to.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// A complete answer with this finish kind, tool-call count, and whether text is present.
    Answer {
        finish: FinishKind,
        tool_calls: usize,
        text: bool,
    },
    /// A typed error of this kind (and HTTP status, when the provider sent one).
    Error {
        kind: ErrorKind,
        status: Option<u16>,
    },
}

#[derive(Clone, Copy, Debug)]
struct Scenario {
    name: &'static str,
    stream: bool,
    expect: Expect,
}

const fn answer(finish: FinishKind, tool_calls: usize, text: bool) -> Expect {
    Expect::Answer {
        finish,
        tool_calls,
        text,
    }
}

const fn error(kind: ErrorKind, status: u16) -> Expect {
    Expect::Error {
        kind,
        status: Some(status),
    }
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "plain text",
        stream: false,
        expect: answer(FinishKind::Stop, 0, true),
    },
    Scenario {
        name: "tool call",
        stream: false,
        expect: answer(FinishKind::ToolCalls, 1, false),
    },
    Scenario {
        name: "parallel tool calls",
        stream: false,
        expect: answer(FinishKind::ToolCalls, 2, false),
    },
    Scenario {
        name: "token limit",
        stream: false,
        expect: answer(FinishKind::Length, 0, true),
    },
    Scenario {
        name: "thinking",
        stream: false,
        expect: answer(FinishKind::Stop, 0, true),
    },
    Scenario {
        name: "streamed text",
        stream: true,
        expect: answer(FinishKind::Stop, 0, true),
    },
    Scenario {
        name: "streamed tool call",
        stream: true,
        expect: answer(FinishKind::ToolCalls, 1, false),
    },
    Scenario {
        name: "streamed thinking",
        stream: true,
        expect: answer(FinishKind::Stop, 0, true),
    },
    Scenario {
        name: "cut stream",
        stream: true,
        expect: Expect::Error {
            kind: ErrorKind::StreamInterrupted,
            status: None,
        },
    },
    Scenario {
        name: "in-stream error after text",
        stream: true,
        expect: Expect::Error {
            kind: ErrorKind::StreamInterrupted,
            status: None,
        },
    },
    Scenario {
        name: "400 invalid request",
        stream: false,
        expect: error(ErrorKind::InvalidRequest, 400),
    },
    Scenario {
        name: "400 context length",
        stream: false,
        expect: error(ErrorKind::ContextLength, 400),
    },
    Scenario {
        name: "401 authentication",
        stream: false,
        expect: error(ErrorKind::Authentication, 401),
    },
    Scenario {
        name: "403 permission",
        stream: false,
        expect: error(ErrorKind::PermissionDenied, 403),
    },
    Scenario {
        name: "404 not found",
        stream: false,
        expect: error(ErrorKind::NotFound, 404),
    },
    Scenario {
        name: "429 rate limited",
        stream: false,
        expect: error(ErrorKind::RateLimited, 429),
    },
    Scenario {
        name: "500 server",
        stream: false,
        expect: error(ErrorKind::Server, 500),
    },
    Scenario {
        name: "overloaded",
        stream: false,
        expect: Expect::Error {
            kind: ErrorKind::Overloaded,
            status: None,
        },
    },
    Scenario {
        name: "error status on a stream request",
        stream: true,
        expect: error(ErrorKind::RateLimited, 429),
    },
];

/// The fixture each protocol answers a scenario with, or `None` when the protocol has no
/// such case. The status for `overloaded` is the protocol's own (503 or 529).
fn fixture_for(protocol: Protocol, scenario: &str) -> Option<(&'static str, u16)> {
    // Vendor captures that differ from their protocol's shared wire data.
    match (protocol, scenario) {
        (Protocol::Azure, "plain text") => return Some(("azure/chat_text.json", 200)),
        (Protocol::Azure, "overloaded") => return None,
        (Protocol::Bedrock, "plain text") => return Some(("bedrock/chat_text.json", 200)),
        _ => {}
    }
    use Wire::*;
    let row = match (protocol.wire(), scenario) {
        (ChatCompletions, "plain text") => ("openai/chat_text.json", 200),
        (ChatCompletions, "tool call") => ("openai/chat_tool_call.json", 200),
        (ChatCompletions, "parallel tool calls") => ("openai/chat_parallel_tool_calls.json", 200),
        (ChatCompletions, "token limit") => ("openai/chat_finish_length.json", 200),
        (ChatCompletions, "thinking") => ("openai/chat_reasoning_usage.json", 200),
        (ChatCompletions, "streamed text") => ("openai/stream_text.sse", 200),
        (ChatCompletions, "streamed tool call") => ("openai/stream_tool_call.sse", 200),
        (ChatCompletions, "streamed thinking") => return None,
        (ChatCompletions, "cut stream") => ("openai/stream_cut.sse", 200),
        (ChatCompletions, "in-stream error after text") => ("openai/stream_error_event.sse", 200),
        (ChatCompletions, "400 invalid request") => ("openai/error_400_invalid_request.json", 400),
        (ChatCompletions, "400 context length") => ("openai/error_400_context_length.json", 400),
        (ChatCompletions, "401 authentication") => ("openai/error_401.json", 401),
        (ChatCompletions, "403 permission") => ("openai/error_403.json", 403),
        (ChatCompletions, "404 not found") => ("openai/error_404_model.json", 404),
        (ChatCompletions, "429 rate limited") => ("openai/error_429_rate_limit.json", 429),
        (ChatCompletions, "500 server") => ("openai/error_500.json", 500),
        (ChatCompletions, "overloaded") => return None,
        (ChatCompletions, "error status on a stream request") => {
            ("openai/error_429_rate_limit.json", 429)
        }

        (Anthropic, "plain text") => ("anthropic/messages_text.json", 200),
        (Anthropic, "tool call") => ("anthropic/messages_tool_use.json", 200),
        (Anthropic, "parallel tool calls") => ("anthropic/messages_parallel_tool_use.json", 200),
        (Anthropic, "token limit") => ("anthropic/messages_max_tokens.json", 200),
        (Anthropic, "thinking") => ("anthropic/messages_thinking.json", 200),
        (Anthropic, "streamed text") => ("anthropic/stream_text.sse", 200),
        (Anthropic, "streamed tool call") => ("anthropic/stream_tool_use.sse", 200),
        (Anthropic, "streamed thinking") => ("anthropic/stream_thinking.sse", 200),
        (Anthropic, "cut stream") => ("anthropic/stream_cut.sse", 200),
        (Anthropic, "in-stream error after text") => ("anthropic/stream_error_overloaded.sse", 200),
        (Anthropic, "400 invalid request") => ("anthropic/error_400.json", 400),
        (Anthropic, "400 context length") => ("anthropic/error_400_context_length.json", 400),
        (Anthropic, "401 authentication") => ("anthropic/error_401.json", 401),
        (Anthropic, "403 permission") => ("anthropic/error_403.json", 403),
        (Anthropic, "404 not found") => ("anthropic/error_404.json", 404),
        (Anthropic, "429 rate limited") => ("anthropic/error_429.json", 429),
        (Anthropic, "500 server") => ("anthropic/error_500.json", 500),
        (Anthropic, "overloaded") => ("anthropic/error_529.json", 529),
        (Anthropic, "error status on a stream request") => ("anthropic/error_429.json", 429),

        (Gemini, "plain text") => ("gemini/generate_text.json", 200),
        (Gemini, "tool call") => ("gemini/generate_function_call.json", 200),
        (Gemini, "parallel tool calls") => ("gemini/generate_parallel_function_calls.json", 200),
        (Gemini, "token limit") => ("gemini/generate_max_tokens.json", 200),
        (Gemini, "thinking") => ("gemini/generate_thinking.json", 200),
        (Gemini, "streamed text") => ("gemini/stream_text.sse", 200),
        (Gemini, "streamed tool call") => ("gemini/stream_function_call.sse", 200),
        (Gemini, "streamed thinking") => ("gemini/stream_thinking.sse", 200),
        (Gemini, "cut stream") => ("gemini/stream_cut.sse", 200),
        (Gemini, "in-stream error after text") => return None,
        (Gemini, "400 invalid request") => ("gemini/error_400.json", 400),
        (Gemini, "400 context length") => ("gemini/error_400_context_length.json", 400),
        (Gemini, "401 authentication") => ("gemini/error_401.json", 401),
        (Gemini, "403 permission") => ("gemini/error_403.json", 403),
        (Gemini, "404 not found") => ("gemini/error_404.json", 404),
        (Gemini, "429 rate limited") => ("gemini/error_429.json", 429),
        (Gemini, "500 server") => ("gemini/error_500.json", 500),
        (Gemini, "overloaded") => ("gemini/error_503.json", 503),
        (Gemini, "error status on a stream request") => ("gemini/error_429.json", 429),
        (Responses, "plain text") => ("openai-responses/response_text.json", 200),
        (Responses, "tool call") => ("openai-responses/response_function_call.json", 200),
        (Responses, "parallel tool calls") => (
            "openai-responses/response_parallel_function_calls.json",
            200,
        ),
        (Responses, "token limit") => ("openai-responses/response_incomplete.json", 200),
        (Responses, "thinking") => ("openai-responses/response_reasoning.json", 200),
        (Responses, "streamed text") => ("openai-responses/stream_text.sse", 200),
        (Responses, "streamed tool call") => ("openai-responses/stream_function_call.sse", 200),
        (Responses, "streamed thinking") => ("openai-responses/stream_reasoning.sse", 200),
        (Responses, "cut stream") => ("openai-responses/stream_cut.sse", 200),
        (Responses, "in-stream error after text") => {
            ("openai-responses/stream_error_after_content.sse", 200)
        }
        // The Responses API answers errors with the same error object as Chat Completions.
        (Responses, "400 invalid request") => ("openai/error_400_invalid_request.json", 400),
        (Responses, "400 context length") => ("openai/error_400_context_length.json", 400),
        (Responses, "401 authentication") => ("openai/error_401.json", 401),
        (Responses, "403 permission") => ("openai/error_403.json", 403),
        (Responses, "404 not found") => ("openai/error_404_model.json", 404),
        (Responses, "429 rate limited") => ("openai/error_429_rate_limit.json", 429),
        (Responses, "500 server") => ("openai/error_500.json", 500),
        (Responses, "overloaded") => return None,
        (Responses, "error status on a stream request") => {
            ("openai/error_429_rate_limit.json", 429)
        }
        (_, other) => panic!("scenario `{other}` has no row for {protocol:?}"),
    };
    Some(row)
}

async fn client_for(protocol: Protocol, server: &MockServer) -> DynClient {
    let (spec, base) = match protocol {
        Protocol::OpenAi => ("openai:gpt-4o", format!("{}/v1", server.uri())),
        Protocol::Anthropic => ("anthropic:claude-sonnet-4-5", server.uri()),
        Protocol::Gemini => ("gemini:gemini-2.5-flash", server.uri()),
        Protocol::Responses => (
            "openai-responses:gpt-5-mini",
            format!("{}/v1", server.uri()),
        ),
        Protocol::Azure => ("azure:gpt-4o-prod", server.uri()),
        Protocol::AzureResponses => ("azure-responses:gpt-5-mini", server.uri()),
        Protocol::Bedrock => (
            "bedrock:openai.gpt-oss-120b-1:0",
            format!("{}/openai/v1", server.uri()),
        ),
    };
    let options = ClientOptions::new()
        .retry(None)
        .env(|_| None)
        .api_key("test-key-not-real")
        .base_url(base);
    create_client_with(spec, &options).expect("client")
}

type Outcome = (bool, Result<switchboard::ChatResponse, switchboard::Error>);

/// Runs one scenario; the flag says whether the fixture reports token usage at all.
async fn run(protocol: Protocol, scenario: &Scenario) -> Option<Outcome> {
    let (file, status) = fixture_for(protocol, scenario.name)?;
    let server = MockServer::start().await;
    let content_type = if file.ends_with(".sse") {
        "text/event-stream"
    } else {
        "application/json"
    };
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status).set_body_raw(fixture(file), content_type))
        .mount(&server)
        .await;
    let client = client_for(protocol, &server).await;
    let req = ChatRequest::user("hello");
    let body = String::from_utf8_lossy(&fixture(file)).into_owned();
    let has_usage = [
        "\"prompt_tokens\"",
        "\"input_tokens\"",
        "\"promptTokenCount\"",
    ]
    .iter()
    .any(|field| body.contains(field));
    let result = if scenario.stream {
        match client.chat_stream(&req).await {
            Ok(stream) => stream.collect_response().await,
            Err(e) => Err(e),
        }
    } else {
        client.chat(&req).await
    };
    Some((has_usage, result))
}

#[tokio::test]
async fn every_scenario_normalises_the_same_on_every_protocol() {
    let mut ran = 0;
    for scenario in SCENARIOS {
        for protocol in PROTOCOLS {
            let Some((has_usage, result)) = run(protocol, scenario).await else {
                continue;
            };
            ran += 1;
            let label = format!("{protocol:?} / {}", scenario.name);
            match (scenario.expect, result) {
                (
                    Expect::Answer {
                        finish,
                        tool_calls,
                        text,
                    },
                    Ok(r),
                ) => {
                    assert_eq!(r.finish_reason.kind, finish, "{label}");
                    assert!(
                        r.finish_reason.raw.is_some(),
                        "{label}: raw finish reason kept"
                    );
                    assert_eq!(r.tool_calls().len(), tool_calls, "{label}");
                    if text {
                        assert!(!r.text().is_empty(), "{label}: expected text");
                    }
                    if has_usage {
                        assert!(r.usage.input_tokens > 0, "{label}: usage read");
                    }
                    assert!(
                        r.usage.total_tokens >= r.usage.input_tokens + r.usage.output_tokens,
                        "{label}"
                    );
                    assert!(r.response_id.is_some(), "{label}: response id read");
                    assert!(r.served_model.is_some(), "{label}: served model read");
                    assert_eq!(r.attempts().len(), 1, "{label}");
                    assert_eq!(r.provider, protocol.provider(), "{label}");
                    for call in r.tool_calls() {
                        assert!(call.arguments.is_object(), "{label}: arguments parsed");
                        assert!(!call.name.is_empty(), "{label}");
                    }
                }
                (Expect::Error { kind, status }, Err(e)) => {
                    assert_eq!(e.kind(), kind, "{label}: {e}");
                    if let Some(status) = status {
                        assert_eq!(e.status(), Some(status), "{label}");
                    }
                    assert_eq!(e.provider(), Some(protocol.provider()), "{label}");
                    assert!(
                        e.is_recoverable(),
                        "{label}: a provider failure may fall back"
                    );
                    if kind == ErrorKind::StreamInterrupted {
                        assert!(e.partial().is_some(), "{label}: partial answer kept");
                    }
                    assert!(!e.to_string().contains("test-key-not-real"), "{label}");
                }
                (expect, got) => panic!("{label}: expected {expect:?}, got {got:?}"),
            }
        }
    }
    assert!(ran >= 100, "only {ran} scenario rows ran");
}

#[tokio::test]
async fn streamed_and_whole_answers_agree_on_every_protocol() {
    // The streamed text fixture of each protocol has a non-streaming twin with the same
    // content; folding the stream must give the same text, tool calls and finish kind.
    let pairs = [(
        Protocol::Anthropic,
        "anthropic/stream_text.sse",
        "anthropic/messages_stream_text_equivalent.json",
    )];
    for (protocol, sse, json) in pairs {
        let server = MockServer::start().await;
        let client = client_for(protocol, &server).await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(fixture(sse), "text/event-stream"),
            )
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(fixture(json), "application/json"),
            )
            .mount(&server)
            .await;
        let req = ChatRequest::user("hello");
        let streamed = client
            .chat_stream(&req)
            .await
            .unwrap()
            .collect_response()
            .await
            .unwrap();
        let whole = client.chat(&req).await.unwrap();
        assert_eq!(streamed.text(), whole.text(), "{protocol:?}");
        assert_eq!(streamed.finish_reason, whole.finish_reason, "{protocol:?}");
        let names = |r: &switchboard::ChatResponse| {
            r.tool_calls()
                .iter()
                .map(|c| (c.name.clone(), c.arguments.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&streamed), names(&whole), "{protocol:?}");
    }
}

/// One HTTP error case: the status, the fixture each base protocol answers it with (`None`
/// where the provider has no such body), the kind it must map to, and whether a retry of the
/// same call may succeed.
struct StatusCase {
    status: u16,
    openai: Option<&'static str>,
    anthropic: Option<&'static str>,
    gemini: Option<&'static str>,
    kind: ErrorKind,
    retryable: bool,
}

const fn case(
    status: u16,
    files: [Option<&'static str>; 3],
    kind: ErrorKind,
    retryable: bool,
) -> StatusCase {
    let [openai, anthropic, gemini] = files;
    StatusCase {
        status,
        openai,
        anthropic,
        gemini,
        kind,
        retryable,
    }
}

/// Every error status the providers answer with, each replayed from a file in the provider's
/// documented error envelope. The OpenAI-family profiles, Responses, Azure and Bedrock share
/// OpenAI's error object. Anthropic and Gemini report content-policy refusals inside a 200
/// answer, and only OpenAI has `insufficient_quota`, so those rows have one file.
const STATUS_CASES: &[StatusCase] = &[
    case(
        400,
        [
            Some("openai/error_400_invalid_request.json"),
            Some("anthropic/error_400.json"),
            Some("gemini/error_400.json"),
        ],
        ErrorKind::InvalidRequest,
        false,
    ),
    case(
        400,
        [
            Some("openai/error_400_context_length.json"),
            Some("anthropic/error_400_context_length.json"),
            Some("gemini/error_400_context_length.json"),
        ],
        ErrorKind::ContextLength,
        false,
    ),
    case(
        400,
        [Some("openai/error_400_content_policy.json"), None, None],
        ErrorKind::ContentFiltered,
        false,
    ),
    case(
        401,
        [
            Some("openai/error_401.json"),
            Some("anthropic/error_401.json"),
            Some("gemini/error_401.json"),
        ],
        ErrorKind::Authentication,
        false,
    ),
    case(
        403,
        [
            Some("openai/error_403.json"),
            Some("anthropic/error_403.json"),
            Some("gemini/error_403.json"),
        ],
        ErrorKind::PermissionDenied,
        false,
    ),
    case(
        404,
        [
            Some("openai/error_404_model.json"),
            Some("anthropic/error_404.json"),
            Some("gemini/error_404.json"),
        ],
        ErrorKind::NotFound,
        false,
    ),
    case(
        408,
        [
            Some("openai/error_408.json"),
            Some("anthropic/error_408.json"),
            Some("gemini/error_408.json"),
        ],
        ErrorKind::Timeout,
        true,
    ),
    case(
        409,
        [
            Some("openai/error_409.json"),
            Some("anthropic/error_409.json"),
            Some("gemini/error_409.json"),
        ],
        ErrorKind::Overloaded,
        true,
    ),
    case(
        413,
        [
            Some("openai/error_413.json"),
            Some("anthropic/error_413.json"),
            Some("gemini/error_413.json"),
        ],
        ErrorKind::InvalidRequest,
        false,
    ),
    case(
        422,
        [
            Some("openai/error_422.json"),
            Some("anthropic/error_422.json"),
            Some("gemini/error_422.json"),
        ],
        ErrorKind::InvalidRequest,
        false,
    ),
    case(
        425,
        [
            Some("openai/error_425.json"),
            Some("anthropic/error_425.json"),
            Some("gemini/error_425.json"),
        ],
        ErrorKind::Overloaded,
        true,
    ),
    case(
        429,
        [
            Some("openai/error_429_rate_limit.json"),
            Some("anthropic/error_429.json"),
            Some("gemini/error_429.json"),
        ],
        ErrorKind::RateLimited,
        true,
    ),
    case(
        429,
        [Some("openai/error_429_insufficient_quota.json"), None, None],
        ErrorKind::QuotaExceeded,
        false,
    ),
    case(
        500,
        [
            Some("openai/error_500.json"),
            Some("anthropic/error_500.json"),
            Some("gemini/error_500.json"),
        ],
        ErrorKind::Server,
        true,
    ),
    case(
        502,
        [
            Some("openai/error_502.json"),
            Some("anthropic/error_502.json"),
            Some("gemini/error_502.json"),
        ],
        ErrorKind::Server,
        true,
    ),
    case(
        503,
        [
            Some("openai/error_503.json"),
            Some("anthropic/error_503.json"),
            Some("gemini/error_503_unavailable.json"),
        ],
        ErrorKind::Server,
        true,
    ),
    case(
        504,
        [
            Some("openai/error_504.json"),
            Some("anthropic/error_504.json"),
            Some("gemini/error_504.json"),
        ],
        ErrorKind::Server,
        true,
    ),
    case(
        529,
        [
            Some("openai/error_529.json"),
            Some("anthropic/error_529.json"),
            Some("gemini/error_529.json"),
        ],
        ErrorKind::Overloaded,
        true,
    ),
];

impl StatusCase {
    /// The fixture this case replays on `wire`.
    fn file(&self, wire: Wire) -> Option<&'static str> {
        match wire {
            Wire::ChatCompletions | Wire::Responses => self.openai,
            Wire::Anthropic => self.anthropic,
            Wire::Gemini => self.gemini,
        }
    }
}

/// The provider's own message in an error fixture (`error.message` in all three envelopes).
fn fixture_message(file: &str) -> String {
    let body: serde_json::Value = serde_json::from_slice(&fixture(file)).expect("JSON fixture");
    body["error"]["message"]
        .as_str()
        .expect("error.message")
        .trim()
        .to_owned()
}

#[tokio::test]
async fn every_error_status_maps_to_its_kind_on_every_protocol() {
    let mut ran = 0;
    for protocol in PROTOCOLS {
        let server = MockServer::start().await;
        let client = client_for(protocol, &server).await;
        for case in STATUS_CASES {
            let Some(file) = case.file(protocol.wire()) else {
                continue;
            };
            let status = case.status;
            server.reset().await;
            Mock::given(method("POST"))
                .respond_with(
                    ResponseTemplate::new(status)
                        .insert_header("retry-after", "3")
                        .set_body_raw(fixture(file), "application/json"),
                )
                .mount(&server)
                .await;
            let said = fixture_message(file);
            let label = format!("{protocol:?} / HTTP {status} / {file}");
            for stream in [false, true] {
                let req = ChatRequest::user("hello");
                let err = if stream {
                    match client.chat_stream(&req).await {
                        Ok(s) => s.collect_response().await.unwrap_err(),
                        Err(e) => e,
                    }
                } else {
                    client.chat(&req).await.unwrap_err()
                };
                ran += 1;
                let label = format!("{label} (stream: {stream})");
                assert_eq!(err.kind(), case.kind, "{label}: {err}");
                assert_eq!(err.status(), Some(status), "{label}");
                assert_eq!(err.provider(), Some(protocol.provider()), "{label}");
                assert_eq!(err.is_retryable(), case.retryable, "{label}");
                assert!(
                    err.is_recoverable(),
                    "{label}: a provider's answer may fall back"
                );
                assert_eq!(err.retry_after(), Some(Duration::from_secs(3)), "{label}");
                assert!(err.message().contains(&said), "{label}: {err}");
                assert!(err.fix().is_some(), "{label}: {err}");
                if status == 413 {
                    assert!(
                        err.message().starts_with("the request was too large"),
                        "{label}: {err}"
                    );
                    assert!(
                        err.fix().is_some_and(|f| f.contains("send less")),
                        "{label}: {err}"
                    );
                }
                assert!(!err.to_string().contains("test-key-not-real"), "{label}");
            }
        }
    }
    // 18 cases on the four OpenAI-shaped protocols and the Responses pair, 16 on Anthropic
    // and Gemini; each both whole and streamed.
    assert_eq!(ran, 2 * (5 * 18 + 2 * 16), "rows ran");
}

/// The turn before the one that fails over: a tool call and its result, in neutral types.
fn conversation_with_a_tool_round() -> ChatRequest {
    use switchboard::{Message, Part, Role, ToolCall, ToolSpec};
    let call = ToolCall {
        id: "call_weather_1".into(),
        name: "get_weather".into(),
        arguments: serde_json::json!({"location": "Paris"}),
        signature: None,
    };
    ChatRequest::new(vec![
        Message::system("Answer briefly."),
        Message::user("What's the weather in Paris?"),
        Message::new(Role::Assistant, vec![Part::ToolCall(call)]),
        Message::tool_result("call_weather_1", "{\"sky\":\"sunny\",\"temp_c\":21}"),
        Message::user("And what should I wear?"),
    ])
    .with_tool(ToolSpec::new(
        "get_weather",
        "Current weather for a place",
        serde_json::json!({"type": "object", "properties": {"location": {"type": "string"}}}),
    ))
}

#[tokio::test]
async fn every_protocol_backs_up_every_other_mid_conversation() {
    let req = conversation_with_a_tool_round();
    let mut pairs = 0;
    for primary in PROTOCOLS {
        for backup in PROTOCOLS {
            if primary == backup {
                continue;
            }
            let label = format!("{primary:?} -> {backup:?}");
            let down = MockServer::start().await;
            let unavailable = STATUS_CASES
                .iter()
                .find(|c| c.status == 503)
                .and_then(|c| c.file(primary.wire()))
                .expect("a 503 fixture for every protocol");
            Mock::given(method("POST"))
                .respond_with(
                    ResponseTemplate::new(503)
                        .set_body_raw(fixture(unavailable), "application/json"),
                )
                .mount(&down)
                .await;
            let up = MockServer::start().await;
            let (file, _) = fixture_for(backup, "plain text").unwrap();
            Mock::given(method("POST"))
                .respond_with(
                    ResponseTemplate::new(200).set_body_raw(fixture(file), "application/json"),
                )
                .mount(&up)
                .await;
            let chain = switchboard::FallbackClient::new(vec![
                client_for(primary, &down).await,
                client_for(backup, &up).await,
            ])
            .unwrap();
            let r = chain
                .chat(&req)
                .await
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(r.provider, backup.provider(), "{label}");
            assert!(!r.text().is_empty(), "{label}");
            let attempts = r.attempts();
            assert_eq!(attempts.len(), 2, "{label}");
            assert_eq!(attempts[0].provider, primary.provider(), "{label}");
            assert_eq!(attempts[0].status, Some(503), "{label}");
            assert_eq!(attempts[1].provider, backup.provider(), "{label}");
            // The backup received the whole conversation, tool round included.
            let sent = &up.received_requests().await.unwrap()[0];
            let body = String::from_utf8_lossy(&sent.body);
            for needle in [
                "What's the weather in Paris?",
                "get_weather",
                "sunny",
                "And what should I wear?",
                "Answer briefly.",
            ] {
                assert!(
                    body.contains(needle),
                    "{label}: {needle} missing from {body}"
                );
            }
            pairs += 1;
        }
    }
    assert_eq!(pairs, PROTOCOLS.len() * (PROTOCOLS.len() - 1));
}

/// Timeouts that really fire, over a real socket.
mod transport {
    use super::*;
    use switchboard::providers::HttpSettings;

    fn settings(request: Duration, idle: Duration) -> HttpSettings {
        HttpSettings {
            request_timeout: request,
            stream_idle_timeout: idle,
            ..HttpSettings::default()
        }
    }

    async fn client(server: &MockServer, http: HttpSettings) -> DynClient {
        let options = ClientOptions::new()
            .retry(None)
            .env(|_| None)
            .api_key("k")
            .base_url(format!("{}/v1", server.uri()))
            .http_settings(http);
        create_client_with("openai:gpt-4o", &options).unwrap()
    }

    #[tokio::test]
    async fn a_silent_upstream_times_out_within_the_request_limit() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(fixture("openai/chat_text.json"), "application/json")
                    .set_delay(Duration::from_secs(5)),
            )
            .mount(&server)
            .await;
        let client = client(
            &server,
            settings(Duration::from_millis(200), Duration::from_secs(5)),
        )
        .await;
        let started = std::time::Instant::now();
        let err = client.chat(&ChatRequest::user("hi")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(err.is_retryable() && err.is_recoverable());
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_transport_error() {
        // Bind then drop a listener, so the port is known to be closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let options = ClientOptions::new()
            .retry(None)
            .env(|_| None)
            .api_key("k")
            .base_url(format!("http://127.0.0.1:{port}/v1"));
        let client = create_client_with("openai:gpt-4o", &options).unwrap();
        let err = client.chat(&ChatRequest::user("hi")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
        assert!(err.is_recoverable());
    }

    #[tokio::test]
    async fn a_connect_that_never_completes_times_out_within_the_connect_limit() {
        // A listener with a backlog of one that never accepts: once its queue is full the
        // kernel drops further SYNs, so a new connection hangs in the handshake.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..8 {
            let connect = tokio::net::TcpStream::connect(addr);
            match tokio::time::timeout(Duration::from_millis(200), connect).await {
                Ok(Ok(stream)) => fillers.push(stream),
                // The queue is full: this is the state the client must meet.
                _ => break,
            }
        }
        let http = HttpSettings {
            connect_timeout: Duration::from_millis(300),
            request_timeout: Duration::from_secs(20),
            ..HttpSettings::default()
        };
        let options = ClientOptions::new()
            .retry(None)
            .env(|_| None)
            .api_key("k")
            .base_url(format!("http://{addr}/v1"))
            .http_settings(http);
        let client = create_client_with("openai:gpt-4o", &options).unwrap();
        let started = std::time::Instant::now();
        let err = client.chat(&ChatRequest::user("hi")).await.unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        assert!(err.is_retryable() && err.is_recoverable());
        drop((fillers, listener));
    }

    #[tokio::test]
    async fn an_oversized_reply_is_refused() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(fixture("openai/chat_text.json"), "application/json"),
            )
            .mount(&server)
            .await;
        let http = HttpSettings {
            max_response_bytes: 64,
            ..HttpSettings::default()
        };
        let err = client(&server, http)
            .await
            .chat(&ChatRequest::user("hi"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
        assert!(err.message().contains("cap"), "{err}");
    }

    #[tokio::test]
    async fn a_stream_event_past_the_size_cap_ends_the_stream_instead_of_buffering() {
        let first = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n";
        // Then one event that never ends: 64 KiB of data with no blank line.
        let body = format!("{first}data: {}", "x".repeat(64 * 1024));
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
            .mount(&server)
            .await;
        let http = HttpSettings {
            max_response_bytes: 4096,
            ..HttpSettings::default()
        };
        let err = client(&server, http)
            .await
            .chat_stream(&ChatRequest::user("hi"))
            .await
            .unwrap()
            .collect_response()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StreamInterrupted, "{err}");
        assert_eq!(err.partial().unwrap().text(), "Hel");
        let cause = std::error::Error::source(&err)
            .and_then(|s| s.downcast_ref::<switchboard::Error>())
            .unwrap();
        assert_eq!(cause.kind(), ErrorKind::Decode);
        assert!(cause.message().contains("4096-byte cap"), "{cause}");
    }

    #[tokio::test]
    async fn a_stream_whose_headers_never_come_times_out() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(fixture("openai/stream_text.sse"), "text/event-stream")
                    .set_delay(Duration::from_secs(5)),
            )
            .mount(&server)
            .await;
        let client = client(
            &server,
            settings(Duration::from_millis(300), Duration::from_secs(5)),
        )
        .await;
        let started = std::time::Instant::now();
        let err = match client.chat_stream(&ChatRequest::user("hi")).await {
            Ok(stream) => stream.collect_response().await.unwrap_err(),
            Err(e) => e,
        };
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    /// A raw server that sends the headers and one content event, then goes silent.
    async fn stalling_server() -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 65536];
            let _ = socket.read(&mut buf).await;
            let event = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n";
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{event}\r\n",
                event.len()
            );
            socket.write_all(head.as_bytes()).await.unwrap();
            // Stay silent, holding the connection open, until the test is over.
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(socket);
        });
        format!("http://{addr}/v1")
    }

    #[tokio::test]
    async fn a_stream_that_stalls_after_content_is_interrupted_by_the_idle_limit() {
        let base = stalling_server().await;
        let options = ClientOptions::new()
            .retry(None)
            .env(|_| None)
            .api_key("k")
            .base_url(base)
            .http_settings(settings(Duration::from_secs(5), Duration::from_millis(300)));
        let client = create_client_with("openai:gpt-4o", &options).unwrap();
        let started = std::time::Instant::now();
        let stream = client.chat_stream(&ChatRequest::user("hi")).await.unwrap();
        let err = stream.collect_response().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StreamInterrupted, "{err}");
        assert_eq!(err.partial().unwrap().text(), "Hel");
        let cause = std::error::Error::source(&err)
            .and_then(|s| s.downcast_ref::<switchboard::Error>())
            .unwrap();
        assert_eq!(cause.kind(), ErrorKind::Timeout);
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
