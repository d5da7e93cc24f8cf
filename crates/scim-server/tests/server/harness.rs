//! Test harness: fresh databases per test (a SQLite file in a temp dir, or a
//! uniquely named PostgreSQL database created through
//! `SCIM_TEST_POSTGRES_URL` and dropped afterwards) and a real server on an
//! ephemeral loopback port.

use std::net::TcpListener;
use std::sync::Arc;
use std::thread::JoinHandle;

use diesel::{Connection, RunQueryDsl};
use scim_server::api::metrics::Metrics;
use scim_server::config::Settings;
use scim_server::server::{self, Signals};
use scim_server::store::{Store, StoreOptions, TenantStore, TokenStore};
use scim_server::tokens::{Scope, Scopes};

/// The environment variable naming the PostgreSQL server used by tests.
pub const POSTGRES_ENV: &str = "SCIM_TEST_POSTGRES_URL";

/// The backends every test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The credential key of test servers (32 bytes, base64).
pub const TEST_SECRET_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Generates `mod $name { fn sqlite(); fn postgres(); }` running the same
/// async body against a served instance of each backend. The PostgreSQL
/// test prints a note and passes when `SCIM_TEST_POSTGRES_URL` is unset.
macro_rules! backend_test {
    // With the test settings adjusted by `$adjust` (an `FnOnce(&mut
    // Settings)`), e.g. the outbound policy's defaults.
    ($name:ident, settings = $adjust:expr, |$ctx:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $ctx =
                    $crate::harness::Ctx::start_with($crate::harness::Backend::Sqlite, $adjust)
                        .await
                        .expect("SQLite is always available");
                $body.await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($ctx) =
                    $crate::harness::Ctx::start_with($crate::harness::Backend::Postgres, $adjust)
                        .await
                else {
                    $crate::harness::skip_note(stringify!($name));
                    return;
                };
                $body.await;
            }
        }
    };
    ($name:ident, |$ctx:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $ctx = $crate::harness::Ctx::start($crate::harness::Backend::Sqlite)
                    .await
                    .expect("SQLite is always available");
                $body.await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($ctx) =
                    $crate::harness::Ctx::start($crate::harness::Backend::Postgres).await
                else {
                    $crate::harness::skip_note(stringify!($name));
                    return;
                };
                $body.await;
            }
        }
    };
}

/// Like `backend_test!` without a server: the body gets a migrated
/// [`Store`] on a fresh database and runs synchronously.
macro_rules! store_test {
    ($name:ident, |$store:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn sqlite() {
                let db = $crate::harness::TestDb::new($crate::harness::Backend::Sqlite)
                    .expect("SQLite is always available");
                let $store = db.open_store();
                $body
            }

            #[test]
            fn postgres() {
                let Some(db) = $crate::harness::TestDb::new($crate::harness::Backend::Postgres)
                else {
                    $crate::harness::skip_note(stringify!($name));
                    return;
                };
                let $store = db.open_store();
                $body
            }
        }
    };
}

/// Says why a PostgreSQL test did nothing.
pub fn skip_note(test: &str) {
    eprintln!("note: {test}::postgres skipped; set {POSTGRES_ENV} to run it");
}

fn random_suffix() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("randomness");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres URL has a scheme");
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, format!("?{q}")),
        None => (rest, String::new()),
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{authority}/{db}{query}")
}

/// A fresh, empty database that disappears with the value.
pub struct TestDb {
    /// The URL to give `--database-url`.
    pub url: String,
    dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl TestDb {
    /// A new database, or `None` for PostgreSQL when it is not configured.
    pub fn new(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => Some(Self {
                url: dir
                    .path()
                    .join("scim.db")
                    .to_str()
                    .expect("utf-8 path")
                    .to_owned(),
                dir,
                postgres: None,
            }),
            Backend::Postgres => {
                let admin = std::env::var(POSTGRES_ENV).ok().filter(|u| !u.is_empty())?;
                let name = format!("scim_test_{}", random_suffix());
                let mut conn = diesel::PgConnection::establish(&admin)
                    .unwrap_or_else(|e| panic!("{POSTGRES_ENV} is set but unusable: {e}"));
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .expect("create test database");
                Some(Self {
                    url: with_database(&admin, &name),
                    dir,
                    postgres: Some((admin, name)),
                })
            }
        }
    }

