//! `train`: trains one GPT variant on a `tokenize` node's output (libtorch).
//!
//! # Input
//! An upstream node with `meta.json`, `train.bin` and `val.bin` (a `tokenize` stage), found by
//! file name among `inputs`.
//!
//! # Params (all optional)
//! Model: `innovations` (or `variant`): `"baseline"`, `"rope+layernorm"`, `"combined"`, or a
//! list of names (see [`crate::ml::config`]); `n_layer` 4, `n_head` 4, `n_embd` 128,
//! `block_size` 128, `dropout` 0.0, `n_kv_head` (gqa; default n_head/2), `rope_theta` 10000,
//! `sparse_block` (default: largest power of two ≤ √block_size), `moe_experts` 4, `moe_top_k` 2,
//! `moe_aux_weight` 0.01, `vocab_multiple` (pad the embedding rows to a multiple; default 64
//! when the tokenizer has more than 1024 tokens, else 1).
//! Training: `max_iters` 200, `batch_size` 16, `grad_accum` 1, `lr` 1e-3, `min_lr` lr/10,
//! `warmup_iters` min(100, max_iters/10), `lr_decay_iters` max_iters, `weight_decay` 0.1,
//! `beta1` 0.9, `beta2` 0.95, `grad_clip` 1.0, `eval_every` max(1, max_iters/10),
//! `eval_iters` 20 (training-split batches per eval point), `eval_windows` 0 (validation
//! windows per eval point: 0 = every non-overlapping window, the whole split), `seed` 1 (init and dropout), `data_seed` (default: `seed`; the batch
//! order — equal for every variant with the same value), `eval_seed` 0 (the fixed eval
//! batches, shared by all runs), `device` `auto`|`cpu`|`cuda`|`cuda:N`, `precision` `auto`|`fp32`|`bf16`|`fp16`
//! (`auto`: bf16 on a CUDA device of compute capability ≥ 8.0, fp16 with dynamic loss scaling
//! on an older one, fp32 on the CPU; weights and AdamW state stay f32 in every mode). The old
//! `autocast` boolean is refused with a pointer to `precision` (it ran fp16 without loss
//! scaling).
//! Threads come from the node's `cpus` (whatever `-j` is); `device: auto` is resolved to `cpu`
//! or `cuda:0` when the plan is made, `precision: auto` with it, and all three are in the
//! node's key (with the GPU's name and compute capability on CUDA).
//!
//! # Outputs (in this order)
//! * `model.safetensors` — final weights, f32, nanoGPT names; `__metadata__` holds
//!   `format: "pt"` and `cegraph.config` (the model config JSON). Bit-identical across runs on
//!   the CPU for the same params and thread count.
//! * `curve.csv` — header `step,tokens,flops,train_loss,val_loss,val_se,lr`, one row per eval
//!   point.
//! * `curve.json` — deterministic (no timings):
//!   ```json
//!   { "schema": 1, "variant": "layernorm+rope", "innovations": ["layernorm", "rope"],
//!     "seed": 1, "data_seed": 1, "tokens_per_step": 2048,
//!     "data_order_blake3": "…",         // hash of the batch offsets used, in order
//!     "flops_per_token": 1.2e6,            // 6·N_active + 12·L·H·Q·T_eff of THIS variant
//!     "params": { "total": …, "embedding": …, "non_embedding": …, "active_non_embedding": … },
//!     "points": [ { "step": 0, "tokens": 0, "flops": 0.0, "train_loss": 4.17,
//!                   "val_loss": 4.17, "val_se": 0.004, "lr": 1e-5 }, … ] }
//!   ```
//!   `step` = optimiser steps done, `tokens` = step × tokens_per_step, `flops` = tokens ×
//!   flops_per_token (cumulative training compute), losses in nats/token. `val_loss` is the
//!   mean over the validation split's non-overlapping windows of `block_size` (all of them by
//!   default, `eval_windows` evenly spaced ones if set), `val_se` its standard error over
//!   windows (windows treated as independent); `train_loss` is over `eval_iters` × `batch_size`
//!   fixed windows of the training split. The same windows for every variant and seed.
//!   Points at step 0, every `eval_every` steps, and at `max_iters`.
//! * `record.json` — everything about the run that its key determines: no timings (those are
//!   the node's metrics in its run record: `tokens_per_s`, `train_s`, `wall_s`) and no node name
//!   or matrix (the run record has them), so the same key always gives the same bytes. `device`
//!   and `threads` are in the key (resolved when the plan is made):
//!   ```json
//!   { "schema": 2, "variant": …, "innovations": […],
//!     "model": {ModelConfig}, "train": {TrainConfig},
//!     "params": {…}, "flops_per_token": { "params": 6N, "attention": 12LHQT, "total": … },
//!     "tokens_per_step": …, "steps": …, "tokens": …, "flops": …,
//!     "final": { "step", "train_loss", "val_loss", "val_se", "val_tokens" },
//!     "best_val_loss": …,
//!     "tokenizer": { "kind", "vocab_size" }, "source_nats_per_char": null | f64,
//!     "device": "cpu", "threads": 2 }
//!   ```
//!
//! A NaN or infinite loss fails the node, naming the step; nothing is cached.

