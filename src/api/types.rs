//! What the filesystem needs to know about hubs, projects, folders, items and versions, parsed
//! leniently from JSON:API resources: a malformed resource is skipped with a log line, never a
//! panic, and never turned into a file with wrong bytes.

use super::oss::Signed;
use super::resource::{ContentsPage, DataPage, Each, Object, Resource, ResourceDoc, Scalar};
use chrono::DateTime;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::SystemTime;

/// What the service says about a resource beyond its name, times and bytes, kept so it can be
/// shown as extended attributes without another request. Strings that repeat across thousands
/// of entries (extension types, user names) are shared.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Meta {
    /// `attributes.extension.type`, e.g. `items:autodesk.bim360:File`.
    pub ext_type: Option<Arc<str>>,
    /// `createUserName` (or the id when no name is given).
    pub created_by: Option<Arc<str>>,
    /// `lastModifiedUserName` (or the id).
    pub modified_by: Option<Arc<str>>,
    /// `links.webView.href`: where the resource opens in the web client.
    pub web_url: Option<Box<str>>,
    /// The item is reserved (locked) for editing.
    pub reserved: Option<Box<Reserved>>,
}

/// Who holds a reservation (lock) on an item, and since when.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reserved {
    /// `reservedUserName` (or the id).
    pub by: Option<String>,
    /// `reservedTime` as the service spells it.
    pub since: Option<String>,
    /// `reservedUserId`, to tell a reservation of the mount's own user from another's.
    pub user_id: Option<String>,
}

/// Which family of extension types a project's new items, versions and folders carry: the
/// service refuses the core types in BIM 360 / ACC projects and the reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// `items:autodesk.core:File`, `versions:autodesk.core:File`, `folders:autodesk.core:Folder`
    /// (A360, Fusion Team and other team hubs).
    Core,
    /// `items:autodesk.bim360:File`, `versions:autodesk.bim360:File`,
    /// `folders:autodesk.bim360:Folder` (BIM 360 Docs and ACC).
    Bim360,
}

impl Flavour {
    /// The flavour of a project whose folder carries the extension type `ext_type`.
    pub fn of(ext_type: Option<&str>) -> Flavour {
        match ext_type {
            Some(t) if t.contains("bim360") => Flavour::Bim360,
            _ => Flavour::Core,
        }
    }

    /// The extension type of a new item.
    pub fn item_type(self) -> &'static str {
        match self {
            Flavour::Core => "items:autodesk.core:File",
            Flavour::Bim360 => "items:autodesk.bim360:File",
        }
    }

    /// The extension type of a new file version.
    pub fn version_type(self) -> &'static str {
        match self {
            Flavour::Core => "versions:autodesk.core:File",
            Flavour::Bim360 => "versions:autodesk.bim360:File",
        }
    }

    /// The extension type of a new folder.
    pub fn folder_type(self) -> &'static str {
        match self {
            Flavour::Core => "folders:autodesk.core:Folder",
            Flavour::Bim360 => "folders:autodesk.bim360:Folder",
        }
    }
}

/// Part URLs signed for a multipart upload, and the key that ties its parts together.
#[derive(Clone, Debug, PartialEq)]
pub struct UploadUrls {
    /// `uploadKey`: names the upload when more URLs are asked for and when it is completed.
    pub upload_key: String,
    /// One signed `PUT` URL per part asked for, in part order.
    pub urls: Vec<String>,
}

/// A hub (account).
#[derive(Clone, Debug, PartialEq)]
pub struct Hub {
    /// `b.<uuid>` / `a.<…>`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Metadata for attributes.
    pub meta: Meta,
}

/// A project.
#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    /// Project id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Metadata for attributes.
    pub meta: Meta,
}

/// A folder as listed.
#[derive(Clone, Debug, PartialEq)]
pub struct FolderInfo {
    /// Folder URN.
    pub id: String,
    /// `attributes.name`.
    pub name: String,
    /// Soft-deleted.
    pub hidden: bool,
    /// `createTime`.
    pub created: Option<SystemTime>,
    /// `lastModifiedTime`.
    pub modified: Option<SystemTime>,
    /// `lastModifiedTimeRollup` as spelled: unchanged means nothing below changed.
    pub rollup: Option<String>,
    /// `objectCount`: children, hidden ones included (how many pages a listing has).
    pub object_count: Option<u64>,
    /// Metadata for attributes.
    pub meta: Meta,
}

