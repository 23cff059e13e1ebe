//! SLA / availability: uptime per target from a 0/1 metric (`up` for
//! scrape targets, `probe_success` for blackbox probes) against an
//! objective, and how much of the error budget each target burnt.
//!
//! Uptime is `avg by (BY) (avg_over_time(M{F}[period]))` at the end of the
//! period: the share of samples at 1. Downtime is `(1 - uptime) × period`,
//! the budget `(1 - objective) × period`, budget used their ratio (1 = the
//! budget exactly spent; above 1 the objective was missed). The chart
//! shows the same ratio over buckets of period / 48 (at least the step).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Ctx, Points, mean};
use crate::doc::{
    Bar, Cell, Chart, ChartKind, Column, Document, Highlight, Line, Section, Table, Tone, Unit,
    format_value,
};
use crate::error::RunError;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    /// The `by` labels' values joined with " / ".
    pub target: String,
    pub labels: BTreeMap<String, String>,
    /// Share of the period up (0..1).
    pub uptime: f64,
    pub downtime_seconds: f64,
    pub budget_seconds: f64,
    /// Downtime over budget.
    pub budget_used: f64,
    pub met: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlaReport {
    pub metric: String,
    pub objective: f64,
    pub period_seconds: f64,
    /// Worst first.
    pub targets: Vec<Target>,
    pub met: usize,
    pub breached: usize,
    /// Mean uptime over targets.
    pub mean_uptime: Option<f64>,
    #[serde(skip)]
    pub series: BTreeMap<String, Points>,
}

fn target_name(labels: &engine::Labels, by: &[String]) -> String {
    let parts: Vec<&str> = by
        .iter()
        .map(|b| labels.get(b).unwrap_or(""))
        .filter(|v| !v.is_empty())
        .collect();
    if parts.is_empty() {
        "(no labels)".into()
    } else {
        parts.join(" / ")
    }
}

pub(crate) fn compute(ctx: &Ctx<'_>) -> Result<SlaReport, RunError> {
    let o = &ctx.def.sla;
    let by = o.by.join(", ");
    let sel = ctx.selector(&o.metric, &[]);
    let period_s = (ctx.end_ms - ctx.start_ms) as f64 / 1000.0;
    let rows = ctx.instant(&format!(
        "avg by ({by}) (avg_over_time({sel}[{}]))",
        ctx.period_text()
    ))?;
    if rows.is_empty() {
        return Err(RunError::NoData(format!("no {sel} samples in the period")));
    }
    let budget = (1.0 - o.objective) * period_s;
    let mut targets: Vec<Target> = rows
        .iter()
        .map(|(l, uptime)| {
            let uptime = uptime.clamp(0.0, 1.0);
            let downtime = (1.0 - uptime) * period_s;
            Target {
                target: target_name(l, &o.by),
                labels: l
                    .iter()
                    .map(|x| (x.name.to_string(), x.value.to_string()))
                    .collect(),
                uptime,
                downtime_seconds: downtime,
                budget_seconds: budget,
                budget_used: downtime / budget,
                met: uptime >= o.objective,
            }
        })
        .collect();
    targets.sort_by(|a, b| a.uptime.total_cmp(&b.uptime).then(a.target.cmp(&b.target)));
    let bucket_ms = ((ctx.end_ms - ctx.start_ms) / 48)
        .max(ctx.step_ms)
        .max(60_000);
    let bucket = query::promql::format_duration_ms(bucket_ms);
    let series = ctx
        .range_between(
            &format!("avg by ({by}) (avg_over_time({sel}[{bucket}]))"),
            ctx.start_ms + bucket_ms,
            ctx.end_ms,
            bucket_ms,
        )?
        .into_iter()
        .map(|(l, p)| (target_name(&l, &o.by), p))
        .collect();
    let uptimes: Vec<f64> = targets.iter().map(|t| t.uptime).collect();
    Ok(SlaReport {
        metric: o.metric.clone(),
        objective: o.objective,
        period_seconds: period_s,
        met: targets.iter().filter(|t| t.met).count(),
        breached: targets.iter().filter(|t| !t.met).count(),
        mean_uptime: mean(&uptimes),
        targets,
        series,
    })
}

pub(crate) fn document(ctx: &Ctx<'_>, r: &SlaReport) -> Document {
    let o = &ctx.def.sla;
    let mut doc = super::new_document(ctx, serde_json::to_value(r).unwrap_or_default());
    let objective = format_value(Unit::Percent, r.objective);
    doc.highlights = vec![
        Highlight {
            label: format!("targets ({})", r.metric),
            value: r.targets.len().to_string(),
            tone: Tone::Neutral,
        },
        Highlight {
            label: format!("met the {objective} objective"),
            value: r.met.to_string(),
            tone: Tone::Good,
        },
        Highlight {
            label: "breached it".into(),
            value: r.breached.to_string(),
            tone: if r.breached == 0 {
                Tone::Good
            } else {
                Tone::Bad
            },
        },
        Highlight {
            label: "mean availability".into(),
            value: r
                .mean_uptime
                .map_or("—".into(), |u| format!("{:.3} %", u * 100.0)),
            tone: if r.mean_uptime.is_some_and(|u| u >= r.objective) {
                Tone::Good
            } else {
                Tone::Warn
            },
        },
    ];
    let worst: Vec<&Target> = r.targets.iter().take(o.top).collect();
    let lines: Vec<Line> = worst
        .iter()
        .filter_map(|t| {
            r.series.get(&t.target).map(|p| Line {
                name: t.target.clone(),
                points: super::downsample(p, super::CHART_POINTS),
                dashed: false,
            })
        })
        .collect();
    let summary = Section::new("Availability")
        .text(format!(
            "Availability is the share of {} samples at 1 over the period; the objective is {objective}, an error budget of {} per target.",
            r.metric,
            format_value(Unit::Seconds, (1.0 - r.objective) * r.period_seconds)
        ))
        .chart(Chart {
            title: format!("Availability of the {} least available targets", worst.len()),
            unit: Unit::Percent,
            kind: ChartKind::Line { lines },
            threshold: Some(("objective".into(), r.objective)),
        })
        .chart(Chart {
            title: "Error budget used".into(),
            unit: Unit::Percent,
            kind: ChartKind::Bar {
                bars: r
                    .targets
                    .iter()
                    .take(o.top * 2)
                    .map(|t| Bar {
                        label: t.target.clone(),
                        value: t.budget_used,
                        tone: if t.met { Tone::Good } else { Tone::Bad },
                    })
                    .collect(),
            },
            threshold: Some(("budget".into(), 1.0)),
        });
    let table = Section::new("Targets").table(Table {
        id: "targets".into(),
        title: "Availability by target, worst first".into(),
        columns: vec![
            Column::text("Target"),
            Column::num("Availability", Unit::Percent),
            Column::num("Downtime", Unit::Seconds),
            Column::num("Budget", Unit::Seconds),
            Column::num("Budget used", Unit::Percent),
            Column::text("Objective"),
        ],
        rows: r
            .targets
            .iter()
            .map(|t| {
                vec![
                    Cell::text(&t.target),
                    Cell::num(t.uptime),
                    Cell::num(t.downtime_seconds),
                    Cell::num(t.budget_seconds),
                    Cell::num(t.budget_used),
                    Cell::text(if t.met { "met" } else { "breached" }),
                ]
            })
            .collect(),
        empty: "No targets.".into(),
    });
    doc.sections = vec![summary, table];
    doc
}
