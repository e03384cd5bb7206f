//! The `apsfs mount` / `apsfs unmount` command line: background mode, clear failures, the
//! read-only guarantee, signals, `--demo` and `APS_TOKEN`; and around it `--log-level`, `apsfs
//! completions` and `apsfs man`.

use crate::support::emulator::Emulator;
use crate::support::mount::{is_mounted, mountpoint, Foreground, Mount, Stderr, UnmountGuard};
use crate::support::process::{run, run_apsfs, s};
use crate::support::runtime::rt;
use crate::support::walk::walk;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const HUB_PROJECT_FILES: &str = "Hub 1/Project 1/Project Files";

/// A foreground mount at `mnt` whose stderr the test reads; dropping it stops it and unmounts.
fn foreground(mnt: &Path, args: &[&str], env: &[(&str, &str)]) -> Foreground {
    Foreground::spawn(mnt, args, env, Stderr::Capture)
}

/// Pids (other than this test process) whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push((pid, cmd));
            }
        }
    }
    found
}

fn no_process_within(needle: &str, limit: Duration) -> Result<(), Vec<(u32, String)>> {
    let deadline = Instant::now() + limit;
    loop {
        let left = processes_mentioning(needle);
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(left);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The first non-empty file below `dir` (the walk's order: files before folders, by name),
/// with its size.
fn first_file(dir: &Path) -> Option<(PathBuf, u64)> {
    walk(dir)
        .find(|e| e.meta.is_file() && e.meta.len() > 0)
        .map(|e| (e.path, e.meta.len()))
}

// ---------------------------------------------------------------------------------------------
// Background mode.

#[test]
fn background_mount_detaches_and_unmount_stops_it() {
    let emu = Emulator::start(&[]);
    let (dir, mnt) = mountpoint();
    let log = dir.path().join("logs/mount.log");
    let _guard = UnmountGuard::new(&mnt);
    let out = run_apsfs(
        &[
            "mount",
            s(&mnt),
            "--base-url",
            &emu.base,
            "--client-id",
            "test-client",
            "--client-secret",
            "test-secret",
            "--log-file",
            s(&log),
        ],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "background mount: {out:?}");
    let first = out.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("mounted {}", mnt.display())),
        "stdout: {:?}",
        out.stdout
    );
    assert!(first.contains(s(&log)), "the line names the log: {first:?}");
    assert!(is_mounted(&mnt), "mounted once the command returned");
    // The log is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log)
        .expect("log file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "log file mode {mode:o}");

    let (code, ls, err) = run("ls", &[s(&mnt.join(HUB_PROJECT_FILES))]);
    assert_eq!(code, 0, "ls: {err}");
    assert!(!ls.trim().is_empty(), "Project Files lists something");
    let (f, size) = first_file(&mnt.join(HUB_PROJECT_FILES)).expect("a file");
    assert_eq!(std::fs::read(&f).expect("read").len() as u64, size);

    let un = run_apsfs(&["unmount", s(&mnt)], &[], Duration::from_secs(30));
    assert_eq!(un.code, Some(0), "unmount: {un:?}");
    assert!(!is_mounted(&mnt), "unmounted");
    if let Err(left) = no_process_within(s(&mnt), Duration::from_secs(5)) {
        for (pid, _) in &left {
            // SAFETY: only processes running with our own temporary mountpoint in their
            // command line, i.e. the mount this test started.
            unsafe {
                libc::kill(*pid as i32, libc::SIGKILL);
            }
        }
        panic!("the mount process outlived the unmount by 5 s: {left:?}");
    }
    // A second unmount has nothing to do and says so.
    let again = run_apsfs(&["unmount", s(&mnt)], &[], Duration::from_secs(30));
    assert_ne!(again.code, Some(0), "{again:?}");
    assert!(again.stderr.contains("not mounted"), "{again:?}");
}

// ---------------------------------------------------------------------------------------------
// Failures: non-zero exit, nothing mounted, a clear message.

/// A background mount that must fail with `needle` in its message (on stderr).
fn expect_background_failure(mnt: &Path, args: &[&str], env: &[(&str, &str)], needle: &str) {
    let dir = tempfile::tempdir().expect("log dir");
    let log = dir.path().join("mount.log");
    let _guard = UnmountGuard::new(mnt);
    let was_mounted = is_mounted(mnt);
    let mut all = vec!["mount", s(mnt), "--log-file", s(&log)];
    all.extend_from_slice(args);
    let out = run_apsfs(&all, env, Duration::from_secs(60));
    assert!(
        out.code.is_some() && out.code != Some(0),
        "must fail: {out:?}"
    );
    assert!(
        out.stderr.contains(needle),
        "stderr mentions {needle:?}: {out:?}"
    );
    assert!(
        !out.stdout.contains("mounted "),
        "nothing reported mounted: {out:?}"
    );
    assert_eq!(is_mounted(mnt), was_mounted, "mount state unchanged");
}

/// A foreground mount that must fail: `error: …` first line with `needle`, non-zero exit.
fn expect_foreground_failure(mnt: &Path, args: &[&str], env: &[(&str, &str)], needle: &str) {
    let was_mounted = is_mounted(mnt);
    let mut fg = foreground(mnt, args, env);
    let first = fg.first.clone();
    let status = fg.wait(Duration::from_secs(30));
    assert!(
        first.starts_with("error: ") && first.contains(needle),
        "first line has error: …{needle}…: {first:?}"
    );
    let status = status.expect("a failed foreground mount exits");
    assert!(!status.success(), "non-zero exit: {status}");
    assert!(
        fg.stderr_text().contains(needle),
        "stderr repeats the message"
    );
    assert_eq!(is_mounted(mnt), was_mounted, "mount state unchanged");
}

fn creds(base: &str) -> Vec<&str> {
    vec![
        "--base-url",
        base,
        "--client-id",
        "test-client",
        "--client-secret",
        "test-secret",
    ]
}

#[test]
fn wrong_client_secret_is_refused() {
    let emu = Emulator::start(&["--client-id", "a", "--client-secret", "b"]);
    let (_d, mnt) = mountpoint();
    let args = [
        "--base-url",
        emu.base.as_str(),
        "--client-id",
        "a",
        "--client-secret",
        "wrong",
    ];
    expect_background_failure(&mnt, &args, &[], "refused the credentials");
    expect_foreground_failure(&mnt, &args, &[], "refused the credentials");
    // The harness's test-client/test-secret are not these credentials either.
    let err = Mount::try_start(&emu.base, &[]).err().expect("must fail");
    assert!(
        err.starts_with("error: ") && err.contains("refused the credentials"),
        "{err:?}"
    );
    // And the right ones work.
    let ok = foreground(
        &mnt,
        &["--base-url", emu.base.as_str()],
        &[("APS_CLIENT_ID", "a"), ("APS_CLIENT_SECRET", "b")],
    );
    assert!(ok.first.starts_with("mounted "), "{:?}", ok.first);
}

#[test]
fn unreachable_base_url_says_cannot_reach() {
    let (_d, mnt) = mountpoint();
    let args = creds("http://127.0.0.1:1");
    expect_background_failure(&mnt, &args, &[], "cannot reach");
    expect_foreground_failure(&mnt, &args, &[], "cannot reach");
    let err = Mount::try_start("http://127.0.0.1:1", &[])
        .err()
        .expect("must fail");
    assert!(
        err.starts_with("error: ") && err.contains("cannot reach"),
        "{err:?}"
    );
}

#[test]
fn missing_mountpoint_fails() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let args = creds(&emu.base);
    expect_background_failure(&missing, &args, &[], "no-such-dir");
    expect_background_failure(&missing, &args, &[], "No such file");
    expect_foreground_failure(&missing, &args, &[], "No such file");
    assert!(!missing.exists(), "the mountpoint is not created");
    // A file is not a directory.
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    expect_background_failure(&file, &args, &[], "not a directory");
    expect_foreground_failure(&file, &args, &[], "not a directory");
}

#[test]
fn non_empty_mountpoint_fails() {
    let emu = Emulator::start(&[]);
    let (_d, mnt) = mountpoint();
    std::fs::write(mnt.join("keep.txt"), b"mine").unwrap();
    let args = creds(&emu.base);
    expect_background_failure(&mnt, &args, &[], "not empty");
    expect_foreground_failure(&mnt, &args, &[], "not empty");
    assert_eq!(std::fs::read(mnt.join("keep.txt")).unwrap(), b"mine");
}

#[test]
fn already_mounted_mountpoint_fails() {
    let emu = Emulator::start(&[]);
    let m = Mount::start(&emu.base, &[]);
    let args = creds(&emu.base);
    expect_background_failure(&m.path(), &args, &[], "already a mountpoint");
    expect_foreground_failure(&m.path(), &args, &[], "already a mountpoint");
    // The first mount is untouched and still serves.
    assert!(is_mounted(&m.path()));
    assert!(m.join(HUB_PROJECT_FILES).is_dir());
}

#[test]
fn no_credentials_at_all_fails() {
    let emu = Emulator::start(&[]);
    let (_d, mnt) = mountpoint();
    let args = ["--base-url", emu.base.as_str()];
    // No stored login either: the message says how to get one.
    let config = tempfile::tempdir().expect("config dir");
    let env = [("XDG_CONFIG_HOME", s(config.path()))];
    expect_background_failure(&mnt, &args, &env, "no credentials");
    expect_foreground_failure(&mnt, &args, &env, "apsfs login --base-url");
    // Empty values count as none.
    let empty = [("APS_TOKEN", ""), env[0]];
    expect_foreground_failure(&mnt, &args, &empty, "no credentials");
}

#[test]
fn unknown_project_fails() {
    let emu = Emulator::start(&[]);
    let (_d, mnt) = mountpoint();
    let mut args = creds(&emu.base);
    args.extend(["--project", "No Such/Thing"]);
    expect_background_failure(&mnt, &args, &[], "No Such/Thing");
    expect_foreground_failure(&mnt, &args, &[], "no project");
    let err = Mount::try_start(&emu.base, &["--project", "No Such/Thing"])
        .err()
        .expect("must fail");
    assert!(
        err.starts_with("error: ") && err.contains("No Such/Thing"),
        "{err:?}"
    );
    // A project spec with no slash at all.
    let mut args = creds(&emu.base);
    args.extend(["--project", "Hub 1"]);
    expect_foreground_failure(&mnt, &args, &[], "no project");
}

// ---------------------------------------------------------------------------------------------
// Read-only.

fn assert_erofs<T: std::fmt::Debug>(what: &str, r: std::io::Result<T>) {
    match r {
        Ok(v) => panic!("{what} succeeded on a read-only mount: {v:?}"),
        Err(e) => assert_eq!(
            e.raw_os_error(),
            Some(libc::EROFS),
            "{what}: expected EROFS, got {e}"
        ),
    }
}

fn utimens(path: &Path) -> std::io::Result<()> {
    let c = std::ffi::CString::new(s(path)).unwrap();
    // SAFETY: a valid NUL-terminated path; a null `times` means "now".
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), std::ptr::null(), 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[test]
fn every_write_fails_with_erofs() {
    use std::os::unix::fs::PermissionsExt;
    let emu = Emulator::start(&["--generate", "awkward"]);
    let m = Mount::start(&emu.base, &[]);
    let dir = m.join("Hub 1/Project 1/Project Files/Awkward");
    let file = dir.join("Host.dwg");
    let before = std::fs::read(&file).expect("read Host.dwg");
    let listing_before: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();

    // Rust calls.
    let open_w = |p: &Path| std::fs::OpenOptions::new().write(true).open(p);
    assert_erofs("open for write", open_w(&file));
    assert_erofs(
        "open for append",
        std::fs::OpenOptions::new().append(true).open(&file),
    );
    assert_erofs(
        "open read-write",
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&file),
    );
    assert_erofs(
        "truncate",
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&file),
    );
    assert_erofs("create", std::fs::File::create(dir.join("new.txt")));
    assert_erofs("write new", std::fs::write(dir.join("new2.txt"), b"x"));
    assert_erofs("create at root", std::fs::File::create(m.join("new.txt")));
    assert_erofs("mkdir", std::fs::create_dir(dir.join("newdir")));
    assert_erofs("mkdir at root", std::fs::create_dir(m.join("newdir")));
    assert_erofs("remove file", std::fs::remove_file(&file));
    assert_erofs("remove dir", std::fs::remove_dir(dir.join("Same Name")));
    assert_erofs("rename", std::fs::rename(&file, dir.join("renamed.dwg")));
    assert_erofs(
        "rename dir",
        std::fs::rename(dir.join("Same Name"), dir.join("Other")),
    );
    assert_erofs("touch (utimensat)", utimens(&file));
    assert_erofs(
        "chmod",
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)),
    );
    assert_erofs(
        "chmod dir",
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)),
    );
    assert_erofs(
        "symlink",
        std::os::unix::fs::symlink("Host.dwg", dir.join("link")),
    );
    assert_erofs("hard link", std::fs::hard_link(&file, dir.join("hard")));

    // The same through the usual tools.
    let sh = |script: &str| run("sh", &["-c", script]);
    let q = |p: &Path| format!("'{}'", s(p));
    let f = q(&file);
    let d = q(&dir);
    for script in [
        format!("echo x > {f}"),
        format!("echo x >> {f}"),
        format!("echo x > {d}/new.txt"),
        format!("mkdir {d}/newdir"),
        format!("rm {f}"),
        format!("rm -r {d}/'Same Name'"),
        format!("mv {f} {d}/moved.dwg"),
        format!("touch {f}"),
        format!("touch {d}/touched.txt"),
        format!("chmod 600 {f}"),
        format!("ln -s x {d}/sym"),
        format!("truncate -s 0 {f}"),
    ] {
        let (code, _, err) = sh(&script);
        assert_ne!(code, 0, "{script} must fail");
        assert!(
            err.contains("Read-only file system"),
            "{script}: stderr {err:?}"
        );
    }

    // Nothing changed, and nothing was sent upstream.
    assert_eq!(std::fs::read(&file).unwrap(), before);
    let listing_after: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(listing_before, listing_after);
    let stats = rt().block_on(emu.stats());
    assert_eq!(
        stats["requests"]["upload"].as_u64().unwrap_or(0),
        0,
        "no write reached the service: {stats}"
    );
}

