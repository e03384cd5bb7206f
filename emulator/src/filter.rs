//! The Data Management filter language (`filter[field]-op=v1,v2`) applied to rendered
//! resources, so every endpoint filters the same way the reference describes: comma = OR,
//! several filters = AND, `attributes.`/`meta.` prefixes optional, case-sensitive, and
//! timestamps compared as instants whatever their spelling (§4.16).

use super::request::Req;
use serde_json::Value;
use std::cmp::Ordering;

/// One `filter[...]` parameter.
#[derive(Debug, Clone)]
pub struct Filter {
    path: String,
    op: Op,
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Lt,
    Le,
    Ge,
    Gt,
    Starts,
    Ends,
    Contains,
}

/// All filters of a request (other than `page[...]`).
pub fn from_request(req: &Req) -> Vec<Filter> {
    req.query
        .iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix("filter[")?;
            let (field, suffix) = rest.split_once(']')?;
            let op = match suffix {
                "" | "-eq" => Op::Eq,
                "-lt" => Op::Lt,
                "-le" => Op::Le,
                "-ge" => Op::Ge,
                "-gt" => Op::Gt,
                "-starts" => Op::Starts,
                "-ends" => Op::Ends,
                "-contains" => Op::Contains,
                _ => return None,
            };
            Some(Filter {
                path: field.to_string(),
                op,
                values: v.split(',').map(String::from).collect(),
            })
        })
        .collect()
}

/// Whether any filter names `field` (e.g. `hidden`).
pub fn mentions(filters: &[Filter], field: &str) -> bool {
    filters
        .iter()
        .any(|f| f.path == field || f.path == format!("attributes.{field}"))
}

/// Whether `resource` passes every filter.
pub fn matches(filters: &[Filter], resource: &Value) -> bool {
    filters.iter().all(|f| f.matches(resource))
}

impl Filter {
    fn lookup<'a>(&self, r: &'a Value) -> Option<&'a Value> {
        let direct = |path: &str| path.split('.').try_fold(r, |v, k| v.get(k));
        let p = self.path.as_str();
        direct(p)
            .or_else(|| direct(&format!("attributes.{p}")))
            .or_else(|| direct(&format!("meta.{p}")))
            .or_else(|| {
                (p == "name")
                    .then(|| direct("attributes.displayName"))
                    .flatten()
            })
    }

    fn matches(&self, r: &Value) -> bool {
        let Some(v) = self.lookup(r) else {
            return false;
        };
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Null => return false,
            other => other.to_string(),
        };
        // Only timestamp attributes compare as instants: a name such as "2023-01" must
        // still match as text.
        let instant = match v {
            Value::String(s) if s.contains('T') => parse_instant(s),
            _ => None,
        };
        self.values.iter().any(|want| {
            let ord = || match instant.zip(parse_instant(want)) {
                Some((a, b)) => Some(a.cmp(&b)),
                None => match (text.parse::<f64>(), want.parse::<f64>()) {
                    (Ok(a), Ok(b)) => a.partial_cmp(&b),
                    _ => Some(text.as_str().cmp(want.as_str())),
                },
            };
            match self.op {
                Op::Eq => &text == want || (instant.is_some() && ord() == Some(Ordering::Equal)),
                Op::Starts => text.starts_with(want.as_str()),
                Op::Ends => text.ends_with(want.as_str()),
                Op::Contains => text.contains(want.as_str()),
                Op::Lt => ord() == Some(Ordering::Less),
                Op::Le => matches!(ord(), Some(Ordering::Less | Ordering::Equal)),
                Op::Ge => matches!(ord(), Some(Ordering::Greater | Ordering::Equal)),
                Op::Gt => ord() == Some(Ordering::Greater),
            }
        })
    }
}

