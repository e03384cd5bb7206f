//! Read-ahead for one open file. Sequential reading is detected and answered from parts
//! fetched ahead of the reader, several at a time, in a window that doubles while the reader
//! keeps up; random reads are fetched exactly. All read-ahead memory comes from one global
//! budget: when it is spent, read-ahead waits (the reader falls back to exact reads) instead of
//! growing.

use super::read::ByteSource;
use crate::api::{ApiError, Remote};
use crate::cache::disk::BLOCK;
use bytes::{Bytes, BytesMut};
use futures_util::future::{BoxFuture, FutureExt, Shared};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Read-ahead after the first sequential read: one round trip's worth on a fast link without
/// wasting much on files that are only sniffed (file managers read the first few KiB).
pub(super) const FIRST_WINDOW: u64 = 2 << 20;
/// Largest read-ahead per file: at 20 ms round trips this keeps ~3 GiB/s in flight, beyond
/// anything one file needs, while eight readers stay within the default budget.
const MAX_WINDOW: u64 = 64 << 20;
/// Parts fetched per request, at most: large enough to amortise a round trip, small enough
/// that a full window is split over 16 connections and the next part arrives soon.
pub(super) const MAX_PART: u64 = 4 << 20;
/// A read this far behind the furthest one so far still counts as sequential: readers that
/// re-read a header, and the kernel, which splits one large read into 1 MiB requests and
/// sends them in whatever order they come (a 4 MiB read plus its read-ahead was seen arriving 2 MiB
/// out of order; treating that as a random jump dropped every part in flight).
const BACKWARD_SLACK: u64 = 8 << 20;
/// How far behind the furthest read consumed parts are kept for reads that arrive late.
const KEEP_BEHIND: u64 = 4 << 20;

/// The global read-ahead memory budget, in bytes.
#[derive(Clone)]
pub struct Budget(Arc<Semaphore>);

impl Budget {
    /// A budget of `bytes`.
    pub fn new(bytes: u64) -> Budget {
        let permits = usize::try_from(bytes)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Budget(Arc::new(Semaphore::new(permits)))
    }

    /// A reservation of `bytes`, or `None` when the budget has not that much left.
    pub fn try_take(&self, bytes: u64) -> Option<OwnedSemaphorePermit> {
        self.0
            .clone()
            .try_acquire_many_owned(u32::try_from(bytes).ok()?)
            .ok()
    }

    /// Bytes not currently reserved.
    pub fn available(&self) -> u64 {
        self.0.available_permits() as u64
    }
}

type PartData = Shared<BoxFuture<'static, Result<Bytes, ApiError>>>;

/// A range fetched ahead; its memory reservation lasts as long as it does.
pub struct Part {
    start: u64,
    end: u64,
    data: PartData,
    abort: tokio::task::AbortHandle,
    _permit: OwnedSemaphorePermit,
}

impl Part {
    /// Starts fetching `start..end` of `storage` (an object of `size` bytes) once `after` is
    /// done, holding `permit` of the read-ahead budget while the part is kept.
    pub fn fetch<R: Remote>(
        source: Arc<ByteSource<R>>,
        storage: Arc<str>,
        size: u64,
        (start, end): (u64, u64),
        after: Option<Shared<BoxFuture<'static, ()>>>,
        permit: OwnedSemaphorePermit,
    ) -> Part {
        // A part outlives the read that started it: its fetch gets a deadline of its own, as
        // long as an operation's, from the moment it starts.
        let limit = crate::deadline::inherit();
        let task = tokio::spawn(async move {
            if let Some(after) = after {
                after.await;
            }
            let read = source.read(&storage, size, start, end - start);
            crate::deadline::detached(limit, read)
                .await
                .unwrap_or_else(|| {
                    Err(ApiError::Timeout(
                        "a read-ahead part took longer than the operation deadline".into(),
                    ))
                })
        });
        let abort = task.abort_handle();
        let data = task
            .map(|r| {
                r.unwrap_or_else(|e| Err(ApiError::Network(format!("read-ahead task ended: {e}"))))
            })
            .boxed()
            .shared();
        Part {
            start,
            end,
            data,
            abort,
            _permit: permit,
        }
    }

