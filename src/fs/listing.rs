//! Turning a directory node into its children: which remote call lists it, which entries are
//! shown (the visibility policy), and what each child becomes.
//!
//! Policy: hidden (soft-deleted) folders and items, items whose tip is a delete tombstone, and
//! items whose tip has no storage (cloud models, Fusion designs) are not shown, so every file
//! in the mount can be read. A folder the account may not list is shown as an empty directory.

use super::inode::{FileVersion, Kind, Node};
use crate::api::{ApiError, Entry, Remote};
use std::time::SystemTime;

/// A child as fetched, before it gets a name and an inode.
pub struct Child {
    /// Remote id (the item id for files).
    pub id: String,
    /// Remote name.
    pub raw: String,
    /// What it becomes.
    pub kind: Kind,
    /// Creation time, when the service gave one.
    pub created: Option<SystemTime>,
    /// Modification time, when the service gave one.
    pub modified: Option<SystemTime>,
}

impl Child {
    /// What its inode number derives from: the remote id, and for a file also the version, so
    /// each version is its own inode. Open handles then keep reading the version they opened,
    /// and the kernel's cached pages and attributes of an inode never go stale.
    pub fn inode_key(&self) -> String {
        match &self.kind {
            Kind::File { version } => format!("{}#{}", self.id, version.id),
            _ => self.id.clone(),
        }
    }
}

/// Fetches the children of `dir`. `Ok(None)` means the service refused to list a folder
/// (403): it is then shown as an empty directory (and the refusal logged), so that walks and
/// backups of the mount go on.
pub async fn fetch<R: Remote>(remote: &R, dir: &Node) -> Result<Option<Vec<Child>>, ApiError> {
    let children = match &dir.kind {
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
            })
            .collect(),
        Kind::Project { hub, project } => remote
            .top_folders(hub, project)
            .await?
            .into_iter()
            .filter(|f| !f.hidden)
            .map(|f| Child {
                kind: folder_kind(project, &f),
                id: f.id,
                raw: f.name,
                created: f.created,
                modified: f.modified,
            })
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
                Err(e) => return Err(e),
            }
        }
        Kind::File { .. } => {
            return Err(ApiError::Refused {
                status: 400,
                detail: "not a directory".into(),
            })
        }
    };
    Ok(Some(children))
}

/// A folder child, remembering what lets its listing be confirmed later without a refetch.
fn folder_kind(project: &str, f: &crate::api::FolderInfo) -> Kind {
    Kind::Folder {
        project: project.to_string(),
        count: f.object_count,
        rollup: f
            .rollup
            .clone()
            .map(|rollup| crate::cache::metadata::Validator {
                rollup,
                seen: std::time::Instant::now(),
            }),
    }
}

/// Applies the visibility policy to one folder entry.
fn shown(project: &str, entry: Entry) -> Option<Child> {
    match entry {
        Entry::Folder(f) if !f.hidden => Some(Child {
            kind: folder_kind(project, &f),
            id: f.id,
            raw: f.name,
            created: f.created,
            modified: f.modified,
        }),
        Entry::Item(i) if !i.hidden => {
            let tip = i.tip?;
            let storage = match (&tip.storage, tip.deleted) {
                (Some(s), false) => s.clone(),
                _ => {
                    tracing::debug!(item = %i.id, "item has no downloadable tip; not shown");
                    return None;
                }
            };
            let raw = if tip.name.is_empty() {
                i.display_name
            } else {
                tip.name
            };
            Some(Child {
                kind: Kind::File {
                    version: FileVersion {
                        id: tip.id,
                        storage,
                        size: tip.size,
                    },
                },
                id: i.id,
                raw,
                created: tip.created,
                modified: tip.modified.or(tip.created),
            })
        }
        _ => None,
    }
}
