//! `report`: the CEG analysis as a self-contained HTML page, a Markdown twin and charts.
//! Needs no libtorch.
//!
//! ```yaml
//! report:
//!   kind: report
//!   deps: [fit, train_s1, train_s2, train_s3]
//!   params: { title: "CEG on a CPU ladder", headline: crossing }
//! ```
//!
//! # Inputs (the contract)
//! * exactly one upstream node with an output named `ceg.json` (a `fit_ceg` node): every
//!   number in the report comes from it, and its `inputs` list names the node of every curve;
//! * optionally, the train nodes themselves (outputs named `curve.json`), for the
//!   loss-versus-FLOPs chart. They are matched to the fit's curves by node name, so variant,
//!   scale and seed are the fit's; a curve the fit did not use is left out with a note, and
//!   without any the chart says so. Other upstream nodes are ignored (noted).
//!
//! # Params (all optional)
//! `title` ("Compute-equivalent gain"), `headline` (the estimator the verdict is read from:
//! `crossing` default, `scaling_law`, `paper`), `paper_reference` (true: show the paper's
//! published CEGs and the paper estimator's measured bias).
//!
//! # Outputs (in this order)
//! `report.html` (self-contained: styles and charts inline as SVG), `report.md` (the same
//! content; charts referenced as the files below), then `loss_vs_flops.png`,
//! `loss_vs_flops.svg`, `scaling_law.png`, `scaling_law.svg`, `ceg_vs_compute.png`,
//! `ceg_vs_compute.svg`. All deterministic: identical inputs give identical bytes.
//!
//! # Metrics
//! `variants_beating_baseline`, `variants_worse_than_baseline`, `variants_within_noise`,
//! `compute_dependent`, `compute_independent`, `inconclusive` (counts, headline estimator).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::fit_ceg::{Keys, read_curve};
use super::util::{ParamError, check_known, fail, param_bool, param_string, write};
use crate::analysis::Estimator;
use crate::analysis::dependence::DependenceClass;
use crate::analysis::verdict::CellVerdict;
use crate::kind::{Input, OutputDecl, Params, StageContext, StageFailure, StageKind, StageOutcome};
use crate::report::charts::CHART_NAMES;
use crate::report::{CegDocument, CurveSource, Rendered, ReportData, render};

pub struct Report;

const KNOWN: &[&str] = &["title", "headline", "paper_reference"];

/// Output file names, in declaration order.
pub fn output_names() -> Vec<String> {
    let mut names = vec!["report.html".to_string(), "report.md".to_string()];
    for chart in CHART_NAMES {
        names.push(format!("{chart}.png"));
        names.push(format!("{chart}.svg"));
    }
    names
}

fn headline(params: &Params) -> Result<Estimator, ParamError> {
    let name = param_string(params, "headline", "crossing")?;
    Estimator::ALL
        .into_iter()
        .find(|e| e.name() == name)
        .ok_or_else(|| {
            (
                "headline".into(),
                format!("unknown estimator `{name}`; valid: crossing, scaling_law, paper"),
            )
        })
}

fn check(params: &Params) -> Result<(), ParamError> {
    check_known(params, KNOWN, "report")?;
    param_string(params, "title", "")?;
    param_bool(params, "paper_reference", true)?;
    headline(params)?;
    Ok(())
}

/// What a report is drawn from: the fit node's name, its document, the curves for the
/// charts (with their sources) and notes on what was left out.
pub type Gathered = (
    String,
    CegDocument,
    Vec<(CurveSource, crate::analysis::Curve)>,
    Vec<String>,
);

