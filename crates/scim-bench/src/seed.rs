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
    /// How many users the figures pick from (`user0` to `user{users-1}`).
    pub users: u64,
    /// How many users the database holds (more than `users` in a kept
    /// database that earlier runs created users in).
    pub in_database: u64,
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
        "active": !i.is_multiple_of(10),
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
                size: 1,
                timeout: Duration::from_secs(30),
            },
            migrate: true,
            events: None,
        },
    )
    .map_err(|e| e.to_string())?;
    // A large page cache for the connection that writes (a SQLite file has
    // one): a million users are tens of millions of index entries, and a
    // small cache would read most index pages back from the file for every
    // batch.
    if store.backend() == scim_server::db::Backend::Sqlite {
        use diesel::connection::SimpleConnection;
        let mut conn = store.conn().map_err(|e| e.to_string())?;
        scim_server::db::write_transaction(&mut conn, |c| {
            c.batch_execute("PRAGMA cache_size = -2097152")
        })
        .map_err(|e: diesel::result::Error| e.to_string())?;
    }
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
    // Statistics for PostgreSQL's planner after a bulk load. (Not for
    // SQLite: with the sqlite_stat4 samples ANALYZE writes, SQLite
    // re-prepares a statement whenever a bound value changes, which undoes
    // the statement cache; its default estimates already pick the indexes.)
    if store.backend() == scim_server::db::Backend::Postgres
        && let Ok(mut conn) = store.conn()
    {
        use diesel::connection::SimpleConnection;
        if let Err(e) = conn.batch_execute("ANALYZE") {
            eprintln!("# ANALYZE failed: {e}");
        }
    }
    Ok(Seeded {
        elapsed,
        ids,
        users: n,
        in_database: n,
    })
}

/// The users an earlier run seeded: a sample of their ids.
pub fn existing(url: &str, n: u64) -> Result<Seeded, String> {
    use scim_server::store::{Cond, PageRequest, QueryStore, ResourceQuery, Target};
    let url = DatabaseUrl::parse(url).map_err(|e| e.to_string())?;
    let store = Store::open(
        &url,
        StoreOptions {
            pool: PoolOptions {
                size: 1,
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
    let query = ResourceQuery {
        tenant: tenant.id,
        targets: vec![Target {
            rs: users,
            cond: Cond::Const(true),
            sort: None,
            location_prefix: String::new(),
        }],
        sorted: false,
        order: scim_core::messages::SortOrder::Ascending,
    };
    let page = store
        .query_resources(
            &query,
            &PageRequest::Index {
                offset: 0,
                count: 20_000,
            },
        )
        .map_err(|e| e.to_string())?;
    if page.total < n {
        return Err(format!("the database has {} users, not {n}", page.total));
    }
    Ok(Seeded {
        elapsed: Duration::ZERO,
        ids: page.resources.into_iter().map(|r| r.id).collect(),
        users: n,
        in_database: page.total,
    })
}
