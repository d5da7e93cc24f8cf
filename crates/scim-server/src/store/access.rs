//! Reads the stored facts the effective-access model ([`crate::access`])
//! needs for one user, inside the caller's transaction: the user's own
//! assignments, the groups it belongs to (nested groups followed upwards),
//! those groups' assignments, the memberships rules and playbook runs
//! added, and the leaver grace the evaluator recorded.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;

use super::{TenantId, from_db_time};
use crate::access::{self, Entitlement, Exclusion, Facts, GroupInfo};
use crate::db::AnyConnection;
use crate::db::schema::{
    access_exclusions, applications, assignments, lifecycle_group_grants, lifecycle_state,
    memberships, resources, rules,
};
use crate::error::Result;
use crate::store::lifecycle::UserAssignment;

/// How deep nested groups are followed (a guard; cycles end earlier).
const MAX_NESTING: usize = 64;

type AssignmentTuple = (
    i64,
    i64,
    i64,
    String,
    Option<String>,
    Option<chrono::NaiveDateTime>,
    Option<chrono::NaiveDateTime>,
    Option<String>,
    Option<String>,
);

fn assignments_of(conn: &mut AnyConnection, pks: &[i64]) -> Result<Vec<(i64, UserAssignment)>> {
    if pks.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<AssignmentTuple> = assignments::table
        .filter(assignments::resource_pk.eq_any(pks))
        .order(assignments::id.asc())
        .select((
            assignments::resource_pk,
            assignments::id,
            assignments::application_id,
            assignments::source,
            assignments::role,
            assignments::valid_from,
            assignments::valid_until,
            assignments::reason,
            assignments::granted_by,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(holder, id, application_id, source, role, from, until, reason, granted_by)| {
                (
                    holder,
                    UserAssignment {
                        id,
                        application_id,
                        source,
                        role,
                        valid_from: from.map(from_db_time),
                        valid_until: until.map(from_db_time),
                        reason,
                        granted_by,
                        via_group: None,
                    },
                )
            },
        )
        .collect())
}

/// The membership edges reachable upwards from `pk`: (member, group).
pub(crate) fn edges_up(conn: &mut AnyConnection, pk: i64) -> Result<Vec<(i64, i64)>> {
    let mut edges = Vec::new();
    let mut seen: BTreeSet<i64> = BTreeSet::from([pk]);
    let mut frontier = vec![pk];
    for _ in 0..MAX_NESTING {
        if frontier.is_empty() {
            break;
        }
        let found: Vec<(i64, i64)> = memberships::table
            .filter(memberships::member_pk.eq_any(&frontier))
            .select((memberships::member_pk, memberships::group_pk))
            .load(conn)?;
        frontier = Vec::new();
        for (member, group) in found {
            edges.push((member, group));
            if seen.insert(group) {
                frontier.push(group);
            }
        }
    }
    Ok(edges)
}

/// The groups `pk` belongs to, directly or through nested groups.
pub(crate) fn ancestors(conn: &mut AnyConnection, pk: i64) -> Result<Vec<i64>> {
    let groups: BTreeSet<i64> = edges_up(conn, pk)?
        .into_iter()
        .map(|(_, g)| g)
        .filter(|g| *g != pk)
        .collect();
    Ok(groups.into_iter().collect())
}

/// Every member of the groups among `pks`, directly or through nested
/// groups (users and groups), without `pks` themselves. A user has none.
pub(crate) fn descendants(conn: &mut AnyConnection, pks: &[i64]) -> Result<Vec<i64>> {
    let mut seen: BTreeSet<i64> = pks.iter().copied().collect();
    let mut frontier: Vec<i64> = seen.iter().copied().collect();
    let mut out = Vec::new();
    for _ in 0..MAX_NESTING {
        if frontier.is_empty() {
            break;
        }
        let mut next = Vec::new();
        for chunk in frontier.chunks(500) {
            let found: Vec<i64> = memberships::table
                .filter(memberships::group_pk.eq_any(chunk))
                .select(memberships::member_pk)
                .load(conn)?;
            for m in found {
                if seen.insert(m) {
                    out.push(m);
                    next.push(m);
                }
            }
        }
        frontier = next;
    }
    Ok(out)
}

