//! The emulator's whole world in memory: hubs, projects, folders, items, versions, buckets and
//! objects, indexed the way the routes look them up.
//!
//! Object bytes are never held here for seeded or generated content, only a `Content` that says
//! where to stream them from, so memory follows metadata, not file sizes.

use super::clock::Stamp;
use super::content::Content;
use super::ids::Uid;
use std::collections::{BTreeMap, HashMap};

/// Bucket that holds every Data Management file, as in production (US region).
pub const DM_BUCKET: &str = "wip.dm.prod";
/// Owner recorded for the Data Management bucket; no app may list it.
pub const DM_OWNER: &str = "autodesk-data-management";

/// Which kind of account a hub is; it decides the extension types everything below carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// BIM 360 Docs / ACC account (`b.` ids, `autodesk.bim360` types).
    Bim360,
    /// Fusion Team / BIM 360 Team hub (`a.` ids, `autodesk.core` types).
    Team,
}

impl Flavor {
    /// `b.<uuid>` for BIM 360 accounts and projects, `a.<token>` for team ones, as production
    /// has, derived from `kind` and `key`.
    pub fn account_id(self, kind: &str, key: &str) -> String {
        let uid = Uid::derive(kind, key);
        match self {
            Flavor::Bim360 => format!("b.{}", uid.uuid()),
            Flavor::Team => format!("a.{}", uid.token()),
        }
    }
}

/// A hub (account).
pub struct Hub {
    /// `b.<uuid>` or `a.<token>`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Account kind.
    pub flavor: Flavor,
    /// Projects in listing order (indexes into `Store::projects`).
    pub projects: Vec<usize>,
}

/// A project and where its folder tree starts.
pub struct Project {
    /// `b.<uuid>` or `a.<token>`.
    pub id: String,
    /// Index of the owning hub.
    pub hub: usize,
    /// Display name.
    pub name: String,
    /// The root folder; its children are the top folders.
    pub root: Uid,
    /// Emit root-relative hrefs inside resources (some official examples do).
    pub relative_links: bool,
    /// Every write into the project is refused with 403 (a viewer's role), set through
    /// `PUT /__emulator/projects/:project`, so a client's handling of a read-only project
    /// can be tested; reads are unaffected.
    pub read_only: bool,
}

/// A child of a folder, in listing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// A sub-folder.
    Folder(Uid),
    /// An item.
    Item(Uid),
}

/// A folder.
pub struct Folder {
    /// Id token.
    pub uid: Uid,
    /// Owning project index.
    pub project: usize,
    /// `None` for a project's root folder.
    pub parent: Option<Uid>,
    /// Folder name.
    pub name: String,
    /// Soft-deleted (BIM 360).
    pub hidden: bool,
    /// Listed in its parent, but every request on it answers 403.
    pub forbidden: bool,
    /// Creation time.
    pub created: Stamp,
    /// Last change of the folder itself.
    pub modified: Stamp,
    /// Latest change of the folder or anything below it.
    pub rollup_ms: i64,
    /// Children in listing order.
    pub children: Vec<Node>,
}

/// What kind of item this is; decides its extension type and whether it has bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    /// A plain file.
    File,
    /// A Fusion design: versions have no storage.
    Design,
}

/// An item (lineage) with all its versions, oldest first.
pub struct Item {
    /// Lineage token (shared with its version ids).
    pub uid: Uid,
    /// Owning project index.
    pub project: usize,
    /// Parent folder.
    pub parent: Uid,
    /// Soft-deleted (BIM 360).
    pub hidden: bool,
    /// Locked by a user: new versions are refused with 423 for anyone else.
    pub reserved: Option<Reservation>,
    /// Item kind.
    pub kind: ItemKind,
    /// Versions, `versions[n-1]` is version n; the last is the tip.
    pub versions: Vec<Version>,
    /// The `displayName` a `PATCH items` gave it (team hubs), shown instead of the tip's name
    /// until the next version; the versions keep their own names, as history does.
    pub display_name: Option<String>,
    /// When that `PATCH items` was made: the item's `lastModifiedTime` while it is later than
    /// the tip's.
    pub renamed: Option<Stamp>,
}

/// Who reserved (locked) an item and when: the `reservedUserId`, `reservedUserName` and
/// `reservedTime` attributes, and the user `POST versions` must act as to get past the 423.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// `reservedUserId`.
    pub user_id: String,
    /// `reservedUserName`.
    pub user_name: String,
    /// `reservedTime`.
    pub since: Stamp,
}

