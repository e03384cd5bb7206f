//! `PATCH` of folders, items and versions (§8.5): a folder is renamed, moved, hidden (the
//! BIM 360 delete) or shown again; an item or a version is renamed, on team hubs only, since
//! the reference says item and version PATCH are "not supported for BIM 360 Docs or ACC"
//! (there a rename is a new version with the new name).
//!
//! Refusals: 400 for a malformed body, a bad name, a move into the folder's own subtree and
//! item or version PATCH on BIM 360; 403 for a read-only project, for the project's root
//! folder and for a move straight under a BIM 360 root; 404 for what does not exist in the
//! project; 409 for a name a visible sibling holds; 423 for an item someone else reserved.

use super::data::{folder_in, item_in, version_in};
use super::write::{
    body, check_file_name, check_name, check_reservation, conflict, folder_answer, item_answer,
    name_taken, version_answer, writable_project, FOLDER_RESERVED,
};
use super::{write, Answer};
use crate::app::App;
use crate::clock::Stamp;
use crate::errors::ApiError;
use crate::request::Req;
use crate::stats::Made;
use crate::store::{Flavor, MoveError, Store};
use axum::http::StatusCode;
use serde_json::{Map, Value};

/// `data` of a PATCH body, whose `type` must be `kind`.
fn data_of<'v>(v: &'v Value, kind: &str) -> Result<&'v Value, ApiError> {
    let data = v
        .get("data")
        .filter(|d| d.is_object())
        .ok_or_else(|| ApiError::bad_input("data is required"))?;
    match data.get("type").and_then(Value::as_str) {
        Some(t) if t == kind => Ok(data),
        Some(t) => Err(ApiError::bad_input(format!(
            "data.type must be {kind:?}, got {t:?}"
        ))),
        None => Err(ApiError::bad_input(format!(
            "data.type is required and must be {kind:?}"
        ))),
    }
}

/// 400 unless `data.id` is absent or names the resource of the path (`urn`).
fn check_id(data: &Value, urn: &str) -> Result<(), ApiError> {
    match data.get("id") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(id)) if id == urn => Ok(()),
        Some(other) => Err(ApiError::bad_input(format!(
            "data.id {other} is not the id of the path ({urn})"
        ))),
    }
}

/// The object member `key` of `data` (`attributes`, `relationships`), empty when absent;
/// 400 when it holds a member other than `allowed`, so a change the emulator would not make
/// is never silently dropped.
fn members<'v>(
    data: &'v Value,
    key: &str,
    allowed: &[&str],
    what: &str,
) -> Result<Option<&'v Map<String, Value>>, ApiError> {
    let m = match data.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(ApiError::bad_input(format!("data.{key} must be an object"))),
    };
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_input(format!(
            "{what} cannot change data.{key}.{k}; it changes only {}",
            allowed
                .iter()
                .map(|a| format!("data.{key}.{a}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(Some(m))
}

/// The one attribute `name` an item or version PATCH carries, as a string; 400 when it is
/// missing, not a string, or not alone (relationships included).
fn only_attribute<'v>(data: &'v Value, name: &str, what: &str) -> Result<&'v str, ApiError> {
    if members(data, "relationships", &[], what)?.is_some_and(|m| !m.is_empty()) {
        return Err(ApiError::bad_input(format!(
            "{what} changes only data.attributes.{name}"
        )));
    }
    members(data, "attributes", &[name], what)?
        .and_then(|m| m.get(name))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::bad_input(format!("{what} needs data.attributes.{name} (a string)"))
        })
}

/// 400 on a BIM 360 / ACC project, where item and version PATCH do not exist.
fn team_only(store: &Store, project: usize, what: &str) -> Result<(), ApiError> {
    let flavor = store
        .projects
        .get(project)
        .and_then(|p| store.hubs.get(p.hub))
        .map(|h| h.flavor);
    if flavor == Some(Flavor::Bim360) {
        return Err(ApiError::bad_input(format!(
            "{what} is not supported for BIM 360 Docs or ACC projects; to rename a file there, \
             post a new version (POST versions) with the new name"
        )));
    }
    Ok(())
}

/// What a `PATCH folders` body asks for.
struct FolderChange {
    name: Option<String>,
    hidden: Option<bool>,
    parent: Option<String>,
}

