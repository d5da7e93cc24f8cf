//! Seeding users through the store's import path.

use std::time::{Duration, Instant};

use scim_core::schema::SchemaRegistry;
use scim_server::db::{DatabaseUrl, PoolOptions};
use scim_server::store::{ImportMode, ImportStore, Store, StoreOptions, TenantStore, WriteContext};
use serde_json::{Value, json};

/// What seeding produced.
#[derive(Debug)]
pub struct Seeded {
    /// How long it took.
    pub elapsed: Duration,
    /// Ids of a sample of the users (every user up to 20,000).
    pub ids: Vec<String>,
    /// How many users there are.
    pub users: u64,
}

/// The user number `i`: `user{i}`, two emails, a name, an enterprise part.
pub fn user(i: u64) -> Value {
    let title = ["Engineer", "Manager", "Analyst", "Designer"][(i % 4) as usize];
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "externalId": format!("ext-{i}"),
        "userName": format!("user{i}"),
        "name": {"givenName": format!("Given{i}"), "familyName": format!("Family{}", i % 1000)},
        "displayName": format!("User Number {i}"),
        "title": title,
        "active": i % 10 != 0,
        "emails": [
            {"value": format!("user{i}@example.com"), "type": "work", "primary": true},
            {"value": format!("u{i}@home.example.org"), "type": "home"}
        ],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": format!("{i}"),
            "department": format!("Dept {}", i % 50)
        }
    })
}

/// Seeds `n` users into tenant `bench` in transactions of `batch`.
pub fn seed(url: &str, n: u64, batch: u64) -> Result<Seeded, String> {
    let url = DatabaseUrl::parse(url).map_err(|e| e.to_string())?;
    let store = Store::open(
        &url,
        StoreOptions {
            pool: PoolOptions {
                size: 2,
                timeout: Duration::from_secs(30),
            },
            migrate: true,
            events: None,
        },
    )
    .map_err(|e| e.to_string())?;
    let tenant = store.ensure_tenant("bench").map_err(|e| e.to_string())?;
    let users = SchemaRegistry::core()
        .resource_schema("User")
        .ok_or("no User resource type")?;
    let ctx = WriteContext {
        tenant_id: tenant.id,
        actor: None,
    };
    let start = Instant::now();
    let mut ids = Vec::new();
    let mut next = 0;
    let mut last_report = Instant::now();
    while next < n {
        let end = (next + batch.max(1)).min(n);
        let docs: Vec<Value> = (next..end).map(user).collect();
        let created = store
            .import_resources(ctx, &users, docs, ImportMode::Create)
            .map_err(|e| format!("import at user {next}: {e}"))?;
        if ids.len() < 20_000 {
            ids.extend(created.into_iter().take(20_000 - ids.len()));
        }
        next = end;
        if last_report.elapsed() > Duration::from_secs(30) {
            eprintln!(
                "# seeded {next} users in {:.0} s",
                start.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
    }
    let elapsed = start.elapsed();
    // Statistics for the planner (PostgreSQL) after a bulk load.
    if let Ok(mut conn) = store.conn() {
        use diesel::connection::SimpleConnection;
        if let Err(e) = conn.batch_execute("ANALYZE") {
            eprintln!("# ANALYZE failed: {e}");
        }
    }
    Ok(Seeded {
        elapsed,
        ids,
        users: n,
    })
}
