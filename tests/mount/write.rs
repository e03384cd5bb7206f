//! Read-write mounts: what desktop tools, `cp` and `rsync` save through a mount becomes versions
//! and items on the service, exactly once, with the right bytes, and nothing is lost when the
//! mount is killed or the service is away. Every check of what was saved reads the service's
//! API, never the mount.

use crate::support::emulator::Emulator;
use crate::support::files::seed_file;
use crate::support::mount::Mount;
use crate::support::process::{run, run_apsfs, s};
use crate::support::runtime::rt;
use crate::support::rw::{files, listed, pattern, rsync_into, saved_bytes, sync, until, Rw};
use crate::support::saved::{bytes, folders, items, versions};
use crate::support::xattr::xattr;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

#[test]
fn libreoffice_and_vim_saves_are_one_version_of_the_same_item() {
    let odt = make_odt();
    let rw = Rw::new(&[("doc.odt", &odt), ("notes.txt", b"first line\n")], &[]);
    let m = rw.mount(&[]);
    let before = rt().block_on(items(&rw.emu, &[]));

    let (code, out, err) = run(
        "/usr/bin/python3",
        &[
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mount/tools/lo_save.py"),
            s(&files(&m).join("doc.odt")),
            " and a sentence added by the test",
        ],
    );
    assert_eq!(code, 0, "LibreOffice save: {out}{err}");
    let (code, _, err) = run(
        "vim",
        &[
            "-E",
            "-s",
            "-N",
            "-u",
            "NONE",
            "-c",
            "normal Goadded by vim",
            "-c",
            "wq",
            s(&files(&m).join("notes.txt")),
        ],
    );
    assert_eq!(code, 0, "vim: {err}");
    sync(&m.path());

    let after = rt().block_on(items(&rw.emu, &[]));
    let names: Vec<&str> = after.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        ["doc.odt", "notes.txt"],
        "no lock or temporary file reached the service"
    );
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a.item, b.item, "{}: the same item", a.name);
        assert_eq!(
            a.version,
            b.version + 1,
            "{}: exactly one new version",
            a.name
        );
    }
    let saved = saved_bytes(&rw, &[], "doc.odt");
    assert_ne!(saved, odt, "the document changed");
    assert!(saved.starts_with(b"PK"), "still an ODF package");
    assert_eq!(
        saved_bytes(&rw, &[], "notes.txt"),
        b"first line\nadded by vim\n"
    );
    assert_eq!(rw.written("items_created"), 0);
}

/// A small OpenDocument text, made by LibreOffice itself.
fn make_odt() -> Vec<u8> {
    let d = tempfile::tempdir().expect("dir");
    std::fs::write(d.path().join("doc.txt"), "A document\n").expect("txt");
    let (code, out, err) = run(
        "soffice",
        &[
            "--headless",
            &format!(
                "-env:UserInstallation=file://{}/profile",
                d.path().display()
            ),
            "--convert-to",
            "odt",
            "--outdir",
            s(d.path()),
            s(&d.path().join("doc.txt")),
        ],
    );
    assert_eq!(code, 0, "soffice --convert-to: {out}{err}");
    std::fs::read(d.path().join("doc.odt")).expect("converted document")
}

