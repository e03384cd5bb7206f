//! The overlay's changes, one per filesystem operation that writes: each updates the entries
//! under the lock, records them in the journal (durably where a caller was promised that),
//! and marks the folder changed so its quiet period starts again.

use super::entry::{Base, Entry, Source, State};
use super::{Place, Writes, LOCAL_INO};
use crate::api::Remote;
use crate::fs::error::{local, Error};
use std::os::unix::fs::FileExt;
use std::time::SystemTime;

/// What a remote file being written starts from.
#[derive(Clone, Debug)]
pub struct RemoteFile {
    /// Its inode (the entry keeps it, so the writer's inode stays the file's).
    pub ino: u64,
    /// Its name.
    pub name: String,
    /// The version it shows.
    pub base: Base,
    /// That version's storage object and size.
    pub storage: String,
    /// Its size.
    pub size: u64,
    /// Its modification time as the mount shows it (a rename keeps it).
    pub mtime: SystemTime,
}

impl<R: Remote> Writes<R> {
    /// `create`: a new empty file `name` at `at`, open for writing. A hidden remote file of that
    /// name (renamed away or removed here just before) is what it continues.
    pub fn create(&self, at: &Place, name: &str, mode: u32) -> Result<Entry, Error> {
        let base = match self.find(&at.folder, name) {
            Some(e) if e.is_marker() => e.base,
            Some(_) => return Err(Error::Exists),
            None => None,
        };
        let id = self.next_id()?;
        let e = self.new_entry(
            id,
            LOCAL_INO | id,
            at,
            name,
            false,
            mode,
            Source::Staged(0),
            base,
        );
        self.staging
            .create(id, 0)
            .map_err(|err| local("creating a staging file", err))?;
        self.place(&e)?;
        self.open_write(id)?;
        self.dirty(id)?;
        self.record(&[super::Record::Entry(Box::new(e.clone()))], false)?;
        self.touched(&at.folder);
        Ok(e)
    }

    /// `mkdir` of a name that stays local: a directory only this machine has.
    pub fn mkdir_local(&self, at: &Place, name: &str, mode: u32) -> Result<Entry, Error> {
        if self.find(&at.folder, name).is_some_and(|e| !e.is_marker()) {
            return Err(Error::Exists);
        }
        let id = self.next_id()?;
        let e = self.new_entry(id, LOCAL_INO | id, at, name, true, mode, Source::None, None);
        self.place(&e)?;
        self.record(&[super::Record::Entry(Box::new(e.clone()))], true)?;
        Ok(e)
    }

    /// A remote file opened for writing is changed for the first time (a write, or a
    /// truncation to `truncate`): it becomes an entry under its own inode, its bytes copied
    /// from its version unless it is truncated to nothing.
    pub async fn adopt(
        &self,
        at: &Place,
        file: &RemoteFile,
        mode: u32,
        truncate: Option<u64>,
    ) -> Result<Entry, Error> {
        if let Some(e) = self.by_ino(file.ino) {
            return Ok(e);
        }
        let id = self.next_id()?;
        let source = Source::Remote {
            storage: file.storage.clone(),
            size: file.size,
        };
        let mut e = self.new_entry(
            id,
            file.ino,
            at,
            &file.name,
            false,
            mode,
            source,
            Some(file.base.clone()),
        );
        e.size = file.size;
        if truncate == Some(0) {
            self.staging
                .create(id, 0)
                .map_err(|err| local("creating a staging file", err))?;
            e.source = Source::Staged(0);
            e.size = 0;
        } else {
            self.fill(id, 0, &file.storage, file.size).await?;
            e.source = Source::Staged(0);
        }
        if e.state != State::LocalOnly {
            e.state = State::Open;
        }
        self.place(&e)?;
        self.dirty(id)?;
        self.record(&[super::Record::Entry(Box::new(e.clone()))], false)?;
        self.touched(&at.folder);
        Ok(e)
    }

    /// A write handle on entry `id` opened.
    pub fn open_write(&self, id: u64) -> Result<(), Error> {
        *self.inner()?.writers.entry(id).or_default() += 1;
        Ok(())
    }

