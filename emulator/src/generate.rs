//! Deterministic generated data sets (`--generate SPEC`): hubs, projects, folder trees, items and
//! versions of any size without a seed directory, plus flat, large and awkward cases on request.
//!
//! Every id, name, size, time and byte follows from the spec, so two runs with the same spec serve
//! the same world, and a test can predict what it will find before the emulator starts. Only
//! metadata is held: object bytes are `Content::Generated`, computed when read.

use super::clock::{Stamp, StampFormat};
use super::content::seed_for_key;
use super::content::Content;
use super::ids::object_key;
use super::ids::Uid;
use super::size::parse_size;
use super::store::{
    Flavor, ItemKind, Object, Ref, Reservation, Store, Version, VersionKind, DM_BUCKET,
};

/// The data set the emulator and `apsfs mount --demo` serve when given nothing else: small,
/// but with every awkward case real accounts have.
pub const DEMO_SPEC: &str = "seed=1,folders=6,items=40,versions=3,awkward";

/// SPEC syntax, shown by `--help` and quoted in the README so both stay in step with the parser.
pub const SPEC_HELP: &str = "SPEC is a comma-separated list of key=value items (whitespace around \
items is ignored, later items override earlier ones, an empty SPEC means all defaults): seed=N \
(default 1; ids, sizes, times and bytes derive from it while names follow fixed patterns, and the \
same SPEC always gives the same data), hubs=N (1; odd-numbered hubs are BIM 360 accounts, \
even-numbered ones Fusion Team hubs), projects=N per hub (1), folders=N per project (10) arranged \
as a tree at most depth=N levels (3) below the project's first top folder (\"Project Files\" in \
BIM 360, \"Designs\" in Fusion Team), items=N per project (100) spread round-robin over that tree, \
versions=N (1; each item gets between 1 and N versions), size=SIZE (16KiB; each version's size \
lies in 0..=2*SIZE; SIZE is bytes or takes a B, K/KiB, M/MiB or G/GiB suffix), flat=N (0; a folder \
\"Flat\" holding N files), large=COUNTxSIZE (none; a folder \"Large\" holding COUNT files of \
exactly SIZE bytes, e.g. large=2x3GiB), and the bare flag awkward (or awkward=true|false) which \
adds hidden, deleted, cloud-only, duplicate, oddly named, locked, forbidden, unmerged, empty and \
cross-referenced entries plus a \"Fusion Team\" hub. Example: --generate \
seed=7,hubs=2,items=10000,folders=200,versions=3,awkward";

/// Listed in every parse error, so a typo is fixed without opening the help.
const KEYS: &str =
    "seed, hubs, projects, folders, depth, items, versions, size, flat, large, awkward";

/// 2024-01-01T00:00:00Z: generated times start here so they look like real recent data.
const BASE_MS: i64 = 1_704_067_200_000;
/// One day in milliseconds.
const DAY_MS: u64 = 86_400_000;
/// Folders are created within the first month, so every file is younger than its folder.
const FOLDER_SPAN_MS: u64 = 30 * DAY_MS;
/// First versions fall within a year of `BASE_MS`.
const YEAR_MS: u64 = 365 * DAY_MS;
/// Upper bound of the gap between a version's creation and its last modification.
const EDIT_SPAN_MS: u64 = 3_600_000;
/// Upper bound of the gap between one version and the next.
const VERSION_GAP_MS: u64 = 30 * DAY_MS;
/// `reservedUserId` of the awkward set's locked item: not the user tokens act as.
const LOCK_OWNER_ID: &str = "EMULATORUSER2";
/// `reservedUserName` of the awkward set's locked item.
const LOCK_OWNER_NAME: &str = "Other User";
/// Extensions generated files cycle through: the formats BIM 360 and Fusion users store most.
const EXTS: [&str; 8] = ["rvt", "dwg", "pdf", "ifc", "nwd", "txt", "docx", "png"];
/// Timestamp spellings the awkward items rotate through, since clients must parse them all.
const ROTATION: [StampFormat; 3] = [StampFormat::Millis, StampFormat::Ticks, StampFormat::Offset];
/// Largest "small" awkward file, in bytes: big enough to hold real data, small to read whole.
const SMALL_MAX: u64 = 4096;

/// A parsed `--generate` specification: how big and how odd the generated world is.
#[derive(Clone, Debug, PartialEq)]
pub struct GenSpec {
    /// Root of every derived value: ids, sizes, times and bytes change with it, names do not.
    pub seed: u64,
    /// Hubs to create, alternating BIM 360 and Fusion Team flavours to cover both id shapes.
    pub hubs: usize,
    /// Projects per hub.
    pub projects: usize,
    /// Sub-folders per project below its first top folder.
    pub folders: usize,
    /// Deepest level of those sub-folders below the top folder (at least 1).
    pub depth: usize,
    /// Files per project.
    pub items: usize,
    /// Most versions a file gets (at least 1).
    pub versions: u32,
    /// Mean version size in bytes; sizes fall in `0..=2*size`.
    pub size: u64,
    /// Files in the single "Flat" folder, for huge-listing tests (0 = no such folder).
    pub flat: usize,
    /// `(count, bytes)` of the exactly sized files in the "Large" folder, for big-file tests.
    pub large: Option<(usize, u64)>,
    /// Adds the cases clients most often get wrong.
    pub awkward: bool,
}

