//! The write path against an in-memory remote, through the filesystem's own operations: the
//! save patterns of common tools each end as one version of the same item, helper files stay
//! local, nothing is sent twice, and what was closed survives a crash.

use super::error::Op as FsOp;
use super::tests::{account, config, path};
use super::*;
use crate::testing::memory::TOP;
use crate::testing::{MemoryRemote, Op};
use std::time::SystemTime;

/// A read-write mount of the test project over `mock`, its changes staged in `dir`, sent
/// after 50 ms of quiet.
pub(super) fn rw_fs(mock: Arc<MemoryRemote>, dir: &std::path::Path) -> Arc<Fs<MemoryRemote>> {
    rw_fs_with(mock, dir, true)
}

/// As `rw_fs`, deleting on the service only with `allow_delete`.
pub(super) fn rw_fs_with(
    mock: Arc<MemoryRemote>,
    dir: &std::path::Path,
    allow_delete: bool,
) -> Arc<Fs<MemoryRemote>> {
    let write = write_config(dir, Duration::from_millis(50), allow_delete);
    let fs = Arc::new(rw_fs_as(mock, write, Duration::from_secs(60)));
    fs.start_writes();
    fs
}

/// The write settings of these tests: changes staged in `dir`, sent after `quiet` of quiet (at
/// most 100 times that after the first), deletes as `allow_delete` says.
pub(super) fn write_config(
    dir: &std::path::Path,
    quiet: Duration,
    allow_delete: bool,
) -> WriteConfig {
    WriteConfig {
        dir: dir.to_path_buf(),
        quiet,
        max_delay: quiet * 100,
        ignore: Vec::new(),
        user_id: None,
        allow_delete,
    }
}

/// A read-write mount of the test project over `mock` as `write` says, listings cached for
/// `ttl`; its reconciler is not started.
pub(super) fn rw_fs_as(
    mock: Arc<MemoryRemote>,
    write: WriteConfig,
    ttl: Duration,
) -> Fs<MemoryRemote> {
    let scope = Scope::Project {
        hub: "h".into(),
        project: "p".into(),
    };
    Fs::writable_with(mock, scope, config(ttl), write).unwrap()
}

/// Opens file `ino` for writing (emptied first with `truncate`), writes `bytes` at 0, closes.
pub(super) async fn save(fs: &Fs<MemoryRemote>, ino: u64, truncate: bool, bytes: &[u8]) {
    let fh = fs.open_with(ino, true, truncate).await.unwrap();
    fs.write(fh, 0, bytes).await.unwrap();
    fs.flush(fh, true).await.unwrap();
    fs.release(fh).await;
}

pub(super) fn setup() -> (Arc<MemoryRemote>, tempfile::TempDir) {
    let m = account();
    m.set_min_part(1);
    (Arc::new(m), tempfile::tempdir().unwrap())
}

/// The top folder's inode.
pub(super) async fn top(fs: &Fs<MemoryRemote>) -> u64 {
    path(fs, &["Project Files"]).await.unwrap().ino
}

/// Writes `bytes` as a new file `name` in `dir` and closes it.
pub(super) async fn new_file(fs: &Fs<MemoryRemote>, dir: u64, name: &str, bytes: &[u8]) -> u64 {
    let (attr, fh) = fs.create(dir, name, 0o644).await.unwrap();
    fs.write(fh, 0, bytes).await.unwrap();
    fs.flush(fh, true).await.unwrap();
    fs.release(fh).await;
    attr.ino
}

/// Sends everything and waits for it.
pub(super) async fn sync(fs: &Fs<MemoryRemote>) {
    let left = fs.sync(None, true, Duration::from_secs(10)).await;
    assert!(left.is_empty(), "still pending: {left:?}");
}

/// Names of the items in the top folder, sorted.
pub(super) fn items(m: &MemoryRemote) -> Vec<String> {
    let mut names: Vec<String> = m.items_in(TOP).into_iter().map(|(n, _)| n).collect();
    names.sort();
    names
}

