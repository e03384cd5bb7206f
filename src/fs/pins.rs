//! Keeping files on this device: the mount side of `apsfs pin`, `unpin` and `status`.
//!
//! The control channel is the mount itself, so the command needs no socket and finds the right
//! mount by path. Pinning and unpinning are ioctls on an open file: the mount is read-only, and
//! on a read-only mount (and on files without write permission) the kernel refuses
//! `setxattr`/`removexattr` before the filesystem ever sees them, whereas an ioctl on a file
//! opened for reading reaches it. Reading progress and status are extended attributes, which
//! the kernel passes on for reading: `user.apsfs.cached` on a file (bytes of its version on
//! disk, decimal) and `user.apsfs.status` on the mount root (JSON, see `Status`).

use super::error::Error;
use super::inode::{Kind, ROOT};
use super::namespace::Namespace;
use crate::api::Remote;
use crate::cache::disk::{DiskCache, PinError};
use crate::cache::pins::Pin;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `ioctl` type byte of apsfs's commands (unused by the kernel's own file ioctls).
const IOC_TYPE: u32 = 0xA5;

/// `_IO(IOC_TYPE, nr)`: a command that carries no data either way.
const fn io(nr: u32) -> u32 {
    (IOC_TYPE << 8) | nr
}

/// ioctl: pin the version of the open file in the disk cache (it is downloaded by reading it);
/// answers 1 when it was not pinned before, 0 when it was.
pub const IOC_PIN: u32 = io(1);
/// ioctl: unpin the open file (every version of it); answers how many pins were removed.
pub const IOC_UNPIN: u32 = io(2);
/// Extended attribute of a file: how many bytes of its version are in the disk cache.
pub const XATTR_CACHED: &str = "user.apsfs.cached";
/// Extended attribute of the mount root: the cache and its pins as JSON (`Status`). Pins after
/// the first page are at `user.apsfs.status.<index>`, as `Status::next` says.
pub const XATTR_STATUS: &str = "user.apsfs.status";

/// An extended attribute value is at most 64 KiB: status pages stay well below.
const STATUS_PAGE: usize = 48 << 10;

/// What `apsfs status` shows of one mount.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Status {
    /// The disk cache directory; `None` for a mount without `--cache-dir`.
    pub cache_dir: Option<String>,
    /// The cache's size bound.
    pub capacity: u64,
    /// Bytes the cache holds.
    pub used: u64,
    /// Number of pinned files.
    pub pinned_files: usize,
    /// Bytes of all pinned files.
    pub pinned_bytes: u64,
    /// Bytes of pinned files on disk.
    pub pinned_cached: u64,
    /// Pinned files from index `from` on, as many as fit in one attribute value.
    pub pins: Vec<PinStatus>,
    /// Index of the first pin not on this page, if any.
    pub next: Option<usize>,
}

/// One pinned file in `Status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PinStatus {
    /// Path inside the mount when it was pinned.
    pub path: String,
    /// Bytes of the pinned version.
    pub size: u64,
    /// Bytes of it on disk.
    pub cached: u64,
}

/// The mount's pins: its disk cache, when it has one.
pub struct Pins {
    disk: Option<Arc<DiskCache>>,
}

/// Pins need somewhere to keep the bytes.
fn no_cache() -> Error {
    Error::Unsupported("pinning needs a mount with --cache-dir")
}

impl Pins {
    /// Pins kept in `disk`.
    pub fn new(disk: Option<Arc<DiskCache>>) -> Pins {
        Pins { disk }
    }

    /// `IOC_PIN`: keeps the version `ino` shows on disk, replacing a pin of an older version;
    /// returns whether it was not pinned before.
    pub async fn pin<R: Remote>(&self, ns: &Namespace<R>, ino: u64) -> Result<bool, Error> {
        let disk = self.disk.as_ref().ok_or_else(no_cache)?;
        ns.ensure_size(ino).await?;
        let (item, storage, size) = file_version(ns, ino)?;
        // The pin command has just looked the file up, so its listings are cached.
        let path = ns.path_of(ino).unwrap_or_else(|| "…".to_string());
        disk.pin(&storage, Pin { path, item, size })
            .map_err(|e| match e {
                PinError::NoSpace { .. } => Error::NoSpace(e.to_string()),
                e => Error::Internal(format!("cannot pin: {e}")),
            })
    }

