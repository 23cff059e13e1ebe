//! Hand-written inline SVG charts: line charts over time (NaN breaks a
//! line; dashed lines for a previous period) and horizontal bar charts for
//! rankings, each with an optional reference line. Sizes are in a fixed
//! viewBox that scales to the page width; text uses the page's font.

use std::fmt::Write;

use chrono::DateTime;

use crate::doc::{Bar, Chart, ChartKind, Line, Tone, Unit, format_value};

const WIDTH: f64 = 720.0;
/// Okabe-Ito-like colours that stay apart for colour-blind readers and in
/// greyscale print.
const PALETTE: [&str; 8] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#7a6a00", "#444444",
];

pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn tone_colour(t: Tone) -> &'static str {
    match t {
        Tone::Neutral => "#0072b2",
        Tone::Good => "#009e73",
        Tone::Warn => "#e69f00",
        Tone::Bad => "#d55e00",
    }
}

/// A round tick step near `range / 4`.
fn nice_step(range: f64) -> f64 {
    if !(range.is_finite() && range > 0.0) {
        return 1.0;
    }
    let raw = range / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// `(low, high, step)` covering the values, starting at 0 unless the
/// values sit far above it; whole steps for counts, at most 100 % for
/// ratios that never exceed it.
fn scale(values: impl Iterator<Item = f64>, unit: Unit) -> (f64, f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0, 0.25);
    }
    let ratio_max = unit == Unit::Percent && hi <= 1.0;
    if lo >= 0.0 && lo <= hi * 0.5 {
        lo = 0.0;
    }
    if hi - lo < 1e-12 {
        let pad = if hi == 0.0 { 1.0 } else { hi.abs() * 0.1 };
        let non_negative = lo >= 0.0;
        lo -= pad;
        hi += pad;
        if non_negative && lo < 0.0 {
            lo = 0.0;
        }
    }
    let mut step = nice_step(hi - lo);
    if unit == Unit::Count {
        step = step.max(1.0);
    }
    let lo = (lo / step).floor() * step;
    let mut hi = ((hi / step).ceil() * step).max(lo + step);
    if ratio_max && hi > 1.0 && lo < 1.0 {
        hi = 1.0;
    }
    (lo, hi, step)
}

fn axis_label(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Percent => {
            let p = v * 100.0;
            if (p - p.round()).abs() < 1e-9 {
                format!("{p:.0}%")
            } else {
                format!("{p:.1}%")
            }
        }
        _ => format_value(unit, v),
    }
}

fn time_label(ms: i64, span_ms: i64) -> String {
    let Some(t) = DateTime::from_timestamp_millis(ms) else {
        return String::new();
    };
    if span_ms > 3 * 86_400_000 {
        t.format("%b %-d").to_string()
    } else if span_ms > 86_400_000 {
        t.format("%b %-d %H:%M").to_string()
    } else {
        t.format("%H:%M").to_string()
    }
}

fn open_svg(out: &mut String, height: f64, title: &str, class: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart {class}" viewBox="0 0 {WIDTH} {height}" width="100%" preserveAspectRatio="xMidYMid meet" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = escape(title)
    );
}

fn empty(out: &mut String, title: &str) {
    open_svg(out, 60.0, title, "empty");
    let _ = write!(
        out,
        r##"<text x="{}" y="34" text-anchor="middle" font-size="13" fill="#666">No data in this period</text></svg>"##,
        WIDTH / 2.0
    );
}

/// Renders a chart as an `<svg>` element.
pub(crate) fn chart(c: &Chart) -> String {
    match &c.kind {
        ChartKind::Line { lines } => line_chart(c, lines),
        ChartKind::Bar { bars } => bar_chart(c, bars),
    }
}

