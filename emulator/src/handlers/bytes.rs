//! Object bytes: the signed URLs the emulator hands out (standing in for S3/CloudFront, so
//! they take no token, honour `Range` and expire), and the deprecated direct download.

use super::{read, Answer};
use crate::app::App;
use crate::clock::{http_date, parse_http_date};
use crate::content::{parse_range, Content};
use crate::errors::ApiError;
use crate::faults;
use crate::request::Req;
use crate::router::SIGNED_PREFIX;
use crate::segment::seg;
use crate::store::DM_BUCKET;
use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Query parameters that are covered by the signature.
const SIGNED_PARAMS: [&str; 4] = [
    "Expires",
    "part",
    "response-content-type",
    "response-content-disposition",
];

/// Signs `message` with the emulator's key (hex, truncated; unforgeable without the key).
pub fn signature(app: &App, message: &str) -> String {
    let mut h = Sha256::new();
    h.update(app.signing_key);
    h.update(message.as_bytes());
    h.finalize()[..20]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn download_message(bucket: &str, key: &str, params: &[(&str, &str)]) -> String {
    let mut m = format!("GET\n{bucket}\n{key}");
    for name in SIGNED_PARAMS {
        let v = params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .unwrap_or("");
        m.push('\n');
        m.push_str(v);
    }
    m
}

/// A signed download URL for `bucket/key`, valid until `expires_s` (epoch seconds); `part`
/// restricts it to one chunk of an unmerged upload.
pub fn signed_download_url(
    app: &App,
    bucket: &str,
    key: &str,
    expires_s: i64,
    part: Option<(u64, u64)>,
    response_params: &[(&str, &str)],
) -> String {
    let exp = expires_s.to_string();
    let part_s = part.map(|(a, b)| format!("{a}-{b}"));
    let mut params: Vec<(&str, &str)> = vec![("Expires", &exp)];
    if let Some(p) = &part_s {
        params.push(("part", p));
    }
    params.extend_from_slice(response_params);
    let sig = signature(app, &download_message(bucket, key, &params));
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.extend_pairs(params.iter());
    q.append_pair("Signature", &sig);
    q.append_pair("Key-Pair-Id", "APSFSEMULATOR");
    format!(
        "{}{SIGNED_PREFIX}{}/{}?{}",
        app.base,
        seg(bucket),
        seg(key),
        q.finish()
    )
}

fn denied(message: &'static str) -> ApiError {
    ApiError::S3 {
        status: StatusCode::FORBIDDEN,
        code: "AccessDenied",
        message,
    }
}

/// `GET` of a signed URL; `faulty` applies the byte-body faults (the main listener), the
/// foreign origin serves the bytes plainly.
pub async fn signed_get(
    app: &Arc<App>,
    req: &Req,
    bucket: &str,
    key: &str,
    faulty: bool,
) -> Answer {
    let params: Vec<(&str, &str)> = SIGNED_PARAMS
        .iter()
        .filter_map(|n| req.q(n).map(|v| (*n, v)))
        .collect();
    let sig = req
        .q("Signature")
        .ok_or_else(|| denied("Missing signature"))?;
    if sig != signature(app, &download_message(bucket, key, &params)) {
        return Err(denied(
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    let expires: i64 = req
        .q("Expires")
        .and_then(|e| e.parse().ok())
        .ok_or_else(|| denied("Missing expiry"))?;
    if app.clock.now_ms() / 1000 >= expires {
        return Err(denied("Request has expired"));
    }
    let (content, created_ms, ctype) = object_content(app, bucket, key, |m| ApiError::S3 {
        status: StatusCode::NOT_FOUND,
        code: "NoSuchKey",
        message: m,
    })?;
    let window = match req.q("part").and_then(|p| p.split_once('-')) {
        Some((a, b)) => {
            let (a, b): (u64, u64) = (a.parse().unwrap_or(0), b.parse().unwrap_or(0));
            (
                a,
                b.saturating_sub(a)
                    .saturating_add(1)
                    .min(content.size().saturating_sub(a)),
            )
        }
        None => (0, content.size()),
    };
    if faulty && app.faults.get().range_ignored {
        app.stats.injected("range_ignored");
        return Ok(proxy_page(req, window.1));
    }
    let ctype = req.q("response-content-type").unwrap_or(&ctype).to_string();
    let disposition = req.q("response-content-disposition").map(String::from);
    // A chunk URL of an unmerged upload serves a part, which is not the object's content.
    let tag = if window == (0, content.size()) {
        object_etag(app, bucket, key, &content, created_ms).await
    } else {
        etag(key, window.1, created_ms)
    };
    serve(
        app,
        req,
        content,
        window,
        (&tag, created_ms),
        (&ctype, disposition),
        key,
        faulty,
    )
}

/// The `range_ignored` answer: 200, whatever `Range` asked, with an HTML page (size + 4096
/// bytes) where the object should be, and no `Content-Range`.
fn proxy_page(req: &Req, size: u64) -> Response {
    let len = size.saturating_add(4096);
    let body = if req.method == Method::HEAD {
        Body::empty()
    } else {
        Body::from_stream(faults::html_page(len))
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}

/// Deprecated `GET /oss/v2/buckets/:b/objects/:k` — same byte semantics, token required.
pub async fn legacy_get(app: &Arc<App>, req: &Req, bucket: &str, key: &str) -> Answer {
    check_object_access(app, req, bucket)?;
    let (content, created_ms, ctype) = object_content(app, bucket, key, |m| {
        ApiError::oss(StatusCode::NOT_FOUND, m)
    })?;
    let size = content.size();
    let name = key.rsplit('/').next().unwrap_or(key);
    let disposition = format!("attachment; filename=\"{}\"", name.replace('"', ""));
    let tag = object_etag(app, bucket, key, &content, created_ms).await;
    serve(
        app,
        req,
        content,
        (0, size),
        (&tag, created_ms),
        (&ctype, Some(disposition)),
        key,
        true,
    )
}

/// Apps may read the Data Management bucket's objects (through their items), their own
/// buckets and buckets whose `allow` list names them; nobody else's.
pub fn check_object_access(app: &App, req: &Req, bucket: &str) -> Result<(), ApiError> {
    let store = read(app)?;
    let b = store
        .bucket(bucket)
        .ok_or_else(|| ApiError::oss(StatusCode::NOT_FOUND, "Bucket not found"))?;
    if bucket != DM_BUCKET && b.access(req.client_id()).is_none() {
        return Err(ApiError::oss(
            StatusCode::FORBIDDEN,
            "Access denied: not the bucket owner",
        ));
    }
    Ok(())
}

fn object_content(
    app: &App,
    bucket: &str,
    key: &str,
    missing: impl Fn(&'static str) -> ApiError,
) -> Result<(Content, i64, String), ApiError> {
    let store = read(app)?;
    let o = store
        .object(bucket, key)
        .ok_or_else(|| missing("Object not found"))?;
    let c = o
        .content
        .clone()
        .ok_or_else(|| missing("Object has not been uploaded yet"))?;
    Ok((c, o.created_ms, o.content_type.clone()))
}

/// A stable stand-in entity tag, quoted hex of (key, size, creation time), for bytes whose
/// SHA-1 is not available (objects over the hashing limit, chunks of unmerged uploads).
pub fn etag(key: &str, size: u64, created_ms: i64) -> String {
    let d = Sha256::digest(format!("{key}\n{size}\n{created_ms}").as_bytes());
    let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// The object's `ETag`: the quoted SHA-1 hex of its content (§7.9) when `details` would report
/// a `sha1`, else the stand-in, so every path that shows a tag shows the same one.
pub async fn object_etag(
    app: &App,
    bucket: &str,
    key: &str,
    content: &Content,
    created_ms: i64,
) -> String {
    match sha1_of(app, bucket, key, content).await {
        Some(hex) => format!("\"{hex}\""),
        None => etag(key, content.size(), created_ms),
    }
}

/// Whether a conditional GET answers 304: `If-None-Match` naming `tag` (weak comparison, `*`
/// for any), or, only when no `If-None-Match` was sent (RFC 9110 §13.2.2),
/// `If-Modified-Since` at or after the last change (HTTP dates have whole seconds).
pub fn not_modified(req: &Req, tag: &str, modified_ms: i64) -> bool {
    if let Some(v) = req.header("if-none-match") {
        return v.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t.strip_prefix("W/").unwrap_or(t) == tag
        });
    }
    req.header("if-modified-since")
        .and_then(parse_http_date)
        .is_some_and(|since| modified_ms.div_euclid(1000) * 1000 <= since)
}

/// Objects up to this size get a `sha1` (computed once, cached); larger ones report none,
/// which the reference allows ("when available").
const SHA1_MAX: u64 = 64 << 20;

/// The object's SHA-1 (hex), computed once for objects up to `SHA1_MAX`; `None` for larger
/// ones, which the reference allows ("when available").
pub(super) async fn sha1_of(
    app: &App,
    bucket: &str,
    key: &str,
    content: &Content,
) -> Option<String> {
    let k = format!("{bucket}/{key}");
    if let Some(s) = app.sha1s.lock().ok().and_then(|m| m.get(&k).cloned()) {
        return Some(s);
    }
    if content.size() > SHA1_MAX {
        return None;
    }
    let bytes = content.read_all().await.ok()?;
    let hex: String = Sha1::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if let Ok(mut m) = app.sha1s.lock() {
        m.insert(k, hex.clone());
    }
    Some(hex)
}

/// Serves `window` = (offset, length) of `content` as an object of that length, tagged
/// (`ETag`, last change), with Range, conditional requests and (when `faulty`) the byte-body
/// faults.
#[allow(clippy::too_many_arguments)]
fn serve(
    app: &Arc<App>,
    req: &Req,
    content: Content,
    window: (u64, u64),
    (tag, created_ms): (&str, i64),
    (ctype, disposition): (&str, Option<String>),
    key: &str,
    faulty: bool,
) -> Answer {
    let (offset, size) = window;
    let mut headers = axum::http::HeaderMap::new();
    let mut put = |name: header::HeaderName, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            headers.insert(name, v);
        }
    };
    put(header::ETAG, tag);
    put(header::LAST_MODIFIED, &http_date(created_ms));
    put(header::ACCEPT_RANGES, "bytes");
    put(header::CONTENT_TYPE, ctype);
    if let Some(d) = &disposition {
        put(header::CONTENT_DISPOSITION, d);
    }
    if not_modified(req, tag, created_ms) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        r.headers_mut().extend(headers);
        return Ok(r);
    }
    let (status, start, end) = match parse_range(req.header("range"), size) {
        Ok(None) => (StatusCode::OK, 0, size),
        Ok(Some((a, b))) => {
            put(header::CONTENT_RANGE, &format!("bytes {a}-{b}/{size}"));
            (StatusCode::PARTIAL_CONTENT, a, b + 1)
        }
        Err(()) => {
            let mut r = ApiError::S3 {
                status: StatusCode::RANGE_NOT_SATISFIABLE,
                code: "InvalidRange",
                message: "The requested range is not satisfiable",
            }
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    let len = end - start;
    put(header::CONTENT_LENGTH, &len.to_string());
    let body = if req.method == Method::HEAD {
        Body::empty()
    } else {
        let mut stream = content.stream(offset + start, offset + end);
        let f = app.faults.get();
        if faulty {
            if app.faults.drop_body() {
                tracing::info!(key, "fault: cutting off a byte body");
                stream = faults::cut_off(stream, len);
            } else if app.faults.stall_body() {
                tracing::info!(key, "fault: stalling a byte body");
                stream = faults::stall(stream, len);
            }
            stream = faults::throttle(stream, f.bandwidth_mib);
        }
        let counter = app.clone();
        let stream = stream.inspect(move |c| {
            if let Ok(b) = c {
                counter.stats.bytes(b.len() as u64);
            }
        });
        Body::from_stream(stream)
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().extend(headers);
    Ok(r)
}
