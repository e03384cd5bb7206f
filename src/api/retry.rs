//! The one retry policy: transient failures (429, 5xx, timeouts, broken connections, short
//! bodies) are tried again with exponential backoff, honouring `Retry-After`; everything else
//! fails at once. A request that must not be sent twice says of each failed attempt whether it
//! may be repeated ([`Failed`]), and is tried again only then. Within an operation's deadline
//! ([`crate::deadline`]): a wait that would end past it is not started, so the caller hears of
//! the failure at once.

use super::error::ApiError;
use crate::deadline;
use std::future::Future;
use std::time::Duration;

/// How often and how patiently to retry.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff delay; doubled per attempt.
    pub base_delay: Duration,
    /// Backoff ceiling.
    pub max_delay: Duration,
    /// Longest `Retry-After` obeyed; a longer one is cut to this (the service's limits are per
    /// minute, so a minute always suffices).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            // Eight tries span 6-11 s of backoff: enough to ride out a restarting gateway or a
            // burst of throttling without an application seeing EIO, short enough that a dead
            // service fails a shell command within seconds rather than minutes.
            max_attempts: 8,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Backoff before retry `attempt` (0-based), with jitter in [50 %, 100 %] so parallel
    /// readers that failed together do not retry together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let full = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        full.mul_f64(0.5 + 0.5 * jitter())
    }

    /// Runs `op` until it succeeds, fails permanently, or attempts run out: every transient
    /// failure is tried again (for requests that change nothing when repeated).
    pub async fn run<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        self.run_attempts(what, || {
            let attempt = op();
            async move { attempt.await.map_err(Failed::from) }
        })
        .await
    }

    /// Runs `op` until it succeeds, fails with a failure it may not repeat, or attempts run
    /// out. Each failed attempt says whether it may be repeated, so a request that must not be
    /// sent twice (one that creates something) is only tried again when it surely did not reach
    /// the service.
    pub async fn run_attempts<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failed>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(Failed { error: e, again }) if again && attempt + 1 < self.max_attempts => {
                    let delay = match &e {
                        ApiError::Throttled {
                            retry_after: Some(d),
                        } => (*d).min(self.max_retry_after),
                        _ => self.backoff(attempt),
                    };
                    if deadline::remaining().is_some_and(|left| left <= delay) {
                        tracing::warn!(
                            what,
                            attempts = attempt + 1,
                            ?delay,
                            error = %e,
                            "giving up: the next try would come after the operation's deadline"
                        );
                        return Err(e);
                    }
                    tracing::debug!(what, attempt, ?delay, error = %e, "retrying");
                    crate::stats::retry();
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(Failed { error: e, again }) => {
                    if again {
                        tracing::warn!(what, attempts = attempt + 1, error = %e, "giving up");
                    } else if e.is_transient() {
                        tracing::warn!(
                            what,
                            attempts = attempt + 1,
                            error = %e,
                            "not tried again: the service may have acted on the request"
                        );
                    }
                    return Err(e);
                }
            }
        }
    }
}

/// A failed attempt, and whether the same request may be sent again.
#[derive(Debug)]
pub struct Failed {
    /// What went wrong.
    pub error: ApiError,
    /// Whether another attempt is allowed: the failure is transient, and sending the request
    /// again cannot do twice what it asks for.
    pub again: bool,
}

impl From<ApiError> for Failed {
    /// A failure of a request that may be repeated: tried again when it is transient.
    fn from(error: ApiError) -> Failed {
        Failed {
            again: error.is_transient(),
            error,
        }
    }
}

/// A number in [0, 1) that differs between calls and threads; not for secrets.
fn jitter() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0x2545_f491_4f6c_dd1d);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let mut x = STATE.fetch_add(0x9e37_79b9_7f4a_7c15 ^ nanos, Ordering::Relaxed);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_retry_after: Duration::from_millis(5),
        }
    }

    #[tokio::test]
    async fn retries_transient_then_succeeds() {
        let n = AtomicU32::new(0);
        let r = fast()
            .run("t", || async {
                if n.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(ApiError::Throttled {
                        retry_after: Some(Duration::from_secs(30)),
                    })
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(n.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn permanent_errors_fail_at_once_and_attempts_are_bounded() {
        let n = AtomicU32::new(0);
        let r: Result<(), _> = fast()
            .run("t", || async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(ApiError::NotFound("x".into()))
            })
            .await;
        assert!(matches!(r, Err(ApiError::NotFound(_))));
        assert_eq!(n.load(Ordering::SeqCst), 1);
        let m = AtomicU32::new(0);
        let r: Result<(), _> = fast()
            .run("t", || async {
                m.fetch_add(1, Ordering::SeqCst);
                Err(ApiError::Network("reset".into()))
            })
            .await;
        assert!(r.is_err());
        assert_eq!(m.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failure_that_may_not_be_repeated_is_tried_once() {
        let n = AtomicU32::new(0);
        let r: Result<(), _> = fast()
            .run_attempts("t", || async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(Failed {
                    error: ApiError::Network("reset after sending".into()),
                    again: false,
                })
            })
            .await;
        assert!(matches!(r, Err(ApiError::Network(_))), "{r:?}");
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_past_the_deadline_fails_at_once() {
        let n = AtomicU32::new(0);
        let policy = RetryPolicy {
            max_retry_after: Duration::from_secs(3600),
            ..RetryPolicy::default()
        };
        let started = tokio::time::Instant::now();
        let r: Result<Result<(), _>, _> = deadline::within(Duration::from_secs(60), async {
            policy
                .run("t", || async {
                    n.fetch_add(1, Ordering::SeqCst);
                    Err(ApiError::Throttled {
                        retry_after: Some(Duration::from_secs(999_999)),
                    })
                })
                .await
        })
        .await;
        assert!(matches!(r, Ok(Err(ApiError::Throttled { .. }))), "{r:?}");
        assert_eq!(n.load(Ordering::SeqCst), 1, "no second try");
        assert!(started.elapsed() < Duration::from_secs(1), "no wait at all");
        // A short Retry-After inside the deadline is still honoured.
        let m = AtomicU32::new(0);
        let r = deadline::within(Duration::from_secs(60), async {
            policy
                .run("t", || async {
                    if m.fetch_add(1, Ordering::SeqCst) == 0 {
                        Err(ApiError::Throttled {
                            retry_after: Some(Duration::from_secs(2)),
                        })
                    } else {
                        Ok(1)
                    }
                })
                .await
        })
        .await;
        assert_eq!(r.ok().and_then(Result::ok), Some(1));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        assert!(p.backoff(0) <= Duration::from_millis(100));
        assert!(p.backoff(0) >= Duration::from_millis(50));
        assert!(p.backoff(20) <= Duration::from_secs(5));
    }
}
