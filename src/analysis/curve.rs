//! Validation curves: the input of every estimator.

use serde::{Deserialize, Serialize};

use super::error::{AnalysisError, RunId};

/// One validation measurement during training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    /// Optimiser step at which the evaluation ran.
    pub step: u64,
    /// Training tokens consumed up to `step`.
    pub tokens: f64,
    /// Training FLOPs spent up to `step` (tokens × flops_per_token for a fixed model).
    pub flops: f64,
    /// Mean validation loss (nats per token).
    pub val_loss: f64,
    /// Its standard error over the validation windows (0 when the trainer did not record it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub val_se: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// The validation curve of one (variant, scale, seed) training run; the content of curve.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    pub variant: String,
    pub scale: String,
    pub seed: u64,
    /// Training FLOPs per token of this run's model (6N + attention term).
    pub flops_per_token: f64,
    /// Active non-embedding parameters, when the trainer recorded them: with the tokens
    /// trained they give the run's tokens-per-parameter budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_embedding_params: Option<f64>,
    pub points: Vec<EvalPoint>,
}

impl Curve {
    /// Training tokens per non-embedding parameter at the last eval, when known.
    pub fn tokens_per_param(&self) -> Option<f64> {
        let params = self.non_embedding_params.filter(|p| *p > 0.0)?;
        Some(self.points.last()?.tokens / params)
    }

    pub fn run_id(&self) -> RunId {
        RunId {
            variant: self.variant.clone(),
            scale: self.scale.clone(),
            seed: self.seed,
        }
    }

    /// Reads and validates a curve.json.
    pub fn read_json(path: &std::path::Path) -> Result<Curve, AnalysisError> {
        let read_error = |message: String| AnalysisError::ReadCurve {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| read_error(e.to_string()))?;
        let curve: Curve = serde_json::from_str(&text).map_err(|e| read_error(e.to_string()))?;
        curve.validate()?;
        Ok(curve)
    }

    /// Checks what every estimator relies on: at least one point, finite non-negative
    /// numbers, steps strictly increasing, tokens and FLOPs never decreasing.
    pub fn validate(&self) -> Result<(), AnalysisError> {
        let run = || self.run_id();
        if !(self.flops_per_token.is_finite() && self.flops_per_token > 0.0) {
            return Err(AnalysisError::InvalidFlopsPerToken {
                run: run(),
                value: self.flops_per_token,
            });
        }
        if self.points.is_empty() {
            return Err(AnalysisError::EmptyCurve { run: run() });
        }
        for (index, point) in self.points.iter().enumerate() {
            for (field, value) in [
                ("val_loss", point.val_loss),
                ("tokens", point.tokens),
                ("flops", point.flops),
            ] {
                if !value.is_finite() {
                    return Err(AnalysisError::NonFiniteValue {
                        run: run(),
                        index,
                        field,
                        value,
                    });
                }
                if value < 0.0 {
                    return Err(AnalysisError::NegativeValue {
                        run: run(),
                        index,
                        field,
                        value,
                    });
                }
            }
            if index > 0 {
                let previous = &self.points[index - 1];
                let backwards = [
                    (
                        "step",
                        point.step as f64,
                        previous.step as f64,
                        point.step <= previous.step,
                    ),
                    (
                        "tokens",
                        point.tokens,
                        previous.tokens,
                        point.tokens < previous.tokens,
                    ),
                    (
                        "flops",
                        point.flops,
                        previous.flops,
                        point.flops < previous.flops,
                    ),
                ];
                for (field, value, previous, is_backwards) in backwards {
                    if is_backwards {
                        return Err(AnalysisError::NotIncreasing {
                            run: run(),
                            index,
                            field,
                            value,
                            previous,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// The pointwise mean of several seeds' curves, evaluated on a common step grid.
#[derive(Debug, Clone, PartialEq)]
pub struct MeanCurve {
    pub steps: Vec<u64>,
    pub flops: Vec<f64>,
    pub loss: Vec<f64>,
}

impl MeanCurve {
    /// Averages curves that share one eval grid. Callers check alignment first
    /// ([`check_aligned`]); here a mismatch would be a bug, so only the shortest length is used.
    pub fn from_curves(curves: &[&Curve]) -> MeanCurve {
        let n = curves.iter().map(|c| c.points.len()).min().unwrap_or(0);
        let count = curves.len().max(1) as f64;
        let mut flops = vec![0.0; n];
        let mut loss = vec![0.0; n];
        for curve in curves {
            for (i, point) in curve.points.iter().take(n).enumerate() {
                flops[i] += point.flops / count;
                loss[i] += point.val_loss / count;
            }
        }
        let steps = curves
            .first()
            .map(|c| c.points.iter().take(n).map(|p| p.step).collect())
            .unwrap_or_default();
        MeanCurve { steps, flops, loss }
    }

    pub fn final_flops(&self) -> f64 {
        self.flops.last().copied().unwrap_or(0.0)
    }
}

/// Errors unless all curves (the seeds of one variant × scale) share the same eval steps.
pub fn check_aligned(curves: &[&Curve]) -> Result<(), AnalysisError> {
    let Some(first) = curves.first() else {
        return Ok(());
    };
    for other in &curves[1..] {
        let first_difference = first
            .points
            .iter()
            .zip(&other.points)
            .position(|(a, b)| a.step != b.step)
            .or_else(|| {
                (first.points.len() != other.points.len())
                    .then(|| first.points.len().min(other.points.len()))
            });
        if let Some(first_difference) = first_difference {
            return Err(AnalysisError::MisalignedSeeds {
                variant: first.variant.clone(),
                scale: first.scale.clone(),
                seed_a: first.seed,
                len_a: first.points.len(),
                seed_b: other.seed,
                len_b: other.points.len(),
                first_difference,
            });
        }
    }
    Ok(())
}
