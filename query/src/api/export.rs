//! `GET|POST /api/v1/export`: raw samples as JSON lines, one object per
//! series, as VictoriaMetrics's export does:
//!
//! ```text
//! {"metric":{"__name__":"up","job":"x"},"values":[1,0.5,null],"timestamps":[1000,2000,3000],"nan_bits":[[2,"0x7ff0000000000002"]]}
//! ```
//!
//! Timestamps are milliseconds. Values are JSON numbers in shortest
//! round-trip form, `"Infinity"`/`"-Infinity"`, or `null` for NaN; a Silt
//! extension, `nan_bits`, gives the exact bits of every NaN (stale markers
//! included), so what went in comes out bit for bit. See `docs/api.md`.
//!
//! The response streams: a blocking task reads one series at a time and
//! hands ~64 KiB chunks to the body through a small channel, so memory
//! stays bounded by one series' samples whatever the result size.

use std::io::Write as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::BoxError;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use engine::{Db, Labels, Matcher, Sample};
use http_body::Frame;
use tokio::sync::{mpsc, oneshot};

use super::error::{ApiError, ParamError};
use super::format::write_export_value;
use super::params::{Params, parse_match_params};
use super::time::{MAX_TIME_MS, MIN_TIME_MS};
use super::{Api, select_union};

/// Chunks handed to the body are about this large.
const FLUSH_BYTES: usize = 64 * 1024;
/// Chunks in flight between the reading task and the connection.
const CHANNEL_DEPTH: usize = 4;

pub(crate) async fn export(
    State(api): State<Arc<Api>>,
    params: Params,
) -> Result<Response, ApiError> {
    let selectors = params.all("match[]");
    if selectors.is_empty() {
        return Err(ApiError::NoMatchParam);
    }
    let start = params.time("start", MIN_TIME_MS)?;
    let end = params.time("end", MAX_TIME_MS)?;
    let max_rows_per_line = params.limit("max_rows_per_line")?;
    let sets = parse_match_params(&selectors).map_err(|e| ApiError::InvalidParam {
        param: "match[]",
        source: ParamError::Matchers(e),
    })?;

    let job = ExportJob {
        db: api.db().clone(),
        sets,
        start,
        end,
        max_rows_per_line,
        max_series: api.options().max_export_series,
    };
    let (ready_tx, ready_rx) = oneshot::channel();
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    tokio::task::spawn_blocking(move || job.run(ready_tx, tx));
    match ready_rx.await {
        Ok(Ok(())) => {
            let mut resp = Body::new(ExportBody {
                rx,
                finished: false,
            })
            .into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/stream+json"),
            );
            Ok(resp)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ApiError::Internal(
            "export task ended before selecting series".into(),
        )),
    }
}

/// What the reading task sends to the body.
enum Msg {
    Chunk(Bytes),
    Done,
    Failed(BoxError),
}

/// Streams the channel; ends with an error unless the task said `Done`, so
/// a client never mistakes a cut-off export for a complete one.
struct ExportBody {
    rx: mpsc::Receiver<Msg>,
    finished: bool,
}

impl http_body::Body for ExportBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        let msg = match this.rx.poll_recv(cx) {
            Poll::Ready(msg) => msg,
            Poll::Pending => return Poll::Pending,
        };
        Poll::Ready(match msg {
            Some(Msg::Chunk(b)) => Some(Ok(Frame::data(b))),
            Some(Msg::Done) => {
                this.finished = true;
                None
            }
            Some(Msg::Failed(e)) => {
                this.finished = true;
                Some(Err(e))
            }
            None => {
                this.finished = true;
                Some(Err("export stopped before the end".into()))
            }
        })
    }

    fn is_end_stream(&self) -> bool {
        self.finished
    }
}

struct ExportJob {
    db: Arc<Db>,
    sets: Vec<Vec<Matcher>>,
    start: i64,
    end: i64,
    max_rows_per_line: usize,
    max_series: usize,
}

/// The receiver went away (client disconnected): stop reading.
struct Gone;

impl ExportJob {
    fn run(self, ready: oneshot::Sender<Result<(), ApiError>>, tx: mpsc::Sender<Msg>) {
        let q = self.db.querier(self.start, self.end);
        let series = match select_union(&q, &self.sets) {
            Ok(s) if s.len() > self.max_series => {
                let _ = ready.send(Err(ApiError::TooManySeries {
                    found: s.len(),
                    limit: self.max_series,
                }));
                return;
            }
            Ok(s) => s,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        if ready.send(Ok(())).is_err() {
            return;
        }
        let mut out = ChunkWriter {
            buf: Vec::with_capacity(2 * FLUSH_BYTES),
            tx: &tx,
        };
        let rows = if self.max_rows_per_line == 0 {
            usize::MAX
        } else {
            self.max_rows_per_line
        };
        let mut samples = Vec::new();
        for entry in &series {
            samples.clear();
            if let Err(e) = q.samples(entry, self.start, self.end, &mut samples) {
                tracing::warn!(error = %e, series = %entry.labels, "export failed while reading samples");
                let _ = tx.blocking_send(Msg::Failed(Box::new(e)));
                return;
            }
            for line in samples.chunks(rows) {
                if write_line(&mut out, &entry.labels, line).is_err() {
                    return;
                }
            }
        }
        if out.flush().is_ok() {
            let _ = tx.blocking_send(Msg::Done);
        }
    }
}

/// Accumulates output and sends it on in chunks of about [`FLUSH_BYTES`].
struct ChunkWriter<'a> {
    buf: Vec<u8>,
    tx: &'a mpsc::Sender<Msg>,
}

