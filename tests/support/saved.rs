//! What a read-write mount saved, read through the API (never through the mount): the items of
//! a folder with their tip version, every version of an item, and an object's bytes.

use crate::support::dm::{folder_by_path, folder_entries, name_of};
use crate::support::emulator::Emulator;
use crate::support::http::{enc, http};
use serde_json::Value;

/// The storage (bucket, key) of a version resource.
fn storage_of(version: &Value) -> (String, String) {
    let urn = version["relationships"]["storage"]["data"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("version has no storage: {version}"));
    let rest = urn
        .strip_prefix("urn:adsk.objects:os.object:")
        .unwrap_or_else(|| panic!("not a storage urn: {urn}"));
    let (b, k) = rest.split_once('/').expect("bucket/key");
    (b.to_string(), k.to_string())
}

/// One item of a folder as the service has it.
#[derive(Clone, Debug)]
pub struct Saved {
    /// Its name.
    pub name: String,
    /// Item id.
    pub item: String,
    /// The tip's version number.
    pub version: u64,
    /// The tip's storage (bucket, key).
    pub storage: (String, String),
}

/// The items (not folders) of the folder at `names` below the first top folder, by name.
pub async fn items(emu: &Emulator, names: &[&str]) -> Vec<Saved> {
    let token = emu.token().await;
    let (project, folder) = folder_by_path(emu, &token, names).await;
    let (data, included) = folder_entries(emu, &token, &project, &folder, false).await;
    let mut out: Vec<Saved> = data
        .iter()
        .filter(|d| d["type"] == "items")
        .map(|d| {
            let tip_id = d["relationships"]["tip"]["data"]["id"].clone();
            let tip = included
                .iter()
                .find(|v| v["id"] == tip_id)
                .unwrap_or_else(|| panic!("no tip for {d}"));
            Saved {
                name: name_of(tip).to_string(),
                item: d["id"].as_str().expect("item id").to_string(),
                version: tip["attributes"]["versionNumber"].as_u64().unwrap_or(0),
                storage: storage_of(tip),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The names of the subfolders of the folder at `names`.
pub async fn folders(emu: &Emulator, names: &[&str]) -> Vec<String> {
    let token = emu.token().await;
    let (project, folder) = folder_by_path(emu, &token, names).await;
    let (data, _) = folder_entries(emu, &token, &project, &folder, false).await;
    data.iter()
        .filter(|d| d["type"] == "folders")
        .map(|d| name_of(d).to_string())
        .collect()
}

/// The bytes of an item's tip, through a signed download URL.
pub async fn bytes(emu: &Emulator, saved: &Saved) -> Vec<u8> {
    download(emu, &saved.storage, &saved.name).await
}

/// The bytes of a version resource (one of `versions`), through a signed download URL.
pub async fn version_bytes(emu: &Emulator, version: &Value) -> Vec<u8> {
    download(emu, &storage_of(version), name_of(version)).await
}

/// The bytes of object (bucket, key), through a signed download URL; `what` names it in
/// failures.
async fn download(emu: &Emulator, (bucket, key): &(String, String), what: &str) -> Vec<u8> {
    let token = emu.token().await;
    let path = format!(
        "/oss/v2/buckets/{}/objects/{}/signeds3download",
        enc(bucket),
        enc(key)
    );
    let (status, doc) = emu.get_json(&token, &path).await;
    assert_eq!(status, 200, "signeds3download of {what}: {doc}");
    let url = doc["url"].as_str().expect("signed url");
    let r = http().get(url).send().await.expect("signed GET");
    assert_eq!(r.status().as_u16(), 200, "download of {what}");
    r.bytes().await.expect("body").to_vec()
}

/// The items of the folder at `names` as the service lists them: (its `displayName`, item
/// id, tip version number), by name. On a team hub a rename (`PATCH items`) changes the
/// item's `displayName` and leaves its versions' names as they were.
pub async fn item_names(emu: &Emulator, names: &[&str]) -> Vec<(String, String, u64)> {
    let token = emu.token().await;
    let (project, folder) = folder_by_path(emu, &token, names).await;
    let (data, included) = folder_entries(emu, &token, &project, &folder, false).await;
    let mut out: Vec<(String, String, u64)> = data
        .iter()
        .filter(|d| d["type"] == "items")
        .map(|d| {
            let tip_id = &d["relationships"]["tip"]["data"]["id"];
            let number = included
                .iter()
                .find(|v| v["id"] == *tip_id)
                .and_then(|v| v["attributes"]["versionNumber"].as_u64())
                .unwrap_or(0);
            (
                d["attributes"]["displayName"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                d["id"].as_str().expect("item id").to_string(),
                number,
            )
        })
        .collect();
    out.sort();
    out
}

/// The subfolders of the folder at `names` as the service lists them: (name, folder id).
pub async fn folder_ids(emu: &Emulator, names: &[&str]) -> Vec<(String, String)> {
    let token = emu.token().await;
    let (project, folder) = folder_by_path(emu, &token, names).await;
    let (data, _) = folder_entries(emu, &token, &project, &folder, false).await;
    let mut out: Vec<(String, String)> = data
        .iter()
        .filter(|d| d["type"] == "folders")
        .map(|d| {
            (
                name_of(d).to_string(),
                d["id"].as_str().expect("folder id").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Every version of the item `item` of the first project, newest first.
pub async fn versions(emu: &Emulator, item: &str) -> Vec<Value> {
    let token = emu.token().await;
    let (_, project) = crate::support::dm::first_project(emu, &token).await;
    let path = format!("/data/v1/projects/{project}/items/{}/versions", enc(item));
    let (status, doc) = emu.get_json(&token, &emu.url(&path)).await;
    assert_eq!(status, 200, "versions of {item}: {doc}");
    doc["data"].as_array().cloned().unwrap_or_default()
}
