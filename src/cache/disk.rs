//! The disk cache: object bytes in fixed-size blocks keyed by storage object (a version's
//! bytes never change, so a cached block is never stale), LRU-evicted within a size bound,
//! written atomically (temporary file, then rename) and checked on every read, so a crash or a
//! bad disk costs a refetch, never a wrong byte.
//!
//! Layout: `DIR/blocks/<2 hex>/<64 hex of sha256(storage urn)>.<block index>`; each file is a
//! 16-byte header (magic, CRC-32 of the data, data length) followed by the data. `DIR/pins.json`
//! and `DIR/pins.log` list pinned objects: their blocks are kept out of the LRU's reach (see
//! `super::pins`).
//!
//! Locks: `pins` before `index`, each held only for in-memory work and the small registry write,
//! never across a block read or write.

use super::pins::{Pin, Registry};
use lru::LruCache;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
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
    pins: Mutex<Registry>,
    index: Mutex<Index>,
}

/// Every block on disk, by path, with its file length. Blocks of pinned objects are in `kept`,
/// where the LRU cannot evict them; both count toward `used`.
struct Index {
    lru: LruCache<PathBuf, u64>,
    kept: HashMap<PathBuf, u64>,
    /// Object hashes (as in block file names) of pinned objects.
    pinned: HashSet<String>,
    used: u64,
}

impl Index {
    /// Moves the blocks of object `hash` (`blocks` of them) into or out of the LRU's reach.
    fn protect(&mut self, dir: &Path, hash: &str, blocks: u64, keep: bool) {
        if keep {
            self.pinned.insert(hash.to_string());
        } else {
            self.pinned.remove(hash);
        }
        for b in 0..blocks {
            let path = block_path(dir, hash, b);
            if keep {
                if let Some(len) = self.lru.pop(&path) {
                    self.kept.insert(path, len);
                }
            } else if let Some(len) = self.kept.remove(&path) {
                self.lru.put(path, len);
            }
        }
    }

    /// Whether a block is indexed, pinned or not.
    fn contains(&self, path: &Path) -> bool {
        self.lru.contains(path) || self.kept.contains_key(path)
    }

    /// Indexes a block: out of the LRU's reach when its object is pinned.
    fn insert(&mut self, path: PathBuf, len: u64) {
        if hash_of(&path).is_some_and(|h| self.pinned.contains(h)) {
            self.kept.insert(path, len);
        } else {
            self.lru.put(path, len);
        }
        self.used += len;
    }

    fn remove(&mut self, path: &Path) -> Option<u64> {
        let len = self.lru.pop(path).or_else(|| self.kept.remove(path))?;
        self.used -= len;
        Some(len)
    }
}

/// Why an object could not be pinned.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// Pinned objects together would not fit in the cache's capacity.
    #[error(
        "pinning needs {needed} bytes of cache; {pinned} of the {capacity} bytes are pinned already"
    )]
    NoSpace {
        /// Bytes on disk the object takes when complete.
        needed: u64,
        /// Bytes on disk the other pinned objects take when complete.
        pinned: u64,
        /// The cache's size bound.
        capacity: u64,
    },
    /// The registry could not be written.
    #[error("cannot write the pin registry: {0}")]
    Io(#[from] std::io::Error),
}

/// Number of blocks of an object of `size` bytes.
pub fn blocks(size: u64) -> u64 {
    size.div_ceil(BLOCK)
}

/// Length of block `b` of an object of `size` bytes.
pub fn block_len(size: u64, b: u64) -> u64 {
    BLOCK.min(size.saturating_sub(b * BLOCK))
}

/// Bytes an object of `size` bytes takes in the cache once every block is there.
pub fn footprint(size: u64) -> u64 {
    size + blocks(size) * HEADER as u64
}

fn block_path(dir: &Path, hash: &str, block: u64) -> PathBuf {
    dir.join("blocks")
        .join(&hash[..2])
        .join(format!("{hash}.{block}"))
}

