//! One case: the mount over its account, the model beside it, what the "kernel" holds, and the
//! checks every answer goes through.

use super::account::{child, folder_id, item_id, listing, Id, Model, Node, Shown};
use crate::api::Remote;
use crate::fs::attr::Attr;
use crate::fs::inode::ROOT;
use crate::fs::{Error, Fs};
use crate::testing::faulty::Faulty;
use crate::testing::MemoryRemote;
use proptest::test_runner::TestCaseError;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The TTL of loose runs: short, so expiring it costs little time.
pub(super) const SHORT_TTL: Duration = Duration::from_millis(20);
/// How long `Expire` sleeps: past the TTL, so every listing fetched before it is stale.
pub(super) const EXPIRE_AFTER: Duration = SHORT_TTL.saturating_add(Duration::from_millis(5));
/// The TTL of exact runs: longer than any run, so listings never expire.
pub(super) const LONG_TTL: Duration = Duration::from_secs(3600);

/// The integer errno of an error of `Fs`: the one place that knows how it is spelled. The
/// steps only look names up, list and read, and none of the failures they can meet maps
/// differently between those operations (only changes, such as `mkdir` meeting a 409, do).
pub(super) fn errno(e: &Error) -> i32 {
    e.errno(crate::fs::Op::Lookup)
}

/// A failed check, as proptest reports it.
pub(super) fn fail<T>(message: String) -> Result<T, TestCaseError> {
    Err(TestCaseError::fail(message))
}

/// One of `all`, picked by a selector modulo their number.
pub(super) fn pick<T: Copy>(all: &[T], selector: usize) -> Option<T> {
    (!all.is_empty()).then(|| all[selector % all.len()])
}

/// How one case's mount is set up.
#[derive(Clone, Debug)]
pub(super) struct Setup {
    /// Listings never expire nor are evicted, so the model is exact (see the module comment).
    pub(super) exact: bool,
    /// The account moves folder rollups on every change, so `Fs` confirms listings by them.
    pub(super) rollups: bool,
    /// `FsConfig::max_dirs`: one to a few in loose runs, so listings are evicted all the time.
    pub(super) max_dirs: usize,
    /// `FsConfig::max_entries`, as small.
    pub(super) max_entries: usize,
    /// Seed and probability of injected failures.
    pub(super) faults: Option<(u64, f64)>,
}

/// A file the harness holds open.
pub(super) struct OpenFile {
    pub(super) fh: u64,
    pub(super) ino: u64,
    /// The version it was opened on.
    pub(super) version: usize,
    /// Failures injected before it was opened.
    pub(super) injected_at_open: usize,
}

/// A directory the harness holds open.
pub(super) struct OpenDir {
    pub(super) fh: u64,
    pub(super) ino: u64,
    pub(super) dir: Id,
    /// Epochs its snapshot may be of.
    pub(super) epochs: Vec<usize>,
}

/// One case: the mount, the account under it, the model, and what the "kernel" holds.
pub(super) struct Run<R: Remote> {
    pub(super) fs: Fs<R>,
    pub(super) remote: Arc<MemoryRemote>,
    pub(super) faults: Option<Arc<Faulty<MemoryRemote>>>,
    pub(super) setup: Setup,
    pub(super) model: Model,
    /// Epochs each directory's answers so far are consistent with.
    pub(super) views: HashMap<Id, Vec<usize>>,
    /// Exact runs: the first epoch at which a step may have fetched a directory's listing.
    pub(super) touched: HashMap<Id, usize>,
    /// Loose runs: the epoch of the last `Expire`.
    pub(super) floor: usize,
    /// Lookups the kernel holds, by inode, and the directory each was found in.
    pub(super) kernel: HashMap<u64, u64>,
    pub(super) parent_of: HashMap<u64, u64>,
    pub(super) ino_of: HashMap<Shown, u64>,
    pub(super) key_of: HashMap<u64, Shown>,
    pub(super) files: Vec<OpenFile>,
    pub(super) dirs: Vec<OpenDir>,
}

impl<R: Remote> Run<R> {
    /// Failures injected so far.
    pub(super) fn injections(&self) -> usize {
        self.faults.as_ref().map_or(0, |f| f.injected_count())
    }

    /// An error is only allowed as the answer to a failure injected since `since`.
    pub(super) fn allow(&self, since: usize, e: &Error, what: &str) -> Result<(), TestCaseError> {
        let injected = self
            .faults
            .as_ref()
            .map(|f| f.injected().split_off(since))
            .unwrap_or_default();
        if injected
            .iter()
            .any(|i| errno(&Error::Remote(i.error.clone())) == errno(e))
        {
            return Ok(());
        }
        fail(format!(
            "{what}: answered {e:?}, but no failure with that errno was injected \
             (injected: {injected:?})"
        ))
    }

