//! What the client sends to create things: storage objects, multipart uploads into them, items,
//! versions and folders. (Placeholder bodies until the requests are written.)

use super::client::ApsClient;
use super::error::ApiError;
use super::types::{Flavour, FolderInfo, ItemInfo, UploadUrls, VersionInfo};
use bytes::Bytes;

fn not_yet(what: &str) -> ApiError {
    ApiError::Refused {
        status: 501,
        detail: format!("{what} is not written yet"),
    }
}

pub(super) async fn storage(
    _c: &ApsClient,
    _project: &str,
    _folder: &str,
    _name: &str,
) -> Result<String, ApiError> {
    Err(not_yet("storage"))
}

pub(super) async fn upload_urls(
    _c: &ApsClient,
    _storage: &str,
    _first: u32,
    _parts: u32,
    _upload_key: Option<&str>,
) -> Result<UploadUrls, ApiError> {
    Err(not_yet("upload_urls"))
}

pub(super) async fn put_part(
    _c: &ApsClient,
    _url: &str,
    _bytes: Bytes,
) -> Result<String, ApiError> {
    Err(not_yet("put_part"))
}

pub(super) async fn complete_upload(
    _c: &ApsClient,
    _storage: &str,
    _upload_key: &str,
    _size: u64,
    _etags: &[String],
) -> Result<u64, ApiError> {
    Err(not_yet("complete_upload"))
}

pub(super) async fn item(
    _c: &ApsClient,
    _project: &str,
    _folder: &str,
    _name: &str,
    _storage: &str,
    _flavour: Flavour,
) -> Result<ItemInfo, ApiError> {
    Err(not_yet("item"))
}

pub(super) async fn version(
    _c: &ApsClient,
    _project: &str,
    _item: &str,
    _name: &str,
    _storage: &str,
    _flavour: Flavour,
) -> Result<VersionInfo, ApiError> {
    Err(not_yet("version"))
}

pub(super) async fn folder(
    _c: &ApsClient,
    _project: &str,
    _parent: &str,
    _name: &str,
    _flavour: Flavour,
) -> Result<FolderInfo, ApiError> {
    Err(not_yet("folder"))
}

pub(super) async fn item_now(
    _c: &ApsClient,
    _project: &str,
    _item: &str,
) -> Result<ItemInfo, ApiError> {
    Err(not_yet("item_now"))
}
