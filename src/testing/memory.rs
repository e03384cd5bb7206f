//! An in-memory APS account behind the `Remote` seam: hubs, projects, folders, items with every
//! version, refs, buckets and object bytes, changeable while a filesystem runs over it the way
//! the service changes (new versions, items added, removed, hidden or deleted, renames, folders
//! that may not be listed, listings without `storageSize`). Every request is counted per
//! operation, so tests can assert that something cost no request.
//!
//! One lock guards the account; it is never held across an `.await`, so a request sees the
//! account as it is when the request is answered (after any added latency).

use super::op::Op;
use crate::api::oss::OBJECT_URN_PREFIX;
use crate::api::{
    ApiError, Bucket, Entry, Flavour, FolderChange, FolderInfo, Hub, ItemInfo, Meta, ObjectInfo,
    Project, RefInfo, Remote, UploadUrls, VersionInfo,
};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

/// Hub id of `MemoryRemote::with_project`, for tests that mount one project.
pub const HUB: &str = "h";
/// Project id of `MemoryRemote::with_project`.
pub const PROJECT: &str = "p";
/// Id of the one top folder of `MemoryRemote::with_project`.
pub const TOP: &str = "top";
/// Name of that top folder, the first component of every path in a project mount.
pub const TOP_NAME: &str = "Project Files";

/// A fixed point in time `s` seconds after a base, so tests can assert exact times.
pub fn time(s: u64) -> Option<SystemTime> {
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s))
}

/// Version `n` of `item` as the service lists it: created at `time(n)`, modified ten seconds
/// later, so tests can tell the two apart.
pub fn version(
    item: &str,
    n: u32,
    name: &str,
    size: Option<u64>,
    storage: Option<&str>,
) -> VersionInfo {
    VersionInfo {
        id: format!("{item}?version={n}"),
        number: n,
        name: name.into(),
        size,
        storage: storage.map(String::from),
        created: time(u64::from(n)),
        modified: time(u64::from(n) + 10),
        deleted: false,
        meta: Meta::default(),
    }
}

/// A folder as listed, with fixed times and no rollup, for building accounts tersely.
pub fn folder_info(id: &str, name: &str) -> FolderInfo {
    FolderInfo {
        id: id.into(),
        name: name.into(),
        hidden: false,
        created: time(0),
        modified: time(1),
        rollup: None,
        object_count: None,
        meta: Meta::default(),
    }
}

/// The storage object of version `n` of `item`, spelled as the service spells storage ids.
pub fn storage_of(item: &str, n: u32) -> String {
    format!("{OBJECT_URN_PREFIX}wip.dm.prod/{item}-v{n}")
}

/// `len` bytes at `offset` of a pattern object (`put_pattern`): byte `p` is `p % 251`, so any
/// range of any size can be checked without keeping the object.
pub fn pattern(offset: u64, len: u64) -> Vec<u8> {
    (offset..offset + len).map(|p| (p % 251) as u8).collect()
}

/// The bytes of a storage object.
enum Object {
    /// Kept as given.
    Bytes(Bytes),
    /// `pattern` bytes of this size, made on demand (objects of gigabytes cost nothing).
    Pattern(u64),
}

impl Object {
    fn len(&self) -> u64 {
        match self {
            Object::Bytes(b) => b.len() as u64,
            Object::Pattern(size) => *size,
        }
    }

    fn range(&self, offset: u64, len: u64) -> Bytes {
        match self {
            Object::Bytes(b) => b.slice(offset as usize..(offset + len) as usize),
            Object::Pattern(_) => pattern(offset, len).into(),
        }
    }
}

struct Folder {
    info: FolderInfo,
    /// `None` for a top folder.
    parent: Option<String>,
    /// Folder and item ids in listing order.
    children: Vec<String>,
    /// What a listing of it answers instead of its children (e.g. 403).
    error: Option<ApiError>,
}

struct Item {
    /// The item; its `tip` is made from `versions` when listed.
    info: ItemInfo,
    /// Every version, newest first.
    versions: Vec<VersionInfo>,
    folder: String,
    /// Whether listings carry the tip's `storageSize`.
    size_listed: bool,
}

struct OwnBucket {
    bucket: Bucket,
    owner: String,
    objects: Vec<ObjectInfo>,
}

#[derive(Default)]
struct State {
    hubs: Vec<Hub>,
    projects: HashMap<String, Vec<Project>>,
    /// Top folder ids by project.
    tops: HashMap<String, Vec<String>>,
    folders: HashMap<String, Folder>,
    items: HashMap<String, Item>,
    refs: HashMap<(String, String), Vec<RefInfo>>,
    buckets: BTreeMap<String, OwnBucket>,
    objects: HashMap<String, Object>,
    /// Every read as `(storage, offset, len)`, in the order they arrived.
    reads: Vec<(String, u64, u64)>,
    /// Every `prepare` and `prepare_many` as the storages it named, in the order they arrived.
    prepared: Vec<Vec<String>>,
    /// Whether `prepare_many` is one request (a service that signs in batches).
    single_signing: bool,
    latency: [Duration; Op::ALL.len()],
    /// Whether every change moves the rollups of the folders above it.
    track_rollups: bool,
    rollups: u64,
    /// The write side: storage objects made and not yet uploaded, uploads in progress.
    writes: Writes,
    /// A BIM 360 / ACC account: its folders and items carry the `bim360` types, item renames
    /// are refused (a rename is a version with the new name) and deletes are tombstones; other
    /// accounts rename items and refuse tombstones.
    bim360: bool,
}

