//! The `report` kind on a fit of synthetic train nodes: content, links, charts, determinism and
//! its input contract.

mod ceg_support;

use ceg_support::{fit_input, ladder, params, run_kind};
use cegraph::stages::fit_ceg::FitCeg;
use cegraph::stages::report::{Report, output_names};
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
