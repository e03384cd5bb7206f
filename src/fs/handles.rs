//! Open directories and files, by the handle number the kernel passes back on every call.

use super::error::{poisoned, Error};
use super::pace::Pace;
use super::prefetch::OpenFile;
use crate::api::Remote;
use crate::cache::metadata::Listing;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What a handle stands for.
pub enum Handle<R: Remote> {
    /// An open directory: the listing as it was when opened, so offsets stay valid while it
    /// is read however the directory changes meanwhile, and how much of it a call builds.
    Dir(Arc<Listing>, Arc<Pace>),
    /// An open file: one version, read through read-ahead.
    File(Arc<OpenFile<R>>),
}

/// The handles a mount has given out.
pub struct Handles<R: Remote> {
    next: AtomicU64,
    // Taken for a lookup or an insert only, never with another lock held.
    open: Mutex<HashMap<u64, Handle<R>>>,
}

impl<R: Remote> Default for Handles<R> {
    fn default() -> Self {
        Handles {
            next: AtomicU64::new(1),
            open: Mutex::default(),
        }
    }
}

impl<R: Remote> Handles<R> {
    /// Gives `handle` a new number.
    pub fn insert(&self, handle: Handle<R>) -> Result<u64, Error> {
        let fh = self.next.fetch_add(1, Ordering::Relaxed);
        self.open.lock().map_err(poisoned)?.insert(fh, handle);
        Ok(fh)
    }

    /// The listing of open directory `fh`, and its pace.
    pub fn dir(&self, fh: u64) -> Result<(Arc<Listing>, Arc<Pace>), Error> {
        match self.open.lock().map_err(poisoned)?.get(&fh) {
            Some(Handle::Dir(listing, pace)) => Ok((listing.clone(), pace.clone())),
            _ => Err(Error::BadHandle),
        }
    }

    /// Open file `fh`.
    pub fn file(&self, fh: u64) -> Result<Arc<OpenFile<R>>, Error> {
        match self.open.lock().map_err(poisoned)?.get(&fh) {
            Some(Handle::File(file)) => Ok(file.clone()),
            _ => Err(Error::BadHandle),
        }
    }

    /// Forgets `fh` (release, releasedir), handing back what it stood for.
    pub fn remove(&self, fh: u64) -> Option<Handle<R>> {
        self.open.lock().ok()?.remove(&fh)
    }
}