// ---------------------------------------------------------------------------------------------
// Signals.

#[test]
fn sigterm_unmounts_a_foreground_mount() {
    let emu = Emulator::start(&[]);
    // Through the harness guard.
    let m = Mount::start(&emu.base, &[]);
    let path = m.path();
    assert!(m.join(HUB_PROJECT_FILES).is_dir());
    drop(m);
    assert!(!is_mounted(&path), "unmounted after SIGTERM");

    // And precisely: the process itself unmounts and exits 0, with no forced cleanup.
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let (_d, mnt) = mountpoint();
        let mut fg = foreground(&mnt, &creds(&emu.base), &[]);
        assert!(fg.first.starts_with("mounted "), "{:?}", fg.first);
        assert!(mnt.join(HUB_PROJECT_FILES).is_dir());
        fg.signal(sig);
        let st = fg.wait(Duration::from_secs(10));
        let st = st.unwrap_or_else(|| panic!("still running 10 s after signal {sig}"));
        assert!(st.success(), "signal {sig}: exit {st}");
        assert!(
            !is_mounted(&mnt),
            "signal {sig}: unmounted by the process itself"
        );
        assert!(
            std::fs::read_dir(&mnt).unwrap().next().is_none(),
            "empty again"
        );
    }
}

#[test]
fn sigterm_with_an_open_file_still_unmounts() {
    let emu = Emulator::start(&[]);
    let (_d, mnt) = mountpoint();
    let mut fg = foreground(&mnt, &creds(&emu.base), &[]);
    assert!(fg.first.starts_with("mounted "), "{:?}", fg.first);
    let (path, _) = first_file(&mnt.join(HUB_PROJECT_FILES)).expect("a file");
    let open = std::fs::File::open(&path).expect("open");
    fg.signal(libc::SIGTERM);
    let st = fg
        .wait(Duration::from_secs(10))
        .expect("exits even while a file is open");
    assert!(st.success(), "exit {st}");
    assert!(!is_mounted(&mnt), "detached");
    drop(open);
}