impl ChunkWriter<'_> {
    fn maybe_flush(&mut self) -> Result<(), Gone> {
        if self.buf.len() >= FLUSH_BYTES {
            self.flush()
        } else {
            Ok(())
        }
    }

    fn flush(&mut self) -> Result<(), Gone> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(2 * FLUSH_BYTES));
        self.tx
            .blocking_send(Msg::Chunk(Bytes::from(chunk)))
            .map_err(|_| Gone)
    }
}

/// Appends a JSON string (serde_json's escaping; writing to a Vec cannot fail).
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Writes one export line for `samples` of the series `labels`.
fn write_line(out: &mut ChunkWriter<'_>, labels: &Labels, samples: &[Sample]) -> Result<(), Gone> {
    let buf = &mut out.buf;
    buf.extend_from_slice(b"{\"metric\":{");
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        write_json_str(buf, &l.name);
        buf.push(b':');
        write_json_str(buf, &l.value);
    }
    buf.extend_from_slice(b"},\"values\":[");
    let mut nans: Vec<(usize, u64)> = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        if i > 0 {
            out.buf.push(b',');
        }
        if s.v.is_nan() {
            nans.push((i, s.v.to_bits()));
        }
        write_export_value(&mut out.buf, s.v);
        out.maybe_flush()?;
    }
    out.buf.extend_from_slice(b"],\"timestamps\":[");
    for (i, s) in samples.iter().enumerate() {
        if i > 0 {
            out.buf.push(b',');
        }
        let _ = write!(out.buf, "{}", s.t);
        out.maybe_flush()?;
    }
    out.buf.push(b']');
    if !nans.is_empty() {
        out.buf.extend_from_slice(b",\"nan_bits\":[");
        for (n, (i, bits)) in nans.iter().enumerate() {
            if n > 0 {
                out.buf.push(b',');
            }
            let _ = write!(out.buf, "[{i},\"0x{bits:016x}\"]");
        }
        out.buf.push(b']');
    }
    out.buf.extend_from_slice(b"}\n");
    out.maybe_flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_like_victoriametrics_and_carry_nan_bits() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut w = ChunkWriter {
            buf: Vec::new(),
            tx: &tx,
        };
        let labels = Labels::new(&[("__name__", "up"), ("job", "a\"b")]);
        let stale = f64::from_bits(engine::STALE_NAN);
        let samples = [
            Sample::new(1000, 1.0),
            Sample::new(2000, 0.5),
            Sample::new(3000, stale),
            Sample::new(4000, f64::INFINITY),
        ];
        assert!(write_line(&mut w, &labels, &samples).is_ok());
        assert!(w.flush().is_ok());
        let Ok(Msg::Chunk(b)) = rx.try_recv() else {
            panic!("no chunk")
        };
        assert_eq!(
            std::str::from_utf8(&b).unwrap(),
            "{\"metric\":{\"__name__\":\"up\",\"job\":\"a\\\"b\"},\"values\":[1,0.5,null,\"Infinity\"],\
             \"timestamps\":[1000,2000,3000,4000],\"nan_bits\":[[2,\"0x7ff0000000000002\"]]}\n"
        );
    }

    #[test]
    fn long_lines_are_sent_in_chunks() {
        let (tx, mut rx) = mpsc::channel(1024);
        let mut w = ChunkWriter {
            buf: Vec::new(),
            tx: &tx,
        };
        let samples: Vec<Sample> = (0..20_000)
            .map(|i| Sample::new(i, i as f64 / 3.0))
            .collect();
        assert!(write_line(&mut w, &Labels::new(&[("__name__", "x")]), &samples).is_ok());
        assert!(w.flush().is_ok());
        let mut chunks = Vec::new();
        while let Ok(Msg::Chunk(b)) = rx.try_recv() {
            chunks.push(b);
        }
        assert!(chunks.len() > 2, "{} chunks", chunks.len());
        assert!(chunks.iter().all(|c| c.len() < 2 * FLUSH_BYTES));
        let text: Vec<u8> = chunks.concat();
        let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(v["values"].as_array().unwrap().len(), 20_000);
    }
}
