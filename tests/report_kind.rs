//! The `report` kind on a fit of synthetic train nodes: content, links, charts, determinism and
//! its input contract.

mod ceg_support;

use ceg_support::{fit_input, ladder, params, run_kind};
use cegraph::stages::fit_ceg::FitCeg;
use cegraph::stages::report::{Report, output_names};
use std::collections::BTreeMap;

use serde_json::json;

fn fit(
    root: &std::path::Path,
    variants: &[(&str, f64)],
    seeds: u64,
) -> (Vec<cegraph::kind::Input>, cegraph::kind::Input) {
    let inputs = ladder(&root.join("train"), variants, seeds, 0.004);
    let p = params(json!({"bootstrap": 200, "combinations": {"combined": ["rope", "layernorm"]}}));
    let (r, outs, _) = run_kind(&FitCeg, "fit", &p, &inputs, &root.join("fit"));
    r.unwrap();
    (inputs, fit_input("fit", outs))
}

const VARIANTS: [(&str, f64); 6] = [
    ("baseline", 1.0),
    ("rope", 1.8),
    ("layernorm", 1.5),
    ("mqa", 0.6),
    ("flash", 1.0),
    ("combined", 2.7),
];

#[test]
fn full_report_has_verdicts_tables_links_and_charts() {
    let tmp = tempfile::tempdir().unwrap();
    let (trains, fit) = fit(tmp.path(), &VARIANTS[..], 3);
    let mut inputs = vec![fit.clone()];
    inputs.extend(trains.iter().cloned());
    let p = params(json!({"title": "Synthetic ladder"}));
    let (r, outs, log) = run_kind(&Report, "report", &p, &inputs, &tmp.path().join("a"));
    let outcome = r.unwrap();
    assert_eq!(outs.len(), output_names().len());
    let html = std::fs::read_to_string(&outs[0]).unwrap();
    let md = std::fs::read_to_string(&outs[1]).unwrap();

    // Verdicts: rope and layernorm beat the baseline, mqa is worse, flash is within noise
    // (identical maths: its intervals reach both sides of the tolerance band).
    assert!(
        html.contains("<strong>rope</strong> <strong>beats the baseline</strong> at every scale"),
        "{log}"
    );
    assert!(html.contains("<strong>layernorm</strong> <strong>beats the baseline</strong>"));
    assert!(html.contains("<strong>mqa</strong> <strong>is worse than the baseline</strong>"));
    assert!(
        html.contains("<strong>flash</strong> <strong>cannot be told from the baseline</strong>")
    );
    assert!(html.contains("noise floor"));
    assert_eq!(outcome.metrics["variants_beating_baseline"], json!(3)); // rope, layernorm, combined
    assert_eq!(outcome.metrics["variants_worse_than_baseline"], json!(1));
    assert_eq!(outcome.metrics["variants_within_noise"], json!(1));
    // A constant multiplier is compute-independent or at worst inconclusive: never dependent.
    assert_eq!(outcome.metrics["compute_dependent"], json!(0));

    // Paper layout: variants × scales with estimator columns; the paper's numbers and bias.
    assert!(html.contains("s1 · 1.00e15 FLOPs") && html.contains("s3 · 1.60e16 FLOPs"));
    for published in ["1.870", "1.350", "0.673", "3.483", "1.421"] {
        assert!(html.contains(published), "paper number {published} missing");
    }
    assert!(html.contains("The paper estimator&#39;s measured bias"));
    assert!(html.contains("paper estimator reads"));
    assert!(
        html.contains("Compute dependence") && html.contains("compute-independent")
            || html.contains("inconclusive")
    );
    assert!(html.contains("Combined vs product"));

    // Every CEG cell links to its provenance entry, which names the nodes.
    let anchor = "src-rope--s2";
    assert!(html.contains(&format!("href=\"#{anchor}\"")));
    let entry_start = html
        .find(&format!("<li id=\"{anchor}\">"))
        .expect("provenance entry");
    let entry = &html[entry_start..entry_start + html[entry_start..].find("</li>").unwrap()];
    assert!(
        entry.contains("train[scale=s2,variant=rope,seed=3]"),
        "{entry}"
    );
    assert!(
        entry.contains("train[scale=s2,variant=baseline,seed=1]"),
        "{entry}"
    );
    assert!(md.contains(&format!("<a id=\"{anchor}\"></a>")));
    assert!(md.contains(&format!("(#{anchor})")));

    // Self-contained HTML: charts inline as SVG, nothing fetched.
    assert_eq!(html.matches("<svg").count(), 3);
    assert!(!html.contains("src=\"http") && !html.contains("<script") && !html.contains("<link"));
    // Markdown references the chart files.
    for name in ["loss_vs_flops", "scaling_law", "ceg_vs_compute"] {
        assert!(md.contains(&format!("]({name}.svg)")) && md.contains(&format!("]({name}.png)")));
    }
    // Charts: real PNGs and SVGs with drawn content.
    for out in &outs[2..] {
        let bytes = std::fs::read(out).unwrap();
        if out.extension().unwrap() == "png" {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", out.display());
            assert!(bytes.len() > 10_000, "{} is nearly empty", out.display());
        } else {
            let svg = String::from_utf8(bytes).unwrap();
            assert!(
                svg.contains("<svg") && svg.contains("<polyline"),
                "{}",
                out.display()
            );
        }
    }
    let loss_svg = std::fs::read_to_string(&outs[3]).unwrap();
    assert!(loss_svg.contains("scale s1") && loss_svg.contains("rope (3 seeds)"));

    // CEGRAPH_KEEP_REPORT=DIR keeps the files (scripts/screenshot-report.sh looks at them).
    if let Ok(dir) = std::env::var("CEGRAPH_KEEP_REPORT") {
        std::fs::create_dir_all(&dir).unwrap();
        for out in &outs {
            std::fs::copy(
                out,
                std::path::Path::new(&dir).join(out.file_name().unwrap()),
            )
            .unwrap();
        }
    }

    // Identical inputs: identical bytes, every file.
    let (again, outs_b, _) = run_kind(&Report, "report", &p, &inputs, &tmp.path().join("b"));
    again.unwrap();
    for (a, b) in outs.iter().zip(&outs_b) {
        assert_eq!(
            std::fs::read(a).unwrap(),
            std::fs::read(b).unwrap(),
            "{}",
            a.display()
        );
    }
}

