//! Reading a response body within a bound: a server that sends more than any real answer
//! holds (an endless stream, a 100 MiB "JSON" page) is refused after the bound, before it is
//! all in memory, rather than buffered whole.

use super::error::ApiError;
use bytes::{Bytes, BytesMut};

/// The largest JSON document accepted (a listing page of 200 entries is well under 1 MiB, the
/// largest real answers a few MiB). A listing holds at most `MAX_PAGES` of these one at a time.
pub const MAX_JSON_BODY: u64 = 16 << 20;

/// How much of an error answer is read for its message; the rest is left unread.
pub const MAX_ERROR_BODY: u64 = 64 << 10;

/// The whole body of `resp`, refused with [`ApiError::TooLarge`] past `limit` bytes (checked
/// against `Content-Length` first, then as it arrives).
pub async fn read_limited(resp: reqwest::Response, limit: u64) -> Result<Bytes, ApiError> {
    if let Some(len) = resp.content_length().filter(|l| *l > limit) {
        return Err(ApiError::TooLarge {
            limit,
            got: Some(len),
        });
    }
    let mut resp = resp;
    let mut body = BytesMut::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| ApiError::from_transport(&e))?
    {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(ApiError::TooLarge { limit, got: None });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// At most the first `limit` bytes of `resp` (an error answer: enough for its message),
/// whatever the rest; a body that breaks off gives what arrived.
pub async fn read_prefix(resp: reqwest::Response, limit: u64) -> Bytes {
    let mut resp = resp;
    let mut body = BytesMut::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = (limit as usize).saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() as u64 >= limit {
            break;
        }
    }
    body.freeze()
}
