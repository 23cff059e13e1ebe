//! Delivery of a finished run: to a folder (atomically, a folder per run),
//! to a webhook (a JSON POST with the document and download links, with
//! retries), and by email through the built-in Alertmanager's email
//! receiver (its SMTP, TLS, authentication and retry code: the report is
//! the HTML body, its Markdown the text alternative).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use alertmanager::receivers::{
    EmailConfig, GlobalConfig, Receiver, ReceiverConfig, ReceiverMetrics, Templates,
};
use alertmanager::{Alert, Notification, NotificationReason};
use chrono::Utc;
use serde::Serialize;

use crate::config::{ReportDef, WebhookTarget};
use crate::doc::{Document, Highlight};
use crate::render::Rendered;
use crate::store::{DeliveryOutcome, RunRecord, write_folder_atomically};

/// Where download links point: `<external_url>/api/v1/reports/...`.
pub(crate) fn file_url(external_url: &str, report: &str, run: &str, file: &str) -> String {
    format!(
        "{}/api/v1/reports/{report}/runs/{run}/{file}",
        external_url.trim_end_matches('/')
    )
}

pub(crate) fn to_folder(
    def: &ReportDef,
    run: &RunRecord,
    files: &[Rendered],
) -> Option<DeliveryOutcome> {
    let folder = def.delivery.folder.as_ref()?;
    let dest = folder.join(&def.name).join(&run.id);
    let result = write_folder_atomically(&dest, files, None);
    Some(DeliveryOutcome {
        target: "folder".into(),
        ok: result.is_ok(),
        error: result.err().map(|e| e.to_string()),
        detail: dest.display().to_string(),
        attempts: 1,
    })
}

/// The webhook's JSON body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload<'a> {
    pub version: &'static str,
    pub report: &'a str,
    pub kind: &'a str,
    pub title: &'a str,
    pub run_id: &'a str,
    pub status: &'a str,
    pub period_start: chrono::DateTime<Utc>,
    pub period_end: chrono::DateTime<Utc>,
    pub highlights: &'a [Highlight],
    /// File name → download URL.
    pub links: BTreeMap<String, String>,
    pub document: &'a Document,
}

/// POSTs `body` to `w.url`; retries network errors, 5xx and 429 with
/// backoff 1 s, 2 s, 4 s, ... (at most 30 s) up to `max_attempts`.
pub(crate) async fn post_with_retries(
    w: &WebhookTarget,
    body: Vec<u8>,
    backoff: Duration,
) -> (Result<(), String>, u32) {
    let client = match reqwest::Client::builder()
        .timeout(w.timeout)
        .user_agent(alertmanager::receivers::USER_AGENT)
        .build()
    {
        Ok(c) => c,
        Err(e) => return (Err(format!("building the HTTP client: {e}")), 0),
    };
    let mut delay = backoff;
    let mut last = String::new();
    for attempt in 1..=w.max_attempts {
        let resp = client
            .post(&w.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        let retry = match resp {
            Ok(r) if r.status().is_success() => return (Ok(()), attempt),
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                last = format!(
                    "status {}: {}",
                    status.as_u16(),
                    text.chars().take(200).collect::<String>()
                );
                status.is_server_error() || status.as_u16() == 429
            }
            Err(e) => {
                last = format!("request failed: {e}");
                true
            }
        };
        if !retry {
            return (Err(last), attempt);
        }
        if attempt < w.max_attempts {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }
    (Err(last), w.max_attempts)
}

pub(crate) async fn to_webhook(
    def: &ReportDef,
    run: &RunRecord,
    doc: &Document,
    external_url: &str,
    backoff: Duration,
) -> Option<DeliveryOutcome> {
    let w = def.delivery.webhook.as_ref()?;
    let payload = WebhookPayload {
        version: "1",
        report: &def.name,
        kind: def.kind.as_str(),
        title: &def.title,
        run_id: &run.id,
        status: "succeeded",
        period_start: run.period_start,
        period_end: run.period_end,
        highlights: &doc.highlights,
        links: run
            .files
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    file_url(external_url, &def.name, &run.id, &f.name),
                )
            })
            .collect(),
        document: doc,
    };
    let (result, attempts) = match serde_json::to_vec(&payload) {
        Ok(body) => post_with_retries(w, body, backoff).await,
        Err(e) => (Err(format!("encoding the payload: {e}")), 0),
    };
    Some(DeliveryOutcome {
        target: "webhook".into(),
        ok: result.is_ok(),
        error: result.err(),
        detail: w.url.clone(),
        attempts,
    })
}

