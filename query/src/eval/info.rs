//! `info(v, {data label matchers})` (experimental): adds the data labels of
//! matching info series (`target_info` by default) to each series of `v`,
//! joining on the identifying labels `instance` and `job`, at each step.

use std::collections::{BTreeMap, HashMap, HashSet};

use engine::{Labels, METRIC_NAME, MatchOp, Matcher};

use super::error::{Result, exec};
use super::evaluator::{Ev, OutBuilder, Val};
use super::selector;
use super::value::{Series, get, labels_string, set_label};
use crate::promql::ast::{AtModifier, Call, Duration, Expr, RangeMode, VectorSelector};

const TARGET_INFO: &str = "target_info";
const IDENTIFYING: [&str; 2] = ["instance", "job"];

fn matcher(op: MatchOp, name: &str, value: &str) -> Result<Matcher> {
    Matcher::new(op, name, value).map_err(|e| exec(e.to_string()))
}

/// Prometheus's `effectiveInfoNameMatchers`.
fn effective_name_matchers(ms: &[Matcher]) -> Result<Vec<Matcher>> {
    if ms
        .iter()
        .any(|m| matches!(m.op, MatchOp::Equal | MatchOp::RegexMatch))
    {
        return Ok(ms.to_vec());
    }
    if !ms.is_empty() {
        let mut out = vec![matcher(MatchOp::RegexMatch, METRIC_NAME, ".+_info")?];
        out.extend(ms.iter().cloned());
        return Ok(out);
    }
    Ok(vec![matcher(MatchOp::Equal, METRIC_NAME, TARGET_INFO)?])
}

/// The `@` time and offset of the first selector of `e` (with enclosing
/// subqueries' offsets, and their `@` if it has none).
fn timestamp_and_offset(ev: &Ev, e: &Expr) -> Result<(Option<i64>, i64)> {
    fn walk<'e>(
        e: &'e Expr,
        path: &mut Vec<&'e Expr>,
        found: &mut Option<(&'e VectorSelector, Vec<&'e Expr>)>,
    ) {
        if found.is_some() {
            return;
        }
        match e {
            Expr::Vector(vs) => *found = Some((vs, path.clone())),
            Expr::Matrix(ms) => *found = Some((&ms.vector, path.clone())),
            Expr::Subquery(sq) => {
                path.push(e);
                walk(&sq.expr, path, found);
                path.pop();
            }
            Expr::Paren(x) | Expr::Unary(_, x) => walk(x, path, found),
            Expr::Binary(b) => {
                walk(&b.lhs, path, found);
                walk(&b.rhs, path, found);
            }
            Expr::Aggregate(a) => {
                if let Some(p) = &a.param {
                    walk(p, path, found);
                }
                walk(&a.expr, path, found);
            }
            Expr::Call(c) => c.args.iter().for_each(|a| walk(a, path, found)),
            Expr::Number(_) | Expr::String(_) => {}
        }
    }
    let mut found = None;
    walk(e, &mut Vec::new(), &mut found);
    let Some((vs, path)) = found else {
        return Ok((None, 0));
    };
    let mut at = ev.at_time(&vs.at);
    let mut off = ev.offset(&vs.offset)?;
    for p in path.iter().rev() {
        if at.is_some() {
            break;
        }
        if let Expr::Subquery(sq) = p {
            off += ev.offset(&sq.offset)?;
            at = ev.at_time(&sq.at);
        }
    }
    Ok((at, off))
}

pub(crate) fn eval(ev: &Ev, c: &Call) -> Result<Val> {
    let (at, off) = timestamp_and_offset(ev, &c.args[0])?;
    let base = ev.eval(&c.args[0])?.into_vector()?;
    let mut data: BTreeMap<String, Vec<Matcher>> = BTreeMap::new();
    let mut name_matchers: Vec<Matcher> = Vec::new();
    match c.args.get(1) {
        Some(Expr::Vector(vs)) => {
            for m in &vs.matchers {
                data.entry(m.name.clone()).or_default().push(m.clone());
                if m.name == METRIC_NAME {
                    name_matchers.push(m.clone());
                }
            }
        }
        Some(_) => return Err(exec("info() expects a label selector as second argument")),
        None => name_matchers.push(matcher(MatchOp::Equal, METRIC_NAME, TARGET_INFO)?),
    }
    let effective = effective_name_matchers(&name_matchers)?;
    let ignored: HashSet<&Labels> = base
        .iter()
        .filter(|s| {
            let n = get(&s.labels, METRIC_NAME);
            effective.iter().all(|m| m.matches(n))
        })
        .map(|s| &s.labels)
        .collect();

    // Identifying label values of the series to enrich.
    let mut id_values: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in base.iter().filter(|s| !ignored.contains(&s.labels)) {
        for l in IDENTIFYING {
            let v = get(&s.labels, l);
            if !v.is_empty() {
                let vals = id_values.entry(l).or_default();
                if !vals.contains(&v) {
                    vals.push(v);
                }
            }
        }
    }
    let data_names: Vec<Matcher> = data
        .values()
        .flatten()
        .filter(|m| m.name == METRIC_NAME)
        .cloned()
        .collect();
    let data: BTreeMap<String, Vec<Matcher>> = data
        .into_iter()
        .filter_map(|(k, v)| {
            let v: Vec<Matcher> = v.into_iter().filter(|m| m.name != METRIC_NAME).collect();
            (!v.is_empty()).then_some((k, v))
        })
        .collect();
    let info: Vec<Series> = if id_values.is_empty() {
        Vec::new()
    } else {
        let mut ms = Vec::new();
        for (name, vals) in &id_values {
            let re = vals
                .iter()
                .map(|v| regex::escape(v))
                .collect::<Vec<_>>()
                .join("|");
            ms.push(matcher(MatchOp::RegexMatch, name, &re)?);
        }
        ms.extend(data.values().flatten().cloned());
        ms.extend(effective_name_matchers(&data_names)?);
        let vs = VectorSelector {
            name: None,
            matchers: ms,
            offset: Some(Duration::Literal(off)),
            at: at.map(AtModifier::Time),
            range_mode: RangeMode::Normal,
            position: 0,
        };
        selector::instant_with(ev, &vs, true)?
    };
    combine(ev, &base, &info, &ignored, &data)
}

