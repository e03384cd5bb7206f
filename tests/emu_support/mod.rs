//! Helpers shared by the `emulator_*` integration tests (navigation, bytes, OSS, writes, faults).
//! Everything goes over real HTTP to the real binary started by `common::Emulator`.

#![allow(dead_code)]

use crate::common::{enc, http, Emulator};
use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Bucket holding every Data Management object.
pub const DM_BUCKET: &str = "wip.dm.prod";
/// Prefix of storage URNs.
pub const OBJECT_PREFIX: &str = "urn:adsk.objects:os.object:";

/// `s` is lower-case 8-4-4-4-12 hex.
pub fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// `b.<uuid>`, the BIM 360 / ACC account and project id shape.
pub fn is_b_id(s: &str) -> bool {
    s.strip_prefix("b.").is_some_and(is_uuid)
}

/// A 22-character URL-safe id token.
pub fn is_token22(s: &str) -> bool {
    s.len() == 22
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `urn:adsk.wipprod:fs.folder:co.<22>`.
pub fn is_folder_urn(s: &str) -> bool {
    s.strip_prefix("urn:adsk.wipprod:fs.folder:co.")
        .is_some_and(is_token22)
}

/// `urn:adsk.wipprod:dm.lineage:<22>`.
pub fn is_item_urn(s: &str) -> bool {
    s.strip_prefix("urn:adsk.wipprod:dm.lineage:")
        .is_some_and(is_token22)
}

/// `urn:adsk.wipprod:fs.file:vf.<22>?version=N`; returns N.
pub fn version_number_of(s: &str) -> Option<u32> {
    let rest = s.strip_prefix("urn:adsk.wipprod:fs.file:vf.")?;
    let (tok, n) = rest.split_once("?version=")?;
    if !is_token22(tok) {
        return None;
    }
    n.parse().ok()
}

/// Milliseconds since the epoch of an RFC 3339 / ISO 8601 timestamp (panics when unparseable).
pub fn rfc3339_ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("timestamp {s:?} is not RFC 3339: {e}"))
        .timestamp_millis()
}

/// Lower-case hex SHA-1.
pub fn sha1_hex(b: &[u8]) -> String {
    Sha1::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// Deterministic pseudo-random bytes for seed files.
pub fn pseudo_bytes(n: usize, salt: u64) -> Vec<u8> {
    let mut x = salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes a file and sets its mtime to `mtime_s` whole seconds since the epoch.
pub fn write_file(path: &Path, bytes: &[u8], mtime_s: u64) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent dirs");
    }
    std::fs::write(path, bytes).expect("write seed file");
    set_mtime(path, mtime_s);
}

/// Sets a file's (or directory's) mtime.
pub fn set_mtime(path: &Path, mtime_s: u64) {
    let f = std::fs::File::options()
        .read(true)
        .open(path)
        .or_else(|_| std::fs::File::open(path))
        .expect("open for set_modified");
    f.set_modified(UNIX_EPOCH + Duration::from_secs(mtime_s))
        .expect("set_modified");
}

/// Whole-second mtime of a path, in ms.
pub fn mtime_ms(path: &Path) -> i64 {
    let t = std::fs::metadata(path)
        .expect("metadata")
        .modified()
        .expect("mtime");
    t.duration_since(SystemTime::UNIX_EPOCH)
        .expect("after epoch")
        .as_millis() as i64
}

#[allow(unused_imports)]
pub use crate::common::get_full;

/// Resolves an href (absolute or root-relative) against the emulator.
pub fn resolve(emu: &Emulator, href: &str) -> String {
    if href.starts_with("http") {
        href.to_string()
    } else if href.starts_with('/') {
        emu.url(href)
    } else {
        emu.url(&format!("/{href}"))
    }
}

/// GET that must answer 200; returns the body.
pub async fn get_ok(emu: &Emulator, token: &str, href: &str) -> Value {
    let url = resolve(emu, href);
    let (status, body) = emu.get_json(token, &url).await;
    assert_eq!(status, 200, "GET {url} -> {body}");
    body
}

/// Asserts a JSON:API error document with `status` (as a string) and returns `errors[0]`.
pub fn assert_jsonapi_error(body: &Value, status: u16) -> Value {
    assert_eq!(
        body["jsonapi"]["version"], "1.0",
        "jsonapi member in {body}"
    );
    let e = &body["errors"][0];
    assert_eq!(
        e["status"],
        json!(status.to_string()),
        "errors[0].status is a string: {body}"
    );
    assert!(e["code"].is_string(), "errors[0].code in {body}");
    assert!(e["detail"].is_string(), "errors[0].detail in {body}");
    assert!(
        e["id"].as_str().is_some_and(is_uuid),
        "errors[0].id is a uuid: {body}"
    );
    e.clone()
}

/// `href` of a links/relationship member, e.g. `href(&v["links"]["self"])`.
pub fn href(v: &Value) -> String {
    v["href"]
        .as_str()
        .unwrap_or_else(|| panic!("no href in {v}"))
        .to_string()
}

