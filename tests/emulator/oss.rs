//! OSS v2 over real HTTP: buckets (create, list, details, delete), ownership between apps,
//! the three-step signed upload, object listing with `startAt` paging, and deletes
//! (aps-api.md §7.1–§7.8, §7.10, §10.2).

use crate::support::api::{assert_jsonapi_error, header, token_for};
use crate::support::digest::sha1_hex;
use crate::support::dm::get_ok;
use crate::support::emulator::Emulator;
use crate::support::http::{enc, get_authed, http};
use crate::support::oss::{fetch, signed_url, signeds3download, upload_parts};
use crate::support::seed::pseudo_bytes;
use crate::support::shapes::rfc3339_ms;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Bucket-scoped token of the default test app ("test-client").
async fn tok(emu: &Emulator) -> String {
    emu.token().await
}

async fn create_bucket(emu: &Emulator, token: &str, body: Value) -> (u16, Value) {
    let r = http()
        .post(emu.url("/oss/v2/buckets"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("POST bucket");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn delete(emu: &Emulator, token: &str, path: &str) -> u16 {
    http()
        .delete(emu.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("DELETE")
        .status()
        .as_u16()
}

#[tokio::test]
async fn create_bucket_shapes_and_errors() {
    let emu = Emulator::start(&[]);
    let t = tok(&emu).await;
    let (s, b) = create_bucket(
        &emu,
        &t,
        json!({"bucketKey": "apsfs-test.bucket_1", "policyKey": "transient"}),
    )
    .await;
    assert_eq!(s, 200, "create is 200, not 201: {b}");
    assert_eq!(b["bucketKey"], "apsfs-test.bucket_1");
    assert_eq!(b["bucketOwner"], "test-client");
    assert!(b["createdDate"].is_i64(), "createdDate epoch ms: {b}");
    assert_eq!(
        b["permissions"],
        json!([{"authId": "test-client", "access": "full"}])
    );
    assert_eq!(b["policyKey"], "transient");

    let details = get_ok(&emu, &t, "/oss/v2/buckets/apsfs-test.bucket_1/details").await;
    assert_eq!(details, b, "details = the create body");

    let reason = "Valid field 'bucketKey' must be of the form  [-_.a-z0-9]{3,128}";
    for bad in ["Bad_Key", "ab", "has space", "ünï", &"x".repeat(129), ""] {
        let (s, body) = create_bucket(
            &emu,
            &t,
            json!({"bucketKey": bad, "policyKey": "transient"}),
        )
        .await;
        assert_eq!(s, 400, "{bad:?}");
        assert_eq!(body, json!({"reason": reason}), "{bad:?}");
    }
    let (s, body) = create_bucket(
        &emu,
        &t,
        json!({"bucketKey": "apsfs-test.bucket_1", "policyKey": "persistent"}),
    )
    .await;
    assert_eq!(s, 409);
    assert_eq!(body, json!({"reason": "Bucket already exists"}));
    // Keys are global: another app cannot take it either.
    let other = token_for(
        &emu,
        "other-app",
        "other-secret",
        "bucket:create bucket:read data:read",
    )
    .await;
    let (s, body) = create_bucket(
        &emu,
        &other,
        json!({"bucketKey": "apsfs-test.bucket_1", "policyKey": "transient"}),
    )
    .await;
    assert_eq!(s, 409, "{body}");
    let (s, body) = create_bucket(
        &emu,
        &t,
        json!({"bucketKey": "fine-key", "policyKey": "forever"}),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert!(body["reason"].is_string());
}

#[tokio::test]
async fn list_buckets_pages_with_next() {
    let emu = Emulator::start(&[]);
    let t = tok(&emu).await;
    let keys: Vec<String> = (0..5).map(|i| format!("list-bucket-{i}")).collect();
    for k in &keys {
        let (s, _) =
            create_bucket(&emu, &t, json!({"bucketKey": k, "policyKey": "temporary"})).await;
        assert_eq!(s, 200);
    }
    // Someone else's bucket is not listed.
    let other = token_for(&emu, "other-app", "x", "bucket:create bucket:read").await;
    assert_eq!(
        create_bucket(&emu, &other, json!({"bucketKey": "list-bucket-other"}))
            .await
            .0,
        200
    );

    let all = get_ok(&emu, &t, "/oss/v2/buckets").await;
    let items = all["items"].as_array().expect("items");
    assert_eq!(items.len(), 5, "default limit 10 holds all: {all}");
    assert!(all.get("next").is_none());
    for i in items {
        assert!(
            i["bucketKey"].is_string()
                && i["createdDate"].is_i64()
                && i["policyKey"] == "temporary",
            "{i}"
        );
    }

    let mut url = emu.url("/oss/v2/buckets?limit=2");
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = get_ok(&emu, &t, &url).await;
        pages += 1;
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|i| i["bucketKey"].as_str().expect("key").to_string()),
        );
        match page["next"].as_str() {
            Some(n) => {
                assert!(n.starts_with("http://"), "next is absolute: {n}");
                assert!(n.contains("startAt="), "{n}");
                url = n.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, keys);
    let page = get_ok(&emu, &t, "/oss/v2/buckets?startAt=list-bucket-2").await;
    let after: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["bucketKey"].as_str().expect("k"))
        .collect();
    assert_eq!(after, ["list-bucket-3", "list-bucket-4"]);

    for bad in ["300", "0", "101", "x"] {
        let (s, body) = emu
            .get_json(&t, &format!("/oss/v2/buckets?limit={bad}"))
            .await;
        assert_eq!(s, 400, "limit={bad}");
        assert_eq!(body, json!({"reason": "Invalid limit"}), "limit={bad}");
    }
}

#[tokio::test]
async fn other_apps_cannot_see_or_touch_a_bucket() {
    let emu = Emulator::start(&[]);
    let t = tok(&emu).await;
    assert_eq!(
        create_bucket(&emu, &t, json!({"bucketKey": "private-bucket"}))
            .await
            .0,
        200
    );
    let (s, body) = upload_parts(&emu, &t, "private-bucket", "a.txt", &[b"hello"]).await;
    assert_eq!(s, 200, "{body}");

    let other = token_for(
        &emu,
        "intruder",
        "pw",
        "bucket:read bucket:delete data:read data:write data:create",
    )
    .await;
    let (s, body) = emu
        .get_json(&other, "/oss/v2/buckets/private-bucket/details")
        .await;
    assert_eq!(s, 403, "{body}");
    assert!(body["reason"].is_string(), "OSS error body: {body}");
    let (s, body) = emu
        .get_json(&other, "/oss/v2/buckets/private-bucket/objects")
        .await;
    assert_eq!(s, 403, "{body}");
    assert!(body["reason"].is_string());
    let (s, _) = emu
        .get_json(
            &other,
            "/oss/v2/buckets/private-bucket/objects/a.txt/details",
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = signeds3download(&emu, &other, "private-bucket", "a.txt", "").await;
    assert_eq!(s, 403);
    assert_eq!(
        delete(&emu, &other, "/oss/v2/buckets/private-bucket/objects/a.txt").await,
        403
    );
    assert_eq!(
        delete(&emu, &other, "/oss/v2/buckets/private-bucket").await,
        403
    );
    let list = get_ok(&emu, &other, "/oss/v2/buckets").await;
    assert_eq!(list["items"], json!([]));
    // Nobody lists the Data Management bucket.
    let (s, _) = emu
        .get_json(&t, "/oss/v2/buckets/wip.dm.prod/objects")
        .await;
    assert_eq!(s, 403);
    let (s, body) = emu
        .get_json(&t, "/oss/v2/buckets/no-such-bucket/details")
        .await;
    assert_eq!(s, 404);
    assert!(body["reason"].is_string());
    // The owner still can.
    assert_eq!(
        emu.get_json(&t, "/oss/v2/buckets/private-bucket/details")
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn signed_upload_round_trip() {
    let emu = Emulator::start(&[]);
    let t = tok(&emu).await;
    assert_eq!(
        create_bucket(&emu, &t, json!({"bucketKey": "upload-bucket"}))
            .await
            .0,
        200
    );

    // Step 1 by hand, to check its body.
    let start = get_ok(&emu, &t, "/oss/v2/buckets/upload-bucket/objects/dir%2Freport.pdf/signeds3upload?parts=2&minutesExpiration=5").await;
    assert!(start["uploadKey"].as_str().is_some_and(|k| !k.is_empty()));
    for k in ["uploadExpiration", "urlExpiration"] {
        rfc3339_ms(
            start[k]
                .as_str()
                .unwrap_or_else(|| panic!("{k} in {start}")),
        );
    }
    assert_eq!(start["urls"].as_array().map(Vec::len), Some(2));
    for (bad, why) in [
        ("parts=26", "more than 25 parts"),
        ("parts=0", "no parts"),
        ("minutesExpiration=61", "expiry"),
    ] {
        let (s, body) = emu
            .get_json(
                &t,
                &format!("/oss/v2/buckets/upload-bucket/objects/x/signeds3upload?{bad}"),
            )
            .await;
        assert_eq!(s, 400, "{why}: {body}");
        assert!(body["reason"].is_string());
    }

    // Two parts: 5 MiB + a short last part.
    let part1 = pseudo_bytes(5 << 20, 1);
    let part2 = pseudo_bytes(777, 2);
    let (s, done) = upload_parts(
        &emu,
        &t,
        "upload-bucket",
        "dir/report.pdf",
        &[&part1, &part2],
    )
    .await;
    assert_eq!(s, 200, "{done}");
    let size = part1.len() + part2.len();
    assert_eq!(done["bucketKey"], "upload-bucket");
    assert_eq!(done["objectKey"], "dir/report.pdf");
    assert_eq!(
        done["objectId"],
        "urn:adsk.objects:os.object:upload-bucket/dir/report.pdf"
    );
    assert_eq!(done["size"], size);
    assert!(done["contentType"].is_string());
    assert!(done["location"]
        .as_str()
        .is_some_and(|l| l.contains("/oss/v2/buckets/upload-bucket/objects/")));

    let list = get_ok(&emu, &t, "/oss/v2/buckets/upload-bucket/objects").await;
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    let o = &items[0];
    assert_eq!(o["bucketKey"], "upload-bucket");
    assert_eq!(o["objectKey"], "dir/report.pdf");
    assert_eq!(
        o["objectId"],
        "urn:adsk.objects:os.object:upload-bucket/dir/report.pdf"
    );
    assert_eq!(o["size"], size);
    assert!(o["location"].is_string());

    let mut whole = part1.clone();
    whole.extend_from_slice(&part2);
    let (s, body) = signeds3download(&emu, &t, "upload-bucket", "dir/report.pdf", "").await;
    assert_eq!(s, 200);
    assert_eq!(body["size"], size);
    assert_eq!(body["sha1"], sha1_hex(&whole));
    let (s, _, got) = fetch(
        body["url"].as_str().expect("url"),
        Some(&format!("bytes={}-", (5 << 20) - 3)),
    )
    .await;
    assert_eq!(s, 206);
    assert_eq!(got, &whole[(5 << 20) - 3..]);
    // Details answer for both spellings of a key with '/'.
    let d1 = get_ok(
        &emu,
        &t,
        "/oss/v2/buckets/upload-bucket/objects/dir%2Freport.pdf/details",
    )
    .await;
    let d2 = get_ok(
        &emu,
        &t,
        "/oss/v2/buckets/upload-bucket/objects/dir/report.pdf/details",
    )
    .await;
    assert_eq!(d1["size"], size);
    assert_eq!(d1, d2);
    assert_eq!(d1["sha1"], sha1_hex(&whole));
}

#[tokio::test]
async fn upload_completion_requires_json_content_type() {
    let emu = Emulator::start(&[]);
    let t = tok(&emu).await;
    assert_eq!(
        create_bucket(&emu, &t, json!({"bucketKey": "ctype-bucket"}))
            .await
            .0,
        200
    );
    let start = get_ok(
        &emu,
        &t,
        "/oss/v2/buckets/ctype-bucket/objects/a.bin/signeds3upload",
    )
    .await;
    let url = start["urls"][0].as_str().expect("url");
    let r = http().put(url).body("abc").send().await.expect("PUT");
    assert_eq!(r.status(), 200);
    assert!(header(r.headers(), "etag").is_some(), "part ETag");
    let r = http()
        .post(emu.url("/oss/v2/buckets/ctype-bucket/objects/a.bin/signeds3upload"))
        .bearer_auth(&t)
        .header("Content-Type", "text/plain")
        .body(json!({"uploadKey": start["uploadKey"]}).to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 400, "Content-Type must be application/json");
    // Invisible until completed.
    let list = get_ok(&emu, &t, "/oss/v2/buckets/ctype-bucket/objects").await;
    assert_eq!(list["items"], json!([]));
    // A tampered part URL is refused.
    let r = http()
        .put(url.replacen("Signature=", "Signature=0", 1))
        .body("x")
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn small_middle_part_fails_with_missing_or_invalid_parts() {
    let emu = Emulator::start(&[]);
    let t = tok(&emu).await;
    assert_eq!(
        create_bucket(&emu, &t, json!({"bucketKey": "parts-bucket"}))
            .await
            .0,
        200
    );
    let (s, body) = upload_parts(
        &emu,
        &t,
        "parts-bucket",
        "small.bin",
        &[&[1u8; 1024], &[2u8; 1024]],
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["reason"], "MissingOrInvalidParts");
    assert_eq!(body["status"], "error");
    assert!(body["uploadKey"].is_string());
    assert_eq!(body["size"]["detected"], 2048);
    let parts = body["parts"].as_array().expect("parts");
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["part"], 1);
    assert_eq!(parts[0]["size"], 1024);
    assert!(
        parts[0]["status"]
            .as_str()
            .is_some_and(|s| s.contains("TooSmall")),
        "{body}"
    );
    assert_eq!(parts[1]["status"], "Ok", "the last part may be small");
    let list = get_ok(&emu, &t, "/oss/v2/buckets/parts-bucket/objects").await;
    assert_eq!(list["items"], json!([]), "a failed upload leaves no object");
    // A single small part is fine.
    let (s, body) = upload_parts(&emu, &t, "parts-bucket", "small.bin", &[&[3u8; 10]]).await;
    assert_eq!(s, 200, "{body}");
}

#[tokio::test]
async fn two_hundred_fifty_objects_page_by_100() {
    let emu = Emulator::start(&[]);
    let t = tok(&emu).await;
    assert_eq!(
        create_bucket(&emu, &t, json!({"bucketKey": "many-objects"}))
            .await
            .0,
        200
    );
    let keys: Vec<String> = (0..250)
        .map(|i| format!("dir{}/sub/file-{i:03}.txt", i % 3))
        .collect();
    let uploads = keys.chunks(25).map(|chunk| {
        let (emu, t) = (&emu, &t);
        async move {
            for k in chunk {
                emu.upload_object(t, "many-objects", k, k.as_bytes()).await;
            }
        }
    });
    futures_util::future::join_all(uploads).await;

    let mut url = emu.url("/oss/v2/buckets/many-objects/objects?limit=100");
    let mut sizes = Vec::new();
    let mut seen = Vec::new();
    loop {
        let page = get_ok(&emu, &t, &url).await;
        let items = page["items"].as_array().expect("items");
        sizes.push(items.len());
        for i in items {
            let k = i["objectKey"].as_str().expect("objectKey");
            assert_eq!(i["size"], k.len());
            assert_eq!(
                i["objectId"],
                format!("urn:adsk.objects:os.object:many-objects/{k}")
            );
            seen.push(k.to_string());
        }
        match page["next"].as_str() {
            Some(n) => {
                assert!(n.starts_with("http://"), "absolute next: {n}");
                assert!(n.contains("startAt=") && n.contains("limit=100"), "{n}");
                url = n.to_string();
            }
            None => break,
        }
    }
    assert_eq!(sizes, [100, 100, 50]);
    let want: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(seen.len(), 250, "no key twice");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), want);

    let (s, body) = emu
        .get_json(&t, "/oss/v2/buckets/many-objects/objects?limit=300")
        .await;
    assert_eq!(s, 400);
    assert_eq!(body, json!({"reason": "Invalid limit"}));
    let page = get_ok(
        &emu,
        &t,
        "/oss/v2/buckets/many-objects/objects?beginsWith=dir1/&limit=100",
    )
    .await;
    let n = page["items"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(n, keys.iter().filter(|k| k.starts_with("dir1/")).count());
    let default = get_ok(&emu, &t, "/oss/v2/buckets/many-objects/objects").await;
    assert_eq!(
        default["items"].as_array().map(Vec::len),
        Some(10),
        "default limit 10"
    );
}

#[tokio::test]
async fn delete_object_then_bucket() {
    let emu = Emulator::start(&[]);
    let t = tok(&emu).await;
    assert_eq!(
        create_bucket(&emu, &t, json!({"bucketKey": "doomed-bucket"}))
            .await
            .0,
        200
    );
    assert_eq!(
        upload_parts(&emu, &t, "doomed-bucket", "a/b.txt", &[b"bye"])
            .await
            .0,
        200
    );
    assert_eq!(
        upload_parts(&emu, &t, "doomed-bucket", "c.txt", &[b"stay"])
            .await
            .0,
        200
    );
    assert_eq!(
        delete(&emu, &t, "/oss/v2/buckets/doomed-bucket/objects/a%2Fb.txt").await,
        200
    );
    let list = get_ok(&emu, &t, "/oss/v2/buckets/doomed-bucket/objects").await;
    let keys: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["objectKey"].as_str().expect("k"))
        .collect();
    assert_eq!(keys, ["c.txt"]);
    let (s, _) = emu
        .get_json(
            &t,
            "/oss/v2/buckets/doomed-bucket/objects/a%2Fb.txt/details",
        )
        .await;
    assert_eq!(s, 404);
    assert_eq!(
        delete(&emu, &t, "/oss/v2/buckets/doomed-bucket/objects/a%2Fb.txt").await,
        404
    );

    assert_eq!(delete(&emu, &t, "/oss/v2/buckets/doomed-bucket").await, 200);
    assert_eq!(delete(&emu, &t, "/oss/v2/buckets/never-existed").await, 404);
    // Deleting needs bucket:delete.
    assert_eq!(
        create_bucket(&emu, &t, json!({"bucketKey": "kept-bucket"}))
            .await
            .0,
        200
    );
    let weak = emu.token_with("bucket:read").await;
    assert_eq!(
        delete(&emu, &weak, "/oss/v2/buckets/kept-bucket").await,
        403
    );
}

#[tokio::test]
async fn object_list_items_carry_sha1() {
    let emu = Emulator::start(&[]);
    let t = tok(&emu).await;
    assert_eq!(
        create_bucket(&emu, &t, json!({"bucketKey": "sha1-bucket"}))
            .await
            .0,
        200
    );
    assert_eq!(
        upload_parts(&emu, &t, "sha1-bucket", "a.txt", &[b"hello"])
            .await
            .0,
        200
    );
    let list = get_ok(&emu, &t, "/oss/v2/buckets/sha1-bucket/objects").await;
    assert_eq!(list["items"][0]["sha1"], sha1_hex(b"hello"), "{list}");
}

#[tokio::test]
async fn bucket_allow_list_grants_access() {
    let emu = Emulator::start(&[]);
    let t = tok(&emu).await;
    let (s, b) = create_bucket(
        &emu,
        &t,
        json!({"bucketKey": "shared-bucket", "policyKey": "transient", "allow": [{"authId": "friend-app", "access": "read"}]}),
    )
    .await;
    assert_eq!(s, 200);
    let perms = b["permissions"].as_array().expect("permissions");
    assert!(
        perms.contains(&json!({"authId": "test-client", "access": "full"})),
        "{b}"
    );
    assert!(
        perms.contains(&json!({"authId": "friend-app", "access": "read"})),
        "{b}"
    );
    let friend = token_for(&emu, "friend-app", "pw", "bucket:read data:read").await;
    assert_eq!(
        emu.get_json(&friend, "/oss/v2/buckets/shared-bucket/details")
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn deleted_bucket_is_marked_not_gone() {
    let emu = Emulator::start(&[]);
    let t = tok(&emu).await;
    assert_eq!(
        create_bucket(&emu, &t, json!({"bucketKey": "marked-bucket"}))
            .await
            .0,
        200
    );
    assert_eq!(delete(&emu, &t, "/oss/v2/buckets/marked-bucket").await, 200);
    assert_eq!(
        delete(&emu, &t, "/oss/v2/buckets/marked-bucket").await,
        409,
        "already marked for deletion"
    );
    let (s, body) = create_bucket(&emu, &t, json!({"bucketKey": "marked-bucket"})).await;
    assert_eq!(s, 409, "key not immediately reusable: {body}");
}

#[tokio::test]
async fn upload_in_several_calls_with_the_same_upload_key() {
    let emu = Emulator::start(&[]);
    let t = tok(&emu).await;
    assert_eq!(
        create_bucket(&emu, &t, json!({"bucketKey": "resume-bucket"}))
            .await
            .0,
        200
    );
    let key = "odd key/\u{fc}n\u{ef} %2F?#.txt";
    let base = format!(
        "/oss/v2/buckets/resume-bucket/objects/{}/signeds3upload",
        enc(key)
    );
    let first = get_ok(&emu, &t, &format!("{base}?parts=1&firstPart=1")).await;
    let upload_key = first["uploadKey"].as_str().expect("uploadKey").to_string();
    let second = get_ok(
        &emu,
        &t,
        &format!("{base}?parts=1&firstPart=2&uploadKey={upload_key}"),
    )
    .await;
    assert_eq!(second["uploadKey"], upload_key.as_str(), "same session");
    let p1 = pseudo_bytes(5 << 20, 7);
    let p2 = b"tail".to_vec();
    let mut etags = Vec::new();
    for (url, part) in [(&first["urls"][0], &p1), (&second["urls"][0], &p2)] {
        let r = http()
            .put(url.as_str().expect("url"))
            .body(part.clone())
            .send()
            .await
            .expect("PUT");
        assert_eq!(r.status(), 200);
        etags.push(header(r.headers(), "etag").expect("ETag").to_string());
    }
    // Wrong eTags are reported per part.
    let r = http()
        .post(emu.url(&base))
        .bearer_auth(&t)
        .header("Content-Type", "application/json")
        .body(json!({"uploadKey": upload_key, "eTags": [etags[0], "\"0000\""]}).to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["reason"], "MissingOrInvalidParts");
    assert_eq!(body["parts"][0]["status"], "Ok");
    assert!(
        body["parts"][1]["status"]
            .as_str()
            .is_some_and(|s| s.contains("Unexpected")),
        "{body}"
    );

    // The failed completion discarded the session: start over, in two calls again.
    let first = get_ok(&emu, &t, &format!("{base}?parts=1")).await;
    let upload_key = first["uploadKey"].as_str().expect("uploadKey").to_string();
    let second = get_ok(
        &emu,
        &t,
        &format!("{base}?firstPart=2&uploadKey={upload_key}"),
    )
    .await;
    for (url, part) in [(&first["urls"][0], &p1), (&second["urls"][0], &p2)] {
        let r = http()
            .put(url.as_str().expect("url"))
            .body(part.clone())
            .send()
            .await
            .expect("PUT");
        assert_eq!(r.status(), 200);
    }
    let r = http()
        .post(emu.url(&base))
        .bearer_auth(&t)
        .header("Content-Type", "application/json")
        .header("x-ads-meta-Content-Type", "text/plain")
        .body(json!({"uploadKey": upload_key, "size": p1.len() + p2.len()}).to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 200);
    let done: Value = r.json().await.expect("json");
    assert_eq!(done["objectKey"], key);
    assert_eq!(done["size"], p1.len() + p2.len());
    assert_eq!(done["contentType"], "text/plain");
    let mut whole = p1.clone();
    whole.extend_from_slice(&p2);
    let (s, body) = signeds3download(&emu, &t, "resume-bucket", key, "").await;
    assert_eq!(s, 200);
    let (s, _, got) = fetch(body["url"].as_str().expect("url"), Some("bytes=-10")).await;
    assert_eq!(s, 206);
    assert_eq!(got, &whole[whole.len() - 10..]);
    let details = get_ok(
        &emu,
        &t,
        &format!("/oss/v2/buckets/resume-bucket/objects/{}/details", enc(key)),
    )
    .await;
    assert_eq!(details["objectKey"], key);
    assert_eq!(details["sha1"], sha1_hex(&whole));
    // An unknown upload key is refused.
    let (s, _) = emu.get_json(&t, &format!("{base}?uploadKey=nope")).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn buckets_are_listed_per_region() {
    let emu = Emulator::start(&[]);
    let t = tok(&emu).await;
    let r = http()
        .post(emu.url("/oss/v2/buckets"))
        .bearer_auth(&t)
        .header("region", "EMEA")
        .json(&json!({"bucketKey": "emea-bucket", "policyKey": "transient"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 200);
    assert_eq!(
        create_bucket(&emu, &t, json!({"bucketKey": "us-bucket"}))
            .await
            .0,
        200
    );
    let keys = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["bucketKey"].as_str().expect("k").to_string())
            .collect()
    };
    let us = get_ok(&emu, &t, "/oss/v2/buckets").await;
    assert_eq!(keys(&us), ["us-bucket"], "US is the default region");
    let emea = get_ok(&emu, &t, "/oss/v2/buckets?region=EMEA").await;
    assert_eq!(keys(&emea), ["emea-bucket"]);
}

#[tokio::test]
async fn unknown_oss_paths_answer_the_oss_error_shape() {
    let emu = Emulator::start(&[]);
    let t = tok(&emu).await;
    for path in ["/oss/v2/nope", "/oss/v2/buckets/a-bucket/details/extra"] {
        let (s, body) = emu.get_json(&t, path).await;
        assert_eq!(s, 404, "{path}");
        assert!(body["reason"].is_string(), "{path}: {body}");
        assert!(body.get("errors").is_none(), "{path}: {body}");
    }
    // A method OSS does not offer on a known path is an unknown route too.
    let r = http()
        .patch(emu.url("/oss/v2/buckets"))
        .bearer_auth(&t)
        .send()
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.expect("json");
    assert!(body["reason"].is_string(), "{body}");
    // Outside /oss/ the JSON:API shape stays.
    let (s, body) = emu.get_json(&t, "/data/v1/nope").await;
    assert_eq!(s, 404);
    assert_jsonapi_error(&body, 404);
}

#[tokio::test]
async fn bucket_allow_list_access_levels() {
    let emu = Emulator::start(&[]);
    let t = tok(&emu).await;
    let (s, b) = create_bucket(
        &emu,
        &t,
        json!({"bucketKey": "levels-bucket", "allow": [
            {"authId": "reader-app", "access": "read"},
            {"authId": "writer-app", "access": "full"},
        ]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["permissions"][0],
        json!({"authId": "test-client", "access": "full"})
    );
    assert_eq!(b["permissions"].as_array().map(Vec::len), Some(3), "{b}");
    assert_eq!(
        upload_parts(&emu, &t, "levels-bucket", "a.txt", &[b"abc"])
            .await
            .0,
        200
    );
    let scopes = "bucket:read data:read data:write data:create";
    let reader = token_for(&emu, "reader-app", "pw", scopes).await;
    let writer = token_for(&emu, "writer-app", "pw", scopes).await;
    let stranger = token_for(&emu, "stranger-app", "pw", scopes).await;
    let list = get_ok(&emu, &reader, "/oss/v2/buckets/levels-bucket/objects").await;
    assert_eq!(list["items"][0]["sha1"], sha1_hex(b"abc"), "{list}");
    let (s, body) = signeds3download(&emu, &reader, "levels-bucket", "a.txt", "").await;
    assert_eq!(s, 200, "{body}");
    let (s, _) = emu
        .get_json(
            &reader,
            "/oss/v2/buckets/levels-bucket/objects/a.txt/signeds3upload",
        )
        .await;
    assert_eq!(s, 403, "read access cannot upload");
    assert_eq!(
        delete(&emu, &reader, "/oss/v2/buckets/levels-bucket/objects/a.txt").await,
        403
    );
    for path in [
        "/oss/v2/buckets/levels-bucket/details",
        "/oss/v2/buckets/levels-bucket/objects",
        "/oss/v2/buckets/levels-bucket/objects/a.txt/details",
    ] {
        let (s, body) = emu.get_json(&stranger, path).await;
        assert_eq!(s, 403, "{path}: {body}");
        assert!(body["reason"].is_string());
    }
    // Only the owner deletes the bucket, even with full access.
    let mut del_scopes = scopes.to_string();
    del_scopes.push_str(" bucket:delete");
    let writer_del = token_for(&emu, "writer-app", "pw", &del_scopes).await;
    assert_eq!(
        delete(&emu, &writer_del, "/oss/v2/buckets/levels-bucket").await,
        403
    );
    assert_eq!(
        delete(&emu, &writer, "/oss/v2/buckets/levels-bucket/objects/a.txt").await,
        200,
        "full access deletes objects"
    );
    // A bad access level is refused.
    let (s, body) = create_bucket(
        &emu,
        &t,
        json!({"bucketKey": "bad-allow", "allow": [{"authId": "x", "access": "admin"}]}),
    )
    .await;
    assert_eq!(s, 400, "{body}");
}

#[tokio::test]
async fn deleted_bucket_is_gone_for_everything_else() {
    let emu = Emulator::start(&[]);
    let t = tok(&emu).await;
    assert_eq!(
        create_bucket(&emu, &t, json!({"bucketKey": "gone-bucket"}))
            .await
            .0,
        200
    );
    assert_eq!(
        upload_parts(&emu, &t, "gone-bucket", "a.txt", &[b"abc"])
            .await
            .0,
        200
    );
    let url = signed_url(&emu, &t, "gone-bucket", "a.txt").await;
    assert_eq!(delete(&emu, &t, "/oss/v2/buckets/gone-bucket").await, 200);
    let r = http()
        .delete(emu.url("/oss/v2/buckets/gone-bucket"))
        .bearer_auth(&t)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["reason"], "Bucket already marked for deletion");
    for path in [
        "/oss/v2/buckets/gone-bucket/details",
        "/oss/v2/buckets/gone-bucket/objects",
        "/oss/v2/buckets/gone-bucket/objects/a.txt/details",
        "/oss/v2/buckets/gone-bucket/objects/a.txt/signeds3download",
        "/oss/v2/buckets/gone-bucket/objects/a.txt",
    ] {
        let (s, body) = emu.get_json(&t, path).await;
        assert_eq!(s, 404, "{path}: {body}");
    }
    let (s, _, _) = fetch(&url, None).await;
    assert_eq!(s, 404, "signed URLs of a deleted bucket stop working");
    let list = get_ok(&emu, &t, "/oss/v2/buckets").await;
    assert_eq!(list["items"], json!([]), "{list}");
    let (s, body) = create_bucket(&emu, &t, json!({"bucketKey": "gone-bucket"})).await;
    assert_eq!(s, 409);
    assert_eq!(body["reason"], "Bucket already exists");
}

#[tokio::test]
async fn bucket_regions_are_validated_and_the_header_wins() {
    let emu = Emulator::start(&[]);
    let t = tok(&emu).await;
    for (name, value) in [("x-ads-region", "JPN"), ("region", "GBR")] {
        let r = http()
            .post(emu.url("/oss/v2/buckets"))
            .bearer_auth(&t)
            .header(name, value)
            .json(&json!({"bucketKey": format!("{}-bucket", value.to_lowercase())}))
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), 200, "{name}: {value}");
    }
    let r = http()
        .post(emu.url("/oss/v2/buckets"))
        .bearer_auth(&t)
        .header("region", "MARS")
        .json(&json!({"bucketKey": "mars-bucket"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    assert!(body["reason"].is_string(), "{body}");
    let jpn = get_ok(&emu, &t, "/oss/v2/buckets?region=JPN").await;
    assert_eq!(jpn["items"][0]["bucketKey"], "jpn-bucket", "{jpn}");
    assert_eq!(jpn["items"].as_array().map(Vec::len), Some(1));
    let r = get_authed(
        &emu.url("/oss/v2/buckets?region=JPN"),
        &t,
        &[("region", "GBR")],
    )
    .await;
    let gbr: Value = r.json().await.expect("json");
    assert_eq!(
        gbr["items"][0]["bucketKey"], "gbr-bucket",
        "header wins: {gbr}"
    );
    let (s, _) = emu.get_json(&t, "/oss/v2/buckets?region=MARS").await;
    assert_eq!(s, 400);
}
