//! A wrapper around any `Remote` that fails requests on purpose, by rule: which operation,
//! which `ApiError`, and when (every Nth call, the next N calls, or with a probability drawn
//! from a seed). What it injected is recorded, so a test can tell an error it caused from one
//! the code under test made up. An injected failure never reaches the wrapped remote.
//!
//! Deterministic: with the same seed and the same requests, the same requests fail. A
//! probability is decided per request from the seed, the rule, the request itself and how
//! often that same request came to the rule before, not from a shared sequence of draws, so
//! requests made concurrently (read-ahead) fail the same way whatever order they arrive in.

use super::op::Op;
use crate::api::{
    ApiError, Bucket, Entry, Flavour, FolderChange, FolderInfo, Hub, ItemInfo, ObjectInfo, Project,
    RefInfo, Remote, UploadUrls, VersionInfo,
};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// When a rule fires, counted over the calls it matches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum When {
    /// On every Nth matching call (the Nth, the 2Nth, …), for failures at a steady rate.
    Every(u64),
    /// On the next N matching calls, then never, for an outage that ends.
    Next(u64),
    /// On each matching call with this probability, drawn from the seed, for random faults.
    Chance(f64),
}

/// One way to fail: the operation it applies to, the error it answers, and when.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The operation it applies to; `None` for every operation.
    pub op: Option<Op>,
    /// What a failed request answers.
    pub error: ApiError,
    /// Which matching calls fail.
    pub when: When,
}

impl Rule {
    /// Fails every `n`th call of `op` with `error`.
    pub fn every(op: Op, n: u64, error: ApiError) -> Rule {
        Rule {
            op: Some(op),
            error,
            when: When::Every(n.max(1)),
        }
    }

    /// Fails the next `n` calls of `op` with `error`.
    pub fn next(op: Op, n: u64, error: ApiError) -> Rule {
        Rule {
            op: Some(op),
            error,
            when: When::Next(n),
        }
    }

    /// Fails each call of `op` with probability `p` with `error`.
    pub fn chance(op: Op, p: f64, error: ApiError) -> Rule {
        Rule {
            op: Some(op),
            error,
            when: When::Chance(p),
        }
    }
}

/// One failure that was injected, so a test can check an error it sees was caused.
#[derive(Clone, Debug)]
pub struct Injection {
    /// The operation that failed.
    pub op: Op,
    /// The request, spelled `<operation> <arguments>`.
    pub request: String,
    /// What it answered.
    pub error: ApiError,
}

/// A rule with what it has seen so far.
struct Armed {
    rule: Rule,
    /// Matching calls so far.
    calls: u64,
    /// Matching calls so far by request, for `When::Chance`.
    seen: HashMap<String, u64>,
}

#[derive(Default)]
struct State {
    rules: Vec<Armed>,
    injected: Vec<Injection>,
}

/// Any `Remote`, failing requests by rule, so error paths are tested without a network.
pub struct Faulty<R: Remote> {
    inner: Arc<R>,
    seed: u64,
    state: Mutex<State>,
}

/// FNV-1a, so decisions do not depend on the process's hash seed.
fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// SplitMix64's finaliser: spreads nearby inputs over the whole range.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl<R: Remote> Faulty<R> {
    /// Wraps `inner`; probabilities are drawn from `seed`. No rule: nothing fails yet.
    pub fn new(inner: Arc<R>, seed: u64) -> Faulty<R> {
        Faulty {
            inner,
            seed,
            state: Mutex::default(),
        }
    }

    /// The wrapped remote, to change it or read its counters while wrapped.
    pub fn inner(&self) -> &Arc<R> {
        &self.inner
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a rule after those already there (the first rule that fires answers a request).
    pub fn add(&self, rule: Rule) {
        self.state().rules.push(Armed {
            rule,
            calls: 0,
            seen: HashMap::new(),
        });
    }

    /// Removes every rule: from now on requests pass through.
    pub fn clear(&self) {
        self.state().rules.clear();
    }

    /// Every failure injected so far, in order.
    pub fn injected(&self) -> Vec<Injection> {
        self.state().injected.clone()
    }

    /// How many failures were injected so far, to tell whether a step saw one.
    pub fn injected_count(&self) -> usize {
        self.state().injected.len()
    }

    /// The failure `request` (an `op` call) answers, if a rule fires for it; recorded.
    fn check(&self, op: Op, request: impl FnOnce() -> String) -> Result<(), ApiError> {
        let mut guard = self.state();
        let state = &mut *guard;
        if state.rules.is_empty() {
            return Ok(());
        }
        let request = request();
        let seed = self.seed;
        let fired = state.rules.iter_mut().enumerate().find_map(|(k, armed)| {
            if armed.rule.op.is_some_and(|o| o != op) {
                return None;
            }
            armed.calls += 1;
            let fire = match armed.rule.when {
                When::Every(n) => armed.calls % n.max(1) == 0,
                When::Next(n) => armed.calls <= n,
                When::Chance(p) => {
                    let seen = armed.seen.entry(request.clone()).or_default();
                    *seen += 1;
                    let h = fnv(
                        request.as_bytes(),
                        fnv(&seen.to_le_bytes(), seed ^ k as u64),
                    );
                    // The top 53 bits as a fraction in [0, 1).
                    ((mix(h) >> 11) as f64 / (1u64 << 53) as f64) < p
                }
            };
            fire.then(|| armed.rule.error.clone())
        });
        match fired {
            Some(error) => {
                state.injected.push(Injection {
                    op,
                    request,
                    error: error.clone(),
                });
                Err(error)
            }
            None => Ok(()),
        }
    }
}

