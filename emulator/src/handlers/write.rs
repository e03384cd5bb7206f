//! Data service writes a desktop save would use: storage placeholders, new items, new versions
//! (including delete tombstones and `copyFrom`), folders and refs; with the refusals a client
//! must handle: a read-only project (403), a reserved item (423), a bad name (400) and a name
//! already taken (409). Tombstones follow the hub: BIM 360 hides the item, team hubs refuse.

use super::data::{folder_in, item_in, project_index, version_in};
use super::{jsonapi, write, Answer};
use crate::app::App;
use crate::clock::Stamp;
use crate::errors::ApiError;
use crate::ids::{
    object_key, parse_folder_urn, parse_item_urn, parse_object_urn, parse_version_urn, Uid,
    OBJECT_PREFIX,
};
use crate::paging::self_href;
use crate::render::{document, Renderer};
use crate::request::Req;
use crate::router::Kind;
use crate::stats::Made;
use crate::store::{
    Flavor, Item, ItemKind, Node, Object, Ref, Store, Version, VersionKind, DM_BUCKET,
};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{json, Value};

/// The request body as JSON; 400 when it is not.
pub(super) fn body(req: &Req) -> Result<Value, ApiError> {
    serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_input(format!("Request body is not valid JSON: {e}")))
}

/// The string at `pointer`; 400 naming it when absent.
fn str_at<'v>(v: &'v Value, pointer: &str) -> Result<&'v str, ApiError> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_input(format!("{pointer} is required")))
}

/// 409 for `what` (a name) already taken in the folder.
pub(super) fn conflict(what: &str) -> ApiError {
    ApiError::data(
        StatusCode::CONFLICT,
        "CONFLICT",
        format!("{what} already exists"),
    )
}

/// Characters a folder name may not hold (§6, from `POST folders`). The reference spells the
/// tenth as a backtick, the OpenAPI as an apostrophe; both are refused, so a client that
/// passes here passes under either reading.
pub(super) const FOLDER_RESERVED: [char; 20] = [
    '<', '>', ':', '"', '/', '\\', '|', '?', '*', '`', '\'', '\n', '\r', '\t', '\0', '\u{c}', '¢',
    '™', '$', '®',
];

/// The characters an item or version name may not hold. Their rules are UNCONFIRMED (§6,
/// §14); the emulator refuses only what no file name can hold, `/` and NUL (the FUSE layer
/// could not show them either), unless `strict_item_names` asks for the folder set.
const FILE_RESERVED: [char; 2] = ['/', '\0'];

/// The project `id` names, if a write may go there: 404 when unknown, 403 when the caller's
/// role in it is read-only (`PUT /__emulator/projects/:id`).
pub(super) fn writable_project(store: &Store, project: &str) -> Result<usize, ApiError> {
    let p = project_index(store, project)?;
    if store.projects.get(p).is_some_and(|p| p.read_only) {
        return Err(ApiError::not_authorized(
            "You don't have permission to change anything in this project",
        ));
    }
    Ok(p)
}

/// 1 to 255 characters (§6, and the OpenAPI's for items and versions), none of `reserved`.
pub(super) fn check_name(what: &str, name: &str, reserved: &[char]) -> Result<(), ApiError> {
    if name.is_empty() || name.chars().count() > 255 {
        return Err(ApiError::bad_input(format!(
            "{what} name must be 1 to 255 characters"
        )));
    }
    if let Some(c) = name.chars().find(|c| reserved.contains(c)) {
        return Err(ApiError::bad_input(format!(
            "{what} name contains the reserved character {c:?}"
        )));
    }
    Ok(())
}

/// An item or version name a request gives.
pub(super) fn check_file_name(app: &App, name: &str) -> Result<(), ApiError> {
    let reserved: &[char] = if app.faults.get().strict_item_names {
        &FOLDER_RESERVED
    } else {
        &FILE_RESERVED
    };
    check_name("File", name, reserved)
}

