//! A mount in front of a hostile or broken server (the emulator's hostile fault modes): no
//! panic, no credential sent to another origin, no wrong byte, no caller held for minutes, and
//! an unmount that never waits for the service.

use crate::support::emulator::Emulator;
use crate::support::files::seed_file;
use crate::support::mount::{Foreground, Mount, Stderr};
use crate::support::process::{run_apsfs, s, wait_timeout};
use crate::support::runtime::rt;
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SMALL: &[u8] = b"the right bytes\n";

/// `Files/a.txt`, folders `d1`..`d6` of five files each (each listed fresh by one scenario),
/// and `many/` of 450 files (three pages).
fn seed() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    let files = d.path().join("Hub/Project/Files");
    seed_file(&files.join("a.txt"), SMALL);
    for k in 1..=6 {
        for i in 0..5 {
            seed_file(
                &files.join(format!("d{k}/f{i}.txt")),
                format!("file {i} of d{k}\n").as_bytes(),
            );
        }
    }
    for i in 0..450 {
        seed_file(&files.join(format!("many/m{i:03}.txt")), b"m");
    }
    d
}

fn faults(emu: &Emulator, body: Value) {
    let (status, answer) = rt().block_on(emu.put_faults(&body));
    assert_eq!(status, 200, "{body} refused: {answer}");
}

fn stats(emu: &Emulator) -> Value {
    rt().block_on(emu.stats())
}

fn reset(emu: &Emulator) {
    rt().block_on(emu.reset_stats());
}

fn count(stats: &Value, route: &str) -> u64 {
    stats["requests"][route].as_u64().unwrap_or(0)
}

fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// A foreground mount of `emu` with test credentials, its stderr in `log`.
fn foreground(emu: &Emulator, mnt: &Path, log: &Path, extra: &[&str]) -> Foreground {
    let mut args = vec![
        "--base-url",
        &emu.base,
        "--client-id",
        "test-client",
        "--client-secret",
        "test-secret",
    ];
    args.extend_from_slice(extra);
    let m = Foreground::spawn(
        mnt,
        &args,
        &[("RUST_LOG", "apsfs=debug")],
        Stderr::File(log),
    );
    assert!(m.first.starts_with("mounted "), "{}", m.first);
    m
}

fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib / 1024
}

#[test]
fn huge_token_lifetimes_do_not_panic() {
    let seed = seed();
    for expires_in in [u64::MAX, i64::MAX as u64] {
        let emu = Emulator::seeded(seed.path(), &[]);
        faults(&emu, json!({ "token_expires_in": expires_in }));
        let mnt = Mount::start(&emu.base, &[]);
        assert_eq!(
            std::fs::read(mnt.join("Hub/Project/Files/a.txt")).expect("read"),
            SMALL,
            "expires_in {expires_in}"
        );
        assert!(stats(&emu)["injected"]["token_expires_in"].as_u64() > Some(0));
    }
}

#[test]
fn redirects_to_another_origin_are_refused_and_same_origin_ones_followed() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &[]);
    let files = mnt.join("Hub/Project/Files");
    // Listed before the faults, so each scenario below asks for one fresh folder.
    std::fs::read_dir(&files).expect("list Files").count();

    faults(&emu, json!({"redirect": "api_foreign"}));
    let err = std::fs::read_dir(files.join("d1")).expect_err("a foreign answer is no listing");
    assert_eq!(errno(&err), libc::EIO, "{err}");
    let st = stats(&emu);
    assert!(st["redirects"].as_u64() > Some(0), "{st}");
    assert_eq!(st["foreign"]["requests"], 0, "not even asked: {st}");

    faults(&emu, json!({"redirect": "api_same"}));
    let n = std::fs::read_dir(files.join("d2"))
        .expect("same origin")
        .count();
    assert_eq!(n, 5);

    faults(&emu, json!({"redirect": "storage_foreign"}));
    reset(&emu);
    let got = std::fs::read(files.join("d3/f1.txt")).expect("storage may redirect");
    assert_eq!(got, b"file 1 of d3\n");
    let st = stats(&emu);
    assert!(st["foreign"]["requests"].as_u64() > Some(0), "{st}");
    assert_eq!(st["foreign"]["with_credentials"], 0, "{st}");
}

#[test]
fn a_token_endpoint_redirected_elsewhere_gets_no_secret() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    faults(&emu, json!({"redirect": "token_foreign"}));
    let err = match Mount::try_start(&emu.base, &[]) {
        Ok(_) => panic!("a token from another origin must not be taken"),
        Err(e) => e,
    };
    assert!(err.contains("redirect"), "{err}");
    let st = stats(&emu);
    assert_eq!(st["foreign"]["requests"], 0, "{st}");
    assert_eq!(st["foreign"]["with_credentials"], 0, "{st}");
}

