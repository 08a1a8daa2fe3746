//! Ground-truth tests of the CEG estimators on synthetic curves with a known compute
//! multiplier, and hand-worked cases of the paper's estimator.

use cegraph::analysis::crossing::{CrossingAnchor, crossing_ceg_from_points};
use cegraph::analysis::paper::{paper_bias_reference, paper_ceg, reference_law};
use cegraph::analysis::scaling_law::{
    ScalingLawOptions, fit_points_from_curves, fit_scaling_law, scaling_law_ceg,
};
use cegraph::analysis::smoothing::MonotoneFit;
use cegraph::analysis::synthetic::{SyntheticSpec, synthetic_curve};
use cegraph::analysis::{Curve, Refusal};

/// Stated tolerance for `crossing` and `scaling_law` on clean synthetic curves.
const CLEAN_TOLERANCE: f64 = 0.02;

fn flops(curve: &Curve) -> Vec<f64> {
    curve.points.iter().map(|p| p.flops).collect()
}

fn losses(curve: &Curve) -> Vec<f64> {
    curve.points.iter().map(|p| p.val_loss).collect()
}

fn clean_pair(multiplier: f64) -> (Curve, Curve) {
    let law = reference_law();
    (
        synthetic_curve("baseline", "s", 0, &SyntheticSpec::clean(law, 1.0)),
        synthetic_curve("variant", "s", 0, &SyntheticSpec::clean(law, multiplier)),
    )
}

#[test]
fn crossing_recovers_known_multipliers_on_clean_curves() {
    // 2.0 and 0.5 land exactly on eval points; 1.37 and 0.73 need interpolation.
    for truth in [2.0, 0.5, 1.37, 0.73] {
        let (baseline, variant) = clean_pair(truth);
        let estimate = crossing_ceg_from_points(
            &flops(&baseline),
            &losses(&baseline),
            &flops(&variant),
            &losses(&variant),
        )
        .unwrap();
        let error = estimate.ceg / truth - 1.0;
        println!(
            "crossing: truth {truth}, estimate {:.6}, relative error {error:.2e}",
            estimate.ceg
        );
        assert!(
            error.abs() < CLEAN_TOLERANCE,
            "truth {truth}, got {}",
            estimate.ceg
        );
        // Log-linear interpolation of a smooth power law over 40 evals is far better than 2%.
        assert!(
            error.abs() < 1e-3,
            "interpolation error larger than expected: {error}"
        );
        let expected_anchor = if truth > 1.0 {
            CrossingAnchor::BaselineFinal
        } else {
            CrossingAnchor::VariantFinal
        };
        assert_eq!(estimate.anchor, expected_anchor);
    }
}

#[test]
fn crossing_does_not_depend_on_eval_spacing() {
    // The same truth (off the eval grid) read with 10, 33 and 80 evals: interpolation, not grid, sets the answer.
    for eval_points in [10, 33, 80] {
        let law = reference_law();
        let spec = |m| SyntheticSpec {
            eval_points,
            ..SyntheticSpec::clean(law, m)
        };
        let baseline = synthetic_curve("baseline", "s", 0, &spec(1.0));
        let variant = synthetic_curve("variant", "s", 0, &spec(1.7));
        let estimate = crossing_ceg_from_points(
            &flops(&baseline),
            &losses(&baseline),
            &flops(&variant),
            &losses(&variant),
        )
        .unwrap();
        println!(
            "crossing at 1.7x with {eval_points} evals: {:.6}",
            estimate.ceg
        );
        assert!(
            (estimate.ceg / 1.7 - 1.0).abs() < 0.005,
            "{eval_points} evals: {}",
            estimate.ceg
        );
    }
}