/// A version of an item.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionInfo {
    /// Version URN (with `?version=N`).
    pub id: String,
    /// `versionNumber`.
    pub number: u32,
    /// `attributes.name` — the file name to show.
    pub name: String,
    /// `storageSize`, when reported.
    pub size: Option<u64>,
    /// Storage object URN; absent for tombstones and cloud-only designs.
    pub storage: Option<String>,
    /// `createTime`.
    pub created: Option<SystemTime>,
    /// `lastModifiedTime`.
    pub modified: Option<SystemTime>,
    /// A `versions:autodesk.core:Deleted` tombstone.
    pub deleted: bool,
    /// Metadata for attributes.
    pub meta: Meta,
}

/// An item with its tip version as listed.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemInfo {
    /// Lineage URN.
    pub id: String,
    /// Item `displayName` (see [`ItemInfo::file_name`] for which name a file shows).
    pub display_name: String,
    /// Soft-deleted.
    pub hidden: bool,
    /// The tip version, when `included` carried it.
    pub tip: Option<VersionInfo>,
    /// Metadata for attributes (the item's own: its type and reservation).
    pub meta: Meta,
}

impl ItemInfo {
    /// The name the item's file has. BIM 360 / ACC reserve the item's `displayName` and name
    /// files by the tip version (a rename there is a new version with the new name); other hubs
    /// rename the item itself (`PATCH items`, which leaves its versions' names as they were),
    /// so their files take the item's `displayName`. Either falls back to the other when empty.
    pub fn file_name(&self) -> &str {
        let tip = self.tip.as_ref().map_or("", |t| t.name.as_str());
        let bim360 = Flavour::of(self.meta.ext_type.as_deref()) == Flavour::Bim360;
        match (bim360, tip.is_empty(), self.display_name.is_empty()) {
            (true, false, _) | (false, false, true) => tip,
            _ => &self.display_name,
        }
    }
}

/// A change to a folder (`PATCH folders/:f`, aps-api.md §8.5): any of a new name, a new parent
/// (a move) and hidden or shown again (deleted or restored on BIM 360 / ACC).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FolderChange {
    /// New `attributes.name`.
    pub name: Option<String>,
    /// New parent folder id (`relationships.parent`).
    pub parent: Option<String>,
    /// New `attributes.hidden`.
    pub hidden: Option<bool>,
}

/// One custom relationship ("ref") of a resource, seen from that resource.
#[derive(Clone, Debug, PartialEq)]
pub struct RefInfo {
    /// `xrefs`, `auxiliary`, `derived`, `dependencies`, `includes`.
    pub ref_type: String,
    /// `from` when the resource is the source, `to` when it is the target.
    pub direction: String,
    /// Type of the resource at the other end (`items`, `versions`, `folders`).
    pub other_type: String,
    /// Id of the resource at the other end.
    pub other_id: String,
    /// Name of the other end, when `included` carried it.
    pub other_name: Option<String>,
    /// For a version at the other end: its item's id, when `included` carried it.
    pub other_item: Option<String>,
}

/// One of the app's own OSS buckets.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    /// `bucketKey`.
    pub key: String,
    /// `policyKey`: `transient`, `temporary` or `persistent` (the retention policy).
    pub policy: String,
    /// `createdDate`.
    pub created: Option<SystemTime>,
}

/// One object of a bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectInfo {
    /// `objectKey` (may contain `/`).
    pub key: String,
    /// `size`.
    pub size: u64,
    /// `sha1`, when given.
    pub sha1: Option<String>,
}

/// One entry of a folder listing.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// A sub-folder.
    Folder(FolderInfo),
    /// An item.
    Item(ItemInfo),
}

