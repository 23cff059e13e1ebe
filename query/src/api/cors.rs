//! CORS as Prometheus does it (`util/httputil/cors.go`): `Vary: Origin` on
//! every API response; for requests with an `Origin`, the allow-headers,
//! allow-methods and expose-headers, and `Access-Control-Allow-Origin`
//! (`*` for the default `.*` pattern, else the echoed origin when it
//! matches). `OPTIONS /api/v1/*` answers 204.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use regex::Regex;

/// Which origins may call the API (Prometheus's `--web.cors.origin`).
#[derive(Debug, Clone)]
pub struct CorsOrigin {
    /// `None` allows every origin.
    regex: Option<Regex>,
}

impl CorsOrigin {
    /// Origins fully matching `pattern` (anchored at both ends); `.*`
    /// allows every origin.
    pub fn new(pattern: &str) -> Result<CorsOrigin, regex::Error> {
        if pattern == ".*" {
            return Ok(CorsOrigin::any());
        }
        Ok(CorsOrigin {
            regex: Some(Regex::new(&format!("^(?:{pattern})$"))?),
        })
    }

    /// Every origin (`Access-Control-Allow-Origin: *`), the default.
    pub fn any() -> CorsOrigin {
        CorsOrigin { regex: None }
    }
}

impl Default for CorsOrigin {
    fn default() -> Self {
        CorsOrigin::any()
    }
}

/// Sets Prometheus's CORS headers on `headers` for a request from `origin`.
pub fn apply_cors(headers: &mut HeaderMap, origin: Option<&HeaderValue>, allowed: &CorsOrigin) {
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = origin.filter(|o| !o.is_empty()) else {
        return;
    };
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Accept, Authorization, Content-Type, Origin"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Date"),
    );
    match &allowed.regex {
        None => {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
        Some(re) if origin.to_str().is_ok_and(|o| re.is_match(o)) => {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        }
        Some(_) => {}
    }
}

async fn cors_middleware(
    State(allowed): State<Arc<CorsOrigin>>,
    req: Request,
    next: Next,
) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let mut resp = if req.method() == Method::OPTIONS && req.uri().path().starts_with("/api/v1/") {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    apply_cors(resp.headers_mut(), origin.as_ref(), &allowed);
    resp
}

/// Wraps every route of `router` with the CORS behaviour. The binary may
/// apply this to its whole `/api/v1` tree so other crates' routes (remote
/// write) and unknown paths answer preflights the same way.
pub fn with_cors<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    allowed: CorsOrigin,
) -> Router<S> {
    router.layer(middleware::from_fn_with_state(
        Arc::new(allowed),
        cors_middleware,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_prometheus() {
        let mut h = HeaderMap::new();
        apply_cors(&mut h, None, &CorsOrigin::any());
        assert_eq!(h.get(header::VARY).unwrap(), "Origin");
        assert!(h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());

        let origin = HeaderValue::from_static("https://grafana.example");
        let mut h = HeaderMap::new();
        apply_cors(&mut h, Some(&origin), &CorsOrigin::any());
        assert_eq!(h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(), "*");
        assert_eq!(
            h.get(header::ACCESS_CONTROL_ALLOW_METHODS).unwrap(),
            "GET, POST, OPTIONS"
        );
        assert_eq!(
            h.get(header::ACCESS_CONTROL_ALLOW_HEADERS).unwrap(),
            "Accept, Authorization, Content-Type, Origin"
        );
        assert_eq!(
            h.get(header::ACCESS_CONTROL_EXPOSE_HEADERS).unwrap(),
            "Date"
        );

        let only = CorsOrigin::new(r"https://.*\.example").unwrap();
        let mut h = HeaderMap::new();
        apply_cors(&mut h, Some(&origin), &only);
        assert_eq!(
            h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(),
            "https://grafana.example"
        );
        let evil = HeaderValue::from_static("https://grafana.example.evil");
        let mut h = HeaderMap::new();
        apply_cors(&mut h, Some(&evil), &only);
        assert!(
            h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
            "anchored match"
        );
        assert!(h.get(header::ACCESS_CONTROL_ALLOW_METHODS).is_some());
    }
}