#[test]
fn save_sequences_of_desktop_tools_are_one_version_each_and_helpers_stay_local() {
    let rw = Rw::new(
        &[
            ("memo.docx", b"v1"),
            ("book.xlsx", b"v1"),
            ("plan.dwg", b"v1"),
            ("notes.org", b"v1"),
        ],
        &[],
    );
    // Excel removes the original before renaming its temporary over it: a remove of what the
    // service has, which needs --allow-delete; the rename brings the name back before the
    // folder is sent, so nothing is deleted.
    let m = rw.mount(&["--allow-delete"]);
    let dir = files(&m);
    let before = rt().block_on(items(&rw.emu, &[]));
    let p = |n: &str| dir.join(n);
    let write = |n: &str, b: &[u8]| std::fs::write(p(n), b).expect(n);
    let mv =
        |a: &str, b: &str| std::fs::rename(p(a), p(b)).unwrap_or_else(|e| panic!("{a} → {b}: {e}"));
    // Word: owner file, new content in a temporary, the document renamed to a backup, the
    // temporary renamed to the document, the backup removed.
    write("~$memo.docx", b"owner");
    write("~WRD0000.tmp", b"word v2");
    mv("memo.docx", "~WRL0001.tmp");
    mv("~WRD0000.tmp", "memo.docx");
    std::fs::remove_file(p("~WRL0001.tmp")).expect("rm backup");
    // Excel: an extensionless temporary, the original deleted, the temporary renamed.
    write("Cedd4100", b"excel v2");
    std::fs::remove_file(p("book.xlsx")).expect("rm original");
    mv("Cedd4100", "book.xlsx");
    // AutoCAD: lock files, a temporary, the old drawing kept as .bak.
    write("plan.dwl", b"lock");
    write("plan.dwl2", b"lock");
    write("atmp0001.tmp", b"autocad v2");
    mv("plan.dwg", "plan.bak");
    mv("atmp0001.tmp", "plan.dwg");
    // Emacs: backup by renaming, then a new file under the name.
    mv("notes.org", "notes.org~");
    write("notes.org", b"emacs v2");
    sync(&m.path());

    let after = rt().block_on(items(&rw.emu, &[]));
    let names: Vec<&str> = after.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["book.xlsx", "memo.docx", "notes.org", "plan.dwg"]);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(
            (a.item.as_str(), a.version),
            (b.item.as_str(), 2),
            "{}",
            a.name
        );
    }
    for (name, want) in [
        ("memo.docx", &b"word v2"[..]),
        ("book.xlsx", b"excel v2"),
        ("plan.dwg", b"autocad v2"),
        ("notes.org", b"emacs v2"),
    ] {
        assert_eq!(saved_bytes(&rw, &[], name), want, "{name}");
    }
    assert_eq!(rw.written("items_created"), 0);
    assert_eq!(
        rw.written("tombstones"),
        0,
        "the Excel save deletes nothing"
    );
    assert_eq!(rw.written("items_renamed"), 0);
    // The helper files are still here, and only here.
    for kept in [
        "~$memo.docx",
        "plan.dwl",
        "plan.dwl2",
        "plan.bak",
        "notes.org~",
    ] {
        assert!(p(kept).exists(), "{kept} kept locally");
        assert_eq!(
            xattr(&p(kept), "user.aps.sync").as_deref(),
            Ok("local-only"),
            "{kept}"
        );
    }
    assert_eq!(
        std::fs::read(p("plan.bak")).expect("bak"),
        b"v1",
        "the backup has the old bytes"
    );
    drop(m);
    // Local-only files survive a remount.
    let m = rw.mount(&[]);
    assert_eq!(
        std::fs::read(files(&m).join("~$memo.docx")).expect("owner file"),
        b"owner"
    );
}

#[test]
fn rsync_into_the_mount_makes_each_item_once_and_a_second_rsync_sends_nothing() {
    let rw = Rw::new(&[], &[]);
    // 300 new items take six minutes within the documented 50 a minute; pacing is another
    // test's subject (`new_files_queue_within_the_item_limit_without_a_429`).
    let m = rw.mount(&["--rate-limits", "off"]);
    let src = tempfile::tempdir().expect("src");
    for i in 0..300 {
        let rel = format!("d{}/s{}/f{i:03}.bin", i % 5, i % 3);
        seed_file(&src.path().join(rel), &pattern(100 + i * 37, i as u8));
    }
    let dest = files(&m).join("copy");
    std::fs::create_dir(&dest).expect("mkdir copy");
    let rsync = || rsync_into(src.path(), &dest, &[]);
    rsync();
    sync(&m.path());
    let mut count = 0;
    for d in 0..5 {
        for s_ in 0..3 {
            let (dn, sn) = (format!("d{d}"), format!("s{s_}"));
            let saved = rt().block_on(items(&rw.emu, &["copy", &dn, &sn]));
            for item in &saved {
                assert!(
                    !item.name.starts_with('.'),
                    "no rsync temporary: {}",
                    item.name
                );
                assert_eq!(item.version, 1, "{}", item.name);
                let want =
                    std::fs::read(src.path().join(&dn).join(&sn).join(&item.name)).expect("src");
                assert_eq!(rt().block_on(bytes(&rw.emu, item)), want, "{}", item.name);
            }
            count += saved.len();
        }
    }
    assert_eq!(count, 300);
    assert_eq!(rw.written("items_created"), 300);

    let (versions_before, parts_before) = (rw.written("versions_created"), rw.written("parts_put"));
    rsync();
    sync(&m.path());
    assert_eq!(
        rw.written("versions_created"),
        versions_before,
        "a second rsync makes no version"
    );
    assert_eq!(rw.written("parts_put"), parts_before, "and uploads nothing");
    assert_eq!(rw.written("items_created"), 300);
}

