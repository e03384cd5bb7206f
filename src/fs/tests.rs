//! The filesystem logic against an in-memory remote: no server, no mount.

use super::error::Op as FsOp;
use super::*;
use crate::api::{ApiError, Bucket, ItemInfo, Meta, RefInfo};
use crate::testing::memory::{folder_info, time as t, version, TOP};
use crate::testing::{MemoryRemote, Op};

/// The errno a result answers `op` with, if it failed.
fn errno<T>(r: Result<T, Error>, op: FsOp) -> Option<i32> {
    r.err().map(|e| e.errno(op))
}

/// The account most tests mount: one hub, one project, its top folder. Listings take a few
/// milliseconds, so concurrent lookups really do wait for the same listing.
pub(super) fn account() -> MemoryRemote {
    let m = MemoryRemote::with_project();
    m.set_latency(Op::FolderContents, Duration::from_millis(5));
    m
}

pub(super) fn config(ttl: Duration) -> FsConfig {
    FsConfig {
        ttl,
        prefetch_memory: 64 << 20,
        disk: None,
        max_dirs: 100,
        max_entries: 10_000,
        uid: 1000,
        gid: 1000,
        modes: Default::default(),
        buckets: None,
        made: None,
        user_id: None,
    }
}

pub(super) fn project_fs(
    mock: MemoryRemote,
    ttl: Duration,
) -> (Arc<MemoryRemote>, Fs<MemoryRemote>) {
    let m = Arc::new(mock);
    let fs = Fs::new(
        m.clone(),
        Scope::Project {
            hub: "h".into(),
            project: "p".into(),
        },
        config(ttl),
    );
    (m, fs)
}

pub(super) async fn path(fs: &Fs<MemoryRemote>, parts: &[&str]) -> Result<Attr, Error> {
    let mut ino = ROOT;
    let mut attr = fs.getattr(ROOT).await?.0;
    for p in parts {
        attr = fs.lookup(ino, p).await?.0;
        ino = attr.ino;
    }
    Ok(attr)
}

#[tokio::test]
async fn lists_reads_and_names() {
    let mock = account();
    mock.add_folder(TOP, folder_info("sub", "Sub"));
    mock.add_file(TOP, "i1", "a.txt", b"hello world");
    mock.add_file(TOP, "i2", "a/b.txt", b"slash");
    mock.add_file(TOP, "i3", "a.txt", b"second");
    let (m, fs) = project_fs(mock, Duration::from_secs(60));
    let a = path(&fs, &["Project Files", "a.txt"]).await.unwrap();
    assert_eq!((a.size, a.perm, a.is_dir, a.uid), (11, 0o444, false, 1000));
    assert_eq!(a.blocks, 1);
    assert_eq!(a.mtime, t(11).unwrap());
    let slash = path(&fs, &["Project Files", "a%2Fb.txt"]).await.unwrap();
    assert_eq!(slash.size, 5);
    let top = path(&fs, &["Project Files"]).await.unwrap();
    let fh = fs.opendir(top.ino).await.unwrap();
    let names: Vec<String> = fs
        .readdir(top.ino, fh, 0)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names.len(), 6);
    assert_eq!(&names[..3], &[".", "..", "Sub"]);
    assert!(names
        .iter()
        .any(|n| n.starts_with("a (") && n.ends_with(").txt")));
    // Offsets resume where the kernel left off.
    let rest = fs.readdir(top.ino, fh, 4).unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[0].next, 5);
    fs.releasedir(fh);
    let f = fs.open(a.ino, false).await.unwrap();
    assert_eq!(&fs.read(f, 0, 5).await.unwrap()[..], b"hello");
    assert_eq!(&fs.read(f, 6, 100).await.unwrap()[..], b"world");
    assert!(fs.read(f, 11, 10).await.unwrap().is_empty());
    assert!(fs.read(f, 1000, 10).await.unwrap().is_empty());
    fs.release(f).await;
    assert_eq!(errno(fs.read(f, 0, 1).await, FsOp::Read), Some(libc::EBADF));
    assert_eq!(
        errno(fs.open(a.ino, true).await, FsOp::Open),
        Some(libc::EROFS)
    );
    assert_eq!(
        errno(fs.lookup(top.ino, "missing").await, FsOp::Lookup),
        Some(libc::ENOENT)
    );
    assert_eq!(
        m.requests(Op::FolderContents),
        1,
        "one listing served every lookup"
    );
}

