//! The one tree walker of the tests: over a mount (names, inodes, sizes) or over a seed
//! directory on local disk.

use std::os::unix::fs::DirEntryExt;
use std::path::{Path, PathBuf};

/// One entry below the walked directory.
pub struct Entry {
    /// Path relative to the walked directory, components joined with `/`.
    pub rel: String,
    /// The walked directory joined with `rel`.
    pub path: PathBuf,
    /// Components in `rel`: 1 for the walked directory's own entries.
    pub depth: usize,
    /// The inode number readdir gave (`d_ino`), to compare with `meta`'s.
    pub readdir_ino: u64,
    /// `lstat` of the entry.
    pub meta: std::fs::Metadata,
}

/// Everything below `root`, depth first: in each directory the files come first, then each
/// subdirectory followed by what it holds, both by name, so every walk of a tree is the same.
/// Lazy: a directory is listed when the walk reaches it, so a search that stops early lists no
/// more of a mount than it needs. Panics (naming the path) on any error: a walk never skips part
/// of a tree silently.
pub fn walk(root: &Path) -> impl Iterator<Item = Entry> {
    let mut walk = Walk {
        pending: Vec::new(),
    };
    walk.push_children(root, "", 1);
    walk
}

struct Walk {
    /// Entries still to yield; the next one is last.
    pending: Vec<Entry>,
}

impl Walk {
    /// Lists `dir` (at `rel`, whose entries are at `depth`) and queues its entries in order.
    fn push_children(&mut self, dir: &Path, rel: &str, depth: usize) {
        let mut children: Vec<Entry> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
            .map(|e| {
                let e = e.unwrap_or_else(|err| panic!("entry of {}: {err}", dir.display()));
                let name = e
                    .file_name()
                    .into_string()
                    .unwrap_or_else(|n| panic!("non-UTF-8 name {n:?} in {}", dir.display()));
                let rel = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let path = e.path();
                let meta = std::fs::symlink_metadata(&path)
                    .unwrap_or_else(|err| panic!("stat {rel:?}: {err}"));
                Entry {
                    readdir_ino: e.ino(),
                    rel,
                    path,
                    depth,
                    meta,
                }
            })
            .collect();
        children.sort_by(|a, b| (a.meta.is_dir(), &a.rel).cmp(&(b.meta.is_dir(), &b.rel)));
        // Reversed, because the next entry is taken from the end.
        self.pending.extend(children.into_iter().rev());
    }
}

impl Iterator for Walk {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        let entry = self.pending.pop()?;
        if entry.meta.is_dir() {
            self.push_children(&entry.path, &entry.rel, entry.depth + 1);
        }
        Some(entry)
    }
}
