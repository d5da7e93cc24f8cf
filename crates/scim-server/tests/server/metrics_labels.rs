//! Metric labels come only from bounded sets: made-up HTTP methods and
//! unmatched paths must not grow `/metrics` or the process's memory.

use futures::StreamExt;
use reqwest::{Method, StatusCode};

use crate::harness::Ctx;

/// The process's anonymous resident memory in bytes (`RssAnon`; plain RSS
/// would count SQLite's memory-mapped database file). The server runs in
/// this process.
fn rss_anon() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssAnon in /proc/self/status");
    kb * 1024
}

/// The number of sample lines (series) in a `/metrics` body.
fn series(text: &str) -> usize {
    text.lines().filter(|l| !l.starts_with('#')).count()
}

async fn metrics(ctx: &Ctx) -> String {
    let res = ctx.get("/metrics", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.expect("metrics body")
}

/// Sends `count` requests built by `request` on 8 connections at a time.
async fn flood(ctx: &Ctx, count: usize, request: impl Fn(usize) -> (Method, String)) {
    let requests: Vec<_> = (0..count).map(&request).collect();
    futures::stream::iter(requests)
        .map(|(method, path)| {
            let req = ctx.client.request(method, ctx.url(&path));
            async move {
                // Any answer will do (404, 405); only the labels matter.
                let res = req.send().await.expect("request");
                let _ = res.bytes().await;
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
}

/// 3,000 distinct 4 KB method names and 3,000 distinct unmatched paths.
const REQUESTS: usize = 3_000;

/// Anonymous memory the flood may add: generous, since other tests run in
/// the same process. With the raw method as a label, this flood took
/// RssAnon from 84 to 430 MB and `/metrics` to 189 MB (45,000 series);
/// with bounded labels it adds about 10 MB.
const MEMORY_BOUND: u64 = 128 * 1024 * 1024;

backend_test!(
    made_up_methods_and_paths_do_not_grow_metrics_or_memory,
    |ctx| async move {
        // Warm up: the labels a normal client produces exist already.
        flood(&ctx, 20, |i| (Method::GET, format!("/warm/{i}"))).await;
        flood(&ctx, 20, |i| {
            let name = format!("WARM{i}");
            (
                Method::from_bytes(name.as_bytes()).unwrap(),
                "/healthz".into(),
            )
        })
        .await;
        // /metrics itself, so that its own series exist before counting.
        metrics(&ctx).await;
        let before = metrics(&ctx).await;
        let memory_before = rss_anon();

        flood(&ctx, REQUESTS, |i| {
            let name = format!("M{i:05}{}", "X".repeat(4096));
            (
                Method::from_bytes(name.as_bytes()).unwrap(),
                "/scim/v2/Users".into(),
            )
        })
        .await;
        flood(&ctx, REQUESTS, |i| {
            (Method::GET, format!("/no/such/{i}/{}", "p".repeat(512)))
        })
        .await;

        let after = metrics(&ctx).await;
        let memory_after = rss_anon();
        let grown = memory_after.saturating_sub(memory_before);
        eprintln!(
            "metrics: {} -> {} series, {} -> {} bytes; RssAnon {} -> {} MB",
            series(&before),
            series(&after),
            before.len(),
            after.len(),
            memory_before / (1024 * 1024),
            memory_after / (1024 * 1024),
        );
        // The made-up methods share the `other` label on the one route
        // they hit; the unmatched paths share `unmatched`.
        assert!(
            after.contains(r#"method="other",route="/scim/v2/Users",status="405""#),
            "no series for made-up methods in {}",
            &after[..after.len().min(4096)]
        );
        assert!(!after.contains("XXXX"), "a made-up method became a label");
        assert!(!after.contains("/no/such"), "a request path became a label");
        // One new label set appears (other on /scim/v2/Users: its counter
        // and histogram lines); nothing per request.
        let added = series(&after).saturating_sub(series(&before));
        assert!(
            added <= 16,
            "{added} new series after {REQUESTS} made-up methods and paths"
        );
        assert!(
            after.len() < before.len() + 4 * 1024,
            "/metrics grew from {} to {} bytes",
            before.len(),
            after.len()
        );
        assert!(
            grown < MEMORY_BOUND,
            "anonymous memory grew by {} MB",
            grown / (1024 * 1024)
        );
    }
);
