//! Read-ahead across files. Backups and copies (rsync, tar, `cp -r`, restic) open the files of
//! a folder one after another, in the folder's order or by name, and read each to its end; on
//! its own every file would cost a signing round trip and then a download round trip, in
//! series. Each open signs the files that follow it in one batch request (no more requests
//! than signing the opened file alone); once the files are seen opened in order, each read to
//! its end, the next files' bytes (the first part of large ones) are fetched before they are
//! opened, more of them while the pattern holds, within the global read-ahead budget. A reader
//! moving on to the next folder keeps its pace, and one that walks as rsync does is met there
//! by that folder's first files. The first open out of order drops what was fetched, and what
//! nobody opens is dropped soon after. One lock guards it all, held for bookkeeping only and
//! never across an await; it is taken before the namespace's locks, never after.

use super::prefetch::{Budget, Part, FIRST_WINDOW, MAX_PART};
use super::read::ByteSource;
use crate::api::oss::BATCH_MAX;
use crate::api::Remote;
use crate::cache::metadata::Listing;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Files signed ahead of the one opened: one batch request.
const SIGN_AHEAD: usize = BATCH_MAX;
/// The next batch is signed when fewer signed files than this are left beyond those fetched
/// ahead, so it is back before the fetches get there.
const SIGN_LOW: usize = BATCH_MAX / 2;
/// Files fetched ahead at most. The window starts at 4 files and doubles with every file
/// opened in order; 32 files of a few KiB keep a 20 ms link busy for a reader that spends a
/// millisecond on each.
const MAX_FILES: usize = 32;
/// Bytes one folder's read-ahead holds at most, so a reader that stops wastes little.
const MAX_BYTES: u64 = 16 << 20;
/// Files fetched ahead and not opened within this long are dropped.
const IDLE: Duration = Duration::from_secs(10);
/// A reader that finished a folder keeps its pace into the first file of another only if it
/// opens it this soon: a backup moves on at once, while a file opened later is a new reader.
const NEXT_FOLDER_WITHIN: Duration = Duration::from_secs(2);
/// Files remembered as opened before, at most (8 bytes and a little each); past it the memory
/// starts again, and a file opened long ago may be fetched ahead once more.
const MAX_SEEN: usize = 1 << 20;
/// Folders without files passed over, at most, looking for the next folder a reader by name
/// opens files in.
const NEXT_FOLDER_HOPS: usize = 4;
/// Folders followed at once; the one used least recently is dropped first.
const MAX_FOLDERS: usize = 16;

/// What read-ahead across files asks of the namespace, answered without a request.
pub trait Folders {
    /// The files `listing` names, in its order.
    fn files(&self, listing: &Listing) -> Vec<FileRef>;
    /// The folder a walk that reads each folder's files before its subfolders, all by name
    /// (rsync), comes to after `folder`, with its listing; `None` when not listed yet.
    fn next_by_name(&self, folder: u64) -> Option<(u64, Arc<Listing>)>;
}

/// A file of a listing, as read-ahead needs it.
pub struct FileRef {
    /// Its inode.
    pub ino: u64,
    /// Its name in the listing (for the by-name order).
    pub name: String,
    /// Storage object of its version.
    pub storage: Arc<str>,
    /// Size, when listed.
    pub size: Option<u64>,
}

/// The orders readers walk a folder in: the listing's (readdir: tar, find, `cp -r`) and by name
/// (rsync and restic sort each folder).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Order {
    Listing,
    Name,
}

/// The files of one listing, in both orders.
struct Files {
    listing: Arc<Listing>,
    files: Vec<FileRef>,
    by_ino: HashMap<u64, usize>,
    /// Indices into `files` sorted by name (bytewise, as `strcmp`).
    by_name: Vec<usize>,
    /// Position of each file in `by_name`.
    name_pos: Vec<usize>,
    /// The listing's order is the order by name.
    sorted: bool,
}

