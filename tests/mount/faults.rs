//! A mount under a misbehaving service: transient faults are retried (honouring Retry-After)
//! and never surface as wrong bytes; persistent ones become EIO promptly; tokens are refreshed
//! before they expire and again when refused.

use crate::support::emulator::Emulator;
use crate::support::files::seed_file;
use crate::support::mount::Mount;
use crate::support::process::run;
use crate::support::runtime::rt;
use std::time::{Duration, Instant};

fn seed() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    let dir = d.path().join("Hub/Project/Files/sub");
    for i in 0..40 {
        let body: Vec<u8> = (0..(i * 7919 + 100)).map(|b| (b * 13 + i) as u8).collect();
        seed_file(&dir.join(format!("f{i:02}.bin")), &body);
    }
    seed_file(
        &d.path().join("Hub/Project/Files/big.bin"),
        &vec![7u8; 3 << 20],
    );
    seed_file(&d.path().join("Hub/Project/Other/x.txt"), b"x");
    d
}

fn set_faults(emu: &Emulator, rt: &tokio::runtime::Runtime, body: serde_json::Value) {
    let (status, _) = rt.block_on(emu.put_faults(&body));
    assert_eq!(status, 200);
}

#[test]
fn transient_faults_are_retried_without_wrong_bytes() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &[]);
    let rt = rt();
    set_faults(
        &emu,
        &rt,
        serde_json::json!({"error_rate": 0.1, "throttle_rate": 0.1, "drop_rate": 0.1}),
    );
    let (code, out, err) = run(
        "diff",
        &[
            "-r",
            seed.path().to_str().expect("utf-8"),
            mnt.path().to_str().expect("utf-8"),
        ],
    );
    assert_eq!((code, out.as_str()), (0, ""), "diff under faults: {err}");
    let stats = rt.block_on(emu.stats());
    let statuses = &stats["statuses"];
    assert!(
        statuses["429"].as_u64().unwrap_or(0) > 0,
        "faults were injected: {stats}"
    );
    assert!(statuses["500"].as_u64().unwrap_or(0) + statuses["503"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn persistent_failure_is_eio_not_a_hang() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &[]);
    let rt = rt();
    set_faults(&emu, &rt, serde_json::json!({"error_rate": 1.0}));
    let started = Instant::now();
    let err = std::fs::read_dir(mnt.join("Hub/Project/Files")).expect_err("listing must fail");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "failed in {:?}",
        started.elapsed()
    );
    // The service recovers: so does the mount.
    set_faults(&emu, &rt, serde_json::json!({}));
    let n = std::fs::read_dir(mnt.join("Hub/Project/Files"))
        .expect("listing after recovery")
        .count();
    assert_eq!(n, 2);
}

#[test]
fn tokens_are_refreshed_before_expiry_and_after_refusal() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &["--token-ttl", "3"]);
    let mnt = Mount::start(&emu.base, &["--metadata-ttl", "1"]);
    let rt = rt();
    let files = mnt.join("Hub/Project/Files/sub");
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(
            std::fs::read_dir(&files).expect("list").count(),
            40,
            "round {round}"
        );
    }
    let tokens = rt.block_on(emu.count("token"));
    assert!(tokens >= 2, "tokens were refreshed: {tokens}");
    // The service forgets every token at once (its clock jumps): one 401, then a new token.
    rt.block_on(emu.advance_clock(3600));
    std::thread::sleep(Duration::from_millis(1100));
    let bytes = std::fs::read(files.join("f03.bin")).expect("read after tokens expired");
    assert_eq!(bytes.len(), 3 * 7919 + 100);
}

#[test]
fn expired_signed_urls_are_fetched_again() {
    use std::os::unix::fs::FileExt;
    let seed = tempfile::tempdir().expect("tempdir");
    seed_file(
        &seed.path().join("Hub/Project/Files/big.bin"),
        &vec![7u8; 16 << 20],
    );
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &[]);
    let rt = rt();
    let f = std::fs::File::open(mnt.join("Hub/Project/Files/big.bin")).expect("open");
    let mut buf = vec![0u8; 4096];
    f.read_at(&mut buf, 0).expect("first read");
    // Opening signed it (with whatever follows it in its folder) in one batch request.
    assert_eq!(rt.block_on(emu.count("batchsigneds3download")), 1);
    assert_eq!(rt.block_on(emu.count("signeds3download")), 0);
    // Past the URL's 60 minutes (and the token's): the cached URL now answers 403.
    rt.block_on(emu.advance_clock(3700));
    // Far beyond the read-ahead window, so this is a fresh request on the cached URL.
    f.read_at(&mut buf, 12 << 20)
        .expect("read with an expired URL");
    assert_eq!(buf, vec![7u8; 4096]);
    let stats = rt.block_on(emu.stats());
    assert_eq!(
        stats["statuses"]["403"], 1,
        "the expired URL was refused once: {stats}"
    );
    assert!(
        stats["requests"]["signeds3download"].as_u64() >= Some(1),
        "a fresh URL, for this object alone: {stats}"
    );
}

