//! A client for a running Silt's reports API: what `silt report run NAME`
//! uses (the server owns the data directory, so the CLI asks it).

use std::time::Duration;

use crate::store::RunRecord;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{url}: {message}")]
    Request { url: String, message: String },
    #[error("{url}: status {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url}: unexpected answer: {message}")]
    Decode { url: String, message: String },
}

/// `POST <base_url>/api/v1/reports/<name>/run`: runs the report now and
/// returns its record (which says whether it failed). `timeout` bounds
/// the whole run.
pub async fn run(base_url: &str, name: &str, timeout: Duration) -> Result<RunRecord, ClientError> {
    let url = format!(
        "{}/api/v1/reports/{name}/run",
        base_url.trim_end_matches('/')
    );
    let req = |message: String| ClientError::Request {
        url: url.clone(),
        message,
    };
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| req(e.to_string()))?;
    let resp = client
        .post(&url)
        .send()
        .await
        .map_err(|e| req(e.to_string()))?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(|e| req(e.to_string()))?;
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| ClientError::Decode {
        url: url.clone(),
        message: format!(
            "{e}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(200)
                .collect::<String>()
        ),
    })?;
    if status != 200 {
        return Err(ClientError::Status {
            url,
            status,
            message: v["error"].as_str().unwrap_or("").to_string(),
        });
    }
    serde_json::from_value(v["data"].clone()).map_err(|e| ClientError::Decode {
        url,
        message: e.to_string(),
    })
}