/// What the write calls keep between requests, as storage and OSS would.
#[derive(Default)]
struct Writes {
    /// Storage URNs made by `create_storage`, by the folder and name they were made for.
    made: HashMap<String, (String, String)>,
    /// Uploads in progress by `uploadKey`: the storage and the parts received (bytes, ETag).
    uploads: HashMap<String, (String, Parts)>,
    /// Signed part URLs handed out that storage refuses from now on (expired).
    expired: std::collections::HashSet<String>,
    /// Part URLs signed so far, so each URL is distinct.
    signed: u64,
    /// Smallest part but the last, as S3 checks at completion (5 MiB unless a test lowers it).
    min_part: Option<u64>,
    /// Completions answer 404, as a completed (or expired) upload session does.
    fail_completions: bool,
    /// Items reserved (locked) by another user: new versions answer 423.
    reserved: std::collections::HashSet<String>,
    /// Objects, items and versions made so far, for unique ids.
    made_ids: u64,
    /// A version or item on storage another version holds is refused (400), as a service
    /// that does not share storage between versions would.
    refuse_reuse: bool,
}

/// The parts of an upload received so far, by part number: bytes and ETag.
type Parts = BTreeMap<u32, (Bytes, String)>;

/// S3's smallest part but the last.
const MIN_PART: u64 = 5 << 20;

impl State {
    fn folder(&mut self, id: &str) -> &mut Folder {
        match self.folders.get_mut(id) {
            Some(f) => f,
            None => panic!("the memory remote has no folder {id}"),
        }
    }

    fn item(&mut self, id: &str) -> &mut Item {
        match self.items.get_mut(id) {
            Some(i) => i,
            None => panic!("the memory remote has no item {id}"),
        }
    }

    /// Something in `folder` changed: like the service, move the rollup of it and of every
    /// folder above it.
    fn touch(&mut self, folder: &str) {
        if !self.track_rollups {
            return;
        }
        let mut at = Some(folder.to_string());
        while let Some(id) = at {
            self.rollups += 1;
            let rollup = format!("rollup-{}", self.rollups);
            let Some(f) = self.folders.get_mut(&id) else {
                break;
            };
            f.info.rollup = Some(rollup);
            at = f.parent.clone();
        }
    }

    /// The entry a listing shows for a child id, if it still exists.
    fn entry(&self, id: &str) -> Option<Entry> {
        if let Some(f) = self.folders.get(id) {
            return Some(Entry::Folder(self.typed_folder(f.info.clone())));
        }
        let item = self.items.get(id)?;
        let mut info = self.typed_item(item.info.clone());
        info.tip = item.versions.first().cloned().map(|mut tip| {
            if !item.size_listed {
                tip.size = None;
            }
            tip
        });
        Some(Entry::Item(info))
    }

    /// `f` with the extension type of this account's folders, unless a test set one.
    fn typed_folder(&self, mut f: FolderInfo) -> FolderInfo {
        if self.bim360 && f.meta.ext_type.is_none() {
            f.meta.ext_type = Some(Flavour::Bim360.folder_type().into());
        }
        f
    }

    /// `i` with the extension type of this account's items, unless a test set one.
    fn typed_item(&self, mut i: ItemInfo) -> ItemInfo {
        if self.bim360 && i.meta.ext_type.is_none() {
            i.meta.ext_type = Some(Flavour::Bim360.item_type().into());
        }
        i
    }

    /// The name `item`'s file shows (see `ItemInfo::file_name`), if it is not deleted.
    fn shown_name(&self, item: &Item) -> Option<String> {
        let tip = item.versions.first()?;
        if tip.deleted || item.info.hidden {
            return None;
        }
        let mut info = self.typed_item(item.info.clone());
        info.tip = Some(tip.clone());
        Some(info.file_name().to_string())
    }

    /// Makes `v` the newest version of `item`.
    fn push_version(&mut self, item: &str, v: VersionInfo) {
        let it = self.item(item);
        it.versions.insert(0, v);
        let folder = it.folder.clone();
        self.touch(&folder);
    }

    /// The tip of `item`, which every item added here has.
    fn tip(&mut self, item: &str) -> VersionInfo {
        match self.item(item).versions.first() {
            Some(v) => v.clone(),
            None => panic!("item {item} has no version"),
        }
    }
}

/// Counts a request while it is in flight.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An in-memory account implementing `Remote`, so filesystem logic runs without a server.
pub struct MemoryRemote {
    state: Mutex<State>,
    requests: [AtomicUsize; Op::ALL.len()],
    in_flight: [AtomicUsize; Op::ALL.len()],
    max_in_flight: [AtomicUsize; Op::ALL.len()],
}

impl Default for MemoryRemote {
    fn default() -> Self {
        MemoryRemote {
            state: Mutex::default(),
            requests: std::array::from_fn(|_| AtomicUsize::new(0)),
            in_flight: std::array::from_fn(|_| AtomicUsize::new(0)),
            max_in_flight: std::array::from_fn(|_| AtomicUsize::new(0)),
        }
    }
}

impl MemoryRemote {
    /// An account with nothing in it, for tests that only need some of the seam (bytes).
    pub fn new() -> MemoryRemote {
        MemoryRemote::default()
    }

    /// Hub `h` ("Hub") with project `p` ("Proj") and its empty top folder `top` ("Project
    /// Files"): the account most filesystem tests mount.
    pub fn with_project() -> MemoryRemote {
        let m = MemoryRemote::new();
        m.add_hub(Hub {
            id: HUB.into(),
            name: "Hub".into(),
            meta: Meta::default(),
        });
        m.add_project(
            HUB,
            Project {
                id: PROJECT.into(),
                name: "Proj".into(),
                meta: Meta::default(),
            },
        );
        let mut top = folder_info(TOP, TOP_NAME);
        top.modified = time(0);
        m.add_top_folder(PROJECT, top);
        m
    }

    /// Refuses versions and items on storage another version holds (see `Writes::refuse_reuse`).
    pub fn refuse_storage_reuse(&self, refuse: bool) {
        self.state().writes.refuse_reuse = refuse;
    }

