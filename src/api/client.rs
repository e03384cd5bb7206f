//! The APS client behind the filesystem: Project and Data navigation with every page followed,
//! and object bytes through signed URLs.

use super::error::ApiError;
use super::oss::{self, object_path, seg, UrlCache, URL_MINUTES};
use super::paging::{self, At, LISTING_TIME, MAX_FOLDER_ENTRIES};
use super::resource::{ContentsPage, DataPage, Object};
use super::transport::Transport;
use super::types::{
    self, Bucket, Entry, Flavour, FolderChange, FolderInfo, Hub, ItemInfo, ObjectInfo, Project,
    RefInfo, UploadUrls, VersionInfo,
};
use super::{change, create, prepare_each, Remote};
use crate::single_flight::SingleFlight;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

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
        let mut followed = paging::Followed::default();
        loop {
            followed.admit(&url, pages.len())?;
            let doc = self.http.get_doc(&url).await?;
            let link = next(&doc).map(|h| self.next_url(h)).transpose()?;
            pages.push(doc);
            crate::deadline::progress();
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

    /// The absolute URL a `next` link leads to. A link that is not a URL even once resolved
    /// (`http://[::1/…`) is a fault of the server, said as such: never a request for something
    /// else, and never "not found" for a folder that exists.
    fn next_url(&self, href: &str) -> Result<String, ApiError> {
        let url = self.http.resolve(href);
        match reqwest::Url::parse(&url) {
            Ok(_) => Ok(url),
            Err(e) => {
                let link = super::error::redact_url(href);
                tracing::warn!(%link, error = %e, "a listing's next link is malformed");
                Err(ApiError::Decode(format!(
                    "malformed next link {link:?}: {e}"
                )))
            }
        }
    }

    // Not streamed to readdir as pages arrive, on purpose: names are settled over the whole
    // folder (a clash is won by the folder, then the oldest entry, wherever it is listed), and
    // readdir offsets, the cached listing, `.versions` and lookups all rest on one complete,
    // named listing; entries handed out from a partial one could be renamed or vanish under a
    // reader. What streaming would save — holding all pages at once — is bounded instead: each
    // page is parsed into entries and dropped as it arrives, and one listing holds at most
    // MAX_FOLDER_ENTRIES.
    /// The entries of a folder listing, every page (see [`paging::walk`] for which pages are
    /// fetched when), each page parsed as it arrives and then dropped: what a listing holds
    /// while it is gathered is its entries, at most [`MAX_FOLDER_ENTRIES`]; a listing that
    /// fails drops them all. The whole listing must finish within [`LISTING_TIME`].
    async fn contents(
        &self,
        first: &str,
        folder: &str,
        expected: Option<u64>,
    ) -> Result<Vec<Entry>, ApiError> {
        let mut out = Vec::new();
        let fetch = |at: At| async move {
            let url = match at {
                At::Number(0) => first.to_string(),
                At::Number(n) => format!("{first}?page%5Bnumber%5D={n}"),
                At::Link(href) => self.next_url(&href)?,
            };
            self.contents_page(&url).await
        };
        let keep = |n: usize, page: ContentsPage| {
            let context = format_args!("folder {folder} page {n}").to_string();
            out.extend(types::contents_page_in(&page, &context).map_err(ApiError::Decode)?);
            if out.len() > MAX_FOLDER_ENTRIES {
                return Err(ApiError::Decode(format!(
                    "folder {folder} lists more than {MAX_FOLDER_ENTRIES} entries; not listed"
                )));
            }
            Ok(())
        };
        match tokio::time::timeout(LISTING_TIME, paging::walk(expected, fetch, keep)).await {
            Ok(Ok(_pages)) => Ok(out),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ApiError::Timeout(format!(
                "listing folder {folder} took longer than {} s",
                LISTING_TIME.as_secs()
            ))),
        }
    }

    /// One page of a folder listing. Read as an `Object` so that a document that is not a
    /// JSON object is an empty (malformed) page rather than a struct read from a list.
    async fn contents_page(&self, url: &str) -> Result<ContentsPage, ApiError> {
        let page: Object<ContentsPage> = self.http.get_doc(url).await?;
        Ok(page.0)
    }

    /// One collection page (hubs, projects, top folders), each resource read on its own.
    async fn data_page(&self, url: &str) -> Result<DataPage, ApiError> {
        let page: Object<DataPage> = self.http.get_doc(url).await?;
        Ok(page.0)
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
        let (bucket, key) = oss::split_storage(storage)?;
        if key == "." || key == ".." {
            // A URL path cannot name it: `objects/./signeds3download` is normalised to
            // `objects/signeds3download` before it is sent, percent-encoded or not. The batch
            // route takes the key in its body.
            return self.sign_in_body(storage, bucket, key, fetched).await;
        }
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

impl ApsClient {
    /// Signs one object through `batchsigneds3download`, for keys that no URL path can name.
    async fn sign_in_body(
        &self,
        storage: &str,
        bucket: &str,
        key: &str,
        fetched: Instant,
    ) -> Result<oss::Signed, ApiError> {
        let url = self.http.url(&format!(
            "/oss/v2/buckets/{}/objects/batchsigneds3download?minutesExpiration={URL_MINUTES}",
            seg(bucket)
        ));
        let body = serde_json::json!({ "requests": [{ "objectKey": key }] });
        let doc = self.http.post_json(&url, &body).await?;
        let signed = types::batch_download_urls(&doc)
            .map_err(ApiError::Decode)?
            .remove(key)
            .ok_or_else(|| {
                ApiError::Decode(format!(
                    "object key {key:?} can only be signed in a batch, which left it unsigned"
                ))
            })?;
        self.urls.put(storage, signed.clone(), fetched, URL_MINUTES);
        Ok(signed)
    }
}

impl Remote for ApsClient {
    async fn hubs(&self) -> Result<Vec<Hub>, ApiError> {
        let page = self.data_page(&self.http.url("/project/v1/hubs")).await?;
        for w in &page.meta.0.warnings.0 {
            if let Some(w) = w.clone().or_log(&"the hub list's warnings") {
                let detail = w.0.detail.0.or(w.0.title.0).unwrap_or_default();
                tracing::warn!(%detail, "hub list is partial");
            }
        }
        types::hubs_page(&page, &"the hub list").map_err(ApiError::Decode)
    }

    async fn projects(&self, hub: &str) -> Result<Vec<Project>, ApiError> {
        let first = self
            .http
            .url(&format!("/project/v1/hubs/{}/projects", seg(hub)));
        let pages = self
            .follow(first, |p: &Object<DataPage>| p.0.next())
            .await?;
        let mut out = Vec::new();
        for (n, p) in pages.iter().enumerate() {
            let context = format!("hub {hub} project list page {n}");
            out.extend(types::projects_page(&p.0, &context).map_err(ApiError::Decode)?);
        }
        Ok(out)
    }

    async fn top_folders(&self, hub: &str, project: &str) -> Result<Vec<FolderInfo>, ApiError> {
        let page = self
            .data_page(&self.http.url(&format!(
                "/project/v1/hubs/{}/projects/{}/topFolders",
                seg(hub),
                seg(project)
            )))
            .await?;
        let context = format!("project {project} top folders");
        types::folders_page(&page, &context).map_err(ApiError::Decode)
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
        self.contents(&base, folder, expected).await
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

    fn feed(&self) -> Option<std::sync::Arc<crate::deadline::Feed>> {
        Some(self.http.feed())
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
    async fn create_storage(
        &self,
        project: &str,
        folder: &str,
        name: &str,
    ) -> Result<String, ApiError> {
        create::storage(&self.http, project, folder, name).await
    }

    async fn upload_urls(
        &self,
        storage: &str,
        first: u32,
        parts: u32,
        upload_key: Option<&str>,
    ) -> Result<UploadUrls, ApiError> {
        create::upload_urls(&self.http, storage, first, parts, upload_key).await
    }

    async fn put_part(&self, url: &str, bytes: Bytes) -> Result<String, ApiError> {
        create::put_part(&self.http, url, bytes).await
    }

    async fn complete_upload(
        &self,
        storage: &str,
        upload_key: &str,
        size: u64,
        etags: &[String],
    ) -> Result<u64, ApiError> {
        create::complete_upload(&self.http, storage, upload_key, size, etags).await
    }

    async fn create_item(
        &self,
        project: &str,
        folder: &str,
        name: &str,
        storage: &str,
        flavour: Flavour,
    ) -> Result<ItemInfo, ApiError> {
        create::item(&self.http, project, folder, name, storage, flavour).await
    }

    async fn create_version(
        &self,
        project: &str,
        item: &str,
        name: &str,
        storage: &str,
        flavour: Flavour,
    ) -> Result<VersionInfo, ApiError> {
        create::version(&self.http, project, item, name, storage, flavour).await
    }

    async fn create_folder(
        &self,
        project: &str,
        parent: &str,
        name: &str,
        flavour: Flavour,
    ) -> Result<FolderInfo, ApiError> {
        create::folder(&self.http, project, parent, name, flavour).await
    }

    async fn item(&self, project: &str, item: &str) -> Result<ItemInfo, ApiError> {
        create::item_now(&self.http, project, item).await
    }

    async fn rename_item(&self, project: &str, item: &str, name: &str) -> Result<(), ApiError> {
        change::rename_item(&self.http, project, item, name).await
    }

    async fn change_folder(
        &self,
        project: &str,
        folder: &str,
        change: &FolderChange,
    ) -> Result<FolderInfo, ApiError> {
        change::folder(&self.http, project, folder, change).await
    }

    async fn delete_item(&self, project: &str, item: &str) -> Result<VersionInfo, ApiError> {
        change::delete_item(&self.http, project, item).await
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

#[cfg(test)]
mod http_tests {
    use super::*;
    use crate::api::auth::{Credentials, TokenSource};
    use crate::api::retry::RetryPolicy;
    use std::collections::HashMap;
    use std::sync::Arc;

    /// A server answering each path-and-query in `pages` with its JSON text (404 otherwise).
    pub async fn serve(pages: HashMap<String, String>) -> String {
        let pages = Arc::new(pages);
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let pages = pages.clone();
            async move {
                let key = uri
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default();
                match pages.get(&key) {
                    Some(body) => (axum::http::StatusCode::OK, body.clone()),
                    None => (axum::http::StatusCode::NOT_FOUND, String::from("{}")),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    /// A client with a fixed token talking to `base`.
    pub fn client(base: &str) -> ApsClient {
        let http = reqwest::Client::new();
        let policy = RetryPolicy::default();
        let tokens = TokenSource::new(Credentials::Token("t".into()), base, http.clone());
        ApsClient::new(Transport::new(
            http.clone(),
            http,
            base,
            tokens,
            None,
            policy,
            crate::api::budget::RequestBudget::new(false),
        ))
    }

    const CONTENTS: &str = "/data/v1/projects/p/folders/f/contents";

    #[tokio::test]
    async fn a_malformed_next_link_is_a_server_fault() {
        let page = r#"{"data":[{"type":"folders","id":"a","attributes":{"name":"A"}}],"links":{"next":{"href":"http://[::1/data/v1/oops"}}}"#;
        let base = serve(HashMap::from([(CONTENTS.to_string(), page.to_string())])).await;
        let e = client(&base)
            .folder_contents("p", "f", None)
            .await
            .unwrap_err();
        assert!(
            matches!(e, ApiError::Decode(ref d) if d.contains("malformed next link")),
            "{e:?}"
        );
        let errno = crate::fs::Error::Remote(e).errno(crate::fs::Op::Opendir);
        assert_eq!(errno, libc::EIO);
    }

    /// A page whose second entry has a lone surrogate in its name, and whose first entry's tip
    /// has a size out of any number's range: the others are still listed.
    #[tokio::test]
    async fn one_bad_resource_leaves_its_siblings_listed() {
        let page = r#"{"data":[
            {"type":"items","id":"i1","attributes":{"displayName":"x"},
             "relationships":{"tip":{"data":{"type":"versions","id":"v1"}}}},
            {"type":"folders","id":"bad","attributes":{"name":"bad\ud800name.txt"}},
            {"type":"folders","id":"good","attributes":{"name":"Good"}},
            {"type":"items","id":"i2","attributes":{"displayName":"y"},
             "relationships":{"tip":{"data":{"type":"versions","id":"v2"}}}}],
          "included":[
            {"type":"versions","id":"v1","attributes":{"name":"a.txt","storageSize":1e400},
             "relationships":{"storage":{"data":{"id":"urn:adsk.objects:os.object:b/a"}}}},
            {"type":"versions","id":"v2","attributes":{"name":"b.txt","storageSize":3},
             "relationships":{"storage":{"data":{"id":"urn:adsk.objects:os.object:b/b"}}}}]}"#;
        let hubs = r#"{"data":[{"type":"hubs","id":"h1","attributes":{"name":"bad\udc00"}},
            {"type":"hubs","id":"h2","attributes":{"name":"Hub"}}],
            "meta":{"warnings":[{"Detail":"partial"}]}}"#;
        let projects = r#"{"data":[{"type":"projects","id":"p1","attributes":{"name":"P\udbff"}},
            {"type":"projects","id":"p2","attributes":{"name":"Q"}}]}"#;
        let base = serve(HashMap::from([
            (CONTENTS.to_string(), page.to_string()),
            ("/project/v1/hubs".to_string(), hubs.to_string()),
            (
                "/project/v1/hubs/h/projects".to_string(),
                projects.to_string(),
            ),
        ]))
        .await;
        let c = client(&base);
        let entries = c.folder_contents("p", "f", None).await.unwrap();
        let ids: Vec<(&str, bool)> = entries
            .iter()
            .map(|e| match e {
                Entry::Folder(f) => (f.id.as_str(), true),
                Entry::Item(i) => (i.id.as_str(), i.tip.is_some()),
            })
            .collect();
        // i1 stays an item without a tip (so not shown as a file); the bad folder is left out.
        assert_eq!(ids, [("i1", false), ("good", true), ("i2", true)]);
        let hubs: Vec<String> = c.hubs().await.unwrap().into_iter().map(|h| h.id).collect();
        assert_eq!(hubs, ["h2"]);
        let projects: Vec<String> = c
            .projects("h")
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(projects, ["p2"]);
    }

    /// Object keys `.` and `..` cannot be named in a URL path (it would be normalised away):
    /// they are signed through the batch route, which takes keys in its body.
    #[tokio::test]
    async fn objects_named_dot_and_dot_dot_are_read() {
        // The signed URL leads to a first server; the API is a second one.
        let base = serve(HashMap::from([(
            "/s3/one".to_string(),
            "one dot".to_string(),
        )]))
        .await;
        let answer =
            format!(r#"{{"results":{{".":{{"status":"complete","url":"{base}/s3/one"}}}}}}"#);
        let base = serve(HashMap::from([(
            format!(
                "/oss/v2/buckets/bk/objects/batchsigneds3download?minutesExpiration={URL_MINUTES}"
            ),
            answer,
        )]))
        .await;
        let c = client(&base);
        let got = c
            .read(&format!("{}bk/.", oss::OBJECT_URN_PREFIX), 7, 0, 7)
            .await
            .unwrap();
        assert_eq!(&got[..], b"one dot");
    }
}
