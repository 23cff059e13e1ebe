//! Receivers: deliver one [`Notification`] to every integration of a
//! configured receiver (webhook, Slack, Discord, Microsoft Teams, Telegram,
//! PagerDuty, email), with Alertmanager's payloads and default templates,
//! retries with backoff, a per-receiver rate limit and metrics.
//!
//! Delivery of one notification, per integration:
//! 1. `send_resolved: false` integrations drop the resolved alerts; nothing
//!    is sent if no alert remains, or when the notification only reports
//!    resolutions (reason "some alerts resolved") to such an integration.
//! 2. The message is rendered once (templates), then sent with retries:
//!    exponential backoff from 0.5 s, ×1.5, jittered, capped at 60 s, on
//!    network errors, 5xx and 429 (honouring `Retry-After`), never on other
//!    4xx; until the deadline (the caller's, or the receiver's
//!    `notify_deadline`, default 5 min). Each request is bounded by the
//!    integration's `timeout` when set.
//! 3. All integrations of a receiver are notified concurrently; the
//!    notification fails if any integration failed.
//!
//! Rate limit (Silt extension, `rate_limit: {per_second, burst}` in a
//! receiver): a token bucket per receiver; each notification takes one
//! token, waiting for it until the deadline (refused with
//! [`NotifyError::RateLimited`] if none comes in time).
//!
//! Messages: one per group, never one per alert. The default titles are
//! smart summaries (`[FIRING:12] NodeDown — 12 instances: web-1, …, web-5
//! and 7 more`, see [`Summary`]), bodies list the instances and only the
//! annotations that differ between alerts. Every text is a template
//! (Alertmanager's names: `slack.default.title`, `__subject`, …) that
//! configuration and user template files may override; see
//! [`DEFAULT_TEMPLATES`]. Each service's size limits are kept by truncating
//! with `…`.
//!
//! Differences from Alertmanager: 429 is retried for every integration;
//! Telegram does not retry 4xx; the dedup (notification log) is the
//! dispatcher's, per receiver, so `send_resolved: false` integrations skip
//! "some/all alerts resolved" notifications themselves.

mod chat;
pub mod config;
mod data;
mod email;
mod http;
mod metrics;
mod pagerduty;
mod ratelimit;
mod summary;
mod templates;
mod webhook;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use chat::{truncate_bytes, truncate_runes};
pub use config::{
    Authorization, BasicAuth, DiscordConfig, EmailConfig, GlobalConfig, HttpConfig, MsTeamsConfig,
    MsTeamsV2Config, PagerdutyConfig, PagerdutyImage, PagerdutyLink, RateLimitConfig,
    ReceiverConfig, SlackConfig, SlackField, TelegramConfig, TlsConfig, WebhookConfig,
};
pub use data::{go_rfc3339, go_time_string, template_data};
pub use http::USER_AGENT;
pub use metrics::ReceiverMetrics;
pub use pagerduty::dedup_key;
pub use summary::Summary;
pub use templates::{DEFAULT_TEMPLATES, Templates};

use chat::{Discord, MsTeams, Slack, Telegram};
use data::{View, view_data};
use email::Email;
use http::{Attempt, HttpClient, Request, Response, check_status, retry};
use pagerduty::Pagerduty;
use ratelimit::{Acquired, TokenBucket};
use templates::Renderer;
use tokio::time::Instant;
use types::NotificationReason;
use webhook::Webhook;

use crate::types::{self, Notification};

/// The default time one notification may take, retries included.
pub const DEFAULT_NOTIFY_DEADLINE: Duration = Duration::from_secs(300);

/// Errors building a receiver from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    #[error("receiver {receiver}: {integration}: missing {field}")]
    Missing {
        receiver: String,
        integration: String,
        field: &'static str,
    },
    #[error("receiver {receiver}: {integration}: {message}")]
    Invalid {
        receiver: String,
        integration: String,
        message: String,
    },
    #[error("receiver {receiver}: reading {path}: {source}")]
    ReadFile {
        receiver: String,
        path: String,
        source: std::io::Error,
    },
    #[error("template {name}: {message}")]
    Template { name: String, message: String },
    #[error("receiver {receiver}: building HTTP client: {message}")]
    HttpClient { receiver: String, message: String },
}

