//! Navigation over real HTTP: hubs → projects → folders → items → versions on a seeded tree,
//! pagination, id encodings, filters and the awkward generated cases (aps-api.md §2–§5, §13).

use crate::support::api::{assert_jsonapi_error, header, href};
use crate::support::dm::{
    child, contents_path, first_project, folder_by_path, folder_entries, get_ok, list_all, name_of,
    resolve, top_folders,
};
use crate::support::emulator::Emulator;
use crate::support::files::{set_mtime, write_file};
use crate::support::http::{enc, get_authed};
use crate::support::seed::{mtime_ms, pseudo_bytes};
use crate::support::shapes::{is_b_id, is_folder_urn, is_item_urn, rfc3339_ms, version_number_of};
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::path::Path;

const HUB: &str = "Acme Hub";
const PROJECT: &str = "Tower Project";

/// DIR/Acme Hub/Tower Project/{Project Files/{readme.txt, Sub Dir/model.rvt}, Plans/sheet.pdf}.
fn seed_tree(dir: &Path) {
    let project = dir.join(HUB).join(PROJECT);
    write_file(
        &project.join("Project Files/readme.txt"),
        &pseudo_bytes(1234, 1),
        1_600_000_000,
    );
    write_file(
        &project.join("Project Files/Sub Dir/model.rvt"),
        &pseudo_bytes(54_321, 2),
        1_650_000_007,
    );
    write_file(
        &project.join("Plans/sheet.pdf"),
        &pseudo_bytes(10, 3),
        1_700_000_001,
    );
    // Directory mtimes last: creating children moves them.
    set_mtime(&project.join("Project Files/Sub Dir"), 1_610_000_000);
    set_mtime(&project.join("Project Files"), 1_620_000_000);
}

fn assert_extension(v: &Value, ext_type: &str) {
    let e = &v["attributes"]["extension"];
    assert_eq!(e["type"], ext_type, "extension.type of {}", v["id"]);
    assert_eq!(e["version"], "1.0");
    assert!(e["schema"]["href"].is_string(), "extension.schema.href");
    assert!(e["data"].is_object(), "extension.data");
}

fn assert_abs(href: &str, emu: &Emulator, ends_with: &str) {
    assert!(
        href.starts_with(&emu.base),
        "{href} is absolute on the emulator"
    );
    assert!(href.ends_with(ends_with), "{href} ends with {ends_with}");
}

fn assert_times(attrs: &Value) {
    for k in ["createTime", "lastModifiedTime"] {
        rfc3339_ms(
            attrs[k]
                .as_str()
                .unwrap_or_else(|| panic!("{k} in {attrs}")),
        );
    }
    for k in [
        "createUserId",
        "createUserName",
        "lastModifiedUserId",
        "lastModifiedUserName",
    ] {
        assert!(attrs[k].is_string(), "{k} in {attrs}");
    }
}

fn assert_folder(f: &Value, name: &str) {
    assert_eq!(f["type"], "folders");
    assert!(
        is_folder_urn(f["id"].as_str().expect("folder id")),
        "folder id shape {}",
        f["id"]
    );
    let a = &f["attributes"];
    assert_eq!(a["name"], name);
    assert_eq!(a["displayName"], name);
    assert!(a["objectCount"].is_u64());
    assert_eq!(a["hidden"], false);
    assert_times(a);
    rfc3339_ms(
        a["lastModifiedTimeRollup"]
            .as_str()
            .expect("lastModifiedTimeRollup"),
    );
    assert_extension(f, "folders:autodesk.bim360:Folder");
    let r = &f["relationships"];
    assert!(r["contents"]["links"]["related"]["href"]
        .as_str()
        .is_some_and(|h| h.ends_with("/contents")));
    assert!(
        r["refs"]["links"]["self"]["href"].is_string()
            && r["refs"]["links"]["related"]["href"].is_string()
    );
    assert!(r["links"]["links"]["self"]["href"].is_string());
    assert!(f["links"]["self"]["href"].is_string());
}

fn assert_item(it: &Value, name: &str) {
    assert_eq!(it["type"], "items");
    assert!(
        is_item_urn(it["id"].as_str().expect("item id")),
        "item id shape {}",
        it["id"]
    );
    let a = &it["attributes"];
    assert_eq!(a["displayName"], name);
    assert_eq!(a["hidden"], false);
    assert_eq!(a["reserved"], false);
    assert_times(a);
    assert_extension(it, "items:autodesk.bim360:File");
    assert_eq!(a["extension"]["data"]["sourceFileName"], name);
    let r = &it["relationships"];
    assert_eq!(r["tip"]["data"]["type"], "versions");
    assert!(r["tip"]["links"]["related"]["href"]
        .as_str()
        .is_some_and(|h| h.ends_with("/tip")));
    assert!(r["versions"]["links"]["related"]["href"]
        .as_str()
        .is_some_and(|h| h.ends_with("/versions")));
    assert!(
        r["versions"].get("data").is_none(),
        "to-many relationship has no data"
    );
    assert_eq!(r["parent"]["data"]["type"], "folders");
    assert!(r["parent"]["links"]["related"]["href"]
        .as_str()
        .is_some_and(|h| h.ends_with("/parent")));
    assert!(r["refs"]["links"]["self"]["href"].is_string());
    assert!(r["links"]["links"]["self"]["href"].is_string());
}

/// Checks a file version against the seed file it came from.
fn assert_version(v: &Value, name: &str, file: &Path, item_id: &str) {
    assert_eq!(v["type"], "versions");
    let id = v["id"].as_str().expect("version id");
    assert_eq!(version_number_of(id), Some(1), "version id shape {id}");
    let a = &v["attributes"];
    assert_eq!(a["name"], name);
    assert_eq!(a["displayName"], name);
    assert_eq!(a["versionNumber"], 1);
    assert!(a["mimeType"].is_string());
    let ext = name.rsplit('.').next().expect("ext");
    assert_eq!(a["fileType"], ext);
    let size = std::fs::metadata(file).expect("metadata").len();
    assert_eq!(a["storageSize"], size, "storageSize = file size");
    assert_times(a);
    let lm = rfc3339_ms(a["lastModifiedTime"].as_str().expect("lastModifiedTime"));
    assert_eq!(lm, mtime_ms(file), "lastModifiedTime = file mtime");
    assert_extension(v, "versions:autodesk.bim360:File");
    let r = &v["relationships"];
    assert_eq!(r["item"]["data"]["type"], "items");
    assert_eq!(r["item"]["data"]["id"], item_id);
    assert!(r["item"]["links"]["related"]["href"]
        .as_str()
        .is_some_and(|h| h.ends_with("/item")));
    let storage = &r["storage"];
    assert_eq!(storage["data"]["type"], "objects");
    let urn = storage["data"]["id"].as_str().expect("storage id");
    let key = urn
        .strip_prefix("urn:adsk.objects:os.object:wip.dm.prod/")
        .unwrap_or_else(|| panic!("storage id shape {urn}"));
    assert!(!key.is_empty() && !key.contains('/'));
    assert!(
        storage["meta"]["link"]["href"].as_str().is_some_and(
            |h| h.ends_with(&format!("/oss/v2/buckets/wip.dm.prod/objects/{}", enc(key)))
        ),
        "storage meta.link.href: {storage}"
    );
    assert_eq!(a["extension"]["data"]["storageUrn"], urn);
    let self_href = href(&v["links"]["self"]);
    assert!(
        self_href.ends_with("%3Fversion%3D1"),
        "version self link is encoded: {self_href}"
    );
}

