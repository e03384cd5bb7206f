//! Setting a mount up and tearing it down: checks that fail early with a clear message,
//! connecting and resolving what to show, the FUSE session, and unmounting.

use crate::api::auth::{Credentials, TokenSource};
use crate::api::retry::RetryPolicy;
use crate::api::transport::{http_client, storage_client, Transport};
use crate::api::{ApiError, ApsClient, Remote};
use crate::fs::fuse::FuseAdapter;
use crate::fs::{Fs, FsConfig, Scope};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Everything needed to connect.
#[derive(Clone, Debug)]
pub struct Connection {
    /// API base URL.
    pub base_url: String,
    /// Where tokens come from.
    pub credentials: Credentials,
    /// `x-user-id` for 2-legged calls on a user's behalf.
    pub user_id: Option<String>,
    /// Keep under the documented per-app rate limits on the client side.
    pub rate_limits: bool,
}

/// If `path` is a mount whose serving process died ("Transport endpoint is not connected"),
/// detaches it and says so; returns whether it did.
pub fn clean_stale(path: &Path) -> Result<bool, String> {
    match serving_process(path) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            let abs = std::path::absolute(path).map_err(|e| e.to_string())?;
            unmount(&abs, true)?;
            eprintln!(
                "apsfs: {} was a stale mount (the process serving it had died); unmounted it",
                abs.display()
            );
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Asks the process serving the mount at `path` something it answers by itself (`statfs`):
/// "Transport endpoint is not connected" when it died. A `stat` may be answered from the
/// kernel's attribute cache, and opening the root would wait for the service (its listing).
fn serving_process(path: &Path) -> std::io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is a valid NUL-terminated path and `out` a writable statfs for the call.
    let mut out: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut out) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Checks a mountpoint before anything is mounted on it (cleaning up a stale mount of a dead
/// process first); returns its absolute path.
pub fn check_mountpoint(path: &Path) -> Result<PathBuf, String> {
    clean_stale(path)?;
    let abs =
        std::fs::canonicalize(path).map_err(|e| format!("mountpoint {}: {e}", path.display()))?;
    if !abs.is_dir() {
        return Err(format!("mountpoint {} is not a directory", abs.display()));
    }
    if is_mounted(&abs) {
        return Err(format!("{} is already a mountpoint", abs.display()));
    }
    let mut entries =
        std::fs::read_dir(&abs).map_err(|e| format!("mountpoint {}: {e}", abs.display()))?;
    if entries.next().is_some() {
        return Err(format!("mountpoint {} is not empty", abs.display()));
    }
    if !Path::new("/dev/fuse").exists() {
        return Err("/dev/fuse does not exist: load the fuse kernel module (modprobe fuse)".into());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root && which("fusermount3").is_none() && which("fusermount").is_none() {
        return Err("fusermount3 is not installed (Debian/Ubuntu: apt-get install fuse3)".into());
    }
    Ok(abs)
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(cmd))
        .find(|p| p.is_file())
}

/// Whether `path` is a mountpoint, from `/proc/self/mountinfo`.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| unescape_mount_path(m) == want)
}

/// Mountpoints of every apsfs mount, from `/proc/self/mountinfo`: the filesystem type is
/// `fuse.apsfs` through fusermount3, and plain `fuse` with source `apsfs` when root mounts.
pub fn apsfs_mounts() -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mut fs = right.split(' ');
            let (fstype, source) = (fs.next()?, fs.next()?);
            let ours = fstype == "fuse.apsfs" || (fstype == "fuse" && source == "apsfs");
            let mountpoint = left.split(' ').nth(4)?;
            ours.then(|| PathBuf::from(unescape_mount_path(mountpoint)))
        })
        .collect()
}

/// Mount paths in mountinfo escape space, tab, newline and backslash as octal.
fn unescape_mount_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Builds the client and proves it works: credentials accepted, hubs listable.
pub async fn connect(c: &Connection) -> Result<Arc<ApsClient>, String> {
    let http = http_client().map_err(|e| e.to_string())?;
    // One plain request first: an unreachable host is reported at once rather than after the
    // retry policy has given up on the token endpoint.
    if let Err(e) = http
        .get(&c.base_url)
        .timeout(std::time::Duration::from_secs(15))
        .send()
        .await
    {
        return Err(format!(
            "cannot reach {}: {}",
            c.base_url,
            ApiError::from_transport(&e)
        ));
    }
    let policy = RetryPolicy::default();
    let tokens = TokenSource::new(c.credentials.clone(), &c.base_url, http.clone());
    let storage = storage_client().map_err(|e| e.to_string())?;
    let client = Arc::new(ApsClient::new(Transport::new(
        http,
        storage,
        &c.base_url,
        tokens,
        c.user_id.clone(),
        policy,
        crate::api::budget::RequestBudget::new(c.rate_limits),
    )));
    let explain = |e: ApiError| match e {
        ApiError::Network(_) | ApiError::Timeout(_) => format!("cannot reach {}: {e}", c.base_url),
        ApiError::Unauthorized(_) => format!("{} refused the credentials: {e}", c.base_url),
        e => format!("{}: {e}", c.base_url),
    };
    client.check_credentials().await.map_err(explain)?;
    client.hubs().await.map_err(explain)?;
    Ok(client)
}

