//! Request counters that tests read through `/__emulator/stats` to prove request-count
//! properties (no per-item requests, nothing downloaded twice, no 429s).

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Counts requests by route name and by response status, and bytes of object content served.
#[derive(Default)]
pub struct Stats {
    counts: Mutex<Counts>,
    bytes: AtomicU64,
}

#[derive(Default)]
struct Counts {
    requests: BTreeMap<&'static str, u64>,
    statuses: BTreeMap<u16, u64>,
}

impl Stats {
    /// Records one request to `route`.
    pub fn request(&self, route: &'static str) {
        if let Ok(mut c) = self.counts.lock() {
            *c.requests.entry(route).or_default() += 1;
        }
    }

    /// Records the status a request was answered with.
    pub fn status(&self, status: u16) {
        if let Ok(mut c) = self.counts.lock() {
            *c.statuses.entry(status).or_default() += 1;
        }
    }

    /// Adds object bytes actually written to a client.
    pub fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// The `/__emulator/stats` document.
    pub fn snapshot(&self) -> Value {
        let (requests, statuses) = match self.counts.lock() {
            Ok(c) => (
                c.requests
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v)))
                    .collect(),
                c.statuses
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v)))
                    .collect(),
            ),
            Err(_) => (serde_json::Map::new(), serde_json::Map::new()),
        };
        json!({
            "requests": requests,
            "statuses": statuses,
            "bytes_served": self.bytes.load(Ordering::Relaxed),
        })
    }

    /// Zeroes every counter.
    pub fn reset(&self) {
        if let Ok(mut c) = self.counts.lock() {
            *c = Counts::default();
        }
        self.bytes.store(0, Ordering::Relaxed);
    }
}
