//! Read-write mounts of a seeded emulator, for the tests of saving, renaming and removing:
//! the emulator and the staging directory a mount keeps across remounts, `apsfs sync --wait`,
//! the emulator's write counters, and what the service has, read through the API (never
//! through the mount).

use crate::support::emulator::Emulator;
use crate::support::files::seed_file;
use crate::support::mount::Mount;
use crate::support::process::{run_apsfs, s};
use crate::support::runtime::rt;
use crate::support::saved::{bytes, items};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// An emulator seeded with files below the top folder `Files` of `Hub/Project`, and the
/// directory a read-write mount of it stages changes in (kept across remounts).
pub struct Rw {
    /// The emulator.
    pub emu: Emulator,
    /// Where the mounts stage changes and keep their journal.
    pub cache: tempfile::TempDir,
    _seed: tempfile::TempDir,
}

impl Rw {
    /// An emulator whose `Files` holds `files` (paths below it; a path ending in `/` is an
    /// empty folder), started with `emulator_args` after `--seed-dir`.
    pub fn new(files: &[(&str, &[u8])], emulator_args: &[&str]) -> Rw {
        let seed = tempfile::tempdir().expect("seed");
        let top = seed.path().join("Hub/Project/Files");
        std::fs::create_dir_all(&top).expect("seed dirs");
        for (p, b) in files {
            if let Some(dir) = p.strip_suffix('/') {
                std::fs::create_dir_all(top.join(dir)).expect("seed folder");
            } else {
                seed_file(&top.join(p), b);
            }
        }
        let emu = Emulator::seeded(seed.path(), emulator_args);
        Rw {
            emu,
            cache: tempfile::tempdir().expect("cache"),
            _seed: seed,
        }
    }

    /// Like `new`, with the hub a Fusion Team hub (`autodesk.core` types: renames are
    /// `PATCH items`, deletes are refused).
    pub fn team(files: &[(&str, &[u8])]) -> Rw {
        Rw::new(files, &["--team-hub", "Hub"])
    }

    /// A read-write mount sending a folder's changes after one quiet second (unless `extra`
    /// says otherwise).
    pub fn mount(&self, extra: &[&str]) -> Mount {
        Mount::start(&self.emu.base, &self.mount_args(extra))
    }

    /// Like `mount`, with the mount's log (its stderr) written to `log`.
    pub fn mount_logged(&self, extra: &[&str], log: &Path) -> Mount {
        Mount::start_logged(&self.emu.base, &self.mount_args(extra), log)
    }

    fn mount_args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["--read-write", "--cache-dir", s(self.cache.path())];
        if !extra.contains(&"--quiet-period") {
            args.extend(["--quiet-period", "1"]);
        }
        args.extend_from_slice(extra);
        args
    }

    /// The emulator's `/__emulator/stats`.
    pub fn stats(&self) -> serde_json::Value {
        rt().block_on(self.emu.stats())
    }

    /// One of the `writes` counters of the emulator.
    pub fn written(&self, what: &str) -> u64 {
        self.stats()["writes"][what].as_u64().unwrap_or(0)
    }

    /// Sets the emulator's faults (`PUT /__emulator/faults`).
    pub fn faults(&self, body: serde_json::Value) {
        let (status, answer) = rt().block_on(self.emu.put_faults(&body));
        assert_eq!(status, 200, "{answer}");
    }
}

/// The top folder `Files` inside a mount.
pub fn files(m: &Mount) -> PathBuf {
    m.join("Hub/Project/Files")
}

/// `apsfs sync --wait` on `path`: everything there is sent.
pub fn sync(path: &Path) {
    let out = run_apsfs(
        &["sync", "--wait", "--timeout", "120", s(path)],
        &[],
        Duration::from_secs(150),
    );
    assert_eq!(out.code, Some(0), "sync: {}{}", out.stdout, out.stderr);
}

/// Waits until `done` holds (at most `limit`).
pub fn until(limit: Duration, what: &str, done: impl Fn() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The service's items of the folder at `names` (below `Files`): (name, tip version number).
pub fn listed(rw: &Rw, names: &[&str]) -> Vec<(String, u64)> {
    rt().block_on(items(&rw.emu, names))
        .into_iter()
        .map(|i| (i.name, i.version))
        .collect()
}

/// The bytes of the item `name` in the folder at `names`, from the service.
pub fn saved_bytes(rw: &Rw, names: &[&str], name: &str) -> Vec<u8> {
    let rt = rt();
    let all = rt.block_on(items(&rw.emu, names));
    let item = all
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no item {name} in {names:?}: {all:?}"));
    rt.block_on(bytes(&rw.emu, item))
}

/// `rsync -a EXTRA… SRC/ DEST/`, which must succeed.
pub fn rsync_into(src: &Path, dest: &Path, extra: &[&str]) {
    let from = format!("{}/", src.display());
    let to = format!("{}/", dest.display());
    let mut args = vec!["-a"];
    args.extend_from_slice(extra);
    args.extend([from.as_str(), to.as_str()]);
    let (code, _, err) = crate::support::process::run("rsync", &args);
    assert_eq!(code, 0, "rsync: {err}");
}

/// `n` bytes of a pattern that differs with `salt`.
pub fn pattern(n: usize, salt: u8) -> Vec<u8> {
    (0..n)
        .map(|i| ((i * 31 + salt as usize) % 251) as u8)
        .collect()
}

/// The endpoints that only read: a mount may call them at any time (listings, lookups,
/// downloads) without changing anything on the service.
pub const READ_ROUTES: &[&str] = &[
    "token",
    "hubs",
    "hub",
    "projects",
    "project",
    "project_hub",
    "top_folders",
    "folder",
    "folder_contents",
    "folder_parent",
    "item",
    "item_tip",
    "item_versions",
    "item_parent",
    "version",
    "version_item",
];

/// The `routes` counters of a stats snapshot.
pub fn routes(stats: &serde_json::Value) -> BTreeMap<String, u64> {
    stats["routes"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// The routes whose counter grew from `before` to `after`, with how much, outside
/// `READ_ROUTES` (and the control routes the test itself calls).
pub fn grown_beyond_reads(
    before: &serde_json::Value,
    after: &serde_json::Value,
) -> BTreeMap<String, u64> {
    let (b, a) = (routes(before), routes(after));
    a.into_iter()
        .filter(|(k, _)| !READ_ROUTES.contains(&k.as_str()) && k != "control")
        .filter_map(|(k, n)| {
            let was = b.get(&k).copied().unwrap_or(0);
            (n > was).then(|| (k, n - was))
        })
        .collect()
}
