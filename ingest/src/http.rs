//! The HTTP endpoint: `POST /api/v1/write` (alias `/api/v1/push`).
//!
//! Per request: negotiate → reserve the declared body size from the
//! in-flight budget (503 + `Retry-After` when spent) → read the body under a
//! hard cap → reserve its decoded size too → decode and append → release the
//! budget → wait until the batch is durable → answer. Version 2.0 requests
//! get the three `*-Written` headers on every answer.
//!
//! Decoding and appending are CPU work without awaits. Requests up to
//! [`INLINE_MAX_COST`] run inline on the async worker (measured faster than
//! a hop to tokio's blocking pool on 2 cores: no thread handoff, and the
//! buffers stay warm in the worker's cache); bigger ones go to the blocking
//! pool so one huge request cannot stall a worker for long.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use engine::{AppendError, CommitTicket, Db};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Limits;
use crate::decode::{Decoded, decode_body};
use crate::decompress::declared_len;
use crate::error::IngestError;
use crate::metrics::Metrics;
use crate::negotiate::{Encoding, Version, parse_content_encoding, parse_content_type};
use crate::proto::{HEADER_EXEMPLARS_WRITTEN, HEADER_HISTOGRAMS_WRITTEN, HEADER_SAMPLES_WRITTEN};
use crate::refs::RefCache;

/// The remote-write receiver: a database, limits, an in-flight budget and
/// metrics. Share it as `Arc<Ingest>` and mount [`routes`].
pub struct Ingest {
    db: Arc<Db>,
    limits: Limits,
    inflight: Arc<Semaphore>,
    /// Permits in `inflight` (= `limits.max_inflight_bytes`, clamped).
    inflight_total: usize,
    metrics: Metrics,
    /// Decode and append small requests on the async worker (true), or
    /// every request on tokio's blocking pool (false).
    decode_inline: bool,
    /// Unix seconds of the last "data not stored" warning (rate limit).
    last_warning: AtomicU64,
    /// Series references of remote-write 1.0 series seen before.
    refs: Arc<RefCache>,
}

/// Requests charged at most this many bytes (compressed + decoded) are
/// decoded on the async worker; larger ones on the blocking pool.
pub const INLINE_MAX_COST: usize = 4 << 20;

/// Request bodies whose decoded size is not declared (zstd without a frame
/// content size) are charged this many times their compressed size.
const UNDECLARED_EXPANSION: usize = 8;