#[test]
fn without_curves_one_seed_and_other_headline() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, fit) = fit(tmp.path(), &VARIANTS[..3], 1);
    let p = params(json!({"headline": "scaling_law", "paper_reference": false}));
    let (r, outs, _) = run_kind(
        &Report,
        "report",
        &p,
        std::slice::from_ref(&fit),
        &tmp.path().join("a"),
    );
    r.unwrap();
    let html = std::fs::read_to_string(&outs[0]).unwrap();
    assert!(html.contains("Read from the <code>scaling_law</code> estimator"));
    assert!(html.contains("one seed: no interval"));
    assert!(html.contains("fewer than 3 paired seeds, so noise cannot be told from gain"));
    assert!(html.contains("curves were not given to the report"));
    assert!(!html.contains("Against the paper"));
    let loss_svg = std::fs::read_to_string(&outs[3]).unwrap();
    assert!(loss_svg.contains("No loss curves were given"));
}

#[test]
fn input_contract_is_enforced() {
    let tmp = tempfile::tempdir().unwrap();
    let (trains, fit) = fit(tmp.path(), &VARIANTS[..2], 1);
    let p = params(json!({}));
    // No fit node.
    let (r, _, _) = run_kind(&Report, "report", &p, &trains, &tmp.path().join("a"));
    assert!(r.unwrap_err().to_string().contains("needs a fit_ceg node"));
    // Two fit nodes.
    let mut second = fit.clone();
    second.node = "fit2".into();
    let (r, _, _) = run_kind(
        &Report,
        "report",
        &p,
        &[fit.clone(), second],
        &tmp.path().join("b"),
    );
    let e = r.unwrap_err().to_string();
    assert!(e.contains("one fit_ceg node") && e.contains("fit2"), "{e}");
    // A corrupt ceg.json names the node.
    let broken = tmp.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("ceg.json"), b"{\"rows\": 1}").unwrap();
    let (r, _, _) = run_kind(
        &Report,
        "report",
        &p,
        &[fit_input("fitx", vec![broken.join("ceg.json")])],
        &tmp.path().join("c"),
    );
    assert!(r.unwrap_err().to_string().contains("`fitx`"));
    // A curve that is not part of the fit is left out with a note.
    let stray = ceg_support::train_node(
        &tmp.path().join("stray"),
        "other",
        "rope",
        "s1",
        1e15,
        9,
        1.5,
        0.0,
    );
    let mut inputs = vec![fit];
    inputs.extend(trains);
    inputs.push(stray);
    let (r, outs, _) = run_kind(&Report, "report", &p, &inputs, &tmp.path().join("d"));
    r.unwrap();
    let html = std::fs::read_to_string(&outs[0]).unwrap();
    assert!(
        html.contains("other[scale=s1,variant=rope,seed=9]")
            && html.contains("was not part of the fit")
    );
    // Bad params are refused at load time.
    use cegraph::kind::StageKind;
    assert_eq!(
        Report
            .check_params(&params(json!({"headline": "median"})))
            .unwrap_err()
            .0,
        "headline"
    );
    assert_eq!(
        Report
            .check_params(&params(json!({"paper_reference": "yes"})))
            .unwrap_err()
            .0,
        "paper_reference"
    );
}

