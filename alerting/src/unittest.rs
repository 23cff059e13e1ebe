//! Rule unit tests in promtool's format (`promtool test rules`, Prometheus
//! 2.42 semantics): input series in the expanding notation, the rule files
//! evaluated from time 0 to the largest `eval_time` every
//! `evaluation_interval`, firing alerts and PromQL results compared with
//! the expected ones.
//!
//! Semantics kept from promtool: each test group gets its own storage;
//! input samples are loaded lazily, up to each evaluation step (so a
//! `promql_expr_test` sees input samples up to the last step only, plus
//! every rule result); all groups are evaluated at each step, in
//! `group_eval_order` (unlisted groups first, then file order); alerting
//! rules start restored (they write `ALERTS` from the first step); a rule
//! evaluation error ends the test group; the alerts of `eval_time` t are
//! those after the step `s` with `s <= t < s + evaluation_interval`, firing
//! ones only, compared with labels (`alertname` added) and expanded
//! annotations, empty values kept, order ignored; PromQL samples compare
//! labels exactly and values with `==` (so `NaN` never matches).
//! An `interval` left out is zero, as in 2.42: every input sample lands at
//! time 0 and the first value of each series wins.

mod format;
mod text;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use engine::{Db, Durability, Labels, Options, Sample, SeriesSamples, WriteBatch};
use query::eval::{EngineOptions, QueryOptions, Value};
use query::gofmt::quote;
use query::promql::format_duration_ms;
use query::promql::series::{self, SequenceValue};

use crate::group::{Group, GroupContext};
use crate::manager::{GlobalConfig, LoadError, load_groups};
use crate::metrics::RuleMetrics;
use crate::rule::{AlertState, duration_ns};
use crate::rules::file::RuleFileError;

pub use format::{
    AlertTestCase, ExpAlert, ExpSample, FormatError, InputSeries, PromqlTestCase, TestFile,
    TestGroup,
};
use text::{Pairs, go_duration, labels_string, pairs_of, samples_string};

/// promtool's query engine for unit tests: at most 10,000 samples in
/// memory, a 100 s timeout.
const MAX_SAMPLES: usize = 10_000;
const QUERY_TIMEOUT: Duration = Duration::from_secs(100);

/// One failure of a test file, worded as promtool words it.
#[derive(Debug, thiserror::Error)]
pub enum UnitTestError {
    #[error("open {file}: {message}")]
    Read { file: String, message: String },
    #[error("{0}")]
    Format(#[from] FormatError),
    #[error("syntax error in pattern {pattern}: {message}")]
    Pattern { pattern: String, message: String },
    #[error("group name repeated in evaluation order: {0}")]
    RepeatedGroup(String),
    #[error(
        "an item under alert_rule_test misses required attribute alertname at eval_time {eval_time}{}",
        in_group(.group)
    )]
    MissingAlertname { eval_time: String, group: String },
    #[error("input series {series}: {source}")]
    Series {
        series: String,
        source: series::SeriesError,
    },
    #[error("input series {series}: native histograms are not supported")]
    Histogram { series: String },
    #[error("input series {series}: {message}")]
    SeriesLabels { series: String, message: String },
    #[error("{0}")]
    Storage(String),
    #[error("{0}")]
    RuleFile(Box<RuleFileError>),
    #[error("    rule: {rule}, time: {time}, err: {err}")]
    RuleEval {
        rule: String,
        time: String,
        err: String,
    },
    #[error(
        "{}    alertname: {alertname}, time: {time}, \n        exp:{exp}, \n        got:{got}",
        name_line(.group)
    )]
    Alerts {
        group: String,
        alertname: String,
        time: String,
        exp: String,
        got: String,
    },
    #[error("    expr: {}, time: {time}, err: {err}", quote(.expr))]
    Expr {
        expr: String,
        time: String,
        err: String,
    },
    #[error("    expr: {}, time: {time},\n        exp: {exp}\n        got: {got}", quote(.expr))]
    Samples {
        expr: String,
        time: String,
        exp: String,
        got: String,
    },
}

fn in_group(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!(" (in TestGroup {name})")
    }
}

