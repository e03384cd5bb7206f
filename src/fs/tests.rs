//! The filesystem logic against an in-memory remote: no server, no mount.

use super::*;
use crate::api::ApiError;
use crate::api::{
    Bucket, Entry, FolderInfo, Hub, ItemInfo, Meta, ObjectInfo, Project, RefInfo, VersionInfo,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

/// The errno a result answers `op` with, if it failed.
fn errno<T>(r: Result<T, Error>, op: Op) -> Option<i32> {
    r.err().map(|e| e.errno(op))
}

/// An in-memory account: one hub, one project, folders by id, and object bytes by storage id.
#[derive(Default)]
struct Mock {
    /// `lastModifiedTimeRollup` the top folder reports.
    top_rollup: Mutex<Option<String>>,
    folders: Mutex<HashMap<String, Result<Vec<Entry>, ApiError>>>,
    objects: Mutex<HashMap<String, Vec<u8>>>,
    /// Every version of an item, newest first.
    versions: Mutex<HashMap<String, Vec<VersionInfo>>>,
    /// Refs by (kind, id).
    refs: Mutex<HashMap<(String, String), Vec<RefInfo>>>,
    /// Objects by bucket.
    buckets: Mutex<HashMap<String, Vec<ObjectInfo>>>,
    listings: AtomicUsize,
    reads: AtomicUsize,
    sizes: AtomicUsize,
    ref_requests: AtomicUsize,
    bucket_lists: AtomicUsize,
}

fn t(s: u64) -> Option<SystemTime> {
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s))
}

fn version(
    item: &str,
    n: u32,
    name: &str,
    size: Option<u64>,
    storage: Option<&str>,
) -> VersionInfo {
    VersionInfo {
        id: format!("{item}?version={n}"),
        number: n,
        name: name.into(),
        size,
        storage: storage.map(String::from),
        created: t(u64::from(n)),
        modified: t(u64::from(n) + 10),
        deleted: false,
        meta: Meta::default(),
    }
}

fn file(id: &str, name: &str, bytes: &[u8], mock: &Mock) -> Entry {
    let storage = format!("urn:adsk.objects:os.object:wip.dm.prod/{id}");
    mock.objects
        .lock()
        .unwrap()
        .insert(storage.clone(), bytes.to_vec());
    Entry::Item(ItemInfo {
        id: id.into(),
        display_name: name.into(),
        hidden: false,
        tip: Some(version(
            id,
            1,
            name,
            Some(bytes.len() as u64),
            Some(&storage),
        )),
        meta: Meta::default(),
    })
}

fn folder(id: &str, name: &str) -> Entry {
    Entry::Folder(FolderInfo {
        id: id.into(),
        name: name.into(),
        hidden: false,
        created: t(0),
        modified: t(1),
        rollup: None,
        object_count: None,
        meta: Meta::default(),
    })
}

