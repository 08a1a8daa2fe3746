//! The training loop: AdamW (β = 0.9, 0.95) with weight decay on matrices only, global
//! gradient-norm clipping, linear warm-up then cosine decay to `min_lr`, gradient accumulation,
//! seeded batches (see [`super::data`]) and periodic evaluation: the validation split's
//! windows (all by default, see [`crate::scoring`]) and fixed batches of the training split.
//!
//! Determinism: on the CPU, the same config, seeds and thread count give bit-identical weights
//! and loss curves (torch's CPU kernels are deterministic for a fixed thread count; dropout draws
//! from torch's generator, seeded by `seed`). On CUDA, the data order, the init and the eval
//! batches are still identical, but cuBLAS/cuDNN reductions and `index_add` (MoE) use atomics,
//! so weights drift apart in the last bits after the first steps; curves agree statistically,
//! not bitwise.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::{Device, Kind, Tensor};

use crate::amp::{self, LossScaler, Precision};
use crate::checkpoint;
use crate::data::{Sampler, make_batch};
use crate::model::{Gpt, NO_DECAY_GROUP};
use crate::optim::FusedAdamW;
use crate::scoring::{score, window_offsets};
use cegraph::ml::config::{ConfigError, ModelConfig};

pub use cegraph::ml::train_config::TrainConfig;

/// `auto` → CUDA when usable, else CPU.
pub fn parse_device(s: &str) -> Result<Device, ConfigError> {
    let err = || ConfigError::Invalid {
        param: "device",
        why: format!("`{s}` is not one of auto, cpu, cuda, cuda:N"),
    };
    match s {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" | "cuda:0" if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        _ if s.starts_with("cuda") => {
            if !tch::Cuda::is_available() {
                return Err(ConfigError::Invalid {
                    param: "device",
                    why: format!("`{s}` asked for, but libtorch sees no usable CUDA device"),
                });
            }
            let n: usize = s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .ok_or_else(err)?;
            if n as i64 >= tch::Cuda::device_count() {
                return Err(err());
            }
            Ok(Device::Cuda(n))
        }
        _ => Err(err()),
    }
}

/// Human-readable device name.
pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// One evaluation point of the loss curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    /// Optimiser steps completed.
    pub step: usize,
    /// Training tokens consumed (`step × tokens_per_step`).
    pub tokens: u64,
    /// Training FLOPs spent (`tokens × flops_per_token`).
    pub flops: f64,
    /// Mean cross-entropy (nats/token) on the fixed training batches.
    pub train_loss: f64,
    /// Mean cross-entropy (nats/token) over the validation windows (the whole split unless
    /// `eval_windows` is set).
    pub val_loss: f64,
    /// Standard error of `val_loss` over those windows.
    #[serde(default)]
    pub val_se: f64,
    /// Learning rate of the step that produced these weights (the first step's at step 0).
    pub lr: f64,
}

/// What a training run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainReport {
    pub points: Vec<EvalPoint>,
    pub tokens_per_step: u64,
    /// Training tokens per second, excluding evaluation.
    pub tokens_per_s: f64,
    /// Seconds in training steps (no evaluation).
    pub train_s: f64,
    /// Seconds for the whole run (model build, training, evaluation, checkpoint).
    pub wall_s: f64,
    pub device: String,
    pub threads: usize,
    /// Validation windows (and tokens) behind every `val_loss`.
    pub val_windows: usize,
    pub val_tokens: usize,
    /// blake3 of every training window offset in the order used (u64 LE): equal for two runs
    /// exactly when they saw the same data in the same order.
    pub data_order_blake3: String,
}

/// Why training stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "the {split} split has {tokens} tokens, too few for block_size {block} (needs at least block_size + 2)"
    )]
    TooLittleData {
        split: &'static str,
        tokens: usize,
        block: usize,
    },
    #[error("token id {id} ≥ vocab_size {vocab} in the {split} split")]
    TokenOutOfRange {
        split: &'static str,
        id: u32,
        vocab: usize,
    },
    #[error(
        "training loss became {loss} at step {step} (micro-batch {micro}); lower lr or check the data"
    )]
    NonFinite {
        step: usize,
        micro: usize,
        loss: f64,
    },
    #[error("libtorch: {0}")]
    Torch(String),
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
}

