//! [`ResourceStore`] and [`ChangeLogStore`] for [`Store`].
//!
//! A write is one transaction: the resource row, its attribute-index rows
//! and one change-log row. Concurrent writers are serialised by SQLite's
//! write lock (taken up front) and, on PostgreSQL, by locking the row
//! (`SELECT ... FOR UPDATE`). The update itself still says
//! `WHERE version = <version read>`, and a write that finds the row changed
//! anyway is retried from the read.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{NaiveDateTime, SecondsFormat};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use scim_core::ErrorKind;
use scim_core::json::get_ci;
use scim_core::schema::{ResourceSchema, Uniqueness};
use serde_json::{Map, Value, json};

use super::audit::{self, NewAuditEntry, actor_of, scim_snapshot};
use super::filter_sql::Frag;
use super::index::{IndexRow, IndexValue, fold, index_rows};
use super::memberships::{
    groups_holding, holds_members, prepare_members, sync_members, without_member,
};
use super::provisioning::{mark_due, member_pks, with_nested_members};
use super::query;
use super::stmt::{IntRow, Stmt, Val};
use super::{
    Change, ChangeLogStore, ChangeOp, ResourceStore, Store, StoredResource, TenantId, WriteContext,
    etag, from_db_time, now, to_db_time,
};
use crate::db::AnyConnection;
use crate::db::schema::{attr_index, change_log, memberships, resources};
use crate::error::{Error, Result};

/// How often an update that lost a race to a concurrent writer is retried.
const MAX_WRITE_ATTEMPTS: usize = 5;

/// Rows per INSERT statement for index rows (well under SQLite's limit of
/// bound parameters per statement).
const INDEX_INSERT_CHUNK: usize = 32;

#[derive(Queryable, QueryableByName, Selectable)]
#[diesel(table_name = resources)]
struct ResourceRow {
    pk: i64,
    tenant_id: i64,
    resource_type: String,
    id: String,
    version: i64,
    document: String,
    external_id: Option<String>,
    created: NaiveDateTime,
    last_modified: NaiveDateTime,
}

impl ResourceRow {
    fn into_stored(self) -> Result<StoredResource> {
        let ResourceRow {
            pk,
            tenant_id,
            resource_type,
            id,
            version,
            document,
            external_id,
            created,
            last_modified,
        } = self;
        let document = serde_json::from_str(&document).map_err(|e| {
            Error::internal(format!("stored document of resource {pk} is not JSON: {e}"))
        })?;
        Ok(StoredResource {
            pk,
            tenant_id: TenantId(tenant_id),
            resource_type,
            id,
            version,
            document,
            external_id,
            created: from_db_time(created),
            last_modified: from_db_time(last_modified),
        })
    }
}

#[derive(Queryable)]
struct IndexRowData {
    attr: String,
    ordinal: i32,
    text_folded: Option<String>,
    text_exact: Option<String>,
    num: Option<f64>,
    time_us: Option<i64>,
    boolean: Option<bool>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = change_log)]
struct ChangeRow {
    seq: i64,
    tenant_id: i64,
    resource_type: String,
    resource_id: String,
    version: i64,
    op: String,
    actor: Option<i64>,
    at: NaiveDateTime,
}

/// The columns derived from a document: what uniqueness and point lookups
/// read without parsing JSON.
#[derive(Debug, PartialEq)]
pub(super) struct Derived {
    pub(super) user_name_folded: Option<String>,
    pub(super) display_name_folded: Option<String>,
    pub(super) external_id: Option<String>,
    /// What the resource is called as a member or group: displayName, else
    /// userName.
    pub(super) display: Option<String>,
}

impl Derived {
    pub(super) fn of(doc: &Value, rs: &ResourceSchema) -> Self {
        let obj = doc.as_object();
        let string = |name: &str| {
            obj.and_then(|o| get_ci(o, name))
                .and_then(|(_, v)| v.as_str())
                .map(str::to_owned)
        };
        // A uniqueness column holds a value only when the schema asks for
        // uniqueness, so the unique index enforces exactly the schema.
        let unique_folded = |name: &str| {
            let attr = rs.core().attribute(name)?;
            if attr.uniqueness == Uniqueness::None {
                return None;
            }
            let value = string(name)?;
            Some(if attr.case_exact { value } else { fold(&value) })
        };
        Self {
            user_name_folded: unique_folded("userName"),
            display_name_folded: unique_folded("displayName"),
            external_id: string("externalId"),
            display: string("displayName").or_else(|| string("userName")),
        }
    }
}

