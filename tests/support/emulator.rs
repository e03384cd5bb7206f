//! The emulator under test as a process: the real `apsfs emulator` binary on a loopback port,
//! killed when the test ends, pass or fail. Tests talk to it over real HTTP only.

use crate::support::binary::APSFS;
use crate::support::http::{get_authed, http};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

/// How long an emulator may take to say it is listening. Generous, because a large generated
/// world on a busy machine takes seconds to build; bounded, so a start that hangs fails the test
/// instead of the whole run.
const START_LIMIT: Duration = Duration::from_secs(60);

/// A running emulator process; dropping it kills the process.
pub struct Emulator {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Visible to the rest of the support module, which measures the process.
    pub(super) child: Child,
}

impl Emulator {
    /// Starts `apsfs emulator --listen 127.0.0.1:0 ARGS…`: each test gets its own emulator on a
    /// port of its own.
    pub fn start(args: &[&str]) -> Emulator {
        Emulator::start_on("127.0.0.1:0", args)
    }

    /// Starts `apsfs emulator --listen LISTEN ARGS…` and waits for its `listening on` line; a
    /// fixed address lets a test stop the service and bring it back where a mount expects it.
    pub fn start_on(listen: &str, args: &[&str]) -> Emulator {
        let mut child = Command::new(APSFS)
            .arg("emulator")
            .args(["--listen", listen])
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
        // Owned from here on, so a start that fails below still kills the process.
        let mut emu = Emulator {
            base: String::new(),
            child,
        };
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(START_LIMIT).unwrap_or_default();
        assert!(
            line.starts_with("listening on "),
            "unexpected first line from emulator: {line:?}"
        );
        emu.base = line["listening on ".len()..].trim().to_string();
        emu
    }

    /// Starts on a seed directory: its `HUB/PROJECT/TOP FOLDER/…` tree is what the API serves.
    pub fn seeded(dir: &Path, extra: &[&str]) -> Emulator {
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
        let r = get_authed(&url, token, &[]).await;
        let status = r.status().as_u16();
        let body = r.bytes().await.expect("body");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
