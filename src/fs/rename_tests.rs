//! Renames, moves and deletes of what the service has, against an in-memory remote through
//! the filesystem's own operations: a rename keeps the item (a `PATCH` on team hubs, a version
//! under the new name on BIM 360), deletes need `--allow-delete` and a hub type that has them,
//! and every change goes with its folder, once, surviving a restart.

use super::error::Op as FsOp;
use super::tests::path;
use super::write_tests::{
    items, new_file, rw_fs, rw_fs_as, rw_fs_with, save, setup, sync, tip_bytes, top, write_config,
};
use super::*;
use crate::testing::memory::TOP;
use crate::testing::{MemoryRemote, Op};

fn errno(r: Result<(), Error>, op: FsOp) -> Option<i32> {
    r.err().map(|e| e.errno(op))
}

/// Every request that changes something on the service.
fn writes(m: &MemoryRemote) -> usize {
    [
        Op::CreateStorage,
        Op::CreateItem,
        Op::CreateVersion,
        Op::CreateFolder,
        Op::RenameItem,
        Op::ChangeFolder,
        Op::DeleteItem,
    ]
    .iter()
    .map(|op| m.requests(*op))
    .sum()
}

async fn mv(fs: &Fs<MemoryRemote>, dir: u64, a: &str, to: u64, b: &str) -> Result<(), Error> {
    fs.rename(dir, a, to, b, RenameFlags::default()).await
}

#[tokio::test]
async fn a_rename_in_a_folder_keeps_the_item_on_either_hub_type() {
    for bim360 in [false, true] {
        let (m, d) = setup();
        m.set_bim360(bim360);
        let storage = m.add_file(TOP, "i", "a.txt", b"v1");
        let fs = rw_fs(m.clone(), d.path());
        let top = top(&fs).await;
        let before = fs.lookup(top, "a.txt").await.unwrap().0;
        mv(&fs, top, "a.txt", top, "b.txt").await.unwrap();
        // Shown at once under the new name, the same inode; the old name is gone.
        let after = fs.lookup(top, "b.txt").await.unwrap().0;
        assert_eq!(
            (after.ino, after.size, after.mtime),
            (before.ino, 2, before.mtime)
        );
        assert!(fs.lookup(top, "a.txt").await.is_err());
        sync(&fs).await;
        assert_eq!(
            items(&m),
            ["b.txt"],
            "bim360 {bim360}: the same item, renamed"
        );
        assert_eq!(m.items_in(TOP)[0].1, "i");
        assert_eq!(tip_bytes(&m, "i"), b"v1");
        if bim360 {
            // The documented rename there: a version under the new name, on the same storage.
            assert_eq!(m.versions("i").len(), 2);
            assert_eq!(
                m.tip("i").unwrap().storage.as_deref(),
                Some(storage.as_str())
            );
            assert_eq!(m.requests(Op::RenameItem), 0);
        } else {
            assert_eq!(m.versions("i").len(), 1, "history as it was");
            assert_eq!(m.requests(Op::RenameItem), 1);
            assert_eq!(m.requests(Op::CreateVersion), 0);
        }
        assert_eq!(m.requests(Op::CreateStorage), 0, "nothing uploaded");
        assert_eq!(m.requests(Op::CreateItem), 0);
        // After the commit, the listing comes from the service and agrees.
        let listed = fs.lookup(top, "b.txt").await.unwrap().0;
        assert_eq!(listed.ino, before.ino);
        assert!(fs.lookup(top, "a.txt").await.is_err());
    }
}

#[tokio::test]
async fn a_renamed_and_edited_file_is_one_version_of_its_item() {
    let (m, d) = setup();
    m.set_bim360(true);
    m.add_file(TOP, "i", "a.txt", b"v1");
    let fs = rw_fs(m.clone(), d.path());
    let top = top(&fs).await;
    mv(&fs, top, "a.txt", top, "b.txt").await.unwrap();
    let b = fs.lookup(top, "b.txt").await.unwrap().0;
    save(&fs, b.ino, true, b"v2").await;
    sync(&fs).await;
    assert_eq!(items(&m), ["b.txt"]);
    assert_eq!(m.versions("i").len(), 2, "one version: renamed and changed");
    assert_eq!(tip_bytes(&m, "i"), b"v2");
}

