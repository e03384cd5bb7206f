//! A mount's life in the foreground: connect, mount, report ready, serve until a signal or an
//! external unmount, unmount cleanly.

use crate::api::auth::{client_scopes, login_command, Access, Credentials};
use crate::credentials::Store;
use crate::daemon::{report, ERROR_PREFIX, READY_PREFIX};
use crate::fs::{Fs, Scope};
use crate::mount::{
    check_mountpoint, connect, fs_config, mount, resolve_project, unmount, Connection,
};
use aps_emulator as emulator;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Credentials the embedded demo emulator is started with.
const DEMO_CLIENT: (&str, &str) = ("apsfs-demo", "apsfs-demo-secret");

/// What `apsfs mount` was asked for.
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// Where to mount.
    pub mountpoint: PathBuf,
    /// `HUB/PROJECT` to show alone.
    pub project: Option<String>,
    /// API base URL (ignored with `demo`).
    pub base_url: String,
    /// Client id and secret.
    pub client: Option<(String, String)>,
    /// A ready access token (`APS_TOKEN`).
    pub token: Option<String>,
    /// `x-user-id`.
    pub user_id: Option<String>,
    /// Listing time to live.
    pub ttl: Duration,
    /// How long one filesystem operation may wait for the service, retries included.
    pub op_timeout: Duration,
    /// Let other users see the mount.
    pub allow_other: bool,
    /// Owner and permission bits the mount shows, when given.
    pub owner: Owner,
    /// Have fusermount3 unmount if this process dies.
    pub auto_unmount: bool,
    /// Hold requests back to stay within the documented rate limits.
    pub rate_limits: bool,
    /// Bytes all read-ahead together may hold.
    pub prefetch_memory: u64,
    /// Entries all cached listings may hold together.
    pub max_entries: usize,
    /// Disk cache directory and size bound.
    pub cache: Option<(PathBuf, u64)>,
    /// Show the app's own OSS buckets of this region under `buckets/`.
    pub buckets: Option<String>,
    /// Serve the embedded emulator's demo data instead of a real account.
    pub demo: bool,
    /// Print the first line for a waiting parent, then detach stdout.
    pub detach_stdout: bool,
    /// Save changes back to the service (`--read-write`); `None` for a read-only mount.
    pub read_write: Option<ReadWrite>,
}

/// How a read-write mount sends its changes.
#[derive(Clone, Debug)]
pub struct ReadWrite {
    /// Seconds a folder stays unchanged before its changes are sent.
    pub quiet: Duration,
    /// Extra names that stay local (`--ignore GLOB`).
    pub ignore: Vec<String>,
    /// How long an unmount waits for pending changes before leaving them for the next mount.
    pub unmount_wait: Duration,
    /// Whether removing what the service has removes it there (`--allow-delete`).
    pub allow_delete: bool,
}

/// The owner and permission bits a mount shows (`--uid`, `--gid`, `--file-mode`,
/// `--dir-mode`); what is not given is the mounting user's, and the default modes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Owner {
    /// Owner of every inode.
    pub uid: Option<u32>,
    /// Group of every inode.
    pub gid: Option<u32>,
    /// Permission bits.
    pub modes: crate::fs::attr::Modes,
}

/// Where a read-write mount keeps its staging area when no `--cache-dir` is given:
/// `$XDG_CACHE_HOME/apsfs`, else `~/.cache/apsfs`.
pub fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("apsfs"))
}

