//! File attributes as the filesystem reports them, independent of the FUSE library.

use super::inode::{Kind, Node};
use std::time::{Duration, SystemTime};

/// How long the kernel may cache a file inode's attributes: an inode is one immutable
/// version, so only the name-to-inode mapping (the listing's TTL) ever needs revalidating.
pub const VERSION_ATTR_TTL: Duration = Duration::from_secs(3600);

/// `st_blksize`: a hint for the buffer size of sequential readers; one kernel read request.
pub const BLOCK_SIZE: u32 = 128 * 1024;

/// What `stat` shows for one inode.
#[derive(Clone, Debug, PartialEq)]
pub struct Attr {
    /// Inode number.
    pub ino: u64,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// 512-byte blocks, so `du` adds up sizes.
    pub blocks: u64,
    /// Modification time.
    pub mtime: SystemTime,
    /// Creation time (reported as ctime and crtime).
    pub ctime: SystemTime,
    /// Directory or regular file.
    pub is_dir: bool,
    /// Permission bits.
    pub perm: u16,
    /// Link count.
    pub nlink: u32,
    /// Owner: the mounting user.
    pub uid: u32,
    /// Group: the mounting user's group.
    pub gid: u32,
}

/// The permission bits files and directories show when the mount is told (`--file-mode`,
/// `--dir-mode`): the service has no modes, and a mount shared with other users decides with
/// them, and its owner, who may do what (the kernel checks them: `default_permissions`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Modes {
    /// Bits of every file.
    pub file: Option<u16>,
    /// Bits of every directory.
    pub dir: Option<u16>,
}

/// Attributes of `node` as inode `ino`, owned by `uid:gid`, with the bits `modes` gives or
/// else `0444`/`0555`; writable by the owner on a read-write mount (then the kernel's
/// permission check lets editors save), except an item reserved (locked) by someone, which
/// shows read-only as Desktop Connector shows it (its write bits cleared, whatever `modes`).
pub fn of(ino: u64, node: &Node, uid: u32, gid: u32, modes: Modes, writable: bool) -> Attr {
    let writable = writable && node.meta.reserved.is_none();
    let w = if writable { 0o200 } else { 0 };
    let given = |mode: u16| if writable { mode } else { mode & !0o222 };
    let (size, perm, nlink) = match &node.kind {
        Kind::File { version } => (
            version.size.unwrap_or(0),
            modes.file.map_or(0o444 | w, given),
            1,
        ),
        _ => (0, modes.dir.map_or(0o555 | w, given), 2),
    };
    Attr {
        ino,
        size,
        blocks: size.div_ceil(512),
        mtime: node.modified,
        ctime: node.created,
        is_dir: node.is_dir(),
        perm,
        nlink,
        uid,
        gid,
    }
}
