//! Object bytes over real HTTP: `signeds3download`, the signed URL (Range, expiry, signature),
//! unmerged uploads, generated multi-GiB objects, object details and the legacy direct GET
//! (aps-api.md §7.6, §7.7, §7.9).

use crate::support::api::header;
use crate::support::digest::sha1_hex;
use crate::support::dm::{child, folder_by_path, folder_entries, get_ok};
use crate::support::emulator::Emulator;
use crate::support::files::write_file;
use crate::support::generated::generated_bytes;
use crate::support::http::{enc, get_authed, http};
use crate::support::oss::{fetch, signed_url, signeds3download, storage_of, DM_BUCKET};
use crate::support::seed::pseudo_bytes;
use serde_json::Value;

const SIZE: usize = 10_000;

/// An emulator seeded with one 10,000-byte file; returns it with the file bytes, project id,
/// tip version and storage key.
async fn small() -> (Emulator, tempfile::TempDir, Vec<u8>, String, Value, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = pseudo_bytes(SIZE, 42);
    write_file(
        &dir.path().join("Hub/Project/Files/data.bin"),
        &bytes,
        1_700_000_000,
    );
    let emu = Emulator::seeded(dir.path(), &[]);
    let tok = emu.token().await;
    let (project, folder) = folder_by_path(&emu, &tok, &[]).await;
    let (_, tip) = child(&emu, &tok, &project, &folder, "data.bin", false).await;
    let tip = tip.expect("tip");
    let (bucket, key) = storage_of(&tip);
    assert_eq!(bucket, DM_BUCKET);
    (emu, dir, bytes, tok, tip, key)
}

#[tokio::test]
async fn signeds3download_complete_body() {
    let (emu, _dir, bytes, tok, _tip, key) = small().await;
    let (status, body) = signeds3download(&emu, &tok, DM_BUCKET, &key, "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "complete");
    let url = body["url"].as_str().expect("url");
    assert!(url.starts_with("http"), "{url}");
    assert!(
        body["params"]["content-type"].is_string(),
        "params.content-type: {body}"
    );
    assert!(
        body["params"]["content-disposition"].is_string(),
        "params.content-disposition: {body}"
    );
    assert_eq!(body["size"], SIZE);
    let sha1 = body["sha1"].as_str().expect("sha1 for a small object");
    assert_eq!(sha1.len(), 40);
    assert!(sha1
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert_eq!(sha1, sha1_hex(&bytes));
    assert!(body.get("urls").is_none());

    // The URL takes no token and serves the exact bytes.
    let (status, headers, got) = fetch(url, None).await;
    assert_eq!(status, 200);
    assert_eq!(got, bytes);
    assert_eq!(header(&headers, "content-length"), Some("10000"));
    assert_eq!(header(&headers, "accept-ranges"), Some("bytes"));

    // The response-* parameters become headers of the signed GET.
    let (status, body) = signeds3download(
        &emu,
        &tok,
        DM_BUCKET,
        &key,
        "response-content-type=text%2Fplain&response-content-disposition=inline",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["params"]["content-type"], "text/plain");
    let (status, headers, got) = fetch(body["url"].as_str().expect("url"), None).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("text/plain"));
    assert_eq!(header(&headers, "content-disposition"), Some("inline"));
    assert_eq!(got.len(), SIZE);

    // The signed download endpoint itself needs a token.
    let r = http()
        .get(emu.url(&format!(
            "/oss/v2/buckets/{DM_BUCKET}/objects/{}/signeds3download",
            enc(&key)
        )))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 401);
    let (status, _) = signeds3download(&emu, &tok, DM_BUCKET, "no-such-object.bin", "").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn signed_url_honours_ranges() {
    let (emu, _dir, bytes, tok, _tip, key) = small().await;
    let url = signed_url(&emu, &tok, DM_BUCKET, &key).await;
    let cases: [(&str, usize, usize); 8] = [
        ("bytes=0-0", 0, 0),
        ("bytes=0-99", 0, 99),
        ("bytes=100-199", 100, 199),
        ("bytes=4097-8191", 4097, 8191),
        ("bytes=9990-9999", 9990, 9999),
        ("bytes=5000-20000", 5000, 9999),
        ("bytes=-10", 9990, 9999),
        ("bytes=100-", 100, 9999),
    ];
    for (range, a, b) in cases {
        let (status, headers, got) = fetch(&url, Some(range)).await;
        assert_eq!(status, 206, "{range}");
        assert_eq!(
            header(&headers, "content-range"),
            Some(format!("bytes {a}-{b}/{SIZE}").as_str()),
            "{range}"
        );
        assert_eq!(
            header(&headers, "content-length"),
            Some((b - a + 1).to_string().as_str()),
            "{range}"
        );
        assert_eq!(got, &bytes[a..=b], "{range}");
    }
    for range in ["bytes=10000-", "bytes=10000-10005", "bytes=20000-30000"] {
        let (status, headers, _) = fetch(&url, Some(range)).await;
        assert_eq!(status, 416, "{range}");
        assert_eq!(
            header(&headers, "content-range"),
            Some("bytes */10000"),
            "{range}"
        );
    }
}

#[tokio::test]
async fn signed_url_rejects_tampering() {
    let (emu, _dir, _bytes, tok, _tip, key) = small().await;
    let url = signed_url(&emu, &tok, DM_BUCKET, &key).await;
    let (before, sig) = url.split_once("Signature=").expect("Signature param");
    let (sig, after) = sig.split_once('&').unwrap_or((sig, ""));
    let flipped: String = sig
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                if c == '0' {
                    '1'
                } else {
                    '0'
                }
            } else {
                c
            }
        })
        .collect();
    let tampered = format!("{before}Signature={flipped}&{after}");
    let (status, _, _) = fetch(&tampered, None).await;
    assert_eq!(status, 403, "tampered signature");
    let later = url.replacen("Expires=", "Expires=9", 1);
    let (status, _, _) = fetch(&later, None).await;
    assert_eq!(status, 403, "tampered expiry");
    let other_key = url.replace(&enc(&key), "other.bin");
    let (status, _, _) = fetch(&other_key, None).await;
    assert_eq!(status, 403, "signature bound to the key");
    let (status, _, _) = fetch(&url, None).await;
    assert_eq!(status, 200, "the genuine URL still works");
}

