//! The filesystem model: inodes, names, listings, open files and the read path, as plain async
//! Rust over the `Remote` seam. `fuse.rs` is the only file that knows the FUSE library.
//!
//! Locks: `inodes` (std `RwLock`), `dirs` and `files` (std `Mutex`) are taken one at a time and
//! never held across an `.await`; `fetching` hands out one async mutex per directory so a
//! listing is fetched once however many lookups want it at the same moment.

pub mod attr;
pub mod buckets;
pub mod fuse;
pub mod inode;
pub mod listing;
pub mod names;
pub mod offline;
pub mod pins;
pub mod prefetch;
pub mod read;
pub mod xattr;

use crate::api::{ApiError, Remote};
use crate::cache::metadata::{Listing, MetaCache};
use attr::Attr;
use bytes::Bytes;
use inode::{Inodes, Kind, Node, ROOT};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

/// How long the kernel may cache a file inode's attributes: an inode is one immutable
/// version, so only the name-to-inode mapping (the listing's TTL) ever needs revalidating.
pub const VERSION_ATTR_TTL: Duration = Duration::from_secs(3600);

/// How many TTLs a listing may be kept alive by rollup confirmations before it is fetched
/// again anyway (ten minutes with the default TTL).
const CONFIRMED_TTLS: u32 = 10;

/// An errno for a failed operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// No such file or directory.
    pub const NOENT: Errno = Errno(libc::ENOENT);
    /// Read-only filesystem.
    pub const ROFS: Errno = Errno(libc::EROFS);
    /// Not a directory.
    pub const NOTDIR: Errno = Errno(libc::ENOTDIR);
    /// Is a directory.
    pub const ISDIR: Errno = Errno(libc::EISDIR);
    /// Bad file handle.
    pub const BADF: Errno = Errno(libc::EBADF);
    /// No such attribute.
    pub const NODATA: Errno = Errno(libc::ENODATA);
    /// Internal trouble (a poisoned lock).
    pub const IO: Errno = Errno(libc::EIO);
}

impl From<ApiError> for Errno {
    /// Every API failure reaching a filesystem operation passes here, and is logged once.
    fn from(e: ApiError) -> Errno {
        let errno = e.errno();
        match e {
            ApiError::NotFound(_) => tracing::info!(error = %e, errno, "remote resource not found"),
            _ => tracing::warn!(error = %e, errno, "request failed"),
        }
        Errno(errno)
    }
}

/// What a mount shows at its root.
#[derive(Clone, Debug)]
pub enum Scope {
    /// Every hub: `MOUNT/<hub>/<project>/<top folder>/…`.
    All,
    /// One project: its top folders at `MOUNT/`.
    Project {
        /// Hub id.
        hub: String,
        /// Project id.
        project: String,
    },
}

/// Tunables of a mount.
#[derive(Clone)]
pub struct FsConfig {
    /// How long a listing is trusted.
    pub ttl: Duration,
    /// Bytes all read-ahead together may hold.
    pub prefetch_memory: u64,
    /// The disk cache, when enabled.
    pub disk: Option<Arc<crate::cache::disk::DiskCache>>,
    /// How many listings are kept.
    pub max_dirs: usize,
    /// How many entries all kept listings may hold together.
    pub max_entries: usize,
    /// Owner of every inode.
    pub uid: u32,
    /// Group of every inode.
    pub gid: u32,
    /// Show the app's own OSS buckets of this region under `buckets/` at the root.
    pub buckets: Option<String>,
}

/// The name of the directory of every version of a folder's files; not listed, so walks and
/// backups never descend into it, but found by name.
pub const VERSIONS_DIR: &str = ".versions";

/// The name of the directory of the app's own buckets at the root.
pub const BUCKETS_DIR: &str = "buckets";

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

