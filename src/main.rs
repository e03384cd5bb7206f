//! The `apsfs` command line. Only argument handling lives here; the work is in the library.

use aps_emulator::{self as emulator, FaultConfig, GenSpec, Store};
use apsfs::api::auth::APS_BASE_URL;
use apsfs::login::{self, LoginOptions};
use apsfs::serve::MountOptions;
use apsfs::{daemon, mount};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

mod cli_docs;

/// Mount Autodesk Platform Services Data Management content as ordinary folders.
#[derive(Parser)]
#[command(name = "apsfs", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log level: error, warn, info, debug or trace, or a filter directive as RUST_LOG takes
    /// (e.g. "apsfs=debug,info"). Wins over RUST_LOG; without either: info.
    #[arg(long, global = true, value_name = "LEVEL", value_parser = cli_docs::parse_log_level)]
    log_level: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Mount hubs, projects, folders and files at MOUNTPOINT (read-only unless --read-write).
    Mount(MountArgs),
    /// Unmount a mount made by `apsfs mount`.
    Unmount(UnmountArgs),
    /// Log in as a user in the browser (3-legged OAuth with PKCE); `apsfs mount` then uses it.
    Login(LoginArgs),
    /// Show the user the stored login belongs to.
    Whoami(BaseUrlArg),
    /// Revoke and forget the stored login.
    Logout(BaseUrlArg),
    /// Run the local APS emulator (Authentication, Project, Data and OSS APIs).
    Emulator(EmulatorArgs),
    /// Keep files on this device: download them into their mount's disk cache, which then never
    /// evicts them (folders: every file in them now). Run it again to resume or to catch up.
    Pin(PinArgs),
    /// Let pinned files be evicted from the disk cache again.
    Unpin(PinArgs),
    /// Show the disk cache, the pinned files and the changes still to send of a mount
    /// (default: of every apsfs mount).
    Status(StatusArgs),
    /// Send a read-write mount's pending changes now, without waiting for the quiet period.
    Sync(SyncArgs),
    /// Print the shell completion script for SHELL on stdout.
    Completions(CompletionsArgs),
    /// Print the man page of apsfs (or of one subcommand) on stdout, or write every page to a
    /// directory.
    Man(ManArgs),
}

#[derive(clap::Args)]
struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(clap::Args)]
struct ManArgs {
    /// Print the page of this subcommand (apsfs-SUBCOMMAND(1)) instead of apsfs(1).
    #[arg(value_name = "SUBCOMMAND", conflicts_with = "dir")]
    subcommand: Option<String>,
    /// Write every page (apsfs.1 and apsfs-SUBCOMMAND.1) into DIR instead, naming each file
    /// written.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct SyncArgs {
    /// Files or folders inside read-write apsfs mounts (default: every mount, all changes).
    paths: Vec<PathBuf>,
    /// Wait until the changes are sent (or --timeout passes; then exit non-zero).
    #[arg(long)]
    wait: bool,
    /// Seconds `--wait` waits at most.
    #[arg(long, default_value_t = 600, value_name = "SECS", requires = "wait")]
    timeout: u64,
}