#[tokio::test]
async fn rm_needs_allow_delete_and_a_hub_type_that_deletes() {
    let (m, d) = setup();
    m.set_bim360(true);
    m.add_file(TOP, "i", "a.txt", b"v1");
    m.add_file(TOP, "j", "b.txt", b"v1");
    let fs = rw_fs_with(m.clone(), d.path(), false);
    let top = top(&fs).await;
    assert_eq!(
        errno(fs.unlink(top, "a.txt").await, FsOp::Unlink),
        Some(libc::EPERM)
    );
    // A move over another file removes the moved file's item: refused the same way.
    assert_eq!(
        errno(mv(&fs, top, "a.txt", top, "b.txt").await, FsOp::Rename),
        Some(libc::EPERM)
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(writes(&m), 0, "nothing sent");
    assert!(fs.lookup(top, "a.txt").await.is_ok());

    let (m, d) = setup();
    m.add_file(TOP, "i", "a.txt", b"v1");
    let fs = rw_fs_with(m.clone(), d.path(), true);
    let top = self::top(&fs).await;
    assert_eq!(
        errno(fs.unlink(top, "a.txt").await, FsOp::Unlink),
        Some(libc::EPERM),
        "a team hub keeps no deleted files"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(writes(&m), 0);
}

#[tokio::test]
async fn rm_sends_a_tombstone_and_the_service_keeps_the_versions() {
    let (m, d) = setup();
    m.set_bim360(true);
    let storage = m.add_file(TOP, "i", "a.txt", b"v1");
    m.add_file(TOP, "j", "keep.txt", b"k");
    let fs = rw_fs(m.clone(), d.path());
    let top = top(&fs).await;
    fs.unlink(top, "a.txt").await.unwrap();
    assert!(fs.lookup(top, "a.txt").await.is_err());
    sync(&fs).await;
    assert_eq!(items(&m), ["keep.txt"]);
    let versions = m.versions("i");
    assert_eq!(versions.len(), 2);
    assert!(versions[0].deleted, "the tip is the tombstone");
    assert_eq!(&m.object(&storage).unwrap()[..], b"v1", "v1 still readable");
    assert_eq!(m.requests(Op::DeleteItem), 1);
    assert!(fs.lookup(top, "a.txt").await.is_err());
    // A new file never sent is simply dropped.
    new_file(&fs, top, "tmp.txt", b"x").await;
    fs.unlink(top, "tmp.txt").await.unwrap();
    sync(&fs).await;
    assert_eq!(m.requests(Op::CreateStorage), 0);
    assert_eq!(m.requests(Op::DeleteItem), 1);
}

#[tokio::test]
async fn rm_of_a_save_not_sent_yet_keeps_it_in_the_history() {
    let (m, d) = setup();
    m.set_bim360(true);
    m.add_file(TOP, "i", "a.txt", b"v1");
    let fs = rw_fs(m.clone(), d.path());
    let top = top(&fs).await;
    let a = fs.lookup(top, "a.txt").await.unwrap().0;
    save(&fs, a.ino, true, b"v2").await;
    fs.unlink(top, "a.txt").await.unwrap();
    sync(&fs).await;
    let versions = m.versions("i");
    assert_eq!(versions.len(), 3, "v1, the save, the tombstone");
    assert!(versions[0].deleted);
    let saved = versions[1].storage.as_deref().unwrap();
    assert_eq!(&m.object(saved).unwrap()[..], b"v2");
}

#[tokio::test]
async fn a_move_over_another_file_saves_into_it_and_deletes_the_source() {
    let (m, d) = setup();
    m.set_bim360(true);
    m.add_file(TOP, "x", "a.txt", b"from a");
    m.add_file(TOP, "y", "b.txt", b"old b");
    let fs = rw_fs(m.clone(), d.path());
    let top = top(&fs).await;
    mv(&fs, top, "a.txt", top, "b.txt").await.unwrap();
    sync(&fs).await;
    assert_eq!(items(&m), ["b.txt"]);
    assert_eq!(tip_bytes(&m, "y"), b"from a");
    assert_eq!(m.versions("y").len(), 2);
    assert!(m.versions("x")[0].deleted);
    assert_eq!(
        m.requests(Op::CreateStorage),
        0,
        "the bytes were on the service"
    );
}

#[tokio::test]
async fn swapping_two_names_keeps_each_name_s_item() {
    let (m, d) = setup();
    m.set_bim360(true);
    m.add_file(TOP, "x", "a.txt", b"A");
    m.add_file(TOP, "y", "b.txt", b"B");
    let fs = rw_fs(m.clone(), d.path());
    let top = top(&fs).await;
    mv(&fs, top, "a.txt", top, "t.txt").await.unwrap();
    mv(&fs, top, "b.txt", top, "a.txt").await.unwrap();
    mv(&fs, top, "t.txt", top, "b.txt").await.unwrap();
    sync(&fs).await;
    // Identity is the name: each name's item takes the other's bytes; nothing is deleted.
    assert_eq!(items(&m), ["a.txt", "b.txt"]);
    assert_eq!(tip_bytes(&m, "x"), b"B");
    assert_eq!(tip_bytes(&m, "y"), b"A");
    assert_eq!(m.requests(Op::DeleteItem), 0);
    assert_eq!(m.requests(Op::CreateItem), 0);
}

#[tokio::test]
async fn files_move_across_folders_only_as_copies_and_folders_move_on_the_service() {
    let (m, d) = setup();
    m.set_bim360(true);
    m.add_file(TOP, "i", "a.txt", b"v1");
    let fs = rw_fs(m.clone(), d.path());
    let top = top(&fs).await;
    let one = fs.mkdir(top, "One", 0o755).await.unwrap();
    let two = fs.mkdir(top, "Two", 0o755).await.unwrap();
    assert_eq!(
        errno(mv(&fs, top, "a.txt", one.ino, "a.txt").await, FsOp::Rename),
        Some(libc::EXDEV)
    );
    // A new file not sent yet moves freely.
    new_file(&fs, top, "new.txt", b"n").await;
    mv(&fs, top, "new.txt", one.ino, "new.txt").await.unwrap();
    let one_id = m.folder_named(TOP, "One").unwrap();
    // A folder is renamed, then moved, at once.
    mv(&fs, top, "One", top, "Uno").await.unwrap();
    assert_eq!(m.folder_named(TOP, "Uno").as_deref(), Some(one_id.as_str()));
    mv(&fs, top, "Uno", two.ino, "Uno").await.unwrap();
    let two_id = m.folder_named(TOP, "Two").unwrap();
    assert_eq!(m.parent_of(&one_id).as_deref(), Some(two_id.as_str()));
    assert_eq!(m.requests(Op::ChangeFolder), 2);
    let moved = path(&fs, &["Project Files", "Two", "Uno"]).await.unwrap();
    assert_eq!(moved.ino, one.ino, "the same inode at its new place");
    assert!(fs.lookup(top, "Uno").await.is_err());
    sync(&fs).await;
    let (name, item) = m.items_in(&one_id).pop().unwrap();
    assert_eq!(name, "new.txt");
    assert_eq!(tip_bytes(&m, &item), b"n");
    // Into itself: refused by the service, nothing changes here.
    let r = mv(&fs, top, "Two", moved.ino, "Two").await;
    assert!(r.is_err());
}

#[tokio::test]
async fn rmdir_hides_an_empty_folder_and_refuses_a_full_one() {
    let (m, d) = setup();
    m.set_bim360(true);
    let fs = rw_fs(m.clone(), d.path());
    let top = top(&fs).await;
    let sub = fs.mkdir(top, "Old", 0o755).await.unwrap();
    new_file(&fs, sub.ino, "a.txt", b"x").await;
    assert_eq!(
        errno(fs.rmdir(top, "Old").await, FsOp::Rmdir),
        Some(libc::ENOTEMPTY)
    );
    sync(&fs).await;
    fs.unlink(sub.ino, "a.txt").await.unwrap();
    fs.rmdir(top, "Old").await.unwrap();
    let id = m.folder_named(TOP, "Old").unwrap();
    assert!(m.folder_hidden(&id));
    assert!(fs.lookup(top, "Old").await.is_err());
    sync(&fs).await;
    assert_eq!(
        m.requests(Op::DeleteItem),
        1,
        "the file in it: its own tombstone"
    );
    let no = rw_fs_with(m.clone(), d.path().join("other").as_path(), false);
    let top2 = self::top(&no).await;
    no.mkdir(top2, "Keep", 0o755).await.unwrap();
    assert_eq!(
        errno(no.rmdir(top2, "Keep").await, FsOp::Rmdir),
        Some(libc::EPERM)
    );
}

#[tokio::test]
async fn a_rename_not_sent_before_a_restart_is_sent_once_by_the_next_mount() {
    let (m, d) = setup();
    m.set_bim360(false);
    m.add_file(TOP, "i", "a.txt", b"v1");
    {
        let slow = write_config(d.path(), Duration::from_secs(3600), false);
        let fs = rw_fs_as(m.clone(), slow, Duration::from_secs(60));
        let top = top(&fs).await;
        mv(&fs, top, "a.txt", top, "b.txt").await.unwrap();
        // Dropped without sending: a crash as far as the journal is concerned.
    }
    assert_eq!(m.requests(Op::RenameItem), 0);
    let fs = rw_fs_with(m.clone(), d.path(), false);
    let top = top(&fs).await;
    assert!(
        fs.lookup(top, "a.txt").await.is_err(),
        "still hidden after the restart"
    );
    sync(&fs).await;
    assert_eq!(items(&m), ["b.txt"]);
    assert_eq!(m.requests(Op::RenameItem), 1);
    drop(fs);
    let fs = rw_fs_with(m.clone(), d.path(), false);
    sync(&fs).await;
    assert_eq!(m.requests(Op::RenameItem), 1, "not again");
}

#[tokio::test]
async fn storage_the_service_will_not_share_is_uploaded_again() {
    let (m, d) = setup();
    m.set_bim360(true);
    m.refuse_storage_reuse(true);
    m.add_file(TOP, "i", "a.txt", b"v1");
    let fs = rw_fs(m.clone(), d.path());
    let top = top(&fs).await;
    mv(&fs, top, "a.txt", top, "b.txt").await.unwrap();
    sync(&fs).await;
    assert_eq!(items(&m), ["b.txt"]);
    assert_eq!(m.versions("i").len(), 2);
    assert_eq!(tip_bytes(&m, "i"), b"v1");
    assert_eq!(
        m.requests(Op::CreateStorage),
        1,
        "uploaded once, after the refusal"
    );
}

#[tokio::test]
async fn a_rename_chain_renames_both_items_and_deletes_nothing() {
    for bim360 in [false, true] {
        let (m, d) = setup();
        m.set_bim360(bim360);
        m.add_file(TOP, "x", "report.pdf", b"old");
        m.add_file(TOP, "y", "draft.pdf", b"new");
        // No --allow-delete: the rotation removes nothing, so it needs none.
        let fs = rw_fs_with(m.clone(), d.path(), false);
        let top = top(&fs).await;
        mv(&fs, top, "report.pdf", top, "report-old.pdf")
            .await
            .unwrap();
        mv(&fs, top, "draft.pdf", top, "report.pdf").await.unwrap();
        sync(&fs).await;
        let mut named = m.items_in(TOP);
        named.sort();
        assert_eq!(
            named,
            [
                ("report-old.pdf".to_string(), "x".to_string()),
                ("report.pdf".to_string(), "y".to_string())
            ],
            "bim360 {bim360}: each item keeps its history under its new name"
        );
        assert_eq!(tip_bytes(&m, "x"), b"old");
        assert_eq!(tip_bytes(&m, "y"), b"new");
        assert_eq!(m.requests(Op::DeleteItem), 0);
        assert_eq!(m.requests(Op::CreateItem), 0);
        assert_eq!(m.requests(Op::CreateStorage), 0);
    }
}

#[tokio::test]
async fn a_file_moved_into_a_removed_name_is_renamed_after_the_delete() {
    let (m, d) = setup();
    m.set_bim360(true);
    m.add_file(TOP, "x", "a.txt", b"A");
    m.add_file(TOP, "y", "c.txt", b"C");
    let fs = rw_fs(m.clone(), d.path());
    let top = top(&fs).await;
    fs.unlink(top, "a.txt").await.unwrap();
    mv(&fs, top, "c.txt", top, "a.txt").await.unwrap();
    assert_eq!(
        fs.queue().len(),
        2,
        "the delete still waits: {:?}",
        fs.queue()
    );
    sync(&fs).await;
    assert_eq!(m.items_in(TOP), [("a.txt".to_string(), "y".to_string())]);
    assert!(m.versions("x")[0].deleted);
    assert_eq!(tip_bytes(&m, "y"), b"C");
}

#[tokio::test]
async fn a_file_is_not_deleted_over_a_version_someone_saved_after_the_rm() {
    let (m, d) = setup();
    m.set_bim360(true);
    m.add_file(TOP, "x", "a.txt", b"mine");
    let slow = write_config(d.path(), Duration::from_secs(3600), true);
    let fs = rw_fs_as(m.clone(), slow, Duration::from_secs(60));
    fs.start_writes();
    let top = top(&fs).await;
    fs.unlink(top, "a.txt").await.unwrap();
    m.upload("x", b"theirs");
    let left = fs.sync(None, true, Duration::from_secs(10)).await;
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(m.requests(Op::DeleteItem), 0);
    assert_eq!(tip_bytes(&m, "x"), b"theirs");
}
