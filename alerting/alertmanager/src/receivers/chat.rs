//! Chat integrations: Slack (incoming webhook, one attachment), Discord
//! (execute webhook, one embed), Microsoft Teams (legacy MessageCard and
//! Workflows Adaptive Card) and Telegram (`sendMessage`). Each renders one
//! message per group and keeps within the service's size limits,
//! truncating with `…`.

use std::time::Duration;

use gotmpl::Value;
use serde_json::json;

use super::config::{
    DiscordConfig, GlobalConfig, MsTeamsConfig, MsTeamsV2Config, SlackConfig, TelegramConfig,
};
use super::data::View;
use super::http::{Attempt, HttpClient, Request, Response, check_status, read_file, status_error};
use super::templates::{Field, Renderer};
use super::{ReceiverError, SendError};

/// Alertmanager's truncation marker.
pub const MARKER: &str = "…";

/// Truncates to `max` characters (runes), the last one being `…`.
pub fn truncate_runes(s: &str, max: usize) -> (String, bool) {
    match s.char_indices().nth(max) {
        None => (s.to_string(), false),
        Some(_) if max == 0 => (String::new(), true),
        Some(_) => {
            let cut = s.char_indices().nth(max - 1).map_or(s.len(), |(i, _)| i);
            (format!("{}{MARKER}", &s[..cut]), true)
        }
    }
}

/// Truncates to `max` bytes at a character boundary, ending in `…`.
pub fn truncate_bytes(s: &str, max: usize) -> (String, bool) {
    if s.len() <= max {
        return (s.to_string(), false);
    }
    if max < MARKER.len() {
        return (".".repeat(max), true);
    }
    let mut cut = max - MARKER.len();
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    (format!("{}{MARKER}", &s[..cut]), true)
}

fn url_of(
    receiver: &str,
    integration: &str,
    url: &Option<String>,
    file: &Option<String>,
    what: &str,
) -> Result<String, ReceiverError> {
    match (url, file) {
        (Some(_), Some(_)) => Err(ReceiverError::Invalid {
            receiver: receiver.to_string(),
            integration: integration.to_string(),
            message: format!("at most one of {what} & {what}_file must be configured"),
        }),
        (Some(u), None) => Ok(u.clone()),
        (None, Some(f)) => read_file(receiver, f),
        (None, None) => Err(ReceiverError::Missing {
            receiver: receiver.to_string(),
            integration: integration.to_string(),
            field: "webhook_url",
        }),
    }
}

fn json_request(url: &str, body: &serde_json::Value, timeout: Option<Duration>) -> Request {
    let mut bytes = body.to_string().into_bytes();
    bytes.push(b'\n');
    Request {
        url: url.to_string(),
        content_type: "application/json",
        body: bytes,
        timeout,
    }
}

/// Slack limits: attachment title 1024 runes (Alertmanager); text is
/// truncated by Slack at 40 000, we keep under it.
const SLACK_TITLE_RUNES: usize = 1024;
const SLACK_TEXT_RUNES: usize = 38_000;

#[derive(Debug)]
pub struct Slack {
    pub client: HttpClient,
    url: String,
    channel: Option<Field>,
    username: Field,
    icon_emoji: Field,
    icon_url: Field,
    color: Field,
    title: Field,
    title_link: Field,
    pretext: Field,
    text: Field,
    fallback: Field,
    callback_id: Field,
    footer: Field,
    image_url: Option<Field>,
    thumb_url: Option<Field>,
    fields: Vec<(Field, Field, bool)>,
    link_names: bool,
    mrkdwn_in: Vec<String>,
    timeout: Option<Duration>,
}

