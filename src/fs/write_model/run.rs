//! One case: the account, the mount over it (and its reconciler, which a restart ends), the
//! model beside them, the versions seen so far, and the checks.

use super::model::{FolderId, How, Model, Tree, FILES, FOLDERS, TOP_ID};
use super::steps::{Name, Step};
use crate::fs::error::Op as FsOp;
use crate::fs::tests::config;
use crate::fs::{Error, Fs, RenameFlags, Scope, WriteConfig, VERSIONS_DIR};
use crate::testing::memory::{folder_info, HUB, PROJECT, TOP, TOP_NAME};
use crate::testing::{MemoryRemote, Op};
use bytes::Bytes;
use proptest::test_runner::TestCaseError;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Quiet period and longest delay of the mount: longer than any case, so changes go to the
/// service only when a step syncs (the model's answers depend on what was sent).
const NEVER: Duration = Duration::from_secs(3600);
/// How long a sync may take before the case fails.
const SYNC_LIMIT: Duration = Duration::from_secs(30);
/// The listing TTL of cases that cache listings: longer than most steps take, and short.
const CACHED_TTL: Duration = Duration::from_millis(30);

/// How one case's account and mount are set up.
#[derive(Clone, Debug)]
pub(super) struct Setup {
    /// A BIM 360 / ACC hub (renames are versions, deletes are tombstones); else a team hub.
    pub(super) bim360: bool,
    /// `--allow-delete`.
    pub(super) allow_delete: bool,
    /// Listings are never cached (TTL 0), so changes by another client show at once, and the
    /// case makes some; else listings are cached (`CACHED_TTL`) and no other client changes
    /// anything (the mount's own changes must show through its cache).
    pub(super) fresh: bool,
    /// The mount's view is checked after every step, not only at the end. (Listing a folder
    /// has effects of its own: it retires committed entries the service has moved past.)
    pub(super) observe: bool,
    /// Files the account has at the start: in a folder `F0` (else the top folder), which of
    /// `FILES`, and the bytes.
    pub(super) seed: Vec<(bool, usize, Vec<u8>)>,
}

/// A version as first seen on the service.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    item: String,
    storage: Option<String>,
    bytes: Option<Bytes>,
    deleted: bool,
}

/// A failed check.
pub(super) fn fail<T>(message: impl Into<String>) -> Result<T, TestCaseError> {
    Err(TestCaseError::fail(message.into()))
}

/// The answer an operation gave, as the model states answers.
fn answer<T>(r: &Result<T, Error>, op: FsOp) -> Result<(), i32> {
    match r {
        Ok(_) => Ok(()),
        Err(e) => Err(e.errno(op)),
    }
}

/// Fails unless `got` is what the model expected.
fn agree<T>(
    what: &str,
    expected: Result<(), i32>,
    got: &Result<T, Error>,
    op: FsOp,
) -> Result<(), TestCaseError> {
    if answer(got, op) == expected {
        return Ok(());
    }
    let got = match got {
        Ok(_) => "success".to_string(),
        Err(e) => format!("errno {} ({e})", e.errno(op)),
    };
    let want = match expected {
        Ok(()) => "success".to_string(),
        Err(n) => format!("errno {n}"),
    };
    fail(format!("{what}: answered {got}, the model expects {want}"))
}

/// Fails with `what` when an operation that must work did not.
fn must<T>(what: &str, r: Result<T, Error>) -> Result<T, TestCaseError> {
    r.or_else(|e| fail(format!("{what}: {e:?}")))
}

/// One case from start to end.
pub(super) struct Run {
    m: Arc<MemoryRemote>,
    dir: tempfile::TempDir,
    fs: Option<Fs<MemoryRemote>>,
    reconciler: Option<JoinHandle<()>>,
    model: Model,
    setup: Setup,
    /// Every version seen on the service so far, by version id.
    seen: BTreeMap<String, Seen>,
    /// Items other clients made so far.
    theirs: usize,
}

