//! How a stored resource is served: `meta.location` from the base URL,
//! Group `members` with `$ref` and `display`, the computed `User.groups`,
//! and the client's projection (`attributes` / `excludedAttributes`, with
//! `password` never returned).
//!
//! `$ref`, `groups` and (for members stored without one) `display` are
//! computed here rather than stored: the base URL may change, members get
//! renamed, and nested memberships change without the user being written.
//! `members.display` is readWrite: a display the client gave is stored and
//! served as given (clients such as scim2-tester expect their value back),
//! and only a member without one gets the member's current name. Each is
//! computed only when the projection returns it, so
//! `excludedAttributes=members` never reads a large group's member names.

use std::collections::HashMap;

use actix_web::HttpRequest;
use scim_core::json::key_ci;
use scim_core::projection::Projection;
use scim_core::schema::{GROUP_SCHEMA, ResourceSchema, USER_SCHEMA};
use serde_json::{Map, Value};

use super::AppState;
use crate::error::{Error, Result};
use crate::store::{GroupInfo, MemberInfo, StoredResource, TenantId};

/// The URL of a resource: `<base>/<endpoint>/<id>`.
pub fn location(state: &AppState, rs: &ResourceSchema, id: &str) -> String {
    endpoint_url(state, &rs.resource_type().endpoint, id)
}

fn endpoint_url(state: &AppState, endpoint: &str, id: &str) -> String {
    format!(
        "{}/{}/{id}",
        state.base_url,
        endpoint.trim_start_matches('/')
    )
}

/// The URL of a member or group of type `resource_type` (`User`, `Group`).
fn reference(state: &AppState, resource_type: &str, id: &str) -> String {
    let endpoint = state
        .registry
        .resource_schema(resource_type)
        .map(|rs| rs.resource_type().endpoint.clone())
        .unwrap_or_else(|| format!("/{resource_type}s"));
    endpoint_url(state, &endpoint, id)
}

/// The projection asked for by the query string's `attributes` and
/// `excludedAttributes` (names case-insensitive, repeatable,
/// comma-separated lists). Other parameters are ignored here.
pub fn projection(req: &HttpRequest, rs: &ResourceSchema) -> Result<Projection> {
    let pairs = actix_web::web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|e| {
            Error::from(scim_core::Error::new(
                scim_core::ErrorKind::BadRequest,
                format!("invalid query string: {e}"),
            ))
        })?
        .into_inner();
    let mut attributes = Vec::new();
    let mut excluded = Vec::new();
    for (name, value) in pairs {
        if name.eq_ignore_ascii_case("attributes") {
            attributes.push(value);
        } else if name.eq_ignore_ascii_case("excludedAttributes") {
            excluded.push(value);
        }
    }
    Ok(Projection::new(&attributes, &excluded, rs)?)
}

/// What to compute for one resource type under a projection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Group members' `display` (a join over the members).
    pub member_display: bool,
    /// Group members' `$ref` and `type` (no database access).
    pub members: bool,
    /// `User.groups` (a recursive query over memberships).
    pub groups: bool,
}

impl Needs {
    /// What `projection` returns of `rs`'s computed values.
    pub fn of(rs: &ResourceSchema, projection: &Projection) -> Self {
        let includes = |path: &str| rs.resolve(path).is_ok_and(|a| projection.includes(&a));
        let core = &rs.core().id;
        if core.eq_ignore_ascii_case(GROUP_SCHEMA) {
            Needs {
                member_display: includes("members.display"),
                members: includes("members"),
                groups: false,
            }
        } else if core.eq_ignore_ascii_case(USER_SCHEMA) {
            Needs {
                groups: includes("groups"),
                ..Needs::default()
            }
        } else {
            Needs::default()
        }
    }
}

/// Memberships read ahead for a page of resources (see [`render_page`]):
/// the groups of each resource and the members of each group, by key.
#[derive(Debug, Default)]
pub struct Prefetched {
    groups: Option<HashMap<i64, Vec<GroupInfo>>>,
    members: Option<HashMap<i64, Vec<MemberInfo>>>,
}

impl Prefetched {
    /// What rendering `page` needs from the membership table, read with one
    /// query per kind (not one per resource).
    pub fn read(
        state: &AppState,
        tenant: TenantId,
        page: &[(&StoredResource, Needs)],
    ) -> Result<Self> {
        let user_keys: Vec<i64> = page
            .iter()
            .filter(|(_, n)| n.groups)
            .map(|(r, _)| r.pk)
            .collect();
        let group_keys: Vec<i64> = page
            .iter()
            .filter(|(r, n)| {
                n.members
                    && n.member_display
                    && r.document
                        .as_object()
                        .is_some_and(has_member_without_display)
            })
            .map(|(r, _)| r.pk)
            .collect();
        Ok(Prefetched {
            groups: match user_keys.is_empty() {
                true => None,
                false => Some(state.storage.groups_of_many(tenant, &user_keys)?),
            },
            members: match group_keys.is_empty() {
                true => None,
                false => Some(state.storage.members_of_many(tenant, &group_keys)?),
            },
        })
    }
}

/// The resource as served: blocking (it may read memberships), so call it
/// inside [`super::blocking`].
pub fn render(
    state: &AppState,
    rs: &ResourceSchema,
    stored: &StoredResource,
    projection: &Projection,
) -> Result<Value> {
    render_with(state, rs, stored, projection, None)
}

