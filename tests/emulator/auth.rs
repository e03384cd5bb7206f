//! Authentication v2 over real HTTP: client credentials (Basic or body, never both), fixed
//! credentials, token lifetime and expiry, gateway 401 bodies, scopes, authorization code with
//! PKCE and refresh-token rotation (aps-api.md §9, §10.3).

use crate::support::api::header;
use crate::support::dm::{contents_path, first_project, folder_by_path};
use crate::support::emulator::Emulator;
use crate::support::http::http;
use crate::support::oss::DM_BUCKET;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// POST /authentication/v2/token with form fields and optional Basic credentials.
async fn token_request(
    emu: &Emulator,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut rb = http().post(emu.url("/authentication/v2/token")).form(form);
    if let Some((id, secret)) = basic {
        rb = rb.basic_auth(id, Some(secret));
    }
    let r = rb.send().await.expect("token request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn assert_token_body(v: &Value, ttl: u64, refresh: bool) {
    assert!(
        v["access_token"].as_str().is_some_and(|t| !t.is_empty()),
        "{v}"
    );
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], ttl);
    assert_eq!(
        v.get("refresh_token").is_some(),
        refresh,
        "refresh_token presence in {v}"
    );
}

/// A gateway-style error body (§10.3) with `errorCode`.
fn assert_gateway(body: &Value, code: &str) {
    assert!(body["developerMessage"].is_string(), "{body}");
    assert_eq!(body["errorCode"], code, "{body}");
    assert!(body.get("more info").is_some(), "{body}");
}

async fn hubs_status(emu: &Emulator, token: &str) -> (u16, Value) {
    emu.get_json(token, "/project/v1/hubs").await
}