impl Ingest {
    pub fn new(
        db: Arc<Db>,
        limits: Limits,
        registry: &mut prometheus_client::registry::Registry,
    ) -> Arc<Ingest> {
        let inflight_total = limits.max_inflight_bytes.clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(Ingest {
            db,
            inflight: Arc::new(Semaphore::new(inflight_total)),
            inflight_total,
            limits,
            metrics: Metrics::new(registry),
            decode_inline: true,
            last_warning: AtomicU64::new(0),
            refs: Arc::new(RefCache::new()),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Chooses where decoding and appending run: small requests on the
    /// async worker (`true`, the default) or all on tokio's blocking pool.
    /// For benchmarks; takes effect only before the `Arc` is shared.
    #[doc(hidden)]
    pub fn with_inline_decode(self: Arc<Self>, inline: bool) -> Arc<Self> {
        match Arc::try_unwrap(self) {
            Ok(mut me) => {
                me.decode_inline = inline;
                Arc::new(me)
            }
            Err(shared) => shared,
        }
    }

    async fn handle(&self, headers: &HeaderMap, mut body: Body) -> Answer {
        let answer = match parse_content_type(header_str(headers, header::CONTENT_TYPE)) {
            Ok(version) => match self.handle_version(version, headers, &mut body).await {
                Ok(answer) | Err(answer) => answer,
            },
            Err(e) => Answer::error(None, e),
        };
        if answer.error.is_some() {
            drain(&mut body).await;
        }
        answer
    }

    async fn handle_version(
        &self,
        version: Version,
        headers: &HeaderMap,
        body: &mut Body,
    ) -> Result<Answer, Answer> {
        let fail = |e| Answer::error(Some(version), e);
        let encoding =
            parse_content_encoding(header_str(headers, header::CONTENT_ENCODING)).map_err(fail)?;
        // Charge the body before reading it when its length is declared (as
        // senders do), then its decoded size once that is known.
        let limit = self.limits.max_body_bytes;
        let mut permit = self.permit();
        if let Some(len) = content_length(headers) {
            if len > limit as u64 {
                return Err(fail(IngestError::BodyTooLarge { limit }));
            }
            permit.reserve_to(len as usize).map_err(fail)?;
        }
        let body = self.read_body(body).await.map_err(fail)?;
        let cost = self.request_cost(encoding, &body);
        permit.reserve_to(cost).map_err(fail)?;
        let (decoded, appended) = self
            .decode_and_append(version, encoding, body, cost)
            .await
            .map_err(fail)?;
        let rejection = decoded.rejection();
        self.account(&decoded, rejection.is_some());
        let ticket = match appended {
            Ok(ticket) => ticket,
            Err(e) => {
                self.metrics
                    .rejected(e.reason(), decoded.samples_to_write());
                return Err(fail(e));
            }
        };
        drop(decoded);
        drop(permit);
        let mut written = Written::default();
        if let Some(ticket) = ticket {
            let summary = ticket
                .wait()
                .await
                .map_err(|e| fail(IngestError::Commit(e)))?;
            written.samples = summary.samples;
            self.metrics.written(summary.samples);
        }
        Ok(Answer {
            version: Some(version),
            written,
            error: rejection,
        })
    }

    /// Reads the body, refusing more than `max_body_bytes`.
    async fn read_body(&self, body: &mut Body) -> Result<Bytes, IngestError> {
        let limit = self.limits.max_body_bytes;
        match Limited::new(body, limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                Err(IngestError::BodyTooLarge { limit })
            }
            Err(e) => Err(IngestError::BodyRead(e.to_string())),
        }
    }

    /// An empty share of the in-flight budget, grown by
    /// [`InflightPermit::reserve_to`].
    fn permit(&self) -> InflightPermit<'_> {
        InflightPermit {
            permit: None,
            cost: 0,
            ingest: self,
        }
    }

    /// Bytes to charge for a read body: its size plus its decoded size.
    fn request_cost(&self, encoding: Encoding, body: &[u8]) -> usize {
        let decoded = match declared_len(encoding, body) {
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            None => body.len().saturating_mul(UNDECLARED_EXPANSION),
        };
        body.len()
            .saturating_add(decoded.min(self.limits.max_decoded_bytes))
    }

    async fn decode_and_append(
        &self,
        version: Version,
        encoding: Encoding,
        body: Bytes,
        cost: usize,
    ) -> Result<(Decoded, Appended), IngestError> {
        if self.decode_inline && cost <= INLINE_MAX_COST {
            decode_and_append(&self.db, version, encoding, &body, &self.limits, &self.refs)
        } else {
            let db = Arc::clone(&self.db);
            let limits = self.limits.clone();
            let refs = Arc::clone(&self.refs);
            tokio::task::spawn_blocking(move || {
                decode_and_append(&db, version, encoding, &body, &limits, &refs)
            })
            .await
            .map_err(|e| IngestError::Internal(format!("decode task failed: {e}")))?
        }
    }

    /// Metrics and logs for a decoded request.
    fn account(&self, d: &Decoded, rejected: bool) {
        self.metrics.received(&d.stats);
        if !d.invalid.is_empty() {
            // The whole request is refused: its valid samples too.
            self.metrics
                .rejected("invalid_series", d.invalid.samples + d.samples_to_write());
        }
        self.metrics
            .rejected("native_histogram_unsupported", d.stats.histograms);
        self.metrics
            .rejected("exemplar_unsupported", d.stats.exemplars);
        if !rejected && d.stats.histograms + d.stats.exemplars > 0 {
            self.warn_unstored(d);
        }
    }

    /// At most once a minute: say that histograms/exemplars are dropped.
    fn warn_unstored(&self, d: &Decoded) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_warning.load(Ordering::Relaxed);
        if now >= last + 60
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                histograms = d.stats.histograms,
                exemplars = d.stats.exemplars,
                "remote write: native histograms and exemplars are not stored yet; float samples of the \
                 same requests were stored (see silt_remote_write_rejected_samples_total)"
            );
        }
    }
}

/// Most bytes of a refused body read (and dropped) before answering.
const DRAIN_MAX_BYTES: usize = 64 << 20;
/// Longest time spent reading a refused body.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads what is left of a body refused unread (wrong type, too large,
/// overload; a refusal after reading finds nothing left), within
/// [`DRAIN_MAX_BYTES`] and [`DRAIN_TIMEOUT`]. Senders write the whole
/// body before reading the answer; left in the socket, the
/// rest would make the connection close with unread data, which resets it,
/// and the sender would see a broken pipe instead of the status that tells
/// it to drop (413, 415) or retry later (429, 503) the request. Past the
/// bounds the connection is closed as before.
async fn drain(body: &mut Body) {
    let read = async {
        let mut n = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            n += frame.data_ref().map_or(0, Bytes::len);
            if n > DRAIN_MAX_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, read).await;
}

/// The append's outcome: a ticket to wait on, nothing to wait for (empty
/// batch), or the engine's refusal.
type Appended = Result<Option<CommitTicket>, IngestError>;

