//! `cegraph plots`: overlays of series (one line per node, experiment or revision) drawn by
//! the report's chart code ([`super::charts`]: embedded font, one legend box), as PNG + SVG
//! and one self-contained HTML page with the images inlined.
//!
//! Log axes are linear axes in log10 units, as in the report ([`super::chart_axes`]), so every
//! axis carries several labelled ticks ([`tick_labels`]) however narrow its range.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::coord::ranged1d::Ranged;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::chart_axes::{finite_bounds, log10_bounds, sci_label};
use super::chart_kit::{DrawResult, FONT, Plot, WIDTH, draw_legend, err, variant_colour};
use super::markup::esc;
use super::plot_data::PlotError;

/// How many labelled ticks each axis asks plotters for (it picks round values, at most this
/// many).
const AXIS_LABELS: usize = 8;

/// One line of an overlay.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Legend text: the node, prefixed by its experiment or revision.
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed (a revision's curve under today's).
    pub dashed: bool,
    /// Palette index: the same node has the same colour in every source.
    pub colour: usize,
}

/// One chart: the lines of one y column against one x column.
#[derive(Debug, Clone, PartialEq)]
pub struct Overlay {
    /// File stem of `NAME.png` / `NAME.svg`.
    pub name: String,
    pub x: String,
    pub y: String,
    pub log_x: bool,
    pub log_y: bool,
    pub lines: Vec<Line>,
}

/// An overlay drawn in both formats.
#[derive(Debug, Clone)]
pub struct PlotImage {
    pub name: String,
    pub title: String,
    pub png: Vec<u8>,
    pub svg: String,
}

/// The drawing range of one axis: log10 units on a log axis (positive values only), padded
/// by 5% either side and never empty. `None` when no value can be drawn.
pub fn axis_range(values: impl Iterator<Item = f64>, log: bool) -> Option<(f64, f64)> {
    if log {
        return log10_bounds(values, 1.05, 0.3);
    }
    let (lo, hi) = finite_bounds(values)?;
    let span = hi - lo;
    let pad = if span > hi.abs().max(lo.abs()) * 1e-9 {
        span * 0.05
    } else {
        // One value (or all equal): a window around it.
        (lo.abs() * 0.05)
            .max(1e-9)
            .max(if lo == 0.0 { 1.0 } else { 0.0 })
    };
    Some((lo - pad, hi + pad))
}

/// The ticks plotters draws on an axis over `range` (in log10 units when `log`), with the
/// label each gets: neighbours always read differently.
pub fn tick_labels(range: (f64, f64), log: bool) -> Vec<(f64, String)> {
    let ticks = key_points(range);
    let label = label_fn(range, log, &ticks);
    ticks.iter().map(|&t| (t, label(t))).collect()
}

/// Where plotters puts the labelled ticks of an axis over `lo..hi`.
fn key_points((lo, hi): (f64, f64)) -> Vec<f64> {
    RangedCoordf64::from(lo..hi).key_points(AXIS_LABELS)
}

/// The label formatter of an axis whose ticks are `ticks`.
fn label_fn((lo, hi): (f64, f64), log: bool, ticks: &[f64]) -> impl Fn(f64) -> String + use<> {
    let span = hi - lo;
    let step = ticks
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(f64::INFINITY, f64::min);
    let step = if step.is_finite() && step > 0.0 {
        step
    } else {
        span.abs().max(f64::MIN_POSITIVE)
    };
    let magnitude = lo.abs().max(hi.abs()).max(step);
    move |v: f64| {
        if log {
            log_label(v, span)
        } else {
            linear_label(v, step, magnitude)
        }
    }
}

/// 10^v: plain digits between 0.001 and 100000 (`0.32`, `1.5`, `250`), else scientific
/// notation ([`sci_label`]); significant digits from the axis span in decades.
fn log_label(v: f64, span: f64) -> String {
    let x = 10f64.powf(v);
    if !(1e-3..1e5).contains(&x) {
        return sci_label(v, span);
    }
    let significant = if span >= 2.5 {
        1
    } else if span >= 0.4 {
        2
    } else {
        3
    };
    let decimals = (significant - 1 - x.log10().floor() as i32).max(0) as usize;
    format!("{x:.decimals$}")
}

