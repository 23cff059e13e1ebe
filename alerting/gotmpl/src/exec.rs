//! Executor: walks parsed trees over a data [`Value`], writing the output.
//!
//! Follows Go's `text/template/exec.go`: pipelines pass the previous
//! command's value as the last argument, variables live until the end of
//! the enclosing control structure, `range` sorts map keys, `and`/`or` stop
//! early, and a missing map key gives nil (`<no value>`).

use std::borrow::Cow;
use std::rc::Rc;

use crate::error::{ExecError, ExecErrorKind, line_col};
use crate::funcs::Eval;
use crate::parse::{Arg, ArgKind, Branch, Cmd, Node, Pipe, Tree};
use crate::value::Value;
use crate::{MissingKey, Template};

/// What a walked list asks its enclosing `range` to do.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Flow {
    Normal,
    Break,
    Continue,
}

/// A variable's value: the execution's data (borrowed, never copied) or a
/// computed value (shared, so reading `$x.Field` does not copy `$x`).
#[derive(Clone)]
enum Slot<'a> {
    Data(&'a Value),
    Owned(Rc<Value>),
}

impl Slot<'_> {
    fn owned(v: Value) -> Self {
        Slot::Owned(Rc::new(v))
    }
}

impl std::ops::Deref for Slot<'_> {
    type Target = Value;
    fn deref(&self) -> &Value {
        match self {
            Slot::Data(v) => v,
            Slot::Owned(v) => v,
        }
    }
}

pub(crate) struct Exec<'a> {
    pub tmpl: &'a Template,
    pub out: String,
    /// Variables: shared, so that `$x.Field` reads without copying `$x`.
    vars: Vec<(String, Slot<'a>)>,
    depth: usize,
    steps: u64,
}

/// Errors are boxed so that the recursive walk's frames stay small.
type R<T> = Result<T, Box<ExecError>>;

