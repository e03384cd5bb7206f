//! OSS v2: buckets, objects, details, signed download URLs and the three-step signed upload.

use super::bytes::{
    check_object_access, not_modified, object_etag, sha1_of, signature, signed_download_url,
};
use super::{oss_json, read, write, Answer};
use crate::app::{App, Upload};
use crate::clock::iso_seconds;
use crate::content::Content;
use crate::errors::ApiError;
use crate::ids::{random_token, OBJECT_PREFIX};
use crate::request::Req;
use crate::router::UPLOAD_PREFIX;
use crate::segment::seg;
use crate::stats::Made;
use crate::store::{Access, Bucket, Object, DM_BUCKET};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use std::collections::BTreeMap;
use std::ops::Bound;

/// S3's minimum size of every part but the last.
const MIN_PART: usize = 5 << 20;
/// Chunk size `signeds3download` reports for unmerged uploads.
const CHUNKED_PART: u64 = 5 << 20;
/// Upload sessions expire 24 hours after they start.
const UPLOAD_TTL_MS: i64 = 24 * 3600 * 1000;

/// 400 in the OSS error shape.
pub(super) fn bad(reason: impl Into<String>) -> ApiError {
    ApiError::oss(StatusCode::BAD_REQUEST, reason)
}

fn list_limit(req: &Req) -> Result<usize, ApiError> {
    match req.q("limit") {
        None => Ok(10),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => Ok(n),
            _ => Err(bad("Invalid limit")),
        },
    }
}

/// `minutesExpiration` of a signing request: 1–60, 2 when omitted.
pub(super) fn minutes(req: &Req) -> Result<i64, ApiError> {
    match req.q("minutesExpiration") {
        None => Ok(2),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=60).contains(&n) => Ok(n),
            _ => Err(bad("minutesExpiration must be between 1 and 60")),
        },
    }
}

fn valid_bucket_key(k: &str) -> bool {
    (3..=128).contains(&k.len())
        && k.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"-_.".contains(&c))
}

/// The regions OSS knows (§7.1); buckets live in exactly one of them.
const REGIONS: [&str; 8] = ["US", "EMEA", "AUS", "CAN", "DEU", "IND", "JPN", "GBR"];

/// The region a request names: the `region` header wins over its legacy spelling
/// `x-ads-region` and over the `region` query parameter; US when none is given.
fn region_of(req: &Req) -> Result<String, ApiError> {
    let r = req
        .header("region")
        .or_else(|| req.header("x-ads-region"))
        .or_else(|| req.q("region"))
        .unwrap_or("US");
    if REGIONS.contains(&r) {
        Ok(r.to_string())
    } else {
        Err(bad(format!(
            "Invalid region '{r}': must be one of {}",
            REGIONS.join(", ")
        )))
    }
}

fn bucket_json(key: &str, b: &Bucket) -> Value {
    // The owner is always listed first with full access, as the real service adds it.
    let mut permissions = vec![json!({ "authId": b.owner, "access": "full" })];
    permissions.extend(
        b.allow
            .iter()
            .map(|(id, a)| json!({ "authId": id, "access": a.as_str() })),
    );
    json!({
        "bucketKey": key,
        "bucketOwner": b.owner,
        "createdDate": b.created_ms,
        "permissions": permissions,
        "policyKey": b.policy,
    })
}

fn location(app: &App, bucket: &str, key: &str) -> String {
    format!(
        "{}/oss/v2/buckets/{}/objects/{}",
        app.base,
        seg(bucket),
        seg(key)
    )
}