/// Parses any of the ISO 8601 spellings the service uses (0–7 fractional digits, `Z` or an
/// offset).
pub fn parse_time(s: &str) -> Option<SystemTime> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(SystemTime::from)
}

/// The value at a JSON pointer made of plain keys (`/attributes/name`). `Value::pointer`
/// unescapes every token into a new string; with a few dozen lookups for each of thousands of
/// entries per listing page, that was a visible share of a cold `ls -l`.
fn at<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    pointer
        .strip_prefix('/')?
        .split('/')
        .try_fold(v, |v, key| v.get(key))
}

fn text(v: &Value, pointer: &str) -> Option<String> {
    at(v, pointer).and_then(Value::as_str).map(String::from)
}

fn skip(what: &str, v: &Value) -> Option<()> {
    skip_id(what, v.get("id").and_then(Value::as_str))
}

fn skip_resource(what: &str, r: &Resource) -> Option<()> {
    skip_id(what, r.id.0.as_deref())
}

fn skip_id(what: &str, id: Option<&str>) -> Option<()> {
    let id = id.unwrap_or("<no id>");
    tracing::warn!(what, id, "skipping a malformed resource");
    None
}

/// The resource `v` as apsfs reads it: the default (no id, so skipped) when `v` is not an
/// object. A `Value` holds no member twice, so reading it cannot fail otherwise.
pub fn resource(v: &Value) -> Resource {
    Object::<Resource>::deserialize(v)
        .map(|o| o.0)
        .unwrap_or_default()
}

/// A string member that is present and not empty, shared.
fn shared_text(s: &Scalar<String>) -> Option<Arc<str>> {
    s.0.as_deref().filter(|s| !s.is_empty()).map(Arc::from)
}

fn time_of(s: &Scalar<String>) -> Option<SystemTime> {
    s.0.as_deref().and_then(parse_time)
}

/// The attribute metadata of any Project/Data resource.
pub fn meta(r: &Resource) -> Meta {
    let a = &r.attributes.0;
    let reserved = a.reserved.0.unwrap_or(false).then(|| {
        Box::new(Reserved {
            by: a
                .reserved_user_name
                .0
                .clone()
                .or_else(|| a.reserved_user_id.0.clone()),
            since: a.reserved_time.0.clone(),
            user_id: a.reserved_user_id.0.clone(),
        })
    });
    Meta {
        ext_type: shared_text(&a.extension.0.kind),
        created_by: shared_text(&a.create_user_name).or_else(|| shared_text(&a.create_user_id)),
        modified_by: shared_text(&a.last_modified_user_name)
            .or_else(|| shared_text(&a.last_modified_user_id)),
        web_url: r
            .links
            .0
            .web_view
            .0
            .href
            .0
            .clone()
            .map(String::into_boxed_str),
        reserved,
    }
}

/// A hub resource.
pub fn hub(v: &Value) -> Option<Hub> {
    hub_of(&resource(v))
}

/// A hub, from its resource.
fn hub_of(r: &Resource) -> Option<Hub> {
    match (&r.id.0, &r.attributes.0.name.0) {
        (Some(id), Some(name)) => Some(Hub {
            id: id.clone(),
            name: name.clone(),
            meta: meta(r),
        }),
        _ => skip_resource("hub", r).and(None),
    }
}

/// A project resource.
pub fn project(v: &Value) -> Option<Project> {
    project_of(&resource(v))
}

/// A project, from its resource.
fn project_of(r: &Resource) -> Option<Project> {
    match (&r.id.0, &r.attributes.0.name.0) {
        (Some(id), Some(name)) => Some(Project {
            id: id.clone(),
            name: name.clone(),
            meta: meta(r),
        }),
        _ => skip_resource("project", r).and(None),
    }
}

/// A folder resource.
pub fn folder(r: &Resource) -> Option<FolderInfo> {
    let a = &r.attributes.0;
    let (Some(id), Some(name)) = (&r.id.0, a.name.0.as_ref().or(a.display_name.0.as_ref())) else {
        return skip_resource("folder", r).and(None);
    };
    Some(FolderInfo {
        id: id.clone(),
        name: name.clone(),
        hidden: a.hidden.0.unwrap_or(false),
        created: time_of(&a.create_time),
        modified: time_of(&a.last_modified_time),
        rollup: a.last_modified_time_rollup.0.clone(),
        object_count: a.object_count.0,
        meta: meta(r),
    })
}

