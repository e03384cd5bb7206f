//! Project service: hubs, projects, top folders.

use super::{jsonapi, read, single, Answer};
use crate::app::App;
use crate::errors::ApiError;
use crate::filter;
use crate::paging::{self_href, Page};
use crate::render::{document, Renderer};
use crate::request::Req;
use crate::store::Store;
use axum::http::StatusCode;
use serde_json::{json, Value};

fn hub_index(store: &Store, hub: &str) -> Result<usize, ApiError> {
    store.hubs.iter().position(|h| h.id == hub).ok_or_else(|| {
        ApiError::data(
            StatusCode::NOT_FOUND,
            "HUB_NOT_FOUND",
            format!("Hub {hub} not found"),
        )
    })
}

fn project_index(store: &Store, hub: &str, project: &str) -> Result<usize, ApiError> {
    hub_index(store, hub)?;
    store.project(hub, project).ok_or_else(|| {
        ApiError::data(
            StatusCode::NOT_FOUND,
            "PROJECT_NOT_FOUND",
            format!("Project {project} not found"),
        )
    })
}

/// `GET /project/v1/hubs` — not paginated; filters apply; `meta.warnings` on partial failure.
pub fn hubs(app: &App, req: &Req) -> Answer {
    let store = read(app)?;
    let r = Renderer::new(&store, &app.base);
    let filters = filter::from_request(req);
    let data: Vec<Value> = store
        .hubs
        .iter()
        .map(|h| r.hub(h))
        .filter(|h| filter::matches(&filters, h))
        .collect();
    let mut doc = document(self_href(&app.base, req), Value::Array(data));
    if store.hub_warnings {
        doc["meta"] = json!({ "warnings": [{
            "Id": null,
            "HttpStatusCode": "403",
            "ErrorCode": "BIM360DM_ERROR",
            "Title": "Unable to get hubs from BIM360DM EMEA.",
            "Detail": "You don't have permission to access this API",
            "AboutLink": null,
            "Source": [],
            "meta": [],
        }]});
    }
    Ok(jsonapi(StatusCode::OK, doc))
}

/// `GET /project/v1/hubs/:hub`.
pub fn hub(app: &App, req: &Req, hub: &str) -> Answer {
    let store = read(app)?;
    let h = hub_index(&store, hub)?;
    let r = Renderer::new(&store, &app.base);
    Ok(single(app, req, r.hub(&store.hubs[h])))
}

/// `GET /project/v1/hubs/:hub/projects` — paginated, filters after paging.
pub fn projects(app: &App, req: &Req, hub: &str) -> Answer {
    let store = read(app)?;
    let h = hub_index(&store, hub)?;
    let page = Page::from_request(req)?;
    let r = Renderer::new(&store, &app.base);
    let filters = filter::from_request(req);
    let all = &store.hubs[h].projects;
    let (range, has_next) = page.window(all.len());
    let data: Vec<Value> = all[range]
        .iter()
        .map(|&p| r.project(&store.projects[p]))
        .filter(|p| filter::matches(&filters, p))
        .collect();
    let doc = json!({ "jsonapi": {"version": "1.0"}, "links": page.links(&app.base, req, has_next), "data": data });
    Ok(jsonapi(StatusCode::OK, doc))
}

/// `GET /project/v1/hubs/:hub/projects/:project`.
pub fn project(app: &App, req: &Req, hub: &str, project: &str) -> Answer {
    let store = read(app)?;
    let p = project_index(&store, hub, project)?;
    let r = Renderer::new(&store, &app.base);
    Ok(single(app, req, r.project(&store.projects[p])))
}

/// `GET /project/v1/hubs/:hub/projects/:project/hub`.
pub fn project_hub(app: &App, req: &Req, hub: &str, project: &str) -> Answer {
    let store = read(app)?;
    let p = project_index(&store, hub, project)?;
    let r = Renderer::new(&store, &app.base);
    let h = &store.hubs[store.projects[p].hub];
    Ok(single(app, req, r.hub(h)))
}

/// `GET …/topFolders` — the root folder's sub-folders; not paginated.
pub fn top_folders(app: &App, req: &Req, hub: &str, project: &str) -> Answer {
    let store = read(app)?;
    let p = project_index(&store, hub, project)?;
    let r = Renderer::new(&store, &app.base);
    let exclude_deleted = req.q("excludeDeleted") == Some("true");
    let root = store.folders.get(&store.projects[p].root).ok_or_else(|| {
        ApiError::data(
            StatusCode::NOT_FOUND,
            "FOLDER_NOT_FOUND",
            "Root folder missing",
        )
    })?;
    let data: Vec<Value> = root
        .children
        .iter()
        .filter_map(|n| match n {
            crate::store::Node::Folder(u) => store.folders.get(u),
            crate::store::Node::Item(_) => None,
        })
        .filter(|f| !(exclude_deleted && f.hidden))
        .map(|f| r.folder(f, true))
        .collect();
    Ok(single(app, req, Value::Array(data)))
}
