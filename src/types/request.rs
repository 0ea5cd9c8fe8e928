//! [`ChatRequest`]: the conversation plus the model parameters, as one provider-neutral value.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::message::{Message, Part, Role};
use crate::error::{Error, Result};

/// A function the model may call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The function's name.
    pub name: String,
    /// What it does; the model reads this to decide when to call it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A JSON Schema for the arguments object.
    pub parameters: Value,
    /// Asks providers that support it (OpenAI) to enforce the schema strictly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

impl ToolSpec {
    /// Creates a tool from its name, description and argument schema.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: Value,
    ) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: Some(description.into()),
            parameters,
            strict: None,
        }
    }
}

/// Whether and which tool the model must call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "name")]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// The model must not call tools.
    None,
    /// The model must call some tool.
    Required,
    /// The model must call this tool.
    Tool(String),
}

/// The shape the answer must take.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ResponseFormat {
    /// Free text (the default).
    Text,
    /// Any JSON object.
    Json,
    /// JSON matching a schema. Providers without native support get a forced tool call or,
    /// as a last resort, a prompt.
    JsonSchema {
        /// A name for the schema (OpenAI requires one).
        name: String,
        /// The JSON Schema.
        schema: Value,
        /// Whether the provider should enforce it strictly where it can.
        #[serde(default)]
        strict: bool,
    },
}

/// How hard a reasoning model should think.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningEffort {
    /// The least reasoning the model allows.
    Minimal,
    /// Little reasoning.
    Low,
    /// The usual amount.
    Medium,
    /// As much as the model likes.
    High,
}

impl ReasoningEffort {
    /// Returns the lowercase name OpenAI uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasoningEffort::Minimal => "minimal",
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
        }
    }

    /// Returns a thinking-token budget for protocols that take one (Anthropic, Gemini).
    pub fn budget_tokens(self) -> u32 {
        match self {
            ReasoningEffort::Minimal => 1024,
            ReasoningEffort::Low => 2048,
            ReasoningEffort::Medium => 8192,
            ReasoningEffort::High => 24576,
        }
    }
}

/// How a reasoning model should summarise its reasoning for the caller.
///
/// OpenAI's Responses API returns reasoning summaries only when asked
/// (`reasoning.summary`); Anthropic and Gemini show their reasoning without being asked,
/// so their clients ignore it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningSummary {
    /// The most detailed summary the model offers.
    Auto,
    /// A short summary.
    Concise,
    /// A long summary.
    Detailed,
}

impl ReasoningSummary {
    /// Returns the lowercase name OpenAI uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasoningSummary::Auto => "auto",
            ReasoningSummary::Concise => "concise",
            ReasoningSummary::Detailed => "detailed",
        }
    }
}

/// One chat request: messages and model parameters, independent of any provider.
///
/// The model is not part of the request: each client knows its own, which is what lets a
/// [`FallbackClient`](crate::FallbackClient) send the same request to different models.
///
/// # Examples
/// ```
/// use switchboard::{ChatRequest, Message};
///
/// let req = ChatRequest::new(vec![Message::system("Be brief."), Message::user("hello")])
///     .with_max_tokens(200)
///     .with_temperature(0.2);
/// assert_eq!(req.max_tokens, Some(200));
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// The most tokens to generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling cut-off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Sequences that end generation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// A seed for providers that sample deterministically with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Functions the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolSpec>,
    /// Whether and which tool the model must call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// The shape of the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// How hard a reasoning model should think.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Whether a reasoning model should return a summary of its reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_summary: Option<ReasoningSummary>,
    /// Provider-specific JSON merged into the top level of the request body, last, so it
    /// can set anything the neutral fields cannot.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
    /// JSON in one protocol's own shape that the neutral fields do not model, sent only to
    /// targets speaking that protocol (see [`Passthrough`]). Unlike [`extra`](Self::extra),
    /// which every target receives, it is dropped for targets of other protocols.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<Passthrough>,
    /// Values that choose a target but are never sent to a provider (nor serialised with
    /// the request): the conversation ids prompt-cache affinity keys on. See
    /// [`RoutingHints`].
    #[serde(skip)]
    pub routing: RoutingHints,
}

