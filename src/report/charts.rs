//! The report's charts, each drawn twice by the same code: a PNG (plotters' bitmap backend,
//! encoded with `png`) and an SVG. Text is set in an embedded DejaVu Sans subset
//! (assets/fonts, Bitstream Vera licence), so no system font or fontconfig is needed; the
//! output bytes depend only on the inputs.
//!
//! * `loss_vs_flops`: one panel per scale, each variant's seed-mean validation curve against
//!   training FLOPs (log x);
//! * `scaling_law`: the baseline's eval points used by the fit, the fitted law
//!   L(C) = E + A·C^(−α), and each variant's (compute, loss) point with a horizontal segment to
//!   the compute the law says the baseline needs for that loss (the segment's length in log
//!   units is log CEG);
//! * `ceg_vs_compute` ([`super::chart_ceg`]): one panel per estimator, CEG against the
//!   scale's compute per variant with its 95% interval (log-log; the dashed line is CEG = 1).
//!
//! Log axes are linear axes in log10 units ([`super::chart_axes`]), so every axis carries
//! several labelled ticks however narrow its range. A variant whose curve lies on the
//! baseline's (flash) is drawn dashed over it.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::ReportError;
use super::chart_axes::{finite_bounds, log10_bounds, sci_label};
use super::chart_ceg::CegPlot;
pub use super::chart_kit::variant_colour_hex;
use super::chart_kit::{
    DrawResult, FONT, Plot, WIDTH, draw_legend, ensure_font, err, message, render_plot,
    variant_colour,
};
use crate::analysis::curve::MeanCurve;
use crate::analysis::table::EstimateDetail;
use crate::analysis::{CegTable, Curve, Estimator};

/// The file stems of the charts, in the order [`render_charts`] returns them.
pub const CHART_NAMES: [&str; 3] = ["loss_vs_flops", "scaling_law", "ceg_vs_compute"];

/// One chart in both formats.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File stem: `NAME.png` and `NAME.svg`.
    pub name: &'static str,
    pub title: String,
    /// What the chart shows, for captions and alt text.
    pub description: String,
    pub png: Vec<u8>,
    pub svg: String,
}

fn padded_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = finite_bounds(values)?;
    let pad = ((hi - lo) * 0.05).max(0.02);
    Some((lo - pad, hi + pad))
}

fn grid((n, max_cols): (usize, usize)) -> (usize, usize) {
    let cols = n.clamp(1, max_cols);
    (n.div_ceil(cols).max(1), cols)
}

// ---------------------------------------------------------------------------------------------
// loss vs FLOPs

struct LossSeries {
    variant_index: usize,
    label: String,
    points: Vec<(f64, f64)>,
    /// On average within 0.01 nats of the baseline: drawn dashed, so both lines show.
    on_baseline: bool,
}

/// Mean loss gap to the baseline under which a solid line would hide under the baseline's.
const ON_BASELINE_NATS: f64 = 0.01;

struct LossPanel {
    scale: String,
    series: Vec<LossSeries>,
}

struct LossPlot {
    panels: Vec<LossPanel>,
    note: Option<String>,
}

