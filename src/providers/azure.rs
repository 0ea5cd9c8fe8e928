//! Azure OpenAI authentication: an `api-key`, a Microsoft Entra ID bearer token, or a token
//! provider whose tokens are cached and refreshed before they expire.
//!
//! Azure OpenAI accepts either an `api-key: <key>` header or `Authorization: Bearer <token>`
//! with a Microsoft Entra ID token
//! (<https://learn.microsoft.com/azure/ai-foundry/openai/reference#authentication>). Entra
//! tokens live about an hour, so a long-running program needs fresh ones: give a
//! [`TokenProvider`] (typically a closure around `azure_identity`'s credential) and the client
//! calls it when it has no token, when the cached one is within [`REFRESH_MARGIN`] of its
//! expiry, and once more when Azure answers 401 (a token revoked or expired early).
//!
//! Fetches are single-flight: concurrent calls that all need a token wait for one fetch.
//! Each call waits at most [`TOKEN_FETCH_LIMIT`] for its token, counting the wait for a
//! fetch another call started, so a token provider that hangs (an unreachable identity
//! endpoint) fails calls with [`ErrorKind::Timeout`] instead of holding them, and the
//! lock, forever. Every token fetched is registered with [`redact`](crate::redact).
//!
//! Used by the Chat Completions client with the `azure` profile and by the Responses client
//! for `azure-responses`.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};

use crate::client::BoxFuture;
use crate::error::{Error, ErrorKind, Result};
use crate::providers::http::Auth;

/// How long before its expiry a cached token is replaced.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The longest a call waits for a token from a [`TokenProvider`], including the wait for
/// a fetch another call started.
pub const TOKEN_FETCH_LIMIT: Duration = Duration::from_secs(30);

/// A Microsoft Entra ID access token and when it expires.
#[derive(Clone)]
pub struct AzureToken {
    /// The bearer token.
    pub token: SecretString,
    /// When the token stops being valid (Entra's `expires_on`).
    pub expires_at: SystemTime,
}

impl AzureToken {
    /// Creates a token from its text and expiry.
    pub fn new(token: impl Into<String>, expires_at: SystemTime) -> AzureToken {
        AzureToken {
            token: SecretString::from(token.into()),
            expires_at,
        }
    }
}

impl fmt::Debug for AzureToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureToken")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A callback that fetches a fresh Entra ID token.
pub type TokenProvider = Arc<dyn Fn() -> BoxFuture<'static, Result<AzureToken>> + Send + Sync>;

/// How an Azure OpenAI client authenticates.
#[derive(Clone)]
pub enum AzureAuth {
    /// An `api-key` header.
    ApiKey(SecretString),
    /// A fixed Entra ID bearer token (never refreshed).
    Token(SecretString),
    /// A callback that fetches Entra ID tokens; they are cached and refreshed before expiry.
    TokenProvider(TokenProvider),
}

impl AzureAuth {
    /// Authenticates with an `api-key` header.
    pub fn api_key(key: impl Into<String>) -> AzureAuth {
        AzureAuth::ApiKey(SecretString::from(key.into()))
    }

    /// Authenticates with a fixed Entra ID bearer token.
    pub fn token(token: impl Into<String>) -> AzureAuth {
        AzureAuth::Token(SecretString::from(token.into()))
    }

    /// Authenticates with tokens from `provider`, cached until [`REFRESH_MARGIN`] before
    /// their expiry.
    ///
    /// # Examples
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use switchboard::providers::azure::{AzureAuth, AzureToken};
    ///
    /// let auth = AzureAuth::token_provider(|| async {
    ///     // Ask Entra ID here (e.g. through azure_identity).
    ///     Ok(AzureToken::new("eyJ0eXAi...", SystemTime::now() + Duration::from_secs(3600)))
    /// });
    /// # let _ = auth;
    /// ```
    pub fn token_provider<F, Fut>(provider: F) -> AzureAuth
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<AzureToken>> + Send + 'static,
    {
        AzureAuth::TokenProvider(Arc::new(move || Box::pin(provider())))
    }
}

