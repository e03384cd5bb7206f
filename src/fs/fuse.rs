//! The FUSE adapter: each kernel request becomes one call on `Fs`, run as a tokio task so a
//! slow listing or read never holds up other requests, and its result becomes a reply. No
//! caching, naming or HTTP happens here. Every call that may wait for the service is bounded:
//! by the operation deadline (`--op-timeout`, all retries and waits included), and by its
//! caller being killed (see `caller.rs`).

use super::attr::{Attr, BLOCK_SIZE};
use super::{Error, Fs, Op, RenameFlags, SetAttr};
use crate::api::Remote;
use crate::deadline::{within_fed, Feed};
use fuser::{
    FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, OpenAccMode,
    OpenFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request,
};
use std::ffi::OsStr;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Adapts `Fs` to `fuser::Filesystem`.
pub struct FuseAdapter<R: Remote> {
    fs: Arc<Fs<R>>,
    rt: tokio::runtime::Handle,
    /// How long one operation may wait for the service.
    limit: Duration,
    /// The remote's sign that storage is still delivering bytes.
    feed: Option<Arc<Feed>>,
}

/// The bounds of one request's work: the operation deadline, and the process that asked.
struct Bound {
    limit: Duration,
    feed: Option<Arc<Feed>>,
    pid: u32,
}

impl Bound {
    /// `work`'s answer, or a timeout once the deadline passes, or `Interrupted` once the caller
    /// is killed; either way `work` is dropped, which cancels what it waits for.
    async fn run<T>(self, work: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        tokio::select! {
            r = within_fed(self.limit, self.feed, work) => r.unwrap_or_else(|expired| {
                Err(Error::Remote(crate::api::ApiError::Timeout(expired.to_string())))
            }),
            () = super::caller::killed(self.pid) => Err(Error::Interrupted),
        }
    }
}

impl<R: Remote> FuseAdapter<R> {
    /// Serves `fs`, running its operations on `rt`, each within `limit`.
    pub fn new(fs: Arc<Fs<R>>, rt: tokio::runtime::Handle, limit: Duration) -> FuseAdapter<R> {
        let feed = fs.feed();
        FuseAdapter {
            fs,
            rt,
            limit,
            feed,
        }
    }

    /// The bounds of `req`'s work.
    fn bound(&self, req: &Request) -> Bound {
        Bound {
            limit: self.limit,
            feed: self.feed.clone(),
            pid: req.pid(),
        }
    }

    /// The answer to an operation that would change the mount and that this filesystem never
    /// does: `EROFS` on a read-only mount, otherwise `why`.
    fn refuse(&self, op: Op, why: Error) -> fuser::Errno {
        match self.fs.may_change(op) {
            Err(e) => errno(op, e),
            Ok(()) => errno(op, why),
        }
    }

    /// Runs `work` for `req` on the runtime, within its bounds, and replies with `reply`.
    fn spawn<T: Send + 'static>(
        &self,
        req: &Request,
        op: Op,
        work: impl Future<Output = Result<T, Error>> + Send + 'static,
        reply: impl FnOnce(Result<T, fuser::Errno>) + Send + 'static,
    ) {
        let bound = self.bound(req);
        self.rt.spawn(async move {
            reply(bound.run(work).await.map_err(|e| errno(op, e)));
        });
    }
}

/// The reply to a failed `op`, logged once here.
fn errno(op: Op, e: Error) -> fuser::Errno {
    e.log(op);
    fuser::Errno::from_i32(e.errno(op))
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: a.mtime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: a.ctime,
        kind: if a.is_dir {
            FileType::Directory
        } else {
            FileType::RegularFile
        },
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: BLOCK_SIZE,
        flags: 0,
    }
}

/// The xattr reply protocol: a size probe (`size` 0) gets the length, a buffer too small
/// gets `ERANGE`.
fn reply_xattr(reply: ReplyXattr, size: u32, value: &[u8]) {
    match u32::try_from(value.len()) {
        Ok(len) if size == 0 => reply.size(len),
        Ok(len) if len <= size => reply.data(value),
        _ => reply.error(fuser::Errno::ERANGE),
    }
}

