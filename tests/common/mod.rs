//! Shared harness for integration tests: runs the real `apsfs emulator` binary on a free
//! loopback port and kills it when the test ends, pass or fail.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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
        let r = http()
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        let body = r.bytes().await.expect("body");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
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
    apsfs::emulator::content::generated_fill(seed, offset, &mut v);
    v
}
