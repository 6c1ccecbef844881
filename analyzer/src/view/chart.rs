//! Chart specifications shared by the single-run and comparison views.

use super::{ChartView, LegendView};
use crate::analysis::RunAnalysis;
use crate::charts::{Line, LineChart, Scale, Unit, XAxis};
use crate::error::Result;

pub(super) fn seconds_line(
    r: &RunAnalysis,
    label: &str,
    color: usize,
    values: impl Iterator<Item = Option<f64>>,
) -> Line {
    Line {
        label: label.into(),
        points: r
            .timeseries
            .t_s
            .iter()
            .map(|&t| f64::from(t))
            .zip(values)
            .collect(),
        color,
        dashed: false,
        fill: false,
    }
}

pub(super) fn chart(
    id: &str,
    title: &str,
    caption: &str,
    spec: &LineChart,
) -> Result<Option<ChartView>> {
    if !spec.has_data() {
        return Ok(None);
    }
    Ok(Some(ChartView {
        id: id.into(),
        title: title.into(),
        caption: caption.into(),
        svg: spec.to_svg()?,
        legend: spec
            .legend()
            .into_iter()
            .map(|(label, color, dashed)| LegendView {
                label,
                color,
                style: if dashed {
                    "dashed".into()
                } else {
                    String::new()
                },
            })
            .collect(),
    }))
}

pub(super) fn time_chart(
    name: &'static str,
    y_label: &str,
    y_scale: Scale,
    y_unit: Unit,
    lines: Vec<Line>,
) -> LineChart {
    LineChart {
        name,
        x: XAxis::Seconds,
        x_label: "time since start (s)".into(),
        y_label: y_label.into(),
        y_scale,
        y_unit,
        lines,
        marks: Vec::new(),
    }
}

pub(super) fn distribution_chart(lines: Vec<Line>) -> LineChart {
    LineChart {
        name: "distribution",
        x: XAxis::Percentile,
        x_label: "percentile".into(),
        y_label: "latency".into(),
        y_scale: Scale::Log,
        y_unit: Unit::Millis,
        lines,
        marks: Vec::new(),
    }
}

pub(super) fn dist_points(points: &[(f64, f64)]) -> Vec<(f64, Option<f64>)> {
    points.iter().map(|&(q, v)| (q, Some(v))).collect()
}
