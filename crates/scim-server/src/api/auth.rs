//! Bearer-token authentication: the [`Auth`] extractor turns the
//! `Authorization` header into a [`Principal`] (tenant, token, scopes), and
//! [`Auth::require`] checks a scope. The tenant always comes from the token.
//! Requests with a body are authenticated earlier, by the request limits
//! ([`super::limits::guard`]), which leave the principal for the extractor.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::{AppState, blocking};
use crate::error::{AuthFailure, Error, Result};
use crate::store::Principal;
use crate::tokens::{Scope, cached_principal};

/// An authenticated request.
#[derive(Debug, Clone)]
pub struct Auth {
    /// Who is calling.
    pub principal: Principal,
    realm: Arc<str>,
}

impl Auth {
    /// An authenticated principal (for tests and internal callers).
    pub fn new(principal: Principal, realm: &str) -> Self {
        Self {
            principal,
            realm: realm.into(),
        }
    }

    /// Fails with 403 `insufficient_scope` unless the token has `scope`.
    pub fn require(&self, scope: Scope) -> Result<()> {
        if self.principal.scopes.allows(scope) {
            Ok(())
        } else {
            Err(Error::Auth {
                failure: AuthFailure::InsufficientScope(scope),
                realm: self.realm.to_string(),
            })
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme
/// case-insensitive). `None` when there is no bearer credential.
pub fn bearer_token(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The principal of an `Authorization` header value: 401 (`Missing`) for
/// no bearer credential, 401 (`InvalidToken`) for an unknown, revoked or
/// expired token. A token verified moments ago needs no database trip.
pub async fn authenticate(state: &web::Data<AppState>, header: &HeaderValue) -> Result<Principal> {
    let realm = &state.settings.auth_realm;
    let fail = |failure| Error::Auth {
        failure,
        realm: realm.clone(),
    };
    let Some(token) = bearer_token(header.as_bytes()) else {
        return Err(fail(AuthFailure::Missing));
    };
    if let Some(principal) = cached_principal(token) {
        return Ok(principal);
    }
    let token = token.to_owned();
    let storage = state.storage.clone();
    blocking(move || storage.authenticate(&token))
        .await?
        .ok_or_else(|| fail(AuthFailure::InvalidToken))
}

impl FromRequest for Auth {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = req.headers().get(header::AUTHORIZATION).cloned();
        // The request limits authenticated it already (api/limits.rs).
        let known = req.extensions().get::<Principal>().copied();
        Box::pin(async move {
            let state =
                state.ok_or_else(|| Error::internal("application state is not registered"))?;
            let realm = state.settings.auth_realm.clone();
            if let Some(principal) = known {
                return Ok(Auth::new(principal, &realm));
            }
            let Some(header) = header else {
                return Err(Error::Auth {
                    failure: AuthFailure::Missing,
                    realm,
                });
            };
            let principal = authenticate(&state, &header).await?;
            Ok(Auth::new(principal, &realm))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TenantId;
    use crate::tokens::Scopes;
    use scim_core::ErrorKind;

    fn auth(scopes: &[Scope]) -> Auth {
        Auth::new(
            Principal {
                tenant_id: TenantId(1),
                token_id: 7,
                scopes: Scopes::of(scopes),
            },
            "scim",
        )
    }

    #[test]
    fn read_scope_reads_but_does_not_write() {
        let reader = auth(&[Scope::Read]);
        assert!(reader.require(Scope::Read).is_ok());
        let e = reader.require(Scope::Write).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Forbidden);
        assert!(matches!(
            e,
            Error::Auth {
                failure: AuthFailure::InsufficientScope(Scope::Write),
                ..
            }
        ));
    }

    #[test]
    fn write_scope_includes_read() {
        let writer = auth(&[Scope::Write]);
        assert!(writer.require(Scope::Read).is_ok());
        assert!(writer.require(Scope::Write).is_ok());
        assert!(auth(&[]).require(Scope::Read).is_err());
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer_token(b"bearer   abc  "), Some("abc"));
        assert_eq!(bearer_token(b"Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer_token(b"Bearer "), None);
        assert_eq!(bearer_token(b"Bearer"), None);
        assert_eq!(bearer_token(b"\xff\xfe"), None);
    }
}