    /// Bytes it holds (or will).
    pub fn bytes(&self) -> u64 {
        self.end - self.start
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        // Nobody will read it any more: stop the download, if it is still running.
        self.abort.abort();
    }
}

#[derive(Default)]
struct State {
    parts: VecDeque<Part>,
    /// End of the previous read.
    next: u64,
    /// Current read-ahead (0: not sequential).
    window: u64,
    /// End of what has been scheduled.
    scheduled: u64,
}

/// An open file: one pinned version, read through read-ahead.
pub struct OpenFile<R: Remote> {
    source: Arc<ByteSource<R>>,
    storage: Arc<str>,
    size: u64,
    budget: Budget,
    state: tokio::sync::Mutex<State>,
    /// Set once a read reaches the end (shared with read-ahead across files, which asks it of
    /// the file opened before the next one, after it is closed).
    ended: Arc<AtomicBool>,
}

impl<R: Remote> OpenFile<R> {
    /// An open file of `size` bytes stored at `storage`; `head`, fetched before it was opened,
    /// is the start of its read-ahead.
    pub fn new(
        source: Arc<ByteSource<R>>,
        storage: &str,
        size: u64,
        budget: Budget,
        head: Option<Part>,
        ended: Arc<AtomicBool>,
    ) -> OpenFile<R> {
        let mut state = State::default();
        if let Some(head) = head.filter(|p| p.start == 0 && p.end <= size) {
            // As if the first read had started read-ahead: the next one is served from it.
            state.window = FIRST_WINDOW;
            state.scheduled = head.end;
            state.parts.push_back(head);
        }
        OpenFile {
            source,
            storage: storage.into(),
            size,
            budget,
            state: tokio::sync::Mutex::new(state),
            ended,
        }
    }

    /// Size of the pinned version.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Up to `len` bytes at `offset` (fewer only at the end of the file).
    pub async fn read(&self, offset: u64, len: u64) -> Result<Bytes, ApiError> {
        if offset >= self.size || len == 0 {
            return Ok(Bytes::new());
        }
        let end = self.size.min(offset.saturating_add(len));
        if end == self.size {
            self.ended.store(true, Ordering::Relaxed);
        }
        let mut st = self.state.lock().await;
        let sequential = (offset == 0 && st.next == 0)
            || (offset + BACKWARD_SLACK >= st.next
                && offset <= st.next + st.window.max(FIRST_WINDOW));
        if !sequential {
            st.parts.clear();
            st.window = 0;
            st.next = end;
            st.scheduled = end;
            drop(st);
            return self
                .source
                .read(&self.storage, self.size, offset, end - offset)
                .await;
        }
        // Parts just behind the furthest read are kept a little: the kernel's requests for
        // them may still arrive.
        let keep_from = st.next.max(end).saturating_sub(KEEP_BEHIND);
        while st.parts.front().is_some_and(|p| p.end <= keep_from) {
            st.parts.pop_front();
        }
        let ahead_hit = st.parts.front().is_some_and(|p| p.start <= offset);
        let first = st.window == 0;
        st.window = match st.window {
            0 => FIRST_WINDOW,
            w if ahead_hit => (w * 2).min(MAX_WINDOW),
            w => w,
        };
        self.schedule(&mut st, end);
        // Reads arriving out of order must not pull the position back.
        st.next = st.next.max(end);
        if first {
            // The first read of a run is answered exactly, so time to first byte is one round
            // trip for the bytes asked for, not for a whole part.
            drop(st);
            return self
                .source
                .read(&self.storage, self.size, offset, end - offset)
                .await;
        }
        self.collect(&mut st, offset, end).await
    }

