//! Fault injection: added latency, a bandwidth cap (on downloads and part uploads), 5xx
//! answers, 429 answers and byte bodies cut off mid-transfer and refused batch calls, each
//! independently and changeable at run time (`PUT /__emulator/faults`).
//!
//! Beyond those, the knobs of a hostile or broken server (all off by default):
//!
//! * `redirect`: `api_foreign` answers every authenticated JSON API request `307` to the same
//!   path on the foreign origin (a second listener, [`crate::Running::foreign_url`], which counts
//!   requests carrying credentials); `api_same` redirects them to the same origin once (with
//!   `redirected=1` appended); `token_foreign` redirects the token endpoint to the foreign origin;
//!   `storage_foreign` redirects signed byte GETs there (where the bytes are served).
//! * `object_count`: every folder's `objectCount` reports this instead of the truth.
//! * `json_padding_mib`: every JSON answer of the API ends with this many MiB of whitespace.
//! * `endless_json`: JSON API GETs answer a JSON start followed by whitespace forever.
//! * `range_ignored`: signed byte GETs answer `200` with an HTML page of the object's size + 4096.
//! * `listed_size_offset`: `storageSize` of versions in Data answers is off by this much.
//! * `trickle_ms`: every response body is sent one byte every N ms.
//! * `token_expires_in`: the `expires_in` the token endpoint reports (and the tokens live).
//! * `retry_after_secs`, `retry_after_date`: the `Retry-After` of injected 429s, in seconds or
//!   as an HTTP date.
//! * `token_error_rate`: fraction of token requests answered 503.
//! * `bad_entries`: folder-contents pages carry a name with a lone surrogate escape and a
//!   `storageSize` of `1e400`.
//! * `bad_next_link`: `links.next.href` is a malformed URL.
//! * `strict_item_names`: item and version names are held to the folder-name rules.
//! * `refuse_storage_reuse`: `POST items` and `POST versions` refuse (400) a storage object
//!   some version already holds, as the real service may (UNCONFIRMED).
//!
//! And aimed at one endpoint, by its [`crate::router::Route::key`]: `route_faults` holds, per
//! route, a latency and a run of failures after some successes (see [`RouteFault`]), e.g. the
//! `POST versions` that follows a completed upload, or the part PUT a test kills a client in.

use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The fault knobs; all zero (and false, and empty) means a well-behaved server.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Added to every request before it is answered.
    pub latency_ms: u64,
    /// Cap in MiB/s (0 = unlimited) per object body, both ways: the bytes a signed GET answers
    /// and the part a signed PUT sends (read no faster than that, so TCP holds the client
    /// back). One connection carries one body at a time, so this is a cap per connection.
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
    /// Which requests are answered `307` instead, and to which origin (see [`Redirect`]).
    pub redirect: Redirect,
    /// Every folder's `objectCount` reports this number (0 = the truth); pages stay truthful.
    pub object_count: u64,
    /// MiB of whitespace appended to every JSON answer of the API (0 = none).
    pub json_padding_mib: u64,
    /// JSON API GETs answer a valid JSON start followed by whitespace that never ends.
    pub endless_json: bool,
    /// Signed byte GETs ignore `Range` and answer 200 with an HTML page of size + 4096 bytes.
    pub range_ignored: bool,
    /// Added to every listed version size (`storageSize`), saturating at 0; OSS stays truthful.
    pub listed_size_offset: i64,
    /// Every response body is sent one byte every this many ms (0 = at full speed).
    pub trickle_ms: u64,
    /// The `expires_in` the token endpoint reports, and the tokens' life (0 = the configured TTL).
    pub token_expires_in: u64,
    /// `Retry-After` of injected 429s in seconds (0 = 1).
    pub retry_after_secs: u64,
    /// Send the `Retry-After` of injected 429s as an HTTP date (now + `retry_after_secs`).
    pub retry_after_date: bool,
    /// Fraction of token endpoint requests answered 503, independently of `error_rate`.
    pub token_error_rate: f64,
    /// Folder-contents pages with two items or more name the first with a lone surrogate
    /// escape (`\ud800`) and give the second's tip a `storageSize` of `1e400`.
    pub bad_entries: bool,
    /// `links.next.href` of pages that have a next page is a malformed URL.
    pub bad_next_link: bool,
    /// Item and version names are refused (400) for the folder-name reserved characters too,
    /// not only `/` and NUL: the newer OpenAPI asks to avoid them in every name, the reference
    /// leaves file names UNCONFIRMED, so a client can be tested against the strict reading.
    pub strict_item_names: bool,
    /// `POST items` and `POST versions` answer 400 BAD_INPUT ("storage is already used by
    /// another version") when the storage object they name already holds some version's bytes.
    /// Whether a BIM 360 rename by new version may reuse its tip's storage instead of uploading
    /// again is UNCONFIRMED; by default it may, and this tests a client's fallback.
    pub refuse_storage_reuse: bool,
    /// Faults aimed at one endpoint, by route key (`create_version`, `signed_put`, …): see
    /// [`RouteFault`]. Counts left are shown by `GET /__emulator/faults`.
    pub route_faults: BTreeMap<String, RouteFault>,
}

