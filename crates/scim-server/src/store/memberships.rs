//! Group memberships: the `memberships` table that mirrors every group's
//! `members`, kept in the same transaction as the group's document, and the
//! reads that render `members[].display` and `User.groups`.
//!
//! A group document stores each member as `{"value": id, "display"?: name,
//! "type": "User" | "Group"}`. `$ref` is not stored: it depends on the base
//! URL, so it is computed when the group is served. `display` is readWrite:
//! a display the client gave is stored and served as given; a member stored
//! without one is served with the member's current name
//! ([`MembershipStore::members_of`]). `User.groups` is never
//! stored either: it is computed from this table, direct memberships and,
//! through nested groups, indirect ones ([`MembershipStore::groups_of`]).

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use scim_core::json::key_ci;
use scim_core::schema::{GROUP_SCHEMA, ResourceSchema};
use serde_json::{Map, Value};

use super::filter_sql::Frag;
use super::query::load;
use super::{Store, TenantId};
use crate::db::AnyConnection;
use crate::db::schema::{memberships, resources};
use crate::error::{Error, Result};

/// Ids per `IN (...)` lookup, well under every backend's parameter limit.
const LOOKUP_CHUNK: usize = 500;

/// How many unknown member ids an error message names.
const MAX_NAMED_UNKNOWN: usize = 10;

/// A member of a group as the group's page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// The member's SCIM id.
    pub id: String,
    /// `User` or `Group`.
    pub resource_type: String,
    /// The member's displayName, else its userName (served when the group
    /// stores no `display` for the member).
    pub display: Option<String>,
}

/// A group a resource belongs to, directly or through nested groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group's SCIM id.
    pub id: String,
    /// The group's displayName.
    pub display: Option<String>,
    /// Whether the resource is a member of this group itself (`direct`) or
    /// only of a group nested in it (`indirect`).
    pub direct: bool,
}

impl GroupInfo {
    /// The element of `User.groups` as served: `value`, `$ref` (the group's
    /// URL, `group_ref`), `display` when the group has one, and `type`.
    pub fn into_value(self, group_ref: String) -> Value {
        let mut out = Map::new();
        out.insert("value".into(), Value::String(self.id));
        out.insert("$ref".into(), Value::String(group_ref));
        if let Some(display) = self.display {
            out.insert("display".into(), Value::String(display));
        }
        let kind = if self.direct { "direct" } else { "indirect" };
        out.insert("type".into(), Value::String(kind.into()));
        Value::Object(out)
    }
}

/// Reads of the membership table.
pub trait MembershipStore {
    /// The direct members of the group with internal key `group_pk`, with
    /// their current display names (in no particular order).
    fn members_of(&self, tenant: TenantId, group_pk: i64) -> Result<Vec<MemberInfo>>;

    /// Every group the resource with internal key `member_pk` belongs to:
    /// directly, or through any depth of nested groups (cycles allowed),
    /// each group once, direct ones first.
    fn groups_of(&self, tenant: TenantId, member_pk: i64) -> Result<Vec<GroupInfo>>;

    /// [`MembershipStore::groups_of`] for every resource of a page at once,
    /// in one query per [`GROUPS_LOOKUP_CHUNK`] keys. Keys without groups are absent.
    fn groups_of_many(
        &self,
        tenant: TenantId,
        member_pks: &[i64],
    ) -> Result<HashMap<i64, Vec<GroupInfo>>>;

    /// [`MembershipStore::members_of`] for several groups at once, in one
    /// query per [`LOOKUP_CHUNK`] keys. Groups without members are absent.
    fn members_of_many(
        &self,
        tenant: TenantId,
        group_pks: &[i64],
    ) -> Result<HashMap<i64, Vec<MemberInfo>>>;
}

/// A resolved member: what the membership row holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Member {
    pub pk: i64,
    pub resource_type: String,
}

/// Whether resources of this type hold members.
pub(super) fn holds_members(rs: &ResourceSchema) -> bool {
    rs.core().id.eq_ignore_ascii_case(GROUP_SCHEMA)
}

