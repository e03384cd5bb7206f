//! What an integration test may know without asking the server: the bytes a generated object
//! holds. Generated objects are never stored, so a test that read a range (possibly gigabytes,
//! through a mount) checks it against these instead of a copy.

/// The seed of a generated object's bytes, from its object key alone, so a test holding only a
/// storage URN (`…/<bucket>/<key>`) can recompute what it read.
pub fn seed_for_key(object_key: &str) -> u64 {
    crate::content::seed_for_key(object_key)
}

/// Fills `buf` with the bytes of the generated object `seed` starting at `offset`, so a test
/// can check any range it read without holding the whole object.
pub fn generated_fill(seed: u64, offset: u64, buf: &mut [u8]) {
    crate::content::generated_fill(seed, offset, buf)
}