impl Run {
    /// The account as `setup` says, the model of it, and a mount over it.
    pub(super) async fn start(setup: Setup) -> Result<Run, TestCaseError> {
        let m = Arc::new(MemoryRemote::with_project());
        m.set_min_part(1);
        m.set_bim360(setup.bim360);
        let mut model = Model::new(TOP, setup.bim360 && setup.allow_delete);
        let mut sub = None;
        for (k, (in_sub, name, bytes)) in setup.seed.iter().enumerate() {
            let dir = if *in_sub {
                *sub.get_or_insert_with(|| {
                    m.add_folder(TOP, folder_info("seed-folder", FOLDERS[0]));
                    model.folders.push(super::model::Folder {
                        parent: Some(TOP_ID),
                        name: FOLDERS[0].into(),
                        alive: true,
                        remote: "seed-folder".into(),
                    });
                    model.folders.len() - 1
                })
            } else {
                TOP_ID
            };
            let name = FILES[name % FILES.len()];
            if model.file(dir, name).is_some() {
                continue;
            }
            let remote = model.folders[dir].remote.clone();
            m.add_file(&remote, &format!("seed-{k}"), name, bytes);
            let item = Some(model.fresh());
            model.files.insert(
                (dir, name.to_string()),
                super::model::File {
                    bytes: bytes.clone(),
                    item,
                    dirty: false,
                },
            );
        }
        let dir = tempfile::tempdir().or_else(|e| fail(format!("no staging dir: {e}")))?;
        let mut run = Run {
            m,
            dir,
            fs: None,
            reconciler: None,
            model,
            setup,
            seen: BTreeMap::new(),
            theirs: 0,
        };
        run.mount()?;
        run.record_versions();
        Ok(run)
    }

    /// Opens a mount on the staging directory (replaying its journal) and starts its
    /// reconciler.
    fn mount(&mut self) -> Result<(), TestCaseError> {
        let ttl = if self.setup.fresh {
            Duration::ZERO
        } else {
            CACHED_TTL
        };
        let write = WriteConfig {
            dir: self.dir.path().to_path_buf(),
            quiet: NEVER,
            max_delay: NEVER,
            ignore: Vec::new(),
            user_id: None,
            allow_delete: self.setup.allow_delete,
        };
        let scope = Scope::Project {
            hub: HUB.into(),
            project: PROJECT.into(),
        };
        let fs = Fs::writable_with(self.m.clone(), scope, config(ttl), write)
            .or_else(|e| fail(format!("the mount does not start: {e}")))?;
        let Some(w) = fs.writes.clone() else {
            return fail("a writable mount without an overlay");
        };
        self.reconciler = Some(tokio::spawn(w.run()));
        self.fs = Some(fs);
        Ok(())
    }

    /// The mount ends (its reconciler with it, idle or not) and a new one starts on the same
    /// staging directory: what a crash leaves after every change was closed.
    async fn restart(&mut self) -> Result<(), TestCaseError> {
        if let Some(r) = self.reconciler.take() {
            r.abort();
            let _ = r.await;
        }
        self.fs = None;
        self.mount()
    }

    /// The mount now.
    fn fs(&self) -> &Fs<MemoryRemote> {
        match &self.fs {
            Some(fs) => fs,
            None => unreachable!("a case always has a mount between steps"),
        }
    }

    /// The mount's inode of model folder `f`, looked up from the root by its path.
    async fn ino_of(&self, f: FolderId) -> Result<u64, TestCaseError> {
        let path = self.model.path(f);
        let parts: Vec<&str> = path.iter().map(String::as_str).collect();
        match crate::fs::tests::path(self.fs(), &parts).await {
            Ok(attr) if attr.is_dir => Ok(attr.ino),
            Ok(_) => fail(format!("{path:?} is not a directory on the mount")),
            Err(e) => fail(format!("{path:?} cannot be looked up: {e:?}")),
        }
    }

    /// The live folder a selector picks.
    fn folder(&self, d: usize) -> FolderId {
        let live = self.model.live();
        live[d % live.len()]
    }

    /// The folder a step on file `n` works in: for an existing file, one of the folders with
    /// files (when any has some).
    fn file_dir(&self, d: usize, n: Name) -> FolderId {
        let full: Vec<FolderId> = self
            .model
            .live()
            .into_iter()
            .filter(|f| !self.model.files_in(*f).is_empty())
            .collect();
        match n {
            Name::Existing(_) if !full.is_empty() => full[d % full.len()],
            _ => self.folder(d),
        }
    }

