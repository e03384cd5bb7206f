//! Inode numbers derived from remote ids, so the same folder, and the same version of an item,
//! has the same `st_ino` after a remount (backup tools key on it), and the table of what each
//! number stands for.

use crate::api::Meta;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

/// The mount's root directory.
pub const ROOT: u64 = 1;

/// What the remote id of a file under `.versions` adds to its item id, so its inode id reads
/// `<item>#v#<version>`: a version seen there is a different inode from the same version shown
/// in its folder (`<item>#<version>`), since a node has one parent.
pub const OLDER_VERSIONS: &str = "#v";

/// What a directory or file stands for remotely.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// The root of a whole-account mount: lists hubs.
    Hubs,
    /// A hub: lists projects.
    Hub {
        /// Hub id.
        hub: String,
    },
    /// A project: lists its top folders.
    Project {
        /// Hub id.
        hub: String,
        /// Project id.
        project: String,
    },
    /// A folder.
    Folder {
        /// Owning project id.
        project: String,
        /// `objectCount` when listed (how many pages its listing has).
        count: Option<u64>,
        /// `lastModifiedTimeRollup` when listed, and when that was seen.
        rollup: Option<crate::cache::metadata::Validator>,
    },
    /// An item, shown as its tip version (or, under `.versions`, one of its versions), or an
    /// object of an OSS bucket.
    File {
        /// The version it shows.
        version: FileVersion,
    },
    /// `.versions` of a folder (its parent): not listed by the folder, reached by name; holds
    /// one directory per file of the folder.
    Versions {
        /// Owning project id.
        project: String,
    },
    /// `.versions/<file name>`: every version of one item.
    ItemVersions {
        /// Owning project id.
        project: String,
        /// Item (lineage) id.
        item: String,
    },
    /// `buckets` at the root: the app's own OSS buckets.
    Buckets {
        /// The region listed.
        region: String,
    },
    /// An OSS bucket, or a folder inside it made from object keys with `/`.
    Objects {
        /// Bucket key.
        bucket: String,
        /// Key prefix this directory stands for: empty for the bucket, else ending in `/`.
        prefix: String,
        /// The bucket's retention policy (`policyKey`).
        policy: Arc<str>,
    },
}

impl Kind {
    /// Whether the directory's children are made from its folder's listing (`.versions`)
    /// rather than fetched.
    pub fn lists_its_folder(&self) -> bool {
        matches!(self, Kind::Versions { .. })
    }

    /// What confirms a folder's listing later without fetching it again.
    pub fn validator(&self) -> Option<crate::cache::metadata::Validator> {
        match self {
            Kind::Folder { rollup, .. } => rollup.clone(),
            _ => None,
        }
    }

    /// The project a directory belongs to, when it knows.
    pub fn project(&self) -> Option<&str> {
        match self {
            Kind::Folder { project, .. }
            | Kind::Project { project, .. }
            | Kind::Versions { project }
            | Kind::ItemVersions { project, .. } => Some(project),
            _ => None,
        }
    }
}

/// The version a file node currently shows.
#[derive(Clone, Debug, PartialEq)]
pub struct FileVersion {
    /// Version URN.
    pub id: String,
    /// Storage object URN.
    pub storage: String,
    /// Bytes, when known (listings may omit `storageSize`).
    pub size: Option<u64>,
    /// `versionNumber`; 0 for bucket objects.
    pub number: u32,
    /// The object's SHA-1, when the listing gave one (bucket objects).
    pub sha1: Option<Box<str>>,
}

/// One inode.
#[derive(Clone, Debug)]
pub struct Node {
    /// What the inode number derives from: the hub, project or folder id, or for a file
    /// `<item id>#<version id>`; empty for the root.
    pub id: String,
    /// Parent inode (the root is its own parent).
    pub parent: u64,
    /// What it is.
    pub kind: Kind,
    /// Creation time.
    pub created: SystemTime,
    /// Modification time.
    pub modified: SystemTime,
    /// What the service says about it, shown as extended attributes.
    pub meta: Meta,
}

impl Node {
    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        !matches!(self.kind, Kind::File { .. })
    }

    /// For a file, the item it shows a version of: its id up to the first `#`.
    pub fn item(&self) -> &str {
        self.id.split_once('#').map_or(&self.id, |(item, _)| item)
    }
}

/// A child as fetched, before it gets a name and an inode.
pub struct Child {
    /// Remote id (the item id for files).
    pub id: String,
    /// Remote name.
    pub raw: String,
    /// What it becomes.
    pub kind: Kind,
    /// Creation time, when the service gave one.
    pub created: Option<SystemTime>,
    /// Modification time, when the service gave one.
    pub modified: Option<SystemTime>,
    /// Metadata shown as extended attributes.
    pub meta: Meta,
}

impl Child {
    /// What its inode number derives from: the remote id, and for a file also the version, so
    /// each version is its own inode. Open handles then keep reading the version they opened,
    /// and the kernel's cached pages and attributes of an inode never go stale.
    pub fn inode_key(&self) -> String {
        match &self.kind {
            Kind::File { version } => format!("{}#{}", self.id, version.id),
            _ => self.id.clone(),
        }
    }
}

