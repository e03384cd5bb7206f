//! The knobs of a hostile or broken server, each observed on the wire: redirects and the foreign
//! origin, lying counts and sizes, oversized, endless and trickled bodies, odd tokens and
//! `Retry-After`s, and listing pages a strict parser rejects.

use crate::support::api::header;
use crate::support::dm::{child, contents_path, folder_by_path, get_ok, list_all};
use crate::support::emulator::Emulator;
use crate::support::generated::generated_bytes;
use crate::support::http::{enc, get_authed, http};
use crate::support::oss::{fetch, signed_url, signeds3download, storage_of, DM_BUCKET};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A world with a folder "Flat" of five files and a folder "Large" of one 64 KiB file.
fn world() -> Emulator {
    Emulator::start(&["--generate", "items=0,folders=0,flat=5,large=1x64KiB"])
}

/// A client that shows a `307` instead of following it.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// A GET of `url` by `client`, with a bearer `token` when given.
async fn get(
    client: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    token: Option<&str>,
) -> reqwest::Response {
    let req = client.get(url);
    let req = match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    };
    req.send().await.expect("GET")
}

/// A form POST of `form` to `url` by `client`.
async fn post_form(
    client: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client.post(url).form(form).send().await.expect("POST")
}

/// An app's token request (client credentials, `data:read`) to the emulator.
async fn client_credentials(emu: &Emulator) -> reqwest::Response {
    http()
        .post(emu.url("/authentication/v2/token"))
        .basic_auth("c", Some("s"))
        .form(&[("grant_type", "client_credentials"), ("scope", "data:read")])
        .send()
        .await
        .expect("POST")
}

/// Turns the knobs of `body` on (all others off); they must be accepted.
async fn set(emu: &Emulator, body: Value) {
    let (s, echoed) = emu.put_faults(&body).await;
    assert_eq!(s, 200, "{echoed}");
}

/// The foreign origin's base URL, as the stats report it.
async fn foreign_url(emu: &Emulator) -> String {
    let stats = emu.stats().await;
    let url = stats["foreign"]["url"].as_str().expect("foreign url");
    assert!(
        url.starts_with("http://127.0.0.1:") && url != emu.base,
        "{url}"
    );
    url.to_string()
}

/// The `foreign` counters of the stats.
async fn foreign_stats(emu: &Emulator) -> Value {
    emu.stats().await["foreign"].clone()
}

/// The 64 KiB file of "Large": (its storage key, its true size, its tip version).
async fn large_file(emu: &Emulator, tok: &str) -> (String, u64, Value) {
    let (project, large) = folder_by_path(emu, tok, &["Large"]).await;
    let (_, tip) = child(emu, tok, &project, &large, "large-1.bin", false).await;
    let tip = tip.expect("tip");
    let size = tip["attributes"]["storageSize"].as_u64().expect("size");
    (storage_of(&tip).1, size, tip)
}

#[tokio::test]
async fn redirect_api_foreign_sends_api_requests_to_another_origin() {
    let emu = world();
    let tok = emu.token().await;
    let foreign = foreign_url(&emu).await;
    let (project, flat) = folder_by_path(&emu, &tok, &["Flat"]).await;
    set(&emu, json!({ "redirect": "api_foreign" })).await;
    let path = format!("{}?page%5Blimit%5D=2", contents_path(&project, &flat));
    let signing = format!(
        "/oss/v2/buckets/{DM_BUCKET}/objects/{}/signeds3download",
        enc("some key")
    );
    for p in ["/project/v1/hubs", path.as_str(), signing.as_str()] {
        let r = get(&no_redirects(), emu.url(p), Some(&tok)).await;
        assert_eq!(r.status(), 307, "{p}");
        assert_eq!(
            header(r.headers(), "location"),
            Some(format!("{foreign}{p}").as_str())
        );
    }
    // Neither the token endpoint nor the control routes move.
    assert!(!emu.token().await.is_empty());
    assert_eq!(emu.stats().await["redirects"], 3);
    // A client that follows it with its token in hand shows what the stranger answers.
    assert_eq!(foreign_stats(&emu).await["requests"], 0);
    let r = get_authed(&format!("{foreign}{path}"), &tok, &[]).await;
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.expect("json");
    assert_eq!(page["data"][0]["attributes"]["displayName"], "foreign.txt");
    assert_eq!(page["included"][0]["attributes"]["name"], "foreign.txt");
    let f = foreign_stats(&emu).await;
    assert_eq!(f["requests"], 1, "{f}");
    assert_eq!(f["with_credentials"], 1, "{f}");
    assert_eq!(f["by_route"]["folder_contents"], 1, "{f}");
}