/// A version resource.
pub fn version(r: &Resource) -> Option<VersionInfo> {
    let Some(id) = r.id.0.clone() else {
        return skip_resource("version", r).and(None);
    };
    let a = &r.attributes.0;
    let number = a
        .version_number
        .0
        .and_then(|n| u32::try_from(n).ok())
        .or_else(|| id.rsplit_once("version=").and_then(|(_, n)| n.parse().ok()))
        .unwrap_or(0);
    Some(VersionInfo {
        number,
        name: a
            .name
            .0
            .clone()
            .or_else(|| a.display_name.0.clone())
            .unwrap_or_default(),
        size: a.storage_size.0,
        storage: r.relationships.0.storage.0.data.0.id.0.clone(),
        created: time_of(&a.create_time),
        modified: time_of(&a.last_modified_time),
        deleted: a.extension.0.kind.0.as_deref() == Some("versions:autodesk.core:Deleted"),
        meta: meta(r),
        id,
    })
}

/// An item resource; its tip is looked up among `included` versions.
pub fn item(
    r: &Resource,
    included: &std::collections::HashMap<String, VersionInfo>,
) -> Option<ItemInfo> {
    let Some(id) = r.id.0.clone() else {
        return skip_resource("item", r).and(None);
    };
    let a = &r.attributes.0;
    let tip = r.relationships.0.tip.0.data.0.id.0.as_ref();
    Some(ItemInfo {
        id,
        display_name: a.display_name.0.clone().unwrap_or_default(),
        hidden: a.hidden.0.unwrap_or(false),
        tip: tip.and_then(|t| included.get(t).cloned()),
        meta: meta(r),
    })
}

/// The versions of a versions page (`items/:id/versions`), malformed ones skipped.
pub fn versions_page(doc: &Value) -> Result<Vec<VersionInfo>, String> {
    let data = doc
        .get("data")
        .and_then(Value::as_array)
        .ok_or("versions page has no data array")?;
    Ok(data
        .iter()
        .filter(|r| r["type"] == "versions")
        .filter_map(|r| version(&resource(r)))
        .collect())
}

/// The ref records of `…/relationships/refs`, with names of the far ends from `included`.
pub fn refs_page(doc: &Value) -> Result<Vec<RefInfo>, String> {
    let data = doc
        .get("data")
        .and_then(Value::as_array)
        .ok_or("refs document has no data array")?;
    let included: std::collections::HashMap<&str, &Value> = doc
        .get("included")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| Some((r.get("id")?.as_str()?, r)))
                .collect()
        })
        .unwrap_or_default();
    Ok(data
        .iter()
        .filter_map(|r| {
            let (Some(ref_type), Some(direction)) =
                (text(r, "/meta/refType"), text(r, "/meta/direction"))
            else {
                return skip("ref", r).and(None);
            };
            // `fromId`/`toId` say unambiguously which end is the other one; the record's own
            // type and id are the fallback when they are missing.
            let side = if direction == "from" { "to" } else { "from" };
            let other_id = text(r, &format!("/meta/{side}Id")).or_else(|| text(r, "/id"))?;
            let other_type = text(r, &format!("/meta/{side}Type"))
                .or_else(|| text(r, "/type"))
                .unwrap_or_default();
            let far = included.get(other_id.as_str());
            Some(RefInfo {
                other_name: far.and_then(|f| {
                    text(f, "/attributes/name").or_else(|| text(f, "/attributes/displayName"))
                }),
                other_item: far.and_then(|f| text(f, "/relationships/item/data/id")),
                ref_type,
                direction,
                other_type,
                other_id,
            })
        })
        .collect())
}

