//! What the API knows beyond bytes, through a real mount: older versions by path under the
//! unlisted `.versions`, extended attributes on every kind of node (with refs fetched on
//! demand), and the app's own OSS buckets as folders of keys.

use crate::support::digest::sha1_hex;
use crate::support::dm::{child, folder_by_path};
use crate::support::emulator::Emulator;
use crate::support::files::seed_file;
use crate::support::http::{enc, http};
use crate::support::mount::Mount;
use crate::support::process::run;
use crate::support::runtime::rt;
use crate::support::xattr::{xattr, xattr_names};
use serde_json::json;
use std::path::Path;

fn names_in(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .unwrap_or_else(|e| panic!("readdir {}: {e}", p.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn version_bytes(n: u8) -> Vec<u8> {
    (0..3000u32 * u32::from(n))
        .map(|i| (i as u8).wrapping_mul(n))
        .collect()
}

#[test]
fn versions_attributes_refs_and_buckets() {
    let seed = tempfile::tempdir().expect("tempdir");
    let files = seed.path().join("Hub/Project/Files");
    seed_file(&files.join("model.rvt"), &version_bytes(1));
    seed_file(&files.join("sub/xref.dwg"), b"referenced drawing");
    let emu = Emulator::seeded(seed.path(), &[]);
    let rt = rt();
    let at = ["Hub", "Project", "Files"];
    rt.block_on(emu.put_file(&at, "model.rvt", &version_bytes(2)));
    rt.block_on(emu.put_file(&at, "model.rvt", &version_bytes(3)));

    // An xref from model.rvt's tip to the drawing's version, as a desktop app records it.
    rt.block_on(async {
        let t = emu.token().await;
        let (project, files_id) = folder_by_path(&emu, &t, &[]).await;
        let (_, tip) = child(&emu, &t, &project, &files_id, "model.rvt", false).await;
        let tip = tip.expect("model tip");
        let (_, sub) = folder_by_path(&emu, &t, &["sub"]).await;
        let (_, xref) = child(&emu, &t, &project, &sub, "xref.dwg", false).await;
        let xref = xref.expect("xref tip");
        let r = http()
            .post(emu.url(&format!(
                "/data/v1/projects/{project}/versions/{}/relationships/refs",
                enc(tip["id"].as_str().expect("id"))
            )))
            .bearer_auth(&t)
            .header("content-type", "application/vnd.api+json")
            .body(
                json!({"jsonapi": {"version": "1.0"}, "data": {"type": "versions", "id": xref["id"],
                    "meta": {"extension": {"type": "xrefs:autodesk.core:Xref", "version": "1.0"}}}})
                .to_string(),
            )
            .send()
            .await
            .expect("POST ref");
        assert_eq!(r.status(), 204);

        // A bucket of 250 objects whose keys make folders, and one at its top.
        emu.create_bucket("apsfs-test-bucket", "temporary").await;
        let keys: Vec<String> = (0..250)
            .map(|i| format!("dir{}/sub/file-{i:03}.txt", i % 3))
            .chain(["top.txt".to_string()])
            .collect();
        let uploads = keys.chunks(32).map(|chunk| {
            let (emu, t) = (&emu, &t);
            async move {
                for k in chunk {
                    emu.upload_object(t, "apsfs-test-bucket", k, k.as_bytes())
                        .await;
                }
            }
        });
        futures_util::future::join_all(uploads).await;
    });

    let mnt = Mount::start(&emu.base, &["--buckets"]);
    let files = mnt.join("Hub/Project/Files");

    // Versions: the tip in the folder, every version by path, nothing extra in listings.
    assert_eq!(
        std::fs::read(files.join("model.rvt")).expect("tip"),
        version_bytes(3)
    );
    assert_eq!(
        names_in(&files),
        ["model.rvt", "sub"],
        ".versions is not listed"
    );
    let versions = files.join(".versions/model.rvt");
    assert_eq!(names_in(&versions), ["v1.rvt", "v2.rvt", "v3.rvt"]);
    for n in 1..=3u8 {
        let got = std::fs::read(versions.join(format!("v{n}.rvt"))).expect("version");
        assert_eq!(got, version_bytes(n), "v{n}");
    }
    let (code, out, _) = run("find", &[files.to_str().expect("utf-8")]);
    assert_eq!(code, 0);
    assert!(!out.contains(".versions"), "find never descends: {out}");
    assert_eq!(out.lines().count(), 4, "{out}");

    // Attributes on hubs, projects, folders and files, listed without a request.
    names_in(&files.join("sub"));
    rt.block_on(emu.reset_stats());
    let hub = mnt.join("Hub");
    let project = mnt.join("Hub/Project");
    let model = files.join("model.rvt");
    for p in [&hub, &project, &files, &model] {
        let names = xattr_names(p);
        assert!(
            names.contains(&"user.aps.id".to_string()),
            "{p:?} {names:?}"
        );
        assert!(
            names.contains(&"user.aps.type".to_string()),
            "{p:?} {names:?}"
        );
    }
    let requests = rt.block_on(emu.stats());
    let total: u64 = requests["requests"]
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
        .unwrap_or(0);
    assert_eq!(total, 0, "listxattr costs no request: {requests}");
    assert!(xattr(&hub, "user.aps.type")
        .expect("hub type")
        .starts_with("hubs:autodesk."));
    assert!(xattr(&project, "user.aps.type")
        .expect("project type")
        .starts_with("projects:autodesk."));
    assert!(xattr(&files, "user.aps.id")
        .expect("folder id")
        .starts_with("urn:adsk.wipprod:fs.folder:"));
    assert!(xattr(&model, "user.aps.id")
        .expect("item id")
        .starts_with("urn:adsk.wipprod:dm.lineage:"));
    assert_eq!(xattr(&model, "user.aps.version").expect("version"), "3");
    assert!(xattr(&model, "user.aps.version_id")
        .expect("version id")
        .ends_with("?version=3"));
    assert!(xattr(&model, "user.aps.storage")
        .expect("storage")
        .starts_with("urn:adsk.objects:os.object:wip.dm.prod/"));
    assert_eq!(
        xattr(&model, "user.aps.reserved").expect("reserved"),
        "false"
    );
    assert!(!xattr(&model, "user.aps.created_by")
        .expect("created by")
        .is_empty());
    assert_eq!(
        xattr(&versions.join("v1.rvt"), "user.aps.version").expect("v1"),
        "1"
    );
    assert_eq!(xattr(&model, "user.nothing"), Err(libc::ENODATA));
    assert_eq!(xattr(&model, "security.selinux"), Err(libc::EOPNOTSUPP));

    // Refs, on demand: the xref names the drawing by its path in the mount.
    let refs = xattr(&model, "user.aps.refs").expect("refs");
    let line = refs
        .lines()
        .find(|l| l.starts_with("xrefs from "))
        .unwrap_or_else(|| panic!("an xref in {refs:?}"));
    assert!(
        line.contains(" /Hub/Project/Files/sub/xref.dwg versions:"),
        "{line}"
    );
    let back = xattr(&files.join("sub/xref.dwg"), "user.aps.refs").expect("refs of target");
    assert!(
        back.lines()
            .any(|l| l.starts_with("xrefs to /Hub/Project/Files/model.rvt ")),
        "{back:?}"
    );

    // Buckets: 250 objects over three pages, keys with `/` as folders, bytes and attributes.
    let bucket = mnt.join("buckets/apsfs-test-bucket");
    assert!(names_in(&mnt.path()).contains(&"buckets".to_string()));
    assert_eq!(names_in(&bucket), ["dir0", "dir1", "dir2", "top.txt"]);
    let (code, out, _) = run("find", &[bucket.to_str().expect("utf-8"), "-type", "f"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 251);
    let one = bucket.join("dir1/sub/file-004.txt");
    assert_eq!(
        std::fs::read(&one).expect("object bytes"),
        b"dir1/sub/file-004.txt"
    );
    assert_eq!(
        xattr(&bucket, "user.aps.policy").expect("policy"),
        "temporary"
    );
    assert_eq!(
        xattr(&bucket, "user.aps.owner").expect("owner"),
        "test-client"
    );
    assert_eq!(
        xattr(&one, "user.aps.object_key").expect("key"),
        "dir1/sub/file-004.txt"
    );
    assert_eq!(
        xattr(&one, "user.aps.sha1").expect("sha1"),
        sha1_hex(b"dir1/sub/file-004.txt")
    );
    assert_eq!(
        xattr(&one, "user.aps.id").expect("object id"),
        "urn:adsk.objects:os.object:apsfs-test-bucket/dir1/sub/file-004.txt"
    );
    assert!(rt.block_on(emu.count("objects")) >= 3, "every page");
}
