//! `/Users` by id, and `POST /Users` (RFC 7644 sections 3.3 to 3.6). The
//! logic is shared with the other resource types in [`super::resources`];
//! listing and searching (`GET /Users`, `/.search`) live with the query code.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use super::AppState;
use super::auth::Auth;
use super::resources;
use crate::error::Result;

const TYPE: &str = "User";

/// `GET /Users/{id}`.
pub async fn get_user(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    resources::get_one(state, auth, req, TYPE, id.into_inner()).await
}

/// `POST /Users`.
pub async fn create_user(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    resources::create_one(state, auth, req, TYPE, body.into_inner()).await
}

/// `PUT /Users/{id}`.
pub async fn replace_user(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    resources::replace_one(state, auth, req, TYPE, id.into_inner(), body.into_inner()).await
}

/// `PATCH /Users/{id}`.
pub async fn patch_user(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    resources::patch_one(state, auth, req, TYPE, id.into_inner(), body.into_inner()).await
}

/// `DELETE /Users/{id}`.
pub async fn delete_user(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    resources::delete_one(state, auth, req, TYPE, id.into_inner()).await
}
