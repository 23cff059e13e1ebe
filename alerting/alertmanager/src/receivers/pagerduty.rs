//! `pagerduty_configs`: Events API v2 (`routing_key`) or the legacy v1
//! generic API (`service_key`). One event per group: `trigger` while any
//! alert fires, `resolve` once all are resolved; the dedup key is the
//! lowercase hex SHA-256 of the group key, as in Alertmanager.

use std::time::Duration;

use gotmpl::Value;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::chat::truncate_runes;
use super::config::{GlobalConfig, PagerdutyConfig};
use super::data::{View, alerts_json};
use super::http::{HttpClient, Request, read_file};
use super::templates::{Field, Renderer};
use super::{ReceiverError, SendError};

/// Events larger than this lose their custom details (Alertmanager).
pub const MAX_EVENT_BYTES: usize = 512_000;
const SUMMARY_RUNES: usize = 1024;
const V1_URL: &str = "https://events.pagerduty.com/generic/2010-04-15/create_event.json";

#[derive(Debug)]
enum Key {
    Routing(Field),
    Service(Field),
}

#[derive(Debug)]
pub struct Pagerduty {
    pub client: HttpClient,
    url: String,
    key: Key,
    description: Field,
    client_name: Field,
    client_url: Field,
    source: Field,
    severity: Field,
    class: Option<Field>,
    component: Option<Field>,
    group: Option<Field>,
    details: Vec<(String, Field)>,
    images: Vec<(Field, Option<Field>, Option<Field>)>,
    links: Vec<(Field, Option<Field>)>,
    timeout: Option<Duration>,
}

