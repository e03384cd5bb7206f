//! The write path of a read-write mount. Changes are states, not events: every change lands in
//! a local overlay first (an entry per name, its bytes in a staging file, its state in a
//! journal that is on disk before the operation answers), and a reconciler later sends each
//! folder's *final* state to the service once nothing in it has changed for a quiet period.
//! Identity is (folder, name): new bytes under a name that belongs to an item become a new
//! version of that item, under a new name a new item. So an editor's temp-and-rename dance,
//! Excel's delete-then-rename and AutoCAD's rename-away-then-recreate all end as one version of
//! the same item, and lock, temp and backup files (`ignore.rs`) never leave this machine.
//!
//! Files the service has are renamed and removed the same way: the new name is an entry that
//! continues the item (its bytes still the service's), the old name a marker (`Hidden` for a
//! name renamed away, `Removed` for one whose item is to be deleted), both in the journal, so
//! a rename dance costs only its end state and survives a crash. A name keeps its item unless
//! nothing shows under it any more; then its item is renamed, or deleted when removed.
//!
//! `Writes` holds the overlay and answers the filesystem's questions about it; `commit.rs` is
//! the reconciler; `upload.rs` the multipart upload; `journal.rs` and `staging.rs` what is on
//! disk. Lock order: `Writes::inner` is taken for a few lines and never held across `.await`
//! or disk I/O beyond an append to the journal.

pub mod commit;
pub mod entry;
pub mod ignore;
pub mod journal;
pub mod names;
pub mod ops;
pub mod staging;
pub mod upload;

use super::attr::Attr;
use super::error::{local, poisoned, Error};
use super::read::ByteSource;
use crate::api::{Flavour, Remote};
use crate::cache::disk::DiskCache;
use bytes::Bytes;
use entry::{Base, Entry, Source, State};
use ignore::Ignore;
use journal::{Journal, Made, Record};
use staging::Staging;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// Inode numbers of entries that exist only here have this bit set; numbers derived from
/// remote ids never do (they are 63-bit hashes).
pub const LOCAL_INO: u64 = 1 << 63;
/// Read on the mount's root: the queue of changes, as JSON (`apsfs status`).
pub const QUEUE_XATTR: &str = "user.apsfs.queue";
/// Read on any path: send its folder's changes now (all changes, on the root); the queue left.
pub const PUSH_XATTR: &str = "user.apsfs.push";
/// As `PUSH_XATTR`, and wait (within the operation's deadline, and `.SECS` when the name ends
/// so) until they are sent.
pub const PUSH_WAIT_XATTR: &str = "user.apsfs.push.wait";

/// Whether `name` is a push attribute: `Some(None)` to push, `Some(Some(limit))` to push and
/// wait up to `limit` (the operation deadline when the name gives no seconds).
pub fn push_wait(name: &str) -> Option<Option<Duration>> {
    if name == PUSH_XATTR {
        return Some(None);
    }
    let rest = name.strip_prefix(PUSH_WAIT_XATTR)?;
    match rest.strip_prefix('.') {
        None if rest.is_empty() => Some(Some(Duration::MAX)),
        Some(secs) => secs.parse().ok().map(|s| Some(Duration::from_secs(s))),
        None => None,
    }
}
/// The extended attribute saying where a file is on its way to the service.
pub const SYNC_XATTR: &str = "user.aps.sync";
/// The block size `statfs` reports room in.
const BLOCK: u32 = 4096;
/// What the folder id of a local-only directory starts with.
const LOCAL_FOLDER: &str = "local:";
/// What the name of a removed file's marker starts with once a file of another item took its
/// name: a `/` no file name has, so it hides nothing.
const REMOVED: &str = "/removed/";

/// The name a marker stands for (a moved one's original name).
pub fn shown_name(name: &str) -> &str {
    match name.strip_prefix(REMOVED) {
        Some(rest) => rest.split_once('/').map_or(rest, |(_, n)| n),
        None => name,
    }
}