#[tokio::test]
async fn the_foreign_origin_counts_credentials_and_resets_with_the_stats() {
    let emu = world();
    let foreign = foreign_url(&emu).await;
    let token = format!("{foreign}/authentication/v2/token");
    // Nothing secret: counted, not as a credential.
    let r = get(&http(), format!("{foreign}/project/v1/hubs"), None).await;
    assert_eq!(r.status(), 200);
    let r = post_form(
        &http(),
        &token,
        &[("grant_type", "client_credentials"), ("scope", "data:read")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let f = foreign_stats(&emu).await;
    assert_eq!(
        (f["requests"].as_u64(), f["with_credentials"].as_u64()),
        (Some(2), Some(0)),
        "{f}"
    );
    // A bearer token, a Basic pair and a refresh token each count.
    let r = get_authed(&format!("{foreign}/project/v1/hubs"), "secret-token", &[]).await;
    assert_eq!(r.status(), 200);
    let r = http()
        .post(&token)
        .basic_auth("id", Some("secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 200);
    let r = post_form(
        &http(),
        &token,
        &[("grant_type", "refresh_token"), ("refresh_token", "rt")],
    )
    .await;
    let body: Value = r.json().await.expect("token json");
    assert_eq!(
        body,
        json!({"access_token": "foreign-token", "token_type": "Bearer", "expires_in": 3599, "refresh_token": "foreign-refresh"})
    );
    let f = foreign_stats(&emu).await;
    assert_eq!(f["requests"], 5, "{f}");
    assert_eq!(f["with_credentials"], 3, "{f}");
    assert_eq!(f["by_route"]["token"], 3, "{f}");
    assert_eq!(f["by_route"]["hubs"], 2, "{f}");
    emu.reset_stats().await;
    let f = foreign_stats(&emu).await;
    assert_eq!(
        (f["requests"].as_u64(), f["with_credentials"].as_u64()),
        (Some(0), Some(0)),
        "{f}"
    );
    assert_eq!(f["url"], foreign.as_str());
}

#[tokio::test]
async fn redirect_api_same_redirects_once_and_a_following_client_keeps_working() {
    let emu = world();
    let tok = emu.token().await;
    let (project, flat) = folder_by_path(&emu, &tok, &["Flat"]).await;
    set(&emu, json!({ "redirect": "api_same" })).await;
    let path = format!("{}?page%5Blimit%5D=2", contents_path(&project, &flat));
    let r = get(&no_redirects(), emu.url(&path), Some(&tok)).await;
    assert_eq!(r.status(), 307);
    let location = header(r.headers(), "location")
        .expect("location")
        .to_string();
    assert_eq!(location, emu.url(&format!("{path}&redirected=1")));
    let r = get(&no_redirects(), emu.url("/project/v1/hubs"), Some(&tok)).await;
    assert_eq!(
        header(r.headers(), "location"),
        Some(emu.url("/project/v1/hubs?redirected=1").as_str())
    );
    // The marked URL is answered, without the marker in its links.
    let page = get_ok(&emu, &tok, &location).await;
    assert_eq!(page["data"].as_array().map(Vec::len), Some(2));
    assert!(!page["links"].to_string().contains("redirected"), "{page}");
    // A client that follows same-origin redirects (reqwest keeps the token) walks every page.
    emu.reset_stats().await;
    let (data, _, pages) = list_all(&emu, &tok, &path).await;
    assert_eq!((data.len(), pages), (5, 3));
    assert_eq!(emu.stats().await["redirects"], 3);
    assert_eq!(foreign_stats(&emu).await["requests"], 0);
}

#[tokio::test]
async fn redirect_token_foreign_sends_the_token_request_with_its_body_away() {
    let emu = world();
    let foreign = foreign_url(&emu).await;
    set(&emu, json!({ "redirect": "token_foreign" })).await;
    let r = post_form(
        &no_redirects(),
        emu.url("/authentication/v2/token"),
        &[("grant_type", "refresh_token"), ("refresh_token", "rt")],
    )
    .await;
    assert_eq!(r.status(), 307);
    assert_eq!(
        header(r.headers(), "location"),
        Some(format!("{foreign}/authentication/v2/token").as_str())
    );
    // A client following 307 re-sends the body: the refresh token reaches the stranger.
    let r = post_form(
        &http(),
        emu.url("/authentication/v2/token"),
        &[("grant_type", "refresh_token"), ("refresh_token", "rt")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["access_token"], "foreign-token");
    let f = foreign_stats(&emu).await;
    assert_eq!(
        (f["requests"].as_u64(), f["with_credentials"].as_u64()),
        (Some(1), Some(1)),
        "{f}"
    );
    // API requests are not redirected by this mode.
    let r = get(&no_redirects(), emu.url("/project/v1/hubs"), None).await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn redirect_storage_foreign_serves_the_bytes_from_the_foreign_origin() {
    let emu = world();
    let tok = emu.token().await;
    let foreign = foreign_url(&emu).await;
    let (key, size, _) = large_file(&emu, &tok).await;
    set(&emu, json!({ "redirect": "storage_foreign" })).await;
    let url = signed_url(&emu, &tok, DM_BUCKET, &key).await;
    assert!(
        url.starts_with(&emu.base),
        "signing is not redirected: {url}"
    );
    let r = no_redirects()
        .get(&url)
        .header("Range", "bytes=10-19")
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 307);
    let location = header(r.headers(), "location")
        .expect("location")
        .to_string();
    assert_eq!(location, url.replacen(&emu.base, &foreign, 1));
    let (s, h, body) = fetch(&location, Some("bytes=10-19")).await;
    assert_eq!(s, 206);
    assert_eq!(
        header(&h, "content-range"),
        Some(format!("bytes 10-19/{size}").as_str())
    );
    assert_eq!(body, generated_bytes(&key, 10, 10));
    let (s, _, body) = fetch(&location, None).await;
    assert_eq!((s, body.len() as u64), (200, size));
    let f = foreign_stats(&emu).await;
    assert_eq!(f["by_route"]["signed_get"], 2, "{f}");
    assert_eq!(f["with_credentials"], 0, "{f}");
}

#[tokio::test]
async fn object_count_lies_while_pages_stay_truthful() {
    let emu = world();
    let tok = emu.token().await;
    let (project, flat) = folder_by_path(&emu, &tok, &["Flat"]).await;
    set(&emu, json!({ "object_count": 12345 })).await;
    let folder = get_ok(
        &emu,
        &tok,
        &format!("/data/v1/projects/{project}/folders/{}", enc(&flat)),
    )
    .await;
    assert_eq!(folder["data"]["attributes"]["objectCount"], 12345);
    let (project2, top) = folder_by_path(&emu, &tok, &[]).await;
    assert_eq!(project2, project);
    let (entries, _, _) = list_all(&emu, &tok, &contents_path(&project, &top)).await;
    assert!(!entries.is_empty());
    for e in entries.iter().filter(|e| e["type"] == "folders") {
        assert_eq!(e["attributes"]["objectCount"], 12345, "{e}");
    }
    let first = format!("{}?page%5Blimit%5D=2", contents_path(&project, &flat));
    let (data, _, pages) = list_all(&emu, &tok, &first).await;
    assert_eq!((data.len(), pages), (5, 3), "the pages tell the truth");
    assert!(
        emu.stats().await["injected"]["object_count"]
            .as_u64()
            .unwrap_or(0)
            >= 3
    );
}

#[tokio::test]
async fn json_padding_keeps_valid_but_oversized_json() {
    let emu = world();
    let tok = emu.token().await;
    set(&emu, json!({ "json_padding_mib": 1 })).await;
    for path in ["/project/v1/hubs", "/oss/v2/buckets"] {
        let r = get_authed(&emu.url(path), &tok, &[]).await;
        assert_eq!(r.status(), 200, "{path}");
        let length = r.content_length();
        let body = r.bytes().await.expect("body");
        assert!(body.len() > 1 << 20, "{path}: {}", body.len());
        assert_eq!(length, Some(body.len() as u64), "{path}");
        assert!(body.ends_with(b"    "));
        let v: Value = serde_json::from_slice(&body).expect("still JSON");
        assert!(v.is_object(), "{path}");
    }
    // Control routes are left alone.
    let r = http()
        .get(emu.url("/__emulator/stats"))
        .send()
        .await
        .expect("stats");
    assert!(r.bytes().await.expect("body").len() < 1 << 20);
}

#[tokio::test]
async fn endless_json_never_ends_and_the_emulator_survives_the_client_leaving() {
    let emu = world();
    let tok = emu.token().await;
    set(&emu, json!({ "endless_json": true })).await;
    let r = get_authed(&emu.url("/project/v1/hubs"), &tok, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_length(), None);
    let mut stream = r.bytes_stream();
    let mut got = Vec::new();
    let mut total = 0usize;
    while total <= 8 << 20 {
        let chunk = stream
            .next()
            .await
            .expect("the body goes on")
            .expect("chunk");
        total += chunk.len();
        if got.len() < 64 {
            got.extend_from_slice(&chunk);
        }
    }
    assert!(got.starts_with(br#"{"jsonapi":{"version":"1.0"},"data":["#));
    drop(stream);
    // Other requests are answered meanwhile and after; the knob turned off, all is normal.
    set(&emu, json!({})).await;
    let (s, hubs) = emu.get_json(&tok, "/project/v1/hubs").await;
    assert_eq!(s, 200);
    assert!(hubs["data"].as_array().is_some_and(|d| !d.is_empty()));
    assert_eq!(emu.stats().await["injected"]["endless_json"], 1);
}

#[tokio::test]
async fn range_ignored_answers_an_html_page_longer_than_the_object() {
    let emu = world();
    let tok = emu.token().await;
    let (key, size, _) = large_file(&emu, &tok).await;
    let url = signed_url(&emu, &tok, DM_BUCKET, &key).await;
    set(&emu, json!({ "range_ignored": true })).await;
    let (s, h, body) = fetch(&url, Some("bytes=0-99")).await;
    assert_eq!(s, 200);
    assert_eq!(header(&h, "content-range"), None);
    assert_eq!(body.len() as u64, size + 4096);
    assert!(body.starts_with(b"<html>"));
    assert_ne!(&body[..100], generated_bytes(&key, 0, 100).as_slice());
}

#[tokio::test]
async fn listed_size_offset_shifts_listings_but_not_oss() {
    let emu = world();
    let tok = emu.token().await;
    let (key, size, tip) = large_file(&emu, &tok).await;
    let version_href = tip["links"]["self"]["href"]
        .as_str()
        .expect("version link")
        .to_string();
    let (project, large) = folder_by_path(&emu, &tok, &["Large"]).await;
    let (item, _) = child(&emu, &tok, &project, &large, "large-1.bin", false).await;
    let item_href = item["links"]["self"]["href"]
        .as_str()
        .expect("item link")
        .to_string();
    for (offset, listed) in [(1000i64, size + 1000), (-100, size - 100), (-(1 << 40), 0)] {
        set(&emu, json!({ "listed_size_offset": offset })).await;
        let (_, _, tip) = large_file(&emu, &tok).await;
        assert_eq!(tip["attributes"]["storageSize"], listed, "offset {offset}");
        let item = get_ok(&emu, &tok, &item_href).await;
        assert_eq!(item["included"][0]["attributes"]["storageSize"], listed);
        let version = get_ok(&emu, &tok, &version_href).await;
        assert_eq!(version["data"]["attributes"]["storageSize"], listed);
        let (s, signed) = signeds3download(&emu, &tok, DM_BUCKET, &key, "").await;
        assert_eq!(s, 200);
        assert_eq!(signed["size"], size, "OSS keeps the truth");
    }
    let url = signed_url(&emu, &tok, DM_BUCKET, &key).await;
    let (_, _, body) = fetch(&url, None).await;
    assert_eq!(body.len() as u64, size, "the bytes are true");
}

#[tokio::test]
async fn trickle_sends_one_byte_every_n_ms() {
    let emu = world();
    let tok = emu.token().await;
    let (key, _, _) = large_file(&emu, &tok).await;
    let url = signed_url(&emu, &tok, DM_BUCKET, &key).await;
    set(&emu, json!({ "trickle_ms": 40 })).await;
    let t0 = Instant::now();
    let r = http()
        .get(&url)
        .header("Range", "bytes=0-9")
        .send()
        .await
        .expect("GET");
    let head = t0.elapsed();
    assert_eq!(r.status(), 206);
    assert_eq!(r.content_length(), Some(10));
    let body = r.bytes().await.expect("body");
    let all = t0.elapsed();
    assert_eq!(body.to_vec(), generated_bytes(&key, 0, 10));
    assert!(
        head < Duration::from_millis(300),
        "headers at once: {head:?}"
    );
    assert!(
        all >= Duration::from_millis(400),
        "10 bytes at 40 ms each: {all:?}"
    );
    assert!(all < Duration::from_secs(5), "{all:?}");
}

#[tokio::test]
async fn token_expires_in_is_reported_verbatim_even_at_the_extremes() {
    let emu = world();
    for n in [u64::MAX, i64::MAX as u64, 5] {
        set(&emu, json!({ "token_expires_in": n })).await;
        let r = client_credentials(&emu).await;
        assert_eq!(r.status(), 200);
        let text = r.text().await.expect("text");
        assert!(text.contains(&format!("\"expires_in\":{n}")), "{text}");
        let v: Value = serde_json::from_str(&text).expect("json");
        let tok = v["access_token"].as_str().expect("token");
        let (s, _) = emu.get_json(tok, "/project/v1/hubs").await;
        assert_eq!(s, 200, "the token works");
    }
}

#[tokio::test]
async fn retry_after_of_injected_429s_in_seconds_or_as_a_date() {
    let emu = world();
    set(&emu, json!({ "throttle_rate": 1.0, "retry_after_secs": 7 })).await;
    let r = get(&http(), emu.url("/project/v1/hubs"), None).await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(r.headers(), "retry-after"), Some("7"));
    set(
        &emu,
        json!({ "throttle_rate": 1.0, "retry_after_secs": 120, "retry_after_date": true }),
    )
    .await;
    let r = get(&http(), emu.url("/project/v1/hubs"), None).await;
    assert_eq!(r.status(), 429);
    let v = header(r.headers(), "retry-after")
        .expect("retry-after")
        .to_string();
    assert!(v.ends_with(" GMT") && v.len() == 29, "IMF-fixdate: {v}");
    let at = chrono::DateTime::parse_from_rfc2822(&v).expect("an HTTP date");
    let ahead = at.timestamp() - chrono::Utc::now().timestamp();
    assert!((60..=180).contains(&ahead), "{v} is {ahead} s ahead");
}

#[tokio::test]
async fn token_error_rate_one_fails_the_token_endpoint_only() {
    let emu = world();
    let tok = emu.token().await;
    set(&emu, json!({ "token_error_rate": 1.0 })).await;
    for _ in 0..3 {
        let r = client_credentials(&emu).await;
        assert_eq!(r.status(), 503);
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"], "server_error", "{body}");
    }
    let (s, _) = emu.get_json(&tok, "/project/v1/hubs").await;
    assert_eq!(s, 200);
    assert_eq!(emu.stats().await["injected"]["token_error"], 3);
    let (s, _) = emu.put_faults(&json!({ "token_error_rate": 1.5 })).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn bad_entries_break_two_entries_and_leave_the_rest_valid() {
    let emu = world();
    let tok = emu.token().await;
    let (project, flat) = folder_by_path(&emu, &tok, &["Flat"]).await;
    set(&emu, json!({ "bad_entries": true })).await;
    let r = get_authed(&emu.url(&contents_path(&project, &flat)), &tok, &[]).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("text");
    assert!(text.contains("\"bad\\ud800"), "a lone surrogate escape");
    assert!(
        text.contains("\"storageSize\":1e400"),
        "a number out of range"
    );
    assert!(serde_json::from_str::<Value>(&text).is_err());
    let repaired = text.replace("\\ud800", "").replace("1e400", "0");
    let page: Value = serde_json::from_str(&repaired).expect("the rest is valid");
    assert_eq!(page["data"].as_array().map(Vec::len), Some(5));
    assert_eq!(page["included"].as_array().map(Vec::len), Some(5));
    assert!(page["data"][0]["attributes"]["displayName"]
        .as_str()
        .is_some_and(|n| n.starts_with("bad")));
    // A page of one item is left alone.
    let one = format!("{}?page%5Blimit%5D=1", contents_path(&project, &flat));
    let page = get_ok(&emu, &tok, &one).await;
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn bad_next_link_is_malformed_where_a_next_page_exists() {
    let emu = world();
    let tok = emu.token().await;
    let (project, flat) = folder_by_path(&emu, &tok, &["Flat"]).await;
    set(&emu, json!({ "bad_next_link": true })).await;
    let path = contents_path(&project, &flat);
    let first = get_ok(&emu, &tok, &format!("{path}?page%5Blimit%5D=2")).await;
    let next = first["links"]["next"]["href"].as_str().expect("next");
    assert_eq!(next, "http://[::1/data/v1/oops");
    assert!(reqwest::Url::parse(next).is_err());
    assert!(first["links"]["self"]["href"]
        .as_str()
        .is_some_and(|s| s.starts_with(&emu.base)));
    let last = get_ok(
        &emu,
        &tok,
        &format!("{path}?page%5Blimit%5D=2&page%5Bnumber%5D=2"),
    )
    .await;
    assert!(last["links"].get("next").is_none(), "{last}");
}
