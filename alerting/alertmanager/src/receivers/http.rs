//! HTTP delivery: clients built from `http_config`, one request attempt
//! with a bounded response read, the per-integration verdict on the
//! response, and the retry loop with Alertmanager's backoff.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue};
use tokio::time::Instant;

use super::config::{GlobalConfig, HttpConfig};
use super::{ReceiverError, SendError};

/// `User-Agent` of every request, as Alertmanager sends it.
pub const USER_AGENT: &str = concat!("Alertmanager/", env!("CARGO_PKG_VERSION"));

/// At most this much of a response body is read (errors quote it).
const MAX_BODY: usize = 64 * 1024;

/// Backoff: Alertmanager's (cenkalti/backoff defaults).
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
const BACKOFF_MULTIPLIER: f64 = 1.5;
const BACKOFF_JITTER: f64 = 0.5;
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// No retry is started with less time than this left before the deadline.
const MIN_ATTEMPT: Duration = Duration::from_millis(100);

/// A client plus the authorization header its `http_config` asks for.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    auth: Option<HeaderValue>,
}

fn read_secret(
    receiver: &str,
    inline: &Option<String>,
    file: &Option<String>,
) -> Result<Option<String>, ReceiverError> {
    if let Some(s) = inline {
        return Ok(Some(s.clone()));
    }
    match file {
        Some(path) => std::fs::read_to_string(path)
            .map(|s| Some(s.trim().to_string()))
            .map_err(|source| ReceiverError::ReadFile {
                receiver: receiver.to_string(),
                path: path.clone(),
                source,
            }),
        None => Ok(None),
    }
}

pub(crate) fn read_file(receiver: &str, path: &str) -> Result<String, ReceiverError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| ReceiverError::ReadFile {
            receiver: receiver.to_string(),
            path: path.to_string(),
            source,
        })
}

impl HttpClient {
    /// Builds a client from the integration's `http_config`, else the
    /// global one.
    pub fn new(
        receiver: &str,
        cfg: Option<&HttpConfig>,
        global: &GlobalConfig,
    ) -> Result<HttpClient, ReceiverError> {
        let default = HttpConfig::default();
        let cfg = cfg.or(global.http_config.as_ref()).unwrap_or(&default);
        let err = |message: String| ReceiverError::HttpClient {
            receiver: receiver.to_string(),
            message,
        };
        let mut b = reqwest::Client::builder().user_agent(USER_AGENT).redirect(
            if cfg.follow_redirects.unwrap_or(true) {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            },
        );
        if let Some(tls) = &cfg.tls_config {
            if tls.server_name.is_some() {
                return Err(err(
                    "tls_config.server_name is only supported for email".into()
                ));
            }
            b = b.danger_accept_invalid_certs(tls.insecure_skip_verify);
            if let Some(ca) = &tls.ca_file {
                let pem = std::fs::read(ca).map_err(|source| ReceiverError::ReadFile {
                    receiver: receiver.to_string(),
                    path: ca.clone(),
                    source,
                })?;
                for cert in reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| err(format!("ca_file {ca}: {e}")))?
                {
                    b = b.add_root_certificate(cert);
                }
            }
        }
        match &cfg.proxy_url {
            Some(p) => {
                b = b.proxy(reqwest::Proxy::all(p).map_err(|e| err(format!("proxy_url: {e}")))?)
            }
            None => b = b.no_proxy(),
        }
        let client = b.build().map_err(|e| err(e.to_string()))?;

        let mut auth = None;
        if let Some(basic) = &cfg.basic_auth {
            let password = read_secret(receiver, &basic.password, &basic.password_file)?;
            let raw = format!("{}:{}", basic.username, password.unwrap_or_default());
            auth = Some(format!("Basic {}", base64(raw.as_bytes())));
        }
        if let Some(a) = &cfg.authorization {
            let creds = read_secret(receiver, &a.credentials, &a.credentials_file)?;
            let kind = a.kind.as_deref().unwrap_or("Bearer");
            auth = Some(format!("{kind} {}", creds.unwrap_or_default()));
        }
        if let Some(token) = read_secret(receiver, &cfg.bearer_token, &cfg.bearer_token_file)? {
            auth = Some(format!("Bearer {token}"));
        }
        let auth = auth
            .map(|a| {
                let mut v =
                    HeaderValue::from_str(&a).map_err(|_| err("invalid credentials".into()))?;
                v.set_sensitive(true);
                Ok::<_, ReceiverError>(v)
            })
            .transpose()?;
        Ok(HttpClient { client, auth })
    }
}

impl HttpClient {
    /// The same client, authorizing with `Bearer <token>`.
    pub fn with_bearer(mut self, receiver: &str, token: &str) -> Result<HttpClient, ReceiverError> {
        let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            ReceiverError::HttpClient {
                receiver: receiver.to_string(),
                message: "invalid token".to_string(),
            }
        })?;
        v.set_sensitive(true);
        self.auth = Some(v);
        Ok(self)
    }
}

