//! Serde mirror of the Gemini API's JSON (camelCase), request and response side.
//!
//! Input structs are tolerant (every field defaulted, unknown fields ignored); output structs
//! skip absent fields so no `null` reaches the API.

use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---- shared: contents and parts ----------------------------------------------------------

/// One turn: a role (`user` or `model`; none for `systemInstruction`) and its parts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Content {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) role: Option<String>,
    #[serde(default)]
    pub(crate) parts: Vec<WirePart>,
}

/// One part of a content. Gemini's `Part` is a union; exactly one data field is set, plus
/// the optional `thought` flag and `thoughtSignature`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WirePart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) thought: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) thought_signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) inline_data: Option<Blob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) file_data: Option<FileData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) function_call: Option<FunctionCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) function_response: Option<FunctionResponse>,
}

impl WirePart {
    /// A text part.
    pub(crate) fn text(text: impl Into<String>) -> WirePart {
        WirePart {
            text: Some(text.into()),
            ..WirePart::default()
        }
    }

    /// Says whether the part is a thought summary.
    pub(crate) fn is_thought(&self) -> bool {
        self.thought == Some(true)
    }
}

/// Inline bytes, base64 on the wire.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Blob {
    #[serde(default)]
    pub(crate) mime_type: String,
    #[serde(default)]
    pub(crate) data: String,
}

/// Content the API fetches itself (a Files API URI, `gs://…` or `https://…`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FileData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mime_type: Option<String>,
    #[serde(default)]
    pub(crate) file_uri: String,
}

/// A call the model asks for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FunctionCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) args: Option<Value>,
}

/// The result of a call, sent back in a `user` content.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FunctionResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) response: Value,
}

// ---- request -----------------------------------------------------------------------------

/// The body of `generateContent` and `streamGenerateContent`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateContentRequest {
    pub(crate) contents: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) system_instruction: Option<Content>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tools: Vec<Tool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tool_config: Option<ToolConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) generation_config: Option<GenerationConfig>,
}

/// A tool: here only function declarations.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Tool {
    pub(crate) function_declarations: Vec<FunctionDeclaration>,
}

/// One function the model may call; its parameters as plain JSON Schema.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FunctionDeclaration {
    pub(crate) name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) parameters_json_schema: Option<Value>,
}

/// How the model may use the declared functions.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ToolConfig {
    pub(crate) function_calling_config: FunctionCallingConfig,
}

/// `AUTO`, `NONE` or `ANY`, optionally limited to some functions.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FunctionCallingConfig {
    pub(crate) mode: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) allowed_function_names: Vec<String>,
}

/// Sampling, length, output-shape and thinking settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) top_p: Option<f32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) stop_sequences: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) response_json_schema: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) thinking_config: Option<ThinkingConfig>,
}

/// A thinking budget and whether to return thought summaries.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ThinkingConfig {
    pub(crate) thinking_budget: u32,
    pub(crate) include_thoughts: bool,
}

// ---- response ----------------------------------------------------------------------------

/// A `generateContent` answer, and each chunk of a stream.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateContentResponse {
    #[serde(default)]
    pub(crate) candidates: Vec<Candidate>,
    #[serde(default)]
    pub(crate) prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    pub(crate) usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    pub(crate) model_version: Option<String>,
    #[serde(default)]
    pub(crate) response_id: Option<String>,
}

/// One candidate answer (we ask for one).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Candidate {
    #[serde(default)]
    pub(crate) content: Option<Content>,
    #[serde(default)]
    pub(crate) finish_reason: Option<String>,
}

/// Why the prompt itself was refused, when it was.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PromptFeedback {
    #[serde(default)]
    pub(crate) block_reason: Option<String>,
}

/// Token counts. `promptTokenCount` includes cached tokens; thoughts are counted apart from
/// candidates.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsageMetadata {
    #[serde(default)]
    pub(crate) prompt_token_count: Option<u64>,
    #[serde(default)]
    pub(crate) candidates_token_count: Option<u64>,
    #[serde(default)]
    pub(crate) total_token_count: Option<u64>,
    #[serde(default)]
    pub(crate) cached_content_token_count: Option<u64>,
    #[serde(default)]
    pub(crate) thoughts_token_count: Option<u64>,
    #[serde(default)]
    pub(crate) tool_use_prompt_token_count: Option<u64>,
}

// ---- embeddings --------------------------------------------------------------------------

/// The body of `embedContent`, and one entry of `batchEmbedContents`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EmbedContentRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) model: Option<String>,
    pub(crate) content: Content,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) output_dimensionality: Option<u32>,
}

/// The body of `batchEmbedContents`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct BatchEmbedContentsRequest {
    pub(crate) requests: Vec<EmbedContentRequest>,
}

/// One vector.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ContentEmbedding {
    #[serde(default)]
    pub(crate) values: Vec<f32>,
}

/// The answer of `embedContent`.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct EmbedContentResponse {
    #[serde(default)]
    pub(crate) embedding: ContentEmbedding,
}

/// The answer of `batchEmbedContents`.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct BatchEmbedContentsResponse {
    #[serde(default)]
    pub(crate) embeddings: Vec<ContentEmbedding>,
}

// ---- errors ------------------------------------------------------------------------------

/// `{"error": {...}}`, Google's standard error envelope.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ErrorEnvelope {
    #[serde(default)]
    pub(crate) error: ErrorStatus,
}

/// A `google.rpc.Status`: HTTP code, message, canonical status name and typed details.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ErrorStatus {
    #[serde(default)]
    pub(crate) code: Option<i64>,
    #[serde(default)]
    pub(crate) message: Option<String>,
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) details: Vec<ErrorDetail>,
}

/// One entry of `details`; only the fields we read (`ErrorInfo.reason`,
/// `RetryInfo.retryDelay`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorDetail {
    #[serde(default, rename = "@type")]
    pub(crate) type_url: Option<String>,
    #[serde(default)]
    pub(crate) reason: Option<String>,
    #[serde(default)]
    pub(crate) retry_delay: Option<String>,
}
