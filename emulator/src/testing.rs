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

/// The whole of version `version` of the generated file `name`, stored under `object_key` with
/// `size` bytes, in a set generated with (`docs == true`) or without the `docs` flag.
///
/// With `docs`, a non-empty file whose extension is a document format (txt, md, csv, json,
/// pdf, png, docx) holds a small real document; every other object, and every object of a set
/// without `docs`, holds the [`generated_fill`] bytes of [`seed_for_key`]. The emulator serves
/// exactly this (`generate.rs` builds its content through the same function).
pub fn expected_bytes(
    object_key: &str,
    name: &str,
    version: u32,
    size: u64,
    docs: bool,
) -> Vec<u8> {
    if let Some(content) = crate::content::generated_content(object_key, name, version, size, docs)
        .document_bytes_if_any()
    {
        return content;
    }
    let mut v = vec![0u8; size as usize];
    generated_fill(seed_for_key(object_key), 0, &mut v);
    v
}
