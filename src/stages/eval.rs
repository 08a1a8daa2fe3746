//! `eval`: validation loss and perplexity of a trained checkpoint, and a short sample.
//!
//! Inputs: a `train` node (`model.safetensors`) and the `tokenize` node it was trained on
//! (`val.bin`, `meta.json`, `tokenizer.json`), found by file name.
//!
//! The loss is measured on consecutive non-overlapping windows of `block_size` tokens from the
//! start of the held-out split (every token predicted with its full window as context, up to
//! `max_tokens`), not on random batches, so it is exact and the same for every model.
//!
//! Params: `max_tokens` 65536, `batch_size` 16, `sample_tokens` 200, `temperature` 0.8,
//! `top_k` 40 (0: all), `seed` 0, `device` `auto`.
//!
//! Outputs: `eval.json`:
//! `{ "schema": 1, "val_loss": nats/token, "perplexity": e^val_loss, "bits_per_token",
//!    "nats_per_char": val_loss × tokens/chars of the val split, "tokens_evaluated",
//!    "windows", "block_size", "variant", "sample" }` and `sample.txt` (the sample alone).

use super::util::{check_known, param_f64, param_string, param_u64, param_usize};
use crate::kind::{OutputDecl, Params, StageContext, StageFailure, StageKind, StageOutcome};
use crate::ml::config::check_device_name;

pub struct Eval;

const KNOWN: &[&str] = &[
    "max_tokens",
    "batch_size",
    "sample_tokens",
    "temperature",
    "top_k",
    "seed",
    "device",
];
pub const OUTPUTS: [&str; 2] = ["eval.json", "sample.txt"];

impl StageKind for Eval {
    fn name(&self) -> &'static str {
        "eval"
    }

    fn fingerprint(&self) -> [u8; 32] {
        crate::kind::fingerprints::EVAL
    }

    fn runs_in_worker(&self) -> bool {
        true
    }

    fn check_params(&self, params: &Params) -> Result<(), (String, String)> {
        check_known(params, KNOWN, "eval")?;
        if param_usize(params, "max_tokens", 65_536)? == 0 {
            return Err(("max_tokens".into(), "must be at least 1".into()));
        }
        if param_usize(params, "batch_size", 16)? == 0 {
            return Err(("batch_size".into(), "must be at least 1".into()));
        }
        param_usize(params, "sample_tokens", 200)?;
        let t = param_f64(params, "temperature", 0.8)?;
        if t.is_nan() || t <= 0.0 {
            return Err(("temperature".into(), format!("must be positive, got {t}")));
        }
        param_usize(params, "top_k", 40)?;
        param_u64(params, "seed", 0)?;
        let dev = param_string(params, "device", "auto")?;
        check_device_name(&dev).map_err(|e| ("device".to_string(), e.to_string()))?;
        Ok(())
    }

    fn outputs(&self, _params: &Params, out_dir: &str) -> Vec<OutputDecl> {
        crate::kind::files_in(out_dir, &OUTPUTS)
    }

    fn run(&self, ctx: &mut StageContext<'_>) -> Result<StageOutcome, StageFailure> {
        super::torch::run_with_torch("eval", ctx)
    }
}