/// The canonical stored document: `schemas`, `id`, `externalId` first, the
/// client's attributes in their order, and the server's `meta` last (its
/// `location` is added when the resource is served).
pub(super) fn canonical_document(
    doc: Value,
    rs: &ResourceSchema,
    id: &str,
    version: i64,
    created: chrono::DateTime<chrono::Utc>,
    last_modified: chrono::DateTime<chrono::Utc>,
) -> Result<Value> {
    let Value::Object(mut given) = doc else {
        return Err(scim_core::Error::invalid_syntax("a resource must be a JSON object").into());
    };
    let mut out = Map::new();
    let mut take = |name: &str, out: &mut Map<String, Value>| {
        let key = given.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned();
        if let Some(value) = key.and_then(|k| given.shift_remove(&k)) {
            out.insert(name.to_owned(), value);
        }
    };
    take("schemas", &mut out);
    out.insert("id".into(), Value::String(id.to_owned()));
    take("externalId", &mut out);
    given.retain(|k, _| !k.eq_ignore_ascii_case("id") && !k.eq_ignore_ascii_case("meta"));
    out.extend(given);
    out.insert(
        "meta".into(),
        json!({
            "resourceType": rs.resource_type().name,
            "created": created.to_rfc3339_opts(SecondsFormat::Micros, true),
            "lastModified": last_modified.to_rfc3339_opts(SecondsFormat::Micros, true),
            "version": etag(version),
        }),
    );
    Ok(Value::Object(out))
}

