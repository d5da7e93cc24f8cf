//! `scim-bench push`: the provisioning engine's throughput.
//!
//! ```text
//! cargo build --release -p scim-server -p scim-bench
//! target/release/scim-bench push --users 10000
//! ```
//!
//! Two release servers on fresh databases: a downstream (an application
//! target) and a source with provisioning workers. It seeds N users into
//! the source, measures the downstream's own create rate with direct POSTs
//! (as many in flight as the source has workers), creates a paused
//! application, assigns every user to it, then resumes it and times the
//! engine until every pair is provisioned, checking the downstream count.
//! Then a group of all N users is assigned and timed until pushed (when
//! the engine pushes groups). It prints one line per figure, and the
//! source process's peak resident memory (VmHWM).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};

use crate::{seed, target};

/// The credential key of the bench servers (32 bytes, base64).
const SECRET_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// `scim-bench push` command line.
#[derive(Debug, Parser)]
#[command(name = "scim-bench push", about = "Provisioning engine throughput")]
pub struct PushArgs {
    /// Users pushed.
    #[arg(long, default_value_t = 10_000)]
    users: u64,
    /// Provisioning workers of the source server.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Users POSTed directly to the downstream to measure its create rate.
    #[arg(long, default_value_t = 2_000)]
    direct: u64,
    /// PostgreSQL admin URL: both databases are created there. Default:
    /// SQLite files.
    #[arg(long)]
    postgres: Option<String>,
    /// Longest wait for the engine, in seconds.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
    /// The scim-server binary (default: next to this one).
    #[arg(long)]
    server: Option<std::path::PathBuf>,
}

