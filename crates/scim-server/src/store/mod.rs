//! Storage, split by capability: [`TenantStore`], [`TokenStore`],
//! [`ResourceStore`], [`MembershipStore`], [`ChangeLogStore`],
//! [`ApplicationStore`], [`ProvisioningStore`], [`AuditStore`] (the
//! hash-chained audit log; writers append with [`audit::append`] inside
//! their transaction) and [`ReviewStore`] (access reviews), combined by
//! [`Storage`].
//! API and lifecycle code depend on these traits; [`Store`] implements them
//! with diesel over SQLite or PostgreSQL.
//!
//! Every method blocks: call them off the async executor (`web::block`).
//! Every write runs in one transaction that takes SQLite's write lock up
//! front (see [`crate::db::write_transaction`]).

pub(crate) mod access;
mod applications;
pub(crate) mod assignments;
pub mod audit;
pub mod audit_chain;
pub mod engine_state;
pub mod filter_sql;
mod import;
pub mod index;
pub mod lifecycle;
mod memberships;
pub mod provisioning;
pub mod query;
pub mod reconcile;
mod resources;
pub mod reviews;
pub mod stats;
mod stmt;
mod tenants;
mod tokens;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::connection::SimpleConnection;
use scim_core::schema::{ResourceSchema, SchemaRegistry};
use serde_json::Value;

use crate::db::{self, AnyConnection, Backend, DatabaseUrl, Pool, PoolOptions, PooledConnection};
use crate::error::{Error, Result};
use crate::tokens::Scopes;

pub use applications::{
    Application, ApplicationFields, ApplicationStore, Assignment, AssignmentFilter,
};
pub use audit::{AuditEntry, AuditQuery, AuditStore, NewAuditEntry};
pub use audit_chain::{AuditKey, Checkpoint, HeadRef, Verification};
pub use import::{ImportMode, ImportStore};
pub use index::{IndexRow, IndexValue, fold, index_rows};
pub use lifecycle::LifecycleStore;
pub use memberships::{GroupInfo, MemberInfo, MembershipStore};
pub use provisioning::{
    ClaimedPair, LogEntry, PairCounts, PairOutcome, PairState, PairStatus, ProvisioningQueue,
    ProvisioningStore,
};
pub use reviews::{Campaign, Decision, NewCampaign, ReviewItem, ReviewScope, ReviewStore};

pub use query::{
    Cond, FoundResource, KeyValue, PageRequest, QueryPage, QueryStore, ResourceQuery, SortKey,
    Target,
};

/// The id of a tenant. Every resource, token and change belongs to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(pub i64);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Its unique name.
    pub name: String,
    /// When it was created.
    pub created: DateTime<Utc>,
}

/// A token as listed: everything but the secret, which is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The token id (used by `token revoke`).
    pub id: i64,
    /// The tenant the token acts for.
    pub tenant_id: TenantId,
    /// The tenant's name.
    pub tenant_name: String,
    /// A label given at creation.
    pub name: String,
    /// What the token may do.
    pub scopes: Scopes,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When it last authenticated a request (updated at most once a minute).
    pub last_used: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The SCIM id of the User that `/Me` means for this token, if bound.
    pub user_id: Option<String>,
}

/// A newly created token with its secret, which exists only here.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The stored part.
    pub info: TokenInfo,
    /// The secret to hand to the client once.
    pub secret: String,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("info", &self.info)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Who is calling: the result of authenticating a bearer token. The tenant
/// comes from here and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    /// The tenant whose data the request sees.
    pub tenant_id: TenantId,
    /// The token, recorded as the actor of changes.
    pub token_id: i64,
    /// What the token may do.
    pub scopes: Scopes,
}

