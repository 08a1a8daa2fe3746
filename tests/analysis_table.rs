//! The whole analysis: seeds and intervals on noisy synthetic curves, compute-dependence
//! classification, combined-versus-product, ceg.json / ceg.csv, and typed errors on bad input.

use std::collections::BTreeMap;

use cegraph::analysis::dependence::{
    DependenceClass, DependenceOptions, DependencePoint, SlopeIntervalMethod,
    classify_compute_dependence,
};
use cegraph::analysis::interval::LogEstimate;
use cegraph::analysis::paper::reference_law;
use cegraph::analysis::synthetic::{SyntheticSpec, synthetic_curve};
use cegraph::analysis::{
    AnalysisError, AnalysisOptions, CegTable, Curve, Estimator, analyse, combined_vs_product,
};

const SCALES: [(&str, f64); 3] = [("small", 1e16), ("medium", 1e17), ("large", 1e18)];

/// Runs of `variant` at every scale: `multiplier(scale index)` is its true CEG there.
fn runs(
    variant: &str,
    seeds: &[u64],
    noise_sd: f64,
    multiplier: impl Fn(usize) -> f64,
) -> Vec<Curve> {
    let mut curves = Vec::new();
    for (i, (scale, final_flops)) in SCALES.iter().enumerate() {
        for &seed in seeds {
            let spec = SyntheticSpec {
                final_flops: *final_flops,
                noise_sd,
                ..SyntheticSpec::clean(reference_law(), multiplier(i))
            };
            curves.push(synthetic_curve(variant, scale, seed, &spec));
        }
    }
    curves
}

fn options() -> AnalysisOptions {
    AnalysisOptions::default()
}

fn ceg(table: &CegTable, variant: &str, scale: &str, estimator: Estimator) -> f64 {
    table
        .row(variant, scale, estimator)
        .and_then(|r| r.ceg)
        .unwrap_or_else(|| {
            panic!(
                "no {variant}/{scale}/{estimator:?}: {:?}",
                table.row(variant, scale, estimator)
            )
        })
}

#[test]
fn noisy_seeds_intervals_contain_the_truth() {
    let seeds = [1, 2, 3, 4, 5];
    let noise = 0.01;
    let mut curves = runs("baseline", &seeds, noise, |_| 1.0);
    curves.extend(runs("double", &seeds, noise, |_| 2.0));
    curves.extend(runs("half", &seeds, noise, |_| 0.5));
    curves.extend(runs("same", &seeds, noise, |_| 1.0));
    let start = std::time::Instant::now();
    let table = analyse(&curves, &options()).unwrap();
    println!("analyse took {:?}", start.elapsed());
    let fit = table.scaling_law.fit.as_ref().unwrap();
    println!(
        "fit {:?} rmse {:.4} delta {:.4}",
        fit.law, fit.rmse, fit.huber_delta
    );
    let mut misses = Vec::new();
    for (variant, truth) in [("double", 2.0), ("half", 0.5), ("same", 1.0)] {
        for (scale, _) in SCALES {
            for estimator in [Estimator::Crossing, Estimator::ScalingLaw] {
                let row = table.row(variant, scale, estimator).unwrap();
                println!(
                    "{variant:>6} {scale:>6} {:>11}: {:?} {:?} {:?}",
                    estimator.name(),
                    row.ceg,
                    row.interval,
                    row.verdict
                );
                match (row.ceg, row.interval) {
                    (Some(point), Some(interval)) => {
                        assert!(
                            (point / truth - 1.0).abs() < 0.08,
                            "{variant} {scale} {estimator:?}: {point}"
                        );
                        if !interval.contains(truth) {
                            misses.push(format!("{variant} {scale} {estimator:?} {interval:?}"));
                        }
                    }
                    other => panic!(
                        "{variant} {scale} {estimator:?}: missing estimate or interval {other:?}: {row:?}"
                    ),
                }
            }
        }
    }
    // 18 nominal-95% Student-t intervals from 5 paired seeds: allow two misses, not more.
    assert!(
        misses.len() <= 2,
        "intervals missing the truth: {misses:#?}"
    );
}