/// Checks the `members` of a group document against the tenant's
/// resources and rewrites them to the stored form `[{value, type}]`: each
/// member id must exist in the tenant as a User or Group (else
/// `invalidValue` naming the ids), a `type` the client gave must be the
/// member's real type, the group cannot contain itself, and duplicates are
/// dropped (a `display` given on a later duplicate replaces the kept
/// element's). `$ref` is dropped (computed when served); a non-empty string
/// `display` is kept as the client gave it. Returns the members for the
/// membership table.
pub(super) fn prepare_members(
    conn: &mut AnyConnection,
    tenant: TenantId,
    group_id: &str,
    document: &mut Value,
) -> Result<Vec<Member>> {
    let Some(doc) = document.as_object_mut() else {
        return Ok(Vec::new());
    };
    let Some(key) = key_ci(doc, "members") else {
        return Ok(Vec::new());
    };
    let given = match doc.shift_remove(&key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(one @ Value::Object(_)) => vec![one],
        Some(_) => return Err(invalid("\"members\" must be an array of objects")),
    };
    // (id, type the client claims, display), first occurrence of each id.
    let mut wanted: Vec<(String, Option<String>, Option<String>)> = Vec::with_capacity(given.len());
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(given.len());
    for (i, element) in given.iter().enumerate() {
        let Some(obj) = element.as_object() else {
            return Err(invalid(format!("members[{i}] must be an object")));
        };
        let value = key_ci(obj, "value").and_then(|k| obj.get(&k));
        let Some(id) = value.and_then(Value::as_str).filter(|s| !s.is_empty()) else {
            return Err(invalid(format!(
                "members[{i}].value must be the id of a User or Group"
            )));
        };
        if id == group_id {
            return Err(invalid(format!(
                "a group cannot be a member of itself (members[{i}].value is the group's own id)"
            )));
        }
        let claimed = key_ci(obj, "type")
            .and_then(|k| obj.get(&k))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let display = key_ci(obj, "display")
            .and_then(|k| obj.get(&k))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        match seen.get(id) {
            Some(&at) => {
                if display.is_some() {
                    wanted[at].2 = display;
                }
            }
            None => {
                seen.insert(id.to_owned(), wanted.len());
                wanted.push((id.to_owned(), claimed, display));
            }
        }
    }
    let found = lookup(conn, tenant, wanted.iter().map(|(id, _, _)| id.as_str()))?;
    let unknown: Vec<&str> = wanted
        .iter()
        .map(|(id, _, _)| id.as_str())
        .filter(|id| !found.contains_key(*id))
        .collect();
    if !unknown.is_empty() {
        let named: Vec<String> = unknown
            .iter()
            .take(MAX_NAMED_UNKNOWN)
            .map(|id| format!("'{id}'"))
            .collect();
        let more = unknown.len().saturating_sub(MAX_NAMED_UNKNOWN);
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        return Err(invalid(format!(
            "members: no User or Group with id {}{tail} exists",
            named.join(", ")
        )));
    }
    let mut out = Vec::with_capacity(wanted.len());
    let mut stored = Vec::with_capacity(wanted.len());
    for (id, claimed, display) in wanted {
        let Some(member) = found.get(&id) else {
            continue;
        };
        if let Some(claimed) = claimed
            && !claimed.eq_ignore_ascii_case(&member.resource_type)
        {
            return Err(invalid(format!(
                "members: '{id}' is a {}, not a {claimed}",
                member.resource_type
            )));
        }
        let mut element = Map::new();
        element.insert("value".into(), Value::String(id));
        if let Some(display) = display {
            element.insert("display".into(), Value::String(display));
        }
        element.insert("type".into(), Value::String(member.resource_type.clone()));
        stored.push(Value::Object(element));
        out.push(member.clone());
    }
    if !stored.is_empty() {
        doc.insert("members".into(), Value::Array(stored));
    }
    Ok(out)
}

/// The User and Group resources of the tenant with these ids.
fn lookup<'a>(
    conn: &mut AnyConnection,
    tenant: TenantId,
    ids: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, Member>> {
    let ids: Vec<&str> = ids.collect();
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(LOOKUP_CHUNK) {
        let rows: Vec<(i64, String, String)> = resources::table
            .filter(resources::tenant_id.eq(tenant.0))
            .filter(resources::id.eq_any(chunk))
            .filter(resources::resource_type.eq_any(["User", "Group"]))
            .select((resources::pk, resources::id, resources::resource_type))
            .load(conn)?;
        for (pk, id, resource_type) in rows {
            found.insert(id, Member { pk, resource_type });
        }
    }
    Ok(found)
}

fn invalid(detail: impl Into<String>) -> Error {
    scim_core::Error::invalid_value(detail).into()
}