#[tokio::test]
async fn signed_urls_expire() {
    let (emu, _dir, bytes, tok, _tip, key) = small().await;
    let short = signed_url(&emu, &tok, DM_BUCKET, &key).await;
    let (status, body) =
        signeds3download(&emu, &tok, DM_BUCKET, &key, "minutesExpiration=60").await;
    assert_eq!(status, 200);
    let long = body["url"].as_str().expect("url").to_string();
    assert_eq!(fetch(&short, None).await.0, 200);

    emu.advance_clock(121).await;
    let (status, _, _) = fetch(&short, None).await;
    assert_eq!(status, 403, "default minutesExpiration is 2 minutes");
    let (status, _, got) = fetch(&long, Some("bytes=0-9")).await;
    assert_eq!(status, 206, "60-minute URL still valid after 121 s");
    assert_eq!(got, &bytes[..10]);

    for bad in ["61", "0", "abc"] {
        let (status, body) = signeds3download(
            &emu,
            &tok,
            DM_BUCKET,
            &key,
            &format!("minutesExpiration={bad}"),
        )
        .await;
        assert_eq!(status, 400, "minutesExpiration={bad}");
        assert!(
            body["reason"].is_string(),
            "OSS error body {{\"reason\"}}: {body}"
        );
    }
    let (status, _) = signeds3download(&emu, &tok, DM_BUCKET, &key, "minutesExpiration=1").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn generated_small_objects_match_their_key_seed() {
    let emu = Emulator::start(&["--generate", "items=5,folders=0"]);
    let tok = emu.token().await;
    let (project, folder) = folder_by_path(&emu, &tok, &[]).await;
    let (data, included) = folder_entries(&emu, &tok, &project, &folder, false).await;
    assert_eq!(data.len(), 5);
    for v in &included {
        let (bucket, key) = storage_of(v);
        let size = v["attributes"]["storageSize"]
            .as_u64()
            .expect("storageSize") as usize;
        let (_, body) = signeds3download(&emu, &tok, &bucket, &key, "").await;
        assert_eq!(body["size"], size);
        let (status, _, got) = fetch(body["url"].as_str().expect("url"), None).await;
        assert_eq!(status, 200);
        let want = generated_bytes(&key, 0, size);
        assert_eq!(got, want, "bytes of {key} are a function of the key");
        assert_eq!(body["sha1"], sha1_hex(&want));
    }
}

#[tokio::test]
async fn large_generated_object_ranges() {
    const GIB: u64 = 1 << 30;
    let emu = Emulator::start(&["--generate", "items=0,folders=0,large=1x3GiB"]);
    let tok = emu.token().await;
    let (project, large) = folder_by_path(&emu, &tok, &["Large"]).await;
    let (_, tip) = child(&emu, &tok, &project, &large, "large-1.bin", false).await;
    let tip = tip.expect("tip");
    assert_eq!(tip["attributes"]["storageSize"], 3 * GIB);
    let (bucket, key) = storage_of(&tip);
    let (status, body) = signeds3download(&emu, &tok, &bucket, &key, "").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "complete");
    assert_eq!(body["size"], 3 * GIB);
    if let Some(s) = body["sha1"].as_str() {
        assert_eq!(
            s.len(),
            40,
            "sha1 is optional for large objects, but hex when present"
        );
    }
    let url = body["url"].as_str().expect("url").to_string();
    let size = 3 * GIB;
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut starts = vec![
        0,
        1,
        7,
        4095,
        GIB - 3,
        GIB,
        GIB + 1,
        2 * GIB - 100,
        size - 1000,
        size - 1,
    ];
    for _ in 0..6 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        starts.push(x % size);
    }
    for a in starts {
        let len = (1 + (a % 5000)).min(size - a);
        let b = a + len - 1;
        let (status, headers, got) = fetch(&url, Some(&format!("bytes={a}-{b}"))).await;
        assert_eq!(status, 206, "bytes={a}-{b}");
        assert_eq!(
            header(&headers, "content-range"),
            Some(format!("bytes {a}-{b}/{size}").as_str())
        );
        assert_eq!(got, generated_bytes(&key, a, len as usize), "bytes={a}-{b}");
    }
    let (status, headers, got) = fetch(&url, Some("bytes=-1")).await;
    assert_eq!(status, 206);
    assert_eq!(
        header(&headers, "content-range"),
        Some(format!("bytes {}-{}/{size}", size - 1, size - 1).as_str())
    );
    assert_eq!(got, generated_bytes(&key, size - 1, 1));
    let (status, _, got) = fetch(&url, Some(&format!("bytes={}-", size - 64))).await;
    assert_eq!(status, 206);
    assert_eq!(got, generated_bytes(&key, size - 64, 64));
    let (status, _, _) = fetch(&url, Some(&format!("bytes={size}-"))).await;
    assert_eq!(status, 416);
}