use serde_json::Value;

use super::util::{ParamError, check_known, param_f64, param_string, param_u64, param_usize};
use crate::kind::{
    CurveDecl, OutputDecl, Params, StageContext, StageFailure, StageKind, StageOutcome,
};
use crate::ml::config::{ConfigError, Innovations, ModelConfig, default_sparse_block};
use crate::ml::train_config::{Precision, TrainConfig};

pub struct Train;

pub const OUTPUTS: [&str; 4] = [
    "model.safetensors",
    "curve.csv",
    "curve.json",
    "record.json",
];

/// The columns of `curve.csv`, in order.
pub const CURVE_COLUMNS: [&str; 7] = [
    "step",
    "tokens",
    "flops",
    "train_loss",
    "val_loss",
    "val_se",
    "lr",
];

/// The loss curve every train node writes, for `cegraph plots show train_…`.
pub const CURVES: [CurveDecl; 1] = [CurveDecl {
    file: "curve.csv",
    x: &["step", "tokens", "flops"],
    y: &["val_loss", "train_loss"],
}];

const KNOWN: &[&str] = &[
    "innovations",
    "variant",
    "n_layer",
    "n_head",
    "n_embd",
    "block_size",
    "dropout",
    "n_kv_head",
    "rope_theta",
    "sparse_block",
    "moe_experts",
    "moe_top_k",
    "moe_aux_weight",
    "vocab_multiple",
    "max_iters",
    "batch_size",
    "grad_accum",
    "lr",
    "min_lr",
    "warmup_iters",
    "lr_decay_iters",
    "weight_decay",
    "beta1",
    "beta2",
    "grad_clip",
    "eval_every",
    "eval_iters",
    "eval_windows",
    "seed",
    "data_seed",
    "eval_seed",
    "device",
    "precision",
];

fn config_err(e: ConfigError) -> ParamError {
    match e {
        ConfigError::Invalid { param, why } => (param.to_string(), why),
        other => ("innovations".to_string(), other.to_string()),
    }
}

