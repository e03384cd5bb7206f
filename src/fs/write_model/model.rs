//! The model: what a read-write mount must show after each step, and what each step must
//! answer. A tree of folders, each with files by name (their bytes), and for the answers that
//! depend on it the service item each name continues (its lineage, an opaque number) and the
//! names renamed away or removed since the last sync (markers, with the lineage they held).

use std::collections::{BTreeMap, BTreeSet};

/// File names steps pick from: few, so renames over taken names and reuse of names are common.
pub(super) const FILES: [&str; 5] = ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"];
/// Folder names steps pick from (never a file name, so files and folders never collide).
pub(super) const FOLDERS: [&str; 3] = ["F0", "F1", "F2"];

/// A model folder: an index into `Model::folders`, for good (a folder renamed or moved keeps
/// it; one made again under an old name gets a new one).
pub(super) type FolderId = usize;

/// The top folder ("Project Files"), which is never renamed, moved or removed.
pub(super) const TOP_ID: FolderId = 0;

/// The errno a step must fail with, or `Ok` when it must succeed.
pub(super) type Expect = Result<(), i32>;

/// One folder of the model.
#[derive(Clone, Debug)]
pub(super) struct Folder {
    /// The folder it is in (`None` for the top folder).
    pub(super) parent: Option<FolderId>,
    /// Its name there.
    pub(super) name: String,
    /// Whether it still exists (not removed by `rmdir`).
    pub(super) alive: bool,
    /// Its id on the service.
    pub(super) remote: String,
}

/// One file of the model.
#[derive(Clone, Debug)]
pub(super) struct File {
    /// What reading it gives.
    pub(super) bytes: Vec<u8>,
    /// The service item it continues, if any (a file only here has none).
    pub(super) item: Option<u64>,
    /// Changed here since the last sync (remote changes keep away from it).
    pub(super) dirty: bool,
}

/// How a write step changes a file.
#[derive(Clone, Copy, Debug)]
pub(super) enum How {
    /// Opened without truncation, the data written at offset 0 (the rest kept).
    Overwrite,
    /// Opened without truncation, the data written at the end.
    Append,
    /// Opened with `O_TRUNC`, the data written from the start.
    Truncate,
}

impl How {
    /// The bytes `old` becomes when `data` is written this way.
    pub(super) fn apply(self, old: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            How::Overwrite => {
                let mut b = old.to_vec();
                if b.len() < data.len() {
                    b.resize(data.len(), 0);
                }
                b[..data.len()].copy_from_slice(data);
                b
            }
            How::Append => [old, data].concat(),
            How::Truncate => data.to_vec(),
        }
    }
}

/// The model of one case.
#[derive(Clone, Debug)]
pub(super) struct Model {
    /// Every folder ever made, by id.
    pub(super) folders: Vec<Folder>,
    /// Files by folder and name.
    pub(super) files: BTreeMap<(FolderId, String), File>,
    /// Names whose file was renamed away or removed since the last sync, with its lineage and
    /// whether it was removed (its item is to be deleted) rather than renamed away: a file
    /// created or renamed to such a name continues that item.
    pub(super) markers: BTreeMap<(FolderId, String), (u64, bool)>,
    /// Whether the hub type deletes (BIM 360 / ACC) and the mount may (`--allow-delete`).
    pub(super) deletes: bool,
    next_lineage: u64,
}

impl Model {
    /// An empty top folder (service id `top`); `deletes` as `Model::deletes`.
    pub(super) fn new(top: &str, deletes: bool) -> Model {
        Model {
            folders: vec![Folder {
                parent: None,
                name: crate::testing::memory::TOP_NAME.into(),
                alive: true,
                remote: top.into(),
            }],
            files: BTreeMap::new(),
            markers: BTreeMap::new(),
            deletes,
            next_lineage: 0,
        }
    }

    /// A lineage no file has had.
    pub(super) fn fresh(&mut self) -> u64 {
        self.next_lineage += 1;
        self.next_lineage
    }

    /// Live folders, by id (the top folder first).
    pub(super) fn live(&self) -> Vec<FolderId> {
        (0..self.folders.len())
            .filter(|&f| self.folders[f].alive)
            .collect()
    }

    /// Names of the folder's path below the top folder's parent (the top folder's name first).
    pub(super) fn path(&self, mut f: FolderId) -> Vec<String> {
        let mut names = vec![self.folders[f].name.clone()];
        while let Some(p) = self.folders[f].parent {
            names.push(self.folders[p].name.clone());
            f = p;
        }
        names.reverse();
        names
    }

    /// The live folder called `name` in `dir`.
    pub(super) fn subfolder(&self, dir: FolderId, name: &str) -> Option<FolderId> {
        (0..self.folders.len()).find(|&f| {
            let x = &self.folders[f];
            x.alive && x.parent == Some(dir) && x.name == name
        })
    }

