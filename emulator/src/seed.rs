//! Seeding from a directory: `DIR/<hub>/<project>/<top folder>/.../<file>`.
//!
//! Each file becomes an item with one version whose bytes are streamed from the file on demand,
//! whose `storageSize` is its size and whose times come from its mtime, so a mount of the
//! emulator can be compared with the directory by `diff -r` and `rsync -an`.

use super::clock::Stamp;
use super::content::Content;
use super::ids::Uid;
use super::store::{Flavor, ItemKind, Object, Store, Version, VersionKind, DM_BUCKET};
use std::path::{Path, PathBuf};

/// Why a seed directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The directory (or an entry) could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A name is not valid UTF-8, which the wire format cannot carry.
    #[error("{0}: name is not valid UTF-8")]
    Name(PathBuf),
}

/// Counts of what was loaded, for the start-up log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedSummary {
    /// Hubs created.
    pub hubs: usize,
    /// Projects created.
    pub projects: usize,
    /// Folders created (top folders included).
    pub folders: usize,
    /// Items created.
    pub items: usize,
    /// Entries that cannot be represented and were skipped (each logged).
    pub skipped: usize,
}

/// Loads `dir` into `store`. Ids derive from the relative path, so they are stable across
/// restarts for the same tree.
pub fn seed_dir(store: &mut Store, dir: &Path) -> Result<SeedSummary, SeedError> {
    let mut sum = SeedSummary::default();
    for (hub_name, hub_path) in sorted_entries(dir, &mut sum)? {
        if !hub_path.is_dir() {
            skip(
                &hub_path,
                "files directly under the seed directory are not in any project",
            );
            sum.skipped += 1;
            continue;
        }
        let hub_id = format!("b.{}", Uid::derive("hub", &hub_name).uuid());
        let hub = store.add_hub(hub_id, hub_name.clone(), Flavor::Bim360);
        sum.hubs += 1;
        for (project_name, project_path) in sorted_entries(&hub_path, &mut sum)? {
            if !project_path.is_dir() {
                skip(
                    &project_path,
                    "files directly under a hub are not in any project",
                );
                sum.skipped += 1;
                continue;
            }
            let key = format!("{hub_name}/{project_name}");
            let id = format!("b.{}", Uid::derive("project", &key).uuid());
            let at = Stamp::new(mtime_ms(&project_path));
            let p = store.add_project(hub, id, project_name, at);
            sum.projects += 1;
            let root = store.projects[p].root;
            for (top_name, top_path) in sorted_entries(&project_path, &mut sum)? {
                if !top_path.is_dir() {
                    skip(&top_path, "files directly under a project have no folder");
                    sum.skipped += 1;
                    continue;
                }
                seed_folder(
                    store,
                    root,
                    &top_path,
                    &format!("{key}/{top_name}"),
                    top_name,
                    &mut sum,
                )?;
            }
        }
    }
    Ok(sum)
}

fn seed_folder(
    store: &mut Store,
    parent: Uid,
    path: &Path,
    key: &str,
    name: String,
    sum: &mut SeedSummary,
) -> Result<(), SeedError> {
    let at = Stamp::new(mtime_ms(path));
    let Some(folder) = store.add_folder(parent, Uid::derive("folder", key), name, at) else {
        return Ok(());
    };
    sum.folders += 1;
    for (child_name, child_path) in sorted_entries(path, sum)? {
        let child_key = format!("{key}/{child_name}");
        let meta = std::fs::metadata(&child_path).map_err(|source| SeedError::Io {
            path: child_path.clone(),
            source,
        })?;
        if meta.is_dir() {
            seed_folder(store, folder, &child_path, &child_key, child_name, sum)?;
        } else if meta.is_file() {
            let uid = Uid::derive("item", &child_key);
            let storage = object_key(&child_key, 1, &child_name);
            let stamp = Stamp::new(mtime_ms(&child_path));
            store.put_object(
                DM_BUCKET,
                storage.clone(),
                Object {
                    content: Some(Content::File {
                        path: child_path.clone(),
                        size: meta.len(),
                    }),
                    created_ms: stamp.ms,
                    content_type: "application/octet-stream".into(),
                    chunked: false,
                    project: None,
                },
            );
            let version = Version {
                number: 1,
                name: child_name,
                created: stamp,
                modified: stamp,
                kind: VersionKind::File,
                storage: Some(storage),
                size: meta.len(),
                size_listed: true,
            };
            store.add_item(folder, uid, ItemKind::File, version);
            sum.items += 1;
        } else {
            skip(&child_path, "not a regular file or directory");
            sum.skipped += 1;
        }
    }
    Ok(())
}

/// The object key real uploads get: a UUID plus the original extension.
pub fn object_key(item_key: &str, version: u32, name: &str) -> String {
    let uuid = Uid::derive("object", &format!("{item_key}#{version}")).uuid();
    match Path::new(name).extension().and_then(|e| e.to_str()) {
        Some(ext) if !ext.is_empty() && ext.len() <= 16 && !ext.contains(['/', '\\']) => {
            format!("{uuid}.{ext}")
        }
        _ => uuid,
    }
}

fn sorted_entries(dir: &Path, sum: &mut SeedSummary) -> Result<Vec<(String, PathBuf)>, SeedError> {
    let io = |source| SeedError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        match entry.file_name().into_string() {
            Ok(name) => out.push((name, path)),
            Err(_) => {
                skip(&path, "name is not valid UTF-8");
                sum.skipped += 1;
            }
        }
    }
    out.sort();
    Ok(out)
}

fn skip(path: &Path, why: &str) {
    tracing::warn!(path = %path.display(), "seed: skipped: {why}");
}

fn mtime_ms(path: &Path) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_a_tree_with_stable_ids() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().join("Hub A/Project 1/Project Files/Sub");
        std::fs::create_dir_all(&top).unwrap();
        std::fs::write(top.join("a.rvt"), b"hello").unwrap();
        std::fs::write(d.path().join("Hub A/Project 1/Project Files/b.txt"), b"").unwrap();
        std::fs::write(d.path().join("Hub A/stray.txt"), b"x").unwrap();
        let mut s1 = Store::new();
        let sum = seed_dir(&mut s1, d.path()).unwrap();
        assert_eq!(
            sum,
            SeedSummary {
                hubs: 1,
                projects: 1,
                folders: 2,
                items: 2,
                skipped: 1
            }
        );
        let mut s2 = Store::new();
        seed_dir(&mut s2, d.path()).unwrap();
        let mut ids1: Vec<_> = s1.items.keys().collect();
        let mut ids2: Vec<_> = s2.items.keys().collect();
        ids1.sort();
        ids2.sort();
        assert_eq!(ids1, ids2);
        assert_eq!(s1.hubs[0].id, s2.hubs[0].id);
        assert!(s1.hubs[0].id.starts_with("b."));
        let item = s1
            .items
            .values()
            .find(|i| i.tip().unwrap().name == "a.rvt")
            .unwrap();
        let key = item.tip().unwrap().storage.clone().unwrap();
        assert!(key.ends_with(".rvt"));
        assert_eq!(
            s1.object(DM_BUCKET, &key)
                .unwrap()
                .content
                .as_ref()
                .unwrap()
                .size(),
            5
        );
    }
}
