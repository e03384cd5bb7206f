//! Whether the process behind a FUSE request has been killed while it waits. The kernel keeps a
//! killed process waiting until its request is answered once the mount has read it, and the
//! FUSE library does not pass `FUSE_INTERRUPT` on, so the mount looks for itself: a pending
//! `SIGKILL` (sent by `kill -9`, and also what an uncaught fatal signal such as Ctrl-C becomes)
//! means nobody will read the answer, and the request is given up at once.

use std::time::Duration;

/// How often a waiting request looks at its process. The first look is after this long, so a
/// request answered quickly costs nothing.
const LOOK_EVERY: Duration = Duration::from_millis(500);

/// Resolves once process (thread) `pid` has a fatal signal pending; never for pid 0 (a request
/// the kernel makes itself, or from a process outside this mount's pid namespace) or when its
/// status cannot be read (it is then not known to be gone, and the deadline still bounds it).
pub async fn killed(pid: u32) {
    if pid == 0 {
        return std::future::pending().await;
    }
    let path = format!("/proc/{pid}/status");
    loop {
        tokio::time::sleep(LOOK_EVERY).await;
        if let Ok(status) = tokio::fs::read_to_string(&path).await {
            if kill_pending(&status) {
                tracing::debug!(pid, "the caller was killed; giving up its request");
                return;
            }
        }
    }
}

/// Whether a `/proc/PID/status` text shows `SIGKILL` pending, for the thread (`SigPnd`) or the
/// whole process (`ShdPnd`).
fn kill_pending(status: &str) -> bool {
    const SIGKILL_BIT: u64 = 1 << (libc::SIGKILL - 1);
    status.lines().any(|line| {
        let Some((key, mask)) = line.split_once(':') else {
            return false;
        };
        matches!(key, "SigPnd" | "ShdPnd")
            && u64::from_str_radix(mask.trim(), 16).is_ok_and(|m| m & SIGKILL_BIT != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pending_kills() {
        let quiet = "Name:\tcat\nSigQ:\t0/1\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\nSigBlk:\t0000000000000000\n";
        assert!(!kill_pending(quiet));
        assert!(kill_pending(&quiet.replace(
            "ShdPnd:\t0000000000000000",
            "ShdPnd:\t0000000000000100"
        )));
        assert!(kill_pending(&quiet.replace(
            "SigPnd:\t0000000000000000",
            "SigPnd:\t0000000000000102"
        )));
        // SIGINT (bit 2) alone is handled by the process or becomes SIGKILL: not yet.
        assert!(!kill_pending(&quiet.replace(
            "SigPnd:\t0000000000000000",
            "SigPnd:\t0000000000000002"
        )));
        assert!(!kill_pending("SigPnd:\tnonsense\n"));
        assert!(!kill_pending(""));
    }

    #[tokio::test]
    async fn this_process_is_not_killed() {
        let me = std::process::id();
        let r = tokio::time::timeout(Duration::from_millis(1200), killed(me)).await;
        assert!(r.is_err());
    }
}
