//! Error bodies exactly as the three families of the real service spell them: JSON:API
//! `errors[]` for Project/Data, `{"reason"}` for OSS, and the gateway shape for auth and
//! rate limits.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Content type of Project/Data responses.
pub const JSONAPI: &str = "application/vnd.api+json";
/// Content type of OSS responses.
pub const OSS_JSON: &str = "application/json; charset=utf-8";

/// An error response in the shape its service family uses.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// Project/Data service: JSON:API `errors[]`.
    Data {
        /// HTTP status.
        status: StatusCode,
        /// Machine code such as `FOLDER_NOT_FOUND`.
        code: &'static str,
        /// Human text.
        detail: String,
    },
    /// OSS: `{"reason": …}`.
    Oss {
        /// HTTP status.
        status: StatusCode,
        /// Reason text.
        reason: String,
    },
    /// API gateway (auth, quota): `{"developerMessage", "errorCode", …}`.
    Gateway {
        /// HTTP status.
        status: StatusCode,
        /// e.g. `AUTH-006`, `ERR-001`.
        code: &'static str,
        /// Developer message.
        message: &'static str,
        /// Seconds for `Retry-After` (429).
        retry_after: Option<u64>,
    },
    /// OAuth token endpoint: `{"error", "error_description"}`.
    OAuth {
        /// HTTP status.
        status: StatusCode,
        /// OAuth error code.
        error: &'static str,
        /// Description.
        description: String,
    },
    /// Signed storage URLs answer like S3: an XML `<Error>` document.
    S3 {
        /// HTTP status.
        status: StatusCode,
        /// S3 error code (`AccessDenied`, `InvalidRange`, …).
        code: &'static str,
        /// Message.
        message: &'static str,
    },
}

impl ApiError {
    /// A Data/Project error.
    pub fn data(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::Data {
            status,
            code,
            detail: detail.into(),
        }
    }

    /// 400 `BAD_INPUT` for malformed Data/Project requests.
    pub fn bad_input(detail: impl Into<String>) -> ApiError {
        ApiError::data(StatusCode::BAD_REQUEST, "BAD_INPUT", detail)
    }

    /// 403 `ERR_NOT_AUTHORIZED` in the Data error shape: the token is fine, the user's role in
    /// the project (or folder) does not allow the request.
    pub fn not_authorized(detail: impl Into<String>) -> ApiError {
        ApiError::data(StatusCode::FORBIDDEN, "ERR_NOT_AUTHORIZED", detail)
    }

    /// 423 for a write to an item someone else has reserved (locked). The code is ours: the
    /// documentation gives 423 ("locked or being modified") but no code for it.
    pub fn locked(detail: impl Into<String>) -> ApiError {
        ApiError::data(StatusCode::LOCKED, "ITEM_LOCKED", detail)
    }

    /// An OSS error.
    pub fn oss(status: StatusCode, reason: impl Into<String>) -> ApiError {
        ApiError::Oss {
            status,
            reason: reason.into(),
        }
    }

    /// 401 for a missing, unknown or expired token.
    pub fn invalid_token() -> ApiError {
        ApiError::Gateway {
            status: StatusCode::UNAUTHORIZED,
            code: "AUTH-006",
            message: "The access token provided is invalid or has expired.",
            retry_after: None,
        }
    }

    /// 401 for a request without a bearer token.
    pub fn missing_token() -> ApiError {
        ApiError::Gateway {
            status: StatusCode::UNAUTHORIZED,
            code: "AUTH-012",
            message: "Authorization header is missing or invalid.",
            retry_after: None,
        }
    }

    /// 403 for a token lacking the scope the endpoint needs. The OpenAPI boilerplate (and so
    /// the reference's §10.4) files a wrong scope under 401, but Autodesk's own capture of the
    /// wire ("401 Unauthorized / 403 Forbidden", aps.autodesk.com/blog, 2020) shows a token
    /// without `data:write`/`data:create` answered `403 Forbidden` with this message: the
    /// token is valid, the privilege is missing, and a refresh would not help.
    pub fn scope() -> ApiError {
        ApiError::Gateway {
            status: StatusCode::FORBIDDEN,
            code: "AUTH-010",
            message: "Token does not have the privilege for this request.",
            retry_after: None,
        }
    }

    /// 429 with `Retry-After`.
    pub fn quota(retry_after: u64) -> ApiError {
        ApiError::Gateway {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "ERR-001",
            message: "Quota limit exceeded.",
            retry_after: Some(retry_after),
        }
    }

    /// An OAuth error from the token endpoint.
    pub fn oauth(
        status: StatusCode,
        error: &'static str,
        description: impl Into<String>,
    ) -> ApiError {
        ApiError::OAuth {
            status,
            error,
            description: description.into(),
        }
    }

    /// HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Data { status, .. }
            | ApiError::Oss { status, .. }
            | ApiError::Gateway { status, .. }
            | ApiError::OAuth { status, .. }
            | ApiError::S3 { status, .. } => *status,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (ctype, body, retry) = match self {
            ApiError::Data { status, code, detail } => (
                JSONAPI,
                json!({
                    "jsonapi": {"version": "1.0"},
                    "errors": [{
                        "id": super::ids::Uid::random().uuid(),
                        "status": status.as_u16().to_string(),
                        "code": code,
                        "title": status.canonical_reason().unwrap_or("Error"),
                        "detail": detail,
                    }]
                })
                .to_string(),
                None,
            ),
            ApiError::Oss { reason, .. } => (OSS_JSON, json!({ "reason": reason }).to_string(), None),
            ApiError::Gateway {
                code,
                message,
                retry_after,
                ..
            } => {
                let body = if code == "ERR-001" {
                    json!({ "developerMessage": message })
                } else {
                    json!({
                        "developerMessage": message,
                        "userMessage": " ",
                        "errorCode": code,
                        "more info": format!("https://aps.autodesk.com/en/docs/oauth/v2/developers_guide/error_handling/#{code}"),
                    })
                };
                (OSS_JSON, body.to_string(), retry_after)
            }
            ApiError::OAuth {
                error, description, ..
            } => (
                OSS_JSON,
                json!({ "error": error, "error_description": description }).to_string(),
                None,
            ),
            ApiError::S3 { code, message, .. } => (
                "application/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
                ),
                None,
            ),
        };
        let mut resp = (status, body).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
        if let Some(s) = retry {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}
