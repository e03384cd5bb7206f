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
    assert_eq!(first["requests"]["signed_get"], 300, "{first}");
    assert_eq!(count(&first, "signeds3download"), 0, "{first}");

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
    assert_eq!(fourth["requests"]["signed_get"], 5, "{fourth}");
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

fn count(stats: &serde_json::Value, route: &str) -> u64 {
    stats["requests"][route].as_u64().unwrap_or(0)
}

/// OSS requests of any kind (signing and bytes).
fn oss_requests(stats: &serde_json::Value) -> u64 {
    [
        "signeds3download",
        "batchsigneds3download",
        "signed_get",
        "object_details",
    ]
    .iter()
    .map(|r| count(stats, r))
    .sum()
}

/// Bytes of every file under `dir`, by path relative to it.
fn tree(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    crate::support::walk::walk(dir)
        .filter(|e| e.meta.is_file())
        .map(|e| (e.rel, std::fs::read(&e.path).expect("read")))
        .collect()
}

#[test]
fn a_backup_of_one_folder_is_signed_in_batches_and_fetched_ahead() {
    let seed = seed(300, 1);
    let want = tree(seed.path());
    for refuse in [false, true] {
        let extra: &[&str] = if refuse { &["--refuse-batch"] } else { &[] };
        let emu = Emulator::seeded(seed.path(), extra);
        let mnt = Mount::start(&emu.base, &[]);
        let rt = rt();

        // Walking the tree lists it and costs no OSS request.
        let (code, out, err) = run("ls", &["-lR", mnt.path().to_str().expect("utf-8")]);
        assert_eq!(code, 0, "ls -lR: {err}");
        assert!(out.contains("doc-0299.txt"));
        assert_eq!(oss_requests(&rt.block_on(emu.stats())), 0);

        rt.block_on(emu.reset_stats());
        let dest = tempfile::tempdir().expect("dest");
        let src = format!("{}/", mnt.path().display());
        let (code, _, err) = run(
            "rsync",
            &["-a", &src, &format!("{}/", dest.path().display())],
        );
        assert_eq!(code, 0, "rsync: {err}");
        assert!(
            tree(dest.path()) == want,
            "refused {refuse}: the copy differs"
        );
        let stats = rt.block_on(emu.stats());
        assert_eq!(count(&stats, "signed_get"), 300, "each file once: {stats}");
        if refuse {
            assert_eq!(
                count(&stats, "batchsigneds3download"),
                1,
                "asked once: {stats}"
            );
            assert_eq!(count(&stats, "signeds3download"), 300, "{stats}");
        } else {
            assert!(
                count(&stats, "batchsigneds3download") <= 300 / 25 + 2,
                "{stats}"
            );
            assert_eq!(count(&stats, "signeds3download"), 0, "{stats}");
        }
        let size: usize = want.values().map(Vec::len).sum();
        assert_eq!(stats["bytes_served"].as_u64(), Some(size as u64), "{stats}");
    }
}

#[test]
fn a_reader_that_stops_half_way_leaves_no_fetch_running() {
    let seed = seed(300, 1);
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &[]);
    let rt = rt();
    let folder = mnt.join("Hub/Project/Files/f00");
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    rt.block_on(emu.reset_stats());
    let mut read = 0;
    for name in &names[..150] {
        read += std::fs::read(folder.join(name)).expect("read").len();
    }
    std::thread::sleep(Duration::from_secs(1));
    let stopped = rt.block_on(emu.stats());
    std::thread::sleep(Duration::from_secs(1));
    let later = rt.block_on(emu.stats());
    assert_eq!(total_requests(&later), total_requests(&stopped), "{later}");
    let wasted = stopped["bytes_served"].as_u64().unwrap_or(0) - read as u64;
    // At most the 32 files fetched ahead, of at most 50 lines of 14 bytes each.
    assert!(
        wasted <= 32 * 50 * 14,
        "{wasted} bytes fetched and never read"
    );
    assert!(count(&stopped, "signed_get") <= 150 + 32, "{stopped}");
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
