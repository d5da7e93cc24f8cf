//! The ServiceProviderConfig resource (RFC 7643 section 5, RFC 9865 section 4).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::{SERVICE_PROVIDER_CONFIG_SCHEMA, string_list_strict};
use crate::resource::Meta;
use crate::resource::serde_ci::{self, case_insensitive_serde};

/// The ServiceProviderConfig resource (RFC 7643 section 5, with the RFC 9865
/// section 4 `pagination` member).
///
/// Reading is lenient, for configurations of other providers: members in
/// any case, booleans and integers also as strings, missing capabilities as
/// unsupported. Members this struct does not model are kept in `extra`
/// (here and in every nested object) and written back, so nothing of a
/// vendor's document is lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct ServiceProviderConfig {
    /// Should contain [`SERVICE_PROVIDER_CONFIG_SCHEMA`].
    #[serde(default, deserialize_with = "string_list_strict")]
    pub schemas: Vec<String>,
    /// A URL of human-readable documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation_uri: Option<String>,
    /// PATCH support.
    #[serde(default)]
    pub patch: Supported,
    /// Bulk support and limits.
    #[serde(default)]
    pub bulk: BulkConfig,
    /// Filter support and limits.
    #[serde(default)]
    pub filter: FilterConfig,
    /// Password change support.
    #[serde(default)]
    pub change_password: Supported,
    /// Sort support.
    #[serde(default)]
    pub sort: Supported,
    /// ETag support.
    #[serde(default)]
    pub etag: Supported,
    /// Supported authentication schemes.
    #[serde(default, deserialize_with = "auth_schemes")]
    pub authentication_schemes: Vec<AuthenticationScheme>,
    /// RFC 9865 pagination options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<PaginationConfig>,
    /// Resource metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Members this struct does not model, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

case_insensitive_serde!(
    ServiceProviderConfig,
    &[
        "schemas",
        "documentationUri",
        "patch",
        "bulk",
        "filter",
        "changePassword",
        "sort",
        "etag",
        "authenticationSchemes",
        "pagination",
        "meta",
    ]
);

impl Default for ServiceProviderConfig {
    /// Every capability unsupported, no authentication schemes.
    fn default() -> Self {
        Self {
            schemas: vec![SERVICE_PROVIDER_CONFIG_SCHEMA.to_string()],
            documentation_uri: None,
            patch: Supported::default(),
            bulk: BulkConfig::default(),
            filter: FilterConfig::default(),
            change_password: Supported::default(),
            sort: Supported::default(),
            etag: Supported::default(),
            authentication_schemes: Vec::new(),
            pagination: None,
            meta: None,
            extra: Map::new(),
        }
    }
}

fn auth_schemes<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<AuthenticationScheme>, D::Error> {
    Ok(Option::<Vec<AuthenticationScheme>>::deserialize(d)?.unwrap_or_default())
}

/// A capability that is only supported or not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct Supported {
    /// Whether the capability is supported.
    #[serde(default, deserialize_with = "serde_ci::bool_lenient")]
    pub supported: bool,
    /// Members this struct does not model, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

case_insensitive_serde!(Supported, &["supported"]);

impl Supported {
    /// `{"supported": yes}`.
    pub fn new(supported: bool) -> Self {
        Self {
            supported,
            extra: Map::new(),
        }
    }
}

/// Bulk support and limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct BulkConfig {
    /// Whether bulk is supported.
    #[serde(default, deserialize_with = "serde_ci::bool_lenient")]
    pub supported: bool,
    /// The maximum number of operations in one request.
    #[serde(default, deserialize_with = "serde_ci::u64_lenient")]
    pub max_operations: u64,
    /// The maximum payload size in bytes.
    #[serde(default, deserialize_with = "serde_ci::u64_lenient")]
    pub max_payload_size: u64,
    /// Members this struct does not model, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

case_insensitive_serde!(
    BulkConfig,
    &["supported", "maxOperations", "maxPayloadSize"]
);