impl fmt::Debug for AzureAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AzureAuth::ApiKey(_) => "AzureAuth::ApiKey([redacted])",
            AzureAuth::Token(_) => "AzureAuth::Token([redacted])",
            AzureAuth::TokenProvider(_) => "AzureAuth::TokenProvider(..)",
        })
    }
}

/// What a client sends as credentials: fixed, or fetched and cached.
#[derive(Clone)]
pub(crate) enum Credential {
    /// The same header every time.
    Fixed(Auth),
    /// Bearer tokens from a provider, cached.
    Refreshing(Arc<TokenCache>),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Credential::Fixed(Auth::None) => "none",
            Credential::Fixed(_) => "[redacted]",
            Credential::Refreshing(_) => "token provider",
        })
    }
}

impl From<AzureAuth> for Credential {
    fn from(auth: AzureAuth) -> Credential {
        match auth {
            AzureAuth::ApiKey(key) => Credential::Fixed(Auth::header("api-key", key)),
            AzureAuth::Token(token) => Credential::Fixed(Auth::bearer(token)),
            AzureAuth::TokenProvider(provider) => Credential::Refreshing(Arc::new(TokenCache {
                provider,
                cached: tokio::sync::Mutex::new(None),
            })),
        }
    }
}

impl Credential {
    /// Names the credential for [`ClientInfo::endpoint`](crate::ClientInfo::endpoint)
    /// without revealing it: a fingerprint of a fixed key or token, `entra-id` for a
    /// token provider (its tokens change; one resource, one identity), `None` without one.
    pub(crate) fn fingerprint(&self) -> Option<String> {
        match self {
            Credential::Fixed(auth) => auth.secret().map(crate::middleware::key_fingerprint),
            Credential::Refreshing(_) => Some("entra-id".to_owned()),
        }
    }

    /// Returns the header to send now, fetching a token if the cache has none fresh enough.
    pub(crate) async fn auth(&self, provider_name: &str) -> Result<Auth> {
        match self {
            Credential::Fixed(auth) => Ok(auth.clone()),
            Credential::Refreshing(cache) => cache.token(provider_name).await.map(Auth::Bearer),
        }
    }

    /// Sends with the current credentials; on a 401 with a token provider, drops the token,
    /// fetches a new one and sends once more.
    pub(crate) async fn send<T, F, Fut>(&self, provider_name: &str, mut send: F) -> Result<T>
    where
        F: FnMut(Auth) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let auth = self.auth(provider_name).await?;
        let used = match &auth {
            Auth::Bearer(token) => Some(token.clone()),
            _ => None,
        };
        match send(auth).await {
            Err(err) if err.status() == Some(401) => match (self, used) {
                (Credential::Refreshing(cache), Some(used)) => {
                    cache.invalidate(&used).await;
                    let auth = self.auth(provider_name).await?;
                    send(auth).await
                }
                _ => Err(err),
            },
            other => other,
        }
    }
}

/// The token provider plus its cached token; the mutex makes fetches single-flight.
pub(crate) struct TokenCache {
    provider: TokenProvider,
    cached: tokio::sync::Mutex<Option<AzureToken>>,
}