/// `v` with the digits that tell ticks `step` apart; scientific notation for very large or
/// very small numbers.
fn linear_label(v: f64, step: f64, magnitude: f64) -> String {
    let v = if v.abs() < step * 1e-6 { 0.0 } else { v };
    if !(1e-3..1e6).contains(&magnitude) {
        let digits = (magnitude.log10().floor() - step.log10().floor()).clamp(0.0, 12.0) as usize;
        format!("{v:.digits$e}")
    } else {
        let decimals = (-step.log10()).ceil().clamp(0.0, 12.0) as usize;
        format!("{v:.decimals$}")
    }
}

struct OverlayPlot<'a>(&'a Overlay);

/// A line's points in drawing units (log10 on a log axis; non-positive values dropped there).
fn drawn_points(o: &Overlay, line: &Line) -> Vec<(f64, f64)> {
    let axis = |v: f64, log: bool| match log {
        true => (v > 0.0).then(|| v.log10()),
        false => Some(v),
    };
    line.points
        .iter()
        .filter_map(|&(x, y)| Some((axis(x, o.log_x)?, axis(y, o.log_y)?)))
        .collect()
}

fn axis_title(column: &str, log: bool) -> String {
    if log {
        format!("{column} (log scale)")
    } else {
        column.to_string()
    }
}

impl Plot for OverlayPlot<'_> {
    fn size(&self) -> (u32, u32) {
        (WIDTH, 620)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let o = self.0;
        root.fill(&WHITE).map_err(err)?;
        let lines: Vec<(&Line, Vec<(f64, f64)>)> =
            o.lines.iter().map(|l| (l, drawn_points(o, l))).collect();
        let all = || lines.iter().flat_map(|(_, p)| p.iter());
        let (Some(xr), Some(yr)) = (
            axis_range(all().map(|p| p.0), false),
            axis_range(all().map(|p| p.1), false),
        ) else {
            return super::chart_kit::message(root, "No point to draw: every value is missing.");
        };
        let mut chart = ChartBuilder::on(root)
            .caption(format!("{} vs {}", o.y, o.x), (FONT, 20))
            .margin(16)
            .x_label_area_size(46)
            .y_label_area_size(80)
            .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
            .map_err(err)?;
        let x_label = label_fn(xr, o.log_x, &key_points(xr));
        let y_label = label_fn(yr, o.log_y, &key_points(yr));
        chart
            .configure_mesh()
            .x_desc(axis_title(&o.x, o.log_x))
            .y_desc(axis_title(&o.y, o.log_y))
            .x_label_formatter(&|x| x_label(*x))
            .y_label_formatter(&|y| y_label(*y))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .light_line_style(RGBColor(242, 242, 242))
            .max_light_lines(1)
            .x_labels(AXIS_LABELS)
            .y_labels(AXIS_LABELS)
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(err)?;
        for (line, points) in lines {
            let colour = variant_colour(line.colour);
            let drawn = if line.dashed {
                chart.draw_series(DashedLineSeries::new(points, 10, 6, colour.stroke_width(2)))
            } else {
                chart.draw_series(LineSeries::new(points, colour.stroke_width(2)))
            };
            let dashed = line.dashed;
            drawn
                .map_err(err)?
                .label(line.label.clone())
                .legend(move |(x, y)| {
                    let style = colour.stroke_width(3);
                    if dashed {
                        PathElement::new(vec![(x, y), (x + 8, y)], style)
                    } else {
                        PathElement::new(vec![(x, y), (x + 20, y)], style)
                    }
                });
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    }
}

/// Draw every overlay as PNG and SVG.
pub fn render(overlays: &[Overlay]) -> Result<Vec<PlotImage>, PlotError> {
    overlays
        .iter()
        .map(|o| {
            let render_err = |message: String| PlotError::Render {
                chart: o.name.clone(),
                message,
            };
            super::chart_kit::ensure_font().map_err(|e| render_err(e.to_string()))?;
            let (png, svg) = super::chart_kit::render_plot(&o.name, &OverlayPlot(o))
                .map_err(|e| render_err(e.to_string()))?;
            Ok(PlotImage {
                name: o.name.clone(),
                title: format!("{} vs {}", o.y, o.x),
                png,
                svg,
            })
        })
        .collect()
}