    /// A step may fetch `dir`'s listing from now on.
    pub(super) fn touch(&mut self, dir: Id) {
        let now = self.model.now();
        self.touched.entry(dir).or_insert(now);
    }

    /// The epochs the mount's listing of `dir` may be of now, before this answer.
    pub(super) fn allowed(&self, dir: Id) -> Vec<usize> {
        let now = self.model.now();
        let epochs: Vec<usize> = if self.setup.exact {
            match self.views.get(&dir) {
                Some(v) => v.clone(),
                None => (self.touched.get(&dir).copied().unwrap_or(now)..=now).collect(),
            }
        } else {
            let seen = self.views.get(&dir).and_then(|v| v.first().copied());
            (seen.unwrap_or(0).max(self.floor)..=now).collect()
        };
        // Nothing can show a folder as it was before it existed.
        epochs
            .into_iter()
            .filter(|&e| dir < self.model.history[e].len())
            .collect()
    }

    /// Narrows the epochs of `dir` to those whose state allows an answer; fails when none does.
    pub(super) fn observe(
        &mut self,
        dir: Id,
        what: &str,
        ok: impl Fn(&[Node]) -> bool,
    ) -> Result<(), TestCaseError> {
        let allowed = self.allowed(dir);
        let kept: Vec<usize> = allowed
            .iter()
            .copied()
            .filter(|&e| ok(&self.model.history[e]))
            .collect();
        if kept.is_empty() {
            return fail(format!(
                "{what}: no state of {} the mount may show allows that; {}",
                self.model.path(dir),
                self.describe(dir, &allowed)
            ));
        }
        self.views.insert(dir, kept);
        Ok(())
    }

    /// What `dir` shows at each of `epochs`, with the inodes seen so far, for messages.
    pub(super) fn describe(&self, dir: Id, epochs: &[usize]) -> String {
        let at = |e: usize| {
            let entries: Vec<String> = listing(&self.model.history[e], dir)
                .into_iter()
                .map(|(name, key)| match self.ino_of.get(&key) {
                    Some(ino) => format!("{name}={key:?}@{ino}"),
                    None => format!("{name}={key:?}"),
                })
                .collect();
            format!("epoch {e} shows [{}]", entries.join(", "))
        };
        epochs.iter().map(|&e| at(e)).collect::<Vec<_>>().join("; ")
    }

    /// Records that `ino` stands for `key`: an inode is one thing for good, and one thing is
    /// always the same inode.
    pub(super) fn bind(&mut self, ino: u64, key: Shown, what: &str) -> Result<(), TestCaseError> {
        if let Some(&known) = self.ino_of.get(&key) {
            if known != ino {
                return fail(format!("{what}: {key:?} was inode {known}, now {ino}"));
            }
        }
        if let Some(&k) = self.key_of.get(&ino) {
            if k != key {
                return fail(format!("{what}: inode {ino} was {k:?}, now {key:?}"));
            }
        }
        self.ino_of.insert(key, ino);
        self.key_of.insert(ino, key);
        Ok(())
    }

    /// What an answered lookup of `name` stands for: a folder by its (unique) name, a file by
    /// its (unique) size.
    pub(super) fn identify(
        &self,
        attr: &Attr,
        name: &str,
        what: &str,
    ) -> Result<Shown, TestCaseError> {
        let tree = self.model.tree();
        if attr.is_dir {
            return match (0..tree.len()).find(|&i| tree[i].name() == name) {
                Some(id) if matches!(tree[id], Node::Folder { .. }) => Ok(Shown::Dir(id)),
                _ => fail(format!("{what}: a directory, but {name} is no folder")),
            };
        }
        match self.model.by_size.get(&attr.size) {
            Some(&v) if tree[self.model.versions[v].item].name() == name => Ok(Shown::File(v)),
            _ => fail(format!(
                "{what}: a file of {} bytes, which no version of {name} has",
                attr.size
            )),
        }
    }

    /// The attributes read from the node must name the same remote version or folder.
    pub(super) fn check_xattr(
        &self,
        ino: u64,
        key: Shown,
        what: &str,
    ) -> Result<(), TestCaseError> {
        let (name, want) = match key {
            Shown::Dir(id) => ("user.aps.id", folder_id(id)),
            Shown::File(v) => {
                let version = &self.model.versions[v];
                let item = item_id(version.item);
                (
                    "user.aps.version_id",
                    format!("{item}?version={}", version.number),
                )
            }
        };
        match self.fs.xattr_now(ino, name) {
            Ok(Some(got)) if got == want.as_bytes() => Ok(()),
            other => fail(format!("{what}: {name} is {other:?}, not {want}")),
        }
    }