/// Request JSON kept in the shape of the protocol it arrived in, for targets that speak it.
///
/// A gateway front door that receives, say, an Anthropic Messages body maps what it can to
/// the neutral fields, which every target understands, and keeps the rest here: fields the
/// neutral request does not model (`top_k`, `metadata`, context management, new settings),
/// or a field whose original form carries more than its neutral mapping (`cache_control`
/// on blocks, server tools). A target of `protocol` sets each of [`fields`](Self::fields)
/// in the top level of its body, last, replacing what the neutral fields would have sent,
/// and sends the [`headers`](Self::headers) it knows; targets of other protocols never see
/// them, so a current client's new field cannot make another provider answer 400.
/// [`ChatRequest::dropped_for`] says what a target of another protocol leaves out.
///
/// Honoured today by the Anthropic provider (protocol `anthropic`, headers
/// `anthropic-version` and `anthropic-beta`).
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Passthrough {
    /// The protocol whose targets receive it, named as
    /// [`Thinking::origin`](crate::types::Thinking::origin) names protocols (`anthropic`).
    pub protocol: String,
    /// Top-level body fields, set last and replacing the neutral mapping's value.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
    /// HTTP headers for the request, as (lowercase name, value); a provider sends only the
    /// names it knows and ignores the rest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// What the neutral fields lose, in words (`top_k`, `messages[0].content[1].cache_control`),
    /// for the records of attempts at targets of other protocols.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmodelled: Vec<String>,
}

impl Passthrough {
    /// Creates an empty passthrough for `protocol`.
    pub fn new(protocol: impl Into<String>) -> Passthrough {
        Passthrough {
            protocol: protocol.into(),
            ..Passthrough::default()
        }
    }

    /// Says whether there is nothing to pass.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.headers.is_empty()
    }
}

/// Conversation ids that steer routing and are never sent to a provider.
///
/// A [`BalancedClient`](crate::BalancedClient) with affinity keys its pin on one of them
/// (see [`AffinityKey`](crate::AffinityKey)). A gateway fills them from what it does not
/// forward: a session header, or OpenAI's `prompt_cache_key` and `user` fields, which an
/// Anthropic or Gemini target would refuse. A library caller talking to OpenAI may instead
/// put those fields in [`ChatRequest::extra`], where affinity reads them too.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoutingHints {
    /// The value of the route's session header (`affinity.keys = ["header:<name>"]`).
    pub session: Option<String>,
    /// OpenAI's `prompt_cache_key`.
    pub prompt_cache_key: Option<String>,
    /// OpenAI's `user`.
    pub user: Option<String>,
    /// Anthropic's `metadata.user_id`.
    pub metadata_user_id: Option<String>,
}

impl ChatRequest {
    /// Creates a request from a conversation.
    pub fn new(messages: Vec<Message>) -> ChatRequest {
        ChatRequest {
            messages,
            ..ChatRequest::default()
        }
    }

    /// Creates a request with a single user message.
    pub fn user(text: impl Into<String>) -> ChatRequest {
        ChatRequest::new(vec![Message::user(text)])
    }

    /// Sets the most tokens to generate.
    #[must_use]
    pub fn with_max_tokens(mut self, max_tokens: u32) -> ChatRequest {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Sets the sampling temperature.
    #[must_use]
    pub fn with_temperature(mut self, temperature: f32) -> ChatRequest {
        self.temperature = Some(temperature);
        self
    }

    /// Sets the nucleus sampling cut-off.
    #[must_use]
    pub fn with_top_p(mut self, top_p: f32) -> ChatRequest {
        self.top_p = Some(top_p);
        self
    }

    /// Adds a stop sequence.
    #[must_use]
    pub fn with_stop(mut self, stop: impl Into<String>) -> ChatRequest {
        self.stop.push(stop.into());
        self
    }

    /// Sets the sampling seed.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> ChatRequest {
        self.seed = Some(seed);
        self
    }

    /// Adds a tool the model may call.
    #[must_use]
    pub fn with_tool(mut self, tool: ToolSpec) -> ChatRequest {
        self.tools.push(tool);
        self
    }

    /// Sets whether and which tool the model must call.
    #[must_use]
    pub fn with_tool_choice(mut self, choice: ToolChoice) -> ChatRequest {
        self.tool_choice = Some(choice);
        self
    }

    /// Sets the shape of the answer.
    #[must_use]
    pub fn with_response_format(mut self, format: ResponseFormat) -> ChatRequest {
        self.response_format = Some(format);
        self
    }

    /// Sets the reasoning effort.
    #[must_use]
    pub fn with_reasoning_effort(mut self, effort: ReasoningEffort) -> ChatRequest {
        self.reasoning_effort = Some(effort);
        self
    }

    /// Sets JSON kept for targets of one protocol (see [`Passthrough`]).
    #[must_use]
    pub fn with_passthrough(mut self, passthrough: Passthrough) -> ChatRequest {
        self.passthrough = Some(passthrough);
        self
    }

    /// Returns the passthrough meant for targets of `protocol`, if there is one.
    pub fn passthrough_for(&self, protocol: &str) -> Option<&Passthrough> {
        self.passthrough
            .as_ref()
            .filter(|p| p.protocol == protocol && !p.is_empty())
    }

