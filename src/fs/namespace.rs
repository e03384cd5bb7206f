//! The namespace: which inode stands for what, what each directory lists, and how fresh that
//! is. Listings are fetched once per TTL however many callers want them, confirmed without a
//! request when a folder's rollup says nothing below it changed, served stale while the service
//! is unreachable, and dropped (with the nodes only they named) under memory pressure.

use super::ahead::{FileRef, Folders};
use super::attr::{self, Attr};
use super::buckets::ObjectLists;
use super::config::{FsConfig, Scope};
use super::error::{poisoned, Error};
use super::inode::{Child, Inodes, Kind, Node, ROOT};
use super::listing::{self, Around, FolderFile, VERSIONS_DIR};
use super::names;
use super::offline::{Offline, OFFLINE_MARGIN};
use crate::api::{ApiError, Meta, Remote};
use crate::cache::metadata::{Listing, MetaCache, Validator};
use crate::single_flight::SingleFlight;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime};

/// How many TTLs a listing may be kept alive by rollup confirmations before it is fetched
/// again anyway (ten minutes with the default TTL).
const CONFIRMED_TTLS: u32 = 10;

/// Inodes and listings of one mount.
pub struct Namespace<R: Remote> {
    remote: Arc<R>,
    // Lock order: `held`, then `inodes`, then the cache's own lock, then `interned`; each is
    // taken for a few lines and never held across an `.await`. `flights` hands out one async
    // gate per directory, held while its listing is fetched, and is never waited on under the
    // others.
    /// Listings handed to open directory handles: their entries keep their nodes, since
    /// `readdirplus` still hands them out, even once no cached listing names them.
    held: Mutex<Vec<Weak<Listing>>>,
    inodes: RwLock<Inodes>,
    cache: MetaCache,
    interned: Mutex<HashSet<Arc<str>>>,
    flights: SingleFlight<u64>,
    objects: ObjectLists,
    offline: Offline,
    started: SystemTime,
    uid: u32,
    /// Permission bits inodes show, when the mount was told.
    modes: attr::Modes,
    gid: u32,
    buckets: Option<String>,
    /// Versions this (read-write) mount made: shown with the writer's modification time.
    /// `None` on a read-only mount.
    made: Option<Arc<crate::fs::write::MadeVersions>>,
}

