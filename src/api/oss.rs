//! OSS reads: signed download URLs (cached until shortly before they expire) and storage URN
//! parsing.

use super::error::ApiError;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lifetime asked for signed URLs; the service's maximum, so one URL serves a long read.
pub const URL_MINUTES: u64 = 60;
/// A cached URL is dropped this long before it expires, so no request starts on a URL that
/// dies in flight (the service only requires that a transfer *starts* before expiry).
const URL_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Signed URLs remembered at most; one per recently read object is plenty.
const URL_CACHE_MAX: usize = 4096;

const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one URL path segment (ids with `:`, `?`, `=`; object keys with `/`).
pub fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// What every storage object URN starts with: `urn:adsk.objects:os.object:<bucket>/<key>`.
pub const OBJECT_URN_PREFIX: &str = "urn:adsk.objects:os.object:";

/// Splits `urn:adsk.objects:os.object:<bucket>/<key>` at the first `/`.
pub fn split_storage(urn: &str) -> Result<(&str, &str), ApiError> {
    urn.strip_prefix(OBJECT_URN_PREFIX)
        .and_then(|r| r.split_once('/'))
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| ApiError::Decode(format!("not a storage object id: {urn}")))
}

/// The OSS path of an object, both parts encoded as single segments.
pub fn object_path(urn: &str) -> Result<String, ApiError> {
    let (bucket, key) = split_storage(urn)?;
    Ok(format!(
        "/oss/v2/buckets/{}/objects/{}",
        seg(bucket),
        seg(key)
    ))
}

/// Most objects one `batchsigneds3download` request may name (aps-api.md §7.8).
pub const BATCH_MAX: usize = 25;

/// One batch signing request: a bucket and at most [`BATCH_MAX`] of its objects.
#[derive(Debug, PartialEq)]
pub struct Batch<'a> {
    /// The bucket every object is in.
    pub bucket: &'a str,
    /// `(storage URN, object key)` of each object.
    pub objects: Vec<(&'a str, &'a str)>,
}

