//! What the property found, each as the smallest sequence that showed it (all fixed), through
//! `Fs` over a `MemoryRemote` as `write_tests.rs` drives it, so they stay fixed.

use super::super::write_tests::{
    items, new_file, rw_fs, rw_fs_as, save, setup, sync, tip_bytes, top, write_config,
};
use super::super::{Fs, RenameFlags};
use crate::testing::memory::TOP;
use crate::testing::MemoryRemote;
use std::sync::Arc;
use std::time::Duration;

/// As `rw_fs`, with listings never cached, so what the service lists now is what the mount
/// may show.
fn uncached_fs(m: Arc<MemoryRemote>, dir: &std::path::Path) -> Fs<MemoryRemote> {
    let fs = rw_fs_as(
        m,
        write_config(dir, Duration::from_millis(50), true),
        Duration::ZERO,
    );
    fs.start_writes();
    fs
}

/// A mount whose reconciler never starts, listings never cached: nothing it changes is sent
/// before it ends (a crash after every close).
fn slow_fs(m: Arc<MemoryRemote>, dir: &std::path::Path) -> Fs<MemoryRemote> {
    rw_fs_as(
        m,
        write_config(dir, Duration::from_secs(3600), true),
        Duration::ZERO,
    )
}

async fn mv(fs: &Fs<MemoryRemote>, dir: u64, a: &str, b: &str) {
    fs.rename(dir, a, dir, b, RenameFlags::default())
        .await
        .unwrap();
}

async fn read(fs: &Fs<MemoryRemote>, dir: u64, name: &str) -> Vec<u8> {
    let attr = fs.lookup(dir, name).await.unwrap().0;
    let fh = fs.open(attr.ino, false).await.unwrap();
    let bytes = fs.read(fh, 0, 1 << 16).await.unwrap().to_vec();
    fs.release(fh).await;
    bytes
}

/// `rm a.txt`, then a new `a.txt` (Excel's save): the new file replaces the removed name's
/// marker in memory, but `Writes::create` records no `Gone` for it in the journal, so the next
/// mount brings the marker back: a pending delete that tombstones the file just saved.
#[tokio::test]
async fn a_file_saved_over_a_removed_name_is_not_deleted_by_the_next_mount() {
    let (m, d) = setup();
    m.set_bim360(true);
    m.add_file(TOP, "x", "a.txt", b"A1");
    {
        let fs = rw_fs(m.clone(), d.path());
        let top = top(&fs).await;
        fs.unlink(top, "a.txt").await.unwrap();
        new_file(&fs, top, "a.txt", b"A2").await;
        sync(&fs).await;
        assert_eq!(items(&m), ["a.txt"]);
        assert_eq!(tip_bytes(&m, "x"), b"A2");
    }
    let fs = rw_fs(m.clone(), d.path());
    let top = top(&fs).await;
    assert!(
        fs.queue().is_empty(),
        "nothing left to send: {:?}",
        fs.queue()
    );
    assert_eq!(read(&fs, top, "a.txt").await, b"A2");
    sync(&fs).await;
    assert_eq!(items(&m), ["a.txt"], "the saved file is still there");
    assert!(!m.tip("x").unwrap().deleted);
}

/// The same journal gap before a sync: `mv a c` (hiding `a`), a new `a` (Word's save), and a
/// restart. The next mount replays both the hidden marker and the new file under `a`; the
/// sync settles the marker, which unmaps the name from the new file, whose entry stays behind.
/// After `rm a` the folder still lists `a.txt`, which a lookup does not find.
#[tokio::test]
async fn a_file_saved_over_a_renamed_name_is_one_file_after_a_restart() {
    let (m, d) = setup();
    m.set_bim360(true);
    m.add_file(TOP, "x", "a.txt", b"A1");
    {
        let fs = slow_fs(m.clone(), d.path());
        let top = top(&fs).await;
        mv(&fs, top, "a.txt", "c.txt").await;
        new_file(&fs, top, "a.txt", b"A2").await;
    }
    let fs = uncached_fs(m.clone(), d.path());
    let top = top(&fs).await;
    sync(&fs).await;
    assert_eq!(read(&fs, top, "a.txt").await, b"A2");
    fs.unlink(top, "a.txt").await.unwrap();
    assert!(fs.lookup(top, "a.txt").await.is_err());
    let names = crate::fs::tests::names_in(&fs, top).await;
    assert!(!names.contains(&"a.txt".to_string()), "listed: {names:?}");
}

/// A file the service has, renamed over another file the service has (`mv a b`, a save of
/// `b`'s item), then renamed on (`mv b c`) before a sync: the entry under `b` kept `a`'s item
/// as its base (`Writes::rename_remote` ignores the target's item, where `rename_item_entry`
/// takes it), so the second rename is sent as a rename of `a`'s item, `a`'s delete is dropped
/// as "lives on under another name", and `b`'s item is never touched: the old `b` shows again.
/// `rm b` instead of `mv b c` ends the same way (`a` is deleted, the old `b` shows again), and
/// so does the rename over a name renamed just before (`mv b c; mv a c`: `a`'s item is renamed
/// to `c`, `b`'s stays). Over a name whose item is being deleted (`mv a c; mv c b; mv d c`:
/// `c` holds `a`'s delete), the delete of `a`'s item is lost instead: the old `a` shows again.
#[tokio::test]
async fn a_file_renamed_over_another_and_on_leaves_neither_old_name() {
    let cases: [(&str, &[&str], &str); 4] = [
        ("mv a b; mv b c", &["c.txt"], "A1"),
        ("mv a b; rm b", &[], ""),
        ("mv b c; mv a c", &["c.txt"], "A1"),
        ("mv a c; mv c b; mv d c", &["b.txt", "c.txt"], "D1"),
    ];
    for (how, want, c) in cases {
        let (m, d) = setup();
        m.set_bim360(true);
        m.add_file(TOP, "x", "a.txt", b"A1");
        m.add_file(TOP, "y", "b.txt", b"B1");
        m.add_file(TOP, "z", "d.txt", b"D1");
        let fs = rw_fs(m.clone(), d.path());
        let top = top(&fs).await;
        for op in how.split("; ") {
            let words: Vec<&str> = op.split(' ').collect();
            let name = |w: &str| format!("{w}.txt");
            match words[..] {
                ["mv", from, to] => mv(&fs, top, &name(from), &name(to)).await,
                ["rm", what] => fs.unlink(top, &name(what)).await.unwrap(),
                _ => unreachable!("{op}"),
            }
        }
        sync(&fs).await;
        let mut want: Vec<&str> = want.to_vec();
        want.push("d.txt");
        want.sort();
        if how.contains("mv d") {
            want.retain(|n| *n != "d.txt");
        }
        assert_eq!(items(&m), want, "{how}");
        if !c.is_empty() {
            assert_eq!(read(&fs, top, "c.txt").await, c.as_bytes(), "{how}");
        }
    }
}

