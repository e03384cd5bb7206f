//! `POST …/objects/batchsigneds3download`: signed download URLs for up to 25 objects in one OSS
//! request (aps-api.md §7.8), each result exactly what `signeds3download` answers for it.

use super::bytes::check_object_access;
use super::oss::{bad, download_body, minutes, stored_object};
use super::{oss_json, Answer};
use crate::app::App;
use crate::errors::ApiError;
use crate::request::Req;
use axum::http::StatusCode;
use serde_json::{json, Map, Value};

/// Most objects one batch may name, as for the other batch calls.
pub const MAX_BATCH: usize = 25;

/// Why a batch is refused while the `refuse_batch` fault is on. Whether Data Management storage
/// accepts batch calls is unconfirmed; 403 is what OSS answers for operations a bucket does not
/// allow the app, so a client falling back to single calls must treat it as "not here".
pub const REFUSED: &str = "Batch operations are not allowed on this bucket";

/// Answers a batch: one result per requested key in `results`; an object that is missing or not
/// uploaded gets a per-object error instead of failing the batch. Bucket-level failures (no such
/// bucket, no access) fail the whole call, as they do for the single call.
pub async fn batch_signed_download(app: &App, req: &Req, bucket: &str) -> Answer {
    if app.faults.get().refuse_batch {
        return Err(ApiError::oss(StatusCode::FORBIDDEN, REFUSED));
    }
    let keys = requested_keys(req)?;
    let mins = minutes(req)?;
    check_object_access(app, req, bucket)?;
    let mut results = Map::new();
    for key in keys {
        let result = match stored_object(app, bucket, &key) {
            Ok(stored) => download_body(app, req, bucket, &key, &stored, mins).await,
            Err(ApiError::Oss { reason, .. }) => object_error(&reason),
            // Anything else (a poisoned store) is the server failing, not this object.
            Err(other) => return Err(other),
        };
        results.insert(key, result);
    }
    Ok(oss_json(StatusCode::OK, json!({ "results": results })))
}

/// The per-object error result. The reference does not spell it (UNCONFIRMED); this is the only
/// place that does, in the `status` + `reason` words the upload-completion error uses.
pub fn object_error(reason: &str) -> Value {
    json!({ "status": "error", "reason": reason })
}

/// The object keys of a batch body `{"requests":[{"objectKey":…},…]}`: 1 to 25 of them, each a
/// non-empty string; anything else, or a body that is not JSON, is a 400.
fn requested_keys(req: &Req) -> Result<Vec<String>, ApiError> {
    if !is_json(req.header("content-type")) {
        return Err(bad("Content-Type must be application/json"));
    }
    let body: Value =
        serde_json::from_slice(&req.body).map_err(|e| bad(format!("Invalid JSON body: {e}")))?;
    let requests = body["requests"]
        .as_array()
        .ok_or_else(|| bad("Valid field 'requests' must be an array"))?;
    if requests.is_empty() {
        return Err(bad("Valid field 'requests' must name at least one object"));
    }
    if requests.len() > MAX_BATCH {
        return Err(bad(format!(
            "Valid field 'requests' must name at most {MAX_BATCH} objects"
        )));
    }
    requests
        .iter()
        .map(|r| {
            r["objectKey"]
                .as_str()
                .filter(|k| !k.is_empty())
                .map(String::from)
                .ok_or_else(|| bad("Valid field 'requests.objectKey' is required"))
        })
        .collect()
}

/// `application/json`, with or without parameters such as `charset`.
fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::Route;
    use axum::http::{HeaderMap, HeaderValue, Method};

    fn req(content_type: Option<&str>, body: &str) -> Req {
        let mut headers = HeaderMap::new();
        if let Some(c) = content_type {
            headers.insert("content-type", HeaderValue::from_str(c).expect("header"));
        }
        Req {
            route: Route::BatchSignedDownload { bucket: "b".into() },
            method: Method::POST,
            path: "/oss/v2/buckets/b/objects/batchsigneds3download".into(),
            query: Vec::new(),
            headers,
            body: body.to_string().into(),
            grant: None,
            received_ms: 0,
        }
    }

    fn requests(n: usize) -> String {
        let r: Vec<Value> = (0..n)
            .map(|i| json!({ "objectKey": format!("k{i}") }))
            .collect();
        json!({ "requests": r }).to_string()
    }

    fn refused(content_type: Option<&str>, body: &str) -> bool {
        matches!(
            requested_keys(&req(content_type, body)),
            Err(ApiError::Oss { status, .. }) if status == StatusCode::BAD_REQUEST
        )
    }

    #[test]
    fn keys_are_read_in_order_up_to_the_limit() {
        let keys = requested_keys(&req(Some("application/json"), &requests(MAX_BATCH)));
        let keys = keys.expect("25 keys are accepted");
        assert_eq!(keys.len(), MAX_BATCH);
        assert_eq!(keys[0], "k0");
        let with_charset = req(Some("Application/JSON; charset=utf-8"), &requests(1));
        assert_eq!(requested_keys(&with_charset).expect("ok"), vec!["k0"]);
    }

    #[test]
    fn bad_batches_are_400() {
        let json = Some("application/json");
        assert!(refused(json, &requests(MAX_BATCH + 1)), "26 keys");
        assert!(refused(json, &requests(0)), "no keys");
        assert!(refused(json, ""), "no body");
        assert!(refused(json, "{\"requests\":"), "not JSON");
        assert!(refused(json, "{\"requests\":{}}"), "requests not an array");
        assert!(
            refused(json, "{\"requests\":[{\"key\":\"a\"}]}"),
            "no objectKey"
        );
        assert!(
            refused(json, "{\"requests\":[{\"objectKey\":\"\"}]}"),
            "empty key"
        );
        assert!(
            refused(json, "{\"requests\":[{\"objectKey\":7}]}"),
            "key not text"
        );
        assert!(
            refused(Some("text/plain"), &requests(1)),
            "not JSON content"
        );
        assert!(refused(None, &requests(1)), "no content type");
    }
}
