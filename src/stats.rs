//! What this process asked of the service since it started, for `apsfs status`: requests by
//! kind (the rate-limit classes, downloads, upload parts, tokens), retries, 429 answers, bytes
//! downloaded, and how much of what was read came from the disk cache. One mount is one
//! process, so the counters are process-wide: atomics and one small map, bumped where the
//! requests are made, read through an extended attribute of the mount's root.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

static STARTED: OnceLock<SystemTime> = OnceLock::new();
static REQUESTS: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());
static RETRIES: AtomicU64 = AtomicU64::new(0);
static THROTTLED: AtomicU64 = AtomicU64::new(0);
static DOWNLOADED: AtomicU64 = AtomicU64::new(0);
static CACHE_HIT: AtomicU64 = AtomicU64::new(0);
static CACHE_MISS: AtomicU64 = AtomicU64::new(0);

/// The counters as `apsfs status` reads them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When counting started (the mount), seconds since the epoch.
    pub since: u64,
    /// Requests sent (every attempt), by kind.
    pub requests: BTreeMap<String, u64>,
    /// Attempts sent again after a transient failure.
    pub retries: u64,
    /// 429 answers (the service's rate limit).
    pub throttled: u64,
    /// File bytes received from storage.
    pub downloaded: u64,
    /// Bytes of file reads answered from the disk cache.
    pub cache_hit: u64,
    /// Bytes of file reads that had to be fetched.
    pub cache_miss: u64,
}

/// Starts the clock the counters are "since" (the first call wins).
pub fn start() {
    STARTED.get_or_init(SystemTime::now);
}

/// One request of `kind` is sent.
pub fn request(kind: &'static str) {
    if let Ok(mut r) = REQUESTS.lock() {
        *r.entry(kind).or_default() += 1;
    }
}

/// An attempt is sent again.
pub fn retry() {
    RETRIES.fetch_add(1, Ordering::Relaxed);
}

/// The service answered 429.
pub fn throttled() {
    THROTTLED.fetch_add(1, Ordering::Relaxed);
}

/// `n` file bytes arrived from storage.
pub fn downloaded(n: u64) {
    DOWNLOADED.fetch_add(n, Ordering::Relaxed);
}

/// A file read: `hit` bytes came from the disk cache, `miss` bytes had to be fetched.
pub fn cache_read(hit: u64, miss: u64) {
    CACHE_HIT.fetch_add(hit, Ordering::Relaxed);
    CACHE_MISS.fetch_add(miss, Ordering::Relaxed);
}

/// The counters now.
pub fn snapshot() -> Snapshot {
    let since = STARTED
        .get()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let requests = REQUESTS
        .lock()
        .map(|r| r.iter().map(|(k, v)| (k.to_string(), *v)).collect())
        .unwrap_or_default();
    Snapshot {
        since,
        requests,
        retries: RETRIES.load(Ordering::Relaxed),
        throttled: THROTTLED.load(Ordering::Relaxed),
        downloaded: DOWNLOADED.load(Ordering::Relaxed),
        cache_hit: CACHE_HIT.load(Ordering::Relaxed),
        cache_miss: CACHE_MISS.load(Ordering::Relaxed),
    }
}

impl Snapshot {
    /// Share of the bytes read that the disk cache answered, in percent (`None` before any
    /// read).
    pub fn hit_percent(&self) -> Option<u64> {
        let all = self.cache_hit + self.cache_miss;
        (all > 0).then(|| self.cache_hit * 100 / all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_and_the_hit_ratio_is_by_bytes() {
        let before = snapshot();
        request("folder_contents");
        request("folder_contents");
        retry();
        throttled();
        downloaded(10);
        cache_read(30, 10);
        let after = snapshot();
        let n = |s: &Snapshot| s.requests.get("folder_contents").copied().unwrap_or(0);
        assert!(n(&after) >= n(&before) + 2);
        assert!(after.retries > before.retries);
        assert!(after.throttled > before.throttled);
        assert!(after.downloaded >= before.downloaded + 10);
        let only = Snapshot {
            cache_hit: 30,
            cache_miss: 10,
            ..Snapshot::default()
        };
        assert_eq!(only.hit_percent(), Some(75));
        assert_eq!(Snapshot::default().hit_percent(), None);
    }
}