impl Slack {
    pub fn new(
        receiver: &str,
        c: &SlackConfig,
        g: &GlobalConfig,
        r: &mut Renderer,
    ) -> Result<Slack, ReceiverError> {
        let token = match (&c.app_token, &c.app_token_file) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(f)) => Some(read_file(receiver, f)?),
            (None, None) => match (&g.slack_app_token, &g.slack_app_token_file) {
                (Some(t), _) if c.api_url.is_none() && c.api_url_file.is_none() => Some(t.clone()),
                (None, Some(f)) if c.api_url.is_none() && c.api_url_file.is_none() => {
                    Some(read_file(receiver, f)?)
                }
                _ => None,
            },
        };
        let url = match (&token, &c.api_url, &c.api_url_file) {
            (Some(_), _, _) => Ok(c.app_url.clone().unwrap_or_else(|| g.slack_app_url.clone())),
            (None, None, None) => url_of(
                receiver,
                "slack",
                &g.slack_api_url,
                &g.slack_api_url_file,
                "api_url",
            ),
            (None, u, f) => url_of(receiver, "slack", u, f, "api_url"),
        }
        .map_err(|e| match e {
            ReceiverError::Missing {
                receiver,
                integration,
                ..
            } => ReceiverError::Missing {
                receiver,
                integration,
                field: "api_url (or global.slack_api_url, or app_token)",
            },
            e => e,
        })?;
        let mut client = HttpClient::new(receiver, c.http_config.as_ref(), g)?;
        if let Some(t) = &token {
            client = client.with_bearer(receiver, t)?;
        }
        let mut fields = Vec::new();
        for f in &c.fields {
            fields.push((
                r.text("field.title", Some(&f.title), "")?,
                r.text("field.value", Some(&f.value), "")?,
                f.short.unwrap_or(c.short_fields),
            ));
        }
        Ok(Slack {
            client,
            url,
            channel: r.optional("channel", c.channel.as_deref())?,
            username: r.text("username", c.username.as_deref(), "slack.default.username")?,
            icon_emoji: r.text(
                "icon_emoji",
                c.icon_emoji.as_deref(),
                "slack.default.iconemoji",
            )?,
            icon_url: r.text("icon_url", c.icon_url.as_deref(), "slack.default.iconurl")?,
            color: r.text("color", c.color.as_deref(), "slack.default.color")?,
            title: r.text("title", c.title.as_deref(), "slack.default.title")?,
            title_link: r.text(
                "title_link",
                c.title_link.as_deref(),
                "slack.default.titlelink",
            )?,
            pretext: r.text("pretext", c.pretext.as_deref(), "slack.default.pretext")?,
            text: r.text("text", c.text.as_deref(), "slack.default.text")?,
            fallback: r.text("fallback", c.fallback.as_deref(), "slack.default.fallback")?,
            callback_id: r.text(
                "callback_id",
                c.callback_id.as_deref(),
                "slack.default.callbackid",
            )?,
            footer: r.text("footer", c.footer.as_deref(), "slack.default.footer")?,
            image_url: r.optional("image_url", c.image_url.as_deref())?,
            thumb_url: r.optional("thumb_url", c.thumb_url.as_deref())?,
            fields,
            link_names: c.link_names,
            mrkdwn_in: c
                .mrkdwn_in
                .clone()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| vec!["fallback".into(), "pretext".into(), "text".into()]),
            timeout: c.timeout.filter(|t| !t.is_zero()),
        })
    }

    pub fn request(&self, r: &Renderer, data: &Value) -> Result<Request, SendError> {
        let t = |f: &Field| r.render(f, data);
        let opt = |f: &Option<Field>| f.as_ref().map(|f| r.render(f, data)).transpose();
        let (title, _) = truncate_runes(&t(&self.title)?, SLACK_TITLE_RUNES);
        let (text, _) = truncate_runes(&t(&self.text)?, SLACK_TEXT_RUNES);
        let mut att = serde_json::Map::new();
        let mut put = |k: &str, v: String, omit_empty: bool| {
            if !(omit_empty && v.is_empty()) {
                att.insert(k.to_string(), json!(v));
            }
        };
        put("title", title, true);
        put("title_link", t(&self.title_link)?, true);
        put("pretext", t(&self.pretext)?, true);
        put("text", text, false);
        put("fallback", t(&self.fallback)?, false);
        put("callback_id", t(&self.callback_id)?, false);
        put("image_url", opt(&self.image_url)?.unwrap_or_default(), true);
        put("thumb_url", opt(&self.thumb_url)?.unwrap_or_default(), true);
        put("footer", t(&self.footer)?, false);
        put("color", t(&self.color)?, true);
        if !self.fields.is_empty() {
            let mut fields = Vec::new();
            for (title, value, short) in &self.fields {
                fields.push(json!({"title": t(title)?, "value": t(value)?, "short": short}));
            }
            att.insert("fields".into(), json!(fields));
        }
        att.insert("mrkdwn_in".into(), json!(self.mrkdwn_in));

        let mut body = serde_json::Map::new();
        for (k, v) in [
            ("channel", opt(&self.channel)?.unwrap_or_default()),
            ("username", t(&self.username)?),
            ("icon_emoji", t(&self.icon_emoji)?),
            ("icon_url", t(&self.icon_url)?),
        ] {
            if !v.is_empty() {
                body.insert(k.into(), json!(v));
            }
        }
        if self.link_names {
            body.insert("link_names".into(), json!(true));
        }
        body.insert("attachments".into(), json!([att]));
        Ok(json_request(
            &self.url,
            &serde_json::Value::Object(body),
            self.timeout,
        ))
    }

    /// Success is 2xx with the text body `ok` (incoming webhooks) or a JSON
    /// `{"ok": true}` (Web API).
    pub fn check(r: &Response) -> Attempt {
        match check_status(r) {
            Attempt::Done => {}
            other => return other,
        }
        let is_json = r
            .headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if is_json {
            match serde_json::from_str::<serde_json::Value>(&r.body) {
                Ok(v) if v["ok"] == json!(true) => Attempt::Done,
                Ok(v) => Attempt::Fail(SendError::Response(format!(
                    "error response from Slack: {}",
                    v["error"].as_str().unwrap_or("")
                ))),
                Err(_) => Attempt::Retry {
                    error: SendError::Response(format!(
                        "could not parse Slack response {:?}",
                        r.body
                    )),
                    after: None,
                },
            }
        } else if r.body == "ok" {
            Attempt::Done
        } else {
            Attempt::Fail(SendError::Response(format!(
                "received an error response from Slack: {}",
                r.body
            )))
        }
    }
}

