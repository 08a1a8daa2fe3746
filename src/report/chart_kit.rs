//! What every chart of the report and of `cegraph plots` draws with: the embedded font, the
//! page width, variant colours, the legend box, and [`render_plot`], which draws a [`Plot`]
//! as PNG and SVG.

use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::ReportError;

static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-subset.ttf");
pub(super) const FONT: &str = "sans-serif";
pub(super) const WIDTH: u32 = 1200;

pub(super) fn ensure_font() -> Result<(), ReportError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font(FONT, FontStyle::Normal, FONT_BYTES)
                .map_err(|_| "assets/fonts/DejaVuSans-subset.ttf is not a valid font".to_string())
        })
        .clone()
        .map_err(ReportError::Font)
}

/// The colour of the i-th variant of the table (the baseline, first, is black).
pub fn variant_colour(index: usize) -> RGBColor {
    const PALETTE: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    if index == 0 {
        RGBColor(0, 0, 0)
    } else {
        PALETTE[(index - 1) % PALETTE.len()]
    }
}

/// CSS hex of [`variant_colour`].
pub fn variant_colour_hex(index: usize) -> String {
    let RGBColor(r, g, b) = variant_colour(index);
    format!("#{r:02x}{g:02x}{b:02x}")
}

pub(super) type DrawResult = Result<(), String>;

pub(super) fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The legend box every chart uses, at `position`.
pub(super) fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(190, 190, 190))
        .draw()
        .map_err(err)
}

/// Something drawable on any plotters backend.
pub(super) trait Plot {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
}

pub(super) fn render_plot<P: Plot>(name: &str, plot: &P) -> Result<(Vec<u8>, String), ReportError> {
    let chart_err = |message: String| ReportError::Chart {
        chart: name.into(),
        message,
    };
    let (w, h) = plot.size();
    let mut pixels = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        plot.draw(&root).map_err(chart_err)?;
        root.present().map_err(|e| chart_err(e.to_string()))?;
    }
    let mut png_bytes = Vec::new();
    {
        let png_err = |e: png::EncodingError| ReportError::Png {
            chart: name.into(),
            message: e.to_string(),
        };
        let mut encoder = png::Encoder::new(&mut png_bytes, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Best);
        encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
        let mut writer = encoder.write_header().map_err(png_err)?;
        writer.write_image_data(&pixels).map_err(png_err)?;
        writer.finish().map_err(png_err)?;
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        plot.draw(&root).map_err(chart_err)?;
        root.present().map_err(|e| chart_err(e.to_string()))?;
    }
    Ok((png_bytes, svg))
}

pub(super) fn message<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, text: &str) -> DrawResult {
    root.draw(&Text::new(
        text.to_string(),
        (40, 40),
        (FONT, 18).into_font().color(&RGBColor(120, 0, 0)),
    ))
    .map_err(err)
}
