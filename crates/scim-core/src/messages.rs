//! The SCIM protocol messages (RFC 7644 section 3, RFC 9865), the
//! ServiceProviderConfig (RFC 7643 section 5) and the discovery
//! representations of ResourceTypes and Schemas (RFC 7644 section 4).
//!
//! ```
//! use scim_core::messages::{ListResponse, SearchRequest, SortOrder, LIST_RESPONSE_SCHEMA};
//! use serde_json::json;
//!
//! // Lenient reading: any member case, a comma-separated `attributes`
//! // string, integers sent as strings.
//! let search: SearchRequest = serde_json::from_value(json!({
//!     "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
//!     "Attributes": "displayName, userName",
//!     "sortOrder": "DESCENDING",
//!     "startIndex": "1",
//!     "count": 10
//! }))
//! .unwrap();
//! assert_eq!(search.attributes, ["displayName", "userName"]);
//! assert_eq!(search.sort_order, Some(SortOrder::Descending));
//! assert_eq!(search.start_index, Some(1));
//!
//! let page = ListResponse::page(vec![json!({"id": "1"})], 100, 1);
//! assert_eq!(
//!     serde_json::to_value(&page).unwrap(),
//!     json!({
//!         "schemas": [LIST_RESPONSE_SCHEMA],
//!         "totalResults": 100,
//!         "itemsPerPage": 1,
//!         "startIndex": 1,
//!         "Resources": [{"id": "1"}]
//!     })
//! );
//! ```
//!
//! Every message deserialises leniently: member names match
//! case-insensitively (`resources`, `operations`), integers may be JSON
//! strings, a missing list reads as empty. Serialisation always uses the
//! RFC spelling. Use [`parse_message`] to read a request body with errors
//! mapped to `invalidSyntax`.

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::resource::Meta;
use crate::resource::serde_ci::{self, canonical_keys, case_insensitive_serde};
use crate::schema::{RESOURCE_TYPE_SCHEMA, ResourceType, SCHEMA_SCHEMA, Schema};

pub use crate::error::ERROR_SCHEMA;

/// URN of the ListResponse message.
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// URN of the SearchRequest message (`POST /.search`).
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
/// URN of the PatchOp message.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// URN of the BulkRequest message.
pub const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// URN of the BulkResponse message.
pub const BULK_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
/// URN of the ServiceProviderConfig resource.
pub const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";

/// Parses a message from a request body. A body that is not JSON or does
/// not have the message's shape is [`crate::ErrorKind::InvalidSyntax`].
pub fn parse_message<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| Error::invalid_syntax(format!("the request body is not a valid message: {e}")))
}

/// Checks that a message lists its schema URN in `schemas`
/// (case-insensitively); [`crate::ErrorKind::InvalidSyntax`] otherwise.
pub fn require_schema(schemas: &[String], urn: &str) -> Result<()> {
    if schemas.iter().any(|s| s.eq_ignore_ascii_case(urn)) {
        Ok(())
    } else {
        Err(Error::invalid_syntax(format!(
            "the message's \"schemas\" must contain \"{urn}\""
        )))
    }
}

// ---------------------------------------------------------------------------
// ListResponse

/// A ListResponse (RFC 7644 section 3.4.2, with RFC 9865 cursors).
///
/// `totalResults` is optional because RFC 9865 section 2 lets a cursor-paged
/// provider that cannot count omit it; this crate's constructors always set
/// it. `Resources` is always serialised, as an empty array when there are
/// none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListResponse<T = Value> {
    /// Should contain [`LIST_RESPONSE_SCHEMA`].
    pub schemas: Vec<String>,
    /// The total number of results of the query.
    #[serde(rename = "totalResults", skip_serializing_if = "Option::is_none")]
    pub total_results: Option<u64>,
    /// The number of resources in this page.
    #[serde(rename = "itemsPerPage", skip_serializing_if = "Option::is_none")]
    pub items_per_page: Option<u64>,
    /// The 1-based index of the first resource of this page.
    #[serde(rename = "startIndex", skip_serializing_if = "Option::is_none")]
    pub start_index: Option<u64>,
    /// RFC 9865: the cursor of the next page; absent on the last page.
    #[serde(rename = "nextCursor", skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// RFC 9865: the cursor of the previous page.
    #[serde(rename = "previousCursor", skip_serializing_if = "Option::is_none")]
    pub previous_cursor: Option<String>,
    /// The resources of this page.
    #[serde(rename = "Resources")]
    pub resources: Vec<T>,
}

