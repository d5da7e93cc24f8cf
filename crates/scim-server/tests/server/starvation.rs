//! One client must not exhaust or stall the server for the others (issue
//! 15): stalled request bodies, password hashing inside the write gate,
//! noisy /Bulk tenants. These run with the default limits.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use scim_server::tokens::Scope;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::Ctx;

/// Anonymous memory of this process (the server runs in it), in bytes:
/// `RssAnon`, which unlike RSS leaves out SQLite's memory-mapped file.
fn rss_anon() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssAnon in /proc/self/status");
    kb * 1024
}

/// The host:port of the server.
fn addr(ctx: &Ctx) -> String {
    ctx.base.trim_start_matches("http://").to_owned()
}

/// The request head of a POST to `path` declaring a `length`-byte body.
fn post_head(ctx: &Ctx, path: &str, token: Option<&str>, length: usize) -> String {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/scim+json\r\n\
         Content-Length: {length}\r\n\r\n",
        addr(ctx)
    )
}

/// Reads what the server answers on `stream` until it closes or `wait`
/// passes; the status code, if a status line came.
async fn read_status(stream: &mut TcpStream, wait: Duration) -> Option<u16> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + wait;
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&got);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

backend_test!(
    auth_and_scope_are_checked_before_the_body,
    |ctx| async move {
        let reader = ctx.token("acme", &[Scope::Read]);
        // Headers declaring a large body, and no body byte: the answer must
        // come without waiting for it.
        for (token, status) in [
            (Some(reader.as_str()), 403),
            (None, 401),
            (Some("bogus"), 401),
        ] {
            let mut stream = TcpStream::connect(addr(&ctx)).await.unwrap();
            let head = post_head(&ctx, "/scim/v2/Users", token, 900_000);
            stream.write_all(head.as_bytes()).await.unwrap();
            let got = read_status(&mut stream, Duration::from_secs(5)).await;
            assert_eq!(got, Some(status), "token {token:?}");
        }
        // Searches are reads: a read token may send their bodies.
        let res = ctx
            .send(
                Method::POST,
                "/scim/v2/Users/.search",
                &reader,
                Some(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]})),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    }
);

/// Slow clients this test opens at once.
const SLOW_CLIENTS: usize = 200;

/// The body each declares (just under the 1 MiB body limit).
const DECLARED: usize = 1_040_000;

/// What each sends of it before it stalls.
const SENT: usize = 1_000_000;

/// Growth of anonymous memory the test tolerates (200 buffered bodies are
/// 200 MB and more).
const MEMORY_BOUND: u64 = 120 * 1024 * 1024;

backend_test!(stalled_bodies_do_not_exhaust_memory, |ctx| async move {
    let writer = ctx.token("acme", &[Scope::Write]);
    let reader = ctx.token("acme", &[Scope::Read]);
    let before = rss_anon();
    let chunk = vec![b' '; 64 * 1024];
    let mut clients = Vec::new();
    for _ in 0..SLOW_CLIENTS {
        let head = post_head(&ctx, "/scim/v2/Users", Some(&writer), DECLARED);
        let address = addr(&ctx);
        let chunk = chunk.clone();
        clients.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(address).await.ok()?;
            stream.write_all(head.as_bytes()).await.ok()?;
            let mut sent = 0;
            while sent < SENT {
                let n = chunk.len().min(SENT - sent);
                // A refused client's writes stop being read: give up then.
                let write = stream.write_all(&chunk[..n]);
                match tokio::time::timeout(Duration::from_secs(5), write).await {
                    Ok(Ok(())) => sent += n,
                    _ => break,
                }
            }
            // Stall: keep the connection open, send nothing more.
            Some(stream)
        }));
    }
    let mut streams = Vec::new();
    for client in clients {
        streams.push(client.await.unwrap());
    }
    let open = streams.iter().flatten().count();
    // Let the server read what it will.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stalled = rss_anon();
    // Another client of the same tenant is still served.
    let res = ctx.get("/scim/v2/Users?count=1", Some(&reader)).await;
    assert_eq!(res.status(), StatusCode::OK);
    drop(streams);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_anon();
    let mb = |b: u64| b / (1024 * 1024);
    eprintln!(
        "RssAnon: {} MB before, {} MB with {open} stalled clients, {} MB after they left",
        mb(before),
        mb(stalled),
        mb(after)
    );
    assert!(
        stalled.saturating_sub(before) < MEMORY_BOUND,
        "anonymous memory grew by {} MB while clients stalled",
        mb(stalled.saturating_sub(before))
    );
    assert!(
        after.saturating_sub(before) < MEMORY_BOUND,
        "anonymous memory stayed {} MB up after the clients left",
        mb(after.saturating_sub(before))
    );
    assert_eq!(ctx.get("/healthz", None).await.status(), StatusCode::OK);
});

