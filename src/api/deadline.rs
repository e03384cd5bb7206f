//! How long one operation may take, every retry, token fetch, rate-limit wait and `Retry-After`
//! included. A FUSE request sets it around the work it starts; the retry policy reads it to
//! give up early rather than sleep past it. Without it a service that makes no progress would
//! hold a caller for minutes (attempts × request timeouts, or a `Retry-After` of days).

use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

tokio::task_local! {
    static BUDGET: Budget;
}

/// The deadline in force, and the length it was set with (handed to work started from it
/// that outlives it, like a fetch ahead of the reader).
#[derive(Clone, Copy, Debug)]
struct Budget {
    until: Instant,
    limit: Duration,
}

/// An operation ran out of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expired(pub Duration);

impl std::fmt::Display for Expired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the service gave no answer within the {} s operation deadline (--op-timeout)",
            self.0.as_secs_f64()
        )
    }
}

/// Runs `work` for at most `limit` from now, or until the deadline already in force if that
/// comes first (deadlines nest by the earliest). `Err` when time ran out; `work` is then
/// dropped, which cancels its requests.
pub async fn within<T>(limit: Duration, work: impl Future<Output = T>) -> Result<T, Expired> {
    let now = Instant::now();
    let mut until = now.checked_add(limit).unwrap_or(now + FAR);
    if let Some(outer) = current() {
        until = until.min(outer.until);
    }
    BUDGET
        .scope(
            Budget { until, limit },
            tokio::time::timeout_at(until, work),
        )
        .await
        .map_err(|_| Expired(limit))
}

/// Runs `work` started by an operation but outliving it (read-ahead, signing ahead) under a
/// fresh deadline of the same length, counted from now; without a deadline in force, as is.
pub async fn detached<T>(limit: Option<Duration>, work: impl Future<Output = T>) -> Option<T> {
    match limit {
        Some(l) => within(l, work).await.ok(),
        None => Some(work.await),
    }
}

/// The time left before the deadline in force, if any.
pub fn remaining() -> Option<Duration> {
    current().map(|b| b.until.saturating_duration_since(Instant::now()))
}

/// The length of the deadline in force, for work that outlives the operation.
pub fn limit() -> Option<Duration> {
    current().map(|b| b.limit)
}

fn current() -> Option<Budget> {
    BUDGET.try_with(|b| *b).ok()
}

/// Stands in for a deadline too far away to represent: about thirty years.
const FAR: Duration = Duration::from_secs(30 * 365 * 86_400);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn work_is_cut_at_the_deadline_and_deadlines_nest_by_the_earliest() {
        assert_eq!(remaining(), None);
        let r = within(Duration::from_secs(5), async {
            assert!(remaining().is_some_and(|r| r <= Duration::from_secs(5)));
            let inner = within(Duration::from_secs(60), async {
                assert!(remaining().is_some_and(|r| r <= Duration::from_secs(5)));
                assert_eq!(limit(), Some(Duration::from_secs(60)));
                tokio::time::sleep(Duration::from_secs(30)).await;
            })
            .await;
            assert!(inner.is_err(), "the outer deadline cuts the inner work");
        })
        .await;
        assert!(r.is_ok());
        let r = within(Duration::from_secs(1), std::future::pending::<()>()).await;
        assert_eq!(r, Err(Expired(Duration::from_secs(1))));
    }

    #[tokio::test(start_paused = true)]
    async fn huge_limits_do_not_overflow() {
        let r = within(Duration::MAX, async { remaining() }).await;
        assert!(r.is_ok_and(|left| left.is_some_and(|l| l > Duration::from_secs(86_400))));
        let r = detached(Some(Duration::MAX), async { 7 }).await;
        assert_eq!(r, Some(7));
        assert_eq!(detached(None, async { 8 }).await, Some(8));
    }
}