/// 423 unless the request acts as the user who reserved the item (or nobody did).
pub(super) fn check_reservation(it: &Item, req: &Req) -> Result<(), ApiError> {
    match &it.reserved {
        Some(lock) if req.acting_user() != Some(lock.user_id.as_str()) => {
            Err(ApiError::locked(format!(
                "The item is reserved by {} since {}",
                lock.user_name,
                lock.since.render()
            )))
        }
        _ => Ok(()),
    }
}

/// Whether a visible child of `folder` other than `except` (the folder or item being renamed
/// or moved) already carries `name`; an item by the name it goes by ([`Item::name`]).
pub(super) fn name_taken(store: &Store, folder: Uid, name: &str, except: Option<Uid>) -> bool {
    store.folders.get(&folder).is_some_and(|f| {
        f.children.iter().any(|n| match n {
            Node::Folder(u) => {
                Some(*u) != except
                    && store
                        .folders
                        .get(u)
                        .is_some_and(|c| !c.hidden && c.name == name)
            }
            Node::Item(u) => {
                Some(*u) != except
                    && store
                        .items
                        .get(u)
                        .is_some_and(|i| !i.hidden && i.name() == name)
            }
        })
    })
}

/// Under the `refuse_storage_reuse` fault, 400 when object `key` already holds the bytes of
/// some version: whether the real service lets a new version (a BIM 360 rename) reuse its
/// tip's storage is UNCONFIRMED, so a client's fallback to uploading again can be tested.
fn check_storage_unused(app: &App, store: &Store, key: &str) -> Result<(), ApiError> {
    let used = || {
        store
            .items
            .values()
            .any(|i| i.versions.iter().any(|v| v.storage.as_deref() == Some(key)))
    };
    if app.faults.get().refuse_storage_reuse && used() {
        return Err(ApiError::bad_input(
            "storage is already used by another version",
        ));
    }
    Ok(())
}

/// Whether a delete tombstone may be added to `it`: team hubs (A360, Fusion Team) refuse
/// deleting with 400 as third parties report; on BIM 360 an item whose tip is already a
/// tombstone answers 409 CONFLICT, since the request is well formed and only the item's state
/// (already deleted) is in the way: a client whose first tombstone's answer was lost learns
/// that its delete took.
fn check_tombstone(store: &Store, it: &Item) -> Result<(), ApiError> {
    let flavor = store
        .projects
        .get(it.project)
        .and_then(|p| store.hubs.get(p.hub))
        .map(|h| h.flavor);
    if flavor == Some(Flavor::Team) {
        return Err(ApiError::bad_input(
            "Deleting is not supported for this hub type",
        ));
    }
    if it.tip().is_some_and(|t| t.kind == VersionKind::Deleted) {
        return Err(ApiError::data(
            StatusCode::CONFLICT,
            "CONFLICT",
            "The item is already deleted: its tip is a Deleted version",
        ));
    }
    Ok(())
}

/// Resolves an uploaded storage URN to (object key, size); it must be in the Data Management
/// bucket and its bytes must have been uploaded.
fn uploaded_storage(store: &Store, urn: &str) -> Result<(String, u64), ApiError> {
    let (bucket, key) = parse_object_urn(urn)
        .ok_or_else(|| ApiError::bad_input("storage id is not an object URN"))?;
    if bucket != DM_BUCKET {
        return Err(ApiError::bad_input(format!(
            "storage must be in {DM_BUCKET}"
        )));
    }
    let o = store
        .object(bucket, key)
        .ok_or_else(|| ApiError::bad_input("storage object does not exist"))?;
    let c = o
        .content
        .as_ref()
        .ok_or_else(|| ApiError::bad_input("storage object has not been uploaded"))?;
    Ok((key.to_string(), c.size()))
}

