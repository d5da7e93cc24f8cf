//! Building and running the HTTP server.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use scim_core::schema::{GROUP_SCHEMA, SchemaRegistry, Uniqueness};

use crate::api::{self, AppState, metrics::Metrics};
use crate::config::{DEFAULT_DATABASE_URL, Settings};
use crate::db::DatabaseUrl;
use crate::error::{Error, Result};
use crate::store::{Storage, Store, StoreOptions, TokenStore};

/// Whether the server reacts to SIGTERM / SIGINT itself (the binary) or is
/// stopped through its handle (tests embedding it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signals {
    /// SIGTERM stops gracefully: requests in flight finish first.
    Handle,
    /// Signals are left alone.
    Ignore,
}

/// Opens the store for serving: migrations as configured, metrics hooked
/// to the pool, the schemas of [`schema_registry`].
pub fn open_store(settings: &Settings, metrics: &Metrics) -> Result<Store> {
    let url = settings.database()?;
    log::info!("database: {url}");
    Ok(Store::open(
        &url,
        StoreOptions {
            pool: settings.pool(),
            migrate: settings.auto_migrate,
            events: Some(Box::new(metrics.pool_events())),
        },
    )?
    .with_registry(Arc::new(schema_registry(settings)?))
    .with_audit_key(settings.audit_chain_key()?))
}

/// The schemas and resource types served: the RFC 7643 ones, with Group
/// `displayName` marked unique (`uniqueness: server`) when
/// `--unique-group-names` is on, so that the store enforces it per tenant,
/// case-insensitively, and `/Schemas` says so.
pub fn schema_registry(settings: &Settings) -> Result<SchemaRegistry> {
    let mut registry = SchemaRegistry::core();
    if settings.unique_group_names {
        let mut group = registry
            .schema(GROUP_SCHEMA)
            .map(|s| (*s).clone())
            .ok_or_else(|| Error::internal("the core registry has no Group schema"))?;
        for attr in &mut group.attributes {
            if attr.name == "displayName" {
                attr.uniqueness = Uniqueness::Server;
            }
        }
        registry
            .add_schema(group)
            .map_err(|e| Error::internal(format!("Group schema: {e}")))?;
    }
    Ok(registry)
}

/// The base URL when none is configured: the address actually bound.
pub fn default_base_url(local: SocketAddr) -> String {
    format!("http://{local}{}", api::SCIM_PREFIX)
}

/// Starts serving on `listener`. The returned [`Server`] runs when awaited
/// (or spawned) on an actix system; its handle stops it.
pub fn start(
    settings: Settings,
    storage: Arc<dyn Storage>,
    metrics: Arc<Metrics>,
    listener: TcpListener,
    signals: Signals,
) -> Result<Server> {
    let local = listener.local_addr()?;
    let base_url = settings
        .base_url
        .clone()
        .unwrap_or_else(|| default_base_url(local))
        .trim_end_matches('/')
        .to_owned();
    let workers = settings.worker_count();
    // Diesel calls run on actix's blocking threads; more of them than pool
    // connections only makes them queue on the pool (STACK.md measured
    // 15k-18k instead of 38k requests/s), so size them to the pool.
    let blocking_per_worker = (settings.pool_size as usize).div_ceil(workers).max(1);
    let max_body = settings.max_body_bytes;
    let shutdown = settings.shutdown_timeout_secs;
    let header_timeout = std::time::Duration::from_secs_f64(settings.header_timeout_secs);
    let limits = web::Data::new(api::limits::Limits::new(&settings));
    start_provisioning(&settings, &storage)?;
    let registry = Arc::new(schema_registry(&settings)?);
    start_lifecycle(&settings, &storage, &registry);
    if settings.review_interval > 0.0 {
        let interval = std::time::Duration::from_secs_f64(settings.review_interval);
        actix_web::rt::spawn(api::reviews::run_scheduler(storage.clone(), interval));
    }
    let health = web::Data::from(api::health::Health::monitor(storage.clone())?);
    let state = web::Data::new(AppState {
        storage,
        registry,
        settings: Arc::new(settings),
        base_url,
        metrics,
    });
    let server =
        HttpServer::new(move || app(state.clone(), limits.clone(), health.clone(), max_body))
            .workers(workers)
            .worker_max_blocking_threads(blocking_per_worker)
            .shutdown_timeout(shutdown)
            .client_request_timeout(header_timeout)
            .listen(listener)?;
    let server = match signals {
        Signals::Handle => server,
        Signals::Ignore => server.disable_signals(),
    };
    Ok(server.run())
}