#[test]
fn one_seed_gives_no_interval_and_says_so() {
    let mut curves = runs("baseline", &[7], 0.0, |_| 1.0);
    curves.extend(runs("double", &[7], 0.0, |_| 2.0));
    let table = analyse(&curves, &options()).unwrap();
    for (scale, _) in SCALES {
        for estimator in Estimator::ALL {
            let row = table.row("double", scale, estimator).unwrap();
            assert!(row.interval.is_none());
            assert!(
                row.interval_note.as_deref().unwrap().contains("one seed"),
                "{row:?}"
            );
        }
        // Clean curves: crossing and scaling_law exact, paper biased toward 1 (40/22).
        assert!((ceg(&table, "double", scale, Estimator::Crossing) / 2.0 - 1.0).abs() < 1e-3);
        assert!((ceg(&table, "double", scale, Estimator::ScalingLaw) / 2.0 - 1.0).abs() < 1e-3);
        assert!((ceg(&table, "double", scale, Estimator::Paper) - 40.0 / 22.0).abs() < 1e-12);
        assert_eq!(ceg(&table, "baseline", scale, Estimator::Paper), 1.0);
        let summary = table.scales.iter().find(|s| s.scale == scale).unwrap();
        let bias = summary.paper_bias_at_2x.as_ref().unwrap();
        assert!(
            bias.relative_bias < -0.05 && bias.relative_bias > -0.15,
            "{bias:?}"
        );
    }
    // Scales come out ordered by compute.
    let order: Vec<&str> = table.scales.iter().map(|s| s.scale.as_str()).collect();
    assert_eq!(order, ["small", "medium", "large"]);
}

#[test]
fn ceg_json_round_trips_and_csv_has_one_row_per_estimate() {
    let mut curves = runs("baseline", &[1, 2], 0.005, |_| 1.0);
    curves.extend(runs("rope, v2", &[1, 2], 0.005, |_| 1.5));
    let table = analyse(&curves, &options()).unwrap();
    let json = table.to_json_pretty().unwrap();
    let back = CegTable::from_json(&json).unwrap();
    assert_eq!(back.rows.len(), table.rows.len());
    // serde_json may round a float's last bit on the way back: compare to 1e-12.
    let (law, back_law) = (
        table.scaling_law.fit.as_ref().unwrap().law,
        back.scaling_law.fit.as_ref().unwrap().law,
    );
    assert!((law.exponent / back_law.exponent - 1.0).abs() < 1e-12);
    assert!((law.irreducible / back_law.irreducible - 1.0).abs() < 1e-12);
    assert_eq!(
        back.row("rope, v2", "large", Estimator::Crossing)
            .unwrap()
            .ceg,
        table
            .row("rope, v2", "large", Estimator::Crossing)
            .unwrap()
            .ceg
    );
    // Two seeds: per-seed CEGs are kept, but no interval (indicative only).
    for (a, b) in table.rows.iter().zip(&back.rows) {
        assert_eq!(a.per_seed.len(), b.per_seed.len());
        assert_eq!(a.verdict, b.verdict);
    }
    let row = table.row("rope, v2", "large", Estimator::Crossing).unwrap();
    assert_eq!(row.per_seed.len(), 2);
    assert!(row.interval.is_none(), "{row:?}");

    let csv = table.to_csv();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("variant,scale,estimator,ceg,ci_low,ci_high"));
    assert_eq!(lines.len(), 1 + 2 * SCALES.len() * Estimator::ALL.len());
    // The comma in the variant name is quoted.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("\"rope, v2\",large,scaling_law,"))
    );

    let dir = tempfile::tempdir().unwrap();
    table.write_json(&dir.path().join("ceg.json")).unwrap();
    table.write_csv(&dir.path().join("ceg.csv")).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ceg.csv")).unwrap(),
        csv
    );
    let missing = dir.path().join("no/such/dir/ceg.csv");
    assert!(matches!(
        table.write_csv(&missing),
        Err(AnalysisError::Io { .. })
    ));
}

