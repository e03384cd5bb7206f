//! The foreign origin: a second listener (same host, another port) the `redirect` knob sends
//! clients to. It counts every request and those carrying a credential, hands out a token of
//! its own, answers any API GET with a plausible listing of one file, and serves signed byte
//! URLs from the real store (a storage redirect is legitimate).

use super::bytes::signed_get;
use super::{jsonapi, oss_json};
use crate::app::App;
use crate::errors::ApiError;
use crate::request::Req;
use crate::router::Route;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;

/// Largest request body the foreign origin reads (token forms, small JSON bodies).
const MAX_BODY: usize = 1 << 20;

/// Form fields whose presence in a body means a credential was sent.
const SECRET_FIELDS: [&str; 3] = ["refresh_token=", "client_secret=", "code_verifier="];

/// Answers a request to the foreign origin.
pub async fn foreign(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let route = Route::parse(&parts.method, parts.uri.path());
    app.stats
        .foreign(route.name(), carries_credentials(&parts.headers, &body));
    let req = Req::new(route.clone(), parts, body, app.clock.now_ms());
    match &route {
        Route::Token => {
            let mut r = oss_json(
                StatusCode::OK,
                json!({
                    "access_token": "foreign-token",
                    "token_type": "Bearer",
                    "expires_in": 3599,
                    "refresh_token": "foreign-refresh",
                }),
            );
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Route::SignedGet { bucket, key } => signed_get(&app, &req, bucket, key, false)
            .await
            .unwrap_or_else(|e| e.into_response()),
        _ if req.method == axum::http::Method::GET
            && (req.path.starts_with("/data/")
                || req.path.starts_with("/project/")
                || req.path.starts_with("/oss/")) =>
        {
            jsonapi(StatusCode::OK, listing(&app.foreign, &req.path))
        }
        _ => ApiError::data(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("No route for {} {}", req.method, req.path),
        )
        .into_response(),
    }
}

/// Whether a request carries a credential: any `Authorization` header (Bearer or Basic), or a
/// body naming a refresh token, client secret or PKCE verifier.
fn carries_credentials(headers: &HeaderMap, body: &[u8]) -> bool {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_start().to_ascii_lowercase())
        .is_some_and(|v| v.starts_with("bearer") || v.starts_with("basic"));
    auth || SECRET_FIELDS
        .iter()
        .any(|f| body.windows(f.len()).any(|w| w == f.as_bytes()))
}

/// A valid folder-contents page holding one file, `foreign.txt`, that exists nowhere: what a
/// client that followed a redirect off its origin would show.
fn listing(origin: &str, path: &str) -> Value {
    let item = "urn:adsk.wipprod:dm.lineage:foreignforeignforeign1";
    let version = "urn:adsk.wipprod:fs.file:vf.foreignforeignforeign1?version=1";
    let stamp = "2024-01-01T00:00:00.000Z";
    let at = |p: &str| json!({ "href": format!("{origin}{p}") });
    let schema = |t: &str| json!({ "href": format!("{origin}/schema/v1/versions/{t}-1.0") });
    json!({
        "jsonapi": { "version": "1.0" },
        "links": { "self": at(path) },
        "data": [{
            "type": "items",
            "id": item,
            "attributes": {
                "displayName": "foreign.txt",
                "createTime": stamp, "createUserId": "FOREIGN", "createUserName": "Foreign",
                "lastModifiedTime": stamp, "lastModifiedUserId": "FOREIGN", "lastModifiedUserName": "Foreign",
                "hidden": false, "reserved": false,
                "extension": { "type": "items:autodesk.core:File", "version": "1.0",
                               "schema": schema("items:autodesk.core:File"), "data": {} }
            },
            "links": { "self": at(&format!("/data/v1/projects/foreign/items/{item}")) },
            "relationships": {
                "tip": { "data": { "type": "versions", "id": version },
                         "links": { "related": at(&format!("/data/v1/projects/foreign/items/{item}/tip")) } }
            }
        }],
        "included": [{
            "type": "versions",
            "id": version,
            "attributes": {
                "name": "foreign.txt", "displayName": "foreign.txt", "versionNumber": 1,
                "mimeType": "text/plain", "fileType": "txt", "storageSize": 8,
                "createTime": stamp, "createUserId": "FOREIGN", "createUserName": "Foreign",
                "lastModifiedTime": stamp, "lastModifiedUserId": "FOREIGN", "lastModifiedUserName": "Foreign",
                "extension": { "type": "versions:autodesk.core:File", "version": "1.0",
                               "schema": schema("versions:autodesk.core:File"), "data": {} }
            },
            "links": { "self": at(&format!("/data/v1/projects/foreign/versions/{version}")) },
            "relationships": {
                "item": { "data": { "type": "items", "id": item } },
                "storage": { "data": { "type": "objects", "id": "urn:adsk.objects:os.object:wip.dm.prod/foreign.txt" },
                             "meta": { "link": at("/oss/v2/buckets/wip.dm.prod/objects/foreign.txt") } }
            }
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_recognised() {
        let mut h = HeaderMap::new();
        assert!(!carries_credentials(&h, b"grant_type=client_credentials"));
        assert!(carries_credentials(
            &h,
            b"grant_type=refresh_token&refresh_token=x"
        ));
        assert!(carries_credentials(&h, b"client_id=a&client_secret=b"));
        assert!(carries_credentials(&h, b"code_verifier=v"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YTpi"),
        );
        assert!(carries_credentials(&h, b""));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        assert!(carries_credentials(&h, b""));
    }

    #[test]
    fn the_listing_is_a_contents_page() {
        let page = listing(
            "http://127.0.0.1:1",
            "/data/v1/projects/p/folders/f/contents",
        );
        assert_eq!(page["data"][0]["attributes"]["displayName"], "foreign.txt");
        assert_eq!(
            page["data"][0]["relationships"]["tip"]["data"]["id"],
            page["included"][0]["id"]
        );
    }
}
