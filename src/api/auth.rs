//! Access tokens for API calls: 2-legged client credentials fetched and refreshed before they
//! expire, a user's login (3-legged) refreshed with its refresh token, or a ready token from the
//! environment. Also the token endpoint itself, which `apsfs login` shares. Secrets never reach
//! a log line.

use super::body::{read_limited, read_prefix, MAX_ERROR_BODY, MAX_JSON_BODY};
use super::error::ApiError;
use crate::credentials::{self, now_secs, Login, Store};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Scopes a read-only mount asks for.
pub const READ_SCOPE: &str = "data:read";
/// Scopes a read-write mount asks for: reading, creating storage, items, versions and folders
/// (`data:create`), and uploading into storage (`signeds3upload` wants `data:write` and
/// `data:create`, §7.8).
pub const WRITE_SCOPES: &str = "data:read data:write data:create";
/// The scope listing the app's own OSS buckets needs (`--buckets`).
pub const BUCKET_SCOPE: &str = "bucket:read";

/// What a mount may do with the data it shows, which decides the scopes its token asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Access {
    /// Read only (the default): [`READ_SCOPE`].
    #[default]
    Read,
    /// Read and write: [`WRITE_SCOPES`].
    ReadWrite,
}

/// The space-separated scopes a 2-legged token is asked for: those of `access`, and
/// [`BUCKET_SCOPE`] when the app's own buckets are shown (`buckets`).
pub fn client_scopes(access: Access, buckets: bool) -> String {
    let data = match access {
        Access::Read => READ_SCOPE,
        Access::ReadWrite => WRITE_SCOPES,
    };
    match buckets {
        true => format!("{data} {BUCKET_SCOPE}"),
        false => data.to_string(),
    }
}

/// The real APS base URL (the default everywhere a base URL is asked for).
pub const APS_BASE_URL: &str = "https://developer.api.autodesk.com";

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
    /// A user's login from `apsfs login` (3-legged): refreshed with its refresh token, and each
    /// rotated refresh token saved to `store` before the new access token is used.
    User {
        /// The credentials file the login came from and rotations go to.
        store: Store,
        /// The login as loaded.
        login: Login,
    },
}

impl Credentials {
    /// App client credentials (2-legged) asking for the scopes of `access`, plus bucket
    /// listing when `buckets` (see [`client_scopes`]).
    pub fn client(id: &str, secret: &str, access: Access, buckets: bool) -> Credentials {
        Credentials::Client {
            id: id.to_string(),
            secret: secret.to_string(),
            scope: client_scopes(access, buckets),
        }
    }
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
            Credentials::User { store, login } => f
                .debug_struct("User")
                .field("store", &store.path())
                .field("login", login)
                .finish(),
        }
    }
}

/// How an app proves itself to the token endpoint.
pub enum ClientAuth<'a> {
    /// A public app (PKCE): its id in the form, no secret.
    Public(&'a str),
    /// A confidential app: `Authorization: Basic id:secret`.
    Confidential {
        /// App client id.
        id: &'a str,
        /// App client secret.
        secret: &'a str,
    },
}