    /// Starts fetching parts up to `end + window`, as far as the budget allows. Parts start on
    /// block boundaries so they also fill the disk cache.
    fn schedule(&self, st: &mut State, end: u64) {
        let limit = self.size.min(end + st.window);
        let mut start = st.scheduled.max(end);
        if st.parts.is_empty() && start < limit && self.source.caches_on_disk() {
            // Re-fetch the head of the first block so the whole block reaches the disk cache.
            start = start / BLOCK * BLOCK;
        }
        let part = (st.window / 4).clamp(BLOCK, MAX_PART);
        while start < limit {
            let stop = self
                .size
                .min((start + part) / BLOCK * BLOCK)
                .max(start + 1)
                .min(self.size);
            let Some(permit) = self.budget.try_take(stop - start) else {
                tracing::debug!(
                    available = self.budget.available(),
                    "read-ahead budget spent; waiting"
                );
                break;
            };
            st.parts.push_back(Part::fetch(
                self.source.clone(),
                self.storage.clone(),
                self.size,
                (start, stop),
                None,
                permit,
            ));
            start = stop;
        }
        st.scheduled = st.scheduled.max(start);
    }

    /// Bytes `offset..end` from the parts that cover them, and exact reads for any gap.
    async fn collect(&self, st: &mut State, offset: u64, end: u64) -> Result<Bytes, ApiError> {
        // The common case, one part covering the whole read, is answered without a copy.
        if let Some(p) = st.parts.iter().find(|p| p.start <= offset && end <= p.end) {
            let (start, data) = (p.start, p.data.clone());
            if let Ok(bytes) = data.await {
                if let Some(slice) = bytes.get((offset - start) as usize..(end - start) as usize) {
                    return Ok(bytes.slice_ref(slice));
                }
            }
        }
        let mut out = BytesMut::with_capacity((end - offset) as usize);
        let mut pos = offset;
        while pos < end {
            let covering = st.parts.iter().position(|p| p.start <= pos && pos < p.end);
            match covering {
                Some(i) => {
                    let (p_start, p_end, data) =
                        (st.parts[i].start, st.parts[i].end, st.parts[i].data.clone());
                    let bytes = match data.await {
                        Ok(b) => b,
                        Err(e) => {
                            st.parts.remove(i);
                            return Err(e);
                        }
                    };
                    let stop = end.min(p_end);
                    let slice = bytes
                        .get((pos - p_start) as usize..(stop - p_start) as usize)
                        .ok_or(ApiError::ShortBody {
                            expected: stop - p_start,
                            got: bytes.len() as u64,
                        })?;
                    out.extend_from_slice(slice);
                    pos = stop;
                }
                None => {
                    let next_part = st.parts.iter().map(|p| p.start).filter(|&s| s > pos).min();
                    let stop = end.min(next_part.unwrap_or(end));
                    let b = self
                        .source
                        .read(&self.storage, self.size, pos, stop - pos)
                        .await?;
                    out.extend_from_slice(&b);
                    pos = stop;
                }
            }
        }
        Ok(out.freeze())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::testing::memory::pattern;
    use crate::testing::{MemoryRemote, Op};

    /// The storage id every test here reads.
    pub(crate) const STORAGE: &str = "urn:x";

    /// An account holding one pattern object of `size` bytes at `STORAGE`, whose reads take a
    /// couple of milliseconds, so read-ahead requests overlap as on a network.
    pub(crate) fn counting(size: u64) -> Arc<MemoryRemote> {
        let remote = MemoryRemote::new();
        remote.put_pattern(STORAGE, size);
        remote.set_latency(Op::Read, std::time::Duration::from_millis(2));
        Arc::new(remote)
    }

    /// The bytes `offset..offset + len` of the object.
    pub(crate) fn expect(offset: u64, len: u64) -> Vec<u8> {
        pattern(offset, len)
    }

    fn file(size: u64, budget: u64) -> (Arc<MemoryRemote>, OpenFile<MemoryRemote>) {
        let remote = counting(size);
        let source = Arc::new(ByteSource::new(remote.clone(), None));
        (
            remote,
            OpenFile::new(
                source,
                STORAGE,
                size,
                Budget::new(budget),
                None,
                Arc::default(),
            ),
        )
    }

    #[tokio::test]
    async fn sequential_reads_become_few_large_parallel_requests() {
        let size = 100 << 20;
        let (remote, f) = file(size, 512 << 20);
        let mut pos = 0;
        while pos < size {
            let b = f.read(pos, 128 << 10).await.unwrap();
            assert_eq!(&b[..], &expect(pos, b.len() as u64)[..], "at {pos}");
            pos += b.len() as u64;
        }
        let reads = remote.reads_of(STORAGE);
        assert!(
            reads.len() < 40,
            "{} requests for 800 kernel reads",
            reads.len()
        );
        assert!(
            reads.iter().any(|r| r.1 == MAX_PART),
            "the window grew to full parts"
        );
        assert!(
            remote.max_in_flight(Op::Read) > 1,
            "parts are fetched in parallel"
        );
        assert!(f.read(size, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn reads_the_kernel_reorders_keep_the_parts_in_flight() {
        let size = 64 << 20;
        let (remote, f) = file(size, 512 << 20);
        // One 4 MiB read at a time, split into 1 MiB requests that arrive out of order.
        for chunk in 0..(size >> 22) {
            for k in [1u64, 3, 0, 2] {
                let pos = (chunk << 22) + (k << 20);
                let b = f.read(pos, 1 << 20).await.unwrap();
                assert!(b[..] == expect(pos, 1 << 20)[..], "at {pos}");
            }
        }
        let fetched: u64 = remote.reads_of(STORAGE).iter().map(|r| r.1).sum();
        assert!(
            fetched <= size + (1 << 20),
            "{fetched} bytes fetched for {size}: parts were dropped and fetched again"
        );
    }

    #[tokio::test]
    async fn a_small_file_costs_one_request() {
        let (remote, f) = file(4285, 512 << 20);
        assert_eq!(f.read(0, 8192).await.unwrap().len(), 4285);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(remote.reads_of(STORAGE).len(), 1);
    }

    #[tokio::test]
    async fn random_reads_are_exact() {
        let (remote, f) = file(1 << 30, 512 << 20);
        for off in [900_000_000u64, 12_345, 500_000_000, 77] {
            let b = f.read(off, 4096).await.unwrap();
            assert_eq!(&b[..], &expect(off, 4096)[..]);
        }
        let reads = remote.reads_of(STORAGE);
        assert!(reads.iter().skip(1).all(|r| r.1 == 4096), "{reads:?}");
    }

    #[tokio::test]
    async fn a_spent_budget_slows_read_ahead_but_never_breaks_reads() {
        let size = 20 << 20;
        let (_remote, f) = file(size, 1 << 20);
        let mut pos = 0;
        while pos < size {
            let b = f.read(pos, 128 << 10).await.unwrap();
            assert_eq!(&b[..], &expect(pos, b.len() as u64)[..]);
            pos += b.len() as u64;
        }
        assert!(f.budget.available() <= 1 << 20);
        drop(f);
    }

    #[tokio::test]
    async fn the_budget_is_returned_when_files_close() {
        let budget = Budget::new(64 << 20);
        let remote = counting(200 << 20);
        let source = Arc::new(ByteSource::new(remote.clone(), None));
        let f = OpenFile::new(
            source,
            STORAGE,
            200 << 20,
            budget.clone(),
            None,
            Arc::default(),
        );
        for i in 0..8u64 {
            f.read(i * (128 << 10), 128 << 10).await.unwrap();
        }
        assert!(budget.available() < 64 << 20, "read-ahead holds memory");
        drop(f);
        assert_eq!(budget.available(), 64 << 20);
    }
}