/// `GET /oss/v2/buckets` — the app's own buckets in one region, `startAt` paging with an
/// absolute `next`.
pub fn list_buckets(app: &App, req: &Req) -> Answer {
    let limit = list_limit(req)?;
    let region = region_of(req)?;
    let store = read(app)?;
    let after = req
        .q("startAt")
        .map(|s| Bound::Excluded(s.to_string()))
        .unwrap_or(Bound::Unbounded);
    let mut mine = store
        .buckets
        .range::<String, _>((after, Bound::Unbounded))
        .filter(|(_, b)| b.owner == req.client_id() && !b.deleted && b.region == region);
    let items: Vec<Value> = mine
        .by_ref()
        .take(limit)
        .map(|(k, b)| json!({ "bucketKey": k, "createdDate": b.created_ms, "policyKey": b.policy }))
        .collect();
    let mut body = json!({ "items": items });
    if mine.next().is_some() {
        if let Some(last) = items.last().and_then(|i| i["bucketKey"].as_str()) {
            let q = form_urlencoded::Serializer::new(String::new())
                .append_pair("region", &region)
                .append_pair("startAt", last)
                .append_pair("limit", &limit.to_string())
                .finish();
            body["next"] = json!(format!("{}/oss/v2/buckets?{q}", app.base));
        }
    }
    Ok(oss_json(StatusCode::OK, body))
}

/// The `allow` list of a create request: other apps and what they may do.
fn allow_list(v: &Value, owner: &str) -> Result<Vec<(String, Access)>, ApiError> {
    let entries = match &v["allow"] {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        _ => return Err(bad("Valid field 'allow' must be an array")),
    };
    let mut out: Vec<(String, Access)> = Vec::new();
    for e in entries {
        let id = e["authId"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("Valid field 'allow.authId' is required"))?;
        let access = e["access"]
            .as_str()
            .and_then(Access::parse)
            .ok_or_else(|| bad("Valid field 'allow.access' must be one of full, read"))?;
        // The owner always has full access already; a repeated app keeps its widest grant.
        if id == owner {
            continue;
        }
        match out.iter_mut().find(|(k, _)| k == id) {
            Some((_, a)) => *a = (*a).max(access),
            None => out.push((id.to_string(), access)),
        }
    }
    Ok(out)
}

/// `POST /oss/v2/buckets` — 200 (not 201), 400 for a bad key, region or allow list, 409 when
/// taken (also by a bucket marked for deletion: keys are not immediately reusable).
pub fn create_bucket(app: &App, req: &Req) -> Answer {
    let v: Value =
        serde_json::from_slice(&req.body).map_err(|e| bad(format!("Invalid JSON body: {e}")))?;
    let key = v["bucketKey"].as_str().unwrap_or("");
    if !valid_bucket_key(key) {
        return Err(bad(
            "Valid field 'bucketKey' must be of the form  [-_.a-z0-9]{3,128}",
        ));
    }
    let policy = v["policyKey"].as_str().unwrap_or("transient");
    if !["transient", "temporary", "persistent"].contains(&policy) {
        return Err(bad(
            "Valid field 'policyKey' must be one of transient, temporary, persistent",
        ));
    }
    let region = region_of(req)?;
    let owner = req.client_id().to_string();
    let allow = allow_list(&v, &owner)?;
    let mut store = write(app)?;
    if store.buckets.contains_key(key) {
        return Err(ApiError::oss(StatusCode::CONFLICT, "Bucket already exists"));
    }
    let mut b = Bucket::new(owner, policy.to_string(), app.clock.now_ms(), region);
    b.allow = allow;
    let body = bucket_json(key, &b);
    store.buckets.insert(key.to_string(), b);
    Ok(oss_json(StatusCode::OK, body))
}

/// A live bucket `req`'s app may use with at least `need` access: 404 when it does not exist
/// or is marked for deletion, 403 when the app was not allowed in (or only to read).
fn bucket_for<'s>(
    store: &'s crate::store::Store,
    req: &Req,
    bucket: &str,
    need: Access,
) -> Result<&'s Bucket, ApiError> {
    let b = store
        .bucket(bucket)
        .ok_or_else(|| ApiError::oss(StatusCode::NOT_FOUND, "Bucket not found"))?;
    match b.access(req.client_id()) {
        Some(a) if a >= need => Ok(b),
        Some(_) => Err(ApiError::oss(
            StatusCode::FORBIDDEN,
            "Access denied: read-only access to this bucket",
        )),
        None => Err(ApiError::oss(
            StatusCode::FORBIDDEN,
            "Access denied: not the bucket owner",
        )),
    }
}

