//! Local files for seed trees: the emulator serves a directory as hubs, projects and folders,
//! with each file's mtime as its version time.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

/// Writes a file of a seed tree, creating the folders it lives in.
pub fn seed_file(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent dirs");
    }
    std::fs::write(path, bytes).expect("write seed file");
}

/// Writes a seed file and sets its mtime to `mtime_s` whole seconds since the epoch.
pub fn write_file(path: &Path, bytes: &[u8], mtime_s: u64) {
    seed_file(path, bytes);
    set_mtime(path, mtime_s);
}

/// Sets a file's or directory's mtime to whole seconds (the service keeps milliseconds, so a
/// whole second survives the round trip exactly).
pub fn set_mtime(path: &Path, secs: u64) {
    let f = std::fs::File::options()
        .read(true)
        .open(path)
        .expect("open for set_modified");
    f.set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .expect("set mtime");
}
