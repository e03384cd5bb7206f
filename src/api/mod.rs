//! The APS client: authentication, the JSON:API documents, Project/Data navigation, OSS reads,
//! and the one retry policy. `Remote` is the seam the filesystem is written against, so its
//! logic is tested with an in-memory double and no server.

pub mod auth;
pub mod body;
pub mod budget;
pub mod buffers;
pub mod change;
pub mod client;
pub mod create;
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
    Bucket, Entry, Flavour, FolderChange, FolderInfo, Hub, ItemInfo, Meta, ObjectInfo, Project,
    RefInfo, UploadUrls, VersionInfo,
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

/// The remote operations the filesystem needs: reading (navigation, listings, bytes) and
/// writing (storage, multipart uploads, items, versions, folders).
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

    // Writes. Each is one request (with the retry policy's attempts); what a save needs in
    // what order, and what survives a crash between them, is the write path's business.

    /// `POST projects/:p/storage`: a storage object for `name` in `folder`, to upload into;
    /// its URN.
    fn create_storage(
        &self,
        project: &str,
        folder: &str,
        name: &str,
    ) -> impl Future<Output = Result<String, ApiError>> + Send;
    /// `GET …/signeds3upload`: `parts` part URLs from part `first` (1-based) of an upload into
    /// `storage`, continuing the upload `upload_key` when given (an expired or refused URL is
    /// signed again under the same key), else starting one.
    fn upload_urls(
        &self,
        storage: &str,
        first: u32,
        parts: u32,
        upload_key: Option<&str>,
    ) -> impl Future<Output = Result<UploadUrls, ApiError>> + Send;
    /// `PUT` of one part's bytes to its signed URL (no credential); the part's ETag. A refused
    /// URL (403: expired) is `ApiError::Forbidden`, for the caller to sign again.
    fn put_part(
        &self,
        url: &str,
        bytes: Bytes,
    ) -> impl Future<Output = Result<String, ApiError>> + Send;
    /// `POST …/signeds3upload`: completes the upload `upload_key` of `size` bytes whose parts
    /// have `etags` (in part order), so storage checks them; the size storage now holds.
    fn complete_upload(
        &self,
        storage: &str,
        upload_key: &str,
        size: u64,
        etags: &[String],
    ) -> impl Future<Output = Result<u64, ApiError>> + Send;
    /// `POST projects/:p/items`: a new item `name` in `folder` whose first version is
    /// `storage`; the item with that version as its tip. 409: the name is taken.
    fn create_item(
        &self,
        project: &str,
        folder: &str,
        name: &str,
        storage: &str,
        flavour: Flavour,
    ) -> impl Future<Output = Result<ItemInfo, ApiError>> + Send;
    /// `POST projects/:p/versions`: a new version `name` of `item` holding `storage`. 409: the
    /// name belongs to another item; 423: the item is reserved (locked) or being changed.
    fn create_version(
        &self,
        project: &str,
        item: &str,
        name: &str,
        storage: &str,
        flavour: Flavour,
    ) -> impl Future<Output = Result<VersionInfo, ApiError>> + Send;
    /// `POST projects/:p/folders`: a new folder `name` in `parent`. 409: the name is taken.
    fn create_folder(
        &self,
        project: &str,
        parent: &str,
        name: &str,
        flavour: Flavour,
    ) -> impl Future<Output = Result<FolderInfo, ApiError>> + Send;
    /// `PATCH projects/:p/items/:i`: renames `item` to `name` (its `displayName`; its versions
    /// keep their names). Not on BIM 360 / ACC, where a rename is a version with the new name.
    /// 409: the name is taken; 423: the item is reserved.
    fn rename_item(
        &self,
        project: &str,
        item: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `PATCH projects/:p/folders/:f`: renames, moves, hides or shows `folder`; the folder as it
    /// is now. 409: the name is taken in the (new) parent.
    fn change_folder(
        &self,
        project: &str,
        folder: &str,
        change: &FolderChange,
    ) -> impl Future<Output = Result<FolderInfo, ApiError>> + Send;
    /// `POST projects/:p/versions` of a delete tombstone: `item` is hidden, its versions kept
    /// (a later version restores it). BIM 360 / ACC only; other hubs refuse it (400).
    fn delete_item(
        &self,
        project: &str,
        item: &str,
    ) -> impl Future<Output = Result<VersionInfo, ApiError>> + Send;
    /// `GET projects/:p/items/:i`: an item with its tip version as it is now (whether it is
    /// reserved, which version a save would follow).
    fn item(
        &self,
        project: &str,
        item: &str,
    ) -> impl Future<Output = Result<ItemInfo, ApiError>> + Send;
}