    /// The folder an `Rmdir` of `n` works in: for an existing folder, one of the folders with
    /// folders in them (when any has some).
    fn parent_dir(&self, d: usize, n: Name) -> FolderId {
        let full: Vec<FolderId> = self
            .model
            .live()
            .into_iter()
            .filter(|f| !self.model.subfolders(*f).is_empty())
            .collect();
        match n {
            Name::Existing(_) if !full.is_empty() => full[d % full.len()],
            _ => self.folder(d),
        }
    }

    /// The folder name `n` picks in `dir`.
    fn folder_name(&self, dir: FolderId, n: Name) -> String {
        let subs = self.model.subfolders(dir);
        match n {
            Name::Existing(i) if !subs.is_empty() => {
                self.model.folders[subs[i % subs.len()]].name.clone()
            }
            Name::Any(i) | Name::Existing(i) => FOLDERS[i % FOLDERS.len()].to_string(),
        }
    }

    /// The file name a selector picks in folder `dir`.
    fn name(&self, dir: FolderId, n: Name) -> String {
        match n {
            Name::Any(i) => FILES[i % FILES.len()].to_string(),
            Name::Existing(i) => {
                let files = self.model.files_in(dir);
                if files.is_empty() {
                    FILES[i % FILES.len()].to_string()
                } else {
                    files[i % files.len()].clone()
                }
            }
        }
    }

    /// The names a rename step renames from and to (never the same).
    fn rename_names(&self, dir: FolderId, from: Name, to: usize) -> (String, &'static str) {
        let from = self.name(dir, from);
        let mut to = FILES[to % FILES.len()];
        if to == from {
            let k = FILES.iter().position(|n| *n == to).unwrap_or(0);
            to = FILES[(k + 1) % FILES.len()];
        }
        (from, to)
    }

    /// Runs one step, checking its answer against the model.
    pub(super) async fn step(&mut self, step: &Step) -> Result<(), TestCaseError> {
        match step {
            Step::Create { dir, name, data } => {
                let dir = self.file_dir(*dir, *name);
                let name = self.name(dir, *name);
                self.create(dir, &name, data).await?;
            }
            Step::Write {
                dir,
                name,
                how,
                data,
            } => {
                let dir = self.file_dir(*dir, *name);
                let name = self.name(dir, *name);
                self.write(dir, &name, *how, data).await?;
            }
            Step::Rename { dir, from, to } => {
                let dir = self.file_dir(*dir, *from);
                let (from, to) = self.rename_names(dir, *from, *to);
                self.rename(dir, &from, to).await?;
            }
            Step::Move {
                dir,
                name,
                to_dir,
                to,
            } => {
                let dir = self.file_dir(*dir, *name);
                let others: Vec<FolderId> = self
                    .model
                    .live()
                    .into_iter()
                    .filter(|f| *f != dir)
                    .collect();
                if let Some(&into) = others.get(to_dir % others.len().max(1)) {
                    let name = self.name(dir, *name);
                    self.move_file(dir, &name, into, FILES[to % FILES.len()])
                        .await?;
                }
            }
            Step::Unlink { dir, name } => {
                let dir = self.file_dir(*dir, *name);
                let name = self.name(dir, *name);
                self.unlink(dir, &name).await?;
            }
            Step::Mkdir { dir, name } => {
                let dir = self.folder(*dir);
                self.mkdir(dir, FOLDERS[name % FOLDERS.len()]).await?;
            }
            Step::Rmdir { dir, name } => {
                let dir = self.parent_dir(*dir, *name);
                let name = self.folder_name(dir, *name);
                self.rmdir(dir, &name).await?;
            }
            Step::MoveDir {
                folder,
                to_dir,
                name,
            } => {
                let below: Vec<FolderId> = self
                    .model
                    .live()
                    .into_iter()
                    .filter(|f| *f != TOP_ID)
                    .collect();
                if let Some(&f) = below.get(folder % below.len().max(1)) {
                    let into: Vec<FolderId> = self
                        .model
                        .live()
                        .into_iter()
                        .filter(|d| !self.model.within(*d, f))
                        .collect();
                    let into = into[to_dir % into.len()];
                    self.move_folder(f, into, FOLDERS[name % FOLDERS.len()])
                        .await?;
                }
            }
            Step::Sync => self.sync().await?,
            Step::Restart => self.restart().await?,
            Step::RemoteVersion { file, data } => {
                if self.setup.fresh {
                    self.remote_version(*file, data)?;
                }
            }
            Step::RemoteItem { dir, name, data } => {
                if self.setup.fresh {
                    let dir = self.folder(*dir);
                    self.remote_item(dir, *name, data);
                }
            }
        }
        if self.setup.observe {
            self.check_view().await?;
        }
        Ok(())
    }

