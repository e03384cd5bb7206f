//! The pin registry: which storage objects the disk cache keeps whatever the LRU says, so that
//! files a user asked to keep on this device stay readable without the service. It lives in
//! the cache directory and survives remounts with the same `--cache-dir`.
//!
//! Pinning a folder pins its files one by one, so a change must cost the same however many pins
//! there are: each one is a line appended to `pins.log`. Opening the cache replays the log onto
//! the snapshot `pins.json` and writes a new snapshot atomically (temporary file, flushed to
//! disk, renamed over the old one), as does a log grown past `COMPACT_AT`. A crash leaves the
//! old or new snapshot and a log whose last line may be torn; a torn line is ignored (that pin
//! is lost, and running `apsfs pin` again restores it).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The snapshot, inside the cache directory.
const SNAPSHOT: &str = "pins.json";
/// Changes since the snapshot, one JSON record a line.
const LOG: &str = "pins.log";
/// Format version of the snapshot; a file from a newer apsfs is refused rather than misread.
const FORMAT: u32 = 1;
/// A log this long is folded into a new snapshot (about 20,000 changes).
const COMPACT_AT: u64 = 4 << 20;

/// One pinned storage object: one version of one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// Path inside the mount when it was pinned (for `apsfs status`).
    pub path: String,
    /// Item id, so pinning a newer version of the same file replaces the older pin.
    pub item: String,
    /// Bytes of the object.
    pub size: u64,
}

