//! The emulator's `Range` header parser: whatever a client sends, a range it accepts lies inside
//! the object. Kept apart from the filesystem's parsers because it tests the emulator's code,
//! and moves with the emulator when that becomes a crate of its own.

use proptest::prelude::*;

proptest! {
    #[test]
    fn ranges_stay_inside_the_object(h in "[ -~]{0,30}", size in 0u64..10_000) {
        let header = format!("bytes={h}");
        if let Ok(Some((a, b))) = apsfs::emulator::content::parse_range(Some(&header), size) {
            prop_assert!(a <= b && b < size);
        }
    }
}