/// A random (version 4) UUID.
pub(super) fn new_id() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)
        .map_err(|e| Error::internal(format!("no randomness available: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// Turns a unique-constraint violation on a uniqueness column into the
/// SCIM `uniqueness` error; other errors pass through.
pub(super) fn uniqueness_error(e: DieselError, doc: &Value) -> Error {
    if let DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) = &e {
        let what = format!(
            "{} {}",
            info.message(),
            info.constraint_name().unwrap_or("")
        );
        for (column, attr) in [
            ("user_name_folded", "userName"),
            ("display_name_folded", "displayName"),
        ] {
            if what.contains(column) {
                let value = doc
                    .as_object()
                    .and_then(|o| get_ci(o, attr))
                    .and_then(|(_, v)| v.as_str())
                    .unwrap_or("");
                return scim_core::Error::new(
                    ErrorKind::Uniqueness,
                    format!("{attr} '{value}' is already in use"),
                )
                .into();
            }
        }
    }
    e.into()
}

pub(super) fn write_index_rows(
    conn: &mut AnyConnection,
    tenant: TenantId,
    resource_type: &str,
    pk: i64,
    rows: &[IndexRow],
) -> QueryResult<()> {
    // Fixed chunks give at most INDEX_INSERT_CHUNK statement texts, each
    // prepared once per connection (see store::stmt).
    for chunk in rows.chunks(INDEX_INSERT_CHUNK) {
        let mut insert = Stmt::new();
        insert.sql(
            "INSERT INTO attr_index (resource_pk, tenant_id, resource_type, attr, ordinal, \
             text_folded, text_exact, num, time_us, boolean) VALUES ",
        );
        for (i, r) in chunk.iter().enumerate() {
            let (mut text_folded, mut text_exact) = (None, None);
            let (mut num, mut time_us, mut boolean) = (None, None, None);
            match &r.value {
                IndexValue::Text { folded, exact } => {
                    text_folded = Some(folded.as_str());
                    text_exact = exact.as_deref();
                }
                IndexValue::Number(n) => num = Some(*n),
                IndexValue::Time(t) => time_us = Some(*t),
                IndexValue::Bool(b) => boolean = Some(*b),
            }
            insert
                .sql(if i == 0 { "(" } else { ", (" })
                .vals(&[
                    Val::Int(Some(pk)),
                    Val::Int(Some(tenant.0)),
                    Val::Text(Some(resource_type)),
                    Val::Text(Some(&r.attr)),
                    Val::Int(Some(i64::from(r.ordinal))),
                    Val::Text(text_folded),
                    Val::Text(text_exact),
                    Val::Float(num),
                    Val::Int(time_us),
                    Val::Bool(boolean),
                ])
                .sql(")");
        }
        insert.run(conn)?;
    }
    Ok(())
}

/// Brings the index rows of resource `pk` from `stored` (the rows of its
/// stored document) to `rows`, rewriting only the values whose attribute
/// path and ordinal changed: a PATCH of one attribute touches a few rows
/// instead of all of them.
fn rewrite_index_rows(
    conn: &mut AnyConnection,
    tenant: TenantId,
    resource_type: &str,
    pk: i64,
    stored: &[IndexRow],
    rows: &[IndexRow],
) -> QueryResult<()> {
    type Groups<'a> = BTreeMap<(&'a str, i32), Vec<&'a IndexValue>>;
    fn group(rows: &[IndexRow]) -> Groups<'_> {
        let mut out = Groups::new();
        for r in rows {
            out.entry((r.attr.as_str(), r.ordinal))
                .or_default()
                .push(&r.value);
        }
        out
    }
    let before = group(stored);
    let after = group(rows);
    for (attr, ordinal) in before
        .iter()
        .filter(|(k, v)| after.get(k) != Some(v))
        .map(|(k, _)| *k)
    {
        diesel::delete(
            attr_index::table
                .filter(attr_index::resource_pk.eq(pk))
                .filter(attr_index::attr.eq(attr))
                .filter(attr_index::ordinal.eq(ordinal)),
        )
        .execute(conn)?;
    }
    let fresh: Vec<IndexRow> = rows
        .iter()
        .filter(|r| {
            let key = (r.attr.as_str(), r.ordinal);
            before.get(&key) != after.get(&key)
        })
        .cloned()
        .collect();
    write_index_rows(conn, tenant, resource_type, pk, &fresh)
}

/// Inserts the row of a new resource (version 1); its key.
fn insert_resource_row(
    conn: &mut AnyConnection,
    tenant: TenantId,
    resource_type: &str,
    id: &str,
    document: &Value,
    derived: &Derived,
    at: NaiveDateTime,
) -> QueryResult<i64> {
    let document = document.to_string();
    let rows: Vec<IntRow> = Stmt::new()
        .sql(
            "INSERT INTO resources (tenant_id, resource_type, id, version, document, \
             user_name_folded, display_name_folded, external_id, display, created, \
             last_modified) VALUES (",
        )
        .vals(&[
            Val::Int(Some(tenant.0)),
            Val::Text(Some(resource_type)),
            Val::Text(Some(id)),
            Val::Int(Some(1)),
            Val::Text(Some(&document)),
            Val::Text(derived.user_name_folded.as_deref()),
            Val::Text(derived.display_name_folded.as_deref()),
            Val::Text(derived.external_id.as_deref()),
            Val::Text(derived.display.as_deref()),
            Val::Time(Some(at)),
            Val::Time(Some(at)),
        ])
        .sql(") RETURNING pk AS n")
        .rows(conn)?;
    rows.first().map(|r| r.n).ok_or(DieselError::NotFound)
}

fn log_change(
    conn: &mut AnyConnection,
    ctx: WriteContext,
    resource_type: &str,
    id: &str,
    version: i64,
    op: ChangeOp,
    at: NaiveDateTime,
) -> Result<()> {
    if resource_type == "User" {
        // Rules are evaluated from these marks (see store::lifecycle).
        super::lifecycle::mark_user_due(conn, ctx.tenant_id, id)?;
    }
    Stmt::new()
        .sql(
            "INSERT INTO change_log (tenant_id, resource_type, resource_id, version, op, actor, at) \
             VALUES (",
        )
        .vals(&[
            Val::Int(Some(ctx.tenant_id.0)),
            Val::Text(Some(resource_type)),
            Val::Text(Some(id)),
            Val::Int(Some(version)),
            Val::Text(Some(op.as_str())),
            Val::Int(ctx.actor),
            Val::Time(Some(at)),
        ])
        .sql(")")
        .run(conn)?;
    Ok(())
}

