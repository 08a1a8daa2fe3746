//! The page's sections, in order: introduction, verdict, CEG table, the paper, compute
//! dependence, combined vs product, charts, the scaling-law fit, notes, provenance.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::document::{CegDocument, ReportData};
use super::markup::{Block, anchor, ceg, flops, heading, interval_text};
use super::paper::PUBLISHED_BEST_LOSS;
use super::tables::{
    combined_table, dependence_table, final_loss_table, main_table, nodes_text, paper_tables,
    row_status,
};
use super::verdicts::{SPARSE_CAVEAT, Verdict, is_sparse};
use crate::analysis::table::{CegRow, EstimateDetail};
use crate::analysis::verdict::HolmSummary;
use crate::analysis::{CegTable, Estimator};

/// The page's blocks, in order.
pub(super) fn build(
    data: &ReportData<'_>,
    headline: Estimator,
    verdicts: &[Verdict],
) -> Vec<Block> {
    let doc = data.document;
    let table = &doc.table;
    let mut blocks = vec![heading(1, data.title, "top")];
    introduction(&mut blocks, data);
    verdict_section(&mut blocks, table, headline, verdicts);
    blocks.push(heading(2, "CEG table", "ceg-table"));
    blocks.push(Block::Para(format!(
        "Variants × scales, one column per estimator, as in the paper's table. Each cell: the CEG of the seed-mean curves and, below it, its 95% Student-t interval (standard error from the paired per-seed log CEGs); it links to the nodes it came from. Colours follow the verdict: green beats the baseline, red is worse (the interval clears 1 by more than the tolerance, |ln CEG| > {}), grey shows no measurable difference or is within noise, italic is indicative only (fewer than 3 paired seeds: no interval).",
        tolerance_text(table)
    )));
    blocks.push(Block::Table(main_table(doc)));
    if !table.final_losses.is_empty() {
        blocks.push(heading(2, "Final validation losses", "losses"));
        blocks.push(Block::Para(
            "Each run's validation loss at its last evaluation (nats/token), seed mean ± the evaluation's standard error over the validation windows (seed mean of the runs' SEs; windows treated as independent), and the standard deviation across seeds. The evaluation SE is what the validation set's finite size adds to every loss; the seed SD is what the analysis's intervals are built from.".into(),
        ));
        blocks.push(Block::Table(final_loss_table(table)));
    }
    if data.paper_reference {
        paper_section(&mut blocks, doc, headline);
    }
    dependence_section(&mut blocks, table);
    if !table.combined.is_empty() {
        blocks.push(heading(2, "Combined vs product of the parts", "combined"));
        blocks.push(Block::Para(
            "If the innovations' gains were independent, the combined variant's CEG would be the product of its components'. A ratio above 1: the parts help each other; below 1: they overlap. Intervals are Student-t over the paired seeds' log products and log ratios.".into(),
        ));
        blocks.push(Block::Table(combined_table(table)));
    }
    blocks.push(heading(2, "Charts", "charts"));
    for i in 0..3 {
        blocks.push(Block::Figure(i));
    }
    scaling_law_section(&mut blocks, table);
    let notes: Vec<(Option<String>, String)> = table
        .notes
        .iter()
        .chain(data.notes)
        .map(|n| (None, n.clone()))
        .collect();
    if !notes.is_empty() {
        blocks.push(heading(2, "Notes", "notes"));
        blocks.push(Block::List(notes));
    }
    provenance_section(&mut blocks, data);
    blocks
}

fn introduction(blocks: &mut Vec<Block>, data: &ReportData<'_>) {
    let doc = data.document;
    let table = &doc.table;

    let seeds: BTreeSet<usize> = table.rows.iter().map(|r| r.seeds.len()).collect();
    let seeds_text = match (seeds.iter().next(), seeds.iter().last()) {
        (Some(a), Some(b)) if a == b => format!("{a} seed(s) per cell"),
        (Some(a), Some(b)) => format!("{a} to {b} seeds per cell"),
        _ => "no seeds".into(),
    };
    blocks.push(Block::Para(format!(
        "Compute-equivalent gain (CEG) of {} variant(s) against the baseline `{}` at {} scale(s), {}, from {} curve(s), analysed by node [`{}`](#provenance). CEG = C_baseline / C_variant at equal validation loss: above 1 the variant reaches the same loss with less compute. Intervals are {:.0}% Student-t intervals around each cell's CEG, in log units, with the standard error of its paired per-seed log CEGs (n − 1 degrees of freedom); a cell with fewer than 3 paired seeds has none and is marked indicative.",
        table.variants.len().saturating_sub(1),
        table.baseline,
        table.scales.len(),
        seeds_text,
        doc.inputs.len(),
        data.fit_node,
        100.0 * table.confidence_level,
    )));
}

