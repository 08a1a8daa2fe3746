//! The report's sentences. Every call reads the row's [`CellVerdict`] — the same value the
//! table cells take their colour from — so text and colour cannot disagree.

use super::markup::{anchor, ceg, interval_text};
use super::paper::published_for;
use crate::analysis::dependence::DependenceClass;
use crate::analysis::table::DependenceEntry;
use crate::analysis::verdict::CellVerdict;
use crate::analysis::{CegTable, Estimator};

/// The plain-language verdict on one variant.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub variant: String,
    pub estimator: Estimator,
    /// (scale, verdict, CEG) in compute order.
    pub calls: Vec<(String, CellVerdict, Option<f64>)>,
    pub dependence: Option<DependenceClass>,
    /// Markdown-flavoured sentence (`**`, backticks, links).
    pub sentence: String,
}

/// CSS class of a table cell with this verdict.
pub(super) fn verdict_class(verdict: CellVerdict) -> Option<&'static str> {
    match verdict {
        CellVerdict::Beats => Some("good"),
        CellVerdict::Worse => Some("bad"),
        CellVerdict::NoMeasurableDifference | CellVerdict::WithinNoise => Some("neutral"),
        CellVerdict::Indicative => Some("indicative"),
        CellVerdict::Refused => Some("refused"),
        CellVerdict::Reference => None,
    }
}

pub(super) fn class_text(class: DependenceClass) -> &'static str {
    match class {
        DependenceClass::ComputeDependent => "compute-dependent",
        DependenceClass::ComputeIndependent => "compute-independent",
        DependenceClass::Inconclusive => "inconclusive",
        DependenceClass::InsufficientScales => "too few scales",
        DependenceClass::BudgetMismatch => "budgets differ: no verdict",
    }
}

pub(super) fn per_decade(slope: f64) -> String {
    format!("×{:.2}", 10f64.powf(slope))
}

/// True for our variant that stands in for the paper's sparse attention.
pub(super) fn is_sparse(variant: &str) -> bool {
    published_for(variant).is_some_and(|p| p.variant == "sparse")
}

/// The caveat every mention of our sparse attention carries.
pub(super) const SPARSE_CAVEAT: &str = "our sparse attention is local + strided, a different method from the paper's (DeepSeek-style native sparse attention), so its numbers are not a replication of theirs";

fn dependence_phrase(entry: &DependenceEntry) -> String {
    let r = &entry.result;
    let slope = match (r.slope, r.slope_interval) {
        (Some(s), Some(i)) => format!(
            "slope of ln CEG on ln C {s:.3} [{:.3}, {:.3}], i.e. CEG changes {} per 10× compute",
            i.low,
            i.high,
            per_decade(s)
        ),
        (Some(s), None) => format!(
            "slope {s:.3} (no interval), CEG changes {} per 10× compute",
            per_decade(s)
        ),
        _ => String::new(),
    };
    let what = match r.class {
        DependenceClass::ComputeDependent if r.slope.unwrap_or(0.0) > 0.0 => {
            "**compute-dependent**: its gain grows with compute"
        }
        DependenceClass::ComputeDependent => "**compute-dependent**: its gain shrinks with compute",
        DependenceClass::ComputeIndependent => {
            "**compute-independent**: its gain holds steady across compute"
        }
        DependenceClass::Inconclusive => {
            "**inconclusive** on compute dependence: the slope's interval neither lies within the margin nor clears it"
        }
        DependenceClass::BudgetMismatch => {
            return format!("No compute-dependence verdict: {}.", r.reason);
        }
        DependenceClass::InsufficientScales => {
            return format!(
                "Compute dependence not tested: {} scale(s) with an estimate, at least 3 needed.",
                r.scales.len()
            );
        }
    };
    if slope.is_empty() {
        format!("Across {} scales it is {what}.", r.scales.len())
    } else {
        format!("Across {} scales it is {what} ({slope}).", r.scales.len())
    }
}