/// The filesystem over a remote.
pub struct Fs<R: Remote> {
    remote: Arc<R>,
    inodes: RwLock<Inodes>,
    cache: MetaCache,
    fetching: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    dirs: Mutex<HashMap<u64, Arc<Listing>>>,
    files: Mutex<HashMap<u64, Arc<prefetch::OpenFile<R>>>>,
    source: Arc<read::ByteSource<R>>,
    budget: prefetch::Budget,
    next_fh: AtomicU64,
    config: FsConfig,
    started: SystemTime,
    objects: buckets::ObjectLists,
    interned: Mutex<std::collections::HashSet<Arc<str>>>,
    refs: xattr::OnDemand,
    offline: offline::Offline,
}

fn poisoned<T>(_: T) -> Errno {
    tracing::error!("internal lock poisoned");
    Errno::IO
}

impl<R: Remote> Fs<R> {
    /// A filesystem showing `scope` of `remote`.
    pub fn new(remote: Arc<R>, scope: Scope, config: FsConfig) -> Fs<R> {
        let now = SystemTime::now();
        let (id, kind) = match scope {
            Scope::All => (String::new(), Kind::Hubs),
            Scope::Project { hub, project } => (project.clone(), Kind::Project { hub, project }),
        };
        let root = Node {
            id,
            parent: ROOT,
            kind,
            created: now,
            modified: now,
            meta: crate::api::Meta::default(),
        };
        Fs {
            source: Arc::new(read::ByteSource::new(remote.clone(), config.disk.clone())),
            budget: prefetch::Budget::new(config.prefetch_memory),
            remote,
            inodes: RwLock::new(Inodes::new(root)),
            cache: MetaCache::new(config.ttl, config.max_dirs, config.max_entries),
            fetching: Mutex::default(),
            dirs: Mutex::default(),
            files: Mutex::default(),
            next_fh: AtomicU64::new(1),
            objects: buckets::ObjectLists::new(config.ttl),
            refs: xattr::on_demand(config.ttl),
            interned: Mutex::default(),
            config,
            started: now,
            offline: offline::Offline::default(),
        }
    }

    fn node(&self, ino: u64) -> Result<Node, Errno> {
        self.inodes
            .read()
            .map_err(poisoned)?
            .get(ino)
            .cloned()
            .ok_or(Errno::NOENT)
    }

    fn attr(&self, ino: u64) -> Result<Attr, Errno> {
        let node = self.node(ino)?;
        Ok(attr::of(ino, &node, self.config.uid, self.config.gid))
    }

    /// The listing of directory `dir`, fetched at most once per TTL however many callers ask.
    async fn listing(&self, dir: u64) -> Result<Arc<Listing>, Errno> {
        if let Some(l) = self.cache.fresh(dir) {
            return Ok(l);
        }
        if let Some(l) = self.offline.stale(&self.cache, dir) {
            return Ok(l);
        }
        let lock = {
            let mut f = self.fetching.lock().map_err(poisoned)?;
            f.entry(dir).or_default().clone()
        };
        let result = async {
            let _guard = lock.lock().await;
            if let Some(l) = self.cache.fresh(dir) {
                return Ok(l);
            }
            let node = self.node(dir)?;
            if !node.is_dir() {
                return Err(Errno::NOTDIR);
            }
            let validator = match &node.kind {
                Kind::Folder { rollup, .. } => rollup.clone(),
                _ => None,
            };
            let children = match &node.kind {
                Kind::Versions { project } => {
                    Some(self.versions_children(project, node.parent).await?)
                }
                _ => match listing::fetch(&*self.remote, &self.objects, &node).await {
                    Ok(c) => {
                        self.offline.reached();
                        c
                    }
                    Err(e) => return self.offline.fallback(&self.cache, dir, e),
                },
            };
            let children = match (children, &self.config.buckets) {
                (Some(mut c), Some(region)) if dir == ROOT => {
                    c.push(listing::Child {
                        id: "oss#".into(),
                        raw: BUCKETS_DIR.into(),
                        kind: Kind::Buckets {
                            region: region.clone(),
                        },
                        created: None,
                        modified: None,
                        meta: crate::api::Meta::default(),
                    });
                    Some(c)
                }
                (c, _) => c,
            };
            let l = self.install(dir, children, validator)?;
            let evicted = self.cache.put(dir, l.clone());
            self.prune(&evicted);
            Ok(l)
        }
        .await;
        if let Ok(mut f) = self.fetching.lock() {
            // Only this caller and the map hold it: nobody is waiting, drop the entry.
            if Arc::strong_count(&lock) <= 2 {
                f.remove(&dir);
            }
        }
        result
    }