/// Resolves `HUB/PROJECT` (names or ids; either may itself contain `/`) to ids.
pub async fn resolve_project<R: Remote>(remote: &R, spec: &str) -> Result<Scope, String> {
    let hubs = remote.hubs().await.map_err(|e| e.to_string())?;
    for (i, _) in spec.match_indices('/') {
        let (hub_part, project_part) = (&spec[..i], &spec[i + 1..]);
        for hub in hubs
            .iter()
            .filter(|h| h.name == hub_part || h.id == hub_part)
        {
            let projects = remote.projects(&hub.id).await.map_err(|e| e.to_string())?;
            if let Some(p) = projects
                .iter()
                .find(|p| p.name == project_part || p.id == project_part)
            {
                return Ok(Scope::Project {
                    hub: hub.id.clone(),
                    project: p.id.clone(),
                });
            }
        }
    }
    let names: Vec<&str> = hubs.iter().map(|h| h.name.as_str()).collect();
    Err(format!(
        "no project {spec:?} (expected HUB/PROJECT by name or id; hubs: {})",
        names.join(", ")
    ))
}

/// Mounts `fs` at `mountpoint` (read-only unless `fs` may change); operations run on `rt`,
/// each within `op_timeout`.
pub fn mount<R: Remote>(
    fs: Arc<Fs<R>>,
    rt: tokio::runtime::Handle,
    mountpoint: &Path,
    allow_other: bool,
    auto_unmount: bool,
    op_timeout: std::time::Duration,
) -> Result<fuser::BackgroundSession, String> {
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName("apsfs".into()),
        fuser::MountOption::Subtype("apsfs".into()),
        if fs.writable() {
            fuser::MountOption::RW
        } else {
            fuser::MountOption::RO
        },
        fuser::MountOption::DefaultPermissions,
        fuser::MountOption::NoAtime,
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
    ];
    if auto_unmount {
        // fusermount3 stays behind and unmounts if this process dies, even by SIGKILL.
        config.mount_options.push(fuser::MountOption::AutoUnmount);
    }
    config.acl = if allow_other {
        fuser::SessionACL::All
    } else if auto_unmount {
        // fusermount3's auto_unmount needs the kernel's allow_other; the library then still
        // answers only the owner and root, refusing everyone else.
        fuser::SessionACL::RootAndOwner
    } else {
        fuser::SessionACL::Owner
    };
    fuser::spawn_mount(FuseAdapter::new(fs, rt, op_timeout), mountpoint, &config)
        .map_err(|e| format!("cannot mount on {}: {e}", mountpoint.display()))
}

/// A filesystem configuration for the current user.
pub fn fs_config(
    ttl: std::time::Duration,
    prefetch_memory: u64,
    disk: Option<Arc<crate::cache::disk::DiskCache>>,
    max_entries: usize,
) -> FsConfig {
    // SAFETY: getuid/getgid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    FsConfig {
        ttl,
        prefetch_memory,
        disk,
        max_dirs: crate::cache::metadata::DEFAULT_MAX_DIRS,
        max_entries,
        uid,
        gid,
        modes: Default::default(),
        buckets: None,
        made: None,
        user_id: None,
    }
}

/// Unmounts `path`: directly as root, through `fusermount3 -u` otherwise.
pub fn unmount(path: &Path, lazy: bool) -> Result<(), String> {
    // A dead mount cannot be canonicalized (ENOTCONN): fall back to the absolute path.
    let abs = std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf());
    // A mount whose process died is always detached lazily: nothing will answer for it.
    let lazy =
        lazy || matches!(serving_process(&abs), Err(e) if e.raw_os_error() == Some(libc::ENOTCONN));
    if !is_mounted(&abs) {
        return Err(format!("{} is not mounted", abs.display()));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let c = std::ffi::CString::new(abs.as_os_str().as_encoded_bytes())
            .map_err(|_| "mountpoint contains a NUL byte".to_string())?;
        let flags = if lazy { libc::MNT_DETACH } else { 0 };
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        if unsafe { libc::umount2(c.as_ptr(), flags) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(format!("cannot unmount {}: {e}", abs.display()));
        }
        return Ok(());
    }
    let bin = which("fusermount3")
        .or_else(|| which("fusermount"))
        .ok_or("fusermount3 is not installed")?;
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("-u");
    if lazy {
        cmd.arg("-z");
    }
    let out = cmd.arg(&abs).output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "cannot unmount {}: {}",
            abs.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mount_path("/tmp/a\\040b"), "/tmp/a b");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
        assert_eq!(unescape_mount_path("/end\\04"), "/end\\04");
    }

    #[test]
    fn mountpoint_checks() {
        let d = tempfile::tempdir().unwrap();
        assert!(check_mountpoint(&d.path().join("missing")).is_err());
        std::fs::write(d.path().join("f"), b"x").unwrap();
        assert!(check_mountpoint(&d.path().join("f"))
            .unwrap_err()
            .contains("not a directory"));
        assert!(check_mountpoint(d.path())
            .unwrap_err()
            .contains("not empty"));
        assert!(is_mounted(Path::new("/")) || is_mounted(Path::new("/proc")));
    }
}
