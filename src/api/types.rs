//! What the filesystem needs to know about hubs, projects, folders, items and versions, parsed
//! leniently from JSON:API resources: a malformed resource is skipped with a log line, never a
//! panic, and never turned into a file with wrong bytes.

use chrono::DateTime;
use serde_json::Value;
use std::time::SystemTime;

/// A hub (account).
#[derive(Clone, Debug, PartialEq)]
pub struct Hub {
    /// `b.<uuid>` / `a.<…>`.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// A project.
#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    /// Project id.
    pub id: String,
    /// Display name.
    pub name: String,
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
}

/// An item with its tip version as listed.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemInfo {
    /// Lineage URN.
    pub id: String,
    /// Item `displayName` (the tip's `name` is preferred for the file name).
    pub display_name: String,
    /// Soft-deleted.
    pub hidden: bool,
    /// The tip version, when `included` carried it.
    pub tip: Option<VersionInfo>,
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

fn text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer).and_then(Value::as_str).map(String::from)
}

fn time(v: &Value, pointer: &str) -> Option<SystemTime> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .and_then(parse_time)
}

fn flag(v: &Value, pointer: &str) -> bool {
    v.pointer(pointer).and_then(Value::as_bool).unwrap_or(false)
}

fn skip(what: &str, v: &Value) -> Option<()> {
    let id = v.get("id").and_then(Value::as_str).unwrap_or("<no id>");
    tracing::warn!(what, id, "skipping a malformed resource");
    None
}

/// A hub resource.
pub fn hub(v: &Value) -> Option<Hub> {
    match (text(v, "/id"), text(v, "/attributes/name")) {
        (Some(id), Some(name)) => Some(Hub { id, name }),
        _ => skip("hub", v).and(None),
    }
}

/// A project resource.
pub fn project(v: &Value) -> Option<Project> {
    match (text(v, "/id"), text(v, "/attributes/name")) {
        (Some(id), Some(name)) => Some(Project { id, name }),
        _ => skip("project", v).and(None),
    }
}

/// A folder resource.
pub fn folder(v: &Value) -> Option<FolderInfo> {
    let (Some(id), Some(name)) = (
        text(v, "/id"),
        text(v, "/attributes/name").or_else(|| text(v, "/attributes/displayName")),
    ) else {
        return skip("folder", v).and(None);
    };
    Some(FolderInfo {
        id,
        name,
        hidden: flag(v, "/attributes/hidden"),
        created: time(v, "/attributes/createTime"),
        modified: time(v, "/attributes/lastModifiedTime"),
        rollup: text(v, "/attributes/lastModifiedTimeRollup"),
        object_count: v.pointer("/attributes/objectCount").and_then(Value::as_u64),
    })
}

/// A version resource.
pub fn version(v: &Value) -> Option<VersionInfo> {
    let Some(id) = text(v, "/id") else {
        return skip("version", v).and(None);
    };
    let ext = text(v, "/attributes/extension/type").unwrap_or_default();
    let number = v
        .pointer("/attributes/versionNumber")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .or_else(|| id.rsplit_once("version=").and_then(|(_, n)| n.parse().ok()))
        .unwrap_or(0);
    Some(VersionInfo {
        number,
        name: text(v, "/attributes/name")
            .or_else(|| text(v, "/attributes/displayName"))
            .unwrap_or_default(),
        size: v.pointer("/attributes/storageSize").and_then(Value::as_u64),
        storage: text(v, "/relationships/storage/data/id"),
        created: time(v, "/attributes/createTime"),
        modified: time(v, "/attributes/lastModifiedTime"),
        deleted: ext == "versions:autodesk.core:Deleted",
        id,
    })
}

/// An item resource; its tip is looked up among `included` versions.
pub fn item(
    v: &Value,
    included: &std::collections::HashMap<String, VersionInfo>,
) -> Option<ItemInfo> {
    let Some(id) = text(v, "/id") else {
        return skip("item", v).and(None);
    };
    let tip = text(v, "/relationships/tip/data/id").and_then(|t| included.get(&t).cloned());
    Some(ItemInfo {
        id,
        display_name: text(v, "/attributes/displayName").unwrap_or_default(),
        hidden: flag(v, "/attributes/hidden"),
        tip,
    })
}

/// One page of folder contents: entries in order, tips matched from `included`.
pub fn contents_page(doc: &Value) -> Result<Vec<Entry>, String> {
    let data = doc
        .get("data")
        .and_then(Value::as_array)
        .ok_or("contents page has no data array")?;
    let included: std::collections::HashMap<String, VersionInfo> = doc
        .get("included")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|r| r["type"] == "versions")
                .filter_map(version)
                .map(|v| (v.id.clone(), v))
                .collect()
        })
        .unwrap_or_default();
    Ok(data
        .iter()
        .filter_map(|r| match r.get("type").and_then(Value::as_str) {
            Some("folders") => folder(r).map(Entry::Folder),
            Some("items") => item(r, &included).map(Entry::Item),
            _ => skip("listing entry", r).and(None),
        })
        .collect())
}

/// `links.next.href`, the only reliable "more pages" signal.
pub fn next_link(doc: &Value) -> Option<&str> {
    doc.pointer("/links/next/href").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let e = contents_page(&doc).unwrap();
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
        assert!(contents_page(&json!({"data": 3})).is_err());
    }
}