#[test]
fn scaling_law_recovers_known_multipliers_over_three_scales() {
    let law = reference_law();
    let baselines: Vec<Curve> = [1e16, 1e17, 1e18]
        .iter()
        .enumerate()
        .map(|(i, &final_flops)| {
            synthetic_curve(
                "baseline",
                &format!("s{i}"),
                0,
                &SyntheticSpec {
                    final_flops,
                    ..SyntheticSpec::clean(law, 1.0)
                },
            )
        })
        .collect();
    let refs: Vec<&Curve> = baselines.iter().collect();
    let opts = ScalingLawOptions::default();
    let fit = fit_scaling_law(
        &fit_points_from_curves(&refs, opts.skip_initial_fraction),
        &opts,
    )
    .unwrap();
    println!("fit: {:?}, rmse {:.2e}", fit.law, fit.rmse);
    assert!(
        (fit.law.exponent / law.exponent - 1.0).abs() < 1e-3,
        "{:?}",
        fit.law
    );
    assert!(fit.rmse < 1e-6);
    for truth in [2.0, 0.5] {
        for final_flops in [1e16, 1e17, 1e18] {
            let variant = synthetic_curve(
                "v",
                "s",
                0,
                &SyntheticSpec {
                    final_flops,
                    ..SyntheticSpec::clean(law, truth)
                },
            );
            let monotone = MonotoneFit::fit(&flops(&variant), &losses(&variant)).unwrap();
            // The anchor: the same scale's baseline run.
            let baseline = synthetic_curve(
                "baseline",
                "s",
                0,
                &SyntheticSpec {
                    final_flops,
                    ..SyntheticSpec::clean(law, 1.0)
                },
            );
            let anchor = MonotoneFit::fit(&flops(&baseline), &losses(&baseline)).unwrap();
            let estimate =
                scaling_law_ceg(&fit, &anchor, &monotone, opts.max_extrapolation_factor).unwrap();
            let error = estimate.ceg / truth - 1.0;
            println!(
                "scaling_law: truth {truth} at {final_flops:e}: {:.6} ({error:.2e})",
                estimate.ceg
            );
            assert!(error.abs() < CLEAN_TOLERANCE);
            assert!(
                error.abs() < 1e-3,
                "fit error larger than expected: {error}"
            );
        }
    }
}

#[test]
fn scaling_law_refuses_to_extrapolate_far() {
    let law = reference_law();
    let baseline = synthetic_curve("baseline", "s", 0, &SyntheticSpec::clean(law, 1.0));
    let opts = ScalingLawOptions::default();
    let fit = fit_scaling_law(
        &fit_points_from_curves(&[&baseline], opts.skip_initial_fraction),
        &opts,
    )
    .unwrap();
    // A 10× variant reaches a loss the baseline law only reaches at 10× its largest compute.
    let variant = synthetic_curve("v", "s", 0, &SyntheticSpec::clean(law, 10.0));
    let monotone = MonotoneFit::fit(&flops(&variant), &losses(&variant)).unwrap();
    let anchor = MonotoneFit::fit(&flops(&baseline), &losses(&baseline)).unwrap();
    let refusal =
        scaling_law_ceg(&fit, &anchor, &monotone, opts.max_extrapolation_factor).unwrap_err();
    assert!(
        matches!(refusal, Refusal::ExtrapolationTooFar { max_factor, .. } if max_factor == 4.0),
        "{refusal:?}"
    );
    assert!(refusal.to_string().contains("outside the fitted range"));
}

// Hand-worked cases of the paper's estimator. Window 8, adaptive at the start (as in the
// authors' notebook: point i averages points max(0, i−7)..=i).
//
// Baseline raw 10, 9, ..., 1 (10 evals). Smoothed:
//   i: 0    1    2  3    4  5    6  7    8    9
//      10  9.5   9  8.5  8  7.5  7  6.5  5.5  4.5
//   (i=7: mean 10..3 = 6.5; i=8: mean 9..2 = 5.5; i=9: mean 8..1 = 4.5)
// Target = 4.5, first reached at i = 9, so s_baseline = 10.
const HAND_BASELINE: [f64; 10] = [10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0];

#[test]
fn paper_hand_case_primary() {
    // Variant raw 10, 8, 6, 4, 2, 1, 1, 1, 1, 1. Smoothed: 10, 9, 8, 7, 6, 31/6 = 5.167,
    // 32/7 = 4.571, 33/8 = 4.125 ≤ 4.5 at i = 7 → s_variant = 8. CEG = 10 / 8 = 1.25.
    let variant = [10.0, 8.0, 6.0, 4.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0];
    let estimate = paper_ceg(&HAND_BASELINE, &variant).unwrap();
    assert_eq!((estimate.baseline_evals, estimate.variant_evals), (10, 8));
    assert_eq!(estimate.ceg, 1.25);
    assert!(!estimate.auxiliary);
    assert_eq!(estimate.target_loss, 4.5);
}

