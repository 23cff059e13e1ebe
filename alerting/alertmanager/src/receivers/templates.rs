//! Notification templates: Silt's default templates (Alertmanager's names:
//! `__subject`, `slack.default.title`, `email.default.html`, ...; the
//! subjects and bodies are the smart summaries of [`super::summary`]), the
//! user's template files, and the configured template strings of each
//! integration, parsed once when a receiver is built.

use std::path::Path;
use std::sync::Arc;

use gotmpl::{MissingKey, Template, Value};

use super::{ReceiverError, SendError};

/// Silt's default templates. Bodies come in four dialects: plain text,
/// Slack mrkdwn (`*bold*`), Markdown (`**bold**`, Discord and Teams) and
/// Telegram HTML (rendered in HTML mode, which escapes every value).
pub const DEFAULT_TEMPLATES: &str = r#"
{{ define "__alertmanager" }}Alertmanager{{ end }}
{{ define "__alertmanagerURL" }}{{ .AlertmanagerURL }}{{ end }}
{{ define "__subject" }}{{ .Summary.Title }}{{ end }}
{{ define "__description" }}{{ end }}

{{ define "__text_alert_list" }}{{ range . }}Labels:
{{ range .Labels.SortedPairs }} - {{ .Name }} = {{ .Value }}
{{ end }}Annotations:
{{ range .Annotations.SortedPairs }} - {{ .Name }} = {{ .Value }}
{{ end }}Source: {{ .GeneratorURL }}
{{ end }}{{ end }}

{{ define "__silt_body_text" }}{{ with .Summary }}{{ if .CommonText }}{{ .CommonText }}
{{ end }}{{ if .FiringCount }}Firing ({{ .FiringCount }}): {{ .FiringListLong }}
{{ range .FiringDetails }} - {{ .Name }}: {{ .Text }}
{{ end }}{{ if .FiringMore }} - and {{ .FiringMore }} more
{{ end }}{{ end }}{{ if .ResolvedCount }}Resolved ({{ .ResolvedCount }}): {{ .ResolvedListLong }}
{{ end }}{{ if .CommonLabels }}Labels: {{ .CommonLabels }}
{{ end }}{{ end }}{{ end }}

{{ define "__silt_body_slack" }}{{ with .Summary }}{{ if .CommonText }}{{ .CommonText }}
{{ end }}{{ if .FiringCount }}*Firing ({{ .FiringCount }}):* {{ .FiringListLong }}
{{ range .FiringDetails }}• *{{ .Name }}*: {{ .Text }}
{{ end }}{{ if .FiringMore }}• … and {{ .FiringMore }} more
{{ end }}{{ end }}{{ if .ResolvedCount }}*Resolved ({{ .ResolvedCount }}):* {{ .ResolvedListLong }}
{{ end }}{{ if .CommonLabels }}_Labels:_ {{ .CommonLabels }}
{{ end }}{{ end }}{{ end }}

{{ define "__silt_body_markdown" }}{{ with .Summary }}{{ if .CommonText }}{{ .CommonText }}

{{ end }}{{ if .FiringCount }}**Firing ({{ .FiringCount }}):** {{ .FiringListLong }}

{{ range .FiringDetails }}- **{{ .Name }}**: {{ .Text }}
{{ end }}{{ if .FiringMore }}- … and {{ .FiringMore }} more
{{ end }}{{ end }}{{ if .ResolvedCount }}**Resolved ({{ .ResolvedCount }}):** {{ .ResolvedListLong }}

{{ end }}{{ if .CommonLabels }}*Labels:* {{ .CommonLabels }}
{{ end }}{{ end }}{{ end }}

