//! Identifier shapes of the real service, derived deterministically so the same seed tree
//! gets the same ids after a restart.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Prefix of folder URNs as production returns them.
pub const FOLDER_PREFIX: &str = "urn:adsk.wipprod:fs.folder:co.";
/// Prefix of item (lineage) URNs.
pub const ITEM_PREFIX: &str = "urn:adsk.wipprod:dm.lineage:";
/// Prefix of version URNs; the `?version=N` suffix is part of the id.
pub const VERSION_PREFIX: &str = "urn:adsk.wipprod:fs.file:vf.";
/// Prefix of storage object URNs; `<bucket>/<key>` follows.
pub const OBJECT_PREFIX: &str = "urn:adsk.objects:os.object:";

/// A 128-bit id; rendered as the 22-character URL-safe token real folder and lineage ids carry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Uid(pub [u8; 16]);

impl Uid {
    /// Derives an id from a kind and a stable key (usually a path), so restarts agree.
    pub fn derive(kind: &str, key: &str) -> Uid {
        let mut h = Sha256::new();
        h.update(kind.as_bytes());
        h.update([0]);
        h.update(key.as_bytes());
        let d = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        Uid(b)
    }

    /// A fresh random id, for resources created through the API.
    pub fn random() -> Uid {
        let mut b = [0u8; 16];
        fill_random(&mut b);
        Uid(b)
    }

    /// The 22-character URL-safe form.
    pub fn token(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Parses the 22-character form back; `None` for anything else.
    pub fn parse_token(s: &str) -> Option<Uid> {
        if s.len() != 22 {
            return None;
        }
        let v = URL_SAFE_NO_PAD.decode(s).ok()?;
        let mut b = [0u8; 16];
        b.copy_from_slice(v.get(..16)?);
        Some(Uid(b))
    }

    /// The canonical 8-4-4-4-12 UUID spelling (version-4 bits set, as real account ids have).
    pub fn uuid(&self) -> String {
        let mut b = self.0;
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// First eight bytes as a number, used to seed generated content.
    pub fn as_u64(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(b)
    }

    /// Folder URN.
    pub fn folder_urn(&self) -> String {
        format!("{FOLDER_PREFIX}{}", self.token())
    }

    /// Item (lineage) URN.
    pub fn item_urn(&self) -> String {
        format!("{ITEM_PREFIX}{}", self.token())
    }

    /// Version URN for version number `n` of this lineage.
    pub fn version_urn(&self, n: u32) -> String {
        format!("{VERSION_PREFIX}{}?version={n}", self.token())
    }
}

/// Parses a folder URN (also the `dm.folder:` spelling some reference examples use).
pub fn parse_folder_urn(s: &str) -> Option<Uid> {
    s.strip_prefix(FOLDER_PREFIX)
        .or_else(|| s.strip_prefix("urn:adsk.wipprod:dm.folder:"))
        .and_then(Uid::parse_token)
}

/// Parses an item URN.
pub fn parse_item_urn(s: &str) -> Option<Uid> {
    s.strip_prefix(ITEM_PREFIX).and_then(Uid::parse_token)
}

/// Parses a version URN into its lineage and version number.
pub fn parse_version_urn(s: &str) -> Option<(Uid, u32)> {
    let rest = s.strip_prefix(VERSION_PREFIX)?;
    let (tok, n) = rest.split_once("?version=")?;
    Some((Uid::parse_token(tok)?, n.parse().ok().filter(|n| *n > 0)?))
}

/// Splits a storage URN into bucket key and object key at the first `/`.
pub fn parse_object_urn(s: &str) -> Option<(&str, &str)> {
    let rest = s.strip_prefix(OBJECT_PREFIX)?;
    let (b, k) = rest.split_once('/')?;
    (!b.is_empty() && !k.is_empty()).then_some((b, k))
}

/// Fills `buf` from the operating system's random source; tokens and secrets depend on it.
pub fn fill_random(buf: &mut [u8]) {
    if getrandom::getrandom(buf).is_err() {
        // The OS source never fails on Linux after boot; keep going with a time-based value
        // rather than panic, since ids are not secrets and tokens still get the counter mix.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut h = Sha256::new();
        h.update(t.to_le_bytes());
        let d = h.finalize();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = d[i % d.len()];
        }
    }
}

/// A random URL-safe string of `n` random bytes, for tokens, codes and upload keys.
pub fn random_token(n: usize) -> String {
    let mut b = vec![0u8; n];
    fill_random(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// The object key real uploads get: a UUID plus the original extension.
pub fn object_key(item_key: &str, version: u32, name: &str) -> String {
    let uuid = Uid::derive("object", &format!("{item_key}#{version}")).uuid();
    match std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
    {
        Some(ext) if !ext.is_empty() && ext.len() <= 16 && !ext.contains(['/', '\\']) => {
            format!("{uuid}.{ext}")
        }
        _ => uuid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let u = Uid::derive("folder", "Hub/Project/Plans");
        assert_eq!(u.token().len(), 22);
        assert_eq!(parse_folder_urn(&u.folder_urn()), Some(u));
        assert_eq!(parse_item_urn(&u.item_urn()), Some(u));
        assert_eq!(parse_version_urn(&u.version_urn(12)), Some((u, 12)));
        assert_eq!(parse_version_urn(&u.version_urn(0)), None);
        assert_eq!(Uid::derive("folder", "Hub/Project/Plans"), u);
        assert_ne!(Uid::derive("item", "Hub/Project/Plans"), u);
        assert_eq!(u.uuid().len(), 36);
        assert_eq!(
            parse_object_urn("urn:adsk.objects:os.object:wip.dm.prod/a/b.rvt"),
            Some(("wip.dm.prod", "a/b.rvt"))
        );
        assert_eq!(parse_object_urn("urn:adsk.objects:os.object:nokey"), None);
    }
}