#[tokio::test]
async fn concurrent_lookups_share_one_listing() {
    let mock = account();
    for i in 0..50 {
        mock.add_file(TOP, &format!("i{i}"), &format!("f{i}"), b"x");
    }
    let (m, fs) = project_fs(mock, Duration::from_secs(60));
    let fs = Arc::new(fs);
    let top = path(&fs, &["Project Files"]).await.unwrap().ino;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let fs = fs.clone();
            tokio::spawn(async move { fs.lookup(top, &format!("f{i}")).await.map(|a| a.0.size) })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), 1);
    }
    assert_eq!(m.requests(Op::FolderContents), 1);
}

#[tokio::test]
async fn ttl_expiry_shows_new_versions_and_open_files_keep_theirs() {
    let mock = account();
    mock.add_file(TOP, "i1", "doc.txt", b"version one");
    let (m, fs) = project_fs(mock, Duration::from_millis(100));
    let a = path(&fs, &["Project Files", "doc.txt"]).await.unwrap();
    let fh = fs.open(a.ino, false).await.unwrap();
    // Version 2 appears remotely.
    m.upload("i1", b"the second version");
    let top = path(&fs, &["Project Files"]).await.unwrap().ino;
    assert_eq!(
        fs.lookup(top, "doc.txt").await.unwrap().0.size,
        11,
        "inside the TTL nothing changes"
    );
    tokio::time::sleep(Duration::from_millis(120)).await;
    let after = fs.lookup(top, "doc.txt").await.unwrap().0;
    assert_eq!(after.size, 18, "the name now leads to the new version");
    assert_ne!(after.ino, a.ino, "each version is its own inode");
    assert_eq!(
        fs.getattr(a.ino).await.unwrap().0.size,
        11,
        "the old version's inode is unchanged"
    );
    assert_eq!(&fs.read(fh, 0, 100).await.unwrap()[..], b"version one");
    let fh2 = fs.open(after.ino, false).await.unwrap();
    assert_eq!(
        &fs.read(fh2, 0, 100).await.unwrap()[..],
        b"the second version"
    );
}

#[tokio::test]
async fn policy_hides_unreadable_entries_and_fills_missing_sizes() {
    let mock = account();
    mock.add_file(TOP, "h", "hidden.txt", b"x");
    mock.set_hidden("h", true);
    mock.add_file(TOP, "d", "deleted.txt", b"x");
    mock.tombstone("d");
    mock.add_item(
        TOP,
        ItemInfo {
            id: "design".into(),
            display_name: "Design.f3d".into(),
            hidden: false,
            tip: Some(version("design", 1, "Design.f3d", None, None)),
            meta: Meta::default(),
        },
    );
    mock.add_file(TOP, "n", "nosize.pdf", b"0123456789");
    mock.set_size_listed("n", false);
    mock.add_folder(TOP, folder_info("secret", "Restricted"));
    mock.forbid("secret");
    let (m, fs) = project_fs(mock, Duration::from_secs(60));
    let top = path(&fs, &["Project Files"]).await.unwrap().ino;
    let fh = fs.opendir(top).await.unwrap();
    let names: Vec<String> = fs
        .readdir(top, fh, 2)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, vec!["nosize.pdf", "Restricted"]);
    let n = fs.lookup(top, "nosize.pdf").await.unwrap().0;
    assert_eq!(n.size, 10);
    assert_eq!(fs.getattr(n.ino).await.unwrap().0.size, 10);
    assert_eq!(m.requests(Op::ObjectSize), 1, "the size is fetched once");
    let r = fs.lookup(top, "Restricted").await.unwrap().0;
    let rfh = fs.opendir(r.ino).await.unwrap();
    assert_eq!(fs.readdir(r.ino, rfh, 0).unwrap().len(), 2, "only . and ..");
    assert_eq!(
        fs.getattr(r.ino).await.unwrap().0.perm,
        0o555,
        "still a readable directory"
    );
}

#[tokio::test]
async fn errors_become_errno() {
    let mock = account();
    mock.set_listing_error(
        TOP,
        Some(ApiError::Server {
            status: 503,
            detail: "down".into(),
        }),
    );
    let (_m, fs) = project_fs(mock, Duration::from_secs(60));
    let top = path(&fs, &["Project Files"]).await.unwrap().ino;
    assert_eq!(errno(fs.opendir(top).await, FsOp::Opendir), Some(libc::EIO));
    assert_eq!(
        errno(fs.getattr(987_654).await, FsOp::Getattr),
        Some(libc::ENOENT)
    );
}

