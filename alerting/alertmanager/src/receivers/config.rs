//! The `receivers:` entries of an Alertmanager configuration and the
//! receiver-related fields of its `global:` section, as Alertmanager spells
//! them (`config/notifiers.go`, `notify/*/config.go`).
//!
//! Secrets are plain strings here; `*_file` variants are read when the
//! receiver is built. Every integration's `send_resolved` is an `Option`:
//! `None` takes Alertmanager's per-integration default
//! (see [`crate::receivers::Receiver`]).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// One entry of `receivers:`. Unknown keys (including integrations Silt
/// does not implement, such as `opsgenie_configs`) are rejected.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    pub name: String,
    #[serde(default)]
    pub webhook_configs: Vec<WebhookConfig>,
    #[serde(default)]
    pub slack_configs: Vec<SlackConfig>,
    #[serde(default)]
    pub discord_configs: Vec<DiscordConfig>,
    #[serde(default)]
    pub msteams_configs: Vec<MsTeamsConfig>,
    #[serde(default)]
    pub msteamsv2_configs: Vec<MsTeamsV2Config>,
    #[serde(default)]
    pub telegram_configs: Vec<TelegramConfig>,
    #[serde(default)]
    pub pagerduty_configs: Vec<PagerdutyConfig>,
    #[serde(default)]
    pub email_configs: Vec<EmailConfig>,
    /// Silt extension: a token bucket shared by all of this receiver's
    /// integrations; each notification takes one token (and waits for one,
    /// up to the notification deadline). Absent: no limit.
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
    /// Silt extension: how long one notification (all its retries) may
    /// take when the caller gives no deadline. Default 5m.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub notify_deadline: Option<Duration>,
}

/// `rate_limit:` of a receiver: `burst` notifications at once, refilled at
/// `per_second` notifications per second.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub per_second: f64,
    #[serde(default = "one")]
    pub burst: u32,
}

fn one() -> u32 {
    1
}

/// The receiver-related fields of Alertmanager's `global:` section. Meant
/// to be embedded with `#[serde(flatten)]`, so unknown keys are ignored
/// here.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct GlobalConfig {
    pub http_config: Option<HttpConfig>,
    pub smtp_from: Option<String>,
    pub smtp_hello: Option<String>,
    pub smtp_smarthost: Option<String>,
    pub smtp_auth_username: Option<String>,
    pub smtp_auth_password: Option<String>,
    pub smtp_auth_password_file: Option<String>,
    pub smtp_auth_secret: Option<String>,
    pub smtp_auth_identity: Option<String>,
    /// Default true, as in Alertmanager.
    pub smtp_require_tls: bool,
    pub smtp_force_implicit_tls: Option<bool>,
    pub slack_api_url: Option<String>,
    pub slack_api_url_file: Option<String>,
    pub slack_app_token: Option<String>,
    pub slack_app_token_file: Option<String>,
    /// Default `https://slack.com/api/chat.postMessage`.
    pub slack_app_url: String,
    /// Default `https://events.pagerduty.com/v2/enqueue`.
    pub pagerduty_url: String,
    /// Default `https://api.telegram.org`.
    pub telegram_api_url: String,
    pub telegram_bot_token: Option<String>,
    pub telegram_bot_token_file: Option<String>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            http_config: None,
            smtp_from: None,
            smtp_hello: None,
            smtp_smarthost: None,
            smtp_auth_username: None,
            smtp_auth_password: None,
            smtp_auth_password_file: None,
            smtp_auth_secret: None,
            smtp_auth_identity: None,
            smtp_require_tls: true,
            smtp_force_implicit_tls: None,
            slack_api_url: None,
            slack_api_url_file: None,
            slack_app_token: None,
            slack_app_token_file: None,
            slack_app_url: "https://slack.com/api/chat.postMessage".to_string(),
            pagerduty_url: "https://events.pagerduty.com/v2/enqueue".to_string(),
            telegram_api_url: "https://api.telegram.org".to_string(),
            telegram_bot_token: None,
            telegram_bot_token_file: None,
        }
    }
}

