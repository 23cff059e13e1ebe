//! The JSON response envelope (`status`, `data`, `errorType`, `error`,
//! `warnings`, `infos`; empty fields omitted) and JSON helpers shared by
//! the handlers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::error::ErrorType;
use engine::Labels;

/// At most this many warnings (and infos) are listed; the rest are summarised.
const MAX_ANNOTATIONS: usize = 10;

/// Non-fatal messages attached to a successful response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

impl Annotations {
    pub fn warn(&mut self, message: impl Into<String>) {
        let message = message.into();
        if !self.warnings.contains(&message) {
            self.warnings.push(message);
        }
    }
}

/// Caps a list at ten entries plus a `"<n> more ... annotations omitted"` line.
fn capped(mut list: Vec<String>, kind: &str) -> Vec<String> {
    if list.len() > MAX_ANNOTATIONS {
        let omitted = list.len() - MAX_ANNOTATIONS;
        list.truncate(MAX_ANNOTATIONS);
        list.push(format!("{omitted} more {kind} annotations omitted"));
    }
    list
}

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
    #[serde(rename = "errorType", skip_serializing_if = "Option::is_none")]
    error_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    infos: Vec<String>,
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn serialize<T: Serialize>(status: StatusCode, envelope: &Envelope<'_, T>) -> Response {
    match serde_json::to_vec(envelope) {
        Ok(body) => json(status, body),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise API response");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot serialise response: {e}"),
            )
                .into_response()
        }
    }
}

/// `{"status":"success","data":...}` with any warnings, HTTP 200.
pub fn success<T: Serialize>(data: T, annotations: Annotations) -> Response {
    let envelope = Envelope {
        status: "success",
        data: Some(data),
        error_type: None,
        error: None,
        warnings: capped(annotations.warnings, "warning"),
        infos: capped(annotations.infos, "info"),
    };
    serialize(StatusCode::OK, &envelope)
}

/// [`success`] with `data` already rendered as JSON text (query results,
/// whose number formats are not serde's).
pub fn success_raw(data: &str, annotations: Annotations) -> Response {
    let mut body = success_start(data.len());
    body.push_str(data);
    success_end(body, annotations)
}

/// The start of a success body, `{"status":"success","data":`, with room
/// for `data_len` bytes of data: the caller appends the data as JSON text
/// and hands the body to [`success_end`] (large results are written once,
/// not copied into the envelope).
pub fn success_start(data_len: usize) -> String {
    let mut body = String::with_capacity(data_len + 64);
    body.push_str(SUCCESS_START);
    body
}

/// What every success body starts with, up to its data.
pub const SUCCESS_START: &str = "{\"status\":\"success\",\"data\":";

/// Closes a body from [`success_start`] with any annotations, HTTP 200.
pub fn success_end(mut body: String, annotations: Annotations) -> Response {
    push_success_end(&mut body, annotations);
    success_body(body)
}

/// A whole success body (from [`SUCCESS_START`] to its closing brace),
/// HTTP 200.
pub fn success_body(body: String) -> Response {
    json(StatusCode::OK, body.into_bytes())
}

/// Appends the annotations and the closing brace of a success body.
pub fn push_success_end(body: &mut String, annotations: Annotations) {
    for (key, list, kind) in [
        ("warnings", annotations.warnings, "warning"),
        ("infos", annotations.infos, "info"),
    ] {
        if list.is_empty() {
            continue;
        }
        body.push_str(",\"");
        body.push_str(key);
        body.push_str("\":");
        // A list of strings always serialises.
        body.push_str(&serde_json::to_string(&capped(list, kind)).unwrap_or_default());
    }
    body.push('}');
}

/// A gzipped JSON body ([`super::gzip`]), HTTP 200.
pub fn success_gzipped(gz: Vec<u8>) -> Response {
    let mut resp = json(StatusCode::OK, gz);
    super::gzip::mark_gzipped(resp.headers_mut());
    resp
}

/// `{"status":"error","errorType":...,"error":...}` with the type's status.
pub fn error(error_type: ErrorType, message: &str) -> Response {
    let envelope: Envelope<'_, ()> = Envelope {
        status: "error",
        data: None,
        error_type: Some(error_type.as_str()),
        error: Some(message),
        warnings: Vec::new(),
        infos: Vec::new(),
    };
    serialize(error_type.status(), &envelope)
}

/// A label set as a JSON object (`{"__name__":"up","job":"x"}`).
pub struct LabelsJson<'a>(pub &'a Labels);

impl Serialize for LabelsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for l in self.0.iter() {
            map.serialize_entry(l.name.as_str(), l.value.as_str())?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(resp: Response) -> (StatusCode, String) {
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn envelopes_omit_empty_fields() {
        let (status, text) = body(success(vec!["a"], Annotations::default())).await;
        assert_eq!(
            (status.as_u16(), text.as_str()),
            (200, r#"{"status":"success","data":["a"]}"#)
        );
        let (status, text) = body(error(ErrorType::BadData, "nope")).await;
        assert_eq!(
            (status.as_u16(), text.as_str()),
            (
                400,
                r#"{"status":"error","errorType":"bad_data","error":"nope"}"#
            )
        );
        let mut ann = Annotations::default();
        ann.warn("results truncated due to limit");
        ann.warn("results truncated due to limit");
        let (_, text) = body(success(Vec::<String>::new(), ann)).await;
        assert_eq!(
            text,
            r#"{"status":"success","data":[],"warnings":["results truncated due to limit"]}"#
        );
    }

    #[tokio::test]
    async fn raw_success_matches_the_serde_envelope() {
        let mut ann = Annotations::default();
        ann.warn("w");
        ann.infos.push("i".into());
        let (status, raw) = body(success_raw(r#"{"a":1}"#, ann.clone())).await;
        let (_, typed) = body(success(serde_json::json!({"a": 1}), ann)).await;
        assert_eq!(status.as_u16(), 200);
        assert_eq!(raw, typed);
        assert_eq!(
            raw,
            r#"{"status":"success","data":{"a":1},"warnings":["w"],"infos":["i"]}"#
        );
    }

    #[test]
    fn annotations_are_capped_at_ten() {
        let list: Vec<String> = (0..13).map(|i| i.to_string()).collect();
        let out = capped(list, "warning");
        assert_eq!(out.len(), 11);
        assert_eq!(out[10], "3 more warning annotations omitted");
    }

    #[test]
    fn labels_serialise_as_objects() {
        let l = Labels::new(&[("__name__", "up"), ("job", "a\"b")]);
        assert_eq!(
            serde_json::to_string(&LabelsJson(&l)).unwrap(),
            r#"{"__name__":"up","job":"a\"b"}"#
        );
    }
}
