//! HTTP for the API client: authenticated JSON GETs (and POSTs), ranged GETs of signed URLs and
//! PUTs of upload parts to them, each through the retry policy, with a refused token refreshed
//! once. The only place that looks at HTTP status codes. API and token requests follow redirects
//! only within their origin; signed storage URLs, which carry no credential, may be redirected
//! anywhere. A POST that creates something is sent again only when it surely did not reach the
//! service ([`Resend`]).

use super::auth::TokenSource;
use super::body::{read_limited, read_prefix, MAX_ERROR_BODY, MAX_JSON_BODY};
use super::buffers::BufferPool;
use super::error::{redact_url, retry_after, status_error, ApiError};
use super::retry::{Failed, RetryPolicy};
use crate::deadline::Feed;
use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_RANGE, CONTENT_TYPE, ETAG, RANGE};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Connection set-up limit: a dead host fails fast.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole-request limit; the largest single request is one ranged read or one listing page.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the next bytes of a response: a connection that stalls (head or body) is
/// given up after this and retried, rather than holding a reader for the whole request limit.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Redirects followed in a row before giving up.
const MAX_REDIRECTS: usize = 10;

/// The slowest upload an upload part's time limit allows for, in bytes per second (1 Mbit/s):
/// a part of tens of MiB takes minutes on a slow uplink, and the whole-request limit alone
/// would cut it.
const MIN_UPLOAD_RATE: u64 = 128 << 10;

/// The `Content-Type` of OSS JSON bodies (the completion of an upload wants exactly this).
pub const JSON: &str = "application/json";
/// The `Content-Type` of Data service bodies (JSON:API).
pub const JSON_API: &str = "application/vnd.api+json";

/// When a request whose attempt failed may be sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resend {
    /// Sending it twice does no more than sending it once (GETs, signing, a part upload):
    /// after any transient failure.
    Always,
    /// It creates something, and a second one would be a duplicate: only after a failure that
    /// shows the service did not act on it — the connection could not be made, or the answer
    /// was 408 (the request never arrived whole), 429 (throttled before it was looked at) or
    /// 503 (the service could not take it). A broken connection or timeout once the request
    /// may have gone out, or another 5xx, may hide a request that was carried out: the error
    /// goes to the caller, who can look before trying again.
    IfUnsent,
}

impl Resend {
    /// The failed attempt, allowed again when the failure is transient and either the request
    /// may be repeated or it surely never reached the service (`unsent`).
    fn failed(self, error: ApiError, unsent: bool) -> Failed {
        let again = error.is_transient() && (self == Resend::Always || unsent);
        Failed { error, again }
    }
}

/// Whether an answer with `status` says the service did not act on the request at all.
fn refused_unread(status: u16) -> bool {
    matches!(status, 408 | 429 | 503)
}

/// A configured HTTP client for one APS base URL.
pub struct Transport {
    http: reqwest::Client,
    /// For signed storage URLs: follows redirects anywhere, and never sends a credential.
    storage: reqwest::Client,
    /// For upload parts: `storage`'s settings without the read timeout (made when first used).
    uploads: OnceLock<reqwest::Client>,
    base: String,
    tokens: TokenSource,
    user_id: Option<String>,
    policy: RetryPolicy,
    budget: super::budget::RequestBudget,
    /// Receive buffers of range reads, used again rather than mapped fresh for every part.
    buffers: Arc<BufferPool>,
    /// Object bytes received, the sign of life operations waiting on them watch.
    feed: Arc<Feed>,
}

/// The client for API and token requests: the timeouts every APS call uses, and redirects
/// followed only to the origin the request was sent to. A request to the API carries a token,
/// one to the token endpoint a secret or a refresh token (in the body, which a 307 re-sends):
/// neither may reach another host, and another host's answer is not the service's.
pub fn http_client() -> Result<reqwest::Client, ApiError> {
    builder()
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let to = attempt.url();
            let same = attempt
                .previous()
                .first()
                .is_some_and(|from| origin(from) == origin(to));
            if !same {
                tracing::warn!(to = %super::error::redact_url(to.as_str()), "refusing a redirect to another origin");
                attempt.error("redirect to another origin")
            } else if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else {
                attempt.follow()
            }
        }))
        .build()
        .map_err(|e| ApiError::Network(format!("cannot build HTTP client: {e}")))
}

/// The client for signed storage URLs: the same timeouts, redirects followed anywhere (a
/// storage URL is a capability of its own; no header or body of ours holds a credential).
pub fn storage_client() -> Result<reqwest::Client, ApiError> {
    builder()
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .build()
        .map_err(|e| ApiError::Network(format!("cannot build HTTP client: {e}")))
}

