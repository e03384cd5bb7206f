//! `apsfs mount` over the emulator's awkward generated cases: the naming policy
//! (src/fs/names.rs), the visibility policy (src/fs/listing.rs), determinism across remounts,
//! a full `rsync -a` of the mount, and `--project`.

use crate::support::dm::list_all;
use crate::support::emulator::Emulator;
use crate::support::generated::generated_bytes;
use crate::support::http::enc;
use crate::support::mount::Mount;
use crate::support::process::run;
use crate::support::runtime::rt;
use crate::support::walk::walk;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;

const AWKWARD: &str = "Hub 1/Project 1/Project Files/Awkward";
const STORAGE_PREFIX: &str = "urn:adsk.objects:os.object:wip.dm.prod/";

fn awkward_emulator() -> Emulator {
    Emulator::start(&["--generate", "awkward"])
}

/// Names in a directory of the mount (panics on any error).
fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .into_string()
                .expect("utf-8 name")
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// `NAME (xxxxxxxx)EXT` with 8 lowercase hex digits; returns the digits.
fn dedupe_tag<'a>(name: &'a str, stem: &str, ext: &str) -> Option<&'a str> {
    let hex = name
        .strip_prefix(stem)?
        .strip_prefix(" (")?
        .strip_suffix(ext)?
        .strip_suffix(')')?;
    (hex.len() == 8
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then_some(hex)
}

// ---------------------------------------------------------------------------------------------
// What the emulator's API says the Awkward folder holds.

/// One entry of a folder listing as the Data Management API returns it.
#[derive(Debug, Clone)]
struct RemoteEntry {
    is_dir: bool,
    /// The name the mount is built from: the tip version's name for items.
    raw: String,
    /// Tip version `createTime` (items) or folder `createTime`.
    created: String,
    /// Object key of the tip's storage, when it has one.
    key: Option<String>,
    /// `storageSize` of the tip, when listed.
    listed_size: Option<u64>,
}

fn id_named<'a>(list: &'a [Value], name: &str) -> &'a str {
    list.iter()
        .find(|v| v["attributes"]["name"] == name || v["attributes"]["displayName"] == name)
        .and_then(|v| v["id"].as_str())
        .unwrap_or_else(|| panic!("no {name:?} in {list:?}"))
}

/// (hub id, project id, Project Files id) of "Hub 1/Project 1".
async fn project_ids(emu: &Emulator, token: &str) -> (String, String, String) {
    let (hubs, _, _) = list_all(emu, token, "/project/v1/hubs").await;
    let hub = id_named(&hubs, "Hub 1").to_string();
    let (projects, _, _) = list_all(
        emu,
        token,
        &format!("/project/v1/hubs/{}/projects", enc(&hub)),
    )
    .await;
    let project = id_named(&projects, "Project 1").to_string();
    let (tops, _, _) = list_all(
        emu,
        token,
        &format!(
            "/project/v1/hubs/{}/projects/{}/topFolders",
            enc(&hub),
            enc(&project)
        ),
    )
    .await;
    let top = id_named(&tops, "Project Files").to_string();
    (hub, project, top)
}

/// The entries of the Awkward folder, as listed (hidden entries are not listed by default).
async fn awkward_entries(emu: &Emulator, token: &str) -> Vec<RemoteEntry> {
    let (_, project, top) = project_ids(emu, token).await;
    let contents = |folder: &str| {
        format!(
            "/data/v1/projects/{}/folders/{}/contents",
            enc(&project),
            enc(folder)
        )
    };
    let (top_data, _, _) = list_all(emu, token, &contents(&top)).await;
    let awkward = id_named(&top_data, "Awkward").to_string();
    let (data, included, _) = list_all(emu, token, &contents(&awkward)).await;
    data.iter()
        .map(|v| {
            let id = v["id"].as_str().expect("id");
            if v["type"] == "folders" {
                return RemoteEntry {
                    is_dir: true,
                    raw: v["attributes"]["name"].as_str().expect("name").into(),
                    created: v["attributes"]["createTime"].as_str().expect("ct").into(),
                    key: None,
                    listed_size: None,
                };
            }
            let tip_id = &v["relationships"]["tip"]["data"]["id"];
            let tip = included
                .iter()
                .find(|i| &i["id"] == tip_id)
                .unwrap_or_else(|| panic!("tip of {id} not included"));
            let a = &tip["attributes"];
            RemoteEntry {
                is_dir: false,
                raw: a["name"].as_str().expect("tip name").into(),
                created: a["createTime"].as_str().expect("tip createTime").into(),
                key: tip["relationships"]["storage"]["data"]["id"]
                    .as_str()
                    .map(|s| {
                        s.strip_prefix(STORAGE_PREFIX)
                            .unwrap_or_else(|| panic!("storage urn {s}"))
                            .to_string()
                    }),
                listed_size: a["storageSize"].as_u64(),
            }
        })
        .collect()
}