    /// `create`, `data` written, closed.
    async fn create(
        &mut self,
        dir: FolderId,
        name: &str,
        data: &[u8],
    ) -> Result<(), TestCaseError> {
        let ino = self.ino_of(dir).await?;
        let expected = self.model.create(dir, name, data);
        let fs = self.fs();
        let r = fs.create(ino, name, 0o644).await;
        agree(&format!("create {name}"), expected, &r, FsOp::Create)?;
        if let Ok((_, fh)) = r {
            if !data.is_empty() {
                must("write", fs.write(fh, 0, data).await)?;
            }
            must("close", fs.flush(fh, true).await)?;
            fs.release(fh).await;
        }
        Ok(())
    }

    /// An existing file opened for writing (`O_TRUNC` for `How::Truncate`), written, closed.
    async fn write(
        &mut self,
        dir: FolderId,
        name: &str,
        how: How,
        data: &[u8],
    ) -> Result<(), TestCaseError> {
        let ino = self.ino_of(dir).await?;
        let old = self.model.file(dir, name).map(|f| f.bytes.len() as u64);
        let expected = self.model.write(dir, name, how, data);
        let fs = self.fs();
        let r = fs.lookup(ino, name).await;
        agree(&format!("lookup {name}"), expected, &r, FsOp::Lookup)?;
        let (Ok((attr, _)), Some(old)) = (r, old) else {
            return Ok(());
        };
        if attr.size != old {
            return fail(format!("{name} shows {} bytes, the model {old}", attr.size));
        }
        let fh = must(
            "open for writing",
            fs.open_with(attr.ino, true, matches!(how, How::Truncate))
                .await,
        )?;
        let at = match how {
            How::Append => old,
            How::Overwrite | How::Truncate => 0,
        };
        if !data.is_empty() {
            must("write", fs.write(fh, at, data).await)?;
        }
        must("close", fs.flush(fh, true).await)?;
        fs.release(fh).await;
        Ok(())
    }

    /// A file renamed within its folder.
    async fn rename(&mut self, dir: FolderId, from: &str, to: &str) -> Result<(), TestCaseError> {
        let ino = self.ino_of(dir).await?;
        let expected = self.model.rename(dir, from, to);
        let r = self
            .fs()
            .rename(ino, from, ino, to, RenameFlags::default())
            .await;
        agree(&format!("mv {from} {to}"), expected, &r, FsOp::Rename)?;
        Ok(())
    }

    /// A file moved to another folder.
    async fn move_file(
        &mut self,
        dir: FolderId,
        from: &str,
        into: FolderId,
        to: &str,
    ) -> Result<(), TestCaseError> {
        let ino = self.ino_of(dir).await?;
        let ino2 = self.ino_of(into).await?;
        let expected = self.model.move_file(dir, from, into, to);
        let r = self
            .fs()
            .rename(ino, from, ino2, to, RenameFlags::default())
            .await;
        let what = format!(
            "mv {}/{from} {}/{to}",
            self.model.path(dir).join("/"),
            self.model.path(into).join("/")
        );
        agree(&what, expected, &r, FsOp::Rename)
    }

    /// `unlink`.
    async fn unlink(&mut self, dir: FolderId, name: &str) -> Result<(), TestCaseError> {
        let ino = self.ino_of(dir).await?;
        let expected = self.model.unlink(dir, name);
        let r = self.fs().unlink(ino, name).await;
        agree(&format!("rm {name}"), expected, &r, FsOp::Unlink)
    }

    /// `mkdir`; the model learns the new folder's service id.
    async fn mkdir(&mut self, dir: FolderId, name: &str) -> Result<(), TestCaseError> {
        let ino = self.ino_of(dir).await?;
        let expected = self.model.mkdir(dir, name);
        let r = self.fs().mkdir(ino, name, 0o755).await;
        agree(
            &format!("mkdir {name}"),
            expected.map(drop),
            &r,
            FsOp::Mkdir,
        )?;
        if let Ok(f) = expected {
            let parent = &self.model.folders[dir].remote;
            let Some((_, id)) = self
                .m
                .subfolders(parent)
                .into_iter()
                .find(|(n, _)| n == name)
            else {
                return fail(format!("mkdir {name} made no folder on the service"));
            };
            self.model.folders[f].remote = id;
        }
        Ok(())
    }

