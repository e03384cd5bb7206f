//! Turns store records into the JSON:API resources of the reference, field for field.

use super::ids::{Uid, OBJECT_PREFIX};
use super::segment::seg;
use super::store::{
    Flavor, Folder, Hub, Item, ItemKind, Project, Store, Version, VersionKind, DM_BUCKET,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

/// Who the emulator says created and changed everything.
const USER_ID: &str = "EMULATORUSER1";
const USER_NAME: &str = "Emulator User";

/// Renders resources for one request; `base` is the emulator's public URL.
pub struct Renderer<'a> {
    /// The world.
    pub store: &'a Store,
    /// `http://host:port`, prefixed to absolute hrefs.
    pub base: &'a str,
}

impl<'a> Renderer<'a> {
    /// A renderer over `store` with absolute links under `base`.
    pub fn new(store: &'a Store, base: &'a str) -> Renderer<'a> {
        Renderer { store, base }
    }

    /// `{"href": …}`, absolute unless the project is set to emit root-relative links.
    fn href(&self, project: Option<&Project>, path: &str) -> Value {
        if project.is_some_and(|p| p.relative_links) {
            json!({ "href": path })
        } else {
            json!({ "href": format!("{}{}", self.base, path) })
        }
    }

    fn schema(&self, ext: &str) -> Value {
        json!({ "href": format!("{}/schema/v1/versions/{ext}-1.0", self.base) })
    }

    fn extension(&self, ext: &str, data: Value) -> Value {
        json!({ "type": ext, "version": "1.0", "schema": self.schema(ext), "data": data })
    }

    fn flavor(&self, project: usize) -> Flavor {
        self.store.hubs[self.store.projects[project].hub].flavor
    }

    /// A hub resource.
    pub fn hub(&self, hub: &Hub) -> Value {
        let ext = match hub.flavor {
            Flavor::Bim360 => "hubs:autodesk.bim360:Account",
            Flavor::Team => "hubs:autodesk.core:Hub",
        };
        let path = format!("/project/v1/hubs/{}", seg(&hub.id));
        let mut rel = json!({
            "projects": { "links": { "related": self.href(None, &format!("{path}/projects")) } }
        });
        if hub.flavor == Flavor::Team {
            rel["pimCollection"] = json!({
                "data": { "type": "collection", "id": format!("co.{}", Uid::derive("pim", &hub.id).token()) }
            });
        }
        json!({
            "type": "hubs",
            "id": hub.id,
            "attributes": { "name": hub.name, "region": "US", "extension": self.extension(ext, json!({})) },
            "links": { "self": self.href(None, &path) },
            "relationships": rel,
        })
    }

    /// A project resource.
    pub fn project(&self, p: &Project) -> Value {
        let hub = &self.store.hubs[p.hub];
        let base = format!("/project/v1/hubs/{}/projects/{}", seg(&hub.id), seg(&p.id));
        let (ext, data, scopes) = match hub.flavor {
            Flavor::Bim360 => (
                "projects:autodesk.bim360:Project",
                json!({ "projectType": "ACC" }),
                json!([
                    format!("b360project.{}", p.id.trim_start_matches("b.")),
                    "global"
                ]),
            ),
            Flavor::Team => (
                "projects:autodesk.core:Project",
                json!({}),
                json!(["global"]),
            ),
        };
        let root = p.root.folder_urn();
        let mut links = json!({ "self": self.href(Some(p), &base) });
        if hub.flavor == Flavor::Bim360 {
            links["webView"] = json!({
                "href": format!("https://acc.autodesk.com/docs/files/projects/{}", p.id.trim_start_matches("b."))
            });
        }
        json!({
            "type": "projects",
            "id": p.id,
            "attributes": { "name": p.name, "scopes": scopes, "extension": self.extension(ext, data) },
            "links": links,
            "relationships": {
                "hub": {
                    "data": { "type": "hubs", "id": hub.id },
                    "links": { "related": self.href(Some(p), &format!("{base}/hub")) }
                },
                "rootFolder": {
                    "data": { "type": "folders", "id": root },
                    "meta": { "link": self.href(Some(p), &format!("/data/v1/projects/{}/folders/{}", seg(&p.id), seg(&root))) }
                },
                "topFolders": { "links": { "related": self.href(Some(p), &format!("{base}/topFolders")) } },
            }
        })
    }

    /// A folder resource; `top` adds the extra `extension.data` fields topFolders carries.
    pub fn folder(&self, f: &Folder, top: bool) -> Value {
        let p = &self.store.projects[f.project];
        let flavor = self.flavor(f.project);
        let urn = f.uid.folder_urn();
        let path = format!("/data/v1/projects/{}/folders/{}", seg(&p.id), seg(&urn));
        let (ext, mut data) = match flavor {
            Flavor::Bim360 => (
                "folders:autodesk.bim360:Folder",
                json!({
                    "allowedTypes": ["items", "folders", "items:autodesk.bim360:File", "folders:autodesk.bim360:Folder"],
                    "visibleTypes": ["items", "folders", "items:autodesk.bim360:File", "folders:autodesk.bim360:Folder"],
                    "namingStandardIds": [],
                }),
            ),
            Flavor::Team => ("folders:autodesk.core:Folder", json!({})),
        };
        if top {
            // §4.5 lists these for every topFolders entry, whatever the hub kind.
            data["isRoot"] = json!(f.parent.is_none());
            data["folderType"] = json!("normal");
            data["folderParents"] = self.folder_parents(f);
            for k in ["namingStandardIds", "allowedTypes", "visibleTypes"] {
                if data.get(k).is_none() {
                    data[k] = json!([]);
                }
            }
        }
        let mut rel = Map::new();
        if let Some(parent) = f.parent {
            rel.insert(
                "parent".into(),
                json!({
                    "data": { "type": "folders", "id": parent.folder_urn() },
                    "links": { "related": self.href(Some(p), &format!("{path}/parent")) }
                }),
            );
        }
        rel.insert("refs".into(), self.refs_rel(p, &path));
        rel.insert(
            "links".into(),
            json!({ "links": { "self": self.href(Some(p), &format!("{path}/relationships/links")) } }),
        );
        rel.insert(
            "contents".into(),
            json!({ "links": { "related": self.href(Some(p), &format!("{path}/contents")) } }),
        );
        let mut links = json!({ "self": self.href(Some(p), &path) });
        if flavor == Flavor::Bim360 {
            links["webView"] = json!({ "href": format!("https://acc.autodesk.com/docs/files/projects/{}?folderUrn={}", p.id.trim_start_matches("b."), seg(&urn)) });
        }
        json!({
            "type": "folders",
            "id": urn,
            "attributes": {
                "name": f.name,
                "displayName": f.name,
                "objectCount": f.children.len(),
                "createTime": f.created.render(),
                "createUserId": USER_ID,
                "createUserName": USER_NAME,
                "lastModifiedTime": f.modified.render(),
                "lastModifiedUserId": USER_ID,
                "lastModifiedUserName": USER_NAME,
                "lastModifiedTimeRollup": super::clock::Stamp { ms: f.rollup_ms, format: f.modified.format }.render(),
                "hidden": f.hidden,
                "extension": self.extension(ext, data),
            },
            "links": links,
            "relationships": Value::Object(rel),
        })
    }

    /// `folderParents` of a topFolders entry: its ancestors from the root down to its
    /// parent, each `{urn, isRoot, title, parentUrn}` (`parentUrn` null for the root).
    fn folder_parents(&self, f: &Folder) -> Value {
        let mut chain = Vec::new();
        let mut next = f.parent;
        // Bounded by the folder count so a corrupt parent cycle cannot loop forever.
        while let Some(uid) = next.filter(|_| chain.len() <= self.store.folders.len()) {
            let Some(a) = self.store.folders.get(&uid) else {
                break;
            };
            chain.push(json!({
                "urn": a.uid.folder_urn(),
                "isRoot": a.parent.is_none(),
                "title": a.name,
                "parentUrn": a.parent.map(|p| p.folder_urn()),
            }));
            next = a.parent;
        }
        chain.reverse();
        Value::Array(chain)
    }

    fn refs_rel(&self, p: &Project, path: &str) -> Value {
        json!({ "links": {
            "self": self.href(Some(p), &format!("{path}/relationships/refs")),
            "related": self.href(Some(p), &format!("{path}/refs")),
        }})
    }

    /// An item resource.
    pub fn item(&self, it: &Item) -> Value {
        let p = &self.store.projects[it.project];
        let urn = it.uid.item_urn();
        let path = format!("/data/v1/projects/{}/items/{}", seg(&p.id), seg(&urn));
        let tip = it.tip();
        // A `PATCH items` rename shows here; the tip version keeps the name it was made with.
        let name = it.name();
        let created = it.versions.first().map(|v| v.created).unwrap_or_default();
        let modified = it.modified();
        let ext = match (it.kind, self.flavor(it.project)) {
            (ItemKind::Design, _) => "items:autodesk.fusion360:Design",
            (ItemKind::File, Flavor::Bim360) => "items:autodesk.bim360:File",
            (ItemKind::File, Flavor::Team) => "items:autodesk.core:File",
        };
        let data = match self.flavor(it.project) {
            Flavor::Bim360 => {
                json!({ "sourceFileName": tip.map(|v| v.name.as_str()).unwrap_or_default() })
            }
            Flavor::Team => json!({}),
        };
        let mut attrs = json!({
            "displayName": name,
            "createTime": created.render(),
            "createUserId": USER_ID,
            "createUserName": USER_NAME,
            "lastModifiedTime": modified.render(),
            "lastModifiedUserId": USER_ID,
            "lastModifiedUserName": USER_NAME,
            "hidden": it.hidden,
            "reserved": it.reserved.is_some(),
            "extension": self.extension(ext, data),
        });
        if let Some(lock) = &it.reserved {
            attrs["reservedTime"] = json!(lock.since.render());
            attrs["reservedUserId"] = json!(lock.user_id);
            attrs["reservedUserName"] = json!(lock.user_name);
        }
        let mut rel = Map::new();
        if let Some(t) = tip {
            rel.insert(
                "tip".into(),
                json!({
                    "data": { "type": "versions", "id": it.uid.version_urn(t.number) },
                    "links": { "related": self.href(Some(p), &format!("{path}/tip")) }
                }),
            );
        }
        rel.insert(
            "versions".into(),
            json!({ "links": { "related": self.href(Some(p), &format!("{path}/versions")) } }),
        );
        rel.insert(
            "parent".into(),
            json!({
                "data": { "type": "folders", "id": it.parent.folder_urn() },
                "links": { "related": self.href(Some(p), &format!("{path}/parent")) }
            }),
        );
        rel.insert("refs".into(), self.refs_rel(p, &path));
        rel.insert(
            "links".into(),
            json!({ "links": { "self": self.href(Some(p), &format!("{path}/relationships/links")) } }),
        );
        json!({
            "type": "items",
            "id": urn,
            "attributes": attrs,
            "links": { "self": self.href(Some(p), &path) },
            "relationships": Value::Object(rel),
        })
    }

    /// A version resource.
    pub fn version(&self, it: &Item, v: &Version) -> Value {
        let p = &self.store.projects[it.project];
        let flavor = self.flavor(it.project);
        let urn = it.uid.version_urn(v.number);
        let path = format!("/data/v1/projects/{}/versions/{}", seg(&p.id), seg(&urn));
        let ext = match (v.kind, flavor) {
            (VersionKind::Deleted, _) => "versions:autodesk.core:Deleted",
            (VersionKind::Design, _) => "versions:autodesk.fusion360:Design",
            (VersionKind::File, Flavor::Bim360) => "versions:autodesk.bim360:File",
            (VersionKind::File, Flavor::Team) => "versions:autodesk.core:File",
        };
        let storage_urn = v
            .storage
            .as_ref()
            .map(|k| format!("{OBJECT_PREFIX}{DM_BUCKET}/{k}"));
        let data = match (v.kind, flavor, &storage_urn) {
            (VersionKind::Deleted, _, _) => json!({ "originalName": v.name }),
            (_, Flavor::Bim360, Some(s)) => json!({
                "processState": "PROCESSING_COMPLETE",
                "storageUrn": s,
                "storageType": "OSS",
                "conformingStatus": "NONE",
            }),
            _ => json!({}),
        };
        let mut attrs = json!({
            "name": v.name,
            "displayName": v.name,
            "versionNumber": v.number,
            "createTime": v.created.render(),
            "createUserId": USER_ID,
            "createUserName": USER_NAME,
            "lastModifiedTime": v.modified.render(),
            "lastModifiedUserId": USER_ID,
            "lastModifiedUserName": USER_NAME,
            "extension": self.extension(ext, data),
        });
        if v.kind == VersionKind::File {
            attrs["mimeType"] = json!(mime_type(&v.name));
            if let Some(ft) = file_type(&v.name) {
                attrs["fileType"] = json!(ft);
            }
            if v.size_listed {
                attrs["storageSize"] = json!(v.size);
            }
        }
        let mut rel = Map::new();
        rel.insert(
            "item".into(),
            json!({
                "data": { "type": "items", "id": it.uid.item_urn() },
                "links": { "related": self.href(Some(p), &format!("{path}/item")) }
            }),
        );
        if let (Some(s), Some(key)) = (&storage_urn, &v.storage) {
            rel.insert(
                "storage".into(),
                json!({
                    "data": { "type": "objects", "id": s },
                    "meta": { "link": self.href(Some(p), &format!("/oss/v2/buckets/{DM_BUCKET}/objects/{}", seg(key))) }
                }),
            );
            // Model Derivative knows a file version by its URN in URL-safe base64; the
            // emulator does not serve those links, clients only need their shape (§4.8).
            let design = URL_SAFE_NO_PAD.encode(urn.as_bytes());
            let md = format!("/modelderivative/v2/designdata/{design}");
            for (name, tail) in [("derivatives", "manifest"), ("thumbnails", "thumbnail")] {
                rel.insert(
                    name.into(),
                    json!({
                        "data": { "type": name, "id": design },
                        "meta": { "link": self.href(None, &format!("{md}/{tail}")) }
                    }),
                );
            }
        }
        rel.insert("refs".into(), self.refs_rel(p, &path));
        rel.insert(
            "links".into(),
            json!({ "links": { "self": self.href(Some(p), &format!("{path}/relationships/links")) } }),
        );
        rel.insert(
            "downloadFormats".into(),
            json!({ "links": { "related": self.href(Some(p), &format!("{path}/downloadFormats")) } }),
        );
        json!({
            "type": "versions",
            "id": urn,
            "attributes": attrs,
            "links": { "self": self.href(Some(p), &path) },
            "relationships": Value::Object(rel),
        })
    }
}

/// The `fileType` attribute: the lower-cased extension, when there is one.
fn file_type(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty() && ext.len() <= 16).then(|| ext.to_ascii_lowercase())
}

/// A plausible `mimeType` for a file name.
pub fn mime_type(name: &str) -> &'static str {
    match file_type(name).as_deref() {
        Some("pdf") => "application/pdf",
        Some("rvt") | Some("rfa") | Some("rte") => "application/vnd.autodesk.revit",
        Some("dwg") => "application/acad",
        Some("txt") => "text/plain",
        Some("png") => "image/png",
        Some("jpg") | Some("jpeg") => "image/jpeg",
        Some("json") => "application/json",
        Some("zip") => "application/zip",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some("ifc") => "application/x-step",
        _ => "application/octet-stream",
    }
}

/// Wraps data in the JSON:API envelope.
pub fn document(self_href: String, data: Value) -> Value {
    json!({ "jsonapi": { "version": "1.0" }, "links": { "self": { "href": self_href } }, "data": data })
}
