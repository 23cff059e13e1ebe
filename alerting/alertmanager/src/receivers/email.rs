//! `email_configs`: one email per group over SMTP (lettre): implicit TLS on
//! port 465 (or `force_implicit_tls`), else STARTTLS when `require_tls`
//! (default true, then the server must offer it), AUTH PLAIN or LOGIN when
//! `auth_username` is set. The message is `multipart/alternative` with a
//! text part (Silt's default `email.default.text`) and an HTML part
//! (`email.default.html`); headers `From`, `To`, `Subject` (templated, as
//! any configured header), `Message-Id`, `Date`, `MIME-Version`.

use std::collections::BTreeMap;
use std::time::Duration;

use gotmpl::Value;
use lettre::message::header::{
    self, ContentTransferEncoding, ContentType, HeaderName, HeaderValue,
};
use lettre::message::{Mailbox, Mailboxes, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rand::Rng;
use tokio::time::Instant;

use super::config::{EmailConfig, GlobalConfig};
use super::http::{Attempt, read_file};
use super::pagerduty::dedup_key;
use super::templates::{Field, Renderer};
use super::{ReceiverError, SendError};

#[derive(Debug)]
pub struct Email {
    host: String,
    port: u16,
    hello: String,
    tls: TlsMode,
    insecure: bool,
    server_name: Option<String>,
    /// Extra CA certificates (PEM) from `tls_config.ca_file`.
    ca_pem: Option<Vec<u8>>,
    credentials: Option<Credentials>,
    from: Field,
    to: Field,
    headers: Vec<(String, Field)>,
    text: Option<Field>,
    html: Option<Field>,
    timeout: Option<Duration>,
    hostname: String,
    /// `Some(daily)` when threading is enabled.
    thread_daily: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    Implicit,
    StartTls,
    None,
}

/// Go's `textproto.CanonicalMIMEHeaderKey`: `message-id` → `Message-Id`.
fn canonical_header(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost.localdomain".to_string())
}

impl Email {
    pub fn new(
        receiver: &str,
        c: &EmailConfig,
        g: &GlobalConfig,
        r: &mut Renderer,
    ) -> Result<Email, ReceiverError> {
        let missing = |field| ReceiverError::Missing {
            receiver: receiver.to_string(),
            integration: "email".to_string(),
            field,
        };
        let invalid = |message: String| ReceiverError::Invalid {
            receiver: receiver.to_string(),
            integration: "email".to_string(),
            message,
        };
        let to = c.to.clone().ok_or_else(|| missing("to"))?;
        let from = c
            .from
            .clone()
            .or_else(|| g.smtp_from.clone())
            .ok_or_else(|| missing("from"))?;
        let smarthost = c
            .smarthost
            .clone()
            .or_else(|| g.smtp_smarthost.clone())
            .ok_or_else(|| missing("smarthost"))?;
        let (host, port) = smarthost
            .rsplit_once(':')
            .and_then(|(h, p)| {
                Some((
                    h.trim_matches(['[', ']']).to_string(),
                    p.parse::<u16>().ok()?,
                ))
            })
            .ok_or_else(|| invalid(format!("smarthost {smarthost:?} is not host:port")))?;
        let implicit = c
            .force_implicit_tls
            .or(g.smtp_force_implicit_tls)
            .unwrap_or(port == 465);
        let tls = if implicit {
            TlsMode::Implicit
        } else if c.require_tls.unwrap_or(g.smtp_require_tls) {
            TlsMode::StartTls
        } else {
            TlsMode::None
        };
        let username = c
            .auth_username
            .clone()
            .or_else(|| g.smtp_auth_username.clone());
        let credentials = match username {
            Some(u) if !u.is_empty() => {
                let password = match (&c.auth_password, &c.auth_password_file) {
                    (Some(p), _) => p.clone(),
                    (None, Some(f)) => read_file(receiver, f)?,
                    (None, None) => match (&g.smtp_auth_password, &g.smtp_auth_password_file) {
                        (Some(p), _) => p.clone(),
                        (None, Some(f)) => read_file(receiver, f)?,
                        (None, None) => String::new(),
                    },
                };
                Some(Credentials::new(u, password))
            }
            _ => None,
        };

        let thread_daily = if c.threading.enabled {
            let by = c.threading.thread_by_date.as_deref().unwrap_or("daily");
            if by != "daily" && by != "none" {
                return Err(invalid(
                    "threading.thread_by_date must be either 'none' or 'daily'".into(),
                ));
            }
            for h in c.headers.keys().map(|k| canonical_header(k)) {
                if h == "References" || h == "In-Reply-To" {
                    return Err(invalid(format!(
                        "threading.enabled conflicts with custom {h} header"
                    )));
                }
            }
            Some(by == "daily")
        } else {
            None
        };
        let mut header_srcs: BTreeMap<String, String> = c
            .headers
            .iter()
            .map(|(k, v)| (canonical_header(k), v.clone()))
            .collect();
        header_srcs.entry("To".into()).or_insert_with(|| to.clone());
        header_srcs
            .entry("From".into())
            .or_insert_with(|| from.clone());
        header_srcs
            .entry("Subject".into())
            .or_insert_with(|| r#"{{ template "email.default.subject" . }}"#.to_string());
        let mut headers = Vec::new();
        for (k, v) in &header_srcs {
            HeaderName::new_from_ascii(k.clone())
                .map_err(|_| invalid(format!("bad header name {k:?}")))?;
            headers.push((k.clone(), r.text("header", Some(v), "")?));
        }
        let html = match c.html.as_deref() {
            Some("") => None,
            h => Some(r.html("html", h, "email.default.html")?),
        };
        let text = match c.text.as_deref() {
            Some("") => None,
            t => Some(r.text("text", t, "email.default.text")?),
        };
        let tls_cfg = c.tls_config.as_ref();
        Ok(Email {
            host,
            port,
            hello: c
                .hello
                .clone()
                .or_else(|| g.smtp_hello.clone())
                .unwrap_or_else(|| "localhost".to_string()),
            tls,
            insecure: tls_cfg.is_some_and(|t| t.insecure_skip_verify),
            server_name: tls_cfg.and_then(|t| t.server_name.clone()),
            ca_pem: match tls_cfg.and_then(|t| t.ca_file.as_ref()) {
                Some(path) => {
                    Some(
                        std::fs::read(path).map_err(|source| ReceiverError::ReadFile {
                            receiver: receiver.to_string(),
                            path: path.clone(),
                            source,
                        })?,
                    )
                }
                None => None,
            },
            credentials,
            from: r.text("from", Some(&from), "")?,
            to: r.text("to", Some(&to), "")?,
            headers,
            text,
            html,
            timeout: c.timeout.filter(|t| !t.is_zero()),
            hostname: hostname(),
            thread_daily,
        })
    }

    /// Renders the message once; it is sent again on retries.
    pub fn message(
        &self,
        r: &Renderer,
        data: &Value,
        group_key: &str,
    ) -> Result<Message, SendError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            SendError::InvalidMessage(format!("{what}: {e}"))
        };
        let from: Mailbox = r
            .render(&self.from, data)?
            .parse()
            .map_err(|e| bad("from", &e))?;
        let to: Mailboxes = r
            .render(&self.to, data)?
            .parse()
            .map_err(|e| bad("to", &e))?;
        let envelope = lettre::address::Envelope::new(
            Some(from.email.clone()),
            to.iter().map(|m| m.email.clone()).collect(),
        )
        .map_err(|e| bad("envelope", &e))?;
        let mut b = Message::builder().envelope(envelope);
        let mut has_message_id = false;
        for (name, f) in &self.headers {
            let value = r.render(f, data)?;
            b = match name.as_str() {
                "From" => b.from(value.parse().map_err(|e| bad("From header", &e))?),
                "To" => {
                    let to: Mailboxes = value.parse().map_err(|e| bad("To header", &e))?;
                    b.mailbox(header::To::from(to))
                }
                "Subject" => b.subject(value),
                _ => {
                    has_message_id |= name == "Message-Id";
                    let hn =
                        HeaderName::new_from_ascii(name.clone()).map_err(|e| bad("header", &e))?;
                    b.raw_header(HeaderValue::new(hn, value))
                }
            };
        }
        if !has_message_id {
            let id = format!(
                "<{}.{}@{}>",
                chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
                rand::rng().random::<u64>(),
                self.hostname
            );
            let hn = HeaderName::new_from_ascii_str("Message-Id");
            b = b.raw_header(HeaderValue::new(hn, id));
        }
        if let Some(daily) = self.thread_daily {
            let date = if daily {
                chrono::Utc::now().format("%Y-%m-%d").to_string()
            } else {
                String::new()
            };
            let root = format!(
                "<alert-{}-{date}@alertmanager>",
                &dedup_key(group_key)[..16]
            );
            for name in ["References", "In-Reply-To"] {
                b = b.raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str(name),
                    root.clone(),
                ));
            }
        }
        let text = self.text.as_ref().map(|f| r.render(f, data)).transpose()?;
        let html = self.html.as_ref().map(|f| r.render(f, data)).transpose()?;
        // Quoted-printable UTF-8 parts, text first, as Alertmanager writes.
        let part = |ct: ContentType, body: String| {
            SinglePart::builder()
                .header(ct)
                .header(ContentTransferEncoding::QuotedPrintable)
                .body(body)
        };
        let msg = match (text, html) {
            (Some(t), Some(h)) => b.multipart(
                MultiPart::alternative()
                    .singlepart(part(ContentType::TEXT_PLAIN, t))
                    .singlepart(part(ContentType::TEXT_HTML, h)),
            ),
            (Some(t), None) => b.singlepart(part(ContentType::TEXT_PLAIN, t)),
            (None, Some(h)) => b.singlepart(part(ContentType::TEXT_HTML, h)),
            (None, None) => b.singlepart(part(ContentType::TEXT_PLAIN, String::new())),
        };
        msg.map_err(|e| bad("message", &e))
    }

    /// One delivery attempt.
    pub async fn send(&self, msg: &Message, deadline: Instant) -> Attempt {
        let left = deadline.saturating_duration_since(Instant::now());
        let limit = self.timeout.map_or(left, |t| t.min(left));
        let params = || {
            let name = self
                .server_name
                .clone()
                .unwrap_or_else(|| self.host.clone());
            let mut b = TlsParameters::builder(name).dangerous_accept_invalid_certs(self.insecure);
            if let Some(pem) = &self.ca_pem {
                b = b.add_root_certificate(Certificate::from_pem(pem)?);
            }
            b.build_rustls()
        };
        let tls = match self.tls {
            TlsMode::None => Tls::None,
            TlsMode::StartTls => match params() {
                Ok(p) => Tls::Required(p),
                Err(e) => return Attempt::Fail(SendError::Smtp(e.to_string())),
            },
            TlsMode::Implicit => match params() {
                Ok(p) => Tls::Wrapper(p),
                Err(e) => return Attempt::Fail(SendError::Smtp(e.to_string())),
            },
        };
        let mut tb = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.clone())
            .port(self.port)
            .tls(tls)
            .hello_name(ClientId::Domain(self.hello.clone()))
            .timeout(Some(limit));
        if let Some(c) = &self.credentials {
            tb = tb
                .credentials(c.clone())
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
        }
        let transport = tb.build();
        match tokio::time::timeout(limit, transport.send(msg.clone())).await {
            Err(_) => Attempt::Retry {
                error: SendError::Timeout(limit),
                after: None,
            },
            Ok(Ok(_)) => Attempt::Done,
            Ok(Err(e)) if e.is_permanent() => Attempt::Fail(SendError::Smtp(e.to_string())),
            Ok(Err(e)) => Attempt::Retry {
                error: SendError::Smtp(e.to_string()),
                after: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_header_names() {
        assert_eq!(canonical_header("message-id"), "Message-Id");
        assert_eq!(canonical_header("X-PRIORITY"), "X-Priority");
        assert_eq!(canonical_header("subject"), "Subject");
    }
}
