//! One fetch per key: callers that want the same answer at the same moment (a listing that a
//! hundred lookups need, the signed URL of a file several readers open, a bucket's object list)
//! wait for the first caller's fetch instead of each sending their own request. A caller that
//! waits follows the fetching caller's deadline (see `deadline::behind`): it is not cut while
//! the fetch progresses, and is let in once the fetch is done or cut.

use crate::deadline;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// The fetches under way, by key.
pub struct SingleFlight<K> {
    gates: Mutex<HashMap<K, Arc<Gate>>>,
}

impl<K> Default for SingleFlight<K> {
    fn default() -> Self {
        SingleFlight {
            gates: Mutex::default(),
        }
    }
}

impl<K: Eq + Hash + Clone> SingleFlight<K> {
    /// The answer for `key`: `cached()` when it has one; otherwise one caller at a time per key
    /// runs `fetch`, which stores its answer where `cached` finds it, so the callers that waited
    /// take that answer without fetching. A failed fetch stores nothing: the next caller tries.
    pub async fn get<T, E, Fut>(
        &self,
        key: K,
        cached: impl Fn() -> Option<T>,
        fetch: impl FnOnce() -> Fut,
    ) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(v) = cached() {
            return Ok(v);
        }
        let entry = self.enter(key);
        let _turn = deadline::behind(|| entry.gate.holder(), entry.gate.turn.lock()).await;
        match cached() {
            Some(v) => Ok(v),
            None => {
                entry.gate.hold();
                fetch().await
            }
        }
    }

    /// The gate of `key`, made when nobody holds one.
    fn enter(&self, key: K) -> Entry<'_, K> {
        let gate = match self.gates.lock() {
            Ok(mut g) => g.entry(key.clone()).or_default().clone(),
            // A poisoned map still serves: this caller just fetches on its own.
            Err(_) => Arc::default(),
        };
        Entry {
            flights: self,
            key,
            gate,
        }
    }

    /// Whether a fetch of `key` is under way (or callers wait for one), so a caller that would
    /// fetch it some other way can leave it to that fetch.
    pub fn is_busy<Q>(&self, key: &Q) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.gates.lock().is_ok_and(|g| g.contains_key(key))
    }

    /// Takes the gates of those `keys` nobody is fetching, for a caller about to fetch them all
    /// in one request: until the claims are dropped, callers of `get` for those keys wait, then
    /// find that request's answer instead of sending their own. Keys being fetched already are
    /// left out; the claims say which keys were taken.
    pub fn claim(&self, keys: impl IntoIterator<Item = K>) -> Vec<Claim<'_, K>> {
        keys.into_iter()
            .filter_map(|key| {
                let entry = self.enter(key);
                let turn = entry.gate.turn.clone().try_lock_owned().ok()?;
                entry.gate.hold();
                Some(Claim { _turn: turn, entry })
            })
            .collect()
    }

    /// Keys with a fetch under way or callers waiting (for tests and counters).
    pub fn in_flight(&self) -> usize {
        self.gates.lock().map(|g| g.len()).unwrap_or(0)
    }
}

/// A key taken by [`SingleFlight::claim`]; dropping it lets the waiting callers in.
pub struct Claim<'a, K: Eq + Hash> {
    // Declared first so it is dropped first: the entry's drop counts the gate's holders.
    _turn: tokio::sync::OwnedMutexGuard<()>,
    entry: Entry<'a, K>,
}

impl<K: Eq + Hash> Claim<'_, K> {
    /// The key claimed.
    pub fn key(&self) -> &K {
        &self.entry.key
    }
}

/// One key's turn to fetch, and the deadline of the caller whose turn it is, which the
/// callers waiting for the turn follow.
#[derive(Default)]
struct Gate {
    turn: Arc<tokio::sync::Mutex<()>>,
    holder: Mutex<Option<deadline::Watch>>,
}

impl Gate {
    /// Marks the calling task as the one fetching.
    fn hold(&self) {
        if let Ok(mut h) = self.holder.lock() {
            *h = deadline::watch();
        }
    }

    /// The deadline of the task fetching, if it has one.
    fn holder(&self) -> Option<deadline::Watch> {
        self.holder.lock().ok().and_then(|h| h.clone())
    }
}

