//! The `fit_ceg` kind run the way the engine runs it, on synthetic train nodes whose true CEG
//! is known (the baseline law with compute scaled by a factor).

mod ceg_support;

use ceg_support::{fit_input, ladder, params, run_kind, train_node};
use cegraph::analysis::table::Estimator;
use cegraph::report::CegDocument;
use cegraph::stages::fit_ceg::FitCeg;
use serde_json::json;

fn read_doc(path: &std::path::Path) -> CegDocument {
    CegDocument::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn recovers_known_multipliers_with_intervals_and_deterministic_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = ladder(
        tmp.path(),
        &[
            ("baseline", 1.0),
            ("fast", 2.0),
            ("slow", 0.5),
            ("flash", 1.0),
        ],
        3,
        0.004,
    );
    let p = params(json!({"bootstrap": 200, "combinations": {"fast": ["flash"]}}));
    let (result, outs, log) = run_kind(&FitCeg, "fit", &p, &inputs, &tmp.path().join("a"));
    let outcome = result.unwrap();
    assert!(log.contains("fit_ceg: 36 curves"), "{log}");
    let doc = read_doc(&outs[0]);
    let table = &doc.table;
    assert_eq!(table.variants, ["baseline", "fast", "flash", "slow"]);
    assert_eq!(
        table
            .scales
            .iter()
            .map(|s| s.scale.as_str())
            .collect::<Vec<_>>(),
        ["s1", "s2", "s3"]
    );
    for scale in ["s1", "s2", "s3"] {
        for (variant, truth) in [("fast", 2.0), ("slow", 0.5)] {
            for estimator in [Estimator::Crossing, Estimator::ScalingLaw] {
                let row = table.row(variant, scale, estimator).unwrap();
                let ceg = row
                    .ceg
                    .unwrap_or_else(|| panic!("{variant} {scale} {estimator:?}: {row:?}"));
                assert!(
                    (ceg / truth - 1.0).abs() < 0.08,
                    "{variant} at {scale} by {estimator:?}: {ceg}, truth {truth}"
                );
                let interval = row.interval.expect("3 seeds give an interval");
                assert!(interval.low <= ceg && ceg <= interval.high);
            }
        }
        // Identical maths (flash) is the noise floor: its interval must contain 1.
        let flash = table.row("flash", scale, Estimator::Crossing).unwrap();
        let i = flash.interval.unwrap();
        assert!(i.low <= 1.0 && 1.0 <= i.high, "flash at {scale}: {i:?}");
    }
    // Every curve is named by its node.
    assert_eq!(doc.inputs.len(), 36);
    assert!(
        doc.inputs
            .iter()
            .any(|s| s.node == "train[scale=s2,variant=fast,seed=3]"
                && s.variant == "fast"
                && s.scale == "s2"
                && s.seed == 3)
    );
    // Combined vs product is computed for the configured combination.
    assert!(!table.combined.is_empty());
    // Compute dependence is classified with three scales.
    assert!(table.compute_dependence.iter().any(|d| d.variant == "fast"));
    // Metrics: headline numbers at the largest scale.
    let m = &outcome.metrics;
    assert_eq!(m["curves"], json!(36));
    assert_eq!(m["scales"], json!(3));
    let fast = m["ceg.crossing.fast"].as_f64().unwrap();
    assert!((fast - 2.0).abs() < 0.16, "{fast}");
    // CSV has the analysis's header and one row per variant × scale × estimator.
    let csv = std::fs::read_to_string(&outs[1]).unwrap();
    assert!(csv.starts_with("variant,scale,estimator,ceg,ci_low,ci_high"));
    assert_eq!(csv.lines().count(), 1 + 4 * 3 * 3);

    // Same inputs elsewhere (other paths, reversed input order): the same bytes.
    let mut reversed = inputs.clone();
    reversed.reverse();
    let (again, outs_b, _) = run_kind(&FitCeg, "fit", &p, &reversed, &tmp.path().join("b"));
    again.unwrap();
    assert_eq!(
        std::fs::read(&outs[0]).unwrap(),
        std::fs::read(&outs_b[0]).unwrap()
    );
    assert_eq!(
        std::fs::read(&outs[1]).unwrap(),
        std::fs::read(&outs_b[1]).unwrap()
    );
    // The old bootstrap settings are noted as unused; `intervals: false` really turns the
    // intervals off.
    assert!(doc.table.notes.iter().any(|n| n.contains("no longer used")));
    let p2 = params(json!({"intervals": false, "combinations": {"fast": ["flash"]}}));
    let (r, outs_c, _) = run_kind(&FitCeg, "fit", &p2, &inputs, &tmp.path().join("c"));
    r.unwrap();
    let without = read_doc(&outs_c[0]);
    let row = without
        .table
        .row("fast", "s3", Estimator::Crossing)
        .unwrap();
    assert!(row.interval.is_none() && row.interval_note.as_deref().unwrap().contains("off"));
    let _ = fit_input; // used by the report tests
}