/// Filter support and limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct FilterConfig {
    /// Whether filtering is supported.
    #[serde(default, deserialize_with = "serde_ci::bool_lenient")]
    pub supported: bool,
    /// The maximum number of resources returned in a response.
    #[serde(default, deserialize_with = "serde_ci::u64_lenient")]
    pub max_results: u64,
    /// Members this struct does not model, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

case_insensitive_serde!(FilterConfig, &["supported", "maxResults"]);

/// An authentication scheme (RFC 7643 section 5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct AuthenticationScheme {
    /// The scheme: `oauth`, `oauth2`, `oauthbearertoken`, `httpbasic`, `httpdigest`.
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// The common name, e.g. "OAuth Bearer Token".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// A description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// A URL of the scheme's specification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_uri: Option<String>,
    /// A URL of the scheme's usage documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation_uri: Option<String>,
    /// Whether this is the preferred scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    /// Members this struct does not model, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

case_insensitive_serde!(
    AuthenticationScheme,
    &[
        "type",
        "name",
        "description",
        "specUri",
        "documentationUri",
        "primary"
    ]
);

/// RFC 9865 section 4 pagination options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct PaginationConfig {
    /// Whether cursor pagination is supported.
    #[serde(default, deserialize_with = "serde_ci::bool_lenient")]
    pub cursor: bool,
    /// Whether index pagination is supported.
    #[serde(default, deserialize_with = "serde_ci::bool_lenient")]
    pub index: bool,
    /// `cursor` or `index`: the method used when a query names neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_pagination_method: Option<String>,
    /// The page size when `count` is not given.
    #[serde(
        default,
        deserialize_with = "serde_ci::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_page_size: Option<u64>,
    /// The largest page size served.
    #[serde(
        default,
        deserialize_with = "serde_ci::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_page_size: Option<u64>,
    /// The minimum number of seconds a cursor stays valid.
    #[serde(
        default,
        deserialize_with = "serde_ci::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub cursor_timeout: Option<u64>,
    /// Members this struct does not model, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

case_insensitive_serde!(
    PaginationConfig,
    &[
        "cursor",
        "index",
        "defaultPaginationMethod",
        "defaultPageSize",
        "maxPageSize",
        "cursorTimeout",
    ]
);

impl ServiceProviderConfig {
    /// The configuration with `meta` (`resourceType`
    /// `ServiceProviderConfig`, `location` `{base_url}/ServiceProviderConfig`)
    /// set, as served.
    #[must_use]
    pub fn with_location(mut self, base_url: &str) -> Self {
        let meta = self.meta.get_or_insert_with(Meta::default);
        meta.resource_type = Some("ServiceProviderConfig".to_string());
        meta.location = Some(format!(
            "{}/ServiceProviderConfig",
            base_url.trim_end_matches('/')
        ));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[test]
    fn service_provider_config_is_lenient_and_keeps_unknown_members() {
        let doc = json!({
            "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
            "Patch": {"supported": "TRUE"},
            "bulk": {"supported": true, "maxOperations": "100", "maxPayloadSize": 1024, "vendor": 1},
            "filter": {"supported": true, "maxResults": 50},
            "authenticationSchemes": null,
            "urn:vendor:ext": {"x": true}
        });
        let spc: ServiceProviderConfig = serde_json::from_value(doc).unwrap();
        assert!(spc.patch.supported);
        assert_eq!(spc.bulk.max_operations, 100);
        assert!(!spc.sort.supported);
        assert_eq!(spc.bulk.extra.get("vendor"), Some(&json!(1)));
        let out = serde_json::to_value(spc.with_location("https://example.com/v2/")).unwrap();
        assert_eq!(out["urn:vendor:ext"], json!({"x": true}));
        assert_eq!(out["bulk"]["vendor"], json!(1));
        assert_eq!(out["sort"], json!({"supported": false}));
        assert_eq!(
            out["meta"],
            json!({"resourceType": "ServiceProviderConfig",
                   "location": "https://example.com/v2/ServiceProviderConfig"})
        );
    }
}