/// `GET /oss/v2/buckets/:b/details` — owner and allowed apps.
pub fn bucket_details(app: &App, req: &Req, bucket: &str) -> Answer {
    let store = read(app)?;
    let b = bucket_for(&store, req, bucket, Access::Read)?;
    Ok(oss_json(StatusCode::OK, bucket_json(bucket, b)))
}

/// `DELETE /oss/v2/buckets/:b` — owner only. The bucket is marked for deletion, not removed:
/// it is gone for every other request at once, a second delete answers 409 and its key
/// stays taken (§7.4).
pub fn delete_bucket(app: &App, req: &Req, bucket: &str) -> Answer {
    let mut store = write(app)?;
    let b = store
        .buckets
        .get_mut(bucket)
        .ok_or_else(|| ApiError::oss(StatusCode::NOT_FOUND, "Bucket not found"))?;
    if b.deleted {
        return Err(ApiError::oss(
            StatusCode::CONFLICT,
            "Bucket already marked for deletion",
        ));
    }
    if b.owner != req.client_id() {
        return Err(ApiError::oss(
            StatusCode::FORBIDDEN,
            "Access denied: not the bucket owner",
        ));
    }
    b.deleted = true;
    // Nothing can reach the objects any more, so their bytes (and hashes) are let go now.
    let keys: Vec<String> = std::mem::take(&mut b.objects).into_keys().collect();
    drop(store);
    if let Ok(mut m) = app.sha1s.lock() {
        for k in keys {
            m.remove(&format!("{bucket}/{k}"));
        }
    }
    Ok(StatusCode::OK.into_response())
}

/// `GET /oss/v2/buckets/:b/objects` — owner and allowed apps; `beginsWith`, `startAt`,
/// `limit`. Every item carries its `sha1` when the object is small enough to hash.
pub async fn list_objects(app: &App, req: &Req, bucket: &str) -> Answer {
    let limit = list_limit(req)?;
    let prefix = req.q("beginsWith").unwrap_or("");
    // The page is copied out so the store lock is not held while hashing.
    let (page, more) = {
        let store = read(app)?;
        let b = bucket_for(&store, req, bucket, Access::Read)?;
        let after = req
            .q("startAt")
            .map(|s| Bound::Excluded(s.to_string()))
            .unwrap_or(Bound::Unbounded);
        let mut it = b
            .objects
            .range::<String, _>((after, Bound::Unbounded))
            .filter_map(|(k, o)| {
                let c = o.content.as_ref()?;
                k.starts_with(prefix).then(|| (k.clone(), c.clone()))
            });
        let page: Vec<(String, Content)> = it.by_ref().take(limit).collect();
        (page, it.next().is_some())
    };
    let mut items = Vec::with_capacity(page.len());
    for (k, content) in &page {
        let mut item = json!({
            "bucketKey": bucket,
            "objectKey": k,
            "objectId": format!("{OBJECT_PREFIX}{bucket}/{k}"),
            "size": content.size(),
            "location": location(app, bucket, k),
        });
        // Omitted, not null, for objects too large to hash, as details does.
        if let Some(s) = sha1_of(app, bucket, k, content).await {
            item["sha1"] = json!(s);
        }
        items.push(item);
    }
    let mut body = json!({ "items": items });
    if more {
        if let Some((last, _)) = page.last() {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("startAt", last)
                .append_pair("limit", &limit.to_string());
            if !prefix.is_empty() {
                q.append_pair("beginsWith", prefix);
            }
            body["next"] = json!(format!(
                "{}/oss/v2/buckets/{}/objects?{}",
                app.base,
                seg(bucket),
                q.finish()
            ));
        }
    }
    Ok(oss_json(StatusCode::OK, body))
}

/// An object whose bytes have been uploaded, as the signing and details routes need it.
pub(super) struct Stored {
    content: Content,
    created_ms: i64,
    content_type: String,
    /// An unmerged resumable upload (`signeds3download` answers `chunked`).
    chunked: bool,
}

