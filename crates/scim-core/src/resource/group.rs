//! The typed Group (RFC 7643 section 4.2).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::serde_ci::{self, case_insensitive_serde};
use super::user::{list, null_as_default};
use super::{Meta, Resource, ResourceRef, kind_of, typed_resource_conversions};
use crate::error::{Error, Result};
use crate::schema::{GROUP_SCHEMA, ResourceSchema};

/// A Group (RFC 7643 section 4.2).
///
/// `extra` holds extension objects and unknown attributes, serialised back
/// unchanged. `displayName` is REQUIRED by the schema; a projected
/// representation without it reads as an empty string, and an empty
/// `displayName` is not serialised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct Group {
    /// The schema URNs.
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub schemas: Vec<String>,
    /// The service provider's identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The client's identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The human-readable name.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub display_name: String,
    /// The members (Users or Groups).
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub members: Vec<ResourceRef>,
    /// Resource metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Extension objects and unknown attributes, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

case_insensitive_serde!(
    Group,
    &[
        "schemas",
        "id",
        "externalId",
        "displayName",
        "members",
        "meta"
    ]
);

typed_resource_conversions!(Group);

impl Group {
    /// A new Group with the core schema and a `displayName`.
    pub fn new(display_name: impl Into<String>) -> Self {
        Self {
            schemas: vec![GROUP_SCHEMA.to_string()],
            display_name: display_name.into(),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SchemaRegistry;
    use serde_json::json;

    #[test]
    fn reads_any_case_and_keeps_unknown_members() {
        let registry = SchemaRegistry::core();
        let groups = registry.resource_schema("Group").unwrap();
        let doc = json!({
            "SCHEMAS": [GROUP_SCHEMA],
            "DisplayName": "Tour Guides",
            "Members": [{"Value": "1", "TYPE": "User", "$Ref": "../Users/1", "extra": true}],
            "urn:example:ext:1.0:Group": {"Code": "TG"}
        });
        let g = Group::from_value(doc, &groups).unwrap();
        assert_eq!(g.display_name, "Tour Guides");
        assert_eq!(g.members[0].kind.as_deref(), Some("User"));
        assert_eq!(g.members[0].reference.as_deref(), Some("../Users/1"));
        assert_eq!(
            g.to_value(),
            json!({
                "schemas": [GROUP_SCHEMA],
                "displayName": "Tour Guides",
                "members": [{"value": "1", "$ref": "../Users/1", "type": "User", "extra": true}],
                "urn:example:ext:1.0:Group": {"Code": "TG"}
            })
        );
        let mut g2 = Group::new("Admins");
        g2.members.push(ResourceRef::new("u1", "User"));
        let r = Resource::from(g2.clone());
        assert_eq!(Group::try_from(r).unwrap(), g2);
    }
}
