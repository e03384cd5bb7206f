//! The `apsfs` executable Cargo built for these tests.

/// Path of the binary under test. The emulator, the mount and every other command are this one
/// executable, so every helper that starts a process starts it from here.
pub const APSFS: &str = env!("CARGO_BIN_EXE_apsfs");