/// Runs `scim-bench push ARGS...` (`args` without the `push`).
pub fn main(args: impl Iterator<Item = String>) -> std::process::ExitCode {
    let args = PushArgs::parse_from(std::iter::once("scim-bench push".to_owned()).chain(args));
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scim-bench push: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn binary(args: &PushArgs) -> Result<std::path::PathBuf, String> {
    match &args.server {
        Some(b) => Ok(b.clone()),
        None => Ok(std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("scim-server")),
    }
}

/// The source server: `serve` with workers; killed when dropped.
struct Source {
    root: String,
    admin: String,
    scim: String,
    child: Child,
}

impl Drop for Source {
    fn drop(&mut self) {
        // Our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token(bin: &std::path::Path, db: &str, scope: &str) -> Result<String, String> {
    let out = Command::new(bin)
        .args(["token", "create", "--tenant", "bench", "--scope", scope])
        .env("SCIM_DATABASE_URL", db)
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "token create: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

async fn start_source(bin: &std::path::Path, db: &str, workers: usize) -> Result<Source, String> {
    let admin = token(bin, db, "admin")?;
    let scim = token(bin, db, "scim:write")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let child = Command::new(bin)
        .arg("serve")
        .env("SCIM_DATABASE_URL", db)
        .env("SCIM_BIND", format!("127.0.0.1:{port}"))
        .env("SCIM_LOG", "warn")
        .env("SCIM_SECRET_KEY", SECRET_KEY)
        .env("SCIM_PROVISIONING_WORKERS", workers.to_string())
        .env("SCIM_PROVISIONING_INTERVAL", "0.05")
        // The pushed-to targets listen on this machine.
        .env("SCIM_OUTBOUND_ALLOW", "127.0.0.0/8,::1")
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let source = Source {
        root: format!("http://127.0.0.1:{port}"),
        admin,
        scim,
        child,
    };
    let client = reqwest::Client::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Ok(r) = client.get(format!("{}/healthz", source.root)).send().await
            && r.status().is_success()
        {
            return Ok(source);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the source server did not start within 60 s".into())
}

/// Peak resident memory of a process in KiB (VmHWM), if readable.
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let mut req = client.request(method.clone(), url).bearer_auth(token);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/scim+json")
            .body(b.to_string());
    }
    let res = req
        .send()
        .await
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let status = res.status();
    let text = res.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{method} {url}: {status}: {text}"));
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Runs `count` jobs with `concurrency` in flight; job `i` is `f(i)`.
async fn in_flight<F, Fut>(count: u64, concurrency: usize, f: F) -> Result<(), String>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let f = Arc::new(f);
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (next, f) = (next.clone(), f.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<(), String>(());
                }
                f(i).await?;
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// The application's status document.
async fn status(client: &reqwest::Client, src: &Source, app: i64) -> Result<Value, String> {
    send(
        client,
        reqwest::Method::GET,
        &format!("{}/api/v1/applications/{app}/provisioning", src.root),
        &src.admin,
        None,
    )
    .await
}

fn count(st: &Value, status: &str) -> u64 {
    st["counts"][status].as_u64().unwrap_or(0)
}

fn run(args: &PushArgs) -> Result<(), String> {
    let bin = binary(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let source_db = target::Database::create(args.postgres.as_deref())?;
    let down_db = target::Database::create(args.postgres.as_deref())?;
    println!(
        "# scim-bench push: {} users, backend {}, {} workers",
        args.users,
        source_db.backend(),
        args.workers
    );
    let seeded = seed::seed(&source_db.url, args.users, 5_000)?;
    if (seeded.ids.len() as u64) < args.users {
        return Err("more users than the seed keeps ids of (20,000)".into());
    }
    let down = target::Server::start(Some(&bin), &down_db.url)?;
    runtime.block_on(measure(args, &bin, &source_db.url, &down, &seeded.ids))
}

async fn measure(
    args: &PushArgs,
    bin: &std::path::Path,
    source_db: &str,
    down: &target::Server,
    ids: &[String],
) -> Result<(), String> {
    let client = reqwest::Client::new();
    // The downstream's own create rate, as many in flight as workers.
    let started = Instant::now();
    {
        let (client, base, token) = (client.clone(), down.base.clone(), down.token.clone());
        in_flight(args.direct, args.workers, move |i| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            async move {
                let mut doc = seed::user(i);
                doc["userName"] = json!(format!("direct{i}"));
                doc["externalId"] = json!(format!("direct-{i}"));
                send(
                    &client,
                    reqwest::Method::POST,
                    &format!("{base}/Users"),
                    &token,
                    Some(&doc),
                )
                .await
                .map(drop)
            }
        })
        .await?;
    }
    let direct = started.elapsed();
    println!(
        "downstream creates {:>8} users in {:>7.1} s  {:>8.0} users/s  ({} in flight, direct POSTs)",
        args.direct,
        direct.as_secs_f64(),
        args.direct as f64 / direct.as_secs_f64(),
        args.workers
    );

    let src = Arc::new(start_source(bin, source_db, args.workers).await?);
    let app = send(
        &client,
        reqwest::Method::POST,
        &format!("{}/api/v1/applications", src.root),
        &src.admin,
        Some(&json!({
            "name": "downstream",
            "baseUrl": down.base,
            "credentials": {"type": "bearer", "token": down.token},
            "enabled": false,
        })),
    )
    .await?["id"]
        .as_i64()
        .ok_or("no application id")?;
    let started = Instant::now();
    {
        let ids: Arc<Vec<String>> = Arc::new(ids[..args.users as usize].to_vec());
        let (client, src) = (client.clone(), src.clone());
        in_flight(args.users, 8, move |i| {
            let (client, src, ids) = (client.clone(), src.clone(), ids.clone());
            async move {
                send(
                    &client,
                    reqwest::Method::POST,
                    &format!("{}/api/v1/assignments", src.root),
                    &src.admin,
                    Some(&json!({"applicationId": app, "resourceId": ids[i as usize]})),
                )
                .await
                .map(drop)
            }
        })
        .await?;
    }
    println!(
        "assign            {:>8} users in {:>7.1} s  (application paused)",
        args.users,
        started.elapsed().as_secs_f64()
    );

    // Resume: the engine's clock starts.
    let started = Instant::now();
    send(
        &client,
        reqwest::Method::PATCH,
        &format!("{}/api/v1/applications/{app}", src.root),
        &src.admin,
        Some(&json!({"enabled": true})),
    )
    .await?;
    let limit = Duration::from_secs(args.timeout);
    let mut last_report = Instant::now();
    let pushed = loop {
        let st = status(&client, &src, app).await?;
        let done = count(&st, "provisioned");
        if done >= args.users {
            break started.elapsed();
        }
        if count(&st, "dead") > 0 {
            return Err(format!("dead pairs: {st}"));
        }
        if started.elapsed() > limit {
            return Err(format!("only {done} provisioned after {limit:?}"));
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            eprintln!(
                "# {done} provisioned after {:.0} s",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let held = send(
        &client,
        reqwest::Method::GET,
        &format!(
            "{}/Users?count=1&filter=userName%20sw%20%22user%22",
            down.base
        ),
        &down.token,
        None,
    )
    .await?["totalResults"]
        .as_u64()
        .unwrap_or(0);
    println!(
        "engine pushes     {:>8} users in {:>7.1} s  {:>8.0} users/s  ({} workers; downstream holds {held})",
        args.users,
        pushed.as_secs_f64(),
        args.users as f64 / pushed.as_secs_f64(),
        args.workers
    );
    if held != args.users {
        return Err(format!(
            "the downstream holds {held} of {} users",
            args.users
        ));
    }
    println!(
        "engine vs downstream  {:.2} (engine users/s / direct creates/s)",
        (args.users as f64 / pushed.as_secs_f64()) / (args.direct as f64 / direct.as_secs_f64())
    );

    push_group(args, &client, &src, app, ids, down).await?;
    match peak_kib(src.child.id()) {
        Some(kib) => println!(
            "source peak RSS   {:>8.1} MiB (VmHWM of the serve process with {} workers)",
            kib as f64 / 1024.0,
            args.workers
        ),
        None => println!("source peak RSS   unknown (no /proc)"),
    }
    Ok(())
}

/// A group of every pushed user, assigned to the application; timed until
/// its pair is provisioned and the downstream group holds every member.
async fn push_group(
    args: &PushArgs,
    client: &reqwest::Client,
    src: &Source,
    app: i64,
    ids: &[String],
    down: &target::Server,
) -> Result<(), String> {
    let members: Vec<Value> = ids[..args.users as usize]
        .iter()
        .map(|id| json!({"value": id}))
        .collect();
    let group = send(
        client,
        reqwest::Method::POST,
        &format!("{}/scim/v2/Groups", src.root),
        &src.scim,
        Some(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "everyone",
            "members": members,
        })),
    )
    .await?["id"]
        .as_str()
        .ok_or("no group id")?
        .to_owned();
    let started = Instant::now();
    send(
        client,
        reqwest::Method::POST,
        &format!("{}/api/v1/assignments", src.root),
        &src.admin,
        Some(&json!({"applicationId": app, "resourceId": group})),
    )
    .await?;
    let limit = Duration::from_secs(args.timeout);
    let find = format!(
        "{}/Groups?filter=displayName%20eq%20%22everyone%22",
        down.base
    );
    let held = loop {
        let found = send(client, reqwest::Method::GET, &find, &down.token, None).await?;
        let held = found["Resources"][0]["members"]
            .as_array()
            .map_or(0, Vec::len);
        if held as u64 >= args.users {
            break held;
        }
        for status in ["pending", "failed", "dead"] {
            let st = send(
                client,
                reqwest::Method::GET,
                &format!(
                    "{}/api/v1/applications/{app}/provisioning?status={status}",
                    src.root
                ),
                &src.admin,
                None,
            )
            .await?;
            let pair = st["pairs"]
                .as_array()
                .and_then(|p| p.iter().find(|p| p["resourceId"] == json!(group)));
            if let Some(e) = pair.and_then(|p| p["lastError"].as_str())
                && (e.contains("not implemented") || status == "dead")
            {
                println!("group push        skipped: {e}");
                return Ok(());
            }
        }
        if started.elapsed() > limit {
            return Err(format!("group not pushed after {limit:?} ({held} members)"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let elapsed = started.elapsed();
    println!(
        "engine pushes group of {:>6} members in {:>7.1} s  (downstream group holds {held})",
        args.users,
        elapsed.as_secs_f64()
    );
    Ok(())
}
