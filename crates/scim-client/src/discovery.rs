//! What a service provider can do, read from its discovery endpoints
//! (RFC 7644 section 4): `/ServiceProviderConfig` (or the
//! `/ServiceProviderConfigs` spelling some vendors use), `/ResourceTypes`
//! and `/Schemas`.
//!
//! [`Capabilities`] is the summary that drives the client's behaviour:
//! PATCH or PUT, bulk or not and in which batch sizes, filters, page size,
//! `If-Match`, cursor or index paging.

use reqwest::Method;
use scim_core::messages::ServiceProviderConfig;
use scim_core::schema::{ResourceType, Schema, SchemaRegistry};
use serde_json::Value;

use crate::client::{Call, ScimClient};
use crate::error::{ClientError, Result, display_url};

/// How a service provider pages query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Paging {
    /// `startIndex` and `count` (RFC 7644 section 3.4.2.4).
    #[default]
    Index,
    /// `cursor` and `count` (RFC 9865).
    Cursor,
}

/// Bulk limits of a service provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkLimits {
    /// The most operations in one BulkRequest (0: not stated).
    pub max_operations: u64,
    /// The largest BulkRequest body in bytes (0: not stated).
    pub max_payload_size: u64,
}

/// What the client may rely on at a service provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// PATCH is supported; otherwise changes are sent as PUT.
    pub patch: bool,
    /// Bulk is supported, with these limits.
    pub bulk: Option<BulkLimits>,
    /// Filtering is supported; otherwise the client filters listed pages itself.
    pub filter: bool,
    /// The most resources the provider returns in one response (`filter.maxResults`).
    pub max_results: Option<u64>,
    /// Sorting is supported.
    pub sort: bool,
    /// ETags are supported: `If-Match` is sent when a version is given.
    pub etag: bool,
    /// Password changes are supported.
    pub change_password: bool,
    /// The paging method used for queries.
    pub paging: Paging,
    /// The largest page size (RFC 9865 `maxPageSize`).
    pub max_page_size: Option<u64>,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self::assumed()
    }
}

impl Capabilities {
    /// What is assumed before (or without) discovery: PATCH and filters
    /// (what nearly every provider implements), index paging, no bulk, no
    /// sort, no ETags.
    pub fn assumed() -> Self {
        Self {
            patch: true,
            bulk: None,
            filter: true,
            max_results: None,
            sort: false,
            etag: false,
            change_password: false,
            paging: Paging::Index,
            max_page_size: None,
        }
    }

    /// The capabilities a ServiceProviderConfig announces. Cursor paging is
    /// used whenever RFC 9865 cursor support is announced. Zero limits are
    /// read as "not stated".
    pub fn from_config(config: &ServiceProviderConfig) -> Self {
        let nonzero = |n: u64| (n > 0).then_some(n);
        let pagination = config.pagination.as_ref();
        Self {
            patch: config.patch.supported,
            bulk: config.bulk.supported.then_some(BulkLimits {
                max_operations: config.bulk.max_operations,
                max_payload_size: config.bulk.max_payload_size,
            }),
            filter: config.filter.supported,
            max_results: nonzero(config.filter.max_results),
            sort: config.sort.supported,
            etag: config.etag.supported,
            change_password: config.change_password.supported,
            paging: if pagination.is_some_and(|p| p.cursor) {
                Paging::Cursor
            } else {
                Paging::Index
            },
            max_page_size: pagination.and_then(|p| p.max_page_size).and_then(nonzero),
        }
    }

    /// The page size to ask for: `configured`, but no more than
    /// `maxResults` or `maxPageSize`, and at least 1.
    pub fn page_size(&self, configured: u64) -> u64 {
        [Some(configured), self.max_results, self.max_page_size]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(configured)
            .max(1)
    }
}

/// Everything read from the discovery endpoints.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The ServiceProviderConfig, when the provider serves one.
    pub config: Option<ServiceProviderConfig>,
    /// What the client relies on (from `config`, or [`Capabilities::assumed`]).
    pub capabilities: Capabilities,
    /// The resource types the provider serves (empty if it does not say).
    pub resource_types: Vec<ResourceType>,
    /// The schemas the provider serves (empty if it does not say).
    pub schemas: Vec<Schema>,
    /// What was served but could not be read, one line each.
    pub notes: Vec<String>,
}

impl Discovery {
    /// The endpoint of a resource type by id or name (`User`), or `None`.
    pub fn endpoint(&self, resource_type: &str) -> Option<&str> {
        self.resource_types
            .iter()
            .find(|rt| {
                rt.id.eq_ignore_ascii_case(resource_type)
                    || rt.name.eq_ignore_ascii_case(resource_type)
            })
            .map(|rt| rt.endpoint.as_str())
    }