/// The audit entry of a SCIM write: action `<type>.<op>` (`user.create`,
/// `group.patch`), the token as actor.
fn scim_audit(ctx: WriteContext, resource_type: &str, id: &str, op: ChangeOp) -> NewAuditEntry {
    NewAuditEntry::new(
        actor_of(ctx.actor),
        format!("{}.{}", resource_type.to_lowercase(), op.as_str()),
        resource_type,
        id,
    )
    .subject(id)
}

fn load(
    conn: &mut AnyConnection,
    tenant: TenantId,
    resource_type: &str,
    id: &str,
) -> Result<Option<StoredResource>> {
    // (tenant_id, id) is unique: no LIMIT, which SQLite would read as a
    // bound value and re-prepare the cached statement for at every call.
    // Written as SQL: diesel would build the statement's text from its
    // query builder at every call just to find it in the cache.
    let mut f = Frag::new();
    f.sql(
        "SELECT pk, tenant_id, resource_type, id, version, document, external_id, \
         created, last_modified FROM resources WHERE tenant_id = ",
    )
    .int(tenant.0)
    .sql(" AND id = ")
    .text(id)
    .sql(" AND resource_type = ")
    .text(resource_type);
    query::load::<ResourceRow>(conn, &f, true)?
        .into_iter()
        .next()
        .map(ResourceRow::into_stored)
        .transpose()
}

/// [`load`] for a read-modify-write: on PostgreSQL the row is locked
/// (`FOR NO KEY UPDATE`: the key does not change, so groups adding this
/// resource as a member, whose foreign-key checks take `KEY SHARE`, are not
/// blocked) so that concurrent writers of the same resource queue instead of
/// racing; on SQLite the immediate transaction already holds the
/// database's write lock.
fn load_for_update(
    conn: &mut AnyConnection,
    tenant: TenantId,
    resource_type: &str,
    id: &str,
) -> Result<Option<StoredResource>> {
    match conn {
        AnyConnection::Pg(c) => resources::table
            .filter(resources::tenant_id.eq(tenant.0))
            .filter(resources::id.eq(id))
            .filter(resources::resource_type.eq(resource_type))
            .select(ResourceRow::as_select())
            .for_no_key_update()
            .first(c)
            .optional()?
            .map(ResourceRow::into_stored)
            .transpose(),
        AnyConnection::Sqlite(_) => load(conn, tenant, resource_type, id),
    }
}

/// The key, version and document of a resource about to be deleted,
/// locked `FOR UPDATE` on PostgreSQL.
fn load_for_delete(
    conn: &mut AnyConnection,
    tenant: TenantId,
    resource_type: &str,
    id: &str,
) -> Result<Option<(i64, i64, String)>> {
    let query = resources::table
        .filter(resources::tenant_id.eq(tenant.0))
        .filter(resources::id.eq(id))
        .filter(resources::resource_type.eq(resource_type))
        .select((resources::pk, resources::version, resources::document));
    Ok(match conn {
        AnyConnection::Pg(c) => query.for_update().first(c).optional()?,
        AnyConnection::Sqlite(c) => query.first(c).optional()?,
    })
}

/// A resource by internal key, locked like [`load_for_update`].
fn load_pk_for_update(
    conn: &mut AnyConnection,
    tenant: TenantId,
    pk: i64,
) -> Result<Option<StoredResource>> {
    let query = resources::table
        .filter(resources::tenant_id.eq(tenant.0))
        .filter(resources::pk.eq(pk));
    let row = match conn {
        AnyConnection::Pg(c) => query
            .select(ResourceRow::as_select())
            .for_no_key_update()
            .first(c)
            .optional()?,
        AnyConnection::Sqlite(c) => query.select(ResourceRow::as_select()).first(c).optional()?,
    };
    row.map(ResourceRow::into_stored).transpose()
}

