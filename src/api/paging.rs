//! Which pages of a folder listing are fetched, and when the listing ends. The service's word
//! for "more pages" is `links.next`; the folder's `objectCount` (as its parent listed it) is
//! only a hint that lets a few pages be fetched ahead by number at once. A server whose count
//! lies (10^12 was seen) therefore costs at most one window of pages beyond the real end.

use super::error::ApiError;
use super::resource::ContentsPage;
use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

/// The service's default (and largest) page size.
pub const PAGE_SIZE: u64 = 200;

/// Listing pages fetched ahead at once: enough to hide round trips, few enough to leave the
/// folder listing budget (300 a minute per app) to other work. Also the most pages a lying
/// `objectCount` can cost beyond the real end.
pub const PARALLEL_PAGES: u64 = 4;

/// Listings longer than this many pages are treated as a server fault, so a link loop (or a
/// server that never stops saying `next`) cannot spin forever: 10,000 pages of 200 are 2
/// million entries, far beyond what one folder holds in practice, and more than
/// [`MAX_FOLDER_ENTRIES`] unless pages are mostly empty.
pub const MAX_PAGES: usize = 10_000;

/// Wall time one folder listing may take across all its pages before it fails (with
/// `ETIMEDOUT`). At the documented 300 listing requests a minute that is 3,000 pages (600,000
/// entries): twice the biggest folder seen; a server that trickles pages out (or throttles
/// without end) gets a clear error instead of an `ls` that never returns.
pub const LISTING_TIME: Duration = Duration::from_secs(10 * 60);

/// Entries one folder listing may hold; beyond it the listing fails (with `EIO`) rather than
/// grow without bound: each entry costs a few hundred bytes while the listing is assembled and
/// cached. Twice the default bound on all cached entries (`--max-cached-entries`).
pub const MAX_FOLDER_ENTRIES: usize = 1_000_000;

/// Fails when a listing that has `pages` pages still says `next`: past [`MAX_PAGES`] it is a
/// server that never stops, not a folder.
pub fn more_after(pages: usize) -> Result<(), ApiError> {
    if pages >= MAX_PAGES {
        return Err(ApiError::Decode(format!(
            "pagination does not end (at {pages} pages)"
        )));
    }
    Ok(())
}

/// The `next` links one walk has followed: a link seen again is a loop, not more pages.
#[derive(Default)]
pub struct Followed(HashSet<String>);

impl Followed {
    /// Whether `link` may be followed after `pages` pages: not too many, not seen before.
    pub fn admit(&mut self, link: &str, pages: usize) -> Result<(), ApiError> {
        more_after(pages)?;
        if !self.0.insert(link.to_string()) {
            return Err(ApiError::Decode(format!(
                "pagination loops (a next link seen twice, at {pages} pages)"
            )));
        }
        Ok(())
    }
}

/// Where a page comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum At {
    /// Page `n` by number (0 is the first page, the listing's own URL).
    Number(u64),
    /// What the previous page's `links.next` said, verbatim.
    Link(String),
}

