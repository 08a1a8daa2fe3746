//! Is a variant's gain compute-dependent? An equivalence question: regress ln CEG on ln C
//! across scales and compare the slope's interval with a stated margin m around 0 (default
//! ±0.05 in ln CEG per e-fold of compute: over 10× compute the CEG moves by at most 12%).
//!
//! - compute-dependent: the interval lies wholly beyond the margin (above m: the gain grows
//!   with compute; below −m: it shrinks);
//! - compute-independent: the interval lies wholly within ±m;
//! - inconclusive: otherwise (a slope whose interval excludes 0 but not the margin is *not*
//!   called dependent);
//! - budget mismatch: the scales were trained to tokens-per-parameter budgets more than
//!   `max_budget_ratio` apart, so a trend across them mixes compute with how far each scale
//!   trained: no verdict;
//! - too few scales.
//!
//! The slope is the OLS slope through the cells' ln CEGs. Its interval comes from the seeds
//! when every scale has a per-seed interval (slope = Σ w_s·ȳ_s, variance Σ w_s²·se_s²,
//! Welch–Satterthwaite degrees of freedom), else from the scatter around the line (OLS t,
//! n − 2 degrees of freedom: very wide with three scales).

use serde::{Deserialize, Serialize};

use super::interval::{CONFIDENCE_LEVEL, Interval, LogEstimate, t_critical};