fn base64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One prepared request; sent again on every retry.
#[derive(Debug, Clone)]
pub struct Request {
    pub url: String,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Bound on one attempt (the integration's `timeout`).
    pub timeout: Option<Duration>,
}

/// What came back.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

/// The verdict on one attempt.
#[derive(Debug)]
pub enum Attempt {
    Done,
    Retry {
        error: SendError,
        after: Option<Duration>,
    },
    Fail(SendError),
}

impl HttpClient {
    /// Sends `req` once, bounded by its timeout and by `deadline`.
    pub async fn send(&self, req: &Request, deadline: Instant) -> Result<Response, SendError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let limit = req.timeout.map_or(left, |t| t.min(left));
        let mut rb = self
            .client
            .post(&req.url)
            .header(reqwest::header::CONTENT_TYPE, req.content_type)
            .body(req.body.clone());
        if let Some(a) = &self.auth {
            rb = rb.header(reqwest::header::AUTHORIZATION, a.clone());
        }
        let exchange = async {
            let mut resp = rb.send().await.map_err(network_error)?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(network_error)? {
                let room = MAX_BODY - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= MAX_BODY {
                    break;
                }
            }
            Ok(Response {
                status,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            })
        };
        match tokio::time::timeout(limit, exchange).await {
            Ok(r) => r,
            Err(_) => Err(SendError::Timeout(limit)),
        }
    }
}

fn network_error(e: reqwest::Error) -> SendError {
    // The URL may hold a secret (Slack, Discord, Teams webhooks, Telegram
    // bot tokens): never quote it.
    SendError::Network(e.without_url().to_string())
}

/// `Retry-After` in seconds (fractional accepted) or as an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(86400.0)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// The common verdict: 2xx done; 5xx and 429 retried (429 after
/// `Retry-After`); other codes fail.
pub fn check_status(r: &Response) -> Attempt {
    match r.status {
        200..=299 => Attempt::Done,
        429 => Attempt::Retry {
            error: status_error(r),
            after: retry_after(&r.headers),
        },
        500..=599 => Attempt::Retry {
            error: status_error(r),
            after: None,
        },
        _ => Attempt::Fail(status_error(r)),
    }
}

pub fn status_error(r: &Response) -> SendError {
    SendError::Status {
        status: r.status,
        body: r.body.chars().take(512).collect(),
    }
}

/// The delay before retry `n` (0-based): 0.5 s × 1.5ⁿ, ±50 % jitter,
/// capped at 60 s.
pub fn backoff(n: u32) -> Duration {
    let base = INITIAL_BACKOFF.as_secs_f64() * BACKOFF_MULTIPLIER.powi(n.min(64) as i32);
    let base = base.min(MAX_BACKOFF.as_secs_f64());
    let jitter = rand::rng().random_range(-BACKOFF_JITTER..=BACKOFF_JITTER);
    Duration::from_secs_f64((base * (1.0 + jitter)).min(MAX_BACKOFF.as_secs_f64()))
}

/// Runs `attempt` until it is done, fails permanently, or `deadline`
/// leaves no time for another try. `on_attempt(failed, elapsed)` is called
/// after every attempt (metrics).
pub async fn retry<F, Fut>(
    deadline: Instant,
    mut attempt: F,
    mut on_attempt: impl FnMut(bool, Duration),
) -> Result<(), SendError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt>,
{
    let mut attempts = 0u32;
    loop {
        let start = Instant::now();
        let verdict = attempt().await;
        attempts += 1;
        on_attempt(!matches!(verdict, Attempt::Done), start.elapsed());
        let (error, after) = match verdict {
            Attempt::Done => return Ok(()),
            Attempt::Fail(e) => return Err(e),
            Attempt::Retry { error, after } => (error, after),
        };
        let wait = backoff(attempts - 1).max(after.unwrap_or(Duration::ZERO));
        if Instant::now() + wait + MIN_ATTEMPT >= deadline {
            return Err(SendError::DeadlineExceeded {
                attempts,
                last: Box::new(error),
            });
        }
        tracing::debug!(error = %error, ?wait, attempts, "notification attempt failed, retrying");
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
    }

    #[test]
    fn backoff_grows_and_caps() {
        for _ in 0..50 {
            let b0 = backoff(0).as_secs_f64();
            assert!((0.25..=0.75).contains(&b0), "{b0}");
            let b3 = backoff(3).as_secs_f64();
            assert!((0.5 * 1.6875..=1.5 * 1.6875).contains(&b3), "{b3}");
            assert!(backoff(40) <= MAX_BACKOFF);
        }
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after", HeaderValue::from_static("0.5"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(500)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn status_verdicts() {
        let r = |status| Response {
            status,
            headers: HeaderMap::new(),
            body: "x".into(),
        };
        assert!(matches!(check_status(&r(204)), Attempt::Done));
        assert!(matches!(check_status(&r(503)), Attempt::Retry { .. }));
        assert!(matches!(check_status(&r(429)), Attempt::Retry { .. }));
        assert!(matches!(check_status(&r(400)), Attempt::Fail(_)));
        assert!(matches!(check_status(&r(404)), Attempt::Fail(_)));
    }
}
