//! Rendering a CEG analysis for people: charts (PNG + SVG, plotters with an embedded font),
//! a self-contained HTML page and its Markdown twin.
//!
//! Data flows one way: [`crate::analysis`] builds the [`CegTable`](crate::analysis::CegTable);
//! this module only reads it (and the curves it came from). The `fit_ceg` and `report` stage
//! kinds ([`crate::stages`]) are thin wrappers: they gather inputs, call [`document`] and
//! [`render::render`], and write the files.

mod chart_axes;
mod chart_ceg;
mod chart_kit;
pub mod charts;
pub mod document;
mod markup;
pub mod paper;
pub mod plot_data;
pub mod plot_sources;
pub mod plots;
pub mod render;
mod sections;
mod tables;
mod verdicts;

pub use document::{CegDocument, CurveSource, ReportData};
pub use markup::anchor;
pub use render::{Rendered, Verdict, render};

/// A report that cannot be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read ceg.json: {0}")]
    CegJson(String),
    #[error("chart `{chart}`: {message}")]
    Chart { chart: String, message: String },
    #[error("the embedded chart font cannot be loaded: {0}")]
    Font(String),
    #[error("PNG encoding of `{chart}`: {message}")]
    Png { chart: String, message: String },
}
