//! Writes blocks with the engine and queries them with SQL using only the
//! schema documented in docs/format/block.md: if this passes, the files are
//! what the documentation promises to any Parquet/SQL reader.

use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use engine::block::{BlockWriteOptions, write_block};
use engine::{Labels, STALE_NAN, Sample};

fn series(pairs: &[(&str, &str)], points: &[(i64, f64)]) -> (Labels, Vec<Sample>) {
    (
        Labels::new(pairs),
        points.iter().map(|&(t, v)| Sample::new(t, v)).collect(),
    )
}

fn write(parent: &Path, mut data: Vec<(Labels, Vec<Sample>)>) -> PathBuf {
    data.sort_by(|a, b| a.0.cmp(&b.0));
    let meta = write_block(
        parent,
        &BlockWriteOptions::default(),
        data.into_iter().map(Ok),
    )
    .unwrap()
    .unwrap();
    parent.join(meta.id)
}

async fn query(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Runs `sql` and compares the pretty-printed result with `expected`.
async fn check(ctx: &SessionContext, sql: &str, expected: &str) {
    let got = pretty_format_batches(&query(ctx, sql).await)
        .unwrap()
        .to_string();
    let trim = |s: &str| {
        s.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(trim(&got), trim(expected), "query: {sql}\n{got}");
}

#[tokio::test]
async fn sql_sees_the_documented_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let stale = f64::from_bits(STALE_NAN);
    let block = write(
        tmp.path(),
        vec![
            series(
                &[("__name__", "up"), ("job", "api"), ("instance", "a")],
                &[(1000, 1.0), (2000, 0.0), (3000, 1.0)],
            ),
            series(
                &[("__name__", "up"), ("job", "db"), ("instance", "b")],
                &[(1000, 1.0), (2000, 1.0)],
            ),
            series(
                &[("__name__", "http_requests_total"), ("job", "api")],
                &[
                    (1000, 10.0),
                    (2000, 20.5),
                    (3000, 30.0),
                    (4000, 40.0),
                    (5000, stale),
                ],
            ),
        ],
    );
    let ctx = sql::block_context(std::slice::from_ref(&block))
        .await
        .unwrap();

    check(
        &ctx,
        "SELECT series_id, labels['__name__'] AS name, labels['job'] AS job, first_row, num_rows, min_time, max_time \
         FROM series ORDER BY series_id",
        "+-----------+---------------------+-----+-----------+----------+----------------------+----------------------+
         | series_id | name                | job | first_row | num_rows | min_time             | max_time             |
         +-----------+---------------------+-----+-----------+----------+----------------------+----------------------+
         | 0         | http_requests_total | api | 0         | 5        | 1970-01-01T00:00:01Z | 1970-01-01T00:00:05Z |
         | 1         | up                  | api | 5         | 3        | 1970-01-01T00:00:01Z | 1970-01-01T00:00:03Z |
         | 2         | up                  | db  | 8         | 2        | 1970-01-01T00:00:01Z | 1970-01-01T00:00:02Z |
         +-----------+---------------------+-----+-----------+----------+----------------------+----------------------+",
    )
    .await;

    // Join on both keys, filter by a label, aggregate.
    check(
        &ctx,
        "SELECT r.labels['instance'] AS instance, count(*) AS n, sum(s.value) AS total \
         FROM samples s JOIN series r ON s.block_id = r.block_id AND s.series_id = r.series_id \
         WHERE r.labels['__name__'] = 'up' GROUP BY r.labels['instance'] ORDER BY instance",
        "+----------+---+-------+
         | instance | n | total |
         +----------+---+-------+
         | a        | 3 | 2.0   |
         | b        | 2 | 2.0   |
         +----------+---+-------+",
    )
    .await;

    // The timestamp column is a UTC millisecond timestamp.
    check(
        &ctx,
        "SELECT s.\"timestamp\", s.value FROM samples s JOIN series r \
         ON s.block_id = r.block_id AND s.series_id = r.series_id \
         WHERE r.labels['__name__'] = 'http_requests_total' \
         AND s.\"timestamp\" BETWEEN TIMESTAMP '1970-01-01T00:00:02Z' AND TIMESTAMP '1970-01-01T00:00:03Z' \
         ORDER BY s.\"timestamp\"",
        "+----------------------+-------+
         | timestamp            | value |
         +----------------------+-------+
         | 1970-01-01T00:00:02Z | 20.5  |
         | 1970-01-01T00:00:03Z | 30.0  |
         +----------------------+-------+",
    )
    .await;

    // Rows are sorted by (series_id, timestamp) and first_row/num_rows
    // address them; the stale marker keeps its exact bits.
    let batches = query(
        &ctx,
        "SELECT CAST(s.\"timestamp\" AS BIGINT) AS t, s.value FROM samples s WHERE s.series_id = 0 ORDER BY t",
    )
    .await;
    let mut got: Vec<(i64, u64)> = Vec::new();
    for b in &batches {
        let t = b.column(0).as_primitive::<Int64Type>();
        let v = b.column(1).as_primitive::<Float64Type>();
        assert_eq!(v.null_count(), 0);
        got.extend((0..b.num_rows()).map(|i| (t.value(i), v.value(i).to_bits())));
    }
    assert_eq!(got.last(), Some(&(5000, STALE_NAN)));
    assert_eq!(got.len(), 5);
}

#[tokio::test]
async fn series_ids_are_local_to_a_block() {
    let tmp = tempfile::tempdir().unwrap();
    let a = write(
        tmp.path(),
        vec![series(&[("__name__", "x")], &[(1, 1.0), (2, 2.0)])],
    );
    let b = write(tmp.path(), vec![series(&[("__name__", "y")], &[(1, 10.0)])]);
    let ctx = sql::block_context(&[a, b]).await.unwrap();
    check(
        &ctx,
        "SELECT r.labels['__name__'] AS name, s.series_id, sum(s.value) AS total \
         FROM samples s JOIN series r ON s.block_id = r.block_id AND s.series_id = r.series_id \
         GROUP BY 1, 2 ORDER BY 1",
        "+------+-----------+-------+
         | name | series_id | total |
         +------+-----------+-------+
         | x    | 0         | 3.0   |
         | y    | 0         | 10.0  |
         +------+-----------+-------+",
    )
    .await;
    check(
        &ctx,
        "SELECT count(DISTINCT block_id) AS blocks, count(*) AS n FROM samples",
        "+--------+---+
         | blocks | n |
         +--------+---+
         | 2      | 3 |
         +--------+---+",
    )
    .await;
}

/// Sample values as SQL returns them for series 0 of every block, as
/// `(block_id, timestamp, value bits)`, sorted.
async fn value_bits(ctx: &SessionContext, sql: &str) -> Vec<(i64, u64)> {
    let mut got = Vec::new();
    for b in &query(ctx, sql).await {
        let t = b.column(0).as_primitive::<Int64Type>();
        let v = b.column(1).as_primitive::<Float64Type>();
        assert_eq!(v.null_count(), 0);
        got.extend((0..b.num_rows()).map(|i| (t.value(i), v.value(i).to_bits())));
    }
    got
}

#[tokio::test]
async fn decimal_and_double_values_are_bit_exact_in_sql() {
    let tmp = tempfile::tempdir().unwrap();
    let values = [
        12345.67,
        0.1,
        -3.125,
        1e-12,
        f64::from_bits(STALE_NAN),
        -0.0,
        2f64.powi(60),
        f64::NEG_INFINITY,
        0.1 + 0.2,
        9_007_199_254_740_993.0,
        f64::from_bits(0x7ff8_0000_dead_beef),
    ];
    let points: Vec<(i64, f64)> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| (1000 * (i as i64 + 1), v))
        .collect();
    let block = write(tmp.path(), vec![series(&[("__name__", "m")], &points)]);
    let ctx = sql::block_context(std::slice::from_ref(&block))
        .await
        .unwrap();
    let got = value_bits(
        &ctx,
        "SELECT CAST(\"timestamp\" AS BIGINT) AS t, value FROM samples ORDER BY t",
    )
    .await;
    let want: Vec<(i64, u64)> = points.iter().map(|&(t, v)| (t, v.to_bits())).collect();
    assert_eq!(got, want);
}