#[tokio::test]
async fn unchanged_rollups_confirm_whole_subtrees_without_requests() {
    let mock = account();
    mock.set_rollup(TOP, Some("r1"));
    let mut sub = folder_info("sub", "Sub");
    sub.rollup = Some("s1".into());
    mock.add_folder(TOP, sub);
    mock.add_file(TOP, "i1", "a.txt", b"a");
    mock.add_file("sub", "i2", "b.txt", b"b");
    let (m, fs) = project_fs(mock, Duration::from_millis(100));
    path(&fs, &["Project Files", "Sub", "b.txt"]).await.unwrap();
    assert_eq!(m.requests(Op::FolderContents), 2);

    // After the TTL, the project's listing (top folders) says nothing changed below.
    tokio::time::sleep(Duration::from_millis(120)).await;
    path(&fs, &["Project Files", "Sub", "b.txt"]).await.unwrap();
    assert_eq!(
        m.requests(Op::FolderContents),
        2,
        "whole subtree confirmed for free"
    );

    // Something changed in the top folder only: it is listed again, Sub is confirmed by its
    // own unchanged rollup.
    m.set_rollup(TOP, Some("r2"));
    tokio::time::sleep(Duration::from_millis(120)).await;
    path(&fs, &["Project Files", "Sub", "b.txt"]).await.unwrap();
    assert_eq!(
        m.requests(Op::FolderContents),
        3,
        "only the changed folder was listed"
    );
}

#[tokio::test]
async fn bounded_listings_drop_forgotten_inodes_and_bring_them_back() {
    let mock = account();
    mock.add_folder(TOP, folder_info("fa", "A"));
    mock.add_folder(TOP, folder_info("fb", "B"));
    for (folder, p) in [("fa", "a"), ("fb", "b")] {
        for i in 0..3 {
            mock.add_file(folder, &format!("{p}{i}"), &format!("{p}{i}.txt"), b"xyz");
        }
    }
    let m = Arc::new(mock);
    let mut cfg = config(Duration::from_secs(60));
    cfg.max_entries = 4;
    let fs = Fs::new(
        m.clone(),
        Scope::Project {
            hub: "h".into(),
            project: "p".into(),
        },
        cfg,
    );
    let a0 = path(&fs, &["Project Files", "A", "a0.txt"]).await.unwrap();
    // The kernel lets go of a0; listing B pushes A's listing out; a0's inode goes with it.
    fs.forget(a0.ino, 1);
    path(&fs, &["Project Files", "B", "b0.txt"]).await.unwrap();
    assert_eq!(
        errno(fs.getattr(a0.ino).await, FsOp::Getattr),
        Some(libc::ENOENT),
        "dropped"
    );
    let before = m.requests(Op::FolderContents);
    // Looked up again, it comes back with the same inode number.
    let again = path(&fs, &["Project Files", "A", "a0.txt"]).await.unwrap();
    assert_eq!(again.ino, a0.ino);
    assert_eq!(again.size, 3);
    assert!(m.requests(Op::FolderContents) > before, "A listed again");
    // Inodes the kernel still holds are never dropped.
    let b0 = path(&fs, &["Project Files", "B", "b0.txt"]).await.unwrap();
    path(&fs, &["Project Files", "A", "a1.txt"]).await.unwrap();
    assert_eq!(fs.getattr(b0.ino).await.unwrap().0.size, 3);
}

pub(super) async fn names_in(fs: &Fs<MemoryRemote>, dir: u64) -> Vec<String> {
    let fh = fs.opendir(dir).await.unwrap();
    let names = fs
        .readdir(dir, fh, 2)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    fs.releasedir(fh);
    names
}

async fn read_all(fs: &Fs<MemoryRemote>, ino: u64) -> Vec<u8> {
    let fh = fs.open(ino, false).await.unwrap();
    let data = fs.read(fh, 0, 1 << 20).await.unwrap().to_vec();
    fs.release(fh).await;
    data
}

