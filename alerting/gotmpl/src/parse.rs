//! Parser: tokens into trees of nodes, one tree per named template.
//!
//! Mirrors Go's `text/template/parse`: `{{define}}` only at top level,
//! `{{block}}` anywhere, variables checked at parse time, functions checked
//! against the function map at parse time.

use std::fmt;
use std::sync::Arc;

use crate::error::{ParseError, ParseErrorKind, line_col};
use crate::lex::{Tok, Token, lex};
use crate::value::Value;

/// Deepest nesting of control structures and parentheses the parser accepts.
pub(crate) const MAX_PARSE_DEPTH: usize = 200;

/// One parsed template.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    pub name: String,
    /// The name given to `Template::parse` (for error positions).
    pub parse_name: Arc<str>,
    pub src: Arc<str>,
    pub root: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break(usize),
    Continue(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Branch {
    pub pos: usize,
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pipe {
    pub pos: usize,
    /// Declared or assigned variables, with `$`.
    pub decl: Vec<String>,
    pub is_assign: bool,
    pub cmds: Vec<Cmd>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cmd {
    pub pos: usize,
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Arg {
    pub pos: usize,
    pub kind: ArgKind,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ArgKind {
    Dot,
    Nil,
    Bool(bool),
    /// Source text and value (`Int` or `Float`).
    Number(String, Value),
    String(String),
    /// `.A.B`
    Field(Vec<String>),
    /// `$x.A.B`: the variable name first.
    Variable(String, Vec<String>),
    /// A function name.
    Ident(String),
    /// `(pipe).A.B`
    Chain(Box<Arg>, Vec<String>),
    Pipe(Pipe),
}

/// Go's number literal rules: ints in any base (with `_`), floats, hex floats.
pub(crate) fn parse_number(text: &str) -> Option<Value> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let first = *body.as_bytes().first()?;
    if !(first.is_ascii_digit() || first == b'.') {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let is_hex = lower.starts_with("0x");
    let float_like = if is_hex {
        lower.contains('p')
    } else {
        lower.contains(['.', 'e'])
    };
    let strip = |s: &str| -> Option<String> {
        if s.starts_with('_') || s.ends_with('_') || s.contains("__") {
            return None;
        }
        Some(s.replace('_', ""))
    };
    if !float_like {
        let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
            (16, d.strip_prefix('_').unwrap_or(d))
        } else if let Some(d) = lower.strip_prefix("0o") {
            (8, d.strip_prefix('_').unwrap_or(d))
        } else if let Some(d) = lower.strip_prefix("0b") {
            (2, d.strip_prefix('_').unwrap_or(d))
        } else if lower.len() > 1 && lower.starts_with('0') {
            (8, &lower[1..])
        } else {
            (10, lower.as_str())
        };
        let digits = strip(digits)?;
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        let signed = if neg { format!("-{digits}") } else { digits };
        return i64::from_str_radix(&signed, radix).ok().map(Value::Int);
    }
    let f = if is_hex {
        parse_hex_float(&strip(&lower[2..])?)?
    } else {
        let s = strip(&lower)?;
        if !s
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'))
        {
            return None;
        }
        s.parse::<f64>().ok()?
    };
    Some(Value::Float(if neg { -f } else { f }))
}

fn parse_hex_float(s: &str) -> Option<f64> {
    let (mant, exp) = s.split_once('p')?;
    let exp: i32 = exp.parse().ok()?;
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    Some(v * 2f64.powi(exp))
}

/// What ended an item list.
enum ListEnd {
    End,
    /// `{{else}}` (false) or `{{else if`/`{{else with` (true: the keyword
    /// is the next token).
    Else {
        chained: bool,
    },
    Eof,
}

pub(crate) struct Parser<'a> {
    toks: Vec<Token>,
    i: usize,
    src: &'a Arc<str>,
    parse_name: &'a Arc<str>,
    has_func: &'a dyn Fn(&str) -> bool,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    /// Templates defined by `{{define}}` and `{{block}}`.
    defined: Vec<Tree>,
}

/// Parses `src` as template `name`; returns the main tree and the trees
/// of `{{define}}`/`{{block}}` inside it.
pub(crate) fn parse(
    name: &str,
    src: &str,
    has_func: &dyn Fn(&str) -> bool,
) -> Result<(Tree, Vec<Tree>), ParseError> {
    let src: Arc<str> = Arc::from(src);
    let parse_name: Arc<str> = Arc::from(name);
    let toks = lex(&src).map_err(|e| {
        let mut kind = e.kind;
        // Go names the start of an action that runs into the end of the text
        // when it began on an earlier line.
        let eof_line = line_col(&src, src.len()).0;
        if let Some(start) = e.action_start {
            let line = line_col(&src, start).0;
            if line != eof_line {
                kind = ParseErrorKind::UnclosedActionStartedAt {
                    name: name.to_string(),
                    line,
                };
            }
        }
        let pos = if e.action_start.is_some() {
            src.len()
        } else {
            e.pos
        };
        mk_err(&parse_name, &src, pos, kind)
    })?;
    let mut p = Parser {
        toks,
        i: 0,
        src: &src,
        parse_name: &parse_name,
        has_func,
        vars: vec!["$".to_string()],
        range_depth: 0,
        depth: 0,
        defined: Vec::new(),
    };
    let root = p.parse_top()?;
    let main = Tree {
        name: name.to_string(),
        parse_name: parse_name.clone(),
        src: src.clone(),
        root,
    };
    // Within one parse, a name may be defined once (an empty body does not count).
    let mut seen: Vec<&Tree> = Vec::new();
    for t in &p.defined {
        if let Some(prev) = seen.iter().find(|s| s.name == t.name)
            && !is_empty(&prev.root)
            && !is_empty(&t.root)
        {
            return Err(mk_err(
                &parse_name,
                &src,
                0,
                ParseErrorKind::MultipleDefinition(t.name.clone()),
            ));
        }
        seen.push(t);
    }
    Ok((main, p.defined))
}

fn mk_err(name: &str, src: &str, pos: usize, kind: ParseErrorKind) -> ParseError {
    let (line, col) = line_col(src, pos);
    ParseError {
        name: name.to_string(),
        line,
        col,
        kind,
    }
}

/// Go's `IsEmptyTree`: only whitespace text (and nothing else).
pub(crate) fn is_empty(nodes: &[Node]) -> bool {
    nodes
        .iter()
        .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
}

impl Parser<'_> {
    fn err<T>(&self, pos: usize, kind: ParseErrorKind) -> Result<T, ParseError> {
        Err(mk_err(self.parse_name, self.src, pos, kind))
    }

    fn peek(&self) -> &Token {
        // The lexer always ends with Eof, and we never advance past it.
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn skip_space(&mut self) {
        while self.peek().tok == Tok::Space {
            self.i += 1;
        }
    }

    fn peek_non_space(&mut self) -> &Token {
        self.skip_space();
        self.peek()
    }

    fn next_non_space(&mut self) -> Token {
        self.skip_space();
        self.next()
    }

    fn unexpected<T>(&self, t: &Token, context: &'static str) -> Result<T, ParseError> {
        if t.tok == Tok::Eof {
            return self.err(t.pos, ParseErrorKind::UnclosedAction);
        }
        self.err(t.pos, ParseErrorKind::Unexpected(t.tok.describe(), context))
    }

    fn expect_right_delim(&mut self, context: &'static str) -> Result<(), ParseError> {
        let t = self.next_non_space();
        if t.tok != Tok::RightDelim {
            return self.unexpected(&t, context);
        }
        Ok(())
    }

    fn enter(&mut self, pos: usize, kind: ParseErrorKind) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return self.err(pos, kind);
        }
        Ok(())
    }

    fn parse_top(&mut self) -> Result<Vec<Node>, ParseError> {
        let mut nodes = Vec::new();
        loop {
            let t = self.peek().clone();
            match &t.tok {
                Tok::Eof => return Ok(nodes),
                Tok::LeftDelim => {
                    let save = self.i;
                    self.next();
                    if self.peek_non_space().tok == Tok::Keyword("define") {
                        self.next();
                        self.parse_definition(t.pos)?;
                        continue;
                    }
                    self.i = save;
                    match self.text_or_action()? {
                        Ok(n) => nodes.push(n),
                        Err((end, pos)) => {
                            let what = match end {
                                ListEnd::End => "{{end}}",
                                _ => "{{else}}",
                            };
                            return self.err(pos, ParseErrorKind::UnexpectedNode(what));
                        }
                    }
                }
                _ => match self.text_or_action()? {
                    Ok(n) => nodes.push(n),
                    Err((_, pos)) => {
                        return self.err(pos, ParseErrorKind::UnexpectedEof);
                    }
                },
            }
        }
    }

    fn parse_string_name(&mut self, context: &'static str) -> Result<String, ParseError> {
        let t = self.next_non_space();
        match t.tok {
            Tok::Str(s) => Ok(s),
            _ => self.unexpected(&t, context),
        }
    }

    fn parse_definition(&mut self, pos: usize) -> Result<(), ParseError> {
        let name = self.parse_string_name("define clause")?;
        self.expect_right_delim("define clause")?;
        self.define_body(pos, name, "define clause")
    }

    /// The body of `{{define}}` or `{{block}}` up to its `{{end}}`, parsed in
    /// a fresh scope (only `$`, outside any range) and kept as template
    /// `name`.
    fn define_body(
        &mut self,
        pos: usize,
        name: String,
        context: &'static str,
    ) -> Result<(), ParseError> {
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        let parsed = self.item_list();
        self.vars = saved_vars;
        self.range_depth = saved_range;
        let (list, end) = parsed?;
        match end {
            ListEnd::End => {}
            ListEnd::Else { .. } => {
                return self.err(pos, ParseErrorKind::Unexpected("{{else}}".into(), context));
            }
            ListEnd::Eof => return self.err(self.src.len(), ParseErrorKind::UnexpectedEof),
        }
        self.defined.push(Tree {
            name,
            parse_name: self.parse_name.clone(),
            src: self.src.clone(),
            root: list,
        });
        Ok(())
    }

    /// Parses nodes until `{{end}}`, `{{else}}` or EOF.
    fn item_list(&mut self) -> Result<(Vec<Node>, ListEnd), ParseError> {
        let mut nodes = Vec::new();
        loop {
            if self.peek().tok == Tok::Eof {
                return Ok((nodes, ListEnd::Eof));
            }
            match self.text_or_action()? {
                Ok(n) => nodes.push(n),
                Err((end, _)) => return Ok((nodes, end)),
            }
        }
    }

    /// One node, or the list terminator it found.
    fn text_or_action(&mut self) -> Result<Result<Node, (ListEnd, usize)>, ParseError> {
        let t = self.next();
        match t.tok {
            Tok::Text(s) => Ok(Ok(Node::Text(s))),
            Tok::LeftDelim => self.action(),
            Tok::Eof => Ok(Err((ListEnd::Eof, t.pos))),
            _ => self.unexpected(&t, "input"),
        }
    }

    fn action(&mut self) -> Result<Result<Node, (ListEnd, usize)>, ParseError> {
        let t = self.peek_non_space().clone();
        match t.tok {
            Tok::Keyword("block") => {
                self.next();
                return self.block_control(t.pos).map(Ok);
            }
            Tok::Keyword("break") | Tok::Keyword("continue") => {
                self.next();
                let word = if t.tok == Tok::Keyword("break") {
                    "break"
                } else {
                    "continue"
                };
                if self.range_depth == 0 {
                    return self.err(t.pos, ParseErrorKind::OutsideRange(word));
                }
                let e = self.next_non_space();
                if e.tok != Tok::RightDelim {
                    return self.unexpected(
                        &e,
                        if word == "break" {
                            "{{break}}"
                        } else {
                            "{{continue}}"
                        },
                    );
                }
                return Ok(Ok(if word == "break" {
                    Node::Break(t.pos)
                } else {
                    Node::Continue(t.pos)
                }));
            }
            Tok::Keyword("else") => {
                self.next();
                let p = self.peek_non_space().tok.clone();
                if p == Tok::Keyword("if") || p == Tok::Keyword("with") {
                    return Ok(Err((ListEnd::Else { chained: true }, t.pos)));
                }
                self.expect_right_delim("else")?;
                return Ok(Err((ListEnd::Else { chained: false }, t.pos)));
            }
            Tok::Keyword("end") => {
                self.next();
                self.expect_right_delim("end")?;
                return Ok(Err((ListEnd::End, t.pos)));
            }
            Tok::Keyword("if") => {
                self.next();
                return self.control("if", t.pos).map(|b| Ok(Node::If(b)));
            }
            Tok::Keyword("range") => {
                self.next();
                return self.control("range", t.pos).map(|b| Ok(Node::Range(b)));
            }
            Tok::Keyword("with") => {
                self.next();
                return self.control("with", t.pos).map(|b| Ok(Node::With(b)));
            }
            Tok::Keyword("template") => {
                self.next();
                return self.template_control(t.pos).map(Ok);
            }
            _ => {}
        }
        let pipe = self.pipeline("command", true)?;
        Ok(Ok(Node::Action(pipe)))
    }

    fn template_control(&mut self, pos: usize) -> Result<Node, ParseError> {
        let name = self.parse_string_name("template clause")?;
        let pipe = if self.peek_non_space().tok == Tok::RightDelim {
            self.next();
            None
        } else {
            Some(self.pipeline("template clause", true)?)
        };
        Ok(Node::Template { pos, name, pipe })
    }

    fn block_control(&mut self, pos: usize) -> Result<Node, ParseError> {
        let name = self.parse_string_name("block clause")?;
        let pipe = self.pipeline("block clause", true)?;
        self.enter(pos, ParseErrorKind::ControlTooDeep)?;
        let body = self.define_body(pos, name.clone(), "block clause");
        self.depth -= 1;
        body?;
        Ok(Node::Template {
            pos,
            name,
            pipe: Some(pipe),
        })
    }

    fn control(&mut self, context: &'static str, pos: usize) -> Result<Branch, ParseError> {
        self.enter(pos, ParseErrorKind::ControlTooDeep)?;
        let nvars = self.vars.len();
        let pipe = self.pipeline(context, true)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, end) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let else_list = match end {
            ListEnd::End => None,
            ListEnd::Eof => return self.err(self.src.len(), ParseErrorKind::UnexpectedEof),
            ListEnd::Else { chained: true } => {
                let kw = self.next_non_space();
                match (&kw.tok, context) {
                    (Tok::Keyword("if"), "if") => {
                        // `{{else if}}` shares the outer `{{end}}`.
                        let inner = self.control("if", kw.pos)?;
                        Some(vec![Node::If(inner)])
                    }
                    (Tok::Keyword("with"), "with") => {
                        let inner = self.control("with", kw.pos)?;
                        Some(vec![Node::With(inner)])
                    }
                    _ => return self.unexpected(&kw, context),
                }
            }
            ListEnd::Else { chained: false } => {
                let (list, end) = self.item_list()?;
                match end {
                    ListEnd::End => Some(list),
                    ListEnd::Eof => return self.err(self.src.len(), ParseErrorKind::UnexpectedEof),
                    ListEnd::Else { .. } => {
                        return self.err(pos, ParseErrorKind::ExpectedEnd("{{else}}"));
                    }
                }
            }
        };
        self.vars.truncate(nvars);
        self.depth -= 1;
        Ok(Branch {
            pos,
            pipe,
            list,
            else_list,
        })
    }

    /// A pipeline up to `}}` (`delim`) or `)`.
    fn pipeline(&mut self, context: &'static str, delim: bool) -> Result<Pipe, ParseError> {
        let pos = self.peek_non_space().pos;
        let mut pipe = Pipe {
            pos,
            decl: Vec::new(),
            is_assign: false,
            cmds: Vec::new(),
        };
        // Declarations.
        loop {
            let save = self.i;
            let v = self.peek_non_space().clone();
            let Tok::Variable(name) = v.tok else { break };
            self.next();
            let after = self.peek_non_space().clone();
            match after.tok {
                Tok::Declare | Tok::Assign => {
                    self.next();
                    pipe.is_assign = after.tok == Tok::Assign;
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    break;
                }
                Tok::Comma => {
                    self.next();
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    if context == "range" && pipe.decl.len() < 2 {
                        let n = self.peek_non_space().tok.clone();
                        if matches!(n, Tok::Variable(_) | Tok::RightDelim | Tok::RightParen) {
                            continue;
                        }
                        return self.err(v.pos, ParseErrorKind::RangeInitNotVariable);
                    }
                    return self.err(v.pos, ParseErrorKind::TooManyDecls(context));
                }
                _ => {
                    // Not a declaration: the variable starts a command.
                    self.i = save;
                    break;
                }
            }
        }
        if pipe.decl.len() > 1 && context != "range" {
            return self.err(pos, ParseErrorKind::TooManyDecls(context));
        }
        loop {
            let t = self.peek_non_space().clone();
            match t.tok {
                Tok::RightDelim if delim => {
                    self.next();
                    break;
                }
                Tok::RightParen if !delim => {
                    self.next();
                    break;
                }
                Tok::Bool(_)
                | Tok::Char(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Ident(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::Str(_)
                | Tok::Variable(_)
                | Tok::LeftParen => {
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                    // `command` stops before `|` or the end.
                    if self.peek().tok == Tok::Pipe {
                        self.next();
                        let n = self.peek_non_space().clone();
                        if matches!(n.tok, Tok::RightDelim | Tok::RightParen | Tok::Eof) {
                            return self.err(n.pos, ParseErrorKind::MissingValue("command"));
                        }
                    }
                }
                _ => return self.unexpected(&t, context),
            }
        }
        if pipe.cmds.is_empty() {
            return self.err(pos, ParseErrorKind::MissingValue(context));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args.first().map(|a| &a.kind),
                Some(
                    ArgKind::Bool(_)
                        | ArgKind::Dot
                        | ArgKind::Nil
                        | ArgKind::Number(..)
                        | ArgKind::String(_)
                )
            ) {
                return self.err(c.pos, ParseErrorKind::NonExecutable(i + 1));
            }
        }
        Ok(pipe)
    }

    fn command(&mut self) -> Result<Cmd, ParseError> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Cmd {
            pos,
            args: Vec::new(),
        };
        loop {
            self.skip_space();
            if let Some(arg) = self.operand()? {
                cmd.args.push(arg);
            }
            let t = self.peek().clone();
            match t.tok {
                Tok::Space => {
                    self.next();
                    continue;
                }
                Tok::RightDelim | Tok::RightParen | Tok::Pipe => break,
                _ => return self.unexpected(&t, "operand"),
            }
        }
        if cmd.args.is_empty() {
            return self.err(pos, ParseErrorKind::EmptyCommand);
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> Result<Option<Arg>, ParseError> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        let mut fields = Vec::new();
        while let Tok::Field(f) = &self.peek().tok {
            fields.push(f.clone());
            self.next();
        }
        if fields.is_empty() {
            return Ok(Some(term));
        }
        let pos = term.pos;
        let kind = match term.kind {
            ArgKind::Field(mut f) => {
                f.extend(fields);
                ArgKind::Field(f)
            }
            ArgKind::Variable(v, mut f) => {
                f.extend(fields);
                ArgKind::Variable(v, f)
            }
            ArgKind::Bool(_)
            | ArgKind::String(_)
            | ArgKind::Number(..)
            | ArgKind::Nil
            | ArgKind::Dot => {
                return self.err(pos, ParseErrorKind::DotAfterTerm(term.to_string()));
            }
            other => ArgKind::Chain(Box::new(Arg { pos, kind: other }), fields),
        };
        Ok(Some(Arg { pos, kind }))
    }

    fn term(&mut self) -> Result<Option<Arg>, ParseError> {
        let t = self.peek().clone();
        let kind = match t.tok {
            Tok::Ident(name) => {
                if !(self.has_func)(&name) {
                    return self.err(t.pos, ParseErrorKind::UndefinedFunction(name));
                }
                ArgKind::Ident(name)
            }
            Tok::Dot => ArgKind::Dot,
            Tok::Nil => ArgKind::Nil,
            Tok::Variable(name) => {
                if !self.vars.contains(&name) {
                    return self.err(t.pos, ParseErrorKind::UndefinedVariable(name));
                }
                ArgKind::Variable(name, Vec::new())
            }
            Tok::Field(f) => ArgKind::Field(vec![f]),
            Tok::Bool(b) => ArgKind::Bool(b),
            Tok::Char(c) => ArgKind::Number(
                crate::printf::go_quote_rune(c),
                Value::Int(i64::from(u32::from(c))),
            ),
            Tok::Number(text) => match parse_number(&text) {
                Some(v) => ArgKind::Number(text, v),
                None => return self.err(t.pos, ParseErrorKind::BadNumber(text)),
            },
            Tok::LeftParen => {
                self.next();
                self.enter(t.pos, ParseErrorKind::ExprTooDeep)?;
                let pipe = self.pipeline("parenthesized pipeline", false)?;
                self.depth -= 1;
                return Ok(Some(Arg {
                    pos: t.pos,
                    kind: ArgKind::Pipe(pipe),
                }));
            }
            Tok::Str(s) => ArgKind::String(s),
            _ => return Ok(None),
        };
        self.next();
        Ok(Some(Arg { pos: t.pos, kind }))
    }
}

// Printing nodes back as template source, like Go's `Node.String()`.

fn write_list(f: &mut fmt::Formatter<'_>, list: &[Node]) -> fmt::Result {
    list.iter().try_for_each(|n| write!(f, "{n}"))
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Text(t) => f.write_str(t),
            Node::Action(p) => write!(f, "{{{{{p}}}}}"),
            Node::If(b) => b.write(f, "if"),
            Node::Range(b) => b.write(f, "range"),
            Node::With(b) => b.write(f, "with"),
            Node::Template { name, pipe, .. } => match pipe {
                Some(p) => write!(f, "{{{{template {} {p}}}}}", crate::printf::go_quote(name)),
                None => write!(f, "{{{{template {}}}}}", crate::printf::go_quote(name)),
            },
            Node::Break(_) => f.write_str("{{break}}"),
            Node::Continue(_) => f.write_str("{{continue}}"),
        }
    }
}

