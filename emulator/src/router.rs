//! Maps a method and path to a route: one table that also names the route for the request
//! counters and says which documented rate limit it falls under.
//!
//! Ids are percent-decoded exactly once per segment, so `urn%3Aadsk…` and raw `urn:adsk…`
//! folder ids, and `%3Fversion%3D2` or `%3Fversion=2` version ids, all reach the same route.

use axum::http::Method;
use percent_encoding::percent_decode_str;

/// What kind of resource a refs route hangs off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `folders/:id/...`
    Folder,
    /// `items/:id/...`
    Item,
    /// `versions/:id/...`
    Version,
}

/// Every endpoint the emulator answers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Route {
    Token,
    Authorize,
    Revoke,
    Introspect,
    UserInfo,
    Hubs,
    Hub {
        hub: String,
    },
    Projects {
        hub: String,
    },
    Project {
        hub: String,
        project: String,
    },
    ProjectHub {
        hub: String,
        project: String,
    },
    TopFolders {
        hub: String,
        project: String,
    },
    Folder {
        project: String,
        id: String,
    },
    FolderContents {
        project: String,
        id: String,
    },
    FolderParent {
        project: String,
        id: String,
    },
    Item {
        project: String,
        id: String,
    },
    ItemTip {
        project: String,
        id: String,
    },
    ItemVersions {
        project: String,
        id: String,
    },
    ItemParent {
        project: String,
        id: String,
    },
    Version {
        project: String,
        id: String,
    },
    VersionItem {
        project: String,
        id: String,
    },
    Refs {
        project: String,
        kind: Kind,
        id: String,
    },
    RelRefs {
        project: String,
        kind: Kind,
        id: String,
    },
    RelLinks {
        project: String,
        kind: Kind,
        id: String,
    },
    CreateRef {
        project: String,
        kind: Kind,
        id: String,
    },
    CreateStorage {
        project: String,
    },
    CreateItem {
        project: String,
    },
    CreateVersion {
        project: String,
    },
    CreateFolder {
        project: String,
    },
    /// `PATCH folders/:id`: rename, move, hide or restore a folder.
    PatchFolder {
        project: String,
        id: String,
    },
    /// `PATCH items/:id`: a new `displayName` (team hubs only).
    PatchItem {
        project: String,
        id: String,
    },
    /// `PATCH versions/:id`: a new `name` (team hubs only).
    PatchVersion {
        project: String,
        id: String,
    },
    Buckets,
    CreateBucket,
    BucketDetails {
        bucket: String,
    },
    DeleteBucket {
        bucket: String,
    },
    Objects {
        bucket: String,
    },
    ObjectDetails {
        bucket: String,
        key: String,
    },
    SignedDownload {
        bucket: String,
        key: String,
    },
    /// `POST …/objects/batchsigneds3download`: signed URLs for up to 25 objects.
    BatchSignedDownload {
        bucket: String,
    },
    SignedUploadStart {
        bucket: String,
        key: String,
    },
    SignedUploadComplete {
        bucket: String,
        key: String,
    },
    ObjectGet {
        bucket: String,
        key: String,
    },
    ObjectDelete {
        bucket: String,
        key: String,
    },
    /// A signed storage URL (S3 stand-in); needs no token.
    SignedGet {
        bucket: String,
        key: String,
    },
    /// A signed upload part URL; needs no token.
    SignedPut {
        upload: String,
    },
    Stats,
    ResetStats,
    Clock,
    Faults,
    /// `PUT`/`DELETE /__emulator/reservations/:item`: lock or unlock an item for a user.
    Reservation {
        item: String,
    },
    /// `GET`/`PUT /__emulator/projects/:project`: a project's access (read-only or not).
    ProjectAccess {
        project: String,
    },
    /// Nothing matched (or a malformed path).
    Unknown,
}