/// Three versions of one item: the tip in the folder, all three under `.versions`.
fn three_versions(mock: &MemoryRemote) {
    let mut all = Vec::new();
    for n in [1u32, 2, 3] {
        let storage = format!("urn:adsk.objects:os.object:wip.dm.prod/v{n}");
        let bytes = format!("version {n} ").repeat(n as usize).into_bytes();
        let mut v = version(
            "i1",
            n,
            "model.rvt",
            Some(bytes.len() as u64),
            Some(&storage),
        );
        v.meta.created_by = Some(Arc::from(format!("user {n}").as_str()));
        mock.put_object(&storage, &bytes);
        all.push(v);
    }
    let mut all = all.into_iter();
    let item = ItemInfo {
        id: "i1".into(),
        display_name: "model.rvt".into(),
        hidden: false,
        tip: all.next(),
        meta: Meta {
            ext_type: Some(Arc::from("items:autodesk.core:File")),
            reserved: Some(Box::new(crate::api::types::Reserved {
                by: Some("Jane".into()),
                since: Some("2024-01-01T00:00:00Z".into()),
                user_id: None,
            })),
            ..Meta::default()
        },
    };
    // Version 1 comes with the item; 2 and 3 are uploaded after it.
    mock.add_item(TOP, item);
    for v in all {
        mock.add_version("i1", v);
    }
    mock.add_folder(TOP, folder_info("sub", "Sub"));
}

#[tokio::test]
async fn older_versions_are_reached_by_name_but_never_listed() {
    let mock = account();
    three_versions(&mock);
    let (_m, fs) = project_fs(mock, Duration::from_secs(60));
    let top = path(&fs, &["Project Files"]).await.unwrap().ino;
    assert_eq!(names_in(&fs, top).await, ["model.rvt", "Sub"]);
    let tip = path(&fs, &["Project Files", "model.rvt"]).await.unwrap();
    assert_eq!(read_all(&fs, tip.ino).await, b"version 3 ".repeat(3));

    let versions = path(&fs, &["Project Files", ".versions"]).await.unwrap();
    assert!(versions.is_dir);
    assert_eq!(names_in(&fs, versions.ino).await, ["model.rvt"]);
    let dir = path(&fs, &["Project Files", ".versions", "model.rvt"])
        .await
        .unwrap();
    assert_eq!(names_in(&fs, dir.ino).await, ["v3.rvt", "v2.rvt", "v1.rvt"]);
    for n in 1..=3u32 {
        let name = format!("v{n}.rvt");
        let v = path(&fs, &["Project Files", ".versions", "model.rvt", &name])
            .await
            .unwrap();
        let want = format!("version {n} ").repeat(n as usize).into_bytes();
        assert_eq!(v.size, want.len() as u64);
        assert_eq!(read_all(&fs, v.ino).await, want, "{name}");
        assert_ne!(v.ino, tip.ino, "a node has one parent");
        let by = fs.getxattr(v.ino, "user.aps.created_by").await.unwrap();
        assert_eq!(by, format!("user {n}").into_bytes());
    }
    assert_eq!(
        fs.getattr(versions.ino).await.unwrap().0.ino,
        versions.ino,
        "getattr of the unlisted directory answers"
    );
    assert_eq!(
        errno(
            path(&fs, &["Project Files", ".versions", "nope.rvt"]).await,
            FsOp::Lookup
        ),
        Some(libc::ENOENT)
    );
    assert_eq!(
        errno(path(&fs, &[".versions"]).await, FsOp::Lookup),
        Some(libc::ENOENT),
        "only folders have it"
    );
}

