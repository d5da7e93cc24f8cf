//! Request limits: what one client can hold of the server.
//!
//! The [`guard`] middleware runs before any handler and any body
//! extractor:
//!
//! - **Authentication and scope before the body.** A request to an API
//!   route that carries a body is authenticated from its headers, and its
//!   token must hold the scope the route needs ([`body_scope`]) before a
//!   byte of the body is read: no token is 401, a `scim:read` token
//!   sending a POST to `/Users` is 403. The principal is kept in the
//!   request's extensions for the [`super::auth::Auth`] extractor.
//! - **Concurrency caps.** At most `--max-requests-per-token` requests of
//!   one token and `--max-requests-per-tenant` of one tenant are served at
//!   once, and `--bulk-max-concurrent` `/Bulk` requests per tenant; past a
//!   cap the answer is 429 with `Retry-After`.
//! - **Bytes in flight.** A body's declared `Content-Length` (or
//!   `--max-body-bytes` when it declares none) is reserved before it is
//!   read, against `--max-bytes-in-flight-per-token` (429) and
//!   `--max-bytes-in-flight` for the process (503), both with
//!   `Retry-After`, and released when the request ends.
//! - **Body read timeout.** A body not complete within
//!   `--body-timeout-secs` fails its extractor; the answer is 408 and the
//!   connection is closed, so what was buffered is dropped with it.
//!
//! Refusals of a request with a body close the connection as well: the
//! unread body is never buffered.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{ConnectionType, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpResponse, ResponseError, web};
use futures::Stream;
use scim_core::ErrorKind;

use super::{AppState, SCIM_CONTENT_TYPE, SCIM_PREFIX};
use crate::config::Settings;
use crate::error::{AuthFailure, Error};
use crate::store::Principal;
use crate::tokens::Scope;

/// Seconds a refused client is told to wait (`Retry-After`).
const RETRY_AFTER_SECS: u64 = 1;

/// The route of the bulk endpoint.
const BULK_ROUTE: &str = "/scim/v2/Bulk";

/// The caps in force and what is held against them.
#[derive(Debug)]
pub struct Limits {
    caps: Caps,
    held: Mutex<Held>,
}

/// The numbers, from the settings.
#[derive(Debug, Clone, Copy)]
struct Caps {
    max_body_bytes: usize,
    bytes_in_flight: usize,
    bytes_per_token: usize,
    requests_per_token: usize,
    requests_per_tenant: usize,
    bulk_per_tenant: usize,
    body_timeout: Duration,
}

/// What requests in progress hold.
#[derive(Debug, Default)]
struct Held {
    bytes: usize,
    token_bytes: HashMap<i64, usize>,
    token_requests: HashMap<i64, usize>,
    tenant_requests: HashMap<i64, usize>,
    tenant_bulks: HashMap<i64, usize>,
}

/// What one request holds; given back when dropped.
#[derive(Debug)]
struct Permit {
    limits: Arc<Limits>,
    token: i64,
    tenant: i64,
    bytes: usize,
    bulk: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut held = self.limits.held();
        held.bytes -= self.bytes;
        if self.bytes > 0 {
            release(&mut held.token_bytes, self.token, self.bytes);
        }
        release(&mut held.token_requests, self.token, 1);
        release(&mut held.tenant_requests, self.tenant, 1);
        if self.bulk {
            release(&mut held.tenant_bulks, self.tenant, 1);
        }
    }
}

fn release(map: &mut HashMap<i64, usize>, key: i64, n: usize) {
    if let Some(v) = map.get_mut(&key) {
        *v -= n;
        if *v == 0 {
            map.remove(&key);
        }
    }
}

/// Why a request was refused before it was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    TokenRequests,
    TenantRequests,
    TenantBulks,
    TokenBytes,
    ProcessBytes,
}

