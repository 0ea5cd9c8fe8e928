//! What each protocol's answers look like on the wire: whole JSON bodies, SSE streams split
//! into head, per-token and tail events, and error bodies.
//!
//! The shapes follow the providers' API references (and the library's decoders accept them):
//! OpenAI Chat Completions (`chat.completion` / `chat.completion.chunk`, ending with
//! `data: [DONE]`), Anthropic Messages (`message_start` … `message_stop`) and Gemini
//! `generateContent` (`candidates` chunks, the last with `finishReason`).

use std::time::Duration;

use serde_json::{json, Value};

use super::Protocol;

/// The content of one healthy answer, before it is shaped for a protocol.
#[derive(Debug)]
pub(crate) struct Answer<'a> {
    pub(crate) protocol: Protocol,
    pub(crate) model: &'a str,
    pub(crate) id: String,
    pub(crate) tokens: &'a [String],
    pub(crate) input_tokens: u64,
    /// How many of the input tokens were read from the prompt cache.
    pub(crate) cached_tokens: u64,
    /// OpenAI only: whether the request asked for a usage chunk (`stream_options`).
    pub(crate) include_usage: bool,
}

/// A stream split where faults cut it: events before the first token, one event per token,
/// and the events that say the answer is finished.
#[derive(Debug, Default)]
pub(crate) struct StreamPlan {
    pub(crate) head: Vec<String>,
    pub(crate) tokens: Vec<String>,
    pub(crate) tail: Vec<String>,
}

fn data(value: &Value) -> String {
    format!("data: {value}\n\n")
}

fn named(event: &str, value: &Value) -> String {
    format!("event: {event}\ndata: {value}\n\n")
}