/// `sha256(group key)` in lowercase hex.
pub fn dedup_key(group_key: &str) -> String {
    let digest = Sha256::digest(group_key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Pagerduty {
    pub fn new(
        receiver: &str,
        c: &PagerdutyConfig,
        g: &GlobalConfig,
        r: &mut Renderer,
    ) -> Result<Pagerduty, ReceiverError> {
        let invalid = |message: &str| ReceiverError::Invalid {
            receiver: receiver.to_string(),
            integration: "pagerduty".to_string(),
            message: message.to_string(),
        };
        let secret =
            |inline: &Option<String>, file: &Option<String>, what: &str| match (inline, file) {
                (Some(_), Some(_)) => Err(invalid(&format!("at most one of {what} & {what}_file"))),
                (Some(k), None) => Ok(Some(k.clone())),
                (None, Some(f)) => read_file(receiver, f).map(Some),
                (None, None) => Ok(None),
            };
        let routing = secret(&c.routing_key, &c.routing_key_file, "routing_key")?;
        let service = secret(&c.service_key, &c.service_key_file, "service_key")?;
        let (key, url) = match (routing, service) {
            (Some(k), _) => (
                Key::Routing(r.text("routing_key", Some(&k), "")?),
                c.url.clone().unwrap_or_else(|| g.pagerduty_url.clone()),
            ),
            (None, Some(k)) => (
                Key::Service(r.text("service_key", Some(&k), "")?),
                c.url.clone().unwrap_or_else(|| V1_URL.to_string()),
            ),
            (None, None) => return Err(invalid("missing service or routing key")),
        };
        let client_name = r.text("client", c.client.as_deref(), "pagerduty.default.client")?;
        let source = match &c.source {
            Some(s) => r.text("source", Some(s), "")?,
            None => r.text("source", c.client.as_deref(), "pagerduty.default.client")?,
        };
        let mut details = Vec::new();
        for (k, v) in &c.details {
            details.push((k.clone(), r.text("details", Some(v), "")?));
        }
        let mut images = Vec::new();
        for i in &c.images {
            images.push((
                r.text("image.src", Some(&i.src), "")?,
                r.optional("image.alt", i.alt.as_deref())?,
                r.optional("image.href", i.href.as_deref())?,
            ));
        }
        let mut links = Vec::new();
        for l in &c.links {
            links.push((
                r.text("link.href", Some(&l.href), "")?,
                r.optional("link.text", l.text.as_deref())?,
            ));
        }
        Ok(Pagerduty {
            client: HttpClient::new(receiver, c.http_config.as_ref(), g)?,
            url,
            key,
            description: r.text(
                "description",
                c.description.as_deref(),
                "pagerduty.default.description",
            )?,
            client_name,
            client_url: r.text(
                "client_url",
                c.client_url.as_deref(),
                "pagerduty.default.clientURL",
            )?,
            source,
            severity: r.text(
                "severity",
                Some(c.severity.as_deref().unwrap_or("error")),
                "",
            )?,
            class: r.optional("class", c.class.as_deref())?,
            component: r.optional("component", c.component.as_deref())?,
            group: r.optional("group", c.group.as_deref())?,
            details,
            images,
            links,
            timeout: c.timeout.filter(|t| !t.is_zero()),
        })
    }

    /// `firing`/`resolved` (alert lists) and `num_firing`/`num_resolved`,
    /// as Alertmanager's default details render once read back as YAML,
    /// plus the configured ones (rendered the same way).
    fn details(
        &self,
        r: &Renderer,
        v: &View<'_>,
        data: &Value,
    ) -> Result<serde_json::Map<String, serde_json::Value>, SendError> {
        let now = v.n.now;
        let mut d = serde_json::Map::new();
        d.insert("firing".into(), alerts_json(v.firing(), now));
        d.insert("resolved".into(), alerts_json(v.resolved(), now));
        d.insert("num_firing".into(), json!(v.firing().count()));
        d.insert("num_resolved".into(), json!(v.resolved().count()));
        for (k, f) in &self.details {
            d.insert(k.clone(), r.render_structured(f, data)?);
        }
        Ok(d)
    }

    pub fn request(&self, r: &Renderer, v: &View<'_>, data: &Value) -> Result<Request, SendError> {
        let t = |f: &Field| r.render(f, data);
        let opt = |f: &Option<Field>| f.as_ref().map(|f| r.render(f, data)).transpose();
        let resolve = v.status() == "resolved";
        let (description, _) = truncate_runes(&t(&self.description)?, SUMMARY_RUNES);
        let details = self.details(r, v, data)?;
        let dedup = dedup_key(&v.n.group_key);
        let mut msg = match &self.key {
            Key::Routing(k) => {
                let key = t(k)?;
                if key.is_empty() {
                    return Err(SendError::InvalidMessage(
                        "routing key cannot be empty".into(),
                    ));
                }
                let mut payload = json!({
                    "summary": description,
                    "source": t(&self.source)?,
                    "severity": t(&self.severity)?,
                    "custom_details": details,
                });
                for (name, f) in [
                    ("class", &self.class),
                    ("component", &self.component),
                    ("group", &self.group),
                ] {
                    if let Some(s) = opt(f)?.filter(|s| !s.is_empty()) {
                        payload[name] = json!(s);
                    }
                }
                let mut images = Vec::new();
                for (src, alt, href) in &self.images {
                    let src = t(src)?;
                    if !src.is_empty() {
                        images.push(json!({"src": src, "alt": opt(alt)?.unwrap_or_default(), "href": opt(href)?.unwrap_or_default()}));
                    }
                }
                let mut links = Vec::new();
                for (href, text) in &self.links {
                    let href = t(href)?;
                    if !href.is_empty() {
                        links.push(json!({"href": href, "text": opt(text)?.unwrap_or_default()}));
                    }
                }
                let mut m = json!({
                    "routing_key": key,
                    "dedup_key": dedup,
                    "event_action": if resolve { "resolve" } else { "trigger" },
                    "payload": payload,
                    "client": t(&self.client_name)?,
                    "client_url": t(&self.client_url)?,
                });
                if !images.is_empty() {
                    m["images"] = json!(images);
                }
                if !links.is_empty() {
                    m["links"] = json!(links);
                }
                m
            }
            Key::Service(k) => {
                let key = t(k)?;
                if key.is_empty() {
                    return Err(SendError::InvalidMessage(
                        "service key cannot be empty".into(),
                    ));
                }
                let mut m = json!({
                    "service_key": key,
                    "incident_key": dedup,
                    "event_type": if resolve { "resolve" } else { "trigger" },
                    "description": description,
                    "details": details,
                });
                if !resolve {
                    m["client"] = json!(t(&self.client_name)?);
                    m["client_url"] = json!(t(&self.client_url)?);
                }
                m
            }
        };
        let mut body = msg.to_string();
        if body.len() > MAX_EVENT_BYTES {
            let note = json!({"error": format!(
                "Custom details have been removed because the original event exceeds the maximum size of {MAX_EVENT_BYTES} bytes")});
            match &self.key {
                Key::Routing(_) => msg["payload"]["custom_details"] = note,
                Key::Service(_) => msg["details"] = note,
            }
            body = msg.to_string();
        }
        let mut bytes = body.into_bytes();
        bytes.push(b'\n');
        Ok(Request {
            url: self.url.clone(),
            content_type: "application/json",
            body: bytes,
            timeout: self.timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_key_is_sha256_hex() {
        assert_eq!(
            dedup_key(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(dedup_key("{}:{alertname=\"X\"}").len(), 64);
    }
}
