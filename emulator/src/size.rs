//! Byte counts in `--generate` specs (`size=16KiB`, `large=2x3GiB`), spelled as `SPEC_HELP`
//! documents them: a whole number, optionally followed by `B`, `K`/`KiB`, `M`/`MiB` or
//! `G`/`GiB` (binary units, any case, spaces allowed around the unit).

/// The byte count `s` spells, or `None` when it is not one or does not fit in 64 bits.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    if digits.is_empty() {
        return None;
    }
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn documented_spellings() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("7B"), Some(7));
        assert_eq!(parse_size("16K"), Some(16 * 1024));
        assert_eq!(parse_size("16kib"), Some(16 * 1024));
        assert_eq!(parse_size("2M"), Some(2 * 1024 * 1024));
        assert_eq!(parse_size(" 2 MiB "), Some(2 * 1024 * 1024));
        assert_eq!(parse_size("3GiB"), Some(3 * 1024 * 1024 * 1024));
    }

    #[test]
    fn anything_else_is_refused() {
        for s in ["", "GiB", "-1", "1.5K", "12XB", "1 TiB", "0x10", "1KB"] {
            assert_eq!(parse_size(s), None, "{s:?}");
        }
        assert_eq!(parse_size("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_size("18446744073709551616"), None, "past 64 bits");
        assert_eq!(parse_size("17179869184G"), None, "the unit overflows");
    }
}