impl From<tch::TchError> for TrainError {
    fn from(e: tch::TchError) -> Self {
        TrainError::Torch(e.to_string())
    }
}

fn check_tokens(
    split: &'static str,
    tokens: &[u32],
    block: usize,
    vocab: usize,
) -> Result<(), TrainError> {
    if tokens.len() < block + 2 {
        return Err(TrainError::TooLittleData {
            split,
            tokens: tokens.len(),
            block,
        });
    }
    if let Some(&id) = tokens.iter().find(|&&t| t as usize >= vocab) {
        return Err(TrainError::TokenOutOfRange { split, id, vocab });
    }
    Ok(())
}

/// Mean cross-entropy of `model` over the given batches (no dropout, no grad), with the
/// forward pass in `precision` (the loss itself is always f32). One host read at the end.
pub fn evaluate(model: &Gpt, tokens: &[u32], batches: &[Vec<usize>], precision: Precision) -> f64 {
    let _guard = tch::no_grad_guard();
    let block = model.cfg.block_size;
    let device = model.device();
    let mut sum = Tensor::zeros([], (Kind::Double, device));
    for offs in batches {
        let (x, y) = make_batch(tokens, offs, block, device);
        let (ce, _) = amp::autocast(device, precision, || model.loss(&x, &y, false));
        sum += ce.to_kind(Kind::Double);
    }
    sum.double_value(&[]) / batches.len() as f64
}

/// The precision a run uses: the resolved one the engine passes, else (a direct call with
/// `auto`) bf16 on CUDA and fp32 on the CPU.
pub fn resolve_precision(asked: Precision, device: Device) -> Precision {
    let name = if device.is_cuda() { "cuda:0" } else { "cpu" };
    asked.resolve(name, None)
}

/// One optimiser step's machinery: fused AdamW, fp16's loss scaler, the forward precision,
/// and a device-side record of the first micro-batch whose loss was not finite — so a step
/// never waits for the host; the record is read at evaluation points.
pub struct Stepper {
    pub opt: FusedAdamW,
    pub scaler: Option<LossScaler>,
    pub precision: Precision,
    pub device: Device,
    grad_clip: f64,
    grad_accum: usize,
    /// `step × grad_accum + micro` of the first non-finite loss, -1 while none.
    first_bad: Tensor,
    /// That loss (inf or NaN).
    bad_loss: Tensor,
}

impl Stepper {
    /// Weight decay on group 0 (matrices, embeddings), none on [`NO_DECAY_GROUP`] (norm gains).
    pub fn new(vs: &nn::VarStore, tcfg: &TrainConfig, precision: Precision) -> Stepper {
        let wd = tcfg.weight_decay;
        let opt = FusedAdamW::new(vs, tcfg.beta1, tcfg.beta2, 1e-8, |group| {
            if group == NO_DECAY_GROUP { 0.0 } else { wd }
        });
        let device = vs.device();
        Stepper {
            opt,
            scaler: (precision == Precision::Fp16).then(|| LossScaler::new(device)),
            precision,
            device,
            grad_clip: tcfg.grad_clip,
            grad_accum: tcfg.grad_accum,
            first_bad: Tensor::full([], -1, (Kind::Int64, device)),
            bad_loss: Tensor::zeros([], (Kind::Double, device)),
        }
    }

    /// Forward and backward of micro-batch `micro` of step `step` (0-based), gradients
    /// accumulated (divided by `grad_accum`, scaled in fp16).
    pub fn accumulate(&mut self, model: &Gpt, x: &Tensor, y: &Tensor, step: usize, micro: usize) {
        let (_ce, total) = amp::autocast(self.device, self.precision, || model.loss(x, y, true));
        tch::no_grad(|| {
            let bad = total
                .isfinite()
                .logical_not()
                .logical_and(&self.first_bad.lt(0));
            let index = (step * self.grad_accum + micro) as i64;
            let _ = self.first_bad.masked_fill_(&bad, index);
            self.bad_loss = total
                .detach()
                .to_kind(Kind::Double)
                .where_self(&bad, &self.bad_loss);
        });
        let loss = total / self.grad_accum as f64;
        match &self.scaler {
            Some(s) => s.scale_loss(&loss).backward(),
            None => loss.backward(),
        }
    }