fn name_line(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!("    name: {name},\n")
    }
}

/// The outcome of one test file.
#[derive(Debug, Default)]
pub struct FileReport {
    /// `rule_files` patterns that matched nothing (promtool warns).
    pub unmatched_patterns: Vec<String>,
    pub errors: Vec<UnitTestError>,
}

impl FileReport {
    pub fn passed(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Runs every file as `promtool test rules` does, printing its report
/// (`Unit Testing:  FILE`, then `  SUCCESS` or `  FAILED:` and the
/// failures). Returns true when every file passed.
pub fn run_files(files: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> io::Result<bool> {
    let mut all_passed = true;
    for f in files {
        writeln!(out, "Unit Testing:  {}", f.display())?;
        out.flush()?;
        let report = test_file(f);
        for p in &report.unmatched_patterns {
            writeln!(err, "  WARNING: no file match pattern {p}")?;
        }
        if report.passed() {
            writeln!(out, "  SUCCESS")?;
        } else {
            all_passed = false;
            writeln!(err, "  FAILED:")?;
            for e in &report.errors {
                writeln!(err, "{e}")?;
                err.flush()?;
                writeln!(out)?;
            }
        }
        writeln!(out)?;
    }
    Ok(all_passed)
}

/// Runs one test file.
pub fn test_file(path: &Path) -> FileReport {
    let mut report = FileReport::default();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            report.errors.push(UnitTestError::Read {
                file: path.display().to_string(),
                message: match e.kind() {
                    io::ErrorKind::NotFound => "no such file or directory".into(),
                    io::ErrorKind::PermissionDenied => "permission denied".into(),
                    _ => e.to_string(),
                },
            });
            return report;
        }
    };
    let file = match format::parse(&text) {
        Ok(f) => f,
        Err(e) => {
            report.errors.push(e.into());
            return report;
        }
    };
    let base = path.parent().unwrap_or(Path::new(""));
    let rule_files = match resolve_rule_files(base, &file.rule_files, &mut report) {
        Ok(r) => r,
        Err(e) => {
            report.errors.push(e);
            return report;
        }
    };
    let eval_interval = if file.evaluation_interval.is_zero() {
        Duration::from_secs(60)
    } else {
        file.evaluation_interval
    };
    let mut order = HashMap::new();
    for (i, name) in file.group_eval_order.iter().enumerate() {
        if order.insert(name.clone(), i).is_some() {
            report
                .errors
                .push(UnitTestError::RepeatedGroup(name.clone()));
            return report;
        }
    }
    for tg in &file.tests {
        report
            .errors
            .extend(run_group(tg, eval_interval, &order, &rule_files));
    }
    report
}

/// Joins relative `rule_files` to the test file's directory and expands
/// the globs; patterns matching nothing are noted.
fn resolve_rule_files(
    base: &Path,
    patterns: &[String],
    report: &mut FileReport,
) -> Result<Vec<PathBuf>, UnitTestError> {
    let mut out = Vec::new();
    for p in patterns {
        let full = if p.is_empty() || Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            base.join(p)
        };
        let pattern = full.display().to_string();
        let paths = glob::glob(&pattern).map_err(|e| UnitTestError::Pattern {
            pattern: pattern.clone(),
            message: e.msg.to_string(),
        })?;
        let mut found: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
        found.sort();
        if found.is_empty() {
            report.unmatched_patterns.push(pattern);
        }
        out.extend(found);
    }
    Ok(out)
}

/// An input series: its labels and samples in time order.
type Input = (Labels, Vec<Sample>);