fn line_chart(c: &Chart, lines: &[Line]) -> String {
    let mut out = String::new();
    let points = || lines.iter().flat_map(|l| l.points.iter());
    if points().all(|p| !p.1.is_finite()) {
        empty(&mut out, &c.title);
        return out;
    }
    let (left, right, top, plot_h) = (60.0, 16.0, 12.0, 200.0);
    let per_row = 3usize;
    let legend_rows = lines.len().div_ceil(per_row) as f64;
    let height = top + plot_h + 26.0 + legend_rows * 18.0 + 6.0;
    let (t0, t1) = points().fold((i64::MAX, i64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let span = (t1 - t0).max(1);
    let (lo, hi, step) = scale(
        points().map(|p| p.1).chain(c.threshold.iter().map(|t| t.1)),
        c.unit,
    );
    let pw = WIDTH - left - right;
    let x = |t: i64| left + (t - t0) as f64 / span as f64 * pw;
    let y = |v: f64| top + plot_h - (v - lo) / (hi - lo) * plot_h;
    open_svg(&mut out, height, &c.title, "line");
    // Grid and y labels.
    let mut v = lo;
    while v <= hi + step * 1e-6 {
        let yy = y(v);
        let _ = write!(
            out,
            r##"<line x1="{left}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd" stroke-width="1"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11" fill="#555">{}</text>"##,
            WIDTH - right,
            left - 6.0,
            yy + 4.0,
            escape(&axis_label(c.unit, v))
        );
        v += step;
    }
    // X labels.
    for i in 0..=4 {
        let t = t0 + span * i / 4;
        let anchor = match i {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="{anchor}" font-size="11" fill="#555">{}</text>"##,
            x(t),
            top + plot_h + 16.0,
            escape(&time_label(t, span))
        );
    }
    let _ = write!(
        out,
        r##"<line x1="{left}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#999" stroke-width="1"/>"##,
        WIDTH - right,
        top + plot_h,
        top + plot_h
    );
    if let Some((label, tv)) = &c.threshold {
        let yy = y(*tv);
        let _ = write!(
            out,
            r##"<line class="threshold" x1="{left}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#d55e00" stroke-width="1" stroke-dasharray="2 3"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10" fill="#d55e00">{}</text>"##,
            WIDTH - right,
            WIDTH - right,
            yy - 3.0,
            escape(label)
        );
    }
    for (i, l) in lines.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut d = String::new();
        let mut pen_down = false;
        for &(t, v) in &l.points {
            if !v.is_finite() {
                pen_down = false;
                continue;
            }
            let _ = write!(
                d,
                "{}{:.1},{:.1}",
                if pen_down { " L" } else { " M" },
                x(t),
                y(v.clamp(lo, hi))
            );
            pen_down = true;
        }
        let dash = if l.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<path class="series" d="{}" fill="none" stroke="{colour}" stroke-width="1.6" stroke-linejoin="round"{dash}><title>{}</title></path>"#,
            d.trim_start(),
            escape(&l.name)
        );
        let row = (i / per_row) as f64;
        let col = (i % per_row) as f64;
        let lx = left + col * (pw / per_row as f64);
        let ly = top + plot_h + 34.0 + row * 18.0;
        let _ = write!(
            out,
            r##"<line x1="{lx:.1}" x2="{:.1}" y1="{ly:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="3"{dash}/><text x="{:.1}" y="{:.1}" font-size="11" fill="#222">{}</text>"##,
            lx + 18.0,
            lx + 24.0,
            ly + 4.0,
            escape(&truncate(&l.name, 34))
        );
    }
    out.push_str("</svg>");
    out
}