impl FolderChange {
    /// Reads and checks the body (400 for anything malformed, a bad name, or no change).
    fn parse(v: &Value) -> Result<FolderChange, ApiError> {
        const WHAT: &str = "PATCH folders";
        let data = data_of(v, "folders")?;
        let attrs = members(data, "attributes", &["name", "hidden"], WHAT)?;
        let name = match attrs.and_then(|a| a.get("name")) {
            None => None,
            Some(Value::String(n)) => {
                check_name("Folder", n, &FOLDER_RESERVED)?;
                Some(n.clone())
            }
            Some(_) => return Err(ApiError::bad_input("attributes.name must be a string")),
        };
        let hidden = match attrs.and_then(|a| a.get("hidden")) {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(ApiError::bad_input("attributes.hidden must be a boolean")),
        };
        let rels = members(data, "relationships", &["parent"], WHAT)?;
        let parent = match rels.and_then(|r| r.get("parent")) {
            None => None,
            Some(p) => {
                match p.pointer("/data/type").and_then(Value::as_str) {
                    None | Some("folders") => {}
                    Some(t) => {
                        return Err(ApiError::bad_input(format!(
                            "relationships.parent must be a folder, got {t:?}"
                        )))
                    }
                }
                let id = p
                    .pointer("/data/id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ApiError::bad_input("relationships.parent.data.id is required")
                    })?;
                Some(id.to_string())
            }
        };
        if name.is_none() && hidden.is_none() && parent.is_none() {
            return Err(ApiError::bad_input(
                "PATCH folders needs attributes.name, attributes.hidden or relationships.parent",
            ));
        }
        Ok(FolderChange {
            name,
            hidden,
            parent,
        })
    }
}

/// `PATCH projects/:p/folders/:f` → 200 with the folder: any of a new `name`, a new parent
/// (the folder goes to the end of its listing), `hidden: true` (deleted) or `hidden: false`
/// (restored). A visible result must not share its name with a visible sibling (409). Each
/// change made counts once in the stats (`folders_renamed`, `_moved`, `_hidden`, `_restored`);
/// a PATCH that changes nothing answers 200 and counts nothing.
pub fn folder(app: &App, req: &Req, project: &str, id: &str) -> Answer {
    let v = body(req)?;
    let change = FolderChange::parse(&v)?;
    let now = Stamp::new(app.clock.now_ms());
    let mut store = write(app)?;
    writable_project(&store, project)?;
    let f = folder_in(&store, project, id)?;
    check_id(data_of(&v, "folders")?, &f.uid.folder_urn())?;
    let uid = f.uid;
    let Some(old_parent) = f.parent else {
        return Err(ApiError::not_authorized(
            "The project's root folder cannot be renamed, moved or hidden",
        ));
    };
    let new_parent = match &change.parent {
        Some(pid) => folder_in(&store, project, pid)?.uid,
        None => old_parent,
    };
    let moved = new_parent != old_parent;
    if moved {
        let bim360 = store
            .projects
            .get(f.project)
            .and_then(|p| store.hubs.get(p.hub))
            .is_some_and(|h| h.flavor == Flavor::Bim360);
        if bim360 && store.projects.get(f.project).map(|p| p.root) == Some(new_parent) {
            return Err(ApiError::not_authorized(
                "Folders cannot be moved directly under the project's root folder in BIM 360 \
                 or ACC; move it into Project Files or one of its folders",
            ));
        }
        if store.is_within(new_parent, uid) {
            return Err(ApiError::bad_input(
                "A folder cannot be moved into itself or into one of its own sub-folders",
            ));
        }
    }
    let name = change.name.clone().unwrap_or_else(|| f.name.clone());
    let renamed = name != f.name;
    let was_hidden = f.hidden;
    let hidden = change.hidden.unwrap_or(was_hidden);
    let restored = was_hidden && !hidden;
    if !hidden && (renamed || moved || restored) && name_taken(&store, new_parent, &name, Some(uid))
    {
        return Err(conflict(&format!("A folder or item named {name:?}")));
    }
    if moved {
        store
            .move_folder(uid, new_parent, now.ms)
            .map_err(|e| match e {
                MoveError::IntoItself => ApiError::bad_input(
                    "A folder cannot be moved into itself or into one of its own sub-folders",
                ),
                MoveError::Root => ApiError::not_authorized("The root folder cannot be moved"),
                MoveError::NotFound | MoveError::OtherProject => ApiError::data(
                    StatusCode::NOT_FOUND,
                    "FOLDER_NOT_FOUND",
                    "ApiError Folder not found",
                ),
            })?;
    }
    let changed = renamed || moved || hidden != was_hidden;
    if let Some(f) = store.folders.get_mut(&uid) {
        f.name = name;
        f.hidden = hidden;
        if changed {
            f.modified = Stamp {
                ms: now.ms,
                format: f.modified.format,
            };
        }
    }
    if changed {
        store.touch(uid, now.ms);
    }
    for (did, what) in [
        (renamed, Made::FolderRenamed),
        (moved, Made::FolderMoved),
        (hidden && !was_hidden, Made::FolderHidden),
        (restored, Made::FolderRestored),
    ] {
        if did {
            app.stats.made(what);
        }
    }
    folder_answer(app, &store, req, uid, StatusCode::OK)
}