/// The inode table. Entries are never reused for another id during a mount.
#[derive(Default)]
pub struct Inodes {
    nodes: HashMap<u64, Node>,
    by_id: HashMap<String, u64>,
    /// How many times the kernel was handed each inode and has not forgotten it yet.
    lookups: HashMap<u64, u64>,
}

/// The preferred inode number of an id: 63 bits of its SHA-256, never 0 or the root.
fn hashed(id: &str, salt: u32) -> u64 {
    let mut h = Sha256::new();
    h.update(id.as_bytes());
    if salt > 0 {
        h.update(salt.to_le_bytes());
    }
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    let n = u64::from_le_bytes(b) >> 1;
    if n <= ROOT {
        n + 2
    } else {
        n
    }
}

impl Inodes {
    /// A table holding just the root.
    pub fn new(root: Node) -> Inodes {
        let mut t = Inodes::default();
        t.nodes.insert(ROOT, root);
        t
    }

    /// The inode of `id`, creating or updating its node. A hash collision with another id
    /// (astronomically rare) moves the newcomer to the next salted hash.
    pub fn upsert(&mut self, node: Node) -> u64 {
        if let Some(&ino) = self.by_id.get(&node.id) {
            self.nodes.insert(ino, node);
            return ino;
        }
        let mut salt = 0;
        let ino = loop {
            let ino = hashed(&node.id, salt);
            if !self.nodes.contains_key(&ino) {
                break ino;
            }
            tracing::warn!(id = %node.id, ino, "inode number collision; using a salted number");
            salt += 1;
        };
        self.by_id.insert(node.id.clone(), ino);
        self.nodes.insert(ino, node);
        ino
    }

    /// The inode of a remote id, when known.
    pub fn ino_of(&self, id: &str) -> Option<u64> {
        self.by_id.get(id).copied()
    }

    /// The inode of the file that shows `item` in its folder, when known (a scan: only asked
    /// for when a ref names an item rather than a version).
    pub fn file_of_item(&self, item: &str) -> Option<u64> {
        let older = format!("{item}{OLDER_VERSIONS}#");
        self.nodes.iter().find_map(|(ino, n)| {
            let in_folder = n.item() == item && !n.id.starts_with(&older);
            (in_folder && matches!(n.kind, Kind::File { .. })).then_some(*ino)
        })
    }

    /// The node currently recorded for a remote id.
    pub fn by_id(&self, id: &str) -> Option<&Node> {
        self.by_id.get(id).and_then(|i| self.nodes.get(i))
    }

    /// The node of an inode.
    pub fn get(&self, ino: u64) -> Option<&Node> {
        self.nodes.get(&ino)
    }

    /// Mutable access to a node.
    pub fn get_mut(&mut self, ino: u64) -> Option<&mut Node> {
        self.nodes.get_mut(&ino)
    }

    /// The kernel was handed `ino` once more (a lookup or a readdirplus entry).
    pub fn remember(&mut self, ino: u64) {
        *self.lookups.entry(ino).or_default() += 1;
    }

    /// The kernel forgot `n` references to `ino`; returns whether it still holds any.
    pub fn forget(&mut self, ino: u64, n: u64) -> bool {
        match self.lookups.get_mut(&ino) {
            Some(c) if *c > n => {
                *c -= n;
                true
            }
            Some(_) => {
                self.lookups.remove(&ino);
                false
            }
            None => false,
        }
    }

    /// Whether the kernel holds `ino`.
    pub fn known_to_kernel(&self, ino: u64) -> bool {
        self.lookups.contains_key(&ino)
    }

    /// Drops a node nobody refers to any more (its number comes back if the id is seen again).
    pub fn remove(&mut self, ino: u64) {
        if ino == ROOT {
            return;
        }
        if let Some(node) = self.nodes.remove(&ino) {
            if self.by_id.get(&node.id) == Some(&ino) {
                self.by_id.remove(&node.id);
            }
        }
    }

    /// Number of inodes known.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether only nothing is known (never: the root is always there).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str) -> Node {
        Node {
            id: id.into(),
            parent: ROOT,
            kind: Kind::Folder {
                project: "p".into(),
                count: None,
                rollup: None,
            },
            created: SystemTime::UNIX_EPOCH,
            modified: SystemTime::UNIX_EPOCH,
            meta: Meta::default(),
        }
    }

    #[test]
    fn stable_and_distinct() {
        let mut a = Inodes::new(node(""));
        let x = a.upsert(node("urn:x"));
        let y = a.upsert(node("urn:y"));
        assert_ne!(x, y);
        assert!(x > ROOT && y > ROOT);
        assert_eq!(a.upsert(node("urn:x")), x, "same id, same inode");
        let mut b = Inodes::new(node(""));
        b.upsert(node("urn:y"));
        assert_eq!(
            b.upsert(node("urn:x")),
            x,
            "same inode in another mount, in any order"
        );
    }

    #[test]
    fn collisions_are_resolved() {
        let mut a = Inodes::new(node(""));
        let x = a.upsert(node("urn:x"));
        // Force a collision by occupying the hash of another id.
        let target = hashed("urn:z", 0);
        a.nodes.insert(target, node("squatter"));
        let z = a.upsert(node("urn:z"));
        assert_ne!(z, target);
        assert_ne!(z, x);
        assert_eq!(a.upsert(node("urn:z")), z);
    }
}
