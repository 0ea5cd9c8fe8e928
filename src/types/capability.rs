//! [`Capabilities`]: what a client's target can accept, so a fallback chain can skip a
//! target that could not serve a request instead of sending it and waiting for a 400.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::message::Part;
use super::request::{ChatRequest, ResponseFormat};

/// One thing a request may use that not every target accepts.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Tool (function) declarations, or tool calls and results in the conversation.
    Tools,
    /// A JSON schema the answer must follow ([`ResponseFormat::JsonSchema`]).
    JsonSchema,
    /// Image input.
    Images,
    /// Document (PDF) input.
    Documents,
    /// Audio input.
    Audio,
    /// A prompt of this size: the estimated input tokens fit the context window.
    ContextWindow,
    /// A final assistant message that the model continues (a prefill), which stream
    /// continuation sends.
    Prefill,
}

impl Capability {
    /// Returns a short `snake_case` name, stable for logs and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Tools => "tools",
            Capability::JsonSchema => "json_schema",
            Capability::Images => "images",
            Capability::Documents => "documents",
            Capability::Audio => "audio",
            Capability::ContextWindow => "context_window",
            Capability::Prefill => "prefill",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a target cannot serve a request: the capability it lacks and a sentence saying so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingCapability {
    /// The capability the request needs and the target lacks.
    pub capability: Capability,
    /// What exactly is missing, e.g. "the request has 2 images; this target takes no image input".
    pub detail: String,
}

/// What a client's target can accept.
///
/// Providers fill it from what their protocol and vendor profile accept, and the context
/// window from the price table's `context_window` column; wrappers forward their inner
/// client's; a [`FunctionClient`](crate::FunctionClient) takes one from its builder. A value
/// nobody filled in is [`Capabilities::permissive`], so a client that says nothing is never
/// skipped. A [`FallbackClient`](crate::FallbackClient) reads it to skip targets that could
/// not serve a request.
///
/// # Examples
/// ```
/// use switchboard::{Capabilities, Capability, ChatRequest, ToolSpec};
///
/// let text_only = Capabilities::permissive().with_tools(false);
/// let req = ChatRequest::user("hi").with_tool(ToolSpec::new("f", "does f", serde_json::json!({})));
/// assert_eq!(text_only.check(&req).unwrap_err().capability, Capability::Tools);
/// assert!(Capabilities::permissive().check(&req).is_ok());
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Capabilities {
    /// Accepts tool declarations and tool calls and results in the conversation.
    pub tools: bool,
    /// Serves a [`ResponseFormat::JsonSchema`] answer (natively or emulated).
    pub json_schema: bool,
    /// Accepts image input.
    pub images: bool,
    /// Accepts document (PDF) input.
    pub documents: bool,
    /// Accepts audio input.
    pub audio: bool,
    /// The context window in tokens, when known.
    pub context_window: Option<u64>,
    /// Continues a final assistant message instead of starting a new turn.
    pub prefill: bool,
}

impl Default for Capabilities {
    /// [`Capabilities::permissive`].
    fn default() -> Capabilities {
        Capabilities::permissive()
    }
}

impl Capabilities {
    /// Accepts everything, with no known context window: what a client that does not say
    /// otherwise reports, so it is never skipped.
    pub const fn permissive() -> Capabilities {
        Capabilities {
            tools: true,
            json_schema: true,
            images: true,
            documents: true,
            audio: true,
            context_window: None,
            prefill: true,
        }
    }

    /// Sets whether tools are accepted.
    #[must_use]
    pub const fn with_tools(mut self, yes: bool) -> Capabilities {
        self.tools = yes;
        self
    }

    /// Sets whether a JSON schema answer can be served.
    #[must_use]
    pub const fn with_json_schema(mut self, yes: bool) -> Capabilities {
        self.json_schema = yes;
        self
    }

    /// Sets whether image input is accepted.
    #[must_use]
    pub const fn with_images(mut self, yes: bool) -> Capabilities {
        self.images = yes;
        self
    }

    /// Sets whether document input is accepted.
    #[must_use]
    pub const fn with_documents(mut self, yes: bool) -> Capabilities {
        self.documents = yes;
        self
    }

    /// Sets whether audio input is accepted.
    #[must_use]
    pub const fn with_audio(mut self, yes: bool) -> Capabilities {
        self.audio = yes;
        self
    }

    /// Sets the context window in tokens (`None`: unknown, never checked).
    #[must_use]
    pub const fn with_context_window(mut self, tokens: Option<u64>) -> Capabilities {
        self.context_window = tokens;
        self
    }

    /// Sets whether a final assistant message is continued (a prefill).
    #[must_use]
    pub const fn with_prefill(mut self, yes: bool) -> Capabilities {
        self.prefill = yes;
        self
    }

    /// Returns what either of two targets accepts: the capabilities of "one of these", as a
    /// chain over several targets reports them (the larger context window; unknown wins,
    /// since it is never checked).
    #[must_use]
    pub fn union(self, other: Capabilities) -> Capabilities {
        Capabilities {
            tools: self.tools || other.tools,
            json_schema: self.json_schema || other.json_schema,
            images: self.images || other.images,
            documents: self.documents || other.documents,
            audio: self.audio || other.audio,
            context_window: match (self.context_window, other.context_window) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            },
            prefill: self.prefill || other.prefill,
        }
    }