impl<T> ListResponse<T> {
    /// A complete, unpaged list: `totalResults` and `itemsPerPage` are the
    /// number of resources, `startIndex` is 1.
    pub fn new(resources: Vec<T>) -> Self {
        let n = resources.len() as u64;
        Self::page(resources, n, 1)
    }

    /// One page of an index-paginated result (RFC 7644 section 3.4.2.4).
    pub fn page(resources: Vec<T>, total_results: u64, start_index: u64) -> Self {
        Self {
            schemas: vec![LIST_RESPONSE_SCHEMA.to_string()],
            total_results: Some(total_results),
            items_per_page: Some(resources.len() as u64),
            start_index: Some(start_index),
            next_cursor: None,
            previous_cursor: None,
            resources,
        }
    }

    /// One page of a cursor-paginated result (RFC 9865 section 2).
    pub fn cursor_page(
        resources: Vec<T>,
        total_results: Option<u64>,
        next_cursor: Option<String>,
        previous_cursor: Option<String>,
    ) -> Self {
        Self {
            schemas: vec![LIST_RESPONSE_SCHEMA.to_string()],
            total_results,
            items_per_page: Some(resources.len() as u64),
            start_index: None,
            next_cursor,
            previous_cursor,
            resources,
        }
    }

    /// The same response with each resource converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> ListResponse<U> {
        ListResponse {
            schemas: self.schemas,
            total_results: self.total_results,
            items_per_page: self.items_per_page,
            start_index: self.start_index,
            next_cursor: self.next_cursor,
            previous_cursor: self.previous_cursor,
            resources: self.resources.into_iter().map(f).collect(),
        }
    }
}

const LIST_RESPONSE_FIELDS: &[&str] = &[
    "schemas",
    "totalResults",
    "itemsPerPage",
    "startIndex",
    "nextCursor",
    "previousCursor",
    "Resources",
];

/// The wire form of a ListResponse, before the resources are typed.
#[derive(Deserialize)]
struct ListResponseWire {
    #[serde(default, deserialize_with = "string_list_strict")]
    schemas: Vec<String>,
    #[serde(
        rename = "totalResults",
        default,
        deserialize_with = "serde_ci::opt_u64"
    )]
    total_results: Option<u64>,
    #[serde(
        rename = "itemsPerPage",
        default,
        deserialize_with = "serde_ci::opt_u64"
    )]
    items_per_page: Option<u64>,
    #[serde(rename = "startIndex", default, deserialize_with = "serde_ci::opt_u64")]
    start_index: Option<u64>,
    #[serde(rename = "nextCursor", default)]
    next_cursor: Option<String>,
    #[serde(rename = "previousCursor", default)]
    previous_cursor: Option<String>,
    #[serde(rename = "Resources", default)]
    resources: Option<Vec<Value>>,
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for ListResponse<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let map = Map::<String, Value>::deserialize(d)?;
        let wire: ListResponseWire =
            serde_json::from_value(Value::Object(canonical_keys(map, LIST_RESPONSE_FIELDS)))
                .map_err(D::Error::custom)?;
        let resources = wire
            .resources
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                serde_json::from_value(r)
                    .map_err(|e| D::Error::custom(format!("Resources[{i}]: {e}")))
            })
            .collect::<std::result::Result<Vec<T>, D::Error>>()?;
        Ok(Self {
            schemas: wire.schemas,
            total_results: wire.total_results,
            items_per_page: wire.items_per_page,
            start_index: wire.start_index,
            next_cursor: wire.next_cursor,
            previous_cursor: wire.previous_cursor,
            resources,
        })
    }
}

