//! The hook through which `cegraph-worker` makes the libtorch kinds runnable. A file of its
//! own so that a libtorch kind's fingerprint reaches only this, not every other kind.

use std::sync::OnceLock;

use crate::kind::{StageContext, StageFailure, StageOutcome};

/// Runs a libtorch kind by name. Installed only by the `cegraph-worker` binary, so the
/// `cegraph` binary holds no reference to libtorch code and does not link or load it.
pub type TorchRunner = fn(&str, &mut StageContext<'_>) -> Result<StageOutcome, StageFailure>;

static TORCH_RUNNER: OnceLock<TorchRunner> = OnceLock::new();

/// Make this process able to run the libtorch kinds (`cegraph-worker` calls it first thing).
pub fn install_torch_runner(runner: TorchRunner) {
    let _ = TORCH_RUNNER.set(runner);
}

/// What a libtorch kind's `run` calls: the installed runner, or a clear failure.
pub(crate) fn run_with_torch(
    kind: &str,
    ctx: &mut StageContext<'_>,
) -> Result<StageOutcome, StageFailure> {
    match TORCH_RUNNER.get() {
        Some(run) => run(kind, ctx),
        None => Err(StageFailure::new(format!(
            "`{kind}` needs libtorch: it runs in `cegraph-worker`, which sits next to the `cegraph` \
             binary (`./scripts/main.sh` builds both)"
        ))),
    }
}
