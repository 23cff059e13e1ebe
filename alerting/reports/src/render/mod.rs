//! Renders a [`Document`] in the report's formats: `report.html`,
//! `report.md`, `report.json` and one `<table>.csv` per table.

pub mod csv;
pub mod html;
pub mod markdown;
pub mod svg;

use crate::config::Format;
use crate::doc::Document;
use crate::error::RunError;

/// One output file of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// The content type of an output file, by its extension.
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("md") => "text/markdown; charset=utf-8",
        Some("json") => "application/json",
        Some("csv") => "text/csv; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Renders `doc` in `formats`; `run_id` goes into the footers, which link
/// the other files (relative links: they sit in the same folder).
pub fn render(doc: &Document, formats: &[Format], run_id: &str) -> Result<Vec<Rendered>, RunError> {
    let mut csv_names: Vec<String> = Vec::new();
    if formats.contains(&Format::Csv) {
        for t in doc.tables() {
            let mut name = format!("{}.csv", t.id);
            let mut n = 2;
            while csv_names.contains(&name) {
                name = format!("{}-{n}.csv", t.id);
                n += 1;
            }
            csv_names.push(name);
        }
    }
    let mut others: Vec<String> = Vec::new();
    for f in formats {
        match f {
            Format::Html => others.push("report.html".into()),
            Format::Json => others.push("report.json".into()),
            Format::Markdown => others.push("report.md".into()),
            Format::Csv => others.extend(csv_names.iter().cloned()),
        }
    }
    let file = |name: String, bytes: Vec<u8>| Rendered {
        content_type: content_type(&name),
        name,
        bytes,
    };
    let mut out = Vec::new();
    for f in formats {
        match f {
            Format::Html => {
                let links: Vec<String> = others
                    .iter()
                    .filter(|n| *n != "report.html")
                    .map(|n| format!(r#"<a href="{0}">{0}</a>"#, svg::escape(n)))
                    .collect();
                let footer = format!(
                    "Run {}.{}",
                    svg::escape(run_id),
                    if links.is_empty() {
                        String::new()
                    } else {
                        format!(" Also as {}.", links.join(", "))
                    }
                );
                out.push(file(
                    "report.html".into(),
                    html::render(doc, &footer).into_bytes(),
                ));
            }
            Format::Markdown => {
                let footer = format!("Silt report {}, run {run_id}.", doc.report);
                out.push(file(
                    "report.md".into(),
                    markdown::render(doc, &footer).into_bytes(),
                ));
            }
            Format::Json => {
                let bytes = serde_json::to_vec_pretty(doc).map_err(|e| RunError::Render {
                    format: "json".into(),
                    message: e.to_string(),
                })?;
                out.push(file("report.json".into(), bytes));
            }
            Format::Csv => {
                for (t, name) in doc.tables().zip(&csv_names) {
                    out.push(file(name.clone(), csv::render(t).into_bytes()));
                }
            }
        }
    }
    Ok(out)
}