/// A save of a file the service has, then a listing of its folder cached from before the save
/// (within the TTL): `with_overlay` takes the older version the cached listing shows for the
/// newer one ("the service moved past it") and retires the committed entry, so the folder
/// shows the old size and reading the file gives the old bytes until the listing expires.
#[tokio::test]
async fn a_listing_cached_before_a_save_does_not_bring_the_old_bytes_back() {
    let (m, d) = setup();
    m.add_file(TOP, "x", "a.txt", b"v1");
    let fs = rw_fs(m.clone(), d.path());
    let top = top(&fs).await;
    let a = fs.lookup(top, "a.txt").await.unwrap().0;
    save(&fs, a.ino, false, b"v2").await;
    sync(&fs).await;
    assert_eq!(tip_bytes(&m, "x"), b"v2");
    assert_eq!(read(&fs, top, "a.txt").await, b"v2");
    let _ = crate::fs::tests::names_in(&fs, top).await;
    assert_eq!(read(&fs, top, "a.txt").await, b"v2", "after ls");
}

/// A file this mount saved, then a new version of it by another client: `lookup` answers from
/// the committed overlay entry without asking the listing, so the file shows (and reads) this
/// mount's version, for as long as the mount runs, until something lists its folder (only
/// listings retire committed entries the service has moved past).
#[tokio::test]
async fn another_client_s_version_of_a_file_this_mount_saved_shows_without_a_listing() {
    let (m, d) = setup();
    let fs = uncached_fs(m.clone(), d.path());
    let top = top(&fs).await;
    new_file(&fs, top, "a.txt", b"mine").await;
    sync(&fs).await;
    let (_, item) = m.items_in(TOP).pop().unwrap();
    m.upload(&item, b"theirs");
    assert_eq!(read(&fs, top, "a.txt").await, b"theirs");
    // What a listing does on its way.
    let _ = crate::fs::tests::names_in(&fs, top).await;
    assert_eq!(read(&fs, top, "a.txt").await, b"theirs", "after ls");
}

/// A file the service has, renamed away and back (`mv a b; mv b a`: the entry is back under
/// `a`, and `b` holds the item's hidden-name marker), then removed: `Writes::unlink` turns the
/// marker under `b` into the delete and forgets the entry under `a`, leaving nothing to hide
/// `a`, which the service still lists, so the removed file shows again (old bytes) until the
/// next sync sends the delete.
#[tokio::test]
async fn a_file_renamed_away_and_back_then_removed_is_gone_at_once() {
    let (m, d) = setup();
    m.set_bim360(true);
    m.add_file(TOP, "x", "a.txt", b"A1");
    let fs = uncached_fs(m.clone(), d.path());
    let top = top(&fs).await;
    mv(&fs, top, "a.txt", "b.txt").await;
    mv(&fs, top, "b.txt", "a.txt").await;
    fs.unlink(top, "a.txt").await.unwrap();
    assert!(fs.lookup(top, "a.txt").await.is_err(), "a.txt was removed");
    sync(&fs).await;
    assert!(fs.lookup(top, "a.txt").await.is_err());
    assert!(items(&m).is_empty());
}

/// A file the service has, renamed (`mv a c`: `a` hidden), then renamed over another file the
/// service has (`mv c b`: a save of `b`'s item, `a`'s item to be deleted, marked under `c`),
/// then a restart before the sync: the next mount drops `a`'s hidden marker (no save waiting
/// continues its item: the save under `b` continues `b`'s), so `a` shows again, with its old
/// bytes, until the sync deletes its item.
#[tokio::test]
async fn a_restart_does_not_bring_back_a_name_renamed_away() {
    let (m, d) = setup();
    m.set_bim360(true);
    m.add_file(TOP, "x", "a.txt", b"A1");
    m.add_file(TOP, "y", "b.txt", b"B1");
    {
        let fs = slow_fs(m.clone(), d.path());
        let top = top(&fs).await;
        mv(&fs, top, "a.txt", "c.txt").await;
        mv(&fs, top, "c.txt", "b.txt").await;
        assert!(fs.lookup(top, "a.txt").await.is_err());
    }
    let fs = uncached_fs(m.clone(), d.path());
    let top = top(&fs).await;
    assert!(
        fs.lookup(top, "a.txt").await.is_err(),
        "a.txt was renamed away before the restart"
    );
    sync(&fs).await;
    assert_eq!(items(&m), ["b.txt"]);
    assert_eq!(tip_bytes(&m, "y"), b"A1");
}
