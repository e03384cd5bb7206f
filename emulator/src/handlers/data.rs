//! Data service reads: folders, contents (the hot path), items, versions, refs.

use super::{jsonapi, read, single, Answer};
use crate::app::App;
use crate::clock::{http_date, parse_http_date};
use crate::errors::ApiError;
use crate::filter;
use crate::ids::{parse_folder_urn, parse_item_urn, parse_version_urn, Uid};
use crate::paging::{self_href, Page};
use crate::render::{document, Renderer};
use crate::request::Req;
use crate::router::Kind;
use crate::store::{Folder, Item, Node, Store, Version};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use serde_json::{json, Value};

pub(super) fn project_index(store: &Store, project: &str) -> Result<usize, ApiError> {
    store.project_by_id(project).ok_or_else(|| {
        ApiError::data(
            StatusCode::NOT_FOUND,
            "PROJECT_NOT_FOUND",
            format!("Project {project} not found"),
        )
    })
}

/// Looks a folder up within a project; forbidden folders answer 403.
pub fn folder_in<'s>(store: &'s Store, project: &str, id: &str) -> Result<&'s Folder, ApiError> {
    let p = project_index(store, project)?;
    let f = parse_folder_urn(id)
        .and_then(|u| store.folders.get(&u))
        .filter(|f| f.project == p)
        .ok_or_else(|| {
            ApiError::data(
                StatusCode::NOT_FOUND,
                "FOLDER_NOT_FOUND",
                "ApiError Folder not found",
            )
        })?;
    if f.forbidden {
        return Err(ApiError::not_authorized(
            "You don't have permission to access this folder",
        ));
    }
    Ok(f)
}

/// Looks an item up within a project.
pub fn item_in<'s>(store: &'s Store, project: &str, id: &str) -> Result<&'s Item, ApiError> {
    let p = project_index(store, project)?;
    parse_item_urn(id)
        .and_then(|u| store.items.get(&u))
        .filter(|i| i.project == p)
        .ok_or_else(|| {
            ApiError::data(
                StatusCode::NOT_FOUND,
                "ITEM_NOT_FOUND",
                "ApiError Item not found",
            )
        })
}

/// Looks a version up within a project. A version id whose `?version=N` arrived unencoded
/// (so it landed in the query string) is put back together.
pub fn version_in<'s>(
    store: &'s Store,
    req: &Req,
    project: &str,
    id: &str,
) -> Result<(&'s Item, &'s Version), ApiError> {
    let joined;
    let id = match req.q("version") {
        Some(n) if !id.contains("?version=") => {
            joined = format!("{id}?version={n}");
            joined.as_str()
        }
        _ => id,
    };
    let p = project_index(store, project)?;
    let not_found = || {
        ApiError::data(
            StatusCode::NOT_FOUND,
            "VERSION_NOT_FOUND",
            "ApiError Version not found",
        )
    };
    let (uid, n) = parse_version_urn(id).ok_or_else(not_found)?;
    let item = store
        .items
        .get(&uid)
        .filter(|i| i.project == p)
        .ok_or_else(not_found)?;
    let v = item.versions.get(n as usize - 1).ok_or_else(not_found)?;
    Ok((item, v))
}

/// `GET folders/:id` with `If-Modified-Since` → 304.
pub fn folder(app: &App, req: &Req, project: &str, id: &str) -> Answer {
    let store = read(app)?;
    let f = folder_in(&store, project, id)?;
    // Whole seconds, since HTTP dates carry no more.
    let changed_s = f.rollup_ms.div_euclid(1000);
    let last_modified = http_date(changed_s * 1000);
    if let Some(since) = req.header("if-modified-since").and_then(parse_http_date) {
        if changed_s * 1000 <= since {
            let mut r = StatusCode::NOT_MODIFIED.into_response();
            if let Ok(v) = HeaderValue::from_str(&last_modified) {
                r.headers_mut().insert(header::LAST_MODIFIED, v);
            }
            return Ok(r);
        }
    }
    let r = Renderer::new(&store, &app.base);
    let mut resp = jsonapi(
        StatusCode::OK,
        document(self_href(&app.base, req), r.folder(f, false)),
    );
    if let Ok(v) = HeaderValue::from_str(&last_modified) {
        resp.headers_mut().insert(header::LAST_MODIFIED, v);
    }
    Ok(resp)
}