fn not_found(rs: &ResourceSchema, id: &str) -> Error {
    scim_core::Error::not_found(format!("{} '{id}' not found", rs.resource_type().name)).into()
}

fn check_version(current: i64, expected: Option<i64>) -> Result<()> {
    match expected {
        Some(v) if v != current => Err(scim_core::Error::new(
            ErrorKind::PreconditionFailed,
            format!(
                "the resource is at version {}, not {}",
                etag(current),
                etag(v)
            ),
        )
        .into()),
        _ => Ok(()),
    }
}

/// Whether `e` is the internal marker for "a concurrent writer changed the
/// row between our read and our write".
fn lost_race(e: &Error) -> bool {
    matches!(e, Error::Scim(s) if s.kind() == ErrorKind::Conflict && s.detail() == LOST_RACE)
}

const LOST_RACE: &str = "the resource was modified concurrently; retry the request";

/// How a new version of a group keeps its membership rows.
enum Members {
    /// Check the document's `members` and make the rows match them.
    Resolve,
    /// The document lost exactly this member; drop its row.
    Removed(i64),
}

/// Writes `document` as the next version of `current` (read and locked by
/// the caller's transaction): canonical form, derived columns, index rows,
/// membership rows for groups, one change-log row. `None` when the
/// document is what is stored already: nothing is written, the version
/// stays.
fn write_version(
    conn: &mut AnyConnection,
    ctx: WriteContext,
    rs: &ResourceSchema,
    current: &StoredResource,
    mut document: Value,
    op: ChangeOp,
    members: Members,
) -> Result<Option<StoredResource>> {
    let resource_type = rs.resource_type().id.as_str();
    let resolved = match members {
        Members::Resolve if holds_members(rs) => Some(prepare_members(
            conn,
            ctx.tenant_id,
            &current.id,
            &mut document,
        )?),
        _ => None,
    };
    let unchanged = canonical_document(
        document.clone(),
        rs,
        &current.id,
        current.version,
        current.created,
        current.last_modified,
    )?;
    if unchanged == current.document {
        return Ok(None);
    }
    let version = current.version + 1;
    let at = now().max(current.last_modified);
    let document = canonical_document(document, rs, &current.id, version, current.created, at)?;
    let derived = Derived::of(&document, rs);
    let rows = index_rows(&document, rs);
    let text = document.to_string();
    let mut update = Stmt::new();
    update
        .sql("UPDATE resources SET version = ")
        .val(Val::Int(Some(version)))
        .sql(", document = ")
        .val(Val::Text(Some(&text)))
        .sql(", last_modified = ")
        .val(Val::Time(Some(to_db_time(at))));
    // SQLite rewrites the entries of every index over a column the
    // statement sets, changed or not: set the derived columns only when
    // they change (a PATCH of `title` leaves them alone).
    if derived != Derived::of(&current.document, rs) {
        update
            .sql(", user_name_folded = ")
            .val(Val::Text(derived.user_name_folded.as_deref()))
            .sql(", display_name_folded = ")
            .val(Val::Text(derived.display_name_folded.as_deref()))
            .sql(", external_id = ")
            .val(Val::Text(derived.external_id.as_deref()))
            .sql(", display = ")
            .val(Val::Text(derived.display.as_deref()));
    }
    let updated = update
        .sql(" WHERE pk = ")
        .val(Val::Int(Some(current.pk)))
        .sql(" AND version = ")
        .val(Val::Int(Some(current.version)))
        .run(conn)
        .map_err(|e| uniqueness_error(e, &document))?;
    if updated == 0 {
        return Err(scim_core::Error::new(ErrorKind::Conflict, LOST_RACE).into());
    }
    let stored = index_rows(&current.document, rs);
    rewrite_index_rows(
        conn,
        ctx.tenant_id,
        resource_type,
        current.pk,
        &stored,
        &rows,
    )?;
    let mut touched = vec![current.pk];
    match (members, resolved) {
        (_, Some(resolved)) => touched.extend(sync_members(
            conn,
            ctx.tenant_id,
            current.pk,
            &resolved,
            false,
        )?),
        (Members::Removed(member_pk), None) => {
            diesel::delete(
                memberships::table
                    .filter(memberships::group_pk.eq(current.pk))
                    .filter(memberships::member_pk.eq(member_pk)),
            )
            .execute(conn)?;
            touched.push(member_pk);
        }
        (Members::Resolve, None) => {}
    }
    let touched = with_nested_members(conn, &touched)?;
    mark_due(conn, ctx.tenant_id, &touched)?;
    log_change(
        conn,
        ctx,
        resource_type,
        &current.id,
        version,
        op,
        to_db_time(at),
    )?;
    Ok(Some(StoredResource {
        version,
        document,
        external_id: derived.external_id,
        last_modified: at,
        ..current.clone()
    }))
}