{{ define "__silt_body_telegram" }}<b>{{ .Summary.Title }}</b>
{{ with .Summary }}{{ if .CommonText }}{{ .CommonText }}
{{ end }}{{ if .FiringCount }}<b>Firing ({{ .FiringCount }}):</b> {{ .FiringListLong }}
{{ range .FiringDetails }}• <b>{{ .Name }}</b>: {{ .Text }}
{{ end }}{{ if .FiringMore }}• … and {{ .FiringMore }} more
{{ end }}{{ end }}{{ if .ResolvedCount }}<b>Resolved ({{ .ResolvedCount }}):</b> {{ .ResolvedListLong }}
{{ end }}{{ if .CommonLabels }}<i>Labels:</i> {{ .CommonLabels }}
{{ end }}{{ end }}{{ end }}

{{ define "slack.default.title" }}{{ template "__subject" . }}{{ end }}
{{ define "slack.default.username" }}{{ template "__alertmanager" . }}{{ end }}
{{ define "slack.default.fallback" }}{{ template "slack.default.title" . }} | {{ template "slack.default.titlelink" . }}{{ end }}
{{ define "slack.default.callbackid" }}{{ end }}
{{ define "slack.default.pretext" }}{{ end }}
{{ define "slack.default.titlelink" }}{{ template "__alertmanagerURL" . }}{{ end }}
{{ define "slack.default.iconemoji" }}{{ end }}
{{ define "slack.default.iconurl" }}{{ end }}
{{ define "slack.default.text" }}{{ template "__silt_body_slack" . }}{{ end }}
{{ define "slack.default.footer" }}{{ end }}
{{ define "slack.default.color" }}{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}{{ end }}

{{ define "pagerduty.default.description" }}{{ template "__subject" . }}{{ end }}
{{ define "pagerduty.default.client" }}{{ template "__alertmanager" . }}{{ end }}
{{ define "pagerduty.default.clientURL" }}{{ template "__alertmanagerURL" . }}{{ end }}
{{ define "pagerduty.default.instances" }}{{ template "__text_alert_list" . }}{{ end }}

{{ define "telegram.default.message" }}{{ template "__silt_body_telegram" . }}{{ end }}
{{ define "telegram.default.text" }}{{ template "__subject" . }}
{{ template "__silt_body_text" . }}{{ end }}

{{ define "discord.default.content" }}{{ end }}
{{ define "discord.default.title" }}{{ template "__subject" . }}{{ end }}
{{ define "discord.default.message" }}{{ template "__silt_body_markdown" . }}{{ end }}

{{ define "msteams.default.summary" }}{{ template "__subject" . }}{{ end }}
{{ define "msteams.default.title" }}{{ template "__subject" . }}{{ end }}
{{ define "msteams.default.text" }}{{ template "__silt_body_markdown" . }}{{ end }}

{{ define "msteamsv2.default.title" }}{{ template "__subject" . }}{{ end }}
{{ define "msteamsv2.default.text" }}{{ template "__silt_body_markdown" . }}{{ end }}

{{ define "email.default.subject" }}{{ template "__subject" . }}{{ end }}
{{ define "email.default.text" }}{{ template "__subject" . }}

{{ template "__silt_body_text" . }}
{{ if gt (len .Alerts.Firing) 0 }}Alerts Firing:
{{ template "__text_alert_list" .Alerts.Firing }}
{{ end }}{{ if gt (len .Alerts.Resolved) 0 }}Alerts Resolved:
{{ template "__text_alert_list" .Alerts.Resolved }}
{{ end }}View in Alertmanager: {{ template "__alertmanagerURL" . }}
{{ end }}
{{ define "__email_alert" }}<table style="border-collapse:collapse;margin:8px 0;width:100%">
{{ range .Labels.SortedPairs }}<tr><td style="padding:2px 8px;color:#555">{{ .Name }}</td><td style="padding:2px 8px">{{ .Value }}</td></tr>
{{ end }}{{ range .Annotations.SortedPairs }}<tr><td style="padding:2px 8px;color:#555"><i>{{ .Name }}</i></td><td style="padding:2px 8px">{{ .Value }}</td></tr>
{{ end }}{{ if .GeneratorURL }}<tr><td colspan="2" style="padding:2px 8px"><a href="{{ .GeneratorURL }}">Source</a></td></tr>
{{ end }}</table>
{{ end }}
{{ define "email.default.html" }}<!DOCTYPE html>
<html><head><meta charset="UTF-8"><title>{{ template "__subject" . }}</title></head>
<body style="font-family:Helvetica,Arial,sans-serif;font-size:14px">
<h2 style="color:{{ if eq .Status "firing" }}#b00020{{ else }}#2e7d32{{ end }}">{{ template "__subject" . }}</h2>
{{ with .Summary }}{{ if .CommonText }}<p>{{ .CommonText }}</p>
{{ end }}{{ end }}<p><a href="{{ template "__alertmanagerURL" . }}">View in Alertmanager</a></p>
{{ if gt (len .Alerts.Firing) 0 }}<h3>Firing ({{ len .Alerts.Firing }})</h3>
{{ range .Alerts.Firing }}{{ template "__email_alert" . }}{{ end }}{{ end }}
{{ if gt (len .Alerts.Resolved) 0 }}<h3>Resolved ({{ len .Alerts.Resolved }})</h3>
{{ range .Alerts.Resolved }}{{ template "__email_alert" . }}{{ end }}{{ end }}
</body></html>
{{ end }}
"#;