    /// Names what a target speaking `protocol` leaves out of this request: a passthrough's
    /// [`unmodelled`](Passthrough::unmodelled) list when it is for another protocol, and
    /// reasoning another protocol produced (its signature means nothing elsewhere, so
    /// providers drop it). Empty when nothing is lost.
    pub fn dropped_for(&self, protocol: &str) -> Vec<String> {
        let mut dropped = Vec::new();
        if let Some(p) = self.passthrough.as_ref().filter(|p| p.protocol != protocol) {
            dropped.extend(p.unmodelled.iter().cloned());
        }
        let mut origins: Vec<&str> = Vec::new();
        for part in self.messages.iter().flat_map(|m| &m.parts) {
            if let Part::Thinking(t) = part {
                if let Some(origin) = t.origin.as_deref().filter(|o| *o != protocol) {
                    if !origins.contains(&origin) {
                        origins.push(origin);
                    }
                }
            }
        }
        dropped.extend(origins.into_iter().map(|o| format!("thinking from {o}")));
        dropped
    }

    /// Sets one provider-specific top-level body field.
    #[must_use]
    pub fn with_extra(mut self, key: impl Into<String>, value: Value) -> ChatRequest {
        self.extra.insert(key.into(), value);
        self
    }

    /// Sets the session id prompt-cache affinity keys on (what a gateway reads from the
    /// route's session header); never sent to a provider.
    #[must_use]
    pub fn with_session(mut self, session: impl Into<String>) -> ChatRequest {
        self.routing.session = Some(session.into());
        self
    }

    /// Checks the request is one any provider could accept.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) when there are no
    /// messages, when a message has no parts, when a tool result answers a call no earlier
    /// assistant message made, when a tool choice names an undeclared tool, or when a
    /// parameter is out of range.
    pub fn validate(&self) -> Result<()> {
        if self.messages.is_empty() {
            return Err(Error::invalid_request(
                "the request has no messages",
                "add at least one message, e.g. `ChatRequest::user(\"hello\")`",
            ));
        }
        let mut calls: HashSet<&str> = HashSet::new();
        for (i, message) in self.messages.iter().enumerate() {
            if message.parts.is_empty() {
                return Err(Error::invalid_request(
                    format!("message {i} ({}) has no content", message.role.as_str()),
                    "give every message at least one part, or remove it",
                ));
            }
            for part in &message.parts {
                match part {
                    Part::ToolCall(call) => {
                        calls.insert(call.id.as_str());
                    }
                    Part::ToolResult(result) if !calls.contains(result.call_id.as_str()) => {
                        return Err(Error::invalid_request(
                            format!(
                                "message {i} is a tool result for call `{}`, but no earlier assistant message made that call",
                                result.call_id
                            ),
                            "include the assistant message with the tool call before its result, or fix the call id",
                        ));
                    }
                    _ => {}
                }
            }
            if message.role == Role::Tool
                && !message
                    .parts
                    .iter()
                    .any(|p| matches!(p, Part::ToolResult(_)))
            {
                return Err(Error::invalid_request(
                    format!("message {i} has role `tool` but holds no tool result"),
                    "build tool messages with `Message::tool_result(call_id, content)`",
                ));
            }
        }
        if let Some(ToolChoice::Tool(name)) = &self.tool_choice {
            if !self.tools.iter().any(|t| &t.name == name) {
                return Err(Error::invalid_request(
                    format!("tool choice names `{name}`, which is not among the request's tools"),
                    "add the tool with `with_tool` or choose one that is declared",
                ));
            }
        }
        if let Some(t) = self.temperature {
            if !(0.0..=2.0).contains(&t) || t.is_nan() {
                return Err(Error::invalid_request(
                    format!("temperature {t} is out of range"),
                    "use a temperature between 0.0 and 2.0",
                ));
            }
        }
        if let Some(p) = self.top_p {
            if !(0.0..=1.0).contains(&p) || p.is_nan() {
                return Err(Error::invalid_request(
                    format!("top_p {p} is out of range"),
                    "use a top_p between 0.0 and 1.0",
                ));
            }
        }
        if self.max_tokens == Some(0) {
            return Err(Error::invalid_request(
                "max_tokens is 0",
                "ask for at least one token, or leave max_tokens unset",
            ));
        }
        Ok(())
    }

    /// Returns the system messages' text joined by blank lines, or `None` if there are none.
    pub fn system_text(&self) -> Option<String> {
        let parts: Vec<String> = self
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(Message::text)
            .collect();
        if parts.is_empty() {
            None
        } else {
            Some(parts.join("\n\n"))
        }
    }

    /// Estimates the input tokens (about four bytes a token), for budgets and capability checks
    /// before the provider has counted.
    pub fn estimated_input_tokens(&self) -> u64 {
        // Images cost roughly a thousand tokens on most providers; a document or audio
        // part, roughly two thousand.
        self.estimate_tokens_with(|part| match part {
            Part::Image(_) => 1_000,
            Part::Document(_) | Part::Audio(_) => 2_000,
            _ => 0,
        })
    }