    /// Makes `id` writable and runs `change` on its staging file and entry.
    async fn change(
        &self,
        id: u64,
        change: impl FnOnce(&std::fs::File, &mut Entry) -> std::io::Result<()>,
    ) -> Result<Entry, Error> {
        let mut e = self.writable(id).await?;
        let f = self.file(&e)?;
        change(&f, &mut e).map_err(|err| local("writing a staging file", err))?;
        e.set_mtime(SystemTime::now());
        self.place(&e)?;
        self.dirty(id)?;
        self.written(&e.folder);
        Ok(e)
    }

    /// `write`: `data` at `offset` of entry `id`.
    pub async fn write(&self, id: u64, offset: u64, data: &[u8]) -> Result<u32, Error> {
        self.change(id, |f, e| {
            f.write_all_at(data, offset)?;
            e.size = e.size.max(offset + data.len() as u64);
            Ok(())
        })
        .await?;
        Ok(data.len() as u32)
    }

    /// Truncation (or extension) of entry `id` to `size`.
    pub async fn truncate(&self, id: u64, size: u64) -> Result<Entry, Error> {
        self.change(id, |f, e| {
            f.set_len(size)?;
            e.size = size;
            Ok(())
        })
        .await
    }

    /// `utimens`/`chmod` on entry `id`: remembered, never a reason to upload again.
    pub fn set_meta(
        &self,
        id: u64,
        mtime: Option<SystemTime>,
        mode: Option<u32>,
    ) -> Result<Entry, Error> {
        let mut e = self.entry(id)?;
        if let Some(t) = mtime {
            e.set_mtime(t);
        }
        if let Some(m) = mode {
            e.mode = (e.mode & !0o7777) | (m & 0o7777);
        }
        self.place(&e)?;
        // Durable with the content at the next close; a mode or time alone is cheap to lose.
        self.record(&[super::Record::Entry(Box::new(e.clone()))], false)?;
        Ok(e)
    }

    /// A write handle on entry `id` was released: the last one makes the entry sendable.
    pub async fn release(&self, id: u64) -> Result<(), Error> {
        let (last, dirty) = {
            let mut i = self.inner()?;
            let n = i.writers.entry(id).or_default();
            *n = n.saturating_sub(1);
            let last = *n == 0;
            if last {
                i.writers.remove(&id);
            }
            (last, i.dirty.contains(&id))
        };
        if dirty || last {
            // The last writer is gone (or wrote through a mapping after its last flush).
            self.seal(id, true).await?;
        }
        if last {
            if let Ok(e) = self.entry(id) {
                self.touched(&e.folder);
            }
        }
        Ok(())
    }

    /// Whether removing a file the service has (in a BIM 360 / ACC project, `bim360`) may go
    /// there: only with `--allow-delete`, and only where the hub type has a delete.
    pub fn may_delete(&self, bim360: bool) -> Result<(), Error> {
        if !self.config.allow_delete {
            return Err(Error::NotPermitted(
                "removing what the service has needs --allow-delete",
            ));
        }
        if !bim360 {
            return Err(Error::NotPermitted(
                "this hub type keeps no deleted files (only BIM 360 and ACC delete)",
            ));
        }
        Ok(())
    }

