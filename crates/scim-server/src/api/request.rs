//! What the server accepts: media types, body size, and how malformed
//! JSON bodies, query strings and paths are answered (always with a SCIM
//! error, never a bare actix error page).
//!
//! Handlers that take a body use `web::Json<serde_json::Value>`; the
//! [`json_config`] registered by the route table makes it accept
//! `application/scim+json` and `application/json` (415 otherwise), refuse
//! bodies over the limit (413) and report unparsable JSON as
//! `invalidSyntax` (400).

use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
use actix_web::mime::Mime;
use actix_web::{HttpRequest, web};
use scim_core::ErrorKind;

use crate::error::Error;

/// Whether a request body's media type is one the SCIM API accepts:
/// `application/scim+json` or `application/json` (parameters such as
/// `charset` allowed).
pub fn is_accepted_media_type(mime: Mime) -> bool {
    mime.type_() == actix_web::mime::APPLICATION
        && (mime.subtype() == actix_web::mime::JSON
            || (mime.subtype() == "scim" && mime.suffix() == Some(actix_web::mime::JSON)))
}

/// The JSON body extractor's configuration.
pub fn json_config(max_body_bytes: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(max_body_bytes)
        .content_type(is_accepted_media_type)
        .content_type_required(true)
        .error_handler(|e, _req: &HttpRequest| json_error(e).into())
}

/// The raw body extractors' configuration (`Bytes`, `String`).
pub fn payload_config(max_body_bytes: usize) -> web::PayloadConfig {
    web::PayloadConfig::new(max_body_bytes)
}

/// Query strings that do not deserialise are 400s.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|e: QueryPayloadError, _req: &HttpRequest| {
        Error::from(scim_core::Error::new(
            ErrorKind::BadRequest,
            format!("invalid query string: {e}"),
        ))
        .into()
    })
}

/// Path segments that do not deserialise are 404s: no such resource.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|e: PathError, _req: &HttpRequest| {
        Error::from(scim_core::Error::not_found(format!(
            "no such resource: {e}"
        )))
        .into()
    })
}

/// The SCIM error for a failed JSON body.
pub fn json_error(e: JsonPayloadError) -> Error {
    let scim = match e {
        JsonPayloadError::OverflowKnownLength { length, limit } => scim_core::Error::new(
            ErrorKind::PayloadTooLarge,
            format!("the request body is {length} bytes; the limit is {limit}"),
        ),
        JsonPayloadError::Overflow { limit } => scim_core::Error::new(
            ErrorKind::PayloadTooLarge,
            format!("the request body exceeds the limit of {limit} bytes"),
        ),
        JsonPayloadError::Payload(e) if super::middleware::is_nul_in_body(&e) => {
            scim_core::Error::invalid_value(e.to_string())
        }
        JsonPayloadError::Payload(PayloadError::Overflow) => {
            scim_core::Error::new(ErrorKind::PayloadTooLarge, "the request body is too large")
        }
        JsonPayloadError::ContentType => scim_core::Error::new(
            ErrorKind::UnsupportedMediaType,
            "send the request body as application/scim+json or application/json",
        ),
        JsonPayloadError::Deserialize(e) => {
            scim_core::Error::invalid_syntax(format!("the request body is not valid JSON: {e}"))
        }
        JsonPayloadError::Payload(e) => scim_core::Error::new(
            ErrorKind::BadRequest,
            format!("the request body could not be read: {e}"),
        ),
        other => return Error::internal(format!("JSON body: {other}")),
    };
    scim.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::StatusCode;
    use actix_web::{App, HttpResponse, test};
    use serde_json::Value;

    async fn echo(body: web::Json<Value>) -> HttpResponse {
        HttpResponse::Ok().json(body.into_inner())
    }

    async fn post(content_type: Option<&str>, body: &str) -> (StatusCode, Value) {
        let app = test::init_service(
            App::new()
                .app_data(json_config(1024))
                .route("/", web::post().to(echo)),
        )
        .await;
        let mut req = test::TestRequest::post()
            .uri("/")
            .set_payload(body.to_owned());
        if let Some(ct) = content_type {
            req = req.insert_header(("content-type", ct));
        }
        let res = test::call_service(&app, req.to_request()).await;
        let status = res.status();
        let body = test::read_body(res).await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    #[actix_web::test]
    async fn both_json_media_types_are_accepted() {
        for ct in [
            "application/scim+json",
            "application/json",
            "application/scim+json; charset=utf-8",
            "Application/JSON",
        ] {
            let (status, body) = post(Some(ct), r#"{"a":1}"#).await;
            assert_eq!(status, StatusCode::OK, "{ct}");
            assert_eq!(body["a"], 1);
        }
    }

    #[actix_web::test]
    async fn other_media_types_are_415() {
        for ct in [Some("text/plain"), Some("application/xml"), None] {
            let (status, body) = post(ct, r#"{"a":1}"#).await;
            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
            assert_eq!(body["status"], "415");
        }
    }

    #[actix_web::test]
    async fn bad_json_is_invalid_syntax() {
        let (status, body) = post(Some("application/scim+json"), r#"{"a":"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["scimType"], "invalidSyntax");
    }

    #[actix_web::test]
    async fn large_bodies_are_413() {
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(2000));
        let (status, body) = post(Some("application/scim+json"), &big).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["status"], "413");
    }
}
