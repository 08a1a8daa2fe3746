//! Training hyper-parameters: plain data, no libtorch, so a pipeline's `train` params can be
//! checked by the `cegraph` binary, which never loads libtorch.

use serde::{Deserialize, Serialize};

use super::config::{ConfigError, check_device_name};

/// The arithmetic of the forward pass. Weights, gradients and AdamW state stay f32 in every
/// mode (libtorch autocast casts per op); `fp16` adds dynamic loss scaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// bf16 on a CUDA device that supports it, fp16 on an older one, fp32 on the CPU.
    Auto,
    Fp32,
    Bf16,
    Fp16,
}

impl Precision {
    pub fn parse(s: &str) -> Result<Precision, ConfigError> {
        match s {
            "auto" => Ok(Precision::Auto),
            "fp32" => Ok(Precision::Fp32),
            "bf16" => Ok(Precision::Bf16),
            "fp16" => Ok(Precision::Fp16),
            _ => Err(ConfigError::Invalid {
                param: "precision",
                why: format!("`{s}` is not one of auto, fp32, bf16, fp16"),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Auto => "auto",
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
        }
    }

    /// What `auto` means on `device` (already resolved: `cpu` or `cuda:N`), given the GPU's
    /// compute capability when known: bf16 needs Ampere (8.0) or newer, older GPUs get fp16
    /// (with loss scaling, as nanoGPT does), an unknown GPU is taken to be recent.
    pub fn resolve(self, device: &str, capability: Option<(u32, u32)>) -> Precision {
        match self {
            Precision::Auto if device.starts_with("cuda") => match capability {
                Some((major, _)) if major < 8 => Precision::Fp16,
                _ => Precision::Bf16,
            },
            Precision::Auto => Precision::Fp32,
            explicit => explicit,
        }
    }
}

/// Training hyper-parameters (the model's are in [`ModelConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub max_iters: usize,
    pub batch_size: usize,
    pub grad_accum: usize,
    pub lr: f64,
    pub min_lr: f64,
    pub warmup_iters: usize,
    /// Steps over which the cosine decays (default: `max_iters`).
    pub lr_decay_iters: usize,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// 0 disables clipping.
    pub grad_clip: f64,
    pub eval_every: usize,
    /// Batches of the training split scored at each eval point (the train curve).
    pub eval_iters: usize,
    /// Validation windows scored at each eval point: 0 = every non-overlapping window of the
    /// split (the whole split, the default); N = N evenly spaced ones (for a large split).
    #[serde(default)]
    pub eval_windows: usize,
    /// Torch's generator: init and dropout.
    pub seed: u64,
    /// The batch sampler's stream.
    pub data_seed: u64,
    /// The fixed eval batches' stream.
    pub eval_seed: u64,
    /// `auto` (CUDA when usable), `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// Arithmetic of the forward pass (weights and optimiser state stay f32). `auto` is
    /// resolved with the device when the plan is made ([`Precision::resolve`]).
    pub precision: Precision,
    pub threads: usize,
}

impl TrainConfig {
    pub fn tiny() -> TrainConfig {
        TrainConfig {
            max_iters: 20,
            batch_size: 4,
            grad_accum: 1,
            lr: 1e-3,
            min_lr: 1e-4,
            warmup_iters: 5,
            lr_decay_iters: 20,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            grad_clip: 1.0,
            eval_every: 10,
            eval_iters: 2,
            eval_windows: 0,
            seed: 1,
            data_seed: 1,
            eval_seed: 0,
            device: "cpu".into(),
            precision: Precision::Fp32,
            threads: 1,
        }
    }

    /// Torch-free (so `check_params` works in a process without libtorch).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |param, why: &str| {
            Err(ConfigError::Invalid {
                param,
                why: why.to_string(),
            })
        };
        if self.max_iters == 0 {
            return bad("max_iters", "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if self.grad_accum == 0 {
            return bad("grad_accum", "must be at least 1");
        }
        if self.eval_every == 0 {
            return bad("eval_every", "must be at least 1");
        }
        if self.eval_iters == 0 {
            return bad("eval_iters", "must be at least 1");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", "must be a positive number");
        }
        if !(self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            return bad("min_lr", "must be between 0 and lr");
        }
        if !(0.0..1.0).contains(&self.beta1) || !(0.0..1.0).contains(&self.beta2) {
            return bad("beta1", "beta1 and beta2 must be in [0, 1)");
        }
        if self.weight_decay.is_nan()
            || self.weight_decay < 0.0
            || self.grad_clip.is_nan()
            || self.grad_clip < 0.0
        {
            return bad("weight_decay", "weight_decay and grad_clip must be ≥ 0");
        }
        check_device_name(&self.device)
    }

    /// nanoGPT's schedule: linear warm-up over `warmup_iters`, cosine to `min_lr` at
    /// `lr_decay_iters`, then `min_lr`.
    pub fn lr_at(&self, it: usize) -> f64 {
        if it < self.warmup_iters {
            return self.lr * (it + 1) as f64 / (self.warmup_iters + 1) as f64;
        }
        if it > self.lr_decay_iters {
            return self.min_lr;
        }
        let span = (self.lr_decay_iters - self.warmup_iters).max(1) as f64;
        let ratio = (it - self.warmup_iters) as f64 / span;
        let coeff = 0.5 * (1.0 + (std::f64::consts::PI * ratio).cos());
        self.min_lr + coeff * (self.lr - self.min_lr)
    }
}
