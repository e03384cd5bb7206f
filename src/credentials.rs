//! The credentials file of `apsfs login`: one user login per API base URL, in
//! `$XDG_CONFIG_HOME/apsfs/credentials.json` (or `~/.config/apsfs/`), the directory 0700 and the
//! file 0600, always replaced whole (temporary file, fsync, rename) so a crash leaves either the
//! old file or the new one. Processes sharing a login take the directory's lock around a
//! read-modify-write, so a refresh token rotated by one is seen by the next.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Name of the file inside the apsfs config directory.
const FILE_NAME: &str = "credentials.json";
/// Format version written; a newer one is refused rather than overwritten.
const VERSION: u32 = 1;

/// One user's login at one base URL: what it takes to get access tokens without a browser.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    /// The APS app the login was granted to.
    pub client_id: String,
    /// The app's secret, for confidential apps (their refresh grants need it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Space-separated scopes granted.
    pub scopes: String,
    /// The latest access token.
    pub access_token: String,
    /// The latest refresh token; each refresh replaces it.
    pub refresh_token: String,
    /// When the access token was issued, seconds since the epoch.
    pub issued_at: i64,
    /// When the access token expires, seconds since the epoch.
    pub expires_at: i64,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("scopes", &self.scopes)
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Seconds since the epoch now (the stored times are wall-clock, shared between processes).
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The file's shape.
#[derive(Serialize, Deserialize, Default)]
struct FileBody {
    version: u32,
    logins: BTreeMap<String, Login>,
}

/// The key a base URL is stored under, so `https://host/` and `https://host` are one login.
pub fn key(base_url: &str) -> String {
    base_url.trim_end_matches('/').to_string()
}

/// The credentials file; cheap to clone, nothing is read until asked.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

/// Held while a process reads, refreshes and writes a login; dropping it releases the lock.
pub struct StoreLock {
    _dir: std::fs::File,
}

