//! Parsed queries by their text. Dashboards send the same few queries again
//! at every refresh, with only the times changed; parsing one cost about as
//! much as selecting its series on a small instant query (a profile after
//! an idle pause: 8-10 % of the server's time each). VictoriaMetrics keeps
//! such a cache too.
//!
//! Two generations bound it: entries go into the current one; a hit in the
//! previous one moves the entry into the current; when the current is full
//! it becomes the previous and the old previous is dropped. A query sent at
//! least once per generation stays; at most twice [`CAPACITY`] entries are
//! held, none of a text longer than [`MAX_TEXT`]. Errors are not cached:
//! the parse is a pure function of the text, so a bad query costs the same
//! each time it is sent and good ones are not pushed out by it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::promql::{self, ParseError, ast::Expr};

/// Entries per generation. The trees hold their compiled regular
/// expressions: at most twice this many, as many as the matcher cache
/// (`engine::labels`) held before.
pub const CAPACITY: usize = 256;

/// Longest query text cached (longer ones are parsed every time):
/// dashboard queries are well within it.
pub const MAX_TEXT: usize = 1024;

#[derive(Default)]
pub struct ParseCache {
    gens: Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    current: HashMap<Box<str>, Arc<Expr>>,
    previous: HashMap<Box<str>, Arc<Expr>>,
}

impl ParseCache {
    /// `text` parsed, from the cache when it holds it.
    pub fn parse(&self, text: &str) -> Result<Arc<Expr>, ParseError> {
        if text.len() > MAX_TEXT {
            return promql::parse(text).map(Arc::new);
        }
        if let Some(e) = self.get(text) {
            return Ok(e);
        }
        // Parsed outside the lock: two requests for one new text may both
        // parse it, and the later insert wins with an equal tree.
        let expr = Arc::new(promql::parse(text)?);
        self.insert(text, expr.clone());
        Ok(expr)
    }

    fn get(&self, text: &str) -> Option<Arc<Expr>> {
        let dropped;
        let e = {
            let mut g = self.gens.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = g.current.get(text) {
                return Some(e.clone());
            }
            let (k, e) = g.previous.remove_entry(text)?;
            dropped = g.add(k, e.clone());
            e
        };
        drop(dropped);
        Some(e)
    }

    fn insert(&self, text: &str, expr: Arc<Expr>) {
        let dropped = {
            let mut g = self.gens.lock().unwrap_or_else(|p| p.into_inner());
            g.add(text.into(), expr)
        };
        // The old generation's trees are freed outside the lock.
        drop(dropped);
    }

    /// Entries held (both generations).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        let g = self.gens.lock().unwrap();
        g.current.len() + g.previous.len()
    }
}

impl Generations {
    /// Adds an entry; returns the generation that rotated out, if any.
    fn add(&mut self, text: Box<str>, expr: Arc<Expr>) -> HashMap<Box<str>, Arc<Expr>> {
        let mut dropped = HashMap::new();
        if self.current.len() >= CAPACITY && !self.current.contains_key(&text) {
            let full = std::mem::take(&mut self.current);
            dropped = std::mem::replace(&mut self.previous, full);
        }
        self.current.insert(text, expr);
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_query_is_the_tree_a_fresh_parse_gives() {
        let cache = ParseCache::default();
        let q = r#"topk(10, sum by (instance) (rate(x{a=~"(web|api)-.*"}[5m])))"#;
        let first = cache.parse(q).unwrap();
        let again = cache.parse(q).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second parse was not cached"
        );
        assert_eq!(*again, promql::parse(q).unwrap());
    }

    #[test]
    fn errors_are_returned_each_time_and_not_kept() {
        let cache = ParseCache::default();
        for _ in 0..2 {
            let e = cache.parse("sum(").unwrap_err();
            assert_eq!(
                e.to_string(),
                promql::parse("sum(").unwrap_err().to_string()
            );
        }
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn long_texts_are_parsed_but_not_kept() {
        let cache = ParseCache::default();
        let long = format!("m{{a=\"{}\"}}", "x".repeat(MAX_TEXT));
        assert!(long.len() > MAX_TEXT);
        assert_eq!(*cache.parse(&long).unwrap(), promql::parse(&long).unwrap());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn two_generations_bound_the_cache_and_keep_what_is_asked_again() {
        let cache = ParseCache::default();
        let q = |i: usize| format!("m{i}");
        let kept = cache.parse("kept").unwrap();
        let first = cache.parse(&q(0)).unwrap();
        for i in 1..CAPACITY * 3 {
            cache.parse(&q(i)).unwrap();
            // Asked once per generation: never dropped.
            if i % (CAPACITY / 2) == 0 {
                assert!(Arc::ptr_eq(&cache.parse("kept").unwrap(), &kept), "at {i}");
            }
            assert!(cache.len() <= 2 * CAPACITY);
        }
        assert!(Arc::ptr_eq(&cache.parse("kept").unwrap(), &kept));
        // The oldest of the rest is gone: parsed again, into a new tree.
        let again = cache.parse(&q(0)).unwrap();
        assert!(!Arc::ptr_eq(&again, &first));
        assert_eq!(again, first);
    }
}
