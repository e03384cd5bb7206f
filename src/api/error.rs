//! Everything that can go wrong talking to APS, and how an HTTP answer becomes one of them.

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;
use std::time::Duration;

/// A failed API or storage request, classified by what the caller should do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// 404: the resource does not exist (or is hidden from this account).
    #[error("not found: {0}")]
    NotFound(String),
    /// 403: the account may not see it.
    #[error("access denied: {0}")]
    Forbidden(String),
    /// 401 after a token refresh, or credentials refused by the token endpoint.
    #[error("authentication failed: {0}")]
    Unauthorized(String),
    /// 429 that outlasted the retries.
    #[error("rate limited by the service (retry after {retry_after:?})")]
    Throttled {
        /// What the last `Retry-After` asked for.
        retry_after: Option<Duration>,
    },
    /// 5xx that outlasted the retries.
    #[error("service error {status}: {detail}")]
    Server {
        /// HTTP status.
        status: u16,
        /// What the body said.
        detail: String,
    },
    /// Another 4xx: the request itself was refused.
    #[error("request refused with {status}: {detail}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// What the body said.
        detail: String,
    },
    /// A link in a document that leads off the API host: never followed, since the request
    /// would carry the token there.
    #[error("refusing to send the token to {0}, which is not the API host")]
    OffHost(String),
    /// A redirect of an API or token request to another origin: never followed, since the
    /// request carries a token, a secret or a refresh token, and the answer would not be the
    /// service's.
    #[error("refusing to follow a redirect to {0}, which is not the API host")]
    Redirected(String),
    /// A body larger than any real answer (an endless or padded body): refused before it was
    /// all in memory.
    #[error("response body larger than {limit} bytes{}; refused", got.map(|g| format!(" ({g} announced)")).unwrap_or_default())]
    TooLarge {
        /// The bound.
        limit: u64,
        /// The announced length, when there was one.
        got: Option<u64>,
    },
    /// The listing and storage disagree on a file's size: serving either length could hand
    /// out a cut or padded file, so the read fails instead.
    #[error("the listing says {listed} bytes but storage holds {stored}; not serving a possibly cut file")]
    SizeMismatch {
        /// The size the listing gave.
        listed: u64,
        /// The size storage gave when the download was signed.
        stored: u64,
    },
    /// Connection refused, reset or broken mid-body.
    #[error("network error: {0}")]
    Network(String),
    /// No answer in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A body that is not what the reference says it is.
    #[error("unexpected response: {0}")]
    Decode(String),
    /// A byte body of the wrong length (never handed on as file data).
    #[error("short body: expected {expected} bytes, got {got}")]
    ShortBody {
        /// Bytes asked for.
        expected: u64,
        /// Bytes received.
        got: u64,
    },
}

impl ApiError {
    /// Whether the same request may succeed if tried again.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ApiError::Throttled { .. }
                | ApiError::Server { .. }
                | ApiError::Network(_)
                | ApiError::Timeout(_)
                | ApiError::ShortBody { .. }
        )
    }

    /// Classifies a reqwest transport error.
    pub fn from_transport(e: &reqwest::Error) -> ApiError {
        let text = without_url(e);
        // A body cut off mid-transfer surfaces as a body or "decode" error: it is the
        // connection that failed, so it is retried like one. Bodies are parsed elsewhere.
        if e.is_redirect() {
            ApiError::Redirected(e.url().map(|u| redact_url(u.as_str())).unwrap_or(text))
        } else if e.is_timeout() {
            ApiError::Timeout(text)
        } else {
            ApiError::Network(text)
        }
    }
}

/// reqwest errors carry the URL, and signed URLs carry their signature: keep both out of logs.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), &redact_url(u.as_str()));
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// A URL with its query string removed (signatures and tokens live there).
pub fn redact_url(url: &str) -> String {
    match url.split_once('?') {
        Some((path, _)) => format!("{path}?…"),
        None => url.to_string(),
    }
}

/// `Retry-After`, when present: seconds, or an HTTP date (a date past is no wait at all).
pub fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Classifies a non-2xx answer.
pub fn status_error(status: u16, body: &[u8], retry_after: Option<Duration>) -> ApiError {
    if status == 429 {
        crate::stats::throttled();
    }
    let detail = error_detail(body);
    match status {
        401 => ApiError::Unauthorized(detail),
        403 => ApiError::Forbidden(detail),
        404 | 410 => ApiError::NotFound(detail),
        408 => ApiError::Timeout(detail),
        429 => ApiError::Throttled { retry_after },
        500..=599 => ApiError::Server { status, detail },
        _ => ApiError::Refused { status, detail },
    }
}

/// The human part of any of the service's error shapes (JSON:API, OSS, gateway, OAuth, S3).
pub fn error_detail(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(v) => [
            v.pointer("/errors/0/detail"),
            v.pointer("/errors/0/title"),
            v.get("reason"),
            v.get("developerMessage"),
            v.get("error_description"),
            v.get("error"),
        ]
        .into_iter()
        .flatten()
        .find_map(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| v.to_string()),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transience_and_redaction() {
        assert!(ApiError::Network("x".into()).is_transient());
        assert!(!ApiError::NotFound("x".into()).is_transient());
        assert_eq!(redact_url("http://h/p?Signature=s"), "http://h/p?…");
    }

    #[test]
    fn classifies_statuses_and_bodies() {
        let e = status_error(404, br#"{"jsonapi":{"version":"1.0"},"errors":[{"status":"404","code":"FOLDER_NOT_FOUND","detail":"ApiError Folder not found"}]}"#, None);
        assert!(matches!(e, ApiError::NotFound(ref d) if d == "ApiError Folder not found"));
        assert!(
            matches!(status_error(403, br#"{"reason":"nope"}"#, None), ApiError::Forbidden(ref d) if d == "nope")
        );
        assert!(matches!(
            status_error(429, br#"{"developerMessage":"Quota limit exceeded."}"#, Some(Duration::from_secs(3))),
            ApiError::Throttled { retry_after: Some(d) } if d == Duration::from_secs(3)
        ));
        assert!(matches!(
            status_error(503, b"<html>", None),
            ApiError::Server { status: 503, .. }
        ));
        assert!(matches!(
            status_error(409, b"", None),
            ApiError::Refused { status: 409, .. }
        ));
        // A reserved (locked) item: the caller decides when to try again, not the retry policy.
        let locked = status_error(423, b"", None);
        assert!(matches!(locked, ApiError::Refused { status: 423, .. }));
        assert!(!locked.is_transient());
        assert_eq!(error_detail(&b"x".repeat(500)).chars().count(), 201);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let header = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, v.parse().unwrap());
            retry_after(&h)
        };
        assert_eq!(header("7"), Some(Duration::from_secs(7)));
        let soon = std::time::SystemTime::now() + Duration::from_secs(120);
        let d = header(&httpdate::fmt_http_date(soon)).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        assert_eq!(
            header("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(header("soon"), None);
        assert_eq!(header("99999999999999999999999"), None);
    }
}
