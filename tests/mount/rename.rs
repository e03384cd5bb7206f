//! Renames, moves and removals of what the service has, through a read-write mount: a rename
//! in a folder keeps the item (`PATCH items` on a team hub, a version under the new name on
//! BIM 360), folders move at once keeping their id, a file moved to another folder is a copy
//! and a delete, `rm` and `rmdir` need `--allow-delete`, and each change reaches the service
//! exactly once, a crash included. Every check of what the service has reads its API, never
//! the mount.

use crate::support::mount::Mount;
use crate::support::process::{run, run_apsfs, s};
use crate::support::runtime::rt;
use crate::support::rw::{
    files, grown_beyond_reads, listed, pattern, rsync_into, saved_bytes, sync, Rw,
};
use crate::support::saved::{folder_ids, folders, item_names, items, version_bytes, versions};
use crate::support::xattr::xattr;
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// Extension type of a delete tombstone.
const TOMBSTONE: &str = "versions:autodesk.core:Deleted";

/// Every `writes` counter of a stats snapshot.
fn writes(stats: &Value) -> BTreeMap<String, u64> {
    stats["writes"]
        .as_object()
        .expect("writes counters")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
        .collect()
}

/// The `writes` counters that differ from `before` to `after`: name → (before, after).
fn changed(before: &Value, after: &Value) -> BTreeMap<String, (u64, u64)> {
    let (b, a) = (writes(before), writes(after));
    a.into_iter()
        .filter_map(|(k, n)| {
            let was = b.get(&k).copied().unwrap_or(0);
            (n != was).then_some((k, (was, n)))
        })
        .collect()
}

/// The extension type of a version resource.
fn ext(v: &Value) -> &str {
    v["attributes"]["extension"]["type"].as_str().unwrap_or("")
}

/// The name of a version resource.
fn vname(v: &Value) -> &str {
    v["attributes"]["name"].as_str().unwrap_or("")
}

/// The errno of a failed call, or 0 when it succeeded.
fn errno_of(r: std::io::Result<()>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

fn c_path(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in path")
}

/// The result of a libc call returning -1 on failure.
fn libc_result(rc: libc::c_int) -> std::io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `renameat2(from, to, flags)`.
fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> std::io::Result<()> {
    let (a, b) = (c_path(from), c_path(to));
    // SAFETY: two NUL-terminated paths, relative to the current directory.
    libc_result(unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            flags,
        )
    })
}

