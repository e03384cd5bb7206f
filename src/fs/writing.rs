//! The filesystem's writing operations: each finds where a name lives (a remote folder or a
//! local-only directory), asks the overlay (`write/`) to change, and answers in the
//! filesystem's terms. Only folder changes talk to the service here (`mkdir`, a folder's
//! rename or move, `rmdir`), at once, so the caller hears the service's answer; everything
//! else (saves, file renames, deletes) reaches it later through the reconciler.

use super::attr::Attr;
use super::error::{Error, Op};
use super::handles::{Handle, LocalFile};
use super::inode::{Kind, ROOT};
use super::listing::VERSIONS_DIR;
use super::write::entry::{Base, State};
use super::write::ops::RemoteFile;
use super::write::{names, Found, Place, Writes};
use super::Fs;
use crate::api::{ApiError, Entry, Flavour, FolderChange, FolderInfo, Remote};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How long the kernel may trust a local entry's name and attributes: they change under
/// renames and writes the mount makes itself, and after commits.
pub const LOCAL_TTL: Duration = Duration::from_secs(1);

/// `setattr`'s requested changes.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    /// New size (truncate).
    pub size: Option<u64>,
    /// New modification time.
    pub mtime: Option<SystemTime>,
    /// New permission bits.
    pub mode: Option<u32>,
}

/// `renameat2` flags the filesystem tells apart.
#[derive(Clone, Copy, Debug, Default)]
pub struct RenameFlags {
    /// `RENAME_NOREPLACE`: fail with `EEXIST` rather than replace.
    pub no_replace: bool,
    /// `RENAME_EXCHANGE`: swap the two names (not supported).
    pub exchange: bool,
}

/// What a name in a directory stands for, remote or local.
enum Named {
    /// An overlay entry.
    Local(Box<super::write::entry::Entry>),
    /// A remote file: its inode and what writing it would start from.
    RemoteFile(RemoteFile),
    /// A remote directory, and its inode.
    RemoteDir(u64),
    /// Nothing (or a hidden remote file, with the item it was).
    Nothing(Option<Base>),
}

impl<R: Remote> Fs<R> {
    /// The overlay, when this mount writes.
    pub(super) fn writes(&self) -> Result<&Arc<Writes<R>>, Error> {
        self.writes.as_ref().ok_or(Error::ReadOnly)
    }

    /// The folder id the overlay files names of directory `dir` under, when it does.
    pub(super) fn overlay_folder(&self, dir: u64) -> Option<String> {
        let w = self.writes.as_ref()?;
        if let Some(f) = w.local_folder(dir) {
            return Some(f);
        }
        let node = self.ns.node(dir).ok()?;
        matches!(node.kind, Kind::Folder { .. }).then_some(node.id)
    }

    /// Where names in directory `dir` live, for a change.
    pub(super) fn place(&self, dir: u64) -> Result<Place, Error> {
        let w = self.writes()?;
        if let Some(folder) = w.local_folder(dir) {
            let e = w.by_ino(dir).ok_or(Error::NotFound)?;
            return Ok(Place {
                dir,
                project: e.project,
                folder,
                flavour: if e.bim360 {
                    Flavour::Bim360
                } else {
                    Flavour::Core
                },
                path_len: 0,
            });
        }
        let node = self.ns.node(dir)?;
        match &node.kind {
            Kind::Folder { project, .. } => Ok(Place {
                dir,
                project: project.clone(),
                folder: node.id.clone(),
                flavour: Flavour::of(node.meta.ext_type.as_deref()),
                path_len: self.path_in_project(dir),
            }),
            _ if node.is_dir() => Err(Error::NotPermitted(
                "only folders hold files (not the hub, project or .versions levels)",
            )),
            _ => Err(Error::NotDir),
        }
    }

    /// Characters of the path of folder `dir` inside its project.
    fn path_in_project(&self, mut dir: u64) -> usize {
        let mut len = 0;
        while dir != ROOT {
            let Ok(node) = self.ns.node(dir) else { break };
            if matches!(node.kind, Kind::Project { .. }) {
                break;
            }
            let name = self.ns.named_in(node.parent, dir).unwrap_or_default();
            len += name.chars().count() + 1;
            dir = node.parent;
        }
        len
    }

