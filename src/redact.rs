//! The secrets this process holds, and [`scrub`], which blanks them out of text.
//!
//! The failure it prevents: an upstream that echoes the key it was sent (a 401 body that
//! quotes `sk-…` in full) putting that key into an [`Error`](crate::Error)'s message, then
//! into logs, a gateway's answer to its client or an MCP tool error. Headers are never
//! copied into errors, but bodies are, so every secret is registered here when it is read —
//! provider keys when a client is built, Entra ID tokens when fetched, gateway keys and
//! Redis passwords when the server starts — and [`Error`](crate::Error) scrubs its message,
//! fix and code when built and its whole `Display` and `Debug` text when printed.
//!
//! Values shorter than [`MIN_SECRET_LEN`] are not registered: blanking every `k` or
//! `test` out of messages would make them unreadable, and such values are not keys anyone
//! could be harmed by. At most [`MAX_SECRETS`] values are kept; past that the oldest is
//! forgotten first (refreshed Entra ID tokens are the only values that keep coming).

use std::borrow::Cow;
use std::sync::{PoisonError, RwLock};

use secrecy::{ExposeSecret, SecretString};

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// The shortest value registered as a secret, in bytes.
pub const MIN_SECRET_LEN: usize = 8;

/// The most secrets kept at once.
pub const MAX_SECRETS: usize = 1024;

/// The registered secrets, longest first (so a secret that contains another is blanked
/// whole), each with the order it was registered in (for forgetting the oldest).
static SECRETS: RwLock<Vec<(u64, SecretString)>> = RwLock::new(Vec::new());

/// Registers `secret` so [`scrub`] blanks it from now on (values shorter than
/// [`MIN_SECRET_LEN`] and values already known are ignored).
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_SECRET_LEN || is_registered(secret) {
        return;
    }
    let mut all = SECRETS.write().unwrap_or_else(PoisonError::into_inner);
    if all.iter().any(|(_, s)| s.expose_secret() == secret) {
        return;
    }
    if all.len() >= MAX_SECRETS {
        if let Some(oldest) = (0..all.len()).min_by_key(|&i| all[i].0) {
            all.remove(oldest);
        }
    }
    let order = all.iter().map(|(n, _)| n + 1).max().unwrap_or(0);
    let at = all
        .iter()
        .position(|(_, s)| s.expose_secret().len() < secret.len())
        .unwrap_or(all.len());
    all.insert(at, (order, SecretString::from(secret.to_owned())));
}

/// Registers the value of `secret` (see [`register`]).
pub fn register_secret(secret: &SecretString) {
    register(secret.expose_secret());
}

/// Says whether `secret` is registered.
fn is_registered(secret: &str) -> bool {
    SECRETS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .any(|(_, s)| s.expose_secret() == secret)
}

/// Returns `text` with every registered secret replaced by [`REDACTED`]; borrowed when
/// there was nothing to replace.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let all = SECRETS.read().unwrap_or_else(PoisonError::into_inner);
    let mut out = Cow::Borrowed(text);
    for (_, secret) in all.iter() {
        let secret = secret.expose_secret();
        if out.contains(secret) {
            out = Cow::Owned(out.replace(secret, REDACTED));
        }
    }
    out
}

/// Scrubs a `String` in place, allocating only when something was replaced.
pub(crate) fn scrub_owned(text: String) -> String {
    match scrub(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(clean) => clean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_secret_is_blanked_wherever_it_appears() {
        register("sk-test-redact-0123456789abcdef");
        let text = "Incorrect API key provided: sk-test-redact-0123456789abcdef (sk-test-redact-0123456789abcdef)";
        assert_eq!(
            scrub(text),
            "Incorrect API key provided: [redacted] ([redacted])"
        );
    }

    #[test]
    fn short_values_are_not_secrets_and_text_without_secrets_is_borrowed() {
        register("k");
        register("   ");
        assert!(matches!(scrub("keep my k's"), Cow::Borrowed("keep my k's")));
    }

    #[test]
    fn registering_twice_keeps_one_copy() {
        register("dup-secret-value-42");
        register("dup-secret-value-42");
        let count = SECRETS
            .read()
            .unwrap()
            .iter()
            .filter(|(_, s)| s.expose_secret() == "dup-secret-value-42")
            .count();
        assert_eq!(count, 1);
    }

    #[test]
    fn a_secret_that_contains_another_is_blanked_whole() {
        register("nested-secret-01");
        register("nested-secret-01-and-more");
        assert_eq!(
            scrub("key nested-secret-01-and-more, then nested-secret-01"),
            "key [redacted], then [redacted]"
        );
    }
}