/// `POST projects/:p/storage` → 201 with a placeholder object in the target folder's bucket.
pub fn create_storage(app: &App, req: &Req, project: &str) -> Answer {
    let v = body(req)?;
    let name = str_at(&v, "/data/attributes/name")?;
    let target = str_at(&v, "/data/relationships/target/data/id")?;
    let mut store = write(app)?;
    let p = writable_project(&store, project)?;
    folder_in(&store, project, target)?;
    let key = object_key(&Uid::random().token(), 1, name);
    store.put_object(
        DM_BUCKET,
        key.clone(),
        Object {
            content: None,
            created_ms: app.clock.now_ms(),
            content_type: crate::render::mime_type(name).to_string(),
            chunked: false,
            project: Some(p),
        },
    );
    app.stats.made(Made::Storage);
    let urn = format!("{OBJECT_PREFIX}{DM_BUCKET}/{key}");
    let data = json!({
        "type": "objects",
        "id": urn,
        "relationships": { "target": { "data": { "type": "folders", "id": target } } },
        "links": { "self": { "href": format!("{}/oss/v2/buckets/{DM_BUCKET}/objects/{}", app.base, crate::segment::seg(&key)) } },
    });
    Ok(jsonapi(
        StatusCode::CREATED,
        document(self_href(&app.base, req), data),
    ))
}

fn version_kind(ext: Option<&str>) -> VersionKind {
    match ext {
        Some("versions:autodesk.core:Deleted") => VersionKind::Deleted,
        Some(e) if e.contains("fusion360:Design") => VersionKind::Design,
        _ => VersionKind::File,
    }
}

/// `POST projects/:p/items` → 201: a new item whose first version is in `included`.
pub fn create_item(app: &App, req: &Req, project: &str) -> Answer {
    let v = body(req)?;
    let parent = str_at(&v, "/data/relationships/parent/data/id")?;
    let tip_ref = str_at(&v, "/data/relationships/tip/data/id")?;
    let included = v["included"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["id"].as_str() == Some(tip_ref)))
        .ok_or_else(|| {
            ApiError::bad_input("included must hold the version named by relationships.tip")
        })?;
    let name = included
        .pointer("/attributes/name")
        .and_then(Value::as_str)
        .or_else(|| {
            v.pointer("/data/attributes/displayName")
                .and_then(Value::as_str)
        })
        .ok_or_else(|| ApiError::bad_input("included version needs attributes.name"))?
        .to_string();
    check_file_name(app, &name)?;
    if let Some(shown) = v
        .pointer("/data/attributes/displayName")
        .and_then(Value::as_str)
    {
        check_file_name(app, shown)?;
    }
    let storage = str_at(included, "/relationships/storage/data/id")?;
    let now = Stamp::new(app.clock.now_ms());
    let mut store = write(app)?;
    writable_project(&store, project)?;
    let folder = folder_in(&store, project, parent)?.uid;
    if name_taken(&store, folder, &name, None) {
        return Err(conflict(&format!("An item named {name:?}")));
    }
    let (key, size) = uploaded_storage(&store, storage)?;
    check_storage_unused(app, &store, &key)?;
    let uid = Uid::random();
    let version = Version {
        number: 1,
        name,
        created: now,
        modified: now,
        kind: VersionKind::File,
        storage: Some(key),
        size,
        size_listed: true,
    };
    store
        .add_item(folder, uid, ItemKind::File, version)
        .ok_or_else(|| ApiError::bad_input("parent folder vanished"))?;
    app.stats.made(Made::Item);
    item_answer(app, &store, req, uid, StatusCode::CREATED)
}

/// The answer about item `uid` (made or changed): the item, its tip in `included`.
pub(super) fn item_answer(
    app: &App,
    store: &Store,
    req: &Req,
    uid: Uid,
    status: StatusCode,
) -> Answer {
    let r = Renderer::new(store, &app.base);
    let it = store
        .items
        .get(&uid)
        .ok_or_else(|| ApiError::bad_input("item vanished"))?;
    let mut doc = document(self_href(&app.base, req), r.item(it));
    doc["included"] = Value::Array(it.tip().map(|t| r.version(it, t)).into_iter().collect());
    Ok(jsonapi(status, doc))
}

