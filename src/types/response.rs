//! [`ChatResponse`] and what it carries: [`Usage`], [`FinishReason`], [`Attempt`]s.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::capability::Capability;
use super::message::{Part, Thinking, ToolCall};
use crate::error::{Error, ErrorKind};

/// Token counts for one call, normalised across providers.
///
/// `input_tokens` counts every prompt token, cached or not (OpenAI's convention): for
/// Anthropic, whose `input_tokens` excludes cache reads and writes, the protocol adds them
/// back. `cache_read_tokens` and `cache_write_tokens` are the parts of `input_tokens` that
/// were read from or written to the provider's prompt cache; `reasoning_tokens` is the part
/// of `output_tokens` spent on hidden reasoning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens, including cached ones.
    pub input_tokens: u64,
    /// Generated tokens, including reasoning.
    pub output_tokens: u64,
    /// Input plus output, as the provider reported it (or computed).
    pub total_tokens: u64,
    /// Prompt tokens served from the provider's cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_tokens: Option<u64>,
    /// Prompt tokens written to the provider's cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_tokens: Option<u64>,
    /// Output tokens spent on reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    /// Creates usage from input and output counts.
    pub fn new(input_tokens: u64, output_tokens: u64) -> Usage {
        Usage {
            input_tokens,
            output_tokens,
            total_tokens: input_tokens.saturating_add(output_tokens),
            ..Usage::default()
        }
    }

    /// Folds a later report of the same answer into this one.
    ///
    /// Every report is the provider's running total for the whole answer so far, so the later
    /// report's counts replace these, even when smaller: providers revise counts in their
    /// final report (Gemini's last stream chunk may give a smaller `promptTokenCount` than the
    /// chunks before it; Anthropic's `message_delta` carries the final `output_tokens`).
    /// Optional details take the newest value that is present. The total is never less than
    /// input plus output.
    pub fn merge(&mut self, later: &Usage) {
        self.input_tokens = later.input_tokens;
        self.output_tokens = later.output_tokens;
        if later.cache_read_tokens.is_some() {
            self.cache_read_tokens = later.cache_read_tokens;
        }
        if later.cache_write_tokens.is_some() {
            self.cache_write_tokens = later.cache_write_tokens;
        }
        if later.reasoning_tokens.is_some() {
            self.reasoning_tokens = later.reasoning_tokens;
        }
        self.total_tokens = later
            .total_tokens
            .max(self.input_tokens.saturating_add(self.output_tokens));
    }

    /// Adds another call's usage to this one (for totals across calls).
    pub fn add(&mut self, other: &Usage) {
        fn add_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
            match (a, b) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
            }
        }
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.total_tokens = self.total_tokens.saturating_add(other.total_tokens);
        self.cache_read_tokens = add_opt(self.cache_read_tokens, other.cache_read_tokens);
        self.cache_write_tokens = add_opt(self.cache_write_tokens, other.cache_write_tokens);
        self.reasoning_tokens = add_opt(self.reasoning_tokens, other.reasoning_tokens);
    }
}

/// Why generation stopped, normalised.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishKind {
    /// The model finished its answer or hit a stop sequence.
    #[default]
    Stop,
    /// The token limit cut the answer short.
    Length,
    /// The model wants tool calls run.
    ToolCalls,
    /// A safety or recitation filter stopped the answer.
    ContentFilter,
    /// The model refused.
    Refusal,
    /// Anything else the provider reported.
    Other,
}

impl FinishKind {
    /// Returns the normalised name (`stop`, `length`, `tool_calls`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            FinishKind::Stop => "stop",
            FinishKind::Length => "length",
            FinishKind::ToolCalls => "tool_calls",
            FinishKind::ContentFilter => "content_filter",
            FinishKind::Refusal => "refusal",
            FinishKind::Other => "other",
        }
    }
}

/// Why generation stopped: the normalised kind plus the provider's own word for it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FinishReason {
    /// The normalised kind.
    pub kind: FinishKind,
    /// The provider's value (`end_turn`, `STOP`, `tool_calls`, …), when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

impl FinishReason {
    /// Creates a finish reason from a kind and the provider's raw value.
    pub fn new(kind: FinishKind, raw: impl Into<String>) -> FinishReason {
        FinishReason {
            kind,
            raw: Some(raw.into()),
        }
    }

    /// Creates a finish reason that no provider named (e.g. from a [`FunctionClient`](crate::FunctionClient)).
    pub fn of(kind: FinishKind) -> FinishReason {
        FinishReason { kind, raw: None }
    }
}

/// How one attempt at one target ended.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It answered.
    Success,
    /// It failed; see the attempt's error kind.
    Failed,
    /// It was not called (an open breaker, a missing capability).
    Skipped,
}

impl Outcome {
    /// Returns the lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One attempt at one target during a call: who was asked, how it went, how long it took.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// The provider asked.
    pub provider: String,
    /// The model asked for.
    pub model: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The error kind, for failures and skips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    /// The HTTP status, when the provider answered with an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The error's message, for failures and skips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The capability the target lacked, when it was skipped for that reason (error kind
    /// [`ErrorKind::Unsupported`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<Capability>,
    /// Wall time of the attempt.
    #[serde(with = "duration_ms")]
    pub latency: Duration,
}

impl Attempt {
    /// Records a successful attempt.
    pub fn success(
        provider: impl Into<String>,
        model: impl Into<String>,
        latency: Duration,
    ) -> Attempt {
        Attempt {
            provider: provider.into(),
            model: model.into(),
            outcome: Outcome::Success,
            error_kind: None,
            status: None,
            message: None,
            missing: None,
            latency,
        }
    }