impl LossPlot {
    fn new(table: &CegTable, curves: &[&Curve]) -> LossPlot {
        let mut panels = Vec::new();
        for scale in &table.scales {
            let mut series = Vec::new();
            for (variant_index, variant) in table.variants.iter().enumerate() {
                let group: Vec<&Curve> = curves
                    .iter()
                    .copied()
                    .filter(|c| &c.variant == variant && c.scale == scale.scale)
                    .collect();
                if group.is_empty() {
                    continue;
                }
                let mean = MeanCurve::from_curves(&group);
                let points: Vec<(f64, f64)> = mean
                    .flops
                    .iter()
                    .zip(&mean.loss)
                    .filter(|(f, l)| **f > 0.0 && l.is_finite())
                    .map(|(f, l)| (*f, *l))
                    .collect();
                if points.is_empty() {
                    continue;
                }
                let seeds = group.len();
                let on_baseline = variant_index > 0
                    && series.first().is_some_and(|b: &LossSeries| {
                        b.variant_index == 0
                            && b.points.len() == points.len()
                            && b.points
                                .iter()
                                .zip(&points)
                                .map(|(p, q)| (p.1 - q.1).abs())
                                .sum::<f64>()
                                < ON_BASELINE_NATS * points.len() as f64
                    });
                series.push(LossSeries {
                    variant_index,
                    label: format!(
                        "{variant} ({seeds} seed{}){}",
                        if seeds == 1 { "" } else { "s" },
                        if on_baseline {
                            ", dashed: on the baseline"
                        } else {
                            ""
                        }
                    ),
                    points,
                    on_baseline,
                });
            }
            if !series.is_empty() {
                panels.push(LossPanel {
                    scale: scale.scale.clone(),
                    series,
                });
            }
        }
        let note = panels.is_empty().then(|| {
            "No loss curves were given to the report (add the train stages to its deps)."
                .to_string()
        });
        LossPlot { panels, note }
    }
}