/// A resource as stored: the canonical document (with `id` and `meta`
/// except `meta.location`, which depends on the base URL) and its row data.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    /// Internal row key (for index joins and cursors; never shown).
    pub pk: i64,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// `User`, `Group`, ...: the resource type id.
    pub resource_type: String,
    /// The SCIM `id`.
    pub id: String,
    /// Bumped on every write; the ETag is `W/"<version>"`.
    pub version: i64,
    /// The document.
    pub document: Value,
    /// The `externalId`, if any.
    pub external_id: Option<String>,
    /// `meta.created`.
    pub created: DateTime<Utc>,
    /// `meta.lastModified`.
    pub last_modified: DateTime<Utc>,
}

impl StoredResource {
    /// The weak ETag of this version.
    pub fn etag(&self) -> String {
        etag(self.version)
    }
}

/// The weak ETag of a version: `W/"<version>"`.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// What a write did, as recorded in the change log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeOp {
    /// The resource was created.
    Create,
    /// The resource was replaced (PUT).
    Replace,
    /// The resource was modified (PATCH).
    Patch,
    /// The resource was deleted.
    Delete,
}

impl ChangeOp {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Create => "create",
            ChangeOp::Replace => "replace",
            ChangeOp::Patch => "patch",
            ChangeOp::Delete => "delete",
        }
    }

    /// The op for a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "create" => ChangeOp::Create,
            "replace" => ChangeOp::Replace,
            "patch" => ChangeOp::Patch,
            "delete" => ChangeOp::Delete,
            _ => return None,
        })
    }
}

/// One row of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Position in the log (increasing).
    pub seq: i64,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The resource type id.
    pub resource_type: String,
    /// The resource id.
    pub resource_id: String,
    /// The version the write produced (for a delete: the last version + 1).
    pub version: i64,
    /// What happened.
    pub op: ChangeOp,
    /// The token that made the change, if a token did.
    pub actor: Option<i64>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Who writes, and for which tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteContext {
    /// The tenant whose data is written.
    pub tenant_id: TenantId,
    /// The token making the change (None for the system).
    pub actor: Option<i64>,
}

impl From<Principal> for WriteContext {
    fn from(p: Principal) -> Self {
        Self {
            tenant_id: p.tenant_id,
            actor: Some(p.token_id),
        }
    }
}

/// Tenants.
pub trait TenantStore {
    /// The tenant called `name`, created if it does not exist.
    fn ensure_tenant(&self, name: &str) -> Result<Tenant>;
    /// The tenant called `name`, if it exists.
    fn find_tenant(&self, name: &str) -> Result<Option<Tenant>>;
}

/// API tokens.
pub trait TokenStore {
    /// Creates a token for a tenant; the secret is in the result only.
    fn create_token(&self, tenant: TenantId, name: &str, scopes: Scopes) -> Result<IssuedToken> {
        self.create_bound_token(tenant, name, scopes, None)
    }
    /// Creates a token for a tenant, bound to the User with SCIM id
    /// `user_id` (what `/Me` means for it) when one is given.
    fn create_bound_token(
        &self,
        tenant: TenantId,
        name: &str,
        scopes: Scopes,
        user_id: Option<&str>,
    ) -> Result<IssuedToken>;
    /// The SCIM id of the User the token is bound to, if any.
    fn token_user(&self, token_id: i64) -> Result<Option<String>>;
    /// The principal a presented secret stands for: `None` for an unknown,
    /// malformed or revoked token.
    fn authenticate(&self, secret: &str) -> Result<Option<Principal>>;
    /// Every token, or those of the tenant called `tenant`, by id.
    fn list_tokens(&self, tenant: Option<&str>) -> Result<Vec<TokenInfo>>;
    /// Revokes a token. `None` if there is no token with that id.
    fn revoke_token(&self, id: i64) -> Result<Option<TokenInfo>>;
    /// The number of tokens that are not revoked, across tenants.
    fn count_active_tokens(&self) -> Result<i64>;
}

/// SCIM resources, their attribute index and the change log, written
/// together in one transaction.
pub trait ResourceStore {
    /// Stores a new resource of type `rs`. The store assigns `id` and
    /// `meta` (version 1) and returns the stored form. A `userName` (or any
    /// attribute the schema marks unique) already taken in the tenant,
    /// compared case-insensitively, is a `uniqueness` (409) error.
    fn insert_resource(
        &self,
        ctx: WriteContext,
        rs: &ResourceSchema,
        document: Value,
    ) -> Result<StoredResource>;