    /// Unscale (fp16), clip, step at `lr` (skipped on the device after an fp16 overflow),
    /// update the scale, drop the gradients.
    pub fn finish(&mut self, lr: f64) -> Result<(), TrainError> {
        let found_inf = match &self.scaler {
            Some(s) => Some(s.unscale(&self.opt.grads().iter().collect::<Vec<_>>())?),
            None => None,
        };
        if self.grad_clip > 0.0 {
            self.opt.clip_grad_norm(self.grad_clip);
        }
        self.opt.step(lr, found_inf.as_ref())?;
        if let (Some(s), Some(inf)) = (&mut self.scaler, &found_inf) {
            s.update(inf);
        }
        self.opt.zero_grad()?;
        Ok(())
    }

    /// The first non-finite loss so far, as [`TrainError::NonFinite`] (a host read).
    pub fn first_non_finite(&self) -> Option<TrainError> {
        let i = self.first_bad.int64_value(&[]);
        (i >= 0).then(|| TrainError::NonFinite {
            step: i as usize / self.grad_accum + 1,
            micro: i as usize % self.grad_accum,
            loss: self.bad_loss.double_value(&[]),
        })
    }
}

/// The weights by name, for the checkpoint.
pub fn named_weights(vs: &nn::VarStore) -> BTreeMap<String, Tensor> {
    vs.variables().into_iter().collect()
}

/// Build the model (after `tch::manual_seed(seed)`), train it and write the checkpoint to
/// `ckpt`. Progress lines go to `log`.
pub fn train(
    mcfg: &ModelConfig,
    tcfg: &TrainConfig,
    train_tokens: &[u32],
    val_tokens: &[u32],
    ckpt: &Path,
    log: &mut dyn Write,
) -> Result<TrainReport, TrainError> {
    let wall = Instant::now();
    mcfg.validate()?;
    tcfg.validate()?;
    let block = mcfg.block_size;
    check_tokens("train", train_tokens, block, mcfg.tokenizer_vocab)?;
    check_tokens("val", val_tokens, block, mcfg.tokenizer_vocab)?;
    if tcfg.threads > 0 {
        tch::set_num_threads(tcfg.threads as i32);
    }
    let device = parse_device(&tcfg.device)?;
    let precision = resolve_precision(tcfg.precision, device);
    tch::manual_seed(tcfg.seed as i64);
    let vs = nn::VarStore::new(device);
    let model = Gpt::new(&vs.root(), mcfg);
    let counts = mcfg.param_counts();
    let fpt = mcfg.flops_per_token();
    let mut stepper = Stepper::new(&vs, tcfg, precision);

    let tokens_per_step = (tcfg.batch_size * tcfg.grad_accum * block) as u64;
    let mut sampler = Sampler::new(
        tcfg.data_seed,
        "train-batches",
        tcfg.batch_size,
        block,
        train_tokens.len(),
    );
    let fixed = |stream: &str, n_tokens: usize| -> Vec<Vec<usize>> {
        let mut s = Sampler::new(tcfg.eval_seed, stream, tcfg.batch_size, block, n_tokens);
        (0..tcfg.eval_iters).map(|_| s.next_offsets()).collect()
    };
    let eval_train = fixed("eval-train", train_tokens.len());
    let val_windows = window_offsets(val_tokens.len(), block, tcfg.eval_windows);

    let _ = writeln!(
        log,
        "model {}: {} params ({} non-embedding, {} active), {:.3e} FLOPs/token, device {}, {}, {} threads",
        mcfg.innovations.label(),
        counts.total,
        counts.non_embedding,
        counts.active_non_embedding,
        fpt.total as f64,
        device_name(device),
        precision.as_str(),
        tch::get_num_threads()
    );
    let _ = writeln!(
        log,
        "val loss over {} windows of {block} tokens ({} of the split's {} tokens)",
        val_windows.len(),
        val_windows.len() * block,
        val_tokens.len()
    );
    let mut points = Vec::new();
    let eval_point = |step: usize, lr: f64, log: &mut dyn Write| {
        let train_loss = evaluate(&model, train_tokens, &eval_train, precision);
        let val = score(&model, val_tokens, &val_windows, tcfg.batch_size, precision);
        let val_loss = val.loss;
        let tokens = step as u64 * tokens_per_step;
        let _ = writeln!(
            log,
            "step {step:>6}  train {train_loss:.4}  val {val_loss:.4} ± {:.4}  lr {lr:.3e}  tokens {tokens}",
            val.se
        );
        // The progress display shows the latest of these beside the running node.
        let _ = writeln!(
            log,
            "{}step {step}/{} val {val_loss:.4}",
            cegraph::kind::PROGRESS_PREFIX,
            tcfg.max_iters
        );
        let _ = log.flush();
        EvalPoint {
            step,
            tokens,
            flops: tokens as f64 * fpt.total as f64,
            train_loss,
            val_loss,
            val_se: val.se,
            lr,
        }
    };
    points.push(eval_point(0, tcfg.lr_at(0), log));

    let mut train_s = 0.0;
    let mut order = blake3::Hasher::new();
    for it in 0..tcfg.max_iters {
        let t0 = Instant::now();
        let lr = tcfg.lr_at(it);
        for micro in 0..tcfg.grad_accum {
            let offsets = sampler.next_offsets();
            for &o in &offsets {
                order.update(&(o as u64).to_le_bytes());
            }
            let (x, y) = make_batch(train_tokens, &offsets, block, device);
            stepper.accumulate(&model, &x, &y, it, micro);
        }
        stepper.finish(lr)?;
        train_s += t0.elapsed().as_secs_f64();
        let step = it + 1;
        if step % tcfg.eval_every == 0 || step == tcfg.max_iters {
            if let Some(e) = stepper.first_non_finite() {
                return Err(e);
            }
            let p = eval_point(step, lr, log);
            if !(p.train_loss.is_finite() && p.val_loss.is_finite()) {
                return Err(TrainError::NonFinite {
                    step,
                    micro: 0,
                    loss: if p.val_loss.is_finite() {
                        p.train_loss
                    } else {
                        p.val_loss
                    },
                });
            }
            points.push(p);
        }
    }
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    meta.insert(
        "cegraph.config".to_string(),
        serde_json::to_string(mcfg).expect("config serialises"),
    );
    checkpoint::save(ckpt, &named_weights(&vs), &meta)?;
    let total_tokens = tcfg.max_iters as f64 * tokens_per_step as f64;
    Ok(TrainReport {
        points,
        tokens_per_step,
        tokens_per_s: if train_s > 0.0 {
            total_tokens / train_s
        } else {
            0.0
        },
        train_s,
        wall_s: wall.elapsed().as_secs_f64(),
        device: device_name(device),
        threads: tch::get_num_threads() as usize,
        val_windows: val_windows.len(),
        val_tokens: val_windows.len() * block,
        data_order_blake3: order.finalize().to_hex().to_string(),
    })
}

