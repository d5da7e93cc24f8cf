//! The HTTP surface: the route table, handlers per area, authentication,
//! request/response plumbing, and the one error-to-response conversion.

pub mod access;
pub mod admin;
pub mod applications;
pub mod assignments;
pub mod audit;
pub mod auth;
pub mod bulk;
pub mod cursor;
pub mod discovery;
pub mod error;
pub mod etag;
pub mod groups;
pub mod health;
pub mod limits;
pub mod list;
pub mod me;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod playbooks;
pub mod provisioning;
pub mod reconcile;
pub mod render;
pub mod request;
pub mod resources;
pub mod reviews;
pub mod routes;
pub mod rules;
pub mod users;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use scim_core::schema::SchemaRegistry;
use serde_json::Value;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::store::Storage;

/// The SCIM media type (RFC 7644 section 8.1).
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// The prefix of the SCIM protocol endpoints.
pub const SCIM_PREFIX: &str = "/scim/v2";

/// What every handler can reach.
pub struct AppState {
    /// The storage capabilities.
    pub storage: Arc<dyn Storage>,
    /// The schemas and resource types served.
    pub registry: Arc<SchemaRegistry>,
    /// The settings in force.
    pub settings: Arc<Settings>,
    /// The public base URL of the SCIM API, without a trailing slash.
    pub base_url: String,
    /// Request and pool metrics.
    pub metrics: Arc<metrics::Metrics>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Runs blocking work (diesel calls) on actix's blocking thread pool,
/// which the server sizes to the database pool.
pub async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    web::block(f)
        .await
        .map_err(|e| Error::internal(format!("blocking task failed: {e}")))?
}

/// A SCIM JSON response.
pub fn scim_json(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static(SCIM_CONTENT_TYPE),
        ))
        .body(body.to_string())
}
