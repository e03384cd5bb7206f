//! The app's own OSS buckets as directories: `buckets/<bucketKey>/<objectKey>`, where the
//! `/`s of object keys become folders. OSS has no delimiter listing, so a bucket's objects are
//! fetched once (every page) and every folder inside it is cut from that one list, which is
//! kept for the metadata TTL.

use super::inode::{Child, FileVersion, Kind};
use crate::api::oss::OBJECT_URN_PREFIX;
use crate::api::{ApiError, Meta, ObjectInfo, Remote};
use crate::cache::ttl::TtlMap;
use crate::single_flight::SingleFlight;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Buckets whose object lists are kept at most; each listing of a folder inside a bucket
/// needs its bucket's list.
const MAX_BUCKETS: usize = 64;

/// The storage URN of an object, as version storage ids are spelled, so reads go through
/// the same signed-URL path.
pub fn storage_urn(bucket: &str, key: &str) -> String {
    format!("{OBJECT_URN_PREFIX}{bucket}/{key}")
}

/// Object lists by bucket, each trusted for the metadata TTL.
pub struct ObjectLists {
    lists: TtlMap<String, Arc<Vec<ObjectInfo>>>,
    /// The folders of a bucket opened together share one fetch of its list.
    fetching: SingleFlight<String>,
}

impl ObjectLists {
    /// Lists trusted for `ttl`.
    pub fn new(ttl: Duration) -> ObjectLists {
        ObjectLists {
            lists: TtlMap::new(ttl, MAX_BUCKETS),
            fetching: SingleFlight::default(),
        }
    }

    /// Every object of `bucket`, fetched when the kept list is older than the TTL.
    pub async fn get<R: Remote>(
        &self,
        remote: &R,
        bucket: &str,
    ) -> Result<Arc<Vec<ObjectInfo>>, ApiError> {
        let key = bucket.to_string();
        self.fetching
            .get(
                key.clone(),
                || self.lists.get(&key),
                || async {
                    let list = Arc::new(remote.bucket_objects(bucket).await?);
                    self.lists.put(key.clone(), list.clone());
                    Ok(list)
                },
            )
            .await
    }
}

/// The children of the folder `prefix` (empty, or ending in `/`) of `bucket`: one folder per
/// distinct next key segment, one file per object directly inside. A key ending in `/` (a
/// folder marker some tools write) only makes its folder appear. Objects carry no times in the
/// list: they show `time`, the bucket's creation, which stays put across mounts.
pub fn children(
    bucket: &str,
    prefix: &str,
    policy: &Arc<str>,
    objects: &[ObjectInfo],
    time: SystemTime,
) -> Vec<Child> {
    let mut folders = BTreeMap::new();
    let mut files = Vec::new();
    for o in objects {
        let Some(rest) = o.key.strip_prefix(prefix) else {
            continue;
        };
        match rest.split_once('/') {
            Some((dir, _)) => {
                folders.entry(dir.to_string()).or_insert(());
            }
            None if rest.is_empty() => {}
            None => files.push(Child {
                kind: Kind::File {
                    version: FileVersion {
                        // An object replaced under the same key is another inode: its pages and
                        // attributes must not mix with the old bytes.
                        id: o.sha1.clone().unwrap_or_else(|| format!("size-{}", o.size)),
                        storage: storage_urn(bucket, &o.key),
                        size: Some(o.size),
                        number: 0,
                        sha1: o.sha1.clone().map(String::into_boxed_str),
                    },
                },
                id: storage_urn(bucket, &o.key),
                raw: rest.to_string(),
                created: Some(time),
                modified: Some(time),
                meta: Meta::default(),
            }),
        }
    }
    let mut out: Vec<Child> = folders
        .into_keys()
        .map(|dir| {
            let prefix = format!("{prefix}{dir}/");
            Child {
                id: format!("oss#{bucket}/{prefix}"),
                kind: Kind::Objects {
                    bucket: bucket.to_string(),
                    prefix,
                    policy: policy.clone(),
                },
                raw: dir,
                created: Some(time),
                modified: Some(time),
                meta: Meta::default(),
            }
        })
        .collect();
    out.extend(files);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(key: &str) -> ObjectInfo {
        ObjectInfo {
            key: key.into(),
            size: key.len() as u64,
            sha1: None,
        }
    }

    fn names(c: &[Child]) -> Vec<(&str, bool)> {
        c.iter()
            .map(|c| (c.raw.as_str(), !matches!(c.kind, Kind::File { .. })))
            .collect()
    }

    #[test]
    fn keys_with_slashes_become_folders() {
        let all = [
            obj("a/b/c.txt"),
            obj("a/d.txt"),
            obj("top.txt"),
            obj("a/b/"),
            obj("e/"),
            obj("a//x"),
        ];
        let p: Arc<str> = Arc::from("persistent");
        let t = SystemTime::UNIX_EPOCH;
        assert_eq!(
            names(&children("bk", "", &p, &all, t)),
            [("a", true), ("e", true), ("top.txt", false)]
        );
        assert_eq!(
            names(&children("bk", "a/", &p, &all, t)),
            [("", true), ("b", true), ("d.txt", false)]
        );
        assert_eq!(
            names(&children("bk", "a/b/", &p, &all, t)),
            [("c.txt", false)]
        );
        assert!(children("bk", "e/", &p, &all, t).is_empty());
        let file = &children("bk", "a/b/", &p, &all, t)[0];
        let Kind::File { version } = &file.kind else {
            panic!()
        };
        assert_eq!(version.storage, "urn:adsk.objects:os.object:bk/a/b/c.txt");
    }
}
