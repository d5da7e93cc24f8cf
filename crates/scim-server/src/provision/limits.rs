//! Per-application limits applied by the workers of one process: a token
//! bucket of `rate_per_second` requests (bursts of one second's worth) and
//! at most `max_concurrency` pairs in flight. Several processes on one
//! database each apply them: N processes may together send N times the
//! rate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use scim_client::RateLimiter;
use tokio::sync::Semaphore;

use crate::store::Application;

/// The limits of one application, as last configured.
#[derive(Debug, Clone)]
pub struct AppLimits {
    /// Shared by every client built for the application.
    pub limiter: Option<RateLimiter>,
    /// Permits for pairs in flight.
    pub slots: Arc<Semaphore>,
    key: (Option<u64>, i32),
}

/// The limits of every application seen, shared by the workers of a
/// process (clone it into each [`super::EngineOptions`]).
#[derive(Debug, Clone, Default)]
pub struct Limits {
    apps: Arc<Mutex<HashMap<i64, AppLimits>>>,
}

impl Limits {
    /// The limits of `app`, created (or renewed after a settings change)
    /// on first use.
    pub fn of(&self, app: &Application) -> AppLimits {
        let rate = app
            .fields
            .rate_per_second
            .filter(|r| r.is_finite() && *r > 0.0);
        let concurrency = app.fields.max_concurrency.max(1);
        let key = (rate.map(f64::to_bits), concurrency);
        let mut apps = match self.apps.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(l) = apps.get(&app.id).filter(|l| l.key == key) {
            return l.clone();
        }
        let limits = AppLimits {
            limiter: rate.map(|r| {
                // Bursts of one second's worth, at least one request.
                let burst = u32::try_from(r.ceil() as i64).unwrap_or(1).max(1);
                RateLimiter::new(r, burst)
            }),
            slots: Arc::new(Semaphore::new(usize::try_from(concurrency).unwrap_or(1))),
            key,
        };
        apps.insert(app.id, limits.clone());
        limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ApplicationFields, TenantId};

    fn app(rate: Option<f64>, concurrency: i32) -> Application {
        Application {
            id: 7,
            tenant_id: TenantId(1),
            fields: ApplicationFields {
                name: "a".into(),
                base_url: "http://127.0.0.1:9".into(),
                auth_type: "none".into(),
                credentials: None,
                mapping: "{}".into(),
                managed_attributes: "[]".into(),
                deprovision: "{}".into(),
                rate_per_second: rate,
                max_concurrency: concurrency,
                enabled: true,
                reconcile_interval_seconds: None,
                group_deprovision: Default::default(),
            },
            quarantined_until: None,
            quarantine_reason: None,
            consecutive_failures: 0,
            last_reconciled: None,
            created: chrono::Utc::now(),
        }
    }

    #[test]
    fn limits_are_shared_and_follow_settings() {
        let limits = Limits::default();
        let a = limits.of(&app(Some(5.0), 2));
        let b = limits.clone().of(&app(Some(5.0), 2));
        // One semaphore for every worker of the process.
        assert!(Arc::ptr_eq(&a.slots, &b.slots));
        assert_eq!(a.slots.available_permits(), 2);
        let held = a.slots.clone().try_acquire_owned().unwrap();
        assert_eq!(b.slots.available_permits(), 1);
        drop(held);
        assert_eq!(a.limiter.as_ref().map(RateLimiter::per_second), Some(5.0));
        // New settings, new limits.
        let c = limits.of(&app(None, 3));
        assert!(!Arc::ptr_eq(&a.slots, &c.slots));
        assert_eq!(c.slots.available_permits(), 3);
        assert!(c.limiter.is_none());
    }
}