#[test]
fn paper_hand_case_adaptive_start() {
    // A variant at 4.0 from the first eval: the adaptive mean is 4.0 ≤ 4.5 at i = 0, so
    // s_variant = 1 and CEG = 10 / 1 = 10. (pandas rolling(8) would leave i < 7 undefined
    // and give 10 / 8: the authors' code is the adaptive one.)
    let estimate = paper_ceg(&HAND_BASELINE, &[4.0; 10]).unwrap();
    assert_eq!(estimate.variant_evals, 1);
    assert_eq!(estimate.ceg, 10.0);
}

#[test]
fn paper_hand_case_auxiliary() {
    // Variant raw 10, 9, 8, 7, 6, 6, 6, 6, 6, 6. Smoothed: 10, 9.5, 9, 8.5, 8, 46/6, 52/7,
    // 58/8 = 7.25, 54/8 = 6.75, 51/8 = 6.375: never ≤ 4.5. Auxiliary: the variant's best
    // smoothed loss 6.375 is at i = 9 (s_variant = 10); the baseline first reaches 6.375 at
    // i = 8 (5.5; i = 7 is 6.5) → s_baseline = 9. Aux CEG = 9 / 10 = 0.9.
    let variant = [10.0, 9.0, 8.0, 7.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0];
    let estimate = paper_ceg(&HAND_BASELINE, &variant).unwrap();
    assert!(estimate.auxiliary);
    assert_eq!(estimate.target_loss, 6.375);
    assert_eq!((estimate.baseline_evals, estimate.variant_evals), (9, 10));
    assert!((estimate.ceg - 0.9).abs() < 1e-15);
}

#[test]
fn paper_hand_case_baseline_reaching_its_target_early() {
    // A baseline whose smoothed curve dips and comes back: raw 5, 1, 5, 5, 5 (window
    // irrelevant at n = 5). Smoothed: 5, 3, 11/3, 4, 4.2. Target 4.2, first reached at i = 1
    // → s_baseline = 2. A variant 5, 5, 4, 4, 4 smooths to 5, 5, 14/3 = 4.667, 4.5, 4.4:
    // never ≤ 4.2 → auxiliary at its best 4.4 (i = 4, s = 5); baseline first ≤ 4.4 at i = 1
    // (s = 2) → 2 / 5 = 0.4.
    let estimate = paper_ceg(&[5.0, 1.0, 5.0, 5.0, 5.0], &[5.0, 5.0, 4.0, 4.0, 4.0]).unwrap();
    assert!(estimate.auxiliary);
    assert!((estimate.ceg - 0.4).abs() < 1e-15);
}

#[test]
fn paper_estimator_bias_on_clean_power_law() {
    // The claim: a true 2.0× with ~40 evals reads near 1.8. The trailing mean's
    // target sits ~3.5 evals before the baseline's end, and the variant's smoothed curve lags
    // 3.5 of its own evals, which are worth twice as much compute.
    let bias = paper_bias_reference(40, 2.0).unwrap();
    println!("paper bias at 2.0x, 40 evals: {bias:?}");
    assert!(!bias.auxiliary);
    assert!(
        bias.measured_ceg > 1.7 && bias.measured_ceg < 1.9,
        "{}",
        bias.measured_ceg
    );
    assert!(bias.relative_bias < -0.05, "the bias must pull toward 1");
    // More evals shrink the lag in compute terms: the bias must shrink too.
    let fine = paper_bias_reference(400, 2.0).unwrap();
    println!("paper bias at 2.0x, 400 evals: {fine:?}");
    assert!(fine.relative_bias.abs() < bias.relative_bias.abs());
    // A 0.5× variant never reaches the baseline's final loss: auxiliary, also pulled toward 1.
    let half = paper_bias_reference(40, 0.5).unwrap();
    println!("paper bias at 0.5x, 40 evals: {half:?}");
    assert!(half.auxiliary);
    assert!(
        half.measured_ceg > 0.5 && half.measured_ceg < 1.0,
        "{}",
        half.measured_ceg
    );
}
