//! Peak memory of a reconciliation: reconciles an application whose target
//! (a second instance of our server, its own process) holds N users, and
//! prints the reconciling process's peak resident set (VmHWM) before and
//! after, for each N. Memory should not grow with N: accounts are streamed
//! a page at a time.
//!
//! ```sh
//! cargo build -p scim-server && cargo run -p scim-server --example reconcile_memory -- 10000 100000
//! ```
//!
//! Each N runs in a fresh child process (`measure`), so one size's peak
//! does not hide another's. The target is, by default, a small synthetic
//! SCIM service in another child process (`serve`: users generated on the
//! fly, index paging), so the figures are the reconciler's own and the run
//! is not bound by the target's listing speed. With `--ours` first, the
//! target is our `scim-server` binary (next to this example's directory)
//! over a database filled by the bulk import (`seed`). Linux only (reads
//! `/proc/self/status`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use scim_core::schema::SchemaRegistry;
use scim_server::db::{DatabaseUrl, PoolOptions};
use scim_server::provision::reconcile::ReconcileOptions;
use scim_server::provision::{Engine, EngineOptions};
use scim_server::secrets::SecretKey;
use scim_server::store::{
    ApplicationFields, ApplicationStore, ImportMode, ImportStore, Storage, Store, StoreOptions,
    TenantStore, TokenStore, WriteContext,
};
use scim_server::tokens::{Scope, Scopes};
use serde_json::json;

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

type Res<T> = std::result::Result<T, String>;

fn open(path: &Path) -> Res<Store> {
    let url = DatabaseUrl::parse(&path.display().to_string()).map_err(|e| e.to_string())?;
    Store::open(
        &url,
        StoreOptions {
            pool: PoolOptions {
                size: 4,
                timeout: Duration::from_secs(30),
            },
            migrate: true,
            events: None,
        },
    )
    .map_err(|e| e.to_string())
}

/// Peak and current resident set, in KiB.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// `seed N DB`: N users in DB; prints a write token.
fn seed(n: u64, db: &Path) -> Res<()> {
    let store = open(db)?;
    let tenant = store.ensure_tenant("down").map_err(|e| e.to_string())?;
    let users = SchemaRegistry::core()
        .resource_schema("User")
        .ok_or("no User schema")?;
    let ctx = WriteContext {
        tenant_id: tenant.id,
        actor: None,
    };
    let mut next = 0;
    while next < n {
        let end = (next + 2000).min(n);
        let docs = (next..end)
            .map(|i| {
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                       "userName": format!("user{i:07}"), "displayName": format!("User {i}"),
                       "externalId": format!("ext-{i}"), "active": true,
                       "emails": [{"value": format!("user{i}@example.com"), "type": "work"}]})
            })
            .collect();
        store
            .import_resources(ctx, &users, docs, ImportMode::Create)
            .map_err(|e| e.to_string())?;
        next = end;
    }
    let token = store
        .create_token(tenant.id, "bench", Scopes::of(&[Scope::Write]))
        .map_err(|e| e.to_string())?;
    println!("{}", token.secret);
    Ok(())
}