impl Default for GenSpec {
    fn default() -> GenSpec {
        GenSpec {
            seed: 1,
            hubs: 1,
            projects: 1,
            folders: 10,
            depth: 3,
            items: 100,
            versions: 1,
            size: 16 * 1024,
            flat: 0,
            large: None,
            awkward: false,
        }
    }
}

impl GenSpec {
    /// Parses the `--generate` argument (syntax in [`SPEC_HELP`]); errors name the bad item.
    pub fn parse(s: &str) -> Result<GenSpec, String> {
        let mut spec = GenSpec::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = match part.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (part, None),
            };
            match key {
                "seed" => spec.seed = number(key, value)?,
                "hubs" => spec.hubs = positive(key, value)?,
                "projects" => spec.projects = positive(key, value)?,
                "folders" => spec.folders = number(key, value)?,
                "depth" => spec.depth = positive(key, value)?,
                "items" => spec.items = number(key, value)?,
                "versions" => spec.versions = positive(key, value)?,
                "size" => {
                    let v = needed(key, value)?;
                    // Sizes reach 2*SIZE, which must still be a byte count.
                    spec.size = parse_size(v)
                        .filter(|n| n.checked_mul(2).is_some())
                        .ok_or_else(|| bad(key, v, "expected a size such as 4096, 16KiB or 2M"))?;
                }
                "flat" => spec.flat = number(key, value)?,
                "large" => spec.large = Some(parse_large(key, needed(key, value)?)?),
                "awkward" => {
                    spec.awkward = match value {
                        None | Some("true") => true,
                        Some("false") => false,
                        Some(v) => return Err(bad(key, v, "expected true or false")),
                    }
                }
                _ => {
                    return Err(format!(
                        "generate spec: unknown key {key:?}; valid keys: {KEYS}"
                    ))
                }
            }
        }
        Ok(spec)
    }
}

fn bad(key: &str, value: &str, why: &str) -> String {
    format!("generate spec: {key}={value:?}: {why}; valid keys: {KEYS}")
}

fn needed<'a>(key: &str, value: Option<&'a str>) -> Result<&'a str, String> {
    value.ok_or_else(|| {
        format!("generate spec: {key} needs a value ({key}=...); valid keys: {KEYS}")
    })
}

fn number<T: std::str::FromStr>(key: &str, value: Option<&str>) -> Result<T, String> {
    let v = needed(key, value)?;
    v.parse()
        .map_err(|_| bad(key, v, "expected a non-negative whole number"))
}

fn positive<T: std::str::FromStr + PartialOrd + From<u8>>(
    key: &str,
    value: Option<&str>,
) -> Result<T, String> {
    let n: T = number(key, value)?;
    if n < T::from(1) {
        return Err(bad(key, value.unwrap_or(""), "must be at least 1"));
    }
    Ok(n)
}

/// Parses `COUNTxSIZE`.
fn parse_large(key: &str, v: &str) -> Result<(usize, u64), String> {
    let err = || {
        bad(
            key,
            v,
            "expected COUNTxSIZE with COUNT at least 1, e.g. 2x3GiB",
        )
    };
    let (count, size) = v.split_once(['x', 'X']).ok_or_else(err)?;
    let count: usize = count.trim().parse().map_err(|_| err())?;
    let size = parse_size(size).ok_or_else(err)?;
    if count == 0 {
        return Err(err());
    }
    Ok((count, size))
}

/// Fills the store with the world `spec` describes; the same spec always gives the same world.
pub fn generate(store: &mut Store, spec: &GenSpec) {
    // The leading slash keeps these keys apart from directory-seed keys, which start with a hub
    // name, so a seed directory and a generated set can share one store without id clashes.
    let root_key = format!("/generated/{}", spec.seed);
    let mut first: Option<Top> = None;
    for h in 0..spec.hubs {
        let flavor = if h % 2 == 0 {
            Flavor::Bim360
        } else {
            Flavor::Team
        };
        let hub_name = format!("Hub {}", h + 1);
        let hub_key = format!("{root_key}/{hub_name}");
        let hub = store.add_hub(flavor.account_id("hub", &hub_key), hub_name, flavor);
        for p in 0..spec.projects {
            let name = format!("Project {}", p + 1);
            let key = format!("{hub_key}/{name}");
            let Some((_, top)) = add_project(store, hub, flavor, &key, name) else {
                continue;
            };
            fill_tree(store, spec, &top);
            first.get_or_insert(top);
        }
    }
    if let Some(top) = &first {
        if spec.flat > 0 {
            add_flat(store, top, spec.flat, spec.size);
        }
        if let Some((count, size)) = spec.large {
            add_large(store, top, count, size);
        }
        if spec.awkward {
            add_awkward(store, top);
        }
    }
    if spec.awkward {
        add_fusion_hub(store, &root_key);
        store.hub_warnings = true;
    }
}

/// A project's first top folder, where everything generated for the project goes.
struct Top {
    uid: Uid,
    key: String,
    format: StampFormat,
}

/// The spelling real hubs of this flavour use, so each flavour looks like its production data.
fn flavor_format(flavor: Flavor) -> StampFormat {
    match flavor {
        Flavor::Bim360 => StampFormat::Ticks,
        Flavor::Team => StampFormat::Millis,
    }
}

