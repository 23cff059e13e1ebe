//! The CSV format: one file per table (RFC 4180: comma-separated, CRLF
//! line ends, fields with commas, quotes or line breaks quoted). Numbers
//! are raw (ratios as ratios, bytes as bytes, durations in seconds) with
//! the unit in the header, so that spreadsheets can compute with them;
//! empty for missing, `+Inf` for never.

use crate::doc::{Cell, Table, Unit};

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn unit_suffix(u: Unit) -> &'static str {
    match u {
        Unit::Percent => " (ratio)",
        Unit::Bytes => " (bytes)",
        Unit::Seconds => " (seconds)",
        Unit::Count | Unit::Number => "",
    }
}

fn number(v: Option<f64>) -> String {
    match v {
        None => String::new(),
        Some(v) if v.is_nan() => String::new(),
        Some(v) if v == f64::INFINITY => "+Inf".into(),
        Some(v) if v == f64::NEG_INFINITY => "-Inf".into(),
        Some(v) => v.to_string(),
    }
}

pub fn render(t: &Table) -> String {
    let mut out = String::new();
    let header: Vec<String> = t
        .columns
        .iter()
        .map(|c| field(&format!("{}{}", c.title, c.unit.map_or("", unit_suffix))))
        .collect();
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for row in &t.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|c| match c {
                Cell::Text(s) => field(s),
                Cell::Num(v) => number(*v),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::Column;

    #[test]
    fn quotes_and_units() {
        let t = Table {
            id: "t".into(),
            title: "T".into(),
            columns: vec![Column::text("Host"), Column::num("CPU p95", Unit::Percent)],
            rows: vec![
                vec![Cell::text("a,\"b\""), Cell::num(0.5)],
                vec![Cell::text("c"), Cell::Num(None)],
                vec![Cell::text("d"), Cell::num(f64::INFINITY)],
            ],
            empty: String::new(),
        };
        assert_eq!(
            render(&t),
            "Host,CPU p95 (ratio)\r\n\"a,\"\"b\"\"\",0.5\r\nc,\r\nd,+Inf\r\n"
        );
    }
}
