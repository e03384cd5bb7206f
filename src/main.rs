//! The `apsfs` command line. Only argument handling lives here; the work is in the library.

use apsfs::emulator::{self, faults::FaultConfig, generate, seed, store::Store};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Mount Autodesk Platform Services Data Management content as ordinary folders.
#[derive(Parser)]
#[command(name = "apsfs", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the local APS emulator (Authentication, Project, Data and OSS APIs).
    Emulator(EmulatorArgs),
}

/// Whether the documented per-minute limits are enforced.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum RateLimits {
    Documented,
    Off,
}

/// Data set served when neither `--seed-dir` nor `--generate` is given: small, but with every
/// awkward case real accounts have.
const DEFAULT_SPEC: &str = "seed=1,folders=6,items=40,versions=3,awkward";

#[derive(clap::Args)]
#[command(after_help = generate::SPEC_HELP)]
struct EmulatorArgs {
    /// Address to listen on; port 0 picks a free port. Loopback unless you ask otherwise.
    #[arg(long, default_value = "127.0.0.1:8585")]
    listen: SocketAddr,
    /// Serve DIR/<hub>/<project>/<top folder>/.../<file> (files are read on demand).
    #[arg(long, value_name = "DIR")]
    seed_dir: Option<PathBuf>,
    /// Serve a generated data set (syntax below). Without this or --seed-dir:
    /// "seed=1,folders=6,items=40,versions=3,awkward".
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
    /// Per-connection bandwidth cap for object bytes, MiB/s (0 = none).
    #[arg(long, default_value_t = 0.0)]
    bandwidth_mib: f64,
    /// Fraction of requests answered 500/503.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Fraction of requests answered 429 with Retry-After: 1.
    #[arg(long, default_value_t = 0.0)]
    throttle_rate: f64,
    /// Fraction of object byte bodies cut off mid-transfer.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
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
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let result = match cli.command {
        Command::Emulator(args) => run_emulator(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("apsfs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_emulator(args: EmulatorArgs) -> Result<(), String> {
    let faults = FaultConfig {
        latency_ms: args.latency_ms,
        bandwidth_mib: args.bandwidth_mib,
        error_rate: args.error_rate,
        throttle_rate: args.throttle_rate,
        drop_rate: args.drop_rate,
    };
    faults.validate()?;
    let mut store = Store::new();
    if let Some(dir) = &args.seed_dir {
        let sum = seed::seed_dir(&mut store, dir).map_err(|e| e.to_string())?;
        tracing::info!(?sum, dir = %dir.display(), "seeded from directory");
    }
    let spec = match (&args.generate, &args.seed_dir) {
        (Some(s), _) => Some(s.as_str()),
        (None, None) => Some(DEFAULT_SPEC),
        (None, Some(_)) => None,
    };
    if let Some(spec) = spec {
        let parsed = generate::GenSpec::parse(spec).map_err(|e| format!("--generate: {e}"))?;
        let started = std::time::Instant::now();
        generate::generate(&mut store, &parsed);
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
