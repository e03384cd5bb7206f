//! Replacing a file so that a crash leaves the old one or the new one, never half of either:
//! the disk cache's blocks, the pin registry's snapshot and the credentials file all do it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `parts` into `tmp` (a new file, mode 0600, on the same filesystem as `dest`),
/// flushes it to disk when `durable`, and renames it over `dest`. On failure `tmp` is removed
/// and `dest` is untouched.
pub fn replace(tmp: &Path, dest: &Path, parts: &[&[u8]], durable: bool) -> std::io::Result<()> {
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(tmp)?;
        for part in parts {
            f.write_all(part)?;
        }
        if durable {
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(tmp, dest)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_whole_files_and_leaves_nothing_behind_on_failure() {
        let d = tempfile::tempdir().unwrap();
        let (tmp, dest) = (d.path().join("t"), d.path().join("f"));
        std::fs::write(&dest, b"old").unwrap();
        replace(&tmp, &dest, &[b"ne", b"w"], true).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!tmp.exists());
        // A destination that cannot be replaced (a non-empty directory): the old stays.
        let dir = d.path().join("dir");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("x"), b"x").unwrap();
        assert!(replace(&tmp, &dir, &[b"new"], false).is_err());
        assert!(!tmp.exists(), "the temporary file is removed");
        assert!(dir.join("x").exists());
    }
}
