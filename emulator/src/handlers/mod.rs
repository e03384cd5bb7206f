//! Request handlers, one file per service family.

mod admin;
mod batch;
mod bytes;
mod data;
mod foreign;
mod oauth;
mod oss;
mod patch;
mod project;
mod write;

use super::app::App;
use super::errors::{ApiError, JSONAPI, OSS_JSON};
use super::request::Req;
use super::router::Route;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::{Arc, RwLockReadGuard, RwLockWriteGuard};

/// The foreign origin's handler, for the second listener the server starts.
pub use foreign::foreign;

/// Result of a handler.
pub type Answer = Result<Response, ApiError>;

/// Sends a request to its handler.
pub async fn dispatch(app: &Arc<App>, req: &Req) -> Answer {
    use Route::*;
    match &req.route {
        Token => oauth::token(app, req),
        Authorize => oauth::authorize(app, req),
        Revoke => oauth::revoke(app, req),
        Introspect => oauth::introspect(app, req),
        UserInfo => oauth::userinfo(app, req),
        Hubs => project::hubs(app, req),
        Hub { hub } => project::hub(app, req, hub),
        Projects { hub } => project::projects(app, req, hub),
        Project { hub, project } => project::project(app, req, hub, project),
        ProjectHub { hub, project } => project::project_hub(app, req, hub, project),
        TopFolders { hub, project } => project::top_folders(app, req, hub, project),
        Folder { project, id } => data::folder(app, req, project, id),
        FolderContents { project, id } => data::contents(app, req, project, id),
        FolderParent { project, id } => data::folder_parent(app, req, project, id),
        Item { project, id } => data::item(app, req, project, id),
        ItemTip { project, id } => data::item_tip(app, req, project, id),
        ItemVersions { project, id } => data::item_versions(app, req, project, id),
        ItemParent { project, id } => data::item_parent(app, req, project, id),
        Version { project, id } => data::version(app, req, project, id),
        VersionItem { project, id } => data::version_item(app, req, project, id),
        Refs { project, kind, id } => data::refs(app, req, project, *kind, id, false),
        RelRefs { project, kind, id } => data::refs(app, req, project, *kind, id, true),
        RelLinks { project, kind, id } => data::rel_links(app, req, project, *kind, id),
        CreateRef { project, kind, id } => write::create_ref(app, req, project, *kind, id),
        CreateStorage { project } => write::create_storage(app, req, project),
        CreateItem { project } => write::create_item(app, req, project),
        CreateVersion { project } => write::create_version(app, req, project),
        CreateFolder { project } => write::create_folder(app, req, project),
        PatchFolder { project, id } => patch::folder(app, req, project, id),
        PatchItem { project, id } => patch::item(app, req, project, id),
        PatchVersion { project, id } => patch::version(app, req, project, id),
        Buckets => oss::list_buckets(app, req),
        CreateBucket => oss::create_bucket(app, req),
        BucketDetails { bucket } => oss::bucket_details(app, req, bucket),
        DeleteBucket { bucket } => oss::delete_bucket(app, req, bucket),
        Objects { bucket } => oss::list_objects(app, req, bucket).await,
        ObjectDetails { bucket, key } => oss::object_details(app, req, bucket, key).await,
        SignedDownload { bucket, key } => oss::signed_download(app, req, bucket, key).await,
        BatchSignedDownload { bucket } => batch::batch_signed_download(app, req, bucket).await,
        SignedUploadStart { bucket, key } => oss::upload_start(app, req, bucket, key),
        SignedUploadComplete { bucket, key } => oss::upload_complete(app, req, bucket, key),
        ObjectGet { bucket, key } => bytes::legacy_get(app, req, bucket, key).await,
        ObjectDelete { bucket, key } => oss::delete_object(app, req, bucket, key),
        SignedGet { bucket, key } => bytes::signed_get(app, req, bucket, key, true).await,
        SignedPut { upload } => oss::upload_part(app, req, upload),
        Stats | ResetStats | Clock | Faults | Reservation { .. } | ProjectAccess { .. } => {
            admin::control(app, req)
        }
        Unknown => Err(unknown_route(req)),
    }
}

/// A JSON:API document response.
pub fn jsonapi(status: StatusCode, body: Value) -> Response {
    with_type(status, body, JSONAPI)
}

/// A 200 JSON:API document with one resource (or an unpaginated list) and a self link.
pub fn single(app: &App, req: &Req, data: Value) -> Response {
    jsonapi(
        StatusCode::OK,
        super::render::document(super::paging::self_href(&app.base, req), data),
    )
}

/// An OSS JSON response.
pub fn oss_json(status: StatusCode, body: Value) -> Response {
    with_type(status, body, OSS_JSON)
}

fn with_type(status: StatusCode, body: Value, ctype: &'static str) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

/// Read access to the store; a poisoned lock (a panicked writer) is a 500, not a crash.
pub fn read(app: &App) -> Result<RwLockReadGuard<'_, super::store::Store>, ApiError> {
    app.store.read().map_err(|_| {
        ApiError::data(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "store unavailable",
        )
    })
}

/// Write access to the store.
pub fn write(app: &App) -> Result<RwLockWriteGuard<'_, super::store::Store>, ApiError> {
    app.store.write().map_err(|_| {
        ApiError::data(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "store unavailable",
        )
    })
}

/// 404 for a path no route matches, in the error shape of the service its prefix names: OSS
/// clients parse `{"reason"}`, everyone else gets JSON:API `errors[]`.
pub(crate) fn unknown_route(req: &Req) -> ApiError {
    let text = format!("No route for {} {}", req.method, req.path);
    if req.path.starts_with("/oss/") {
        ApiError::oss(StatusCode::NOT_FOUND, text)
    } else {
        ApiError::data(StatusCode::NOT_FOUND, "NOT_FOUND", text)
    }
}
