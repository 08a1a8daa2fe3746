//! Errors (bad input: the analysis cannot run) and refusals (one estimate cannot be made).
//!
//! An [`AnalysisError`] stops the whole analysis: the input is malformed. A [`Refusal`] is
//! recorded in the table next to the estimate it replaces, with its reason, and the rest of
//! the table is still produced.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Identifies one training run in error messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunId {
    pub variant: String,
    pub scale: String,
    pub seed: u64,
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "variant={} scale={} seed={}",
            self.variant, self.scale, self.seed
        )
    }
}

/// Malformed input: the analysis refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("no curves were given: there is nothing to analyse")]
    NoCurves,
    #[error("curve {run} has no eval points")]
    EmptyCurve { run: RunId },
    #[error("curve {run}: eval point {index} has a non-finite {field} ({value})")]
    NonFiniteValue {
        run: RunId,
        index: usize,
        field: &'static str,
        value: f64,
    },
    #[error("curve {run}: eval point {index} has a negative {field} ({value})")]
    NegativeValue {
        run: RunId,
        index: usize,
        field: &'static str,
        value: f64,
    },
    #[error("curve {run}: flops_per_token must be finite and positive, got {value}")]
    InvalidFlopsPerToken { run: RunId, value: f64 },
    #[error(
        "curve {run}: eval point {index} does not move forward ({field} {value} after {previous}); \
         steps must increase strictly and tokens/flops must not decrease"
    )]
    NotIncreasing {
        run: RunId,
        index: usize,
        field: &'static str,
        value: f64,
        previous: f64,
    },
    #[error("curve {run} appears twice")]
    DuplicateRun { run: RunId },
    #[error("no curves for the baseline variant `{baseline}` (variants present: {present})")]
    MissingBaseline { baseline: String, present: String },
    #[error(
        "variant `{variant}` has curves at scale `{scale}`, but the baseline `{baseline}` has none \
         there (baseline scales: {baseline_scales})"
    )]
    ScaleWithoutBaseline {
        variant: String,
        scale: String,
        baseline: String,
        baseline_scales: String,
    },
    #[error(
        "the seeds of variant `{variant}` at scale `{scale}` were evaluated at different steps \
         (seed {seed_a}: {len_a} points, seed {seed_b}: {len_b} points, first difference at \
         point {first_difference}); seeds can only be averaged on a common eval grid"
    )]
    MisalignedSeeds {
        variant: String,
        scale: String,
        seed_a: u64,
        len_a: usize,
        seed_b: u64,
        len_b: usize,
        first_difference: usize,
    },
    #[error("cannot read curve file {path}: {message}")]
    ReadCurve { path: PathBuf, message: String },
    #[error("unknown variant `{variant}` (variants present: {present})")]
    UnknownVariant { variant: String, present: String },
    #[error("invalid analysis option: {0}")]
    InvalidOption(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Why one estimate was not made. Serialised into ceg.json beside the missing number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Refusal {
    #[error("needs at least {needed} eval points with positive compute, the curve has {got}")]
    TooFewPoints { needed: usize, got: usize },
    #[error(
        "the baseline and the variant were evaluated at different steps, so the paper's \
         eval-index ratio does not measure steps"
    )]
    EvalGridMismatch,
    #[error(
        "the baseline's smoothed loss never reaches {level:.4} (its best is {baseline_best:.4}), \
         so not even the auxiliary CEG exists"
    )]
    BaselineNeverReaches { level: f64, baseline_best: f64 },
    #[error(
        "the {curve} curve is already below loss {level:.4} at its first usable eval point \
         (compute {first_compute:.3e} FLOPs; fitted loss there {first_loss:.4}): the crossing \
         lies before the data"
    )]
    CrossingBeforeData {
        curve: String,
        level: f64,
        first_compute: f64,
        first_loss: f64,
    },
    #[error(
        "the {curve} curve never reaches loss {level:.4} (its smoothed final loss is \
         {final_loss:.4})"
    )]
    NeverReaches {
        curve: String,
        level: f64,
        final_loss: f64,
    },
    #[error(
        "the variant's final loss {loss:.4} is at or below the fitted irreducible loss \
         E = {irreducible:.4}: the fit says no baseline compute reaches it"
    )]
    BelowIrreducibleLoss { loss: f64, irreducible: f64 },
    #[error(
        "the baseline would need {required:.3e} FLOPs to reach the variant's loss, outside the \
         fitted range [{fitted_min:.3e}, {fitted_max:.3e}] by more than the allowed factor \
         {max_factor}"
    )]
    ExtrapolationTooFar {
        required: f64,
        fitted_min: f64,
        fitted_max: f64,
        max_factor: f64,
    },
    #[error("the scaling-law fit failed: {reason}")]
    FitFailed { reason: String },
    #[error("the scaling-law fit is too poor to read a CEG from: {reasons}")]
    PoorFit { reasons: String },
}