/// What `route_faults` does to the requests of one route: each waits `latency_ms` before its
/// body is read (a part PUT is held while the client is still sending it); the first `after`
/// requests are then answered normally and the `fail_next` after them answer `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteFault {
    /// Requests let through before the failures start; counts down.
    pub after: u64,
    /// Requests answered `status` once `after` is spent; counts down.
    pub fail_next: u64,
    /// 400–599 in the route family's error shape: 429 carries `Retry-After`; on a signed part
    /// PUT 403 is S3's `AccessDenied` "Request has expired", as an expired URL gets.
    pub status: u16,
    /// Added to every request of the route, failing or not, before its body is read.
    pub latency_ms: u64,
}

/// A 503, as a service that is briefly unavailable answers: the failure tests want most.
impl Default for RouteFault {
    fn default() -> RouteFault {
        RouteFault {
            after: 0,
            fail_next: 0,
            status: 503,
            latency_ms: 0,
        }
    }
}

/// Which requests the `redirect` knob answers `307`, and where to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Redirect {
    /// No redirects.
    #[default]
    Off,
    /// Authenticated JSON API requests go to the same path on the foreign origin.
    ApiForeign,
    /// Authenticated JSON API requests go to the same origin once more, with a marker.
    ApiSame,
    /// The token endpoint goes to the foreign origin (307 keeps the body, refresh token included).
    TokenForeign,
    /// Signed byte GETs go to the foreign origin, which serves the bytes.
    StorageForeign,
}

/// The query parameter `api_same` appends; a request carrying it is answered normally.
pub const REDIRECTED_MARKER: &str = "redirected";

/// Largest `json_padding_mib` accepted.
const MAX_PADDING_MIB: u64 = 4096;
/// Largest `trickle_ms` accepted.
const MAX_TRICKLE_MS: u64 = 60_000;
/// Largest per-route `latency_ms` accepted: ten minutes holds a request past any client's
/// patience while a mistyped value cannot hold a test for days.
const MAX_ROUTE_LATENCY_MS: u64 = 600_000;

