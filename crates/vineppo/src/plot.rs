//! SVG charts for run reports (plotters' SVG backend: no font or system library needed): lines,
//! lines over bands (a mean over seeds with its spread), scatter plots and grouped bars.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points in x order.
    pub points: Vec<(f64, f64)>,
}

/// One group of bars (a run) in a bar chart.
#[derive(Debug, Clone, PartialEq)]
pub struct BarGroup {
    /// Legend label.
    pub label: String,
    /// One value per category.
    pub values: Vec<f64>,
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Colour of the `i`-th series.
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn range(values: impl Iterator<Item = f64>, zero_based: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if zero_based {
        lo = lo.min(0.0);
    }
    if hi - lo < 1e-12 {
        hi = lo + 1.0;
    }
    let pad = (hi - lo) * 0.05;
    (
        if zero_based && lo >= 0.0 {
            lo
        } else {
            lo - pad
        },
        hi + pad,
    )
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing chart: {e:?}")
}

/// A line with a shaded band around it (e.g. the mean over seeds and their min–max range).
#[derive(Debug, Clone, PartialEq)]
pub struct BandSeries {
    /// The line (legend label and points in x order).
    pub line: Series,
    /// `(x, lower, upper)` in x order; empty draws no band.
    pub band: Vec<(f64, f64, f64)>,
}

/// Draws a line chart with markers to `path` (SVG).
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    let banded: Vec<BandSeries> = series
        .iter()
        .map(|s| BandSeries {
            line: s.clone(),
            band: Vec::new(),
        })
        .collect();
    band_chart(path, title, x_label, y_label, &banded)
}

fn finite(p: &(f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite()
}

/// Draws lines with markers, each over a translucent band of its colour, to `path` (SVG). Bands
/// are drawn first so every line stays visible; axis ranges cover lines and bands.
pub fn band_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[BandSeries],
) -> Result<()> {
    let root = SVGBackend::new(path, (720, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let xs = series.iter().flat_map(|s| {
        let band = s.band.iter().map(|b| b.0);
        s.line.points.iter().map(|p| p.0).chain(band)
    });
    let ys = series.iter().flat_map(|s| {
        let band = s.band.iter().flat_map(|b| [b.1, b.2]);
        s.line.points.iter().map(|p| p.1).chain(band)
    });
    let (x0, x1) = range(xs, true);
    let (y0, y1) = range(ys, true);
    let mut chart = xy_chart(&root, title, x_label, y_label, x0..x1, y0..y1)?;
    draw_bands(&mut chart, series)?;
    for (i, s) in series.iter().enumerate() {
        let c = color(i);
        let pts: Vec<(f64, f64)> = s.line.points.iter().copied().filter(finite).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(err)?
            .label(s.line.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))
            .map_err(err)?;
    }
    if series.len() > 1 || series.first().is_some_and(|s| !s.line.label.is_empty()) {
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    }
    root.present().map_err(err)
}

/// A titled chart over `x × y` on `root` with labelled axes and a faint mesh, drawn and ready
/// for series (the frame `band_chart` and `scatter_chart` share).
fn xy_chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> Result<ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x, y)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// Shades each series' band (translucent, in its colour) as one polygon: upper edge left to
/// right, lower edge back.
fn draw_bands<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    series: &[BandSeries],
) -> Result<()> {
    for (i, s) in series.iter().enumerate() {
        let band: Vec<(f64, f64, f64)> = s
            .band
            .iter()
            .copied()
            .filter(|b| b.0.is_finite() && b.1.is_finite() && b.2.is_finite())
            .collect();
        if band.len() < 2 {
            continue;
        }
        let outline: Vec<(f64, f64)> = band
            .iter()
            .map(|b| (b.0, b.2))
            .chain(band.iter().rev().map(|b| (b.0, b.1)))
            .collect();
        let fill = color(i).mix(0.18).filled();
        chart
            .draw_series(std::iter::once(Polygon::new(outline, fill)))
            .map_err(err)?;
    }
    Ok(())
}

fn draw_legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .position(position)
        .draw()
        .map_err(err)
}