/// The Alertmanager email configuration for a report: the report sets the
/// subject (unless given), HTML body and text body.
pub(crate) fn email_config(c: &EmailConfig) -> EmailConfig {
    let mut c = c.clone();
    c.send_resolved = Some(true);
    c.html = Some("{{ .CommonAnnotations.report_html | safeHtml }}".into());
    c.text = Some("{{ .CommonAnnotations.report_text }}".into());
    let has_subject = c.headers.keys().any(|k| k.eq_ignore_ascii_case("subject"));
    if !has_subject {
        c.headers
            .insert("Subject".into(), "{{ .CommonAnnotations.subject }}".into());
    }
    c
}

/// Builds the email receiver (validates SMTP settings against `global`).
pub(crate) fn email_receiver(
    def_name: &str,
    c: &EmailConfig,
    global: &GlobalConfig,
) -> Result<Receiver, alertmanager::receivers::ReceiverError> {
    let rc = ReceiverConfig {
        name: format!("report-{def_name}"),
        email_configs: vec![email_config(c)],
        ..ReceiverConfig::default()
    };
    Receiver::new(
        &rc,
        global,
        Arc::new(Templates::defaults()),
        &ReceiverMetrics::unregistered(),
    )
}

pub(crate) async fn to_email(
    def: &ReportDef,
    run: &RunRecord,
    doc: &Document,
    files: &[Rendered],
    global: &GlobalConfig,
    external_url: &str,
) -> Option<DeliveryOutcome> {
    let c = def.delivery.email.as_ref()?;
    let detail = c.to.clone().unwrap_or_default();
    let fail = |error: String| {
        Some(DeliveryOutcome {
            target: "email".into(),
            ok: false,
            error: Some(error),
            detail: detail.clone(),
            attempts: 1,
        })
    };
    let receiver = match email_receiver(&def.name, c, global) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    let html = match files.iter().find(|f| f.name == "report.html") {
        Some(f) => String::from_utf8_lossy(&f.bytes).into_owned(),
        None => crate::render::html::render(doc, ""),
    };
    let mut text = match files.iter().find(|f| f.name == "report.md") {
        Some(f) => String::from_utf8_lossy(&f.bytes).into_owned(),
        None => crate::render::markdown::render(doc, ""),
    };
    if !external_url.is_empty() {
        text.push_str("\nFiles:\n");
        for f in &run.files {
            text.push_str(&format!(
                "- {}\n",
                file_url(external_url, &def.name, &run.id, &f.name)
            ));
        }
    }
    let now = Utc::now();
    let labels: BTreeMap<String, String> = [
        ("alertname".to_string(), "SiltReport".to_string()),
        ("report".to_string(), def.name.clone()),
    ]
    .into();
    let annotations: BTreeMap<String, String> = [
        (
            "subject".to_string(),
            format!(
                "{} ({} to {})",
                doc.title,
                doc.start.format("%Y-%m-%d"),
                doc.end.format("%Y-%m-%d")
            ),
        ),
        ("report_html".to_string(), html),
        ("report_text".to_string(), text),
    ]
    .into();
    let alert = Alert {
        labels: labels.clone(),
        annotations: annotations.clone(),
        starts_at: now,
        ends_at: None,
        generator_url: String::new(),
        updated_at: now,
        timeout: false,
    };
    let n = Notification {
        receiver: format!("report-{}", def.name),
        group_key: format!("report:{}", def.name),
        group_labels: labels.clone(),
        common_labels: labels,
        common_annotations: annotations,
        route_labels: BTreeMap::new(),
        external_url: external_url.to_string(),
        reason: NotificationReason::First,
        alerts: vec![alert],
        now,
        repeat: 0,
    };
    let result = receiver.notify(&n).await;
    Some(DeliveryOutcome {
        target: "email".into(),
        ok: result.is_ok(),
        error: result.err().map(|e| e.to_string()),
        detail,
        attempts: 1,
    })
}
