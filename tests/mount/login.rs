//! `apsfs login`, `whoami`, `logout` and mounting with the stored login, all with the real
//! binary against the emulator; the test plays the browser. Short-lived tokens make the mounts
//! refresh while they are used, and single-use refresh tokens prove that the newest one is
//! always the one used (and saved).

use crate::support::emulator::Emulator;
use crate::support::files::seed_file;
use crate::support::http::http;
use crate::support::mount::{is_mounted, mountpoint, Mount, UnmountGuard};
use crate::support::process::{drain, run_apsfs, s, spawn_apsfs, wait_timeout, Out};
use crate::support::runtime::rt;
use serde_json::Value;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Child;
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// The public (PKCE) app the tests log in with; the emulator accepts any client id.
const CLIENT: &str = "login-test-app";
const FILES: &str = "Hub A/Project A/Files";
const CONTENT: &[u8] = b"read through a user's login\n";
const LIMIT: Duration = Duration::from_secs(60);

/// A private home: HOME and XDG_CONFIG_HOME point into a temporary directory.
struct Home {
    _dir: tempfile::TempDir,
    home: String,
    config: PathBuf,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().expect("home");
        let home = dir.path().join("home");
        let config = dir.path().join("config");
        std::fs::create_dir_all(&home).expect("mkdir home");
        Home {
            home: s(&home).to_string(),
            config,
            _dir: dir,
        }
    }

    fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("HOME", self.home.as_str()),
            ("XDG_CONFIG_HOME", s(&self.config)),
        ]
    }

    fn env_with<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut env = self.env();
        env.extend_from_slice(extra);
        env
    }

    fn credentials(&self) -> PathBuf {
        self.config.join("apsfs/credentials.json")
    }

    /// The stored login for `base`, if any.
    fn stored(&self, base: &str) -> Option<Value> {
        let text = std::fs::read(self.credentials()).ok()?;
        let v: Value = serde_json::from_slice(&text).expect("credentials JSON");
        v["logins"].get(base).cloned()
    }

    fn stored_refresh_token(&self, base: &str) -> String {
        let login = self.stored(base).expect("a stored login");
        login["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_string()
    }
}

/// `apsfs login` running, with the authorize URL it printed.
struct LoginRun {
    child: Child,
    url: String,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

/// Starts `apsfs login --no-browser` and reads the authorize URL from its stdout.
fn start_login(base: &str, env: &[(&str, &str)]) -> LoginRun {
    let args = [
        "login",
        "--no-browser",
        "--client-id",
        CLIENT,
        "--base-url",
        base,
        "--timeout",
        "60",
    ];
    let mut child = spawn_apsfs(&args, env);
    let stderr = drain(child.stderr.take().expect("stderr"));
    let out = child.stdout.take().expect("stdout");
    let (tx, stdout) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + LIMIT;
    let mut printed = Vec::new();
    let url = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match stdout.recv_timeout(left) {
            Ok(line) if line.trim().starts_with("http") => break line.trim().to_string(),
            Ok(line) => printed.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("login printed no URL: {printed:?}");
            }
        }
    };
    assert!(
        url.starts_with(&format!("{base}/authentication/v2/authorize?")),
        "{url}"
    );
    LoginRun {
        child,
        url,
        stdout,
        stderr,
    }
}

/// Waits for the login to exit and collects what it printed.
fn finish(mut run: LoginRun) -> Out {
    let status = wait_timeout(&mut run.child, LIMIT);
    if status.is_none() {
        let _ = run.child.kill();
        let _ = run.child.wait();
        panic!("apsfs login did not finish");
    }
    Out {
        code: status.and_then(|s| s.code()),
        stdout: run.stdout.try_iter().collect::<Vec<_>>().join("\n"),
        stderr: run.stderr.recv_timeout(LIMIT).unwrap_or_default(),
    }
}