/// `POST projects/:p/versions` → 201: a new tip (file, tombstone, or `copyFrom` a version);
/// 423 while someone else holds the item's reservation. A tombstone counts in both
/// `versions_created` and `tombstones`.
pub fn create_version(app: &App, req: &Req, project: &str) -> Answer {
    let now = Stamp::new(app.clock.now_ms());
    let mut store = write(app)?;
    writable_project(&store, project)?;
    let (item_uid, version) = match req.q("copyFrom") {
        Some(from) => copied_version(&store, req, project, from, now)?,
        None => posted_version(app, &store, req, project, now)?,
    };
    let tombstone = version.kind == VersionKind::Deleted;
    let n = store
        .add_version(item_uid, version)
        .ok_or_else(|| ApiError::bad_input("item not found"))?;
    app.stats.made(Made::Version);
    if tombstone {
        app.stats.made(Made::Tombstone);
    }
    version_answer(app, &store, req, item_uid, n, StatusCode::CREATED)
}

/// The answer about version `number` of item `uid` (made or changed): the version, its item
/// in `included`.
pub(super) fn version_answer(
    app: &App,
    store: &Store,
    req: &Req,
    uid: Uid,
    number: u32,
    status: StatusCode,
) -> Answer {
    let r = Renderer::new(store, &app.base);
    let it = store
        .items
        .get(&uid)
        .ok_or_else(|| ApiError::bad_input("item vanished"))?;
    let v = (number as usize)
        .checked_sub(1)
        .and_then(|i| it.versions.get(i))
        .ok_or_else(|| ApiError::bad_input("version vanished"))?;
    let mut doc = document(self_href(&app.base, req), r.version(it, v));
    doc["included"] = json!([r.item(it)]);
    Ok(jsonapi(status, doc))
}

/// `POST versions?copyFrom=<version>`: the item's new tip copies that version (a restore).
fn copied_version(
    store: &Store,
    req: &Req,
    project: &str,
    from: &str,
    now: Stamp,
) -> Result<(Uid, Version), ApiError> {
    let (it, src) = version_in(store, req, project, from)?;
    if src.kind == VersionKind::Deleted {
        check_tombstone(store, it)?;
    }
    check_reservation(it, req)?;
    let copy = Version {
        number: 0,
        name: src.name.clone(),
        created: now,
        modified: now,
        kind: src.kind,
        storage: src.storage.clone(),
        size: src.size,
        size_listed: src.size_listed,
    };
    Ok((it.uid, copy))
}

/// `POST versions` with a body: a file version on uploaded storage, or a tombstone. A name
/// other than the tip's is a rename and is checked (400) and must be free (409); keeping the
/// tip's name is not, so an item that already shares its name (§6) still takes new versions.
fn posted_version(
    app: &App,
    store: &Store,
    req: &Req,
    project: &str,
    now: Stamp,
) -> Result<(Uid, Version), ApiError> {
    let v = body(req)?;
    let item = str_at(&v, "/data/relationships/item/data/id")?;
    let it = item_in(store, project, item)?;
    let kind = version_kind(
        v.pointer("/data/attributes/extension/type")
            .and_then(Value::as_str),
    );
    if kind == VersionKind::Deleted {
        check_tombstone(store, it)?;
    }
    check_reservation(it, req)?;
    // What the item goes by, so a version keeping a `PATCH items` name is no rename either.
    let tip_name = Some(it.name());
    let name = v
        .pointer("/data/attributes/name")
        .and_then(Value::as_str)
        .or(tip_name)
        .unwrap_or_default()
        .to_string();
    let renamed = Some(name.as_str()) != tip_name;
    if renamed {
        check_file_name(app, &name)?;
    }
    let (storage, size) = match (
        kind,
        v.pointer("/data/relationships/storage/data/id")
            .and_then(Value::as_str),
    ) {
        (VersionKind::File, Some(s)) => {
            let (k, n) = uploaded_storage(store, s)?;
            check_storage_unused(app, store, &k)?;
            (Some(k), n)
        }
        (VersionKind::File, None) => {
            return Err(ApiError::bad_input(
                "a file version needs relationships.storage",
            ))
        }
        _ => (None, 0),
    };
    if renamed && kind == VersionKind::File && name_taken(store, it.parent, &name, Some(it.uid)) {
        return Err(conflict(&format!("An item named {name:?}")));
    }
    let version = Version {
        number: 0,
        name,
        created: now,
        modified: now,
        kind,
        storage,
        size,
        size_listed: kind == VersionKind::File,
    };
    Ok((it.uid, version))
}

