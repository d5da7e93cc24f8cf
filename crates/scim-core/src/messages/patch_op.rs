//! The PatchOp request envelope (RFC 7644 section 3.5.2).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::{PATCH_OP_SCHEMA, string_list_strict};
use crate::resource::serde_ci::case_insensitive_serde;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::messages::{BULK_REQUEST_SCHEMA, parse_message, require_schema};
    use serde_json::json;
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
}
