//! Content negotiation: which protobuf message (`Content-Type`) and which
//! compression (`Content-Encoding`) a request uses. Unsupported values are
//! 415 so senders can fall back (vmagent retries zstd bodies as snappy on
//! 415/400; Prometheus logs and drops).

use crate::error::IngestError;

/// Remote-write protocol version, chosen by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `prometheus.WriteRequest`.
    V1,
    /// `io.prometheus.write.v2.Request`.
    V2,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1 => "1.0",
            Version::V2 => "2.0",
        }
    }
}

/// Body compression, chosen by `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Snappy block ("raw") format; also assumed when the header is absent.
    Snappy,
    /// zstd frames (VictoriaMetrics' vmagent sends these by default).
    Zstd,
}

const MEDIA_TYPE: &str = "application/x-protobuf";
const PROTO_V1: &str = "prometheus.WriteRequest";
const PROTO_V2: &str = "io.prometheus.write.v2.Request";

/// Parses `Content-Type` (rules of the remote-write 2.0 spec, with
/// whitespace around parameters tolerated):
/// absent or empty → v1; media type other than `application/x-protobuf` →
/// 415; a `proto` parameter must name one of the two messages (else 415);
/// no `proto` parameter → v1. Other parameters are ignored; a parameter
/// without `=` is 415.
pub fn parse_content_type(value: Option<&str>) -> Result<Version, IngestError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(Version::V1);
    };
    let unsupported = || IngestError::UnsupportedContentType(value.to_string());
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case(MEDIA_TYPE) {
        return Err(unsupported());
    }
    let mut version = Version::V1;
    for param in parts {
        let param = param.trim();
        if param.is_empty() {
            continue; // a trailing ';'
        }
        let (key, val) = param.split_once('=').ok_or_else(unsupported)?;
        if !key.trim().eq_ignore_ascii_case("proto") {
            continue;
        }
        let val = val.trim();
        let val = val
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(val);
        version = match val {
            PROTO_V1 => Version::V1,
            PROTO_V2 => Version::V2,
            other => return Err(IngestError::UnsupportedProto(other.to_string())),
        };
    }
    Ok(version)
}

/// Parses `Content-Encoding`: absent, empty or `snappy` → snappy; `zstd` →
/// zstd; anything else → 415.
pub fn parse_content_encoding(value: Option<&str>) -> Result<Encoding, IngestError> {
    match value.map(str::trim) {
        None | Some("") => Ok(Encoding::Snappy),
        Some(v) if v.eq_ignore_ascii_case("snappy") => Ok(Encoding::Snappy),
        Some(v) if v.eq_ignore_ascii_case("zstd") => Ok(Encoding::Zstd),
        Some(v) => Err(IngestError::UnsupportedEncoding(v.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(v: Option<&str>) -> Result<Version, u16> {
        parse_content_type(v).map_err(|e| e.status())
    }

    #[test]
    fn content_type_table() {
        // Rule 1: empty or missing → v1.
        assert_eq!(ct(None), Ok(Version::V1));
        assert_eq!(ct(Some("")), Ok(Version::V1));
        assert_eq!(ct(Some("  ")), Ok(Version::V1));
        // Accepted v1 values (§3.3).
        assert_eq!(ct(Some("application/x-protobuf")), Ok(Version::V1));
        assert_eq!(
            ct(Some("application/x-protobuf;proto=prometheus.WriteRequest")),
            Ok(Version::V1)
        );
        // v2 value, as sent, and with the whitespace client_golang would refuse.
        assert_eq!(
            ct(Some(
                "application/x-protobuf;proto=io.prometheus.write.v2.Request"
            )),
            Ok(Version::V2)
        );
        assert_eq!(
            ct(Some(
                "application/x-protobuf; proto=io.prometheus.write.v2.Request"
            )),
            Ok(Version::V2)
        );
        assert_eq!(
            ct(Some(
                "Application/X-Protobuf ; proto = io.prometheus.write.v2.Request ;"
            )),
            Ok(Version::V2)
        );
        assert_eq!(
            ct(Some(
                "application/x-protobuf;proto=\"io.prometheus.write.v2.Request\""
            )),
            Ok(Version::V2)
        );
        // Rule 2: any other media type → 415.
        assert_eq!(ct(Some("application/json")), Err(415));
        assert_eq!(ct(Some("application/x-protobuf-v2")), Err(415));
        assert_eq!(
            ct(Some("text/plain;proto=prometheus.WriteRequest")),
            Err(415)
        );
        // Rule 3: unknown proto → 415; malformed parameter → 415; others ignored.
        assert_eq!(
            ct(Some(
                "application/x-protobuf;proto=io.prometheus.write.v3.Request"
            )),
            Err(415)
        );
        assert_eq!(ct(Some("application/x-protobuf;proto=")), Err(415));
        assert_eq!(ct(Some("application/x-protobuf;proto")), Err(415));
        assert_eq!(
            ct(Some("application/x-protobuf;charset=utf-8")),
            Ok(Version::V1)
        );
    }

    #[test]
    fn content_type_errors_name_the_value() {
        let e = parse_content_type(Some("application/x-protobuf;proto=foo.Bar")).unwrap_err();
        assert!(e.to_string().contains("foo.Bar"), "{e}");
        let e = parse_content_type(Some("application/json")).unwrap_err();
        assert!(e.to_string().contains("application/json"), "{e}");
    }

    #[test]
    fn content_encoding_table() {
        assert_eq!(parse_content_encoding(None).unwrap(), Encoding::Snappy);
        assert_eq!(parse_content_encoding(Some("")).unwrap(), Encoding::Snappy);
        assert_eq!(
            parse_content_encoding(Some("snappy")).unwrap(),
            Encoding::Snappy
        );
        assert_eq!(
            parse_content_encoding(Some("Snappy")).unwrap(),
            Encoding::Snappy
        );
        assert_eq!(
            parse_content_encoding(Some("zstd")).unwrap(),
            Encoding::Zstd
        );
        for bad in ["gzip", "deflate", "br", "identity", "snappy, gzip"] {
            let e = parse_content_encoding(Some(bad)).unwrap_err();
            assert_eq!(e.status(), 415, "{bad}");
            assert!(e.to_string().contains(bad));
        }
    }
}