impl Plot for LossPlot {
    fn size(&self) -> (u32, u32) {
        let (rows, _) = grid((self.panels.len(), 2));
        (WIDTH, 440 * rows as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(err)?;
        if let Some(note) = &self.note {
            return message(root, note);
        }
        let areas = root.split_evenly(grid((self.panels.len(), 2)));
        for (panel, area) in self.panels.iter().zip(&areas) {
            let all = || panel.series.iter().flat_map(|s| s.points.iter());
            let (x0, x1) =
                log10_bounds(all().map(|p| p.0), 1.15, 0.3).ok_or("no positive FLOPs")?;
            let (y0, y1) = padded_range(all().map(|p| p.1)).ok_or("no finite losses")?;
            let mut chart = ChartBuilder::on(area)
                .caption(format!("scale {}", panel.scale), (FONT, 20))
                .margin(14)
                .x_label_area_size(44)
                .y_label_area_size(60)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(err)?;
            let x_span = x1 - x0;
            chart
                .configure_mesh()
                .x_desc("training FLOPs (log scale)")
                .y_desc("validation loss (nats/token)")
                .x_label_formatter(&|x| sci_label(*x, x_span))
                .y_label_formatter(&|y| format!("{y:.2}"))
                .label_style((FONT, 13))
                .axis_desc_style((FONT, 14))
                .light_line_style(RGBColor(242, 242, 242))
                .max_light_lines(1)
                .x_labels(8)
                .y_labels(10)
                .bold_line_style(RGBColor(215, 215, 215))
                .draw()
                .map_err(err)?;
            for series in &panel.series {
                let colour = variant_colour(series.variant_index);
                // The baseline is drawn first and wider; a variant on top of it (flash:
                // identical maths) is dashed so that both lines show.
                let width = if series.variant_index == 0 { 5 } else { 2 };
                let points = series.points.iter().map(|&(f, l)| (f.log10(), l));
                let drawn = if series.on_baseline {
                    chart.draw_series(DashedLineSeries::new(points, 10, 6, colour.stroke_width(3)))
                } else {
                    chart.draw_series(LineSeries::new(points, colour.stroke_width(width)))
                };
                drawn
                    .map_err(err)?
                    .label(series.label.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
                    });
            }
            draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// scaling law

struct VariantPoint {
    variant_index: usize,
    compute: f64,
    loss: f64,
    /// Where the law says the baseline reaches `loss` (None: refused or no fit).
    baseline_compute: Option<f64>,
}

struct LawPlot {
    law: Option<crate::analysis::scaling_law::PowerLaw>,
    fit_points: Vec<(f64, f64)>,
    baseline_finals: Vec<(f64, f64)>,
    variants: Vec<VariantPoint>,
    labels: Vec<String>,
    note: Option<String>,
}

impl LawPlot {
    fn new(table: &CegTable, curves: &[&Curve]) -> LawPlot {
        let fit = table.scaling_law.fit.as_ref();
        let fit_points = fit
            .map(|f| f.residuals.iter().map(|r| (r.flops, r.loss)).collect())
            .unwrap_or_default();
        let final_point = |variant: &str, scale: &str| {
            let group: Vec<&Curve> = curves
                .iter()
                .copied()
                .filter(|c| c.variant == variant && c.scale == scale)
                .collect();
            if group.is_empty() {
                return None;
            }
            let mean = MeanCurve::from_curves(&group);
            Some((mean.final_flops(), *mean.loss.last()?))
        };
        let baseline_finals = table
            .scales
            .iter()
            .filter_map(|s| final_point(&table.baseline, &s.scale))
            .collect();
        let mut variants = Vec::new();
        for (variant_index, variant) in table.variants.iter().enumerate().skip(1) {
            for scale in &table.scales {
                let row = table.row(variant, &scale.scale, Estimator::ScalingLaw);
                match row.and_then(|r| r.detail.as_ref()) {
                    Some(EstimateDetail::ScalingLaw(e)) => variants.push(VariantPoint {
                        variant_index,
                        compute: e.variant_compute,
                        loss: e.variant_loss,
                        baseline_compute: Some(e.baseline_compute),
                    }),
                    _ => {
                        if let Some((compute, loss)) = final_point(variant, &scale.scale) {
                            variants.push(VariantPoint {
                                variant_index,
                                compute,
                                loss,
                                baseline_compute: None,
                            });
                        }
                    }
                }
            }
        }
        let note = match (&table.scaling_law.fit, &table.scaling_law.refusal) {
            (Some(_), _) => None,
            (None, Some(refusal)) => Some(format!("No scaling-law fit: {refusal}")),
            (None, None) => Some("No scaling-law fit in ceg.json.".to_string()),
        };
        LawPlot {
            law: fit.map(|f| f.law),
            fit_points,
            baseline_finals,
            variants,
            labels: table.variants.clone(),
            note,
        }
    }
}

impl Plot for LawPlot {
    fn size(&self) -> (u32, u32) {
        (WIDTH, 620)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(err)?;
        let xs = self
            .fit_points
            .iter()
            .chain(&self.baseline_finals)
            .map(|p| p.0)
            .chain(self.variants.iter().map(|v| v.compute))
            .chain(self.variants.iter().filter_map(|v| v.baseline_compute));
        let ys = self
            .fit_points
            .iter()
            .chain(&self.baseline_finals)
            .map(|p| p.1)
            .chain(self.variants.iter().map(|v| v.loss));
        let (Some((x0, x1)), Some((y0, y1))) = (log10_bounds(xs, 1.3, 0.3), padded_range(ys))
        else {
            return message(
                root,
                self.note
                    .as_deref()
                    .unwrap_or("Nothing to draw: no fit points and no variant points."),
            );
        };
        let caption = match (&self.law, &self.note) {
            (Some(law), _) => format!(
                "baseline scaling law  L(C) = {:.3} + {:.3e}·C^(−{:.4})",
                law.irreducible, law.coefficient, law.exponent
            ),
            (None, Some(note)) => note.clone(),
            (None, None) => String::new(),
        };
        let mut chart = ChartBuilder::on(root)
            .caption(caption, (FONT, 20))
            .margin(16)
            .x_label_area_size(46)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        let x_span = x1 - x0;
        chart
            .configure_mesh()
            .x_desc("training FLOPs (log scale)")
            .y_desc("validation loss (nats/token)")
            .x_label_formatter(&|x| sci_label(*x, x_span))
            .y_label_formatter(&|y| format!("{y:.2}"))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .light_line_style(RGBColor(242, 242, 242))
            .max_light_lines(1)
            .x_labels(8)
            .y_labels(10)
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(err)?;
        let grey = RGBColor(150, 150, 150);
        chart
            .draw_series(
                self.fit_points
                    .iter()
                    .map(|&(c, l)| Circle::new((c.log10(), l), 2, grey.filled())),
            )
            .map_err(err)?
            .label("baseline eval points in the fit")
            .legend(move |(x, y)| Circle::new((x + 10, y), 3, grey.filled()));
        if let Some(law) = self.law {
            let n = 200;
            let line: Vec<(f64, f64)> = (0..=n)
                .map(|i| {
                    let x = x0 + (x1 - x0) * i as f64 / n as f64;
                    (x, law.loss(10f64.powf(x)))
                })
                .filter(|(_, l)| l.is_finite() && *l >= y0 && *l <= y1)
                .collect();
            chart
                .draw_series(LineSeries::new(line, BLACK.stroke_width(2)))
                .map_err(err)?
                .label("fitted baseline law")
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2))
                });
        }
        for (index, label) in self.labels.iter().enumerate().skip(1) {
            let colour = variant_colour(index);
            let points: Vec<&VariantPoint> = self
                .variants
                .iter()
                .filter(|v| v.variant_index == index)
                .collect();
            if points.is_empty() {
                continue;
            }
            for p in &points {
                if let Some(b) = p.baseline_compute {
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![(p.compute.log10(), p.loss), (b.log10(), p.loss)],
                            colour.mix(0.6).stroke_width(1),
                        )))
                        .map_err(err)?;
                }
            }
            chart
                .draw_series(points.iter().map(|p| {
                    let style = if p.baseline_compute.is_some() {
                        colour.filled()
                    } else {
                        colour.stroke_width(2)
                    };
                    Circle::new((p.compute.log10(), p.loss), 5, style)
                }))
                .map_err(err)?
                .label(label.clone())
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, colour.filled()));
        }
        // The baseline's final points last, hollow, so a variant on top (flash) leaves them
        // visible.
        chart
            .draw_series(self.baseline_finals.iter().map(|&(c, l)| {
                EmptyElement::at((c.log10(), l))
                    + Rectangle::new([(-7, -7), (7, 7)], BLACK.stroke_width(2))
            }))
            .map_err(err)?
            .label(format!("{} final (per scale)", self.labels[0]))
            .legend(|(x, y)| {
                Rectangle::new([(x + 4, y - 6), (x + 16, y + 6)], BLACK.stroke_width(2))
            });
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    }
}

