//! A YAML document as a tree of nodes that remember where they start
//! (line and column, 1-based, as Go's `yaml.Node`), built from
//! `yaml-rust2`'s marked events. Rule files are decoded from this tree by
//! hand so that every error, syntactic or semantic, can name its position.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Where a node starts in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    /// The earlier of two positions.
    fn min_pos(self, other: Pos) -> Pos {
        if (self.line, self.col) <= (other.line, other.col) {
            self
        } else {
            other
        }
    }
}

/// One node of the document.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A scalar; `plain` is true for unquoted scalars (only those can be
    /// `null`, booleans or numbers). `tag` is an explicit `!!tag`, if any.
    Scalar {
        value: String,
        plain: bool,
        tag: Option<String>,
    },
    Seq(Vec<Node>),
    /// Key/value pairs in document order.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// True for a plain `null`/`~`/empty scalar (or an explicit `!!null`).
    pub fn is_null(&self) -> bool {
        match &self.kind {
            Kind::Scalar { value, plain, tag } => {
                tag.as_deref() == Some("null")
                    || (*plain
                        && tag.is_none()
                        && matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
            }
            _ => false,
        }
    }

    /// Go yaml's short tag of the node (`!!str`, `!!int`, `!!seq`, ...),
    /// used in "cannot unmarshal" messages.
    pub fn short_tag(&self) -> &'static str {
        match &self.kind {
            Kind::Seq(_) => "!!seq",
            Kind::Map(_) => "!!map",
            Kind::Scalar { value, plain, tag } => {
                if let Some(t) = tag {
                    return match t.as_str() {
                        "int" => "!!int",
                        "float" => "!!float",
                        "bool" => "!!bool",
                        "null" => "!!null",
                        "binary" => "!!binary",
                        _ => "!!str",
                    };
                }
                if !plain {
                    return "!!str";
                }
                if self.is_null() {
                    "!!null"
                } else if matches!(
                    value.as_str(),
                    "true" | "True" | "TRUE" | "false" | "False" | "FALSE"
                ) {
                    "!!bool"
                } else if parse_int(value).is_some() {
                    "!!int"
                } else if value.parse::<f64>().is_ok()
                    || matches!(value.as_str(), ".inf" | "-.inf" | ".nan" | ".Inf" | ".NaN")
                {
                    "!!float"
                } else {
                    "!!str"
                }
            }
        }
    }
}

/// A YAML 1.2 integer as Go's yaml resolves it (decimal, `0x`, `0o`, `0b`,
/// with an optional sign and `_` separators).
pub fn parse_int(s: &str) -> Option<i64> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let cleaned: String = rest.chars().filter(|&c| c != '_').collect();
    let (radix, digits) = if let Some(d) = cleaned.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = cleaned.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = cleaned.strip_prefix("0b") {
        (2, d)
    } else {
        (10, cleaned.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

/// A syntax error, positioned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("yaml: line {line}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Parses the first document of `text`. `Ok(None)` for an empty stream.
/// Aliases are resolved to copies of their anchored node.
pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, false) {
        let m = e.marker();
        return Err(SyntaxError {
            line: m.line(),
            col: m.col() + 1,
            message: e.info().to_string(),
        });
    }
    if let Some(message) = builder.error {
        return Err(SyntaxError {
            line: builder.error_pos.line,
            col: builder.error_pos.col,
            message,
        });
    }
    Ok(builder.doc)
}

enum Open {
    Seq(Pos, Vec<Node>, usize),
    Map(Pos, Vec<(Node, Node)>, Option<Node>, usize),
}

/// Deepest nesting accepted; deeper documents are refused rather than
/// risking the stack of a later recursive walk.
const MAX_DEPTH: usize = 256;

/// Most nodes alias expansion may copy into one document.
const MAX_ALIAS_NODES: usize = 1_000_000;

fn count_nodes(n: &Node) -> usize {
    1 + match &n.kind {
        Kind::Scalar { .. } => 0,
        Kind::Seq(items) => items.iter().map(count_nodes).sum(),
        Kind::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| count_nodes(k) + count_nodes(v))
            .sum(),
    }
}

#[derive(Default)]
struct Builder {
    alias_nodes: usize,
    stack: Vec<Open>,
    anchors: Vec<(usize, Node)>,
    doc: Option<Node>,
    done: bool,
    error: Option<String>,
    error_pos: Pos,
}

impl Builder {
    fn fail(&mut self, pos: Pos, message: &str) {
        if self.error.is_none() {
            self.error = Some(message.to_string());
            self.error_pos = pos;
        }
    }

