//! Queries (RFC 7644 sections 3.4.2 and 3.4.3, RFC 9865): `GET /Users`,
//! `GET /Groups`, `POST /Users/.search`, `POST /Groups/.search` and
//! `POST /.search` (Users and Groups together).
//!
//! - `filter`: the whole scim-core grammar, answered by the database (see
//!   `store::filter_sql`); limits from the settings; errors are
//!   `invalidFilter` with the position. Over several resource types, an
//!   attribute a type does not have has no value there (RFC 7644 section
//!   3.4.2.1: `eq` false, `ne` true, `pr` false); an attribute no type has
//!   is `invalidFilter`.
//! - `sortBy`/`sortOrder`: any attribute (a complex one sorts by its
//!   `value`); missing values last ascending, first descending; ties by
//!   creation order. An attribute no type has is `invalidValue`;
//!   `sortOrder` without `sortBy` is ignored.
//! - `startIndex`/`count`: below 1 is 1, negative is 0, above the maximum
//!   page size is the maximum; `count=0` returns `totalResults` only. Never
//!   an error.
//! - `cursor` (RFC 9865): empty for the first page, then `nextCursor` /
//!   `previousCursor` (see [`super::cursor`]). With a cursor, a `count`
//!   over the maximum page size or different from the first page's is
//!   `invalidCount`.
//! - `attributes`/`excludedAttributes`: scim-core's projection, applied to
//!   every resource of the page.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use scim_core::ErrorKind;
use scim_core::filter::ast::{Expr, ExprKind};
use scim_core::filter::{CompareOp, Filter, Limits, parse_syntax};
use scim_core::messages::{ListResponse, SEARCH_REQUEST_SCHEMA, SearchRequest, require_schema};
use scim_core::projection::Projection;
use scim_core::schema::{AttrRef, ResourceSchema, Returned};
use serde_json::Value;

use super::auth::Auth;
use super::cursor::{self, CursorState, Direction};
use super::render::render_page;
use super::{AppState, blocking, scim_json};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::store::{Cond, PageRequest, ResourceQuery, StoredResource, Target, TenantId};
use crate::tokens::Scope;

/// The filter limits in force.
pub fn filter_limits(settings: &Settings) -> Limits {
    Limits {
        max_length: settings.filter_max_length,
        max_depth: settings.filter_max_depth,
        max_terms: settings.filter_max_terms,
    }
}

/// The condition `filter` sets on each resource type in `types`.
pub fn conditions(
    filter: Option<&str>,
    types: &[Arc<ResourceSchema>],
    limits: &Limits,
) -> Result<Vec<Cond>> {
    // An empty `filter` is a filter, and not a valid one.
    let Some(text) = filter else {
        return Ok(types.iter().map(|_| Cond::Const(true)).collect());
    };
    if let [rs] = types {
        return Ok(vec![Cond::Filter(Filter::parse_with(text, rs, limits)?)]);
    }
    let expr = parse_syntax(text, limits)?;
    // A path no type knows is an error (reported as the first type does).
    if let (Some(unknown), Some(rs)) = (first_unknown_everywhere(&expr, types), types.first()) {
        Filter::resolve(unknown, rs)?;
    }
    types.iter().map(|rs| leafwise(&expr, rs)).collect()
}

fn leaf_path(e: &Expr) -> Option<&str> {
    match &e.kind {
        ExprKind::Present(p) | ExprKind::Compare(p, _, _) | ExprKind::ValuePath(p, _) => {
            Some(p.text.as_str())
        }
        _ => None,
    }
}

fn first_unknown_everywhere<'e>(expr: &'e Expr, types: &[Arc<ResourceSchema>]) -> Option<&'e Expr> {
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        match &e.kind {
            ExprKind::And(c) | ExprKind::Or(c) => stack.extend(c.iter().rev()),
            ExprKind::Not(c) => stack.push(c),
            _ => {
                let path = leaf_path(e)?;
                if types.iter().all(|rs| rs.resolve(path).is_err()) {
                    return Some(e);
                }
            }
        }
    }
    None
}

/// Resolves a syntax tree for one type leaf by leaf, so that a path the
/// type does not have becomes "no value" instead of an error.
fn leafwise(e: &Expr, rs: &ResourceSchema) -> Result<Cond> {
    Ok(match &e.kind {
        ExprKind::And(c) => Cond::And(c.iter().map(|x| leafwise(x, rs)).collect::<Result<_>>()?),
        ExprKind::Or(c) => Cond::Or(c.iter().map(|x| leafwise(x, rs)).collect::<Result<_>>()?),
        ExprKind::Not(c) => Cond::Not(Box::new(leafwise(c, rs)?)),
        ExprKind::Present(p) | ExprKind::ValuePath(p, _) if rs.resolve(&p.text).is_err() => {
            Cond::Const(false)
        }
        ExprKind::Compare(p, op, value) if rs.resolve(&p.text).is_err() => Cond::Const(
            // No value: `ne x` holds, `eq null` holds, nothing else does.
            match op {
                CompareOp::Ne => !value.is_null(),
                CompareOp::Eq => value.is_null(),
                _ => false,
            },
        ),
        _ => Cond::Filter(Filter::resolve(e, rs)?),
    })
}

