//! apsfs: Autodesk Platform Services Data Management content as a filesystem. The local APS
//! emulator every test and demo runs against is the separate `aps-emulator` crate.

pub mod api;
pub mod ask;
pub mod cache;
pub mod credentials;
pub mod daemon;
pub mod deadline;
pub mod files;
pub mod fs;
pub mod fstab;
pub mod login;
pub mod mount;
pub mod pin;
pub mod queue;
pub mod serve;
pub mod single_flight;
pub mod stats;
#[cfg(test)]
pub(crate) mod testing;
pub mod units;