    /// `rmdir`.
    async fn rmdir(&mut self, dir: FolderId, name: &str) -> Result<(), TestCaseError> {
        let ino = self.ino_of(dir).await?;
        let expected = self.model.rmdir(dir, name);
        let r = self.fs().rmdir(ino, name).await;
        agree(&format!("rmdir {name}"), expected, &r, FsOp::Rmdir)
    }

    /// A folder renamed and/or moved.
    async fn move_folder(
        &mut self,
        f: FolderId,
        into: FolderId,
        name: &str,
    ) -> Result<(), TestCaseError> {
        let Some(parent) = self.model.folders[f].parent else {
            return Ok(());
        };
        let old = self.model.folders[f].name.clone();
        let from = self.ino_of(parent).await?;
        let to = self.ino_of(into).await?;
        let what = format!(
            "mv {} {}/{name}",
            self.model.path(f).join("/"),
            self.model.path(into).join("/")
        );
        let expected = self.model.move_folder(f, into, name);
        let r = self
            .fs()
            .rename(from, &old, to, name, RenameFlags::default())
            .await;
        agree(&what, expected, &r, FsOp::Rename)
    }

    /// Another client uploads `data` as a new version of a file nothing here changes; the
    /// folder it is in, if there was such a file.
    fn remote_version(
        &mut self,
        file: usize,
        data: &[u8],
    ) -> Result<Option<FolderId>, TestCaseError> {
        let quiet: Vec<(FolderId, String)> = self
            .model
            .files
            .keys()
            .filter(|(d, n)| self.model.folders[*d].alive && self.model.untouched(*d, n))
            .cloned()
            .collect();
        let Some((dir, name)) = quiet.get(file % quiet.len().max(1)).cloned() else {
            return Ok(None);
        };
        let folder = &self.model.folders[dir].remote;
        let Some((_, item)) = self
            .m
            .items_in(folder)
            .into_iter()
            .find(|(n, _)| *n == name)
        else {
            return fail(format!(
                "{name} has nothing to change since the last sync, but the service has no item \
                 of that name"
            ));
        };
        self.m.upload(&item, data);
        if let Some(f) = self.model.files.get_mut(&(dir, name)) {
            f.bytes = data.to_vec();
        }
        Ok(Some(dir))
    }

    /// Another client adds an item under a name nothing here uses.
    fn remote_item(&mut self, dir: FolderId, name: usize, data: &[u8]) {
        let free: Vec<&str> = FILES
            .iter()
            .copied()
            .filter(|n| self.model.file(dir, n).is_none() && self.model.untouched(dir, n))
            .collect();
        let Some(name) = free.get(name % free.len().max(1)).copied() else {
            return;
        };
        self.theirs += 1;
        let folder = self.model.folders[dir].remote.clone();
        self.m
            .add_file(&folder, &format!("theirs-{}", self.theirs), name, data);
        let item = Some(self.model.fresh());
        self.model.files.insert(
            (dir, name.to_string()),
            super::model::File {
                bytes: data.to_vec(),
                item,
                dirty: false,
            },
        );
    }

    /// `apsfs sync --wait`; then the service must show the model's tree, every version seen
    /// before must still be there, and every item made must be one a save needed.
    async fn sync(&mut self) -> Result<(), TestCaseError> {
        let before: BTreeSet<String> = self.m.item_ids().into_iter().collect();
        let creates = self.m.requests(Op::CreateItem);
        let allowed = self.model.new_items_allowed();
        let left = self.fs().sync(None, true, SYNC_LIMIT).await;
        if !left.is_empty() {
            return fail(format!("still pending after a sync: {left:?}"));
        }
        self.settled().await?;
        self.model.synced();
        let made: Vec<String> = self
            .m
            .item_ids()
            .into_iter()
            .filter(|i| !before.contains(i))
            .collect();
        let asked = self.m.requests(Op::CreateItem) - creates;
        if asked != made.len() {
            return fail(format!(
                "{asked} items asked for, {} made: a create for a name that had an item",
                made.len()
            ));
        }
        if made.len() > allowed {
            return fail(format!(
                "{} new items ({made:?}), but only {allowed} files needed one",
                made.len()
            ));
        }
        let (tree, shown) = self.service()?;
        if let Some(lost) = made.iter().find(|i| !shown.contains(*i)) {
            return fail(format!("item {lost} was made and is not shown"));
        }
        self.same_tree("the service after a sync", &tree)?;
        self.record_versions();
        self.check_versions()
    }

