//! The APS client behind the filesystem: Project and Data navigation with every page followed,
//! and object bytes through signed URLs.

use super::error::ApiError;
use super::oss::{self, object_path, seg, UrlCache, URL_MINUTES};
use super::resource::{ContentsPage, Object};
use super::transport::Transport;
use super::types::{
    self, Bucket, Entry, FolderInfo, Hub, ObjectInfo, Project, RefInfo, VersionInfo,
};
use super::{prepare_each, Remote};
use crate::single_flight::SingleFlight;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The service's default (and largest) page size.
const PAGE_SIZE: u64 = 200;
/// Listing pages fetched at once: enough to hide round trips, few enough to leave the folder
/// listing budget (300 a minute per app) to other work.
const PARALLEL_PAGES: usize = 4;

/// Listings longer than this many pages are treated as a server fault (200 entries a page:
/// 2 million entries), so a link loop cannot spin forever.
const MAX_PAGES: usize = 10_000;

/// Fresh signed URLs one read asks for when storage refuses the one it has. One is not always
/// enough: a URL can expire while the retries of the read that uses it wait out throttling and
/// backoff. Refused this many times in a row, the refusal is real.
const URL_REFRESHES: usize = 4;

/// Batch signing requests `prepare_many` sends at once, after the first one (sent alone, so a
/// service that refuses batches is told so once).
const PARALLEL_BATCHES: usize = 4;

/// The real client (also used against the emulator).
pub struct ApsClient {
    http: Transport,
    urls: UrlCache,
    /// One signed-URL request per object at a time: readers of one file share it.
    url_fetches: SingleFlight<String>,
    /// The service refused a batch signing request: `prepare_many` signs one object at a time.
    batch_refused: AtomicBool,
}

impl ApsClient {
    /// A client over a configured transport.
    pub fn new(http: Transport) -> ApsClient {
        ApsClient {
            http,
            urls: UrlCache::default(),
            url_fetches: SingleFlight::default(),
            batch_refused: AtomicBool::new(false),
        }
    }

    /// Checks the credentials by fetching a token.
    pub async fn check_credentials(&self) -> Result<(), ApiError> {
        self.http.check_credentials().await
    }

    /// Every page of a paginated collection, following `links.next` verbatim.
    async fn all_pages(&self, first: String) -> Result<Vec<Value>, ApiError> {
        self.follow(first, types::next_link).await
    }

    /// Every page from `first`, following the link `next` finds in each page; a link seen
    /// twice, or more pages than any real listing has, is a server fault rather than a loop.
    async fn follow<P: DeserializeOwned>(
        &self,
        first: String,
        next: fn(&P) -> Option<&str>,
    ) -> Result<Vec<P>, ApiError> {
        let mut pages = Vec::new();
        let mut url = first;
        let mut seen = std::collections::HashSet::new();
        loop {
            if !seen.insert(url.clone()) || pages.len() >= MAX_PAGES {
                return Err(ApiError::Decode(format!(
                    "pagination does not end (at {} pages)",
                    pages.len()
                )));
            }
            let doc = self.http.get_doc(&url).await?;
            let link = next(&doc).map(|h| self.http.resolve(h));
            pages.push(doc);
            match link {
                Some(n) => url = n,
                None => return Ok(pages),
            }
        }
    }

    /// Parses every page with `parse`.
    fn parse_all<P, T>(
        pages: &[P],
        parse: fn(&P) -> Result<Vec<T>, String>,
    ) -> Result<Vec<T>, ApiError> {
        let mut out = Vec::new();
        for p in pages {
            out.extend(parse(p).map_err(ApiError::Decode)?);
        }
        Ok(out)
    }

