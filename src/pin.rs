//! `apsfs pin`, `unpin` and `status`: the command side of keeping files on this device. The
//! mount does the work (see `fs/pins.rs`); this walks the paths given, pins each file with an
//! ioctl, downloads what is missing by reading the file through the mount, shows progress, and
//! formats the status the mount reports.
//!
//! Resuming is free: blocks already on disk are read from disk, so running `apsfs pin` again
//! after an interruption downloads only what is still missing, and files already complete are
//! not read at all.

use crate::ask::{c_name, mount_of, path_xattr, read_xattr};
use crate::fs::pins::{Status, IOC_PIN, IOC_UNPIN, XATTR_CACHED, XATTR_STATUS};
use crate::units::format_size;
use std::io::{IsTerminal, Read};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Size of each read while downloading: large enough that the mount reads ahead in full parts.
const CHUNK: usize = 4 << 20;
/// How often progress is printed when stdout is not a terminal.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// What to say when the mount has no disk cache to pin into.
const NO_CACHE: &str = "this mount has no disk cache; remount with --cache-dir";

/// A file to pin or unpin.
struct Target {
    path: PathBuf,
    size: u64,
}

/// `apsfs pin PATH…`: pins every file at or below the paths, then downloads what is missing.
pub fn pin(paths: &[PathBuf]) -> Result<(), String> {
    let started = Instant::now();
    let targets = walk(paths)?;
    let todo = register(&targets)?;
    let total: u64 = targets.iter().map(|t| t.size).sum();
    let mut progress = Progress::new(targets.len(), targets.len() - todo.len(), &todo);
    let mut downloaded = 0;
    let mut failed = Vec::new();
    for (t, before) in todo {
        match download(t, &mut progress) {
            Ok(after) => {
                downloaded += after.saturating_sub(before);
                progress.file_done();
            }
            Err(e) => {
                progress.println(&format!("apsfs: {}: {e}", t.path.display()));
                failed.push(t);
            }
        }
    }
    progress.finish();
    let pinned = targets.len() - failed.len();
    println!(
        "pinned {pinned} file{}, {} ({} downloaded) in {:.1} s",
        plural(pinned),
        format_size(total - failed.iter().map(|t| t.size).sum::<u64>()),
        format_size(downloaded),
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} files are not completely on disk yet; run `apsfs pin` again to finish them",
            failed.len(),
            targets.len()
        ))
    }
}

/// Pins every target, before anything is downloaded, so a set that does not fit fails at once
/// (the pins this run added are then taken back); returns the targets not completely on disk
/// yet, with how much of each is.
fn register(targets: &[Target]) -> Result<Vec<(&Target, u64)>, String> {
    let mut added = Vec::new();
    let mut todo = Vec::new();
    let mut outcome = Ok(());
    for t in targets {
        let step = open(&t.path).map_err(PinFailure::Other).and_then(|file| {
            let newly = ioctl(&file, IOC_PIN).map_err(|e| PinFailure::Refused(t, e))?;
            if newly == 1 {
                added.push(t);
            }
            let cached = cached(&file)
                .map_err(|e| PinFailure::Other(format!("{}: {}", t.path.display(), explain(&e))))?;
            if cached < t.size {
                todo.push((t, cached));
            }
            Ok(())
        });
        if let Err(e) = step {
            outcome = Err(e);
            break;
        }
    }
    let Err(failure) = outcome else {
        return Ok(todo);
    };
    for a in added {
        if let Err(e) = open(&a.path).and_then(|f| ioctl(&f, IOC_UNPIN).map_err(|e| explain(&e))) {
            eprintln!(
                "apsfs: could not take back the pin of {}: {e}",
                a.path.display()
            );
        }
    }
    Err(match failure {
        PinFailure::Refused(t, e) => pin_error(t, &e),
        PinFailure::Other(msg) => msg,
    })
}