#[tokio::test]
async fn unmerged_upload_is_chunked_or_fallback() {
    let emu = Emulator::start(&["--generate", "items=0,folders=0,awkward"]);
    let tok = emu.token().await;
    let (project, folder) = folder_by_path(&emu, &tok, &["Awkward"]).await;
    let (_, tip) = child(&emu, &tok, &project, &folder, "Unmerged Upload.bin", false).await;
    let (bucket, key) = storage_of(&tip.expect("tip"));

    let (status, body) = signeds3download(&emu, &tok, &bucket, &key, "").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "chunked");
    assert!(
        body.get("url").is_none(),
        "chunked answers urls, not url: {body}"
    );
    let size = body["size"].as_u64().expect("size");
    assert_eq!(size, 12 << 20);
    let urls = body["urls"].as_object().expect("urls map");
    assert!(urls.len() >= 2);
    let mut ranges: Vec<(u64, u64, String)> = urls
        .iter()
        .map(|(k, v)| {
            let (a, b) = k
                .split_once('-')
                .unwrap_or_else(|| panic!("key {k:?} is a-b"));
            (
                a.parse().expect("a"),
                b.parse().expect("b"),
                v.as_str().expect("url").to_string(),
            )
        })
        .collect();
    ranges.sort();
    let mut next = 0;
    for (a, b, url) in &ranges {
        assert_eq!(*a, next, "chunks are contiguous");
        assert!(b >= a);
        next = b + 1;
        // Each chunk URL serves that chunk: check its length and a few ranges.
        let (status, headers, got) = fetch(url, Some("bytes=0-99")).await;
        assert_eq!(status, 206);
        assert_eq!(
            header(&headers, "content-range"),
            Some(format!("bytes 0-99/{}", b - a + 1).as_str()),
            "chunk {a}-{b}"
        );
        assert_eq!(
            got,
            generated_bytes(&key, *a, 100),
            "first bytes of chunk {a}-{b}"
        );
        let (status, _, got) = fetch(url, Some("bytes=-16")).await;
        assert_eq!(status, 206);
        assert_eq!(
            got,
            generated_bytes(&key, b - 15, 16),
            "last bytes of chunk {a}-{b}"
        );
    }
    assert_eq!(next, size, "chunks cover the object");
    let (a, b, url) = ranges.last().expect("a chunk");
    let (status, _, got) = fetch(url, None).await;
    assert_eq!(status, 200);
    assert_eq!(got, generated_bytes(&key, *a, (b - a + 1) as usize));

    let (status, body) =
        signeds3download(&emu, &tok, &bucket, &key, "public-resource-fallback=true").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "fallback");
    assert!(body.get("urls").is_none());
    assert_eq!(body["size"], size);
    let url = body["url"].as_str().expect("url");
    let (status, headers, got) = fetch(url, Some(&format!("bytes={}-", size - 32))).await;
    assert_eq!(status, 206);
    assert_eq!(
        header(&headers, "content-range"),
        Some(format!("bytes {}-{}/{size}", size - 32, size - 1).as_str())
    );
    assert_eq!(got, generated_bytes(&key, size - 32, 32));
}

