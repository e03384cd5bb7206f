//! Keeping files on this device through a real mount: `apsfs pin` downloads a folder into the
//! disk cache and reports it, `apsfs status` shows it, pinned blocks survive LRU pressure and
//! remounts, an interrupted pin resumes without fetching anything twice, pinned files stay
//! readable with the service gone, and `apsfs unpin` lets them go.

use crate::support::binary::APSFS;
use crate::support::emulator::Emulator;
use crate::support::files::seed_file;
use crate::support::mount::Mount;
use crate::support::process::{apsfs_cmd, run, s};
use crate::support::runtime::rt;
use crate::support::xattr::xattr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

const PINNED: &str = "Hub/Project/Files/Pinned";
const OTHER: &str = "Hub/Project/Files/Other";
/// Files of the pinned folder: a multi-MiB one ending in a short block, an exact block, a
/// small and an empty one.
const PINNED_FILES: [(&str, usize); 4] = [
    ("big.bin", (6 << 20) + 12_345),
    ("empty", 0),
    ("small.txt", 300),
    ("sub/exact.bin", 1 << 20),
];
const OTHER_FILES: [(&str, usize); 3] = [
    ("o1.bin", 8 << 20),
    ("o2.bin", 8 << 20),
    ("o3.bin", 3 << 20),
];

/// Bytes no two files share, so a block in the wrong place shows.
fn body(name: &str, len: usize) -> Vec<u8> {
    let mut x = name
        .bytes()
        .fold(0x9e37_79b9_u32, |h, b| h.rotate_left(5) ^ u32::from(b));
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn seed() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    for (dir, files) in [(PINNED, &PINNED_FILES[..]), (OTHER, &OTHER_FILES[..])] {
        for (name, len) in files {
            seed_file(&d.path().join(dir).join(name), &body(name, *len));
        }
    }
    d
}

fn apsfs(args: &[&str]) -> (i32, String, String) {
    run(APSFS, args)
}

/// `user.apsfs.cached` of a file: bytes of it on disk.
fn cached(path: &Path) -> u64 {
    xattr(path, "user.apsfs.cached")
        .unwrap_or_else(|errno| panic!("getxattr: errno {errno}"))
        .parse()
        .expect("number")
}

/// Reads a file through the mount, dropping its cached pages first so the mount is asked.
fn read_uncached(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    // SAFETY: advice on an open descriptor.
    unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    let mut out = Vec::new();
    f.read_to_end(&mut out)?;
    Ok(out)
}