#[test]
fn a_large_copy_is_one_item_with_the_right_bytes_in_bounded_memory() {
    let rw = Rw::new(&[], &[]);
    let m = rw.mount(&[]);
    let src = tempfile::tempdir().expect("src");
    let big = src.path().join("big.bin");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&big).expect("big");
        let chunk = pattern(1 << 20, 7);
        for i in 0..1024u32 {
            let mut c = chunk.clone();
            c[..4].copy_from_slice(&i.to_le_bytes());
            f.write_all(&c).expect("write");
        }
    }
    let (code, _, err) = run("cp", &[s(&big), s(&files(&m))]);
    assert_eq!(code, 0, "cp: {err}");
    sync(&m.path());
    let saved = rt().block_on(items(&rw.emu, &[]));
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].version, 1);
    let got = rt().block_on(bytes(&rw.emu, &saved[0]));
    assert!(
        got == std::fs::read(&big).expect("src"),
        "the service holds the copied bytes"
    );
    let peak = m.peak_rss_kib();
    assert!(
        peak < 300 << 10,
        "mount peak RSS {peak} KiB for a 1 GiB copy"
    );
    // Reading it back comes from what was staged: no download.
    let before = rw.stats()["requests"]["signed_get"].as_u64().unwrap_or(0);
    let (code, _, _) = run("cmp", &[s(&big), s(&files(&m).join("big.bin"))]);
    assert_eq!(code, 0);
    assert_eq!(
        rw.stats()["requests"]["signed_get"].as_u64().unwrap_or(0),
        before
    );
}

#[test]
fn kill_9_during_an_upload_or_before_the_item_loses_nothing_and_sends_once() {
    // During a part upload: parts are held by the service; the mount dies mid-upload.
    let rw = Rw::new(&[], &[]);
    let mut m = rw.mount(&[]);
    rw.faults(json!({"route_faults": {"signed_put": {"latency_ms": 30000}}}));
    let data = pattern(20 << 20, 3);
    std::fs::write(files(&m).join("a.bin"), &data).expect("write a.bin");
    until(Duration::from_secs(30), "a part upload", || {
        rw.stats()["routes"]["signed_put"].as_u64().unwrap_or(0) > 0
    });
    m.kill9();
    drop(m);
    rw.faults(json!({}));
    let m = rw.mount(&[]);
    sync(&m.path());
    assert_eq!(listed(&rw, &[]), [("a.bin".to_string(), 1)]);
    assert_eq!(saved_bytes(&rw, &[], "a.bin"), data);

    // After the upload completed, before the item: the service fails every item request, the
    // mount dies, and the next mount makes the item once.
    let mut m = m;
    rw.faults(json!({"route_faults": {"create_item": {"fail_next": 100000, "status": 503}}}));
    std::fs::write(files(&m).join("b.bin"), b"second file").expect("write b.bin");
    until(Duration::from_secs(30), "the completed upload", || {
        rw.written("uploads_completed") >= 2
    });
    std::thread::sleep(Duration::from_millis(300));
    m.kill9();
    drop(m);
    rw.faults(json!({}));
    let m = rw.mount(&[]);
    sync(&m.path());
    assert_eq!(
        listed(&rw, &[]),
        [("a.bin".to_string(), 1), ("b.bin".to_string(), 1)]
    );
    assert_eq!(saved_bytes(&rw, &[], "b.bin"), b"second file");
    assert_eq!(rw.written("items_created"), 2);
}