    /// Names the children, gives them inodes and records them as the listing of `dir`.
    fn install(
        &self,
        dir: u64,
        children: Option<Vec<listing::Child>>,
        validator: Option<crate::cache::metadata::Validator>,
    ) -> Result<Arc<Listing>, Errno> {
        let mut inodes = self.inodes.write().map_err(poisoned)?;
        let Some(children) = children else {
            return Ok(Arc::new(Listing::with_validator(Vec::new(), validator)));
        };
        let candidates: Vec<names::Candidate> = children
            .iter()
            .map(|c| names::Candidate {
                raw: &c.raw,
                id: &c.id,
                is_dir: !matches!(c.kind, Kind::File { .. }),
                created: c.created,
            })
            .collect();
        let names = names::unique_names(&candidates);
        let mut entries = Vec::with_capacity(children.len());
        let mut confirmable = Vec::new();
        for (c, name) in children.into_iter().zip(names) {
            let is_dir = !matches!(c.kind, Kind::File { .. });
            let key = c.inode_key();
            let kind = carry_over(inodes.by_id(&key).map(|n| &n.kind), c.kind);
            let rollup = match &kind {
                Kind::Folder {
                    rollup: Some(v), ..
                } => Some(v.rollup.clone()),
                _ => None,
            };
            // Hubs and projects carry no times: they show the mount's start, which at least
            // stays put for the life of the mount.
            let created = c.created.or(c.modified).unwrap_or(self.started);
            let ino = inodes.upsert(Node {
                id: key,
                parent: dir,
                kind,
                created,
                modified: c.modified.unwrap_or(created),
                meta: self.intern(c.meta),
            });
            entries.push((name, ino, is_dir));
            if let Some(r) = rollup {
                confirmable.push((ino, r));
            }
        }
        drop(inodes);
        for (ino, rollup) in confirmable {
            self.confirm_subtree(ino, &rollup);
        }
        Ok(Arc::new(Listing::with_validator(entries, validator)))
    }

    /// Shares the strings that repeat across thousands of entries (extension types, user
    /// names), so keeping them for every node costs a pointer each.
    fn intern(&self, mut meta: crate::api::Meta) -> crate::api::Meta {
        let Ok(mut seen) = self.interned.lock() else {
            return meta;
        };
        for field in [
            &mut meta.ext_type,
            &mut meta.created_by,
            &mut meta.modified_by,
        ] {
            if let Some(s) = field.take() {
                let shared = match seen.get(&s) {
                    Some(known) => known.clone(),
                    None => {
                        seen.insert(s.clone());
                        s
                    }
                };
                *field = Some(shared);
            }
        }
        meta
    }

    /// The children of a folder's `.versions`: one directory per file the folder lists, under
    /// the same name.
    async fn versions_children(
        &self,
        project: &str,
        folder: u64,
    ) -> Result<Vec<listing::Child>, Errno> {
        // Boxed: a listing of `.versions` needs the listing of its folder.
        let listing = Box::pin(self.listing(folder)).await?;
        let inodes = self.inodes.read().map_err(poisoned)?;
        Ok(listing
            .entries
            .iter()
            .filter(|(_, _, is_dir)| !is_dir)
            .filter_map(|(name, ino, _)| {
                let node = inodes.get(*ino)?;
                let item = node.item();
                Some(listing::Child {
                    id: format!("{item}#{VERSIONS_DIR}"),
                    raw: name.clone(),
                    kind: Kind::ItemVersions {
                        project: project.to_string(),
                        item: item.to_string(),
                    },
                    created: Some(node.created),
                    modified: Some(node.modified),
                    meta: crate::api::Meta::default(),
                })
            })
            .collect())
    }