    /// Records a failed attempt from its error; provider and model are the target's own.
    pub fn failure(
        provider: impl Into<String>,
        model: impl Into<String>,
        error: &Error,
        latency: Duration,
    ) -> Attempt {
        Attempt {
            provider: provider.into(),
            model: model.into(),
            outcome: Outcome::Failed,
            error_kind: Some(error.kind()),
            status: error.status(),
            message: Some(error.message().to_owned()),
            missing: error.missing_capability(),
            latency,
        }
    }

    /// Records a target that was not called, with the reason.
    pub fn skipped(
        provider: impl Into<String>,
        model: impl Into<String>,
        error: &Error,
    ) -> Attempt {
        Attempt {
            outcome: Outcome::Skipped,
            ..Attempt::failure(provider, model, error, Duration::ZERO)
        }
    }
}

/// A complete answer from a model.
///
/// Streams fold into the same value through the one accumulator
/// ([`StreamAccumulator`](crate::StreamAccumulator)).
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The provider that answered (`openai`, `anthropic`, `function`, …).
    pub provider: String,
    /// The model that was asked for.
    pub model: String,
    /// The model that served, as the provider reported it (e.g. a dated snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_model: Option<String>,
    /// The answer's content: text, reasoning, tool calls.
    pub parts: Vec<Part>,
    /// Token counts.
    pub usage: Usage,
    /// Says the provider's final token counts never arrived, so [`usage`](Self::usage) may
    /// undercount: a partial answer whose stream broke before any usage report, or a Gemini
    /// stream (whose protocol has no end marker) that ended without usage on its last
    /// chunk. A [`Budget`](crate::Budget) keeps such a call's whole reservation as spent
    /// rather than charge what was seen.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub usage_unknown: bool,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
    /// The provider's id for this response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
    /// Switchboard's own id for the call, unique per call.
    pub request_id: String,
    /// Wall time from sending to the complete answer.
    #[serde(with = "duration_ms")]
    pub latency: Duration,
    /// Every attempt the call made, in order, ending with the one that answered.
    pub attempts: Vec<Attempt>,
    /// The provider's raw JSON, when the client was asked to keep it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<Value>,
}

impl ChatResponse {
    /// Creates a response holding one text part and a `stop` finish reason; the client fills
    /// in provider, model, ids and timings.
    ///
    /// # Examples
    /// ```
    /// let response = switchboard::ChatResponse::from_text("hi");
    /// assert_eq!(response.text(), "hi");
    /// ```
    pub fn from_text(text: impl Into<String>) -> ChatResponse {
        ChatResponse::from_parts(vec![Part::text(text)])
    }

    /// Creates a response from content parts; a tool call makes the finish reason `tool_calls`.
    pub fn from_parts(parts: Vec<Part>) -> ChatResponse {
        let kind = if parts.iter().any(|p| matches!(p, Part::ToolCall(_))) {
            FinishKind::ToolCalls
        } else {
            FinishKind::Stop
        };
        ChatResponse {
            parts,
            finish_reason: FinishReason::of(kind),
            ..ChatResponse::default()
        }
    }

    /// Sets the usage.
    #[must_use]
    pub fn with_usage(mut self, usage: Usage) -> ChatResponse {
        self.usage = usage;
        self
    }

    /// Sets the finish reason.
    #[must_use]
    pub fn with_finish_reason(mut self, reason: FinishReason) -> ChatResponse {
        self.finish_reason = reason;
        self
    }

    /// Returns the text parts concatenated.
    pub fn text(&self) -> String {
        self.parts.iter().filter_map(Part::as_text).collect()
    }

    /// Returns the tool calls, in order.
    pub fn tool_calls(&self) -> Vec<&ToolCall> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::ToolCall(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    /// Returns the reasoning parts, in order.
    pub fn thinking(&self) -> Vec<&Thinking> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Thinking(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    /// Returns every attempt the call made, ending with the one that answered.
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// Returns the model that served if the provider said, else the one asked for.
    pub fn model_served(&self) -> &str {
        self.served_model.as_deref().unwrap_or(&self.model)
    }

    /// Returns the answer as an assistant message, ready to append to the conversation.
    pub fn to_message(&self) -> super::Message {
        super::Message::new(super::Role::Assistant, self.parts.clone())
    }
}

pub(crate) mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        if !ms.is_finite() || ms < 0.0 {
            return Err(serde::de::Error::custom(
                "latency must be a non-negative number of ms",
            ));
        }
        Duration::try_from_secs_f64(ms / 1000.0).map_err(|_| {
            serde::de::Error::custom("latency is too large to be a duration (ms past 1.8e22)")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_takes_the_later_counts_and_the_newest_details() {
        let mut u = Usage {
            reasoning_tokens: Some(2),
            cache_read_tokens: Some(4),
            ..Usage::new(15, 3)
        };
        // A final report may revise a count downwards; it still wins.
        u.merge(&Usage {
            cache_read_tokens: Some(1),
            ..Usage::new(13, 8)
        });
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.total_tokens),
            (13, 8, 21)
        );
        assert_eq!(
            (u.cache_read_tokens, u.reasoning_tokens),
            (Some(1), Some(2))
        );
        u.merge(&Usage {
            total_tokens: 5,
            ..Usage::new(13, 0)
        });
        assert_eq!((u.output_tokens, u.total_tokens), (0, 13));
    }

    #[test]
    fn from_parts_with_tool_call_finishes_with_tool_calls() {
        let r = ChatResponse::from_parts(vec![Part::ToolCall(ToolCall {
            id: "1".into(),
            name: "f".into(),
            arguments: Value::Null,
            signature: None,
        })]);
        assert_eq!(r.finish_reason.kind, FinishKind::ToolCalls);
        assert_eq!(r.tool_calls().len(), 1);
    }
}
