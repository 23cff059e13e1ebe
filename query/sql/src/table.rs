//! The `samples` and `series` tables over a live [`Db`]: every sample the
//! engine holds (head and blocks alike, deduplicated, as PromQL sees them),
//! read through an [`engine::Querier`] snapshot taken when a scan starts.
//!
//! ```text
//! samples(metric VARCHAR, labels MAP<VARCHAR, VARCHAR>, timestamp TIMESTAMP(ms, UTC), value DOUBLE)
//! series(metric VARCHAR, labels MAP<VARCHAR, VARCHAR>)
//! ```
//!
//! `labels` holds every label except `__name__` (which is `metric`), sorted
//! by name; read one with `labels['job']`. Rows come out grouped by series
//! (in label order) and by time within a series.
//!
//! Filters the scan uses to read less (DataFusion still applies every
//! filter afterwards, so these are only about cost): `metric = 'x'`,
//! `metric IN (...)`, `labels['k'] = 'v'`, and `timestamp` compared with a
//! constant (`>`, `>=`, `<`, `<=`, `=`, `BETWEEN`). A scan that would read
//! more than [`TableLimits::max_samples`] samples fails with a message that
//! names the limit: add a metric filter or a time range.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, MapBuilder, RecordBatch, RecordBatchOptions, StringBuilder,
    TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::Session;
use datafusion::common::ScalarValue;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use engine::{Db, Labels, METRIC_NAME, MatchOp, Matcher, Sample};

/// Name of the table of samples.
pub const SAMPLES: &str = "samples";
/// Name of the table of series.
pub const SERIES: &str = "series";

/// Rows per record batch a scan produces.
const BATCH_ROWS: usize = 8192;

/// What one scan may read.
#[derive(Debug, Clone, Copy)]
pub struct TableLimits {
    /// Most samples one scan of `samples` reads.
    pub max_samples: usize,
    /// Most series one scan selects.
    pub max_series: usize,
}

impl Default for TableLimits {
    fn default() -> Self {
        TableLimits {
            max_samples: 50_000_000,
            max_series: 1_000_000,
        }
    }
}

/// Which of the two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Samples,
    Series,
}

/// A [`TableProvider`] over the engine: `samples` or `series`.
pub struct EngineTable {
    db: Arc<Db>,
    kind: Kind,
    schema: SchemaRef,
    limits: TableLimits,
}

impl fmt::Debug for EngineTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineTable")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl EngineTable {
    /// The `samples` table.
    pub fn samples(db: Arc<Db>, limits: TableLimits) -> EngineTable {
        EngineTable {
            db,
            kind: Kind::Samples,
            schema: schema(Kind::Samples),
            limits,
        }
    }

    /// The `series` table.
    pub fn series(db: Arc<Db>, limits: TableLimits) -> EngineTable {
        EngineTable {
            db,
            kind: Kind::Series,
            schema: schema(Kind::Series),
            limits,
        }
    }
}

fn labels_type() -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(
            vec![
                Field::new("keys", DataType::Utf8, false),
                Field::new("values", DataType::Utf8, true),
            ]
            .into(),
        ),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

fn schema(kind: Kind) -> SchemaRef {
    let mut fields = vec![
        Field::new("metric", DataType::Utf8, false),
        Field::new("labels", labels_type(), false),
    ];
    if kind == Kind::Samples {
        fields.push(Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ));
        fields.push(Field::new("value", DataType::Float64, false));
    }
    Arc::new(Schema::new(fields))
}

#[async_trait]
impl TableProvider for EngineTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                let mut scope = Scope::all();
                if scope.narrow(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut scope = Scope::all();
        for f in filters {
            scope.narrow(f);
        }
        // The scan builds only the projected columns (labels repeated per
        // sample are the costly ones), so the plan sees the projected schema.
        let columns: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let schema = Arc::new(self.schema.project(&columns)?);
        let partition = Arc::new(EngineScan {
            db: self.db.clone(),
            kind: self.kind,
            schema: schema.clone(),
            columns,
            scope,
            limits: self.limits,
        });
        Ok(Arc::new(StreamingTableExec::try_new(
            schema,
            vec![partition],
            None,
            Vec::new(),
            false,
            limit,
        )?))
    }
}

/// What a scan reads: the series matchers and the time range (inclusive)
/// the pushed-down filters allow.
#[derive(Debug, Clone)]
struct Scope {
    matchers: Vec<Matcher>,
    mint: i64,
    maxt: i64,
    /// A filter no row can pass (`metric IN ()`, an empty time range).
    empty: bool,
}

impl Scope {
    fn all() -> Scope {
        Scope {
            matchers: Vec::new(),
            mint: i64::MIN,
            maxt: i64::MAX,
            empty: false,
        }
    }

