//! The filesystem model as plain async Rust over the `Remote` seam. `Fs` is a coordinator: each
//! operation asks the part that owns the state (the namespace for inodes and listings, the
//! handle table for open files and directories, the read path, extended attributes, pins) and
//! answers in the filesystem's terms. `fuse.rs` is the only file that knows the FUSE library.
//!
//! Locks belong to the parts and are declared there with their order; `Fs` itself holds none.

pub mod ahead;
pub mod attr;
pub mod buckets;
pub mod caller;
pub mod config;
pub mod error;
pub mod fuse;
pub mod handles;
pub mod inode;
pub mod listing;
pub mod names;
pub mod namespace;
pub mod offline;
pub mod pace;
pub mod pins;
pub mod prefetch;
pub mod read;
pub mod write;
pub mod writing;
pub mod xattr;

pub use config::{FsConfig, Scope};
pub use error::{Error, Op};
pub use listing::{BUCKETS_DIR, VERSIONS_DIR};
pub use write::WriteConfig;

/// Read on the mount's root: what this mount asked of the service since it started
/// (`crate::stats`), as JSON, for `apsfs status`.
pub const STATS_XATTR: &str = "user.apsfs.stats";
pub use writing::{RenameFlags, SetAttr};

use crate::api::Remote;
use attr::Attr;
use bytes::Bytes;
use handles::{Handle, Handles};
use inode::{Kind, ROOT};
use namespace::Namespace;
use std::sync::Arc;
use std::time::Duration;

/// One directory entry as `readdir` returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct DirEntry {
    /// Inode.
    pub ino: u64,
    /// Offset of the next entry.
    pub next: u64,
    /// Directory or file.
    pub is_dir: bool,
    /// Name.
    pub name: String,
}

impl DirEntry {
    /// Whether handing the entry over with its attributes counts as a lookup the kernel will
    /// later forget (`.` and `..` do not).
    fn counts_as_lookup(&self) -> bool {
        self.name != "." && self.name != ".."
    }
}

/// The filesystem over a remote.
pub struct Fs<R: Remote> {
    ns: Namespace<R>,
    handles: Handles<R>,
    source: Arc<read::ByteSource<R>>,
    budget: prefetch::Budget,
    ahead: Arc<ahead::Ahead<R>>,
    xattrs: xattr::Xattrs,
    pins: pins::Pins,
    /// The overlay of a read-write mount.
    writes: Option<Arc<write::Writes<R>>>,
    /// The mount's own user id, when known (reservations by it are its own).
    user_id: Option<String>,
}

impl<R: Remote> Fs<R> {
    /// A read-only filesystem showing `scope` of `remote`.
    pub fn new(remote: Arc<R>, scope: Scope, config: FsConfig) -> Fs<R> {
        let source = Arc::new(read::ByteSource::new(remote.clone(), config.disk.clone()));
        Fs::build(remote, scope, config, source, None)
    }

    /// A read-write filesystem showing `scope` of `remote`, its changes kept as `write`
    /// says (the journal there replayed: saves a previous mount did not finish resume). Its
    /// reconciler runs once `start_writes` is called inside a runtime.
    pub fn writable_with(
        remote: Arc<R>,
        scope: Scope,
        mut config: FsConfig,
        write: WriteConfig,
    ) -> Result<Fs<R>, String> {
        let source = Arc::new(read::ByteSource::new(remote.clone(), config.disk.clone()));
        let (uid, gid) = (config.uid, config.gid);
        let writes = write::Writes::open(
            remote.clone(),
            source.clone(),
            config.disk.clone(),
            write,
            uid,
            gid,
        )?;
        config.made = Some(writes.made());
        Ok(Fs::build(
            remote,
            scope,
            config,
            source,
            Some(Arc::new(writes)),
        ))
    }

