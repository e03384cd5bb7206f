//! A mount's life in the foreground: connect, mount, report ready, serve until a signal or an
//! external unmount, unmount cleanly.

use crate::api::auth::{login_command, Credentials, BUCKET_SCOPE, READ_SCOPE};
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
}

/// The scopes a 2-legged token is asked for: reads, and bucket listing when buckets are shown.
fn scope_for(opts: &MountOptions) -> String {
    match opts.buckets {
        Some(_) => format!("{READ_SCOPE} {BUCKET_SCOPE}"),
        None => READ_SCOPE.to_string(),
    }
}

/// Runs a mount until it is unmounted or the process is told to stop.
pub fn run(opts: MountOptions) -> Result<(), String> {
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
        fs,
        rt.handle().clone(),
        &mountpoint,
        opts.allow_other,
        opts.auto_unmount,
        opts.op_timeout,
    )
    .map_err(fail)?;
    tracing::info!(mountpoint = %mountpoint.display(), "mounted");
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
    if let Some(d) = demo {
        let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(2), d.stop()).await });
    }
    Ok(())
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
    config.buckets = opts.buckets.clone();
    Ok((Arc::new(Fs::new(client, scope, config)), demo))
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