/// Why registering a pin failed.
enum PinFailure<'a> {
    /// The mount refused to pin this target.
    Refused(&'a Target, std::io::Error),
    /// Anything else, said in full.
    Other(String),
}

/// `apsfs unpin PATH…`: lets the cache evict every file at or below the paths again.
pub fn unpin(paths: &[PathBuf]) -> Result<(), String> {
    let targets = walk(paths)?;
    let (mut unpinned, mut bytes, mut not_pinned) = (0, 0, 0);
    for t in &targets {
        let file = open(&t.path)?;
        match ioctl(&file, IOC_UNPIN) {
            Ok(0) => not_pinned += 1,
            Ok(_) => {
                unpinned += 1;
                bytes += t.size;
            }
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Err(NO_CACHE.into()),
            Err(e) => return Err(format!("{}: {}", t.path.display(), explain(&e))),
        }
    }
    let mut line = format!(
        "unpinned {unpinned} file{}, {}",
        plural(unpinned),
        format_size(bytes)
    );
    if not_pinned > 0 {
        line += &format!(
            " ({not_pinned} {} not pinned)",
            if not_pinned == 1 { "was" } else { "were" }
        );
    }
    println!("{line}");
    Ok(())
}

/// `apsfs status [MOUNTPOINT] [--json]`: the disk cache and pinned files of one mount, or of
/// every apsfs mount; what each asked of the service since it started; a read-write mount's
/// queue. With `json`, one JSON object per mount and line, for scripts.
pub fn status(mountpoint: Option<&Path>, json: bool) -> Result<(), String> {
    let mounts = match mountpoint {
        Some(p) => vec![mount_of(p)?],
        None => crate::mount::apsfs_mounts(),
    };
    if mounts.is_empty() {
        if !json {
            println!("no apsfs mounts");
        }
        return Ok(());
    }
    for (i, m) in mounts.iter().enumerate() {
        let status = read_status(m);
        let service = read_service(m);
        let queue = crate::queue::read(m);
        if json {
            let line = serde_json::json!({
                "mountpoint": m,
                "cache": status.as_ref().ok(),
                "error": status.as_ref().err(),
                "service": service,
                "queue": queue,
            });
            println!("{line}");
            continue;
        }
        if i > 0 {
            println!();
        }
        println!("{}", m.display());
        match status {
            Ok(s) => print!("{}", format_status(&s)),
            Err(e) => println!("  cannot read its status: {e}"),
        }
        if let Some(s) = &service {
            print!("{}", format_service(s));
        }
        if let Some(q) = &queue {
            print!("{}", crate::queue::format(q));
        }
    }
    Ok(())
}

/// What the mount at `mountpoint` asked of the service since it started, if it says.
fn read_service(mountpoint: &Path) -> Option<crate::stats::Snapshot> {
    let raw = path_xattr(mountpoint, crate::fs::STATS_XATTR).ok()?;
    serde_json::from_slice(&raw).ok()
}

/// `s` as shown to people: two lines.
fn format_service(s: &crate::stats::Snapshot) -> String {
    let total: u64 = s.requests.values().sum();
    let mut kinds: Vec<(&String, &u64)> = s.requests.iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let up = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .saturating_sub(s.since);
    let hits = match s.hit_percent() {
        Some(p) => format!(
            "{p}% of {} read from the disk cache",
            format_size(s.cache_hit + s.cache_miss)
        ),
        None => "nothing read yet".into(),
    };
    format!(
        "  service: {total} request{} in {} ({}), {} retr{}, {} answered 429\n           {} downloaded, {hits}\n",
        if total == 1 { "" } else { "s" },
        uptime(up),
        if kinds.is_empty() { "none".into() } else { kinds.join(", ") },
        s.retries,
        if s.retries == 1 { "y" } else { "ies" },
        s.throttled,
        format_size(s.downloaded),
    )
}

/// `secs` as a short duration.
fn uptime(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        _ => format!("{:.1} h", secs as f64 / 3600.0),
    }
}