impl Item {
    /// The newest version.
    pub fn tip(&self) -> Option<&Version> {
        self.versions.last()
    }

    /// The name the item goes by (its `displayName`, and what name clashes are checked
    /// against): the name a `PATCH items` gave it, else its tip's.
    pub fn name(&self) -> &str {
        match &self.display_name {
            Some(n) => n,
            None => self.tip().map(|t| t.name.as_str()).unwrap_or_default(),
        }
    }

    /// The item's `lastModifiedTime`: its tip's, or its rename's when that is later.
    pub fn modified(&self) -> Stamp {
        let tip = self.tip().map(|v| v.modified).unwrap_or_default();
        match self.renamed {
            Some(r) if r.ms > tip.ms => r,
            _ => tip,
        }
    }
}

/// What a version is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionKind {
    /// A file version with storage.
    File,
    /// A delete tombstone (`versions:autodesk.core:Deleted`), no storage.
    Deleted,
    /// A cloud design with no plain file behind it.
    Design,
}

/// One version of an item.
pub struct Version {
    /// 1-based number.
    pub number: u32,
    /// File name (`attributes.name`).
    pub name: String,
    /// Creation time.
    pub created: Stamp,
    /// Last modification.
    pub modified: Stamp,
    /// Version kind.
    pub kind: VersionKind,
    /// Object key in the Data Management bucket, when the version has bytes.
    pub storage: Option<String>,
    /// Byte size.
    pub size: u64,
    /// Whether `storageSize` is reported (several real examples omit it).
    pub size_listed: bool,
}

/// What an app may do with a bucket: the `access` values of a bucket's `allow` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Read details, list objects and download them.
    Read,
    /// Also upload and delete objects.
    Full,
}

impl Access {
    /// The wire spelling (`read`, `full`).
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Full => "full",
        }
    }

    /// Parses the wire spelling; `None` for anything else, which the create call refuses.
    pub fn parse(s: &str) -> Option<Access> {
        match s {
            "read" => Some(Access::Read),
            "full" => Some(Access::Full),
            _ => None,
        }
    }
}

/// An OSS bucket.
pub struct Bucket {
    /// Client id of the owning app.
    pub owner: String,
    /// `transient`, `temporary` or `persistent`.
    pub policy: String,
    /// Creation time in epoch ms.
    pub created_ms: i64,
    /// Region it was created in (`US`, `EMEA`, …); bucket listings are per region.
    pub region: String,
    /// Apps other than the owner granted access at creation (`allow`), in request order.
    pub allow: Vec<(String, Access)>,
    /// Marked for deletion: gone for every request, but its key is not reusable yet.
    pub deleted: bool,
    /// Objects by key (sorted, for `startAt` paging).
    pub objects: BTreeMap<String, Object>,
}

impl Bucket {
    /// A live bucket owned by `owner` with no other app allowed in.
    pub fn new(owner: String, policy: String, created_ms: i64, region: String) -> Bucket {
        Bucket {
            owner,
            policy,
            created_ms,
            region,
            allow: Vec::new(),
            deleted: false,
            objects: BTreeMap::new(),
        }
    }

    /// What `client` may do here: the owner everything, allowed apps what `allow` said.
    pub fn access(&self, client: &str) -> Option<Access> {
        if self.owner == client {
            return Some(Access::Full);
        }
        self.allow
            .iter()
            .find(|(id, _)| id == client)
            .map(|(_, a)| *a)
    }
}

/// An OSS object.
pub struct Object {
    /// Where its bytes come from; `None` for a storage placeholder not yet uploaded.
    pub content: Option<Content>,
    /// Creation time in epoch ms.
    pub created_ms: i64,
    /// Served `Content-Type`.
    pub content_type: String,
    /// Served as an unmerged resumable upload (`status: chunked`) by `signeds3download`.
    pub chunked: bool,
    /// The project whose `POST storage` made this placeholder, so uploads into a read-only
    /// project's storage are refused; `None` for objects not made that way.
    pub project: Option<usize>,
}

/// Why [`Store::move_folder`] refused a move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MoveError {
    /// The folder or the new parent does not exist.
    NotFound,
    /// The folder is a project's root folder, which has no parent to change.
    Root,
    /// The new parent is in another project.
    OtherProject,
    /// The new parent is the folder itself or lies below it: the tree would become a cycle.
    IntoItself,
}