#[tokio::test]
async fn seeded_tree_navigation_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    seed_tree(dir.path());
    let files = dir.path().join(HUB).join(PROJECT).join("Project Files");
    let emu = Emulator::seeded(dir.path(), &[]);
    let tok = emu.token().await;

    // Hubs (not paginated).
    let hubs = get_ok(&emu, &tok, "/project/v1/hubs").await;
    assert_eq!(hubs["jsonapi"]["version"], "1.0");
    assert_abs(&href(&hubs["links"]["self"]), &emu, "/project/v1/hubs");
    let list = hubs["data"].as_array().expect("hubs data");
    assert_eq!(list.len(), 1);
    let hub = &list[0];
    let hub_id = hub["id"].as_str().expect("hub id").to_string();
    assert_eq!(hub["type"], "hubs");
    assert!(is_b_id(&hub_id), "hub id shape {hub_id}");
    assert_eq!(hub["attributes"]["name"], HUB);
    assert_eq!(hub["attributes"]["region"], "US");
    assert_extension(hub, "hubs:autodesk.bim360:Account");
    assert_abs(
        &href(&hub["links"]["self"]),
        &emu,
        &format!("/project/v1/hubs/{hub_id}"),
    );

    // Hub.
    let one = get_ok(&emu, &tok, &href(&hub["links"]["self"])).await;
    assert!(one["data"].is_object(), "single hub is an object");
    assert_eq!(one["data"]["id"], hub_id.as_str());

    // Projects.
    let projects_href = href(&hub["relationships"]["projects"]["links"]["related"]);
    assert_abs(
        &projects_href,
        &emu,
        &format!("/project/v1/hubs/{hub_id}/projects"),
    );
    let projects = get_ok(&emu, &tok, &projects_href).await;
    assert!(projects["links"]["self"]["href"].is_string());
    assert!(projects["links"].get("next").is_none());
    let project = projects["data"][0].clone();
    let pid = project["id"].as_str().expect("project id").to_string();
    assert_eq!(project["type"], "projects");
    assert!(is_b_id(&pid), "project id shape {pid}");
    assert_eq!(project["attributes"]["name"], PROJECT);
    assert!(project["attributes"]["scopes"].is_array());
    assert_extension(&project, "projects:autodesk.bim360:Project");
    let ptype = project["attributes"]["extension"]["data"]["projectType"]
        .as_str()
        .expect("projectType");
    assert!(ptype == "BIM360" || ptype == "ACC");
    let rel = &project["relationships"];
    assert_eq!(rel["hub"]["data"]["type"], "hubs");
    assert_eq!(rel["hub"]["data"]["id"], hub_id.as_str());
    assert!(rel["hub"]["links"]["related"]["href"].is_string());
    assert_eq!(rel["rootFolder"]["data"]["type"], "folders");
    let root_id = rel["rootFolder"]["data"]["id"]
        .as_str()
        .expect("rootFolder id")
        .to_string();
    assert!(is_folder_urn(&root_id));
    assert!(
        rel["rootFolder"]["meta"]["link"]["href"]
            .as_str()
            .is_some_and(|h| h.contains(&format!("/data/v1/projects/{pid}/folders/"))),
        "rootFolder is an external relationship"
    );

    // Project, and the project's hub.
    let p1 = get_ok(&emu, &tok, &href(&project["links"]["self"])).await;
    assert_eq!(p1["data"]["id"], pid.as_str());
    let ph = get_ok(&emu, &tok, &href(&rel["hub"]["links"]["related"])).await;
    assert_eq!(ph["data"]["id"], hub_id.as_str());

    // Top folders (not paginated).
    let tops = get_ok(&emu, &tok, &href(&rel["topFolders"]["links"]["related"])).await;
    let tops = tops["data"].as_array().expect("topFolders").clone();
    let names: BTreeSet<&str> = tops.iter().map(name_of).collect();
    assert_eq!(names, BTreeSet::from(["Plans", "Project Files"]));
    let pf = tops
        .iter()
        .find(|f| name_of(f) == "Project Files")
        .expect("Project Files")
        .clone();
    assert_folder(&pf, "Project Files");
    assert_eq!(pf["attributes"]["extension"]["data"]["isRoot"], false);
    assert!(pf["attributes"]["extension"]["data"]["folderType"].is_string());
    assert_eq!(
        pf["relationships"]["parent"]["data"]["id"],
        root_id.as_str()
    );
    assert_eq!(
        rfc3339_ms(pf["attributes"]["lastModifiedTime"].as_str().expect("time")),
        1_620_000_000_000,
        "folder lastModifiedTime = directory mtime"
    );
    let pf_id = pf["id"].as_str().expect("id").to_string();

    // Folder.
    let folder = get_ok(&emu, &tok, &href(&pf["links"]["self"])).await;
    assert_eq!(folder["data"]["id"], pf_id.as_str());
    assert_folder(&folder["data"], "Project Files");
    assert_eq!(folder["data"]["attributes"]["objectCount"], 2);

    // Contents: a folder and an item; the item's tip is the one entry of `included`.
    let contents = get_ok(
        &emu,
        &tok,
        &href(&pf["relationships"]["contents"]["links"]["related"]),
    )
    .await;
    assert!(contents["links"]["self"]["href"].is_string());
    assert!(contents["links"].get("next").is_none());
    let data = contents["data"].as_array().expect("data");
    assert_eq!(data.len(), 2);
    let sub = data
        .iter()
        .find(|d| d["type"] == "folders")
        .expect("sub folder");
    assert_folder(sub, "Sub Dir");
    let item = data
        .iter()
        .find(|d| d["type"] == "items")
        .expect("item")
        .clone();
    assert_item(&item, "readme.txt");
    let item_id = item["id"].as_str().expect("id").to_string();
    let included = contents["included"].as_array().expect("included");
    assert_eq!(included.len(), 1, "one tip per item, none for folders");
    let tip_id = item["relationships"]["tip"]["data"]["id"]
        .as_str()
        .expect("tip id")
        .to_string();
    assert_eq!(included[0]["id"], tip_id.as_str());
    assert_version(
        &included[0],
        "readme.txt",
        &files.join("readme.txt"),
        &item_id,
    );
    assert_eq!(
        rfc3339_ms(
            item["attributes"]["lastModifiedTime"]
                .as_str()
                .expect("time")
        ),
        1_600_000_000_000
    );

    // Item: the item in `data`, its tip in `included`.
    let it = get_ok(&emu, &tok, &href(&item["links"]["self"])).await;
    assert_eq!(it["data"]["id"], item_id.as_str());
    assert_item(&it["data"], "readme.txt");
    let inc = it["included"].as_array().expect("item included");
    assert_eq!(inc.len(), 1);
    assert_eq!(
        inc[0]["id"],
        it["data"]["relationships"]["tip"]["data"]["id"]
    );

    // Tip: the version alone.
    let tip = get_ok(
        &emu,
        &tok,
        &href(&item["relationships"]["tip"]["links"]["related"]),
    )
    .await;
    assert!(tip["data"].is_object());
    assert_eq!(tip["data"]["id"], tip_id.as_str());
    assert!(tip.get("included").is_none(), "tip carries no included");
    assert_version(
        &tip["data"],
        "readme.txt",
        &files.join("readme.txt"),
        &item_id,
    );

    // Versions.
    let versions = get_ok(
        &emu,
        &tok,
        &href(&item["relationships"]["versions"]["links"]["related"]),
    )
    .await;
    let vs = versions["data"].as_array().expect("versions");
    assert_eq!(vs.len(), 1);
    assert_eq!(vs[0]["id"], tip_id.as_str());

    // Version by its (encoded) self link.
    let version = get_ok(&emu, &tok, &href(&tip["data"]["links"]["self"])).await;
    assert_eq!(version["data"]["id"], tip_id.as_str());
    assert_version(
        &version["data"],
        "readme.txt",
        &files.join("readme.txt"),
        &item_id,
    );

    // Version → item.
    let vitem = get_ok(
        &emu,
        &tok,
        &href(&version["data"]["relationships"]["item"]["links"]["related"]),
    )
    .await;
    assert_eq!(vitem["data"]["id"], item_id.as_str());

    // Item → parent folder.
    let parent = get_ok(
        &emu,
        &tok,
        &href(&item["relationships"]["parent"]["links"]["related"]),
    )
    .await;
    assert_eq!(parent["data"]["id"], pf_id.as_str());

    // Folder → parent: the project root; the root has no parent (404).
    let root = get_ok(
        &emu,
        &tok,
        &href(&pf["relationships"]["parent"]["links"]["related"]),
    )
    .await;
    assert_eq!(root["data"]["id"], root_id.as_str());
    assert!(
        root["data"]["relationships"].get("parent").is_none(),
        "root has no parent relationship"
    );
    let (status, body) = emu
        .get_json(
            &tok,
            &format!("/data/v1/projects/{pid}/folders/{}/parent", enc(&root_id)),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_jsonapi_error(&body, 404);

    // One level deeper: Sub Dir/model.rvt.
    let (model, model_tip) = child(
        &emu,
        &tok,
        &pid,
        sub["id"].as_str().expect("id"),
        "model.rvt",
        false,
    )
    .await;
    assert_item(&model, "model.rvt");
    let model_tip = model_tip.expect("model tip included");
    assert_version(
        &model_tip,
        "model.rvt",
        &files.join("Sub Dir/model.rvt"),
        model["id"].as_str().expect("id"),
    );
    assert_eq!(model_tip["attributes"]["storageSize"], 54_321);
}