// ---------------------------------------------------------------------------------------------
// --demo and APS_TOKEN.

fn assert_demo_data(mnt: &Path) {
    let pf = mnt.join(HUB_PROJECT_FILES);
    assert!(pf.is_dir(), "{} exists", pf.display());
    let (f, size) = first_file(&pf).expect("a file in the demo data");
    let bytes = std::fs::read(&f).expect("read a demo file");
    assert_eq!(bytes.len() as u64, size, "{}", f.display());
    let three = pf.join("Awkward/Three Versions.rvt");
    assert_eq!(
        std::fs::read(&three).expect("demo awkward file").len(),
        3000
    );
}

#[test]
fn demo_mount_serves_the_embedded_data() {
    let (_d, mnt) = mountpoint();
    let fg = foreground(&mnt, &["--demo"], &[]);
    assert!(fg.first.starts_with("mounted "), "{:?}", fg.first);
    assert_demo_data(&mnt);
    drop(fg);
    assert!(!is_mounted(&mnt));

    // In the background too.
    let (dir, mnt) = mountpoint();
    let _guard = UnmountGuard::new(&mnt);
    let log = dir.path().join("demo.log");
    let out = run_apsfs(
        &["mount", "--demo", s(&mnt), "--log-file", s(&log)],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("mounted "), "{out:?}");
    assert_demo_data(&mnt);
    let un = run_apsfs(&["unmount", s(&mnt)], &[], Duration::from_secs(30));
    assert_eq!(un.code, Some(0), "{un:?}");
    assert!(!is_mounted(&mnt));
    assert!(no_process_within(s(&mnt), Duration::from_secs(5)).is_ok());
}

