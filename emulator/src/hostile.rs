//! The knobs of a hostile or broken server that act on whole requests and responses: redirects
//! (to the foreign origin or the same one), answers that lie or break the JSON they carry,
//! padded, endless and trickled bodies, and the `Retry-After` of injected 429s. The knobs
//! themselves, and the body streams, are in `faults`.

use super::app::App;
use super::errors::{ApiError, JSONAPI};
use super::faults::{self, ByteStream, FaultConfig, Redirect, REDIRECTED_MARKER};
use super::request::Req;
use super::router::Route;
use axum::body::{Body, HttpBody};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::Value;

/// Marks a response whose body never ends, so nothing tries to buffer or pad it.
#[derive(Clone, Copy)]
struct Unbounded;

/// The malformed `links.next.href` of `bad_next_link`.
pub const BAD_NEXT_HREF: &str = "http://[::1/data/v1/oops";

/// What `bad_entries` puts in the first item's name, as it appears in the JSON text.
pub const LONE_SURROGATE: &str = "\\ud800";

/// What `bad_entries` gives the second item's tip as `storageSize`, as it appears in the text.
pub const HUGE_NUMBER: &str = "1e400";

/// 9999-12-31T23:59:59Z: the last instant an IMF-fixdate (four-digit year) can spell, where a
/// `Retry-After` date far in the future is clamped.
const LAST_HTTP_DATE_MS: i64 = 253_402_300_799_000;

/// Placeholders serde_json can write, replaced in the serialized text by what it cannot. The
/// private-use characters make a clash with real data impossible in practice.
const SURROGATE_MARK: &str = "\u{e000}apsfs-lone-surrogate\u{e000}";
const NUMBER_MARK: &str = "\u{e000}apsfs-1e400\u{e000}";

/// A `307` for this request if the `redirect` knob says so. Under `api_same` a request that
/// carries the marker has it removed and is answered normally.
pub fn redirect(
    app: &App,
    f: &FaultConfig,
    req: &mut Req,
    raw_query: Option<&str>,
) -> Option<Response> {
    let same_path = |origin: &str| match raw_query {
        Some(q) => format!("{origin}{}?{q}", req.path),
        None => format!("{origin}{}", req.path),
    };
    let location = match f.redirect {
        Redirect::Off => return None,
        Redirect::ApiForeign if req.route.is_json_api() => same_path(&app.foreign),
        Redirect::ApiSame if req.route.is_json_api() => {
            if req.query.iter().any(|(k, _)| k == REDIRECTED_MARKER) {
                req.query.retain(|(k, _)| k != REDIRECTED_MARKER);
                return None;
            }
            let marker = format!("{REDIRECTED_MARKER}=1");
            match raw_query {
                Some(q) if !q.is_empty() => format!("{}{}?{q}&{marker}", app.base, req.path),
                _ => format!("{}{}?{marker}", app.base, req.path),
            }
        }
        Redirect::TokenForeign if req.route == Route::Token => {
            format!("{}{}", app.foreign, req.path)
        }
        Redirect::StorageForeign if matches!(req.route, Route::SignedGet { .. }) => {
            same_path(&app.foreign)
        }
        _ => return None,
    };
    let value = HeaderValue::from_str(&location).ok()?;
    app.stats.redirect();
    let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
    r.headers_mut().insert(header::LOCATION, value);
    Some(r)
}

/// The injected 429: `Retry-After` as `retry_after_secs` (1 when 0), or as the HTTP date that
/// many seconds from now.
pub fn throttled(f: &FaultConfig) -> Response {
    let secs = f.retry_after_secs.max(1);
    let mut r = ApiError::quota(secs).into_response();
    if f.retry_after_date {
        let ms = i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let at = chrono::Utc::now()
            .timestamp_millis()
            .saturating_add(ms)
            .min(LAST_HTTP_DATE_MS);
        if let Ok(v) = HeaderValue::from_str(&super::clock::http_date(at)) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

/// No answer at all: the connection is dropped before the status line (`drop_rate` on a part
/// PUT, whose bytes are then not stored).
pub fn severed() -> Response {
    let mut r = Response::new(Body::from_stream(faults::severed()));
    r.extensions_mut().insert(Unbounded);
    r
}

/// `answer` cut off half-way through its body and the connection dropped (`drop_rate` on a
/// write): the client sees the status but never the whole document. A bodiless answer is
/// dropped whole instead, as there is no half to send.
pub async fn cut(answer: Response) -> Response {
    let (mut parts, body) = answer.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return severed();
    };
    if bytes.is_empty() {
        return severed();
    }
    let len = bytes.len() as u64;
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    let whole: ByteStream = Box::pin(futures_util::stream::once(async move { Ok(bytes) }));
    let mut r = Response::from_parts(parts, Body::from_stream(faults::cut_off(whole, len)));
    r.extensions_mut().insert(Unbounded);
    r
}

/// The `endless_json` answer: a JSON:API start, then whitespace for as long as the client reads.
pub fn endless(app: &App) -> Response {
    app.stats.injected("endless_json");
    let mut r = Response::new(Body::from_stream(faults::endless()));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSONAPI));
    r.extensions_mut().insert(Unbounded);
    r
}