/// How a read-write mount behaves.
#[derive(Clone)]
pub struct WriteConfig {
    /// Where the journal and the staging files live (one directory per account and scope).
    pub dir: PathBuf,
    /// How long a folder must stay unchanged before its changes are sent.
    pub quiet: Duration,
    /// Changes older than this are sent even while the folder keeps changing.
    pub max_delay: Duration,
    /// Extra local-only patterns (`--ignore`).
    pub ignore: Vec<String>,
    /// The mount's own user id, when known: reservations by it are not someone else's.
    pub user_id: Option<String>,
    /// Whether removing a file or folder the service has removes it there (`--allow-delete`);
    /// otherwise it answers `EPERM` and sends nothing.
    pub allow_delete: bool,
}

/// Where a name lives: a remote folder or a local-only directory.
#[derive(Clone, Debug)]
pub struct Place {
    /// The directory's inode.
    pub dir: u64,
    /// Project id.
    pub project: String,
    /// Folder id (or a local-only directory's id).
    pub folder: String,
    /// Which extension types the project's new items take.
    pub flavour: Flavour,
    /// Path of the folder inside its project (for the service's path length limit).
    pub path_len: usize,
}

impl Place {
    /// Whether the directory is a local-only one (everything in it stays here).
    pub fn is_local(&self) -> bool {
        self.folder.starts_with(LOCAL_FOLDER)
    }
}

/// The overlay's state, under one lock.
#[derive(Default)]
struct Inner {
    entries: HashMap<u64, Entry>,
    by_name: HashMap<(String, String), u64>,
    by_ino: HashMap<u64, u64>,
    /// Write handles open per entry: an entry is not sent while any is.
    writers: HashMap<u64, u32>,
    /// Entries changed since their content was last made durable.
    dirty: HashSet<u64>,
    /// Entries whose content an upload is reading now.
    uploading: HashMap<u64, Arc<upload::Progress>>,
    /// Per folder: when it first and last changed since it was last sent.
    folders: HashMap<String, (Instant, Instant)>,
    /// Earliest next attempt of entries that failed.
    retry_at: HashMap<u64, Instant>,
    /// Folders `apsfs sync` asked to send now.
    urgent: HashSet<String>,
    next_id: u64,
}

/// The overlay of a read-write mount and its way to the service.
pub struct Writes<R: Remote> {
    remote: Arc<R>,
    source: Arc<ByteSource<R>>,
    disk: Option<Arc<DiskCache>>,
    journal: Journal,
    staging: Staging,
    ignore: Ignore,
    config: WriteConfig,
    made: Arc<MadeVersions>,
    inner: Mutex<Inner>,
    /// Wakes the reconciler when something changed or `apsfs sync` asked.
    wake: tokio::sync::Notify,
    /// Tells `sync --wait` callers that commits happened.
    committed: tokio::sync::Notify,
    /// The service refused a version on storage another version holds (renames on BIM 360
    /// and copies reuse it; whether the service takes that is not documented): such content
    /// is uploaded again from then on.
    reuse_refused: AtomicBool,
    uid: u32,
    gid: u32,
}

/// The versions this mount (or an earlier one of the same account) made, shared with the
/// namespace so it shows the writer's modification time for them; and when it last renamed or
/// deleted something in a folder, so a listing of it cached before is not trusted.
#[derive(Default)]
pub struct MadeVersions(
    Mutex<HashMap<String, Made>>,
    Mutex<HashMap<String, Instant>>,
);

impl MadeVersions {
    /// Whether a listing of `folder` fetched at `fetched` predates a rename or delete there.
    pub fn outdated(&self, folder: &str, fetched: Instant) -> bool {
        self.1
            .lock()
            .ok()
            .and_then(|m| m.get(folder).copied())
            .is_some_and(|at| at >= fetched)
    }

    /// A rename or delete in `folder` was sent now.
    fn renamed_in(&self, folder: &str) {
        if let Ok(mut m) = self.1.lock() {
            m.insert(folder.to_string(), Instant::now());
        }
    }

    /// The writer's modification time of `version`, when this mount made it.
    pub fn mtime(&self, version: &str) -> Option<SystemTime> {
        let m = self.0.lock().ok()?;
        m.get(version)
            .map(|m| SystemTime::UNIX_EPOCH + Duration::from_nanos(m.mtime_ns))
    }