/// The status of the mount at `mountpoint`, every page of it.
fn read_status(mountpoint: &Path) -> Result<Status, String> {
    let page = |name: &str| -> Result<Status, String> {
        let raw = path_xattr(mountpoint, name).map_err(|e| match e.raw_os_error() {
            // The mount answers no such attribute: an apsfs from before pinning.
            Some(libc::EOPNOTSUPP | libc::ENODATA) => {
                "this mount does not report a status (made by an older apsfs?)".to_string()
            }
            _ => e.to_string(),
        })?;
        serde_json::from_slice(&raw).map_err(|e| format!("unexpected status: {e}"))
    };
    let mut status = page(XATTR_STATUS)?;
    while let Some(next) = status.next.take() {
        let more = page(&format!("{XATTR_STATUS}.{next}"))?;
        if more.pins.is_empty() {
            break;
        }
        status.pins.extend(more.pins);
        status.next = more.next;
    }
    Ok(status)
}

/// `status` as shown to people.
fn format_status(s: &Status) -> String {
    let Some(dir) = &s.cache_dir else {
        return "  no disk cache (mounted without --cache-dir): nothing can be pinned\n".into();
    };
    let mut out = format!(
        "  cache:  {dir}, {} used of {}\n  pinned: {} file{}, {} ({} on disk)\n",
        format_size(s.used),
        format_size(s.capacity),
        s.pinned_files,
        plural(s.pinned_files),
        format_size(s.pinned_bytes),
        percent(s.pinned_cached, s.pinned_bytes),
    );
    for p in &s.pins {
        out += &format!(
            "    {:>4}  {:>10}  {}\n",
            percent(p.cached, p.size),
            format_size(p.size),
            p.path
        );
    }
    out
}

/// `part` of `whole` in whole percent, rounded down so that 100% means complete.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "100%".into();
    }
    format!("{}%", u128::from(part.min(whole)) * 100 / u128::from(whole))
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Every file at or below `paths`, in a stable order (directories sorted by name). Each path
/// must be inside an apsfs mount (checked first, so nothing else is ever walked).
fn walk(paths: &[PathBuf]) -> Result<Vec<Target>, String> {
    for p in paths {
        mount_of(p)?;
    }
    let mut out = Vec::new();
    for p in paths {
        let mut stack = vec![p.clone()];
        while let Some(path) = stack.pop() {
            let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if meta.is_dir() {
                let mut children: Vec<PathBuf> = std::fs::read_dir(&path)
                    .map_err(|e| format!("cannot list {}: {e}", path.display()))?
                    .map(|e| e.map(|e| e.path()))
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("cannot list {}: {e}", path.display()))?;
                children.sort();
                stack.extend(children.into_iter().rev());
            } else if meta.is_file() {
                out.push(Target {
                    path,
                    size: meta.len(),
                });
            }
        }
    }
    Ok(out)
}

/// Reads `t` through the mount, so the mount stores what is missing on disk; returns how many
/// bytes of it are on disk afterwards (all of them, or an error).
fn download(t: &Target, progress: &mut Progress) -> Result<u64, String> {
    let mut file = open(&t.path)?;
    // Pages the kernel still holds would answer reads without the mount seeing them (and so
    // without the disk cache being filled): drop them first, and what was read as it goes, so
    // pinning a large folder does not flood the page cache either.
    drop_pages(&file, 0, 0);
    let mut buf = vec![0u8; CHUNK];
    let mut pos = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| explain(&e))?;
        if n == 0 {
            break;
        }
        drop_pages(&file, pos, n as u64);
        pos += n as u64;
        progress.read(n as u64);
    }
    let cached = cached(&file).map_err(|e| explain(&e))?;
    if cached < t.size {
        return Err(format!(
            "only {} of {} is on disk after reading it",
            format_size(cached),
            format_size(t.size)
        ));
    }
    Ok(cached)
}

