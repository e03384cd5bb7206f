//! How long one operation may take, every retry, token fetch, rate-limit wait and `Retry-After`
//! included. A FUSE request sets it around the work it starts; the retry policy reads it to
//! give up early rather than sleep past it. Without it a service that makes no progress would
//! hold a caller for minutes (attempts × request timeouts, or a `Retry-After` of days).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

tokio::task_local! {
    static BUDGET: Arc<Budget>;
}

/// The deadline in force, and the length it was set with: work that shows progress (a page of
/// a long listing) moves it that far ahead again, and work started from it that outlives it
/// (a fetch ahead of the reader) gets one of that length.
#[derive(Debug)]
struct Budget {
    until: Mutex<Instant>,
    limit: Duration,
    /// The deadline this one was set inside: progress moves both.
    outer: Option<Arc<Budget>>,
    /// Where storage reports the bytes it delivers, if anywhere.
    feed: Option<Arc<Feed>>,
}

impl Budget {
    fn until(&self) -> Instant {
        self.until
            .lock()
            .map(|u| *u)
            .unwrap_or_else(|p| *p.into_inner())
    }
}

/// Object bytes a client received from storage, as a sign of life: while storage keeps
/// delivering, an operation waiting on those bytes (fetched ahead, or by another read of the
/// file) waits on a slow link, not a dead service. One per client, shared by its operations.
#[derive(Debug, Default)]
pub struct Feed {
    /// Bytes since the last mark, and when the last mark was made.
    marks: Mutex<(u64, Option<Instant>)>,
}

/// Bytes storage delivers between two marks of a [`Feed`]: far more than a trickling body sends
/// in a deadline, far less than any usable link does.
const DELIVERY: u64 = 64 << 10;

impl Feed {
    /// Counts `bytes` of object data received.
    pub fn delivered(&self, bytes: u64) {
        if let Ok(mut m) = self.marks.lock() {
            m.0 += bytes;
            if m.0 >= DELIVERY {
                *m = (0, Some(Instant::now()));
            }
        }
    }

    /// When the last [`DELIVERY`] bytes were complete.
    fn last(&self) -> Option<Instant> {
        self.marks.lock().ok().and_then(|m| m.1)
    }
}

/// What work started from an operation but outliving it takes along: the deadline's length
/// and the feed it watches.
#[derive(Clone, Debug)]
pub struct Inherit {
    limit: Duration,
    feed: Option<Arc<Feed>>,
}

/// An operation ran out of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expired(pub Duration);

impl std::fmt::Display for Expired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the service made no progress within the {} s operation deadline (--op-timeout)",
            self.0.as_secs_f64()
        )
    }
}

/// Runs `work` for at most `limit` from now (or until the deadline already in force, if that
/// comes first), moved ahead by each [`progress`] it reports and, while `feed` (or the enclosing
/// deadline's) shows storage delivering, kept. `Err` when time ran out; `work` is then dropped,
/// which cancels its requests.
pub async fn within_fed<T>(
    limit: Duration,
    feed: Option<Arc<Feed>>,
    work: impl Future<Output = T>,
) -> Result<T, Expired> {
    let mut until = later(limit);
    let outer = current();
    if let Some(o) = &outer {
        until = until.min(o.until());
    }
    let feed = feed.or_else(|| outer.as_ref().and_then(|o| o.feed.clone()));
    let budget = Arc::new(Budget {
        until: Mutex::new(until),
        limit,
        outer,
        feed,
    });
    let work = BUDGET.scope(budget.clone(), work);
    tokio::pin!(work);
    loop {
        let until = budget.until();
        tokio::select! {
            done = &mut work => return Ok(done),
            () = tokio::time::sleep_until(until) => {
                let now = Instant::now();
                if budget.until() > now {
                    continue;
                }
                let delivering = budget.feed.as_ref().and_then(|f| f.last());
                match delivering.map(|at| at + limit).filter(|t| *t > now) {
                    Some(t) => {
                        if let Ok(mut u) = budget.until.lock() {
                            *u = (*u).max(t);
                        }
                    }
                    None => return Err(Expired(limit)),
                }
            }
        }
    }
}

/// [`within_fed`] with the feed of the deadline in force, if any.
pub async fn within<T>(limit: Duration, work: impl Future<Output = T>) -> Result<T, Expired> {
    within_fed(limit, None, work).await
}

/// Says the work in hand advanced (a page of a listing arrived): its deadline is moved to a
/// whole limit from now, so a long listing that keeps coming is not cut, while one that stops
/// is, a limit after its last page.
pub fn progress() {
    move_every(|until, b| until.max(later(b.limit)));
}

