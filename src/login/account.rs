//! What a stored login is good for besides mounting: `apsfs whoami` (the user it belongs to,
//! refreshing it if due) and `apsfs logout` (revoke it, forget it).

use super::{runtime, userinfo_url};
use crate::api::auth::{login_command, revoke_refresh_token, Credentials, TokenSource};
use crate::api::error::{error_detail, status_error};
use crate::api::retry::RetryPolicy;
use crate::api::transport::http_client;
use crate::api::ApiError;
use crate::credentials::{self, Store};
use serde_json::Value;
use std::time::Duration;

/// The user a token belongs to, from the userinfo endpoint.
pub struct UserInfo {
    /// Full name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// The user id (`sub`).
    pub id: String,
}

impl UserInfo {
    /// "Name <email>", with whatever parts are known.
    pub fn display_name(&self) -> String {
        match (self.name.is_empty(), self.email.is_empty()) {
            (false, false) => format!("{} <{}>", self.name, self.email),
            (false, true) => self.name.clone(),
            (true, false) => self.email.clone(),
            (true, true) => self.id.clone(),
        }
    }
}

/// GETs the userinfo of `token`'s user.
pub async fn userinfo(
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> Result<UserInfo, ApiError> {
    let resp = http
        .get(userinfo_url(base))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| ApiError::from_transport(&e))?;
    let status = resp.status().as_u16();
    let body = resp
        .bytes()
        .await
        .map_err(|e| ApiError::from_transport(&e))?;
    if status != 200 {
        return Err(status_error(status, &body, None));
    }
    let v: Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::Decode(format!("userinfo is not JSON: {}", error_detail(&body))))?;
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    Ok(UserInfo {
        name: text("name"),
        email: text("email"),
        id: text("sub"),
    })
}

/// Prints who the stored login for `base_url` belongs to (refreshing it if due).
pub fn whoami(base_url: &str) -> Result<(), String> {
    let store = Store::user()?;
    let base = credentials::key(base_url);
    let login = store.load(&base)?.ok_or_else(|| not_logged_in(&base))?;
    let user = runtime()?.block_on(async {
        let http = http_client().map_err(|e| e.to_string())?;
        let tokens = TokenSource::new(Credentials::User { store, login }, &base, http.clone());
        let policy = RetryPolicy::default();
        let mut refused = false;
        loop {
            let token = policy
                .run("token", || tokens.token())
                .await
                .map_err(|e| e.to_string())?;
            match userinfo(&http, &base, &token).await {
                Err(ApiError::Unauthorized(_)) if !refused && tokens.invalidate(&token).await => {
                    refused = true;
                }
                r => return r.map_err(|e| format!("cannot read the user's profile: {e}")),
            }
        }
    })?;
    println!("name:    {}", user.name);
    println!("email:   {}", user.email);
    println!("user id: {}", user.id);
    Ok(())
}

/// Revokes the stored login for `base_url` (best effort) and deletes it.
pub fn logout(base_url: &str) -> Result<(), String> {
    let store = Store::user()?;
    let base = credentials::key(base_url);
    let Some(login) = store.load(&base)? else {
        println!("Not logged in to {base}; nothing to do");
        return Ok(());
    };
    let revoked = runtime()?.block_on(async {
        let revoked = match http_client() {
            Ok(http) => {
                let revoke = revoke_refresh_token(&http, &base, &login);
                match tokio::time::timeout(Duration::from_secs(15), revoke).await {
                    Ok(r) => r.map_err(|e| e.to_string()),
                    Err(_) => Err("no answer within 15 s".to_string()),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        let _lock = store.lock().await?;
        store.remove(&base)?;
        Ok::<_, String>(revoked)
    })?;
    if let Err(e) = &revoked {
        eprintln!("apsfs: could not revoke the login at {base} ({e}); it is forgotten anyway");
    }
    println!(
        "Logged out of {base}{}",
        if revoked.is_ok() {
            " (refresh token revoked)"
        } else {
            ""
        }
    );
    Ok(())
}

fn not_logged_in(base: &str) -> String {
    format!("not logged in to {base}: run `{}`", login_command(base))
}
