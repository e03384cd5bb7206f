//! The write path against a model, at the `Remote` seam: random sequences of create, write,
//! rename, move, unlink, mkdir, rmdir, folder renames and moves, syncs, restarts and changes by
//! another client run through `Fs` over a `MemoryRemote`, and every answer and the end state
//! are checked against a simple model (`model.rs`): a tree of folders with files by name.
//!
//! What is checked:
//! - every operation answers what the model says: success, or `ENOENT`, `EEXIST`, `EPERM`
//!   (deletes without `--allow-delete` or on a team hub, a rename over another item's file,
//!   replacing a folder), `EXDEV` (moving a file that continues an item to another folder),
//!   `ENOTEMPTY`;
//! - after every sync, the service (folders, item names, tip bytes) is the model's tree
//!   exactly; every version ever seen on it is still there with the same bytes; every item the
//!   sync made is shown, no create was refused (a create for a name that had an item), and it
//!   made no more items than the files that needed one (one per file continuing no item, one
//!   per file beyond the first continuing the same item: identity is the name);
//! - at the end (and, in `observe` cases, after every step), the mount shows the model's tree:
//!   every name looked up and read before and after its folder is listed, and the listing; then
//!   again after a restart (unless a known bug rules restarts out, see below).
//!
//! What the model keeps besides the tree is only what the answers depend on: the item (an
//! opaque lineage) each name continues, and the names renamed away or removed since the last
//! sync (a file created or renamed onto such a name continues that item). A restart changes
//! nothing in it: the journal must carry everything.
//!
//! Deliberately left out:
//! - quiet periods: the mount's quiet period and longest delay are an hour, so changes go up
//!   only at a `Sync` step. Which changes went up before an operation decides its answer
//!   (`EXDEV` for a new file once it was sent), so a send at a moment the scheduler picks
//!   would make the model's answers depend on timing; `sync` goes through the same
//!   reconciler (`send_folder`), only earlier;
//! - what is sent when (the number of versions a sequence makes): only the end state, the
//!   history kept, and the items made are checked. States, not events, go to the service;
//! - changes by another client to names with changes here not sent yet (a conflict's outcome
//!   depends on what was sent when), deletes by another client, and any change by another
//!   client in cases that cache listings (the mount may show a cached listing for its TTL);
//! - names that stay local (lock, temp and backup names), local-only directories, files and
//!   folders under the same name, `RENAME_EXCHANGE`/`NOREPLACE`, files held open while other
//!   steps run (each step closes what it opened), files left open across a restart (kept as
//!   recovered, never sent: `write_tests.rs` covers them), reserved items,
//!   failures of the service (the read-side model injects those), and moves of a folder into
//!   itself (the kernel refuses them before they reach `Fs`).
//!
//! Bugs the property found are shown by the smallest sequences in `found.rs`, ignored until
//! they are fixed; meanwhile generated cases keep away from them (`run::Avoid`, whose guards go
//! with the fixes).
//!
//! `model.rs` holds the model, `steps.rs` the steps and their generation, `run.rs` a case and
//! its checks; the hand-written sequences below are the dances worth keeping as tests.

mod found;
mod model;
mod run;
mod steps;

use model::How;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use run::{run, Setup};
use steps::{data, step, Name, Step};

/// Cases of each property per run (`PROPTEST_CASES` overrides).
const CASES: u32 = 96;
/// Most steps in one case.
const MAX_STEPS: usize = 40;

/// Runs one case on a runtime of its own, on one thread, so the reconciler interleaves with
/// the steps the same way each time a case is run (shrinking needs that).
fn check(setup: Setup, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| TestCaseError::fail(format!("no runtime: {e}")))?;
    rt.block_on(run(setup, steps))
}

