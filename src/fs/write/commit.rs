//! The reconciler: sends each folder's final state to the service once the folder has been
//! quiet for the configured period (or its oldest change is `max_delay` old). For each sealed
//! entry: upload its bytes (continuing an upload a crash cut short; a renamed file's bytes are
//! on the service already), then a new version of the item its name belongs to, a rename of
//! its own item when that is listed under a name nothing here keeps, or a new item. Names
//! removed here become their items' delete tombstones; names renamed away are dropped once
//! their items are where they belong (see `send_folder` for the order). Before posting after
//! a crash it looks for a version already holding its storage object, so a save is never
//! committed twice. A failure leaves the entry sealed, with the error shown, for a later
//! attempt (growing delays up to 30 s), so saves made while the service is unreachable go up
//! when it is back.

use super::entry::{Committed, Entry, Source, State, Upload};
use super::journal::{Made, Record};
use super::upload::{self, Progress};
use super::{Queued, Writes};
use crate::api::{ApiError, Entry as Listed, Flavour, ItemInfo, Remote, VersionInfo};
use crate::cache::disk::DiskCache;
use crate::fs::error::Error;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Folders sent at once (each sends its entries one after another).
const PARALLEL_FOLDERS: usize = 4;
/// Longest wait between attempts at a failing entry.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);
/// How long each request of a commit may take, every retry included.
const REQUEST_LIMIT: Duration = Duration::from_secs(120);

/// What the service has under each name of a folder: the item and its tip.
type Names = HashMap<String, ItemInfo>;

impl<R: Remote> Writes<R> {
    /// Runs the reconciler until the mount ends.
    pub async fn run(self: Arc<Self>) {
        loop {
            let (due, next) = self.due_folders();
            if due.is_empty() {
                let wait = next.unwrap_or(Duration::from_secs(3600));
                let _ = tokio::time::timeout(wait, self.wake.notified()).await;
                continue;
            }
            use futures_util::stream::{self, StreamExt};
            stream::iter(due)
                .for_each_concurrent(PARALLEL_FOLDERS, |(f, urgent)| {
                    let me = self.clone();
                    async move { me.send_folder(&f, urgent).await }
                })
                .await;
            self.committed.notify_waiters();
        }
    }

    /// Folders whose changes are due now (and whether `apsfs sync` asked for them, which also
    /// tries entries waiting after a failure at once), and how long until the next one is.
    fn due_folders(&self) -> (Vec<(String, bool)>, Option<Duration>) {
        let Ok(mut i) = self.inner() else {
            return (Vec::new(), Some(Duration::from_secs(1)));
        };
        let now = Instant::now();
        let mut due = Vec::new();
        let mut next: Option<Duration> = None;
        let mut soonest = |d: Duration| next = Some(next.map_or(d, |n| n.min(d)));
        let folders: Vec<(String, (Instant, Instant))> =
            i.folders.iter().map(|(f, t)| (f.clone(), *t)).collect();
        for (folder, (first, last)) in folders {
            let waiting: Vec<u64> = i
                .entries
                .values()
                .filter(|e| e.folder == folder)
                .filter(|e| e.state == State::Sealed || e.is_marker())
                .filter(|e| !i.writers.contains_key(&e.id) && !i.dirty.contains(&e.id))
                .map(|e| e.id)
                .collect();
            if waiting.is_empty() {
                if !i
                    .entries
                    .values()
                    .any(|e| e.folder == folder && e.pending())
                {
                    i.folders.remove(&folder);
                }
                continue;
            }
            let ready_at = (last + self.config.quiet).min(first + self.config.max_delay);
            let retry_at = waiting
                .iter()
                .filter_map(|id| i.retry_at.get(id))
                .min()
                .copied();
            let ready_at = match retry_at {
                Some(r) if waiting.iter().all(|id| i.retry_at.contains_key(id)) => ready_at.max(r),
                _ => ready_at,
            };
            if i.urgent.contains(&folder) || ready_at <= now {
                due.push(folder);
            } else {
                soonest(ready_at - now);
            }
        }
        let due = due
            .into_iter()
            .map(|f| {
                let urgent = i.urgent.remove(&f);
                (f, urgent)
            })
            .collect();
        (due, next)
    }