/// Fetches the pages of one folder listing in order and hands each to `keep` (with its index)
/// as it is accepted. Page 0 first; then, while pages say `next`, either a window of up to
/// [`PARALLEL_PAGES`] pages by number — only while `expected` (the folder's `objectCount`)
/// says pages remain — or the `next` link itself. The first page without `next`, or without
/// `data`, ends the listing: pages fetched ahead beyond it are dropped unread, and requests of
/// the window still under way are cancelled. Returns the number of pages kept.
pub async fn walk<F, Fut>(
    expected: Option<u64>,
    fetch: F,
    mut keep: impl FnMut(usize, ContentsPage) -> Result<(), ApiError>,
) -> Result<usize, ApiError>
where
    F: Fn(At) -> Fut,
    Fut: Future<Output = Result<ContentsPage, ApiError>>,
{
    use futures_util::stream::{self, StreamExt};
    let known = expected.map_or(0, |n| n.div_ceil(PAGE_SIZE));
    let mut taken = 0usize;
    // Keeps one page; the link to go on with, or `None` at the end.
    let mut accept = |page: ContentsPage, taken: &mut usize| -> Result<Option<String>, ApiError> {
        let next = page
            .next()
            .filter(|_| page.data.is_some())
            .map(String::from);
        keep(*taken, page)?;
        *taken += 1;
        // A page is progress: a long listing that keeps coming is not cut by the deadline.
        crate::deadline::progress();
        if next.is_some() {
            more_after(*taken)?;
        }
        Ok(next)
    };
    let mut next = accept(fetch(At::Number(0)).await?, &mut taken)?;
    let mut followed = Followed::default();
    while let Some(link) = next {
        let ahead = known.saturating_sub(taken as u64).min(PARALLEL_PAGES);
        if ahead < 2 {
            followed.admit(&link, taken)?;
            next = accept(fetch(At::Link(link)).await?, &mut taken)?;
            continue;
        }
        let from = taken as u64;
        let mut window = stream::iter(from..from + ahead)
            .map(|n| fetch(At::Number(n)))
            .buffered(PARALLEL_PAGES as usize);
        next = Some(link);
        while let Some(page) = window.next().await {
            next = accept(page?, &mut taken)?;
            if next.is_none() {
                break;
            }
        }
    }
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::resource::Object;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Page `n` of a folder with `real` pages: each holds one entry and says `next` but the
    /// last; pages past the end are served too (empty, without `next`), as a lying server
    /// does when asked for them by number.
    fn page(n: u64, real: u64) -> ContentsPage {
        let json = if n + 1 < real {
            format!(
                r#"{{"data":[{{"type":"folders","id":"f{n}","attributes":{{"name":"F{n}"}}}}],"links":{{"next":{{"href":"/p?page%5Bnumber%5D={}"}}}}}}"#,
                n + 1
            )
        } else if n + 1 == real {
            format!(
                r#"{{"data":[{{"type":"folders","id":"f{n}","attributes":{{"name":"F{n}"}}}}]}}"#
            )
        } else {
            r#"{"data":[]}"#.to_string()
        };
        serde_json::from_str::<Object<ContentsPage>>(&json)
            .map(|o| o.0)
            .unwrap_or_default()
    }

    /// The page number a fetch asks for: by number, or from the `=N` ending a link of `page`.
    fn number(at: At) -> u64 {
        match at {
            At::Number(n) => n,
            At::Link(l) => l
                .rsplit('=')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
        }
    }

    /// Walks a folder of `real` pages whose count claims `claimed` entries; returns (pages
    /// kept, requests made).
    async fn walk_lying(real: u64, claimed: Option<u64>) -> (usize, usize) {
        let requests = AtomicUsize::new(0);
        let fetch = |at: At| {
            requests.fetch_add(1, Ordering::Relaxed);
            let n = number(at);
            async move { Ok(page(n, real)) }
        };
        let kept = walk(claimed, fetch, |_, _| Ok(())).await.unwrap();
        (kept, requests.load(Ordering::Relaxed))
    }

    #[tokio::test]
    async fn a_next_link_seen_twice_is_a_loop() {
        let requests = AtomicUsize::new(0);
        let fetch = |_at: At| {
            requests.fetch_add(1, Ordering::Relaxed);
            // Every page says the same `next`.
            async move { Ok(page(0, 5)) }
        };
        let r = walk(None, fetch, |_, _| Ok(())).await;
        assert!(matches!(r, Err(ApiError::Decode(_))), "{r:?}");
        assert_eq!(
            requests.load(Ordering::Relaxed),
            2,
            "page 0, then the link once"
        );
    }

    #[tokio::test]
    async fn a_lying_count_costs_at_most_one_window() {
        for real in [1, 2, 5, 13] {
            let (kept, requests) = walk_lying(real, Some(1_000_000_000_000)).await;
            assert_eq!(kept as u64, real);
            assert!(
                requests as u64 <= real + PARALLEL_PAGES,
                "{real} real pages cost {requests} requests"
            );
        }
        // An honest count, a count too small, and none: every page, no more.
        assert_eq!(walk_lying(13, Some(13 * PAGE_SIZE)).await, (13, 13));
        assert_eq!(walk_lying(13, Some(PAGE_SIZE)).await, (13, 13));
        assert_eq!(walk_lying(13, None).await, (13, 13));
    }

    #[tokio::test]
    async fn a_page_without_data_ends_the_listing() {
        let fetch = |at: At| async move {
            Ok(match at {
                At::Number(0) => page(0, 5),
                _ => serde_json::from_str::<Object<ContentsPage>>(
                    r#"{"links":{"next":{"href":"/again"}}}"#,
                )
                .map(|o| o.0)
                .unwrap_or_default(),
            })
        };
        assert_eq!(walk(None, fetch, |_, _| Ok(())).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn endless_next_links_are_a_fault() {
        // Every page links to a new one, for ever.
        let fetch = |at: At| {
            let n = number(at);
            async move { Ok(page(n, u64::MAX)) }
        };
        let e = walk(None, fetch, |_, _| Ok(())).await.unwrap_err();
        assert!(
            matches!(e, ApiError::Decode(ref d) if d.contains("does not end")),
            "{e}"
        );
    }
}
