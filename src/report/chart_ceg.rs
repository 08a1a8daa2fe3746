//! The `ceg_vs_compute` chart: one panel per estimator, each variant's CEG against its
//! scale's compute with its 95% interval, both axes in log10 units with readable ticks.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::chart_axes::{log10_bounds, ratio_label, sci_label};
use super::chart_kit::{DrawResult, FONT, Plot, WIDTH, draw_legend, err, message, variant_colour};
use crate::analysis::{CegTable, Estimator};

struct CegPoint {
    compute: f64,
    ceg: f64,
    interval: Option<(f64, f64)>,
    auxiliary: bool,
}

struct CegPanel {
    estimator: Estimator,
    series: Vec<(usize, Vec<CegPoint>)>,
}

pub(super) struct CegPlot {
    panels: Vec<CegPanel>,
    labels: Vec<String>,
}

impl CegPlot {
    pub(super) fn new(table: &CegTable) -> CegPlot {
        let mut panels = Vec::new();
        for estimator in Estimator::ALL {
            if !table.rows.iter().any(|r| r.estimator == estimator) {
                continue;
            }
            let mut series = Vec::new();
            for (index, variant) in table.variants.iter().enumerate().skip(1) {
                let points: Vec<CegPoint> = table
                    .rows
                    .iter()
                    .filter(|r| &r.variant == variant && r.estimator == estimator)
                    .filter_map(|r| {
                        Some(CegPoint {
                            compute: r.compute,
                            ceg: r.ceg.filter(|c| c.is_finite() && *c > 0.0)?,
                            interval: r
                                .interval
                                .filter(|i| i.low > 0.0 && i.high.is_finite())
                                .map(|i| (i.low, i.high)),
                            auxiliary: r.auxiliary,
                        })
                    })
                    .collect();
                if !points.is_empty() {
                    series.push((index, points));
                }
            }
            panels.push(CegPanel { estimator, series });
        }
        CegPlot {
            panels,
            labels: table.variants.clone(),
        }
    }
}

impl Plot for CegPlot {
    fn size(&self) -> (u32, u32) {
        (WIDTH, 400 * self.panels.len().max(1) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(err)?;
        if self.panels.is_empty() {
            return message(root, "No CEG rows in ceg.json.");
        }
        let n_variants = self.labels.len().saturating_sub(1).max(1);
        // Spread the variants a little along x (log10 units) so that intervals at one scale
        // do not overlap.
        let dodge = |index: usize| {
            ((index as f64 - 1.0) - (n_variants as f64 - 1.0) / 2.0) * 0.035 / 10f64.ln()
        };
        let areas = root.split_evenly((self.panels.len(), 1));
        for (panel, area) in self.panels.iter().zip(&areas) {
            let all = || panel.series.iter().flat_map(|(_, p)| p.iter());
            let xs = all().map(|p| p.compute);
            let ys = all()
                .flat_map(|p| {
                    let (lo, hi) = p.interval.unwrap_or((p.ceg, p.ceg));
                    [p.ceg, lo, hi]
                })
                .chain([1.0]);
            let title = format!(
                "CEG vs compute — {} estimator (95% intervals over seeds)",
                panel.estimator.name()
            );
            let (Some((x0, x1)), Some((y0, y1))) =
                (log10_bounds(xs, 1.6, 0.5), log10_bounds(ys, 1.12, 0.1))
            else {
                area.draw(&Text::new(
                    format!("{title}: no estimates"),
                    (40, 30),
                    (FONT, 16).into_font(),
                ))
                .map_err(err)?;
                continue;
            };
            let mut chart = ChartBuilder::on(area)
                .caption(title, (FONT, 18))
                .margin(14)
                .x_label_area_size(44)
                .y_label_area_size(60)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(err)?;
            let (x_span, y_span) = (x1 - x0, y1 - y0);
            chart
                .configure_mesh()
                .x_desc("compute of the scale (baseline's final training FLOPs)")
                .y_desc("CEG (×, log scale)")
                .x_label_formatter(&|x| sci_label(*x, x_span))
                .y_label_formatter(&|y| ratio_label(*y, y_span))
                .label_style((FONT, 13))
                .axis_desc_style((FONT, 14))
                .light_line_style(RGBColor(242, 242, 242))
                .max_light_lines(1)
                .x_labels(8)
                .y_labels(8)
                .bold_line_style(RGBColor(215, 215, 215))
                .draw()
                .map_err(err)?;
            // CEG = 1: the baseline, drawn dashed.
            chart
                .draw_series(DashedLineSeries::new(
                    [(x0, 0.0), (x1, 0.0)],
                    8,
                    6,
                    BLACK.stroke_width(1),
                ))
                .map_err(err)?;
            for (index, points) in &panel.series {
                let colour = variant_colour(*index);
                let shift = dodge(*index);
                chart
                    .draw_series(LineSeries::new(
                        points
                            .iter()
                            .map(|p| (p.compute.log10() + shift, p.ceg.log10())),
                        colour.mix(0.5).stroke_width(1),
                    ))
                    .map_err(err)?;
                for p in points {
                    let x = p.compute.log10() + shift;
                    let cap = 0.005;
                    if let Some((lo, hi)) = p.interval {
                        let (lo, hi) = (lo.log10(), hi.log10());
                        chart
                            .draw_series([
                                PathElement::new(vec![(x, lo), (x, hi)], colour.stroke_width(2)),
                                PathElement::new(
                                    vec![(x - cap, lo), (x + cap, lo)],
                                    colour.stroke_width(2),
                                ),
                                PathElement::new(
                                    vec![(x - cap, hi), (x + cap, hi)],
                                    colour.stroke_width(2),
                                ),
                            ])
                            .map_err(err)?;
                    }
                }
                chart
                    .draw_series(points.iter().map(|p| {
                        let style = if p.auxiliary {
                            colour.stroke_width(2)
                        } else {
                            colour.filled()
                        };
                        Circle::new((p.compute.log10() + shift, p.ceg.log10()), 5, style)
                    }))
                    .map_err(err)?
                    .label(self.labels[*index].clone())
                    .legend(move |(x, y)| Circle::new((x + 10, y), 5, colour.filled()));
            }
            draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        }
        Ok(())
    }
}
