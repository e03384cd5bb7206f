//! The rules writes live by: names (reserved characters, 1–255 characters), names taken in a
//! folder (409), the documented per-minute limits of the write endpoints (429), and the
//! counters a test of a write path reads (aps-api.md §6, §8, §11).

use crate::support::api::{assert_jsonapi_error, header, post_jsonapi, token_for};
use crate::support::dm::child;
use crate::support::http::http;
use crate::support::oss::{upload_parts, DM_BUCKET};
use crate::support::write::Dm;
use serde_json::{json, Value};

const FILE: &str = "versions:autodesk.bim360:File";

/// The folder-name reserved characters of §6, plus the apostrophe the OpenAPI lists in place
/// of the reference's backtick.
const RESERVED: [char; 20] = [
    '<', '>', ':', '"', '/', '\\', '|', '?', '*', '`', '\'', '\n', '\r', '\t', '\0', '\u{c}', '¢',
    '™', '$', '®',
];

#[tokio::test]
async fn folder_names_refuse_reserved_characters_and_lengths() {
    let w = Dm::start(&[]).await;
    for c in RESERVED {
        let (s, v) = w.post_folder(&format!("a{c}b")).await;
        assert_eq!(s, 400, "{c:?}: {v}");
        assert_eq!(assert_jsonapi_error(&v, 400)["code"], "BAD_INPUT");
    }
    for bad in [String::new(), "x".repeat(256), "é".repeat(256)] {
        let (s, v) = w.post_folder(&bad).await;
        assert_eq!(s, 400, "{} chars: {v}", bad.chars().count());
    }
    for good in ["é".repeat(255), "Plans – 日本 (2024) #1 & co.".to_string()] {
        let (s, v) = w.post_folder(&good).await;
        assert_eq!(s, 201, "{good}: {v}");
        assert_eq!(v["data"]["attributes"]["name"], good.as_str());
    }
    assert_eq!(w.emu.stats().await["writes"]["folders_created"], 2);
}

#[tokio::test]
async fn item_and_version_names_refuse_slash_nul_and_length() {
    let w = Dm::start(&[]).await;
    let (storage, _) = w.uploaded("x.txt", b"x").await;
    for bad in [
        "a/b.txt".to_string(),
        "a\0b.txt".into(),
        "x".repeat(256),
        String::new(),
    ] {
        let (s, v) = w.post_item(&bad, &storage).await;
        assert_eq!(s, 400, "{bad:?}: {v}");
        assert_jsonapi_error(&v, 400);
    }
    // Other folder-reserved characters are accepted in file names by default (UNCONFIRMED).
    let long = format!("{}.txt", "y".repeat(251));
    for good in ["a:b$c.txt", long.as_str()] {
        let (s, v) = w.post_item(good, &storage).await;
        assert_eq!(s, 201, "{good}: {v}");
    }
    let (item, _) = w.item("plain.txt", b"p").await;
    let (next, _) = w.uploaded("plain.txt", b"q").await;
    let (s, v) = w
        .post_version(&item, "dir/plain.txt", FILE, Some(&next))
        .await;
    assert_eq!(s, 400, "a rename to a bad name: {v}");

    // strict_item_names holds file names to the folder rules.
    let (s, _) = w.emu.put_faults(&json!({"strict_item_names": true})).await;
    assert_eq!(s, 200);
    let (other, _) = w.uploaded("z.txt", b"z").await;
    let (s, v) = w.post_item("a:z.txt", &other).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = w.post_version(&item, "plain$.txt", FILE, Some(&next)).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = w.post_version(&item, "plain.txt", FILE, Some(&next)).await;
    assert_eq!(s, 201, "keeping its name is no rename: {v}");
}

#[tokio::test]
async fn names_taken_in_a_folder_conflict() {
    let w = Dm::start(&[]).await;
    let (a, _) = w.item("a.txt", b"a").await;
    w.item("b.txt", b"b").await;
    assert_eq!(w.post_folder("Sub").await.0, 201);
    // A folder named as an item, an item named as a folder: 409.
    let (s, v) = w.post_folder("a.txt").await;
    assert_eq!(s, 409, "{v}");
    assert_jsonapi_error(&v, 409);
    let (sub_storage, _) = w.uploaded("Sub", b"s").await;
    let (s, v) = w.post_item("Sub", &sub_storage).await;
    assert_eq!(s, 409, "{v}");
    // A version renaming a.txt to b.txt (or to the folder): 409, nothing made.
    let (next, _) = w.uploaded("a.txt", b"a2").await;
    for taken in ["b.txt", "Sub"] {
        let (s, v) = w.post_version(&a, taken, FILE, Some(&next)).await;
        assert_eq!(s, 409, "{taken}: {v}");
        assert_jsonapi_error(&v, 409);
    }
    assert_eq!(w.emu.stats().await["writes"]["versions_created"], 0);
    // To a free name it is a rename; the listing follows.
    let (s, v) = w.post_version(&a, "c.txt", FILE, Some(&next)).await;
    assert_eq!(s, 201, "{v}");
    let (entry, _) = child(&w.emu, &w.tok, &w.project, &w.folder, "c.txt", false).await;
    assert_eq!(entry["id"], a.as_str());
}