/// Numeric `<text>` labels of an SVG chart laid out as `cols` × `rows` equal panels, counted
/// per (panel, axis): x-axis labels are centred below the plot (dy 0.76em), y-axis labels
/// right-aligned (text-anchor end).
fn tick_labels_per_axis(svg: &str, cols: usize, rows: usize) -> BTreeMap<String, usize> {
    let attribute = |tag: &str, name: &str| -> Option<f64> {
        tag.split(&format!(" {name}=\""))
            .nth(1)?
            .split('"')
            .next()?
            .parse()
            .ok()
    };
    let (width, height) = {
        let tag = &svg[..svg.find('>').unwrap()];
        (
            attribute(tag, "width").unwrap(),
            attribute(tag, "height").unwrap(),
        )
    };
    let mut counts = BTreeMap::new();
    let mut rest = svg;
    while let Some(start) = rest.find("<text ") {
        let tag_end = start + rest[start..].find('>').unwrap();
        let close = tag_end + rest[tag_end..].find("</text>").unwrap();
        let (tag, content) = (&rest[start..tag_end], rest[tag_end + 1..close].trim());
        rest = &rest[close..];
        if content.parse::<f64>().is_err() {
            continue;
        }
        let (x, y) = (attribute(tag, "x").unwrap(), attribute(tag, "y").unwrap());
        let panel = format!(
            "panel ({}, {})",
            (x / (width / cols as f64)) as usize,
            (y / (height / rows as f64)) as usize
        );
        let axis = if tag.contains("text-anchor=\"end\"") {
            "y"
        } else if tag.contains("dy=\"0.76em\"") {
            "x"
        } else {
            continue;
        };
        *counts.entry(format!("{panel} {axis}-axis")).or_default() += 1;
    }
    counts
}

#[test]
fn every_chart_axis_has_at_least_three_labelled_ticks() {
    let tmp = tempfile::tempdir().unwrap();
    let (trains, fit) = fit(tmp.path(), &VARIANTS[..], 3);
    let mut inputs = vec![fit];
    inputs.extend(trains);
    let (r, outs, _) = run_kind(
        &Report,
        "report",
        &params(json!({})),
        &inputs,
        &tmp.path().join("a"),
    );
    r.unwrap();
    // (file, columns, rows, panels): loss 3 scales in 2 columns, scaling law 1, CEG 3 estimators.
    for (name, cols, rows, panels) in [
        ("loss_vs_flops.svg", 2, 2, 3),
        ("scaling_law.svg", 1, 1, 1),
        ("ceg_vs_compute.svg", 1, 3, 3),
    ] {
        let path = outs.iter().find(|p| p.ends_with(name)).unwrap();
        let svg = std::fs::read_to_string(path).unwrap();
        let counts = tick_labels_per_axis(&svg, cols, rows);
        println!("{name}: {counts:?}");
        assert_eq!(counts.len(), 2 * panels, "{name}: axes found {counts:?}");
        for (axis, count) in &counts {
            assert!(*count >= 3, "{name}: {axis} has {count} labelled ticks");
        }
    }
}