    /// What `name` in `dir` stands for now.
    async fn named(&self, dir: u64, at: &Place, name: &str) -> Result<Named, Error> {
        let w = self.writes()?;
        self.recheck_committed(dir, name).await;
        if let Some(e) = w.find(&at.folder, name) {
            return Ok(if e.is_marker() {
                Named::Nothing(e.base)
            } else {
                Named::Local(Box::new(e))
            });
        }
        if at.is_local() {
            return Ok(Named::Nothing(None));
        }
        let listing = self.ns.listing(dir).await?;
        let Some(ino) = listing.lookup(name) else {
            return Ok(Named::Nothing(None));
        };
        let node = self.ns.node(ino)?;
        match &node.kind {
            Kind::File { version } => {
                self.ns.ensure_size(ino).await?;
                let size = match self.ns.node(ino)?.kind {
                    Kind::File { version } => version.size.unwrap_or(0),
                    _ => 0,
                };
                Ok(Named::RemoteFile(RemoteFile {
                    ino,
                    name: name.to_string(),
                    base: Base {
                        item: node.item().to_string(),
                        version: version.id.clone(),
                        number: version.number,
                        storage: Some(version.storage.clone()),
                    },
                    storage: version.storage.clone(),
                    size,
                    mtime: self.ns.attr(ino)?.mtime,
                }))
            }
            _ => Ok(Named::RemoteDir(ino)),
        }
    }

    /// The name remote inode `ino` has in its folder's cached listing.
    fn name_of(&self, ino: u64) -> Result<String, Error> {
        let parent = self.ns.node(ino)?.parent;
        self.ns.named_in(parent, ino).ok_or(Error::NotFound)
    }

    /// Checks a name for the service, unless it stays on this machine.
    fn check_name(&self, at: &Place, name: &str, is_dir: bool) -> Result<(), Error> {
        if at.is_local() || self.writes()?.is_ignored(name, is_dir) {
            return Ok(());
        }
        names::check(name, at.path_len)
    }

    /// Refuses writing an item reserved (locked) by another user, as Desktop Connector makes
    /// such a file read-only.
    fn not_reserved(&self, ino: u64) -> Result<(), Error> {
        let node = self.ns.node(ino)?;
        if let Some(r) = &node.meta.reserved {
            let mine = r.user_id.is_some() && r.user_id == self.user_id;
            if !mine {
                let who = r.by.clone().unwrap_or_else(|| "another user".into());
                tracing::info!(item = node.item(), by = %who, "reserved by another user; not writable");
                return Err(Error::Locked(who));
            }
        }
        Ok(())
    }

    /// `create`: a new file `name` in `parent`, open for writing.
    pub async fn create(&self, parent: u64, name: &str, mode: u32) -> Result<(Attr, u64), Error> {
        self.may_change(Op::Create)?;
        let w = self.writes()?.clone();
        let at = self.place(parent)?;
        self.check_name(&at, name, false)?;
        if let Named::Local(_) | Named::RemoteFile(_) | Named::RemoteDir(_) =
            self.named(parent, &at, name).await?
        {
            return Err(Error::Exists);
        }
        let e = w.create(&at, name, mode & 0o7777)?;
        let attr = w.attr(e.ino).ok_or(Error::NotFound)?;
        let file = LocalFile::new(e.ino, at, Some(e.id), None, None, true);
        let fh = self.handles.insert(Handle::Local(Arc::new(file)))?;
        Ok((attr, fh))
    }

