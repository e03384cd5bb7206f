//! The write journal: an append-only file of checksummed records saying what each local entry
//! is and how far its way to the service has come, replayed when a mount starts. A record is
//! durable (on disk, flushed) before the operation that made it answers, so `kill -9` at any
//! point leaves either the old state or the new one. The file is compacted (rewritten whole,
//! then renamed over) once most of it is superseded.

use super::entry::Entry;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Compaction happens once the file holds this many times the records that are still live
/// (and at least `MIN_COMPACT` bytes).
const COMPACT_RATIO: u64 = 4;
const MIN_COMPACT: u64 = 1 << 20;

/// A version this mount made, remembered so later mounts show the writer's modification time
/// for it (not the service's clock, which would make `rsync -a` copy everything again) and can
/// tell a save of identical bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Made {
    /// Version id.
    pub version: String,
    /// Its modification time as the writer left it, nanoseconds since the epoch.
    pub mtime_ns: u64,
    /// Its size.
    pub size: u64,
    /// SHA-256 of its bytes.
    pub sha256: String,
}

/// One journal record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    /// An entry as it is now (supersedes earlier records of its id).
    Entry(Box<Entry>),
    /// An entry that no longer exists.
    Gone(u64),
    /// A version made by this mount.
    Made(Made),
}

/// What a journal held when it was opened.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Live entries by id.
    pub entries: BTreeMap<u64, Entry>,
    /// Versions made, by version id.
    pub made: HashMap<String, Made>,
    /// Records that could not be read (torn or corrupt lines), skipped.
    pub skipped: usize,
}

/// The journal file.
pub struct Journal {
    path: PathBuf,
    // Appends are whole lines written with one `write_all` under this lock.
    file: Mutex<Appender>,
}

struct Appender {
    file: File,
    /// Bytes in the file.
    len: u64,
}

fn line(record: &Record) -> Vec<u8> {
    // Serialising these types cannot fail (no maps with non-string keys, no foreign types).
    let json = serde_json::to_string(record).unwrap_or_default();
    format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes())).into_bytes()
}

fn parse(text: &str) -> Option<Record> {
    let (crc, json) = text.split_once(' ')?;
    let crc = u32::from_str_radix(crc, 16).ok()?;
    (crc32fast::hash(json.as_bytes()) == crc)
        .then(|| serde_json::from_str(json).ok())
        .flatten()
}