/// The uploaded object `bucket/key`, or the 404 the single-object routes answer.
pub(super) fn stored_object(app: &App, bucket: &str, key: &str) -> Result<Stored, ApiError> {
    let store = read(app)?;
    let o = store
        .object(bucket, key)
        .ok_or_else(|| ApiError::oss(StatusCode::NOT_FOUND, "Object not found"))?;
    let content = o
        .content
        .clone()
        .ok_or_else(|| ApiError::oss(StatusCode::NOT_FOUND, "Object has not been uploaded yet"))?;
    Ok(Stored {
        content,
        created_ms: o.created_ms,
        content_type: o.content_type.clone(),
        chunked: o.chunked,
    })
}

fn readable_object(app: &App, req: &Req, bucket: &str, key: &str) -> Result<Stored, ApiError> {
    check_object_access(app, req, bucket)?;
    stored_object(app, bucket, key)
}

/// `GET …/objects/:k/details`, with `with=` extras and `If-Modified-Since` → 304.
pub async fn object_details(app: &App, req: &Req, bucket: &str, key: &str) -> Answer {
    let Stored {
        content,
        created_ms,
        content_type: ctype,
        ..
    } = readable_object(app, req, bucket, key)?;
    if let Some(since) = req
        .header("if-modified-since")
        .and_then(crate::clock::parse_http_date)
    {
        if created_ms.div_euclid(1000) * 1000 <= since {
            return Ok(StatusCode::NOT_MODIFIED.into_response());
        }
    }
    let mut body = json!({
        "bucketKey": bucket,
        "objectId": format!("{OBJECT_PREFIX}{bucket}/{key}"),
        "objectKey": key,
        "size": content.size(),
        "contentType": ctype,
        "location": location(app, bucket, key),
    });
    if let Some(s) = sha1_of(app, bucket, key, &content).await {
        body["sha1"] = json!(s);
    }
    for (k, v) in &req.query {
        if k == "with" {
            match v.as_str() {
                "createdDate" | "lastModifiedDate" | "lastAccessedDate" => {
                    body[v.as_str()] = json!(created_ms)
                }
                "userDefinedMetadata" => body["userDefinedMetadata"] = json!(null),
                _ => {}
            }
        }
    }
    Ok(oss_json(StatusCode::OK, body))
}

/// `GET …/objects/:k/signeds3download` — a URL the emulator itself serves, valid for
/// `minutesExpiration`; unmerged uploads answer `chunked` (or `fallback` when asked);
/// `If-None-Match` with the object's `ETag` or `If-Modified-Since` → 304 without a body.
pub async fn signed_download(app: &App, req: &Req, bucket: &str, key: &str) -> Answer {
    let mins = minutes(req)?;
    let stored = readable_object(app, req, bucket, key)?;
    if req.header("if-none-match").is_some() || req.header("if-modified-since").is_some() {
        let tag = object_etag(app, bucket, key, &stored.content, stored.created_ms).await;
        if not_modified(req, &tag, stored.created_ms) {
            let mut r = StatusCode::NOT_MODIFIED.into_response();
            if let Ok(v) = HeaderValue::from_str(&tag) {
                r.headers_mut().insert(header::ETAG, v);
            }
            return Ok(r);
        }
    }
    Ok(oss_json(
        StatusCode::OK,
        download_body(app, req, bucket, key, &stored, mins).await,
    ))
}

