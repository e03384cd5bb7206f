//! The APS client: authentication, the JSON:API documents, Project/Data navigation, OSS reads,
//! and the one retry policy. `Remote` is the seam the filesystem is written against, so its
//! logic is tested with an in-memory double and no server.

pub mod auth;
pub mod body;
pub mod budget;
pub mod buffers;
pub mod client;
pub mod error;
pub mod oss;
pub mod paging;
pub mod resource;
pub mod retry;
pub mod transport;
pub mod types;

pub use client::ApsClient;
pub use error::ApiError;
pub use types::{
    Bucket, Entry, FolderInfo, Hub, ItemInfo, Meta, ObjectInfo, Project, RefInfo, VersionInfo,
};

use bytes::Bytes;
use std::future::Future;

/// Objects `prepare_many` gets ready at once when it prepares them one by one.
pub const PREPARE_PARALLEL: usize = 8;

/// `prepare` for each of `storages`, [`PREPARE_PARALLEL`] at a time: `prepare_many` for a
/// remote that cannot sign many objects in one request, or has been told not to.
pub async fn prepare_each<'a, R: Remote + ?Sized>(
    remote: &R,
    storages: impl IntoIterator<Item = &'a str>,
) {
    use futures_util::stream::{self, StreamExt};
    stream::iter(storages)
        .for_each_concurrent(PREPARE_PARALLEL, |s| remote.prepare(s))
        .await
}

/// The remote operations a read-only filesystem needs.
pub trait Remote: Send + Sync + 'static {
    /// All hubs the credentials can see.
    fn hubs(&self) -> impl Future<Output = Result<Vec<Hub>, ApiError>> + Send;
    /// All projects of a hub (every page).
    fn projects(&self, hub: &str) -> impl Future<Output = Result<Vec<Project>, ApiError>> + Send;
    /// A project's top folders.
    fn top_folders(
        &self,
        hub: &str,
        project: &str,
    ) -> impl Future<Output = Result<Vec<FolderInfo>, ApiError>> + Send;
    /// A folder's children with their tip versions (every page). `expected` is the folder's
    /// `objectCount` when known, so later pages can be fetched in parallel.
    fn folder_contents(
        &self,
        project: &str,
        folder: &str,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<Vec<Entry>, ApiError>> + Send;
    /// Every version of an item, newest first (every page).
    fn item_versions(
        &self,
        project: &str,
        item: &str,
    ) -> impl Future<Output = Result<Vec<VersionInfo>, ApiError>> + Send;
    /// The refs of a resource: `kind` is `items`, `versions` or `folders`.
    fn refs(
        &self,
        project: &str,
        kind: &str,
        id: &str,
    ) -> impl Future<Output = Result<Vec<RefInfo>, ApiError>> + Send;
    /// The app's own OSS buckets in `region` (every page).
    fn buckets(&self, region: &str) -> impl Future<Output = Result<Vec<Bucket>, ApiError>> + Send;
    /// The app that owns a bucket (`bucketOwner` of its details).
    fn bucket_owner(&self, bucket: &str) -> impl Future<Output = Result<String, ApiError>> + Send;
    /// Every object of a bucket (every page).
    fn bucket_objects(
        &self,
        bucket: &str,
    ) -> impl Future<Output = Result<Vec<ObjectInfo>, ApiError>> + Send;
    /// Size of a storage object, for versions listed without `storageSize`.
    fn object_size(&self, storage: &str) -> impl Future<Output = Result<u64, ApiError>> + Send;
    /// Gets ready to read `storage` (fetches its signed URL), so the first read costs one round
    /// trip. Failures are left for the read itself to report.
    fn prepare(&self, _storage: &str) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// Gets ready to read each of `storages` (fetches their signed URLs), for files that are
    /// about to be read one after another. Failures are left for the reads to report. By
    /// default `prepare` for each, [`PREPARE_PARALLEL`] at a time.
    fn prepare_many(&self, storages: &[String]) -> impl Future<Output = ()> + Send {
        prepare_each(self, storages.iter().map(String::as_str))
    }
    /// Where this remote reports the object bytes it receives, so an operation waiting on them
    /// is not cut while they keep arriving (a slow link); `None` when it has no such signal.
    fn feed(&self) -> Option<std::sync::Arc<crate::deadline::Feed>> {
        None
    }
    /// Whether `prepare_many` signs many objects in one request, so signing files before they
    /// are known to be wanted costs no more requests than signing them when they are.
    fn signs_in_batches(&self) -> bool {
        false
    }
    /// Exactly `len` bytes of a storage object from `offset`, the object being `size` bytes as
    /// far as the listing knows (the caller keeps within it); storage disagreeing about the
    /// size is an error, never a cut or padded file.
    fn read(
        &self,
        storage: &str,
        size: u64,
        offset: u64,
        len: u64,
    ) -> impl Future<Output = Result<Bytes, ApiError>> + Send;
}