/// A caller's hold on a key's gate; the last one to leave (done or cancelled) removes it, so
/// the map holds only keys being fetched.
struct Entry<'a, K: Eq + Hash> {
    flights: &'a SingleFlight<K>,
    key: K,
    gate: Arc<Gate>,
}

impl<K: Eq + Hash> Drop for Entry<'_, K> {
    fn drop(&mut self) {
        if let Ok(mut g) = self.flights.gates.lock() {
            // Held by the map and this caller only: nobody else is waiting.
            if Arc::strong_count(&self.gate) <= 2
                && g.get(&self.key).is_some_and(|a| Arc::ptr_eq(a, &self.gate))
            {
                g.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_waiting_caller_follows_the_deadline_of_a_fetch_that_progresses() {
        let flights = Arc::new(SingleFlight::default());
        let store: Arc<Mutex<Option<u32>>> = Arc::default();
        let call = |slow: bool| {
            let (flights, store) = (flights.clone(), store.clone());
            async move {
                crate::deadline::within(Duration::from_secs(10), async {
                    let cached = || *store.lock().unwrap();
                    let fetch = || async {
                        // 30 s of a listing whose pages keep coming.
                        for _ in 0..6 {
                            tokio::time::sleep(Duration::from_secs(5)).await;
                            crate::deadline::progress();
                        }
                        *store.lock().unwrap() = Some(7);
                        Ok::<_, ()>(7)
                    };
                    if !slow {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    flights.get("k", cached, fetch).await
                })
                .await
            }
        };
        let (first, second) = tokio::join!(call(true), call(false));
        assert_eq!(first, Ok(Ok(7)));
        assert_eq!(second, Ok(Ok(7)), "the waiter was not cut at its own 10 s");
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch_and_the_map_empties() {
        let flights = SingleFlight::default();
        let store: Mutex<Option<u32>> = Mutex::default();
        let fetches = AtomicUsize::new(0);
        let one = || async {
            flights
                .get(
                    "k",
                    || *store.lock().unwrap(),
                    || async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        *store.lock().unwrap() = Some(7);
                        Ok::<_, ()>(7)
                    },
                )
                .await
        };
        let watch = async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert!(flights.is_busy("k"), "busy while fetching");
            assert!(!flights.is_busy("other"));
        };
        let (all, ()) = tokio::join!(
            futures_util::future::join_all((0..10).map(|_| one())),
            watch
        );
        assert!(all.iter().all(|r| *r == Ok(7)));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert_eq!(flights.in_flight(), 0);
        assert!(!flights.is_busy("k"), "not busy once done");
    }

    #[tokio::test]
    async fn a_claim_makes_callers_wait_for_the_claimant_and_skips_busy_keys() {
        let flights = SingleFlight::default();
        let store: Mutex<Option<u32>> = Mutex::default();
        let fetches = AtomicUsize::new(0);
        let claims = flights.claim(["a", "b"]);
        assert_eq!(claims.len(), 2);
        assert!(flights.claim(["a", "c"]).iter().all(|c| *c.key() == "c"));
        let reader = flights.get(
            "a",
            || *store.lock().unwrap(),
            || async {
                fetches.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ()>(1)
            },
        );
        let claimant = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            *store.lock().unwrap() = Some(9);
            drop(claims);
        };
        let (got, ()) = tokio::join!(reader, claimant);
        assert_eq!(got, Ok(9), "the reader took the claimant's answer");
        assert_eq!(fetches.load(Ordering::SeqCst), 0);
        assert_eq!(flights.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_failure_is_not_shared_and_a_cancelled_caller_leaves_nothing() {
        let flights = SingleFlight::default();
        let fetches = AtomicUsize::new(0);
        for _ in 0..2 {
            let r = flights
                .get(
                    1u64,
                    || None::<u32>,
                    || async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        Err::<u32, _>("refused")
                    },
                )
                .await;
            assert_eq!(r, Err("refused"));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 2, "each caller tried");
        let slow = flights.get(
            2u64,
            || None::<u32>,
            || async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok::<_, ()>(1)
            },
        );
        assert!(tokio::time::timeout(Duration::from_millis(10), slow)
            .await
            .is_err());
        assert_eq!(flights.in_flight(), 0);
    }
}
