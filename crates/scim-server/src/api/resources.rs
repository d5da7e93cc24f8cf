//! The CRUD logic shared by `/Users`, `/Groups`, `/Me` and `/Bulk`.
//!
//! Two layers:
//!
//! - **Operations** ([`create`], [`replace`], [`patch`], [`delete`]): blocking
//!   functions from a request body to a stored resource, used by the HTTP
//!   handlers and by each bulk operation. They validate with scim-core,
//!   hash passwords, apply PATCH through the IdP dialect layer (logging
//!   every rule that fires) and write through the store, one transaction
//!   per operation.
//! - **Handlers** ([`get_one`], [`create_one`], [`replace_one`],
//!   [`patch_one`], [`delete_one`]): the HTTP side for one resource type:
//!   scopes, preconditions (`If-Match`, `If-None-Match`), projection,
//!   headers (`ETag`, `Location`).

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use scim_core::patch::{self, Mode};
use scim_core::projection::Projection;
use scim_core::schema::ResourceSchema;
use scim_core::validate::{validate_for_create, validate_for_replace};
use scim_core::{ErrorKind, json::key_ci};
use serde_json::Value;

use super::etag::{Tags, if_match, if_none_match, precondition_failed};
use super::render::{location, projection, render, render_created};
use super::{AppState, SCIM_CONTENT_TYPE, auth::Auth, blocking};
use crate::error::{Error, Result};
use crate::password;
use crate::store::{ChangeOp, StoredResource, WriteContext};
use crate::tokens::Scope;

/// The resource schema of a type served by the API (`User`, `Group`).
pub fn resource_schema(state: &AppState, name: &str) -> Result<Arc<ResourceSchema>> {
    state
        .registry
        .resource_schema(name)
        .ok_or_else(|| Error::internal(format!("no resource type '{name}' is registered")))
}

/// A POST or PUT body through the IdP dialect layer: the same rules that
/// PATCH values get (Entra ID's `"True"` strings, dotted and URN-qualified
/// keys, a bare manager id...), applied by reading the body as the value of
/// a path-less `replace`. Each rule that fires is logged at debug level
/// with `route`. A body the layer cannot read is left as it is, for
/// validation to answer in its own terms.
///
/// One rule is the server's own, `unknown-schema-urn`: a `schemas` entry
/// that names no schema of the resource type and under which the body
/// holds nothing is dropped. Entra ID lists
/// `http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group`
/// when it creates a group; attributes under an unknown URN are still
/// refused by validation.
pub fn dialect_body(body: &Value, rs: &ResourceSchema, route: &str) -> Value {
    let Some(obj) = body.as_object() else {
        return body.clone();
    };
    let mut body = body.clone();
    if let Some(key) = key_ci(obj, "schemas")
        && let Some(Value::Array(urns)) = body.get_mut(&key)
    {
        let before = urns.len();
        urns.retain(|u| {
            u.as_str()
                .is_none_or(|u| rs.has_schema(u) || key_ci(obj, u).is_some())
        });
        if urns.len() != before {
            log_rules(route, std::iter::once("unknown-schema-urn"));
        }
    }
    let body = &body;
    let message = serde_json::json!({
        "schemas": [patch::PATCH_OP_SCHEMA],
        "Operations": [{"op": "replace", "value": body}],
    });
    let Ok(normalized) = patch::normalize(&message, rs) else {
        return body.clone();
    };
    let [op] = normalized.request.operations.as_slice() else {
        return body.clone();
    };
    let Some(value) = op.value.clone().filter(Value::is_object) else {
        return body.clone();
    };
    log_rules(route, normalized.rules.iter().map(|r| r.name()));
    value
}

fn log_rules<'a>(route: &str, rules: impl Iterator<Item = &'a str>) {
    for rule in rules {
        log::debug!(
            target: "scim_server::dialect",
            "{route}: IdP dialect rule '{rule}' applied"
        );
    }
}

/// Validates a create body and stores it (RFC 7644 section 3.3): readOnly
/// values (`id`, `meta`, `groups`) are ignored, the
/// password is hashed, Group members are checked by the store.
pub fn create(
    state: &AppState,
    ctx: WriteContext,
    rs: &ResourceSchema,
    body: &Value,
    route: &str,
) -> Result<StoredResource> {
    let body = dialect_body(body, rs, route);
    let mut document = validate_for_create(&body, rs)?;
    password::protect(&mut document, None)?;
    state.storage.insert_resource(ctx, rs, document)
}

