//! One cell of the table: every estimator for one variant at one scale — on the seed-mean
//! curves, then per paired seed, with the Student-t interval of the per-seed log CEGs and the
//! cell's verdict.
//!
//! The cell's CEG is the estimate on the seed-mean curves: averaging the seeds first divides
//! the eval noise by √n, and the lag-free fits' end-point bias shrinks with it (per-seed
//! estimates on noisy curves are pulled toward 1 by about one standard error at 5 seeds
//! with 0.01-nat eval noise). Its interval is centred on that CEG in log units, with the
//! standard error of the paired per-seed log CEGs (sd / √n, Student-t with n − 1 degrees of
//! freedom). With one seed, unpaired seeds, or a seed that could not be estimated there is
//! no interval.

use super::ceg_table::{AnalysisOptions, CegRow, EstimateDetail, Estimator};
use super::crossing::crossing_ceg;
use super::curve::{Curve, MeanCurve};
use super::error::Refusal;
use super::interval::{CONFIDENCE_LEVEL, LogEstimate, MIN_SEEDS_FOR_INTERVAL};
use super::paper::paper_ceg_on_grid;
use super::scaling_law::{ScalingLawFit, ScalingLawOptions, scaling_law_ceg};
use super::smoothing::MonotoneFit;
use super::verdict::{CellVerdict, cell_verdict};

/// The law the `scaling_law` estimator reads from, or why it cannot.
pub type LawForCells<'a> = Result<&'a ScalingLawFit, Refusal>;

type Estimate = Result<(f64, bool, EstimateDetail), Refusal>;

/// All three estimates on one (baseline, variant) pair of mean curves.
pub fn estimate_all(
    baseline: &MeanCurve,
    variant: &MeanCurve,
    law: &LawForCells<'_>,
    opts: &ScalingLawOptions,
) -> [Estimate; 3] {
    let paper = paper_ceg_on_grid(
        &baseline.steps,
        &baseline.loss,
        &variant.steps,
        &variant.loss,
    )
    .map(|e| (e.ceg, e.auxiliary, EstimateDetail::Paper(e)));
    let baseline_fit = MonotoneFit::fit(&baseline.flops, &baseline.loss);
    let variant_fit = MonotoneFit::fit(&variant.flops, &variant.loss);
    let (crossing, scaling) = match (&baseline_fit, &variant_fit) {
        (Ok(b), Ok(v)) => (
            crossing_ceg(b, v).map(|e| (e.ceg, false, EstimateDetail::Crossing(e))),
            law.clone().and_then(|fit| {
                scaling_law_ceg(fit, b, v, opts.max_extrapolation_factor)
                    .map(|e| (e.ceg, false, EstimateDetail::ScalingLaw(e)))
            }),
        ),
        (Err(r), _) | (_, Err(r)) => (Err(r.clone()), Err(r.clone())),
    };
    [paper, crossing, scaling]
}

/// What one cell is computed from.
pub struct CellInputs<'a> {
    pub variant: &'a str,
    pub scale: &'a str,
    pub compute: f64,
    pub group: &'a [&'a Curve],
    pub baseline_group: &'a [&'a Curve],
    pub baseline_mean: &'a MeanCurve,
    pub law: &'a LawForCells<'a>,
    pub opts: &'a AnalysisOptions,
    /// This scale's verdict tolerance (the configured one, raised to its evaluation noise).
    pub tolerance: f64,
}

fn empty_row(cell: &CellInputs<'_>, estimator: Estimator) -> CegRow {
    CegRow {
        variant: cell.variant.to_string(),
        scale: cell.scale.to_string(),
        estimator,
        compute: cell.compute,
        seeds: cell.group.iter().map(|c| c.seed).collect(),
        baseline_seeds: cell.baseline_group.iter().map(|c| c.seed).collect(),
        ceg: None,
        auxiliary: false,
        interval: None,
        interval_note: None,
        per_seed: Vec::new(),
        log_estimate: None,
        verdict: CellVerdict::Refused,
        p_value: None,
        holm_p_value: None,
        detail: None,
        refusal: None,
    }
}

/// The baseline's own rows: CEG 1 by definition.
pub fn reference_rows(cell: &CellInputs<'_>) -> Vec<CegRow> {
    Estimator::ALL
        .into_iter()
        .map(|estimator| CegRow {
            ceg: Some(1.0),
            detail: Some(EstimateDetail::Reference),
            verdict: CellVerdict::Reference,
            interval_note: Some("reference variant: CEG is 1 by definition".into()),
            ..empty_row(cell, estimator)
        })
        .collect()
}

/// Per paired seed, per estimator: the CEG or the refusal.
fn per_seed_estimates(cell: &CellInputs<'_>) -> [Vec<Result<f64, Refusal>>; 3] {
    let mut out: [Vec<Result<f64, Refusal>>; 3] = Default::default();
    for (baseline, variant) in cell.baseline_group.iter().zip(cell.group) {
        let estimates = estimate_all(
            &MeanCurve::from_curves(&[*baseline]),
            &MeanCurve::from_curves(&[*variant]),
            cell.law,
            &cell.opts.scaling_law,
        );
        for (k, estimate) in estimates.into_iter().enumerate() {
            out[k].push(estimate.map(|e| e.0));
        }
    }
    out
}