const DISCORD_TITLE_RUNES: usize = 256;
const DISCORD_DESCRIPTION_RUNES: usize = 4096;
const DISCORD_CONTENT_RUNES: usize = 2000;

#[derive(Debug)]
pub struct Discord {
    pub client: HttpClient,
    url: String,
    title: Field,
    message: Field,
    content: Field,
    username: Option<String>,
    avatar_url: Option<String>,
    timeout: Option<Duration>,
}

impl Discord {
    pub fn new(
        receiver: &str,
        c: &DiscordConfig,
        g: &GlobalConfig,
        r: &mut Renderer,
    ) -> Result<Discord, ReceiverError> {
        Ok(Discord {
            client: HttpClient::new(receiver, c.http_config.as_ref(), g)?,
            url: url_of(
                receiver,
                "discord",
                &c.webhook_url,
                &c.webhook_url_file,
                "webhook_url",
            )?,
            title: r.text("title", c.title.as_deref(), "discord.default.title")?,
            message: r.text("message", c.message.as_deref(), "discord.default.message")?,
            content: r.text("content", c.content.as_deref(), "discord.default.content")?,
            username: c.username.clone().filter(|u| !u.is_empty()),
            avatar_url: c.avatar_url.clone().filter(|u| !u.is_empty()),
            timeout: c.timeout.filter(|t| !t.is_zero()),
        })
    }

