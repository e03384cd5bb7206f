//! Running `apsfs` commands (and everyday tools) as child processes, with bounded waits and
//! an environment the test controls.

use crate::support::binary::APSFS;
use std::io::{BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// Environment a test must control itself: a developer's own credentials must not leak in.
const APS_ENV: &[&str] = &[
    "APS_TOKEN",
    "APS_CLIENT_ID",
    "APS_CLIENT_SECRET",
    "APS_BASE_URL",
    "APS_USER_ID",
];

/// `apsfs ARGS` with every `APS_*` credential variable removed and `env` added.
pub fn apsfs_cmd(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(APSFS);
    cmd.args(args);
    for k in APS_ENV {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    cmd
}

/// A path as `&str`, for argument lists.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Output of a finished command.
#[derive(Debug)]
pub struct Out {
    /// Exit code (None if killed by a signal).
    pub code: Option<i32>,
    /// Everything it wrote on stdout.
    pub stdout: String,
    /// Everything it wrote on stderr.
    pub stderr: String,
}

/// Reads `r` to its end on a thread; the text arrives on the receiver. Keeps a child's pipe
/// from filling up (and blocking it) while the test waits for something else.
pub fn drain<R: Read + Send + 'static>(r: R) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(r).read_to_string(&mut s);
        let _ = tx.send(s);
    });
    rx
}

/// Waits for `child` to exit; None if it is still running after `limit`.
pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Starts `apsfs ARGS` (see `apsfs_cmd`) with stdin closed and stdout and stderr piped.
pub fn spawn_apsfs(args: &[&str], env: &[(&str, &str)]) -> Child {
    apsfs_cmd(args, env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn apsfs {args:?}: {e}"))
}

/// Runs `apsfs ARGS` to completion (at most `limit`). Its output pipes must close once it has
/// exited: a background mount that kept them open would hang `$(apsfs mount …)` in a shell.
pub fn run_apsfs(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Out {
    let mut child = spawn_apsfs(args, env);
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let status = wait_timeout(&mut child, limit);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("apsfs {args:?} did not finish within {limit:?}");
    }
    let pipe_limit = Duration::from_secs(5);
    let stdout = out
        .recv_timeout(pipe_limit)
        .unwrap_or_else(|_| panic!("apsfs {args:?} exited but its stdout stayed open"));
    let stderr = err
        .recv_timeout(pipe_limit)
        .unwrap_or_else(|_| panic!("apsfs {args:?} exited but its stderr stayed open"));
    Out {
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
    }
}

/// Runs a command, returning (exit code, stdout, stderr).
pub fn run(cmd: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