impl<'a> Exec<'a> {
    pub(crate) fn new(tmpl: &'a Template) -> Exec<'a> {
        Exec {
            tmpl,
            out: String::new(),
            vars: Vec::new(),
            depth: 0,
            steps: 0,
        }
    }

    pub(crate) fn run(&mut self, tree: &Tree, data: &'a Value) -> R<()> {
        self.vars.push(("$".to_string(), Slot::Data(data)));
        self.walk_list(tree, data, &tree.root)?;
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn err(
        &self,
        tree: &Tree,
        pos: usize,
        context: &dyn std::fmt::Display,
        kind: ExecErrorKind,
    ) -> Box<ExecError> {
        let (line, col) = line_col(&tree.src, pos);
        // Go: `if len(context) > 20 { context = fmt.Sprintf("%.20s...", context) }`.
        let mut context = context.to_string();
        if context.len() > 20 {
            context = context.chars().take(20).collect::<String>() + "...";
        }
        Box::new(ExecError {
            parse_name: tree.parse_name.to_string(),
            name: tree.name.clone(),
            line,
            col,
            context,
            kind,
        })
    }

    fn step(&mut self, tree: &Tree, pos: usize, ctx: &dyn std::fmt::Display) -> R<()> {
        self.steps += 1;
        if self.steps > self.tmpl.limits.max_steps {
            return Err(self.err(
                tree,
                pos,
                ctx,
                ExecErrorKind::TooManySteps(self.tmpl.limits.max_steps),
            ));
        }
        Ok(())
    }

    fn enter(&mut self, tree: &Tree, pos: usize, ctx: &dyn std::fmt::Display) -> R<()> {
        self.depth += 1;
        if self.depth > self.tmpl.limits.max_depth {
            return Err(self.err(
                tree,
                pos,
                ctx,
                ExecErrorKind::TooDeep(self.tmpl.limits.max_depth),
            ));
        }
        Ok(())
    }

    fn write(&mut self, tree: &Tree, pos: usize, ctx: &dyn std::fmt::Display, s: &str) -> R<()> {
        if self.out.len() + s.len() > self.tmpl.limits.max_output {
            return Err(self.err(
                tree,
                pos,
                ctx,
                ExecErrorKind::OutputTooLarge(self.tmpl.limits.max_output),
            ));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn walk_list(&mut self, tree: &Tree, dot: &Value, list: &[Node]) -> R<Flow> {
        for n in list {
            let flow = self.walk(tree, dot, n)?;
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, tree: &Tree, dot: &Value, node: &Node) -> R<Flow> {
        match node {
            Node::Text(t) => {
                self.step(tree, 0, &"text")?;
                self.write(tree, 0, &"text", t)?;
            }
            Node::Action(pipe) => self.walk_action(tree, dot, pipe, node)?,
            Node::If(b) | Node::With(b) => return self.walk_if(tree, dot, b, node),
            Node::Range(b) => {
                self.step(tree, b.pos, node)?;
                self.enter(tree, b.pos, node)?;
                self.walk_range(tree, dot, b, node)?;
                self.depth -= 1;
            }
            Node::Template { pos, name, pipe } => {
                self.walk_template(tree, dot, *pos, name, pipe.as_ref(), node)?
            }
            Node::Break(_) => return Ok(Flow::Break),
            Node::Continue(_) => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    #[inline(never)]
    fn walk_action(&mut self, tree: &Tree, dot: &Value, pipe: &Pipe, node: &Node) -> R<()> {
        self.step(tree, pipe.pos, node)?;
        let v = self.eval_pipeline(tree, dot, pipe)?;
        if pipe.decl.is_empty() {
            let s = self.tmpl.print(&v, &self.out);
            self.write(tree, pipe.pos, node, &s)?;
        }
        Ok(())
    }

    #[inline(never)]
    fn walk_if(&mut self, tree: &Tree, dot: &Value, b: &Branch, node: &Node) -> R<Flow> {
        self.step(tree, b.pos, node)?;
        self.enter(tree, b.pos, node)?;
        let mark = self.vars.len();
        let v = match self.borrow_pipeline(tree, dot, &b.pipe)? {
            Some(v) => Cow::Borrowed(v),
            None => Cow::Owned(self.eval_pipeline(tree, dot, &b.pipe)?),
        };
        let flow = if v.truthy() {
            let inner = if matches!(node, Node::With(_)) {
                &v
            } else {
                dot
            };
            self.walk_list(tree, inner, &b.list)?
        } else if let Some(e) = &b.else_list {
            self.walk_list(tree, dot, e)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        self.depth -= 1;
        Ok(flow)
    }

    #[inline(never)]
    fn walk_template(
        &mut self,
        tree: &Tree,
        dot: &Value,
        pos: usize,
        name: &str,
        pipe: Option<&Pipe>,
        node: &Node,
    ) -> R<()> {
        self.step(tree, pos, node)?;
        let Some(target) = self.tmpl.trees.get(name).cloned() else {
            return Err(self.err(
                tree,
                pos,
                node,
                ExecErrorKind::UndefinedTemplate(name.to_string()),
            ));
        };
        let new_dot = match pipe {
            Some(p) => self.eval_pipeline(tree, dot, p)?,
            None => Value::Nil,
        };
        self.enter(tree, pos, node)?;
        let new_dot = Rc::new(new_dot);
        let saved = std::mem::replace(
            &mut self.vars,
            vec![("$".to_string(), Slot::Owned(new_dot.clone()))],
        );
        let r = self.walk_list(&target, &new_dot, &target.root);
        self.vars = saved;
        self.depth -= 1;
        r.map(|_| ())
    }

    #[inline(never)]
    fn walk_range(&mut self, tree: &Tree, dot: &Value, b: &Branch, node: &Node) -> R<()> {
        let mark = self.vars.len();
        let v = match self.borrow_pipeline(tree, dot, &b.pipe)? {
            Some(v) => Cow::Borrowed(v),
            None => Cow::Owned(self.eval_pipeline_value(tree, dot, &b.pipe)?),
        };
        let mut ran = false;
        let mut iterate = |this: &mut Self, key: Value, elem: &Value| -> R<Flow> {
            ran = true;
            this.step(tree, b.pos, node)?;
            let m = this.vars.len();
            let pairs: Vec<(&String, Slot<'a>)> = match b.pipe.decl.as_slice() {
                [] => Vec::new(),
                [e] => vec![(e, Slot::owned(elem.clone()))],
                [k, e, ..] => vec![(k, Slot::owned(key)), (e, Slot::owned(elem.clone()))],
            };
            for (name, v) in pairs {
                if b.pipe.is_assign {
                    // `range $i, $e = ...` assigns to existing variables.
                    if let Some(slot) = this.vars.iter_mut().rev().find(|(n, _)| n == name) {
                        slot.1 = v;
                    }
                } else {
                    this.vars.push((name.clone(), v));
                }
            }
            let flow = this.walk_list(tree, elem, &b.list);
            this.vars.truncate(m);
            flow
        };
        match &*v {
            Value::List(l) => {
                for (i, e) in l.iter().enumerate() {
                    if iterate(self, Value::Int(i as i64), e)? == Flow::Break {
                        break;
                    }
                }
            }
            Value::Map(m) => {
                for (k, e) in m {
                    if iterate(self, Value::String(k.clone()), e)? == Flow::Break {
                        break;
                    }
                }
            }
            Value::Int(n) => {
                if b.pipe.decl.len() > 1 {
                    return Err(self.err(
                        tree,
                        b.pos,
                        node,
                        ExecErrorKind::RangeTwoVars(v.to_go_string()),
                    ));
                }
                for i in 0..*n {
                    if iterate(self, Value::Int(i), &Value::Int(i))? == Flow::Break {
                        break;
                    }
                }
            }
            Value::Nil => {}
            other => {
                return Err(self.err(
                    tree,
                    b.pos,
                    node,
                    ExecErrorKind::CantRange(other.to_go_string()),
                ));
            }
        }
        if !ran && let Some(e) = &b.else_list {
            self.walk_list(tree, dot, e)?;
        }
        self.vars.truncate(mark);
        Ok(())
    }

    /// The value of a pipeline that is just `.` or `.A.B` reaching existing
    /// map keys, borrowed from dot instead of copied; None for any other.
    fn borrow_pipeline<'v>(
        &mut self,
        tree: &Tree,
        dot: &'v Value,
        pipe: &Pipe,
    ) -> R<Option<&'v Value>> {
        let [cmd] = pipe.cmds.as_slice() else {
            return Ok(None);
        };
        if !pipe.decl.is_empty() || cmd.args.len() != 1 {
            return Ok(None);
        }
        let found = match &cmd.args[0].kind {
            ArgKind::Dot => Some(dot),
            ArgKind::Field(fields) => fields.iter().try_fold(dot, |v, f| match v {
                Value::Map(m) => m.get(f),
                _ => None,
            }),
            _ => None,
        };
        if found.is_some() {
            self.step(tree, cmd.pos, cmd)?;
        }
        Ok(found)
    }

    /// A pipeline's value without handling its declarations.
    fn eval_pipeline_value(&mut self, tree: &Tree, dot: &Value, pipe: &Pipe) -> R<Value> {
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(tree, dot, cmd, value)?);
        }
        Ok(value.unwrap_or(Value::Nil))
    }

    fn eval_pipeline(&mut self, tree: &Tree, dot: &Value, pipe: &Pipe) -> R<Value> {
        let value = self.eval_pipeline_value(tree, dot, pipe)?;
        for name in &pipe.decl {
            if pipe.is_assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = Slot::owned(value.clone()),
                    None => {
                        return Err(self.err(
                            tree,
                            pipe.pos,
                            pipe,
                            ExecErrorKind::UndefinedVariable(name.clone()),
                        ));
                    }
                }
            } else {
                self.vars.push((name.clone(), Slot::owned(value.clone())));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, tree: &Tree, cmd: &Cmd, has_final: bool) -> R<()> {
        if cmd.args.len() > 1 || has_final {
            return Err(self.err(
                tree,
                cmd.pos,
                cmd,
                ExecErrorKind::ArgToNonFunction(cmd.args[0].to_string()),
            ));
        }
        Ok(())
    }

    fn eval_command(
        &mut self,
        tree: &Tree,
        dot: &Value,
        cmd: &Cmd,
        fin: Option<Value>,
    ) -> R<Value> {
        self.step(tree, cmd.pos, cmd)?;
        let first = &cmd.args[0];
        match &first.kind {
            ArgKind::Field(fields) => {
                self.eval_field_chain(tree, dot, dot, fields, &cmd.args[1..], fin, first)
            }
            ArgKind::Chain(inner, fields) => {
                let recv = self.eval_arg(tree, dot, inner)?;
                self.eval_field_chain(tree, dot, &recv, fields, &cmd.args[1..], fin, first)
            }
            ArgKind::Variable(name, fields) => {
                let v = self.var(tree, first, name)?;
                if fields.is_empty() {
                    self.not_a_function(tree, cmd, fin.is_some())?;
                    return Ok((*v).clone());
                }
                self.eval_field_chain(tree, dot, &v, fields, &cmd.args[1..], fin, first)
            }
            ArgKind::Ident(name) => self.eval_function(tree, dot, name, first, &cmd.args[1..], fin),
            ArgKind::Pipe(p) => {
                self.not_a_function(tree, cmd, fin.is_some())?;
                self.enter(tree, first.pos, first)?;
                let v = self.eval_pipeline(tree, dot, p);
                self.depth -= 1;
                v
            }
            ArgKind::Nil => Err(self.err(tree, first.pos, cmd, ExecErrorKind::NilCommand)),
            _ => {
                self.not_a_function(tree, cmd, fin.is_some())?;
                self.eval_arg(tree, dot, first)
            }
        }
    }

    fn var(&self, tree: &Tree, arg: &Arg, name: &str) -> R<Slot<'a>> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => Err(self.err(
                tree,
                arg.pos,
                arg,
                ExecErrorKind::UndefinedVariable(name.to_string()),
            )),
        }
    }