impl Refusal {
    fn error(self, caps: &Caps) -> Error {
        let (kind, detail) = match self {
            Refusal::TokenRequests => (
                ErrorKind::TooManyRequests,
                format!(
                    "this token already has {} requests in progress",
                    caps.requests_per_token
                ),
            ),
            Refusal::TenantRequests => (
                ErrorKind::TooManyRequests,
                format!(
                    "this tenant already has {} requests in progress",
                    caps.requests_per_tenant
                ),
            ),
            Refusal::TenantBulks => (
                ErrorKind::TooManyRequests,
                format!(
                    "this tenant already has {} bulk requests in progress",
                    caps.bulk_per_tenant
                ),
            ),
            Refusal::TokenBytes => (
                ErrorKind::TooManyRequests,
                "this token's request bodies in progress are at their limit".to_owned(),
            ),
            Refusal::ProcessBytes => (
                ErrorKind::Unavailable,
                "the server is reading too many request bodies; retry shortly".to_owned(),
            ),
        };
        scim_core::Error::new(kind, detail).into()
    }
}

impl Limits {
    /// The caps of `settings`.
    pub fn new(settings: &Settings) -> Self {
        Self {
            caps: Caps {
                max_body_bytes: settings.max_body_bytes,
                bytes_in_flight: settings.max_bytes_in_flight,
                bytes_per_token: settings.max_bytes_in_flight_per_token,
                requests_per_token: settings.max_requests_per_token,
                requests_per_tenant: settings.max_requests_per_tenant,
                bulk_per_tenant: settings.bulk_max_concurrent,
                body_timeout: Duration::from_secs_f64(settings.body_timeout_secs),
            },
            held: Mutex::new(Held::default()),
        }
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        // The counters stay consistent under a panic elsewhere: every
        // update is a few integer operations.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes what a request of `principal` with a body of `bytes` needs,
    /// or says which cap it would pass.
    fn acquire(
        self: &Arc<Self>,
        principal: &Principal,
        bytes: usize,
        bulk: bool,
    ) -> Result<Permit, Refusal> {
        let caps = &self.caps;
        let token = principal.token_id;
        let tenant = principal.tenant_id.0;
        let mut held = self.held();
        let count = |m: &HashMap<i64, usize>, k| m.get(&k).copied().unwrap_or(0);
        if count(&held.token_requests, token) >= caps.requests_per_token {
            return Err(Refusal::TokenRequests);
        }
        if count(&held.tenant_requests, tenant) >= caps.requests_per_tenant {
            return Err(Refusal::TenantRequests);
        }
        if bulk && count(&held.tenant_bulks, tenant) >= caps.bulk_per_tenant {
            return Err(Refusal::TenantBulks);
        }
        if bytes > 0 && count(&held.token_bytes, token) + bytes > caps.bytes_per_token {
            return Err(Refusal::TokenBytes);
        }
        if bytes > 0 && held.bytes + bytes > caps.bytes_in_flight {
            return Err(Refusal::ProcessBytes);
        }
        held.bytes += bytes;
        if bytes > 0 {
            *held.token_bytes.entry(token).or_default() += bytes;
        }
        *held.token_requests.entry(token).or_default() += 1;
        *held.tenant_requests.entry(tenant).or_default() += 1;
        if bulk {
            *held.tenant_bulks.entry(tenant).or_default() += 1;
        }
        Ok(Permit {
            limits: self.clone(),
            token,
            tenant,
            bytes,
            bulk,
        })
    }

    /// Bytes of request bodies reserved right now (for tests and metrics).
    pub fn bytes_in_flight(&self) -> usize {
        self.held().bytes
    }
}

/// The scope a request with a body to `route` (a route pattern) needs
/// before its body is read; `None` when the route only needs a valid token
/// (a reviewer's decision checks its own rights).
pub fn body_scope(route: &str) -> Option<Scope> {
    if route == "/api/v1/reviews/{id}/items/{item}/decision" {
        None
    } else if route.starts_with("/api/v1/") {
        Some(Scope::Admin)
    } else if route.ends_with("/.search") {
        Some(Scope::Read)
    } else {
        Some(Scope::Write)
    }
}

/// Whether `route` (a route pattern) needs a token at all.
fn protected(route: &str) -> bool {
    (route.starts_with(SCIM_PREFIX) || route.starts_with("/api/v1/"))
        && route != "/api/v1/openapi.json"
}

/// The length a request's body may take: its declared `Content-Length`,
/// the largest accepted body when it is sent in chunks, 0 without one.
fn declared_body(req: &ServiceRequest, max_body_bytes: usize) -> usize {
    let headers = req.headers();
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return max_body_bytes;
    }
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(0, |n| {
            usize::try_from(n).unwrap_or(usize::MAX).min(max_body_bytes)
        })
}