    /// A schema registry for this provider: the RFC 7643 core schemas, plus
    /// the discovered schemas the core does not define (custom extensions)
    /// and the discovered resource types that resolve. The core schemas are
    /// kept as the RFC defines them, since providers' copies are often
    /// incomplete; entries that do not fit are skipped.
    pub fn registry(&self) -> SchemaRegistry {
        let mut registry = SchemaRegistry::core();
        for schema in &self.schemas {
            if registry.schema(&schema.id).is_none()
                && let Err(e) = registry.add_schema(schema.clone())
            {
                log::debug!("discovery: schema {} skipped: {e}", schema.id);
            }
        }
        for rt in &self.resource_types {
            if let Err(e) = registry.add_resource_type(rt.clone()) {
                log::debug!("discovery: resource type {} skipped: {e}", rt.id);
            }
        }
        registry
    }
}

impl ScimClient {
    /// GETs `path` and decodes the JSON answer.
    pub(crate) async fn get_json(&self, path: &str) -> Result<Value> {
        let call = Call::new(Method::GET, self.url(path, None)?);
        let reply = self.send(&call).await?;
        self.decode(&call, &reply)
    }

    /// Reads the ServiceProviderConfig (trying `/ServiceProviderConfig`,
    /// then `/ServiceProviderConfigs` when the first is not found), without
    /// changing the capabilities in use.
    pub async fn service_provider_config(
        &self,
    ) -> Result<scim_core::messages::ServiceProviderConfig> {
        let value = match self.get_json("ServiceProviderConfig").await {
            Err(e) if matches!(e.status(), Some(404 | 405 | 501)) => {
                log::debug!("{e}; trying /ServiceProviderConfigs");
                self.get_json("ServiceProviderConfigs").await?
            }
            other => other?,
        };
        parse_config(value).map_err(|reason| ClientError::Decode {
            method: Method::GET,
            url: display_url(self.base_url()) + "ServiceProviderConfig",
            status: 200,
            reason,
        })
    }

    /// Reads the discovery endpoints and adopts the capabilities they
    /// announce. A provider without a ServiceProviderConfig (404 on both
    /// spellings) keeps the capabilities in use; `/ResourceTypes` and
    /// `/Schemas` are optional (404, 405 and 501 read as "none"). Other
    /// errors (401, unreachable, ...) are returned.
    pub async fn discover(&self) -> Result<Discovery> {
        let mut notes = Vec::new();
        let config = match self.service_provider_config().await {
            Ok(c) => Some(c),
            Err(e) if matches!(e.status(), Some(404 | 405 | 501)) => {
                notes.push(format!("no ServiceProviderConfig: {e}"));
                None
            }
            Err(e) => return Err(e),
        };
        let optional = |r: Result<Value>, notes: &mut Vec<String>| match r {
            Ok(v) => Ok(Some(v)),
            Err(e) if matches!(e.status(), Some(404 | 405 | 501)) => {
                notes.push(e.to_string());
                Ok(None)
            }
            Err(e) => Err(e),
        };
        let resource_types = optional(self.get_json("ResourceTypes").await, &mut notes)?
            .map(|v| parse_resource_types(v, &mut notes))
            .unwrap_or_default();
        let schemas = optional(self.get_json("Schemas").await, &mut notes)?
            .map(|v| parse_schemas(v, &mut notes))
            .unwrap_or_default();
        let capabilities = match &config {
            Some(c) => Capabilities::from_config(c),
            None => self.capabilities(),
        };
        self.set_capabilities(capabilities.clone());
        for n in &notes {
            log::info!("discovery: {n}");
        }
        Ok(Discovery {
            config,
            capabilities,
            resource_types,
            schemas,
            notes,
        })
    }
}

/// The items of a discovery answer: the `Resources` of a ListResponse (any
/// case), a bare JSON array, or a single object.
pub(crate) fn items(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        Value::Object(mut obj) => {
            let key = obj
                .keys()
                .find(|k| k.eq_ignore_ascii_case("Resources"))
                .cloned();
            match key.and_then(|k| obj.remove(&k)) {
                Some(Value::Array(items)) => items,
                Some(_) => Vec::new(),
                None => vec![Value::Object(obj)],
            }
        }
        _ => Vec::new(),
    }
}

