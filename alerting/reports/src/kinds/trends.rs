//! Trends: key metrics this period against the previous one. Each metric
//! is a PromQL expression (`$filter`, `$window`, `$period` expanded),
//! evaluated over both periods in one range query at the report's step;
//! for every series it gives: mean and maximum in each period, the change
//! of the mean (absolute and relative). The chart overlays the previous
//! period (dashed, shifted by one period) on this one.

use serde::Serialize;

use super::{Ctx, downsample, finite, label_text, mean};
use crate::config::{Unit, expand};
use crate::doc::{
    Cell, Chart, ChartKind, Column, Document, Highlight, Line, Section, Table, Tone,
    format_signed_percent, format_value,
};
use crate::error::RunError;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendRow {
    pub metric: String,
    /// The series' labels (`{}` for an aggregate).
    pub series: String,
    pub unit: Unit,
    pub current_mean: Option<f64>,
    pub previous_mean: Option<f64>,
    pub current_max: Option<f64>,
    pub previous_max: Option<f64>,
    /// `current_mean - previous_mean`.
    pub change: Option<f64>,
    /// `change / |previous_mean|`.
    pub relative_change: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendsReport {
    pub rows: Vec<TrendRow>,
    #[serde(skip)]
    pub charts: Vec<Chart>,
}

fn max_of(v: &[f64]) -> Option<f64> {
    v.iter().copied().reduce(f64::max)
}

pub(crate) fn compute(ctx: &Ctx<'_>) -> Result<TrendsReport, RunError> {
    let period_ms = ctx.end_ms - ctx.start_ms;
    let window_ms = ctx.step_ms.max(300_000);
    let mut rows = Vec::new();
    let mut charts = Vec::new();
    for m in &ctx.def.trends.metrics {
        let q = expand(
            &m.expr,
            &[
                ("filter", &ctx.def.filter.promql()),
                ("window", &query::promql::format_duration_ms(window_ms)),
                ("period", &ctx.period_text()),
            ],
        );
        let result = ctx.range_between(&q, ctx.start_ms - period_ms, ctx.end_ms, ctx.step_ms)?;
        let mut first_lines = None;
        for (labels, points) in &result {
            let (prev, cur): (super::Points, super::Points) =
                points.iter().copied().partition(|p| p.0 <= ctx.start_ms);
            let (pv, cv) = (finite(&prev), finite(&cur));
            let (pm, cm) = (mean(&pv), mean(&cv));
            let change = cm.zip(pm).map(|(c, p)| c - p);
            rows.push(TrendRow {
                metric: m.name.clone(),
                series: label_text(labels),
                unit: m.unit,
                current_mean: cm,
                previous_mean: pm,
                current_max: max_of(&cv),
                previous_max: max_of(&pv),
                change,
                relative_change: change
                    .zip(pm)
                    .and_then(|(d, p)| (p != 0.0).then(|| d / p.abs())),
            });
            if first_lines.is_none() {
                let shifted: Vec<(i64, f64)> =
                    prev.iter().map(|&(t, v)| (t + period_ms, v)).collect();
                first_lines = Some(vec![
                    Line {
                        name: "this period".into(),
                        points: downsample(&cur, super::CHART_POINTS),
                        dashed: false,
                    },
                    Line {
                        name: "previous period".into(),
                        points: downsample(&shifted, super::CHART_POINTS),
                        dashed: true,
                    },
                ]);
            }
        }
        if let Some(lines) = first_lines {
            let suffix = if result.len() > 1 {
                format!(" ({})", label_text(&result[0].0))
            } else {
                String::new()
            };
            charts.push(Chart {
                title: format!("{}{suffix}", m.name),
                unit: m.unit,
                kind: ChartKind::Line { lines },
                threshold: None,
            });
        }
    }
    if rows.is_empty() {
        return Err(RunError::NoData(
            "none of the trend metrics has data in this period or the previous one".into(),
        ));
    }
    Ok(TrendsReport { rows, charts })
}

fn change_text(r: &TrendRow) -> String {
    match (r.change, r.unit) {
        (None, _) => "—".into(),
        (Some(d), Unit::Percent) => format_signed_percent(d, "pp"),
        (Some(d), u) => {
            let s = format_value(u, d.abs());
            if d < 0.0 {
                format!("-{s}")
            } else {
                format!("+{s}")
            }
        }
    }
}

pub(crate) fn document(ctx: &Ctx<'_>, r: &TrendsReport) -> Document {
    let mut doc = super::new_document(ctx, serde_json::to_value(r).unwrap_or_default());
    doc.highlights = r
        .rows
        .iter()
        .filter(|x| x.series == "{}")
        .take(5)
        .map(|x| Highlight {
            label: x.metric.clone(),
            value: format!(
                "{} ({})",
                x.current_mean
                    .map_or("—".into(), |v| format_value(x.unit, v)),
                change_text(x)
            ),
            tone: Tone::Neutral,
        })
        .collect();
    let mut charts = Section::new("This period against the previous one")
        .text("Solid: this period; dashed: the previous period, shifted onto this one.");
    for c in &r.charts {
        charts = charts.chart(c.clone());
    }
    let table = Section::new("Changes").table(Table {
        id: "trends".into(),
        title: "Mean and maximum, this period and the previous".into(),
        columns: vec![
            Column::text("Metric"),
            Column::text("Series"),
            Column::text("Mean"),
            Column::text("Previous mean"),
            Column::text("Change"),
            Column::num("Relative change", Unit::Percent),
            Column::text("Max"),
            Column::text("Previous max"),
        ],
        rows: r
            .rows
            .iter()
            .map(|x| {
                let f =
                    |v: Option<f64>| Cell::text(v.map_or("—".into(), |v| format_value(x.unit, v)));
                vec![
                    Cell::text(&x.metric),
                    Cell::text(&x.series),
                    f(x.current_mean),
                    f(x.previous_mean),
                    Cell::text(change_text(x)),
                    Cell::opt(x.relative_change),
                    f(x.current_max),
                    f(x.previous_max),
                ]
            })
            .collect(),
        empty: "No data.".into(),
    });
    doc.sections = vec![charts, table];
    doc
}
