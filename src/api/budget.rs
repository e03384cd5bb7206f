//! The client side of APS rate limits: requests are counted per endpoint class over a sliding
//! minute and held back before they would exceed the documented per-app limit, so a full walk
//! of a big project never provokes a 429. (A 429 caused by another client of the same app is
//! still handled by the retry policy, which honours `Retry-After`.)

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window the service counts in, plus a second of slack for latency jitter between our
/// send and its arrival.
const WINDOW: Duration = Duration::from_secs(61);

/// The documented limit (requests per minute) of the endpoint a URL path belongs to. The
/// creating POSTs have paths of their own (`projects/:p/items` with no id, and so on), so the
/// path alone tells them from the reads.
pub fn class_of(path: &str) -> Option<(&'static str, usize)> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    Some(match segs.as_slice() {
        ["project", "v1", "hubs"] | ["project", "v1", "hubs", _] => ("hubs", 50),
        ["project", "v1", "hubs", _, "projects", _, "topFolders"] => ("top_folders", 300),
        ["project", "v1", "hubs", _, "projects", ..] => ("projects", 50),
        ["data", "v1", "projects", _, "storage"] => ("storage_create", 300),
        ["data", "v1", "projects", _, "items"] => ("item_create", 50),
        ["data", "v1", "projects", _, "versions"] => ("version_create", 300),
        ["data", "v1", "projects", _, "folders"] => ("folder_create", 50),
        ["data", "v1", "projects", _, "folders", _] => ("folder", 300),
        ["data", "v1", "projects", _, "folders", _, "contents"] => ("folder_contents", 300),
        ["data", "v1", "projects", _, "folders", _, ..] => ("folder_other", 50),
        ["data", "v1", "projects", _, "items", _] => ("item", 300),
        ["data", "v1", "projects", _, "items", _, "tip"] => ("item_tip", 50),
        ["data", "v1", "projects", _, "items", _, "versions"] => ("item_versions", 800),
        ["data", "v1", "projects", _, "items", _, "refs"] => ("item_refs", 300),
        ["data", "v1", "projects", _, "items", _, ..] => ("item_other", 50),
        ["data", "v1", "projects", _, "versions", _] => ("version", 300),
        ["data", "v1", "projects", _, "versions", _, ..] => ("version_other", 50),
        ["oss", "v2", ..] => ("oss", 1000),
        ["authentication", "v2", ..] => ("auth", 500),
        _ => return None,
    })
}

/// The documented limit of a `PATCH` to a URL path, apart from the reads of the same paths.
/// The reference's table lists each beside creates of the same kind, 50 a minute for the row:
/// read as one budget shared with them (`PATCH folders` with `POST folders`, `PATCH items`
/// with `POST items`, `PATCH versions` with the version refs and links), the stricter reading.
pub fn patch_class_of(path: &str) -> Option<(&'static str, usize)> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    Some(match segs.as_slice() {
        ["data", "v1", "projects", _, "folders", _] => ("folder_create", 50),
        ["data", "v1", "projects", _, "items", _] => ("item_create", 50),
        ["data", "v1", "projects", _, "versions", _] => ("version_other", 50),
        _ => return None,
    })
}

/// Sliding-minute counters per endpoint class.
pub struct RequestBudget {
    enabled: bool,
    sent: Mutex<HashMap<&'static str, VecDeque<Instant>>>,
}

impl RequestBudget {
    /// A budget enforcing the documented limits, or none at all.
    pub fn new(enabled: bool) -> RequestBudget {
        RequestBudget {
            enabled,
            sent: Mutex::default(),
        }
    }