fn served(emu: &Emulator, rt: &tokio::runtime::Runtime) -> u64 {
    rt.block_on(emu.stats())["bytes_served"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn pin_status_eviction_and_unpin() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    let rt = rt();
    let cache = tempfile::tempdir().expect("cache dir");
    let opts = ["--cache-dir", s(cache.path()), "--cache-size", "16MiB"];
    let mnt = Mount::start(&emu.base, &opts);

    let (code, out, err) = apsfs(&["pin", s(&mnt.join(PINNED))]);
    assert_eq!(code, 0, "pin: {out} {err}");
    assert!(
        out.contains("pinned 4 files, 7.0 MiB (7.0 MiB downloaded) in "),
        "summary: {out}"
    );
    for (name, len) in PINNED_FILES {
        assert_eq!(cached(&mnt.join(PINNED).join(name)), len as u64, "{name}");
    }
    let (code, out, _) = apsfs(&["status", s(&mnt.path())]);
    assert_eq!(code, 0);
    assert!(
        out.contains("pinned: 4 files, 7.0 MiB (100% on disk)"),
        "{out}"
    );
    for (name, _) in PINNED_FILES {
        let line = out
            .lines()
            .find(|l| l.ends_with(&format!("{PINNED}/{name}")))
            .unwrap_or_else(|| panic!("{name} not in status:\n{out}"));
        assert!(line.trim_start().starts_with("100%"), "{line}");
    }
    // Without an argument: every apsfs mount, this one included.
    let (code, all, _) = apsfs(&["status"]);
    assert_eq!(code, 0);
    assert!(all.contains(s(&mnt.path())), "{all}");

    // LRU pressure: 19 MiB of other files through a 16 MiB cache holding 7 MiB of pins.
    for (name, len) in OTHER_FILES {
        assert_eq!(
            read_uncached(&mnt.join(OTHER).join(name))
                .expect("read")
                .len(),
            len
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    for (name, len) in PINNED_FILES {
        assert_eq!(
            cached(&mnt.join(PINNED).join(name)),
            len as u64,
            "{name} kept"
        );
    }
    // More than the capacity cannot be pinned; nothing of the attempt stays pinned.
    let (code, _, err) = apsfs(&["pin", s(&mnt.join(OTHER))]);
    assert_ne!(code, 0);
    assert!(err.contains("not enough room in the disk cache"), "{err}");
    assert!(
        err.contains("7.0 MiB of the cache's 16.0 MiB is pinned already"),
        "{err}"
    );
    let (_, out, _) = apsfs(&["status", s(&mnt.path())]);
    assert!(out.contains("pinned: 4 files"), "{out}");
    assert!(!out.contains(OTHER), "{out}");
    drop(mnt);

    // A remount finds every pinned byte on disk: nothing is downloaded.
    let mnt = Mount::start(&emu.base, &opts);
    rt.block_on(emu.reset_stats());
    for (name, len) in PINNED_FILES {
        let bytes = read_uncached(&mnt.join(PINNED).join(name)).expect("read pinned");
        assert!(bytes == body(name, len), "{name}: right bytes");
    }
    assert_eq!(
        served(&emu, &rt),
        0,
        "pinned files came from the disk cache"
    );

    // Unpinning a folder removes its files from the status; again is harmless.
    let (code, out, err) = apsfs(&["unpin", s(&mnt.join(PINNED).join("sub"))]);
    assert_eq!((code, out.trim()), (0, "unpinned 1 file, 1.0 MiB"), "{err}");
    let (code, out, _) = apsfs(&["unpin", s(&mnt.join(PINNED).join("sub"))]);
    assert_eq!(
        (code, out.trim()),
        (0, "unpinned 0 files, 0 B (1 was not pinned)")
    );
    let (_, out, _) = apsfs(&["status", s(&mnt.path())]);
    assert!(out.contains("pinned: 3 files"), "{out}");
    assert!(!out.contains("exact.bin"), "{out}");
    assert!(out.contains("big.bin"), "{out}");
}

#[test]
fn a_mount_without_a_disk_cache_says_so() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &[]);
    let (code, _, err) = apsfs(&["pin", s(&mnt.join(PINNED))]);
    assert_ne!(code, 0);
    assert!(
        err.contains("this mount has no disk cache; remount with --cache-dir"),
        "{err}"
    );
    let (code, out, _) = apsfs(&["status", s(&mnt.path())]);
    assert_eq!(code, 0);
    assert!(out.contains("no disk cache"), "{out}");
    let outside = tempfile::NamedTempFile::new().expect("temp file");
    let (code, _, err) = apsfs(&["pin", s(outside.path())]);
    assert_ne!(code, 0);
    assert!(err.contains("is not inside an apsfs mount"), "{err}");
}

#[test]
fn an_interrupted_pin_downloads_only_the_rest() {
    let seed = tempfile::tempdir().expect("tempdir");
    let dir = seed.path().join(PINNED);
    let files = [("a.bin", 24 << 20), ("b.bin", (16 << 20) + 777)];
    for (name, len) in files {
        seed_file(&dir.join(name), &body(name, len));
    }
    let total: u64 = files.iter().map(|(_, n)| *n as u64).sum();
    let emu = Emulator::seeded(seed.path(), &["--bandwidth-mib", "1"]);
    let rt = rt();
    let cache = tempfile::tempdir().expect("cache dir");
    let mnt = Mount::start(
        &emu.base,
        &["--cache-dir", s(cache.path()), "--cache-size", "1GiB"],
    );
    let on_disk = || -> u64 {
        files
            .iter()
            .map(|(n, _)| cached(&mnt.join(PINNED).join(n)))
            .sum()
    };

    // Killed (as by Ctrl-C or kill) part-way through.
    let mut child = apsfs_cmd(&["pin", s(&mnt.join(PINNED))], &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn pin");
    let deadline = Instant::now() + Duration::from_secs(60);
    while on_disk() < 4 << 20 {
        assert!(Instant::now() < deadline, "pin made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill");
    child.wait().expect("wait");
    // Reads the mount had in flight at the kill still finish (and land on disk): wait until
    // the service has sent nothing for a second, so "missing" is measured after them.
    let mut last = served(&emu, &rt);
    let quiet = Instant::now() + Duration::from_secs(60);
    loop {
        std::thread::sleep(Duration::from_millis(1000));
        let now = served(&emu, &rt);
        if now == last || Instant::now() > quiet {
            break;
        }
        last = now;
    }
    let before = on_disk();
    assert!(
        before < total,
        "interrupted before the end: {before} of {total}"
    );

    rt.block_on(async {
        let (status, _) = emu.put_faults(&serde_json::json!({})).await;
        assert_eq!(status, 200);
        emu.reset_stats().await;
    });
    let (code, out, err) = apsfs(&["pin", s(&mnt.join(PINNED))]);
    assert_eq!(code, 0, "{out} {err}");
    let downloaded = served(&emu, &rt);
    let missing = total - before;
    eprintln!("resume: {before} of {total} on disk before, {downloaded} downloaded after");
    assert!(
        downloaded >= missing && downloaded <= missing + (2 << 20),
        "resumed: {downloaded} bytes downloaded for {missing} missing"
    );
    assert!(out.contains("pinned 2 files, 40.0 MiB ("), "{out}");
    assert_eq!(on_disk(), total);
    for (name, len) in files {
        let bytes = read_uncached(&mnt.join(PINNED).join(name)).expect("read");
        assert!(bytes == body(name, len), "{name}: right bytes");
    }

    // Complete: a third run reads nothing at all.
    rt.block_on(emu.reset_stats());
    let (code, out, _) = apsfs(&["pin", s(&mnt.join(PINNED))]);
    assert_eq!(code, 0);
    assert!(out.contains("(0 B downloaded)"), "{out}");
    assert_eq!(served(&emu, &rt), 0);
}

#[test]
fn pinned_files_stay_readable_offline() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    let cache = tempfile::tempdir().expect("cache dir");
    let mnt = Mount::start(
        &emu.base,
        &["--cache-dir", s(cache.path()), "--metadata-ttl", "1"],
    );
    let (code, out, err) = apsfs(&["pin", s(&mnt.join(PINNED))]);
    assert_eq!(code, 0, "{out} {err}");
    // Listed, never read: known by name, not on disk.
    assert_eq!(std::fs::read_dir(mnt.join(OTHER)).expect("ls").count(), 3);

    drop(emu);
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    for (name, len) in PINNED_FILES {
        let bytes = read_uncached(&mnt.join(PINNED).join(name))
            .unwrap_or_else(|e| panic!("{name} offline: {e}"));
        assert!(bytes == body(name, len), "{name}: right bytes offline");
    }
    // The first lookup past the TTL waits for the retries to give up; the rest are at once.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let (code, out, _) = apsfs(&["status", s(&mnt.path())]);
    assert_eq!(code, 0);
    assert!(out.contains("(100% on disk)"), "{out}");

    // An unpinned file that was never read fails, promptly.
    let started = Instant::now();
    let err = read_uncached(&mnt.join(OTHER).join("o3.bin")).expect_err("not on disk");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

/// `apsfs status` says what the mount asked of the service since it started: requests by kind,
/// retries, 429s, bytes downloaded and the disk cache's share of what was read; `--json`
/// gives the same as one JSON object per mount.
#[test]
fn status_counts_requests_retries_throttling_downloads_and_cache_hits() {
    let seed = tempfile::tempdir().expect("seed");
    let body = vec![7u8; 300 << 10];
    seed_file(&seed.path().join("Hub/Project/Files/a.bin"), &body);
    // Every other request is throttled once: the mount retries them (Retry-After: 1).
    let emu = Emulator::seeded(seed.path(), &["--throttle-rate", "0.3"]);
    let cache = tempfile::tempdir().expect("cache");
    let status = |mnt: &Mount| -> serde_json::Value {
        let (code, out, err) = apsfs(&["status", "--json", s(&mnt.path())]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(out.trim()).expect("one JSON line")
    };
    let first = Mount::start(&emu.base, &["--cache-dir", s(cache.path())]);
    let file = first.join("Hub/Project/Files/a.bin");
    assert_eq!(std::fs::read(&file).expect("first read"), body);
    let v = status(&first);
    let service = &v["service"];
    let n = |k: &str| service[k].as_u64().unwrap_or(0);
    assert!(
        service["requests"]["folder_contents"].as_u64().unwrap_or(0) >= 1,
        "{v}"
    );
    assert!(
        service["requests"]["download"].as_u64().unwrap_or(0) >= 1,
        "{v}"
    );
    assert_eq!(n("downloaded"), body.len() as u64, "{v}");
    assert_eq!(n("cache_miss"), body.len() as u64, "{v}");
    assert!(n("throttled") >= 1 && n("retries") >= n("throttled"), "{v}");
    assert!(v["cache"]["cache_dir"].is_string(), "{v}");
    drop(first);
    // A new mount of the same cache: its counters start again, and the read is all hits.
    let mnt = Mount::start(&emu.base, &["--cache-dir", s(cache.path())]);
    let file = mnt.join("Hub/Project/Files/a.bin");
    assert_eq!(std::fs::read(&file).expect("read from the cache"), body);
    let v = status(&mnt);
    assert_eq!(
        v["service"]["cache_hit"].as_u64(),
        Some(body.len() as u64),
        "{v}"
    );
    assert_eq!(v["service"]["downloaded"].as_u64(), Some(0), "{v}");
    let (_, text, _) = apsfs(&["status", s(&mnt.path())]);
    assert!(text.contains("service: "), "{text}");
    assert!(text.contains("answered 429"), "{text}");
    assert!(text.contains("read from the disk cache"), "{text}");
}
