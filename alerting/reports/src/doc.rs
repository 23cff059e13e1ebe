//! The report document: what every kind computes and every format renders.
//! A document is a title, a few highlights, and sections of paragraphs,
//! charts and tables; `data` carries the kind's typed result for JSON
//! readers.

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use crate::config::Unit;

/// How a value should be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tone {
    Neutral,
    Good,
    Warn,
    Bad,
}

/// A headline number.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Highlight {
    pub label: String,
    pub value: String,
    pub tone: Tone,
}

/// A table cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Cell {
    Text(String),
    /// Rendered with the column's unit; NaN and missing are "—", +Inf "∞".
    Num(Option<f64>),
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    pub fn num(v: f64) -> Cell {
        Cell::Num(Some(v))
    }

    pub fn opt(v: Option<f64>) -> Cell {
        Cell::Num(v)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Column {
    pub title: String,
    /// `None` for text columns.
    pub unit: Option<Unit>,
}

impl Column {
    pub fn text(title: &str) -> Column {
        Column {
            title: title.into(),
            unit: None,
        }
    }

    pub fn num(title: &str, unit: Unit) -> Column {
        Column {
            title: title.into(),
            unit: Some(unit),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    /// A file-name-safe id (`hosts`, `filesystems`): the CSV file's name.
    pub id: String,
    pub title: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    /// What to say when there are no rows.
    pub empty: String,
}

/// One line of a line chart; `points` are `(ms, value)`, NaN breaks it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub name: String,
    pub points: Vec<(i64, f64)>,
    /// Drawn dashed (a previous period, a forecast).
    pub dashed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub tone: Tone,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ChartKind {
    Line { lines: Vec<Line> },
    Bar { bars: Vec<Bar> },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chart {
    pub title: String,
    pub unit: Unit,
    #[serde(flatten)]
    pub kind: ChartKind,
    /// A reference line (an objective, a threshold).
    pub threshold: Option<(String, f64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "block", rename_all = "lowercase")]
pub enum Block {
    Text { text: String },
    Chart(Chart),
    Table(Table),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section {
    pub title: String,
    pub blocks: Vec<Block>,
}

impl Section {
    pub fn new(title: &str) -> Section {
        Section {
            title: title.into(),
            blocks: Vec::new(),
        }
    }

    pub fn text(mut self, t: impl Into<String>) -> Section {
        self.blocks.push(Block::Text { text: t.into() });
        self
    }

    pub fn chart(mut self, c: Chart) -> Section {
        self.blocks.push(Block::Chart(c));
        self
    }

    pub fn table(mut self, t: Table) -> Section {
        self.blocks.push(Block::Table(t));
        self
    }
}

/// A computed report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    pub report: String,
    pub kind: String,
    pub title: String,
    pub generated_at: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The filter as written (empty: none).
    pub filter: String,
    pub highlights: Vec<Highlight>,
    pub sections: Vec<Section>,
    /// The kind's typed result.
    pub data: serde_json::Value,
}

impl Document {
    /// Every table, in order.
    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        self.sections.iter().flat_map(|s| {
            s.blocks.iter().filter_map(|b| match b {
                Block::Table(t) => Some(t),
                _ => None,
            })
        })
    }
}

/// Formats a value for people: `95.0 %`, `12.3 GiB`, `3h 20m`, `∞`.
pub fn format_value(unit: Unit, v: f64) -> String {
    if v.is_nan() {
        return "—".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "∞".into() } else { "-∞".into() };
    }
    match unit {
        Unit::Percent => format!("{:.1} %", v * 100.0),
        Unit::Bytes => format_bytes(v),
        Unit::Seconds => format_seconds(v),
        Unit::Count => {
            if v.fract() == 0.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        }
        Unit::Number => format_number(v),
    }
}

fn format_number(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e6).contains(&a) {
        format!("{v:.3e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn format_bytes(v: f64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut x = v.abs();
    let mut i = 0;
    while x >= 1024.0 && i + 1 < UNITS.len() {
        x /= 1024.0;
        i += 1;
    }
    let sign = if v < 0.0 { "-" } else { "" };
    if i == 0 {
        format!("{sign}{x:.0} B")
    } else {
        format!("{sign}{x:.1} {}", UNITS[i])
    }
}

/// `3d 4h`, `2h 5m`, `4m 10s`, `12s`.
pub fn format_seconds(v: f64) -> String {
    let sign = if v < 0.0 { "-" } else { "" };
    let s = v.abs().round() as u64;
    let (d, h, m, sec) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    // The larger unit, and the next one unless it is zero.
    let pair = |a: u64, ua: &str, b: u64, ub: &str| {
        if b == 0 {
            format!("{a}{ua}")
        } else {
            format!("{a}{ua} {b}{ub}")
        }
    };
    let body = if d > 0 {
        pair(d, "d", h, "h")
    } else if h > 0 {
        pair(h, "h", m, "m")
    } else if m > 0 {
        pair(m, "m", sec, "s")
    } else {
        format!("{sec}s")
    };
    format!("{sign}{body}")
}

/// Formats a change in percentage points or relative percent.
pub fn format_signed_percent(v: f64, suffix: &str) -> String {
    if !v.is_finite() {
        return format_value(Unit::Percent, v);
    }
    // No "-0.0": a change that rounds to nothing is "+0.0".
    let tenths = (v * 1000.0).round();
    let shown = if tenths == 0.0 { 0.0 } else { tenths / 10.0 };
    format!("{shown:+.1} {suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_well() {
        assert_eq!(format_value(Unit::Percent, 0.9512), "95.1 %");
        assert_eq!(format_value(Unit::Bytes, 1536.0), "1.5 KiB");
        assert_eq!(format_value(Unit::Bytes, 3.0 * 1024f64.powi(3)), "3.0 GiB");
        assert_eq!(format_value(Unit::Bytes, 12.0), "12 B");
        assert_eq!(
            format_value(Unit::Seconds, 3.0 * 86400.0 + 4.0 * 3600.0),
            "3d 4h"
        );
        assert_eq!(format_value(Unit::Seconds, 125.0), "2m 5s");
        assert_eq!(format_value(Unit::Seconds, 2700.0), "45m");
        assert_eq!(format_value(Unit::Seconds, 86400.0), "1d");
        assert_eq!(format_signed_percent(-0.00001, "pp"), "+0.0 pp");
        assert_eq!(format_value(Unit::Count, 3.0), "3");
        assert_eq!(format_value(Unit::Number, f64::INFINITY), "∞");
        assert_eq!(format_value(Unit::Number, f64::NAN), "—");
        assert_eq!(format_value(Unit::Number, 4.256), "4.26");
        assert_eq!(format_signed_percent(0.05, "pp"), "+5.0 pp");
        assert_eq!(format_signed_percent(-0.125, "%"), "-12.5 %");
    }
}