/// OSS object size from `/details`.
async fn oss_size(emu: &Emulator, token: &str, key: &str) -> u64 {
    let (status, body) = emu
        .get_json(
            token,
            &format!("/oss/v2/buckets/wip.dm.prod/objects/{}/details", enc(key)),
        )
        .await;
    assert_eq!(status, 200, "details of {key}: {body}");
    body["size"].as_u64().expect("size")
}

/// Names of remote entries whose mount name is not hashed, and the name the policy gives them.
const PLAIN: &[(&str, &str)] = &[
    ("Three Versions.rvt", "Three Versions.rvt"),
    ("No Size.pdf", "No Size.pdf"),
    ("slash/in name.txt", "slash%2Fin name.txt"),
    ("back\\slash.txt", "back\\slash.txt"),
    (" leading space.txt", " leading space.txt"),
    ("trailing space.txt ", "trailing space.txt "),
    ("設計図 平面.dwg", "設計図 平面.dwg"),
    ("Ünïcødé façade.pdf", "Ünïcødé façade.pdf"),
    ("emoji 🏗 site.txt", "emoji 🏗 site.txt"),
    (".", "%2E"),
    ("..", "%2E%2E"),
    ("nul\0byte.txt", "nul%00byte.txt"),
    ("tab\tname.txt", "tab\tname.txt"),
    ("percent %41 & amp.txt", "percent %41 & amp.txt"),
    ("question?.txt", "question?.txt"),
    ("Restricted", "Restricted"),
    ("Unmerged Upload.bin", "Unmerged Upload.bin"),
    ("empty.txt", "empty.txt"),
    ("Locked.rvt", "Locked.rvt"),
    ("Host.dwg", "Host.dwg"),
    ("Xref.dwg", "Xref.dwg"),
];

/// Listed by the API but never shown: cloud-only designs have no bytes.
const NEVER_SHOWN: &[&str] = &[
    "Hidden Item.txt",
    "Hidden Folder",
    "Deleted Drawing.dwg",
    "Cloud Design.f3d",
];

