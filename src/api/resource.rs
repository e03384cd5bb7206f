//! Data Management resources read straight from a response: only the members apsfs uses, each
//! lenient (a member of another JSON type reads as absent, as it would through a generic JSON
//! tree), so a listing page of a thousand resources costs no tree of maps built and dropped
//! again (that was most of the mount's CPU in a cold `ls -l` of a big folder). One difference
//! from a generic tree: a member named twice in one object fails the document (a tree keeps
//! the last), which no service sends and which is reported as a decoding error.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::marker::PhantomData;

/// The visitor methods for the JSON scalars a lenient member does not take: each reads as
/// `$absent`.
macro_rules! other_scalars_read_as {
    ($absent:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($absent)
        }
    };
}

/// A scalar member: `None` when absent or of another JSON type.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar<T>(pub Option<T>);

impl<T> Default for Scalar<T> {
    fn default() -> Self {
        Scalar(None)
    }
}

/// The JSON scalars a member may be read as; anything else reads as absent.
pub trait FromScalar: Sized {
    /// From a JSON string.
    fn from_string(_: String) -> Option<Self> {
        None
    }
    /// From `true` or `false`.
    fn from_bool(_: bool) -> Option<Self> {
        None
    }
    /// From a non-negative integer.
    fn from_u64(_: u64) -> Option<Self> {
        None
    }
}

impl FromScalar for String {
    fn from_string(s: String) -> Option<Self> {
        Some(s)
    }
}

impl FromScalar for bool {
    fn from_bool(b: bool) -> Option<Self> {
        Some(b)
    }
}

impl FromScalar for u64 {
    fn from_u64(n: u64) -> Option<Self> {
        Some(n)
    }
}

impl<'de, T: FromScalar> Deserialize<'de> for Scalar<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: FromScalar> Visitor<'de> for V<T> {
            type Value = Scalar<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Scalar(T::from_string(s.to_string())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(Scalar(T::from_string(s)))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
                Ok(Scalar(T::from_bool(b)))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(Scalar(T::from_u64(n)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                Ok(Scalar(u64::try_from(n).ok().and_then(T::from_u64)))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Scalar(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                drain_map(map).map(|()| Scalar(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                drain_seq(seq).map(|()| Scalar(None))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// An object member: its default when absent or not an object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for V<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Object)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                drain_seq(seq).map(|()| Object(T::default()))
            }
            other_scalars_read_as!(Object(T::default()));
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A list member: empty when absent or not a list.
#[derive(Clone, Debug, PartialEq)]
pub struct List<T>(pub Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                drain_map(map).map(|()| List::default())
            }
            other_scalars_read_as!(List::default());
        }
        d.deserialize_any(V(PhantomData))
    }
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A JSON:API resource (hub, project, folder, item, version), as far as apsfs reads it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Resource {
    /// `id`.
    pub id: Scalar<String>,
    /// `type`.
    #[serde(rename = "type")]
    pub kind: Scalar<String>,
    /// `attributes`.
    pub attributes: Object<Attributes>,
    /// `relationships`.
    pub relationships: Object<Relationships>,
    /// `links`.
    pub links: Object<Links>,
}

/// The `attributes` members apsfs reads.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct Attributes {
    /// `name`.
    pub name: Scalar<String>,
    /// `displayName`.
    pub display_name: Scalar<String>,
    /// `hidden`.
    pub hidden: Scalar<bool>,
    /// `createTime`.
    pub create_time: Scalar<String>,
    /// `lastModifiedTime`.
    pub last_modified_time: Scalar<String>,
    /// `lastModifiedTimeRollup`.
    pub last_modified_time_rollup: Scalar<String>,
    /// `objectCount`.
    pub object_count: Scalar<u64>,
    /// `versionNumber`.
    pub version_number: Scalar<u64>,
    /// `storageSize`.
    pub storage_size: Scalar<u64>,
    /// `extension`.
    pub extension: Object<Extension>,
    /// `createUserName`.
    pub create_user_name: Scalar<String>,
    /// `createUserId`.
    pub create_user_id: Scalar<String>,
    /// `lastModifiedUserName`.
    pub last_modified_user_name: Scalar<String>,
    /// `lastModifiedUserId`.
    pub last_modified_user_id: Scalar<String>,
    /// `reserved`.
    pub reserved: Scalar<bool>,
    /// `reservedUserName`.
    pub reserved_user_name: Scalar<String>,
    /// `reservedUserId`.
    pub reserved_user_id: Scalar<String>,
    /// `reservedTime`.
    pub reserved_time: Scalar<String>,
}

/// `attributes.extension`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Extension {
    /// `type`, e.g. `items:autodesk.bim360:File`.
    #[serde(rename = "type")]
    pub kind: Scalar<String>,
}

/// The `relationships` apsfs follows.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Relationships {
    /// `tip` of an item.
    pub tip: Object<Related>,
    /// `storage` of a version.
    pub storage: Object<Related>,
}

