//! OAuth v2 as the reference describes it: client credentials (Basic header or form fields,
//! never both), authorization code with PKCE (auto-approved), refresh-token rotation, and
//! bearer-token checks with expiry.

use super::errors::ApiError;
use super::ids::random_token;
use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

/// Refresh tokens live 15 days.
const REFRESH_TTL_MS: i64 = 15 * 24 * 3600 * 1000;
/// Authorization codes live 5 minutes.
const CODE_TTL_MS: i64 = 5 * 60 * 1000;
/// Scopes an authorization request gets when it names none (client credentials must name
/// theirs: §9.1 lists `scope` as required there).
const DEFAULT_SCOPE: &str = "data:read";

/// What the emulator remembers about an access token.
#[derive(Clone, Debug)]
pub struct Grant {
    /// The app (client id) the token was issued to; rate limits are kept per app.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Expiry in epoch ms (emulator clock).
    pub expires_ms: i64,
    /// The user of a 3-legged token.
    pub user: Option<String>,
}

impl Grant {
    /// Whether any of `wanted` was granted (`data:write` implies `data:read`, as in APS).
    pub fn allows(&self, wanted: &[&str]) -> bool {
        wanted.iter().any(|w| {
            self.scopes.iter().any(|s| {
                s == w || (*w == "data:read" && (s == "data:write" || s.starts_with("data:read:")))
            })
        })
    }
}

struct Code {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    challenge: Option<String>,
    expires_ms: i64,
}

struct Refresh {
    client_id: String,
    scopes: Vec<String>,
    user: String,
    expires_ms: i64,
}

/// Token, code and refresh-token tables.
pub struct Auth {
    client: Option<(String, String)>,
    /// `expires_in` of new access tokens, in seconds.
    pub token_ttl: u64,
    /// The user id 3-legged tokens belong to.
    pub user_id: String,
    /// Whether an old refresh token stops working once rotated (the real behaviour is
    /// unconfirmed, so the default is tolerant).
    pub single_use_refresh: bool,
    tokens: Mutex<HashMap<String, Grant>>,
    codes: Mutex<HashMap<String, Code>>,
    refresh: Mutex<HashMap<String, Refresh>>,
}

/// Form fields of a token request.
type Form = HashMap<String, String>;

impl Auth {
    /// `client` restricts which credentials are accepted; `None` accepts any non-empty pair.
    pub fn new(client: Option<(String, String)>, token_ttl: u64) -> Auth {
        Auth {
            client,
            token_ttl,
            user_id: "EMULATORUSER1".into(),
            single_use_refresh: false,
            tokens: Mutex::default(),
            codes: Mutex::default(),
            refresh: Mutex::default(),
        }
    }