/// `GET folders/:id/contents` — paginated; filters (hidden ones included) apply after paging,
/// as on the real service, so pages may be short or empty; `included` holds the tips.
pub fn contents(app: &App, req: &Req, project: &str, id: &str) -> Answer {
    let store = read(app)?;
    let f = folder_in(&store, project, id)?;
    let page = Page::from_request(req)?;
    let filters = filter::from_request(req);
    let show_hidden =
        req.q("includeHidden") == Some("true") || filter::mentions(&filters, "hidden");
    let r = Renderer::new(&store, &app.base);
    let (range, has_next) = page.window(f.children.len());
    let mut data = Vec::with_capacity(range.len());
    let mut included = Vec::new();
    for node in &f.children[range] {
        let (res, tip) = match node {
            Node::Folder(u) => match store.folders.get(u) {
                Some(sub) => (r.folder(sub, false), None),
                None => continue,
            },
            Node::Item(u) => match store.items.get(u) {
                Some(it) => (r.item(it), it.tip().map(|t| r.version(it, t))),
                None => continue,
            },
        };
        let hidden = res["attributes"]["hidden"].as_bool().unwrap_or(false);
        if (hidden && !show_hidden) || !filter::matches(&filters, &res) {
            continue;
        }
        data.push(res);
        included.extend(tip);
    }
    let mut doc = json!({ "jsonapi": {"version": "1.0"}, "links": page.links(&app.base, req, has_next), "data": data });
    if !included.is_empty() {
        doc["included"] = Value::Array(included);
    }
    Ok(jsonapi(StatusCode::OK, doc))
}

/// `GET folders/:id/parent` — 404 for a root folder.
pub fn folder_parent(app: &App, req: &Req, project: &str, id: &str) -> Answer {
    let store = read(app)?;
    let f = folder_in(&store, project, id)?;
    let parent = f
        .parent
        .and_then(|p| store.folders.get(&p))
        .ok_or_else(|| {
            ApiError::data(
                StatusCode::NOT_FOUND,
                "FOLDER_NOT_FOUND",
                "The root folder has no parent",
            )
        })?;
    let r = Renderer::new(&store, &app.base);
    Ok(single(app, req, r.folder(parent, false)))
}

/// `GET items/:id` — the item, its tip in `included`.
pub fn item(app: &App, req: &Req, project: &str, id: &str) -> Answer {
    let store = read(app)?;
    let it = item_in(&store, project, id)?;
    let r = Renderer::new(&store, &app.base);
    let mut data = r.item(it);
    if req.q("includePathInProject") == Some("true") {
        data["attributes"]["pathInProject"] = json!(path_in_project(&store, it.parent));
    }
    let mut doc = document(self_href(&app.base, req), data);
    doc["included"] = Value::Array(it.tip().map(|t| r.version(it, t)).into_iter().collect());
    Ok(jsonapi(StatusCode::OK, doc))
}

fn path_in_project(store: &Store, mut folder: Uid) -> String {
    let mut names = Vec::new();
    while let Some(f) = store.folders.get(&folder) {
        match f.parent {
            Some(p) => {
                names.push(f.name.clone());
                folder = p;
            }
            None => break,
        }
    }
    names.reverse();
    format!("/{}", names.join("/"))
}

/// `GET items/:id/tip` — the tip version alone.
pub fn item_tip(app: &App, req: &Req, project: &str, id: &str) -> Answer {
    let store = read(app)?;
    let it = item_in(&store, project, id)?;
    let tip = it.tip().ok_or_else(|| {
        ApiError::data(
            StatusCode::NOT_FOUND,
            "VERSION_NOT_FOUND",
            "Item has no versions",
        )
    })?;
    let r = Renderer::new(&store, &app.base);
    Ok(single(app, req, r.version(it, tip)))
}

/// `GET items/:id/versions` — newest first, paginated, filterable.
pub fn item_versions(app: &App, req: &Req, project: &str, id: &str) -> Answer {
    let store = read(app)?;
    let it = item_in(&store, project, id)?;
    let page = Page::from_request(req)?;
    let filters = filter::from_request(req);
    let r = Renderer::new(&store, &app.base);
    let (range, has_next) = page.window(it.versions.len());
    let data: Vec<Value> = it
        .versions
        .iter()
        .rev()
        .skip(range.start)
        .take(range.len())
        .map(|v| r.version(it, v))
        .filter(|v| filter::matches(&filters, v))
        .collect();
    let doc = json!({ "jsonapi": {"version": "1.0"}, "links": page.links(&app.base, req, has_next), "data": data });
    Ok(jsonapi(StatusCode::OK, doc))
}