/// Replaces a resource (RFC 7644 section 3.5.1): readOnly values are
/// ignored, immutable ones must not change, an omitted password keeps the
/// stored hash. A replace that changes nothing keeps the version.
pub fn replace(
    state: &AppState,
    ctx: WriteContext,
    rs: &ResourceSchema,
    id: &str,
    expected: Option<i64>,
    body: &Value,
    route: &str,
) -> Result<StoredResource> {
    let body = dialect_body(body, rs, route);
    let document =
        |current: &Value| -> Result<Value> { Ok(validate_for_replace(&body, current, rs)?) };
    update_with_password(
        state,
        ctx,
        rs,
        id,
        expected,
        ChangeOp::Replace,
        &body,
        &document,
    )
}

/// Applies a PatchOp message (RFC 7644 section 3.5.2) inside the store's
/// read-modify-write transaction, through the IdP dialect layer; each rule
/// that fires is logged at debug level with `route`. A PATCH that changes
/// nothing keeps the version and writes no change-log row.
pub fn patch(
    state: &AppState,
    ctx: WriteContext,
    rs: &ResourceSchema,
    id: &str,
    expected: Option<i64>,
    body: &Value,
    route: &str,
) -> Result<StoredResource> {
    check_patch_size(body, state.settings.patch_max_operations)?;
    let logged = std::cell::Cell::new(false);
    let document = |current: &Value| -> Result<Value> {
        let patched = patch::apply_message(current, body, rs, Mode::Dialects)
            .map_err(|e| Error::from(e.into_error()))?;
        if !logged.replace(true) {
            log_rules(route, patched.rules.iter().map(|r| r.name()));
        }
        Ok(patched.resource)
    };
    update_with_password(
        state,
        ctx,
        rs,
        id,
        expected,
        ChangeOp::Patch,
        body,
        &document,
    )
}

/// Times a write may find the stored password changed since its hash was
/// prepared before it hashes inside the write after all.
const PASSWORD_ATTEMPTS: usize = 3;

/// Writes the next version of a resource computed by `document` from the
/// stored one, with its password hashed before the write, never inside it
/// (see [`password`]): when `body` mentions a password, the change is
/// first worked out on the stored document to prepare the hash; inside the
/// write the change is worked out again on the current version (the
/// store's version check keeps that correct) and takes the prepared hash.
/// If the stored password changed in between, the write is abandoned and
/// the hash prepared again.
#[allow(clippy::too_many_arguments)] // reason: one write's whole context
fn update_with_password(
    state: &AppState,
    ctx: WriteContext,
    rs: &ResourceSchema,
    id: &str,
    expected: Option<i64>,
    op: ChangeOp,
    body: &Value,
    document: &dyn Fn(&Value) -> Result<Value>,
) -> Result<StoredResource> {
    let mut prepared = password::Prepared::default();
    let mut against = if mentions_password(body) {
        state
            .storage
            .get_resource(ctx.tenant_id, rs, id)?
            .map(|current| current.document)
    } else {
        None
    };
    for attempt in 1..=PASSWORD_ATTEMPTS {
        if let Some(current) = against.take() {
            // A change that fails here fails again in the write, which
            // answers for it.
            if let Ok(next) = document(&current) {
                prepared.prepare(&next, Some(&current))?;
            }
        }
        let last = attempt == PASSWORD_ATTEMPTS;
        let mut unprepared = None;
        let result = state
            .storage
            .update_resource(ctx, rs, id, expected, op, &mut |current| {
                let mut next = document(&current.document)?;
                if prepared.apply(&mut next, Some(&current.document)) {
                    return Ok(next);
                }
                if last {
                    password::protect(&mut next, Some(&current.document))?;
                    return Ok(next);
                }
                unprepared = Some(current.document.clone());
                Err(Error::internal("the password hash is prepared again"))
            });
        match unprepared {
            Some(current) => against = Some(current),
            None => return result,
        }
    }
    Err(Error::internal("the password hash could not be prepared"))
}

/// Whether a key or a string anywhere in `body` says `password` (any
/// case): only then is a stored document read to prepare a hash.
fn mentions_password(body: &Value) -> bool {
    let says = |s: &str| s.to_ascii_lowercase().contains("password");
    match body {
        Value::String(s) => says(s),
        Value::Array(items) => items.iter().any(mentions_password),
        Value::Object(map) => map.iter().any(|(k, v)| says(k) || mentions_password(v)),
        _ => false,
    }
}

/// Refuses a PatchOp message with more operations than the limit (413),
/// before any of them is parsed.
fn check_patch_size(body: &Value, limit: usize) -> Result<()> {
    let count = body
        .as_object()
        .and_then(|o| key_ci(o, "Operations").and_then(|k| o.get(&k)))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if count > limit {
        return Err(scim_core::Error::new(
            ErrorKind::PayloadTooLarge,
            format!("a PATCH request may hold at most {limit} operations; this one has {count}"),
        )
        .into());
    }
    Ok(())
}