/// Adds a project with the top folders its flavour has; returns its index and first top folder.
fn add_project(
    store: &mut Store,
    hub: usize,
    flavor: Flavor,
    key: &str,
    name: String,
) -> Option<(usize, Top)> {
    let format = flavor_format(flavor);
    let at = Stamp {
        ms: BASE_MS,
        format,
    };
    let p = store.add_project(hub, flavor.account_id("project", key), name, at);
    let root = store.projects[p].root;
    let tops: &[&str] = match flavor {
        Flavor::Bim360 => &["Project Files", "Plans"],
        Flavor::Team => &["Designs"],
    };
    let mut first = None;
    for name in tops {
        let key = format!("{key}/{name}");
        let uid = store.add_folder(root, Uid::derive("folder", &key), name.to_string(), at)?;
        first.get_or_insert(Top { uid, key, format });
    }
    Some((p, first?))
}

/// Builds one project's folder tree and files below its first top folder.
///
/// Arrangement: the `folders` sub-folders form a complete b-ary tree in breadth-first order,
/// where b is the smallest branching factor with `b + b² + … + b^depth ≥ folders`. Folder k
/// (1-based, "Folder 00k") hangs below folder `(k-1)/b`, folder 0 being the top folder, so the
/// tree is as shallow and even as the depth allows and never deeper than `depth`. Files then go
/// round-robin over [top folder, Folder 1, …, Folder N]: file j lands in slot `(j-1) % (N+1)`.
fn fill_tree(store: &mut Store, spec: &GenSpec, top: &Top) {
    let b = branching(spec.folders, spec.depth.max(1));
    let width = digits(spec.folders).max(3);
    let mut slots: Vec<(Uid, String)> = Vec::with_capacity(spec.folders + 1);
    slots.push((top.uid, top.key.clone()));
    for k in 1..=spec.folders {
        let (parent, parent_key) = &slots[(k - 1) / b];
        let parent = *parent;
        let name = format!("Folder {k:0width$}");
        let key = format!("{parent_key}/{name}");
        let uid = Uid::derive("folder", &key);
        let ms = BASE_MS + offset(mix(uid.as_u64()) % FOLDER_SPAN_MS);
        store.add_folder(
            parent,
            uid,
            name,
            Stamp {
                ms,
                format: top.format,
            },
        );
        slots.push((uid, key));
    }
    let width = digits(spec.items).max(6);
    let versions = u64::from(spec.versions.max(1));
    let mut sizes = Vec::new();
    for j in 0..spec.items {
        let (parent, parent_key) = &slots[j % slots.len()];
        let name = format!("file-{:0width$}.{}", j + 1, EXTS[j % EXTS.len()]);
        let key = format!("{parent_key}/{name}");
        let uid = Uid::derive("item", &key);
        let h = mix(uid.as_u64());
        sizes.clear();
        for n in 0..=pick(h, 0) % versions {
            sizes.push(spread(pick(h, n + 1), spec.size));
        }
        add_file(store, *parent, uid, &key, &name, &sizes, top.format);
    }
}

/// Smallest b ≥ 1 whose complete b-ary tree of `depth` levels holds `n` nodes.
fn branching(n: usize, depth: usize) -> usize {
    let holds = |b: usize| {
        let (mut level, mut total) = (1usize, 0usize);
        for _ in 0..depth {
            level = level.saturating_mul(b);
            total = total.saturating_add(level);
            if total >= n {
                return true;
            }
        }
        false
    };
    (1..=n.max(1)).find(|&b| holds(b)).unwrap_or(1)
}

fn digits(n: usize) -> usize {
    n.to_string().len()
}

/// Adds the "Flat" folder with `n` one-version files, for listings far beyond one page.
fn add_flat(store: &mut Store, top: &Top, n: usize, size: u64) -> Option<()> {
    let (dir, key) = add_child_folder(store, top.uid, &top.key, "Flat", top.format)?;
    let width = digits(n).max(6);
    for i in 0..n {
        let name = format!("flat-{:0width$}.{}", i + 1, EXTS[i % EXTS.len()]);
        let key = format!("{key}/{name}");
        let uid = Uid::derive("item", &key);
        let size = spread(mix(uid.as_u64()), size);
        add_file(store, dir, uid, &key, &name, &[size], top.format);
    }
    Some(())
}

/// Adds the "Large" folder with `count` files of exactly `size` bytes, for multi-GiB reads.
fn add_large(store: &mut Store, top: &Top, count: usize, size: u64) -> Option<()> {
    let (dir, key) = add_child_folder(store, top.uid, &top.key, "Large", top.format)?;
    for i in 1..=count {
        let name = format!("large-{i}.bin");
        let key = format!("{key}/{name}");
        let uid = Uid::derive("item", &key);
        add_file(store, dir, uid, &key, &name, &[size], top.format);
    }
    Some(())
}

/// Adds a folder below `parent`; returns its id and key.
fn add_child_folder(
    store: &mut Store,
    parent: Uid,
    parent_key: &str,
    name: &str,
    format: StampFormat,
) -> Option<(Uid, String)> {
    let key = format!("{parent_key}/{name}");
    let uid = Uid::derive("folder", &key);
    let ms = BASE_MS + offset(mix(uid.as_u64()) % FOLDER_SPAN_MS);
    store.add_folder(parent, uid, name.to_string(), Stamp { ms, format })?;
    Some((uid, key))
}

