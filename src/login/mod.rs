//! `apsfs login`, `whoami` and `logout`: a user's 3-legged login with the authorization code
//! flow and PKCE, the browser sent back to a loopback listener, and the tokens kept in the
//! credentials file for `apsfs mount` to use and refresh.

pub mod account;
pub mod callback;
pub mod pkce;

use crate::api::auth::{auth_url, request_token, ClientAuth, APS_BASE_URL};
use crate::api::transport::http_client;
use crate::credentials::{self, now_secs, Login, Store};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::io::Write;
use std::time::Duration;

/// Scopes a login asks for unless told otherwise: reading data, and who the user is.
pub const DEFAULT_SCOPES: &str = "data:read user-profile:read";

/// What `apsfs login` was asked for.
#[derive(Clone)]
pub struct LoginOptions {
    /// API base URL.
    pub base_url: String,
    /// The APS app.
    pub client_id: String,
    /// The app's secret, for confidential apps.
    pub client_secret: Option<String>,
    /// Space-separated scopes.
    pub scopes: String,
    /// Port of the loopback callback (0: any free one).
    pub port: u16,
    /// Try to open the authorize URL in a browser.
    pub open_browser: bool,
    /// How long to wait for the browser to come back.
    pub timeout: Duration,
}

/// Characters a query value may carry unencoded (RFC 3986 unreserved).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Runs the whole login: prints (and opens) the authorize URL, waits for the callback,
/// exchanges the code and stores the tokens.
pub fn login(opts: &LoginOptions) -> Result<(), String> {
    runtime()?.block_on(login_async(opts))
}

/// A small runtime for the one-shot commands.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

async fn login_async(opts: &LoginOptions) -> Result<(), String> {
    let store = Store::user()?;
    let base = credentials::key(&opts.base_url);
    let pkce = pkce::Pkce::new()?;
    let state = pkce::new_state()?;
    let callback = callback::Callback::bind(opts.port).await?;
    let redirect_uri = callback.redirect_uri();
    let url = authorize_url(
        &base,
        &[
            ("response_type", "code"),
            ("client_id", &opts.client_id),
            ("redirect_uri", &redirect_uri),
            ("scope", &opts.scopes),
            ("state", &state),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "To log in to {base}, open this URL in a browser:\n\n  {url}\n"
        );
        let _ = writeln!(
            out,
            "Waiting up to {} s for the browser to come back to {redirect_uri}",
            opts.timeout.as_secs()
        );
        let _ = out.flush();
    }
    if opts.open_browser && !open_browser(&url) {
        eprintln!("apsfs: could not open a browser; open the URL above yourself");
    }
    let code = callback.wait(&state, opts.timeout).await?;

    let http = http_client().map_err(|e| e.to_string())?;
    let client = match &opts.client_secret {
        Some(secret) => ClientAuth::Confidential {
            id: &opts.client_id,
            secret,
        },
        None => ClientAuth::Public(&opts.client_id),
    };
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    // No retries: a code is single use, and a lost answer cannot be asked for again.
    let grant = request_token(&http, &auth_url(&base, "token"), &client, &form)
        .await
        .map_err(|e| format!("cannot exchange the authorization code: {e}"))?;
    let refresh_token = grant
        .refresh_token
        .ok_or("the token endpoint granted no refresh token; nothing was stored")?;
    let now = now_secs();
    let login = Login {
        client_id: opts.client_id.clone(),
        client_secret: opts.client_secret.clone(),
        scopes: opts.scopes.clone(),
        access_token: grant.access_token,
        refresh_token,
        issued_at: now,
        expires_at: now.saturating_add(i64::try_from(grant.expires_in).unwrap_or(i64::MAX / 4)),
    };
    {
        let _lock = store.lock().await?;
        store.save(&base, &login)?;
    }
    let who = match account::userinfo(&http, &base, &login.access_token).await {
        Ok(user) => format!(" as {}", user.display_name()),
        Err(e) => {
            tracing::debug!(error = %e, "cannot tell who logged in");
            String::new()
        }
    };
    println!(
        "Logged in to {base}{who}; the login is kept in {}",
        store.path().display()
    );
    Ok(())
}

/// `{base}/authentication/v2/authorize?…` with every value percent-encoded (spaces as `%20`).
fn authorize_url(base: &str, params: &[(&str, &str)]) -> String {
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY_VALUE)))
        .collect();
    format!("{}?{}", auth_url(base, "authorize"), query.join("&"))
}

/// Where the signed-in user is described: the real service keeps it on another host.
pub fn userinfo_url(base: &str) -> String {
    let base = credentials::key(base);
    if base == APS_BASE_URL {
        "https://api.userprofile.autodesk.com/userinfo".into()
    } else {
        format!("{base}/userinfo")
    }
}

/// Opens `url` in the desktop's browser; false when there is none to ask.
fn open_browser(url: &str) -> bool {
    let cmd = if cfg!(target_os = "macos") {
        "open"
    } else {
        // Without a display xdg-open falls back to a text browser in this terminal.
        if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
            return false;
        }
        "xdg-open"
    };
    match std::process::Command::new(cmd)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_url_encodes_values() {
        let u = authorize_url(
            "http://127.0.0.1:8585/",
            &[
                ("scope", "data:read user-profile:read"),
                ("redirect_uri", "http://127.0.0.1:1234/callback"),
            ],
        );
        assert_eq!(
            u,
            "http://127.0.0.1:8585/authentication/v2/authorize?scope=data%3Aread%20user-profile%3Aread\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A1234%2Fcallback"
        );
    }

    #[test]
    fn userinfo_lives_on_its_own_host_for_the_real_service() {
        assert_eq!(
            userinfo_url("https://developer.api.autodesk.com/"),
            "https://api.userprofile.autodesk.com/userinfo"
        );
        assert_eq!(
            userinfo_url("http://127.0.0.1:9"),
            "http://127.0.0.1:9/userinfo"
        );
    }
}