impl Files {
    fn new(listing: Arc<Listing>, files: Vec<FileRef>) -> Files {
        let by_ino = files.iter().enumerate().map(|(i, f)| (f.ino, i)).collect();
        let mut by_name: Vec<usize> = (0..files.len()).collect();
        by_name.sort_by(|&a, &b| files[a].name.as_bytes().cmp(files[b].name.as_bytes()));
        let mut name_pos = vec![0; files.len()];
        for (pos, &i) in by_name.iter().enumerate() {
            name_pos[i] = pos;
        }
        let sorted = by_name.iter().enumerate().all(|(pos, &i)| pos == i);
        Files {
            listing,
            files,
            by_ino,
            by_name,
            name_pos,
            sorted,
        }
    }

    /// Position of file `i` in `order`.
    fn pos(&self, order: Order, i: usize) -> usize {
        match order {
            Order::Listing => i,
            Order::Name => self.name_pos[i],
        }
    }

    /// Index into `files` of the file at `pos` in `order`.
    fn index(&self, order: Order, pos: usize) -> usize {
        match order {
            Order::Listing => pos,
            Order::Name => self.by_name[pos],
        }
    }

    /// The file at `pos` in `order`.
    fn at(&self, order: Order, pos: usize) -> &FileRef {
        &self.files[self.index(order, pos)]
    }
}

/// What is known of the reader of one folder.
struct Stream {
    files: Arc<Files>,
    order: Order,
    /// The file opened last, and whether it has been read to its end.
    last: Option<(usize, Arc<AtomicBool>)>,
    /// Files opened in order so far, each after the one before was read to its end.
    run: usize,
    /// Positions in `order` whose URLs were asked for.
    signed: Option<(Order, Range<usize>)>,
    /// Signing requests not known to be done, with the positions each names: a fetch of a
    /// file waits for the one naming it, since a fetch that starts first would sign its file
    /// alone (a batch claims its files only once its task runs).
    signing: Vec<(Order, Range<usize>, Signing)>,
    /// Files fetched ahead, by index.
    parts: HashMap<usize, Part>,
    used: Instant,
}

impl Stream {
    fn new(files: Arc<Files>) -> Stream {
        Stream {
            files,
            order: Order::Listing,
            last: None,
            run: 0,
            signed: None,
            signing: Vec::new(),
            parts: HashMap::new(),
            used: Instant::now(),
        }
    }
}

/// A signing request under way, awaited by every fetch of a file it names.
type Signing = Shared<BoxFuture<'static, ()>>;

/// The pending signing request that names position `p` of `order`, if any.
fn naming(pending: &[(Order, Range<usize>, Signing)], order: Order, p: usize) -> Option<Signing> {
    pending
        .iter()
        .find(|(o, r, _)| *o == order && r.contains(&p))
        .map(|(_, _, s)| s.clone())
}

/// Where the previous open was, so a reader moving on to the next folder keeps its pace.
struct Last {
    folder: u64,
    run: usize,
    /// The file was the last of its folder in the order it was read in.
    at_end: bool,
    ended: Arc<AtomicBool>,
    opened: Instant,
}

#[derive(Default)]
struct State {
    streams: HashMap<u64, Stream>,
    last: Option<Last>,
    /// Files opened before in this mount. They are not fetched ahead: their reader has had
    /// them (the kernel may still hold their pages), and a repeated backup opens only the
    /// files that changed, which are new versions and so new inodes.
    seen: HashSet<u64>,
    /// A task is waiting to drop what nobody opened.
    sweeping: bool,
    /// The folder a reader by name was expected to move to from the one it was finishing.
    foreseen: Option<(u64, u64)>,
    /// The last move to another folder went where it was foreseen: the next folder's files
    /// are fetched before the reader gets there.
    moves_foreseen: bool,
}

/// What an open gets from read-ahead across files.
#[derive(Default)]
pub struct Opened {
    /// The start of the file, fetched before it was opened.
    pub head: Option<Part>,
    /// Its URL has been asked for (or is not needed): the open need not sign it.
    pub signed: bool,
}

