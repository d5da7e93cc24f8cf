//! [`ImportStore`] for [`Store`]: many resources in one transaction, with
//! exactly the rows a create writes (resource row, index rows from
//! [`index_rows`], change-log row), for fixtures, restores and benchmark
//! seeding. Validation is the caller's job.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use scim_core::json::get_ci;
use scim_core::schema::ResourceSchema;
use serde_json::Value;

use super::index::{IndexRow, index_rows};
use super::memberships::{holds_members, prepare_members, sync_members};
use super::resources::{Derived, canonical_document, new_id, uniqueness_error, write_index_rows};
use super::{ChangeOp, Store, WriteContext, now, to_db_time};
use crate::db::schema::{attr_index, change_log, resources};
use crate::db::{AnyConnection, write_transaction};
use crate::error::{Error, Result};

/// What an import does with ids and `meta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Keep each document exactly as given: its `id` (required), `meta`
    /// and member order. `meta.created` / `meta.lastModified` fill the
    /// row's times when they parse, and `meta.version` `W/"<n>"` its
    /// version (else 1).
    AsIs,
    /// Treat each document as a create: a new id and `meta`, version 1.
    Create,
}

/// Loading resources in bulk.
pub trait ImportStore {
    /// Stores the documents as resources of type `rs` in one transaction
    /// and returns their ids, in order. A taken `userName` fails the whole
    /// import with `uniqueness`.
    fn import_resources(
        &self,
        ctx: WriteContext,
        rs: &ResourceSchema,
        documents: Vec<Value>,
        mode: ImportMode,
    ) -> Result<Vec<String>>;
}

fn meta_time(doc: &Value, name: &str) -> Option<DateTime<Utc>> {
    let meta = get_ci(doc.as_object()?, "meta")?.1.as_object()?;
    let t = scim_core::filter::parse_datetime(get_ci(meta, name)?.1.as_str()?)?;
    DateTime::from_timestamp_micros(t.timestamp_micros())
}

fn meta_version(doc: &Value) -> Option<i64> {
    let meta = get_ci(doc.as_object()?, "meta")?.1.as_object()?;
    let v = get_ci(meta, "version")?.1.as_str()?;
    v.trim_start_matches("W/").trim_matches('"').parse().ok()
}

/// Change-log rows per INSERT statement.
const LOG_CHUNK: usize = 500;

impl ImportStore for Store {
    fn import_resources(
        &self,
        ctx: WriteContext,
        rs: &ResourceSchema,
        documents: Vec<Value>,
        mode: ImportMode,
    ) -> Result<Vec<String>> {
        let resource_type = rs.resource_type().id.as_str();
        let at = now();
        struct Prepared {
            id: String,
            version: i64,
            text: String,
            derived: Derived,
            rows: Vec<IndexRow>,
            created: DateTime<Utc>,
            last_modified: DateTime<Utc>,
            document: Value,
        }
        let prepared = documents
            .into_iter()
            .map(|doc| -> Result<Prepared> {
                let (id, doc) = match mode {
                    ImportMode::Create => {
                        let id = new_id()?;
                        let doc = canonical_document(doc, rs, &id, 1, at, at)?;
                        (id, doc)
                    }
                    ImportMode::AsIs => {
                        let id = doc
                            .as_object()
                            .and_then(|o| get_ci(o, "id"))
                            .and_then(|(_, v)| v.as_str())
                            .map(str::to_owned)
                            .ok_or_else(|| {
                                scim_core::Error::invalid_value("an imported resource needs an id")
                            })?;
                        (id, doc)
                    }
                };
                Ok(Prepared {
                    version: meta_version(&doc).unwrap_or(1),
                    created: meta_time(&doc, "created").unwrap_or(at),
                    last_modified: meta_time(&doc, "lastModified").unwrap_or(at),
                    derived: Derived::of(&doc, rs),
                    rows: index_rows(&doc, rs),
                    text: doc.to_string(),
                    id,
                    document: doc,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut conn = self.conn()?;
        write_transaction(&mut conn, |conn| -> Result<()> {
            let mut pks = Vec::with_capacity(prepared.len());
            for p in &prepared {
                let pk: i64 = diesel::insert_into(resources::table)
                    .values((
                        resources::tenant_id.eq(ctx.tenant_id.0),
                        resources::resource_type.eq(resource_type),
                        resources::id.eq(&p.id),
                        resources::version.eq(p.version),
                        resources::document.eq(&p.text),
                        resources::user_name_folded.eq(p.derived.user_name_folded.as_deref()),
                        resources::display_name_folded.eq(p.derived.display_name_folded.as_deref()),
                        resources::external_id.eq(p.derived.external_id.as_deref()),
                        resources::display.eq(p.derived.display.as_deref()),
                        resources::created.eq(to_db_time(p.created)),
                        resources::last_modified.eq(to_db_time(p.last_modified)),
                    ))
                    .returning(resources::pk)
                    .get_result(conn)
                    .map_err(|e| uniqueness_error(e, &p.document))?;
                write_index_rows(conn, ctx.tenant_id, resource_type, pk, &p.rows)?;
                pks.push(pk);
            }
            // Groups: membership rows, resolved once every row of the
            // import exists (a group may name another imported group). As
            // on create, `members` is rewritten to its stored form.
            if holds_members(rs) {
                for (p, &pk) in prepared.iter().zip(&pks) {
                    let mut document = p.document.clone();
                    let members = prepare_members(conn, ctx.tenant_id, &p.id, &mut document)?;
                    if document != p.document {
                        diesel::update(resources::table.filter(resources::pk.eq(pk)))
                            .set(resources::document.eq(document.to_string()))
                            .execute(conn)?;
                        diesel::delete(attr_index::table.filter(attr_index::resource_pk.eq(pk)))
                            .execute(conn)?;
                        let rows = index_rows(&document, rs);
                        write_index_rows(conn, ctx.tenant_id, resource_type, pk, &rows)?;
                    }
                    sync_members(conn, ctx.tenant_id, pk, &members, true)?;
                }
            }
            let log: Vec<_> = prepared
                .iter()
                .map(|p| {
                    (
                        change_log::tenant_id.eq(ctx.tenant_id.0),
                        change_log::resource_type.eq(resource_type),
                        change_log::resource_id.eq(p.id.as_str()),
                        change_log::version.eq(p.version),
                        change_log::op.eq(ChangeOp::Create.as_str()),
                        change_log::actor.eq(ctx.actor),
                        change_log::at.eq(to_db_time(at)),
                    )
                })
                .collect();
            for chunk in log.chunks(LOG_CHUNK) {
                let insert = diesel::insert_into(change_log::table).values(chunk);
                match conn {
                    AnyConnection::Sqlite(c) => insert.execute(c)?,
                    AnyConnection::Pg(c) => insert.execute(c)?,
                };
            }
            Ok(())
        })
        .map_err(|e: Error| e)?;
        Ok(prepared.into_iter().map(|p| p.id).collect())
    }
}
