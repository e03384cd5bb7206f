//! The content hash the service reports for objects.

use sha1::{Digest, Sha1};

/// Lower-case hex SHA-1, as OSS reports it (`sha1`, `user.aps.sha1`).
pub fn sha1_hex(b: &[u8]) -> String {
    Sha1::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}