    /// Says whether a target with these capabilities can serve `req`.
    ///
    /// # Errors
    /// The first [`MissingCapability`] capability, checked in the order tools, JSON schema, images,
    /// documents, audio, context window. The context window is compared with
    /// [`ChatRequest::estimated_input_tokens`], a rough estimate, so only a prompt that is
    /// clearly too long is refused.
    pub fn check(&self, req: &ChatRequest) -> Result<(), MissingCapability> {
        let mut tools = !req.tools.is_empty();
        let (mut images, mut documents, mut audio) = (0, 0, 0);
        for part in req.messages.iter().flat_map(|m| &m.parts) {
            match part {
                Part::ToolCall(_) | Part::ToolResult(_) => tools = true,
                Part::Image(_) => images += 1,
                Part::Document(_) => documents += 1,
                Part::Audio(_) => audio += 1,
                _ => {}
            }
        }
        let missing = |capability, detail: String| Err(MissingCapability { capability, detail });
        if tools && !self.tools {
            return missing(
                Capability::Tools,
                "the request uses tools; this target takes no tools".to_owned(),
            );
        }
        if matches!(req.response_format, Some(ResponseFormat::JsonSchema { .. }))
            && !self.json_schema
        {
            return missing(
                Capability::JsonSchema,
                "the request asks for a JSON schema answer; this target cannot serve one"
                    .to_owned(),
            );
        }
        for (count, accepted, capability, noun) in [
            (images, self.images, Capability::Images, "image"),
            (documents, self.documents, Capability::Documents, "document"),
            (audio, self.audio, Capability::Audio, "audio"),
        ] {
            if count > 0 && !accepted {
                let plural = if count == 1 { "part" } else { "parts" };
                return missing(
                    capability,
                    format!(
                        "the request has {count} {noun} {plural}; this target takes no {noun} input"
                    ),
                );
            }
        }
        if let Some(window) = self.context_window {
            let estimate = req.estimated_input_tokens();
            if estimate > window {
                return missing(
                    Capability::ContextWindow,
                    format!(
                        "the prompt is about {estimate} tokens; this target's context window is {window}"
                    ),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Media, Message, ToolSpec};

    fn with_image() -> ChatRequest {
        ChatRequest::new(vec![
            Message::user("what is this?").with_part(Part::Image(Media::bytes("image/png", [1u8])))
        ])
    }

    #[test]
    fn permissive_accepts_everything() {
        let req = with_image()
            .with_tool(ToolSpec::new("f", "f", serde_json::json!({})))
            .with_response_format(ResponseFormat::JsonSchema {
                name: "x".into(),
                schema: serde_json::json!({}),
                strict: true,
            });
        assert_eq!(Capabilities::permissive().check(&req), Ok(()));
    }

    #[test]
    fn each_missing_capability_is_named() {
        let caps = Capabilities::permissive();
        let img = caps.with_images(false).check(&with_image()).unwrap_err();
        assert_eq!(img.capability, Capability::Images);
        assert!(img.detail.contains("1 image part"), "{}", img.detail);

        let doc =
            ChatRequest::new(vec![Message::user("read")
                .with_part(Part::Document(Media::bytes("application/pdf", [1u8])))]);
        let err = caps.with_documents(false).check(&doc).unwrap_err();
        assert_eq!(err.capability, Capability::Documents);

        let audio = ChatRequest::new(vec![
            Message::user("hear").with_part(Part::Audio(Media::bytes("audio/wav", [1u8])))
        ]);
        let err = caps.with_audio(false).check(&audio).unwrap_err();
        assert_eq!(err.capability, Capability::Audio);

        let schema = ChatRequest::user("x").with_response_format(ResponseFormat::JsonSchema {
            name: "x".into(),
            schema: serde_json::json!({}),
            strict: false,
        });
        let err = caps.with_json_schema(false).check(&schema).unwrap_err();
        assert_eq!(err.capability, Capability::JsonSchema);
        // Plain JSON mode is not a schema.
        let json = ChatRequest::user("x").with_response_format(ResponseFormat::Json);
        assert!(caps.with_json_schema(false).check(&json).is_ok());
    }

    #[test]
    fn tool_history_needs_tools_too() {
        let call = crate::types::ToolCall {
            id: "c1".into(),
            name: "f".into(),
            arguments: serde_json::json!({}),
            signature: None,
        };
        let req = ChatRequest::new(vec![
            Message::user("x"),
            Message::new(crate::types::Role::Assistant, vec![Part::ToolCall(call)]),
            Message::tool_result("c1", "ok"),
        ]);
        let err = Capabilities::permissive()
            .with_tools(false)
            .check(&req)
            .unwrap_err();
        assert_eq!(err.capability, Capability::Tools);
    }

    #[test]
    fn a_prompt_beyond_the_window_is_refused() {
        let req = ChatRequest::user("x".repeat(4_000));
        let small = Capabilities::permissive().with_context_window(Some(500));
        let err = small.check(&req).unwrap_err();
        assert_eq!(err.capability, Capability::ContextWindow);
        assert!(err.detail.contains("500"), "{}", err.detail);
        let big = Capabilities::permissive().with_context_window(Some(5_000));
        assert!(big.check(&req).is_ok());
    }

    #[test]
    fn union_accepts_what_either_accepts() {
        let a = Capabilities::permissive()
            .with_audio(false)
            .with_context_window(Some(100));
        let b = Capabilities::permissive()
            .with_tools(false)
            .with_context_window(Some(200));
        let u = a.union(b);
        assert!(u.audio && u.tools);
        assert_eq!(u.context_window, Some(200));
        assert_eq!(a.union(Capabilities::permissive()).context_window, None);
    }
}