/// What the browser does with the authorize URL: the emulator approves at once and
/// redirects; the Location (the loopback callback) is returned, not followed.
fn authorize(rt: &tokio::runtime::Runtime, url: &str) -> String {
    rt.block_on(async {
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(LIMIT)
            .build()
            .expect("client");
        let r = browser.get(url).send().await.expect("GET authorize");
        assert_eq!(r.status(), 302, "authorize");
        r.headers()["location"]
            .to_str()
            .expect("Location")
            .to_string()
    })
}

/// The browser following a redirect to the callback: the status of the page it gets.
fn visit(rt: &tokio::runtime::Runtime, url: &str) -> u16 {
    rt.block_on(async {
        http()
            .get(url)
            .send()
            .await
            .expect("GET callback")
            .status()
            .as_u16()
    })
}

fn query_param(url: &str, key: &str) -> String {
    reqwest::Url::parse(url)
        .expect("URL")
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{key} in {url}"))
}

/// A whole successful login; returns its output and the authorization code it received.
fn log_in(rt: &tokio::runtime::Runtime, base: &str, env: &[(&str, &str)]) -> (Out, String) {
    let run = start_login(base, env);
    let callback = authorize(rt, &run.url);
    assert_eq!(
        callback,
        format!(
            "{}?code={}&state={}",
            query_param(&run.url, "redirect_uri"),
            query_param(&callback, "code"),
            query_param(&run.url, "state")
        )
    );
    assert!(callback.starts_with("http://127.0.0.1:"), "{callback}");
    assert_eq!(visit(rt, &callback), 200, "the callback page");
    let out = finish(run);
    assert_eq!(out.code, Some(0), "login: {out:?}");
    (out, query_param(&callback, "code"))
}

/// The emulator serving one small project.
fn emulator(extra: &[&str]) -> (tempfile::TempDir, Emulator) {
    let seed = tempfile::tempdir().expect("seed");
    seed_file(&seed.path().join(FILES).join("a.txt"), CONTENT);
    let emu = Emulator::seeded(seed.path(), extra);
    (seed, emu)
}

/// Lists and reads through a mount; panics with the error if either fails.
fn use_mount(files: &std::path::Path) {
    let names: Vec<String> = std::fs::read_dir(files)
        .unwrap_or_else(|e| panic!("list {}: {e}", files.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["a.txt"]);
    assert_eq!(std::fs::read(files.join("a.txt")).expect("read"), CONTENT);
}

/// A refresh grant with `refresh_token` straight at the emulator: its status.
fn refresh_status(rt: &tokio::runtime::Runtime, emu: &Emulator, refresh_token: &str) -> u16 {
    rt.block_on(async {
        http()
            .post(emu.url("/authentication/v2/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", CLIENT),
                ("refresh_token", refresh_token),
            ])
            .send()
            .await
            .expect("token request")
            .status()
            .as_u16()
    })
}

