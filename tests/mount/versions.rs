//! Freshness: within the TTL the mount answers from its cache; after it, a new version or a
//! new file uploaded through the API is visible, while a handle opened earlier keeps reading
//! the version it opened.

use crate::support::emulator::Emulator;
use crate::support::files::seed_file;
use crate::support::mount::Mount;
use crate::support::runtime::rt;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};

#[test]
fn new_versions_show_after_the_ttl_and_open_handles_keep_theirs() {
    let seed = tempfile::tempdir().expect("tempdir");
    let v1 = vec![b'A'; 1000];
    seed_file(&seed.path().join("Hub/Project/Files/doc.txt"), &v1);
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &["--metadata-ttl", "2"]);
    let rt = rt();
    let doc = mnt.join("Hub/Project/Files/doc.txt");

    let old = std::fs::File::open(&doc).expect("open v1");
    let ino = old.metadata().expect("stat").ino();
    let mut first = vec![0u8; 10];
    old.read_at(&mut first, 0).expect("read v1");
    assert_eq!(first, vec![b'A'; 10]);

    let v2 = vec![b'B'; 1500];
    rt.block_on(emu.put_file(&["Hub", "Project", "Files"], "doc.txt", &v2));
    rt.block_on(emu.put_file(&["Hub", "Project", "Files"], "new.txt", b"brand new\n"));
    assert_eq!(
        std::fs::metadata(&doc).expect("stat").len(),
        1000,
        "inside the TTL"
    );
    assert!(
        !mnt.join("Hub/Project/Files/new.txt").exists(),
        "inside the TTL"
    );

    std::thread::sleep(std::time::Duration::from_millis(2600));
    let meta = std::fs::metadata(&doc).expect("stat after TTL");
    assert_eq!(meta.len(), 1500, "the new version after the TTL");
    assert_ne!(meta.ino(), ino, "each version is its own inode");
    assert_eq!(
        old.metadata().expect("fstat old").len(),
        1000,
        "the open file is unchanged"
    );
    let mut now = Vec::new();
    std::fs::File::open(&doc)
        .expect("open v2")
        .read_to_end(&mut now)
        .expect("read v2");
    assert_eq!(now, v2);
    assert_eq!(
        std::fs::read(mnt.join("Hub/Project/Files/new.txt")).expect("new file"),
        b"brand new\n"
    );
    let listing: Vec<String> = std::fs::read_dir(mnt.join("Hub/Project/Files"))
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listing.len(), 2, "{listing:?}");

    // The handle opened on version 1 still reads version 1, whole.
    let mut buf = vec![0u8; 4096];
    let n = old.read_at(&mut buf, 0).expect("read old handle");
    assert_eq!(n, v1.len(), "got {:?}", String::from_utf8_lossy(&buf[..n]));
    assert_eq!(&buf[..n], &v1[..], "the open handle keeps its version");
}
