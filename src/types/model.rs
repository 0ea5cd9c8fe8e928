//! [`ModelRef`]: a `provider:model` reference such as `anthropic:claude-sonnet-4-5`.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A model named with its provider, parsed from `provider:model`.
///
/// The string splits at the first colon only, so model ids that contain colons keep them:
/// `ollama:llama3:8b` is provider `ollama`, model `llama3:8b`. Without a colon the provider
/// is inferred from the model name (see [`ModelRef::infer_provider`]).
///
/// # Examples
/// ```
/// use switchboard::ModelRef;
///
/// let m: ModelRef = "ollama:llama3:8b".parse()?;
/// assert_eq!((m.provider(), m.model()), ("ollama", "llama3:8b"));
/// let m: ModelRef = "claude-sonnet-4-5".parse()?;
/// assert_eq!(m.provider(), "anthropic");
/// # Ok::<_, switchboard::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ModelRef {
    provider: String,
    model: String,
}

/// Model-name prefixes that name their provider, first match wins.
const INFERENCE: &[(&str, &str)] = &[
    ("gpt-", "openai"),
    ("chatgpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("text-embedding-", "openai"),
    ("codex-", "openai"),
    ("claude-", "anthropic"),
    ("gemini-", "gemini"),
    ("text-embedding-004", "gemini"),
    ("grok-", "xai"),
    ("mistral-", "mistral"),
    ("mixtral-", "mistral"),
    ("codestral-", "mistral"),
    ("magistral-", "mistral"),
    ("deepseek-", "deepseek"),
];

impl ModelRef {
    /// Creates a reference from its two halves.
    pub fn new(provider: impl Into<String>, model: impl Into<String>) -> ModelRef {
        ModelRef {
            provider: provider.into(),
            model: model.into(),
        }
    }

    /// Parses `provider:model`, or a bare model name whose provider can be inferred.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when the string is empty, a half is
    /// empty, or a bare name names no known provider.
    pub fn parse(text: &str) -> Result<ModelRef> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::config(
                "the model reference is empty",
                "name a model as `provider:model`, e.g. `openai:gpt-4o-mini`",
            ));
        }
        if let Some((provider, model)) = text.split_once(':') {
            if provider.is_empty() || model.is_empty() {
                return Err(Error::config(
                    format!("`{text}` has an empty provider or model"),
                    "write it as `provider:model`, e.g. `anthropic:claude-sonnet-4-5`",
                ));
            }
            return Ok(ModelRef::new(provider.to_ascii_lowercase(), model));
        }
        match ModelRef::infer_provider(text) {
            Some(provider) => Ok(ModelRef::new(provider, text)),
            None => Err(Error::config(
                format!("cannot tell which provider serves `{text}`"),
                format!("prefix it with the provider, e.g. `openai-compatible:{text}` or `ollama:{text}`"),
            )),
        }
    }

    /// Infers the provider from a bare model name (`gpt-`/`o1`/`o3`/`o4` → openai, `claude-`
    /// → anthropic, `gemini-` → gemini, `grok-` → xai, `mistral-` → mistral, …).
    pub fn infer_provider(model: &str) -> Option<&'static str> {
        let lower = model.to_ascii_lowercase();
        INFERENCE
            .iter()
            .find(|(prefix, _)| lower.starts_with(prefix))
            .map(|(_, provider)| *provider)
    }

    /// Returns the provider half.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Returns the model half.
    pub fn model(&self) -> &str {
        &self.model
    }
}

impl FromStr for ModelRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<ModelRef> {
        ModelRef::parse(s)
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.provider, self.model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_first_colon_only() {
        let m = ModelRef::parse("ollama:llama3:8b").unwrap();
        assert_eq!(m.provider(), "ollama");
        assert_eq!(m.model(), "llama3:8b");
    }

    #[test]
    fn infers_providers_from_bare_names() {
        for (name, provider) in [
            ("gpt-4o", "openai"),
            ("o3-mini", "openai"),
            ("o4-mini", "openai"),
            ("claude-sonnet-4-5", "anthropic"),
            ("gemini-2.5-flash", "gemini"),
            ("grok-4", "xai"),
            ("mistral-large-latest", "mistral"),
        ] {
            assert_eq!(
                ModelRef::parse(name).unwrap().provider(),
                provider,
                "{name}"
            );
        }
    }

    #[test]
    fn unknown_bare_name_says_how_to_fix_it() {
        let err = ModelRef::parse("llama3").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Config);
        assert!(err.fix().unwrap().contains("prefix"));
    }

    #[test]
    fn empty_halves_are_rejected() {
        assert!(ModelRef::parse("openai:").is_err());
        assert!(ModelRef::parse(":gpt").is_err());
        assert!(ModelRef::parse("  ").is_err());
    }
}