    fn eval_arg(&mut self, tree: &Tree, dot: &Value, arg: &Arg) -> R<Value> {
        match &arg.kind {
            ArgKind::Dot => Ok(dot.clone()),
            ArgKind::Nil => Ok(Value::Nil),
            ArgKind::Bool(b) => Ok(Value::Bool(*b)),
            ArgKind::Number(_, v) => Ok(v.clone()),
            ArgKind::String(s) => Ok(Value::String(s.clone())),
            ArgKind::Field(f) => self.eval_field_chain(tree, dot, dot, f, &[], None, arg),
            ArgKind::Variable(name, f) => {
                let v = self.var(tree, arg, name)?;
                if f.is_empty() {
                    return Ok((*v).clone());
                }
                self.eval_field_chain(tree, dot, &v, f, &[], None, arg)
            }
            ArgKind::Ident(name) => self.eval_function(tree, dot, name, arg, &[], None),
            ArgKind::Chain(inner, f) => {
                let recv = self.eval_arg(tree, dot, inner)?;
                self.eval_field_chain(tree, dot, &recv, f, &[], None, arg)
            }
            ArgKind::Pipe(p) => {
                self.enter(tree, arg.pos, arg)?;
                let v = self.eval_pipeline(tree, dot, p);
                self.depth -= 1;
                v
            }
        }
    }