/// Reads a ServiceProviderConfig answer: the resource itself, or (from
/// some vendors' `/ServiceProviderConfigs`) a ListResponse holding it.
pub(crate) fn parse_config(v: Value) -> Result<ServiceProviderConfig, String> {
    let is_list = v
        .as_object()
        .is_some_and(|o| o.keys().any(|k| k.eq_ignore_ascii_case("Resources")));
    let doc = if is_list {
        items(v).into_iter().next().ok_or("an empty ListResponse")?
    } else {
        v
    };
    serde_json::from_value(doc).map_err(|e| e.to_string())
}

/// Reads the resource types of a `/ResourceTypes` answer, leniently: a
/// missing `id` is taken from `name`. Unreadable entries go to `notes`.
pub(crate) fn parse_resource_types(v: Value, notes: &mut Vec<String>) -> Vec<ResourceType> {
    let mut out = Vec::new();
    for mut item in items(v) {
        if let Some(obj) = item.as_object_mut()
            && !obj.contains_key("id")
            && let Some(name) = obj.get("name").cloned()
        {
            obj.insert("id".into(), name);
        }
        match serde_json::from_value::<ResourceType>(item) {
            Ok(rt) => out.push(rt),
            Err(e) => notes.push(format!("a resource type could not be read: {e}")),
        }
    }
    out
}

/// Reads the schemas of a `/Schemas` answer. Unreadable or invalid entries
/// go to `notes`.
pub(crate) fn parse_schemas(v: Value, notes: &mut Vec<String>) -> Vec<Schema> {
    let mut out = Vec::new();
    for item in items(v) {
        let id = item
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        match serde_json::from_value::<Schema>(item) {
            Ok(s) => match s.check() {
                Ok(()) => out.push(s),
                Err(e) => notes.push(format!("schema {id} is not valid: {e}")),
            },
            Err(e) => notes.push(format!("schema {id} could not be read: {e}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn capabilities_from_a_config() {
        let spc: ServiceProviderConfig = serde_json::from_value(json!({
            "patch": {"supported": true},
            "bulk": {"supported": true, "maxOperations": 100, "maxPayloadSize": 1048576},
            "filter": {"supported": true, "maxResults": 200},
            "etag": {"supported": "true"},
            "pagination": {"cursor": true, "index": true, "maxPageSize": 50}
        }))
        .unwrap();
        let caps = Capabilities::from_config(&spc);
        assert!(caps.patch && caps.filter && caps.etag && !caps.sort);
        assert_eq!(caps.paging, Paging::Cursor);
        assert_eq!(
            caps.bulk,
            Some(BulkLimits {
                max_operations: 100,
                max_payload_size: 1_048_576
            })
        );
        assert_eq!(caps.page_size(100), 50);
        assert_eq!(caps.page_size(10), 10);
        assert_eq!(caps.page_size(0), 1);

        let bare: ServiceProviderConfig = serde_json::from_value(json!({})).unwrap();
        let caps = Capabilities::from_config(&bare);
        assert!(!caps.patch && !caps.filter && caps.bulk.is_none());
        assert_eq!((caps.paging, caps.max_results), (Paging::Index, None));
        assert_eq!(caps.page_size(100), 100);
    }

    #[test]
    fn config_in_a_list_response() {
        let spc = parse_config(json!({
            "totalResults": 1,
            "Resources": [{"patch": {"supported": false}, "filter": {"supported": true}}]
        }))
        .unwrap();
        assert!(!spc.patch.supported && spc.filter.supported);
        assert!(parse_config(json!({"Resources": []})).is_err());
    }

    #[test]
    fn resource_types_and_schemas_leniently() {
        let mut notes = Vec::new();
        let rts = parse_resource_types(
            json!([
                {"name": "User", "endpoint": "/Users", "schema": "urn:ietf:params:scim:schemas:core:2.0:User"},
                {"name": "Broken"}
            ]),
            &mut notes,
        );
        assert_eq!(rts.len(), 1);
        assert_eq!(rts[0].id, "User");
        assert_eq!(notes.len(), 1);
        let schemas = parse_schemas(
            json!({"Resources": [
                {"id": "urn:example:ext:1.0", "attributes": [{"name": "badge", "type": "string"}]},
                {"id": "not-a-urn", "attributes": []}
            ]}),
            &mut notes,
        );
        assert_eq!(schemas.len(), 1);
        assert_eq!(notes.len(), 2, "{notes:?}");
        let d = Discovery {
            config: None,
            capabilities: Capabilities::assumed(),
            resource_types: rts,
            schemas,
            notes,
        };
        assert_eq!(d.endpoint("user"), Some("/Users"));
        let registry = d.registry();
        assert!(registry.schema("urn:example:ext:1.0").is_some());
        assert!(registry.resource_schema("User").is_some());
    }
}
