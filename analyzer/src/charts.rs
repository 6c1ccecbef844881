//! SVG charts drawn with plotters, as strings the HTML report inlines.
//!
//! Every chart is a line chart on two linear f64 axes; a logarithmic axis is drawn by plotting log10 of
//! the values and labelling the ticks with the values themselves, so one drawing function covers
//! time series, log-scaled latency and the HdrHistogram-style percentile plot. Ticks are chosen here
//! (1-2-5 steps, or decades) so that axes read well. Text inside the SVG is escaped by plotters.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, Result};

/// Series colours: a colour-blind-safe palette (Tableau 10), in order of use.
pub const PALETTE: [(u8, u8, u8); 8] = [
    (0x4e, 0x79, 0xa7),
    (0xf2, 0x8e, 0x2b),
    (0xe1, 0x57, 0x59),
    (0x59, 0xa1, 0x4f),
    (0x76, 0xb7, 0xb2),
    (0xb0, 0x7a, 0xa1),
    (0xed, 0xc9, 0x48),
    (0x9c, 0x75, 0x5f),
];

/// The hex form of a palette colour, for legends drawn in HTML.
pub fn palette_hex(i: usize) -> String {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

const FONT: &str = "Helvetica, Arial, sans-serif";
const AXIS_GREY: RGBColor = RGBColor(0x55, 0x5b, 0x66);
const GRID_GREY: RGBColor = RGBColor(0xe6, 0xe8, 0xec);

/// How an axis maps values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Linear, from zero (or the data's minimum) to a rounded maximum.
    Linear,
    /// Logarithmic, in decades.
    Log,
}

/// What the x axis shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    /// Seconds since the start of the run.
    Seconds,
    /// Percentiles, as quantiles q in [0, 1), spread logarithmically by 1 / (1 − q).
    Percentile,
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Line {
    /// The legend text (shown in HTML, escaped by the template).
    pub label: String,
    /// (x, y) points; `None` leaves a gap.
    pub points: Vec<(f64, Option<f64>)>,
    /// Palette index.
    pub color: usize,
    /// Dashed instead of solid.
    pub dashed: bool,
    /// Fill the area under the line (linear y axes only).
    pub fill: bool,
}

/// A vertical marker across a chart: something that happened at `x` (a change of the load).
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// Where, in x-axis units.
    pub x: f64,
    /// A short label drawn beside the marker's top (escaped by plotters).
    pub label: String,
}

/// A chart to draw.
#[derive(Debug, Clone)]
pub struct LineChart {
    /// A short name, for error messages.
    pub name: &'static str,
    /// The x axis.
    pub x: XAxis,
    /// The x axis caption.
    pub x_label: String,
    /// The y axis caption, with its unit.
    pub y_label: String,
    /// The y scale.
    pub y_scale: Scale,
    /// How y tick values are written.
    pub y_unit: Unit,
    /// The lines.
    pub lines: Vec<Line>,
    /// Vertical markers, drawn over the lines.
    pub marks: Vec<Mark>,
}

/// How tick values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A plain count (1.2k, 35k).
    Count,
    /// Milliseconds, switching to seconds at 1000 ms.
    Millis,
    /// A percentage.
    Percent,
}

/// The size every chart is drawn at (it scales with the page through the SVG's viewBox).
pub const SIZE: (u32, u32) = (640, 300);

impl LineChart {
    /// The legend, drawn in HTML above the chart so it never hides a line: (label, colour, dashed).
    /// Empty for a chart of one line, whose title says what it is.
    pub fn legend(&self) -> Vec<(String, String, bool)> {
        if self.lines.len() < 2 {
            return Vec::new();
        }
        self.lines
            .iter()
            .map(|l| (l.label.clone(), palette_hex(l.color), l.dashed))
            .collect()
    }

    /// The chart with `marks` drawn over it.
    pub fn with_marks(mut self, marks: &[Mark]) -> LineChart {
        self.marks = marks.to_vec();
        self
    }

    /// Whether there is anything to draw.
    pub fn has_data(&self) -> bool {
        self.lines
            .iter()
            .any(|l| l.points.iter().any(|p| p.1.is_some()))
    }

    /// Draws the chart as an SVG document.
    pub fn to_svg(&self) -> Result<String> {
        let mut svg = String::new();
        self.draw(&mut svg).map_err(|message| Error::Chart {
            name: self.name,
            message,
        })?;
        Ok(make_responsive(&svg))
    }

    fn tx(&self, x: f64) -> f64 {
        match self.x {
            XAxis::Seconds => x,
            XAxis::Percentile => (1.0 / (1.0 - x).max(1e-12)).log10(),
        }
    }

    fn ty(&self, y: f64) -> f64 {
        match self.y_scale {
            Scale::Linear => y,
            Scale::Log => y.max(1e-3).log10(),
        }
    }