/// Makes the membership rows of `group_pk` exactly `members`, touching
/// only the rows that differ. Returns the members that left or joined.
pub(super) fn sync_members(
    conn: &mut AnyConnection,
    tenant: TenantId,
    group_pk: i64,
    members: &[Member],
    is_new: bool,
) -> Result<Vec<i64>> {
    let existing: HashSet<i64> = if is_new {
        HashSet::new()
    } else {
        memberships::table
            .filter(memberships::group_pk.eq(group_pk))
            .select(memberships::member_pk)
            .load::<i64>(conn)?
            .into_iter()
            .collect()
    };
    let wanted: HashSet<i64> = members.iter().map(|m| m.pk).collect();
    let gone: Vec<i64> = existing.difference(&wanted).copied().collect();
    for chunk in gone.chunks(LOOKUP_CHUNK) {
        diesel::delete(
            memberships::table
                .filter(memberships::group_pk.eq(group_pk))
                .filter(memberships::member_pk.eq_any(chunk)),
        )
        .execute(conn)?;
    }
    let new: Vec<_> = members
        .iter()
        .filter(|m| !existing.contains(&m.pk))
        .map(|m| {
            (
                memberships::tenant_id.eq(tenant.0),
                memberships::group_pk.eq(group_pk),
                memberships::member_pk.eq(m.pk),
                memberships::member_type.eq(m.resource_type.as_str()),
            )
        })
        .collect();
    // Multi-row INSERT is not available through the multi-backend
    // connection, so each backend gets the same statement on its own type.
    for chunk in new.chunks(LOOKUP_CHUNK) {
        let insert = diesel::insert_into(memberships::table).values(chunk);
        let inserted = match conn {
            AnyConnection::Sqlite(c) => insert.execute(c),
            AnyConnection::Pg(c) => insert.execute(c),
        };
        inserted.map_err(member_gone)?;
    }
    let mut changed = gone;
    changed.extend(
        members
            .iter()
            .filter(|m| !existing.contains(&m.pk))
            .map(|m| m.pk),
    );
    Ok(changed)
}

/// A member deleted between the check and the insert (PostgreSQL, under
/// concurrency) is the same client-facing problem as an unknown member.
fn member_gone(e: DieselError) -> Error {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => invalid(
            "members: a member was deleted while the group was being written; retry the request",
        ),
        other => other.into(),
    }
}

/// The groups that hold `member_pk` directly, by key.
pub(super) fn groups_holding(conn: &mut AnyConnection, member_pk: i64) -> Result<Vec<i64>> {
    Ok(memberships::table
        .filter(memberships::member_pk.eq(member_pk))
        .select(memberships::group_pk)
        .order(memberships::group_pk.asc())
        .load(conn)?)
}

/// `document` without the member `member_id`; `None` when it was not there.
pub(super) fn without_member(document: &Value, member_id: &str) -> Option<Value> {
    let mut doc = document.as_object()?.clone();
    let key = key_ci(&doc, "members")?;
    let Some(Value::Array(members)) = doc.get_mut(&key) else {
        return None;
    };
    let before = members.len();
    members.retain(|m| {
        m.as_object()
            .and_then(|o| key_ci(o, "value").and_then(|k| o.get(&k)))
            .and_then(Value::as_str)
            != Some(member_id)
    });
    if members.len() == before {
        return None;
    }
    if members.is_empty() {
        doc.shift_remove(&key);
    }
    Some(Value::Object(doc))
}

#[derive(QueryableByName)]
struct GroupRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Nullable<Text>)]
    display: Option<String>,
    #[diesel(sql_type = Bool)]
    direct: bool,
}

/// Every group above a member, through any depth of nesting. `CROSS JOIN`
/// makes SQLite start from the (small) walk rather than scan the tenant's
/// resources and probe it, which cost 180 ms per user at a million users.
/// `UNION` (not
/// `UNION ALL`) keeps each group once, which also ends the recursion on
/// cycles. `{p}` is the placeholder prefix: `$` on PostgreSQL, `?` on
/// SQLite (whose `?1` names the first bound value, so it can repeat).
/// The groups holding `member_pk`, directly or through other groups, with
/// whether each holds it directly; walks up the membership graph (UNION
/// ends the walk on cycles). The statement is cached (see
/// [`super::query::load`]): planning the recursive query costs more than
/// running it.
fn groups_of_query(tenant: TenantId, member_pk: i64) -> Frag {
    let mut f = Frag::new();
    f.sql(
        "WITH RECURSIVE above(pk) AS (
    SELECT group_pk FROM memberships WHERE member_pk = ",
    )
    .int(member_pk)
    .sql(
        "
    UNION
    SELECT m.group_pk FROM memberships m JOIN above a ON m.member_pk = a.pk
)
SELECT r.id AS id, r.display AS display,
       EXISTS (SELECT 1 FROM memberships d
               WHERE d.group_pk = r.pk AND d.member_pk = ",
    )
    .int(member_pk)
    .sql(
        ") AS direct
FROM above a CROSS JOIN resources r
WHERE r.pk = a.pk AND r.tenant_id = ",
    )
    .int(tenant.0)
    .sql("\nORDER BY direct DESC, r.pk");
    f
}

