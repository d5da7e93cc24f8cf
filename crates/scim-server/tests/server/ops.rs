//! Operations: health, metrics, body limits.

use reqwest::StatusCode;
use scim_server::tokens::Scope;
use serde_json::json;

use crate::harness::{Backend, Ctx, json_parts, scim_error};

backend_test!(healthz_reports_ok, |ctx| async move {
    let res = ctx.get("/healthz", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "ok"})
    );
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_503_when_the_database_does_not_answer() {
    let ctx = Ctx::start_with(Backend::Sqlite, |s| s.pool_size = 2)
        .await
        .unwrap();
    // Hold every connection of the server's pool: the database no longer
    // answers the health monitor's ping within its timeout. /healthz
    // answers from the monitor's last ping, so it turns 503 within a few
    // seconds and back to 200 once the pool is free again.
    let held: Vec<_> = (0..2).map(|_| ctx.store.conn().unwrap()).collect();
    let res = healthz_until(&ctx, StatusCode::SERVICE_UNAVAILABLE).await;
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    drop(held);
    healthz_until(&ctx, StatusCode::OK).await;
}

/// Polls /healthz (bounded: 10 s) until it answers `status`.
async fn healthz_until(ctx: &Ctx, status: StatusCode) -> reqwest::Response {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let res = ctx.get("/healthz", None).await;
        if res.status() == status || std::time::Instant::now() > deadline {
            assert_eq!(res.status(), status);
            return res;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

backend_test!(
    metrics_count_requests_by_route_and_status,
    |ctx| async move {
        let token = ctx.token("acme", &[Scope::Read]);
        ctx.get(
            "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
            Some(&token),
        )
        .await;
        ctx.get(
            "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group",
            Some(&token),
        )
        .await;
        ctx.get("/scim/v2/Schemas", None).await;
        ctx.get("/no/such/path", None).await;
        let res = ctx.get("/metrics", None).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let text = res.text().await.unwrap();
        for line in [
            r#"scim_http_requests_total{method="GET",route="/scim/v2/Schemas/{id}",status="200"} 2"#,
            r#"scim_http_requests_total{method="GET",route="/scim/v2/Schemas",status="401"} 1"#,
            r#"scim_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
            r#"scim_http_request_duration_seconds_count{method="GET",route="/scim/v2/Schemas/{id}",status="200"} 2"#,
            "scim_db_pool_max_connections 4",
            "# TYPE scim_db_pool_connections gauge",
            "# TYPE scim_db_pool_idle_connections gauge",
            "# TYPE scim_db_pool_checkout_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // The SQLite writer's counters, after one write; PostgreSQL has
        // no single writer.
        let writer = ctx.token("acme", &[Scope::Write]);
        ctx.create(
            "/scim/v2/Users",
            &writer,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "counted"
            }),
        )
        .await;
        let text = ctx.get("/metrics", None).await.text().await.unwrap();
        let counter = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .map(|v| v.parse::<u64>().unwrap())
        };
        match ctx.backend() {
            Backend::Sqlite => {
                let writes = counter("scim_db_writes_total").unwrap();
                let commits = counter("scim_db_write_commits_total").unwrap();
                assert!(writes >= 1, "{text}");
                assert!((1..=writes).contains(&commits), "{text}");
            }
            Backend::Postgres => assert_eq!(counter("scim_db_writes_total"), None),
        }
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_bodies_over_the_limit_are_413() {
    let ctx = Ctx::start_with(Backend::Sqlite, |s| s.max_body_bytes = 2048)
        .await
        .unwrap();
    let token = ctx.token("acme", &[Scope::Write]);
    let big = format!(r#"{{"userName":"{}"}}"#, "x".repeat(4096));
    let res = ctx
        .client
        .post(ctx.url("/scim/v2/Users"))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let (status, content_type, body) = json_parts(res).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(content_type, "application/scim+json");
    assert_eq!(
        body,
        scim_error(
            413,
            None,
            &format!("the request body is {} bytes; the limit is 2048", big.len())
        )
    );
    // The connection is still usable afterwards.
    assert_eq!(ctx.get("/healthz", None).await.status(), StatusCode::OK);
}
