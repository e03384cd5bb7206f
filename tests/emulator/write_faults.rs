//! Faults on the write path: `route_faults` aimed at one endpoint (the `POST versions` after a
//! completed upload, a held or refused part PUT), expiring upload URLs, and the global
//! error, throttle and drop rates on writes and parts; a part cut short is never stored; the
//! bandwidth cap on parts.

use crate::support::api::{assert_jsonapi_error, header};
use crate::support::http::http;
use crate::support::write::Dm;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FILE: &str = "versions:autodesk.bim360:File";

/// `GET …/signeds3upload` of `key` with `query`, which must answer 200.
async fn start_upload(w: &Dm, key: &str, query: &str) -> Value {
    let (s, v) = w.emu.get_json(&w.tok, &Dm::upload_path(key, query)).await;
    assert_eq!(s, 200, "signeds3upload GET: {v}");
    v
}

/// PUT `body` to a signed part URL: (status, ETag, body text).
async fn put_part(url: &str, body: &[u8]) -> (u16, Option<String>, String) {
    let r = http()
        .put(url)
        .body(body.to_vec())
        .send()
        .await
        .expect("PUT part");
    let status = r.status().as_u16();
    let etag = header(r.headers(), "etag").map(str::to_string);
    (status, etag, r.text().await.unwrap_or_default())
}

/// The first part URL of an upload start answer.
fn url0(start: &Value) -> String {
    start["urls"][0].as_str().expect("part url").to_string()
}

/// Completes `key`'s upload `start` with the parts' `etags`: (status, body).
async fn complete(w: &Dm, key: &str, start: &Value, etags: &[&str]) -> (u16, Value) {
    w.complete_as(
        &w.tok,
        key,
        &json!({"uploadKey": start["uploadKey"], "eTags": etags}),
    )
    .await
}

#[tokio::test]
async fn failing_the_version_after_a_completed_upload() {
    let w = Dm::start(&[]).await;
    let (item, _) = w.item("report.pdf", b"v1").await;
    let (v2, _) = w.uploaded("report.pdf", b"v2").await;
    let faults = json!({"route_faults": {"create_version": {"fail_next": 2, "status": 503}}});
    let (s, echoed) = w.emu.put_faults(&faults).await;
    assert_eq!(s, 200, "{echoed}");
    assert_eq!(
        echoed["route_faults"]["create_version"],
        json!({"after": 0, "fail_next": 2, "status": 503, "latency_ms": 0})
    );
    for _ in 0..2 {
        let (s, v) = w.post_version(&item, "report.pdf", FILE, Some(&v2)).await;
        assert_eq!(s, 503, "{v}");
        assert_jsonapi_error(&v, 503);
        // Everything else still works.
        w.get_item(&item).await;
    }
    let (s, v) = w.post_version(&item, "report.pdf", FILE, Some(&v2)).await;
    assert_eq!(s, 201, "the storage is still there to commit: {v}");
    assert_eq!(v["data"]["attributes"]["versionNumber"], 2);
    let stats = w.emu.stats().await;
    assert_eq!(stats["writes"]["versions_created"], 1, "{stats}");
    assert_eq!(stats["routes"]["create_version"], 3);
    assert_eq!(stats["injected"]["route_fault"], 2);
    let (_, now) = w.emu.put_faults(&json!({})).await;
    assert_eq!(now["route_faults"], json!({}));

    // `after` lets some through first; the counts left show in GET /__emulator/faults.
    let faults =
        json!({"route_faults": {"create_item": {"after": 1, "fail_next": 1, "status": 500}}});
    assert_eq!(w.emu.put_faults(&faults).await.0, 200);
    let (a, _) = w.uploaded("a.txt", b"a").await;
    let (b, _) = w.uploaded("b.txt", b"b").await;
    assert_eq!(w.post_item("a.txt", &a).await.0, 201);
    let (s, v) = w.post_item("b.txt", &b).await;
    assert_eq!(s, 500, "{v}");
    let left = w.emu.get_json(&w.tok, "/__emulator/faults").await.1;
    assert_eq!(left["route_faults"]["create_item"]["after"], 0);
    assert_eq!(left["route_faults"]["create_item"]["fail_next"], 0);
    assert_eq!(w.post_item("b.txt", &b).await.0, 201);
}