/// `PATCH projects/:p/items/:i` → 200 with the item (its tip in `included`): a new
/// `displayName`, the only attribute it takes, on team hubs (400 on BIM 360). The item goes
/// by that name until its next version; the versions keep theirs. 409 when a visible sibling
/// has the name, 423 when someone else reserved the item.
pub fn item(app: &App, req: &Req, project: &str, id: &str) -> Answer {
    const WHAT: &str = "PATCH items";
    let v = body(req)?;
    let data = data_of(&v, "items")?;
    let name = only_attribute(data, "displayName", WHAT)?;
    let now = Stamp::new(app.clock.now_ms());
    let mut store = write(app)?;
    writable_project(&store, project)?;
    let it = item_in(&store, project, id)?;
    check_id(data, &it.uid.item_urn())?;
    team_only(&store, it.project, WHAT)?;
    check_file_name(app, name)?;
    check_reservation(it, req)?;
    let uid = it.uid;
    let parent = it.parent;
    let renamed = name != it.name();
    if renamed && !it.hidden && name_taken(&store, parent, name, Some(uid)) {
        return Err(conflict(&format!("A folder or item named {name:?}")));
    }
    if renamed {
        if let Some(it) = store.items.get_mut(&uid) {
            let tip_name = it.tip().map(|t| t.name.as_str());
            it.display_name = (tip_name != Some(name)).then(|| name.to_string());
            it.renamed = Some(Stamp {
                ms: now.ms,
                format: it.modified().format,
            });
        }
        store.touch(parent, now.ms);
        app.stats.made(Made::ItemRenamed);
    }
    item_answer(app, &store, req, uid, StatusCode::OK)
}

/// `PATCH projects/:p/versions/:v` → 200 with the version (its item in `included`): a new
/// `name`, the only attribute it takes, on team hubs (400 on BIM 360). Renaming the tip of an
/// item that goes by its tip's name renames the item too, so that name must be free (409);
/// under a `PATCH items` name, or for an older version, no sibling is affected. 423 when
/// someone else reserved the item.
pub fn version(app: &App, req: &Req, project: &str, id: &str) -> Answer {
    const WHAT: &str = "PATCH versions";
    let v = body(req)?;
    let data = data_of(&v, "versions")?;
    let name = only_attribute(data, "name", WHAT)?;
    let now = Stamp::new(app.clock.now_ms());
    let mut store = write(app)?;
    writable_project(&store, project)?;
    let (it, ver) = version_in(&store, req, project, id)?;
    check_id(data, &it.uid.version_urn(ver.number))?;
    team_only(&store, it.project, WHAT)?;
    check_file_name(app, name)?;
    check_reservation(it, req)?;
    let (uid, parent, number) = (it.uid, it.parent, ver.number);
    let renamed = name != ver.name;
    let names_item = it.display_name.is_none() && it.tip().map(|t| t.number) == Some(number);
    if renamed && names_item && !it.hidden && name_taken(&store, parent, name, Some(uid)) {
        return Err(conflict(&format!("A folder or item named {name:?}")));
    }
    if renamed {
        let ver = store
            .items
            .get_mut(&uid)
            .and_then(|it| it.versions.get_mut(number as usize - 1))
            .ok_or_else(|| ApiError::bad_input("version vanished"))?;
        ver.name = name.to_string();
        ver.modified = Stamp {
            ms: now.ms,
            format: ver.modified.format,
        };
        store.touch(parent, now.ms);
        app.stats.made(Made::VersionRenamed);
    }
    version_answer(app, &store, req, uid, number, StatusCode::OK)
}
