//! What the emulator tests put in their seed trees, and how they read a seed file's time back.

use std::path::Path;
use std::time::SystemTime;

/// Deterministic pseudo-random bytes for seed files: a misplaced range or a mixed-up file shows
/// as different bytes.
pub fn pseudo_bytes(n: usize, salt: u64) -> Vec<u8> {
    let mut x = salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Whole-second mtime of a path, in ms, to compare with the times the service reports.
pub fn mtime_ms(path: &Path) -> i64 {
    let t = std::fs::metadata(path)
        .expect("metadata")
        .modified()
        .expect("mtime");
    t.duration_since(SystemTime::UNIX_EPOCH)
        .expect("after epoch")
        .as_millis() as i64
}