impl Pin {
    /// A pin of `size` bytes of `item`, shown as `path`.
    pub fn new(path: impl Into<String>, item: impl Into<String>, size: u64) -> Pin {
        Pin {
            path: path.into(),
            item: item.into(),
            size,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    format: u32,
    /// Storage urn → pin, sorted so the file is stable.
    pins: BTreeMap<String, Pin>,
}

/// One change in the log: `pin` set pins `storage`, unset unpins it.
#[derive(Serialize, Deserialize)]
struct Record {
    storage: String,
    pin: Option<Pin>,
}

/// The pins of one cache directory.
pub struct Registry {
    dir: PathBuf,
    pins: BTreeMap<String, Pin>,
    /// Bytes in the log.
    logged: u64,
}

fn invalid(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

impl Registry {
    /// Loads the registry of cache directory `dir` (none yet: empty) and folds its log into a
    /// new snapshot.
    pub fn load(dir: &Path) -> std::io::Result<Registry> {
        let mut pins = match std::fs::read(dir.join(SNAPSHOT)) {
            Ok(raw) => {
                let doc: Snapshot = serde_json::from_slice(&raw)
                    .map_err(|e| invalid(format!("{SNAPSHOT}: {e}")))?;
                if doc.format != FORMAT {
                    return Err(invalid(format!(
                        "{SNAPSHOT}: unknown format {}",
                        doc.format
                    )));
                }
                doc.pins
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        let log = match std::fs::read(dir.join(LOG)) {
            Ok(raw) => raw,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        for line in log.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<Record>(line) {
                Ok(Record {
                    storage,
                    pin: Some(p),
                }) => {
                    pins.insert(storage, p);
                }
                Ok(Record { storage, pin: None }) => {
                    pins.remove(&storage);
                }
                Err(e) => tracing::warn!(error = %e, "ignoring a torn line of {LOG}"),
            }
        }
        let mut registry = Registry {
            dir: dir.to_path_buf(),
            pins,
            logged: log.len() as u64,
        };
        if registry.logged > 0 {
            registry.compact()?;
        }
        Ok(registry)
    }

    /// Writes every pin as a new snapshot, atomically, and starts an empty log.
    fn compact(&mut self) -> std::io::Result<()> {
        let body = serde_json::to_vec_pretty(&Snapshot {
            format: FORMAT,
            pins: self.pins.clone(),
        })
        .map_err(std::io::Error::other)?;
        let tmp = self
            .dir
            .join("tmp")
            .join(format!("{SNAPSHOT}.{}", std::process::id()));
        crate::files::replace(&tmp, &self.dir.join(SNAPSHOT), &[&body], true)?;
        match std::fs::remove_file(self.dir.join(LOG)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => self.logged = 0,
        }
        Ok(())
    }

    /// Appends `records` to the log in one write, so they land together. Changes are logged
    /// before they are applied: a failed write changes nothing.
    fn append(&mut self, records: &[Record]) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut lines = Vec::new();
        for r in records {
            serde_json::to_writer(&mut lines, r).map_err(std::io::Error::other)?;
            lines.push(b'\n');
        }
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(self.dir.join(LOG))?
            .write_all(&lines)?;
        self.logged += lines.len() as u64;
        Ok(())
    }

    /// Folds a long log into a new snapshot; failing that, the log simply grows (it is replayed
    /// all the same).
    fn compact_if_long(&mut self) {
        if self.logged > COMPACT_AT {
            if let Err(e) = self.compact() {
                tracing::warn!(error = %e, "cannot write a new {SNAPSHOT}; keeping {LOG}");
            }
        }
    }

    /// The pin of `storage`.
    pub fn get(&self, storage: &str) -> Option<&Pin> {
        self.pins.get(storage)
    }

    /// Every pin, by storage urn.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Pin)> {
        self.pins.iter()
    }

    /// Records a pin; returns the pins of older versions of the same item it replaced.
    pub fn insert(&mut self, storage: &str, pin: Pin) -> std::io::Result<Vec<(String, Pin)>> {
        let replaced = self.keys_where(|s, p| p.item == pin.item && s != storage);
        let mut records = unpins(&replaced);
        records.push(Record {
            storage: storage.to_string(),
            pin: Some(pin.clone()),
        });
        self.append(&records)?;
        let replaced = self.take(replaced);
        self.pins.insert(storage.to_string(), pin);
        self.compact_if_long();
        Ok(replaced)
    }

    /// Removes `storage` and every other version of its item; returns what was removed.
    pub fn remove(&mut self, storage: &str, item: &str) -> std::io::Result<Vec<(String, Pin)>> {
        let gone = self.keys_where(|s, p| s == storage || p.item == item);
        if gone.is_empty() {
            return Ok(Vec::new());
        }
        self.append(&unpins(&gone))?;
        let removed = self.take(gone);
        self.compact_if_long();
        Ok(removed)
    }

    fn keys_where(&self, f: impl Fn(&str, &Pin) -> bool) -> Vec<String> {
        self.pins
            .iter()
            .filter(|(s, p)| f(s, p))
            .map(|(s, _)| s.clone())
            .collect()
    }

    fn take(&mut self, keys: Vec<String>) -> Vec<(String, Pin)> {
        keys.into_iter()
            .filter_map(|s| self.pins.remove(&s).map(|p| (s, p)))
            .collect()
    }
}

/// Log records unpinning `storages`.
fn unpins(storages: &[String]) -> Vec<Record> {
    storages
        .iter()
        .map(|s| Record {
            storage: s.clone(),
            pin: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(path: &str, item: &str, size: u64) -> Pin {
        Pin::new(path, item, size)
    }

    #[test]
    fn persists_replaces_versions_and_reloads() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("tmp")).unwrap();
        let mut r = Registry::load(d.path()).unwrap();
        assert_eq!(r.iter().count(), 0);
        assert!(r
            .insert("urn:a1", pin("A/a.bin", "item-a", 10))
            .unwrap()
            .is_empty());
        assert!(r
            .insert("urn:b1", pin("A/b.bin", "item-b", 20))
            .unwrap()
            .is_empty());
        // A newer version of the same item replaces the older pin.
        let replaced = r.insert("urn:a2", pin("A/a.bin", "item-a", 11)).unwrap();
        assert_eq!(
            replaced,
            vec![("urn:a1".into(), pin("A/a.bin", "item-a", 10))]
        );

        // Reloading replays the log onto the snapshot, then folds it in.
        let again = Registry::load(d.path()).unwrap();
        assert_eq!(again.get("urn:a2"), Some(&pin("A/a.bin", "item-a", 11)));
        assert!(again.get("urn:a1").is_none());
        assert_eq!(again.iter().count(), 2);
        assert!(!d.path().join(LOG).exists(), "log folded into the snapshot");
        assert!(
            std::fs::read_dir(d.path().join("tmp"))
                .unwrap()
                .next()
                .is_none(),
            "no temporary file left behind"
        );

        // Unpinning by any version of the item removes it; a torn last line is ignored.
        let mut r = again;
        assert_eq!(r.remove("urn:a-other", "item-a").unwrap().len(), 1);
        r.insert("urn:c", pin("c", "item-c", 1)).unwrap();
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(d.path().join(LOG))
            .unwrap();
        log.write_all(br#"{"storage":"urn:d","pin":{"pa"#).unwrap();
        let again = Registry::load(d.path()).unwrap();
        let urns: Vec<&String> = again.iter().map(|(s, _)| s).collect();
        assert_eq!(urns, ["urn:b1", "urn:c"]);

        std::fs::write(d.path().join(SNAPSHOT), b"{not json").unwrap();
        assert!(
            Registry::load(d.path()).is_err(),
            "a damaged snapshot is reported"
        );
    }
}
