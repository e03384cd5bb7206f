//! `apsfs sync` and the queue part of `apsfs status`: what a read-write mount still has to send,
//! read from the mount through extended attributes (`fs::write::QUEUE_XATTR` and the push
//! attributes), so the command needs no other channel to the mount process.

use crate::ask::{mount_of, path_xattr, path_xattr_once};
use crate::fs::write::{QueueReport, PUSH_WAIT_XATTR, PUSH_XATTR, QUEUE_XATTR};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Room for a queue report (an extended attribute value is at most 64 KiB).
const REPORT_BYTES: usize = 64 << 10;

/// The queue of the mount at `mountpoint`, if it is a read-write mount.
pub fn read(mountpoint: &Path) -> Option<QueueReport> {
    let raw = path_xattr(mountpoint, QUEUE_XATTR).ok()?;
    serde_json::from_slice(&raw).ok()
}

/// `report` as `apsfs status` shows it.
pub fn format(report: &QueueReport) -> String {
    let mut out = format!(
        "  queue:  {} change{} to send",
        report.pending,
        if report.pending == 1 { "" } else { "s" }
    );
    if report.pending > 0 {
        let mut kinds = vec![plural(report.new_items, "new file")];
        if report.renames > 0 {
            kinds.push(plural(report.renames, "rename"));
        }
        if report.deletes > 0 {
            kinds.push(plural(report.deletes, "delete"));
        }
        out += &format!(
            " ({}; about {} within the service's rate limits, uploads not counted)",
            kinds.join(", "),
            duration(report.eta_secs)
        );
    }
    out.push('\n');
    for q in &report.entries {
        out += &format!("    {:<40}  {}\n", q.name, q.state);
    }
    if report.more > 0 {
        out += &format!("    … and {} more\n", report.more);
    }
    out
}

/// `n` and `what`, with an `s` unless `n` is 1.
fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn duration(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs.div_ceil(60)),
        _ => format!("{:.1} h", secs as f64 / 3600.0),
    }
}

/// `apsfs sync [--wait] [PATH…]`: sends the changes of each path's folder (a mount's root:
/// all of it) now; with `wait`, returns once they are sent or `timeout` passed. Succeeds when
/// nothing is left waiting.
pub fn sync(paths: &[PathBuf], wait: bool, timeout: Duration) -> Result<(), String> {
    let paths: Vec<PathBuf> = if paths.is_empty() {
        crate::mount::apsfs_mounts()
    } else {
        paths.to_vec()
    };
    if paths.is_empty() {
        return Err("no apsfs mounts".into());
    }
    let started = Instant::now();
    let mut left = 0;
    for p in &paths {
        let mount = mount_of(p)?;
        let report = loop {
            // The mount waits at most the seconds the name carries (and its operation deadline).
            let left = timeout.saturating_sub(started.elapsed()).as_secs().max(1);
            let name = match wait {
                true => format!("{PUSH_WAIT_XATTR}.{left}"),
                false => PUSH_XATTR.to_string(),
            };
            let raw =
                path_xattr_once(p, &name, REPORT_BYTES).map_err(|e| match e.raw_os_error() {
                    Some(libc::ENODATA | libc::EOPNOTSUPP | libc::EROFS) => format!(
                        "{}: not a read-write apsfs mount (mount with --read-write)",
                        mount.display()
                    ),
                    _ => format!("{}: {e}", p.display()),
                })?;
            let report: QueueReport =
                serde_json::from_slice(&raw).map_err(|e| format!("unexpected answer: {e}"))?;
            if !wait || report.pending == 0 || started.elapsed() >= timeout {
                break report;
            }
        };
        left += report.pending;
        if report.pending > 0 || !wait {
            println!("{}", mount.display());
            print!("{}", format(&report));
        }
    }
    if wait && left > 0 {
        return Err(format!(
            "{left} change{} not sent within {} s; the mount keeps trying",
            if left == 1 { "" } else { "s" },
            timeout.as_secs()
        ));
    }
    Ok(())
}