#[tokio::test]
async fn object_details_fields() {
    let (emu, _dir, bytes, tok, _tip, key) = small().await;
    let path = format!("/oss/v2/buckets/{DM_BUCKET}/objects/{}/details", enc(&key));
    let body = get_ok(&emu, &tok, &path).await;
    assert_eq!(body["bucketKey"], DM_BUCKET);
    assert_eq!(body["objectKey"], key.as_str());
    assert_eq!(
        body["objectId"],
        format!("urn:adsk.objects:os.object:{DM_BUCKET}/{key}")
    );
    assert_eq!(body["size"], SIZE);
    assert_eq!(body["sha1"], sha1_hex(&bytes));
    assert!(body["contentType"].is_string());
    let location = body["location"].as_str().expect("location");
    assert!(
        location.ends_with(&format!(
            "/oss/v2/buckets/{DM_BUCKET}/objects/{}",
            enc(&key)
        )),
        "{location}"
    );
    assert!(
        body.get("createdDate").is_none(),
        "createdDate only when asked"
    );

    let body = get_ok(
        &emu,
        &tok,
        &format!("{path}?with=createdDate&with=lastModifiedDate"),
    )
    .await;
    assert_eq!(
        body["createdDate"], 1_700_000_000_000i64,
        "epoch ms of the seeded file"
    );
    assert!(body["lastModifiedDate"].is_i64());

    let (status, body) = emu
        .get_json(
            &tok,
            &format!("/oss/v2/buckets/{DM_BUCKET}/objects/missing.bin/details"),
        )
        .await;
    assert_eq!(status, 404);
    assert!(body["reason"].is_string(), "OSS error body: {body}");
    let r = http().get(emu.url(&path)).send().await.expect("GET");
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn legacy_object_get_with_range() {
    let (emu, _dir, bytes, tok, _tip, key) = small().await;
    let url = emu.url(&format!(
        "/oss/v2/buckets/{DM_BUCKET}/objects/{}",
        enc(&key)
    ));
    let r = get_authed(&url, &tok, &[]).await;
    assert_eq!(r.status(), 200);
    let disposition = header(r.headers(), "content-disposition")
        .expect("Content-Disposition")
        .to_string();
    assert_eq!(disposition, format!("attachment; filename=\"{key}\""));
    let etag = header(r.headers(), "etag").expect("ETag").to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "quoted ETag {etag}"
    );
    assert_eq!(r.bytes().await.expect("body").to_vec(), bytes);

    let r = get_authed(&url, &tok, &[("Range", "bytes=10-19")]).await;
    assert_eq!(r.status(), 206);
    assert_eq!(
        header(r.headers(), "content-range"),
        Some("bytes 10-19/10000")
    );
    assert_eq!(header(r.headers(), "accept-ranges"), Some("bytes"));
    assert_eq!(r.bytes().await.expect("body").to_vec(), &bytes[10..20]);

    let r = get_authed(&url, &tok, &[("If-None-Match", &etag)]).await;
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.expect("body").is_empty());

    let r = http().get(&url).send().await.expect("GET");
    assert_eq!(r.status(), 401, "the legacy GET needs a token");
    let r = get_authed(&url, &tok, &[("Range", "bytes=10000-")]).await;
    assert_eq!(r.status(), 416);
}

#[tokio::test]
async fn legacy_etag_is_quoted_sha1() {
    let (emu, _dir, bytes, tok, _tip, key) = small().await;
    let url = emu.url(&format!(
        "/oss/v2/buckets/{DM_BUCKET}/objects/{}",
        enc(&key)
    ));
    let r = get_authed(&url, &tok, &[]).await;
    assert_eq!(
        header(r.headers(), "etag"),
        Some(format!("\"{}\"", sha1_hex(&bytes)).as_str())
    );
}