/// Parses the date spellings the filter guide accepts (§4.16) into nanoseconds since the
/// epoch: `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, then `THH:MM[:SS[.f]]` with 0–7 fractional digits
/// and an optional `Z` or `±HH:MM`/`±HHMM` offset; no zone means UTC. Missing parts are the
/// start of the period. A space where the offset sign belongs is read as `+`, since an
/// unencoded `+` in a query string arrives as a space.
pub fn parse_instant(s: &str) -> Option<i128> {
    let digits = |t: &str, n: usize| -> Option<u32> {
        (t.len() == n && t.bytes().all(|c| c.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let year = digits(parts.next()?, 4)?;
    let month = parts.next().map(|m| digits(m, 2)).unwrap_or(Some(1))?;
    let day = parts.next().map(|d| digits(d, 2)).unwrap_or(Some(1))?;
    if parts.next().is_some() || (time.is_some() && date.len() != 10) {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    let (mut secs, mut nanos, mut offset) = (0i64, 0i64, 0i64);
    if let Some(t) = time {
        let (clock, zone) = match t.find(['Z', 'z', '+', '-', ' ']) {
            Some(i) => (&t[..i], &t[i..]),
            None => (t, ""),
        };
        let (hms, frac) = match clock.split_once('.') {
            Some((a, f)) => (a, Some(f)),
            None => (clock, None),
        };
        let mut f = hms.split(':');
        let h = digits(f.next()?, 2)?;
        let m = digits(f.next()?, 2)?;
        let sec = f.next().map(|x| digits(x, 2)).unwrap_or(Some(0))?;
        if f.next().is_some() || h > 23 || m > 59 || sec > 60 {
            return None;
        }
        secs = i64::from(h * 3600 + m * 60 + sec);
        if let Some(frac) = frac {
            if frac.len() > 7 || !frac.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let padded = format!("{frac:0<9}");
            nanos = padded.parse().ok()?;
        }
        offset = match zone {
            "" | "Z" | "z" => 0,
            z => {
                let sign = if z.starts_with('-') { -1 } else { 1 };
                let rest = &z[1..];
                let (oh, om) = match rest.split_once(':') {
                    Some((a, b)) => (digits(a, 2)?, digits(b, 2)?),
                    None if rest.len() == 4 => (digits(&rest[..2], 2)?, digits(&rest[2..], 2)?),
                    None => (digits(rest, 2)?, 0),
                };
                if oh > 23 || om > 59 {
                    return None;
                }
                sign * i64::from(oh * 3600 + om * 60)
            }
        };
    }
    let day_secs = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
    let utc = day_secs + secs - offset;
    Some(i128::from(utc) * 1_000_000_000 + i128::from(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: i128 = 1_000_000_000;

    #[test]
    fn date_spellings() {
        let t = |s| parse_instant(s);
        let day = t("2023-04-05").expect("day");
        assert_eq!(day, 1_680_652_800 * NS);
        assert_eq!(t("2023"), t("2023-01-01T00:00:00Z"));
        assert_eq!(t("2023-04"), t("2023-04-01T00:00:00.0000000Z"));
        assert_eq!(t("2023-04-05T06:07:08"), Some(day + 22_028 * NS));
        assert_eq!(
            t("2023-04-05T06:07:08.1234567Z"),
            Some(day + 22_028 * NS + 123_456_700)
        );
        assert_eq!(
            t("2023-04-05T06:07:08.120Z"),
            t("2023-04-05T06:07:08.1200000Z")
        );
        assert_eq!(t("2023-04-05T11:07:08+05:00"), t("2023-04-05T06:07:08Z"));
        assert_eq!(t("2023-04-05T11:07:08 05:00"), t("2023-04-05T06:07:08Z"));
        assert_eq!(t("2023-04-05T01:07:08-0500"), t("2023-04-05T06:07:08Z"));
        assert_eq!(t("2023-04-05T06:07"), t("2023-04-05T06:07:00Z"));
        for bad in [
            "",
            "23",
            "2023-4",
            "2023-13",
            "2023-02-30",
            "2023-04-05T6:07:08",
            "2023-04-05T06:07:08.12345678Z",
            "Tower A.rvt",
            "2023-04-05T06:07:08+5",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates_compare_as_instants() {
        let f = |op: &str, v: &str| Filter {
            path: "lastModifiedTime".into(),
            op: match op {
                "ge" => Op::Ge,
                "lt" => Op::Lt,
                _ => Op::Eq,
            },
            values: vec![v.into()],
        };
        let r = serde_json::json!({ "attributes": { "lastModifiedTime": "2023-04-05T06:07:08.0000000Z", "name": "2023-01" } });
        assert!(f("ge", "2023-04-05T11:07:08+05:00").matches(&r));
        assert!(f("ge", "2023-04-05T06:07:08.000Z").matches(&r));
        assert!(!f("lt", "2023-04-05T06:07:08Z").matches(&r));
        assert!(f("lt", "2024").matches(&r));
        assert!(f("eq", "2023-04-05T06:07:08Z").matches(&r));
        let name = Filter {
            path: "name".into(),
            op: Op::Eq,
            values: vec!["2023".into()],
        };
        assert!(!name.matches(&r), "names compare as text");
    }
}
