//! The one place the tests use the emulator's test-support surface rather than its HTTP
//! surface: the bytes it generates for an object.

use aps_emulator::testing::{generated_fill, seed_for_key};

/// The `len` bytes at `offset` of the generated object stored under `key`, computed as the
/// emulator computes them, so a test can check what it read without a reference copy (the
/// generated objects go up to several GiB).
pub fn generated_bytes(key: &str, offset: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    generated_fill(seed_for_key(key), offset, &mut v);
    v
}
