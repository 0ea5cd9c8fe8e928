//! The tools' inputs: one struct per tool, with serde for parsing and schemars for the
//! JSON schema each tool advertises. Arguments the schema does not name are rejected before
//! parsing (see `tools::check_known`), so a misspelt argument is an error rather than a
//! silently ignored one.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// A message of a conversation.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct MessageParam {
    /// Who wrote it.
    pub(crate) role: RoleParam,
    /// Its text (for `tool` messages, the tool's result).
    #[serde(default)]
    pub(crate) content: String,
    /// For `tool` messages: the id of the call this answers.
    #[serde(default)]
    pub(crate) tool_call_id: Option<String>,
    /// For `assistant` messages: the tool calls it made (as returned by the `tools` tool).
    #[serde(default)]
    pub(crate) tool_calls: Vec<ToolCallParam>,
}

/// The author of a message.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RoleParam {
    /// Instructions for the model.
    System,
    /// The person asking.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
}

/// A tool call an assistant message made.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ToolCallParam {
    /// The call's id.
    pub(crate) id: String,
    /// The tool's name.
    pub(crate) name: String,
    /// The arguments object.
    #[serde(default)]
    pub(crate) arguments: Value,
}

/// What every generating tool takes: where to send it and what to say.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub(crate) struct Conversation {
    /// The model as `provider:model` (e.g. `openai:gpt-4o-mini`), or a route alias from the
    /// config. Give this or `route`; without either, the server's default model is used.
    #[serde(default)]
    pub(crate) model: Option<String>,
    /// A route alias from the server's config (its targets are tried in order).
    #[serde(default)]
    pub(crate) route: Option<String>,
    /// A single user message; give this or `messages`.
    #[serde(default)]
    pub(crate) prompt: Option<String>,
    /// The conversation; give this or `prompt`.
    #[serde(default)]
    pub(crate) messages: Option<Vec<MessageParam>>,
    /// A system prompt, put before the conversation.
    #[serde(default)]
    pub(crate) system: Option<String>,
    /// The most tokens to generate.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub(crate) max_tokens: Option<u32>,
    /// Sampling temperature, 0 to 2.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 2.0))]
    pub(crate) temperature: Option<f32>,
}

/// Input of `chat`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ChatParams {
    #[serde(flatten)]
    pub(crate) conversation: Conversation,
}

/// Input of `json`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct JsonParams {
    #[serde(flatten)]
    pub(crate) conversation: Conversation,
    /// The JSON Schema the answer must match.
    pub(crate) schema: serde_json::Map<String, Value>,
    /// How many times to re-ask the model, quoting the validation errors, when its answer
    /// does not match (0 to 5, default 2).
    #[serde(default)]
    #[schemars(range(max = 5))]
    pub(crate) max_retries: Option<u32>,
}

/// Input of `embed`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct EmbedParams {
    /// The embeddings model as `provider:model`, or a route alias.
    #[serde(default)]
    pub(crate) model: Option<String>,
    /// A route alias from the server's config.
    #[serde(default)]
    pub(crate) route: Option<String>,
    /// The texts to embed: one string or a list.
    pub(crate) input: EmbedInput,
    /// Asks models that can shorten their vectors for this many dimensions.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub(crate) dimensions: Option<u32>,
}

/// One text or several.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum EmbedInput {
    /// One text.
    One(String),
    /// Several texts, one vector each.
    Many(Vec<String>),
}

/// A function the model may call.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ToolParam {
    /// The function's name.
    pub(crate) name: String,
    /// What it does; the model reads this to decide when to call it.
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// A JSON Schema for the arguments object.
    #[serde(default)]
    pub(crate) parameters: Option<Value>,
}

/// Input of `tools`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ToolsParams {
    #[serde(flatten)]
    pub(crate) conversation: Conversation,
    /// The functions the model may call.
    pub(crate) tools: Vec<ToolParam>,
    /// `auto` (default), `required`, `none`, or the name of the one tool to call.
    #[serde(default)]
    pub(crate) tool_choice: Option<String>,
}

/// Input of `provider_check`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub(crate) struct ProviderCheckParams {
    /// Only these providers; default: the config's providers, else every known one.
    #[serde(default)]
    pub(crate) providers: Vec<String>,
}

/// Input of `cost_estimate`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct CostEstimateParams {
    #[serde(flatten)]
    pub(crate) conversation: Conversation,
}

/// Input of `models`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub(crate) struct ModelsParams {
    /// Only these providers' models.
    #[serde(default)]
    pub(crate) providers: Vec<String>,
}