/// The bytes of `item`'s tip.
pub(super) fn tip_bytes(m: &MemoryRemote, item: &str) -> Vec<u8> {
    let tip = m.tip(item).unwrap();
    m.object(tip.storage.as_deref().unwrap()).unwrap().to_vec()
}

#[tokio::test]
async fn a_new_file_becomes_one_item_and_reading_it_back_downloads_nothing() {
    let (m, d) = setup();
    let fs = rw_fs(m.clone(), d.path());
    let top = top(&fs).await;
    let ino = new_file(&fs, top, "report.txt", b"first draft").await;
    // Before it is sent, another reader sees the new bytes.
    let fh = fs.open(ino, false).await.unwrap();
    assert_eq!(&fs.read(fh, 0, 100).await.unwrap()[..], b"first draft");
    fs.release(fh).await;
    sync(&fs).await;
    assert_eq!(items(&m), ["report.txt"]);
    let (_, item) = m.items_in(TOP).pop().unwrap();
    assert_eq!(tip_bytes(&m, &item), b"first draft");
    assert_eq!(m.requests(Op::CreateItem), 1);
    // After the commit: the same inode, the writer's bytes, no download.
    let reads = m.requests(Op::Read);
    let again = fs.lookup(top, "report.txt").await.unwrap().0;
    assert_eq!((again.ino, again.size), (ino, 11));
    let fh = fs.open(ino, false).await.unwrap();
    assert_eq!(&fs.read(fh, 0, 100).await.unwrap()[..], b"first draft");
    assert_eq!(m.requests(Op::Read), reads);
    let sync_state = fs.getxattr(ino, "user.aps.sync").await.unwrap();
    assert_eq!(sync_state, b"committed v1");
}