    /// The pages of a folder listing. When the folder's `objectCount` says how many pages there
    /// are, pages 1.. are fetched a few at a time (page numbers are 0-based and their size is
    /// the default 200); whatever `links.next` says after the last of them is then followed one
    /// by one, so a folder that grew meanwhile is still read to its end.
    async fn contents_pages(
        &self,
        first: &str,
        expected: Option<u64>,
    ) -> Result<Vec<ContentsPage>, ApiError> {
        let doc = self.contents_page(first).await?;
        let known_pages = expected.map(|n| n.div_ceil(PAGE_SIZE)).unwrap_or(0);
        let mut pages = vec![doc];
        if pages[0].next().is_some() && known_pages > 1 {
            use futures_util::stream::{self, StreamExt, TryStreamExt};
            let rest: Vec<ContentsPage> = stream::iter(1..known_pages)
                .map(|n| {
                    let url = format!("{first}?page%5Bnumber%5D={n}");
                    async move { self.contents_page(&url).await }
                })
                .buffered(PARALLEL_PAGES)
                .try_collect()
                .await?;
            for page in rest {
                let ends_here = page.next().is_none();
                pages.push(page);
                if ends_here {
                    // The folder shrank: later pages (if any were fetched) hold nothing more.
                    return Ok(pages);
                }
            }
        }
        if let Some(next) = pages
            .last()
            .and_then(ContentsPage::next)
            .map(|h| self.http.resolve(h))
        {
            let rest = self
                .follow(next, |p: &Object<ContentsPage>| p.0.next())
                .await?;
            pages.extend(rest.into_iter().map(|p| p.0));
        }
        Ok(pages)
    }

    /// One page of a folder listing. Read as an `Object` so that a document that is not a
    /// JSON object is an empty (malformed) page rather than a struct read from a list.
    async fn contents_page(&self, url: &str) -> Result<ContentsPage, ApiError> {
        let page: Object<ContentsPage> = self.http.get_doc(url).await?;
        Ok(page.0)
    }

    fn data_array(doc: &Value) -> Result<&Vec<Value>, ApiError> {
        doc.get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| ApiError::Decode("document has no data array".into()))
    }

    async fn signed_url(&self, storage: &str) -> Result<oss::Signed, ApiError> {
        self.url_fetches
            .get(
                storage.to_string(),
                || self.urls.get(storage),
                || self.fetch_signed_url(storage),
            )
            .await
    }

    /// Signs one batch of objects with `batchsigneds3download` and caches each URL it returns.
    /// Objects it leaves unsigned (per-object errors, chunked uploads) and objects of a batch
    /// that fails are signed on their own when read. A refusal of the batch route as such is
    /// remembered, so `prepare_many` signs one at a time from then on.
    async fn sign_batch(&self, batch: oss::Batch<'_>) {
        if self.batch_refused.load(Ordering::Relaxed) {
            return;
        }
        let fetched = Instant::now();
        let url = self.http.url(&format!(
            "/oss/v2/buckets/{}/objects/batchsigneds3download?minutesExpiration={URL_MINUTES}",
            seg(batch.bucket)
        ));
        let requests: Vec<Value> = batch
            .objects
            .iter()
            .map(|(_, key)| serde_json::json!({ "objectKey": key }))
            .collect();
        let body = serde_json::json!({ "requests": requests });
        let answer = self
            .http
            .post_json(&url, &body)
            .await
            .and_then(|doc| types::batch_download_urls(&doc).map_err(ApiError::Decode));
        match answer {
            Ok(urls) => {
                let mut unsigned = 0;
                for (storage, key) in &batch.objects {
                    match urls.get(*key) {
                        Some(u) => self.urls.put(storage, u.clone(), fetched, URL_MINUTES),
                        None => unsigned += 1,
                    }
                }
                if unsigned > 0 {
                    tracing::debug!(
                        bucket = batch.bucket,
                        unsigned,
                        "batch signing left objects without a URL; they are signed when read"
                    );
                }
            }
            Err(e) if refuses_batches(&e) => {
                if !self.batch_refused.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        bucket = batch.bucket,
                        error = %e,
                        "batch signing refused; signing one object at a time"
                    );
                }
            }
            Err(e) => {
                tracing::debug!(
                    bucket = batch.bucket,
                    objects = batch.objects.len(),
                    error = %e,
                    "batch signing failed; the objects are signed when read"
                );
            }
        }
    }

    async fn fetch_signed_url(&self, storage: &str) -> Result<oss::Signed, ApiError> {
        let fetched = Instant::now();
        let url = self.http.url(&format!(
            "{}/signeds3download?minutesExpiration={URL_MINUTES}",
            object_path(storage)?
        ));
        let doc = self.http.get_json(&url).await?;
        let status = doc
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("complete")
            .to_string();
        // `chunked` (an unmerged upload) has no single URL; ask for the fallback form then.
        let doc = if status == "chunked" {
            self.http
                .get_json(&format!("{url}&public-resource-fallback=true"))
                .await?
        } else {
            doc
        };
        let signed = types::signed(&doc).ok_or_else(|| {
            ApiError::Decode(format!(
                "signeds3download answered status {status:?} without a url"
            ))
        })?;
        self.urls.put(storage, signed.clone(), fetched, URL_MINUTES);
        Ok(signed)
    }
}

