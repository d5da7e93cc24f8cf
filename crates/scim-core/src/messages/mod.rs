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

mod bulk;
mod config;
mod discovery;
mod list;
mod patch_op;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::{Error, Result};

pub use crate::error::ERROR_SCHEMA;
pub use bulk::{BulkMethod, BulkOperation, BulkOperationResponse, BulkRequest, BulkResponse};
pub use config::{
    AuthenticationScheme, BulkConfig, FilterConfig, PaginationConfig, ServiceProviderConfig,
    Supported,
};
pub use discovery::{resource_type_resource, schema_resource};
pub use list::{ListResponse, SearchRequest, SortOrder};
pub use patch_op::PatchRequest;

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
