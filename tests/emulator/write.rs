//! The Data Management write path over real HTTP: storage placeholder → signed upload → item →
//! new version → tombstone → restore, plus folders and refs (aps-api.md §8, §4.14, §7.8).

use crate::support::api::{assert_jsonapi_error, href, post_jsonapi};
use crate::support::dm::{child, folder_entries, get_ok};
use crate::support::http::{enc, http};
use crate::support::oss::{signeds3download, split_storage, upload_parts, DM_BUCKET};
use crate::support::seed::pseudo_bytes;
use crate::support::shapes::{is_folder_urn, is_item_urn, is_uuid, version_number_of};
use crate::support::write::Dm;
use serde_json::{json, Value};

async fn world() -> Dm {
    Dm::start(&[]).await
}

/// `POST storage` for `name`, checking the answer's shape (§8.1): (storage urn, object key).
async fn storage_checked(w: &Dm, name: &str) -> (String, String) {
    let (s, v) = w.post_storage(&w.tok, name).await;
    assert_eq!(s, 201, "POST storage: {v}");
    assert_eq!(v["jsonapi"]["version"], "1.0");
    assert_eq!(v["data"]["type"], "objects");
    let urn = v["data"]["id"].as_str().expect("storage id").to_string();
    let (bucket, key) = split_storage(&urn);
    assert_eq!(bucket, DM_BUCKET);
    let ext = name.rsplit('.').next().expect("ext");
    let stem = key
        .strip_suffix(&format!(".{ext}"))
        .unwrap_or_else(|| panic!("key {key} keeps .{ext}"));
    assert!(is_uuid(stem), "object key = uuid + extension: {key}");
    assert_eq!(
        v["data"]["relationships"]["target"]["data"]["id"],
        w.folder.as_str()
    );
    assert_eq!(
        v["data"]["relationships"]["target"]["data"]["type"],
        "folders"
    );
    (urn, key)
}