/// The CEG of one variant at one scale, for the regression.
#[derive(Debug, Clone, PartialEq)]
pub struct DependencePoint {
    pub scale: String,
    /// Compute of the scale (the baseline's final FLOPs there).
    pub compute: f64,
    pub ceg: f64,
    /// The cell's per-seed ln CEG mean and standard error (None: fewer than three seeds).
    pub log_estimate: Option<LogEstimate>,
    /// Training tokens per non-embedding parameter at this scale, when known.
    pub tokens_per_param: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DependenceOptions {
    pub equivalence_margin: f64,
    pub min_scales: usize,
    /// No verdict when tokens/parameter differ by more than this factor between scales.
    pub max_budget_ratio: f64,
}

impl Default for DependenceOptions {
    fn default() -> Self {
        DependenceOptions {
            equivalence_margin: 0.05,
            min_scales: 3,
            max_budget_ratio: 2.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DependenceClass {
    ComputeDependent,
    ComputeIndependent,
    Inconclusive,
    /// Fewer scales with an estimate than `min_scales`.
    InsufficientScales,
    /// Tokens-per-parameter budgets differ too much between scales for a verdict.
    BudgetMismatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlopeIntervalMethod {
    /// From the per-seed standard errors at each scale (Welch–Satterthwaite).
    Seeds,
    OlsT,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DependenceResult {
    pub class: DependenceClass,
    pub scales: Vec<String>,
    /// d ln CEG / d ln C, from the point estimates.
    pub slope: Option<f64>,
    pub intercept: Option<f64>,
    pub slope_interval: Option<Interval>,
    pub interval_method: Option<SlopeIntervalMethod>,
    /// The OLS t-interval, reported even when the seed one was used.
    pub ols_interval: Option<Interval>,
    /// Largest over smallest tokens-per-parameter budget across the scales, when known.
    #[serde(default)]
    pub budget_ratio: Option<f64>,
    pub reason: String,
}

/// Least-squares line y = a + b·x; returns (a, b, standard error of b).
pub fn ols_line(x: &[f64], y: &[f64]) -> Option<(f64, f64, f64)> {
    let n = x.len();
    if n < 2 || y.len() != n {
        return None;
    }
    let mean_x = x.iter().sum::<f64>() / n as f64;
    let mean_y = y.iter().sum::<f64>() / n as f64;
    let sxx: f64 = x.iter().map(|xi| (xi - mean_x).powi(2)).sum();
    if sxx.is_nan() || sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = x
        .iter()
        .zip(y)
        .map(|(xi, yi)| (xi - mean_x) * (yi - mean_y))
        .sum();
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let sse: f64 = x
        .iter()
        .zip(y)
        .map(|(xi, yi)| (yi - intercept - slope * xi).powi(2))
        .sum();
    let standard_error = if n > 2 {
        (sse / (n - 2) as f64 / sxx).sqrt()
    } else {
        f64::INFINITY
    };
    Some((intercept, slope, standard_error))
}

/// The slope's interval from the seeds: None unless every scale has a per-seed estimate.
fn seed_slope_interval(x: &[f64], points: &[&DependencePoint], slope: f64) -> Option<Interval> {
    let estimates: Vec<LogEstimate> = points
        .iter()
        .map(|p| p.log_estimate)
        .collect::<Option<_>>()?;
    let mean_x = x.iter().sum::<f64>() / x.len() as f64;
    let sxx: f64 = x.iter().map(|xi| (xi - mean_x).powi(2)).sum();
    let terms: Vec<(f64, f64)> = x
        .iter()
        .zip(&estimates)
        .map(|(xi, e)| {
            let w = (xi - mean_x) / sxx;
            (w * w * e.standard_error.powi(2), e.degrees_of_freedom)
        })
        .collect();
    let variance: f64 = terms.iter().map(|(v, _)| v).sum();
    let denominator: f64 = terms.iter().map(|(v, df)| v * v / df).sum();
    let degrees_of_freedom = if denominator > 0.0 {
        variance * variance / denominator
    } else {
        terms
            .iter()
            .map(|(_, df)| *df)
            .fold(f64::INFINITY, f64::min)
    };
    let half = t_critical(CONFIDENCE_LEVEL, degrees_of_freedom) * variance.sqrt();
    Some(Interval {
        low: slope - half,
        high: slope + half,
        level: CONFIDENCE_LEVEL,
    })
}

/// Largest over smallest budget, and the scales whose budget is unknown.
fn budget_ratio(points: &[&DependencePoint]) -> (Option<f64>, Vec<String>) {
    let unknown: Vec<String> = points
        .iter()
        .filter(|p| p.tokens_per_param.filter(|b| *b > 0.0).is_none())
        .map(|p| p.scale.clone())
        .collect();
    let budgets: Vec<f64> = points.iter().filter_map(|p| p.tokens_per_param).collect();
    let ratio = (unknown.is_empty() && !budgets.is_empty()).then(|| {
        budgets.iter().copied().fold(0.0, f64::max)
            / budgets.iter().copied().fold(f64::INFINITY, f64::min)
    });
    (ratio, unknown)
}

/// Classifies one variant's CEG-versus-compute relation.
pub fn classify_compute_dependence(
    points: &[DependencePoint],
    opts: &DependenceOptions,
) -> DependenceResult {
    let usable: Vec<&DependencePoint> = points
        .iter()
        .filter(|p| p.ceg.is_finite() && p.ceg > 0.0 && p.compute.is_finite() && p.compute > 0.0)
        .collect();
    let scales: Vec<String> = usable.iter().map(|p| p.scale.clone()).collect();
    let mut distinct_compute: Vec<f64> = usable.iter().map(|p| p.compute).collect();
    distinct_compute.sort_by(f64::total_cmp);
    distinct_compute.dedup();
    let needed = opts.min_scales.max(2);
    let (ratio, unknown_budgets) = budget_ratio(&usable);
    let mut result = DependenceResult {
        class: DependenceClass::InsufficientScales,
        scales,
        slope: None,
        intercept: None,
        slope_interval: None,
        interval_method: None,
        ols_interval: None,
        budget_ratio: ratio,
        reason: String::new(),
    };
    if distinct_compute.len() < needed {
        result.reason = format!(
            "needs CEG estimates at {needed} or more distinct compute scales, has {}",
            distinct_compute.len()
        );
        return result;
    }
    let x: Vec<f64> = usable.iter().map(|p| p.compute.ln()).collect();
    let y: Vec<f64> = usable.iter().map(|p| p.ceg.ln()).collect();
    let (intercept, slope, standard_error) = ols_line(&x, &y).expect("distinct compute values");
    result.slope = Some(slope);
    result.intercept = Some(intercept);
    let t = t_critical(CONFIDENCE_LEVEL, (usable.len() - 2) as f64);
    let ols_interval = Interval {
        low: slope - t * standard_error,
        high: slope + t * standard_error,
        level: CONFIDENCE_LEVEL,
    };
    result.ols_interval = Some(ols_interval);
    let (interval, method) = match seed_slope_interval(&x, &usable, slope) {
        Some(interval) => (interval, SlopeIntervalMethod::Seeds),
        None => (ols_interval, SlopeIntervalMethod::OlsT),
    };
    result.slope_interval = Some(interval);
    result.interval_method = Some(method);

    let margin = opts.equivalence_margin;
    let described = format!(
        "slope of ln CEG on ln C = {slope:.3}, 95% interval [{:.3}, {:.3}] ({})",
        interval.low,
        interval.high,
        match method {
            SlopeIntervalMethod::Seeds => "from the seeds at each scale",
            SlopeIntervalMethod::OlsT => "OLS t-interval",
        }
    );
    (result.class, result.reason) = if interval.low >= -margin && interval.high <= margin {
        (
            DependenceClass::ComputeIndependent,
            format!("{described} lies within ±{margin}: the gain does not change with compute"),
        )
    } else if interval.low > margin {
        (
            DependenceClass::ComputeDependent,
            format!("{described} lies above +{margin}: the gain grows with compute"),
        )
    } else if interval.high < -margin {
        (
            DependenceClass::ComputeDependent,
            format!("{described} lies below −{margin}: the gain shrinks with compute"),
        )
    } else {
        (
            DependenceClass::Inconclusive,
            format!("{described} neither lies within ±{margin} nor clears it"),
        )
    };
    if let Some(ratio) = ratio.filter(|r| *r > opts.max_budget_ratio) {
        result.class = DependenceClass::BudgetMismatch;
        result.reason = format!(
            "tokens per parameter differ {ratio:.1}× between scales (allowed {}×): a trend \
             across them mixes compute with how far each scale trained, so no verdict ({described})",
            opts.max_budget_ratio
        );
    } else if !unknown_budgets.is_empty() {
        result.reason.push_str(&format!(
            "; tokens per parameter unknown at {}: training budgets not checked",
            unknown_budgets.join(", ")
        ));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ols_recovers_an_exact_line() {
        let (a, b, se) = ols_line(&[0.0, 1.0, 2.0], &[1.0, 3.0, 5.0]).unwrap();
        assert!((a - 1.0).abs() < 1e-12 && (b - 2.0).abs() < 1e-12 && se.abs() < 1e-12);
    }
}