    /// `open` of an overlay entry, or of a remote file for writing; `None` when neither (a
    /// plain read of a remote file).
    pub(super) async fn open_local(
        &self,
        ino: u64,
        write: bool,
        truncate: bool,
    ) -> Result<Option<u64>, Error> {
        let Some(w) = self.writes.clone() else {
            return Ok(None);
        };
        if let Some(e) = w.by_ino(ino) {
            if e.dir {
                return Err(Error::IsDir);
            }
            if write {
                self.may_change(Op::Open)?;
                w.open_write(e.id)?;
                if truncate {
                    w.truncate(e.id, 0).await?;
                }
            }
            let at = self.place(e.parent)?;
            let file = LocalFile::new(ino, at, Some(e.id), None, None, write);
            return Ok(Some(self.handles.insert(Handle::Local(Arc::new(file)))?));
        }
        if !write {
            return Ok(None);
        }
        self.may_change(Op::Open)?;
        self.not_reserved(ino)?;
        let node = self.ns.node(ino)?;
        let at = self.place(node.parent)?;
        let name = self.name_of(ino)?;
        let Named::RemoteFile(remote) = self.named(node.parent, &at, &name).await? else {
            return Err(Error::NotFound);
        };
        let entry = if truncate {
            let e = w.adopt(&at, &remote, 0o644, Some(0)).await?;
            w.open_write(e.id)?;
            Some(e.id)
        } else {
            None
        };
        let reader = self.reader(&remote);
        let file = LocalFile::new(ino, at, entry, Some(remote), Some(reader), true);
        Ok(Some(self.handles.insert(Handle::Local(Arc::new(file)))?))
    }

    /// A reader of a remote file's version, for reads through a write handle before its first
    /// write.
    fn reader(&self, remote: &RemoteFile) -> Arc<super::prefetch::OpenFile<R>> {
        Arc::new(super::prefetch::OpenFile::new(
            self.source.clone(),
            &remote.storage,
            remote.size,
            self.budget.clone(),
            None,
            Arc::new(std::sync::atomic::AtomicBool::new(false)),
        ))
    }

    /// The overlay entry a write through `file` changes, made at the first change of a remote
    /// file (copying its bytes unless it is truncated to nothing).
    async fn entry_for_change(
        &self,
        file: &LocalFile<R>,
        truncate: Option<u64>,
    ) -> Result<u64, Error> {
        let w = self.writes()?;
        let mut entry = file.entry.lock().await;
        if let Some(id) = *entry {
            return Ok(id);
        }
        let remote = file.remote.as_ref().ok_or(Error::BadHandle)?;
        let e = w.adopt(&file.at, remote, 0o644, truncate).await?;
        w.open_write(e.id)?;
        *entry = Some(e.id);
        Ok(e.id)
    }

    /// `write`: `data` at `offset` through handle `fh`.
    pub async fn write(&self, fh: u64, offset: u64, data: &[u8]) -> Result<u32, Error> {
        let file = self.handles.local(fh)?;
        if !file.write {
            return Err(Error::BadHandle);
        }
        let id = self.entry_for_change(&file, None).await?;
        self.writes()?.write(id, offset, data).await
    }

    /// `read` through an overlay handle.
    pub(super) async fn read_local(
        &self,
        file: &LocalFile<R>,
        offset: u64,
        size: u32,
    ) -> Result<bytes::Bytes, Error> {
        let id = *file.entry.lock().await;
        match (id, &file.reader) {
            (Some(id), _) => self.writes()?.read(id, offset, u64::from(size)).await,
            (None, Some(reader)) => Ok(reader.read(offset, u64::from(size)).await?),
            (None, None) => Err(Error::BadHandle),
        }
    }

    /// `flush` (each `close`, `closing`) and `fsync`: what was written through `fh` is on disk
    /// here, with the journal record saying so, before this returns.
    pub async fn flush(&self, fh: u64, closing: bool) -> Result<(), Error> {
        let Ok(file) = self.handles.local(fh) else {
            return Ok(());
        };
        let id = *file.entry.lock().await;
        match id {
            Some(id) if file.write => self.writes()?.seal(id, closing).await,
            _ => Ok(()),
        }
    }

    /// `release` of an overlay handle.
    pub(super) async fn release_local(&self, file: Arc<LocalFile<R>>) {
        let id = *file.entry.lock().await;
        if let (Some(id), true, Some(w)) = (id, file.write, self.writes.as_ref()) {
            if let Err(e) = w.release(id).await {
                e.log(Op::Write);
            }
        }
    }

