//! The read path through a real mount: sequential reads become few large requests with the
//! right bytes, random reads are exact, a re-read costs nothing (page cache within a mount,
//! disk cache across mounts).

use crate::support::dm::{contents_path, folder_by_path};
use crate::support::emulator::Emulator;
use crate::support::generated::generated_bytes;
use crate::support::mount::Mount;
use crate::support::runtime::rt;
use std::io::Read;
use std::os::unix::fs::FileExt;

const LARGE: u64 = 96 << 20;

/// Object key of the one file in the generated "Large" folder.
fn large_file_key(emu: &Emulator, rt: &tokio::runtime::Runtime) -> String {
    rt.block_on(async {
        let token = emu.token().await;
        let (project, large) = folder_by_path(emu, &token, &["Large"]).await;
        let (_, doc) = emu.get_json(&token, &contents_path(&project, &large)).await;
        let storage = doc["included"][0]["relationships"]["storage"]["data"]["id"]
            .as_str()
            .expect("storage")
            .to_string();
        storage.split_once('/').expect("bucket/key").1.to_string()
    })
}

#[test]
fn sequential_and_random_reads() {
    let emu = Emulator::start(&["--generate", &format!("items=1,folders=0,large=1x{LARGE}")]);
    let mnt = Mount::start(&emu.base, &[]);
    let rt = rt();
    let key = large_file_key(&emu, &rt);
    let path = mnt.join("Hub 1/Project 1/Project Files/Large/large-1.bin");

    let mut all = Vec::new();
    std::fs::File::open(&path)
        .expect("open")
        .read_to_end(&mut all)
        .expect("read");
    assert_eq!(all.len() as u64, LARGE);
    assert!(
        all == generated_bytes(&key, 0, LARGE as usize),
        "sequential bytes"
    );
    let gets = rt.block_on(emu.count("signed_get"));
    // 768 requests of 128 KiB without read-ahead; parts of up to 4 MiB with it. Bounded
    // loosely: under CPU contention the kernel splits and reorders its own read-ahead.
    assert!(
        gets <= 128,
        "{gets} range requests for a 96 MiB sequential read"
    );
    // Signed once, in the batch the open sent.
    assert_eq!(rt.block_on(emu.count("batchsigneds3download")), 1);
    assert_eq!(rt.block_on(emu.count("signeds3download")), 0);

    // Random 4 KiB reads on a second handle: exact ranges, right bytes.
    let f = std::fs::File::open(&path).expect("open");
    let before = rt.block_on(emu.stats())["bytes_served"]
        .as_u64()
        .unwrap_or(0);
    for off in [90_000_001u64, 7, 50_000_000, 33_333_333] {
        let mut buf = vec![0u8; 4096];
        f.read_at(&mut buf, off).expect("pread");
        assert_eq!(buf, generated_bytes(&key, off, 4096), "at {off}");
    }
    // Everything was already in the page cache: the open was kept, no bytes moved.
    let after = rt.block_on(emu.stats())["bytes_served"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(
        after, before,
        "re-reads within the mount come from the page cache"
    );
}

#[test]
fn disk_cache_serves_a_second_mount_without_downloads() {
    let emu = Emulator::start(&["--generate", "items=1,folders=0,large=1x24MiB"]);
    let cache = tempfile::tempdir().expect("cache dir");
    let dir = cache.path().to_str().expect("utf-8");
    let rt = rt();
    let key = large_file_key(&emu, &rt);
    let rel = "Hub 1/Project 1/Project Files/Large/large-1.bin";
    {
        let mnt = Mount::start(&emu.base, &["--cache-dir", dir, "--cache-size", "1GiB"]);
        let bytes = std::fs::read(mnt.join(rel)).expect("first read");
        assert!(bytes == generated_bytes(&key, 0, 24 << 20));
    }
    // Blocks are written off the read path; give the last ones a moment.
    std::thread::sleep(std::time::Duration::from_millis(500));
    rt.block_on(emu.reset_stats());
    let mnt = Mount::start(&emu.base, &["--cache-dir", dir, "--cache-size", "1GiB"]);
    let bytes = std::fs::read(mnt.join(rel)).expect("second read");
    assert!(
        bytes == generated_bytes(&key, 0, 24 << 20),
        "bytes from the disk cache"
    );
    let stats = rt.block_on(emu.stats());
    assert_eq!(
        stats["requests"]["signed_get"].as_u64().unwrap_or(0),
        0,
        "{stats}"
    );
    for signing in ["signeds3download", "batchsigneds3download"] {
        assert_eq!(
            stats["requests"][signing].as_u64().unwrap_or(0),
            0,
            "{stats}"
        );
    }
    assert_eq!(stats["bytes_served"], 0, "{stats}");
}