#[tokio::test]
async fn client_credentials_basic_or_body_but_not_both() {
    let emu = Emulator::start(&[]);
    let (s, v) = token_request(
        &emu,
        Some(("app", "secret")),
        &[("grant_type", "client_credentials"), ("scope", "data:read")],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_token_body(&v, 3599, false);
    let tok = v["access_token"].as_str().expect("token");
    assert_eq!(hubs_status(&emu, tok).await.0, 200);

    let (s, v) = token_request(
        &emu,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", "secret"),
            ("scope", "data:read data:write"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_token_body(&v, 3599, false);

    let (s, v) = token_request(
        &emu,
        Some(("app", "secret")),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", "secret"),
            ("scope", "data:read"),
        ],
    )
    .await;
    assert_eq!(s, 400, "credentials in both places: {v}");
    assert!(v["error"].is_string(), "{v}");

    let (s, _) = token_request(
        &emu,
        Some(("app", "secret")),
        &[("grant_type", "bogus"), ("scope", "data:read")],
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = token_request(
        &emu,
        None,
        &[("grant_type", "client_credentials"), ("scope", "data:read")],
    )
    .await;
    assert!(s == 400 || s == 401, "no client credentials: {s}");
    // The token endpoint takes a form body only.
    let r = http()
        .post(emu.url("/authentication/v2/token"))
        .basic_auth("app", Some("secret"))
        .header("Content-Type", "application/json")
        .body(r#"{"grant_type":"client_credentials","scope":"data:read"}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn fixed_client_credentials() {
    let emu = Emulator::start(&["--client-id", "X", "--client-secret", "Y"]);
    let form = [("grant_type", "client_credentials"), ("scope", "data:read")];
    let (s, v) = token_request(&emu, Some(("X", "Y")), &form).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = token_request(&emu, Some(("X", "wrong")), &form).await;
    assert_eq!(s, 401, "wrong secret: {v}");
    let (s, _) = token_request(&emu, Some(("other", "Y")), &form).await;
    assert_eq!(s, 401, "wrong id");
    let (s, _) = token_request(
        &emu,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "X"),
            ("client_secret", "nope"),
            ("scope", "data:read"),
        ],
    )
    .await;
    assert_eq!(s, 401, "wrong secret in the body");
}

#[tokio::test]
async fn token_ttl_and_expiry() {
    let emu = Emulator::start(&["--token-ttl", "120"]);
    let (s, v) = token_request(
        &emu,
        Some(("app", "secret")),
        &[("grant_type", "client_credentials"), ("scope", "data:read")],
    )
    .await;
    assert_eq!(s, 200);
    assert_token_body(&v, 120, false);
    let tok = v["access_token"].as_str().expect("token").to_string();
    assert_eq!(hubs_status(&emu, &tok).await.0, 200);
    emu.advance_clock(60).await;
    assert_eq!(hubs_status(&emu, &tok).await.0, 200, "still valid half-way");
    emu.advance_clock(61).await;
    let (s, body) = hubs_status(&emu, &tok).await;
    assert_eq!(s, 401, "expired token: {body}");
    assert_gateway(&body, "AUTH-006");
    // OSS routes reject it the same way.
    let (s, _) = emu.get_json(&tok, "/oss/v2/buckets").await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn missing_or_bad_token_gets_gateway_401() {
    let emu = Emulator::start(&[]);
    let r = http()
        .get(emu.url("/project/v1/hubs"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.expect("json body");
    assert!(body["developerMessage"].is_string(), "{body}");
    assert!(
        body["errorCode"]
            .as_str()
            .is_some_and(|c| c.starts_with("AUTH-")),
        "{body}"
    );
    assert!(
        body.get("more info").is_some() && body.get("userMessage").is_some(),
        "{body}"
    );

    let (s, body) = emu.get_json("not-a-token", "/project/v1/hubs").await;
    assert_eq!(s, 401);
    assert_gateway(&body, "AUTH-006");
    let r = http()
        .get(emu.url("/project/v1/hubs"))
        .header("Authorization", "Basic YTpi")
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 401);
    for path in [
        "/oss/v2/buckets",
        "/data/v1/projects/b.x/folders/urn:x/contents",
    ] {
        let r = http().get(emu.url(path)).send().await.expect("GET");
        assert_eq!(r.status(), 401, "{path}");
    }
}

#[tokio::test]
async fn token_without_the_scope_gets_auth_010() {
    let emu = Emulator::start(&[]);
    let bucket_only = emu.token_with("bucket:read").await;
    let (s, body) = hubs_status(&emu, &bucket_only).await;
    assert_eq!(s, 403, "a valid token without the privilege: {body}");
    assert_gateway(&body, "AUTH-010");
    let (hub, project) = first_project(&emu, &emu.token().await).await;
    let (s, body) = emu
        .get_json(
            &bucket_only,
            &format!("/project/v1/hubs/{hub}/projects/{project}/topFolders"),
        )
        .await;
    assert_eq!(s, 403);
    assert_gateway(&body, "AUTH-010");
    // The scope it has works.
    let (s, _) = emu.get_json(&bucket_only, "/oss/v2/buckets").await;
    assert_eq!(s, 200);
    // data:read cannot create buckets.
    let read_only = emu.token_with("data:read").await;
    let r = http()
        .post(emu.url("/oss/v2/buckets"))
        .bearer_auth(&read_only)
        .json(&serde_json::json!({"bucketKey": "scope-test-bucket", "policyKey": "transient"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 403);
    let (s, _) = hubs_status(&emu, &read_only).await;
    assert_eq!(s, 200);
}

/// Runs the authorize redirect and returns the code; checks the Location shape.
async fn authorize(emu: &Emulator, client: &str, challenge: Option<&str>, state: &str) -> String {
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut q: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", REDIRECT),
        ("scope", "data:read data:write openid"),
        ("state", state),
    ];
    if let Some(c) = challenge {
        q.push(("code_challenge", c));
        q.push(("code_challenge_method", "S256"));
    }
    let r = no_redirect
        .get(emu.url("/authentication/v2/authorize"))
        .query(&q)
        .send()
        .await
        .expect("authorize");
    assert_eq!(r.status(), 302);
    let loc = header(r.headers(), "location")
        .expect("Location")
        .to_string();
    let query = loc
        .strip_prefix(&format!("{REDIRECT}?"))
        .unwrap_or_else(|| panic!("redirects to redirect_uri: {loc}"));
    let pairs: Vec<(String, String)> = form_pairs(query);
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("state").as_deref(), Some(state), "state echoed: {loc}");
    get("code").unwrap_or_else(|| panic!("code in {loc}"))
}

fn form_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[tokio::test]
async fn authorization_code_with_pkce() {
    let emu = Emulator::start(&[]);
    let verifier = "pkce-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
    let challenge = challenge_of(verifier);

    // Wrong verifier → 400.
    let code = authorize(&emu, "public-app", Some(&challenge), "st.1").await;
    let (s, v) = token_request(
        &emu,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "public-app"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            (
                "code_verifier",
                "a-completely-different-verifier-of-enough-length-0000",
            ),
        ],
    )
    .await;
    assert_eq!(s, 400, "wrong code_verifier: {v}");
    assert!(v["error"].is_string());

    // Right verifier → tokens.
    let code = authorize(&emu, "public-app", Some(&challenge), "xyz_-,.9").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "public-app"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ];
    let (s, v) = token_request(&emu, None, &form).await;
    assert_eq!(s, 200, "{v}");
    assert_token_body(&v, 3599, true);
    assert!(v["id_token"].is_string(), "openid scope adds an id_token");
    let tok = v["access_token"].as_str().expect("token");
    assert_eq!(
        hubs_status(&emu, tok).await.0,
        200,
        "3-legged token works on data routes"
    );
    let (s, _) = token_request(&emu, None, &form).await;
    assert_eq!(s, 400, "codes are single use");

    // Mismatched redirect_uri → 400.
    let code = authorize(&emu, "public-app", Some(&challenge), "s").await;
    let (s, _) = token_request(
        &emu,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "public-app"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/other"),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_eq!(s, 400);

    // A confidential client exchanges without PKCE, with Basic credentials.
    let code = authorize(&emu, "web-app", None, "s2").await;
    let (s, v) = token_request(
        &emu,
        Some(("web-app", "web-secret")),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_token_body(&v, 3599, true);
}

async fn refresh(emu: &Emulator, client: &str, rt: &str) -> (u16, Value) {
    token_request(
        emu,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client),
            ("refresh_token", rt),
        ],
    )
    .await
}

async fn pkce_tokens(emu: &Emulator) -> Value {
    let verifier = "v".repeat(64);
    let code = authorize(emu, "public-app", Some(&challenge_of(&verifier)), "s").await;
    let (s, v) = token_request(
        emu,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "public-app"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v
}

#[tokio::test]
async fn refresh_token_rotation() {
    let emu = Emulator::start(&[]);
    let first = pkce_tokens(&emu).await;
    let rt1 = first["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_string();
    let (s, second) = refresh(&emu, "public-app", &rt1).await;
    assert_eq!(s, 200, "{second}");
    assert_token_body(&second, 3599, true);
    assert!(
        second.get("id_token").is_none(),
        "a refresh answers no id_token"
    );
    let rt2 = second["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_string();
    assert_ne!(rt1, rt2, "every refresh returns a new refresh token");
    assert_ne!(first["access_token"], second["access_token"]);
    assert_eq!(
        hubs_status(&emu, second["access_token"].as_str().expect("token"))
            .await
            .0,
        200
    );
    // Default (tolerant): the rotated-out token still works; another client cannot use it.
    let (s, _) = refresh(&emu, "public-app", &rt2).await;
    assert_eq!(s, 200);
    let (s, _) = refresh(&emu, "someone-else", &rt1).await;
    assert_eq!(s, 400);
    let (s, _) = refresh(&emu, "public-app", "no-such-refresh-token").await;
    assert_eq!(s, 400);
    // Scope may narrow but not widen.
    let (s, v) = token_request(
        &emu,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "public-app"),
            ("refresh_token", &rt1),
            ("scope", "bucket:delete"),
        ],
    )
    .await;
    assert_eq!(s, 400, "{v}");
}

#[tokio::test]
async fn single_use_refresh_rejects_the_old_token() {
    let emu = Emulator::start(&["--single-use-refresh"]);
    let first = pkce_tokens(&emu).await;
    let rt1 = first["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_string();
    let (s, second) = refresh(&emu, "public-app", &rt1).await;
    assert_eq!(s, 200);
    let rt2 = second["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_string();
    assert_ne!(rt1, rt2);
    let (s, v) = refresh(&emu, "public-app", &rt1).await;
    assert_eq!(s, 400, "old refresh token rejected: {v}");
    assert_eq!(v["error"], "invalid_grant");
    let (s, _) = refresh(&emu, "public-app", &rt2).await;
    assert_eq!(s, 200, "the newest one works");
}

#[tokio::test]
async fn basic_header_is_standard_base64() {
    // Hand-built header, to pin the wire spelling rather than reqwest's.
    let emu = Emulator::start(&["--client-id", "my-app", "--client-secret", "s3cr3t"]);
    let r = http()
        .post(emu.url("/authentication/v2/token"))
        .header(
            "Authorization",
            format!("Basic {}", STANDARD.encode("my-app:s3cr3t")),
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=data%3Aread%20bucket%3Aread")
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_token_body(&v, 3599, false);
}

#[tokio::test]
async fn authorization_codes_expire_after_five_minutes() {
    let emu = Emulator::start(&[]);
    let verifier = "w".repeat(60);
    let code = authorize(&emu, "public-app", Some(&challenge_of(&verifier)), "s").await;
    emu.advance_clock(301).await;
    let (s, v) = token_request(
        &emu,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "public-app"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"], "invalid_grant");
}

#[tokio::test]
async fn revoke_and_introspect() {
    let emu = Emulator::start(&[]);
    let tokens = pkce_tokens(&emu).await;
    let access = tokens["access_token"].as_str().expect("access").to_string();
    let rt = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    let introspect = |t: String| {
        let emu = &emu;
        async move {
            let r = http()
                .post(emu.url("/authentication/v2/introspect"))
                .basic_auth("public-app", Some("x"))
                .form(&[("token", t.as_str())])
                .send()
                .await
                .expect("introspect");
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.expect("json")
        }
    };
    let v = introspect(access.clone()).await;
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["client_id"], "public-app");
    assert!(
        v["scope"].as_str().is_some_and(|s| s.contains("data:read")),
        "{v}"
    );
    assert!(v["exp"].is_i64());
    assert!(v.get("userid").is_some());

    for t in [&access, &rt] {
        let r = http()
            .post(emu.url("/authentication/v2/revoke"))
            .basic_auth("public-app", Some("x"))
            .form(&[("token", t.as_str())])
            .send()
            .await
            .expect("revoke");
        assert_eq!(r.status(), 200);
    }
    assert_eq!(introspect(access.clone()).await["active"], false);
    assert_eq!(
        hubs_status(&emu, &access).await.0,
        401,
        "revoked access token"
    );
    let (s, _) = refresh(&emu, "public-app", &rt).await;
    assert_eq!(s, 400, "revoked refresh token");
}

#[tokio::test]
async fn client_credentials_requires_scope() {
    let emu = Emulator::start(&[]);
    let (s, v) = token_request(
        &emu,
        Some(("app", "secret")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(s, 400, "{v}");
}

#[tokio::test]
async fn create_only_token_cannot_read() {
    let emu = Emulator::start(&["--generate", "items=1,folders=0"]);
    let full = emu.token().await;
    let (hub, project) = first_project(&emu, &full).await;
    let (_, folder) = folder_by_path(&emu, &full, &[]).await;
    let create_only = emu.token_with("data:create").await;
    for path in [
        "/project/v1/hubs".to_string(),
        format!("/project/v1/hubs/{hub}/projects/{project}/topFolders"),
        contents_path(&project, &folder),
        format!("/oss/v2/buckets/{DM_BUCKET}/objects/x/details"),
    ] {
        let (s, body) = emu.get_json(&create_only, &path).await;
        assert_eq!(s, 403, "{path}: {body}");
        assert_gateway(&body, "AUTH-010");
    }
    // data:write implies data:read.
    let write_only = emu.token_with("data:write").await;
    assert_eq!(hubs_status(&emu, &write_only).await.0, 200);
}