/// The directory of a read-write mount's journal and staging files inside `cache`: one per
/// service, account and scope, so a later mount of the same account and project finds what an
/// earlier one left, and another account's never mixes in.
fn write_dir(cache: &std::path::Path, opts: &MountOptions, who: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let key = format!(
        "{}\n{who}\n{}",
        opts.base_url,
        opts.project.as_deref().unwrap_or("")
    );
    let hash: String = Sha256::digest(key.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    cache.join("writes").join(hash)
}

/// The scopes a 2-legged token is asked for: reads (and writes for a read-write mount), and
/// bucket listing when buckets are shown.
fn scope_for(opts: &MountOptions) -> String {
    let access = match opts.read_write {
        Some(_) => Access::ReadWrite,
        None => Access::Read,
    };
    client_scopes(access, opts.buckets.is_some())
}

/// Runs a mount until it is unmounted or the process is told to stop.
pub fn run(opts: MountOptions) -> Result<(), String> {
    crate::stats::start();
    let fail = |msg: String| {
        report(&format!("{ERROR_PREFIX}{msg}"), opts.detach_stdout);
        msg
    };
    let mountpoint = check_mountpoint(&opts.mountpoint).map_err(fail)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("apsfs")
        .build()
        .map_err(|e| fail(format!("cannot start the runtime: {e}")))?;
    let started = rt.block_on(start(&opts));
    let (fs, demo) = started.map_err(fail)?;
    let session = mount(
        fs.clone(),
        rt.handle().clone(),
        &mountpoint,
        opts.allow_other,
        opts.auto_unmount,
        opts.op_timeout,
    )
    .map_err(fail)?;
    tracing::info!(mountpoint = %mountpoint.display(), writable = fs.writable(), "mounted");
    {
        let _in_runtime = rt.enter();
        fs.start_writes();
    }
    raise_kernel_readahead(&mountpoint);
    report(
        &format!("{READY_PREFIX}{}", mountpoint.display()),
        opts.detach_stdout,
    );

    let signalled = rt.block_on(wait(&session));
    if signalled {
        tracing::info!("signal received; unmounting");
        if let Err(e) = session.umount_and_join() {
            tracing::warn!(error = %e, "clean unmount failed; detaching the mount");
            unmount(&mountpoint, true).map_err(|e| e.to_string())?;
        }
    } else {
        tracing::info!("unmounted externally");
        let _ = session.join();
    }
    if let Some(rw) = &opts.read_write {
        finish_writes(&rt, &fs, rw.unmount_wait);
    }
    if let Some(d) = demo {
        let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(2), d.stop()).await });
    }
    Ok(())
}

/// Sends what is still pending before the process ends, waiting at most `limit`; what is
/// left stays in the journal for the next mount, and the log says what.
fn finish_writes<R: crate::api::Remote>(rt: &tokio::runtime::Runtime, fs: &Fs<R>, limit: Duration) {
    let pending = fs.queue().iter().filter(|q| q.waits()).count();
    if pending == 0 {
        return;
    }
    tracing::info!(pending, wait = ?limit, "unmounted with changes still to send; sending them");
    let left = rt.block_on(fs.sync(None, true, limit));
    let left: Vec<_> = left.into_iter().filter(|q| q.waits()).collect();
    if left.is_empty() {
        tracing::info!("every change was sent");
    } else {
        for q in &left {
            tracing::warn!(name = %q.name, state = %q.state, "not sent yet; the next mount of this account and project sends it");
        }
        tracing::warn!(left = left.len(), "changes left for the next mount");
    }
}