#[test]
fn slow_requests_do_not_block_others_and_reads_run_in_parallel() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &[]);
    let rt = rt();
    let sub = mnt.join("Hub/Project/Files/sub");
    assert_eq!(std::fs::read_dir(&sub).expect("list").count(), 40);
    set_faults(&emu, &rt, serde_json::json!({"latency_ms": 1500}));
    // A slow listing of another folder is under way...
    let top = mnt.join("Hub/Project");
    let slow = std::thread::spawn(move || {
        let t = Instant::now();
        std::fs::read_dir(top.join("Other"))
            .map(|d| d.count())
            .expect("slow listing");
        t.elapsed()
    });
    std::thread::sleep(Duration::from_millis(200));
    // ...while cached metadata answers at once.
    let t = Instant::now();
    assert_eq!(
        std::fs::metadata(sub.join("f05.bin")).expect("stat").len(),
        5 * 7919 + 100
    );
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "stat waited {:?}",
        t.elapsed()
    );
    assert!(slow.join().expect("thread") >= Duration::from_millis(1000));
    // Eight files, each costing two slow round trips, read at the same time.
    let t = Instant::now();
    let readers: Vec<_> = (10..18)
        .map(|i| {
            let p = sub.join(format!("f{i:02}.bin"));
            std::thread::spawn(move || std::fs::read(p).expect("read").len())
        })
        .collect();
    for (i, r) in (10..18).zip(readers) {
        assert_eq!(r.join().expect("reader"), i * 7919 + 100);
    }
    let took = t.elapsed();
    assert!(
        took < Duration::from_millis(3 * 2 * 1500),
        "8 parallel reads took {took:?}"
    );
}

#[test]
fn everything_at_once_still_copies_every_byte() {
    // Small files plus a few multi-MiB ones, copied with rsync --checksum while the service
    // throws 5xx, 429s, cut-off bodies, 3-second tokens and 2-second signed URLs at the mount.
    let seed = seed();
    for i in 0..3u8 {
        let body: Vec<u8> = (0..(5u32 << 20)).map(|b| (b % 253) as u8 ^ i).collect();
        std::fs::write(
            seed.path().join(format!("Hub/Project/Files/large-{i}.bin")),
            body,
        )
        .expect("write");
    }
    let emu = Emulator::seeded(
        seed.path(),
        &["--token-ttl", "3", "--url-ttl", "2", "--latency-ms", "10"],
    );
    let mnt = Mount::start(&emu.base, &[]);
    let rt = rt();
    set_faults(
        &emu,
        &rt,
        serde_json::json!({"error_rate": 0.05, "throttle_rate": 0.05, "drop_rate": 0.3, "latency_ms": 10, "url_ttl_secs": 2}),
    );
    let dest = tempfile::tempdir().expect("dest");
    let (code, _, err) = run(
        "rsync",
        &[
            "-a",
            "--checksum",
            &format!("{}/", mnt.path().display()),
            &format!("{}/", dest.path().display()),
        ],
    );
    assert_eq!(code, 0, "rsync under faults: {err}");
    let (code, out, err) = run(
        "diff",
        &[
            "-r",
            seed.path().to_str().expect("utf-8"),
            dest.path().to_str().expect("utf-8"),
        ],
    );
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let stats = rt.block_on(emu.stats());
    let total: u64 =
        40 * 100 + (0..40u64).map(|i| i * 7919).sum::<u64>() + (3 << 20) + 3 * (5 << 20) + 1;
    let served = stats["bytes_served"].as_u64().unwrap_or(0);
    // Cut-off bodies are resumed, not fetched again whole: little more than the data moves.
    assert!(
        served < total * 2,
        "served {served} for {total} bytes: {stats}"
    );
    assert!(
        stats["statuses"]["429"].as_u64().unwrap_or(0) > 0,
        "{stats}"
    );
}

#[test]
fn stalled_bodies_are_detected_and_retried() {
    let seed = tempfile::tempdir().expect("tempdir");
    let body: Vec<u8> = (0..(1u32 << 20)).map(|b| (b % 241) as u8).collect();
    seed_file(&seed.path().join("Hub/Project/Files/s.bin"), &body);
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &[]);
    let rt = rt();
    set_faults(&emu, &rt, serde_json::json!({"stall_rate": 1.0}));
    let reader = {
        let p = mnt.join("Hub/Project/Files/s.bin");
        std::thread::spawn(move || std::fs::read(p))
    };
    // Let the first transfer stall, then let the service behave: the stalled request must be
    // given up on (10 s without bytes) and the rest fetched again.
    std::thread::sleep(Duration::from_secs(2));
    set_faults(&emu, &rt, serde_json::json!({}));
    let started = Instant::now();
    let got = reader.join().expect("reader").expect("read completes");
    assert!(got == body, "right bytes after a stall");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}