    /// Narrows the scope by `filter` if it is one the scan understands;
    /// returns whether it was.
    fn narrow(&mut self, filter: &Expr) -> bool {
        match filter {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                if *op == Operator::And {
                    // Both sides must be understood for the whole to count,
                    // but either side alone still narrows the scope.
                    let l = self.narrow(left);
                    let r = self.narrow(right);
                    return l && r;
                }
                if let Some(ok) = self.compare(left, *op, right) {
                    return ok;
                }
                let Some(flipped) = op.swap() else {
                    return false;
                };
                self.compare(right, flipped, left).unwrap_or(false)
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) => {
                let (Some(lo), Some(hi)) = (millis(low), millis(high)) else {
                    return false;
                };
                if !is_column(expr, "timestamp") {
                    return false;
                }
                self.mint = self.mint.max(lo);
                self.maxt = self.maxt.min(hi);
                self.empty |= self.mint > self.maxt;
                true
            }
            Expr::InList(list) if !list.negated && is_column(&list.expr, "metric") => {
                let names: Option<Vec<String>> = list.list.iter().map(string).collect();
                let Some(names) = names else {
                    return false;
                };
                if names.is_empty() {
                    self.empty = true;
                    return true;
                }
                let alternatives: Vec<String> = names.iter().map(|n| regex_quote(n)).collect();
                match Matcher::new(MatchOp::RegexMatch, METRIC_NAME, alternatives.join("|")) {
                    Ok(m) => {
                        self.matchers.push(m);
                        true
                    }
                    Err(_) => false,
                }
            }
            _ => false,
        }
    }

    /// `left op right` with a column on the left; `None` when the left side
    /// is not a column the scan knows.
    fn compare(&mut self, left: &Expr, op: Operator, right: &Expr) -> Option<bool> {
        if is_column(left, "timestamp") {
            let t = millis(right)?;
            match op {
                Operator::Gt => self.mint = self.mint.max(t.saturating_add(1)),
                Operator::GtEq => self.mint = self.mint.max(t),
                Operator::Lt => self.maxt = self.maxt.min(t.saturating_sub(1)),
                Operator::LtEq => self.maxt = self.maxt.min(t),
                Operator::Eq => {
                    self.mint = self.mint.max(t);
                    self.maxt = self.maxt.min(t);
                }
                _ => return Some(false),
            }
            self.empty |= self.mint > self.maxt;
            return Some(true);
        }
        let name = if is_column(left, "metric") {
            METRIC_NAME.to_owned()
        } else {
            label_access(left)?
        };
        if op != Operator::Eq {
            return Some(false);
        }
        let value = string(right)?;
        if name == METRIC_NAME && value.is_empty() {
            // Every series has a name: no row matches.
            self.empty = true;
            return Some(true);
        }
        // labels['k'] = '' matches series without `k` (a map lookup of a
        // missing key is NULL, which is not ''): an equality matcher on ''
        // would select exactly those, so leave it to DataFusion.
        if value.is_empty() {
            return Some(false);
        }
        match Matcher::new(MatchOp::Equal, &name, &value) {
            Ok(m) => {
                self.matchers.push(m);
                Some(true)
            }
            Err(_) => Some(false),
        }
    }
}

fn is_column(e: &Expr, name: &str) -> bool {
    matches!(e, Expr::Column(c) if c.name == name)
}

/// `labels['k']` (DataFusion's `get_field(labels, 'k')`) → `k`.
fn label_access(e: &Expr) -> Option<String> {
    let Expr::ScalarFunction(f) = e else {
        return None;
    };
    if f.name() != "get_field" {
        return None;
    }
    match f.args.as_slice() {
        [map, key] if is_column(map, "labels") => {
            let key = string(key)?;
            (key != METRIC_NAME).then_some(key)
        }
        _ => None,
    }
}

fn string(e: &Expr) -> Option<String> {
    match e {
        Expr::Literal(ScalarValue::Utf8(Some(s)), _)
        | Expr::Literal(ScalarValue::Utf8View(Some(s)), _)
        | Expr::Literal(ScalarValue::LargeUtf8(Some(s)), _) => Some(s.clone()),
        _ => None,
    }
}

/// A timestamp constant in milliseconds (DataFusion's optimizer has already
/// cast literals compared with the column to its type).
fn millis(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(ScalarValue::TimestampMillisecond(Some(t), _), _) => Some(*t),
        Expr::Literal(ScalarValue::TimestampSecond(Some(t), _), _) => t.checked_mul(1000),
        Expr::Literal(ScalarValue::TimestampMicrosecond(Some(t), _), _) => Some(t.div_euclid(1000)),
        Expr::Literal(ScalarValue::TimestampNanosecond(Some(t), _), _) => {
            Some(t.div_euclid(1_000_000))
        }
        _ => None,
    }
}

fn regex_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One scan: runs on a blocking thread and sends record batches.
struct EngineScan {
    db: Arc<Db>,
    kind: Kind,
    /// The projected schema.
    schema: SchemaRef,
    /// The projected columns' indices in the table's schema.
    columns: Vec<usize>,
    scope: Scope,
    limits: TableLimits,
}