/// Read-ahead across the files of the folders being read.
pub struct Ahead<R: Remote> {
    remote: Arc<R>,
    source: Arc<ByteSource<R>>,
    budget: Budget,
    state: Mutex<State>,
}

impl<R: Remote> Ahead<R> {
    /// Read-ahead over `source`, taking memory from `budget`.
    pub fn new(remote: Arc<R>, source: Arc<ByteSource<R>>, budget: Budget) -> Ahead<R> {
        Ahead {
            remote,
            source,
            budget,
            state: Mutex::default(),
        }
    }

    /// File `ino` of `folder`, whose current listing is `listing`, is being opened; `ended`
    /// will say whether it was read to its end; `folders` answers for the listings around. Signs ahead, starts fetching ahead, and
    /// returns what was fetched of this file; returns once a signing request naming this file
    /// is done, so the first read does not sign it again on its own.
    pub async fn opened(
        self: &Arc<Self>,
        folder: u64,
        ino: u64,
        listing: Arc<Listing>,
        ended: Arc<AtomicBool>,
        folders: &impl Folders,
    ) -> Opened {
        let (opened, signing) = {
            let Ok(mut st) = self.state.lock() else {
                return Opened::default();
            };
            self.plan(&mut st, folders, folder, ino, listing, ended)
        };
        if let Some(signing) = signing {
            signing.await;
        }
        opened
    }

    /// The bookkeeping of `opened`, under the lock: what to sign and fetch, and the signing
    /// request the open waits for (the one naming the opened file, unless it was fetched).
    fn plan(
        self: &Arc<Self>,
        st: &mut State,
        folders: &impl Folders,
        folder: u64,
        ino: u64,
        listing: Arc<Listing>,
        ended: Arc<AtomicBool>,
    ) -> (Opened, Option<Signing>) {
        let now = Instant::now();
        st.streams.retain(|_, s| now.duration_since(s.used) < IDLE);
        if !st.streams.contains_key(&folder) && st.streams.len() >= MAX_FOLDERS {
            let oldest = st
                .streams
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| *k);
            oldest.map(|k| st.streams.remove(&k));
        }
        let last = st.last.take();
        if st.seen.len() >= MAX_SEEN {
            st.seen.clear();
        }
        st.seen.insert(ino);
        let known = st
            .streams
            .get(&folder)
            .is_some_and(|s| Arc::ptr_eq(&s.files.listing, &listing));
        if !known {
            // New, or listed again: positions in an older listing mean nothing now.
            let f = folders.files(&listing);
            let stream = Stream::new(Arc::new(Files::new(listing, f)));
            st.streams.insert(folder, stream);
        }
        let Some(stream) = st.streams.get_mut(&folder) else {
            return (Opened::default(), None);
        };
        stream.used = now;
        let files = stream.files.clone();
        let Some(&idx) = files.by_ino.get(&ino) else {
            return (Opened::default(), None);
        };
        let head = stream.parts.remove(&idx);

        // Does this open continue the pattern, and in which order?
        let follows = |o: Order| {
            stream.last.as_ref().is_some_and(|(prev, done)| {
                done.load(Ordering::Relaxed) && files.pos(o, idx) == files.pos(o, *prev) + 1
            })
        };
        let next_folder = |o: Order| {
            stream.last.is_none()
                && files.pos(o, idx) == 0
                && last.as_ref().is_some_and(|l| {
                    l.folder != folder
                        && l.at_end
                        && l.run > 0
                        && l.ended.load(Ordering::Relaxed)
                        && now.duration_since(l.opened) < NEXT_FOLDER_WITHIN
                })
        };
        let other = match stream.order {
            Order::Listing => Order::Name,
            Order::Name => Order::Listing,
        };
        if let Some(o) = [stream.order, other].into_iter().find(|&o| follows(o)) {
            stream.run += 1;
            stream.order = o;
        } else if let Some(o) = [stream.order, other].into_iter().find(|&o| next_folder(o)) {
            stream.run = last.as_ref().map_or(0, |l| l.run) + 1;
            stream.order = o;
            let from = last.as_ref().map(|l| l.folder);
            st.moves_foreseen = st
                .foreseen
                .is_some_and(|f| Some(f) == from.map(|from| (from, folder)));
        } else {
            if stream.run > 0 {
                tracing::debug!(
                    folder,
                    dropped = stream.parts.len(),
                    "files no longer opened in order; read-ahead across files stops"
                );
            }
            stream.run = 0;
            stream.parts.clear();
        }
        let order = stream.order;
        let pos = files.pos(order, idx);
        // Files passed over will not be opened by this reader.
        stream.parts.retain(|&i, _| files.pos(order, i) > pos);
        stream.last = Some((idx, ended.clone()));
        st.last = Some(Last {
            folder,
            run: stream.run,
            at_end: pos + 1 == files.files.len(),
            ended,
            opened: now,
        });

