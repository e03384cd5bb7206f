//! Caches between the filesystem and the service.

pub mod metadata;
