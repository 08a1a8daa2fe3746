//! A combined variant's measured CEG beside the product of its components' CEGs, with
//! Student-t intervals whose standard errors come from the paired seeds (per seed,
//! ln product = Σ ln CEG_component and ln ratio = ln CEG_combined − ln product), centred on
//! the product and ratio of the cells' CEGs as the cells' own intervals are.

use super::ceg_table::{CegRow, CegTable, CombinedComparison, Estimator, list};
use super::error::AnalysisError;
use super::interval::{CONFIDENCE_LEVEL, Interval, LogEstimate, MIN_SEEDS_FOR_INTERVAL};

/// Per seed, ln CEG of each row, when every row has every seed and they share one seed list.
fn paired_logs(rows: &[&CegRow]) -> Option<Vec<Vec<f64>>> {
    let seeds = &rows.first()?.seeds;
    rows.iter()
        .map(|r| {
            (&r.seeds == seeds && r.per_seed.len() == seeds.len())
                .then(|| r.per_seed.iter().map(|c| c.map(f64::ln)).collect())
                .flatten()
        })
        .collect()
}

/// The interval around `centre` (CEG units) with the per-seed values' standard error.
fn t_interval(centre: Option<f64>, values: &[f64]) -> Option<Interval> {
    let centre = centre.filter(|c| *c > 0.0)?;
    let spread = (values.len() >= MIN_SEEDS_FOR_INTERVAL)
        .then(|| LogEstimate::from_seeds(values))
        .flatten()?;
    let estimate = LogEstimate {
        mean: centre.ln(),
        ..spread
    };
    Some(estimate.interval(CONFIDENCE_LEVEL).exp())
}

/// For every scale and estimator where the combined variant has a row: its measured CEG
/// beside the product of the components' CEGs.
pub fn combined_vs_product(
    table: &CegTable,
    combined: &str,
    components: &[&str],
) -> Result<Vec<CombinedComparison>, AnalysisError> {
    for name in std::iter::once(&combined).chain(components) {
        if !table.variants.iter().any(|v| v == name) {
            return Err(AnalysisError::UnknownVariant {
                variant: name.to_string(),
                present: list(&table.variants),
            });
        }
    }
    let mut out = Vec::new();
    for scale in &table.scales {
        for estimator in Estimator::ALL {
            let Some(measured) = table.row(combined, &scale.scale, estimator) else {
                continue;
            };
            let parts: Vec<Option<&CegRow>> = components
                .iter()
                .map(|c| table.row(c, &scale.scale, estimator))
                .collect();
            let product = parts
                .iter()
                .map(|p| p.and_then(|r| r.ceg))
                .product::<Option<f64>>();
            let mut note = None;
            if parts.iter().any(Option::is_none) {
                note = Some("a component has no run at this scale".to_string());
            } else if product.is_none() {
                note = Some("a component's CEG was refused".to_string());
            }
            let all_rows: Option<Vec<&CegRow>> = std::iter::once(Some(measured))
                .chain(parts.iter().copied())
                .collect();
            let logs = all_rows.as_deref().and_then(paired_logs);
            let (product_interval, ratio_interval) = match &logs {
                Some(logs) => {
                    let product_logs: Vec<f64> = (0..logs[0].len())
                        .map(|s| logs[1..].iter().map(|l| l[s]).sum())
                        .collect();
                    let ratio_logs: Vec<f64> = logs[0]
                        .iter()
                        .zip(&product_logs)
                        .map(|(m, p)| m - p)
                        .collect();
                    let ratio = measured.ceg.zip(product).map(|(m, p)| m / p);
                    (
                        t_interval(product, &product_logs),
                        t_interval(ratio, &ratio_logs),
                    )
                }
                None => (None, None),
            };
            if note.is_none() && product.is_some() && ratio_interval.is_none() {
                note = Some(format!(
                    "no interval: needs {MIN_SEEDS_FOR_INTERVAL} or more seeds estimated for \
                     the combined variant and every component, with the same seed list"
                ));
            }
            out.push(CombinedComparison {
                combined: combined.to_string(),
                components: components.iter().map(|c| c.to_string()).collect(),
                scale: scale.scale.clone(),
                estimator,
                measured: measured.ceg,
                measured_interval: measured.interval,
                product,
                product_interval,
                ratio: measured.ceg.zip(product).map(|(m, p)| m / p),
                ratio_interval,
                note,
            });
        }
    }
    Ok(out)
}
