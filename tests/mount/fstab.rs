//! Mounting the way `/etc/fstab` and systemd do: `mount -t fuse -o OPTIONS PROGRAM#SOURCE
//! MOUNTPOINT` through fuse3's `mount.fuse3` helper (which runs `PROGRAM SOURCE MOUNTPOINT -o
//! OPTIONS`, as `-t fuse.apsfs` does with the `apsfs` on mount's `PATH`), credentials from a
//! `credentials_file`, an fstab line with `\040` for spaces, and `umount`. The program is named
//! by its path here: mount(8) runs helpers with a `PATH` of its own, which the test binary is
//! not on. Needs root and `mount.fuse3`; skipped with a note otherwise.

use crate::support::binary::APSFS;
use crate::support::emulator::Emulator;
use crate::support::files::seed_file;
use crate::support::mount::{is_mounted, mountpoint, UnmountGuard};
use crate::support::process::s;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Whether this machine can run `mount -t fuse.apsfs` here: root, and the helper installed.
fn can_mount() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    root && (Path::new("/sbin/mount.fuse3").exists() || Path::new("/usr/sbin/mount.fuse3").exists())
}

/// `mount ARGS`, without the test's credentials in the environment.
fn mount(args: &[&str]) -> (i32, String) {
    let out = Command::new("mount")
        .args(args)
        .env_remove("APS_CLIENT_ID")
        .env_remove("APS_CLIENT_SECRET")
        .output()
        .expect("run mount");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), err)
}

/// A private credentials file for the emulator's test app.
fn credentials(dir: &Path) -> String {
    let f = dir.join("apsfs.env");
    std::fs::write(
        &f,
        "# the app's credentials\nAPS_CLIENT_ID=test-client\nAPS_CLIENT_SECRET=test-secret\n",
    )
    .expect("write");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    s(&f).to_string()
}

/// Waits until `path` lists `name` (the mount answers), at most a few seconds.
fn shows(path: &Path, name: &str) -> bool {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if std::fs::read_dir(path)
            .map(|d| d.flatten().any(|e| e.file_name() == name))
            .unwrap_or(false)
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn mount_t_fuse_apsfs_with_a_credentials_file_mounts_one_project_and_umount_ends_it() {
    if !can_mount() {
        eprintln!("skipped: needs root and mount.fuse3");
        return;
    }
    let seed = tempfile::tempdir().expect("seed");
    seed_file(
        &seed.path().join("Hub/Project/Files/a.txt"),
        b"from fstab\n",
    );
    let emu = Emulator::seeded(seed.path(), &[]);
    let (_dir, mnt) = mountpoint();
    let _guard = UnmountGuard::new(&mnt);
    let opts = format!(
        "base_url={},credentials_file={},_netdev,nofail,metadata_ttl=5",
        emu.base,
        credentials(seed.path())
    );
    let source = format!("{APSFS}#Hub/Project");
    let (code, err) = mount(&["-t", "fuse", "-o", &opts, &source, s(&mnt)]);
    assert_eq!(code, 0, "mount: {err}");
    assert!(is_mounted(&mnt));
    assert!(shows(&mnt, "Files"), "the project's top folder");
    assert_eq!(
        std::fs::read(mnt.join("Files/a.txt")).expect("read"),
        b"from fstab\n"
    );
    let fstype = std::fs::read_to_string("/proc/self/mounts")
        .expect("mounts")
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(s(&mnt)))
        .map(|l| l.split(' ').nth(2).unwrap_or("").to_string());
    assert!(
        matches!(fstype.as_deref(), Some("fuse" | "fuse.apsfs")),
        "{fstype:?}"
    );
    let out = Command::new("umount").arg(&mnt).output().expect("umount");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!is_mounted(&mnt));
}

#[test]
fn an_fstab_line_with_escaped_spaces_mounts_with_mount_t_file() {
    if !can_mount() {
        eprintln!("skipped: needs root and mount.fuse3");
        return;
    }
    let seed = tempfile::tempdir().expect("seed");
    seed_file(
        &seed
            .path()
            .join("Acme Hub/Tower Project/Project Files/plan.txt"),
        b"tower\n",
    );
    let emu = Emulator::seeded(seed.path(), &[]);
    let (_dir, mnt) = mountpoint();
    let _guard = UnmountGuard::new(&mnt);
    let fstab = seed.path().join("fstab");
    std::fs::write(
        &fstab,
        format!(
            "{APSFS}#Acme\\040Hub/Tower\\040Project {} fuse base_url={},credentials_file={},_netdev,nofail 0 0\n",
            s(&mnt),
            emu.base,
            credentials(seed.path())
        ),
    )
    .expect("fstab");
    let (code, err) = mount(&["-T", s(&fstab), s(&mnt)]);
    assert_eq!(code, 0, "mount -T: {err}");
    assert!(shows(&mnt, "Project Files"));
    assert_eq!(
        std::fs::read(mnt.join("Project Files/plan.txt")).expect("read"),
        b"tower\n"
    );
    let out = Command::new("umount").arg(&mnt).output().expect("umount");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_credentials_file_others_may_read_is_refused() {
    if !can_mount() {
        eprintln!("skipped: needs root and mount.fuse3");
        return;
    }
    let seed = tempfile::tempdir().expect("seed");
    seed_file(&seed.path().join("Hub/Project/Files/a.txt"), b"x");
    let emu = Emulator::seeded(seed.path(), &[]);
    let creds = credentials(seed.path());
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (_dir, mnt) = mountpoint();
    let _guard = UnmountGuard::new(&mnt);
    let opts = format!("base_url={},credentials_file={creds}", emu.base);
    let source = format!("{APSFS}#Hub/Project");
    let (code, err) = mount(&["-t", "fuse", "-o", &opts, &source, s(&mnt)]);
    assert_ne!(code, 0);
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!is_mounted(&mnt));
}

/// The code block of README.md that follows the first line mentioning `file`.
fn readme_block(file: &str) -> String {
    let readme = include_str!("../../README.md");
    let from = readme.find(file).expect("README names the unit");
    let rest = &readme[from..];
    let start = rest.find("```\n").expect("a code block after it") + 4;
    let len = rest[start..].find("```").expect("the block ends");
    rest[start..start + len].to_string()
}

/// The two systemd units README.md documents are valid units (`systemd-analyze verify`, with
/// this apsfs for `/usr/local/bin/apsfs`). What they run is tested above and everywhere else
/// (`mount -t …` with their options; `apsfs mount --foreground` and `apsfs unmount`); they are
/// not started here: the test machines run no systemd.
#[test]
fn the_documented_systemd_units_verify() {
    let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    for name in ["mnt-tower.mount", "apsfs-tower.service"] {
        let unit = readme_block(name).replace("/usr/local/bin/apsfs", APSFS);
        assert!(unit.starts_with("[Unit]"), "{name}: {unit}");
        let path = dir.path().join(name);
        std::fs::write(&path, unit).expect("write unit");
        let out = Command::new(analyze)
            .args(["verify", "--man=no", s(&path)])
            .output()
            .expect("systemd-analyze");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {err}");
        assert!(err.trim().is_empty(), "{name}: {err}");
    }
}
