//! Shared harness for integration tests: runs the real `apsfs emulator` binary on a free
//! loopback port and kills it when the test ends, pass or fail.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// A running emulator process; dropping it kills the process.
pub struct Emulator {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    child: Child,
}

impl Emulator {
    /// Starts `apsfs emulator --listen 127.0.0.1:0 ARGS…` and waits for its `listening on` line.
    pub fn start(args: &[&str]) -> Emulator {
        let mut child = Command::new(env!("CARGO_BIN_EXE_apsfs"))
            .arg("emulator")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("EMULATOR_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("spawn apsfs emulator");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read listening line");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("unexpected first line from emulator: {line:?}")
            })
            .to_string();
        Emulator { base, child }
    }

    /// Starts on a seed directory.
    pub fn seeded(dir: &std::path::Path, extra: &[&str]) -> Emulator {
        let d = dir.to_str().expect("utf-8 path");
        let mut args = vec!["--seed-dir", d];
        args.extend_from_slice(extra);
        Emulator::start(&args)
    }

    /// Full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A 2-legged token with `scope` (any credentials work unless the emulator was given some).
    pub async fn token_with(&self, scope: &str) -> String {
        let r = http()
            .post(self.url("/authentication/v2/token"))
            .basic_auth("test-client", Some("test-secret"))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
            .send()
            .await
            .expect("token request");
        assert_eq!(r.status(), 200, "token endpoint");
        let v: Value = r.json().await.expect("token json");
        v["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// A token with every scope the tests need.
    pub async fn token(&self) -> String {
        self.token_with("data:read data:write data:create bucket:create bucket:read bucket:delete")
            .await
    }

    /// GET with a bearer token, returning status and JSON body (Null when not JSON).
    pub async fn get_json(&self, token: &str, path_or_url: &str) -> (u16, Value) {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            self.url(path_or_url)
        };
        let (status, _, body) = get_full(token, &url).await;
        (status, body)
    }

    /// `/__emulator/stats`.
    pub async fn stats(&self) -> Value {
        http()
            .get(self.url("/__emulator/stats"))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats json")
    }

    /// Request count of one route in the stats.
    pub async fn count(&self, route: &str) -> u64 {
        self.stats().await["requests"][route].as_u64().unwrap_or(0)
    }

    /// Zeroes the request counters.
    pub async fn reset_stats(&self) {
        let r = http()
            .post(self.url("/__emulator/reset-stats"))
            .send()
            .await
            .expect("reset-stats");
        assert_eq!(r.status(), 200);
    }

    /// Moves the emulator clock forward.
    pub async fn advance_clock(&self, secs: u64) {
        let r = http()
            .post(self.url(&format!("/__emulator/clock?advance={secs}")))
            .send()
            .await
            .expect("clock");
        assert_eq!(r.status(), 200);
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET with a bearer token: status, headers and JSON body (Null when not JSON).
pub async fn get_full(token: &str, url: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = http()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await.expect("body");
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

/// A plain HTTP client with a timeout, so a hung server fails the test instead of hanging it.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// Percent-encodes one path segment (ids contain `:`, `?`, `=`).
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The bytes a generated object holds at `offset` (same function as the emulator's).
pub fn generated(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    aps_emulator::testing::generated_fill(seed, offset, &mut v);
    v
}

/// A real FUSE mount of `apsfs mount --foreground`; dropping it unmounts (SIGTERM, then a
/// forced lazy unmount if the process does not go), so no test leaves a mount behind.
pub struct Mount {
    /// Temporary directory holding the mountpoint.
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Mount {
    /// Mounts the emulator at `base` with test credentials and `extra` options.
    pub fn start(base: &str, extra: &[&str]) -> Mount {
        Mount::try_start(base, extra).unwrap_or_else(|e| panic!("mount failed: {e}"))
    }

    /// Like `start`, but returns the error line of a mount that failed.
    pub fn try_start(base: &str, extra: &[&str]) -> Result<Mount, String> {
        let mut args = vec![
            "--client-id",
            "test-client",
            "--client-secret",
            "test-secret",
        ];
        args.extend_from_slice(extra);
        Mount::try_start_with(base, &args, &[])
    }

    /// Mounts with exactly `args` (no credentials unless they name some) and `env` added to
    /// an environment without any `APS_*` credentials; returns the error line on failure.
    pub fn try_start_with(
        base: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Mount, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).expect("mkdir mnt");
        let mut child = Command::new(env!("CARGO_BIN_EXE_apsfs"))
            .arg("mount")
            .arg(&mnt)
            .args(["--foreground", "--base-url", base])
            .args(args)
            .env_remove("APS_TOKEN")
            .env_remove("APS_CLIENT_ID")
            .env_remove("APS_CLIENT_SECRET")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("MOUNT_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("spawn apsfs mount");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let mount = Mount {
            dir,
            child: Some(child),
        };
        if line.starts_with("mounted ") {
            Ok(mount)
        } else {
            Err(line.trim().to_string())
        }
    }

    /// The mountpoint.
    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("mnt")
    }

    /// A path inside the mount.
    pub fn join(&self, rel: &str) -> std::path::PathBuf {
        self.path().join(rel)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let mnt = self.path();
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling a child process we own.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if is_mounted(&mnt) {
            let _ = Command::new("umount").arg("-l").arg(&mnt).status();
        }
    }
}

/// Whether `path` is a mountpoint right now.
pub fn is_mounted(path: &std::path::Path) -> bool {
    let want = path.to_string_lossy().replace(' ', "\\040");
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| {
            m.lines()
                .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
        })
        .unwrap_or(false)
}

/// Environment a test must control itself.
pub const APS_ENV: &[&str] = &[
    "APS_TOKEN",
    "APS_CLIENT_ID",
    "APS_CLIENT_SECRET",
    "APS_BASE_URL",
    "APS_USER_ID",
];

/// `apsfs ARGS` with every `APS_*` credential variable removed and `env` added.
pub fn apsfs_cmd(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_apsfs"));
    cmd.args(args);
    for k in APS_ENV {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    cmd
}

/// A path as `&str`, for argument lists.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Unmounts `path` (lazily) on drop if it is mounted then but was not when the guard was made,
/// so no test leaves a mount behind, nor takes down a mount it did not make.
pub struct UnmountGuard {
    path: PathBuf,
    was_mounted: bool,
}

impl UnmountGuard {
    /// Guards `path`, remembering whether it is a mountpoint already.
    pub fn new(path: &Path) -> UnmountGuard {
        UnmountGuard {
            path: path.to_path_buf(),
            was_mounted: is_mounted(path),
        }
    }
}

impl Drop for UnmountGuard {
    fn drop(&mut self) {
        if !self.was_mounted && is_mounted(&self.path) {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Output of a finished command.
#[derive(Debug)]
pub struct Out {
    /// Exit code (None if killed by a signal).
    pub code: Option<i32>,
    /// Everything it wrote on stdout.
    pub stdout: String,
    /// Everything it wrote on stderr.
    pub stderr: String,
}

/// Reads `r` to its end on a thread; the text arrives on the receiver.
pub fn drain<R: Read + Send + 'static>(r: R) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(r).read_to_string(&mut s);
        let _ = tx.send(s);
    });
    rx
}

/// Waits for `child` to exit; None if it is still running after `limit`.
pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Starts `apsfs ARGS` (see `apsfs_cmd`) with stdin closed and stdout and stderr piped.
pub fn spawn_apsfs(args: &[&str], env: &[(&str, &str)]) -> Child {
    apsfs_cmd(args, env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn apsfs {args:?}: {e}"))
}

/// Runs `apsfs ARGS` to completion (at most `limit`). Its output pipes must close once it has
/// exited: a background mount that kept them open would hang `$(apsfs mount …)` in a shell.
pub fn run_apsfs(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Out {
    let mut child = spawn_apsfs(args, env);
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let status = wait_timeout(&mut child, limit);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("apsfs {args:?} did not finish within {limit:?}");
    }
    let pipe_limit = Duration::from_secs(5);
    let stdout = out
        .recv_timeout(pipe_limit)
        .unwrap_or_else(|_| panic!("apsfs {args:?} exited but its stdout stayed open"));
    let stderr = err
        .recv_timeout(pipe_limit)
        .unwrap_or_else(|_| panic!("apsfs {args:?} exited but its stderr stayed open"));
    Out {
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
    }
}

/// Runs a command, returning (exit code, stdout, stderr).
pub fn run(cmd: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sets a path's mtime to whole seconds (the service keeps milliseconds).
pub fn set_mtime(path: &std::path::Path, secs: u64) {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(secs);
    let f = std::fs::File::options()
        .read(true)
        .open(path)
        .expect("open for set_modified");
    f.set_modified(t).expect("set mtime");
}

impl Emulator {
    /// Uploads `bytes` as a new version of the item called `name` in the folder at
    /// `hub/project/top/...` (names), or as a new item when there is none, through the same
    /// write path a desktop save uses: storage, signed upload, then versions or items.
    pub async fn put_file(&self, path: &[&str], name: &str, bytes: &[u8]) {
        let token = self.token().await;
        let c = http();
        let get = |url: String| {
            let c = c.clone();
            let token = token.clone();
            async move {
                let r = c.get(url).bearer_auth(token).send().await.expect("GET");
                assert!(r.status().is_success(), "GET {}", r.status());
                r.json::<Value>().await.expect("json")
            }
        };
        let named = |doc: &Value, n: &str| -> Value {
            doc["data"]
                .as_array()
                .expect("data")
                .iter()
                .find(|r| r["attributes"]["name"] == n || r["attributes"]["displayName"] == n)
                .cloned()
                .unwrap_or(Value::Null)
        };
        let hubs = get(self.url("/project/v1/hubs")).await;
        let hub = named(&hubs, path[0])["id"]
            .as_str()
            .expect("hub")
            .to_string();
        let projects = get(self.url(&format!("/project/v1/hubs/{hub}/projects"))).await;
        let project = named(&projects, path[1])["id"]
            .as_str()
            .expect("project")
            .to_string();
        let tops = get(self.url(&format!(
            "/project/v1/hubs/{hub}/projects/{project}/topFolders"
        )))
        .await;
        let mut folder = named(&tops, path[2])["id"]
            .as_str()
            .expect("top folder")
            .to_string();
        let contents = |f: &str| {
            self.url(&format!(
                "/data/v1/projects/{project}/folders/{}/contents",
                enc(f)
            ))
        };
        for part in &path[3..] {
            let doc = get(contents(&folder)).await;
            folder = named(&doc, part)["id"]
                .as_str()
                .expect("folder")
                .to_string();
        }
        let doc = get(contents(&folder)).await;
        let item = named(&doc, name)["id"].as_str().map(String::from);

        let post = |path: String, body: Value| {
            let c = c.clone();
            let token = token.clone();
            async move {
                let r = c
                    .post(path)
                    .bearer_auth(token)
                    .header("content-type", "application/vnd.api+json")
                    .body(body.to_string())
                    .send()
                    .await
                    .expect("POST");
                let status = r.status();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                assert!(status.is_success(), "POST {status}: {v}");
                v
            }
        };
        let storage = post(
            self.url(&format!("/data/v1/projects/{project}/storage")),
            serde_json::json!({"jsonapi": {"version": "1.0"}, "data": {"type": "objects", "attributes": {"name": name},
                "relationships": {"target": {"data": {"type": "folders", "id": folder}}}}}),
        )
        .await;
        let urn = storage["data"]["id"]
            .as_str()
            .expect("storage id")
            .to_string();
        let (bucket, key) = urn
            .strip_prefix("urn:adsk.objects:os.object:")
            .and_then(|r| r.split_once('/'))
            .expect("storage urn");
        self.upload_object(&token, bucket, key, bytes).await;
        match item {
            Some(item) => {
                post(
                    self.url(&format!("/data/v1/projects/{project}/versions")),
                    serde_json::json!({"jsonapi": {"version": "1.0"}, "data": {"type": "versions",
                        "attributes": {"name": name, "extension": {"type": "versions:autodesk.core:File", "version": "1.0"}},
                        "relationships": {"item": {"data": {"type": "items", "id": item}},
                                          "storage": {"data": {"type": "objects", "id": urn}}}}}),
                )
                .await;
            }
            None => {
                post(
                    self.url(&format!("/data/v1/projects/{project}/items")),
                    serde_json::json!({"jsonapi": {"version": "1.0"}, "data": {"type": "items",
                        "attributes": {"displayName": name, "extension": {"type": "items:autodesk.core:File", "version": "1.0"}},
                        "relationships": {"tip": {"data": {"type": "versions", "id": "1"}},
                                          "parent": {"data": {"type": "folders", "id": folder}}}},
                        "included": [{"type": "versions", "id": "1",
                            "attributes": {"name": name, "extension": {"type": "versions:autodesk.core:File", "version": "1.0"}},
                            "relationships": {"storage": {"data": {"type": "objects", "id": urn}}}}]}),
                )
                .await;
            }
        }
    }
}

impl Emulator {
    /// Uploads `bytes` as object `key` of `bucket` through the signed upload flow.
    pub async fn upload_object(&self, token: &str, bucket: &str, key: &str, bytes: &[u8]) {
        let c = http();
        let oss = self.url(&format!(
            "/oss/v2/buckets/{}/objects/{}/signeds3upload",
            enc(bucket),
            enc(key)
        ));
        let start: Value = c
            .get(&oss)
            .bearer_auth(token)
            .send()
            .await
            .expect("start upload")
            .json()
            .await
            .expect("upload json");
        let url = start["urls"][0].as_str().expect("upload url");
        let put = c
            .put(url)
            .body(bytes.to_vec())
            .send()
            .await
            .expect("PUT part");
        assert!(put.status().is_success(), "PUT part {}", put.status());
        let done = c
            .post(&oss)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(serde_json::json!({"uploadKey": start["uploadKey"]}).to_string())
            .send()
            .await
            .expect("complete upload");
        assert!(
            done.status().is_success(),
            "complete upload {}",
            done.status()
        );
    }

    /// Creates a bucket owned by the test client, with a retention policy.
    pub async fn create_bucket(&self, key: &str, policy: &str) {
        let r = http()
            .post(self.url("/oss/v2/buckets"))
            .bearer_auth(self.token().await)
            .json(&serde_json::json!({"bucketKey": key, "policyKey": policy}))
            .send()
            .await
            .expect("POST bucket");
        assert_eq!(r.status(), 200, "create bucket {key}");
    }
}