#[derive(clap::Args)]
struct PinArgs {
    /// Files or folders inside an apsfs mount made with --cache-dir.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct StatusArgs {
    /// An apsfs mountpoint.
    mountpoint: Option<PathBuf>,
    /// Print one JSON object per mount (its cache and pins, requests since it started, and a
    /// read-write mount's queue), one per line, for scripts.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct MountArgs {
    /// An existing, empty directory.
    mountpoint: PathBuf,
    /// Show only this project, as "HUB/PROJECT" (names or ids); its top folders appear at
    /// MOUNTPOINT.
    #[arg(long, value_name = "HUB/PROJECT")]
    project: Option<String>,
    /// Stay in the foreground (log to stderr) instead of detaching once mounted.
    #[arg(long)]
    foreground: bool,
    /// APS base URL.
    #[arg(long, env = "APS_BASE_URL", default_value = APS_BASE_URL)]
    base_url: String,
    /// App client id (2-legged client credentials).
    #[arg(long, env = "APS_CLIENT_ID", requires = "client_secret")]
    client_id: Option<String>,
    /// App client secret; prefer the environment variable, since arguments are visible to
    /// other users in `ps`.
    #[arg(
        long,
        env = "APS_CLIENT_SECRET",
        hide_env_values = true,
        requires = "client_id"
    )]
    client_secret: Option<String>,
    /// Act on behalf of this user (`x-user-id`, 2-legged BIM 360/ACC apps).
    #[arg(long, env = "APS_USER_ID")]
    user_id: Option<String>,
    /// Seconds a folder listing (and what it says of its files) is trusted before it is
    /// fetched again.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    metadata_ttl: u64,
    /// Seconds one filesystem operation may wait for the service, every retry, token fetch
    /// and Retry-After included, before it fails with "Connection timed out" (ETIMEDOUT).
    #[arg(long, default_value_t = 60, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    op_timeout: u64,
    /// Let other users access the mount (needs user_allow_other in /etc/fuse.conf unless root).
    #[arg(long)]
    allow_other: bool,
    /// Owner every file and directory shows (default: the mounting user); with --allow-other
    /// the kernel checks other users against it and the modes.
    #[arg(long, value_name = "UID")]
    uid: Option<u32>,
    /// Group every file and directory shows (default: the mounting user's).
    #[arg(long, value_name = "GID")]
    gid: Option<u32>,
    /// Permission bits of every file, in octal (default 0444; 0644 on a read-write mount).
    /// Write bits are dropped where nothing may be written.
    #[arg(long, value_name = "MODE", value_parser = octal_mode)]
    file_mode: Option<u16>,
    /// Permission bits of every directory, in octal (default 0555; 0755 on a read-write mount).
    #[arg(long, value_name = "MODE", value_parser = octal_mode)]
    dir_mode: Option<u16>,
    /// Unmount automatically if the mount process dies, even by SIGKILL (needs fusermount3).
    #[arg(long)]
    auto_unmount: bool,
    /// Hold requests back so each endpoint stays within its documented per-app limit per
    /// minute (`off` when the app's limits were raised).
    #[arg(long, value_enum, default_value = "documented")]
    rate_limits: RateLimits,
    /// Directory entries all cached listings may hold together; beyond it the least recently
    /// used listings (and the inodes only they named) are dropped and fetched again on demand.
    #[arg(long, default_value_t = apsfs::cache::metadata::DEFAULT_MAX_ENTRIES, value_name = "N")]
    max_cached_entries: usize,
    /// Memory all read-ahead together may hold (e.g. 512MiB); read-ahead waits rather than
    /// growing past it.
    #[arg(long, default_value = "512MiB", value_parser = apsfs::units::size_arg, value_name = "SIZE")]
    max_prefetch_memory: u64,
    /// Keep file bytes in this directory, keyed by version, so a re-read (even after a remount)
    /// downloads nothing.
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Size bound of the disk cache (least recently used blocks are evicted).
    #[arg(long, default_value = "10GiB", value_parser = apsfs::units::size_arg, value_name = "SIZE", requires = "cache_dir")]
    cache_size: u64,
    /// Also show the app's own OSS buckets as MOUNTPOINT/buckets/<bucketKey>/<objectKey> (a `/`
    /// in a key makes folders); needs the `bucket:read` scope.
    #[arg(long)]
    buckets: bool,
    /// Region whose buckets `--buckets` shows (US, EMEA, AUS, CAN, DEU, IND, JPN, GBR).
    #[arg(
        long,
        default_value = "US",
        value_name = "REGION",
        requires = "buckets"
    )]
    bucket_region: String,
    /// Mount the embedded emulator's demo data set; no account needed (credentials given are
    /// not used).
    #[arg(long)]
    demo: bool,
    /// Log file of a background mount (default: under $XDG_STATE_HOME/apsfs, mode 0600).
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// Save changes back: a save becomes a new version of its item, a new file a new item, a
    /// new directory a folder. Changes are staged under the cache directory first (default
    /// $XDG_CACHE_HOME/apsfs) and sent per folder once it has been quiet for a while.
    #[arg(long)]
    read_write: bool,
    /// Seconds a folder must stay unchanged before its changes are sent (read-write mounts).
    #[arg(
        long,
        default_value_t = 3,
        value_name = "SECS",
        requires = "read_write"
    )]
    quiet_period: u64,
    /// Another name pattern that stays on this machine (never uploaded), on top of the
    /// built-in list of lock, temp and backup files; `NAME/` matches directories. Repeatable.
    #[arg(long, value_name = "GLOB", requires = "read_write")]
    ignore: Vec<String>,
    /// Seconds an unmount waits for changes still being sent; what is left is sent by the next
    /// mount of the same account and project.
    #[arg(
        long,
        default_value_t = 60,
        value_name = "SECS",
        requires = "read_write"
    )]
    unmount_wait: u64,
    /// Let `rm`, `rmdir` and moves over another file remove what the service has (BIM 360 and
    /// ACC: a delete tombstone, a hidden folder; both stay restorable there). Without it they
    /// answer "operation not permitted" and send nothing.
    #[arg(long, requires = "read_write")]
    allow_delete: bool,
}

