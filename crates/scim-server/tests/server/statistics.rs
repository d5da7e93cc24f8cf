//! PostgreSQL planner statistics after large loads: an import or a /Bulk
//! of at least `LARGE_LOAD_ROWS` resources is followed by `ANALYZE`
//! (the test database runs without autovacuum, like the instance where
//! plans went wrong). On SQLite the loads simply succeed.

use std::time::{Duration, Instant};

use diesel::sql_types::Double;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use reqwest::Method;
use scim_core::schema::SchemaRegistry;
use scim_server::store::stats::LARGE_LOAD_ROWS;
use scim_server::store::{ImportMode, ImportStore, TenantStore, WriteContext};
use scim_server::tokens::Scope;
use serde_json::json;

use crate::groups::USER;
use crate::harness::{Backend, Ctx};

#[derive(QueryableByName)]
struct Tuples {
    #[diesel(sql_type = Double)]
    n: f64,
}

/// `pg_class.reltuples` of `resources`: -1 until the table is first
/// analyzed, then the row count ANALYZE saw.
fn reltuples(ctx: &Ctx) -> f64 {
    let mut conn = diesel::PgConnection::establish(&ctx.db.url).expect("connect");
    diesel::sql_query("SELECT reltuples::float8 AS n FROM pg_class WHERE relname = 'resources'")
        .get_result::<Tuples>(&mut conn)
        .expect("reltuples")
        .n
}

/// Waits (30 s at most: the ANALYZE runs in the background) until the
/// statistics count at least `rows` resources.
async fn wait_for_statistics(ctx: &Ctx, rows: usize) {
    let start = Instant::now();
    loop {
        let n = reltuples(ctx);
        if n >= rows as f64 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no ANALYZE: pg_class.reltuples of resources is {n}, {rows} rows loaded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

backend_test!(
    large_imports_and_bulks_refresh_statistics,
    |ctx| async move {
        let rows = LARGE_LOAD_ROWS;
        // An import.
        let tenant = ctx.store.ensure_tenant("imported").unwrap();
        let users = SchemaRegistry::core().resource_schema("User").unwrap();
        let docs = (0..rows)
            .map(|i| json!({"schemas": [USER], "userName": format!("imported-{i}")}))
            .collect();
        let store = ctx.store.clone();
        tokio::task::spawn_blocking(move || {
            store.import_resources(
                WriteContext {
                    tenant_id: tenant.id,
                    actor: None,
                },
                &users,
                docs,
                ImportMode::Create,
            )
        })
        .await
        .unwrap()
        .unwrap();
        if ctx.backend() == Backend::Postgres {
            wait_for_statistics(&ctx, rows).await;
        }
        // A /Bulk as large.
        let token = ctx.token("bulk", &[Scope::Write]);
        let ops: Vec<_> = (0..rows)
            .map(|i| {
                json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
                   "data": {"schemas": [USER], "userName": format!("bulk-{i}")}})
            })
            .collect();
        let res = ctx
            .send(
                Method::POST,
                "/scim/v2/Bulk",
                &token,
                Some(
                    &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                         "Operations": ops}),
                ),
            )
            .await
            .expect(200);
        assert!(
            res.body["Operations"]
                .as_array()
                .unwrap()
                .iter()
                .all(|o| o["status"] == "201"),
            "{}",
            res.body
        );
        if ctx.backend() == Backend::Postgres {
            wait_for_statistics(&ctx, 2 * rows).await;
        }
    }
);

backend_test!(imports_follow_the_input_policy, |ctx| async move {
    let tenant = ctx.store.ensure_tenant("imported").unwrap();
    let users = SchemaRegistry::core().resource_schema("User").unwrap();
    for doc in [
        json!({"schemas": [USER], "userName": "a\u{0}b"}),
        json!({"schemas": [USER], "userName": "x".repeat(1025)}),
    ] {
        let store = ctx.store.clone();
        let users = users.clone();
        let err = tokio::task::spawn_blocking(move || {
            store.import_resources(
                WriteContext {
                    tenant_id: tenant.id,
                    actor: None,
                },
                &users,
                vec![doc],
                ImportMode::Create,
            )
        })
        .await
        .unwrap()
        .unwrap_err();
        assert!(
            err.to_string().contains("U+0000") || err.to_string().contains("1024"),
            "{err}"
        );
    }
});
