//! Read-ahead across files, driven through `Fs` against the in-memory remote: what a backup
//! reading a folder in order costs, and what a reader that does not costs.

use super::tests::{account, names_in, path, project_fs};
use super::*;
use crate::testing::memory::{folder_info, pattern, TOP};
use crate::testing::{MemoryRemote, Op};

/// Files in the top folder, named so that the listing's order is not the order by name.
const FILES: usize = 60;

fn folder_of_files(latency_ms: u64) -> (Arc<MemoryRemote>, Fs<MemoryRemote>) {
    let m = account();
    for i in 0..FILES {
        // Listing order 0, 1, 2, ...; by name the order is reversed.
        let name = format!("f{:03}.bin", FILES - i);
        let bytes = pattern(i as u64 * 1000, 3000 + i as u64);
        m.add_file(TOP, &format!("i{i}"), &name, &bytes);
    }
    m.set_latency(Op::Read, Duration::from_millis(latency_ms));
    m.set_latency(Op::PrepareMany, Duration::from_millis(latency_ms));
    project_fs(m, Duration::from_secs(60))
}

/// The top folder's files in listing order, as `(inode, name)`.
async fn files(fs: &Fs<MemoryRemote>) -> Vec<(u64, String)> {
    let top = path(fs, &["Project Files"]).await.unwrap().ino;
    let mut out = Vec::new();
    for name in names_in(fs, top).await {
        out.push((fs.lookup(top, &name).await.unwrap().0.ino, name));
    }
    out
}

/// Opens, reads to the end and closes `ino`, as a backup does; checks the bytes.
async fn copy(fs: &Fs<MemoryRemote>, ino: u64, i: usize) {
    let fh = fs.open(ino, false).await.unwrap();
    let size = 3000 + i as u64;
    let data = fs.read(fh, 0, 128 << 10).await.unwrap();
    assert!(data[..] == pattern(i as u64 * 1000, size)[..], "file {i}");
    fs.release(fh).await;
}

/// Index of the file named `name` as `folder_of_files` made it.
fn index(name: &str) -> usize {
    FILES - name[1..4].parse::<usize>().unwrap()
}

#[tokio::test]
async fn a_folder_read_in_order_is_signed_in_batches_and_fetched_ahead_once() {
    for by_name in [false, true] {
        let (m, fs) = folder_of_files(5);
        let mut order = files(&fs).await;
        if by_name {
            order.sort_by(|a, b| a.1.cmp(&b.1));
        }
        let t0 = std::time::Instant::now();
        for (ino, name) in &order {
            copy(&fs, *ino, index(name)).await;
        }
        let took = t0.elapsed();
        assert_eq!(
            m.requests(Op::Prepare),
            0,
            "by name {by_name}: nothing signed alone"
        );
        let batches = m.prepared();
        assert!(
            batches.len() <= FILES / 25 + 2,
            "{} signing requests for {FILES} files: {batches:?}",
            batches.len()
        );
        assert!(batches.iter().all(|b| b.len() <= 25));
        let reads = m.reads();
        assert_eq!(reads.len(), FILES, "each file fetched once: {reads:?}");
        // In series every file would cost two 5 ms round trips (600 ms); fetched ahead, only
        // the first few do.
        assert!(
            took < Duration::from_millis(300),
            "by name {by_name}: {took:?} for {FILES} files"
        );
        assert!(
            m.max_in_flight(Op::Read) > 2,
            "files are fetched in parallel"
        );
        assert_eq!(fs.ahead.held().0, 0, "every file fetched ahead was read");
    }
}

