//! `/healthz`: 200 when the database answers, 503 otherwise. Not
//! authenticated, for load balancers and orchestrators.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::{AppState, blocking};

/// How long the health check waits for a database connection.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let storage = state.storage.clone();
    match blocking(move || storage.ping(PING_TIMEOUT)).await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ok"})),
        Err(e) => {
            log::warn!("health check failed: {e}");
            HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
                .json(json!({"status": "unavailable", "detail": "the database does not answer"}))
        }
    }
}