    fn eval_args(
        &mut self,
        tree: &Tree,
        dot: &Value,
        args: &[Arg],
        fin: Option<Value>,
    ) -> R<Vec<Value>> {
        let mut out = Vec::with_capacity(args.len() + 1);
        for a in args {
            out.push(self.eval_arg(tree, dot, a)?);
        }
        out.extend(fin);
        Ok(out)
    }

    fn eval_function(
        &mut self,
        tree: &Tree,
        dot: &Value,
        name: &str,
        node: &Arg,
        args: &[Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        let Some(entry) = self.tmpl.funcs.entry(name).cloned() else {
            return Err(self.err(
                tree,
                node.pos,
                node,
                ExecErrorKind::NotAFunction(name.to_string()),
            ));
        };
        let call_err = |this: &Self, message: String| {
            this.err(
                tree,
                node.pos,
                &CallCtx(node, args),
                call_kind(name, message),
            )
        };
        if entry.eval != Eval::Eager {
            // `and`/`or`: evaluate left to right, stop at the deciding value.
            let total = args.len() + usize::from(fin.is_some());
            if total == 0 {
                return Err(call_err(
                    self,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let mut last = Value::Nil;
            for a in args {
                last = self.eval_arg(tree, dot, a)?;
                if last.truthy() == (entry.eval == Eval::Or) {
                    return Ok(last);
                }
            }
            if let Some(f) = fin {
                last = f;
            }
            return Ok(last);
        }
        let vals = self.eval_args(tree, dot, args, fin)?;
        (entry.f)(&vals).map_err(|m| call_err(self, m))
    }

    /// `.A.B.C` on `recv`: the last field gets `args` (a method call).
    #[allow(clippy::too_many_arguments)]
    fn eval_field_chain(
        &mut self,
        tree: &Tree,
        dot: &Value,
        recv: &Value,
        fields: &[String],
        args: &[Arg],
        fin: Option<Value>,
        node: &Arg,
    ) -> R<Value> {
        let n = fields.len();
        let mut fin = fin;
        // Walk by reference through map keys; copy only what is returned.
        let mut cur: Cow<'_, Value> = Cow::Borrowed(recv);
        for (i, f) in fields.iter().enumerate() {
            let last = i + 1 == n;
            let call_args = if last && (!args.is_empty() || fin.is_some()) {
                Some(self.eval_args(tree, dot, args, fin.take())?)
            } else {
                None
            };
            cur = match cur {
                Cow::Borrowed(Value::Map(m)) if call_args.is_none() && m.contains_key(f) => {
                    Cow::Borrowed(&m[f])
                }
                Cow::Borrowed(r) => Cow::Owned(self.eval_field(tree, node, r, f, call_args, last)?),
                Cow::Owned(o) => Cow::Owned(self.eval_field(tree, node, &o, f, call_args, last)?),
            };
        }
        Ok(cur.into_owned())
    }

    fn eval_field(
        &mut self,
        tree: &Tree,
        node: &Arg,
        recv: &Value,
        field: &str,
        args: Option<Vec<Value>>,
        last: bool,
    ) -> R<Value> {
        let bad = |this: &Self, kind| Err(this.err(tree, node.pos, node, kind));
        match recv {
            Value::Map(m) => {
                if let Some(v) = m.get(field) {
                    if args.is_some() {
                        return bad(self, ExecErrorKind::NotAMethod(field.to_string()));
                    }
                    return Ok(v.clone());
                }
                if let Some(r) =
                    crate::methods::map_method(m, field, args.as_deref().unwrap_or(&[]))
                {
                    return r.map_err(|message| {
                        self.err(tree, node.pos, node, call_kind(field, message))
                    });
                }
                if args.is_some() {
                    return bad(self, ExecErrorKind::NotAMethod(field.to_string()));
                }
                match self.tmpl.missing_key {
                    MissingKey::Default => Ok(Value::Nil),
                    // Zero: "" as for Go's map[string]string; a chain
                    // through the missing key goes on as nil, as Go does.
                    MissingKey::Zero if last => Ok(Value::String(String::new())),
                    MissingKey::Zero => Ok(Value::Nil),
                    MissingKey::Error => bad(self, ExecErrorKind::MissingKey(field.to_string())),
                }
            }
            Value::Nil => {
                if self.tmpl.missing_key == MissingKey::Error {
                    return bad(self, ExecErrorKind::NilField(field.to_string()));
                }
                Ok(Value::Nil)
            }
            other => {
                if let Some(r) =
                    crate::methods::value_method(other, field, args.as_deref().unwrap_or(&[]))
                {
                    return r.map_err(|message| {
                        self.err(tree, node.pos, node, call_kind(field, message))
                    });
                }
                bad(
                    self,
                    ExecErrorKind::BadField {
                        field: field.to_string(),
                        type_name: other.type_name(),
                    },
                )
            }
        }
    }
}

/// The error of a failed call. Argument-count and argument-type errors are
/// reported by Go's executor itself, without "error calling".
fn call_kind(name: &str, message: String) -> ExecErrorKind {
    if message.starts_with("wrong number of args for ")
        || message.starts_with("wrong type for value; ")
    {
        ExecErrorKind::BadArgs(message)
    } else {
        ExecErrorKind::Func {
            name: name.to_string(),
            message,
        }
    }
}

/// Error context for a function call: the function and its arguments.
struct CallCtx<'a>(&'a Arg, &'a [Arg]);

impl std::fmt::Display for CallCtx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        for a in self.1 {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}

/// Builds a `Map` from pairs (tests).
#[cfg(test)]
pub(crate) fn map_of(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}