/// The fit node's document and the curves for the charts, with notes on what was left out.
pub fn gather(inputs: &[Input]) -> Result<Gathered, StageFailure> {
    let fits: Vec<(&Input, &std::path::PathBuf)> = inputs
        .iter()
        .filter_map(|i| {
            i.outs
                .iter()
                .find(|p| p.file_name().is_some_and(|n| n == "ceg.json"))
                .map(|p| (i, p))
        })
        .collect();
    let (fit_input, ceg_path) = match fits.as_slice() {
        [one] => *one,
        [] => {
            return Err(StageFailure::new(
                "report needs a fit_ceg node among its deps (an upstream output named ceg.json); \
                 none was found",
            ));
        }
        many => {
            return Err(StageFailure::new(format!(
                "report takes one fit_ceg node, got {}: {}; make one report per fit",
                many.len(),
                many.iter()
                    .map(|(i, _)| format!("`{}`", i.node))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    let text = std::fs::read_to_string(ceg_path).map_err(|e| {
        StageFailure::new(format!(
            "cannot read ceg.json of `{}` ({}): {e}",
            fit_input.node,
            ceg_path.display()
        ))
    })?;
    let document = CegDocument::from_json(&text)
        .map_err(|e| StageFailure::new(format!("`{}`: {e}", fit_input.node)))?;
    let by_node: BTreeMap<&str, &CurveSource> = document
        .inputs
        .iter()
        .map(|s| (s.node.as_str(), s))
        .collect();
    // Keys only matter for reading; the fit's own labels replace them below.
    let keys = Keys {
        variant: "variant".into(),
        scale: "scale".into(),
        seed: "seed".into(),
    };
    let mut notes = Vec::new();
    let mut curves = Vec::new();
    for input in inputs {
        if std::ptr::eq(input, fit_input) {
            continue;
        }
        let has_curve = input
            .outs
            .iter()
            .any(|p| p.file_name().is_some_and(|n| n == "curve.json"));
        if !has_curve {
            notes.push(format!(
                "upstream node `{}` has neither ceg.json nor curve.json: ignored",
                input.node
            ));
            continue;
        }
        let Some(source) = by_node.get(input.node.as_str()) else {
            notes.push(format!(
                "curve of `{}` was not part of the fit `{}`: left out of the charts",
                input.node, fit_input.node
            ));
            continue;
        };
        match read_curve(input, &keys) {
            Ok(Some((_, mut curve))) => {
                curve.variant = source.variant.clone();
                curve.scale = source.scale.clone();
                curve.seed = source.seed;
                curves.push(((*source).clone(), curve));
            }
            Ok(None) => {}
            Err(e) => notes.push(format!(
                "curve of `{}` left out of the charts: {e}",
                input.node
            )),
        }
    }
    if !document.inputs.is_empty() && curves.len() < document.inputs.len() {
        let missing = document.inputs.len() - curves.len();
        notes.push(format!(
            "{missing} of the fit's {} curves were not given to the report (add the train \
             stages to its deps to draw them)",
            document.inputs.len()
        ));
    }
    curves.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((fit_input.node.clone(), document, curves, notes))
}

fn metrics(rendered: &Rendered) -> BTreeMap<String, Value> {
    let count_call = |wanted: &[CellVerdict]| {
        rendered
            .verdicts
            .iter()
            .filter(|v| !v.calls.is_empty() && v.calls.iter().all(|(_, c, _)| wanted.contains(c)))
            .count()
    };
    let count_class = |class: DependenceClass| {
        rendered
            .verdicts
            .iter()
            .filter(|v| v.dependence == Some(class))
            .count()
    };
    let mut m = BTreeMap::new();
    m.insert(
        "variants_beating_baseline".into(),
        json!(count_call(&[CellVerdict::Beats])),
    );
    m.insert(
        "variants_worse_than_baseline".into(),
        json!(count_call(&[CellVerdict::Worse])),
    );
    m.insert(
        "variants_within_noise".into(),
        json!(count_call(&[
            CellVerdict::NoMeasurableDifference,
            CellVerdict::WithinNoise
        ])),
    );
    m.insert(
        "compute_dependent".into(),
        json!(count_class(DependenceClass::ComputeDependent)),
    );
    m.insert(
        "compute_independent".into(),
        json!(count_class(DependenceClass::ComputeIndependent)),
    );
    m.insert(
        "inconclusive".into(),
        json!(count_class(DependenceClass::Inconclusive)),
    );
    m
}

impl StageKind for Report {
    fn name(&self) -> &'static str {
        "report"
    }

    fn fingerprint(&self) -> [u8; 32] {
        crate::kind::fingerprints::REPORT
    }

    fn check_params(&self, params: &Params) -> Result<(), (String, String)> {
        check(params)
    }

    fn outputs(&self, _params: &Params, out_dir: &str) -> Vec<OutputDecl> {
        let names = output_names();
        crate::kind::files_in(
            out_dir,
            &names.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    }

    fn run(&self, ctx: &mut StageContext<'_>) -> Result<StageOutcome, StageFailure> {
        check(ctx.params).map_err(fail)?;
        let title = param_string(ctx.params, "title", "Compute-equivalent gain").map_err(fail)?;
        let headline = headline(ctx.params).map_err(fail)?;
        let paper_reference = param_bool(ctx.params, "paper_reference", true).map_err(fail)?;
        let (fit_node, document, curves, notes) = gather(ctx.inputs)?;
        for note in &notes {
            let _ = writeln!(ctx.log, "note: {note}");
        }
        let rendered = render(&ReportData {
            title: &title,
            fit_node: &fit_node,
            document: &document,
            curves: &curves,
            headline,
            paper_reference,
            notes: &notes,
        })
        .map_err(|e| StageFailure::new(e.to_string()))?;
        let names = output_names();
        if ctx.outs.len() != names.len() {
            return Err(StageFailure::new(format!(
                "the engine passed {} output paths, report declares {}",
                ctx.outs.len(),
                names.len()
            )));
        }
        write(&ctx.outs[0], &rendered.html)?;
        write(&ctx.outs[1], &rendered.markdown)?;
        for (i, chart) in rendered.charts.iter().enumerate() {
            write(&ctx.outs[2 + 2 * i], &chart.png)?;
            write(&ctx.outs[3 + 2 * i], &chart.svg)?;
        }
        let _ = writeln!(
            ctx.log,
            "report: {} variants, {} scales, {} curves drawn; verdict from `{}`",
            document.table.variants.len(),
            document.table.scales.len(),
            curves.len(),
            headline.name()
        );
        for v in &rendered.verdicts {
            let _ = writeln!(ctx.log, "verdict: {}", v.sentence);
        }
        Ok(StageOutcome {
            metrics: metrics(&rendered),
        })
    }
}