/// The golden blocks of the engine's tests, version 1 (values stored only
/// as DOUBLE) and version 2 (timestamps in `samples.parquet`), next to a
/// block of the current version: one `samples` table.
#[tokio::test]
async fn blocks_of_every_version_form_one_table() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../engine/src/block/testdata");
    let v1 = golden.join("v1/01M8PX5DA5CZBNQNEPZMBJ9NCD");
    let v2 = golden.join("v2/01M8SBGKW695CTZ403P6Y8B833");
    let tmp = tempfile::tempdir().unwrap();
    let v3 = write(
        tmp.path(),
        vec![series(&[("__name__", "golden_counter")], &[(1, 12345.67)])],
    );
    let ctx = sql::block_context(&[v1, v2, v3]).await.unwrap();
    check(
        &ctx,
        "SELECT r.labels['__name__'] AS name, count(*) AS n, max(s.value) AS max, \
         CAST(max(s.\"timestamp\") AS BIGINT) AS last \
         FROM samples s JOIN series r ON s.block_id = r.block_id AND s.series_id = r.series_id \
         WHERE r.labels['__name__'] = 'golden_counter' GROUP BY 1",
        "+----------------+----+---------+--------+
         | name           | n  | max     | last   |
         +----------------+----+---------+--------+
         | golden_counter | 41 | 12352.7 | 286001 |
         +----------------+----+---------+--------+",
    )
    .await;
}