#[test]
fn awkward_folder_names_follow_the_documented_policy() {
    let emu = awkward_emulator();
    let rt = rt();
    let token = rt.block_on(emu.token());
    let remote = rt.block_on(awkward_entries(&emu, &token));
    let m = Mount::start(&emu.base, &[]);
    let dir = m.join(AWKWARD);
    let shown = names(&dir);

    // --- Names that follow from the rules alone.
    let mut expected: BTreeSet<String> = PLAIN.iter().map(|(_, n)| n.to_string()).collect();
    expected.insert("Duplicate.pdf".into());
    expected.insert("Same Name".into());

    let dup_other: Vec<&String> = shown
        .iter()
        .filter(|n| dedupe_tag(n, "Duplicate", ".pdf").is_some())
        .collect();
    assert_eq!(dup_other.len(), 1, "one renamed Duplicate: {shown:#?}");
    let dup_other = dup_other[0].clone();
    let same_file: Vec<&String> = shown
        .iter()
        .filter(|n| dedupe_tag(n, "Same Name", "").is_some())
        .collect();
    assert_eq!(
        same_file.len(),
        1,
        "one renamed 'Same Name' file: {shown:#?}"
    );
    let same_file = same_file[0].clone();
    let long: Vec<&String> = shown.iter().filter(|n| n.starts_with("LLLL")).collect();
    assert_eq!(long.len(), 1, "{shown:#?}");
    let long = long[0].clone();
    expected.extend([dup_other.clone(), same_file.clone(), long.clone()]);
    assert_eq!(shown, expected, "Awkward listing");

    // The 300-character name: ≤255 bytes, as much of its start as fits, ~ and 16 hex digits,
    // extension kept.
    assert!(long.len() <= 255, "{} bytes", long.len());
    let tag = long
        .strip_suffix(".txt")
        .and_then(|s| s.rsplit_once('~'))
        .unwrap_or_else(|| panic!("{long:?} ends ~<hex>.txt"));
    assert!(
        tag.0.bytes().all(|b| b == b'L') && tag.0.len() >= 200,
        "{long:?}"
    );
    assert!(
        tag.1.len() == 16 && tag.1.bytes().all(|b| b.is_ascii_hexdigit()),
        "{long:?}"
    );
    assert!(
        long.len() >= 250,
        "keeps as much as fits: {} bytes",
        long.len()
    );

    // --- Which remote entry each name stands for.
    let by_raw =
        |raw: &str| -> Vec<&RemoteEntry> { remote.iter().filter(|e| e.raw == raw).collect() };
    let mut name_of: BTreeMap<String, RemoteEntry> = BTreeMap::new();
    for (raw, name) in PLAIN {
        let found = by_raw(raw);
        assert_eq!(found.len(), 1, "remote {raw:?}");
        name_of.insert(name.to_string(), found[0].clone());
    }
    // Two files called Duplicate.pdf: the older keeps the name.
    let mut dups = by_raw("Duplicate.pdf");
    assert_eq!(dups.len(), 2);
    dups.sort_by(|a, b| a.created[..19].cmp(&b.created[..19]));
    name_of.insert("Duplicate.pdf".into(), dups[0].clone());
    name_of.insert(dup_other.clone(), dups[1].clone());
    // A folder and a file called Same Name: the folder keeps the name.
    let same = by_raw("Same Name");
    assert_eq!(same.len(), 2);
    let (folder, file): (Vec<&RemoteEntry>, Vec<&RemoteEntry>) =
        same.iter().partition(|e| e.is_dir);
    name_of.insert("Same Name".into(), folder[0].clone());
    name_of.insert(same_file.clone(), file[0].clone());
    let long_remote: Vec<&RemoteEntry> = remote.iter().filter(|e| e.raw.len() == 300).collect();
    assert_eq!(long_remote.len(), 1);
    name_of.insert(long.clone(), long_remote[0].clone());
    assert_eq!(name_of.len(), shown.len());

    // --- Every shown entry: right kind, right size, right bytes.
    for (name, e) in &name_of {
        let path = dir.join(name);
        let md = std::fs::metadata(&path).unwrap_or_else(|err| panic!("stat {name:?}: {err}"));
        assert_eq!(md.is_dir(), e.is_dir, "{name:?} kind");
        if e.is_dir {
            continue;
        }
        let key = e.key.as_deref().expect("shown files have storage");
        let size = match e.listed_size {
            Some(s) => s,
            None => rt.block_on(oss_size(&emu, &token, key)),
        };
        assert_eq!(md.len(), size, "{name:?} size");
        let bytes = std::fs::read(&path).unwrap_or_else(|err| panic!("read {name:?}: {err}"));
        assert_eq!(bytes.len() as u64, size, "{name:?} bytes read");
        assert!(
            bytes == generated_bytes(key, 0, size as usize),
            "{name:?} content differs"
        );
    }

    // Specific cases the brief names.
    let three = std::fs::metadata(dir.join("Three Versions.rvt")).unwrap();
    assert_eq!(three.len(), 3000, "the tip (v3) is shown");
    assert_eq!(std::fs::metadata(dir.join("empty.txt")).unwrap().len(), 0);
    assert!(std::fs::read(dir.join("empty.txt")).unwrap().is_empty());
    let no_size = name_of["No Size.pdf"].clone();
    assert!(
        no_size.listed_size.is_none(),
        "the listing omits storageSize"
    );
    let real = rt.block_on(oss_size(&emu, &token, no_size.key.as_deref().unwrap()));
    assert!(real > 0);
    assert_eq!(
        std::fs::metadata(dir.join("No Size.pdf")).unwrap().len(),
        real
    );
    // The duplicates are different files.
    assert_ne!(
        std::fs::read(dir.join("Duplicate.pdf")).unwrap(),
        std::fs::read(dir.join(&dup_other)).unwrap()
    );

    // Unmerged (chunked) upload: 12 MiB, random access matches too.
    let unmerged = dir.join("Unmerged Upload.bin");
    assert_eq!(std::fs::metadata(&unmerged).unwrap().len(), 12 << 20);
    let key = name_of["Unmerged Upload.bin"].key.clone().unwrap();
    let f = std::fs::File::open(&unmerged).unwrap();
    for off in [0u64, (5 << 20) - 3, (12 << 20) - 100] {
        let mut buf = vec![0u8; 100];
        f.read_exact_at(&mut buf, off).unwrap();
        let want = generated_bytes(&key, off, 100);
        assert_eq!(buf, want, "Unmerged Upload.bin at {off}");
    }
    let mut past = [0u8; 10];
    assert_eq!(f.read_at(&mut past, 12 << 20).unwrap(), 0, "EOF at 12 MiB");

    // Restricted: an empty directory.
    let restricted = dir.join("Restricted");
    assert!(std::fs::metadata(&restricted).unwrap().is_dir());
    assert!(names(&restricted).is_empty(), "Restricted lists empty");
    assert_eq!(
        std::fs::metadata(restricted.join("secret.txt"))
            .unwrap_err()
            .kind(),
        std::io::ErrorKind::NotFound
    );

    // Never shown, neither in readdir nor by lookup.
    for name in NEVER_SHOWN {
        assert!(!shown.contains(*name), "{name:?} must not be listed");
        let err = std::fs::metadata(dir.join(name)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{name:?}");
    }
    // The raw spelling with a slash is not reachable: it is not a single component.
    assert!(!shown.contains("slash") && !dir.join("slash/in name.txt").exists());

    // The Fusion Team hub: plain files only, designs have no storage.
    assert_eq!(names(&m.path()), set(&["Fusion Team", "Hub 1"]));
    assert_eq!(names(&m.join("Fusion Team")), set(&["Fusion Designs"]));
    assert_eq!(
        names(&m.join("Fusion Team/Fusion Designs")),
        set(&["Designs"])
    );
    let designs = m.join("Fusion Team/Fusion Designs/Designs");
    assert_eq!(names(&designs), set(&["notes.txt", "spec.pdf"]));
    for n in ["notes.txt", "spec.pdf"] {
        let md = std::fs::metadata(designs.join(n)).unwrap();
        let bytes = std::fs::read(designs.join(n)).unwrap();
        assert!(md.len() > 0);
        assert_eq!(bytes.len() as u64, md.len(), "{n}");
    }
    for n in ["Bracket.f3d", "Housing.f3d", "Assembly.f3d"] {
        assert!(!designs.join(n).exists(), "{n} is a cloud design");
    }
}

/// Runs `ls -A DIR` without any capability, as an ordinary owner of the mount would (uid 0
/// without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH gets plain permission checks).
fn ls_unprivileged(dir: &Path) -> (i32, String, String) {
    run(
        "setpriv",
        &[
            "--bounding-set=-all",
            "--inh-caps=-all",
            "ls",
            "-A",
            dir.to_str().unwrap(),
        ],
    )
}

/// "Restricted" (the service answers 403 for its contents) is an empty directory, for the
/// mount's owner too, and stays one: the answer must not change once the listing was tried and
/// the kernel's attribute cache expired (`--metadata-ttl 1`).
#[test]
fn restricted_folder_stays_an_empty_directory_for_its_owner() {
    let emu = awkward_emulator();
    let m = Mount::start(&emu.base, &["--metadata-ttl", "1"]);
    let restricted = m.join(&format!("{AWKWARD}/Restricted"));
    let (code, out, err) = ls_unprivileged(&restricted);
    assert_eq!((code, out.as_str()), (0, ""), "first ls: {err}");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (code, out, err) = ls_unprivileged(&restricted);
    assert_eq!((code, out.as_str()), (0, ""), "ls after the TTL: {err}");
    let mode = std::fs::metadata(&restricted).unwrap().permissions().mode();
    assert_eq!(mode & 0o500, 0o500, "owner may list it: mode {mode:o}");
}

// ---------------------------------------------------------------------------------------------
// Determinism.

/// Everything `stat` and `readdir` say about the tree below `root`, keyed by relative path.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Stat {
    ino: u64,
    dir: bool,
    size: u64,
    mtime: i64,
}