impl<R: Remote> Remote for Faulty<R> {
    async fn hubs(&self) -> Result<Vec<Hub>, ApiError> {
        self.check(Op::Hubs, || "hubs".into())?;
        self.inner.hubs().await
    }

    async fn projects(&self, hub: &str) -> Result<Vec<Project>, ApiError> {
        self.check(Op::Projects, || format!("projects {hub}"))?;
        self.inner.projects(hub).await
    }

    async fn top_folders(&self, hub: &str, project: &str) -> Result<Vec<FolderInfo>, ApiError> {
        self.check(Op::TopFolders, || format!("top_folders {hub} {project}"))?;
        self.inner.top_folders(hub, project).await
    }

    async fn folder_contents(
        &self,
        project: &str,
        folder: &str,
        expected: Option<u64>,
    ) -> Result<Vec<Entry>, ApiError> {
        self.check(Op::FolderContents, || {
            format!("folder_contents {project} {folder}")
        })?;
        self.inner.folder_contents(project, folder, expected).await
    }

    async fn item_versions(&self, project: &str, item: &str) -> Result<Vec<VersionInfo>, ApiError> {
        self.check(Op::ItemVersions, || {
            format!("item_versions {project} {item}")
        })?;
        self.inner.item_versions(project, item).await
    }

    async fn refs(&self, project: &str, kind: &str, id: &str) -> Result<Vec<RefInfo>, ApiError> {
        self.check(Op::Refs, || format!("refs {project} {kind} {id}"))?;
        self.inner.refs(project, kind, id).await
    }

    async fn buckets(&self, region: &str) -> Result<Vec<Bucket>, ApiError> {
        self.check(Op::Buckets, || format!("buckets {region}"))?;
        self.inner.buckets(region).await
    }

    async fn bucket_owner(&self, bucket: &str) -> Result<String, ApiError> {
        self.check(Op::BucketOwner, || format!("bucket_owner {bucket}"))?;
        self.inner.bucket_owner(bucket).await
    }

    async fn bucket_objects(&self, bucket: &str) -> Result<Vec<ObjectInfo>, ApiError> {
        self.check(Op::BucketObjects, || format!("bucket_objects {bucket}"))?;
        self.inner.bucket_objects(bucket).await
    }

    async fn object_size(&self, storage: &str) -> Result<u64, ApiError> {
        self.check(Op::ObjectSize, || format!("object_size {storage}"))?;
        self.inner.object_size(storage).await
    }

    async fn prepare(&self, storage: &str) {
        // Preparing cannot fail (a failure is left for the read), so it only passes through.
        self.inner.prepare(storage).await
    }

    async fn prepare_many(&self, storages: &[String]) {
        // Like `prepare`: it cannot fail, so it only passes through.
        self.inner.prepare_many(storages).await
    }

    fn signs_in_batches(&self) -> bool {
        self.inner.signs_in_batches()
    }

    fn feed(&self) -> Option<Arc<crate::deadline::Feed>> {
        self.inner.feed()
    }