/// The application [`start`] serves on each worker: the routes with their
/// body limit, and the middleware. Public so that in-process drivers (the
/// fuzz targets, with `actix_web::test::init_service`) run exactly what is
/// served.
pub fn app(
    state: web::Data<AppState>,
    limits: web::Data<api::limits::Limits>,
    health: web::Data<api::health::Health>,
    max_body: usize,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .app_data(limits)
        .app_data(health)
        .configure(|cfg| api::routes::configure(cfg, max_body))
        .wrap(from_fn(api::middleware::refuse_nul))
        .wrap(from_fn(api::limits::guard))
        .wrap(from_fn(api::middleware::limit_body))
        .wrap(from_fn(api::middleware::observe))
}

/// Spawns `--provisioning-workers` engine loops on the current actix
/// system; they end with it.
fn start_provisioning(settings: &Settings, storage: &Arc<dyn Storage>) -> Result<()> {
    if settings.provisioning_workers == 0 {
        return Ok(());
    }
    let key = settings
        .secret_key
        .as_deref()
        .map(crate::secrets::SecretKey::from_base64)
        .transpose()?;
    let interval = std::time::Duration::from_secs_f64(settings.provisioning_interval);
    // One set of per-application limits for every worker of the process.
    let limits = crate::provision::limits::Limits::default();
    let outbound = Arc::new(settings.outbound_policy()?);
    for i in 0..settings.provisioning_workers {
        let engine = crate::provision::Engine::new(
            storage.clone(),
            key.clone(),
            crate::provision::EngineOptions {
                owner: format!("{}-{i}", std::process::id()),
                lease: std::time::Duration::from_secs(settings.provisioning_lease),
                limits: limits.clone(),
                outbound: outbound.clone(),
                ..crate::provision::EngineOptions::default()
            },
        );
        actix_web::rt::spawn(engine.run(interval));
    }
    log::info!(
        "{} provisioning worker(s), polling every {:?}",
        settings.provisioning_workers,
        interval
    );
    Ok(())
}

/// Spawns the lifecycle evaluator (rules, temporary access) on the current
/// actix system unless `--lifecycle-interval` is 0.
fn start_lifecycle(
    settings: &Settings,
    storage: &Arc<dyn Storage>,
    registry: &Arc<SchemaRegistry>,
) {
    if settings.lifecycle_interval <= 0.0 {
        return;
    }
    let interval = std::time::Duration::from_secs_f64(settings.lifecycle_interval);
    let lifecycle = crate::lifecycle::Lifecycle::new(storage.clone(), registry.clone());
    actix_web::rt::spawn(lifecycle.run(interval));
    log::info!("lifecycle evaluator running every {interval:?}");
}

/// `scim-server serve`: opens (and migrates) the database, binds, logs how
/// to get a token if none exists, and serves until SIGTERM.
pub async fn serve(settings: Settings) -> Result<()> {
    let metrics = Arc::new(Metrics::new()?);
    let store = open_store(&settings, &metrics)?;
    let active = store.count_active_tokens()?;
    if active == 0 {
        log::warn!(
            "no API token exists yet; create one with: {}",
            token_hint(&settings.database()?)
        );
    }
    let listener = TcpListener::bind(&settings.bind)
        .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", settings.bind)))?;
    let local = listener.local_addr()?;
    let base = settings
        .base_url
        .clone()
        .unwrap_or_else(|| default_base_url(local));
    log::info!("listening on http://{local} (SCIM base URL {base})");
    let server = start(
        settings,
        Arc::new(store),
        metrics,
        listener,
        Signals::Handle,
    )?;
    server.await?;
    log::info!("stopped");
    Ok(())
}

/// The exact command that creates a first token for this database.
pub fn token_hint(url: &DatabaseUrl) -> String {
    let base = "scim-server token create --tenant default --scope scim:write";
    match url {
        DatabaseUrl::Sqlite(path) if path == DEFAULT_DATABASE_URL => base.to_owned(),
        DatabaseUrl::Sqlite(path) => format!("{base} --database-url {}", shell_quote(path)),
        DatabaseUrl::Postgres(_) => format!("{base} (with the same SCIM_DATABASE_URL)"),
    }
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-:".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hints_name_the_database() {
        let hint = |u: &str| token_hint(&DatabaseUrl::parse(u).unwrap());
        assert_eq!(
            hint("scim.db"),
            "scim-server token create --tenant default --scope scim:write"
        );
        assert!(hint("/var/lib/scim/x.db").ends_with("--database-url /var/lib/scim/x.db"));
        assert!(hint("/tmp/my dir/x.db").ends_with("'/tmp/my dir/x.db'"));
        let pg = hint("postgres://u:secret@db/scim");
        assert!(!pg.contains("secret"), "{pg}");
    }
}