/// One HTML page holding every image (PNG, base64-inlined) and the notes: it can be mailed
/// or opened anywhere without the files beside it.
pub fn html_page(title: &str, images: &[PlotImage], notes: &[String]) -> String {
    use base64::Engine as _;
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n\
         <style>body{{font-family:sans-serif;max-width:1240px;margin:2em auto;padding:0 1em}}\
         img{{max-width:100%;height:auto;border:1px solid #ddd}}</style>\n</head>\n<body>\n<h1>{t}</h1>\n",
        t = esc(title)
    );
    for image in images {
        let data = base64::engine::general_purpose::STANDARD.encode(&image.png);
        html.push_str(&format!(
            "<h2 id=\"{id}\">{title}</h2>\n<p><img alt=\"{title}\" src=\"data:image/png;base64,{data}\"></p>\n",
            id = esc(&image.name),
            title = esc(&image.title)
        ));
    }
    if !notes.is_empty() {
        html.push_str("<h2>Notes</h2>\n<ul>\n");
        for n in notes {
            html.push_str(&format!("<li>{}</li>\n", esc(n)));
        }
        html.push_str("</ul>\n");
    }
    html.push_str("</body>\n</html>\n");
    html
}

/// Write `NAME.png` and `NAME.svg` per image and `index.html` into `dir` (created if need
/// be), each through a temporary file renamed into place: a reader never sees half a file.
/// Returns the paths written.
pub fn write(dir: &Path, images: &[PlotImage], html: &str) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut files: Vec<(String, &[u8])> = Vec::new();
    for image in images {
        files.push((format!("{}.png", image.name), &image.png));
        files.push((format!("{}.svg", image.name), image.svg.as_bytes()));
    }
    files.push(("index.html".into(), html.as_bytes()));
    let mut written = Vec::new();
    for (name, bytes) in files {
        let dest = dir.join(&name);
        let mut tmp = tempfile::Builder::new()
            .prefix(crate::store::tmp::PREFIX)
            .tempfile_in(dir)?;
        std::io::Write::write_all(&mut tmp, bytes)?;
        // Readable like any file the user writes (temporary files start private).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))?;
        }
        tmp.persist(&dest).map_err(|e| e.error)?;
        written.push(dest);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn readable(range: (f64, f64), log: bool) {
        let ticks = tick_labels(range, log);
        assert!(ticks.len() >= 3, "{range:?} log={log}: {ticks:?}");
        for w in ticks.windows(2) {
            assert_ne!(w[0].1, w[1].1, "{range:?} log={log}: {ticks:?}");
        }
    }

    #[test]
    fn every_axis_has_at_least_three_distinct_labelled_ticks() {
        let cases: [(&[f64], bool); 9] = [
            (&[1.0, 30.0], false),
            (&[3.51, 3.52], false),
            (&[0.0, 0.0], false),
            (&[7.0], false),
            (&[1e15, 1.3e15], true),
            (&[1e12, 1e18], true),
            (&[2e-6, 3e-6], false),
            (&[1e9, 1.0001e9], false),
            (&[0.05, 4.2], true),
        ];
        for (values, log) in cases {
            let range = axis_range(values.iter().copied(), log).unwrap();
            readable(range, log);
        }
        assert!(axis_range([f64::NAN].into_iter(), false).is_none());
        assert!(axis_range([-1.0, 0.0].into_iter(), true).is_none());
    }

    #[test]
    fn overlay_renders_png_svg_and_a_page_with_the_image_inlined() {
        let overlay = Overlay {
            name: "loss".into(),
            x: "step".into(),
            y: "loss".into(),
            log_x: false,
            log_y: true,
            lines: vec![
                Line {
                    label: "t".into(),
                    points: vec![(1.0, 2.0), (2.0, 1.0), (3.0, 0.5)],
                    dashed: false,
                    colour: 1,
                },
                Line {
                    label: "HEAD~1: t".into(),
                    points: vec![(1.0, 3.0), (2.0, -1.0), (3.0, 1.0)],
                    dashed: true,
                    colour: 1,
                },
            ],
        };
        let images = render(std::slice::from_ref(&overlay)).unwrap();
        assert!(images[0].png.starts_with(b"\x89PNG"));
        assert!(images[0].svg.contains("HEAD~1: t") && images[0].svg.contains("loss (log scale)"));
        let page = html_page("plots", &images, &["skipped 1 point".into()]);
        assert!(page.contains("data:image/png;base64,iVBORw0KGgo") && page.contains("skipped 1"));
        let dir = tempfile::tempdir().unwrap();
        let written = write(&dir.path().join("out"), &images, &page).unwrap();
        assert_eq!(written.len(), 3);
        assert_eq!(
            std::fs::read_dir(dir.path().join("out")).unwrap().count(),
            3
        );
    }
}
