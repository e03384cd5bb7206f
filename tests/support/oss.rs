//! OSS from the client's side: storage URNs, signed downloads and the three-step signed upload.

use crate::support::api::header;
use crate::support::emulator::Emulator;
use crate::support::http::{enc, get_authed, http};
use serde_json::{json, Value};

/// Bucket holding every Data Management object.
pub const DM_BUCKET: &str = "wip.dm.prod";

/// Prefix of storage URNs.
pub const OBJECT_PREFIX: &str = "urn:adsk.objects:os.object:";

/// Splits a storage URN into (bucket, key).
pub fn split_storage(urn: &str) -> (String, String) {
    let rest = urn
        .strip_prefix(OBJECT_PREFIX)
        .unwrap_or_else(|| panic!("not a storage urn: {urn}"));
    let (b, k) = rest.split_once('/').expect("bucket/key");
    (b.to_string(), k.to_string())
}

/// The storage (bucket, key) of a version resource.
pub fn storage_of(version: &Value) -> (String, String) {
    let urn = version["relationships"]["storage"]["data"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("version has no storage: {version}"));
    split_storage(urn)
}

/// `GET …/signeds3download` with extra query; returns (status, body).
pub async fn signeds3download(
    emu: &Emulator,
    token: &str,
    bucket: &str,
    key: &str,
    query: &str,
) -> (u16, Value) {
    let mut url = emu.url(&format!(
        "/oss/v2/buckets/{}/objects/{}/signeds3download",
        enc(bucket),
        enc(key)
    ));
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    emu.get_json(token, &url).await
}

/// A signed URL of `bucket/key` (status complete).
pub async fn signed_url(emu: &Emulator, token: &str, bucket: &str, key: &str) -> String {
    let (s, b) = signeds3download(emu, token, bucket, key, "").await;
    assert_eq!(s, 200, "signeds3download: {b}");
    assert_eq!(b["status"], "complete", "{b}");
    b["url"].as_str().expect("url").to_string()
}

/// GET of a signed URL (no Authorization) with an optional Range: (status, headers, bytes).
pub async fn fetch(url: &str, range: Option<&str>) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut rb = http().get(url);
    if let Some(r) = range {
        rb = rb.header("Range", r);
    }
    let r = rb.send().await.expect("signed GET");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await.expect("signed body").to_vec();
    (status, headers, body)
}

/// The three-step signed upload of `parts` to `bucket/key`; returns (status, body) of the
/// completion call.
pub async fn upload_parts(
    emu: &Emulator,
    token: &str,
    bucket: &str,
    key: &str,
    parts: &[&[u8]],
) -> (u16, Value) {
    let url = emu.url(&format!(
        "/oss/v2/buckets/{}/objects/{}/signeds3upload?parts={}",
        enc(bucket),
        enc(key),
        parts.len()
    ));
    let start = get_authed(&url, token, &[]).await;
    assert_eq!(start.status(), 200, "signeds3upload GET");
    let start: Value = start.json().await.expect("upload start json");
    let upload_key = start["uploadKey"].as_str().expect("uploadKey").to_string();
    let urls = start["urls"].as_array().expect("urls").clone();
    assert_eq!(urls.len(), parts.len(), "one url per part: {start}");
    let mut etags = Vec::new();
    for (u, p) in urls.iter().zip(parts) {
        let r = http()
            .put(u.as_str().expect("url"))
            .body(p.to_vec())
            .send()
            .await
            .expect("PUT part");
        assert_eq!(r.status(), 200, "PUT part");
        etags.push(header(r.headers(), "etag").expect("part ETag").to_string());
    }
    let size: usize = parts.iter().map(|p| p.len()).sum();
    let r = http()
        .post(emu.url(&format!(
            "/oss/v2/buckets/{}/objects/{}/signeds3upload",
            enc(bucket),
            enc(key)
        )))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(json!({ "uploadKey": upload_key, "size": size, "eTags": etags }).to_string())
        .send()
        .await
        .expect("signeds3upload POST");
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (status, body)
}