#[tokio::test]
async fn create_item_then_new_version_then_tombstone() {
    let w = world().await;
    let v1_bytes = pseudo_bytes(3000, 11);
    let v2_bytes = pseudo_bytes(4500, 12);

    // Storage placeholders take no bytes until uploaded, and are not downloadable yet.
    let (urn1, key1) = storage_checked(&w, "report.pdf").await;
    let (s, _) = signeds3download(&w.emu, &w.tok, DM_BUCKET, &key1, "").await;
    assert_eq!(s, 404, "placeholder without bytes");
    let (s, body) = w.post_item("report.pdf", &urn1).await;
    assert_eq!(s, 400, "item on a storage object with no bytes: {body}");
    assert_jsonapi_error(&body, 400);
    let (s, done) = upload_parts(&w.emu, &w.tok, DM_BUCKET, &key1, &[&v1_bytes]).await;
    assert_eq!(s, 200, "{done}");

    // POST items → 201, the item in data and its first version in included.
    let (s, created) = w.post_item("report.pdf", &urn1).await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["jsonapi"]["version"], "1.0");
    let item = &created["data"];
    assert_eq!(item["type"], "items");
    let item_id = item["id"].as_str().expect("item id").to_string();
    assert!(is_item_urn(&item_id), "{item_id}");
    assert_eq!(item["attributes"]["displayName"], "report.pdf");
    assert_eq!(item["attributes"]["hidden"], false);
    assert!(href(&created["links"]["self"])
        .ends_with(&format!("/data/v1/projects/{}/items", w.project)));
    assert_eq!(
        item["relationships"]["parent"]["data"]["id"],
        w.folder.as_str()
    );
    let inc = created["included"].as_array().expect("included");
    assert_eq!(inc.len(), 1);
    let v1 = &inc[0];
    let v1_id = v1["id"].as_str().expect("version id").to_string();
    assert_eq!(version_number_of(&v1_id), Some(1));
    assert_eq!(item["relationships"]["tip"]["data"]["id"], v1_id.as_str());
    assert_eq!(v1["attributes"]["name"], "report.pdf");
    assert_eq!(v1["attributes"]["versionNumber"], 1);
    assert_eq!(v1["attributes"]["storageSize"], 3000);
    assert_eq!(v1["attributes"]["fileType"], "pdf");
    assert_eq!(v1["attributes"]["mimeType"], "application/pdf");
    assert_eq!(v1["relationships"]["storage"]["data"]["id"], urn1.as_str());

    // The folder listing shows it, with its tip in included.
    let (entry, tip) = child(&w.emu, &w.tok, &w.project, &w.folder, "report.pdf", false).await;
    assert_eq!(entry["id"], item_id.as_str());
    assert_eq!(tip.expect("tip")["id"], v1_id.as_str());
    assert_eq!(w.download(&key1).await, v1_bytes);

    // A second item with the same name in the same folder → 409.
    let (other_urn, _) = w.uploaded("report.pdf", b"other").await;
    let (s, body) = w.post_item("report.pdf", &other_urn).await;
    assert_eq!(s, 409, "{body}");
    assert_jsonapi_error(&body, 409);

    // POST versions with new storage → version 2 is the tip.
    let (urn2, key2) = w.uploaded("report.pdf", &v2_bytes).await;
    let (s, created) = w
        .post_version(
            &item_id,
            "report.pdf",
            "versions:autodesk.bim360:File",
            Some(&urn2),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let v2 = &created["data"];
    let v2_id = v2["id"].as_str().expect("id").to_string();
    assert_eq!(v2["type"], "versions");
    assert_eq!(version_number_of(&v2_id), Some(2));
    assert_eq!(v2["attributes"]["versionNumber"], 2);
    assert_eq!(v2["attributes"]["storageSize"], 4500);
    assert_eq!(v2["relationships"]["storage"]["data"]["id"], urn2.as_str());
    assert_eq!(v2["relationships"]["item"]["data"]["id"], item_id.as_str());
    assert_eq!(
        created["included"][0]["id"],
        item_id.as_str(),
        "the item in included"
    );

    let tip = get_ok(
        &w.emu,
        &w.tok,
        &format!(
            "/data/v1/projects/{}/items/{}/tip",
            w.project,
            enc(&item_id)
        ),
    )
    .await;
    assert_eq!(tip["data"]["id"], v2_id.as_str());
    let it = get_ok(
        &w.emu,
        &w.tok,
        &format!("/data/v1/projects/{}/items/{}", w.project, enc(&item_id)),
    )
    .await;
    assert_eq!(
        it["data"]["relationships"]["tip"]["data"]["id"],
        v2_id.as_str()
    );
    assert_eq!(it["included"][0]["id"], v2_id.as_str());
    let versions = get_ok(
        &w.emu,
        &w.tok,
        &format!(
            "/data/v1/projects/{}/items/{}/versions",
            w.project,
            enc(&item_id)
        ),
    )
    .await;
    let ids: Vec<&str> = versions["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|v| v["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [v2_id.as_str(), v1_id.as_str()], "newest first");
    let (_, tip) = child(&w.emu, &w.tok, &w.project, &w.folder, "report.pdf", false).await;
    assert_eq!(
        tip.expect("tip")["id"],
        v2_id.as_str(),
        "listing shows the new tip"
    );
    // The old version is still there and downloadable.
    let old = get_ok(
        &w.emu,
        &w.tok,
        &format!("/data/v1/projects/{}/versions/{}", w.project, enc(&v1_id)),
    )
    .await;
    assert_eq!(
        old["data"]["relationships"]["storage"]["data"]["id"],
        urn1.as_str()
    );
    assert_eq!(w.download(&key1).await, v1_bytes);
    assert_eq!(w.download(&key2).await, v2_bytes);

    // A tombstone version hides the item.
    let (s, created) = w
        .post_version(
            &item_id,
            "report.pdf",
            "versions:autodesk.core:Deleted",
            None,
        )
        .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(
        created["data"]["attributes"]["extension"]["type"],
        "versions:autodesk.core:Deleted"
    );
    assert_eq!(created["data"]["attributes"]["versionNumber"], 3);
    assert!(created["data"]["relationships"].get("storage").is_none());
    let (shown, _) = folder_entries(&w.emu, &w.tok, &w.project, &w.folder, false).await;
    assert!(
        shown.iter().all(|d| d["id"] != item_id.as_str()),
        "deleted item hidden by default"
    );
    let (entry, tip) = child(&w.emu, &w.tok, &w.project, &w.folder, "report.pdf", true).await;
    assert_eq!(entry["id"], item_id.as_str());
    assert_eq!(entry["attributes"]["hidden"], true);
    assert_eq!(
        tip.expect("tip")["attributes"]["extension"]["type"],
        "versions:autodesk.core:Deleted"
    );
    let it = get_ok(
        &w.emu,
        &w.tok,
        &format!("/data/v1/projects/{}/items/{}", w.project, enc(&item_id)),
    )
    .await;
    assert_eq!(it["data"]["attributes"]["hidden"], true);

    // Restore = copy the version before the tombstone.
    let (s, restored) = post_jsonapi(
        &w.emu,
        &w.tok,
        &format!(
            "/data/v1/projects/{}/versions?copyFrom={}",
            w.project,
            enc(&v2_id)
        ),
        &json!({"jsonapi": {"version": "1.0"}, "data": {"type": "versions"}}),
    )
    .await;
    assert_eq!(s, 201, "{restored}");
    assert_eq!(restored["data"]["attributes"]["versionNumber"], 4);
    assert_eq!(
        restored["data"]["relationships"]["storage"]["data"]["id"],
        urn2.as_str()
    );
    let (entry, _) = child(&w.emu, &w.tok, &w.project, &w.folder, "report.pdf", false).await;
    assert_eq!(
        entry["attributes"]["hidden"], false,
        "restored item is visible again"
    );
}

