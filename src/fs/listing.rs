//! Turning a directory node into its children, for every kind of directory: which remote call
//! lists it, which entries are shown (the visibility policy), what each child becomes, and the
//! directories apsfs adds itself (`.versions`, `buckets`).
//!
//! Policy: hidden (soft-deleted) folders and items, items whose tip is a delete tombstone, and
//! items whose tip has no storage (cloud models, Fusion designs) are not shown, so every file
//! in the mount can be read. A folder the account may not list is shown as an empty directory.

use super::buckets::ObjectLists;
use super::error::Error;
use super::inode::{Child, FileVersion, Kind, Node, OLDER_VERSIONS};
use crate::api::{ApiError, Entry, FolderInfo, Meta, Remote, VersionInfo};
use std::sync::Arc;
use std::time::SystemTime;

/// The name of the directory of every version of a folder's files; not listed, so walks and
/// backups never descend into it, but found by name.
pub const VERSIONS_DIR: &str = ".versions";

/// The name of the directory of the app's own buckets at the root.
pub const BUCKETS_DIR: &str = "buckets";

/// A file of a folder as its `.versions` directory shows it: one directory of that name
/// holding every version of the item.
pub struct FolderFile {
    /// Its name in the folder.
    pub name: String,
    /// Its item (lineage) id.
    pub item: String,
    /// Creation time of the version shown.
    pub created: SystemTime,
    /// Modification time of the version shown.
    pub modified: SystemTime,
}

/// What a listing needs besides the remote.
#[derive(Default)]
pub struct Around<'a> {
    /// For a `.versions` directory, the files of its folder.
    pub folder_files: Vec<FolderFile>,
    /// At the root of the mount, the region whose buckets `buckets/` shows.
    pub buckets: Option<&'a str>,
}