/// The files alone, registered as plain Parquet tables, with the joins
/// docs/format/block.md gives: what any Parquet reader sees.
#[tokio::test]
async fn raw_files_join_as_documented() {
    let tmp = tempfile::tempdir().unwrap();
    // Two series scraped together share their timestamps; a third does not.
    let block = write(
        tmp.path(),
        vec![
            series(
                &[("__name__", "a"), ("instance", "x")],
                &[(1000, 1.0), (16001, 2.5)],
            ),
            series(
                &[("__name__", "b"), ("instance", "x")],
                &[(1000, 7.0), (16001, 8.0)],
            ),
            series(&[("__name__", "c"), ("instance", "y")], &[(999, 3.0)]),
        ],
    );
    let ctx = SessionContext::new();
    for (table, file) in [
        ("s", "samples.parquet"),
        ("t", "timestamps.parquet"),
        ("r", "series.parquet"),
    ] {
        ctx.register_parquet(
            table,
            block.join(file).to_str().unwrap(),
            Default::default(),
        )
        .await
        .unwrap();
    }
    check(
        &ctx,
        "SELECT count(*) AS timestamps FROM t",
        "+------------+
         | timestamps |
         +------------+
         | 3          |
         +------------+",
    )
    .await;
    check(
        &ctx,
        "SELECT r.labels['__name__'] AS name, CAST(t.\"timestamp\" AS BIGINT) AS t, \
         CASE WHEN s.value_scale < 0 THEN s.value \
              ELSE CAST(s.value_int AS DOUBLE) / \
                   CAST(power(CAST(10 AS BIGINT), CAST(s.value_scale AS BIGINT)) AS DOUBLE) END AS value \
         FROM s JOIN t ON s.ts_row = t.\"row\" JOIN r ON s.series_id = r.series_id \
         ORDER BY name, t",
        "+------+-------+-------+
         | name | t     | value |
         +------+-------+-------+
         | a    | 1000  | 1.0   |
         | a    | 16001 | 2.5   |
         | b    | 1000  | 7.0   |
         | b    | 16001 | 8.0   |
         | c    | 999   | 3.0   |
         +------+-------+-------+",
    )
    .await;
}
