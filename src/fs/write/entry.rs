//! One local change as the journal keeps it: a file or directory the mount shows under a name
//! in a remote folder, where its bytes are, and how far its way to the service has come.

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a local entry is on its way to the service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Open for writing, or written since its last close: not uploaded until closed.
    Open,
    /// Closed after a change, durable here; uploaded after its folder's quiet period.
    Sealed,
    /// Its content is the version named in `committed`.
    Committed,
    /// A name that stays on this machine (lock, temp or backup file; see `ignore.rs`).
    LocalOnly,
    /// Was open for writing when a mount ended without closing it: kept, shown, never
    /// uploaded on its own, since it may be half-written.
    Recovered,
    /// Hides a remote file of this name (it was renamed here, or renamed to a name that stays
    /// local), waiting for new content under the name (a save that renames the old file
    /// first). When its folder is sent with nothing saved under the name, it goes: the file
    /// is then under its new name, or shows again.
    Hidden,
    /// A remote file removed here (`rm` with `--allow-delete`, or renamed over another file's
    /// name): its item becomes a delete tombstone when its folder is sent, unless new content
    /// comes under the name first (the save then continues the item). Bytes it still holds (a
    /// save not sent yet) go up as a version before the tombstone, so the service keeps them.
    Removed,
}

/// The item a save continues, as it was when the writer first saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Base {
    /// Item (lineage) id.
    pub item: String,
    /// The tip version then.
    pub version: String,
    /// Its `versionNumber`.
    pub number: u32,
    /// Its storage object, when known: a file whose bytes are still these was only renamed.
    #[serde(default)]
    pub storage: Option<String>,
}

/// An upload in progress, kept so a later mount continues it instead of starting over.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// The storage object made for the content.
    pub storage: String,
    /// Staging generation uploaded (content changed since means a new upload).
    pub generation: u32,
    /// `uploadKey`, once parts were signed.
    pub key: Option<String>,
    /// ETags of the parts stored so far, in part order.
    pub etags: Vec<String>,
    /// The part size the upload was started with.
    pub part_size: u64,
    /// Whether storage accepted the completion.
    pub completed: bool,
}

/// The version a local entry became.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// Item (lineage) id.
    pub item: String,
    /// Version id.
    pub version: String,
    /// `versionNumber`.
    pub number: u32,
    /// Its storage object.
    pub storage: String,
}

/// Where an entry's bytes are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A staging file of this generation (`staging/<id>.<generation>`).
    Staged(u32),
    /// A remote version's bytes, unchanged (a document renamed to a backup name).
    Remote {
        /// Storage object.
        storage: String,
        /// Size.
        size: u64,
    },
    /// A directory or a hidden name: no bytes.
    None,
}

/// One local entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Journal id; names the staging files.
    pub id: u64,
    /// The inode the mount shows it as.
    pub ino: u64,
    /// The inode of the directory it is in.
    pub parent: u64,
    /// Project of the folder.
    pub project: String,
    /// Whether the project takes BIM 360 / ACC extension types.
    #[serde(default)]
    pub bim360: bool,
    /// Folder id it lives in (the remote folder, or the id of a local-only directory).
    pub folder: String,
    /// Its name there.
    pub name: String,
    /// Whether it is a directory (only local-only directories are kept here).
    pub dir: bool,
    /// How far it is.
    pub state: State,
    /// Where the bytes are.
    pub source: Source,
    /// The item a save continues, when the name belonged to one.
    pub base: Option<Base>,
    /// Size in bytes.
    pub size: u64,
    /// Modification time as nanoseconds since the epoch (what the writer left).
    pub mtime_ns: u64,
    /// Permission bits the writer set.
    pub mode: u32,
    /// SHA-256 of the sealed content, once computed for an upload.
    pub sha256: Option<String>,
    /// The upload in progress.
    pub upload: Option<Upload>,
    /// The version it became.
    pub committed: Option<Committed>,
    /// The tip had moved past `base` when it was committed: whose version it followed.
    pub conflict: Option<String>,
    /// The last failure of its way to the service.
    pub error: Option<String>,
    /// Failed attempts so far (backoff).
    pub attempts: u32,
}

impl Entry {
    /// Its modification time.
    pub fn mtime(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.mtime_ns)
    }

    /// Sets its modification time.
    pub fn set_mtime(&mut self, t: SystemTime) {
        self.mtime_ns = nanos(t);
    }

    /// Whether it waits for the service (sealed and not ignored, or removed).
    pub fn pending(&self) -> bool {
        matches!(self.state, State::Sealed | State::Removed)
    }

    /// Whether its bytes are still those of the version it continues (a file only renamed,
    /// not changed, and not another file's bytes moved over its name).
    pub fn only_renamed(&self) -> bool {
        match (&self.source, &self.base) {
            (Source::Remote { storage, .. }, Some(b)) => b.storage.as_deref() == Some(storage),
            _ => false,
        }
    }

    /// Whether it only marks a remote file's name (hidden or removed here), showing nothing.
    pub fn is_marker(&self) -> bool {
        matches!(self.state, State::Hidden | State::Removed)
    }

    /// The staging generation holding its bytes, if staged.
    pub fn generation(&self) -> Option<u32> {
        match self.source {
            Source::Staged(g) => Some(g),
            _ => None,
        }
    }

    /// `user.aps.sync`: where it is, in a word or two.
    pub fn sync_state(&self) -> String {
        if let Some(e) = &self.error {
            return format!("error: {e}");
        }
        match self.state {
            State::Open => "pending (open for writing)".into(),
            State::Sealed => match &self.upload {
                Some(u) if u.completed => "uploading (committing)".into(),
                Some(u) if u.key.is_some() => format!("uploading {} parts", u.etags.len()),
                _ if matches!(self.source, Source::Remote { .. }) => "pending rename".into(),
                _ => "pending".into(),
            },
            State::Committed => {
                let n = self.committed.as_ref().map_or(0, |c| c.number);
                match &self.conflict {
                    Some(who) => format!("conflict: committed v{n} after {who}"),
                    None => format!("committed v{n}"),
                }
            }
            State::LocalOnly => "local-only".into(),
            State::Recovered => "recovered: was open when the mount ended; not uploaded".into(),
            State::Hidden => "hidden".into(),
            State::Removed => "pending delete".into(),
        }
    }
}

/// `t` as nanoseconds since the epoch (0 before it).
pub fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
