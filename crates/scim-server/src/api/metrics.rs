//! `/metrics`: Prometheus text format (version 0.0.4).
//!
//! - `scim_http_requests_total{method,route,status}`: requests answered.
//! - `scim_http_request_duration_seconds{method,route,status}`: latency.
//! - `scim_db_pool_connections`, `scim_db_pool_idle_connections`,
//!   `scim_db_pool_max_connections`: pool use, read when scraped.
//! - `scim_db_pool_checkout_seconds`: how long requests wait for a
//!   connection; `scim_db_pool_timeouts_total`: waits that gave up.
//! - On a SQLite file, `scim_db_writes_total` and
//!   `scim_db_write_commits_total`: the writes of the one writer and the
//!   transactions that committed them (fewer when writes shared one; see
//!   `db::writer`).
//!
//! Every label value comes from a bounded set, so that no client can grow
//! the label set (and memory): `method` is a standard method or `other`
//! ([`super::middleware::method_label`]), `route` the matched route pattern
//! (`/scim/v2/Schemas/{id}`) or `unmatched`, `status` the number.

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use super::AppState;
use crate::error::{Error, Result};
use crate::store::PoolStatus;

/// The server's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    pool_max: IntGauge,
    pool_checkout: Histogram,
    pool_timeouts: IntCounter,
}

fn metric_error(e: prometheus::Error) -> Error {
    Error::internal(format!("metrics: {e}"))
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self> {
        let labels = &["method", "route", "status"];
        let requests = IntCounterVec::new(
            Opts::new("scim_http_requests_total", "HTTP requests answered"),
            labels,
        )
        .map_err(metric_error)?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "scim_http_request_duration_seconds",
                "Time from request to response head",
            ),
            labels,
        )
        .map_err(metric_error)?;
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).map_err(metric_error);
        let pool_connections = gauge("scim_db_pool_connections", "Open database connections")?;
        let pool_idle = gauge(
            "scim_db_pool_idle_connections",
            "Open connections not in use",
        )?;
        let pool_max = gauge(
            "scim_db_pool_max_connections",
            "Most connections the pool opens",
        )?;
        let pool_checkout = Histogram::with_opts(
            HistogramOpts::new(
                "scim_db_pool_checkout_seconds",
                "Time spent waiting for a database connection",
            )
            .buckets(vec![
                0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
            ]),
        )
        .map_err(metric_error)?;
        let pool_timeouts = IntCounter::new(
            "scim_db_pool_timeouts_total",
            "Waits for a database connection that timed out",
        )
        .map_err(metric_error)?;
        let registry = Registry::new();
        registry
            .register(Box::new(requests.clone()))
            .map_err(metric_error)?;
        registry
            .register(Box::new(latency.clone()))
            .map_err(metric_error)?;
        registry
            .register(Box::new(pool_connections.clone()))
            .map_err(metric_error)?;
        registry
            .register(Box::new(pool_idle.clone()))
            .map_err(metric_error)?;
        registry
            .register(Box::new(pool_max.clone()))
            .map_err(metric_error)?;
        registry
            .register(Box::new(pool_checkout.clone()))
            .map_err(metric_error)?;
        registry
            .register(Box::new(pool_timeouts.clone()))
            .map_err(metric_error)?;
        Ok(Self {
            registry,
            requests,
            latency,
            pool_connections,
            pool_idle,
            pool_max,
            pool_checkout,
            pool_timeouts,
        })
    }

    /// Records one answered request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.latency
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// The pool event handler that feeds the checkout metrics.
    pub fn pool_events(&self) -> PoolEvents {
        PoolEvents {
            checkout: self.pool_checkout.clone(),
            timeouts: self.pool_timeouts.clone(),
        }
    }

    /// Every metric in the Prometheus text format, with the pool gauges
    /// read from `pool` now.
    pub fn render(&self, pool: PoolStatus) -> Result<String> {
        self.pool_connections.set(i64::from(pool.connections));
        self.pool_idle.set(i64::from(pool.idle));
        self.pool_max.set(i64::from(pool.max));
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .map_err(metric_error)?;
        let mut text =
            String::from_utf8(buf).map_err(|e| Error::internal(format!("metrics: {e}")))?;
        if let Some(w) = pool.writer {
            for (name, help, value) in [
                (
                    "scim_db_writes_total",
                    "Writes run by the SQLite writer",
                    w.writes,
                ),
                (
                    "scim_db_write_commits_total",
                    "Transactions the SQLite writer committed",
                    w.commits,
                ),
            ] {
                text.push_str(&format!(
                    "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
                ));
            }
        }
        Ok(text)
    }
}

/// Receives r2d2's pool events.
#[derive(Debug)]
pub struct PoolEvents {
    checkout: Histogram,
    timeouts: IntCounter,
}

impl r2d2::HandleEvent for PoolEvents {
    fn handle_checkout(&self, event: r2d2::event::CheckoutEvent) {
        self.checkout.observe(event.duration().as_secs_f64());
    }

    fn handle_timeout(&self, _event: r2d2::event::TimeoutEvent) {
        self.timeouts.inc();
    }
}

/// `GET /metrics`.
pub async fn get_metrics(state: web::Data<AppState>) -> Result<HttpResponse> {
    let text = state.metrics.render(state.storage.pool_status())?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        ))
        .body(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_and_pool_use() {
        let m = Metrics::new().unwrap();
        m.observe_request("GET", "/healthz", 200, Duration::from_millis(3));
        let text = m
            .render(PoolStatus {
                connections: 3,
                idle: 2,
                max: 8,
                writer: Some(crate::db::WriteStats {
                    writes: 7,
                    commits: 5,
                }),
            })
            .unwrap();
        for line in [
            "# TYPE scim_db_writes_total counter",
            "scim_db_writes_total 7",
            "scim_db_write_commits_total 5",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(
            text.contains(
                r#"scim_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains("scim_http_request_duration_seconds_bucket"));
        assert!(text.contains("scim_db_pool_connections 3"));
        assert!(text.contains("scim_db_pool_idle_connections 2"));
        assert!(text.contains("scim_db_pool_max_connections 8"));
    }
}