/// `setxattr(path, name, value)`.
fn setxattr(path: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    let (p, n) = (c_path(path), CString::new(name).expect("name"));
    // SAFETY: NUL-terminated path and name, and a buffer as long as we say.
    libc_result(unsafe {
        libc::setxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

/// The names `ls` shows in `dir` of the mount, sorted.
fn shown(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// `mv ARGS…` (coreutils), which must succeed: its stderr.
fn mv(args: &[&str]) -> String {
    let (code, out, err) = run("mv", args);
    assert_eq!(code, 0, "mv {args:?}: {out}{err}");
    err
}

/// `apsfs status MOUNTPOINT`: its stdout.
fn status(m: &Mount) -> String {
    let out = run_apsfs(&["status", s(&m.path())], &[], Duration::from_secs(20));
    assert_eq!(out.code, Some(0), "status: {}{}", out.stdout, out.stderr);
    out.stdout
}

#[test]
fn mv_in_a_folder_on_a_team_hub_renames_the_item_and_keeps_its_versions() {
    let rw = Rw::team(&[("a.txt", b"the bytes"), ("other.txt", b"stays")]);
    let before = rt().block_on(item_names(&rw.emu, &[]));
    let id = before[0].1.clone();
    let history = rt().block_on(versions(&rw.emu, &id)).len();
    let m = rw.mount(&[]);
    let dir = files(&m);
    mv(&[s(&dir.join("a.txt")), s(&dir.join("b.txt"))]);
    assert_eq!(
        shown(&dir),
        ["b.txt", "other.txt"],
        "the mount shows it at once"
    );
    assert_eq!(
        std::fs::read(dir.join("b.txt")).expect("read b"),
        b"the bytes"
    );
    sync(&m.path());

    let after = rt().block_on(item_names(&rw.emu, &[]));
    assert_eq!(
        after,
        [("b.txt".to_string(), id.clone(), 1), before[1].clone()],
        "the same item under the new name, no new version"
    );
    assert_eq!(rt().block_on(versions(&rw.emu, &id)).len(), history);
    let stats = rw.stats();
    assert_eq!(stats["writes"]["items_renamed"], 1, "{}", stats["writes"]);
    for none in [
        "versions_created",
        "storage_created",
        "items_created",
        "tombstones",
    ] {
        assert_eq!(stats["writes"][none], 0, "{none}: {}", stats["writes"]);
    }
    assert_eq!(
        xattr(&dir.join("b.txt"), "user.aps.sync").as_deref(),
        Ok("committed v1")
    );
}

#[test]
fn mv_in_a_folder_on_bim360_is_a_version_under_the_new_name_on_the_same_storage() {
    let data = pattern(3000, 5);
    let rw = Rw::new(&[("a.bin", &data)], &[]);
    let before = rt().block_on(items(&rw.emu, &[]));
    let m = rw.mount(&[]);
    let dir = files(&m);
    mv(&[s(&dir.join("a.bin")), s(&dir.join("b.bin"))]);
    sync(&m.path());

    let after = rt().block_on(items(&rw.emu, &[]));
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(
        (
            after[0].name.as_str(),
            after[0].item.as_str(),
            after[0].version
        ),
        ("b.bin", before[0].item.as_str(), 2),
        "the same item, one version under the new name"
    );
    assert_eq!(after[0].storage, before[0].storage, "the same storage");
    assert_eq!(saved_bytes(&rw, &[], "b.bin"), data);
    let all = rt().block_on(versions(&rw.emu, &after[0].item));
    let names: Vec<&str> = all.iter().map(vname).collect();
    assert_eq!(names, ["b.bin", "a.bin"], "history intact");
    let w = rw.stats()["writes"].clone();
    assert_eq!(w["versions_created"], 1, "{w}");
    for none in [
        "storage_created",
        "parts_put",
        "items_created",
        "items_renamed",
        "tombstones",
    ] {
        assert_eq!(w[none], 0, "{none}: {w}");
    }
}

#[test]
fn mv_of_a_folder_renames_or_moves_it_at_once_keeping_its_id() {
    let rw = Rw::new(
        &[
            ("dir1/x.txt", b"inside"),
            ("dir2/y.txt", b"other"),
            ("dir3/", b""),
        ],
        &[],
    );
    let top = rt().block_on(folder_ids(&rw.emu, &[]));
    let id_of = |n: &str| {
        top.iter()
            .find(|(name, _)| name == n)
            .map(|(_, id)| id.clone())
            .unwrap_or_else(|| panic!("no folder {n}: {top:?}"))
    };
    let (dir1, dir3) = (id_of("dir1"), id_of("dir3"));
    let m = rw.mount(&[]);
    let dir = files(&m);
    // A move: at once, no sync needed.
    mv(&[s(&dir.join("dir1")), &format!("{}/", s(&dir.join("dir2")))]);
    assert_eq!(
        rt().block_on(folder_ids(&rw.emu, &["dir2"])),
        [("dir1".to_string(), dir1.clone())],
        "dir1 under dir2, the same folder"
    );
    assert_eq!(rw.written("folders_moved"), 1);
    // A rename.
    mv(&[s(&dir.join("dir3")), s(&dir.join("Drawings"))]);
    let now = rt().block_on(folder_ids(&rw.emu, &[]));
    let names: Vec<&str> = now.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Drawings", "dir2"]);
    assert!(now.contains(&("Drawings".to_string(), dir3)), "{now:?}");
    let w = rw.stats()["writes"].clone();
    assert_eq!(
        (w["folders_moved"].as_u64(), w["folders_renamed"].as_u64()),
        (Some(1), Some(1)),
        "{w}"
    );
    for none in ["folders_created", "items_created", "versions_created"] {
        assert_eq!(w[none], 0, "{none}: {w}");
    }
    // What was inside moved with it, and the mount shows it there.
    assert_eq!(listed(&rw, &["dir2", "dir1"]), [("x.txt".to_string(), 1)]);
    assert_eq!(
        std::fs::read(dir.join("dir2/dir1/x.txt")).expect("moved file"),
        b"inside"
    );
    assert!(!dir.join("dir1").exists());
}

#[test]
fn mv_of_a_file_to_another_folder_is_a_copy_and_a_tombstone() {
    let data = pattern(5000, 9);
    let rw = Rw::new(&[("a.bin", &data), ("other/keep.txt", b"keep")], &[]);
    let old = rt().block_on(items(&rw.emu, &[]))[0].clone();
    let m = rw.mount(&["--allow-delete"]);
    let dir = files(&m);
    // The kernel's rename answers EXDEV; coreutils mv copies and removes (and warns that it
    // could not copy the read-only user.aps.sync attribute).
    mv(&[
        s(&dir.join("a.bin")),
        &format!("{}/", s(&dir.join("other"))),
    ]);
    assert_eq!(shown(&dir), ["other"]);
    sync(&m.path());

    assert!(listed(&rw, &[]).is_empty(), "{:?}", listed(&rw, &[]));
    let moved = rt().block_on(items(&rw.emu, &["other"]));
    let names: Vec<(&str, u64)> = moved.iter().map(|i| (i.name.as_str(), i.version)).collect();
    assert_eq!(names, [("a.bin", 1), ("keep.txt", 1)]);
    assert_ne!(moved[0].item, old.item, "a new item");
    assert_eq!(saved_bytes(&rw, &["other"], "a.bin"), data);
    let history = rt().block_on(versions(&rw.emu, &old.item));
    let kinds: Vec<&str> = history.iter().map(ext).collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert_eq!(kinds[0], TOMBSTONE, "the old item's tip is its tombstone");
    assert_eq!(
        rt().block_on(version_bytes(&rw.emu, &history[1])),
        data,
        "its earlier version is still there"
    );
    let w = rw.stats()["writes"].clone();
    assert_eq!(
        (w["items_created"].as_u64(), w["tombstones"].as_u64()),
        (Some(1), Some(1)),
        "{w}"
    );
}

#[test]
fn rm_and_rmdir_without_allow_delete_answer_eperm_and_send_nothing() {
    let rw = Rw::new(&[("a.txt", b"v1"), ("Empty/", b"")], &[]);
    let m = rw.mount(&[]);
    let dir = files(&m);
    assert_eq!(shown(&dir), ["Empty", "a.txt"]);
    let before = rw.stats();
    let (code, _, err) = run("rm", &[s(&dir.join("a.txt"))]);
    assert_ne!(code, 0, "rm succeeded");
    assert!(err.contains("Operation not permitted"), "rm: {err}");
    assert_eq!(
        errno_of(std::fs::remove_file(dir.join("a.txt"))),
        libc::EPERM
    );
    assert_eq!(
        errno_of(std::fs::remove_dir(dir.join("Empty"))),
        libc::EPERM
    );
    assert_eq!(shown(&dir), ["Empty", "a.txt"], "both still shown");
    // Past the quiet period, and asked to send: still nothing.
    std::thread::sleep(Duration::from_millis(1500));
    sync(&m.path());
    let after = rw.stats();
    assert_eq!(changed(&before, &after), BTreeMap::new(), "no write");
    assert_eq!(
        grown_beyond_reads(&before, &after),
        BTreeMap::new(),
        "no write request"
    );
    assert_eq!(listed(&rw, &[]), [("a.txt".to_string(), 1)]);
    assert_eq!(rt().block_on(folders(&rw.emu, &[])), ["Empty"]);
    assert_eq!(std::fs::read(dir.join("a.txt")).expect("read"), b"v1");
}

#[test]
fn rm_with_allow_delete_is_a_tombstone_and_rmdir_hides_an_empty_folder() {
    let rw = Rw::new(
        &[
            ("a.txt", b"v1 of a"),
            ("saved.txt", b"v1 of saved"),
            ("keep.txt", b"kept"),
            ("Empty/", b""),
            ("Full/x.txt", b"x"),
        ],
        &[],
    );
    let before = rt().block_on(items(&rw.emu, &[]));
    let id = |n: &str| {
        before
            .iter()
            .find(|i| i.name == n)
            .map(|i| i.item.clone())
            .expect("seeded item")
    };
    let m = rw.mount(&["--allow-delete"]);
    let dir = files(&m);
    std::fs::remove_file(dir.join("a.txt")).expect("rm a.txt");
    // A save not sent yet, then removed: the save goes up first, so the service keeps it.
    std::fs::write(dir.join("saved.txt"), b"v2 of saved").expect("save");
    std::fs::remove_file(dir.join("saved.txt")).expect("rm saved.txt");
    // A file never sent: simply dropped.
    std::fs::write(dir.join("new.txt"), b"never sent").expect("new file");
    std::fs::remove_file(dir.join("new.txt")).expect("rm new.txt");
    assert_eq!(
        shown(&dir),
        ["Empty", "Full", "keep.txt"],
        "gone from the mount"
    );
    // rmdir goes at once.
    std::fs::remove_dir(dir.join("Empty")).expect("rmdir Empty");
    assert_eq!(rt().block_on(folders(&rw.emu, &[])), ["Full"]);
    assert_eq!(rw.written("folders_hidden"), 1);
    assert_eq!(
        errno_of(std::fs::remove_dir(dir.join("Full"))),
        libc::ENOTEMPTY
    );
    sync(&m.path());

    assert_eq!(
        listed(&rw, &[]),
        [("keep.txt".to_string(), 1)],
        "gone from the API listing"
    );
    assert_eq!(shown(&dir), ["Full", "keep.txt"]);
    let a = rt().block_on(versions(&rw.emu, &id("a.txt")));
    let kinds: Vec<&str> = a.iter().map(ext).collect();
    assert_eq!(kinds.len(), 2, "a.txt: {kinds:?}");
    assert_eq!(kinds[0], TOMBSTONE);
    assert_eq!(rt().block_on(version_bytes(&rw.emu, &a[1])), b"v1 of a");
    let saved = rt().block_on(versions(&rw.emu, &id("saved.txt")));
    let kinds: Vec<&str> = saved.iter().map(ext).collect();
    assert_eq!(
        kinds.len(),
        3,
        "saved.txt: the save, then the tombstone: {kinds:?}"
    );
    assert_eq!(kinds[0], TOMBSTONE);
    assert_eq!(
        rt().block_on(version_bytes(&rw.emu, &saved[1])),
        b"v2 of saved"
    );
    assert_eq!(
        rt().block_on(version_bytes(&rw.emu, &saved[2])),
        b"v1 of saved"
    );
    let w = rw.stats()["writes"].clone();
    assert_eq!(w["tombstones"], 2, "{w}");
    assert_eq!(w["versions_created"], 3, "the save and two tombstones: {w}");
    assert_eq!(w["items_created"], 0, "{w}");
    assert_eq!(w["storage_created"], 1, "{w}");
}

#[test]
fn rsync_delete_sends_one_tombstone_per_removed_file_and_nothing_else() {
    let rw = Rw::new(&[], &[]);
    let m = rw.mount(&["--allow-delete"]);
    let src = tempfile::tempdir().expect("src");
    for i in 0..30 {
        let rel = format!("s{}/f{i:02}.bin", i % 3);
        crate::support::files::seed_file(&src.path().join(rel), &pattern(200 + i * 13, i as u8));
    }
    let dest = files(&m).join("copy");
    std::fs::create_dir(&dest).expect("mkdir copy");
    let rsync = || rsync_into(src.path(), &dest, &["--delete"]);
    rsync();
    sync(&m.path());
    assert_eq!(rw.written("items_created"), 30);

    for i in (0..30).step_by(3) {
        std::fs::remove_file(src.path().join(format!("s{}/f{i:02}.bin", i % 3))).expect("rm src");
    }
    let before = rw.stats();
    rsync();
    sync(&m.path());
    let after = rw.stats();
    let diff = changed(&before, &after);
    let want: BTreeMap<String, (u64, u64)> = [("tombstones", 0, 10), ("versions_created", 0, 10)]
        .into_iter()
        .map(|(k, b, a)| (k.to_string(), (b, a)))
        .collect();
    assert_eq!(diff, want, "ten tombstones and nothing else");
    assert_eq!(
        grown_beyond_reads(&before, &after),
        [("create_version".to_string(), 10)].into_iter().collect(),
    );
    let mut left = 0;
    for d in 0..3 {
        let sub = format!("s{d}");
        for (name, version) in listed(&rw, &["copy", &sub]) {
            let i: usize = name[1..3].parse().expect("number");
            assert!(i % 3 != 0, "{name} removed from the source is still listed");
            assert_eq!(version, 1, "{name}");
            left += 1;
        }
    }
    assert_eq!(left, 20);

    // Once more: nothing to do, so only listings.
    let before = rw.stats();
    rsync();
    sync(&m.path());
    let after = rw.stats();
    assert_eq!(changed(&before, &after), BTreeMap::new());
    assert_eq!(grown_beyond_reads(&before, &after), BTreeMap::new());
}

/// `kill -9` of a mount between a rename (and, with `rm`, a delete of `c.txt`) and their
/// commit: the next mount sends them once, and the one after that sends nothing. The writes
/// counters after the first remount.
fn survives_kill_9(rw: &Rw, rm: bool) -> BTreeMap<String, u64> {
    let flags: &[&str] = if rm { &["--allow-delete"] } else { &[] };
    let long = [flags, &["--quiet-period", "300"]].concat();
    let mut m = rw.mount(&long);
    let dir = files(&m);
    mv(&[s(&dir.join("a.txt")), s(&dir.join("b.txt"))]);
    if rm {
        std::fs::remove_file(dir.join("c.txt")).expect("rm c.txt");
    }
    let queued = status(&m);
    assert!(queued.contains("pending rename"), "{queued}");
    assert_eq!(queued.contains("pending delete"), rm, "{queued}");
    m.kill9();
    drop(m);
    assert_eq!(
        writes(&rw.stats()).values().sum::<u64>(),
        0,
        "nothing sent before the kill"
    );
    let m = rw.mount(flags);
    assert_eq!(
        shown(&files(&m)),
        ["b.txt"],
        "the changes survived the crash"
    );
    sync(&m.path());
    drop(m);
    let sent = rw.stats();
    let m = rw.mount(flags);
    assert_eq!(shown(&files(&m)), ["b.txt"]);
    std::thread::sleep(Duration::from_millis(1500));
    sync(&m.path());
    let again = rw.stats();
    assert_eq!(
        changed(&sent, &again),
        BTreeMap::new(),
        "a second remount sends nothing"
    );
    // Only reads, and the new mount's reachability probe (`GET /` of the base URL, a route
    // the emulator does not know).
    assert_eq!(
        grown_beyond_reads(&sent, &again),
        [("unknown".to_string(), 1)].into_iter().collect()
    );
    writes(&sent)
}

#[test]
fn a_rename_cut_by_kill_9_happens_once_on_a_team_hub() {
    let rw = Rw::team(&[("a.txt", b"renamed once")]);
    let id = rt().block_on(item_names(&rw.emu, &[]))[0].1.clone();
    let w = survives_kill_9(&rw, false);
    assert_eq!(w["items_renamed"], 1, "{w:?}");
    assert_eq!(w["versions_created"], 0, "{w:?}");
    assert_eq!(
        rt().block_on(item_names(&rw.emu, &[])),
        [("b.txt".to_string(), id, 1)]
    );
}

#[test]
fn a_rename_and_a_delete_cut_by_kill_9_happen_once_on_bim360() {
    let rw = Rw::new(
        &[("a.txt", b"renamed once"), ("c.txt", b"deleted once")],
        &[],
    );
    let before = rt().block_on(items(&rw.emu, &[]));
    let w = survives_kill_9(&rw, true);
    assert_eq!(
        (w["versions_created"], w["tombstones"], w["storage_created"]),
        (2, 1, 0),
        "one version under the new name, one tombstone: {w:?}"
    );
    let now = rt().block_on(items(&rw.emu, &[]));
    assert_eq!(
        (
            now.len(),
            now[0].name.as_str(),
            now[0].item.as_str(),
            now[0].version
        ),
        (1, "b.txt", before[0].item.as_str(), 2)
    );
    assert_eq!(saved_bytes(&rw, &[], "b.txt"), b"renamed once");
    let c = rt().block_on(versions(&rw.emu, &before[1].item));
    let kinds: Vec<&str> = c.iter().map(ext).collect();
    assert_eq!(kinds, [TOMBSTONE, "versions:autodesk.bim360:File"]);
}

#[test]
fn links_special_files_and_attributes_are_refused_and_metadata_changes_are_accepted() {
    let rw = Rw::new(&[("a.txt", b"v1")], &[]);
    let m = rw.mount(&[]);
    let dir = files(&m);
    let a = dir.join("a.txt");
    assert_eq!(
        errno_of(std::fs::hard_link(&a, dir.join("hard.txt"))),
        libc::EPERM,
        "ln"
    );
    assert_eq!(
        errno_of(std::os::unix::fs::symlink("a.txt", dir.join("soft.txt"))),
        libc::EPERM,
        "ln -s"
    );
    let fifo = c_path(&dir.join("fifo"));
    // SAFETY: a NUL-terminated path.
    let rc = libc_result(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) });
    assert_eq!(errno_of(rc), libc::EPERM, "mkfifo");
    let (code, _, err) = run("ln", &["-s", "a.txt", s(&dir.join("soft2.txt"))]);
    assert!(
        code != 0 && err.contains("Operation not permitted"),
        "ln -s: {err}"
    );
    assert_eq!(
        errno_of(setxattr(&a, "user.aps.sync", b"x")),
        libc::EPERM,
        "setfattr -n user.aps.sync"
    );
    assert_eq!(
        errno_of(setxattr(&a, "user.x", b"x")),
        libc::EOPNOTSUPP,
        "setfattr -n user.x"
    );

    // A new file being written: fallocate is refused, metadata changes are accepted.
    use std::io::Write;
    use std::os::unix::io::AsRawFd;
    let new = dir.join("new.txt");
    let mut f = std::fs::File::create(&new).expect("create");
    f.write_all(b"being written").expect("write");
    // SAFETY: an open descriptor.
    let rc = libc_result(unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, 1 << 20) });
    assert_eq!(errno_of(rc), libc::EOPNOTSUPP, "fallocate");
    for (cmd, args) in [
        ("chmod", vec!["600", s(&new)]),
        ("chown", vec!["0:0", s(&new)]),
        ("touch", vec!["-d", "2020-01-02 03:04:05", s(&new)]),
    ] {
        let (code, out, err) = run(cmd, &args);
        assert_eq!(code, 0, "{cmd}: {out}{err}");
    }
    f.write_all(b", still").expect("write after");
    drop(f);
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(&new).expect("stat");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "chmod kept");
    sync(&m.path());
    assert_eq!(
        listed(&rw, &[]),
        [("a.txt".to_string(), 1), ("new.txt".to_string(), 1)]
    );
    assert_eq!(saved_bytes(&rw, &[], "new.txt"), b"being written, still");
    assert_eq!(shown(&dir), ["a.txt", "new.txt"], "nothing else was made");
}

