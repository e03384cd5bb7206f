//! The staging area: one file per local entry and content generation, holding the bytes a
//! writer left until they are a version on the service (and, for local-only names, for good).
//! Files are private to the user (0600) and live beside the journal.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The staging directory.
pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    /// The staging area in `dir` (created when missing, mode 0700).
    pub fn open(dir: &Path) -> std::io::Result<Staging> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        Ok(Staging {
            dir: dir.to_path_buf(),
        })
    }

    /// The file of entry `id`'s generation `generation`.
    pub fn path(&self, id: u64, generation: u32) -> PathBuf {
        self.dir.join(format!("{id}.{generation}"))
    }

    /// An empty file for `id`'s `generation` (emptied if it exists).
    pub fn create(&self, id: u64, generation: u32) -> std::io::Result<File> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(self.path(id, generation))
    }

    /// The file of `id`'s `generation`, for reading and writing.
    pub fn open_file(&self, id: u64, generation: u32) -> std::io::Result<File> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path(id, generation))
    }

    /// Copies generation `from` of `id` to generation `to` (a reflink or in-kernel copy where
    /// the filesystem can), so an upload of `from` goes on while a writer changes `to`.
    pub fn copy(&self, id: u64, from: u32, to: u32) -> std::io::Result<()> {
        std::fs::copy(self.path(id, from), self.path(id, to)).map(drop)
    }

    /// Removes `id`'s `generation`; a file already gone is no error.
    pub fn remove(&self, id: u64, generation: u32) {
        match std::fs::remove_file(self.path(id, generation)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(id, generation, error = %e, "cannot remove a staging file"),
        }
    }

    /// Removes staging files no live entry refers to (left by a crash between writing a file
    /// and recording it, or after an entry went). Returns how many.
    pub fn sweep(&self, live: impl Fn(u64, u32) -> bool) -> usize {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for f in dir.flatten() {
            let name = f.file_name();
            let parsed = name.to_str().and_then(|n| {
                let (id, g) = n.split_once('.')?;
                Some((id.parse().ok()?, g.parse().ok()?))
            });
            if let Some((id, g)) = parsed {
                if !live(id, g) && std::fs::remove_file(f.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }
}
