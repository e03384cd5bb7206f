//! The disk cache: object bytes in fixed-size blocks keyed by storage object (a version's
//! bytes never change, so a cached block is never stale), LRU-evicted within a size bound,
//! written atomically (temporary file, then rename) and checked on every read, so a crash or a
//! bad disk costs a refetch, never a wrong byte.
//!
//! Layout: `DIR/blocks/<2 hex>/<64 hex of sha256(storage urn)>.<block index>`; each file is a
//! 16-byte header (magic, CRC-32 of the data, data length) followed by the data.

use lru::LruCache;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Block size: large enough that a sequential read costs few files, small enough that a
/// partly read file does not fill the cache with bytes nobody asked for.
pub const BLOCK: u64 = 1 << 20;
const MAGIC: &[u8; 8] = b"APSFSBK1";
const HEADER: usize = 16;

/// A block cache on disk.
pub struct DiskCache {
    dir: PathBuf,
    capacity: u64,
    index: Mutex<Index>,
}

struct Index {
    lru: LruCache<PathBuf, u64>,
    used: u64,
}

fn object_hash(storage: &str) -> String {
    Sha256::digest(storage.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl DiskCache {
    /// Opens (creating) a cache in `dir` holding at most `capacity` bytes; existing blocks are
    /// indexed, oldest first, and the cache is trimmed to the bound.
    pub fn open(dir: &Path, capacity: u64) -> std::io::Result<DiskCache> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir.join("blocks"))?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir.join("tmp"))?;
        // Leftovers of writes a crash interrupted.
        for e in std::fs::read_dir(dir.join("tmp"))?.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
        let mut found = Vec::new();
        for sub in std::fs::read_dir(dir.join("blocks"))?.flatten() {
            let Ok(files) = std::fs::read_dir(sub.path()) else {
                continue;
            };
            for f in files.flatten() {
                if let Ok(m) = f.metadata() {
                    let when = m.modified().unwrap_or(std::time::UNIX_EPOCH);
                    found.push((when, f.path(), m.len()));
                }
            }
        }
        found.sort();
        let mut index = Index {
            lru: LruCache::unbounded(),
            used: 0,
        };
        for (_, path, len) in found {
            index.used += len;
            index.lru.put(path, len);
        }
        let cache = DiskCache {
            dir: dir.to_path_buf(),
            capacity,
            index: Mutex::new(index),
        };
        cache.trim();
        Ok(cache)
    }

    fn block_path(&self, storage: &str, block: u64) -> PathBuf {
        let h = object_hash(storage);
        self.dir
            .join("blocks")
            .join(&h[..2])
            .join(format!("{h}.{block}"))
    }

    /// Whether block `block` of `storage` is indexed (not read or checked).
    pub fn contains(&self, storage: &str, block: u64) -> bool {
        let path = self.block_path(storage, block);
        self.index
            .lock()
            .map(|i| i.lru.contains(&path))
            .unwrap_or(false)
    }

    /// Block `block` of `storage`, if cached and intact. A damaged block is deleted.
    pub fn get(&self, storage: &str, block: u64) -> Option<Vec<u8>> {
        let path = self.block_path(storage, block);
        {
            let mut idx = self.index.lock().ok()?;
            idx.lru.get(&path)?;
        }
        match std::fs::read(&path).ok().and_then(verify) {
            Some(data) => Some(data),
            None => {
                tracing::warn!(path = %path.display(), "disk cache block failed its check; dropping it");
                self.forget(&path);
                None
            }
        }
    }

    /// Stores a block (atomically), then evicts least recently used blocks over the bound.
    pub fn put(&self, storage: &str, block: u64, data: &[u8]) {
        let path = self.block_path(storage, block);
        if let Err(e) = self.write(&path, data) {
            tracing::warn!(error = %e, "cannot write to the disk cache");
            return;
        }
        let len = (HEADER + data.len()) as u64;
        if let Ok(mut idx) = self.index.lock() {
            if let Some(old) = idx.lru.put(path, len) {
                idx.used -= old;
            }
            idx.used += len;
        }
        self.trim();
    }

    fn write(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if let Some(parent) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)?;
        }
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self
            .dir
            .join("tmp")
            .join(format!("{}.{n}", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut header = [0u8; HEADER];
        header[..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&crc32fast::hash(data).to_le_bytes());
        header[12..16].copy_from_slice(&(data.len() as u32).to_le_bytes());
        let written = f.write_all(&header).and_then(|_| f.write_all(data));
        drop(f);
        match written.and_then(|_| std::fs::rename(&tmp, path)) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    fn forget(&self, path: &Path) {
        if let Ok(mut idx) = self.index.lock() {
            if let Some(len) = idx.lru.pop(path) {
                idx.used -= len;
            }
        }
        let _ = std::fs::remove_file(path);
    }

    fn trim(&self) {
        loop {
            let victim = {
                let Ok(mut idx) = self.index.lock() else {
                    return;
                };
                if idx.used <= self.capacity {
                    return;
                }
                match idx.lru.pop_lru() {
                    Some((p, len)) => {
                        idx.used -= len;
                        p
                    }
                    None => return,
                }
            };
            let _ = std::fs::remove_file(victim);
        }
    }

    /// Bytes held.
    pub fn used(&self) -> u64 {
        self.index.lock().map(|i| i.used).unwrap_or(0)
    }
}

/// The data of a block file whose header and checksum hold.
fn verify(mut raw: Vec<u8>) -> Option<Vec<u8>> {
    if raw.len() < HEADER || &raw[..8] != MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes(raw[8..12].try_into().ok()?);
    let len = u32::from_le_bytes(raw[12..16].try_into().ok()?) as usize;
    if raw.len() != HEADER + len || crc32fast::hash(&raw[HEADER..]) != crc {
        return None;
    }
    raw.drain(..HEADER);
    Some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_verifies_and_evicts() {
        let d = tempfile::tempdir().unwrap();
        let c = DiskCache::open(d.path(), 3 * (BLOCK + HEADER as u64)).unwrap();
        let block = |n: u8| vec![n; BLOCK as usize];
        for i in 0..3 {
            c.put("urn:a", i, &block(i as u8));
        }
        assert_eq!(c.get("urn:a", 1), Some(block(1)));
        assert_eq!(c.get("urn:b", 1), None);
        // Touch 0 so 2 is the least recently used when a fourth block arrives.
        assert!(c.get("urn:a", 0).is_some());
        c.put("urn:a", 3, &block(3));
        assert!(c.get("urn:a", 2).is_none(), "evicted");
        assert!(c.get("urn:a", 0).is_some());
        assert!(c.used() <= 3 * (BLOCK + HEADER as u64));

        // A damaged block is detected, dropped and reported as a miss.
        let path = c.block_path("urn:a", 3);
        let mut raw = std::fs::read(&path).unwrap();
        raw[HEADER + 5] ^= 0xff;
        std::fs::write(&path, raw).unwrap();
        assert_eq!(c.get("urn:a", 3), None);
        assert!(!path.exists());

        // Reopening finds what is there and drops half-written temporary files.
        std::fs::write(d.path().join("tmp/stale"), b"x").unwrap();
        let again = DiskCache::open(d.path(), 10 * BLOCK).unwrap();
        assert_eq!(again.get("urn:a", 0), Some(block(0)));
        assert!(!d.path().join("tmp/stale").exists());
    }
}