#[test]
fn rename_noreplace_over_a_name_is_eexist_and_exchange_is_einval() {
    let rw = Rw::new(&[("a.txt", b"a"), ("b.txt", b"b")], &[]);
    let m = rw.mount(&["--allow-delete"]);
    let dir = files(&m);
    let (a, b, c) = (dir.join("a.txt"), dir.join("b.txt"), dir.join("c.txt"));
    assert_eq!(
        errno_of(renameat2(&a, &b, libc::RENAME_NOREPLACE)),
        libc::EEXIST
    );
    assert_eq!(
        errno_of(renameat2(&a, &b, libc::RENAME_EXCHANGE)),
        libc::EINVAL
    );
    renameat2(&a, &c, libc::RENAME_NOREPLACE).expect("RENAME_NOREPLACE to a free name");
    assert_eq!(shown(&dir), ["b.txt", "c.txt"]);
    assert_eq!(std::fs::read(&b).expect("b"), b"b", "b.txt untouched");
    sync(&m.path());
    assert_eq!(
        listed(&rw, &[]),
        [("b.txt".to_string(), 1), ("c.txt".to_string(), 2)]
    );
    assert_eq!(rw.written("tombstones"), 0);
}

#[test]
fn status_lists_a_pending_rename_and_a_pending_delete() {
    let rw = Rw::new(&[("a.txt", b"a"), ("c.txt", b"c")], &[]);
    let m = rw.mount(&["--allow-delete", "--quiet-period", "300"]);
    let dir = files(&m);
    mv(&[s(&dir.join("a.txt")), s(&dir.join("b.txt"))]);
    std::fs::remove_file(dir.join("c.txt")).expect("rm c.txt");
    let out = status(&m);
    let line = |name: &str| {
        out.lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{out}"))
            .to_string()
    };
    assert!(line("b.txt").contains("pending rename"), "{out}");
    assert!(line("c.txt").contains("pending delete"), "{out}");
    assert!(
        !out.contains("a.txt"),
        "the old name is no change of its own:\n{out}"
    );
    assert_eq!(
        xattr(&dir.join("b.txt"), "user.aps.sync").as_deref(),
        Ok("pending rename")
    );
    assert_eq!(
        writes(&rw.stats()).values().sum::<u64>(),
        0,
        "nothing sent yet"
    );
}

