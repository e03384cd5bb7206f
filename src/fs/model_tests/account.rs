//! The modelled account: every node at every epoch and every version's bytes, and the changes
//! made to it, each made both to the `MemoryRemote` under the mount and to the model, so the
//! two always agree.

use crate::testing::memory::{folder_info, TOP, TOP_NAME};
use crate::testing::MemoryRemote;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;

/// A node of the modelled account by index: 0 is the mount's root (the project), 1 the top
/// folder. Nodes are never reused.
pub(super) type Id = usize;

/// One node of the account at one epoch.
#[derive(Clone, Debug)]
pub(super) enum Node {
    Folder {
        name: String,
        parent: Id,
        hidden: bool,
        children: Vec<Id>,
    },
    File {
        name: String,
        parent: Id,
        /// The tip version (an index into `Model::versions`); `None` for a tombstone.
        tip: Option<usize>,
        hidden: bool,
        removed: bool,
    },
}

impl Node {
    pub(super) fn name(&self) -> &str {
        match self {
            Node::Folder { name, .. } | Node::File { name, .. } => name,
        }
    }

    pub(super) fn parent(&self) -> Id {
        match self {
            Node::Folder { parent, .. } | Node::File { parent, .. } => *parent,
        }
    }
}

/// What a name in a listing stands for; also what an inode stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Shown {
    /// A folder.
    Dir(Id),
    /// A file showing this version.
    File(usize),
}

/// The entries directory `dir` shows at one epoch: the visibility policy of `listing.rs`
/// (hidden folders and items, tombstones and removed items are not shown).
pub(super) fn listing(tree: &[Node], dir: Id) -> Vec<(&str, Shown)> {
    let Node::Folder { children, .. } = &tree[dir] else {
        return Vec::new();
    };
    children
        .iter()
        .filter_map(|&c| match &tree[c] {
            Node::Folder {
                name,
                hidden: false,
                ..
            } => Some((name.as_str(), Shown::Dir(c))),
            Node::File {
                name,
                tip: Some(v),
                hidden: false,
                removed: false,
                ..
            } => Some((name.as_str(), Shown::File(*v))),
            _ => None,
        })
        .collect()
}

/// What `name` in `dir` stands for at one epoch.
pub(super) fn child(tree: &[Node], dir: Id, name: &str) -> Option<Shown> {
    listing(tree, dir)
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| s)
}

/// One version of an item.
pub(super) struct Version {
    pub(super) item: Id,
    pub(super) number: u32,
    pub(super) bytes: Bytes,
}

/// The account at every epoch, and every version ever uploaded.
pub(super) struct Model {
    /// `history[e]`: every node after `e` changes.
    pub(super) history: Vec<Vec<Node>>,
    pub(super) versions: Vec<Version>,
    pub(super) by_size: HashMap<u64, usize>,
}

impl Model {
    pub(super) fn now(&self) -> usize {
        self.history.len() - 1
    }

    pub(super) fn tree(&self) -> &[Node] {
        &self.history[self.now()]
    }