/// The [`Route::key`] of every endpoint of the API (not the control routes, not an unknown
/// path), so `route_faults` can refuse a name that would never match: a typo would otherwise
/// inject nothing, silently.
pub const ROUTE_KEYS: [&str; 45] = [
    "token",
    "authorize",
    "revoke",
    "introspect",
    "userinfo",
    "hubs",
    "hub",
    "projects",
    "project",
    "project_hub",
    "top_folders",
    "folder",
    "folder_contents",
    "folder_parent",
    "item",
    "item_tip",
    "item_versions",
    "item_parent",
    "version",
    "version_item",
    "refs",
    "relationships_refs",
    "relationships_links",
    "create_ref",
    "create_storage",
    "create_item",
    "create_version",
    "create_folder",
    "patch_folder",
    "patch_item",
    "patch_version",
    "buckets",
    "create_bucket",
    "bucket_details",
    "delete_bucket",
    "objects",
    "object_details",
    "signeds3download",
    "batchsigneds3download",
    "signeds3upload",
    "signeds3upload_complete",
    "object_get",
    "object_delete",
    "signed_get",
    "signed_put",
];

/// Path prefix of the emulator's own signed download URLs.
pub const SIGNED_PREFIX: &str = "/__s3/";
/// Path prefix of the emulator's signed upload-part URLs.
pub const UPLOAD_PREFIX: &str = "/__s3-upload/";

impl Route {
    /// Parses a request line. The raw path is split on `/` before decoding so an encoded `%2F`
    /// stays inside its segment.
    pub fn parse(method: &Method, raw_path: &str) -> Route {
        let segs: Option<Vec<String>> = raw_path
            .trim_start_matches('/')
            .split('/')
            .map(|s| {
                percent_decode_str(s)
                    .decode_utf8()
                    .ok()
                    .map(|c| c.into_owned())
            })
            .collect();
        let Some(segs) = segs else {
            return Route::Unknown;
        };
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        let m = method;
        let get = m == Method::GET || m == Method::HEAD;
        let post = m == Method::POST;
        let o = |x: &str| x.to_string();
        use Route::*;
        match s.as_slice() {
            ["authentication", "v2", "token"] if post => Token,
            ["authentication", "v2", "authorize"] if get => Authorize,
            ["authentication", "v2", "revoke"] if post => Revoke,
            ["authentication", "v2", "introspect"] if post => Introspect,
            ["userinfo"] if get => UserInfo,
            ["project", "v1", "hubs"] if get => Hubs,
            ["project", "v1", "hubs", h] if get => Hub { hub: o(h) },
            ["project", "v1", "hubs", h, "projects"] if get => Projects { hub: o(h) },
            ["project", "v1", "hubs", h, "projects", p] if get => Project {
                hub: o(h),
                project: o(p),
            },
            ["project", "v1", "hubs", h, "projects", p, "hub"] if get => ProjectHub {
                hub: o(h),
                project: o(p),
            },
            ["project", "v1", "hubs", h, "projects", p, "topFolders"] if get => TopFolders {
                hub: o(h),
                project: o(p),
            },
            ["data", "v1", "projects", p, rest @ ..] => data_route(m, o(p), rest),
            ["oss", "v2", "buckets"] if get => Buckets,
            ["oss", "v2", "buckets"] if post => CreateBucket,
            ["oss", "v2", "buckets", b, "details"] if get => BucketDetails { bucket: o(b) },
            ["oss", "v2", "buckets", b] if m == Method::DELETE => DeleteBucket { bucket: o(b) },
            ["oss", "v2", "buckets", b, "objects"] if get => Objects { bucket: o(b) },
            ["oss", "v2", "buckets", b, "objects", rest @ ..] if !rest.is_empty() => {
                object_route(m, o(b), rest)
            }
            ["__s3", b, rest @ ..] if get && !rest.is_empty() => SignedGet {
                bucket: o(b),
                key: rest.join("/"),
            },
            ["__s3-upload", u] if m == Method::PUT => SignedPut { upload: o(u) },
            ["__emulator", "stats"] if get => Stats,
            ["__emulator", "reset-stats"] if post => ResetStats,
            ["__emulator", "clock"] if post => Clock,
            ["__emulator", "faults"] if m == Method::PUT || get => Faults,
            ["__emulator", "reservations", i] if m == Method::PUT || m == Method::DELETE => {
                Reservation { item: o(i) }
            }
            ["__emulator", "projects", p] if m == Method::PUT || get => {
                ProjectAccess { project: o(p) }
            }
            _ => Unknown,
        }
    }