#[tokio::test]
async fn attributes_come_from_listings_and_refs_on_demand() {
    let mock = account();
    three_versions(&mock);
    mock.add_ref(
        "items",
        "i1",
        RefInfo {
            ref_type: "xrefs".into(),
            direction: "from".into(),
            other_type: "versions".into(),
            other_id: "i1?version=3".into(),
            other_name: Some("model.rvt".into()),
            other_item: Some("i1".into()),
        },
    );
    let (m, fs) = project_fs(mock, Duration::from_secs(60));
    let tip = path(&fs, &["Project Files", "model.rvt"]).await.unwrap();
    let names = fs.listxattr(tip.ino).unwrap();
    let names: Vec<&str> = std::str::from_utf8(&names)
        .unwrap()
        .split_terminator('\0')
        .collect();
    assert!(names.contains(&"user.aps.refs"), "{names:?}");
    assert_eq!(m.requests(Op::Refs), 0, "listing costs nothing");
    let get = |name: &'static str| {
        let fs = &fs;
        async move { String::from_utf8(fs.getxattr(tip.ino, name).await.unwrap()).unwrap() }
    };
    assert_eq!(get("user.aps.id").await, "i1");
    assert_eq!(get("user.aps.version").await, "3");
    assert_eq!(get("user.aps.version_id").await, "i1?version=3");
    assert_eq!(get("user.aps.type").await, "items:autodesk.core:File");
    assert_eq!(get("user.aps.reserved").await, "true");
    assert_eq!(get("user.aps.reserved_by").await, "Jane");
    assert_eq!(
        get("user.aps.storage").await,
        "urn:adsk.objects:os.object:wip.dm.prod/v3"
    );
    assert_eq!(
        get("user.aps.refs").await,
        "xrefs from /Project Files/model.rvt versions:i1?version=3\n"
    );
    let asked = m.requests(Op::Refs);
    assert_eq!(asked, 2, "the item's refs and its version's");
    get("user.aps.refs").await;
    assert_eq!(m.requests(Op::Refs), asked, "kept for the TTL");
    assert_eq!(
        errno(fs.getxattr(tip.ino, "user.other").await, FsOp::Getxattr),
        Some(libc::ENODATA)
    );
    assert_eq!(
        errno(
            fs.getxattr(tip.ino, "security.selinux").await,
            FsOp::Getxattr
        ),
        Some(libc::EOPNOTSUPP),
        "other namespaces are not supported, so `ls -l` stops asking"
    );
    let top = path(&fs, &["Project Files"]).await.unwrap();
    assert_eq!(fs.getxattr(top.ino, "user.aps.id").await.unwrap(), b"top");
    assert_eq!(fs.getxattr(ROOT, "user.aps.id").await.unwrap(), b"p");
}

/// The app's bucket `bk`, which the bucket tests fill.
fn add_bk(mock: &MemoryRemote) {
    mock.add_bucket(
        Bucket {
            key: "bk".into(),
            policy: "persistent".into(),
            created: t(5),
        },
        "the-app",
    );
}

#[tokio::test]
async fn buckets_become_folders_of_keys() {
    let mock = account();
    add_bk(&mock);
    for key in ["a/b/deep.txt", "a/top.txt", "root.txt"] {
        mock.put_bucket_object("bk", key, key.as_bytes(), Some(&format!("sha-{key}")));
    }
    let m = Arc::new(mock);
    let mut cfg = config(Duration::from_secs(60));
    cfg.buckets = Some("US".into());
    let fs = Fs::new(m.clone(), Scope::All, cfg);
    assert_eq!(names_in(&fs, ROOT).await, ["Hub", "buckets"]);
    let bk = path(&fs, &["buckets", "bk"]).await.unwrap();
    assert_eq!(names_in(&fs, bk.ino).await, ["a", "root.txt"]);
    let deep = path(&fs, &["buckets", "bk", "a", "b", "deep.txt"])
        .await
        .unwrap();
    assert_eq!(read_all(&fs, deep.ino).await, b"a/b/deep.txt");
    assert_eq!(
        m.requests(Op::BucketObjects),
        1,
        "one object list serves every folder of the bucket"
    );
    assert_eq!(
        fs.getxattr(bk.ino, "user.aps.policy").await.unwrap(),
        b"persistent"
    );
    assert_eq!(
        fs.getxattr(bk.ino, "user.aps.owner").await.unwrap(),
        b"the-app"
    );
    assert_eq!(
        fs.getxattr(deep.ino, "user.aps.object_key").await.unwrap(),
        b"a/b/deep.txt"
    );
    assert_eq!(
        fs.getxattr(deep.ino, "user.aps.sha1").await.unwrap(),
        b"sha-a/b/deep.txt"
    );
}

#[tokio::test]
async fn an_unreachable_service_serves_stale_listings_but_its_errors_are_believed() {
    let mock = account();
    mock.add_file(TOP, "i1", "a.txt", b"hello");
    let (m, fs) = project_fs(mock, Duration::from_millis(20));
    let a = ["Project Files", "a.txt"];
    path(&fs, &a).await.unwrap();
    let fail = |e: ApiError| m.set_listing_error(TOP, Some(e));

    // The service answers with an error: that is the answer.
    tokio::time::sleep(Duration::from_millis(30)).await;
    fail(ApiError::Server {
        status: 503,
        detail: String::new(),
    });
    assert_eq!(errno(path(&fs, &a).await, FsOp::Lookup), Some(libc::EIO));

    // The service cannot be reached: the stale listing answers, and for a while it does so
    // without asking again.
    fail(ApiError::Network("connection refused".into()));
    let before = m.requests(Op::FolderContents);
    assert_eq!(path(&fs, &a).await.unwrap().size, 5);
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(path(&fs, &a).await.unwrap().size, 5);
    assert_eq!(m.requests(Op::FolderContents), before + 1);
}

