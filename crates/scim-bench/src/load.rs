//! The load generator: a fixed number of requests in flight over
//! keep-alive connections, for a bounded time and count per figure.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::seed::{Seeded, user};
use crate::target::{Ceiling, Server};

/// How hard and how long.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Requests in flight.
    pub concurrency: usize,
    /// Time per figure.
    pub duration: Duration,
    /// Most requests per figure.
    pub max_requests: u64,
    /// The figures to measure (all when empty).
    pub only: Vec<String>,
}

/// One measured figure.
#[derive(Debug)]
struct Stats {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    requests: u64,
    /// What the first failed request got (status and body, or the
    /// transport error), so that a rare failure can be told apart.
    first_error: Option<String>,
}

/// A small deterministic generator per task.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What one request of a figure is.
#[derive(Debug, Clone)]
enum Kind {
    Ceiling,
    GetById,
    Filter,
    Page,
    CursorPage,
    Create,
    Patch,
}

#[derive(Debug)]
struct Shared {
    client: Client,
    base: String,
    token: String,
    ceiling: String,
    ids: Vec<String>,
    users: u64,
    /// The number of the next user created (see [`create_base`]).
    created: AtomicU64,
}

/// Where the numbers of created users start: above any seeded user, and
/// different for each run (100,000 numbers per second of the clock), so
/// that a run on a kept database does not create the userNames of an
/// earlier run's create phase again (which would answer 409).
fn create_base() -> u64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    1_000_000_000 + secs * 100_000
}

impl Shared {
    fn request(&self, kind: &Kind, rng: &mut Rng, cursor: &str) -> reqwest::RequestBuilder {
        let pick = rng.next();
        let id = || {
            self.ids
                .get((pick % self.ids.len().max(1) as u64) as usize)
                .cloned()
                .unwrap_or_default()
        };
        let b = match kind {
            Kind::Ceiling => return self.client.get(&self.ceiling),
            Kind::GetById => self.client.get(format!("{}/Users/{}", self.base, id())),
            Kind::Filter => {
                let n = rng.next() % self.users.max(1);
                self.client
                    .get(format!("{}/Users", self.base))
                    .query(&[("filter", format!("userName eq \"user{n}\""))])
            }
            Kind::Page => self
                .client
                .get(format!("{}/Users", self.base))
                .query(&[("count", "100")]),
            Kind::CursorPage => self
                .client
                .get(format!("{}/Users", self.base))
                .query(&[("count", "100"), ("cursor", cursor)]),
            Kind::Create => {
                let n = self.created.fetch_add(1, Ordering::Relaxed);
                self.client
                    .post(format!("{}/Users", self.base))
                    .header("content-type", "application/scim+json")
                    .body(user(n).to_string())
            }
            Kind::Patch => {
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "title", "value": format!("T{}", rng.next() % 1000)}]
                });
                self.client
                    .request(Method::PATCH, format!("{}/Users/{}", self.base, id()))
                    .header("content-type", "application/scim+json")
                    .body(body.to_string())
            }
        };
        b.bearer_auth(&self.token)
    }
}

