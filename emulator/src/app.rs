//! The shared state of a running emulator, which every handler reads and the server owns.

use super::auth::Auth;
use super::clock::Clock;
use super::faults::Faults;
use super::ratelimit::RateLimiter;
use super::stats::Stats;
use super::store::Store;
use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

/// An in-progress `signeds3upload` session.
pub struct Upload {
    /// Target bucket.
    pub bucket: String,
    /// Target object key.
    pub key: String,
    /// Parts received so far, by part number.
    pub parts: std::collections::BTreeMap<u32, bytes::Bytes>,
    /// Start time (epoch ms); parts are discarded 24 h later.
    pub started_ms: i64,
}

/// Shared state of a running emulator.
pub struct App {
    /// The world. Writers are rare (uploads); no lock is held across an await.
    pub store: RwLock<Store>,
    /// Tokens, codes, clients.
    pub auth: Auth,
    /// Emulator time.
    pub clock: Clock,
    /// Request counters.
    pub stats: Stats,
    /// Fault settings.
    pub faults: Faults,
    /// Documented limits, when enabled.
    pub limiter: Option<RateLimiter>,
    /// Public base URL (`http://host:port`) used in every absolute href.
    pub base: String,
    /// Base URL of the foreign origin (same host, another port) the `redirect` knob points to.
    pub foreign: String,
    /// Key signing download and upload URLs.
    pub signing_key: [u8; 32],
    /// Upload sessions by upload key.
    pub uploads: Mutex<HashMap<String, Upload>>,
    /// SHA-1 of objects already hashed, by `bucket/key`.
    pub sha1s: Mutex<HashMap<String, String>>,
}