/// `schemas`: an array of strings, or one string.
fn string_list_strict<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    use serde::de::Error as _;
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(D::Error::custom(format!(
                    "expected a URN string, got {other}"
                ))),
            })
            .collect(),
        Some(other) => Err(D::Error::custom(format!(
            "expected an array of URN strings, got {other}"
        ))),
    }
}

// ---------------------------------------------------------------------------
// SearchRequest

/// The order of a sorted query (RFC 7644 section 3.4.2.3). Parsed
/// case-insensitively; written as `ascending` / `descending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SortOrder {
    /// Smallest first; missing values last. The default.
    #[default]
    Ascending,
    /// Largest first; missing values first.
    Descending,
}

impl SortOrder {
    /// The RFC spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ascending => "ascending",
            Self::Descending => "descending",
        }
    }
}

impl FromStr for SortOrder {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("ascending") {
            Ok(Self::Ascending)
        } else if s.eq_ignore_ascii_case("descending") {
            Ok(Self::Descending)
        } else {
            Err(Error::invalid_value(format!(
                "sortOrder must be \"ascending\" or \"descending\", not \"{s}\""
            )))
        }
    }
}

impl fmt::Display for SortOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SortOrder {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SortOrder {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|e: Error| serde::de::Error::custom(e.detail().to_string()))
    }
}

/// A query: the body of `POST /.search` (RFC 7644 section 3.4.3, RFC 9865
/// section 3) or the query parameters of a GET ([`SearchRequest::from_query_pairs`]).
///
/// `startIndex` and `count` keep what the client sent (a negative `count`
/// too); [`SearchRequest::effective_start_index`] and
/// [`SearchRequest::effective_count`] apply the RFC's interpretation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct SearchRequest {
    /// Should contain [`SEARCH_REQUEST_SCHEMA`].
    #[serde(default, deserialize_with = "string_list_strict")]
    pub schemas: Vec<String>,
    /// Attributes to return (`attributes`); an array or a comma-separated string.
    #[serde(
        default,
        deserialize_with = "serde_ci::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub attributes: Vec<String>,
    /// Attributes to leave out (`excludedAttributes`).
    #[serde(
        default,
        deserialize_with = "serde_ci::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub excluded_attributes: Vec<String>,
    /// The filter expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The attribute to sort by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_by: Option<String>,
    /// The sort order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_order: Option<SortOrder>,
    /// The 1-based index of the first result, as sent.
    #[serde(
        default,
        deserialize_with = "serde_ci::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_index: Option<i64>,
    /// The maximum number of results per page, as sent.
    #[serde(
        default,
        deserialize_with = "serde_ci::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub count: Option<i64>,
    /// RFC 9865: the cursor; `Some("")` asks for the first cursor page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

case_insensitive_serde!(
    SearchRequest,
    &[
        "schemas",
        "attributes",
        "excludedAttributes",
        "filter",
        "sortBy",
        "sortOrder",
        "startIndex",
        "count",
        "cursor",
    ]
);

