//! `Fs` against a reference model: random sequences of lookups, listings (one-shot and through
//! handles kept open), opens and reads at random offsets, remote changes (new versions, new
//! items, items removed, hidden or deleted, folders added or hidden), TTL expiry, cache eviction
//! (tiny cache bounds) and kernel `forget`s run against `Fs` over a `MemoryRemote`, and every
//! answer is checked against what the model allows the mount to show.
//!
//! The model keeps the account's state after every change (its epochs). A listing the mount
//! holds is the account as of one epoch, so each directory carries the epochs its answers so
//! far are consistent with, and every new answer narrows them:
//! - exact runs (a TTL of an hour, caches too large to evict): the first answer about a
//!   directory fixes its listing for good, so later answers must agree with the same epochs;
//! - loose runs (a TTL of a few milliseconds, tiny caches): a listing may be fetched again at
//!   any time, but never shows an epoch older than one it showed before (no going back), nor
//!   older than the last `Expire` (which sleeps past the TTL).
//!
//! A file handle reads the version it was opened on, whatever happens remotely; an inode is
//! one version (or one folder) for good, and a version is always the same inode. Names need
//! no escaping and never repeat, so `names.rs` plays no part; sizes never repeat either, so a
//! size says which version a file shows. The harness behaves like the kernel: it only uses
//! inodes it holds, and forgets an inode only when no inode it holds is a child of it and no
//! handle is open on it.
//!
//! Loose runs do not depend on the machine's speed: a slow step only lets a listing expire
//! earlier than the model requires, which it allows. Rollups, when the account moves them, let
//! `Fs` keep a listing past its TTL, but only while nothing below the folder changed, so the
//! listing is still the account as it is now and the model holds as it is.
//!
//! With injected failures (5xx and 429 on listings, timeouts on sizes, network errors and
//! short bodies on reads), an answer may also be an error, but only the errno of a failure
//! injected during that step (for reads: since the file was opened, as read-ahead may have
//! fetched the failed part earlier). Listings fail only with errors the service answers: an
//! unreachable service makes `Fs` serve stale listings on purpose (see `offline.rs`).
//!
//! `account.rs` holds the model and the changes made to both sides, `steps.rs` the steps and
//! their generation, `case.rs` one case from start to end, `run.rs` its state and checks,
//! `dirs.rs` and `files.rs` the checks of listings and of reads.

mod account;
mod case;
mod dirs;
mod files;
mod run;
mod steps;

use case::run;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use run::Setup;
use steps::{setup, step, Step};

/// Cases of each property per run (`PROPTEST_CASES` overrides).
const CASES: u32 = 64;
/// Most steps in one case.
const MAX_STEPS: usize = 40;

/// Runs one case on a runtime of its own, on one thread, so read-ahead tasks interleave with
/// the steps the same way each time a case is run (shrinking needs that).
fn check(setup: Setup, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| TestCaseError::fail(format!("no runtime: {e}")))?;
    rt.block_on(run(setup, steps))
}

/// `CASES`, unless `PROPTEST_CASES` asks for another number.
fn config() -> ProptestConfig {
    let base = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        base
    } else {
        ProptestConfig {
            cases: CASES,
            // Enough to shrink a failing case to a handful of steps.
            max_shrink_iters: 4096,
            ..base
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_mount_shows_what_the_model_allows(
        setup in setup(false),
        steps in prop::collection::vec(step(), 1..MAX_STEPS),
    ) {
        check(setup, steps)?;
    }

    #[test]
    fn injected_failures_become_errors_never_wrong_names_or_bytes(
        setup in setup(true),
        steps in prop::collection::vec(step(), 1..MAX_STEPS),
    ) {
        check(setup, steps)?;
    }
}

/// Found by the property: a directory handle's listing evicted from the cache lost the nodes of
/// its entries (pruned, as the kernel held none of them), and `readdirplus` on the still open
/// handle then skipped those entries, so `ls` showed fewer files than the folder has.
#[test]
fn a_handle_kept_open_lists_every_entry_after_its_listing_is_evicted() -> Result<(), TestCaseError>
{
    let setup = Setup {
        exact: false,
        rollups: false,
        max_dirs: 1,
        max_entries: 1,
        faults: None,
    };
    check(
        setup,
        vec![
            // Opens /Project Files and keeps the handle.
            Step::OpenDir { dir: 1 },
            // Lists the root, /Project Files and /Project Files/d4: with room for one listing,
            // that of /Project Files is evicted.
            Step::Lookup {
                node: 3,
                missing: true,
            },
            Step::ReadDir {
                handle: 0,
                offset: 0,
                plus: true,
            },
        ],
    )
}