#[tokio::test]
async fn a_held_part_put_can_be_abandoned_and_is_not_stored_when_cut_short() {
    let w = Dm::start(&[]).await;
    let (_, key) = w.storage("big.bin").await;
    let start = start_upload(&w, &key, "parts=1").await;
    let faults = json!({"route_faults": {"signed_put": {"latency_ms": 1500}}});
    assert_eq!(w.emu.put_faults(&faults).await.0, 200);

    // A client that gives up (or is killed) while the part is held sees no answer.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let t0 = Instant::now();
    let r = impatient.put(url0(&start)).body("abc").send().await;
    assert!(r.is_err(), "held past the client's patience");
    assert!(t0.elapsed() < Duration::from_millis(1500));

    // Killed after sending 10 of 100 bytes: once the hold ends the body is found short and the
    // part is not stored.
    let answer = raw_put(&url0(&start), 100, &[7u8; 10]).await;
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(w.emu.stats().await["writes"]["parts_put"], 0);

    // A patient client waits the hold out and gets its ETag.
    let t0 = Instant::now();
    let (s, etag, _) = put_part(&url0(&start), b"whole").await;
    assert_eq!(s, 200);
    assert!(t0.elapsed() >= Duration::from_millis(1500));
    let etag = etag.expect("ETag");
    let (s, v) = complete(&w, &key, &start, &[&etag]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(w.download(&key).await, b"whole");
}

/// Sends a PUT to `url` that declares `declared` bytes but carries only `sent`, then stops
/// sending (as a killed client's connection does) and returns whatever answer comes back.
async fn raw_put(url: &str, declared: usize, sent: &[u8]) -> String {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_at(rest.find('/').expect("path"));
    let mut tcp = tokio::net::TcpStream::connect(host).await.expect("connect");
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.expect("head");
    tcp.write_all(sent).await.expect("body");
    tcp.shutdown().await.expect("shutdown");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_short_part_body_is_refused_and_not_stored() {
    let w = Dm::start(&[]).await;
    let (_, key) = w.storage("short.bin").await;
    let start = start_upload(&w, &key, "parts=1").await;
    let answer = raw_put(&url0(&start), 1000, &[1u8; 400]).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("IncompleteBody"), "{answer}");
    let stats = w.emu.stats().await;
    assert_eq!(stats["writes"]["parts_put"], 0, "{stats}");
    // Nothing to complete: the part is still pending.
    let (s, v) = complete(&w, &key, &start, &[]).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["parts"][0]["status"], "Pending", "{v}");
}

