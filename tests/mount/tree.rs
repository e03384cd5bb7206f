//! A mount of an emulator seeded from a directory shows exactly that directory, costs one
//! listing per folder and no per-item requests, and answers everyday tools correctly.

use crate::support::emulator::Emulator;
use crate::support::files::{seed_file, set_mtime};
use crate::support::mount::Mount;
use crate::support::process::run;
use crate::support::runtime::rt;
use crate::support::walk::walk;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const MIB: usize = 1 << 20;

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    seed_file(&root.join(rel), bytes);
}

/// Bytes that differ at every offset, so a misplaced range shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + i / 251) as u8) ^ seed)
        .collect()
}

/// Sets whole-second mtimes and read-only modes bottom-up, as the mount will show them: a
/// folder `d` levels below `root` gets `t + 7d`, a file its folder's time plus whole hours.
fn settle(root: &Path, t: u64) {
    // Backwards, so every folder comes after what it holds.
    let entries: Vec<_> = walk(root).collect();
    for e in entries.iter().rev() {
        if e.meta.is_dir() {
            set_mtime(&e.path, t + 7 * e.depth as u64);
            std::fs::set_permissions(&e.path, std::fs::Permissions::from_mode(0o555))
                .expect("chmod dir");
        } else {
            let folder_t = t + 7 * (e.depth as u64 - 1);
            let hours = e.path.to_string_lossy().len() as u64 % 1000;
            set_mtime(&e.path, folder_t + hours * 3600);
            std::fs::set_permissions(&e.path, std::fs::Permissions::from_mode(0o444))
                .expect("chmod");
        }
    }
    set_mtime(root, t);
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o555)).expect("chmod dir");
}

fn seed_tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    let r = d.path();
    write(
        r,
        "Hub A/Project 1/Project Files/readme.txt",
        b"hello from the seed\n",
    );
    write(r, "Hub A/Project 1/Project Files/empty.bin", b"");
    write(
        r,
        "Hub A/Project 1/Project Files/big.bin",
        &pattern(5 * MIB + 123, 7),
    );
    write(
        r,
        "Hub A/Project 1/Project Files/a/b/c/deep.ifc",
        &pattern(70_000, 3),
    );
    write(
        r,
        "Hub A/Project 1/Project Files/設計図 平面.dwg",
        &pattern(4096, 9),
    );
    write(
        r,
        "Hub A/Project 1/Project Files/Ünïcødé façade.pdf",
        &pattern(333, 1),
    );
    write(
        r,
        "Hub A/Project 1/Plans/sheet A-101.pdf",
        &pattern(10_000, 5),
    );
    write(r, "Hub B/Second Project/Docs/notes.md", b"# notes\n");
    for i in 0..450 {
        write(
            r,
            &format!("Hub A/Project 1/Project Files/crowd/file-{i:03}.txt"),
            format!("item {i}\n").as_bytes(),
        );
    }
    let db = r.join("Hub A/Project 1/Project Files/data.sqlite");
    let (code, _, err) = run(
        "python3",
        &[
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('create table t(x)'); \
             c.executemany('insert into t values (?)', [(i,) for i in range(1000)]); c.commit(); c.close()",
            db.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 0, "python3 sqlite3: {err}");
    settle(r, 1_700_000_000);
    d
}

/// Folders below `dir`, at any depth.
fn folders_in(dir: &Path) -> usize {
    walk(dir).filter(|e| e.meta.is_dir()).count()
}

#[test]
fn mount_equals_seed_with_one_listing_per_folder() {
    let seed = seed_tree();
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &[]);
    let rt = rt();

    // First walk: metadata only.
    let (code, out, err) = run("ls", &["-lR", mnt.path().to_str().expect("utf-8")]);
    assert_eq!(code, 0, "ls -lR: {err}");
    assert!(out.contains("file-449.txt"));
    let stats = rt.block_on(emu.stats());
    let req = &stats["requests"];
    // Folders below project level, plus the 450-item folder's two extra pages.
    let top_and_below = folders_in(&seed.path().join("Hub A/Project 1"))
        + folders_in(&seed.path().join("Hub B/Second Project"))
        - 3; // the top folders come from topFolders, not contents
    let contents = req["folder_contents"].as_u64().unwrap_or(0);
    assert_eq!(
        contents as usize,
        top_and_below + 3 + 2,
        "one listing per folder (+2 pages): {stats}"
    );
    assert_eq!(req["top_folders"].as_u64(), Some(2), "{stats}");
    for per_item in [
        "item",
        "item_tip",
        "item_versions",
        "version",
        "signeds3download",
        "batchsigneds3download",
        "signed_get",
        "object_details",
    ] {
        assert_eq!(
            req[per_item].as_u64().unwrap_or(0),
            0,
            "no {per_item} requests while listing: {stats}"
        );
    }

    // Second walk inside the TTL: nothing at all.
    rt.block_on(emu.reset_stats());
    let (code, out2, _) = run("ls", &["-lR", mnt.path().to_str().expect("utf-8")]);
    assert_eq!(code, 0);
    assert_eq!(out, out2);
    let stats = rt.block_on(emu.stats());
    let total: u64 = stats["requests"]
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
        .unwrap_or(0);
    assert_eq!(total, 0, "a warm walk makes no requests: {stats}");

    // Bytes, names, sizes and mtimes: diff and rsync see no difference.
    let (code, out, err) = run(
        "diff",
        &[
            "-r",
            seed.path().to_str().expect("utf-8"),
            mnt.path().to_str().expect("utf-8"),
        ],
    );
    assert_eq!((code, out.as_str()), (0, ""), "diff -r: {err}");
    let src = format!("{}/", seed.path().display());
    let dst = format!("{}/", mnt.path().display());
    // Hubs and projects carry no times in the API, so directory times are left out.
    let (code, out, err) = run("rsync", &["-ancO", "--itemize-changes", &src, &dst]);
    assert_eq!(code, 0, "rsync: {err}");
    assert_eq!(out.trim(), "", "rsync -an sees differences");
}