        // Files fetched ahead from here: more while the pattern holds.
        let depth = match stream.run {
            0 => 0,
            run => (2usize << run.min(8)).min(MAX_FILES),
        };
        let n = files.files.len();
        let horizon = n.min(pos + 1 + depth);

        // Sign the next batches when the signed files ahead run low, so that every file
        // fetched ahead is in a batch (a fetch of an unsigned file would sign it alone).
        if self.remote.signs_in_batches() {
            let from = match &stream.signed {
                Some((o, r)) if *o == order && r.contains(&pos) => {
                    (r.end < horizon + SIGN_LOW).then_some((r.start, r.end))
                }
                _ => Some((pos, pos)),
            };
            if let Some((start, from)) = from {
                let want = horizon.saturating_sub(from).max(1);
                let to = (from + want.div_ceil(SIGN_AHEAD) * SIGN_AHEAD).min(n);
                self.sign(stream, from..to);
                stream.signed = Some((order, start..to));
            }
        }
        if depth > 0 {
            self.fetch(stream, pos + 1..horizon, &st.seen);
        }
        let asked = stream
            .signed
            .as_ref()
            .is_some_and(|(o, r)| *o == order && r.contains(&pos));
        let wait = match head {
            Some(_) => None,
            None => naming(&stream.signing, order, pos),
        };
        let opened = Opened {
            signed: head.is_some() || asked,
            head,
        };

