//! Discovery (RFC 7644 section 4): `/ServiceProviderConfig`,
//! `/ResourceTypes[/{id}]` and `/Schemas[/{id}]`, built from the schema
//! registry. A `filter` on these endpoints is refused with 403, as section 4
//! asks, so that no client believes a filter was applied.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use scim_core::ErrorKind;
use scim_core::schema::{RESOURCE_TYPE_SCHEMA, SCHEMA_SCHEMA};
use serde_json::{Map, Value, json};

use super::auth::Auth;
use super::{AppState, scim_json};
use crate::error::{Error, Result};
use crate::tokens::Scope;

/// The schema URN of the ServiceProviderConfig resource.
pub const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
/// The schema URN of the ListResponse message.
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// Which optional protocol features this build implements. The
/// ServiceProviderConfig reports exactly these, with the configured limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// PATCH on resources.
    pub patch: bool,
    /// POST /Bulk.
    pub bulk: bool,
    /// `filter` on list and search requests.
    pub filter: bool,
    /// `sortBy` / `sortOrder`.
    pub sort: bool,
    /// ETags and `If-Match` / `If-None-Match`.
    pub etag: bool,
    /// Setting `password` with PUT and PATCH (hashed with Argon2id, never
    /// returned).
    pub change_password: bool,
    /// RFC 9865 cursor pagination.
    pub cursor: bool,
    /// `startIndex` pagination.
    pub index: bool,
}

/// What this build implements. Each flag turns on with the handlers that
/// implement it.
pub const CAPABILITIES: Capabilities = Capabilities {
    patch: true,
    bulk: true,
    filter: true,
    sort: true,
    etag: true,
    change_password: true,
    cursor: true,
    index: true,
};

fn refuse_filter(req: &HttpRequest) -> Result<()> {
    let has_filter = req.query_string().split('&').any(|pair| {
        let name = pair.split('=').next().unwrap_or("");
        name.eq_ignore_ascii_case("filter")
    });
    if has_filter {
        return Err(scim_core::Error::new(
            ErrorKind::Forbidden,
            "filtering is not supported on discovery endpoints",
        )
        .into());
    }
    Ok(())
}

fn list_response(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": resources.len(),
        "itemsPerPage": resources.len(),
        "startIndex": 1,
        "Resources": resources,
    })
}

/// `schemas` first, then the fields of `body`, then `meta`.
fn resource(schema: &str, body: Value, resource_type: &str, location: String) -> Value {
    let mut out = Map::new();
    out.insert("schemas".into(), json!([schema]));
    if let Value::Object(fields) = body {
        out.extend(
            fields
                .into_iter()
                .filter(|(k, _)| k != "schemas" && k != "meta"),
        );
    }
    out.insert(
        "meta".into(),
        json!({"resourceType": resource_type, "location": location}),
    );
    Value::Object(out)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::internal(format!("discovery document: {e}")))
}

/// The ServiceProviderConfig document.
pub fn service_provider_config(state: &AppState) -> Value {
    let s = &state.settings;
    let caps = CAPABILITIES;
    let mut body = json!({
        "documentationUri": "https://www.rfc-editor.org/rfc/rfc7644",
        "patch": {"supported": caps.patch},
        "bulk": {
            "supported": caps.bulk,
            "maxOperations": s.bulk_max_operations,
            "maxPayloadSize": s.max_body_bytes,
        },
        "filter": {"supported": caps.filter, "maxResults": s.max_results},
        "changePassword": {"supported": caps.change_password},
        "sort": {"supported": caps.sort},
        "etag": {"supported": caps.etag},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A bearer token issued by `scim-server token create`, \
                            sent as 'Authorization: Bearer <token>'.",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
            "primary": true,
        }],
        "pagination": {
            "cursor": caps.cursor,
            "index": caps.index,
            "defaultPageSize": s.default_page_size,
            "maxPageSize": s.max_results,
            "cursorTimeout": s.cursor_timeout_secs,
        },
    });
    if caps.cursor || caps.index {
        body["pagination"]["defaultPaginationMethod"] =
            json!(if caps.index { "index" } else { "cursor" });
    }
    resource(
        SERVICE_PROVIDER_CONFIG_SCHEMA,
        body,
        "ServiceProviderConfig",
        format!("{}/ServiceProviderConfig", state.base_url),
    )
}

/// `GET /ServiceProviderConfig`.
pub async fn get_service_provider_config(
    auth: Auth,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    auth.require(Scope::Read)?;
    refuse_filter(&req)?;
    Ok(scim_json(StatusCode::OK, &service_provider_config(&state)))
}

fn resource_type_document(state: &AppState, rt: &scim_core::schema::ResourceType) -> Result<Value> {
    Ok(resource(
        RESOURCE_TYPE_SCHEMA,
        to_json(rt)?,
        "ResourceType",
        format!("{}/ResourceTypes/{}", state.base_url, rt.id),
    ))
}

fn schema_document(state: &AppState, schema: &scim_core::schema::Schema) -> Result<Value> {
    Ok(resource(
        SCHEMA_SCHEMA,
        to_json(schema)?,
        "Schema",
        format!("{}/Schemas/{}", state.base_url, schema.id),
    ))
}

/// `GET /ResourceTypes`.
pub async fn list_resource_types(
    auth: Auth,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    auth.require(Scope::Read)?;
    refuse_filter(&req)?;
    let docs = state
        .registry
        .resource_types()
        .iter()
        .map(|rt| resource_type_document(&state, rt))
        .collect::<Result<Vec<_>>>()?;
    Ok(scim_json(StatusCode::OK, &list_response(docs)))
}

/// `GET /ResourceTypes/{id}`.
pub async fn get_resource_type(
    auth: Auth,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    auth.require(Scope::Read)?;
    let rt = state
        .registry
        .resource_types()
        .iter()
        .find(|rt| rt.id.eq_ignore_ascii_case(&id))
        .ok_or_else(|| scim_core::Error::not_found(format!("no resource type '{id}'")))?;
    Ok(scim_json(
        StatusCode::OK,
        &resource_type_document(&state, rt)?,
    ))
}

/// `GET /Schemas`.
pub async fn list_schemas(
    auth: Auth,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    auth.require(Scope::Read)?;
    refuse_filter(&req)?;
    let docs = state
        .registry
        .schemas()
        .map(|s| schema_document(&state, s))
        .collect::<Result<Vec<_>>>()?;
    Ok(scim_json(StatusCode::OK, &list_response(docs)))
}

/// `GET /Schemas/{id}`.
pub async fn get_schema(
    auth: Auth,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    auth.require(Scope::Read)?;
    let schema = state
        .registry
        .schemas()
        .find(|s| s.id.eq_ignore_ascii_case(&id))
        .ok_or_else(|| scim_core::Error::not_found(format!("no schema '{id}'")))?;
    Ok(scim_json(StatusCode::OK, &schema_document(&state, schema)?))
}