#[test]
fn a_lying_object_count_costs_only_the_real_pages() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &[]);
    faults(&emu, json!({"object_count": 1_000_000_000_000u64}));
    reset(&emu);
    let n = std::fs::read_dir(mnt.join("Hub/Project/Files/many"))
        .expect("list")
        .count();
    assert_eq!(n, 450);
    let st = stats(&emu);
    eprintln!(
        "objectCount 10^12: {n} entries, {} folder_contents requests",
        count(&st, "folder_contents")
    );
    // Three real pages, the parent's listing, and at most one window of pages fetched ahead.
    assert!(count(&st, "folder_contents") <= 3 + 1 + 4, "{st}");
}

#[test]
fn oversized_and_endless_bodies_are_refused_in_bounded_memory() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    let (dir, mnt) = crate::support::mount::mountpoint();
    let log = dir.path().join("log");
    let m = foreground(&emu, &mnt, &log, &[]);
    let files = mnt.join("Hub/Project/Files");
    std::fs::read_dir(&files).expect("list Files").count();

    faults(&emu, json!({"json_padding_mib": 100}));
    let started = Instant::now();
    let err = std::fs::read_dir(files.join("d1")).expect_err("a 100 MiB page");
    assert_eq!(errno(&err), libc::EIO, "{err}");
    faults(&emu, json!({"endless_json": true}));
    let err = std::fs::read_dir(files.join("d2")).expect_err("an endless page");
    assert_eq!(errno(&err), libc::EIO, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let rss = rss_mib(m.pid());
    eprintln!(
        "padded and endless bodies: EIO after {:?}, mount RSS {rss} MiB",
        started.elapsed()
    );
    assert!(rss < 150, "the mount holds {rss} MiB");

    faults(&emu, json!({}));
    assert_eq!(
        std::fs::read_dir(files.join("d3")).expect("list").count(),
        5
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("larger than"), "the refusal is logged");
}

#[test]
fn a_body_that_ignores_range_or_the_size_is_never_served() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &[]);
    let files = mnt.join("Hub/Project/Files");

    faults(&emu, json!({"range_ignored": true}));
    let err = std::fs::read(files.join("a.txt")).expect_err("an HTML page is not the file");
    assert_eq!(errno(&err), libc::EIO, "{err}");
    assert!(stats(&emu)["injected"]["range_ignored"].as_u64() > Some(0));

    // The listing says less (then more) than storage holds: never a cut or padded file.
    for (offset, folder) in [(-5, "d1"), (7, "d2")] {
        faults(&emu, json!({ "listed_size_offset": offset }));
        let err = std::fs::read(files.join(folder).join("f1.txt")).expect_err("sizes disagree");
        assert_eq!(errno(&err), libc::EIO, "offset {offset}: {err}");
    }
    faults(&emu, json!({}));
    assert_eq!(
        std::fs::read(files.join("d3/f1.txt")).expect("read"),
        b"file 1 of d3\n"
    );
}

#[test]
fn a_trickling_service_is_cut_at_the_operation_deadline() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &["--op-timeout", "4"]);
    let files = mnt.join("Hub/Project/Files");
    std::fs::read_dir(&files).expect("list Files").count();
    faults(&emu, json!({"trickle_ms": 500}));
    let started = Instant::now();
    let err = std::fs::read_dir(files.join("d1")).expect_err("no answer in time");
    let took = started.elapsed();
    assert_eq!(errno(&err), libc::ETIMEDOUT, "{err}");
    eprintln!("trickle, --op-timeout 4: ETIMEDOUT after {took:?}");
    assert!(
        // A listing gives up 2 s before the deadline (to leave time for a cached one).
        took >= Duration::from_secs(1) && took < Duration::from_secs(6),
        "{took:?}"
    );
}