/// The attribute `sortBy` names in `rs`, if the type has it.
fn sort_attribute(sort_by: &str, rs: &ResourceSchema) -> Result<Option<AttrRef>> {
    let Ok(a) = rs.resolve(sort_by.trim()) else {
        return Ok(None);
    };
    let bad = |why: &str| -> Error {
        scim_core::Error::invalid_value(format!("sortBy '{sort_by}' {why}")).into()
    };
    let a = if a.target().is_complex() {
        a.sub("value")
            .ok_or_else(|| bad("is a complex attribute; name one of its sub-attributes"))?
    } else {
        a
    };
    if a.attribute().returned == Returned::Never || a.target().returned == Returned::Never {
        return Err(bad("cannot be used to sort"));
    }
    Ok(Some(a))
}

/// `meta.location` of the type's resources is this prefix and the id.
fn location_prefix(base_url: &str, rs: &ResourceSchema) -> String {
    format!("{base_url}{}/", rs.resource_type().endpoint)
}

/// The store query for a search over `types`.
pub fn compile_query(
    tenant: TenantId,
    types: &[Arc<ResourceSchema>],
    search: &SearchRequest,
    base_url: &str,
    limits: &Limits,
) -> Result<ResourceQuery> {
    let conds = conditions(search.filter.as_deref(), types, limits)?;
    let sort_by = search.sort_by.as_deref().filter(|s| !s.trim().is_empty());
    let mut sorts = Vec::with_capacity(types.len());
    for rs in types {
        sorts.push(match sort_by {
            Some(s) => sort_attribute(s, rs)?,
            None => None,
        });
    }
    if let Some(s) = sort_by
        && sorts.iter().all(Option::is_none)
    {
        return Err(scim_core::Error::invalid_value(format!(
            "sortBy '{s}' is not an attribute of the resources queried"
        ))
        .into());
    }
    let targets = types
        .iter()
        .zip(conds)
        .zip(sorts)
        .map(|((rs, cond), sort)| Target {
            rs: rs.clone(),
            cond,
            sort,
            location_prefix: location_prefix(base_url, rs),
        })
        .collect();
    Ok(ResourceQuery {
        tenant,
        targets,
        sorted: sort_by.is_some(),
        order: search.sort_order.unwrap_or_default(),
    })
}

/// `GET /Users`.
pub async fn list_users(
    auth: Auth,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let search = query_search(&req)?;
    run(auth, state, &["User"], "/Users", search).await
}

/// `GET /Groups`.
pub async fn list_groups(
    auth: Auth,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let search = query_search(&req)?;
    run(auth, state, &["Group"], "/Groups", search).await
}

/// `POST /Users/.search`.
pub async fn search_users(
    auth: Auth,
    body: web::Json<Value>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let search = body_search(body.into_inner())?;
    run(auth, state, &["User"], "/Users/.search", search).await
}

/// `POST /Groups/.search`.
pub async fn search_groups(
    auth: Auth,
    body: web::Json<Value>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let search = body_search(body.into_inner())?;
    run(auth, state, &["Group"], "/Groups/.search", search).await
}

/// `POST /.search`: Users and Groups together.
pub async fn search_all(
    auth: Auth,
    body: web::Json<Value>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let search = body_search(body.into_inner())?;
    run(auth, state, &["User", "Group"], "/.search", search).await
}

fn query_search(req: &HttpRequest) -> Result<SearchRequest> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|e| {
            Error::from(scim_core::Error::new(
                ErrorKind::BadRequest,
                format!("invalid query string: {e}"),
            ))
        })?
        .into_inner();
    Ok(SearchRequest::from_query_pairs(pairs)?)
}

