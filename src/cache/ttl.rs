//! A small map whose entries are trusted for a fixed time, for answers fetched on demand
//! (bucket object lists, refs, bucket owners) that are too few to need an LRU.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Values by key, each good for `ttl` after it was put; at most `max` kept.
pub struct TtlMap<K, V> {
    ttl: Duration,
    max: usize,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Hash + Eq, V: Clone> TtlMap<K, V> {
    /// An empty map of entries trusted for `ttl`, holding at most `max`.
    pub fn new(ttl: Duration, max: usize) -> TtlMap<K, V> {
        TtlMap {
            ttl,
            max: max.max(1),
            entries: Mutex::default(),
        }
    }

    /// The value of `key`, unless missing or older than the TTL.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    /// Keeps `value` for `key`. When full, expired entries go first, then the older half.
    pub fn put(&self, key: K, value: V) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.max && !entries.contains_key(&key) {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if entries.len() >= self.max {
                let mut ages: Vec<Instant> = entries.values().map(|(at, _)| *at).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                entries.retain(|_, (at, _)| *at > cut);
            }
        }
        entries.insert(key, (Instant::now(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_map_stays_bounded() {
        let m = TtlMap::new(Duration::from_millis(50), 4);
        m.put(1, "a");
        assert_eq!(m.get(&1), Some("a"));
        for k in 2..=10 {
            m.put(k, "b");
        }
        assert!(m.entries.lock().unwrap().len() <= 4);
        assert_eq!(m.get(&10), Some("b"), "the newest stays");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(m.get(&10), None);
    }
}