/// Names the kernel hands us that are not UTF-8 cannot name anything remote.
fn utf8(name: &OsStr) -> Option<String> {
    name.to_str().map(String::from)
}

impl<R: Remote> Filesystem for FuseAdapter<R> {
    fn init(&mut self, _req: &Request, config: &mut fuser::KernelConfig) -> std::io::Result<()> {
        // Listings carry every attribute: hand them over with the names.
        if let Err(unsupported) = config.add_capabilities(fuser::InitFlags::FUSE_DO_READDIRPLUS) {
            tracing::debug!(?unsupported, "kernel without readdirplus");
        }
        // As much kernel read-ahead as the kernel allows; apsfs's own read-ahead goes further.
        if let Err(max) = config.set_max_readahead(u32::MAX) {
            let _ = config.set_max_readahead(max);
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(name) = utf8(name) else {
            return reply.error(fuser::Errno::ENOENT);
        };
        let (fs, bound) = (self.fs.clone(), self.bound(req));
        self.rt.spawn(async move {
            match bound.run(fs.lookup(parent.0, &name)).await {
                Ok((a, ttl)) => {
                    let attr_ttl = fs.attr_ttl(&a, ttl);
                    reply.entry_with_ttls(&attr_ttl, &ttl, &file_attr(&a), Generation(0))
                }
                Err(e) => reply.error(errno(Op::Lookup, e)),
            }
        });
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let (fs, bound) = (self.fs.clone(), self.bound(req));
        self.rt.spawn(async move {
            match bound.run(fs.getattr(ino.0)).await {
                Ok((a, ttl)) => reply.attr(&ttl, &file_attr(&a)),
                Err(e) => reply.error(errno(Op::Getattr, e)),
            }
        });
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let truncate = flags.0 & libc::O_TRUNC != 0;
        let write = !matches!(flags.acc_mode(), OpenAccMode::O_RDONLY) || truncate;
        let (fs, bound) = (self.fs.clone(), self.bound(req));
        self.rt.spawn(async move {
            match bound.run(fs.open_with(ino.0, write, truncate)).await {
                // A remote file's inode is one immutable version, so pages cached by an
                // earlier open are still right: keep them, and a re-read costs no request at
                // all. A file being written is not one version.
                Ok(fh) if fs.is_local_handle(fh) => {
                    reply.opened(FileHandle(fh), FopenFlags::empty())
                }
                Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE),
                Err(e) => reply.error(errno(Op::Open, e)),
            }
        });
    }

    fn read(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        let (fs, bound) = (self.fs.clone(), self.bound(req));
        self.rt.spawn(async move {
            match bound.run(fs.read(fh.0, offset, size)).await {
                Ok(b) => reply.data(&b),
                Err(e) => reply.error(errno(Op::Read, e)),
            }
        });
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let fs = self.fs.clone();
        self.rt.spawn(async move {
            fs.release(fh.0).await;
            reply.ok();
        });
    }