#[test]
fn login_then_mounts_refresh_and_share_the_rotating_login_then_logout() {
    let (_seed, emu) = emulator(&["--token-ttl", "5", "--single-use-refresh"]);
    let home = Home::new();
    let rt = rt();
    let (out, _) = log_in(&rt, &emu.base, &home.env());
    assert!(
        out.stdout
            .contains("as Emulator User <emulator@example.invalid>"),
        "{out:?}"
    );

    // Stored privately, keyed by base URL, with a refresh token and no secret.
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&home.config.join("apsfs")), 0o700);
    assert_eq!(mode(&home.credentials()), 0o600);
    let login = home
        .stored(&emu.base)
        .expect("login stored under the base URL");
    assert_eq!(login["client_id"], CLIENT);
    assert!(login.get("client_secret").is_none(), "{login}");
    assert_eq!(login["scopes"], "data:read user-profile:read");
    let mut seen = HashSet::from([home.stored_refresh_token(&emu.base)]);
    assert!(seen.iter().all(|t| !t.is_empty()));

    let who = run_apsfs(&["whoami", "--base-url", &emu.base], &home.env(), LIMIT);
    assert_eq!(who.code, Some(0), "{who:?}");
    for want in ["Emulator User", "emulator@example.invalid", "EMULATORUSER1"] {
        assert!(who.stdout.contains(want), "{want} in {who:?}");
    }

    // Two mounts without client credentials share the login. Tokens live 5 s and each
    // refresh token works once: a mount that refreshed with anything but the newest one
    // would fail to list.
    let tokens_before = rt.block_on(emu.count("token"));
    let args = ["--metadata-ttl", "1"];
    let a = Mount::try_start_with(&emu.base, &args, &home.env()).expect("mount with the login");
    let b = Mount::try_start_with(&emu.base, &args, &home.env()).expect("a second mount");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(14) {
        use_mount(&a.join(FILES));
        use_mount(&b.join(FILES));
        seen.insert(home.stored_refresh_token(&emu.base));
        std::thread::sleep(Duration::from_millis(400));
    }
    assert!(
        seen.len() >= 3,
        "the rotated refresh tokens were saved: {} seen",
        seen.len()
    );
    let refreshes = rt.block_on(emu.count("token")) - tokens_before;
    assert!(refreshes >= 2, "{refreshes} refreshes");
    assert_eq!(
        mode(&home.credentials()),
        0o600,
        "still private after rewrites"
    );
    drop(a);
    drop(b);

    // whoami refreshes the login when it is due, and saves the rotation too.
    std::thread::sleep(Duration::from_secs(5));
    let before = home.stored_refresh_token(&emu.base);
    let who = run_apsfs(&["whoami", "--base-url", &emu.base], &home.env(), LIMIT);
    assert_eq!(who.code, Some(0), "{who:?}");
    let last = home.stored_refresh_token(&emu.base);
    assert_ne!(last, before, "whoami saved the rotated token");

    let out = run_apsfs(&["logout", "--base-url", &emu.base], &home.env(), LIMIT);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("(refresh token revoked)"), "{out:?}");
    assert!(!home.credentials().exists(), "logout removes the file");
    assert_eq!(
        refresh_status(&rt, &emu, &last),
        400,
        "revoked at the service"
    );

    let who = run_apsfs(&["whoami", "--base-url", &emu.base], &home.env(), LIMIT);
    assert_ne!(who.code, Some(0));
    assert!(who.stderr.contains("not logged in"), "{who:?}");
    let err = Mount::try_start_with(&emu.base, &[], &home.env())
        .err()
        .expect("no credentials left");
    assert!(
        err.contains("no credentials") && err.contains("apsfs login --base-url"),
        "{err}"
    );
    let again = run_apsfs(&["logout", "--base-url", &emu.base], &home.env(), LIMIT);
    assert_eq!(again.code, Some(0), "logging out twice is fine: {again:?}");
}

/// A login waiting for its callback, against an emulator of its own.
struct Pending {
    _seed: tempfile::TempDir,
    _emu: Emulator,
    home: Home,
    rt: tokio::runtime::Runtime,
    run: LoginRun,
}

impl Pending {
    fn start() -> Pending {
        let (seed, emu) = emulator(&[]);
        let home = Home::new();
        let run = start_login(&emu.base, &home.env());
        Pending {
            _seed: seed,
            _emu: emu,
            home,
            rt: rt(),
            run,
        }
    }
}

#[test]
fn a_callback_with_a_wrong_state_is_refused_and_nothing_is_stored() {
    let p = Pending::start();
    let callback = authorize(&p.rt, &p.run.url);
    let state = query_param(&p.run.url, "state");
    let forged = callback.replace(&format!("state={state}"), "state=forged-state");
    assert_ne!(forged, callback);
    assert_eq!(visit(&p.rt, &forged), 400);
    let out = finish(p.run);
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("wrong or missing state"), "{out:?}");
    assert!(!p.home.credentials().exists(), "nothing stored");
    // The listener is gone with the login: the genuine callback reaches nobody.
    let late = p.rt.block_on(async { http().get(&callback).send().await });
    assert!(late.is_err(), "the listener is closed");
}