/// The client for upload parts to signed URLs: as [`storage_client`], but with no read
/// timeout, which runs from the start of a request until the answer's head arrives and so would
/// cut a part that takes longer than that to send. Each part has a time limit for its size.
pub fn upload_client() -> Result<reqwest::Client, ApiError> {
    unhurried()
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .build()
        .map_err(|e| ApiError::Network(format!("cannot build HTTP client: {e}")))
}

fn builder() -> reqwest::ClientBuilder {
    unhurried().read_timeout(READ_TIMEOUT)
}

/// The settings of every client but the read timeout.
fn unhurried() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("apsfs/", env!("CARGO_PKG_VERSION")))
}

/// How long the upload of a part of `len` bytes may take, answer included.
fn upload_time(len: u64) -> Duration {
    REQUEST_TIMEOUT + Duration::from_secs(len / MIN_UPLOAD_RATE)
}

/// Scheme, host (in lower case) and port: what makes two URLs the same origin.
fn origin(u: &reqwest::Url) -> (String, Option<String>, Option<u16>) {
    (
        u.scheme().to_string(),
        u.host_str().map(str::to_ascii_lowercase),
        u.port_or_known_default(),
    )
}

impl Transport {
    /// A transport for `base` (e.g. `https://developer.api.autodesk.com`).
    pub fn new(
        http: reqwest::Client,
        storage: reqwest::Client,
        base: &str,
        tokens: TokenSource,
        user_id: Option<String>,
        policy: RetryPolicy,
        budget: super::budget::RequestBudget,
    ) -> Transport {
        Transport {
            http,
            storage,
            uploads: OnceLock::new(),
            base: base.trim_end_matches('/').to_string(),
            tokens,
            user_id,
            policy,
            budget,
            buffers: Arc::default(),
            feed: Arc::default(),
        }
    }

