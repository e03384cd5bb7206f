//! Remote names made into path components, deterministically.
//!
//! The rules (also in the README):
//! - a name containing `/` or NUL is percent-encoded: `%` → `%25`, `/` → `%2F`, NUL → `%00`
//!   (names without those characters are shown exactly as the service spells them);
//! - the names `.` and `..` become `%2E` and `%2E%2E`, an empty name becomes `%EMPTY`;
//! - a name longer than 255 bytes keeps its extension and as much of its start as fits, followed
//!   by `~` and 16 hex digits of a hash of the full name;
//! - when several entries of one folder end up with the same name, folders come first, then
//!   the oldest entry; it keeps the name and every other gets ` (xxxxxxxx)` — 8 hex digits of
//!   a hash of its id — before its extension. The same entry therefore always gets the same name.

use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

/// Longest file name Linux accepts, in bytes.
pub const NAME_MAX: usize = 255;

fn hex(data: &str, digits: usize) -> String {
    Sha256::digest(data.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..digits]
        .to_string()
}

/// Splits off an extension worth keeping (short, not the whole name).
fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= 17 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

/// Longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Makes one remote name a valid path component.
pub fn encode(raw: &str) -> String {
    let name = match raw {
        "" => "%EMPTY".to_string(),
        "." => "%2E".to_string(),
        ".." => "%2E%2E".to_string(),
        _ if raw.contains(['/', '\0']) => raw
            .replace('%', "%25")
            .replace('/', "%2F")
            .replace('\0', "%00"),
        _ => raw.to_string(),
    };
    if name.len() <= NAME_MAX {
        return name;
    }
    let (stem, ext) = split_ext(&name);
    let tag = format!("~{}", hex(raw, 16));
    let keep = NAME_MAX - tag.len() - ext.len();
    format!("{}{tag}{ext}", truncate(stem, keep))
}

/// An entry to be named.
pub struct Candidate<'a> {
    /// The remote name.
    pub raw: &'a str,
    /// The remote id (stable for the life of the entry).
    pub id: &'a str,
    /// Folders win name clashes.
    pub is_dir: bool,
    /// Creation time; the oldest of a clash keeps the plain name.
    pub created: Option<SystemTime>,
}

/// Final, unique names for the entries of one folder, in the order given.
pub fn unique_names(entries: &[Candidate]) -> Vec<String> {
    unique_names_besides(entries, &[])
}

/// [`unique_names`] in a folder where apsfs itself shows entries named `reserved` (a folder's
/// `.versions`): an entry of such a name clashes with it, and apsfs's own entry wins, so the
/// real one is renamed like the loser of any clash.
pub fn unique_names_besides(entries: &[Candidate], reserved: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = entries.iter().map(|e| encode(e.raw)).collect();
    let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in names.iter().enumerate() {
        groups.entry(n.as_str()).or_default().push(i);
    }
    // Each clash, with whether one of its entries keeps the name.
    let mut clashes: Vec<(Vec<usize>, bool)> = groups
        .into_iter()
        .filter_map(|(name, g)| match reserved.contains(&name) {
            true => Some((g, false)),
            false => (g.len() > 1).then_some((g, true)),
        })
        .collect();
    if clashes.is_empty() {
        return names;
    }
    clashes.sort();
    let mut taken: HashSet<String> = names.iter().cloned().collect();
    taken.extend(reserved.iter().map(|r| r.to_string()));
    for (mut group, one_keeps) in clashes {
        group.sort_by(|&a, &b| {
            let (x, y) = (&entries[a], &entries[b]);
            y.is_dir
                .cmp(&x.is_dir)
                .then(x.created.cmp(&y.created))
                .then(x.id.cmp(y.id))
        });
        for &i in &group[usize::from(one_keeps)..] {
            let base = names[i].clone();
            let (stem, ext) = if entries[i].is_dir {
                (base.as_str(), "")
            } else {
                split_ext(&base)
            };
            let mut digits = 8;
            let renamed = loop {
                let tag = format!(" ({})", hex(entries[i].id, digits));
                let keep = NAME_MAX - tag.len() - ext.len();
                let candidate = format!("{}{tag}{ext}", truncate(stem, keep));
                if !taken.contains(&candidate) || digits >= 64 {
                    break candidate;
                }
                digits += 8;
            };
            taken.insert(renamed.clone());
            names[i] = renamed;
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c<'a>(raw: &'a str, id: &'a str, is_dir: bool, t: u64) -> Candidate<'a> {
        Candidate {
            raw,
            id,
            is_dir,
            created: Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(t)),
        }
    }

    #[test]
    fn encodes_only_what_must_change() {
        assert_eq!(encode("Tower A.rvt"), "Tower A.rvt");
        assert_eq!(encode(" lead and trail "), " lead and trail ");
        assert_eq!(encode("back\\slash?.txt"), "back\\slash?.txt");
        assert_eq!(encode("100% a/b.txt"), "100%25 a%2Fb.txt");
        assert_eq!(encode("nul\0byte"), "nul%00byte");
        assert_eq!(encode("."), "%2E");
        assert_eq!(encode(".."), "%2E%2E");
        assert_eq!(encode(""), "%EMPTY");
        assert_eq!(encode("設計図.dwg"), "設計図.dwg");
    }

    #[test]
    fn long_names_fit_and_keep_extension() {
        let long = format!("{}.pdf", "é".repeat(200));
        let e = encode(&long);
        assert!(e.len() <= NAME_MAX, "{}", e.len());
        assert!(e.ends_with(".pdf"));
        assert_ne!(encode(&format!("{}.pdf", "é".repeat(201))), e);
        assert_eq!(encode(&long), e, "deterministic");
    }

    #[test]
    fn duplicates_get_stable_suffixes() {
        let a = [
            c("Dup.pdf", "id-old", false, 1),
            c("Dup.pdf", "id-new", false, 2),
            c("Dup.pdf", "dir", true, 3),
        ];
        let n = unique_names(&a);
        assert_eq!(n[2], "Dup.pdf", "the folder keeps the name");
        assert!(n[0].starts_with("Dup (") && n[0].ends_with(").pdf"));
        assert_ne!(n[0], n[1]);
        // Order of the listing does not matter.
        let b = [
            c("Dup.pdf", "dir", true, 3),
            c("Dup.pdf", "id-new", false, 2),
            c("Dup.pdf", "id-old", false, 1),
        ];
        let m = unique_names(&b);
        assert_eq!(
            (m[0].as_str(), m[1].as_str(), m[2].as_str()),
            (n[2].as_str(), n[1].as_str(), n[0].as_str())
        );
        // Two files: the older keeps the name.
        let two = unique_names(&[c("x.txt", "b", false, 5), c("x.txt", "a", false, 9)]);
        assert_eq!(two[0], "x.txt");
        let set: HashSet<_> = n.iter().collect();
        assert_eq!(set.len(), 3);
        // A name apsfs shows itself: the real entry gives way.
        let r = unique_names_besides(
            &[c(".versions", "v", false, 1), c("a", "a", false, 1)],
            &[".versions"],
        );
        assert!(
            r[0].starts_with(".versions (") && r[0].ends_with(')'),
            "{}",
            r[0]
        );
        assert_eq!(r[1], "a");
        // Encoded names that clash with real ones are separated too.
        let e = unique_names(&[c("a/b", "1", false, 1), c("a%2Fb", "2", false, 2)]);
        assert_ne!(e[0], e[1]);
    }
}