    /// Makes the account a BIM 360 / ACC one (see `State::bim360`).
    pub fn set_bim360(&self, bim360: bool) {
        self.state().bim360 = bim360;
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has failed already; what it left is
        // still the best answer for the requests still arriving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a request and waits the latency set for its operation.
    async fn begin(&self, op: Op) -> InFlight<'_> {
        let i = op.index();
        self.requests[i].fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight[i].fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight[i].fetch_max(now, Ordering::SeqCst);
        let guard = InFlight(&self.in_flight[i]);
        let latency = self.state().latency[i];
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        guard
    }

    /// Adds a hub, so whole-account mounts have something at their root.
    pub fn add_hub(&self, hub: Hub) {
        self.state().hubs.push(hub);
    }

    /// Adds a project to `hub`.
    pub fn add_project(&self, hub: &str, project: Project) {
        let mut s = self.state();
        s.tops.entry(project.id.clone()).or_default();
        s.projects.entry(hub.into()).or_default().push(project);
    }

    /// Adds a top folder to `project`.
    pub fn add_top_folder(&self, project: &str, folder: FolderInfo) {
        let mut s = self.state();
        s.tops
            .entry(project.into())
            .or_default()
            .push(folder.id.clone());
        s.folders.insert(
            folder.id.clone(),
            Folder {
                info: folder,
                parent: None,
                children: Vec::new(),
                error: None,
            },
        );
    }

    /// Adds a folder at the end of `parent`'s listing.
    pub fn add_folder(&self, parent: &str, folder: FolderInfo) {
        let mut s = self.state();
        s.folder(parent).children.push(folder.id.clone());
        s.folders.insert(
            folder.id.clone(),
            Folder {
                info: folder,
                parent: Some(parent.into()),
                children: Vec::new(),
                error: None,
            },
        );
        s.touch(parent);
    }

    /// Adds an item at the end of `folder`'s listing; its `tip`, if any, is its one version.
    pub fn add_item(&self, folder: &str, mut item: ItemInfo) {
        let mut s = self.state();
        let versions = item.tip.take().into_iter().collect();
        s.folder(folder).children.push(item.id.clone());
        s.items.insert(
            item.id.clone(),
            Item {
                info: item,
                versions,
                folder: folder.into(),
                size_listed: true,
            },
        );
        s.touch(folder);
    }

    /// Adds `v` as the newest version of `item` (its tip from now on), as an upload does.
    pub fn add_version(&self, item: &str, v: VersionInfo) {
        self.state().push_version(item, v);
    }

    /// Adds a file: an item `id` whose one version, named `name`, holds `bytes`. Returns its
    /// storage id.
    pub fn add_file(&self, folder: &str, id: &str, name: &str, bytes: &[u8]) -> String {
        let storage = storage_of(id, 1);
        self.put_object(&storage, bytes);
        self.add_item(
            folder,
            ItemInfo {
                id: id.into(),
                display_name: name.into(),
                hidden: false,
                tip: Some(version(
                    id,
                    1,
                    name,
                    Some(bytes.len() as u64),
                    Some(&storage),
                )),
                meta: Meta::default(),
            },
        );
        storage
    }

    /// Uploads `bytes` as a new version of `item`, under the tip's name; returns that version.
    pub fn upload(&self, item: &str, bytes: &[u8]) -> VersionInfo {
        let mut s = self.state();
        let tip = s.tip(item);
        let n = tip.number + 1;
        let storage = storage_of(item, n);
        s.objects.insert(
            storage.clone(),
            Object::Bytes(Bytes::copy_from_slice(bytes)),
        );
        let v = version(item, n, &tip.name, Some(bytes.len() as u64), Some(&storage));
        s.push_version(item, v.clone());
        v
    }

    /// Deletes `item` as the service does: a tombstone version becomes its tip.
    pub fn tombstone(&self, item: &str) {
        let mut s = self.state();
        let tip = s.tip(item);
        let mut v = version(item, tip.number + 1, &tip.name, None, None);
        v.deleted = true;
        s.push_version(item, v);
    }

    /// Renames a folder, or an item (which, as on the service, makes a new version of the same
    /// bytes under the new name).
    pub fn rename(&self, id: &str, name: &str) {
        let mut s = self.state();
        if let Some(f) = s.folders.get_mut(id) {
            f.info.name = name.into();
            if let Some(parent) = f.parent.clone() {
                s.touch(&parent);
            }
            return;
        }
        let tip = s.tip(id);
        let mut v = version(id, tip.number + 1, name, tip.size, tip.storage.as_deref());
        v.meta = tip.meta;
        s.item(id).info.display_name = name.into();
        s.push_version(id, v);
    }

    /// Removes an item or folder from its folder for good, so it is answered as not found.
    pub fn remove(&self, id: &str) {
        let mut s = self.state();
        let parent = match (s.items.remove(id), s.folders.remove(id)) {
            (Some(item), _) => Some(item.folder),
            (None, Some(folder)) => folder.parent,
            (None, None) => panic!("the memory remote has no item or folder {id}"),
        };
        match &parent {
            Some(p) => {
                s.folder(p).children.retain(|c| c != id);
                s.touch(p);
            }
            None => s.tops.values_mut().for_each(|t| t.retain(|c| c != id)),
        }
    }

    /// Soft-deletes (or restores) an item or folder: still listed, flagged `hidden`.
    pub fn set_hidden(&self, id: &str, hidden: bool) {
        let mut s = self.state();
        let parent = if let Some(f) = s.folders.get_mut(id) {
            f.info.hidden = hidden;
            f.parent.clone()
        } else {
            let item = s.item(id);
            item.info.hidden = hidden;
            Some(item.folder.clone())
        };
        if let Some(p) = parent {
            s.touch(&p);
        }
    }