impl Store {
    /// The user's store: `$XDG_CONFIG_HOME/apsfs`, else `$HOME/.config/apsfs`.
    pub fn user() -> Result<Store, String> {
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".config"))
            })
            .ok_or("neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep the login")?;
        Ok(Store::in_dir(config.join("apsfs")))
    }

    /// A store in `dir` (tests use temporary ones).
    pub fn in_dir(dir: PathBuf) -> Store {
        Store { dir }
    }

    /// The file's path, for messages.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The login stored for `base_url`, if any.
    pub fn load(&self, base_url: &str) -> Result<Option<Login>, String> {
        Ok(self.read()?.logins.remove(&key(base_url)))
    }

    /// Stores `login` for `base_url`, replacing the file atomically.
    pub fn save(&self, base_url: &str, login: &Login) -> Result<(), String> {
        let mut body = self.read()?;
        body.logins.insert(key(base_url), login.clone());
        self.write(&body)
    }

    /// Forgets the login for `base_url`; the file goes when no login is left. Returns whether
    /// there was one.
    pub fn remove(&self, base_url: &str) -> Result<bool, String> {
        let mut body = self.read()?;
        if body.logins.remove(&key(base_url)).is_none() {
            return Ok(false);
        }
        if body.logins.is_empty() {
            let path = self.path();
            std::fs::remove_file(&path)
                .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
            sync_dir(&self.dir);
            Ok(true)
        } else {
            self.write(&body).map(|()| true)
        }
    }

    /// Takes the store's lock (waiting for another process holding it), creating the
    /// directory if needed.
    pub async fn lock(&self) -> Result<StoreLock, String> {
        self.create_dir()?;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || lock_dir(&dir))
            .await
            .map_err(|e| format!("cannot lock the credentials directory: {e}"))?
    }

    fn read(&self) -> Result<FileBody, String> {
        let path = self.path();
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(FileBody {
                    version: VERSION,
                    ..FileBody::default()
                })
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        // The parser's message could quote the file: say only where it went wrong.
        let body: FileBody = serde_json::from_slice(&text).map_err(|e| {
            format!(
                "{} is not a valid credentials file (line {}, column {}); remove it and run \
                 `apsfs login` again",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        if body.version > VERSION {
            return Err(format!(
                "{} was written by a newer apsfs (format {})",
                path.display(),
                body.version
            ));
        }
        Ok(body)
    }

    /// Creates the directory 0700, and narrows it to 0700 if it is wider.
    fn create_dir(&self) -> Result<(), String> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let meta = std::fs::metadata(&self.dir)
            .map_err(|e| format!("cannot read {}: {e}", self.dir.display()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot restrict {}: {e}", self.dir.display()))?;
        }
        Ok(())
    }

    /// Writes the whole file: a new 0600 file beside it, flushed to disk, renamed over it.
    fn write(&self, body: &FileBody) -> Result<(), String> {
        self.create_dir()?;
        let path = self.path();
        let tmp = self.dir.join(format!(
            ".{FILE_NAME}.{}.{}.tmp",
            std::process::id(),
            random_suffix()
        ));
        let text = serde_json::to_vec_pretty(&FileBody {
            version: VERSION,
            logins: body.logins.clone(),
        })
        .map_err(|e| format!("cannot encode the credentials: {e}"))?;
        crate::files::replace(&tmp, &path, &[&text, b"\n"], true)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        sync_dir(&self.dir);
        Ok(())
    }
}

/// A few random hex digits, so two writers never share a temporary file.
fn random_suffix() -> String {
    let mut b = [0u8; 6];
    if getrandom::getrandom(&mut b).is_err() {
        // The name only has to differ from a concurrent writer's; the pid already does that.
        return "0".into();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Flushes a rename to disk (best effort: some filesystems refuse fsync on a directory).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn lock_dir(dir: &Path) -> Result<StoreLock, String> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(dir).map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    loop {
        // SAFETY: `f` is an open descriptor for the duration of the call.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(StoreLock { _dir: f });
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("cannot lock {}: {e}", dir.display()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn login(rt: &str) -> Login {
        Login {
            client_id: "app".into(),
            client_secret: None,
            scopes: "data:read".into(),
            access_token: format!("at-{rt}"),
            refresh_token: rt.into(),
            issued_at: 1,
            expires_at: 3600,
        }
    }

    #[test]
    fn saves_privately_by_base_url_and_removes() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::in_dir(d.path().join("config/apsfs"));
        assert_eq!(store.load("http://emu").unwrap(), None);
        store.save("http://emu/", &login("one")).unwrap();
        store
            .save("https://developer.api.autodesk.com", &login("real"))
            .unwrap();
        assert_eq!(store.load("http://emu").unwrap(), Some(login("one")));
        assert_eq!(
            store
                .load("https://developer.api.autodesk.com/")
                .unwrap()
                .unwrap()
                .refresh_token,
            "real"
        );
        let dir_mode = std::fs::metadata(d.path().join("config/apsfs"))
            .unwrap()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert_eq!(
            std::fs::metadata(store.path()).unwrap().mode() & 0o777,
            0o600
        );
        // Only the file remains: no temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(d.path().join("config/apsfs"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(FILE_NAME)]);

        assert!(store.remove("http://emu").unwrap());
        assert!(!store.remove("http://emu").unwrap());
        assert!(store.path().exists(), "another login is still stored");
        assert!(store.remove("https://developer.api.autodesk.com").unwrap());
        assert!(!store.path().exists(), "the last logout removes the file");
    }

    #[test]
    fn a_write_replaces_the_file_rather_than_rewriting_it() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::in_dir(d.path().to_path_buf());
        store.save("http://emu", &login("one")).unwrap();
        let before = std::fs::metadata(store.path()).unwrap().ino();
        // A reader holding the old file keeps seeing a whole old file.
        let old = std::fs::File::open(store.path()).unwrap();
        store.save("http://emu", &login("two")).unwrap();
        assert_ne!(std::fs::metadata(store.path()).unwrap().ino(), before);
        let old_text = std::io::read_to_string(old).unwrap();
        assert!(old_text.contains("\"one\"") && !old_text.contains("\"two\""));
        assert_eq!(
            store.load("http://emu").unwrap().unwrap().refresh_token,
            "two"
        );
    }

    #[test]
    fn a_wide_directory_is_narrowed_and_bad_files_are_reported() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("apsfs");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let store = Store::in_dir(dir.clone());
        store.save("http://emu", &login("one")).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);

        std::fs::write(store.path(), b"{\"version\":1,\"logins\":{\"x\": secret}}").unwrap();
        let e = store.load("http://emu").unwrap_err();
        assert!(e.contains("not a valid credentials file"), "{e}");
        assert!(!e.contains("secret"), "{e}");
        std::fs::write(store.path(), b"{\"version\":99,\"logins\":{}}").unwrap();
        assert!(store.load("http://emu").unwrap_err().contains("newer"));
    }

    #[test]
    fn debug_hides_secrets() {
        let mut l = login("refresh-secret");
        l.client_secret = Some("client-secret".into());
        let s = format!("{l:?}");
        for secret in ["refresh-secret", "client-secret", "at-refresh"] {
            assert!(!s.contains(secret), "{s}");
        }
    }

    #[tokio::test]
    async fn the_lock_is_exclusive_between_holders() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::in_dir(d.path().join("apsfs"));
        let held = store.lock().await.unwrap();
        let s2 = store.clone();
        let waiter = tokio::spawn(async move { s2.lock().await.map(|_| ()) });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!waiter.is_finished(), "a second holder waits");
        drop(held);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}
