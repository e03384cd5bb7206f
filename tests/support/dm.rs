//! Walking the Data Management API as a client does: hubs → projects → top folders → folder
//! contents (every page) → items and their tips, by name. Tests say what they need
//! (`folder_by_path(&emu, &token, &["Large"])`) instead of repeating the requests that find it.

use crate::support::emulator::Emulator;
use crate::support::http::enc;
use serde_json::Value;

/// Resolves an href (absolute or root-relative) against the emulator.
pub fn resolve(emu: &Emulator, href: &str) -> String {
    if href.starts_with("http") {
        href.to_string()
    } else if href.starts_with('/') {
        emu.url(href)
    } else {
        emu.url(&format!("/{href}"))
    }
}

/// GET that must answer 200; returns the body.
pub async fn get_ok(emu: &Emulator, token: &str, href: &str) -> Value {
    let url = resolve(emu, href);
    let (status, body) = emu.get_json(token, &url).await;
    assert_eq!(status, 200, "GET {url} -> {body}");
    body
}

/// Every page of a paginated listing, following `links.next.href` verbatim:
/// (all data, all included, number of pages).
pub async fn list_all(emu: &Emulator, token: &str, first: &str) -> (Vec<Value>, Vec<Value>, usize) {
    let mut url = resolve(emu, first);
    let (mut data, mut included, mut pages) = (Vec::new(), Vec::new(), 0);
    loop {
        let body = get_ok(emu, token, &url).await;
        pages += 1;
        data.extend(body["data"].as_array().expect("data array").iter().cloned());
        if let Some(inc) = body["included"].as_array() {
            included.extend(inc.iter().cloned());
        }
        match body["links"]["next"]["href"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
        assert!(pages < 10_000, "runaway pagination");
    }
    (data, included, pages)
}

/// The first hub and its first project: (hub id, project id).
pub async fn first_project(emu: &Emulator, token: &str) -> (String, String) {
    let hubs = get_ok(emu, token, "/project/v1/hubs").await;
    let hub = hubs["data"][0]["id"].as_str().expect("a hub").to_string();
    let projects = get_ok(emu, token, &format!("/project/v1/hubs/{hub}/projects")).await;
    let project = projects["data"][0]["id"]
        .as_str()
        .expect("a project")
        .to_string();
    (hub, project)
}

/// Top folders of a project.
pub async fn top_folders(emu: &Emulator, token: &str, hub: &str, project: &str) -> Vec<Value> {
    let body = get_ok(
        emu,
        token,
        &format!("/project/v1/hubs/{hub}/projects/{project}/topFolders"),
    )
    .await;
    body["data"].as_array().expect("topFolders data").clone()
}

/// URL path of a folder's contents (id percent-encoded).
pub fn contents_path(project: &str, folder: &str) -> String {
    format!(
        "/data/v1/projects/{project}/folders/{}/contents",
        enc(folder)
    )
}

/// All entries of a folder (every page) plus the included tips.
pub async fn folder_entries(
    emu: &Emulator,
    token: &str,
    project: &str,
    folder: &str,
    include_hidden: bool,
) -> (Vec<Value>, Vec<Value>) {
    let mut path = contents_path(project, folder);
    if include_hidden {
        path.push_str("?includeHidden=true");
    }
    let (d, i, _) = list_all(emu, token, &path).await;
    (d, i)
}

/// Display name of a folder or item resource.
pub fn name_of(v: &Value) -> &str {
    v["attributes"]["name"]
        .as_str()
        .or_else(|| v["attributes"]["displayName"].as_str())
        .unwrap_or("")
}

/// The child of `folder` named `name` and (for items) its tip version from `included`.
pub async fn child(
    emu: &Emulator,
    token: &str,
    project: &str,
    folder: &str,
    name: &str,
    include_hidden: bool,
) -> (Value, Option<Value>) {
    let (data, included) = folder_entries(emu, token, project, folder, include_hidden).await;
    let found = data
        .iter()
        .find(|d| name_of(d) == name)
        .unwrap_or_else(|| panic!("no child {name:?} in folder {folder}"))
        .clone();
    let tip = found["relationships"]["tip"]["data"]["id"]
        .as_str()
        .and_then(|id| included.iter().find(|v| v["id"] == id).cloned());
    (found, tip)
}

/// Walks folder names from the first project's first top folder: returns (project, folder id).
pub async fn folder_by_path(emu: &Emulator, token: &str, names: &[&str]) -> (String, String) {
    let (hub, project) = first_project(emu, token).await;
    let tops = top_folders(emu, token, &hub, &project).await;
    let mut folder = tops[0]["id"].as_str().expect("top folder id").to_string();
    for n in names {
        let (f, _) = child(emu, token, &project, &folder, n, true).await;
        assert_eq!(f["type"], "folders", "{n} is a folder");
        folder = f["id"].as_str().expect("id").to_string();
    }
    (project, folder)
}