impl Answer<'_> {
    fn output_tokens(&self) -> u64 {
        self.tokens.len() as u64
    }

    /// OpenAI's usage object; cache reads in `prompt_tokens_details` when the prompt cache
    /// model is on.
    fn openai_usage(&self) -> Value {
        let (input, output) = (self.input_tokens, self.output_tokens());
        let mut usage = json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output});
        if self.cached_tokens > 0 {
            usage["prompt_tokens_details"] = json!({"cached_tokens": self.cached_tokens});
        }
        usage
    }

    /// Anthropic's usage object: `input_tokens` counts only what was not read from the
    /// cache, as the API reports it.
    fn anthropic_usage(&self, output: u64) -> Value {
        let mut usage = json!({"input_tokens": self.input_tokens - self.cached_tokens, "output_tokens": output});
        if self.cached_tokens > 0 {
            usage["cache_read_input_tokens"] = json!(self.cached_tokens);
        }
        usage
    }

    /// Gemini's `usageMetadata`, with the candidates' count when known.
    fn gemini_usage(&self, candidates: Option<u64>) -> Value {
        let input = self.input_tokens;
        let mut usage = json!({"promptTokenCount": input, "totalTokenCount": input});
        if let Some(n) = candidates {
            usage["candidatesTokenCount"] = json!(n);
            usage["totalTokenCount"] = json!(input + n);
        }
        if self.cached_tokens > 0 {
            usage["cachedContentTokenCount"] = json!(self.cached_tokens);
        }
        usage
    }

    fn text(&self) -> String {
        self.tokens.concat()
    }

    /// The whole (non-streaming) answer body.
    pub(crate) fn whole(&self) -> Value {
        let output = self.output_tokens();
        match self.protocol {
            Protocol::OpenAi => json!({
                "id": self.id,
                "object": "chat.completion",
                "created": 1_767_225_600,
                "model": self.model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": self.text(), "refusal": null},
                    "logprobs": null,
                    "finish_reason": "stop"
                }],
                "usage": self.openai_usage()
            }),
            Protocol::Anthropic => json!({
                "id": self.id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [{"type": "text", "text": self.text()}],
                "stop_reason": "end_turn",
                "stop_sequence": null,
                "usage": self.anthropic_usage(output)
            }),
            Protocol::Gemini => json!({
                "candidates": [{
                    "content": {"parts": [{"text": self.text()}], "role": "model"},
                    "finishReason": "STOP",
                    "index": 0
                }],
                "usageMetadata": self.gemini_usage(Some(output)),
                "modelVersion": self.model,
                "responseId": self.id
            }),
        }
    }

    /// The streamed answer, split into head, token and tail events.
    pub(crate) fn stream(&self) -> StreamPlan {
        let output = self.output_tokens();
        match self.protocol {
            Protocol::OpenAi => {
                let chunk = |delta: Value, finish: Value| {
                    data(&json!({
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": 1_767_225_600,
                        "model": self.model,
                        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
                    }))
                };
                let mut tail = vec![chunk(json!({}), json!("stop"))];
                if self.include_usage {
                    tail.push(data(&json!({
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": 1_767_225_600,
                        "model": self.model,
                        "choices": [],
                        "usage": self.openai_usage()
                    })));
                }
                tail.push("data: [DONE]\n\n".to_owned());
                StreamPlan {
                    head: vec![chunk(
                        json!({"role": "assistant", "content": ""}),
                        Value::Null,
                    )],
                    tokens: self
                        .tokens
                        .iter()
                        .map(|t| chunk(json!({ "content": t }), Value::Null))
                        .collect(),
                    tail,
                }
            }
            Protocol::Anthropic => StreamPlan {
                head: vec![
                    named(
                        "message_start",
                        &json!({"type": "message_start", "message": {
                            "id": self.id, "type": "message", "role": "assistant", "content": [],
                            "model": self.model, "stop_reason": null, "stop_sequence": null,
                            "usage": self.anthropic_usage(1)
                        }}),
                    ),
                    named(
                        "content_block_start",
                        &json!({"type": "content_block_start", "index": 0,
                                "content_block": {"type": "text", "text": ""}}),
                    ),
                    named("ping", &json!({"type": "ping"})),
                ],
                tokens: self
                    .tokens
                    .iter()
                    .map(|t| {
                        named(
                            "content_block_delta",
                            &json!({"type": "content_block_delta", "index": 0,
                                    "delta": {"type": "text_delta", "text": t}}),
                        )
                    })
                    .collect(),
                tail: vec![
                    named(
                        "content_block_stop",
                        &json!({"type": "content_block_stop", "index": 0}),
                    ),
                    named(
                        "message_delta",
                        &json!({"type": "message_delta",
                                "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                                "usage": {"output_tokens": output}}),
                    ),
                    named("message_stop", &json!({"type": "message_stop"})),
                ],
            },
            Protocol::Gemini => {
                let chunk = |text: &str, finish: Option<&str>, candidates_tokens: Option<u64>| {
                    let mut candidate = json!({
                        "content": {"parts": [{"text": text}], "role": "model"},
                        "index": 0
                    });
                    let usage = self.gemini_usage(candidates_tokens);
                    if let Some(reason) = finish {
                        candidate["finishReason"] = json!(reason);
                    }
                    data(&json!({
                        "candidates": [candidate],
                        "usageMetadata": usage,
                        "modelVersion": self.model,
                        "responseId": self.id
                    }))
                };
                StreamPlan {
                    head: Vec::new(),
                    tokens: self.tokens.iter().map(|t| chunk(t, None, None)).collect(),
                    tail: vec![chunk("", Some("STOP"), Some(output))],
                }
            }
        }
    }

    /// An event that starts like a token event but whose JSON is cut in the middle.
    pub(crate) fn malformed_event(&self) -> String {
        match self.protocol {
            Protocol::OpenAi => format!(
                "data: {{\"id\":\"{}\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok\n\n",
                self.id
            ),
            Protocol::Anthropic => "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_del\n\n".to_owned(),
            Protocol::Gemini => "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"to\n\n".to_owned(),
        }
    }

    /// The body a content-policy refusal comes with: `(status, body)`.
    ///
    /// OpenAI answers 400 `content_policy_violation`; Gemini answers 200 with
    /// `promptFeedback.blockReason` and no candidates; Anthropic has no such error status and
    /// instead answers 200 with `stop_reason: "refusal"`.
    pub(crate) fn content_policy(&self) -> (u16, Value) {
        match self.protocol {
            Protocol::OpenAi => (
                400,
                json!({"error": {
                    "message": "Your request was rejected as a result of our safety system.",
                    "type": "invalid_request_error",
                    "param": null,
                    "code": "content_policy_violation"
                }}),
            ),
            Protocol::Anthropic => (
                200,
                json!({
                    "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                    "content": [], "stop_reason": "refusal", "stop_sequence": null,
                    "usage": {"input_tokens": self.input_tokens, "output_tokens": 0}
                }),
            ),
            Protocol::Gemini => (
                200,
                json!({
                    "promptFeedback": {"blockReason": "SAFETY"},
                    "usageMetadata": {"promptTokenCount": self.input_tokens, "totalTokenCount": self.input_tokens},
                    "modelVersion": self.model,
                    "responseId": self.id
                }),
            ),
        }
    }

    /// The stream a refusal comes as, for protocols that refuse with a 200 (Anthropic,
    /// Gemini).
    pub(crate) fn content_policy_stream(&self) -> Vec<String> {
        match self.protocol {
            Protocol::Anthropic => vec![
                named(
                    "message_start",
                    &json!({"type": "message_start", "message": {
                        "id": self.id, "type": "message", "role": "assistant", "content": [],
                        "model": self.model, "stop_reason": null, "stop_sequence": null,
                        "usage": {"input_tokens": self.input_tokens, "output_tokens": 1}
                    }}),
                ),
                named(
                    "message_delta",
                    &json!({"type": "message_delta",
                            "delta": {"stop_reason": "refusal", "stop_sequence": null},
                            "usage": {"output_tokens": 0}}),
                ),
                named("message_stop", &json!({"type": "message_stop"})),
            ],
            _ => vec![data(&self.content_policy().1)],
        }
    }
}

/// The error a status fault answers with, in `protocol`'s shape: `(status, body)`.
pub(crate) fn error_body(protocol: Protocol, case: ErrorCase) -> (u16, Value) {
    match (protocol, case) {
        (Protocol::OpenAi, ErrorCase::RateLimited) => (
            429,
            json!({"error": {
                "message": "Rate limit reached for requests per min (RPM). Please try again later.",
                "type": "requests", "param": null, "code": "rate_limit_exceeded"
            }}),
        ),
        (Protocol::OpenAi, ErrorCase::Server) => (
            500,
            json!({"error": {
                "message": "The server had an error while processing your request.",
                "type": "server_error", "param": null, "code": null
            }}),
        ),
        (Protocol::OpenAi, ErrorCase::Unavailable) => (
            503,
            json!({"error": {
                "message": "Service unavailable.", "type": "server_error", "param": null, "code": null
            }}),
        ),
        (Protocol::OpenAi, ErrorCase::Overloaded) => (
            503,
            json!({"error": {
                "message": "The engine is currently overloaded, please try again later",
                "type": "server_error", "param": null, "code": null
            }}),
        ),
        (Protocol::OpenAi, ErrorCase::ContextLength) => (
            400,
            json!({"error": {
                "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens. Please reduce the length of the messages.",
                "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"
            }}),
        ),
        (Protocol::Anthropic, case) => {
            let (status, kind, message) = match case {
                ErrorCase::RateLimited => (
                    429,
                    "rate_limit_error",
                    "This request would exceed the rate limit for your organization.",
                ),
                ErrorCase::Server => (500, "api_error", "Internal server error"),
                ErrorCase::Unavailable => (503, "api_error", "Service unavailable"),
                ErrorCase::Overloaded => (529, "overloaded_error", "Overloaded"),
                ErrorCase::ContextLength => (
                    400,
                    "invalid_request_error",
                    "prompt is too long: 210000 tokens > 200000 maximum",
                ),
            };
            (
                status,
                json!({"type": "error", "error": {"type": kind, "message": message},
                       "request_id": "req_fault_mock"}),
            )
        }
        (Protocol::Gemini, case) => {
            let (status, name, message) = match case {
                ErrorCase::RateLimited => (
                    429,
                    "RESOURCE_EXHAUSTED",
                    "Resource has been exhausted (e.g. check quota).",
                ),
                ErrorCase::Server => (500, "INTERNAL", "An internal error has occurred."),
                ErrorCase::Unavailable => (503, "UNAVAILABLE", "The service is currently unavailable."),
                ErrorCase::Overloaded => (
                    503,
                    "UNAVAILABLE",
                    "The model is overloaded. Please try again later.",
                ),
                ErrorCase::ContextLength => (
                    400,
                    "INVALID_ARGUMENT",
                    "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
                ),
            };
            (
                status,
                json!({"error": {"code": status, "message": message, "status": name}}),
            )
        }
    }
}

/// The error bodies a status fault can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorCase {
    RateLimited,
    Server,
    Unavailable,
    Overloaded,
    ContextLength,
}

