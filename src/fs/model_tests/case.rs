//! One case from start to end: the account and the mount over it (with failures injected
//! when the case asks for them), every step in order, then whatever is still open closed.

use super::account::{account, Model};
use super::run::{fail, Run, Setup, LONG_TTL, SHORT_TTL};
use super::steps::Step;
use crate::api::{ApiError, Remote};
use crate::fs::{Fs, FsConfig, Scope};
use crate::testing::faulty::{Faulty, Rule};
use crate::testing::memory::{HUB, PROJECT};
use crate::testing::{MemoryRemote, Op};
use proptest::test_runner::TestCaseError;
use std::collections::HashMap;
use std::sync::Arc;

/// Runs one case to its end, then closes what is open.
pub(super) async fn run(setup: Setup, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let (remote, model) = account(setup.rollups);
    let config = FsConfig {
        ttl: if setup.exact { LONG_TTL } else { SHORT_TTL },
        prefetch_memory: 64 << 20,
        disk: None,
        max_dirs: setup.max_dirs,
        max_entries: setup.max_entries,
        uid: 1000,
        gid: 1000,
        modes: Default::default(),
        buckets: None,
        made: None,
        user_id: None,
    };
    let scope = Scope::Project {
        hub: HUB.into(),
        project: PROJECT.into(),
    };
    match setup.faults {
        None => {
            let fs = Fs::new(remote.clone(), scope, config);
            drive(fs, remote, None, setup, model, &steps).await
        }
        Some((seed, p)) => {
            let faulty = Arc::new(Faulty::new(remote.clone(), seed));
            let server = ApiError::Server {
                status: 503,
                detail: "injected".into(),
            };
            faulty.add(Rule::chance(Op::FolderContents, p, server));
            faulty.add(Rule::chance(
                Op::TopFolders,
                p,
                ApiError::Throttled { retry_after: None },
            ));
            faulty.add(Rule::chance(
                Op::ObjectSize,
                p,
                ApiError::Timeout("injected".into()),
            ));
            faulty.add(Rule::chance(
                Op::Read,
                p,
                ApiError::Network("injected".into()),
            ));
            faulty.add(Rule::chance(
                Op::Read,
                p / 2.0,
                ApiError::ShortBody {
                    expected: 1,
                    got: 0,
                },
            ));
            let fs = Fs::new(faulty.clone(), scope, config);
            drive(fs, remote, Some(faulty), setup, model, &steps).await
        }
    }
}

async fn drive<R: Remote>(
    fs: Fs<R>,
    remote: Arc<MemoryRemote>,
    faults: Option<Arc<Faulty<MemoryRemote>>>,
    setup: Setup,
    model: Model,
    steps: &[Step],
) -> Result<(), TestCaseError> {
    let mut run = Run {
        fs,
        remote,
        faults,
        setup,
        model,
        views: HashMap::new(),
        touched: HashMap::new(),
        floor: 0,
        kernel: HashMap::new(),
        parent_of: HashMap::new(),
        ino_of: HashMap::new(),
        key_of: HashMap::new(),
        files: Vec::new(),
        dirs: Vec::new(),
    };
    for (k, step) in steps.iter().enumerate() {
        if let Err(e) = run.step(step).await {
            return fail(format!("step {k} ({step:?}): {e}"));
        }
    }
    for f in std::mem::take(&mut run.files) {
        run.fs.release(f.fh).await;
    }
    for d in std::mem::take(&mut run.dirs) {
        run.fs.releasedir(d.fh);
    }
    Ok(())
}