fn body_search(body: Value) -> Result<SearchRequest> {
    let search: SearchRequest = serde_json::from_value(body).map_err(|e| {
        scim_core::Error::invalid_syntax(format!("the body is not a SearchRequest: {e}"))
    })?;
    require_schema(&search.schemas, SEARCH_REQUEST_SCHEMA)?;
    Ok(search)
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The stored document as served: with `meta.location`.
pub fn served_document(mut doc: Value, location: String) -> Value {
    if let Some(meta) = doc.get_mut("meta").and_then(Value::as_object_mut) {
        meta.insert("location".into(), Value::String(location));
    }
    doc
}

async fn run(
    auth: Auth,
    state: web::Data<AppState>,
    type_names: &[&str],
    endpoint: &str,
    search: SearchRequest,
) -> Result<HttpResponse> {
    auth.require(Scope::Read)?;
    let tenant = auth.principal.tenant_id;
    let settings = &state.settings;
    let types = type_names
        .iter()
        .map(|n| {
            state
                .registry
                .resource_schema(n)
                .ok_or_else(|| Error::internal(format!("resource type {n} is not registered")))
        })
        .collect::<Result<Vec<_>>>()?;
    let query = compile_query(
        tenant,
        &types,
        &search,
        &state.base_url,
        &filter_limits(settings),
    )?;
    let projections = types
        .iter()
        .map(|rs| Projection::from_search(&search, rs))
        .collect::<scim_core::Result<Vec<_>>>()?;

    let max = u64::from(settings.max_results);
    let requested = search
        .effective_count()
        .unwrap_or(u64::from(settings.default_page_size));
    let query_id = cursor::query_hash(&[
        endpoint,
        search.filter.as_deref().unwrap_or(""),
        search.sort_by.as_deref().unwrap_or(""),
        search.sort_order.unwrap_or_default().as_str(),
        &search.attributes.join(","),
        &search.excluded_attributes.join(","),
    ]);
    let now = unix_now();
    let (page, secret) = match search.cursor.as_deref() {
        None => (
            PageRequest::Index {
                offset: search.effective_start_index() - 1,
                count: requested.min(max),
            },
            None,
        ),
        Some(given) => {
            if requested > max {
                return Err(scim_core::Error::new(
                    ErrorKind::InvalidCount,
                    format!("count must be between 0 and {max} with cursors"),
                )
                .into());
            }
            let storage = state.storage.clone();
            let secret = blocking(move || storage.server_secret("cursor")).await?;
            let page = if given.trim().is_empty() {
                PageRequest::After {
                    key: None,
                    count: requested,
                }
            } else {
                let CursorState { direction, key, .. } = cursor::decode(
                    &secret,
                    given,
                    tenant,
                    &query_id,
                    now,
                    settings.cursor_timeout_secs,
                    requested,
                )?;
                match direction {
                    Direction::Next => PageRequest::After {
                        key: Some(key),
                        count: requested,
                    },
                    Direction::Previous => PageRequest::Before {
                        key,
                        count: requested,
                    },
                }
            };
            (page, Some(secret))
        }
    };

    // One trip to the blocking pool: the query, then each resource rendered
    // as GET-by-id serves it (api/render.rs): meta.location, members'
    // $ref/display, the computed User.groups, the projection; the
    // memberships of the whole page are read in one query per kind.
    let render_state = state.clone();
    let render_types = types.clone();
    let page_request = page.clone();
    let (found, resources) = blocking(move || {
        let found = render_state
            .storage
            .query_resources(&query, &page_request)?;
        let page_resources: Vec<StoredResource> = found
            .resources
            .iter()
            .map(|r| StoredResource {
                pk: r.key.pk,
                tenant_id: tenant,
                resource_type: r.resource_type.clone(),
                id: r.id.clone(),
                version: 0,
                document: r.document.clone(),
                external_id: None,
                created: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
                last_modified: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            })
            .collect();
        let page: Vec<_> = page_resources
            .iter()
            .map(|r| {
                let i = render_types
                    .iter()
                    .position(|rs| rs.resource_type().id == r.resource_type)
                    .unwrap_or(0);
                (r, &*render_types[i], &projections[i])
            })
            .collect();
        let resources: Vec<Value> = render_page(&render_state, tenant, &page)?;
        Ok((found, resources))
    })
    .await?;
    let body = match (secret, &page) {
        (None, PageRequest::Index { offset, .. }) => {
            ListResponse::page(resources, found.total, offset + 1)
        }
        (secret, _) => {
            let secret = secret.unwrap_or_default();
            let issue = |direction, key| {
                cursor::encode(
                    &secret,
                    tenant,
                    &query_id,
                    now,
                    CursorState {
                        direction,
                        key,
                        count: requested,
                    },
                )
            };
            let next = match found.resources.last() {
                Some(last) if found.more_after => Some(issue(Direction::Next, last.key.clone())?),
                _ => None,
            };
            let previous = match found.resources.first() {
                Some(first) if found.more_before => {
                    Some(issue(Direction::Previous, first.key.clone())?)
                }
                _ => None,
            };
            ListResponse::cursor_page(resources, Some(found.total), next, previous)
        }
    };
    let json =
        serde_json::to_value(&body).map_err(|e| Error::internal(format!("list response: {e}")))?;
    Ok(scim_json(StatusCode::OK, &json))
}
