//! The report's tables: the CEG table, the comparison with the paper, the paper estimator's
//! measured bias, compute dependence, combined-versus-product and the final losses. Cell colours come from each
//! row's [`CellVerdict`].

use super::charts::variant_colour_hex;
use super::document::{CegDocument, CurveSource};
use super::markup::{Cell, Table, anchor, ceg, flops, interval_text};
use super::paper::{PUBLISHED, PublishedCeg, published_for};
use super::verdicts::{class_text, is_sparse, per_decade, verdict_class};
use crate::analysis::dependence::{DependenceClass, SlopeIntervalMethod};
use crate::analysis::eval_noise::FinalLoss;
use crate::analysis::table::CegRow;
use crate::analysis::verdict::CellVerdict;
use crate::analysis::{CegTable, Estimator};

pub(super) fn nodes_text(nodes: &[&CurveSource]) -> String {
    if nodes.is_empty() {
        return "(no node recorded)".into();
    }
    nodes
        .iter()
        .map(|n| format!("`{}`", n.node))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn row_status(row: &CegRow) -> String {
    if let Some(refusal) = &row.refusal {
        return format!("refused: {refusal}");
    }
    let mut parts = Vec::new();
    if row.auxiliary {
        parts.push(
            "the paper's auxiliary CEG: the variant never reached the baseline's final loss"
                .to_string(),
        );
    }
    if let Some(note) = &row.interval_note {
        parts.push(note.clone());
    }
    if let Some(p) = row.holm_p_value {
        parts.push(format!("Holm-adjusted p = {p:.3}"));
    }
    parts.join("; ")
}

pub(super) fn ceg_cell(
    doc: &CegDocument,
    row: Option<&CegRow>,
    variant: &str,
    scale: &str,
) -> Cell {
    let href = Some(format!("#{}", anchor(variant, scale)));
    let Some(row) = row else {
        return Cell {
            text: "—".into(),
            title: Some("no run of this variant at this scale".into()),
            ..Cell::default()
        };
    };
    let mut nodes = doc.nodes_for(variant, scale);
    if variant != doc.table.baseline {
        nodes.extend(doc.nodes_for(&doc.table.baseline, scale));
    }
    let node_list = nodes
        .iter()
        .map(|n| n.node.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let status = row_status(row);
    let title = if status.is_empty() {
        format!("from {node_list}")
    } else {
        format!("{status}. From {node_list}")
    };
    match row.ceg {
        None => Cell {
            text: "refused".into(),
            href,
            title: Some(title),
            class: Some("refused"),
            ..Cell::default()
        },
        Some(value) => {
            let mut text = ceg(value);
            if row.auxiliary {
                text.push_str(" (aux)");
            }
            // Colour and wording both come from the row's one verdict.
            let class = verdict_class(row.verdict);
            let sub = match row.verdict {
                CellVerdict::Reference => Some("reference".to_string()),
                CellVerdict::Indicative => Some(indicative_text(row)),
                verdict => interval_text(row).map(|i| {
                    if verdict == CellVerdict::NoMeasurableDifference {
                        format!("{i} no measurable difference")
                    } else {
                        i
                    }
                }),
            };
            Cell {
                text,
                sub,
                href,
                title: Some(title),
                class,
                swatch: None,
            }
        }
    }
}

/// The per-cell marking of a point estimate without an interval.
fn indicative_text(row: &CegRow) -> String {
    let seeds = row.seeds.len().min(row.baseline_seeds.len());
    if seeds == 1 {
        "one seed: no interval, indicative".to_string()
    } else {
        format!("indicative: {seeds} seeds, no interval")
    }
}

pub(super) fn variant_cell(table: &CegTable, variant: &str) -> Cell {
    let index = table
        .variants
        .iter()
        .position(|v| v == variant)
        .unwrap_or(0);
    Cell {
        text: format!("**{variant}**"),
        swatch: Some(variant_colour_hex(index)),
        ..Cell::default()
    }
}

pub(super) fn estimators_present(table: &CegTable) -> Vec<Estimator> {
    Estimator::ALL
        .into_iter()
        .filter(|e| table.rows.iter().any(|r| r.estimator == *e))
        .collect()
}

pub(super) fn main_table(doc: &CegDocument) -> Table {
    let table = &doc.table;
    let estimators = estimators_present(table);
    let mut groups = vec![(String::new(), 1)];
    let mut columns = vec!["variant".to_string()];
    let mut md_columns = vec!["variant".to_string()];
    for scale in &table.scales {
        let budget = scale
            .tokens_per_param
            .map_or_else(String::new, |b| format!(" · {b:.1} tokens/param"));
        groups.push((
            format!(
                "{} · {} FLOPs{budget}",
                scale.scale,
                flops(scale.baseline_final_flops)
            ),
            estimators.len(),
        ));
        for e in &estimators {
            columns.push(e.name().to_string());
            md_columns.push(format!("{} {}", scale.scale, e.name()));
        }
    }
    let rows = table
        .variants
        .iter()
        .map(|variant| {
            let mut row = vec![variant_cell(table, variant)];
            for scale in &table.scales {
                for e in &estimators {
                    row.push(ceg_cell(
                        doc,
                        table.row(variant, &scale.scale, *e),
                        variant,
                        &scale.scale,
                    ));
                }
            }
            row
        })
        .collect();
    Table {
        groups: Some(groups),
        columns,
        md_columns: Some(md_columns),
        rows,
        class: "ceg",
    }
}

pub(super) fn paper_tables(doc: &CegDocument, headline: Estimator) -> (Table, Table) {
    let table = &doc.table;
    let mut columns = vec![
        "run".to_string(),
        "paper compact".into(),
        "paper full".into(),
    ];
    for scale in &table.scales {
        columns.push(format!("ours {} paper", scale.scale));
        if headline != Estimator::Paper {
            columns.push(format!("ours {} {}", scale.scale, headline.name()));
        }
    }
    let mut names: Vec<(String, Option<&PublishedCeg>)> = PUBLISHED
        .iter()
        .map(|p| {
            let ours = table
                .variants
                .iter()
                .find(|v| published_for(v).is_some_and(|q| q.variant == p.variant))
                .cloned()
                .unwrap_or_else(|| p.variant.to_string());
            (ours, Some(p))
        })
        .collect();
    for v in &table.variants {
        if published_for(v).is_none() {
            names.push((v.clone(), None));
        }
    }
    let rows = names
        .iter()
        .map(|(variant, published)| {
            let present = table.variants.contains(variant);
            let mut label = match published {
                Some(p) if p.run != variant => format!("{} (ours: {variant})", p.run),
                _ => variant.clone(),
            };
            if present && is_sparse(variant) {
                label.push_str(" — ours is local + strided, a different method from the paper's");
            }
            let mut row = vec![if present {
                Cell {
                    text: format!("**{label}**"),
                    ..variant_cell(table, variant)
                }
            } else {
                Cell::text(label)
            }];
            for value in [published.map(|p| p.compact), published.map(|p| p.full)] {
                row.push(Cell::text(value.map_or("—".into(), ceg)));
            }
            for scale in &table.scales {
                let mut estimators = vec![Estimator::Paper];
                if headline != Estimator::Paper {
                    estimators.push(headline);
                }
                for e in estimators {
                    row.push(if present {
                        ceg_cell(
                            doc,
                            table.row(variant, &scale.scale, e),
                            variant,
                            &scale.scale,
                        )
                    } else {
                        Cell::text("not run")
                    });
                }
            }
            row
        })
        .collect();
    let comparison = Table {
        groups: None,
        columns,
        md_columns: None,
        rows,
        class: "paper",
    };

    let mut bias_rows = Vec::new();
    for scale in &table.scales {
        let law = scale.paper_bias_law;
        let law_text = format!(
            "{:.3} + {:.3e}·C^−{:.4}",
            law.irreducible, law.coefficient, law.exponent
        );
        match &scale.paper_bias_at_2x {
            Some(b) => bias_rows.push(vec![
                Cell::text(format!("scale {} eval grid", scale.scale)),
                Cell::text(b.eval_points.to_string()),
                Cell::text(law_text),
                Cell::text(ceg(b.true_ceg)),
                Cell::text(format!(
                    "{}{}",
                    ceg(b.measured_ceg),
                    if b.auxiliary { " (aux)" } else { "" }
                )),
                Cell::text(format!("{:+.1}%", 100.0 * b.relative_bias)),
            ]),
            None => bias_rows.push(vec![
                Cell::text(format!("scale {} eval grid", scale.scale)),
                Cell::text(scale.baseline_eval_points.to_string()),
                Cell::text(law_text),
                Cell::text("2.000"),
                Cell::text("could not be measured"),
                Cell::text("—"),
            ]),
        }
    }
    for b in &table.paper_bias_reference {
        bias_rows.push(vec![
            Cell::text("reference curve, evenly spaced evals"),
            Cell::text(b.eval_points.to_string()),
            Cell::text("1.8 + 40·C^−0.08"),
            Cell::text(ceg(b.true_ceg)),
            Cell::text(format!(
                "{}{}",
                ceg(b.measured_ceg),
                if b.auxiliary { " (aux)" } else { "" }
            )),
            Cell::text(format!("{:+.1}%", 100.0 * b.relative_bias)),
        ]);
    }
    let bias = Table {
        groups: None,
        columns: vec![
            "clean synthetic curves on".into(),
            "eval points".into(),
            "law".into(),
            "true CEG".into(),
            "paper estimator reads".into(),
            "bias".into(),
        ],
        md_columns: None,
        rows: bias_rows,
        class: "bias",
    };
    (comparison, bias)
}

pub(super) fn dependence_table(table: &CegTable) -> Table {
    let rows = table
        .compute_dependence
        .iter()
        .map(|d| {
            let r = &d.result;
            let class = match r.class {
                DependenceClass::ComputeDependent => Some("dependent"),
                DependenceClass::BudgetMismatch => Some("refused"),
                DependenceClass::ComputeIndependent => Some("independent"),
                _ => None,
            };
            vec![
                variant_cell(table, &d.variant),
                Cell::text(d.estimator.name()),
                Cell {
                    class,
                    ..Cell::text(class_text(r.class))
                },
                Cell::text(r.slope.map_or("—".into(), |s| format!("{s:.3}"))),
                Cell::text(
                    r.slope_interval
                        .map_or("—".into(), |i| format!("[{:.3}, {:.3}]", i.low, i.high)),
                ),
                Cell::text(r.slope.map_or("—".into(), per_decade)),
                Cell::text(match r.interval_method {
                    Some(SlopeIntervalMethod::Seeds) => "seeds at each scale",
                    Some(SlopeIntervalMethod::OlsT) => "OLS t",
                    None => "—",
                }),
                Cell::text(r.scales.join(", ")),
                Cell::text(r.reason.clone()),
            ]
        })
        .collect();
    Table {
        groups: None,
        columns: [
            "variant",
            "estimator",
            "class",
            "slope d ln CEG / d ln C",
            "95% interval",
            "CEG per 10× compute",
            "interval from",
            "scales",
            "why",
        ]
        .map(String::from)
        .to_vec(),
        md_columns: None,
        rows,
        class: "dependence",
    }
}

pub(super) fn combined_table(table: &CegTable) -> Table {
    let with_interval = |v: Option<f64>, i: Option<crate::analysis::interval::Interval>| {
        let mut cell = Cell::text(v.map_or("—".into(), ceg));
        cell.sub = i.map(|i| format!("[{}, {}]", ceg(i.low), ceg(i.high)));
        cell
    };
    let rows = table
        .combined
        .iter()
        .map(|c| {
            vec![
                variant_cell(table, &c.combined),
                Cell::text(c.components.join(" × ")),
                Cell {
                    href: Some(format!("#{}", anchor(&c.combined, &c.scale))),
                    ..Cell::text(c.scale.clone())
                },
                Cell::text(c.estimator.name()),
                with_interval(c.measured, c.measured_interval),
                with_interval(c.product, c.product_interval),
                with_interval(c.ratio, c.ratio_interval),
                Cell::text(c.note.clone().unwrap_or_default()),
            ]
        })
        .collect();
    Table {
        groups: None,
        columns: [
            "combined",
            "components",
            "scale",
            "estimator",
            "measured CEG",
            "product of components",
            "measured / product",
            "note",
        ]
        .map(String::from)
        .to_vec(),
        md_columns: None,
        rows,
        class: "combined",
    }
}

/// Final validation losses: seed mean ± evaluation SE, with the seed SD, per variant × scale.
pub(super) fn final_loss_table(table: &CegTable) -> Table {
    let rows = table
        .variants
        .iter()
        .map(|variant| {
            let mut row = vec![variant_cell(table, variant)];
            for scale in &table.scales {
                let loss = table
                    .final_losses
                    .iter()
                    .find(|f| &f.variant == variant && f.scale == scale.scale);
                row.push(Cell::text(loss.map_or("—".into(), final_loss_text)));
            }
            row
        })
        .collect();
    let mut columns = vec!["variant".to_string()];
    columns.extend(table.scales.iter().map(|s| s.scale.clone()));
    Table {
        groups: None,
        columns,
        md_columns: None,
        rows,
        class: "losses",
    }
}

fn final_loss_text(f: &FinalLoss) -> String {
    let se = f.eval_se.map_or(String::new(), |se| format!(" ± {se:.4}"));
    let sd = f.seed_sd.map_or(String::new(), |sd| {
        format!(" (seed SD {sd:.4}, {} seeds)", f.seeds)
    });
    format!("{:.4}{se}{sd}", f.mean)
}