    /// A temp directory that lives as long as the database.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Opens (and migrates) the database.
    pub fn open_store(&self) -> Store {
        Store::open(
            &scim_server::db::DatabaseUrl::parse(&self.url).expect("url"),
            StoreOptions {
                pool: scim_server::db::PoolOptions {
                    size: 4,
                    timeout: std::time::Duration::from_secs(5),
                },
                migrate: true,
                events: None,
            },
        )
        .expect("open store")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.postgres {
            match diesel::PgConnection::establish(admin) {
                Ok(mut conn) => {
                    let dropped =
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut conn);
                    if let Err(e) = dropped {
                        eprintln!("could not drop test database {name}: {e}");
                    }
                }
                Err(e) => eprintln!("could not drop test database {name}: {e}"),
            }
        }
    }
}

/// A running server on a fresh database.
pub struct Ctx {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub client: reqwest::Client,
    /// The same database the server uses.
    pub store: Store,
    handle: actix_web::dev::ServerHandle,
    thread: Option<JoinHandle<()>>,
    pub db: TestDb,
}

/// The `--outbound-allow` of every test server: downstream servers in
/// tests listen on this machine, which the default policy refuses.
pub fn loopback_allowlist() -> Vec<String> {
    ["127.0.0.0/8", "::1", "localhost"]
        .map(String::from)
        .to_vec()
}

/// Engine options for tests that drive an engine themselves: the defaults,
/// with loopback targets allowed (see [`loopback_allowlist`]).
pub fn engine_options() -> scim_server::provision::EngineOptions {
    scim_server::provision::EngineOptions {
        outbound: Arc::new(scim_server::provision::outbound::OutboundPolicy::allow_loopback()),
        ..scim_server::provision::EngineOptions::default()
    }
}

impl Ctx {
    /// The backend this server stores in.
    pub fn backend(&self) -> Backend {
        match self.store.backend() {
            scim_server::db::Backend::Sqlite => Backend::Sqlite,
            scim_server::db::Backend::Postgres => Backend::Postgres,
        }
    }

    /// A server with the default settings.
    pub async fn start(backend: Backend) -> Option<Self> {
        Self::start_with(backend, |_| {}).await
    }

    /// A server with settings adjusted by `adjust`.
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Option<Self> {
        let db = TestDb::new(backend)?;
        let mut settings = Settings::defaults();
        settings.database_url = db.url.clone();
        settings.pool_size = 4;
        settings.workers = Some(1);
        settings.shutdown_timeout_secs = 1;
        settings.secret_key = Some(TEST_SECRET_KEY.into());
        // Tests drive the engine themselves unless they ask for workers.
        settings.provisioning_workers = 0;
        settings.lifecycle_interval = 0.0;
        settings.outbound_allow = loopback_allowlist();
        adjust(&mut settings);
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let store = server::open_store(&settings, &metrics).expect("open store");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = std::sync::mpsc::channel();
        let storage = Arc::new(store.clone());
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = server::start(settings, storage, metrics, listener, Signals::Ignore)
                    .expect("start server");
                tx.send(server.handle()).expect("handle");
                let _ = server.await;
            });
        });
        let handle = rx.recv().expect("server started");
        Some(Self {
            base,
            client: reqwest::Client::new(),
            store,
            handle,
            thread: Some(thread),
            db,
        })
    }

    /// Stops the server and starts a new one on the same database with
    /// the test defaults adjusted by `adjust` (a restart; the port changes).
    pub fn restart_with(&mut self, adjust: impl FnOnce(&mut Settings)) {
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let mut settings = Settings::defaults();
        settings.database_url = self.db.url.clone();
        settings.pool_size = 4;
        settings.workers = Some(1);
        settings.shutdown_timeout_secs = 1;
        settings.secret_key = Some(TEST_SECRET_KEY.into());
        settings.provisioning_workers = 0;
        settings.lifecycle_interval = 0.0;
        settings.outbound_allow = loopback_allowlist();
        adjust(&mut settings);
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let store = server::open_store(&settings, &metrics).expect("open store");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        self.base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = std::sync::mpsc::channel();
        let storage = Arc::new(store.clone());
        self.thread = Some(std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = server::start(settings, storage, metrics, listener, Signals::Ignore)
                    .expect("start server");
                tx.send(server.handle()).expect("handle");
                let _ = server.await;
            });
        }));
        self.handle = rx.recv().expect("server started");
        self.store = store;
    }

    /// The full URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The SCIM base URL the server uses by default.
    pub fn scim_base(&self) -> String {
        format!("{}/scim/v2", self.base)
    }

    /// A new token for `tenant` (created if needed) with `scopes`.
    pub fn token(&self, tenant: &str, scopes: &[Scope]) -> String {
        let tenant = self.store.ensure_tenant(tenant).expect("tenant");
        self.store
            .create_token(tenant.id, "test", Scopes::of(scopes))
            .expect("token")
            .secret
    }

    /// GET `path` with an optional bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A response: status, headers and JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Res {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: serde_json::Value,
}

