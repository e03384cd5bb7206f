//! `POST …/objects/batchsigneds3download` over real HTTP: one result per key, each what the
//! single `signeds3download` answers, per-object errors, body validation, one request of the
//! OSS budget per batch, and the `refuse_batch` fault (aps-api.md §7.7, §7.8, §11).

use crate::support::api::header;
use crate::support::dm::{child, folder_by_path};
use crate::support::emulator::Emulator;
use crate::support::files::write_file;
use crate::support::http::{enc, http};
use crate::support::oss::{fetch, signeds3download, storage_of, DM_BUCKET};
use crate::support::seed::pseudo_bytes;
use serde_json::{json, Value};

/// The file names of the seeded world and their sizes (different, so a mixed-up URL shows).
const FILES: [(&str, usize); 3] = [("a.bin", 3_000), ("b.bin", 5_000), ("c.bin", 7_000)];

/// The documented OSS budget per app and minute (aps-api.md §11).
const OSS_PER_MINUTE: usize = 1000;

/// A seeded world with three files: the emulator, its seed directory, a token and each file's
/// (storage key, bytes) in `FILES` order.
async fn three_files(
    extra: &[&str],
) -> (Emulator, tempfile::TempDir, String, Vec<(String, Vec<u8>)>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bytes = Vec::new();
    for (i, (name, size)) in FILES.iter().enumerate() {
        let b = pseudo_bytes(*size, i as u64 + 1);
        write_file(
            &dir.path().join("Hub/Project/Files").join(name),
            &b,
            1_700_000_000,
        );
        bytes.push(b);
    }
    let emu = Emulator::seeded(dir.path(), extra);
    let tok = emu.token().await;
    let (project, folder) = folder_by_path(&emu, &tok, &[]).await;
    let mut files = Vec::new();
    for ((name, _), b) in FILES.iter().zip(bytes) {
        let (_, tip) = child(&emu, &tok, &project, &folder, name, false).await;
        let (bucket, key) = storage_of(&tip.expect("tip"));
        assert_eq!(bucket, DM_BUCKET);
        files.push((key, b));
    }
    (emu, dir, tok, files)
}

/// A batch body naming `keys`.
fn batch_body(keys: &[&str]) -> String {
    let requests: Vec<Value> = keys.iter().map(|k| json!({ "objectKey": k })).collect();
    json!({ "requests": requests }).to_string()
}

