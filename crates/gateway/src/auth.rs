//! [`ApiKeys`]: the bearer keys a server's clients must present, read from the variables
//! `server.api_keys_env` names, compared in constant time and never printed.
//!
//! The gateway and the MCP server's HTTP transport share it, so both read, check and
//! redact keys the same way.

use std::fmt;

use axum::http::{header, HeaderMap};
use secrecy::{ExposeSecret, SecretString};
use switchboard::config::ServerSettings;
use switchboard::{Error, ErrorKind, Result};

/// The fewest characters a gateway key may have when the server listens on a
/// non-loopback address: short keys can be guessed from the network.
pub const MIN_PUBLIC_KEY_LEN: usize = 16;

/// The keys clients must present; empty means no authentication.
///
/// # Clone
/// Clones hold the same keys.
#[derive(Clone, Default)]
pub struct ApiKeys {
    keys: Vec<SecretString>,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeys([{} redacted])", self.keys.len())
    }
}

impl ApiKeys {
    /// Reads one key from each variable `server.api_keys_env` names, through `env`.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the first variable that is unset or empty.
    pub fn from_settings(
        server: &ServerSettings,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ApiKeys> {
        let mut keys = ApiKeys::default();
        for (i, var) in server.api_keys_env.iter().enumerate() {
            match env(var).filter(|v| !v.trim().is_empty()) {
                Some(key) => keys.push(key.trim().to_owned()),
                None => {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!(
                            "config: `server.api_keys_env[{i}]` names `{var}`, which is not set"
                        ),
                    )
                    .with_fix(format!(
                        "export {var}=<a long random key>, or remove it from the list"
                    )))
                }
            }
        }
        Ok(keys)
    }

    /// Adds a key, registering it with [`switchboard::redact`] so no error, log line or
    /// answer can show it.
    pub fn push(&mut self, key: impl Into<String>) {
        let key = key.into();
        switchboard::redact::register(&key);
        self.keys.push(SecretString::from(key));
    }

    /// Says whether no keys are configured (so no authentication is asked).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Returns how many keys are configured.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Returns the length in characters of the shortest key, if any are configured.
    pub fn shortest(&self) -> Option<usize> {
        self.keys
            .iter()
            .map(|k| k.expose_secret().chars().count())
            .min()
    }

    /// Checks that every key is long enough to guard a non-loopback address
    /// ([`MIN_PUBLIC_KEY_LEN`] characters); `place` names where the server would listen.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] saying how short the shortest key is and how to make one.
    pub fn check_public(&self, place: &str) -> Result<()> {
        match self.shortest() {
            Some(n) if n < MIN_PUBLIC_KEY_LEN => Err(Error::new(
                ErrorKind::Config,
                format!(
                    "refusing to serve on {place}: a gateway key is {n} characters, and keys for a non-loopback address need at least {MIN_PUBLIC_KEY_LEN}"
                ),
            )
            .with_fix("use long random keys, e.g. from `openssl rand -hex 24`, or bind 127.0.0.1")),
            _ => Ok(()),
        }
    }

    /// Says whether `token` is one of the keys; true when none are configured.
    pub fn authorized(&self, token: Option<&str>) -> bool {
        if self.keys.is_empty() {
            return true;
        }
        let Some(token) = token else { return false };
        // Every key is compared in full, so timing says nothing about which one matched.
        self.keys.iter().fold(false, |ok, key| {
            ok | constant_time_eq(key.expose_secret().as_bytes(), token.as_bytes())
        })
    }

    /// Says whether the request's `Authorization: Bearer` header carries one of the keys.
    pub fn authorizes(&self, headers: &HeaderMap) -> bool {
        self.authorized(bearer_token(headers))
    }
}

/// Returns the token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_compare_matches_only_equal_keys() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn keys_come_from_the_named_variables_and_never_print() {
        let server = ServerSettings {
            api_keys_env: vec!["GW_KEY".to_owned()],
            ..ServerSettings::default()
        };
        let keys =
            ApiKeys::from_settings(&server, &|n| (n == "GW_KEY").then(|| "k-123".into())).unwrap();
        assert!(keys.authorized(Some("k-123")));
        assert!(!keys.authorized(Some("k-124")) && !keys.authorized(None));
        assert!(!format!("{keys:?}").contains("k-123"));
        let err = ApiKeys::from_settings(&server, &|_| None).unwrap_err();
        assert!(err.message().contains("GW_KEY"));
    }

    #[test]
    fn short_keys_are_refused_for_a_public_address() {
        let mut keys = ApiKeys::default();
        keys.check_public("0.0.0.0:8080").unwrap();
        keys.push("0123456789abcdef");
        keys.check_public("0.0.0.0:8080").unwrap();
        keys.push("k");
        let err = keys.check_public("0.0.0.0:8080").unwrap_err();
        assert!(err.message().contains("1 characters"), "{err}");
        assert!(err.message().contains("at least 16"), "{err}");
        assert!(!err.to_string().contains("0123456789abcdef"));
    }

    #[test]
    fn bearer_token_reads_the_scheme_case_insensitively() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
    }
}
