//! What the mount does when the service cannot be reached: paths keep resolving from the
//! listings it already has, however old, so files kept on disk (pinned) stay readable offline.
//! Only an unreachable service (network errors, timeouts) counts: a service that answers with
//! an error is believed.

use super::error::Error;
use crate::api::ApiError;
use crate::cache::metadata::{Listing, MetaCache};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// After a revalidation failed for want of a network, stale listings are served without asking
/// for this long, so an offline mount answers every lookup at once instead of after a full round
/// of retries (about 15 s each); then the service is tried again.
pub const OFFLINE_RETRY: Duration = Duration::from_secs(30);

/// How long before an operation's deadline a listing fetch gives up, so a service that does
/// not answer at all (a black-holed network: connections that never complete) still leaves
/// the operation time to serve the cached listing.
pub const OFFLINE_MARGIN: Duration = Duration::from_secs(2);

/// Whether the service was found unreachable lately.
#[derive(Default)]
pub struct Offline {
    until: Mutex<Option<Instant>>,
}

impl Offline {
    /// The cached listing of `dir`, however old, while the service is known to be unreachable.
    pub fn stale(&self, cache: &MetaCache, dir: u64) -> Option<Arc<Listing>> {
        let until = (*self.until.lock().ok()?)?;
        if Instant::now() >= until {
            return None;
        }
        cache.peek(dir)
    }

    /// A listing was fetched: the service is reachable.
    pub fn reached(&self) {
        if let Ok(mut u) = self.until.lock() {
            *u = None;
        }
    }

    /// A listing fetch of `dir` failed with `e`. When the service is unreachable and a listing
    /// of `dir` is cached, that listing is the answer (with a warning) rather than an error.
    pub fn fallback(&self, cache: &MetaCache, dir: u64, e: Error) -> Result<Arc<Listing>, Error> {
        let unreachable = matches!(
            e,
            Error::Remote(ApiError::Network(_) | ApiError::Timeout(_))
        );
        match cache.peek(dir).filter(|_| unreachable) {
            Some(l) => {
                tracing::warn!(
                    error = %e,
                    dir,
                    age_secs = l.age().as_secs(),
                    "service unreachable; serving the cached listing"
                );
                if let Ok(mut u) = self.until.lock() {
                    *u = Some(Instant::now() + OFFLINE_RETRY);
                }
                Ok(l)
            }
            None => Err(e),
        }
    }
}
