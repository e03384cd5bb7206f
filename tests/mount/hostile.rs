//! A mount in front of a hostile or broken server (the emulator's hostile fault modes): no
//! panic, no credential sent to another origin, no wrong byte, no caller held for minutes, and
//! an unmount that never waits for the service.

use crate::support::emulator::Emulator;
use crate::support::files::seed_file;
use crate::support::mount::{Foreground, Mount, Stderr, CREDENTIALS};
use crate::support::process::{run_apsfs, s, wait_timeout};
use crate::support::runtime::rt;
use crate::support::xattr::xattr;
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
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

/// A seeded emulator (started with `emu_args`) and a mount of it (with `mount_args`) whose
/// `Files` folder is listed already, so each scenario asks for one fresh folder.
struct Listed {
    // Fields drop in this order: the mount, then the emulator, then the seed it serves.
    _mnt: Mount,
    emu: Emulator,
    _seed: tempfile::TempDir,
    files: PathBuf,
}

fn listed(emu_args: &[&str], mount_args: &[&str]) -> Listed {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), emu_args);
    let mnt = Mount::start(&emu.base, mount_args);
    let files = mnt.join("Hub/Project/Files");
    std::fs::read_dir(&files).expect("list Files").count();
    Listed {
        _mnt: mnt,
        emu,
        _seed: seed,
        files,
    }
}