impl FaultConfig {
    /// Rejects rates outside 0..=1, negative bandwidth, and padding or trickle beyond their caps.
    pub fn validate(&self) -> Result<(), String> {
        for (name, r) in [
            ("error_rate", self.error_rate),
            ("throttle_rate", self.throttle_rate),
            ("drop_rate", self.drop_rate),
            ("stall_rate", self.stall_rate),
            ("token_error_rate", self.token_error_rate),
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
        if self.json_padding_mib > MAX_PADDING_MIB {
            return Err(format!(
                "json_padding_mib must be at most {MAX_PADDING_MIB}, got {}",
                self.json_padding_mib
            ));
        }
        if self.trickle_ms > MAX_TRICKLE_MS {
            return Err(format!(
                "trickle_ms must be at most {MAX_TRICKLE_MS}, got {}",
                self.trickle_ms
            ));
        }
        self.route_faults
            .iter()
            .try_for_each(|(route, f)| f.validate(route))
    }
}

impl FaultConfig {
    /// Milliseconds to hold a request of `route` before reading its body: the global latency
    /// plus the route's own.
    pub fn latency_of(&self, route: &str) -> u64 {
        let own = self.route_faults.get(route).map_or(0, |f| f.latency_ms);
        self.latency_ms.saturating_add(own)
    }
}

impl RouteFault {
    /// Refuses a route no request is counted under, a status outside 400–599 and a latency
    /// beyond its cap.
    fn validate(&self, route: &str) -> Result<(), String> {
        if !crate::router::ROUTE_KEYS.contains(&route) {
            return Err(format!(
                "route_faults: unknown route {route:?}; routes are: {}",
                crate::router::ROUTE_KEYS.join(", ")
            ));
        }
        if !(400..=599).contains(&self.status) {
            return Err(format!(
                "route_faults.{route}.status must be 400 to 599, got {}",
                self.status
            ));
        }
        if self.latency_ms > MAX_ROUTE_LATENCY_MS {
            return Err(format!(
                "route_faults.{route}.latency_ms must be at most {MAX_ROUTE_LATENCY_MS}, got {}",
                self.latency_ms
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
        self.config.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Whether this request of `route` is one `route_faults` fails, and with which status;
    /// counts the request off `after` or `fail_next`, under the lock, so two requests in
    /// flight never take the same turn.
    pub fn take_route_failure(&self, route: &str) -> Option<u16> {
        let mut c = self.config.lock().ok()?;
        let f = c.route_faults.get_mut(route)?;
        if f.after > 0 {
            f.after -= 1;
            return None;
        }
        if f.fail_next == 0 {
            return None;
        }
        f.fail_next -= 1;
        Some(f.status)
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

    /// Whether this token request is answered 503 (`token_error_rate`).
    pub fn token_error(&self) -> bool {
        let r = self.get().token_error_rate;
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

/// Sends a body one byte every `ms` milliseconds (the first byte too), whatever its chunks.
pub fn trickle(body: ByteStream, ms: u64) -> ByteStream {
    if ms == 0 {
        return body;
    }
    let bytes = body.flat_map(|chunk| match chunk {
        Ok(b) => stream::iter((0..b.len()).map(move |i| Ok(b.slice(i..i + 1)))).left_stream(),
        Err(e) => stream::once(async move { Err(e) }).right_stream(),
    });
    Box::pin(bytes.then(move |c| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        c
    }))
}

/// Size of the whitespace chunks of padding and endless bodies.
pub const CHUNK: usize = 64 << 10;

/// One chunk of spaces, shared by every padded or endless body (clones are free).
static SPACES: [u8; CHUNK] = [b' '; CHUNK];

/// `mib` MiB of spaces after `body`, in 64 KiB chunks that are never copied.
pub fn pad(body: ByteStream, mib: u64) -> ByteStream {
    if mib == 0 {
        return body;
    }
    let chunks = mib.saturating_mul(((1 << 20) / CHUNK) as u64);
    let spaces = stream::repeat(Bytes::from_static(&SPACES))
        .take(usize::try_from(chunks).unwrap_or(usize::MAX))
        .map(Ok);
    Box::pin(body.chain(spaces))
}

/// The start of a JSON:API list document the endless body begins with.
pub const ENDLESS_START: &str = r#"{"jsonapi":{"version":"1.0"},"data":["#;

/// A body that starts like a JSON:API list and then sends spaces forever, as fast as the client
/// reads: one shared chunk, so it holds no memory, and it ends when the connection does.
pub fn endless() -> ByteStream {
    let start = stream::once(async { Ok(Bytes::from_static(ENDLESS_START.as_bytes())) });
    Box::pin(start.chain(stream::repeat(Bytes::from_static(&SPACES)).map(Ok)))
}

/// An HTML page of exactly `len` bytes (at least the markup around it), standing in for a
/// proxy's answer where the object should have been.
pub fn html_page(len: u64) -> ByteStream {
    const HEAD: &[u8] = b"<html><head><title>Welcome</title></head><body><pre>\n";
    const TAIL: &[u8] = b"</pre></body></html>\n";
    let markup = (HEAD.len() + TAIL.len()) as u64;
    let fill = len.saturating_sub(markup);
    let full = fill / CHUNK as u64;
    let rest = (fill % CHUNK as u64) as usize;
    let filler = stream::repeat(Bytes::from_static(&SPACES))
        .take(usize::try_from(full).unwrap_or(usize::MAX))
        .chain(stream::once(
            async move { Bytes::from_static(&SPACES[..rest]) },
        ));
    Box::pin(
        stream::once(async { Bytes::from_static(HEAD) })
            .chain(filler)
            .chain(stream::once(async { Bytes::from_static(TAIL) }))
            .map(Ok),
    )
}

/// A body that fails before its first byte. Hyper then drops the connection with the status
/// line and headers still unsent (see [`FLUSH_PAUSE`]), so the client sees no response at all:
/// a connection lost while the request was on its way.
pub fn severed() -> ByteStream {
    Box::pin(stream::once(async {
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "emulator fault: connection dropped",
        ))
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

    async fn collect(s: ByteStream) -> Vec<u8> {
        let chunks: Vec<_> = s.collect().await;
        chunks
            .into_iter()
            .flat_map(|c| c.expect("chunk").to_vec())
            .collect()
    }

    #[tokio::test]
    async fn shaped_bodies_have_their_lengths() {
        let one: ByteStream = Box::pin(stream::once(async { Ok(Bytes::from_static(b"{}")) }));
        let padded = collect(pad(one, 1)).await;
        assert_eq!(padded.len(), 2 + (1 << 20));
        assert!(serde_json::from_slice::<serde_json::Value>(&padded).is_ok());
        for len in [4096u64, 4096 + 10, 3 * CHUNK as u64 + 4096] {
            let page = collect(html_page(len)).await;
            assert_eq!(page.len() as u64, len);
            assert!(page.starts_with(b"<html>"));
        }
        let start: Vec<_> = endless().take(3).collect().await;
        assert_eq!(start.len(), 3);
        let tr = trickle(
            Box::pin(stream::once(async { Ok(Bytes::from_static(b"abc")) })),
            1,
        );
        let parts: Vec<_> = tr.collect().await;
        assert_eq!(parts.len(), 3);
    }

    #[test]
    fn route_faults_let_some_through_then_fail_some_then_stop() {
        let fault = RouteFault {
            after: 1,
            fail_next: 2,
            status: 502,
            latency_ms: 7,
        };
        let c = FaultConfig {
            latency_ms: 3,
            route_faults: BTreeMap::from([("create_version".to_string(), fault)]),
            ..Default::default()
        };
        assert!(c.validate().is_ok());
        assert_eq!(c.latency_of("create_version"), 10);
        assert_eq!(c.latency_of("create_item"), 3);
        let f = Faults::new(c);
        let taken: Vec<_> = (0..5)
            .map(|_| f.take_route_failure("create_version"))
            .collect();
        assert_eq!(taken, [None, Some(502), Some(502), None, None]);
        assert_eq!(f.take_route_failure("create_item"), None);
        assert_eq!(f.get().route_faults["create_version"].fail_next, 0);
        for (route, status, latency) in [
            ("no_such_route", 503, 0),
            ("create_version", 200, 0),
            ("create_version", 600, 0),
            ("signed_put", 503, MAX_ROUTE_LATENCY_MS + 1),
        ] {
            let bad = FaultConfig {
                route_faults: BTreeMap::from([(
                    route.to_string(),
                    RouteFault {
                        status,
                        latency_ms: latency,
                        ..Default::default()
                    },
                )]),
                ..Default::default()
            };
            assert!(bad.validate().is_err(), "{route} {status} {latency}");
        }
    }

    #[tokio::test]
    async fn severed_fails_before_any_byte() {
        let got: Vec<_> = severed().collect().await;
        assert_eq!(got.len(), 1);
        assert!(got[0].is_err());
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
