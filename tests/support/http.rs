//! Plain HTTP to the emulator: the client every helper uses, the authorised GET they build on,
//! and the percent-encoding of path segments.

use std::time::Duration;

/// A plain HTTP client with a timeout, so a hung server fails the test instead of hanging it.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// GET `url` with a bearer token and extra headers; the response, whatever its status. Every
/// authorised GET in the tests goes through here, so they all use the same client settings.
pub async fn get_authed(url: &str, token: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut rb = http().get(url).bearer_auth(token);
    for (name, value) in headers {
        rb = rb.header(*name, *value);
    }
    rb.send().await.expect("GET")
}

/// Percent-encodes one path segment (ids contain `:`, `?`, `=`).
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
