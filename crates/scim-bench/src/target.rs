//! What the benchmark talks to: a fresh database, the server process, and
//! the bare actix-web ceiling.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};

/// A database that disappears with the value.
#[derive(Debug)]
pub struct Database {
    /// The URL the server uses.
    pub url: String,
    _dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
    kind: &'static str,
}

fn random_suffix() -> String {
    let mut b = [0u8; 6];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Database {
    /// A SQLite file in a temporary directory, or a new PostgreSQL database
    /// on the server of `postgres`.
    pub fn create(postgres: Option<&str>) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("scim-bench")
            .tempdir_in(std::env::var_os("SCIM_BENCH_DIR").unwrap_or_else(|| "/var/tmp".into()))
            .map_err(|e| e.to_string())?;
        match postgres {
            None => Ok(Self {
                url: dir.path().join("bench.db").to_string_lossy().into_owned(),
                _dir: dir,
                postgres: None,
                kind: "sqlite",
            }),
            Some(admin) => {
                use diesel::{Connection, RunQueryDsl};
                let name = format!("scim_bench_{}", random_suffix());
                let mut conn = diesel::PgConnection::establish(admin).map_err(|e| e.to_string())?;
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .map_err(|e| e.to_string())?;
                let (base, _) = admin
                    .rsplit_once('/')
                    .ok_or("the PostgreSQL URL names no database")?;
                Ok(Self {
                    url: format!("{base}/{name}"),
                    _dir: dir,
                    postgres: Some((admin.to_owned(), name)),
                    kind: "postgres",
                })
            }
        }
    }

    /// An existing database, left in place.
    pub fn existing(url: &str) -> Result<Self, String> {
        Ok(Self {
            url: url.to_owned(),
            _dir: tempfile::tempdir().map_err(|e| e.to_string())?,
            postgres: None,
            kind: if url.starts_with("postgres") {
                "postgres"
            } else {
                "sqlite"
            },
        })
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.kind
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.postgres {
            use diesel::{Connection, RunQueryDsl};
            if let Ok(mut conn) = diesel::PgConnection::establish(admin) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn);
            }
        }
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// The scim-server process.
#[derive(Debug)]
pub struct Server {
    /// `http://127.0.0.1:PORT/scim/v2`.
    pub base: String,
    /// A bearer token with scim:write.
    pub token: String,
    child: Child,
}

impl Server {
    /// Creates a token with the CLI, then starts `serve` and waits until
    /// `/healthz` answers.
    pub fn start(binary: Option<&Path>, database_url: &str) -> Result<Self, String> {
        let binary = match binary {
            Some(b) => b.to_path_buf(),
            None => std::env::current_exe()
                .map_err(|e| e.to_string())?
                .with_file_name("scim-server"),
        };
        let out = Command::new(&binary)
            .args([
                "token",
                "create",
                "--tenant",
                "bench",
                "--scope",
                "scim:write",
            ])
            .env("SCIM_DATABASE_URL", database_url)
            .output()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        if !out.status.success() {
            return Err(format!(
                "token create failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let port = free_port()?;
        let child = Command::new(&binary)
            .arg("serve")
            .env("SCIM_DATABASE_URL", database_url)
            .env("SCIM_BIND", format!("127.0.0.1:{port}"))
            .env("SCIM_LOG", "warn")
            // The benchmark measures the SCIM API: no provisioning worker
            // (it has no applications to push to, and at a million users
            // its scans of the resources took the pool's connections).
            .env("SCIM_PROVISIONING_WORKERS", "0")
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let server = Self {
            base: format!("http://127.0.0.1:{port}/scim/v2"),
            token,
            child,
        };
        let health = format!("http://127.0.0.1:{port}/healthz");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if http_get_ok(&health) {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("the server did not start within 60 s".into())
    }
}

/// A minimal blocking GET (HTTP/1.0) that says whether the answer is 200.
fn http_get_ok(url: &str) -> bool {
    use std::io::{Read, Write};
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let Some((host, path)) = rest.split_once('/') else {
        return false;
    };
    let Ok(mut s) = std::net::TcpStream::connect(host) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200")
}

impl Drop for Server {
    fn drop(&mut self) {
        // Our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fixed ~650-byte SCIM User, what a GET by id returns.
pub const CEILING_BODY: &str = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"2819c223-7f76-453a-919d-413861904646","externalId":"bjensen","userName":"bjensen@example.com","name":{"formatted":"Ms. Barbara J Jensen III","familyName":"Jensen","givenName":"Barbara"},"displayName":"Babs Jensen","emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}],"active":true,"title":"Tour Guide","meta":{"resourceType":"User","created":"2010-01-23T04:56:22.000000Z","lastModified":"2011-05-13T04:42:34.000000Z","version":"W/\"3694e05e9dff590\"","location":"https://example.com/scim/v2/Users/2819c223-7f76-453a-919d-413861904646"}}"#;

/// The bare actix-web server: the ceiling.
#[derive(Debug)]
pub struct Ceiling {
    /// Its URL.
    pub url: String,
    handle: actix_web::dev::ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl Ceiling {
    /// Starts it on a free loopback port with two workers.
    pub fn start() -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let url = format!(
            "http://{}/",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(|| {
                    App::new().route(
                        "/",
                        web::get().to(|| async {
                            HttpResponse::Ok()
                                .content_type("application/scim+json")
                                .body(CEILING_BODY)
                        }),
                    )
                })
                .workers(2)
                .disable_signals()
                .listen(listener);
                match server {
                    Ok(s) => {
                        let s = s.run();
                        let _ = tx.send(Ok(s.handle()));
                        let _ = s.await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        });
        let handle = rx.recv().map_err(|e| e.to_string())??;
        Ok(Self {
            url,
            handle,
            thread: Some(thread),
        })
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