/// A relationship: `{"data": {"id": …}}`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Related {
    /// `data`.
    pub data: Object<Identifier>,
}

/// A resource identifier.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Identifier {
    /// `id`.
    pub id: Scalar<String>,
}

/// The `links` apsfs reads.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Links {
    /// `webView`: where the resource opens in the web client.
    #[serde(rename = "webView")]
    pub web_view: Object<Href>,
    /// `next`: the next page of a collection.
    pub next: Object<Href>,
}

/// A link object.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Href {
    /// `href`.
    pub href: Scalar<String>,
}

/// One element of a list read on its own: the list's other elements are still read when this
/// one is malformed. The element's text is first only delimited (serde_json's skipping pass
/// does not decode strings or numbers, so a lone surrogate escape or `1e400` passes), then
/// parsed; a failure keeps the id, if one can be read, for the log.
#[derive(Clone, Debug, PartialEq)]
pub enum Each<T> {
    /// The element as parsed.
    Good(T),
    /// An element that could not be parsed.
    Bad {
        /// Its `id`, when that much can be read.
        id: Option<String>,
        /// What the parser said.
        error: String,
    },
}

impl<T> Each<T> {
    /// The parsed element, or `None` after logging the failure once, naming `context` (the
    /// folder and page) and the element's id: never its text, which may hold anything.
    pub fn or_log(self, context: &dyn fmt::Display) -> Option<T> {
        match self {
            Each::Good(t) => Some(t),
            Each::Bad { id, error } => {
                let id = id.as_deref().unwrap_or("<no id>");
                tracing::warn!(%context, id, %error, "skipping a resource that cannot be parsed");
                None
            }
        }
    }
}

/// Only the `id` of a resource: every other member is skipped unread, so it is found even in
/// an element whose other members cannot be parsed.
#[derive(Deserialize, Default)]
#[serde(default)]
struct IdOnly {
    id: Scalar<String>,
}

impl<'de, T: de::DeserializeOwned> Deserialize<'de> for Each<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
        Ok(match serde_json::from_str::<T>(raw.get()) {
            Ok(t) => Each::Good(t),
            Err(e) => Each::Bad {
                id: serde_json::from_str::<Object<IdOnly>>(raw.get())
                    .ok()
                    .and_then(|o| o.0.id.0),
                error: e.to_string(),
            },
        })
    }
}

/// A JSON:API collection page (hubs, projects, top folders, versions), each resource read on
/// its own.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct DataPage {
    /// `data`: `None` when the page has none (a malformed page).
    pub data: Option<Vec<Each<Object<Resource>>>>,
    /// `links`.
    pub links: Object<Links>,
    /// `meta.warnings` (the hub list says there when it is partial).
    pub meta: Object<PageMeta>,
}

impl DataPage {
    /// `links.next.href`.
    pub fn next(&self) -> Option<&str> {
        self.links.0.next.0.href.0.as_deref()
    }
}

/// The `meta` of a collection page.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct PageMeta {
    /// `warnings`: each read on its own, as the resources are.
    pub warnings: List<Each<Object<Warning>>>,
}

/// One of `meta.warnings`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Warning {
    /// `Detail`.
    #[serde(rename = "Detail")]
    pub detail: Scalar<String>,
    /// `Title`.
    #[serde(rename = "Title")]
    pub title: Scalar<String>,
}

/// A document of one resource (`GET items/:id`, the answer to a create): the resource in
/// `data`, and what `included` carries with it (an item's tip version).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ResourceDoc {
    /// `data`: the default (no id, so malformed) when it is not an object.
    pub data: Object<Resource>,
    /// `included`, each resource read on its own.
    pub included: List<Each<Object<Resource>>>,
}

/// One page of folder contents.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ContentsPage {
    /// `data`: `None` when the page has none (a malformed page; a `data` that is not a list
    /// fails the whole page). Each element is read on its own.
    pub data: Option<Vec<Each<Object<Resource>>>>,
    /// `included`: the tip versions, each read on its own.
    pub included: List<Each<Object<Resource>>>,
    /// `links`.
    pub links: Object<Links>,
}

impl ContentsPage {
    /// `links.next.href`, the only reliable "more pages" signal.
    pub fn next(&self) -> Option<&str> {
        self.links.0.next.0.href.0.as_deref()
    }
}