    /// `unlink` of `name` in `at`'s folder when the overlay has it. A file only here (new,
    /// never sent, or a local-only name) is simply dropped. One that continues an item of the
    /// service removes that item (`--allow-delete`): the item's tombstone is sent with the
    /// folder, after a save of it that was not sent yet, so those bytes stay in its history.
    pub fn unlink(&self, at: &Place, name: &str) -> Result<(), Error> {
        let e = self.find(&at.folder, name).ok_or(Error::NotFound)?;
        if e.is_marker() {
            return Err(Error::NotFound);
        }
        if e.dir {
            return Err(Error::IsDir);
        }
        let Some(base) = e.base.clone().filter(|_| !self.stays_local(&e)) else {
            if e.state == State::Sealed || e.state == State::Open {
                tracing::info!(
                    name,
                    "removed before it was sent: nothing goes to the service"
                );
            }
            self.forget_entry(e.id);
            self.touched(&at.folder);
            return Ok(());
        };
        if self.carried_elsewhere(&at.folder, &base.item, name) {
            // Its item lives on under another name here (a rename not sent yet, with a new
            // file made under its old name): only this name goes, and nothing is deleted.
            self.forget_entry(e.id);
            return self.mark(at, name, base, State::Hidden);
        }
        self.may_delete(e.bim360)?;
        // The entry becomes the marker that deletes its item, keeping the bytes of a save not
        // sent yet: they go up as a version before the delete, so the service keeps them.
        let mut gone = e;
        let unsent =
            matches!(gone.state, State::Sealed | State::Open) && gone.generation().is_some();
        if unsent {
            tracing::info!(name, "removed with a save not sent yet: it goes up as a version before the delete, so the service keeps it");
        } else {
            if let Some(g) = gone.generation() {
                self.staging.remove(gone.id, g);
            }
            gone.source = Source::None;
        }
        gone.state = State::Removed;
        gone.base = Some(base);
        self.inner()?.writers.remove(&gone.id);
        self.save(&gone, true)?;
        self.touched(&at.folder);
        Ok(())
    }

    /// `rm` of the remote file `name` (whose tip is `base`) in `at`'s folder: its tombstone
    /// is sent with the folder, unless new content comes under the name first.
    pub fn remove_remote(&self, at: &Place, name: &str, base: Base) -> Result<(), Error> {
        self.may_delete(at.flavour == crate::api::Flavour::Bim360)?;
        self.mark(at, name, base, State::Removed)
    }

    /// Hides the remote file `name` (whose tip is `base`) in `at`'s folder: renamed here, its
    /// name waiting for new content. Replaces any entry under the name.
    pub fn hide(&self, at: &Place, name: &str, base: Base) -> Result<(), Error> {
        self.mark(at, name, base, State::Hidden)
    }

    /// Puts a marker (`Hidden` or `Removed`) of item `base` under `name` in `at`'s folder.
    fn mark(&self, at: &Place, name: &str, base: Base, state: State) -> Result<(), Error> {
        let id = self.next_id()?;
        let mut e = self.new_entry(
            id,
            LOCAL_INO | id,
            at,
            name,
            false,
            0,
            Source::None,
            Some(base),
        );
        e.state = state;
        self.place(&e)?;
        self.record(&[super::Record::Entry(Box::new(e))], true)?;
        self.touched(&at.folder);
        Ok(())
    }

    /// `rmdir` of a local-only directory.
    pub fn rmdir_local(&self, at: &Place, name: &str) -> Result<(), Error> {
        let e = self.find(&at.folder, name).ok_or(Error::NotFound)?;
        if !e.dir {
            return Err(Error::NotDir);
        }
        let inside = format!("{}{}", super::LOCAL_FOLDER, e.id);
        if !self.entries_in(&inside).is_empty() {
            return Err(Error::NotEmpty);
        }
        self.forget_entry(e.id);
        Ok(())
    }

    /// Moves overlay entry `e` to `name` at `to`, replacing what had that name. `base` is the
    /// remote item the name belongs to (the save continues it).
    pub fn rename_entry(
        &self,
        mut e: Entry,
        to: &Place,
        name: &str,
        base: Option<Base>,
    ) -> Result<(), Error> {
        let from_folder = e.folder.clone();
        {
            let mut i = self.inner()?;
            i.by_name.remove(&(e.folder.clone(), e.name.clone()));
        }
        e.folder = to.folder.clone();
        e.parent = to.dir;
        e.project = to.project.clone();
        e.name = name.to_string();
        if base.is_some() {
            e.base = base;
        }
        // Its name decides where it goes: a temporary renamed to a document's name is sent; a
        // document renamed to a backup name stays here.
        let local = self.stays_local(&e);
        e.state = match e.state {
            State::LocalOnly | State::Sealed | State::Committed if local => State::LocalOnly,
            State::LocalOnly if !e.dir => {
                if self.inner()?.writers.contains_key(&e.id) {
                    State::Open
                } else {
                    State::Sealed
                }
            }
            // A committed file under a new name is a new save of that name.
            State::Committed => State::Sealed,
            s => s,
        };
        if e.state == State::Sealed {
            e.committed = None;
            e.conflict = None;
        }
        self.place(&e)?;
        self.record(&[super::Record::Entry(Box::new(e.clone()))], true)?;
        self.touched(&from_folder);
        self.touched(&e.folder);
        Ok(())
    }

