//! The one place where errors become HTTP responses.
//!
//! Every error answers with the SCIM Error message (RFC 7644 section 3.12)
//! as `application/scim+json`. Authentication failures carry a
//! `WWW-Authenticate: Bearer` challenge (RFC 6750 section 3). Errors with an
//! internal cause (database, I/O, bugs) are logged here with that cause and
//! answered with a generic 500 or 503 that discloses nothing.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

use super::SCIM_CONTENT_TYPE;
use crate::error::{AuthFailure, Error};

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.to_scim().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        if self.is_internal() {
            log::error!("{self}");
        }
        let scim = self.to_scim();
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static(SCIM_CONTENT_TYPE),
        ));
        if let Error::Auth { failure, realm } = self {
            let challenge = match failure {
                AuthFailure::Missing => format!("Bearer realm=\"{realm}\""),
                AuthFailure::InvalidToken => {
                    format!("Bearer realm=\"{realm}\", error=\"invalid_token\"")
                }
                AuthFailure::InsufficientScope(scope) => format!(
                    "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{scope}\""
                ),
            };
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.insert_header((header::WWW_AUTHENTICATE, value));
            }
        }
        // Serialising the error message cannot fail (strings only); an
        // empty body would still carry the right status.
        response.body(serde_json::to_string(&scim).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;
    use scim_core::ErrorKind;

    async fn parts(e: Error) -> (StatusCode, Option<String>, String, serde_json::Value) {
        let response = e.error_response();
        let status = response.status();
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned());
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let body = to_bytes(response.into_body()).await.unwrap();
        (
            status,
            challenge,
            content_type,
            serde_json::from_slice(&body).unwrap(),
        )
    }

    #[actix_web::test]
    async fn scim_errors_keep_their_status_and_type() {
        let e = Error::from(scim_core::Error::new(
            ErrorKind::Uniqueness,
            "userName 'a' is already in use",
        ));
        let (status, challenge, content_type, body) = parts(e).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(challenge.is_none());
        assert_eq!(content_type, SCIM_CONTENT_TYPE);
        assert_eq!(
            body,
            serde_json::json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "409",
                "scimType": "uniqueness",
                "detail": "userName 'a' is already in use"
            })
        );
    }

    #[actix_web::test]
    async fn auth_failures_challenge() {
        let auth = |failure| Error::Auth {
            failure,
            realm: "scim".into(),
        };
        let (status, challenge, _, body) = parts(auth(AuthFailure::Missing)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge.as_deref(), Some("Bearer realm=\"scim\""));
        assert_eq!(body["status"], "401");
        let (_, challenge, _, _) = parts(auth(AuthFailure::InvalidToken)).await;
        assert_eq!(
            challenge.as_deref(),
            Some("Bearer realm=\"scim\", error=\"invalid_token\"")
        );
        let (status, challenge, _, body) = parts(auth(AuthFailure::InsufficientScope(
            crate::tokens::Scope::Write,
        )))
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(challenge.unwrap().contains("insufficient_scope"));
        assert_eq!(body["status"], "403");
    }

    #[actix_web::test]
    async fn internal_errors_say_nothing() {
        let e = Error::internal("secret table name xyz is corrupt");
        let (status, _, _, body) = parts(e).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["detail"], "internal server error");
        let e = Error::Connection("password=hunter2 refused".into());
        let (status, _, _, body) = parts(e).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!body.to_string().contains("hunter2"));
    }
}