/// Every page of a paginated listing, following `links.next.href` verbatim:
/// (all data, all included, number of pages).
pub async fn list_all(emu: &Emulator, token: &str, first: &str) -> (Vec<Value>, Vec<Value>, usize) {
    let mut url = resolve(emu, first);
    let (mut data, mut included, mut pages) = (Vec::new(), Vec::new(), 0);
    loop {
        let body = get_ok(emu, token, &url).await;
        pages += 1;
        data.extend(body["data"].as_array().expect("data array").iter().cloned());
        if let Some(inc) = body["included"].as_array() {
            included.extend(inc.iter().cloned());
        }
        match body["links"]["next"]["href"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
        assert!(pages < 10_000, "runaway pagination");
    }
    (data, included, pages)
}

/// The first hub and its first project: (hub id, project id).
pub async fn first_project(emu: &Emulator, token: &str) -> (String, String) {
    let hubs = get_ok(emu, token, "/project/v1/hubs").await;
    let hub = hubs["data"][0]["id"].as_str().expect("a hub").to_string();
    let projects = get_ok(emu, token, &format!("/project/v1/hubs/{hub}/projects")).await;
    let project = projects["data"][0]["id"]
        .as_str()
        .expect("a project")
        .to_string();
    (hub, project)
}

/// Top folders of a project.
pub async fn top_folders(emu: &Emulator, token: &str, hub: &str, project: &str) -> Vec<Value> {
    let body = get_ok(
        emu,
        token,
        &format!("/project/v1/hubs/{hub}/projects/{project}/topFolders"),
    )
    .await;
    body["data"].as_array().expect("topFolders data").clone()
}

/// URL path of a folder's contents (id percent-encoded).
pub fn contents_path(project: &str, folder: &str) -> String {
    format!(
        "/data/v1/projects/{project}/folders/{}/contents",
        enc(folder)
    )
}

/// All entries of a folder (every page) plus the included tips.
pub async fn folder_entries(
    emu: &Emulator,
    token: &str,
    project: &str,
    folder: &str,
    include_hidden: bool,
) -> (Vec<Value>, Vec<Value>) {
    let mut path = contents_path(project, folder);
    if include_hidden {
        path.push_str("?includeHidden=true");
    }
    let (d, i, _) = list_all(emu, token, &path).await;
    (d, i)
}

/// Display name of a folder or item resource.
pub fn name_of(v: &Value) -> &str {
    v["attributes"]["name"]
        .as_str()
        .or_else(|| v["attributes"]["displayName"].as_str())
        .unwrap_or("")
}

/// The child of `folder` named `name` and (for items) its tip version from `included`.
pub async fn child(
    emu: &Emulator,
    token: &str,
    project: &str,
    folder: &str,
    name: &str,
    include_hidden: bool,
) -> (Value, Option<Value>) {
    let (data, included) = folder_entries(emu, token, project, folder, include_hidden).await;
    let found = data
        .iter()
        .find(|d| name_of(d) == name)
        .unwrap_or_else(|| panic!("no child {name:?} in folder {folder}"))
        .clone();
    let tip = found["relationships"]["tip"]["data"]["id"]
        .as_str()
        .and_then(|id| included.iter().find(|v| v["id"] == id).cloned());
    (found, tip)
}

/// Walks folder names from the first project's first top folder: returns (project, folder id).
pub async fn folder_by_path(emu: &Emulator, token: &str, names: &[&str]) -> (String, String) {
    let (hub, project) = first_project(emu, token).await;
    let tops = top_folders(emu, token, &hub, &project).await;
    let mut folder = tops[0]["id"].as_str().expect("top folder id").to_string();
    for n in names {
        let (f, _) = child(emu, token, &project, &folder, n, true).await;
        assert_eq!(f["type"], "folders", "{n} is a folder");
        folder = f["id"].as_str().expect("id").to_string();
    }
    (project, folder)
}

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

/// GET `url` with a bearer token and extra headers; the response, whatever its status.
pub async fn get_authed(url: &str, token: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut rb = http().get(url).bearer_auth(token);
    for (name, value) in headers {
        rb = rb.header(*name, *value);
    }
    rb.send().await.expect("GET")
}

/// A header as text.
pub fn header<'h>(h: &'h reqwest::header::HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// A token for another app (different Basic credentials).
pub async fn token_for(emu: &Emulator, client: &str, secret: &str, scope: &str) -> String {
    let r = http()
        .post(emu.url("/authentication/v2/token"))
        .basic_auth(client, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("token json");
    v["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
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
    let start = http()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("signeds3upload GET");
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

/// POST a JSON:API body to a Data path: (status, body).
pub async fn post_jsonapi(emu: &Emulator, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = http()
        .post(emu.url(path))
        .bearer_auth(token)
        .header("Content-Type", "application/vnd.api+json")
        .header("Accept", "application/vnd.api+json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    let bytes = r.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}