#[tokio::test]
async fn write_path_errors() {
    let w = world().await;
    let p = &w.project;
    // Storage in an unknown folder.
    let body = json!({"jsonapi": {"version": "1.0"}, "data": {"type": "objects", "attributes": {"name": "x.txt"},
        "relationships": {"target": {"data": {"type": "folders", "id": "urn:adsk.wipprod:fs.folder:co.AAAAAAAAAAAAAAAAAAAAAA"}}}}});
    let (s, v) = post_jsonapi(
        &w.emu,
        &w.tok,
        &format!("/data/v1/projects/{p}/storage"),
        &body,
    )
    .await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(assert_jsonapi_error(&v, 404)["code"], "FOLDER_NOT_FOUND");
    // Malformed bodies.
    let (s, v) = post_jsonapi(
        &w.emu,
        &w.tok,
        &format!("/data/v1/projects/{p}/items"),
        &json!({"data": {}}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_jsonapi_error(&v, 400);
    // Uploading into wip.dm.prod needs a storage placeholder first.
    let (s, _) = emu_get_status(
        &w,
        "/oss/v2/buckets/wip.dm.prod/objects/made-up-key.bin/signeds3upload",
    )
    .await;
    assert_eq!(s, 404);
    // A version of an unknown item.
    let (urn, _) = w.uploaded("a.txt", b"abc").await;
    let (s, v) = w
        .post_version(
            "urn:adsk.wipprod:dm.lineage:AAAAAAAAAAAAAAAAAAAAAA",
            "a.txt",
            "versions:autodesk.bim360:File",
            Some(&urn),
        )
        .await;
    assert_eq!(s, 404, "{v}");
    assert_jsonapi_error(&v, 404);
    // Writes need data:create or data:write.
    let read_only = w.emu.token_with("data:read").await;
    let (s, v) = post_jsonapi(
        &w.emu,
        &read_only,
        &format!("/data/v1/projects/{p}/items"),
        &json!({}),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["errorCode"], "AUTH-010");
}

async fn emu_get_status(w: &Dm, path: &str) -> (u16, Value) {
    w.emu.get_json(&w.tok, path).await
}

#[tokio::test]
async fn create_folder_and_conflict() {
    let w = world().await;
    let (s, v) = w.post_folder("Drawings").await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["data"]["type"], "folders");
    assert!(is_folder_urn(v["data"]["id"].as_str().expect("id")));
    assert_eq!(v["data"]["attributes"]["name"], "Drawings");
    assert_eq!(
        v["data"]["relationships"]["parent"]["data"]["id"],
        w.folder.as_str()
    );
    let (entry, _) = child(&w.emu, &w.tok, &w.project, &w.folder, "Drawings", false).await;
    assert_eq!(entry["id"], v["data"]["id"]);
    let (s, v) = w.post_folder("Drawings").await;
    assert_eq!(s, 409, "{v}");
    assert_jsonapi_error(&v, 409);
    let (s, v) = w.post_folder("bad:name").await;
    assert_eq!(s, 400, "reserved character: {v}");
}

#[tokio::test]
async fn create_ref_then_list_it() {
    let w = world().await;
    let (data, included) = folder_entries(&w.emu, &w.tok, &w.project, &w.folder, false).await;
    let items: Vec<&Value> = data.iter().filter(|d| d["type"] == "items").collect();
    assert!(items.len() >= 2);
    let tip_of = |it: &Value| {
        it["relationships"]["tip"]["data"]["id"]
            .as_str()
            .expect("tip")
            .to_string()
    };
    let (from, to) = (tip_of(items[0]), tip_of(items[1]));
    assert!(included.iter().any(|v| v["id"] == to.as_str()));
    let path = format!(
        "/data/v1/projects/{}/versions/{}/relationships/refs",
        w.project,
        enc(&from)
    );
    let body = json!({"jsonapi": {"version": "1.0"}, "data": {"type": "versions", "id": to,
        "meta": {"extension": {"type": "auxiliary:autodesk.core:Attachment", "version": "1.0"}}}});
    let r = http()
        .post(w.emu.url(&path))
        .bearer_auth(&w.tok)
        .header("Content-Type", "application/vnd.api+json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST ref");
    assert_eq!(r.status(), 204, "refs POST is 204 No Content");
    assert!(r.bytes().await.expect("body").is_empty());
    let listed = get_ok(&w.emu, &w.tok, &path).await;
    let d = &listed["data"][0];
    assert_eq!(d["id"], to.as_str());
    assert_eq!(d["meta"]["refType"], "auxiliary");
    assert_eq!(d["meta"]["direction"], "from");
    assert_eq!(d["meta"]["fromId"], from.as_str());
    assert_eq!(d["meta"]["toId"], to.as_str());
    assert_eq!(listed["included"][0]["id"], to.as_str());
}
