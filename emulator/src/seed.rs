//! Seeding from a directory: `DIR/<hub>/<project>/<top folder>/.../<file>`.
//!
//! Each file becomes an item with one version whose bytes are streamed from the file on demand,
//! whose `storageSize` is its size and whose times come from its mtime, so a mount of the
//! emulator can be compared with the directory by `diff -r` and `rsync -an`.
//!
//! Hubs are BIM 360 accounts unless [`SeedOptions::team_hubs`] names them (`--team-hub NAME`):
//! those are seeded as Fusion Team / A360 hubs, whose rules differ (item and version PATCH
//! work, tombstones are refused).

use super::clock::Stamp;
use super::content::Content;
use super::ids::object_key;
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
    /// A hub named to be a team hub is no directory of the seed directory: a typo would
    /// otherwise seed it as BIM 360, silently.
    #[error("--team-hub {0:?}: no hub directory of that name in the seed directory")]
    UnknownTeamHub(String),
}

/// How a seed directory is loaded, beyond its tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeedOptions {
    /// Names of hub directories seeded as team hubs (`a.<token>` ids, `autodesk.core` types),
    /// the rest being BIM 360 accounts; `--team-hub NAME`, repeatable.
    pub team_hubs: Vec<String>,
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

/// Loads `dir` into `store`, every hub a BIM 360 account. Ids derive from the relative path,
/// so they are stable across restarts for the same tree.
pub fn seed_dir(store: &mut Store, dir: &Path) -> Result<SeedSummary, SeedError> {
    seed_dir_with(store, dir, &SeedOptions::default())
}

/// Loads `dir` into `store` as [`seed_dir`] does, with the hubs `options` names seeded as team
/// hubs. Ids derive from the relative path and the hub's kind, so they are stable across
/// restarts for the same tree and options.
pub fn seed_dir_with(
    store: &mut Store,
    dir: &Path,
    options: &SeedOptions,
) -> Result<SeedSummary, SeedError> {
    let mut sum = SeedSummary::default();
    let entries = sorted_entries(dir, &mut sum)?;
    if let Some(unknown) = options
        .team_hubs
        .iter()
        .find(|t| !entries.iter().any(|(n, p)| n == *t && p.is_dir()))
    {
        return Err(SeedError::UnknownTeamHub(unknown.clone()));
    }
    for (hub_name, hub_path) in entries {
        if !hub_path.is_dir() {
            skip(
                &hub_path,
                "files directly under the seed directory are not in any project",
            );
            sum.skipped += 1;
            continue;
        }
        let flavor = if options.team_hubs.contains(&hub_name) {
            Flavor::Team
        } else {
            Flavor::Bim360
        };
        let hub_id = flavor.account_id("hub", &hub_name);
        let hub = store.add_hub(hub_id, hub_name.clone(), flavor);
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
            let id = flavor.account_id("project", &key);
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

    #[test]
    fn team_hubs_are_seeded_as_named_with_stable_ids() {
        let d = tempfile::tempdir().unwrap();
        for hub in ["Hub A", "Team B"] {
            let top = d.path().join(hub).join("Project 1/Designs");
            std::fs::create_dir_all(&top).unwrap();
            std::fs::write(top.join("a.txt"), b"a").unwrap();
        }
        let team = SeedOptions {
            team_hubs: vec!["Team B".into()],
        };
        let mut plain = Store::new();
        seed_dir(&mut plain, d.path()).unwrap();
        let mut s1 = Store::new();
        seed_dir_with(&mut s1, d.path(), &team).unwrap();
        let mut s2 = Store::new();
        seed_dir_with(&mut s2, d.path(), &team).unwrap();
        let hubs = |s: &Store| -> Vec<(String, Flavor)> {
            s.hubs.iter().map(|h| (h.id.clone(), h.flavor)).collect()
        };
        assert_eq!(hubs(&s1), hubs(&s2), "stable across restarts");
        assert_eq!(s1.hubs[0].flavor, Flavor::Bim360);
        assert_eq!(s1.hubs[0].id, plain.hubs[0].id, "other hubs keep their ids");
        assert_eq!(s1.hubs[1].flavor, Flavor::Team);
        assert!(s1.hubs[1].id.starts_with("a."), "{}", s1.hubs[1].id);
        assert!(s1.projects[1].id.starts_with("a."), "{}", s1.projects[1].id);
        assert_eq!(s1.projects[1].id, s2.projects[1].id);
        assert!(plain.hubs[1].id.starts_with("b."));
        let typo = SeedOptions {
            team_hubs: vec!["Team C".into()],
        };
        assert!(matches!(
            seed_dir_with(&mut Store::new(), d.path(), &typo),
            Err(SeedError::UnknownTeamHub(n)) if n == "Team C"
        ));
    }
}