/// The buckets of one `GET /oss/v2/buckets` page.
pub fn buckets_page(doc: &Value) -> Result<Vec<Bucket>, String> {
    let items = doc
        .get("items")
        .and_then(Value::as_array)
        .ok_or("bucket list has no items array")?;
    Ok(items
        .iter()
        .filter_map(|b| {
            let Some(key) = text(b, "/bucketKey") else {
                return skip("bucket", b).and(None);
            };
            Some(Bucket {
                key,
                policy: text(b, "/policyKey").unwrap_or_default(),
                created: epoch_ms(b, "/createdDate"),
            })
        })
        .collect())
}

/// The objects of one `GET /oss/v2/buckets/:key/objects` page.
pub fn objects_page(doc: &Value) -> Result<Vec<ObjectInfo>, String> {
    let items = doc
        .get("items")
        .and_then(Value::as_array)
        .ok_or("object list has no items array")?;
    Ok(items
        .iter()
        .filter_map(
            |o| match (text(o, "/objectKey"), o.get("size").and_then(Value::as_u64)) {
                (Some(key), Some(size)) => Some(ObjectInfo {
                    key,
                    size,
                    sha1: text(o, "/sha1"),
                }),
                _ => {
                    let key = o
                        .get("objectKey")
                        .and_then(Value::as_str)
                        .unwrap_or("<no key>");
                    tracing::warn!(key, "skipping a malformed object entry");
                    None
                }
            },
        )
        .collect())
}

/// The OSS list's `next`, an absolute URL present only when more items exist.
pub fn oss_next(doc: &Value) -> Option<&str> {
    doc.get("next")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn epoch_ms(v: &Value, pointer: &str) -> Option<SystemTime> {
    let ms = at(v, pointer).and_then(Value::as_u64)?;
    SystemTime::UNIX_EPOCH.checked_add(std::time::Duration::from_millis(ms))
}

/// The resources of a collection page that could be parsed; each one that could not is
/// logged, naming `context`, and left out, so one bad resource never hides its siblings.
fn good<'a>(
    list: &'a [Each<Object<Resource>>],
    context: &'a dyn std::fmt::Display,
) -> impl Iterator<Item = &'a Resource> + 'a {
    list.iter().filter_map(move |e| match e {
        Each::Good(r) => Some(&r.0),
        bad => bad.clone().or_log(context).and(None),
    })
}

/// The `data` of a collection page, or why the page is malformed.
fn data_of<'a>(
    data: &'a Option<Vec<Each<Object<Resource>>>>,
    what: &str,
) -> Result<&'a [Each<Object<Resource>>], String> {
    data.as_deref()
        .ok_or_else(|| format!("{what} page has no data array"))
}

/// The hubs of a hub list page (`context` names it in the log).
pub fn hubs_page(page: &DataPage, context: &dyn std::fmt::Display) -> Result<Vec<Hub>, String> {
    collection(page, "hub list", context, hub_of)
}

/// The projects of a project list page.
pub fn projects_page(
    page: &DataPage,
    context: &dyn std::fmt::Display,
) -> Result<Vec<Project>, String> {
    collection(page, "project list", context, project_of)
}

/// The folders of a top folder list.
pub fn folders_page(
    page: &DataPage,
    context: &dyn std::fmt::Display,
) -> Result<Vec<FolderInfo>, String> {
    collection(page, "top folder list", context, folder)
}

/// What `parse` makes of each resource of a collection page (a `what`) that could be read.
fn collection<T>(
    page: &DataPage,
    what: &str,
    context: &dyn std::fmt::Display,
    parse: fn(&Resource) -> Option<T>,
) -> Result<Vec<T>, String> {
    Ok(good(data_of(&page.data, what)?, context)
        .filter_map(parse)
        .collect())
}

/// One page of folder contents: entries in order, tips matched from `included`.
pub fn contents_page(page: &ContentsPage) -> Result<Vec<Entry>, String> {
    contents_page_in(page, &"a folder listing")
}

/// [`contents_page`], naming `context` (the folder and page) for each resource left out.
pub fn contents_page_in(
    page: &ContentsPage,
    context: &dyn std::fmt::Display,
) -> Result<Vec<Entry>, String> {
    let data = data_of(&page.data, "contents")?;
    let included = included_versions(&page.included.0, context);
    Ok(good(data, context)
        .filter_map(|r| match r.kind.0.as_deref() {
            Some("folders") => folder(r).map(Entry::Folder),
            Some("items") => item(r, &included).map(Entry::Item),
            _ => skip_resource("listing entry", r).and(None),
        })
        .collect())
}

