//! Fault injection: added latency, a bandwidth cap, 5xx answers, 429 answers and byte bodies
//! cut off mid-transfer and refused batch calls, each independently and changeable at run time
//! (`PUT /__emulator/faults`).

use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The fault knobs; all zero (and false) means a well-behaved server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Added to every request before it is answered.
    pub latency_ms: u64,
    /// Cap per response body in MiB/s (0 = unlimited); one connection carries one body at a time.
    pub bandwidth_mib: f64,
    /// Fraction of requests answered 500 or 503.
    pub error_rate: f64,
    /// Fraction of requests answered 429 with `Retry-After: 1`.
    pub throttle_rate: f64,
    /// Fraction of object byte bodies cut off half-way.
    pub drop_rate: f64,
    /// Fraction of object byte bodies that stop half-way and then send nothing (for two
    /// minutes, then the connection is dropped): stalled transfers.
    pub stall_rate: f64,
    /// Signed download URLs live at most this many seconds, whatever was asked (0 = as asked):
    /// URLs that expire in the middle of reading a file.
    pub url_ttl_secs: u64,
    /// `batchsigneds3download` answers 403 (whether Data Management storage accepts batch
    /// calls is unconfirmed): clients must fall back to one `signeds3download` per object.
    pub refuse_batch: bool,
}

impl FaultConfig {
    /// Rejects rates outside 0..=1 and negative bandwidth.
    pub fn validate(&self) -> Result<(), String> {
        for (name, r) in [
            ("error_rate", self.error_rate),
            ("throttle_rate", self.throttle_rate),
            ("drop_rate", self.drop_rate),
            ("stall_rate", self.stall_rate),
        ] {
            if !(0.0..=1.0).contains(&r) {
                return Err(format!("{name} must be between 0 and 1, got {r}"));
            }
        }
        if !(self.bandwidth_mib >= 0.0 && self.bandwidth_mib.is_finite()) {
            return Err(format!(
                "bandwidth_mib must be >= 0, got {}",
                self.bandwidth_mib
            ));
        }
        Ok(())
    }
}

/// The live fault settings plus a deterministic sequence of dice rolls.
pub struct Faults {
    config: Mutex<FaultConfig>,
    counter: AtomicU64,
}

/// What a roll decided for one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Injected {
    /// Answer normally.
    None,
    /// Answer 429.
    Throttle,
    /// Answer this 5xx status.
    Error(u16),
}

impl Faults {
    /// Starts with `config`.
    pub fn new(config: FaultConfig) -> Faults {
        Faults {
            config: Mutex::new(config),
            counter: AtomicU64::new(0),
        }
    }

    /// Current settings.
    pub fn get(&self) -> FaultConfig {
        self.config.lock().map(|c| *c).unwrap_or_default()
    }

    /// Replaces the settings.
    pub fn set(&self, c: FaultConfig) {
        if let Ok(mut g) = self.config.lock() {
            *g = c;
        }
    }

    /// A uniform number in [0, 1) from a fixed sequence, so a fault run can be repeated.
    fn roll(&self) -> f64 {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut z = n
            .wrapping_add(0x9e37_79b9_7f4a_7c15)
            .wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Decides whether this request gets a 429 or a 5xx instead of its answer.
    pub fn decide(&self) -> Injected {
        let c = self.get();
        if c.throttle_rate > 0.0 && self.roll() < c.throttle_rate {
            return Injected::Throttle;
        }
        if c.error_rate > 0.0 {
            let r = self.roll();
            if r < c.error_rate {
                return Injected::Error(if r < c.error_rate / 2.0 { 500 } else { 503 });
            }
        }
        Injected::None
    }

    /// Whether the next byte body stalls.
    pub fn stall_body(&self) -> bool {
        let r = self.get().stall_rate;
        r > 0.0 && self.roll() < r
    }

    /// Whether the next byte body is cut off.
    pub fn drop_body(&self) -> bool {
        let r = self.get().drop_rate;
        r > 0.0 && self.roll() < r
    }
}

/// A body stream of object bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Paces a body to `mib_per_s`.
pub fn throttle(body: ByteStream, mib_per_s: f64) -> ByteStream {
    if mib_per_s <= 0.0 {
        return body;
    }
    let bytes_per_s = mib_per_s * 1024.0 * 1024.0;
    let start = tokio::time::Instant::now();
    Box::pin(body.scan(0u64, move |sent, chunk| {
        let due = if let Ok(c) = &chunk {
            *sent += c.len() as u64;
            Some(start + Duration::from_secs_f64(*sent as f64 / bytes_per_s))
        } else {
            None
        };
        async move {
            if let Some(d) = due {
                tokio::time::sleep_until(d).await;
            }
            Some(chunk)
        }
    }))
}

/// How long the cut-off body stalls before failing. While the stream is pending hyper
/// flushes what it has buffered (status line, headers, the kept half); failing at once would
/// make it drop the connection with a small body still unsent, so the client would see no
/// response at all instead of a short body.
const FLUSH_PAUSE: Duration = Duration::from_millis(20);

/// About the first half of a body of `len` bytes, followed by `tail` (which ends it with an
/// error, so the connection is dropped with fewer bytes than `Content-Length` promised).
fn half_then(
    body: ByteStream,
    len: u64,
    tail: impl std::future::Future<Output = std::io::Error> + Send + 'static,
) -> ByteStream {
    let keep = len / 2;
    Box::pin(
        body.scan(0u64, move |sent, chunk| {
            let out = match chunk {
                Ok(_) if *sent >= keep => None,
                Ok(c) => {
                    let take = ((keep - *sent) as usize).min(c.len());
                    *sent += take as u64;
                    Some(Ok(c.slice(..take)))
                }
                Err(e) => Some(Err(e)),
            };
            async move { out }
        })
        .chain(stream::once(async move { Err(tail.await) })),
    )
}

/// Sends about half of a body, then nothing for two minutes, then fails: a stalled transfer.
pub fn stall(body: ByteStream, len: u64) -> ByteStream {
    half_then(body, len, async {
        tokio::time::sleep(Duration::from_secs(120)).await;
        std::io::Error::new(std::io::ErrorKind::TimedOut, "emulator fault: stalled body")
    })
}

/// Cuts a body off after about half of it (after the head and the kept half have gone out).
pub fn cut_off(body: ByteStream, len: u64) -> ByteStream {
    half_then(body, len, async {
        tokio::time::sleep(FLUSH_PAUSE).await;
        std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "emulator fault: body dropped",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_roughly_honoured() {
        let f = Faults::new(FaultConfig {
            error_rate: 0.3,
            ..Default::default()
        });
        let errors = (0..10_000)
            .filter(|_| matches!(f.decide(), Injected::Error(_)))
            .count();
        assert!((2_700..3_300).contains(&errors), "{errors}");
        f.set(FaultConfig::default());
        assert!((0..1000).all(|_| f.decide() == Injected::None));
        assert!(FaultConfig {
            drop_rate: 1.5,
            ..Default::default()
        }
        .validate()
        .is_err());
    }

    #[tokio::test]
    async fn cut_off_delivers_half_then_fails() {
        let chunks: Vec<std::io::Result<Bytes>> =
            (0..4).map(|_| Ok(Bytes::from(vec![1u8; 100]))).collect();
        let s = cut_off(Box::pin(stream::iter(chunks)), 400);
        let got: Vec<_> = s.collect().await;
        let ok: usize = got
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|b| b.len())
            .sum();
        assert_eq!(ok, 200);
        assert!(got.last().is_some_and(|r| r.is_err()));
    }
}