/// `--demo` needs no account, so credentials a user keeps in the environment must not stop it.
#[test]
fn demo_mount_ignores_credentials_in_the_environment() {
    let (_d, mnt) = mountpoint();
    let fg = foreground(
        &mnt,
        &["--demo"],
        &[
            ("APS_CLIENT_ID", "someone"),
            ("APS_CLIENT_SECRET", "secret"),
        ],
    );
    assert!(
        fg.first.starts_with("mounted "),
        "{:?}: {}",
        fg.first,
        fg.stderr_text()
    );
    assert_demo_data(&mnt);
}

#[test]
fn aps_token_alone_is_enough() {
    let emu = Emulator::start(&[]);
    let token = rt().block_on(emu.token_with("data:read"));
    let (_d, mnt) = mountpoint();
    let fg = foreground(
        &mnt,
        &["--base-url", emu.base.as_str()],
        &[("APS_TOKEN", token.as_str())],
    );
    assert!(fg.first.starts_with("mounted "), "{:?}", fg.first);
    let pf = mnt.join(HUB_PROJECT_FILES);
    assert!(pf.is_dir());
    let (f, size) = first_file(&pf).expect("a file");
    assert_eq!(std::fs::read(&f).unwrap().len() as u64, size);
    drop(fg);
    assert!(!is_mounted(&mnt));

    // A token the service does not know is refused up front.
    let (_d2, mnt2) = mountpoint();
    expect_foreground_failure(
        &mnt2,
        &["--base-url", emu.base.as_str()],
        &[("APS_TOKEN", "not-a-token")],
        "refused the credentials",
    );
}