/// Build both configs from params, for a tokenizer with `vocab` tokens.
pub fn configs(params: &Params, vocab: usize) -> Result<(ModelConfig, TrainConfig), ParamError> {
    if params.contains_key("autocast") {
        return Err((
            "autocast".into(),
            "`autocast` was replaced by `precision: fp32 | bf16 | fp16` (default auto: bf16 on \
             a recent CUDA GPU, fp32 on the CPU); `autocast: true` ran fp16 without loss scaling. \
             Remove it, or write `precision: bf16`"
                .into(),
        ));
    }
    check_known(params, KNOWN, "train")?;
    if params.contains_key("innovations") && params.contains_key("variant") {
        return Err((
            "variant".into(),
            "give `innovations` or `variant` (the same thing), not both".into(),
        ));
    }
    let inn_value = params
        .get("innovations")
        .or_else(|| params.get("variant"))
        .cloned()
        .unwrap_or(Value::Null);
    let innovations = Innovations::from_json(&inn_value).map_err(config_err)?;
    let block_size = param_usize(params, "block_size", 128)?;
    let n_head = param_usize(params, "n_head", 4)?;
    let default_multiple = if vocab > 1024 { 64 } else { 1 };
    let multiple = param_usize(params, "vocab_multiple", default_multiple)?.max(1);
    let mut m = ModelConfig {
        vocab_size: vocab.div_ceil(multiple) * multiple,
        tokenizer_vocab: vocab,
        n_layer: param_usize(params, "n_layer", 4)?,
        n_head,
        n_kv_head: n_head,
        n_embd: param_usize(params, "n_embd", 128)?,
        block_size,
        dropout: param_f64(params, "dropout", 0.0)?,
        innovations,
        rope_theta: param_f64(params, "rope_theta", 10_000.0)?,
        sparse_block: param_usize(params, "sparse_block", default_sparse_block(block_size))?,
        moe_experts: param_usize(params, "moe_experts", 4)?,
        moe_top_k: param_usize(params, "moe_top_k", 2)?,
        moe_aux_weight: param_f64(params, "moe_aux_weight", 0.01)?,
    };
    m.n_kv_head = param_usize(params, "n_kv_head", m.default_kv_heads())?;
    m.validate().map_err(config_err)?;
    let max_iters = param_usize(params, "max_iters", 200)?;
    let lr = param_f64(params, "lr", 1e-3)?;
    let seed = param_u64(params, "seed", 1)?;
    let t = TrainConfig {
        max_iters,
        batch_size: param_usize(params, "batch_size", 16)?,
        grad_accum: param_usize(params, "grad_accum", 1)?,
        lr,
        min_lr: param_f64(params, "min_lr", lr / 10.0)?,
        warmup_iters: param_usize(params, "warmup_iters", (max_iters / 10).min(100))?,
        lr_decay_iters: param_usize(params, "lr_decay_iters", max_iters)?,
        weight_decay: param_f64(params, "weight_decay", 0.1)?,
        beta1: param_f64(params, "beta1", 0.9)?,
        beta2: param_f64(params, "beta2", 0.95)?,
        grad_clip: param_f64(params, "grad_clip", 1.0)?,
        eval_every: param_usize(params, "eval_every", (max_iters / 10).max(1))?,
        eval_iters: param_usize(params, "eval_iters", 20)?,
        eval_windows: param_usize(params, "eval_windows", 0)?,
        seed,
        data_seed: param_u64(params, "data_seed", seed)?,
        eval_seed: param_u64(params, "eval_seed", 0)?,
        device: param_string(params, "device", "auto")?,
        precision: Precision::parse(&param_string(params, "precision", "auto")?)
            .map_err(config_err)?,
        threads: 0,
    };
    // Torch-free: whether CUDA is there is checked at run time, where the node runs.
    t.validate().map_err(config_err)?;
    Ok((m, t))
}

impl StageKind for Train {
    fn name(&self) -> &'static str {
        "train"
    }

    fn fingerprint(&self) -> [u8; 32] {
        crate::kind::fingerprints::TRAIN
    }

    fn runs_in_worker(&self) -> bool {
        true
    }

    fn check_params(&self, params: &Params) -> Result<(), (String, String)> {
        // The vocabulary is only known at run time; 256 stands in for it here.
        configs(params, 256).map(|_| ())
    }

    fn outputs(&self, _params: &Params, out_dir: &str) -> Vec<OutputDecl> {
        crate::kind::files_in(out_dir, &OUTPUTS)
    }

    fn curves(&self) -> &'static [CurveDecl] {
        &CURVES
    }

    fn run(&self, ctx: &mut StageContext<'_>) -> Result<StageOutcome, StageFailure> {
        super::torch::run_with_torch("train", ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: serde_json::Value) -> Params {
        serde_json::from_value(v).unwrap()
    }

    /// `autocast: true` used to run CUDA autocast at fp16 without loss scaling.
    #[test]
    fn autocast_param_is_refused_with_a_pointer_to_precision() {
        let (param, why) = configs(&params(serde_json::json!({"autocast": true})), 65).unwrap_err();
        assert_eq!(param, "autocast");
        assert!(why.contains("precision: bf16"), "{why}");
    }

    #[test]
    fn declared_curve_columns_exist_in_curve_csv() {
        for c in CURVES {
            assert!(OUTPUTS.contains(&c.file), "{}", c.file);
            for col in c.x.iter().chain(c.y) {
                assert!(CURVE_COLUMNS.contains(col), "{col}");
            }
        }
    }

    #[test]
    fn precision_defaults_to_auto_and_rejects_unknown_values() {
        let (_, t) = configs(&params(serde_json::json!({})), 65).unwrap();
        assert_eq!(t.precision, Precision::Auto);
        let (_, t) = configs(&params(serde_json::json!({"precision": "fp16"})), 65).unwrap();
        assert_eq!(t.precision, Precision::Fp16);
        let (param, why) =
            configs(&params(serde_json::json!({"precision": "fp8"})), 65).unwrap_err();
        assert_eq!(param, "precision");
        assert!(why.contains("auto, fp32, bf16, fp16"), "{why}");
    }
}