    /// The `.versions` directory of folder `folder`, made when first looked up.
    fn versions_dir(&self, folder: u64) -> Result<Option<u64>, Errno> {
        let node = self.node(folder)?;
        let Kind::Folder { project, .. } = &node.kind else {
            return Ok(None);
        };
        let mut inodes = self.inodes.write().map_err(poisoned)?;
        Ok(Some(inodes.upsert(Node {
            id: format!("{}#{VERSIONS_DIR}", node.id),
            parent: folder,
            kind: Kind::Versions {
                project: project.clone(),
            },
            created: node.created,
            modified: node.modified,
            meta: crate::api::Meta::default(),
        })))
    }

    /// Drops the nodes only the evicted listings referred to: the kernel has forgotten them and
    /// no cached listing names them, so they cost memory for nothing.
    fn prune(&self, evicted: &[(u64, Arc<Listing>)]) {
        if evicted.is_empty() {
            return;
        }
        let open = self.open_listings();
        let Ok(mut inodes) = self.inodes.write() else {
            return;
        };
        for (_, listing) in evicted {
            for (_, ino, _) in &listing.entries {
                if !inodes.known_to_kernel(*ino)
                    && self.cache.peek(*ino).is_none()
                    && !open.iter().any(|l| l.contains(*ino))
                {
                    inodes.remove(*ino);
                }
            }
        }
    }

    /// The listings of open directory handles: `readdirplus` still hands out their entries
    /// with attributes, so their nodes must stay even when no cached listing names them.
    fn open_listings(&self) -> Vec<Arc<Listing>> {
        self.dirs
            .lock()
            .map(|d| d.values().cloned().collect())
            .unwrap_or_default()
    }

    /// `forget`: the kernel dropped `n` references to `ino`. A node no longer held by the
    /// kernel and not named by any cached listing or open directory handle is dropped.
    pub fn forget(&self, ino: u64, n: u64) {
        let open = self.open_listings();
        let Ok(mut inodes) = self.inodes.write() else {
            return;
        };
        if inodes.forget(ino, n) || ino == ROOT {
            return;
        }
        let named = inodes
            .get(ino)
            .map(|node| node.parent)
            .and_then(|p| self.cache.peek(p))
            .is_some_and(|l| l.contains(ino));
        if !named && self.cache.peek(ino).is_none() && !open.iter().any(|l| l.contains(ino)) {
            inodes.remove(ino);
        }
    }

    /// Attributes of `ino`, counting the lookup the kernel is about to be handed in the same
    /// step, so the node cannot be dropped in between.
    fn attr_remembered(&self, ino: u64) -> Result<Attr, Errno> {
        let mut inodes = self.inodes.write().map_err(poisoned)?;
        let node = inodes.get(ino).ok_or(Errno::NOENT)?;
        let attr = attr::of(ino, node, self.config.uid, self.config.gid);
        inodes.remember(ino);
        Ok(attr)
    }

    /// A folder's parent was just listed and reports `rollup` for it. If that is the rollup its
    /// cached listing was fetched under, nothing below the folder has changed since: the
    /// listing, and every listing below it fetched since then, are confirmed without a request.
    fn confirm_subtree(&self, folder: u64, rollup: &str) {
        let Some(l) = self.cache.peek(folder) else {
            return;
        };
        let Some(since) = l
            .validator
            .as_ref()
            .filter(|v| v.rollup == rollup)
            .map(|v| v.seen)
        else {
            return;
        };
        // Confirmation rests on the service moving the rollup for every change below; however
        // sure that is, no listing lives longer than this many TTLs without being fetched.
        let oldest = self.cache.ttl() * CONFIRMED_TTLS;
        let mut stack = vec![l];
        while let Some(l) = stack.pop() {
            if l.age() >= oldest {
                continue;
            }
            l.renew();
            for (_, ino, is_dir) in &l.entries {
                if let Some(child) = is_dir.then(|| self.cache.peek(*ino)).flatten() {
                    if child.fetched() >= since {
                        stack.push(child);
                    }
                }
            }
        }
    }