/// Deletes a resource; groups holding it lose it in the same transaction.
pub fn delete(
    state: &AppState,
    ctx: WriteContext,
    rs: &ResourceSchema,
    id: &str,
    expected: Option<i64>,
) -> Result<()> {
    state.storage.delete_resource(ctx, rs, id, expected)
}

/// The version an `If-Match` precondition pins, for the store to check
/// atomically: none for `*` or no header, the one version named, or, for a
/// list, the current version when the list names it (else 412; 404 when the
/// resource does not exist).
pub fn expected_version(
    state: &AppState,
    ctx: WriteContext,
    rs: &ResourceSchema,
    id: &str,
    tags: Option<&Tags>,
) -> Result<Option<i64>> {
    match tags {
        None | Some(Tags::Any) => Ok(None),
        Some(Tags::Versions(v)) if v.len() == 1 => Ok(v.first().copied()),
        Some(tags) => {
            let current = state
                .storage
                .get_resource(ctx.tenant_id, rs, id)?
                .ok_or_else(|| not_found(rs, id))?;
            if tags.matches(current.version) {
                Ok(Some(current.version))
            } else {
                Err(precondition_failed(current.version))
            }
        }
    }
}

/// The 404 for a missing resource.
pub fn not_found(rs: &ResourceSchema, id: &str) -> Error {
    scim_core::Error::not_found(format!("{} '{id}' not found", rs.resource_type().name)).into()
}

/// A single-resource response: the body, `ETag` (= `meta.version`) and
/// `Location` (= `meta.location`).
pub fn resource_response(
    status: StatusCode,
    body: &Value,
    etag: &str,
    location: &str,
) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static(SCIM_CONTENT_TYPE),
    ));
    if let Ok(v) = HeaderValue::from_str(etag) {
        response.insert_header((header::ETAG, v));
    }
    if let Ok(v) = HeaderValue::from_str(location) {
        response.insert_header((header::LOCATION, v));
    }
    response.body(body.to_string())
}

/// A resource as served: what is stored and its rendered body. Built on the
/// blocking thread that read or wrote it, so a request makes one trip to
/// the blocking pool, not two.
struct Served {
    stored: StoredResource,
    body: Value,
}

impl Served {
    /// Renders `stored` with `projection` (blocking: it may read
    /// memberships).
    fn render(
        state: &AppState,
        rs: &ResourceSchema,
        stored: StoredResource,
        projection: &Projection,
    ) -> Result<Self> {
        let body = render(state, rs, &stored, projection)?;
        Ok(Self { stored, body })
    }

    /// The response: the body, `ETag` and `Location`.
    fn respond(&self, state: &AppState, rs: &ResourceSchema, status: StatusCode) -> HttpResponse {
        let location = location(state, rs, &self.stored.id);
        resource_response(status, &self.body, &self.stored.etag(), &location)
    }
}

/// The route pattern of a request, for logs.
fn route(req: &HttpRequest) -> String {
    format!(
        "{} {}",
        req.method(),
        req.match_pattern().unwrap_or_else(|| req.path().to_owned())
    )
}

/// `GET /<Type>/{id}`: 200 with the resource, or 304 when `If-None-Match`
/// names the current version.
pub async fn get_one(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    type_name: &str,
    id: String,
) -> Result<HttpResponse> {
    auth.require(Scope::Read)?;
    let rs = resource_schema(&state, type_name)?;
    let projection = projection(&req, &rs)?;
    let none_match = if_none_match(&req)?;
    let tenant = auth.principal.tenant_id;
    let (s, r) = (state.clone(), rs.clone());
    // `Err(version)`: the client holds this version already (304).
    let served = blocking(move || {
        let stored = s
            .storage
            .get_resource(tenant, &r, &id)?
            .ok_or_else(|| not_found(&r, &id))?;
        if none_match.is_some_and(|t| t.matches(stored.version)) {
            return Ok(Err(stored.version));
        }
        Served::render(&s, &r, stored, &projection).map(Ok)
    })
    .await?;
    match served {
        Ok(served) => Ok(served.respond(&state, &rs, StatusCode::OK)),
        Err(version) => {
            let mut response = HttpResponse::NotModified();
            if let Ok(v) = HeaderValue::from_str(&crate::store::etag(version)) {
                response.insert_header((header::ETAG, v));
            }
            Ok(response.finish())
        }
    }
}

/// `POST /<Type>`: 201 with the resource and `Location`.
pub async fn create_one(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    type_name: &str,
    body: Value,
) -> Result<HttpResponse> {
    auth.require(Scope::Write)?;
    let rs = resource_schema(&state, type_name)?;
    let projection = projection(&req, &rs)?;
    let ctx = WriteContext::from(auth.principal);
    let route = route(&req);
    let (s, r) = (state.clone(), rs.clone());
    let served = blocking(move || {
        let stored = create(&s, ctx, &r, &body, &route)?;
        let body = render_created(&s, &r, &stored, &projection)?;
        Ok(Served { stored, body })
    })
    .await?;
    Ok(served.respond(&state, &rs, StatusCode::CREATED))
}

