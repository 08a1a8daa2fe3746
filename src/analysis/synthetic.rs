//! Synthetic curves with a known compute multiplier: the ground truth the estimators are
//! tested against, and what the paper-bias measurement runs on.

use super::curve::{Curve, EvalPoint};
use super::scaling_law::PowerLaw;
use super::streams::{SplitMix64, stream_seed};

/// How to draw one synthetic run.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSpec {
    pub law: PowerLaw,
    /// The variant's loss at compute C is the law's loss at `compute_multiplier · C`, so its
    /// true CEG against a multiplier-1 baseline is exactly this number.
    pub compute_multiplier: f64,
    /// Evals at k / n of the run, k = 1..=n (no eval at step 0).
    pub eval_points: usize,
    pub final_flops: f64,
    pub flops_per_token: f64,
    pub steps_per_eval: u64,
    /// Standard deviation of i.i.d. Gaussian noise added to each eval's loss.
    pub noise_sd: f64,
    /// Seed-to-seed efficiency: each run's compute multiplier is scaled by exp(sd · z), one z
    /// per run, so seeds differ persistently (as different inits do), not only per eval.
    pub run_efficiency_sd: f64,
    /// Recorded in the curve (tokens-per-parameter budget); None leaves it unknown.
    pub non_embedding_params: Option<f64>,
    /// Recorded as every point's `val_se` (the evaluation's standard error; 0: unknown).
    pub eval_se: f64,
}

impl SyntheticSpec {
    /// 40 evals up to 1e17 FLOPs on the paper-bias reference law, no noise.
    pub fn clean(law: PowerLaw, compute_multiplier: f64) -> Self {
        SyntheticSpec {
            law,
            compute_multiplier,
            eval_points: 40,
            final_flops: 1e17,
            flops_per_token: 1e9,
            steps_per_eval: 500,
            noise_sd: 0.0,
            run_efficiency_sd: 0.0,
            non_embedding_params: None,
            eval_se: 0.0,
        }
    }
}

/// Draws a run; the noise is a deterministic function of (variant, scale, seed).
pub fn synthetic_curve(variant: &str, scale: &str, seed: u64, spec: &SyntheticSpec) -> Curve {
    let mut rng = SplitMix64::new(stream_seed(seed, &["synthetic", variant, scale], 0));
    let n = spec.eval_points;
    let efficiency = if spec.run_efficiency_sd > 0.0 {
        let mut run_rng = SplitMix64::new(stream_seed(seed, &["efficiency", variant, scale], 0));
        (spec.run_efficiency_sd * run_rng.normal()).exp()
    } else {
        1.0
    };
    let points = (1..=n)
        .map(|k| {
            let flops = spec.final_flops * k as f64 / n as f64;
            let noise = if spec.noise_sd > 0.0 {
                spec.noise_sd * rng.normal()
            } else {
                0.0
            };
            EvalPoint {
                step: k as u64 * spec.steps_per_eval,
                tokens: flops / spec.flops_per_token,
                flops,
                val_loss: spec.law.loss(efficiency * spec.compute_multiplier * flops) + noise,
                val_se: spec.eval_se,
            }
        })
        .collect();
    Curve {
        variant: variant.into(),
        scale: scale.into(),
        seed,
        flops_per_token: spec.flops_per_token,
        non_embedding_params: spec.non_embedding_params,
        points,
    }
}
