//! `/healthz`: 200 when the database answers, 503 otherwise. Not
//! authenticated, for load balancers and orchestrators.
//!
//! The answer never waits for the database: a monitor thread of its own
//! (not one of actix's blocking threads) pings the database through the
//! pool every [`PING_INTERVAL`], and `/healthz` reads its last result. It
//! is 503 when the last ping failed, or when none succeeded for
//! [`STALE_AFTER`] (the monitor itself is stuck). A server busy with long
//! requests (bulk loads) still answers at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::error::{Error, Result};
use crate::store::Storage;

/// How long a ping waits for a database connection.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Time between pings.
pub const PING_INTERVAL: Duration = Duration::from_millis(500);

/// How old the last successful ping may be.
const STALE_AFTER: Duration = Duration::from_secs(10);

/// The last outcome of the database ping.
#[derive(Debug)]
pub struct Health {
    ok: AtomicBool,
    last_ok: Mutex<Instant>,
}

impl Health {
    /// Starts the monitor thread for `storage`; it stops once the returned
    /// value is dropped (with the server).
    pub fn monitor(storage: Arc<dyn Storage>) -> Result<Arc<Self>> {
        let health = Arc::new(Self {
            ok: AtomicBool::new(true),
            last_ok: Mutex::new(Instant::now()),
        });
        let weak: Weak<Self> = Arc::downgrade(&health);
        std::thread::Builder::new()
            .name("scim-health".into())
            .spawn(move || {
                loop {
                    let result = storage.ping(PING_TIMEOUT);
                    let Some(health) = weak.upgrade() else {
                        return;
                    };
                    match result {
                        Ok(()) => health.record_ok(),
                        Err(e) => {
                            if health.ok.swap(false, Ordering::SeqCst) {
                                log::warn!("health check failed: {e}");
                            }
                        }
                    }
                    drop(health);
                    std::thread::sleep(PING_INTERVAL);
                }
            })
            .map_err(|e| Error::internal(format!("cannot start the health monitor: {e}")))?;
        Ok(health)
    }

    fn record_ok(&self) {
        *self.last_ok.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
        self.ok.store(true, Ordering::SeqCst);
    }

    /// Whether the database answered the last ping, recently enough.
    pub fn is_ok(&self) -> bool {
        let last = *self.last_ok.lock().unwrap_or_else(PoisonError::into_inner);
        self.ok.load(Ordering::SeqCst) && last.elapsed() < STALE_AFTER
    }
}

/// `GET /healthz`.
pub async fn healthz(health: web::Data<Health>) -> HttpResponse {
    if health.is_ok() {
        HttpResponse::Ok().json(json!({"status": "ok"}))
    } else {
        HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
            .json(json!({"status": "unavailable", "detail": "the database does not answer"}))
    }
}