#[test]
fn mv_over_another_file_s_name_is_a_version_of_it_and_a_delete_with_allow_delete() {
    let rw = Rw::new(&[("a.txt", b"aaa"), ("b.txt", b"bbb")], &[]);
    let before = rt().block_on(items(&rw.emu, &[]));
    let m = rw.mount(&[]);
    let dir = files(&m);
    assert_eq!(
        errno_of(std::fs::rename(dir.join("a.txt"), dir.join("b.txt"))),
        libc::EPERM,
        "without --allow-delete"
    );
    assert_eq!(shown(&dir), ["a.txt", "b.txt"]);
    drop(m);
    assert_eq!(writes(&rw.stats()).values().sum::<u64>(), 0);

    let m = rw.mount(&["--allow-delete"]);
    let dir = files(&m);
    mv(&[s(&dir.join("a.txt")), s(&dir.join("b.txt"))]);
    assert_eq!(shown(&dir), ["b.txt"]);
    assert_eq!(std::fs::read(dir.join("b.txt")).expect("b"), b"aaa");
    sync(&m.path());
    let after = rt().block_on(items(&rw.emu, &[]));
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(
        (
            after[0].name.as_str(),
            after[0].item.as_str(),
            after[0].version
        ),
        ("b.txt", before[1].item.as_str(), 2),
        "a version of b.txt's item"
    );
    assert_eq!(saved_bytes(&rw, &[], "b.txt"), b"aaa");
    let a = rt().block_on(versions(&rw.emu, &before[0].item));
    assert_eq!(ext(&a[0]), TOMBSTONE, "a.txt's item deleted");
    let w = rw.stats()["writes"].clone();
    assert_eq!(
        (
            w["versions_created"].as_u64(),
            w["tombstones"].as_u64(),
            w["storage_created"].as_u64()
        ),
        (Some(2), Some(1), Some(0)),
        "{w}"
    );
}