/// Adds a plain file with one stored version per entry of `sizes`, each with its own bytes.
fn add_file(
    store: &mut Store,
    parent: Uid,
    uid: Uid,
    key: &str,
    name: &str,
    sizes: &[u64],
    format: StampFormat,
) -> Option<Uid> {
    let h = mix(uid.as_u64());
    let mut at = first_version_ms(h);
    for (n, &size) in (1u32..).zip(sizes) {
        let (created, modified) = (at, at + offset(pick(h, 2 * u64::from(n)) % EDIT_SPAN_MS));
        at = modified + 1 + offset(pick(h, 2 * u64::from(n) + 1) % VERSION_GAP_MS);
        let storage = object_key(key, n, name);
        store.put_object(
            DM_BUCKET,
            storage.clone(),
            Object {
                content: Some(Content::Generated {
                    seed: seed_for_key(&storage),
                    size,
                }),
                created_ms: created,
                content_type: content_type(name).to_string(),
                chunked: false,
                project: None,
            },
        );
        let version = Version {
            number: n,
            name: name.to_string(),
            created: Stamp {
                ms: created,
                format,
            },
            modified: Stamp {
                ms: modified,
                format,
            },
            kind: VersionKind::File,
            storage: Some(storage),
            size,
            size_listed: true,
        };
        if n == 1 {
            store.add_item(parent, uid, ItemKind::File, version)?;
        } else {
            store.add_version(uid, version)?;
        }
    }
    Some(uid)
}

/// Adds a cloud-only design: listed like a file, but with no bytes behind it.
fn add_design(store: &mut Store, parent: Uid, key: &str, name: &str, format: StampFormat) {
    let uid = Uid::derive("item", key);
    let ms = first_version_ms(mix(uid.as_u64()));
    let version = Version {
        number: 1,
        name: name.to_string(),
        created: Stamp { ms, format },
        modified: Stamp { ms, format },
        kind: VersionKind::Design,
        storage: None,
        size: 0,
        size_listed: false,
    };
    store.add_item(parent, uid, ItemKind::Design, version);
}

/// When a file's first version appears: after every folder, within the first year.
fn first_version_ms(h: u64) -> i64 {
    BASE_MS + offset(FOLDER_SPAN_MS + h % (YEAR_MS - FOLDER_SPAN_MS))
}

/// A size in `0..=2*mean`, so the requested size is the average.
fn spread(h: u64, mean: u64) -> u64 {
    match mean.checked_mul(2).and_then(|m| m.checked_add(1)) {
        Some(m) => h % m,
        None => h,
    }
}

/// Converts an offset already bounded by a span constant; those all fit `i64` easily.
fn offset(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX / 4)
}

/// The `Content-Type` OSS would report for the name's extension.
fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain",
        Some("png") => "image/png",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _ => "application/octet-stream",
    }
}

/// splitmix64: a cheap, well-mixed hash, so names and sizes need no extra SHA-256 per value.
fn mix(z: u64) -> u64 {
    let z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `salt`-th independent value derived from `h`.
fn pick(h: u64, salt: u64) -> u64 {
    mix(h ^ mix(salt.wrapping_add(0x5851_f42d_4c95_7f2d)))
}

/// Builds the "Awkward" folder; each item takes the next timestamp spelling in turn.
struct Awkward<'a> {
    store: &'a mut Store,
    dir: Uid,
    key: String,
    turn: usize,
}

impl Awkward<'_> {
    fn next_format(&mut self) -> StampFormat {
        let f = ROTATION[self.turn % ROTATION.len()];
        self.turn += 1;
        f
    }

    /// A file in "Awkward"; `None` sizes means one small version.
    fn file(&mut self, name: &str, sizes: Option<&[u64]>) -> Option<Uid> {
        let key = format!("{}/{name}", self.key);
        self.file_at(self.dir, &key, name, sizes)
    }

    /// A file anywhere, under an explicit key (duplicate names need distinct keys).
    fn file_at(
        &mut self,
        parent: Uid,
        key: &str,
        name: &str,
        sizes: Option<&[u64]>,
    ) -> Option<Uid> {
        let uid = Uid::derive("item", key);
        let small = [1 + mix(uid.as_u64()) % SMALL_MAX];
        let format = self.next_format();
        add_file(
            self.store,
            parent,
            uid,
            key,
            name,
            sizes.unwrap_or(&small),
            format,
        )
    }

    fn folder(&mut self, name: &str) -> Option<(Uid, String)> {
        add_child_folder(self.store, self.dir, &self.key, name, StampFormat::Ticks)
    }

    fn item(&mut self, uid: Uid) -> Option<&mut super::store::Item> {
        self.store.items.get_mut(&uid)
    }
}