    /// Counter name reported by `/__emulator/stats`. The Data writes (creates and PATCHes) and
    /// the upload steps all count as `upload`, so one counter says whether a file or folder was
    /// written, renamed, moved or deleted.
    pub fn name(&self) -> &'static str {
        use Route::*;
        match self {
            Token => "token",
            Hubs => "hubs",
            Hub { .. } => "hub",
            Projects { .. } => "projects",
            Project { .. } => "project",
            TopFolders { .. } => "top_folders",
            Folder { .. } => "folder",
            FolderContents { .. } => "folder_contents",
            Item { .. } => "item",
            ItemTip { .. } => "item_tip",
            ItemVersions { .. } => "item_versions",
            Version { .. } => "version",
            Refs { .. } | RelRefs { .. } | RelLinks { .. } | CreateRef { .. } => "refs",
            Buckets | CreateBucket | BucketDetails { .. } | DeleteBucket { .. } => "buckets",
            Objects { .. } => "objects",
            ObjectDetails { .. } => "object_details",
            SignedDownload { .. } => "signeds3download",
            BatchSignedDownload { .. } => "batchsigneds3download",
            SignedGet { .. } => "signed_get",
            CreateStorage { .. }
            | CreateItem { .. }
            | CreateVersion { .. }
            | CreateFolder { .. }
            | PatchFolder { .. }
            | PatchItem { .. }
            | PatchVersion { .. }
            | SignedUploadStart { .. }
            | SignedUploadComplete { .. }
            | SignedPut { .. } => "upload",
            _ => "other",
        }
    }

    /// The stable name of this one endpoint: the key of the stats' `routes` counters and of
    /// `route_faults`. It equals [`Route::name`] wherever that names one endpoint alone.
    pub fn key(&self) -> &'static str {
        use Route::*;
        match self {
            Authorize => "authorize",
            Revoke => "revoke",
            Introspect => "introspect",
            UserInfo => "userinfo",
            ProjectHub { .. } => "project_hub",
            FolderParent { .. } => "folder_parent",
            ItemParent { .. } => "item_parent",
            VersionItem { .. } => "version_item",
            RelRefs { .. } => "relationships_refs",
            RelLinks { .. } => "relationships_links",
            CreateRef { .. } => "create_ref",
            CreateStorage { .. } => "create_storage",
            CreateItem { .. } => "create_item",
            CreateVersion { .. } => "create_version",
            CreateFolder { .. } => "create_folder",
            PatchFolder { .. } => "patch_folder",
            PatchItem { .. } => "patch_item",
            PatchVersion { .. } => "patch_version",
            CreateBucket => "create_bucket",
            BucketDetails { .. } => "bucket_details",
            DeleteBucket { .. } => "delete_bucket",
            SignedUploadStart { .. } => "signeds3upload",
            SignedUploadComplete { .. } => "signeds3upload_complete",
            SignedPut { .. } => "signed_put",
            ObjectGet { .. } => "object_get",
            ObjectDelete { .. } => "object_delete",
            Stats | ResetStats | Clock | Faults | Reservation { .. } | ProjectAccess { .. } => {
                "control"
            }
            Unknown => "unknown",
            _ => self.name(),
        }
    }

    /// Data and OSS requests that change something (a storage placeholder, an item, a version,
    /// a folder, a ref, an upload session, a rename or move): `drop_rate` loses their answer
    /// after the change is made, as a connection lost on the way back would.
    pub fn is_write(&self) -> bool {
        use Route::*;
        matches!(
            self,
            CreateStorage { .. }
                | CreateItem { .. }
                | CreateVersion { .. }
                | CreateFolder { .. }
                | CreateRef { .. }
                | PatchFolder { .. }
                | PatchItem { .. }
                | PatchVersion { .. }
                | SignedUploadStart { .. }
                | SignedUploadComplete { .. }
        )
    }

    /// The documented per-app rate limit this route counts against: (bucket name, per minute).
    /// The endpoints one row of §11's table names share its bucket (`POST items` and `PATCH
    /// items` draw on one 50 a minute): the stricter reading of the table.
    pub fn rate_limit(&self) -> Option<(&'static str, u32)> {
        use Route::*;
        let by_kind = |k: &Kind, folder, item, version| match k {
            Kind::Folder => folder,
            Kind::Item => item,
            Kind::Version => version,
        };
        Some(match self {
            Token | Authorize | Introspect => ("auth", 500),
            Revoke => ("revoke", 100),
            Hubs | Hub { .. } => ("hubs", 50),
            Projects { .. } | Project { .. } | ProjectHub { .. } => ("projects", 50),
            TopFolders { .. } => ("top_folders", 300),
            CreateStorage { .. } => ("storage", 300),
            Folder { .. } => ("folder", 300),
            FolderContents { .. } => ("folder_contents", 300),
            FolderParent { .. } => ("folder_rel", 50),
            Item { .. } => ("item", 300),
            ItemTip { .. } => ("item_tip", 50),
            ItemVersions { .. } => ("item_versions", 800),
            ItemParent { .. } => ("item_rel", 50),
            Version { .. } => ("version", 300),
            VersionItem { .. } => ("version_rel", 50),
            Refs { kind, .. } => by_kind(
                kind,
                ("folder_rel", 50),
                ("item_refs", 300),
                ("version_rel", 50),
            ),
            RelRefs { kind, .. } | RelLinks { kind, .. } => by_kind(
                kind,
                ("folder_rel", 50),
                ("item_rel", 50),
                ("version_rel", 50),
            ),
            CreateRef { kind, .. } => by_kind(
                kind,
                ("folder_write", 50),
                ("item_write", 50),
                ("version_write", 50),
            ),
            CreateFolder { .. } | PatchFolder { .. } => ("folder_write", 50),
            CreateItem { .. } | PatchItem { .. } => ("item_write", 50),
            PatchVersion { .. } => ("version_write", 50),
            CreateVersion { .. } => ("version_create", 300),
            Buckets
            | CreateBucket
            | BucketDetails { .. }
            | DeleteBucket { .. }
            | Objects { .. }
            | ObjectDetails { .. }
            | SignedDownload { .. }
            | BatchSignedDownload { .. }
            | SignedUploadStart { .. }
            | SignedUploadComplete { .. }
            | ObjectGet { .. }
            | ObjectDelete { .. } => ("oss", 1000),
            _ => return None,
        })
    }

    /// Which error family answers for this route (OSS speaks `{"reason"}`).
    pub fn is_oss(&self) -> bool {
        self.rate_limit().is_some_and(|(b, _)| b == "oss")
    }

    /// Routes that need a bearer token.
    pub fn needs_token(&self) -> bool {
        use Route::*;
        !matches!(
            self,
            Token
                | Authorize
                | Revoke
                | Introspect
                | SignedGet { .. }
                | SignedPut { .. }
                | Stats
                | ResetStats
                | Clock
                | Faults
                | Reservation { .. }
                | ProjectAccess { .. }
                | Unknown
        )
    }

    /// Scopes of which the token must hold at least one. Reads need `data:read`, which
    /// `data:write` implies (`Grant::allows`); `data:create` alone only creates.
    pub fn scopes(&self) -> &'static [&'static str] {
        use Route::*;
        match self {
            Buckets | BucketDetails { .. } => &["bucket:read", "viewables:read"],
            CreateBucket => &["bucket:create"],
            DeleteBucket { .. } => &["bucket:delete"],
            UserInfo => &["user-profile:read", "user:read", "data:read"],
            CreateStorage { .. }
            | CreateItem { .. }
            | CreateVersion { .. }
            | CreateFolder { .. }
            | CreateRef { .. }
            | SignedUploadStart { .. }
            | SignedUploadComplete { .. } => &["data:create", "data:write"],
            ObjectDelete { .. } | PatchFolder { .. } | PatchItem { .. } | PatchVersion { .. } => {
                &["data:write"]
            }
            _ => &["data:read"],
        }
    }

    /// Authenticated routes that answer JSON (every route needing a token except the legacy
    /// byte download): the ones the `redirect` and `endless_json` knobs act on.
    pub fn is_json_api(&self) -> bool {
        self.needs_token() && !matches!(self, Route::ObjectGet { .. })
    }

    /// Internal control routes that faults and counters leave alone.
    pub fn is_control(&self) -> bool {
        matches!(
            self,
            Route::Stats
                | Route::ResetStats
                | Route::Clock
                | Route::Faults
                | Route::Reservation { .. }
                | Route::ProjectAccess { .. }
        )
    }
}