/// The default templates plus the user's template files, in text and in
/// HTML mode (for email bodies). Build once, share with every receiver.
#[derive(Debug, Clone)]
pub struct Templates {
    text: Template,
    html: Template,
}

fn parse_into(t: &mut Template, name: &str, text: &str) -> Result<(), ReceiverError> {
    t.parse(name, text).map_err(|e| ReceiverError::Template {
        name: name.to_string(),
        message: e.to_string(),
    })
}

impl Templates {
    fn empty() -> Templates {
        let base = Template::new(gotmpl::alertmanager_funcs()).missing_key(MissingKey::Zero);
        Templates {
            text: base.clone(),
            html: base.html(),
        }
    }

    /// The default templates only.
    pub fn defaults() -> Templates {
        Templates::with_user(&[]).expect("the default templates parse (tested)")
    }

    /// The default templates, then each `(name, text)` user template file
    /// in order; a later `define` replaces an earlier one.
    pub fn with_user(files: &[(String, String)]) -> Result<Templates, ReceiverError> {
        let mut t = Templates::empty();
        parse_into(&mut t.text, "default.tmpl", DEFAULT_TEMPLATES)?;
        parse_into(&mut t.html, "default.tmpl", DEFAULT_TEMPLATES)?;
        for (name, text) in files {
            parse_into(&mut t.text, name, text)?;
            parse_into(&mut t.html, name, text)?;
        }
        Ok(t)
    }

    /// Reads and parses the given template files (the caller expands
    /// Alertmanager's `templates:` globs).
    pub fn from_files(paths: &[&Path]) -> Result<Templates, ReceiverError> {
        let mut files = Vec::with_capacity(paths.len());
        for p in paths {
            let text = std::fs::read_to_string(p).map_err(|e| ReceiverError::Template {
                name: p.display().to_string(),
                message: e.to_string(),
            })?;
            files.push((p.display().to_string(), text));
        }
        Templates::with_user(&files)
    }

    /// Executes a named template in text mode (for tests and tools).
    pub fn execute(&self, name: &str, data: &Value) -> Result<String, SendError> {
        self.text
            .execute(name, data)
            .map_err(|e| SendError::Template {
                field: name.to_string(),
                message: e.to_string(),
            })
    }
}

/// A configured template string of one integration, parsed into the
/// receiver's own template set.
#[derive(Debug, Clone)]
pub struct Field {
    name: String,
    html: bool,
    /// A string without `{{` renders as itself.
    literal: Option<String>,
}

/// A receiver's template set: the shared templates plus its configured
/// strings.
#[derive(Debug, Clone)]
pub struct Renderer {
    t: Templates,
    next: usize,
}

impl Renderer {
    pub fn new(shared: &Arc<Templates>) -> Renderer {
        Renderer {
            t: (**shared).clone(),
            next: 0,
        }
    }

