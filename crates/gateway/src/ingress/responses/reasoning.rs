//! How reasoning survives a stateless round trip through the Responses dialect.
//!
//! A reasoning item the gateway sends out carries, in `encrypted_content`, a sealed note of
//! what the provider that produced it needs back: its name (`origin`), its signature or item
//! id, and its encrypted data — Anthropic's `signature` and `redacted_thinking` data,
//! OpenAI's reasoning item id and `encrypted_content`, Gemini's thought signature. When the
//! client sends the item back (as OpenAI asks clients to do with `store: false`), the note is
//! opened and the provider's own bytes are restored exactly; the summary text travels as the
//! item's `summary`. The library sends reasoning only to the provider named as its origin and
//! drops it elsewhere, which the attempt log and the `x-switchboard-dropped` header
//! report.
//!
//! A function call's own signature (Gemini's `thoughtSignature` on a `functionCall` part)
//! travels the same way in the `function_call` item's `id`: `fc_sb1.` and the URL-safe
//! base64 of the signature, restored on the call when the item comes back.
//!
//! The seal is `sb1.` and the URL-safe base64 (no padding) of a small JSON object. It is not
//! encryption: the content inside is already the provider's opaque data. Anything else in
//! `encrypted_content` (an item produced outside the gateway) has no known origin; it is kept
//! as OpenAI-style encrypted content of unknown origin, which no target accepts, so it is
//! dropped and reported like any other foreign reasoning.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use switchboard::types::Thinking;

const PREFIX: &str = "sb1.";

/// What a sealed reasoning item holds.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
struct Sealed {
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    origin: Option<String>,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    redacted: Option<String>,
}

/// Seals what a provider needs back from `thinking`, or `None` when it carries nothing
/// opaque (plain reasoning text needs no seal).
pub(crate) fn seal(thinking: &Thinking) -> Option<String> {
    if thinking.signature.is_none() && thinking.redacted.is_none() {
        return None;
    }
    let sealed = Sealed {
        origin: thinking.origin.clone(),
        signature: thinking.signature.clone(),
        redacted: thinking.redacted.clone(),
    };
    let json = serde_json::to_vec(&sealed).ok()?;
    let mut out = String::with_capacity(PREFIX.len() + json.len() * 4 / 3 + 4);
    out.push_str(PREFIX);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(json, &mut out);
    Some(out)
}

/// Rebuilds the thinking parts of one reasoning item from its summary `text` and its
/// `encrypted_content`. Reasoning that has both a signature (or text) and encrypted data
/// becomes two parts — the signed text, then the encrypted data — the order every protocol
/// of the library reads back (OpenAI joins them into one item again; Anthropic sends a
/// `thinking` then a `redacted_thinking` block).
pub(crate) fn open(text: String, encrypted: Option<&str>) -> Vec<Thinking> {
    let sealed = match encrypted {
        None => Sealed::default(),
        Some(content) => content
            .strip_prefix(PREFIX)
            .and_then(|b64| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(b64)
                    .ok()
            })
            .and_then(|json| serde_json::from_slice::<Sealed>(&json).ok())
            .unwrap_or_else(|| Sealed {
                origin: None,
                signature: None,
                redacted: Some(content.to_owned()),
            }),
    };
    let thinking = |text: String, signature: Option<String>, redacted: Option<String>| Thinking {
        text,
        signature,
        redacted,
        origin: sealed.origin.clone(),
    };
    match (&sealed.signature, &sealed.redacted) {
        (_, Some(redacted)) if sealed.signature.is_some() || !text.is_empty() => vec![
            thinking(text, sealed.signature.clone(), None),
            thinking(String::new(), None, Some(redacted.clone())),
        ],
        _ => vec![thinking(
            text,
            sealed.signature.clone(),
            sealed.redacted.clone(),
        )],
    }
}

const CALL_PREFIX: &str = "fc_sb1.";

/// The id of a `function_call` item: fresh, or carrying the call's signature.
pub(crate) fn call_item_id(signature: Option<&str>) -> String {
    match signature {
        None => super::encode::new_id("fc"),
        Some(sig) => {
            let mut out = String::with_capacity(CALL_PREFIX.len() + sig.len() * 4 / 3 + 4);
            out.push_str(CALL_PREFIX);
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(sig, &mut out);
            out
        }
    }
}

/// The signature a `function_call` item's id carries, if it carries one.
pub(crate) fn call_signature(item_id: &str) -> Option<String> {
    let b64 = item_id.strip_prefix(CALL_PREFIX)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_call_signature_rides_in_the_item_id() {
        let id = call_item_id(Some("CiQB+sig/=="));
        assert!(id.starts_with("fc_"));
        assert_eq!(call_signature(&id).as_deref(), Some("CiQB+sig/=="));
        assert_eq!(call_signature(&call_item_id(None)), None);
        assert_eq!(call_signature("fc_68a1c6f0"), None);
    }

    use super::*;

    fn thinking(text: &str, sig: Option<&str>, red: Option<&str>, origin: &str) -> Thinking {
        Thinking {
            text: text.into(),
            signature: sig.map(Into::into),
            redacted: red.map(Into::into),
            origin: Some(origin.into()),
        }
    }

    #[test]
    fn a_signature_comes_back_byte_for_byte_with_its_origin() {
        let sig = "EqQBCgIYAhIM1gbcDa9GJwZA2b3h+/=\u{e9}";
        let t = thinking("I add.", Some(sig), None, "anthropic");
        let sealed = seal(&t).unwrap();
        assert!(sealed.starts_with("sb1."));
        assert_eq!(open("I add.".into(), Some(&sealed)), vec![t]);
    }

    #[test]
    fn openai_reasoning_splits_into_the_pair_the_library_joins() {
        let t = thinking("plan", Some("rs_1"), Some("gAAAA=="), "openai-responses");
        let parts = open("plan".into(), seal(&t).as_deref());
        assert_eq!(
            parts,
            vec![
                thinking("plan", Some("rs_1"), None, "openai-responses"),
                thinking("", None, Some("gAAAA=="), "openai-responses"),
            ]
        );
    }

    #[test]
    fn plain_reasoning_text_needs_no_seal() {
        let t = Thinking {
            text: "x".into(),
            signature: None,
            redacted: None,
            origin: Some("deepseek".into()),
        };
        assert_eq!(seal(&t), None);
    }

    #[test]
    fn foreign_encrypted_content_is_kept_without_an_origin() {
        let parts = open(String::new(), Some("gAAAA-from-elsewhere"));
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].origin, None);
        assert_eq!(parts[0].redacted.as_deref(), Some("gAAAA-from-elsewhere"));
    }
}
