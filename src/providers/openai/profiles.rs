//! OpenAI-compatible vendors as data: one [`Profile`] row per vendor, no per-vendor code.
//!
//! A profile says where the vendor lives (default base URL, environment variables), whether
//! it needs a key, and the few places its API differs from OpenAI's ([`Quirks`]). Adding a
//! vendor means adding one row to [`profiles`]; the protocol code never names a vendor.
//!
//! Each `NOTE:` below links the vendor documentation that proves the quirk.

use crate::types::Capabilities;

/// Which body field carries the output-token limit.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaxTokensField {
    /// `max_tokens`: the original field, still what most compatible servers read.
    MaxTokens,
    /// `max_completion_tokens`: OpenAI's current field (required by its reasoning models).
    MaxCompletionTokens,
}

impl MaxTokensField {
    /// Returns the JSON field name.
    pub fn as_str(self) -> &'static str {
        match self {
            MaxTokensField::MaxTokens => "max_tokens",
            MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
        }
    }
}

/// The ways one vendor's Chat Completions API differs from OpenAI's.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quirks {
    /// Sends `stream_options: {"include_usage": true}` on streams so the last chunk carries
    /// token counts. Off for vendors that reject the field or report usage without it.
    pub stream_usage_option: bool,
    /// The field the request's `max_tokens` goes into.
    pub max_tokens_field: MaxTokensField,
    /// Accepts `response_format: {"type": "json_schema", ...}`. Without it a schema request
    /// becomes `json_object` plus a system instruction that carries the schema.
    pub json_schema: bool,
    /// Accepts the top-level `reasoning_effort` field; without it the effort is not sent.
    pub reasoning_effort: bool,
    /// The field the sampling seed goes into (`seed`, or Mistral's `random_seed`).
    pub seed_field: &'static str,
}

impl Quirks {
    /// OpenAI's own behaviour: every feature, `max_completion_tokens`.
    pub const OPENAI: Quirks = Quirks {
        stream_usage_option: true,
        max_tokens_field: MaxTokensField::MaxCompletionTokens,
        json_schema: true,
        reasoning_effort: true,
        seed_field: "seed",
    };

    /// What a typical compatible server accepts: `max_tokens`, usage on request, schemas,
    /// no reasoning effort.
    pub const COMPATIBLE: Quirks = Quirks {
        stream_usage_option: true,
        max_tokens_field: MaxTokensField::MaxTokens,
        json_schema: true,
        reasoning_effort: false,
        seed_field: "seed",
    };
}

/// Where requests go, given the base URL.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UrlStyle {
    /// `{base_url}/chat/completions` and `{base_url}/embeddings`.
    Plain,
    /// Azure OpenAI's deployment routes: the base URL is the resource endpoint and the model
    /// is the deployment name, giving
    /// `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version={version}`
    /// (and `/embeddings`). See
    /// <https://learn.microsoft.com/azure/ai-foundry/openai/reference#chat-completions>.
    AzureDeployment,
}

/// How the API key is sent.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthStyle {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// Azure's `api-key: <key>` header (Entra ID tokens still go as bearer tokens).
    AzureApiKey,
}

/// One OpenAI-compatible vendor: name, endpoints, key handling and quirks.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Profile {
    /// The provider name used in `provider:model` references, responses and errors.
    pub name: &'static str,
    /// The default base URL, including the API version path (e.g. `https://api.x.ai/v1`);
    /// `None` when there is no sensible default.
    pub base_url: Option<&'static str>,
    /// Environment variables that may hold the key, in order of preference.
    pub key_env: &'static [&'static str],
    /// Environment variables that may hold the base URL, in order of preference.
    pub base_url_env: &'static [&'static str],
    /// Whether a request without a key is refused at build time.
    pub key_required: bool,
    /// How the vendor's API differs from OpenAI's.
    pub quirks: Quirks,
    /// Where requests go.
    pub url_style: UrlStyle,
    /// How the key is sent.
    pub auth_style: AuthStyle,
    /// What the vendor's Chat Completions endpoint accepts, before the model's context
    /// window is looked up in the price table.
    pub capabilities: Capabilities,
}