/// Rebuild a model from a checkpoint written by [`train`] (config from its metadata).
pub fn load_model(path: &Path, device: Device) -> Result<(nn::VarStore, Gpt), TrainError> {
    let loaded = checkpoint::load(path)?;
    let cfg_text = loaded.metadata.get("cegraph.config").ok_or_else(|| {
        TrainError::Torch(format!(
            "{}: no `cegraph.config` in the safetensors metadata (not written by cegraph's train stage)",
            path.display()
        ))
    })?;
    let cfg: ModelConfig = serde_json::from_str(cfg_text)
        .map_err(|e| TrainError::Torch(format!("{}: bad config metadata: {e}", path.display())))?;
    cfg.validate()?;
    let vs = nn::VarStore::new(device);
    let model = Gpt::new(&vs.root(), &cfg);
    let vars = vs.variables();
    for (name, var) in &vars {
        let t = loaded.tensors.get(name).ok_or_else(|| {
            TrainError::Torch(format!("{}: tensor `{name}` missing", path.display()))
        })?;
        if t.size() != var.size() {
            return Err(TrainError::Torch(format!(
                "{}: tensor `{name}` has shape {:?}, the model wants {:?}",
                path.display(),
                t.size(),
                var.size()
            )));
        }
        let mut var = var.shallow_clone();
        tch::no_grad(|| var.copy_(&t.to_kind(Kind::Float).to_device(device)));
    }
    Ok((vs, model))
}

/// Sum of the element counts of `vs`'s trainable variables.
pub fn count_params(vs: &nn::VarStore) -> u64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as u64)
        .sum()
}