#[test]
fn combined_variant_beside_product_of_components() {
    let seeds = [1, 2, 3];
    let noise = 0.003;
    let mut curves = runs("baseline", &seeds, noise, |_| 1.0);
    curves.extend(runs("a", &seeds, noise, |_| 1.5));
    curves.extend(runs("b", &seeds, noise, |_| 2.0));
    curves.extend(runs("ab", &seeds, noise, |_| 3.0)); // the parts multiply
    curves.extend(runs("ab_overlap", &seeds, noise, |_| 2.1)); // the parts overlap
    let mut opts = options();
    opts.combinations =
        BTreeMap::from([("ab".to_string(), vec!["a".to_string(), "b".to_string()])]);
    let table = analyse(&curves, &opts).unwrap();
    assert_eq!(table.combined.len(), SCALES.len() * Estimator::ALL.len());
    for comparison in table
        .combined
        .iter()
        .filter(|c| c.estimator == Estimator::Crossing)
    {
        println!("{comparison:?}");
        let product = comparison.product.unwrap();
        assert!((product / 3.0 - 1.0).abs() < 0.1, "{comparison:?}");
        assert!(
            comparison.ratio_interval.unwrap().contains(1.0),
            "{comparison:?}"
        );
    }
    let overlap = combined_vs_product(&table, "ab_overlap", &["a", "b"]).unwrap();
    for comparison in overlap.iter().filter(|c| c.estimator != Estimator::Paper) {
        let ratio_interval = comparison.ratio_interval.unwrap();
        assert!(
            ratio_interval.high < 1.0,
            "2.1 vs 1.5 × 2.0 must read as overlap: {comparison:?}"
        );
    }
    assert!(matches!(
        combined_vs_product(&table, "ab", &["a", "nope"]),
        Err(AnalysisError::UnknownVariant { ref variant, .. }) if variant == "nope"
    ));
}

#[test]
fn compute_dependence_end_to_end() {
    let seeds = [1, 2, 3, 4];
    let noise = 0.005;
    let mut curves = runs("baseline", &seeds, noise, |_| 1.0);
    // Gain 1.5, 2, 2.67 at 1e16, 1e17, 1e18: slope ln(4/3)/ln(10) = 0.125 per e-fold.
    curves.extend(runs("grows", &seeds, noise, |i| {
        1.5 * (4.0f64 / 3.0).powi(i as i32)
    }));
    curves.extend(runs("flat", &seeds, noise, |_| 2.0));
    let table = analyse(&curves, &options()).unwrap();
    let entry = |variant: &str, estimator| {
        table
            .compute_dependence
            .iter()
            .find(|e| e.variant == variant && e.estimator == estimator)
            .unwrap()
    };
    for estimator in [Estimator::Crossing, Estimator::ScalingLaw] {
        let grows = entry("grows", estimator);
        let flat = entry("flat", estimator);
        println!("{grows:?}\n{flat:?}");
        assert_eq!(
            grows.result.class,
            DependenceClass::ComputeDependent,
            "{grows:?}"
        );
        assert!((grows.result.slope.unwrap() - 0.1249).abs() < 0.03);
        assert_eq!(
            grows.result.interval_method,
            Some(SlopeIntervalMethod::Seeds)
        );
        assert_eq!(
            flat.result.class,
            DependenceClass::ComputeIndependent,
            "{flat:?}"
        );
    }
}

fn point(scale: &str, compute: f64, ceg: f64, standard_error: Option<f64>) -> DependencePoint {
    // A cell's per-seed summary as 5 paired seeds would give it.
    DependencePoint {
        scale: scale.into(),
        compute,
        ceg,
        log_estimate: standard_error.map(|standard_error| LogEstimate {
            mean: ceg.ln(),
            standard_error,
            degrees_of_freedom: 4.0,
        }),
        tokens_per_param: None,
    }
}