// ---------------------------------------------------------------------------------------------
// `--log-level`.

/// The log lines of `text` at `level` (tracing's fmt layer: `<time>  DEBUG <target>: …`).
fn lines_at<'a>(text: &'a str, level: &str) -> Vec<&'a str> {
    let marker = format!(" {level} ");
    text.lines().filter(|l| l.contains(&marker)).collect()
}

/// Lists the foreground mount at `mnt` once (so it is serving, signal handling included), stops
/// it with SIGTERM and returns everything it logged.
fn stop_and_read(mut fg: crate::support::mount::Foreground, mnt: &Path) -> String {
    assert!(mnt.join(HUB_PROJECT_FILES).is_dir(), "the mount serves");
    fg.signal(libc::SIGTERM);
    let st = fg
        .wait(Duration::from_secs(30))
        .expect("exits after SIGTERM");
    assert!(st.success(), "exit {st}");
    fg.stderr_text()
}

#[test]
fn log_level_flag_sets_the_level_and_wins_over_rust_log() {
    let emu = Emulator::start(&[]);

    // --log-level debug while RUST_LOG asks for errors only: the flag wins.
    let (_d, mnt) = mountpoint();
    let mut args = creds(&emu.base);
    args.extend(["--log-level", "debug"]);
    let fg = foreground(&mnt, &args, &[("RUST_LOG", "error")]);
    assert!(fg.first.starts_with("mounted "), "{:?}", fg.first);
    let log = stop_and_read(fg, &mnt);
    assert!(
        !lines_at(&log, "DEBUG").is_empty(),
        "--log-level debug logs at debug: {log}"
    );

    // --log-level info while RUST_LOG asks for debug: nothing at debug.
    let (_d2, mnt2) = mountpoint();
    let mut args = creds(&emu.base);
    args.extend(["--log-level", "info"]);
    let fg = foreground(&mnt2, &args, &[("RUST_LOG", "debug")]);
    assert!(fg.first.starts_with("mounted "), "{:?}", fg.first);
    let log = stop_and_read(fg, &mnt2);
    assert!(
        lines_at(&log, "DEBUG").is_empty() && lines_at(&log, "TRACE").is_empty(),
        "--log-level info logs nothing at debug: {log}"
    );

    // Without the flag, RUST_LOG still decides.
    let (_d3, mnt3) = mountpoint();
    let fg = foreground(&mnt3, &creds(&emu.base), &[("RUST_LOG", "debug")]);
    assert!(fg.first.starts_with("mounted "), "{:?}", fg.first);
    let log = stop_and_read(fg, &mnt3);
    assert!(
        !lines_at(&log, "DEBUG").is_empty(),
        "RUST_LOG=debug without the flag logs at debug: {log}"
    );
}