/// Why a cell with a point estimate has no per-seed interval, if it has none.
fn no_interval_reason(cell: &CellInputs<'_>, paired: bool) -> Option<String> {
    let (n, n_baseline) = (cell.group.len(), cell.baseline_group.len());
    if !cell.opts.intervals {
        Some("intervals turned off: indicative only".into())
    } else if !paired {
        Some(format!(
            "the variant's seeds ({}) and the baseline's ({}) differ, so they cannot be paired: \
             no interval, indicative only (train both with the same seed list)",
            seed_list(cell.group),
            seed_list(cell.baseline_group)
        ))
    } else if n.min(n_baseline) < 2 {
        Some("one seed: no interval, indicative only".into())
    } else {
        None
    }
}

fn seed_list(curves: &[&Curve]) -> String {
    curves
        .iter()
        .map(|c| c.seed.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The three rows of a non-baseline cell.
pub fn variant_rows(cell: &CellInputs<'_>) -> Vec<CegRow> {
    let variant_mean = MeanCurve::from_curves(cell.group);
    let point = estimate_all(
        cell.baseline_mean,
        &variant_mean,
        cell.law,
        &cell.opts.scaling_law,
    );
    let seeds: Vec<u64> = cell.group.iter().map(|c| c.seed).collect();
    let paired = seeds
        == cell
            .baseline_group
            .iter()
            .map(|c| c.seed)
            .collect::<Vec<_>>();
    let no_interval = no_interval_reason(cell, paired);
    let per_seed = if no_interval.is_none() {
        Some(per_seed_estimates(cell))
    } else {
        None
    };
    let mut rows = Vec::new();
    for (k, (estimator, estimate)) in Estimator::ALL.into_iter().zip(point).enumerate() {
        let mut row = empty_row(cell, estimator);
        match estimate {
            Ok((ceg, auxiliary, detail)) => {
                row.ceg = Some(ceg);
                row.auxiliary = auxiliary;
                row.detail = Some(detail);
            }
            Err(refusal) => row.refusal = Some(refusal),
        }
        if row.ceg.is_some() {
            match (&no_interval, &per_seed) {
                (Some(reason), _) => row.interval_note = Some(reason.clone()),
                (None, Some(per_seed)) => attach_seeds(&mut row, &seeds, &per_seed[k]),
                (None, None) => unreachable!("per-seed estimates exist when no reason is given"),
            }
        }
        row.verdict = cell_verdict(
            row.ceg,
            row.interval,
            if row.interval.is_some() {
                seeds.len()
            } else {
                0
            },
            cell.tolerance,
        );
        if row.interval.is_some() {
            row.p_value = row
                .log_estimate
                .map(|e| e.p_value_outside_band(cell.tolerance));
        }
        rows.push(row);
    }
    rows
}

/// Per-seed CEGs → the cell's standard error and interval (around its seed-mean CEG), or
/// why there is none.
fn attach_seeds(row: &mut CegRow, seeds: &[u64], per_seed: &[Result<f64, Refusal>]) {
    let failed: Vec<String> = seeds
        .iter()
        .zip(per_seed)
        .filter_map(|(seed, e)| e.as_ref().err().map(|r| format!("seed {seed}: {r}")))
        .collect();
    row.per_seed = per_seed.iter().map(|e| e.as_ref().ok().copied()).collect();
    if !failed.is_empty() {
        row.interval_note = Some(format!(
            "{} of {} seeds could not be estimated ({}): no interval, the seed-mean estimate is \
             indicative only",
            failed.len(),
            seeds.len(),
            failed.join("; ")
        ));
        return;
    }
    let logs: Vec<f64> = row.per_seed.iter().flatten().map(|c| c.ln()).collect();
    let (Some(ceg), Some(spread)) = (row.ceg, LogEstimate::from_seeds(&logs)) else {
        return;
    };
    if spread.standard_error == 0.0 && row.estimator == Estimator::Paper {
        // The paper's step-index estimator gives every seed the same ratio of eval indices
        // (1.000 included): a zero spread is its grid's resolution, not certainty.
        row.interval_note = Some(format!(
            "all {} seeds gave {ceg:.3} exactly: on this estimator's eval grid the seeds' \
             spread is zero, which says nothing about its uncertainty; no interval, \
             indicative only",
            logs.len()
        ));
        return;
    }
    let estimate = LogEstimate {
        mean: ceg.ln(),
        ..spread
    };
    row.log_estimate = Some(estimate);
    if logs.len() >= MIN_SEEDS_FOR_INTERVAL {
        row.interval = Some(estimate.interval(CONFIDENCE_LEVEL).exp());
    } else {
        row.interval_note = Some(format!(
            "{} paired seeds: no interval (at least {MIN_SEEDS_FOR_INTERVAL} needed), \
             indicative only",
            logs.len()
        ));
    }
}