#[test]
fn retry_after_beyond_the_deadline_fails_fast_and_a_date_is_honoured() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &[]);
    let files = mnt.join("Hub/Project/Files");
    std::fs::read_dir(&files).expect("list Files").count();

    faults(
        &emu,
        json!({"throttle_rate": 1.0, "retry_after_secs": 999_999}),
    );
    let started = Instant::now();
    let err = std::fs::read_dir(files.join("d1")).expect_err("throttled for days");
    assert_eq!(errno(&err), libc::EIO, "{err}");
    eprintln!("Retry-After 999999: EIO after {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Throttled with a date three seconds ahead, lifted after half a second: a client that
    // ignored the date would have retried (and succeeded) within a second.
    faults(
        &emu,
        json!({"throttle_rate": 1.0, "retry_after_secs": 3, "retry_after_date": true}),
    );
    let started = Instant::now();
    let lift = std::thread::spawn({
        let base = emu.base.clone();
        move || {
            std::thread::sleep(Duration::from_millis(500));
            let url = format!("{base}/__emulator/faults");
            rt().block_on(async {
                reqwest::Client::new()
                    .put(url)
                    .json(&json!({}))
                    .send()
                    .await
                    .expect("lift")
            });
        }
    });
    let n = std::fs::read_dir(files.join("d2"))
        .expect("after the date")
        .count();
    let took = started.elapsed();
    lift.join().expect("lift thread");
    eprintln!("Retry-After as a date 3 s ahead, lifted at 0.5 s: listed after {took:?}");
    assert_eq!(n, 5);
    assert!(took >= Duration::from_millis(1900), "waited only {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn a_failing_token_endpoint_costs_one_token_request_per_try() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &["--token-ttl", "2"]);
    let mnt = Mount::start(&emu.base, &[]);
    let files = mnt.join("Hub/Project/Files");
    std::fs::read_dir(&files).expect("list Files").count();
    faults(&emu, json!({"token_error_rate": 1.0}));
    std::thread::sleep(Duration::from_millis(2500));
    reset(&emu);
    let started = Instant::now();
    let err = std::fs::read_dir(files.join("d1")).expect_err("no token");
    assert_eq!(errno(&err), libc::EIO, "{err}");
    let st = stats(&emu);
    let tokens = count(&st, "token");
    eprintln!(
        "failing token endpoint: EIO after {:?}, {tokens} token requests",
        started.elapsed()
    );
    assert!((1..=8).contains(&tokens), "{tokens} token requests: {st}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_killed_caller_is_released_at_once_and_nobody_waits_behind_it() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &[]);
    let files = mnt.join("Hub/Project/Files");
    std::fs::read_dir(&files).expect("list Files").count();
    faults(&emu, json!({"trickle_ms": 1000}));
    for signal in [libc::SIGKILL, libc::SIGINT] {
        let folder = if signal == libc::SIGKILL { "d1" } else { "d2" };
        let mut cmd = Command::new("ls");
        cmd.arg(files.join(folder))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // A shell runs background jobs with SIGINT ignored, and children inherit that: give
        // `ls` the default action, as at a terminal, where Ctrl-C ends it.
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut ls = cmd.spawn().expect("ls");
        std::thread::sleep(Duration::from_millis(1500));
        assert!(ls.try_wait().expect("try_wait").is_none(), "still waiting");
        // SAFETY: signalling a child we own and have not reaped.
        unsafe { libc::kill(ls.id() as i32, signal) };
        let started = Instant::now();
        let st = wait_timeout(&mut ls, Duration::from_secs(10));
        let took = started.elapsed();
        assert!(st.is_some(), "signal {signal}: the caller is still held");
        eprintln!("caller killed by signal {signal}: released after {took:?}");
        assert!(
            took < Duration::from_secs(3),
            "signal {signal}: released after {took:?}"
        );
    }
    // The killed caller's listing was given up: a new caller fetches it at once.
    faults(&emu, json!({}));
    let started = Instant::now();
    assert_eq!(
        std::fs::read_dir(files.join("d1")).expect("list").count(),
        5
    );
    eprintln!(
        "the next caller of the folder: listed after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn unmount_never_waits_for_the_service() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    let (dir, mnt) = crate::support::mount::mountpoint();
    let log = dir.path().join("log");
    let mut m = foreground(&emu, &mnt, &log, &["--metadata-ttl", "1"]);
    std::thread::sleep(Duration::from_millis(1500));
    // Every listing, the root's included, is stale, and the service takes 30 s to answer.
    faults(&emu, json!({"latency_ms": 30_000}));
    let started = Instant::now();
    let out = run_apsfs(&["unmount", s(&mnt)], &[], Duration::from_secs(20));
    let took = started.elapsed();
    eprintln!("unmount with the service 30 s away: {took:?}");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(took < Duration::from_secs(5), "unmount took {took:?}");
    assert!(m.wait(Duration::from_secs(10)).is_some(), "the mount ended");
}

#[test]
fn one_bad_entry_is_skipped_and_its_siblings_listed() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &[]);
    let files = mnt.join("Hub/Project/Files");
    std::fs::read_dir(&files).expect("list Files").count();
    faults(&emu, json!({"bad_entries": true}));
    let names: Vec<String> = std::fs::read_dir(files.join("d1"))
        .expect("the folder lists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(stats(&emu)["injected"]["bad_entries"].as_u64() > Some(0));
    // The first item's name is invalid and the second's size out of range: at most those
    // two are missing, and nothing else is.
    assert!(names.len() >= 3 && names.len() <= 5, "{names:?}");
    for n in &names {
        assert!(n.starts_with('f') && n.ends_with(".txt"), "{names:?}");
    }
}

#[test]
fn a_malformed_next_link_is_a_server_fault_not_a_missing_folder() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &[]);
    let files = mnt.join("Hub/Project/Files");
    // A count of one page (in the listing of `Files`, where the client reads it), so the
    // client follows `next` from the first page of `many`, which is malformed.
    faults(&emu, json!({"bad_next_link": true, "object_count": 1}));
    std::fs::read_dir(&files).expect("list Files").count();
    let err = std::fs::read_dir(files.join("many")).expect_err("the listing cannot end");
    assert_eq!(errno(&err), libc::EIO, "{err}");
}