/// A response that ends the connection (its unread body is not read).
fn closing(mut response: HttpResponse) -> HttpResponse {
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    response
}

/// The answer to a request refused before its body (if any) was read: a
/// connection with an unread body is closed.
fn before_body(response: HttpResponse, has_body: bool) -> HttpResponse {
    if has_body {
        closing(response)
    } else {
        response
    }
}

/// 429 or 503 with `Retry-After`.
fn refused(e: &Error) -> HttpResponse {
    let mut response = e.error_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
}

/// The 408 of a body that did not arrive in time.
fn body_timed_out(timeout: Duration) -> HttpResponse {
    let body = serde_json::json!({
        "schemas": [scim_core::messages::ERROR_SCHEMA],
        "status": "408",
        "detail": format!(
            "the request body was not received within {} seconds",
            timeout.as_secs_f64()
        ),
    });
    closing(
        HttpResponse::build(StatusCode::REQUEST_TIMEOUT)
            .insert_header((header::CONTENT_TYPE, SCIM_CONTENT_TYPE))
            .body(body.to_string()),
    )
}

/// The request limits (see the module documentation). Registered around
/// the routes; needs [`Limits`] and [`AppState`] as app data.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let (Some(limits), Some(state)) = (
        req.app_data::<web::Data<Limits>>().cloned(),
        req.app_data::<web::Data<AppState>>().cloned(),
    ) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let Some(route) = req.match_pattern().filter(|r| protected(r)) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let caps = limits.caps;
    let bytes = declared_body(&req, caps.max_body_bytes);
    let has_body = bytes > 0;
    let realm = state.settings.auth_realm.clone();
    let fail = |failure| Error::Auth {
        failure,
        realm: realm.clone(),
    };
    let authorization = req.headers().get(header::AUTHORIZATION).cloned();
    let principal = match (authorization, has_body) {
        // Without a body the handler answers for a missing token itself
        // (and a 404 or 405 stays one).
        (None, false) => return Ok(next.call(req).await?.map_into_left_body()),
        (None, true) => Err(fail(AuthFailure::Missing)),
        (Some(value), _) => super::auth::authenticate(&state, &value).await,
    };
    let principal = match principal {
        Ok(p) => p,
        Err(e) => {
            let response = before_body(e.error_response(), has_body);
            return Ok(req.into_response(response).map_into_right_body());
        }
    };
    if has_body
        && let Some(scope) = body_scope(&route)
        && !principal.scopes.allows(scope)
    {
        let response = closing(fail(AuthFailure::InsufficientScope(scope)).error_response());
        return Ok(req.into_response(response).map_into_right_body());
    }
    let bulk = route == BULK_ROUTE && req.method() == Method::POST;
    let permit = match limits.clone().into_inner().acquire(&principal, bytes, bulk) {
        Ok(permit) => permit,
        Err(refusal) => {
            let e = refusal.error(&caps);
            log::debug!("request refused: {e}");
            let response = before_body(refused(&e), has_body);
            return Ok(req.into_response(response).map_into_right_body());
        }
    };
    req.extensions_mut().insert(principal);
    let expired = Arc::new(AtomicBool::new(false));
    if has_body {
        let payload = req.take_payload();
        req.set_payload(Payload::from(Box::pin(Deadline {
            inner: payload,
            sleep: Box::pin(actix_web::rt::time::sleep(caps.body_timeout)),
            expired: expired.clone(),
        })
            as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>));
    }
    let result = next.call(req).await;
    drop(permit);
    if expired.load(Ordering::SeqCst) {
        let response = body_timed_out(caps.body_timeout);
        return match result {
            Ok(res) => Ok(res.into_response(response).map_into_right_body()),
            Err(e) => Err(e),
        };
    }
    Ok(result?.map_into_left_body())
}

