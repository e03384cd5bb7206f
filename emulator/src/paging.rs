//! JSON:API pagination: 0-based `page[number]`, `page[limit]` 1–200 (default 200), and links
//! rebuilt from the request with brackets percent-encoded, filters carried along, `next` only
//! when more entries exist.

use super::errors::ApiError;
use super::request::Req;
use serde_json::{json, Map, Value};

/// Largest and default page size of the Data and Project services.
pub const MAX_LIMIT: usize = 200;

/// A requested page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// 0-based page number.
    pub number: usize,
    /// Entries per page.
    pub limit: usize,
    limit_given: bool,
}

impl Page {
    /// Reads `page[number]` and `page[limit]`; out-of-range values are a 400 `BAD_INPUT`.
    pub fn from_request(req: &Req) -> Result<Page, ApiError> {
        let number = match req.q("page[number]") {
            Some(s) => s.parse::<usize>().map_err(|_| {
                ApiError::bad_input(format!(
                    "page[number] must be a non-negative integer, got {s:?}"
                ))
            })?,
            None => 0,
        };
        let (limit, limit_given) = match req.q("page[limit]") {
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => (n, true),
                _ => {
                    return Err(ApiError::bad_input(format!(
                        "page[limit] must be between 1 and {MAX_LIMIT}, got {s:?}"
                    )))
                }
            },
            None => (MAX_LIMIT, false),
        };
        Ok(Page {
            number,
            limit,
            limit_given,
        })
    }

    /// The slice of `0..len` this page covers, and whether entries remain after it.
    pub fn window(&self, len: usize) -> (std::ops::Range<usize>, bool) {
        let start = self.number.saturating_mul(self.limit).min(len);
        let end = start.saturating_add(self.limit).min(len);
        (start..end, end < len)
    }

    /// `links` with `self`, and `first`/`prev`/`next` when the listing spans pages.
    pub fn links(&self, base: &str, req: &Req, has_next: bool) -> Value {
        let href = |n: usize| json!({ "href": self.href(base, req, n) });
        let mut links = Map::new();
        links.insert(
            "self".into(),
            json!({ "href": self.href(base, req, self.number) }),
        );
        if self.number > 0 || has_next {
            links.insert("first".into(), href(0));
            if self.number > 0 {
                links.insert("prev".into(), href(self.number - 1));
            }
            if has_next {
                links.insert("next".into(), href(self.number + 1));
            }
        }
        Value::Object(links)
    }

    fn href(&self, base: &str, req: &Req, number: usize) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("page[number]", &number.to_string());
        if self.limit_given {
            q.append_pair("page[limit]", &self.limit.to_string());
        }
        for (k, v) in &req.query {
            if k != "page[number]" && k != "page[limit]" {
                q.append_pair(k, v);
            }
        }
        format!("{base}{}?{}", req.path, q.finish())
    }
}

/// A self link for unpaginated documents: the request URL itself.
pub fn self_href(base: &str, req: &Req) -> String {
    if req.query.is_empty() {
        format!("{base}{}", req.path)
    } else {
        let q = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&req.query)
            .finish();
        format!("{base}{}?{q}", req.path)
    }
}