    /// Waits until a `method` request to `path` fits in its class's budget, and counts it;
    /// the class (`other` when it has none).
    pub async fn acquire(&self, method: &reqwest::Method, path: &str) -> &'static str {
        let class = if method == reqwest::Method::PATCH {
            patch_class_of(path)
        } else {
            class_of(path)
        };
        let Some((class, limit)) = class else {
            return "other";
        };
        if !self.enabled {
            return class;
        }
        loop {
            let wait = {
                let Ok(mut sent) = self.sent.lock() else {
                    return class;
                };
                let q = sent.entry(class).or_default();
                let now = Instant::now();
                while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
                    q.pop_front();
                }
                if q.len() < limit {
                    q.push_back(now);
                    return class;
                }
                let oldest = q.front().copied().unwrap_or(now);
                WINDOW.saturating_sub(now.duration_since(oldest))
            };
            tracing::debug!(class, ?wait, "request budget spent; waiting");
            let wait = wait.max(Duration::from_millis(10));
            // The mount's own pacing, not the service failing to answer: the operation's
            // deadline moves by the wait, before it starts.
            crate::deadline::extend(wait);
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(class_of("/project/v1/hubs"), Some(("hubs", 50)));
        assert_eq!(
            class_of("/project/v1/hubs/b.1/projects"),
            Some(("projects", 50))
        );
        assert_eq!(
            class_of("/project/v1/hubs/b.1/projects/b.2/topFolders"),
            Some(("top_folders", 300))
        );
        assert_eq!(
            class_of("/data/v1/projects/p/folders/urn%3Ax/contents"),
            Some(("folder_contents", 300))
        );
        assert_eq!(
            class_of("/data/v1/projects/p/items/i/tip"),
            Some(("item_tip", 50))
        );
        assert_eq!(
            class_of("/oss/v2/buckets/b/objects/k/signeds3download"),
            Some(("oss", 1000))
        );
        assert_eq!(
            class_of("/oss/v2/buckets/b/objects/batchsigneds3download"),
            Some(("oss", 1000)),
            "a batch is one OSS request"
        );
        assert_eq!(class_of("/__s3/b/k"), None);
    }

    #[test]
    fn patches_count_apart_from_reads_of_the_same_path() {
        let p = "/data/v1/projects/b.1";
        assert_eq!(
            patch_class_of(&format!("{p}/folders/f")),
            class_of(&format!("{p}/folders"))
        );
        assert_eq!(class_of(&format!("{p}/folders/f")), Some(("folder", 300)));
        assert_eq!(
            patch_class_of(&format!("{p}/items/i")),
            Some(("item_create", 50))
        );
        assert_eq!(
            patch_class_of(&format!("{p}/versions/v")),
            class_of(&format!("{p}/versions/v/relationships/refs"))
        );
        assert_eq!(patch_class_of(&format!("{p}/items")), None);
    }

    #[test]
    fn creates_have_classes_of_their_own() {
        let p = "/data/v1/projects/b.1";
        assert_eq!(
            class_of(&format!("{p}/storage")),
            Some(("storage_create", 300))
        );
        assert_eq!(class_of(&format!("{p}/items")), Some(("item_create", 50)));
        assert_eq!(
            class_of(&format!("{p}/versions")),
            Some(("version_create", 300))
        );
        assert_eq!(
            class_of(&format!("{p}/folders")),
            Some(("folder_create", 50))
        );
        assert_eq!(
            class_of(&format!("{p}/items/urn%3Ai")),
            Some(("item", 300)),
            "reading an item is not creating one"
        );
        assert_eq!(
            class_of(&format!("{p}/versions/urn%3Av")),
            Some(("version", 300))
        );
        assert_eq!(
            class_of("/oss/v2/buckets/wip.dm.prod/objects/k.bin/signeds3upload"),
            Some(("oss", 1000)),
            "signing and completing an upload are OSS requests"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn holds_back_past_the_limit() {
        let b = RequestBudget::new(true);
        let start = tokio::time::Instant::now();
        for _ in 0..50 {
            b.acquire(&reqwest::Method::GET, "/project/v1/hubs").await;
        }
        assert!(start.elapsed() < Duration::from_millis(1));
        // The 51st waits for the window; with paused time this is instant but measurable.
        let t = tokio::time::Instant::now();
        let fut = b.acquire(&reqwest::Method::GET, "/project/v1/hubs");
        let done = tokio::time::timeout(Duration::from_secs(5), fut).await;
        assert!(done.is_err(), "held back");
        let _ = t;
        RequestBudget::new(false)
            .acquire(&reqwest::Method::GET, "/project/v1/hubs")
            .await;
    }
}