    /// Where this client reports the object bytes it receives.
    pub fn feed(&self) -> Arc<Feed> {
        self.feed.clone()
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

    /// Fetches a token now (used to check credentials before mounting), through the retry
    /// policy: a token fetched for a request is tried once, the request's own retries
    /// covering it, so retries never nest.
    pub async fn check_credentials(&self) -> Result<(), ApiError> {
        self.policy
            .run("token", || self.tokens.token())
            .await
            .map(|_| ())
    }

    /// Whether `url` is on the API host (scheme, host and port of the base URL). The bearer
    /// token is only ever sent there, whatever a response's links say.
    pub fn same_origin(&self, url: &str) -> bool {
        let of = |u: &str| reqwest::Url::parse(u).ok().map(|u| origin(&u));
        match (of(url), of(&self.base)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    /// GET of an API URL returning a JSON document.
    pub async fn get_json(&self, url: &str) -> Result<Value, ApiError> {
        self.request(Method::GET, url, None, Resend::Always).await
    }

    /// GET of an API URL returning a JSON document read straight into `T` (for documents
    /// big and frequent enough that a generic JSON tree of them costs, like listing pages).
    pub async fn get_doc<T: DeserializeOwned>(&self, url: &str) -> Result<T, ApiError> {
        self.request(Method::GET, url, None, Resend::Always).await
    }

    /// POST of a JSON `body` to an API URL returning a JSON document. Only for requests that
    /// change nothing (batch signing), since a failed attempt is sent again.
    pub async fn post_json(&self, url: &str, body: &Value) -> Result<Value, ApiError> {
        self.request(Method::POST, url, Some((body, JSON)), Resend::Always)
            .await
    }

    /// POST of `body` (as `content_type`) to an API URL that creates something, returning the
    /// JSON document of what was made read into `T`. Sent again only when an attempt surely did
    /// not reach the service ([`Resend::IfUnsent`]): a timeout or a broken connection after the
    /// request went out comes back as an error, the request perhaps carried out.
    pub async fn post_create<T: DeserializeOwned>(
        &self,
        url: &str,
        body: &Value,
        content_type: &str,
    ) -> Result<T, ApiError> {
        self.request(
            Method::POST,
            url,
            Some((body, content_type)),
            Resend::IfUnsent,
        )
        .await
    }

    /// PATCH of `body` (as `content_type`) to an API URL, returning the JSON document of the
    /// resource changed. A PATCH states what the resource should be, so it is sent again after
    /// any transient failure, like a read.
    pub async fn patch_doc<T: DeserializeOwned>(
        &self,
        url: &str,
        body: &Value,
        content_type: &str,
    ) -> Result<T, ApiError> {
        self.request(
            Method::PATCH,
            url,
            Some((body, content_type)),
            Resend::Always,
        )
        .await
    }

    /// A JSON request (a GET, or a POST or PATCH of a body with its content type) through the
    /// retry policy, failed attempts sent again as `resend` allows.
    async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        body: Option<(&Value, &str)>,
        resend: Resend,
    ) -> Result<T, ApiError> {
        if !self.same_origin(url) {
            tracing::warn!(url = %redact_url(url), "refusing to send the token to another host");
            return Err(ApiError::OffHost(redact_url(url)));
        }
        // Serialised once: every attempt sends the same bytes.
        let body = match body {
            Some((b, kind)) => Some((
                Bytes::from(serde_json::to_vec(b).map_err(|e| {
                    ApiError::Decode(format!("cannot serialise a request body: {e}"))
                })?),
                kind,
            )),
            None => None,
        };
        let body = body.as_ref().map(|(b, kind)| (b, *kind));
        self.policy
            .run_attempts("api", || self.json_once(&method, url, body, resend))
            .await
            .map_err(|e| {
                tracing::debug!(url = %redact_url(url), error = %e, "API request failed");
                e
            })
    }

    /// One attempt: a GET, or a POST or PATCH of `body` (bytes and content type); a refused
    /// token is refreshed and the request sent again within the attempt.
    async fn json_once<T: DeserializeOwned>(
        &self,
        method: &Method,
        url: &str,
        body: Option<(&Bytes, &str)>,
        resend: Resend,
    ) -> Result<T, Failed> {
        let mut refreshed = false;
        let path = reqwest::Url::parse(url)
            .map(|u| u.path().to_string())
            .unwrap_or_default();
        loop {
            let kind = self.budget.acquire(method, &path).await;
            crate::stats::request(kind);
            // A token that cannot be had means nothing was sent.
            let token = self.tokens.token().await.map_err(Failed::from)?;
            let req = match body {
                Some((b, kind)) => self
                    .http
                    .request(method.clone(), url)
                    .header(CONTENT_TYPE, kind)
                    .body(b.clone()),
                None => self.http.request(method.clone(), url),
            };
            let mut req = req
                .bearer_auth(&token)
                .header(ACCEPT, "application/vnd.api+json, application/json");
            if let Some(u) = &self.user_id {
                req = req.header("x-user-id", u);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                // Only a connection never made surely carried nothing.
                Err(e) => return Err(resend.failed(ApiError::from_transport(&e), e.is_connect())),
            };
            let status = resp.status().as_u16();
            let retry_after = retry_after(resp.headers());
            if !(200..300).contains(&status) {
                let body = read_prefix(resp, MAX_ERROR_BODY).await;
                // A refused token: the service did nothing, so the request goes again.
                if status == 401 && !refreshed && self.tokens.invalidate(&token).await {
                    tracing::debug!("token refused; fetching a new one");
                    refreshed = true;
                    continue;
                }
                let error = status_error(status, &body, retry_after);
                return Err(resend.failed(error, refused_unread(status)));
            }
            // Done by the service: an answer cut off now is no reason to do it again.
            let body = read_limited(resp, MAX_JSON_BODY)
                .await
                .map_err(|e| resend.failed(e, false))?;
            return serde_json::from_slice(&body).map_err(|e| {
                Failed::from(ApiError::Decode(format!("response body is not JSON: {e}")))
            });
        }
    }

    /// `PUT` of one upload part's `bytes` to its signed storage URL (no token is sent to it),
    /// within a time limit for its size; the part's `ETag`, which the upload's completion
    /// names. Sent again after a transient failure: a part put twice is stored once. A 403 (the
    /// URL expired or was revoked) is returned at once, for the caller to sign a new one.
    pub async fn put_part(&self, url: &str, bytes: Bytes) -> Result<String, ApiError> {
        self.policy
            .run("part upload", || self.put_part_once(url, bytes.clone()))
            .await
    }

    async fn put_part_once(&self, url: &str, bytes: Bytes) -> Result<String, ApiError> {
        let limit = upload_time(bytes.len() as u64);
        crate::stats::request("upload_part");
        let resp = self
            .upload_client()
            .put(url)
            .timeout(limit)
            .body(bytes)
            .send()
            .await
            .map_err(|e| ApiError::from_transport(&e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        // Read to the end either way, so the connection can carry the next part.
        let body = read_prefix(resp, MAX_ERROR_BODY).await;
        if !(200..300).contains(&status) {
            return Err(status_error(status, &body, retry_after(&headers)));
        }
        headers
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
            .ok_or_else(|| {
                ApiError::Decode(format!(
                    "storage answered {status} to a part upload without an ETag"
                ))
            })
    }

    /// The client for upload parts, made the first time a part is sent (a read-only mount never
    /// needs it); `storage` if it cannot be made, whose read timeout then limits a part.
    fn upload_client(&self) -> &reqwest::Client {
        self.uploads.get_or_init(|| {
            upload_client().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "no upload client; parts share the download client's limits");
                self.storage.clone()
            })
        })
    }

    /// `len` bytes from `offset` of a signed storage URL to an object of `size` bytes (no
    /// token is sent to it). A body cut off mid-transfer is resumed from the last byte
    /// received, never handed on short; a body that is not exactly the range asked for (a
    /// 206 of another range or another object's size, a 200 that is not the whole object) is
    /// refused. A 403 is returned at once so the caller can fetch a fresh URL.
    pub async fn get_range(
        &self,
        url: &str,
        size: u64,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, ApiError> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        let received =
            tokio::sync::Mutex::new(self.buffers.take(usize::try_from(len).unwrap_or(0)));
        self.policy
            .run("range read", || {
                self.get_range_once(url, size, offset, len, &received)
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
        size: u64,
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
        crate::stats::request("download");
        let mut resp = self
            .storage
            .get(url)
            .header(RANGE, format!("bytes={start}-{last}"))
            .send()
            .await
            .map_err(|e| ApiError::from_transport(&e))?;
        let status = resp.status().as_u16();
        match status {
            206 => {
                let range = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(content_range);
                let fits = range.is_some_and(|(first, _, total)| {
                    first == start && total.map_or(true, |t| t == size)
                });
                if !fits {
                    return Err(ApiError::Decode(format!(
                        "206 for bytes {start}-{last} of {size} carried Content-Range {:?}",
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
                    self.feed.delivered(chunk.len() as u64);
                    crate::stats::downloaded(chunk.len() as u64);
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
            // A server that ignores Range sends the whole object: our slice of it is kept,
            // once the body has proved to be exactly the object's length (a longer or
            // shorter one is something else, an error page of a proxy, say).
            200 => {
                let not_the_object = |got: u64| {
                    ApiError::Decode(format!(
                        "a 200 answer to a range request was {got} bytes, not the {size}-byte object"
                    ))
                };
                if let Some(announced) = resp.content_length().filter(|l| *l != size) {
                    return Err(not_the_object(announced));
                }
                let mut at = 0u64;
                let kept = buf.len();
                while let Some(chunk) = resp
                    .chunk()
                    .await
                    .map_err(|e| ApiError::from_transport(&e))?
                {
                    let end = at + chunk.len() as u64;
                    self.feed.delivered(chunk.len() as u64);
                    if end > size {
                        buf.truncate(kept);
                        return Err(not_the_object(end));
                    }
                    // The part of this chunk inside start..=last.
                    let lo = start.max(at);
                    let hi = (last + 1).min(end);
                    if lo < hi {
                        buf.extend_from_slice(&chunk[(lo - at) as usize..(hi - at) as usize]);
                    }
                    at = end;
                }
                if at != size {
                    // Cut off: nothing of it is kept, since its length was never proved.
                    buf.truncate(kept);
                    return Err(ApiError::ShortBody {
                        expected: size,
                        got: at,
                    });
                }
                Ok(())
            }
            _ => {
                let headers = resp.headers().clone();
                let body = read_prefix(resp, MAX_ERROR_BODY).await;
                Err(status_error(status, &body, retry_after(&headers)))
            }
        }
    }
}

/// `first`, `last` and the total (`None` for `*`) of a `Content-Range: bytes FIRST-LAST/TOTAL`.
fn content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let (range, total) = v.strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((first.trim().parse().ok()?, last.trim().parse().ok()?, total))
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
            http.clone(),
            "https://developer.api.autodesk.com",
            TokenSource::new(
                super::super::auth::Credentials::Token("t".into()),
                "https://developer.api.autodesk.com",
                http,
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
    fn content_ranges() {
        assert_eq!(content_range("bytes 0-9/10"), Some((0, 9, Some(10))));
        assert_eq!(content_range("bytes 5-9/*"), Some((5, 9, None)));
        assert_eq!(content_range("bytes 5-9"), None);
        assert_eq!(content_range("bytes a-9/10"), None);
        assert_eq!(content_range("items 0-9/10"), None);
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