/// Groups storage URNs into batch signing requests: by bucket (buckets in the order they first
/// appear, objects in the order given, each object once), each bucket's objects split into
/// batches of at most [`BATCH_MAX`]. URNs that are not storage objects are left out: a read of
/// one reports the error.
pub fn batches<'a>(storages: impl IntoIterator<Item = &'a str>) -> Vec<Batch<'a>> {
    let mut seen = std::collections::HashSet::new();
    let mut by_bucket: Vec<(&str, Vec<(&str, &str)>)> = Vec::new();
    for urn in storages {
        let Ok((bucket, key)) = split_storage(urn) else {
            continue;
        };
        if !seen.insert(urn) {
            continue;
        }
        match by_bucket.iter_mut().find(|(b, _)| *b == bucket) {
            Some((_, objects)) => objects.push((urn, key)),
            None => by_bucket.push((bucket, vec![(urn, key)])),
        }
    }
    by_bucket
        .into_iter()
        .flat_map(|(bucket, objects)| {
            objects
                .chunks(BATCH_MAX)
                .map(|c| Batch {
                    bucket,
                    objects: c.to_vec(),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A signed download URL and the object size storage gave with it, which a read checks
/// against the size the listing gave before trusting either.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    /// The URL, a capability of its own: it carries its signature.
    pub url: String,
    /// The object's size in bytes, when the answer said.
    pub size: Option<u64>,
}

/// Signed URLs by storage URN.
#[derive(Default)]
pub struct UrlCache {
    urls: Mutex<HashMap<String, (Signed, Instant)>>,
}

impl UrlCache {
    /// A still-usable URL for `storage`.
    pub fn get(&self, storage: &str) -> Option<Signed> {
        let urls = self.urls.lock().ok()?;
        urls.get(storage)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(u, _)| u.clone())
    }

    /// Remembers a URL fetched at `fetched` with `minutes` of validity.
    pub fn put(&self, storage: &str, url: Signed, fetched: Instant, minutes: u64) {
        let until = fetched + Duration::from_secs(minutes * 60).saturating_sub(URL_MARGIN);
        if let Ok(mut urls) = self.urls.lock() {
            if urls.len() >= URL_CACHE_MAX {
                let now = Instant::now();
                urls.retain(|_, (_, t)| *t > now);
                if urls.len() >= URL_CACHE_MAX {
                    // The quarter that expires first goes: the oldest, which readers have most
                    // likely finished with, while a batch signed for the files about to be
                    // read stays whole.
                    let mut untils: Vec<Instant> = urls.values().map(|(_, t)| *t).collect();
                    let cut = untils.len() / 4;
                    untils.select_nth_unstable(cut);
                    let oldest = untils[cut];
                    urls.retain(|_, (_, t)| *t > oldest);
                }
            }
            urls.insert(storage.to_string(), (url, until));
        }
    }

    /// Forgets the URL for `storage` if it is still `url` (it was refused).
    pub fn invalidate(&self, storage: &str, url: &str) {
        if let Ok(mut urls) = self.urls.lock() {
            if urls.get(storage).is_some_and(|(u, _)| u.url == url) {
                urls.remove(storage);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_ids() {
        assert_eq!(
            split_storage("urn:adsk.objects:os.object:wip.dm.prod/a/b c.rvt").unwrap(),
            ("wip.dm.prod", "a/b c.rvt")
        );
        assert_eq!(
            object_path("urn:adsk.objects:os.object:wip.dm.prod/a/b c.rvt").unwrap(),
            "/oss/v2/buckets/wip.dm.prod/objects/a%2Fb%20c.rvt"
        );
        assert!(split_storage("urn:adsk.objects:os.object:nokey").is_err());
    }

    #[test]
    fn batches_group_by_bucket_and_hold_at_most_25() {
        let urn = |b: &str, k: usize| format!("{OBJECT_URN_PREFIX}{b}/dir/k{k}");
        let mut urns: Vec<String> = (0..60).map(|i| urn("one", i)).collect();
        urns.insert(10, urn("two", 0));
        urns.push(urn("one", 3));
        urns.push("not a storage id".into());
        urns.push(urn("two", 1));
        let got = batches(urns.iter().map(String::as_str));
        let shape: Vec<(&str, usize)> = got.iter().map(|b| (b.bucket, b.objects.len())).collect();
        assert_eq!(
            shape,
            [("one", 25), ("one", 25), ("one", 10), ("two", 2)],
            "one bucket per batch, each object once, bad ids left out"
        );
        assert_eq!(got[0].objects[0], (urns[0].as_str(), "dir/k0"));
        assert_eq!(got[1].objects[0].1, "dir/k25", "order kept");
        assert_eq!(got[3].objects[1].1, "dir/k1");
        assert!(batches([]).is_empty());
    }

    fn signed(url: &str) -> Signed {
        Signed {
            url: url.into(),
            size: Some(1),
        }
    }

    #[test]
    fn a_full_cache_drops_its_oldest_quarter() {
        let c = UrlCache::default();
        let t0 = Instant::now();
        for i in 0..URL_CACHE_MAX + 1 {
            let fetched = t0 + Duration::from_millis(i as u64);
            c.put(&format!("s{i}"), signed("u"), fetched, 60);
        }
        let kept = c.urls.lock().unwrap().len();
        assert!(
            (URL_CACHE_MAX * 3 / 4 - 1..URL_CACHE_MAX).contains(&kept),
            "{kept}"
        );
        assert!(c.get("s0").is_none(), "the oldest went");
        assert!(c.get(&format!("s{}", URL_CACHE_MAX - 1)).is_some());
        assert!(c.get(&format!("s{URL_CACHE_MAX}")).is_some());
    }

    #[test]
    fn cache_expires_with_margin() {
        let c = UrlCache::default();
        c.put("s", signed("u"), Instant::now(), 60);
        assert_eq!(c.get("s"), Some(signed("u")));
        c.put("t", signed("u"), Instant::now(), 1);
        assert_eq!(
            c.get("t"),
            None,
            "a 1-minute URL is inside the 5-minute margin"
        );
        c.invalidate("s", "other");
        assert!(c.get("s").is_some());
        c.invalidate("s", "u");
        assert!(c.get("s").is_none());
    }
}