#[tokio::test]
async fn files_opened_out_of_order_or_only_sniffed_are_not_fetched_ahead() {
    let (m, fs) = folder_of_files(1);
    let order = files(&fs).await;
    // Every third file: never the next one.
    for (ino, name) in order.iter().step_by(3) {
        copy(&fs, *ino, index(name)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(m.reads().len(), FILES.div_ceil(3), "only the files opened");
    assert!(m.prepared().len() <= 3, "{:?}", m.prepared());

    // In order, but only the first bytes of each (a file manager's thumbnails).
    let (m, fs) = folder_of_files(1);
    for (ino, _) in files(&fs).await {
        let fh = fs.open(ino, false).await.unwrap();
        fs.read(fh, 0, 16).await.unwrap();
        fs.release(fh).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        m.reads().len(),
        FILES,
        "only the bytes read, of the files opened"
    );
}

#[tokio::test]
async fn a_reader_that_stops_leaves_little_and_nothing_running() {
    let (m, fs) = folder_of_files(2);
    let order = files(&fs).await;
    for (ino, name) in &order[..FILES / 2] {
        copy(&fs, *ino, index(name)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (held, bytes) = fs.ahead.held();
    assert!(
        held <= 32 && bytes < 32 * 4000,
        "{held} files, {bytes} bytes fetched and not read"
    );
    let reads = m.reads().len();
    assert_eq!(reads, FILES / 2 + held);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        m.reads().len(),
        reads,
        "no request after the reader stopped"
    );

    // Opening some other file breaks the pattern: what was fetched for it goes.
    let (ino, name) = &order[5];
    copy(&fs, *ino, index(name)).await;
    assert_eq!(fs.ahead.held().0, 0);
}

#[tokio::test]
async fn signing_one_at_a_time_still_fetches_ahead() {
    let (m, fs) = folder_of_files(5);
    m.sign_singly();
    let t0 = std::time::Instant::now();
    for (ino, name) in files(&fs).await {
        copy(&fs, ino, index(&name)).await;
    }
    let took = t0.elapsed();
    assert_eq!(m.requests(Op::PrepareMany), 0);
    assert_eq!(m.reads().len(), FILES);
    assert!(took < Duration::from_millis(300), "{took:?}");
}

#[tokio::test]
async fn files_opened_before_are_not_fetched_ahead_again() {
    let (m, fs) = folder_of_files(1);
    let order = files(&fs).await;
    for (ino, name) in &order {
        copy(&fs, *ino, index(name)).await;
    }
    assert_eq!(m.reads().len(), FILES);
    // A repeated backup opens only the files that changed, here six in a row: their
    // neighbours, which it skips, are not fetched for it.
    for (ino, name) in &order[20..26] {
        copy(&fs, *ino, index(name)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(m.reads().len(), FILES + 6, "only the six files read");
}

#[tokio::test]
async fn a_reader_by_name_finds_the_next_folders_first_files_fetched() {
    // Project Files/{A, B, C, D}, 6 files each, read as rsync does: each folder's files by
    // name, the folders by name.
    let m = account();
    let mut storages = Vec::new();
    for f in ["A", "B", "C", "D"] {
        m.add_folder(TOP, folder_info(f, f));
        let mut here = Vec::new();
        for i in 0..6 {
            let id = format!("{f}{i}");
            here.push(m.add_file(f, &id, &format!("{id}.txt"), id.as_bytes()));
        }
        storages.push(here);
    }
    m.set_latency(Op::Read, Duration::from_millis(1));
    let (m, fs) = project_fs(m, Duration::from_secs(60));
    let top = path(&fs, &["Project Files"]).await.unwrap().ino;
    let mut dirs = Vec::new();
    for f in ["A", "B", "C", "D"] {
        let dir = fs.lookup(top, f).await.unwrap().0.ino;
        let mut inos = Vec::new();
        for name in names_in(&fs, dir).await {
            inos.push(fs.lookup(dir, &name).await.unwrap().0.ino);
        }
        dirs.push(inos);
    }
    for (k, inos) in dirs.iter().enumerate() {
        if k >= 2 {
            // Moving from A to B went where foreseen, so C's (and D's) first files were
            // fetched while the reader finished the folder before.
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(
                !m.reads_of(&storages[k][0]).is_empty(),
                "folder {k}'s first file was fetched before it was opened"
            );
        }
        for ino in inos {
            let fh = fs.open(*ino, false).await.unwrap();
            assert_eq!(fs.read(fh, 0, 4096).await.unwrap().len(), 2);
            fs.release(fh).await;
        }
    }
    let total: usize = storages.iter().flatten().map(|s| m.reads_of(s).len()).sum();
    assert_eq!(total, 24, "each file fetched once");
    assert_eq!(m.requests(Op::Prepare), 0);
}