#[test]
fn a_real_versions_entry_and_the_versions_directory_are_both_reachable() {
    let seed = seed();
    seed_file(
        &seed.path().join("Hub/Project/Files/d4/.versions"),
        b"a file named .versions\n",
    );
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &[]);
    let d4 = mnt.join("Hub/Project/Files/d4");
    let renamed: Vec<String> = std::fs::read_dir(&d4)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".versions"))
        .collect();
    assert_eq!(renamed.len(), 1, "{renamed:?}");
    assert_ne!(renamed[0], ".versions", "the real entry gives way");
    assert_eq!(
        std::fs::read(d4.join(&renamed[0])).expect("the real file"),
        b"a file named .versions\n"
    );
    assert!(d4.join(".versions").is_dir(), "the versions directory");
    assert!(d4.join(".versions/f1.txt").is_dir());
}

#[test]
fn a_service_that_never_answers_still_leaves_time_for_the_cached_listing() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    let mnt = Mount::start(&emu.base, &["--op-timeout", "5", "--metadata-ttl", "1"]);
    let d1 = mnt.join("Hub/Project/Files/d1");
    assert_eq!(std::fs::read_dir(&d1).expect("list").count(), 5);
    std::thread::sleep(Duration::from_millis(1500));
    // Connections are taken but never answered (a black-holed network): the listing is stale,
    // its revalidation cannot finish, and the cached listing is served before the deadline.
    faults(&emu, json!({"latency_ms": 600_000}));
    let started = Instant::now();
    let n = std::fs::read_dir(&d1).expect("the cached listing").count();
    let took = started.elapsed();
    eprintln!("no answer at all, --op-timeout 5: the cached listing after {took:?}");
    assert_eq!(n, 5);
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn a_slow_link_that_keeps_delivering_is_not_cut_by_the_deadline() {
    let emu = Emulator::start(&[
        "--generate",
        "items=0,folders=1,large=1x12MiB",
        "--bandwidth-mib",
        "0.5",
    ]);
    // A part fetched ahead (4 MiB) takes 8 s at 0.5 MiB/s, longer than the deadline.
    let (dir, mnt) = crate::support::mount::mountpoint();
    let log = dir.path().join("log");
    let _m = foreground(&emu, &mnt, &log, &["--op-timeout", "3"]);
    let file = mnt.join("Hub 1/Project 1/Project Files/Large/large-1.bin");
    let started = Instant::now();
    let bytes = std::fs::read(&file).expect("a slow read that progresses");
    eprintln!(
        "12 MiB at 0.5 MiB/s per connection, --op-timeout 3: read in {:?}",
        started.elapsed()
    );
    // The kernel retries a failed read-ahead itself, so the bytes arrive either way: what
    // must not happen is a read cut while bytes were arriving.
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !text.contains("operation deadline"),
        "reads were cut while storage delivered: {}",
        text.lines()
            .filter(|l| l.contains("deadline"))
            .take(3)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let key = storage_key(&file);
    assert!(bytes == crate::support::generated::generated_bytes(&key, 0, 12 << 20));
}

/// The object key of a file, from its `user.aps.storage` attribute.
fn storage_key(file: &Path) -> String {
    let path = std::ffi::CString::new(file.as_os_str().as_encoded_bytes()).expect("path");
    let name = std::ffi::CString::new("user.aps.storage").expect("name");
    let mut buf = vec![0u8; 4096];
    // SAFETY: both strings are NUL-terminated and the buffer is as long as we say.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    assert!(n > 0, "user.aps.storage of {}", file.display());
    buf.truncate(n as usize);
    let urn = String::from_utf8(buf).expect("utf-8");
    let (_, key) = urn.split_once(".prod/").expect("a storage urn");
    key.to_string()
}
