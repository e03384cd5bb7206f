//! Caches between the filesystem and the service.

pub mod disk;
pub mod metadata;
pub mod pins;
pub mod ttl;