    /// The resource of type `rs` with this id in the tenant, if any.
    fn get_resource(
        &self,
        tenant: TenantId,
        rs: &ResourceSchema,
        id: &str,
    ) -> Result<Option<StoredResource>>;

    /// The resource of type `rs` whose `userName` is `user_name`,
    /// compared case-insensitively (the schema must mark `userName` unique).
    fn find_by_user_name(
        &self,
        tenant: TenantId,
        rs: &ResourceSchema,
        user_name: &str,
    ) -> Result<Option<StoredResource>>;

    /// Reads the current resource and writes what `change` makes of it, in
    /// one transaction (so PATCH is atomic). `expected_version` is an
    /// `If-Match` precondition (412 when it fails). The new document gets
    /// the same `id`, `meta.created`, a new `meta.lastModified` and the next
    /// version; the index rows are rewritten and `op` is logged. When the
    /// new document is the stored one (a PATCH or PUT that changes
    /// nothing), nothing is written: the version, `meta.lastModified` and
    /// the change log stay as they were and the current resource is
    /// returned.
    ///
    /// For a Group the `members` are checked and stored as `{value, type}`
    /// (see [`MembershipStore`]), and the membership rows follow in the same
    /// transaction.
    fn update_resource(
        &self,
        ctx: WriteContext,
        rs: &ResourceSchema,
        id: &str,
        expected_version: Option<i64>,
        op: ChangeOp,
        change: &mut dyn FnMut(&StoredResource) -> Result<Value>,
    ) -> Result<StoredResource>;

    /// Replaces the resource's document (PUT).
    fn replace_resource(
        &self,
        ctx: WriteContext,
        rs: &ResourceSchema,
        id: &str,
        expected_version: Option<i64>,
        document: Value,
    ) -> Result<StoredResource> {
        self.update_resource(
            ctx,
            rs,
            id,
            expected_version,
            ChangeOp::Replace,
            &mut |_| Ok(document.clone()),
        )
    }

    /// Deletes the resource, its index rows, and logs the deletion. A
    /// missing resource is a 404 error. Every group that lists it as a
    /// member gets a new version without it (and a change-log row `patch`)
    /// in the same transaction.
    fn delete_resource(
        &self,
        ctx: WriteContext,
        rs: &ResourceSchema,
        id: &str,
        expected_version: Option<i64>,
    ) -> Result<()>;

    /// The index rows stored for a resource, ordered by path and ordinal
    /// (for tests and diagnostics).
    fn stored_index_rows(&self, tenant: TenantId, pk: i64) -> Result<Vec<IndexRow>>;
}

/// The change log.
pub trait ChangeLogStore {
    /// Up to `limit` changes of the tenant with `seq` greater than `after`.
    fn changes_after(&self, tenant: TenantId, after: i64, limit: i64) -> Result<Vec<Change>>;
}

/// How the connection pool is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Open connections.
    pub connections: u32,
    /// Open connections not checked out.
    pub idle: u32,
    /// The most connections the pool opens.
    pub max: u32,
    /// The writes of a SQLite file and the transactions that committed
    /// them (see [`db::writer`]); `None` where there is no single writer.
    pub writer: Option<db::WriteStats>,
}

/// Liveness of the database.
pub trait HealthCheck {
    /// Checks that the database answers, waiting at most `timeout` for a
    /// connection.
    fn ping(&self, timeout: Duration) -> Result<()>;
    /// The pool's current use.
    fn pool_status(&self) -> PoolStatus;
}

/// Every storage capability.
pub trait Storage:
    TenantStore
    + TokenStore
    + ResourceStore
    + MembershipStore
    + ChangeLogStore
    + QueryStore
    + ImportStore
    + ApplicationStore
    + ProvisioningStore
    + ProvisioningQueue
    + reconcile::ReconcileStore
    + LifecycleStore
    + AuditStore
    + ReviewStore
    + HealthCheck
    + Send
    + Sync
    + 'static
{
}