/// The synchronous part: decode, then append (which validates the whole
/// batch and stores nothing on error). Series seen before are appended by
/// reference; if a reference went stale, everything is forgotten and the
/// request decoded again and appended by labels.
fn decode_and_append(
    db: &Arc<Db>,
    version: Version,
    encoding: Encoding,
    body: &[u8],
    limits: &Limits,
    refs: &RefCache,
) -> Result<(Decoded, Appended), IngestError> {
    let decoded = decode_body(version, encoding, body, limits, Some(refs))?;
    // A request is applied whole or not at all: with any invalid series,
    // nothing is appended and the answer is 400.
    if !decoded.invalid.is_empty() || decoded.is_empty() {
        return Ok((decoded, Ok(None)));
    }
    match db.append_with_refs(&decoded.batch, &decoded.refs) {
        Ok(ticket) => {
            refs.learn(&decoded.keys, &ticket.summary().refs);
            Ok((decoded, Ok(Some(ticket))))
        }
        Err(AppendError::StaleSeriesRef { .. }) => {
            refs.clear();
            let decoded = decode_body(version, encoding, body, limits, None)?;
            let appended = db
                .append(&decoded.batch)
                .map(Some)
                .map_err(IngestError::Append);
            Ok((decoded, appended))
        }
        Err(e) => Ok((decoded, Err(IngestError::Append(e)))),
    }
}

/// A share of the in-flight budget, returned on drop.
struct InflightPermit<'a> {
    permit: Option<OwnedSemaphorePermit>,
    cost: usize,
    ingest: &'a Ingest,
}

impl InflightPermit<'_> {
    /// Grows the reservation to `total` bytes, or fails with 503 at once. A
    /// request larger than the whole budget is clamped to it (it may still
    /// run alone).
    fn reserve_to(&mut self, total: usize) -> Result<(), IngestError> {
        let target = total.clamp(1, self.ingest.inflight_total);
        if target <= self.cost {
            return Ok(());
        }
        let more = (target - self.cost).min(u32::MAX as usize);
        match Arc::clone(&self.ingest.inflight).try_acquire_many_owned(more as u32) {
            Ok(p) => {
                match &mut self.permit {
                    Some(held) => held.merge(p),
                    None => self.permit = Some(p),
                }
                self.cost += more;
                self.ingest.metrics.inflight_bytes.inc_by(more as i64);
                Ok(())
            }
            Err(_) => Err(IngestError::Overloaded {
                requested: total,
                limit: self.ingest.inflight_total,
            }),
        }
    }
}

impl Drop for InflightPermit<'_> {
    fn drop(&mut self) {
        self.ingest.metrics.inflight_bytes.dec_by(self.cost as i64);
    }
}

/// What was written, for the 2.0 response headers.
#[derive(Debug, Clone, Copy, Default)]
struct Written {
    samples: usize,
}

/// The outcome of one request.
struct Answer {
    version: Option<Version>,
    written: Written,
    error: Option<IngestError>,
}

impl Answer {
    fn error(version: Option<Version>, e: IngestError) -> Answer {
        Answer {
            version,
            written: Written::default(),
            error: Some(e),
        }
    }

    fn status(&self) -> u16 {
        self.error.as_ref().map_or(204, IngestError::status)
    }

    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = match &self.error {
            None => Response::new(Body::empty()),
            Some(e) => {
                let mut r = Response::new(Body::from(format!("{e}\n")));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                }
                r
            }
        };
        *resp.status_mut() = status;
        if self.version == Some(Version::V2) {
            let h = resp.headers_mut();
            h.insert(
                HEADER_SAMPLES_WRITTEN,
                HeaderValue::from(self.written.samples),
            );
            // Histograms and exemplars are not stored yet: always 0.
            h.insert(HEADER_HISTOGRAMS_WRITTEN, HeaderValue::from_static("0"));
            h.insert(HEADER_EXEMPLARS_WRITTEN, HeaderValue::from_static("0"));
        }
        resp
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse().ok())
}

/// A header's value; one that is not visible ASCII reads as U+FFFD, which no
/// parser accepts.
fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

/// The remote-write routes: `POST /api/v1/write` and its alias
/// `POST /api/v1/push`. Other methods get 405 with `Allow: POST`.
pub fn routes(ingest: Arc<Ingest>) -> Router {
    Router::new()
        .route("/api/v1/write", post(write))
        .route("/api/v1/push", post(write))
        .with_state(ingest)
}

async fn write(State(ingest): State<Arc<Ingest>>, headers: HeaderMap, body: Body) -> Response {
    let start = Instant::now();
    let answer = ingest.handle(&headers, body).await;
    let status = answer.status();
    if let Some(e) = &answer.error {
        if status >= 500 {
            tracing::warn!(status, reason = e.reason(), "remote write failed: {e}");
        } else {
            tracing::debug!(status, reason = e.reason(), "remote write rejected: {e}");
        }
    }
    ingest
        .metrics
        .request(answer.version, status, start.elapsed().as_secs_f64());
    answer.into_response()
}

#[cfg(test)]
mod tests;
