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
            },
        );
        self.folders
            .get_mut(&parent)?
            .children
            .push(Node::Item(uid));
        self.touch(parent, at);
        Some(uid)
    }

    /// Appends a version to an item (its number is set here); returns the new number.
    pub(crate) fn add_version(&mut self, item: Uid, mut v: Version) -> Option<u32> {
        let it = self.items.get_mut(&item)?;
        v.number = u32::try_from(it.versions.len() + 1).ok()?;
        let at = v.modified.ms;
        let n = v.number;
        it.hidden = v.kind == VersionKind::Deleted;
        it.versions.push(v);
        let parent = it.parent;
        self.touch(parent, at);
        Some(n)
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