impl Res {
    /// A header as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The resource id in the body.
    pub fn id(&self) -> String {
        self.body["id"].as_str().expect("an id").to_owned()
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        self
    }
}

impl Ctx {
    /// Sends `method path` with a bearer token, a JSON body as
    /// application/scim+json, and extra headers.
    pub async fn send_with(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> Res {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        Res {
            status,
            headers,
            body,
        }
    }

    /// [`Ctx::send_with`] without extra headers.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&serde_json::Value>,
    ) -> Res {
        self.send_with(method, path, token, body, &[]).await
    }

    /// POST a resource; asserts 201 and returns the response.
    pub async fn create(&self, path: &str, token: &str, body: serde_json::Value) -> Res {
        self.send(reqwest::Method::POST, path, token, Some(&body))
            .await
            .expect(201)
    }
}

/// `doc` with what changes from run to run replaced by stable text: the
/// base URL by `<base>`, each `(id, label)` by its label wherever it
/// appears in a string, and `meta.created` / `meta.lastModified` by
/// `<time>` (after checking they are RFC 3339 UTC instants).
pub fn redact(doc: &serde_json::Value, base: &str, ids: &[(&str, &str)]) -> serde_json::Value {
    use serde_json::Value;
    fn walk(v: &Value, base: &str, ids: &[(&str, &str)], key: Option<&str>) -> Value {
        match v {
            Value::String(s) => {
                if matches!(key, Some("created" | "lastModified")) {
                    assert!(
                        chrono::DateTime::parse_from_rfc3339(s).is_ok() && s.ends_with('Z'),
                        "{s} is not an RFC 3339 UTC time"
                    );
                    return Value::String("<time>".into());
                }
                let mut out = s.replace(base, "<base>");
                for (id, label) in ids {
                    out = out.replace(id, label);
                }
                Value::String(out)
            }
            Value::Array(items) => {
                Value::Array(items.iter().map(|i| walk(i, base, ids, None)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), walk(v, base, ids, Some(k))))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    walk(doc, base, ids, None)
}

/// A response's status, content type and JSON body.
pub async fn json_parts(
    res: reqwest::Response,
) -> (reqwest::StatusCode, String, serde_json::Value) {
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default();
    let body = res.json().await.expect("JSON body");
    (status, content_type, body)
}

/// The SCIM Error message with this status, scimType and detail.
pub fn scim_error(status: u16, scim_type: Option<&str>, detail: &str) -> serde_json::Value {
    let mut e = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": status.to_string(),
        "detail": detail,
    });
    if let Some(t) = scim_type {
        e["scimType"] = t.into();
    }
    e
}

#[test]
fn database_names_are_replaced_in_urls() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    assert_eq!(
        with_database("postgresql://u:p@h/db?sslmode=disable", "x"),
        "postgresql://u:p@h/x?sslmode=disable"
    );
}
