//! Multipart upload of a staged file into a storage object, as OSS's direct-to-S3 flow has it:
//! part URLs signed 25 at a time under one `uploadKey`, parts `PUT` in parallel straight from
//! the staging file (memory: parts in flight × part size), a refused (expired) URL signed
//! again under the same key, and the completion checked by storage against every part's ETag.
//! Progress is handed to the caller after each batch, so a later mount continues the upload
//! instead of starting over.

use super::entry::Upload;
use crate::api::{ApiError, Remote};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The smallest part: S3 refuses smaller ones but the last (5 MiB), and a bigger part halves
/// the requests per byte at little cost in memory.
pub const MIN_PART: u64 = 8 << 20;
/// S3's most parts per upload.
pub const MAX_PARTS: u64 = 10_000;
/// Part URLs one signing request may ask for.
pub const URLS_PER_REQUEST: u32 = 25;
/// Parts in flight at once per upload: enough to fill a link whose connections are paced
/// (16 × 50 MiB/s measured 3.85x one stream, 8 measured 2.99x; BENCHMARKS.md), and the
/// upload's memory bound (this many parts).
pub const PARALLEL_PARTS: usize = 16;
/// Times one part's URL is signed again when storage refuses it (expired while waiting).
const RESIGNS: u32 = 4;

/// The part size for `size` bytes: `MIN_PART`, or more (whole MiB) so `MAX_PARTS` cover it.
pub fn part_size(size: u64) -> u64 {
    const MIB: u64 = 1 << 20;
    let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    needed.max(MIN_PART)
}

/// How many parts `size` bytes take at `part` bytes each (one, empty, for an empty file).
pub fn parts(size: u64, part: u64) -> u32 {
    u32::try_from(size.div_ceil(part).max(1)).unwrap_or(u32::MAX)
}

/// How far an upload is, for `user.aps.sync` and `apsfs status`.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes stored.
    pub done: AtomicU64,
    /// Bytes in all.
    pub total: AtomicU64,
}

/// Uploads `size` bytes of `file` into `upload.storage`, continuing from the parts `upload`
/// already holds; `save` is called with the state after each batch of parts is stored, and
/// after completion. On return `upload.completed` is true.
pub async fn upload<R: Remote>(
    remote: &R,
    file: Arc<File>,
    size: u64,
    upload: &mut Upload,
    progress: &Progress,
    save: &(dyn Fn(&Upload) + Sync),
) -> Result<(), ApiError> {
    if upload.completed {
        return Ok(());
    }
    if upload.part_size == 0 {
        upload.part_size = part_size(size);
    }
    let part = upload.part_size;
    let total = parts(size, part);
    progress.total.store(size, Ordering::Relaxed);
    progress.done.store(
        (upload.etags.len() as u64 * part).min(size),
        Ordering::Relaxed,
    );
    while (upload.etags.len() as u32) < total {
        let first = upload.etags.len() as u32 + 1;
        let count = (total - first + 1).min(URLS_PER_REQUEST);
        let signed = match remote
            .upload_urls(&upload.storage, first, count, upload.key.as_deref())
            .await
        {
            // The upload this key named is gone (expired after a long outage): start it
            // again into the same object.
            Err(ApiError::Refused {
                status: 400 | 404,
                detail,
            }) if upload.key.is_some() => {
                tracing::info!(storage = %upload.storage, %detail, "upload key refused; starting the upload again");
                upload.key = None;
                upload.etags.clear();
                progress.done.store(0, Ordering::Relaxed);
                continue;
            }
            other => other?,
        };
        if signed.urls.len() != count as usize {
            return Err(ApiError::Decode(format!(
                "asked for {count} part URLs, got {}",
                signed.urls.len()
            )));
        }
        upload.key = Some(signed.upload_key.clone());
        let key = signed.upload_key;
        let jobs = signed.urls.into_iter().enumerate().map(|(i, url)| {
            let n = first + i as u32;
            let (file, key, storage) = (file.clone(), key.clone(), upload.storage.clone());
            async move {
                let etag = put(remote, &file, size, part, n, url, &storage, &key).await?;
                progress
                    .done
                    .fetch_add(part_len(size, part, n), Ordering::Relaxed);
                Ok::<_, ApiError>(etag)
            }
        });
        let etags: Vec<String> = stream::iter(jobs)
            .buffered(PARALLEL_PARTS)
            .try_collect()
            .await?;
        upload.etags.extend(etags);
        save(upload);
    }
    let key = upload.key.clone().unwrap_or_default();
    let stored = match remote
        .complete_upload(&upload.storage, &key, size, &upload.etags)
        .await
    {
        Ok(stored) => stored,
        // The completion may have been made with its answer lost (it is not sent again, and
        // completing again is refused): storage then holds the object.
        Err(e) => match remote.object_size(&upload.storage).await {
            Ok(stored) if stored == size => {
                tracing::info!(storage = %upload.storage, "upload found complete after a failed completion");
                stored
            }
            _ => {
                let gone = matches!(
                    e,
                    ApiError::Refused {
                        status: 400 | 404,
                        ..
                    } | ApiError::NotFound(_)
                );
                if gone {
                    // The upload session is over: the next attempt starts it again.
                    upload.key = None;
                    upload.etags.clear();
                    save(upload);
                }
                return Err(e);
            }
        },
    };
    if stored != size {
        return Err(ApiError::SizeMismatch {
            listed: size,
            stored,
        });
    }
    upload.completed = true;
    save(upload);
    Ok(())
}

