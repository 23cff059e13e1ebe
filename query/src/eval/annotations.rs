//! Warnings and infos ("annotations") collected during evaluation, in
//! Prometheus's wording: `PromQL warning: <message> (<line>:<col>)`, the
//! position being the 1-based line and byte column of the sub-expression
//! the annotation is about. Identical annotations are reported once.

use std::sync::Mutex;

use super::functions::annotations::{Annotation, Severity};

/// Warning or info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Warning,
    Info,
}

#[derive(Debug, Default)]
pub(crate) struct Annotations {
    /// Annotations reported by the functions, keyed (with the position)
    /// by [`Annotation::key`]; repeats are merged.
    from_fns: Mutex<Vec<(Annotation, Option<usize>)>>,
}

impl Annotations {
    pub(crate) fn add_fn(&self, a: Annotation, pos: Option<usize>) {
        let mut items = self.from_fns.lock().unwrap_or_else(|e| e.into_inner());
        let key = a.key();
        match items.iter_mut().find(|(x, p)| *p == pos && x.key() == key) {
            Some((x, _)) => x.merge(&a),
            None => items.push((a, pos)),
        }
    }

    /// Renders `(warnings, infos)` against the query text (positions are
    /// left out when the text is empty).
    pub(crate) fn render(&self, query: &str) -> (Vec<String>, Vec<String>) {
        let mut warnings: Vec<String> = Vec::new();
        let mut infos: Vec<String> = Vec::new();
        let mut all: Vec<(Level, String, Option<usize>)> = Vec::new();
        for (a, pos) in self
            .from_fns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let level = match a.severity() {
                Severity::Warning => Level::Warning,
                Severity::Info => Level::Info,
            };
            all.push((level, a.message(), *pos));
        }
        for (level, mut s, pos) in all {
            if let Some(p) = pos
                && !query.is_empty()
            {
                let (line, col) = line_col(query, p);
                s.push_str(&format!(" ({line}:{col})"));
            }
            let out = match level {
                Level::Warning => &mut warnings,
                Level::Info => &mut infos,
            };
            if !out.contains(&s) {
                out.push(s);
            }
        }
        (warnings, infos)
    }
}

/// 1-based line and 1-based byte column of byte offset `pos` in `text`.
pub(crate) fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let before = &text.as_bytes()[..pos];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let col = match before.iter().rposition(|&b| b == b'\n') {
        Some(nl) => pos - nl,
        None => pos + 1,
    };
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_positions_and_dedups() {
        let a = Annotations::default();
        a.add_fn(Annotation::SortInRangeQuery, Some(4));
        a.add_fn(Annotation::SortInRangeQuery, Some(4));
        a.add_fn(
            Annotation::PossibleNonCounter {
                metric_name: "x".into(),
            },
            None,
        );
        let (w, i) = a.render("sum(sort(x))");
        assert_eq!(
            w,
            vec![
                "PromQL warning: sort is ineffective for range queries since results are always ordered by labels (1:5)"
            ]
        );
        assert_eq!(
            i,
            vec![
                "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"x\""
            ]
        );
        assert_eq!(line_col("a\nbc", 3), (2, 2));
    }
}
