//! Middleware: the request log and metrics around every request, the
//! early refusal of bodies that declare a length over the limit, and the
//! refusal of U+0000 in paths, query strings and bodies
//! ([`scim_core::input`]).

use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::Payload;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use futures::StreamExt;
use scim_core::ErrorKind;
use scim_core::input::NulScanner;

use super::AppState;
use crate::error::Error;

/// Logs one line per request (method, path without query, status,
/// latency) and records it in the metrics. The query string is left out of
/// the log because filters carry personal data.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let method = method_label(req.method());
    // The log line shows the method as sent, cut so that a made-up
    // method cannot flood the log either.
    let logged_method: String = req.method().as_str().chars().take(16).collect();
    let path = req.path().to_owned();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let result = next.call(req).await;
    let elapsed = start.elapsed();
    let (status, route) = match &result {
        Ok(res) => (res.status(), res.request().match_pattern()),
        Err(e) => (e.as_response_error().status_code(), None),
    };
    let route = route.unwrap_or_else(|| "unmatched".to_owned());
    if let Some(state) = state {
        state
            .metrics
            .observe_request(method, &route, status.as_u16(), elapsed);
    }
    log::info!(
        target: "scim_server::access",
        "{} {path} {} {:.3}ms",
        logged_method,
        status.as_u16(),
        elapsed.as_secs_f64() * 1000.0
    );
    result
}

/// The metric label of a request method: one of the methods the server
/// knows, or `other`. actix accepts any method token, so the raw method
/// would let clients grow the label set (and memory) without bound.
pub fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(&Method, &str); 9] = [
        (&Method::GET, "GET"),
        (&Method::POST, "POST"),
        (&Method::PUT, "PUT"),
        (&Method::PATCH, "PATCH"),
        (&Method::DELETE, "DELETE"),
        (&Method::HEAD, "HEAD"),
        (&Method::OPTIONS, "OPTIONS"),
        (&Method::CONNECT, "CONNECT"),
        (&Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(m, _)| *m == method)
        .map_or("other", |(_, label)| label)
}

/// Answers 413 before reading a body whose `Content-Length` exceeds the
/// limit. Bodies without a declared length are bounded by the extractors.
pub async fn limit_body(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map_or(usize::MAX, |s| s.settings.max_body_bytes);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(length) = declared.filter(|l| *l > limit as u64) {
        let e = Error::from(scim_core::Error::new(
            ErrorKind::PayloadTooLarge,
            format!("the request body is {length} bytes; the limit is {limit}"),
        ));
        let response = e.error_response();
        return Ok(req.into_response(response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// The payload error that stops a body containing U+0000 (`\u0000`);
/// `api::request` answers it as 400 `invalidValue`.
#[derive(Debug)]
pub struct NulInBody;

impl std::fmt::Display for NulInBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body contains the character U+0000, which is not accepted")
    }
}

impl std::error::Error for NulInBody {}

/// Whether a payload error is [`NulInBody`].
pub fn is_nul_in_body(e: &PayloadError) -> bool {
    matches!(e, PayloadError::Io(io) if io.get_ref().is_some_and(|i| i.is::<NulInBody>()))
}

/// The one input policy for every endpoint, before any handler runs
/// (scim-core's [`scim_core::input`]): U+0000 in the path (`%00`) or a
/// query parameter is a 400 at once (`invalidFilter` in `filter`,
/// `invalidValue` elsewhere); a body is read through a
/// [`NulScanner`] that stops it with [`NulInBody`] at the first `\u0000`,
/// so no handler, SCIM or `/api/v1`, ever sees such a string. PostgreSQL
/// cannot store U+0000 and SQLite can: refusing it everywhere gives both
/// databases the same answer.
pub async fn refuse_nul(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Some(e) = nul_in_url(req.path(), req.query_string()) {
        let response = Error::from(e).error_response();
        return Ok(req.into_response(response).map_into_right_body());
    }
    let mut scanner = NulScanner::default();
    let body = req.take_payload().map(move |chunk| {
        let chunk = chunk?;
        if scanner.feed(&chunk) {
            return Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                NulInBody,
            )));
        }
        Ok(chunk)
    });
    let body: std::pin::Pin<Box<dyn futures::Stream<Item = Result<web::Bytes, PayloadError>>>> =
        Box::pin(body);
    req.set_payload(Payload::from(body));
    Ok(next.call(req).await?.map_into_left_body())
}

/// The error for `%00` in a raw (still percent-encoded) path or query.
fn nul_in_url(path: &str, query: &str) -> Option<scim_core::Error> {
    const NUL: &str = "%00";
    if path.contains(NUL) {
        return Some(scim_core::Error::invalid_value(
            "the request path contains the character U+0000, which is not accepted",
        ));
    }
    let pair = query.split('&').find(|p| p.contains(NUL))?;
    let name = pair.split('=').next().unwrap_or_default();
    let detail = format!(
        "the query parameter {} contains the character U+0000, which is not accepted",
        name.replace(NUL, "\\0")
    );
    Some(if name.eq_ignore_ascii_case("filter") {
        scim_core::Error::invalid_filter(detail)
    } else {
        scim_core::Error::invalid_value(detail)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_methods_are_labels() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for made_up in [
            "FOO",
            "get",
            "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        ] {
            let m = Method::from_bytes(made_up.as_bytes()).unwrap();
            assert_eq!(method_label(&m), "other", "{made_up}");
        }
    }

    #[test]
    fn nul_in_paths_and_queries_is_refused() {
        let kind = |path: &str, query: &str| nul_in_url(path, query).map(|e| e.kind());
        assert_eq!(
            kind("/scim/v2/Users/%00", ""),
            Some(ErrorKind::InvalidValue)
        );
        assert_eq!(
            kind(
                "/scim/v2/Users",
                "count=1&FILTER=userName%20eq%20%22a%00%22"
            ),
            Some(ErrorKind::InvalidFilter)
        );
        assert_eq!(
            kind("/api/v1/audit", "actor=a%00"),
            Some(ErrorKind::InvalidValue)
        );
        assert_eq!(kind("/scim/v2/Users/%2500", "filter=%2500"), None);
        assert_eq!(kind("/scim/v2/Users", ""), None);
    }
}
