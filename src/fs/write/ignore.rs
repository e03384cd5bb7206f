//! Names that stay on this machine: the lock, temp and backup files desktop tools write next to
//! a document. They are shown in the mount and kept across remounts, but never uploaded, as
//! Desktop Connector does for the same files.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// The default local-only patterns, matched against a name (not a path). A trailing `/` makes a
/// pattern match directories only (everything inside such a directory is local too).
pub const DEFAULT_PATTERNS: &[&str] = &[
    // Microsoft Office: owner files and save temporaries.
    "~$*",
    "~WRL*.tmp",
    "~WR?*.tmp",
    "*.tmp",
    // LibreOffice: lock files and save temporaries.
    ".~lock.*#",
    "*.osl-tmp",
    "lu*.tmp",
    // AutoCAD (the extensions Desktop Connector excludes).
    "*.dwl",
    "*.dwl2",
    "*.bak",
    "*.sv$",
    "*.ac$",
    "*.dwgbak",
    "*.dce",
    "*.dwk",
    "*.l$o",
    "*.l$t",
    "*._ls",
    "*.lck",
    "*.temp",
    // Revit: numbered backups of a model, and the backup folder of a workshared one.
    "*.[0-9][0-9][0-9][0-9].rvt",
    "*_backup/",
    // vim and Emacs: swap, backup, probe, autosave and lock files.
    ".*.sw?",
    "*~",
    "4913",
    "#*#",
    ".#*",
    // Desktop files of other systems.
    ".DS_Store",
    "._*",
    "Thumbs.db",
    "desktop.ini",
];

/// A compiled set of local-only patterns.
pub struct Ignore {
    files: GlobSet,
    dirs: GlobSet,
}

impl Ignore {
    /// The default patterns plus `extra` (`--ignore GLOB`); a bad pattern is an error naming it.
    pub fn new(extra: &[String]) -> Result<Ignore, String> {
        let (mut files, mut dirs) = (GlobSetBuilder::new(), GlobSetBuilder::new());
        let patterns = DEFAULT_PATTERNS
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str));
        for p in patterns {
            let (pattern, dir_only) = match p.strip_suffix('/') {
                Some(d) => (d, true),
                None => (p, false),
            };
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| format!("bad --ignore pattern {p:?}: {e}"))?;
            dirs.add(glob.clone());
            if !dir_only {
                files.add(glob);
            }
        }
        let build =
            |b: GlobSetBuilder| b.build().map_err(|e| format!("bad --ignore patterns: {e}"));
        Ok(Ignore {
            files: build(files)?,
            dirs: build(dirs)?,
        })
    }

    /// Whether a file or directory called `name` stays local.
    pub fn matches(&self, name: &str, is_dir: bool) -> bool {
        if is_dir {
            self.dirs.is_match(name)
        } else {
            self.files.is_match(name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_files_of_common_tools_stay_local() {
        let ig = Ignore::new(&[]).unwrap();
        for name in [
            "~$report.docx",
            "~WRL0001.tmp",
            ".~lock.plan.odt#",
            "lu12345.tmp",
            "plan.dwl",
            "plan.dwl2",
            "plan.bak",
            "plan.sv$",
            "tower.0001.rvt",
            ".notes.txt.swp",
            ".notes.txt.swx",
            "notes.txt~",
            "4913",
            "#notes.txt#",
            ".#notes.txt",
            ".DS_Store",
            "Thumbs.db",
        ] {
            assert!(ig.matches(name, false), "{name} stays local");
        }
        assert!(ig.matches("tower_backup", true));
        assert!(!ig.matches("tower_backup", false), "only a directory");
    }

    #[test]
    fn documents_and_rsync_temporaries_are_uploaded() {
        let ig = Ignore::new(&[]).unwrap();
        for name in [
            "report.docx",
            "plan.dwg",
            "tower.rvt",
            "tower.v2.rvt",
            ".report.docx.XyZ123",
            "data.csv",
            "Cedd4100",
        ] {
            assert!(!ig.matches(name, false), "{name} is uploaded");
        }
    }

    #[test]
    fn extra_patterns_add_to_the_defaults_and_bad_ones_are_refused() {
        let ig = Ignore::new(&["*.log".into(), "scratch/".into()]).unwrap();
        assert!(ig.matches("build.log", false));
        assert!(ig.matches("scratch", true));
        assert!(!ig.matches("scratch", false));
        assert!(ig.matches("plan.bak", false));
        let e = Ignore::new(&["[".into()]).err().unwrap();
        assert!(e.contains("\"[\""), "{e}");
    }
}
