//! `/__emulator/*`: counters, fault settings and the test clock. Not part of the real API.

use super::{oss_json, Answer};
use crate::app::App;
use crate::errors::ApiError;
use crate::faults::FaultConfig;
use crate::request::Req;
use crate::router::Route;
use axum::http::{Method, StatusCode};
use serde_json::json;

/// Answers the control routes.
pub fn control(app: &App, req: &Req) -> Answer {
    let bad = |m: String| ApiError::oss(StatusCode::BAD_REQUEST, m);
    match req.route {
        Route::Stats => Ok(oss_json(StatusCode::OK, app.stats.snapshot())),
        Route::ResetStats => {
            app.stats.reset();
            Ok(oss_json(StatusCode::OK, app.stats.snapshot()))
        }
        Route::Clock => {
            let secs: u64 = req
                .q("advance")
                .ok_or_else(|| bad("advance=SECONDS is required".into()))?
                .parse()
                .map_err(|_| bad("advance must be a whole number of seconds".into()))?;
            app.clock.advance(secs);
            Ok(oss_json(
                StatusCode::OK,
                json!({ "now_ms": app.clock.now_ms() }),
            ))
        }
        Route::Faults if req.method == Method::PUT => {
            let c: FaultConfig = serde_json::from_slice(&req.body)
                .map_err(|e| bad(format!("bad fault settings: {e}")))?;
            c.validate().map_err(bad)?;
            app.faults.set(c);
            tracing::info!(?c, "fault settings changed");
            Ok(oss_json(StatusCode::OK, json!(c)))
        }
        Route::Faults => Ok(oss_json(StatusCode::OK, json!(app.faults.get()))),
        _ => Err(ApiError::oss(
            StatusCode::NOT_FOUND,
            "No such control route",
        )),
    }
}