/// Whether the tenant has an enabled leaver rule with a grace period.
fn has_leaver_grace(conn: &mut AnyConnection, tenant: TenantId) -> Result<bool> {
    let n: i64 = rules::table
        .filter(rules::tenant_id.eq(tenant.0))
        .filter(rules::event.eq("leaver"))
        .filter(rules::enabled.eq(true))
        .filter(rules::revoke_after_seconds.is_not_null())
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// The evaluator's last view of the user: (active, grace end).
fn evaluated(
    conn: &mut AnyConnection,
    tenant: TenantId,
    resource_id: &str,
) -> Result<Option<(bool, Option<DateTime<Utc>>)>> {
    let row: Option<(bool, Option<chrono::NaiveDateTime>)> = lifecycle_state::table
        .filter(lifecycle_state::tenant_id.eq(tenant.0))
        .filter(lifecycle_state::resource_id.eq(resource_id))
        .select((lifecycle_state::active, lifecycle_state::grace_until))
        .first(conn)
        .optional()?;
    Ok(row.map(|(a, g)| (a, g.map(from_db_time))))
}

/// Whether a user document is active (`active` is not false).
pub fn is_active(document: &Value) -> bool {
    document.get("active") != Some(&Value::Bool(false))
}

/// The model's facts for the user with key `pk` (None: no such user).
pub(crate) fn user_facts(
    conn: &mut AnyConnection,
    tenant: TenantId,
    pk: i64,
) -> Result<Option<(Facts, Value)>> {
    let row: Option<(String, String)> = resources::table
        .filter(resources::pk.eq(pk))
        .filter(resources::tenant_id.eq(tenant.0))
        .filter(resources::resource_type.eq("User"))
        .select((resources::id, resources::document))
        .first(conn)
        .optional()?;
    let Some((resource_id, document)) = row else {
        return Ok(None);
    };
    let document: Value = serde_json::from_str(&document)
        .map_err(|e| crate::error::Error::internal(format!("stored document: {e}")))?;
    let active = is_active(&document);
    let assignments = assignments_of(conn, &[pk])?
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    let edges = edges_up(conn, pk)?;
    let group_pks: Vec<i64> = edges
        .iter()
        .map(|(_, g)| *g)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let groups = group_infos(conn, tenant, &group_pks)?;
    let group_assignments = assignments_of(conn, &group_pks)?;
    let group_grants: Vec<(i64, String)> = lifecycle_group_grants::table
        .filter(lifecycle_group_grants::user_pk.eq(pk))
        .select((
            lifecycle_group_grants::group_pk,
            lifecycle_group_grants::source,
        ))
        .load(conn)?;
    let exclusions = exclusions_of(conn, tenant, Some(pk), None)?;
    let state = evaluated(conn, tenant, &resource_id)?;
    let grace_until = if active {
        None
    } else {
        state.and_then(|(_, g)| g)
    };
    let leaver_pending =
        !active && state.is_some_and(|(was, _)| was) && has_leaver_grace(conn, tenant)?;
    Ok(Some((
        Facts {
            pk: Some(pk),
            active,
            grace_until,
            leaver_pending,
            assignments,
            edges,
            groups,
            group_assignments,
            group_grants,
            exclusions,
        },
        document,
    )))
}

/// The user's entitlement to one application, as the engine reads it.
pub(crate) fn user_entitlement(
    conn: &mut AnyConnection,
    tenant: TenantId,
    pk: i64,
    application_id: i64,
) -> Result<Option<Entitlement>> {
    let Some((facts, _)) = user_facts(conn, tenant, pk)? else {
        return Ok(None);
    };
    Ok(access::entitlements(&facts, super::now_utc()).remove(&application_id))
}

/// The groups `pks`, their nested parents and their assignments (for a
/// preview of a user joining them).
pub(crate) fn group_closure(
    conn: &mut AnyConnection,
    tenant: TenantId,
    pks: &[i64],
) -> Result<crate::store::lifecycle::GroupClosure> {
    let mut edges = Vec::new();
    let mut all: BTreeSet<i64> = pks.iter().copied().collect();
    for pk in pks {
        for e in edges_up(conn, *pk)? {
            all.insert(e.1);
            edges.push(e);
        }
    }
    let all: Vec<i64> = all.into_iter().collect();
    let groups = group_infos(conn, tenant, &all)?;
    let assignments = assignments_of(conn, &all)?;
    Ok(crate::store::lifecycle::GroupClosure {
        edges,
        groups,
        assignments,
    })
}

fn group_infos(conn: &mut AnyConnection, tenant: TenantId, pks: &[i64]) -> Result<Vec<GroupInfo>> {
    if pks.is_empty() {
        return Ok(Vec::new());
    }
    Ok(resources::table
        .filter(resources::pk.eq_any(pks))
        .filter(resources::tenant_id.eq(tenant.0))
        .select((resources::pk, resources::id, resources::display))
        .load::<(i64, String, Option<String>)>(conn)?
        .into_iter()
        .map(|(pk, id, display)| GroupInfo {
            pk,
            name: display.unwrap_or_else(|| id.clone()),
            id,
        })
        .collect())
}

type ExclusionRow = (
    i64,
    i64,
    Option<String>,
    String,
    Option<String>,
    Option<chrono::NaiveDateTime>,
    chrono::NaiveDateTime,
    i64,
);

/// The tenant's exclusions, of one user and/or one application, with the
/// user's key, oldest first.
pub(crate) fn exclusions_with_users(
    conn: &mut AnyConnection,
    tenant: TenantId,
    user_pk: Option<i64>,
    application_id: Option<i64>,
) -> Result<Vec<(i64, Exclusion)>> {
    let mut q = access_exclusions::table
        .filter(access_exclusions::tenant_id.eq(tenant.0))
        .into_boxed();
    if let Some(pk) = user_pk {
        q = q.filter(access_exclusions::resource_pk.eq(pk));
    }
    if let Some(app) = application_id {
        q = q.filter(access_exclusions::application_id.eq(app));
    }
    let rows: Vec<ExclusionRow> = q
        .order(access_exclusions::id.asc())
        .select((
            access_exclusions::id,
            access_exclusions::application_id,
            access_exclusions::reason,
            access_exclusions::source,
            access_exclusions::created_by,
            access_exclusions::valid_until,
            access_exclusions::created,
            access_exclusions::resource_pk,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, application_id, reason, source, created_by, until, created, pk)| {
                (
                    pk,
                    Exclusion {
                        id,
                        application_id,
                        reason,
                        source,
                        created_by,
                        valid_until: until.map(from_db_time),
                        created: from_db_time(created),
                    },
                )
            },
        )
        .collect())
}