/// The versions among `included` resources, by id (an item's tip is looked up there).
fn included_versions(
    included: &[Each<Object<Resource>>],
    context: &dyn std::fmt::Display,
) -> std::collections::HashMap<String, VersionInfo> {
    good(included, context)
        .filter(|r| r.kind.0.as_deref() == Some("versions"))
        .filter_map(version)
        .map(|v| (v.id.clone(), v))
        .collect()
}

/// The `data` of a one-resource document, when it is a `kind` resource.
fn doc_data<'a>(doc: &'a ResourceDoc, kind: &str) -> Result<&'a Resource, String> {
    let r = &doc.data.0;
    match r.kind.0.as_deref() {
        Some(k) if k == kind => Ok(r),
        other => Err(format!("expected a {kind} resource in data, got {other:?}")),
    }
}

/// The item of a one-item document (`GET items/:id`, the answer to `POST items`) with its tip
/// version from `included`; a document without that tip is malformed, since the item is
/// wanted for what its tip is now.
pub fn item_doc(doc: &ResourceDoc) -> Result<ItemInfo, String> {
    let r = doc_data(doc, "items")?;
    let included = included_versions(&doc.included.0, &"an item document");
    let item = item(r, &included).ok_or("the item has no id")?;
    if item.tip.is_none() {
        return Err(format!("item {} comes without its tip version", item.id));
    }
    Ok(item)
}

/// The version of a one-version document (the answer to `POST versions`).
pub fn version_doc(doc: &ResourceDoc) -> Result<VersionInfo, String> {
    version(doc_data(doc, "versions")?).ok_or_else(|| "the version has no id".into())
}

/// The folder of a one-folder document (the answer to `POST folders`).
pub fn folder_doc(doc: &ResourceDoc) -> Result<FolderInfo, String> {
    folder(doc_data(doc, "folders")?).ok_or_else(|| "the folder has no id or name".into())
}

/// `links.next.href`, the only reliable "more pages" signal.
pub fn next_link(doc: &Value) -> Option<&str> {
    at(doc, "/links/next/href").and_then(Value::as_str)
}

/// The signed URLs of a `batchsigneds3download` answer, by object key: only results that carry a
/// usable single `url` (status `complete`, `fallback`, or none given, as for the single call).
/// Anything else (a per-object error, whose shape is unconfirmed, or `chunked` with only
/// per-chunk `urls`) is left out, for the object to be signed on its own. An answer without a
/// `results` map is an error.
pub fn batch_download_urls(
    doc: &Value,
) -> Result<std::collections::HashMap<String, Signed>, String> {
    let results = doc
        .get("results")
        .and_then(Value::as_object)
        .ok_or("batch signing answer has no results map")?;
    Ok(results
        .iter()
        .filter(|(_, r)| {
            matches!(
                r.get("status").map(Value::as_str),
                None | Some(Some("complete" | "fallback"))
            )
        })
        .filter_map(|(key, r)| Some((key.clone(), signed(r)?)))
        .collect())
}

