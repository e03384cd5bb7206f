//! Putting an id into one URL path segment, as `aps-api.md` §2 ("URL-encoding ids in paths",
//! "Splitting a storage id") says the service's links spell them.
//!
//! Written here rather than shared with the client on purpose: the emulator is the oracle the
//! client is tested against, so an encoding mistake on one side must show up as a failing test,
//! not be repeated on both.
//!
//! The rules: hub and project ids (`a.<base64-ish>`, `b.<uuid>`) and bucket keys
//! (`[-_.a-z0-9]`) are URL-safe as they are; URNs carry `:` (→ `%3A`); version ids carry `?`
//! and `=` that belong to the id (→ `%3F`, `%3D`); an object key is one segment even when it
//! holds `/` (→ `%2F`). So everything but the unreserved characters of RFC 3986 (letters,
//! digits, `-`, `.`, `_`, `~`) is percent-encoded, byte by byte of its UTF-8 form.

/// Upper-case hex digits, the spelling the service's own encoded links use (`%3A`, not `%3a`).
const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Whether `b` may stand in a path segment as it is (RFC 3986 "unreserved").
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `s` as a single URL path segment: every byte other than an unreserved character becomes
/// `%XX`, so `/`, `?`, `=`, `:`, `%`, `#`, spaces and non-ASCII letters cannot change the path.
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::parse_object_urn;
    use percent_encoding::percent_decode_str;

    #[test]
    fn hub_project_and_bucket_ids_are_url_safe_as_they_are() {
        for id in [
            "a.YnVzaW5lc3M6YWNtZTEyMw",
            "b.3f1e0c6a-4d44-4d8e-9d2e-8a1d7c2b9e11",
            "wip.dm.prod",
            "wip.dm.emea.2",
            "wip.dm.prod.temp",
        ] {
            assert_eq!(seg(id), id);
        }
    }

    #[test]
    fn folder_and_item_urns_have_their_colons_encoded() {
        assert_eq!(
            seg("urn:adsk.wipprod:fs.folder:co.Ab3dEfGhIjKlMnOpQrStUv"),
            "urn%3Aadsk.wipprod%3Afs.folder%3Aco.Ab3dEfGhIjKlMnOpQrStUv"
        );
        assert_eq!(
            seg("urn:adsk.wipprod:dm.lineage:Zx9yW8vU7tS6rQ5pO4nM3l"),
            "urn%3Aadsk.wipprod%3Adm.lineage%3AZx9yW8vU7tS6rQ5pO4nM3l"
        );
    }

    #[test]
    fn a_version_id_keeps_its_version_suffix_inside_the_segment() {
        let id = "urn:adsk.wipprod:fs.file:vf.Zx9yW8vU7tS6rQ5pO4nM3l?version=3";
        let path = format!("/data/v1/projects/b.1/versions/{}", seg(id));
        assert_eq!(
            path,
            "/data/v1/projects/b.1/versions/urn%3Aadsk.wipprod%3Afs.file%3Avf.Zx9yW8vU7tS6rQ5pO4nM3l%3Fversion%3D3"
        );
        // The `?` must not start a query: the whole id is in the path.
        assert!(!path.contains('?') && !path.contains('='));
    }

    #[test]
    fn a_storage_id_splits_at_the_first_slash_and_the_key_stays_one_segment() {
        let (bucket, key) = parse_object_urn("urn:adsk.objects:os.object:wip.dm.prod/6f1c/a b.rvt")
            .expect("a storage id");
        assert_eq!((bucket, key), ("wip.dm.prod", "6f1c/a b.rvt"));
        assert_eq!(
            format!("/oss/v2/buckets/{}/objects/{}", seg(bucket), seg(key)),
            "/oss/v2/buckets/wip.dm.prod/objects/6f1c%2Fa%20b.rvt"
        );
    }

    #[test]
    fn characters_that_mean_something_in_a_url_are_all_encoded() {
        assert_eq!(
            seg("%"),
            "%25",
            "a literal percent cannot pass for an escape"
        );
        assert_eq!(seg("a#b"), "a%23b", "a fragment cannot start");
        assert_eq!(seg("a&b+c;d"), "a%26b%2Bc%3Bd");
        assert_eq!(seg("~-._"), "~-._");
        assert_eq!(
            seg("Plan ü.pdf"),
            "Plan%20%C3%BC.pdf",
            "UTF-8, byte by byte"
        );
        assert_eq!(seg(""), "");
    }

    #[test]
    fn decoding_once_gives_the_id_back() {
        for id in [
            "urn:adsk.wipprod:fs.file:vf.Zx9yW8vU7tS6rQ5pO4nM3l?version=12",
            "dir/sub dir/100%.dwg",
            "名前 #1.rvt",
        ] {
            let e = seg(id);
            assert!(e.bytes().all(|b| unreserved(b) || b == b'%'), "{e}");
            assert_eq!(percent_decode_str(&e).decode_utf8().unwrap(), id);
        }
    }
}