/// Bytes in part `n` (1-based).
fn part_len(size: u64, part: u64, n: u32) -> u64 {
    let start = (u64::from(n) - 1) * part;
    size.saturating_sub(start).min(part)
}

/// Stores part `n` through `url`, signing it again under `key` when storage refuses the URL.
#[allow(clippy::too_many_arguments)]
async fn put<R: Remote>(
    remote: &R,
    file: &Arc<File>,
    size: u64,
    part: u64,
    n: u32,
    mut url: String,
    storage: &str,
    key: &str,
) -> Result<String, ApiError> {
    let bytes = read_part(
        file.clone(),
        (u64::from(n) - 1) * part,
        part_len(size, part, n),
    )
    .await?;
    let mut resigned = 0;
    loop {
        match remote.put_part(&url, bytes.clone()).await {
            Err(ApiError::Forbidden(detail)) if resigned < RESIGNS => {
                tracing::debug!(part = n, %detail, "part URL refused; signing it again");
                resigned += 1;
                let again = remote.upload_urls(storage, n, 1, Some(key)).await?;
                url = again
                    .urls
                    .into_iter()
                    .next()
                    .ok_or_else(|| ApiError::Decode("no part URL in the answer".into()))?;
            }
            other => return other,
        }
    }
}

/// `len` bytes of the staging file at `offset`, read off the async threads.
async fn read_part(file: Arc<File>, offset: u64, len: u64) -> Result<Bytes, ApiError> {
    let read = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; len as usize];
        file.read_exact_at(&mut buf, offset)
            .map(|()| Bytes::from(buf))
    })
    .await;
    match read {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => Err(ApiError::Network(format!("reading the staged file: {e}"))),
        Err(e) => Err(ApiError::Network(format!("reading the staged file: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory::{MemoryRemote, TOP};
    use crate::testing::op::Op;
    use std::io::Write;
    use std::sync::Mutex;

    fn staged(bytes: &[u8]) -> (tempfile::NamedTempFile, Arc<File>) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        let file = Arc::new(File::open(f.path()).unwrap());
        (f, file)
    }

    #[test]
    fn part_sizes_cover_any_file_in_ten_thousand_parts() {
        assert_eq!(part_size(0), MIN_PART);
        assert_eq!(part_size(1 << 30), MIN_PART);
        let huge = 200u64 << 30;
        let p = part_size(huge);
        assert!(parts(huge, p) as u64 <= MAX_PARTS);
        assert_eq!(p % (1 << 20), 0);
        assert_eq!(parts(0, MIN_PART), 1);
        assert_eq!(parts(MIN_PART + 1, MIN_PART), 2);
    }

    #[tokio::test]
    async fn many_parts_in_batches_of_25_under_one_key_and_the_bytes_arrive_whole() {
        let m = MemoryRemote::with_project();
        m.set_min_part(4);
        let storage = m.create_storage("p", TOP, "a.bin").await.unwrap();
        let data: Vec<u8> = (0..=255u8).cycle().take(60 * 4 + 3).collect();
        let (_keep, file) = staged(&data);
        let mut up = Upload {
            storage: storage.clone(),
            part_size: 4,
            ..Upload::default()
        };
        let saved = Mutex::new(Vec::new());
        let progress = Progress::default();
        upload(&m, file, data.len() as u64, &mut up, &progress, &|u| {
            saved.lock().unwrap().push(u.etags.len())
        })
        .await
        .unwrap();
        assert!(up.completed);
        assert_eq!(m.requests(Op::UploadUrls), 3, "61 parts: 25 + 25 + 11");
        assert_eq!(m.requests(Op::PutPart), 61);
        assert_eq!(m.object(&storage).unwrap(), data);
        assert_eq!(*saved.lock().unwrap(), vec![25, 50, 61, 61]);
        assert_eq!(progress.done.load(Ordering::Relaxed), data.len() as u64);
    }

    #[tokio::test]
    async fn a_refused_part_url_is_signed_again_under_the_same_key() {
        let m = MemoryRemote::with_project();
        m.set_min_part(4);
        let storage = m.create_storage("p", TOP, "a.bin").await.unwrap();
        let data = b"0123456789abcdef".to_vec();
        let (_keep, file) = staged(&data);
        // URLs signed before a remount have expired by the time the upload goes on.
        let first = m.upload_urls(&storage, 1, 4, None).await.unwrap();
        m.expire_part_urls();
        let etag = put(
            &m,
            &file,
            16,
            4,
            1,
            first.urls[0].clone(),
            &storage,
            &first.upload_key,
        )
        .await
        .unwrap();
        assert!(!etag.is_empty());
        assert_eq!(
            m.requests(Op::UploadUrls),
            2,
            "one signing again for the refused URL"
        );
        let mut up = Upload {
            storage: storage.clone(),
            key: Some(first.upload_key.clone()),
            etags: vec![etag],
            part_size: 4,
            ..Upload::default()
        };
        upload(&m, file, 16, &mut up, &Progress::default(), &|_| {})
            .await
            .unwrap();
        assert_eq!(m.object(&storage).unwrap(), data);
        assert_eq!(
            up.key.as_deref(),
            Some(first.upload_key.as_str()),
            "the same upload"
        );
    }

    #[tokio::test]
    async fn a_completion_whose_answer_was_lost_is_found_made() {
        let m = MemoryRemote::with_project();
        m.set_min_part(4);
        let storage = m.create_storage("p", TOP, "a.bin").await.unwrap();
        let data: Vec<u8> = (0..12u8).collect();
        let (_keep, file) = staged(&data);
        let signed = m.upload_urls(&storage, 1, 3, None).await.unwrap();
        let mut etags = Vec::new();
        for (i, url) in signed.urls.iter().enumerate() {
            let b = Bytes::copy_from_slice(&data[i * 4..i * 4 + 4]);
            etags.push(m.put_part(url, b).await.unwrap());
        }
        // Completed by the service, the answer never arrived: the upload still names the key.
        m.complete_upload(&storage, &signed.upload_key, 12, &etags)
            .await
            .unwrap();
        m.fail_completions(true);
        let mut up = Upload {
            storage: storage.clone(),
            key: Some(signed.upload_key),
            etags,
            part_size: 4,
            ..Upload::default()
        };
        upload(&m, file, 12, &mut up, &Progress::default(), &|_| {})
            .await
            .unwrap();
        assert!(up.completed);
        assert_eq!(m.requests(Op::PutPart), 3, "nothing sent again");
    }

    #[tokio::test]
    async fn a_continued_upload_sends_only_the_missing_parts() {
        let m = MemoryRemote::with_project();
        m.set_min_part(4);
        let storage = m.create_storage("p", TOP, "a.bin").await.unwrap();
        let data: Vec<u8> = (0..40u8).collect();
        let (_keep, file) = staged(&data);
        let signed = m.upload_urls(&storage, 1, 10, None).await.unwrap();
        let mut etags = Vec::new();
        for (i, url) in signed.urls.iter().take(6).enumerate() {
            let b = Bytes::copy_from_slice(&data[i * 4..i * 4 + 4]);
            etags.push(m.put_part(url, b).await.unwrap());
        }
        let before = m.requests(Op::PutPart);
        let mut up = Upload {
            storage: storage.clone(),
            key: Some(signed.upload_key),
            etags,
            part_size: 4,
            ..Upload::default()
        };
        upload(&m, file, 40, &mut up, &Progress::default(), &|_| {})
            .await
            .unwrap();
        assert_eq!(m.requests(Op::PutPart) - before, 4);
        assert_eq!(m.object(&storage).unwrap(), data);
    }
}
