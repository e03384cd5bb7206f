//! Extended attributes: what the service knows about each node beyond bytes (ids, extension
//! types, versions, who changed it, reservations, refs, bucket policies), under `user.aps.*`.
//! Everything but refs and a bucket's owner was kept from the listing, so `listxattr` and most
//! `getxattr` calls cost no request; refs and owners are fetched on demand and kept for the
//! metadata TTL.

use super::error::Error;
use super::inode::{Kind, Node, OLDER_VERSIONS};
use super::namespace::Namespace;
use crate::api::oss::OBJECT_URN_PREFIX;
use crate::api::{RefInfo, Remote};
use crate::cache::ttl::TtlMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// Answers fetched on demand that are kept at most.
const MAX_KEPT: usize = 4096;

/// On-demand attribute values (refs, bucket owners) by inode and name, trusted for a TTL.
pub type OnDemand = TtlMap<(u64, &'static str), Arc<Vec<u8>>>;

const ID: &str = "user.aps.id";
const TYPE: &str = "user.aps.type";
const WEB_URL: &str = "user.aps.web_url";
const CREATED_BY: &str = "user.aps.created_by";
const MODIFIED_BY: &str = "user.aps.modified_by";
const RESERVED: &str = "user.aps.reserved";
const RESERVED_BY: &str = "user.aps.reserved_by";
const RESERVED_SINCE: &str = "user.aps.reserved_since";
const VERSION: &str = "user.aps.version";
const VERSION_ID: &str = "user.aps.version_id";
const STORAGE: &str = "user.aps.storage";
const REFS: &str = "user.aps.refs";
const SHA1: &str = "user.aps.sha1";
const BUCKET: &str = "user.aps.bucket";
const OBJECT_KEY: &str = "user.aps.object_key";
const POLICY: &str = "user.aps.policy";
const OWNER: &str = "user.aps.owner";
const CREATED: &str = "user.aps.created";

/// Whether a file node is an object of a bucket rather than a version of an item.
fn is_object(node: &Node) -> bool {
    node.id.starts_with(OBJECT_URN_PREFIX)
}

/// Values known without a request, in `listxattr` order; `None` for those fetched on demand.
fn known(node: &Node) -> Vec<(&'static str, Option<String>)> {
    let mut out = Vec::new();
    let mut later = Vec::new();
    let mut push = |name: &'static str, value: Option<String>| {
        if let Some(v) = value {
            out.push((name, Some(v)));
        }
    };
    let m = &node.meta;
    match &node.kind {
        Kind::Hubs | Kind::Versions { .. } | Kind::ItemVersions { .. } | Kind::Buckets { .. } => {}
        Kind::Hub { hub } => push(ID, Some(hub.clone())),
        Kind::Project { project, .. } => push(ID, Some(project.clone())),
        Kind::Folder { .. } => push(ID, Some(node.id.clone())),
        Kind::Objects {
            bucket,
            prefix,
            policy,
        } => {
            push(BUCKET, Some(bucket.clone()));
            if prefix.is_empty() {
                push(ID, Some(bucket.clone()));
                push(POLICY, Some(policy.to_string()));
                push(
                    CREATED,
                    node.created
                        .duration_since(UNIX_EPOCH)
                        .ok()
                        .map(|d| d.as_millis().to_string()),
                );
                later.push(OWNER);
            } else {
                push(OBJECT_KEY, Some(prefix.clone()));
            }
        }
        Kind::File { version } if is_object(node) => {
            if let Ok((bucket, key)) = crate::api::oss::split_storage(&version.storage) {
                push(BUCKET, Some(bucket.to_string()));
                push(OBJECT_KEY, Some(key.to_string()));
            }
            push(ID, Some(version.storage.clone()));
            push(STORAGE, Some(version.storage.clone()));
            push(SHA1, version.sha1.as_deref().map(String::from));
        }
        Kind::File { version } => {
            push(ID, Some(node.item().to_string()));
            push(VERSION, Some(version.number.to_string()));
            push(VERSION_ID, Some(version.id.clone()));
            push(STORAGE, Some(version.storage.clone()));
        }
    }
    push(TYPE, m.ext_type.as_deref().map(String::from));
    push(WEB_URL, m.web_url.as_deref().map(String::from));
    push(CREATED_BY, m.created_by.as_deref().map(String::from));
    push(MODIFIED_BY, m.modified_by.as_deref().map(String::from));
    if let Kind::File { .. } = &node.kind {
        if !is_object(node) {
            let r = m.reserved.as_deref();
            push(RESERVED, Some(r.is_some().to_string()));
            push(RESERVED_BY, r.and_then(|r| r.by.clone()));
            push(RESERVED_SINCE, r.and_then(|r| r.since.clone()));
            later.push(REFS);
        }
    }
    out.extend(later.into_iter().map(|name| (name, None)));
    out
}

/// Fails for names no node here has: nothing lives in the security, system or trusted
/// namespaces, and nothing in `user.` outside `user.aps*`.
pub fn check_name(name: &str) -> Result<(), Error> {
    if !name.starts_with("user.") {
        // "Not supported" (rather than "no such attribute") lets `ls` stop asking every file
        // for its SELinux label after the first.
        return Err(Error::Unsupported("attributes outside the user namespace"));
    }
    if !name.starts_with("user.aps") {
        return Err(Error::NoAttribute);
    }
    Ok(())
}

/// The extended attributes of a mount, with the values fetched on demand.
pub struct Xattrs {
    on_demand: OnDemand,
}

