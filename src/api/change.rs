//! What the client sends to change or remove what exists (aps-api.md §8.3, §8.5): an item's
//! new name, a folder's new name, parent or visibility, and the tombstone version that deletes
//! an item on BIM 360 / ACC. The Data API has no `DELETE`: a deleted item stays, hidden, with
//! every version, and a later version restores it.
//!
//! A `PATCH` states what the resource should be, so sending it twice leaves the same thing and
//! it is retried like a read. The tombstone is a `POST` that creates a version: like the other
//! creates it goes again only when an attempt surely did not reach the service.

use super::create::{create, data_url};
use super::error::ApiError;
use super::oss::seg;
use super::resource::{Object, ResourceDoc};
use super::transport::{Transport, JSON_API};
use super::types::{self, FolderChange, FolderInfo, VersionInfo};
use serde_json::{json, Map, Value};

/// The extension type of a delete tombstone, on every hub type (§8.3).
const DELETED: &str = "versions:autodesk.core:Deleted";

/// `PATCH projects/:p/items/:i` of `displayName` (§8.5).
pub(super) async fn rename_item(
    c: &Transport,
    project: &str,
    item: &str,
    name: &str,
) -> Result<(), ApiError> {
    let body = json!({
        "jsonapi": { "version": "1.0" },
        "data": { "type": "items", "id": item, "attributes": { "displayName": name } }
    });
    let url = data_url(c, project, &format!("items/{}", seg(item)));
    let _: Object<ResourceDoc> = c.patch_doc(&url, &body, JSON_API).await?;
    Ok(())
}

/// `PATCH projects/:p/folders/:f` of what `change` names; the folder as answered.
pub(super) async fn folder(
    c: &Transport,
    project: &str,
    folder: &str,
    change: &FolderChange,
) -> Result<FolderInfo, ApiError> {
    let url = data_url(c, project, &format!("folders/{}", seg(folder)));
    let doc: Object<ResourceDoc> = c
        .patch_doc(&url, &folder_body(folder, change), JSON_API)
        .await?;
    types::folder_doc(&doc.0).map_err(ApiError::Decode)
}

/// The body of a folder `PATCH`: only the attributes and relationship that change.
fn folder_body(folder: &str, change: &FolderChange) -> Value {
    let mut attributes = Map::new();
    if let Some(name) = &change.name {
        attributes.insert("name".into(), json!(name));
    }
    if let Some(hidden) = change.hidden {
        attributes.insert("hidden".into(), json!(hidden));
    }
    let mut data = json!({ "type": "folders", "id": folder, "attributes": attributes });
    if let Some(parent) = &change.parent {
        data["relationships"] =
            json!({ "parent": { "data": { "type": "folders", "id": parent } } });
    }
    json!({ "jsonapi": { "version": "1.0" }, "data": data })
}

/// `POST projects/:p/versions` of a tombstone for `item` (no storage); the tombstone version.
pub(super) async fn delete_item(
    c: &Transport,
    project: &str,
    item: &str,
) -> Result<VersionInfo, ApiError> {
    let body = json!({
        "jsonapi": { "version": "1.0" },
        "data": {
            "type": "versions",
            "attributes": { "extension": { "type": DELETED, "version": "1.0" } },
            "relationships": { "item": { "data": { "type": "items", "id": item } } }
        }
    });
    let doc = create(c, project, "versions", &body).await?;
    types::version_doc(&doc).map_err(ApiError::Decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_patch_names_only_what_changes() {
        let moved = folder_body(
            "urn:f",
            &FolderChange {
                parent: Some("urn:p".into()),
                ..FolderChange::default()
            },
        );
        assert_eq!(moved["data"]["id"], "urn:f");
        assert_eq!(moved["data"]["attributes"], json!({}));
        assert_eq!(
            moved["data"]["relationships"]["parent"]["data"]["id"],
            "urn:p"
        );
        let hidden = folder_body(
            "urn:f",
            &FolderChange {
                name: Some("B".into()),
                hidden: Some(true),
                ..FolderChange::default()
            },
        );
        assert_eq!(
            hidden["data"]["attributes"],
            json!({"name": "B", "hidden": true})
        );
        assert!(hidden["data"].get("relationships").is_none());
    }
}