/// A custom relationship between two resources (`refs`).
#[derive(Clone, Debug)]
pub struct Ref {
    /// Resource type of the source (`items`, `versions`, `folders`).
    pub from_type: &'static str,
    /// Source id.
    pub from_id: String,
    /// Resource type of the target.
    pub to_type: &'static str,
    /// Target id.
    pub to_id: String,
    /// `xrefs`, `auxiliary`, …
    pub ref_type: String,
    /// Extension type of the reference.
    pub extension: String,
}

/// Everything the emulator serves (hubs, projects, folders, items, versions, buckets, refs),
/// built before [`crate::run`] so a data set is complete when the first request arrives.
pub struct Store {
    /// Hubs in listing order.
    pub(crate) hubs: Vec<Hub>,
    /// Projects (all hubs).
    pub(crate) projects: Vec<Project>,
    /// Folders by id.
    pub(crate) folders: HashMap<Uid, Folder>,
    /// Items by id.
    pub(crate) items: HashMap<Uid, Item>,
    /// Buckets by key.
    pub(crate) buckets: BTreeMap<String, Bucket>,
    /// Custom relationships.
    pub(crate) refs: Vec<Ref>,
    /// Report a partial failure in `meta.warnings` of the hub list.
    pub(crate) hub_warnings: bool,
}

/// The same empty world as [`Store::new`], so no store lacks the Data Management bucket.
impl Default for Store {
    fn default() -> Store {
        Store::new()
    }
}

impl Store {
    /// An empty world with the Data Management bucket in place, ready to seed or generate into.
    pub fn new() -> Store {
        let mut s = Store {
            hubs: Vec::new(),
            projects: Vec::new(),
            folders: HashMap::new(),
            items: HashMap::new(),
            buckets: BTreeMap::new(),
            refs: Vec::new(),
            hub_warnings: false,
        };
        s.buckets.insert(
            DM_BUCKET.to_string(),
            Bucket::new(
                DM_OWNER.to_string(),
                "persistent".to_string(),
                1_420_070_400_000,
                "US".to_string(),
            ),
        );
        s
    }

    /// Adds a hub; returns its index.
    pub(crate) fn add_hub(&mut self, id: String, name: String, flavor: Flavor) -> usize {
        self.hubs.push(Hub {
            id,
            name,
            flavor,
            projects: Vec::new(),
        });
        self.hubs.len() - 1
    }

    /// Adds a project with an empty root folder; returns its index.
    pub(crate) fn add_project(&mut self, hub: usize, id: String, name: String, at: Stamp) -> usize {
        let index = self.projects.len();
        let root = Uid::derive("root", &id);
        self.folders.insert(
            root,
            Folder {
                uid: root,
                project: index,
                parent: None,
                name: format!("{name} root"),
                hidden: false,
                forbidden: false,
                created: at,
                modified: at,
                rollup_ms: at.ms,
                children: Vec::new(),
            },
        );
        self.projects.push(Project {
            id,
            hub,
            name,
            root,
            relative_links: false,
            read_only: false,
        });
        self.hubs[hub].projects.push(index);
        index
    }

    /// Adds a folder under `parent`; returns `None` when the parent does not exist.
    pub(crate) fn add_folder(
        &mut self,
        parent: Uid,
        uid: Uid,
        name: String,
        at: Stamp,
    ) -> Option<Uid> {
        let project = self.folders.get(&parent)?.project;
        self.folders.insert(
            uid,
            Folder {
                uid,
                project,
                parent: Some(parent),
                name,
                hidden: false,
                forbidden: false,
                created: at,
                modified: at,
                rollup_ms: at.ms,
                children: Vec::new(),
            },
        );
        self.folders
            .get_mut(&parent)?
            .children
            .push(Node::Folder(uid));
        self.touch(parent, at.ms);
        Some(uid)
    }

    /// Adds an item with its first version under `parent`.
    pub(crate) fn add_item(
        &mut self,
        parent: Uid,
        uid: Uid,
        kind: ItemKind,
        first: Version,
    ) -> Option<Uid> {
        let project = self.folders.get(&parent)?.project;
        let at = first.modified.ms;
        self.items.insert(
            uid,
            Item {
                uid,
                project,
                parent,
                hidden: false,
                reserved: None,
                kind,
                versions: vec![first],
                display_name: None,
                renamed: None,
            },
        );
        self.folders
            .get_mut(&parent)?
            .children
            .push(Node::Item(uid));
        self.touch(parent, at);
        Some(uid)
    }

