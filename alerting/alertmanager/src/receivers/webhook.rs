//! `webhook_configs`: Alertmanager's version-4 JSON payload (or a templated
//! custom `payload`), POSTed to a (templated) URL, newline-terminated as
//! Go's `json.Encoder` writes it.

use gotmpl::Value;

use super::config::{GlobalConfig, WebhookConfig};
use super::data::{View, data_json, view_data};
use super::http::{HttpClient, Request, read_file};
use super::templates::{Field, Renderer};
use super::{ReceiverError, SendError};

#[derive(Debug)]
pub struct Webhook {
    pub client: HttpClient,
    url: Field,
    max_alerts: u64,
    timeout: Option<std::time::Duration>,
    payload: Option<Payload>,
}

/// A custom payload with its strings parsed as templates.
#[derive(Debug)]
enum Payload {
    Text(Field),
    Literal(serde_json::Value),
    List(Vec<Payload>),
    Map(Vec<(Field, Payload)>),
}

impl Payload {
    fn parse(v: &serde_json::Value, r: &mut Renderer) -> Result<Payload, ReceiverError> {
        Ok(match v {
            serde_json::Value::String(s) => Payload::Text(r.text("payload", Some(s), "")?),
            serde_json::Value::Array(a) => Payload::List(
                a.iter()
                    .map(|v| Payload::parse(v, r))
                    .collect::<Result<_, _>>()?,
            ),
            serde_json::Value::Object(o) => Payload::Map(
                o.iter()
                    .map(|(k, v)| Ok((r.text("payload key", Some(k), "")?, Payload::parse(v, r)?)))
                    .collect::<Result<_, ReceiverError>>()?,
            ),
            other => Payload::Literal(other.clone()),
        })
    }

    fn render(&self, r: &Renderer, data: &Value) -> Result<serde_json::Value, SendError> {
        Ok(match self {
            Payload::Text(f) => r.render_structured(f, data)?,
            Payload::Literal(v) => v.clone(),
            Payload::List(l) => serde_json::Value::Array(
                l.iter()
                    .map(|p| p.render(r, data))
                    .collect::<Result<_, _>>()?,
            ),
            Payload::Map(m) => {
                let mut out = serde_json::Map::new();
                for (k, p) in m {
                    out.insert(r.render(k, data)?, p.render(r, data)?);
                }
                serde_json::Value::Object(out)
            }
        })
    }
}

impl Webhook {
    pub fn new(
        receiver: &str,
        c: &WebhookConfig,
        global: &GlobalConfig,
        r: &mut Renderer,
    ) -> Result<Webhook, ReceiverError> {
        let invalid = |message: &str| ReceiverError::Invalid {
            receiver: receiver.to_string(),
            integration: "webhook".to_string(),
            message: message.to_string(),
        };
        let url = match (&c.url, &c.url_file) {
            (Some(_), Some(_)) => return Err(invalid("at most one of url & url_file")),
            (Some(u), None) => u.clone(),
            (None, Some(f)) => read_file(receiver, f)?,
            (None, None) => return Err(invalid("one of url or url_file must be configured")),
        };
        Ok(Webhook {
            client: HttpClient::new(receiver, c.http_config.as_ref(), global)?,
            url: r.text("url", Some(&url), "")?,
            max_alerts: c.max_alerts,
            timeout: c.timeout.filter(|t| !t.is_zero()),
            payload: c
                .payload
                .as_ref()
                .map(|p| Payload::parse(p, r))
                .transpose()?,
        })
    }

    /// The request for `v`: alerts beyond `max_alerts` are cut and counted.
    pub fn request(&self, r: &Renderer, v: &View<'_>) -> Result<Request, SendError> {
        let (view, truncated) = match self.max_alerts {
            max if max > 0 && v.alerts.len() as u64 > max => {
                let keep = v.alerts[..max as usize].to_vec();
                (View::of(v.n, keep), v.alerts.len() as u64 - max)
            }
            _ => (v.clone(), 0),
        };
        let data: Value = view_data(&view);
        let url = r.render(&self.url, &data)?;
        if url.is_empty() {
            return Err(SendError::InvalidMessage(
                "webhook URL is empty after templating".into(),
            ));
        }
        let message = match &self.payload {
            Some(p) => p.render(r, &data)?,
            None => data_json(&view, truncated),
        };
        let mut body =
            serde_json::to_vec(&message).map_err(|e| SendError::InvalidMessage(e.to_string()))?;
        body.push(b'\n');
        Ok(Request {
            url,
            content_type: "application/json",
            body,
            timeout: self.timeout,
        })
    }
}
