//! `PATCH` of folders, items and versions over real HTTP (aps-api.md §8.5), tombstones by hub
//! kind (§8.3), and the `refuse_storage_reuse` fault: renames, moves, hide and restore, every
//! refusal, what the stats count, and how faults and limits reach the new routes.

use crate::support::api::{assert_jsonapi_error, header, post_jsonapi, token_for};
use crate::support::dm::{child, first_project, folder_entries, get_ok, name_of, top_folders};
use crate::support::emulator::Emulator;
use crate::support::http::{enc, http};
use crate::support::oss::{signeds3download, DM_BUCKET};
use crate::support::seed::pseudo_bytes;
use crate::support::write::Dm;
use serde_json::{json, Value};

const BIM_FILE: &str = "versions:autodesk.bim360:File";
const TEAM_FILE: &str = "versions:autodesk.core:File";
const DELETED: &str = "versions:autodesk.core:Deleted";

/// PATCH a JSON:API `body` to a Data path with `token`: (status, body).
async fn patch_as(emu: &Emulator, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = http()
        .patch(emu.url(path))
        .bearer_auth(token)
        .header("Content-Type", "application/vnd.api+json")
        .body(body.to_string())
        .send()
        .await
        .expect("PATCH");
    let status = r.status().as_u16();
    let bytes = r.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// PATCH with the all-scopes token.
async fn patch(w: &Dm, path: &str, body: &Value) -> (u16, Value) {
    patch_as(&w.emu, &w.tok, path, body).await
}

/// `folders/<id>`, `items/<id>` or `versions/<id>` of the project, id encoded.
fn res(w: &Dm, kind: &str, id: &str) -> String {
    w.data_path(&format!("{kind}/{}", enc(id)))
}

/// A `PATCH folders` body for `id` with `attributes` and, when given, a new parent.
fn folder_patch(id: &str, attributes: Value, parent: Option<&str>) -> Value {
    let mut data = json!({"type": "folders", "id": id, "attributes": attributes});
    if let Some(p) = parent {
        data["relationships"] = json!({"parent": {"data": {"type": "folders", "id": p}}});
    }
    json!({"jsonapi": {"version": "1.0"}, "data": data})
}

/// A `PATCH items` body renaming `id` to `name`.
fn item_patch(id: &str, name: &str) -> Value {
    json!({"jsonapi": {"version": "1.0"},
           "data": {"type": "items", "id": id, "attributes": {"displayName": name}}})
}

/// A `PATCH versions` body renaming `id` to `name`.
fn version_patch(id: &str, name: &str) -> Value {
    json!({"jsonapi": {"version": "1.0"},
           "data": {"type": "versions", "id": id, "attributes": {"name": name}}})
}

/// `POST folders` named `name` under `parent`, which must succeed: the new folder's id.
async fn folder_in(w: &Dm, parent: &str, name: &str) -> String {
    let body = json!({"jsonapi": {"version": "1.0"}, "data": {"type": "folders",
        "attributes": {"name": name, "extension": {"type": "folders:autodesk.bim360:Folder", "version": "1.0"}},
        "relationships": {"parent": {"data": {"type": "folders", "id": parent}}}}});
    let (s, v) = post_jsonapi(&w.emu, &w.tok, &w.data_path("folders"), &body).await;
    assert_eq!(s, 201, "POST folders {name}: {v}");
    v["data"]["id"].as_str().expect("folder id").to_string()
}

/// Names of the visible entries of `folder`, in listing order.
async fn names_in(w: &Dm, folder: &str) -> Vec<String> {
    let (data, _) = folder_entries(&w.emu, &w.tok, &w.project, folder, false).await;
    data.iter().map(|d| name_of(d).to_string()).collect()
}

/// The parent id of a folder (`GET folders/:id`).
async fn parent_of(w: &Dm, folder: &str) -> String {
    let v = get_ok(&w.emu, &w.tok, &res(w, "folders", folder)).await;
    v["data"]["relationships"]["parent"]["data"]["id"]
        .as_str()
        .expect("parent id")
        .to_string()
}

/// The detail of a JSON:API error of `status`.
fn detail(body: &Value, status: u16) -> String {
    assert_jsonapi_error(body, status)["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// An emulator with a BIM 360 hub and a Fusion Team hub (`hubs=2`); the writes go to the team
/// hub's project's "Designs" folder.
async fn team() -> Dm {
    let emu = Emulator::start(&["--generate", "items=3,folders=0,hubs=2"]);
    let tok = emu.token().await;
    let hubs = get_ok(&emu, &tok, "/project/v1/hubs").await;
    let hub = hubs["data"][1]["id"]
        .as_str()
        .expect("second hub")
        .to_string();
    assert!(hub.starts_with("a."), "the second hub is a team hub: {hub}");
    let projects = get_ok(&emu, &tok, &format!("/project/v1/hubs/{hub}/projects")).await;
    let project = projects["data"][0]["id"]
        .as_str()
        .expect("project")
        .to_string();
    let tops = top_folders(&emu, &tok, &hub, &project).await;
    let folder = tops[0]["id"].as_str().expect("top folder").to_string();
    Dm {
        emu,
        tok,
        project,
        folder,
    }
}

#[tokio::test]
async fn folders_are_renamed_moved_hidden_and_restored() {
    let w = Dm::start(&[]).await;
    let a = folder_in(&w, &w.folder, "A").await;
    let b = folder_in(&w, &w.folder, "B").await;
    let inner = folder_in(&w, &a, "Inner").await;
    w.emu.reset_stats().await;
    let before = get_ok(&w.emu, &w.tok, &res(&w, "folders", &a)).await;
    w.emu.advance_clock(60).await;

    // Rename: 200 with the folder, its times moved on.
    let (s, v) = patch(
        &w,
        &res(&w, "folders", &a),
        &folder_patch(&a, json!({"name": "A2"}), None),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["jsonapi"]["version"], "1.0");
    assert_eq!(v["data"]["type"], "folders");
    assert_eq!(v["data"]["id"], a.as_str());
    assert_eq!(v["data"]["attributes"]["name"], "A2");
    assert_eq!(v["data"]["attributes"]["displayName"], "A2");
    assert_ne!(
        v["data"]["attributes"]["lastModifiedTime"],
        before["data"]["attributes"]["lastModifiedTime"]
    );
    assert_eq!(
        v["data"]["attributes"]["createTime"],
        before["data"]["attributes"]["createTime"]
    );
    let listed = names_in(&w, &w.folder).await;
    assert!(
        listed.contains(&"A2".to_string()) && !listed.contains(&"A".to_string()),
        "{listed:?}"
    );

    // Move B into A2: it leaves the top folder and comes last in A2.
    let (s, v) = patch(
        &w,
        &res(&w, "folders", &b),
        &folder_patch(&b, json!({}), Some(&a)),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["data"]["relationships"]["parent"]["data"]["id"],
        a.as_str()
    );
    assert_eq!(parent_of(&w, &b).await, a);
    assert_eq!(names_in(&w, &a).await, ["Inner", "B"]);
    assert!(!names_in(&w, &w.folder).await.contains(&"B".to_string()));

    // Rename and move back in one PATCH, with the id left out of the body.
    let body = json!({"jsonapi": {"version": "1.0"}, "data": {"type": "folders",
        "attributes": {"name": "B2"},
        "relationships": {"parent": {"data": {"type": "folders", "id": w.folder}}}}});
    let (s, v) = patch(&w, &res(&w, "folders", &b), &body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(names_in(&w, &a).await, ["Inner"]);
    assert_eq!(
        names_in(&w, &w.folder).await.last().map(String::as_str),
        Some("B2")
    );

    // Hide (the BIM 360 delete): gone from the listing unless includeHidden; its contents stay.
    let (s, v) = patch(
        &w,
        &res(&w, "folders", &a),
        &folder_patch(&a, json!({"hidden": true}), None),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["attributes"]["hidden"], true);
    assert!(!names_in(&w, &w.folder).await.contains(&"A2".to_string()));
    let (hidden, _) = child(&w.emu, &w.tok, &w.project, &w.folder, "A2", true).await;
    assert_eq!(hidden["attributes"]["hidden"], true);
    assert_eq!(names_in(&w, &a).await, ["Inner"]);
    assert_eq!(parent_of(&w, &inner).await, a);

    // Its name is free while it is hidden; restoring it then conflicts (409).
    let other = folder_in(&w, &w.folder, "A2").await;
    let (s, v) = patch(
        &w,
        &res(&w, "folders", &a),
        &folder_patch(&a, json!({"hidden": false}), None),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(assert_jsonapi_error(&v, 409)["code"], "CONFLICT");
    // Restored under another name in one PATCH, it is back.
    let (s, v) = patch(
        &w,
        &res(&w, "folders", &a),
        &folder_patch(&a, json!({"hidden": false, "name": "A3"}), None),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["attributes"]["hidden"], false);
    let listed = names_in(&w, &w.folder).await;
    assert!(
        listed.contains(&"A3".to_string()) && listed.contains(&"A2".to_string()),
        "{listed:?}"
    );
    let _ = other;

    // A PATCH that changes nothing answers 200 and counts nothing.
    let (s, v) = patch(
        &w,
        &res(&w, "folders", &a),
        &folder_patch(&a, json!({"name": "A3"}), None),
    )
    .await;
    assert_eq!(s, 200, "{v}");

    let stats = w.emu.stats().await;
    let writes = &stats["writes"];
    for (k, n) in [
        ("folders_renamed", 3),
        ("folders_moved", 2),
        ("folders_hidden", 1),
        ("folders_restored", 1),
        ("folders_created", 1),
    ] {
        assert_eq!(writes[k], n, "writes.{k} in {stats}");
    }
    assert_eq!(stats["routes"]["patch_folder"], 7, "{stats}");
    assert_eq!(stats["statuses"]["409"], 1, "{stats}");
}

#[tokio::test]
async fn folder_patches_that_are_refused() {
    let w = Dm::start(&["--generate", "items=3,folders=0,projects=2"]).await;
    let a = folder_in(&w, &w.folder, "A").await;
    let sub = folder_in(&w, &a, "Sub").await;
    folder_in(&w, &w.folder, "Taken").await;
    let (_, _) = w.item("file.txt", b"f").await;
    let path = res(&w, "folders", &a);
    let rename = |n: &str| folder_patch(&a, json!({"name": n}), None);
    w.emu.reset_stats().await;

    // 409: the name of a visible folder or item in the (new) parent.
    for taken in ["Taken", "file.txt"] {
        let (s, v) = patch(&w, &path, &rename(taken)).await;
        assert_eq!(s, 409, "{taken}: {v}");
        assert_jsonapi_error(&v, 409);
    }
    let taken_below = folder_in(&w, &sub, "A").await;
    let _ = taken_below;
    let b = folder_in(&w, &w.folder, "B").await;
    let (s, v) = patch(
        &w,
        &res(&w, "folders", &b),
        &folder_patch(&b, json!({"name": "A"}), Some(&sub)),
    )
    .await;
    assert_eq!(s, 409, "Sub holds an A already: {v}");

    // 400: into itself or its own subtree.
    for into in [&a, &sub] {
        let (s, v) = patch(&w, &path, &folder_patch(&a, json!({}), Some(into))).await;
        assert_eq!(s, 400, "{v}");
        assert!(detail(&v, 400).contains("into itself"), "{v}");
    }

    // 403: straight under the BIM 360 project root, and the root itself.
    let root = parent_of(&w, &w.folder).await;
    let (s, v) = patch(&w, &path, &folder_patch(&a, json!({}), Some(&root))).await;
    assert_eq!(s, 403, "{v}");
    assert!(detail(&v, 403).contains("root"), "{v}");
    let (s, v) = patch(
        &w,
        &res(&w, "folders", &root),
        &folder_patch(&root, json!({"name": "R"}), None),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(assert_jsonapi_error(&v, 403)["code"], "ERR_NOT_AUTHORIZED");

    // 404: a parent in another project, or no such folder.
    let hubs = get_ok(&w.emu, &w.tok, "/project/v1/hubs").await;
    let hub = hubs["data"][0]["id"].as_str().expect("hub");
    let projects = get_ok(&w.emu, &w.tok, &format!("/project/v1/hubs/{hub}/projects")).await;
    let other_project = projects["data"][1]["id"].as_str().expect("second project");
    assert_ne!(other_project, w.project);
    let elsewhere = top_folders(&w.emu, &w.tok, hub, other_project).await[0]["id"]
        .as_str()
        .expect("its top folder")
        .to_string();
    let (s, v) = patch(&w, &path, &folder_patch(&a, json!({}), Some(&elsewhere))).await;
    assert_eq!(s, 404, "{v}");
    assert_jsonapi_error(&v, 404);
    let last = if a.ends_with('A') { 'B' } else { 'A' };
    let missing = format!("{}{last}", &a[..a.len() - 1]);
    let (s, v) = patch(
        &w,
        &res(&w, "folders", &missing),
        &folder_patch(&missing, json!({"name": "N"}), None),
    )
    .await;
    assert_eq!(s, 404, "{v}");

    // 400: malformed bodies, bad names, a body about another folder.
    for (bad, why) in [
        (
            json!({"data": {"type": "items", "id": a, "attributes": {"name": "N"}}}),
            "type",
        ),
        (folder_patch(&sub, json!({"name": "N"}), None), "id"),
        (folder_patch(&a, json!({}), None), "no change"),
        (folder_patch(&a, json!({"name": "a:b"}), None), "reserved"),
        (folder_patch(&a, json!({"name": ""}), None), "empty"),
        (folder_patch(&a, json!({"name": 7}), None), "not a string"),
        (
            folder_patch(&a, json!({"hidden": "yes"}), None),
            "not a bool",
        ),
        (
            folder_patch(&a, json!({"name": "N", "extension": {}}), None),
            "other attribute",
        ),
        (json!({"jsonapi": {}}), "no data"),
    ] {
        let (s, v) = patch(&w, &path, &bad).await;
        assert_eq!(s, 400, "{why}: {v}");
        assert_eq!(assert_jsonapi_error(&v, 400)["code"], "BAD_INPUT", "{why}");
    }
    let r = http()
        .patch(w.emu.url(&path))
        .bearer_auth(&w.tok)
        .body("not json")
        .send()
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 400);

    // 403 AUTH-010: PATCH needs data:write; data:create or data:read alone is not enough.
    for scope in ["data:create", "data:read"] {
        let t = w.emu.token_with(scope).await;
        let (s, v) = patch_as(&w.emu, &t, &path, &rename("N")).await;
        assert_eq!(s, 403, "{scope}: {v}");
        assert_eq!(v["errorCode"], "AUTH-010", "{v}");
    }

    // 403: a read-only project.
    w.emu.set_read_only(&w.project, true).await;
    let (s, v) = patch(&w, &path, &rename("N")).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(assert_jsonapi_error(&v, 403)["code"], "ERR_NOT_AUTHORIZED");
    w.emu.set_read_only(&w.project, false).await;

    // Nothing was changed by any of it.
    let writes = w.emu.stats().await["writes"].clone();
    for k in [
        "folders_renamed",
        "folders_moved",
        "folders_hidden",
        "folders_restored",
    ] {
        assert_eq!(writes[k], 0, "writes.{k}: {writes}");
    }
    assert_eq!(parent_of(&w, &a).await, w.folder);
    assert_eq!(parent_of(&w, &sub).await, a);
    let (s, v) = patch(&w, &path, &rename("N")).await;
    assert_eq!(s, 200, "writable again: {v}");
}

#[tokio::test]
async fn item_patch_on_a_team_hub_renames_until_the_next_version() {
    let w = team().await;
    let (item, _) = w.item("a.txt", b"a").await;
    w.item("c.txt", b"c").await;
    assert_eq!(w.post_folder("Sub").await.0, 201);
    w.emu.reset_stats().await;
    let path = res(&w, "items", &item);

    let (s, v) = patch(&w, &path, &item_patch(&item, "b.txt")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["type"], "items");
    assert_eq!(v["data"]["id"], item.as_str());
    assert_eq!(v["data"]["attributes"]["displayName"], "b.txt");
    assert_eq!(
        v["data"]["attributes"]["extension"]["type"],
        "items:autodesk.core:File"
    );
    assert_eq!(
        v["included"][0]["attributes"]["name"], "a.txt",
        "the tip keeps its name"
    );

    // The listing names the item b.txt; its tip version is still a.txt (history).
    let (entry, tip) = child(&w.emu, &w.tok, &w.project, &w.folder, "b.txt", false).await;
    assert_eq!(entry["id"], item.as_str());
    let tip = tip.expect("tip");
    assert_eq!(tip["attributes"]["name"], "a.txt");
    assert_eq!(tip["attributes"]["displayName"], "a.txt");
    let got = w.get_item(&item).await;
    assert_eq!(got["data"]["attributes"]["displayName"], "b.txt");

    // The item holds b.txt, not a.txt: a new a.txt is fine, b.txt is taken.
    let (s, v) = w
        .post_item("a.txt", &w.uploaded("a.txt", b"new a").await.0)
        .await;
    assert_eq!(s, 201, "a.txt is free again: {v}");
    let (s, v) = w
        .post_item("b.txt", &w.uploaded("b.txt", b"new b").await.0)
        .await;
    assert_eq!(s, 409, "{v}");

    // 409 for a name a visible item or folder holds; 400 for a bad name or body.
    for taken in ["c.txt", "Sub", "a.txt"] {
        let (s, v) = patch(&w, &path, &item_patch(&item, taken)).await;
        assert_eq!(s, 409, "{taken}: {v}");
        assert_jsonapi_error(&v, 409);
    }
    for (bad, why) in [
        (item_patch(&item, "x/y.txt"), "slash"),
        (item_patch(&item, ""), "empty"),
        (
            json!({"data": {"type": "items", "attributes": {}}}),
            "no displayName",
        ),
        (
            json!({"data": {"type": "items", "attributes": {"displayName": "d.txt", "hidden": true}}}),
            "another attribute",
        ),
        (
            json!({"data": {"type": "items", "attributes": {"displayName": "d.txt"},
                "relationships": {"parent": {"data": {"type": "folders", "id": w.folder}}}}}),
            "a move",
        ),
        (
            json!({"data": {"type": "versions", "attributes": {"displayName": "d.txt"}}}),
            "type",
        ),
    ] {
        let (s, v) = patch(&w, &path, &bad).await;
        assert_eq!(s, 400, "{why}: {v}");
        assert_eq!(assert_jsonapi_error(&v, 400)["code"], "BAD_INPUT");
    }

    // 423 while another user holds the item; the holder gets through.
    w.emu.reserve(&item, "JANE1", "Jane Doe").await;
    let (s, v) = patch(&w, &path, &item_patch(&item, "d.txt")).await;
    assert_eq!(s, 423, "{v}");
    assert!(detail(&v, 423).contains("Jane Doe"));
    let r = http()
        .patch(w.emu.url(&path))
        .bearer_auth(&w.tok)
        .header("x-user-id", "JANE1")
        .header("Content-Type", "application/vnd.api+json")
        .body(item_patch(&item, "d.txt").to_string())
        .send()
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 200);
    w.emu.release(&item).await;

    // A new version: the item follows its new tip's name again.
    let (next, _) = w.uploaded("e.txt", b"e").await;
    let (s, v) = w.post_version(&item, "e.txt", TEAM_FILE, Some(&next)).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["included"][0]["attributes"]["displayName"], "e.txt");
    let got = w.get_item(&item).await;
    assert_eq!(got["data"]["attributes"]["displayName"], "e.txt");
    let listed = names_in(&w, &w.folder).await;
    assert!(
        !listed.contains(&"d.txt".to_string()) && listed.contains(&"e.txt".to_string()),
        "{listed:?}"
    );

    let writes = w.emu.stats().await["writes"].clone();
    assert_eq!(writes["items_renamed"], 2, "{writes}");
    assert_eq!(writes["versions_created"], 1, "{writes}");
}

#[tokio::test]
async fn item_and_version_patch_are_refused_on_bim360() {
    let w = Dm::start(&[]).await;
    let (item, _) = w.item("plan.pdf", b"p").await;
    let v1 = w.get_item(&item).await["included"][0]["id"]
        .as_str()
        .expect("tip id")
        .to_string();
    for (path, body) in [
        (res(&w, "items", &item), item_patch(&item, "other.pdf")),
        (res(&w, "versions", &v1), version_patch(&v1, "other.pdf")),
    ] {
        let (s, v) = patch(&w, &path, &body).await;
        assert_eq!(s, 400, "{v}");
        assert_eq!(assert_jsonapi_error(&v, 400)["code"], "BAD_INPUT");
        let d = detail(&v, 400);
        assert!(
            d.contains("not supported for BIM 360") && d.contains("new version"),
            "{d}"
        );
    }
    let got = w.get_item(&item).await;
    assert_eq!(got["data"]["attributes"]["displayName"], "plan.pdf");
    assert_eq!(got["included"][0]["attributes"]["name"], "plan.pdf");
    let writes = w.emu.stats().await["writes"].clone();
    assert_eq!(
        (
            writes["items_renamed"].as_u64(),
            writes["versions_renamed"].as_u64()
        ),
        (Some(0), Some(0))
    );

    // The BIM 360 way: a new version with the new name, reusing the tip's storage.
    let storage = got["included"][0]["relationships"]["storage"]["data"]["id"]
        .as_str()
        .expect("storage")
        .to_string();
    let (s, v) = w
        .post_version(&item, "other.pdf", BIM_FILE, Some(&storage))
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        w.get_item(&item).await["data"]["attributes"]["displayName"],
        "other.pdf"
    );
}

#[tokio::test]
async fn version_patch_on_a_team_hub() {
    let w = team().await;
    let (item, _) = w.item("a.txt", b"1").await;
    let (next, _) = w.uploaded("a.txt", b"2").await;
    let (s, v) = w.post_version(&item, "a.txt", TEAM_FILE, Some(&next)).await;
    assert_eq!(s, 201, "{v}");
    let v2 = v["data"]["id"].as_str().expect("v2").to_string();
    let v1 = v2.replace("?version=2", "?version=1");
    w.item("taken.txt", b"t").await;
    w.emu.reset_stats().await;

    // An older version: renamed, the item and its tip untouched.
    let (s, v) = patch(
        &w,
        &res(&w, "versions", &v1),
        &version_patch(&v1, "old name.txt"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["id"], v1.as_str());
    assert_eq!(v["data"]["attributes"]["name"], "old name.txt");
    assert_eq!(v["included"][0]["id"], item.as_str());
    let again = get_ok(&w.emu, &w.tok, &res(&w, "versions", &v1)).await;
    assert_eq!(again["data"]["attributes"]["name"], "old name.txt");
    assert_eq!(
        w.get_item(&item).await["data"]["attributes"]["displayName"],
        "a.txt"
    );

    // The tip: the item goes by it, so the name must be free.
    let (s, v) = patch(
        &w,
        &res(&w, "versions", &v2),
        &version_patch(&v2, "taken.txt"),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    let (s, v) = patch(&w, &res(&w, "versions", &v2), &version_patch(&v2, "b.txt")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["included"][0]["attributes"]["displayName"], "b.txt");
    let (entry, tip) = child(&w.emu, &w.tok, &w.project, &w.folder, "b.txt", false).await;
    assert_eq!(entry["id"], item.as_str());
    assert_eq!(tip.expect("tip")["attributes"]["name"], "b.txt");

    // 400 for other attributes or a bad name; 404 for no such version; 423 when reserved.
    for bad in [
        json!({"data": {"type": "versions", "attributes": {"name": "c.txt", "extension": {}}}}),
        json!({"data": {"type": "versions", "attributes": {}}}),
        version_patch(&v2, "c\0.txt"),
        version_patch(&v1, "c.txt"),
    ] {
        let (s, v) = patch(&w, &res(&w, "versions", &v2), &bad).await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    let v9 = v2.replace("?version=2", "?version=9");
    let (s, v) = patch(&w, &res(&w, "versions", &v9), &version_patch(&v9, "c.txt")).await;
    assert_eq!(s, 404, "{v}");
    w.emu.reserve(&item, "JANE1", "Jane Doe").await;
    let (s, v) = patch(&w, &res(&w, "versions", &v1), &version_patch(&v1, "c.txt")).await;
    assert_eq!(s, 423, "{v}");

    let writes = w.emu.stats().await["writes"].clone();
    assert_eq!(writes["versions_renamed"], 2, "{writes}");
    assert_eq!(writes["items_renamed"], 0, "{writes}");
}

#[tokio::test]
async fn a_bim360_tombstone_hides_the_item_and_keeps_its_history() {
    let w = Dm::start(&[]).await;
    let bytes = pseudo_bytes(5000, 3);
    let (item, _) = w.item("gone.pdf", &bytes).await;
    let (locked, _) = w.item("locked.pdf", b"l").await;
    w.emu.reset_stats().await;

    let (s, v) = w.post_version(&item, "gone.pdf", DELETED, None).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["included"][0]["attributes"]["hidden"], true);
    assert!(!names_in(&w, &w.folder)
        .await
        .contains(&"gone.pdf".to_string()));

    // Version 1 is still there, and its bytes still download.
    let versions = get_ok(
        &w.emu,
        &w.tok,
        &format!("{}/versions", res(&w, "items", &item)),
    )
    .await;
    let v1 = versions["data"][1].clone();
    assert_eq!(v1["attributes"]["versionNumber"], 1);
    let v1 = get_ok(
        &w.emu,
        &w.tok,
        &res(&w, "versions", v1["id"].as_str().expect("id")),
    )
    .await;
    let storage = v1["data"]["relationships"]["storage"]["data"]["id"]
        .as_str()
        .expect("v1 storage");
    let key = storage.rsplit('/').next().expect("key");
    let (s, d) = signeds3download(&w.emu, &w.tok, DM_BUCKET, key, "").await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(w.download(key).await, bytes);

    // Deleting it again: 409, nothing made.
    let (s, v) = w.post_version(&item, "gone.pdf", DELETED, None).await;
    assert_eq!(s, 409, "{v}");
    assert!(detail(&v, 409).contains("already deleted"), "{v}");

    // A reserved item is not deleted under its holder (423).
    w.emu.reserve(&locked, "JANE1", "Jane Doe").await;
    let (s, v) = w.post_version(&locked, "locked.pdf", DELETED, None).await;
    assert_eq!(s, 423, "{v}");

    let writes = w.emu.stats().await["writes"].clone();
    assert_eq!(writes["tombstones"], 1, "{writes}");
    assert_eq!(
        writes["versions_created"], 1,
        "a tombstone is a version too: {writes}"
    );
}

#[tokio::test]
async fn tombstones_are_refused_on_team_hubs() {
    let w = team().await;
    let (item, _) = w.item("kept.txt", b"k").await;
    w.emu.reset_stats().await;
    let (s, v) = w.post_version(&item, "kept.txt", DELETED, None).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(assert_jsonapi_error(&v, 400)["code"], "BAD_INPUT");
    assert!(detail(&v, 400).contains("Deleting is not supported for this hub type"));
    let got = w.get_item(&item).await;
    assert_eq!(got["data"]["attributes"]["hidden"], false);
    assert!(names_in(&w, &w.folder)
        .await
        .contains(&"kept.txt".to_string()));
    // Refused whoever holds the item: the hub cannot delete at all.
    w.emu.reserve(&item, "JANE1", "Jane Doe").await;
    let (s, _) = w.post_version(&item, "kept.txt", DELETED, None).await;
    assert_eq!(s, 400);
    let writes = w.emu.stats().await["writes"].clone();
    assert_eq!(
        (
            writes["tombstones"].as_u64(),
            writes["versions_created"].as_u64()
        ),
        (Some(0), Some(0))
    );

    // Folders may still be moved straight under a team project's root (no BIM 360 rule).
    let sub = folder_in(&w, &w.folder, "Sub").await;
    let root = parent_of(&w, &w.folder).await;
    let (s, v) = patch(
        &w,
        &res(&w, "folders", &sub),
        &folder_patch(&sub, json!({}), Some(&root)),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn refuse_storage_reuse_refuses_storage_a_version_holds() {
    let w = Dm::start(&[]).await;
    let (item, storage) = w.item("r.pdf", b"r").await;
    // By default a new version may reuse its tip's storage (a rename without re-upload).
    let (s, v) = w
        .post_version(&item, "r2.pdf", BIM_FILE, Some(&storage))
        .await;
    assert_eq!(s, 201, "{v}");

    let (s, echoed) = w
        .emu
        .put_faults(&json!({"refuse_storage_reuse": true}))
        .await;
    assert_eq!(s, 200, "{echoed}");
    assert_eq!(echoed["refuse_storage_reuse"], true);
    let (s, v) = w
        .post_version(&item, "r3.pdf", BIM_FILE, Some(&storage))
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(assert_jsonapi_error(&v, 400)["code"], "BAD_INPUT");
    assert!(detail(&v, 400).contains("storage is already used by another version"));
    let (s, v) = w.post_item("copy.pdf", &storage).await;
    assert_eq!(s, 400, "{v}");
    // Fresh storage is fine.
    let (fresh, _) = w.uploaded("r3.pdf", b"r3").await;
    let (s, v) = w
        .post_version(&item, "r3.pdf", BIM_FILE, Some(&fresh))
        .await;
    assert_eq!(s, 201, "{v}");
    let got = w.emu.get_json(&w.tok, "/__emulator/faults").await.1;
    assert_eq!(got["refuse_storage_reuse"], true);
    let (_, off) = w.emu.put_faults(&json!({})).await;
    assert_eq!(off["refuse_storage_reuse"], false);
}

#[tokio::test]
async fn patch_routes_are_counted_faulted_dropped_and_limited() {
    let w = team().await;
    let (item, _) = w.item("i.txt", b"i").await;
    let v1 = w.get_item(&item).await["included"][0]["id"]
        .as_str()
        .expect("tip")
        .to_string();
    let f = folder_in(&w, &w.folder, "F").await;
    w.emu.reset_stats().await;
    let fpath = res(&w, "folders", &f);

    // route_faults: the first PATCH folders fails 503, the next goes through.
    let faults = json!({"route_faults": {"patch_folder": {"fail_next": 1, "status": 503}}});
    assert_eq!(w.emu.put_faults(&faults).await.0, 200);
    let (s, v) = patch(&w, &fpath, &folder_patch(&f, json!({"name": "F1"}), None)).await;
    assert_eq!(s, 503, "{v}");
    assert_jsonapi_error(&v, 503);
    let (s, v) = patch(&w, &fpath, &folder_patch(&f, json!({"name": "F1"}), None)).await;
    assert_eq!(s, 200, "{v}");
    for key in ["patch_item", "patch_version"] {
        let faults = json!({"route_faults": {(key): {"fail_next": 1, "status": 500}}});
        let (s, v) = w.emu.put_faults(&faults).await;
        assert_eq!(s, 200, "{key} is a route key: {v}");
    }
    assert_eq!(w.emu.put_faults(&json!({})).await.0, 200);
    assert_eq!(
        patch(&w, &res(&w, "items", &item), &item_patch(&item, "j.txt"))
            .await
            .0,
        200
    );
    assert_eq!(
        patch(&w, &res(&w, "versions", &v1), &version_patch(&v1, "k.txt"))
            .await
            .0,
        200
    );

    // drop_rate: the rename is made, its answer lost.
    assert_eq!(w.emu.put_faults(&json!({"drop_rate": 1.0})).await.0, 200);
    let r = http()
        .patch(w.emu.url(&fpath))
        .bearer_auth(&w.tok)
        .header("Content-Type", "application/vnd.api+json")
        .body(folder_patch(&f, json!({"name": "F2"}), None).to_string())
        .send()
        .await;
    let whole = match r {
        Ok(r) => r
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok()),
        Err(_) => None,
    };
    assert!(whole.is_none(), "the answer is lost: {whole:?}");
    assert_eq!(w.emu.put_faults(&json!({})).await.0, 200);
    let now = get_ok(&w.emu, &w.tok, &fpath).await;
    assert_eq!(now["data"]["attributes"]["name"], "F2", "made all the same");

    let stats = w.emu.stats().await;
    let routes = &stats["routes"];
    assert_eq!(routes["patch_folder"], 3, "{stats}");
    assert_eq!(routes["patch_item"], 1, "{stats}");
    assert_eq!(routes["patch_version"], 1, "{stats}");
    assert_eq!(
        stats["requests"]["upload"], 5,
        "PATCH counts as a write: {stats}"
    );
    assert_eq!(stats["injected"]["route_fault"], 1);
    assert_eq!(stats["injected"]["drop_answer"], 1);
    let writes = &stats["writes"];
    assert_eq!(writes["folders_renamed"], 2, "{stats}");
    assert_eq!(writes["items_renamed"], 1);
    assert_eq!(writes["versions_renamed"], 1);
}

#[tokio::test]
async fn documented_patch_limits_answer_429() {
    let w = Dm::start(&[
        "--generate",
        "items=1,folders=0",
        "--rate-limits",
        "documented",
    ])
    .await;
    let c = &http();
    let tok = w.tok.as_str();
    let (_, project) = first_project(&w.emu, tok).await;
    // Empty bodies: the limit is counted before the body is read, so the 400s count too.
    for kind in ["folders", "items", "versions"] {
        let url = w.emu.url(&format!("/data/v1/projects/{project}/{kind}/x"));
        for i in 0..50 {
            let r = c
                .patch(&url)
                .bearer_auth(tok)
                .body("{}")
                .send()
                .await
                .expect("PATCH");
            assert_ne!(r.status(), 429, "PATCH {kind}: request {} of 50", i + 1);
        }
        let r = c
            .patch(&url)
            .bearer_auth(tok)
            .body("{}")
            .send()
            .await
            .expect("PATCH");
        assert_eq!(r.status(), 429, "PATCH {kind}: request 51");
        assert!(header(r.headers(), "retry-after").is_some());
    }
    // PATCH folders shares its row of the table (50 a minute) with POST folders.
    let (s, _) = post_jsonapi(&w.emu, tok, &w.data_path("folders"), &json!({})).await;
    assert_eq!(s, 429, "POST folders draws on the same 50");
    let other = token_for(&w.emu, "other-app", "s", "data:read data:write").await;
    let r = c
        .patch(w.emu.url(&format!("/data/v1/projects/{project}/folders/x")))
        .bearer_auth(&other)
        .body("{}")
        .send()
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 400, "another app is admitted");
}
