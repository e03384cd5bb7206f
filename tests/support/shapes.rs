//! What ids, URNs and timestamps of the Data Management API look like, for tests that check the
//! service's answers field by field.

/// `s` is lower-case 8-4-4-4-12 hex.
pub fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// `b.<uuid>`, the BIM 360 / ACC account and project id shape.
pub fn is_b_id(s: &str) -> bool {
    s.strip_prefix("b.").is_some_and(is_uuid)
}

/// A 22-character URL-safe id token.
pub fn is_token22(s: &str) -> bool {
    s.len() == 22
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `urn:adsk.wipprod:fs.folder:co.<22>`.
pub fn is_folder_urn(s: &str) -> bool {
    s.strip_prefix("urn:adsk.wipprod:fs.folder:co.")
        .is_some_and(is_token22)
}

/// `urn:adsk.wipprod:dm.lineage:<22>`.
pub fn is_item_urn(s: &str) -> bool {
    s.strip_prefix("urn:adsk.wipprod:dm.lineage:")
        .is_some_and(is_token22)
}

/// `urn:adsk.wipprod:fs.file:vf.<22>?version=N`; returns N.
pub fn version_number_of(s: &str) -> Option<u32> {
    let rest = s.strip_prefix("urn:adsk.wipprod:fs.file:vf.")?;
    let (tok, n) = rest.split_once("?version=")?;
    if !is_token22(tok) {
        return None;
    }
    n.parse().ok()
}

/// Milliseconds since the epoch of an RFC 3339 / ISO 8601 timestamp (panics when unparseable).
pub fn rfc3339_ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("timestamp {s:?} is not RFC 3339: {e}"))
        .timestamp_millis()
}