    /// The SHA-256 of `version`, when this mount made it.
    pub fn sha256(&self, version: &str) -> Option<String> {
        self.0.lock().ok()?.get(version).map(|m| m.sha256.clone())
    }

    fn insert(&self, m: Made) {
        if let Ok(mut all) = self.0.lock() {
            all.insert(m.version.clone(), m);
        }
    }

    fn all(&self) -> Vec<Made> {
        self.0
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// What `lookup` finds for a name in the overlay.
pub enum Found {
    /// A local entry with these attributes.
    Local(Attr),
    /// The remote file of that name is hidden (renamed away or removed here).
    Hidden,
}

/// One line of `apsfs status`'s queue.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Queued {
    /// Path inside the folder: the folder id and the name.
    pub name: String,
    /// Folder id.
    pub folder: String,
    /// `user.aps.sync` of the entry.
    pub state: String,
    /// Size in bytes.
    pub size: u64,
    /// Bytes uploaded so far, while uploading.
    pub uploaded: Option<u64>,
}

/// The queue as `apsfs status` and `apsfs sync` read it.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct QueueReport {
    /// Entries that wait to be sent.
    pub pending: usize,
    /// Of those, new files (each a new item: the slowest budget, 50 a minute).
    pub new_items: usize,
    /// Of those, renames of files the service has.
    #[serde(default)]
    pub renames: usize,
    /// Of those, deletes.
    #[serde(default)]
    pub deletes: usize,
    /// Seconds the documented rate limits alone take to send them (upload time not counted).
    pub eta_secs: u64,
    /// Entries not simply committed (the first few hundred).
    pub entries: Vec<Queued>,
    /// Entries left out of `entries` to keep the report small.
    pub more: usize,
}

/// What the entries waiting to be sent are, by the request each costs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Kinds {
    /// New items (`POST items`, 50 a minute).
    pub new_items: usize,
    /// Renames (on team hubs `PATCH items`, which shares that budget; on BIM 360 a version).
    pub renames: usize,
    /// Of the renames, those that are `PATCH items`.
    pub item_patches: usize,
    /// Deletes (a tombstone version).
    pub deletes: usize,
}

/// Entries a report lists at most (an extended attribute value is at most 64 KiB).
const REPORTED: usize = 200;

impl QueueReport {
    /// The report of `queue`, whose waiting entries are of `kinds`.
    pub fn of(queue: Vec<Queued>, kinds: Kinds) -> QueueReport {
        let pending = queue.iter().filter(|q| q.waits()).count();
        let items = (kinds.new_items + kinds.item_patches) as u64;
        let versions = (pending as u64).saturating_sub(items);
        // Items: 50 a minute; versions and storage: 300 a minute (see `api::budget`).
        let eta_secs = (items * 60).div_ceil(50) + (versions * 60).div_ceil(300);
        let more = queue.len().saturating_sub(REPORTED);
        let mut entries = queue;
        entries.sort_by_key(|q| !q.waits());
        entries.truncate(REPORTED);
        QueueReport {
            pending,
            new_items: kinds.new_items,
            renames: kinds.renames,
            deletes: kinds.deletes,
            eta_secs,
            entries,
            more,
        }
    }
}

impl Queued {
    /// Whether it still waits to be sent (not committed, not local, not a recovered file that
    /// is never sent on its own).
    pub fn waits(&self) -> bool {
        !(self.state.starts_with("committed")
            || self.state.starts_with("conflict")
            || self.state.starts_with("recovered")
            || self.state == "local-only")
    }
}

