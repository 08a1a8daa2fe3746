//! What the analysis returns, as written to ceg.json and ceg.csv: the options it ran with,
//! one [`CegRow`] per estimator × variant × scale, per-scale summaries, the scaling-law fit,
//! compute dependence, combined-versus-product comparisons and the final losses. The numbers
//! are computed in [`super::table`], [`super::cell`] and [`super::combined`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::crossing::CrossingEstimate;
use super::dependence::{DependenceOptions, DependenceResult};
use super::error::{AnalysisError, Refusal};
use super::eval_noise::FinalLoss;
use super::interval::{Interval, LogEstimate};
use super::paper::{PaperBias, PaperEstimate};
use super::scaling_law::{PowerLaw, ScalingLawEstimate, ScalingLawFit, ScalingLawOptions};
use super::verdict::{CellVerdict, DEFAULT_TOLERANCE, HolmSummary};

pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Estimator {
    Paper,
    Crossing,
    ScalingLaw,
}

impl Estimator {
    pub const ALL: [Estimator; 3] = [Estimator::Paper, Estimator::Crossing, Estimator::ScalingLaw];

    pub fn name(self) -> &'static str {
        match self {
            Estimator::Paper => "paper",
            Estimator::Crossing => "crossing",
            Estimator::ScalingLaw => "scaling_law",
        }
    }
}

/// Everything the analysis can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnalysisOptions {
    /// The variant every CEG is measured against.
    pub baseline: String,
    /// Per-seed Student-t intervals (false: point estimates only, every cell indicative).
    pub intervals: bool,
    /// ln CEG below which a difference is "no measurable difference" ([`super::verdict`]).
    pub tolerance: f64,
    pub scaling_law: ScalingLawOptions,
    pub dependence: DependenceOptions,
    /// Combined variant → its component variants, e.g. "combined" → [flash, rope, layernorm].
    pub combinations: BTreeMap<String, Vec<String>>,
}

impl Default for AnalysisOptions {
    fn default() -> Self {
        AnalysisOptions {
            baseline: "baseline".into(),
            intervals: true,
            tolerance: DEFAULT_TOLERANCE,
            scaling_law: ScalingLawOptions::default(),
            dependence: DependenceOptions::default(),
            combinations: BTreeMap::new(),
        }
    }
}

/// What an estimate was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EstimateDetail {
    /// The baseline against itself: CEG 1 by definition.
    Reference,
    Paper(PaperEstimate),
    Crossing(CrossingEstimate),
    ScalingLaw(ScalingLawEstimate),
}

/// One estimator's CEG for one variant at one scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CegRow {
    pub variant: String,
    pub scale: String,
    pub estimator: Estimator,
    /// The scale's compute: the baseline's final training FLOPs there (seed mean).
    pub compute: f64,
    pub seeds: Vec<u64>,
    pub baseline_seeds: Vec<u64>,
    /// None when refused (see `refusal`).
    pub ceg: Option<f64>,
    /// The paper's auxiliary CEG (the variant never reached the baseline's final loss).
    pub auxiliary: bool,
    /// Student-t interval around `ceg` (log units, standard error from the paired per-seed log
    /// CEGs), mapped back to CEG; 3+ paired seeds.
    pub interval: Option<Interval>,
    /// Why there is no interval, or a caveat about it.
    pub interval_note: Option<String>,
    /// Per paired seed (aligned with `seeds`): that seed's CEG, None where it was refused.
    /// Empty when the seeds were not estimated one by one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_seed: Vec<Option<f64>>,
    /// Mean, standard error and degrees of freedom of the per-seed log CEGs.
    #[serde(default)]
    pub log_estimate: Option<LogEstimate>,
    /// The one verdict the report's text and colours both read.
    #[serde(default = "refused")]
    pub verdict: CellVerdict,
    /// p-value of "|ln CEG| ≤ tolerance", and Holm-adjusted over this estimator's cells.
    #[serde(default)]
    pub p_value: Option<f64>,
    #[serde(default)]
    pub holm_p_value: Option<f64>,
    pub detail: Option<EstimateDetail>,
    pub refusal: Option<Refusal>,
}

fn default_tolerance() -> f64 {
    DEFAULT_TOLERANCE
}

fn refused() -> CellVerdict {
    CellVerdict::Refused
}

