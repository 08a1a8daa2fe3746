//! The CEG table: every estimator for every variant × scale, with intervals, verdicts, the
//! scaling-law fit, the compute-dependence classification and combined-versus-product
//! comparisons. Serialises to ceg.json; [`CegTable::write_csv`] writes ceg.csv.
//!
//! Seeds: each cell is estimated on the seed-mean curves and per paired seed (seed k of the
//! variant against seed k of the baseline); the per-seed log CEGs give the standard error of
//! its Student-t interval ([`super::cell`], [`super::interval`]); [`super::verdict`] turns it into the cell's verdict,
//! and Holm's adjustment over the variants × scales of each estimator says which claims
//! survive multiple comparison.

use std::collections::{BTreeMap, BTreeSet};

use super::ceg_table::list;
pub use super::ceg_table::{
    AnalysisOptions, CegRow, CegTable, CombinedComparison, DependenceEntry, EstimateDetail,
    Estimator, SCHEMA_VERSION, ScaleSummary, ScalingLawSection,
};
use super::cell::{CellInputs, LawForCells, reference_rows, variant_rows};
use super::combined::combined_vs_product;
use super::curve::{Curve, MeanCurve, check_aligned};
use super::dependence::{DependenceOptions, DependencePoint, classify_compute_dependence};
use super::error::{AnalysisError, Refusal};
use super::eval_noise::{FinalLoss, noise_in_ln_ceg};
use super::interval::{CONFIDENCE_LEVEL, holm_adjust};
use super::paper::{paper_bias_on_law, paper_bias_reference, reference_law};
use super::scaling_law::{
    PowerLaw, ScalingLawFit, ScalingLawOptions, fit_points_from_curves, fit_scaling_law,
};
use super::verdict::{HolmSummary, holm_alpha};

type Group<'a> = Vec<&'a Curve>;

fn check_options(opts: &AnalysisOptions) -> Result<(), AnalysisError> {
    let invalid = |message: String| Err(AnalysisError::InvalidOption(message));
    let law = &opts.scaling_law;
    if !(0.0..1.0).contains(&law.skip_initial_fraction) {
        return invalid(format!(
            "scaling_law.skip_initial_fraction must be in [0, 1), got {}",
            law.skip_initial_fraction
        ));
    }
    if !(law.exponent_min > 0.0 && law.exponent_max > law.exponent_min) {
        return invalid(
            "scaling_law exponent range must satisfy 0 < exponent_min < exponent_max".into(),
        );
    }
    if !(opts.tolerance.is_finite() && opts.tolerance >= 0.0) {
        return invalid(format!(
            "tolerance must be a non-negative ln CEG, got {}",
            opts.tolerance
        ));
    }
    Ok(())
}

/// Validated curves grouped by (variant, scale), seeds in order.
fn group_curves(curves: &[Curve]) -> Result<BTreeMap<(String, String), Group<'_>>, AnalysisError> {
    let mut groups: BTreeMap<(String, String), Group<'_>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for curve in curves {
        curve.validate()?;
        if !seen.insert((curve.variant.clone(), curve.scale.clone(), curve.seed)) {
            return Err(AnalysisError::DuplicateRun {
                run: curve.run_id(),
            });
        }
        groups
            .entry((curve.variant.clone(), curve.scale.clone()))
            .or_default()
            .push(curve);
    }
    for group in groups.values_mut() {
        group.sort_by_key(|c| c.seed);
        check_aligned(group)?;
    }
    Ok(groups)
}

/// The baseline's groups by scale; errors when the baseline, a scale's baseline or a
/// combination's variant is missing.
fn baseline_groups<'g, 'c>(
    groups: &'g BTreeMap<(String, String), Group<'c>>,
    opts: &AnalysisOptions,
) -> Result<BTreeMap<&'g str, &'g Group<'c>>, AnalysisError> {
    let variant_names: BTreeSet<&str> = groups.keys().map(|(v, _)| v.as_str()).collect();
    let baseline = opts.baseline.as_str();
    if !variant_names.contains(baseline) {
        return Err(AnalysisError::MissingBaseline {
            baseline: baseline.into(),
            present: list(&variant_names),
        });
    }
    let by_scale: BTreeMap<&str, &Group<'_>> = groups
        .iter()
        .filter(|((v, _), _)| v == baseline)
        .map(|((_, s), g)| (s.as_str(), g))
        .collect();
    for (variant, scale) in groups.keys() {
        if !by_scale.contains_key(scale.as_str()) {
            return Err(AnalysisError::ScaleWithoutBaseline {
                variant: variant.clone(),
                scale: scale.clone(),
                baseline: baseline.into(),
                baseline_scales: list(by_scale.keys()),
            });
        }
    }
    for (combined, components) in &opts.combinations {
        for name in std::iter::once(combined).chain(components) {
            if !variant_names.contains(name.as_str()) {
                return Err(AnalysisError::UnknownVariant {
                    variant: name.clone(),
                    present: list(&variant_names),
                });
            }
        }
    }
    Ok(by_scale)
}