    /// Sends the due entries of `folder`, in rounds. Each round first deletes the items removed
    /// here that nothing still carries (so their names are free), then sends the contents
    /// (saves, renames, new files); a file moving into a name whose item moves away too waits
    /// for it (a rename chain: `mv a b; mv c a`), and names swapped in a circle keep their
    /// items (each gets the other's bytes). The names renamed away go last, as they depend on
    /// where the contents went.
    async fn send_folder(&self, folder: &str, urgent: bool) {
        let ids: Vec<u64> = match self.inner() {
            Ok(i) => i
                .entries
                .values()
                .filter(|e| e.folder == folder)
                .filter(|e| e.state == State::Sealed || e.is_marker())
                .filter(|e| !i.writers.contains_key(&e.id) && !i.dirty.contains(&e.id))
                .filter(|e| urgent || i.retry_at.get(&e.id).map_or(true, |t| *t <= Instant::now()))
                .map(|e| e.id)
                .collect(),
            Err(_) => return,
        };
        // Restarted now: changes after this point wait for their own quiet period.
        if let Ok(mut i) = self.inner() {
            i.folders.remove(folder);
        }
        let (mut markers, mut todo): (Vec<u64>, Vec<u64>) = ids
            .into_iter()
            .partition(|id| self.entry(*id).is_ok_and(|e| e.is_marker()));
        let mut listing: Option<Names> = None;
        // Items a version or rename went to in this pass (they live on), and items whose change
        // failed (what waits for them waits for the next pass).
        let mut kept = HashSet::new();
        let mut blocked = HashSet::new();
        let mut circle = false;
        while !todo.is_empty() || !markers.is_empty() {
            let mut progress = false;
            let carried = self.carried(folder);
            let mut settled = HashSet::new();
            for id in &markers {
                let Ok(m) = self.entry(*id) else {
                    settled.insert(*id);
                    continue;
                };
                let item = m.base.as_ref().map(|b| b.item.clone());
                if m.state != State::Removed || item.as_ref().is_some_and(|i| carried.contains(i)) {
                    continue;
                }
                settled.insert(*id);
                match self.settle(&m, &mut listing, &kept, &HashSet::new()).await {
                    Ok(()) => {
                        self.sent(*id);
                        progress = true;
                    }
                    Err(err) => {
                        self.failed(*id, &err);
                        blocked.extend(item);
                    }
                }
            }
            markers.retain(|id| !settled.contains(id));
            let mut next = Vec::new();
            // As the round starts: an entry sent during it may let another go, next round.
            let mut here = Here::of(self.shown_in(folder));
            // Items removed here and not deleted yet move away from their names too.
            for id in &markers {
                if let Ok(m) = self.entry(*id) {
                    if let (State::Removed, Some(b)) = (&m.state, m.base) {
                        here.going.insert(b.item);
                    }
                }
            }
            for id in std::mem::take(&mut todo) {
                let Ok(e) = self.entry(id) else { continue };
                if listing.is_none() {
                    match self.remote_names(&e).await {
                        Ok(l) => listing = Some(l),
                        Err(err) => {
                            self.failed(id, &err);
                            continue;
                        }
                    }
                }
                let planned = match &listing {
                    Some(names) => plan(&e, names, &here, circle),
                    None => continue,
                };
                match planned {
                    Plan::Wait(item) if blocked.contains(&item) => {
                        let err = Error::Internal(format!(
                            "waits for the item at {:?} to move away",
                            e.name
                        ));
                        self.failed(id, &err);
                    }
                    Plan::Wait(_) => next.push(id),
                    plan => match self.send_as(&e, plan, &mut listing).await {
                        Ok(item) => {
                            kept.insert(item);
                            self.sent(id);
                            progress = true;
                        }
                        Err(err) => {
                            self.failed(id, &err);
                            blocked.extend(e.base.as_ref().map(|b| b.item.clone()));
                        }
                    },
                }
            }
            todo = next;
            if !progress {
                if todo.is_empty() || circle {
                    break;
                }
                // Nothing moved and files still wait: they wait for each other.
                circle = true;
            }
        }
        // Items whose save or rename still waits: their markers wait with them.
        let waiting = self.carried(folder);
        for id in markers {
            let Ok(m) = self.entry(id) else { continue };
            match self.settle(&m, &mut listing, &kept, &waiting).await {
                Ok(()) => self.sent(id),
                Err(err) => self.failed(id, &err),
            }
        }
        // Entries still waiting (failed, or changed meanwhile) keep the folder queued.
        if let Ok(mut i) = self.inner() {
            if i.entries
                .values()
                .any(|e| e.folder == folder && e.pending())
            {
                let now = Instant::now();
                i.folders.entry(folder.to_string()).or_insert((now, now));
            }
        }
    }

    /// Items that a change of `folder` not sent yet continues (a save or rename of them).
    fn carried(&self, folder: &str) -> HashSet<String> {
        self.shown_in(folder)
            .into_iter()
            .filter(|e| e.state != State::Committed)
            .filter_map(|e| Some(e.base?.item))
            .collect()
    }

