//! The report document: one list of blocks (headings, paragraphs, tables, figures) rendered
//! twice, as a self-contained HTML page (charts inlined as SVG) and as its Markdown twin
//! (charts referenced as the SVG/PNG files beside it). No timestamps, no hash-map order: the
//! bytes depend only on the inputs.
//!
//! The work is split by job: [`super::markup`] (document model, HTML/Markdown),
//! [`super::tables`], [`super::verdicts`] (sentences from each cell's verdict) and
//! [`super::sections`] (the page's sections in order).

use super::ReportError;
use super::charts::{Chart, render_charts};
use super::document::ReportData;
use super::markup::{Block, html, markdown};
use super::sections::build;
use super::tables::estimators_present;
pub use super::verdicts::Verdict;
use super::verdicts::verdicts;
use crate::analysis::Curve;

/// The report's files.
pub struct Rendered {
    pub html: String,
    pub markdown: String,
    pub charts: Vec<Chart>,
    pub verdicts: Vec<Verdict>,
}

/// Builds the charts, the HTML page and the Markdown twin.
pub fn render(data: &ReportData<'_>) -> Result<Rendered, ReportError> {
    let table = &data.document.table;
    let present = estimators_present(table);
    let headline = if present.contains(&data.headline) {
        data.headline
    } else {
        present.first().copied().unwrap_or(data.headline)
    };
    let curves: Vec<&Curve> = data.curves.iter().map(|(_, c)| c).collect();
    let charts = render_charts(table, &curves)?;
    let verdicts = verdicts(table, headline);
    let mut blocks = build(data, headline, &verdicts);
    if headline != data.headline {
        blocks.insert(
            1,
            Block::Para(format!(
                "(The `{}` estimator asked for is not in ceg.json; the verdict uses `{}`.)",
                data.headline.name(),
                headline.name()
            )),
        );
    }
    Ok(Rendered {
        html: html(&blocks, data.title, &charts),
        markdown: markdown(&blocks, &charts),
        charts,
        verdicts,
    })
}