    fn draw(&self, out: &mut String) -> std::result::Result<(), String> {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let xs = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| self.tx(p.0)));
        let ys = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().filter_map(|p| p.1.map(|y| self.ty(y))));
        let (x0, x1) = bounds(xs).unwrap_or((0.0, 1.0));
        let (y0, y1) = bounds(ys).unwrap_or((0.0, 1.0));
        let (x_range, x_ticks) = match self.x {
            XAxis::Seconds => linear_ticks(x0, x1, 8, false),
            XAxis::Percentile => log_ticks(0.0, x1.max(2.0), false),
        };
        let (y_range, y_ticks) = match self.y_scale {
            Scale::Linear => linear_ticks(0.0f64.min(y0), y1, 5, true),
            Scale::Log => log_ticks(y0, y1, true),
        };
        let root = SVGBackend::with_string(out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let x_spec = Axis {
            lo: x_range.0,
            hi: x_range.1,
            ticks: x_ticks,
        };
        let y_spec = Axis {
            lo: y_range.0,
            hi: y_range.1,
            ticks: y_ticks,
        };
        let mut chart = ChartBuilder::on(&root)
            .margin_top(14)
            .margin_right(34)
            .margin_left(8)
            .margin_bottom(6)
            .x_label_area_size(46)
            .y_label_area_size(72)
            .build_cartesian_2d(x_spec, y_spec)
            .map_err(|x| e(&x))?;
        let label_font = (FONT, 15).into_font().color(&AXIS_GREY);
        let x_fmt = |v: &f64| match self.x {
            XAxis::Seconds => format_count(*v),
            XAxis::Percentile => format_percentile_axis(*v),
        };
        let y_fmt = |v: &f64| {
            let value = if self.y_scale == Scale::Log {
                10f64.powf(*v)
            } else {
                *v
            };
            match self.y_unit {
                Unit::Count => format_count(value),
                Unit::Millis => format_ms_axis(value),
                Unit::Percent => format!("{}%", format_count(value)),
            }
        };
        chart
            .configure_mesh()
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(GRID_GREY)
            .axis_style(AXIS_GREY.mix(0.6))
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .axis_desc_style((FONT, 15).into_font().color(&AXIS_GREY))
            .label_style(label_font)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .draw()
            .map_err(|x| e(&x))?;
        for line in &self.lines {
            let (r, g, b) = PALETTE[line.color % PALETTE.len()];
            let color = RGBColor(r, g, b);
            let style = ShapeStyle {
                color: color.to_rgba(),
                filled: false,
                stroke_width: 2,
            };
            for segment in segments(&line.points) {
                let pts: Vec<(f64, f64)> = segment
                    .iter()
                    .map(|&(x, y)| (self.tx(x), self.ty(y)))
                    .collect();
                if line.fill && self.y_scale == Scale::Linear {
                    chart
                        .draw_series(AreaSeries::new(pts.iter().copied(), 0.0, color.mix(0.12)))
                        .map_err(|x| e(&x))?;
                }
                if line.dashed {
                    chart
                        .draw_series(DashedLineSeries::new(pts.iter().copied(), 6, 4, style))
                        .map_err(|x| e(&x))?;
                } else if pts.len() == 1 {
                    chart
                        .draw_series(pts.iter().map(|p| Circle::new(*p, 2, style.filled())))
                        .map_err(|x| e(&x))?;
                } else {
                    chart
                        .draw_series(LineSeries::new(pts.iter().copied(), style))
                        .map_err(|x| e(&x))?;
                }
            }
        }
        let marker = ShapeStyle {
            color: AXIS_GREY.mix(0.8),
            filled: false,
            stroke_width: 1,
        };
        let mark_font = (FONT, 13).into_font().color(&AXIS_GREY);
        for mark in &self.marks {
            let x = self.tx(mark.x);
            if !(x_range.0..=x_range.1).contains(&x) {
                continue;
            }
            let (lo, hi) = (y_range.0, y_range.1);
            chart
                .draw_series(DashedLineSeries::new([(x, lo), (x, hi)], 4, 3, marker))
                .map_err(|x| e(&x))?;
            // The label sits just right of the marker's top, or left of it near the right edge.
            let right_half = (x - x_range.0) > 0.7 * (x_range.1 - x_range.0);
            let pos = if right_half {
                Pos::new(HPos::Right, VPos::Top)
            } else {
                Pos::new(HPos::Left, VPos::Top)
            };
            let nudge = 0.01 * (x_range.1 - x_range.0);
            chart
                .draw_series(std::iter::once(Text::new(
                    mark.label.clone(),
                    (if right_half { x - nudge } else { x + nudge }, hi),
                    mark_font.clone().pos(pos),
                )))
                .map_err(|x| e(&x))?;
        }
        root.present().map_err(|x| e(&x))?;
        drop(chart);
        Ok(())
    }
}

