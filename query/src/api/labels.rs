//! `GET|POST /api/v1/labels` (label names) and
//! `GET /api/v1/label/<name>/values` (values of one label), optionally
//! restricted to series matching `match[]`, with the `U__` escaping of
//! non-legacy label names in the path.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use percent_encoding::percent_decode_str;

use super::error::ApiError;
use super::params::{Params, parse_match_params};
use super::response::{self, Annotations};
use super::time::{MAX_TIME_MS, MIN_TIME_MS};
use super::{Api, apply_limit, blocking};

pub(crate) async fn label_names(
    State(api): State<Arc<Api>>,
    params: Params,
) -> Result<Response, ApiError> {
    let limit = params.limit("limit")?;
    let start = params.time("start", MIN_TIME_MS)?;
    let end = params.time("end", MAX_TIME_MS)?;
    let sets = parse_match_params(&params.all("match[]")).map_err(ApiError::Matchers)?;
    let db = api.db().clone();
    let mut names = blocking(move || {
        let q = db.querier(start, end);
        if sets.len() <= 1 {
            return Ok(q.label_names(sets.first().map_or(&[][..], Vec::as_slice))?);
        }
        let mut union = BTreeSet::new();
        for set in &sets {
            union.extend(q.label_names(set)?);
        }
        Ok(union.into_iter().collect::<Vec<_>>())
    })
    .await?;
    let mut annotations = Annotations::default();
    apply_limit(&mut names, limit, &mut annotations);
    Ok(response::success(names, annotations))
}

pub(crate) async fn label_values(
    State(api): State<Arc<Api>>,
    uri: Uri,
    params: Params,
) -> Result<Response, ApiError> {
    // The path is `.../label/<name>/values`; the name is the segment before
    // the last one. It is read from the URI so that any bytes, even invalid
    // UTF-8, end in Prometheus's JSON error rather than a plain-text reject.
    let raw = uri.path().rsplit('/').nth(1).unwrap_or_default();
    let name = match percent_decode_str(raw).decode_utf8() {
        Ok(name) => name.into_owned(),
        Err(_) => {
            return Err(ApiError::InvalidLabelName(
                percent_decode_str(raw).decode_utf8_lossy().into_owned(),
            ));
        }
    };
    let name = if name.starts_with("U__") {
        unescape_name(&name)
    } else {
        name
    };
    if name.is_empty() {
        return Err(ApiError::InvalidLabelName(name));
    }
    let limit = params.limit("limit")?;
    let start = params.time("start", MIN_TIME_MS)?;
    let end = params.time("end", MAX_TIME_MS)?;
    let sets = parse_match_params(&params.all("match[]")).map_err(ApiError::Matchers)?;
    let db = api.db().clone();
    let mut values = blocking(move || {
        let q = db.querier(start, end);
        if sets.len() <= 1 {
            return Ok(q.label_values(&name, sets.first().map_or(&[][..], Vec::as_slice))?);
        }
        let mut union = BTreeSet::new();
        for set in &sets {
            union.extend(q.label_values(&name, set)?);
        }
        Ok(union.into_iter().collect::<Vec<_>>())
    })
    .await?;
    values.sort();
    let mut annotations = Annotations::default();
    apply_limit(&mut values, limit, &mut annotations);
    Ok(response::success(values, annotations))
}

/// Reverses Prometheus's "U__" value-encoding escape of a label name
/// (`model.UnescapeName` with `ValueEncodingEscaping`): after the `U__`
/// prefix, `__` is `_` and `_<hex>_` is a code point; everything else is
/// literal. Like Prometheus, returns the input unchanged when it is not a
/// valid escape.
pub fn unescape_name(name: &str) -> String {
    let Some(escaped) = name.strip_prefix("U__") else {
        return name.to_string();
    };
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => return name.to_string(),
            Some('_') => out.push('_'),
            Some(first) => {
                let mut value: u32 = 0;
                let mut digit = Some(first);
                // Go's loop gives up after six iterations, closing `_`
                // included, so at most five hex digits are accepted.
                for examined in 0.. {
                    if examined >= 6 {
                        return name.to_string();
                    }
                    match digit {
                        None => return name.to_string(),
                        Some('_') => break,
                        Some(d) => match d.to_digit(16) {
                            Some(v) => value = value * 16 + v,
                            None => return name.to_string(),
                        },
                    }
                    digit = chars.next();
                }
                match char::from_u32(value) {
                    Some(c) => out.push(c),
                    None => return name.to_string(),
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_like_prometheus() {
        assert_eq!(unescape_name("U__http_2e_status__code"), "http.status_code");
        // `_c` starts a code point escape that `o` breaks: Go returns the
        // input (the reference's example forgets to double the underscore).
        assert_eq!(
            unescape_name("U__http_2e_status_code"),
            "U__http_2e_status_code"
        );
        assert_eq!(unescape_name("U__a__b"), "a_b");
        assert_eq!(unescape_name("U___1f642_"), "🙂");
        assert_eq!(unescape_name("U___FFFD_"), "\u{FFFD}");
        assert_eq!(unescape_name("plain_name"), "plain_name");
        // Invalid escapes leave the name as it was.
        for bad in [
            "U__a_",
            "U__a_zz_",
            "U__a_1234567_",
            "U__a_d800_",
            "U__a_2e",
            "U__a_10ffff_",
        ] {
            assert_eq!(unescape_name(bad), bad);
        }
        assert_eq!(unescape_name("U__"), "");
    }
}
