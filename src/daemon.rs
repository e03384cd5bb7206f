//! Running a mount in the background: the command re-runs itself in the foreground as a
//! detached child (its own session, logging to a private file) and returns once the child says
//! the mount is ready, or relays why it failed.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// First stdout line of a foreground mount once it is serving.
pub const READY_PREFIX: &str = "mounted ";
/// First stdout line of a foreground mount that failed to start.
pub const ERROR_PREFIX: &str = "error: ";

/// Where a background mount of `mountpoint` logs: a private directory under the user's state
/// directory (mode 0700; the file 0600, since paths in logs can be sensitive).
pub fn default_log_path(mountpoint: &Path) -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        // SAFETY: getuid has no preconditions.
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/apsfs-{}", unsafe { libc::getuid() })));
    let name: String = mountpoint
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    base.join("apsfs").join(format!("mount{name}.log"))
}

/// Starts `exe args… --foreground` detached, logging to `log`; waits for its first line.
pub fn spawn_background(exe: &Path, args: &[OsString], log: &Path) -> Result<String, String> {
    if let Some(dir) = log.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create log directory {}: {e}", dir.display()))?;
    }
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
        .map_err(|e| format!("cannot open log file {}: {e}", log.display()))?;
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .arg("--foreground")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file);
    // SAFETY: setsid is async-signal-safe; it detaches the child from our terminal so the
    // shell's Ctrl-C and hang-up do not reach the mount.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the mount process: {e}"))?;
    let stdout = child.stdout.take().ok_or("no pipe to the mount process")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let line = line.trim_end().to_string();
    if let Some(msg) = line.strip_prefix(ERROR_PREFIX) {
        let _ = child.wait();
        return Err(msg.to_string());
    }
    if line.starts_with(READY_PREFIX) {
        return Ok(line);
    }
    let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
    Err(format!(
        "the mount process exited ({status}); see {}",
        log.display()
    ))
}

/// Says "ready" (or why not) on stdout, then detaches stdout so a vanished parent cannot hurt.
pub fn report(first_line: &str, detach_stdout: bool) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{first_line}");
    let _ = out.flush();
    drop(out);
    if detach_stdout {
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            use std::os::fd::AsRawFd;
            // SAFETY: both descriptors are valid; dup2 atomically replaces fd 1.
            unsafe {
                libc::dup2(null.as_raw_fd(), 1);
            }
        }
    }
}
