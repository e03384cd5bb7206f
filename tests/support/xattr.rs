//! Extended attributes of a path in a mount, read the way `getfattr` does.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn c_path(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in path")
}

/// `getxattr`, or the errno when the attribute is absent.
pub fn xattr(p: &Path, name: &str) -> Result<String, i32> {
    let (path, name) = (c_path(p), CString::new(name).expect("name"));
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: both strings are NUL-terminated and the buffer is as long as we say.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    buf.truncate(n as usize);
    Ok(String::from_utf8(buf).expect("utf-8 value"))
}

/// `listxattr` as names.
pub fn xattr_names(p: &Path) -> Vec<String> {
    let path = c_path(p);
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: a NUL-terminated path and a buffer as long as we say.
    let n = unsafe { libc::listxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(n >= 0, "listxattr {}", p.display());
    buf[..n as usize]
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}