/// `POST projects/:p/folders` → 201; 400 for a reserved character or a name outside 1–255
/// characters, 409 when the name is taken (by a folder or an item).
pub fn create_folder(app: &App, req: &Req, project: &str) -> Answer {
    let v = body(req)?;
    let name = str_at(&v, "/data/attributes/name")?.to_string();
    check_name("Folder", &name, &FOLDER_RESERVED)?;
    let parent = str_at(&v, "/data/relationships/parent/data/id")?;
    let mut store = write(app)?;
    writable_project(&store, project)?;
    let parent = folder_in(&store, project, parent)?.uid;
    if name_taken(&store, parent, &name, None) {
        return Err(conflict(&format!("A folder named {name:?}")));
    }
    let uid = Uid::random();
    store
        .add_folder(parent, uid, name, Stamp::new(app.clock.now_ms()))
        .ok_or_else(|| ApiError::bad_input("parent folder vanished"))?;
    app.stats.made(Made::Folder);
    folder_answer(app, &store, req, uid, StatusCode::CREATED)
}

/// The answer about folder `uid` (made or changed): the folder.
pub(super) fn folder_answer(
    app: &App,
    store: &Store,
    req: &Req,
    uid: Uid,
    status: StatusCode,
) -> Answer {
    let r = Renderer::new(store, &app.base);
    let f = store
        .folders
        .get(&uid)
        .ok_or_else(|| ApiError::bad_input("folder vanished"))?;
    Ok(jsonapi(
        status,
        document(self_href(&app.base, req), r.folder(f, false)),
    ))
}

/// `POST …/:id/relationships/refs` → 204; refs are recorded on the "from" side.
pub fn create_ref(app: &App, req: &Req, project: &str, kind: Kind, id: &str) -> Answer {
    let v = body(req)?;
    let to_type = match str_at(&v, "/data/type")? {
        "folders" => "folders",
        "items" => "items",
        "versions" => "versions",
        other => {
            return Err(ApiError::bad_input(format!(
                "cannot reference a resource of type {other}"
            )))
        }
    };
    let to_id = str_at(&v, "/data/id")?.to_string();
    let exists = |store: &Store| match to_type {
        "folders" => parse_folder_urn(&to_id).is_some_and(|u| store.folders.contains_key(&u)),
        "items" => parse_item_urn(&to_id).is_some_and(|u| store.items.contains_key(&u)),
        _ => parse_version_urn(&to_id).is_some_and(|(u, n)| {
            store
                .items
                .get(&u)
                .is_some_and(|i| (n as usize) <= i.versions.len())
        }),
    };
    let extension = v
        .pointer("/data/meta/extension/type")
        .and_then(Value::as_str)
        .unwrap_or("auxiliary:autodesk.core:Attachment")
        .to_string();
    let ref_type = extension
        .split(':')
        .next()
        .unwrap_or("auxiliary")
        .to_string();
    let mut store = write(app)?;
    writable_project(&store, project)?;
    let (from_type, from_id) = match kind {
        Kind::Folder => ("folders", folder_in(&store, project, id)?.uid.folder_urn()),
        Kind::Item => ("items", item_in(&store, project, id)?.uid.item_urn()),
        Kind::Version => {
            let (it, ver) = version_in(&store, req, project, id)?;
            ("versions", it.uid.version_urn(ver.number))
        }
    };
    if !exists(&store) {
        return Err(ApiError::data(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The referenced resource does not exist",
        ));
    }
    store.refs.push(Ref {
        from_type,
        from_id,
        to_type,
        to_id,
        ref_type,
        extension,
    });
    Ok(StatusCode::NO_CONTENT.into_response())
}