/// Formats a wait as a `Retry-After` value in seconds: whole seconds as an integer, shorter
/// or fractional waits with up to three decimals (the delta-seconds form, which clients
/// such as the official SDKs and this library read as a decimal).
pub(crate) fn retry_after_value(wait: Duration) -> String {
    if wait.subsec_nanos() == 0 {
        wait.as_secs().to_string()
    } else {
        let text = format!("{:.3}", wait.as_secs_f64());
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_keeps_whole_seconds_and_scales_down() {
        assert_eq!(retry_after_value(Duration::from_secs(2)), "2");
        assert_eq!(retry_after_value(Duration::from_millis(20)), "0.02");
        assert_eq!(retry_after_value(Duration::from_millis(1500)), "1.5");
    }

    #[test]
    fn every_stream_event_is_one_sse_frame() {
        let tokens: Vec<String> = (0..3).map(|i| format!("t{i} ")).collect();
        for protocol in Protocol::ALL {
            let answer = Answer {
                protocol,
                model: "m",
                id: "id-1".into(),
                tokens: &tokens,
                input_tokens: 5,
                cached_tokens: 0,
                include_usage: true,
            };
            let plan = answer.stream();
            assert_eq!(plan.tokens.len(), 3, "{protocol:?}");
            for event in plan.head.iter().chain(&plan.tokens).chain(&plan.tail) {
                assert!(event.ends_with("\n\n"), "{protocol:?}: {event}");
                assert_eq!(event.matches("\n\n").count(), 1, "{protocol:?}: {event}");
            }
            let whole = answer.whole().to_string();
            assert!(whole.contains("t0 t1 t2 "), "{protocol:?}: {whole}");
        }
    }
}