/// Per scale: its compute and the paper estimator's bias on synthetic curves with this
/// scale's eval grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleSummary {
    pub scale: String,
    pub baseline_final_flops: f64,
    pub baseline_final_tokens: f64,
    pub baseline_eval_points: usize,
    pub baseline_seeds: Vec<u64>,
    /// Training tokens per non-embedding parameter of the baseline here (seed mean), when the
    /// curves record their parameter count.
    #[serde(default)]
    pub tokens_per_param: Option<f64>,
    /// The baseline's final evaluation standard error here (seed mean), when recorded.
    #[serde(default)]
    pub baseline_eval_se: Option<f64>,
    /// That standard error in ln compute ([`super::eval_noise`]).
    #[serde(default)]
    pub eval_noise_ln_ceg: Option<f64>,
    /// The verdicts' tolerance here: max(the configured one, `eval_noise_ln_ceg`).
    #[serde(default = "default_tolerance")]
    pub verdict_tolerance: f64,
    /// The paper estimator on law(C) vs law(2C) sampled at this scale's positive-compute
    /// eval points (law: the fitted baseline law if there is one, else the reference law).
    pub paper_bias_at_2x: Option<PaperBias>,
    pub paper_bias_law: PowerLaw,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingLawSection {
    pub fit: Option<ScalingLawFit>,
    /// Why the estimator is not used: the fit failed, or it is too poor (then `fit` is kept
    /// so the reader can see it).
    pub refusal: Option<Refusal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DependenceEntry {
    pub variant: String,
    pub estimator: Estimator,
    #[serde(flatten)]
    pub result: DependenceResult,
}

/// ceg.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CegTable {
    pub schema_version: u32,
    pub baseline: String,
    pub confidence_level: f64,
    pub options: AnalysisOptions,
    /// Ordered by compute.
    pub scales: Vec<ScaleSummary>,
    /// Baseline first, then the others by name.
    pub variants: Vec<String>,
    pub rows: Vec<CegRow>,
    pub scaling_law: ScalingLawSection,
    pub compute_dependence: Vec<DependenceEntry>,
    pub combined: Vec<CombinedComparison>,
    /// Final validation losses per variant × scale (seed mean, seed SD, evaluation SE).
    #[serde(default)]
    pub final_losses: Vec<FinalLoss>,
    /// Holm's adjustment over the variants × scales of each estimator.
    #[serde(default)]
    pub multiple_comparisons: Vec<HolmSummary>,
    /// The paper estimator on the reference law with 40 evals at true CEG 2.0 and 0.5.
    pub paper_bias_reference: Vec<PaperBias>,
    pub notes: Vec<String>,
}

/// A combined variant's measured CEG beside the product of its components' CEGs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CombinedComparison {
    pub combined: String,
    pub components: Vec<String>,
    pub scale: String,
    pub estimator: Estimator,
    pub measured: Option<f64>,
    pub measured_interval: Option<Interval>,
    pub product: Option<f64>,
    pub product_interval: Option<Interval>,
    /// measured / product: above 1 the parts help each other, below 1 they overlap.
    pub ratio: Option<f64>,
    pub ratio_interval: Option<Interval>,
    pub note: Option<String>,
}

/// Comma-separated names, for error messages.
pub(crate) fn list(names: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    names
        .into_iter()
        .map(|n| n.as_ref().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

fn number(value: Option<f64>) -> String {
    value.map_or(String::new(), |v| format!("{v}"))
}

impl CegTable {
    pub fn row(&self, variant: &str, scale: &str, estimator: Estimator) -> Option<&CegRow> {
        self.rows
            .iter()
            .find(|r| r.variant == variant && r.scale == scale && r.estimator == estimator)
    }

    pub fn to_json_pretty(&self) -> Result<String, AnalysisError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    pub fn from_json(text: &str) -> Result<CegTable, AnalysisError> {
        Ok(serde_json::from_str(text)?)
    }

    pub fn write_json(&self, path: &Path) -> Result<(), AnalysisError> {
        std::fs::write(path, self.to_json_pretty()? + "\n").map_err(|source| AnalysisError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// ceg.csv: one row per variant × scale × estimator.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "variant,scale,estimator,ceg,ci_low,ci_high,n_seeds,n_baseline_seeds,auxiliary,\
             compute_flops,loss_level,status,note,verdict,holm_p\n",
        );
        for row in &self.rows {
            let loss_level = match &row.detail {
                Some(EstimateDetail::Paper(p)) => Some(p.target_loss),
                Some(EstimateDetail::Crossing(c)) => Some(c.level),
                Some(EstimateDetail::ScalingLaw(s)) => Some(s.variant_loss),
                Some(EstimateDetail::Reference) | None => None,
            };
            let (status, note) = match (&row.refusal, &row.detail) {
                (Some(refusal), _) => ("refused", refusal.to_string()),
                (None, Some(EstimateDetail::Reference)) => ("reference", String::new()),
                _ => ("ok", row.interval_note.clone().unwrap_or_default()),
            };
            let fields = [
                csv_field(&row.variant),
                csv_field(&row.scale),
                row.estimator.name().to_string(),
                number(row.ceg),
                number(row.interval.map(|i| i.low)),
                number(row.interval.map(|i| i.high)),
                row.seeds.len().to_string(),
                row.baseline_seeds.len().to_string(),
                row.auxiliary.to_string(),
                format!("{}", row.compute),
                number(loss_level),
                status.to_string(),
                csv_field(&note),
                row.verdict.phrase().to_string(),
                number(row.holm_p_value),
            ];
            out.push_str(&fields.join(","));
            out.push('\n');
        }
        out
    }

    pub fn write_csv(&self, path: &Path) -> Result<(), AnalysisError> {
        std::fs::write(path, self.to_csv()).map_err(|source| AnalysisError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