/// The `signeds3download` answer for one object (`status`, `url` or `urls`, `params`, `size`,
/// `sha1`), shared by the single and the batch call so both sign alike.
pub(super) async fn download_body(
    app: &App,
    req: &Req,
    bucket: &str,
    key: &str,
    stored: &Stored,
    mins: i64,
) -> Value {
    let size = stored.content.size();
    let expires = app.clock.now_ms() / 1000 + url_lifetime(app, mins);
    let name = key.rsplit('/').next().unwrap_or(key).replace('"', "");
    let ctype = req
        .q("response-content-type")
        .map(String::from)
        .unwrap_or_else(|| stored.content_type.clone());
    let disposition = req
        .q("response-content-disposition")
        .map(String::from)
        .unwrap_or_else(|| format!("attachment; filename=\"{name}\""));
    let mut response_params: Vec<(&str, &str)> = Vec::new();
    if let Some(v) = req.q("response-content-type") {
        response_params.push(("response-content-type", v));
    }
    if let Some(v) = req.q("response-content-disposition") {
        response_params.push(("response-content-disposition", v));
    }
    let mut body = json!({
        "params": { "content-type": ctype, "content-disposition": disposition },
        "size": size,
    });
    if let Some(s) = sha1_of(app, bucket, key, &stored.content).await {
        body["sha1"] = json!(s);
    }
    if stored.chunked && req.q("public-resource-fallback") != Some("true") {
        let mut urls = serde_json::Map::new();
        let mut a = 0;
        while a < size {
            let b = (a + CHUNKED_PART).min(size) - 1;
            urls.insert(
                format!("{a}-{b}"),
                json!(signed_download_url(
                    app,
                    bucket,
                    key,
                    expires,
                    Some((a, b)),
                    &response_params
                )),
            );
            a = b + 1;
        }
        body["status"] = json!("chunked");
        body["urls"] = Value::Object(urls);
    } else {
        body["status"] = json!(if stored.chunked {
            "fallback"
        } else {
            "complete"
        });
        body["url"] = json!(signed_download_url(
            app,
            bucket,
            key,
            expires,
            None,
            &response_params
        ));
    }
    body
}

/// Seconds a signed URL asked for `mins` minutes lives: `url_ttl_secs` caps it (download and
/// upload URLs alike), so a test sees URLs expire in the middle of a transfer.
fn url_lifetime(app: &App, mins: i64) -> i64 {
    match app.faults.get().url_ttl_secs {
        0 => mins * 60,
        cap => (mins * 60).min(i64::try_from(cap).unwrap_or(i64::MAX)),
    }
}

/// The Data Management bucket accepts uploads only to placeholders made by `POST storage`, and
/// not while that project is read-only; other buckets only from their owner and apps allowed
/// full access. Returns the placeholder's project, carried to the completed object.
fn check_upload_target(
    app: &App,
    req: &Req,
    bucket: &str,
    key: &str,
) -> Result<Option<usize>, ApiError> {
    let store = read(app)?;
    if bucket != DM_BUCKET {
        return bucket_for(&store, req, bucket, Access::Full).map(|_| None);
    }
    let o = store.object(bucket, key).ok_or_else(|| {
        ApiError::oss(
            StatusCode::NOT_FOUND,
            "Object not found: create storage first",
        )
    })?;
    let read_only = o
        .project
        .and_then(|p| store.projects.get(p))
        .is_some_and(|p| p.read_only);
    if read_only {
        return Err(ApiError::oss(
            StatusCode::FORBIDDEN,
            "Access denied: no permission to write to this project's storage",
        ));
    }
    Ok(o.project)
}

fn part_message(upload: &str, part: &str, expires: &str) -> String {
    format!("PUT\n{upload}\n{part}\n{expires}")
}