/// Applies the response knobs to an answer of the main listener (never a control route): the
/// lies and breakage of JSON:API documents, JSON padding, then trickling.
pub async fn shape(app: &App, route: &Route, f: &FaultConfig, resp: Response) -> Response {
    let unbounded = resp.extensions().get::<Unbounded>().is_some();
    let bytes_route = matches!(route, Route::SignedGet { .. } | Route::ObjectGet { .. });
    let ctype = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let json = !bytes_route && !unbounded && ctype.contains("json");
    let rewrite = json
        && ctype.starts_with(JSONAPI)
        && (f.object_count > 0
            || f.listed_size_offset != 0
            || f.bad_next_link
            || (f.bad_entries && matches!(route, Route::FolderContents { .. })));
    let resp = if rewrite {
        rewrite_document(app, route, f, resp).await
    } else {
        resp
    };
    let pad = json && f.json_padding_mib > 0;
    if !pad && f.trickle_ms == 0 {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut length = declared.or(body.size_hint().exact());
    let mut stream: ByteStream = Box::pin(
        body.into_data_stream()
            .map(|r| r.map_err(std::io::Error::other)),
    );
    if pad {
        app.stats.injected("json_padding");
        stream = faults::pad(stream, f.json_padding_mib);
        length = length.map(|n| n.saturating_add(f.json_padding_mib.saturating_mul(1 << 20)));
    }
    if f.trickle_ms > 0 {
        app.stats.injected("trickle");
        stream = faults::trickle(stream, f.trickle_ms);
    }
    match length {
        Some(n) if parts.status != StatusCode::NOT_MODIFIED && !unbounded => {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        _ => {}
    }
    Response::from_parts(parts, Body::from_stream(stream))
}

/// Rewrites a JSON:API document in memory (they are rendered in memory anyway): the lying
/// `objectCount` and sizes, the malformed next link, the broken entries.
async fn rewrite_document(app: &App, route: &Route, f: &FaultConfig, resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "body unavailable").into_response();
    };
    let Ok(mut doc) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let mut resources: Vec<&mut Value> = Vec::new();
    let Value::Object(top) = &mut doc else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    for (k, v) in top.iter_mut() {
        if k == "data" || k == "included" {
            match v {
                Value::Array(a) => resources.extend(a.iter_mut()),
                Value::Object(_) => resources.push(v),
                _ => {}
            }
        }
    }
    for res in resources {
        let kind = res.get("type").and_then(Value::as_str).map(str::to_owned);
        let Some(attrs) = res.get_mut("attributes").and_then(Value::as_object_mut) else {
            continue;
        };
        match kind.as_deref() {
            Some("folders") if f.object_count > 0 && attrs.contains_key("objectCount") => {
                attrs.insert("objectCount".into(), Value::from(f.object_count));
                app.stats.injected("object_count");
            }
            Some("versions") if f.listed_size_offset != 0 => {
                if let Some(size) = attrs.get("storageSize").and_then(Value::as_u64) {
                    let lie = offset(size, f.listed_size_offset);
                    attrs.insert("storageSize".into(), Value::from(lie));
                    app.stats.injected("listed_size_offset");
                }
            }
            _ => {}
        }
    }
    if f.bad_next_link {
        if let Some(next) = doc.pointer_mut("/links/next/href") {
            *next = Value::from(BAD_NEXT_HREF);
            app.stats.injected("bad_next_link");
        }
    }
    let broken =
        f.bad_entries && matches!(route, Route::FolderContents { .. }) && break_entries(&mut doc);
    let mut text = doc.to_string();
    if broken {
        text = text
            .replace(SURROGATE_MARK, LONE_SURROGATE)
            .replace(&format!("\"{NUMBER_MARK}\""), HUGE_NUMBER);
        app.stats.injected("bad_entries");
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(text))
}