impl fmt::Debug for EngineScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineScan")
            .field("kind", &self.kind)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl PartitionStream for EngineScan {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(2);
        let job = ScanJob {
            db: self.db.clone(),
            kind: self.kind,
            schema: self.schema.clone(),
            columns: self.columns.clone(),
            scope: self.scope.clone(),
            limits: self.limits,
        };
        tokio::task::spawn_blocking(move || {
            if let Err(e) = job.run(&tx) {
                // The receiver may be gone (LIMIT satisfied, query
                // canceled): nothing to report to then.
                let _ = tx.blocking_send(Err(e));
            }
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

struct ScanJob {
    db: Arc<Db>,
    kind: Kind,
    schema: SchemaRef,
    columns: Vec<usize>,
    scope: Scope,
    limits: TableLimits,
}

/// Column indices in the table schemas.
const METRIC: usize = 0;
const LABELS: usize = 1;
const TIMESTAMP: usize = 2;
const VALUE: usize = 3;

/// Builds batches of the projected columns.
struct Rows {
    columns: Vec<usize>,
    want: [bool; 4],
    metric: StringBuilder,
    labels: MapBuilder<StringBuilder, StringBuilder>,
    timestamp: TimestampMillisecondBuilder,
    value: Float64Builder,
    len: usize,
}

impl Rows {
    fn new(columns: &[usize]) -> Rows {
        let mut want = [false; 4];
        for &c in columns {
            want[c] = true;
        }
        Rows {
            columns: columns.to_vec(),
            want,
            metric: StringBuilder::new(),
            labels: MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()),
            timestamp: TimestampMillisecondBuilder::new().with_timezone("UTC"),
            value: Float64Builder::new(),
            len: 0,
        }
    }

    fn push(&mut self, labels: &Labels, sample: Option<Sample>) -> Result<()> {
        if self.want[METRIC] {
            self.metric.append_value(labels.metric_name().unwrap_or(""));
        }
        if self.want[LABELS] {
            for l in labels.iter().filter(|l| l.name != METRIC_NAME) {
                self.labels.keys().append_value(&l.name);
                self.labels.values().append_value(&l.value);
            }
            self.labels.append(true)?;
        }
        if let Some(s) = sample {
            if self.want[TIMESTAMP] {
                self.timestamp.append_value(s.t);
            }
            if self.want[VALUE] {
                self.value.append_value(s.v);
            }
        }
        self.len += 1;
        Ok(())
    }

    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|&c| -> ArrayRef {
                match c {
                    METRIC => Arc::new(self.metric.finish()),
                    LABELS => Arc::new(self.labels.finish()),
                    TIMESTAMP => Arc::new(self.timestamp.finish()),
                    _ => Arc::new(self.value.finish()),
                }
            })
            .collect();
        let options = RecordBatchOptions::new().with_row_count(Some(self.len));
        self.len = 0;
        Ok(RecordBatch::try_new_with_options(
            schema.clone(),
            columns,
            &options,
        )?)
    }
}

impl ScanJob {
    fn run(&self, tx: &tokio::sync::mpsc::Sender<Result<RecordBatch>>) -> Result<()> {
        if self.scope.empty {
            return Ok(());
        }
        let mut matchers = self.scope.matchers.clone();
        if matchers.is_empty() {
            matchers.push(
                Matcher::new(MatchOp::RegexMatch, METRIC_NAME, ".+")
                    .map_err(|e| DataFusionError::Internal(e.to_string()))?,
            );
        }
        let querier = self.db.querier(self.scope.mint, self.scope.maxt);
        let series = querier.select(&matchers).map_err(external)?;
        if series.len() > self.limits.max_series {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "the scan selects {} series, more than the limit of {} (query.max_series): \
                 filter on metric or labels",
                series.len(),
                self.limits.max_series
            )));
        }
        let mut rows = Rows::new(&self.columns);
        let mut buf: Vec<Sample> = Vec::new();
        let mut read = 0usize;
        for entry in &series {
            match self.kind {
                Kind::Series => rows.push(&entry.labels, None)?,
                Kind::Samples => {
                    buf.clear();
                    querier
                        .samples(entry, self.scope.mint, self.scope.maxt, &mut buf)
                        .map_err(external)?;
                    read += buf.len();
                    if read > self.limits.max_samples {
                        return Err(DataFusionError::ResourcesExhausted(format!(
                            "the scan reads more than {} samples (query.max_samples): \
                             filter on metric, labels or timestamp",
                            self.limits.max_samples
                        )));
                    }
                    for &s in &buf {
                        rows.push(&entry.labels, Some(s))?;
                        if rows.len >= BATCH_ROWS
                            && tx.blocking_send(rows.finish(&self.schema)).is_err()
                        {
                            return Ok(());
                        }
                    }
                }
            }
            if rows.len >= BATCH_ROWS && tx.blocking_send(rows.finish(&self.schema)).is_err() {
                return Ok(());
            }
        }
        if rows.len > 0 {
            let _ = tx.blocking_send(rows.finish(&self.schema));
        }
        Ok(())
    }
}

fn external(e: engine::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}