#[tokio::test]
async fn save_patterns_of_common_tools_each_make_one_version_of_the_same_item() {
    // (tool, steps) with NAME the document; each step is an operation on the top folder.
    enum S {
        New(&'static str, &'static [u8]),
        Mv(&'static str, &'static str),
        Rm(&'static str),
    }
    use S::*;
    let cases: Vec<(&str, &str, Vec<S>, &[&str])> = vec![
        (
            "rsync",
            "doc.txt",
            vec![
                New(".doc.txt.Xy12Zq", b"v2"),
                Mv(".doc.txt.Xy12Zq", "doc.txt"),
            ],
            &[],
        ),
        (
            "Excel",
            "book.xlsx",
            vec![
                New("Cedd4100", b"v2"),
                Rm("book.xlsx"),
                Mv("Cedd4100", "book.xlsx"),
            ],
            &[],
        ),
        (
            "AutoCAD",
            "plan.dwg",
            vec![
                New("plan.dwl", b"lock"),
                New("atmp1234.tmp", b"v2"),
                Mv("plan.dwg", "plan.bak"),
                Mv("atmp1234.tmp", "plan.dwg"),
            ],
            &["plan.bak", "plan.dwl"],
        ),
        (
            "Word",
            "memo.docx",
            vec![
                New("~$memo.docx", b"owner"),
                New("~WRD0000.tmp", b"v2"),
                Mv("memo.docx", "~WRL0001.tmp"),
                Mv("~WRD0000.tmp", "memo.docx"),
                Rm("~WRL0001.tmp"),
            ],
            &["~$memo.docx"],
        ),
        (
            "Emacs",
            "notes.org",
            vec![Mv("notes.org", "notes.org~"), New("notes.org", b"v2")],
            &["notes.org~"],
        ),
        (
            "LibreOffice",
            "sheet.ods",
            vec![
                New(".~lock.sheet.ods#", b"lock"),
                New("lu1234abcd.tmp", b"v2"),
                Mv("lu1234abcd.tmp", "sheet.ods"),
                Rm(".~lock.sheet.ods#"),
            ],
            &[],
        ),
    ];
    for (tool, name, steps, kept) in cases {
        let (m, d) = setup();
        // Excel removes the original before renaming its save over it: with `--allow-delete`
        // on a hub type that deletes, and still no delete is sent.
        m.set_bim360(true);
        let item = format!("item-{tool}");
        m.add_file(TOP, &item, name, b"v1");
        let fs = rw_fs(m.clone(), d.path());
        let top = top(&fs).await;
        for s in &steps {
            match s {
                New(n, b) => {
                    new_file(&fs, top, n, b).await;
                }
                Mv(a, b) => fs
                    .rename(top, a, top, b, RenameFlags::default())
                    .await
                    .unwrap(),
                Rm(n) => fs.unlink(top, n).await.unwrap(),
            }
        }
        sync(&fs).await;
        assert_eq!(items(&m), [name], "{tool}: no other item");
        let versions = m.versions(&item);
        assert_eq!(versions.len(), 2, "{tool}: one new version");
        assert_eq!(tip_bytes(&m, &item), b"v2", "{tool}");
        assert_eq!(m.requests(Op::CreateItem), 0, "{tool}");
        assert_eq!(m.requests(Op::DeleteItem), 0, "{tool}");
        for k in kept {
            assert!(fs.lookup(top, k).await.is_ok(), "{tool}: {k} is kept here");
        }
        let a = fs.lookup(top, name).await.unwrap().0;
        assert_eq!(a.size, 2, "{tool}");
    }
}

#[tokio::test]
async fn opening_for_writing_or_touching_without_a_change_makes_no_version() {
    let (m, d) = setup();
    m.add_file(TOP, "i", "a.txt", b"same");
    let fs = rw_fs(m.clone(), d.path());
    let top = top(&fs).await;
    let a = fs.lookup(top, "a.txt").await.unwrap().0;
    let fh = fs.open_with(a.ino, true, false).await.unwrap();
    assert_eq!(&fs.read(fh, 0, 10).await.unwrap()[..], b"same");
    fs.flush(fh, true).await.unwrap();
    fs.release(fh).await;
    let later = SystemTime::now() + Duration::from_secs(3600);
    let set = SetAttr {
        mtime: Some(later),
        ..SetAttr::default()
    };
    fs.setattr(a.ino, None, set).await.unwrap();
    sync(&fs).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(m.versions("i").len(), 1);
    assert_eq!(m.requests(Op::CreateStorage), 0);
}

#[tokio::test]
async fn a_change_in_place_keeps_the_rest_of_the_file_and_its_inode() {
    let (m, d) = setup();
    m.add_file(TOP, "i", "data.bin", b"0123456789");
    let fs = rw_fs(m.clone(), d.path());
    let top = top(&fs).await;
    let a = fs.lookup(top, "data.bin").await.unwrap().0;
    let fh = fs.open_with(a.ino, true, false).await.unwrap();
    fs.write(fh, 4, b"xx").await.unwrap();
    fs.write(fh, 10, b"!").await.unwrap();
    fs.flush(fh, true).await.unwrap();
    fs.release(fh).await;
    assert_eq!(fs.getattr(a.ino).await.unwrap().0.size, 11);
    sync(&fs).await;
    assert_eq!(tip_bytes(&m, "i"), b"0123xx6789!");
    assert_eq!(m.versions("i").len(), 2);
    assert_eq!(fs.lookup(top, "data.bin").await.unwrap().0.ino, a.ino);
}

#[tokio::test]
async fn a_save_after_someone_else_s_version_is_the_next_version_and_a_conflict() {
    let (m, d) = setup();
    m.add_file(TOP, "i", "plan.dwg", b"v1");
    let fs = rw_fs(m.clone(), d.path());
    let top = top(&fs).await;
    let a = fs.lookup(top, "plan.dwg").await.unwrap().0;
    let fh = fs.open_with(a.ino, true, false).await.unwrap();
    fs.write(fh, 0, b"mine").await.unwrap();
    m.upload("i", b"theirs");
    fs.flush(fh, true).await.unwrap();
    fs.release(fh).await;
    sync(&fs).await;
    let versions = m.versions("i");
    assert_eq!(versions.len(), 3, "v1, theirs, mine: nothing dropped");
    assert_eq!(tip_bytes(&m, "i"), b"mine");
    let state = String::from_utf8(fs.getxattr(a.ino, "user.aps.sync").await.unwrap()).unwrap();
    assert!(state.starts_with("conflict"), "{state}");
    assert!(fs.queue().iter().any(|q| q.state.starts_with("conflict")));
}

#[tokio::test]
async fn a_file_reserved_by_someone_else_is_not_writable() {
    let (m, d) = setup();
    m.add_file(TOP, "i", "locked.dwg", b"v1");
    m.set_reserved("i", true);
    let fs = rw_fs(m.clone(), d.path());
    let top = top(&fs).await;
    let a = fs.lookup(top, "locked.dwg").await.unwrap().0;
    assert_eq!(a.perm, 0o444);
    let r = fs.open_with(a.ino, true, false).await;
    assert_eq!(r.err().map(|e| e.errno(FsOp::Open)), Some(libc::EACCES));
    assert_eq!(m.requests(Op::CreateStorage), 0);
}

#[tokio::test]
async fn bad_names_and_taken_names_fail_at_once() {
    let (m, d) = setup();
    m.add_file(TOP, "i", "a.txt", b"v1");
    let fs = rw_fs(m.clone(), d.path());
    let top = top(&fs).await;
    let errno = |r: Result<(), Error>, op| r.err().map(|e| e.errno(op));
    let bad = fs.create(top, "a:b.txt", 0o644).await.map(drop);
    assert_eq!(errno(bad, FsOp::Create), Some(libc::EINVAL));
    let long = fs.create(top, &"x".repeat(300), 0o644).await.map(drop);
    assert_eq!(errno(long, FsOp::Create), Some(libc::ENAMETOOLONG));
    let taken = fs.create(top, "a.txt", 0o644).await.map(drop);
    assert_eq!(errno(taken, FsOp::Create), Some(libc::EEXIST));
    let noreplace = RenameFlags {
        no_replace: true,
        exchange: false,
    };
    new_file(&fs, top, "new.txt", b"n").await;
    let r = fs.rename(top, "new.txt", top, "a.txt", noreplace).await;
    assert_eq!(errno(r, FsOp::Rename), Some(libc::EEXIST));
    let exchange = RenameFlags {
        no_replace: false,
        exchange: true,
    };
    let r = fs.rename(top, "new.txt", top, "a.txt", exchange).await;
    assert_eq!(errno(r, FsOp::Rename), Some(libc::EINVAL));
    let r = fs
        .rename(top, "a.txt", top, "b:c.txt", RenameFlags::default())
        .await;
    assert_eq!(errno(r, FsOp::Rename), Some(libc::EINVAL));
}

#[tokio::test]
async fn mkdir_makes_a_folder_at_once_and_a_backup_folder_stays_local() {
    let (m, d) = setup();
    let fs = rw_fs(m.clone(), d.path());
    let top = top(&fs).await;
    let sub = fs.mkdir(top, "Drawings", 0o755).await.unwrap();
    assert!(sub.is_dir);
    let id = m
        .folder_named(TOP, "Drawings")
        .expect("made on the service");
    let r = fs.mkdir(top, "Drawings", 0o755).await;
    assert_eq!(r.err().map(|e| e.errno(FsOp::Mkdir)), Some(libc::EEXIST));
    new_file(&fs, sub.ino, "a.dwg", b"x").await;
    let backup = fs.mkdir(top, "tower_backup", 0o755).await.unwrap();
    new_file(&fs, backup.ino, "tower.0001.rvt", b"old").await;
    sync(&fs).await;
    assert_eq!(m.items_in(&id).len(), 1);
    assert!(m.folder_named(TOP, "tower_backup").is_none());
    assert_eq!(m.requests(Op::CreateFolder), 1);
    let fh = fs.opendir(backup.ino).await.unwrap();
    let names: Vec<String> = fs
        .readdir(backup.ino, fh, 0)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, [".", "..", "tower.0001.rvt"]);
}