impl Xattrs {
    /// Attributes of a mount whose metadata is trusted for `ttl`.
    pub fn new(ttl: Duration) -> Xattrs {
        Xattrs {
            on_demand: TtlMap::new(ttl, MAX_KEPT),
        }
    }

    /// `listxattr`: the names of `ino`'s attributes, NUL-terminated, without a request.
    pub fn list<R: Remote>(&self, ns: &Namespace<R>, ino: u64) -> Result<Vec<u8>, Error> {
        let node = ns.node(ino)?;
        let mut out = Vec::new();
        for (name, _) in known(&node) {
            out.extend_from_slice(name.as_bytes());
            out.push(0);
        }
        Ok(out)
    }

    /// The value of `name` when no request is needed (everything but refs and bucket owners
    /// not fetched lately), `None` when it must be fetched, `NoAttribute` for a name the node
    /// does not have. `ls -l` asks every file, so this path must stay cheap.
    pub fn now<R: Remote>(
        &self,
        ns: &Namespace<R>,
        ino: u64,
        name: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        let node = ns.node(ino)?;
        let (name, value) = known(&node)
            .into_iter()
            .find(|(n, _)| *n == name)
            .ok_or(Error::NoAttribute)?;
        Ok(match value {
            Some(v) => Some(v.into_bytes()),
            None => self.on_demand.get(&(ino, name)).map(|v| v.to_vec()),
        })
    }

    /// One attribute's value, fetched when it is one of those fetched on demand.
    pub async fn get<R: Remote>(
        &self,
        ns: &Namespace<R>,
        ino: u64,
        name: &str,
    ) -> Result<Vec<u8>, Error> {
        if let Some(v) = self.now(ns, ino, name)? {
            return Ok(v);
        }
        let node = ns.node(ino)?;
        let name = known(&node)
            .into_iter()
            .map(|(n, _)| n)
            .find(|n| *n == name)
            .ok_or(Error::NoAttribute)?;
        let value = match (&node.kind, name) {
            (Kind::Objects { bucket, .. }, OWNER) => ns.remote().bucket_owner(bucket).await?,
            (Kind::File { version }, REFS) => refs_text(ns, &node, &version.id).await?,
            _ => return Err(Error::NoAttribute),
        };
        let value = Arc::new(value.into_bytes());
        self.on_demand.put((ino, name), value.clone());
        Ok(value.to_vec())
    }
}

/// One line per ref of a file's item and of its version:
/// `<refType> <direction> <path in the mount, or ->` `<type>:<id>`.
async fn refs_text<R: Remote>(
    ns: &Namespace<R>,
    node: &Node,
    version: &str,
) -> Result<String, Error> {
    let project = ns.project_of(node.parent)?.ok_or(Error::NoAttribute)?;
    let item = node.item();
    let (of_item, of_version) = futures_util::future::join(
        ns.remote().refs(&project, "items", item),
        ns.remote().refs(&project, "versions", version),
    )
    .await;
    let mut all: Vec<RefInfo> = of_item?;
    for r in of_version? {
        let same = |a: &RefInfo| {
            a.other_id == r.other_id && a.ref_type == r.ref_type && a.direction == r.direction
        };
        if !all.iter().any(same) {
            all.push(r);
        }
    }
    let mut out = String::new();
    for r in &all {
        let path = path_of_remote(ns, r).unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{} {} {} {}:{}\n",
            r.ref_type, r.direction, path, r.other_type, r.other_id
        ));
    }
    Ok(out)
}

/// Where the far end of a ref is in the mount, when its folder has been listed.
fn path_of_remote<R: Remote>(ns: &Namespace<R>, r: &RefInfo) -> Option<String> {
    let ino = ns
        .read(|inodes| match r.other_type.as_str() {
            "versions" => r
                .other_item
                .as_ref()
                .and_then(|item| inodes.ino_of(&format!("{item}#{}", r.other_id)))
                .or_else(|| {
                    let item = r.other_item.as_ref()?;
                    inodes.ino_of(&format!("{item}{OLDER_VERSIONS}#{}", r.other_id))
                }),
            "items" => inodes.file_of_item(&r.other_id),
            _ => inodes.ino_of(&r.other_id),
        })
        .ok()??;
    ns.path_of(ino)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Meta;
    use crate::fs::inode::FileVersion;
    use std::time::SystemTime;

    #[test]
    fn file_attributes_without_requests() {
        let node = Node {
            id: "urn:item#urn:v?version=3".into(),
            parent: crate::fs::inode::ROOT,
            kind: Kind::File {
                version: FileVersion {
                    id: "urn:v?version=3".into(),
                    storage: "urn:adsk.objects:os.object:b/k".into(),
                    size: Some(1),
                    number: 3,
                    sha1: None,
                },
            },
            created: SystemTime::UNIX_EPOCH,
            modified: SystemTime::UNIX_EPOCH,
            meta: Meta {
                ext_type: Some(Arc::from("items:autodesk.core:File")),
                created_by: Some(Arc::from("Jane")),
                ..Meta::default()
            },
        };
        let k = known(&node);
        let get = |n: &str| {
            k.iter()
                .find(|(name, _)| *name == n)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get(ID), Some(Some("urn:item".into())));
        assert_eq!(get(VERSION), Some(Some("3".into())));
        assert_eq!(get(RESERVED), Some(Some("false".into())));
        assert_eq!(get(TYPE), Some(Some("items:autodesk.core:File".into())));
        assert_eq!(get(REFS), Some(None), "refs are fetched on demand");
        assert_eq!(get(MODIFIED_BY), None, "absent values are not listed");
    }
}