/// Expands the input series (`load <interval>`); a later definition of
/// the same series replaces an earlier one.
fn load_inputs(tg: &TestGroup) -> Result<Vec<Input>, UnitTestError> {
    let step = i64::try_from(tg.interval.as_millis()).unwrap_or(i64::MAX);
    let mut out: Vec<Input> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for s in &tg.input_series {
        let line = format!("{} {}", s.series, s.values);
        let desc = series::parse_series_desc(&line).map_err(|source| UnitTestError::Series {
            series: s.series.clone(),
            source,
        })?;
        let labels = Labels::from_pairs(desc.labels).map_err(|e| UnitTestError::SeriesLabels {
            series: s.series.clone(),
            message: e.to_string(),
        })?;
        let mut samples: Vec<Sample> = Vec::with_capacity(desc.values.len());
        for (k, v) in desc.values.iter().enumerate() {
            let t = step.saturating_mul(k as i64);
            match v {
                SequenceValue::Omitted => {}
                SequenceValue::Histogram => {
                    return Err(UnitTestError::Histogram {
                        series: s.series.clone(),
                    });
                }
                // With a zero interval every sample has time 0: the first
                // one is kept, later ones are refused as duplicates.
                SequenceValue::Value(_) if samples.last().is_some_and(|l| l.t >= t) => {}
                SequenceValue::Value(v) => samples.push(Sample::new(t, *v)),
            }
        }
        match index.get(&labels) {
            Some(&i) => out[i].1 = samples,
            None => {
                index.insert(labels.clone(), out.len());
                out.push((labels, samples));
            }
        }
    }
    Ok(out)
}

/// The test group's storage: a database in a temporary directory.
struct Storage {
    db: Arc<Db>,
    _dir: tempfile::TempDir,
}

impl Storage {
    fn open() -> Result<Storage, UnitTestError> {
        let dir = tempfile::tempdir()
            .map_err(|e| UnitTestError::Storage(format!("creating test storage: {e}")))?;
        let mut opts = Options::new(dir.path());
        opts.background = false;
        // Nothing survives the test: acknowledge at once.
        opts.durability = Durability::Async {
            interval: Duration::from_millis(5),
        };
        let mut reg = prometheus_client::registry::Registry::default();
        let db = Db::open(opts, &mut reg)
            .map_err(|e| UnitTestError::Storage(format!("opening test storage: {e}")))?;
        Ok(Storage { db, _dir: dir })
    }

    /// Appends the input samples at or before `t_ms` not appended yet.
    fn append_till(
        &self,
        inputs: &[Input],
        cursors: &mut [usize],
        t_ms: i64,
    ) -> Result<(), UnitTestError> {
        let mut batch = WriteBatch::default();
        for ((labels, samples), cur) in inputs.iter().zip(cursors.iter_mut()) {
            let n = samples[*cur..].partition_point(|s| s.t <= t_ms);
            if n > 0 {
                batch.series.push(SeriesSamples::new(
                    labels.clone(),
                    samples[*cur..*cur + n].to_vec(),
                ));
                *cur += n;
            }
        }
        if batch.series.is_empty() {
            return Ok(());
        }
        match self.db.append(&batch) {
            Ok(ticket) => {
                drop(ticket);
                Ok(())
            }
            Err(e) => Err(UnitTestError::Storage(e.to_string())),
        }
    }
}

/// Labels and annotations of one alert, as compared.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct AlertView {
    labels: Pairs,
    annotations: Pairs,
}

impl AlertView {
    fn text(&self) -> String {
        format!(
            "Labels:{}\nAnnotations:{}",
            labels_string(&self.labels),
            labels_string(&self.annotations)
        )
    }
}

/// promtool's `labelsAndAnnotations.String()`.
fn alerts_string(v: &[AlertView]) -> String {
    if v.is_empty() {
        return "[]".to_string();
    }
    let mut s = String::from("[\n");
    for (i, a) in v.iter().enumerate() {
        if i > 0 {
            s.push_str(",\n");
        }
        s.push_str(&format!(
            "{i}:{}",
            text::indent_lines(&format!("\n{}", a.text()), "  ")
        ));
    }
    s.push_str("\n]");
    s
}

fn engine_options(eval_interval: Duration) -> QueryOptions {
    QueryOptions {
        engine: EngineOptions {
            max_samples: MAX_SAMPLES,
            timeout: QUERY_TIMEOUT,
            default_subquery_step: eval_interval,
            ..EngineOptions::default()
        },
        ..QueryOptions::default()
    }
}