fn verdict_section(
    blocks: &mut Vec<Block>,
    table: &CegTable,
    headline: Estimator,
    verdicts: &[Verdict],
) {
    blocks.push(heading(2, "Verdict", "verdict"));
    let tolerance = table.options.tolerance;
    blocks.push(Block::Para(format!(
        "Read from the `{}` estimator{}. “Beats” / “worse”: the whole 95% interval lies above e^τ / below e^−τ, with τ = {} in ln compute (the configured tolerance τ = {tolerance}, {:.1}% of compute, is above the estimators' interpolation resolution of ~1e-6 and below any gain worth a sentence; a scale whose evaluation noise in ln compute is larger uses that instead); “no measurable difference”: the whole interval lies within that band; “within noise”: neither; “indicative”: fewer than 3 paired seeds, no claim.",
        headline.name(),
        match headline {
            Estimator::Crossing => " (lag-free monotone fit, interpolated crossing in FLOPs)",
            Estimator::ScalingLaw => {
                " (the baseline's fitted scaling law, anchored at each scale's baseline)"
            }
            Estimator::Paper => " (the authors' estimator, biased toward 1)",
        },
        tolerance_text(table),
        100.0 * (tolerance.exp() - 1.0)
    )));
    if verdicts.is_empty() {
        blocks.push(Block::Para(
            "No variant besides the baseline was analysed.".into(),
        ));
    } else {
        blocks.push(Block::List(
            verdicts
                .iter()
                .map(|v| (None, v.sentence.clone()))
                .collect(),
        ));
    }
    if let Some(summary) = table
        .multiple_comparisons
        .iter()
        .find(|m| m.estimator == headline.name())
    {
        blocks.push(Block::Para(holm_note(summary)));
    }
}

fn holm_note(summary: &HolmSummary) -> String {
    let mut text = format!(
        "Multiple comparisons: {} variant × scale cells were tested with `{}`; Holm's adjustment (family-wise 5%) keeps {} of the {} beats/worse calls.",
        summary.tested, summary.estimator, summary.claims_surviving, summary.claims
    );
    if !summary.not_surviving.is_empty() {
        let _ = write!(
            text,
            " Not surviving it, so read with care: {}.",
            summary.not_surviving.join(", ")
        );
    }
    text
}

fn paper_section(blocks: &mut Vec<Block>, doc: &CegDocument, headline: Estimator) {
    let table = &doc.table;
    let (comparison, bias) = paper_tables(doc, headline);
    blocks.push(heading(2, "Against the paper", "paper"));
    blocks.push(Block::Para(
        "The paper's published CEGs (Sanderson et al. 2025, one seed per run, their estimator, steps as compute) beside ours. Their compact and full configurations differ from our scales, so compare directions and orders of magnitude, not digits.".into(),
    ));
    if table.variants.iter().any(|v| is_sparse(v)) {
        blocks.push(Block::Para(format!("Sparse attention: {SPARSE_CAVEAT}.")));
    }
    blocks.push(Block::Table(comparison));
    let best: Vec<String> = PUBLISHED_BEST_LOSS
        .iter()
        .map(|(config, run, loss)| format!("{config} {run} {loss:.4}"))
        .collect();
    blocks.push(Block::Para(format!(
        "Their best smoothed validation losses (GPT-2 BPE on OpenWebText, nats/token): {}.",
        best.join(", ")
    )));
    blocks.push(heading(
        3,
        "The paper estimator's measured bias",
        "paper-bias",
    ));
    blocks.push(Block::Para(
        "The authors smooth with a trailing 8-point mean, which lags, and lags more in the faster run's units, so their CEG is pulled toward 1. Here it is measured on clean curves whose true CEG is known: a variant that is the baseline law with compute multiplied by 2. Their published numbers above are likely compressed toward 1 by a similar amount.".into(),
    ));
    blocks.push(Block::Table(bias));
}

fn dependence_section(blocks: &mut Vec<Block>, table: &CegTable) {
    blocks.push(heading(2, "Compute dependence", "dependence"));
    blocks.push(Block::Para(format!(
        "Per variant and estimator: ln CEG regressed on ln C across scales, read as an equivalence question with a margin of ±{m:.2} in ln CEG per e-fold of compute. Compute-dependent: the slope's interval lies wholly beyond the margin; compute-independent: wholly within it; otherwise inconclusive. At least {} scales are needed, and no verdict is given when the scales' tokens-per-parameter budgets differ by more than {}×.",
        table.options.dependence.min_scales,
        table.options.dependence.max_budget_ratio,
        m = table.options.dependence.equivalence_margin
    )));
    blocks.push(Block::Table(dependence_table(table)));
}