    fn add(&mut self, what: &str, src: &str, html: bool) -> Result<Field, ReceiverError> {
        if !src.contains("{{") {
            return Ok(Field {
                name: what.to_string(),
                html,
                literal: Some(src.to_string()),
            });
        }
        self.next += 1;
        let name = format!("silt.receiver.{}.{what}", self.next);
        let set = if html {
            &mut self.t.html
        } else {
            &mut self.t.text
        };
        parse_into(set, &name, src)?;
        Ok(Field {
            name,
            html,
            literal: None,
        })
    }

    /// A text-mode field: the configured string or the default template.
    pub fn text(
        &mut self,
        what: &str,
        configured: Option<&str>,
        default: &str,
    ) -> Result<Field, ReceiverError> {
        let src = configured.map_or_else(
            || format!(r#"{{{{ template "{default}" . }}}}"#),
            str::to_string,
        );
        self.add(what, &src, false)
    }

    /// An HTML-mode field (email bodies).
    pub fn html(
        &mut self,
        what: &str,
        configured: Option<&str>,
        default: &str,
    ) -> Result<Field, ReceiverError> {
        let src = configured.map_or_else(
            || format!(r#"{{{{ template "{default}" . }}}}"#),
            str::to_string,
        );
        self.add(what, &src, true)
    }

    /// A text field without default: `None` when not configured.
    pub fn optional(
        &mut self,
        what: &str,
        configured: Option<&str>,
    ) -> Result<Option<Field>, ReceiverError> {
        configured.map(|s| self.add(what, s, false)).transpose()
    }

    /// Renders `f` and, as Alertmanager's `DeepCopyWithTemplate`, reads
    /// the result as YAML: structured results (numbers, booleans, lists,
    /// maps, and null for an empty result) are kept, anything else stays
    /// the rendered string.
    pub fn render_structured(
        &self,
        f: &Field,
        data: &Value,
    ) -> Result<serde_json::Value, SendError> {
        let s = self.render(f, data)?;
        Ok(match serde_yaml::from_str::<serde_json::Value>(&s) {
            Ok(serde_json::Value::String(_)) | Err(_) => serde_json::Value::String(s),
            Ok(v) => v,
        })
    }

    pub fn render(&self, f: &Field, data: &Value) -> Result<String, SendError> {
        if let Some(l) = &f.literal {
            return Ok(l.clone());
        }
        let set = if f.html { &self.t.html } else { &self.t.text };
        set.execute(&f.name, data).map_err(|e| SendError::Template {
            field: f.name.clone(),
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receivers::template_data;
    use crate::types::{Alert, LabelSet, Notification, NotificationReason};
    use chrono::{TimeZone, Utc};

    fn ls(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn n() -> Notification {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let alert = |i: &str, resolved: bool| Alert {
            labels: ls(&[("alertname", "Up"), ("instance", i)]),
            annotations: ls(&[("summary", "down")]),
            starts_at: t,
            ends_at: resolved.then_some(t),
            generator_url: "http://p/g".into(),
            updated_at: t,
            timeout: false,
        };
        Notification {
            receiver: "a.b".into(),
            group_key: "{}:{}".into(),
            group_labels: ls(&[("alertname", "Up")]),
            common_labels: LabelSet::new(),
            common_annotations: LabelSet::new(),
            route_labels: LabelSet::new(),
            external_url: "http://am".into(),
            reason: NotificationReason::First,
            alerts: vec![alert("h1", false), alert("h2", true)],
            now: t + chrono::Duration::hours(1),
            repeat: 0,
        }
    }

    #[test]
    fn defaults_parse_and_render() {
        let t = Templates::defaults();
        let d = template_data(&n());
        assert_eq!(
            t.execute("__subject", &d).unwrap(),
            "[FIRING:1, RESOLVED:1] Up — h1"
        );
        assert_eq!(
            t.execute("__alertmanagerURL", &d).unwrap(),
            "http://am/#/alerts?receiver=a%5C.b"
        );
        assert_eq!(t.execute("slack.default.color", &d).unwrap(), "danger");
        let text = t.execute("email.default.text", &d).unwrap();
        assert!(
            text.contains("Alerts Firing:\nLabels:\n - alertname = Up\n - instance = h1\nAnnotations:\n - summary = down\nSource: http://p/g\n"),
            "{text}"
        );
        assert!(text.contains("Alerts Resolved:\n"), "{text}");
        for name in [
            "slack.default.text",
            "discord.default.message",
            "msteams.default.text",
            "msteamsv2.default.text",
            "telegram.default.message",
            "pagerduty.default.description",
            "email.default.subject",
        ] {
            assert!(!t.execute(name, &d).unwrap().is_empty(), "{name}");
        }
    }

    #[test]
    fn data_shape_matches_alertmanager() {
        let d = template_data(&n());
        let t = {
            let mut t = Templates::defaults();
            parse_into(
                &mut t.text,
                "probe",
                "{{ .Receiver }}|{{ .Status }}|{{ len .Alerts.Firing }}|{{ len .Alerts.Resolved }}|{{ range .Alerts }}{{ .Status }} {{ .Fingerprint }} {{ .StartsAt }};{{ end }}|{{ .CommonLabels.alertname }}|{{ .CommonAnnotations.summary }}|{{ .GroupKey }}|{{ .Labels.missing }}",
            )
            .unwrap();
            t
        };
        let out = t.execute("probe", &d).unwrap();
        let parts: Vec<&str> = out.split('|').collect();
        assert_eq!(parts[0], r"a\.b");
        assert_eq!(parts[1], "firing");
        assert_eq!(parts[2], "1");
        assert_eq!(parts[3], "1");
        assert!(parts[4].starts_with("firing "), "{}", parts[4]);
        assert!(parts[4].contains(" 2026-01-01 00:00:00 +0000 UTC;"));
        assert_eq!(parts[5], "Up");
        assert_eq!(parts[6], "down");
        assert_eq!(parts[7], "{}:{}");
    }

    #[test]
    fn html_mode_escapes_values() {
        let mut shared = Templates::defaults();
        parse_into(&mut shared.html, "x", "<b>{{ .GroupKey }}</b>").unwrap();
        let mut notification = n();
        notification.group_key = "<&>".into();
        let out = shared
            .html
            .execute("x", &template_data(&notification))
            .unwrap();
        assert_eq!(out, "<b>&lt;&amp;&gt;</b>");
    }

    #[test]
    fn renderer_fields() {
        let shared = Arc::new(Templates::defaults());
        let mut r = Renderer::new(&shared);
        let lit = r.text("url", Some("http://x/"), "").unwrap();
        let tmpl = r.text("title", Some("{{ .Status }}!"), "").unwrap();
        let def = r.text("color", None, "slack.default.color").unwrap();
        assert!(r.text("bad", Some("{{ .X "), "").is_err());
        let d = template_data(&n());
        assert_eq!(r.render(&lit, &d).unwrap(), "http://x/");
        assert_eq!(r.render(&tmpl, &d).unwrap(), "firing!");
        assert_eq!(r.render(&def, &d).unwrap(), "danger");
        let num = r.text("n", Some("{{ len .Alerts }}"), "").unwrap();
        assert_eq!(r.render_structured(&num, &d).unwrap(), serde_json::json!(2));
        let list = r.text("l", Some("[a, {{ .Status }}]"), "").unwrap();
        assert_eq!(
            r.render_structured(&list, &d).unwrap(),
            serde_json::json!(["a", "firing"])
        );
        let word = r.text("w", Some("{{ .Status }}: now"), "").unwrap();
        assert_eq!(
            r.render_structured(&word, &d).unwrap(),
            serde_json::json!({"firing": "now"})
        );
        let plain = r.text("p", Some("{{ .Status }} now"), "").unwrap();
        assert_eq!(
            r.render_structured(&plain, &d).unwrap(),
            serde_json::json!("firing now")
        );
    }
}