/// The groups holding the resource `member_pk` (see
/// [`MembershipStore::groups_of`]), on `conn`.
fn load_groups(
    conn: &mut AnyConnection,
    tenant: TenantId,
    member_pk: i64,
) -> Result<Vec<GroupInfo>> {
    let rows: Vec<GroupRow> = load(conn, &groups_of_query(tenant, member_pk), true)?;
    Ok(rows
        .into_iter()
        .map(|r| GroupInfo {
            id: r.id,
            display: r.display,
            direct: r.direct,
        })
        .collect())
}

/// The direct members of the group `group_pk` (see
/// [`MembershipStore::members_of`]), on `conn`.
fn load_members(
    conn: &mut AnyConnection,
    tenant: TenantId,
    group_pk: i64,
) -> Result<Vec<MemberInfo>> {
    let rows: Vec<(String, String, Option<String>)> = memberships::table
        .inner_join(resources::table.on(resources::pk.eq(memberships::member_pk)))
        .filter(memberships::group_pk.eq(group_pk))
        .filter(memberships::tenant_id.eq(tenant.0))
        .select((resources::id, resources::resource_type, resources::display))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, resource_type, display)| MemberInfo {
            id,
            resource_type,
            display,
        })
        .collect())
}

/// Adds the computed `groups` of the resource `pk` to its stored document,
/// as GET serves them (`value`, `$ref`, `display`, `type`), so that a filter
/// can be checked against it in memory. `location_prefix` is the
/// resource's own `meta.location` prefix (`<base>/Users/`).
pub(super) fn add_groups(
    conn: &mut AnyConnection,
    tenant: TenantId,
    pk: i64,
    doc: &mut Value,
    location_prefix: &str,
) -> Result<()> {
    let Value::Object(map) = doc else {
        return Ok(());
    };
    // `<base>/Users/` -> `<base>/Groups/`.
    let trimmed = location_prefix.trim_end_matches('/');
    let base = trimmed.rsplit_once('/').map_or("", |(b, _)| b);
    let groups: Vec<Value> = load_groups(conn, tenant, pk)?
        .into_iter()
        .map(|g| {
            let group_ref = format!("{base}/Groups/{}", g.id);
            g.into_value(group_ref)
        })
        .collect();
    if let Some(key) = key_ci(map, "groups") {
        map.remove(&key);
    }
    map.insert("groups".into(), Value::Array(groups));
    Ok(())
}

/// Gives each stored member of the group `pk` without a `display` of its
/// own the member's current name, as GET serves it, so that a filter can
/// be checked against the document in memory.
pub(super) fn add_member_displays(
    conn: &mut AnyConnection,
    tenant: TenantId,
    pk: i64,
    doc: &mut Value,
) -> Result<()> {
    let Some(Value::Array(members)) = doc
        .as_object_mut()
        .and_then(|m| key_ci(m, "members").and_then(|k| m.get_mut(&k)))
    else {
        return Ok(());
    };
    let names: HashMap<String, String> = load_members(conn, tenant, pk)?
        .into_iter()
        .filter_map(|m| m.display.map(|d| (m.id, d)))
        .collect();
    for member in members.iter_mut() {
        let Value::Object(m) = member else {
            continue;
        };
        if m.get("display").is_some_and(Value::is_string) {
            continue;
        }
        if let Some(name) = m
            .get("value")
            .and_then(Value::as_str)
            .and_then(|id| names.get(id))
        {
            m.insert("display".into(), Value::String(name.clone()));
        }
    }
    Ok(())
}