#[test]
fn on_a_team_hub_rm_rmdir_and_mv_over_a_name_answer_eperm_and_say_why() {
    let rw = Rw::team(&[("a.txt", b"aaa"), ("b.txt", b"bbb"), ("Empty/", b"")]);
    let log = tempfile::NamedTempFile::new().expect("log file");
    let m = rw.mount_logged(&["--allow-delete"], log.path());
    let dir = files(&m);
    assert_eq!(
        errno_of(std::fs::remove_file(dir.join("a.txt"))),
        libc::EPERM
    );
    assert_eq!(
        errno_of(std::fs::remove_dir(dir.join("Empty"))),
        libc::EPERM
    );
    assert_eq!(
        errno_of(std::fs::rename(dir.join("a.txt"), dir.join("b.txt"))),
        libc::EPERM
    );
    std::thread::sleep(Duration::from_millis(1500));
    sync(&m.path());
    assert_eq!(writes(&rw.stats()).values().sum::<u64>(), 0, "nothing sent");
    assert_eq!(shown(&dir), ["Empty", "a.txt", "b.txt"]);
    let text = std::fs::read_to_string(log.path()).expect("log");
    let refusals = text
        .lines()
        .filter(|l| l.contains("this hub type keeps no deleted files"))
        .count();
    assert_eq!(refusals, 3, "one log line per refusal:\n{text}");
}