impl Store {
    /// Removes the resource `member_pk` (id `member_id`) from every group
    /// that lists it: each group gets a new version without it (document,
    /// index rows, membership row, change-log row `patch`), inside the
    /// caller's transaction. Groups are locked in key order, so concurrent
    /// deletions cannot deadlock on PostgreSQL.
    fn detach_from_groups(
        &self,
        conn: &mut AnyConnection,
        ctx: WriteContext,
        member_pk: i64,
        member_id: &str,
    ) -> Result<Vec<NewAuditEntry>> {
        let holders = groups_holding(conn, member_pk)?;
        let mut entries = Vec::new();
        if holders.is_empty() {
            return Ok(entries);
        }
        let groups = self.group_schema()?;
        for group_pk in holders {
            let Some(group) = load_pk_for_update(conn, ctx.tenant_id, group_pk)? else {
                continue;
            };
            let written = match without_member(&group.document, member_id) {
                Some(document) => write_version(
                    conn,
                    ctx,
                    &groups,
                    &group,
                    document,
                    ChangeOp::Patch,
                    Members::Removed(member_pk),
                )?,
                None => None,
            };
            if let Some(written) = &written {
                entries.push(
                    scim_audit(ctx, "Group", &group.id, ChangeOp::Patch)
                        .before(Some(scim_snapshot(&group.document)))
                        .after(Some(scim_snapshot(&written.document))),
                );
            }
            if written.is_none() {
                // The row without a document entry (should not happen):
                // drop it so the tables agree again.
                diesel::delete(
                    memberships::table
                        .filter(memberships::group_pk.eq(group_pk))
                        .filter(memberships::member_pk.eq(member_pk)),
                )
                .execute(conn)?;
            }
        }
        Ok(entries)
    }

    fn group_schema(&self) -> Result<Arc<ResourceSchema>> {
        self.registry
            .resource_schema_for(scim_core::schema::GROUP_SCHEMA)
            .ok_or_else(|| Error::internal("the schema registry has no Group resource type"))
    }
}

impl ResourceStore for Store {
    fn insert_resource(
        &self,
        ctx: WriteContext,
        rs: &ResourceSchema,
        document: Value,
    ) -> Result<StoredResource> {
        let resource_type = rs.resource_type().id.as_str();
        let id = new_id()?;
        let at = now();
        self.write(|conn| -> Result<StoredResource> {
            let mut document = document;
            let members = if holds_members(rs) {
                Some(prepare_members(conn, ctx.tenant_id, &id, &mut document)?)
            } else {
                None
            };
            let document = canonical_document(document, rs, &id, 1, at, at)?;
            let derived = Derived::of(&document, rs);
            let rows = index_rows(&document, rs);
            let pk = insert_resource_row(
                conn,
                ctx.tenant_id,
                resource_type,
                &id,
                &document,
                &derived,
                to_db_time(at),
            )
            .map_err(|e| uniqueness_error(e, &document))?;
            write_index_rows(conn, ctx.tenant_id, resource_type, pk, &rows)?;
            let mut touched = vec![pk];
            if let Some(members) = members {
                touched.extend(sync_members(conn, ctx.tenant_id, pk, &members, true)?);
            }
            let touched = with_nested_members(conn, &touched)?;
            mark_due(conn, ctx.tenant_id, &touched)?;
            log_change(
                conn,
                ctx,
                resource_type,
                &id,
                1,
                ChangeOp::Create,
                to_db_time(at),
            )?;
            audit::append(
                conn,
                ctx.tenant_id,
                &scim_audit(ctx, resource_type, &id, ChangeOp::Create)
                    .after(Some(scim_snapshot(&document))),
            )?;
            Ok(StoredResource {
                pk,
                tenant_id: ctx.tenant_id,
                resource_type: resource_type.to_owned(),
                id: id.clone(),
                version: 1,
                external_id: derived.external_id,
                document,
                created: at,
                last_modified: at,
            })
        })
    }