    fn build(
        remote: Arc<R>,
        scope: Scope,
        config: FsConfig,
        source: Arc<read::ByteSource<R>>,
        writes: Option<Arc<write::Writes<R>>>,
    ) -> Fs<R> {
        let budget = prefetch::Budget::new(config.prefetch_memory);
        Fs {
            ns: Namespace::new(remote.clone(), scope, &config),
            handles: Handles::default(),
            ahead: Arc::new(ahead::Ahead::new(remote, source.clone(), budget.clone())),
            source,
            budget,
            xattrs: xattr::Xattrs::new(config.ttl),
            pins: pins::Pins::new(config.disk),
            user_id: config.user_id.clone(),
            writes,
        }
    }

    /// Starts sending the overlay's changes to the service (a read-write mount's reconciler),
    /// on the current runtime.
    pub fn start_writes(&self) {
        if let Some(w) = &self.writes {
            tokio::spawn(w.clone().run());
        }
    }

    /// Sends pending changes now (of the folder `ino` is or is in; all with `None`), waiting
    /// up to `limit` for them with `wait`; what is still pending.
    pub async fn sync(&self, ino: Option<u64>, wait: bool, limit: Duration) -> Vec<write::Queued> {
        let Some(w) = &self.writes else {
            return Vec::new();
        };
        let folder = ino.and_then(|ino| {
            self.overlay_folder(ino).or_else(|| {
                let parent = w
                    .by_ino(ino)
                    .map(|e| e.parent)
                    .or_else(|| self.ns.node(ino).ok().map(|n| n.parent))?;
                self.overlay_folder(parent)
            })
        });
        w.sync(folder.as_deref(), wait, limit).await
    }

    /// The overlay's queue (`apsfs status`).
    pub fn queue(&self) -> Vec<write::Queued> {
        self.writes.as_ref().map(|w| w.queue()).unwrap_or_default()
    }

    /// The queue as the `user.apsfs.queue` attribute shows it (JSON).
    fn queue_report(&self) -> Result<Vec<u8>, Error> {
        let w = self.writes()?;
        let report = write::QueueReport::of(w.queue(), w.kinds());
        serde_json::to_vec(&report).map_err(|e| Error::Internal(e.to_string()))
    }

    /// The remote's sign that storage is still delivering bytes, which operation deadlines
    /// watch (see `api::deadline`).
    pub fn feed(&self) -> Option<Arc<crate::deadline::Feed>> {
        self.ns.remote().feed()
    }

    /// Whether this mount may change anything. Decided here alone, so the mount options,
    /// `access(W_OK)`, opening for writing and every changing operation agree.
    pub fn writable(&self) -> bool {
        self.writes.is_some()
    }

    /// `Ok` when `op`, which would change something, may go ahead.
    pub fn may_change(&self, _op: Op) -> Result<(), Error> {
        if self.writable() {
            Ok(())
        } else {
            Err(Error::ReadOnly)
        }
    }

