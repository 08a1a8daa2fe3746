//! The built-in stage kinds, each implementing [`crate::kind::StageKind`].
//!
//! * [`source::Source`] (`source`): a user's file/directory (optional URL, pinned blake3) or the
//!   built-in grammar corpus.
//! * [`tokenize::Tokenize`] (`tokenize`): char / gpt2 / trained byte-level BPE tokenizers.
//! * `train` and `eval`: declared here (params, outputs, code fingerprint); they run in `cegraph-worker`
//!   (crate `cegraph-torch`, which links libtorch). See [`train`] for the output schemas.

use crate::kind::Catalog;

pub mod fit_ceg;
pub mod report;
pub mod source;
pub mod tokenize;
pub mod util;

pub mod eval;
pub mod torch;
pub mod train;

pub use torch::{TorchRunner, install_torch_runner};

/// Every built-in kind. The libtorch ones run only where a runner is installed (the worker).
pub fn catalog() -> Catalog {
    let mut c = Catalog::new();
    c.register(Box::new(source::Source));
    c.register(Box::new(tokenize::Tokenize));
    c.register(Box::new(fit_ceg::FitCeg));
    c.register(Box::new(report::Report));
    c.register(Box::new(train::Train));
    c.register(Box::new(eval::Eval));
    c
}