fn open_append(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

fn ends_with_newline(path: &Path) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    f.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    f.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

impl Journal {
    /// Opens (or creates) the journal at `path` and replays it.
    pub fn open(path: &Path) -> std::io::Result<(Journal, Replayed)> {
        let mut replayed = Replayed::default();
        if let Ok(f) = File::open(path) {
            for l in BufReader::new(f).split(b'\n') {
                let l = l?;
                let record = std::str::from_utf8(&l).ok().and_then(parse);
                match record {
                    Some(Record::Entry(e)) => {
                        replayed.entries.insert(e.id, *e);
                    }
                    Some(Record::Gone(id)) => {
                        replayed.entries.remove(&id);
                    }
                    Some(Record::Made(m)) => {
                        replayed.made.insert(m.version.clone(), m);
                    }
                    // A line cut by a crash in the middle of an append (only ever the last),
                    // or damaged on disk: what it said is lost, the rest stands.
                    None if !l.is_empty() => replayed.skipped += 1,
                    None => {}
                }
            }
        }
        let mut file = open_append(path)?;
        let mut len = file.metadata()?.len();
        if len > 0 && !ends_with_newline(path)? {
            // A torn last line: new records start on a line of their own.
            file.write_all(b"\n")?;
            len += 1;
        }
        let journal = Journal {
            path: path.to_path_buf(),
            file: Mutex::new(Appender { file, len }),
        };
        Ok((journal, replayed))
    }

    /// Appends `records`, flushed to disk before returning when `durable`. Returns the file's
    /// length afterwards.
    pub fn append(&self, records: &[Record], durable: bool) -> std::io::Result<u64> {
        let bytes: Vec<u8> = records.iter().flat_map(line).collect();
        let mut a = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("journal lock poisoned"))?;
        a.file.write_all(&bytes)?;
        if durable {
            a.file.sync_data()?;
        }
        a.len += bytes.len() as u64;
        Ok(a.len)
    }

    /// Whether a file of `len` bytes holding `live` live records is worth rewriting.
    pub fn worth_compacting(len: u64, live: usize) -> bool {
        len > MIN_COMPACT && len > COMPACT_RATIO * (live as u64 + 1) * 512
    }

    /// Rewrites the journal as exactly `live` (durably, replacing the old file whole).
    pub fn compact(&self, live: &[Record]) -> std::io::Result<()> {
        let bytes: Vec<u8> = live.iter().flat_map(line).collect();
        let mut a = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("journal lock poisoned"))?;
        let tmp = self.path.with_extension("compacting");
        crate::files::replace(&tmp, &self.path, &[&bytes], true)?;
        a.file = open_append(&self.path)?;
        a.len = bytes.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::write::entry::{Source, State};

    pub(crate) fn entry(id: u64, name: &str) -> Entry {
        Entry {
            id,
            ino: 1 << 63 | id,
            parent: 1,
            project: "p".into(),
            bim360: false,
            folder: "f".into(),
            name: name.into(),
            dir: false,
            state: State::Sealed,
            source: Source::Staged(0),
            base: None,
            size: 3,
            mtime_ns: 5,
            mode: 0o644,
            sha256: None,
            upload: None,
            committed: None,
            conflict: None,
            error: None,
            attempts: 0,
        }
    }

    #[test]
    fn replays_the_last_state_of_each_entry() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("journal");
        let (j, r) = Journal::open(&path).unwrap();
        assert!(r.entries.is_empty());
        let mut a = entry(1, "a");
        j.append(
            &[
                Record::Entry(Box::new(a.clone())),
                Record::Entry(Box::new(entry(2, "b"))),
            ],
            true,
        )
        .unwrap();
        a.state = State::Committed;
        j.append(&[Record::Entry(Box::new(a.clone())), Record::Gone(2)], true)
            .unwrap();
        drop(j);
        let (_, r) = Journal::open(&path).unwrap();
        assert_eq!(r.entries.len(), 1);
        assert_eq!(r.entries[&1], a);
        assert_eq!(r.skipped, 0);
    }

    #[test]
    fn a_torn_or_damaged_line_is_skipped_and_the_rest_stands() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("journal");
        let (j, _) = Journal::open(&path).unwrap();
        j.append(&[Record::Entry(Box::new(entry(1, "a")))], true)
            .unwrap();
        drop(j);
        let mut bytes = std::fs::read(&path).unwrap();
        let good = bytes.clone();
        // A damaged copy of the line (one byte changed), then half a line (a crash mid-append).
        let mut bad = good.clone();
        let at = bad.len() - 5;
        bad[at] ^= 1;
        bytes.extend_from_slice(&bad);
        bytes.extend_from_slice(&line(&Record::Gone(1))[..10]);
        std::fs::write(&path, &bytes).unwrap();
        let (j, r) = Journal::open(&path).unwrap();
        assert_eq!(r.skipped, 2);
        assert_eq!(
            r.entries.len(),
            1,
            "the damaged Gone-less copy changed nothing"
        );
        // Appending after a torn tail still yields readable records.
        j.append(&[Record::Gone(1)], true).unwrap();
        drop(j);
        let (_, r) = Journal::open(&path).unwrap();
        assert!(
            r.entries.is_empty(),
            "the record after the torn line counts"
        );
    }

    #[test]
    fn compaction_keeps_exactly_the_live_records() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("journal");
        let (j, _) = Journal::open(&path).unwrap();
        for i in 0..100 {
            j.append(&[Record::Entry(Box::new(entry(i, "x")))], false)
                .unwrap();
        }
        j.compact(&[Record::Entry(Box::new(entry(7, "keep")))])
            .unwrap();
        j.append(&[Record::Entry(Box::new(entry(8, "after")))], true)
            .unwrap();
        drop(j);
        let (_, r) = Journal::open(&path).unwrap();
        assert_eq!(r.entries.keys().copied().collect::<Vec<_>>(), vec![7, 8]);
    }
}