/// `GET …/signeds3upload` — starts (or continues) an upload and signs up to 25 part URLs.
pub fn upload_start(app: &App, req: &Req, bucket: &str, key: &str) -> Answer {
    let num = |name: &str, default: u32| -> Result<u32, ApiError> {
        match req.q(name) {
            None => Ok(default),
            Some(s) => s
                .parse()
                .map_err(|_| bad(format!("{name} must be a positive integer"))),
        }
    };
    let parts = num("parts", 1)?;
    let first = num("firstPart", 1)?;
    if !(1..=25).contains(&parts) {
        return Err(bad("parts must be between 1 and 25"));
    }
    if !(1..=10_000).contains(&first) || first + parts - 1 > 10_000 {
        return Err(bad("firstPart must be between 1 and 10000"));
    }
    let mins = minutes(req)?;
    check_upload_target(app, req, bucket, key)?;
    let now = app.clock.now_ms();
    let ttl = url_lifetime(app, mins);
    let mut uploads = app.uploads.lock().map_err(|_| {
        ApiError::oss(
            StatusCode::INTERNAL_SERVER_ERROR,
            "upload table unavailable",
        )
    })?;
    uploads.retain(|_, u| u.started_ms + UPLOAD_TTL_MS > now);
    let upload_key = match req.q("uploadKey") {
        Some(k) => match uploads.get(k) {
            Some(u) if u.bucket == bucket && u.key == key => k.to_string(),
            _ => {
                return Err(ApiError::oss(
                    StatusCode::NOT_FOUND,
                    "Upload not found or expired",
                ))
            }
        },
        None => {
            let k = random_token(48);
            uploads.insert(
                k.clone(),
                Upload {
                    bucket: bucket.into(),
                    key: key.into(),
                    parts: BTreeMap::new(),
                    started_ms: now,
                },
            );
            k
        }
    };
    let started = uploads
        .get(&upload_key)
        .map(|u| u.started_ms)
        .unwrap_or(now);
    let expires = (now / 1000 + ttl).to_string();
    let urls: Vec<String> = (first..first + parts)
        .map(|n| {
            let sig = signature(app, &part_message(&upload_key, &n.to_string(), &expires));
            format!(
                "{}{UPLOAD_PREFIX}{upload_key}?partNumber={n}&Expires={expires}&Signature={sig}",
                app.base
            )
        })
        .collect();
    Ok(oss_json(
        StatusCode::OK,
        json!({
            "uploadKey": upload_key,
            "uploadExpiration": iso_seconds(started + UPLOAD_TTL_MS),
            "urlExpiration": iso_seconds((now / 1000 + ttl) * 1000),
            "urls": urls,
        }),
    ))
}

fn part_etag(b: &[u8]) -> String {
    let d = Sha1::digest(b);
    format!(
        "\"{}\"",
        d[..16]
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    )
}