#[test]
fn compute_dependence_classification_rules() {
    let opts = DependenceOptions::default();
    let growing = [
        point("a", 1e15, 1.2, Some(0.01)),
        point("bb", 1e16, 1.6, Some(0.01)),
        point("ccc", 1e17, 2.1, Some(0.01)),
    ];
    let result = classify_compute_dependence(&growing, &opts);
    assert_eq!(
        result.class,
        DependenceClass::ComputeDependent,
        "{result:?}"
    );
    assert!(result.reason.contains("grows"));

    let shrinking = [
        point("a", 1e15, 1.9, Some(0.01)),
        point("bb", 1e16, 1.4, Some(0.01)),
        point("ccc", 1e17, 1.1, Some(0.01)),
    ];
    let result = classify_compute_dependence(&shrinking, &opts);
    assert_eq!(result.class, DependenceClass::ComputeDependent);
    assert!(result.reason.contains("shrinks"));

    let flat = [
        point("a", 1e15, 1.50, Some(0.01)),
        point("bb", 1e16, 1.52, Some(0.01)),
        point("ccc", 1e17, 1.49, Some(0.01)),
    ];
    let result = classify_compute_dependence(&flat, &opts);
    assert_eq!(
        result.class,
        DependenceClass::ComputeIndependent,
        "{result:?}"
    );

    // Flat point estimates but very noisy seeds: cannot tell.
    let noisy = [
        point("a", 1e15, 1.50, Some(0.3)),
        point("bb", 1e16, 1.52, Some(0.3)),
        point("ccc", 1e17, 1.49, Some(0.3)),
    ];
    let result = classify_compute_dependence(&noisy, &opts);
    assert_eq!(result.class, DependenceClass::Inconclusive, "{result:?}");

    // One seed everywhere: the OLS t-interval with 1 degree of freedom, wide unless the
    // points lie on the line.
    let scattered = [
        point("a", 1e15, 1.2, None),
        point("bb", 1e16, 1.9, None),
        point("ccc", 1e17, 1.5, None),
    ];
    let result = classify_compute_dependence(&scattered, &opts);
    assert_eq!(result.interval_method, Some(SlopeIntervalMethod::OlsT));
    assert_eq!(result.class, DependenceClass::Inconclusive, "{result:?}");

    let two_scales = [point("a", 1e15, 1.2, None), point("ccc", 1e17, 2.1, None)];
    assert_eq!(
        classify_compute_dependence(&two_scales, &opts).class,
        DependenceClass::InsufficientScales
    );
}

// --- bad input: typed errors, never a panic ---

fn small_valid() -> Vec<Curve> {
    let mut curves = runs("baseline", &[1], 0.0, |_| 1.0);
    curves.extend(runs("rope", &[1], 0.0, |_| 1.5));
    curves
}

#[test]
fn no_curves_is_an_error() {
    let error = analyse(&[], &options()).unwrap_err();
    assert!(matches!(error, AnalysisError::NoCurves));
    assert!(error.to_string().contains("nothing to analyse"));
}