/// Users per noisy bulk request, each with a password.
const BULK_USERS: usize = 100;

/// Noisy clients sending bulk requests at once.
const NOISY_CLIENTS: usize = 4;

/// The bound on the quiet tenant's latencies while the noisy one loads.
const LATENCY_BOUND: Duration = Duration::from_secs(2);

fn bulk_of_users(client: usize) -> Value {
    let ops: Vec<Value> = (0..BULK_USERS)
        .map(|i| {
            json!({
                "method": "POST",
                "path": "/Users",
                "bulkId": format!("u{i}"),
                "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("noisy-{client}-{i}"), "password": format!("pw-{client}-{i}")}
            })
        })
        .collect();
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops})
}

/// The `q`-quantile of `samples`.
fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[i]
}

backend_test!(noisy_bulks_do_not_starve_other_tenants, |ctx| async move {
    let noisy = ctx.token("noisy", &[Scope::Write]);
    let quiet = ctx.token("quiet", &[Scope::Read]);
    let ctx = std::sync::Arc::new(ctx);
    let started = Instant::now();
    let mut bulks = Vec::new();
    for client in 0..NOISY_CLIENTS {
        let (ctx, noisy) = (ctx.clone(), noisy.clone());
        bulks.push(tokio::spawn(async move {
            let body = bulk_of_users(client);
            // Refused while the tenant has its fill of bulks: wait as told,
            // a bounded number of times.
            for _ in 0..200 {
                let res = ctx
                    .send(Method::POST, "/scim/v2/Bulk", &noisy, Some(&body))
                    .await;
                if res.status == StatusCode::TOO_MANY_REQUESTS {
                    assert_eq!(res.header("retry-after"), "1");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                assert_eq!(res.status, StatusCode::OK, "{}", res.body);
                return res.body["Operations"].as_array().map_or(0, Vec::len);
            }
            panic!("bulk request refused 200 times");
        }));
    }
    let mut gets = Vec::new();
    let mut health = Vec::new();
    while !bulks.iter().all(|b| b.is_finished()) && started.elapsed() < Duration::from_secs(300) {
        let t = Instant::now();
        let res = ctx.get("/scim/v2/Users?count=5", Some(&quiet)).await;
        assert_eq!(res.status(), StatusCode::OK);
        gets.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(ctx.get("/healthz", None).await.status(), StatusCode::OK);
        health.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for bulk in bulks {
        assert_eq!(bulk.await.unwrap(), BULK_USERS);
    }
    let (p99, worst) = (quantile(&mut gets, 0.99), quantile(&mut gets, 1.0));
    let health_worst = quantile(&mut health, 1.0);
    eprintln!(
        "{} bulk users in {:.1} s; quiet tenant GET p99 {p99:?} (max {worst:?}, {} samples), \
         /healthz max {health_worst:?}",
        NOISY_CLIENTS * BULK_USERS,
        started.elapsed().as_secs_f64(),
        gets.len()
    );
    assert!(p99 < LATENCY_BOUND, "GET p99 {p99:?}");
    assert!(health_worst < LATENCY_BOUND, "/healthz {health_worst:?}");
});