#[test]
fn log_level_reaches_the_background_mount_log() {
    let emu = Emulator::start(&[]);
    let (dir, mnt) = mountpoint();
    let log = dir.path().join("mount.log");
    let _guard = UnmountGuard::new(&mnt);
    // The global flag before the subcommand, as a user may well give it.
    let mut args = vec![
        "--log-level",
        "debug",
        "mount",
        s(&mnt),
        "--log-file",
        s(&log),
    ];
    args.extend(creds(&emu.base));
    let out = run_apsfs(&args, &[("RUST_LOG", "error")], Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "background mount: {out:?}");
    let un = run_apsfs(&["unmount", s(&mnt)], &[], Duration::from_secs(30));
    assert_eq!(un.code, Some(0), "unmount: {un:?}");
    let text = std::fs::read_to_string(&log).expect("log file");
    assert!(
        !lines_at(&text, "DEBUG").is_empty(),
        "the background mount logs at debug: {text}"
    );
}

#[test]
fn invalid_log_level_is_refused_clearly() {
    for bad in ["verbose", "apsfs=loud", ""] {
        let out = run_apsfs(
            &["status", "--log-level", bad],
            &[],
            Duration::from_secs(30),
        );
        assert_eq!(out.code, Some(2), "--log-level {bad:?}: {out:?}");
        assert!(
            out.stderr.contains("invalid value") && out.stderr.contains("--log-level"),
            "names the flag: {out:?}"
        );
        assert!(
            out.stderr.contains("debug"),
            "says what is accepted: {out:?}"
        );
        assert!(out.stdout.is_empty(), "{out:?}");
    }
    // A full directive, and a level in capitals, are accepted.
    for good in ["apsfs=debug,info", "WARN"] {
        let out = run_apsfs(
            &["--log-level", good, "completions", "bash"],
            &[],
            Duration::from_secs(30),
        );
        assert_eq!(out.code, Some(0), "--log-level {good:?}: {out:?}");
    }
    // --help names the flag and which wins.
    let help = run_apsfs(&["--help"], &[], Duration::from_secs(30));
    assert!(
        help.stdout.contains("--log-level") && help.stdout.contains("Wins over RUST_LOG"),
        "{help:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Completions and man pages.

/// Whether `tool` is on PATH; prints a note naming what is skipped when not.
fn have(tool: &str, skipped: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        eprintln!("note: {tool} is not installed; skipping {skipped}");
    }
    found
}

/// `apsfs ARGS`'s stdout, which must be non-empty, from a successful run.
fn stdout_of(args: &[&str]) -> String {
    let out = run_apsfs(args, &[], Duration::from_secs(30));
    assert_eq!(out.code, Some(0), "apsfs {args:?}: {out:?}");
    assert!(
        !out.stdout.trim().is_empty(),
        "apsfs {args:?} printed nothing"
    );
    out.stdout
}

/// Runs `shell -n` on `script`, which must pass.
fn syntax_check(shell: &str, script: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join(format!("apsfs.{shell}"));
    std::fs::write(&file, script).expect("write script");
    let (code, _out, err) = run(shell, &["-n", s(&file)]);
    assert_eq!(code, 0, "{shell} -n rejects the completion script: {err}");
}

#[test]
fn completions_are_valid_scripts_for_each_shell() {
    let bash = stdout_of(&["completions", "bash"]);
    assert!(bash.contains("apsfs") && bash.contains("mount"), "{bash}");
    assert!(bash.contains("--log-level"), "global flags complete too");
    syntax_check("bash", &bash);

    for shell in ["zsh", "fish"] {
        let script = stdout_of(&["completions", shell]);
        assert!(script.contains("mount"), "{shell}: names mount:\n{script}");
        assert!(script.contains("--read-write") || script.contains("read-write"));
        if have(shell, &format!("the {shell} -n syntax check")) {
            syntax_check(shell, &script);
        }
    }
    // Others clap_complete knows come for free; an unknown shell is refused.
    stdout_of(&["completions", "elvish"]);
    stdout_of(&["completions", "powershell"]);
    let out = run_apsfs(&["completions", "tcsh"], &[], Duration::from_secs(30));
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("bash"), "lists the shells: {out:?}");
}

