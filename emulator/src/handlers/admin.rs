//! `/__emulator/*`: counters, fault settings, the test clock, item reservations and project
//! access. Not part of the real API.

use super::{oss_json, write, Answer};
use crate::app::App;
use crate::clock::Stamp;
use crate::errors::ApiError;
use crate::faults::FaultConfig;
use crate::ids::parse_item_urn;
use crate::request::Req;
use crate::router::Route;
use crate::store::Reservation;
use axum::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

/// 400 in the shape every control route answers errors with.
fn bad(m: impl Into<String>) -> ApiError {
    ApiError::oss(StatusCode::BAD_REQUEST, m)
}

/// Answers the control routes.
pub fn control(app: &App, req: &Req) -> Answer {
    match &req.route {
        Route::Stats => Ok(oss_json(StatusCode::OK, app.stats.snapshot())),
        Route::ResetStats => {
            app.stats.reset();
            Ok(oss_json(StatusCode::OK, app.stats.snapshot()))
        }
        Route::Clock => {
            let secs: u64 = req
                .q("advance")
                .ok_or_else(|| bad("advance=SECONDS is required"))?
                .parse()
                .map_err(|_| bad("advance must be a whole number of seconds"))?;
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
            tracing::info!(?c, "fault settings changed");
            let echo = json!(c);
            app.faults.set(c);
            Ok(oss_json(StatusCode::OK, echo))
        }
        Route::Faults => Ok(oss_json(StatusCode::OK, json!(app.faults.get()))),
        Route::Reservation { item } if req.method == Method::DELETE => release(app, item),
        Route::Reservation { item } => reserve(app, req, item),
        Route::ProjectAccess { project } => project_access(app, req, project),
        _ => Err(ApiError::oss(
            StatusCode::NOT_FOUND,
            "No such control route",
        )),
    }
}

/// Body of `PUT /__emulator/reservations/:item`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReserveBody {
    /// `reservedUserId`: the user whose writes still get through.
    user_id: String,
    /// `reservedUserName`; the id when omitted.
    user_name: Option<String>,
}

/// The reservation as the item's attributes will show it.
fn reservation_json(item: &str, r: Option<&Reservation>) -> Value {
    match r {
        Some(r) => json!({
            "item": item,
            "reserved": true,
            "reservedUserId": r.user_id,
            "reservedUserName": r.user_name,
            "reservedTime": r.since.render(),
        }),
        None => json!({ "item": item, "reserved": false }),
    }
}

/// `PUT /__emulator/reservations/:item` with `{"user_id", "user_name"?}`: locks the item for
/// that user from now on (replacing any lock), as a colleague opening it in Desktop Connector
/// would; there is no lock endpoint in the real API.
fn reserve(app: &App, req: &Req, item: &str) -> Answer {
    let body: ReserveBody = serde_json::from_slice(&req.body).map_err(|e| {
        bad(format!(
            "bad reservation: {e}; expected {{\"user_id\": …, \"user_name\": …}}"
        ))
    })?;
    if body.user_id.is_empty() {
        return Err(bad("user_id must not be empty"));
    }
    let lock = Reservation {
        user_name: body.user_name.unwrap_or_else(|| body.user_id.clone()),
        user_id: body.user_id,
        since: Stamp::new(app.clock.now_ms()),
    };
    let mut store = write(app)?;
    let it = parse_item_urn(item)
        .and_then(|u| store.items.get_mut(&u))
        .ok_or_else(|| ApiError::oss(StatusCode::NOT_FOUND, format!("No item {item}")))?;
    it.reserved = Some(lock);
    Ok(oss_json(
        StatusCode::OK,
        reservation_json(item, it.reserved.as_ref()),
    ))
}

/// `DELETE /__emulator/reservations/:item`: unlocks the item (whoever held it).
fn release(app: &App, item: &str) -> Answer {
    let mut store = write(app)?;
    let it = parse_item_urn(item)
        .and_then(|u| store.items.get_mut(&u))
        .ok_or_else(|| ApiError::oss(StatusCode::NOT_FOUND, format!("No item {item}")))?;
    it.reserved = None;
    Ok(oss_json(StatusCode::OK, reservation_json(item, None)))
}

/// Body of `PUT /__emulator/projects/:project`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessBody {
    /// Refuse every write into the project with 403.
    read_only: bool,
}

/// `GET`/`PUT /__emulator/projects/:project` (`{"read_only": true|false}`): whether every
/// caller holds only a viewer's role in the project, so its writes answer 403.
fn project_access(app: &App, req: &Req, project: &str) -> Answer {
    let mut store = write(app)?;
    let p = store
        .project_by_id(project)
        .and_then(|i| store.projects.get_mut(i))
        .ok_or_else(|| ApiError::oss(StatusCode::NOT_FOUND, format!("No project {project}")))?;
    if req.method == Method::PUT {
        let body: AccessBody = serde_json::from_slice(&req.body).map_err(|e| {
            bad(format!(
                "bad project access: {e}; expected {{\"read_only\": true|false}}"
            ))
        })?;
        p.read_only = body.read_only;
    }
    Ok(oss_json(
        StatusCode::OK,
        json!({ "project": project, "read_only": p.read_only }),
    ))
}