/// The supported subset of Prometheus's `http_config`. Requests use
/// HTTP/1.1 (`enable_http2` is accepted and ignored).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<String>,
    pub proxy_url: Option<String>,
    pub tls_config: Option<TlsConfig>,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: Option<String>,
    pub password_file: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// Default `Bearer`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub credentials: Option<String>,
    pub credentials_file: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// PEM file with extra CA certificates.
    pub ca_file: Option<String>,
    /// SNI / verified name; email only.
    pub server_name: Option<String>,
}

/// `webhook_configs` entry (send_resolved default true).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfig>,
    pub url: Option<String>,
    pub url_file: Option<String>,
    /// 0 = all alerts.
    #[serde(default)]
    pub max_alerts: u64,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
    /// A custom body replacing the version-4 message: every string (keys
    /// included) is a template over the message data, and a rendered
    /// string that reads as structured YAML becomes that structure.
    pub payload: Option<serde_json::Value>,
}

/// `slack_configs` entry (send_resolved default false). Templated string
/// fields default to Alertmanager's `slack.default.*` templates.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfig>,
    pub api_url: Option<String>,
    pub api_url_file: Option<String>,
    /// Bot token for Slack's Web API (`chat.postMessage`), sent as
    /// `Authorization: Bearer`; then `app_url` (default
    /// `global.slack_app_url`) is used instead of `api_url`.
    pub app_token: Option<String>,
    pub app_token_file: Option<String>,
    pub app_url: Option<String>,
    pub channel: Option<String>,
    pub username: Option<String>,
    pub color: Option<String>,
    pub title: Option<String>,
    pub title_link: Option<String>,
    pub pretext: Option<String>,
    pub text: Option<String>,
    #[serde(default)]
    pub fields: Vec<SlackField>,
    #[serde(default)]
    pub short_fields: bool,
    pub footer: Option<String>,
    pub fallback: Option<String>,
    pub callback_id: Option<String>,
    pub icon_emoji: Option<String>,
    pub icon_url: Option<String>,
    pub image_url: Option<String>,
    pub thumb_url: Option<String>,
    #[serde(default)]
    pub link_names: bool,
    pub mrkdwn_in: Option<Vec<String>>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlackField {
    pub title: String,
    pub value: String,
    pub short: Option<bool>,
}

/// `discord_configs` entry (send_resolved default true).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfig>,
    pub webhook_url: Option<String>,
    pub webhook_url_file: Option<String>,
    pub content: Option<String>,
    pub title: Option<String>,
    pub message: Option<String>,
    pub username: Option<String>,
    pub avatar_url: Option<String>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
}

/// `msteams_configs` entry: legacy Office 365 connector, MessageCard
/// payload (send_resolved default true).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MsTeamsConfig {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfig>,
    pub webhook_url: Option<String>,
    pub webhook_url_file: Option<String>,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub text: Option<String>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
}

/// `msteamsv2_configs` entry: Workflows webhook, Adaptive Card payload
/// (send_resolved default true).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MsTeamsV2Config {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfig>,
    pub webhook_url: Option<String>,
    pub webhook_url_file: Option<String>,
    pub title: Option<String>,
    pub text: Option<String>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
}

/// `telegram_configs` entry (send_resolved default true).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfig>,
    pub api_url: Option<String>,
    pub bot_token: Option<String>,
    pub bot_token_file: Option<String>,
    #[serde(default)]
    pub chat_id: i64,
    pub chat_id_file: Option<String>,
    pub message_thread_id: Option<i64>,
    pub message: Option<String>,
    #[serde(default)]
    pub disable_notifications: bool,
    /// `HTML` (default), `Markdown`, `MarkdownV2` or "" (plain).
    pub parse_mode: Option<String>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
}