impl SearchRequest {
    /// Reads the query parameters of a GET query (already percent-decoded).
    /// Parameter names match case-insensitively; unknown parameters are
    /// ignored (RFC 7644 section 3.4.2). A repeated `attributes` or
    /// `excludedAttributes` adds to the list; other repeated parameters
    /// keep the last value. A non-integer `startIndex` or `count` or an
    /// unknown `sortOrder` is [`crate::ErrorKind::InvalidValue`].
    pub fn from_query_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut req = Self {
            schemas: vec![SEARCH_REQUEST_SCHEMA.to_string()],
            ..Self::default()
        };
        let int = |name: &str, v: &str| {
            v.trim().parse::<i64>().map_err(|_| {
                Error::invalid_value(format!("{name} must be an integer, not \"{v}\""))
            })
        };
        for (k, v) in pairs {
            let (k, v) = (k.as_ref(), v.as_ref());
            let is = |name: &str| k.eq_ignore_ascii_case(name);
            if is("attributes") {
                req.attributes.extend(serde_ci::split_names([v]));
            } else if is("excludedAttributes") {
                req.excluded_attributes.extend(serde_ci::split_names([v]));
            } else if is("filter") {
                req.filter = Some(v.to_string());
            } else if is("sortBy") {
                req.sort_by = Some(v.to_string());
            } else if is("sortOrder") {
                req.sort_order = Some(v.parse()?);
            } else if is("startIndex") {
                req.start_index = Some(int("startIndex", v)?);
            } else if is("count") {
                req.count = Some(int("count", v)?);
            } else if is("cursor") {
                req.cursor = Some(v.to_string());
            }
        }
        Ok(req)
    }

    /// `startIndex` as the RFC reads it: absent means 1, and a value less
    /// than 1 SHALL be interpreted as 1.
    pub fn effective_start_index(&self) -> u64 {
        self.start_index
            .and_then(|i| u64::try_from(i).ok())
            .unwrap_or(1)
            .max(1)
    }

    /// `count` as the RFC reads it: a negative value SHALL be interpreted as
    /// 0; `None` leaves the page size to the service provider.
    pub fn effective_count(&self) -> Option<u64> {
        self.count.map(|c| u64::try_from(c).unwrap_or(0))
    }
}

// ---------------------------------------------------------------------------
// PatchOp

/// The PatchOp request envelope (RFC 7644 section 3.5.2). The operations
/// stay raw JSON here; the PATCH engine parses and normalises them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct PatchRequest {
    /// Should contain [`PATCH_OP_SCHEMA`].
    #[serde(default, deserialize_with = "string_list_strict")]
    pub schemas: Vec<String>,
    /// The operations, as received (`Operations`, any case).
    #[serde(rename = "Operations", default, deserialize_with = "values_or_null")]
    pub operations: Vec<Value>,
}

case_insensitive_serde!(PatchRequest, &["schemas", "Operations"]);

impl PatchRequest {
    /// A PatchOp message with these operations.
    pub fn new(operations: Vec<Value>) -> Self {
        Self {
            schemas: vec![PATCH_OP_SCHEMA.to_string()],
            operations,
        }
    }
}

fn values_or_null<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<Value>, D::Error> {
    Ok(Option::<Vec<Value>>::deserialize(d)?.unwrap_or_default())
}

// ---------------------------------------------------------------------------
// Bulk

/// The HTTP method of a bulk operation. Parsed case-insensitively; written
/// in upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BulkMethod {
    /// Create a resource.
    Post,
    /// Replace a resource.
    Put,
    /// Modify a resource.
    Patch,
    /// Delete a resource.
    Delete,
}

impl BulkMethod {
    /// The method name, upper case.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

impl FromStr for BulkMethod {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let m = s.trim();
        [Self::Post, Self::Put, Self::Patch, Self::Delete]
            .into_iter()
            .find(|x| x.as_str().eq_ignore_ascii_case(m))
            .ok_or_else(|| {
                Error::invalid_value(format!(
                    "bulk method must be POST, PUT, PATCH or DELETE, not \"{m}\""
                ))
            })
    }
}

impl fmt::Display for BulkMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for BulkMethod {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for BulkMethod {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|e: Error| serde::de::Error::custom(e.detail().to_string()))
    }
}

