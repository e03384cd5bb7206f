//! The documented per-application, per-endpoint-class limits (requests per minute), enforced
//! over a sliding 60-second window when `--rate-limits documented` is on.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

/// Sliding-window counters keyed by (client id, limit class).
#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<(String, &'static str), VecDeque<Instant>>>,
}

impl RateLimiter {
    /// Admits one request, or returns the seconds after which it would be admitted.
    pub fn check(&self, client: &str, class: &'static str, per_minute: u32) -> Result<(), u64> {
        self.check_at(client, class, per_minute, Instant::now())
    }

    fn check_at(
        &self,
        client: &str,
        class: &'static str,
        per_minute: u32,
        now: Instant,
    ) -> Result<(), u64> {
        let Ok(mut w) = self.windows.lock() else {
            return Ok(());
        };
        let q = w.entry((client.to_string(), class)).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            q.pop_front();
        }
        if q.len() >= per_minute as usize {
            let oldest = q.front().copied().unwrap_or(now);
            let wait = WINDOW.saturating_sub(now.duration_since(oldest));
            // Round up: a client that waits exactly Retry-After must be admitted.
            return Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        }
        q.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_admits_limit_then_refuses_then_recovers() {
        let r = RateLimiter::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(r.check_at("app", "hubs", 3, t0).is_ok());
        }
        assert_eq!(r.check_at("app", "hubs", 3, t0), Err(60));
        assert!(
            r.check_at("other", "hubs", 3, t0).is_ok(),
            "limits are per app"
        );
        assert!(r.check_at("app", "folder", 3, t0).is_ok(), "and per class");
        assert_eq!(
            r.check_at("app", "hubs", 3, t0 + Duration::from_millis(59_500)),
            Err(1)
        );
        assert!(r.check_at("app", "hubs", 3, t0 + WINDOW).is_ok());
    }
}
