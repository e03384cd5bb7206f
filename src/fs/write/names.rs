//! The service's rules for names, checked when a name is made, so a refused name fails at once
//! with an errno rather than later in the background.

use super::super::error::Error;

/// Characters the service refuses in folder names (`POST folders`); applied to file names too,
/// since no rule is documented for those (an assumption, noted in README).
pub const RESERVED: &[char] = &[
    '<', '>', ':', '"', '/', '\\', '|', '?', '*', '`', '\n', '\r', '\t', '\0', '\u{c}', '¢', '™',
    '$', '®',
];
/// Longest name the service takes, in characters.
pub const MAX_NAME: usize = 255;
/// Longest path inside a project that Desktop Connector syncs (243 characters and a separator
/// of the 244 it allows): files saved here must also open for colleagues who use it.
pub const MAX_PATH: usize = 243;

/// `Ok` when the service takes `name` for a new entry in a folder whose path inside its project
/// is `folder_path_len` characters long.
pub fn check(name: &str, folder_path_len: usize) -> Result<(), Error> {
    if let Some(c) = name.chars().find(|c| RESERVED.contains(c)) {
        return Err(Error::BadName(format!(
            "{name:?}: the service refuses {c:?} in names"
        )));
    }
    if name.trim().is_empty() || name.ends_with('.') || name.ends_with(' ') {
        return Err(Error::BadName(format!(
            "{name:?}: empty, or ending in a dot or space"
        )));
    }
    let len = name.chars().count();
    if len > MAX_NAME {
        return Err(Error::NameTooLong(format!(
            "{len} characters; the service takes {MAX_NAME}"
        )));
    }
    let path = folder_path_len + 1 + len;
    if path > MAX_PATH {
        return Err(Error::NameTooLong(format!(
            "the path inside the project would be {path} characters; at most {MAX_PATH} sync"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_names_fail_with_their_reason() {
        assert!(check("plan.dwg", 20).is_ok());
        assert!(check("Tower A – level 3 (rev 2).rvt", 20).is_ok());
        assert!(check("John's notes.txt", 0).is_ok());
        for bad in ["a:b", "a*b", "what?", "cost$.xlsx", "tab\there", "x.", " "] {
            assert!(matches!(check(bad, 0), Err(Error::BadName(_))), "{bad}");
        }
        assert!(matches!(
            check(&"a".repeat(256), 0),
            Err(Error::NameTooLong(_))
        ));
        assert!(matches!(check("a.txt", 240), Err(Error::NameTooLong(_))));
    }
}