#[test]
fn flash_is_drawn_dashed_over_the_baseline() {
    let tmp = tempfile::tempdir().unwrap();
    let (trains, fit) = fit(tmp.path(), &VARIANTS[..], 3);
    let mut inputs = vec![fit];
    inputs.extend(trains);
    let (r, outs, _) = run_kind(
        &Report,
        "report",
        &params(json!({})),
        &inputs,
        &tmp.path().join("a"),
    );
    r.unwrap();
    let svg = std::fs::read_to_string(
        outs.iter()
            .find(|p| p.ends_with("loss_vs_flops.svg"))
            .unwrap(),
    )
    .unwrap();
    // Variants in table order: baseline, combined, flash, …: flash is colour 2.
    let flash = cegraph::report::charts::variant_colour_hex(2).to_uppercase();
    let dashes = svg
        .lines()
        .filter(|l| l.contains(&format!("stroke=\"{flash}\" stroke-width=\"3\"")))
        .count();
    assert!(dashes >= 3 * 20, "flash drawn with {dashes} dash segments");
    assert_eq!(
        svg.matches("flash (3 seeds), dashed: on the baseline")
            .count(),
        3
    );
    assert!(!svg.contains("rope (3 seeds), dashed"));
}

#[test]
fn report_names_no_internal_keys_and_caveats_sparse_attention() {
    let tmp = tempfile::tempdir().unwrap();
    let variants = [("baseline", 1.0), ("sparse", 0.8), ("rope", 1.8)];
    let (trains, fit) = fit(tmp.path(), &variants, 3);
    let mut inputs = vec![fit];
    inputs.extend(trains);
    let (r, outs, _) = run_kind(
        &Report,
        "report",
        &params(json!({})),
        &inputs,
        &tmp.path().join("a"),
    );
    r.unwrap();
    let html = std::fs::read_to_string(&outs[0]).unwrap();
    let md = std::fs::read_to_string(&outs[1]).unwrap();
    for text in [&html, &md] {
        assert!(!text.contains("paper_bias"), "an internal key name leaks");
        assert!(
            !text.contains("rough"),
            "the old 'interval is rough' caveat"
        );
    }
    let caveat = "local + strided, a different method from the paper";
    // In sparse's verdict, in the paper comparison's paragraph and its table row.
    assert!(
        html.matches(caveat).count() >= 3,
        "{}",
        html.matches(caveat).count()
    );
    assert!(md.contains(caveat));
    assert!(html.contains("Multiple comparisons:") && html.contains("Holm"));
    assert!(html.contains("20.0 tokens/param"));
}

#[test]
fn fewer_than_three_seeds_are_marked_indicative_in_each_cell() {
    let tmp = tempfile::tempdir().unwrap();
    let (trains, fit) = fit(tmp.path(), &VARIANTS[..3], 2);
    let mut inputs = vec![fit];
    inputs.extend(trains);
    let (r, outs, _) = run_kind(
        &Report,
        "report",
        &params(json!({})),
        &inputs,
        &tmp.path().join("a"),
    );
    let outcome = r.unwrap();
    let html = std::fs::read_to_string(&outs[0]).unwrap();
    // rope is 1.8× but with 2 seeds: no cell claims it beats the baseline.
    assert!(html.contains("indicative: 2 seeds, no interval"));
    assert!(html.contains("class=\"indicative\""));
    assert!(!html.contains("class=\"good\"") && !html.contains("class=\"bad\""));
    assert!(html.contains("<strong>rope</strong> has CEG"));
    assert!(html.contains("<strong>indicative only</strong>"));
    assert_eq!(outcome.metrics["variants_beating_baseline"], json!(0));
}

