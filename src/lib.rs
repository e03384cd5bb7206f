//! apsfs: Autodesk Platform Services Data Management content as a filesystem, and the
//! local APS emulator every test and demo runs against.

pub mod api;
pub mod cache;
pub mod credentials;
pub mod daemon;
pub mod emulator;
pub mod files;
pub mod fs;
pub mod login;
pub mod mount;
pub mod pin;
pub mod serve;
#[cfg(test)]
pub(crate) mod testing;
pub mod units;