/// Moves every deadline in force `by` later: for time the mount spent holding a request back
/// itself (its own pacing within the documented rate limits), which is not the service
/// failing to make progress.
pub fn extend(by: Duration) {
    move_every(|until, _| until.checked_add(by).unwrap_or(until));
}

/// A look at another task's deadline, for a caller waiting on that task's work (the fetch of a
/// listing several operations need): while the work progresses, so does the wait.
#[derive(Clone, Debug)]
pub struct Watch(std::sync::Weak<Budget>);

/// The deadline in force, for callers that will wait on this task's work.
pub fn watch() -> Option<Watch> {
    current().map(|b| Watch(Arc::downgrade(&b)))
}

/// How often a caller waiting behind another task looks at that task's deadline.
const LOOK_BEHIND: Duration = Duration::from_millis(500);

/// Runs `work`, a wait on another task's work (whose deadline `holder` tells, when it says),
/// moving every deadline in force to at least that task's: a caller waiting behind a fetch
/// that progresses is not cut before the fetch is, and one whose fetch has stopped is.
pub async fn behind<T>(holder: impl Fn() -> Option<Watch>, work: impl Future<Output = T>) -> T {
    if current().is_none() {
        return work.await;
    }
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return done,
            () = tokio::time::sleep(LOOK_BEHIND) => {
                let theirs = holder().and_then(|w| w.0.upgrade()).map(|b| b.until());
                if let Some(theirs) = theirs {
                    move_every(|until, _| until.max(theirs));
                }
            }
        }
    }
}

/// Runs `work` so that it ends `margin` before the deadline in force (as is without one),
/// leaving the caller time to answer with something it has, like a cached listing when the
/// service does not answer at all.
pub async fn short_of<T>(margin: Duration, work: impl Future<Output = T>) -> Result<T, Expired> {
    match remaining() {
        Some(left) => within(left.saturating_sub(margin), work).await,
        None => Ok(work.await),
    }
}

/// What work started now but outliving the operation should take along, if a deadline is in
/// force.
pub fn inherit() -> Option<Inherit> {
    current().map(|b| Inherit {
        limit: b.limit,
        feed: b.feed.clone(),
    })
}

/// Runs `work` started by an operation but outliving it (read-ahead, signing ahead) under a
/// fresh deadline of the operation's length, counted from now; without one, as is.
pub async fn detached<T>(from: Option<Inherit>, work: impl Future<Output = T>) -> Option<T> {
    match from {
        Some(i) => within_fed(i.limit, i.feed, work).await.ok(),
        None => Some(work.await),
    }
}

/// The time left before the deadline in force, if any.
pub fn remaining() -> Option<Duration> {
    current().map(|b| b.until().saturating_duration_since(Instant::now()))
}

/// Sets every deadline in force, the innermost and those it was set inside, to what `to`
/// makes of it.
fn move_every(to: impl Fn(Instant, &Budget) -> Instant) {
    let mut next = current();
    while let Some(b) = next {
        if let Ok(mut until) = b.until.lock() {
            *until = to(*until, &b);
        }
        next = b.outer.clone();
    }
}

fn current() -> Option<Arc<Budget>> {
    BUDGET.try_with(Arc::clone).ok()
}