/// Every id a client could persist, in navigation order.
async fn all_ids(emu: &Emulator) -> Vec<String> {
    let tok = emu.token().await;
    let (hub, project) = first_project(emu, &tok).await;
    let mut ids = vec![hub.clone(), project.clone()];
    let mut stack: Vec<String> = top_folders(emu, &tok, &hub, &project)
        .await
        .iter()
        .map(|f| f["id"].as_str().expect("id").to_string())
        .collect();
    stack.sort();
    while let Some(f) = stack.pop() {
        ids.push(f.clone());
        let (data, included) = folder_entries(emu, &tok, &project, &f, true).await;
        for d in &data {
            let id = d["id"].as_str().expect("id").to_string();
            if d["type"] == "folders" {
                stack.push(id);
            } else {
                ids.push(id);
            }
        }
        for v in &included {
            ids.push(v["id"].as_str().expect("id").to_string());
            ids.push(
                v["relationships"]["storage"]["data"]["id"]
                    .as_str()
                    .expect("storage")
                    .to_string(),
            );
        }
    }
    ids
}

#[tokio::test]
async fn seeded_ids_are_stable_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    seed_tree(dir.path());
    let a = all_ids(&Emulator::seeded(dir.path(), &[])).await;
    let b = all_ids(&Emulator::seeded(dir.path(), &[])).await;
    assert!(
        a.len() >= 2 + 3 + 6,
        "hub, project, 3 folders, 3 items + versions + storage: {a:?}"
    );
    assert_eq!(a, b, "same tree, same ids");
}

/// A fresh emulator with a 300-file folder "Flat" under the first top folder.
async fn flat300() -> (Emulator, String, String, String) {
    let emu = Emulator::start(&["--generate", "items=0,folders=0,flat=300"]);
    let tok = emu.token().await;
    let (project, flat) = folder_by_path(&emu, &tok, &["Flat"]).await;
    (emu, tok, project, flat)
}

fn assert_tips_match(data: &[Value], included: &[Value]) {
    let tips: Vec<&str> = data
        .iter()
        .filter(|d| d["type"] == "items")
        .map(|d| {
            d["relationships"]["tip"]["data"]["id"]
                .as_str()
                .expect("tip id")
        })
        .collect();
    let inc: Vec<&str> = included
        .iter()
        .map(|v| v["id"].as_str().expect("id"))
        .collect();
    assert_eq!(inc.len(), tips.len(), "exactly one included tip per item");
    assert_eq!(
        inc.iter().collect::<HashSet<_>>(),
        tips.iter().collect::<HashSet<_>>(),
        "included = the tips of the items on this page"
    );
    assert!(included.iter().all(|v| v["type"] == "versions"));
}