/// The join key of a series with an info metric name.
fn sig(name: &str, labels: &Labels) -> Vec<(String, String)> {
    let mut k = vec![(METRIC_NAME.to_string(), name.to_string())];
    for l in IDENTIFYING {
        let v = get(labels, l);
        if !v.is_empty() {
            k.push((l.to_string(), v.to_string()));
        }
    }
    k.sort();
    k
}

fn combine(
    ev: &Ev,
    base: &[Series],
    info: &[Series],
    ignored: &HashSet<&Labels>,
    data: &BTreeMap<String, Vec<Matcher>>,
) -> Result<Val> {
    let mut info_names: Vec<&str> = info.iter().map(|s| get(&s.labels, METRIC_NAME)).collect();
    info_names.sort();
    info_names.dedup();
    let info_sigs: Vec<_> = info
        .iter()
        .map(|s| sig(get(&s.labels, METRIC_NAME), &s.labels))
        .collect();
    let all_match_empty = data.values().flatten().all(|m| m.matches(""));
    let mut out = OutBuilder::new();
    let (mut bpos, mut ipos) = (vec![0usize; base.len()], vec![0usize; info.len()]);
    for step in 0..ev.n() {
        let t = ev.ts(step);
        if step % 256 == 255 {
            ev.ctx.check()?;
        }
        let mut right: HashMap<&Vec<(String, String)>, (usize, f64)> = HashMap::new();
        for (i, s) in info.iter().enumerate() {
            let Some(p) = s.points.get(ipos[i]).filter(|p| p.t == t) else {
                continue;
            };
            ipos[i] += 1;
            match right.get(&info_sigs[i]) {
                Some(&(j, orig)) if orig > p.v => {
                    let _ = j;
                }
                Some(&(j, orig)) if orig == p.v => {
                    return Err(exec(format!(
                        "found duplicate series for info metric: existing {} @ {}, new {} @ {}",
                        labels_string(&info[j].labels),
                        (orig * 1000.0) as i64,
                        labels_string(&s.labels),
                        (p.v * 1000.0) as i64
                    )));
                }
                _ => {
                    right.insert(&info_sigs[i], (i, p.v));
                }
            }
        }
        for (bi, s) in base.iter().enumerate() {
            let Some(p) = s.points.get(bpos[bi]).filter(|p| p.t == t) else {
                continue;
            };
            bpos[bi] += 1;
            if ignored.contains(&s.labels) {
                out.push(&s.labels, s.drop_name, t, p.v)?;
                continue;
            }
            let mut extra = Labels::default();
            let mut seen = 0;
            for name in &info_names {
                let Some(&(ii, _)) = right.get(&sig(name, &s.labels)) else {
                    continue;
                };
                for l in info[ii].labels.iter() {
                    if l.name == METRIC_NAME
                        || (!data.is_empty() && !data.contains_key(l.name.as_str()))
                    {
                        continue;
                    }
                    let cur = get(&extra, &l.name);
                    if !cur.is_empty() && cur != l.value {
                        return Err(exec(format!("conflicting label: {}", l.name)));
                    }
                    if s.labels.get(&l.name).is_some() {
                        continue;
                    }
                    extra = set_label(&extra, &l.name, &l.value);
                }
                seen += 1;
            }
            if seen == 0 && !all_match_empty {
                continue;
            }
            let mut labels = s.labels.clone();
            for l in extra.iter() {
                labels = set_label(&labels, &l.name, &l.value);
            }
            out.push(&labels, s.drop_name, t, p.v)?;
        }
    }
    Ok(Val::Vector(out.series))
}