    /// Checks the `Authorization: Bearer` header.
    pub fn check_bearer(&self, headers: &HeaderMap, now_ms: i64) -> Result<Grant, ApiError> {
        let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return Err(ApiError::missing_token());
        };
        let Some(tok) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        else {
            return Err(ApiError::missing_token());
        };
        let tokens = self.tokens.lock().map_err(|_| ApiError::invalid_token())?;
        match tokens.get(tok.trim()) {
            Some(g) if g.expires_ms > now_ms => Ok(g.clone()),
            _ => Err(ApiError::invalid_token()),
        }
    }

    fn known_client(&self, id: &str, secret: Option<&str>) -> bool {
        match (&self.client, secret) {
            (Some((cid, cs)), Some(s)) => cid == id && cs == s,
            (Some((cid, _)), None) => cid == id,
            (None, Some(s)) => !id.is_empty() && !s.is_empty(),
            (None, None) => !id.is_empty(),
        }
    }

    /// `POST /authentication/v2/token`, issuing tokens of the configured lifetime.
    #[cfg(test)]
    pub fn token(&self, headers: &HeaderMap, body: &[u8], now_ms: i64) -> Result<Value, ApiError> {
        self.token_lasting(headers, body, now_ms, self.token_ttl)
    }

    /// `POST /authentication/v2/token`, issuing tokens that report `expires_in: ttl` and live
    /// that long (clamped to what the clock can hold).
    pub fn token_lasting(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now_ms: i64,
        ttl: u64,
    ) -> Result<Value, ApiError> {
        let form: Form = form_urlencoded::parse(body).into_owned().collect();
        let basic = basic_credentials(headers)?;
        if basic.is_some() && form.contains_key("client_secret") {
            return Err(ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Client credentials were sent both in the Authorization header and in the body",
            ));
        }
        let (client_id, secret) = match basic {
            Some((id, s)) => (id, Some(s)),
            None => (
                form.get("client_id").cloned().unwrap_or_default(),
                form.get("client_secret").cloned(),
            ),
        };
        let grant_type = form.get("grant_type").map(String::as_str).unwrap_or("");
        let bad_client = || {
            ApiError::oauth(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The client credentials are invalid",
            )
        };
        match grant_type {
            "client_credentials" => {
                let Some(secret) = secret else {
                    return Err(bad_client());
                };
                if !self.known_client(&client_id, Some(&secret)) {
                    return Err(bad_client());
                }
                let scope = form
                    .get("scope")
                    .ok_or_else(|| invalid_request("scope is required"))?;
                let scopes = parse_scopes(scope)?;
                Ok(self.issue(&client_id, scopes, None, (now_ms, ttl), false))
            }
            "authorization_code" => {
                if !self.known_client(&client_id, secret.as_deref()) {
                    return Err(bad_client());
                }
                let code = form
                    .get("code")
                    .ok_or_else(|| invalid_request("code is required"))?;
                let c = self
                    .codes
                    .lock()
                    .ok()
                    .and_then(|mut m| m.remove(code))
                    .ok_or_else(|| {
                        invalid_grant("The authorization code is invalid or was already used")
                    })?;
                if c.expires_ms <= now_ms {
                    return Err(invalid_grant("The authorization code has expired"));
                }
                if c.client_id != client_id {
                    return Err(invalid_grant(
                        "The authorization code was issued to another client",
                    ));
                }
                if form.get("redirect_uri") != Some(&c.redirect_uri) {
                    return Err(invalid_grant(
                        "redirect_uri does not match the authorization request",
                    ));
                }
                match (&c.challenge, form.get("code_verifier")) {
                    (Some(ch), Some(v)) => {
                        if !(43..=128).contains(&v.len()) {
                            return Err(invalid_request(
                                "code_verifier must be 43 to 128 characters",
                            ));
                        }
                        if &URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes())) != ch {
                            return Err(invalid_grant(
                                "code_verifier does not match code_challenge",
                            ));
                        }
                    }
                    (Some(_), None) => return Err(invalid_request("code_verifier is required")),
                    (None, _) if secret.is_none() => {
                        return Err(invalid_request("public clients must use PKCE"))
                    }
                    (None, _) => {}
                }
                Ok(self.issue(
                    &client_id,
                    c.scopes,
                    Some(self.user_id.clone()),
                    (now_ms, ttl),
                    true,
                ))
            }
            "refresh_token" => {
                if !self.known_client(&client_id, secret.as_deref()) {
                    return Err(bad_client());
                }
                let rt = form
                    .get("refresh_token")
                    .ok_or_else(|| invalid_request("refresh_token is required"))?;
                let mut map = self
                    .refresh
                    .lock()
                    .map_err(|_| invalid_grant("unavailable"))?;
                let r = match map.get(rt) {
                    Some(r) if r.expires_ms > now_ms && r.client_id == client_id => r,
                    _ => return Err(invalid_grant("The refresh token is invalid or expired")),
                };
                let scopes = match form.get("scope") {
                    Some(s) => {
                        let wanted = parse_scopes(s)?;
                        if !wanted.iter().all(|w| r.scopes.contains(w)) {
                            return Err(ApiError::oauth(
                                StatusCode::BAD_REQUEST,
                                "invalid_scope",
                                "The requested scope exceeds the original grant",
                            ));
                        }
                        wanted
                    }
                    None => r.scopes.clone(),
                };
                let user = r.user.clone();
                if self.single_use_refresh {
                    map.remove(rt);
                }
                drop(map);
                let mut body = self.issue(&client_id, scopes, Some(user), (now_ms, ttl), true);
                // A refresh answers no ID token, unlike the code exchange.
                if let Some(o) = body.as_object_mut() {
                    o.remove("id_token");
                }
                Ok(body)
            }
            "" => Err(invalid_request("grant_type is required")),
            _ => Err(ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("grant_type {grant_type} is not supported"),
            )),
        }
    }

    fn issue(
        &self,
        client_id: &str,
        scopes: Vec<String>,
        user: Option<String>,
        (now_ms, ttl): (i64, u64),
        refresh: bool,
    ) -> Value {
        // Saturating, so any reported lifetime (u64::MAX included) means "until the clock ends".
        let ttl_ms = i64::try_from(ttl.saturating_mul(1000)).unwrap_or(i64::MAX);
        let expires_ms = now_ms.saturating_add(ttl_ms);
        let access = jwt_shaped(client_id, &scopes, expires_ms / 1000, user.as_deref());
        let mut body = json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ttl,
        });
        if let Ok(mut t) = self.tokens.lock() {
            // Drop expired tokens now and then so a long run does not grow without bound.
            if t.len() > 10_000 {
                t.retain(|_, g| g.expires_ms > now_ms);
            }
            t.insert(
                access,
                Grant {
                    client_id: client_id.into(),
                    scopes: scopes.clone(),
                    expires_ms,
                    user: user.clone(),
                },
            );
        }
        if refresh {
            let rt = random_token(32);
            if let Ok(mut m) = self.refresh.lock() {
                m.insert(
                    rt.clone(),
                    Refresh {
                        client_id: client_id.into(),
                        scopes: scopes.clone(),
                        user: user.unwrap_or_default(),
                        expires_ms: now_ms + REFRESH_TTL_MS,
                    },
                );
            }
            body["refresh_token"] = json!(rt);
            if scopes.iter().any(|s| s == "openid") {
                body["id_token"] = json!(jwt_shaped(
                    client_id,
                    &[],
                    expires_ms / 1000,
                    Some(&self.user_id)
                ));
            }
        }
        body
    }

    /// `GET /authentication/v2/authorize`: approves at once and returns the redirect target.
    pub fn authorize(&self, q: &HashMap<String, String>, now_ms: i64) -> Result<String, ApiError> {
        let get = |k: &str| q.get(k).map(String::as_str);
        if get("response_type") != Some("code") {
            return Err(invalid_request("response_type must be code"));
        }
        let client_id = get("client_id").unwrap_or_default();
        if !self.known_client(client_id, None) {
            return Err(ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                "Unknown client_id",
            ));
        }
        let redirect =
            get("redirect_uri").ok_or_else(|| invalid_request("redirect_uri is required"))?;
        if !(redirect.starts_with("http://") || redirect.starts_with("https://")) {
            return Err(invalid_request("redirect_uri must be an http(s) URL"));
        }
        let scopes = parse_scopes(get("scope").unwrap_or(DEFAULT_SCOPE))?;
        let challenge = match (get("code_challenge"), get("code_challenge_method")) {
            (Some(c), Some("S256")) => Some(c.to_string()),
            (Some(_), _) => return Err(invalid_request("code_challenge_method must be S256")),
            (None, _) => None,
        };
        if let Some(state) = get("state") {
            if !state
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ",._-".contains(c))
            {
                return Err(invalid_request(
                    "state may contain only letters, digits and , . _ -",
                ));
            }
        }
        let code = random_token(24);
        if let Ok(mut m) = self.codes.lock() {
            m.retain(|_, c| c.expires_ms > now_ms);
            m.insert(
                code.clone(),
                Code {
                    client_id: client_id.into(),
                    redirect_uri: redirect.into(),
                    scopes,
                    challenge,
                    expires_ms: now_ms + CODE_TTL_MS,
                },
            );
        }
        let sep = if redirect.contains('?') { '&' } else { '?' };
        let mut target = format!("{redirect}{sep}code={code}");
        if let Some(state) = get("state") {
            target.push_str("&state=");
            target.push_str(state);
        }
        Ok(target)
    }

    /// `POST /authentication/v2/revoke`.
    pub fn revoke(&self, body: &[u8]) {
        let form: Form = form_urlencoded::parse(body).into_owned().collect();
        if let Some(t) = form.get("token") {
            if let Ok(mut m) = self.tokens.lock() {
                m.remove(t);
            }
            if let Ok(mut m) = self.refresh.lock() {
                m.remove(t);
            }
        }
    }

    /// `POST /authentication/v2/introspect`.
    pub fn introspect(&self, body: &[u8], now_ms: i64) -> Value {
        let form: Form = form_urlencoded::parse(body).into_owned().collect();
        let g = form
            .get("token")
            .and_then(|t| self.tokens.lock().ok().and_then(|m| m.get(t).cloned()));
        match g {
            Some(g) if g.expires_ms > now_ms => json!({
                "active": true,
                "scope": g.scopes.join(" "),
                "client_id": g.client_id,
                "exp": g.expires_ms / 1000,
                "userid": g.user,
            }),
            _ => json!({ "active": false }),
        }
    }
}

