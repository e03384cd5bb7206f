//! Scale over real HTTP: 200 concurrent connections, and a 100,000-item generated world that
//! starts quickly and stays small in memory.

use crate::support::dm::{contents_path, folder_by_path, folder_entries};
use crate::support::emulator::Emulator;
use crate::support::generated::generated_bytes;
use crate::support::oss::{signed_url, storage_of};
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
                &generated_bytes(&key, a, (b - a + 1) as usize)[..]
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

#[tokio::test]
async fn hundred_thousand_items_start_fast_and_small() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let emu = Emulator::start(&["--generate", "items=100000,folders=1000"]);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(10), "started in {elapsed:?}");

    // It serves, and the world is what was asked for.
    let tok = emu.token_with("data:read").await;
    let (_, hubs) = emu.get_json(&tok, "/project/v1/hubs").await;
    assert_eq!(hubs["data"].as_array().map(Vec::len), Some(1));

    let rss = emu.rss_kib();
    assert!(rss < 600 * 1024, "VmRSS {rss} KiB");
    eprintln!(
        "100k items: listening after {elapsed:?}, VmRSS {} MiB",
        rss / 1024
    );
}