fn scaling_law_section(blocks: &mut Vec<Block>, table: &CegTable) {
    blocks.push(heading(2, "Scaling-law fit", "scaling-law"));
    let section = &table.scaling_law;
    if let Some(fit) = &section.fit {
        let law = fit.law;
        let mut quality = format!(
            "{} baseline eval points from compute {} to {} FLOPs; RMSE {:.4} (allowed {}), largest residual {:.4}, Huber threshold {:.4}; {} starting points for α",
            fit.points,
            flops(fit.fitted_min_compute),
            flops(fit.fitted_max_compute),
            fit.rmse,
            table.options.scaling_law.max_rmse,
            fit.max_abs_residual,
            fit.huber_delta,
            fit.starting_points,
        );
        if fit.irreducible_at_bound {
            quality.push_str("; **E sits at its bound 0**");
        }
        if fit.exponent_at_search_boundary {
            quality.push_str("; **α sits at the edge of its search range**");
        }
        blocks.push(Block::List(vec![
            (
                None,
                format!(
                    "L(C) = E + A·C^(−α) with E = {:.4}, A = {:.4e}, α = {:.4}",
                    law.irreducible, law.coefficient, law.exponent
                ),
            ),
            (None, quality),
            (
                None,
                format!(
                    "each variant is read relative to its own scale's baseline final loss; estimates needing baseline compute beyond ×{} outside the fitted range are refused",
                    table.options.scaling_law.max_extrapolation_factor
                ),
            ),
        ]));
    }
    match (&section.fit, &section.refusal) {
        (_, Some(refusal)) => blocks.push(Block::Para(format!(
            "**The `scaling_law` estimator is not used**: {refusal}."
        ))),
        (None, None) => blocks.push(Block::Para("No fit in ceg.json.".into())),
        (Some(_), None) => {}
    }
}

fn provenance_section(blocks: &mut Vec<Block>, data: &ReportData<'_>) {
    let doc = data.document;
    let table = &doc.table;
    blocks.push(heading(2, "Provenance", "provenance"));
    blocks.push(Block::Para(format!(
        "Every number above links to its entry here. ceg.json and ceg.csv were written by node `{}`. Nodes are named, not keyed: `cegraph show NODE` prints a node's key, inputs and metrics.",
        data.fit_node
    )));
    let mut items = Vec::new();
    for variant in &table.variants {
        for scale in &table.scales {
            let rows: Vec<&CegRow> = Estimator::ALL
                .into_iter()
                .filter_map(|e| table.row(variant, &scale.scale, e))
                .collect();
            if rows.is_empty() {
                continue;
            }
            let mut text = format!(
                "**{variant} @ {}**: curves from {}",
                scale.scale,
                nodes_text(&doc.nodes_for(variant, &scale.scale))
            );
            if *variant != table.baseline {
                let _ = write!(
                    text,
                    "; baseline {}",
                    nodes_text(&doc.nodes_for(&table.baseline, &scale.scale))
                );
                for row in rows {
                    let value = row.ceg.map_or("refused".into(), ceg);
                    let interval = interval_text(row)
                        .map(|i| format!(" {i}"))
                        .unwrap_or_default();
                    let status = row_status(row);
                    let extra = match &row.detail {
                        Some(EstimateDetail::Paper(p)) => format!(
                            "target loss {:.4}, eval index {} vs {}",
                            p.target_loss, p.baseline_evals, p.variant_evals
                        ),
                        Some(EstimateDetail::Crossing(c)) => format!(
                            "level {:.4}: baseline {} vs variant {} FLOPs",
                            c.level,
                            flops(c.baseline_compute),
                            flops(c.variant_compute)
                        ),
                        Some(EstimateDetail::ScalingLaw(s)) => format!(
                            "loss {:.4}: law needs {} vs variant {} FLOPs",
                            s.variant_loss,
                            flops(s.baseline_compute),
                            flops(s.variant_compute)
                        ),
                        _ => String::new(),
                    };
                    let details: Vec<&str> = [extra.as_str(), status.as_str()]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect();
                    let _ = write!(
                        text,
                        "; {} {value}{interval}{}",
                        row.estimator.name(),
                        if details.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", details.join("; "))
                        }
                    );
                }
            }
            items.push((Some(anchor(variant, &scale.scale)), text));
        }
    }
    blocks.push(Block::List(items));
}

/// The verdicts' tolerance: one number, or one per scale where evaluation noise raised it.
fn tolerance_text(table: &CegTable) -> String {
    let configured = table.options.tolerance;
    if table
        .scales
        .iter()
        .all(|s| s.verdict_tolerance <= configured)
    {
        return format!("{configured}");
    }
    table
        .scales
        .iter()
        .map(|s| match s.eval_noise_ln_ceg {
            Some(noise) if s.verdict_tolerance > configured => format!(
                "{:.3} at {} (its evaluation noise: SE {:.4} nats → {noise:.3} in ln compute)",
                s.verdict_tolerance,
                s.scale,
                s.baseline_eval_se.unwrap_or(f64::NAN)
            ),
            _ => format!("{} at {}", s.verdict_tolerance, s.scale),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