    /// Makes listings of `folder` answer `error` (or its children again, with `None`).
    pub fn set_listing_error(&self, folder: &str, error: Option<ApiError>) {
        self.state().folder(folder).error = error;
    }

    /// Makes `folder` answer 403 when listed, as folders the account may not see do.
    pub fn forbid(&self, folder: &str) {
        self.set_listing_error(folder, Some(ApiError::Forbidden(folder.into())));
    }

    /// Whether listings carry `storageSize` for `item`'s tip (the service sometimes omits it).
    pub fn set_size_listed(&self, item: &str, listed: bool) {
        self.state().item(item).size_listed = listed;
    }

    /// Sets the `lastModifiedTimeRollup` a folder is listed with.
    pub fn set_rollup(&self, folder: &str, rollup: Option<&str>) {
        self.state().folder(folder).info.rollup = rollup.map(String::from);
    }

    /// From now on every change moves the rollup of its folder and of every folder above, as
    /// the service does, so rollup confirmations can be tested against changes.
    pub fn track_rollups(&self) {
        let mut s = self.state();
        s.track_rollups = true;
        let ids: Vec<String> = s.folders.keys().cloned().collect();
        for id in ids {
            s.touch(&id);
        }
    }

    /// Adds a ref of resource `kind`/`id` (`items`, `versions` or `folders`).
    pub fn add_ref(&self, kind: &str, id: &str, r: RefInfo) {
        self.state()
            .refs
            .entry((kind.into(), id.into()))
            .or_default()
            .push(r);
    }

    /// Adds one of the app's own buckets, owned by `owner`.
    pub fn add_bucket(&self, bucket: Bucket, owner: &str) {
        self.state().buckets.insert(
            bucket.key.clone(),
            OwnBucket {
                bucket,
                owner: owner.into(),
                objects: Vec::new(),
            },
        );
    }

    /// Adds an object to a bucket, its bytes readable at the storage id its key makes.
    pub fn put_bucket_object(&self, bucket: &str, key: &str, bytes: &[u8], sha1: Option<&str>) {
        let mut s = self.state();
        let Some(b) = s.buckets.get_mut(bucket) else {
            panic!("the memory remote has no bucket {bucket}");
        };
        b.objects.push(ObjectInfo {
            key: key.into(),
            size: bytes.len() as u64,
            sha1: sha1.map(String::from),
        });
        s.objects.insert(
            format!("{OBJECT_URN_PREFIX}{bucket}/{key}"),
            Object::Bytes(Bytes::copy_from_slice(bytes)),
        );
    }

    /// Stores the bytes of a storage object.
    pub fn put_object(&self, storage: &str, bytes: &[u8]) {
        self.state()
            .objects
            .insert(storage.into(), Object::Bytes(Bytes::copy_from_slice(bytes)));
    }

    /// Stores an object of `size` `pattern` bytes, for read tests of any size.
    pub fn put_pattern(&self, storage: &str, size: u64) {
        self.state()
            .objects
            .insert(storage.into(), Object::Pattern(size));
    }

    /// Makes every request of `op` take `latency`, so requests overlap as they do on a network.
    pub fn set_latency(&self, op: Op, latency: Duration) {
        self.state().latency[op.index()] = latency;
    }

    /// The tip version of `item` (what its folder lists), for checking what a mount shows.
    pub fn tip(&self, item: &str) -> Option<VersionInfo> {
        self.state().items.get(item)?.versions.first().cloned()
    }

    /// Requests of `op` answered or in flight so far.
    pub fn requests(&self, op: Op) -> usize {
        self.requests[op.index()].load(Ordering::SeqCst)
    }

    /// Most requests of `op` in flight at the same moment so far, to show requests overlap.
    pub fn max_in_flight(&self, op: Op) -> usize {
        self.max_in_flight[op.index()].load(Ordering::SeqCst)
    }

    /// Makes `prepare_many` sign one object at a time, as after the service refused a batch.
    pub fn sign_singly(&self) {
        self.state().single_signing = true;
    }

    /// The storages each `prepare` or `prepare_many` named, in the order they arrived.
    pub fn prepared(&self) -> Vec<Vec<String>> {
        self.state().prepared.clone()
    }

    /// Every range read as `(storage, offset, len)`, in the order asked.
    pub fn reads(&self) -> Vec<(String, u64, u64)> {
        self.state().reads.clone()
    }

    /// Every range read of `storage` as `(offset, len)`, in the order asked.
    pub fn reads_of(&self, storage: &str) -> Vec<(u64, u64)> {
        self.state()
            .reads
            .iter()
            .filter(|(s, _, _)| s == storage)
            .map(|&(_, o, l)| (o, l))
            .collect()
    }
}

impl MemoryRemote {
    /// Lowers the smallest part size completion accepts, so tests upload many parts cheaply.
    pub fn set_min_part(&self, bytes: u64) {
        self.state().writes.min_part = Some(bytes);
    }

    /// Makes completions answer 404 (the session is over), or not.
    pub fn fail_completions(&self, fail: bool) {
        self.state().writes.fail_completions = fail;
    }

    /// Makes every part URL signed so far refused, as expired URLs are.
    pub fn expire_part_urls(&self) {
        let mut s = self.state();
        let urls: Vec<String> = (1..=s.writes.signed).map(part_url).collect();
        s.writes.expired.extend(urls);
    }

    /// Reserves (locks) `item` for another user, or lifts that.
    pub fn set_reserved(&self, item: &str, reserved: bool) {
        let mut s = self.state();
        if reserved {
            s.writes.reserved.insert(item.into());
        } else {
            s.writes.reserved.remove(item);
        }
        let lock = reserved.then(|| Box::new(someone_else()));
        let folder = s.item(item).folder.clone();
        s.item(item).info.meta.reserved = lock;
        s.touch(&folder);
    }

