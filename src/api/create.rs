//! What the client sends to create things: storage objects, multipart uploads into them, items,
//! versions and folders (aps-api.md §7.8, §8.1–8.4), and the item as it is now (§4.10).
//!
//! Every POST here creates something, so none is sent twice blindly: it is tried again only when
//! an attempt surely did not reach the service (the connection was never made, or the answer was
//! 408, 429 or 503; see [`Resend::IfUnsent`](super::transport::Resend::IfUnsent)). A timeout, a
//! broken connection once the request was out, or another 5xx comes back to the caller as the
//! error it is, the request perhaps carried out: the write path looks before it tries again
//! (a second item or version would be a duplicate; whether completing an upload twice is
//! harmless the reference does not say — the emulator refuses the second as an unknown upload —
//! so a completion is treated the same way, and the caller can look for the object stored).
//! 409 and 423 are refusals (`ApiError::Refused`), never tried again here.

use super::error::ApiError;
use super::oss::{object_path, seg, split_storage, URL_MINUTES};
use super::resource::{Object, ResourceDoc};
use super::transport::Transport;
use super::transport::{JSON, JSON_API};
use super::types::{self, Flavour, FolderInfo, ItemInfo, UploadUrls, VersionInfo};
use bytes::Bytes;
use serde_json::{json, Value};

/// The id of the version an item is created with, as its `tip` and `included` name it: a
/// placeholder local to the request (§8.2).
const NEW_TIP: &str = "1";

/// `POST projects/:p/storage`: a storage object for `name` in `folder`; its URN.
pub(super) async fn storage(
    c: &Transport,
    project: &str,
    folder: &str,
    name: &str,
) -> Result<String, ApiError> {
    let doc = create(c, project, "storage", &storage_body(folder, name)).await?;
    let urn = doc.data.0.id.0.unwrap_or_default();
    // Checked now: the upload into it splits the URN into bucket and key.
    split_storage(&urn)
        .map_err(|_| ApiError::Decode(format!("storage was created as {urn:?}, not an object")))?;
    Ok(urn)
}

/// The body of `POST projects/:p/storage` (§8.1).
fn storage_body(folder: &str, name: &str) -> Value {
    json!({
        "jsonapi": { "version": "1.0" },
        "data": {
            "type": "objects",
            "attributes": { "name": name },
            "relationships": { "target": { "data": { "type": "folders", "id": folder } } }
        }
    })
}

/// `GET …/signeds3upload`: `parts` part URLs from part `first`, under `upload_key` when given.
pub(super) async fn upload_urls(
    c: &Transport,
    storage: &str,
    first: u32,
    parts: u32,
    upload_key: Option<&str>,
) -> Result<UploadUrls, ApiError> {
    let mut query = format!("parts={parts}&firstPart={first}");
    if let Some(k) = upload_key {
        query.push_str(&format!("&uploadKey={}", seg(k)));
    }
    query.push_str(&format!("&minutesExpiration={URL_MINUTES}"));
    let url = c.url(&format!("{}/signeds3upload?{query}", upload_path(storage)?));
    // Asked again when an answer is lost: without a key that starts another upload session,
    // and the one never heard of is never completed (storage drops it after 24 h).
    let doc = c.get_json(&url).await?;
    upload_answer(&doc, parts, upload_key)
}

/// The URLs and key of a `signeds3upload` answer: exactly `parts` URLs, and the key asked
/// for when continuing an upload; anything else is a malformed answer.
fn upload_answer(doc: &Value, parts: u32, asked: Option<&str>) -> Result<UploadUrls, ApiError> {
    let key = doc
        .get("uploadKey")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::Decode("signeds3upload answered without an uploadKey".into()))?;
    if asked.is_some_and(|a| a != key) {
        return Err(ApiError::Decode(
            "signeds3upload answered for another upload than the one continued".into(),
        ));
    }
    let urls: Vec<String> = doc
        .get("urls")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if urls.len() != parts as usize || urls.iter().any(String::is_empty) {
        return Err(ApiError::Decode(format!(
            "signeds3upload answered {} usable URLs for {parts} parts",
            urls.len()
        )));
    }
    Ok(UploadUrls {
        upload_key: key.to_string(),
        urls,
    })
}

