//! Ownership and modes of a mount shared with other users (`--allow-other` with `--uid`,
//! `--gid`, `--file-mode`, `--dir-mode`): what `stat` shows, and what the kernel lets another
//! user do (`default_permissions`), checked by running commands as other users. Needs root
//! (to mount for everyone and to switch users); skipped with a note otherwise.

use crate::support::emulator::Emulator;
use crate::support::files::seed_file;
use crate::support::mount::Mount;
use crate::support::process::{run, run_apsfs, s};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

/// Whether the tests run as root.
fn root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `cmd args` as user and group `id` with no other groups; its exit code and stderr.
fn as_user(id: u32, cmd: &str, args: &[&str]) -> (i32, String) {
    let uid = format!("--reuid={id}");
    let gid = format!("--regid={id}");
    let mut all = vec![uid.as_str(), gid.as_str(), "--clear-groups", cmd];
    all.extend_from_slice(args);
    let (code, _, err) = run("setpriv", &all);
    (code, err)
}

/// A mount of a seeded `doc.txt` shared with everyone, with `extra` options; its folder.
fn shared(extra: &[&str]) -> (Emulator, Mount, tempfile::TempDir) {
    let seed = tempfile::tempdir().expect("seed");
    seed_file(&seed.path().join("Hub/Project/Files/doc.txt"), b"shared\n");
    let emu = Emulator::seeded(seed.path(), &[]);
    let mut args = vec!["--allow-other"];
    args.extend_from_slice(extra);
    let m = Mount::start(&emu.base, &args);
    // The test's temporary directory is the owner's only: let the other users reach the mount.
    let parent = m.path().parent().map(Path::to_path_buf).expect("parent");
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (emu, m, seed)
}

#[test]
fn uid_gid_and_modes_are_shown_and_enforced_for_other_users() {
    if !root() {
        eprintln!("skipped: needs root to mount for other users and to switch users");
        return;
    }
    let (_emu, m, _seed) = shared(&[
        "--uid",
        "65534",
        "--gid",
        "65534",
        "--file-mode",
        "0640",
        "--dir-mode",
        "0750",
    ]);
    let dir = m.join("Hub/Project/Files");
    let doc = dir.join("doc.txt");
    let meta = std::fs::metadata(&doc).expect("stat");
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
    // A read-only mount: the modes asked for, without their write bits.
    assert_eq!(meta.mode() & 0o7777, 0o440);
    let d = std::fs::metadata(&dir).expect("stat dir");
    assert_eq!(d.mode() & 0o7777, 0o550);
    // The owner reads; a user in neither the owner nor the group is refused by the kernel.
    let (code, err) = as_user(65534, "cat", &[s(&doc)]);
    assert_eq!(code, 0, "owner: {err}");
    let (code, err) = as_user(65533, "cat", &[s(&doc)]);
    assert_ne!(code, 0);
    assert!(err.contains("Permission denied"), "{err}");
    let (code, err) = as_user(65533, "ls", &[s(&dir)]);
    assert_ne!(code, 0);
    assert!(err.contains("Permission denied"), "{err}");
}

#[test]
fn modes_for_everyone_let_any_user_read_but_never_write_a_read_only_mount() {
    if !root() {
        eprintln!("skipped: needs root to mount for other users and to switch users");
        return;
    }
    let (_emu, m, _seed) = shared(&["--file-mode", "0666", "--dir-mode", "0777"]);
    let doc = m.join("Hub/Project/Files/doc.txt");
    let meta = std::fs::metadata(&doc).expect("stat");
    // Read-only: the write bits asked for are dropped, the rest kept.
    assert_eq!(meta.mode() & 0o7777, 0o444);
    let (code, err) = as_user(65533, "cat", &[s(&doc)]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_mode_that_is_not_octal_is_refused_before_mounting() {
    let out = run_apsfs(
        &["mount", "/nonexistent", "--file-mode", "0999"],
        &[],
        Duration::from_secs(10),
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("not an octal mode"), "{}", out.stderr);
}

#[test]
fn on_a_read_write_mount_the_owner_given_writes_and_others_may_not() {
    if !root() {
        eprintln!("skipped: needs root to mount for other users and to switch users");
        return;
    }
    let cache = tempfile::tempdir().expect("cache");
    let (_emu, m, _seed) = shared(&[
        "--read-write",
        "--cache-dir",
        s(cache.path()),
        "--uid",
        "65534",
        "--gid",
        "65534",
        "--file-mode",
        "0644",
        "--dir-mode",
        "0755",
    ]);
    let dir = m.join("Hub/Project/Files");
    assert_eq!(
        std::fs::metadata(dir.join("doc.txt")).expect("stat").mode() & 0o7777,
        0o644
    );
    let new = dir.join("new.txt");
    let write = format!("echo hello > '{}'", s(&new));
    let (code, err) = as_user(65534, "sh", &["-c", &write]);
    assert_eq!(code, 0, "the owner writes: {err}");
    assert_eq!(std::fs::read(&new).expect("read"), b"hello\n");
    let other = format!("echo no > '{}'", s(&dir.join("other.txt")));
    let (code, err) = as_user(65533, "sh", &["-c", &other]);
    assert_ne!(code, 0);
    assert!(err.contains("Permission denied"), "{err}");
    let (code, err) = as_user(65533, "sh", &["-c", &write]);
    assert_ne!(code, 0, "and may not change the owner's file: {err}");
}