impl Remote for ApsClient {
    async fn hubs(&self) -> Result<Vec<Hub>, ApiError> {
        let doc = self
            .http
            .get_json(&self.http.url("/project/v1/hubs"))
            .await?;
        if let Some(w) = doc.pointer("/meta/warnings").and_then(Value::as_array) {
            for warning in w {
                tracing::warn!(detail = %warning.get("Detail").or(warning.get("Title")).unwrap_or(warning), "hub list is partial");
            }
        }
        Ok(Self::data_array(&doc)?
            .iter()
            .filter_map(types::hub)
            .collect())
    }

    async fn projects(&self, hub: &str) -> Result<Vec<Project>, ApiError> {
        let pages = self
            .all_pages(
                self.http
                    .url(&format!("/project/v1/hubs/{}/projects", seg(hub))),
            )
            .await?;
        let mut out = Vec::new();
        for p in &pages {
            out.extend(Self::data_array(p)?.iter().filter_map(types::project));
        }
        Ok(out)
    }

    async fn top_folders(&self, hub: &str, project: &str) -> Result<Vec<FolderInfo>, ApiError> {
        let doc = self
            .http
            .get_json(&self.http.url(&format!(
                "/project/v1/hubs/{}/projects/{}/topFolders",
                seg(hub),
                seg(project)
            )))
            .await?;
        Ok(Self::data_array(&doc)?
            .iter()
            .filter_map(|v| types::folder(&types::resource(v)))
            .collect())
    }

    async fn folder_contents(
        &self,
        project: &str,
        folder: &str,
        expected: Option<u64>,
    ) -> Result<Vec<Entry>, ApiError> {
        let base = self.http.url(&format!(
            "/data/v1/projects/{}/folders/{}/contents",
            seg(project),
            seg(folder)
        ));
        let pages = self.contents_pages(&base, expected).await?;
        Self::parse_all(&pages, types::contents_page)
    }

    async fn item_versions(&self, project: &str, item: &str) -> Result<Vec<VersionInfo>, ApiError> {
        let pages = self
            .all_pages(self.http.url(&format!(
                "/data/v1/projects/{}/items/{}/versions",
                seg(project),
                seg(item)
            )))
            .await?;
        Self::parse_all(&pages, types::versions_page)
    }

    async fn refs(&self, project: &str, kind: &str, id: &str) -> Result<Vec<RefInfo>, ApiError> {
        let pages = self
            .all_pages(self.http.url(&format!(
                "/data/v1/projects/{}/{}/{}/relationships/refs",
                seg(project),
                seg(kind),
                seg(id)
            )))
            .await?;
        Self::parse_all(&pages, types::refs_page)
    }

    async fn buckets(&self, region: &str) -> Result<Vec<Bucket>, ApiError> {
        let first = self
            .http
            .url(&format!("/oss/v2/buckets?region={}&limit=100", seg(region)));
        let pages = self.follow(first, types::oss_next).await?;
        Self::parse_all(&pages, types::buckets_page)
    }

    async fn bucket_owner(&self, bucket: &str) -> Result<String, ApiError> {
        let doc = self
            .http
            .get_json(
                &self
                    .http
                    .url(&format!("/oss/v2/buckets/{}/details", seg(bucket))),
            )
            .await?;
        doc.get("bucketOwner")
            .and_then(Value::as_str)
            .map(String::from)
            .ok_or_else(|| ApiError::Decode("bucket details carry no bucketOwner".into()))
    }