/// `PUT` of one part to its signed URL; its ETag (a 403 is `ApiError::Forbidden`).
pub(super) async fn put_part(c: &Transport, url: &str, bytes: Bytes) -> Result<String, ApiError> {
    c.put_part(url, bytes).await
}

/// `POST …/signeds3upload`: completes `upload_key`; the size storage now holds, which must be
/// `size`.
pub(super) async fn complete_upload(
    c: &Transport,
    storage: &str,
    upload_key: &str,
    size: u64,
    etags: &[String],
) -> Result<u64, ApiError> {
    let url = c.url(&format!("{}/signeds3upload", upload_path(storage)?));
    let body = json!({ "uploadKey": upload_key, "size": size, "eTags": etags });
    let doc: Value = c.post_create(&url, &body, JSON).await?;
    let stored = doc
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| ApiError::Decode("the completed upload's answer has no size".into()))?;
    if stored != size {
        return Err(ApiError::SizeMismatch {
            listed: size,
            stored,
        });
    }
    Ok(stored)
}

/// The OSS path of `storage` for uploads; an object key of `.` or `..` cannot be named in a
/// URL path (it is normalised away), and DM never makes one.
fn upload_path(storage: &str) -> Result<String, ApiError> {
    let (_, key) = split_storage(storage)?;
    if key == "." || key == ".." {
        return Err(ApiError::Decode(format!(
            "cannot upload into {storage:?}: its key cannot be named in a URL"
        )));
    }
    object_path(storage)
}

/// `POST projects/:p/items`: a new item `name` in `folder` whose first version is `storage`.
pub(super) async fn item(
    c: &Transport,
    project: &str,
    folder: &str,
    name: &str,
    storage: &str,
    flavour: Flavour,
) -> Result<ItemInfo, ApiError> {
    let body = item_body(folder, name, storage, flavour);
    let doc = create(c, project, "items", &body).await?;
    types::item_doc(&doc).map_err(ApiError::Decode)
}

/// The body of `POST projects/:p/items` (§8.2): the item, its tip the included version that
/// holds `storage`.
fn item_body(folder: &str, name: &str, storage: &str, flavour: Flavour) -> Value {
    json!({
        "jsonapi": { "version": "1.0" },
        "data": {
            "type": "items",
            "attributes": {
                "displayName": name,
                "extension": { "type": flavour.item_type(), "version": "1.0" }
            },
            "relationships": {
                "tip": { "data": { "type": "versions", "id": NEW_TIP } },
                "parent": { "data": { "type": "folders", "id": folder } }
            }
        },
        "included": [{
            "type": "versions",
            "id": NEW_TIP,
            "attributes": {
                "name": name,
                "extension": { "type": flavour.version_type(), "version": "1.0" }
            },
            "relationships": { "storage": { "data": { "type": "objects", "id": storage } } }
        }]
    })
}

/// `POST projects/:p/versions`: a new version `name` of `item` holding `storage`.
pub(super) async fn version(
    c: &Transport,
    project: &str,
    item: &str,
    name: &str,
    storage: &str,
    flavour: Flavour,
) -> Result<VersionInfo, ApiError> {
    let body = version_body(item, name, storage, flavour);
    let doc = create(c, project, "versions", &body).await?;
    types::version_doc(&doc).map_err(ApiError::Decode)
}

/// The body of `POST projects/:p/versions` (§8.3).
fn version_body(item: &str, name: &str, storage: &str, flavour: Flavour) -> Value {
    json!({
        "jsonapi": { "version": "1.0" },
        "data": {
            "type": "versions",
            "attributes": {
                "name": name,
                "extension": { "type": flavour.version_type(), "version": "1.0" }
            },
            "relationships": {
                "item": { "data": { "type": "items", "id": item } },
                "storage": { "data": { "type": "objects", "id": storage } }
            }
        }
    })
}