/// POSTs `body` as `content_type` to the DM bucket's batch route: (status, content type, JSON).
async fn post_batch(
    emu: &Emulator,
    token: &str,
    content_type: &str,
    body: String,
    query: &str,
) -> (u16, String, Value) {
    let mut url = emu.url(&format!(
        "/oss/v2/buckets/{}/objects/batchsigneds3download",
        enc(DM_BUCKET)
    ));
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    let r = http()
        .post(url)
        .bearer_auth(token)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .expect("POST batchsigneds3download");
    let status = r.status().as_u16();
    let ctype = header(r.headers(), "content-type")
        .unwrap_or("")
        .to_string();
    let bytes = r.bytes().await.expect("body");
    (
        status,
        ctype,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A well-formed batch of `keys`: (status, body).
async fn batch(emu: &Emulator, token: &str, keys: &[&str], query: &str) -> (u16, Value) {
    let (s, _, body) = post_batch(emu, token, "application/json", batch_body(keys), query).await;
    (s, body)
}

/// A result without its URL, which carries the second it was signed in.
fn without_url(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("url");
    }
    v
}

fn assert_oss_400(status: u16, ctype: &str, body: &Value, what: &str) {
    assert_eq!(status, 400, "{what}: {body}");
    assert!(ctype.starts_with("application/json"), "{what}: {ctype}");
    assert!(
        body["reason"].is_string(),
        "{what}: OSS error shape: {body}"
    );
}

#[tokio::test]
async fn a_batch_answers_each_key_as_the_single_call_does() {
    let (emu, _dir, tok, files) = three_files(&[]).await;
    let keys: Vec<&str> = files.iter().map(|(k, _)| k.as_str()).collect();
    emu.reset_stats().await;
    let (s, body) = batch(&emu, &tok, &keys, "minutesExpiration=5").await;
    assert_eq!(s, 200, "{body}");
    let results = body["results"].as_object().expect("results map");
    assert_eq!(results.len(), files.len(), "one result per key: {body}");
    assert_eq!(emu.count("batchsigneds3download").await, 1);
    assert_eq!(
        emu.count("signeds3download").await,
        0,
        "not counted as singles"
    );

    for (key, bytes) in &files {
        let got = &results[key.as_str()];
        assert_eq!(got["status"], "complete", "{key}: {got}");
        assert_eq!(got["size"], bytes.len());
        let (s, single) = signeds3download(&emu, &tok, DM_BUCKET, key, "minutesExpiration=5").await;
        assert_eq!(s, 200, "{single}");
        assert_eq!(without_url(got), without_url(&single), "{key}");

        let url = got["url"].as_str().expect("url");
        let (s, _, whole) = fetch(url, None).await;
        assert_eq!(s, 200);
        assert_eq!(&whole, bytes, "{key}: whole object");
        let (s, h, part) = fetch(url, Some("bytes=1000-1999")).await;
        assert_eq!(s, 206, "{key}: ranged");
        assert_eq!(part, bytes[1000..2000], "{key}: range bytes");
        assert_eq!(
            header(&h, "content-range"),
            Some(format!("bytes 1000-1999/{}", bytes.len()).as_str())
        );
    }
}

#[tokio::test]
async fn a_missing_key_gets_its_own_error_and_the_others_succeed() {
    let (emu, _dir, tok, files) = three_files(&[]).await;
    let (a, b) = (files[0].0.as_str(), files[1].0.as_str());
    let (s, body) = batch(&emu, &tok, &[a, "no-such-object.bin", b], "").await;
    assert_eq!(s, 200, "one missing object does not fail the batch: {body}");
    let results = &body["results"];
    assert_eq!(results.as_object().map(|o| o.len()), Some(3), "{body}");
    assert_eq!(
        results["no-such-object.bin"],
        json!({ "status": "error", "reason": "Object not found" })
    );
    for (key, bytes) in &files[..2] {
        let url = results[key.as_str()]["url"].as_str().expect("url");
        assert_eq!(&fetch(url, None).await.2, bytes, "{key}");
    }
}

#[tokio::test]
async fn bad_batches_are_400_in_the_oss_error_shape() {
    let (emu, _dir, tok, _files) = three_files(&[]).await;
    let names: Vec<String> = (0..26).map(|i| format!("k{i}")).collect();
    let keys: Vec<&str> = names.iter().map(String::as_str).collect();

    let (s, body) = batch(&emu, &tok, &keys[..25], "").await;
    assert_eq!(s, 200, "25 objects are allowed: {body}");
    assert_eq!(body["results"].as_object().map(|o| o.len()), Some(25));

    let json_type = "application/json";
    for (what, ctype, payload, query) in [
        ("26 objects", json_type, batch_body(&keys), ""),
        ("no objects", json_type, batch_body(&[]), ""),
        ("no requests", json_type, "{}".to_string(), ""),
        ("empty body", json_type, String::new(), ""),
        (
            "malformed JSON",
            json_type,
            "{\"requests\":[".to_string(),
            "",
        ),
        ("not JSON content", "text/plain", batch_body(&keys[..1]), ""),
        (
            "expiry too long",
            json_type,
            batch_body(&keys[..1]),
            "minutesExpiration=61",
        ),
    ] {
        let (s, t, body) = post_batch(&emu, &tok, ctype, payload, query).await;
        assert_oss_400(s, &t, &body, what);
    }
    assert_eq!(
        emu.count("batchsigneds3download").await,
        8,
        "every answer is counted"
    );
}

#[tokio::test]
async fn a_batch_costs_one_request_of_the_oss_budget() {
    let (emu, _dir, tok, files) = three_files(&["--rate-limits", "documented"]).await;
    // 25 keys per batch: counted per key, 40 batches would spend the whole budget.
    let mut names: Vec<String> = files.iter().map(|(k, _)| k.clone()).collect();
    names.extend((names.len()..25).map(|i| format!("missing-{i}")));
    let keys: Vec<&str> = names.iter().map(String::as_str).collect();
    let batches = OSS_PER_MINUTE / keys.len();
    emu.reset_stats().await;
    for i in 0..batches {
        let (s, body) = batch(&emu, &tok, &keys, "").await;
        assert_eq!(s, 200, "batch {} of {batches}: {body}", i + 1);
    }
    assert_eq!(emu.count("batchsigneds3download").await, batches as u64);
    // The rest of the budget is exactly what the batches left: one request each.
    let single = &files[0].0;
    for i in batches..OSS_PER_MINUTE {
        let (s, body) = signeds3download(&emu, &tok, DM_BUCKET, single, "").await;
        assert_eq!(s, 200, "OSS request {} of {OSS_PER_MINUTE}: {body}", i + 1);
    }
    let (s, body) = batch(&emu, &tok, &keys[..1], "").await;
    assert_eq!(s, 429, "the budget is spent: {body}");
    assert_eq!(body["developerMessage"], "Quota limit exceeded.");
}

#[tokio::test]
async fn refused_batches_leave_single_downloads_working() {
    let (emu, _dir, tok, files) = three_files(&["--refuse-batch"]).await;
    let key = files[0].0.as_str();
    emu.reset_stats().await;
    let refused = json!({ "reason": "Batch operations are not allowed on this bucket" });
    let (s, body) = batch(&emu, &tok, &[key], "").await;
    assert_eq!((s, &body), (403, &refused), "refused from the start");
    let (s, body) = signeds3download(&emu, &tok, DM_BUCKET, key, "").await;
    assert_eq!(s, 200, "single call still works: {body}");
    let url = body["url"].as_str().expect("url");
    assert_eq!(fetch(url, None).await.2, files[0].1);
    let stats = emu.stats().await;
    assert_eq!(stats["requests"]["batchsigneds3download"], 1, "{stats}");
    assert_eq!(stats["statuses"]["403"], 1, "{stats}");

    // The switch is a fault like the others: off and on again at run time.
    let (s, _) = emu.put_faults(&json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(
        batch(&emu, &tok, &[key], "").await.0,
        200,
        "accepted once off"
    );
    let (s, echoed) = emu.put_faults(&json!({ "refuse_batch": true })).await;
    assert_eq!(s, 200);
    assert_eq!(echoed["refuse_batch"], true);
    let (s, body) = batch(&emu, &tok, &[key], "").await;
    assert_eq!((s, &body), (403, &refused), "refused again");
}

#[tokio::test]
async fn batch_urls_expire_as_single_ones_do() {
    let (emu, _dir, tok, files) = three_files(&["--url-ttl", "5"]).await;
    let (key, bytes) = &files[0];
    let (s, body) = batch(&emu, &tok, &[key.as_str()], "minutesExpiration=60").await;
    assert_eq!(s, 200, "{body}");
    let url = body["results"][key.as_str()]["url"].as_str().expect("url");
    assert_eq!(&fetch(url, None).await.2, bytes, "fresh URL works");
    emu.advance_clock(6).await;
    let (s, _, text) = fetch(url, None).await;
    assert_eq!(s, 403, "capped by url_ttl_secs like a single URL");
    assert!(
        String::from_utf8_lossy(&text).contains("Request has expired"),
        "S3-style expiry"
    );
}