/// The checks every roff page passes: a `.TH` header naming `title`, a NAME section; and when
/// `man` is installed, it renders the page without a complaint.
fn check_page(page: &str, title: &str) {
    let th = page
        .lines()
        .find(|l| l.starts_with(".TH "))
        .unwrap_or_else(|| panic!("no .TH header:\n{page}"));
    assert!(
        th.starts_with(&format!(".TH {title} 1 ")),
        "header names {title}(1): {th}"
    );
    assert!(
        page.lines().take(3).any(|l| l.starts_with(".TH ")),
        "the header comes first:\n{page}"
    );
    assert!(page.contains(".SH NAME"), "{page}");
    assert!(page.contains(".SH SYNOPSIS"), "{page}");
    if have("man", "rendering the man page") {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join(format!("{title}.1"));
        std::fs::write(&file, page).expect("write page");
        let out = std::process::Command::new("man")
            .args(["-l", s(&file)])
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .output()
            .expect("run man");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "man -l {title}.1 failed: {stderr}");
        assert!(
            stderr.trim().is_empty(),
            "man -l {title}.1 complains: {stderr}"
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(title), "rendered page names {title}: {text}");
    }
}

#[test]
fn man_pages_render_and_name_the_subcommands() {
    let top = stdout_of(&["man"]);
    check_page(&top, "apsfs");
    for word in [
        "mount",
        "unmount",
        "emulator",
        "completions",
        "\\-\\-log\\-level",
        "RUST_LOG",
    ] {
        assert!(top.contains(word), "apsfs(1) mentions {word}:\n{top}");
    }

    let mount = stdout_of(&["man", "mount"]);
    check_page(&mount, "apsfs-mount");
    for word in [
        "\\-\\-read\\-write",
        "\\-\\-cache\\-dir",
        "\\-\\-log\\-level",
        "apsfs\\fR(1)",
    ] {
        assert!(
            mount.contains(word),
            "apsfs-mount(1) mentions {word}:\n{mount}"
        );
    }

    let out = run_apsfs(&["man", "nope"], &[], Duration::from_secs(30));
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("nope") && out.stderr.contains("mount"),
        "names the subcommands: {out:?}"
    );

    // --dir writes every page, one per subcommand, each the same as its printed form.
    let dir = tempfile::tempdir().expect("temp dir");
    let listed = stdout_of(&["man", "--dir", s(dir.path())]);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for want in [
        "apsfs.1",
        "apsfs-mount.1",
        "apsfs-emulator.1",
        "apsfs-man.1",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
    assert_eq!(listed.lines().count(), names.len(), "{listed}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("apsfs.1")).unwrap(),
        top
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("apsfs-mount.1")).unwrap(),
        mount
    );
    for n in &names {
        let page = std::fs::read_to_string(dir.path().join(n)).unwrap();
        check_page(&page, n.trim_end_matches(".1"));
    }
}