    fn get_resource(
        &self,
        tenant: TenantId,
        rs: &ResourceSchema,
        id: &str,
    ) -> Result<Option<StoredResource>> {
        load(&mut *self.conn()?, tenant, &rs.resource_type().id, id)
    }

    fn find_by_user_name(
        &self,
        tenant: TenantId,
        rs: &ResourceSchema,
        user_name: &str,
    ) -> Result<Option<StoredResource>> {
        resources::table
            .filter(resources::tenant_id.eq(tenant.0))
            .filter(resources::resource_type.eq(&rs.resource_type().id))
            .filter(resources::user_name_folded.eq(fold(user_name)))
            .select(ResourceRow::as_select())
            .first(&mut *self.conn()?)
            .optional()?
            .map(ResourceRow::into_stored)
            .transpose()
    }

    fn update_resource(
        &self,
        ctx: WriteContext,
        rs: &ResourceSchema,
        id: &str,
        expected_version: Option<i64>,
        op: ChangeOp,
        change: &mut dyn FnMut(&StoredResource) -> Result<Value>,
    ) -> Result<StoredResource> {
        let resource_type = rs.resource_type().id.as_str();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.write(|conn| -> Result<StoredResource> {
                let current = load_for_update(conn, ctx.tenant_id, resource_type, id)?
                    .ok_or_else(|| not_found(rs, id))?;
                check_version(current.version, expected_version)?;
                let document = change(&current)?;
                match write_version(conn, ctx, rs, &current, document, op, Members::Resolve)? {
                    Some(written) => {
                        audit::append(
                            conn,
                            ctx.tenant_id,
                            &scim_audit(ctx, resource_type, id, op)
                                .before(Some(scim_snapshot(&current.document)))
                                .after(Some(scim_snapshot(&written.document))),
                        )?;
                        Ok(written)
                    }
                    None => Ok(current),
                }
            });
            match result {
                Err(e) if lost_race(&e) && attempt < MAX_WRITE_ATTEMPTS => continue,
                other => return other,
            }
        }
    }

    fn delete_resource(
        &self,
        ctx: WriteContext,
        rs: &ResourceSchema,
        id: &str,
        expected_version: Option<i64>,
    ) -> Result<()> {
        let resource_type = rs.resource_type().id.as_str();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.write(|conn| -> Result<()> {
                let (pk, version, before) =
                    load_for_delete(conn, ctx.tenant_id, resource_type, id)?
                        .ok_or_else(|| not_found(rs, id))?;
                check_version(version, expected_version)?;
                // While the row and its assignments still exist: the pairs
                // outlive it and carry the deletion to the applications.
                let mut marked = vec![pk];
                marked.extend(member_pks(conn, pk)?);
                mark_due(conn, ctx.tenant_id, &marked)?;
                let mut entries = self.detach_from_groups(conn, ctx, pk, id)?;
                diesel::delete(attr_index::table.filter(attr_index::resource_pk.eq(pk)))
                    .execute(conn)?;
                diesel::delete(memberships::table.filter(memberships::group_pk.eq(pk)))
                    .execute(conn)?;
                let deleted = diesel::delete(
                    resources::table
                        .filter(resources::pk.eq(pk))
                        .filter(resources::version.eq(version)),
                )
                .execute(conn)?;
                if deleted == 0 {
                    return Err(scim_core::Error::new(ErrorKind::Conflict, LOST_RACE).into());
                }
                log_change(
                    conn,
                    ctx,
                    resource_type,
                    id,
                    version + 1,
                    ChangeOp::Delete,
                    to_db_time(now()),
                )?;
                let before = serde_json::from_str::<Value>(&before)
                    .map(|doc| scim_snapshot(&doc))
                    .ok();
                entries.push(scim_audit(ctx, resource_type, id, ChangeOp::Delete).before(before));
                audit::append_all(conn, ctx.tenant_id, &entries)?;
                Ok(())
            });
            match result {
                Err(e) if lost_race(&e) && attempt < MAX_WRITE_ATTEMPTS => continue,
                other => return other,
            }
        }
    }

    fn stored_index_rows(&self, tenant: TenantId, pk: i64) -> Result<Vec<IndexRow>> {
        let rows: Vec<IndexRowData> = attr_index::table
            .filter(attr_index::tenant_id.eq(tenant.0))
            .filter(attr_index::resource_pk.eq(pk))
            .order((attr_index::attr.asc(), attr_index::ordinal.asc()))
            .select((
                attr_index::attr,
                attr_index::ordinal,
                attr_index::text_folded,
                attr_index::text_exact,
                attr_index::num,
                attr_index::time_us,
                attr_index::boolean,
            ))
            .load(&mut *self.conn()?)?;
        rows.into_iter()
            .map(|r| {
                let IndexRowData {
                    attr,
                    ordinal,
                    text_folded,
                    text_exact,
                    num,
                    time_us,
                    boolean,
                } = r;
                let value = match (text_folded, num, time_us, boolean) {
                    (Some(folded), None, None, None) => IndexValue::Text {
                        folded,
                        exact: text_exact,
                    },
                    (None, Some(n), None, None) => IndexValue::Number(n),
                    (None, None, Some(t), None) => IndexValue::Time(t),
                    (None, None, None, Some(b)) => IndexValue::Bool(b),
                    _ => {
                        return Err(Error::internal(format!(
                            "index row {attr}[{ordinal}] of resource {pk} has no single typed value"
                        )));
                    }
                };
                Ok(IndexRow {
                    attr,
                    ordinal,
                    value,
                })
            })
            .collect()
    }
}