    fn push_node(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.push((anchor, node.clone()));
        }
        match self.stack.last_mut() {
            None => {
                if !self.done {
                    self.doc = Some(node);
                    self.done = true;
                }
            }
            Some(Open::Seq(_, items, _)) => items.push(node),
            Some(Open::Map(_, pairs, key, _)) => match key.take() {
                None => *key = Some(node),
                Some(k) => pairs.push((k, node)),
            },
        }
    }
}

fn pos_of(mark: Marker) -> Pos {
    Pos {
        line: mark.line(),
        col: mark.col() + 1,
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() || (self.done && self.stack.is_empty()) {
            return;
        }
        let pos = pos_of(mark);
        match ev {
            Event::Scalar(value, style, anchor, tag) => {
                let tag = tag.map(|t| {
                    if t.handle == "!!" || t.handle == "tag:yaml.org,2002:" {
                        t.suffix
                    } else {
                        format!("{}{}", t.handle, t.suffix)
                    }
                });
                let node = Node {
                    pos,
                    kind: Kind::Scalar {
                        value,
                        plain: style == TScalarStyle::Plain,
                        tag,
                    },
                };
                self.push_node(node, anchor);
            }
            Event::SequenceStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    self.fail(pos, "exceeded max depth");
                    return;
                }
                self.stack.push(Open::Seq(pos, Vec::new(), anchor));
            }
            Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    self.fail(pos, "exceeded max depth");
                    return;
                }
                self.stack.push(Open::Map(pos, Vec::new(), None, anchor));
            }
            Event::SequenceEnd => {
                if let Some(Open::Seq(p, items, anchor)) = self.stack.pop() {
                    self.push_node(
                        Node {
                            pos: p,
                            kind: Kind::Seq(items),
                        },
                        anchor,
                    );
                }
            }
            Event::MappingEnd => {
                if let Some(Open::Map(p, pairs, _, anchor)) = self.stack.pop() {
                    // Go's yaml reports a block mapping where its first key is;
                    // the parser's mark for it lies after that key.
                    let p = pairs.first().map_or(p, |(k, _)| k.pos.min_pos(p));
                    self.push_node(
                        Node {
                            pos: p,
                            kind: Kind::Map(pairs),
                        },
                        anchor,
                    );
                }
            }
            Event::Alias(id) => match self.anchors.iter().rev().find(|(a, _)| *a == id) {
                Some((_, node)) => {
                    // Aliases of aliases grow exponentially ("billion
                    // laughs"): cap the nodes copies may add.
                    self.alias_nodes += count_nodes(node);
                    if self.alias_nodes > MAX_ALIAS_NODES {
                        self.fail(pos, "document contains excessive aliasing");
                        return;
                    }
                    let mut node = node.clone();
                    node.pos = pos;
                    self.push_node(node, 0);
                }
                None => self.fail(pos, "unknown anchor"),
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let doc = parse("a: 1\nb:\n  - x\n  - {c: d}\n").unwrap().unwrap();
        let Kind::Map(pairs) = &doc.kind else {
            panic!()
        };
        assert_eq!(pairs[0].0.pos, Pos { line: 1, col: 1 });
        assert_eq!(pairs[0].1.pos, Pos { line: 1, col: 4 });
        let Kind::Seq(items) = &pairs[1].1.kind else {
            panic!()
        };
        assert_eq!(items[0].pos, Pos { line: 3, col: 5 });
        assert_eq!(items[1].pos.line, 4);
        assert_eq!(pairs[1].1.pos.line, 3);
    }

    #[test]
    fn tags_and_nulls() {
        let doc = parse("a: ~\nb: '1'\nc: 1\nd: 0x1F\ne: true\nf: 1.5\n")
            .unwrap()
            .unwrap();
        let Kind::Map(pairs) = &doc.kind else {
            panic!()
        };
        let tags: Vec<_> = pairs.iter().map(|(_, v)| v.short_tag()).collect();
        assert_eq!(
            tags,
            ["!!null", "!!str", "!!int", "!!int", "!!bool", "!!float"]
        );
        assert_eq!(parse_int("0x1F"), Some(31));
        assert_eq!(parse_int("-1_000"), Some(-1000));
    }

    #[test]
    fn aliases_resolve_and_errors_are_positioned() {
        let doc = parse("a: &x {k: v}\nb: *x\n").unwrap().unwrap();
        let Kind::Map(pairs) = &doc.kind else {
            panic!()
        };
        assert_eq!(pairs[0].1.kind, pairs[1].1.kind);
        let err = parse("a: [1, 2\nb: c\n").unwrap_err();
        assert!(err.line >= 1, "{err:?}");
        assert_eq!(parse("").unwrap(), None);
        let mut laughs = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            laughs.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse(&laughs).unwrap_err();
        assert_eq!(err.message, "document contains excessive aliasing");
        let err = parse("a: b\n c: d\n").unwrap_err();
        assert_eq!(err.line, 2);
    }
}