/// The object hash a block file is named after.
fn hash_of(path: &Path) -> Option<&str> {
    path.file_name()?.to_str()?.split('.').next()
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
        // Absolute, so `apsfs status` shows where it is whatever directory the mount ran in.
        let dir = &std::fs::canonicalize(dir)?;
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
        let pins = Registry::load(dir)?;
        let mut index = Index {
            lru: LruCache::unbounded(),
            kept: HashMap::new(),
            pinned: pins.iter().map(|(s, _)| object_hash(s)).collect(),
            used: 0,
        };
        for (_, path, len) in found {
            index.insert(path, len);
        }
        let cache = DiskCache {
            dir: dir.to_path_buf(),
            capacity,
            pins: Mutex::new(pins),
            index: Mutex::new(index),
        };
        cache.trim();
        Ok(cache)
    }

    fn block_path(&self, storage: &str, block: u64) -> PathBuf {
        block_path(&self.dir, &object_hash(storage), block)
    }

    /// Whether block `block` of `storage` is indexed (not read or checked).
    pub fn contains(&self, storage: &str, block: u64) -> bool {
        let path = self.block_path(storage, block);
        self.index
            .lock()
            .map(|i| i.contains(&path))
            .unwrap_or(false)
    }

    /// Block `block` of `storage`, if cached and intact. A damaged block is deleted.
    pub fn get(&self, storage: &str, block: u64) -> Option<Vec<u8>> {
        let path = self.block_path(storage, block);
        {
            let mut idx = self.index.lock().ok()?;
            // A lookup, so a block read counts as recently used.
            if idx.lru.get(&path).is_none() && !idx.kept.contains_key(&path) {
                return None;
            }
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
            idx.remove(&path);
            idx.insert(path, len);
        }
        self.trim();
    }

    fn write(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
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
        let mut header = [0u8; HEADER];
        header[..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&crc32fast::hash(data).to_le_bytes());
        header[12..16].copy_from_slice(&(data.len() as u32).to_le_bytes());
        // Not flushed: a block torn by a crash fails its checksum and is fetched again.
        crate::files::replace(&tmp, path, &[&header, data], false)
    }

    fn forget(&self, path: &Path) {
        if let Ok(mut idx) = self.index.lock() {
            idx.remove(path);
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

    /// The size bound.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of `storage` (an object of `size` bytes) on disk: what a pin has downloaded so far.
    pub fn cached(&self, storage: &str, size: u64) -> u64 {
        let hash = object_hash(storage);
        let Ok(idx) = self.index.lock() else {
            return 0;
        };
        (0..blocks(size))
            .filter(|&b| idx.contains(&block_path(&self.dir, &hash, b)))
            .map(|b| block_len(size, b))
            .sum()
    }

    /// Keeps every block of `storage` on disk from now on (and those it gets later), replacing
    /// a pin of an older version of the same item. Fails when the pinned objects together would
    /// not fit in the capacity once complete. Returns whether it was not pinned before.
    pub fn pin(&self, storage: &str, pin: Pin) -> Result<bool, PinError> {
        let mut pins = self.pins.lock().map_err(|_| poisoned())?;
        let pinned: u64 = pins
            .iter()
            .filter(|(s, p)| s.as_str() != storage && p.item != pin.item)
            .map(|(_, p)| footprint(p.size))
            .sum();
        let needed = footprint(pin.size);
        if pinned + needed > self.capacity {
            return Err(PinError::NoSpace {
                needed,
                pinned,
                capacity: self.capacity,
            });
        }
        let size = pin.size;
        let newly = pins.get(storage).is_none();
        let replaced = pins.insert(storage, pin)?;
        let mut idx = self.index.lock().map_err(|_| poisoned())?;
        for (s, p) in replaced {
            idx.protect(&self.dir, &object_hash(&s), blocks(p.size), false);
        }
        idx.protect(&self.dir, &object_hash(storage), blocks(size), true);
        Ok(newly)
    }

    /// Lets the LRU evict `storage` and every other version of `item` again; returns how many
    /// pins that removed.
    pub fn unpin(&self, storage: &str, item: &str) -> Result<usize, PinError> {
        let mut pins = self.pins.lock().map_err(|_| poisoned())?;
        let removed = pins.remove(storage, item)?;
        if removed.is_empty() {
            return Ok(0);
        }
        let mut idx = self.index.lock().map_err(|_| poisoned())?;
        for (s, p) in &removed {
            idx.protect(&self.dir, &object_hash(s), blocks(p.size), false);
        }
        drop(idx);
        drop(pins);
        // Unprotected blocks may now be over the bound.
        self.trim();
        Ok(removed.len())
    }

    /// Whether `storage` is pinned.
    pub fn is_pinned(&self, storage: &str) -> bool {
        self.pins
            .lock()
            .map(|p| p.get(storage).is_some())
            .unwrap_or(false)
    }

    /// Every pin, by storage urn, sorted by urn.
    pub fn pins(&self) -> Vec<(String, Pin)> {
        self.pins
            .lock()
            .map(|p| p.iter().map(|(s, p)| (s.clone(), p.clone())).collect())
            .unwrap_or_default()
    }
}

fn poisoned() -> PinError {
    PinError::Io(std::io::Error::other("internal lock poisoned"))
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

    fn pin(path: &str, item: &str, size: u64) -> Pin {
        Pin::new(path, item, size)
    }

    #[test]
    fn pinned_blocks_are_never_evicted_and_survive_a_reopen() {
        let d = tempfile::tempdir().unwrap();
        let slot = BLOCK + HEADER as u64;
        let c = DiskCache::open(d.path(), 4 * slot).unwrap();
        let block = |n: u8| vec![n; BLOCK as usize];
        // A pinned object of two and a half blocks: its last block is short.
        let size = 2 * BLOCK + BLOCK / 2;
        c.pin("urn:p", pin("F/p.bin", "item-p", size)).unwrap();
        assert!(c.is_pinned("urn:p"));
        c.put("urn:p", 0, &block(1));
        c.put("urn:p", 1, &block(2));
        assert_eq!(c.cached("urn:p", size), 2 * BLOCK);
        c.put("urn:p", 2, &vec![3; (BLOCK / 2) as usize]);
        assert_eq!(c.cached("urn:p", size), size);
        // Much more unpinned data than fits: only unpinned blocks go.
        for i in 0..10 {
            c.put("urn:other", i, &block(9));
        }
        assert!(c.used() <= 4 * slot, "{} over the bound", c.used());
        assert_eq!(c.cached("urn:p", size), size, "pinned blocks stayed");
        assert_eq!(c.get("urn:p", 1), Some(block(2)));
        assert!(
            c.get("urn:other", 9).is_some(),
            "the newest unpinned block fits"
        );
        assert!(
            c.get("urn:other", 0).is_none(),
            "older unpinned blocks were evicted"
        );
        drop(c);

        // The registry and the protection survive a remount, even a smaller one.
        let c = DiskCache::open(d.path(), 3 * slot).unwrap();
        assert!(c.is_pinned("urn:p"));
        assert_eq!(c.cached("urn:p", size), size);
        assert_eq!(
            c.pins(),
            vec![("urn:p".into(), pin("F/p.bin", "item-p", size))]
        );

        // Unpinned, the blocks are ordinary LRU blocks again.
        assert_eq!(c.unpin("urn:p", "item-p").unwrap(), 1);
        assert_eq!(c.unpin("urn:p", "item-p").unwrap(), 0, "idempotent");
        for i in 0..10 {
            c.put("urn:other", i, &block(9));
        }
        assert_eq!(c.cached("urn:p", size), 0, "evicted once unpinned");
        assert!(DiskCache::open(d.path(), 3 * slot)
            .unwrap()
            .pins()
            .is_empty());
    }

    #[test]
    fn pinning_more_than_the_capacity_fails_with_no_space() {
        let d = tempfile::tempdir().unwrap();
        let c = DiskCache::open(d.path(), 10 * BLOCK).unwrap();
        c.pin("urn:a", pin("a", "item-a", 6 * BLOCK)).unwrap();
        match c.pin("urn:b", pin("b", "item-b", 5 * BLOCK)) {
            Err(PinError::NoSpace {
                needed,
                pinned,
                capacity,
            }) => {
                assert_eq!(needed, footprint(5 * BLOCK));
                assert_eq!(pinned, footprint(6 * BLOCK));
                assert_eq!(capacity, 10 * BLOCK);
            }
            other => panic!("expected NoSpace, got {other:?}"),
        }
        assert!(!c.is_pinned("urn:b"));
        // A newer version of the same item replaces the old pin rather than adding to it.
        c.pin("urn:a2", pin("a", "item-a", 8 * BLOCK)).unwrap();
        assert!(!c.is_pinned("urn:a"));
        assert!(c.is_pinned("urn:a2"));
        // Re-pinning the same object is not counted twice.
        assert!(!c.pin("urn:a2", pin("a", "item-a", 8 * BLOCK)).unwrap());
        assert_eq!(c.pins().len(), 1);
    }
}
