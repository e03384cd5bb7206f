//! Request counters that tests read through `/__emulator/stats` to prove request-count
//! properties (no per-item requests, nothing downloaded twice, no 429s).

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Counts requests by route name and by response status, bytes of object content served,
/// injected faults, and what the foreign origin received.
#[derive(Default)]
pub struct Stats {
    counts: Mutex<Counts>,
    bytes: AtomicU64,
    /// Base URL of the foreign origin, reported so an out-of-process test can reach it.
    foreign_url: String,
}

#[derive(Default)]
struct Counts {
    requests: BTreeMap<&'static str, u64>,
    statuses: BTreeMap<u16, u64>,
    injected: BTreeMap<&'static str, u64>,
    redirects: u64,
    foreign: Foreign,
}

/// What the foreign origin saw.
#[derive(Default)]
struct Foreign {
    requests: u64,
    with_credentials: u64,
    by_route: BTreeMap<&'static str, u64>,
}

impl Stats {
    /// Counters that report `foreign_url` as the foreign origin's address.
    pub fn new(foreign_url: String) -> Stats {
        Stats {
            foreign_url,
            ..Stats::default()
        }
    }

    /// Records one injected fault of the knob `name` (the `injected` map of the stats).
    pub fn injected(&self, name: &'static str) {
        if let Ok(mut c) = self.counts.lock() {
            *c.injected.entry(name).or_default() += 1;
        }
    }

    /// Records one `307` the `redirect` knob answered on the main listener.
    pub fn redirect(&self) {
        if let Ok(mut c) = self.counts.lock() {
            c.redirects += 1;
            *c.injected.entry("redirect").or_default() += 1;
        }
    }

    /// Records one request the foreign origin received, and whether it carried a credential.
    pub fn foreign(&self, route: &'static str, with_credentials: bool) {
        if let Ok(mut c) = self.counts.lock() {
            c.foreign.requests += 1;
            c.foreign.with_credentials += u64::from(with_credentials);
            *c.foreign.by_route.entry(route).or_default() += 1;
        }
    }

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
        fn map<K: ToString>(m: &BTreeMap<K, u64>) -> Value {
            Value::Object(m.iter().map(|(k, v)| (k.to_string(), json!(v))).collect())
        }
        let Ok(c) = self.counts.lock() else {
            return json!({ "requests": {}, "statuses": {}, "bytes_served": 0 });
        };
        json!({
            "requests": map(&c.requests),
            "statuses": map(&c.statuses),
            "bytes_served": self.bytes.load(Ordering::Relaxed),
            "injected": map(&c.injected),
            "redirects": c.redirects,
            "foreign": {
                "url": self.foreign_url,
                "requests": c.foreign.requests,
                "with_credentials": c.foreign.with_credentials,
                "by_route": map(&c.foreign.by_route),
            },
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
