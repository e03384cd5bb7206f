//! Who may write: a reserved (locked) item refuses other users' versions with 423, a read-only
//! project refuses every write with 403 while reads go on, and writes need `data:create` or
//! `data:write` (aps-api.md §6, §8, §9.3, §10).

use crate::support::api::{assert_jsonapi_error, post_jsonapi};
use crate::support::dm::{child, folder_by_path, folder_entries};
use crate::support::http::{enc, get_authed, http};
use crate::support::oss::{signeds3download, upload_parts, DM_BUCKET};
use crate::support::shapes::rfc3339_ms;
use crate::support::write::Dm;
use serde_json::{json, Value};

const FILE: &str = "versions:autodesk.bim360:File";

#[tokio::test]
async fn a_reserved_item_takes_versions_only_from_its_user() {
    let w = Dm::start(&[]).await;
    let (item, _) = w.item("plan.pdf", b"v1").await;
    let v1 = w.get_item(&item).await["data"]["relationships"]["tip"]["data"]["id"]
        .as_str()
        .expect("tip id")
        .to_string();
    let (v2, _) = w.uploaded("plan.pdf", b"v2").await;

    let lock = w.emu.reserve(&item, "JANE1", "Jane Doe").await;
    assert_eq!(lock["reserved"], true, "{lock}");
    // The item, and its entry in the folder listing, show who holds it since when.
    let it = w.get_item(&item).await;
    let attrs = &it["data"]["attributes"];
    assert_eq!(attrs["reserved"], true, "{it}");
    assert_eq!(attrs["reservedUserId"], "JANE1");
    assert_eq!(attrs["reservedUserName"], "Jane Doe");
    rfc3339_ms(attrs["reservedTime"].as_str().expect("reservedTime"));
    let (entry, _) = child(&w.emu, &w.tok, &w.project, &w.folder, "plan.pdf", false).await;
    assert_eq!(entry["attributes"]["reservedUserId"], "JANE1");
    assert_eq!(entry["attributes"]["reserved"], true);

    // The app alone, another user, a 3-legged user: 423 with a JSON:API error.
    let three = w.three_legged("data:read data:write").await;
    let me = w.user_of(&three).await;
    for (token, headers) in [
        (w.tok.as_str(), vec![]),
        (w.tok.as_str(), vec![("x-user-id", "BOB2")]),
        (three.as_str(), vec![]),
        // A 3-legged token acts as its own user whatever x-user-id says.
        (three.as_str(), vec![("x-user-id", "JANE1")]),
    ] {
        let (s, v) = w
            .post_file_version_as(token, &headers, &item, "plan.pdf", &v2)
            .await;
        assert_eq!(s, 423, "{headers:?}: {v}");
        assert!(assert_jsonapi_error(&v, 423)["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Jane Doe")));
    }
    // A tombstone and a restore are versions too.
    let (s, v) = w
        .post_version(&item, "plan.pdf", "versions:autodesk.core:Deleted", None)
        .await;
    assert_eq!(s, 423, "tombstone: {v}");
    let copy = w.data_path(&format!("versions?copyFrom={}", enc(&v1)));
    let (s, v) = post_jsonapi(
        &w.emu,
        &w.tok,
        &copy,
        &json!({"data": {"type": "versions"}}),
    )
    .await;
    assert_eq!(s, 423, "copyFrom: {v}");
    assert_eq!(w.emu.stats().await["writes"]["versions_created"], 0);

    // The holder gets through: a 2-legged token acting as that user.
    let (s, v) = w
        .post_file_version_as(&w.tok, &[("x-user-id", "JANE1")], &item, "plan.pdf", &v2)
        .await;
    assert_eq!(s, 201, "{v}");
    // Reserved for the 3-legged user, that token gets through and the app alone does not.
    w.emu.reserve(&item, &me, "Emulator User").await;
    let (v3, _) = w.uploaded("plan.pdf", b"v3").await;
    let (s, v) = w
        .post_file_version_as(&w.tok, &[], &item, "plan.pdf", &v3)
        .await;
    assert_eq!(s, 423, "{v}");
    let (s, v) = w
        .post_file_version_as(&three, &[], &item, "plan.pdf", &v3)
        .await;
    assert_eq!(s, 201, "{v}");

    // Released: anyone again, and the attributes say so.
    w.emu.release(&item).await;
    let (v4, _) = w.uploaded("plan.pdf", b"v4").await;
    let (s, v) = w
        .post_file_version_as(&w.tok, &[], &item, "plan.pdf", &v4)
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["data"]["attributes"]["versionNumber"], 4);
    let attrs = &w.get_item(&item).await["data"]["attributes"];
    assert_eq!(attrs["reserved"], false);
    assert!(attrs.get("reservedUserId").is_none(), "{attrs}");
    assert_eq!(w.emu.stats().await["writes"]["versions_created"], 3);
}