#[test]
fn flash_at_interpolation_noise_is_not_called_worse_in_the_report() {
    use cegraph::analysis::interval::Interval;
    use cegraph::analysis::paper::reference_law;
    use cegraph::analysis::synthetic::{SyntheticSpec, synthetic_curve};
    use cegraph::analysis::verdict::cell_verdict;
    use cegraph::analysis::{AnalysisOptions, Estimator, analyse};
    use cegraph::report::{CegDocument, ReportData, render};

    let mut curves = Vec::new();
    for seed in 1..=3 {
        for variant in ["baseline", "flash"] {
            let spec = SyntheticSpec {
                noise_sd: 1e-7,
                ..SyntheticSpec::clean(reference_law(), 1.0)
            };
            curves.push(synthetic_curve(variant, "s3", seed, &spec));
        }
    }
    let mut table = analyse(&curves, &AnalysisOptions::default()).unwrap();
    // smoke's numbers for this cell, with the verdict the analysis gives them.
    let tolerance = table.options.tolerance;
    let row = table
        .rows
        .iter_mut()
        .find(|r| r.variant == "flash" && r.estimator == Estimator::Crossing)
        .unwrap();
    row.ceg = Some(0.99999922);
    row.interval = Some(Interval {
        low: 0.99999911,
        high: 0.99999938,
        level: 0.95,
    });
    row.verdict = cell_verdict(row.ceg, row.interval, 3, tolerance);
    let document = CegDocument {
        table,
        inputs: Vec::new(),
    };
    let rendered = render(&ReportData {
        title: "flash",
        fit_node: "fit",
        document: &document,
        curves: &[],
        headline: Estimator::Crossing,
        paper_reference: false,
        notes: &[],
    })
    .unwrap();
    let sentence = &rendered.verdicts[0].sentence;
    assert!(
        sentence.contains("**no measurable difference**"),
        "{sentence}"
    );
    assert!(!sentence.contains("worse"), "{sentence}");
    // The cell is neutral, in every table it appears in.
    assert!(!rendered.html.contains("class=\"bad\""));
    assert!(rendered.html.contains("class=\"neutral\""));
    assert!(
        rendered
            .html
            .contains("[1.000, 1.000] no measurable difference")
    );
}

/// The report printed losses without saying how precisely the validation set measures them.
#[test]
fn report_shows_each_final_loss_with_its_evaluation_standard_error() {
    use cegraph::analysis::paper::reference_law;
    use cegraph::analysis::synthetic::{SyntheticSpec, synthetic_curve};
    use cegraph::analysis::{AnalysisOptions, Estimator, analyse};
    use cegraph::report::{CegDocument, ReportData, render};

    let mut curves = Vec::new();
    for seed in 1..=3 {
        for (variant, multiplier) in [("baseline", 1.0), ("rope", 1.5)] {
            let spec = SyntheticSpec {
                eval_se: 0.0042,
                run_efficiency_sd: 0.01,
                ..SyntheticSpec::clean(reference_law(), multiplier)
            };
            curves.push(synthetic_curve(variant, "s1", seed, &spec));
        }
    }
    let table = analyse(&curves, &AnalysisOptions::default()).unwrap();
    let rope = table
        .final_losses
        .iter()
        .find(|f| f.variant == "rope")
        .unwrap();
    let document = CegDocument {
        table: table.clone(),
        inputs: Vec::new(),
    };
    let rendered = render(&ReportData {
        title: "losses",
        fit_node: "fit",
        document: &document,
        curves: &[],
        headline: Estimator::Crossing,
        paper_reference: false,
        notes: &[],
    })
    .unwrap();
    assert!(rendered.markdown.contains("## Final validation losses"));
    let cell = format!("{:.4} ± 0.0042 (seed SD", rope.mean);
    assert!(
        rendered.markdown.contains(&cell),
        "{cell} not in the report"
    );
    assert!(rendered.html.contains(&cell));
}