    pub fn request(&self, r: &Renderer, v: &View<'_>, data: &Value) -> Result<Request, SendError> {
        let (title, _) = truncate_runes(&r.render(&self.title, data)?, DISCORD_TITLE_RUNES);
        let (description, _) =
            truncate_runes(&r.render(&self.message, data)?, DISCORD_DESCRIPTION_RUNES);
        let (content, _) = truncate_runes(&r.render(&self.content, data)?, DISCORD_CONTENT_RUNES);
        let color = if v.status() == "firing" {
            0x992D22
        } else {
            0x2ECC71
        };
        let mut body = json!({
            "content": content,
            "embeds": [{"title": title, "description": description, "color": color}],
        });
        if let Some(u) = &self.username {
            body["username"] = json!(u);
        }
        if let Some(u) = &self.avatar_url {
            body["avatar_url"] = json!(u);
        }
        Ok(json_request(&self.url, &body, self.timeout))
    }

    /// Discord's 429 carries `retry_after` (seconds, fractional) in JSON.
    pub fn check(r: &Response) -> Attempt {
        match check_status(r) {
            Attempt::Retry { error, after: None } if r.status == 429 => {
                let after = serde_json::from_str::<serde_json::Value>(&r.body)
                    .ok()
                    .and_then(|v| v["retry_after"].as_f64())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(|s| Duration::from_secs_f64(s.min(3600.0)));
                Attempt::Retry { error, after }
            }
            other => other,
        }
    }
}

/// Teams messages must stay under about 28 KB.
const TEAMS_MAX_BYTES: usize = 27_000;

#[derive(Debug)]
pub struct MsTeams {
    pub client: HttpClient,
    url: String,
    title: Field,
    summary: Option<Field>,
    text: Field,
    v2: bool,
    timeout: Option<Duration>,
}

impl MsTeams {
    pub fn new(
        receiver: &str,
        c: &MsTeamsConfig,
        g: &GlobalConfig,
        r: &mut Renderer,
    ) -> Result<MsTeams, ReceiverError> {
        Ok(MsTeams {
            client: HttpClient::new(receiver, c.http_config.as_ref(), g)?,
            url: url_of(
                receiver,
                "msteams",
                &c.webhook_url,
                &c.webhook_url_file,
                "webhook_url",
            )?,
            title: r.text("title", c.title.as_deref(), "msteams.default.title")?,
            summary: Some(r.text("summary", c.summary.as_deref(), "msteams.default.summary")?),
            text: r.text("text", c.text.as_deref(), "msteams.default.text")?,
            v2: false,
            timeout: c.timeout.filter(|t| !t.is_zero()),
        })
    }

    pub fn new_v2(
        receiver: &str,
        c: &MsTeamsV2Config,
        g: &GlobalConfig,
        r: &mut Renderer,
    ) -> Result<MsTeams, ReceiverError> {
        Ok(MsTeams {
            client: HttpClient::new(receiver, c.http_config.as_ref(), g)?,
            url: url_of(
                receiver,
                "msteamsv2",
                &c.webhook_url,
                &c.webhook_url_file,
                "webhook_url",
            )?,
            title: r.text("title", c.title.as_deref(), "msteamsv2.default.title")?,
            summary: None,
            text: r.text("text", c.text.as_deref(), "msteamsv2.default.text")?,
            v2: true,
            timeout: c.timeout.filter(|t| !t.is_zero()),
        })
    }

    pub fn request(&self, r: &Renderer, v: &View<'_>, data: &Value) -> Result<Request, SendError> {
        let (title, _) = truncate_bytes(&r.render(&self.title, data)?, 1024);
        let (text, _) = truncate_bytes(&r.render(&self.text, data)?, TEAMS_MAX_BYTES - title.len());
        let firing = v.status() == "firing";
        let body = if self.v2 {
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.2",
                        "body": [
                            {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium",
                             "wrap": true, "style": "heading",
                             "color": if firing { "Attention" } else { "Good" }},
                            {"type": "TextBlock", "text": text, "wrap": true},
                        ],
                        "msteams": {"width": "full"},
                    },
                }],
            })
        } else {
            let summary = match &self.summary {
                Some(f) => truncate_bytes(&r.render(f, data)?, 1024).0,
                None => String::new(),
            };
            json!({
                "@context": "http://schema.org/extensions",
                "type": "MessageCard",
                "title": title,
                "summary": summary,
                "text": text,
                "themeColor": if firing { "8C1A1A" } else { "2DC72D" },
            })
        };
        Ok(json_request(&self.url, &body, self.timeout))
    }

    /// Legacy connectors may answer 200 with an error text that reports
    /// Teams' own throttling; that is retried.
    pub fn check(r: &Response) -> Attempt {
        match check_status(r) {
            Attempt::Done if r.body.contains("HTTP error 429") => Attempt::Retry {
                error: SendError::Response(r.body.chars().take(512).collect()),
                after: None,
            },
            other => other,
        }
    }
}