/// `POST projects/:p/folders`: a new folder `name` in `parent`.
pub(super) async fn folder(
    c: &Transport,
    project: &str,
    parent: &str,
    name: &str,
    flavour: Flavour,
) -> Result<FolderInfo, ApiError> {
    let body = folder_body(parent, name, flavour);
    let doc = create(c, project, "folders", &body).await?;
    types::folder_doc(&doc).map_err(ApiError::Decode)
}

/// The body of `POST projects/:p/folders` (§8.4).
fn folder_body(parent: &str, name: &str, flavour: Flavour) -> Value {
    json!({
        "jsonapi": { "version": "1.0" },
        "data": {
            "type": "folders",
            "attributes": {
                "name": name,
                "extension": { "type": flavour.folder_type(), "version": "1.0" }
            },
            "relationships": { "parent": { "data": { "type": "folders", "id": parent } } }
        }
    })
}

/// `GET projects/:p/items/:i`: the item with its tip as it is now (its reservation in
/// `meta.reserved`).
pub(super) async fn item_now(
    c: &Transport,
    project: &str,
    item: &str,
) -> Result<ItemInfo, ApiError> {
    let url = c.url(&format!(
        "/data/v1/projects/{}/items/{}",
        seg(project),
        seg(item)
    ));
    let doc: Object<ResourceDoc> = c.get_doc(&url).await?;
    types::item_doc(&doc.0).map_err(ApiError::Decode)
}

/// `POST projects/:p/{what}` of a JSON:API `body`; the one-resource document answered.
pub(super) async fn create(
    c: &Transport,
    project: &str,
    what: &str,
    body: &Value,
) -> Result<ResourceDoc, ApiError> {
    let url = data_url(c, project, what);
    let doc: Object<ResourceDoc> = c.post_create(&url, body, JSON_API).await?;
    Ok(doc.0)
}

