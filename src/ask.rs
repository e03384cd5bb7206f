//! How the commands ask a running mount: which mount holds a path, and the extended attributes
//! it answers (the mount process has no other channel; see `fs::pins` and `fs::write`).

use std::path::{Path, PathBuf};

/// The apsfs mount holding `path`.
pub fn mount_of(path: &Path) -> Result<PathBuf, String> {
    let abs = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    crate::mount::apsfs_mounts()
        .into_iter()
        .filter(|m| abs.starts_with(m))
        .max_by_key(|m| m.as_os_str().len())
        .ok_or_else(|| format!("{} is not inside an apsfs mount", abs.display()))
}

/// An extended attribute of a path.
pub fn path_xattr(path: &Path, name: &str) -> std::io::Result<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::other("path contains a NUL byte"))?;
    let name = c_name(name)?;
    // SAFETY: both strings are NUL-terminated and `buf`/`len` describe a writable buffer.
    read_xattr(|buf, len| unsafe { libc::getxattr(p.as_ptr(), name.as_ptr(), buf, len) })
}

pub fn c_name(name: &str) -> std::io::Result<std::ffi::CString> {
    std::ffi::CString::new(name).map_err(|_| std::io::Error::other("name contains a NUL byte"))
}

/// Reads an attribute value with `get(buf, len)` (a getxattr call): asks its size, then reads
/// it, again if it grew in between.
pub fn read_xattr(get: impl Fn(*mut libc::c_void, usize) -> isize) -> std::io::Result<Vec<u8>> {
    loop {
        let size = get(std::ptr::null_mut(), 0);
        if size < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut buf = vec![0u8; size as usize];
        let got = get(buf.as_mut_ptr().cast(), buf.len());
        if got >= 0 {
            buf.truncate(got as usize);
            return Ok(buf);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ERANGE) {
            return Err(e);
        }
    }
}

/// An extended attribute of a path read with one call into a buffer of `cap` bytes: for the
/// attributes whose reading does something (`apsfs sync`), which a size probe first would do
/// twice.
pub fn path_xattr_once(path: &Path, name: &str, cap: usize) -> std::io::Result<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::other("path contains a NUL byte"))?;
    let name = c_name(name)?;
    let mut buf = vec![0u8; cap];
    // SAFETY: both strings are NUL-terminated and `buf` is a writable buffer of `buf.len()`.
    let got = unsafe {
        libc::getxattr(
            p.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if got < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(got as usize);
    Ok(buf)
}
