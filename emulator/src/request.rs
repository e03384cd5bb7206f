//! One parsed request as the handlers see it: route, query pairs, headers, body and the grant
//! of its bearer token.

use super::auth::Grant;
use super::router::Route;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use bytes::Bytes;

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
}

impl Req {
    /// The request `parts` and `body` make, matched to `route`, before authentication (no
    /// grant yet); the query is decoded here, once.
    pub fn new(route: Route, parts: Parts, body: Bytes) -> Req {
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

    /// The app the token belongs to ("" when the route needs none).
    pub fn client_id(&self) -> &str {
        self.grant
            .as_ref()
            .map(|g| g.client_id.as_str())
            .unwrap_or("")
    }
}