    /// Live folders inside `dir`.
    pub(super) fn subfolders(&self, dir: FolderId) -> Vec<FolderId> {
        (0..self.folders.len())
            .filter(|&f| self.folders[f].alive && self.folders[f].parent == Some(dir))
            .collect()
    }

    /// Whether `f` is `dir` or inside it.
    pub(super) fn within(&self, mut f: FolderId, dir: FolderId) -> bool {
        loop {
            if f == dir {
                return true;
            }
            match self.folders[f].parent {
                Some(p) => f = p,
                None => return false,
            }
        }
    }

    /// Names of the files in `dir`.
    pub(super) fn files_in(&self, dir: FolderId) -> Vec<String> {
        self.files
            .keys()
            .filter(|(d, _)| *d == dir)
            .map(|(_, n)| n.clone())
            .collect()
    }

    /// The file `name` in `dir`.
    pub(super) fn file(&self, dir: FolderId, name: &str) -> Option<&File> {
        self.files.get(&(dir, name.to_string()))
    }

    /// The item a save under `name` in `dir` continues: its file's, or the one renamed away
    /// or removed from it.
    fn target_item(&self, dir: FolderId, name: &str) -> Option<u64> {
        let key = (dir, name.to_string());
        match self.files.get(&key) {
            Some(f) => f.item,
            None => self.markers.get(&key).map(|(x, _)| *x),
        }
    }

    /// Whether a file in `dir` other than `name` continues item `item`.
    fn carried_elsewhere(&self, dir: FolderId, item: u64, name: &str) -> bool {
        self.files
            .iter()
            .any(|((d, n), f)| *d == dir && n != name && f.item == Some(item))
    }

    /// Whether a file of item `x` renamed to `to` in `dir` takes that name from another item,
    /// which then must go: a file there continuing another item, or a name renamed away whose
    /// item no file here continues now; not a removed name (its item goes anyway).
    fn displaces(&self, dir: FolderId, to: &str, x: u64) -> bool {
        match self.files.get(&(dir, to.to_string())) {
            Some(f) => f.item.is_some_and(|y| y != x),
            None => match self.markers.get(&(dir, to.to_string())) {
                Some(&(y, removed)) => y != x && !removed && !self.carried_elsewhere(dir, y, to),
                None => false,
            },
        }
    }

    /// `EPERM` unless removing what the service has may go there.
    fn may_delete(&self) -> Expect {
        if self.deletes {
            Ok(())
        } else {
            Err(libc::EPERM)
        }
    }

    /// `create` of `name` in `dir`, then `bytes` written and closed.
    pub(super) fn create(&mut self, dir: FolderId, name: &str, bytes: &[u8]) -> Expect {
        let key = (dir, name.to_string());
        if self.files.contains_key(&key) {
            return Err(libc::EEXIST);
        }
        let item = self.markers.remove(&key).map(|(x, _)| x);
        self.files.insert(
            key,
            File {
                bytes: bytes.to_vec(),
                item,
                dirty: true,
            },
        );
        Ok(())
    }

    /// An existing file `name` in `dir` opened for writing, `data` written as `how` says.
    pub(super) fn write(&mut self, dir: FolderId, name: &str, how: How, data: &[u8]) -> Expect {
        let f = self
            .files
            .get_mut(&(dir, name.to_string()))
            .ok_or(libc::ENOENT)?;
        f.bytes = how.apply(&f.bytes, data);
        f.dirty = true;
        Ok(())
    }

    /// `rename` of file `from` to `to` (another name) in `dir`. A file continuing an item keeps
    /// it, unless it takes the name from another item (`displaces`): that is a save of the
    /// other item and removes its own (so it needs deletes). A file only here takes the item of
    /// the name it lands on.
    pub(super) fn rename(&mut self, dir: FolderId, from: &str, to: &str) -> Expect {
        let src = self.file(dir, from).ok_or(libc::ENOENT)?.clone();
        let target = self.target_item(dir, to);
        let item = match src.item {
            None => target,
            Some(x) => {
                let over = self.displaces(dir, to, x);
                if over {
                    self.may_delete()?;
                }
                self.markers.insert((dir, from.to_string()), (x, over));
                if over {
                    target
                } else {
                    Some(x)
                }
            }
        };
        self.files.remove(&(dir, from.to_string()));
        self.markers.remove(&(dir, to.to_string()));
        self.files.insert(
            (dir, to.to_string()),
            File {
                bytes: src.bytes,
                item,
                dirty: true,
            },
        );
        Ok(())
    }

    /// `rename` of file `from` in `dir` to `to` in another folder `into`: for a file that
    /// continues an item `EXDEV` (the service moves no file between folders keeping its
    /// history: `mv` copies and removes), or `EPERM` where it could not be removed; a file only
    /// here moves, taking the item of the name it lands on.
    pub(super) fn move_file(
        &mut self,
        dir: FolderId,
        from: &str,
        into: FolderId,
        to: &str,
    ) -> Expect {
        let src = self.file(dir, from).ok_or(libc::ENOENT)?.clone();
        if src.item.is_some() {
            self.may_delete()?;
            return Err(libc::EXDEV);
        }
        let item = self.target_item(into, to);
        self.files.remove(&(dir, from.to_string()));
        self.markers.remove(&(into, to.to_string()));
        self.files.insert(
            (into, to.to_string()),
            File {
                bytes: src.bytes,
                item,
                dirty: true,
            },
        );
        Ok(())
    }