/// A request body that fails once its time is up.
struct Deadline {
    inner: Payload,
    sleep: Pin<Box<actix_web::rt::time::Sleep>>,
    expired: Arc<AtomicBool>,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired.load(Ordering::SeqCst) {
            return Poll::Ready(None);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::SeqCst);
            // Whatever arrived is dropped with the payload.
            self.inner = Payload::None;
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body was not received in time",
            )))));
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TenantId;
    use crate::tokens::Scopes;

    fn principal(token: i64, tenant: i64) -> Principal {
        Principal {
            tenant_id: TenantId(tenant),
            token_id: token,
            scopes: Scopes::of(&[Scope::Write]),
        }
    }

    fn limits() -> Arc<Limits> {
        let mut s = Settings::defaults();
        s.max_requests_per_token = 2;
        s.max_requests_per_tenant = 3;
        s.bulk_max_concurrent = 1;
        s.max_bytes_in_flight_per_token = 100;
        s.max_bytes_in_flight = 150;
        Arc::new(Limits::new(&s))
    }

    #[test]
    fn caps_hold_and_release() {
        let l = limits();
        let a1 = l.acquire(&principal(1, 1), 0, false).unwrap();
        let a2 = l.acquire(&principal(1, 1), 0, true).unwrap();
        assert_eq!(
            l.acquire(&principal(1, 1), 0, false).unwrap_err(),
            Refusal::TokenRequests
        );
        assert_eq!(
            l.acquire(&principal(2, 1), 0, true).unwrap_err(),
            Refusal::TenantBulks
        );
        let b = l.acquire(&principal(2, 1), 0, false).unwrap();
        assert_eq!(
            l.acquire(&principal(3, 1), 0, false).unwrap_err(),
            Refusal::TenantRequests
        );
        drop((a1, a2, b));
        let x = l.acquire(&principal(1, 1), 80, false).unwrap();
        assert_eq!(
            l.acquire(&principal(1, 1), 30, false).unwrap_err(),
            Refusal::TokenBytes
        );
        assert_eq!(
            l.acquire(&principal(2, 2), 80, false).unwrap_err(),
            Refusal::ProcessBytes
        );
        let y = l.acquire(&principal(2, 2), 70, false).unwrap();
        assert_eq!(l.bytes_in_flight(), 150);
        drop((x, y));
        assert_eq!(l.bytes_in_flight(), 0);
        let held = l.held();
        assert!(held.token_bytes.is_empty() && held.token_requests.is_empty());
        assert!(held.tenant_requests.is_empty() && held.tenant_bulks.is_empty());
    }

    #[test]
    fn body_scopes_follow_the_routes() {
        assert_eq!(body_scope("/scim/v2/Users"), Some(Scope::Write));
        assert_eq!(body_scope("/scim/v2/Users/.search"), Some(Scope::Read));
        assert_eq!(body_scope("/scim/v2/.search"), Some(Scope::Read));
        assert_eq!(body_scope("/scim/v2/Bulk"), Some(Scope::Write));
        assert_eq!(body_scope("/api/v1/applications"), Some(Scope::Admin));
        assert_eq!(
            body_scope("/api/v1/reviews/{id}/items/{item}/decision"),
            None
        );
        assert!(!protected("/healthz"));
        assert!(!protected("/api/v1/openapi.json"));
        assert!(protected("/scim/v2/Me"));
    }
}