impl<'a> ClientAuth<'a> {
    /// The app a stored login belongs to.
    pub fn of(login: &'a Login) -> ClientAuth<'a> {
        match &login.client_secret {
            Some(secret) => ClientAuth::Confidential {
                id: &login.client_id,
                secret,
            },
            None => ClientAuth::Public(&login.client_id),
        }
    }

    /// `req` with the app's credentials: Basic, or `client_id` in `form` (never both, §9.1).
    fn apply(
        &self,
        req: reqwest::RequestBuilder,
        form: &[(&'a str, &'a str)],
    ) -> reqwest::RequestBuilder {
        match self {
            ClientAuth::Confidential { id, secret } => req.basic_auth(id, Some(secret)).form(form),
            ClientAuth::Public(id) => {
                let mut all = form.to_vec();
                all.push(("client_id", id));
                req.form(&all)
            }
        }
    }
}

/// The longest token lifetime believed: APS tokens live an hour; a server that claims years
/// (or `u64::MAX` seconds) gets a day, and the token is refreshed then.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);

/// The shortest token lifetime believed, so a token that claims to expire at once (or a
/// negative time) is not fetched again for every request.
pub const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(1);

/// What the token endpoint granted.
pub struct Grant {
    /// The access token.
    pub access_token: String,
    /// Its lifetime in seconds, clamped to [`MIN_TOKEN_LIFETIME`]..=[`MAX_TOKEN_LIFETIME`].
    pub expires_in: u64,
    /// A new refresh token (authorization code and refresh grants).
    pub refresh_token: Option<String>,
}

/// `{base}/authentication/v2/{endpoint}`.
pub fn auth_url(base: &str, endpoint: &str) -> String {
    format!("{}/authentication/v2/{endpoint}", credentials::key(base))
}

/// How to get a new login for `base`, for messages.
pub fn login_command(base: &str) -> String {
    if credentials::key(base) == APS_BASE_URL {
        "apsfs login".into()
    } else {
        format!("apsfs login --base-url {}", credentials::key(base))
    }
}

/// POSTs one grant to the token endpoint (no retries). A refusal (400, 401, 403) is
/// `Unauthorized` with the service's own words.
pub async fn request_token(
    http: &reqwest::Client,
    token_url: &str,
    client: &ClientAuth<'_>,
    form: &[(&str, &str)],
) -> Result<Grant, ApiError> {
    crate::stats::request("token");
    let resp = client
        .apply(http.post(token_url), form)
        .send()
        .await
        .map_err(|e| ApiError::from_transport(&e))?;
    let status = resp.status().as_u16();
    let retry_after = super::error::retry_after(resp.headers());
    let body = if status == 200 {
        read_limited(resp, MAX_JSON_BODY).await?
    } else {
        read_prefix(resp, MAX_ERROR_BODY).await
    };
    match status {
        200 => {}
        400 | 401 | 403 => {
            return Err(ApiError::Unauthorized(format!(
                "token endpoint answered {status}: {}",
                super::error::error_detail(&body)
            )))
        }
        _ => return Err(super::error::status_error(status, &body, retry_after)),
    }
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Decode(format!("token response is not JSON: {e}")))?;
    let text = |k: &str| v[k].as_str().filter(|t| !t.is_empty()).map(String::from);
    let access_token = text("access_token")
        .ok_or_else(|| ApiError::Decode("token response has no access_token".into()))?;
    Ok(Grant {
        access_token,
        expires_in: lifetime(&v["expires_in"]).as_secs(),
        refresh_token: text("refresh_token"),
    })
}

/// A token's lifetime from the `expires_in` the endpoint sent (a number of seconds, or a
/// numeric string), clamped to a sane range; an hour when it is missing or not a number.
fn lifetime(expires_in: &Value) -> Duration {
    let secs = match expires_in {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|s| s.is_finite())
    .unwrap_or(3599.0);
    let max = MAX_TOKEN_LIFETIME.as_secs_f64();
    let min = MIN_TOKEN_LIFETIME.as_secs_f64();
    Duration::from_secs_f64(secs.clamp(min, max))
}

/// Revokes a refresh token at `{base}/authentication/v2/revoke`.
pub async fn revoke_refresh_token(
    http: &reqwest::Client,
    base: &str,
    login: &Login,
) -> Result<(), ApiError> {
    let form = [
        ("token", login.refresh_token.as_str()),
        ("token_type_hint", "refresh_token"),
    ];
    let resp = ClientAuth::of(login)
        .apply(http.post(auth_url(base, "revoke")), &form)
        .send()
        .await
        .map_err(|e| ApiError::from_transport(&e))?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let retry_after = super::error::retry_after(resp.headers());
    let body = read_prefix(resp, MAX_ERROR_BODY).await;
    Err(super::error::status_error(status, &body, retry_after))
}

/// Refresh a fifth of the lifetime early, at most five minutes: long enough that no request
/// carries a token that expires in flight, short enough for brief test tokens.
fn refresh_margin(ttl: Duration) -> Duration {
    (ttl / 5).min(Duration::from_secs(300))
}

/// How long a stored login's access token may still be handed out (zero when it is due). The
/// times come from a file: whatever they hold, the arithmetic saturates and the answer is at
/// most [`MAX_TOKEN_LIFETIME`].
fn usable_for(login: &Login) -> Duration {
    let secs = |s: i64| Duration::from_secs(u64::try_from(s).unwrap_or(0)).min(MAX_TOKEN_LIFETIME);
    let lifetime = secs(login.expires_at.saturating_sub(login.issued_at));
    secs(login.expires_at.saturating_sub(now_secs())).saturating_sub(refresh_margin(lifetime))
}