/// `GET items/:id/parent`.
pub fn item_parent(app: &App, req: &Req, project: &str, id: &str) -> Answer {
    let store = read(app)?;
    let it = item_in(&store, project, id)?;
    let parent = store.folders.get(&it.parent).ok_or_else(|| {
        ApiError::data(
            StatusCode::NOT_FOUND,
            "FOLDER_NOT_FOUND",
            "ApiError Folder not found",
        )
    })?;
    let r = Renderer::new(&store, &app.base);
    Ok(single(app, req, r.folder(parent, false)))
}

/// `GET versions/:id`.
pub fn version(app: &App, req: &Req, project: &str, id: &str) -> Answer {
    let store = read(app)?;
    let (it, v) = version_in(&store, req, project, id)?;
    let r = Renderer::new(&store, &app.base);
    Ok(single(app, req, r.version(it, v)))
}

/// `GET versions/:id/item`.
pub fn version_item(app: &App, req: &Req, project: &str, id: &str) -> Answer {
    let store = read(app)?;
    let (it, _) = version_in(&store, req, project, id)?;
    let r = Renderer::new(&store, &app.base);
    Ok(single(app, req, r.item(it)))
}

/// Resolves a resource of a refs route to its canonical id(s): an item also answers for the
/// refs of its versions.
fn ref_ids(
    store: &Store,
    req: &Req,
    project: &str,
    kind: Kind,
    id: &str,
) -> Result<Vec<String>, ApiError> {
    Ok(match kind {
        Kind::Folder => vec![folder_in(store, project, id)?.uid.folder_urn()],
        Kind::Item => {
            let it = item_in(store, project, id)?;
            let mut ids = vec![it.uid.item_urn()];
            ids.extend(it.versions.iter().map(|v| it.uid.version_urn(v.number)));
            ids
        }
        Kind::Version => {
            let (it, v) = version_in(store, req, project, id)?;
            vec![it.uid.version_urn(v.number)]
        }
    })
}

/// Renders any resource by id (for `included` of refs).
fn resource(store: &Store, r: &Renderer, kind: &str, id: &str) -> Option<Value> {
    match kind {
        "folders" => parse_folder_urn(id)
            .and_then(|u| store.folders.get(&u))
            .map(|f| r.folder(f, false)),
        "items" => parse_item_urn(id)
            .and_then(|u| store.items.get(&u))
            .map(|i| r.item(i)),
        "versions" => parse_version_urn(id).and_then(|(u, n)| {
            let it = store.items.get(&u)?;
            Some(r.version(it, it.versions.get(n as usize - 1)?))
        }),
        _ => None,
    }
}

/// `GET …/refs` (the related resources) and `GET …/relationships/refs` (the ref records with
/// the far ends in `included`). Empty when there are none.
pub fn refs(app: &App, req: &Req, project: &str, kind: Kind, id: &str, records: bool) -> Answer {
    let store = read(app)?;
    let ids = ref_ids(&store, req, project, kind, id)?;
    let r = Renderer::new(&store, &app.base);
    let filters = filter::from_request(req);
    let mut data = Vec::new();
    let mut included = Vec::new();
    for rf in &store.refs {
        let (direction, other_type, other_id) = if ids.contains(&rf.from_id) {
            ("from", rf.to_type, &rf.to_id)
        } else if ids.contains(&rf.to_id) {
            ("to", rf.from_type, &rf.from_id)
        } else {
            continue;
        };
        let Some(other) = resource(&store, &r, other_type, other_id) else {
            continue;
        };
        let record = json!({
            "type": other_type,
            "id": other_id,
            "meta": {
                "refType": rf.ref_type,
                "direction": direction,
                "fromId": rf.from_id,
                "fromType": rf.from_type,
                "toId": rf.to_id,
                "toType": rf.to_type,
                "extension": { "type": rf.extension, "version": "1.0", "schema": { "href": format!("{}/schema/v1/versions/{}-1.0", app.base, rf.extension) }, "data": {} },
            }
        });
        if !filter::matches(&filters, &record) {
            continue;
        }
        if records {
            data.push(record);
            included.push(other);
        } else {
            data.push(other);
        }
    }
    let mut doc = document(self_href(&app.base, req), Value::Array(data));
    if records {
        doc["included"] = Value::Array(included);
    }
    Ok(jsonapi(StatusCode::OK, doc))
}

/// `GET …/relationships/links` — external links; the emulator holds none.
pub fn rel_links(app: &App, req: &Req, project: &str, kind: Kind, id: &str) -> Answer {
    let store = read(app)?;
    ref_ids(&store, req, project, kind, id)?;
    Ok(single(app, req, json!([])))
}