    /// Every version of `item`, newest first.
    pub fn versions(&self, item: &str) -> Vec<VersionInfo> {
        self.state()
            .items
            .get(item)
            .map(|i| i.versions.clone())
            .unwrap_or_default()
    }

    /// The bytes of a storage object, when it holds any.
    pub fn object(&self, storage: &str) -> Option<Bytes> {
        let s = self.state();
        let o = s.objects.get(storage)?;
        Some(o.range(0, o.len()))
    }

    /// The items of `folder` by the name their file shows (deleted ones left out), for tests
    /// that check what a save made.
    pub fn items_in(&self, folder: &str) -> Vec<(String, String)> {
        let s = self.state();
        let Some(f) = s.folders.get(folder) else {
            return Vec::new();
        };
        f.children
            .iter()
            .filter_map(|id| Some((s.shown_name(s.items.get(id)?)?, id.clone())))
            .collect()
    }

    /// The folder `id` is in now, if it is a folder or item the account has.
    pub fn parent_of(&self, id: &str) -> Option<String> {
        let s = self.state();
        match s.items.get(id) {
            Some(i) => Some(i.folder.clone()),
            None => s.folders.get(id)?.parent.clone(),
        }
    }

    /// Whether folder `id` is hidden (deleted on BIM 360 / ACC).
    pub fn folder_hidden(&self, id: &str) -> bool {
        self.state().folders.get(id).is_some_and(|f| f.info.hidden)
    }

    /// The folder of `folder` called `name`, when there is one.
    pub fn folder_named(&self, folder: &str, name: &str) -> Option<String> {
        let s = self.state();
        s.folders.get(folder)?.children.iter().find_map(|id| {
            let f = s.folders.get(id)?;
            (f.info.name == name).then(|| id.clone())
        })
    }

    /// The folders of `folder` that are not hidden, as `(name, id)` in listing order, for tests
    /// that walk what the account shows.
    pub fn subfolders(&self, folder: &str) -> Vec<(String, String)> {
        let s = self.state();
        let Some(f) = s.folders.get(folder) else {
            return Vec::new();
        };
        f.children
            .iter()
            .filter_map(|id| s.folders.get(id).map(|sub| (id, sub)))
            .filter(|(_, sub)| !sub.info.hidden)
            .map(|(id, sub)| (sub.info.name.clone(), id.clone()))
            .collect()
    }

    /// Every item the account has, deleted and hidden ones too, sorted.
    pub fn item_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.state().items.keys().cloned().collect();
        ids.sort();
        ids
    }
}

/// A reservation (lock) by another user.
fn someone_else() -> crate::api::types::Reserved {
    crate::api::types::Reserved {
        by: Some("someone else".into()),
        since: None,
        user_id: Some("other-user".into()),
    }
}

/// The signed URL of the `n`th part URL handed out.
fn part_url(n: u64) -> String {
    format!("memory://upload/{n}")
}

fn refused(status: u16, detail: impl Into<String>) -> ApiError {
    ApiError::Refused {
        status,
        detail: detail.into(),
    }
}

impl State {
    /// Whether a visible child of `folder` other than `except` is called `name`.
    fn name_taken(&self, folder: &str, name: &str, except: Option<&str>) -> bool {
        let Some(f) = self.folders.get(folder) else {
            return false;
        };
        f.children.iter().any(|id| {
            if Some(id.as_str()) == except {
                return false;
            }
            if let Some(sub) = self.folders.get(id) {
                return !sub.info.hidden && sub.info.name == name;
            }
            self.items
                .get(id)
                .is_some_and(|i| self.shown_name(i).as_deref() == Some(name))
        })
    }

    /// A fresh id with `prefix`.
    fn fresh(&mut self, prefix: &str) -> String {
        self.writes.made_ids += 1;
        format!("{prefix}{}", self.writes.made_ids)
    }

    /// Version `n` of `item` named `name` holding uploaded `storage`.
    fn uploaded_version(
        &self,
        item: &str,
        n: u32,
        name: &str,
        storage: &str,
    ) -> Result<VersionInfo, ApiError> {
        let o = self
            .objects
            .get(storage)
            .ok_or_else(|| refused(400, format!("storage {storage} has not been uploaded")))?;
        let shared = || {
            self.items.values().any(|i| {
                i.versions
                    .iter()
                    .any(|v| v.storage.as_deref() == Some(storage))
            })
        };
        if self.writes.refuse_reuse && shared() {
            return Err(refused(400, "storage is already used by another version"));
        }
        let now = Some(SystemTime::now());
        Ok(VersionInfo {
            created: now,
            modified: now,
            ..version(item, n, name, Some(o.len()), Some(storage))
        })
    }
}

fn not_found(what: &str) -> ApiError {
    ApiError::NotFound(what.into())
}

impl Remote for MemoryRemote {
    async fn hubs(&self) -> Result<Vec<Hub>, ApiError> {
        let _r = self.begin(Op::Hubs).await;
        Ok(self.state().hubs.clone())
    }

    async fn projects(&self, hub: &str) -> Result<Vec<Project>, ApiError> {
        let _r = self.begin(Op::Projects).await;
        self.state()
            .projects
            .get(hub)
            .cloned()
            .ok_or_else(|| not_found(hub))
    }

    async fn top_folders(&self, _hub: &str, project: &str) -> Result<Vec<FolderInfo>, ApiError> {
        let _r = self.begin(Op::TopFolders).await;
        let s = self.state();
        let tops = s.tops.get(project).ok_or_else(|| not_found(project))?;
        Ok(tops
            .iter()
            .filter_map(|id| s.folders.get(id))
            .map(|f| s.typed_folder(f.info.clone()))
            .collect())
    }

