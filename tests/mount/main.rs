//! `apsfs` through real FUSE mounts of the emulator, and the commands around them (`mount`,
//! `unmount`, `login`, `pin`, `status`), one module per concern. Every test starts its own
//! emulator and mounts in temporary directories of its own, so tests running in parallel share
//! nothing but this code; every mount is unmounted when its test ends, pass or fail.

// Each test binary lists the support files it uses instead of the whole directory, so the
// compiler still reports any helper that no test in the binary uses.
#[path = "../support"]
mod support {
    pub mod binary;
    pub mod control;
    pub mod digest;
    pub mod dm;
    pub mod emulator;
    pub mod files;
    pub mod generated;
    pub mod http;
    pub mod mount;
    pub mod net;
    pub mod process;
    pub mod remote_changes;
    pub mod runtime;
    pub mod rw;
    pub mod saved;
    pub mod upload;
    pub mod walk;
    pub mod xattr;
}

mod awkward;
mod backup;
mod cli;
mod faults;
mod fstab;
mod hostile;
mod login;
mod metadata;
mod ownership;
mod pin;
mod process;
mod reads;
mod rename;
mod tree;
mod versions;
mod write;
