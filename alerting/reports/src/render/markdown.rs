//! The Markdown format (also the text part of report emails): headings,
//! the highlights as a list, paragraphs, and every table as a pipe table.
//! Charts become a line naming them (their data is in the tables and the
//! JSON).

use std::fmt::Write;

use crate::doc::{Block, Cell, ChartKind, Document, Table, Unit, format_value};

fn cell_text(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn table(out: &mut String, t: &Table) {
    let _ = writeln!(out, "**{}**\n", cell_text(&t.title));
    if t.rows.is_empty() {
        let _ = writeln!(out, "_{}_\n", t.empty);
        return;
    }
    let titles: Vec<String> = t.columns.iter().map(|c| cell_text(&c.title)).collect();
    let _ = writeln!(out, "| {} |", titles.join(" | "));
    let aligns: Vec<&str> = t
        .columns
        .iter()
        .map(|c| if c.unit.is_some() { "---:" } else { "---" })
        .collect();
    let _ = writeln!(out, "| {} |", aligns.join(" | "));
    for row in &t.rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| match c {
                Cell::Text(s) => cell_text(s),
                Cell::Num(v) => format_value(
                    t.columns
                        .get(i)
                        .and_then(|c| c.unit)
                        .unwrap_or(Unit::Number),
                    v.unwrap_or(f64::NAN),
                ),
            })
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

pub fn render(doc: &Document, footer: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", doc.title);
    let _ = writeln!(
        out,
        "{} to {} (UTC){} · generated {}\n",
        doc.start.format("%Y-%m-%d %H:%M"),
        doc.end.format("%Y-%m-%d %H:%M"),
        if doc.filter.is_empty() {
            String::new()
        } else {
            format!(" · filter `{}`", doc.filter)
        },
        doc.generated_at.format("%Y-%m-%d %H:%M UTC")
    );
    for h in &doc.highlights {
        let _ = writeln!(out, "- **{}** {}", h.value, h.label);
    }
    if !doc.highlights.is_empty() {
        out.push('\n');
    }
    for s in &doc.sections {
        let _ = writeln!(out, "## {}\n", s.title);
        for b in &s.blocks {
            match b {
                Block::Text { text } => {
                    let _ = writeln!(out, "{text}\n");
                }
                Block::Chart(c) => {
                    let n = match &c.kind {
                        ChartKind::Line { lines } => lines.len(),
                        ChartKind::Bar { bars } => bars.len(),
                    };
                    let _ = writeln!(
                        out,
                        "_Chart: {} ({n} series; see the HTML report)._\n",
                        c.title
                    );
                }
                Block::Table(t) => table(&mut out, t),
            }
        }
    }
    if !footer.is_empty() {
        let _ = writeln!(out, "---\n{footer}");
    }
    out
}
