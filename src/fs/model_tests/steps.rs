//! The steps a case is made of, what each does, and how they are generated.

use super::account::{add_folder, add_item, hide_folder, remove_item, upload, Id, Node, Removal};
use super::run::{errno, fail, pick, Run, Setup, EXPIRE_AFTER};
use crate::api::Remote;
use crate::fs::inode::ROOT;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::collections::HashSet;

/// One step of a case. Selectors (`usize`) pick, modulo their count, among what exists when
/// the step runs, so any sequence is meaningful and shrinks well.
#[derive(Clone, Debug)]
pub(super) enum Step {
    /// Looks up a node's path from the root; with `missing`, then a name that never existed.
    Lookup { node: usize, missing: bool },
    /// `getattr` of an inode the kernel holds.
    GetAttr { ino: usize },
    /// Opens a folder, reads its entries from `offset`, closes it.
    List { dir: usize, offset: u8, plus: bool },
    /// Opens a folder and keeps the handle.
    OpenDir { dir: usize },
    /// Reads entries of a kept folder handle.
    ReadDir {
        handle: usize,
        offset: u8,
        plus: bool,
    },
    /// Closes a kept folder handle.
    ReleaseDir { handle: usize },
    /// Looks up a file and opens it, keeping the handle.
    Open { file: usize },
    /// Reads `len` bytes of an open file at `at` / 65535 of its size (and a little beyond).
    Read { handle: usize, at: u16, len: u32 },
    /// Reads an open file from start to end in `chunk`s, as `cat` does.
    ReadAll { handle: usize, chunk: u32 },
    /// Closes an open file.
    Release { handle: usize },
    /// The kernel forgets an inode (all of its lookups, or one).
    Forget { ino: usize, all: bool },
    /// Sleeps past the TTL.
    Expire,
    /// Uploads a new version of an item.
    Upload {
        item: usize,
        size: u32,
        size_listed: bool,
    },
    /// Adds an item to a folder.
    AddItem {
        folder: usize,
        size: u32,
        size_listed: bool,
    },
    /// Takes an item out of its folder.
    RemoveItem { item: usize, how: Removal },
    /// Adds a folder.
    AddFolder { parent: usize },
    /// Hides a folder (not the top folder).
    HideFolder { folder: usize },
}

impl<R: Remote> Run<R> {
    /// Runs one step, checking every answer of the mount on the way.
    pub(super) async fn step(&mut self, step: &Step) -> Result<(), TestCaseError> {
        match *step {
            Step::Lookup { node, missing } => self.lookup_path(node, missing).await?,
            Step::GetAttr { ino } => {
                if let Some(ino) = pick(&self.held(), ino) {
                    self.getattr(ino).await?;
                }
            }
            Step::List { dir, offset, plus } => self.list(dir, offset, plus).await?,
            Step::OpenDir { dir } => self.opendir(dir).await?,
            Step::ReadDir {
                handle,
                offset,
                plus,
            } => self.readdir(handle, offset, plus).await?,
            Step::ReleaseDir { handle } => self.releasedir(handle),
            Step::Open { file } => self.open(file).await?,
            Step::Read { handle, at, len } => self.read_at(handle, at, len).await?,
            Step::ReadAll { handle, chunk } => self.read_all(handle, chunk).await?,
            Step::Release { handle } => self.release(handle).await,
            Step::Forget { ino, all } => self.forget(ino, all),
            Step::Expire => {
                if !self.setup.exact {
                    tokio::time::sleep(EXPIRE_AFTER).await;
                    self.floor = self.model.now();
                }
            }
            Step::Upload {
                item,
                size,
                size_listed,
            } => {
                if let Some(item) = pick(&self.model.items(), item) {
                    upload(&self.remote, &mut self.model, item, size, size_listed);
                }
            }
            Step::AddItem {
                folder,
                size,
                size_listed,
            } => {
                if let Some(folder) = pick(&self.folders_below_root(), folder) {
                    add_item(&self.remote, &mut self.model, folder, size, size_listed);
                }
            }
            Step::RemoveItem { item, how } => {
                if let Some(item) = pick(&self.model.items(), item) {
                    remove_item(&self.remote, &mut self.model, item, how);
                }
            }
            Step::AddFolder { parent } => {
                if let Some(parent) = pick(&self.folders_below_root(), parent) {
                    add_folder(&self.remote, &mut self.model, parent);
                }
            }
            Step::HideFolder { folder } => {
                // Not the top folder: the mount would have nothing left to show.
                let below_top: Vec<Id> = self
                    .folders_below_root()
                    .into_iter()
                    .filter(|&f| f > 1)
                    .collect();
                if let Some(folder) = pick(&below_top, folder) {
                    hide_folder(&self.remote, &mut self.model, folder);
                }
            }
        }
        Ok(())
    }

    /// Folders an item or folder can be added to (the mount's root lists top folders only).
    fn folders_below_root(&self) -> Vec<Id> {
        self.model
            .folders()
            .into_iter()
            .filter(|&f| f != 0)
            .collect()
    }