/// A resource just created, as served. It belongs to no group yet (no
/// other write could name its new id before this one committed), so its
/// `groups` are not read.
pub fn render_created(
    state: &AppState,
    rs: &ResourceSchema,
    stored: &StoredResource,
    projection: &Projection,
) -> Result<Value> {
    let none = Prefetched {
        groups: Some(HashMap::new()),
        members: None,
    };
    render_with(state, rs, stored, projection, Some(&none))
}

/// A page of resources as served, each with its type's schema and
/// projection: the memberships of the whole page are read first, with one
/// query per kind (see [`Prefetched`]). Blocking, like [`render`].
pub fn render_page(
    state: &AppState,
    tenant: TenantId,
    page: &[(&StoredResource, &ResourceSchema, &Projection)],
) -> Result<Vec<Value>> {
    let needs: Vec<(&StoredResource, Needs)> = page
        .iter()
        .map(|(r, rs, p)| (*r, Needs::of(rs, p)))
        .collect();
    let pre = Prefetched::read(state, tenant, &needs)?;
    page.iter()
        .map(|(r, rs, p)| render_with(state, rs, r, p, Some(&pre)))
        .collect()
}

fn render_with(
    state: &AppState,
    rs: &ResourceSchema,
    stored: &StoredResource,
    projection: &Projection,
    pre: Option<&Prefetched>,
) -> Result<Value> {
    let needs = Needs::of(rs, projection);
    let Value::Object(mut doc) = stored.document.clone() else {
        return Err(Error::internal(format!(
            "stored document of resource {} is not an object",
            stored.pk
        )));
    };
    if needs.members {
        let displays = if needs.member_display && has_member_without_display(&doc) {
            let members = match pre.and_then(|p| p.members.as_ref()) {
                Some(all) => all.get(&stored.pk).cloned().unwrap_or_default(),
                None => state.storage.members_of(stored.tenant_id, stored.pk)?,
            };
            members.into_iter().map(|m| (m.id.clone(), m)).collect()
        } else {
            HashMap::new()
        };
        decorate_members(state, &mut doc, &displays);
    }
    if needs.groups {
        let found = match pre.and_then(|p| p.groups.as_ref()) {
            Some(all) => all.get(&stored.pk).cloned().unwrap_or_default(),
            None => state.storage.groups_of(stored.tenant_id, stored.pk)?,
        };
        let groups: Vec<Value> = found
            .into_iter()
            .map(|g| {
                let group_ref = reference(state, "Group", &g.id);
                g.into_value(group_ref)
            })
            .collect();
        if let Some(key) = key_ci(&doc, "groups") {
            doc.shift_remove(&key);
        }
        if !groups.is_empty() {
            insert_before_meta(&mut doc, "groups", Value::Array(groups));
        }
    }
    let location = location(state, rs, &stored.id);
    if let Some(Value::Object(meta)) = doc.get_mut("meta") {
        meta.insert("location".into(), Value::String(location));
    }
    Ok(projection.apply(&Value::Object(doc)))
}

/// Whether a stored member has no `display` of its own (so the members'
/// names must be read).
fn has_member_without_display(doc: &Map<String, Value>) -> bool {
    let Some(Value::Array(members)) = key_ci(doc, "members").and_then(|k| doc.get(&k)) else {
        return false;
    };
    members.iter().any(|m| {
        m.as_object()
            .is_none_or(|m| !m.get("display").is_some_and(Value::is_string))
    })
}

/// Each stored member `{value, display?, type}` as `{value, $ref, display,
/// type}`: the stored display when there is one, else the member's current
/// name from `displays`.
fn decorate_members(
    state: &AppState,
    doc: &mut Map<String, Value>,
    displays: &HashMap<String, MemberInfo>,
) {
    let Some(key) = key_ci(doc, "members") else {
        return;
    };
    let Some(Value::Array(members)) = doc.get_mut(&key) else {
        return;
    };
    for member in members.iter_mut() {
        let Value::Object(m) = member else {
            continue;
        };
        let Some(id) = m.get("value").and_then(Value::as_str).map(str::to_owned) else {
            continue;
        };
        let info = displays.get(&id);
        let kind = m
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| info.map(|i| i.resource_type.clone()))
            .unwrap_or_else(|| "User".to_owned());
        let mut out = Map::new();
        let url = reference(state, &kind, &id);
        out.insert("value".into(), Value::String(id));
        out.insert("$ref".into(), Value::String(url));
        let display = match m.get("display") {
            Some(Value::String(stored)) => Some(stored.clone()),
            _ => info.and_then(|i| i.display.clone()),
        };
        if let Some(display) = display {
            out.insert("display".into(), Value::String(display));
        }
        out.insert("type".into(), Value::String(kind));
        *m = out;
    }
}

/// Inserts `key` just before `meta` (or at the end when there is none).
fn insert_before_meta(doc: &mut Map<String, Value>, key: &str, value: Value) {
    match doc.keys().position(|k| k == "meta") {
        Some(i) => {
            doc.shift_insert(i, key.to_owned(), value);
        }
        None => {
            doc.insert(key.to_owned(), value);
        }
    }
}