/// Names a client must survive: separators, padding, length, scripts, dot entries, control
/// characters and URL metacharacters.
fn odd_names() -> Vec<String> {
    let mut names: Vec<String> = [
        "slash/in name.txt",
        "back\\slash.txt",
        " leading space.txt",
        "trailing space.txt ",
        "設計図 平面.dwg",
        "Ünïcødé façade.pdf",
        "emoji 🏗 site.txt",
        ".",
        "..",
        "nul\u{0}byte.txt",
        "tab\tname.txt",
        "percent %41 & amp.txt",
        "question?.txt",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Longer than the 255 bytes most local filesystems allow in one name.
    names.insert(4, format!("{}.txt", "L".repeat(296)));
    names
}

/// Adds every awkward case to the "Awkward" folder below `top`.
fn add_awkward(store: &mut Store, top: &Top) -> Option<()> {
    let (dir, key) = add_child_folder(store, top.uid, &top.key, "Awkward", top.format)?;
    let mut a = Awkward {
        store,
        dir,
        key,
        turn: 0,
    };

    a.file("Three Versions.rvt", Some(&[1000, 2000, 3000]))?;

    let hidden = a.file("Hidden Item.txt", None)?;
    a.item(hidden)?.hidden = true;
    let (hidden_dir, hidden_key) = a.folder("Hidden Folder")?;
    a.file_at(
        hidden_dir,
        &format!("{hidden_key}/inside-hidden.txt"),
        "inside-hidden.txt",
        None,
    )?;
    a.store.folders.get_mut(&hidden_dir)?.hidden = true;

    // A delete in BIM 360 appends a tombstone version rather than removing the item.
    let deleted_name = "Deleted Drawing.dwg";
    let deleted = a.file(deleted_name, None)?;
    let tip = a.item(deleted)?.tip()?;
    let (ms, format) = (tip.modified.ms + 60_000, tip.modified.format);
    a.store.add_version(
        deleted,
        Version {
            number: 2,
            name: deleted_name.to_string(),
            created: Stamp { ms, format },
            modified: Stamp { ms, format },
            kind: VersionKind::Deleted,
            storage: None,
            size: 0,
            size_listed: false,
        },
    )?;

    let design_key = format!("{}/Cloud Design.f3d", a.key);
    let format = a.next_format();
    add_design(a.store, a.dir, &design_key, "Cloud Design.f3d", format);

    let no_size = a.file("No Size.pdf", None)?;
    for v in &mut a.item(no_size)?.versions {
        v.size_listed = false;
    }

    // Two items with one name, and a folder and an item with one name: clients must
    // de-duplicate rather than assume names are unique.
    let dup_key = format!("{}/Duplicate.pdf", a.key);
    a.file_at(a.dir, &dup_key, "Duplicate.pdf", Some(&[1111]))?;
    a.file_at(
        a.dir,
        &format!("{dup_key}#2"),
        "Duplicate.pdf",
        Some(&[2222]),
    )?;
    a.folder("Same Name")?;
    a.file("Same Name", None)?;

    for name in odd_names() {
        a.file(&name, None)?;
    }

    let (restricted, restricted_key) = a.folder("Restricted")?;
    a.file_at(
        restricted,
        &format!("{restricted_key}/secret.txt"),
        "secret.txt",
        None,
    )?;
    a.store.folders.get_mut(&restricted)?.forbidden = true;

    let unmerged = a.file("Unmerged Upload.bin", Some(&[12 * 1024 * 1024]))?;
    let storage = a.item(unmerged)?.tip()?.storage.clone()?;
    a.store
        .buckets
        .get_mut(DM_BUCKET)?
        .objects
        .get_mut(&storage)?
        .chunked = true;

    a.file("empty.txt", Some(&[0]))?;

    // Locked by someone other than the user tokens act as, as a colleague's lock would be, so a
    // writing client meets the 423 without setting anything up.
    let locked = a.file("Locked.rvt", None)?;
    let it = a.item(locked)?;
    let since = it.tip()?.modified;
    it.reserved = Some(Reservation {
        user_id: LOCK_OWNER_ID.into(),
        user_name: LOCK_OWNER_NAME.into(),
        since,
    });

    let host = a.file("Host.dwg", None)?;
    let xref = a.file("Xref.dwg", None)?;
    a.store.refs.push(Ref {
        from_type: "versions",
        from_id: host.version_urn(1),
        to_type: "versions",
        to_id: xref.version_urn(1),
        ref_type: "xrefs".into(),
        extension: "xrefs:autodesk.core:Xref".into(),
    });
    Some(())
}

/// Adds the "Fusion Team" hub: cloud designs next to plain files, with root-relative links.
fn add_fusion_hub(store: &mut Store, root_key: &str) -> Option<()> {
    let key = format!("{root_key}/Fusion Team");
    let flavor = Flavor::Team;
    let hub = store.add_hub(flavor.account_id("hub", &key), "Fusion Team".into(), flavor);
    let project_key = format!("{key}/Fusion Designs");
    let (p, top) = add_project(store, hub, flavor, &project_key, "Fusion Designs".into())?;
    store.projects.get_mut(p)?.relative_links = true;
    for name in ["Bracket.f3d", "Housing.f3d", "Assembly.f3d"] {
        add_design(
            store,
            top.uid,
            &format!("{}/{name}", top.key),
            name,
            top.format,
        );
    }
    for name in ["spec.pdf", "notes.txt"] {
        let key = format!("{}/{name}", top.key);
        let uid = Uid::derive("item", &key);
        let size = 1 + mix(uid.as_u64()) % SMALL_MAX;
        add_file(store, top.uid, uid, &key, name, &[size], top.format)?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::super::store::{Item, Node};
    use super::*;
    use std::collections::BTreeSet;

    fn build(spec: &str) -> Store {
        let mut s = Store::new();
        generate(&mut s, &GenSpec::parse(spec).unwrap());
        s
    }

    fn named<'a>(s: &'a Store, name: &str) -> Vec<&'a Item> {
        s.items
            .values()
            .filter(|i| i.versions[0].name == name)
            .collect()
    }

    fn one<'a>(s: &'a Store, name: &str) -> &'a Item {
        let found = named(s, name);
        assert_eq!(found.len(), 1, "{name:?}");
        found[0]
    }

    fn folder_named(s: &Store, name: &str) -> Uid {
        let found: Vec<_> = s.folders.values().filter(|f| f.name == name).collect();
        assert_eq!(found.len(), 1, "{name:?}");
        found[0].uid
    }

    /// Levels between `f` and the top folder (a top folder is level 0).
    fn level(s: &Store, mut f: Uid) -> usize {
        let mut n = 0;
        while let Some(p) = s.folders[&f].parent {
            if s.folders[&p].parent.is_none() {
                return n;
            }
            f = p;
            n += 1;
        }
        unreachable!("root folders are not below a top folder")
    }

    fn top_of(s: &Store, mut f: Uid) -> String {
        while let Some(p) = s.folders[&f].parent {
            if s.folders[&p].parent.is_none() {
                break;
            }
            f = p;
        }
        s.folders[&f].name.clone()
    }

    #[test]
    fn parses_defaults_and_keys() {
        let d = GenSpec::parse("").unwrap();
        assert_eq!(d, GenSpec::default());
        assert_eq!(
            (d.seed, d.hubs, d.projects, d.folders, d.depth),
            (1, 1, 1, 10, 3)
        );
        assert_eq!((d.items, d.versions, d.size, d.flat), (100, 1, 16384, 0));
        assert_eq!((d.large, d.awkward), (None, false));
        assert_eq!(GenSpec::parse(" , ").unwrap(), d);

        let s = GenSpec::parse(
            " seed=7, hubs=2 ,projects=3,folders=4,depth=2,items=5,versions=6,size=1MiB,flat=8,\
             large=2x3GiB , awkward",
        )
        .unwrap();
        let want = GenSpec {
            seed: 7,
            hubs: 2,
            projects: 3,
            folders: 4,
            depth: 2,
            items: 5,
            versions: 6,
            size: 1 << 20,
            flat: 8,
            large: Some((2, 3 << 30)),
            awkward: true,
        };
        assert_eq!(s, want);
        assert!(!GenSpec::parse("awkward=false").unwrap().awkward);
        assert!(GenSpec::parse("awkward=true").unwrap().awkward);
        assert_eq!(GenSpec::parse("items=1,items=2").unwrap().items, 2);
    }

    #[test]
    fn parses_sizes() {
        let size = |v: &str| GenSpec::parse(&format!("size={v}")).map(|s| s.size);
        assert_eq!(size("3GiB"), Ok(3 << 30));
        assert_eq!(size("16k"), Ok(16 << 10));
        assert_eq!(size("16KiB"), Ok(16 << 10));
        assert_eq!(size("2m"), Ok(2 << 20));
        assert_eq!(size("2 MIB"), Ok(2 << 20));
        assert_eq!(size("1G"), Ok(1 << 30));
        assert_eq!(size("100"), Ok(100));
        assert_eq!(size("100b"), Ok(100));
        assert_eq!(size("0"), Ok(0));
        assert!(size("12XB").is_err());
        assert!(size("KiB").is_err());
        assert!(size("-1").is_err());
        assert!(size("99999999999999999999").is_err());
        assert!(size("17179869184G").is_err());
        let large = |v: &str| GenSpec::parse(&format!("large={v}")).map(|s| s.large);
        assert_eq!(large("2x3GiB"), Ok(Some((2, 3 << 30))));
        assert_eq!(large("1X10"), Ok(Some((1, 10))));
    }

    #[test]
    fn help_names_every_key() {
        for key in KEYS.split(", ") {
            assert!(SPEC_HELP.contains(&format!(" {key}")), "{key}");
        }
        assert!(!SPEC_HELP.contains("  ") && !SPEC_HELP.contains('\n'));
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let err = GenSpec::parse("items=5,bogus=1").unwrap_err();
        assert!(err.contains("bogus") && err.contains("valid keys") && err.contains("large"));
        let err = GenSpec::parse("items=abc").unwrap_err();
        assert!(err.contains("items") && err.contains("abc") && err.contains("valid keys"));
        let err = GenSpec::parse("large=3").unwrap_err();
        assert!(err.contains("large") && err.contains("COUNTxSIZE"));
        for bad in [
            "large=0x1",
            "large=x1",
            "large=2xfoo",
            "versions=0",
            "depth=0",
            "hubs=0",
            "items",
            "items=",
            "awkward=maybe",
            "seed=-1",
        ] {
            assert!(GenSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn same_spec_same_world() {
        let spec = "seed=5,hubs=2,projects=2,items=50,versions=3,awkward";
        let (a, b) = (build(spec), build(spec));
        let hubs = |s: &Store| s.hubs.iter().map(|h| h.id.clone()).collect::<Vec<_>>();
        let items = |s: &Store| s.items.keys().copied().collect::<BTreeSet<_>>();
        let objects = |s: &Store| {
            s.buckets[DM_BUCKET]
                .objects
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        let projects = |s: &Store| s.projects.iter().map(|p| p.id.clone()).collect::<Vec<_>>();
        assert_eq!(hubs(&a), hubs(&b));
        assert_eq!(projects(&a), projects(&b));
        assert_eq!(items(&a), items(&b));
        assert_eq!(objects(&a), objects(&b));
        for (uid, item) in &a.items {
            let other = &b.items[uid];
            assert_eq!(item.versions.len(), other.versions.len());
            for (v, w) in item.versions.iter().zip(&other.versions) {
                assert_eq!(
                    (v.size, v.created, v.modified),
                    (w.size, w.created, w.modified)
                );
            }
        }

        let c = build("seed=6,hubs=2,projects=2,items=50,versions=3,awkward");
        assert!(hubs(&a).iter().all(|h| !hubs(&c).contains(h)));
        assert!(items(&a).is_disjoint(&items(&c)));

        // Hub flavours alternate, with the id shapes production uses.
        assert!(a.hubs[0].id.starts_with("b.") && a.hubs[0].id.len() == 38);
        assert_eq!(a.hubs[0].flavor, Flavor::Bim360);
        assert!(a.hubs[1].id.starts_with("a.") && a.hubs[1].id.len() == 24);
        assert_eq!(a.hubs[1].flavor, Flavor::Team);
        assert_eq!(a.hubs[1].name, "Hub 2");
        let p = a.hubs[1].projects[1];
        assert!(a.projects[p].id.starts_with("a.") && a.projects[p].name == "Project 2");
        let tops = |p: usize| -> Vec<String> {
            let root = &a.folders[&a.projects[p].root];
            root.children
                .iter()
                .map(|n| match n {
                    Node::Folder(f) => a.folders[f].name.clone(),
                    Node::Item(_) => panic!("item at root"),
                })
                .collect()
        };
        assert_eq!(tops(0), ["Project Files", "Plans"]);
        assert_eq!(tops(p), ["Designs"]);
    }

    #[test]
    fn versions_sizes_and_times() {
        let s = build("items=300,versions=4,size=1KiB");
        let mut counts = BTreeSet::new();
        for item in s.items.values() {
            counts.insert(item.versions.len());
            let mut last = i64::MIN;
            let mut keys = BTreeSet::new();
            for v in &item.versions {
                assert!(v.size <= 2048);
                assert!(v.created.ms <= v.modified.ms && v.created.ms > last);
                assert_eq!(v.created.format, StampFormat::Ticks);
                last = v.modified.ms;
                let key = v.storage.clone().unwrap();
                let obj = s.object(DM_BUCKET, &key).unwrap();
                match obj.content {
                    Some(Content::Generated { seed, size }) => {
                        assert_eq!(size, v.size);
                        assert_eq!(seed, seed_for_key(&key), "bytes follow from the key");
                        keys.insert(seed);
                    }
                    _ => panic!("not generated"),
                }
            }
            assert_eq!(
                keys.len(),
                item.versions.len(),
                "object seeds differ per version"
            );
            let first = item.versions[0].created.ms;
            assert!((BASE_MS..BASE_MS + YEAR_MS as i64).contains(&first));
        }
        assert_eq!(counts, BTreeSet::from([1, 2, 3, 4]));
        assert!(named(&s, "file-000001.rvt").len() == 1 && named(&s, "file-000008.png").len() == 1);
    }

    #[test]
    fn counts_and_depth() {
        let s = build("items=1000,folders=20,depth=3");
        let top = s.projects[0].root;
        let in_tree = s
            .items
            .values()
            .filter(|i| i.project == 0 && top_of(&s, i.parent) == "Project Files")
            .count();
        assert_eq!(in_tree, 1000);
        let subs: Vec<_> = s
            .folders
            .values()
            .filter(|f| f.project == 0 && f.parent.is_some() && f.parent != Some(top))
            .collect();
        assert_eq!(subs.len(), 20);
        let deepest = subs.iter().map(|f| level(&s, f.uid)).max().unwrap();
        assert_eq!(deepest, 3);
        assert!(s.folders.values().any(|f| f.name == "Folder 020"));
        // Round-robin: 1000 files over 21 slots.
        let per: Vec<usize> = s
            .folders
            .values()
            .filter(|f| f.project == 0 && f.parent.is_some())
            .filter(|f| f.name != "Plans")
            .map(|f| {
                f.children
                    .iter()
                    .filter(|n| matches!(n, Node::Item(_)))
                    .count()
            })
            .collect();
        assert!(per.iter().all(|&n| n == 47 || n == 48), "{per:?}");

        for (n, depth) in [
            (0, 1),
            (1, 1),
            (5, 1),
            (10, 3),
            (100, 2),
            (1000, 3),
            (7, 25),
        ] {
            let b = branching(n, depth);
            let s = build(&format!("items=0,folders={n},depth={depth}"));
            let deepest = s
                .folders
                .values()
                .filter(|f| f.name.starts_with("Folder "))
                .map(|f| level(&s, f.uid))
                .max()
                .unwrap_or(0);
            assert!(deepest <= depth, "folders={n} depth={depth} b={b}");
        }
        assert_eq!(branching(10, 3), 2);
        assert_eq!(branching(1000, 3), 10);
        assert_eq!(branching(5, 1), 5);
    }

    #[test]
    fn flat_and_large() {
        let s = build("items=0,flat=300,large=1x3GiB");
        let flat = &s.folders[&folder_named(&s, "Flat")];
        assert_eq!(flat.children.len(), 300);
        assert_eq!(top_of(&s, flat.uid), "Project Files");
        let big = one(&s, "large-1.bin");
        let key = big.tip().unwrap().storage.clone().unwrap();
        let obj = s.object(DM_BUCKET, &key).unwrap();
        assert_eq!(obj.content.as_ref().unwrap().size(), 3 << 30);
        assert_eq!(big.tip().unwrap().size, 3 << 30);
    }

    #[test]
    fn awkward_cases() {
        let s = build("awkward");
        let tip = |name: &str| one(&s, name).tip().unwrap();
        let awkward = folder_named(&s, "Awkward");
        assert_eq!(top_of(&s, awkward), "Project Files");
        assert_eq!(s.folders[&awkward].project, 0);

        let three = one(&s, "Three Versions.rvt");
        let sizes: Vec<u64> = three.versions.iter().map(|v| v.size).collect();
        assert_eq!(sizes, [1000, 2000, 3000]);

        assert!(one(&s, "Hidden Item.txt").hidden);
        let hidden_dir = folder_named(&s, "Hidden Folder");
        assert!(s.folders[&hidden_dir].hidden);
        assert_eq!(one(&s, "inside-hidden.txt").parent, hidden_dir);

        let deleted = one(&s, "Deleted Drawing.dwg");
        assert!(deleted.hidden);
        assert_eq!(deleted.versions.len(), 2);
        assert!(deleted.versions[0].storage.is_some());
        let t = deleted.tip().unwrap();
        assert_eq!(
            (t.kind, t.storage.is_none(), t.size, t.size_listed),
            (VersionKind::Deleted, true, 0, false)
        );
        assert_eq!(t.name, "Deleted Drawing.dwg");

        let design = one(&s, "Cloud Design.f3d");
        assert_eq!(design.kind, ItemKind::Design);
        let t = design.tip().unwrap();
        assert_eq!(
            (t.kind, t.storage.is_none(), t.size_listed),
            (VersionKind::Design, true, false)
        );

        let t = tip("No Size.pdf");
        assert!(!t.size_listed && t.size > 0 && t.storage.is_some());

        let dups = named(&s, "Duplicate.pdf");
        assert_eq!(dups.len(), 2);
        assert_eq!(dups[0].parent, dups[1].parent);
        let obj = |i: &Item| {
            s.object(DM_BUCKET, i.tip().unwrap().storage.as_deref().unwrap())
                .unwrap()
        };
        let seed = |i: &Item| match obj(i).content {
            Some(Content::Generated { seed, .. }) => seed,
            _ => panic!(),
        };
        assert_ne!(seed(dups[0]), seed(dups[1]));
        assert_eq!(one(&s, "Same Name").parent, awkward);
        assert_eq!(
            s.folders[&folder_named(&s, "Same Name")].parent,
            Some(awkward)
        );

        let names = odd_names();
        assert_eq!(names.len(), 14);
        for name in &names {
            assert_eq!(one(&s, name).parent, awkward, "{name:?}");
        }
        assert!(names.iter().any(|n| n.chars().count() == 300));
        assert!(names.contains(&"back\\slash.txt".to_string()));

        let formats: BTreeSet<_> = s
            .items
            .values()
            .filter(|i| i.parent == awkward)
            .map(|i| format!("{:?}", i.versions[0].created.format))
            .collect();
        assert_eq!(formats.len(), 3, "{formats:?}");

        let restricted = folder_named(&s, "Restricted");
        assert!(s.folders[&restricted].forbidden);
        assert_eq!(one(&s, "secret.txt").parent, restricted);

        let unmerged = one(&s, "Unmerged Upload.bin");
        assert!(obj(unmerged).chunked);
        assert_eq!(
            obj(unmerged).content.as_ref().unwrap().size(),
            12 * 1024 * 1024
        );

        let t = tip("empty.txt");
        assert!(t.storage.is_some() && t.size == 0 && t.size_listed);
        let lock = one(&s, "Locked.rvt").reserved.as_ref().unwrap();
        assert_eq!(lock.user_id, LOCK_OWNER_ID);

        assert_eq!(s.refs.len(), 1);
        let r = &s.refs[0];
        assert_eq!(r.from_id, one(&s, "Host.dwg").uid.version_urn(1));
        assert_eq!(r.to_id, one(&s, "Xref.dwg").uid.version_urn(1));
        assert_eq!(
            (r.ref_type.as_str(), r.extension.as_str()),
            ("xrefs", "xrefs:autodesk.core:Xref")
        );
        assert!(s.hub_warnings);

        let hub = s.hubs.last().unwrap();
        assert_eq!(
            (hub.name.as_str(), hub.flavor),
            ("Fusion Team", Flavor::Team)
        );
        assert!(hub.id.starts_with("a.") && s.hubs.len() == 2);
        let p = &s.projects[hub.projects[0]];
        assert!(p.relative_links && p.name == "Fusion Designs");
        let designs = folder_named(&s, "Designs");
        assert_eq!(s.folders[&designs].project, hub.projects[0]);
        for name in ["Bracket.f3d", "Housing.f3d", "Assembly.f3d"] {
            let i = one(&s, name);
            assert_eq!(
                (i.kind, i.parent, i.tip().unwrap().storage.is_none()),
                (ItemKind::Design, designs, true)
            );
        }
        for name in ["spec.pdf", "notes.txt"] {
            let i = one(&s, name);
            assert_eq!((i.kind, i.parent), (ItemKind::File, designs));
            assert!(i.tip().unwrap().storage.is_some());
        }
        // Every stored version points at an existing object.
        for i in s.items.values() {
            for v in &i.versions {
                if let Some(k) = &v.storage {
                    assert!(s.object(DM_BUCKET, k).is_some());
                }
            }
        }
        assert!(build("").refs.is_empty() && !build("").hub_warnings);
    }

    #[test]
    fn hundred_thousand_items() {
        let started = std::time::Instant::now();
        let s = build("items=100000,folders=1000");
        assert_eq!(s.items.len(), 100_000);
        assert_eq!(
            s.folders
                .values()
                .filter(|f| f.name.starts_with("Folder "))
                .count(),
            1000
        );
        eprintln!("generated 100000 items in {:?}", started.elapsed());
    }
}