    /// `setattr`: size, times and mode. Times and mode of files being written are kept here;
    /// on a file the mount has not changed they are accepted and not sent (`touch` makes no
    /// version), like a directory's.
    pub async fn setattr(&self, ino: u64, fh: Option<u64>, set: SetAttr) -> Result<Attr, Error> {
        let w = self.writes()?.clone();
        let mut entry = w.by_ino(ino);
        if let Some(size) = set.size {
            self.may_change(Op::Setattr)?;
            let id = match (&entry, fh.and_then(|fh| self.handles.local(fh).ok())) {
                (Some(e), _) => e.id,
                (None, Some(file)) => self.entry_for_change(&file, Some(size)).await?,
                (None, None) => {
                    // `truncate(2)` by path: the file is changed without a handle.
                    self.not_reserved(ino)?;
                    let parent = self.ns.node(ino)?.parent;
                    let at = self.place(parent)?;
                    let name = self.name_of(ino)?;
                    let Named::RemoteFile(remote) = self.named(parent, &at, &name).await? else {
                        return Err(Error::NotFound);
                    };
                    w.adopt(&at, &remote, 0o644, Some(size)).await?.id
                }
            };
            let e = w.truncate(id, size).await?;
            if fh.is_none() {
                w.seal(id, true).await?;
            }
            entry = Some(e);
        }
        if let Some(e) = entry {
            if set.mtime.is_some() || set.mode.is_some() {
                w.set_meta(e.id, set.mtime, set.mode)?;
            }
            return w.attr(e.ino).ok_or(Error::NotFound);
        }
        // Unchanged remote file or folder: nothing to keep.
        Ok(self.getattr(ino).await?.0)
    }