impl<R: Remote> Namespace<R> {
    /// The namespace of a mount showing `scope` of `remote`.
    pub fn new(remote: Arc<R>, scope: Scope, config: &FsConfig) -> Namespace<R> {
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
            meta: Meta::default(),
        };
        Namespace {
            remote,
            held: Mutex::default(),
            inodes: RwLock::new(Inodes::new(root)),
            cache: MetaCache::new(config.ttl, config.max_dirs, config.max_entries),
            interned: Mutex::default(),
            flights: SingleFlight::default(),
            objects: ObjectLists::new(config.ttl),
            offline: Offline::default(),
            started: now,
            uid: config.uid,
            modes: config.modes,
            gid: config.gid,
            buckets: config.buckets.clone(),
            made: config.made.clone(),
        }
    }

    /// The remote the namespace lists.
    pub fn remote(&self) -> &Arc<R> {
        &self.remote
    }

    /// The node of `ino`, as it is now.
    pub fn node(&self, ino: u64) -> Result<Node, Error> {
        self.inodes
            .read()
            .map_err(poisoned)?
            .get(ino)
            .cloned()
            .ok_or(Error::NotFound)
    }

    /// Answers a question about the inode table under its read lock.
    pub fn read<T>(&self, f: impl FnOnce(&Inodes) -> T) -> Result<T, Error> {
        Ok(f(&*self.inodes.read().map_err(poisoned)?))
    }

    /// Attributes of `node` as inode `ino`, as this mount shows them (its owner and modes).
    fn attr_of(&self, ino: u64, node: &Node) -> Attr {
        attr::of(
            ino,
            node,
            self.uid,
            self.gid,
            self.modes,
            self.made.is_some(),
        )
    }

    /// Attributes of `ino`.
    pub fn attr(&self, ino: u64) -> Result<Attr, Error> {
        let node = self.node(ino)?;
        Ok(self.attr_of(ino, &node))
    }

    /// Attributes of `ino`, counting the lookup the kernel is about to be handed in the same
    /// step, so the node cannot be dropped in between.
    pub fn attr_remembered(&self, ino: u64) -> Result<Attr, Error> {
        let mut inodes = self.inodes.write().map_err(poisoned)?;
        let node = inodes.get(ino).ok_or(Error::NotFound)?;
        let attr = self.attr_of(ino, node);
        inodes.remember(ino);
        Ok(attr)
    }

    /// Attributes of each `(inode, counts as a lookup)`, with whether its size is known;
    /// `None` (and no lookup counted) for an inode no longer known. Entries handed to the
    /// kernel with attributes count as lookups, counted in the same step as the attributes are
    /// read.
    pub fn attrs_remembered(
        &self,
        inos: impl Iterator<Item = (u64, bool)>,
    ) -> Result<Vec<Option<(Attr, bool)>>, Error> {
        let mut inodes = self.inodes.write().map_err(poisoned)?;
        Ok(inos
            .map(|(ino, remember)| {
                let node = inodes.get(ino)?;
                let known = !matches!(&node.kind, Kind::File { version } if version.size.is_none());
                let attr = self.attr_of(ino, node);
                if remember {
                    inodes.remember(ino);
                }
                Some((attr, known))
            })
            .collect())
    }

    /// How much longer `listing` is trusted.
    pub fn remaining(&self, listing: &Listing) -> Duration {
        self.cache.remaining(listing)
    }

    /// How long a listing is trusted.
    pub fn ttl(&self) -> Duration {
        self.cache.ttl()
    }

    /// Number of inodes known.
    pub fn len(&self) -> usize {
        self.inodes.read().map(|i| i.len()).unwrap_or(0)
    }

    /// Whether nothing is known (never: the root always is).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The listing of directory `dir` as last fetched, fresh or not, without a request.
    pub fn listed(&self, dir: u64) -> Option<Arc<Listing>> {
        self.cache.peek(dir)
    }

    /// The folder a walk that reads each folder's files before its subfolders, all by name
    /// (rsync), comes to after `dir`: its first subfolder, else the next folder after it or
    /// after one of its parents. Only listings already fetched are consulted: `None` when one
    /// is missing.
    pub fn next_folder_by_name(&self, dir: u64) -> Option<u64> {
        let first_after = |listing: &Listing, after: Option<&str>| {
            listing
                .entries
                .iter()
                .filter(|(name, _, is_dir)| {
                    *is_dir && after.map_or(true, |a| name.as_bytes() > a.as_bytes())
                })
                .min_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()))
                .map(|(_, ino, _)| *ino)
        };
        if let Some(sub) = first_after(&*self.listed(dir)?, None) {
            return Some(sub);
        }
        let mut here = dir;
        while here != ROOT {
            let parent = self.node(here).ok()?.parent;
            let listing = self.listed(parent)?;
            let (name, _, _) = listing.entries.iter().find(|(_, ino, _)| *ino == here)?;
            if let Some(next) = first_after(&listing, Some(name)) {
                return Some(next);
            }
            here = parent;
        }
        None
    }

    /// The listing of directory `dir`, fetched at most once per TTL however many callers ask.
    pub async fn listing(&self, dir: u64) -> Result<Arc<Listing>, Error> {
        let kept = || {
            self.cache
                .fresh(dir)
                .filter(|l| !self.renamed_since(dir, l))
                .or_else(|| self.offline.stale(&self.cache, dir))
        };
        self.flights
            .get(dir, kept, || self.fetch_listing(dir))
            .await
    }

    /// Whether this mount renamed or deleted something in folder `dir` since `listing` was
    /// fetched (then the service lists it otherwise now).
    fn renamed_since(&self, dir: u64, listing: &Listing) -> bool {
        let Some(made) = &self.made else {
            return false;
        };
        self.node(dir)
            .is_ok_and(|n| made.outdated(&n.id, listing.fetched()))
    }

    /// Fetches, names and records the listing of `dir`.
    async fn fetch_listing(&self, dir: u64) -> Result<Arc<Listing>, Error> {
        let node = self.node(dir)?;
        if !node.is_dir() {
            return Err(Error::NotDir);
        }
        let folder_files = if node.kind.lists_its_folder() {
            // Boxed: this listing needs the listing of its folder.
            let folder = Box::pin(self.listing(node.parent)).await?;
            self.files_of(&folder)?
        } else {
            Vec::new()
        };
        let around = Around {
            folder_files,
            buckets: self.buckets.as_deref().filter(|_| dir == ROOT),
        };
        // Ends a little before the operation's deadline, so that a service that does not
        // answer at all still leaves time to serve the cached listing (offline).
        let fetch = listing::fetch(&*self.remote, &self.objects, &node, around);
        let fetched = crate::deadline::short_of(OFFLINE_MARGIN, fetch)
            .await
            .unwrap_or_else(|e| Err(Error::Remote(ApiError::Timeout(e.to_string()))));
        let children = match fetched {
            Ok(c) => {
                self.offline.reached();
                c
            }
            Err(e) => return self.offline.fallback(&self.cache, dir, e),
        };
        // A folder shows its own `.versions`: a real entry of that name gives way to it.
        let reserved: &[&str] = match node.kind {
            Kind::Folder { .. } => &[VERSIONS_DIR],
            _ => &[],
        };
        let l = self.install(dir, children, node.kind.validator(), reserved)?;
        let evicted = self.cache.put(dir, l.clone());
        self.prune(&evicted);
        Ok(l)
    }

    /// The files a listing names, as their folder's `.versions` shows them.
    fn files_of(&self, listing: &Listing) -> Result<Vec<FolderFile>, Error> {
        let inodes = self.inodes.read().map_err(poisoned)?;
        Ok(listing
            .entries
            .iter()
            .filter(|(_, _, is_dir)| !is_dir)
            .filter_map(|(name, ino, _)| {
                let node = inodes.get(*ino)?;
                Some(FolderFile {
                    name: name.clone(),
                    item: node.item().to_string(),
                    created: node.created,
                    modified: node.modified,
                })
            })
            .collect())
    }

    /// Names the children, gives them inodes and records them as the listing of `dir`.
    fn install(
        &self,
        dir: u64,
        children: Option<Vec<Child>>,
        validator: Option<Validator>,
        reserved: &[&str],
    ) -> Result<Arc<Listing>, Error> {
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
        let names = names::unique_names_besides(&candidates, reserved);
        let mut entries = Vec::with_capacity(children.len());
        let mut confirmable = Vec::new();
        for (c, name) in children.into_iter().zip(names) {
            let is_dir = !matches!(c.kind, Kind::File { .. });
            let key = c.inode_key();
            let kind = carry_over(inodes.by_id(&key).map(|n| &n.kind), c.kind);
            let rollup = kind.validator().map(|v| v.rollup);
            // Hubs and projects carry no times: they show the mount's start, which at least
            // stays put for the life of the mount.
            let created = c.created.or(c.modified).unwrap_or(self.started);
            let made = match (&kind, &self.made) {
                (Kind::File { version }, Some(made)) => made.mtime(&version.id),
                _ => None,
            };
            let ino = inodes.upsert(Node {
                id: key,
                parent: dir,
                kind,
                created,
                modified: made.or(c.modified).unwrap_or(created),
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
    fn intern(&self, mut meta: Meta) -> Meta {
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

    /// The `.versions` directory of folder `folder`, made when first looked up; `None` for a
    /// directory that is not a folder.
    pub fn versions_dir(&self, folder: u64) -> Result<Option<u64>, Error> {
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
            meta: Meta::default(),
        })))
    }

    /// Records folder `info`, just made in directory `dir` of `project`, as a child of `dir`
    /// (its cached listing gains it, so the new folder needs no listing to be found); its
    /// inode.
    pub fn add_folder(
        &self,
        dir: u64,
        project: &str,
        info: crate::api::FolderInfo,
    ) -> Result<u64, Error> {
        let now = SystemTime::now();
        let created = info.created.unwrap_or(now);
        let ino = self.inodes.write().map_err(poisoned)?.upsert(Node {
            id: info.id.clone(),
            parent: dir,
            kind: Kind::Folder {
                project: project.to_string(),
                count: Some(0),
                rollup: None,
            },
            created,
            modified: info.modified.unwrap_or(created),
            meta: self.intern(info.meta),
        });
        if let Some(old) = self.cache.peek(dir) {
            let mut entries = old.entries.clone();
            entries.push((info.name, ino, true));
            let evicted = self
                .cache
                .put(dir, Arc::new(Listing::with_validator(entries, None)));
            self.prune(&evicted);
        }
        Ok(ino)
    }

    /// Takes folder `name` out of directory `dir`'s cached listing after the service renamed,
    /// moved or hid it: into `to` (the new parent, and the folder as the service answered),
    /// or nowhere (hidden). Its inode stays, so paths below it keep working.
    pub fn move_folder(
        &self,
        dir: u64,
        name: &str,
        to: Option<(u64, crate::api::FolderInfo)>,
    ) -> Result<(), Error> {
        let old = self.cache.peek(dir);
        let ino = old.as_ref().and_then(|l| l.lookup(name));
        if let Some(old) = old {
            let entries = old
                .entries
                .iter()
                .filter(|(n, _, _)| n != name)
                .cloned()
                .collect();
            self.relist(dir, entries);
        }
        let (Some(ino), Some((new_dir, info))) = (ino, to) else {
            return Ok(());
        };
        if let Some(n) = self.inodes.write().map_err(poisoned)?.get_mut(ino) {
            n.parent = new_dir;
            if let Some(m) = info.modified {
                n.modified = m;
            }
        }
        if let Some(l) = self.cache.peek(new_dir) {
            let mut entries = l.entries.clone();
            entries.retain(|(n, _, _)| *n != info.name);
            entries.push((info.name, ino, true));
            self.relist(new_dir, entries);
        }
        Ok(())
    }

    /// Replaces the cached listing of `dir` with `entries`, as this mount changed it.
    fn relist(&self, dir: u64, entries: Vec<(String, u64, bool)>) {
        let evicted = self
            .cache
            .put(dir, Arc::new(Listing::with_validator(entries, None)));
        self.prune(&evicted);
    }

    /// The listing of `dir` for an open directory handle: it keeps the nodes it names until
    /// the handle lets go of it (`let_go`).
    pub async fn hold(&self, dir: u64) -> Result<Arc<Listing>, Error> {
        let listing = self.listing(dir).await?;
        let mut held = self.held.lock().map_err(poisoned)?;
        held.retain(|l| l.strong_count() > 0);
        held.push(Arc::downgrade(&listing));
        Ok(listing)
    }

    /// An open directory handle let go of `listing`: the nodes only it still named go.
    pub fn let_go(&self, listing: Arc<Listing>) {
        let named: Vec<u64> = listing.entries.iter().map(|(_, ino, _)| *ino).collect();
        drop(listing);
        self.drop_unneeded(named);
    }

    /// Drops the nodes only the evicted listings referred to: the kernel has forgotten them and
    /// no cached listing names them, so they cost memory for nothing.
    fn prune(&self, evicted: &[(u64, Arc<Listing>)]) {
        self.drop_unneeded(
            evicted
                .iter()
                .flat_map(|(_, l)| l.entries.iter().map(|(_, ino, _)| *ino)),
        );
    }

    /// The kernel dropped `n` references to `ino`; the node goes once nothing needs it.
    pub fn forget(&self, ino: u64, n: u64) {
        let still_held = match self.inodes.write() {
            Ok(mut inodes) => inodes.forget(ino, n),
            Err(_) => return,
        };
        if !still_held {
            self.drop_unneeded([ino]);
        }
    }

    /// Drops those of `inos` that nothing needs any more: not the root, not held by the kernel,
    /// not named by the cached listing of its parent, without a cached listing of its own, and
    /// not named by a listing an open directory handle holds.
    fn drop_unneeded(&self, inos: impl IntoIterator<Item = u64>) {
        let held: Vec<Arc<Listing>> = match self.held.lock() {
            Ok(mut h) => {
                h.retain(|l| l.strong_count() > 0);
                h.iter().filter_map(Weak::upgrade).collect()
            }
            Err(_) => return,
        };
        let Ok(mut inodes) = self.inodes.write() else {
            return;
        };
        for ino in inos {
            let Some(parent) = inodes.get(ino).map(|n| n.parent) else {
                continue;
            };
            let needed = ino == ROOT
                || inodes.known_to_kernel(ino)
                || self.cache.peek(ino).is_some()
                || self.cache.peek(parent).is_some_and(|l| l.contains(ino))
                || held.iter().any(|l| l.contains(ino));
            if !needed {
                inodes.remove(ino);
            }
        }
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
    pub async fn ensure_size(&self, ino: u64) -> Result<(), Error> {
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

    /// The name child `ino` has in the cached listing of directory `parent`, if listed.
    pub fn named_in(&self, parent: u64, ino: u64) -> Option<String> {
        let listing = self.cache.peek(parent)?;
        let (name, _, _) = listing.entries.iter().find(|(_, i, _)| *i == ino)?;
        Some(name.clone())
    }

    /// The path of `ino` from the mount's root, as named by the cached listings.
    pub fn path_of(&self, mut ino: u64) -> Option<String> {
        let mut parts = Vec::new();
        let inodes = self.inodes.read().ok()?;
        while ino != ROOT {
            let node = inodes.get(ino)?;
            let name = match &node.kind {
                Kind::Versions { .. } => VERSIONS_DIR.to_string(),
                _ => self.named_in(node.parent, ino)?,
            };
            parts.push(name);
            ino = node.parent;
        }
        parts.reverse();
        Some(format!("/{}", parts.join("/")))
    }

    /// The project a node belongs to, from the nearest directory that knows it.
    pub fn project_of(&self, mut ino: u64) -> Result<Option<String>, Error> {
        let inodes = self.inodes.read().map_err(poisoned)?;
        loop {
            let Some(node) = inodes.get(ino) else {
                return Ok(None);
            };
            match node.kind.project() {
                Some(project) => return Ok(Some(project.to_string())),
                None if ino == ROOT => return Ok(None),
                None => ino = node.parent,
            }
        }
    }
}

impl<R: Remote> Folders for Namespace<R> {
    fn files(&self, listing: &Listing) -> Vec<FileRef> {
        let Ok(inodes) = self.inodes.read() else {
            return Vec::new();
        };
        listing
            .entries
            .iter()
            .filter(|(_, _, is_dir)| !is_dir)
            .filter_map(|(name, ino, _)| match &inodes.get(*ino)?.kind {
                Kind::File { version } => Some(FileRef {
                    ino: *ino,
                    name: name.clone(),
                    storage: version.storage.as_str().into(),
                    size: version.size,
                }),
                _ => None,
            })
            .collect()
    }

    fn next_by_name(&self, folder: u64) -> Option<(u64, Arc<Listing>)> {
        let next = self.next_folder_by_name(folder)?;
        Some((next, self.listed(next)?))
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
