//! [`ImportStore`] for [`Store`]: many resources in one transaction, with
//! exactly the rows a create writes (resource row, index rows from
//! [`index_rows`], change-log row), for fixtures, restores and benchmark
//! seeding. Validation is the caller's job, except the input policy every
//! write shares ([`scim_core::input`]: no U+0000, bounded unique keys). On
//! PostgreSQL a large import is followed by a background `ANALYZE` of the
//! tables it filled ([`ImportStore::note_load`]), so the planner sees the data.

use std::io::Write;

use chrono::{DateTime, Utc};
use diesel::pg::{CopyFormat, PgConnection};
use diesel::prelude::*;
use diesel::result::DatabaseErrorKind;
use scim_core::ErrorKind;
use scim_core::json::get_ci;
use scim_core::schema::ResourceSchema;
use serde_json::Value;

use super::index::{IndexRow, IndexValue, index_rows};
use super::memberships::{holds_members, prepare_members, sync_members};
use super::resources::{Derived, canonical_document, new_id, uniqueness_error, write_index_rows};
use super::{ChangeOp, Store, WriteContext, now, to_db_time};
use crate::db::AnyConnection;
use crate::db::schema::{attr_index, change_log, resources};
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

    /// Notes a load of `rows` resources (an import, a /Bulk): from
    /// [`LARGE_LOAD_ROWS`](super::stats::LARGE_LOAD_ROWS) on, PostgreSQL's
    /// statistics are refreshed in the background.
    fn note_load(&self, rows: usize);
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

/// A document ready to be written, with its derived columns and index rows.
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
        let prepared = documents
            .into_iter()
            .map(|doc| -> Result<Prepared> {
                scim_core::input::check_text(&doc)?;
                scim_core::input::check_key_lengths(&doc, rs)?;
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
        self.write(|conn| -> Result<()> {
            let pks = match conn {
                AnyConnection::Pg(c) => copy_resources(c, ctx, resource_type, &prepared)?,
                AnyConnection::Sqlite(_) => {
                    let mut pks = Vec::with_capacity(prepared.len());
                    for p in &prepared {
                        let pk: i64 = diesel::insert_into(resources::table)
                            .values((
                                resources::tenant_id.eq(ctx.tenant_id.0),
                                resources::resource_type.eq(resource_type),
                                resources::id.eq(&p.id),
                                resources::version.eq(p.version),
                                resources::document.eq(&p.text),
                                resources::user_name_folded
                                    .eq(p.derived.user_name_folded.as_deref()),
                                resources::display_name_folded
                                    .eq(p.derived.display_name_folded.as_deref()),
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
                    pks
                }
            };
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
            match conn {
                AnyConnection::Pg(c) => copy_change_log(c, ctx, resource_type, at, &prepared)?,
                AnyConnection::Sqlite(c) => {
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
                        diesel::insert_into(change_log::table)
                            .values(chunk)
                            .execute(c)?;
                    }
                }
            }
            Ok(())
        })
        .map_err(|e: Error| e)?;
        // Without statistics PostgreSQL plans the loaded tables as empty.
        self.note_load(prepared.len());
        Ok(prepared.into_iter().map(|p| p.id).collect())
    }

    fn note_load(&self, rows: usize) {
        if rows >= super::stats::LARGE_LOAD_ROWS {
            self.analyze_in_background();
        }
    }
}

/// Writes one value of PostgreSQL's COPY text format: `\N` for NULL,
/// backslash escapes for the characters the format gives a meaning.
fn copy_text(out: &mut Vec<u8>, value: Option<&str>) {
    let Some(v) = value else {
        out.extend_from_slice(b"\\N");
        return;
    };
    for b in v.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.push(b),
        }
    }
}

fn copy_time(out: &mut Vec<u8>, t: DateTime<Utc>) {
    out.extend_from_slice(
        to_db_time(t)
            .format("%Y-%m-%d %H:%M:%S%.6f")
            .to_string()
            .as_bytes(),
    );
}

/// Runs `COPY table (columns) FROM STDIN` with `data` in the text format.
macro_rules! copy_in {
    ($conn:expr, $table:expr, $columns:expr, $data:expr $(,)?) => {
        diesel::copy_from($table)
            .from_raw_data($columns, |w| {
                w.write_all($data)
                    .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
            })
            .with_format(CopyFormat::Text)
            .execute($conn)
    };
}

