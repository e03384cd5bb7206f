//! Real FUSE mounts of `apsfs mount --foreground`, and the guards that make sure no test leaves
//! a mount behind, pass or fail.

use crate::support::process::{apsfs_cmd, drain, s, wait_timeout};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

/// How long a mount may take to print its first line (`mounted …` or `error: …`).
const FIRST_LINE_LIMIT: Duration = Duration::from_secs(60);

/// How long a mount may take to exit after SIGTERM before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// A temporary directory with an empty `mnt` inside: a mountpoint of the test's own, removed
/// with the directory.
pub fn mountpoint() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir mnt");
    (dir, mnt)
}

/// Whether `path` is a mountpoint right now.
pub fn is_mounted(path: &Path) -> bool {
    let want = path.to_string_lossy().replace(' ', "\\040");
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| {
            m.lines()
                .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
        })
        .unwrap_or(false)
}

/// Unmounts `path` (lazily) on drop if it is mounted then but was not when the guard was made,
/// so no test leaves a mount behind, nor takes down a mount it did not make.
pub struct UnmountGuard {
    path: PathBuf,
    was_mounted: bool,
}

impl UnmountGuard {
    /// Guards `path`, remembering whether it is a mountpoint already.
    pub fn new(path: &Path) -> UnmountGuard {
        UnmountGuard {
            path: path.to_path_buf(),
            was_mounted: is_mounted(path),
        }
    }
}

impl Drop for UnmountGuard {
    fn drop(&mut self) {
        if !self.was_mounted && is_mounted(&self.path) {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Where a foreground mount's stderr goes.
pub enum Stderr<'a> {
    /// Kept, for `Foreground::stderr_text`.
    Capture,
    /// Dropped, or shown when `MOUNT_LOG` is set (to see why a test's mount misbehaved).
    Discard,
    /// Written to this file, for tests that read the log afterwards.
    File(&'a Path),
}

/// The credential flags of every test mount (the emulator accepts any pair).
pub const CREDENTIALS: [&str; 4] = [
    "--client-id",
    "test-client",
    "--client-secret",
    "test-secret",
];

/// A foreground mount process started by the test; dropping it stops the process (SIGTERM,
/// then SIGKILL after 10 s) and then unmounts whatever it left mounted.
pub struct Foreground {
    child: Option<Child>,
    /// Unmounts what this process may have left mounted; dropped after `Drop::drop` has
    /// stopped the process.
    _guard: UnmountGuard,
    /// First stdout line (`mounted …` or `error: …`), trimmed; empty if none came in 60 s.
    pub first: String,
    stderr: Option<Receiver<String>>,
}

impl Foreground {
    /// Starts `apsfs mount MNT --foreground ARGS` (without the developer's `APS_*` variables,
    /// with `env` added) and waits for its first line.
    pub fn spawn(mnt: &Path, args: &[&str], env: &[(&str, &str)], stderr: Stderr) -> Foreground {
        let guard = UnmountGuard::new(mnt);
        let mut all = vec!["mount", s(mnt), "--foreground"];
        all.extend_from_slice(args);
        let mut cmd = apsfs_cmd(&all, env);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        match stderr {
            Stderr::Capture => cmd.stderr(Stdio::piped()),
            Stderr::Discard if std::env::var_os("MOUNT_LOG").is_some() => {
                cmd.stderr(Stdio::inherit())
            }
            Stderr::Discard => cmd.stderr(Stdio::null()),
            Stderr::File(p) => cmd.stderr(std::fs::File::create(p).expect("log file")),
        };
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn apsfs mount: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().map(drain);
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let first = rx
            .recv_timeout(FIRST_LINE_LIMIT)
            .unwrap_or_default()
            .trim()
            .to_string();
        Foreground {
            child: Some(child),
            _guard: guard,
            first,
            stderr,
        }
    }

    /// The mount process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("child").id()
    }

    /// Sends `sig` to the mount process.
    pub fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().expect("child").id() as i32;
        // SAFETY: signalling a child process we own and have not reaped.
        unsafe {
            libc::kill(pid, sig);
        }
    }

    /// Waits for the process to exit; None if it is still running after `limit`.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let st = wait_timeout(self.child.as_mut().expect("child"), limit)?;
        self.child = None;
        Some(st)
    }

    /// Kills the process with SIGKILL, as a crash would, leaving its mount behind (the guard
    /// still cleans it up when this is dropped).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Everything the process wrote on stderr (with `Stderr::Capture`; waits 5 s at most).
    pub fn stderr_text(&self) -> String {
        self.stderr
            .as_ref()
            .and_then(|rx| rx.recv_timeout(Duration::from_secs(5)).ok())
            .unwrap_or_default()
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling a child process we own and have not reaped.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            if wait_timeout(&mut child, STOP_LIMIT).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // `_guard` unmounts next, after the process is gone.
    }
}

/// A mount of an emulator with the test credentials, in a temporary directory of its own;
/// dropping it unmounts (see `Foreground`) and removes the directory.
pub struct Mount {
    // Declared before `dir`, so it is dropped first: the mount is gone before its directory is
    // removed.
    _process: Foreground,
    dir: tempfile::TempDir,
}

impl Mount {
    /// Mounts the emulator at `base` with test credentials and `extra` options.
    pub fn start(base: &str, extra: &[&str]) -> Mount {
        Mount::try_start(base, extra).unwrap_or_else(|e| panic!("mount failed: {e}"))
    }

    /// Like `start`, but returns the error line of a mount that failed.
    pub fn try_start(base: &str, extra: &[&str]) -> Result<Mount, String> {
        let mut args = CREDENTIALS.to_vec();
        args.extend_from_slice(extra);
        Mount::try_start_with(base, &args, &[])
    }

    /// Mounts with exactly `args` (no credentials unless they name some) and `env` added to
    /// an environment without any `APS_*` credentials; returns the error line on failure.
    pub fn try_start_with(
        base: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Mount, String> {
        Mount::try_start_to(base, args, env, Stderr::Discard)
    }

    /// Like `start`, with the mount's log (its stderr) written to `log`.
    pub fn start_logged(base: &str, extra: &[&str], log: &Path) -> Mount {
        let mut args = CREDENTIALS.to_vec();
        args.extend_from_slice(extra);
        Mount::try_start_to(base, &args, &[], Stderr::File(log))
            .unwrap_or_else(|e| panic!("mount failed: {e}"))
    }

    fn try_start_to(
        base: &str,
        args: &[&str],
        env: &[(&str, &str)],
        stderr: Stderr,
    ) -> Result<Mount, String> {
        let (dir, mnt) = mountpoint();
        let mut all = vec!["--base-url", base];
        all.extend_from_slice(args);
        let process = Foreground::spawn(&mnt, &all, env, stderr);
        if process.first.starts_with("mounted ") {
            Ok(Mount {
                _process: process,
                dir,
            })
        } else {
            Err(process.first.clone())
        }
    }

    /// The mountpoint.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// The mount process's id.
    pub fn pid(&self) -> u32 {
        self._process.pid()
    }

    /// Kills the mount process with SIGKILL, as a crash would (its mount is cleaned up when
    /// this is dropped).
    pub fn kill9(&mut self) {
        self._process.kill9();
    }

    /// Peak resident memory of the mount process (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM line")
    }

    /// A path inside the mount.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }
}
