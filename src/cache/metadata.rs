//! Directory listings with a time to live, in an LRU of bounded size. A fresh listing answers
//! `lookup`, `getattr` and `readdir` without a request; a name missing from a fresh listing is
//! a negative entry (ENOENT at no cost).

use lru::LruCache;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Default time a listing (and what it says about its children) is trusted: long enough that
/// an `ls -lR` or a backup pass re-uses it, short enough that a colleague's upload shows up
/// within a minute.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// Default number of directory listings kept.
pub const DEFAULT_MAX_DIRS: usize = 10_000;
/// Default bound on the entries of all cached listings together: a 500,000-item tree stays
/// cached whole (about 250 bytes an entry with its inode), a bigger one is trimmed, least
/// recently used directories first.
pub const DEFAULT_MAX_ENTRIES: usize = 500_000;

/// What a folder's `lastModifiedTimeRollup` was just before its listing was fetched, and
/// when that was seen: while the rollup stays the same, the listing (and any listing below it
/// fetched after `seen`) is still right.
#[derive(Clone, Debug, PartialEq)]
pub struct Validator {
    /// The rollup as the service spelled it.
    pub rollup: String,
    /// When it was observed.
    pub seen: Instant,
}

/// The children of one directory at one moment.
#[derive(Debug)]
pub struct Listing {
    /// `(name, inode, is_dir)` in listing order.
    pub entries: Vec<(String, u64, bool)>,
    index: HashMap<String, usize>,
    inos: std::collections::HashSet<u64>,
    /// When it was fetched, or last confirmed unchanged.
    fetched: Mutex<Instant>,
    /// When it was actually fetched.
    born: Instant,
    /// How to confirm it unchanged without fetching it again.
    pub validator: Option<Validator>,
}

impl Listing {
    /// A listing of `entries` fetched now.
    pub fn new(entries: Vec<(String, u64, bool)>) -> Listing {
        Listing::with_validator(entries, None)
    }

    /// A listing fetched now, with what confirms it later.
    pub fn with_validator(
        entries: Vec<(String, u64, bool)>,
        validator: Option<Validator>,
    ) -> Listing {
        let index = entries
            .iter()
            .enumerate()
            .map(|(i, (n, _, _))| (n.clone(), i))
            .collect();
        let inos = entries.iter().map(|(_, i, _)| *i).collect();
        Listing {
            entries,
            index,
            inos,
            fetched: Mutex::new(Instant::now()),
            born: Instant::now(),
            validator,
        }
    }

    /// When it was fetched or last confirmed.
    pub fn fetched(&self) -> Instant {
        self.fetched
            .lock()
            .map(|t| *t)
            .unwrap_or_else(|_| Instant::now())
    }

    /// Time since it was actually fetched (confirmations do not count).
    pub fn age(&self) -> Duration {
        self.born.elapsed()
    }

    /// Marks it confirmed as of now.
    pub fn renew(&self) {
        if let Ok(mut t) = self.fetched.lock() {
            *t = Instant::now();
        }
    }

    /// Whether `ino` is one of the children.
    pub fn contains(&self, ino: u64) -> bool {
        self.inos.contains(&ino)
    }

    /// The inode of a child by name.
    pub fn lookup(&self, name: &str) -> Option<u64> {
        self.index.get(name).map(|&i| self.entries[i].1)
    }
}

/// Listings by directory inode.
pub struct MetaCache {
    dirs: Mutex<Dirs>,
    ttl: Duration,
    max_entries: usize,
}

struct Dirs {
    lru: LruCache<u64, Arc<Listing>>,
    entries: usize,
}

impl MetaCache {
    /// A cache trusting listings for `ttl`, holding at most `max_dirs` listings and
    /// `max_entries` entries in all.
    pub fn new(ttl: Duration, max_dirs: usize, max_entries: usize) -> MetaCache {
        MetaCache {
            dirs: Mutex::new(Dirs {
                lru: LruCache::new(NonZeroUsize::new(max_dirs.max(1)).unwrap_or(NonZeroUsize::MIN)),
                entries: 0,
            }),
            ttl,
            max_entries: max_entries.max(1),
        }
    }

    /// The listing of `dir` if it is still fresh.
    pub fn fresh(&self, dir: u64) -> Option<Arc<Listing>> {
        let mut d = self.dirs.lock().ok()?;
        match d.lru.get(&dir) {
            Some(l) if l.fetched().elapsed() < self.ttl => Some(l.clone()),
            _ => None,
        }
    }

    /// The listing of `dir`, fresh or not, without touching its LRU position.
    pub fn peek(&self, dir: u64) -> Option<Arc<Listing>> {
        self.dirs.lock().ok()?.lru.peek(&dir).cloned()
    }

    /// Stores a listing; returns the listings evicted to make room (least recently used
    /// first), so what only they referred to can be dropped too.
    pub fn put(&self, dir: u64, listing: Arc<Listing>) -> Vec<(u64, Arc<Listing>)> {
        let Ok(mut d) = self.dirs.lock() else {
            return Vec::new();
        };
        let mut evicted = Vec::new();
        d.entries += listing.entries.len();
        if let Some((old_dir, old)) = d.lru.push(dir, listing) {
            d.entries -= old.entries.len();
            if old_dir != dir {
                evicted.push((old_dir, old));
            }
        }
        while d.entries > self.max_entries && d.lru.len() > 1 {
            match d.lru.pop_lru() {
                Some((k, l)) => {
                    d.entries -= l.entries.len();
                    evicted.push((k, l));
                }
                None => break,
            }
        }
        evicted
    }

    /// Entries held by all cached listings.
    pub fn entries(&self) -> usize {
        self.dirs.lock().map(|d| d.entries).unwrap_or(0)
    }

    /// How much longer `listing` is trusted; the kernel is told to cache no longer than this.
    pub fn remaining(&self, listing: &Listing) -> Duration {
        self.ttl.saturating_sub(listing.fetched().elapsed())
    }

    /// The configured time to live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_then_stale_and_bounded() {
        let c = MetaCache::new(Duration::from_millis(50), 2, 100);
        c.put(1, Arc::new(Listing::new(vec![("a".into(), 10, false)])));
        let l = c.fresh(1).unwrap();
        assert_eq!(l.lookup("a"), Some(10));
        assert_eq!(l.lookup("b"), None);
        assert!(c.remaining(&l) <= Duration::from_millis(50));
        c.put(2, Arc::new(Listing::new(vec![])));
        c.put(3, Arc::new(Listing::new(vec![])));
        assert!(c.fresh(1).is_none(), "evicted as least recently used");
        std::thread::sleep(Duration::from_millis(60));
        assert!(c.fresh(3).is_none(), "expired");
    }

    #[test]
    fn bounded_by_entries() {
        let c = MetaCache::new(Duration::from_secs(60), 100, 5);
        let l = |n: u64| {
            Arc::new(Listing::new(
                (0..n).map(|i| (format!("{i}"), 100 + i, false)).collect(),
            ))
        };
        assert!(c.put(1, l(3)).is_empty());
        let evicted = c.put(2, l(3));
        assert_eq!(evicted.iter().map(|(d, _)| *d).collect::<Vec<_>>(), vec![1]);
        assert_eq!(c.entries(), 3);
        assert!(
            c.put(2, l(4)).is_empty(),
            "replacing a listing is not an eviction"
        );
        assert_eq!(c.entries(), 4);
        // A single listing larger than the bound is still kept.
        assert_eq!(c.put(3, l(9)).len(), 1);
        assert_eq!(c.entries(), 9);
    }
}