fn bar_chart(c: &Chart, bars: &[Bar]) -> String {
    let mut out = String::new();
    let shown: Vec<&Bar> = bars.iter().filter(|b| b.value.is_finite()).collect();
    if shown.is_empty() {
        empty(&mut out, &c.title);
        return out;
    }
    let (label_w, value_w, row_h, top) = (210.0, 80.0, 22.0, 6.0);
    let footer = if c.threshold.is_some() { 14.0 } else { 0.0 };
    let height = top + shown.len() as f64 * row_h + 8.0 + footer;
    let max = shown
        .iter()
        .map(|b| b.value)
        .chain(c.threshold.iter().map(|t| t.1))
        .fold(0.0f64, f64::max);
    let max = if max > 0.0 { max } else { 1.0 };
    let bw = WIDTH - label_w - value_w;
    open_svg(&mut out, height, &c.title, "bar");
    for (i, b) in shown.iter().enumerate() {
        let yy = top + i as f64 * row_h;
        let w = (b.value.max(0.0) / max * bw).max(1.0);
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11" fill="#222">{}</text><rect class="bar" x="{label_w}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{}"><title>{}: {}</title></rect><text x="{:.1}" y="{:.1}" font-size="11" fill="#222">{}</text>"##,
            label_w - 8.0,
            yy + 15.0,
            escape(&truncate(&b.label, 32)),
            yy + 3.0,
            row_h - 6.0,
            tone_colour(b.tone),
            escape(&b.label),
            escape(&format_value(c.unit, b.value)),
            label_w + w + 6.0,
            yy + 15.0,
            escape(&format_value(c.unit, b.value))
        );
    }
    if let Some((label, tv)) = &c.threshold {
        let xx = label_w + tv / max * bw;
        let _ = write!(
            out,
            r##"<line class="threshold" x1="{xx:.1}" x2="{xx:.1}" y1="{top}" y2="{:.1}" stroke="#d55e00" stroke-width="1" stroke-dasharray="2 3"><title>{t}</title></line><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10" fill="#d55e00">{t}</text>"##,
            height - 4.0,
            xx - 3.0,
            height - 6.0,
            t = escape(label)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_round() {
        assert_eq!(
            scale([0.12, 0.93].into_iter(), Unit::Percent),
            (0.0, 1.0, 0.25)
        );
        // A flat 100 % stays under 100 %; counts step by whole numbers.
        assert_eq!(scale([1.0, 1.0].into_iter(), Unit::Percent).1, 1.0);
        assert_eq!(scale([0.0, 1.0].into_iter(), Unit::Count), (0.0, 1.0, 1.0));
        let (lo, hi, _) = scale([0.995, 0.9999].into_iter(), Unit::Percent);
        assert!(lo > 0.9 && lo <= 0.995);
        assert!((0.9999..=1.01).contains(&hi));
        assert_eq!(scale(std::iter::empty(), Unit::Number), (0.0, 1.0, 0.25));
        let (lo, hi, _) = scale([5.0, 5.0].into_iter(), Unit::Number);
        assert!(lo <= 5.0 && hi > 5.0);
    }

    #[test]
    fn line_chart_breaks_on_nan_and_escapes() {
        let c = Chart {
            title: "a < b".into(),
            unit: Unit::Percent,
            kind: ChartKind::Line {
                lines: vec![Line {
                    name: "host\"1".into(),
                    points: vec![(0, 0.1), (60_000, f64::NAN), (120_000, 0.3), (180_000, 0.4)],
                    dashed: true,
                }],
            },
            threshold: Some(("limit".into(), 0.85)),
        };
        let svg = chart(&c);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("a &lt; b"));
        assert!(svg.contains("host&quot;1"));
        // Two sub-paths: the NaN lifted the pen.
        let d = svg
            .split(r#"d=""#)
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(d.matches('M').count(), 2);
        assert!(svg.contains("stroke-dasharray=\"6 4\""));
        assert!(svg.contains("class=\"threshold\""));
    }

    #[test]
    fn bar_chart_and_empty() {
        let c = Chart {
            title: "p95".into(),
            unit: Unit::Percent,
            kind: ChartKind::Bar {
                bars: vec![
                    Bar {
                        label: "a".into(),
                        value: 0.95,
                        tone: Tone::Bad,
                    },
                    Bar {
                        label: "b".into(),
                        value: 0.2,
                        tone: Tone::Neutral,
                    },
                ],
            },
            threshold: None,
        };
        let svg = chart(&c);
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 2);
        assert!(svg.contains("95.0 %"));
        let e = chart(&Chart {
            kind: ChartKind::Bar { bars: vec![] },
            ..c
        });
        assert!(e.contains("No data"));
    }
}
