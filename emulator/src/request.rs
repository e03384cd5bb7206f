//! One parsed request as the handlers see it: route, query pairs, headers, body and the grant
//! of its bearer token.

use super::auth::Grant;
use super::router::Route;
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use bytes::Bytes;
use futures_util::StreamExt;

/// A request after routing and authentication.
pub struct Req {
    /// The matched route.
    pub route: Route,
    /// HTTP method.
    pub method: Method,
    /// The path exactly as received (still percent-encoded), for self links.
    pub path: String,
    /// Decoded query pairs in request order (`page[number]` whether sent raw or encoded).
    pub query: Vec<(String, String)>,
    /// Request headers.
    pub headers: HeaderMap,
    /// Request body (empty for GET).
    pub body: Bytes,
    /// The token's grant, for routes that need one.
    pub grant: Option<Grant>,
    /// The emulator's clock (ms) when the request arrived, before its body was read: a part
    /// PUT's URL is checked for expiry against it, as S3 checks a request when it starts.
    pub received_ms: i64,
}

impl Req {
    /// The request `parts` and `body` make, matched to `route`, arrived at `received_ms`,
    /// before authentication (no grant yet); the query is decoded here, once.
    pub fn new(route: Route, parts: Parts, body: Bytes, received_ms: i64) -> Req {
        let query = parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        Req {
            route,
            path: parts.uri.path().to_string(),
            method: parts.method,
            query,
            headers: parts.headers,
            body,
            grant: None,
            received_ms,
        }
    }

    /// First value of a query parameter.
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The user the request acts as: a 3-legged token's user, or with a 2-legged token the
    /// `x-user-id` header (§1: only meaningful there); `None` for an app acting alone.
    pub fn acting_user(&self) -> Option<&str> {
        let grant = self.grant.as_ref()?;
        match &grant.user {
            Some(u) => Some(u.as_str()),
            None => self.header("x-user-id").filter(|u| !u.is_empty()),
        }
    }

    /// The app the token belongs to ("" when the route needs none).
    pub fn client_id(&self) -> &str {
        self.grant
            .as_ref()
            .map(|g| g.client_id.as_str())
            .unwrap_or("")
    }
}

/// Why a request body could not be read.
pub enum BodyError {
    /// Over the limit, declared or found while reading.
    TooLarge,
    /// The connection ended before the body did (fewer bytes than `Content-Length`).
    Incomplete,
}

/// Reads a whole request body of at most `limit` bytes. A body cut short is an error, never
/// the bytes that arrived: a part PUT whose client died half-way must not be stored as if
/// it were complete.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut chunks = Vec::new();
    let mut total = 0usize;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| BodyError::Incomplete)?;
        total += chunk.len();
        if total > limit {
            return Err(BodyError::TooLarge);
        }
        chunks.push(chunk);
    }
    // One chunk (the usual case) is handed on without a copy.
    Ok(match chunks.len() {
        1 => chunks.swap_remove(0),
        _ => chunks.concat().into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    fn body(chunks: Vec<std::io::Result<&'static [u8]>>) -> Body {
        Body::from_stream(stream::iter(
            chunks.into_iter().map(|c| c.map(Bytes::from_static)),
        ))
    }

    #[tokio::test]
    async fn a_body_is_whole_cut_short_or_too_large() {
        let h = HeaderMap::new();
        let whole = read_body(&h, body(vec![Ok(b"ab"), Ok(b"cd")]), 4).await;
        assert!(whole.is_ok_and(|b| b == "abcd"));
        let cut = body(vec![
            Ok(b"ab"),
            Err(std::io::Error::other("connection closed")),
        ]);
        assert!(matches!(
            read_body(&h, cut, 4).await,
            Err(BodyError::Incomplete)
        ));
        let big = read_body(&h, body(vec![Ok(b"abc"), Ok(b"de")]), 4).await;
        assert!(matches!(big, Err(BodyError::TooLarge)));
        let mut declared = HeaderMap::new();
        declared.insert(header::CONTENT_LENGTH, 5.into());
        let early = read_body(&declared, body(vec![]), 4).await;
        assert!(matches!(early, Err(BodyError::TooLarge)));
    }
}
