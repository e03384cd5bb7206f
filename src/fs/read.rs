//! Where file bytes come from: the disk cache when it holds every block of a range, the
//! service otherwise. Whole blocks fetched from the service are written to the disk cache in
//! the background.

use crate::api::{ApiError, Remote};
use crate::cache::disk::{DiskCache, BLOCK};
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

    /// The remote (for warming signed URLs).
    pub fn remote(&self) -> &Arc<R> {
        &self.remote
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

    /// Exactly `len` bytes at `offset` of `storage`, an object of `size` bytes.
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
        if let Some(disk) = &self.disk {
            if let Some(b) = from_disk(disk.clone(), storage, size, offset, len).await {
                return Ok(b);
            }
        }
        let data = self.remote.read(storage, offset, len).await?;
        if let Some(disk) = &self.disk {
            keep_blocks(disk.clone(), storage, size, offset, data.clone());
        }
        Ok(data)
    }
}

/// Length of block `b` of an object of `size` bytes.
fn block_len(size: u64, b: u64) -> u64 {
    BLOCK.min(size.saturating_sub(b * BLOCK))
}

async fn from_disk(
    disk: Arc<DiskCache>,
    storage: &str,
    size: u64,
    offset: u64,
    len: u64,
) -> Option<Bytes> {
    let storage = storage.to_string();
    tokio::task::spawn_blocking(move || {
        let (first, last) = (offset / BLOCK, (offset + len - 1) / BLOCK);
        let mut out = BytesMut::with_capacity(len as usize);
        for b in first..=last {
            let block = disk.get(&storage, b)?;
            if block.len() as u64 != block_len(size, b) {
                return None;
            }
            let from = offset.saturating_sub(b * BLOCK) as usize;
            let to = ((offset + len - b * BLOCK) as usize).min(block.len());
            out.extend_from_slice(block.get(from..to)?);
        }
        (out.len() as u64 == len).then(|| out.freeze())
    })
    .await
    .ok()
    .flatten()
}

/// Writes every whole block inside `data` (read at `offset`) to the disk cache, off the
/// reader's path.
fn keep_blocks(disk: Arc<DiskCache>, storage: &str, size: u64, offset: u64, data: Bytes) {
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
    });
}