/// Draws point clouds (one colour per series) and, when `diagonal` is set, the line `y = x`
/// over the shared range: predicted against true values, where points on the diagonal are exact.
pub fn scatter_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    diagonal: bool,
) -> Result<()> {
    let root = SVGBackend::new(path, (560, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let all = || {
        series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(finite)
    };
    let (mut x0, mut x1) = range(all().map(|p| p.0), true);
    let (mut y0, mut y1) = range(all().map(|p| p.1), true);
    if diagonal {
        (x0, y0) = (x0.min(y0), x0.min(y0));
        (x1, y1) = (x1.max(y1), x1.max(y1));
    }
    let mut chart = xy_chart(&root, title, x_label, y_label, x0..x1, y0..y1)?;
    if diagonal {
        let lo = x0.max(y0);
        let hi = x1.min(y1);
        chart
            .draw_series(LineSeries::new([(lo, lo), (hi, hi)], BLACK.mix(0.4)))
            .map_err(err)?;
    }
    for (i, s) in series.iter().enumerate() {
        let c = color(i);
        let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(finite).collect();
        chart
            .draw_series(
                pts.into_iter()
                    .map(|p| Circle::new(p, 3, c.mix(0.6).filled())),
            )
            .map_err(err)?
            .label(s.label.clone())
            .legend(move |(x, y)| Circle::new((x + 6, y), 4, c.filled()));
    }
    if !series.is_empty() {
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    root.present().map_err(err)
}

/// Draws grouped vertical bars: one cluster per category, one bar per group. Each cluster takes
/// `groups + 1` slots of a segmented axis (the last one is the gap), so labels sit on slots.
pub fn bar_chart(
    path: &Path,
    title: &str,
    y_label: &str,
    categories: &[String],
    groups: &[BarGroup],
) -> Result<()> {
    let root = SVGBackend::new(path, (720, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (_, y1) = range(groups.iter().flat_map(|g| g.values.iter().copied()), true);
    let per = groups.len().max(1) as u32 + 1;
    let slots = categories.len().max(1) as u32 * per;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0u32..slots).into_segmented(), 0f64..y1)
        .map_err(err)?;
    let cats = categories.to_vec();
    let label_slot = (per - 1) / 2;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE.mix(0.0))
        .x_labels(slots as usize)
        .x_label_formatter(&move |x| match x {
            SegmentValue::CenterOf(s) if s % per == label_slot => {
                cats.get((s / per) as usize).cloned().unwrap_or_default()
            }
            _ => String::new(),
        })
        .y_desc(y_label)
        .draw()
        .map_err(err)?;
    for (gi, g) in groups.iter().enumerate() {
        let c = color(gi);
        let bars = g.values.iter().enumerate().map(move |(ci, &v)| {
            let slot = ci as u32 * per + gi as u32;
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(slot), 0.0),
                    (SegmentValue::Exact(slot + 1), v.max(0.0)),
                ],
                c.filled(),
            );
            bar.set_margin(0, 0, 2, 2);
            bar
        });
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(g.label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_valid_svg_with_every_label() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.svg");
        let s = vec![
            Series {
                label: "vine".into(),
                points: vec![(0.0, 0.3), (1.0, 0.4), (2.0, f64::NAN)],
            },
            Series {
                label: "ppo".into(),
                points: vec![(0.0, 0.3), (2.0, 0.35)],
            },
        ];
        line_chart(&p, "Held-out accuracy", "iteration", "pass@1", &s).unwrap();
        let svg = std::fs::read_to_string(&p).unwrap();
        for needle in ["<svg", "vine", "ppo", "Held-out accuracy"] {
            assert!(svg.contains(needle), "{needle} missing");
        }
        let b = dir.path().join("b.svg");
        bar_chart(
            &b,
            "Time per stage",
            "seconds",
            &["generate".into(), "update".into()],
            &[BarGroup {
                label: "vine".into(),
                values: vec![3.0, 1.0],
            }],
        )
        .unwrap();
        assert!(std::fs::read_to_string(&b).unwrap().contains("generate"));
        // Empty input still draws a chart instead of failing.
        line_chart(&p, "empty", "x", "y", &[]).unwrap();
        scatter_chart(&p, "empty", "x", "y", &[], true).unwrap();
    }

    #[test]
    fn bands_are_drawn_under_their_lines_and_widen_the_axes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("band.svg");
        let s = BandSeries {
            line: Series {
                label: "vineppo".into(),
                points: vec![(0.0, 0.3), (10.0, 0.5)],
            },
            band: vec![(0.0, 0.25, 0.35), (10.0, 0.4, 0.9)],
        };
        band_chart(&p, "Accuracy", "steps", "pass@1", &[s]).unwrap();
        let svg = std::fs::read_to_string(&p).unwrap();
        let polygon = svg.find("<polygon").expect("band polygon");
        let line = svg
            .match_indices("<polyline")
            .map(|(i, _)| i)
            .find(|&i| svg[i..].split('>').next().unwrap().contains("#1F77B4"))
            .expect("mean line in the first palette colour");
        assert!(polygon < line, "band drawn after the line would hide it");
        // The y axis reaches the band's top (0.9), not just the line's (0.5).
        assert!(svg.contains("\n0.9\n"), "no 0.9 tick");
        let q = dir.path().join("scatter.svg");
        let pts = Series {
            label: "critic".into(),
            points: vec![(0.1, 0.2), (0.8, 0.5)],
        };
        scatter_chart(&q, "Predicted vs true", "true", "predicted", &[pts], true).unwrap();
        let svg = std::fs::read_to_string(&q).unwrap();
        assert!(svg.contains("critic") && svg.matches("<circle").count() >= 2);
    }
}