    /// `lookup`: a child of `parent` by name, and how long the kernel may trust the name.
    pub async fn lookup(&self, parent: u64, name: &str) -> Result<(Attr, Duration), Error> {
        if self.lookup_local(parent, name).is_some() {
            self.recheck_committed(parent, name).await;
            if let Some(local) = self.lookup_local(parent, name) {
                return local;
            }
        }
        // Twice at most: under memory pressure a listing can be evicted (and its inodes dropped)
        // between finding a name and answering for it; fetching it again brings them back.
        for attempt in 0..2 {
            let listing = self.ns.listing(parent).await?;
            let ino = match listing.lookup(name) {
                Some(ino) => ino,
                // A folder's own versions directory (a real entry of that name was renamed).
                None if name == VERSIONS_DIR => {
                    self.ns.versions_dir(parent)?.ok_or(Error::NotFound)?
                }
                None => return Err(Error::NotFound),
            };
            let answer = match self.ns.ensure_size(ino).await {
                Ok(()) => self.ns.attr_remembered(ino),
                Err(e) => Err(e),
            };
            match answer {
                Ok(attr) => return Ok((attr, self.ns.remaining(&listing))),
                Err(Error::NotFound) if attempt == 0 => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::NotFound)
    }

    /// `getattr`. A file inode is one version, which never changes, so its attributes are
    /// answered as they are and may be cached for long; a directory's come from its parent's
    /// listing, refreshed when stale.
    pub async fn getattr(&self, ino: u64) -> Result<(Attr, Duration), Error> {
        if let Some(attr) = self.writes.as_ref().and_then(|w| w.attr(ino)) {
            return Ok((attr, writing::LOCAL_TTL));
        }
        if ino == ROOT {
            return Ok((self.ns.attr(ROOT)?, self.ns.ttl()));
        }
        let node = self.ns.node(ino)?;
        if !node.is_dir() {
            self.ns.ensure_size(ino).await?;
            return Ok((self.ns.attr(ino)?, attr::VERSION_ATTR_TTL));
        }
        if node.kind.lists_its_folder() {
            // Named by no listing: it lives as long as its folder.
            return Ok((self.ns.attr(ino)?, self.ns.ttl()));
        }
        let listing = self.ns.listing(node.parent).await?;
        if !listing.contains(ino) {
            return Err(Error::NotFound);
        }
        Ok((self.ns.attr(ino)?, self.ns.remaining(&listing)))
    }

    /// `opendir`: snapshots the listing so offsets stay valid while it is read.
    pub async fn opendir(&self, ino: u64) -> Result<u64, Error> {
        let local_dir = self.writes.as_ref().and_then(|w| w.local_folder(ino));
        let listing = match local_dir {
            Some(_) => Arc::new(crate::cache::metadata::Listing::new(Vec::new())),
            None => self.ns.hold(ino).await?,
        };
        let listing = self.with_overlay(ino, listing);
        self.handles.insert(Handle::Dir(listing, Arc::default()))
    }

    /// How long the kernel may keep `attr` (answered with a name trusted for `ttl`): a
    /// directory's as long as its name, an overlay file's briefly, a version's for long.
    pub fn attr_ttl(&self, attr: &Attr, ttl: Duration) -> Duration {
        if attr.is_dir {
            ttl
        } else if self
            .writes
            .as_ref()
            .is_some_and(|w| w.by_ino(attr.ino).is_some())
        {
            writing::LOCAL_TTL
        } else {
            attr::VERSION_ATTR_TTL
        }
    }

    /// The parent of directory `ino`.
    fn parent_of(&self, ino: u64) -> Result<u64, Error> {
        match self.writes.as_ref().and_then(|w| w.by_ino(ino)) {
            Some(e) => Ok(e.parent),
            None => Ok(self.ns.node(ino)?.parent),
        }
    }

    /// `readdir`: entries from `offset` (`.` and `..` first) — some, not necessarily all: as
    /// many as the kernel took last time (see `pace.rs`), so each call costs what it returns
    /// and listing a directory is linear in its size. An empty answer means the end.
    pub fn readdir(&self, ino: u64, fh: u64, offset: u64) -> Result<Vec<DirEntry>, Error> {
        let (listing, pace) = self.handles.dir(fh)?;
        let parent = self.parent_of(ino)?;
        let from = usize::try_from(offset).unwrap_or(usize::MAX);
        let to = from.saturating_add(pace.batch(offset));
        let entry = |k: usize| {
            let (ino, is_dir, name) = match k {
                0 => (ino, true, "."),
                1 => (parent, true, ".."),
                _ => {
                    let (name, ino, is_dir) = listing.entries.get(k - 2)?;
                    (*ino, *is_dir, name.as_str())
                }
            };
            Some(DirEntry {
                ino,
                next: k as u64 + 1,
                is_dir,
                name: name.to_string(),
            })
        };
        Ok((from..to).map_while(entry).collect())
    }

    /// `readdirplus`: entries after `offset` with their attributes, so `ls -l` and `find -printf`
    /// need no lookups. A file whose size is not known yet gets no cache time, so the kernel asks
    /// `getattr` (which fills it in) before showing it.
    pub fn readdirplus(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
    ) -> Result<Vec<(DirEntry, Attr, Duration)>, Error> {
        let entries = self.readdir(ino, fh, offset)?;
        let ttl = self.ns.remaining(&self.handles.dir(fh)?.0);
        let mut attrs = self
            .ns
            .attrs_remembered(entries.iter().map(|e| (e.ino, e.counts_as_lookup())))?;
        if let Some(w) = &self.writes {
            for (e, a) in entries.iter().zip(attrs.iter_mut()) {
                if let Some(local) = w.attr(e.ino) {
                    *a = Some((local, true));
                }
            }
        }
        Ok(entries
            .into_iter()
            .zip(attrs)
            .filter_map(|(e, attr)| {
                let (attr, known) = attr?;
                Some((e, attr, if known { ttl } else { Duration::ZERO }))
            })
            .collect())
    }

    /// Entries `readdirplus` gave that the kernel never received (its reply buffer was full):
    /// the lookups counted for them are given back, as the kernel will never forget them.
    pub fn not_sent(&self, entries: impl IntoIterator<Item = DirEntry>) {
        for e in entries.into_iter().filter(DirEntry::counts_as_lookup) {
            self.ns.forget(e.ino, 1);
        }
    }

    /// `releasedir`.
    pub fn releasedir(&self, fh: u64) {
        if let Some(Handle::Dir(listing, _)) = self.handles.remove(fh) {
            self.ns.let_go(listing);
        }
    }

    /// `open`: keeps the version current now, so later versions never mix in, gets its signed
    /// URL (with those of the files after it) so the first read is one round trip, and tells
    /// read-ahead across files, which may have fetched its start already.
    pub async fn open(&self, ino: u64, write: bool) -> Result<u64, Error> {
        self.open_with(ino, write, false).await
    }

    /// `open` with `O_TRUNC` told apart (a truncating open of a remote file starts empty
    /// instead of copying the version it replaces).
    pub async fn open_with(&self, ino: u64, write: bool, truncate: bool) -> Result<u64, Error> {
        if let Some(fh) = self.open_local(ino, write, truncate).await? {
            return Ok(fh);
        }
        if write {
            self.may_change(Op::Open)?;
        }
        self.ns.ensure_size(ino).await?;
        let node = self.ns.node(ino)?;
        let Kind::File { version } = node.kind else {
            return Err(Error::IsDir);
        };
        let size = version.size.unwrap_or(0);
        let ended = Arc::new(std::sync::atomic::AtomicBool::new(size == 0));
        let opened = match self.ns.listed(node.parent) {
            Some(listing) => {
                (self.ahead)
                    .opened(node.parent, ino, listing, ended.clone(), &self.ns)
                    .await
            }
            None => ahead::Opened::default(),
        };
        if size > 0 && !opened.signed && !self.source.starts_cached(&version.storage) {
            let (remote, storage) = (self.ns.remote().clone(), version.storage.clone());
            let limit = crate::deadline::inherit();
            tokio::spawn(crate::deadline::detached(limit, async move {
                remote.prepare(&storage).await
            }));
        }
        let file = prefetch::OpenFile::new(
            self.source.clone(),
            &version.storage,
            size,
            self.budget.clone(),
            opened.head,
            ended,
        );
        self.handles.insert(Handle::File(Arc::new(file)))
    }

    /// `read`: at most `size` bytes at `offset` of the open version (fewer only at the end).
    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Bytes, Error> {
        if let Ok(local) = self.handles.local(fh) {
            return self.read_local(&local, offset, size).await;
        }
        let file = self.handles.file(fh)?;
        tracing::trace!(fh, offset, size, "read");
        let data = file.read(offset, u64::from(size)).await?;
        let want = u64::from(size).min(file.size().saturating_sub(offset));
        if data.len() as u64 != want {
            // The kernel takes a short read for the end of the file: never send one elsewhere.
            return Err(Error::Internal(format!(
                "read of {size} at {offset} returned {} bytes",
                data.len()
            )));
        }
        Ok(data)
    }

    /// `release`.
    pub async fn release(&self, fh: u64) {
        if let Some(Handle::Local(file)) = self.handles.remove(fh) {
            self.release_local(file).await;
        }
    }

    /// Whether `fh` is an overlay handle (whose pages the kernel must not keep across opens).
    pub fn is_local_handle(&self, fh: u64) -> bool {
        self.handles.local(fh).is_ok()
    }

    /// `forget`: the kernel dropped `n` references to `ino`.
    pub fn forget(&self, ino: u64, n: u64) {
        self.ns.forget(ino, n);
    }

    /// Number of inodes known, for `statfs`.
    pub fn inode_count(&self) -> u64 {
        self.ns.len() as u64
    }

    /// `listxattr`: the names of `ino`'s attributes, NUL-terminated, without a request.
    pub fn listxattr(&self, ino: u64) -> Result<Vec<u8>, Error> {
        let mut names = match self.writes.as_ref().and_then(|w| w.by_ino(ino)) {
            Some(_) => Vec::new(),
            None => self.xattrs.list(&self.ns, ino)?,
        };
        if self.sync_xattr(ino).is_some() {
            names.extend_from_slice(write::SYNC_XATTR.as_bytes());
            names.push(0);
        }
        Ok(names)
    }

    /// `getxattr` without waiting: the value when no request is needed, `None` when it must be
    /// fetched (then `getxattr` fetches it).
    pub fn xattr_now(&self, ino: u64, name: &str) -> Result<Option<Vec<u8>>, Error> {
        xattr::check_name(name)?;
        if name == write::SYNC_XATTR {
            if let Some(v) = self.sync_xattr(ino) {
                return Ok(Some(v));
            }
        }
        if name == write::QUEUE_XATTR && ino == ROOT && self.writes.is_some() {
            return self.queue_report().map(Some);
        }
        if name == STATS_XATTR && ino == ROOT {
            let snapshot = crate::stats::snapshot();
            return serde_json::to_vec(&snapshot)
                .map(Some)
                .map_err(|e| Error::Internal(e.to_string()));
        }
        if name.starts_with(write::PUSH_XATTR) && self.writes.is_some() {
            return Ok(None);
        }
        if self
            .writes
            .as_ref()
            .is_some_and(|w| w.by_ino(ino).is_some())
        {
            return Err(Error::NoAttribute);
        }
        if let Some(control) = self.pins.control_xattr(&self.ns, ino, name) {
            return control.map(Some);
        }
        self.xattrs.now(&self.ns, ino, name)
    }

    /// `getxattr`: one attribute's value, fetched when it is one of those fetched on demand.
    pub async fn getxattr(&self, ino: u64, name: &str) -> Result<Vec<u8>, Error> {
        if let Some(wait) = write::push_wait(name) {
            // Within the operation's deadline (leaving a second to answer) and what was asked.
            let limit = crate::deadline::remaining()
                .map_or(Duration::from_secs(50), |r| {
                    r.saturating_sub(Duration::from_secs(1))
                })
                .min(wait.unwrap_or(Duration::ZERO).max(Duration::from_secs(1)));
            let at = (ino != ROOT).then_some(ino);
            self.sync(at, wait.is_some(), limit).await;
            return self.queue_report();
        }
        if let Some(v) = self.xattr_now(ino, name)? {
            return Ok(v);
        }
        self.xattrs.get(&self.ns, ino, name).await
    }

    /// `apsfs pin` on an open file: keeps its version on disk; returns whether it was not
    /// pinned before.
    pub async fn pin(&self, ino: u64) -> Result<bool, Error> {
        self.pins.pin(&self.ns, ino).await
    }

    /// `apsfs unpin` on an open file; returns how many pins that removed.
    pub fn unpin(&self, ino: u64) -> Result<usize, Error> {
        self.pins.unpin(&self.ns, ino)
    }
}

#[cfg(test)]
mod ahead_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod rename_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod write_model;
#[cfg(test)]
mod write_tests;