#[test]
fn renames_undone_or_chained_before_the_commit_send_their_end_state_once() {
    let rw = Rw::new(
        &[("a.txt", b"aaa"), ("u.txt", b"uuu"), ("e.txt", b"eee")],
        &[],
    );
    let m = rw.mount(&[]);
    let dir = files(&m);
    let p = |n: &str| dir.join(n);
    // A chain: one version under the last name.
    mv(&[s(&p("a.txt")), s(&p("b.txt"))]);
    mv(&[s(&p("b.txt")), s(&p("c.txt"))]);
    // Undone: nothing.
    mv(&[s(&p("u.txt")), s(&p("v.txt"))]);
    mv(&[s(&p("v.txt")), s(&p("u.txt"))]);
    // Through a backup name and back (as editors do): nothing.
    mv(&[s(&p("e.txt")), s(&p("e.txt~"))]);
    mv(&[s(&p("e.txt~")), s(&p("e.txt"))]);
    assert_eq!(shown(&dir), ["c.txt", "e.txt", "u.txt"]);
    sync(&m.path());
    assert_eq!(
        listed(&rw, &[]),
        [
            ("c.txt".to_string(), 2),
            ("e.txt".to_string(), 1),
            ("u.txt".to_string(), 1)
        ]
    );
    let w = rw.stats()["writes"].clone();
    assert_eq!(w["versions_created"], 1, "{w}");
    assert_eq!(w["storage_created"], 0, "{w}");
}

#[test]
fn two_files_swapped_through_a_temporary_name_are_a_version_of_each() {
    let rw = Rw::new(&[("a.txt", b"aaa"), ("b.txt", b"bbb")], &[]);
    let before = rt().block_on(items(&rw.emu, &[]));
    let m = rw.mount(&["--allow-delete"]);
    let dir = files(&m);
    let p = |n: &str| s(&dir.join(n)).to_string();
    mv(&[&p("a.txt"), &p("t.txt")]);
    mv(&[&p("b.txt"), &p("a.txt")]);
    mv(&[&p("t.txt"), &p("b.txt")]);
    sync(&m.path());
    let after = rt().block_on(items(&rw.emu, &[]));
    let ids: Vec<(&str, &str, u64)> = after
        .iter()
        .map(|i| (i.name.as_str(), i.item.as_str(), i.version))
        .collect();
    assert_eq!(
        ids,
        [
            ("a.txt", before[0].item.as_str(), 2),
            ("b.txt", before[1].item.as_str(), 2)
        ],
        "identity is the name"
    );
    assert_eq!(saved_bytes(&rw, &[], "a.txt"), b"bbb");
    assert_eq!(saved_bytes(&rw, &[], "b.txt"), b"aaa");
    let w = rw.stats()["writes"].clone();
    for none in ["tombstones", "items_created", "storage_created"] {
        assert_eq!(w[none], 0, "{none}: {w}");
    }
}