/// What a Chat Completions endpoint accepts by default: everything but a prefill (a final
/// assistant message starts a new turn rather than being continued). Profiles turn off
/// the inputs their vendor documents as unsupported: OpenAI's `file` and `input_audio`
/// content parts are OpenAI's own (also taken by Azure and OpenRouter); DeepSeek's and
/// Bedrock's OpenAI endpoints are text only. A vendor not known to refuse something keeps
/// it, so nothing that works is skipped.
const CHAT_COMPLETIONS: Capabilities = Capabilities::permissive().with_prefill(false);

static PROFILES: [Profile; 12] = [
    // https://platform.openai.com/docs/api-reference/chat/create
    Profile {
        name: "openai",
        base_url: Some("https://api.openai.com/v1"),
        key_env: &["SWITCHBOARD_OPENAI_API_KEY", "OPENAI_API_KEY"],
        base_url_env: &["SWITCHBOARD_OPENAI_BASE_URL", "OPENAI_BASE_URL"],
        key_required: true,
        quirks: Quirks::OPENAI,
        url_style: UrlStyle::Plain,
        auth_style: AuthStyle::Bearer,
        capabilities: CHAT_COMPLETIONS,
    },
    // NOTE: https://docs.x.ai/docs/api-reference#chat-completions — `max_tokens` is
    // deprecated in favour of `max_completion_tokens`; `reasoning_effort` is accepted by the
    // reasoning Grok models; structured outputs take `json_schema`.
    Profile {
        name: "xai",
        base_url: Some("https://api.x.ai/v1"),
        key_env: &["SWITCHBOARD_XAI_API_KEY", "XAI_API_KEY"],
        base_url_env: &["SWITCHBOARD_XAI_BASE_URL", "XAI_BASE_URL"],
        key_required: true,
        quirks: Quirks {
            max_tokens_field: MaxTokensField::MaxCompletionTokens,
            reasoning_effort: true,
            ..Quirks::COMPATIBLE
        },
        url_style: UrlStyle::Plain,
        auth_style: AuthStyle::Bearer,
        capabilities: CHAT_COMPLETIONS.with_documents(false).with_audio(false),
    },
    // NOTE: https://console.groq.com/docs/openai (base URL, unsupported fields) and
    // https://console.groq.com/docs/api-reference#chat-create — `max_completion_tokens`
    // (`max_tokens` deprecated), `reasoning_effort` for its reasoning models.
    Profile {
        name: "groq",
        base_url: Some("https://api.groq.com/openai/v1"),
        key_env: &["SWITCHBOARD_GROQ_API_KEY", "GROQ_API_KEY"],
        base_url_env: &["SWITCHBOARD_GROQ_BASE_URL", "GROQ_BASE_URL"],
        key_required: true,
        quirks: Quirks {
            max_tokens_field: MaxTokensField::MaxCompletionTokens,
            reasoning_effort: true,
            ..Quirks::COMPATIBLE
        },
        url_style: UrlStyle::Plain,
        auth_style: AuthStyle::Bearer,
        capabilities: CHAT_COMPLETIONS.with_documents(false).with_audio(false),
    },
    // NOTE: https://docs.mistral.ai/api/#tag/chat — the seed is `random_seed`, streams
    // report usage in the last chunk without `stream_options` (which the API does not list).
    Profile {
        name: "mistral",
        base_url: Some("https://api.mistral.ai/v1"),
        key_env: &["SWITCHBOARD_MISTRAL_API_KEY", "MISTRAL_API_KEY"],
        base_url_env: &["SWITCHBOARD_MISTRAL_BASE_URL", "MISTRAL_BASE_URL"],
        key_required: true,
        quirks: Quirks {
            stream_usage_option: false,
            seed_field: "random_seed",
            ..Quirks::COMPATIBLE
        },
        url_style: UrlStyle::Plain,
        auth_style: AuthStyle::Bearer,
        capabilities: CHAT_COMPLETIONS.with_documents(false).with_audio(false),
    },
    // NOTE: https://openrouter.ai/docs/api-reference/overview — OpenAI's schema with
    // `max_tokens`; reasoning is set through its own `reasoning` object (use `extra`).
    Profile {
        name: "openrouter",
        base_url: Some("https://openrouter.ai/api/v1"),
        key_env: &["SWITCHBOARD_OPENROUTER_API_KEY", "OPENROUTER_API_KEY"],
        base_url_env: &["SWITCHBOARD_OPENROUTER_BASE_URL", "OPENROUTER_BASE_URL"],
        key_required: true,
        quirks: Quirks::COMPATIBLE,
        url_style: UrlStyle::Plain,
        auth_style: AuthStyle::Bearer,
        capabilities: CHAT_COMPLETIONS,
    },
    // NOTE: https://api-docs.deepseek.com/ — `/v1` is accepted for OpenAI compatibility;
    // JSON output is `json_object` only (https://api-docs.deepseek.com/guides/json_mode);
    // reasoning arrives as `reasoning_content`.
    Profile {
        name: "deepseek",
        base_url: Some("https://api.deepseek.com/v1"),
        key_env: &["SWITCHBOARD_DEEPSEEK_API_KEY", "DEEPSEEK_API_KEY"],
        base_url_env: &["SWITCHBOARD_DEEPSEEK_BASE_URL", "DEEPSEEK_BASE_URL"],
        key_required: true,
        quirks: Quirks {
            json_schema: false,
            ..Quirks::COMPATIBLE
        },
        url_style: UrlStyle::Plain,
        auth_style: AuthStyle::Bearer,
        capabilities: CHAT_COMPLETIONS
            .with_images(false)
            .with_documents(false)
            .with_audio(false),
    },
    // NOTE: https://docs.together.ai/docs/openai-api-compatibility — OpenAI's schema with
    // `max_tokens`; streams end with a usage-bearing chunk without `stream_options`.
    Profile {
        name: "together",
        base_url: Some("https://api.together.xyz/v1"),
        key_env: &["SWITCHBOARD_TOGETHER_API_KEY", "TOGETHER_API_KEY"],
        base_url_env: &["SWITCHBOARD_TOGETHER_BASE_URL", "TOGETHER_BASE_URL"],
        key_required: true,
        quirks: Quirks {
            stream_usage_option: false,
            ..Quirks::COMPATIBLE
        },
        url_style: UrlStyle::Plain,
        auth_style: AuthStyle::Bearer,
        capabilities: CHAT_COMPLETIONS.with_documents(false).with_audio(false),
    },
    // NOTE: https://docs.ollama.com/api/openai-compatibility — no key locally; supports
    // `stream_options.include_usage`, `response_format`, `max_tokens`, `reasoning_effort`.
    Profile {
        name: "ollama",
        base_url: Some("http://localhost:11434/v1"),
        key_env: &["SWITCHBOARD_OLLAMA_API_KEY", "OLLAMA_API_KEY"],
        base_url_env: &["SWITCHBOARD_OLLAMA_BASE_URL", "OLLAMA_BASE_URL"],
        key_required: false,
        quirks: Quirks {
            reasoning_effort: true,
            ..Quirks::COMPATIBLE
        },
        url_style: UrlStyle::Plain,
        auth_style: AuthStyle::Bearer,
        capabilities: CHAT_COMPLETIONS.with_documents(false).with_audio(false),
    },
    // NOTE: https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html — the key
    // is optional (`--api-key`); guided decoding accepts `json_schema`.
    Profile {
        name: "vllm",
        base_url: Some("http://localhost:8000/v1"),
        key_env: &["SWITCHBOARD_VLLM_API_KEY", "VLLM_API_KEY"],
        base_url_env: &["SWITCHBOARD_VLLM_BASE_URL", "VLLM_BASE_URL"],
        key_required: false,
        quirks: Quirks::COMPATIBLE,
        url_style: UrlStyle::Plain,
        auth_style: AuthStyle::Bearer,
        capabilities: CHAT_COMPLETIONS,
    },
    // Any other server that speaks Chat Completions. There is deliberately no default base
    // URL, so an unconfigured client never sends a prompt (or a key) to the wrong place.
    Profile {
        name: "openai-compatible",
        base_url: None,
        key_env: &["SWITCHBOARD_OPENAI_COMPATIBLE_API_KEY"],
        base_url_env: &["SWITCHBOARD_OPENAI_COMPATIBLE_BASE_URL"],
        key_required: false,
        quirks: Quirks::COMPATIBLE,
        url_style: UrlStyle::Plain,
        auth_style: AuthStyle::Bearer,
        capabilities: CHAT_COMPLETIONS,
    },
    // NOTE: https://learn.microsoft.com/azure/ai-foundry/openai/reference — the base URL is
    // the resource endpoint (`https://NAME.openai.azure.com`), the model is the deployment
    // name, every call carries `api-version`; keys go in an `api-key` header, Entra ID
    // tokens as bearer tokens. Variable names follow the official `openai` SDK's
    // `AzureOpenAI` client. A key is not required because an Entra ID token may be used.
    Profile {
        name: "azure",
        base_url: None,
        key_env: &["SWITCHBOARD_AZURE_OPENAI_API_KEY", "AZURE_OPENAI_API_KEY"],
        base_url_env: &["SWITCHBOARD_AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_ENDPOINT"],
        key_required: false,
        quirks: Quirks::OPENAI,
        url_style: UrlStyle::AzureDeployment,
        auth_style: AuthStyle::AzureApiKey,
        capabilities: CHAT_COMPLETIONS,
    },
    // NOTE: https://docs.aws.amazon.com/bedrock/latest/userguide/inference-chat-completions.html
    // — Chat Completions at `https://bedrock-runtime.{region}.amazonaws.com/openai/v1` with
    // an Amazon Bedrock API key as the bearer token (`AWS_BEARER_TOKEN_BEDROCK`). The
    // default URL is us-east-1's; `create_client` derives it from the region variables.
    Profile {
        name: "bedrock",
        base_url: Some("https://bedrock-runtime.us-east-1.amazonaws.com/openai/v1"),
        key_env: &["SWITCHBOARD_BEDROCK_API_KEY", "AWS_BEARER_TOKEN_BEDROCK"],
        base_url_env: &["SWITCHBOARD_BEDROCK_BASE_URL"],
        key_required: true,
        quirks: Quirks::COMPATIBLE,
        url_style: UrlStyle::Plain,
        auth_style: AuthStyle::Bearer,
        capabilities: CHAT_COMPLETIONS
            .with_images(false)
            .with_documents(false)
            .with_audio(false),
    },
];

