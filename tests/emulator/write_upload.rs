//! The signed upload into Data Management storage, step by step as the reference gives it
//! (aps-api.md §7.8): at most 25 URLs a call, more with the same `uploadKey`, a part PUT again
//! replaces it, completion checks every part and the size, a session completes once and not
//! after `uploadExpiration`, and the object is invisible until completed.

use crate::support::api::header;
use crate::support::http::http;
use crate::support::oss::{fetch, signed_url, signeds3download, DM_BUCKET};
use crate::support::seed::pseudo_bytes;
use crate::support::write::Dm;
use serde_json::{json, Value};

/// 5 MiB, the smallest part but the last.
const MIN_PART: usize = 5 << 20;

/// `GET …/signeds3upload?query` of `key`: (status, body).
async fn start(w: &Dm, key: &str, query: &str) -> (u16, Value) {
    w.emu.get_json(&w.tok, &Dm::upload_path(key, query)).await
}

/// The part URLs of a start answer.
fn urls(v: &Value) -> Vec<String> {
    v["urls"]
        .as_array()
        .expect("urls")
        .iter()
        .map(|u| u.as_str().expect("url").to_string())
        .collect()
}

/// PUT of one part, which must answer 200 with an ETag: the ETag.
async fn put(url: &str, bytes: &[u8]) -> String {
    let r = http()
        .put(url)
        .body(bytes.to_vec())
        .send()
        .await
        .expect("PUT part");
    assert_eq!(r.status(), 200, "PUT part");
    header(r.headers(), "etag").expect("ETag").to_string()
}

/// Whether `key` is visible: details and signeds3download both answer 200 (or both do not).
async fn visible(w: &Dm, key: &str) -> bool {
    let (d, _) = w
        .emu
        .get_json(
            &w.tok,
            &format!("/oss/v2/buckets/{DM_BUCKET}/objects/{key}/details"),
        )
        .await;
    let (s, _) = signeds3download(&w.emu, &w.tok, DM_BUCKET, key, "").await;
    assert_eq!(d == 200, s == 200, "details {d}, signeds3download {s}");
    s == 200
}

#[tokio::test]
async fn urls_come_25_at_a_time_and_more_with_the_same_upload_key() {
    let w = Dm::start(&[]).await;
    let (urn, key) = w.storage("three.bin").await;
    let (s, v) = start(&w, &key, "parts=26").await;
    assert_eq!(s, 400, "{v}");
    assert!(v["reason"].is_string());
    let (s, first) = start(&w, &key, "parts=25").await;
    assert_eq!(s, 200, "{first}");
    assert_eq!(urls(&first).len(), 25);
    let upload_key = first["uploadKey"].as_str().expect("uploadKey").to_string();
    let (s, more) = start(
        &w,
        &key,
        &format!("parts=2&firstPart=26&uploadKey={upload_key}"),
    )
    .await;
    assert_eq!(s, 200, "{more}");
    assert_eq!(more["uploadKey"], upload_key.as_str(), "the same upload");
    assert_eq!(more["uploadExpiration"], first["uploadExpiration"]);
    let more = urls(&more);
    assert!(more[0].contains("partNumber=26") && more[1].contains("partNumber=27"));
    let (s, _) = start(&w, &key, "uploadKey=not-an-upload").await;
    assert_eq!(s, 404);

    // Three parts from two calls of the same upload; invisible until completed.
    let (s, third) = start(
        &w,
        &key,
        &format!("parts=1&firstPart=3&uploadKey={upload_key}"),
    )
    .await;
    assert_eq!(s, 200);
    let parts = [
        pseudo_bytes(MIN_PART, 1),
        pseudo_bytes(MIN_PART, 2),
        b"tail".to_vec(),
    ];
    let first = urls(&first);
    let targets = [&first[0], &first[1], &urls(&third)[0]];
    let mut etags = Vec::new();
    for (url, bytes) in targets.into_iter().zip(&parts) {
        etags.push(put(url, bytes).await);
        assert!(!visible(&w, &key).await, "invisible before completion");
    }
    let size: usize = parts.iter().map(Vec::len).sum();
    let (s, done) = w
        .complete_as(
            &w.tok,
            &key,
            &json!({"uploadKey": upload_key, "size": size, "eTags": etags}),
        )
        .await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["objectId"], urn.as_str());
    assert_eq!(done["size"], size);
    assert!(visible(&w, &key).await);
    assert_eq!(w.download(&key).await, parts.concat());
}