/// An HTTP date well after anything the emulator holds.
const FUTURE: &str = "Fri, 01 Jan 2100 00:00:00 GMT";
/// An HTTP date before anything the emulator holds.
const PAST: &str = "Thu, 01 Jan 1970 00:00:00 GMT";

#[tokio::test]
async fn object_details_if_modified_since() {
    let (emu, _dir, _bytes, tok, _tip, key) = small().await;
    let url = emu.url(&format!(
        "/oss/v2/buckets/{DM_BUCKET}/objects/{}/details",
        enc(&key)
    ));
    let r = get_authed(&url, &tok, &[("If-Modified-Since", FUTURE)]).await;
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.expect("body").is_empty());
    let r = get_authed(&url, &tok, &[("If-Modified-Since", PAST)]).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn signeds3download_conditional_requests() {
    let (emu, _dir, _bytes, tok, _tip, key) = small().await;
    let path = emu.url(&format!(
        "/oss/v2/buckets/{DM_BUCKET}/objects/{}/signeds3download",
        enc(&key)
    ));
    let r = get_authed(&path, &tok, &[("If-Modified-Since", FUTURE)]).await;
    assert_eq!(
        r.status(),
        304,
        "If-Modified-Since after the object's last change"
    );
    assert!(r.bytes().await.expect("body").is_empty());
    let url = signed_url(&emu, &tok, DM_BUCKET, &key).await;
    let (_, headers, _) = fetch(&url, None).await;
    let etag = header(&headers, "etag").expect("ETag").to_string();
    let r = get_authed(&path, &tok, &[("If-None-Match", &etag)]).await;
    assert_eq!(r.status(), 304, "If-None-Match with the object's ETag");
}

#[tokio::test]
async fn legacy_get_if_modified_since() {
    let (emu, _dir, _bytes, tok, _tip, key) = small().await;
    let url = emu.url(&format!(
        "/oss/v2/buckets/{DM_BUCKET}/objects/{}",
        enc(&key)
    ));
    let r = get_authed(&url, &tok, &[("If-Modified-Since", FUTURE)]).await;
    assert_eq!(r.status(), 304);
}

#[tokio::test]
async fn empty_object_downloads_as_empty() {
    let emu = Emulator::start(&["--generate", "items=0,folders=0,awkward"]);
    let tok = emu.token().await;
    let (project, folder) = folder_by_path(&emu, &tok, &["Awkward"]).await;
    let (_, tip) = child(&emu, &tok, &project, &folder, "empty.txt", false).await;
    let tip = tip.expect("tip");
    assert_eq!(tip["attributes"]["storageSize"], 0);
    let (bucket, key) = storage_of(&tip);
    let (s, body) = signeds3download(&emu, &tok, &bucket, &key, "").await;
    assert_eq!(s, 200);
    assert_eq!(body["status"], "complete");
    assert_eq!(body["size"], 0);
    assert_eq!(body["sha1"], sha1_hex(b""));
    let (s, headers, got) = fetch(body["url"].as_str().expect("url"), None).await;
    assert_eq!(s, 200);
    assert!(got.is_empty());
    assert_eq!(header(&headers, "content-length"), Some("0"));
}

#[tokio::test]
async fn etag_is_the_same_sha1_everywhere() {
    let (emu, _dir, bytes, tok, _tip, key) = small().await;
    let want = format!("\"{}\"", sha1_hex(&bytes));
    let url = signed_url(&emu, &tok, DM_BUCKET, &key).await;
    let (s, headers, _) = fetch(&url, Some("bytes=0-9")).await;
    assert_eq!(s, 206);
    assert_eq!(header(&headers, "etag"), Some(want.as_str()), "signed URL");
    let legacy = emu.url(&format!(
        "/oss/v2/buckets/{DM_BUCKET}/objects/{}",
        enc(&key)
    ));
    let r = get_authed(&legacy, &tok, &[("If-None-Match", &format!("W/{want}"))]).await;
    assert_eq!(r.status(), 304, "weak comparison on If-None-Match");
    assert_eq!(
        header(r.headers(), "etag"),
        Some(want.as_str()),
        "legacy GET"
    );
    let (s, body) = signeds3download(&emu, &tok, DM_BUCKET, &key, "").await;
    assert_eq!(s, 200);
    assert_eq!(
        format!("\"{}\"", body["sha1"].as_str().expect("sha1")),
        want
    );
    // If-None-Match decides alone: a stale tag with a future If-Modified-Since is a 200.
    let r = get_authed(
        &legacy,
        &tok,
        &[
            ("If-None-Match", "\"0000\""),
            ("If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
}