/// `PUT /<Type>/{id}`: 200 with the resource.
pub async fn replace_one(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    type_name: &str,
    id: String,
    body: Value,
) -> Result<HttpResponse> {
    auth.require(Scope::Write)?;
    let rs = resource_schema(&state, type_name)?;
    let projection = projection(&req, &rs)?;
    let tags = if_match(&req)?;
    let ctx = WriteContext::from(auth.principal);
    let route = route(&req);
    let (s, r) = (state.clone(), rs.clone());
    let served = blocking(move || {
        let expected = expected_version(&s, ctx, &r, &id, tags.as_ref())?;
        let stored = replace(&s, ctx, &r, &id, expected, &body, &route)?;
        Served::render(&s, &r, stored, &projection)
    })
    .await?;
    Ok(served.respond(&state, &rs, StatusCode::OK))
}

/// `PATCH /<Type>/{id}`: 200 with the resource (never 204, so clients see
/// the result and its new version).
pub async fn patch_one(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    type_name: &str,
    id: String,
    body: Value,
) -> Result<HttpResponse> {
    auth.require(Scope::Write)?;
    let rs = resource_schema(&state, type_name)?;
    let projection = projection(&req, &rs)?;
    let tags = if_match(&req)?;
    let ctx = WriteContext::from(auth.principal);
    let route = route(&req);
    let (s, r) = (state.clone(), rs.clone());
    let served = blocking(move || {
        let expected = expected_version(&s, ctx, &r, &id, tags.as_ref())?;
        let stored = patch(&s, ctx, &r, &id, expected, &body, &route)?;
        Served::render(&s, &r, stored, &projection)
    })
    .await?;
    Ok(served.respond(&state, &rs, StatusCode::OK))
}

/// `DELETE /<Type>/{id}`: 204.
pub async fn delete_one(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    type_name: &str,
    id: String,
) -> Result<HttpResponse> {
    auth.require(Scope::Write)?;
    let rs = resource_schema(&state, type_name)?;
    let tags = if_match(&req)?;
    let ctx = WriteContext::from(auth.principal);
    blocking(move || {
        let expected = expected_version(&state, ctx, &rs, &id, tags.as_ref())?;
        delete(&state, ctx, &rs, &id, expected)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_core::schema::{GROUP_SCHEMA, SchemaRegistry, USER_SCHEMA};
    use serde_json::json;

    #[test]
    fn post_and_put_bodies_get_the_dialect_rules() {
        let registry = SchemaRegistry::core();
        let users = registry.resource_schema("User").unwrap();
        let body = json!({"schemas": [USER_SCHEMA], "UserName": "a", "active": "True",
                          "name.givenName": "B"});
        assert_eq!(
            dialect_body(&body, &users, "POST /Users"),
            json!({"schemas": [USER_SCHEMA], "userName": "a", "active": true,
                   "name": {"givenName": "B"}})
        );
        // What the layer cannot read is left for validation.
        assert_eq!(dialect_body(&json!([1]), &users, "POST /Users"), json!([1]));
        let odd = json!({"schemas": [USER_SCHEMA], "userName": "a", "active": "maybe"});
        assert_eq!(dialect_body(&odd, &users, "POST /Users")["active"], "maybe");
    }

    #[test]
    fn unknown_schema_urns_without_attributes_are_dropped() {
        let registry = SchemaRegistry::core();
        let groups = registry.resource_schema("Group").unwrap();
        let ms = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";
        let body = json!({"schemas": [GROUP_SCHEMA, ms], "displayName": "g"});
        assert_eq!(
            dialect_body(&body, &groups, "POST /Groups"),
            json!({"schemas": [GROUP_SCHEMA], "displayName": "g"})
        );
        // With attributes under it, the URN stays (and validation refuses it).
        let body = json!({"schemas": [GROUP_SCHEMA, "urn:x:ext"], "displayName": "g",
                          "urn:x:ext": {"a": 1}});
        let kept = dialect_body(&body, &groups, "POST /Groups");
        assert_eq!(kept["schemas"], json!([GROUP_SCHEMA, "urn:x:ext"]));
    }

    #[test]
    fn patch_size_is_checked_before_parsing() {
        let ops: Vec<Value> = (0..3).map(|_| json!({"op": "remove"})).collect();
        assert!(check_patch_size(&json!({"operations": ops}), 3).is_ok());
        let e = check_patch_size(&json!({"Operations": [1, 2, 3, 4]}), 3).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PayloadTooLarge);
        assert!(check_patch_size(&json!("not a message"), 3).is_ok());
    }
}
