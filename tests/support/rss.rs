//! How much memory an emulator process holds, for the bound the scale test puts on it.

use crate::support::emulator::Emulator;

impl Emulator {
    /// Resident set size of the emulator process (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.id();
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS line")
    }
}