#[test]
fn a_case_only_rename_keeps_the_item_on_both_hub_types() {
    let team = Rw::team(&[("a.txt", b"aaa")]);
    let bim = Rw::new(&[("a.txt", b"aaa")], &[]);
    let before: Vec<String> = [&team, &bim]
        .iter()
        .map(|rw| rt().block_on(item_names(&rw.emu, &[]))[0].1.clone())
        .collect();
    for (rw, id, tip) in [(&team, &before[0], 1), (&bim, &before[1], 2)] {
        let m = rw.mount(&[]);
        let dir = files(&m);
        mv(&[s(&dir.join("a.txt")), s(&dir.join("A.txt"))]);
        sync(&m.path());
        assert_eq!(shown(&dir), ["A.txt"]);
        assert_eq!(
            rt().block_on(item_names(&rw.emu, &[])),
            [("A.txt".to_string(), id.clone(), tip)]
        );
    }
    assert_eq!(team.written("items_renamed"), 1);
    assert_eq!(bim.written("versions_created"), 1);
}

#[test]
fn rm_r_of_a_folder_deletes_its_files_and_hides_it() {
    let rw = Rw::new(
        &[
            ("dir/x.txt", b"x"),
            ("dir/sub/y.txt", b"y"),
            ("keep.txt", b"k"),
        ],
        &[],
    );
    let ids: Vec<String> = [&["dir"][..], &["dir", "sub"]]
        .iter()
        .flat_map(|p| rt().block_on(items(&rw.emu, p)))
        .map(|i| i.item)
        .collect();
    let m = rw.mount(&["--allow-delete"]);
    let dir = files(&m);
    std::fs::write(dir.join("dir/new.txt"), b"never sent").expect("new file");
    let (code, out, err) = run("rm", &["-r", s(&dir.join("dir"))]);
    assert_eq!(code, 0, "rm -r: {out}{err}");
    assert_eq!(shown(&dir), ["keep.txt"]);
    sync(&m.path());
    assert!(rt().block_on(folders(&rw.emu, &[])).is_empty());
    assert_eq!(listed(&rw, &[]), [("keep.txt".to_string(), 1)]);
    for id in &ids {
        let v = rt().block_on(versions(&rw.emu, id));
        assert_eq!(ext(&v[0]), TOMBSTONE, "{id}");
        assert_eq!(v.len(), 2, "{id}");
    }
    let w = rw.stats()["writes"].clone();
    assert_eq!(
        (
            w["folders_hidden"].as_u64(),
            w["tombstones"].as_u64(),
            w["items_created"].as_u64()
        ),
        (Some(2), Some(2), Some(0)),
        "{w}"
    );
    drop(m);
    let m = rw.mount(&["--allow-delete"]);
    assert_eq!(shown(&files(&m)), ["keep.txt"]);
    assert!(status(&m).contains("0 changes to send"));
}

#[test]
fn new_content_under_a_removed_name_is_a_version_not_a_delete() {
    let rw = Rw::new(&[("a.txt", b"aaa")], &[]);
    let id = rt().block_on(items(&rw.emu, &[]))[0].item.clone();
    let m = rw.mount(&["--allow-delete"]);
    let dir = files(&m);
    std::fs::remove_file(dir.join("a.txt")).expect("rm");
    std::fs::write(dir.join("a.txt"), b"again").expect("write");
    sync(&m.path());
    let now = rt().block_on(items(&rw.emu, &[]));
    assert_eq!(
        (now.len(), now[0].item.as_str(), now[0].version),
        (1, id.as_str(), 2)
    );
    assert_eq!(saved_bytes(&rw, &[], "a.txt"), b"again");
    assert_eq!(rw.written("tombstones"), 0);
}

#[test]
fn a_folder_moved_with_changes_pending_inside_sends_them_into_it() {
    let rw = Rw::new(
        &[("dir1/x.txt", b"x1"), ("dir1/r.txt", b"r"), ("dir2/", b"")],
        &[],
    );
    let m = rw.mount(&["--quiet-period", "300"]);
    let dir = files(&m);
    std::fs::write(dir.join("dir1/x.txt"), b"x2").expect("save");
    std::fs::write(dir.join("dir1/n.txt"), b"new").expect("new");
    mv(&[s(&dir.join("dir1/r.txt")), s(&dir.join("dir1/s.txt"))]);
    mv(&[s(&dir.join("dir1")), &format!("{}/", s(&dir.join("dir2")))]);
    assert_eq!(shown(&dir.join("dir2/dir1")), ["n.txt", "s.txt", "x.txt"]);
    assert_eq!(rw.written("folders_moved"), 1, "the folder at once");
    assert_eq!(
        rw.written("versions_created"),
        0,
        "its contents after the quiet period"
    );
    sync(&m.path());
    assert_eq!(
        listed(&rw, &["dir2", "dir1"]),
        [
            ("n.txt".to_string(), 1),
            ("s.txt".to_string(), 2),
            ("x.txt".to_string(), 2)
        ]
    );
    assert_eq!(saved_bytes(&rw, &["dir2", "dir1"], "x.txt"), b"x2");
}