/// The headline clause for a variant whose cells all share one verdict, or a mixed one.
fn head(calls: &[(String, CellVerdict, Option<f64>)], range: &str) -> String {
    let all = |v: CellVerdict| calls.iter().all(|(_, x, _)| *x == v);
    let every = if calls.len() == 1 {
        "at its one scale"
    } else {
        "at every scale"
    };
    if all(CellVerdict::Beats) {
        return format!(
            "**beats the baseline** {every}: the baseline needs {range} the compute for the same loss"
        );
    }
    if all(CellVerdict::Worse) {
        return format!(
            "**is worse than the baseline** {every}: it needs more compute for the same loss (CEG {range})"
        );
    }
    if all(CellVerdict::NoMeasurableDifference) {
        return format!(
            "shows **no measurable difference** from the baseline {every}: every interval lies within the tolerance around 1 (CEG {range})"
        );
    }
    if all(CellVerdict::WithinNoise) {
        return format!(
            "**cannot be told from the baseline** {every}: every interval reaches both sides of the tolerance around 1 (CEG {range})"
        );
    }
    if all(CellVerdict::Indicative) {
        return format!(
            "has CEG {range}, **indicative only**: fewer than 3 paired seeds, so noise cannot be told from gain"
        );
    }
    if all(CellVerdict::Refused) {
        return "could not be estimated (see the refusals in the table)".to_string();
    }
    let mut parts = Vec::new();
    for (name, verdict) in [
        ("beats the baseline", CellVerdict::Beats),
        ("is worse than the baseline", CellVerdict::Worse),
        (
            "shows no measurable difference",
            CellVerdict::NoMeasurableDifference,
        ),
        ("is within noise of the baseline", CellVerdict::WithinNoise),
        ("is indicative only", CellVerdict::Indicative),
        ("was refused", CellVerdict::Refused),
    ] {
        let scales: Vec<&str> = calls
            .iter()
            .filter(|(_, c, _)| *c == verdict)
            .map(|(s, _, _)| s.as_str())
            .collect();
        if !scales.is_empty() {
            parts.push(format!("{name} at {}", scales.join(", ")));
        }
    }
    format!("is mixed: it {}", parts.join("; "))
}

fn ceg_range(calls: &[(String, CellVerdict, Option<f64>)]) -> String {
    let values: Vec<f64> = calls.iter().filter_map(|(_, _, v)| *v).collect();
    match (
        values.iter().copied().reduce(f64::min),
        values.iter().copied().reduce(f64::max),
    ) {
        (Some(lo), Some(hi)) if (hi - lo).abs() < 5e-4 => format!("{}×", ceg(lo)),
        (Some(lo), Some(hi)) => format!("{}× to {}×", ceg(lo), ceg(hi)),
        _ => String::new(),
    }
}

/// One sentence per non-baseline variant, read from `estimator`.
pub(super) fn verdicts(table: &CegTable, estimator: Estimator) -> Vec<Verdict> {
    let mut out = Vec::new();
    for variant in table.variants.iter().skip(1) {
        let mut calls = Vec::new();
        let mut described = Vec::new();
        for scale in &table.scales {
            let Some(row) = table.row(variant, &scale.scale, estimator) else {
                continue;
            };
            calls.push((scale.scale.clone(), row.verdict, row.ceg));
            let link = format!("#{}", anchor(variant, &scale.scale));
            let text = match (row.ceg, interval_text(row)) {
                (Some(c), Some(i)) => format!("[{}× {i}]({link}) at {}", ceg(c), scale.scale),
                (Some(c), None) => {
                    format!("[{}×]({link}) at {} (indicative)", ceg(c), scale.scale)
                }
                (None, _) => format!("[refused]({link}) at {}", scale.scale),
            };
            described.push(text);
        }
        if calls.is_empty() {
            continue;
        }
        let mut sentence = format!(
            "**{variant}** {} ({}).",
            head(&calls, &ceg_range(&calls)),
            described.join("; ")
        );
        if variant == "flash" {
            sentence.push_str(" Flash attention computes the same function as the baseline's attention, so its CEG measures the noise floor: no measurable difference, or an interval containing 1, is the expected result.");
        }
        if is_sparse(variant) {
            sentence.push_str(&format!(" Note: {SPARSE_CAVEAT}."));
        }
        let dependence = table
            .compute_dependence
            .iter()
            .find(|d| &d.variant == variant && d.estimator == estimator);
        if let Some(d) = dependence {
            sentence.push(' ');
            sentence.push_str(&dependence_phrase(d));
        }
        out.push(Verdict {
            variant: variant.clone(),
            estimator,
            calls,
            dependence: dependence.map(|d| d.result.class),
            sentence,
        });
    }
    out
}