    /// Looks up a node's path from the root; with `missing`, then a name that never existed
    /// inside it (ENOENT in a folder, ENOTDIR under a file).
    async fn lookup_path(&mut self, node: usize, missing: bool) -> Result<(), TestCaseError> {
        let nodes: Vec<Id> = (1..self.model.tree().len()).collect();
        let Some(node) = pick(&nodes, node) else {
            return Ok(());
        };
        let Some(ino) = self.walk(node).await? else {
            return Ok(());
        };
        if !missing {
            return Ok(());
        }
        let what = format!("lookup of a name never made in {}", self.model.path(node));
        let is_dir = matches!(self.model.tree()[node], Node::Folder { .. });
        let since = self.injections();
        if is_dir {
            self.touch(node);
        }
        match self.fs.lookup(ino, "never-there").await {
            Err(e) if is_dir && errno(&e) == libc::ENOENT => Ok(()),
            Err(e) if !is_dir && errno(&e) == libc::ENOTDIR => Ok(()),
            Err(e) if is_dir => self.allow(since, &e, &what),
            other => fail(format!("{what}: answered {other:?}")),
        }
    }

    /// The kernel forgets an inode it holds: only one no inode it holds was found in and no
    /// handle is open on, as the kernel lets go of a directory only after its children.
    fn forget(&mut self, ino: usize, all: bool) {
        let open: HashSet<u64> = self
            .files
            .iter()
            .map(|f| f.ino)
            .chain(self.dirs.iter().map(|d| d.ino))
            .collect();
        let parents: HashSet<u64> = self
            .parent_of
            .iter()
            .filter(|(child, _)| self.kernel.contains_key(child))
            .map(|(_, &p)| p)
            .collect();
        let free: Vec<u64> = self
            .held()
            .into_iter()
            .filter(|i| *i != ROOT && !open.contains(i) && !parents.contains(i))
            .collect();
        let Some(ino) = pick(&free, ino) else {
            return;
        };
        let held = self.kernel.get(&ino).copied().unwrap_or(0);
        let n = if all { held } else { 1 };
        self.fs.forget(ino, n);
        if n >= held {
            self.kernel.remove(&ino);
        } else {
            self.kernel.insert(ino, held - n);
        }
    }
}

/// Version sizes: mostly small, some past the first read-ahead window.
fn size() -> impl Strategy<Value = u32> {
    prop_oneof![
        6 => 1..5_000u32,
        3 => 5_000..400_000u32,
        // Past the first read-ahead window (2 MiB), so read-ahead splits it into parts.
        1 => 2_500_000..3_500_000u32,
    ]
}

/// Any step, weighted towards what reads and lists.
pub(super) fn step() -> impl Strategy<Value = Step> {
    let sel = || 0..32usize;
    let removal = prop_oneof![
        Just(Removal::Remove),
        Just(Removal::Hide),
        Just(Removal::Tombstone)
    ];
    prop_oneof![
        4 => (sel(), any::<bool>()).prop_map(|(node, missing)| Step::Lookup { node, missing }),
        2 => sel().prop_map(|ino| Step::GetAttr { ino }),
        4 => (sel(), any::<u8>(), any::<bool>())
            .prop_map(|(dir, offset, plus)| Step::List { dir, offset, plus }),
        1 => sel().prop_map(|dir| Step::OpenDir { dir }),
        2 => (sel(), any::<u8>(), any::<bool>()).prop_map(|(handle, offset, plus)| {
            Step::ReadDir { handle, offset, plus }
        }),
        1 => sel().prop_map(|handle| Step::ReleaseDir { handle }),
        4 => sel().prop_map(|file| Step::Open { file }),
        8 => (sel(), any::<u16>(), prop_oneof![0..4096u32, 4096..300_000u32])
            .prop_map(|(handle, at, len)| Step::Read { handle, at, len }),
        2 => (sel(), prop_oneof![Just(4096u32), Just(128 << 10), Just(1 << 20)])
            .prop_map(|(handle, chunk)| Step::ReadAll { handle, chunk }),
        1 => sel().prop_map(|handle| Step::Release { handle }),
        2 => (sel(), any::<bool>()).prop_map(|(ino, all)| Step::Forget { ino, all }),
        2 => Just(Step::Expire),
        3 => (sel(), size(), any::<bool>()).prop_map(|(item, size, size_listed)| {
            Step::Upload { item, size, size_listed }
        }),
        2 => (sel(), size(), any::<bool>()).prop_map(|(folder, size, size_listed)| {
            Step::AddItem { folder, size, size_listed }
        }),
        2 => (sel(), removal).prop_map(|(item, how)| Step::RemoveItem { item, how }),
        1 => sel().prop_map(|parent| Step::AddFolder { parent }),
        1 => sel().prop_map(|folder| Step::HideFolder { folder }),
    ]
}

/// Exact runs (long TTL, roomy caches) and loose runs (short TTL, caches of one to a few
/// listings, so listings are evicted all the time), with or without rollups.
pub(super) fn setup(faults: bool) -> impl Strategy<Value = Setup> {
    let faults = if faults {
        (any::<u64>(), 0.02..0.3f64).prop_map(Some).boxed()
    } else {
        Just(None).boxed()
    };
    (any::<bool>(), any::<bool>(), 1..5usize, 1..16usize, faults).prop_map(
        |(exact, rollups, max_dirs, max_entries, faults)| Setup {
            exact,
            rollups,
            max_dirs: if exact { 1000 } else { max_dirs },
            max_entries: if exact { 100_000 } else { max_entries },
            faults,
        },
    )
}
