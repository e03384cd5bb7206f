//! Access tokens for API calls: 2-legged client credentials fetched and refreshed before they
//! expire, or a ready token from the environment. Secrets never reach a log line.

use super::error::ApiError;
use super::retry::RetryPolicy;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Scopes a read-only mount asks for.
pub const READ_SCOPE: &str = "data:read";
/// The scope listing the app's own OSS buckets needs (`--buckets`).
pub const BUCKET_SCOPE: &str = "bucket:read";

/// Where tokens come from.
#[derive(Clone)]
pub enum Credentials {
    /// OAuth client credentials (2-legged).
    Client {
        /// App client id.
        id: String,
        /// App client secret.
        secret: String,
        /// Space-separated scopes.
        scope: String,
    },
    /// A ready access token (`APS_TOKEN`); it cannot be refreshed.
    Token(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Client { id, scope, .. } => f
                .debug_struct("Client")
                .field("id", id)
                .field("secret", &"<redacted>")
                .field("scope", scope)
                .finish(),
            Credentials::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

struct Cached {
    value: String,
    refresh_at: Instant,
}

/// Hands out a valid access token, fetching a new one shortly before the old one expires.
/// One refresh at a time: concurrent callers wait for it instead of stampeding the endpoint.
pub struct TokenSource {
    creds: Credentials,
    token_url: String,
    http: reqwest::Client,
    policy: RetryPolicy,
    cached: tokio::sync::Mutex<Option<Cached>>,
}

impl TokenSource {
    /// A source for `creds`, using `{base}/authentication/v2/token`.
    pub fn new(
        creds: Credentials,
        base: &str,
        http: reqwest::Client,
        policy: RetryPolicy,
    ) -> TokenSource {
        TokenSource {
            creds,
            token_url: format!("{}/authentication/v2/token", base.trim_end_matches('/')),
            http,
            policy,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// A token valid for at least the refresh margin.
    pub async fn token(&self) -> Result<String, ApiError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            if Instant::now() < c.refresh_at {
                return Ok(c.value.clone());
            }
        }
        let (value, ttl) = match &self.creds {
            Credentials::Token(t) => (t.clone(), Duration::from_secs(u64::MAX / 4)),
            Credentials::Client { id, secret, scope } => {
                self.policy
                    .run("token", || self.fetch(id, secret, scope))
                    .await?
            }
        };
        // Refresh a fifth of the lifetime early, at most five minutes: long enough that no
        // request carries a token that expires in flight, short enough for brief test tokens.
        let margin = (ttl / 5).min(Duration::from_secs(300));
        *cached = Some(Cached {
            value: value.clone(),
            refresh_at: Instant::now() + ttl.saturating_sub(margin),
        });
        Ok(value)
    }

    /// Forgets `used` after the service refused it, so the next call fetches a new one.
    /// Returns whether a new token can be had at all.
    pub async fn invalidate(&self, used: &str) -> bool {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| c.value == used) {
            *cached = None;
        }
        matches!(self.creds, Credentials::Client { .. })
    }

    async fn fetch(
        &self,
        id: &str,
        secret: &str,
        scope: &str,
    ) -> Result<(String, Duration), ApiError> {
        let resp = self
            .http
            .post(&self.token_url)
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
            .send()
            .await
            .map_err(|e| ApiError::from_transport(&e))?;
        let status = resp.status().as_u16();
        let retry_after = super::transport::retry_after(resp.headers());
        let body = resp
            .bytes()
            .await
            .map_err(|e| ApiError::from_transport(&e))?;
        match status {
            200 => {}
            400 | 401 | 403 => {
                return Err(ApiError::Unauthorized(format!(
                    "token endpoint answered {status}: {}",
                    super::transport::error_detail(&body)
                )))
            }
            _ => return Err(super::transport::status_error(status, &body, retry_after)),
        }
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::Decode(format!("token response is not JSON: {e}")))?;
        let token = v["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::Decode("token response has no access_token".into()))?;
        let ttl = v["expires_in"].as_u64().unwrap_or(3599);
        tracing::debug!(expires_in = ttl, "fetched an access token");
        Ok((token.to_string(), Duration::from_secs(ttl)))
    }
}
