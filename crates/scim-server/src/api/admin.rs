//! What every `/api/v1` management handler does: check the `admin` scope,
//! take the tenant and the audit actor from the token, run the storage
//! calls on the blocking pool, and answer plain JSON (not SCIM's media
//! type).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use super::auth::Auth;
use super::{AppState, blocking};
use crate::error::Result;
use crate::store::TenantId;
use crate::store::audit::{actor_of, with_actor};
use crate::tokens::Scope;

/// The caller of a management request, checked to hold the `admin` scope.
#[derive(Debug, Clone, Copy)]
pub struct Admin {
    /// The token's tenant: every call is scoped to it.
    pub tenant: TenantId,
    /// The token's id.
    pub token: i64,
}

impl Admin {
    /// The caller, or the 403 of a token without the `admin` scope.
    pub fn of(auth: &Auth) -> Result<Self> {
        auth.require(Scope::Admin)?;
        Ok(Self::unchecked(auth))
    }

    /// The caller without the scope check, for endpoints that let other
    /// tokens in on their own terms (reviewers of a campaign).
    pub fn unchecked(auth: &Auth) -> Self {
        Self {
            tenant: auth.principal.tenant_id,
            token: auth.principal.token_id,
        }
    }

    /// The audit actor name of the caller (`token:<id>`).
    pub fn actor(&self) -> String {
        actor_of(Some(self.token))
    }

    /// Runs `f` with the state and the tenant on the blocking pool.
    pub async fn run<T, F>(&self, state: &web::Data<AppState>, f: F) -> Result<T>
    where
        F: FnOnce(&AppState, TenantId) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let st = state.clone();
        let tenant = self.tenant;
        blocking(move || f(&st, tenant)).await
    }

    /// As [`Admin::run`], with the caller recorded as the actor of every
    /// audit entry `f` writes.
    pub async fn run_audited<T, F>(&self, state: &web::Data<AppState>, f: F) -> Result<T>
    where
        F: FnOnce(&AppState, TenantId) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let actor = self.actor();
        self.run(state, move |st, tenant| with_actor(actor, || f(st, tenant)))
            .await
    }
}

/// A JSON response of the management API.
pub fn api_json(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body.to_string())
}

/// 200 with `body`.
pub fn ok(body: &Value) -> HttpResponse {
    api_json(StatusCode::OK, body)
}

/// 201 with the created thing.
pub fn created(body: &Value) -> HttpResponse {
    api_json(StatusCode::CREATED, body)
}

/// 200 with `{"totalResults": n, "items": [...]}`, each item rendered.
pub fn items<T>(things: &[T], render: impl Fn(&T) -> Value) -> HttpResponse {
    let items: Vec<Value> = things.iter().map(render).collect();
    ok(&json!({"totalResults": items.len(), "items": items}))
}

/// 204 after a delete.
pub fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}