impl<R: Remote> Writes<R> {
    /// The overlay kept in `config.dir`, replayed from its journal: entries that were open for
    /// writing when the last mount ended are kept as `Recovered` (never sent on their own),
    /// entries that were committed are dropped (the service has them now), the rest resume.
    pub fn open(
        remote: Arc<R>,
        source: Arc<ByteSource<R>>,
        disk: Option<Arc<DiskCache>>,
        config: WriteConfig,
        uid: u32,
        gid: u32,
    ) -> Result<Writes<R>, String> {
        let ignore = Ignore::new(&config.ignore)?;
        let at = |what: &str, e: std::io::Error| format!("{what} {}: {e}", config.dir.display());
        let staging =
            Staging::open(&config.dir.join("staging")).map_err(|e| at("staging area", e))?;
        let (journal, replayed) =
            Journal::open(&config.dir.join("journal")).map_err(|e| at("journal in", e))?;
        if replayed.skipped > 0 {
            tracing::warn!(
                records = replayed.skipped,
                "skipped unreadable journal records (a crash mid-write, or damage)"
            );
        }
        let made = Arc::new(MadeVersions::default());
        for m in replayed.made.into_values() {
            made.insert(m);
        }
        let mut inner = Inner::default();
        let mut changed = Vec::new();
        // Items a save, rename or delete not sent yet is about, by folder: their hidden old
        // names stay hidden until it is sent.
        let continued: HashSet<(String, String)> = replayed
            .entries
            .values()
            .filter(|e| e.state == State::Sealed || e.state == State::Removed)
            .filter_map(|e| Some((e.folder.clone(), e.base.as_ref()?.item.clone())))
            .collect();
        for (id, mut e) in replayed.entries {
            inner.next_id = inner.next_id.max(id + 1);
            let waits_for_save = e.state == State::Hidden
                && e.base
                    .as_ref()
                    .is_some_and(|b| continued.contains(&(e.folder.clone(), b.item.clone())));
            match e.state {
                State::Hidden if waits_for_save => {}
                State::Committed | State::Hidden => {
                    // The service has a committed entry's version; a hidden name's removal was
                    // never more than local. Either way the remote listing is right again.
                    if let Some(g) = e.generation() {
                        staging.remove(e.id, g);
                    }
                    changed.push(Record::Gone(e.id));
                    continue;
                }
                State::Open => {
                    tracing::warn!(
                        name = %e.name,
                        folder = %e.folder,
                        "was open for writing when the last mount ended: kept here, not uploaded"
                    );
                    e.state = State::Recovered;
                    changed.push(Record::Entry(Box::new(e.clone())));
                }
                State::Sealed | State::Removed => {
                    tracing::info!(name = %e.name, folder = %e.folder, state = ?e.state, "resuming a change the last mount did not send");
                    let now = Instant::now();
                    inner.folders.insert(e.folder.clone(), (now, now));
                }
                State::LocalOnly | State::Recovered => {}
            }
            inner.by_name.insert((e.folder.clone(), e.name.clone()), id);
            inner.by_ino.insert(e.ino, id);
            inner.entries.insert(id, e);
        }
        let live: HashSet<(u64, u32)> = inner
            .entries
            .values()
            .filter_map(|e| Some((e.id, e.generation()?)))
            .collect();
        let swept = staging.sweep(|id, g| live.contains(&(id, g)));
        if swept > 0 {
            tracing::info!(files = swept, "removed staging files no entry refers to");
        }
        journal
            .append(&changed, true)
            .map_err(|e| at("journal in", e))?;
        Ok(Writes {
            remote,
            source,
            disk,
            journal,
            staging,
            ignore,
            config,
            made,
            inner: Mutex::new(inner),
            wake: tokio::sync::Notify::new(),
            committed: tokio::sync::Notify::new(),
            reuse_refused: AtomicBool::new(false),
            uid,
            gid,
        })
    }

    /// The versions this mount made, for the namespace.
    pub fn made(&self) -> Arc<MadeVersions> {
        self.made.clone()
    }