/// Runs one test group (promtool's `testGroup.test`).
fn run_group(
    tg: &TestGroup,
    eval_interval: Duration,
    order: &HashMap<String, usize>,
    rule_files: &[PathBuf],
) -> Vec<UnitTestError> {
    let inputs = match load_inputs(tg) {
        Ok(i) => i,
        Err(e) => return vec![e],
    };
    let storage = match Storage::open() {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let query_options = engine_options(eval_interval);
    let global = GlobalConfig {
        evaluation_interval: tg.interval,
        rule_query_offset: Duration::ZERO,
        external_labels: tg.external_labels.clone(),
        external_url: tg.external_url.clone(),
    };
    let ctx = Arc::new(GroupContext {
        db: storage.db.clone(),
        query_options: query_options.clone(),
        external_labels: global.external_labels.clone(),
        external_url: global.external_url.clone(),
        resend_delay: Duration::from_secs(60),
        outage_tolerance: Duration::from_secs(3600),
        for_grace_period: Duration::from_secs(600),
        sink: None,
        observer: None,
        metrics: RuleMetrics::new(&mut prometheus_client::registry::Registry::default()),
    });
    let mut groups = match load_groups(rule_files, &global, false, ctx) {
        Ok(g) => g,
        Err(LoadError::Files(errs)) => {
            return errs
                .into_iter()
                .map(|e| UnitTestError::RuleFile(Box::new(e)))
                .collect();
        }
        Err(e) => return vec![UnitTestError::Storage(e.to_string())],
    };
    // Groups named in `group_eval_order` run in that order; the others
    // count as position 0 (promtool's partial order).
    groups.sort_by_key(|g| order.get(&g.name).copied().unwrap_or(0));

    // Alert tests by evaluation time.
    let mut alert_tests: BTreeMap<Duration, Vec<&AlertTestCase>> = BTreeMap::new();
    let mut alerts_in_test: HashMap<Duration, BTreeSet<&str>> = HashMap::new();
    for a in &tg.alert_rule_test {
        if a.alertname.is_empty() {
            return vec![UnitTestError::MissingAlertname {
                eval_time: format_duration_ms(ms(a.eval_time)),
                group: tg.name.clone(),
            }];
        }
        alert_tests.entry(a.eval_time).or_default().push(a);
        alerts_in_test
            .entry(a.eval_time)
            .or_default()
            .insert(&a.alertname);
    }
    let alert_times: Vec<Duration> = alert_tests.keys().copied().collect();
    let max_eval = tg
        .alert_rule_test
        .iter()
        .map(|a| a.eval_time)
        .chain(tg.promql_expr_test.iter().map(|p| p.eval_time))
        .max()
        .unwrap_or(Duration::ZERO);

    let mut errs = Vec::new();
    let mut cursors = vec![0usize; inputs.len()];
    let mut curr = 0usize;
    let mut ts = Duration::ZERO;
    while ts <= max_eval {
        let ts_ns = duration_ns(ts);
        let mut eval_errs = Vec::new();
        match storage.append_till(&inputs, &mut cursors, ms(ts)) {
            Err(e) => errs.push(e),
            Ok(()) => {
                for g in &groups {
                    g.eval(ts_ns);
                    for r in &g.rules {
                        if let Some(err) = r.status().last_error {
                            eval_errs.push(UnitTestError::RuleEval {
                                rule: r.name().to_string(),
                                time: go_duration(ts_ns),
                                err,
                            });
                        }
                    }
                }
            }
        }
        if !eval_errs.is_empty() {
            errs.extend(eval_errs);
            return errs;
        }
        let next = ts + eval_interval;
        while curr < alert_times.len() && ts <= alert_times[curr] && alert_times[curr] < next {
            let t = alert_times[curr];
            let names = alerts_in_test.get(&t).cloned().unwrap_or_default();
            let got = firing_alerts(&groups, &names);
            for tc in alert_tests.get(&t).map(Vec::as_slice).unwrap_or_default() {
                check_alerts(tg, tc, got.get(tc.alertname.as_str()), &mut errs);
            }
            curr += 1;
        }
        ts = next;
    }

    for tc in &tg.promql_expr_test {
        if let Some(e) = check_expr(&storage.db, tc, &query_options) {
            errs.push(e);
        }
    }
    errs
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The firing alerts of the alerting rules named in `names`, by name,
/// over all groups.
fn firing_alerts<'a>(
    groups: &[Group],
    names: &BTreeSet<&'a str>,
) -> HashMap<&'a str, Vec<AlertView>> {
    let mut got: HashMap<&str, Vec<AlertView>> = HashMap::new();
    for g in groups {
        for r in &g.rules {
            let Some(ar) = r.as_alerting() else {
                continue;
            };
            let Some(&name) = names.get(ar.name.as_str()) else {
                continue;
            };
            let list = got.entry(name).or_default();
            for a in ar.active_alerts() {
                if a.state == AlertState::Firing {
                    list.push(AlertView {
                        labels: pairs_of(a.labels.iter()),
                        annotations: a.annotations.into_iter().collect(),
                    });
                }
            }
        }
    }
    got
}