#[tokio::test]
async fn status_is_paged_below_the_xattr_size_limit() {
    use crate::fs::pins::{Status, XATTR_STATUS};
    let d = tempfile::tempdir().unwrap();
    let disk = Arc::new(crate::cache::disk::DiskCache::open(d.path(), 1 << 40).unwrap());
    for i in 0..2000 {
        let pin = crate::cache::pins::Pin {
            path: format!(
                "Hub/Project/Project Files/{}/file-{i:04}.dwg",
                "deep/".repeat(15)
            ),
            item: format!("item-{i}"),
            size: 1000,
        };
        disk.pin(&format!("urn:{i}"), pin).unwrap();
    }
    let mut cfg = config(Duration::from_secs(60));
    cfg.disk = Some(disk);
    let fs = Fs::new(Arc::new(MemoryRemote::new()), Scope::All, cfg);
    assert!(fs.pins.control_xattr(&fs.ns, ROOT, "user.other").is_none());
    let mut name = XATTR_STATUS.to_string();
    let mut paths = Vec::new();
    let mut pages = 0;
    loop {
        let raw = fs.pins.control_xattr(&fs.ns, ROOT, &name).unwrap().unwrap();
        assert!(raw.len() < 64 << 10, "page of {} bytes", raw.len());
        let page: Status = serde_json::from_slice(&raw).unwrap();
        assert_eq!((page.pinned_files, page.pinned_bytes), (2000, 2_000_000));
        paths.extend(page.pins.into_iter().map(|p| p.path));
        pages += 1;
        match page.next {
            Some(n) => name = format!("{XATTR_STATUS}.{n}"),
            None => break,
        }
    }
    assert!(pages > 2, "{pages} pages");
    assert_eq!(paths.len(), 2000);
    assert!(
        paths.windows(2).all(|w| w[0] < w[1]),
        "sorted by path, none twice"
    );
}

#[tokio::test]
async fn entries_the_kernel_never_received_are_not_counted_as_lookups() {
    let mock = account();
    for i in 0..4 {
        mock.add_file(TOP, &format!("i{i}"), &format!("f{i}.txt"), b"x");
    }
    let (_m, fs) = project_fs(mock, Duration::from_secs(60));
    let top = path(&fs, &["Project Files"]).await.unwrap().ino;
    let fh = fs.opendir(top).await.unwrap();
    let entries: Vec<DirEntry> = fs
        .readdirplus(top, fh, 0)
        .unwrap()
        .into_iter()
        .map(|(e, _, _)| e)
        .collect();
    assert_eq!(entries.len(), 6, ". and .. and four files");
    let held = |ino| fs.ns.read(|i| i.known_to_kernel(ino)).unwrap();
    assert!(
        entries[2..].iter().all(|e| held(e.ino)),
        "handed over, counted"
    );
    // The kernel's buffer took `.`, `..` and two files; the other two never reached it.
    fs.not_sent(entries[4..].iter().cloned());
    assert!(
        entries[2..4].iter().all(|e| held(e.ino)),
        "received: still held"
    );
    assert!(
        entries[4..].iter().all(|e| !held(e.ino)),
        "not received: given back"
    );
    // `.` and `..` are never counted, so giving them back takes nothing from the directory
    // (held once, by the lookup that found it).
    fs.not_sent(entries[..2].iter().cloned());
    assert!(held(top), "`.` given back took nothing");
    fs.releasedir(fh);
}

/// A kernel whose `readdirplus` buffer takes `fits` entries a call, listing `dir` to its end:
/// the names it received, and the entries built for it in all (received or not).
fn list_like_the_kernel(
    fs: &Fs<MemoryRemote>,
    dir: u64,
    fh: u64,
    fits: usize,
) -> (Vec<String>, usize) {
    let (mut names, mut built, mut offset) = (Vec::new(), 0, 0);
    loop {
        let entries = fs.readdirplus(dir, fh, offset).unwrap();
        if entries.is_empty() {
            return (names, built);
        }
        assert!(
            entries.len() <= super::pace::MOST,
            "{} entries in one call",
            entries.len()
        );
        built += entries.len();
        let mut entries = entries.into_iter().map(|(e, _, _)| e);
        for e in entries.by_ref().take(fits) {
            offset = e.next;
            names.push(e.name);
        }
        fs.not_sent(entries);
    }
}

