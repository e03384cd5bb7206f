//! Doubles of the `Remote` seam for unit tests: an in-memory account that changes the way the
//! service does, and a wrapper that makes any remote fail on purpose. The filesystem logic is
//! then tested in process, in milliseconds, without a server or a mount.

pub mod faulty;
pub mod memory;
pub mod op;

pub use memory::MemoryRemote;
pub use op::Op;