fn invalid_request(d: &str) -> ApiError {
    ApiError::oauth(StatusCode::BAD_REQUEST, "invalid_request", d)
}

fn invalid_grant(d: &str) -> ApiError {
    ApiError::oauth(StatusCode::BAD_REQUEST, "invalid_grant", d)
}

fn parse_scopes(s: &str) -> Result<Vec<String>, ApiError> {
    let scopes: Vec<String> = s.split_whitespace().map(String::from).collect();
    if s.len() > 3000 || scopes.len() > 50 {
        return Err(ApiError::oauth(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Too many scopes",
        ));
    }
    if scopes.is_empty() {
        return Err(ApiError::oauth(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "scope is required",
        ));
    }
    Ok(scopes)
}

fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(b64) = v.strip_prefix("Basic ") else {
        return Ok(None);
    };
    let raw = STANDARD
        .decode(b64.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| invalid_request("Malformed Basic credentials"))?;
    let (id, secret) = raw
        .split_once(':')
        .ok_or_else(|| invalid_request("Malformed Basic credentials"))?;
    Ok(Some((id.to_string(), secret.to_string())))
}

/// Access tokens are JWTs on the real service; clients must treat them as opaque, and these
/// look the part without being verifiable.
fn jwt_shaped(client_id: &str, scopes: &[String], exp: i64, user: Option<&str>) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"apsfs-emulator","typ":"JWT"}"#);
    let payload = json!({ "client_id": client_id, "scope": scopes, "exp": exp, "userid": user, "aud": "https://autodesk.com" });
    let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    format!("{header}.{payload}.{}", random_token(64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .into_bytes()
    }

    #[test]
    fn client_credentials_and_expiry() {
        let a = Auth::new(Some(("id".into(), "secret".into())), 60);
        let body = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "id"),
            ("client_secret", "secret"),
            ("scope", "data:read"),
        ]);
        let r = a.token(&HeaderMap::new(), &body, 0).unwrap();
        assert_eq!(r["expires_in"], 60);
        let tok = r["access_token"].as_str().unwrap().to_string();
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {tok}").parse().unwrap());
        assert!(a.check_bearer(&h, 59_000).is_ok());
        assert!(a.check_bearer(&h, 60_000).is_err());
        let wrong = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "id"),
            ("client_secret", "nope"),
        ]);
        assert_eq!(
            a.token(&HeaderMap::new(), &wrong, 0).unwrap_err().status(),
            StatusCode::UNAUTHORIZED
        );
        let unscoped = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "id"),
            ("client_secret", "secret"),
        ]);
        assert_eq!(
            a.token(&HeaderMap::new(), &unscoped, 0)
                .unwrap_err()
                .status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn pkce_code_flow_and_rotation() {
        let a = Auth::new(None, 3599);
        let verifier = "v".repeat(50);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let q: HashMap<String, String> = [
            ("response_type", "code"),
            ("client_id", "pub"),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("scope", "data:read openid"),
            ("state", "xyz"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let target = a.authorize(&q, 0).unwrap();
        let code = target
            .split("code=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_string();
        assert!(target.ends_with("&state=xyz"));
        let bad = form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "pub"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("code_verifier", &"w".repeat(50)),
        ]);
        assert!(
            a.token(&HeaderMap::new(), &bad, 0).is_err(),
            "wrong verifier"
        );
        let target = a.authorize(&q, 0).unwrap();
        let code = target
            .split("code=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_string();
        let good = form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "pub"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("code_verifier", &verifier),
        ]);
        let r = a.token(&HeaderMap::new(), &good, 0).unwrap();
        assert!(r["id_token"].is_string());
        assert!(
            a.token(&HeaderMap::new(), &good, 0).is_err(),
            "codes are single use"
        );
        let rt = r["refresh_token"].as_str().unwrap();
        let again = a
            .token(
                &HeaderMap::new(),
                &form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", "pub"),
                    ("refresh_token", rt),
                ]),
                0,
            )
            .unwrap();
        assert_ne!(again["refresh_token"], r["refresh_token"]);
        assert!(again.get("id_token").is_none());
    }
}
