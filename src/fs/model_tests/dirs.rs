//! Directories through the mount: one-shot listings and handles kept open, checked entry by
//! entry (names, order, offsets, `.` and `..`, inodes, sizes) against the model.

use super::account::{listing, Id, Node, Shown};
use super::run::{fail, pick, OpenDir, Run};
use crate::api::Remote;
use crate::fs::inode::ROOT;
use proptest::test_runner::TestCaseError;
use std::collections::{HashMap, HashSet};

/// What an entry of `readdir`/`readdirplus` said.
#[derive(Clone, Debug)]
pub(super) struct Got {
    name: String,
    ino: u64,
    is_dir: bool,
    /// The size `readdirplus` gave, when it knew it.
    size: Option<u64>,
}

/// Entries as read, for messages.
fn entries_text(got: &[Got]) -> String {
    let entries: Vec<String> = got
        .iter()
        .map(|g| match g.size {
            Some(size) => format!("{}@{} ({size} bytes)", g.name, g.ino),
            None => format!("{}@{}", g.name, g.ino),
        })
        .collect();
    format!("[{}]", entries.join(", "))
}

impl<R: Remote> Run<R> {
    /// Opens a folder, reads its entries from `offset`, closes it; the entries must be its
    /// listing at an epoch the model allows.
    pub(super) async fn list(
        &mut self,
        dir: usize,
        offset: u8,
        plus: bool,
    ) -> Result<(), TestCaseError> {
        let Some(dir) = pick(&self.model.folders(), dir) else {
            return Ok(());
        };
        let Some(ino) = self.walk(dir).await? else {
            return Ok(());
        };
        self.touch(dir);
        let since = self.injections();
        let what = format!("listing {}", self.model.path(dir));
        let fh = match self.fs.opendir(ino).await {
            Ok(fh) => fh,
            Err(e) => return self.allow(since, &e, &what),
        };
        let offset = u64::from(offset % 8);
        let got = self.read_dir(ino, dir, fh, offset, plus);
        self.fs.releasedir(fh);
        let got = got?;
        let (ino_of, key_of, sizes) = (self.ino_of.clone(), self.key_of.clone(), self.sizes());
        let shown = format!("{what} showed {}", entries_text(&got));
        self.observe(dir, &shown, |t| {
            Self::entries_fit(t, dir, offset, &got, &ino_of, &key_of, &sizes)
        })?;
        let epochs = self.views.get(&dir).cloned().unwrap_or_default();
        self.bind_entries(dir, offset, &got, &epochs, &what)
    }

    /// Reads entries of a kept handle (opening one first when none is); they must be the
    /// listing at one of the epochs its snapshot may be of.
    pub(super) async fn readdir(
        &mut self,
        handle: usize,
        offset: u8,
        plus: bool,
    ) -> Result<(), TestCaseError> {
        if self.dirs.is_empty() {
            self.opendir(handle).await?;
        }
        if self.dirs.is_empty() {
            return Ok(());
        }
        let h = handle % self.dirs.len();
        let (fh, ino, dir) = (self.dirs[h].fh, self.dirs[h].ino, self.dirs[h].dir);
        let offset = u64::from(offset % 8);
        let got = self.read_dir(ino, dir, fh, offset, plus)?;
        let (ino_of, key_of, sizes) = (self.ino_of.clone(), self.key_of.clone(), self.sizes());
        let epochs: Vec<usize> = self.dirs[h]
            .epochs
            .iter()
            .copied()
            .filter(|&e| {
                Self::entries_fit(
                    &self.model.history[e],
                    dir,
                    offset,
                    &got,
                    &ino_of,
                    &key_of,
                    &sizes,
                )
            })
            .collect();
        let what = format!(
            "readdir from {offset} of a handle kept open on {}",
            self.model.path(dir)
        );
        if epochs.is_empty() {
            return fail(format!(
                "{what} showed {}; its snapshot may be of: {}",
                entries_text(&got),
                self.describe(dir, &self.dirs[h].epochs)
            ));
        }
        self.bind_entries(dir, offset, &got, &epochs, &what)?;
        self.dirs[h].epochs = epochs;
        Ok(())
    }

    /// Closes a kept handle.
    pub(super) fn releasedir(&mut self, handle: usize) {
        if !self.dirs.is_empty() {
            let h = self.dirs.remove(handle % self.dirs.len());
            self.fs.releasedir(h.fh);
        }
    }

    /// Looks up a folder's path and opens it, keeping the handle and the epochs its snapshot
    /// may be of.
    pub(super) async fn opendir(&mut self, dir: usize) -> Result<(), TestCaseError> {
        let Some(dir) = pick(&self.model.folders(), dir) else {
            return Ok(());
        };
        let Some(ino) = self.walk(dir).await? else {
            return Ok(());
        };
        self.touch(dir);
        let since = self.injections();
        let epochs = self.allowed(dir);
        match self.fs.opendir(ino).await {
            Ok(fh) => self.dirs.push(OpenDir {
                fh,
                ino,
                dir,
                epochs,
            }),
            Err(e) => {
                let what = format!("opendir {}", self.model.path(dir));
                self.allow(since, &e, &what)?;
            }
        }
        Ok(())
    }