    async fn read(
        &self,
        storage: &str,
        size: u64,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, ApiError> {
        self.check(Op::Read, || format!("read {storage} {offset}+{len}"))?;
        self.inner.read(storage, size, offset, len).await
    }

    async fn create_storage(
        &self,
        project: &str,
        folder: &str,
        name: &str,
    ) -> Result<String, ApiError> {
        self.check(Op::CreateStorage, || {
            format!("create_storage {folder} {name}")
        })?;
        self.inner.create_storage(project, folder, name).await
    }

    async fn upload_urls(
        &self,
        storage: &str,
        first: u32,
        parts: u32,
        upload_key: Option<&str>,
    ) -> Result<UploadUrls, ApiError> {
        self.check(Op::UploadUrls, || {
            format!("upload_urls {storage} {first}+{parts}")
        })?;
        self.inner
            .upload_urls(storage, first, parts, upload_key)
            .await
    }

    async fn put_part(&self, url: &str, bytes: Bytes) -> Result<String, ApiError> {
        self.check(Op::PutPart, || format!("put_part {url}"))?;
        self.inner.put_part(url, bytes).await
    }

    async fn complete_upload(
        &self,
        storage: &str,
        upload_key: &str,
        size: u64,
        etags: &[String],
    ) -> Result<u64, ApiError> {
        self.check(Op::CompleteUpload, || format!("complete_upload {storage}"))?;
        self.inner
            .complete_upload(storage, upload_key, size, etags)
            .await
    }

    async fn create_item(
        &self,
        project: &str,
        folder: &str,
        name: &str,
        storage: &str,
        flavour: Flavour,
    ) -> Result<ItemInfo, ApiError> {
        self.check(Op::CreateItem, || format!("create_item {folder} {name}"))?;
        self.inner
            .create_item(project, folder, name, storage, flavour)
            .await
    }

    async fn create_version(
        &self,
        project: &str,
        item: &str,
        name: &str,
        storage: &str,
        flavour: Flavour,
    ) -> Result<VersionInfo, ApiError> {
        self.check(Op::CreateVersion, || {
            format!("create_version {item} {name}")
        })?;
        self.inner
            .create_version(project, item, name, storage, flavour)
            .await
    }

    async fn create_folder(
        &self,
        project: &str,
        parent: &str,
        name: &str,
        flavour: Flavour,
    ) -> Result<FolderInfo, ApiError> {
        self.check(Op::CreateFolder, || {
            format!("create_folder {parent} {name}")
        })?;
        self.inner
            .create_folder(project, parent, name, flavour)
            .await
    }

    async fn item(&self, project: &str, item: &str) -> Result<ItemInfo, ApiError> {
        self.check(Op::Item, || format!("item {item}"))?;
        self.inner.item(project, item).await
    }

    async fn rename_item(&self, project: &str, item: &str, name: &str) -> Result<(), ApiError> {
        self.check(Op::RenameItem, || format!("rename_item {item} {name}"))?;
        self.inner.rename_item(project, item, name).await
    }

    async fn change_folder(
        &self,
        project: &str,
        folder: &str,
        change: &FolderChange,
    ) -> Result<FolderInfo, ApiError> {
        self.check(Op::ChangeFolder, || {
            format!("change_folder {folder} {change:?}")
        })?;
        self.inner.change_folder(project, folder, change).await
    }

    async fn delete_item(&self, project: &str, item: &str) -> Result<VersionInfo, ApiError> {
        self.check(Op::DeleteItem, || format!("delete_item {item}"))?;
        self.inner.delete_item(project, item).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory::{MemoryRemote, PROJECT, TOP};

    fn server() -> ApiError {
        ApiError::Server {
            status: 503,
            detail: "injected".into(),
        }
    }

    #[tokio::test]
    async fn rules_fire_as_written_and_are_recorded() {
        let m = Arc::new(MemoryRemote::with_project());
        m.put_object("urn:o", b"abc");
        let f = Faulty::new(m.clone(), 7);
        f.add(Rule::every(Op::FolderContents, 3, server()));
        f.add(Rule::next(
            Op::ObjectSize,
            2,
            ApiError::Timeout("injected".into()),
        ));
        let mut failed = Vec::new();
        for _ in 0..6 {
            failed.push(f.folder_contents(PROJECT, TOP, None).await.is_err());
        }
        assert_eq!(failed, [false, false, true, false, false, true]);
        assert_eq!(
            f.inner().requests(Op::FolderContents),
            4,
            "failures never reach it"
        );
        for expect_err in [true, true, false] {
            assert_eq!(f.object_size("urn:o").await.is_err(), expect_err);
        }
        let injected = f.injected();
        assert_eq!((injected.len(), f.injected_count()), (4, 4));
        assert_eq!(injected[0].op, Op::FolderContents);
        assert_eq!(injected[0].request, "folder_contents p top");
        assert!(matches!(injected[3].error, ApiError::Timeout(_)));
        f.clear();
        assert!(f.folder_contents(PROJECT, TOP, None).await.is_ok());
    }

    #[tokio::test]
    async fn chances_repeat_for_a_seed_whatever_the_order() {
        let m = Arc::new(MemoryRemote::new());
        m.put_pattern("urn:x", 1 << 20);
        let outcome = |seed: u64, reversed: bool| {
            let f = Faulty::new(m.clone(), seed);
            f.add(Rule::chance(Op::Read, 0.3, server()));
            let mut offsets: Vec<u64> = (0..200).map(|k| k * 100).collect();
            if reversed {
                offsets.reverse();
            }
            async move {
                let mut failed = Vec::new();
                for o in offsets {
                    if f.read("urn:x", 1 << 20, o, 10).await.is_err() {
                        failed.push(o);
                    }
                }
                failed.sort_unstable();
                failed
            }
        };
        let a = outcome(1, false).await;
        assert_eq!(a, outcome(1, true).await, "same seed, same failures");
        assert_ne!(a, outcome(2, false).await, "another seed, other failures");
        assert!((30..90).contains(&a.len()), "about 30% of 200: {}", a.len());
    }

    #[tokio::test]
    async fn preparing_passes_through_as_one_request() {
        let m = Arc::new(MemoryRemote::new());
        let f = Faulty::new(m.clone(), 1);
        f.add(Rule::every(Op::PrepareMany, 1, server()));
        f.add(Rule::every(Op::Prepare, 1, server()));
        f.prepare_many(&["urn:a".into(), "urn:b".into()]).await;
        f.prepare("urn:a").await;
        assert_eq!(m.requests(Op::PrepareMany), 1, "one call for all objects");
        assert_eq!(m.requests(Op::Prepare), 1);
        assert_eq!(f.injected_count(), 0, "preparing cannot fail");
    }
}