impl Branch {
    fn write(&self, f: &mut fmt::Formatter<'_>, kw: &str) -> fmt::Result {
        write!(f, "{{{{{kw} {}}}}}", self.pipe)?;
        write_list(f, &self.list)?;
        if let Some(e) = &self.else_list {
            f.write_str("{{else}}")?;
            write_list(f, e)?;
        }
        f.write_str("{{end}}")
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

fn write_fields(f: &mut fmt::Formatter<'_>, fields: &[String]) -> fmt::Result {
    fields.iter().try_for_each(|x| write!(f, ".{x}"))
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ArgKind::Dot => f.write_str("."),
            ArgKind::Nil => f.write_str("nil"),
            ArgKind::Bool(b) => write!(f, "{b}"),
            ArgKind::Number(t, _) => f.write_str(t),
            ArgKind::String(s) => f.write_str(&crate::printf::go_quote(s)),
            ArgKind::Field(fs) => write_fields(f, fs),
            ArgKind::Variable(v, fs) => {
                f.write_str(v)?;
                write_fields(f, fs)
            }
            ArgKind::Ident(n) => f.write_str(n),
            ArgKind::Chain(a, fs) => {
                write!(f, "{a}")?;
                write_fields(f, fs)
            }
            ArgKind::Pipe(p) => write!(f, "({p})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn funcs(name: &str) -> bool {
        matches!(name, "printf" | "len" | "eq" | "toUpper")
    }

    fn roundtrip(src: &str) -> String {
        let (t, _) = parse("t", src, &funcs).unwrap();
        t.root.iter().map(|n| n.to_string()).collect()
    }

    fn err(src: &str) -> String {
        parse("t", src, &funcs).unwrap_err().to_string()
    }

    #[test]
    fn prints_back() {
        for src in [
            "a{{.A.B}}b",
            "{{$x := .A}}{{$x.B}}",
            "{{if eq .A 1}}x{{else}}y{{end}}",
            "{{range $i, $e := .L}}{{$i}}{{break}}{{end}}",
            "{{with .A}}{{.}}{{end}}",
            "{{template \"x\" .}}",
            "{{printf \"%d\" (len .L) | printf \"%s\"}}",
            "{{(.A).B}}",
            "{{0x1F}} {{1.5e3}} {{-2}} {{nil}} {{true}}",
        ] {
            assert_eq!(roundtrip(src), src);
        }
    }

    #[test]
    fn else_if_chains() {
        assert_eq!(
            roundtrip("{{if .A}}a{{else if .B}}b{{else}}c{{end}}"),
            "{{if .A}}a{{else}}{{if .B}}b{{else}}c{{end}}{{end}}"
        );
    }

    #[test]
    fn defines_are_split_out() {
        let (main, defs) = parse(
            "t",
            "x{{define \"a\"}}A{{end}}y{{block \"b\" .}}B{{end}}",
            &funcs,
        )
        .unwrap();
        assert_eq!(
            main.root.iter().map(|n| n.to_string()).collect::<String>(),
            "xy{{template \"b\" .}}"
        );
        assert_eq!(defs.len(), 2);
        assert_eq!(defs[0].name, "a");
        assert_eq!(defs[1].name, "b");
    }

    #[test]
    fn errors_like_go() {
        assert_eq!(
            err("{{nope 1}}"),
            r#"template: t:1: function "nope" not defined"#
        );
        assert_eq!(err("\n{{$x}}"), r#"template: t:2: undefined variable "$x""#);
        assert_eq!(err("{{if .A}}"), "template: t:1: unexpected EOF");
        assert_eq!(err("{{end}}"), "template: t:1: unexpected {{end}}");
        assert_eq!(
            err("{{if 1}}{{else}}{{else}}{{end}}"),
            "template: t:1: expected end; found {{else}}"
        );
        assert_eq!(
            err("{{break}}"),
            "template: t:1: {{break}} outside {{range}}"
        );
        assert_eq!(
            err("{{.A | 3}}"),
            "template: t:1: non executable command in pipeline stage 2"
        );
        assert_eq!(err("{{}}"), "template: t:1: missing value for command");
        assert_eq!(
            err("{{define \"a\"}}x{{end}}{{define \"a\"}}y{{end}}"),
            r#"template: t:1: template: multiple definition of template "a""#
        );
        assert!(err("{{with .A}}{{else}}{{else}}{{end}}").contains("expected end"));
        assert!(err("{{(.A}}").contains("unclosed"));
        assert!(err("{{\"a\".B}}").contains("unexpected . after term"));
        assert!(err("{{$x, $y := 1}}").contains("too many declarations"));
        assert!(err("{{define \"a\"}}").contains("unexpected EOF"));
        assert!(err("{{range .}}{{define \"a\"}}{{end}}{{end}}").contains("unexpected"));
    }

    /// Go's parse_test.go `errorTests`: the error must contain the text.
    #[test]
    fn go_error_table() {
        let cases: &[(&str, &str, &str)] = &[
            ("unclosed1", "line1\n{{", "unclosed1:2: unclosed action"),
            (
                "unclosed2",
                "line1\n{{define `x`}}line2\n{{",
                "unclosed2:3: unclosed action",
            ),
            (
                "unclosed3",
                "line1\n{{\"x\"\n\"y\"\n",
                "unclosed3:4: unclosed action started at unclosed3:2",
            ),
            (
                "unclosed4",
                "{{\n\n\n\n\n",
                "unclosed4:6: unclosed action started at unclosed4:1",
            ),
            (
                "var1",
                "line1\n{{\nx\n}}",
                "var1:3: function \"x\" not defined",
            ),
            ("function", "{{foo}}", "function \"foo\" not defined"),
            ("comment1", "{{/*}}", "comment1:1: unclosed comment"),
            (
                "comment2",
                "{{/*\nhello\n}}",
                "comment2:1: unclosed comment",
            ),
            ("lparen", "{{.X (1 2 3}}", "unclosed left paren"),
            ("rparen", "{{.X 1 2 3 ) }}", "unexpected right paren"),
            ("rparen2", "{{(.X 1 2 3", "unclosed action"),
            ("space", "{{`x`3}}", "in operand"),
            ("idchar", "{{a#}}", "'#'"),
            ("charconst", "{{'a}}", "unterminated character constant"),
            ("stringconst", "{{\"a}}", "unterminated quoted string"),
            ("rawstringconst", "{{`a}}", "unterminated raw quoted string"),
            ("number", "{{0xi}}", "number syntax"),
            (
                "multidefine",
                "{{define `a`}}a{{end}}{{define `a`}}b{{end}}",
                "multiple definition of template",
            ),
            ("eof", "{{range .X}}", "unexpected EOF"),
            (
                "variable",
                "{{$x := 23}}{{with $x.y := 3}}{{$x 23}}{{end}}",
                "unexpected \":=\"",
            ),
            ("multidecl", "{{$a,$b,$c := 23}}", "too many declarations"),
            ("undefvar", "{{$a}}", "undefined variable"),
            ("wrongdot", "{{true.any}}", "unexpected . after term"),
            (
                "wrongpipeline",
                "{{12|false}}",
                "non executable command in pipeline",
            ),
            (
                "emptypipeline",
                "{{ ( ) }}",
                "missing value for parenthesized pipeline",
            ),
            (
                "multilinerawstring",
                "{{ $v := `\n` }} {{",
                "multilinerawstring:2: unclosed action",
            ),
            ("rangeundefvar", "{{range $k}}{{end}}", "undefined variable"),
            (
                "rangeundefvars",
                "{{range $k, $v}}{{end}}",
                "undefined variable",
            ),
            (
                "rangemissingvalue1",
                "{{range $k,}}{{end}}",
                "missing value for range",
            ),
            (
                "rangemissingvalue2",
                "{{range $k, $v := }}{{end}}",
                "missing value for range",
            ),
            (
                "rangenotvariable1",
                "{{range $k, .}}{{end}}",
                "range can only initialize variables",
            ),
            (
                "rangenotvariable2",
                "{{range $k, 123 := .}}{{end}}",
                "range can only initialize variables",
            ),
            ("unmatched else", "{{else}}", "unexpected {{else}}"),
            (
                "extra end",
                "{{if .X}}a{{else if .Y}}b{{end}}{{end}}",
                "unexpected {{end}}",
            ),
            (
                "break in else",
                "{{range .}}{{else}}{{break}}{{end}}",
                "{{break}} outside {{range}}",
            ),
            ("bad op", "{{$x := 0}}{{$x += 1}}", "number syntax"),
            ("adjacent", "{{printf `x`.}}", "in operand"),
            ("comma", "{{printf 3, 4}}", "in operand"),
            (
                "block pipe",
                "{{block \"foo\"}}hello{{end}}",
                "missing value for block clause",
            ),
        ];
        let funcs = |n: &str| n == "printf";
        for (name, src, want) in cases {
            let e = parse(name, src, &funcs)
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{name}: {e:?} lacks {want:?}");
        }
        // Go's parse_test.go cases that must parse, printed back.
        for (src, want) in [
            ("{{$x:=.}}{{$x +2}}", "{{$x := .}}{{$x +2}}"),
            ("{{ $x \n := \n 1 \n }}", "{{$x := 1}}"),
            ("{{\n\"x\"\n|\nprintf\n}}", "{{\"x\" | printf}}"),
            ("x\n{{-  3   -}}\ny", "x{{3}}y"),
            ("{{-\n/*\nhello\n*/\n-}}", ""),
            (
                "{{range $x = 0}}{{$x}}{{end}}",
                "{{range $x = 0}}{{$x}}{{end}}",
            ),
        ] {
            let (t, _) = parse("t", src, &funcs).unwrap();
            assert_eq!(
                t.root.iter().map(|n| n.to_string()).collect::<String>(),
                want,
                "{src:?}"
            );
        }
    }

    #[test]
    fn variable_scope_ends_with_control() {
        assert!(parse("t", "{{if .}}{{$x := 1}}{{end}}{{$x}}", &funcs).is_err());
        assert!(parse("t", "{{$x := 1}}{{if .}}{{$x = 2}}{{end}}{{$x}}", &funcs).is_ok());
        // Go checks assignments at execution time.
        assert!(parse("t", "{{$x = 2}}", &funcs).is_ok());
        // define bodies start with only `$`.
        assert!(parse("t", "{{$x := 1}}{{define \"a\"}}{{$x}}{{end}}", &funcs).is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("0x1F"), Some(Value::Int(31)));
        assert_eq!(parse_number("017"), Some(Value::Int(15)));
        assert_eq!(parse_number("0b101"), Some(Value::Int(5)));
        assert_eq!(parse_number("1_000"), Some(Value::Int(1000)));
        assert_eq!(parse_number("-1.5e3"), Some(Value::Float(-1500.0)));
        assert_eq!(parse_number("1e3"), Some(Value::Float(1000.0)));
        assert_eq!(parse_number(".5"), Some(Value::Float(0.5)));
        assert_eq!(parse_number("0x1p-2"), Some(Value::Float(0.25)));
        assert_eq!(parse_number("+inf"), None);
        assert_eq!(parse_number("09"), None);
        assert_eq!(parse_number("1__0"), None);
        assert_eq!(parse_number("99999999999999999999"), None);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let src = "{{".to_string() + &"(".repeat(5000) + "1" + &")".repeat(5000) + "}}";
        assert!(err(&src).contains("max expression depth exceeded"));
        let src = "{{if 1}}".repeat(5000) + &"{{end}}".repeat(5000);
        assert!(err(&src).contains("max control structure depth exceeded"));
    }
}