/// `after` from now, or about thirty years when that cannot be represented.
fn later(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn work_is_cut_at_the_deadline_and_deadlines_nest_by_the_earliest() {
        assert_eq!(remaining(), None);
        let started = Instant::now();
        let _ = within(Duration::from_secs(5), async {
            assert!(remaining().is_some_and(|r| r <= Duration::from_secs(5)));
            within(Duration::from_secs(60), async {
                assert!(remaining().is_some_and(|r| r <= Duration::from_secs(5)));
                assert_eq!(inherit().map(|i| i.limit), Some(Duration::from_secs(60)));
                tokio::time::sleep(Duration::from_secs(30)).await;
            })
            .await
        })
        .await;
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(5) && took < Duration::from_secs(6),
            "the outer deadline cut the inner work: {took:?}"
        );
        let r = within(Duration::from_secs(1), std::future::pending::<()>()).await;
        assert_eq!(r, Err(Expired(Duration::from_secs(1))));
    }

    #[tokio::test(start_paused = true)]
    async fn progress_moves_the_deadline_and_silence_ends_it() {
        let started = Instant::now();
        let r = within(Duration::from_secs(10), async {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_secs(8)).await;
                progress();
            }
            "done"
        })
        .await;
        assert_eq!(r, Ok("done"), "40 s of work, never 10 s without progress");
        assert!(started.elapsed() >= Duration::from_secs(40));
        let started = Instant::now();
        let r = within(Duration::from_secs(10), async {
            tokio::time::sleep(Duration::from_secs(8)).await;
            progress();
            std::future::pending::<()>().await;
        })
        .await;
        assert!(r.is_err());
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(18) && took < Duration::from_secs(19),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn short_of_leaves_the_margin_and_progress_moves_every_deadline() {
        let started = Instant::now();
        let r = within(Duration::from_secs(10), async {
            short_of(Duration::from_secs(2), std::future::pending::<()>()).await
        })
        .await;
        assert!(matches!(r, Ok(Err(_))), "{r:?}");
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(8),
            "two seconds left"
        );
        // Progress inside the inner deadline moves the outer one too: 12 s of work in all.
        let r = within(Duration::from_secs(10), async {
            short_of(Duration::from_secs(2), async {
                for _ in 0..12 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    progress();
                }
            })
            .await
        })
        .await;
        assert_eq!(r, Ok(Ok(())));
        assert_eq!(short_of(Duration::from_secs(1), async { 3 }).await, Ok(3));
    }

    #[tokio::test(start_paused = true)]
    async fn time_held_back_by_the_mount_itself_does_not_count() {
        let r = within(Duration::from_secs(10), async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            extend(Duration::from_secs(30));
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        assert!(r.is_err(), "the extension comes too late: 30 s of silence");
        let r = within(Duration::from_secs(10), async {
            for _ in 0..6 {
                tokio::time::sleep(Duration::from_secs(5)).await;
                extend(Duration::from_secs(5));
            }
        })
        .await;
        assert!(r.is_ok(), "30 s of pacing, each wait given back");
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_still_arriving_from_storage_keep_a_waiting_operation() {
        let started = Instant::now();
        let feed = Arc::new(Feed::default());
        let feeding = tokio::spawn({
            let feed = feed.clone();
            async move {
                for _ in 0..6 {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    feed.delivered(DELIVERY);
                }
            }
        });
        let r = within_fed(
            Duration::from_secs(10),
            Some(feed),
            std::future::pending::<()>(),
        )
        .await;
        feeding.await.unwrap();
        assert!(r.is_err());
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(40) && took <= Duration::from_secs(41),
            "cut 10 s after the last delivery at 30 s: {took:?}"
        );
    }

    type Gate = Arc<tokio::sync::Mutex<()>>;
    type Holder = Arc<Mutex<Option<Watch>>>;

    /// Takes `gate` under a 10 s deadline, says so in `holder`, and runs `work` holding it.
    fn fetcher(
        gate: &Gate,
        holder: &Holder,
        work: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<Result<(), Expired>> {
        let (gate, holder) = (gate.clone(), holder.clone());
        tokio::spawn(within(Duration::from_secs(10), async move {
            let _turn = gate.lock().await;
            *holder.lock().unwrap() = watch();
            work.await;
        }))
    }

    /// Waits for `gate` under a deadline of `limit`, behind whoever `holder` names; how long.
    async fn waiter(gate: &Gate, holder: &Holder, limit: Duration) -> Result<Duration, Expired> {
        tokio::task::yield_now().await;
        let started = Instant::now();
        within(limit, async {
            let _turn = behind(|| holder.lock().unwrap().clone(), gate.lock()).await;
        })
        .await
        .map(|()| started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_behind_a_progressing_fetch_waits_as_long_as_it_progresses() {
        let (gate, holder) = (Gate::default(), Holder::default());
        let progressing = fetcher(&gate, &holder, async {
            for _ in 0..6 {
                tokio::time::sleep(Duration::from_secs(5)).await;
                progress();
            }
        });
        let waited = waiter(&gate, &holder, Duration::from_secs(10)).await;
        assert!(progressing.await.unwrap().is_ok());
        assert!(
            waited.is_ok_and(|w| w >= Duration::from_secs(30)),
            "waited 30 s behind a fetch that progressed: {waited:?}"
        );
        // Behind a fetch that has stopped, the wait ends with the fetch's deadline.
        let stuck = fetcher(&gate, &holder, std::future::pending());
        let waited = waiter(&gate, &holder, Duration::from_secs(60)).await;
        assert!(stuck.await.unwrap().is_err());
        assert!(
            waited.is_ok_and(|w| w <= Duration::from_secs(11)),
            "let in when the stuck fetch was cut: {waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn huge_limits_do_not_overflow() {
        let r = within(Duration::MAX, async { remaining() }).await;
        assert!(r.is_ok_and(|left| left.is_some_and(|l| l > Duration::from_secs(86_400))));
        let forever = Inherit {
            limit: Duration::MAX,
            feed: None,
        };
        let r = detached(Some(forever), async { 7 }).await;
        assert_eq!(r, Some(7));
        assert_eq!(detached(None, async { 8 }).await, Some(8));
    }
}