/// The message for a pin the mount refused.
fn pin_error(t: &Target, e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) => NO_CACHE.into(),
        Some(libc::ENOSPC) => {
            let room = mount_of(&t.path)
                .and_then(|m| read_status(&m))
                .map(|s| {
                    format!(
                        "; {} of the cache's {} is pinned already",
                        format_size(s.pinned_bytes),
                        format_size(s.capacity)
                    )
                })
                .unwrap_or_default();
            format!(
                "not enough room in the disk cache to pin {} ({}){room}: unpin something or \
                 remount with a larger --cache-size (nothing was pinned)",
                t.path.display(),
                format_size(t.size)
            )
        }
        _ => format!("{}: {}", t.path.display(), explain(e)),
    }
}

/// What an errno means here.
fn explain(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOTTY) => "not inside an apsfs mount".into(),
        Some(libc::EOPNOTSUPP) => NO_CACHE.into(),
        _ => e.to_string(),
    }
}

fn open(path: &Path) -> Result<std::fs::File, String> {
    std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Sends one of apsfs's data-less ioctls; returns its result.
fn ioctl(file: &std::fs::File, cmd: u32) -> std::io::Result<i32> {
    // SAFETY: the descriptor is open for the call; the command carries no data, so the
    // argument is never dereferenced.
    let r = unsafe { libc::ioctl(file.as_raw_fd(), cmd as libc::Ioctl, 0) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Bytes of the open file on disk, as the mount reports them.
fn cached(file: &std::fs::File) -> std::io::Result<u64> {
    let fd = file.as_raw_fd();
    let name = c_name(XATTR_CACHED)?;
    // SAFETY: `name` is NUL-terminated and `buf`/`len` describe a writable buffer (or none).
    let raw = read_xattr(|buf, len| unsafe { libc::fgetxattr(fd, name.as_ptr(), buf, len) })?;
    String::from_utf8_lossy(&raw)
        .trim()
        .parse()
        .map_err(|_| std::io::Error::other("unexpected cached-bytes value"))
}

/// Asks the kernel to drop cached pages of `len` bytes at `offset` (0: to the end).
fn drop_pages(file: &std::fs::File, offset: u64, len: u64) {
    // SAFETY: plain advice on an open descriptor; failure only means pages stay cached.
    unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            offset as libc::off_t,
            len as libc::off_t,
            libc::POSIX_FADV_DONTNEED,
        );
    }
}

/// Progress of a pin run: a bar on a terminal, a plain line now and then otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    files: usize,
    done: usize,
    read: u64,
    total: u64,
    started: Instant,
    printed: Instant,
}

impl Progress {
    fn new(files: usize, done: usize, todo: &[(&Target, u64)]) -> Progress {
        let total = todo.iter().map(|(t, _)| t.size).sum();
        let bar = (std::io::stdout().is_terminal() && total > 0).then(|| {
            let style = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}, {eta} left",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
            indicatif::ProgressBar::with_draw_target(
                Some(total),
                indicatif::ProgressDrawTarget::stdout(),
            )
            .with_style(style)
        });
        let p = Progress {
            bar,
            files,
            done,
            read: 0,
            total,
            started: Instant::now(),
            printed: Instant::now(),
        };
        p.update();
        p
    }

    fn read(&mut self, n: u64) {
        self.read += n;
        match &self.bar {
            Some(bar) => bar.inc(n),
            None if self.printed.elapsed() >= PLAIN_PROGRESS_EVERY => {
                self.printed = Instant::now();
                let rate = self.read as f64 / self.started.elapsed().as_secs_f64().max(0.001);
                println!(
                    "pinning: {}/{} files, {} of {} read, {}/s",
                    self.done,
                    self.files,
                    format_size(self.read),
                    format_size(self.total),
                    format_size(rate as u64)
                );
            }
            None => {}
        }
    }

    fn file_done(&mut self) {
        self.done += 1;
        self.update();
    }

    fn update(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{}/{} files", self.done, self.files));
        }
    }

    fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