/// The moment `after` from now, or a day from now when that cannot be represented.
fn due_in(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .unwrap_or_else(|| now + MAX_TOKEN_LIFETIME)
}

struct Cached {
    value: String,
    refresh_at: Instant,
}

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    /// The user's login as this process last knew it (`Credentials::User` only).
    login: Option<Login>,
    /// The last token handed out: a refresh never answers it again (it expired or was refused).
    last: Option<String>,
}

/// Hands out a valid access token, fetching a new one shortly before the old one expires.
/// One refresh at a time: concurrent callers wait for it instead of stampeding the endpoint.
/// A fetch is one request: the retries are those of the request that needed the token, so
/// they never multiply.
pub struct TokenSource {
    creds: Credentials,
    base: String,
    http: reqwest::Client,
    state: tokio::sync::Mutex<State>,
}

impl TokenSource {
    /// A source for `creds`, using `{base}/authentication/v2/token`.
    pub fn new(creds: Credentials, base: &str, http: reqwest::Client) -> TokenSource {
        TokenSource {
            creds,
            base: credentials::key(base),
            http,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// A token valid for at least the refresh margin.
    pub async fn token(&self) -> Result<String, ApiError> {
        let mut st = self.state.lock().await;
        if let Some(c) = st.cached.as_ref() {
            if Instant::now() < c.refresh_at {
                return Ok(c.value.clone());
            }
        }
        let (value, refresh_in) = match &self.creds {
            Credentials::Token(t) => (t.clone(), Duration::MAX),
            Credentials::Client { id, secret, scope } => {
                let client = ClientAuth::Confidential { id, secret };
                let form = [("grant_type", "client_credentials"), ("scope", scope)];
                let token_url = auth_url(&self.base, "token");
                let grant = request_token(&self.http, &token_url, &client, &form).await?;
                tracing::debug!(expires_in = grant.expires_in, "fetched an access token");
                let ttl = Duration::from_secs(grant.expires_in);
                (grant.access_token, ttl.saturating_sub(refresh_margin(ttl)))
            }
            Credentials::User { store, login } => {
                let known = st.login.take().unwrap_or_else(|| login.clone());
                let fresh = self.user_token(store, known, st.last.as_deref()).await;
                let next = match fresh {
                    Ok(next) => next,
                    Err((known, e)) => {
                        st.login = Some(known);
                        return Err(e);
                    }
                };
                let refresh_in = usable_for(&next);
                st.login = Some(next.clone());
                (next.access_token, refresh_in)
            }
        };
        st.cached = Some(Cached {
            value: value.clone(),
            refresh_at: due_in(refresh_in),
        });
        st.last = Some(value.clone());
        Ok(value)
    }

    /// The newest usable login: the stored one when another process has refreshed since
    /// (a rotated refresh token must never be used again), else a refresh whose result is
    /// saved before it is returned. On failure hands `known` back with the error.
    async fn user_token(
        &self,
        store: &Store,
        mut known: Login,
        last: Option<&str>,
    ) -> Result<Login, (Login, ApiError)> {
        let relogin = |why: String| {
            ApiError::Unauthorized(format!("{why}; run `{}` again", login_command(&self.base)))
        };
        // The lock only coordinates processes sharing the login: without it, go on alone.
        let _lock = match store.lock().await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(error = %e, "cannot lock the credentials file");
                None
            }
        };
        match store.load(&self.base) {
            Ok(Some(stored)) => {
                if stored.issued_at >= known.issued_at && stored != known {
                    known = stored;
                }
            }
            Ok(None) => {
                let why = format!("the login for {} was removed (apsfs logout)", self.base);
                return Err((known, relogin(why)));
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the stored login; using the one in memory")
            }
        }
        if usable_for(&known) > Duration::ZERO && last != Some(known.access_token.as_str()) {
            return Ok(known);
        }
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", known.refresh_token.as_str()),
        ];
        let token_url = auth_url(&self.base, "token");
        let client = ClientAuth::of(&known);
        let refreshed = request_token(&self.http, &token_url, &client, &form).await;
        let grant = match refreshed {
            Ok(g) => g,
            Err(ApiError::Unauthorized(d)) => {
                let why = format!(
                    "the login for {} can no longer be refreshed ({d})",
                    self.base
                );
                return Err((known, relogin(why)));
            }
            Err(e) => return Err((known, e)),
        };
        let now = now_secs();
        let next = Login {
            access_token: grant.access_token,
            refresh_token: grant.refresh_token.unwrap_or(known.refresh_token),
            issued_at: now,
            expires_at: now.saturating_add(i64::try_from(grant.expires_in).unwrap_or(i64::MAX / 4)),
            ..known
        };
        // Saved before the new access token is used, so the file never holds only a spent
        // refresh token. If it cannot be saved the mount still goes on with it in memory.
        if let Err(e) = store.save(&self.base, &next) {
            tracing::error!(error = %e, "cannot save the rotated refresh token");
        }
        tracing::debug!(
            expires_in = grant.expires_in,
            "refreshed the user's access token"
        );
        Ok(next)
    }

    /// Forgets `used` after the service refused it, so the next call fetches a new one.
    /// Returns whether a new token can be had at all.
    pub async fn invalidate(&self, used: &str) -> bool {
        let mut st = self.state.lock().await;
        if st.cached.as_ref().is_some_and(|c| c.value == used) {
            st.cached = None;
        }
        matches!(
            self.creds,
            Credentials::Client { .. } | Credentials::User { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_lifetime_overflows() {
        let day = MAX_TOKEN_LIFETIME;
        for (sent, want) in [
            (serde_json::json!(u64::MAX), day),
            (serde_json::json!(i64::MAX), day),
            (serde_json::json!(1e300), day),
            (serde_json::json!(-5), MIN_TOKEN_LIFETIME),
            (serde_json::json!(0), MIN_TOKEN_LIFETIME),
            (serde_json::json!("3599"), Duration::from_secs(3599)),
            (serde_json::json!("forever"), Duration::from_secs(3599)),
            (serde_json::json!(null), Duration::from_secs(3599)),
            (serde_json::json!(3599), Duration::from_secs(3599)),
        ] {
            assert_eq!(lifetime(&sent), want, "{sent}");
        }
        assert!(due_in(Duration::MAX) > Instant::now());
        let login = |issued_at, expires_at| Login {
            client_id: "app".into(),
            client_secret: None,
            scopes: "data:read".into(),
            access_token: "a".into(),
            refresh_token: "r".into(),
            issued_at,
            expires_at,
        };
        for (issued, expires) in [
            (i64::MIN, i64::MAX),
            (i64::MAX, i64::MIN),
            (0, i64::MAX),
            (i64::MIN, i64::MIN),
        ] {
            let left = usable_for(&login(issued, expires));
            assert!(left <= day);
            let _ = due_in(left);
        }
    }

    #[test]
    fn scopes_follow_the_access_asked_for() {
        assert_eq!(client_scopes(Access::default(), false), "data:read");
        assert_eq!(client_scopes(Access::Read, true), "data:read bucket:read");
        assert_eq!(
            client_scopes(Access::ReadWrite, false),
            "data:read data:write data:create"
        );
        assert_eq!(
            client_scopes(Access::ReadWrite, true),
            "data:read data:write data:create bucket:read"
        );
        let Credentials::Client { scope, .. } =
            Credentials::client("i", "s", Access::ReadWrite, false)
        else {
            panic!("not app credentials")
        };
        assert_eq!(scope, WRITE_SCOPES);
    }

    #[test]
    fn debug_redacts_user_tokens() {
        let creds = Credentials::User {
            store: Store::in_dir("/nowhere".into()),
            login: Login {
                client_id: "app".into(),
                client_secret: Some("s3cret".into()),
                scopes: "data:read".into(),
                access_token: "acc3ss".into(),
                refresh_token: "r3fresh".into(),
                issued_at: 0,
                expires_at: 1,
            },
        };
        let s = format!("{creds:?}");
        assert!(s.contains("app"), "{s}");
        for secret in ["s3cret", "acc3ss", "r3fresh"] {
            assert!(!s.contains(secret), "{s}");
        }
    }
}
