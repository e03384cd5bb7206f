//! An async runtime for the synchronous mount tests.

/// A runtime for the mount tests' calls to the emulator's HTTP API. The tests themselves are
/// synchronous (they use the mount through blocking file calls), so they drive the async
/// helpers with `block_on`.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("tokio runtime")
}