/// PostgreSQL: the resource and index rows of an import with two `COPY`
/// statements, keys drawn from the identity sequence in one round trip.
/// Returns the keys in document order.
fn copy_resources(
    conn: &mut PgConnection,
    ctx: WriteContext,
    resource_type: &str,
    prepared: &[Prepared],
) -> Result<Vec<i64>> {
    #[derive(QueryableByName)]
    struct Key {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        pk: i64,
    }
    let n = i64::try_from(prepared.len()).unwrap_or(i64::MAX);
    let pks: Vec<i64> = diesel::sql_query(
        "SELECT nextval(pg_get_serial_sequence('resources', 'pk')) AS pk \
         FROM generate_series(1, $1)",
    )
    .bind::<diesel::sql_types::BigInt, _>(n)
    .load::<Key>(conn)?
    .into_iter()
    .map(|k| k.pk)
    .collect();
    if pks.len() != prepared.len() {
        return Err(Error::internal("the key sequence returned too few keys"));
    }
    let tenant = ctx.tenant_id.0.to_string();
    let mut data = Vec::with_capacity(prepared.len() * 1024);
    for (p, pk) in prepared.iter().zip(&pks) {
        let d = &p.derived;
        write!(data, "{pk}\t{tenant}\t").ok();
        copy_text(&mut data, Some(resource_type));
        data.push(b'\t');
        copy_text(&mut data, Some(&p.id));
        write!(data, "\t{}\t", p.version).ok();
        copy_text(&mut data, Some(&p.text));
        for v in [
            &d.user_name_folded,
            &d.display_name_folded,
            &d.external_id,
            &d.display,
        ] {
            data.push(b'\t');
            copy_text(&mut data, v.as_deref());
        }
        data.push(b'\t');
        copy_time(&mut data, p.created);
        data.push(b'\t');
        copy_time(&mut data, p.last_modified);
        data.push(b'\n');
    }
    copy_in!(
        conn,
        resources::table,
        (
            resources::pk,
            resources::tenant_id,
            resources::resource_type,
            resources::id,
            resources::version,
            resources::document,
            resources::user_name_folded,
            resources::display_name_folded,
            resources::external_id,
            resources::display,
            resources::created,
            resources::last_modified,
        ),
        &data,
    )
    .map_err(import_uniqueness)?;
    data.clear();
    for (p, pk) in prepared.iter().zip(&pks) {
        for r in &p.rows {
            write!(data, "{pk}\t{tenant}\t").ok();
            copy_text(&mut data, Some(resource_type));
            data.push(b'\t');
            copy_text(&mut data, Some(&r.attr));
            write!(data, "\t{}\t", r.ordinal).ok();
            let (folded, exact, num, time, boolean) = match &r.value {
                IndexValue::Text { folded, exact } => {
                    (Some(folded.as_str()), exact.as_deref(), None, None, None)
                }
                IndexValue::Number(x) => (None, None, Some(*x), None, None),
                IndexValue::Time(t) => (None, None, None, Some(*t), None),
                IndexValue::Bool(b) => (None, None, None, None, Some(*b)),
            };
            copy_text(&mut data, folded);
            data.push(b'\t');
            copy_text(&mut data, exact);
            data.push(b'\t');
            match num {
                // `{:?}` writes every f64 so that it parses back to itself.
                Some(x) => write!(data, "{x:?}").ok(),
                None => write!(data, "\\N").ok(),
            };
            data.push(b'\t');
            match time {
                Some(t) => write!(data, "{t}").ok(),
                None => write!(data, "\\N").ok(),
            };
            data.push(b'\t');
            data.extend_from_slice(match boolean {
                Some(true) => b"t",
                Some(false) => b"f",
                None => b"\\N",
            });
            data.push(b'\n');
        }
    }
    copy_in!(
        conn,
        attr_index::table,
        (
            attr_index::resource_pk,
            attr_index::tenant_id,
            attr_index::resource_type,
            attr_index::attr,
            attr_index::ordinal,
            attr_index::text_folded,
            attr_index::text_exact,
            attr_index::num,
            attr_index::time_us,
            attr_index::boolean,
        ),
        &data,
    )?;
    Ok(pks)
}

/// A unique violation during a COPY names no single document.
fn import_uniqueness(e: diesel::result::Error) -> Error {
    if let diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) = &e {
        let what = info.constraint_name().unwrap_or("").to_owned();
        let attr = if what.contains("user_name") {
            "a userName"
        } else if what.contains("display_name") {
            "a displayName"
        } else {
            "an id"
        };
        return scim_core::Error::new(
            ErrorKind::Uniqueness,
            format!("{attr} of the import is already in use"),
        )
        .into();
    }
    e.into()
}

/// PostgreSQL: the change-log rows of an import with one `COPY`.
fn copy_change_log(
    conn: &mut PgConnection,
    ctx: WriteContext,
    resource_type: &str,
    at: DateTime<Utc>,
    prepared: &[Prepared],
) -> Result<()> {
    let mut data = Vec::with_capacity(prepared.len() * 96);
    for p in prepared {
        write!(data, "{}\t", ctx.tenant_id.0).ok();
        copy_text(&mut data, Some(resource_type));
        data.push(b'\t');
        copy_text(&mut data, Some(&p.id));
        write!(data, "\t{}\t{}\t", p.version, ChangeOp::Create.as_str()).ok();
        match ctx.actor {
            Some(a) => write!(data, "{a}").ok(),
            None => write!(data, "\\N").ok(),
        };
        data.push(b'\t');
        copy_time(&mut data, at);
        data.push(b'\n');
    }
    copy_in!(
        conn,
        change_log::table,
        (
            change_log::tenant_id,
            change_log::resource_type,
            change_log::resource_id,
            change_log::version,
            change_log::op,
            change_log::actor,
            change_log::at,
        ),
        &data,
    )?;
    Ok(())
}
