//! The emulator over real HTTP, one module per part of the API it emulates. Every test starts
//! an emulator process of its own, so tests running in parallel share nothing but this code.

// Each test binary lists the support files it uses instead of the whole directory, so the
// compiler still reports any helper that no test in the binary uses.
#[path = "../support"]
mod support {
    pub mod api;
    pub mod binary;
    pub mod control;
    pub mod digest;
    pub mod dm;
    pub mod emulator;
    pub mod files;
    pub mod generated;
    pub mod http;
    pub mod oss;
    pub mod rss;
    pub mod seed;
    pub mod shapes;
    pub mod upload;
    pub mod write;
}

mod auth;
mod batch;
mod bytes;
mod docs;
mod faults;
mod hostile;
mod navigation;
mod oss;
mod scale;
mod write;
mod write_access;
mod write_faults;
mod write_patch;
mod write_rules;
mod write_upload;
