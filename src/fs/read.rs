//! Where file bytes come from: block by block, the disk cache when it holds the block, the
//! service otherwise. Whole blocks fetched from the service are written to the disk cache in
//! the background (before the read is answered, for pinned objects).

use crate::api::{ApiError, Remote};
use crate::cache::disk::{block_len, DiskCache, BLOCK};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;

/// Reads object ranges through the optional disk cache.
pub struct ByteSource<R: Remote> {
    remote: Arc<R>,
    disk: Option<Arc<DiskCache>>,
}

impl<R: Remote> ByteSource<R> {
    /// A source over `remote`, caching on `disk` when given.
    pub fn new(remote: Arc<R>, disk: Option<Arc<DiskCache>>) -> ByteSource<R> {
        ByteSource { remote, disk }
    }

    /// Whether bytes read are kept on disk.
    pub fn caches_on_disk(&self) -> bool {
        self.disk.is_some()
    }

    /// Whether the disk cache holds the start of `storage` (then a signed URL is likely not
    /// needed at all).
    pub fn starts_cached(&self, storage: &str) -> bool {
        self.disk.as_ref().is_some_and(|d| d.contains(storage, 0))
    }

    /// Exactly `len` bytes at `offset` of `storage`, an object of `size` bytes. Blocks on
    /// disk are never fetched again; only the runs of missing blocks go to the service. For a
    /// pinned object those runs are widened to whole blocks, and the read returns once they
    /// are on disk, so reading a pinned file through once caches all of it, last short block
    /// included, whatever sizes and offsets the kernel reads at.
    pub async fn read(
        &self,
        storage: &str,
        size: u64,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, ApiError> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        let Some(disk) = &self.disk else {
            crate::stats::cache_read(0, len);
            return self.remote.read(storage, size, offset, len).await;
        };
        let end = offset + len;
        let first = offset / BLOCK;
        let on_disk = from_disk(disk.clone(), storage, size, first, (end - 1) / BLOCK).await;
        let whole = disk.is_pinned(storage);
        let mut pieces: Vec<Bytes> = Vec::new();
        let mut fetched = 0;
        let mut b = first;
        while b * BLOCK < end {
            if let Some(block) = on_disk.get((b - first) as usize).cloned().flatten() {
                let from = offset.max(b * BLOCK) - b * BLOCK;
                let to = end.min(b * BLOCK + block.len() as u64) - b * BLOCK;
                pieces.push(block.slice(from as usize..to as usize));
                b += 1;
                continue;
            }
            // A run of missing blocks, fetched in one request.
            let mut run_end = b + 1;
            while run_end * BLOCK < end
                && on_disk
                    .get((run_end - first) as usize)
                    .is_some_and(Option::is_none)
            {
                run_end += 1;
            }
            let (from, to) = if whole {
                (b * BLOCK, size.min(run_end * BLOCK))
            } else {
                (offset.max(b * BLOCK), end.min(run_end * BLOCK))
            };
            tracing::trace!(from, to, pinned = whole, "fetching missing blocks");
            let data = self.remote.read(storage, size, from, to - from).await?;
            if data.len() as u64 != to - from {
                return Err(ApiError::ShortBody {
                    expected: to - from,
                    got: data.len() as u64,
                });
            }
            let written = keep_blocks(disk.clone(), storage, size, from, data.clone());
            if whole {
                // Pinned: once the read is answered its bytes are on disk, so the pin command
                // can check completeness right after reading.
                let _ = written.await;
            }
            let (lo, hi) = (offset.max(from) - from, end.min(to) - from);
            fetched += hi - lo;
            pieces.push(data.slice(lo as usize..hi as usize));
            b = run_end;
        }
        crate::stats::cache_read(len.saturating_sub(fetched), fetched);
        if pieces.len() == 1 {
            return Ok(pieces.remove(0));
        }
        let mut out = BytesMut::with_capacity(len as usize);
        for p in pieces {
            out.extend_from_slice(&p);
        }
        Ok(out.freeze())
    }
}

/// Blocks `first..=last` of `storage` from disk, each `None` when missing or of the wrong
/// length.
async fn from_disk(
    disk: Arc<DiskCache>,
    storage: &str,
    size: u64,
    first: u64,
    last: u64,
) -> Vec<Option<Bytes>> {
    let storage = storage.to_string();
    tokio::task::spawn_blocking(move || {
        (first..=last)
            .map(|b| {
                disk.get(&storage, b)
                    .filter(|block| block.len() as u64 == block_len(size, b))
                    .map(Bytes::from)
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

/// Writes every whole block inside `data` (read at `offset`) to the disk cache, off the
/// reader's path.
fn keep_blocks(
    disk: Arc<DiskCache>,
    storage: &str,
    size: u64,
    offset: u64,
    data: Bytes,
) -> tokio::task::JoinHandle<()> {
    let storage = storage.to_string();
    tokio::task::spawn_blocking(move || {
        let end = offset + data.len() as u64;
        let mut b = offset.div_ceil(BLOCK);
        while b * BLOCK < end {
            let (start, stop) = (b * BLOCK, b * BLOCK + block_len(size, b));
            if stop > end || start == stop {
                break;
            }
            let slice = &data[(start - offset) as usize..(stop - offset) as usize];
            disk.put(&storage, b, slice);
            b += 1;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::pins::Pin;
    use crate::fs::prefetch::tests::{counting, expect, STORAGE};

    #[tokio::test]
    async fn only_missing_blocks_are_fetched_and_pinned_reads_fill_whole_blocks() {
        let d = tempfile::tempdir().unwrap();
        let disk = Arc::new(DiskCache::open(d.path(), 1 << 30).unwrap());
        let size = 3 * BLOCK + 100;
        let remote = counting(size);
        let source = ByteSource::new(remote.clone(), Some(disk.clone()));
        let reads = || remote.reads_of(STORAGE);

        // Unpinned, a read inside a block is fetched exactly, and caches nothing.
        let b = source.read("urn:x", size, 10, 4096).await.unwrap();
        assert_eq!(&b[..], &expect(10, 4096)[..]);
        assert_eq!(reads(), vec![(10, 4096)]);

        // Pinned, small reads fetch their whole blocks, the short last one included, and are
        // on disk when the read returns.
        disk.pin("urn:x", Pin::new("x", "i", size)).unwrap();
        let b = source.read("urn:x", size, 3 * BLOCK + 5, 50).await.unwrap();
        assert_eq!(&b[..], &expect(3 * BLOCK + 5, 50)[..]);
        let b = source.read("urn:x", size, BLOCK + 7, 10).await.unwrap();
        assert_eq!(&b[..], &expect(BLOCK + 7, 10)[..]);
        assert_eq!(reads()[1..], [(3 * BLOCK, 100), (BLOCK, BLOCK)]);
        assert_eq!(disk.cached("urn:x", size), BLOCK + 100);

        // A range over cached and missing blocks fetches only the missing ones.
        let b = source.read("urn:x", size, 5, size - 5).await.unwrap();
        assert!(b[..] == expect(5, size - 5)[..]);
        assert_eq!(reads()[3..], [(0, BLOCK), (2 * BLOCK, BLOCK)]);
        assert_eq!(disk.cached("urn:x", size), size);

        // Everything on disk: no request at all.
        let b = source.read("urn:x", size, 0, size).await.unwrap();
        assert!(b[..] == expect(0, size)[..]);
        assert_eq!(reads().len(), 5);
    }
}