#[test]
fn estimator_subset_one_seed_and_missing_combination_components() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = ladder(tmp.path(), &[("baseline", 1.0), ("rope", 1.6)], 1, 0.0);
    let p = params(json!({
        "estimators": ["crossing"],
        "bootstrap": 50,
        "combinations": {"combined": ["flash", "rope", "layernorm"]},
    }));
    let (result, outs, _) = run_kind(&FitCeg, "fit", &p, &inputs, &tmp.path().join("o"));
    result.unwrap();
    let doc = read_doc(&outs[0]);
    assert!(
        doc.table
            .rows
            .iter()
            .all(|r| r.estimator == Estimator::Crossing)
    );
    assert!(
        doc.table
            .compute_dependence
            .iter()
            .all(|d| d.estimator == Estimator::Crossing)
    );
    let row = doc.table.row("rope", "s2", Estimator::Crossing).unwrap();
    assert!(row.interval.is_none());
    assert!(
        row.interval_note.as_deref().unwrap().contains("one seed"),
        "{row:?}"
    );
    assert!(
        doc.table
            .notes
            .iter()
            .any(|n| n.contains("combination `combined`") && n.contains("flash")),
        "{:?}",
        doc.table.notes
    );
}

#[test]
fn bad_inputs_fail_or_are_noted_with_clear_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let p = params(json!({"bootstrap": 0}));

    // No curve.json anywhere.
    let other = fit_input("tokenize", vec![root.join("meta.json")]);
    let (r, _, _) = run_kind(
        &FitCeg,
        "fit",
        &p,
        std::slice::from_ref(&other),
        &root.join("a"),
    );
    let e = r.unwrap_err().to_string();
    assert!(e.contains("no curve.json") && e.contains("deps"), "{e}");

    // No baseline.
    let only_rope = ladder(&root.join("r"), &[("rope", 1.5)], 1, 0.0);
    let (r, _, _) = run_kind(&FitCeg, "fit", &p, &only_rope, &root.join("b"));
    let e = r.unwrap_err().to_string();
    assert!(e.contains("baseline") && e.contains("rope"), "{e}");

    // Malformed curve.json names the node.
    let mut bad = ladder(&root.join("m"), &[("baseline", 1.0), ("rope", 1.5)], 1, 0.0);
    std::fs::write(
        bad[1]
            .outs
            .iter()
            .find(|p| p.ends_with("curve.json"))
            .unwrap(),
        b"{\"points\": 3}",
    )
    .unwrap();
    let node = bad[1].node.clone();
    let (r, _, _) = run_kind(&FitCeg, "fit", &p, &bad, &root.join("c"));
    let e = r.unwrap_err().to_string();
    assert!(e.contains(&node) && e.contains("not a train curve"), "{e}");

    // A variant at a scale without baseline is left out with a note; a non-train input too.
    bad = ladder(&root.join("n"), &[("baseline", 1.0), ("rope", 1.5)], 1, 0.0);
    bad.push(train_node(
        &root.join("n"),
        "train",
        "rope",
        "s9",
        1e17,
        1,
        1.5,
        0.0,
    ));
    bad.push(other.clone());
    let (r, outs, _) = run_kind(&FitCeg, "fit", &p, &bad, &root.join("d"));
    r.unwrap();
    let doc = read_doc(&outs[0]);
    assert!(doc.table.scales.iter().all(|s| s.scale != "s9"));
    assert!(
        doc.table
            .notes
            .iter()
            .any(|n| n.contains("s9") && n.contains("baseline has no run"))
    );
    assert!(doc.table.notes.iter().any(|n| n.contains("`tokenize`")));

    // Duplicate (variant, scale, seed) from two nodes.
    let mut dup = ladder(&root.join("u"), &[("baseline", 1.0)], 1, 0.0);
    let mut twin = dup[0].clone();
    twin.node = "other[x=1]".into();
    dup.push(twin);
    let (r, _, _) = run_kind(&FitCeg, "fit", &p, &dup, &root.join("e"));
    let e = r.unwrap_err().to_string();
    assert!(e.contains("other[x=1]") && e.contains("distinct"), "{e}");
}

