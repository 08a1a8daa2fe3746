//! Evaluation noise: what the validation set's finite size does to a loss and to a CEG.
//!
//! Each eval point carries the standard error of its loss over the validation windows
//! (`val_se`, the train kind's whole-split evaluation). At a scale, the baseline's final SE
//! translates into ln compute through the slope of its seed-mean curve over the last doubling
//! of compute: `noise = SE / |dL/d ln C|`. A CEG within that of 1 cannot be told from 1 by
//! this evaluation, so a scale's verdict tolerance is max(configured tolerance, noise). The SE
//! is of one run's loss, not of a paired difference on the same windows (smaller), so the
//! tolerance errs on the side of claiming less.

use serde::{Deserialize, Serialize};

use super::curve::{Curve, MeanCurve};

/// One variant × scale's final validation losses over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalLoss {
    pub variant: String,
    pub scale: String,
    pub seeds: usize,
    /// Seed mean of the final val loss (nats/token).
    pub mean: f64,
    /// Sample standard deviation across seeds (2+ seeds).
    pub seed_sd: Option<f64>,
    /// Seed mean of the final losses' evaluation standard errors, when the curves carry them.
    pub eval_se: Option<f64>,
}

impl FinalLoss {
    pub fn of(variant: &str, scale: &str, group: &[&Curve]) -> Option<FinalLoss> {
        let finals: Vec<(f64, f64)> = group
            .iter()
            .filter_map(|c| c.points.last().map(|p| (p.val_loss, p.val_se)))
            .collect();
        if finals.is_empty() {
            return None;
        }
        let n = finals.len() as f64;
        let mean = finals.iter().map(|f| f.0).sum::<f64>() / n;
        let seed_sd = (finals.len() > 1)
            .then(|| (finals.iter().map(|f| (f.0 - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
        let eval_se = finals
            .iter()
            .all(|f| f.1 > 0.0 && f.1.is_finite())
            .then(|| finals.iter().map(|f| f.1).sum::<f64>() / n);
        Some(FinalLoss {
            variant: variant.to_string(),
            scale: scale.to_string(),
            seeds: finals.len(),
            mean,
            seed_sd,
            eval_se,
        })
    }
}

/// `eval_se` in ln compute at the end of `mean` (the slope over the last doubling of compute),
/// or None when the curve does not fall there (the loss cannot be turned into compute).
pub fn noise_in_ln_ceg(mean: &MeanCurve, eval_se: f64) -> Option<f64> {
    let last = mean.loss.len().checked_sub(1)?;
    let final_flops = mean.flops[last];
    let start = mean
        .flops
        .iter()
        .position(|&c| c > 0.0 && c >= final_flops / 2.0)?;
    if start >= last {
        return None;
    }
    let run = (final_flops / mean.flops[start]).ln();
    let drop = mean.loss[start] - mean.loss[last];
    (drop > 0.0 && run > 0.0).then(|| eval_se / (drop / run))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_the_se_over_the_final_slope() {
        // L = 3 − 0.1·ln C: slope 0.1 per e-fold, so SE 0.002 is 0.02 in ln compute.
        let flops: Vec<f64> = (1..=8).map(|k| k as f64 * 1e9).collect();
        let loss = flops.iter().map(|c: &f64| 3.0 - 0.1 * c.ln()).collect();
        let mean = MeanCurve {
            steps: (1..=8).collect(),
            flops,
            loss,
        };
        let noise = noise_in_ln_ceg(&mean, 0.002).unwrap();
        assert!((noise - 0.02).abs() < 1e-9, "{noise}");
        let flat = MeanCurve {
            loss: vec![2.0; 8],
            ..mean
        };
        assert_eq!(noise_in_ln_ceg(&flat, 0.002), None);
    }
}