    async fn bucket_objects(&self, bucket: &str) -> Result<Vec<ObjectInfo>, ApiError> {
        let first = self.http.url(&format!(
            "/oss/v2/buckets/{}/objects?limit=100",
            seg(bucket)
        ));
        let pages = self.follow(first, types::oss_next).await?;
        Self::parse_all(&pages, types::objects_page)
    }

    async fn object_size(&self, storage: &str) -> Result<u64, ApiError> {
        let doc = self
            .http
            .get_json(&self.http.url(&format!("{}/details", object_path(storage)?)))
            .await?;
        doc.get("size")
            .and_then(Value::as_u64)
            .ok_or_else(|| ApiError::Decode("object details carry no size".into()))
    }

    async fn prepare(&self, storage: &str) {
        if let Err(e) = self.signed_url(storage).await {
            tracing::debug!(error = %e, "could not fetch a signed URL ahead of the first read");
        }
    }

    /// Signs the objects without a cached URL in batches of up to 25 per bucket (one OSS
    /// request each; the first alone, the rest a few at a time), skipping objects a reader is
    /// signing right now. Once the service has refused a batch, objects are signed one by one,
    /// [`super::PREPARE_PARALLEL`] at a time, shared with readers as `prepare` is.
    async fn prepare_many(&self, storages: &[String]) {
        use futures_util::stream::{self, StreamExt};
        let todo: Vec<&str> = storages
            .iter()
            .map(String::as_str)
            .filter(|s| self.urls.get(s).is_none() && !self.url_fetches.is_busy(*s))
            .collect();
        if !self.batch_refused.load(Ordering::Relaxed) {
            // Claimed while the batches are out, so a reader of one of these objects waits for
            // its batch instead of signing it alone.
            let claims = self.url_fetches.claim(todo.iter().map(|s| s.to_string()));
            let claimed = claims.iter().map(|c| c.key().as_str());
            let mut batches = oss::batches(claimed).into_iter();
            if let Some(first) = batches.next() {
                self.sign_batch(first).await;
            }
            stream::iter(batches)
                .for_each_concurrent(PARALLEL_BATCHES, |b| self.sign_batch(b))
                .await;
            drop(claims);
            if !self.batch_refused.load(Ordering::Relaxed) {
                return;
            }
        }
        // Objects a batch signed before the refusal are cached, so `prepare` costs nothing.
        prepare_each(self, todo).await;
    }

    fn signs_in_batches(&self) -> bool {
        !self.batch_refused.load(Ordering::Relaxed)
    }

    async fn read(
        &self,
        storage: &str,
        size: u64,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, ApiError> {
        let mut signed = self.signed_url(storage).await?;
        let mut fresh = 0;
        loop {
            if let Some(stored) = signed.size.filter(|s| *s != size) {
                tracing::warn!(
                    storage,
                    listed = size,
                    stored,
                    "the listing and storage disagree on the file's size; refusing to read it"
                );
                return Err(ApiError::SizeMismatch {
                    listed: size,
                    stored,
                });
            }
            match self.http.get_range(&signed.url, size, offset, len).await {
                // The URL expired (or was revoked): a fresh one, a few times over.
                Err(ApiError::Forbidden(detail)) if fresh < URL_REFRESHES => {
                    tracing::debug!(%detail, "signed URL refused; fetching a fresh one");
                    self.urls.invalidate(storage, &signed.url);
                    signed = self.signed_url(storage).await?;
                    fresh += 1;
                }
                other => return other,
            }
        }
    }
}

/// Whether a failed batch signing request means the service does not take batch requests here
/// (rather than a passing failure, which the retry policy has already tried again): 403, 404,
/// 405 or 400 for the route as a whole.
fn refuses_batches(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::Forbidden(_)
            | ApiError::NotFound(_)
            | ApiError::Refused {
                status: 400 | 404 | 405,
                ..
            }
    )
}
