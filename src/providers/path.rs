//! Names that become a segment of an upstream URL's path — Gemini model names, Azure
//! deployment names — checked, then percent-encoded.
//!
//! The failure it prevents: a model name a client controls reshaping the URL the key is
//! sent to. `gemini:%2e%2e/%2e%2e/%2e%2e/secret#` would otherwise make the client POST to
//! `/secret` on the provider's host with the key attached (`..` segments are resolved by
//! URL parsing, `#` cuts the rest of the path off, `?` starts a query). A name holding
//! `/`, `\`, `?`, `#`, `%`, a control character or whitespace, or a `..`, is refused with
//! [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) before anything is sent;
//! whatever passes is still percent-encoded, so no byte of it can act as URL syntax.
//!
//! Protocols that carry the model in the JSON body (Chat Completions, Responses, Messages,
//! and Bedrock's OpenAI endpoints) never put it in a path, so they need no such check.

use crate::error::{Error, Result};

/// Checks that `name` (the `what` of `provider`: "model", "deployment") is safe as one
/// path segment, and returns it percent-encoded.
///
/// # Errors
/// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest), code `invalid_model`,
/// naming what was wrong.
pub(crate) fn segment(provider: &str, what: &str, name: &str) -> Result<String> {
    let problem = if let Some(c) = name.chars().find(|c| c.is_control()) {
        Some(format!("a control character ({:?})", c))
    } else if let Some(c) = name.chars().find(|c| c.is_whitespace()) {
        Some(format!("whitespace ({c:?})"))
    } else if let Some(c) = name.chars().find(|c| matches!(c, '/' | '\\' | '?' | '#')) {
        Some(format!("`{c}`, which would change the URL it is sent to"))
    } else if name.contains('%') {
        Some("`%`: names are never percent-encoded by the caller".to_owned())
    } else if name.contains("..") {
        Some("`..`, which would climb out of the URL path".to_owned())
    } else if name.is_empty() || name == "." {
        Some("no name".to_owned())
    } else {
        None
    };
    match problem {
        None => Ok(encode(name)),
        Some(problem) => {
            let shown: String = name.chars().take(80).flat_map(char::escape_debug).collect();
            Err(Error::invalid_request(
                format!("the {provider} {what} name `{shown}` contains {problem}"),
                format!("name the {what} as the provider lists it, e.g. letters, digits, `-`, `_` and `.`"),
            )
            .with_provider(provider)
            .with_code("invalid_model"))
        }
    }
}

/// Percent-encodes a value for one URL path segment or query value: everything but
/// letters, digits and `-_.~`.
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn ordinary_names_pass_and_odd_bytes_are_encoded() {
        assert_eq!(
            segment("gemini", "model", "gemini-2.5-flash").unwrap(),
            "gemini-2.5-flash"
        );
        assert_eq!(
            segment("azure", "deployment", "gpt4o_prod.v2").unwrap(),
            "gpt4o_prod.v2"
        );
        assert_eq!(
            segment("gemini", "model", "modèle:x").unwrap(),
            "mod%C3%A8le%3Ax"
        );
    }

    #[test]
    fn names_that_could_reshape_the_url_are_refused() {
        for name in [
            "%2e%2e/%2e%2e/%2e%2e/secret#",
            "../secret",
            "..",
            ".",
            "a/b",
            "a\\b",
            "model?key=x",
            "model#frag",
            "%2e%2e",
            "%2F",
            "a\u{0}b",
            "a\nb",
            "a b",
            "",
        ] {
            let err = segment("gemini", "model", name).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{name:?}");
            assert_eq!(err.code(), Some("invalid_model"), "{name:?}");
            assert!(err.message().contains("gemini model name"), "{err}");
        }
    }

    #[test]
    fn the_message_shows_control_characters_escaped() {
        let err = segment("azure", "deployment", "x\u{1b}[31m").unwrap_err();
        assert!(err.message().contains("x\\u{1b}[31m"), "{err}");
    }
}