/// `Stat` of every entry below `root`, checking on the way that readdir and stat agree on each
/// inode number.
fn stats(root: &Path) -> BTreeMap<String, Stat> {
    walk(root)
        .map(|e| {
            let child = &e.rel;
            assert_eq!(
                e.readdir_ino,
                e.meta.ino(),
                "readdir d_ino == st_ino for {child:?}"
            );
            let stat = Stat {
                ino: e.meta.ino(),
                dir: e.meta.is_dir(),
                size: e.meta.len(),
                mtime: e.meta.mtime(),
            };
            (e.rel, stat)
        })
        .collect()
}

/// Hubs and projects carry no times in the API, so their directories' times are not compared.
fn comparable(mut t: BTreeMap<String, Stat>) -> BTreeMap<String, Stat> {
    for (path, s) in t.iter_mut() {
        if path.matches('/').count() < 2 {
            s.mtime = 0;
        }
    }
    t
}

#[test]
fn remount_gives_identical_names_and_inodes() {
    let emu = awkward_emulator();
    let first = {
        let m = Mount::start(&emu.base, &[]);
        stats(&m.path())
    };
    assert!(first.len() > 100, "{} entries", first.len());
    assert!(first.contains_key(&format!("{AWKWARD}/Three Versions.rvt")));
    let inos: BTreeSet<u64> = first.values().map(|s| s.ino).collect();
    assert_eq!(inos.len(), first.len(), "inode numbers are unique");

    let second = {
        let m = Mount::start(&emu.base, &[]);
        stats(&m.path())
    };
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>(),
        "same paths"
    );
    for (path, a) in &first {
        let b = &second[path];
        assert_eq!(a.ino, b.ino, "st_ino of {path:?}");
        assert_eq!((a.dir, a.size), (b.dir, b.size), "{path:?}");
    }
    assert_eq!(comparable(first.clone()), comparable(second), "same stats");

    // A fresh emulator with the same spec serves the same world: same names, same inodes.
    drop(emu);
    let emu2 = awkward_emulator();
    let third = {
        let m = Mount::start(&emu2.base, &[]);
        stats(&m.path())
    };
    assert_eq!(
        comparable(first),
        comparable(third),
        "same after an emulator restart"
    );
}

