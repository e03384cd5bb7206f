//! Scale over real HTTP: 200 concurrent connections, and a 100,000-item generated world that
//! starts quickly and stays small in memory.

mod common;
mod emu_support;

use aps_emulator::testing::seed_for_key;
use common::{generated, Emulator};
use emu_support::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The two tests here are heavy; run them one at a time so the start-up timing is fair.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_connections() {
    let _serial = SERIAL.lock().await;
    let emu = Emulator::start(&["--generate", "items=200,folders=0"]);
    let tok = emu.token().await;
    let (project, folder) = folder_by_path(&emu, &tok, &[]).await;
    let (data, included) = folder_entries(&emu, &tok, &project, &folder, false).await;
    assert_eq!(data.len(), 200);
    // One signed URL per file, fetched up front.
    let mut targets = Vec::new();
    for v in included
        .iter()
        .filter(|v| v["attributes"]["storageSize"].as_u64().unwrap_or(0) > 0)
    {
        let (bucket, key) = storage_of(v);
        let size = v["attributes"]["storageSize"].as_u64().expect("size");
        let url = signed_url(&emu, &tok, &bucket, &key).await;
        targets.push((url, key, size));
    }
    assert!(targets.len() >= 150);
    let contents = emu.url(&format!(
        "{}?page[limit]=10",
        contents_path(&project, &folder)
    ));
    // A fresh client per task: 200 separate connections, all open at once.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(200));
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (url, key, size) = targets[i % targets.len()].clone();
        let (contents, tok, barrier) = (contents.clone(), tok.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            barrier.wait().await;
            let r = client
                .get(&contents)
                .bearer_auth(&tok)
                .send()
                .await
                .expect("contents");
            assert_eq!(r.status(), 200);
            let body: serde_json::Value = r.json().await.expect("json");
            assert_eq!(body["data"].as_array().map(Vec::len), Some(10));
            assert!(body["links"]["next"]["href"].is_string());
            let a = (i as u64 * 37) % size;
            let b = (a + 999).min(size - 1);
            let r = client
                .get(&url)
                .header("Range", format!("bytes={a}-{b}"))
                .send()
                .await
                .expect("signed GET");
            assert_eq!(r.status(), 206);
            let got = r.bytes().await.expect("bytes");
            assert_eq!(
                &got[..],
                &generated(seed_for_key(&key), a, (b - a + 1) as usize)[..]
            );
        }));
    }
    for t in tasks {
        t.await.expect("task succeeded");
    }
    let stats = emu.stats().await;
    assert!(
        stats["statuses"].get("500").is_none() && stats["statuses"].get("503").is_none(),
        "{stats}"
    );
    assert_eq!(emu.count("signed_get").await, 200);
}

/// Kills the spawned emulator when the test ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

#[tokio::test]
async fn hundred_thousand_items_start_fast_and_small() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_apsfs"))
        .args([
            "emulator",
            "--listen",
            "127.0.0.1:0",
            "--generate",
            "items=100000,folders=1000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn apsfs emulator");
    let stdout = child.stdout.take().expect("stdout");
    let pid = child.id();
    let guard = Killed(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("listening line within 10 s of spawn");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(10), "started in {elapsed:?}");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line {line:?}"))
        .to_string();

    // It serves, and the world is what was asked for.
    let client = common::http();
    let r = client
        .post(format!("{base}/authentication/v2/token"))
        .basic_auth("a", Some("b"))
        .form(&[("grant_type", "client_credentials"), ("scope", "data:read")])
        .send()
        .await
        .expect("token");
    let tok = r.json::<serde_json::Value>().await.expect("json")["access_token"]
        .as_str()
        .expect("tok")
        .to_string();
    let hubs: serde_json::Value = client
        .get(format!("{base}/project/v1/hubs"))
        .bearer_auth(&tok)
        .send()
        .await
        .expect("hubs")
        .json()
        .await
        .expect("json");
    assert_eq!(hubs["data"].as_array().map(Vec::len), Some(1));

    let rss = vm_rss_kib(pid);
    assert!(rss < 600 * 1024, "VmRSS {rss} KiB");
    eprintln!(
        "100k items: listening after {elapsed:?}, VmRSS {} MiB",
        rss / 1024
    );
    drop(guard);
}
