//! The libtorch half of cegraph: the GPT with the paper's innovations ([`model`]), its
//! training loop ([`train`]), batches ([`data`]), safetensors checkpoints ([`checkpoint`]) and
//! the run side of the `train` and `eval` kinds, whose declarations (params, outputs, code fingerprint)
//! live in `cegraph::stages`. Only the `cegraph-worker` binary links this crate, so the
//! `cegraph` binary starts without loading libtorch.
//!
//! Without the `torch` feature (`cargo test --no-default-features`) this crate is empty.

#[cfg(feature = "torch")]
pub mod amp;
pub mod amp_shim;
#[cfg(feature = "torch")]
pub mod checkpoint;
#[cfg(feature = "torch")]
pub mod data;
#[cfg(feature = "torch")]
pub mod eval_node;
#[cfg(feature = "torch")]
pub mod info;
#[cfg(feature = "torch")]
pub mod model;
#[cfg(feature = "torch")]
pub mod optim;

pub mod scoring;
#[cfg(feature = "torch")]
pub mod train;
#[cfg(feature = "torch")]
pub mod train_node;

/// Let this process run the libtorch kinds (what `cegraph-worker` does first).
#[cfg(feature = "torch")]
pub fn install() {
    cegraph::stages::torch::install_torch_runner(|kind, ctx| match kind {
        "train" => train_node::run_train(ctx),
        "eval" => eval_node::run_eval(ctx),
        other => Err(cegraph::kind::StageFailure::new(format!(
            "`{other}` is not a libtorch kind"
        ))),
    });
}