#[tokio::test]
async fn contents_paginate_200_then_100_following_next_verbatim() {
    let (emu, tok, project, flat) = flat300().await;
    let first = get_ok(&emu, &tok, &contents_path(&project, &flat)).await;
    let d0 = first["data"].as_array().expect("data");
    assert_eq!(d0.len(), 200, "default page size is 200");
    assert_tips_match(d0, first["included"].as_array().expect("included"));
    let next = href(&first["links"]["next"]);
    assert!(next.starts_with("http://"), "next is absolute: {next}");
    assert!(
        next.contains("page%5Bnumber%5D=1"),
        "0-based, encoded brackets: {next}"
    );
    assert!(
        !next.contains("page%5Blimit%5D"),
        "limit only echoed when given: {next}"
    );
    assert!(first["links"]["self"]["href"].is_string());
    assert!(first["links"].get("prev").is_none());

    let second = get_ok(&emu, &tok, &next).await;
    let d1 = second["data"].as_array().expect("data");
    assert_eq!(d1.len(), 100);
    assert_tips_match(d1, second["included"].as_array().expect("included"));
    assert!(
        second["links"].get("next").is_none(),
        "no next on the last page"
    );
    assert!(href(&second["links"]["prev"]).contains("page%5Bnumber%5D=0"));
    assert!(href(&second["links"]["first"]).contains("page%5Bnumber%5D=0"));

    let ids: HashSet<&str> = d0
        .iter()
        .chain(d1)
        .map(|d| d["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 300, "no entry twice, none missing");
}

#[tokio::test]
async fn contents_page_limit_is_echoed_and_validated() {
    let (emu, tok, project, flat) = flat300().await;
    let path = contents_path(&project, &flat);
    let mut url = emu.url(&format!("{path}?page[limit]=50"));
    let mut pages = 0;
    let mut ids = HashSet::new();
    loop {
        let body = get_ok(&emu, &tok, &url).await;
        pages += 1;
        let data = body["data"].as_array().expect("data");
        assert_eq!(data.len(), 50);
        assert_tips_match(data, body["included"].as_array().expect("included"));
        ids.extend(
            data.iter()
                .map(|d| d["id"].as_str().expect("id").to_string()),
        );
        assert!(href(&body["links"]["self"]).contains("page%5Blimit%5D=50"));
        match body["links"]["next"]["href"].as_str() {
            Some(n) => {
                assert!(
                    n.contains("page%5Blimit%5D=50"),
                    "limit echoed in next: {n}"
                );
                assert!(n.contains(&format!("page%5Bnumber%5D={pages}")), "{n}");
                url = n.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 6);
    assert_eq!(ids.len(), 300);

    for bad in ["0", "201", "-1", "x"] {
        let (status, body) = emu
            .get_json(&tok, &format!("{path}?page[limit]={bad}"))
            .await;
        assert_eq!(status, 400, "page[limit]={bad}: {body}");
        assert_jsonapi_error(&body, 400);
    }
    let (status, body) = emu
        .get_json(&tok, &format!("{path}?page%5Blimit%5D=201"))
        .await;
    assert_eq!(status, 400, "encoded page[limit]=201: {body}");
    assert_jsonapi_error(&body, 400);
    // A page past the end is empty and has no next.
    let past = get_ok(&emu, &tok, &format!("{path}?page[number]=2")).await;
    assert_eq!(past["data"].as_array().map(Vec::len), Some(0));
    assert!(past["links"].get("next").is_none());
}

#[tokio::test]
async fn raw_and_encoded_page_parameters_agree() {
    let (emu, tok, project, flat) = flat300().await;
    let path = contents_path(&project, &flat);
    let ids = |b: &Value| -> Vec<String> {
        b["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|d| d["id"].as_str().expect("id").to_string())
            .collect()
    };
    let raw = get_ok(&emu, &tok, &format!("{path}?page[number]=1")).await;
    let encoded = get_ok(&emu, &tok, &format!("{path}?page%5Bnumber%5D=1")).await;
    assert_eq!(ids(&raw).len(), 100);
    assert_eq!(ids(&raw), ids(&encoded));
    let first = get_ok(&emu, &tok, &path).await;
    assert!(
        ids(&first).iter().all(|i| !ids(&raw).contains(i)),
        "page 1 differs from page 0"
    );
    let raw = get_ok(&emu, &tok, &format!("{path}?page[number]=1&page[limit]=7")).await;
    let encoded = get_ok(
        &emu,
        &tok,
        &format!("{path}?page%5Bnumber%5D=1&page%5Blimit%5D=7"),
    )
    .await;
    assert_eq!(ids(&raw).len(), 7);
    assert_eq!(ids(&raw), ids(&encoded));
}

#[tokio::test]
async fn mixed_listing_includes_tips_for_items_only() {
    let emu = Emulator::start(&["--generate", "items=100,folders=10"]);
    let tok = emu.token().await;
    let (hub, project) = first_project(&emu, &tok).await;
    let top = top_folders(&emu, &tok, &hub, &project).await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let body = get_ok(
        &emu,
        &tok,
        &format!("{}?page[limit]=2", contents_path(&project, &top)),
    )
    .await;
    let data = body["data"].as_array().expect("data");
    assert!(
        data.iter().all(|d| d["type"] == "folders"),
        "first page holds folders only here"
    );
    assert!(
        match body.get("included") {
            None => true,
            Some(i) => i.as_array().is_some_and(Vec::is_empty),
        },
        "folders contribute nothing to included: {body}"
    );
    let (data, included, pages) = list_all(
        &emu,
        &tok,
        &format!("{}?page[limit]=4", contents_path(&project, &top)),
    )
    .await;
    assert!(pages > 2);
    assert!(
        data.iter().any(|d| d["type"] == "folders") && data.iter().any(|d| d["type"] == "items")
    );
    assert_tips_match(&data, &included);
}

#[tokio::test]
async fn item_versions_paginate_newest_first() {
    let emu = Emulator::start(&["--generate", "items=0,folders=0,awkward"]);
    let tok = emu.token().await;
    let (project, awkward) = folder_by_path(&emu, &tok, &["Awkward"]).await;
    let (item, tip) = child(&emu, &tok, &project, &awkward, "Three Versions.rvt", false).await;
    let tip = tip.expect("tip");
    assert_eq!(tip["attributes"]["versionNumber"], 3);
    assert_eq!(tip["attributes"]["storageSize"], 3000);
    let versions_href = href(&item["relationships"]["versions"]["links"]["related"]);
    let all = get_ok(&emu, &tok, &versions_href).await;
    let nums: Vec<u64> = all["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|v| v["attributes"]["versionNumber"].as_u64().expect("n"))
        .collect();
    assert_eq!(nums, [3, 2, 1], "newest first");
    let sizes: Vec<u64> = all["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|v| v["attributes"]["storageSize"].as_u64().expect("size"))
        .collect();
    assert_eq!(sizes, [3000, 2000, 1000]);
    assert!(all["links"].get("next").is_none());

    let (data, _, pages) = list_all(&emu, &tok, &format!("{versions_href}?page[limit]=2")).await;
    assert_eq!(pages, 2);
    let ids: Vec<&str> = data.iter().map(|v| v["id"].as_str().expect("id")).collect();
    let want: Vec<&str> = all["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|v| v["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, want);
    let first = get_ok(&emu, &tok, &format!("{versions_href}?page[limit]=1")).await;
    let next = href(&first["links"]["next"]);
    assert!(
        next.contains("page%5Bnumber%5D=1") && next.contains("page%5Blimit%5D=1"),
        "{next}"
    );
    let (status, body) = emu
        .get_json(&tok, &format!("{versions_href}?page[limit]=201"))
        .await;
    assert_eq!(status, 400);
    assert_jsonapi_error(&body, 400);
    // Every version id has the real shape and resolves.
    for v in want {
        assert!(version_number_of(v).is_some(), "{v}");
        let got = get_ok(
            &emu,
            &tok,
            &format!("/data/v1/projects/{project}/versions/{}", enc(v)),
        )
        .await;
        assert_eq!(got["data"]["id"], v);
    }
}

#[tokio::test]
async fn ids_accept_raw_and_encoded_spellings() {
    let dir = tempfile::tempdir().expect("tempdir");
    seed_tree(dir.path());
    let emu = Emulator::seeded(dir.path(), &[]);
    let tok = emu.token().await;
    let (hub, project) = first_project(&emu, &tok).await;
    let tops = top_folders(&emu, &tok, &hub, &project).await;
    let pf = tops
        .iter()
        .find(|f| name_of(f) == "Project Files")
        .expect("Project Files");
    let fid = pf["id"].as_str().expect("id");

    let raw = get_ok(
        &emu,
        &tok,
        &format!("/data/v1/projects/{project}/folders/{fid}/contents"),
    )
    .await;
    let encoded = get_ok(
        &emu,
        &tok,
        &format!(
            "/data/v1/projects/{project}/folders/{}/contents",
            fid.replace(':', "%3A")
        ),
    )
    .await;
    assert_eq!(raw["data"], encoded["data"]);
    let raw = get_ok(
        &emu,
        &tok,
        &format!("/data/v1/projects/{project}/folders/{fid}"),
    )
    .await;
    let encoded = get_ok(
        &emu,
        &tok,
        &format!("/data/v1/projects/{project}/folders/{}", enc(fid)),
    )
    .await;
    assert_eq!(raw["data"]["id"], fid);
    assert_eq!(encoded["data"]["id"], fid);

    let (item, tip) = child(&emu, &tok, &project, fid, "readme.txt", false).await;
    let vid = tip.expect("tip")["id"].as_str().expect("id").to_string();
    let (base, _) = vid.split_once('?').expect("?version=");
    let item_id = item["id"].as_str().expect("id");
    let raw_item = get_ok(
        &emu,
        &tok,
        &format!("/data/v1/projects/{project}/items/{item_id}"),
    )
    .await;
    assert_eq!(raw_item["data"]["id"], item_id);
    for spelling in [
        format!("{}%3Fversion%3D1", enc(base)),
        format!("{base}%3Fversion%3D1"),
        format!("{base}%3Fversion=1"),
        format!("{}%3fversion%3d1", base.replace(':', "%3a")),
    ] {
        let got = get_ok(
            &emu,
            &tok,
            &format!("/data/v1/projects/{project}/versions/{spelling}"),
        )
        .await;
        assert_eq!(
            got["data"]["id"],
            vid.as_str(),
            "version id spelled {spelling}"
        );
    }

    // Unknown ids: 404 JSON:API bodies.
    let unknown_folder = "urn:adsk.wipprod:fs.folder:co.AAAAAAAAAAAAAAAAAAAAAA";
    for path in [
        format!(
            "/data/v1/projects/{project}/folders/{}",
            enc(unknown_folder)
        ),
        format!(
            "/data/v1/projects/{project}/folders/{}/contents",
            enc(unknown_folder)
        ),
        format!("/data/v1/projects/{project}/folders/{unknown_folder}/contents"),
        format!("/data/v1/projects/{project}/folders/not-a-folder/contents"),
    ] {
        let (status, body) = emu.get_json(&tok, &path).await;
        assert_eq!(status, 404, "{path}: {body}");
        let e = assert_jsonapi_error(&body, 404);
        assert_eq!(e["code"], "FOLDER_NOT_FOUND", "{path}");
    }
    for path in [
        format!(
            "/data/v1/projects/{project}/items/{}",
            enc("urn:adsk.wipprod:dm.lineage:AAAAAAAAAAAAAAAAAAAAAA")
        ),
        format!(
            "/data/v1/projects/{project}/versions/{}",
            enc("urn:adsk.wipprod:fs.file:vf.AAAAAAAAAAAAAAAAAAAAAA?version=1")
        ),
        format!(
            "/data/v1/projects/{project}/versions/{}",
            enc(&vid.replace("?version=1", "?version=9"))
        ),
        "/project/v1/hubs/b.00000000-0000-4000-8000-000000000000".to_string(),
        format!("/project/v1/hubs/{hub}/projects/b.00000000-0000-4000-8000-000000000000"),
    ] {
        let (status, body) = emu.get_json(&tok, &path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_jsonapi_error(&body, 404);
    }
}

#[tokio::test]
async fn contents_filters_by_type_and_extension() {
    let emu = Emulator::start(&["--generate", "items=30,folders=5"]);
    let tok = emu.token().await;
    let (hub, project) = first_project(&emu, &tok).await;
    let top = top_folders(&emu, &tok, &hub, &project).await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let path = contents_path(&project, &top);
    let (all, _, _) = list_all(&emu, &tok, &path).await;
    let n_items = all.iter().filter(|d| d["type"] == "items").count();
    let n_folders = all.iter().filter(|d| d["type"] == "folders").count();
    assert!(n_items > 0 && n_folders > 0);

    let (items, inc, _) = list_all(&emu, &tok, &format!("{path}?filter[type]=items")).await;
    assert_eq!(items.len(), n_items);
    assert!(items.iter().all(|d| d["type"] == "items"));
    assert_tips_match(&items, &inc);

    let (folders, inc, _) = list_all(&emu, &tok, &format!("{path}?filter%5Btype%5D=folders")).await;
    assert_eq!(folders.len(), n_folders);
    assert!(folders.iter().all(|d| d["type"] == "folders"));
    assert!(inc.is_empty());

    let (by_ext, _, _) = list_all(
        &emu,
        &tok,
        &format!("{path}?filter[extension.type]=items:autodesk.bim360:File"),
    )
    .await;
    assert_eq!(by_ext.len(), n_items);
    assert!(by_ext
        .iter()
        .all(|d| d["attributes"]["extension"]["type"] == "items:autodesk.bim360:File"));
    let (none, _, _) = list_all(
        &emu,
        &tok,
        &format!("{path}?filter[extension.type]=items:autodesk.core:File"),
    )
    .await;
    assert!(none.is_empty());

    // Filters are carried into next links (page 0 of 2-entry pages, filtered to items).
    let first = get_ok(
        &emu,
        &tok,
        &format!("{path}?filter[type]=items&page[limit]=2"),
    )
    .await;
    let next = href(&first["links"]["next"]);
    assert!(
        next.contains("filter%5Btype%5D=items"),
        "filters carried into next: {next}"
    );
}

/// The awkward emulator, its first project and the "Awkward" folder.
async fn awkward() -> (Emulator, String, String, String) {
    let emu = Emulator::start(&["--generate", "items=5,folders=1,awkward"]);
    let tok = emu.token().await;
    let (project, folder) = folder_by_path(&emu, &tok, &["Awkward"]).await;
    (emu, tok, project, folder)
}

#[tokio::test]
async fn hidden_entries_only_with_include_hidden() {
    let (emu, tok, project, folder) = awkward().await;
    let (shown, _) = folder_entries(&emu, &tok, &project, &folder, false).await;
    let (all, all_inc) = folder_entries(&emu, &tok, &project, &folder, true).await;
    let names = |v: &[Value]| {
        v.iter()
            .map(|d| name_of(d).to_string())
            .collect::<BTreeSet<_>>()
    };
    for hidden in ["Hidden Item.txt", "Hidden Folder", "Deleted Drawing.dwg"] {
        assert!(
            !names(&shown).contains(hidden),
            "{hidden} hidden by default"
        );
        assert!(
            names(&all).contains(hidden),
            "{hidden} listed with includeHidden=true"
        );
        let entry = all.iter().find(|d| name_of(d) == hidden).expect("entry");
        assert_eq!(entry["attributes"]["hidden"], true, "{hidden}");
    }
    assert!(shown.iter().all(|d| d["attributes"]["hidden"] == false));
    assert_eq!(all.len(), shown.len() + 3);
    assert_tips_match(&all, &all_inc);
    let (hidden_only, _, _) = list_all(
        &emu,
        &tok,
        &format!("{}?filter[hidden]=true", contents_path(&project, &folder)),
    )
    .await;
    assert_eq!(
        names(&hidden_only),
        BTreeSet::from(
            ["Hidden Item.txt", "Hidden Folder", "Deleted Drawing.dwg"].map(String::from)
        )
    );
}

#[tokio::test]
async fn awkward_versions_tombstones_sizes_and_timestamps() {
    let (emu, tok, project, folder) = awkward().await;
    let (data, included) = folder_entries(&emu, &tok, &project, &folder, true).await;
    let tip_of = |name: &str| -> Value {
        let it = data
            .iter()
            .find(|d| name_of(d) == name)
            .unwrap_or_else(|| panic!("{name}"));
        let id = &it["relationships"]["tip"]["data"]["id"];
        included
            .iter()
            .find(|v| &v["id"] == id)
            .expect("tip included")
            .clone()
    };

    let tomb = tip_of("Deleted Drawing.dwg");
    assert_eq!(
        tomb["attributes"]["extension"]["type"],
        "versions:autodesk.core:Deleted"
    );
    assert_eq!(tomb["attributes"]["versionNumber"], 2);
    assert!(
        tomb["relationships"].get("storage").is_none(),
        "tombstone has no storage: {tomb}"
    );
    assert!(tomb["attributes"].get("storageSize").is_none());
    assert_eq!(
        tomb["attributes"]["extension"]["data"]["originalName"],
        "Deleted Drawing.dwg"
    );

    let no_size = tip_of("No Size.pdf");
    assert!(
        no_size["attributes"].get("storageSize").is_none(),
        "{no_size}"
    );
    assert!(
        no_size["relationships"]["storage"]["data"]["id"].is_string(),
        "still has bytes"
    );

    let design = tip_of("Cloud Design.f3d");
    assert!(
        design["relationships"].get("storage").is_none(),
        "cloud design has no storage"
    );

    let dups = data
        .iter()
        .filter(|d| name_of(d) == "Duplicate.pdf")
        .count();
    assert_eq!(dups, 2, "duplicate names are served as they are");
    assert!(data.iter().any(|d| name_of(d) == "slash/in name.txt"));

    let locked = data
        .iter()
        .find(|d| name_of(d) == "Locked.rvt")
        .expect("Locked.rvt");
    assert_eq!(locked["attributes"]["reserved"], true);
    assert!(locked["attributes"]["reservedUserId"].is_string());

    // Timestamps: several ISO 8601 spellings, all RFC 3339.
    let mut spellings = BTreeSet::new();
    for v in data.iter().chain(&included) {
        for k in ["createTime", "lastModifiedTime"] {
            let Some(t) = v["attributes"][k].as_str() else {
                continue;
            };
            rfc3339_ms(t);
            let kind = if t.ends_with("+00:00") {
                "offset"
            } else if t.len() == "2018-01-17T11:52:11.0000000Z".len() {
                "ticks"
            } else if t.len() == "2015-11-27T11:11:23.000Z".len() {
                "millis"
            } else {
                "other"
            };
            spellings.insert(kind);
        }
    }
    assert!(spellings.len() >= 2, "timestamp spellings: {spellings:?}");
}

#[tokio::test]
async fn forbidden_folder_answers_403() {
    let (emu, tok, project, folder) = awkward().await;
    let (restricted, _) = child(&emu, &tok, &project, &folder, "Restricted", false).await;
    let id = restricted["id"].as_str().expect("id");
    let (status, body) = emu.get_json(&tok, &contents_path(&project, id)).await;
    assert_eq!(status, 403, "{body}");
    assert_jsonapi_error(&body, 403);
}

#[tokio::test]
async fn refs_between_host_and_xref() {
    let (emu, tok, project, folder) = awkward().await;
    let (host, host_tip) = child(&emu, &tok, &project, &folder, "Host.dwg", false).await;
    let (_, xref_tip) = child(&emu, &tok, &project, &folder, "Xref.dwg", false).await;
    let host_v = host_tip.expect("host tip")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let xref_v = xref_tip.expect("xref tip")["id"]
        .as_str()
        .expect("id")
        .to_string();

    for url in [
        href(&host["relationships"]["refs"]["links"]["self"]),
        format!(
            "/data/v1/projects/{project}/versions/{}/relationships/refs",
            enc(&host_v)
        ),
    ] {
        let body = get_ok(&emu, &tok, &url).await;
        let data = body["data"].as_array().expect("data");
        assert_eq!(data.len(), 1, "{url}: {body}");
        let r = &data[0];
        assert_eq!(r["type"], "versions");
        assert_eq!(r["id"], xref_v.as_str());
        let m = &r["meta"];
        assert_eq!(m["refType"], "xrefs");
        assert_eq!(m["direction"], "from");
        assert_eq!(m["fromId"], host_v.as_str());
        assert_eq!(m["fromType"], "versions");
        assert_eq!(m["toId"], xref_v.as_str());
        assert_eq!(m["toType"], "versions");
        assert_eq!(m["extension"]["type"], "xrefs:autodesk.core:Xref");
        let inc = body["included"].as_array().expect("included");
        assert_eq!(inc.len(), 1);
        assert_eq!(inc[0]["id"], xref_v.as_str());
        assert_eq!(inc[0]["attributes"]["name"], "Xref.dwg");
    }
    // The other end sees it with direction "to"; filters apply.
    let body = get_ok(
        &emu,
        &tok,
        &format!(
            "/data/v1/projects/{project}/versions/{}/relationships/refs",
            enc(&xref_v)
        ),
    )
    .await;
    assert_eq!(body["data"][0]["meta"]["direction"], "to");
    let body = get_ok(
        &emu,
        &tok,
        &format!(
            "/data/v1/projects/{project}/versions/{}/relationships/refs?filter[refType]=auxiliary",
            enc(&xref_v)
        ),
    )
    .await;
    assert_eq!(body["data"].as_array().map(Vec::len), Some(0));
    // `refs` answers the related resources themselves.
    let body = get_ok(
        &emu,
        &tok,
        &href(&host["relationships"]["refs"]["links"]["related"]),
    )
    .await;
    assert_eq!(body["data"][0]["id"], xref_v.as_str());
    assert_eq!(body["data"][0]["attributes"]["name"], "Xref.dwg");
    // Folders without refs answer an empty list.
    let body = get_ok(
        &emu,
        &tok,
        &format!(
            "/data/v1/projects/{project}/folders/{}/relationships/refs",
            enc(&folder)
        ),
    )
    .await;
    assert_eq!(body["data"], serde_json::json!([]));
}

#[tokio::test]
async fn hub_warnings_and_team_hub_with_relative_links() {
    let (emu, tok, _, _) = awkward().await;
    let hubs = get_ok(&emu, &tok, "/project/v1/hubs").await;
    let warnings = hubs["meta"]["warnings"].as_array().expect("meta.warnings");
    assert!(!warnings.is_empty());
    for k in [
        "Id",
        "HttpStatusCode",
        "ErrorCode",
        "Title",
        "Detail",
        "AboutLink",
        "Source",
        "meta",
    ] {
        assert!(
            warnings[0].get(k).is_some(),
            "warning key {k} (PascalCase) in {}",
            warnings[0]
        );
    }
    assert_eq!(warnings[0]["ErrorCode"], "BIM360DM_ERROR");

    let team = hubs["data"]
        .as_array()
        .expect("hubs")
        .iter()
        .find(|h| h["attributes"]["name"] == "Fusion Team")
        .expect("Fusion Team hub")
        .clone();
    let hub_id = team["id"].as_str().expect("id");
    assert!(hub_id.starts_with("a."), "team hub id shape {hub_id}");
    assert_extension(&team, "hubs:autodesk.core:Hub");
    assert_eq!(
        team["relationships"]["pimCollection"]["data"]["type"],
        "collection"
    );
    let filtered = get_ok(
        &emu,
        &tok,
        "/project/v1/hubs?filter[extension.type]=hubs:autodesk.core:Hub",
    )
    .await;
    assert_eq!(filtered["data"].as_array().map(Vec::len), Some(1));

    let projects = get_ok(
        &emu,
        &tok,
        &href(&team["relationships"]["projects"]["links"]["related"]),
    )
    .await;
    let project = projects["data"][0].clone();
    assert_eq!(project["attributes"]["name"], "Fusion Designs");
    assert_extension(&project, "projects:autodesk.core:Project");
    let self_href = href(&project["links"]["self"]);
    assert!(
        self_href.starts_with("/project/v1/"),
        "root-relative href: {self_href}"
    );
    let top_href = href(&project["relationships"]["topFolders"]["links"]["related"]);
    assert!(top_href.starts_with('/'), "root-relative href: {top_href}");
    // Root-relative hrefs resolve against the base URL and lead on down to the files.
    let tops = get_ok(&emu, &tok, &top_href).await;
    let designs = tops["data"][0].clone();
    assert_eq!(name_of(&designs), "Designs");
    assert_extension(&designs, "folders:autodesk.core:Folder");
    let contents_href = href(&designs["relationships"]["contents"]["links"]["related"]);
    assert!(contents_href.starts_with("/data/v1/"), "{contents_href}");
    let contents = get_ok(&emu, &tok, &contents_href).await;
    let data = contents["data"].as_array().expect("data");
    let names: BTreeSet<&str> = data.iter().map(name_of).collect();
    assert!(
        names.contains("spec.pdf") && names.contains("Bracket.f3d"),
        "{names:?}"
    );
    let spec = data
        .iter()
        .find(|d| name_of(d) == "spec.pdf")
        .expect("spec.pdf");
    assert_extension(spec, "items:autodesk.core:File");
    assert!(href(&spec["links"]["self"]).starts_with("/data/v1/"));
    let tip = contents["included"]
        .as_array()
        .expect("included")
        .iter()
        .find(|v| v["id"] == spec["relationships"]["tip"]["data"]["id"])
        .expect("tip")
        .clone();
    assert_eq!(
        tip["attributes"]["extension"]["type"],
        "versions:autodesk.core:File"
    );
    let item = get_ok(&emu, &tok, &href(&spec["links"]["self"])).await;
    assert_eq!(item["data"]["id"], spec["id"]);
}

#[tokio::test]
async fn top_folders_carry_folder_parents() {
    let emu = Emulator::start(&["--generate", "items=0,folders=0"]);
    let tok = emu.token().await;
    let (hub, project) = first_project(&emu, &tok).await;
    for f in top_folders(&emu, &tok, &hub, &project).await {
        let data = &f["attributes"]["extension"]["data"];
        for k in [
            "isRoot",
            "folderType",
            "folderParents",
            "namingStandardIds",
            "allowedTypes",
            "visibleTypes",
        ] {
            assert!(
                data.get(k).is_some(),
                "topFolders extension.data.{k} in {data}"
            );
        }
        assert!(data["folderParents"].is_array());
    }
}

#[tokio::test]
async fn folder_if_modified_since_answers_304() {
    let dir = tempfile::tempdir().expect("tempdir");
    seed_tree(dir.path());
    let emu = Emulator::seeded(dir.path(), &[]);
    let tok = emu.token().await;
    let (hub, project) = first_project(&emu, &tok).await;
    let pf = top_folders(&emu, &tok, &hub, &project)
        .await
        .into_iter()
        .find(|f| name_of(f) == "Project Files")
        .expect("Project Files");
    let url = resolve(&emu, &href(&pf["links"]["self"]));
    let r = get_authed(&url, &tok, &[]).await;
    assert_eq!(r.status(), 200);
    let last_modified = header(r.headers(), "last-modified")
        .expect("Last-Modified")
        .to_string();
    let r = get_authed(&url, &tok, &[("If-Modified-Since", &last_modified)]).await;
    assert_eq!(r.status(), 304);
    assert_eq!(
        header(r.headers(), "last-modified"),
        Some(last_modified.as_str())
    );
    assert!(
        r.bytes().await.expect("body").is_empty(),
        "304 has an empty body"
    );
    let r = get_authed(
        &url,
        &tok,
        &[("If-Modified-Since", "Thu, 01 Jan 2015 00:00:00 GMT")],
    )
    .await;
    assert_eq!(r.status(), 200, "changed since then");
}

#[tokio::test]
async fn filters_apply_after_paging_so_middle_pages_may_be_empty() {
    let (emu, tok, project, flat) = flat300().await;
    // Extensions cycle over 8 kinds: 1 in 8 files is .rvt, so 4-entry pages alternate 1 and 0.
    let first = format!(
        "{}?filter[displayName]-ends=.rvt&page[limit]=4",
        contents_path(&project, &flat)
    );
    let mut url = emu.url(&first);
    let (mut pages, mut empty_with_next, mut total) = (0, 0, 0);
    loop {
        let body = get_ok(&emu, &tok, &url).await;
        pages += 1;
        let n = body["data"].as_array().expect("data").len();
        total += n;
        match body["links"]["next"]["href"].as_str() {
            Some(next) => {
                if n == 0 {
                    empty_with_next += 1;
                }
                assert!(next.contains("-ends"), "filter carried: {next}");
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 75);
    assert!(empty_with_next > 0, "empty middle pages still carry next");
    assert_eq!(total, 38);
}

#[tokio::test]
async fn versions_filter_and_path_in_project() {
    let emu = Emulator::start(&["--generate", "items=0,folders=0,awkward"]);
    let tok = emu.token().await;
    let (project, awkward) = folder_by_path(&emu, &tok, &["Awkward"]).await;
    let (item, _) = child(&emu, &tok, &project, &awkward, "Three Versions.rvt", false).await;
    let versions = href(&item["relationships"]["versions"]["links"]["related"]);
    let two = get_ok(&emu, &tok, &format!("{versions}?filter[versionNumber]=2")).await;
    let data = two["data"].as_array().expect("data");
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["attributes"]["versionNumber"], 2);
    assert_eq!(data[0]["attributes"]["storageSize"], 2000);
    let with_path = get_ok(
        &emu,
        &tok,
        &format!("{}?includePathInProject=true", href(&item["links"]["self"])),
    )
    .await;
    let path = with_path["data"]["attributes"]["pathInProject"]
        .as_str()
        .expect("pathInProject");
    assert!(path.ends_with("/Awkward"), "{path}");
    let plain = get_ok(&emu, &tok, &href(&item["links"]["self"])).await;
    assert!(plain["data"]["attributes"].get("pathInProject").is_none());
}

#[tokio::test]
async fn accept_headers_and_hub_filters() {
    let emu = Emulator::start(&["--generate", "hubs=2,items=0,folders=0"]);
    let tok = emu.token().await;
    for accept in [
        None,
        Some("application/json"),
        Some("application/vnd.api+json"),
        Some("application/vnd.api+json, application/json"),
    ] {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        let r = get_authed(&emu.url("/project/v1/hubs"), &tok, &headers).await;
        assert_eq!(r.status(), 200, "Accept {accept:?}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["data"].as_array().map(Vec::len), Some(2));
    }
    let all = get_ok(&emu, &tok, "/project/v1/hubs").await;
    let second = all["data"][1]["id"].as_str().expect("id").to_string();
    let one = get_ok(&emu, &tok, &format!("/project/v1/hubs?filter[id]={second}")).await;
    assert_eq!(one["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["data"][0]["id"], second.as_str());
    let named = get_ok(&emu, &tok, "/project/v1/hubs?filter[name]=Hub%201").await;
    assert_eq!(named["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(named["data"][0]["attributes"]["name"], "Hub 1");
    let bim = get_ok(
        &emu,
        &tok,
        "/project/v1/hubs?filter[extension.type]=hubs:autodesk.bim360:Account",
    )
    .await;
    assert_eq!(bim["data"].as_array().map(Vec::len), Some(1));
    let either = get_ok(
        &emu,
        &tok,
        "/project/v1/hubs?filter[extension.type]=hubs:autodesk.bim360:Account,hubs:autodesk.core:Hub",
    )
    .await;
    assert_eq!(
        either["data"].as_array().map(Vec::len),
        Some(2),
        "comma = OR"
    );
    // Project filters.
    let hub = all["data"][0]["id"].as_str().expect("id");
    let projects = get_ok(
        &emu,
        &tok,
        &format!("/project/v1/hubs/{hub}/projects?filter[attributes.name]=Project%201"),
    )
    .await;
    assert_eq!(projects["data"].as_array().map(Vec::len), Some(1));
    let none = get_ok(
        &emu,
        &tok,
        &format!("/project/v1/hubs/{hub}/projects?filter[attributes.name]=Nope"),
    )
    .await;
    assert_eq!(none["data"].as_array().map(Vec::len), Some(0));
}

/// `t` shifted into the +05:00 zone, spelled with that offset.
fn in_plus_five(ms: i64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(ms).expect("time");
    let zone = chrono::FixedOffset::east_opt(5 * 3600).expect("offset");
    t.with_timezone(&zone)
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

#[tokio::test]
async fn date_filters_compare_instants() {
    let emu = Emulator::start(&["--generate", "items=20,folders=0"]);
    let tok = emu.token().await;
    let (project, folder) = folder_by_path(&emu, &tok, &[]).await;
    let path = contents_path(&project, &folder);
    let (items, _, _) = list_all(&emu, &tok, &format!("{path}?filter[type]=items")).await;
    let mut times: Vec<i64> = items
        .iter()
        .map(|d| rfc3339_ms(d["attributes"]["lastModifiedTime"].as_str().expect("time")))
        .collect();
    times.sort();
    let cut = times[times.len() / 2];
    let want = times.iter().filter(|&&t| t >= cut).count();
    // The same instant, spelled in +05:00: the clock reads five hours later.
    let offset = in_plus_five(cut);
    // The same instant in UTC with 3 fractional digits (the generated items spell 7).
    let millis = chrono::DateTime::from_timestamp_millis(cut)
        .expect("time")
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let mut got = Vec::new();
    for q in [&millis, &offset] {
        let url = format!(
            "{path}?filter[type]=items&filter[lastModifiedTime]-ge={}",
            q.replace('+', "%2B")
        );
        got.push((q.clone(), list_all(&emu, &tok, &url).await.0.len()));
    }
    assert!(
        got.iter().all(|(_, n)| *n == want),
        "want {want} items at or after {cut} ms: {got:?}"
    );
}

#[tokio::test]
async fn versions_carry_derivatives_and_thumbnails() {
    let emu = Emulator::start(&["--generate", "items=1,folders=0"]);
    let tok = emu.token().await;
    let (project, folder) = folder_by_path(&emu, &tok, &[]).await;
    let (_, included) = folder_entries(&emu, &tok, &project, &folder, false).await;
    let v = &included[0];
    for (rel, ty) in [("derivatives", "derivatives"), ("thumbnails", "thumbnails")] {
        let r = &v["relationships"][rel];
        assert_eq!(r["data"]["type"], ty, "relationships.{rel} in {v}");
        assert!(r["data"]["id"].is_string());
        assert!(r["meta"]["link"]["href"].is_string());
    }
}