    async fn folder_contents(
        &self,
        _project: &str,
        folder: &str,
        _expected: Option<u64>,
    ) -> Result<Vec<Entry>, ApiError> {
        let _r = self.begin(Op::FolderContents).await;
        let s = self.state();
        let f = s.folders.get(folder).ok_or_else(|| not_found(folder))?;
        if let Some(e) = &f.error {
            return Err(e.clone());
        }
        Ok(f.children.iter().filter_map(|id| s.entry(id)).collect())
    }

    async fn item_versions(
        &self,
        _project: &str,
        item: &str,
    ) -> Result<Vec<VersionInfo>, ApiError> {
        let _r = self.begin(Op::ItemVersions).await;
        self.state()
            .items
            .get(item)
            .map(|i| i.versions.clone())
            .ok_or_else(|| not_found(item))
    }

    async fn refs(&self, _project: &str, kind: &str, id: &str) -> Result<Vec<RefInfo>, ApiError> {
        let _r = self.begin(Op::Refs).await;
        Ok(self
            .state()
            .refs
            .get(&(kind.into(), id.into()))
            .cloned()
            .unwrap_or_default())
    }

    async fn buckets(&self, _region: &str) -> Result<Vec<Bucket>, ApiError> {
        let _r = self.begin(Op::Buckets).await;
        Ok(self
            .state()
            .buckets
            .values()
            .map(|b| b.bucket.clone())
            .collect())
    }

    async fn bucket_owner(&self, bucket: &str) -> Result<String, ApiError> {
        let _r = self.begin(Op::BucketOwner).await;
        self.state()
            .buckets
            .get(bucket)
            .map(|b| b.owner.clone())
            .ok_or_else(|| not_found(bucket))
    }

    async fn bucket_objects(&self, bucket: &str) -> Result<Vec<ObjectInfo>, ApiError> {
        let _r = self.begin(Op::BucketObjects).await;
        self.state()
            .buckets
            .get(bucket)
            .map(|b| b.objects.clone())
            .ok_or_else(|| not_found(bucket))
    }

    async fn object_size(&self, storage: &str) -> Result<u64, ApiError> {
        let _r = self.begin(Op::ObjectSize).await;
        self.state()
            .objects
            .get(storage)
            .map(Object::len)
            .ok_or_else(|| not_found(storage))
    }

    async fn prepare(&self, storage: &str) {
        self.state().prepared.push(vec![storage.to_string()]);
        let _r = self.begin(Op::Prepare).await;
    }

    /// One request for all of them, as a batch signing request is; `prepare` for each when
    /// told to sign one at a time.
    async fn prepare_many(&self, storages: &[String]) {
        if !self.signs_in_batches() {
            return crate::api::prepare_each(self, storages.iter().map(String::as_str)).await;
        }
        self.state().prepared.push(storages.to_vec());
        let _r = self.begin(Op::PrepareMany).await;
    }

    fn signs_in_batches(&self) -> bool {
        !self.state().single_signing
    }

