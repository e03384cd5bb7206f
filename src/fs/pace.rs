//! How many entries one `readdir` call of an open directory builds. The kernel's reply buffer
//! (4 KiB to 1 MiB, by kernel and caller) is not known here, and entries built beyond it are
//! thrown away (with their lookups given back, for `readdirplus`). Building every remaining
//! entry on each call made listing a big directory quadratic (300,000 entries: 33 s from
//! cache); building about what the kernel took last time, from where it asks next, keeps the
//! work per call proportional to what the call returns.

use std::sync::Mutex;

/// Entries the first call builds: a 4 KiB buffer takes about 20 `readdirplus` entries.
pub const FIRST: usize = 64;

/// The most entries one call builds: a 1 MiB buffer of the shortest entries (32 bytes).
pub const MOST: usize = 32_768;

/// The pace of one open directory.
#[derive(Debug)]
pub struct Pace {
    /// The offset of the last call, the entries it built, and what the next call builds.
    last: Mutex<(u64, usize, usize)>,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            last: Mutex::new((0, 0, FIRST)),
        }
    }
}

impl Pace {
    /// Entries to build for a call at `offset`. When it continues where the last call's
    /// entries ended, the kernel took them all (maybe it had room for more): twice as many.
    /// When it continues within them, the kernel took `taken`: that many again and an eighth
    /// more, as names vary in length. Any other offset (a seek) keeps the pace.
    pub fn batch(&self, offset: u64) -> usize {
        let Ok(mut last) = self.last.lock() else {
            return FIRST;
        };
        let (at, built, want) = *last;
        let want = match offset.checked_sub(at) {
            Some(taken) if built > 0 && taken >= built as u64 => (built * 2).min(MOST),
            Some(taken) if taken > 0 && built > 0 => {
                let taken = taken as usize;
                (taken + taken / 8 + 1).clamp(1, MOST)
            }
            _ => want,
        };
        *last = (offset, want, want);
        want
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_what_the_kernel_takes() {
        let p = Pace::default();
        assert_eq!(p.batch(0), FIRST);
        // The kernel took 20 of 64: 20 and a bit from now on.
        assert_eq!(p.batch(20), 23);
        assert_eq!(p.batch(40), 23);
        // It took all 23: it may have room for more.
        assert_eq!(p.batch(63), 46);
        // A seek back keeps the pace.
        assert_eq!(p.batch(0), 46);
        let grow = Pace::default();
        let mut at = 0;
        for _ in 0..20 {
            at += grow.batch(at) as u64;
        }
        assert_eq!(grow.batch(at), MOST);
    }
}
