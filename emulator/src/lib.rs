//! The APS emulator: a local HTTP server speaking the Authentication, Project, Data and OSS
//! wire formats of `shared/aps-api.md`, with fault injection and request counters, so every
//! test, benchmark and demo of apsfs runs without an Autodesk account.
//!
//! It is a crate of its own, importing nothing of apsfs, because it is the oracle the client is
//! tested against: had the two shared code (say, how an id is put in a URL), a mistake there
//! would pass every test and fail against the real service.
//!
//! Layout: `store` holds the world, `seed`/`generate` fill it, `router` names each endpoint,
//! `server` runs the per-request pipeline (counters, faults, limits, auth), `handlers/*` answer,
//! `render` and `errors` spell the wire format, `segment` puts ids into URL paths.
//!
//! The public surface is what it takes to run one: build a [`Store`] (from a seed directory or
//! a [`GenSpec`]), [`run`] it with a [`Config`], and steer or read the [`Running`] server.
//! Everything else a test needs goes through HTTP (`/__emulator/*`), except the expected bytes
//! of generated objects in [`testing`].

mod app;
mod auth;
mod clock;
mod content;
mod docs;
mod errors;
mod faults;
mod filter;
mod generate;
mod handlers;
mod hostile;
mod ids;
mod paging;
mod ratelimit;
mod render;
mod request;
mod router;
mod seed;
mod segment;
mod server;
mod size;
mod stats;
mod store;
pub mod testing;

/// Fault knobs (latency, bandwidth, error, throttle, drop and stall rates, URL lifetime, the
/// hostile-server knobs and faults aimed at one route), set at start in [`Config`] or later with
/// [`Running::set_faults`].
pub use faults::FaultConfig;
/// The values of [`FaultConfig::redirect`], so an in-process test can name them.
pub use faults::Redirect;
/// One entry of [`FaultConfig::route_faults`], so an in-process test can aim a fault at a route.
pub use faults::RouteFault;
/// Deterministic data sets: `--generate SPEC`, parsed by [`GenSpec::parse`] and loaded into a
/// store by [`generate`]; [`DEMO_SPEC`] is the default set, [`SPEC_HELP`] its syntax for `--help`.
pub use generate::{generate, GenSpec, DEMO_SPEC, SPEC_HELP};
/// Loading a store from `DIR/<hub>/<project>/<top folder>/...`, for `--seed-dir` (and
/// `--team-hub NAME` through [`seed_dir_with`] and [`SeedOptions`]).
pub use seed::{seed_dir, seed_dir_with, SeedError, SeedOptions, SeedSummary};
/// Starting a server: its settings, the start call, and the handle to steer and stop it.
pub use server::{run, Config, Running};
/// The world the emulator serves; built empty and filled by [`seed_dir`] and [`generate`].
pub use store::Store;