        // At the end of a folder read by name, the reader moves on to the next folder of a
        // walk that reads each folder's files before its subfolders (rsync). Once such a move
        // has been foreseen right, the next folder's first files are fetched too.
        let spill = depth.saturating_sub(horizon - pos - 1);
        let by_name = order == Order::Name || files.sorted;
        let foreseen_here = st.foreseen.is_some_and(|(from, _)| from == folder);
        if by_name && depth > 0 && horizon == n && !foreseen_here {
            let next = self.next_with_files(folders, folder);
            st.foreseen = next.as_ref().map(|(to, _)| (folder, *to));
            if let Some((to, listing)) = next.filter(|_| st.moves_foreseen && spill > 0) {
                self.start_folder(st, folders, to, listing, spill);
            }
        }
        if st.streams.values().any(|s| !s.parts.is_empty()) && !st.sweeping {
            st.sweeping = true;
            self.sweep_later();
        }
        (opened, wait)
    }

    /// Asks for the URLs of the files at `positions` of the stream's order, in batches.
    fn sign(&self, stream: &mut Stream, positions: Range<usize>) {
        let sign: Vec<String> = positions
            .clone()
            .map(|p| stream.files.at(stream.order, p))
            .filter(|f| f.size != Some(0) && !self.source.starts_cached(&f.storage))
            .map(|f| f.storage.to_string())
            .collect();
        stream.signing.retain(|(_, _, s)| s.peek().is_none());
        if sign.is_empty() {
            return;
        }
        let remote = self.remote.clone();
        // Outlives the open that started it: a deadline of its own, as long as an operation's.
        let limit = crate::deadline::inherit();
        let signing = tokio::spawn(crate::deadline::detached(limit, async move {
            remote.prepare_many(&sign).await
        }))
        .map(|_| ())
        .boxed()
        .shared();
        stream.signing.push((stream.order, positions, signing));
    }

    /// Starts fetching the files at `positions` of the stream's order that are not fetched,
    /// cached or `seen`, as far as the folder's share and the budget allow.
    fn fetch(&self, stream: &mut Stream, positions: Range<usize>, seen: &HashSet<u64>) {
        let mut held: u64 = stream.parts.values().map(Part::bytes).sum();
        for p in positions {
            let i = stream.files.index(stream.order, p);
            let f = &stream.files.files[i];
            let Some(size) = f.size.filter(|&s| s > 0) else {
                continue;
            };
            if stream.parts.contains_key(&i)
                || seen.contains(&f.ino)
                || self.source.starts_cached(&f.storage)
            {
                continue;
            }
            let len = if size <= MAX_PART { size } else { FIRST_WINDOW };
            if held + len > MAX_BYTES {
                break;
            }
            let Some(permit) = self.budget.try_take(len) else {
                break;
            };
            held += len;
            let part = Part::fetch(
                self.source.clone(),
                f.storage.clone(),
                size,
                (0, len),
                naming(&stream.signing, stream.order, p),
                permit,
            );
            stream.parts.insert(i, part);
        }
    }

    /// The folder after `folder` in rsync's walk that holds files (a few folders on at most),
    /// with its listing.
    fn next_with_files(
        &self,
        folders: &impl Folders,
        mut folder: u64,
    ) -> Option<(u64, Arc<Listing>)> {
        for _ in 0..NEXT_FOLDER_HOPS {
            let (next, listing) = folders.next_by_name(folder)?;
            if listing.entries.iter().any(|(_, _, is_dir)| !is_dir) {
                return Some((next, listing));
            }
            folder = next;
        }
        None
    }

    /// Signs and fetches the first `count` files (by name) of `folder`, which the reader is
    /// expected to open next, in a stream of its own that its first open takes over.
    fn start_folder(
        &self,
        st: &mut State,
        folders: &impl Folders,
        folder: u64,
        listing: Arc<Listing>,
        count: usize,
    ) {
        if st.streams.contains_key(&folder) {
            return;
        }
        let files = folders.files(&listing);
        let mut stream = Stream::new(Arc::new(Files::new(listing, files)));
        stream.order = Order::Name;
        let n = stream.files.files.len();
        if self.remote.signs_in_batches() {
            let to = n.min(count.div_ceil(SIGN_AHEAD).max(1) * SIGN_AHEAD);
            self.sign(&mut stream, 0..to);
            stream.signed = Some((Order::Name, 0..to));
        }
        self.fetch(&mut stream, 0..n.min(count), &st.seen);
        tracing::trace!(
            folder,
            files = stream.parts.len(),
            "fetching ahead into the next folder"
        );
        st.streams.insert(folder, stream);
    }

    /// Drops, a while from now, what folders nobody reads any more hold; again while some
    /// folder still holds files fetched ahead.
    fn sweep_later(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(IDLE).await;
                let Some(ahead) = weak.upgrade() else { return };
                let Ok(mut st) = ahead.state.lock() else {
                    return;
                };
                let now = Instant::now();
                st.streams.retain(|_, s| now.duration_since(s.used) < IDLE);
                if st.streams.values().all(|s| s.parts.is_empty()) {
                    st.sweeping = false;
                    return;
                }
            }
        });
    }

    /// Files fetched ahead and not opened yet, and their bytes.
    #[cfg(test)]
    pub fn held(&self) -> (usize, u64) {
        self.state.lock().map_or((0, 0), |st| {
            st.streams
                .values()
                .flat_map(|s| s.parts.values())
                .fold((0, 0), |(n, b), p| (n + 1, b + p.bytes()))
        })
    }
}