/// `cases`, unless `PROPTEST_CASES` asks for another number; failures are not written to a
/// regressions file (the ones found are the tests below).
fn config(cases: u32) -> ProptestConfig {
    let base = ProptestConfig {
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_some() {
        base
    } else {
        ProptestConfig { cases, ..base }
    }
}

/// Files the account starts with: up to four, in the top folder or in `F0`.
fn seed() -> impl Strategy<Value = Vec<(bool, usize, Vec<u8>)>> {
    prop::collection::vec((any::<bool>(), 0..model::FILES.len(), data()), 0..5)
}

/// A BIM 360 hub with `--allow-delete`, listings fresh or cached, observed or not.
fn bim360() -> impl Strategy<Value = Setup> {
    (any::<bool>(), any::<bool>(), seed()).prop_map(|(fresh, observe, seed)| Setup {
        bim360: true,
        allow_delete: true,
        fresh,
        observe,
        seed,
    })
}

/// A hub or mount where removing what the service has is refused: a team hub (with or without
/// `--allow-delete`), or BIM 360 without it.
fn no_deletes() -> impl Strategy<Value = Setup> {
    (
        prop_oneof![
            Just((false, false)),
            Just((false, true)),
            Just((true, false))
        ],
        any::<bool>(),
        any::<bool>(),
        seed(),
    )
        .prop_map(|((bim360, allow_delete), fresh, observe, seed)| Setup {
            bim360,
            allow_delete,
            fresh,
            observe,
            seed,
        })
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn on_bim360_with_deletes_the_service_ends_as_the_model_says(
        setup in bim360(),
        steps in prop::collection::vec(step(), 1..MAX_STEPS),
    ) {
        check(setup, steps)?;
    }
}

proptest! {
    #![proptest_config(config(CASES / 2))]

    #[test]
    fn without_deletes_the_service_ends_as_the_model_says(
        setup in no_deletes(),
        steps in prop::collection::vec(step(), 1..MAX_STEPS),
    ) {
        check(setup, steps)?;
    }
}

// ----- Hand-written sequences ----------------------------------------------------------------

/// File `i` of `FILES` by name.
fn n(i: usize) -> Name {
    Name::Any(i)
}

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
const T: usize = 3;

/// A BIM 360 account with `--allow-delete` whose top folder has a.txt and b.txt, listings
/// fresh, the mount checked after every step.
fn two_files() -> Setup {
    Setup {
        bim360: true,
        allow_delete: true,
        fresh: true,
        observe: true,
        seed: vec![(false, A, b"A1".to_vec()), (false, B, b"B1".to_vec())],
    }
}

fn mv(from: usize, to: usize) -> Step {
    Step::Rename {
        dir: 0,
        from: n(from),
        to,
    }
}

fn rm(name: usize) -> Step {
    Step::Unlink {
        dir: 0,
        name: n(name),
    }
}

fn new(name: usize, data: &[u8]) -> Step {
    Step::Create {
        dir: 0,
        name: n(name),
        data: data.to_vec(),
    }
}

fn edit(name: usize, data: &[u8]) -> Step {
    Step::Write {
        dir: 0,
        name: n(name),
        how: How::Append,
        data: data.to_vec(),
    }
}

async fn case(setup: Setup, steps: Vec<Step>) {
    if let Err(e) = run(setup, steps).await {
        panic!("{e}");
    }
}

#[tokio::test]
async fn a_rename_chain_ends_as_one_file() {
    case(two_files(), vec![mv(A, C), mv(C, T), Step::Sync]).await;
    case(
        two_files(),
        vec![mv(A, C), Step::Sync, mv(C, T), Step::Sync],
    )
    .await;
}

#[tokio::test]
async fn swapping_names_swaps_the_bytes() {
    case(two_files(), vec![mv(A, T), mv(B, A), mv(T, B), Step::Sync]).await;
}

#[tokio::test]
async fn rm_then_create_under_the_same_name() {
    case(two_files(), vec![rm(A), new(A, b"A2"), Step::Sync]).await;
    case(
        two_files(),
        vec![rm(A), Step::Sync, new(A, b"A2"), Step::Sync],
    )
    .await;
}

#[tokio::test]
async fn rename_then_edit() {
    case(two_files(), vec![mv(A, C), edit(C, b"+"), Step::Sync]).await;
}

#[tokio::test]
async fn rename_then_rm() {
    case(two_files(), vec![mv(A, C), rm(C), Step::Sync]).await;
}

#[tokio::test]
async fn rm_of_a_pending_save() {
    case(two_files(), vec![edit(A, b"+"), rm(A), Step::Sync]).await;
    case(two_files(), vec![new(C, b"C1"), rm(C), Step::Sync]).await;
}

#[tokio::test]
async fn restart_between_rename_and_sync() {
    case(two_files(), vec![mv(A, C), Step::Restart, Step::Sync]).await;
    case(
        two_files(),
        vec![mv(A, C), edit(C, b"+"), Step::Restart, Step::Sync],
    )
    .await;
}

#[tokio::test]
async fn rename_over_another_file_then_on() {
    case(two_files(), vec![mv(A, B), Step::Sync]).await;
    // The file renamed over is an overlay entry (a save): a rename of a file the service lists
    // over another is `found::a_file_renamed_over_another_and_on_leaves_neither_old_name`.
    case(
        two_files(),
        vec![edit(A, b"+"), mv(A, B), mv(B, C), Step::Sync],
    )
    .await;
}