/// Time since `started`, printed after `what` (the figures RELIABILITY.md quotes).
fn took(what: &str, started: Instant) -> Duration {
    let t = started.elapsed();
    eprintln!("{what} {t:?}");
    t
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

/// A foreground mount of an emulator, logging at debug level to a file of its own.
struct Logged {
    // Dropped first: the mount ends before its directory goes.
    process: Foreground,
    mnt: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// Mounts `emu` with test credentials and `extra` options in a temporary directory, its
/// stderr in a log file beside the mountpoint.
fn foreground(emu: &Emulator, extra: &[&str]) -> Logged {
    let (dir, mnt) = crate::support::mount::mountpoint();
    let log = dir.path().join("log");
    let mut args = vec!["--base-url", &emu.base];
    args.extend(CREDENTIALS);
    args.extend_from_slice(extra);
    let process = Foreground::spawn(
        &mnt,
        &args,
        &[("RUST_LOG", "apsfs=debug")],
        Stderr::File(&log),
    );
    assert!(process.first.starts_with("mounted "), "{}", process.first);
    Logged {
        process,
        mnt,
        log,
        _dir: dir,
    }
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
    let world = listed(&[], &[]);
    let Listed { emu, files, .. } = &world;

    faults(emu, json!({"redirect": "api_foreign"}));
    let err = std::fs::read_dir(files.join("d1")).expect_err("a foreign answer is no listing");
    assert_eq!(errno(&err), libc::EIO, "{err}");
    let st = stats(emu);
    assert!(st["redirects"].as_u64() > Some(0), "{st}");
    assert_eq!(st["foreign"]["requests"], 0, "not even asked: {st}");

    faults(emu, json!({"redirect": "api_same"}));
    let n = std::fs::read_dir(files.join("d2"))
        .expect("same origin")
        .count();
    assert_eq!(n, 5);

    faults(emu, json!({"redirect": "storage_foreign"}));
    reset(emu);
    let got = std::fs::read(files.join("d3/f1.txt")).expect("storage may redirect");
    assert_eq!(got, b"file 1 of d3\n");
    let st = stats(emu);
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
    let Logged {
        process, mnt, log, ..
    } = &foreground(&emu, &[]);
    let files = mnt.join("Hub/Project/Files");
    std::fs::read_dir(&files).expect("list Files").count();

    faults(&emu, json!({"json_padding_mib": 100}));
    let started = Instant::now();
    let err = std::fs::read_dir(files.join("d1")).expect_err("a 100 MiB page");
    assert_eq!(errno(&err), libc::EIO, "{err}");
    faults(&emu, json!({"endless_json": true}));
    let err = std::fs::read_dir(files.join("d2")).expect_err("an endless page");
    assert_eq!(errno(&err), libc::EIO, "{err}");
    let t = took("padded and endless bodies: EIO after", started);
    assert!(t < Duration::from_secs(30), "{t:?}");
    let rss = rss_mib(process.pid());
    eprintln!("mount RSS after them: {rss} MiB");
    assert!(rss < 150, "the mount holds {rss} MiB");

    faults(&emu, json!({}));
    assert_eq!(
        std::fs::read_dir(files.join("d3")).expect("list").count(),
        5
    );
    let text = std::fs::read_to_string(log).unwrap_or_default();
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
    let world = listed(&[], &["--op-timeout", "4"]);
    let Listed { emu, files, .. } = &world;
    faults(emu, json!({"trickle_ms": 500}));
    let started = Instant::now();
    let err = std::fs::read_dir(files.join("d1")).expect_err("no answer in time");
    let t = took("trickle, --op-timeout 4: ETIMEDOUT after", started);
    assert_eq!(errno(&err), libc::ETIMEDOUT, "{err}");
    assert!(
        // A listing gives up 2 s before the deadline (to leave time for a cached one).
        t >= Duration::from_secs(1) && t < Duration::from_secs(6),
        "{t:?}"
    );
}

#[test]
fn retry_after_beyond_the_deadline_fails_fast_and_a_date_is_honoured() {
    let world = listed(&[], &[]);
    let Listed { emu, files, .. } = &world;

    faults(
        emu,
        json!({"throttle_rate": 1.0, "retry_after_secs": 999_999}),
    );
    let started = Instant::now();
    let err = std::fs::read_dir(files.join("d1")).expect_err("throttled for days");
    assert_eq!(errno(&err), libc::EIO, "{err}");
    let t = took("Retry-After 999999: EIO after", started);
    assert!(t < Duration::from_secs(3), "{t:?}");

    // Throttled with a date three seconds ahead, lifted after half a second: a client that
    // ignored the date would have retried (and succeeded) within a second.
    faults(
        emu,
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
    let t = took(
        "Retry-After as a date 3 s ahead, lifted at 0.5 s: listed after",
        started,
    );
    lift.join().expect("lift thread");
    assert_eq!(n, 5);
    assert!(t >= Duration::from_millis(1900), "waited only {t:?}");
    assert!(t < Duration::from_secs(10), "{t:?}");
}

#[test]
fn a_failing_token_endpoint_costs_one_token_request_per_try() {
    let world = listed(&["--token-ttl", "2"], &[]);
    let Listed { emu, files, .. } = &world;
    faults(emu, json!({"token_error_rate": 1.0}));
    std::thread::sleep(Duration::from_millis(2500));
    reset(emu);
    let started = Instant::now();
    let err = std::fs::read_dir(files.join("d1")).expect_err("no token");
    assert_eq!(errno(&err), libc::EIO, "{err}");
    let st = stats(emu);
    let tokens = count(&st, "token");
    let t = took("failing token endpoint: EIO after", started);
    eprintln!("token requests for it: {tokens}");
    assert!((1..=8).contains(&tokens), "{tokens} token requests: {st}");
    assert!(t < Duration::from_secs(20), "{t:?}");
}

#[test]
fn a_killed_caller_is_released_at_once_and_nobody_waits_behind_it() {
    let world = listed(&[], &[]);
    let Listed { emu, files, .. } = &world;
    faults(emu, json!({"trickle_ms": 1000}));
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
        let t = took(
            &format!("caller killed by signal {signal}: released after"),
            started,
        );
        assert!(st.is_some(), "signal {signal}: the caller is still held");
        assert!(
            t < Duration::from_secs(3),
            "signal {signal}: released after {t:?}"
        );
    }
    // The killed caller's listing was given up: a new caller fetches it at once.
    faults(emu, json!({}));
    let started = Instant::now();
    assert_eq!(
        std::fs::read_dir(files.join("d1")).expect("list").count(),
        5
    );
    let t = took("the next caller of the folder: listed after", started);
    assert!(t < Duration::from_secs(3), "{t:?}");
}

#[test]
fn unmount_never_waits_for_the_service() {
    let seed = seed();
    let emu = Emulator::seeded(seed.path(), &[]);
    let mut logged = foreground(&emu, &["--metadata-ttl", "1"]);
    let mnt = logged.mnt.clone();
    std::thread::sleep(Duration::from_millis(1500));
    // Every listing, the root's included, is stale, and the service takes 30 s to answer.
    faults(&emu, json!({"latency_ms": 30_000}));
    let started = Instant::now();
    let out = run_apsfs(&["unmount", s(&mnt)], &[], Duration::from_secs(20));
    let t = took("unmount with the service 30 s away:", started);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(t < Duration::from_secs(5), "unmount took {t:?}");
    assert!(
        logged.process.wait(Duration::from_secs(10)).is_some(),
        "the mount ended"
    );
}

#[test]
fn one_bad_entry_is_skipped_and_its_siblings_listed() {
    let world = listed(&[], &[]);
    let Listed { emu, files, .. } = &world;
    faults(emu, json!({"bad_entries": true}));
    let names: Vec<String> = std::fs::read_dir(files.join("d1"))
        .expect("the folder lists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(stats(emu)["injected"]["bad_entries"].as_u64() > Some(0));
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
    let t = took(
        "no answer at all, --op-timeout 5: the cached listing after",
        started,
    );
    assert_eq!(n, 5);
    assert!(t < Duration::from_secs(5), "{t:?}");
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
    let Logged { mnt, log, .. } = &foreground(&emu, &["--op-timeout", "3"]);
    let file = mnt.join("Hub 1/Project 1/Project Files/Large/large-1.bin");
    let started = Instant::now();
    let bytes = std::fs::read(&file).expect("a slow read that progresses");
    took(
        "12 MiB at 0.5 MiB/s per connection, --op-timeout 3: read in",
        started,
    );
    // The kernel retries a failed read-ahead itself, so the bytes arrive either way: what
    // must not happen is a read cut while bytes were arriving.
    let text = std::fs::read_to_string(log).unwrap_or_default();
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
    let urn = xattr(file, "user.aps.storage").expect("user.aps.storage");
    let (_, key) = urn.split_once(".prod/").expect("a storage urn");
    key.to_string()
}