    /// `mkdir`: a folder on the service (made now, `EEXIST` when the name is taken), or a
    /// local-only directory for a name that stays here.
    pub async fn mkdir(&self, parent: u64, name: &str, mode: u32) -> Result<Attr, Error> {
        self.may_change(Op::Mkdir)?;
        let w = self.writes()?.clone();
        let at = self.place(parent)?;
        self.check_name(&at, name, true)?;
        if !matches!(self.named(parent, &at, name).await?, Named::Nothing(_)) {
            return Err(Error::Exists);
        }
        if at.is_local() || w.is_ignored(name, true) {
            let e = w.mkdir_local(&at, name, (mode & 0o7777) | 0o700)?;
            return w.attr(e.ino).ok_or(Error::NotFound);
        }
        let remote = self.ns.remote();
        let mut tries = 0;
        let info = loop {
            tries += 1;
            match remote
                .create_folder(&at.project, &at.folder, name, at.flavour)
                .await
            {
                Ok(info) => break info,
                // Taken (by another client, or by an earlier attempt whose answer was lost):
                // the folder is shown, and the name is taken.
                Err(ApiError::Refused { status: 409, .. }) => {
                    if let Some(info) = self.folder_named(&at, name).await? {
                        self.ns.add_folder(parent, &at.project, info)?;
                    }
                    return Err(Error::Exists);
                }
                // A failure after which the folder may have been made anyway (a create is
                // not sent again blindly): look before trying again.
                Err(
                    e @ (ApiError::Server { .. }
                    | ApiError::Network(_)
                    | ApiError::Timeout(_)
                    | ApiError::ShortBody { .. }),
                ) => {
                    if let Some(info) = self.folder_named(&at, name).await? {
                        break info;
                    }
                    if tries >= 3 {
                        return Err(e.into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        };
        tracing::info!(folder = %info.id, name, "folder made");
        let ino = self.ns.add_folder(parent, &at.project, info)?;
        self.ns.attr(ino)
    }

    /// The folder called `name` in `at`'s folder on the service now, if there is one.
    async fn folder_named(&self, at: &Place, name: &str) -> Result<Option<FolderInfo>, Error> {
        let listed = self
            .ns
            .remote()
            .folder_contents(&at.project, &at.folder, None)
            .await?;
        Ok(listed.into_iter().find_map(|e| match e {
            Entry::Folder(f) if f.name == name && !f.hidden => Some(f),
            _ => None,
        }))
    }

    /// `unlink`: a file only here goes. A file the service has is removed there with
    /// `--allow-delete` (its tombstone sent with its folder; on hub types without deletes,
    /// `EPERM`), and answers `EPERM` without it, sending nothing.
    pub async fn unlink(&self, parent: u64, name: &str) -> Result<(), Error> {
        self.may_change(Op::Unlink)?;
        let w = self.writes()?.clone();
        let at = self.place(parent)?;
        match self.named(parent, &at, name).await? {
            Named::Local(_) => w.unlink(&at, name),
            Named::RemoteFile(f) => {
                self.not_reserved(f.ino)?;
                w.remove_remote(&at, name, f.base)?;
                tracing::info!(name, "removed; its tombstone goes with its folder");
                Ok(())
            }
            Named::RemoteDir(_) => Err(Error::IsDir),
            Named::Nothing(_) => Err(Error::NotFound),
        }
    }

    /// `rmdir`: a local-only directory goes; an empty folder the service has is hidden there
    /// (its documented delete, BIM 360 / ACC only) with `--allow-delete`, at once like
    /// `mkdir`, so the caller hears the service's answer.
    pub async fn rmdir(&self, parent: u64, name: &str) -> Result<(), Error> {
        self.may_change(Op::Rmdir)?;
        let w = self.writes()?.clone();
        let at = self.place(parent)?;
        let ino = match self.named(parent, &at, name).await? {
            Named::Local(e) if e.dir => return w.rmdir_local(&at, name),
            Named::Local(_) | Named::RemoteFile(_) => return Err(Error::NotDir),
            Named::Nothing(_) => return Err(Error::NotFound),
            Named::RemoteDir(ino) => ino,
        };
        w.may_delete(at.flavour == Flavour::Bim360)?;
        let folder = self.ns.node(ino)?.id;
        let inside = self.with_overlay(ino, self.ns.listing(ino).await?);
        if inside.entries.iter().any(|(n, _, _)| n != VERSIONS_DIR) {
            return Err(Error::NotEmpty);
        }
        let hide = FolderChange {
            hidden: Some(true),
            ..FolderChange::default()
        };
        self.ns
            .remote()
            .change_folder(&at.project, &folder, &hide)
            .await?;
        tracing::info!(name, %folder, "folder deleted (hidden on the service, where it can be restored)");
        self.ns.move_folder(parent, name, None)
    }

    /// `rename`. Within a folder, a file keeps its item: the rename is sent with the folder
    /// (over another file's name, it is a save of that file, and removes its own item, so it
    /// needs `--allow-delete`). A file the service has cannot move to another folder keeping
    /// its history (`EXDEV`: `mv` copies and removes). Folders are renamed and moved on the
    /// service at once, like `mkdir`. Files only here move anywhere; a file renamed to a
    /// name that stays here (a backup before a save) leaves the service alone.
    pub async fn rename(
        &self,
        parent: u64,
        name: &str,
        new_parent: u64,
        new_name: &str,
        flags: RenameFlags,
    ) -> Result<(), Error> {
        self.may_change(Op::Rename)?;
        if flags.exchange {
            return Err(Error::Invalid("exchanging two names is not supported"));
        }
        let w = self.writes()?.clone();
        let from = self.place(parent)?;
        let to = self.place(new_parent)?;
        let source = self.named(parent, &from, name).await?;
        let target = self.named(new_parent, &to, new_name).await?;
        let target_exists = !matches!(target, Named::Nothing(_));
        if target_exists && flags.no_replace {
            return Err(Error::Exists);
        }
        if parent == new_parent && name == new_name {
            return Ok(());
        }
        let source_is_dir =
            matches!(&source, Named::RemoteDir(_)) || matches!(&source, Named::Local(e) if e.dir);
        match (&target, source_is_dir) {
            (Named::RemoteDir(_), _) => {
                return Err(Error::NotPermitted("replacing a folder the service has"))
            }
            (Named::Local(e), false) if e.dir => return Err(Error::IsDir),
            (Named::Local(_) | Named::RemoteFile(_), true) => return Err(Error::NotDir),
            _ => {}
        }
        self.check_name(&to, new_name, source_is_dir)?;
        // The item the new name belongs to: the save continues it.
        let target_base = match &target {
            Named::Local(e) => e.base.clone(),
            Named::RemoteFile(f) => {
                self.not_reserved(f.ino)?;
                Some(f.base.clone())
            }
            Named::Nothing(base) => base.clone(),
            Named::RemoteDir(_) => None,
        };
        let stays = w.is_ignored(new_name, source_is_dir) || to.is_local();
        let same_folder = from.folder == to.folder;
        match source {
            Named::Local(e) if e.dir => {
                if !stays || parent != new_parent {
                    return Err(Error::NotPermitted(
                        "moving a local-only directory to a name the service would keep",
                    ));
                }
                w.rename_entry(*e, &to, new_name, None)
            }
            // A file that continues an item of the service (a save, a rename, a file this
            // mount committed).
            Named::Local(e) if e.base.is_some() && !w.is_ignored(&e.name, false) => {
                if !same_folder {
                    return Err(self.no_move(&from));
                }
                if stays {
                    // Renamed to a backup name before a save: the service keeps the item.
                    let base = e.base.clone();
                    let committed = e.state == State::Committed;
                    w.rename_entry(*e, &to, new_name, target_base)?;
                    return match base {
                        Some(b) if committed => w.hide(&from, name, b),
                        _ => Ok(()),
                    };
                }
                let item = e.base.as_ref().map(|b| b.item.clone()).unwrap_or_default();
                let over = taken_from(&w, &to, new_name, &target, &item);
                w.rename_item_entry(&from, *e, &to, new_name, target_base.filter(|_| over))
            }
            Named::Local(e) => w.rename_entry(*e, &to, new_name, target_base),
            Named::RemoteFile(f) => {
                if !same_folder {
                    return Err(self.no_move(&from));
                }
                self.not_reserved(f.ino)?;
                if stays {
                    return w.rename_remote_away(&from, &f, &to, new_name);
                }
                let over = taken_from(&w, &to, new_name, &target, &f.base.item);
                w.rename_remote(&from, &f, &to, new_name, target_base.filter(|_| over))
            }
            Named::RemoteDir(ino) => {
                self.move_folder(ino, parent, name, &from, new_parent, new_name, &to)
                    .await
            }
            Named::Nothing(_) => Err(Error::NotFound),
        }
    }

    /// Why a file the service has cannot move from `from` to another folder: `EXDEV` where
    /// `mv`'s copy and remove can finish (the API has no item move), else `EPERM` at once, so no
    /// copy is left beside the original.
    fn no_move(&self, from: &Place) -> Error {
        match self
            .writes()
            .map(|w| w.may_delete(from.flavour == Flavour::Bim360))
        {
            Ok(Ok(())) => {
                Error::CrossDevice("a file the service has moves between folders only as a copy")
            }
            Ok(Err(e)) | Err(e) => e,
        }
    }

    /// Renames or moves folder `ino` (`name` in `parent`) to `new_name` in `new_parent` on the
    /// service now (`PATCH folders`), then in the mount's listings.
    #[allow(clippy::too_many_arguments)]
    async fn move_folder(
        &self,
        ino: u64,
        parent: u64,
        name: &str,
        from: &Place,
        new_parent: u64,
        new_name: &str,
        to: &Place,
    ) -> Result<(), Error> {
        if to.is_local() {
            return Err(Error::NotPermitted(
                "moving a folder the service has into a local-only directory",
            ));
        }
        if to.project != from.project {
            return Err(Error::CrossDevice("folders move only inside their project"));
        }
        let folder = self.ns.node(ino)?.id;
        let change = FolderChange {
            name: (name != new_name).then(|| new_name.to_string()),
            parent: (parent != new_parent).then(|| to.folder.clone()),
            hidden: None,
        };
        let info = self
            .ns
            .remote()
            .change_folder(&from.project, &folder, &change)
            .await?;
        tracing::info!(from = name, to = new_name, %folder, moved = change.parent.is_some(), "folder renamed or moved");
        self.ns.move_folder(parent, name, Some((new_parent, info)))
    }

    /// A file this mount committed as `name` in `parent` is its own until the service lists a
    /// newer version of it (someone saved after us): that is looked at first (the listing
    /// fetched when it is not fresh), before the overlay answers for the name.
    pub(super) async fn recheck_committed(&self, parent: u64, name: &str) {
        let (Some(w), Some(folder)) = (self.writes.as_ref(), self.overlay_folder(parent)) else {
            return;
        };
        let Some(e) = w
            .find(&folder, name)
            .filter(|e| e.state == State::Committed)
        else {
            return;
        };
        // Only this entry: a lookup is answered without building the folder's merged listing.
        if let Ok(listing) = self.ns.listing(parent).await {
            self.retire_if_superseded(w, &e, &listing);
        }
    }

    /// Retires committed entry `e` when `listing` shows a newer version under its name.
    fn retire_if_superseded(
        &self,
        w: &Writes<R>,
        e: &super::write::entry::Entry,
        listing: &crate::cache::metadata::Listing,
    ) {
        let shown = listing
            .lookup(&e.name)
            .and_then(|ino| match self.ns.node(ino) {
                Ok(n) => match n.kind {
                    Kind::File { version } => Some((version.id, version.number)),
                    _ => None,
                },
                Err(_) => None,
            });
        w.retire_if_superseded(e, shown.as_ref().map(|(v, n)| (v.as_str(), *n)));
    }

    /// What the overlay says of `name` in `parent` for `lookup`, if it has it.
    pub(super) fn lookup_local(
        &self,
        parent: u64,
        name: &str,
    ) -> Option<Result<(Attr, Duration), Error>> {
        let folder = self.overlay_folder(parent)?;
        let w = self.writes.as_ref()?;
        match w.lookup(&folder, name) {
            Some(Found::Local(attr)) => Some(Ok((attr, LOCAL_TTL))),
            Some(Found::Hidden) => Some(Err(Error::NotFound)),
            None if w.local_folder(parent).is_some() => Some(Err(Error::NotFound)),
            None => None,
        }
    }

    /// A listing of `dir` with the overlay laid over it: names it takes over are shown from
    /// it (or hidden), its new names added; entries this mount committed give way once the
    /// service shows a newer version under their name.
    pub(super) fn with_overlay(
        &self,
        dir: u64,
        listing: Arc<crate::cache::metadata::Listing>,
    ) -> Arc<crate::cache::metadata::Listing> {
        let (Some(w), Some(folder)) = (self.writes.as_ref(), self.overlay_folder(dir)) else {
            return listing;
        };
        for e in w.entries_in(&folder) {
            if e.state == State::Committed {
                self.retire_if_superseded(w, &e, &listing);
            }
        }
        let taken = w.names_in(&folder);
        if taken.is_empty() {
            return listing;
        }
        let mut entries: Vec<(String, u64, bool)> = listing
            .entries
            .iter()
            .filter(|(n, _, _)| !taken.contains(n))
            .cloned()
            .collect();
        let mut local: Vec<_> = w
            .entries_in(&folder)
            .into_iter()
            .map(|e| (e.name, e.ino, e.dir))
            .collect();
        local.sort();
        entries.extend(local);
        Arc::new(crate::cache::metadata::Listing::new(entries))
    }

    /// `user.aps.sync` of `ino`: where its content is on its way to the service.
    pub(super) fn sync_xattr(&self, ino: u64) -> Option<Vec<u8>> {
        let w = self.writes.as_ref()?;
        let state = match w.by_ino(ino) {
            Some(e) => w.sync_state(&e),
            None => match self.ns.node(ino).ok()?.kind {
                Kind::File { version } => format!("committed v{}", version.number),
                _ => return None,
            },
        };
        Some(state.into_bytes())
    }

    /// `statfs` of a read-write mount: the room the staging area has (applications refuse to
    /// save to a filesystem that reports none): (blocks, free, available, block size).
    pub fn room(&self) -> Option<(u64, u64, u64, u32)> {
        let w = self.writes.as_ref()?;
        w.room()
    }
}

/// Whether renaming a file of item `item` to `name` at `to` (where `target` is) takes the name
/// from another item of the service: a rename over it, which removes `item`.
fn taken_from<R: Remote>(
    w: &Writes<R>,
    to: &Place,
    name: &str,
    target: &Named,
    item: &str,
) -> bool {
    w.displaces(&to.folder, name, item)
        || matches!(target, Named::RemoteFile(t) if t.base.item != item)
}
