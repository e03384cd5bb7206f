//! The steps a case is made of and how they are generated. Selectors (`usize`) pick, modulo
//! their count, among what exists when the step runs, so every sequence means something and
//! shrinks well.

use super::model::{How, FILES};
use proptest::prelude::*;

/// Which name a step uses in its folder (of a file, or for `Rmdir` of a folder).
#[derive(Clone, Copy, Debug)]
pub(super) enum Name {
    /// One of `FILES` (`FOLDERS`), whether or not it exists.
    Any(usize),
    /// One of the files (folders) there now; the step's folder is then one of the live folders
    /// that have some, when any does (any of `FILES` or `FOLDERS` when none does).
    Existing(usize),
}

/// Which folder a step works in: one of the live folders, by id order (0 is the top folder).
pub(super) type Dir = usize;

/// One step of a case.
#[derive(Clone, Debug)]
pub(super) enum Step {
    /// Creates a file, writes `data`, closes it.
    Create {
        /// Where.
        dir: Dir,
        /// Its name.
        name: Name,
        /// What is written.
        data: Vec<u8>,
    },
    /// Opens an existing file for writing, writes `data` as `how` says, closes it.
    Write {
        /// Where.
        dir: Dir,
        /// Which file.
        name: Name,
        /// How.
        how: How,
        /// What is written.
        data: Vec<u8>,
    },
    /// Renames a file within its folder (to another name, taken or free).
    Rename {
        /// Where.
        dir: Dir,
        /// The file.
        from: Name,
        /// Its new name (the next one when it is the same).
        to: usize,
    },
    /// Moves a file to another folder.
    Move {
        /// Where it is.
        dir: Dir,
        /// The file.
        name: Name,
        /// Which of the other live folders.
        to_dir: usize,
        /// Its name there.
        to: usize,
    },
    /// Removes a file.
    Unlink {
        /// Where.
        dir: Dir,
        /// The file.
        name: Name,
    },
    /// Makes a folder (one of `FOLDERS`).
    Mkdir {
        /// Where.
        dir: Dir,
        /// Which name.
        name: usize,
    },
    /// Removes a folder.
    Rmdir {
        /// Where.
        dir: Dir,
        /// Which folder (or name of `FOLDERS`).
        name: Name,
    },
    /// Renames and/or moves a folder (never the top folder, never into itself).
    MoveDir {
        /// Which of the folders below the top one.
        folder: usize,
        /// Which of the live folders not inside it becomes its parent.
        to_dir: usize,
        /// Its new name, one of `FOLDERS`.
        name: usize,
    },
    /// `apsfs sync --wait`: sends everything and waits for it.
    Sync,
    /// The mount ends (as a crash after every close) and a new one starts on its journal.
    Restart,
    /// Another client uploads a new version of an item nothing here changes.
    RemoteVersion {
        /// Which of those files.
        file: usize,
        /// Its bytes.
        data: Vec<u8>,
    },
    /// Another client adds an item under a name nothing here uses.
    RemoteItem {
        /// Where.
        dir: Dir,
        /// Which of the free names.
        name: usize,
        /// Its bytes.
        data: Vec<u8>,
    },
}

/// A few bytes (none at times), letters so failures read well.
pub(super) fn data() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(b'a'..=b'z', 0..6)
}

/// A name of something to change: mostly an existing one, so most steps change something.
fn name() -> impl Strategy<Value = Name> {
    prop_oneof![
        1 => (0..FILES.len()).prop_map(Name::Any),
        3 => any::<usize>().prop_map(Name::Existing),
    ]
}

/// A name for a new file: mostly any (free more often than not), at times an existing one.
fn new_name() -> impl Strategy<Value = Name> {
    prop_oneof![
        3 => (0..FILES.len()).prop_map(Name::Any),
        1 => any::<usize>().prop_map(Name::Existing),
    ]
}

fn how() -> impl Strategy<Value = How> {
    prop_oneof![Just(How::Overwrite), Just(How::Append), Just(How::Truncate)]
}

/// A folder selector: small, so the top folder is picked often.
fn dir() -> impl Strategy<Value = Dir> {
    0..4usize
}

/// Any step, weighted towards file changes.
pub(super) fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (dir(), new_name(), data())
            .prop_map(|(dir, name, data)| Step::Create { dir, name, data }),
        3 => (dir(), name(), how(), data())
            .prop_map(|(dir, name, how, data)| Step::Write { dir, name, how, data }),
        4 => (dir(), name(), 0..FILES.len()).prop_map(|(dir, from, to)| Step::Rename { dir, from, to }),
        1 => (dir(), name(), any::<usize>(), 0..FILES.len())
            .prop_map(|(dir, name, to_dir, to)| Step::Move { dir, name, to_dir, to }),
        2 => (dir(), name()).prop_map(|(dir, name)| Step::Unlink { dir, name }),
        1 => (dir(), 0..3usize).prop_map(|(dir, name)| Step::Mkdir { dir, name }),
        1 => (dir(), name()).prop_map(|(dir, name)| Step::Rmdir { dir, name }),
        1 => (any::<usize>(), any::<usize>(), 0..3usize)
            .prop_map(|(folder, to_dir, name)| Step::MoveDir { folder, to_dir, name }),
        2 => Just(Step::Sync),
        1 => Just(Step::Restart),
        1 => (any::<usize>(), data())
            .prop_map(|(file, data)| Step::RemoteVersion { file, data }),
        1 => (dir(), any::<usize>(), data())
            .prop_map(|(dir, name, data)| Step::RemoteItem { dir, name, data }),
    ]
}