/// The law the cells read from: the fit, unless it failed or is too poor.
fn law_for_cells<'a>(
    fit: &'a Result<ScalingLawFit, Refusal>,
    opts: &ScalingLawOptions,
) -> LawForCells<'a> {
    let fit = fit.as_ref().map_err(Clone::clone)?;
    let problems = fit.problems(opts.max_rmse);
    if problems.is_empty() {
        Ok(fit)
    } else {
        Err(Refusal::PoorFit {
            reasons: problems.join("; "),
        })
    }
}

/// Holm-adjusts each estimator's p-values over its variants × scales and summarises.
fn adjust_for_multiple_comparisons(rows: &mut [CegRow]) -> Vec<HolmSummary> {
    let mut summaries = Vec::new();
    for estimator in Estimator::ALL {
        let tested: Vec<usize> = (0..rows.len())
            .filter(|&i| rows[i].estimator == estimator && rows[i].p_value.is_some())
            .collect();
        if tested.is_empty() {
            continue;
        }
        let p: Vec<f64> = tested
            .iter()
            .map(|&i| rows[i].p_value.unwrap_or(1.0))
            .collect();
        for (&i, adjusted) in tested.iter().zip(holm_adjust(&p)) {
            rows[i].holm_p_value = Some(adjusted);
        }
        let claims: Vec<&CegRow> = tested
            .iter()
            .map(|&i| &rows[i])
            .filter(|r| r.verdict.is_claim())
            .collect();
        let not_surviving: Vec<String> = claims
            .iter()
            .filter(|r| r.holm_p_value.is_none_or(|p| p >= holm_alpha()))
            .map(|r| format!("{} @ {}", r.variant, r.scale))
            .collect();
        summaries.push(HolmSummary {
            estimator: estimator.name().to_string(),
            tested: tested.len(),
            claims: claims.len(),
            claims_surviving: claims.len() - not_surviving.len(),
            not_surviving,
        });
    }
    summaries
}

/// A scale's evaluation noise and the verdict tolerance that follows from it.
#[derive(Clone, Copy)]
struct ScaleNoise {
    eval_se: Option<f64>,
    ln_ceg: Option<f64>,
    tolerance: f64,
}

fn scale_noise(mean: &MeanCurve, group: &Group<'_>, opts: &AnalysisOptions) -> ScaleNoise {
    let eval_se = FinalLoss::of(&opts.baseline, "", group).and_then(|f| f.eval_se);
    let ln_ceg = eval_se.and_then(|se| noise_in_ln_ceg(mean, se));
    ScaleNoise {
        eval_se,
        ln_ceg,
        tolerance: opts.tolerance.max(ln_ceg.unwrap_or(0.0)),
    }
}

fn scale_summary(
    scale: &str,
    mean: &MeanCurve,
    group: &Group<'_>,
    law: &PowerLaw,
    noise: ScaleNoise,
) -> ScaleSummary {
    let grid: Vec<f64> = mean.flops.iter().copied().filter(|&c| c > 0.0).collect();
    let per_run = |f: &dyn Fn(&Curve) -> Option<f64>| -> Option<f64> {
        let values: Option<Vec<f64>> = group.iter().map(|c| f(c)).collect();
        values.map(|v| v.iter().sum::<f64>() / v.len() as f64)
    };
    ScaleSummary {
        scale: scale.to_string(),
        baseline_final_flops: mean.final_flops(),
        baseline_final_tokens: per_run(&|c| Some(c.points.last().map_or(0.0, |p| p.tokens)))
            .unwrap_or(0.0),
        baseline_eval_points: mean.loss.len(),
        baseline_seeds: group.iter().map(|c| c.seed).collect(),
        tokens_per_param: per_run(&|c| c.tokens_per_param()),
        baseline_eval_se: noise.eval_se,
        eval_noise_ln_ceg: noise.ln_ceg,
        verdict_tolerance: noise.tolerance,
        paper_bias_at_2x: paper_bias_on_law(law, &grid, 2.0).ok(),
        paper_bias_law: *law,
    }
}

fn dependence_entries(
    rows: &[CegRow],
    variants: &[String],
    scales: &[ScaleSummary],
    opts: &DependenceOptions,
) -> Vec<DependenceEntry> {
    let budget = |scale: &str| {
        scales
            .iter()
            .find(|s| s.scale == scale)
            .and_then(|s| s.tokens_per_param)
    };
    let mut entries = Vec::new();
    for variant in variants.iter().skip(1) {
        for estimator in Estimator::ALL {
            let points: Vec<DependencePoint> = rows
                .iter()
                .filter(|r| &r.variant == variant && r.estimator == estimator)
                .filter_map(|r| {
                    Some(DependencePoint {
                        scale: r.scale.clone(),
                        compute: r.compute,
                        ceg: r.ceg?,
                        log_estimate: r.interval.and(r.log_estimate),
                        tokens_per_param: budget(&r.scale),
                    })
                })
                .collect();
            entries.push(DependenceEntry {
                variant: variant.clone(),
                estimator,
                result: classify_compute_dependence(&points, opts),
            });
        }
    }
    entries
}

