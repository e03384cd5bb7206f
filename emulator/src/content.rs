//! Where an object's bytes come from, and streaming any byte range of them.
//!
//! Generated objects derive every byte from (seed, offset), so multi-GiB files cost no memory
//! and a test can check any range it read without storing the file.

use super::docs::{render, DocKind};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, Stream};
use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Size of the chunks a body is streamed in: large enough for loopback speed, small enough that
/// the bandwidth cap and dropped-connection faults act with fine granularity.
pub const CHUNK: usize = 256 * 1024;

/// The source of an object's bytes.
#[derive(Clone, Debug)]
pub enum Content {
    /// A file on disk (directory seeding), read on demand.
    File {
        /// Path to the file.
        path: PathBuf,
        /// Size recorded at seeding time.
        size: u64,
    },
    /// Bytes derived from a seed.
    Generated {
        /// Seed of the byte function.
        seed: u64,
        /// Object size.
        size: u64,
    },
    /// Bytes uploaded through the API.
    Memory(Bytes),
    /// A small real document (`docs` generated sets), rendered again on every read so the
    /// store holds only what it derives from: see [`crate::docs`].
    Document {
        /// Format, from the file name's extension.
        kind: DocKind,
        /// Seed of the document's varying text and colours (`seed_for_key` of the object key).
        seed: u64,
        /// File name shown in the document.
        name: Arc<str>,
        /// Version number shown in the document.
        version: u32,
        /// Length of the rendered document.
        size: u64,
    },
}

impl Content {
    /// Object size in bytes.
    pub fn size(&self) -> u64 {
        match self {
            Content::File { size, .. }
            | Content::Generated { size, .. }
            | Content::Document { size, .. } => *size,
            Content::Memory(b) => b.len() as u64,
        }
    }

    /// Streams bytes `start..end` (end exclusive, already clamped to the size).
    pub fn stream(
        &self,
        start: u64,
        end: u64,
    ) -> std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>> {
        match self.clone() {
            Content::Document { .. } => Content::Memory(self.document_bytes()).stream(start, end),
            Content::Memory(b) => {
                let (s, e) = (start as usize, end as usize);
                let chunks: Vec<std::io::Result<Bytes>> = (s..e)
                    .step_by(CHUNK)
                    .map(|o| Ok(b.slice(o..(o + CHUNK).min(e))))
                    .collect();
                Box::pin(stream::iter(chunks))
            }
            Content::Generated { seed, .. } => {
                Box::pin(stream::unfold(start, move |pos| async move {
                    if pos >= end {
                        return None;
                    }
                    let n = ((end - pos) as usize).min(CHUNK);
                    let mut buf = BytesMut::zeroed(n);
                    generated_fill(seed, pos, &mut buf);
                    Some((Ok(buf.freeze()), pos + n as u64))
                }))
            }
            Content::File { path, .. } => {
                Box::pin(stream::unfold(
                    (None, path, start),
                    move |(file, path, pos)| async move {
                        if pos >= end {
                            return None;
                        }
                        let mut f = match file {
                            Some(f) => f,
                            None => match open_at(&path, pos).await {
                                Ok(f) => f,
                                Err(e) => return Some((Err(e), (None, path, end))),
                            },
                        };
                        let n = ((end - pos) as usize).min(CHUNK);
                        let mut buf = BytesMut::zeroed(n);
                        match f.read_exact(&mut buf).await {
                            Ok(_) => Some((Ok(buf.freeze()), (Some(f), path, pos + n as u64))),
                            // A file that shrank after seeding must not be served as short data.
                            Err(e) => Some((Err(e), (None, path, end))),
                        }
                    },
                ))
            }
        }
    }

    /// Reads a whole (small) object into memory; used for SHA-1 and tests.
    pub async fn read_all(&self) -> std::io::Result<Bytes> {
        match self {
            Content::Memory(b) => Ok(b.clone()),
            Content::Document { .. } => Ok(self.document_bytes()),
            Content::File { path, .. } => Ok(Bytes::from(tokio::fs::read(path).await?)),
            Content::Generated { seed, size } => {
                let mut buf = BytesMut::zeroed(*size as usize);
                generated_fill(*seed, 0, &mut buf);
                Ok(buf.freeze())
            }
        }
    }
}

impl Content {
    /// The bytes of a `Document`, empty for any other kind of content.
    fn document_bytes(&self) -> Bytes {
        Bytes::from(self.document_bytes_if_any().unwrap_or_default())
    }