/// `size + offset`, saturating at 0 and at `u64::MAX`.
fn offset(size: u64, offset: i64) -> u64 {
    if offset >= 0 {
        size.saturating_add(offset.unsigned_abs())
    } else {
        size.saturating_sub(offset.unsigned_abs())
    }
}

/// Puts the placeholders of `bad_entries` into a contents page with two items or more: the
/// first item's `displayName` and its tip's `name`/`displayName`, the second item's tip
/// `storageSize`. False when the page has fewer than two items.
fn break_entries(doc: &mut Value) -> bool {
    let tips: Vec<String> = doc["data"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter(|r| r["type"] == "items")
                .take(2)
                .map(|r| {
                    r["relationships"]["tip"]["data"]["id"]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    if tips.len() < 2 {
        return false;
    }
    let first = doc["data"]
        .as_array_mut()
        .and_then(|d| d.iter_mut().find(|r| r["type"] == "items"));
    if let Some(attrs) = first.and_then(|i| i.get_mut("attributes")) {
        mark_name(attrs, "displayName");
    }
    if let Some(included) = doc["included"].as_array_mut() {
        for v in included.iter_mut() {
            let id = v["id"].as_str().unwrap_or("").to_string();
            let Some(attrs) = v.get_mut("attributes").and_then(Value::as_object_mut) else {
                continue;
            };
            if !id.is_empty() && id == tips[0] {
                for key in ["name", "displayName"] {
                    if let Some(name) = attrs.get_mut(key) {
                        mark_name_value(name);
                    }
                }
            } else if !id.is_empty() && id == tips[1] {
                attrs.insert("storageSize".into(), Value::from(NUMBER_MARK));
            }
        }
    }
    true
}

/// `bad` + the surrogate placeholder + the name, in `attrs[key]` when it is text.
fn mark_name(attrs: &mut Value, key: &str) {
    if let Some(name) = attrs.get_mut(key) {
        mark_name_value(name);
    }
}

/// Turns a text `name` into `bad` + the surrogate placeholder + the name.
fn mark_name_value(name: &mut Value) {
    if let Some(n) = name.as_str() {
        *name = Value::from(format!("bad{SURROGATE_MARK}{n}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn retry_after_dates_stay_spellable() {
        let f = FaultConfig {
            retry_after_secs: u64::MAX,
            retry_after_date: true,
            ..FaultConfig::default()
        };
        let r = throttled(&f);
        let v = r
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok());
        assert_eq!(v, Some("Fri, 31 Dec 9999 23:59:59 GMT"));
        let plain = throttled(&FaultConfig::default());
        let v = plain
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok());
        assert_eq!(v, Some("1"));
    }

    #[test]
    fn offsets_saturate() {
        assert_eq!(offset(10, -20), 0);
        assert_eq!(offset(10, 5), 15);
        assert_eq!(offset(u64::MAX, i64::MAX), u64::MAX);
        assert_eq!(offset(10, i64::MIN), 0);
    }

    #[test]
    fn broken_entries_become_invalid_text_only_where_asked() {
        let mut doc = json!({
            "data": [
                {"type": "folders", "id": "f"},
                {"type": "items", "id": "a", "attributes": {"displayName": "a.txt"},
                 "relationships": {"tip": {"data": {"id": "va"}}}},
                {"type": "items", "id": "b", "attributes": {"displayName": "b.txt"},
                 "relationships": {"tip": {"data": {"id": "vb"}}}},
            ],
            "included": [
                {"type": "versions", "id": "va", "attributes": {"name": "a.txt", "displayName": "a.txt", "storageSize": 1}},
                {"type": "versions", "id": "vb", "attributes": {"name": "b.txt", "storageSize": 2}},
            ]
        });
        assert!(break_entries(&mut doc));
        let text = doc
            .to_string()
            .replace(SURROGATE_MARK, LONE_SURROGATE)
            .replace(&format!("\"{NUMBER_MARK}\""), HUGE_NUMBER);
        assert_eq!(text.matches("bad\\ud800a.txt").count(), 3);
        assert!(text.contains("\"storageSize\":1e400"));
        assert!(serde_json::from_str::<Value>(&text).is_err());
        let mut one = json!({"data": [{"type": "items", "id": "a"}]});
        assert!(!break_entries(&mut one));
    }
}