/// Without `--allow-delete` a move to another folder could not remove the original after
/// `mv` copied it, so it is refused at once (EPERM, not EXDEV): `mv` fails, the original item
/// is untouched, and no copy is left in the other folder.
#[test]
fn mv_to_another_folder_without_allow_delete_fails_and_keeps_the_original() {
    let rw = Rw::new(&[("a.txt", b"aaa"), ("o/", b"")], &[]);
    let m = rw.mount(&[]);
    let dir = files(&m);
    let (code, _, err) = run("mv", &[s(&dir.join("a.txt")), s(&dir.join("o"))]);
    assert_ne!(code, 0, "mv: {err}");
    assert!(err.contains("not permitted"), "{err}");
    assert!(!dir.join("o/a.txt").exists(), "no copy left");
    sync(&m.path());
    assert_eq!(
        listed(&rw, &[]),
        [("a.txt".to_string(), 1)],
        "the original is intact"
    );
    assert!(listed(&rw, &["o"]).is_empty());
    assert_eq!(rw.written("tombstones"), 0);
    assert_eq!(rw.written("items_created"), 0);
}

/// `mv a.txt b.txt` while the quiet period runs, another client saves a new version of
/// a.txt's item, then the rename is sent: a rename changes the name only, so the item's tip
/// afterwards has their bytes. (Its tip's bytes, its versions newest first, and the writes
/// counters.) When this was written the client sent the rename as a version on the storage
/// it had seen (v1), putting the old bytes back over theirs without flagging a conflict.
fn rename_after_their_save(rw: &Rw) -> (Vec<u8>, Vec<Value>, Value) {
    let m = rw.mount(&["--quiet-period", "300"]);
    let dir = files(&m);
    mv(&[s(&dir.join("a.txt")), s(&dir.join("b.txt"))]);
    rt().block_on(
        rw.emu
            .put_file(&["Hub", "Project", "Files"], "a.txt", b"v2 theirs"),
    );
    sync(&m.path());
    let now = rt().block_on(item_names(&rw.emu, &[]));
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0].0, "b.txt");
    let all = rt().block_on(versions(&rw.emu, &now[0].1));
    let tip = rt().block_on(version_bytes(&rw.emu, &all[0]));
    (tip, all, rw.stats()["writes"].clone())
}

#[test]
fn a_rename_sent_after_another_client_s_version_keeps_their_bytes_on_a_team_hub() {
    let rw = Rw::team(&[("a.txt", b"v1 mine")]);
    let (tip, all, w) = rename_after_their_save(&rw);
    assert_eq!(
        String::from_utf8_lossy(&tip),
        "v2 theirs",
        "the rename put the old bytes back over their version; versions {:?}, writes {w}",
        all.iter().map(vname).collect::<Vec<_>>()
    );
    assert_eq!(w["items_renamed"], 1, "{w}");
    assert_eq!(w["versions_created"], 1, "their version only: {w}");
}

#[test]
fn a_rename_sent_after_another_client_s_version_keeps_their_bytes_on_bim360() {
    let rw = Rw::new(&[("a.txt", b"v1 mine")], &[]);
    let (tip, all, w) = rename_after_their_save(&rw);
    assert_eq!(
        String::from_utf8_lossy(&tip),
        "v2 theirs",
        "the rename put the old bytes back over their version; versions {:?}, writes {w}",
        all.iter().map(vname).collect::<Vec<_>>()
    );
    assert_eq!(vname(&all[0]), "b.txt");
    assert_eq!(all.len(), 3, "v1, theirs, the rename");
}

/// The rotation `mv report.pdf report-old.pdf; mv draft.pdf report.pdf` within one quiet
/// period renames both items (no delete, so no `--allow-delete`), whatever the timing.
#[test]
fn a_rotation_of_names_renames_both_items_without_allow_delete() {
    let rw = Rw::new(&[("report.pdf", b"old"), ("draft.pdf", b"new")], &[]);
    let before = rt().block_on(item_names(&rw.emu, &[]));
    let m = rw.mount(&["--quiet-period", "300"]);
    let dir = files(&m);
    mv(&[s(&dir.join("report.pdf")), s(&dir.join("report-old.pdf"))]);
    mv(&[s(&dir.join("draft.pdf")), s(&dir.join("report.pdf"))]);
    assert_eq!(shown(&dir), ["report-old.pdf", "report.pdf"]);
    sync(&m.path());
    let after = rt().block_on(item_names(&rw.emu, &[]));
    let id_of = |names: &[(String, String, u64)], n: &str| {
        names
            .iter()
            .find(|(name, _, _)| name == n)
            .map(|(_, id, _)| id.clone())
    };
    assert_eq!(
        id_of(&after, "report-old.pdf"),
        id_of(&before, "report.pdf")
    );
    assert_eq!(id_of(&after, "report.pdf"), id_of(&before, "draft.pdf"));
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(saved_bytes(&rw, &[], "report.pdf"), b"new");
    assert_eq!(saved_bytes(&rw, &[], "report-old.pdf"), b"old");
    assert_eq!(rw.written("tombstones"), 0);
    assert_eq!(rw.written("items_created"), 0);
    assert_eq!(rw.written("storage_created"), 0);
}