impl Remote for Mock {
    async fn hubs(&self) -> Result<Vec<Hub>, ApiError> {
        Ok(vec![Hub {
            id: "h".into(),
            name: "Hub".into(),
            meta: Meta::default(),
        }])
    }
    async fn projects(&self, _hub: &str) -> Result<Vec<Project>, ApiError> {
        Ok(vec![Project {
            id: "p".into(),
            name: "Proj".into(),
            meta: Meta::default(),
        }])
    }
    async fn top_folders(&self, _hub: &str, _project: &str) -> Result<Vec<FolderInfo>, ApiError> {
        Ok(vec![FolderInfo {
            id: "top".into(),
            name: "Project Files".into(),
            hidden: false,
            created: t(0),
            modified: t(0),
            rollup: self.top_rollup.lock().unwrap().clone(),
            object_count: None,
            meta: Meta::default(),
        }])
    }
    async fn folder_contents(
        &self,
        _project: &str,
        folder: &str,
        _expected: Option<u64>,
    ) -> Result<Vec<Entry>, ApiError> {
        self.listings.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.folders
            .lock()
            .unwrap()
            .get(folder)
            .cloned()
            .unwrap_or_else(|| Err(ApiError::NotFound(folder.into())))
    }
    async fn item_versions(
        &self,
        _project: &str,
        item: &str,
    ) -> Result<Vec<VersionInfo>, ApiError> {
        self.versions
            .lock()
            .unwrap()
            .get(item)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(item.into()))
    }
    async fn refs(&self, _project: &str, kind: &str, id: &str) -> Result<Vec<RefInfo>, ApiError> {
        self.ref_requests.fetch_add(1, Ordering::SeqCst);
        let refs = self.refs.lock().unwrap();
        Ok(refs
            .get(&(kind.into(), id.into()))
            .cloned()
            .unwrap_or_default())
    }
    async fn buckets(&self, _region: &str) -> Result<Vec<Bucket>, ApiError> {
        let mut keys: Vec<String> = self.buckets.lock().unwrap().keys().cloned().collect();
        keys.sort();
        Ok(keys
            .into_iter()
            .map(|key| Bucket {
                key,
                policy: "persistent".into(),
                created: t(5),
            })
            .collect())
    }
    async fn bucket_owner(&self, _bucket: &str) -> Result<String, ApiError> {
        Ok("the-app".into())
    }
    async fn bucket_objects(&self, bucket: &str) -> Result<Vec<ObjectInfo>, ApiError> {
        self.bucket_lists.fetch_add(1, Ordering::SeqCst);
        self.buckets
            .lock()
            .unwrap()
            .get(bucket)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(bucket.into()))
    }
    async fn object_size(&self, storage: &str) -> Result<u64, ApiError> {
        self.sizes.fetch_add(1, Ordering::SeqCst);
        self.objects
            .lock()
            .unwrap()
            .get(storage)
            .map(|b| b.len() as u64)
            .ok_or_else(|| ApiError::NotFound(storage.into()))
    }
    async fn read(&self, storage: &str, offset: u64, len: u64) -> Result<Bytes, ApiError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let o = self.objects.lock().unwrap();
        let b = o
            .get(storage)
            .ok_or_else(|| ApiError::NotFound(storage.into()))?;
        assert!(
            offset + len <= b.len() as u64,
            "reads stay inside the object"
        );
        Ok(Bytes::copy_from_slice(
            &b[offset as usize..(offset + len) as usize],
        ))
    }
}

fn config(ttl: Duration) -> FsConfig {
    FsConfig {
        ttl,
        prefetch_memory: 64 << 20,
        disk: None,
        max_dirs: 100,
        max_entries: 10_000,
        uid: 1000,
        gid: 1000,
        buckets: None,
    }
}