/// A BulkRequest (RFC 7644 section 3.7).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct BulkRequest {
    /// Should contain [`BULK_REQUEST_SCHEMA`].
    #[serde(default, deserialize_with = "string_list_strict")]
    pub schemas: Vec<String>,
    /// The number of errors after which the provider stops processing.
    #[serde(
        rename = "failOnErrors",
        default,
        deserialize_with = "serde_ci::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub fail_on_errors: Option<u64>,
    /// The operations, in order.
    #[serde(rename = "Operations", default)]
    pub operations: Vec<BulkOperation>,
}

case_insensitive_serde!(BulkRequest, &["schemas", "failOnErrors", "Operations"]);

impl BulkRequest {
    /// A BulkRequest with these operations.
    pub fn new(operations: Vec<BulkOperation>) -> Self {
        Self {
            schemas: vec![BULK_REQUEST_SCHEMA.to_string()],
            fail_on_errors: None,
            operations,
        }
    }
}

/// One operation of a BulkRequest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct BulkOperation {
    /// The HTTP method.
    pub method: BulkMethod,
    /// The client's transient id of a resource created by POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk_id: Option<String>,
    /// The resource version (ETag) the operation expects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The path relative to the base URL: `/Users` for POST, `/Users/{id}` otherwise.
    pub path: String,
    /// The body: a resource (POST, PUT) or a PatchOp message (PATCH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

case_insensitive_serde!(
    BulkOperation,
    &["method", "bulkId", "version", "path", "data"]
);

/// A BulkResponse (RFC 7644 section 3.7).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct BulkResponse {
    /// Should contain [`BULK_RESPONSE_SCHEMA`].
    #[serde(default, deserialize_with = "string_list_strict")]
    pub schemas: Vec<String>,
    /// The results of the processed operations, in order.
    #[serde(rename = "Operations", default)]
    pub operations: Vec<BulkOperationResponse>,
}

case_insensitive_serde!(BulkResponse, &["schemas", "Operations"]);

impl BulkResponse {
    /// A BulkResponse with these results.
    pub fn new(operations: Vec<BulkOperationResponse>) -> Self {
        Self {
            schemas: vec![BULK_RESPONSE_SCHEMA.to_string()],
            operations,
        }
    }
}

/// The result of one bulk operation.
///
/// `status` is written as a string (`"201"`, RFC 7644 section 3.7.3); a
/// number or the `{"code": "201"}` object of the section 3.7.2 example is
/// accepted when reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct BulkOperationResponse {
    /// The resource's URL; absent for a failed POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The HTTP method of the operation.
    pub method: BulkMethod,
    /// The operation's `bulkId`, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk_id: Option<String>,
    /// The resource's new version (ETag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The HTTP status the single request would have had.
    #[serde(
        deserialize_with = "serde_ci::status",
        serialize_with = "serde_ci::status_as_string"
    )]
    pub status: u16,
    /// The response body; REQUIRED for errors (a SCIM Error message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
}

case_insensitive_serde!(
    BulkOperationResponse,
    &[
        "location", "method", "bulkId", "version", "status", "response"
    ]
);

impl BulkOperationResponse {
    /// A failed operation: the error's status and its SCIM Error message as `response`.
    pub fn error(
        method: BulkMethod,
        bulk_id: Option<String>,
        location: Option<String>,
        error: &Error,
    ) -> Self {
        Self {
            location,
            method,
            bulk_id,
            version: None,
            status: error.status(),
            response: serde_json::to_value(error).ok(),
        }
    }