    /// The path of a node from the mount's root, for messages.
    pub(super) fn path(&self, mut id: Id) -> String {
        let mut parts = Vec::new();
        while id != 0 {
            parts.push(self.tree()[id].name().to_string());
            id = self.tree()[id].parent();
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }

    /// The nodes from the top folder down to `id`.
    pub(super) fn ancestry(&self, mut id: Id) -> Vec<Id> {
        let mut out = Vec::new();
        while id != 0 {
            out.push(id);
            id = self.tree()[id].parent();
        }
        out.reverse();
        out
    }

    /// Folders (the root included) in creation order.
    pub(super) fn folders(&self) -> Vec<Id> {
        (0..self.tree().len())
            .filter(|&i| matches!(self.tree()[i], Node::Folder { .. }))
            .collect()
    }

    /// Items not removed for good, in creation order.
    pub(super) fn items(&self) -> Vec<Id> {
        (0..self.tree().len())
            .filter(|&i| matches!(self.tree()[i], Node::File { removed: false, .. }))
            .collect()
    }

    /// A new version's bytes: `size`, made unique among all versions, of bytes no other
    /// version has at the same offsets.
    pub(super) fn new_version(&mut self, item: Id, number: u32, size: u32) -> usize {
        let mut size = u64::from(size.max(1));
        while self.by_size.contains_key(&size) {
            size += 1;
        }
        let v = self.versions.len();
        // Xorshift, eight bytes at a time: megabytes cost little even unoptimised.
        let mut x = (v as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut bytes = Vec::with_capacity(size as usize + 8);
        while (bytes.len() as u64) < size {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        bytes.truncate(size as usize);
        self.versions.push(Version {
            item,
            number,
            bytes: bytes.into(),
        });
        self.by_size.insert(size, v);
        v
    }
}

/// The remote id of a folder node.
pub(super) fn folder_id(id: Id) -> String {
    if id == 1 {
        TOP.to_string()
    } else {
        format!("d{id}")
    }
}

/// The remote id of an item node.
pub(super) fn item_id(id: Id) -> String {
    format!("i{id}")
}

/// How an item leaves its folder.
#[derive(Clone, Copy, Debug)]
pub(super) enum Removal {
    /// Removed for good (the service answers 404 for it).
    Remove,
    /// Soft-deleted: still listed, flagged hidden.
    Hide,
    /// Deleted: a tombstone version is its tip.
    Tombstone,
}

/// Builds the account both in the remote and in the model: the top folder with two files and
/// a folder holding one more.
pub(super) fn account(rollups: bool) -> (Arc<MemoryRemote>, Model) {
    let remote = Arc::new(MemoryRemote::with_project());
    if rollups {
        remote.track_rollups();
    }
    let root = Node::Folder {
        name: String::new(),
        parent: 0,
        hidden: false,
        children: vec![1],
    };
    let top = Node::Folder {
        name: TOP_NAME.into(),
        parent: 0,
        hidden: false,
        children: Vec::new(),
    };
    let mut model = Model {
        history: vec![vec![root, top]],
        versions: Vec::new(),
        by_size: HashMap::new(),
    };
    add_item(&remote, &mut model, 1, 700, true);
    add_item(&remote, &mut model, 1, 3000, false);
    let sub = add_folder(&remote, &mut model, 1);
    add_item(&remote, &mut model, sub, 100_000, true);
    // The mount starts here: only the account as it is now was ever there to be seen.
    let now = model.tree().to_vec();
    model.history = vec![now];
    (remote, model)
}

/// Adds a new epoch made by `change` from the current one.
pub(super) fn change(model: &mut Model, change: impl FnOnce(&mut Vec<Node>)) {
    let mut tree = model.tree().to_vec();
    change(&mut tree);
    model.history.push(tree);
}

/// Adds an item of about `size` bytes at the end of `folder`.
pub(super) fn add_item(
    remote: &MemoryRemote,
    model: &mut Model,
    folder: Id,
    size: u32,
    listed: bool,
) {
    let id = model.tree().len();
    let name = format!("f{id}.bin");
    let v = model.new_version(id, 1, size);
    remote.add_file(
        &folder_id(folder),
        &item_id(id),
        &name,
        &model.versions[v].bytes,
    );
    remote.set_size_listed(&item_id(id), listed);
    change(model, |t| {
        t.push(Node::File {
            name,
            parent: folder,
            tip: Some(v),
            hidden: false,
            removed: false,
        });
        if let Node::Folder { children, .. } = &mut t[folder] {
            children.push(id);
        }
    });
}

/// Adds a folder at the end of `parent`.
pub(super) fn add_folder(remote: &MemoryRemote, model: &mut Model, parent: Id) -> Id {
    let id = model.tree().len();
    let name = format!("d{id}");
    remote.add_folder(&folder_id(parent), folder_info(&folder_id(id), &name));
    change(model, |t| {
        t.push(Node::Folder {
            name,
            parent,
            hidden: false,
            children: Vec::new(),
        });
        if let Node::Folder { children, .. } = &mut t[parent] {
            children.push(id);
        }
    });
    id
}

/// Uploads a new version of `item` of about `size` bytes.
pub(super) fn upload(remote: &MemoryRemote, model: &mut Model, item: Id, size: u32, listed: bool) {
    // The number the remote gives it is the model's to check attributes with.
    let v = model.new_version(item, 0, size);
    let info = remote.upload(&item_id(item), &model.versions[v].bytes);
    model.versions[v].number = info.number;
    remote.set_size_listed(&item_id(item), listed);
    change(model, |t| {
        if let Node::File { tip, .. } = &mut t[item] {
            *tip = Some(v);
        }
    });
}

/// Takes `item` out of its folder, `how` the service does.
pub(super) fn remove_item(remote: &MemoryRemote, model: &mut Model, item: Id, how: Removal) {
    let id = item_id(item);
    match how {
        Removal::Remove => remote.remove(&id),
        Removal::Hide => remote.set_hidden(&id, true),
        Removal::Tombstone => remote.tombstone(&id),
    }
    change(model, |t| {
        if let Node::File {
            tip,
            hidden,
            removed,
            ..
        } = &mut t[item]
        {
            match how {
                Removal::Remove => *removed = true,
                Removal::Hide => *hidden = true,
                Removal::Tombstone => *tip = None,
            }
        }
    });
}

/// Hides (soft-deletes) a folder.
pub(super) fn hide_folder(remote: &MemoryRemote, model: &mut Model, folder: Id) {
    remote.set_hidden(&folder_id(folder), true);
    change(model, |t| {
        if let Node::Folder { hidden, .. } = &mut t[folder] {
            *hidden = true;
        }
    });
}