/// `/data/v1/projects/:p/{what}` on the API host.
pub(super) fn data_url(c: &Transport, project: &str, what: &str) -> String {
    c.url(&format!("/data/v1/projects/{}/{what}", seg(project)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::auth::{Credentials, TokenSource};
    use crate::api::budget::RequestBudget;
    use crate::api::oss::OBJECT_URN_PREFIX;
    use crate::api::retry::RetryPolicy;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// One request as the test server saw it.
    #[derive(Clone, Debug)]
    struct Seen {
        method: String,
        /// Path and query.
        target: String,
        content_type: Option<String>,
        authorization: Option<String>,
        body: Vec<u8>,
    }

    impl Seen {
        fn json(&self) -> Value {
            serde_json::from_slice(&self.body).unwrap()
        }
    }

    /// One answer of the test server.
    #[derive(Clone)]
    struct Answer {
        status: u16,
        headers: Vec<(&'static str, &'static str)>,
        body: String,
    }

    fn answer(status: u16, body: Value) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    type Log = Arc<Mutex<Vec<Seen>>>;

    /// A server giving `answers` in turn (the last one again once they run out), keeping every
    /// request it is sent.
    async fn recorder(answers: Vec<Answer>) -> (String, Log) {
        let seen: Log = Arc::default();
        let log = seen.clone();
        let answers = Arc::new(answers);
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let (log, answers) = (log.clone(), answers.clone());
            async move {
                let (parts, body) = req.into_parts();
                let header = |h: &str| {
                    parts
                        .headers
                        .get(h)
                        .and_then(|v| v.to_str().ok())
                        .map(String::from)
                };
                let seen = Seen {
                    method: parts.method.to_string(),
                    target: parts.uri.path_and_query().unwrap().to_string(),
                    content_type: header("content-type"),
                    authorization: header("authorization"),
                    body: axum::body::to_bytes(body, 64 << 20).await.unwrap().to_vec(),
                };
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push(seen);
                    log.len() - 1
                };
                let a = &answers[n.min(answers.len() - 1)];
                let mut resp = axum::http::Response::builder().status(a.status);
                for (k, v) in &a.headers {
                    resp = resp.header(*k, *v);
                }
                resp.body(axum::body::Body::from(a.body.clone())).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), seen)
    }

    /// A client with a fixed token talking to `base`, trying each request at most 3 times
    /// with millisecond waits.
    fn client(base: &str) -> Transport {
        let http = reqwest::Client::new();
        let tokens = TokenSource::new(Credentials::Token("t".into()), base, http.clone());
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_retry_after: Duration::from_millis(5),
        };
        Transport::new(
            http.clone(),
            http,
            base,
            tokens,
            None,
            policy,
            RequestBudget::new(false),
        )
    }

    fn seen(log: &Log) -> Vec<Seen> {
        log.lock().unwrap().clone()
    }

    const FOLDER: &str = "urn:adsk.wipprod:fs.folder:co.F";
    const ITEM: &str = "urn:adsk.wipprod:dm.lineage:I";

    fn storage_urn(key: &str) -> String {
        format!("{OBJECT_URN_PREFIX}wip.dm.prod/{key}")
    }

    /// The answer to a created item: the item, and its first version in `included`.
    fn item_answer() -> Value {
        json!({
            "data": {"type": "items", "id": ITEM, "attributes": {"displayName": "a b.txt"},
                     "relationships": {"tip": {"data": {"type": "versions", "id": "urn:v:I?version=1"}}}},
            "included": [{"type": "versions", "id": "urn:v:I?version=1",
                          "attributes": {"name": "a b.txt", "versionNumber": 1, "storageSize": 5},
                          "relationships": {"storage": {"data": {"type": "objects", "id": storage_urn("k.txt")}}}}]
        })
    }

    fn folder_answer() -> Value {
        json!({"data": {"type": "folders", "id": "urn:f:new", "attributes": {"name": "New"}}})
    }

    #[tokio::test]
    async fn storage_is_a_json_api_post_answered_with_its_urn() {
        let made = json!({"data": {"type": "objects", "id": storage_urn("abc.bin")}});
        let (base, log) = recorder(vec![
            answer(201, made),
            answer(201, json!({"data": {"type": "objects", "id": "urn:x"}})),
        ])
        .await;
        let c = client(&base);
        let urn = storage(&c, "b.p", FOLDER, "a b.bin").await.unwrap();
        assert_eq!(urn, storage_urn("abc.bin"));
        let s = &seen(&log)[0];
        assert_eq!(
            (s.method.as_str(), s.target.as_str()),
            ("POST", "/data/v1/projects/b.p/storage")
        );
        assert_eq!(s.content_type.as_deref(), Some(JSON_API));
        assert_eq!(s.authorization.as_deref(), Some("Bearer t"));
        let body = s.json();
        assert_eq!(body["data"]["type"], "objects");
        assert_eq!(body["data"]["attributes"]["name"], "a b.bin");
        assert_eq!(
            body["data"]["relationships"]["target"]["data"],
            json!({"type": "folders", "id": FOLDER})
        );
        let e = storage(&c, "b.p", FOLDER, "a").await.unwrap_err();
        assert!(matches!(e, ApiError::Decode(_)), "{e:?}");
    }

    #[tokio::test]
    async fn upload_urls_are_asked_for_by_part_and_checked() {
        let (base, log) = recorder(vec![
            answer(
                200,
                json!({"uploadKey": "K+1", "urls": ["https://s3/1", "https://s3/2"]}),
            ),
            answer(200, json!({"uploadKey": "K+1", "urls": ["https://s3/3"]})),
            answer(200, json!({"uploadKey": "K+1", "urls": ["https://s3/3"]})),
            answer(200, json!({"urls": ["https://s3/1"]})),
            answer(200, json!({"uploadKey": "other", "urls": ["https://s3/3"]})),
        ])
        .await;
        let c = client(&base);
        let urn = storage_urn("a/b.bin");
        let got = upload_urls(&c, &urn, 1, 2, None).await.unwrap();
        assert_eq!(got.upload_key, "K+1");
        assert_eq!(got.urls, ["https://s3/1", "https://s3/2"]);
        let more = upload_urls(&c, &urn, 3, 1, Some("K+1")).await.unwrap();
        assert_eq!(more.urls, ["https://s3/3"]);
        let e = upload_urls(&c, &urn, 4, 2, Some("K+1")).await.unwrap_err();
        assert!(
            matches!(e, ApiError::Decode(_)),
            "one URL for two parts: {e:?}"
        );
        let e = upload_urls(&c, &urn, 1, 1, None).await.unwrap_err();
        assert!(matches!(e, ApiError::Decode(_)), "no key: {e:?}");
        let e = upload_urls(&c, &urn, 3, 1, Some("K+1")).await.unwrap_err();
        assert!(matches!(e, ApiError::Decode(_)), "another key: {e:?}");
        let s = seen(&log);
        let path = "/oss/v2/buckets/wip.dm.prod/objects/a%2Fb.bin/signeds3upload";
        assert_eq!(s[0].method, "GET");
        assert_eq!(
            s[0].target,
            format!("{path}?parts=2&firstPart=1&minutesExpiration=60")
        );
        assert_eq!(
            s[1].target,
            format!("{path}?parts=1&firstPart=3&uploadKey=K%2B1&minutesExpiration=60")
        );
    }

    #[tokio::test]
    async fn parts_go_without_a_token_and_give_their_etag() {
        let with_etag = Answer {
            status: 200,
            headers: vec![("etag", "\"e1\"")],
            body: String::new(),
        };
        let (base, log) = recorder(vec![
            with_etag,
            answer(403, json!({})),
            answer(200, json!({})),
        ])
        .await;
        let c = client(&base);
        let url = format!("{base}/s3/up?partNumber=1&Signature=s");
        let tag = put_part(&c, &url, Bytes::from_static(b"part one"))
            .await
            .unwrap();
        assert_eq!(tag, "\"e1\"");
        let e = put_part(&c, &url, Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::Forbidden(_)), "{e:?}");
        let e = put_part(&c, &url, Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::Decode(_)), "no ETag: {e:?}");
        let s = seen(&log);
        assert_eq!(s.len(), 3, "a refused URL is not tried again: {s:?}");
        assert_eq!(
            (s[0].method.as_str(), s[0].target.as_str()),
            ("PUT", "/s3/up?partNumber=1&Signature=s")
        );
        assert_eq!(s[0].authorization, None, "a signed URL gets no token");
        assert_eq!(s[0].body, b"part one");
    }

    #[tokio::test]
    async fn completion_sends_exactly_json_and_checks_the_size() {
        let (base, log) = recorder(vec![
            answer(200, json!({"objectKey": "k.bin", "size": 9})),
            answer(200, json!({"objectKey": "k.bin", "size": 8})),
        ])
        .await;
        let c = client(&base);
        let urn = storage_urn("k.bin");
        let etags = ["\"e1\"".to_string(), "\"e2\"".to_string()];
        assert_eq!(complete_upload(&c, &urn, "K", 9, &etags).await.unwrap(), 9);
        let e = complete_upload(&c, &urn, "K", 9, &etags).await.unwrap_err();
        assert!(
            matches!(
                e,
                ApiError::SizeMismatch {
                    listed: 9,
                    stored: 8
                }
            ),
            "{e:?}"
        );
        let s = &seen(&log)[0];
        assert_eq!(
            (s.method.as_str(), s.target.as_str()),
            (
                "POST",
                "/oss/v2/buckets/wip.dm.prod/objects/k.bin/signeds3upload"
            )
        );
        assert_eq!(s.content_type.as_deref(), Some("application/json"));
        assert_eq!(
            s.json(),
            json!({"uploadKey": "K", "size": 9, "eTags": ["\"e1\"", "\"e2\""]})
        );
    }

    #[tokio::test]
    async fn an_item_is_created_with_its_first_version_as_tip() {
        let (base, log) = recorder(vec![answer(201, item_answer())]).await;
        let c = client(&base);
        let urn = storage_urn("k.txt");
        let it = item(&c, "b.p", FOLDER, "a b.txt", &urn, Flavour::Core)
            .await
            .unwrap();
        assert_eq!(it.id, ITEM);
        let tip = it.tip.unwrap();
        assert_eq!((tip.number, tip.size), (1, Some(5)));
        assert_eq!(tip.storage.as_deref(), Some(urn.as_str()));
        item(&c, "b.p", FOLDER, "a b.txt", &urn, Flavour::Bim360)
            .await
            .unwrap();
        let s = seen(&log);
        assert_eq!(s[0].target, "/data/v1/projects/b.p/items");
        assert_eq!(s[0].content_type.as_deref(), Some(JSON_API));
        let body = s[0].json();
        let data = &body["data"];
        assert_eq!(data["type"], "items");
        assert_eq!(data["attributes"]["displayName"], "a b.txt");
        assert_eq!(
            data["attributes"]["extension"]["type"],
            "items:autodesk.core:File"
        );
        assert_eq!(
            data["relationships"]["tip"]["data"],
            json!({"type": "versions", "id": "1"})
        );
        assert_eq!(
            data["relationships"]["parent"]["data"],
            json!({"type": "folders", "id": FOLDER})
        );
        let v = &body["included"][0];
        assert_eq!((&v["type"], &v["id"]), (&json!("versions"), &json!("1")));
        assert_eq!(v["attributes"]["name"], "a b.txt");
        assert_eq!(
            v["attributes"]["extension"]["type"],
            "versions:autodesk.core:File"
        );
        assert_eq!(
            v["relationships"]["storage"]["data"],
            json!({"type": "objects", "id": urn})
        );
        let bim = s[1].json();
        assert_eq!(
            bim["data"]["attributes"]["extension"]["type"],
            "items:autodesk.bim360:File"
        );
        assert_eq!(
            bim["included"][0]["attributes"]["extension"]["type"],
            "versions:autodesk.bim360:File"
        );
    }

    #[tokio::test]
    async fn versions_and_folders_are_created() {
        let version_answer = json!({"data": {"type": "versions", "id": "urn:v:I?version=2",
            "attributes": {"name": "a.txt", "versionNumber": 2, "storageSize": 3}}});
        let (base, log) = recorder(vec![
            answer(201, version_answer),
            answer(201, folder_answer()),
        ])
        .await;
        let c = client(&base);
        let urn = storage_urn("k2.txt");
        let v = version(&c, "b.p", ITEM, "a.txt", &urn, Flavour::Bim360)
            .await
            .unwrap();
        assert_eq!((v.number, v.size), (2, Some(3)));
        let f = folder(&c, "b.p", FOLDER, "New", Flavour::Core)
            .await
            .unwrap();
        assert_eq!((f.id.as_str(), f.name.as_str()), ("urn:f:new", "New"));
        let s = seen(&log);
        assert_eq!(s[0].target, "/data/v1/projects/b.p/versions");
        let body = s[0].json();
        assert_eq!(body["data"]["type"], "versions");
        assert_eq!(body["data"]["attributes"]["name"], "a.txt");
        assert_eq!(
            body["data"]["attributes"]["extension"]["type"],
            "versions:autodesk.bim360:File"
        );
        assert_eq!(
            body["data"]["relationships"]["item"]["data"],
            json!({"type": "items", "id": ITEM})
        );
        assert_eq!(
            body["data"]["relationships"]["storage"]["data"],
            json!({"type": "objects", "id": urn})
        );
        assert_eq!(s[1].target, "/data/v1/projects/b.p/folders");
        assert_eq!(s[1].content_type.as_deref(), Some(JSON_API));
        let body = s[1].json();
        assert_eq!(body["data"]["type"], "folders");
        assert_eq!(body["data"]["attributes"]["name"], "New");
        assert_eq!(
            body["data"]["attributes"]["extension"]["type"],
            "folders:autodesk.core:Folder"
        );
        assert_eq!(
            body["data"]["relationships"]["parent"]["data"],
            json!({"type": "folders", "id": FOLDER})
        );
    }

    #[tokio::test]
    async fn the_item_now_carries_its_tip_and_reservation() {
        let mut doc = item_answer();
        doc["data"]["attributes"]["reserved"] = json!(true);
        doc["data"]["attributes"]["reservedUserId"] = json!("U2");
        let (base, log) = recorder(vec![answer(200, doc)]).await;
        let it = item_now(&client(&base), "b.p", ITEM).await.unwrap();
        assert_eq!(it.tip.map(|t| t.number), Some(1));
        let r = it.meta.reserved.expect("reserved");
        assert_eq!(r.user_id.as_deref(), Some("U2"));
        let s = &seen(&log)[0];
        assert_eq!(
            (s.method.as_str(), s.target.as_str()),
            (
                "GET",
                "/data/v1/projects/b.p/items/urn%3Aadsk.wipprod%3Adm.lineage%3AI"
            )
        );
    }

    /// What creating a folder comes to when the server answers `answers` in turn, and how many
    /// requests it was sent.
    async fn folder_tries(answers: Vec<Answer>) -> (Result<FolderInfo, ApiError>, usize) {
        let (base, log) = recorder(answers).await;
        let got = folder(&client(&base), "b.p", FOLDER, "New", Flavour::Core).await;
        (got, seen(&log).len())
    }

    #[tokio::test]
    async fn a_create_is_sent_again_only_when_the_service_surely_did_not_act() {
        let created = answer(201, folder_answer());
        let throttled = Answer {
            status: 429,
            headers: vec![("retry-after", "0")],
            body: String::new(),
        };
        for refused in [answer(503, json!({})), answer(408, json!({})), throttled] {
            let status = refused.status;
            let (got, sent) = folder_tries(vec![refused, created.clone()]).await;
            assert!(got.is_ok(), "{status}: {got:?}");
            assert_eq!(sent, 2, "{status} is sent again");
        }
        for status in [500, 502, 504] {
            let (got, sent) = folder_tries(vec![answer(status, json!({}))]).await;
            assert!(matches!(got, Err(ApiError::Server { .. })), "{got:?}");
            assert_eq!(sent, 1, "{status} may hide a folder made: not sent again");
        }
        let taken = json!({"errors": [{"status": "409", "detail": "A folder named \"New\" already exists"}]});
        for status in [409, 423] {
            let (got, sent) = folder_tries(vec![answer(status, taken.clone())]).await;
            assert!(
                matches!(got, Err(ApiError::Refused { status: s, .. }) if s == status),
                "{got:?}"
            );
            assert_eq!(sent, 1);
        }
    }

    /// A server that reads each request and closes the connection without answering; how many
    /// connections it took.
    async fn hang_up() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let taken = Arc::new(AtomicUsize::new(0));
        let counter = taken.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = vec![0; 64 << 10];
                let _ = conn.read(&mut buf).await;
            }
        });
        (format!("http://{addr}"), taken)
    }

    #[tokio::test]
    async fn a_create_whose_answer_is_lost_is_not_sent_again() {
        use std::sync::atomic::Ordering;
        let (base, taken) = hang_up().await;
        let c = client(&base);
        let e = folder(&c, "b.p", FOLDER, "New", Flavour::Core)
            .await
            .unwrap_err();
        assert!(e.is_transient(), "{e:?}");
        assert_eq!(taken.load(Ordering::SeqCst), 1, "sent once");
        // A read is sent again, up to the policy's 3 attempts.
        assert!(item_now(&c, "b.p", ITEM).await.is_err());
        assert_eq!(taken.load(Ordering::SeqCst), 4);
    }

    /// A create that cannot connect is a network error (tried again by the policy, which this
    /// test cannot count: nothing listens to count it).
    #[tokio::test]
    async fn a_create_that_cannot_connect_is_a_network_error() {
        // A port nobody listens on: every attempt is refused before anything is sent.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let e = folder(
            &client(&format!("http://127.0.0.1:{port}")),
            "b.p",
            FOLDER,
            "New",
            Flavour::Core,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, ApiError::Network(_)), "{e:?}");
    }
}
