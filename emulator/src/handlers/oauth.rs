//! Authentication endpoints; the token logic itself lives in `crate::auth`.

use super::{oss_json, Answer};
use crate::app::App;
use crate::errors::ApiError;
use crate::request::Req;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;

/// `POST /authentication/v2/token`.
pub fn token(app: &App, req: &Req) -> Answer {
    let ctype = req.header("content-type").unwrap_or("");
    if !ctype.starts_with("application/x-www-form-urlencoded") {
        return Err(ApiError::oauth(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }
    let ttl = match app.faults.get().token_expires_in {
        0 => app.auth.token_ttl,
        n => {
            app.stats.injected("token_expires_in");
            n
        }
    };
    let body = app
        .auth
        .token_lasting(&req.headers, &req.body, app.clock.now_ms(), ttl)?;
    let mut r = oss_json(StatusCode::OK, body);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// `GET /authentication/v2/authorize` — auto-approves and redirects back with a code.
pub fn authorize(app: &App, req: &Req) -> Answer {
    let q = req.query.iter().cloned().collect();
    let target = app.auth.authorize(&q, app.clock.now_ms())?;
    let mut r = StatusCode::FOUND.into_response();
    let loc = HeaderValue::from_str(&target).map_err(|_| {
        ApiError::oauth(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri is not a valid URL",
        )
    })?;
    r.headers_mut().insert(header::LOCATION, loc);
    Ok(r)
}

/// `POST /authentication/v2/revoke`.
pub fn revoke(app: &App, req: &Req) -> Answer {
    app.auth.revoke(&req.body);
    Ok(StatusCode::OK.into_response())
}

/// `POST /authentication/v2/introspect`.
pub fn introspect(app: &App, req: &Req) -> Answer {
    Ok(oss_json(
        StatusCode::OK,
        app.auth.introspect(&req.body, app.clock.now_ms()),
    ))
}

/// `GET /userinfo` (the real one lives on another host; the emulator serves it here).
pub fn userinfo(app: &App, req: &Req) -> Answer {
    let user = req
        .grant
        .as_ref()
        .and_then(|g| g.user.clone())
        .ok_or_else(ApiError::invalid_token)?;
    Ok(oss_json(
        StatusCode::OK,
        json!({
            "sub": user,
            "name": "Emulator User",
            "given_name": "Emulator",
            "family_name": "User",
            "preferred_username": "emulator",
            "email": "emulator@example.invalid",
            "email_verified": true,
            "locale": "en-US",
            "updated_at": app.clock.now_ms() / 1000,
        }),
    ))
}