#[tokio::test]
async fn a_part_put_again_replaces_the_first() {
    let w = Dm::start(&[]).await;
    let (_, key) = w.storage("again.txt").await;
    let (_, first) = start(&w, &key, "parts=1").await;
    let upload_key = first["uploadKey"].as_str().expect("uploadKey").to_string();
    let old = put(&urls(&first)[0], b"first try").await;
    // A URL for the same part again (say the first expired), then the part again.
    let (s, again) = start(
        &w,
        &key,
        &format!("parts=1&firstPart=1&uploadKey={upload_key}"),
    )
    .await;
    assert_eq!(s, 200, "{again}");
    let new = put(&urls(&again)[0], b"second").await;
    assert_ne!(old, new, "each PUT answers the ETag of its own bytes");
    let (s, v) = w
        .complete_as(
            &w.tok,
            &key,
            &json!({"uploadKey": upload_key, "eTags": [old], "size": 6}),
        )
        .await;
    assert_eq!(s, 400, "the first ETag no longer matches: {v}");
    assert_eq!(v["parts"][0]["status"], "Unexpected");
    assert_eq!(v["parts"][0]["eTag"], new.as_str());

    // The failed completion ended the session; the same flow with the right ETag succeeds.
    let (_, first) = start(&w, &key, "parts=1").await;
    let upload_key = first["uploadKey"].as_str().expect("uploadKey").to_string();
    put(&urls(&first)[0], b"first try").await;
    let (_, again) = start(
        &w,
        &key,
        &format!("parts=1&firstPart=1&uploadKey={upload_key}"),
    )
    .await;
    let new = put(&urls(&again)[0], b"second").await;
    let (s, v) = w
        .complete_as(
            &w.tok,
            &key,
            &json!({"uploadKey": upload_key, "eTags": [new], "size": 6}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(w.download(&key).await, b"second");
}

#[tokio::test]
async fn completion_reports_small_missing_and_mismatched_parts() {
    let w = Dm::start(&[]).await;
    let (urn, key) = w.storage("bad.bin").await;
    let big = pseudo_bytes(MIN_PART, 3);
    let small = pseudo_bytes(1024, 4);
    // Parts 1 (small, not last) and 3 sent, part 2 never: TooSmall, Pending, Ok.
    let (_, s3) = start(&w, &key, "parts=3").await;
    let u = urls(&s3);
    let e1 = put(&u[0], &small).await;
    let e3 = put(&u[2], &big).await;
    let (s, v) = w
        .complete_as(
            &w.tok,
            &key,
            &json!({"uploadKey": s3["uploadKey"], "eTags": [e1, "\"0\"", e3]}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["status"], "error");
    assert_eq!(v["reason"], "MissingOrInvalidParts");
    assert_eq!(v["uploadKey"], s3["uploadKey"]);
    let status: Vec<&str> = v["parts"]
        .as_array()
        .expect("parts")
        .iter()
        .map(|p| p["status"].as_str().expect("status"))
        .collect();
    assert_eq!(status, ["TooSmall", "Pending", "Ok"], "{v}");
    assert_eq!(v["parts"][0]["size"], 1024);
    assert_eq!(v["parts"][1]["size"], 0);
    assert_eq!(v["size"]["detected"], 1024 + MIN_PART);

    // A size that is not what arrived.
    let (_, one) = start(&w, &key, "parts=1").await;
    put(&urls(&one)[0], &small).await;
    let (s, v) = w
        .complete_as(
            &w.tok,
            &key,
            &json!({"uploadKey": one["uploadKey"], "size": 1025}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["size"]["expected"], 1025);
    assert_eq!(v["size"]["detected"], 1024);
    assert_eq!(v["parts"][0]["status"], "Ok");

    // Nothing became visible, and nothing can be made of it.
    assert!(!visible(&w, &key).await);
    let (s, v) = w.post_item("bad.bin", &urn).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(w.emu.stats().await["writes"]["uploads_completed"], 0);
}

#[tokio::test]
async fn an_upload_completes_once_and_not_after_it_expires() {
    let w = Dm::start(&[]).await;
    let (_, key) = w.storage("once.txt").await;
    let (_, s1) = start(&w, &key, "parts=1").await;
    let etag = put(&urls(&s1)[0], b"once").await;
    let body = json!({"uploadKey": s1["uploadKey"], "eTags": [etag]});
    let (s, v) = w.complete_as(&w.tok, &key, &body).await;
    assert_eq!(s, 200, "{v}");
    // Completed already: the session is gone (404), the object stays as completed.
    let (s, v) = w.complete_as(&w.tok, &key, &body).await;
    assert_eq!(s, 404, "{v}");
    assert!(v["reason"].is_string());
    assert_eq!(w.download(&key).await, b"once");
    // A part URL of the completed upload has nothing to go to.
    let r = http()
        .put(&urls(&s1)[0])
        .body("more")
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 404);

    // uploadExpiration is 24 h after the start; past it the parts are discarded.
    let (_, s2) = start(&w, &key, "parts=1&minutesExpiration=60").await;
    let expires = chrono::DateTime::parse_from_rfc3339(
        s2["uploadExpiration"].as_str().expect("uploadExpiration"),
    )
    .expect("RFC 3339");
    let ahead = expires.timestamp() - chrono::Utc::now().timestamp();
    assert!((24 * 3600 - 5..=24 * 3600).contains(&ahead), "{ahead}");
    put(&urls(&s2)[0], b"too late").await;
    w.emu.advance_clock(24 * 3600 + 1).await;
    let tok = w.emu.token().await;
    let (s, v) = w
        .complete_as(&tok, &key, &json!({"uploadKey": s2["uploadKey"]}))
        .await;
    assert_eq!(s, 404, "{v}");
    let (s, _) = w
        .emu
        .get_json(
            &tok,
            &Dm::upload_path(
                &key,
                &format!("uploadKey={}", s2["uploadKey"].as_str().unwrap_or("")),
            ),
        )
        .await;
    assert_eq!(s, 404, "nor can it be continued");
    let url = signed_url(&w.emu, &tok, DM_BUCKET, &key).await;
    assert_eq!(fetch(&url, None).await.2, b"once");
}