#[test]
fn an_error_from_the_authorization_server_is_reported() {
    let p = Pending::start();
    let denied = format!(
        "{}?error=access_denied&error_description=The+user+said+no&state={}",
        query_param(&p.run.url, "redirect_uri"),
        query_param(&p.run.url, "state")
    );
    assert_eq!(visit(&p.rt, &denied), 400);
    let out = finish(p.run);
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("access_denied: The user said no"),
        "{out:?}"
    );
    assert!(!p.home.credentials().exists(), "nothing stored");
}

#[test]
fn a_revoked_login_tells_the_user_to_log_in_again() {
    let (_seed, emu) = emulator(&[]);
    let home = Home::new();
    let rt = rt();
    log_in(&rt, &emu.base, &home.env());
    let refresh_token = home.stored_refresh_token(&emu.base);
    rt.block_on(async {
        let r = http()
            .post(emu.url("/authentication/v2/revoke"))
            .form(&[
                ("token", refresh_token.as_str()),
                ("token_type_hint", "refresh_token"),
                ("client_id", CLIENT),
            ])
            .send()
            .await
            .expect("revoke");
        assert_eq!(r.status(), 200);
        // The stored access token expires at the service (not on this machine's clock), so
        // the mount is refused, tries to refresh, and cannot.
        emu.advance_clock(7200).await;
    });
    let err = Mount::try_start_with(&emu.base, &[], &home.env())
        .err()
        .expect("a revoked login cannot mount");
    assert!(err.contains("can no longer be refreshed"), "{err}");
    assert!(err.contains("run `apsfs login --base-url"), "{err}");
    assert!(!err.contains(&refresh_token), "{err}");
}

#[test]
fn secrets_never_reach_a_debug_log() {
    let (_seed, emu) = emulator(&["--token-ttl", "5"]);
    let home = Home::new();
    let rt = rt();
    let debug = home.env_with(&[("RUST_LOG", "debug")]);
    let (login_out, code) = log_in(&rt, &emu.base, &debug);
    let mut secrets = HashSet::from([code]);
    let remember = |secrets: &mut HashSet<String>| {
        let login = home.stored(&emu.base).expect("login");
        for k in ["access_token", "refresh_token"] {
            secrets.insert(login[k].as_str().expect("token").to_string());
        }
    };
    remember(&mut secrets);

    // A background mount logging at debug level to --log-file, used across refreshes.
    let (dir, mnt) = mountpoint();
    let log = dir.path().join("mount.log");
    let _guard = UnmountGuard::new(&mnt);
    let args = [
        "mount",
        s(&mnt),
        "--base-url",
        &emu.base,
        "--metadata-ttl",
        "1",
        "--log-file",
        s(&log),
    ];
    let out = run_apsfs(&args, &debug, LIMIT);
    assert_eq!(out.code, Some(0), "background mount: {out:?}");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(9) {
        use_mount(&mnt.join(FILES));
        remember(&mut secrets);
        std::thread::sleep(Duration::from_millis(400));
    }
    let who = run_apsfs(&["whoami", "--base-url", &emu.base], &debug, LIMIT);
    assert_eq!(who.code, Some(0), "{who:?}");
    remember(&mut secrets);
    let un = run_apsfs(&["unmount", s(&mnt)], &[], LIMIT);
    assert_eq!(un.code, Some(0), "{un:?}");
    assert!(!is_mounted(&mnt));
    // The mount process writes its last lines as it goes.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&log).expect("log");
        if text.contains("unmounted externally") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };

    assert!(
        text.contains("refreshed the user's access token"),
        "the log is at debug level and saw refreshes:\n{text}"
    );
    assert!(secrets.len() >= 4, "{} secrets collected", secrets.len());
    let outputs = [
        ("mount log", text.as_str()),
        ("login stdout", &login_out.stdout),
        ("login stderr", &login_out.stderr),
        ("whoami stdout", &who.stdout),
        ("whoami stderr", &who.stderr),
    ];
    for (what, output) in outputs {
        for secret in &secrets {
            assert!(
                !output.contains(secret.as_str()),
                "a secret is in the {what}"
            );
        }
    }
}