    /// Estimates the prompt's tokens as [`ChatRequest::estimated_input_tokens`] does for
    /// text, tool calls and tool schemas (about four bytes a token), counting each image,
    /// document or audio part as `media` says. A budget passes a per-provider upper bound.
    pub(crate) fn estimate_tokens_with(&self, mut media: impl FnMut(&Part) -> u64) -> u64 {
        let mut bytes = 0usize;
        let mut media_tokens = 0u64;
        for message in &self.messages {
            bytes += 4;
            for part in &message.parts {
                bytes += match part {
                    Part::Text { text } => text.len(),
                    Part::ToolCall(c) => c.name.len() + json_len(&c.arguments),
                    Part::ToolResult(r) => r.content.len(),
                    Part::Thinking(t) => t.text.len(),
                    Part::Image(_) | Part::Document(_) | Part::Audio(_) => {
                        media_tokens = media_tokens.saturating_add(media(part));
                        0
                    }
                };
            }
        }
        for tool in &self.tools {
            bytes += tool.name.len() + json_len(&tool.parameters);
        }
        (bytes as u64).div_ceil(4).saturating_add(media_tokens)
    }
}

/// The length of `value` written as compact JSON (as `value.to_string()` would write it),
/// counted without building the text: the estimate runs on every request a target with a
/// known context window checks, and tool schemas can be large.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // A `Value` always serialises, and this sink never fails.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_for_names_another_protocols_passthrough_and_reasoning() {
        let mut passthrough = Passthrough::new("anthropic");
        passthrough.fields.insert("top_k".into(), Value::from(5));
        passthrough.unmodelled.push("top_k".into());
        let thinking = Part::Thinking(super::super::message::Thinking {
            text: "hmm".into(),
            signature: Some("sig".into()),
            redacted: None,
            origin: Some("anthropic".into()),
        });
        let req = ChatRequest::new(vec![
            Message::user("q"),
            Message::new(Role::Assistant, vec![thinking, Part::text("a")]),
            Message::user("again"),
        ])
        .with_passthrough(passthrough);
        assert!(req.dropped_for("anthropic").is_empty());
        assert_eq!(
            req.dropped_for("openai"),
            vec!["top_k".to_owned(), "thinking from anthropic".to_owned()]
        );
        assert!(req.passthrough_for("anthropic").is_some());
        assert!(req.passthrough_for("openai").is_none());
    }

    #[test]
    fn json_len_counts_what_to_string_writes() {
        let value = serde_json::json!({
            "type": "object",
            "properties": {"q": {"type": "string", "description": "a \"quoted\" é ✓ \n line"}},
            "required": ["q"],
            "n": [1, 2.5, -3, null, true],
        });
        assert_eq!(json_len(&value), value.to_string().len());
        assert_eq!(json_len(&Value::Null), 4);
    }
    use crate::error::ErrorKind;
    use crate::types::message::ToolCall;

    #[test]
    fn empty_message_list_is_a_typed_error_with_a_fix() {
        let err = ChatRequest::new(vec![]).validate().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert!(err.fix().unwrap().contains("add at least one message"));
        assert!(!err.is_recoverable());
    }

    #[test]
    fn tool_result_without_matching_call_is_rejected() {
        let req = ChatRequest::new(vec![
            Message::user("hi"),
            Message::tool_result("call_9", "42"),
        ]);
        let err = req.validate().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert!(err.message().contains("call_9"), "{err}");
    }

    #[test]
    fn tool_result_after_its_call_is_accepted() {
        let call = ToolCall {
            id: "call_1".into(),
            name: "add".into(),
            arguments: serde_json::json!({"a": 1}),
            signature: None,
        };
        let req = ChatRequest::new(vec![
            Message::user("add"),
            Message::new(Role::Assistant, vec![Part::ToolCall(call)]),
            Message::tool_result("call_1", "2"),
        ]);
        req.validate().unwrap();
    }

    #[test]
    fn out_of_range_temperature_is_rejected() {
        let err = ChatRequest::user("x")
            .with_temperature(3.5)
            .validate()
            .unwrap_err();
        assert!(err.message().contains("temperature"));
    }

    #[test]
    fn tool_choice_must_name_a_declared_tool() {
        let err = ChatRequest::user("x")
            .with_tool_choice(ToolChoice::Tool("missing".into()))
            .validate()
            .unwrap_err();
        assert!(err.message().contains("missing"));
    }

    #[test]
    fn request_round_trips_through_json() {
        let req = ChatRequest::user("hi")
            .with_max_tokens(5)
            .with_tool(ToolSpec::new(
                "f",
                "does f",
                serde_json::json!({"type": "object"}),
            ))
            .with_tool_choice(ToolChoice::Tool("f".into()));
        let json = serde_json::to_string(&req).unwrap();
        let back: ChatRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, req);
    }
}
