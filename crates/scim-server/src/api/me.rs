//! `/Me` (RFC 7644 section 3.11): the User the bearer token is bound to
//! (`scim-server token create --user <id or userName>`). GET, PUT, PATCH
//! and DELETE act on that User exactly as on `/Users/{id}`; responses carry
//! the User's own `Location` (`/Users/{id}`).
//!
//! A token bound to no user gets 404 with a detail saying so. Section 3.11
//! reserves 501 for a provider that does not support `/Me`; this one does,
//! so a 501 would tell the client the wrong thing. POST (self-registration)
//! is not offered: 405.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use super::auth::Auth;
use super::{AppState, blocking, resources};
use crate::error::Result;

const TYPE: &str = "User";

/// The detail of the 404 for a token bound to no user.
pub const UNBOUND: &str = "this token is not bound to a user, so /Me names no resource; \
     create a token with `scim-server token create --user <id or userName>`";

/// The id of the User the request's token is bound to.
async fn bound_user(state: &web::Data<AppState>, auth: &Auth) -> Result<String> {
    let storage = state.storage.clone();
    let token = auth.principal.token_id;
    blocking(move || storage.token_user(token))
        .await?
        .ok_or_else(|| scim_core::Error::not_found(UNBOUND).into())
}

/// `GET /Me`.
pub async fn get_me(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
) -> Result<HttpResponse> {
    auth.require(crate::tokens::Scope::Read)?;
    let id = bound_user(&state, &auth).await?;
    resources::get_one(state, auth, req, TYPE, id).await
}

/// `PUT /Me`.
pub async fn replace_me(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    auth.require(crate::tokens::Scope::Write)?;
    let id = bound_user(&state, &auth).await?;
    resources::replace_one(state, auth, req, TYPE, id, body.into_inner()).await
}

/// `PATCH /Me`.
pub async fn patch_me(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    auth.require(crate::tokens::Scope::Write)?;
    let id = bound_user(&state, &auth).await?;
    resources::patch_one(state, auth, req, TYPE, id, body.into_inner()).await
}

/// `DELETE /Me`.
pub async fn delete_me(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
) -> Result<HttpResponse> {
    auth.require(crate::tokens::Scope::Write)?;
    let id = bound_user(&state, &auth).await?;
    resources::delete_one(state, auth, req, TYPE, id).await
}