/// Listing a big cached folder builds each entry about once, not once per call after it (that
/// was quadratic: 300,000 entries took 33 s from cache).
#[tokio::test]
async fn listing_a_big_folder_costs_what_it_returns() {
    const N: usize = 100_000;
    let mock = account();
    for i in 0..N {
        mock.add_file(TOP, &format!("i{i}"), &format!("f{i}.txt"), b"x");
    }
    let (_m, fs) = project_fs(mock, Duration::from_secs(600));
    let top = path(&fs, &["Project Files"]).await.unwrap().ino;
    for fits in [20, 700] {
        let fh = fs.opendir(top).await.unwrap();
        let (names, built) = list_like_the_kernel(&fs, top, fh, fits);
        assert_eq!(names.len(), N + 2);
        assert!(
            built <= names.len() + names.len() / 4 + super::pace::MOST,
            "{built} entries built for {} received ({fits} a call)",
            names.len()
        );
        fs.releasedir(fh);
    }
}

/// A real item named `.versions`: the folder's own versions directory keeps the name, the
/// real file is listed (and read) under the name a clash gives it.
#[tokio::test]
async fn a_real_versions_entry_and_the_versions_directory_are_both_reachable() {
    let mock = account();
    mock.add_file(TOP, "real", ".versions", b"real bytes");
    mock.add_file(TOP, "i1", "a.txt", b"hello");
    let (_m, fs) = project_fs(mock, Duration::from_secs(60));
    let names = names_in(&fs, path(&fs, &["Project Files"]).await.unwrap().ino).await;
    let real = names
        .iter()
        .find(|n| n.starts_with(".versions ("))
        .unwrap_or_else(|| panic!("{names:?}"));
    assert!(!names.iter().any(|n| n == ".versions"), "{names:?}");
    let f = path(&fs, &["Project Files", real]).await.unwrap();
    assert_eq!(read_all(&fs, f.ino).await, b"real bytes");
    let v = path(&fs, &["Project Files", ".versions", "a.txt"])
        .await
        .unwrap();
    assert!(v.is_dir);
}

/// Object keys `.` and `..` are named like any name that cannot be a path component.
#[tokio::test]
async fn bucket_keys_dot_and_dot_dot_are_reachable() {
    let mock = account();
    add_bk(&mock);
    for key in [".", "..", "d/.", "d/../x"] {
        mock.put_bucket_object("bk", key, key.as_bytes(), None);
    }
    let m = Arc::new(mock);
    let mut cfg = config(Duration::from_secs(60));
    cfg.buckets = Some("US".into());
    let fs = Fs::new(m, Scope::All, cfg);
    let bk = path(&fs, &["buckets", "bk"]).await.unwrap();
    assert_eq!(names_in(&fs, bk.ino).await, ["d", "%2E", "%2E%2E"]);
    for (p, bytes) in [
        (&["buckets", "bk", "%2E"][..], &b"."[..]),
        (&["buckets", "bk", "%2E%2E"], b".."),
        (&["buckets", "bk", "d", "%2E"], b"d/."),
        (&["buckets", "bk", "d", "%2E%2E", "x"], b"d/../x"),
    ] {
        let f = path(&fs, p).await.unwrap();
        assert_eq!(read_all(&fs, f.ino).await, bytes);
    }
}

/// A listing that fails keeps nothing: no cached listing, no inodes for what it gathered.
#[tokio::test]
async fn a_failed_listing_keeps_nothing() {
    let mock = account();
    for i in 0..500 {
        mock.add_file(TOP, &format!("i{i}"), &format!("f{i}.txt"), b"x");
    }
    let (m, fs) = project_fs(mock, Duration::from_secs(60));
    let top = path(&fs, &["Project Files"]).await.unwrap().ino;
    let known = fs.ns.len();
    m.set_listing_error(
        TOP,
        Some(ApiError::Decode("pagination does not end".into())),
    );
    assert_eq!(errno(fs.opendir(top).await, FsOp::Opendir), Some(libc::EIO));
    assert_eq!(fs.ns.len(), known);
    assert!(fs.ns.listed(top).is_none());
}
