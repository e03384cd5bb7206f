//! Open directories and files, by the handle number the kernel passes back on every call.

use super::error::{poisoned, Error};
use super::pace::Pace;
use super::prefetch::OpenFile;
use super::write::ops::RemoteFile;
use super::write::Place;
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
    /// A file of a read-write mount's overlay, or a remote file opened for writing.
    Local(Arc<LocalFile<R>>),
}

/// An open overlay file, or a remote file opened for writing whose bytes are only copied into
/// the overlay at its first change (an open that never writes changes nothing).
pub struct LocalFile<R: Remote> {
    /// The inode opened.
    pub ino: u64,
    /// Where its name lives.
    pub at: Place,
    /// The overlay entry, once there is one.
    pub entry: tokio::sync::Mutex<Option<u64>>,
    /// What a remote file opened for writing starts from.
    pub remote: Option<RemoteFile>,
    /// Reads of that remote file before its first change.
    pub reader: Option<Arc<OpenFile<R>>>,
    /// Whether it was opened for writing.
    pub write: bool,
}

impl<R: Remote> LocalFile<R> {
    /// An open overlay file.
    pub fn new(
        ino: u64,
        at: Place,
        entry: Option<u64>,
        remote: Option<RemoteFile>,
        reader: Option<Arc<OpenFile<R>>>,
        write: bool,
    ) -> LocalFile<R> {
        LocalFile {
            ino,
            at,
            entry: tokio::sync::Mutex::new(entry),
            remote,
            reader,
            write,
        }
    }
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

    /// Open overlay file `fh`.
    pub fn local(&self, fh: u64) -> Result<Arc<LocalFile<R>>, Error> {
        match self.open.lock().map_err(poisoned)?.get(&fh) {
            Some(Handle::Local(file)) => Ok(file.clone()),
            _ => Err(Error::BadHandle),
        }
    }

    /// Forgets `fh` (release, releasedir), handing back what it stood for.
    pub fn remove(&self, fh: u64) -> Option<Handle<R>> {
        self.open.lock().ok()?.remove(&fh)
    }
}