#[test]
fn everyday_tools_work() {
    let seed = seed_tree();
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &[]);
    let files = mnt.join("Hub A/Project 1/Project Files");
    let src = seed.path().join("Hub A/Project 1/Project Files");
    let big = files.join("big.bin");
    let p = |x: &Path| x.to_str().expect("utf-8").to_string();

    let (_, out, _) = run("stat", &["-c", "%s %b %B %a %F", &p(&big)]);
    assert_eq!(
        out.trim(),
        format!(
            "{} {} 512 444 regular file",
            5 * MIB + 123,
            (5 * MIB + 123).div_ceil(512)
        )
    );
    let (_, out, _) = run("stat", &["-c", "%s %a %F", &p(&files.join("empty.bin"))]);
    assert_eq!(out.trim(), "0 444 regular empty file");
    let (_, out, _) = run("du", &["-k", &p(&big)]);
    assert_eq!(
        out.split_whitespace().next(),
        Some(((5 * MIB + 123).div_ceil(1024)).to_string().as_str())
    );
    let (_, out, _) = run("find", &[&p(&mnt.path()), "-type", "f"]);
    assert_eq!(out.lines().count(), 450 + 9);
    let (_, out, _) = run("find", &[&p(&files.join("crowd")), "-name", "file-4*"]);
    assert_eq!(out.lines().count(), 50, "file-400 to file-449");

    let (code, cat, _) = run("cat", &[&p(&files.join("readme.txt"))]);
    assert_eq!((code, cat.as_str()), (0, "hello from the seed\n"));
    for (bs, skip, count) in [
        ("1", "1234567", "777"),
        ("4093", "5", "300"),
        ("65536", "80", "1"),
        ("1", "5242999", "100"),
    ] {
        let args = |f: &Path| {
            vec![
                format!("if={}", p(f)),
                format!("bs={bs}"),
                format!("skip={skip}"),
                format!("count={count}"),
                "status=none".to_string(),
            ]
        };
        let a: Vec<String> = args(&big);
        let b: Vec<String> = args(&src.join("big.bin"));
        let ra = std::process::Command::new("dd")
            .args(&a)
            .output()
            .expect("dd");
        let rb = std::process::Command::new("dd")
            .args(&b)
            .output()
            .expect("dd");
        assert!(ra.status.success());
        assert_eq!(ra.stdout, rb.stdout, "dd bs={bs} skip={skip} count={count}");
    }
    // Reads at and past the end.
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(&big).expect("open");
    let mut buf = vec![0u8; 1000];
    let n = f
        .read_at(&mut buf, (5 * MIB + 100) as u64)
        .expect("read_at");
    assert_eq!(n, 23);
    assert_eq!(&buf[..23], &pattern(5 * MIB + 123, 7)[5 * MIB + 100..]);
    assert_eq!(
        f.read_at(&mut buf, (6 * MIB) as u64)
            .expect("read past end"),
        0
    );

    let (code, out, err) = run(
        "python3",
        &[
            "-c",
            "import sqlite3,sys; c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True); \
             print(c.execute('select count(*), sum(x) from t').fetchone())",
            &p(&files.join("data.sqlite")),
        ],
    );
    assert_eq!(code, 0, "sqlite3 read-only open: {err}");
    assert_eq!(out.trim(), "(1000, 499500)");

    let (_, out, _) = run("df", &["-P", &p(&mnt.path())]);
    assert!(out.contains("apsfs"), "df shows the filesystem: {out}");
}
