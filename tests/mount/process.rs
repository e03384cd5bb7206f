//! Process faults and secrets: a killed mount is detected and cleaned up, `--auto-unmount`
//! cleans up by itself, a dead service gives EIO within a bound and the mount recovers when it
//! is back, and no log line ever carries a token or a client secret.

use crate::support::binary::APSFS;
use crate::support::emulator::Emulator;
use crate::support::files::seed_file;
use crate::support::http::http;
use crate::support::mount::{is_mounted, mountpoint, Foreground, Stderr};
use crate::support::process::{run, s};
use crate::support::runtime::rt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A foreground mount of `base` at `mnt` that must come up; its stderr goes to `log` when
/// given. Dropping it stops the process and unmounts.
fn held_mount(
    base: &str,
    mnt: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
    log: Option<&Path>,
) -> Foreground {
    let mut args = vec!["--base-url", base];
    args.extend_from_slice(extra);
    let stderr = match log {
        Some(p) => Stderr::File(p),
        None => Stderr::Discard,
    };
    let fg = Foreground::spawn(mnt, &args, env, stderr);
    assert!(
        fg.first.starts_with("mounted "),
        "mount failed: {}",
        fg.first
    );
    fg
}

fn seed() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    for f in ["A", "B", "C"] {
        seed_file(
            &d.path().join(format!("Hub/Project/Files/{f}/x.txt")),
            f.repeat(100).as_bytes(),
        );
    }
    d
}

#[test]
fn a_killed_mount_is_cleaned_up_by_the_next_mount_and_by_unmount() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    let (dir, mnt) = mountpoint();
    let creds = ["--client-id", "c", "--client-secret", "s"];
    let mut first = held_mount(&emu.base, &mnt, &creds, &[], None);
    first.kill9();
    let err = std::fs::read_dir(&mnt).expect_err("dead mount");
    assert_eq!(err.raw_os_error(), Some(libc::ENOTCONN));

    // The next mount notices, says so, cleans up and mounts.
    let out = Command::new(APSFS)
        .arg("mount")
        .arg(&mnt)
        .args(["--base-url", &emu.base])
        .args(creds)
        .arg("--log-file")
        .arg(dir.path().join("log"))
        .output()
        .expect("mount again");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("stale mount"));
    assert_eq!(
        std::fs::read_dir(mnt.join("Hub/Project/Files"))
            .expect("works")
            .count(),
        3
    );

    // Kill that one too (it detached: find it by its mountpoint), then `apsfs unmount`.
    let pid = run("pgrep", &["-f", &format!("apsfs mount {}", mnt.display())]).1;
    for p in pid.split_whitespace() {
        let _ = run("kill", &["-9", p]);
    }
    std::thread::sleep(Duration::from_millis(300));
    let (code, _, err) = run(APSFS, &["unmount", mnt.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");
    assert!(!is_mounted(&mnt));
}

#[test]
fn auto_unmount_survives_sigkill() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    let (_dir, mnt) = mountpoint();
    let mut held = held_mount(
        &emu.base,
        &mnt,
        &["--client-id", "c", "--client-secret", "s", "--auto-unmount"],
        &[],
        None,
    );
    assert!(is_mounted(&mnt));
    held.kill9();
    let deadline = Instant::now() + Duration::from_secs(5);
    while is_mounted(&mnt) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!is_mounted(&mnt), "fusermount3 unmounted it");
}

#[test]
fn a_dead_service_is_eio_within_a_bound_and_the_mount_recovers() {
    let seed = seed();
    let listen = crate::support::net::free_listen();
    // The same address each time, so the mount finds the service again when it is back.
    let start = || Emulator::start_on(&listen, &["--seed-dir", s(seed.path())]);
    let emu = start();
    let (_dir, mnt) = mountpoint();
    let _held = held_mount(
        &emu.base,
        &mnt,
        &["--client-id", "c", "--client-secret", "s"],
        &[],
        None,
    );
    assert_eq!(
        std::fs::read_dir(mnt.join("Hub/Project/Files/A"))
            .expect("list")
            .count(),
        1
    );

    drop(emu);
    let t = Instant::now();
    let err = std::fs::read_dir(mnt.join("Hub/Project/Files/B")).expect_err("service down");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "failed after {:?}",
        t.elapsed()
    );
    // What was cached still answers.
    assert!(mnt.join("Hub/Project/Files/A/x.txt").exists());

    let emu = start();
    let n = std::fs::read_dir(mnt.join("Hub/Project/Files/B"))
        .expect("recovered")
        .count();
    assert_eq!(n, 1);
    assert_eq!(
        std::fs::read(mnt.join("Hub/Project/Files/B/x.txt")).expect("read"),
        b"B".repeat(100)
    );
    drop(emu);
}

#[test]
fn secrets_never_reach_the_log() {
    let seed = seed();
    let emu = Emulator::seeded(
        seed.path(),
        &[
            "--client-id",
            "app-id",
            "--client-secret",
            "very-secret-value-123",
        ],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let walk = |mnt: &Path| {
        let (code, _, _) = run(
            "cat",
            &[mnt
                .join("Hub/Project/Files/A/x.txt")
                .to_str()
                .expect("utf-8")],
        );
        assert_eq!(code, 0);
        let (code, _, _) = run("ls", &["-lR", mnt.to_str().expect("utf-8")]);
        assert_eq!(code, 0);
    };
    // Client credentials, at the most verbose log level.
    let mnt = dir.path().join("mnt1");
    std::fs::create_dir(&mnt).expect("mkdir");
    let log1 = dir.path().join("one.log");
    {
        let _held = held_mount(
            &emu.base,
            &mnt,
            &[],
            &[
                ("APS_CLIENT_ID", "app-id"),
                ("APS_CLIENT_SECRET", "very-secret-value-123"),
                ("RUST_LOG", "trace"),
            ],
            Some(&log1),
        );
        walk(&mnt);
    }
    // A ready token from the environment.
    let rt = rt();
    let token = rt.block_on(async {
        let r = http()
            .post(emu.url("/authentication/v2/token"))
            .basic_auth("app-id", Some("very-secret-value-123"))
            .form(&[("grant_type", "client_credentials"), ("scope", "data:read")])
            .send()
            .await
            .expect("token");
        let v: serde_json::Value = r.json().await.expect("json");
        v["access_token"].as_str().expect("token").to_string()
    });
    let mnt2 = dir.path().join("mnt2");
    std::fs::create_dir(&mnt2).expect("mkdir");
    let log2 = dir.path().join("two.log");
    {
        let _held = held_mount(
            &emu.base,
            &mnt2,
            &[],
            &[("APS_TOKEN", &token), ("RUST_LOG", "trace")],
            Some(&log2),
        );
        walk(&mnt2);
    }
    for log in [&log1, &log2] {
        let text = std::fs::read_to_string(log).expect("log");
        assert!(text.lines().count() > 20, "the trace log has content");
        assert!(
            !text.contains("very-secret-value-123"),
            "client secret in {}",
            log.display()
        );
        assert!(!text.contains(&token), "token in {}", log.display());
        // Signed URLs carry their signature in the query; logs show them without it.
        assert!(
            !text.contains("Signature="),
            "signed URL in {}",
            log.display()
        );
    }
}
