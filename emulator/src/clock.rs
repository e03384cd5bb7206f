//! The emulator's notion of "now" and the timestamp spellings the real service mixes.
//!
//! The clock can be moved forward through `/__emulator/clock` so tests can expire tokens and
//! signed URLs without sleeping.

use chrono::{DateTime, TimeZone, Utc};
use std::sync::atomic::{AtomicI64, Ordering};

/// Wall clock plus a test-controlled offset.
#[derive(Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// Milliseconds since the Unix epoch, including any offset tests added.
    pub fn now_ms(&self) -> i64 {
        Utc::now().timestamp_millis() + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Moves the clock forward (never backward: expiry must stay monotonic).
    pub fn advance(&self, secs: u64) {
        let ms = i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX / 2);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// The ISO 8601 variants seen in official examples; clients must parse them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StampFormat {
    /// `2015-11-27T11:11:23.000Z`
    #[default]
    Millis,
    /// `2018-01-17T11:52:11.0000000Z`
    Ticks,
    /// `2016-05-24T19:25:23+00:00`
    Offset,
}

/// A point in time as the service reports it: milliseconds plus the spelling to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Stamp {
    /// Milliseconds since the Unix epoch.
    pub ms: i64,
    /// How to spell it on the wire.
    pub format: StampFormat,
}

impl Stamp {
    /// A stamp in the default spelling.
    pub fn new(ms: i64) -> Stamp {
        Stamp {
            ms,
            format: StampFormat::Millis,
        }
    }

    /// The wire spelling.
    pub fn render(&self) -> String {
        let t = utc(self.ms);
        match self.format {
            StampFormat::Millis => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            StampFormat::Ticks => format!(
                "{}.{:07}Z",
                t.format("%Y-%m-%dT%H:%M:%S"),
                (self.ms.rem_euclid(1000)) * 10_000
            ),
            StampFormat::Offset => t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
        }
    }
}

fn utc(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// RFC 7231 date for `Last-Modified`.
pub fn http_date(ms: i64) -> String {
    utc(ms).format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Parses an `If-Modified-Since` value; `None` for anything unparseable (then it is ignored).
pub fn parse_http_date(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|d| d.timestamp_millis())
}

/// ISO 8601 UTC seconds, as OSS upload expirations are spelled.
pub fn iso_seconds(ms: i64) -> String {
    utc(ms).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        let ms = 1_448_622_683_120; // 2015-11-27T11:11:23.120Z
        let s = |format| Stamp { ms, format }.render();
        assert_eq!(s(StampFormat::Millis), "2015-11-27T11:11:23.120Z");
        assert_eq!(s(StampFormat::Ticks), "2015-11-27T11:11:23.1200000Z");
        assert_eq!(s(StampFormat::Offset), "2015-11-27T11:11:23+00:00");
        let h = http_date(ms);
        assert_eq!(h, "Fri, 27 Nov 2015 11:11:23 GMT");
        assert_eq!(parse_http_date(&h), Some(ms - 120));
    }
}