#[derive(QueryableByName)]
struct PageGroupRow {
    #[diesel(sql_type = BigInt)]
    member: i64,
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Nullable<Text>)]
    display: Option<String>,
    #[diesel(sql_type = Bool)]
    direct: bool,
}

/// [`groups_of_query`] for many members. The statement is cached like
/// that one; so that the statements stay few, the key list is padded to a
/// power of two by repeating its last key (a repeated key in `IN` changes
/// nothing), which leaves one shape per power of two up to
/// [`GROUPS_LOOKUP_CHUNK`].
fn groups_of_many_query(tenant: TenantId, keys: &[i64]) -> Frag {
    let mut f = Frag::new();
    f.sql(
        "WITH RECURSIVE above(member, pk) AS (
    SELECT member_pk, group_pk FROM memberships WHERE member_pk IN (",
    );
    let last = keys.len().saturating_sub(1);
    for i in 0..keys.len().next_power_of_two() {
        if i > 0 {
            f.sql(", ");
        }
        f.int(keys[i.min(last)]);
    }
    f.sql(
        ")
    UNION
    SELECT a.member, m.group_pk FROM memberships m JOIN above a ON m.member_pk = a.pk
)
SELECT a.member AS member, r.id AS id, r.display AS display,
       EXISTS (SELECT 1 FROM memberships d
               WHERE d.group_pk = r.pk AND d.member_pk = a.member) AS direct
FROM above a CROSS JOIN resources r
WHERE r.pk = a.pk AND r.tenant_id = ",
    )
    .int(tenant.0)
    .sql("\nORDER BY a.member, direct DESC, r.pk");
    f
}

/// How many members one [`groups_of_many_query`] looks up (a power of two).
const GROUPS_LOOKUP_CHUNK: usize = 512;

impl MembershipStore for Store {
    fn groups_of_many(
        &self,
        tenant: TenantId,
        member_pks: &[i64],
    ) -> Result<HashMap<i64, Vec<GroupInfo>>> {
        let mut out: HashMap<i64, Vec<GroupInfo>> = HashMap::new();
        if member_pks.is_empty() {
            return Ok(out);
        }
        let mut conn = self.conn()?;
        for chunk in member_pks.chunks(GROUPS_LOOKUP_CHUNK) {
            let rows: Vec<PageGroupRow> =
                load(&mut conn, &groups_of_many_query(tenant, chunk), true)?;
            for r in rows {
                out.entry(r.member).or_default().push(GroupInfo {
                    id: r.id,
                    display: r.display,
                    direct: r.direct,
                });
            }
        }
        Ok(out)
    }

    fn members_of_many(
        &self,
        tenant: TenantId,
        group_pks: &[i64],
    ) -> Result<HashMap<i64, Vec<MemberInfo>>> {
        let mut out: HashMap<i64, Vec<MemberInfo>> = HashMap::new();
        let mut conn = self.conn()?;
        for chunk in group_pks.chunks(LOOKUP_CHUNK) {
            let rows: Vec<(i64, String, String, Option<String>)> = memberships::table
                .inner_join(resources::table.on(resources::pk.eq(memberships::member_pk)))
                .filter(memberships::group_pk.eq_any(chunk))
                .filter(memberships::tenant_id.eq(tenant.0))
                .select((
                    memberships::group_pk,
                    resources::id,
                    resources::resource_type,
                    resources::display,
                ))
                .load(&mut *conn)?;
            for (group, id, resource_type, display) in rows {
                out.entry(group).or_default().push(MemberInfo {
                    id,
                    resource_type,
                    display,
                });
            }
        }
        Ok(out)
    }

    fn members_of(&self, tenant: TenantId, group_pk: i64) -> Result<Vec<MemberInfo>> {
        load_members(&mut *self.conn()?, tenant, group_pk)
    }

    fn groups_of(&self, tenant: TenantId, member_pk: i64) -> Result<Vec<GroupInfo>> {
        load_groups(&mut *self.conn()?, tenant, member_pk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn removing_a_member_from_a_document() {
        let doc = json!({"displayName": "g", "members": [
            {"value": "a", "type": "User"}, {"value": "b", "type": "Group"}]});
        assert_eq!(
            without_member(&doc, "a").unwrap()["members"],
            json!([{"value": "b", "type": "Group"}])
        );
        assert!(without_member(&doc, "c").is_none());
        let last = without_member(&without_member(&doc, "a").unwrap(), "b").unwrap();
        assert_eq!(last, json!({"displayName": "g"}));
    }
}