    /// The entries `folder` shows (not markers, not local-only names).
    fn shown_in(&self, folder: &str) -> Vec<Entry> {
        match self.inner() {
            Ok(i) => i
                .entries
                .values()
                .filter(|e| e.folder == folder && !e.is_marker() && e.state != State::LocalOnly)
                .cloned()
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Entry `id` went through: no retry is due.
    fn sent(&self, id: u64) {
        if let Ok(mut i) = self.inner() {
            i.retry_at.remove(&id);
        }
    }

    /// Records a failed attempt at entry `id`: shown as its error, tried again later.
    fn failed(&self, id: u64, err: &Error) {
        let Ok(mut e) = self.entry(id) else { return };
        e.attempts += 1;
        e.error = Some(err.to_string());
        let delay = Duration::from_millis(500 << e.attempts.min(6)).min(MAX_RETRY_DELAY);
        tracing::warn!(name = %e.name, attempts = e.attempts, retry_in = ?delay, error = %err, "a change could not be sent yet");
        if let Ok(mut i) = self.inner() {
            i.retry_at.insert(id, Instant::now() + delay);
        }
        if let Err(err) = self.save(&e, false) {
            tracing::warn!(error = %err, "cannot record a failed attempt");
        }
    }

    /// Settles marker `m` (a name hidden or removed here) once its folder's contents are sent.
    /// A hidden name goes (its item is under its new name now, or shows again); a removed one
    /// becomes the item's tombstone, after the save it still holds, unless the item lives on
    /// under another name. While a save or rename of its item waits, the marker waits too.
    async fn settle(
        &self,
        m: &Entry,
        listing: &mut Option<Names>,
        kept: &HashSet<String>,
        waiting: &HashSet<String>,
    ) -> Result<(), Error> {
        let Some(item) = m.base.as_ref().map(|b| b.item.clone()) else {
            self.forget_entry(m.id);
            return Ok(());
        };
        if waiting.contains(&item) {
            return Ok(());
        }
        if m.state == State::Hidden || kept.contains(&item) {
            if m.state == State::Removed {
                tracing::info!(name = %m.name, "removed here, but its item lives on under another name: not deleted");
            }
            self.forget_entry(m.id);
            return Ok(());
        }
        if listing.is_none() {
            *listing = Some(self.remote_names(m).await?);
        }
        let Some(x) = listing
            .as_ref()
            .and_then(|l| l.values().find(|i| i.id == item))
            .cloned()
        else {
            tracing::info!(name = %m.name, "already gone from the service");
            self.forget_entry(m.id);
            return Ok(());
        };
        // Someone saved a version after the file was removed here: theirs is not deleted.
        let base = m.base.as_ref().map(|b| b.version.as_str());
        let newer = x
            .tip
            .as_ref()
            .filter(|t| Some(t.id.as_str()) != base && self.made.sha256(&t.id).is_none());
        if m.generation().is_some() {
            // Removed with a save not sent yet: the save first, so the service keeps it.
            let mut save = m.clone();
            save.name = x.file_name().to_string();
            save.state = State::Sealed;
            self.send_as(&save, Plan::Version(x.clone()), listing)
                .await?;
            // Sent: a later attempt at the tombstone does not send it again.
            let staged = m.generation();
            self.update(m.id, |x| x.source = Source::None, true)?;
            if let Some(g) = staged {
                self.staging.remove(m.id, g);
            }
        }
        if let Some(t) = newer {
            let who = t.meta.modified_by.as_deref().unwrap_or("another client");
            tracing::warn!(name = %m.name, version = t.number, by = %who, "not deleted: a newer version was saved after it was removed here; it shows again");
            self.forget_entry(m.id);
            return Ok(());
        }
        match within(self.remote.delete_item(&m.project, &item)).await {
            Ok(v) => {
                tracing::info!(name = %m.name, %item, tombstone = v.number, "deleted (its earlier versions stay on the service)");
            }
            // Refused for good (a hub type without deletes, or deleted already): nothing
            // more to do; the file shows again if it is still there.
            Err(Error::Remote(ApiError::Refused {
                status: status @ (400 | 409),
                detail,
            })) => {
                tracing::warn!(name = %m.name, status, %detail, "the service did not delete it");
            }
            Err(err) => return Err(err),
        }
        self.made.renamed_in(&m.folder);
        if let Some(l) = listing.as_mut() {
            l.retain(|_, i| i.id != item);
        }
        self.forget_entry(m.id);
        Ok(())
    }

    /// Sends sealed entry `e` as `plan` says: its bytes (uploaded, continuing an upload a crash
    /// cut short, or the storage it already has on the service), then the version, rename or
    /// item. The item its content went to.
    async fn send_as(
        &self,
        e: &Entry,
        plan: Plan,
        listing: &mut Option<Names>,
    ) -> Result<String, Error> {
        let materialised;
        let e = match &e.source {
            Source::Remote { storage, size } if self.reuse_refused.load(Ordering::Relaxed) => {
                materialised = self.materialise(e, storage, *size).await?;
                &materialised
            }
            _ => e,
        };
        let flavour = if e.bim360 {
            Flavour::Bim360
        } else {
            Flavour::Core
        };
        let target = match &plan {
            Plan::Version(t) | Plan::Rename { item: t, .. } => Some(t.clone()),
            Plan::New => None,
            Plan::Wait(_) => return Err(Error::Internal("sent while it waits".into())),
        };
        if let Some(reserved) = target.as_ref().and_then(|t| t.meta.reserved.as_ref()) {
            let mine = reserved.user_id.is_some() && reserved.user_id == self.config.user_id;
            if !mine {
                let who = reserved.by.clone().unwrap_or_else(|| "another user".into());
                return Err(Error::Locked(who));
            }
        }
        let (content, generation) = match (&e.source, &plan) {
            // A rename alone keeps the item's bytes as they are now (a version someone made
            // since is not undone).
            (Source::Remote { storage, .. }, Plan::Rename { item, .. }) if e.only_renamed() => {
                let tip = item.tip.as_ref().and_then(|t| t.storage.clone());
                (Content::Kept(tip.unwrap_or_else(|| storage.clone())), None)
            }
            (Source::Remote { storage, .. }, _) => (Content::Kept(storage.clone()), None),
            (Source::Staged(g), _) => {
                match self.upload_content(e, *g, &plan, target.as_ref()).await? {
                    Uploaded::Sent(content) => (content, Some(*g)),
                    Uploaded::Done(item) => return Ok(item),
                }
            }
            (Source::None, _) => return Err(Error::Internal("nothing to send".into())),
        };
        let storage = content.storage().to_string();
        let sha = content.sha();
        let kept = matches!(content, Content::Kept(_));
        // A crash between posting the version and recording it: the service may have it.
        if let Content::Uploaded { resumed: true, .. } = content {
            let item = target
                .as_ref()
                .map(|t| t.id.clone())
                .or_else(|| e.committed.as_ref().map(|c| c.item.clone()));
            if let Some(v) = self
                .already_posted(e, item.as_deref(), &storage, target.as_ref())
                .await?
            {
                self.finish(e, generation, &v.1, &v.0, sha, None).await?;
                return Ok(v.0);
            }
        }
        let posted = match &plan {
            Plan::Version(t) => {
                let tip = t.tip.as_ref();
                if kept && tip.is_some_and(|v| v.storage.as_deref() == Some(&storage)) {
                    // Its bytes are the item's tip already (a rename undone, a crash after it).
                    let v = tip.cloned().ok_or(Error::BadHandle)?;
                    self.finish(e, generation, &v, &t.id, sha, None).await?;
                    return Ok(t.id.clone());
                }
                let conflict = conflict_with(e, t);
                let v = self.post_version(e, &t.id, &storage, flavour, kept).await?;
                (t.id.clone(), v, conflict)
            }
            Plan::Rename { item: x, old } => {
                let v = self.rename(e, x, &storage, flavour, kept).await?;
                tracing::info!(from = %old, to = %e.name, item = %x.id, "renamed");
                self.made.renamed_in(&e.folder);
                if let Some(l) = listing.as_mut() {
                    l.remove(old);
                }
                (x.id.clone(), v, None)
            }
            Plan::New | Plan::Wait(_) => {
                let (item, v) = self.post_item(e, &storage, flavour, kept, listing).await?;
                (item, v, None)
            }
        };
        let (item_id, version, conflict) = posted;
        // The next save in this folder continues this one.
        if let Some(l) = listing.as_mut() {
            l.insert(
                e.name.clone(),
                ItemInfo {
                    id: item_id.clone(),
                    display_name: e.name.clone(),
                    hidden: false,
                    tip: Some(version.clone()),
                    meta: Default::default(),
                },
            );
        }
        self.finish(e, generation, &version, &item_id, sha, conflict)
            .await?;
        Ok(item_id)
    }

    /// Uploads the staged bytes (generation `g`) of `e`, continuing an upload a crash cut
    /// short; or finds there is nothing to send (the same bytes as the version this mount made
    /// last, which `Done` names the item of).
    async fn upload_content(
        &self,
        e: &Entry,
        generation: u32,
        plan: &Plan,
        target: Option<&ItemInfo>,
    ) -> Result<Uploaded, Error> {
        let file = Arc::new(self.file(e)?);
        // Hashed beside the upload; first only when the tip is a version this mount made, so
        // a save of the same bytes can be told and nothing sent.
        let mut hashing = Some({
            let f = file.clone();
            let size = e.size;
            tokio::task::spawn_blocking(move || sha256_of(&f, size))
        });
        let mut sha = None;
        if let (Plan::Version(t), Some(tip)) = (plan, target.and_then(|t| t.tip.as_ref())) {
            if let Some(made) = self.made.sha256(&tip.id) {
                let ours = hashed(hashing.take()).await?;
                if made == ours {
                    tracing::info!(name = %e.name, version = tip.number, "unchanged since the version this mount made; nothing sent");
                    self.finish(e, Some(generation), tip, &t.id, Some(&ours), None)
                        .await?;
                    return Ok(Uploaded::Done(t.id.clone()));
                }
                sha = Some(ours);
            }
        }
        let progress = Arc::new(Progress::default());
        let mut up = match &e.upload {
            Some(u) if u.generation == generation => u.clone(),
            _ => Upload {
                storage: within(self.remote.create_storage(&e.project, &e.folder, &e.name)).await?,
                generation,
                ..Upload::default()
            },
        };
        let resumed = up.completed;
        self.mark_uploading(e.id, Some(progress.clone()))?;
        let sent = upload::upload(
            &*self.remote,
            file.clone(),
            e.size,
            &mut up,
            &progress,
            &|u| {
                if let Err(err) = self.update(e.id, |x| x.upload = Some(u.clone()), false) {
                    // Only costs re-sending these parts after a crash.
                    tracing::warn!(error = %err, "cannot record upload progress");
                }
            },
        )
        .await;
        self.mark_uploading(e.id, None)?;
        sent?;
        self.update(e.id, |x| x.upload = Some(up.clone()), true)?;
        let sha = match sha {
            Some(sha) => sha,
            None => hashed(hashing.take()).await?,
        };
        Ok(Uploaded::Sent(Content::Uploaded {
            storage: up.storage,
            sha,
            resumed,
        }))
    }

    /// `POST versions` of `storage` as the next version of `item`, named as `e`.
    async fn post_version(
        &self,
        e: &Entry,
        item: &str,
        storage: &str,
        flavour: Flavour,
        kept: bool,
    ) -> Result<VersionInfo, Error> {
        let posted = within(
            self.remote
                .create_version(&e.project, item, &e.name, storage, flavour),
        )
        .await;
        self.reuse_answer(posted, kept)
    }

    /// Renames item `x` to `e`'s name, with `storage` as its content: on BIM 360 / ACC a version
    /// under the new name (the documented rename there); elsewhere `PATCH items`, and a version
    /// only when the bytes changed too. The item's tip afterwards.
    async fn rename(
        &self,
        e: &Entry,
        x: &ItemInfo,
        storage: &str,
        flavour: Flavour,
        kept: bool,
    ) -> Result<VersionInfo, Error> {
        if flavour == Flavour::Bim360 {
            return self.post_version(e, &x.id, storage, flavour, kept).await;
        }
        if x.file_name() != e.name {
            within(self.remote.rename_item(&e.project, &x.id, &e.name)).await?;
        }
        match x.tip.clone() {
            Some(tip) if kept && tip.storage.as_deref() == Some(storage) => Ok(tip),
            _ => self.post_version(e, &x.id, storage, flavour, kept).await,
        }
    }

    /// `POST items` of `storage` as a new item named as `e`; when the name was taken meanwhile
    /// (another client, or our own earlier attempt whose answer was lost), a version of the
    /// item that has it. The item and its tip.
    async fn post_item(
        &self,
        e: &Entry,
        storage: &str,
        flavour: Flavour,
        kept: bool,
        listing: &mut Option<Names>,
    ) -> Result<(String, VersionInfo), Error> {
        let made = within(
            self.remote
                .create_item(&e.project, &e.folder, &e.name, storage, flavour),
        )
        .await;
        match made {
            Ok(item) => {
                let tip = item.tip.clone().ok_or_else(|| {
                    Error::Remote(ApiError::Decode(
                        "the new item came without its version".into(),
                    ))
                })?;
                Ok((item.id, tip))
            }
            Err(Error::Remote(ApiError::Refused { status: 409, .. })) => {
                *listing = Some(self.remote_names(e).await?);
                let t = listing
                    .as_ref()
                    .and_then(|l| l.get(&e.name))
                    .cloned()
                    .ok_or_else(|| {
                        Error::Remote(ApiError::Decode(
                            "409 for a name the folder does not list".into(),
                        ))
                    })?;
                if let Some(tip) = t
                    .tip
                    .as_ref()
                    .filter(|tip| tip.storage.as_deref() == Some(storage))
                {
                    return Ok((t.id.clone(), tip.clone()));
                }
                let v = self.post_version(e, &t.id, storage, flavour, kept).await?;
                Ok((t.id, v))
            }
            Err(err) => self.reuse_answer(Err(err), kept),
        }
    }

    /// `answer` to a create that named storage another version holds (`kept`): a 400 then
    /// means the service does not take that, and from now on such content is uploaded again.
    fn reuse_answer<T>(&self, answer: Result<T, Error>, kept: bool) -> Result<T, Error> {
        if let Err(Error::Remote(ApiError::Refused {
            status: 400,
            detail,
        })) = &answer
        {
            if kept && !self.reuse_refused.swap(true, Ordering::Relaxed) {
                tracing::warn!(%detail, "the service refuses a version on storage another version holds: renames and copies upload their bytes again from now on");
            }
        }
        answer
    }

    /// Brings the remote bytes (`storage`, `size`) of sealed entry `e` into staging, to be
    /// uploaded as new storage; `e` as it is then.
    async fn materialise(&self, e: &Entry, storage: &str, size: u64) -> Result<Entry, Error> {
        self.fill(e.id, 0, storage, size).await?;
        self.update(e.id, |x| x.source = Source::Staged(0), true)?;
        self.entry(e.id)
    }

    /// What the service has under each name of `e`'s folder now.
    async fn remote_names(&self, e: &Entry) -> Result<Names, Error> {
        let listed = within(self.remote.folder_contents(&e.project, &e.folder, None)).await?;
        Ok(listed
            .into_iter()
            .filter_map(|l| match l {
                Listed::Item(i) if !i.hidden && i.tip.as_ref().is_some_and(|t| !t.deleted) => {
                    Some((i.file_name().to_string(), i))
                }
                _ => None,
            })
            .collect())
    }

    /// After a crash: the version (and its item) that already holds `storage`, if one does.
    async fn already_posted(
        &self,
        e: &Entry,
        item: Option<&str>,
        storage: &str,
        target: Option<&ItemInfo>,
    ) -> Result<Option<(String, VersionInfo)>, Error> {
        let Some(item) = target.map(|t| t.id.as_str()).or(item) else {
            return Ok(None);
        };
        let versions = within(self.remote.item_versions(&e.project, item)).await?;
        Ok(versions
            .into_iter()
            .find(|v| v.storage.as_deref() == Some(storage))
            .map(|v| (item.to_string(), v)))
    }

    /// Records entry `e` (staged as `generation`, or with bytes the service has already) as
    /// committed as `version` of `item`; then puts staged bytes into the disk cache under the
    /// version's storage, off the async threads; once there, the entry reads them from the
    /// cache and its staging file goes, so staging holds only what is not sent yet.
    async fn finish(
        &self,
        e: &Entry,
        generation: Option<u32>,
        version: &VersionInfo,
        item: &str,
        sha: Option<&str>,
        conflict: Option<String>,
    ) -> Result<(), Error> {
        let committed = Committed {
            item: item.to_string(),
            version: version.id.clone(),
            number: version.number,
            storage: version.storage.clone().unwrap_or_default(),
        };
        let made = Made {
            version: version.id.clone(),
            mtime_ns: e.mtime_ns,
            size: e.size,
            sha256: sha.unwrap_or_default().to_string(),
        };
        self.made.insert(made.clone());
        // Flushed with the entry's record below: one flush for both.
        self.record(&[Record::Made(made)], false)?;
        if let Some(who) = &conflict {
            tracing::warn!(name = %e.name, version = version.number, after = %who, "conflict: the item had a newer version than the one opened; saved as the next version, both kept");
        } else {
            tracing::info!(name = %e.name, version = version.number, %item, "saved");
        }
        self.update(
            e.id,
            |x| {
                x.committed = Some(committed.clone());
                x.upload = None;
                x.error = None;
                x.attempts = 0;
                x.conflict = conflict.clone();
                x.sha256 = sha.map(str::to_string);
                x.base = Some(super::entry::Base {
                    item: committed.item.clone(),
                    version: committed.version.clone(),
                    number: committed.number,
                    storage: Some(committed.storage.clone()),
                });
                // Changed again while it was sent: that change is the next save.
                if x.generation() == generation && x.state == State::Sealed {
                    x.state = State::Committed;
                }
            },
            true,
        )?;
        match self.entry(e.id) {
            Ok(x) if x.generation() != generation => {
                if let Some(g) = generation {
                    self.staging.remove(e.id, g);
                }
            }
            Ok(_) => {}
            // Gone meanwhile, so nothing was recorded for it: the version made is flushed alone.
            Err(_) => self.record(&[], true)?,
        }
        self.committed.notify_waiters();
        let (Some(disk), Some(storage), Some(generation)) =
            (self.disk.clone(), version.storage.clone(), generation)
        else {
            return Ok(());
        };
        let path = self.staging.path(e.id, generation);
        let size = e.size;
        let key = storage.clone();
        let cached = tokio::task::spawn_blocking(move || keep_on_disk(&disk, &path, size, &key))
            .await
            .unwrap_or(false);
        if !cached {
            return Ok(());
        }
        let mut moved = false;
        self.update(
            e.id,
            |x| {
                if x.generation() == Some(generation) && x.state == State::Committed {
                    x.source = Source::Remote {
                        storage,
                        size: x.size,
                    };
                    moved = true;
                }
            },
            true,
        )?;
        if moved {
            self.staging.remove(e.id, generation);
        }
        Ok(())
    }

    /// Notes that entry `id` is (or is no longer, with `None`) being uploaded.
    fn mark_uploading(&self, id: u64, p: Option<Arc<Progress>>) -> Result<(), Error> {
        let mut i = self.inner()?;
        match p {
            Some(p) => i.uploading.insert(id, p),
            None => i.uploading.remove(&id),
        };
        Ok(())
    }

    /// Changes entry `id` in place (if it still exists) and records it.
    fn update(&self, id: u64, f: impl FnOnce(&mut Entry), durable: bool) -> Result<(), Error> {
        let e = {
            let mut i = self.inner()?;
            let Some(e) = i.entries.get_mut(&id) else {
                return Ok(());
            };
            f(e);
            e.clone()
        };
        self.record(&[Record::Entry(Box::new(e))], durable)
    }

    /// Sends `folder`'s changes now (every folder's, for `None`), and with `wait` returns
    /// once nothing there is pending any more or `limit` passed: what is still pending.
    pub async fn sync(&self, folder: Option<&str>, wait: bool, limit: Duration) -> Vec<Queued> {
        let pending = |me: &Self| -> Vec<Queued> {
            me.queue()
                .into_iter()
                .filter(|q| folder.map_or(true, |f| q.folder == f))
                .filter(Queued::waits)
                .collect()
        };
        // Asked for once: an entry that fails again waits out its delay, even while waited for.
        if let Ok(mut i) = self.inner() {
            let folders: Vec<String> = i
                .entries
                .values()
                .filter(|e| e.pending() && folder.map_or(true, |f| e.folder == f))
                .map(|e| e.folder.clone())
                .collect();
            for f in folders {
                let now = Instant::now();
                i.folders.entry(f.clone()).or_insert((now, now));
                i.urgent.insert(f);
            }
        }
        self.wake.notify_one();
        let started = Instant::now();
        loop {
            let left = pending(self);
            if !wait || left.is_empty() {
                return left;
            }
            let Some(rest) = limit.checked_sub(started.elapsed()) else {
                return left;
            };
            let _ =
                tokio::time::timeout(rest.min(Duration::from_secs(1)), self.committed.notified())
                    .await;
        }
    }

    /// Every entry that is not simply committed, for `apsfs status`.
    pub fn queue(&self) -> Vec<Queued> {
        let Ok(i) = self.inner() else {
            return Vec::new();
        };
        let mut q: Vec<Queued> = i
            .entries
            .values()
            .filter(|e| e.state != State::Hidden && !e.dir)
            .filter(|e| e.state != State::Committed || e.conflict.is_some())
            .map(|e| Queued {
                name: super::shown_name(&e.name).to_string(),
                folder: e.folder.clone(),
                state: match i.uploading.get(&e.id) {
                    Some(p) => format!(
                        "uploading {} of {} bytes",
                        p.done.load(std::sync::atomic::Ordering::Relaxed),
                        e.size
                    ),
                    None if i.writers.contains_key(&e.id) && e.state != State::LocalOnly => {
                        "pending (open for writing)".into()
                    }
                    None => e.sync_state(),
                },
                size: e.size,
                uploaded: i
                    .uploading
                    .get(&e.id)
                    .map(|p| p.done.load(std::sync::atomic::Ordering::Relaxed)),
            })
            .collect();
        q.sort_by(|a, b| (&a.folder, &a.name).cmp(&(&b.folder, &b.name)));
        q
    }

    /// `user.aps.sync` of entry `e`, with upload progress while it is uploading.
    pub fn sync_state(&self, e: &Entry) -> String {
        match self
            .inner()
            .ok()
            .and_then(|i| i.uploading.get(&e.id).cloned())
        {
            Some(p) => {
                let part = e
                    .upload
                    .as_ref()
                    .map_or(upload::MIN_PART, |u| u.part_size.max(1));
                let total = upload::parts(e.size, part);
                let done = p
                    .done
                    .load(std::sync::atomic::Ordering::Relaxed)
                    .div_ceil(part);
                format!("uploading {done}/{total}")
            }
            None => e.sync_state(),
        }
    }
}

/// What sending a content entry does, decided from its folder's listing.
enum Plan {
    /// A new version of the item that has the entry's name.
    Version(ItemInfo),
    /// The entry's own item, listed under the name `old` that nothing here shows any more:
    /// renamed to the entry's name (with a version, when its bytes changed too).
    Rename {
        /// The item as listed.
        item: ItemInfo,
        /// Its name there.
        old: String,
    },
    /// A new item.
    New,
    /// Not yet: the entry's own item moves into the name of this item, which moves away too.
    Wait(String),
}

/// What `e` becomes, given the folder's listing (`names`) and the entries it shows (`here`).
/// Identity is the name: the item listed under the entry's name gets the version, unless the
/// entry continues another listed item and the one there moves away (then it waits, and is a
/// rename once the name is free; in a `circle` of such moves, each name keeps its item). Else
/// its own item, when listed under a name nothing here keeps for it, is renamed; else a new
/// item is made.
fn plan(e: &Entry, names: &Names, here: &Here, circle: bool) -> Plan {
    let own = e
        .base
        .as_ref()
        .and_then(|b| names.iter().find(|(_, i)| i.id == b.item));
    if let Some(t) = names.get(&e.name) {
        let moves_in = own.is_some_and(|(_, z)| z.id != t.id);
        if moves_in && !circle && here.moves_away(&t.id, &e.name) {
            return Plan::Wait(t.id.clone());
        }
        return Plan::Version(t.clone());
    }
    match own {
        Some((old, x)) if !here.kept_for(old, &x.id, names) => Plan::Rename {
            item: x.clone(),
            old: old.clone(),
        },
        _ => Plan::New,
    }
}

/// The entries a folder shows, as a plan looks at them: the item each continues, by name;
/// and the items removed here whose delete is still to be sent.
struct Here {
    shown: HashMap<String, Option<String>>,
    going: HashSet<String>,
}

impl Here {
    fn of(entries: Vec<Entry>) -> Here {
        Here {
            shown: entries
                .into_iter()
                .map(|e| (e.name, e.base.map(|b| b.item)))
                .collect(),
            going: HashSet::new(),
        }
    }

    /// Whether item `item`, listed under `name`, leaves that name (an entry elsewhere
    /// continues it, or it is removed here).
    fn moves_away(&self, item: &str, name: &str) -> bool {
        self.going.contains(item)
            || self
                .shown
                .iter()
                .any(|(n, i)| n != name && i.as_deref() == Some(item))
    }

    /// Whether name `old`, where item `item` is listed, stays that item's: something is shown
    /// there that does not continue another listed item (new bytes, or the item itself).
    fn kept_for(&self, old: &str, item: &str, names: &Names) -> bool {
        match self.shown.get(old) {
            None => false,
            Some(None) => true,
            Some(Some(i)) => i == item || !names.values().any(|l| l.id == *i),
        }
    }
}

/// The bytes a version is made of.
enum Content {
    /// Storage the service has already (a renamed or copied file's).
    Kept(String),
    /// Storage just uploaded, and its SHA-256.
    Uploaded {
        /// Storage object.
        storage: String,
        /// SHA-256 of the bytes, hex.
        sha: String,
        /// The journal had the upload completed: a crash may have posted it already.
        resumed: bool,
    },
}

impl Content {
    fn storage(&self) -> &str {
        match self {
            Content::Kept(s) | Content::Uploaded { storage: s, .. } => s,
        }
    }

    fn sha(&self) -> Option<&str> {
        match self {
            Content::Kept(_) => None,
            Content::Uploaded { sha, .. } => Some(sha),
        }
    }
}

/// What uploading an entry's staged bytes came to.
enum Uploaded {
    /// The bytes are on the service now.
    Sent(Content),
    /// Nothing to send: the item (named) has these bytes as its tip already.
    Done(String),
}

/// Who moved the item past the version `e` was opened at, if anyone did.
fn conflict_with(e: &Entry, target: &ItemInfo) -> Option<String> {
    let base = e.base.as_ref()?;
    let tip = target.tip.as_ref()?;
    if base.item != target.id || tip.id == base.version {
        return None;
    }
    if e.committed.as_ref().is_some_and(|c| c.version == tip.id) {
        return None;
    }
    let who = tip.meta.modified_by.as_deref().unwrap_or("another client");
    Some(format!("v{} by {who}", tip.number))
}

/// `work` within `REQUEST_LIMIT`, a timeout being an error like any other.
async fn within<T>(
    work: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, Error> {
    match crate::deadline::within(REQUEST_LIMIT, work).await {
        Ok(r) => r.map_err(Error::Remote),
        Err(expired) => Err(Error::Remote(ApiError::Timeout(expired.to_string()))),
    }
}

/// SHA-256 (hex) of the first `size` bytes of `f`.
fn sha256_of(f: &std::fs::File, size: u64) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < size {
        let n = (size - at).min(buf.len() as u64) as usize;
        f.read_exact_at(&mut buf[..n], at)?;
        h.update(&buf[..n]);
        at += n as u64;
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Puts the `size` bytes of the staging file at `path` into `disk` as the blocks of `storage`,
/// so reading the version back (after a remount too) downloads nothing; whether it did.
fn keep_on_disk(disk: &DiskCache, path: &std::path::Path, size: u64, storage: &str) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let block = crate::cache::disk::BLOCK;
    let mut b = 0;
    while b * block < size {
        let len = block.min(size - b * block);
        let mut buf = vec![0u8; len as usize];
        if f.read_exact_at(&mut buf, b * block).is_err() {
            return false;
        }
        disk.put(storage, b, &buf);
        b += 1;
    }
    true
}

/// The result of a hashing task (`None`: already taken, which the callers never do).
async fn hashed(
    task: Option<tokio::task::JoinHandle<std::io::Result<String>>>,
) -> Result<String, Error> {
    let task = task.ok_or_else(|| Error::Internal("the staged file was hashed twice".into()))?;
    task.await
        .map_err(|err| Error::Internal(err.to_string()))?
        .map_err(|err| crate::fs::error::local("reading a staging file", err))
}
