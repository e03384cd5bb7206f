//! Checks and requests for tests of the API itself: the JSON:API error shape, links, POSTs,
//! response headers and tokens for other apps.

use crate::support::emulator::Emulator;
use crate::support::http::http;
use crate::support::shapes::is_uuid;
use serde_json::{json, Value};

/// Asserts a JSON:API error document with `status` (as a string) and returns `errors[0]`.
pub fn assert_jsonapi_error(body: &Value, status: u16) -> Value {
    assert_eq!(
        body["jsonapi"]["version"], "1.0",
        "jsonapi member in {body}"
    );
    let e = &body["errors"][0];
    assert_eq!(
        e["status"],
        json!(status.to_string()),
        "errors[0].status is a string: {body}"
    );
    assert!(e["code"].is_string(), "errors[0].code in {body}");
    assert!(e["detail"].is_string(), "errors[0].detail in {body}");
    assert!(
        e["id"].as_str().is_some_and(is_uuid),
        "errors[0].id is a uuid: {body}"
    );
    e.clone()
}

/// `href` of a links/relationship member, e.g. `href(&v["links"]["self"])`.
pub fn href(v: &Value) -> String {
    v["href"]
        .as_str()
        .unwrap_or_else(|| panic!("no href in {v}"))
        .to_string()
}

/// POST a JSON:API body to a Data path: (status, body).
pub async fn post_jsonapi(emu: &Emulator, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = http()
        .post(emu.url(path))
        .bearer_auth(token)
        .header("Content-Type", "application/vnd.api+json")
        .header("Accept", "application/vnd.api+json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    let bytes = r.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A header as text.
pub fn header<'h>(h: &'h reqwest::header::HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// A token for another app (different Basic credentials).
pub async fn token_for(emu: &Emulator, client: &str, secret: &str, scope: &str) -> String {
    let r = http()
        .post(emu.url("/authentication/v2/token"))
        .basic_auth(client, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("token json");
    v["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}