#[derive(clap::Args)]
struct LoginArgs {
    /// The APS app's client id; its registered callback URL must be
    /// http://127.0.0.1:PORT/callback.
    #[arg(long, env = "APS_CLIENT_ID")]
    client_id: String,
    /// The app's secret, for confidential apps only (public PKCE apps have none); prefer the
    /// environment variable. It is kept with the login, since refreshing needs it too.
    #[arg(long, env = "APS_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Space-separated scopes to ask for.
    #[arg(long, default_value = apsfs::login::DEFAULT_SCOPES)]
    scopes: String,
    #[command(flatten)]
    base: BaseUrlArg,
    /// Port of the loopback callback (0: any free port); use the port of the callback URL
    /// registered for the app.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Do not try to open a browser; only print the URL.
    #[arg(long)]
    no_browser: bool,
    /// Seconds to wait for the browser to come back.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    timeout: u64,
}

#[derive(clap::Args)]
struct BaseUrlArg {
    /// APS base URL; each base URL has its own login.
    #[arg(long, env = "APS_BASE_URL", default_value = APS_BASE_URL)]
    base_url: String,
}

#[derive(clap::Args)]
struct UnmountArgs {
    /// The mountpoint.
    mountpoint: PathBuf,
    /// Detach now even if files are open (the mount goes once they are closed).
    #[arg(long)]
    lazy: bool,
}

/// Whether the documented per-minute limits are enforced.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum RateLimits {
    Documented,
    Off,
}

#[derive(clap::Args)]
#[command(after_help = emulator::SPEC_HELP)]
struct EmulatorArgs {
    /// Address to listen on; port 0 picks a free port. Loopback unless you ask otherwise.
    #[arg(long, default_value = "127.0.0.1:8585")]
    listen: SocketAddr,
    /// Serve DIR/<hub>/<project>/<top folder>/.../<file> (files are read on demand).
    #[arg(long, value_name = "DIR")]
    seed_dir: Option<PathBuf>,
    /// Seed the hub directory NAME of --seed-dir as a Fusion Team hub (a.<id> ids,
    /// autodesk.core types, item/version PATCH, no tombstones) instead of BIM 360; repeatable.
    #[arg(long = "team-hub", value_name = "NAME", requires = "seed_dir")]
    team_hub: Vec<String>,
    /// Serve a generated data set (syntax below). Without this or --seed-dir:
    /// "seed=1,folders=6,items=40,versions=3,awkward,docs".
    #[arg(long, value_name = "SPEC")]
    generate: Option<String>,
    /// Accept only this client id (default: any non-empty id/secret pair).
    #[arg(long, requires = "client_secret")]
    client_id: Option<String>,
    /// The secret belonging to --client-id.
    #[arg(long, requires = "client_id", hide_env_values = true)]
    client_secret: Option<String>,
    /// Milliseconds added to every request.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Per-connection bandwidth cap on object bytes (downloads and part uploads), MiB/s (0 = none).
    #[arg(long, default_value_t = 0.0)]
    bandwidth_mib: f64,
    /// Fraction of requests answered 500/503.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Fraction of requests answered 429 with Retry-After: 1.
    #[arg(long, default_value_t = 0.0)]
    throttle_rate: f64,
    /// Fraction of object byte bodies cut off mid-transfer (and of upload parts lost, and of
    /// write answers cut).
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Fraction of object byte bodies that stall half-way (nothing more for two minutes).
    #[arg(long, default_value_t = 0.0)]
    stall_rate: f64,
    /// Cap on the lifetime of signed download and upload URLs, seconds (0 = as asked), so URLs
    /// expire in the middle of a file.
    #[arg(long, default_value_t = 0)]
    url_ttl: u64,
    /// Answer batchsigneds3download with 403, so clients fall back to single signed downloads.
    #[arg(long)]
    refuse_batch: bool,
    /// Lifetime of access tokens in seconds (expires_in).
    #[arg(long, default_value_t = 3599)]
    token_ttl: u64,
    /// Enforce the documented per-app, per-endpoint limits (requests per minute).
    #[arg(long, value_enum, default_value = "off")]
    rate_limits: RateLimits,
    /// Invalidate a refresh token as soon as it has been used once.
    #[arg(long)]
    single_use_refresh: bool,
}