/// `pagerduty_configs` entry, Events API v2 with `routing_key` or legacy v1
/// with `service_key` (send_resolved default true).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyConfig {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfig>,
    pub routing_key: Option<String>,
    pub routing_key_file: Option<String>,
    pub service_key: Option<String>,
    pub service_key_file: Option<String>,
    pub url: Option<String>,
    pub client: Option<String>,
    pub client_url: Option<String>,
    pub description: Option<String>,
    /// Templated values; Alertmanager's `firing`, `resolved`, `num_firing`,
    /// `num_resolved` are added unless given.
    #[serde(default)]
    pub details: BTreeMap<String, String>,
    #[serde(default)]
    pub images: Vec<PagerdutyImage>,
    #[serde(default)]
    pub links: Vec<PagerdutyLink>,
    pub source: Option<String>,
    pub severity: Option<String>,
    pub class: Option<String>,
    pub component: Option<String>,
    pub group: Option<String>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyImage {
    pub src: String,
    pub alt: Option<String>,
    pub href: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyLink {
    pub href: String,
    pub text: Option<String>,
}

/// `email_configs` entry (send_resolved default false); unset SMTP fields
/// come from `global.smtp_*`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub send_resolved: Option<bool>,
    pub to: Option<String>,
    pub from: Option<String>,
    pub hello: Option<String>,
    pub smarthost: Option<String>,
    pub auth_username: Option<String>,
    pub auth_password: Option<String>,
    pub auth_password_file: Option<String>,
    pub auth_secret: Option<String>,
    pub auth_identity: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub html: Option<String>,
    pub text: Option<String>,
    pub require_tls: Option<bool>,
    pub force_implicit_tls: Option<bool>,
    pub tls_config: Option<TlsConfig>,
    #[serde(default)]
    pub threading: ThreadingConfig,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
}

/// Email threading: every notification of a group carries the same
/// `References`/`In-Reply-To` root, per day (`daily`, default) or forever
/// (`none`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ThreadingConfig {
    #[serde(default)]
    pub enabled: bool,
    pub thread_by_date: Option<String>,
}

/// Parses a Prometheus duration: `[0-9]+(ms|s|m|h|d|w|y)` units in
/// decreasing order, e.g. `1h30m`, `500ms`, `0s`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let units: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last_unit = usize::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        // "ms" must be tried before "m".
        let idx = if rest.starts_with("ms") {
            6
        } else {
            units[..6].iter().position(|(u, _)| rest.starts_with(u))?
        };
        if last_unit != usize::MAX && idx <= last_unit {
            return None;
        }
        last_unit = idx;
        rest = &rest[units[idx].0.len()..];
        total = total.checked_add(n.checked_mul(units[idx].1)?)?;
    }
    Some(Duration::from_millis(total))
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    match s {
        None => Ok(None),
        Some(s) => parse_duration(&s)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid duration {s:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration("1m1h"), None);
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("x"), None);
    }

    #[test]
    fn receiver_yaml() {
        let cfg: ReceiverConfig = serde_yaml::from_str(
            "name: team\nwebhook_configs:\n- url: http://x/\n  max_alerts: 3\n  timeout: 10s\nslack_configs:\n- api_url: http://s/\n  send_resolved: true\nrate_limit: {per_second: 0.5, burst: 2}\n",
        )
        .unwrap();
        assert_eq!(cfg.name, "team");
        assert_eq!(cfg.webhook_configs[0].max_alerts, 3);
        assert_eq!(
            cfg.webhook_configs[0].timeout,
            Some(Duration::from_secs(10))
        );
        assert_eq!(cfg.slack_configs[0].send_resolved, Some(true));
        assert_eq!(cfg.rate_limit.unwrap().burst, 2);
        let err = serde_yaml::from_str::<ReceiverConfig>("name: x\nopsgenie_configs: []\n");
        assert!(err.is_err());
    }

    #[test]
    fn global_flattened_ignores_other_keys() {
        #[derive(Deserialize)]
        struct Outer {
            resolve_timeout: String,
            #[serde(flatten)]
            receivers: GlobalConfig,
        }
        let o: Outer = serde_yaml::from_str(
            "resolve_timeout: 5m\nsmtp_from: a@b.c\nsmtp_require_tls: false\nsomething_else: 1\n",
        )
        .unwrap();
        assert_eq!(o.resolve_timeout, "5m");
        assert_eq!(o.receivers.smtp_from.as_deref(), Some("a@b.c"));
        assert!(!o.receivers.smtp_require_tls);
        assert_eq!(o.receivers.telegram_api_url, "https://api.telegram.org");
    }
}