impl TokenCache {
    /// Returns a fresh token, fetching one if needed, within [`TOKEN_FETCH_LIMIT`].
    async fn token(&self, provider_name: &str) -> Result<SecretString> {
        match tokio::time::timeout(TOKEN_FETCH_LIMIT, self.token_unbounded(provider_name)).await {
            Ok(result) => result,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "the Entra ID token provider gave no token within {}s",
                    TOKEN_FETCH_LIMIT.as_secs()
                ),
            )
            .with_provider(provider_name)
            .with_fix("check that the token provider can reach Entra ID (login.microsoftonline.com); a fallback target can answer meanwhile")),
        }
    }

    async fn token_unbounded(&self, provider_name: &str) -> Result<SecretString> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref() {
            if token.expires_at > SystemTime::now() + REFRESH_MARGIN {
                return Ok(token.token.clone());
            }
        }
        let fresh = (self.provider)().await.map_err(|e| {
            Error::new(
                ErrorKind::Authentication,
                format!("the Entra ID token provider failed: {}", e.message()),
            )
            .with_provider(provider_name)
            .with_fix("check the identity the token provider signs in with")
            .with_source(e)
        })?;
        crate::redact::register_secret(&fresh.token);
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Forgets the cached token if it is still the one that was refused.
    async fn invalidate(&self, refused: &SecretString) {
        let mut cached = self.cached.lock().await;
        if cached
            .as_ref()
            .is_some_and(|t| t.token.expose_secret() == refused.expose_secret())
        {
            *cached = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counting(lifetime: Duration) -> (Credential, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let auth = AzureAuth::token_provider(move || {
            let n = c.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                Ok(AzureToken::new(
                    format!("token-{n}"),
                    SystemTime::now() + lifetime,
                ))
            }
        });
        (Credential::from(auth), calls)
    }

    fn bearer(auth: &Auth) -> String {
        match auth {
            Auth::Bearer(t) => t.expose_secret().to_owned(),
            _ => panic!("expected a bearer token"),
        }
    }

    #[tokio::test]
    async fn a_fresh_token_is_reused() {
        let (cred, calls) = counting(Duration::from_secs(3600));
        assert_eq!(bearer(&cred.auth("azure").await.unwrap()), "token-1");
        assert_eq!(bearer(&cred.auth("azure").await.unwrap()), "token-1");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_token_near_its_expiry_is_replaced_before_use() {
        let (cred, calls) = counting(Duration::from_secs(120));
        assert_eq!(bearer(&cred.auth("azure").await.unwrap()), "token-1");
        assert_eq!(bearer(&cred.auth("azure").await.unwrap()), "token-2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let (cred, calls) = counting(Duration::from_secs(3600));
        let (a, b) = tokio::join!(cred.auth("azure"), cred.auth("azure"));
        assert_eq!(bearer(&a.unwrap()), bearer(&b.unwrap()));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_401_refetches_once_and_retries() {
        let (cred, calls) = counting(Duration::from_secs(3600));
        let mut seen = Vec::new();
        let result = cred
            .send("azure", |auth| {
                let token = bearer(&auth);
                seen.push(token.clone());
                async move {
                    if token == "token-1" {
                        Err(Error::from_status("azure", 401, "expired"))
                    } else {
                        Ok(token)
                    }
                }
            })
            .await;
        assert_eq!(result.unwrap(), "token-2");
        assert_eq!(seen, ["token-1", "token-2"]);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_fixed_key_is_not_retried_on_401() {
        let cred = Credential::from(AzureAuth::api_key("k"));
        let mut tries = 0;
        let result: Result<()> = cred
            .send("azure", |_| {
                tries += 1;
                async { Err(Error::from_status("azure", 401, "bad key")) }
            })
            .await;
        assert_eq!(result.unwrap_err().status(), Some(401));
        assert_eq!(tries, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_token_provider_fails_every_waiting_call_within_the_limit() {
        let cred = Credential::from(AzureAuth::token_provider(|| {
            std::future::pending::<Result<AzureToken>>()
        }));
        let started = tokio::time::Instant::now();
        // The second caller queues behind the first caller's fetch on the lock.
        let (a, b) = tokio::join!(cred.auth("azure"), cred.auth("azure"));
        for result in [a, b] {
            let err = result.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
            assert!(err.message().contains("30s"), "{err}");
        }
        assert_eq!(started.elapsed(), TOKEN_FETCH_LIMIT);
    }

    #[tokio::test]
    async fn a_fetched_token_is_scrubbed_from_error_text() {
        let cred = Credential::from(AzureAuth::token_provider(|| async {
            Ok(AzureToken::new(
                "eyJ0eXAiOiJKV1QiLCJhbGciOi.fetched-token",
                SystemTime::now() + Duration::from_secs(3600),
            ))
        }));
        cred.auth("azure").await.unwrap();
        let err = Error::from_status(
            "azure",
            401,
            "token eyJ0eXAiOiJKV1QiLCJhbGciOi.fetched-token is expired",
        );
        assert!(!err.to_string().contains("fetched-token"), "{err}");
    }

    #[tokio::test]
    async fn a_failing_provider_is_an_authentication_error() {
        let cred = Credential::from(AzureAuth::token_provider(|| async {
            Err(Error::new(ErrorKind::Transport, "no network"))
        }));
        let err = cred.auth("azure").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Authentication);
        assert!(err.message().contains("no network"));
    }
}