    /// `unlink` of file `name` in `dir`: a file only here just goes; so does one whose item
    /// another file here continues (it lives on there); any other continuing an item needs
    /// deletes, and its item is removed.
    pub(super) fn unlink(&mut self, dir: FolderId, name: &str) -> Expect {
        let key = (dir, name.to_string());
        let f = self.files.get(&key).ok_or(libc::ENOENT)?;
        if let Some(x) = f.item {
            let removed = !self.carried_elsewhere(dir, x, name);
            if removed {
                self.may_delete()?;
            }
            self.markers.insert(key.clone(), (x, removed));
        }
        self.files.remove(&key);
        Ok(())
    }

    /// `mkdir` of `name` in `dir`: the new folder's id, or the errno.
    pub(super) fn mkdir(&mut self, dir: FolderId, name: &str) -> Result<FolderId, i32> {
        if self.subfolder(dir, name).is_some() {
            return Err(libc::EEXIST);
        }
        self.folders.push(Folder {
            parent: Some(dir),
            name: name.into(),
            alive: true,
            remote: String::new(),
        });
        Ok(self.folders.len() - 1)
    }

    /// `rmdir` of `name` in `dir`: `EPERM` without deletes, `ENOTEMPTY` when anything shows in it.
    pub(super) fn rmdir(&mut self, dir: FolderId, name: &str) -> Expect {
        let f = self.subfolder(dir, name).ok_or(libc::ENOENT)?;
        self.may_delete()?;
        if !self.files_in(f).is_empty() || !self.subfolders(f).is_empty() {
            return Err(libc::ENOTEMPTY);
        }
        self.folders[f].alive = false;
        Ok(())
    }

    /// `rename` of folder `f` to `name` in `into` (not inside `f`): `EPERM` over another
    /// folder (a folder the service has is never replaced).
    pub(super) fn move_folder(&mut self, f: FolderId, into: FolderId, name: &str) -> Expect {
        let x = &self.folders[f];
        if x.parent == Some(into) && x.name == name {
            return Ok(());
        }
        if self.subfolder(into, name).is_some() {
            return Err(libc::EPERM);
        }
        let x = &mut self.folders[f];
        x.parent = Some(into);
        x.name = name.into();
        Ok(())
    }

    /// Everything was sent: no markers are left, and every file is an item of its own.
    pub(super) fn synced(&mut self) {
        self.markers.clear();
        let keys: Vec<_> = self.files.keys().cloned().collect();
        for k in keys {
            let item = self.fresh();
            if let Some(f) = self.files.get_mut(&k) {
                f.item = Some(item);
                f.dirty = false;
            }
        }
    }

    /// How many new items a sync of the state now may make at most: one per file that
    /// continues no item, and one per file beyond the first that continues the same item
    /// (identity is the name: one of them keeps the item, the others are new).
    pub(super) fn new_items_allowed(&self) -> usize {
        let mut per_item: BTreeMap<u64, usize> = BTreeMap::new();
        let mut none = 0;
        for f in self.files.values() {
            match f.item {
                Some(x) => *per_item.entry(x).or_default() += 1,
                None => none += 1,
            }
        }
        none + per_item.values().map(|n| n - 1).sum::<usize>()
    }

    /// Whether a remote change may touch `name` in `dir`: no change here waits there.
    pub(super) fn untouched(&self, dir: FolderId, name: &str) -> bool {
        let key = (dir, name.to_string());
        let lineage_marked = |x: u64| self.markers.values().any(|(l, _)| *l == x);
        match self.files.get(&key) {
            Some(f) => !f.dirty && !f.item.is_some_and(lineage_marked),
            None => !self.markers.contains_key(&key),
        }
    }

    /// The tree as paths of live folders, each with its subfolder names and its files' bytes.
    pub(super) fn tree(&self) -> Tree {
        let mut t = Tree::new();
        for f in self.live() {
            let subs = self
                .subfolders(f)
                .into_iter()
                .map(|s| self.folders[s].name.clone())
                .collect();
            let files = self
                .files
                .iter()
                .filter(|((d, _), _)| *d == f)
                .map(|((_, n), x)| (n.clone(), x.bytes.clone()))
                .collect();
            t.insert(self.path(f), (subs, files));
        }
        t
    }
}

/// A tree as compared between the model, the service and the mount: per folder path, the
/// names of its subfolders and its files' bytes by name.
pub(super) type Tree = BTreeMap<Vec<String>, (BTreeSet<String>, BTreeMap<String, Vec<u8>>)>;