/// Why one integration failed to deliver.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    #[error("template {field}: {message}")]
    Template { field: String, message: String },
    #[error("request failed: {0}")]
    Network(String),
    #[error("unexpected status code {status}: {body}")]
    Status { status: u16, body: String },
    #[error("unexpected response: {0}")]
    Response(String),
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    #[error("smtp: {0}")]
    Smtp(String),
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    #[error("deadline exceeded after {attempts} attempts, last error: {last}")]
    DeadlineExceeded { attempts: u32, last: Box<SendError> },
}

impl SendError {
    /// Alertmanager's failure reason label (`notify/util.go`).
    pub fn reason(&self) -> &'static str {
        match self {
            SendError::Status { status, .. } => match status {
                401 | 403 => "authError",
                429 => "rateLimited",
                400..=499 => "clientError",
                500..=599 => "serverError",
                _ => "other",
            },
            SendError::Timeout(_) | SendError::DeadlineExceeded { .. } => "contextDeadlineExceeded",
            _ => "other",
        }
    }
}

/// One failed integration of a receiver, e.g. `slack[0]`.
#[derive(Debug, Clone)]
pub struct IntegrationFailure {
    pub integration: String,
    pub error: SendError,
}

/// Errors of [`Receiver::notify`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum NotifyError {
    #[error("receiver {receiver}: {} of {total} integrations failed: {}", failures.len(), describe(failures))]
    Integrations {
        receiver: String,
        total: usize,
        failures: Vec<IntegrationFailure>,
    },
    #[error("receiver {receiver}: rate limit: no token before the deadline")]
    RateLimited { receiver: String },
}

fn describe(failures: &[IntegrationFailure]) -> String {
    failures
        .iter()
        .map(|f| format!("{}: {}", f.integration, f.error))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What the dispatcher calls for a group flush. Implemented by
/// [`Receiver`]; tests implement it with a recording fake.
pub trait Notify: Send + Sync {
    fn notify<'a>(
        &'a self,
        n: &'a Notification,
    ) -> Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>>;

    fn name(&self) -> &str;

    /// Like [`Notify::notify`], retrying until `deadline` and then failing
    /// cleanly (with metrics recorded) instead of being cancelled.
    /// Default: `notify`.
    fn notify_until<'a>(
        &'a self,
        n: &'a Notification,
        deadline: Instant,
    ) -> Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>> {
        let _ = deadline;
        self.notify(n)
    }

    /// Whether any integration wants resolved alerts (the dedup stage's
    /// `send_resolved`).
    fn send_resolved(&self) -> bool {
        true
    }
}

enum Kind {
    Webhook(Webhook),
    Slack(Box<Slack>),
    Discord(Box<Discord>),
    MsTeams(MsTeams),
    MsTeamsV2(MsTeams),
    Telegram(Telegram),
    Pagerduty(Box<Pagerduty>),
    Email(Box<Email>),
}

struct Integration {
    kind: Kind,
    /// `webhook`, `slack`, ... (the metrics' `integration` label).
    name: &'static str,
    index: usize,
    send_resolved: bool,
}

/// A configured receiver: its integrations, rate limit and metrics.
pub struct Receiver {
    name: String,
    integrations: Vec<Integration>,
    renderer: Renderer,
    deadline: Duration,
    limiter: Option<TokenBucket>,
    metrics: ReceiverMetrics,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.name)
            .field("integrations", &self.integrations.len())
            .finish()
    }
}