    /// Appends a version to an item (its number is set here); returns the new number. The item
    /// then goes by the new tip's name again, whatever a `PATCH items` had named it.
    pub(crate) fn add_version(&mut self, item: Uid, mut v: Version) -> Option<u32> {
        let it = self.items.get_mut(&item)?;
        v.number = u32::try_from(it.versions.len() + 1).ok()?;
        let at = v.modified.ms;
        let n = v.number;
        it.hidden = v.kind == VersionKind::Deleted;
        it.display_name = None;
        it.renamed = None;
        it.versions.push(v);
        let parent = it.parent;
        self.touch(parent, at);
        Some(n)
    }

    /// Whether `folder` is `ancestor` itself or lies anywhere below it.
    pub(crate) fn is_within(&self, folder: Uid, ancestor: Uid) -> bool {
        let mut next = Some(folder);
        // Bounded by the folder count so a corrupt parent cycle cannot loop forever.
        for _ in 0..=self.folders.len() {
            match next {
                Some(u) if u == ancestor => return true,
                Some(u) => next = self.folders.get(&u).and_then(|f| f.parent),
                None => return false,
            }
        }
        false
    }

    /// Moves `folder` (with everything below it) to the end of `new_parent`'s children, as
    /// `PATCH folders` with a new `relationships.parent` does; `at` is the change's time (ms).
    /// Moving to the parent it already has changes nothing.
    pub(crate) fn move_folder(
        &mut self,
        folder: Uid,
        new_parent: Uid,
        at: i64,
    ) -> Result<(), MoveError> {
        let f = self.folders.get(&folder).ok_or(MoveError::NotFound)?;
        let old_parent = f.parent.ok_or(MoveError::Root)?;
        let target = self.folders.get(&new_parent).ok_or(MoveError::NotFound)?;
        if target.project != f.project {
            return Err(MoveError::OtherProject);
        }
        if self.is_within(new_parent, folder) {
            return Err(MoveError::IntoItself);
        }
        if old_parent == new_parent {
            return Ok(());
        }
        if let Some(old) = self.folders.get_mut(&old_parent) {
            old.children.retain(|n| *n != Node::Folder(folder));
        }
        if let Some(new) = self.folders.get_mut(&new_parent) {
            new.children.push(Node::Folder(folder));
        }
        if let Some(f) = self.folders.get_mut(&folder) {
            f.parent = Some(new_parent);
        }
        self.touch(old_parent, at);
        self.touch(folder, at);
        Ok(())
    }

    /// A bucket that exists and is not marked for deletion.
    pub(crate) fn bucket(&self, key: &str) -> Option<&Bucket> {
        self.buckets.get(key).filter(|b| !b.deleted)
    }

    /// Stores an object's bytes source in a live bucket (creating nothing else).
    pub(crate) fn put_object(&mut self, bucket: &str, key: String, object: Object) -> bool {
        match self.buckets.get_mut(bucket).filter(|b| !b.deleted) {
            Some(b) => {
                b.objects.insert(key, object);
                true
            }
            None => false,
        }
    }

    /// Looks an object up; a bucket marked for deletion holds none.
    pub(crate) fn object(&self, bucket: &str, key: &str) -> Option<&Object> {
        self.bucket(bucket)?.objects.get(key)
    }

    /// Raises `lastModifiedTimeRollup` of a folder and all its ancestors.
    pub(crate) fn touch(&mut self, mut folder: Uid, ms: i64) {
        while let Some(f) = self.folders.get_mut(&folder) {
            if f.rollup_ms < ms {
                f.rollup_ms = ms;
            }
            match f.parent {
                Some(p) => folder = p,
                None => break,
            }
        }
    }

    /// Finds a project by hub id and project id.
    pub(crate) fn project(&self, hub_id: &str, project_id: &str) -> Option<usize> {
        let hub = self.hubs.iter().find(|h| h.id == hub_id)?;
        hub.projects
            .iter()
            .copied()
            .find(|&p| self.projects[p].id == project_id)
    }

    /// Finds a project by id alone (Data API paths carry no hub).
    pub(crate) fn project_by_id(&self, project_id: &str) -> Option<usize> {
        self.projects.iter().position(|p| p.id == project_id)
    }

