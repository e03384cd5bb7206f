//! What a filesystem operation can fail with, and the one place a failure becomes an errno.
//! The errno depends on the operation as well as the cause: the same `409 Conflict` means
//! "that name exists" to `mkdir` and nothing a reader could act on to `read`, so the mapping
//! takes both.

use crate::api::ApiError;

/// The kernel request a failure answers; named in the log line and used by the errno mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Finding a name in a directory.
    Lookup,
    /// Attributes of an inode.
    Getattr,
    /// Opening a file.
    Open,
    /// Reading a file.
    Read,
    /// Opening a directory.
    Opendir,
    /// Reading a directory.
    Readdir,
    /// One extended attribute.
    Getxattr,
    /// The names of the extended attributes.
    Listxattr,
    /// `apsfs pin` on an open file.
    Pin,
    /// `apsfs unpin` on an open file.
    Unpin,
    /// A permission check.
    Access,
    /// Changing attributes (size, times, mode).
    Setattr,
    /// Making a special file.
    Mknod,
    /// Making a directory.
    Mkdir,
    /// Removing a file.
    Unlink,
    /// Removing a directory.
    Rmdir,
    /// Making a symbolic link.
    Symlink,
    /// Renaming.
    Rename,
    /// Making a hard link.
    Link,
    /// Writing to a file.
    Write,
    /// Creating and opening a file.
    Create,
    /// A `close` (what was written made durable).
    Flush,
    /// `fsync`.
    Fsync,
    /// Reserving space.
    Fallocate,
    /// Setting an extended attribute.
    Setxattr,
    /// Removing an extended attribute.
    Removexattr,
}

impl Op {
    /// The operation as the log names it.
    pub fn name(self) -> &'static str {
        match self {
            Op::Lookup => "lookup",
            Op::Getattr => "getattr",
            Op::Open => "open",
            Op::Read => "read",
            Op::Opendir => "opendir",
            Op::Readdir => "readdir",
            Op::Getxattr => "getxattr",
            Op::Listxattr => "listxattr",
            Op::Pin => "pin",
            Op::Unpin => "unpin",
            Op::Access => "access",
            Op::Setattr => "setattr",
            Op::Mknod => "mknod",
            Op::Mkdir => "mkdir",
            Op::Unlink => "unlink",
            Op::Rmdir => "rmdir",
            Op::Symlink => "symlink",
            Op::Rename => "rename",
            Op::Link => "link",
            Op::Write => "write",
            Op::Create => "create",
            Op::Flush => "flush",
            Op::Fsync => "fsync",
            Op::Fallocate => "fallocate",
            Op::Setxattr => "setxattr",
            Op::Removexattr => "removexattr",
        }
    }

    /// Whether the operation makes a new name, so a name already taken answers `EEXIST`.
    fn makes_a_name(self) -> bool {
        matches!(
            self,
            Op::Create | Op::Mkdir | Op::Mknod | Op::Symlink | Op::Link | Op::Rename
        )
    }

    /// Whether the operation changes something remotely.
    fn changes(self) -> bool {
        self.makes_a_name()
            || matches!(
                self,
                Op::Setattr
                    | Op::Unlink
                    | Op::Rmdir
                    | Op::Write
                    | Op::Flush
                    | Op::Fsync
                    | Op::Fallocate
                    | Op::Setxattr
                    | Op::Removexattr
            )
    }
}

