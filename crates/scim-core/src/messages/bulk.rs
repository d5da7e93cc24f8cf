//! BulkRequest and BulkResponse (RFC 7644 section 3.7).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::{BULK_REQUEST_SCHEMA, BULK_RESPONSE_SCHEMA, string_list_strict};
use crate::error::{Error, Result};
use crate::resource::serde_ci::{self, case_insensitive_serde};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::messages::ERROR_SCHEMA;
    use serde_json::json;
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
}
