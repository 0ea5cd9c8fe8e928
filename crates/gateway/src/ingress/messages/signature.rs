//! Reasoning signatures across the Messages front door.
//!
//! A Messages client gets every reasoning block as `thinking` (with a `signature`) or
//! `redacted_thinking` (with `data`) and sends it back on the next turn. Anthropic's own
//! signatures pass both ways untouched, byte for byte. Reasoning another provider produced
//! (a Gemini thought signature, OpenAI Responses encrypted content, unsigned reasoning text)
//! is handed out as `sbgw1:<origin>:<the provider's own string>`: the client keeps it
//! opaque, and on the way back the gateway restores the origin and the original string, so
//! the reasoning returns to the provider that produced it and is dropped for any other.
//! The prefix cannot collide with an Anthropic signature, which is base64 and has no `:`.

/// What marks a signature the gateway wrapped.
const PREFIX: &str = "sbgw1:";

/// The protocol whose signatures pass untouched.
pub(crate) const ANTHROPIC: &str = "anthropic";

/// Returns the signature (or redacted data) to hand a Messages client for reasoning that
/// `origin` produced.
pub(crate) fn wrap(origin: Option<&str>, signature: &str) -> String {
    match origin {
        Some(ANTHROPIC) => signature.to_owned(),
        Some(origin) if !origin.contains(':') => format!("{PREFIX}{origin}:{signature}"),
        _ => format!("{PREFIX}unknown:{signature}"),
    }
}

/// Reads back a signature (or redacted data) a Messages client sent: the origin and the
/// original string. Anything without the gateway's prefix is Anthropic's own.
pub(crate) fn unwrap(sent: &str) -> (String, &str) {
    match sent
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once(':'))
    {
        Some((origin, original)) => (origin.to_owned(), original),
        None => (ANTHROPIC.to_owned(), sent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_signatures_pass_untouched_and_others_round_trip_with_their_origin() {
        let sig = "EqQBCkgIAhABGAIiQL+/abc==";
        assert_eq!(wrap(Some("anthropic"), sig), sig);
        assert_eq!(unwrap(sig), ("anthropic".to_owned(), sig));
        let wrapped = wrap(Some("gemini"), "CiQB:x/y==");
        assert_eq!(wrapped, "sbgw1:gemini:CiQB:x/y==");
        assert_eq!(unwrap(&wrapped), ("gemini".to_owned(), "CiQB:x/y=="));
        assert_eq!(unwrap(&wrap(None, "")), ("unknown".to_owned(), ""));
    }
}