/// Returns every built-in profile.
pub fn profiles() -> &'static [Profile] {
    &PROFILES
}

/// Returns the profile named `name` (`openai`, `groq`, `openai-compatible`, …), if built in.
///
/// # Examples
/// ```
/// use switchboard::providers::openai;
///
/// let groq = openai::profile("groq").expect("groq is built in");
/// assert_eq!(groq.base_url, Some("https://api.groq.com/openai/v1"));
/// assert!(openai::profile("nope").is_none());
/// ```
pub fn profile(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// Returns the `openai` profile, the builder's default.
pub(crate) fn default_profile() -> &'static Profile {
    &PROFILES[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_list_starts_with_the_switchboard_variable() {
        for p in profiles() {
            let upper = p.name.to_ascii_uppercase().replace('-', "_");
            if p.url_style == UrlStyle::AzureDeployment {
                // Azure follows the SDK's `AZURE_OPENAI_*` naming.
                assert_eq!(p.key_env[0], "SWITCHBOARD_AZURE_OPENAI_API_KEY");
                assert_eq!(p.base_url_env[0], "SWITCHBOARD_AZURE_OPENAI_ENDPOINT");
                continue;
            }
            assert_eq!(p.key_env[0], format!("SWITCHBOARD_{upper}_API_KEY"));
            assert_eq!(p.base_url_env[0], format!("SWITCHBOARD_{upper}_BASE_URL"));
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = profiles().iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), profiles().len());
    }
}