/// Asserts the first `n` requests `send` makes are admitted (not 429) and the next one is
/// refused with 429, a `Retry-After` in whole seconds and the gateway's quota body.
async fn limit_is<F, Fut>(what: &str, n: usize, send: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    for i in 0..n {
        let r = send().await;
        assert_ne!(r.status(), 429, "{what}: request {} of {n}", i + 1);
    }
    let r = send().await;
    assert_eq!(
        r.status(),
        429,
        "{what}: request {} is over the limit",
        n + 1
    );
    let wait: u64 = header(r.headers(), "retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&wait), "{what}: Retry-After {wait}");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["developerMessage"], "Quota limit exceeded.");
}

#[tokio::test]
async fn documented_write_limits_answer_429() {
    let w = Dm::start(&[
        "--generate",
        "items=1,folders=0",
        "--rate-limits",
        "documented",
    ])
    .await;
    // One client for the ~1700 requests: building one per request would dominate the test.
    let c = &http();
    let tok = w.tok.as_str();
    // Empty bodies: the limit is counted before the body is looked at, so 400s count too.
    for (what, path, n) in [
        ("POST folders", "folders", 50),
        ("POST items", "items", 50),
        ("POST versions", "versions", 300),
        ("POST storage", "storage", 300),
    ] {
        let url = &w.emu.url(&w.data_path(path));
        limit_is(what, n, || async move {
            c.post(url)
                .bearer_auth(tok)
                .header("Content-Type", "application/vnd.api+json")
                .body("{}")
                .send()
                .await
                .expect("POST")
        })
        .await;
    }
    // OSS counts every endpoint together: 1000 a minute.
    let url = &w.emu.url(&Dm::upload_path("no-such-object.bin", ""));
    limit_is("OSS", 1000, || async move {
        c.get(url).bearer_auth(tok).send().await.expect("GET")
    })
    .await;
    // Limits are per app: another app is admitted.
    let other = token_for(&w.emu, "other-app", "s", "data:read data:write").await;
    let (s, _) = post_jsonapi(&w.emu, &other, &w.data_path("folders"), &json!({})).await;
    assert_eq!(s, 400, "another app's first POST folders is admitted");
}

#[tokio::test]
async fn write_counters_count_what_was_made() {
    let w = Dm::start(&[]).await;
    w.emu.reset_stats().await;
    let (item, _) = w.item("a.txt", b"abc").await; // storage, upload (1 part), item
    let (_, key) = w.storage("b.txt").await;
    let (s, _) = upload_parts(&w.emu, &w.tok, DM_BUCKET, &key, &[&[1u8; 5 << 20], b"xy"]).await;
    assert_eq!(s, 200);
    let (b, _) = w.uploaded("a.txt", b"v2").await;
    assert_eq!(w.post_version(&item, "a.txt", FILE, Some(&b)).await.0, 201);
    assert_eq!(w.post_folder("F").await.0, 201);
    assert_eq!(w.post_folder("F").await.0, 409, "a refusal makes nothing");

    let stats = w.emu.stats().await;
    assert_eq!(
        stats["writes"],
        json!({"storage_created": 3, "items_created": 1, "versions_created": 1,
               "folders_created": 1, "parts_put": 4, "part_bytes": 3 + (5 << 20) + 2 + 2,
               "uploads_completed": 3, "items_renamed": 0, "versions_renamed": 0,
               "folders_renamed": 0, "folders_moved": 0, "folders_hidden": 0,
               "folders_restored": 0, "tombstones": 0}),
        "{stats}"
    );
    let routes = &stats["routes"];
    for (route, n) in [
        ("create_storage", 3),
        ("signeds3upload", 3),
        ("signed_put", 4),
        ("signeds3upload_complete", 3),
        ("create_item", 1),
        ("create_version", 1),
        ("create_folder", 2),
    ] {
        assert_eq!(routes[route], n, "routes.{route} in {stats}");
    }
    // `requests` keeps grouping them all under "upload", as before.
    assert_eq!(stats["requests"]["upload"], 3 + 3 + 4 + 3 + 1 + 1 + 2);
    w.emu.reset_stats().await;
    let zero = w.emu.stats().await;
    assert_eq!(zero["writes"]["parts_put"], 0);
    assert_eq!(zero["routes"], json!({}));
}
