//! Request parameters the way Prometheus reads them with Go's `ParseForm`:
//! the URL query merged with an `application/x-www-form-urlencoded` POST
//! body (body values first), unknown parameters ignored. Also the parsers
//! for the parameters several endpoints share: times, `limit`, `match[]`.

use std::sync::Arc;

use axum::extract::{FromRequest, Request};
use axum::http::{Method, header};
use engine::Matcher;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::Api;
use super::error::{ApiError, FormError, LimitError, MatcherError};
use super::time::parse_time;
use crate::promql::parse_vector_selector;

/// The merged form values of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Merges a decoded urlencoded body and URL query, body first (Go's
    /// `Request.Form`).
    pub fn from_parts(query: Option<&str>, body: Option<&[u8]>) -> Params {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(body) = body {
            pairs.extend(form_urlencoded::parse(body).into_owned());
        }
        if let Some(query) = query {
            pairs.extend(form_urlencoded::parse(query.as_bytes()).into_owned());
        }
        Params { pairs }
    }

    /// The first value of `key`, or `""` when absent (Go's `FormValue`).
    pub fn get(&self, key: &str) -> &str {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A time parameter in milliseconds, `default` when absent or empty.
    pub fn time(&self, key: &'static str, default: i64) -> Result<i64, ApiError> {
        match self.get(key) {
            "" => Ok(default),
            s => parse_time(s).map_err(|e| ApiError::time(key, e)),
        }
    }

    /// A non-negative count (`limit`); 0 (the default) means "no limit".
    pub fn limit(&self, key: &'static str) -> Result<usize, ApiError> {
        parse_limit(self.get(key), key).map_err(|e| ApiError::InvalidParam {
            param: key,
            source: e.into(),
        })
    }
}

/// Go's `strconv.Atoi`, with its error wording.
pub fn atoi(s: &str) -> Result<i64, LimitError> {
    s.parse::<i64>().map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
            LimitError::Range(s.to_string())
        }
        _ => LimitError::Syntax(s.to_string()),
    })
}

/// Prometheus's `parseLimitParam`: empty = 0 = no limit; negative rejected.
pub fn parse_limit(s: &str, name: &'static str) -> Result<usize, LimitError> {
    if s.is_empty() {
        return Ok(0);
    }
    let n = atoi(s)?;
    if n < 0 {
        return Err(LimitError::Negative(name));
    }
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Parses every `match[]` selector, then requires each to have a matcher
/// that does not match the empty string (Prometheus's `parseMatchersParam`).
pub fn parse_match_params(values: &[&str]) -> Result<Vec<Vec<Matcher>>, MatcherError> {
    let selectors = values
        .iter()
        .map(|v| parse_vector_selector(v))
        .collect::<Result<Vec<_>, _>>()?;
    if selectors.iter().any(|vs| !vs.has_non_empty_matcher()) {
        return Err(MatcherError::Empty);
    }
    Ok(selectors.into_iter().map(|vs| vs.matchers).collect())
}

fn is_form_body(req: &Request) -> bool {
    if !matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) {
        return false;
    }
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mt| {
            mt.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

impl FromRequest<Arc<Api>> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, api: &Arc<Api>) -> Result<Self, Self::Rejection> {
        let query = req.uri().query().map(str::to_string);
        let body = if is_form_body(&req) {
            let limited = Limited::new(req.into_body(), api.options().max_form_bytes);
            let collected = limited.collect().await.map_err(|e| {
                if e.downcast_ref::<LengthLimitError>().is_some() {
                    FormError::TooLarge
                } else {
                    FormError::Read(e.to_string())
                }
            })?;
            Some(collected.to_bytes())
        } else {
            None
        };
        Ok(Params::from_parts(query.as_deref(), body.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::MatchOp;

    #[test]
    fn body_values_come_first() {
        let p = Params::from_parts(
            Some("match[]=b&limit=5&foo=bar"),
            Some(b"match[]=a&limit=7"),
        );
        assert_eq!(p.all("match[]"), vec!["a", "b"]);
        assert_eq!(p.get("limit"), "7");
        assert_eq!(p.get("missing"), "");
        let p = Params::from_parts(Some("match%5B%5D=%7Bjob%3D%22a+b%22%7D"), None);
        assert_eq!(p.all("match[]"), vec![r#"{job="a b"}"#]);
    }

    #[test]
    fn limits_follow_go() {
        assert_eq!(parse_limit("", "limit"), Ok(0));
        assert_eq!(parse_limit("0", "limit"), Ok(0));
        assert_eq!(parse_limit("+40000", "limit"), Ok(40000));
        assert_eq!(
            parse_limit("-1", "limit"),
            Err(LimitError::Negative("limit"))
        );
        assert_eq!(
            parse_limit("1.5", "limit"),
            Err(LimitError::Syntax("1.5".into()))
        );
        assert_eq!(
            parse_limit("99999999999999999999", "limit"),
            Err(LimitError::Range("99999999999999999999".into()))
        );
        assert_eq!(
            LimitError::Negative("limit").to_string(),
            "limit must be non-negative"
        );
    }

    #[test]
    fn match_params() {
        let sets = parse_match_params(&["up", r#"{job=~"a|b"}"#]).unwrap();
        assert_eq!(sets[0], vec![Matcher::equal("__name__", "up")]);
        assert_eq!(
            sets[1],
            vec![Matcher::new(MatchOp::RegexMatch, "job", "a|b").unwrap()]
        );
        assert_eq!(parse_match_params(&["up", "{}"]), Err(MatcherError::Empty));
        assert_eq!(
            parse_match_params(&[r#"{__name__=~".*"}"#]),
            Err(MatcherError::Empty)
        );
        assert!(parse_match_params(&[r#"{__name__!=""}"#]).is_ok());
        assert!(parse_match_params(&[r#"{__name__=~".+"}"#]).is_ok());
        let e = parse_match_params(&["{}", "up{"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "1:4: parse error: unexpected end of input inside braces",
            "parse errors win"
        );
    }
}