/// A linear f64 axis whose ticks are exactly the ones chosen here.
#[derive(Debug, Clone)]
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = (self.hi - self.lo).max(f64::MIN_POSITIVE);
        let f = (value - self.lo) / span;
        limit.0 + (f * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Plotters asks for the bold (labelled) and light grid lines separately; only bold ones exist.
        if hint.max_num_points() == 0 || hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

/// Contiguous runs of defined points.
fn segments(points: &[(f64, Option<f64>)]) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    for &(x, y) in points {
        match y {
            Some(y) if y.is_finite() => current.push((x, y)),
            _ => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((a, b)) => Some((a.min(v), b.max(v))),
        })
}

/// A range covering [lo, hi] with round 1-2-5 ticks, about `target` of them.
fn linear_ticks(lo: f64, hi: f64, target: usize, headroom: bool) -> ((f64, f64), Vec<f64>) {
    let hi = if hi <= lo { lo + 1.0 } else { hi };
    let raw = (hi - lo) / target as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let start = (lo / step).floor() * step;
    let mut end = (hi / step).ceil() * step;
    if headroom && end - hi < step * 0.05 {
        end += step;
    }
    let ticks = (0..)
        .map(|i| start + f64::from(i) * step)
        .take_while(|t| *t <= end + step * 1e-9)
        .collect();
    ((start, end), ticks)
}

/// A range over whole decades of log10 values, with ticks at 1, (2, 5,) 10, …
fn log_ticks(lo: f64, hi: f64, intermediate: bool) -> ((f64, f64), Vec<f64>) {
    let start = lo.floor();
    let mut end = hi.ceil();
    if end <= start {
        end = start + 1.0;
    }
    let mut ticks = Vec::new();
    let few = end - start <= 3.0;
    let mut d = start;
    while d <= end + 1e-9 {
        ticks.push(d);
        if intermediate && few && d < end {
            ticks.push(d + 2f64.log10());
            ticks.push(d + 5f64.log10());
        }
        d += 1.0;
    }
    ((start, end), ticks)
}

/// 950 → "950", 1200 → "1.2k", 35000 → "35k", 2.5 → "2.5".
pub fn format_count(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        trim(format!("{:.1}", v / 1e6)) + "M"
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        trim(format!("{:.1}", v / 1e3)) + "k"
    } else if a >= 1.0 || a == 0.0 {
        trim(format!("{v:.1}"))
    } else {
        trim(format!("{v:.2}"))
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

fn format_ms_axis(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", format_count(ms / 1000.0))
    } else {
        format!("{} ms", trim(format!("{ms:.3}")))
    }
}

/// log10(1 / (1 − q)) → "0%", "90%", "99%", "99.9%", …
fn format_percentile_axis(v: f64) -> String {
    let q = 1.0 - 10f64.powf(-v);
    let pct = 100.0 * q;
    let decimals = (v.round() as i32 - 2).max(0) as usize;
    format!("{pct:.decimals$}%")
}

/// Lets the SVG scale with its container: keeps the viewBox, drops the fixed size.
fn make_responsive(svg: &str) -> String {
    let (w, h) = SIZE;
    svg.replacen(
        &format!("<svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\""),
        &format!("<svg viewBox=\"0 0 {w} {h}\" preserveAspectRatio=\"xMidYMid meet\" role=\"img\""),
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_round() {
        let ((a, b), t) = linear_ticks(0.0, 93.0, 5, false);
        assert_eq!((a, b), (0.0, 100.0));
        assert_eq!(t, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
    }

    #[test]
    fn percentile_axis_labels() {
        assert_eq!(format_percentile_axis(0.0), "0%");
        assert_eq!(format_percentile_axis(1.0), "90%");
        assert_eq!(format_percentile_axis(2.0), "99%");
        assert_eq!(format_percentile_axis(3.0), "99.9%");
        assert_eq!(format_percentile_axis(5.0), "99.999%");
    }

    #[test]
    fn counts_are_compact() {
        assert_eq!(format_count(950.0), "950");
        assert_eq!(format_count(1200.0), "1.2k");
        assert_eq!(format_count(35_000.0), "35k");
        assert_eq!(format_count(2_500_000.0), "2.5M");
        assert_eq!(format_count(0.25), "0.25");
    }

    #[test]
    fn hostile_text_in_a_chart_is_escaped() {
        let chart = LineChart {
            name: "test",
            x: XAxis::Seconds,
            x_label: "time (s)".into(),
            y_label: "<script>alert(1)</script>".into(),
            y_scale: Scale::Linear,
            y_unit: Unit::Count,
            marks: Vec::new(),
            lines: ["a", "b"]
                .iter()
                .enumerate()
                .map(|(i, l)| Line {
                    label: (*l).into(),
                    points: vec![(0.0, Some(1.0)), (1.0, Some(2.0))],
                    color: i,
                    dashed: false,
                    fill: false,
                })
                .collect(),
        };
        let svg = chart.to_svg().unwrap();
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.starts_with("<svg viewBox"), "{}", &svg[..80]);
    }
}