impl Receiver {
    /// Builds the receiver: validates every integration, reads `*_file`
    /// secrets, builds HTTP clients and parses every configured template
    /// string (so template errors surface at configuration load).
    pub fn new(
        cfg: &ReceiverConfig,
        global: &GlobalConfig,
        templates: Arc<Templates>,
        metrics: &ReceiverMetrics,
    ) -> Result<Receiver, ReceiverError> {
        let name = cfg.name.as_str();
        let mut r = Renderer::new(&templates);
        let mut integrations = Vec::new();
        let mut add = |kind: Kind, name: &'static str, index: usize, send_resolved: bool| {
            integrations.push(Integration {
                kind,
                name,
                index,
                send_resolved,
            })
        };
        for (i, c) in cfg.webhook_configs.iter().enumerate() {
            let k = Kind::Webhook(Webhook::new(name, c, global, &mut r)?);
            add(k, "webhook", i, c.send_resolved.unwrap_or(true));
        }
        for (i, c) in cfg.slack_configs.iter().enumerate() {
            let k = Kind::Slack(Box::new(Slack::new(name, c, global, &mut r)?));
            add(k, "slack", i, c.send_resolved.unwrap_or(false));
        }
        for (i, c) in cfg.discord_configs.iter().enumerate() {
            let k = Kind::Discord(Box::new(Discord::new(name, c, global, &mut r)?));
            add(k, "discord", i, c.send_resolved.unwrap_or(true));
        }
        for (i, c) in cfg.msteams_configs.iter().enumerate() {
            let k = Kind::MsTeams(MsTeams::new(name, c, global, &mut r)?);
            add(k, "msteams", i, c.send_resolved.unwrap_or(true));
        }
        for (i, c) in cfg.msteamsv2_configs.iter().enumerate() {
            let k = Kind::MsTeamsV2(MsTeams::new_v2(name, c, global, &mut r)?);
            add(k, "msteamsv2", i, c.send_resolved.unwrap_or(true));
        }
        for (i, c) in cfg.telegram_configs.iter().enumerate() {
            let k = Kind::Telegram(Telegram::new(name, c, global, &mut r)?);
            add(k, "telegram", i, c.send_resolved.unwrap_or(true));
        }
        for (i, c) in cfg.pagerduty_configs.iter().enumerate() {
            let k = Kind::Pagerduty(Box::new(Pagerduty::new(name, c, global, &mut r)?));
            add(k, "pagerduty", i, c.send_resolved.unwrap_or(true));
        }
        for (i, c) in cfg.email_configs.iter().enumerate() {
            let k = Kind::Email(Box::new(Email::new(name, c, global, &mut r)?));
            add(k, "email", i, c.send_resolved.unwrap_or(false));
        }
        let limiter = match cfg.rate_limit {
            Some(l) if l.per_second.is_finite() && l.per_second > 0.0 => {
                Some(TokenBucket::new(l.per_second, l.burst))
            }
            Some(_) => {
                return Err(ReceiverError::Invalid {
                    receiver: name.to_string(),
                    integration: "rate_limit".to_string(),
                    message: "per_second must be a positive number".to_string(),
                });
            }
            None => None,
        };
        Ok(Receiver {
            name: name.to_string(),
            integrations,
            renderer: r,
            deadline: cfg.notify_deadline.unwrap_or(DEFAULT_NOTIFY_DEADLINE),
            limiter,
            metrics: metrics.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether any integration sends resolved alerts.
    pub fn send_resolved(&self) -> bool {
        self.integrations.iter().any(|i| i.send_resolved)
    }

    /// The integrations, as `(kind, send_resolved)`, in configuration order
    /// (webhook, slack, discord, msteams, msteamsv2, telegram, pagerduty,
    /// email).
    pub fn integrations(&self) -> Vec<(&'static str, bool)> {
        self.integrations
            .iter()
            .map(|i| (i.name, i.send_resolved))
            .collect()
    }

    /// Delivers `n` with the receiver's own deadline (`notify_deadline`,
    /// default 5 min).
    pub async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        self.notify_until(n, Instant::now() + self.deadline).await
    }

    /// Delivers `n` to every integration concurrently, retrying each until
    /// `deadline`.
    pub async fn notify_until(
        &self,
        n: &Notification,
        deadline: Instant,
    ) -> Result<(), NotifyError> {
        let jobs: Vec<(&Integration, View<'_>)> = self
            .integrations
            .iter()
            .filter_map(|i| {
                // An integration that drops resolved alerts has nothing new
                // to say when the group only saw resolutions.
                if !i.send_resolved
                    && matches!(
                        n.reason,
                        NotificationReason::SomeAlertsResolved
                            | NotificationReason::AllAlertsResolved
                    )
                {
                    return None;
                }
                let v = View::new(n, i.send_resolved);
                (!v.alerts.is_empty()).then_some((i, v))
            })
            .collect();
        if jobs.is_empty() {
            return Ok(());
        }
        if let Some(l) = &self.limiter {
            match l.acquire(deadline).await {
                Acquired::Now => {}
                Acquired::Waited => {
                    for (i, _) in &jobs {
                        self.metrics.rate_limited(&self.name, i.name);
                    }
                }
                Acquired::Denied => {
                    for (i, _) in &jobs {
                        self.metrics.rate_limited(&self.name, i.name);
                        self.metrics.notification(&self.name, i.name);
                        self.metrics.failed(&self.name, i.name, "rateLimited");
                    }
                    return Err(NotifyError::RateLimited {
                        receiver: self.name.clone(),
                    });
                }
            }
        }
        let results = join_all(jobs.iter().map(|(i, v)| self.deliver(i, v, deadline))).await;
        let failures: Vec<IntegrationFailure> = jobs
            .iter()
            .zip(results)
            .filter_map(|((i, _), r)| {
                r.err().map(|error| IntegrationFailure {
                    integration: format!("{}[{}]", i.name, i.index),
                    error,
                })
            })
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(NotifyError::Integrations {
                receiver: self.name.clone(),
                total: jobs.len(),
                failures,
            })
        }
    }

    async fn deliver(
        &self,
        i: &Integration,
        v: &View<'_>,
        deadline: Instant,
    ) -> Result<(), SendError> {
        self.metrics.notification(&self.name, i.name);
        let result = self.deliver_inner(i, v, deadline).await;
        if let Err(e) = &result {
            self.metrics.failed(&self.name, i.name, e.reason());
            tracing::warn!(receiver = %self.name, integration = i.name, index = i.index, error = %e, "notify failed");
        }
        result
    }

    async fn deliver_inner(
        &self,
        i: &Integration,
        v: &View<'_>,
        deadline: Instant,
    ) -> Result<(), SendError> {
        let r = &self.renderer;
        let data = view_data(v);
        let on_attempt = |failed: bool, took: Duration| {
            self.metrics.request(&self.name, i.name, failed);
            self.metrics.latency(&self.name, i.name, took);
        };
        type Check = fn(&Response) -> Attempt;
        let (client, req, check): (&HttpClient, Request, Check) = match &i.kind {
            Kind::Email(e) => {
                let msg = e.message(r, &data, &v.n.group_key)?;
                return retry(deadline, || e.send(&msg, deadline), on_attempt).await;
            }
            Kind::Webhook(w) => (&w.client, w.request(r, v)?, check_status),
            Kind::Slack(s) => (&s.client, s.request(r, &data)?, Slack::check),
            Kind::Discord(d) => (&d.client, d.request(r, v, &data)?, Discord::check),
            Kind::MsTeams(t) | Kind::MsTeamsV2(t) => {
                (&t.client, t.request(r, v, &data)?, MsTeams::check)
            }
            Kind::Telegram(t) => (&t.client, t.request(r, &data)?, Telegram::check),
            Kind::Pagerduty(p) => (&p.client, p.request(r, v, &data)?, check_status),
        };
        let attempt = || async {
            match client.send(&req, deadline).await {
                Ok(resp) => check(&resp),
                Err(error) => Attempt::Retry { error, after: None },
            }
        };
        retry(deadline, attempt, on_attempt).await
    }
}

/// Polls the futures concurrently on the current task.
async fn join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut futs: Vec<Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

impl Notify for Receiver {
    fn notify<'a>(
        &'a self,
        n: &'a Notification,
    ) -> Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>> {
        Box::pin(Receiver::notify(self, n))
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn notify_until<'a>(
        &'a self,
        n: &'a Notification,
        deadline: Instant,
    ) -> Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>> {
        Box::pin(Receiver::notify_until(self, n, deadline))
    }

    fn send_resolved(&self) -> bool {
        Receiver::send_resolved(self)
    }
}