    /// Reads a directory handle from `offset`, checking what does not depend on the epoch.
    fn read_dir(
        &mut self,
        ino: u64,
        dir: Id,
        fh: u64,
        offset: u64,
        plus: bool,
    ) -> Result<Vec<Got>, TestCaseError> {
        let what = format!("readdir of {} from {offset}", self.model.path(dir));
        let answer = if plus {
            self.fs.readdirplus(ino, fh, offset).map(|entries| {
                entries
                    .into_iter()
                    .map(|(e, attr, ttl)| (e, Some((attr, ttl))))
                    .collect::<Vec<_>>()
            })
        } else {
            self.fs
                .readdir(ino, fh, offset)
                .map(|entries| entries.into_iter().map(|e| (e, None)).collect())
        };
        let entries = match answer {
            Ok(entries) => entries,
            Err(e) => return fail(format!("{what}: {e:?} from a handle that is open")),
        };
        let parent_ino = match dir {
            0 => ROOT,
            d => match self.ino_of.get(&Shown::Dir(self.model.tree()[d].parent())) {
                Some(&i) => i,
                None if self.model.tree()[d].parent() == 0 => ROOT,
                None => return fail(format!("{what}: parent never looked up")),
            },
        };
        let mut got = Vec::new();
        for (k, (e, plus)) in entries.into_iter().enumerate() {
            let at = offset + k as u64;
            if e.next != at + 1 {
                return fail(format!(
                    "{what}: entry {at} ({}) says the next is {}: entries were skipped",
                    e.name, e.next
                ));
            }
            let dots = match at {
                0 => Some((".", ino)),
                1 => Some(("..", parent_ino)),
                _ => None,
            };
            if let Some((name, want)) = dots {
                if (e.name.as_str(), e.ino, e.is_dir) != (name, want, true) {
                    return fail(format!("{what}: entry {at} is {e:?}, not {name} ({want})"));
                }
                continue;
            }
            let mut size = None;
            if let Some((attr, ttl)) = plus {
                // Each entry handed over with attributes counts as a lookup.
                *self.kernel.entry(e.ino).or_default() += 1;
                self.parent_of.insert(e.ino, ino);
                if (attr.ino, attr.is_dir) != (e.ino, e.is_dir) {
                    return fail(format!("{what}: {e:?} has attributes {attr:?}"));
                }
                if !attr.is_dir && attr.size == 0 && !ttl.is_zero() {
                    return fail(format!("{what}: {} has no size yet but a TTL", e.name));
                }
                size = (!attr.is_dir && attr.size > 0).then_some(attr.size);
            }
            got.push(Got {
                name: e.name,
                ino: e.ino,
                is_dir: e.is_dir,
                size,
            });
        }
        Ok(got)
    }

    /// Whether the entries read from `offset` are (a first part of) what `dir` shows in `tree`,
    /// with inodes
    /// consistent with every inode seen so far.
    fn entries_fit(
        tree: &[Node],
        dir: Id,
        offset: u64,
        got: &[Got],
        ino_of: &HashMap<Shown, u64>,
        key_of: &HashMap<u64, Shown>,
        sizes: &[u64],
    ) -> bool {
        let want = listing(tree, dir);
        let skip = offset.saturating_sub(2) as usize;
        // A call may answer part of what remains (each builds about what the kernel took last
        // time), but never nothing while entries remain: nothing means the end.
        let rest = want.len().saturating_sub(skip);
        let dots = 2u64.saturating_sub(offset) as usize;
        if got.len() > rest || (rest > 0 && got.is_empty() && dots == 0) {
            return false;
        }
        want.iter().skip(skip).zip(got).all(|((name, key), g)| {
            let same_ino = ino_of.get(key).map_or(true, |&i| i == g.ino)
                && key_of.get(&g.ino).map_or(true, |k| k == key);
            let fits = match key {
                Shown::Dir(_) => g.is_dir,
                Shown::File(v) => !g.is_dir && g.size.map_or(true, |s| s == sizes[*v]),
            };
            *name == g.name && same_ino && fits
        })
    }

    /// Binds the inodes of entries that every remaining epoch agrees on.
    fn bind_entries(
        &mut self,
        dir: Id,
        offset: u64,
        got: &[Got],
        epochs: &[usize],
        what: &str,
    ) -> Result<(), TestCaseError> {
        let skip = offset.saturating_sub(2) as usize;
        for (k, g) in got.iter().enumerate() {
            let keys: HashSet<Shown> = epochs
                .iter()
                .filter_map(|&e| {
                    listing(&self.model.history[e], dir)
                        .get(skip + k)
                        .map(|x| x.1)
                })
                .collect();
            if keys.len() == 1 {
                if let Some(&key) = keys.iter().next() {
                    self.bind(g.ino, key, what)?;
                }
            }
        }
        Ok(())
    }

    /// Every version's size, by version.
    fn sizes(&self) -> Vec<u64> {
        self.model
            .versions
            .iter()
            .map(|v| v.bytes.len() as u64)
            .collect()
    }
}