    /// The rendered bytes when this is a `Document`.
    pub(crate) fn document_bytes_if_any(&self) -> Option<Vec<u8>> {
        match self {
            Content::Document {
                kind,
                seed,
                name,
                version,
                ..
            } => Some(render(*kind, *seed, name, *version)),
            _ => None,
        }
    }
}

/// The content of version `version` of the generated file `name` stored under `object_key`,
/// planned at `size` bytes: with `docs`, a non-empty file of a document extension becomes a
/// small real document (whose own length replaces `size`); anything else is `Generated`.
/// [`crate::testing::expected_bytes`] answers from this same function.
pub fn generated_content(
    object_key: &str,
    name: &str,
    version: u32,
    size: u64,
    docs: bool,
) -> Content {
    let seed = seed_for_key(object_key);
    match DocKind::from_name(name) {
        Some(kind) if docs && size > 0 => Content::Document {
            kind,
            seed,
            name: name.into(),
            version,
            size: render(kind, seed, name, version).len() as u64,
        },
        _ => Content::Generated { seed, size },
    }
}

async fn open_at(path: &std::path::Path, pos: u64) -> std::io::Result<tokio::fs::File> {
    let mut f = tokio::fs::File::open(path).await?;
    f.seek(SeekFrom::Start(pos)).await?;
    Ok(f)
}

/// Seed of a generated object's bytes, derived from its object key alone so that a test (or
/// benchmark) holding only a storage URN can recompute any range it read.
pub fn seed_for_key(object_key: &str) -> u64 {
    super::ids::Uid::derive("bytes", object_key).as_u64()
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `buf` with the bytes of a generated object starting at `offset`.
///
/// Byte `p` is byte `p % 8` (little-endian) of `splitmix64(seed ^ (p / 8) * φ)`, so any range
/// can be recomputed independently.
pub fn generated_fill(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < buf.len() {
        let word = splitmix64(seed ^ (pos >> 3).wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes();
        let from = (pos & 7) as usize;
        let n = (8 - from).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&word[from..from + n]);
        i += n;
        pos += n as u64;
    }
}

/// Parses a `Range` header against an object of `size` bytes.
///
/// `Ok(None)` means "serve the whole object" (no header, or a form S3 ignores such as several
/// ranges); `Err(())` means unsatisfiable (416).
#[allow(clippy::result_unit_err)]
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(h) = header else { return Ok(None) };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        // Suffix range: the last N bytes.
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 || size == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size - 1)
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end: u64 = if b.is_empty() {
            u64::MAX
        } else {
            b.parse().map_err(|_| ())?
        };
        if end < start {
            return Ok(None);
        }
        if start >= size {
            return Err(());
        }
        (start, end.min(size - 1))
    };
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ranges_agree() {
        let mut whole = vec![0u8; 1000];
        generated_fill(42, 0, &mut whole);
        for (off, len) in [(0, 1), (3, 17), (8, 8), (999, 1), (123, 500)] {
            let mut part = vec![0u8; len];
            generated_fill(42, off as u64, &mut part);
            assert_eq!(&part[..], &whole[off..off + len]);
        }
        let mut other = vec![0u8; 1000];
        generated_fill(43, 0, &mut other);
        assert_ne!(whole, other);
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-4"), 10), Ok(Some((0, 4))));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Ok(Some((5, 9))));
        assert_eq!(parse_range(Some("bytes=5-100"), 10), Ok(Some((5, 9))));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Ok(Some((7, 9))));
        assert_eq!(parse_range(Some("bytes=-30"), 10), Ok(Some((0, 9))));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=0-"), 0), Err(()));
        assert_eq!(parse_range(Some("bytes=x-"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), Ok(None));
        assert_eq!(parse_range(Some("items=0-1"), 10), Ok(None));
    }

    proptest::proptest! {
        /// Whatever a client sends after `bytes=`, a range that is served lies inside the
        /// object (CI runs the default number of cases; `scripts/fuzz` runs many more).
        #[test]
        fn ranges_stay_inside_the_object(h in "[ -~]{0,30}", size in 0u64..10_000) {
            let header = format!("bytes={h}");
            if let Ok(Some((a, b))) = parse_range(Some(&header), size) {
                proptest::prop_assert!(a <= b && b < size);
            }
        }
    }

    #[tokio::test]
    async fn streams_match_fill() {
        let c = Content::Generated {
            seed: 7,
            size: 3 * CHUNK as u64 + 5,
        };
        use futures_util::StreamExt;
        let mut s = c.stream(100, c.size());
        let mut got = Vec::new();
        while let Some(b) = s.next().await {
            got.extend_from_slice(&b.unwrap());
        }
        let all = c.read_all().await.unwrap();
        assert_eq!(&got[..], &all[100..]);
    }
}
