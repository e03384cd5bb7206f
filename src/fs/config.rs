//! What a mount shows and how it behaves: its scope and its tunables, as the command line
//! sets them.

use crate::cache::disk::DiskCache;
use std::sync::Arc;
use std::time::Duration;

/// What a mount shows at its root.
#[derive(Clone, Debug)]
pub enum Scope {
    /// Every hub: `MOUNT/<hub>/<project>/<top folder>/…`.
    All,
    /// One project: its top folders at `MOUNT/`.
    Project {
        /// Hub id.
        hub: String,
        /// Project id.
        project: String,
    },
}

/// Tunables of a mount.
#[derive(Clone)]
pub struct FsConfig {
    /// How long a listing is trusted.
    pub ttl: Duration,
    /// Bytes all read-ahead together may hold.
    pub prefetch_memory: u64,
    /// The disk cache, when enabled.
    pub disk: Option<Arc<DiskCache>>,
    /// How many listings are kept.
    pub max_dirs: usize,
    /// How many entries all kept listings may hold together.
    pub max_entries: usize,
    /// Owner of every inode.
    pub uid: u32,
    /// Group of every inode.
    pub gid: u32,
    /// Permission bits every inode shows, when told.
    pub modes: crate::fs::attr::Modes,
    /// Show the app's own OSS buckets of this region under `buckets/` at the root.
    pub buckets: Option<String>,
    /// Versions a read-write mount made, whose modification time is the writer's.
    pub made: Option<Arc<crate::fs::write::MadeVersions>>,
    /// The mount's own user id, when known.
    pub user_id: Option<String>,
}