impl ChangeLogStore for Store {
    fn changes_after(&self, tenant: TenantId, after: i64, limit: i64) -> Result<Vec<Change>> {
        let rows: Vec<ChangeRow> = change_log::table
            .filter(change_log::tenant_id.eq(tenant.0))
            .filter(change_log::seq.gt(after))
            .order(change_log::seq.asc())
            .limit(limit)
            .select(ChangeRow::as_select())
            .load(&mut *self.conn()?)?;
        rows.into_iter()
            .map(|row| {
                let ChangeRow {
                    seq,
                    tenant_id,
                    resource_type,
                    resource_id,
                    version,
                    op,
                    actor,
                    at,
                } = row;
                let op = ChangeOp::parse(&op)
                    .ok_or_else(|| Error::internal(format!("unknown change op '{op}' at {seq}")))?;
                Ok(Change {
                    seq,
                    tenant_id: TenantId(tenant_id),
                    resource_type,
                    resource_id,
                    version,
                    op,
                    actor,
                    at: from_db_time(at),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_4_uuids() {
        let id = new_id().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(id, new_id().unwrap());
    }

    #[test]
    fn canonical_documents_put_server_fields_in_place() {
        let registry = scim_core::schema::SchemaRegistry::core();
        let users = registry.resource_schema("User").unwrap();
        let at = now();
        let doc = canonical_document(
            json!({"userName": "a", "ID": "client-chosen", "Meta": {"version": "x"},
                   "ExternalId": "e", "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}),
            &users,
            "server-id",
            3,
            at,
            at,
        )
        .unwrap();
        let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["schemas", "id", "externalId", "userName", "meta"]);
        assert_eq!(doc["id"], "server-id");
        assert_eq!(doc["meta"]["version"], "W/\"3\"");
        assert_eq!(doc["meta"]["resourceType"], "User");
        assert!(canonical_document(json!([1]), &users, "x", 1, at, at).is_err());
    }
}