#[tokio::test]
async fn saves_survive_a_crash_and_a_file_open_at_the_crash_is_kept_not_sent() {
    let (m, d) = setup();
    {
        let fs = rw_fs(m.clone(), d.path());
        let top = top(&fs).await;
        // Sealed (closed) but not sent: the service is failing.
        m.set_latency(Op::CreateStorage, Duration::from_secs(3600));
        new_file(&fs, top, "closed.txt", b"closed").await;
        // Still open for writing, with an fsync: durable here, but maybe half-written.
        let (_, fh) = fs.create(top, "open.txt", 0o644).await.unwrap();
        fs.write(fh, 0, b"half").await.unwrap();
        fs.flush(fh, false).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The mount dies here: no release, nothing more.
    }
    m.set_latency(Op::CreateStorage, Duration::ZERO);
    let fs = rw_fs(m.clone(), d.path());
    sync(&fs).await;
    assert_eq!(items(&m), ["closed.txt"]);
    let q = fs.queue();
    assert!(
        q.iter()
            .any(|q| q.name == "open.txt" && q.state.starts_with("recovered")),
        "{q:?}"
    );
    let top = top(&fs).await;
    let open = fs.lookup(top, "open.txt").await.unwrap().0;
    let fh = fs.open(open.ino, false).await.unwrap();
    assert_eq!(&fs.read(fh, 0, 10).await.unwrap()[..], b"half");
}