fn method_notes() -> Vec<String> {
    vec![
        "paper: the authors' estimator (adaptive trailing 8-point mean, eval index + 1 as \
         compute), per seed; biased toward 1 (its bias is measured on synthetic curves)"
            .into(),
        "crossing: lag-free monotone fit, log-linear interpolation in FLOPs, at the lowest \
         loss both runs reach"
            .into(),
        "scaling_law: baseline law L(C) = E + A·C^(−α) fitted over all baseline scales; each \
         variant's final loss is inverted relative to its own scale's baseline final loss (the \
         law supplies only the shape between the two); refused when the fit is poor"
            .into(),
        "intervals: 95% Student-t intervals around each cell's CEG in log units, with the \
         standard error of the paired per-seed log CEGs (n − 1 degrees of freedom); with fewer \
         than 3 paired seeds a cell has no interval and is indicative only"
            .into(),
        "tolerance: a scale's verdicts use max(the configured tolerance, the baseline's final \
         evaluation standard error turned into ln compute by its curve's slope over the last \
         doubling of compute); that SE is of one run's loss, larger than the SE of a paired \
         difference on the same windows, so verdicts err on the side of claiming less"
            .into(),
    ]
}

/// Builds the CEG table from all curves.
pub fn analyse(curves: &[Curve], opts: &AnalysisOptions) -> Result<CegTable, AnalysisError> {
    if curves.is_empty() {
        return Err(AnalysisError::NoCurves);
    }
    check_options(opts)?;
    let groups = group_curves(curves)?;
    let baseline_groups = baseline_groups(&groups, opts)?;
    let baseline = opts.baseline.as_str();

    // Scales by compute.
    let baseline_means: BTreeMap<&str, MeanCurve> = baseline_groups
        .iter()
        .map(|(scale, group)| (*scale, MeanCurve::from_curves(group)))
        .collect();
    let mut scale_order: Vec<&str> = baseline_groups.keys().copied().collect();
    scale_order.sort_by(|a, b| {
        baseline_means[a]
            .final_flops()
            .total_cmp(&baseline_means[b].final_flops())
    });

    let all_baseline: Vec<&Curve> = scale_order
        .iter()
        .flat_map(|s| baseline_groups[s].iter().copied())
        .collect();
    let point_fit = fit_scaling_law(
        &fit_points_from_curves(&all_baseline, opts.scaling_law.skip_initial_fraction),
        &opts.scaling_law,
    );
    let law = law_for_cells(&point_fit, &opts.scaling_law);

    let mut variants: Vec<String> = vec![baseline.to_string()];
    let others: BTreeSet<&str> = groups.keys().map(|(v, _)| v.as_str()).collect();
    variants.extend(
        others
            .into_iter()
            .filter(|v| *v != baseline)
            .map(String::from),
    );

    let noise: BTreeMap<&str, ScaleNoise> = scale_order
        .iter()
        .map(|&s| (s, scale_noise(&baseline_means[s], baseline_groups[s], opts)))
        .collect();
    let mut rows = Vec::new();
    let mut final_losses = Vec::new();
    for variant in &variants {
        for &scale in &scale_order {
            let Some(group) = groups.get(&(variant.clone(), scale.to_string())) else {
                continue;
            };
            let cell = CellInputs {
                variant,
                scale,
                compute: baseline_means[scale].final_flops(),
                group,
                baseline_group: baseline_groups[scale],
                baseline_mean: &baseline_means[scale],
                law: &law,
                opts,
                tolerance: noise[scale].tolerance,
            };
            final_losses.extend(FinalLoss::of(variant, scale, group));
            rows.extend(if variant == baseline {
                reference_rows(&cell)
            } else {
                variant_rows(&cell)
            });
        }
    }
    let multiple_comparisons = adjust_for_multiple_comparisons(&mut rows);

    let bias_law = point_fit
        .as_ref()
        .map(|f| f.law)
        .unwrap_or_else(|_| reference_law());
    let scales: Vec<ScaleSummary> = scale_order
        .iter()
        .map(|&s| {
            scale_summary(
                s,
                &baseline_means[s],
                baseline_groups[s],
                &bias_law,
                noise[s],
            )
        })
        .collect();
    let compute_dependence = dependence_entries(&rows, &variants, &scales, &opts.dependence);
    let refusal = law.err();
    let mut table = CegTable {
        schema_version: SCHEMA_VERSION,
        baseline: baseline.into(),
        confidence_level: CONFIDENCE_LEVEL,
        options: opts.clone(),
        scales,
        variants,
        rows,
        scaling_law: ScalingLawSection {
            fit: point_fit.ok(),
            refusal,
        },
        compute_dependence,
        combined: Vec::new(),
        final_losses,
        multiple_comparisons,
        paper_bias_reference: [2.0, 0.5]
            .iter()
            .filter_map(|&m| paper_bias_reference(40, m).ok())
            .collect(),
        notes: method_notes(),
    };
    for (combined, components) in &opts.combinations {
        let names: Vec<&str> = components.iter().map(String::as_str).collect();
        let comparisons = combined_vs_product(&table, combined, &names)?;
        table.combined.extend(comparisons);
    }
    Ok(table)
}
