//! Backups from the mount: a repeated `rsync -a` downloads nothing that did not change, big
//! folders list correctly (with offsets the kernel may repeat), and a walk stays inside the
//! documented rate limits.

use crate::support::emulator::Emulator;
use crate::support::files::write_file;
use crate::support::mount::Mount;
use crate::support::process::run;
use crate::support::runtime::rt;
use std::time::Duration;

fn seed(files: usize, folders: usize) -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    for i in 0..files {
        let p = d.path().join(format!(
            "Hub/Project/Files/f{:02}/doc-{i:04}.txt",
            i % folders
        ));
        let body = format!("document {i}\n").repeat(1 + i % 50);
        write_file(&p, body.as_bytes(), 1_700_000_000 + i as u64);
    }
    d
}

fn total_requests(stats: &serde_json::Value) -> u64 {
    stats["requests"]
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
        .unwrap_or(0)
}

#[test]
fn repeated_rsync_downloads_only_what_changed() {
    let seed = seed(300, 12);
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &["--metadata-ttl", "2"]);
    let rt = rt();
    let dest = tempfile::tempdir().expect("dest");
    let src = format!("{}/", mnt.path().display());
    let dst = format!("{}/", dest.path().display());
    let rsync = || {
        let (code, _, err) = run("rsync", &["-a", &src, &dst]);
        assert_eq!(code, 0, "rsync: {err}");
    };

    rsync();
    let first = rt.block_on(emu.stats());
    assert_eq!(first["requests"]["signeds3download"], 300, "{first}");

    // Inside the TTL: nothing at all.
    rt.block_on(emu.reset_stats());
    rsync();
    let second = rt.block_on(emu.stats());
    assert_eq!(total_requests(&second), 0, "{second}");

    // After the TTL with nothing changed: no downloads, and only the few listings needed to
    // confirm the tree (the project's top folders confirm everything below them).
    std::thread::sleep(Duration::from_millis(2200));
    rt.block_on(emu.reset_stats());
    rsync();
    let third = rt.block_on(emu.stats());
    assert_eq!(
        third["requests"]["signeds3download"].as_u64().unwrap_or(0),
        0,
        "{third}"
    );
    assert_eq!(
        third["requests"]["signed_get"].as_u64().unwrap_or(0),
        0,
        "{third}"
    );
    assert_eq!(
        third["requests"]["folder_contents"].as_u64().unwrap_or(0),
        0,
        "{third}"
    );

    // Five files get new versions: exactly those five are downloaded.
    for i in [3usize, 40, 41, 150, 299] {
        let folder = format!("f{:02}", i % 12);
        rt.block_on(emu.put_file(
            &["Hub", "Project", "Files", &folder],
            &format!("doc-{i:04}.txt"),
            b"changed\n",
        ));
    }
    std::thread::sleep(Duration::from_millis(2200));
    rt.block_on(emu.reset_stats());
    rsync();
    let fourth = rt.block_on(emu.stats());
    assert_eq!(fourth["requests"]["signeds3download"], 5, "{fourth}");
    let changed =
        std::fs::read(dest.path().join("Hub/Project/Files/f03/doc-0003.txt")).expect("copied");
    assert_eq!(changed, b"changed\n");
}

#[test]
fn big_folders_list_completely_and_offsets_replay() {
    let emu = Emulator::start(&["--generate", "items=1,folders=0,flat=10000"]);
    let mnt = Mount::start(&emu.base, &[]);
    let rt = rt();
    let flat = mnt.join("Hub 1/Project 1/Project Files/Flat");
    let names: std::collections::HashSet<String> = std::fs::read_dir(&flat)
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 10_000);
    let stats = rt.block_on(emu.stats());
    assert_eq!(
        stats["requests"]["folder_contents"].as_u64(),
        Some(50 + 1),
        "50 pages + the top folder: {stats}"
    );
    for per_item in ["item", "item_tip", "version", "object_details"] {
        assert_eq!(
            stats["requests"][per_item].as_u64().unwrap_or(0),
            0,
            "{stats}"
        );
    }
    // `ls -l` answers from the listing: no lookups that cost requests.
    rt.block_on(emu.reset_stats());
    let (code, out, _) = run("ls", &["-l", flat.to_str().expect("utf-8")]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 10_001);
    assert_eq!(common_total(&rt.block_on(emu.stats())), 0);

    // The kernel asks again from an earlier offset (telldir/seekdir): the same names come back.
    let script = r#"
        opendir(my $d, $ARGV[0]) or die;
        readdir($d) for 1..5000;
        my $pos = telldir($d);
        my @a = map { scalar readdir($d) } 1..300;
        seekdir($d, $pos);
        my @b = map { scalar readdir($d) } 1..300;
        print join("\n", @a) eq join("\n", @b) ? "same\n" : "different\n";
    "#;
    let (code, out, err) = run("perl", &["-e", script, flat.to_str().expect("utf-8")]);
    assert_eq!((code, out.trim()), (0, "same"), "{err}");
}

fn common_total(stats: &serde_json::Value) -> u64 {
    total_requests(stats)
}

#[test]
fn a_walk_stays_within_the_documented_rate_limits() {
    // 341 folder listings: more than the 300 a minute the service allows one app.
    let emu = Emulator::start(&[
        "--generate",
        "items=2000,folders=340,depth=3",
        "--rate-limits",
        "documented",
    ]);
    let mnt = Mount::start(&emu.base, &[]);
    let rt = rt();
    let started = std::time::Instant::now();
    let (code, out, err) = run("find", &[mnt.path().to_str().expect("utf-8")]);
    assert_eq!(code, 0, "find: {err}");
    assert!(out.lines().count() > 2000);
    let stats = rt.block_on(emu.stats());
    assert_eq!(
        stats["statuses"]["429"].as_u64().unwrap_or(0),
        0,
        "no 429: {stats}"
    );
    assert!(
        stats["requests"]["folder_contents"].as_u64().unwrap_or(0) > 300,
        "{stats}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(50),
        "the budget held the walk back"
    );
}