fn data_route(m: &Method, project: String, rest: &[&str]) -> Route {
    use Route::*;
    let get = m == Method::GET || m == Method::HEAD;
    let post = m == Method::POST;
    let patch = m == Method::PATCH;
    let kind = |k: &str| match k {
        "folders" => Some(Kind::Folder),
        "items" => Some(Kind::Item),
        "versions" => Some(Kind::Version),
        _ => None,
    };
    let o = |x: &str| x.to_string();
    match rest {
        ["storage"] if post => CreateStorage { project },
        ["items"] if post => CreateItem { project },
        ["versions"] if post => CreateVersion { project },
        ["folders"] if post => CreateFolder { project },
        ["folders", id] if get => Folder { project, id: o(id) },
        ["folders", id] if patch => PatchFolder { project, id: o(id) },
        ["items", id] if patch => PatchItem { project, id: o(id) },
        ["versions", id] if patch => PatchVersion { project, id: o(id) },
        ["folders", id, "contents"] if get => FolderContents { project, id: o(id) },
        ["folders", id, "parent"] if get => FolderParent { project, id: o(id) },
        ["items", id] if get => Item { project, id: o(id) },
        ["items", id, "tip"] if get => ItemTip { project, id: o(id) },
        ["items", id, "versions"] if get => ItemVersions { project, id: o(id) },
        ["items", id, "parent"] if get => ItemParent { project, id: o(id) },
        ["versions", id] if get => Version { project, id: o(id) },
        ["versions", id, "item"] if get => VersionItem { project, id: o(id) },
        [k, id, "refs"] if get && kind(k).is_some() => Refs {
            project,
            kind: kind(k).unwrap_or(Kind::Folder),
            id: o(id),
        },
        [k, id, "relationships", "refs"] if kind(k).is_some() => {
            let kind = kind(k).unwrap_or(Kind::Folder);
            if post {
                CreateRef {
                    project,
                    kind,
                    id: o(id),
                }
            } else if get {
                RelRefs {
                    project,
                    kind,
                    id: o(id),
                }
            } else {
                Unknown
            }
        }
        [k, id, "relationships", "links"] if get && kind(k).is_some() => RelLinks {
            project,
            kind: kind(k).unwrap_or(Kind::Folder),
            id: o(id),
        },
        _ => Unknown,
    }
}