async fn start(
    opts: &MountOptions,
) -> Result<(Arc<Fs<crate::api::ApsClient>>, Option<emulator::Running>), String> {
    let (conn, demo) = if opts.demo {
        let mut store = emulator::Store::new();
        let spec = emulator::GenSpec::parse(emulator::DEMO_SPEC)?;
        emulator::generate(&mut store, &spec);
        let config = emulator::Config {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            client: Some((DEMO_CLIENT.0.into(), DEMO_CLIENT.1.into())),
            ..emulator::Config::default()
        };
        let running = emulator::run(config, store)
            .await
            .map_err(|e| format!("cannot start the demo emulator: {e}"))?;
        tracing::info!(base_url = %running.base_url(), "demo emulator started");
        let conn = Connection {
            base_url: running.base_url(),
            credentials: Credentials::Client {
                id: DEMO_CLIENT.0.into(),
                secret: DEMO_CLIENT.1.into(),
                scope: scope_for(opts),
            },
            user_id: None,
            rate_limits: opts.rate_limits,
        };
        (conn, Some(running))
    } else {
        let credentials = match (&opts.token, &opts.client) {
            (Some(t), _) => Credentials::Token(t.clone()),
            (None, Some((id, secret))) => Credentials::Client {
                id: id.clone(),
                secret: secret.clone(),
                scope: scope_for(opts),
            },
            (None, None) => stored_login(&opts.base_url)?,
        };
        let conn = Connection {
            base_url: opts.base_url.clone(),
            credentials,
            user_id: opts.user_id.clone(),
            rate_limits: opts.rate_limits,
        };
        (conn, None)
    };
    let client = connect(&conn).await?;
    let scope = match &opts.project {
        Some(spec) => resolve_project(&*client, spec).await?,
        None => Scope::All,
    };
    let disk = match &opts.cache {
        Some((dir, size)) => Some(Arc::new(
            crate::cache::disk::DiskCache::open(dir, *size)
                .map_err(|e| format!("cannot use cache directory {}: {e}", dir.display()))?,
        )),
        None => None,
    };
    let mut config = fs_config(opts.ttl, opts.prefetch_memory, disk, opts.max_entries);
    config.uid = opts.owner.uid.unwrap_or(config.uid);
    config.gid = opts.owner.gid.unwrap_or(config.gid);
    config.modes = opts.owner.modes;
    config.buckets = opts.buckets.clone();
    config.user_id = opts.user_id.clone();
    let Some(rw) = &opts.read_write else {
        return Ok((Arc::new(Fs::new(client, scope, config)), demo));
    };
    let cache = config
        .disk
        .as_ref()
        .map(|d| d.dir().to_path_buf())
        .ok_or("a read-write mount needs a cache directory (--cache-dir)")?;
    if let Credentials::User { login, .. } = &conn.credentials {
        let granted: Vec<&str> = login.scopes.split_whitespace().collect();
        if !["data:write", "data:create"]
            .iter()
            .all(|s| granted.contains(s))
        {
            return Err(format!(
                "a read-write mount needs the data:write and data:create scopes, and the stored \
                 login has only \"{}\": log in again with `{} --scopes \"data:read data:write \
                 data:create user-profile:read\"`",
                login.scopes,
                login_command(&opts.base_url)
            ));
        }
    }
    let who = match &conn.credentials {
        Credentials::Client { id, .. } => format!("app {id}"),
        Credentials::User { login, .. } => format!("user login of {}", login.client_id),
        Credentials::Token(_) => "a given token".to_string(),
    };
    let write = crate::fs::WriteConfig {
        dir: write_dir(&cache, opts, &who),
        quiet: rw.quiet,
        max_delay: rw.quiet.max(Duration::from_secs(60)),
        ignore: rw.ignore.clone(),
        user_id: opts.user_id.clone(),
        allow_delete: rw.allow_delete,
    };
    tracing::info!(dir = %write.dir.display(), "changes are staged here before they are sent");
    let fs = Fs::writable_with(client, scope, config, write)?;
    Ok((Arc::new(fs), demo))
}

/// The login `apsfs login` stored for `base`, or why there are no credentials at all.
fn stored_login(base: &str) -> Result<Credentials, String> {
    let none = || {
        format!(
            "no credentials: run `{}` to log in as a user, or give --client-id and \
             --client-secret (or APS_CLIENT_ID and APS_CLIENT_SECRET), or a ready token in \
             APS_TOKEN",
            login_command(base)
        )
    };
    let Ok(store) = Store::user() else {
        return Err(none());
    };
    match store.load(base)? {
        Some(login) => {
            tracing::info!(base, "using the stored login (apsfs login)");
            Ok(Credentials::User { store, login })
        }
        None => Err(none()),
    }
}

/// Kernel read-ahead of the mount's device, in KiB: with the kernel's default of 128 every
/// sequential read request is 128 KiB; 1 MiB requests quarter the per-request overhead.
const KERNEL_READAHEAD_KB: u32 = 1024;

/// Raises the mount's kernel read-ahead (best effort: needs root, and the FUSE device's
/// `max_pages` still caps each request).
fn raise_kernel_readahead(mountpoint: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(mountpoint) else {
        return;
    };
    let dev = meta.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let path = format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb");
    match std::fs::write(&path, KERNEL_READAHEAD_KB.to_string()) {
        Ok(()) => tracing::debug!(path, "raised kernel read-ahead"),
        Err(e) => tracing::debug!(path, error = %e, "cannot raise kernel read-ahead"),
    }
}

/// Waits for SIGINT/SIGTERM (true) or for the session to end by an external unmount (false).
async fn wait(session: &fuser::BackgroundSession) -> bool {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; serving until unmounted");
        while !session.guard.is_finished() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        return false;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return true,
            _ = int.recv() => return true,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                if session.guard.is_finished() {
                    return false;
                }
            }
        }
    }
}