/// Why a filesystem operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No entry of that name, or an inode the mount no longer knows.
    #[error("no such file or directory")]
    NotFound,
    /// A directory operation on a file.
    #[error("not a directory")]
    NotDir,
    /// A file operation on a directory.
    #[error("is a directory")]
    IsDir,
    /// A file or directory handle the mount never gave out, or already released.
    #[error("unknown handle")]
    BadHandle,
    /// An extended attribute the node does not have.
    #[error("no such attribute")]
    NoAttribute,
    /// Something this mount does not do (what, in the message).
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// A change on a read-only mount.
    #[error("the mount is read-only")]
    ReadOnly,
    /// A change this mount does not make to what exists on the service (what, in the
    /// message): answered rather than made locally and silently never sent.
    #[error("not permitted: {0}")]
    NotPermitted(&'static str),
    /// A name that already exists where a new one is made.
    #[error("the name exists")]
    Exists,
    /// A directory that still has entries.
    #[error("the directory is not empty")]
    NotEmpty,
    /// A name the service refuses (the reason, in the message), refused before anything is
    /// staged rather than failing later in the background.
    #[error("name refused: {0}")]
    BadName(String),
    /// A name or path longer than the service takes.
    #[error("name too long: {0}")]
    NameTooLong(String),
    /// A request the filesystem does not take (what, in the message).
    #[error("invalid: {0}")]
    Invalid(&'static str),
    /// A move the service cannot make keeping what is moved (what, in the message): `EXDEV`,
    /// so `mv` copies and removes instead.
    #[error("cannot be moved there: {0}")]
    CrossDevice(&'static str),
    /// The item is reserved (locked) by another user, who is named.
    #[error("reserved by {0}")]
    Locked(String),
    /// Not enough room in the disk cache.
    #[error("not enough room: {0}")]
    NoSpace(String),
    /// The process that asked was killed while the mount waited for the service.
    #[error("the caller was killed while waiting")]
    Interrupted,
    /// The service refused or failed.
    #[error(transparent)]
    Remote(#[from] ApiError),
    /// Something inside the mount went wrong (a poisoned lock, a read of the wrong length, a
    /// cache file that cannot be written); the message says what.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The errno `op` answers with. This is the only such mapping.
    pub fn errno(&self, op: Op) -> i32 {
        match self {
            Error::NotFound => libc::ENOENT,
            Error::NotDir => libc::ENOTDIR,
            Error::IsDir => libc::EISDIR,
            Error::BadHandle => libc::EBADF,
            Error::NoAttribute => libc::ENODATA,
            Error::Unsupported(_) => libc::EOPNOTSUPP,
            Error::ReadOnly => libc::EROFS,
            Error::NotPermitted(_) => libc::EPERM,
            Error::Exists => libc::EEXIST,
            Error::NotEmpty => libc::ENOTEMPTY,
            Error::BadName(_) | Error::Invalid(_) => libc::EINVAL,
            Error::NameTooLong(_) => libc::ENAMETOOLONG,
            Error::CrossDevice(_) => libc::EXDEV,
            Error::Locked(_) => libc::EACCES,
            Error::NoSpace(_) => libc::ENOSPC,
            Error::Internal(_) => libc::EIO,
            Error::Interrupted => libc::EINTR,
            Error::Remote(e) => remote_errno(e, op),
        }
    }

    /// Logs the failure of `op` once, at a level that fits how ordinary it is: names that do
    /// not exist and attributes a file lacks are asked for all the time.
    pub fn log(&self, op: Op) {
        let op_name = op.name();
        let errno = self.errno(op);
        match self {
            Error::NotFound
            | Error::NoAttribute
            | Error::Unsupported(_)
            | Error::ReadOnly
            | Error::Exists
            | Error::NotEmpty
            | Error::CrossDevice(_)
            | Error::Interrupted => {
                tracing::debug!(op = op_name, error = %self, errno, "failed");
            }
            Error::Remote(ApiError::NotFound(_)) => {
                tracing::info!(op = op_name, error = %self, errno, "failed");
            }
            Error::Internal(_) => tracing::error!(op = op_name, error = %self, errno, "failed"),
            _ => tracing::warn!(op = op_name, error = %self, errno, "failed"),
        }
    }
}

/// A service failure as the errno of `op`.
fn remote_errno(e: &ApiError, op: Op) -> i32 {
    match e {
        ApiError::NotFound(_) => libc::ENOENT,
        ApiError::Forbidden(_) | ApiError::Unauthorized(_) => libc::EACCES,
        ApiError::Timeout(_) => libc::ETIMEDOUT,
        // The name is taken (duplicate names in one folder are refused).
        ApiError::Refused { status: 409, .. } if op.makes_a_name() => libc::EEXIST,
        // Locked, or being modified by someone else.
        ApiError::Refused { status: 423, .. } if op.changes() => libc::EBUSY,
        ApiError::Refused { status: 423, .. } => libc::EACCES,
        ApiError::Throttled { .. }
        | ApiError::Server { .. }
        | ApiError::Refused { .. }
        | ApiError::OffHost(_)
        | ApiError::Redirected(_)
        | ApiError::TooLarge { .. }
        | ApiError::SizeMismatch { .. }
        | ApiError::Network(_)
        | ApiError::Decode(_)
        | ApiError::ShortBody { .. } => libc::EIO,
    }
}

/// A local disk failure (the staging area, the journal): out of space is `ENOSPC`, anything
/// else `EIO`, with what failed in the message.
pub fn local(what: &str, e: std::io::Error) -> Error {
    if matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) {
        Error::NoSpace(format!("{what}: {e}"))
    } else {
        Error::Internal(format!("{what}: {e}"))
    }
}

/// A poisoned lock: another task panicked while holding it.
pub fn poisoned<T>(_: T) -> Error {
    Error::Internal("a lock was poisoned".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_mapping_knows_the_operation() {
        let refused = |status| {
            Error::Remote(ApiError::Refused {
                status,
                detail: String::new(),
            })
        };
        assert_eq!(
            Error::Remote(ApiError::NotFound("x".into())).errno(Op::Lookup),
            libc::ENOENT
        );
        assert_eq!(
            Error::Remote(ApiError::Forbidden("x".into())).errno(Op::Read),
            libc::EACCES
        );
        assert_eq!(
            Error::Remote(ApiError::Unauthorized("x".into())).errno(Op::Opendir),
            libc::EACCES
        );
        assert_eq!(
            Error::Remote(ApiError::Timeout("x".into())).errno(Op::Read),
            libc::ETIMEDOUT
        );
        assert_eq!(
            Error::Remote(ApiError::Throttled { retry_after: None }).errno(Op::Read),
            libc::EIO
        );
        assert_eq!(
            Error::Remote(ApiError::Server {
                status: 503,
                detail: String::new()
            })
            .errno(Op::Lookup),
            libc::EIO
        );
        assert_eq!(refused(409).errno(Op::Mkdir), libc::EEXIST);
        assert_eq!(refused(409).errno(Op::Create), libc::EEXIST);
        assert_eq!(refused(409).errno(Op::Read), libc::EIO);
        assert_eq!(refused(423).errno(Op::Write), libc::EBUSY);
        assert_eq!(refused(423).errno(Op::Open), libc::EACCES);
        assert_eq!(refused(400).errno(Op::Lookup), libc::EIO);
        assert_eq!(Error::ReadOnly.errno(Op::Mkdir), libc::EROFS);
        assert_eq!(Error::NoSpace("x".into()).errno(Op::Pin), libc::ENOSPC);
        assert_eq!(
            Error::Unsupported("x").errno(Op::Getxattr),
            libc::EOPNOTSUPP
        );
        assert_eq!(Error::Internal("x".into()).errno(Op::Read), libc::EIO);
        assert_eq!(Error::Interrupted.errno(Op::Read), libc::EINTR);
        for e in [
            ApiError::Redirected("x".into()),
            ApiError::TooLarge {
                limit: 1,
                got: None,
            },
            ApiError::SizeMismatch {
                listed: 1,
                stored: 2,
            },
        ] {
            assert_eq!(Error::Remote(e).errno(Op::Read), libc::EIO);
        }
    }
}