// ---------------------------------------------------------------------------------------------
// rsync.

/// Relative path → Some(size) for files, None for directories.
fn tree(root: &Path) -> BTreeMap<String, Option<u64>> {
    walk(root)
        .map(|e| {
            let size = (!e.meta.is_dir()).then_some(e.meta.len());
            (e.rel, size)
        })
        .collect()
}

#[test]
fn rsync_copies_the_whole_mount_twice_without_errors() {
    let emu = awkward_emulator();
    let m = Mount::start(&emu.base, &[]);
    let dest = tempfile::tempdir().expect("dest");
    let src = format!("{}/", m.path().display());
    let dst = format!("{}/", dest.path().display());

    let (code, _, stderr) = run("rsync", &["-a", &src, &dst]);
    assert_eq!(code, 0, "first rsync: {stderr}");
    assert!(stderr.trim().is_empty(), "first rsync stderr: {stderr}");
    let want = tree(&m.path());
    assert!(want.len() > 100);
    assert_eq!(
        tree(dest.path()),
        want,
        "same files and sizes after one rsync"
    );
    for (rel, size) in &want {
        if size.is_some() {
            let a = std::fs::read(m.path().join(rel)).unwrap();
            let b = std::fs::read(dest.path().join(rel)).unwrap();
            assert!(a == b, "content of {rel:?}");
        }
    }

    // Second run: nothing to fix, no error, no file sent again (sizes and times are stable).
    let (code, out, stderr) = run("rsync", &["-a", "--itemize-changes", &src, &dst]);
    assert_eq!(code, 0, "second rsync: {stderr}");
    assert!(stderr.trim().is_empty(), "second rsync stderr: {stderr}");
    let resent: Vec<&str> = out.lines().filter(|l| l.starts_with(">f")).collect();
    assert!(resent.is_empty(), "files transferred again: {resent:#?}");
    assert_eq!(
        tree(dest.path()),
        want,
        "same files and sizes after two rsyncs"
    );
}

// ---------------------------------------------------------------------------------------------
// --project.

#[test]
fn project_option_puts_top_folders_at_the_root() {
    let emu = awkward_emulator();
    let by_name = Mount::start(&emu.base, &["--project", "Hub 1/Project 1"]);
    assert_eq!(names(&by_name.path()), set(&["Plans", "Project Files"]));
    let three = by_name.join("Project Files/Awkward/Three Versions.rvt");
    assert_eq!(std::fs::metadata(&three).unwrap().len(), 3000);
    assert!(by_name
        .join("Project Files/Awkward/Duplicate.pdf")
        .is_file());
    assert!(!by_name.join("Hub 1").exists());
    let top_ino = std::fs::metadata(by_name.join("Project Files"))
        .unwrap()
        .ino();

    // Ids work as well as names, and give the same inodes.
    let rt = rt();
    let token = rt.block_on(emu.token());
    let (hub, project, _) = rt.block_on(project_ids(&emu, &token));
    let spec = format!("{hub}/{project}");
    let by_id = Mount::start(&emu.base, &["--project", &spec]);
    assert_eq!(names(&by_id.path()), set(&["Plans", "Project Files"]));
    assert_eq!(
        std::fs::metadata(by_id.join("Project Files"))
            .unwrap()
            .ino(),
        top_ino
    );
    assert_eq!(
        names(&by_id.join("Project Files/Awkward")),
        names(&by_name.join("Project Files/Awkward"))
    );

    // The Fusion Team project by name.
    let fusion = Mount::start(&emu.base, &["--project", "Fusion Team/Fusion Designs"]);
    assert_eq!(names(&fusion.path()), set(&["Designs"]));
    assert_eq!(
        names(&fusion.join("Designs")),
        set(&["notes.txt", "spec.pdf"])
    );
}