    /// A remote file renamed to a name that stays local (a backup before a save): the name it
    /// had is hidden until the save brings new content, and the new name shows the old bytes.
    pub fn rename_remote_away(
        &self,
        from: &Place,
        file: &RemoteFile,
        to: &Place,
        name: &str,
    ) -> Result<(), Error> {
        if let Some(e) = self.find(&to.folder, name) {
            if e.state != State::Hidden && e.dir {
                return Err(Error::IsDir);
            }
        }
        let id = self.next_id()?;
        let source = Source::Remote {
            storage: file.storage.clone(),
            size: file.size,
        };
        // The kernel moved the file's inode to the new name: the entry keeps it.
        let mut e = self.new_entry(id, file.ino, to, name, false, 0o644, source, None);
        e.size = file.size;
        e.state = State::LocalOnly;
        self.hide(from, &file.name, file.base.clone())?;
        self.place(&e)?;
        self.record(&[super::Record::Entry(Box::new(e))], true)?;
        Ok(())
    }

    /// A remote file renamed in its folder to a name the service keeps: the new name shows its
    /// bytes under its inode and is sent as a rename of the item (its id and history kept). The
    /// old name is hidden until then; `over` another item's name (that item's tip), the item is
    /// removed instead and its content becomes a version of the other item.
    pub fn rename_remote(
        &self,
        from: &Place,
        file: &RemoteFile,
        to: &Place,
        name: &str,
        over: Option<Base>,
    ) -> Result<(), Error> {
        if over.is_some() {
            self.may_delete(from.flavour == crate::api::Flavour::Bim360)?;
        }
        let marker = if over.is_some() {
            State::Removed
        } else {
            State::Hidden
        };
        let id = self.next_id()?;
        let source = Source::Remote {
            storage: file.storage.clone(),
            size: file.size,
        };
        // Over another item's name, the bytes become a save of that item.
        let base = over.unwrap_or_else(|| file.base.clone());
        let mut e = self.new_entry(id, file.ino, to, name, false, 0o644, source, Some(base));
        e.size = file.size;
        e.set_mtime(file.mtime);
        e.state = State::Sealed;
        // The new name first: a crash before the old name's marker is recorded leaves a rename
        // that still happens, never a removal without the rename.
        self.place(&e)?;
        self.record(&[super::Record::Entry(Box::new(e))], true)?;
        self.mark(from, &file.name, file.base.clone(), marker)?;
        self.touched(&to.folder);
        Ok(())
    }

    /// An entry that continues item `base` (a save, a rename, a file this mount committed)
    /// renamed in its folder to a name the service keeps: as `rename_remote`, the entry moving
    /// with its bytes; what it committed already is not sent again. `over` another item's
    /// name (that item's tip), it becomes a save of that item.
    pub fn rename_item_entry(
        &self,
        from: &Place,
        mut e: Entry,
        to: &Place,
        name: &str,
        over: Option<Base>,
    ) -> Result<(), Error> {
        let Some(base) = e.base.clone() else {
            return self.rename_entry(e, to, name, over);
        };
        let marker = if over.is_some() {
            self.may_delete(e.bim360)?;
            State::Removed
        } else {
            State::Hidden
        };
        let old_name = e.name.clone();
        if e.state == State::Committed {
            if let Some(c) = e.committed.clone() {
                if let Some(g) = e.generation() {
                    self.staging.remove(e.id, g);
                }
                e.source = Source::Remote {
                    storage: c.storage,
                    size: e.size,
                };
            }
        }
        self.rename_entry(e, to, name, over)?;
        self.mark(from, &old_name, base, marker)
    }
}
