//! The provisioning log: every exchange a client of the engine has with an
//! application (retries, verification reads and reconciliation pages
//! included), collected by an [`scim_client::Observer`] and written to
//! `provisioning_log` after the pair's work.

use std::sync::{Arc, Mutex};

use scim_client::Exchange;

use crate::store::{LogEntry, TenantId};

/// Collects the exchanges of one piece of work.
#[derive(Debug, Default)]
pub struct Collector {
    exchanges: Mutex<Vec<(Exchange, chrono::DateTime<chrono::Utc>)>>,
}

impl scim_client::Observer for Collector {
    fn observe(&self, exchange: Exchange) {
        let at = crate::store::now_utc()
            - chrono::Duration::from_std(exchange.duration).unwrap_or_default();
        match self.exchanges.lock() {
            Ok(mut v) => v.push((exchange, at)),
            Err(poisoned) => poisoned.into_inner().push((exchange, at)),
        }
    }
}

impl Collector {
    /// A collector to give a client.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Takes what was collected so far, as log entries about one resource
    /// (or none) of `application_id`.
    pub fn take(&self, application_id: i64, resource: Option<(&str, &str)>) -> Vec<LogEntry> {
        let taken = match self.exchanges.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        taken
            .into_iter()
            .map(|(x, at)| LogEntry {
                id: 0,
                application_id,
                resource_type: resource.map(|(t, _)| t.to_owned()),
                resource_id: resource.map(|(_, id)| id.to_owned()),
                method: x.method,
                url: x.url,
                request_body: x.request_body,
                status: x.status.map(i32::from),
                response_body: x.response_body,
                error: x.error,
                at,
                duration_ms: i64::try_from(x.duration.as_millis()).unwrap_or(i64::MAX),
            })
            .collect()
    }
}

/// Writes entries to the log; a failure to log is reported, never fatal to
/// the work that was done.
pub async fn write(
    storage: Arc<dyn crate::store::Storage>,
    tenant: TenantId,
    entries: Vec<LogEntry>,
) {
    if entries.is_empty() {
        return;
    }
    let result = tokio::task::spawn_blocking(move || storage.append_log(tenant, &entries)).await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => log::warn!("provisioning log: {e}"),
        Err(e) => log::warn!("provisioning log: {e}"),
    }
}