/// Draws the three charts ([`CHART_NAMES`]) from the table and the curves given (the loss
/// chart says so when there are none).
pub fn render_charts(table: &CegTable, curves: &[&Curve]) -> Result<Vec<Chart>, ReportError> {
    ensure_font()?;
    let loss = LossPlot::new(table, curves);
    let (png, svg) = render_plot("loss_vs_flops", &loss)?;
    let mut charts = vec![Chart {
        name: "loss_vs_flops",
        title: "Validation loss vs training FLOPs, per scale".into(),
        description: "Seed-mean validation loss of every variant against cumulative training \
                      FLOPs (log scale), one panel per scale."
            .into(),
        png,
        svg,
    }];
    let law = LawPlot::new(table, curves);
    let (png, svg) = render_plot("scaling_law", &law)?;
    charts.push(Chart {
        name: "scaling_law",
        title: "The baseline's scaling law and each variant's point".into(),
        description: "Grey: the baseline eval points the law was fitted to; black line: the \
                      fitted law; hollow black squares: the baseline's final points; coloured \
                      dots: each variant's final (compute, smoothed loss) per scale, with a \
                      segment to the compute the baseline needs for that loss — its own \
                      scale's final point moved along the law (the segment's length in log \
                      units is log CEG). Hollow dots: the scaling-law estimate was refused."
            .into(),
        png,
        svg,
    });
    let ceg = CegPlot::new(table);
    let (png, svg) = render_plot("ceg_vs_compute", &ceg)?;
    charts.push(Chart {
        name: "ceg_vs_compute",
        title: "CEG vs compute, per estimator".into(),
        description: "Each variant's CEG at each scale's compute with its 95% Student-t \
                      interval over paired seeds (log-log; variants are spread slightly along \
                      x so that their intervals do not overlap; no bar: fewer than 3 seeds, \
                      indicative only). Dashed: CEG = 1. Hollow: the paper's auxiliary CEG."
            .into(),
        png,
        svg,
    });
    Ok(charts)
}