/// The tenant's exclusions of one user and/or one application.
pub(crate) fn exclusions_of(
    conn: &mut AnyConnection,
    tenant: TenantId,
    user_pk: Option<i64>,
    application_id: Option<i64>,
) -> Result<Vec<Exclusion>> {
    Ok(
        exclusions_with_users(conn, tenant, user_pk, application_id)?
            .into_iter()
            .map(|(_, x)| x)
            .collect(),
    )
}

/// A new exclusion.
#[derive(Debug, Clone)]
pub(crate) struct NewExclusion<'a> {
    pub application_id: i64,
    pub user_pk: i64,
    pub reason: Option<&'a str>,
    pub source: &'a str,
    pub created_by: Option<&'a str>,
    pub valid_until: Option<DateTime<Utc>>,
}

/// Records an exclusion in the caller's transaction and marks the user's
/// pairs due. An exclusion of the pair already there is returned as it is
/// (`false`: not created).
pub(crate) fn exclude(
    conn: &mut AnyConnection,
    tenant: TenantId,
    x: &NewExclusion<'_>,
) -> Result<(Exclusion, bool)> {
    if let Some(existing) = exclusions_of(conn, tenant, Some(x.user_pk), Some(x.application_id))?
        .into_iter()
        .next()
    {
        return Ok((existing, false));
    }
    let app_ok: i64 = applications::table
        .filter(applications::tenant_id.eq(tenant.0))
        .filter(applications::id.eq(x.application_id))
        .count()
        .get_result(conn)?;
    if app_ok == 0 {
        return Err(scim_core::Error::invalid_value(format!(
            "no application with id {}",
            x.application_id
        ))
        .into());
    }
    let at = super::to_db_time(super::now());
    diesel::insert_into(access_exclusions::table)
        .values((
            access_exclusions::tenant_id.eq(tenant.0),
            access_exclusions::application_id.eq(x.application_id),
            access_exclusions::resource_pk.eq(x.user_pk),
            access_exclusions::reason.eq(x.reason),
            access_exclusions::source.eq(x.source),
            access_exclusions::created_by.eq(x.created_by),
            access_exclusions::valid_until.eq(x.valid_until.map(super::to_db_time)),
            access_exclusions::created.eq(at),
        ))
        .execute(conn)?;
    // Mark after the insert: the excluded application is among the user's
    // (an assignment, a group's, or an existing pair).
    super::provisioning::mark_due(conn, tenant, &[x.user_pk])?;
    let created = exclusions_of(conn, tenant, Some(x.user_pk), Some(x.application_id))?
        .into_iter()
        .next()
        .ok_or_else(|| crate::error::Error::internal("exclusion not stored"))?;
    Ok((created, true))
}

/// Lifts the tenant's exclusion `id` and marks the user's pairs due:
/// (user key, the exclusion), None when there is none.
pub(crate) fn lift(
    conn: &mut AnyConnection,
    tenant: TenantId,
    id: i64,
) -> Result<Option<(i64, Exclusion)>> {
    let pk: Option<i64> = access_exclusions::table
        .filter(access_exclusions::tenant_id.eq(tenant.0))
        .filter(access_exclusions::id.eq(id))
        .select(access_exclusions::resource_pk)
        .first(conn)
        .optional()?;
    let Some(pk) = pk else {
        return Ok(None);
    };
    let Some(x) = exclusions_of(conn, tenant, Some(pk), None)?
        .into_iter()
        .find(|x| x.id == id)
    else {
        return Ok(None);
    };
    diesel::delete(access_exclusions::table.filter(access_exclusions::id.eq(id))).execute(conn)?;
    super::provisioning::mark_due(conn, tenant, &[pk])?;
    Ok(Some((pk, x)))
}