/// `measure N URL TOKEN DIR`: reconciles and prints the figures.
async fn measure(n: u64, url: &str, token: &str, dir: &Path) -> Res<()> {
    let store = open(&dir.join("up.db"))?;
    let tenant = store.ensure_tenant("up").map_err(|e| e.to_string())?;
    let key = SecretKey::from_base64(KEY).map_err(|e| e.to_string())?;
    let name = "target";
    let sealed = if token == "-" {
        None
    } else {
        Some(
            key.seal(
                token.as_bytes(),
                &scim_server::api::applications::credential_context(tenant.id.0, name),
            )
            .map_err(|e| e.to_string())?,
        )
    };
    let mapping = scim_server::api::applications::default_mapping();
    let app = store
        .create_application(
            tenant.id,
            &ApplicationFields {
                name: name.into(),
                base_url: url.into(),
                auth_type: if sealed.is_some() { "bearer" } else { "none" }.into(),
                credentials: sealed,
                managed_attributes: json!(mapping.keys().collect::<Vec<_>>()).to_string(),
                mapping: serde_json::Value::Object(mapping).to_string(),
                deprovision: json!({"action": "deactivate"}).to_string(),
                rate_per_second: None,
                max_concurrency: 4,
                enabled: true,
                reconcile_interval_seconds: None,
                group_deprovision: Default::default(),
            },
        )
        .map_err(|e| e.to_string())?;
    let storage: Arc<dyn Storage> = Arc::new(store);
    // The target is a server on this machine: allow loopback.
    let options = EngineOptions {
        outbound: Arc::new(scim_server::provision::outbound::OutboundPolicy::allow_loopback()),
        ..EngineOptions::default()
    };
    let engine = Engine::new(storage.clone(), Some(key), options);
    let (before, _) = rss();
    let started = Instant::now();
    let report = engine
        .reconcile(
            tenant.id,
            app.id,
            ReconcileOptions {
                repair: false,
                dry_run: false,
                trigger: "manual",
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let took = started.elapsed().as_secs_f64();
    let (peak, now) = rss();
    if let Some(e) = report.error {
        return Err(e);
    }
    // Time spent waiting for the target, from the request log.
    let log = storage
        .read_log(tenant.id, Some(app.id), None, None, 100_000)
        .map_err(|e| e.to_string())?;
    let http_ms: i64 = log.iter().map(|e| e.duration_ms).sum();
    println!(
        "# {} requests to the target took {:.1} s of the run",
        log.len(),
        http_ms as f64 / 1000.0
    );
    println!(
        "{n} accounts: read {} users, {} orphans in {took:.1} s ({:.0} accounts/s); \
         peak RSS {:.1} MiB (before the run {:.1} MiB, after {:.1} MiB)",
        report.counts.remote_users,
        report.counts.orphans,
        report.counts.remote_users as f64 / took,
        peak as f64 / 1024.0,
        before as f64 / 1024.0,
        now as f64 / 1024.0,
    );
    Ok(())
}

/// `serve N PORT`: a minimal SCIM target holding N generated users (index
/// paging, no groups, no ServiceProviderConfig), one connection at a time.
fn serve(n: u64, port: u16) -> Res<()> {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            continue;
        }
        // Skip the headers (bounded).
        for _ in 0..100 {
            let mut line = String::new();
            if reader.read_line(&mut line).map_or(true, |r| r == 0) || line == "\r\n" {
                break;
            }
        }
        let target = request_line.split_whitespace().nth(1).unwrap_or("/");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let param = |name: &str| {
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == name)
                .and_then(|(_, v)| v.parse::<u64>().ok())
        };
        let (status, body) = if path.ends_with("/Users") || path.ends_with("/Groups") {
            let total = if path.ends_with("/Users") { n } else { 0 };
            let start = param("startIndex").unwrap_or(1).max(1);
            let count = param("count").unwrap_or(100).min(1000);
            let resources: Vec<serde_json::Value> = (start - 1..(start - 1 + count).min(total))
                .map(|i| {
                    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                           "id": format!("u{i}"), "userName": format!("user{i:07}"),
                           "externalId": format!("ext-{i}"), "displayName": format!("User {i}"),
                           "active": true,
                           "emails": [{"value": format!("user{i}@example.com"), "type": "work"}],
                           "meta": {"resourceType": "User"}})
                })
                .collect();
            (
                "200 OK",
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                       "totalResults": total, "startIndex": start,
                       "itemsPerPage": resources.len(), "Resources": resources})
                .to_string(),
            )
        } else {
            ("404 Not Found", json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "404"}).to_string())
        };
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
    Ok(())
}

fn server_binary() -> Res<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("no target directory")?;
    let bin = dir.join("scim-server");
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not found: cargo build -p scim-server first",
            bin.display()
        ))
    }
}

fn free_port() -> Res<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// Seeds (or generates), serves and measures one size.
fn run_size(n: u64, ours: bool) -> Res<()> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = tempfile_dir()?;
    let port = free_port()?;
    let (mut server, token) = if ours {
        let down = dir.join("down.db");
        let out = Command::new(&exe)
            .args(["seed", &n.to_string()])
            .arg(&down)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let server = Command::new(server_binary()?)
            .arg("--database-url")
            .arg(&down)
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .args(["--provisioning-workers", "0", "serve"])
            .env_remove("SCIM_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        (server, token)
    } else {
        let server = Command::new(&exe)
            .args(["serve", &n.to_string(), &port.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        (server, "-".to_owned())
    };
    let mut ready = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let result = if ready {
        Command::new(&exe)
            .args(["measure", &n.to_string()])
            .arg(format!("http://127.0.0.1:{port}/scim/v2"))
            .arg(&token)
            .arg(&dir)
            .status()
            .map_err(|e| e.to_string())
            .and_then(|s| {
                if s.success() {
                    Ok(())
                } else {
                    Err(format!("measure {n} failed"))
                }
            })
    } else {
        Err("the target did not start".into())
    };
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn tempfile_dir() -> Res<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "reconcile-memory-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("seed") if args.len() == 3 => args[1]
            .parse()
            .map_err(|_| "N must be a number".to_string())
            .and_then(|n| seed(n, Path::new(&args[2]))),
        Some("serve") if args.len() == 3 => {
            let n: u64 = args[1].parse().unwrap_or(0);
            let port: u16 = args[2].parse().unwrap_or(0);
            serve(n, port)
        }
        Some("measure") if args.len() == 5 => {
            let n: u64 = args[1].parse().unwrap_or(0);
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(measure(n, &args[2], &args[3], Path::new(&args[4]))))
        }
        _ => {
            let sizes: Vec<u64> = if args.is_empty() {
                vec![10_000, 100_000]
            } else {
                args.iter().filter_map(|a| a.parse().ok()).collect()
            };
            let ours = args.first().is_some_and(|a| a == "--ours");
            sizes.into_iter().try_for_each(|n| run_size(n, ours))
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