fn project_fs(mock: Mock, ttl: Duration) -> (Arc<Mock>, Fs<Mock>) {
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

async fn path(fs: &Fs<Mock>, parts: &[&str]) -> Result<Attr, Error> {
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
    let mock = Mock::default();
    let entries = vec![
        folder("sub", "Sub"),
        file("i1", "a.txt", b"hello world", &mock),
        file("i2", "a/b.txt", b"slash", &mock),
        file("i3", "a.txt", b"second", &mock),
    ];
    mock.folders
        .lock()
        .unwrap()
        .insert("top".into(), Ok(entries));
    mock.folders
        .lock()
        .unwrap()
        .insert("sub".into(), Ok(vec![]));
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
    fs.release(f);
    assert_eq!(errno(fs.read(f, 0, 1).await, Op::Read), Some(libc::EBADF));
    assert_eq!(
        errno(fs.open(a.ino, true).await, Op::Open),
        Some(libc::EROFS)
    );
    assert_eq!(
        errno(fs.lookup(top.ino, "missing").await, Op::Lookup),
        Some(libc::ENOENT)
    );
    assert_eq!(
        m.listings.load(Ordering::SeqCst),
        1,
        "one listing served every lookup"
    );
}

#[tokio::test]
async fn concurrent_lookups_share_one_listing() {
    let mock = Mock::default();
    let entries: Vec<Entry> = (0..50)
        .map(|i| file(&format!("i{i}"), &format!("f{i}"), b"x", &mock))
        .collect();
    mock.folders
        .lock()
        .unwrap()
        .insert("top".into(), Ok(entries));
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
    assert_eq!(m.listings.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn ttl_expiry_shows_new_versions_and_open_files_keep_theirs() {
    let mock = Mock::default();
    mock.folders.lock().unwrap().insert(
        "top".into(),
        Ok(vec![file("i1", "doc.txt", b"version one", &mock)]),
    );
    let (m, fs) = project_fs(mock, Duration::from_millis(100));
    let a = path(&fs, &["Project Files", "doc.txt"]).await.unwrap();
    let fh = fs.open(a.ino, false).await.unwrap();
    // Version 2 appears remotely.
    let storage = "urn:adsk.objects:os.object:wip.dm.prod/i1-v2".to_string();
    m.objects
        .lock()
        .unwrap()
        .insert(storage.clone(), b"the second version".to_vec());
    let v2 = Entry::Item(ItemInfo {
        id: "i1".into(),
        display_name: "doc.txt".into(),
        hidden: false,
        tip: Some(version("i1", 2, "doc.txt", Some(18), Some(&storage))),
        meta: Meta::default(),
    });
    m.folders.lock().unwrap().insert("top".into(), Ok(vec![v2]));
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
    let mock = Mock::default();
    let mut hidden = file("h", "hidden.txt", b"x", &mock);
    if let Entry::Item(i) = &mut hidden {
        i.hidden = true;
    }
    let mut tomb = file("d", "deleted.txt", b"x", &mock);
    if let Entry::Item(i) = &mut tomb {
        let tip = i.tip.as_mut().unwrap();
        tip.deleted = true;
        tip.storage = None;
    }
    let design = Entry::Item(ItemInfo {
        id: "design".into(),
        display_name: "Design.f3d".into(),
        hidden: false,
        tip: Some(version("design", 1, "Design.f3d", None, None)),
        meta: Meta::default(),
    });
    let mut nosize = file("n", "nosize.pdf", b"0123456789", &mock);
    if let Entry::Item(i) = &mut nosize {
        i.tip.as_mut().unwrap().size = None;
    }
    mock.folders.lock().unwrap().insert(
        "top".into(),
        Ok(vec![
            hidden,
            tomb,
            design,
            nosize,
            folder("secret", "Restricted"),
        ]),
    );
    mock.folders
        .lock()
        .unwrap()
        .insert("secret".into(), Err(ApiError::Forbidden("no".into())));
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
    assert_eq!(
        m.sizes.load(Ordering::SeqCst),
        1,
        "the size is fetched once"
    );
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
    let mock = Mock::default();
    mock.folders.lock().unwrap().insert(
        "top".into(),
        Err(ApiError::Server {
            status: 503,
            detail: "down".into(),
        }),
    );
    let (_m, fs) = project_fs(mock, Duration::from_secs(60));
    let top = path(&fs, &["Project Files"]).await.unwrap().ino;
    assert_eq!(errno(fs.opendir(top).await, Op::Opendir), Some(libc::EIO));
    assert_eq!(
        errno(fs.getattr(987_654).await, Op::Getattr),
        Some(libc::ENOENT)
    );
}

#[tokio::test]
async fn unchanged_rollups_confirm_whole_subtrees_without_requests() {
    let mock = Mock::default();
    *mock.top_rollup.lock().unwrap() = Some("r1".into());
    let mut sub = folder("sub", "Sub");
    if let Entry::Folder(f) = &mut sub {
        f.rollup = Some("s1".into());
    }
    let top = vec![sub, file("i1", "a.txt", b"a", &mock)];
    mock.folders.lock().unwrap().insert("top".into(), Ok(top));
    mock.folders
        .lock()
        .unwrap()
        .insert("sub".into(), Ok(vec![file("i2", "b.txt", b"b", &mock)]));
    let (m, fs) = project_fs(mock, Duration::from_millis(100));
    path(&fs, &["Project Files", "Sub", "b.txt"]).await.unwrap();
    assert_eq!(m.listings.load(Ordering::SeqCst), 2);

    // After the TTL, the project's listing (top folders) says nothing changed below.
    tokio::time::sleep(Duration::from_millis(120)).await;
    path(&fs, &["Project Files", "Sub", "b.txt"]).await.unwrap();
    assert_eq!(
        m.listings.load(Ordering::SeqCst),
        2,
        "whole subtree confirmed for free"
    );

    // Something changed in the top folder only: it is listed again, Sub is confirmed by its
    // own unchanged rollup.
    *m.top_rollup.lock().unwrap() = Some("r2".into());
    tokio::time::sleep(Duration::from_millis(120)).await;
    path(&fs, &["Project Files", "Sub", "b.txt"]).await.unwrap();
    assert_eq!(
        m.listings.load(Ordering::SeqCst),
        3,
        "only the changed folder was listed"
    );
}

#[tokio::test]
async fn bounded_listings_drop_forgotten_inodes_and_bring_them_back() {
    let mock = Mock::default();
    let files = |p: &str| {
        (0..3)
            .map(|i| file(&format!("{p}{i}"), &format!("{p}{i}.txt"), b"xyz", &mock))
            .collect::<Vec<_>>()
    };
    let (a, b) = (files("a"), files("b"));
    mock.folders
        .lock()
        .unwrap()
        .insert("top".into(), Ok(vec![folder("fa", "A"), folder("fb", "B")]));
    mock.folders.lock().unwrap().insert("fa".into(), Ok(a));
    mock.folders.lock().unwrap().insert("fb".into(), Ok(b));
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
        errno(fs.getattr(a0.ino).await, Op::Getattr),
        Some(libc::ENOENT),
        "dropped"
    );
    let before = m.listings.load(Ordering::SeqCst);
    // Looked up again, it comes back with the same inode number.
    let again = path(&fs, &["Project Files", "A", "a0.txt"]).await.unwrap();
    assert_eq!(again.ino, a0.ino);
    assert_eq!(again.size, 3);
    assert!(m.listings.load(Ordering::SeqCst) > before, "A listed again");
    // Inodes the kernel still holds are never dropped.
    let b0 = path(&fs, &["Project Files", "B", "b0.txt"]).await.unwrap();
    path(&fs, &["Project Files", "A", "a1.txt"]).await.unwrap();
    assert_eq!(fs.getattr(b0.ino).await.unwrap().0.size, 3);
}

async fn names_in(fs: &Fs<Mock>, dir: u64) -> Vec<String> {
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

async fn read_all(fs: &Fs<Mock>, ino: u64) -> Vec<u8> {
    let fh = fs.open(ino, false).await.unwrap();
    let data = fs.read(fh, 0, 1 << 20).await.unwrap().to_vec();
    fs.release(fh);
    data
}

/// Three versions of one item: the tip in the folder, all three under `.versions`.
fn three_versions(mock: &Mock) {
    let mut all = Vec::new();
    for n in [3u32, 2, 1] {
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
        mock.objects.lock().unwrap().insert(storage, bytes);
        all.push(v);
    }
    let mut tomb = version("i1", 4, "model.rvt", None, None);
    tomb.deleted = true;
    mock.versions
        .lock()
        .unwrap()
        .insert("i1".into(), all.clone());
    let item = Entry::Item(ItemInfo {
        id: "i1".into(),
        display_name: "model.rvt".into(),
        hidden: false,
        tip: Some(all[0].clone()),
        meta: Meta {
            ext_type: Some(Arc::from("items:autodesk.core:File")),
            reserved: Some(Box::new(crate::api::types::Reserved {
                by: Some("Jane".into()),
                since: Some("2024-01-01T00:00:00Z".into()),
            })),
            ..Meta::default()
        },
    });
    mock.folders
        .lock()
        .unwrap()
        .insert("top".into(), Ok(vec![item, folder("sub", "Sub")]));
    mock.folders
        .lock()
        .unwrap()
        .insert("sub".into(), Ok(vec![]));
}

#[tokio::test]
async fn older_versions_are_reached_by_name_but_never_listed() {
    let mock = Mock::default();
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
            Op::Lookup
        ),
        Some(libc::ENOENT)
    );
    assert_eq!(
        errno(path(&fs, &[".versions"]).await, Op::Lookup),
        Some(libc::ENOENT),
        "only folders have it"
    );
}

#[tokio::test]
async fn attributes_come_from_listings_and_refs_on_demand() {
    let mock = Mock::default();
    three_versions(&mock);
    mock.refs.lock().unwrap().insert(
        ("items".into(), "i1".into()),
        vec![RefInfo {
            ref_type: "xrefs".into(),
            direction: "from".into(),
            other_type: "versions".into(),
            other_id: "i1?version=3".into(),
            other_name: Some("model.rvt".into()),
            other_item: Some("i1".into()),
        }],
    );
    let (m, fs) = project_fs(mock, Duration::from_secs(60));
    let tip = path(&fs, &["Project Files", "model.rvt"]).await.unwrap();
    let names = fs.listxattr(tip.ino).unwrap();
    let names: Vec<&str> = std::str::from_utf8(&names)
        .unwrap()
        .split_terminator('\0')
        .collect();
    assert!(names.contains(&"user.aps.refs"), "{names:?}");
    assert_eq!(
        m.ref_requests.load(Ordering::SeqCst),
        0,
        "listing costs nothing"
    );
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
    let asked = m.ref_requests.load(Ordering::SeqCst);
    assert_eq!(asked, 2, "the item's refs and its version's");
    get("user.aps.refs").await;
    assert_eq!(
        m.ref_requests.load(Ordering::SeqCst),
        asked,
        "kept for the TTL"
    );
    assert_eq!(
        errno(fs.getxattr(tip.ino, "user.other").await, Op::Getxattr),
        Some(libc::ENODATA)
    );
    assert_eq!(
        errno(fs.getxattr(tip.ino, "security.selinux").await, Op::Getxattr),
        Some(libc::EOPNOTSUPP),
        "other namespaces are not supported, so `ls -l` stops asking"
    );
    let top = path(&fs, &["Project Files"]).await.unwrap();
    assert_eq!(fs.getxattr(top.ino, "user.aps.id").await.unwrap(), b"top");
    assert_eq!(fs.getxattr(ROOT, "user.aps.id").await.unwrap(), b"p");
}

#[tokio::test]
async fn buckets_become_folders_of_keys() {
    let mock = Mock::default();
    let mut objects = Vec::new();
    for key in ["a/b/deep.txt", "a/top.txt", "root.txt"] {
        let storage = crate::fs::buckets::storage_urn("bk", key);
        mock.objects
            .lock()
            .unwrap()
            .insert(storage, key.as_bytes().to_vec());
        objects.push(ObjectInfo {
            key: key.into(),
            size: key.len() as u64,
            sha1: Some(format!("sha-{key}")),
        });
    }
    mock.buckets.lock().unwrap().insert("bk".into(), objects);
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
        m.bucket_lists.load(Ordering::SeqCst),
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
    let mock = Mock::default();
    let entries = vec![file("i1", "a.txt", b"hello", &mock)];
    mock.folders
        .lock()
        .unwrap()
        .insert("top".into(), Ok(entries));
    let (m, fs) = project_fs(mock, Duration::from_millis(20));
    let a = ["Project Files", "a.txt"];
    path(&fs, &a).await.unwrap();
    let fail = |e: ApiError| m.folders.lock().unwrap().insert("top".into(), Err(e));

    // The service answers with an error: that is the answer.
    tokio::time::sleep(Duration::from_millis(30)).await;
    fail(ApiError::Server {
        status: 503,
        detail: String::new(),
    });
    assert_eq!(errno(path(&fs, &a).await, Op::Lookup), Some(libc::EIO));

    // The service cannot be reached: the stale listing answers, and for a while it does so
    // without asking again.
    fail(ApiError::Network("connection refused".into()));
    let before = m.listings.load(Ordering::SeqCst);
    assert_eq!(path(&fs, &a).await.unwrap().size, 5);
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(path(&fs, &a).await.unwrap().size, 5);
    assert_eq!(m.listings.load(Ordering::SeqCst), before + 1);
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
    let fs = Fs::new(Arc::new(Mock::default()), Scope::All, cfg);
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
