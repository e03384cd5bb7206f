//! Fault injection, documented rate limits and request counters, each observed over real HTTP
//! (aps-api.md §10, §11; the `/__emulator/*` control routes).

use crate::support::api::{assert_jsonapi_error, header, token_for};
use crate::support::dm::{child, first_project, folder_by_path, get_ok, top_folders};
use crate::support::emulator::Emulator;
use crate::support::generated::generated_bytes;
use crate::support::http::{enc, get_authed, http};
use crate::support::oss::{fetch, signed_url, storage_of, upload_parts, DM_BUCKET};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A generated world with one "Large" file of `size` (e.g. "1MiB"): (emu, token, key, size).
async fn with_large(size: &str, extra: &[&str]) -> (Emulator, String, String, u64) {
    let spec = format!("items=0,folders=0,large=1x{size}");
    let mut args = vec!["--generate", spec.as_str()];
    args.extend_from_slice(extra);
    let emu = Emulator::start(&args);
    let tok = emu.token().await;
    let (project, large) = folder_by_path(&emu, &tok, &["Large"]).await;
    let (_, tip) = child(&emu, &tok, &project, &large, "large-1.bin", false).await;
    let tip = tip.expect("tip");
    let n = tip["attributes"]["storageSize"].as_u64().expect("size");
    let (_, key) = storage_of(&tip);
    (emu, tok, key, n)
}