/// The URL and object size of one signed download (a `signeds3download` answer, or one result
/// of a batch); `None` without a usable `url`. A `size` that is not a whole number is unknown.
pub fn signed(r: &Value) -> Option<Signed> {
    let url = r.get("url")?.as_str().filter(|u| !u.is_empty())?;
    Some(Signed {
        url: url.to_string(),
        size: r.get("size").and_then(Value::as_u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A contents page given as a JSON tree, parsed as the client parses the bytes.
    fn page(doc: &Value) -> Result<Vec<Entry>, String> {
        let bytes = serde_json::to_vec(doc).map_err(|e| e.to_string())?;
        let page: Object<ContentsPage> =
            serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        contents_page(&page.0)
    }
    use serde_json::json;

    #[test]
    fn times_in_every_spelling() {
        let a = parse_time("2015-11-27T11:11:23.000Z").unwrap();
        let b = parse_time("2015-11-27T11:11:23.0000000Z").unwrap();
        let c = parse_time("2015-11-27T11:11:23+00:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn contents_match_tips_and_skip_garbage() {
        let doc = json!({
            "data": [
                {"type": "folders", "id": "f1", "attributes": {"name": "Sub", "hidden": false}},
                {"type": "items", "id": "i1", "attributes": {"displayName": "x"},
                 "relationships": {"tip": {"data": {"type": "versions", "id": "v1?version=2"}}}},
                {"type": "items", "attributes": {}},
                {"type": "weird", "id": "w"},
                "not even an object"
            ],
            "included": [
                {"type": "versions", "id": "v1?version=2",
                 "attributes": {"name": "a.rvt", "versionNumber": 2, "storageSize": 5,
                                "lastModifiedTime": "2020-01-01T00:00:00.0000000Z",
                                "extension": {"type": "versions:autodesk.core:File"}},
                 "relationships": {"storage": {"data": {"type": "objects", "id": "urn:adsk.objects:os.object:b/k"}}}}
            ]
        });
        let e = page(&doc).unwrap();
        assert_eq!(e.len(), 2);
        let Entry::Item(it) = &e[1] else { panic!() };
        let tip = it.tip.as_ref().unwrap();
        assert_eq!(
            (tip.name.as_str(), tip.number, tip.size),
            ("a.rvt", 2, Some(5))
        );
        assert_eq!(
            tip.storage.as_deref(),
            Some("urn:adsk.objects:os.object:b/k")
        );
        assert!(page(&json!({"data": 3})).is_err());
    }

    #[test]
    fn refs_name_the_far_end_from_either_side() {
        let doc = json!({
            "data": [
                {"type": "versions", "id": "urn:v:b?version=1",
                 "meta": {"refType": "xrefs", "direction": "from", "fromId": "urn:v:a?version=3",
                          "fromType": "versions", "toId": "urn:v:b?version=1", "toType": "versions"}},
                {"type": "versions", "id": "urn:v:c?version=2",
                 "meta": {"refType": "auxiliary", "direction": "to"}},
                {"type": "versions", "id": "x", "meta": {"refType": 5}}
            ],
            "included": [
                {"type": "versions", "id": "urn:v:b?version=1", "attributes": {"name": "b.dwg"},
                 "relationships": {"item": {"data": {"type": "items", "id": "urn:item:b"}}}}
            ]
        });
        let refs = refs_page(&doc).unwrap();
        assert_eq!(refs.len(), 2, "the malformed record is skipped");
        assert_eq!(refs[0].other_id, "urn:v:b?version=1");
        assert_eq!(refs[0].other_name.as_deref(), Some("b.dwg"));
        assert_eq!(refs[0].other_item.as_deref(), Some("urn:item:b"));
        assert_eq!(
            (refs[1].direction.as_str(), refs[1].other_name.as_ref()),
            ("to", None)
        );
    }

    #[test]
    fn oss_lists_skip_garbage_and_follow_next() {
        let doc = json!({
            "items": [
                {"bucketKey": "b", "objectKey": "a/b.txt", "size": 3, "sha1": "ab"},
                {"bucketKey": "b", "objectKey": "neg", "size": -1},
                {"bucketKey": "b", "size": 3}
            ],
            "next": "https://host/oss/v2/buckets/b/objects?startAt=a%2Fb.txt&limit=1"
        });
        let o = objects_page(&doc).unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(
            (o[0].key.as_str(), o[0].size, o[0].sha1.as_deref()),
            ("a/b.txt", 3, Some("ab"))
        );
        assert!(oss_next(&doc).is_some());
        assert!(oss_next(&json!({"items": [], "next": ""})).is_none());
        let b = buckets_page(&json!({"items": [{"bucketKey": "k", "policyKey": "transient", "createdDate": 1697040000000u64}, {"policyKey": "x"}]})).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].policy, "transient");
        assert!(b[0].created.is_some());
        assert!(buckets_page(&json!({"items": 7})).is_err());
    }

    #[test]
    fn metadata_prefers_names_and_reads_reservations() {
        let v = json!({"attributes": {"createUserId": "U1", "lastModifiedUserName": "Jane",
            "reserved": true, "reservedUserName": "Bob", "reservedTime": "2024-01-01T00:00:00Z",
            "extension": {"type": "items:autodesk.core:File"}},
            "links": {"webView": {"href": "https://web/x"}}});
        let m = meta(&resource(&v));
        assert_eq!(m.created_by.as_deref(), Some("U1"));
        assert_eq!(m.modified_by.as_deref(), Some("Jane"));
        assert_eq!(m.web_url.as_deref(), Some("https://web/x"));
        let r = m.reserved.unwrap();
        assert_eq!(
            (r.by.as_deref(), r.since.as_deref()),
            (Some("Bob"), Some("2024-01-01T00:00:00Z"))
        );
        assert_eq!(
            meta(&resource(&json!({"attributes": {"reserved": "yes"}}))).reserved,
            None
        );
    }

    /// A one-resource document given as a JSON tree, read as the client reads the bytes.
    fn doc(v: &Value) -> ResourceDoc {
        let bytes = serde_json::to_vec(v).unwrap();
        serde_json::from_slice::<Object<ResourceDoc>>(&bytes)
            .unwrap()
            .0
    }

    #[test]
    fn one_resource_documents() {
        let item = json!({
            "data": {"type": "items", "id": "urn:i", "attributes": {"displayName": "a.txt",
                     "reserved": true, "reservedUserId": "U2"},
                     "relationships": {"tip": {"data": {"type": "versions", "id": "urn:v?version=3"}}}},
            "included": [
                {"type": "versions", "id": "urn:v?version=3", "attributes": {"name": "a.txt", "storageSize": 4},
                 "relationships": {"storage": {"data": {"id": "urn:adsk.objects:os.object:b/k"}}}},
                "garbage"
            ]
        });
        let it = item_doc(&doc(&item)).unwrap();
        let tip = it.tip.as_ref().unwrap();
        assert_eq!((tip.number, tip.size), (3, Some(4)));
        assert_eq!(
            it.meta.reserved.unwrap().user_id.as_deref(),
            Some("U2"),
            "the reservation is the item's"
        );
        let mut no_tip = item.clone();
        no_tip["included"] = json!([]);
        assert!(item_doc(&doc(&no_tip)).is_err());
        assert!(item_doc(&doc(&json!({"data": []}))).is_err());
        let v = json!({"data": {"type": "versions", "id": "urn:v?version=2", "attributes": {"name": "a.txt"}}});
        assert_eq!(version_doc(&doc(&v)).unwrap().number, 2);
        assert!(folder_doc(&doc(&v)).is_err(), "a version is no folder");
        let f = json!({"data": {"type": "folders", "id": "urn:f", "attributes": {"name": "New"}}});
        assert_eq!(folder_doc(&doc(&f)).unwrap().name, "New");
    }

    #[test]
    fn batch_answers_keep_only_usable_urls() {
        let doc = json!({"results": {
            "a": {"status": "complete", "url": "https://s3/a", "size": 1},
            "b": {"status": "error", "reason": "Object not found"},
            "c": {"status": "chunked", "urls": {"0-9": "https://s3/c0"}},
            "d": {"status": "fallback", "url": "https://oss/d"},
            "e": {"url": "https://s3/e"},
            "f": {"status": "complete"},
            "g": {"status": "complete", "url": 7},
            "h": "nonsense"
        }});
        let urls = batch_download_urls(&doc).unwrap();
        let mut keys: Vec<&str> = urls.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["a", "d", "e"]);
        assert_eq!(urls["a"].url, "https://s3/a");
        assert_eq!(urls["a"].size, Some(1));
        assert_eq!(urls["d"].size, None);
        assert!(batch_download_urls(&json!({"reason": "x"})).is_err());
        assert!(batch_download_urls(&json!({"results": {}}))
            .unwrap()
            .is_empty());
    }
}
