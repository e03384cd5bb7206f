//! HTTP for the API client: authenticated JSON GETs (and POSTs) and ranged GETs of signed URLs, each
//! through the retry policy, with a refused token refreshed once. The only place that looks at
//! HTTP status codes.

use super::auth::TokenSource;
use super::buffers::BufferPool;
use super::error::{redact_url, retry_after, status_error, ApiError};
use super::retry::RetryPolicy;
use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_RANGE, RANGE};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Connection set-up limit: a dead host fails fast.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole-request limit; the largest single request is one ranged read or one listing page.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the next bytes of a response: a connection that stalls (head or body) is
/// given up after this and retried, rather than holding a reader for the whole request limit.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A configured HTTP client for one APS base URL.
pub struct Transport {
    http: reqwest::Client,
    base: String,
    tokens: TokenSource,
    user_id: Option<String>,
    policy: RetryPolicy,
    budget: super::budget::RequestBudget,
    /// Receive buffers of range reads, used again rather than mapped fresh for every part.
    buffers: Arc<BufferPool>,
}

/// A reqwest client with the timeouts every APS call uses.
pub fn http_client() -> Result<reqwest::Client, ApiError> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .user_agent(concat!("apsfs/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ApiError::Network(format!("cannot build HTTP client: {e}")))
}

impl Transport {
    /// A transport for `base` (e.g. `https://developer.api.autodesk.com`).
    pub fn new(
        http: reqwest::Client,
        base: &str,
        tokens: TokenSource,
        user_id: Option<String>,
        policy: RetryPolicy,
        budget: super::budget::RequestBudget,
    ) -> Transport {
        Transport {
            http,
            base: base.trim_end_matches('/').to_string(),
            tokens,
            user_id,
            policy,
            budget,
            buffers: Arc::default(),
        }
    }

    /// Absolute URL of an API path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Resolves an href from a response: absolute as is, root-relative (or even relative
    /// without a slash, as one published example has) against the base URL.
    pub fn resolve(&self, href: &str) -> String {
        if href.starts_with("http://") || href.starts_with("https://") {
            href.to_string()
        } else if href.starts_with('/') {
            self.url(href)
        } else {
            format!("{}/{href}", self.base)
        }
    }

    /// Fetches a token now (used to check credentials before mounting).
    pub async fn check_credentials(&self) -> Result<(), ApiError> {
        self.tokens.token().await.map(|_| ())
    }

    /// Whether `url` is on the API host (scheme, host and port of the base URL). The bearer
    /// token is only ever sent there, whatever a response's links say.
    pub fn same_origin(&self, url: &str) -> bool {
        let origin = |u: &str| {
            reqwest::Url::parse(u).ok().map(|u| {
                (
                    u.scheme().to_string(),
                    u.host_str().map(str::to_ascii_lowercase),
                    u.port_or_known_default(),
                )
            })
        };
        match (origin(url), origin(&self.base)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    /// GET of an API URL returning a JSON document.
    pub async fn get_json(&self, url: &str) -> Result<Value, ApiError> {
        self.json(url, None).await
    }

    /// GET of an API URL returning a JSON document read straight into `T` (for documents
    /// big and frequent enough that a generic JSON tree of them costs, like listing pages).
    pub async fn get_doc<T: DeserializeOwned>(&self, url: &str) -> Result<T, ApiError> {
        self.json(url, None).await
    }

    /// POST of a JSON `body` to an API URL returning a JSON document. Only for requests that
    /// change nothing (batch signing), since a failed attempt is sent again.
    pub async fn post_json(&self, url: &str, body: &Value) -> Result<Value, ApiError> {
        self.json(url, Some(body)).await
    }

    /// A JSON request (a GET, or a POST of `body`) through the retry policy.
    async fn json<T: DeserializeOwned>(
        &self,
        url: &str,
        body: Option<&Value>,
    ) -> Result<T, ApiError> {
        if !self.same_origin(url) {
            tracing::warn!(url = %redact_url(url), "refusing to send the token to another host");
            return Err(ApiError::OffHost(redact_url(url)));
        }
        self.policy
            .run("api", || self.json_once(url, body))
            .await
            .map_err(|e| {
                tracing::debug!(url = %redact_url(url), error = %e, "API request failed");
                e
            })
    }

    async fn json_once<T: DeserializeOwned>(
        &self,
        url: &str,
        body: Option<&Value>,
    ) -> Result<T, ApiError> {
        let mut refreshed = false;
        let path = reqwest::Url::parse(url)
            .map(|u| u.path().to_string())
            .unwrap_or_default();
        loop {
            self.budget.acquire(&path).await;
            let token = self.tokens.token().await?;
            let req = match body {
                Some(b) => self.http.post(url).json(b),
                None => self.http.get(url),
            };
            let mut req = req
                .bearer_auth(&token)
                .header(ACCEPT, "application/vnd.api+json, application/json");
            if let Some(u) = &self.user_id {
                req = req.header("x-user-id", u);
            }
            let resp = req.send().await.map_err(|e| ApiError::from_transport(&e))?;
            let status = resp.status().as_u16();
            let retry_after = retry_after(resp.headers());
            let body = resp
                .bytes()
                .await
                .map_err(|e| ApiError::from_transport(&e))?;
            if status == 401 && !refreshed && self.tokens.invalidate(&token).await {
                tracing::debug!("token refused; fetching a new one");
                refreshed = true;
                continue;
            }
            if !(200..300).contains(&status) {
                return Err(status_error(status, &body, retry_after));
            }
            return serde_json::from_slice(&body)
                .map_err(|e| ApiError::Decode(format!("response body is not JSON: {e}")));
        }
    }

    /// `len` bytes from `offset` of a signed storage URL (no token is sent to it). A body cut
    /// off mid-transfer is resumed from the last byte received, never handed on short. A 403
    /// is returned at once so the caller can fetch a fresh URL.
    pub async fn get_range(&self, url: &str, offset: u64, len: u64) -> Result<Bytes, ApiError> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        let received =
            tokio::sync::Mutex::new(self.buffers.take(usize::try_from(len).unwrap_or(0)));
        self.policy
            .run("range read", || {
                self.get_range_once(url, offset, len, &received)
            })
            .await?;
        let body = self.buffers.share(received.into_inner());
        exact(body, len)
    }

    /// One attempt: asks for what `received` still lacks and appends what arrives, keeping
    /// it even when the body breaks off.
    async fn get_range_once(
        &self,
        url: &str,
        offset: u64,
        len: u64,
        received: &tokio::sync::Mutex<Vec<u8>>,
    ) -> Result<(), ApiError> {
        let mut buf = received.lock().await;
        let have = buf.len() as u64;
        if have >= len {
            return Ok(());
        }
        if have > 0 {
            tracing::debug!(offset, have, len, "resuming a cut-off body");
        }
        let (start, last) = (offset + have, offset + len - 1);
        let mut resp = self
            .http
            .get(url)
            .header(RANGE, format!("bytes={start}-{last}"))
            .send()
            .await
            .map_err(|e| ApiError::from_transport(&e))?;
        let status = resp.status().as_u16();
        match status {
            206 => {
                let got_start = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse::<u64>().ok());
                if got_start != Some(start) {
                    return Err(ApiError::Decode(format!(
                        "206 for bytes {start}-{last} carried Content-Range {:?}",
                        resp.headers().get(CONTENT_RANGE)
                    )));
                }
                while let Some(chunk) = resp
                    .chunk()
                    .await
                    .map_err(|e| ApiError::from_transport(&e))?
                {
                    if (buf.len() + chunk.len()) as u64 > len {
                        return Err(ApiError::Decode(format!(
                            "ranged body longer than the {len} bytes asked for"
                        )));
                    }
                    buf.extend_from_slice(&chunk);
                }
                if (buf.len() as u64) < len {
                    return Err(ApiError::ShortBody {
                        expected: len,
                        got: buf.len() as u64,
                    });
                }
                Ok(())
            }
            // A server that ignores Range sends the whole object: take our slice of it.
            200 => {
                let body = resp
                    .bytes()
                    .await
                    .map_err(|e| ApiError::from_transport(&e))?;
                let from = usize::try_from(start).unwrap_or(usize::MAX).min(body.len());
                let to = usize::try_from(last + 1)
                    .unwrap_or(usize::MAX)
                    .min(body.len());
                buf.extend_from_slice(&body[from..to]);
                if (buf.len() as u64) < len {
                    return Err(ApiError::ShortBody {
                        expected: len,
                        got: buf.len() as u64,
                    });
                }
                Ok(())
            }
            _ => {
                let headers = resp.headers().clone();
                let body = resp.bytes().await.unwrap_or_default();
                Err(status_error(status, &body, retry_after(&headers)))
            }
        }
    }
}

/// Never hand on a body of the wrong length: a short one is retried, a long one cut.
fn exact(body: Bytes, len: u64) -> Result<Bytes, ApiError> {
    match (body.len() as u64).cmp(&len) {
        std::cmp::Ordering::Less => Err(ApiError::ShortBody {
            expected: len,
            got: body.len() as u64,
        }),
        _ => Ok(body.slice(..len as usize)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_stays_on_the_api_host() {
        let http = reqwest::Client::new();
        let t = Transport::new(
            http.clone(),
            "https://developer.api.autodesk.com",
            TokenSource::new(
                super::super::auth::Credentials::Token("t".into()),
                "https://developer.api.autodesk.com",
                http,
                RetryPolicy::default(),
            ),
            None,
            RetryPolicy::default(),
            super::super::budget::RequestBudget::new(false),
        );
        assert!(t.same_origin("https://developer.api.autodesk.com/data/v1/x?page%5Bnumber%5D=1"));
        assert!(t.same_origin("https://DEVELOPER.api.autodesk.com:443/x"));
        assert!(!t.same_origin("https://evil.example/data/v1/x"));
        assert!(
            !t.same_origin("http://developer.api.autodesk.com/x"),
            "no downgrade"
        );
        assert!(!t.same_origin("https://developer.api.autodesk.com.evil.example/x"));
        assert!(!t.same_origin("not a url"));
        assert_eq!(
            t.resolve("/data/v1/x"),
            "https://developer.api.autodesk.com/data/v1/x"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = rt
            .block_on(t.get_json("https://evil.example/x"))
            .unwrap_err();
        assert!(matches!(e, ApiError::OffHost(_)), "{e}");
    }

    #[test]
    fn exact_lengths() {
        assert!(exact(Bytes::from_static(b"abc"), 4).is_err());
        assert_eq!(
            exact(Bytes::from_static(b"abcd"), 3).unwrap(),
            Bytes::from_static(b"abc")
        );
    }
}