impl<T> Storage for T where
    T: TenantStore
        + TokenStore
        + ResourceStore
        + MembershipStore
        + ChangeLogStore
        + QueryStore
        + ImportStore
        + ApplicationStore
        + ProvisioningStore
        + ProvisioningQueue
        + reconcile::ReconcileStore
        + LifecycleStore
        + AuditStore
        + ReviewStore
        + HealthCheck
        + Send
        + Sync
        + 'static
{
}

/// The diesel implementation of the storage traits over a connection pool.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    backend: Backend,
    /// The schemas of the resources written (see [`Store::with_registry`]).
    registry: Arc<SchemaRegistry>,
    /// Server secrets read from the database (see [`QueryStore::server_secret`]).
    secrets: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    /// The one writer of a SQLite file, batching this process's writes
    /// (see [`db::writer`]); none for PostgreSQL, whose writers lock rows,
    /// and for an in-memory database, which has one connection.
    write_gate: Option<db::WriteGate>,
    /// Keeps the SQLite checkpoint thread running while any clone of the
    /// store is alive (see [`db::spawn_checkpointer`]).
    _checkpointer: Option<Arc<()>>,
    /// The background `ANALYZE` after large loads (see [`stats`]).
    analyzer: Arc<stats::Analyzer>,
    /// The key of the audit chain (see [`audit_chain`]); none: entries are
    /// chained with unkeyed hashes.
    audit_key: Option<audit_chain::AuditKey>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("pool", &self.pool_status())
            .finish()
    }
}

/// How to open a [`Store`].
#[derive(Debug)]
pub struct StoreOptions {
    /// Pool sizing.
    pub pool: PoolOptions,
    /// Apply pending migrations first.
    pub migrate: bool,
    /// Receives pool events (for metrics).
    pub events: Option<Box<dyn r2d2::HandleEvent>>,
}

impl Store {
    /// Opens the database (creating a SQLite file if needed), applies
    /// pending migrations when asked, and builds the pool. Fails with the
    /// real cause when the database cannot be reached.
    pub fn open(url: &DatabaseUrl, opts: StoreOptions) -> Result<Self> {
        // An in-memory database lives in its one pooled connection, so it is
        // migrated through the pool; a file or server is checked first with
        // a direct connection, which reports the real cause of a failure.
        if !url.is_memory() {
            let mut first = url.establish()?;
            if opts.migrate {
                db::migrations::run_pending(&mut first)?;
            } else if db::migrations::has_pending(&mut first)? {
                return Err(Error::Migration(
                    "the database schema is not up to date: run `scim-server migrate`".into(),
                ));
            }
        }
        let sqlite_file = url.backend() == Backend::Sqlite && !url.is_memory();
        let pool = db::build_pool(url, opts.pool, opts.events, sqlite_file)?;
        let write_gate = sqlite_file.then(|| db::WriteGate::new(url.clone()));
        let checkpointer = match &write_gate {
            Some(gate) => {
                let alive = Arc::new(());
                db::spawn_checkpointer(gate.clone(), Arc::downgrade(&alive))?;
                Some(alive)
            }
            None => None,
        };
        let store = Self {
            pool,
            backend: url.backend(),
            registry: Arc::new(SchemaRegistry::core()),
            secrets: Arc::default(),
            write_gate,
            _checkpointer: checkpointer,
            analyzer: Arc::default(),
            audit_key: None,
        };
        if url.is_memory() {
            db::migrations::run_pending(&mut *store.conn()?)?;
        }
        Ok(store)
    }

    /// Uses `registry` for the writes the store makes by itself (a group
    /// losing a deleted member). It must be the registry the API validates
    /// with, so that derived columns (uniqueness) are computed alike. The
    /// default is [`SchemaRegistry::core`].
    #[must_use]
    pub fn with_registry(mut self, registry: Arc<SchemaRegistry>) -> Self {
        self.registry = registry;
        self
    }

