//! Request counters that tests read through `/__emulator/stats` to prove request-count
//! properties (no per-item requests, nothing downloaded twice, no 429s), and counts of what
//! writes made (exactly one version per save, no part sent twice).

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
    /// By endpoint ([`crate::router::Route::key`]); `requests` groups some endpoints.
    routes: BTreeMap<&'static str, u64>,
    writes: Writes,
    statuses: BTreeMap<u16, u64>,
    injected: BTreeMap<&'static str, u64>,
    redirects: u64,
    foreign: Foreign,
}

/// What the write requests made or changed, counted only when they succeed; a `PATCH folders`
/// counts once in each of its changes (a rename that also moves is renamed and moved).
#[derive(Default)]
struct Writes {
    storage_created: u64,
    items_created: u64,
    versions_created: u64,
    folders_created: u64,
    parts_put: u64,
    part_bytes: u64,
    uploads_completed: u64,
    items_renamed: u64,
    versions_renamed: u64,
    folders_renamed: u64,
    folders_moved: u64,
    folders_hidden: u64,
    folders_restored: u64,
    tombstones: u64,
}

/// A thing a successful write made, for [`Stats::made`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Made {
    /// A storage placeholder (`POST storage`).
    Storage,
    /// An item with its first version (`POST items`).
    Item,
    /// A version of an existing item (`POST versions`: file, tombstone or `copyFrom`).
    Version,
    /// A folder (`POST folders`).
    Folder,
    /// A completed upload (`POST signeds3upload`), the object now visible.
    Upload,
    /// An item given another `displayName` (`PATCH items`).
    ItemRenamed,
    /// A version given another `name` (`PATCH versions`).
    VersionRenamed,
    /// A folder given another `name` (`PATCH folders`).
    FolderRenamed,
    /// A folder put under another parent (`PATCH folders` with `relationships.parent`).
    FolderMoved,
    /// A visible folder hidden (`PATCH folders` with `hidden: true`: a BIM 360 delete).
    FolderHidden,
    /// A hidden folder shown again (`PATCH folders` with `hidden: false`: a restore).
    FolderRestored,
    /// A delete tombstone (`versions:autodesk.core:Deleted`); the version it is also counts
    /// as [`Made::Version`] in `versions_created`, as it did before this counter existed.
    Tombstone,
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

    /// Records one request to the route counted as `name` in `requests` and as `key` in
    /// `routes`.
    pub fn request(&self, name: &'static str, key: &'static str) {
        if let Ok(mut c) = self.counts.lock() {
            *c.requests.entry(name).or_default() += 1;
            *c.routes.entry(key).or_default() += 1;
        }
    }

    /// Records one thing a write made.
    pub fn made(&self, what: Made) {
        if let Ok(mut c) = self.counts.lock() {
            let w = &mut c.writes;
            match what {
                Made::Storage => w.storage_created += 1,
                Made::Item => w.items_created += 1,
                Made::Version => w.versions_created += 1,
                Made::Folder => w.folders_created += 1,
                Made::Upload => w.uploads_completed += 1,
                Made::ItemRenamed => w.items_renamed += 1,
                Made::VersionRenamed => w.versions_renamed += 1,
                Made::FolderRenamed => w.folders_renamed += 1,
                Made::FolderMoved => w.folders_moved += 1,
                Made::FolderHidden => w.folders_hidden += 1,
                Made::FolderRestored => w.folders_restored += 1,
                Made::Tombstone => w.tombstones += 1,
            }
        }
    }

    /// Records one upload part stored, of `bytes` bytes.
    pub fn part(&self, bytes: u64) {
        if let Ok(mut c) = self.counts.lock() {
            c.writes.parts_put += 1;
            c.writes.part_bytes += bytes;
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
        let w = &c.writes;
        json!({
            "requests": map(&c.requests),
            "routes": map(&c.routes),
            "writes": {
                "storage_created": w.storage_created,
                "items_created": w.items_created,
                "versions_created": w.versions_created,
                "folders_created": w.folders_created,
                "parts_put": w.parts_put,
                "part_bytes": w.part_bytes,
                "uploads_completed": w.uploads_completed,
                "items_renamed": w.items_renamed,
                "versions_renamed": w.versions_renamed,
                "folders_renamed": w.folders_renamed,
                "folders_moved": w.folders_moved,
                "folders_hidden": w.folders_hidden,
                "folders_restored": w.folders_restored,
                "tombstones": w.tombstones,
            },
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