    /// `lookup` of `name` in `parent`, checked; the attributes when found.
    pub(super) async fn lookup(
        &mut self,
        parent_ino: u64,
        parent: Id,
        name: &str,
    ) -> Result<Option<Attr>, TestCaseError> {
        self.touch(parent);
        let since = self.injections();
        let what = format!("lookup {name} in {}", self.model.path(parent));
        match self.fs.lookup(parent_ino, name).await {
            Ok((attr, _)) => {
                *self.kernel.entry(attr.ino).or_default() += 1;
                self.parent_of.insert(attr.ino, parent_ino);
                let key = self.identify(&attr, name, &what)?;
                self.bind(attr.ino, key, &what)?;
                self.check_xattr(attr.ino, key, &what)?;
                let name = name.to_string();
                self.observe(parent, &format!("{what} found {key:?}"), move |t| {
                    child(t, parent, &name) == Some(key)
                })?;
                Ok(Some(attr))
            }
            Err(e) if errno(&e) == libc::ENOENT => {
                let name = name.to_string();
                self.observe(parent, &format!("{what}: ENOENT"), move |t| {
                    child(t, parent, &name).is_none()
                })?;
                Ok(None)
            }
            Err(e) => {
                self.allow(since, &e, &what)?;
                Ok(None)
            }
        }
    }

    /// Looks up every component of `node`'s path from the root; its inode, or `None` when the
    /// mount (checked) said no.
    pub(super) async fn walk(&mut self, node: Id) -> Result<Option<u64>, TestCaseError> {
        let (mut ino, mut parent) = (ROOT, 0);
        for id in self.model.ancestry(node) {
            let name = self.model.tree()[id].name().to_string();
            match self.lookup(ino, parent, &name).await? {
                Some(attr) => (ino, parent) = (attr.ino, id),
                None => return Ok(None),
            }
        }
        Ok(Some(ino))
    }

    /// Inodes the kernel holds, the root included, in order.
    pub(super) fn held(&self) -> Vec<u64> {
        let mut held: Vec<u64> = self.kernel.keys().copied().collect();
        held.push(ROOT);
        held.sort_unstable();
        held
    }

    /// `getattr` of an inode the kernel holds, checked.
    pub(super) async fn getattr(&mut self, ino: u64) -> Result<(), TestCaseError> {
        let key = self.key_of.get(&ino).copied();
        if let Some(Shown::Dir(id)) = key {
            // A directory's attributes come from its parent's listing.
            self.touch(self.model.tree()[id].parent());
        }
        let since = self.injections();
        let answer = self.fs.getattr(ino).await;
        let what = format!("getattr of inode {ino} ({key:?})");
        match (key, answer) {
            (_, Ok((attr, _))) if ino == ROOT => {
                if !attr.is_dir {
                    return fail(format!("{what}: the root is {attr:?}"));
                }
            }
            (Some(Shown::File(v)), Ok((attr, _))) => {
                let size = self.model.versions[v].bytes.len() as u64;
                if attr.is_dir || attr.size != size {
                    return fail(format!(
                        "{what}: {attr:?}, but the version has {size} bytes"
                    ));
                }
            }
            (None, Ok((attr, _))) if !attr.is_dir => {
                // Handed over by readdirplus before its version could be told apart.
                let Some(&v) = self.model.by_size.get(&attr.size) else {
                    return fail(format!("{what}: {attr:?}, a size no version has"));
                };
                self.bind(ino, Shown::File(v), &what)?;
            }
            (Some(Shown::Dir(id)), answer) => {
                let parent = self.model.tree()[id].parent();
                let name = self.model.tree()[id].name().to_string();
                match answer {
                    Ok((attr, _)) if attr.is_dir => {
                        self.observe(parent, &format!("{what} found it"), |t| {
                            child(t, parent, &name) == Some(Shown::Dir(id))
                        })?;
                    }
                    Err(e) if errno(&e) == libc::ENOENT => {
                        self.observe(parent, &format!("{what}: ENOENT"), |t| {
                            child(t, parent, &name) != Some(Shown::Dir(id))
                        })?;
                    }
                    Err(e) => self.allow(since, &e, &what)?,
                    Ok((attr, _)) => return fail(format!("{what}: {attr:?}")),
                }
            }
            (_, Err(e)) => self.allow(since, &e, &what)?,
            (None, Ok((attr, _))) => return fail(format!("{what}: an unknown directory {attr:?}")),
        }
        Ok(())
    }
}