    /// Each `close`: what was written is durable here before `close` returns.
    fn flush(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        let fs = self.fs.clone();
        self.spawn(
            req,
            Op::Flush,
            async move { fs.flush(fh.0, true).await },
            |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            },
        );
    }

    fn fsync(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let fs = self.fs.clone();
        self.spawn(
            req,
            Op::Fsync,
            async move { fs.flush(fh.0, false).await },
            |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            },
        );
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let (fs, bound) = (self.fs.clone(), self.bound(req));
        self.rt.spawn(async move {
            match bound.run(fs.opendir(ino.0)).await {
                Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
                Err(e) => reply.error(errno(Op::Opendir, e)),
            }
        });
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        match self.fs.readdir(ino.0, fh.0, offset) {
            Ok(entries) => {
                for e in entries {
                    let kind = if e.is_dir {
                        FileType::Directory
                    } else {
                        FileType::RegularFile
                    };
                    if reply.add(INodeNo(e.ino), e.next, kind, &e.name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(errno(Op::Readdir, e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: fuser::ReplyDirectoryPlus,
    ) {
        match self.fs.readdirplus(ino.0, fh.0, offset) {
            Ok(entries) => {
                let mut entries = entries.into_iter();
                while let Some((e, a, ttl)) = entries.next() {
                    let full = reply.add(
                        INodeNo(e.ino),
                        e.next,
                        &e.name,
                        &ttl,
                        &file_attr(&a),
                        Generation(0),
                    );
                    if full {
                        let rest = entries.map(|(e, _, _)| e);
                        self.fs.not_sent(std::iter::once(e).chain(rest));
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(errno(Op::Readdir, e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.releasedir(fh.0);
        reply.ok();
    }

    /// apsfs's own commands pin and unpin an open file (see `pins.rs`). Programs also probe
    /// files with other ioctls (Python asks every file it opens whether it is a terminal): none
    /// apply here, and the answer is "not a terminal", not a logged warning.
    #[allow(clippy::too_many_arguments)]
    fn ioctl(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        let (fs, bound) = (self.fs.clone(), self.bound(req));
        match cmd {
            super::pins::IOC_PIN => {
                self.rt.spawn(async move {
                    match bound.run(fs.pin(ino.0)).await {
                        Ok(newly) => reply.ioctl(i32::from(newly), &[]),
                        Err(e) => reply.error(errno(Op::Pin, e)),
                    }
                });
            }
            super::pins::IOC_UNPIN => match fs.unpin(ino.0) {
                Ok(n) => reply.ioctl(i32::try_from(n).unwrap_or(i32::MAX), &[]),
                Err(e) => reply.error(errno(Op::Unpin, e)),
            },
            _ => reply.error(fuser::Errno::ENOTTY),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // Capacity is not something the service reports. A read-only mount has no free
        // space; a read-write one has the room its staging area has, since saves land there
        // first (applications refuse to save to a filesystem reporting none).
        let (blocks, free, avail, bsize) = self.fs.room().unwrap_or((0, 0, 0, BLOCK_SIZE));
        reply.statfs(
            blocks,
            free,
            avail,
            self.fs.inode_count(),
            u64::MAX >> 1,
            bsize,
            super::names::NAME_MAX as u32,
            bsize,
        );
    }

    fn access(&self, _req: &Request, _ino: INodeNo, mask: fuser::AccessFlags, reply: ReplyEmpty) {
        match self.fs.may_change(Op::Access) {
            Err(e) if mask.contains(fuser::AccessFlags::W_OK) => reply.error(errno(Op::Access, e)),
            _ => reply.ok(),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        if let Err(e) = self.fs.may_change(Op::Setattr) {
            return reply.error(errno(Op::Setattr, e));
        }
        // Owners are accepted as they are (every inode is the mounting user's).
        let set = SetAttr {
            size,
            mtime: mtime.map(|t| match t {
                fuser::TimeOrNow::SpecificTime(t) => t,
                fuser::TimeOrNow::Now => SystemTime::now(),
            }),
            mode,
        };
        let fs = self.fs.clone();
        let work = async move { fs.setattr(ino.0, fh.map(|f| f.0), set).await };
        let fs = self.fs.clone();
        self.spawn(req, Op::Setattr, work, move |r| match r {
            Ok(a) => reply.attr(&fs.attr_ttl(&a, Duration::ZERO), &file_attr(&a)),
            Err(e) => reply.error(e),
        });
    }

    fn mknod(
        &self,
        _req: &Request,
        _p: INodeNo,
        _n: &OsStr,
        _m: u32,
        _u: u32,
        _r: u32,
        reply: ReplyEntry,
    ) {
        reply.error(self.refuse(Op::Mknod, Error::NotPermitted("special files")));
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _u: u32,
        reply: ReplyEntry,
    ) {
        let Some(name) = utf8(name) else {
            return reply.error(fuser::Errno::EINVAL);
        };
        let fs = self.fs.clone();
        self.spawn(
            req,
            Op::Mkdir,
            async move { fs.mkdir(parent.0, &name, mode).await },
            move |r| match r {
                Ok(a) => reply.entry(&Duration::from_secs(1), &file_attr(&a), Generation(0)),
                Err(e) => reply.error(e),
            },
        );
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let Some(name) = utf8(name) else {
            return reply.error(fuser::Errno::ENOENT);
        };
        let fs = self.fs.clone();
        self.spawn(
            req,
            Op::Unlink,
            async move { fs.unlink(parent.0, &name).await },
            |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            },
        );
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let Some(name) = utf8(name) else {
            return reply.error(fuser::Errno::ENOENT);
        };
        let fs = self.fs.clone();
        self.spawn(
            req,
            Op::Rmdir,
            async move { fs.rmdir(parent.0, &name).await },
            |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            },
        );
    }

    fn symlink(&self, _req: &Request, _p: INodeNo, _n: &OsStr, _t: &Path, reply: ReplyEntry) {
        reply.error(self.refuse(Op::Symlink, Error::NotPermitted("symbolic links")));
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        new_parent: INodeNo,
        new_name: &OsStr,
        flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        let (Some(name), Some(new_name)) = (utf8(name), utf8(new_name)) else {
            return reply.error(fuser::Errno::EINVAL);
        };
        let flags = RenameFlags {
            no_replace: flags.contains(fuser::RenameFlags::RENAME_NOREPLACE),
            exchange: flags.contains(fuser::RenameFlags::RENAME_EXCHANGE),
        };
        let fs = self.fs.clone();
        let work = async move {
            fs.rename(parent.0, &name, new_parent.0, &new_name, flags)
                .await
        };
        self.spawn(req, Op::Rename, work, |r| match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        });
    }

    fn link(&self, _req: &Request, _i: INodeNo, _np: INodeNo, _nn: &OsStr, reply: ReplyEntry) {
        reply.error(self.refuse(Op::Link, Error::NotPermitted("hard links")));
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        let data = data.to_vec();
        let fs = self.fs.clone();
        self.spawn(
            req,
            Op::Write,
            async move { fs.write(fh.0, offset, &data).await },
            |r| match r {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(e),
            },
        );
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let Some(name) = utf8(name) else {
            return reply.error(fuser::Errno::EINVAL);
        };
        let fs = self.fs.clone();
        self.spawn(
            req,
            Op::Create,
            async move { fs.create(parent.0, &name, mode).await },
            |r| match r {
                Ok((a, fh)) => reply.created(
                    &super::writing::LOCAL_TTL,
                    &file_attr(&a),
                    Generation(0),
                    FileHandle(fh),
                    FopenFlags::empty(),
                ),
                Err(e) => reply.error(e),
            },
        );
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(self.refuse(Op::Fallocate, Error::Unsupported("fallocate")));
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let Some(name) = utf8(name) else {
            return reply.error(fuser::Errno::ENODATA);
        };
        // Most answers need no request (and `ls -l` asks every file): only fetches get a task.
        match self.fs.xattr_now(ino.0, &name) {
            Ok(Some(value)) => return reply_xattr(reply, size, &value),
            Err(e) => return reply.error(errno(Op::Getxattr, e)),
            Ok(None) => {}
        }
        let (fs, bound) = (self.fs.clone(), self.bound(req));
        self.rt.spawn(async move {
            match bound.run(fs.getxattr(ino.0, &name)).await {
                Ok(value) => reply_xattr(reply, size, &value),
                Err(e) => reply.error(errno(Op::Getxattr, e)),
            }
        });
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.fs.listxattr(ino.0) {
            Ok(names) => reply_xattr(reply, size, &names),
            Err(e) => reply.error(errno(Op::Listxattr, e)),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        _i: INodeNo,
        name: &OsStr,
        _v: &[u8],
        _f: i32,
        _p: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(self.refuse(Op::Setxattr, xattr_refusal(name, Op::Setxattr)));
    }

    fn removexattr(&self, _req: &Request, _i: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply.error(self.refuse(Op::Removexattr, xattr_refusal(name, Op::Removexattr)));
    }
}

/// Why an extended attribute cannot be set or removed: the `user.aps.*` ones say what the
/// service holds and are not the caller's to change (`EPERM`); no other is kept (`EOPNOTSUPP`).
fn xattr_refusal(name: &OsStr, op: Op) -> Error {
    if name.as_encoded_bytes().starts_with(b"user.aps.") {
        Error::NotPermitted("the user.aps.* attributes are read-only")
    } else if op == Op::Setxattr {
        Error::Unsupported("setting extended attributes")
    } else {
        Error::Unsupported("removing extended attributes")
    }
}