    /// Fills in the size of a file listed without `storageSize`, from the object's details.
    async fn ensure_size(&self, ino: u64) -> Result<(), Errno> {
        let node = self.node(ino)?;
        let Kind::File { version } = &node.kind else {
            return Ok(());
        };
        if version.size.is_some() {
            return Ok(());
        }
        let size = self.remote.object_size(&version.storage).await?;
        let mut inodes = self.inodes.write().map_err(poisoned)?;
        if let Some(Node {
            kind: Kind::File { version: v },
            ..
        }) = inodes.get_mut(ino)
        {
            if v.id == version.id {
                v.size = Some(size);
            }
        }
        Ok(())
    }

    /// `lookup`: a child of `parent` by name, and how long the kernel may trust the name.
    pub async fn lookup(&self, parent: u64, name: &str) -> Result<(Attr, Duration), Errno> {
        // Twice at most: under memory pressure a listing can be evicted (and its inodes dropped)
        // between finding a name and answering for it; fetching it again brings them back.
        for attempt in 0..2 {
            let listing = self.listing(parent).await?;
            let ino = match listing.lookup(name) {
                Some(ino) => ino,
                // A real entry of that name wins; otherwise the folder's versions directory.
                None if name == VERSIONS_DIR => self.versions_dir(parent)?.ok_or(Errno::NOENT)?,
                None => return Err(Errno::NOENT),
            };
            let answer = match self.ensure_size(ino).await {
                Ok(()) => self.attr_remembered(ino),
                Err(e) => Err(e),
            };
            match answer {
                Ok(attr) => return Ok((attr, self.cache.remaining(&listing))),
                Err(Errno::NOENT) if attempt == 0 => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Errno::NOENT)
    }

    /// `getattr`. A file inode is one version, which never changes, so its attributes are
    /// answered as they are and may be cached for long; a directory's come from its parent's
    /// listing, refreshed when stale.
    pub async fn getattr(&self, ino: u64) -> Result<(Attr, Duration), Errno> {
        if ino == ROOT {
            return Ok((self.attr(ROOT)?, self.cache.ttl()));
        }
        let node = self.node(ino)?;
        if !node.is_dir() {
            self.ensure_size(ino).await?;
            return Ok((self.attr(ino)?, VERSION_ATTR_TTL));
        }
        if matches!(node.kind, Kind::Versions { .. }) {
            // Named by no listing: it lives as long as its folder.
            return Ok((self.attr(ino)?, self.cache.ttl()));
        }
        let parent = node.parent;
        let listing = self.listing(parent).await?;
        if !listing.contains(ino) {
            return Err(Errno::NOENT);
        }
        self.ensure_size(ino).await?;
        Ok((self.attr(ino)?, self.cache.remaining(&listing)))
    }

    /// `opendir`: snapshots the listing so offsets stay valid while it is read.
    pub async fn opendir(&self, ino: u64) -> Result<u64, Errno> {
        let listing = self.listing(ino).await?;
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.dirs.lock().map_err(poisoned)?.insert(fh, listing);
        Ok(fh)
    }

    /// `readdir`: entries after `offset` (`.` and `..` first).
    pub fn readdir(&self, ino: u64, fh: u64, offset: u64) -> Result<Vec<DirEntry>, Errno> {
        let listing = self
            .dirs
            .lock()
            .map_err(poisoned)?
            .get(&fh)
            .cloned()
            .ok_or(Errno::BADF)?;
        let parent = self.node(ino)?.parent;
        let dots = [(ino, true, "."), (parent, true, "..")];
        let all = dots
            .into_iter()
            .chain(listing.entries.iter().map(|(n, i, d)| (*i, *d, n.as_str())));
        Ok(all
            .enumerate()
            .skip(offset as usize)
            .map(|(k, (ino, is_dir, name))| DirEntry {
                ino,
                next: k as u64 + 1,
                is_dir,
                name: name.to_string(),
            })
            .collect())
    }

    /// `readdirplus`: entries after `offset` with their attributes, so `ls -l` and `find -printf`
    /// need no lookups. A file whose size is not known yet gets no cache time, so the kernel asks
    /// `getattr` (which fills it in) before showing it.
    pub fn readdirplus(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
    ) -> Result<Vec<(DirEntry, Attr, Duration)>, Errno> {
        let entries = self.readdir(ino, fh, offset)?;
        let ttl = {
            let dirs = self.dirs.lock().map_err(poisoned)?;
            let listing = dirs.get(&fh).ok_or(Errno::BADF)?;
            self.cache.remaining(listing)
        };
        let mut inodes = self.inodes.write().map_err(poisoned)?;
        Ok(entries
            .into_iter()
            .filter_map(|e| {
                if e.name != "." && e.name != ".." {
                    // Each entry handed over with attributes counts as a lookup.
                    inodes.remember(e.ino);
                }
                let node = inodes.get(e.ino)?;
                let known = !matches!(&node.kind, Kind::File { version } if version.size.is_none());
                let attr = attr::of(e.ino, node, self.config.uid, self.config.gid);
                Some((e, attr, if known { ttl } else { Duration::ZERO }))
            })
            .collect())
    }

    /// `releasedir`.
    pub fn releasedir(&self, fh: u64) {
        if let Ok(mut d) = self.dirs.lock() {
            d.remove(&fh);
        }
    }

    /// `open`: read-only; pins the version current now, so later versions never mix in, and
    /// starts fetching its signed URL so the first read is one round trip.
    pub async fn open(&self, ino: u64, write: bool) -> Result<u64, Errno> {
        if write {
            return Err(Errno::ROFS);
        }
        self.ensure_size(ino).await?;
        let node = self.node(ino)?;
        let Kind::File { version } = node.kind else {
            return Err(Errno::ISDIR);
        };
        let size = version.size.unwrap_or(0);
        if size > 0 && !self.source.starts_cached(&version.storage) {
            let (remote, storage) = (self.remote.clone(), version.storage.clone());
            tokio::spawn(async move { remote.prepare(&storage).await });
        }
        let file = prefetch::OpenFile::new(
            self.source.clone(),
            &version.storage,
            size,
            self.budget.clone(),
        );
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.files
            .lock()
            .map_err(poisoned)?
            .insert(fh, Arc::new(file));
        Ok(fh)
    }

    /// `read`: at most `size` bytes at `offset` of the pinned version (fewer only at the end).
    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Bytes, Errno> {
        let file = self
            .files
            .lock()
            .map_err(poisoned)?
            .get(&fh)
            .cloned()
            .ok_or(Errno::BADF)?;
        tracing::trace!(fh, offset, size, "read");
        let data = file.read(offset, u64::from(size)).await?;
        let want = u64::from(size).min(file.size().saturating_sub(offset));
        if data.len() as u64 != want {
            // The kernel takes a short read for the end of the file: never send one elsewhere.
            tracing::error!(
                offset,
                size,
                got = data.len(),
                "read returned the wrong length"
            );
            return Err(Errno::IO);
        }
        Ok(data)
    }

    /// `release`.
    pub fn release(&self, fh: u64) {
        if let Ok(mut f) = self.files.lock() {
            f.remove(&fh);
        }
    }

    /// Number of inodes known, for `statfs`.
    pub fn inode_count(&self) -> u64 {
        self.inodes.read().map(|i| i.len() as u64).unwrap_or(0)
    }
}

/// Keeps what was learnt about a node beyond its listing: a size fetched from OSS stays with
/// its version.
fn carry_over(old: Option<&Kind>, new: Kind) -> Kind {
    match (old, new) {
        (Some(Kind::File { version: old }), Kind::File { mut version })
            if old.id == version.id && version.size.is_none() =>
        {
            version.size = old.size;
            Kind::File { version }
        }
        (_, new) => new,
    }
}

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;