/// Object routes: the key may arrive encoded (`a%2Fb`) or with raw slashes (`a/b`), so the
/// operation is read from the end of the path.
fn object_route(m: &Method, bucket: String, rest: &[&str]) -> Route {
    use Route::*;
    let get = m == Method::GET || m == Method::HEAD;
    let (last, init) = match rest.split_last() {
        Some((l, i)) => (*l, i),
        None => return Unknown,
    };
    let key_of = |parts: &[&str]| parts.join("/");
    match last {
        // Only a POST straight under `objects/`: a GET of an object named so is still that object.
        "batchsigneds3download" if m == Method::POST && init.is_empty() => {
            BatchSignedDownload { bucket }
        }
        "details" if get && !init.is_empty() => ObjectDetails {
            bucket,
            key: key_of(init),
        },
        "signeds3download" if get && !init.is_empty() => SignedDownload {
            bucket,
            key: key_of(init),
        },
        "signeds3upload" if get && !init.is_empty() => SignedUploadStart {
            bucket,
            key: key_of(init),
        },
        "signeds3upload" if m == Method::POST && !init.is_empty() => SignedUploadComplete {
            bucket,
            key: key_of(init),
        },
        _ if get => ObjectGet {
            bucket,
            key: key_of(rest),
        },
        _ if m == Method::DELETE => ObjectDelete {
            bucket,
            key: key_of(rest),
        },
        _ => Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(p: &str) -> Route {
        Route::parse(&Method::GET, p)
    }

    #[test]
    fn decodes_ids_once() {
        let raw = get("/data/v1/projects/b.1/folders/urn:adsk.wipprod:fs.folder:co.X/contents");
        let enc =
            get("/data/v1/projects/b.1/folders/urn%3Aadsk.wipprod%3Afs.folder%3Aco.X/contents");
        assert_eq!(raw, enc);
        assert_eq!(raw.name(), "folder_contents");
        let v1 =
            get("/data/v1/projects/b.1/versions/urn%3Aadsk.wipprod%3Afs.file%3Avf.X%3Fversion%3D2");
        let v2 = get("/data/v1/projects/b.1/versions/urn:adsk.wipprod:fs.file:vf.X%3Fversion=2");
        assert_eq!(v1, v2);
        assert!(matches!(v1, Route::Version { ref id, .. } if id.ends_with("?version=2")));
    }

    #[test]
    fn object_keys_with_slashes() {
        let a = get("/oss/v2/buckets/bk/objects/a%2Fb.txt/details");
        let b = get("/oss/v2/buckets/bk/objects/a/b.txt/details");
        assert_eq!(a, b);
        assert_eq!(
            get("/oss/v2/buckets/bk/objects/a/b.txt"),
            Route::ObjectGet {
                bucket: "bk".into(),
                key: "a/b.txt".into()
            }
        );
        assert_eq!(
            get("/oss/v2/buckets/bk/objects/x/signeds3download").name(),
            "signeds3download"
        );
        assert_eq!(get("/nope"), Route::Unknown);
    }

    #[test]
    fn every_endpoint_has_a_key_of_its_own() {
        let (p, f, i, v) = (
            "/data/v1/projects/b.1",
            "folders/F",
            "items/I",
            "versions/V",
        );
        let o = "/oss/v2/buckets/bk/objects/k";
        let h = "/project/v1/hubs/h";
        let cases = [
            (Method::POST, "/authentication/v2/token".to_string()),
            (Method::GET, "/authentication/v2/authorize".into()),
            (Method::POST, "/authentication/v2/revoke".into()),
            (Method::POST, "/authentication/v2/introspect".into()),
            (Method::GET, "/userinfo".into()),
            (Method::GET, "/project/v1/hubs".into()),
            (Method::GET, h.into()),
            (Method::GET, format!("{h}/projects")),
            (Method::GET, format!("{h}/projects/b.1")),
            (Method::GET, format!("{h}/projects/b.1/hub")),
            (Method::GET, format!("{h}/projects/b.1/topFolders")),
            (Method::GET, format!("{p}/{f}")),
            (Method::GET, format!("{p}/{f}/contents")),
            (Method::GET, format!("{p}/{f}/parent")),
            (Method::GET, format!("{p}/{i}")),
            (Method::GET, format!("{p}/{i}/tip")),
            (Method::GET, format!("{p}/{i}/versions")),
            (Method::GET, format!("{p}/{i}/parent")),
            (Method::GET, format!("{p}/{v}")),
            (Method::GET, format!("{p}/{v}/item")),
            (Method::GET, format!("{p}/{v}/refs")),
            (Method::GET, format!("{p}/{v}/relationships/refs")),
            (Method::GET, format!("{p}/{v}/relationships/links")),
            (Method::POST, format!("{p}/{v}/relationships/refs")),
            (Method::POST, format!("{p}/storage")),
            (Method::POST, format!("{p}/items")),
            (Method::POST, format!("{p}/versions")),
            (Method::POST, format!("{p}/folders")),
            (Method::PATCH, format!("{p}/{f}")),
            (Method::PATCH, format!("{p}/{i}")),
            (Method::PATCH, format!("{p}/{v}")),
            (Method::GET, "/oss/v2/buckets".into()),
            (Method::POST, "/oss/v2/buckets".into()),
            (Method::GET, "/oss/v2/buckets/bk/details".into()),
            (Method::DELETE, "/oss/v2/buckets/bk".into()),
            (Method::GET, "/oss/v2/buckets/bk/objects".into()),
            (Method::GET, format!("{o}/details")),
            (Method::GET, format!("{o}/signeds3download")),
            (
                Method::POST,
                "/oss/v2/buckets/bk/objects/batchsigneds3download".into(),
            ),
            (Method::GET, format!("{o}/signeds3upload")),
            (Method::POST, format!("{o}/signeds3upload")),
            (Method::GET, o.into()),
            (Method::DELETE, o.into()),
            (Method::GET, "/__s3/bk/k".into()),
            (Method::PUT, "/__s3-upload/u".into()),
        ];
        let keys: std::collections::BTreeSet<&str> = cases
            .iter()
            .map(|(m, path)| Route::parse(m, path).key())
            .collect();
        assert_eq!(keys.len(), ROUTE_KEYS.len(), "one key per endpoint");
        assert!(keys.iter().all(|k| ROUTE_KEYS.contains(k)), "{keys:?}");
        let write = |path: &str| Route::parse(&Method::POST, path);
        assert_eq!(write(&format!("{p}/versions")).name(), "upload");
        assert!(write(&format!("{p}/versions")).is_write());
        assert!(!Route::parse(&Method::PUT, "/__s3-upload/u").is_write());
        for what in [f, i, v] {
            let patch = Route::parse(&Method::PATCH, &format!("{p}/{what}"));
            assert!(patch.is_write(), "{patch:?}");
            assert_eq!(patch.name(), "upload");
            assert_eq!(patch.scopes(), &["data:write"]);
            assert_eq!(patch.rate_limit().map(|(_, n)| n), Some(50));
        }
        assert_eq!(
            Route::parse(&Method::PATCH, &format!("{p}/{f}/contents")),
            Route::Unknown
        );
        let lock = Route::parse(&Method::PUT, "/__emulator/reservations/urn%3Ax");
        assert_eq!(
            lock,
            Route::Reservation {
                item: "urn:x".into()
            }
        );
        assert!(lock.is_control() && !lock.needs_token());
        assert!(Route::parse(&Method::PUT, "/__emulator/projects/b.1").is_control());
    }

    #[test]
    fn batch_download_is_one_oss_request_of_its_own() {
        let batch = Route::parse(
            &Method::POST,
            "/oss/v2/buckets/bk/objects/batchsigneds3download",
        );
        assert_eq!(
            batch,
            Route::BatchSignedDownload {
                bucket: "bk".into()
            }
        );
        assert_eq!(batch.name(), "batchsigneds3download");
        assert_eq!(batch.rate_limit(), Some(("oss", 1000)));
        assert_eq!(batch.scopes(), &["data:read"]);
        assert!(batch.needs_token());
        assert!(matches!(
            get("/oss/v2/buckets/bk/objects/batchsigneds3download"),
            Route::ObjectGet { .. }
        ));
        assert_eq!(get("/data/v1/projects/p/folders/%FF"), Route::Unknown);
    }
}