    /// Number of items, for the start-up log of `apsfs emulator`.
    pub fn item_count(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A project with `Root/A/B` and `Root/C`, and a second project's root: (store, [root, a,
    /// b, c, other root]).
    fn world() -> (Store, [Uid; 5]) {
        let mut s = Store::new();
        let at = Stamp::new(1_000);
        let h = s.add_hub("b.h".into(), "H".into(), Flavor::Bim360);
        let p = s.add_project(h, "b.p".into(), "P".into(), at);
        let q = s.add_project(h, "b.q".into(), "Q".into(), at);
        let root = s.projects[p].root;
        let other = s.projects[q].root;
        let a = s.add_folder(root, Uid::derive("f", "a"), "A".into(), at);
        let a = a.expect("a");
        let b = s.add_folder(a, Uid::derive("f", "b"), "B".into(), at);
        let c = s.add_folder(root, Uid::derive("f", "c"), "C".into(), at);
        (s, [root, a, b.expect("b"), c.expect("c"), other])
    }

    #[test]
    fn moving_a_folder_moves_it_between_the_children_lists() {
        let (mut s, [root, a, b, c, _]) = world();
        assert_eq!(s.move_folder(b, c, 5_000), Ok(()));
        assert_eq!(s.folders[&b].parent, Some(c));
        assert!(s.folders[&a].children.is_empty());
        assert_eq!(s.folders[&c].children, [Node::Folder(b)]);
        assert_eq!(s.folders[&a].rollup_ms, 5_000, "the old parent changed");
        assert_eq!(s.folders[&c].rollup_ms, 5_000, "the new parent changed");
        assert_eq!(s.folders[&root].rollup_ms, 5_000);
        // To the end of the new parent's list.
        assert_eq!(s.move_folder(a, c, 6_000), Ok(()));
        assert_eq!(s.folders[&c].children, [Node::Folder(b), Node::Folder(a)]);
        assert_eq!(s.folders[&root].children, [Node::Folder(c)]);
        // Its own parent again: nothing moves.
        assert_eq!(s.move_folder(a, c, 7_000), Ok(()));
        assert_eq!(s.folders[&c].children, [Node::Folder(b), Node::Folder(a)]);
    }

    #[test]
    fn moves_that_would_make_a_cycle_or_leave_the_project_are_refused() {
        let (mut s, [root, a, b, c, other]) = world();
        assert_eq!(s.move_folder(a, a, 1), Err(MoveError::IntoItself));
        assert_eq!(s.move_folder(a, b, 1), Err(MoveError::IntoItself));
        assert_eq!(s.move_folder(root, c, 1), Err(MoveError::Root));
        assert_eq!(s.move_folder(a, other, 1), Err(MoveError::OtherProject));
        assert_eq!(
            s.move_folder(a, Uid::derive("f", "nowhere"), 1),
            Err(MoveError::NotFound)
        );
        assert_eq!(s.folders[&b].parent, Some(a), "nothing moved");
        assert_eq!(
            s.folders[&root].children,
            [Node::Folder(a), Node::Folder(c)]
        );
        assert!(s.is_within(b, root) && s.is_within(b, a) && s.is_within(a, a));
        assert!(!s.is_within(a, b) && !s.is_within(c, a));
    }

    #[test]
    fn an_item_goes_by_its_patched_name_until_its_next_version() {
        let (mut s, [_, a, ..]) = world();
        let v = |name: &str, ms| Version {
            number: 0,
            name: name.into(),
            created: Stamp::new(ms),
            modified: Stamp::new(ms),
            kind: VersionKind::File,
            storage: None,
            size: 0,
            size_listed: true,
        };
        let uid = Uid::derive("i", "x");
        s.add_item(a, uid, ItemKind::File, v("x.txt", 10));
        let it = s.items.get_mut(&uid).expect("item");
        assert_eq!(it.name(), "x.txt");
        it.display_name = Some("y.txt".into());
        it.renamed = Some(Stamp::new(20));
        assert_eq!((it.name(), it.modified().ms), ("y.txt", 20));
        assert_eq!(it.tip().map(|t| t.name.as_str()), Some("x.txt"));
        s.add_version(uid, v("z.txt", 30));
        let it = &s.items[&uid];
        assert_eq!((it.name(), it.modified().ms), ("z.txt", 30));
        assert_eq!(it.display_name, None);
    }
}