/// `PUT` of a signed part URL: stores the part and answers its `ETag`, like S3.
pub fn upload_part(app: &App, req: &Req, upload: &str) -> Answer {
    let denied = |m: &'static str| ApiError::S3 {
        status: StatusCode::FORBIDDEN,
        code: "AccessDenied",
        message: m,
    };
    let part = req.q("partNumber").unwrap_or("");
    let expires = req.q("Expires").unwrap_or("");
    if req.q("Signature") != Some(signature(app, &part_message(upload, part, expires)).as_str()) {
        return Err(denied(
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    // When the request arrived, not when its (maybe paced) body was in: S3 lets a transfer
    // that started in time finish.
    if expires
        .parse::<i64>()
        .map_or(true, |e| req.received_ms / 1000 >= e)
    {
        return Err(denied("Request has expired"));
    }
    let n: u32 = part.parse().map_err(|_| denied("Bad part number"))?;
    let mut uploads = app.uploads.lock().map_err(|_| {
        ApiError::oss(
            StatusCode::INTERNAL_SERVER_ERROR,
            "upload table unavailable",
        )
    })?;
    let u = uploads.get_mut(upload).ok_or(ApiError::S3 {
        status: StatusCode::NOT_FOUND,
        code: "NoSuchUpload",
        message: "The specified upload does not exist.",
    })?;
    // A part PUT again (after its URL was signed again) replaces the earlier one, as in S3.
    let tag = part_etag(&req.body);
    u.parts.insert(n, req.body.clone());
    drop(uploads);
    app.stats.part(req.body.len() as u64);
    let mut r = StatusCode::OK.into_response();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    Ok(r)
}

/// `POST …/signeds3upload` — checks the parts like S3 would and makes the object visible.
///
/// The session ends with this call, whatever its outcome, so a second completion with the same
/// `uploadKey` (after a success or a failure) answers 404 "Upload not found". What OSS does
/// then is UNCONFIRMED (not in the reference, §7.8; nor the status of a failed completion,
/// §14); S3, which OSS hands the parts to, answers `NoSuchUpload` for a completed upload. It
/// is also the stricter choice for a client: one that lost the answer must look at the object
/// (or start over), never assume a retry of the completion succeeds.
pub fn upload_complete(app: &App, req: &Req, bucket: &str, key: &str) -> Answer {
    if req.header("content-type") != Some("application/json") {
        return Err(bad("Content-Type must be application/json"));
    }
    let v: Value =
        serde_json::from_slice(&req.body).map_err(|e| bad(format!("Invalid JSON body: {e}")))?;
    let upload_key = v["uploadKey"]
        .as_str()
        .ok_or_else(|| bad("uploadKey is required"))?;
    let project = check_upload_target(app, req, bucket, key)?;
    let upload = {
        let mut uploads = app.uploads.lock().map_err(|_| {
            ApiError::oss(
                StatusCode::INTERNAL_SERVER_ERROR,
                "upload table unavailable",
            )
        })?;
        match uploads.get(upload_key) {
            Some(u)
                if u.bucket == bucket
                    && u.key == key
                    && u.started_ms + UPLOAD_TTL_MS > app.clock.now_ms() => {}
            _ => {
                return Err(ApiError::oss(
                    StatusCode::NOT_FOUND,
                    "Upload not found or expired",
                ))
            }
        }
        uploads
            .remove(upload_key)
            .map(|u| u.parts)
            .unwrap_or_default()
    };
    let etags: Vec<&str> = v["eTags"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let last = upload.keys().next_back().copied().unwrap_or(0);
    let mut problems = false;
    let mut report = Vec::new();
    for n in 1..=last.max(1) {
        let status = match upload.get(&n) {
            None => "Pending".to_string(),
            Some(b) => {
                let mut s = Vec::new();
                if let Some(want) = etags.get(n as usize - 1) {
                    if want.trim_matches('"') != part_etag(b).trim_matches('"') {
                        s.push("Unexpected");
                    }
                }
                if n != last && b.len() < MIN_PART {
                    s.push("TooSmall");
                }
                if s.is_empty() {
                    "Ok".into()
                } else {
                    s.join("+")
                }
            }
        };
        problems |= status != "Ok";
        report.push(json!({
            "part": n,
            "size": upload.get(&n).map(Bytes::len).unwrap_or(0),
            "eTag": upload.get(&n).map(|b| part_etag(b)),
            "status": status,
        }));
    }
    let total: usize = upload.values().map(Bytes::len).sum();
    let expected = v["size"].as_u64();
    if problems || expected.is_some_and(|e| e != total as u64) {
        // The session is gone either way (see above): the parts are discarded.
        return Ok(oss_json(
            StatusCode::BAD_REQUEST,
            json!({
                "uploadKey": upload_key,
                "status": "error",
                "reason": "MissingOrInvalidParts",
                "size": { "expected": expected, "detected": total },
                "parts": report,
            }),
        ));
    }
    let mut all = BytesMut::with_capacity(total);
    for b in upload.values() {
        all.extend_from_slice(b);
    }
    let ctype = req
        .header("x-ads-meta-content-type")
        .unwrap_or("application/octet-stream")
        .to_string();
    let now = app.clock.now_ms();
    {
        let mut store = write(app)?;
        store.put_object(
            bucket,
            key.to_string(),
            Object {
                content: Some(Content::Memory(all.freeze())),
                created_ms: now,
                content_type: ctype.clone(),
                chunked: false,
                project,
            },
        );
    }
    app.stats.made(Made::Upload);
    if let Ok(mut m) = app.sha1s.lock() {
        m.remove(&format!("{bucket}/{key}"));
    }
    Ok(oss_json(
        StatusCode::OK,
        json!({
            "bucketKey": bucket,
            "objectId": format!("{OBJECT_PREFIX}{bucket}/{key}"),
            "objectKey": key,
            "size": total,
            "contentType": ctype,
            "location": location(app, bucket, key),
        }),
    ))
}

/// `DELETE …/objects/:k` — owner and apps allowed full access.
pub fn delete_object(app: &App, req: &Req, bucket: &str, key: &str) -> Answer {
    let mut store = write(app)?;
    bucket_for(&store, req, bucket, Access::Full)?;
    let removed = store
        .buckets
        .get_mut(bucket)
        .and_then(|b| b.objects.remove(key))
        .is_some();
    if !removed {
        return Err(ApiError::oss(StatusCode::NOT_FOUND, "Object not found"));
    }
    drop(store);
    if let Ok(mut m) = app.sha1s.lock() {
        m.remove(&format!("{bucket}/{key}"));
    }
    Ok(StatusCode::OK.into_response())
}