#[test]
fn kill_9_while_a_writer_holds_the_file_keeps_it_here_and_sends_nothing() {
    use std::io::Write;
    let rw = Rw::new(&[], &[]);
    let mut m = rw.mount(&[]);
    let path = files(&m).join("open.txt");
    let mut f = std::fs::File::create(&path).expect("create");
    f.write_all(b"half of it").expect("write");
    f.sync_all().expect("fsync");
    m.kill9();
    drop(f);
    drop(m);
    let m = rw.mount(&[]);
    let path = files(&m).join("open.txt");
    assert_eq!(std::fs::read(&path).expect("kept"), b"half of it");
    let state = xattr(&path, "user.aps.sync").expect("sync state");
    assert!(state.starts_with("recovered"), "{state}");
    let out = run_apsfs(&["status", s(&m.path())], &[], Duration::from_secs(20));
    assert!(
        out.stdout.contains("open.txt") && out.stdout.contains("recovered"),
        "{}",
        out.stdout
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(listed(&rw, &[]).is_empty(), "nothing sent");
    assert_eq!(rw.written("storage_created"), 0);
}

#[test]
fn saves_made_while_the_service_is_away_go_up_when_it_is_back() {
    let seed = tempfile::tempdir().expect("seed");
    seed_file(&seed.path().join("Hub/Project/Files/old.txt"), b"v1");
    let listen = crate::support::net::free_listen();
    let start = || Emulator::start_on(&listen, &["--seed-dir", s(seed.path())]);
    let emu = start();
    let cache = tempfile::tempdir().expect("cache");
    let m = Mount::start(
        &emu.base,
        &[
            "--read-write",
            "--cache-dir",
            s(cache.path()),
            "--quiet-period",
            "1",
        ],
    );
    let dir = files(&m);
    assert!(dir.join("old.txt").exists());
    drop(emu);
    // Saves succeed while the service is away.
    std::fs::write(dir.join("new.txt"), b"made offline").expect("new file offline");
    std::fs::write(dir.join("old.txt"), b"v2 offline").expect("save offline");
    std::thread::sleep(Duration::from_secs(3));
    let state = xattr(&dir.join("new.txt"), "user.aps.sync").expect("state");
    assert!(
        state.starts_with("error") || state.starts_with("pending"),
        "{state}"
    );
    let emu = start();
    sync(&m.path());
    let rw_items = rt().block_on(items(&emu, &[]));
    let names: Vec<(&str, u64)> = rw_items
        .iter()
        .map(|i| (i.name.as_str(), i.version))
        .collect();
    assert_eq!(names, [("new.txt", 1), ("old.txt", 2)]);
    for i in &rw_items {
        let want: &[u8] = if i.name == "new.txt" {
            b"made offline"
        } else {
            b"v2 offline"
        };
        assert_eq!(rt().block_on(bytes(&emu, i)), want);
    }
}

#[test]
fn a_save_after_another_client_s_version_is_the_next_version_and_a_conflict() {
    use std::io::Write;
    let rw = Rw::new(&[("plan.dwg", b"v1")], &[]);
    let m = rw.mount(&[]);
    let path = files(&m).join("plan.dwg");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    rt().block_on(
        rw.emu
            .put_file(&["Hub", "Project", "Files"], "plan.dwg", b"theirs"),
    );
    f.write_all(b"mine").expect("write");
    drop(f);
    sync(&m.path());
    let saved = rt().block_on(items(&rw.emu, &[]));
    assert_eq!(saved.len(), 1);
    let all = rt().block_on(versions(&rw.emu, &saved[0].item));
    assert_eq!(all.len(), 3, "v1, theirs and mine: nothing dropped");
    assert_eq!(rt().block_on(bytes(&rw.emu, &saved[0])), b"mine");
    let state = xattr(&path, "user.aps.sync").expect("state");
    assert!(state.starts_with("conflict"), "{state}");
    let out = run_apsfs(&["status", s(&m.path())], &[], Duration::from_secs(20));
    assert!(out.stdout.contains("conflict"), "{}", out.stdout);
}

#[test]
fn new_files_queue_within_the_item_limit_without_a_429() {
    let rw = Rw::new(&[], &["--rate-limits", "documented"]);
    let m = rw.mount(&[]);
    let src = tempfile::tempdir().expect("src");
    for i in 0..55 {
        seed_file(
            &src.path().join(format!("many/f{i:02}.txt")),
            format!("file {i}").as_bytes(),
        );
    }
    let (code, _, err) = run("cp", &["-r", s(&src.path().join("many")), s(&files(&m))]);
    assert_eq!(code, 0, "cp: {err}");
    // While the 51st and later wait for the minute to pass, status shows the queue.
    let t = Instant::now();
    until(Duration::from_secs(40), "fifty items", || {
        rw.written("items_created") >= 50
    });
    let out = run_apsfs(&["status", s(&m.path())], &[], Duration::from_secs(20));
    assert!(out.stdout.contains("queue:"), "{}", out.stdout);
    assert!(out.stdout.contains("to send"), "{}", out.stdout);
    sync(&m.path());
    assert!(
        t.elapsed() >= Duration::from_secs(20),
        "paced: {:?}",
        t.elapsed()
    );
    assert_eq!(listed(&rw, &["many"]).len(), 55);
    let stats = rw.stats();
    assert!(
        stats["statuses"]["201"].as_u64().unwrap_or(0) >= 55,
        "statuses counted: {stats}"
    );
    let throttled = stats["statuses"]["429"].as_u64().unwrap_or(0);
    assert_eq!(throttled, 0, "{stats}");
}

#[test]
fn opening_for_writing_without_a_change_or_touching_makes_no_version() {
    let rw = Rw::new(&[("a.txt", b"same")], &[]);
    let m = rw.mount(&[]);
    let path = files(&m).join("a.txt");
    drop(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open rw"),
    );
    let (code, _, err) = run("touch", &[s(&path)]);
    assert_eq!(code, 0, "touch: {err}");
    sync(&m.path());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(rw.written("storage_created"), 0);
    assert_eq!(rw.written("versions_created"), 0);
    assert_eq!(listed(&rw, &[]), [("a.txt".to_string(), 1)]);
}

#[test]
fn folders_names_and_what_is_not_done_yet_answer_at_once() {
    let rw = Rw::new(&[("a.txt", b"v1")], &[]);
    let m = rw.mount(&[]);
    let dir = files(&m);
    std::fs::create_dir(dir.join("Drawings")).expect("mkdir");
    assert_eq!(rt().block_on(folders(&rw.emu, &[])), ["Drawings"]);
    let again = std::fs::create_dir(dir.join("Drawings")).expect_err("exists");
    assert_eq!(again.raw_os_error(), Some(libc::EEXIST));
    let bad = std::fs::write(dir.join("a:b.txt"), b"x").expect_err("reserved character");
    assert_eq!(bad.raw_os_error(), Some(libc::EINVAL));
    let long = std::fs::write(dir.join("x".repeat(250)), b"x").expect_err("too long");
    assert_eq!(long.raw_os_error(), Some(libc::ENAMETOOLONG));
    // A file the service has moves to another folder only as a copy and a delete: without
    // --allow-delete that cannot finish, so it is refused at once (no copy is left behind).
    let mv = std::fs::rename(dir.join("a.txt"), dir.join("Drawings/a.txt")).expect_err("move");
    assert_eq!(mv.raw_os_error(), Some(libc::EPERM));
    let ln = std::fs::hard_link(dir.join("a.txt"), dir.join("c.txt")).expect_err("link");
    assert_eq!(ln.raw_os_error(), Some(libc::EPERM));
    let sl = std::os::unix::fs::symlink("a.txt", dir.join("d.txt")).expect_err("symlink");
    assert_eq!(sl.raw_os_error(), Some(libc::EPERM));
    // df shows room to save into.
    let (code, out, _) = run("df", &["--output=avail", s(&m.path())]);
    assert_eq!(code, 0);
    let avail: u64 = out
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    assert!(avail > 0, "df: {out}");
    std::fs::write(dir.join("Drawings/plan.dwg"), b"in a new folder").expect("write");
    sync(&m.path());
    assert_eq!(listed(&rw, &["Drawings"]), [("plan.dwg".to_string(), 1)]);
}

#[test]
fn unmounting_with_changes_pending_sends_them_first() {
    let rw = Rw::new(&[], &[]);
    let m = rw.mount(&["--quiet-period", "30"]);
    std::fs::write(files(&m).join("late.txt"), b"sent at unmount").expect("write");
    let pid = m.pid();
    let out = run_apsfs(&["unmount", s(&m.path())], &[], Duration::from_secs(30));
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    until(
        Duration::from_secs(60),
        "the mount process to finish",
        || {
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .is_ok_and(|s| s.contains("State:\tZ"))
        },
    );
    assert_eq!(listed(&rw, &[]), [("late.txt".to_string(), 1)]);
    drop(m);
}