#[test]
fn matrix_keys_and_fallbacks() {
    let tmp = tempfile::tempdir().unwrap();
    let mut inputs = ladder(tmp.path(), &[("baseline", 1.0), ("rope", 1.5)], 1, 0.0);
    // Matrices using other names: size/arch/rep, seeds as strings.
    for input in &mut inputs {
        for (k, v) in &mut input.matrix {
            *k = match k.as_str() {
                "scale" => "size".into(),
                "variant" => "arch".into(),
                _ => "rep".into(),
            };
            if k == "rep" {
                *v = json!(v.to_string());
            }
        }
    }
    let p = params(
        json!({"scale_key": "size", "variant_key": "arch", "seed_key": "rep", "bootstrap": 0}),
    );
    let (r, outs, _) = run_kind(&FitCeg, "fit", &p, &inputs, &tmp.path().join("a"));
    r.unwrap();
    let doc = read_doc(&outs[0]);
    assert_eq!(doc.table.scales.len(), 3);
    assert!(
        doc.table
            .row("rope", "s3", Estimator::Crossing)
            .unwrap()
            .ceg
            .is_some()
    );

    // Without matrix values: variant and seed from curve.json, one scale called `default`.
    let mut bare = ladder(
        &tmp.path().join("bare"),
        &[("baseline", 1.0), ("rope", 1.5)],
        1,
        0.0,
    );
    bare.retain(|i| i.node.contains("scale=s1"));
    for input in &mut bare {
        input.matrix.clear();
    }
    let (r, outs, _) = run_kind(
        &FitCeg,
        "fit",
        &params(json!({"bootstrap": 0})),
        &bare,
        &tmp.path().join("b"),
    );
    r.unwrap();
    let doc = read_doc(&outs[0]);
    assert_eq!(doc.table.scales[0].scale, "default");
    assert_eq!(doc.table.variants, ["baseline", "rope"]);
}

#[test]
fn params_are_checked_when_the_pipeline_loads() {
    use cegraph::kind::StageKind;
    let bad = [
        (json!({"estimators": ["paper", "magic"]}), "estimators"),
        (json!({"estimators": []}), "estimators"),
        (json!({"bootstrap": -1}), "bootstrap"),
        (
            json!({"combinations": {"combined": "rope"}}),
            "combinations",
        ),
        (json!({"max_extrapolation": 0.5}), "max_extrapolation"),
        (json!({"baselin": "x"}), "baselin"),
        (json!({"min_scales": 1}), "min_scales"),
        (json!({"tolerance": -0.1}), "tolerance"),
        (json!({"intervals": "yes"}), "intervals"),
        (json!({"max_budget_ratio": 0.5}), "max_budget_ratio"),
        (json!({"max_fit_rmse": 0}), "max_fit_rmse"),
    ];
    for (p, name) in bad {
        let e = FitCeg.check_params(&params(p.clone())).unwrap_err();
        assert_eq!(e.0, name, "{p}: {e:?}");
    }
    FitCeg
        .check_params(&params(json!({"estimators": ["crossing"], "bootstrap": 0})))
        .unwrap();
}