#[test]
fn empty_curve_is_an_error() {
    let mut curves = small_valid();
    curves[3].points.clear();
    let error = analyse(&curves, &options()).unwrap_err();
    assert!(matches!(error, AnalysisError::EmptyCurve { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("variant=rope scale=small seed=1 has no eval points"),
        "{error}"
    );
}

#[test]
fn nan_loss_is_an_error() {
    let mut curves = small_valid();
    curves[0].points[5].val_loss = f64::NAN;
    let error = analyse(&curves, &options()).unwrap_err();
    assert!(
        matches!(
            error,
            AnalysisError::NonFiniteValue {
                index: 5,
                field: "val_loss",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("non-finite val_loss"));
}

#[test]
fn steps_going_backwards_is_an_error() {
    let mut curves = small_valid();
    curves[0].points[3].step = 1;
    let error = analyse(&curves, &options()).unwrap_err();
    assert!(
        matches!(
            error,
            AnalysisError::NotIncreasing {
                field: "step",
                index: 3,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn missing_baseline_is_an_error() {
    let curves: Vec<Curve> = small_valid()
        .into_iter()
        .filter(|c| c.variant != "baseline")
        .collect();
    let error = analyse(&curves, &options()).unwrap_err();
    assert!(matches!(error, AnalysisError::MissingBaseline { .. }));
    assert!(
        error
            .to_string()
            .contains("no curves for the baseline variant `baseline` (variants present: rope)"),
        "{error}"
    );
}

#[test]
fn variant_scale_without_baseline_is_an_error() {
    let mut curves = small_valid();
    curves.push(Curve {
        scale: "huge".into(),
        ..curves[4].clone()
    });
    let error = analyse(&curves, &options()).unwrap_err();
    assert!(
        matches!(error, AnalysisError::ScaleWithoutBaseline { ref scale, .. } if scale == "huge"),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("baseline scales: large, medium, small"),
        "{error}"
    );
}

#[test]
fn misaligned_seeds_are_an_error() {
    let mut curves = small_valid();
    let mut second_seed = curves[0].clone();
    second_seed.seed = 2;
    second_seed.points.pop();
    curves.push(second_seed);
    let error = analyse(&curves, &options()).unwrap_err();
    assert!(
        matches!(
            error,
            AnalysisError::MisalignedSeeds {
                len_a: 40,
                len_b: 39,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn duplicate_run_and_unknown_combination_are_errors() {
    let mut curves = small_valid();
    curves.push(curves[0].clone());
    assert!(matches!(
        analyse(&curves, &options()),
        Err(AnalysisError::DuplicateRun { .. })
    ));

    let mut opts = options();
    opts.combinations = BTreeMap::from([("combined".to_string(), vec!["rope".to_string()])]);
    let error = analyse(&small_valid(), &opts).unwrap_err();
    assert!(
        matches!(error, AnalysisError::UnknownVariant { ref variant, .. } if variant == "combined")
    );
}

#[test]
fn refusals_are_recorded_not_fatal() {
    // A variant 100× better: it starts below the baseline's final loss (crossing before the
    // data) and needs a 100× extrapolation of the baseline law: both refused with reasons,
    // while the table is still produced.
    let mut curves = small_valid();
    curves.extend(runs("leap", &[1], 0.0, |_| 100.0));
    let table = analyse(&curves, &options()).unwrap();
    let crossing = table.row("leap", "large", Estimator::Crossing).unwrap();
    assert!(crossing.ceg.is_none());
    assert!(
        crossing
            .refusal
            .as_ref()
            .unwrap()
            .to_string()
            .contains("before the data"),
        "{crossing:?}"
    );
    let scaling = table.row("leap", "large", Estimator::ScalingLaw).unwrap();
    assert!(
        scaling
            .refusal
            .as_ref()
            .unwrap()
            .to_string()
            .contains("outside the fitted range"),
        "{scaling:?}"
    );
    assert!(table.to_csv().contains("refused"));
}

#[test]
fn curve_json_files_are_read_and_validated() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("curve.json");
    let curve = small_valid().remove(0);
    std::fs::write(&good, serde_json::to_string(&curve).unwrap()).unwrap();
    // serde_json (without its float_roundtrip feature) may move a float's last bit.
    let back = Curve::read_json(&good).unwrap();
    assert_eq!(back.points.len(), curve.points.len());
    for (a, b) in back.points.iter().zip(&curve.points) {
        assert_eq!(a.step, b.step);
        assert!((a.val_loss - b.val_loss).abs() <= 1e-14 * b.val_loss);
    }

    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"variant": "baseline", "scale": "s", "seed": 0, "points": []}"#,
    )
    .unwrap();
    let error = Curve::read_json(&bad).unwrap_err();
    assert!(matches!(error, AnalysisError::ReadCurve { .. }), "{error}");
    assert!(error.to_string().contains("flops_per_token"), "{error}");

    let empty = dir.path().join("empty.json");
    std::fs::write(
        &empty,
        r#"{"variant": "baseline", "scale": "s", "seed": 0, "flops_per_token": 1e9, "points": []}"#,
    )
    .unwrap();
    assert!(matches!(
        Curve::read_json(&empty),
        Err(AnalysisError::EmptyCurve { .. })
    ));
    assert!(matches!(
        Curve::read_json(&dir.path().join("missing.json")),
        Err(AnalysisError::ReadCurve { .. })
    ));
}
