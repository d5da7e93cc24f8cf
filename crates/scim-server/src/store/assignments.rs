//! The one owner of writes to the `assignments` table. Every path that
//! creates or deletes an assignment (the `/api/v1/assignments` API, a
//! review's revoke, the rule evaluator and playbook runs, the expiry of
//! temporary access) goes through [`insert`] and [`delete`], which mark the
//! provisioning pairs the assignment affects due in the caller's
//! transaction the same way: the holder and, for a group, its members,
//! nested; deletes mark before the row goes (the pairs remember the
//! application).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use scim_core::ErrorKind;

use super::audit::{self, NewAuditEntry};
use super::provisioning::{mark_due, member_pks};
use super::{TenantId, from_db_time, now, to_db_time};
use crate::db::AnyConnection;
use crate::db::schema::assignments;
use crate::error::{Error, Result};

/// The resource keys an assignment of `pk` affects: itself and, for a
/// group, its members (nested).
pub(crate) fn affected(conn: &mut AnyConnection, pk: i64, resource_type: &str) -> Result<Vec<i64>> {
    let mut pks = vec![pk];
    if resource_type == "Group" {
        pks.extend(member_pks(conn, pk)?);
    }
    Ok(pks)
}

/// Marks due the pairs an assignment of `pk` affects.
pub(crate) fn mark_holder_due(
    conn: &mut AnyConnection,
    tenant: TenantId,
    pk: i64,
    resource_type: &str,
) -> Result<()> {
    let pks = affected(conn, pk, resource_type)?;
    mark_due(conn, tenant, &pks)?;
    Ok(())
}

/// An assignment to create.
#[derive(Debug, Clone)]
pub(crate) struct NewAssignment<'a> {
    /// The holder's SCIM id (for messages).
    pub label: &'a str,
    pub application_id: i64,
    pub resource_pk: i64,
    pub resource_type: &'a str,
    pub source: &'a str,
    pub role: Option<&'a str>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub reason: Option<&'a str>,
    pub granted_by: Option<&'a str>,
}

/// Creates an assignment and marks the pairs it affects due. Returns its
/// id and creation time (as stored). A duplicate (application, resource,
/// source) is a 409 `uniqueness`.
pub(crate) fn insert(
    conn: &mut AnyConnection,
    tenant: TenantId,
    a: &NewAssignment<'_>,
) -> Result<(i64, DateTime<Utc>)> {
    let at = to_db_time(now());
    let id: i64 = diesel::insert_into(assignments::table)
        .values((
            assignments::tenant_id.eq(tenant.0),
            assignments::application_id.eq(a.application_id),
            assignments::resource_pk.eq(a.resource_pk),
            assignments::resource_type.eq(a.resource_type),
            assignments::source.eq(a.source),
            assignments::valid_from.eq(a.valid_from.map(to_db_time)),
            assignments::valid_until.eq(a.valid_until.map(to_db_time)),
            assignments::created.eq(at),
            assignments::reason.eq(a.reason),
            assignments::granted_by.eq(a.granted_by),
            assignments::role.eq(a.role),
        ))
        .returning(assignments::id)
        .get_result(conn)
        .map_err(|e| match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                Error::from(scim_core::Error::new(
                    ErrorKind::Uniqueness,
                    format!(
                        "'{}' is assigned to application {} already",
                        a.label, a.application_id
                    ),
                ))
            }
            other => other.into(),
        })?;
    mark_holder_due(conn, tenant, a.resource_pk, a.resource_type)?;
    Ok((id, from_db_time(at)))
}

/// What a delete removed.
#[derive(Debug, Clone)]
pub(crate) struct Deleted {
    /// The holder's key.
    pub resource_pk: i64,
    /// The application.
    pub application_id: i64,
    /// Its source.
    pub source: String,
    /// Its end.
    pub valid_until: Option<NaiveDateTime>,
    /// The audit entry to append (the caller decides its action and
    /// order).
    pub entry: Option<NewAuditEntry>,
}

/// Deletes the tenant's assignment `id` (None: no such assignment): marks
/// the pairs it affects due while the row still exists, prepares the
/// audit entry, deletes the row.
pub(crate) fn delete(
    conn: &mut AnyConnection,
    tenant: TenantId,
    id: i64,
    actor: String,
) -> Result<Option<Deleted>> {
    let row: Option<(i64, String, i64, String, Option<NaiveDateTime>)> = assignments::table
        .filter(assignments::tenant_id.eq(tenant.0))
        .filter(assignments::id.eq(id))
        .select((
            assignments::resource_pk,
            assignments::resource_type,
            assignments::application_id,
            assignments::source,
            assignments::valid_until,
        ))
        .first(conn)
        .optional()?;
    let Some((pk, resource_type, application_id, source, valid_until)) = row else {
        return Ok(None);
    };
    mark_holder_due(conn, tenant, pk, &resource_type)?;
    let entry = audit::assignment_deleted(conn, tenant, id, actor)?;
    diesel::delete(assignments::table.filter(assignments::id.eq(id))).execute(conn)?;
    Ok(Some(Deleted {
        resource_pk: pk,
        application_id,
        source,
        valid_until,
        entry,
    }))
}