fn main() -> ExitCode {
    let cli = match fstab_form() {
        Ok(Some(args)) => Cli::parse_from(args),
        Ok(None) => Cli::parse(),
        Err(e) => {
            eprintln!("apsfs: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(cli_docs::log_filter(cli.log_level.as_deref()))
        .init();
    let result = match cli.command {
        Command::Mount(args) => run_mount(args),
        Command::Unmount(args) => {
            // A read-write mount sends what is still pending before its process ends: say so.
            if let Some(q) = apsfs::queue::read(&args.mountpoint).filter(|q| q.pending > 0) {
                eprintln!(
                    "{} change(s) still to send: the mount process sends them before it exits \
                     (up to its --unmount-wait); what is left then is sent by the next mount of \
                     the same account and project",
                    q.pending
                );
            }
            mount::unmount(&args.mountpoint, args.lazy)
        }
        Command::Login(args) => login::login(&LoginOptions {
            base_url: args.base.base_url,
            client_id: args.client_id,
            client_secret: args.client_secret.filter(|s| !s.is_empty()),
            scopes: args.scopes,
            port: args.port,
            open_browser: !args.no_browser,
            timeout: std::time::Duration::from_secs(args.timeout),
        }),
        Command::Whoami(args) => login::account::whoami(&args.base_url),
        Command::Logout(args) => login::account::logout(&args.base_url),
        Command::Emulator(args) => run_emulator(args),
        Command::Pin(args) => apsfs::pin::pin(&args.paths),
        Command::Unpin(args) => apsfs::pin::unpin(&args.paths),
        Command::Status(args) => apsfs::pin::status(args.mountpoint.as_deref(), args.json),
        Command::Sync(args) => apsfs::queue::sync(
            &args.paths,
            args.wait,
            std::time::Duration::from_secs(args.timeout),
        ),
        Command::Completions(args) => cli_docs::completions(args.shell, Cli::command()),
        Command::Man(args) => cli_docs::man(
            Cli::command(),
            args.subcommand.as_deref(),
            args.dir.as_deref(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("apsfs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Large buffers (read-ahead parts) are returned to the system as soon as they are freed, so the
/// mount's resident memory follows the read-ahead budget instead of the allocator's high-water
/// mark (glibc otherwise raises its mmap threshold and keeps freed parts on its heaps).
fn return_large_buffers_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

fn run_mount(args: MountArgs) -> Result<(), String> {
    if !args.foreground {
        mount::clean_stale(&args.mountpoint)?;
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
        let log = match &args.log_file {
            Some(l) => l.clone(),
            None => daemon::default_log_path(&args.mountpoint),
        };
        let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
        let line = daemon::spawn_background(&exe, &argv, &log)?;
        println!("{line} (log: {})", log.display());
        return Ok(());
    }
    return_large_buffers_to_the_system();
    let token = std::env::var("APS_TOKEN").ok().filter(|t| !t.is_empty());
    apsfs::serve::run(MountOptions {
        mountpoint: args.mountpoint,
        project: args.project,
        base_url: args.base_url,
        client: args.client_id.zip(args.client_secret),
        token,
        user_id: args.user_id,
        ttl: std::time::Duration::from_secs(args.metadata_ttl),
        op_timeout: std::time::Duration::from_secs(args.op_timeout),
        allow_other: args.allow_other,
        owner: apsfs::serve::Owner {
            uid: args.uid,
            gid: args.gid,
            modes: apsfs::fs::attr::Modes {
                file: args.file_mode,
                dir: args.dir_mode,
            },
        },
        auto_unmount: args.auto_unmount,
        rate_limits: args.rate_limits == RateLimits::Documented,
        prefetch_memory: args.max_prefetch_memory,
        max_entries: args.max_cached_entries,
        cache: args
            .cache_dir
            .or_else(|| {
                args.read_write
                    .then(apsfs::serve::default_cache_dir)
                    .flatten()
            })
            .map(|d| (d, args.cache_size)),
        buckets: args.buckets.then_some(args.bucket_region),
        demo: args.demo,
        detach_stdout: !std::io::stdout().is_terminal(),
        read_write: args.read_write.then(|| apsfs::serve::ReadWrite {
            quiet: std::time::Duration::from_secs(args.quiet_period),
            ignore: args.ignore,
            unmount_wait: std::time::Duration::from_secs(args.unmount_wait),
            allow_delete: args.allow_delete,
        }),
    })
}

/// The command line in the ordinary form when it came in `mount.fuse3`'s (`apsfs SOURCE
/// MOUNTPOINT -o OPTIONS`, see `apsfs::fstab`), the credentials file's variables set.
fn fstab_form() -> Result<Option<Vec<std::ffi::OsString>>, String> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let subcommands: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    let Some((args, env)) = apsfs::fstab::translate(&args, &subcommands)? else {
        return Ok(None);
    };
    for (k, v) in env {
        // Before any thread starts: the only way to hand a secret to the parsing below
        // without putting it on the command line, where every user could read it.
        std::env::set_var(k, v);
    }
    Ok(Some(args))
}

/// Permission bits given in octal (`0644`, `644`, `0o644`), at most `07777`.
fn octal_mode(s: &str) -> Result<u16, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    u16::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{s:?} is not an octal mode such as 0644"))
}

fn run_emulator(args: EmulatorArgs) -> Result<(), String> {
    let faults = FaultConfig {
        latency_ms: args.latency_ms,
        bandwidth_mib: args.bandwidth_mib,
        error_rate: args.error_rate,
        throttle_rate: args.throttle_rate,
        drop_rate: args.drop_rate,
        url_ttl_secs: args.url_ttl,
        stall_rate: args.stall_rate,
        refuse_batch: args.refuse_batch,
        ..FaultConfig::default()
    };
    faults.validate()?;
    let mut store = Store::new();
    if let Some(dir) = &args.seed_dir {
        let options = emulator::SeedOptions {
            team_hubs: args.team_hub.clone(),
        };
        let sum = emulator::seed_dir_with(&mut store, dir, &options).map_err(|e| e.to_string())?;
        tracing::info!(?sum, dir = %dir.display(), "seeded from directory");
    }
    let spec = match (&args.generate, &args.seed_dir) {
        (Some(s), _) => Some(s.as_str()),
        (None, None) => Some(emulator::DEMO_SPEC),
        (None, Some(_)) => None,
    };
    if let Some(spec) = spec {
        let parsed = GenSpec::parse(spec).map_err(|e| format!("--generate: {e}"))?;
        let started = std::time::Instant::now();
        emulator::generate(&mut store, &parsed);
        tracing::info!(
            spec,
            items = store.item_count(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "generated data set"
        );
    }
    if !args.listen.ip().is_loopback() {
        tracing::warn!(listen = %args.listen, "listening on a non-loopback address as asked: anyone who can reach it can read the data");
    }
    let config = emulator::Config {
        listen: args.listen,
        client: args.client_id.zip(args.client_secret),
        token_ttl: args.token_ttl,
        rate_limits: args.rate_limits == RateLimits::Documented,
        faults,
        single_use_refresh: args.single_use_refresh,
    };
    let rt =
        tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async move {
        let running = emulator::run(config, store)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on {}", running.base_url()).map_err(|e| e.to_string())?;
            out.flush().map_err(|e| e.to_string())?;
        }
        shutdown_signal().await?;
        tracing::info!("shutting down");
        // In-flight downloads may be long (or throttled); do not let them hold the exit.
        match tokio::time::timeout(std::time::Duration::from_secs(2), running.stop()).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Ok(()),
        }
    })
}

async fn shutdown_signal() -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