/// The children of `dir`. `Ok(None)` means the service refused to list a folder (403): it is
/// then shown as an empty directory (and the refusal logged), so that walks and backups of the
/// mount go on.
pub async fn fetch<R: Remote>(
    remote: &R,
    objects: &ObjectLists,
    dir: &Node,
    around: Around<'_>,
) -> Result<Option<Vec<Child>>, Error> {
    let mut children: Vec<Child> = match &dir.kind {
        Kind::Hubs => remote
            .hubs()
            .await?
            .into_iter()
            .map(|h| Child {
                kind: Kind::Hub { hub: h.id.clone() },
                id: h.id,
                raw: h.name,
                created: None,
                modified: None,
                meta: h.meta,
            })
            .collect(),
        Kind::Hub { hub } => remote
            .projects(hub)
            .await?
            .into_iter()
            .map(|p| Child {
                kind: Kind::Project {
                    hub: hub.clone(),
                    project: p.id.clone(),
                },
                id: p.id,
                raw: p.name,
                created: None,
                modified: None,
                meta: p.meta,
            })
            .collect(),
        Kind::Project { hub, project } => remote
            .top_folders(hub, project)
            .await?
            .into_iter()
            .filter(|f| !f.hidden)
            .map(|f| folder_child(project, f))
            .collect(),
        Kind::Folder { project, count, .. } => {
            match remote.folder_contents(project, &dir.id, *count).await {
                Ok(entries) => entries
                    .into_iter()
                    .filter_map(|e| shown(project, e))
                    .collect(),
                Err(ApiError::Forbidden(detail)) => {
                    tracing::warn!(folder = %dir.id, %detail, "folder may not be listed; showing it empty");
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Kind::ItemVersions { item, project } => remote
            .item_versions(project, item)
            .await?
            .into_iter()
            .filter_map(|v| older_version(item, v))
            .collect(),
        Kind::Buckets { region } => remote
            .buckets(region)
            .await?
            .into_iter()
            .map(|b| Child {
                kind: Kind::Objects {
                    bucket: b.key.clone(),
                    prefix: String::new(),
                    policy: Arc::from(b.policy.as_str()),
                },
                id: format!("oss#{}", b.key),
                raw: b.key,
                created: b.created,
                modified: b.created,
                meta: Meta::default(),
            })
            .collect(),
        Kind::Objects {
            bucket,
            prefix,
            policy,
        } => {
            let all = objects.get(remote, bucket).await?;
            super::buckets::children(bucket, prefix, policy, &all, dir.created)
        }
        Kind::Versions { project } => around
            .folder_files
            .into_iter()
            .map(|f| item_versions_dir(project, f))
            .collect(),
        Kind::File { .. } => return Err(Error::NotDir),
    };
    if let Some(region) = around.buckets {
        children.push(buckets_dir(region));
    }
    Ok(Some(children))
}

/// `.versions/<file name>`: the directory of every version of one item of the folder.
fn item_versions_dir(project: &str, f: FolderFile) -> Child {
    Child {
        id: format!("{}#{VERSIONS_DIR}", f.item),
        raw: f.name,
        kind: Kind::ItemVersions {
            project: project.to_string(),
            item: f.item,
        },
        created: Some(f.created),
        modified: Some(f.modified),
        meta: Meta::default(),
    }
}

/// `buckets/` at the root: the app's own buckets of `region`.
fn buckets_dir(region: &str) -> Child {
    Child {
        id: "oss#".into(),
        raw: BUCKETS_DIR.into(),
        kind: Kind::Buckets {
            region: region.to_string(),
        },
        created: None,
        modified: None,
        meta: Meta::default(),
    }
}

/// A folder child, remembering what lets its listing be confirmed later without a refetch.
fn folder_child(project: &str, f: FolderInfo) -> Child {
    Child {
        kind: Kind::Folder {
            project: project.to_string(),
            count: f.object_count,
            rollup: f.rollup.map(|rollup| crate::cache::metadata::Validator {
                rollup,
                seen: std::time::Instant::now(),
            }),
        },
        id: f.id,
        raw: f.name,
        created: f.created,
        modified: f.modified,
        meta: f.meta,
    }
}

/// The file a version becomes, when it has bytes to read (not a delete tombstone, not a
/// cloud-only design without storage).
fn readable(v: &VersionInfo) -> Option<FileVersion> {
    match (&v.storage, v.deleted) {
        (Some(storage), false) => Some(FileVersion {
            id: v.id.clone(),
            storage: storage.clone(),
            size: v.size,
            number: v.number,
            sha1: None,
        }),
        _ => None,
    }
}

/// Applies the visibility policy to one folder entry.
fn shown(project: &str, entry: Entry) -> Option<Child> {
    match entry {
        Entry::Folder(f) if !f.hidden => Some(folder_child(project, f)),
        Entry::Item(i) if !i.hidden => {
            let raw = i.file_name().to_string();
            let tip = i.tip?;
            let Some(version) = readable(&tip) else {
                tracing::debug!(item = %i.id, "item has no downloadable tip; not shown");
                return None;
            };
            // The item says what it is and whether it is reserved; the version says who made
            // it and where it opens.
            let meta = Meta {
                ext_type: i.meta.ext_type,
                reserved: i.meta.reserved,
                created_by: tip.meta.created_by.or(i.meta.created_by),
                modified_by: tip.meta.modified_by.or(i.meta.modified_by),
                web_url: tip.meta.web_url.or(i.meta.web_url),
            };
            Some(Child {
                kind: Kind::File { version },
                id: i.id,
                raw,
                created: tip.created,
                modified: tip.modified.or(tip.created),
                meta,
            })
        }
        _ => None,
    }
}

/// One version under `.versions/<file name>/`, named `v<N>` plus the extension of that
/// version's own name (`v3.rvt`); versions without bytes are not shown.
fn older_version(item: &str, v: VersionInfo) -> Option<Child> {
    let version = readable(&v)?;
    Some(Child {
        kind: Kind::File { version },
        id: format!("{item}{OLDER_VERSIONS}"),
        raw: version_file_name(v.number, &v.name),
        created: v.created,
        modified: v.modified.or(v.created),
        meta: v.meta,
    })
}

/// `v<N>` plus the extension of `name`, if it has one (`v3.rvt`, `v2.tar.gz` → `v2.gz`).
pub fn version_file_name(number: u32, name: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() => format!("v{number}.{ext}"),
        _ => format!("v{number}"),
    }
}
