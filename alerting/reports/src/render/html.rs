//! The HTML format: one self-contained page (inline CSS, inline SVG, no
//! scripts, no external resources) that reads well in a browser and in an
//! email client, and prints on A4 with a print stylesheet: no sticky
//! headers, charts and table rows kept whole, table headers repeated on
//! every page.

use std::fmt::Write;

use super::svg::{self, escape};
use crate::doc::{Block, Cell, Document, Table, Tone, format_value};

const CSS: &str = r#"
:root{color-scheme:light}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1d1d1f;background:#fff;margin:0;line-height:1.45}
main{max-width:1000px;margin:0 auto;padding:24px}
header h1{font-size:1.6rem;margin:0 0 4px}
.meta{color:#555;font-size:.9rem;margin:0}
.highlights{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin:20px 0}
.hl{border:1px solid #ddd;border-left:5px solid #999;border-radius:6px;padding:10px 12px}
.hl .v{display:block;font-size:1.45rem;font-weight:600}
.hl .l{color:#555;font-size:.85rem}
.tone-good{border-left-color:#009e73}.tone-warn{border-left-color:#e69f00}.tone-bad{border-left-color:#d55e00}
h2{font-size:1.25rem;border-bottom:2px solid #eee;padding-bottom:4px;margin-top:32px}
figure{margin:16px 0}
figcaption{font-weight:600;font-size:.95rem;margin-bottom:4px}
svg.chart{display:block;width:100%;height:auto}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.85rem;margin:8px 0 16px}
caption{text-align:left;font-weight:600;padding:4px 0;font-size:.95rem}
th,td{padding:4px 8px;border-bottom:1px solid #e5e5e5;text-align:left;vertical-align:top}
th{background:#f3f4f6;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.num{white-space:nowrap}
th{vertical-align:bottom}
tbody tr:nth-child(even){background:#fafafa}
.empty{color:#666;font-style:italic}
footer{color:#777;font-size:.8rem;margin-top:40px;border-top:1px solid #eee;padding-top:8px}
@media print{
 @page{size:A4;margin:14mm}
 body{font-size:9.5pt}
 main{max-width:none;padding:0}
 .scroll{overflow:visible}
 table{font-size:7.5pt}
 th,td{padding:2px 4px}
 figure,tr,.hl{break-inside:avoid}
 h2{break-after:avoid}
 thead{display:table-header-group}
 .highlights{grid-template-columns:repeat(4,1fr)}
 tbody tr:nth-child(even){background:none}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"#;

fn tone_class(t: Tone) -> &'static str {
    match t {
        Tone::Neutral => "tone-neutral",
        Tone::Good => "tone-good",
        Tone::Warn => "tone-warn",
        Tone::Bad => "tone-bad",
    }
}

fn table(out: &mut String, t: &Table) {
    let _ = write!(
        out,
        r#"<div class="scroll"><table id="table-{}"><caption>{}</caption><thead><tr>"#,
        escape(&t.id),
        escape(&t.title)
    );
    for c in &t.columns {
        let class = if c.unit.is_some() {
            r#" class="num""#
        } else {
            ""
        };
        let _ = write!(out, r#"<th scope="col"{class}>{}</th>"#, escape(&c.title));
    }
    out.push_str("</tr></thead><tbody>");
    if t.rows.is_empty() {
        let _ = write!(
            out,
            r#"<tr><td class="empty" colspan="{}">{}</td></tr>"#,
            t.columns.len().max(1),
            escape(&t.empty)
        );
    }
    for row in &t.rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let unit = t.columns.get(i).and_then(|c| c.unit);
            match (cell, unit) {
                (Cell::Text(s), _) => {
                    let _ = write!(out, "<td>{}</td>", escape(s));
                }
                (Cell::Num(v), Some(u)) => {
                    let _ = write!(
                        out,
                        r#"<td class="num">{}</td>"#,
                        escape(&format_value(u, v.unwrap_or(f64::NAN)))
                    );
                }
                (Cell::Num(v), None) => {
                    let _ = write!(
                        out,
                        r#"<td class="num">{}</td>"#,
                        escape(&format_value(
                            crate::doc::Unit::Number,
                            v.unwrap_or(f64::NAN)
                        ))
                    );
                }
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
}

/// Renders the document as a standalone HTML page. `footer` is added at
/// the bottom (the run id, links).
pub fn render(doc: &Document, footer: &str) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="generator" content="Silt"><title>{}</title><style>{CSS}</style></head><body><main><header><h1>{}</h1><p class="meta">{} to {} (UTC){} · generated {}</p></header>"#,
        escape(&doc.title),
        escape(&doc.title),
        doc.start.format("%Y-%m-%d %H:%M"),
        doc.end.format("%Y-%m-%d %H:%M"),
        if doc.filter.is_empty() {
            String::new()
        } else {
            format!(" · filter <code>{}</code>", escape(&doc.filter))
        },
        doc.generated_at.format("%Y-%m-%d %H:%M UTC"),
    );
    if !doc.highlights.is_empty() {
        out.push_str(r#"<section class="highlights">"#);
        for h in &doc.highlights {
            let _ = write!(
                out,
                r#"<div class="hl {}"><span class="v">{}</span><span class="l">{}</span></div>"#,
                tone_class(h.tone),
                escape(&h.value),
                escape(&h.label)
            );
        }
        out.push_str("</section>");
    }
    for s in &doc.sections {
        let _ = write!(out, "<section><h2>{}</h2>", escape(&s.title));
        for b in &s.blocks {
            match b {
                Block::Text { text } => {
                    let _ = write!(out, "<p>{}</p>", escape(text));
                }
                Block::Chart(c) => {
                    let _ = write!(
                        out,
                        "<figure><figcaption>{}</figcaption>{}</figure>",
                        escape(&c.title),
                        svg::chart(c)
                    );
                }
                Block::Table(t) => table(&mut out, t),
            }
        }
        out.push_str("</section>");
    }
    let _ = write!(
        out,
        "<footer>Silt report <strong>{}</strong> ({}). {}</footer></main></body></html>",
        escape(&doc.report),
        escape(&doc.kind),
        footer
    );
    out.push('\n');
    out
}