    /// `IOC_UNPIN`: lets the cache evict every version of the file `ino` again; returns how
    /// many pins that removed (0 when it was not pinned).
    pub fn unpin<R: Remote>(&self, ns: &Namespace<R>, ino: u64) -> Result<usize, Error> {
        let disk = self.disk.as_ref().ok_or_else(no_cache)?;
        let (item, storage, _) = file_version(ns, ino)?;
        disk.unpin(&storage, &item)
            .map_err(|e| Error::Internal(format!("cannot unpin: {e}")))
    }

    /// The value of apsfs's own read-only extended attribute `name` of `ino`; `None` when
    /// `name` is not one of them (then it is an ordinary attribute, or none).
    pub fn control_xattr<R: Remote>(
        &self,
        ns: &Namespace<R>,
        ino: u64,
        name: &str,
    ) -> Option<Result<Vec<u8>, Error>> {
        if name == XATTR_CACHED {
            return Some(self.cached(ns, ino).map(|n| n.to_string().into_bytes()));
        }
        let from = match name.strip_prefix(XATTR_STATUS)? {
            "" => 0,
            page => page.strip_prefix('.')?.parse().ok()?,
        };
        (ino == ROOT).then(|| self.status(from))
    }

    /// Bytes of the version `ino` shows that are on disk.
    fn cached<R: Remote>(&self, ns: &Namespace<R>, ino: u64) -> Result<u64, Error> {
        let disk = self.disk.as_ref().ok_or_else(no_cache)?;
        let (_, storage, size) = file_version(ns, ino)?;
        Ok(disk.cached(&storage, size))
    }

    /// The status document, with pins from index `from` on.
    fn status(&self, from: usize) -> Result<Vec<u8>, Error> {
        let Some(disk) = &self.disk else {
            return serde_json::to_vec(&Status::default()).map_err(json_error);
        };
        let mut pins = disk.pins();
        pins.sort_by(|a, b| a.1.path.cmp(&b.1.path));
        let mut status = Status {
            cache_dir: Some(disk.dir().display().to_string()),
            capacity: disk.capacity(),
            used: disk.used(),
            pinned_files: pins.len(),
            ..Status::default()
        };
        let mut page_bytes = 0;
        for (i, (storage, pin)) in pins.into_iter().enumerate() {
            let cached = disk.cached(&storage, pin.size);
            status.pinned_bytes += pin.size;
            status.pinned_cached += cached;
            if i < from || status.next.is_some() {
                continue;
            }
            // Rough size of the entry as JSON: its path plus the fixed part.
            page_bytes += pin.path.len() + 64;
            if page_bytes > STATUS_PAGE && !status.pins.is_empty() {
                status.next = Some(i);
                continue;
            }
            status.pins.push(PinStatus {
                path: pin.path,
                size: pin.size,
                cached,
            });
        }
        serde_json::to_vec(&status).map_err(json_error)
    }
}

/// A status document that cannot be written as JSON (it always can: it holds strings and
/// numbers).
fn json_error(e: serde_json::Error) -> Error {
    Error::Internal(format!("status as JSON: {e}"))
}

/// Item id, storage urn and size of the version file `ino` shows.
fn file_version<R: Remote>(ns: &Namespace<R>, ino: u64) -> Result<(String, String, u64), Error> {
    let node = ns.node(ino)?;
    let item = node.item().to_string();
    let Kind::File { version } = node.kind else {
        return Err(Error::IsDir);
    };
    Ok((item, version.storage, version.size.unwrap_or(0)))
}