    /// Whether the status is a 2xx success.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

// ---------------------------------------------------------------------------
// ServiceProviderConfig

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

// ---------------------------------------------------------------------------
// Discovery representations

fn endpoint_url(base_url: &str, collection: &str, id: &str) -> String {
    format!("{}/{collection}/{id}", base_url.trim_end_matches('/'))
}

fn discovery_resource(
    schema_urn: &str,
    body: Map<String, Value>,
    resource_type: &str,
    location: String,
) -> Value {
    let mut out = Map::with_capacity(body.len() + 2);
    out.insert(
        "schemas".into(),
        Value::Array(vec![Value::String(schema_urn.into())]),
    );
    out.extend(body);
    let meta = Meta {
        resource_type: Some(resource_type.to_string()),
        location: Some(location),
        ..Meta::default()
    };
    out.insert("meta".into(), Value::Object(serde_ci::to_object(&meta)));
    Value::Object(out)
}

/// The representation of a resource type served at
/// `{base_url}/ResourceTypes/{id}` (RFC 7643 sections 6 and 8.6): with
/// `schemas` and `meta` (`resourceType` `ResourceType`, `location`). An
/// empty `schemaExtensions` is left out, as in the RFC's Group example.
pub fn resource_type_resource(rt: &ResourceType, base_url: &str) -> Value {
    let mut body = serde_ci::to_object(rt);
    if body
        .get("schemaExtensions")
        .is_some_and(|v| v.as_array().is_some_and(Vec::is_empty))
    {
        body.shift_remove("schemaExtensions");
    }
    discovery_resource(
        RESOURCE_TYPE_SCHEMA,
        body,
        "ResourceType",
        endpoint_url(base_url, "ResourceTypes", &rt.id),
    )
}

/// The representation of a schema served at `{base_url}/Schemas/{urn}`
/// (RFC 7643 sections 7 and 8.7): with `schemas` and `meta`
/// (`resourceType` `Schema`, `location`).
pub fn schema_resource(schema: &Schema, base_url: &str) -> Value {
    discovery_resource(
        SCHEMA_SCHEMA,
        serde_ci::to_object(schema),
        "Schema",
        endpoint_url(base_url, "Schemas", &schema.id),
    )
}

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
    use crate::ErrorKind;
    use crate::schema::SchemaRegistry;
    use serde_json::json;

    #[test]
    fn list_response_is_lenient_and_typed() {
        let r: ListResponse = serde_json::from_value(json!({
            "schemas": [LIST_RESPONSE_SCHEMA], "TotalResults": "2", "resources": [{"id": "a"}]
        }))
        .unwrap();
        assert_eq!(r.total_results, Some(2));
        assert_eq!(r.resources, vec![json!({"id": "a"})]);
        let empty: ListResponse = serde_json::from_value(json!({"totalResults": 0})).unwrap();
        assert!(empty.resources.is_empty());
        let v = serde_json::to_value(ListResponse::<Value>::new(vec![])).unwrap();
        assert_eq!(
            v,
            json!({"schemas": [LIST_RESPONSE_SCHEMA], "totalResults": 0, "itemsPerPage": 0,
                   "startIndex": 1, "Resources": []})
        );
        let typed: ListResponse<crate::resource::User> = serde_json::from_value(json!({
            "totalResults": 1, "Resources": [{"UserName": "bjensen"}]
        }))
        .unwrap();
        assert_eq!(typed.resources[0].user_name, "bjensen");
        let bad = serde_json::from_value::<ListResponse<crate::resource::User>>(json!({
            "Resources": [{"active": "yes"}]
        }))
        .unwrap_err();
        assert!(bad.to_string().contains("Resources[0]"), "{bad}");
        let cursor = ListResponse::cursor_page(vec![1, 2], None, Some("n".into()), None);
        assert_eq!(
            serde_json::to_value(cursor.map(|i| i * 10)).unwrap(),
            json!({"schemas": [LIST_RESPONSE_SCHEMA], "itemsPerPage": 2, "nextCursor": "n",
                   "Resources": [10, 20]})
        );
    }