fn check_alerts(
    tg: &TestGroup,
    tc: &AlertTestCase,
    got: Option<&Vec<AlertView>>,
    errs: &mut Vec<UnitTestError>,
) {
    let mut got: Vec<AlertView> = got.cloned().unwrap_or_default();
    let mut exp: Vec<AlertView> = tc
        .exp_alerts
        .iter()
        .map(|a| {
            let mut labels = a.exp_labels.clone();
            labels.insert(
                crate::rule::ALERT_NAME_LABEL.to_string(),
                tc.alertname.clone(),
            );
            AlertView {
                labels: labels.into_iter().collect(),
                annotations: a.exp_annotations.clone().into_iter().collect(),
            }
        })
        .collect();
    got.sort();
    exp.sort();
    if got != exp {
        errs.push(UnitTestError::Alerts {
            group: tg.name.clone(),
            alertname: tc.alertname.clone(),
            time: format_duration_ms(ms(tc.eval_time)),
            exp: text::indent_lines(&alerts_string(&exp), "            "),
            got: text::indent_lines(&alerts_string(&got), "            "),
        });
    }
}

/// Runs one `promql_expr_test`; `None` when it passes.
fn check_expr(db: &Arc<Db>, tc: &PromqlTestCase, opts: &QueryOptions) -> Option<UnitTestError> {
    let time = format_duration_ms(ms(tc.eval_time));
    let fail = |err: String| UnitTestError::Expr {
        expr: tc.expr.clone(),
        time: time.clone(),
        err,
    };
    let expr = match query::promql::parse(&tc.expr) {
        Ok(e) => e,
        Err(e) => return Some(fail(e.to_string())),
    };
    let opts = QueryOptions {
        query_text: tc.expr.clone(),
        ..opts.clone()
    };
    let out = match query::eval::instant_query(db, &expr, ms(tc.eval_time), &opts) {
        Ok(o) => o,
        Err(e) => return Some(fail(e.to_string())),
    };
    let mut got: Vec<(Pairs, f64)> = match out.value {
        Value::Vector(v) => v
            .into_iter()
            .map(|s| (pairs_of(s.labels.iter()), s.v))
            .collect(),
        Value::Scalar(_, v) => vec![(Vec::new(), v)],
        _ => return Some(fail("rule result is not a vector or scalar".into())),
    };
    let mut exp = Vec::with_capacity(tc.exp_samples.len());
    for s in &tc.exp_samples {
        match series::parse_metric(&s.labels) {
            Ok(labels) => {
                let mut p: Pairs = labels
                    .into_iter()
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect();
                p.sort();
                exp.push((p, s.value));
            }
            Err(e) => return Some(fail(format!("labels {}: {e}", quote(&s.labels)))),
        }
    }
    exp.sort_by(|a, b| a.0.cmp(&b.0));
    got.sort_by(|a, b| a.0.cmp(&b.0));
    // Values compare with `==`, as Go's reflect.DeepEqual does.
    let equal =
        exp.len() == got.len() && exp.iter().zip(&got).all(|(e, g)| e.0 == g.0 && e.1 == g.1);
    if equal {
        return None;
    }
    Some(UnitTestError::Samples {
        expr: tc.expr.clone(),
        time,
        exp: samples_string(&exp),
        got: samples_string(&got),
    })
}

#[cfg(test)]
mod tests;