#[tokio::test]
async fn reservation_control_route_errors() {
    let w = Dm::start(&[]).await;
    let (item, _) = w.item("a.txt", b"a").await;
    let url = |id: &str| w.emu.url(&format!("/__emulator/reservations/{}", enc(id)));
    let put = |id: String, body: Value| async move {
        http()
            .put(url(&id))
            .json(&body)
            .send()
            .await
            .expect("PUT")
            .status()
            .as_u16()
    };
    let unknown = "urn:adsk.wipprod:dm.lineage:AAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(put(unknown.into(), json!({"user_id": "U"})).await, 404);
    assert_eq!(put(item.clone(), json!({"user": "U"})).await, 400);
    assert_eq!(put(item.clone(), json!({"user_id": ""})).await, 400);
    // The name defaults to the id.
    assert_eq!(put(item.clone(), json!({"user_id": "U9"})).await, 200);
    let attrs = &w.get_item(&item).await["data"]["attributes"];
    assert_eq!(attrs["reservedUserName"], "U9");
    let r = http().delete(url(unknown)).send().await.expect("DELETE");
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn the_generated_locked_item_is_held_by_someone_else() {
    let emu_args = ["--generate", "items=1,folders=0,awkward"];
    let w = Dm::start(&emu_args).await;
    let (_, awkward) = folder_by_path(&w.emu, &w.tok, &["Awkward"]).await;
    let (locked, _) = child(&w.emu, &w.tok, &w.project, &awkward, "Locked.rvt", false).await;
    let attrs = &locked["attributes"];
    assert_eq!(attrs["reserved"], true);
    let three = w.three_legged("data:read data:write").await;
    assert_ne!(attrs["reservedUserId"], w.user_of(&three).await.as_str());
    let (v2, _) = w.uploaded("Locked.rvt", b"mine").await;
    let id = locked["id"].as_str().expect("id");
    let (s, v) = w
        .post_file_version_as(&three, &[], id, "Locked.rvt", &v2)
        .await;
    assert_eq!(s, 423, "{v}");
}

#[tokio::test]
async fn a_read_only_project_refuses_writes_and_serves_reads() {
    let w = Dm::start(&[]).await;
    let (placeholder_urn, placeholder) = w.storage("later.bin").await;
    let (item, _) = w.item("kept.txt", b"kept").await;
    let (uploaded, uploaded_key) = w.uploaded("next.txt", b"next").await;
    // An upload started before the project turned read-only, completed after.
    let start = w
        .emu
        .get_json(&w.tok, &Dm::upload_path(&placeholder, ""))
        .await
        .1;
    let part_url = start["urls"][0].as_str().expect("url").to_string();
    w.emu.reset_stats().await;

    w.emu.set_read_only(&w.project, true).await;
    let refused = |what: &str, (s, v): (u16, Value)| {
        assert_eq!(s, 403, "{what}: {v}");
        assert_eq!(assert_jsonapi_error(&v, 403)["code"], "ERR_NOT_AUTHORIZED");
    };
    refused("storage", w.post_storage(&w.tok, "new.txt").await);
    refused("items", w.post_item("new.txt", &uploaded).await);
    refused(
        "versions",
        w.post_version(&item, "kept.txt", FILE, Some(&uploaded))
            .await,
    );
    refused("folders", w.post_folder("New").await);
    refused(
        "refs",
        post_jsonapi(
            &w.emu,
            &w.tok,
            &w.data_path(&format!("items/{}/relationships/refs", enc(&item))),
            &json!({"data": {"type": "items", "id": item}}),
        )
        .await,
    );
    // Its storage takes no uploads: OSS refuses in its own error shape.
    let (s, v) = w
        .emu
        .get_json(&w.tok, &Dm::upload_path(&placeholder, ""))
        .await;
    assert_eq!(s, 403, "signeds3upload GET: {v}");
    assert!(v["reason"].is_string(), "{v}");
    let r = http()
        .put(&part_url)
        .body("late")
        .send()
        .await
        .expect("PUT");
    assert_eq!(
        r.status(),
        200,
        "an S3 URL signed earlier still takes the part"
    );
    let (s, v) = w
        .complete_as(
            &w.tok,
            &placeholder,
            &json!({"uploadKey": start["uploadKey"]}),
        )
        .await;
    assert_eq!(s, 403, "signeds3upload POST: {v}");
    assert!(v["reason"].is_string(), "{v}");

    // Reads go on.
    let (data, _) = folder_entries(&w.emu, &w.tok, &w.project, &w.folder, false).await;
    assert!(data.iter().any(|d| d["id"] == item.as_str()));
    w.get_item(&item).await;
    assert_eq!(w.download(&uploaded_key).await, b"next");
    let w_stats = w.emu.stats().await["writes"].clone();
    assert_eq!(w_stats["storage_created"], 0, "{w_stats}");
    assert_eq!(w_stats["items_created"], 0);
    assert_eq!(w_stats["versions_created"], 0);
    assert_eq!(w_stats["folders_created"], 0);
    assert_eq!(w_stats["uploads_completed"], 0);

    // Writable again: the same calls succeed.
    w.emu.set_read_only(&w.project, false).await;
    assert_eq!(w.post_folder("New").await.0, 201);
    let (s, v) = upload_parts(&w.emu, &w.tok, DM_BUCKET, &placeholder, &[b"now"]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["objectId"], placeholder_urn.as_str());
    let (s, _) = signeds3download(&w.emu, &w.tok, DM_BUCKET, &placeholder, "").await;
    assert_eq!(s, 200);
    let r = http()
        .put(w.emu.url("/__emulator/projects/b.no-such-project"))
        .json(&json!({"read_only": true}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 404);
    let r = http()
        .get(w.emu.url(&format!("/__emulator/projects/{}", w.project)))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.expect("json")["read_only"], false);
}

#[tokio::test]
async fn writes_need_data_create_or_data_write() {
    let w = Dm::start(&[]).await;
    let (item, _) = w.item("a.txt", b"a").await;
    let (storage, key) = w.uploaded("b.txt", b"b").await;
    let read_only = w.emu.token_with("data:read").await;
    let gateway_403 = |what: &str, s: u16, v: &Value| {
        assert_eq!(s, 403, "{what}: {v}");
        assert_eq!(v["errorCode"], "AUTH-010", "{what}: {v}");
    };
    let (s, v) = w.post_storage(&read_only, "c.txt").await;
    gateway_403("storage", s, &v);
    let body = w.item_body("c.txt", &storage);
    let (s, v) = post_jsonapi(&w.emu, &read_only, &w.data_path("items"), &body).await;
    gateway_403("items", s, &v);
    let (s, v) = w
        .post_file_version_as(&read_only, &[], &item, "a.txt", &storage)
        .await;
    gateway_403("versions", s, &v);
    let (s, v) = w.post_folder_as(&read_only, "F").await;
    gateway_403("folders", s, &v);
    let (s, v) = w.emu.get_json(&read_only, &Dm::upload_path(&key, "")).await;
    gateway_403("signeds3upload GET", s, &v);
    let (s, v) = w
        .complete_as(&read_only, &key, &json!({"uploadKey": "x"}))
        .await;
    gateway_403("signeds3upload POST", s, &v);
    // Reading is what it may do.
    let r = get_authed(
        &w.emu.url(&w.data_path(&format!("items/{}", enc(&item)))),
        &read_only,
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(w.emu.stats().await["writes"]["folders_created"], 0);

    // Either write scope alone creates (§8: data:write is accepted for POSTs).
    for scope in ["data:create", "data:write"] {
        let t = w.emu.token_with(scope).await;
        let (s, v) = w.post_folder_as(&t, &scope.replace(':', " ")).await;
        assert_eq!(s, 201, "{scope}: {v}");
        let (s, v) = w.post_storage(&t, "d.txt").await;
        assert_eq!(s, 201, "{scope}: {v}");
    }
}