    /// The store with `key` chaining the audit log (see [`audit_chain`]).
    #[must_use]
    pub fn with_audit_key(mut self, key: Option<audit_chain::AuditKey>) -> Self {
        self.audit_key = key;
        self
    }

    /// The key chaining the audit log, if any.
    pub fn audit_key(&self) -> Option<&audit_chain::AuditKey> {
        self.audit_key.as_ref()
    }

    /// Which backend this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `f` in a write transaction (see [`db::write_transaction`]). On
    /// a SQLite file it runs on the writer's own connection, so the write
    /// takes no connection from the pool (readers keep all of it); on
    /// PostgreSQL it runs on a pooled connection.
    ///
    /// Audit entries appended by `f` are chained with the store's audit
    /// key (see [`audit_chain::with_chain_key`]).
    pub fn write<T>(&self, f: impl FnOnce(&mut AnyConnection) -> Result<T>) -> Result<T> {
        // Slow password work inside would hold every other writer back.
        let key = self.audit_key.clone();
        let f = move |conn: &mut AnyConnection| {
            let _scope = crate::password::WriteScope::enter();
            audit_chain::with_chain_key(key, || f(conn))
        };
        match &self.write_gate {
            Some(gate) => gate.write(f),
            None => db::write_transaction(&mut self.pool.get()?, f),
        }
    }

    /// A pooled connection.
    pub fn conn(&self) -> Result<PooledConnection> {
        let mut conn = self.pool.get()?;
        if let Some(gate) = &self.write_gate {
            db::attach_gate(gate, &mut conn);
        }
        Ok(conn)
    }

    fn cached_secret(&self, name: &str) -> Option<Vec<u8>> {
        self.secrets.lock().ok()?.get(name).cloned()
    }

    fn cache_secret(&self, name: &str, value: &[u8]) {
        if let Ok(mut cache) = self.secrets.lock() {
            cache.insert(name.to_owned(), value.to_vec());
        }
    }
}

impl HealthCheck for Store {
    fn ping(&self, timeout: Duration) -> Result<()> {
        let mut conn = self.pool.get_timeout(timeout)?;
        conn.batch_execute("SELECT 1")?;
        Ok(())
    }

    fn pool_status(&self) -> PoolStatus {
        let state = self.pool.state();
        PoolStatus {
            connections: state.connections,
            idle: state.idle_connections,
            max: self.pool.max_size(),
            writer: self.write_gate.as_ref().map(db::WriteGate::stats),
        }
    }
}

/// Now, truncated to microseconds: PostgreSQL keeps microseconds and SQLite
/// would keep nanoseconds, so both backends return what was written.
pub(crate) fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// Now, as the store writes it (microseconds).
pub fn now_utc() -> DateTime<Utc> {
    now()
}

pub(crate) fn to_db_time(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

pub(crate) fn from_db_time(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn in_memory_sqlite_keeps_its_data_in_one_connection() {
        let url = DatabaseUrl::parse(":memory:").unwrap();
        let store = Store::open(
            &url,
            StoreOptions {
                pool: PoolOptions {
                    size: 8,
                    timeout: Duration::from_secs(1),
                },
                migrate: true,
                events: None,
            },
        )
        .unwrap();
        assert_eq!(store.pool_status().max, 1);
        let tenant = store.ensure_tenant("t").unwrap();
        let users = scim_core::schema::SchemaRegistry::core()
            .resource_schema("User")
            .unwrap();
        let ctx = WriteContext {
            tenant_id: tenant.id,
            actor: None,
        };
        let r = store
            .insert_resource(ctx, &users, json!({"userName": "a"}))
            .unwrap();
        let again = store.get_resource(tenant.id, &users, &r.id).unwrap();
        assert_eq!(again, Some(r));
        store.ping(Duration::from_secs(1)).unwrap();
    }
}