    fn inner(&self) -> Result<MutexGuard<'_, Inner>, Error> {
        self.inner.lock().map_err(poisoned)
    }

    /// Records `records` in the journal; `durable` ones are flushed to disk first.
    fn record(&self, records: &[Record], durable: bool) -> Result<(), Error> {
        let len = self
            .journal
            .append(records, durable)
            .map_err(|e| local("writing the journal", e))?;
        let live = self.inner().map(|i| i.entries.len()).unwrap_or(0);
        if Journal::worth_compacting(len, live) {
            self.compact();
        }
        Ok(())
    }

    /// Rewrites the journal as the live entries and the versions made.
    fn compact(&self) {
        let mut live: Vec<Record> = match self.inner() {
            Ok(i) => i
                .entries
                .values()
                .map(|e| Record::Entry(Box::new(e.clone())))
                .collect(),
            Err(_) => return,
        };
        live.extend(self.made.all().into_iter().map(Record::Made));
        if let Err(e) = self.journal.compact(&live) {
            tracing::warn!(error = %e, "cannot compact the write journal");
        }
    }

    /// Saves `e` as it is now (in memory and in the journal).
    fn save(&self, e: &Entry, durable: bool) -> Result<(), Error> {
        {
            let mut i = self.inner()?;
            i.entries.insert(e.id, e.clone());
        }
        self.record(&[Record::Entry(Box::new(e.clone()))], durable)
    }

    /// Marks `folder` changed now (its quiet period starts again) and wakes the reconciler.
    fn touched(&self, folder: &str) {
        self.changed_at(folder);
        self.wake.notify_one();
    }

    /// Marks `folder` changed by a write: the reconciler is woken only by the folder's first
    /// change (it looks again when the quiet period would have ended, and waits on), not by
    /// every write of a large file.
    fn written(&self, folder: &str) {
        if self.changed_at(folder) {
            self.wake.notify_one();
        }
    }

    /// Records a change of `folder` now; whether it is the first since the folder was sent.
    fn changed_at(&self, folder: &str) -> bool {
        let Ok(mut i) = self.inner() else {
            return true;
        };
        let now = Instant::now();
        let first = !i.folders.contains_key(folder);
        i.folders.entry(folder.to_string()).or_insert((now, now)).1 = now;
        first
    }

    // ----- Questions the filesystem asks -------------------------------------------------

    /// The entry named `name` in `folder`, if the overlay has one.
    pub fn find(&self, folder: &str, name: &str) -> Option<Entry> {
        let i = self.inner().ok()?;
        let id = i.by_name.get(&(folder.to_string(), name.to_string()))?;
        i.entries.get(id).cloned()
    }

    /// What `lookup` of `name` in `folder` finds in the overlay, if anything.
    pub fn lookup(&self, folder: &str, name: &str) -> Option<Found> {
        let e = self.find(folder, name)?;
        Some(if e.is_marker() {
            Found::Hidden
        } else {
            Found::Local(self.attr_of(&e))
        })
    }

    /// The entry shown as inode `ino`, if the overlay has one.
    pub fn by_ino(&self, ino: u64) -> Option<Entry> {
        let i = self.inner().ok()?;
        let id = i.by_ino.get(&ino)?;
        i.entries.get(id).cloned()
    }

    /// Attributes of `ino` when the overlay holds it.
    pub fn attr(&self, ino: u64) -> Option<Attr> {
        self.by_ino(ino).map(|e| self.attr_of(&e))
    }

    fn attr_of(&self, e: &Entry) -> Attr {
        let perm = (e.mode & 0o7777) as u16;
        Attr {
            ino: e.ino,
            size: e.size,
            blocks: e.size.div_ceil(512),
            mtime: e.mtime(),
            ctime: e.mtime(),
            is_dir: e.dir,
            perm,
            nlink: if e.dir { 2 } else { 1 },
            uid: self.uid,
            gid: self.gid,
        }
    }

    /// Every entry shown in `folder` (hidden names not included), for listings.
    pub fn entries_in(&self, folder: &str) -> Vec<Entry> {
        let Ok(i) = self.inner() else {
            return Vec::new();
        };
        i.entries
            .values()
            .filter(|e| e.folder == folder && !e.is_marker())
            .cloned()
            .collect()
    }

    /// Names the overlay takes over in `folder` (shown from here, or hidden).
    pub fn names_in(&self, folder: &str) -> HashSet<String> {
        let Ok(i) = self.inner() else {
            return HashSet::new();
        };
        i.entries
            .values()
            .filter(|e| e.folder == folder)
            .map(|e| e.name.clone())
            .collect()
    }

    /// What the entries waiting to be sent are, as far as the overlay knows: new items (no
    /// item has their name yet), renames, deletes.
    pub fn kinds(&self) -> Kinds {
        let mut k = Kinds::default();
        let Ok(i) = self.inner() else { return k };
        for e in i.entries.values().filter(|e| e.pending()) {
            match (&e.state, &e.source, &e.base) {
                (State::Removed, _, _) => k.deletes += 1,
                (_, Source::Remote { .. }, Some(_)) => {
                    k.renames += 1;
                    if !e.bim360 {
                        k.item_patches += 1;
                    }
                }
                (_, _, None) if e.committed.is_none() => k.new_items += 1,
                _ => {}
            }
        }
        k
    }

    /// The folder id a local-only directory inode stands for.
    pub fn local_folder(&self, ino: u64) -> Option<String> {
        self.by_ino(ino)
            .filter(|e| e.dir)
            .map(|e| format!("{LOCAL_FOLDER}{}", e.id))
    }

    /// Room on the filesystem holding the staging area: (blocks, free, available, block size).
    pub fn room(&self) -> Option<(u64, u64, u64, u32)> {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(self.config.dir.as_os_str().as_bytes()).ok()?;
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is a NUL-terminated string and `st` a writable statvfs.
        if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
            return None;
        }
        let frsize = st.f_frsize as u64;
        let to_blocks = |n: u64| n.saturating_mul(frsize) / u64::from(BLOCK);
        Some((
            to_blocks(st.f_blocks as u64),
            to_blocks(st.f_bfree as u64),
            to_blocks(st.f_bavail as u64),
            BLOCK,
        ))
    }

    /// Whether `name` stays on this machine.
    pub fn is_ignored(&self, name: &str, is_dir: bool) -> bool {
        self.ignore.matches(name, is_dir)
    }

    /// A committed entry whose remote item has since moved on (someone saved after us) gives
    /// way to the remote listing: `listed` is the version (id and number) the listing shows
    /// now for the entry's name. An older one (a listing cached before the commit) does not
    /// count. Returns whether the entry was retired.
    pub fn retire_if_superseded(&self, e: &Entry, listed: Option<(&str, u32)>) -> bool {
        let Some(c) = &e.committed else {
            return false;
        };
        let superseded = e.state == State::Committed
            && listed.is_some_and(|(v, n)| v != c.version && n > c.number)
            && self.inner().is_ok_and(|i| !i.writers.contains_key(&e.id));
        if superseded {
            self.forget_entry(e.id);
        }
        superseded
    }

    /// Drops entry `id` from the overlay and its staging file.
    fn forget_entry(&self, id: u64) {
        let gone = match self.inner() {
            Ok(mut i) => {
                let e = i.entries.remove(&id);
                if let Some(e) = &e {
                    i.by_name.remove(&(e.folder.clone(), e.name.clone()));
                    i.by_ino.remove(&e.ino);
                    i.dirty.remove(&id);
                    i.retry_at.remove(&id);
                }
                e
            }
            Err(_) => None,
        };
        if let Some(e) = gone {
            if let Some(g) = e.generation() {
                self.staging.remove(e.id, g);
            }
            if let Err(err) = self.record(&[Record::Gone(id)], false) {
                tracing::warn!(error = %err, "cannot record a dropped entry");
            }
        }
    }

    /// A new entry id.
    fn next_id(&self) -> Result<u64, Error> {
        let mut i = self.inner()?;
        i.next_id += 1;
        Ok(i.next_id)
    }

    /// Puts `e` under its name and its inode. Whatever had the name goes (its staging file
    /// too, and the journal says so, so a restart does not bring it back); but a removed
    /// name's marker that `e` does not continue keeps its item's delete: it moves out of the
    /// way, under a name no file can have (`/removed/ID/NAME`).
    fn place(&self, e: &Entry) -> Result<(), Error> {
        let (replaced, moved) = {
            let mut i = self.inner()?;
            let replaced = i
                .by_name
                .insert((e.folder.clone(), e.name.clone()), e.id)
                .filter(|old| *old != e.id)
                .and_then(|old| i.entries.remove(&old));
            if let Some(r) = &replaced {
                i.by_ino.remove(&r.ino);
                i.dirty.remove(&r.id);
                i.retry_at.remove(&r.id);
            }
            i.by_ino.insert(e.ino, e.id);
            i.entries.insert(e.id, e.clone());
            let item = |x: &Entry| x.base.as_ref().map(|b| b.item.clone());
            match replaced {
                Some(mut r) if r.state == State::Removed && item(&r) != item(e) => {
                    r.name = format!("{REMOVED}{}/{}", r.id, r.name);
                    i.by_name.insert((r.folder.clone(), r.name.clone()), r.id);
                    i.by_ino.insert(r.ino, r.id);
                    i.entries.insert(r.id, r.clone());
                    (None, Some(r))
                }
                r => (r, None),
            }
        };
        if let Some(m) = moved {
            self.record(&[Record::Entry(Box::new(m))], false)?;
        }
        if let Some(old) = replaced {
            if let Some(g) = old.generation() {
                self.staging.remove(old.id, g);
            }
            self.record(&[Record::Gone(old.id)], false)?;
        }
        Ok(())
    }

    /// Whether renaming a file of item `item` to `name` in `folder` takes that name from
    /// another item of the service, which then must go (a rename over it): a file shown there
    /// that continues another item, or one renamed away to a name that stays here. Not a
    /// name removed here (its item goes anyway) or one whose item moves to another name.
    pub fn displaces(&self, folder: &str, name: &str, item: &str) -> bool {
        let Some(e) = self.find(folder, name) else {
            return false;
        };
        let Some(other) = e.base.as_ref().map(|b| b.item.clone()) else {
            return false;
        };
        match e.state {
            _ if other == item => false,
            State::Removed => false,
            State::Hidden => !self.carried_elsewhere(folder, &other, name),
            _ => true,
        }
    }

    /// Whether an entry in `folder` other than the one named `name` continues item `item` (a
    /// rename of it not sent yet, with or without new bytes).
    pub(super) fn carried_elsewhere(&self, folder: &str, item: &str, name: &str) -> bool {
        let Ok(i) = self.inner() else { return false };
        i.entries.values().any(|e| {
            e.folder == folder
                && e.name != name
                && !e.is_marker()
                && e.state != State::LocalOnly
                && e.base.as_ref().is_some_and(|b| b.item == item)
        })
    }

    // ----- Bytes ---------------------------------------------------------------------------

    /// The staging file of `e` (which must be staged).
    fn file(&self, e: &Entry) -> Result<File, Error> {
        let g = e
            .generation()
            .ok_or_else(|| Error::Internal(format!("{} has no staged bytes", e.name)))?;
        self.staging
            .open_file(e.id, g)
            .map_err(|err| local("opening a staging file", err))
    }

    /// Up to `len` bytes at `offset` of entry `id` (fewer only at its end).
    pub async fn read(&self, id: u64, offset: u64, len: u64) -> Result<Bytes, Error> {
        let e = self.entry(id)?;
        let end = e.size.min(offset.saturating_add(len));
        if offset >= end {
            return Ok(Bytes::new());
        }
        match &e.source {
            Source::Remote { storage, size } => Ok(self
                .source
                .read(storage, *size, offset, end - offset)
                .await?),
            Source::Staged(_) => {
                let f = self.file(&e)?;
                let mut buf = vec![0u8; (end - offset) as usize];
                f.read_exact_at(&mut buf, offset)
                    .map_err(|err| local("reading a staging file", err))?;
                Ok(buf.into())
            }
            Source::None => Err(Error::IsDir),
        }
    }

    /// The entry `id` as it is now.
    pub fn entry(&self, id: u64) -> Result<Entry, Error> {
        self.inner()?
            .entries
            .get(&id)
            .cloned()
            .ok_or(Error::BadHandle)
    }

    /// Brings `e`'s bytes into a staging file it may write (copying a remote source, or the
    /// generation an upload is reading), and marks it open for writing. Returns it as changed.
    async fn writable(&self, id: u64) -> Result<Entry, Error> {
        let mut e = self.entry(id)?;
        let uploading = self.inner()?.uploading.contains_key(&id);
        match e.source.clone() {
            Source::Staged(g) if uploading => {
                // An upload reads generation `g`: the writer gets a copy, and that upload
                // still becomes the version it was a save of.
                let staging = &self.staging;
                staging
                    .copy(id, g, g + 1)
                    .map_err(|err| local("copying a staging file", err))?;
                e.source = Source::Staged(g + 1);
            }
            Source::Staged(_) => {}
            Source::Remote { storage, size } => {
                self.fill(id, 0, &storage, size).await?;
                e.source = Source::Staged(0);
            }
            Source::None => return Err(Error::IsDir),
        }
        if e.state == State::Sealed || e.state == State::Committed || e.state == State::Recovered {
            e.state = State::Open;
            if e.upload.as_ref().is_some_and(|u| !uploading || u.completed) {
                e.upload = None;
            }
        }
        e.error = None;
        Ok(e)
    }

    /// Copies remote object `storage` (`size` bytes) into staging generation `g` of `id`.
    async fn fill(&self, id: u64, g: u32, storage: &str, size: u64) -> Result<(), Error> {
        const CHUNK: u64 = 8 << 20;
        let f = self
            .staging
            .create(id, g)
            .map_err(|err| local("creating a staging file", err))?;
        let mut at = 0;
        while at < size {
            let len = CHUNK.min(size - at);
            let bytes = self.source.read(storage, size, at, len).await?;
            f.write_all_at(&bytes, at)
                .map_err(|err| local("writing a staging file", err))?;
            at += len;
        }
        Ok(())
    }

    /// Marks entry `id` changed (not durable until the next flush).
    fn dirty(&self, id: u64) -> Result<(), Error> {
        self.inner()?.dirty.insert(id);
        Ok(())
    }

    /// Makes `id`'s content durable (its staging file flushed, then the journal record
    /// saying so): what `close` (`closing`) and `fsync` promise. A close by the last writer
    /// also makes the entry sendable; while a writer still holds it open it stays `Open`, so a
    /// crash then keeps it as `Recovered` rather than sending a half-written file.
    pub async fn seal(&self, id: u64, closing: bool) -> Result<(), Error> {
        let (was_dirty, writers) = {
            let mut i = self.inner()?;
            (
                i.dirty.remove(&id),
                i.writers.get(&id).copied().unwrap_or(0),
            )
        };
        let e = self.entry(id)?;
        let finished = e.state == State::Open && (writers == 0 || (closing && writers <= 1));
        if !was_dirty && !finished {
            return Ok(());
        }
        if was_dirty {
            if let Source::Staged(_) = e.source {
                let f = self.file(&e)?;
                tokio::task::spawn_blocking(move || f.sync_data())
                    .await
                    .map_err(|err| Error::Internal(err.to_string()))?
                    .map_err(|err| local("flushing a staging file", err))?;
            }
        }
        let mut e = self.entry(id)?;
        if finished && e.state == State::Open {
            e.state = if self.stays_local(&e) {
                State::LocalOnly
            } else {
                State::Sealed
            };
        }
        self.save(&e, true)?;
        self.touched(&e.folder);
        Ok(())
    }

    /// Whether `e` stays on this machine (an ignored name, or inside a local-only directory).
    fn stays_local(&self, e: &Entry) -> bool {
        e.folder.starts_with(LOCAL_FOLDER) || self.ignore.matches(&e.name, e.dir)
    }

    /// A new entry for `name` at `at`, with no bytes yet.
    #[allow(clippy::too_many_arguments)]
    fn new_entry(
        &self,
        id: u64,
        ino: u64,
        at: &Place,
        name: &str,
        dir: bool,
        mode: u32,
        source: Source,
        base: Option<Base>,
    ) -> Entry {
        let mut e = Entry {
            id,
            ino,
            parent: at.dir,
            project: at.project.clone(),
            bim360: at.flavour == Flavour::Bim360,
            folder: at.folder.clone(),
            name: name.to_string(),
            dir,
            state: State::Open,
            source,
            base,
            size: 0,
            mtime_ns: entry::nanos(SystemTime::now()),
            mode,
            sha256: None,
            upload: None,
            committed: None,
            conflict: None,
            error: None,
            attempts: 0,
        };
        if dir || self.stays_local(&e) {
            e.state = State::LocalOnly;
        }
        e
    }
}
