//! The APS emulator: a local HTTP server speaking the Authentication, Project, Data and OSS
//! wire formats of `shared/aps-api.md`, with fault injection and request counters, so every
//! test, benchmark and demo of apsfs runs without an Autodesk account.
//!
//! Layout: `store` holds the world, `seed`/`generate` fill it, `router` names each endpoint,
//! `server` runs the per-request pipeline (counters, faults, limits, auth), `handlers/*` answer,
//! `render` and `errors` spell the wire format, `segment` puts ids into URL paths.
//! It imports nothing of the client: it is the oracle the client is tested against.

pub mod auth;
pub mod clock;
pub mod content;
pub mod errors;
pub mod faults;
pub mod filter;
pub mod generate;
mod handlers;
pub mod ids;
pub mod paging;
pub mod ratelimit;
pub mod render;
pub mod request;
pub mod router;
pub mod seed;
mod segment;
pub mod server;
mod size;
pub mod stats;
pub mod store;

pub use server::{run, App, Config, Running};