async fn measure(plan: &Plan, shared: &Arc<Shared>, kind: &Kind) -> Stats {
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..plan.concurrency {
        let (shared, counter, errors, first_error, kind) = (
            shared.clone(),
            counter.clone(),
            errors.clone(),
            first_error.clone(),
            kind.clone(),
        );
        let (duration, max) = (plan.duration, plan.max_requests);
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) * 0x2545_F491));
            let mut latencies: Vec<u32> = Vec::new();
            let mut cursor = String::new();
            while start.elapsed() < duration && counter.fetch_add(1, Ordering::Relaxed) < max {
                let sent = Instant::now();
                let result = shared.request(&kind, &mut rng, &cursor).send().await;
                let failure = match result {
                    Ok(res) => {
                        let status = res.status();
                        match (&kind, res.bytes().await) {
                            (_, Ok(body)) if !status.is_success() => {
                                // A walk that failed starts again.
                                cursor.clear();
                                Some(format!(
                                    "{status}: {}",
                                    String::from_utf8_lossy(&body[..body.len().min(300)])
                                ))
                            }
                            (Kind::CursorPage, Ok(body)) => {
                                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                                cursor = v["nextCursor"].as_str().unwrap_or("").to_owned();
                                None
                            }
                            (_, Ok(_)) => None,
                            (_, Err(e)) => Some(format!("{status}, body not read: {e}")),
                        }
                    }
                    Err(e) => Some(format!("transport: {e}")),
                };
                latencies.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                if let Some(why) = failure {
                    errors.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut first) = first_error.lock() {
                        first.get_or_insert(why);
                    }
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        if let Ok(l) = t.await {
            all.extend(l);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |us| f64::from(*us) / 1000.0)
    };
    Stats {
        rate: all.len() as f64 / elapsed.max(1e-9),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors: errors.load(Ordering::Relaxed),
        requests: all.len() as u64,
        first_error: first_error.lock().ok().and_then(|mut f| f.take()),
    }
}

/// Whether the server has the endpoint: not 404/405 for one request.
async fn missing(shared: &Arc<Shared>, kind: &Kind) -> Option<StatusCode> {
    let mut rng = Rng(7);
    match shared.request(kind, &mut rng, "").send().await {
        Ok(r)
            if r.status() == StatusCode::NOT_FOUND
                || r.status() == StatusCode::METHOD_NOT_ALLOWED =>
        {
            Some(r.status())
        }
        _ => None,
    }
}

/// Measures every figure and prints one line each.
pub async fn run_all(
    plan: &Plan,
    server: &Server,
    ceiling: &Ceiling,
    seeded: &Seeded,
) -> Result<(), String> {
    let client = Client::builder()
        .pool_max_idle_per_host(plan.concurrency)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| e.to_string())?;
    let shared = Arc::new(Shared {
        client,
        base: server.base.clone(),
        token: server.token.clone(),
        ceiling: ceiling.url.clone(),
        ids: seeded.ids.clone(),
        users: seeded.users,
        created: AtomicU64::new(create_base()),
    });
    // Warm up connections and caches.
    let warm = Plan {
        duration: Duration::from_secs(1),
        ..plan.clone()
    };
    measure(&warm, &shared, &Kind::Ceiling).await;
    measure(&warm, &shared, &Kind::Filter).await;
    let ceiling_stats = measure(plan, &shared, &Kind::Ceiling).await;
    println!(
        "{:<18} {:>10} {:>10} {:>10} {:>9}",
        "figure", "req/s", "p50 ms", "p99 ms", "ceiling"
    );
    print_line("ceiling", &ceiling_stats, ceiling_stats.rate);
    for (name, kind) in [
        ("get_by_id", Kind::GetById),
        ("filter_eq", Kind::Filter),
        ("page_100", Kind::Page),
        ("cursor_page_100", Kind::CursorPage),
        ("create", Kind::Create),
        ("patch", Kind::Patch),
    ] {
        if !plan.only.is_empty() && !plan.only.iter().any(|o| o == name) {
            continue;
        }
        if let Some(status) = missing(&shared, &kind).await {
            println!("{name:<18} skipped: endpoint missing ({})", status.as_u16());
            continue;
        }
        let stats = measure(plan, &shared, &kind).await;
        print_line(name, &stats, ceiling_stats.rate);
    }
    Ok(())
}

fn print_line(name: &str, s: &Stats, ceiling: f64) {
    let errors = if s.errors > 0 {
        format!("  ({} errors of {})", s.errors, s.requests)
    } else {
        String::new()
    };
    println!(
        "{name:<18} {:>10.0} {:>10.2} {:>10.2} {:>8.1}%{errors}",
        s.rate,
        s.p50_ms,
        s.p99_ms,
        100.0 * s.rate / ceiling.max(1e-9)
    );
    if let Some(why) = &s.first_error {
        println!("# {name}: first failure: {}", why.replace('\n', " "));
    }
}