#[tokio::test]
async fn part_puts_refused_as_expired() {
    let w = Dm::start(&[]).await;
    let (_, key) = w.storage("x.bin").await;

    // url_ttl_secs caps upload URLs too: asked for an hour, they live five seconds.
    assert_eq!(w.emu.put_faults(&json!({"url_ttl_secs": 5})).await.0, 200);
    let start = start_upload(&w, &key, "parts=1&minutesExpiration=60").await;
    let upload_key = start["uploadKey"].as_str().expect("uploadKey").to_string();
    let url_exp = chrono::DateTime::parse_from_rfc3339(
        start["urlExpiration"].as_str().expect("urlExpiration"),
    )
    .expect("RFC 3339");
    let left = url_exp.timestamp() - chrono::Utc::now().timestamp();
    assert!(
        (3..=6).contains(&left),
        "urlExpiration {left} s ahead: {start}"
    );
    w.emu.advance_clock(6).await;
    let (s, etag, body) = put_part(&url0(&start), b"late").await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    assert!(body.contains("Request has expired"), "{body}");
    assert!(etag.is_none());

    // A fresh URL for the same part of the same upload works.
    let again = start_upload(
        &w,
        &key,
        &format!("parts=1&firstPart=1&uploadKey={upload_key}"),
    )
    .await;
    assert_eq!(again["uploadKey"], upload_key.as_str());
    let (s, etag, _) = put_part(&url0(&again), b"in time").await;
    assert_eq!(s, 200);
    assert!(etag.is_some());

    // route_faults can refuse a part PUT as an expired URL without moving the clock.
    let faults = json!({"route_faults": {"signed_put": {"fail_next": 1, "status": 403}}});
    assert_eq!(w.emu.put_faults(&faults).await.0, 200);
    let (s, _, body) = put_part(&url0(&again), b"in time").await;
    assert_eq!(s, 403);
    assert!(body.contains("Request has expired"), "{body}");
    let (s, etag, _) = put_part(&url0(&again), b"in time").await;
    assert_eq!(s, 200);
    let etag = etag.expect("ETag");
    let (s, v) = complete(&w, &key, &again, &[&etag]).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn bandwidth_cap_paces_part_uploads_which_finish_past_their_url() {
    let w = Dm::start(&[]).await;
    let (_, key) = w.storage("paced.bin").await;
    let faults = json!({"bandwidth_mib": 2.0, "url_ttl_secs": 2});
    assert_eq!(w.emu.put_faults(&faults).await.0, 200);
    let start = start_upload(&w, &key, "parts=1").await;
    let t0 = Instant::now();
    let (s, etag, body) = put_part(&url0(&start), &[7u8; 5 << 20]).await;
    let took = t0.elapsed();
    // Its URL expired while the body came in; the PUT started in time, so it is stored.
    assert_eq!(s, 200, "{body}");
    assert!(
        took >= Duration::from_millis(2400),
        "5 MiB at 2 MiB/s took {took:?}"
    );
    let (s, v) = complete(&w, &key, &start, &[&etag.expect("ETag")]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(w.emu.stats().await["writes"]["part_bytes"], 5 << 20);
}

#[tokio::test]
async fn error_and_throttle_rates_reach_writes_and_parts() {
    let w = Dm::start(&[]).await;
    let (storage, key) = w.storage("e.bin").await;
    let start = start_upload(&w, &key, "parts=1").await;
    let (item, _) = w.item("kept.txt", b"kept").await;
    w.emu.reset_stats().await;

    assert_eq!(w.emu.put_faults(&json!({"error_rate": 1.0})).await.0, 200);
    let (s, v) = w.post_storage(&w.tok, "f.txt").await;
    assert!(s >= 500, "storage: {s} {v}");
    assert_jsonapi_error(&v, s);
    let (s, _) = w.post_folder("F").await;
    assert!(s >= 500);
    let (s, _, body) = put_part(&url0(&start), b"part").await;
    assert!(s >= 500, "part: {s}");
    assert!(body.contains("<Error>"), "S3 error shape: {body}");
    let (s, v) = w.emu.get_json(&w.tok, &Dm::upload_path(&key, "")).await;
    assert!(s >= 500 && v["reason"].is_string(), "OSS: {s} {v}");

    assert_eq!(
        w.emu.put_faults(&json!({"throttle_rate": 1.0})).await.0,
        200
    );
    let r = http()
        .put(url0(&start))
        .body("part")
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 429);
    assert!(header(r.headers(), "retry-after").is_some());
    let (s, _) = w
        .post_version(&item, "kept.txt", FILE, Some(&storage))
        .await;
    assert_eq!(s, 429);

    let writes = w.emu.stats().await["writes"].clone();
    assert_eq!(
        writes,
        json!({"storage_created": 0, "items_created": 0, "versions_created": 0,
               "folders_created": 0, "parts_put": 0, "part_bytes": 0, "uploads_completed": 0,
               "items_renamed": 0, "versions_renamed": 0, "folders_renamed": 0,
               "folders_moved": 0, "folders_hidden": 0, "folders_restored": 0, "tombstones": 0})
    );
}

#[tokio::test]
async fn drop_rate_loses_parts_and_the_answers_of_writes() {
    let w = Dm::start(&[]).await;
    let (_, key) = w.storage("d.bin").await;
    let start = start_upload(&w, &key, "parts=1").await;
    assert_eq!(w.emu.put_faults(&json!({"drop_rate": 1.0})).await.0, 200);

    // A part lost on its way: no answer at all, nothing stored.
    let r = http().put(url0(&start)).body("lost").send().await;
    assert!(r.is_err(), "no answer: {:?}", r.map(|r| r.status()));
    // A write whose answer is lost: the folder is made, the client sees a broken answer.
    let r = http()
        .post(w.emu.url(&w.data_path("folders")))
        .bearer_auth(&w.tok)
        .header("Content-Type", "application/vnd.api+json")
        .body(
            json!({"jsonapi": {"version": "1.0"}, "data": {"type": "folders",
            "attributes": {"name": "Made"},
            "relationships": {"parent": {"data": {"type": "folders", "id": w.folder}}}}})
            .to_string(),
        )
        .send()
        .await;
    let whole = match r {
        Ok(r) => r.bytes().await.is_ok(),
        Err(_) => false,
    };
    assert!(!whole, "the answer is cut");

    assert_eq!(w.emu.put_faults(&json!({})).await.0, 200);
    let stats = w.emu.stats().await;
    assert_eq!(stats["writes"]["parts_put"], 0, "{stats}");
    assert_eq!(stats["writes"]["folders_created"], 1);
    assert_eq!(stats["injected"]["drop_part"], 1);
    assert_eq!(stats["injected"]["drop_answer"], 1);
    assert_eq!(w.post_folder("Made").await.0, 409, "it was made");
    let (s, v) = complete(&w, &key, &start, &[]).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["parts"][0]["status"], "Pending");
}

#[tokio::test]
async fn route_faults_are_validated() {
    let w = Dm::start(&[]).await;
    for bad in [
        json!({"route_faults": {"upload": {"fail_next": 1}}}),
        json!({"route_faults": {"create_versions": {"fail_next": 1}}}),
        json!({"route_faults": {"create_version": {"fail_next": 1, "status": 200}}}),
        json!({"route_faults": {"create_version": {"fail_next": 1, "status": 600}}}),
        json!({"route_faults": {"signed_put": {"latency_ms": 600_001}}}),
        json!({"route_faults": {"signed_put": {"hold": 1}}}),
        json!({"route_faults": {"signed_put": 3}}),
    ] {
        let (s, v) = w.emu.put_faults(&bad).await;
        assert_eq!(s, 400, "{bad}: {v}");
        assert!(v["reason"].is_string());
    }
    let (_, now) = w
        .emu
        .put_faults(&json!({"route_faults": {"signed_put": {}}}))
        .await;
    assert_eq!(
        now["route_faults"]["signed_put"],
        json!({"after": 0, "fail_next": 0, "status": 503, "latency_ms": 0}),
        "an empty entry is a harmless default"
    );
    // Every write route of the brief has a name.
    for route in [
        "create_storage",
        "create_item",
        "create_version",
        "create_folder",
        "signeds3upload",
        "signed_put",
        "signeds3upload_complete",
    ] {
        let mut f = json!({"route_faults": {}});
        f["route_faults"][route] = json!({"latency_ms": 1});
        assert_eq!(w.emu.put_faults(&f).await.0, 200, "{route}");
    }
}