async fn get_faults(emu: &Emulator) -> Value {
    http()
        .get(emu.url("/__emulator/faults"))
        .send()
        .await
        .expect("GET faults")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn latency_delays_every_request() {
    let emu = Emulator::start(&["--latency-ms", "200", "--generate", "items=1,folders=0"]);
    let tok = emu.token().await;
    let t0 = Instant::now();
    let (s, _) = emu.get_json(&tok, "/project/v1/hubs").await;
    assert_eq!(s, 200);
    assert!(
        t0.elapsed() >= Duration::from_millis(200),
        "took {:?}",
        t0.elapsed()
    );
    // Control routes are not delayed.
    let t0 = Instant::now();
    emu.stats().await;
    assert!(
        t0.elapsed() < Duration::from_millis(200),
        "stats took {:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn error_rate_one_fails_every_api_request_in_its_service_shape() {
    let emu = Emulator::start(&["--error-rate", "1"]);
    for path in [
        "/project/v1/hubs",
        "/data/v1/projects/b.x/folders/urn:adsk.wipprod:fs.folder:co.x/contents",
    ] {
        for _ in 0..4 {
            let r = http().get(emu.url(path)).send().await.expect("GET");
            let s = r.status().as_u16();
            assert!(s == 500 || s == 503, "{path}: {s}");
            let body: Value = r.json().await.expect("JSON:API error body");
            assert_jsonapi_error(&body, s);
        }
    }
    for path in [
        "/oss/v2/buckets",
        "/oss/v2/buckets/wip.dm.prod/objects/k.bin/signeds3download",
    ] {
        let r = http().get(emu.url(path)).send().await.expect("GET");
        let s = r.status().as_u16();
        assert!(s == 500 || s == 503, "{path}: {s}");
        let body: Value = r.json().await.expect("OSS error body");
        assert!(body["reason"].is_string(), "{path}: {body}");
        assert!(body.get("errors").is_none());
    }
    let r = http()
        .post(emu.url("/authentication/v2/token"))
        .basic_auth("a", Some("b"))
        .form(&[("grant_type", "client_credentials"), ("scope", "data:read")])
        .send()
        .await
        .expect("POST");
    assert!(
        r.status().is_server_error(),
        "token endpoint fails too: {}",
        r.status()
    );
    // Both 500 and 503 occur.
    let stats = emu.stats().await;
    let st = &stats["statuses"];
    assert!(
        st["500"].as_u64().unwrap_or(0) > 0 && st["503"].as_u64().unwrap_or(0) > 0,
        "{stats}"
    );
    // Control routes keep working.
    assert_eq!(get_faults(&emu).await["error_rate"], 1.0);
}

#[tokio::test]
async fn throttle_rate_one_answers_429_with_retry_after() {
    let emu = Emulator::start(&["--throttle-rate", "1"]);
    for path in ["/project/v1/hubs", "/oss/v2/buckets"] {
        let r = http().get(emu.url(path)).send().await.expect("GET");
        assert_eq!(r.status(), 429, "{path}");
        assert_eq!(header(r.headers(), "retry-after"), Some("1"), "{path}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["developerMessage"], "Quota limit exceeded.", "{body}");
    }
}

#[tokio::test]
async fn drop_rate_one_cuts_byte_bodies_short() {
    let (emu, tok, key, size) = with_large("1MiB", &["--drop-rate", "1"]).await;
    assert_eq!(size, 1 << 20);
    let url = signed_url(&emu, &tok, DM_BUCKET, &key).await;
    let r = http().get(&url).send().await.expect("GET");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.content_length(),
        Some(size),
        "Content-Length promises the whole object"
    );
    let mut stream = r.bytes_stream();
    let mut got = 0u64;
    let mut failed = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(b) => got += b.len() as u64,
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(got < size, "delivered {got} of {size}");
    assert!(failed, "the client sees an error, not a clean short body");
}

#[tokio::test]
async fn drop_rate_repeatedly_delivers_partial_bodies() {
    let (emu, tok, key, size) = with_large("1MiB", &["--drop-rate", "1"]).await;
    let url = signed_url(&emu, &tok, DM_BUCKET, &key).await;
    let mut outcomes = Vec::new();
    for _ in 0..40 {
        match http().get(&url).send().await {
            Err(e) => outcomes.push(format!("send error {e:?}")),
            Ok(r) => {
                let cl = r.content_length();
                let mut stream = r.bytes_stream();
                let mut got = 0u64;
                let mut failed = false;
                while let Some(c) = stream.next().await {
                    match c {
                        Ok(b) => got += b.len() as u64,
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    }
                }
                outcomes.push(format!("cl={cl:?} got={got} failed={failed}"));
                assert!(failed && got < size);
            }
        }
    }
    let bad: Vec<_> = outcomes.iter().filter(|o| o.starts_with("send")).collect();
    assert!(
        bad.is_empty(),
        "{} of 40 cut-off bodies arrived without headers: {bad:?}",
        bad.len()
    );
}

#[tokio::test]
async fn drop_rate_cuts_small_bodies_after_the_headers() {
    let (emu, tok, key, _) = with_large("1MiB", &["--drop-rate", "1"]).await;
    let url = signed_url(&emu, &tok, DM_BUCKET, &key).await;
    for range in ["bytes=0-9999", "bytes=0-524287"] {
        let r = http()
            .get(&url)
            .header("Range", range)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{range}: no response head: {e}"));
        assert_eq!(r.status(), 206, "{range}");
        let promised = r.content_length().expect("Content-Length");
        let mut stream = r.bytes_stream();
        let mut got = 0u64;
        let mut failed = false;
        while let Some(c) = stream.next().await {
            match c {
                Ok(b) => got += b.len() as u64,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        assert!(failed && got < promised, "{range}: got {got} of {promised}");
    }
}

#[tokio::test]
async fn bandwidth_cap_slows_downloads() {
    let (emu, tok, key, size) = with_large("4MiB", &["--bandwidth-mib", "2"]).await;
    let url = signed_url(&emu, &tok, DM_BUCKET, &key).await;
    let t0 = Instant::now();
    let (s, _, got) = fetch(&url, None).await;
    let took = t0.elapsed();
    assert_eq!(s, 200);
    assert_eq!(got.len() as u64, size);
    assert!(
        took >= Duration::from_millis(1500),
        "4 MiB at 2 MiB/s took {took:?}"
    );
    assert_eq!(got, generated_bytes(&key, 0, size as usize));
}

#[tokio::test]
async fn short_token_ttl_expires() {
    let emu = Emulator::start(&["--token-ttl", "2"]);
    let r = http()
        .post(emu.url("/authentication/v2/token"))
        .basic_auth("a", Some("b"))
        .form(&[("grant_type", "client_credentials"), ("scope", "data:read")])
        .send()
        .await
        .expect("token");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["expires_in"], 2);
    let tok = v["access_token"].as_str().expect("token");
    assert_eq!(emu.get_json(tok, "/project/v1/hubs").await.0, 200);
    emu.advance_clock(3).await;
    let (s, body) = emu.get_json(tok, "/project/v1/hubs").await;
    assert_eq!(s, 401, "{body}");
    assert_eq!(body["errorCode"], "AUTH-006");
}

#[tokio::test]
async fn documented_rate_limits_per_client_and_endpoint() {
    let emu = Emulator::start(&["--rate-limits", "documented"]);
    let a = token_for(&emu, "app-a", "s", "data:read").await;
    let b = token_for(&emu, "app-b", "s", "data:read").await;
    for i in 0..50 {
        let (s, body) = emu.get_json(&a, "/project/v1/hubs").await;
        assert_eq!(s, 200, "request {} of 50: {body}", i + 1);
    }
    let r = get_authed(&emu.url("/project/v1/hubs"), &a, &[]).await;
    assert_eq!(r.status(), 429, "the 51st GET /hubs within a minute");
    let retry: u64 = header(r.headers(), "retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(retry > 0 && retry <= 60, "Retry-After {retry}");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["developerMessage"], "Quota limit exceeded.");
    // Other endpoints and other apps are unaffected.
    let (hub, _) = first_project(&emu, &b).await;
    assert_eq!(
        emu.get_json(&b, "/project/v1/hubs").await.0,
        200,
        "another client id"
    );
    assert_eq!(
        emu.get_json(&a, &format!("/project/v1/hubs/{hub}/projects"))
            .await
            .0,
        200,
        "another endpoint"
    );
    let stats = emu.stats().await;
    assert!(
        stats["statuses"]["429"].as_u64().unwrap_or(0) >= 1,
        "{stats}"
    );
}

#[tokio::test]
async fn faults_change_at_run_time() {
    let emu = Emulator::start(&[]);
    let tok = emu.token().await;
    let defaults = get_faults(&emu).await;
    let hostile = json!({"redirect": "off", "object_count": 0, "json_padding_mib": 0, "endless_json": false, "range_ignored": false, "listed_size_offset": 0, "trickle_ms": 0, "token_expires_in": 0, "retry_after_secs": 0, "retry_after_date": false, "token_error_rate": 0.0, "bad_entries": false, "bad_next_link": false, "strict_item_names": false, "refuse_storage_reuse": false, "route_faults": {}});
    let with_hostile = |v: Value| {
        let mut all = hostile.clone();
        if let (Some(a), Value::Object(o)) = (all.as_object_mut(), v) {
            a.extend(o);
        }
        all
    };
    assert_eq!(
        defaults,
        with_hostile(
            json!({"latency_ms": 0, "bandwidth_mib": 0.0, "error_rate": 0.0, "throttle_rate": 0.0, "drop_rate": 0.0, "stall_rate": 0.0, "url_ttl_secs": 0, "refuse_batch": false})
        )
    );
    let set = with_hostile(
        json!({"latency_ms": 0, "bandwidth_mib": 3.5, "error_rate": 0.0, "throttle_rate": 1.0, "drop_rate": 0.25, "stall_rate": 0.0, "url_ttl_secs": 30, "refuse_batch": true}),
    );
    let (s, echoed) = emu.put_faults(&set).await;
    assert_eq!(s, 200);
    assert_eq!(echoed, set);
    assert_eq!(get_faults(&emu).await, set);
    let r = get_authed(&emu.url("/project/v1/hubs"), &tok, &[]).await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(r.headers(), "retry-after"), Some("1"));

    let (s, _) = emu.put_faults(&json!({"latency_ms": 150})).await;
    assert_eq!(s, 200, "omitted knobs default to zero");
    assert_eq!(get_faults(&emu).await["throttle_rate"], 0.0);
    let t0 = Instant::now();
    assert_eq!(emu.get_json(&tok, "/project/v1/hubs").await.0, 200);
    assert!(t0.elapsed() >= Duration::from_millis(150));

    for bad in [
        json!({"error_rate": 2.0}),
        json!({"drop_rate": -0.1}),
        json!({"no_such_knob": 1}),
        json!({"bandwidth_mib": -1.0}),
        json!({"token_error_rate": 1.5}),
        json!({"json_padding_mib": 5000}),
        json!({"trickle_ms": 100_000}),
        json!({"redirect": "sideways"}),
        json!({"listed_size_offset": 1.5}),
    ] {
        let (s, body) = emu.put_faults(&bad).await;
        assert_eq!(s, 400, "{bad}: {body}");
    }
    assert_eq!(
        get_faults(&emu).await["latency_ms"],
        150,
        "rejected settings change nothing"
    );
    let (s, _) = emu.put_faults(&json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(get_faults(&emu).await, defaults);
}

#[tokio::test]
async fn stats_count_each_route_and_bytes_served() {
    let emu = Emulator::start(&["--generate", "items=3,folders=0,awkward"]);
    let tok = emu.token().await;
    let (hub, project) = first_project(&emu, &tok).await;
    let tops = top_folders(&emu, &tok, &hub, &project).await;
    let folder = tops[0]["id"].as_str().expect("id").to_string();
    emu.reset_stats().await;
    let zero = emu.stats().await;
    assert_eq!(zero["requests"], json!({}), "{zero}");
    assert_eq!(zero["bytes_served"], 0);

    let p = &project;
    let f = enc(&folder);
    let ok = |path: String| {
        let emu = &emu;
        let tok = &tok;
        async move { get_ok(emu, tok, &path).await }
    };
    let _ = emu.token().await; // token
    ok("/project/v1/hubs".into()).await; // hubs
    ok(format!("/project/v1/hubs/{hub}")).await; // hub
    ok(format!("/project/v1/hubs/{hub}/projects")).await; // projects
    ok(format!("/project/v1/hubs/{hub}/projects/{p}")).await; // project
    ok(format!("/project/v1/hubs/{hub}/projects/{p}/topFolders")).await; // top_folders
    ok(format!("/data/v1/projects/{p}/folders/{f}")).await; // folder
    let contents = ok(format!(
        "/data/v1/projects/{p}/folders/{f}/contents?filter[type]=items"
    ))
    .await; // folder_contents
    let item = contents["data"][0]["id"]
        .as_str()
        .expect("item")
        .to_string();
    let tip = contents["included"][0].clone();
    let i = enc(&item);
    ok(format!("/data/v1/projects/{p}/items/{i}")).await; // item
    ok(format!("/data/v1/projects/{p}/items/{i}/tip")).await; // item_tip
    ok(format!("/data/v1/projects/{p}/items/{i}/versions")).await; // item_versions
    ok(format!(
        "/data/v1/projects/{p}/versions/{}",
        enc(tip["id"].as_str().expect("id"))
    ))
    .await; // version
    ok(format!(
        "/data/v1/projects/{p}/items/{i}/relationships/refs"
    ))
    .await; // refs
    ok(format!("/data/v1/projects/{p}/items/{i}/refs")).await; // refs
    ok("/oss/v2/buckets".into()).await; // buckets
    let r = http()
        .post(emu.url("/oss/v2/buckets"))
        .bearer_auth(&tok)
        .json(&json!({"bucketKey": "stats-bucket"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 200); // buckets
    ok("/oss/v2/buckets/stats-bucket/objects".into()).await; // objects
    let (_, key) = storage_of(&tip);
    ok(format!(
        "/oss/v2/buckets/{DM_BUCKET}/objects/{}/details",
        enc(&key)
    ))
    .await; // object_details
    let url = signed_url(&emu, &tok, DM_BUCKET, &key).await; // signeds3download
    let (s, _, whole) = fetch(&url, None).await; // signed_get
    assert_eq!(s, 200);
    let (s, _, part) = fetch(&url, Some("bytes=0-9")).await; // signed_get
    assert_eq!(s, 206);
    let (s, _) = upload_parts(&emu, &tok, "stats-bucket", "o.txt", &[b"12345"]).await; // upload x3
    assert_eq!(s, 200);
    ok(format!("/data/v1/projects/{p}/items/{i}/parent")).await; // other
    let (s, _) = emu.get_json(&tok, "/no/such/route").await; // other
    assert_eq!(s, 404);

    let stats = emu.stats().await;
    let req = &stats["requests"];
    let want = [
        ("token", 1),
        ("hubs", 1),
        ("hub", 1),
        ("projects", 1),
        ("project", 1),
        ("top_folders", 1),
        ("folder", 1),
        ("folder_contents", 1),
        ("item", 1),
        ("item_tip", 1),
        ("item_versions", 1),
        ("version", 1),
        ("refs", 2),
        ("buckets", 2),
        ("objects", 1),
        ("object_details", 1),
        ("signeds3download", 1),
        ("signed_get", 2),
        ("upload", 3),
        ("other", 2),
    ];
    for (name, n) in want {
        assert_eq!(req[name], n, "requests.{name} in {stats}");
    }
    let total: u64 = want.iter().map(|(_, n)| *n as u64).sum();
    let counted: u64 = req
        .as_object()
        .expect("requests")
        .values()
        .map(|v| v.as_u64().expect("n"))
        .sum();
    assert_eq!(
        counted, total,
        "nothing else counted (control routes excluded): {stats}"
    );
    assert_eq!(stats["bytes_served"], (whole.len() + part.len()) as u64);
    assert_eq!(stats["statuses"]["206"], 1);
    assert_eq!(stats["statuses"]["404"], 1);

    emu.reset_stats().await;
    let zero = emu.stats().await;
    assert_eq!(zero["requests"], json!({}));
    assert_eq!(zero["statuses"], json!({}));
    assert_eq!(zero["bytes_served"], 0);
    assert_eq!(emu.count("hubs").await, 0);
    get_ok(&emu, &tok, "/project/v1/hubs").await;
    assert_eq!(emu.count("hubs").await, 1);
}
