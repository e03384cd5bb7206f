//! The operations of the `Remote` seam by name, so request counters, added latency and
//! injected failures can each say which operation they are about.

/// One operation of the `Remote` trait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `hubs`.
    Hubs,
    /// `projects`.
    Projects,
    /// `top_folders`.
    TopFolders,
    /// `folder_contents`: a folder listing.
    FolderContents,
    /// `item_versions`.
    ItemVersions,
    /// `refs`.
    Refs,
    /// `buckets`: the bucket list.
    Buckets,
    /// `bucket_owner`.
    BucketOwner,
    /// `bucket_objects`: one bucket's object list.
    BucketObjects,
    /// `object_size`.
    ObjectSize,
    /// `prepare` (getting a signed URL ready).
    Prepare,
    /// `prepare_many` (getting many signed URLs ready at once), one per call.
    PrepareMany,
    /// `read`: a range of an object's bytes.
    Read,
    /// `create_storage`.
    CreateStorage,
    /// `upload_urls`: signing part URLs.
    UploadUrls,
    /// `put_part`: one part's bytes.
    PutPart,
    /// `complete_upload`.
    CompleteUpload,
    /// `create_item`.
    CreateItem,
    /// `create_version`.
    CreateVersion,
    /// `create_folder`.
    CreateFolder,
    /// `item`: an item and its tip as they are now.
    Item,
    /// `rename_item`: `PATCH items/:i`.
    RenameItem,
    /// `change_folder`: `PATCH folders/:f` (rename, move, hide).
    ChangeFolder,
    /// `delete_item`: a tombstone version.
    DeleteItem,
}

impl Op {
    /// Every operation, so per-operation tables can be plain arrays.
    pub const ALL: [Op; 24] = [
        Op::Hubs,
        Op::Projects,
        Op::TopFolders,
        Op::FolderContents,
        Op::ItemVersions,
        Op::Refs,
        Op::Buckets,
        Op::BucketOwner,
        Op::BucketObjects,
        Op::ObjectSize,
        Op::Prepare,
        Op::PrepareMany,
        Op::Read,
        Op::CreateStorage,
        Op::UploadUrls,
        Op::PutPart,
        Op::CompleteUpload,
        Op::CreateItem,
        Op::CreateVersion,
        Op::CreateFolder,
        Op::Item,
        Op::RenameItem,
        Op::ChangeFolder,
        Op::DeleteItem,
    ];

    /// Position in `ALL`, the index of per-operation tables.
    pub fn index(self) -> usize {
        self as usize
    }
}