const TELEGRAM_MAX_RUNES: usize = 4096;
const TELEGRAM_TOO_LONG: &str =
    "Alertmanager notification could not be sent: message length exceeds Telegram limits.";

#[derive(Debug)]
pub struct Telegram {
    pub client: HttpClient,
    url: String,
    chat_id: i64,
    thread_id: Option<i64>,
    message: Field,
    parse_mode: String,
    disable_notifications: bool,
    timeout: Option<Duration>,
}

impl Telegram {
    pub fn new(
        receiver: &str,
        c: &TelegramConfig,
        g: &GlobalConfig,
        r: &mut Renderer,
    ) -> Result<Telegram, ReceiverError> {
        let invalid = |message: &str| ReceiverError::Invalid {
            receiver: receiver.to_string(),
            integration: "telegram".to_string(),
            message: message.to_string(),
        };
        let token = match (&c.bot_token, &c.bot_token_file) {
            (Some(_), Some(_)) => return Err(invalid("at most one of bot_token & bot_token_file")),
            (Some(t), None) => t.clone(),
            (None, Some(f)) => read_file(receiver, f)?,
            (None, None) => match (&g.telegram_bot_token, &g.telegram_bot_token_file) {
                (Some(t), _) => t.clone(),
                (None, Some(f)) => read_file(receiver, f)?,
                (None, None) => return Err(invalid("missing bot_token")),
            },
        };
        let chat_id = match (c.chat_id, &c.chat_id_file) {
            (0, None) => return Err(invalid("missing chat_id or chat_id_file")),
            (0, Some(f)) => read_file(receiver, f)?
                .parse()
                .map_err(|_| invalid("chat_id_file does not hold an integer"))?,
            (id, None) => id,
            (_, Some(_)) => return Err(invalid("at most one of chat_id & chat_id_file")),
        };
        let parse_mode = c.parse_mode.clone().unwrap_or_else(|| "HTML".to_string());
        if !["", "HTML", "Markdown", "MarkdownV2"].contains(&parse_mode.as_str()) {
            return Err(invalid(
                "parse_mode must be Markdown, MarkdownV2, HTML or empty",
            ));
        }
        let api = c.api_url.as_deref().unwrap_or(&g.telegram_api_url);
        let message = if parse_mode == "HTML" {
            r.html("message", c.message.as_deref(), "telegram.default.message")?
        } else {
            r.text("message", c.message.as_deref(), "telegram.default.text")?
        };
        Ok(Telegram {
            client: HttpClient::new(receiver, c.http_config.as_ref(), g)?,
            url: format!("{}/bot{token}/sendMessage", api.trim_end_matches('/')),
            chat_id,
            thread_id: c.message_thread_id.filter(|t| *t != 0),
            message,
            parse_mode,
            disable_notifications: c.disable_notifications,
            timeout: c.timeout.filter(|t| !t.is_zero()),
        })
    }

    pub fn request(&self, r: &Renderer, data: &Value) -> Result<Request, SendError> {
        let text = r.render(&self.message, data)?;
        let text = if self.parse_mode == "HTML" {
            truncate_html_lines(&text, TELEGRAM_MAX_RUNES)
        } else {
            truncate_runes(&text, TELEGRAM_MAX_RUNES).0
        };
        let mut body = json!({
            "chat_id": self.chat_id,
            "text": text,
            "disable_notification": self.disable_notifications,
            "link_preview_options": {"is_disabled": true},
        });
        if !self.parse_mode.is_empty() {
            body["parse_mode"] = json!(self.parse_mode);
        }
        if let Some(t) = self.thread_id {
            body["message_thread_id"] = json!(t);
        }
        Ok(json_request(&self.url, &body, self.timeout))
    }

