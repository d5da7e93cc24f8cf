//! Middleware: the request log and metrics around every request, and the
//! early refusal of bodies that declare a length over the limit.

use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use scim_core::ErrorKind;

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
    let method = req.method().to_string();
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
            .observe_request(&method, &route, status.as_u16(), elapsed);
    }
    log::info!(
        target: "scim_server::access",
        "{method} {path} {} {:.3}ms",
        status.as_u16(),
        elapsed.as_secs_f64() * 1000.0
    );
    result
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