    async fn read(
        &self,
        storage: &str,
        size: u64,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, ApiError> {
        let _r = self.begin(Op::Read).await;
        let mut s = self.state();
        s.reads.push((storage.into(), offset, len));
        let o = s.objects.get(storage).ok_or_else(|| not_found(storage))?;
        // As the client does: storage's own size must be the one the reader was told.
        if o.len() != size {
            return Err(ApiError::SizeMismatch {
                listed: size,
                stored: o.len(),
            });
        }
        // The seam's contract: callers keep within the object. A read outside it is a bug in
        // the caller, not something to answer.
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= o.len()),
            "reads stay inside the object: {storage} is {} bytes, asked {offset}+{len}",
            o.len()
        );
        Ok(o.range(offset, len))
    }
    async fn create_storage(
        &self,
        _project: &str,
        folder: &str,
        name: &str,
    ) -> Result<String, ApiError> {
        let _r = self.begin(Op::CreateStorage).await;
        let mut s = self.state();
        if !s.folders.contains_key(folder) {
            return Err(not_found(folder));
        }
        let urn = format!("{OBJECT_URN_PREFIX}wip.dm.prod/{}", s.fresh("upload-"));
        s.writes
            .made
            .insert(urn.clone(), (folder.into(), name.into()));
        Ok(urn)
    }

    async fn upload_urls(
        &self,
        storage: &str,
        first: u32,
        parts: u32,
        upload_key: Option<&str>,
    ) -> Result<UploadUrls, ApiError> {
        let _r = self.begin(Op::UploadUrls).await;
        let mut s = self.state();
        if !s.writes.made.contains_key(storage) {
            return Err(not_found(storage));
        }
        if !(1..=25).contains(&parts) || first == 0 || first.saturating_add(parts) > 10_001 {
            return Err(refused(400, format!("parts {first}+{parts} out of range")));
        }
        let key = match upload_key {
            Some(k) => match s.writes.uploads.get(k) {
                Some((st, _)) if st == storage => k.to_string(),
                _ => return Err(refused(400, format!("no upload {k} for {storage}"))),
            },
            None => {
                let k = s.fresh("key-");
                s.writes
                    .uploads
                    .insert(k.clone(), (storage.into(), BTreeMap::new()));
                k
            }
        };
        let urls = (first..first + parts)
            .map(|part| {
                s.writes.signed += 1;
                let url = part_url(s.writes.signed);
                (url, part)
            })
            .collect::<Vec<_>>();
        // The URL names its upload and part through this table, as a signature would.
        for (url, part) in &urls {
            s.writes
                .made
                .insert(url.clone(), (key.clone(), part.to_string()));
        }
        Ok(UploadUrls {
            upload_key: key,
            urls: urls.into_iter().map(|(u, _)| u).collect(),
        })
    }

    async fn put_part(&self, url: &str, bytes: Bytes) -> Result<String, ApiError> {
        let _r = self.begin(Op::PutPart).await;
        let mut s = self.state();
        if s.writes.expired.contains(url) {
            return Err(ApiError::Forbidden(format!("{url} has expired")));
        }
        let (key, part) = s
            .writes
            .made
            .get(url)
            .cloned()
            .ok_or_else(|| ApiError::Forbidden(format!("{url} was never signed")))?;
        let part: u32 = part.parse().map_err(|_| not_found(url))?;
        let etag = format!("\"{:x}\"", crc32fast::hash(&bytes));
        let (_, parts) = s
            .writes
            .uploads
            .get_mut(&key)
            .ok_or_else(|| ApiError::Forbidden(format!("upload {key} is gone")))?;
        parts.insert(part, (bytes, etag.clone()));
        Ok(etag)
    }

    async fn complete_upload(
        &self,
        storage: &str,
        upload_key: &str,
        size: u64,
        etags: &[String],
    ) -> Result<u64, ApiError> {
        let _r = self.begin(Op::CompleteUpload).await;
        let mut s = self.state();
        if s.writes.fail_completions {
            return Err(refused(404, format!("upload {upload_key} not found")));
        }
        let min_part = s.writes.min_part.unwrap_or(MIN_PART);
        let Some((st, parts)) = s.writes.uploads.get(upload_key) else {
            // Completed before (the answer was lost): the object is there.
            return match s.objects.get(storage) {
                Some(o) => Ok(o.len()),
                None => Err(refused(400, format!("no upload {upload_key}"))),
            };
        };
        if st != storage {
            return Err(refused(
                400,
                format!("upload {upload_key} is not for {storage}"),
            ));
        }
        if parts.len() != etags.len() || !parts.keys().copied().eq(1..=etags.len() as u32) {
            return Err(refused(400, "InvalidPart: parts missing"));
        }
        let mut body = Vec::new();
        for (i, ((_, (bytes, etag)), want)) in parts.iter().zip(etags).enumerate() {
            if etag != want {
                return Err(refused(400, format!("InvalidPart: part {} ETag", i + 1)));
            }
            if i + 1 < etags.len() && (bytes.len() as u64) < min_part {
                return Err(refused(400, "EntityTooSmall"));
            }
            body.extend_from_slice(bytes);
        }
        if body.len() as u64 != size {
            return Err(refused(
                400,
                format!("size {size} but {} uploaded", body.len()),
            ));
        }
        s.writes.uploads.remove(upload_key);
        s.objects.insert(storage.into(), Object::Bytes(body.into()));
        Ok(size)
    }

    async fn create_item(
        &self,
        _project: &str,
        folder: &str,
        name: &str,
        storage: &str,
        _flavour: Flavour,
    ) -> Result<ItemInfo, ApiError> {
        let _r = self.begin(Op::CreateItem).await;
        let mut s = self.state();
        if !s.folders.contains_key(folder) {
            return Err(not_found(folder));
        }
        if s.name_taken(folder, name, None) {
            return Err(refused(409, format!("{name} already exists")));
        }
        let id = s.fresh("item-");
        let tip = s.uploaded_version(&id, 1, name, storage)?;
        let info = ItemInfo {
            id: id.clone(),
            display_name: name.into(),
            hidden: false,
            tip: None,
            meta: Meta::default(),
        };
        s.folder(folder).children.push(id.clone());
        s.items.insert(
            id.clone(),
            Item {
                info: info.clone(),
                versions: vec![tip.clone()],
                folder: folder.into(),
                size_listed: true,
            },
        );
        s.touch(folder);
        Ok(ItemInfo {
            tip: Some(tip),
            ..info
        })
    }

    async fn create_version(
        &self,
        _project: &str,
        item: &str,
        name: &str,
        storage: &str,
        _flavour: Flavour,
    ) -> Result<VersionInfo, ApiError> {
        let _r = self.begin(Op::CreateVersion).await;
        let mut s = self.state();
        let Some(it) = s.items.get(item) else {
            return Err(not_found(item));
        };
        let folder = it.folder.clone();
        let n = it.versions.first().map_or(1, |t| t.number + 1);
        if s.writes.reserved.contains(item) {
            return Err(refused(423, format!("{item} is reserved by another user")));
        }
        if s.name_taken(&folder, name, Some(item)) {
            return Err(refused(409, format!("{name} already exists")));
        }
        let v = s.uploaded_version(item, n, name, storage)?;
        // The item follows its new tip's name (a rename by version, on BIM 360).
        s.item(item).info.display_name = name.into();
        s.push_version(item, v.clone());
        Ok(v)
    }

    async fn create_folder(
        &self,
        _project: &str,
        parent: &str,
        name: &str,
        _flavour: Flavour,
    ) -> Result<FolderInfo, ApiError> {
        let _r = self.begin(Op::CreateFolder).await;
        let mut s = self.state();
        if !s.folders.contains_key(parent) {
            return Err(not_found(parent));
        }
        if s.name_taken(parent, name, None) {
            return Err(refused(409, format!("{name} already exists")));
        }
        let id = s.fresh("folder-");
        let now = Some(SystemTime::now());
        let info = FolderInfo {
            created: now,
            modified: now,
            ..folder_info(&id, name)
        };
        s.folders.insert(
            id.clone(),
            Folder {
                info: info.clone(),
                parent: Some(parent.into()),
                children: Vec::new(),
                error: None,
            },
        );
        s.folder(parent).children.push(id);
        s.touch(parent);
        Ok(s.typed_folder(info))
    }

    async fn item(&self, _project: &str, item: &str) -> Result<ItemInfo, ApiError> {
        let _r = self.begin(Op::Item).await;
        let s = self.state();
        let it = s.items.get(item).ok_or_else(|| not_found(item))?;
        let mut info = s.typed_item(it.info.clone());
        info.tip = it.versions.first().cloned();
        Ok(info)
    }

    async fn rename_item(&self, _project: &str, item: &str, name: &str) -> Result<(), ApiError> {
        let _r = self.begin(Op::RenameItem).await;
        let mut s = self.state();
        if s.bim360 {
            return Err(refused(400, "item PATCH is not supported on BIM 360 / ACC"));
        }
        let it = s.items.get(item).ok_or_else(|| not_found(item))?;
        let folder = it.folder.clone();
        if s.writes.reserved.contains(item) {
            return Err(refused(423, format!("{item} is reserved by another user")));
        }
        if s.name_taken(&folder, name, Some(item)) {
            return Err(refused(409, format!("{name} already exists")));
        }
        // As on the service: the item's name changes, its versions keep theirs.
        s.item(item).info.display_name = name.into();
        s.touch(&folder);
        Ok(())
    }

    async fn change_folder(
        &self,
        _project: &str,
        folder: &str,
        change: &FolderChange,
    ) -> Result<FolderInfo, ApiError> {
        let _r = self.begin(Op::ChangeFolder).await;
        let mut s = self.state();
        let f = s.folders.get(folder).ok_or_else(|| not_found(folder))?;
        let old_parent = f.parent.clone();
        let name = change.name.clone().unwrap_or_else(|| f.info.name.clone());
        let Some(from) = old_parent else {
            return Err(refused(403, "a top folder cannot be changed"));
        };
        let to = change.parent.clone().unwrap_or_else(|| from.clone());
        if !s.folders.contains_key(&to) {
            return Err(not_found(&to));
        }
        // Not into itself or anything below it.
        let mut at = Some(to.clone());
        while let Some(id) = at {
            if id == folder {
                return Err(refused(400, "a folder cannot move into itself"));
            }
            at = s.folders.get(&id).and_then(|f| f.parent.clone());
        }
        let shown = !change.hidden.unwrap_or(s.folders[folder].info.hidden);
        if shown && s.name_taken(&to, &name, Some(folder)) {
            return Err(refused(409, format!("{name} already exists")));
        }
        if to != from {
            s.folder(&from).children.retain(|c| c != folder);
            s.folder(&to).children.push(folder.into());
            s.touch(&from);
        }
        let f = s.folder(folder);
        f.parent = Some(to.clone());
        f.info.name = name;
        if let Some(h) = change.hidden {
            f.info.hidden = h;
        }
        f.info.modified = Some(SystemTime::now());
        let info = f.info.clone();
        s.touch(&to);
        Ok(s.typed_folder(info))
    }

    async fn delete_item(&self, _project: &str, item: &str) -> Result<VersionInfo, ApiError> {
        let _r = self.begin(Op::DeleteItem).await;
        let mut s = self.state();
        if !s.bim360 {
            return Err(refused(400, "deleting is not supported for this hub type"));
        }
        let it = s.items.get(item).ok_or_else(|| not_found(item))?;
        if s.writes.reserved.contains(item) {
            return Err(refused(423, format!("{item} is reserved by another user")));
        }
        let tip = it
            .versions
            .first()
            .cloned()
            .ok_or_else(|| not_found(item))?;
        if tip.deleted {
            return Err(refused(409, format!("{item} is deleted already")));
        }
        let mut v = version(item, tip.number + 1, &tip.name, None, None);
        v.deleted = true;
        v.created = Some(SystemTime::now());
        v.modified = v.created;
        s.push_version(item, v.clone());
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn changes_show_in_listings_and_every_request_is_counted() {
        let m = MemoryRemote::with_project();
        m.track_rollups();
        m.add_folder(TOP, folder_info("sub", "Sub"));
        m.add_file(TOP, "i1", "a.txt", b"one");
        let before = m.top_folders(HUB, PROJECT).await.unwrap()[0].rollup.clone();
        let v2 = m.upload("i1", b"second");
        assert_eq!((v2.number, v2.size), (2, Some(6)));
        let after = m.top_folders(HUB, PROJECT).await.unwrap()[0].rollup.clone();
        assert_ne!(
            before, after,
            "a change below moves the top folder's rollup"
        );

        m.set_size_listed("i1", false);
        let listed = m.folder_contents(PROJECT, TOP, None).await.unwrap();
        let Entry::Item(item) = &listed[1] else {
            panic!("{listed:?}")
        };
        let tip = item.tip.as_ref().unwrap();
        assert_eq!((tip.number, tip.size), (2, None));
        let storage = tip.storage.clone().unwrap();
        assert_eq!(m.object_size(&storage).await.unwrap(), 6);
        assert_eq!(&m.read(&storage, 6, 1, 3).await.unwrap()[..], b"eco");
        assert_eq!(m.reads_of(&storage), vec![(1, 3)]);

        m.rename("i1", "b.txt");
        let versions = m.item_versions(PROJECT, "i1").await.unwrap();
        assert_eq!(versions[0].name, "b.txt");
        assert_eq!(versions[0].storage.as_deref(), Some(storage.as_str()));
        m.tombstone("i1");
        assert!(m.tip("i1").unwrap().deleted);
        m.remove("i1");
        m.forbid("sub");
        assert!(matches!(
            m.folder_contents(PROJECT, "sub", None).await,
            Err(ApiError::Forbidden(_))
        ));
        assert_eq!(
            m.folder_contents(PROJECT, TOP, None).await.unwrap().len(),
            1
        );
        assert_eq!(m.requests(Op::FolderContents), 3);
        assert_eq!(m.requests(Op::TopFolders), 2);
        assert_eq!(m.requests(Op::Read), 1);
    }
}