    /// Telegram answers JSON; a 429 names `parameters.retry_after`.
    pub fn check(r: &Response) -> Attempt {
        let v: Option<serde_json::Value> = serde_json::from_str(&r.body).ok();
        let describe = || {
            v.as_ref()
                .and_then(|v| v["description"].as_str())
                .map_or_else(
                    || status_error(r),
                    |d| SendError::Status {
                        status: r.status,
                        body: d.to_string(),
                    },
                )
        };
        match check_status(r) {
            Attempt::Done => match &v {
                Some(v) if v["ok"] == json!(false) => Attempt::Fail(describe()),
                _ => Attempt::Done,
            },
            Attempt::Retry { after, .. } => {
                let after = after.or_else(|| {
                    v.as_ref()
                        .and_then(|v| v["parameters"]["retry_after"].as_u64())
                        .map(|s| Duration::from_secs(s.min(3600)))
                });
                Attempt::Retry {
                    error: describe(),
                    after,
                }
            }
            Attempt::Fail(_) => Attempt::Fail(describe()),
        }
    }
}

/// Fits an HTML message into `max` characters: whole lines are dropped
/// from the end and `…` appended, as long as every tag opened is closed;
/// otherwise Alertmanager's fixed "message length exceeds" text.
pub fn truncate_html_lines(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let budget = max - 1;
    let mut out = String::new();
    let mut used = 0;
    for line in s.split_inclusive('\n') {
        let n = line.chars().count();
        if used + n > budget {
            break;
        }
        out.push_str(line);
        used += n;
    }
    if out.is_empty() || !tags_balanced(&out) {
        return TELEGRAM_TOO_LONG.to_string();
    }
    out.push_str(MARKER);
    out
}

fn tags_balanced(s: &str) -> bool {
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else {
            return false;
        };
        let tag = &rest[start + 1..start + len];
        rest = &rest[start + len + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            if stack.pop() != Some(name.trim()) {
                return false;
            }
        } else {
            let name = tag.split_whitespace().next().unwrap_or("");
            stack.push(name);
        }
    }
    stack.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rune_truncation() {
        assert_eq!(truncate_runes("abc", 3), ("abc".to_string(), false));
        assert_eq!(truncate_runes("abcd", 3), ("ab…".to_string(), true));
        assert_eq!(truncate_runes("ééééé", 2), ("é…".to_string(), true));
        assert_eq!(truncate_runes("abc", 0), (String::new(), true));
    }

    #[test]
    fn byte_truncation() {
        assert_eq!(truncate_bytes("abc", 3), ("abc".to_string(), false));
        assert_eq!(truncate_bytes("abcdef", 5), ("ab…".to_string(), true));
        // Never cuts inside a character.
        let (s, t) = truncate_bytes("aé€x", 6);
        assert!(t);
        assert!(s.len() <= 6, "{s}");
        assert_eq!(s, "aé…");
        assert_eq!(truncate_bytes("abcdef", 2), ("..".to_string(), true));
    }

    #[test]
    fn telegram_html_truncation_keeps_tags_closed() {
        let mut s = String::from("<b>title</b>\n");
        for i in 0..1000 {
            s.push_str(&format!("• <b>host-{i}</b>: down\n"));
        }
        let t = truncate_html_lines(&s, 4096);
        assert!(t.chars().count() <= 4096);
        assert!(t.ends_with('…'));
        assert!(tags_balanced(&t[..t.len() - MARKER.len()]));
        // One unbalanced huge line falls back to the fixed text.
        let long = format!("<b>{}", "x".repeat(5000));
        assert_eq!(truncate_html_lines(&long, 4096), TELEGRAM_TOO_LONG);
    }
}