    /// Waits until the reconciler has settled every marker (a sync returns once nothing is
    /// pending, while names hidden by renames may still be settling).
    async fn settled(&self) -> Result<(), TestCaseError> {
        let Some(w) = self.fs().writes.clone() else {
            return fail("no overlay");
        };
        let started = Instant::now();
        loop {
            let markers: Vec<(String, String)> = self
                .model
                .folders
                .iter()
                .flat_map(|f| {
                    let shown: BTreeSet<String> = w
                        .entries_in(&f.remote)
                        .into_iter()
                        .map(|e| e.name)
                        .collect();
                    w.names_in(&f.remote)
                        .into_iter()
                        .filter(move |n| !shown.contains(n))
                        .map(|n| (f.name.clone(), n))
                        .collect::<Vec<_>>()
                })
                .collect();
            if markers.is_empty() {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(5) {
                return fail(format!("names still hidden after a sync: {markers:?}"));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The tree the service shows, and the items it shows.
    fn service(&self) -> Result<(Tree, BTreeSet<String>), TestCaseError> {
        let mut tree = Tree::new();
        let mut shown = BTreeSet::new();
        let mut todo = vec![(vec![TOP_NAME.to_string()], TOP.to_string())];
        while let Some((path, id)) = todo.pop() {
            let mut subs = BTreeSet::new();
            for (name, sub) in self.m.subfolders(&id) {
                if !subs.insert(name.clone()) {
                    return fail(format!("two folders {name} in {path:?} on the service"));
                }
                let mut p = path.clone();
                p.push(name);
                todo.push((p, sub));
            }
            let mut files = BTreeMap::new();
            for (name, item) in self.m.items_in(&id) {
                let tip = self.m.tip(&item);
                let bytes = tip
                    .as_ref()
                    .and_then(|t| t.storage.as_deref())
                    .and_then(|s| self.m.object(s));
                let Some(bytes) = bytes else {
                    return fail(format!("{name} in {path:?}: no bytes for its tip {tip:?}"));
                };
                if files.insert(name.clone(), bytes.to_vec()).is_some() {
                    return fail(format!("two items {name} in {path:?} on the service"));
                }
                shown.insert(item);
            }
            tree.insert(path, (subs, files));
        }
        Ok((tree, shown))
    }

    /// Fails unless `tree` is the model's.
    fn same_tree(&self, what: &str, tree: &Tree) -> Result<(), TestCaseError> {
        let want = self.model.tree();
        if *tree == want {
            return Ok(());
        }
        let show = |t: &Tree| {
            t.iter()
                .map(|(p, (subs, files))| {
                    let files: Vec<String> = files
                        .iter()
                        .map(|(n, b)| format!("{n}={:?}", String::from_utf8_lossy(b)))
                        .collect();
                    format!("{}: dirs {subs:?} files {files:?}", p.join("/"))
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        fail(format!(
            "{what} differs from the model:\n  got   {}\n  model {}",
            show(tree),
            show(&want)
        ))
    }

    /// Notes every version the service has now.
    fn record_versions(&mut self) {
        for item in self.m.item_ids() {
            for v in self.m.versions(&item) {
                let bytes = v.storage.as_deref().and_then(|s| self.m.object(s));
                self.seen.entry(v.id.clone()).or_insert(Seen {
                    item: item.clone(),
                    storage: v.storage.clone(),
                    bytes,
                    deleted: v.deleted,
                });
            }
        }
    }

    /// Every version seen so far is still there, with the same bytes.
    fn check_versions(&self) -> Result<(), TestCaseError> {
        for (id, seen) in &self.seen {
            let now = self
                .m
                .versions(&seen.item)
                .into_iter()
                .find(|v| v.id == *id);
            let Some(v) = now else {
                return fail(format!("version {id} of {} is gone", seen.item));
            };
            let bytes = v.storage.as_deref().and_then(|s| self.m.object(s));
            let again = Seen {
                item: seen.item.clone(),
                storage: v.storage.clone(),
                bytes,
                deleted: v.deleted,
            };
            if again != *seen {
                return fail(format!("version {id} changed: was {seen:?}, is {again:?}"));
            }
        }
        Ok(())
    }

    /// The mount shows the model's tree: each folder's names looked up (and files read)
    /// before and after it is listed, and its listing.
    async fn check_view(&self) -> Result<(), TestCaseError> {
        let mut tree = Tree::new();
        for f in self.model.live() {
            let ino = self.ino_of(f).await?;
            let path = self.model.path(f);
            let before = self.looked_up(f, ino).await?;
            let listed = self.listed(ino).await?;
            let after = self.looked_up(f, ino).await?;
            let names: BTreeSet<String> = before
                .0
                .iter()
                .cloned()
                .chain(before.1.keys().cloned())
                .collect();
            if listed != names {
                return fail(format!(
                    "{path:?} lists {listed:?}, but looking names up finds {names:?}"
                ));
            }
            if after != before {
                return fail(format!(
                    "{path:?}: looked up {before:?} before listing it, {after:?} after"
                ));
            }
            tree.insert(path, before);
        }
        self.same_tree("the mount", &tree)
    }

    /// What looking up every name of `FOLDERS` and `FILES` in model folder `f` (inode `ino`)
    /// finds, files read through.
    async fn looked_up(
        &self,
        f: FolderId,
        ino: u64,
    ) -> Result<(BTreeSet<String>, BTreeMap<String, Vec<u8>>), TestCaseError> {
        let fs = self.fs();
        let path = self.model.path(f).join("/");
        let mut subs = BTreeSet::new();
        let mut files = BTreeMap::new();
        for name in FOLDERS.iter().chain(FILES.iter()) {
            let attr = match fs.lookup(ino, name).await {
                Ok((attr, _)) => attr,
                Err(Error::NotFound) => continue,
                Err(e) => return fail(format!("lookup {path}/{name}: {e:?}")),
            };
            if attr.is_dir {
                subs.insert(name.to_string());
                continue;
            }
            let fh = must(
                &format!("open {path}/{name}"),
                fs.open(attr.ino, false).await,
            )?;
            let bytes = must(
                &format!("read {path}/{name}"),
                fs.read(fh, 0, 1 << 16).await,
            );
            fs.release(fh).await;
            let bytes = bytes?.to_vec();
            if bytes.len() as u64 != attr.size {
                return fail(format!(
                    "{path}/{name} shows {} bytes and reads {}",
                    attr.size,
                    bytes.len()
                ));
            }
            files.insert(name.to_string(), bytes);
        }
        Ok((subs, files))
    }

    /// The names a listing of directory `ino` gives.
    async fn listed(&self, ino: u64) -> Result<BTreeSet<String>, TestCaseError> {
        let fs = self.fs();
        let fh = must("opendir", fs.opendir(ino).await)?;
        let mut names = BTreeSet::new();
        let mut offset = 0;
        loop {
            let batch = must("readdir", fs.readdir(ino, fh, offset));
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    fs.releasedir(fh);
                    return Err(e);
                }
            };
            if batch.is_empty() {
                break;
            }
            for e in batch {
                offset = e.next;
                if e.name != "." && e.name != ".." && e.name != VERSIONS_DIR {
                    names.insert(e.name);
                }
            }
        }
        fs.releasedir(fh);
        Ok(names)
    }

    /// The end of a case: everything sent and checked, the mount's view checked, and again
    /// after a restart.
    pub(super) async fn finish(&mut self) -> Result<(), TestCaseError> {
        self.sync().await?;
        self.check_view().await?;
        self.restart().await?;
        self.check_view()
            .await
            .or_else(|e| fail(format!("after a restart: {e}")))?;
        self.check_versions()?;
        if let Some(r) = self.reconciler.take() {
            r.abort();
            let _ = r.await;
        }
        Ok(())
    }
}

/// Runs `steps` from `setup`, then the end checks; a failure names its step.
pub(super) async fn run(setup: Setup, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut run = Run::start(setup).await?;
    for (k, step) in steps.iter().enumerate() {
        if let Err(e) = run.step(step).await {
            return fail(format!("step {k} ({step:?}): {e}"));
        }
    }
    run.finish()
        .await
        .or_else(|e| fail(format!("at the end: {e}")))
}