    #[test]
    fn search_request_from_query_pairs() {
        let q = SearchRequest::from_query_pairs([
            ("attributes", "userName,name.givenName"),
            ("ATTRIBUTES", "emails"),
            ("filter", "userName eq \"x\""),
            ("sortOrder", "Descending"),
            ("startIndex", "-3"),
            ("count", "-1"),
            ("cursor", ""),
            ("unknown", "ignored"),
        ])
        .unwrap();
        assert_eq!(q.attributes, ["userName", "name.givenName", "emails"]);
        assert_eq!(q.sort_order, Some(SortOrder::Descending));
        assert_eq!(q.effective_start_index(), 1);
        assert_eq!(q.effective_count(), Some(0));
        assert_eq!(q.cursor.as_deref(), Some(""));
        let e = SearchRequest::from_query_pairs([("count", "ten")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
        assert!(SearchRequest::from_query_pairs([("sortOrder", "up")]).is_err());
        let none = SearchRequest::default();
        assert_eq!(
            (none.effective_start_index(), none.effective_count()),
            (1, None)
        );
    }

    #[test]
    fn bulk_method_and_status_leniency() {
        let op: BulkOperationResponse =
            serde_json::from_value(json!({"METHOD": "post", "Status": 201})).unwrap();
        assert_eq!((op.method, op.status), (BulkMethod::Post, 201));
        assert!(op.is_success());
        assert_eq!(
            serde_json::to_value(&op).unwrap(),
            json!({"method": "POST", "status": "201"})
        );
        assert!(
            serde_json::from_value::<BulkOperation>(json!({"method": "GET", "path": "/"})).is_err()
        );
        let err = Error::new(ErrorKind::Uniqueness, "userName taken");
        let failed = BulkOperationResponse::error(BulkMethod::Post, Some("q".into()), None, &err);
        assert_eq!(
            serde_json::to_value(&failed).unwrap(),
            json!({"method": "POST", "bulkId": "q", "status": "409", "response": {
                "schemas": [ERROR_SCHEMA], "status": "409", "scimType": "uniqueness",
                "detail": "userName taken"}})
        );
    }

    #[test]
    fn patch_request_accepts_any_case() {
        let p: PatchRequest = parse_message(
            br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                 "operations":[{"op":"Replace","path":"active","value":"False"}]}"#,
        )
        .unwrap();
        assert_eq!(p.operations.len(), 1);
        require_schema(&p.schemas, PATCH_OP_SCHEMA).unwrap();
        assert_eq!(
            require_schema(&p.schemas, BULK_REQUEST_SCHEMA)
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidSyntax
        );
        assert_eq!(
            serde_json::to_value(PatchRequest::new(vec![
                json!({"op": "remove", "path": "x"})
            ]))
            .unwrap(),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "remove", "path": "x"}]})
        );
        let e = parse_message::<PatchRequest>(b"{").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidSyntax);
    }

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

    #[test]
    fn discovery_representations() {
        let registry = SchemaRegistry::core();
        let group_rt = registry
            .resource_schema("Group")
            .unwrap()
            .resource_type()
            .clone();
        assert_eq!(
            resource_type_resource(&group_rt, "https://example.com/v2/"),
            json!({
                "schemas": [RESOURCE_TYPE_SCHEMA],
                "id": "Group",
                "name": "Group",
                "endpoint": "/Groups",
                "description": "Group",
                "schema": "urn:ietf:params:scim:schemas:core:2.0:Group",
                "meta": {
                    "resourceType": "ResourceType",
                    "location": "https://example.com/v2/ResourceTypes/Group"
                }
            })
        );
        let user_schema = registry.schema(crate::schema::USER_SCHEMA).unwrap();
        let v = schema_resource(&user_schema, "https://example.com/v2");
        assert_eq!(v["schemas"], json!([SCHEMA_SCHEMA]));
        assert_eq!(v["id"], crate::schema::USER_SCHEMA);
        assert_eq!(
            v["meta"]["location"],
            "https://example.com/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"
        );
        assert_eq!(v["attributes"][0]["name"], "userName");
        assert_eq!(v["attributes"][0]["multiValued"], false);
        let back: Schema = serde_json::from_value(v).unwrap();
        assert_eq!(&back, user_schema.as_ref());
    }
}