#[tokio::test]
async fn a_save_posted_before_a_crash_is_not_posted_again() {
    let (m, d) = setup();
    m.add_file(TOP, "i", "a.txt", b"v1");
    let journal = d.path().join("journal");
    {
        let fs = rw_fs(m.clone(), d.path());
        let top = top(&fs).await;
        let a = fs.lookup(top, "a.txt").await.unwrap().0;
        let fh = fs.open_with(a.ino, true, true).await.unwrap();
        fs.write(fh, 0, b"v2").await.unwrap();
        fs.flush(fh, true).await.unwrap();
        fs.release(fh).await;
        sync(&fs).await;
    }
    assert_eq!(m.versions("i").len(), 2);
    // As if the mount had died after posting the version and before recording it: the
    // journal's last word on the entry is "uploaded, not committed", and it holds no record of
    // the version made.
    let text = std::fs::read_to_string(&journal).unwrap();
    let records: Vec<write::journal::Record> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l.split_once(' ')?.1).ok())
        .collect();
    let uploaded = records
        .iter()
        .rev()
        .find_map(|r| match r {
            write::journal::Record::Entry(e) if e.upload.as_ref().is_some_and(|u| u.completed) => {
                Some(e.clone())
            }
            _ => None,
        })
        .expect("the journal recorded the completed upload");
    std::fs::remove_file(&journal).unwrap();
    let (j, _) = write::journal::Journal::open(&journal).unwrap();
    j.append(&[write::journal::Record::Entry(uploaded)], true)
        .unwrap();
    drop(j);
    let fs = rw_fs(m.clone(), d.path());
    sync(&fs).await;
    assert_eq!(m.versions("i").len(), 2, "not posted twice");
    let _ = fs;
}

#[tokio::test]
async fn a_large_file_is_uploaded_in_parts_and_the_queue_shows_it() {
    let (m, d) = setup();
    m.set_latency(Op::PutPart, Duration::from_millis(20));
    let fs = rw_fs(m.clone(), d.path());
    let top = top(&fs).await;
    let data: Vec<u8> = (0..(20u32 << 20)).map(|i| (i % 251) as u8).collect();
    let (_, fh) = fs.create(top, "big.bin", 0o644).await.unwrap();
    for (i, chunk) in data.chunks(1 << 20).enumerate() {
        fs.write(fh, (i as u64) << 20, chunk).await.unwrap();
    }
    fs.flush(fh, true).await.unwrap();
    fs.release(fh).await;
    sync(&fs).await;
    let (_, item) = m.items_in(TOP).pop().unwrap();
    assert_eq!(tip_bytes(&m, &item), data);
    assert_eq!(m.requests(Op::PutPart), 3, "8 MiB parts");
    assert!(m.max_in_flight(Op::PutPart) > 1, "parts go in parallel");
}
